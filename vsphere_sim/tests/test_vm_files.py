"""A VM's files on its datastore: the .vmx in real vmx syntax (rewritten on every change), the .nvram, vmware.log
with power-operation lines, the swap file while powered on, layoutEx/storage, and RegisterVM_Task rebuilding a VM
from its .vmx."""
from __future__ import annotations

import uuid

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from vsphere_sim.objects import vmx

pytestmark = pytest.mark.sim_only
VD = vim.vm.device


def wait(task):
    WaitForTask(task)
    return task.info.result


def unique(prefix="f"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def inv(si, vsphere):
    sim = vsphere.sim
    content = si.RetrieveContent()
    dc = next(e for e in content.rootFolder.childEntity if e.name == "DC0")
    cluster = next(c for c in dc.hostFolder.childEntity if c.name == "DC0_C0")
    net = next(n for n in dc.network if n.name == "VM Network")
    pg = next(n for n in dc.network if n.name == "DC0_DVPG0")
    with sim.lock:
        sim.datastores.write_file("[LocalDS_0] iso/boot.iso", b"not really an ISO", create_parents=True)
    return type("Inv", (), dict(content=content, dc=dc, pool=cluster.resourcePool, folder=dc.vmFolder, net=net,
                                pg=pg))


def full_spec(inv, name, path="[LocalDS_0]"):
    """A VM as VIC builds a container VM: PVSCSI + disk, IDE CD-ROM with an ISO, serial ports, two NICs."""
    return vim.vm.ConfigSpec(
        name=name, guestId="otherGuest64", numCPUs=2, memoryMB=512, files=vim.vm.FileInfo(vmPathName=path),
        extraConfig=[vim.option.OptionValue(key="guestinfo.vice./common/id", value="abc|\"quoted\"\nline"),
                     vim.option.OptionValue(key="common/name", value="hidden"),
                     vim.option.OptionValue(key="serial0.hardwareFlowControl", value="TRUE")],
        deviceChange=[
            VD.VirtualDeviceSpec(operation="add", device=VD.ParaVirtualSCSIController(
                key=100, busNumber=0, sharedBus="noSharing")),
            VD.VirtualDeviceSpec(operation="add", device=VD.VirtualIDEController(key=200, busNumber=0)),
            VD.VirtualDeviceSpec(operation="add", fileOperation="create", device=VD.VirtualDisk(
                key=-1, controllerKey=100, unitNumber=0, capacityInKB=2048,
                backing=VD.VirtualDisk.FlatVer2BackingInfo(fileName="", diskMode="persistent",
                                                           thinProvisioned=True))),
            VD.VirtualDeviceSpec(operation="add", device=VD.VirtualCdrom(
                key=-2, controllerKey=200, unitNumber=0,
                backing=VD.VirtualCdrom.IsoBackingInfo(fileName="[LocalDS_0] iso/boot.iso"),
                connectable=VD.VirtualDevice.ConnectInfo(startConnected=True, allowGuestControl=False,
                                                         connected=False))),
            VD.VirtualDeviceSpec(operation="add", device=VD.VirtualSerialPort(
                key=-3, yieldOnPoll=True, backing=VD.VirtualSerialPort.URIBackingInfo(
                    serviceURI="tcp://127.0.0.1:2379", proxyURI="telnet://0.0.0.0:2377", direction="client"),
                connectable=VD.VirtualDevice.ConnectInfo(startConnected=False, allowGuestControl=True,
                                                         connected=False))),
            VD.VirtualDeviceSpec(operation="add", device=VD.VirtualSerialPort(
                key=-4, yieldOnPoll=False, backing=VD.VirtualSerialPort.FileBackingInfo(
                    fileName=f"{path} {name}/tether.debug" if path == "[LocalDS_0]" else path))),
            VD.VirtualDeviceSpec(operation="add", device=VD.VirtualVmxnet3(
                key=-5, addressType="generated", slotInfo=VD.VirtualDevice.PciBusSlotInfo(pciSlotNumber=1184),
                backing=VD.VirtualEthernetCard.NetworkBackingInfo(deviceName="VM Network", network=inv.net))),
            VD.VirtualDeviceSpec(operation="add", device=VD.VirtualVmxnet3(
                key=-6, addressType="generated", backing=VD.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
                    port=vim.dvs.PortConnection(switchUuid=inv.pg.config.distributedVirtualSwitch.uuid,
                                                portgroupKey=inv.pg.key)))),
        ])


