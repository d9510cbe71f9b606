"""The VirtualMachine lifecycle as vSphere does it: create with devices, reconfigure (extraConfig, disks with and
without file operations, NICs, serial ports), power transitions and their faults, guest operations without tools,
unregister / register, destroy.

Black-box: pyVmomi only. VSPHERE_DATACENTER / VSPHERE_DATASTORE pick the targets on a real vCenter.
"""
from __future__ import annotations

import re
import uuid

import pytest
from pyVmomi import vim, vmodl

from .helpers import datacenter, raises, resource_pool, unique, vmfs_datastore, wait
from .helpers import walk as _walk

VD = vim.vm.device
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAC_RE = re.compile(r"^00:50:56:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$")



@pytest.fixture(scope="module")
def env(si):
    content = si.RetrieveContent()
    dc = datacenter(si)
    ds = vmfs_datastore(dc)
    network = next((n for n in resource_pool(dc).owner.network if isinstance(n, vim.Network)
                    and not isinstance(n, vim.dvs.DistributedVirtualPortgroup)), None)
    folder = dc.vmFolder.CreateFolder(f"vsim-lifecycle-{uuid.uuid4().hex[:8]}")
    ns = type("Env", (), {})()
    ns.si, ns.content, ns.dc, ns.ds, ns.pool, ns.folder, ns.network = si, content, dc, ds, resource_pool(dc), \
        folder, network
    yield ns
    for vm in _walk(folder):
        if isinstance(vm, vim.VirtualMachine) and vm.runtime.powerState == "poweredOn":
            wait(vm.PowerOffVM_Task())
    wait(folder.Destroy_Task())



def basic_spec(env, name, **kw):
    return vim.vm.ConfigSpec(name=name, guestId="otherGuest64", numCPUs=1, memoryMB=64,
                             files=vim.vm.FileInfo(vmPathName=f"[{env.ds.name}]"), **kw)


def create(env, name=None, **kw):
    return wait(env.folder.CreateVM_Task(config=basic_spec(env, name or unique(), **kw), pool=env.pool))


def scsi_and_disk(capacity_kb=1024, file_name=""):
    return [
        VD.VirtualDeviceSpec(operation="add", device=VD.ParaVirtualSCSIController(
            key=-100, busNumber=0, sharedBus="noSharing")),
        VD.VirtualDeviceSpec(operation="add", fileOperation="create", device=VD.VirtualDisk(
            key=-101, controllerKey=-100, unitNumber=0, capacityInKB=capacity_kb,
            backing=VD.VirtualDisk.FlatVer2BackingInfo(fileName=file_name, diskMode="persistent",
                                                       thinProvisioned=True))),
    ]


def devices(vm, cls):
    return [d for d in vm.config.hardware.device if isinstance(d, cls)]


def files_in(env, folder_path: str) -> set[str]:
    """File names in a datastore folder, through the datastore browser."""
    try:
        result = wait(env.ds.browser.SearchDatastore_Task(
            datastorePath=folder_path, searchSpec=vim.host.DatastoreBrowser.SearchSpec(matchPattern=["*"])))
    except vim.fault.FileNotFound:
        return set()
    return {f.path for f in result.file or []}


def home_of(vm) -> str:
    return vm.config.files.vmPathName.rpartition("/")[0]


