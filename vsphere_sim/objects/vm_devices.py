"""A VM's virtual hardware: the default devices of a new VM, and `deviceChange` (add / remove / edit, with or without a
fileOperation) planned against the current devices.

Planning has no side effects: it validates every change, assigns ESX's device keys, unit numbers, MACs and PCI slots,
and lists the disk files to create, extend and destroy. The VM then creates the files (undoing them if one fails),
commits the new device list and destroys what was removed with `fileOperation=destroy`.
"""
from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field

from pyVmomi import vim, vmodl

from . import vmx
from .data import make

VD = vim.vm.device
Spec = vim.vm.device.VirtualDeviceSpec

# Devices every VM has and no reconfigure can remove.
FIXED_KEYS = {vmx.KEY_PCI, vmx.KEY_IDE, vmx.KEY_IDE + 1, vmx.KEY_PS2, vmx.KEY_SIO, vmx.KEY_KEYBOARD,
              vmx.KEY_POINTING}
MAX_BUS = {"scsi": 4, "sata": 4, "nvme": 4}
MAX_NICS = 10
MAX_SERIAL = 32
# PCI slots ESX hands out to devices that come without one
PCI_SLOTS = [160, 192, 224, 256, 1184, 1216, 1248, 1280, 2208, 2240, 2272, 2304]


def default_devices() -> list:
    """The devices ESX gives every new VM before its spec's deviceChange is applied."""
    conn = None
    return [
        make(VD.VirtualIDEController, key=vmx.KEY_IDE, busNumber=0, device=[]),
        make(VD.VirtualIDEController, key=vmx.KEY_IDE + 1, busNumber=1, device=[]),
        make(VD.VirtualPS2Controller, key=vmx.KEY_PS2, busNumber=0, device=[vmx.KEY_KEYBOARD, vmx.KEY_POINTING]),
        make(VD.VirtualPCIController, key=vmx.KEY_PCI, busNumber=0, device=[vmx.KEY_VIDEO, vmx.KEY_VMCI]),
        make(VD.VirtualSIOController, key=vmx.KEY_SIO, busNumber=0, device=[]),
        make(VD.VirtualKeyboard, key=vmx.KEY_KEYBOARD, controllerKey=vmx.KEY_PS2, unitNumber=0, connectable=conn),
        make(VD.VirtualPointingDevice,
            key=vmx.KEY_POINTING, controllerKey=vmx.KEY_PS2, unitNumber=1,
            backing=make(VD.VirtualPointingDevice.DeviceBackingInfo, deviceName="", useAutoDetect=False,
                         hostPointingDevice="autodetect")),
        make(VD.VirtualVideoCard, key=vmx.KEY_VIDEO, controllerKey=vmx.KEY_PCI, unitNumber=0, videoRamSizeInKB=4096,
             numDisplays=1, useAutoDetect=False, enable3DSupport=False, use3dRenderer="automatic",
             graphicsMemorySizeInKB=262144),
        make(VD.VirtualVMCIDevice, key=vmx.KEY_VMCI, controllerKey=vmx.KEY_PCI, unitNumber=17, id=-1,
             allowUnrestrictedCommunication=False, filterEnable=True),
    ]


def family(controller) -> str | None:
    if isinstance(controller, VD.VirtualIDEController):
        return "ide"
    if isinstance(controller, VD.VirtualSCSIController):
        return "scsi"
    if isinstance(controller, VD.VirtualSATAController):
        return "sata"
    if isinstance(controller, VD.VirtualNVMEController):
        return "nvme"
    return None


def unit_range(controller) -> list[int]:
    kind = family(controller)
    if kind == "ide":
        return [0, 1]
    if kind == "scsi":
        top = 64 if isinstance(controller, VD.ParaVirtualSCSIController) else 16
        return [u for u in range(top) if u != (controller.scsiCtlrUnitNumber or 7)]
    if kind == "sata":
        return list(range(30))
    if kind == "nvme":
        return list(range(15))
    return []


