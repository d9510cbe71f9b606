"""The `.vmx` file: VMware's `key = "value"` configuration, written from a VM's config on every change and read back by
RegisterVM_Task to rebuild the VM.

Device keys follow ESX's fixed numbering (controllers, then devices by controller and unit), so a VM registered from
its `.vmx` gets the device keys it had. Values are quoted; `|` escapes a byte as two hex digits (`|22` is `"`), as
ESX writes them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from pyVmomi import vim

VD = vim.vm.device

ENCODING_LINE = '.encoding = "UTF-8"'

# SCSI controller classes <-> scsiN.virtualDev
SCSI_KINDS = {
    VD.ParaVirtualSCSIController: "pvscsi",
    VD.VirtualLsiLogicController: "lsilogic",
    VD.VirtualLsiLogicSASController: "lsisas1068",
    VD.VirtualBusLogicController: "buslogic",
}
SCSI_CLASSES = {v: k for k, v in SCSI_KINDS.items()}
SHARED_BUS = {"noSharing": "none", "virtualSharing": "virtual", "physicalSharing": "physical"}
SHARED_BUS_BACK = {v: k for k, v in SHARED_BUS.items()}

NIC_KINDS = {
    VD.VirtualVmxnet3: "vmxnet3",
    VD.VirtualE1000e: "e1000e",
    VD.VirtualE1000: "e1000",
    VD.VirtualVmxnet2: "vmxnet2",
    VD.VirtualPCNet32: "vlance",
}
NIC_CLASSES = {v: k for k, v in NIC_KINDS.items()}
MAC_TYPES = {"assigned": "vpx", "generated": "generated", "manual": "static"}
MAC_TYPES_BACK = {v: k for k, v in MAC_TYPES.items()}

# ESX's fixed device keys
KEY_IDE = 200
KEY_PCI = 100
KEY_PS2 = 300
KEY_SIO = 400
KEY_VIDEO = 500
KEY_KEYBOARD = 600
KEY_POINTING = 700
KEY_VMCI = 12000
KEY_SCSI = 1000
KEY_SATA = 15000
KEY_NVME = 31000
KEY_NIC = 4000
KEY_SERIAL = 9000


# -- the file format ------------------------------------------------------------------------------------------------
_NEEDS_ESCAPE = re.compile(r'[|"\x00-\x1f\x7f]')


def quote(value: str) -> str:
    if _NEEDS_ESCAPE.search(value) is None:  # the usual value: nothing to escape
        return f'"{value}"'
    out = []
    for ch in value:
        code = ord(ch)
        if ch in '|"' or code < 0x20 or code == 0x7F:
            out.append(f"|{code:02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_ESCAPE = re.compile(r"\|([0-9A-Fa-f]{2})")


def unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1]
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def dumps(entries) -> bytes:
    lines = [ENCODING_LINE]
    lines.extend(f"{key} = {quote(str(value))}" for key, value in entries)
    return ("\n".join(lines) + "\n").encode("utf-8")


def loads(data: bytes) -> list[tuple[str, str]]:
    """(key, value) pairs in file order; comments, blank and malformed lines are skipped, as the VMX does."""
    entries = []
    for raw in data.decode("utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key or key == ".encoding":
            continue
        entries.append((key, unquote(value)))
    return entries


def true(value: str | None) -> bool:
    return (value or "").strip().upper() in ("TRUE", "YES", "1")


def flag(value) -> str:
    return "TRUE" if value else "FALSE"


# -- paths in the .vmx ----------------------------------------------------------------------------------------------
def file_ref(ds_path: str, vm_dir: str) -> str:
    """A file as the .vmx names it: relative when it sits in the VM's directory, else /vmfs/volumes/<ds>/<path>."""
    prefix = vm_dir.rstrip("/") + "/"
    if ds_path.startswith(prefix) and "/" not in ds_path[len(prefix):]:
        return ds_path[len(prefix):]
    if ds_path.startswith("["):
        ds, _, rest = ds_path[1:].partition("]")
        return f"/vmfs/volumes/{ds}/{rest.strip()}"
    return ds_path