def create(inv, name, spec=None):
    return wait(inv.folder.CreateVM_Task(config=spec or full_spec(inv, name), pool=inv.pool))


# (read VM properties over HTTP before taking sim.lock: the server needs the lock to answer)
def read_vmx(sim, vm) -> dict[str, str]:
    path = vm.config.files.vmPathName
    with sim.lock:
        data = sim.datastores.read_file(path)
    return dict(vmx.loads(data))


def listing(sim, vm) -> set[str]:
    home = vm.config.files.vmPathName.rpartition("/")[0]
    with sim.lock:
        return set(sim.datastores.list_dir(home))


# -- the .vmx format ------------------------------------------------------------------------------------------------
def test_vmx_quoting_round_trips():
    values = [("a", 'say "hi" | bye\nnext\ttab'), ("guestinfo.vice./x|y~", "é ü"), ("empty", "")]
    assert vmx.loads(vmx.dumps(values)) == values
    text = vmx.dumps([("k", 'a"b|c\n')]).decode()
    assert 'k = "a|22b|7Cc|0A"' in text and text.startswith('.encoding = "UTF-8"\n')


def test_vmx_reader_tolerates_comments_and_bare_values():
    data = b'# comment\n.encoding = "UTF-8"\n\nnumvcpus = 2\nbroken line\ndisplayName = "x y"\n'
    assert vmx.loads(data) == [("numvcpus", "2"), ("displayName", "x y")]


# -- create ---------------------------------------------------------------------------------------------------------
def test_vmx_reflects_the_config(inv, sim):
    name = unique("vmx")
    vm = create(inv, name)
    v = read_vmx(sim, vm)
    assert v["displayName"] == name and v["guestOS"] == "otherguest64"
    assert v["numvcpus"] == "2" and v["memSize"] == "512" and v["virtualHW.version"] == "21"
    assert vmx.parse_uuid(v["uuid.bios"]) == vm.config.uuid and vmx.parse_uuid(v["vc.uuid"]) == vm.config.instanceUuid
    assert v["guestinfo.vice./common/id"] == 'abc|"quoted"\nline' and v["common/name"] == "hidden"
    assert v["scsi0.virtualDev"] == "pvscsi" and v["scsi0:0.fileName"] == f"{name}.vmdk"
    assert v["scsi0:0.deviceType"] == "scsi-hardDisk"
    assert v["ide0:0.deviceType"] == "cdrom-image" and v["ide0:0.fileName"] == "/vmfs/volumes/LocalDS_0/iso/boot.iso"
    assert v["serial0.fileType"] == "network" and v["serial0.fileName"] == "tcp://127.0.0.1:2379"
    assert v["serial0.vspc"] == "telnet://0.0.0.0:2377" and v["serial0.network.endPoint"] == "client"
    assert v["serial0.yieldOnMsrRead"] == "TRUE" and v["serial0.startConnected"] == "FALSE"
    assert v["serial1.fileType"] == "file" and v["serial1.fileName"] == "tether.debug"
    nics = [d for d in vm.config.hardware.device if isinstance(d, VD.VirtualEthernetCard)]
    assert v["ethernet0.virtualDev"] == "vmxnet3" and v["ethernet0.networkName"] == "VM Network"
    assert v["ethernet0.addressType"] == "vpx" and v["ethernet0.generatedAddress"] == nics[0].macAddress
    assert v["ethernet0.pciSlotNumber"] == "1184" and nics[0].slotInfo.pciSlotNumber == 1184
    assert v["ethernet1.dvs.portgroupId"] == inv.pg.key and v["ethernet1.dvs.portId"] == nics[1].backing.port.portKey
    assert v["nvram"] == f"{name}.nvram"
    assert {f"{name}.vmx", f"{name}.nvram", f"{name}.vmdk"} <= listing(sim, vm)
    assert "serial0.hardwareFlowControl" in {o.key for o in vm.config.extraConfig}


