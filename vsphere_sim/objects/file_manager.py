"""FileManager: MakeDirectory, Move/Copy/DeleteDatastoreFile_Task (datastore work)."""
from __future__ import annotations

from pyVmomi import vim

from .base import ManagedObjectImpl


class FileManagerImpl(ManagedObjectImpl):
    vim_type = vim.FileManager
    persistent = False
