"""Guest operations: manager, process manager, auth manager (guest work)."""
from __future__ import annotations

from pyVmomi import vim

from .base import ManagedObjectImpl


class GuestOperationsManagerImpl(ManagedObjectImpl):
    vim_type = vim.vm.guest.GuestOperationsManager
    persistent = False
