"""Datacenter: the root of one inventory, with its vm, host, datastore and network folders."""
from __future__ import annotations

import dataclasses

from pyVmomi import vim

from .base import ManagedEntityImpl
from .folder import (
    DATASTORE_FOLDER_TYPES,
    HOST_FOLDER_TYPES,
    NETWORK_FOLDER_TYPES,
    VM_FOLDER_TYPES,
    FolderImpl,
    InventoryEntity,
    new_moid,
)


class DatacenterImpl(InventoryEntity, ManagedEntityImpl):
    vim_type = vim.Datacenter

    @classmethod
    def create(cls, sim, parent_folder, name) -> DatacenterImpl:
        dc = cls(sim, new_moid(sim, "datacenter"), name, parent_folder)
        registry = sim.registry
        folders = {}
        for prop, folder_name, prefix, types in (("vmFolder", "vm", "group-v", VM_FOLDER_TYPES),
                                                 ("hostFolder", "host", "group-h", HOST_FOLDER_TYPES),
                                                 ("datastoreFolder", "datastore", "group-s", DATASTORE_FOLDER_TYPES),
                                                 ("networkFolder", "network", "group-n", NETWORK_FOLDER_TYPES)):
            folders[prop] = FolderImpl(sim, new_moid(sim, prefix), folder_name, dc, types)
        dc.init_props(datastore=[], network=[],
                      configuration=vim.Datacenter.ConfigInfo(defaultHardwareVersionKey="vmx-21",
                                                              maximumHardwareVersionKey="vmx-21"),
                      **{prop: folder.ref for prop, folder in folders.items()})
        registry.add(dc)
        for folder in folders.values():
            registry.add(folder)
        parent_folder.add_child(dc)
        return dc

    def folder(self, prop: str) -> FolderImpl:
        return self.sim.registry.get(self.props[prop])

    def special_folders(self):
        return [self.folder(p) for p in ("vmFolder", "hostFolder", "datastoreFolder", "networkFolder")]

    def virtual_machines(self):
        return [vm for vm in self.sim.registry.of_type(vim.VirtualMachine) if vm.datacenter() is self]

    # -- WSDL methods -------------------------------------------------------------------------------------------
    def PowerOnMultiVM_Task(self, ctx, vm, option=None):
        """One PowerOnVM_Task per VM, as vCenter starts them; the result lists each VM with its task."""
        def work(task):
            attempted = []
            sub_ctx = dataclasses.replace(ctx, wsdl_name="PowerOnVM_Task")
            for ref in vm:
                machine = self.sim.registry.get(ref)
                attempted.append(vim.cluster.AttemptedVmInfo(vm=ref, task=machine.PowerOnVM_Task(sub_ctx)))
            return vim.cluster.PowerOnVmResult(attempted=attempted, notAttempted=[], recommendations=[])
        return self.sim.tasks.start(ctx, self, work)

    def queryDatacenterConfigOptionDescriptor(self, ctx):  # sic: the WSDL name starts lower-case
        return config_option_descriptors()

    def check_destroy(self):
        for vm in self.virtual_machines():
            vm.check_destroy_inventory()

    def destroy(self):
        """Everything in the datacenter leaves the inventory; VM and datastore files stay on disk."""
        sim = self.sim
        for vm in self.virtual_machines():
            vm.remove_from_inventory()
        for prop in ("hostFolder", "networkFolder", "vmFolder"):
            _remove_tree(sim, self.folder(prop))
        ds_folder = self.folder("datastoreFolder")
        for ds in [e for e in _walk(sim, ds_folder) if isinstance(e.ref, vim.Datastore)]:
            ds.parent.remove_child(ds)
            sim.registry.remove(ds)
            browser = ds.props.get("browser")
            if browser is not None and sim.registry.find(browser._moId) is not None:
                sim.registry.remove(sim.registry.find(browser._moId))
        _remove_tree(sim, ds_folder)
        parent = self.parent
        if parent is not None:
            parent.remove_child(self)
        sim.registry.remove(self)


def config_option_descriptors() -> list:
    """The hardware versions a VM can be created with (vmx-21 is the default)."""
    return [vim.vm.ConfigOptionDescriptor(key=f"vmx-{v}", description=f"ESXi {ver} virtual machine",
                                          createSupported=True, defaultConfigOption=(v == 21), runSupported=True,
                                          upgradeSupported=True)
            for v, ver in ((21, "8.0 U2"), (20, "8.0"), (19, "7.0 U2"), (17, "7.0"), (15, "6.7 U2"), (14, "6.7"),
                           (13, "6.5"))]


def _walk(sim, folder):
    for child in folder.children():
        yield child
        if isinstance(child, FolderImpl):
            yield from _walk(sim, child)


def _remove_tree(sim, folder):
    """Remove a folder and whatever it holds from the registry (their files are untouched)."""
    for child in list(folder.children()):
        if isinstance(child, FolderImpl):
            _remove_tree(sim, child)
        elif isinstance(child.ref, vim.ComputeResource):
            child.destroy()
        elif isinstance(child.ref, (vim.Network, vim.DistributedVirtualSwitch)):
            if sim.registry.find(child.moid) is not None:
                child.destroy()
        elif sim.registry.find(child.moid) is not None:
            sim.registry.remove(child)
    sim.registry.remove(folder)