def test_vmx_is_rewritten_on_every_change(inv, sim):
    vm = create(inv, unique("rw"))
    opt = vim.option.OptionValue
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[opt(key="guestinfo.x", value="1"),
                                                                opt(key="common/name", value="")])))
    v = read_vmx(sim, vm)
    assert v["guestinfo.x"] == "1" and "common/name" not in v
    new = unique("renamed")
    wait(vm.Rename_Task(newName=new))
    assert read_vmx(sim, vm)["displayName"] == new
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(name=unique("again"), numCPUs=4)))
    v = read_vmx(sim, vm)
    assert v["displayName"] == vm.name and v["numvcpus"] == "4"


def test_power_operations_write_vmware_log_and_swap(inv, sim):
    vm = create(inv, unique("log"))
    swap = f"{vm.config.files.vmPathName.rpartition('/')[2][:-4]}-{vm.config.instanceUuid[:8]}.vswp"
    wait(vm.PowerOnVM_Task())
    assert swap in listing(sim, vm)
    assert any(f.type == "swap" for f in vm.layoutEx.file)
    cdrom = next(d for d in vm.config.hardware.device if isinstance(d, VD.VirtualCdrom))
    serial = next(d for d in vm.config.hardware.device if isinstance(d, VD.VirtualSerialPort))
    assert cdrom.connectable.connected is True and serial.connectable.connected is False  # startConnected
    wait(vm.ResetVM_Task())
    wait(vm.PowerOffVM_Task())
    assert swap not in listing(sim, vm)
    assert cdrom.key and not next(d for d in vm.config.hardware.device
                                  if isinstance(d, VD.VirtualCdrom)).connectable.connected
    log_path = vm.config.files.vmPathName.rpartition("/")[0] + "/vmware.log"
    with sim.lock:
        log = sim.datastores.read_file(log_path).decode()
    lines = [line for line in log.splitlines() if " vmx - " in line]
    assert [line.split(" vmx - ")[1].split(" ")[0] for line in lines][:4] == ["Power", "Reset:", "Power", "Powering"]


def test_layout_storage_and_files(inv, sim):
    vm = create(inv, unique("lay"))
    types = {f.type for f in vm.layoutEx.file}
    assert {"config", "nvram", "diskDescriptor", "diskExtent"} <= types
    (disk_layout,) = vm.layoutEx.disk
    disk = next(d for d in vm.config.hardware.device if isinstance(d, VD.VirtualDisk))
    assert disk_layout.key == disk.key and len(disk_layout.chain) == 1
    assert vm.layout.disk[0].diskFile == [disk.backing.fileName]
    assert vm.storage.perDatastoreUsage[0].datastore.name == "LocalDS_0"
    assert vm.summary.storage.committed > 0 and vm.summary.storage.uncommitted > 0
    home = vm.config.files.vmPathName.rpartition("/")[0] + "/"
    assert vm.config.files.logDirectory == home and vm.config.files.snapshotDirectory == home
    assert [d.name for d in vm.datastore] == ["LocalDS_0"]
    assert vm.config.datastoreUrl[0].name == "LocalDS_0"
    assert vm.summary.config.numVirtualDisks == 1 and vm.summary.config.numEthernetCards == 2


def test_explicit_path_and_disk_name(inv, sim):
    name = unique("exp")
    spec = vim.vm.ConfigSpec(name=name, guestId="otherGuest64", files=vim.vm.FileInfo(
        vmPathName=f"[LocalDS_0] {name}-dir/custom.vmx"), deviceChange=[
        VD.VirtualDeviceSpec(operation="add", device=VD.VirtualLsiLogicController(key=-1, busNumber=0,
                                                                                  sharedBus="noSharing")),
        VD.VirtualDeviceSpec(operation="add", fileOperation="create", device=VD.VirtualDisk(
            key=-2, controllerKey=-1, capacityInKB=1024, backing=VD.VirtualDisk.FlatVer2BackingInfo(
                fileName=f"[LocalDS_0] {name}-dir/root.vmdk", diskMode="persistent"))),
        VD.VirtualDeviceSpec(operation="add", fileOperation="create", device=VD.VirtualDisk(
            key=-3, controllerKey=-1, capacityInKB=1024, backing=VD.VirtualDisk.FlatVer2BackingInfo(
                fileName="[LocalDS_0]", diskMode="persistent")))])
    vm = create(inv, name, spec)
    assert vm.config.files.vmPathName == f"[LocalDS_0] {name}-dir/custom.vmx"
    files = sorted(d.backing.fileName for d in vm.config.hardware.device if isinstance(d, VD.VirtualDisk))
    assert files == [f"[LocalDS_0] {name}-dir/custom.vmdk", f"[LocalDS_0] {name}-dir/root.vmdk"]
    assert {"custom.vmx", "custom.nvram", "custom.vmdk", "root.vmdk"} <= listing(sim, vm)


