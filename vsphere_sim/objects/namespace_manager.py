"""DatastoreNamespaceManager: vSAN top-level directories (datastore work)."""
from __future__ import annotations

from pyVmomi import vim

from .base import ManagedObjectImpl


class DatastoreNamespaceManagerImpl(ManagedObjectImpl):
    vim_type = vim.DatastoreNamespaceManager
    persistent = False