@dataclass
class DiskCreate:
    path: str  # "[ds] dir/name.vmdk"
    capacity_kb: int
    parent: str | None
    thin: bool
    device: object
    make_folder: bool = False  # a name the VM chose on another datastore: its folder is made as needed


@dataclass
class DevicePlan:
    devices: list
    creates: list[DiskCreate] = field(default_factory=list)
    extends: list[tuple[str, int]] = field(default_factory=list)
    destroys: list[str] = field(default_factory=list)  # disk files, deleted after the commit
    replaced: list[str] = field(default_factory=list)  # disk files deleted before their re-creation


def _bad(index: int, msg: str, prop: str | None = None):
    return vim.fault.InvalidDeviceSpec(msg=f"Invalid configuration for device '{index}'. {msg}".strip(),
                                       deviceIndex=index, property=prop)


class DevicePlanner:
    """Applies one deviceChange list to a copy of a VM's devices.

    `vm` provides: `sim`, `home_dir()` ("[ds] dir"), `base_name()`, `datacenter()`. `all_macs()` gives the MACs
    other VMs use (asked only when a MAC is to be made).
    """

    def __init__(self, vm, devices, powered_on: bool, all_macs, copy_devices: bool = True):
        self.vm = vm
        self.sim = vm.sim
        # a reconfigure works on copies, so a failed one leaves the VM's devices untouched
        self.devices = [copy.deepcopy(d) for d in devices] if copy_devices else list(devices)
        self.by_key = {d.key: d for d in self.devices}
        self.key_map: dict[int, int] = {}
        self.powered_on = powered_on
        self._all_macs = all_macs  # () -> set of the MACs in use; asked only when a MAC is to be made
        self.macs: set[str] | None = None
        self.plan = DevicePlan(self.devices)
        self.planned_files: set[str] = set()

    # -- entry --------------------------------------------------------------------------------------------------
    def apply(self, changes) -> DevicePlan:
        changes = list(changes or [])
        indexed = list(enumerate(changes))
        # Controllers first, so a disk may name a controller added later in the same list.
        first = [(i, c) for i, c in indexed if c.operation == "add" and isinstance(c.device, VD.VirtualController)]
        rest = [(i, c) for i, c in indexed if not (c.operation == "add" and isinstance(c.device,
                                                                                      VD.VirtualController))]
        for index, change in first + rest:
            if change.device is None:
                raise _bad(index, "The device is missing.", "device")
            if change.operation == "add":
                self._add(index, change)
            elif change.operation == "remove":
                self._remove(index, change)
            elif change.operation == "edit":
                self._edit(index, change)
            else:
                raise vim.fault.InvalidDeviceOperation(
                    msg=f"Invalid operation for device '{index}'.", deviceIndex=index, badOp=change.operation)
        self.plan.devices = self.devices
        return self.plan

    # -- add ----------------------------------------------------------------------------------------------------
    def _add(self, index, change):
        dev = copy.deepcopy(change.device)
        spec_key = dev.key
        if isinstance(dev, VD.VirtualController):
            key = self._add_controller(index, dev)
        elif isinstance(dev, (VD.VirtualDisk, VD.VirtualCdrom)) or family(self._controller_of(dev)) is not None:
            key = self._add_attached(index, dev, change)
        elif isinstance(dev, VD.VirtualEthernetCard):
            key = self._add_nic(index, dev)
        elif isinstance(dev, VD.VirtualSerialPort):
            key = self._add_serial(index, dev)
        else:
            dev.key = self._free_key(20000 if dev.key is None or dev.key < 0 or dev.key in self.by_key else dev.key)
            self._insert(dev)
            key = dev.key
        if spec_key is not None:
            self.key_map[spec_key] = key

    def _controller_of(self, dev):
        if dev.controllerKey is None:
            return None
        return self.by_key.get(self.key_map.get(dev.controllerKey, dev.controllerKey))

    def _add_controller(self, index, dev) -> int:
        kind = family(dev)
        if kind == "ide":
            # ESX has exactly two IDE controllers; a spec that adds one gets the existing one of that bus.
            bus = dev.busNumber if dev.busNumber is not None else 0
            for existing in self.devices:
                if isinstance(existing, VD.VirtualIDEController) and existing.busNumber == bus:
                    return existing.key
            raise _bad(index, "An IDE controller can't be added.")
        if kind is None:
            dev.key = self._free_key(20000)
            dev.device = []
            self._insert(dev)
            return dev.key
        used = {d.busNumber for d in self.devices if family(d) == kind}
        if dev.busNumber is None:
            free = [b for b in range(MAX_BUS[kind]) if b not in used]
            if not free:
                raise _bad(index, f"No more {kind.upper()} controllers can be added.")
            dev.busNumber = free[0]
        if dev.busNumber in used or not 0 <= dev.busNumber < MAX_BUS[kind]:
            raise _bad(index, f"The bus number {dev.busNumber} is not available.", "device.busNumber")
        if kind == "scsi":
            dev.sharedBus = dev.sharedBus or "noSharing"
            dev.scsiCtlrUnitNumber = dev.scsiCtlrUnitNumber or 7
        dev.key = vmx.controller_key(dev)
        dev.controllerKey = vmx.KEY_PCI
        dev.unitNumber = None
        dev.device = []
        self._assign_slot(dev)
        self._insert(dev)
        return dev.key

    def _add_attached(self, index, dev, change) -> int:
        controller = self._controller_of(dev)
        if controller is None or family(controller) is None:
            raise vim.fault.InvalidController(
                msg=f"Device '{index}' has a controller ({dev.controllerKey}) that is not valid for it.",
                deviceIndex=index, controllerKey=dev.controllerKey if dev.controllerKey is not None else -1)
        dev.controllerKey = controller.key
        dev.unitNumber = self._unit(index, controller, dev.unitNumber)
        dev.key = vmx.attached_key(controller, dev.unitNumber)
        if dev.key in self.by_key:
            dev.key = self._free_key(dev.key)
        if isinstance(dev, VD.VirtualDisk):
            self._disk_backing(index, dev, change, None)
        elif isinstance(dev, VD.VirtualCdrom):
            self._cdrom_backing(index, dev)
            dev.connectable = self._connect(dev.connectable, None)
        self._insert(dev)
        return dev.key

    def _unit(self, index, controller, unit):
        used = {d.unitNumber for d in self.devices if d.controllerKey == controller.key}
        allowed = unit_range(controller)
        if unit is None:
            for candidate in allowed:
                if candidate not in used:
                    return candidate
            raise _bad(index, f"The controller {controller.key} has no free unit.", "device.unitNumber")
        if unit not in allowed or unit in used:
            raise _bad(index, f"Unit {unit} of controller {controller.key} is not available.", "device.unitNumber")
        return unit

    def _free_slot(self, index, kind: type, first_key: int, limit: int, full: str) -> int:
        """The lowest free number of a device kind whose keys run from `first_key` (NICs, serial ports)."""
        used = {d.key - first_key for d in self.devices if isinstance(d, kind)}
        for number in range(limit):
            if number not in used:
                return number
        raise _bad(index, full)

    def _add_nic(self, index, dev) -> int:
        number = self._free_slot(index, VD.VirtualEthernetCard, vmx.KEY_NIC, MAX_NICS,
                                 "No more network adapters can be added.")
        dev.key = vmx.KEY_NIC + number
        dev.controllerKey = vmx.KEY_PCI
        dev.unitNumber = None
        self._nic_backing(index, dev)
        self._mac(index, dev, None)
        dev.connectable = self._connect(dev.connectable, None)
        if dev.wakeOnLanEnabled is None:
            dev.wakeOnLanEnabled = True
        self._assign_slot(dev)
        self._insert(dev)
        return dev.key

    def _add_serial(self, index, dev) -> int:
        number = self._free_slot(index, VD.VirtualSerialPort, vmx.KEY_SERIAL, MAX_SERIAL,
                                 "No more serial ports can be added.")
        dev.key = vmx.KEY_SERIAL + number
        dev.controllerKey = vmx.KEY_SIO
        dev.unitNumber = number
        dev.yieldOnPoll = bool(dev.yieldOnPoll)
        self._serial_backing(index, dev)
        dev.connectable = self._connect(dev.connectable, None)
        self._insert(dev)
        return dev.key

    # -- remove -------------------------------------------------------------------------------------------------
    def _remove(self, index, change):
        key = change.device.key
        dev = self.by_key.get(key)
        if dev is None:
            raise _bad(index, f"The device {key} does not exist.", "device.key")
        if key in FIXED_KEYS:
            raise _bad(index, f"The device {key} can't be removed.")
        if isinstance(dev, VD.VirtualController) and any(d.controllerKey == key for d in self.devices):
            raise _bad(index, f"The controller {key} still has devices attached.")
        if change.fileOperation == "destroy":
            if not isinstance(dev, VD.VirtualDisk):
                raise vim.fault.InvalidDeviceOperation(msg=f"Invalid operation for device '{index}'.",
                                                       deviceIndex=index, badFileOp="destroy")
            self.plan.destroys.append(dev.backing.fileName)
        elif change.fileOperation is not None:
            raise vim.fault.InvalidDeviceOperation(msg=f"Invalid operation for device '{index}'.",
                                                   deviceIndex=index, badFileOp=change.fileOperation)
        self.devices.remove(dev)
        del self.by_key[key]
        controller = self.by_key.get(dev.controllerKey)
        if controller is not None and isinstance(controller, VD.VirtualController):
            controller.device = [k for k in (controller.device or []) if k != key]

    # -- edit ---------------------------------------------------------------------------------------------------
    def _edit(self, index, change):
        key = change.device.key
        old = self.by_key.get(key)
        if old is None:
            raise _bad(index, f"The device {key} does not exist.", "device.key")
        new = copy.deepcopy(change.device)
        if type(new) is not type(old) and not isinstance(new, type(old)) and not isinstance(old, type(new)):
            raise _bad(index, "The type of a device can't be changed.")
        new.key = key
        if isinstance(old, VD.VirtualController):
            # nothing of a controller but its sharing mode may change
            if isinstance(old, VD.VirtualSCSIController) and new.sharedBus:
                old.sharedBus = new.sharedBus
            return
        for attr in ("controllerKey", "unitNumber", "backing", "slotInfo", "deviceInfo"):
            if getattr(new, attr, None) is None:
                setattr(new, attr, getattr(old, attr, None))
        new.controllerKey = self.key_map.get(new.controllerKey, new.controllerKey)
        if (new.controllerKey, new.unitNumber) != (old.controllerKey, old.unitNumber) \
                and family(self.by_key.get(new.controllerKey)) is not None:
            controller = self.by_key[new.controllerKey]
            old_unit, old.unitNumber = old.unitNumber, None
            old_ctrl, old.controllerKey = old.controllerKey, None
            try:
                new.unitNumber = self._unit(index, controller, new.unitNumber)
            finally:
                old.unitNumber, old.controllerKey = old_unit, old_ctrl
            prev = self.by_key.get(old_ctrl)
            if prev is not None:
                prev.device = [k for k in (prev.device or []) if k != key]
            controller.device = list(controller.device or []) + [key]
        if isinstance(new, VD.VirtualDisk):
            self._disk_backing(index, new, change, old)
        elif isinstance(new, VD.VirtualCdrom):
            self._cdrom_backing(index, new)
        elif isinstance(new, VD.VirtualEthernetCard):
            if new.addressType is None:
                new.addressType = old.addressType
            if new.wakeOnLanEnabled is None:
                new.wakeOnLanEnabled = old.wakeOnLanEnabled
            self._nic_backing(index, new)
            self._mac(index, new, old)
        elif isinstance(new, VD.VirtualSerialPort):
            if new.yieldOnPoll is None:
                new.yieldOnPoll = old.yieldOnPoll
            self._serial_backing(index, new)
        if hasattr(new, "connectable"):
            new.connectable = self._connect(new.connectable, getattr(old, "connectable", None))
        self.devices[self.devices.index(old)] = new
        self.by_key[key] = new

    # -- backings -----------------------------------------------------------------------------------------------
    def _disk_backing(self, index, dev, change, old):
        backing = dev.backing
        if backing is None or not hasattr(backing, "fileName"):
            raise vim.fault.InvalidDeviceBacking(msg=f"Invalid configuration for device '{index}'.",
                                                 deviceIndex=index)
        if hasattr(backing, "diskMode") and not backing.diskMode:
            backing.diskMode = (getattr(old.backing, "diskMode", None) if old is not None else None) or "persistent"
        capacity_kb = dev.capacityInKB or 0
        if not capacity_kb and dev.capacityInBytes:
            capacity_kb = dev.capacityInBytes // 1024
        file_op = change.fileOperation
        datastores = self.sim.datastores
        if file_op in ("create", "replace"):
            parent = None
            if getattr(backing, "parent", None) is not None and backing.parent.fileName:
                parent = str(datastores.parse(backing.parent.fileName))
                datastores.datastore(datastores.parse(parent).datastore, text=parent)
                if not capacity_kb:
                    capacity_kb = datastores.disk_info(parent).capacity_kb
            path, make_folder = self._new_disk_path(index, backing.fileName)
            if file_op == "replace":
                if not datastores.exists(path):
                    raise vim.fault.FileNotFound(msg=f"File {path} was not found", file=path)
                self.plan.replaced.append(path)
            elif datastores.exists(path):
                raise vim.fault.FileAlreadyExists(
                    msg=f"Cannot complete the operation because the file or folder {path} already exists", file=path)
            if capacity_kb <= 0 and parent is None:
                raise _bad(index, "The capacity of a new disk must be given.", "device.capacityInKB")
            backing.fileName = path
            self.planned_files.add(path)
            self.plan.creates.append(DiskCreate(path, capacity_kb, parent, backing.thinProvisioned is not False,
                                                dev, make_folder))
        elif file_op is None:
            if not backing.fileName:
                raise vim.fault.InvalidDeviceBacking(msg=f"Invalid configuration for device '{index}'.",
                                                     deviceIndex=index)
            path = str(datastores.parse(backing.fileName))
            datastores.datastore(datastores.parse(path).datastore, text=path)
            info = datastores.disk_info(path)  # FileNotFound when there is no such disk
            backing.fileName = path
            if old is not None and old.backing.fileName == path:
                if capacity_kb and capacity_kb < (old.capacityInKB or 0):
                    raise vim.fault.InvalidDeviceOperation(
                        msg=f"Invalid operation for device '{index}': a disk can't shrink.", deviceIndex=index,
                        badOp="edit")
                if capacity_kb and capacity_kb > info.capacity_kb:
                    self.plan.extends.append((path, capacity_kb))
                    info.capacity_kb = capacity_kb
            fill_disk(self.sim, dev, info)
        else:
            raise vim.fault.InvalidDeviceOperation(msg=f"Invalid operation for device '{index}'.",
                                                   deviceIndex=index, badFileOp=file_op)
        dev.capacityInKB = capacity_kb if file_op else dev.capacityInKB
        if dev.capacityInKB:
            dev.capacityInBytes = dev.capacityInKB * 1024

    def _new_disk_path(self, index, file_name) -> tuple[str, bool]:
        """A new disk's path: as given, or `<vm>.vmdk`, `<vm>_1.vmdk`... in the VM's folder (on another datastore:
        a folder named like the VM's)."""
        datastores = self.sim.datastores
        home = datastores.parse(self.vm.home_dir())
        text = (file_name or "").strip()
        target = home
        if text:
            target = datastores.parse(text)
            datastores.datastore(target.datastore, text=text)
            if target.path:
                path = str(target)
                if path in self.planned_files:
                    raise vim.fault.FileAlreadyExists(
                        msg=f"Cannot complete the operation because the file or folder {path} already exists",
                        file=path)
                return path, False
        folder = home if target.datastore == home.datastore else target.join(home.name)
        base = self.vm.base_name()
        n = 0
        while True:
            name = f"{base}.vmdk" if n == 0 else f"{base}_{n}.vmdk"
            path = str(folder.join(name))
            if path not in self.planned_files and not datastores.exists(path):
                return path, folder != home
            n += 1

    def _cdrom_backing(self, index, dev):
        backing = dev.backing
        if isinstance(backing, VD.VirtualCdrom.IsoBackingInfo):
            if not backing.fileName:
                raise vim.fault.InvalidDeviceBacking(msg=f"Invalid configuration for device '{index}'.",
                                                     deviceIndex=index)
            path = self.sim.datastores.parse(backing.fileName)
            ds = self.sim.datastores.datastore(path.datastore, text=backing.fileName)
            backing.fileName = str(path)
            backing.datastore = ds.ref
        elif backing is None:
            dev.backing = VD.VirtualCdrom.RemotePassthroughBackingInfo(deviceName="", exclusive=False,
                                                                       useAutoDetect=False)

    def _serial_backing(self, index, dev):
        backing = dev.backing
        if backing is None:
            raise vim.fault.InvalidDeviceBacking(msg=f"Invalid configuration for device '{index}'.",
                                                 deviceIndex=index)
        if isinstance(backing, VD.VirtualSerialPort.URIBackingInfo):
            if not backing.serviceURI:
                raise vim.fault.InvalidDeviceBacking(msg=f"Invalid configuration for device '{index}'.",
                                                     deviceIndex=index)
            backing.direction = backing.direction or "client"
        elif isinstance(backing, VD.VirtualSerialPort.FileBackingInfo):
            path = self.sim.datastores.parse(backing.fileName or "")
            ds = self.sim.datastores.datastore(path.datastore, text=backing.fileName)
            backing.fileName = str(path)
            backing.datastore = ds.ref

    def _nic_backing(self, index, dev):
        backing = dev.backing
        if backing is None:
            raise vim.fault.InvalidDeviceBacking(msg=f"Invalid configuration for device '{index}'.",
                                                 deviceIndex=index)
        from .network import find_network, find_portgroup
        if isinstance(backing, VD.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
            port = backing.port
            pg = find_portgroup(self.sim, port.switchUuid if port else None, port.portgroupKey if port else None)
            if pg is None:
                raise vim.fault.InvalidDeviceBacking(
                    msg=f"Invalid configuration for device '{index}': no distributed port group "
                        f"{port.portgroupKey if port else None}.", deviceIndex=index)
            pg.assign_port(port)
        elif isinstance(backing, VD.VirtualEthernetCard.NetworkBackingInfo):
            net = find_network(self.sim, self.vm.datacenter(), backing.network, backing.deviceName)
            if net is None:
                raise vim.fault.InvalidDeviceBacking(
                    msg=f"Invalid configuration for device '{index}': network '{backing.deviceName}' not found.",
                    deviceIndex=index)
            backing.network = net.ref
            backing.deviceName = net.name

    def _mac(self, index, dev, old):
        kind = dev.addressType or "generated"
        if kind == "manual":
            mac = (dev.macAddress or "").lower()
            if not _valid_mac(mac):
                raise _bad(index, f"The MAC address '{dev.macAddress}' is not valid.", "device.macAddress")
            dev.macAddress = mac
            if self.macs is None:
                self.macs = self._all_macs()
            self.macs.add(mac)
            return
        # vCenter assigns the MAC itself, once: an edit keeps the one the adapter has.
        if old is not None and old.macAddress and old.addressType != "manual":
            dev.macAddress = old.macAddress
        else:
            dev.macAddress = self._new_mac()
        dev.addressType = "assigned"

    def _new_mac(self) -> str:
        if self.macs is None:
            self.macs = self._all_macs()
        while True:
            raw = secrets.token_bytes(3)
            mac = f"00:50:56:{0x80 | (raw[0] & 0x3F):02x}:{raw[1]:02x}:{raw[2]:02x}"
            if mac not in self.macs:
                self.macs.add(mac)
                return mac

    def _connect(self, conn, old):
        if conn is None:
            conn = copy.deepcopy(old) if old is not None else VD.VirtualDevice.ConnectInfo(
                startConnected=True, allowGuestControl=False, connected=False)
        if conn.startConnected is None:
            conn.startConnected = old.startConnected if old is not None else True
        if conn.allowGuestControl is None:
            conn.allowGuestControl = old.allowGuestControl if old is not None else False
        # `connected` is runtime state: only a running VM has connected devices.
        if not self.powered_on:
            conn.connected = False
        elif conn.connected is None:
            conn.connected = old.connected if old is not None else conn.startConnected
        return conn

    # -- helpers ------------------------------------------------------------------------------------------------
    def _insert(self, dev):
        self.devices.append(dev)
        self.by_key[dev.key] = dev
        controller = self.by_key.get(dev.controllerKey) if dev.controllerKey is not None else None
        if isinstance(controller, VD.VirtualController) and dev.key not in (controller.device or []):
            controller.device = list(controller.device or []) + [dev.key]

    def _free_key(self, start: int) -> int:
        key = max(start, 1)
        while key in self.by_key:
            key += 1
        return key

    def _assign_slot(self, dev):
        slot = getattr(dev, "slotInfo", None)
        if slot is not None and getattr(slot, "pciSlotNumber", None) is not None:
            return
        used = {d.slotInfo.pciSlotNumber for d in self.devices
                if getattr(d, "slotInfo", None) is not None and getattr(d.slotInfo, "pciSlotNumber", None)}
        for candidate in PCI_SLOTS:
            if candidate not in used:
                dev.slotInfo = VD.VirtualDevice.PciBusSlotInfo(pciSlotNumber=candidate)
                return


def fill_disk(sim, dev, info) -> None:
    """Fill a disk device from its file: capacity, datastore, uuid, thin, and its parent chain."""
    backing = dev.backing
    dev.capacityInKB = info.capacity_kb
    dev.capacityInBytes = info.capacity_kb * 1024
    ds = sim.datastores.datastore(sim.datastores.parse(backing.fileName).datastore)
    backing.datastore = ds.ref
    if hasattr(backing, "thinProvisioned"):
        backing.thinProvisioned = bool(info.thin)
    if hasattr(backing, "uuid") and info.uuid:
        backing.uuid = vmx.parse_uuid(info.uuid) or info.uuid
    if hasattr(backing, "parent") and info.parent is not None:
        pinfo = None
        try:
            pinfo = sim.datastores.disk_info(info.parent)
        except vmodl.MethodFault:
            pass
        backing.parent = type(backing)(fileName=str(info.parent), diskMode=backing.diskMode or "persistent")
        if pinfo is not None:
            sub = _DiskStub(backing.parent)
            fill_disk(sim, sub, pinfo)
        if hasattr(backing, "deltaDiskFormat"):
            backing.deltaDiskFormat = "redoLogFormat"
    if hasattr(backing, "sharing") and not backing.sharing:
        backing.sharing = "sharingNone"
    if hasattr(backing, "contentId") and info.cid:
        backing.contentId = info.cid
    for attr, default in (("split", False), ("writeThrough", False), ("eagerlyScrub", False),
                          ("digestEnabled", False)):
        if hasattr(backing, attr) and getattr(backing, attr) is None:
            setattr(backing, attr, default)



class _DiskStub:
    """Lets `_fill_disk` fill a parent backing the way it fills a disk."""

    def __init__(self, backing):
        self.backing = backing
        self.capacityInKB = 0
        self.capacityInBytes = 0


def _valid_mac(mac: str) -> bool:
    parts = mac.split(":")
    return len(parts) == 6 and all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts)


