"""The vSphere side of the image store: datastore folders and files, and disks hot-added to the appliance VM.

A layer is written the way VIC writes one (lib/portlayer/storage/image/vsphere, pkg/vsphere/disk): a new child disk
of its parent is created by reconfiguring the appliance VM (the VCH's own VM) with a VirtualDisk (fileOperation
create, backing parent = the parent's vmdk); the guest finds it through the guest channel, fills its data, and the
device is removed again without destroying the file. Everything here speaks vim25 through `vic_ref.vsphere`.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ... import errors
from ...trace import Operation
from ...vsphere import DatastorePath, Session, vim

SCSI_UNITS = [u for u in range(16) if u != 7]  # unit 7 is the controller's own
DEFAULT_DISK_WAIT = 60.0


@dataclass(frozen=True)
class AttachedDisk:
    """A disk attached to the appliance VM, as its guest sees it."""
    path: DatastorePath
    key: int
    data: str  # the real path of the disk's own data (the top of its chain)
    chain: tuple[str, ...]  # the data of the whole chain, base first


class Datastore:
    """Folders and files on one datastore (FileManager, VirtualDiskManager, the datastore browser, /folder)."""

    def __init__(self, session: Session, name: str):
        self.session = session
        self.name = name
        self._ref: vim.Datastore | None = None
        self._vsan: bool | None = None

    def ref(self, op: Operation) -> vim.Datastore:
        if self._ref is None:
            self._ref = self.session.finder.datastore(op, self.name, self.session.datacenter)
        return self._ref

    def is_vsan(self, op: Operation) -> bool:
        if self._vsan is None:
            summary = self.session.retrieve_one(op, self.ref(op), ["summary.type"])
            self._vsan = (summary.get("summary.type") or "").lower() == "vsan"
        return self._vsan

    def mkdir(self, op: Operation, path: DatastorePath) -> None:
        """Make a folder and its parents; an existing one is fine. On vSAN the top-level folder is a namespace."""
        manager = self.session.content.fileManager
        try:
            self.session.call(op, manager.MakeDirectory, name=str(path), datacenter=self.session.datacenter,
                              createParentDirectories=True)
            return
        except errors.AlreadyExists:
            return
        except errors.VicError:
            if not self.is_vsan(op) or not path.path:
                raise
        top = path.path.split("/", 1)[0]
        namespaces = self.session.content.datastoreNamespaceManager
        try:
            self.session.call(op, namespaces.CreateDirectory, datastore=self.ref(op), displayName=top)
        except errors.AlreadyExists:
            pass
        if "/" in path.path:
            try:
                self.session.call(op, manager.MakeDirectory, name=str(path), datacenter=self.session.datacenter,
                                  createParentDirectories=True)
            except errors.AlreadyExists:
                pass

    def delete(self, op: Operation, path: DatastorePath) -> None:
        """Delete a file or a folder with its content; a missing one is fine."""
        manager = self.session.content.fileManager
        try:
            self.session.run_task(op, manager.DeleteDatastoreFile_Task, name=str(path),
                                  datacenter=self.session.datacenter)
        except errors.NotFound:
            pass

    def delete_disk(self, op: Operation, path: DatastorePath) -> None:
        """Delete a virtual disk; InUse (FileLocked) while another disk is its child, e.g. a container's."""
        manager = self.session.content.virtualDiskManager
        try:
            self.session.run_task(op, manager.DeleteVirtualDisk_Task, name=str(path),
                                  datacenter=self.session.datacenter)
        except errors.NotFound:
            pass

    def upload(self, op: Operation, path: DatastorePath, data: bytes) -> None:
        self.session.upload(op, path, data)

    def download(self, op: Operation, path: DatastorePath) -> bytes:
        return self.session.download(op, path)

    def tree(self, op: Operation, path: DatastorePath) -> dict[str, dict[str, bool]]:
        """Every folder under `path` (itself as ""), relative, with its entries: name → is a folder.

        One SearchDatastoreSubFolders_Task; disks show as their descriptor only. Missing `path`: {}.
        """
        browser = self.session.retrieve_one(op, self.ref(op), ["browser"])["browser"]
        spec = vim.host.DatastoreBrowser.SearchSpec(
            matchPattern=["*"], details=vim.host.DatastoreBrowser.FileInfo.Details(fileType=True))
        try:
            results = self.session.run_task(op, browser.SearchDatastoreSubFolders_Task,
                                            datastorePath=str(path), searchSpec=spec)
        except errors.NotFound:
            return {}
        out: dict[str, dict[str, bool]] = {}
        base = path.path.rstrip("/")
        for result in results or []:
            folder = DatastorePath.parse(result.folderPath).path.rstrip("/")
            if folder == base:
                rel = ""
            elif not base:
                rel = folder
            elif folder.startswith(base + "/"):
                rel = folder[len(base) + 1:]
            else:
                continue
            out[rel] = {f.path.rstrip("/"): isinstance(f, vim.host.DatastoreBrowser.FolderInfo)
                        for f in result.file or []}
        return out


