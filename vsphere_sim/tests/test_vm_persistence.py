"""A restarted sim keeps its inventory and VMs: every object comes back from the state store with its links, and the
restarted sim goes on creating, reconfiguring and destroying as before."""
from __future__ import annotations

import pytest
from pyVmomi import vim

from vsphere_sim import Simulator

pytestmark = pytest.mark.sim_only
VD = vim.vm.device


def _spec(name):
    return vim.vm.ConfigSpec(
        name=name, guestId="otherGuest64", numCPUs=1, memoryMB=64, files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"),
        extraConfig=[vim.option.OptionValue(key="guestinfo.a", value="1")],
        deviceChange=[
            VD.VirtualDeviceSpec(operation="add", device=VD.ParaVirtualSCSIController(key=-1, busNumber=0,
                                                                                      sharedBus="noSharing")),
            VD.VirtualDeviceSpec(operation="add", fileOperation="create", device=VD.VirtualDisk(
                key=-2, controllerKey=-1, capacityInKB=1024, backing=VD.VirtualDisk.FlatVer2BackingInfo(
                    fileName="", diskMode="persistent"))),
            VD.VirtualDeviceSpec(operation="add", device=VD.VirtualVmxnet3(
                key=-3, backing=VD.VirtualEthernetCard.NetworkBackingInfo(deviceName="VM Network")))])


def _inventory(sim):
    dc = next(o for o in sim.registry.of_type(vim.Datacenter) if o.name == "DC0")
    cluster = next(o for o in sim.registry.of_type(vim.ClusterComputeResource) if o.name == "DC0_C0")
    return dc, cluster


def test_vms_and_inventory_survive_a_restart(tmp_path):
    sim = Simulator(tmp_path)
    try:
        dc, cluster = _inventory(sim)
        folder = sim.call(dc.props["vmFolder"], "CreateFolder", name="apps")
        vm_ref = sim.wait_task(sim.call(folder, "CreateVM_Task", config=_spec("keep"),
                                        pool=cluster.props["resourcePool"]))
        sim.wait_task(sim.call(vm_ref, "PowerOnVM_Task"))
        sim.wait_task(sim.call(vm_ref, "Rename_Task", newName="kept"))
        with sim.lock:
            before = sim.registry.get(vm_ref)
            saved = (before.props["config"].changeVersion, before.props["config"].uuid,
                     [d.key for d in before.devices()], before.props["runtime"].host._moId,
                     sorted(r._moId for r in before.props["datastore"]))
    finally:
        sim.close()

    sim = Simulator(tmp_path)
    try:
        dc, cluster = _inventory(sim)
        with sim.lock:
            vm = sim.registry.get(vm_ref)
            assert vm.name == "kept" and vm.props["config"].name == "kept"
            assert vm.props["runtime"].powerState == "poweredOn"
            assert vm.props["summary"].runtime is vm.props["runtime"]
            assert (vm.props["config"].changeVersion, vm.props["config"].uuid, [d.key for d in vm.devices()],
                    vm.props["runtime"].host._moId, sorted(r._moId for r in vm.props["datastore"])) == saved
            assert vm.extra_config("guestinfo.a") == "1"
            assert vm.parent.name == "apps" and vm.ref in vm.pool().props["vm"] and vm.ref in vm.host().props["vm"]
            host = vm.host()
            assert sim.registry.find(host.props["datastoreBrowser"]._moId) is not None
            assert host.network_system().host is host
            assert [h.name for h in cluster.hosts()] == ["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"]
        # the restarted sim goes on as before: new objects get new morefs, old ones change and go
        other = sim.wait_task(sim.call(dc.props["vmFolder"], "CreateVM_Task", config=_spec("new"),
                                       pool=cluster.props["resourcePool"]))
        assert other._moId != vm_ref._moId
        new_folder = sim.call(dc.props["vmFolder"], "CreateFolder", name="more")
        assert new_folder._moId != folder._moId
        sim.wait_task(sim.call(vm_ref, "ReconfigVM_Task", spec=vim.vm.ConfigSpec(
            extraConfig=[vim.option.OptionValue(key="guestinfo.a", value="")])))
        sim.wait_task(sim.call(vm_ref, "PowerOffVM_Task"))
        with sim.lock:
            home = sim.registry.get(vm_ref).home_dir()
        sim.wait_task(sim.call(vm_ref, "Destroy_Task"))
        with sim.lock:
            assert not sim.datastores.exists(home)
    finally:
        sim.close()