# -- labels and summaries -------------------------------------------------------------------------------------------
def relabel(devices, network_name) -> None:
    """ESX's device labels and summaries (`Hard disk 1`, `Network adapter 1`...), numbered in key order."""
    counters: dict[str, int] = {}

    def numbered(kind: str) -> int:
        counters[kind] = counters.get(kind, 0) + 1
        return counters[kind]

    for dev in sorted(devices, key=lambda d: d.key):
        label, summary = _describe(dev, numbered, network_name)
        info = dev.deviceInfo
        if info is None or info.label != label or info.summary != summary:
            dev.deviceInfo = make(vim.Description, label=label, summary=summary)


def _describe(dev, numbered, network_name) -> tuple[str, str]:
    if isinstance(dev, VD.VirtualDisk):
        return f"Hard disk {numbered('disk')}", f"{dev.capacityInKB or 0:,} KB"
    if isinstance(dev, VD.VirtualCdrom):
        backing = dev.backing
        summary = f"ISO {backing.fileName}" if isinstance(backing, VD.VirtualCdrom.IsoBackingInfo) \
            else "Remote device"
        return f"CD/DVD drive {numbered('cdrom')}", summary
    if isinstance(dev, VD.VirtualEthernetCard):
        return f"Network adapter {numbered('nic')}", network_name(dev.backing) or ""
    if isinstance(dev, VD.VirtualSerialPort):
        backing = dev.backing
        if isinstance(backing, VD.VirtualSerialPort.URIBackingInfo):
            summary = f"Remote {backing.serviceURI}"
        elif isinstance(backing, VD.VirtualSerialPort.FileBackingInfo):
            summary = f"File {backing.fileName}"
        elif isinstance(backing, VD.VirtualSerialPort.PipeBackingInfo):
            summary = f"Pipe {backing.pipeName}"
        else:
            summary = f"Device {getattr(backing, 'deviceName', '')}"
        return f"Serial port {numbered('serial')}", summary
    if isinstance(dev, VD.VirtualSCSIController):
        names = {VD.ParaVirtualSCSIController: "VMware paravirtual SCSI", VD.VirtualLsiLogicController: "LSI Logic",
                 VD.VirtualLsiLogicSASController: "LSI Logic SAS", VD.VirtualBusLogicController: "BusLogic"}
        return f"SCSI controller {dev.busNumber}", names.get(type(dev), "SCSI controller")
    if isinstance(dev, VD.VirtualIDEController):
        return f"IDE {dev.busNumber}", f"IDE {dev.busNumber}"
    if isinstance(dev, VD.VirtualSATAController):
        return f"SATA controller {dev.busNumber}", "AHCI"
    if isinstance(dev, VD.VirtualNVMEController):
        return f"NVME controller {dev.busNumber}", "NVME controller"
    fixed = {VD.VirtualPCIController: ("PCI controller 0", "PCI controller 0"),
             VD.VirtualPS2Controller: ("PS2 controller 0", "PS2 controller 0"),
             VD.VirtualSIOController: ("SIO controller 0", "SIO controller 0"),
             VD.VirtualKeyboard: ("Keyboard", "Keyboard"),
             VD.VirtualPointingDevice: ("Pointing device", "Pointing device; Device"),
             VD.VirtualVideoCard: ("Video card ", "Video card"),
             VD.VirtualVMCIDevice: ("VMCI device", "Device on the virtual machine PCI bus that provides support for "
                                                   "the virtual machine communication interface")}
    for cls, text in fixed.items():
        if isinstance(dev, cls):
            return text
    name = type(dev).__name__.rpartition(".")[2]
    return f"{name} {numbered(name)}", name
