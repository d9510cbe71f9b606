"""SearchIndex: FindByInventoryPath, FindByUuid, FindChild, FindByDatastorePath (inventory work)."""
from __future__ import annotations

from pyVmomi import vim

from .base import ManagedObjectImpl


class SearchIndexImpl(ManagedObjectImpl):
    vim_type = vim.SearchIndex
    persistent = False
