"""What a container VM looks like in vSphere: its names, paths, devices and extraConfig at creation (VIC's
`lib/spec`, `lib/guest/linux.go`, `lib/portlayer/util.DisplayName`; vic-behaviour.md §1(a) and §5).

Pure functions of their arguments, so the layout is tested without a vSphere.
"""
from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from ...config import ExecutorConfig, encode
from ...vsphere import DatastorePath, option_values, vim

MAX_VM_NAME = 80  # vSphere's limit on a display name (VIC lib/constants MaxVMNameLength)
SHORT_ID = 12
NAME_TOKEN, ID_TOKEN = "{name}", "{id}"
DEFAULT_CONVENTION = f"{NAME_TOKEN}-{ID_TOKEN}"

DEFAULT_CPUS = 2  # VIC's persona defaults (vic-behaviour.md §5.2)
DEFAULT_MEMORY_MB = 2048
MIN_MEMORY_MB = 512
MEMORY_STEP_MB = 128

GUEST_ID = "otherGuest64"
LOG_FILES = ("tether.debug", "output.log")  # ttyS1 and ttyS2 of the tether (vic-behaviour.md §4.13)

# Fixed extraConfig of every container VM (VIC lib/spec/spec.go).
FIXED_EXTRA_CONFIG = {
    "disk.EnableUUID": "true",
    "answer.msg.disk.duplicateUUID": "Yes",
    "answer.msg.serial.file.open": "Append",
    "sched.mem.lpage.maxSharedPages": "256",
    "vmotion.checkpointSVGAPrimarySize": "4194304",
    "serial0.hardwareFlowControl": "TRUE",
    "memory.noHotAddOver4GB": "FALSE",
    "memory.maxGrow": "512",
    "tools.remindInstall": "FALSE",
    "tools.upgrade.policy": "manual",
}

# Temporary device keys of the create spec (negative: vSphere assigns the real ones).
KEY_SCSI, KEY_ROOT_DISK, KEY_CDROM, KEY_SERIAL = -100, -101, -300, -400
IDE_CONTROLLER_KEY = 200  # the first IDE controller every VM has


def new_id() -> str:
    """A container ID: 64 lowercase hex characters."""
    return secrets.token_hex(32)


def short_id(container_id: str) -> str:
    return container_id[:SHORT_ID]


def display_name(name: str, container_id: str, convention: str = "") -> str:
    """The VM display name of container `name`/`container_id` under a naming convention (VIC util.DisplayName).

    The capacity is 80 minus the template's fixed text; `{id}` becomes the short ID, then `{name}` the name cut to
    what is left. A template with no room falls back to the default, and one with no room at all to the bare ID.
    With the default `{name}-{id}`: `name[:67] + "-" + id[:12]`.
    """
    template = convention or DEFAULT_CONVENTION
    capacity = MAX_VM_NAME - len(template.replace(NAME_TOKEN, "", 1).replace(ID_TOKEN, "", 1))
    if capacity <= 0:
        template = DEFAULT_CONVENTION
        capacity = MAX_VM_NAME - len(template.replace(NAME_TOKEN, "", 1).replace(ID_TOKEN, "", 1))
        if capacity <= 0:
            template, capacity = ID_TOKEN, MAX_VM_NAME
    out = template
    if ID_TOKEN in out:
        value = short_id(container_id)[:capacity]
        out = out.replace(ID_TOKEN, value, 1)
        capacity -= len(value)
    if NAME_TOKEN in out:
        # VIC cuts a byte prefix; a name is ASCII ([a-zA-Z0-9_.-]), so characters are bytes
        value = name[:max(capacity, 0)]
        out = out.replace(NAME_TOKEN, value, 1)
    return out


def bios_uuid(vch_id: str, container_id: str) -> str:
    """The container VM's BIOS UUID: UUIDv5 (SHA-1) of the ID in the VCH's namespace (VIC instanceUUID)."""
    return str(uuid.uuid5(uuid.UUID(vch_id), container_id))


def memory_mb(requested_bytes: int | None) -> int:
    """VIC's rule: default 2048 MB; at least 512 MB; rounded up to a multiple of 128 MB."""
    if not requested_bytes:
        return DEFAULT_MEMORY_MB
    mb = -(-int(requested_bytes) // (1024 * 1024))
    mb = max(mb, MIN_MEMORY_MB)
    return -(-mb // MEMORY_STEP_MB) * MEMORY_STEP_MB


@dataclass(frozen=True)
class Placement:
    """Where a container's files go: the datastore, and whether it is vSAN (top-level folders are namespaces)."""
    datastore: str
    vsan: bool = False

    def folder(self, container_id: str) -> DatastorePath:
        """`[ds] <id>`: the container's datastore folder, named after its ID on every kind of datastore."""
        return DatastorePath(self.datastore, container_id)

    def vm_path(self, container_id: str) -> str:
        """CreateVM_Task's vmPathName. On vSAN `[ds]` alone: vSAN makes the namespace after the display name, which
        is the ID at creation (DESIGN-DECISIONS §1); elsewhere `[ds] <id>/<id>.vmx`."""
        if self.vsan:
            return f"[{self.datastore}]"
        return str(self.folder(container_id).join(f"{container_id}.vmx"))

    def root_disk(self, container_id: str) -> DatastorePath:
        return self.folder(container_id).join(f"{container_id}.vmdk")

    def log_file(self, container_id: str, name: str) -> DatastorePath:
        return self.folder(container_id).join(name)


@dataclass
class CreateDevices:
    """The devices of a new container VM besides the ones every VM has."""
    bootstrap_iso: str = ""  # "[ds] <vch>/bootstrap.iso"; no CD-ROM when empty
    root_disk: DatastorePath | None = None  # the container's writable layer
    parent_disk: DatastorePath | None = None  # the image's top layer
    log_files: tuple[DatastorePath, ...] = ()
    attach_uri: str = ""  # the VCH's attach listener (`tcp://127.0.0.1:<port>`); no attach port when empty


def scsi_controller() -> vim.vm.device.VirtualDeviceSpec:
    return vim.vm.device.VirtualDeviceSpec(
        operation="add", device=vim.vm.device.ParaVirtualSCSIController(
            key=KEY_SCSI, busNumber=0, sharedBus="noSharing"))


def cdrom(iso: str) -> vim.vm.device.VirtualDeviceSpec:
    return vim.vm.device.VirtualDeviceSpec(
        operation="add", device=vim.vm.device.VirtualCdrom(
            key=KEY_CDROM, controllerKey=IDE_CONTROLLER_KEY, unitNumber=0,
            backing=vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName=iso),
            connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, connected=True,
                                                                allowGuestControl=True)))


