"""The sim's inventory: the default model, hosts, clusters, networks, distributed switches, datacenters, and that
every property of every inventory object is a well-typed vim25 value (pyVmomi serializes it)."""
from __future__ import annotations

import uuid

import pytest
from pyVim.task import WaitForTask
from pyVmomi import SoapAdapter, VmomiSupport, vim, vmodl

V = VmomiSupport.GetVersionFromVersionUri("vim25/8.0.3.0")
OWN_MODULES = ("folder", "datacenter", "compute", "network", "virtual_machine")

pytestmark = pytest.mark.sim_only


def wait(task):
    WaitForTask(task)
    return task.info.result


def fault_of(fn, *args, **kwargs):
    with pytest.raises(vmodl.MethodFault) as info:
        result = fn(*args, **kwargs)
        if isinstance(result, vim.Task):
            wait(result)
    return info.value


@pytest.fixture(scope="module")
def inv(si):
    content = si.RetrieveContent()
    dc = next(e for e in content.rootFolder.childEntity if e.name == "DC0")
    computes = {c.name: c for c in dc.hostFolder.childEntity}
    stores = {d.name: d for d in dc.datastore}
    return type("Inv", (), dict(content=content, dc=dc, cluster=computes["DC0_C0"], standalone=computes["DC0_H0"],
                                ds=stores["LocalDS_0"], vsan=stores["vsanDatastore"]))


def unique(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_vm(inv, name=None, pool=None, changes=None):
    spec = vim.vm.ConfigSpec(name=name or unique("vm"), guestId="otherGuest64", numCPUs=1, memoryMB=64,
                             files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"), deviceChange=changes or [])
    return wait(inv.dc.vmFolder.CreateVM_Task(config=spec, pool=pool or inv.cluster.resourcePool))


def serialization_errors(sim) -> list[str]:
    """Every property of every inventory object, serialized as a property result would be."""
    errors = []
    with sim.lock:
        for obj in list(sim.registry.objects.values()):
            if type(obj).__module__.rpartition(".")[2] not in OWN_MODULES:
                continue
            for prop in obj.vim_type._GetPropertyList():
                value = obj.get_property(prop.name)
                if value is None:
                    if not prop.flags & VmomiSupport.F_OPTIONAL:
                        errors.append(f"{obj.moid}.{prop.name}: required but unset")
                    continue
                try:
                    SoapAdapter.SerializeToStr(value, VmomiSupport.Object(name="v", type=prop.type, version=V,
                                                                          flags=VmomiSupport.F_OPTIONAL), V)
                except Exception as err:  # noqa: BLE001 - any failure is the finding
                    errors.append(f"{obj.moid}.{prop.name}: {type(err).__name__}: {err}")
    return errors


def test_default_inventory_is_well_typed(sim):
    assert serialization_errors(sim) == []


def test_hosts_datastores_and_networks(inv):
    cluster, standalone = inv.cluster, inv.standalone
    for host in cluster.host:
        assert {d.name for d in host.datastore} == {"LocalDS_0", "vsanDatastore"}
        assert {"VM Network", "DC0_DVPG0"} <= {n.name for n in host.network}
        assert host.configManager.networkSystem is not None
        assert host.datastoreBrowser is not None
        assert {d.name for d in host.datastoreBrowser.datastore} == {"LocalDS_0", "vsanDatastore"}
        assert host.summary.runtime.connectionState == "connected"
        assert "Management Network" in [pg.spec.name for pg in host.config.network.portgroup]
    assert {d.name for d in standalone.host[0].datastore} == {"LocalDS_0"}
    assert {d.name for d in cluster.datastore} == {"LocalDS_0", "vsanDatastore"}
    assert "Management Network" not in {n.name for n in inv.dc.network}  # a VMkernel port group is no Network
    assert cluster.summary.numHosts == 3 and cluster.summary.numEffectiveHosts == 3
    assert cluster.resourcePool.runtime.cpu.maxUsage > 0
    assert cluster.environmentBrowser is not None


def test_environment_browser_config_target(inv):
    target = inv.cluster.environmentBrowser.QueryConfigTarget()
    assert {d.name for d in target.datastore} == {"LocalDS_0", "vsanDatastore"}
    assert "VM Network" in {n.name for n in target.network}
    assert "DC0_DVPG0" in {p.portgroupName for p in target.distributedVirtualPortgroup}


def test_port_groups_through_the_host_network_system(inv):
    host = inv.standalone.host[0]
    net_sys = host.configManager.networkSystem
    name = unique("pg")
    net_sys.AddPortGroup(vim.host.PortGroup.Specification(name=name, vlanId=0, vswitchName="vSwitch0",
                                                          policy=vim.host.NetworkPolicy()))
    net = next(n for n in inv.dc.network if n.name == name)
    assert net.host == [host] and net in host.network and net.parent == inv.dc.networkFolder
    assert isinstance(fault_of(net_sys.AddPortGroup, vim.host.PortGroup.Specification(
        name=name, vlanId=0, vswitchName="vSwitch0", policy=vim.host.NetworkPolicy())), vim.fault.AlreadyExists)
    assert isinstance(fault_of(net_sys.AddPortGroup, vim.host.PortGroup.Specification(
        name=unique(), vlanId=0, vswitchName="nope", policy=vim.host.NetworkPolicy())), vim.fault.NotFound)
    net_sys.RemovePortGroup(name)
    assert net not in host.network


def test_distributed_switch_and_port_groups(inv):
    dvs = next(e for e in inv.dc.networkFolder.childEntity if isinstance(e, vim.DistributedVirtualSwitch))
    assert dvs.name == "DC0_DVS" and len(dvs.config.host) == 4
    pg_name = unique("dvpg")
    pg = wait(dvs.CreateDVPortgroup_Task(vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
        name=pg_name, type="earlyBinding", numPorts=2)))
    assert pg.key == pg._moId and pg.config.distributedVirtualSwitch == dvs and pg in dvs.portgroup
    assert len(pg.host) == 4 and pg in inv.dc.network
    VD = vim.vm.device
    nic = VD.VirtualDeviceSpec(operation="add", device=VD.VirtualVmxnet3(
        key=-1, addressType="generated", backing=VD.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
            port=vim.dvs.PortConnection(switchUuid=dvs.uuid, portgroupKey=pg.key))))
    vms = [new_vm(inv, changes=[nic]) for _ in range(3)]  # more VMs than ports: the port group grows
    ports = [vm.config.hardware.device[-1].backing.port for vm in vms]
    assert len({p.portKey for p in ports}) == 3 and all(p.switchUuid == dvs.uuid for p in ports)
    assert set(pg.vm) == set(vms) and all(pg in vm.network for vm in vms)
    assert vms[0].config.hardware.device[-1].deviceInfo.summary == pg_name
    bad = VD.VirtualDeviceSpec(operation="add", device=VD.VirtualVmxnet3(
        key=-1, backing=VD.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
            port=vim.dvs.PortConnection(switchUuid=dvs.uuid, portgroupKey="dvportgroup-999"))))
    assert isinstance(fault_of(vms[0].ReconfigVM_Task, spec=vim.vm.ConfigSpec(deviceChange=[bad])),
                      vim.fault.InvalidDeviceBacking)
    assert isinstance(fault_of(pg.Destroy_Task), vim.fault.ResourceInUse)
    for vm in vms:
        wait(vm.Destroy_Task())
    wait(pg.Destroy_Task())
    assert pg not in dvs.portgroup and pg not in inv.dc.network