# -- create ---------------------------------------------------------------------------------------------------------
def test_create_with_devices(env):
    changes = scsi_and_disk(2048)
    changes.append(VD.VirtualDeviceSpec(operation="add", device=VD.VirtualSerialPort(
        key=-200, yieldOnPoll=True, backing=VD.VirtualSerialPort.URIBackingInfo(
            serviceURI="tcp://127.0.0.1:2379", proxyURI="telnet://0.0.0.0:2377", direction="client"),
        connectable=VD.VirtualDevice.ConnectInfo(startConnected=False, allowGuestControl=True, connected=False))))
    if env.network is not None:
        changes.append(VD.VirtualDeviceSpec(operation="add", device=VD.VirtualVmxnet3(
            key=-300, addressType="generated", backing=VD.VirtualEthernetCard.NetworkBackingInfo(
                deviceName=env.network.name, network=env.network))))
    name = unique("dev")
    vm = create(env, name, deviceChange=changes, extraConfig=[
        vim.option.OptionValue(key="guestinfo.vice./common/id", value="abc"),
        vim.option.OptionValue(key="common/name", value="hidden")])
    config = vm.config
    assert UUID_RE.match(config.uuid) and UUID_RE.match(config.instanceUuid)
    assert config.files.vmPathName == f"[{env.ds.name}] {name}/{name}.vmx"
    assert vm.summary.config.vmPathName == config.files.vmPathName
    assert config.hardware.numCPU == 1 and config.hardware.memoryMB == 64
    extra = {o.key: o.value for o in config.extraConfig}
    assert extra["guestinfo.vice./common/id"] == "abc" and extra["common/name"] == "hidden"
    (ctrl,) = devices(vm, VD.ParaVirtualSCSIController)
    (disk,) = devices(vm, VD.VirtualDisk)
    assert disk.controllerKey == ctrl.key and disk.unitNumber == 0 and disk.key > 0
    assert disk.capacityInKB == 2048
    assert disk.backing.fileName == f"[{env.ds.name}] {name}/{name}.vmdk"
    assert disk.deviceInfo.label == "Hard disk 1"
    (serial,) = devices(vm, VD.VirtualSerialPort)
    assert serial.backing.serviceURI == "tcp://127.0.0.1:2379" and serial.backing.direction == "client"
    assert serial.connectable.startConnected is False and serial.connectable.connected is False
    if env.network is not None:
        (nic,) = devices(vm, VD.VirtualEthernetCard)
        assert MAC_RE.match(nic.macAddress) and nic.addressType == "assigned"
        assert nic.backing.deviceName == env.network.name
        assert env.network in vm.network
    assert env.ds in vm.datastore
    assert vm.resourcePool == env.pool and vm.parent == env.folder
    assert vm.runtime.powerState == "poweredOff" and vm.runtime.host is not None
    assert {f"{name}.vmx", f"{name}.vmdk"} <= files_in(env, home_of(vm))


def test_macs_are_unique(env):
    if env.network is None:
        pytest.skip("no standard network")
    nic = VD.VirtualDeviceSpec(operation="add", device=VD.VirtualVmxnet3(
        key=-1, addressType="generated", backing=VD.VirtualEthernetCard.NetworkBackingInfo(
            deviceName=env.network.name, network=env.network)))
    a = create(env, deviceChange=[nic])
    b = create(env, deviceChange=[nic])
    assert devices(a, VD.VirtualEthernetCard)[0].macAddress != devices(b, VD.VirtualEthernetCard)[0].macAddress


# -- reconfigure ----------------------------------------------------------------------------------------------------
def test_extra_config_set_update_and_delete_by_empty_value(env):
    vm = create(env)
    versions = [vm.config.changeVersion]
    opt = vim.option.OptionValue
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[opt(key="guestinfo.a", value="1"),
                                                                opt(key="guestinfo.b", value="2")])))
    versions.append(vm.config.changeVersion)
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[opt(key="guestinfo.a", value="10"),
                                                                opt(key="guestinfo.b", value="")])))
    versions.append(vm.config.changeVersion)
    extra = {o.key: o.value for o in vm.config.extraConfig}
    assert extra.get("guestinfo.a") == "10" and "guestinfo.b" not in extra
    assert len(set(versions)) == 3, "every reconfigure changes config.changeVersion"


def test_reconfigure_name_keeps_names_in_step(env):
    vm = create(env)
    new = unique("renamed")
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(name=new)))
    assert vm.name == new and vm.config.name == new and vm.summary.config.name == new
    assert new not in vm.config.files.vmPathName  # the folder keeps its name


