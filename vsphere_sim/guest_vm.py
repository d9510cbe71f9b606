"""A guest's view of its VM: the manifest in its CD-ROM that names the guest program, the guestinfo keys it may see
and write, its disks and serial ports as the channel describes them, and the VM's `guest` properties it drives.

The manifest format and how a guest boots are described in `guests.py`; the requests that return these descriptions in
`guest_transport.py`. These functions read and change VM state: call them under `sim.lock`.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyVmomi import vim

from .vmdk import ext4_label

log = logging.getLogger("vsphere_sim.guests")

MANIFEST_KEY = "vsphere_sim_guest"
MAX_MANIFEST_BYTES = 64 * 1024
GUESTINFO_PREFIX = "guestinfo."


# -- guestinfo scopes ---------------------------------------------------------------------------------------------
def guest_visible(key: str) -> bool:
    return key.startswith(GUESTINFO_PREFIX)


def guest_writable(key: str) -> bool:
    return key.startswith(GUESTINFO_PREFIX) and "/" not in key


# -- the ISO manifest -----------------------------------------------------------------------------------------------
@dataclass
class GuestManifest:
    module: str
    args: list[str] = field(default_factory=list)
    version: str = ""
    env: dict[str, str] = field(default_factory=dict)
    pythonpath: list[str] = field(default_factory=list)


def parse_manifest(data: bytes) -> GuestManifest | None:
    """The guest an ISO file names, or None when it is not a sim guest manifest."""
    if len(data) > MAX_MANIFEST_BYTES:
        return None
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    spec = doc.get(MANIFEST_KEY) if isinstance(doc, dict) else None
    if not isinstance(spec, dict):
        return None
    module, args = spec.get("module"), spec.get("args", [])
    env, pythonpath = spec.get("env", {}), spec.get("pythonpath", [])
    if not isinstance(module, str) or not module or not all(p.isidentifier() for p in module.split(".")):
        return None
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        return None
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        return None
    if not isinstance(pythonpath, list) or not all(isinstance(p, str) for p in pythonpath):
        return None
    return GuestManifest(module, list(args), str(spec.get("version", "")), dict(env), list(pythonpath))


def make_manifest(module: str, args: list[str] | None = None, version: str = "", env: dict | None = None,
                  pythonpath: list[str] | None = None) -> bytes:
    """The content of an ISO that boots `python -m module args` (for tests and installers)."""
    spec: dict[str, Any] = {"module": module, "args": list(args or [])}
    if version:
        spec["version"] = version
    if env:
        spec["env"] = dict(env)
    if pythonpath:
        spec["pythonpath"] = list(pythonpath)
    return (json.dumps({MANIFEST_KEY: spec}, indent=1) + "\n").encode("utf-8")


# -- the VM's side: properties, extraConfig, devices ----------------------------------------------------------------
def iso_paths(vm) -> list[str]:
    if hasattr(vm, "iso_paths"):
        return list(vm.iso_paths())
    paths = []
    for device in _devices(vm):
        if isinstance(device, vim.vm.device.VirtualCdrom) and \
                isinstance(device.backing, vim.vm.device.VirtualCdrom.IsoBackingInfo) and device.backing.fileName:
            paths.append(device.backing.fileName)
    return paths


def _devices(vm) -> list:
    config = vm.props.get("config")
    hardware = getattr(config, "hardware", None)
    return list(getattr(hardware, "device", None) or [])


def extra_config_items(vm) -> dict[str, str]:
    if hasattr(vm, "extra_config_items"):
        return dict(vm.extra_config_items())
    config = vm.props.get("config")
    return {o.key: "" if o.value is None else str(o.value) for o in (getattr(config, "extraConfig", None) or [])}


def update_extra_config(vm, values: dict[str, str]):
    if hasattr(vm, "update_extra_config"):
        vm.update_extra_config(values)
        return
    # Fallback for a VM without the helper: as ReconfigVM_Task does it (an empty value removes the key).
    config = vm.props["config"]
    current = {o.key: o for o in (config.extraConfig or [])}
    for key, value in values.items():
        if value == "":
            current.pop(key, None)
        else:
            current[key] = vim.option.OptionValue(key=key, value=value)
    config.extraConfig = list(current.values())
    vm.touch("config")


def set_guest_state(vm, running: bool, operations_ready: bool = False, report: dict | None = None):
    """Reflect the guest agent's state in the VM's `guest` (and `summary.guest`) properties, as Tools does."""
    report = report or {}
    guest = vm.props.get("guest")
    if guest is None:
        guest = vim.vm.GuestInfo()
        vm.props["guest"] = guest
    state = {
        "guestState": "running" if running else "notRunning",
        "toolsRunningStatus": "guestToolsRunning" if running else "guestToolsNotRunning",
        "toolsStatus": "toolsOk" if running else "toolsNotRunning",
        "guestOperationsReady": bool(running and operations_ready),
        "interactiveGuestOperationsReady": False,
        "ipAddress": report.get("ip_address") if running else None,
        "hostName": report.get("host_name") if running else None,
    }
    if running:
        state["toolsVersionStatus2"] = "guestToolsUnmanaged"
        state["toolsVersionStatus"] = "guestToolsUnmanaged"
        if report.get("full_name"):
            state["guestFullName"] = report["full_name"]
    changed = False
    for name, value in state.items():
        if getattr(guest, name, None) != value:
            setattr(guest, name, value)
            changed = True
    if changed:
        vm.touch("guest")
    summary = vm.props.get("summary")
    summary_guest = getattr(summary, "guest", None)
    if summary_guest is not None:
        fields = {"toolsStatus": state["toolsStatus"], "toolsRunningStatus": state["toolsRunningStatus"],
                  "ipAddress": state["ipAddress"], "hostName": state["hostName"]}
        if running:
            fields["toolsVersionStatus2"] = "guestToolsUnmanaged"
        if any(getattr(summary_guest, k, None) != v for k, v in fields.items()):
            for name, value in fields.items():
                setattr(summary_guest, name, value)
            vm.touch("summary")


def describe_disks(sim, vm) -> list[dict]:
    """The VM's disks as the guest sees them (JSON-able).

    Each: key, unit_number, controller_key, device_label (the device's label), file ("[ds] x.vmdk"), disk_mode,
    capacity_kb, uuid, formatted ("ext4" for a disk whose data is an ext4 image, else None: a directory tree),
    label (the ext4 filesystem label, what /dev/disk/by-label shows; None for a directory tree), and chain: the
    disk's layers base first, each {file, data (real path), formatted}; the last layer is the disk itself, and a
    guest stacks the chain's directories as an overlay (lower = base) to see the disk's filesystem.
    """
    raw = vm.disks() if hasattr(vm, "disks") else \
        [d for d in _devices(vm) if isinstance(d, vim.vm.device.VirtualDisk)]
    out = []
    for disk in raw:
        if isinstance(disk, dict):
            out.append(_jsonable(disk))
            continue
        backing = disk.backing
        file_name = getattr(backing, "fileName", None)
        chain = _disk_chain(sim, file_name)
        top = chain[-1] if chain else {}
        out.append({
            "key": disk.key, "unit_number": disk.unitNumber, "controller_key": disk.controllerKey,
            "device_label": disk.deviceInfo.label if disk.deviceInfo else None,
            "file": file_name, "disk_mode": getattr(backing, "diskMode", None),
            "capacity_kb": disk.capacityInKB, "uuid": getattr(backing, "uuid", None),
            "formatted": top.get("formatted"),
            "label": ext4_label(top["data"]) if top.get("formatted") == "ext4" and top.get("data") else None,
            "chain": chain,
        })
    return out


def _disk_chain(sim, file_name: str | None) -> list[dict]:
    layers: list[dict] = []
    disk_info = getattr(sim.datastores, "disk_info", None)
    if not file_name or disk_info is None:
        return layers
    try:
        info = disk_info(file_name)
        while True:
            layers.append({"file": str(info.path), "data": str(info.data_path), "formatted": info.formatted})
            if info.parent is None or len(layers) > 255:
                break
            info = disk_info(info.parent)
    except Exception as err:  # a missing or broken disk: the guest sees what could be read
        log.debug("%s: cannot read the chain of %s: %s", sim, file_name, err)
    layers.reverse()
    return layers


def describe_serial_ports(sim, vm) -> list[dict]:
    """The VM's serial ports as the guest sees them (JSON-able); how they connect is described in `guest_serial.py`.

    Each: key, label (the device's label), connected, start_connected, kind (file | uri | pipe | device), and
    - file: file ("[ds] path") and path (its real path, the file the guest appends to; it exists while the port is
      connected; None when the datastore path can't be resolved);
    - uri: uri (serviceURI), proxy_uri (proxyURI; not used by the sim), direction, and socket: the Unix stream socket
      that is this port's ttyS<n> (connect to it; a new connection replaces the previous one), or None while the port
      is not connected (or is not a client port the sim connects);
    - pipe: pipe, endpoint; device: device.
    """
    serial = getattr(getattr(sim, "guests", None), "serial", None)
    out = []
    for device in _devices(vm):
        if not isinstance(device, vim.vm.device.VirtualSerialPort):
            continue
        backing = device.backing
        connectable = device.connectable
        info: dict[str, Any] = {"key": device.key, "label": device.deviceInfo.label if device.deviceInfo else None,
                                "connected": bool(connectable and connectable.connected),
                                "start_connected": bool(connectable and connectable.startConnected)}
        if isinstance(backing, vim.vm.device.VirtualSerialPort.FileBackingInfo):
            info.update(kind="file", file=backing.fileName, path=None)
            try:
                info["path"] = str(sim.datastores.local(sim.datastores.parse(backing.fileName)))
            except Exception:
                pass
        elif isinstance(backing, vim.vm.device.VirtualSerialPort.URIBackingInfo):
            info.update(kind="uri", uri=backing.serviceURI, proxy_uri=backing.proxyURI, direction=backing.direction,
                        socket=serial.socket_path(vm.moid, device.key) if serial is not None else None)
        elif isinstance(backing, vim.vm.device.VirtualSerialPort.PipeBackingInfo):
            info.update(kind="pipe", pipe=backing.pipeName, endpoint=backing.endpoint)
        elif isinstance(backing, vim.vm.device.VirtualSerialPort.DeviceBackingInfo):
            info.update(kind="device", device=backing.deviceName)
        else:
            info.update(kind=type(backing).__name__ if backing is not None else None)
        out.append(info)
    return out


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Path):
        return str(value)
    return str(value)
