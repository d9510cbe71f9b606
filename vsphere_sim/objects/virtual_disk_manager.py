"""VirtualDiskManager: create, copy, delete, extend, child disks (datastore work)."""
from __future__ import annotations

from pyVmomi import vim

from .base import ManagedObjectImpl


class VirtualDiskManagerImpl(ManagedObjectImpl):
    vim_type = vim.VirtualDiskManager
    persistent = False
