"""PropertyCollector (placeholder, filled in below)."""
from pyVmomi import vim

from .base import ManagedObjectImpl


class PropertyCollectorImpl(ManagedObjectImpl):
    vim_type = vim.PropertyCollector
    persistent = False