def ds_ref(value: str, vm_dir: str) -> str:
    """The inverse of `file_ref`: a .vmx file name back to `"[ds] path"`."""
    if value.startswith("/vmfs/volumes/"):
        ds, _, rest = value[len("/vmfs/volumes/"):].partition("/")
        return f"[{ds}] {rest}"
    if value.startswith("[") or value.startswith("/") or "://" in value:
        return value
    return f"{vm_dir.rstrip('/')}/{value}"


# -- device positions -----------------------------------------------------------------------------------------------
def controller_prefix(controller) -> str | None:
    if isinstance(controller, VD.VirtualSCSIController):
        return f"scsi{controller.busNumber}"
    if isinstance(controller, VD.VirtualIDEController):
        return f"ide{controller.busNumber}"
    if isinstance(controller, VD.VirtualSATAController):
        return f"sata{controller.busNumber}"
    if isinstance(controller, VD.VirtualNVMEController):
        return f"nvme{controller.busNumber}"
    return None


def controller_key(controller) -> int:
    bus = controller.busNumber or 0
    if isinstance(controller, VD.VirtualIDEController):
        return KEY_IDE + bus
    if isinstance(controller, VD.VirtualSCSIController):
        return KEY_SCSI + bus
    if isinstance(controller, VD.VirtualSATAController):
        return KEY_SATA + bus
    if isinstance(controller, VD.VirtualNVMEController):
        return KEY_NVME + bus
    return 0


def attached_key(controller, unit: int) -> int:
    """Key of a disk or CD-ROM at (controller, unit), ESX's numbering."""
    bus = controller.busNumber or 0
    if isinstance(controller, VD.VirtualIDEController):
        return 3000 + bus * 2 + unit
    if isinstance(controller, VD.VirtualSCSIController):
        return 2000 + bus * 16 + unit if unit < 16 else 2064 + bus * 64 + unit
    if isinstance(controller, VD.VirtualSATAController):
        return 16000 + bus * 30 + unit
    if isinstance(controller, VD.VirtualNVMEController):
        return 32000 + bus * 64 + unit
    return 0


# -- config -> .vmx -------------------------------------------------------------------------------------------------
STRUCTURAL_KEYS = {
    "config.version", "virtualhw.version", "displayname", "guestos", "numvcpus", "cpuid.corespersocket", "memsize",
    "uuid.bios", "uuid.location", "vc.uuid", "annotation", "firmware", "vcpu.hotadd", "mem.hotadd",
    "alternateguestname", "template",
}


def format_uuid(value: str) -> str:
    """`42a1b2c3-...` → `42 a1 b2 c3 d4 e5 f6 a7-b8 c9 ...` (the .vmx form)."""
    hexes = value.replace("-", "").lower()
    if len(hexes) != 32:
        return value
    pairs = [hexes[i:i + 2] for i in range(0, 32, 2)]
    return " ".join(pairs[:8]) + "-" + " ".join(pairs[8:])


def parse_uuid(value: str) -> str | None:
    hexes = re.sub(r"[^0-9a-fA-F]", "", value or "").lower()
    if len(hexes) != 32:
        return None
    return f"{hexes[:8]}-{hexes[8:12]}-{hexes[12:16]}-{hexes[16:20]}-{hexes[20:]}"