def test_disk_add_detach_attach_and_destroy(env):
    vm = create(env, deviceChange=scsi_and_disk())
    home = home_of(vm)
    (ctrl,) = devices(vm, VD.ParaVirtualSCSIController)
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[VD.VirtualDeviceSpec(
        operation="add", fileOperation="create", device=VD.VirtualDisk(
            key=-1, controllerKey=ctrl.key, capacityInKB=4096, backing=VD.VirtualDisk.FlatVer2BackingInfo(
                fileName="", diskMode="independent_persistent", thinProvisioned=True)))])))
    disks = devices(vm, VD.VirtualDisk)
    assert len(disks) == 2
    second = next(d for d in disks if d.capacityInKB == 4096)
    assert second.unitNumber == 1 and second.backing.diskMode == "independent_persistent"
    path = second.backing.fileName
    assert path.startswith(home + "/") and path != disks[0].backing.fileName
    # detach: the file stays
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[
        VD.VirtualDeviceSpec(operation="remove", device=second)])))
    assert len(devices(vm, VD.VirtualDisk)) == 1
    assert path.rpartition("/")[2] in files_in(env, home)
    # attach the existing file again (no fileOperation): its capacity comes from the file
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[VD.VirtualDeviceSpec(
        operation="add", device=VD.VirtualDisk(key=-2, controllerKey=ctrl.key, unitNumber=3, capacityInKB=0,
                                               backing=VD.VirtualDisk.FlatVer2BackingInfo(
                                                   fileName=path, diskMode="persistent")))])))
    again = next(d for d in devices(vm, VD.VirtualDisk) if d.backing.fileName == path)
    assert again.capacityInKB == 4096 and again.unitNumber == 3
    # remove with destroy: the file goes
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[
        VD.VirtualDeviceSpec(operation="remove", fileOperation="destroy", device=again)])))
    assert path.rpartition("/")[2] not in files_in(env, home)


def test_attaching_a_missing_disk_is_file_not_found(env):
    vm = create(env, deviceChange=scsi_and_disk())
    (ctrl,) = devices(vm, VD.ParaVirtualSCSIController)
    missing = f"{home_of(vm)}/missing.vmdk"
    raises(vim.fault.FileNotFound, vm.ReconfigVM_Task, spec=vim.vm.ConfigSpec(deviceChange=[VD.VirtualDeviceSpec(
        operation="add", device=VD.VirtualDisk(key=-2, controllerKey=ctrl.key, capacityInKB=0,
                                               backing=VD.VirtualDisk.FlatVer2BackingInfo(
                                                   fileName=missing, diskMode="persistent")))]))
    assert len(devices(vm, VD.VirtualDisk)) == 1


def test_a_failed_reconfigure_changes_nothing(env):
    vm = create(env)
    before = vm.config.changeVersion
    raises(vim.fault.InvalidController, vm.ReconfigVM_Task, spec=vim.vm.ConfigSpec(
        annotation="never", deviceChange=[VD.VirtualDeviceSpec(operation="add", fileOperation="create",
                                                               device=VD.VirtualDisk(
            key=-1, controllerKey=4242, capacityInKB=1024,
            backing=VD.VirtualDisk.FlatVer2BackingInfo(fileName="", diskMode="persistent")))]))
    assert vm.config.changeVersion == before and vm.config.annotation != "never"


def test_removing_a_device_that_is_not_there_is_invalid_device_spec(env):
    vm = create(env)
    fault = raises(vim.fault.InvalidDeviceSpec, vm.ReconfigVM_Task, spec=vim.vm.ConfigSpec(deviceChange=[
        VD.VirtualDeviceSpec(operation="remove", device=VD.VirtualDisk(key=2999, capacityInKB=1))]))
    assert fault.deviceIndex == 0


def test_nic_edit_keeps_its_mac(env):
    if env.network is None:
        pytest.skip("no standard network")
    vm = create(env, deviceChange=[VD.VirtualDeviceSpec(operation="add", device=VD.VirtualVmxnet3(
        key=-1, addressType="generated", backing=VD.VirtualEthernetCard.NetworkBackingInfo(
            deviceName=env.network.name, network=env.network)))])
    (nic,) = devices(vm, VD.VirtualEthernetCard)
    nic.connectable = VD.VirtualDevice.ConnectInfo(startConnected=False, allowGuestControl=True, connected=False)
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[VD.VirtualDeviceSpec(operation="edit",
                                                                                      device=nic)])))
    (after,) = devices(vm, VD.VirtualEthernetCard)
    assert after.macAddress == nic.macAddress and after.connectable.startConnected is False


