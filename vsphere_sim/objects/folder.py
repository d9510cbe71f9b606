"""Folder: the inventory tree's containers (root, datacenter's vm/host/datastore/network folders)."""
from __future__ import annotations

from pyVmomi import vim

from .base import ManagedEntityImpl


class FolderImpl(ManagedEntityImpl):
    vim_type = vim.Folder

    def __init__(self, sim, moid, name, parent=None, child_types=()):
        super().__init__(sim, moid, name, parent)
        self.init_props(childType=list(child_types), childEntity=[])

    def children(self):
        return [self.sim.registry.get(ref) for ref in self.props["childEntity"]]

    def add_child(self, child):
        self.props["childEntity"].append(child.ref)
        self.touch("childEntity")

    def remove_child(self, child):
        refs = self.props["childEntity"]
        for i, ref in enumerate(refs):
            if ref._moId == child.moid:
                del refs[i]
                self.touch("childEntity")
                return