def vmx_entries(config: vim.vm.ConfigInfo, vm_dir: str, network_name=lambda backing: None) -> list[tuple[str, str]]:
    """The .vmx content of a VM config. `vm_dir` is `"[ds] dir"`; `network_name(backing)` names a NIC's network."""
    hw = config.hardware
    version = (config.version or "vmx-21").removeprefix("vmx-")
    out: list[tuple[str, str]] = [
        ("config.version", "8"),
        ("virtualHW.version", version),
        ("displayName", config.name),
        ("guestOS", (config.guestId or "otherGuest").lower()),
        ("numvcpus", str(hw.numCPU)),
        ("cpuid.coresPerSocket", str(hw.numCoresPerSocket or 1)),
        ("memSize", str(hw.memoryMB)),
        ("uuid.bios", format_uuid(config.uuid)),
        ("vc.uuid", format_uuid(config.instanceUuid or "")),
    ]
    if config.firmware and config.firmware != "bios":
        out.append(("firmware", config.firmware))
    if config.annotation:
        out.append(("annotation", config.annotation))
    if config.alternateGuestName:
        out.append(("alternateGuestName", config.alternateGuestName))
    if config.cpuHotAddEnabled:
        out.append(("vcpu.hotadd", "TRUE"))
    if config.memoryHotAddEnabled:
        out.append(("mem.hotadd", "TRUE"))
    if config.template:
        out.append(("template", "TRUE"))
    out.extend(_device_entries(hw.device, vm_dir, network_name))
    for option in config.extraConfig or []:
        out.append((option.key, "" if option.value is None else str(option.value)))
    return out


def _connect_entries(prefix: str, device) -> list[tuple[str, str]]:
    conn = device.connectable
    if conn is None:
        return []
    out = [(f"{prefix}.startConnected", flag(conn.startConnected))]
    if conn.allowGuestControl:
        out.append((f"{prefix}.allowGuestControl", "TRUE"))
    return out


