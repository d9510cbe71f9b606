"""Disks shared between VMs: ESX's locks (a disk open read-write in one running VM can't be opened by another, the
fault VIC's LockedDisks reads), multi-writer sharing, parent chains opened read-only, and what Destroy_Task deletes."""
from __future__ import annotations

import re
import uuid

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

pytestmark = pytest.mark.sim_only
VD = vim.vm.device


def wait(task):
    WaitForTask(task)
    return task.info.result


def unique(prefix="d"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def inv(si):
    content = si.RetrieveContent()
    dc = next(e for e in content.rootFolder.childEntity if e.name == "DC0")
    cluster = next(c for c in dc.hostFolder.childEntity if c.name == "DC0_C0")
    return type("Inv", (), dict(content=content, dc=dc, pool=cluster.resourcePool, folder=dc.vmFolder))


def ctrl():
    return VD.VirtualDeviceSpec(operation="add", device=VD.ParaVirtualSCSIController(key=-100, busNumber=0,
                                                                                     sharedBus="noSharing"))


def new_disk(capacity_kb=1024, parent=None, mode="persistent"):
    backing = VD.VirtualDisk.FlatVer2BackingInfo(fileName="", diskMode=mode, thinProvisioned=True)
    if parent is not None:
        backing.parent = VD.VirtualDisk.FlatVer2BackingInfo(fileName=parent, diskMode="persistent")
    return VD.VirtualDeviceSpec(operation="add", fileOperation="create", device=VD.VirtualDisk(
        key=-1, controllerKey=-100, capacityInKB=capacity_kb, backing=backing))


def existing_disk(path, mode="persistent", sharing=None, controller=-100):
    return VD.VirtualDeviceSpec(operation="add", device=VD.VirtualDisk(
        key=-2, controllerKey=controller, capacityInKB=0, backing=VD.VirtualDisk.FlatVer2BackingInfo(
            fileName=path, diskMode=mode, sharing=sharing)))


def create(inv, changes):
    spec = vim.vm.ConfigSpec(name=unique("vm"), guestId="otherGuest64", numCPUs=1, memoryMB=64,
                             files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"), deviceChange=changes)
    return wait(inv.folder.CreateVM_Task(config=spec, pool=inv.pool))


def disk_paths(vm):
    return [d.backing.fileName for d in vm.config.hardware.device if isinstance(d, VD.VirtualDisk)]


def exists(sim, path):
    with sim.lock:
        return sim.datastores.exists(path)


def test_a_disk_open_in_a_running_vm_is_locked(inv, sim):
    a = create(inv, [ctrl(), new_disk()])
    (shared,) = disk_paths(a)
    b = create(inv, [ctrl(), existing_disk(shared)])
    wait(a.PowerOnVM_Task())
    with pytest.raises(vim.fault.GenericVmConfigFault) as info:
        wait(b.PowerOnVM_Task())
    fault = info.value
    assert fault.reason == "Failed to lock the file"
    keys = [m.key for m in fault.faultMessage]
    assert "msg.fileio.lock" in keys and "msg.disk.noBackEnd" in keys
    backend = next(m for m in fault.faultMessage if m.key == "msg.disk.noBackEnd")
    assert re.fullmatch(r"/vmfs/volumes/[0-9a-f-]+/.+\.vmdk", backend.arg[0].value)
    assert backend.arg[0].value.endswith(shared.split("] ")[1])
    assert b.runtime.powerState == "poweredOff"
    # hot-adding it to a third running VM fails the same way
    c = create(inv, [ctrl()])
    wait(c.PowerOnVM_Task())
    with pytest.raises(vim.fault.GenericVmConfigFault):
        wait(c.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[existing_disk(shared, controller=1000)])))
    wait(c.PowerOffVM_Task())
    wait(a.PowerOffVM_Task())
    wait(b.PowerOnVM_Task())
    wait(b.PowerOffVM_Task())


