"""The inventory as pyVmomi scripts read it: the folder tree, datacenters, compute resources, hosts, resource pools,
datastores and networks with both sides of every link, SearchIndex, folders and resource pools.

Black-box: pyVmomi only; the checks of the default inventory's names and moref forms are sim-only.
"""
from __future__ import annotations

import re
import uuid

import pytest
from pyVmomi import vim, vmodl

from .helpers import datacenter, unique, vmfs_datastore, wait
from .helpers import walk as _walk


@pytest.fixture(scope="module")
def env(si):
    content = si.RetrieveContent()
    dc = datacenter(si)
    ds = vmfs_datastore(dc)
    computes = [c for c in _walk(dc.hostFolder) if isinstance(c, vim.ComputeResource)]
    compute = next(c for c in computes if c.resourcePool)
    folder = dc.vmFolder.CreateFolder(f"vsim-inventory-{uuid.uuid4().hex[:8]}")
    ns = type("Env", (), {})()
    ns.content, ns.dc, ns.ds, ns.computes, ns.pool, ns.folder = content, dc, ds, computes, compute.resourcePool, \
        folder
    yield ns
    wait(folder.Destroy_Task())



def new_vm(env, name=None, folder=None):
    name = name or unique("vm")
    spec = vim.vm.ConfigSpec(name=name, guestId="otherGuest64", numCPUs=1, memoryMB=64,
                             files=vim.vm.FileInfo(vmPathName=f"[{env.ds.name}]"))
    return wait((folder or env.folder).CreateVM_Task(config=spec, pool=env.pool))


# -- the tree -------------------------------------------------------------------------------------------------------
def test_datacenter_folders(env):
    dc = env.dc
    assert set(env.content.rootFolder.childType) >= {"Folder", "Datacenter"}
    assert dc.parent == env.content.rootFolder or isinstance(dc.parent, vim.Folder)
    assert dc.vmFolder.name == "vm" and "VirtualMachine" in dc.vmFolder.childType
    assert dc.hostFolder.name == "host" and "ComputeResource" in dc.hostFolder.childType
    assert dc.datastoreFolder.name == "datastore" and "Datastore" in dc.datastoreFolder.childType
    assert dc.networkFolder.name == "network" and "Network" in dc.networkFolder.childType
    for folder in (dc.vmFolder, dc.hostFolder, dc.datastoreFolder, dc.networkFolder):
        assert folder.parent == dc


def test_compute_resources_hosts_and_pools(env):
    assert env.computes
    for compute in env.computes:
        assert compute.host, compute.name
        assert compute.resourcePool.owner == compute
        assert compute.resourcePool.parent == compute
        summary = compute.summary
        assert summary.numHosts == len(compute.host) and summary.totalMemory > 0 and summary.numCpuCores > 0
        for host in compute.host:
            assert host.parent == compute
            assert host.runtime.connectionState in ("connected", "disconnected", "notResponding")
            assert host.summary.hardware.memorySize > 0 and host.hardware.cpuInfo.numCpuCores > 0
            assert host.summary.config.name == host.name
            assert set(host.datastore) <= set(compute.datastore)
            assert host.config.product.apiType == "HostAgent"
        if isinstance(compute, vim.ClusterComputeResource):
            assert compute.configurationEx.drsConfig is not None


def test_datastores_and_networks_link_both_ways(env):
    dc = env.dc
    in_folders = {e for e in _walk(dc.datastoreFolder) if isinstance(e, vim.Datastore)}
    assert set(dc.datastore) == in_folders
    for ds in dc.datastore:
        for mount in ds.host:
            assert ds in mount.key.datastore
    for net in dc.network:
        assert net.summary.name == net.name
        for host in net.host:
            assert net in host.network