def test_failed_create_leaves_nothing_behind(inv, sim):
    name = unique("fail")
    spec = full_spec(inv, name)
    spec.deviceChange.append(VD.VirtualDeviceSpec(operation="add", device=VD.VirtualDisk(
        key=-9, controllerKey=100, capacityInKB=1, backing=VD.VirtualDisk.FlatVer2BackingInfo(
            fileName="[LocalDS_0] nowhere/missing.vmdk", diskMode="persistent"))))
    with pytest.raises(vim.fault.FileNotFound):
        create(inv, name, spec)
    with sim.lock:
        assert not sim.datastores.exists(f"[LocalDS_0] {name}")
    assert name not in [c.name for c in inv.folder.childEntity]


def test_vsan_vm_lives_in_a_namespace(inv, sim):
    name = unique("vsan")
    spec = vim.vm.ConfigSpec(name=name, guestId="otherGuest64", files=vim.vm.FileInfo(vmPathName="[vsanDatastore]"),
                             deviceChange=full_spec(inv, name).deviceChange[:3])
    vm = create(inv, name, spec)
    top = vm.config.files.vmPathName.split("] ")[1].split("/")[0]
    uuid.UUID(top)  # the namespace shows by its UUID
    assert vm.config.files.vmPathName.endswith(f"/{name}.vmx")
    disk = next(d for d in vm.config.hardware.device if isinstance(d, VD.VirtualDisk))
    assert disk.backing.fileName == f"[vsanDatastore] {top}/{name}.vmdk"
    wait(vm.Destroy_Task())


# -- RegisterVM_Task ------------------------------------------------------------------------------------------------
def _device_view(vm):
    out = []
    for d in vm.config.hardware.device:
        backing = d.backing
        out.append((type(d).__name__, d.key, d.controllerKey, d.unitNumber, getattr(d, "macAddress", None),
                    getattr(backing, "fileName", None), getattr(backing, "deviceName", None),
                    getattr(backing, "serviceURI", None), getattr(backing, "proxyURI", None),
                    getattr(getattr(backing, "port", None), "portKey", None),
                    getattr(d, "capacityInKB", None), d.deviceInfo.label,
                    d.connectable.startConnected if d.connectable else None,
                    d.slotInfo.pciSlotNumber if getattr(d, "slotInfo", None) else None,
                    tuple(sorted(d.device or [])) if isinstance(d, VD.VirtualController) else None))
    return sorted(out, key=lambda t: t[1])


def test_register_rebuilds_the_vm_from_its_vmx(inv, sim):
    name = unique("reg")
    vm = create(inv, name)
    before = (vm.config.uuid, vm.config.instanceUuid, vm.config.hardware.numCPU, vm.config.hardware.memoryMB,
              vm.config.guestId, sorted((o.key, o.value) for o in vm.config.extraConfig), _device_view(vm))
    path = vm.config.files.vmPathName
    vm.UnregisterVM()
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        vm.name  # noqa: B018
    again = wait(inv.folder.RegisterVM_Task(path=path, asTemplate=False, pool=inv.pool))
    after = (again.config.uuid, again.config.instanceUuid, again.config.hardware.numCPU,
             again.config.hardware.memoryMB, again.config.guestId,
             sorted((o.key, o.value) for o in again.config.extraConfig), _device_view(again))
    assert after[:6] == before[:6]
    for old, new in zip(before[6], after[6]):
        assert old == new
    assert len(before[6]) == len(after[6])
    assert again.name == name and set(again.network) == {inv.net, inv.pg}


def test_register_faults(inv, sim):
    with pytest.raises(vim.fault.FileNotFound):
        wait(inv.folder.RegisterVM_Task(path="[LocalDS_0] none/none.vmx", asTemplate=False, pool=inv.pool))
    with pytest.raises(vim.fault.InvalidDatastore):
        wait(inv.folder.RegisterVM_Task(path="[nope] none/none.vmx", asTemplate=False, pool=inv.pool))
    name = unique("dupreg")
    vm = create(inv, name)
    path = vm.config.files.vmPathName
    vm.UnregisterVM()
    create(inv, name, full_spec(inv, name, f"[LocalDS_0] {name}-2/{name}.vmx"))  # another VM took the name
    fault = pytest.raises(vim.fault.DuplicateName, lambda: wait(inv.folder.RegisterVM_Task(
        path=path, asTemplate=False, pool=inv.pool))).value
    assert fault.name == name and fault.object == inv.folder