def test_multi_writer_disks_are_shared(inv):
    a = create(inv, [ctrl(), new_disk()])
    (shared,) = disk_paths(a)
    disk = next(d for d in a.config.hardware.device if isinstance(d, VD.VirtualDisk))
    disk.backing.sharing = "sharingMultiWriter"
    wait(a.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[VD.VirtualDeviceSpec(operation="edit",
                                                                                      device=disk)])))
    b = create(inv, [ctrl(), existing_disk(shared, sharing="sharingMultiWriter")])
    wait(a.PowerOnVM_Task())
    wait(b.PowerOnVM_Task())
    wait(a.PowerOffVM_Task())
    wait(b.PowerOffVM_Task())


def test_parent_disks_are_shared_read_only(inv, sim):
    base = create(inv, [ctrl(), new_disk(2048)])
    (parent,) = disk_paths(base)
    x = create(inv, [ctrl(), new_disk(parent=parent)])
    y = create(inv, [ctrl(), new_disk(parent=parent)])
    (child,) = [d for d in x.config.hardware.device if isinstance(d, VD.VirtualDisk)]
    assert child.capacityInKB == 2048 and child.backing.parent.fileName == parent
    assert [len(u.fileKey) for u in x.layoutEx.disk[0].chain] == [2, 2]  # parent first, then the child
    wait(x.PowerOnVM_Task())
    wait(y.PowerOnVM_Task())  # both children read the parent
    with pytest.raises(vim.fault.GenericVmConfigFault):
        wait(base.PowerOnVM_Task())  # the parent is open read-only elsewhere: no read-write open
    wait(x.PowerOffVM_Task())
    wait(y.PowerOffVM_Task())
    # Destroy_Task deletes a VM's own disk, never the parent another disk depends on
    wait(x.Destroy_Task())
    assert not exists(sim, child.backing.fileName) and exists(sim, parent)
    wait(base.Destroy_Task())
    assert exists(sim, parent)  # y's disk still needs it
    wait(y.Destroy_Task())


def test_destroy_deletes_attached_disks_and_the_folder(inv, sim):
    other = create(inv, [ctrl(), new_disk()])
    (foreign,) = disk_paths(other)
    other_home = other.config.files.vmPathName.rpartition("/")[0]
    other.UnregisterVM()
    vm = create(inv, [ctrl(), new_disk(), existing_disk(foreign)])
    home = vm.config.files.vmPathName.rpartition("/")[0]
    wait(vm.Destroy_Task())
    assert not exists(sim, home)
    assert not exists(sim, foreign)  # vSphere deletes every attached disk (VIC detaches volumes first)
    assert exists(sim, other_home)


def test_independent_nonpersistent_disks_do_not_lock(inv):
    a = create(inv, [ctrl(), new_disk()])
    (shared,) = disk_paths(a)
    disk = next(d for d in a.config.hardware.device if isinstance(d, VD.VirtualDisk))
    disk.backing.diskMode = "independent_nonpersistent"
    wait(a.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[VD.VirtualDeviceSpec(operation="edit",
                                                                                      device=disk)])))
    b = create(inv, [ctrl(), existing_disk(shared, mode="independent_nonpersistent")])
    wait(a.PowerOnVM_Task())
    wait(b.PowerOnVM_Task())
    wait(a.PowerOffVM_Task())
    wait(b.PowerOffVM_Task())


def test_disk_grows_but_never_shrinks(inv, sim):
    vm = create(inv, [ctrl(), new_disk(1024)])
    disk = next(d for d in vm.config.hardware.device if isinstance(d, VD.VirtualDisk))
    disk.capacityInKB = 4096
    disk.capacityInBytes = None
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[VD.VirtualDeviceSpec(operation="edit",
                                                                                      device=disk)])))
    after = next(d for d in vm.config.hardware.device if isinstance(d, VD.VirtualDisk))
    assert after.capacityInKB == 4096 and after.capacityInBytes == 4096 * 1024
    path = after.backing.fileName
    with sim.lock:
        assert sim.datastores.disk_info(path).capacity_kb == 4096
    after.capacityInKB = 2048
    after.capacityInBytes = None
    with pytest.raises(vim.fault.InvalidDeviceOperation):
        wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[VD.VirtualDeviceSpec(operation="edit",
                                                                                           device=after)])))
