"""TaskManager: the recent tasks of the caller's session and the task description catalogue."""
from __future__ import annotations

from pyVmomi import vim

from .base import ManagedObjectImpl

RECENT_LIMIT = 200


class TaskManagerImpl(ManagedObjectImpl):
    vim_type = vim.TaskManager
    persistent = False

    def __init__(self, sim, moid):
        super().__init__(sim, moid)
        self.init_props(maxCollector=32)

    def prop_recentTask(self):
        tasks = self.sim.registry.of_type(vim.Task)
        return vim.Task.Array([t.ref for t in tasks[-RECENT_LIMIT:]])
