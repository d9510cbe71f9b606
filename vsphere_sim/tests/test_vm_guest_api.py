"""What a VM offers the guest supervisor (extraConfig access, ISO paths, disks, the guest's own power off), the guest
operations ShutdownGuest / RebootGuest with a running guest, and the events a VM's life posts."""
from __future__ import annotations

import uuid

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

from vsphere_sim import guest_vm

pytestmark = pytest.mark.sim_only
VD = vim.vm.device


def wait(task):
    WaitForTask(task)
    return task.info.result


@pytest.fixture(scope="module")
def inv(si, vsphere):
    content = si.RetrieveContent()
    dc = next(e for e in content.rootFolder.childEntity if e.name == "DC0")
    cluster = next(c for c in dc.hostFolder.childEntity if c.name == "DC0_C0")
    with vsphere.sim.lock:
        vsphere.sim.datastores.write_file("[LocalDS_0] iso/plain.iso", b"not a guest", create_parents=True)
    return type("Inv", (), dict(content=content, dc=dc, pool=cluster.resourcePool, folder=dc.vmFolder))


def create(inv, name=None):
    name = name or f"g-{uuid.uuid4().hex[:8]}"
    spec = vim.vm.ConfigSpec(
        name=name, guestId="otherGuest64", numCPUs=1, memoryMB=64, files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"),
        extraConfig=[vim.option.OptionValue(key="guestinfo.vice./common/id", value="id1"),
                     vim.option.OptionValue(key="common/name", value="secret")],
        deviceChange=[
            VD.VirtualDeviceSpec(operation="add", device=VD.ParaVirtualSCSIController(key=-1, busNumber=0,
                                                                                      sharedBus="noSharing")),
            VD.VirtualDeviceSpec(operation="add", fileOperation="create", device=VD.VirtualDisk(
                key=-2, controllerKey=-1, capacityInKB=1024, backing=VD.VirtualDisk.FlatVer2BackingInfo(
                    fileName="", diskMode="persistent"))),
            VD.VirtualDeviceSpec(operation="add", device=VD.VirtualCdrom(
                key=-3, controllerKey=201, unitNumber=0,
                backing=VD.VirtualCdrom.IsoBackingInfo(fileName="[LocalDS_0] iso/plain.iso")))])
    return wait(inv.folder.CreateVM_Task(config=spec, pool=inv.pool))


def impl(sim, vm):
    return sim.registry.get(vm._moId)


def test_extra_config_access(inv, sim):
    vm = create(inv)
    with sim.lock:
        machine = impl(sim, vm)
        assert machine.extra_config("guestinfo.vice./common/id") == "id1"
        assert machine.extra_config("GUESTINFO.VICE./COMMON/ID") == "id1"  # .vmx keys are case-insensitive
        assert machine.extra_config("guestinfo.missing") is None
        items = machine.extra_config_items()
        assert items["common/name"] == "secret" and items["guestinfo.vice./common/id"] == "id1"
        version = machine.props["config"].changeVersion
    with sim.lock:
        machine.update_extra_config({"guestinfo.vice..sessions|x.status": "0", "common/name": ""})
        path = machine.vmx_path()
    assert vm.config.changeVersion != version
    extra = {o.key: o.value for o in vm.config.extraConfig}
    assert extra["guestinfo.vice..sessions|x.status"] == "0" and "common/name" not in extra
    with sim.lock:
        text = sim.datastores.read_file(path).decode()
    assert 'guestinfo.vice..sessions|x.status = "0"' in text and "common/name" not in text
    # a stale changeVersion from before the guest's write is a conflict, as on vSphere
    with pytest.raises(vim.fault.ConcurrentAccess):
        wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="x", changeVersion=version)))


def test_iso_paths_and_disks(inv, sim):
    vm = create(inv)
    name = vm.name  # (over HTTP: before taking the lock the server needs)
    with sim.lock:
        machine = impl(sim, vm)
        assert machine.iso_paths() == ["[LocalDS_0] iso/plain.iso"]
        (disk,) = machine.disks()
        label, path = disk
        assert label == "Hard disk 1" and path == f"{machine.home_dir()}/{name}.vmdk"
        assert disk.backing.fileName == path and disk.capacityInKB == 1024 and disk.key == 2000
        described = guest_vm.describe_disks(sim, machine)
    assert described[0]["file"] == path and described[0]["device_label"] == "Hard disk 1"


def test_guest_power_off(inv, sim):
    vm = create(inv)
    wait(vm.PowerOnVM_Task())
    with sim.lock:
        impl(sim, vm).guest_power_off()
    assert vm.runtime.powerState == "poweredOff" and vm.runtime.bootTime is None
    with sim.lock:
        impl(sim, vm).guest_power_off()  # a no-op when already off
    types = event_types(inv, vm)
    assert types.count("VmPoweredOffEvent") == 1


def test_shutdown_and_reboot_with_a_running_guest(inv, sim, monkeypatch):
    """ShutdownGuest / RebootGuest go to the guest supervisor; a guest that halts powers its VM off."""
    calls = []
    monkeypatch.setattr(sim.guests, "shutdown", lambda machine: (calls.append("shutdown"),
                                                                 machine.guest_power_off()))
    monkeypatch.setattr(sim.guests, "reboot", lambda machine: calls.append("reboot"))
    vm = create(inv)
    wait(vm.PowerOnVM_Task())
    with sim.lock:
        guest_vm.set_guest_state(impl(sim, vm), running=True)  # as the supervisor does once the guest reports
    assert vm.guest.toolsRunningStatus == "guestToolsRunning"
    boot = vm.runtime.bootTime
    vm.RebootGuest()
    assert vm.runtime.powerState == "poweredOn" and vm.runtime.bootTime == boot
    vm.ShutdownGuest()
    assert calls == ["reboot", "shutdown"]
    assert vm.runtime.powerState == "poweredOff"
    assert vm.guest.guestState == "notRunning"
    types = event_types(inv, vm)
    assert "VmGuestRebootEvent" in types and "VmGuestShutdownEvent" in types and "VmPoweredOffEvent" in types


def event_types(inv, vm) -> list[str]:
    spec = vim.event.EventFilterSpec(entity=vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self"))
    events = inv.content.eventManager.QueryEvents(spec)
    return [type(e).__name__.rpartition(".")[2] for e in sorted(events, key=lambda e: e.key)]


def test_lifecycle_events(inv, sim):
    vm = create(inv)
    old = vm.name
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="a")))
    wait(vm.Rename_Task(newName=old + "-r"))
    wait(vm.PowerOnVM_Task())
    wait(vm.ResetVM_Task())
    wait(vm.SuspendVM_Task())
    wait(vm.PowerOnVM_Task())
    wait(vm.PowerOffVM_Task())
    types = event_types(inv, vm)
    assert types == ["VmCreatedEvent", "VmReconfiguredEvent", "VmRenamedEvent", "VmPoweredOnEvent",
                     "VmResettingEvent", "VmSuspendedEvent", "VmResumingEvent", "VmPoweredOffEvent"]
    spec = vim.event.EventFilterSpec(entity=vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self"),
                                     eventTypeId=["VmRenamedEvent"])
    (renamed,) = inv.content.eventManager.QueryEvents(spec)
    assert renamed.oldName == old and renamed.newName == old + "-r" and renamed.vm.vm == vm
    wait(vm.Destroy_Task())
    spec = vim.event.EventFilterSpec(eventTypeId=["VmRemovedEvent"])
    assert any(e.vm.vm._moId == vm._moId for e in inv.content.eventManager.QueryEvents(spec))