def root_disk(path: DatastorePath, parent: DatastorePath) -> vim.vm.device.VirtualDeviceSpec:
    """The container's root disk: a new thin delta disk, child of the image's top layer (VIC image/vsphere/join.go);
    its capacity is its parent's."""
    backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
        fileName=str(path), diskMode="persistent", thinProvisioned=True,
        parent=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName=str(parent), diskMode="persistent"))
    return vim.vm.device.VirtualDeviceSpec(
        operation="add", fileOperation="create", device=vim.vm.device.VirtualDisk(
            key=KEY_ROOT_DISK, controllerKey=KEY_SCSI, unitNumber=0, backing=backing))


def log_serial_port(path: DatastorePath, index: int) -> vim.vm.device.VirtualDeviceSpec:
    """A file-backed serial port the tether writes a log to (VIC lib/portlayer/logging)."""
    return vim.vm.device.VirtualDeviceSpec(
        operation="add", device=vim.vm.device.VirtualSerialPort(
            key=KEY_SERIAL - index, yieldOnPoll=True,
            backing=vim.vm.device.VirtualSerialPort.FileBackingInfo(fileName=str(path)),
            connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, connected=True,
                                                                allowGuestControl=True)))


def attach_serial_port(uri: str) -> vim.vm.device.VirtualDeviceSpec:
    """The attach serial port (VIC lib/portlayer/attach/join.go): URI backing, direction client, serviceURI = the
    VCH's attach listener. Unlike VIC (connected only while bound), it is connected from power on: see
    `vic_ref.portlayer.interaction`."""
    return vim.vm.device.VirtualDeviceSpec(
        operation="add", device=vim.vm.device.VirtualSerialPort(
            key=KEY_SERIAL - 10, yieldOnPoll=True,
            backing=vim.vm.device.VirtualSerialPort.URIBackingInfo(serviceURI=uri, direction="client"),
            connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, connected=True,
                                                                allowGuestControl=True)))


def device_changes(devices: CreateDevices) -> list:
    changes = [scsi_controller()]
    if devices.bootstrap_iso:
        changes.append(cdrom(devices.bootstrap_iso))
    if devices.root_disk is not None and devices.parent_disk is not None:
        changes.append(root_disk(devices.root_disk, devices.parent_disk))
    for index, path in enumerate(devices.log_files):
        changes.append(log_serial_port(path, index))
    if devices.attach_uri:
        changes.append(attach_serial_port(devices.attach_uri))
    return changes


def host_key() -> bytes:
    """The tether's SSH host key (executor config `key`, PEM). VIC makes a 512-bit RSA key; that size is refused by
    today's libraries, so this is Ed25519 (PKCS#8 PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def alternate_guest_name(version: str, build: str = "", commit: str = "") -> str:
    """`Photon - Container <ver>, <build>, <commit7>`, as VIC names the guest of a container VM."""
    return f"Photon - Container {version}, {build or '0'}, {(commit or '0000000')[:7]}"


def create_spec(cfg: ExecutorConfig, *, placement: Placement, devices: CreateDevices, vch_id: str,
                num_cpus: int = DEFAULT_CPUS, memory: int = DEFAULT_MEMORY_MB,
                version: str = "") -> vim.vm.ConfigSpec:
    """CreateVM_Task's spec: display name = the ID (the folder's name; renamed right after), the fixed options
    and the whole encoded executor config in extraConfig."""
    from ...migration import container_layout
    extra = dict(FIXED_EXTRA_CONFIG)
    extra.update(container_layout(encode(cfg)))  # an older release's VCH writes its own data version's layout
    return vim.vm.ConfigSpec(
        name=cfg.id, guestId=GUEST_ID, alternateGuestName=alternate_guest_name(version),
        numCPUs=num_cpus, memoryMB=memory, cpuHotAddEnabled=False, memoryHotAddEnabled=False,
        uuid=bios_uuid(vch_id, cfg.id), files=vim.vm.FileInfo(vmPathName=placement.vm_path(cfg.id)),
        deviceChange=device_changes(devices), extraConfig=option_values(extra))


__all__ = ["new_id", "short_id", "display_name", "bios_uuid", "memory_mb", "Placement", "CreateDevices",
           "create_spec", "device_changes",
           "attach_serial_port", "host_key", "alternate_guest_name", "MAX_VM_NAME", "SHORT_ID", "DEFAULT_CPUS",
           "DEFAULT_MEMORY_MB", "FIXED_EXTRA_CONFIG", "LOG_FILES", "DEFAULT_CONVENTION"]