def test_new_datacenter_and_cluster_through_the_api(inv, sim):
    root = inv.content.rootFolder
    name = unique("dc")
    dc = root.CreateDatacenter(name)
    assert isinstance(fault_of(root.CreateDatacenter, name), vim.fault.DuplicateName)
    assert dc.vmFolder.childType == ["Folder", "VirtualMachine", "VirtualApp"]
    cluster = dc.hostFolder.CreateClusterEx(unique("c"), vim.cluster.ConfigSpecEx())
    host = wait(cluster.AddHost_Task(spec=vim.host.ConnectSpec(hostName=unique("h")), asConnected=True))
    assert host.parent == cluster and cluster.summary.numHosts == 1
    fault = fault_of(cluster.AddHost_Task, spec=vim.host.ConnectSpec(hostName=host.name), asConnected=True)
    assert isinstance(fault, vim.fault.AlreadyConnected) and fault.name == host.name
    compute = wait(dc.hostFolder.AddStandaloneHost_Task(spec=vim.host.ConnectSpec(hostName=unique("s")),
                                                        addConnected=True))
    assert type(compute) is vim.ComputeResource and compute.host[0].name == compute.name
    with sim.lock:
        ds = sim.datastores.add_datastore(sim.registry.get(dc), unique("ds"), "VMFS", [sim.registry.get(host)])
    assert ds.ref in dc.datastore and ds.ref in host.datastore
    assert serialization_errors(sim) == []
    wait(dc.Destroy_Task())
    assert dc not in root.childEntity
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        host.name  # noqa: B018


