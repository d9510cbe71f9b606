"""EventManager and event history collectors (guest/events work)."""
from __future__ import annotations

from pyVmomi import vim

from .base import ManagedObjectImpl


class EventManagerImpl(ManagedObjectImpl):
    vim_type = vim.event.EventManager
    persistent = False