def _device_entries(devices, vm_dir: str, network_name) -> list[tuple[str, str]]:
    by_key = {d.key: d for d in devices}
    out: list[tuple[str, str]] = []
    for dev in devices:
        if isinstance(dev, VD.VirtualSCSIController):
            prefix = f"scsi{dev.busNumber}"
            out += [(f"{prefix}.present", "TRUE"), (f"{prefix}.virtualDev", SCSI_KINDS.get(type(dev), "lsilogic")),
                    (f"{prefix}.sharedBus", SHARED_BUS.get(dev.sharedBus, "none"))]
            if dev.slotInfo is not None and getattr(dev.slotInfo, "pciSlotNumber", None) is not None:
                out.append((f"{prefix}.pciSlotNumber", str(dev.slotInfo.pciSlotNumber)))
        elif isinstance(dev, (VD.VirtualSATAController, VD.VirtualNVMEController)):
            out.append((f"{controller_prefix(dev)}.present", "TRUE"))
    for dev in devices:
        controller = by_key.get(dev.controllerKey)
        prefix = controller_prefix(controller) if controller is not None else None
        if prefix is None or dev.unitNumber is None:
            continue
        slot = f"{prefix}:{dev.unitNumber}"
        if isinstance(dev, VD.VirtualDisk):
            backing = dev.backing
            out += [(f"{slot}.present", "TRUE"), (f"{slot}.fileName", file_ref(backing.fileName, vm_dir))]
            if isinstance(controller, VD.VirtualSCSIController):
                out.append((f"{slot}.deviceType", "scsi-hardDisk"))
            mode = getattr(backing, "diskMode", "persistent")
            if mode and mode != "persistent":
                out.append((f"{slot}.mode", mode.replace("_", "-")))
            if getattr(backing, "sharing", None) == "sharingMultiWriter":
                out.append((f"{slot}.sharing", "multi-writer"))
        elif isinstance(dev, VD.VirtualCdrom):
            backing = dev.backing
            out.append((f"{slot}.present", "TRUE"))
            if isinstance(backing, VD.VirtualCdrom.IsoBackingInfo):
                out += [(f"{slot}.deviceType", "cdrom-image"), (f"{slot}.fileName", file_ref(backing.fileName,
                                                                                               vm_dir))]
            elif isinstance(backing, VD.VirtualCdrom.AtapiBackingInfo):
                out += [(f"{slot}.deviceType", "atapi-cdrom"), (f"{slot}.fileName", backing.deviceName)]
            else:
                out += [(f"{slot}.deviceType", "cdrom-raw"), (f"{slot}.clientDevice", "TRUE"),
                        (f"{slot}.fileName", "emptyBackingString")]
            out += _connect_entries(slot, dev)
    for dev in devices:
        if isinstance(dev, VD.VirtualEthernetCard):
            prefix = f"ethernet{dev.key - KEY_NIC}"
            out += [(f"{prefix}.present", "TRUE"), (f"{prefix}.virtualDev", NIC_KINDS.get(type(dev), "vmxnet3"))]
            backing = dev.backing
            if isinstance(backing, VD.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
                port = backing.port
                out += [(f"{prefix}.dvs.switchId", port.switchUuid or ""),
                        (f"{prefix}.dvs.portgroupId", port.portgroupKey or "")]
                if port.portKey:
                    out.append((f"{prefix}.dvs.portId", port.portKey))
                if port.connectionCookie is not None:
                    out.append((f"{prefix}.dvs.connectionId", str(port.connectionCookie)))
                name = network_name(backing)
                if name:
                    out.append((f"{prefix}.networkName", name))
            elif backing is not None and getattr(backing, "deviceName", None):
                out.append((f"{prefix}.networkName", backing.deviceName))
            kind = MAC_TYPES.get(dev.addressType or "generated", "generated")
            out.append((f"{prefix}.addressType", kind))
            if dev.macAddress:
                out.append((f"{prefix}.address" if kind == "static" else f"{prefix}.generatedAddress",
                            dev.macAddress))
            if dev.slotInfo is not None and getattr(dev.slotInfo, "pciSlotNumber", None) is not None:
                out.append((f"{prefix}.pciSlotNumber", str(dev.slotInfo.pciSlotNumber)))
            if dev.wakeOnLanEnabled:
                out.append((f"{prefix}.wakeOnPcktRcv", "TRUE"))
            out += _connect_entries(prefix, dev)
        elif isinstance(dev, VD.VirtualSerialPort):
            prefix = f"serial{dev.key - KEY_SERIAL}"
            out.append((f"{prefix}.present", "TRUE"))
            backing = dev.backing
            if isinstance(backing, VD.VirtualSerialPort.URIBackingInfo):
                out += [(f"{prefix}.fileType", "network"), (f"{prefix}.fileName", backing.serviceURI or ""),
                        (f"{prefix}.network.endPoint", backing.direction or "client")]
                if backing.proxyURI:
                    out.append((f"{prefix}.vspc", backing.proxyURI))
            elif isinstance(backing, VD.VirtualSerialPort.FileBackingInfo):
                out += [(f"{prefix}.fileType", "file"), (f"{prefix}.fileName", file_ref(backing.fileName, vm_dir))]
            elif isinstance(backing, VD.VirtualSerialPort.PipeBackingInfo):
                out += [(f"{prefix}.fileType", "pipe"), (f"{prefix}.fileName", backing.pipeName),
                        (f"{prefix}.pipe.endPoint", backing.endpoint or "client")]
                if backing.noRxLoss:
                    out.append((f"{prefix}.tryNoRxLoss", "TRUE"))
            elif isinstance(backing, VD.VirtualSerialPort.DeviceBackingInfo):
                out += [(f"{prefix}.fileType", "device"), (f"{prefix}.fileName", backing.deviceName)]
            out.append((f"{prefix}.yieldOnMsrRead", flag(dev.yieldOnPoll)))
            out += _connect_entries(prefix, dev)
    return out


# -- .vmx -> config -------------------------------------------------------------------------------------------------
@dataclass
class ParsedVmx:
    """What RegisterVM_Task needs from a .vmx: general settings, devices (with ESX keys), the extraConfig rest."""
    values: dict[str, str]  # lower-cased structural keys -> value
    devices: list = field(default_factory=list)
    nic_networks: dict[int, dict] = field(default_factory=dict)  # NIC key -> {"name":..., "switch":..., "pg":...}
    disk_files: dict[int, str] = field(default_factory=dict)  # disk key -> "[ds] path"
    extra_config: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str, default=None):
        return self.values.get(key.lower(), default)


