"""TaskManager: recentTask, task history (core)."""
from __future__ import annotations

from pyVmomi import vim

from .base import ManagedObjectImpl


class TaskManagerImpl(ManagedObjectImpl):
    vim_type = vim.TaskManager
    persistent = False