def test_serial_port_edit_and_remove(env):
    vm = create(env, deviceChange=[VD.VirtualDeviceSpec(operation="add", device=VD.VirtualSerialPort(
        key=-1, yieldOnPoll=True, backing=VD.VirtualSerialPort.URIBackingInfo(
            serviceURI="tcp://127.0.0.1:2379", proxyURI="telnet://0.0.0.0:2377", direction="client")))])
    (port,) = devices(vm, VD.VirtualSerialPort)
    port.backing.proxyURI = "telnet://127.0.0.2:2377"
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[VD.VirtualDeviceSpec(operation="edit",
                                                                                      device=port)])))
    assert devices(vm, VD.VirtualSerialPort)[0].backing.proxyURI == "telnet://127.0.0.2:2377"
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[VD.VirtualDeviceSpec(operation="remove",
                                                                                      device=port)])))
    assert devices(vm, VD.VirtualSerialPort) == []


# -- power --------------------------------------------------------------------------------------------------------
def test_power_transitions_and_invalid_power_state(env):
    vm = create(env)
    assert vm.runtime.bootTime is None
    wait(vm.PowerOnVM_Task())
    assert vm.runtime.powerState == "poweredOn" == vm.summary.runtime.powerState
    assert vm.runtime.bootTime is not None
    fault = raises(vim.fault.InvalidPowerState, vm.PowerOnVM_Task)
    assert fault.requestedState == "poweredOn" and fault.existingState == "poweredOn"
    fault = raises(vim.fault.InvalidPowerState, vm.Destroy_Task)
    assert fault.existingState == "poweredOn"
    raises(vim.fault.InvalidPowerState, vm.UnregisterVM)
    wait(vm.ResetVM_Task())
    assert vm.runtime.powerState == "poweredOn"
    wait(vm.PowerOffVM_Task())
    assert vm.runtime.powerState == "poweredOff" == vm.summary.runtime.powerState
    assert vm.runtime.bootTime is None
    fault = raises(vim.fault.InvalidPowerState, vm.PowerOffVM_Task)
    assert fault.requestedState == "poweredOff" and fault.existingState == "poweredOff"
    fault = raises(vim.fault.InvalidPowerState, vm.ResetVM_Task)
    assert fault.existingState == "poweredOff"


def test_suspend_and_resume(env):
    vm = create(env)
    raises(vim.fault.InvalidPowerState, vm.SuspendVM_Task)
    wait(vm.PowerOnVM_Task())
    wait(vm.SuspendVM_Task())
    assert vm.runtime.powerState == "suspended"
    wait(vm.PowerOnVM_Task())
    assert vm.runtime.powerState == "poweredOn"
    wait(vm.PowerOffVM_Task())


def test_guest_shutdown_needs_a_running_guest(env):
    vm = create(env)
    fault = raises(vim.fault.InvalidPowerState, vm.ShutdownGuest)
    assert fault.existingState == "poweredOff"
    wait(vm.PowerOnVM_Task())
    try:
        assert vm.guest.toolsRunningStatus != "guestToolsRunning"  # nothing boots from an empty CD-ROM
        raises(vim.fault.ToolsUnavailable, vm.ShutdownGuest)
        raises(vim.fault.ToolsUnavailable, vm.RebootGuest)
    finally:
        wait(vm.PowerOffVM_Task())


def test_hot_cpu_change_needs_hot_add(env):
    vm = create(env)
    wait(vm.PowerOnVM_Task())
    try:
        raises(vim.fault.InvalidPowerState, vm.ReconfigVM_Task, spec=vim.vm.ConfigSpec(numCPUs=2))
        wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[vim.option.OptionValue(
            key="guestinfo.running", value="yes")])))  # extraConfig may change while the VM runs
    finally:
        wait(vm.PowerOffVM_Task())
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(numCPUs=2, memoryMB=128)))
    assert vm.config.hardware.numCPU == 2 and vm.summary.config.numCpu == 2
    assert vm.config.hardware.memoryMB == 128 and vm.summary.config.memorySizeMB == 128


