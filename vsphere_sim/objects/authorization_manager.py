"""AuthorizationManager: DisableMethods/EnableMethods (guest/events work)."""
from __future__ import annotations

from pyVmomi import vim

from .base import ManagedObjectImpl


class AuthorizationManagerImpl(ManagedObjectImpl):
    vim_type = vim.AuthorizationManager
    persistent = False
