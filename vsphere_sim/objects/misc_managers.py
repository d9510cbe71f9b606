"""OptionManager (VpxSettings), PerformanceManager, CustomFieldsManager: small managers VIC touches."""
from __future__ import annotations

from pyVmomi import vim

from .base import ManagedObjectImpl


class OptionManagerImpl(ManagedObjectImpl):
    vim_type = vim.option.OptionManager
    persistent = False