def test_every_property_of_every_entity_reads(env):
    """RetrievePropertiesEx with all properties of every entity type: pyVmomi must deserialize them all."""
    content = env.content
    pc = content.propertyCollector
    types = [vim.Datacenter, vim.Folder, vim.ClusterComputeResource, vim.ComputeResource, vim.HostSystem,
             vim.ResourcePool, vim.Datastore, vim.Network, vim.VirtualMachine]
    new_vm(env)
    view = content.viewManager.CreateContainerView(env.dc, types, True)
    try:
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[vmodl.query.PropertyCollector.ObjectSpec(
                obj=view, skip=True, selectSet=[vmodl.query.PropertyCollector.TraversalSpec(
                    name="view", type=vim.view.ContainerView, path="view", skip=False)]),
                vmodl.query.PropertyCollector.ObjectSpec(obj=env.dc)],
            propSet=[vmodl.query.PropertyCollector.PropertySpec(type=t, all=True) for t in types])
        seen = set()
        result = pc.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
        while result is not None:
            for obj in result.objects:
                assert not obj.missingSet, (obj.obj, [m.path for m in obj.missingSet])
                seen.add(type(obj.obj))
            result = pc.ContinueRetrievePropertiesEx(result.token) if result.token else None
        assert {vim.Datacenter, vim.Folder, vim.HostSystem, vim.ResourcePool, vim.Datastore,
                vim.VirtualMachine} <= seen
    finally:
        view.DestroyView()


# -- SearchIndex ----------------------------------------------------------------------------------------------------
def test_find_by_inventory_path_and_find_child(env):
    si_index = env.content.searchIndex
    dc = env.dc
    assert si_index.FindByInventoryPath(dc.name) == dc
    assert si_index.FindByInventoryPath(f"{dc.name}/vm") == dc.vmFolder
    assert si_index.FindByInventoryPath(f"{dc.name}/vm/{env.folder.name}") == env.folder
    assert si_index.FindByInventoryPath(f"{dc.name}/vm/no-such-thing-{uuid.uuid4().hex}") is None
    assert si_index.FindChild(dc, "host") == dc.hostFolder
    assert si_index.FindChild(dc.vmFolder, env.folder.name) == env.folder
    assert si_index.FindChild(dc.vmFolder, f"nothing-{uuid.uuid4().hex}") is None
    vm = new_vm(env)
    assert si_index.FindByInventoryPath(f"{dc.name}/vm/{env.folder.name}/{vm.name}") == vm
    assert si_index.FindChild(env.folder, vm.name) == vm


def test_find_by_uuid_and_datastore_path(env):
    si_index = env.content.searchIndex
    vm = new_vm(env)
    assert si_index.FindByUuid(env.dc, vm.config.uuid, True) == vm
    assert si_index.FindByUuid(None, vm.config.uuid, True) == vm
    assert si_index.FindByUuid(env.dc, vm.config.instanceUuid, True, True) == vm
    assert si_index.FindByUuid(env.dc, str(uuid.uuid4()), True) is None
    host = env.computes[0].host[0]
    assert si_index.FindByUuid(env.dc, host.hardware.systemInfo.uuid, False) == host
    assert si_index.FindByDatastorePath(env.dc, vm.config.files.vmPathName) == vm
    assert si_index.FindByDatastorePath(env.dc, f"[{env.ds.name}] nothing/nothing.vmx") is None
    with pytest.raises(vim.fault.InvalidDatastore):
        si_index.FindByDatastorePath(env.dc, "[no-such-datastore-x] a/a.vmx")


# -- folders --------------------------------------------------------------------------------------------------------
def test_folder_create_rename_move_destroy(env):
    parent = env.folder.CreateFolder(unique("p"))
    child = parent.CreateFolder(unique("c"))
    assert child.parent == parent and child in parent.childEntity
    assert set(child.childType) == set(parent.childType)
    new_name = unique("renamed")
    wait(child.Rename_Task(newName=new_name))
    assert child.name == new_name
    vm = new_vm(env)
    wait(child.MoveIntoFolder_Task([vm]))
    assert vm.parent == child and vm in child.childEntity and vm not in env.folder.childEntity
    with pytest.raises(vim.fault.InvalidFolder):
        wait(child.MoveIntoFolder_Task([parent]))  # into its own subfolder
    wait(parent.Destroy_Task())
    assert parent not in env.folder.childEntity
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        vm.name  # noqa: B018 - the folder's Destroy_Task destroyed the VM in it


def test_folder_rename_to_a_sibling_name_is_duplicate_name(env):
    a, b = env.folder.CreateFolder(unique("a")), env.folder.CreateFolder(unique("b"))
    with pytest.raises(vim.fault.DuplicateName) as info:
        wait(b.Rename_Task(newName=a.name))
    assert info.value.name == a.name and info.value.object == env.folder