class ApplianceDisks:
    """Hot-adds and removes disks on the appliance VM and finds them through the guest channel."""

    def __init__(self, session: Session, guest_channel, *, max_attached: int = 8,
                 disk_wait: float = DEFAULT_DISK_WAIT):
        self.session = session
        self.guest = guest_channel
        self.disk_wait = disk_wait
        self._vm: vim.VirtualMachine | None = None
        self._reconfigure = threading.Lock()  # one device change at a time: unit numbers are picked from the VM
        self._slots = threading.BoundedSemaphore(max_attached)

    def vm(self, op: Operation) -> vim.VirtualMachine:
        """The appliance VM: found by the BIOS UUID the guest channel reports (as VIC's guest.GetSelf)."""
        if self._vm is None:
            info = getattr(self.guest, "info", None) or {}
            uuid = info.get("uuid")
            if not uuid:
                raise errors.InvalidState("the guest channel did not report this VM's uuid", op_id=op.id)
            index = self.session.content.searchIndex
            vm = self.session.call(op, index.FindByUuid, datacenter=self.session.datacenter, uuid=uuid,
                                   vmSearch=True)
            if vm is None:
                raise errors.NotFound(f"the appliance VM (uuid {uuid}) was not found", op_id=op.id)
            self._vm = vm
        return self._vm

    def devices(self, op: Operation) -> list:
        return list(self.session.retrieve_one(op, self.vm(op), ["config.hardware.device"])
                    .get("config.hardware.device") or [])

    def attached(self, op: Operation, under: DatastorePath | None = None) -> list:
        """The VM's disk devices (whose file is under `under`, when given)."""
        out = []
        for device in self.devices(op):
            if not isinstance(device, vim.vm.device.VirtualDisk):
                continue
            name = getattr(device.backing, "fileName", None)
            if under is not None:
                try:
                    path = DatastorePath.parse(name or "")
                except errors.InvalidArgument:
                    continue
                if path.datastore != under.datastore or not (path.path + "/").startswith(under.path + "/"):
                    continue
            out.append(device)
        return out

    # -- attach / detach ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def new_disk(self, op: Operation, path: DatastorePath, parent: DatastorePath | None = None, *,
                 capacity_kb: int = 0, label: str = "", destroy: bool = False,
                 disk_mode: str = "persistent") -> Iterator[AttachedDisk]:
        """Create a disk (a child of `parent`) attached to the appliance VM; yield it as the guest sees it; detach
        it afterwards (and delete its files when `destroy`). On failure the new disk is detached."""
        with self._slots:
            self._add(op, path, parent, capacity_kb, label, disk_mode)
            try:
                yield self._find(op, path)
            finally:
                self.detach(op, path, destroy=destroy)

    def _add(self, op: Operation, path: DatastorePath, parent: DatastorePath | None, capacity_kb: int,
             label: str, disk_mode: str = "persistent") -> None:
        with self._reconfigure:
            devices = self.devices(op)
            changes = []
            controller = next((d for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController)), None)
            if controller is None:
                # an appliance without a SCSI controller gets a paravirtual one, as VIC's appliances have
                buses = {d.busNumber for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController)}
                controller = vim.vm.device.ParaVirtualSCSIController(
                    key=-100, busNumber=min(set(range(4)) - buses), sharedBus="noSharing")
                changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=controller))
            used = {d.unitNumber for d in devices if getattr(d, "controllerKey", None) == controller.key}
            free = [u for u in SCSI_UNITS if u not in used]
            if not free:
                raise errors.Busy(f"no free unit on the appliance's SCSI controller for {path}", op_id=op.id)
            backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                fileName=str(path), diskMode=disk_mode, thinProvisioned=True)
            if parent is not None:
                backing.parent = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName=str(parent))
            disk = vim.vm.device.VirtualDisk(
                key=-1, controllerKey=controller.key, unitNumber=free[0], capacityInKB=capacity_kb or 0,
                backing=backing, deviceInfo=vim.Description(label=label or path.name, summary=str(path)))
            changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk))
            op.debug("attaching new disk %s (parent %s) to the appliance", path, parent)
            self.session.run_task(op, self.vm(op).ReconfigVM_Task, spec=vim.vm.ConfigSpec(deviceChange=changes))

    def _find(self, op: Operation, path: DatastorePath) -> AttachedDisk:
        """The attached disk as the guest sees it (it may take a moment to show up, as a hot-add does)."""
        wanted = str(path)
        deadline = time.monotonic() + self.disk_wait
        delay = 0.02
        while True:
            op.check()
            for disk in self.guest.disks():
                file = disk.file if hasattr(disk, "file") else disk.get("file")
                if file == wanted:
                    return _attached(path, disk)
            if time.monotonic() > deadline:
                raise errors.Timeout(f"disk {path} did not show up in the appliance within {self.disk_wait:g}s",
                                     op_id=op.id)
            op.sleep(delay)
            delay = min(delay * 2, 0.5)

    def detach(self, op: Operation, path: DatastorePath, *, destroy: bool = False) -> None:
        """Remove the disk device with this file from the appliance VM (keeping the file unless `destroy`)."""
        with self._reconfigure:
            device = next((d for d in self.attached(op) if getattr(d.backing, "fileName", None) == str(path)), None)
            if device is None:
                return
            spec = vim.vm.device.VirtualDeviceSpec(operation="remove", device=device)
            if destroy:
                spec.fileOperation = "destroy"
            op.debug("detaching disk %s from the appliance%s", path, " (destroying it)" if destroy else "")
            self.session.run_task(op, self.vm(op).ReconfigVM_Task, spec=vim.vm.ConfigSpec(deviceChange=[spec]))

    def detach_all(self, op: Operation, under: DatastorePath) -> list[str]:
        """Detach every disk under a folder (left attached by a crash), as VIC's DetachAll at start."""
        with self._reconfigure:
            devices = self.attached(op, under)
            if not devices:
                return []
            specs = [vim.vm.device.VirtualDeviceSpec(operation="remove", device=d) for d in devices]
            self.session.run_task(op, self.vm(op).ReconfigVM_Task, spec=vim.vm.ConfigSpec(deviceChange=specs))
            return [d.backing.fileName for d in devices]


def _attached(path: DatastorePath, disk) -> AttachedDisk:
    if isinstance(disk, dict):
        chain = tuple(layer.get("data") or "" for layer in disk.get("chain") or [])
        key = disk.get("key")
    else:
        chain = tuple(getattr(disk, "data_paths", None) or [layer.data for layer in disk.chain])
        key = disk.key
    if not chain or not chain[-1]:
        raise errors.InternalError(f"the guest sees no data for disk {path}")
    return AttachedDisk(path, key, chain[-1], chain)


__all__ = ["Datastore", "ApplianceDisks", "AttachedDisk"]
