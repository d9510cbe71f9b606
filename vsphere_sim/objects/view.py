"""ViewManager and ContainerView/ListView (owned by the property collector work)."""
from __future__ import annotations

from pyVmomi import vim

from .base import ManagedObjectImpl


class ViewManagerImpl(ManagedObjectImpl):
    vim_type = vim.view.ViewManager
    persistent = False