def test_host_maintenance_and_removal(inv):
    cluster = inv.dc.hostFolder.CreateClusterEx(unique("mc"), vim.cluster.ConfigSpecEx())
    host = wait(cluster.AddHost_Task(spec=vim.host.ConnectSpec(hostName=unique("mh")), asConnected=True))
    assert isinstance(fault_of(host.Destroy_Task), vim.fault.InvalidState)  # not in maintenance mode
    wait(host.EnterMaintenanceMode_Task(timeout=0))
    assert host.runtime.inMaintenanceMode and cluster.summary.numEffectiveHosts == 0
    assert isinstance(fault_of(host.EnterMaintenanceMode_Task, timeout=0), vim.fault.InvalidState)
    wait(host.Destroy_Task())
    assert cluster.host == [] and cluster.summary.numHosts == 0
    wait(cluster.Destroy_Task())


def test_resource_pool_root_cannot_go(inv):
    root = inv.cluster.resourcePool
    assert isinstance(fault_of(root.Destroy_Task), vmodl.fault.NotSupported)
    assert isinstance(fault_of(root.CreateResourcePool, "", vim.ResourceConfigSpec(
        cpuAllocation=vim.ResourceAllocationInfo(), memoryAllocation=vim.ResourceAllocationInfo())),
        vim.fault.InvalidName)


def test_special_folders_are_fixed(inv):
    assert isinstance(fault_of(inv.dc.vmFolder.Destroy_Task), vmodl.fault.NotSupported)
    assert isinstance(fault_of(inv.dc.vmFolder.Rename_Task, newName="x"), vmodl.fault.NotSupported)
    assert isinstance(fault_of(inv.dc.hostFolder.CreateVM_Task, config=vim.vm.ConfigSpec(name="x"),
                               pool=inv.cluster.resourcePool), vmodl.fault.NotSupported)


def test_power_on_multi_vm(inv):
    vms = [new_vm(inv) for _ in range(2)]
    result = wait(inv.dc.PowerOnMultiVM_Task(vm=vms))
    assert {a.vm for a in result.attempted} == set(vms)
    assert all(vm.runtime.powerState == "poweredOn" for vm in vms)
    for vm in vms:
        wait(vm.PowerOffVM_Task())
        wait(vm.Destroy_Task())


def test_placement_spreads_vms_over_the_cluster(inv):
    vms = [new_vm(inv) for _ in range(3)]
    assert len({vm.runtime.host for vm in vms}) == 3
    assert all(vm in vm.runtime.host.vm for vm in vms)
    for vm in vms:
        wait(vm.Destroy_Task())


def test_vsan_vm_goes_to_the_cluster(inv):
    spec = vim.vm.ConfigSpec(name=unique("vs"), guestId="otherGuest64", numCPUs=1, memoryMB=64,
                             files=vim.vm.FileInfo(vmPathName="[vsanDatastore]"))
    fault = fault_of(inv.dc.vmFolder.CreateVM_Task, config=spec, pool=inv.standalone.resourcePool)
    assert isinstance(fault, vim.fault.InvalidDatastore) and fault.name == "vsanDatastore"
    vm = wait(inv.dc.vmFolder.CreateVM_Task(config=spec, pool=inv.cluster.resourcePool))
    assert vm.runtime.host in inv.cluster.host
    wait(vm.Destroy_Task())


def test_standalone_host_leaves_with_its_compute_resource(inv):
    compute = wait(inv.dc.hostFolder.AddStandaloneHost_Task(spec=vim.host.ConnectSpec(hostName=unique("sa")),
                                                            addConnected=True))
    (host,) = compute.host
    wait(host.EnterMaintenanceMode_Task(timeout=0))
    cluster = inv.dc.hostFolder.CreateClusterEx(unique("into"), vim.cluster.ConfigSpecEx())
    wait(cluster.MoveInto_Task(host=[host]))
    assert host.parent == cluster and cluster.host == [host]
    assert compute not in inv.dc.hostFolder.childEntity
    wait(host.Destroy_Task())
    assert cluster.host == []
    wait(cluster.Destroy_Task())
    other = wait(inv.dc.hostFolder.AddStandaloneHost_Task(spec=vim.host.ConnectSpec(hostName=unique("sb")),
                                                          addConnected=True))
    wait(other.Destroy_Task())
    assert other not in inv.dc.hostFolder.childEntity


def test_config_option_descriptors(inv):
    keys = [d.key for d in inv.cluster.environmentBrowser.QueryConfigOptionDescriptor()]
    assert "vmx-21" in keys
    assert [d.key for d in inv.dc.QueryConfigOptionDescriptor()] == keys