def test_create_folder_with_an_empty_name_is_invalid_name(env):
    with pytest.raises(vim.fault.InvalidName):
        env.folder.CreateFolder("")


# -- resource pools -------------------------------------------------------------------------------------------------
def test_resource_pools(env):
    root = env.pool
    name = unique("rp")
    alloc = vim.ResourceAllocationInfo(reservation=0, expandableReservation=True, limit=-1,
                                       shares=vim.SharesInfo(level="normal", shares=0))
    pool = root.CreateResourcePool(name, vim.ResourceConfigSpec(cpuAllocation=alloc, memoryAllocation=alloc))
    try:
        assert pool.name == name and pool.parent == root and pool.owner == root.owner
        assert pool in root.resourcePool
        assert pool.config.cpuAllocation.shares.level == "normal"
        with pytest.raises(vim.fault.DuplicateName) as info:
            root.CreateResourcePool(name, vim.ResourceConfigSpec(cpuAllocation=alloc, memoryAllocation=alloc))
        assert info.value.name == name and info.value.object == root
        spec = vim.vm.ConfigSpec(name=unique("pvm"), guestId="otherGuest64", numCPUs=1, memoryMB=64,
                                 files=vim.vm.FileInfo(vmPathName=f"[{env.ds.name}]"))
        vm = wait(env.folder.CreateVM_Task(config=spec, pool=pool))
        assert vm.resourcePool == pool and vm in pool.vm
        pool.UpdateConfig(name=name + "-x", config=None)
        assert pool.name == name + "-x"
    finally:
        wait(pool.Destroy_Task())
    assert vm.resourcePool == root and vm in root.vm  # a destroyed pool hands its VMs to its parent


# -- the default inventory (sim only) -------------------------------------------------------------------------------
@pytest.mark.sim_only
def test_default_inventory_names_and_morefs(env):
    dc = env.dc
    assert dc.name == "DC0" and re.fullmatch(r"datacenter-\d+", dc._moId)
    assert re.fullmatch(r"group-v\d+", dc.vmFolder._moId) and re.fullmatch(r"group-h\d+", dc.hostFolder._moId)
    assert re.fullmatch(r"group-s\d+", dc.datastoreFolder._moId)
    assert re.fullmatch(r"group-n\d+", dc.networkFolder._moId)
    computes = {c.name: c for c in dc.hostFolder.childEntity}
    cluster, standalone = computes["DC0_C0"], computes["DC0_H0"]
    assert isinstance(cluster, vim.ClusterComputeResource) and re.fullmatch(r"domain-c\d+", cluster._moId)
    assert type(standalone) is vim.ComputeResource and re.fullmatch(r"domain-s\d+", standalone._moId)
    assert [h.name for h in cluster.host] == ["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"]
    assert [h.name for h in standalone.host] == ["DC0_H0"]
    assert all(re.fullmatch(r"host-\d+", h._moId) for h in cluster.host + standalone.host)
    assert cluster.resourcePool.name == "Resources" and re.fullmatch(r"resgroup-\d+", cluster.resourcePool._moId)
    assert [p.name for p in cluster.resourcePool.resourcePool] == ["DC0_C0_RP1"]
    stores = {d.name: d for d in dc.datastore}
    assert set(stores) == {"LocalDS_0", "vsanDatastore"}
    assert set(stores["LocalDS_0"].host) >= set()
    assert {m.key for m in stores["LocalDS_0"].host} == set(cluster.host + standalone.host)
    assert {m.key for m in stores["vsanDatastore"].host} == set(cluster.host)
    assert stores["vsanDatastore"].summary.type == "vsan"
    nets = {n.name: n for n in dc.network}
    assert {"VM Network", "DC0_DVPG0"} <= set(nets)
    assert re.fullmatch(r"network-\d+", nets["VM Network"]._moId)
    assert isinstance(nets["DC0_DVPG0"], vim.dvs.DistributedVirtualPortgroup)
    assert set(nets["VM Network"].host) == set(cluster.host + standalone.host)
    assert cluster.configurationEx.drsConfig.enabled is True