_CTRL_RE = re.compile(r"^(scsi|sata|nvme)(\d+)\.(present|virtualdev|sharedbus|pcislotnumber)$")
_SLOT_RE = re.compile(r"^(scsi|ide|sata|nvme)(\d+):(\d+)\.(present|filename|devicetype|mode|sharing|"
                      r"clientdevice|startconnected|allowguestcontrol)$")
_NIC_RE = re.compile(r"^ethernet(\d+)\.(present|virtualdev|networkname|addresstype|generatedaddress|address|"
                     r"pcislotnumber|wakeonpcktrcv|startconnected|allowguestcontrol|dvs\.switchid|dvs\.portgroupid|"
                     r"dvs\.portid|dvs\.connectionid)$")
_SERIAL_RE = re.compile(r"^serial(\d+)\.(present|filetype|filename|network\.endpoint|vspc|pipe\.endpoint|"
                        r"trynorxloss|yieldonmsrread|startconnected|allowguestcontrol)$")


def parse_vmx(entries: list[tuple[str, str]], vm_dir: str) -> ParsedVmx:
    values: dict[str, str] = {}
    ctrls: dict[tuple[str, int], dict] = {}
    slots: dict[tuple[str, int, int], dict] = {}
    nics: dict[int, dict] = {}
    serials: dict[int, dict] = {}
    extra: list[tuple[str, str]] = []
    for key, value in entries:
        low = key.lower()
        if low in STRUCTURAL_KEYS:
            values[low] = value
        elif m := _CTRL_RE.match(low):
            ctrls.setdefault((m.group(1), int(m.group(2))), {})[m.group(3)] = value
        elif m := _SLOT_RE.match(low):
            slots.setdefault((m.group(1), int(m.group(2)), int(m.group(3))), {})[m.group(4)] = value
        elif m := _NIC_RE.match(low):
            nics.setdefault(int(m.group(1)), {})[m.group(2)] = value
        elif m := _SERIAL_RE.match(low):
            serials.setdefault(int(m.group(1)), {})[m.group(2)] = value
        else:
            extra.append((key, value))
    parsed = ParsedVmx(values, extra_config=extra)
    devices = parsed.devices
    controllers: dict[tuple[str, int], object] = {}
    for bus in (0, 1):
        ide = VD.VirtualIDEController(key=KEY_IDE + bus, busNumber=bus, device=[])
        controllers[("ide", bus)] = ide
    for (kind, bus), props in sorted(ctrls.items()):
        if not true(props.get("present")):
            continue
        if kind == "scsi":
            cls = SCSI_CLASSES.get((props.get("virtualdev") or "lsilogic").lower(), VD.VirtualLsiLogicController)
            ctrl = cls(key=0, busNumber=bus, sharedBus=SHARED_BUS_BACK.get(props.get("sharedbus", "none"),
                                                                             "noSharing"),
                       scsiCtlrUnitNumber=7, device=[], controllerKey=KEY_PCI)
            if props.get("pcislotnumber", "").isdigit():
                ctrl.slotInfo = VD.VirtualDevice.PciBusSlotInfo(pciSlotNumber=int(props["pcislotnumber"]))
        elif kind == "sata":
            ctrl = VD.VirtualAHCIController(key=0, busNumber=bus, device=[], controllerKey=KEY_PCI)
        else:
            ctrl = VD.VirtualNVMEController(key=0, busNumber=bus, device=[], controllerKey=KEY_PCI)
        ctrl.key = controller_key(ctrl)
        controllers[(kind, bus)] = ctrl
    devices.extend(controllers.values())
    for (kind, bus, unit), props in sorted(slots.items()):
        ctrl = controllers.get((kind, bus))
        if ctrl is None or not true(props.get("present")):
            continue
        dev_type = (props.get("devicetype") or "").lower()
        key = attached_key(ctrl, unit)
        conn = _connectable(props)
        if dev_type.startswith("cdrom") or dev_type == "atapi-cdrom":
            if dev_type == "cdrom-image":
                backing = VD.VirtualCdrom.IsoBackingInfo(fileName=ds_ref(props.get("filename", ""), vm_dir))
            elif dev_type == "atapi-cdrom":
                backing = VD.VirtualCdrom.AtapiBackingInfo(deviceName=props.get("filename", ""))
            else:
                backing = VD.VirtualCdrom.RemotePassthroughBackingInfo(deviceName="", exclusive=False)
            devices.append(VD.VirtualCdrom(key=key, controllerKey=ctrl.key, unitNumber=unit, backing=backing,
                                           connectable=conn))
        elif props.get("filename"):
            file_name = ds_ref(props["filename"], vm_dir)
            parsed.disk_files[key] = file_name
            backing = VD.VirtualDisk.FlatVer2BackingInfo(
                fileName=file_name, diskMode=(props.get("mode") or "persistent").replace("-", "_"),
                sharing="sharingMultiWriter" if (props.get("sharing") or "") == "multi-writer" else "sharingNone")
            devices.append(VD.VirtualDisk(key=key, controllerKey=ctrl.key, unitNumber=unit, backing=backing,
                                          capacityInKB=0))
    for index, props in sorted(nics.items()):
        if not true(props.get("present")):
            continue
        cls = NIC_CLASSES.get((props.get("virtualdev") or "vmxnet3").lower(), VD.VirtualVmxnet3)
        kind = MAC_TYPES_BACK.get((props.get("addresstype") or "generated").lower(), "generated")
        mac = props.get("address") if kind == "manual" else props.get("generatedaddress")
        nic = cls(key=KEY_NIC + index, controllerKey=KEY_PCI, addressType=kind, macAddress=mac or None,
                  connectable=_connectable(props), wakeOnLanEnabled=true(props.get("wakeonpcktrcv")))
        if props.get("pcislotnumber", "").isdigit():
            nic.slotInfo = VD.VirtualDevice.PciBusSlotInfo(pciSlotNumber=int(props["pcislotnumber"]))
        parsed.nic_networks[nic.key] = {"name": props.get("networkname"), "switch": props.get("dvs.switchid"),
                                        "portgroup": props.get("dvs.portgroupid"), "port": props.get("dvs.portid")}
        devices.append(nic)
    for index, props in sorted(serials.items()):
        if not true(props.get("present")):
            continue
        file_type = (props.get("filetype") or "").lower()
        name = props.get("filename", "")
        if file_type == "network":
            backing = VD.VirtualSerialPort.URIBackingInfo(serviceURI=name, proxyURI=props.get("vspc") or None,
                                                          direction=props.get("network.endpoint") or "client")
        elif file_type == "file":
            backing = VD.VirtualSerialPort.FileBackingInfo(fileName=ds_ref(name, vm_dir))
        elif file_type == "pipe":
            backing = VD.VirtualSerialPort.PipeBackingInfo(pipeName=name, endpoint=props.get("pipe.endpoint")
                                                           or "client", noRxLoss=true(props.get("trynorxloss")))
        else:
            backing = VD.VirtualSerialPort.DeviceBackingInfo(deviceName=name)
        devices.append(VD.VirtualSerialPort(key=KEY_SERIAL + index, controllerKey=KEY_SIO, unitNumber=index,
                                            backing=backing,
                                            yieldOnPoll=true(props.get("yieldonmsrread")),
                                            connectable=_connectable(props)))
    return parsed


def _connectable(props: dict) -> vim.vm.device.VirtualDevice.ConnectInfo:
    return VD.VirtualDevice.ConnectInfo(startConnected=true(props.get("startconnected", "TRUE")),
                                        allowGuestControl=true(props.get("allowguestcontrol")), connected=False)