def test_register_a_hand_written_vmx(inv, sim):
    name = unique("hand")
    text = (f'.encoding = "UTF-8"\ndisplayName = "{name}"\nguestOS = "ubuntu64guest"\nnumvcpus = "2"\n'
            f'memSize = "256"\nguestinfo.hello = "w|22orld"\nethernet0.present = "TRUE"\n'
            f'ethernet0.virtualDev = "e1000"\nethernet0.networkName = "VM Network"\n'
            f'ethernet0.addressType = "static"\nethernet0.address = "00:50:56:01:02:03"\n').encode()
    with sim.lock:
        sim.datastores.make_dir(f"[LocalDS_0] {name}")
        sim.datastores.write_file(f"[LocalDS_0] {name}/{name}.vmx", text)
    vm = wait(inv.folder.RegisterVM_Task(path=f"[LocalDS_0] {name}/{name}.vmx", asTemplate=False, pool=inv.pool))
    assert vm.name == name and vm.config.guestId == "ubuntu64Guest" and vm.config.hardware.numCPU == 2
    assert {o.key: o.value for o in vm.config.extraConfig}["guestinfo.hello"] == 'w"orld'
    (nic,) = [d for d in vm.config.hardware.device if isinstance(d, VD.VirtualEthernetCard)]
    assert isinstance(nic, VD.VirtualE1000) and nic.macAddress == "00:50:56:01:02:03" and nic.addressType == "manual"
    assert nic.backing.network == inv.net


def test_snapshot_files(inv, sim):
    vm = create(inv, unique("snap"))
    base = vm.config.files.vmPathName.rpartition("/")[2][:-len(".vmx")]
    snap = wait(vm.CreateSnapshot_Task(name="s1", memory=False, quiesce=False))
    wait(vm.CreateSnapshot_Task(name="s2", memory=False, quiesce=False))
    files = listing(sim, vm)
    assert {f"{base}.vmsd", f"{base}-Snapshot1.vmsn", f"{base}-Snapshot2.vmsn"} <= files
    assert {"snapshotList", "snapshotData"} <= {f.type for f in vm.layoutEx.file}
    vmsd_path = vm.config.files.vmPathName[:-len(".vmx")] + ".vmsd"
    with sim.lock:
        vmsd = dict(vmx.loads(sim.datastores.read_file(vmsd_path)))
    assert vmsd["snapshot.numSnapshots"] == "2" and vmsd["snapshot.current"] == "2"
    assert vmsd["snapshot0.displayName"] == "s1" and vmsd["snapshot1.parent"] == "1"
    wait(snap.RemoveSnapshot_Task(removeChildren=True))
    assert vm.snapshot is None
    assert not {f"{base}.vmsd", f"{base}-Snapshot1.vmsn", f"{base}-Snapshot2.vmsn"} & listing(sim, vm)


def test_a_new_disk_on_another_datastore_gets_a_folder_named_like_the_vm(inv, sim):
    name = unique("other")
    spec = vim.vm.ConfigSpec(name=name, guestId="otherGuest64", files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"),
                             deviceChange=[
        VD.VirtualDeviceSpec(operation="add", device=VD.ParaVirtualSCSIController(key=-1, busNumber=0,
                                                                                  sharedBus="noSharing")),
        VD.VirtualDeviceSpec(operation="add", fileOperation="create", device=VD.VirtualDisk(
            key=-2, controllerKey=-1, capacityInKB=1024, backing=VD.VirtualDisk.FlatVer2BackingInfo(
                fileName="[vsanDatastore]", diskMode="persistent")))])
    vm = create(inv, name, spec)
    disk = next(d for d in vm.config.hardware.device if isinstance(d, VD.VirtualDisk))
    assert disk.backing.fileName == f"[vsanDatastore] {name}/{name}.vmdk"
    assert {d.name for d in vm.datastore} == {"LocalDS_0", "vsanDatastore"}
    wait(vm.Destroy_Task())