# -- leaving and coming back --------------------------------------------------------------------------------------
def test_unregister_keeps_files_and_register_rebuilds_the_vm(env):
    name = unique("reg")
    vm = create(env, name, deviceChange=scsi_and_disk(3072), extraConfig=[
        vim.option.OptionValue(key="guestinfo.vice./common/id", value="xyz")])
    config = vm.config
    path, bios, disk = config.files.vmPathName, config.uuid, devices(vm, VD.VirtualDisk)[0]
    vm.UnregisterVM()
    assert name not in [c.name for c in env.folder.childEntity]
    assert f"{name}.vmx" in files_in(env, home_of_path(path))
    again = wait(env.folder.RegisterVM_Task(path=path, asTemplate=False, pool=env.pool))
    assert again.name == name and again.config.files.vmPathName == path and again.config.uuid == bios
    assert {o.key: o.value for o in again.config.extraConfig}["guestinfo.vice./common/id"] == "xyz"
    (rdisk,) = devices(again, VD.VirtualDisk)
    assert rdisk.backing.fileName == disk.backing.fileName and rdisk.capacityInKB == 3072
    assert rdisk.key == disk.key and rdisk.unitNumber == disk.unitNumber
    raises(vim.fault.AlreadyExists, env.folder.RegisterVM_Task, path=path, asTemplate=False, pool=env.pool)


def home_of_path(path: str) -> str:
    return path.rpartition("/")[0]


def test_register_with_a_new_name(env):
    name = unique("orig")
    vm = create(env, name)
    path = vm.config.files.vmPathName
    vm.UnregisterVM()
    new = unique("new")
    again = wait(env.folder.RegisterVM_Task(path=path, name=new, asTemplate=False, pool=env.pool))
    assert again.name == new and again.config.name == new


def test_destroy_removes_the_vm_and_its_files(env):
    name = unique("gone")
    vm = create(env, name, deviceChange=scsi_and_disk())
    home = home_of(vm)
    assert files_in(env, home)
    wait(vm.Destroy_Task())
    assert name not in [c.name for c in env.folder.childEntity]
    assert files_in(env, home) == set()
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        vm.name  # noqa: B018 - reading the property is the test


# -- snapshots ------------------------------------------------------------------------------------------------------
def test_snapshot_revert_and_remove(env):
    opt = vim.option.OptionValue
    vm = create(env, extraConfig=[opt(key="guestinfo.version", value="1")])
    wait(vm.PowerOnVM_Task())
    first = wait(vm.CreateSnapshot_Task(name="before-upgrade", description="v1", memory=False, quiesce=False))
    assert vm.snapshot.currentSnapshot == first and vm.rootSnapshot == [first]
    (node,) = vm.snapshot.rootSnapshotList
    assert node.name == "before-upgrade" and node.description == "v1" and node.state == "poweredOn"
    assert first.vm == vm and {o.key: o.value for o in first.config.extraConfig}["guestinfo.version"] == "1"
    wait(vm.PowerOffVM_Task())
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[opt(key="guestinfo.version", value="2")])))
    second = wait(vm.CreateSnapshot_Task(name="after", memory=False, quiesce=False))
    assert vm.snapshot.currentSnapshot == second
    assert vm.snapshot.rootSnapshotList[0].childSnapshotList[0].snapshot == second
    assert first.childSnapshot == [second]
    wait(first.RevertToSnapshot_Task())
    assert {o.key: o.value for o in vm.config.extraConfig}["guestinfo.version"] == "1"
    assert vm.runtime.powerState == "poweredOff"  # taken without memory: reverted VMs are off
    assert vm.snapshot.currentSnapshot == first
    wait(vm.RevertToCurrentSnapshot_Task())
    wait(first.RemoveSnapshot_Task(removeChildren=False))
    assert vm.rootSnapshot == [second] and vm.snapshot.rootSnapshotList[0].name == "after"
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        first.config  # noqa: B018
    wait(vm.RemoveAllSnapshots_Task())
    assert vm.snapshot is None and vm.rootSnapshot == []
    with pytest.raises(vmodl.MethodFault):
        wait(vm.RevertToCurrentSnapshot_Task())
