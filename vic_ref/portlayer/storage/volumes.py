"""Volume stores: volumes as independent disks on the datastore (VIC `lib/portlayer/storage/volume`, DESIGN-DECISIONS
§4, vic-behaviour.md §2).

A volume store is a name mapped to a datastore path (`VCHConfig.storage.volume_stores`, given at VCH creation as
`--volume-store ds/path:name`); a store named `default` is where anonymous volumes go. Layout under a store's root:

    <root>/volumes/<name>/<name>.vmdk            the volume's disk: thin, independent-persistent; its data an ext4
                                                 filesystem labelled `label(name)` with `.vic.vol.data` at its root
    <root>/volumes/<name>/imageMetadata/<key>    the volume's metadata, one file per key (the personality keeps
                                                 Docker's model in `DockerMetaData`), written last

Creating a volume (VIC `vsphere.VolumeStore.VolumeCreate`): make its folder, create its disk attached to the appliance
VM, format it in the appliance (`volume_fs.py`), detach it, write its metadata. Anything that fails removes the folder
again, so a failed create leaves nothing on the datastore. The store keeps no state of its own: `start` finds every
volume again from the datastore (after detaching volume disks a crash left on the appliance, and deleting volumes
whose create never finished: no disk or no metadata).

Joining a volume to a container being created (VIC `vsphere.VolumeJoin`): the disk is added to the create spec as an
existing independent-persistent disk (no file operation), and a mount spec `{source label:<label>, path, mode,
copymode}` goes into the executor config under the volume's name, so both land in vSphere in the one commit. The
tether finds the disk by its label and mounts it (`vic_ref/tether/mounts.py`).

A store may be an NFS export instead (`nfs://host/path?...`, `nfs_volumes.py`): its volumes are directories there,
joined with an `nfs://` mount spec and no disk.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ... import errors
from ...config.executor import COPY_NEW, URL, MountSpec
from ...trace import Operation
from ...vsphere import DatastorePath, Session, vim
from . import volume_fs
from .disks import ApplianceDisks, Datastore
from .nfs_volumes import NfsVolumeStore

VOLUMES_DIR = "volumes"
METADATA_DIR = "imageMetadata"
DEFAULT_STORE = "default"
DEFAULT_CAPACITY_MB = 1024  # VIC's PL default when no capacity is asked for
DISK_MODE = "independent_persistent"
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
MAX_FILE_NAME = 255  # a datastore file name (VMFS)
MAX_NAME = MAX_FILE_NAME - len("-flat.vmdk")  # the disk's extent is the longest name a volume gives a file
VOLUME_DEVICE_KEY = -500  # temporary device keys of volume disks in a create spec: -500, -501, ...

UsageFn = Callable[[Operation, str], list[str]]  # (op, volume name) -> IDs of the containers that have it joined


@dataclass
class Volume:
    name: str
    store: str
    disk: DatastorePath | None  # <root>/volumes/<name>/<name>.vmdk; None on an NFS store
    metadata: dict[str, bytes] = field(default_factory=dict)
    source: str = ""  # an NFS volume's directory: nfs://host/path/volumes/<name>

    @property
    def label(self) -> str:
        return volume_fs.label(self.name)

    @property
    def folder(self) -> DatastorePath:
        assert self.disk is not None, "an NFS volume has no datastore folder"
        return self.disk.parent

    @property
    def self_link(self) -> str:
        return f"/storage/volumes/{self.store}/{self.name}"


class VolumeExists(errors.AlreadyExists):
    def __init__(self, name: str, **kwargs):
        super().__init__(f"volume {name} already exists", **kwargs)
        self.name = name


class VolumeNotFound(errors.NotFound):
    def __init__(self, name: str, **kwargs):
        super().__init__(f"volume {name} not found", **kwargs)
        self.name = name


class StoreNotFound(errors.NotFound):
    def __init__(self, store: str, url: str = "", **kwargs):
        super().__init__(f"volume store ({url or store}) not found", **kwargs)
        self.store = store


class VolumeInUse(errors.InUse):
    def __init__(self, name: str, container_id: str, **kwargs):
        super().__init__(f"volume {name} in use by {container_id}", **kwargs)
        self.name = name
        self.container_id = container_id


def check_name(name: str) -> None:
    """A volume name is a folder and file name on the datastore: Docker's characters, within VMFS's length."""
    if not NAME_RE.match(name or ""):
        raise errors.InvalidArgument(f'volume name "{name}" includes invalid characters, only '
                                     f'"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed')
    if len(name) > MAX_NAME:
        raise errors.InvalidArgument(f'volume name "{name[:32]}..." is too long: {len(name)} characters, at most '
                                     f"{MAX_NAME} fit in a datastore file name")


def parse_store_option(text: str) -> tuple[str, str]:
    """`vic-machine --volume-store` syntax: `<datastore>/<path>:<name>` (or `[ds] path:name`) → (name, "[ds] path").
    An empty path becomes `VIC`, as vic-machine makes it (store_files.go)."""
    location, sep, name = text.rpartition(":")
    if not sep or not name or not location:
        raise errors.InvalidArgument(f"volume store {text!r}: expected <datastore>/<path>:<name>")
    if location.startswith("nfs://"):
        parts = urlsplit(location)
        if not parts.hostname or not parts.path:
            raise errors.InvalidArgument(f"volume store {text!r}: expected nfs://<host>/<path>?<options>:<name>")
        return name, location
    if location.startswith("["):
        path = DatastorePath.parse(location)
    else:
        datastore, _, rest = location.partition("/")
        path = DatastorePath(datastore, rest.strip("/"))
    if not path.datastore:
        raise errors.InvalidArgument(f"volume store {text!r}: no datastore")
    if not path.path:
        path = path.join("VIC")
    return name, str(path)


class VolumeStores:
    """Every volume of the VCH's volume stores, by name (VIC's volume cache). Thread-safe; Operation first."""

    def __init__(self, op: Operation, session: Session, vch_config, guest_channel, *,
                 disks: ApplianceDisks | None = None, usage: UsageFn | None = None):
        self.session = session
        self.guest = guest_channel
        self.usage = usage
        self.roots: dict[str, DatastorePath] = {}
        self.nfs: dict[str, NfsVolumeStore] = {}
        for name, path in sorted((vch_config.storage.volume_stores or {}).items()):
            try:
                if path.startswith("nfs://"):
                    self.nfs[name] = NfsVolumeStore(name, path)
                else:
                    self.roots[name] = DatastorePath.parse(path)
            except errors.InvalidArgument as err:
                op.warning("volume store %s: %s; ignored", name, err)
        self.online: set[str] = set()  # the stores that could be read at the last rebuild
        self.disks = disks if disks is not None else ApplianceDisks(session, guest_channel)
        self._datastores: dict[str, Datastore] = {}
        self._lock = threading.RLock()
        self._volumes: dict[str, Volume] = {}
        self._busy: set[str] = set()  # names being created or removed
        self._started = False
        self._start_lock = threading.Lock()

    # -- setup --------------------------------------------------------------------------------------------------
    def set_usage(self, usage: UsageFn | None) -> None:
        self.usage = usage

    def start(self, op: Operation) -> None:
        with self._start_lock:
            if not self._started:
                self.rebuild(op)
                self._started = True

    def close(self, op: Operation) -> None:
        """Nothing to release: a volume disk is attached to the appliance only while it is formatted."""

    def _ready(self, op: Operation) -> None:
        if not self._started:
            self.start(op)

    def datastore(self, name: str) -> Datastore:
        with self._lock:
            if name not in self._datastores:
                self._datastores[name] = Datastore(self.session, name)
            return self._datastores[name]

    def volumes_dir(self, store: str) -> DatastorePath:
        return self.roots[store].join(VOLUMES_DIR)

    def disk_path(self, store: str, name: str) -> DatastorePath:
        return self.volumes_dir(store).join(name, f"{name}.vmdk")

    def rebuild(self, op: Operation) -> None:
        """Find every store's volumes again: `<root>/volumes` made if missing, leftover disks detached from the
        appliance, unfinished volumes deleted, the rest (with their metadata) in the cache."""
        op = op.child("rebuild volume stores")
        found: dict[str, Volume] = {}
        online: set[str] = set()
        for store in sorted([*self.roots, *self.nfs]):
            try:
                volumes = self._scan(op, store) if store in self.roots else self._scan_nfs(op, store)
            except (errors.VicError, OSError) as err:
                op.error("volume store %s (%s) can't be read: %s", store, self._location(store), err)
                continue
            online.add(store)
            for volume in volumes:
                if volume.name in found:
                    op.warning("volume %s is in stores %s and %s: the first is used", volume.name,
                               found[volume.name].store, store)
                    continue
                found[volume.name] = volume
        with self._lock:
            self._volumes = found
            self.online = online
        op.info("volume stores %s: %d volumes", ", ".join(sorted(online)) or "(none)", len(found))

    def _location(self, store: str) -> str:
        return str(self.roots[store]) if store in self.roots else self.nfs[store].url

    def _scan_nfs(self, op: Operation, store: str) -> list[Volume]:
        nfs = self.nfs[store]
        nfs.start(op)
        return [Volume(name, store, None, metadata, source=nfs.volume_source(name))
                for name, metadata in nfs.scan(op).items()]

    def _scan(self, op: Operation, store: str) -> list[Volume]:
        folder = self.volumes_dir(store)
        datastore = self.datastore(folder.datastore)
        datastore.mkdir(op, folder)
        if getattr(self.guest, "info", None):
            left = self.disks.detach_all(op, folder)
            if left:
                op.info("detached %d volume disk(s) left on the appliance: %s", len(left), ", ".join(left))
        tree = datastore.tree(op, folder)
        out = []
        for name, is_dir in sorted((tree.get("") or {}).items()):
            if not is_dir:
                continue
            entries = tree.get(name) or {}
            keys = sorted(k for k, sub in (tree.get(f"{name}/{METADATA_DIR}") or {}).items() if not sub)
            if f"{name}.vmdk" not in entries or not keys:
                op.warning("volume store %s: deleting the unfinished volume %s", store, folder.join(name))
                try:
                    datastore.delete(op, folder.join(name))
                except errors.VicError as err:
                    op.warning("could not delete %s: %s", folder.join(name), err)
                continue
            metadata = {}
            for key in keys:
                try:
                    metadata[key] = datastore.download(op, folder.join(name, METADATA_DIR, key))
                except errors.VicError as err:
                    op.warning("volume %s: metadata %s unreadable: %s", name, key, err)
            out.append(Volume(name, store, folder.join(name, f"{name}.vmdk"), metadata))
        return out

    # -- queries ------------------------------------------------------------------------------------------------
    def stores(self, op: Operation) -> list[str]:
        """The stores this VCH established (VIC's VolumeStoresList: a store that can't be reached isn't one)."""
        self._ready(op)
        with self._lock:
            return sorted(self.online)

    def list(self, op: Operation) -> list[Volume]:
        self._ready(op)
        with self._lock:
            return sorted(self._volumes.values(), key=lambda v: v.name)

    def get(self, op: Operation, name: str) -> Volume:
        self._ready(op)
        with self._lock:
            volume = self._volumes.get(name)
        if volume is None:
            raise VolumeNotFound(name, op_id=op.id)
        return volume

    def users(self, op: Operation, name: str) -> list[str]:
        """IDs of the containers that have the volume joined."""
        return list(self.usage(op, name) or []) if self.usage is not None else []

    # -- create and remove --------------------------------------------------------------------------------------
    def create(self, op: Operation, name: str, *, store: str = DEFAULT_STORE, capacity_mb: int = -1,
               metadata: dict[str, bytes] | None = None) -> Volume:
        """A new volume of `capacity_mb` MiB (< 0: the default 1024) in `store`; VolumeExists (409), StoreNotFound
        (404) or InvalidArgument before anything is written; a later failure leaves nothing behind."""
        self._ready(op)
        check_name(name)
        if store not in self.online:
            raise StoreNotFound(store, op_id=op.id)
        capacity_mb = DEFAULT_CAPACITY_MB if capacity_mb is None or capacity_mb < 0 else int(capacity_mb)
        if capacity_mb < 1:
            raise errors.InvalidArgument(f"invalid volume capacity: {capacity_mb} MB")
        with self._lock:
            if name in self._volumes or name in self._busy:
                raise VolumeExists(name, op_id=op.id)
            self._busy.add(name)
        try:
            if store in self.nfs:
                volume = self._create_nfs(op, name, store, dict(metadata or {}))
            else:
                volume = self._create(op, name, store, capacity_mb * 1024, dict(metadata or {}))
        finally:
            with self._lock:
                self._busy.discard(name)
        with self._lock:
            self._volumes[name] = volume
        op.info("created volume %s (%d MB) in store %s: %s", name, capacity_mb, store, volume.disk or volume.source)
        return volume

    def _create_nfs(self, op: Operation, name: str, store: str, metadata: dict[str, bytes]) -> Volume:
        """A directory on the export (an NFS volume has no capacity of its own: the export's is shared)."""
        nfs = self.nfs[store]
        try:
            nfs.create(op, name, metadata)
        except FileExistsError:
            raise VolumeExists(name, op_id=op.id) from None
        except OSError as err:
            raise errors.Unavailable(f"volume store {store} ({nfs.url}): {err.strerror or err}", op_id=op.id) \
                from None
        return Volume(name, store, None, metadata, source=nfs.volume_source(name))

    def _create(self, op: Operation, name: str, store: str, capacity_kb: int, metadata: dict[str, bytes]) -> Volume:
        parent = self.volumes_dir(store)
        folder = parent.join(name)
        datastore = self.datastore(folder.datastore)
        datastore.mkdir(op, parent)
        manager = self.session.content.fileManager
        try:
            self.session.call(op, manager.MakeDirectory, name=str(folder), datacenter=self.session.datacenter,
                              createParentDirectories=False)
        except errors.AlreadyExists:
            # another VCH on a shared store made it meanwhile, or a create of ours that never finished
            raise VolumeExists(name, op_id=op.id) from None
        volume = Volume(name, store, folder.join(f"{name}.vmdk"), metadata)
        try:
            with self.disks.new_disk(op, volume.disk, capacity_kb=capacity_kb, label=f"volume {name}",
                                     disk_mode=DISK_MODE) as disk:
                volume_fs.format_ext4(disk.data, capacity_kb, volume.label)
            datastore.mkdir(op, folder.join(METADATA_DIR))
            for key, value in metadata.items():
                datastore.upload(op, folder.join(METADATA_DIR, key), value)
            if not metadata:
                datastore.upload(op, folder.join(METADATA_DIR, "created"), b"")
        except BaseException as err:
            op.warning("creating volume %s failed (%s); removing %s", name, err, folder)
            try:
                datastore.delete(op, folder)
            except errors.VicError as cleanup:
                op.error("could not remove %s: %s", folder, cleanup)
            raise
        return volume

    def remove(self, op: Operation, name: str) -> None:
        """Delete a volume; VolumeNotFound, or VolumeInUse while a container has it joined (VIC's cache rule)."""
        volume = self.get(op, name)
        users = self.users(op, name)
        if users:
            raise VolumeInUse(name, users[0], op_id=op.id)
        with self._lock:
            if name in self._busy:
                raise VolumeInUse(name, "a create in progress", op_id=op.id)
            self._busy.add(name)  # no create of it while it goes
        try:
            if volume.disk is None:
                try:
                    self.nfs[volume.store].remove(op, name)
                except OSError as err:
                    raise errors.Unavailable(f"volume store {volume.store}: {err.strerror or err}", op_id=op.id) \
                        from None
            else:
                datastore = self.datastore(volume.disk.datastore)
                datastore.delete_disk(op, volume.disk)
                datastore.delete(op, volume.folder)
            with self._lock:
                self._volumes.pop(name, None)
        finally:
            with self._lock:
                self._busy.discard(name)
        op.info("removed volume %s from store %s", name, volume.store)

    # -- join ---------------------------------------------------------------------------------------------------
    def join(self, op: Operation, handle, volume: Volume, path: str, *, mode: str = "rw",
             copy_mode: int = COPY_NEW) -> object:
        """Mount `volume` at `path` in the container being created by `handle`: its disk in the create spec and its
        mount spec in the executor config, committed together."""
        config = handle.config
        if volume.name in config.mounts:
            raise errors.Conflict(f"Volume with ID {volume.name} is already in container {handle.id}'s mountspec "
                                  "config", op_id=op.id)
        if not getattr(handle, "creating", False):
            raise errors.InvalidState("volumes can only be joined to a container being created", op_id=op.id)
        if volume.disk is None:
            # an NFS volume: the tether mounts the export's directory; no disk, so containers may share it
            readonly = "ro" in [flag.strip() for flag in (mode or "").split(",")]
            config.mounts[volume.name] = MountSpec(source=URL.parse(volume.source), path=path,
                                                   mode=self.nfs[volume.store].mount_options(readonly),
                                                   copy_mode=copy_mode)
            return handle
        from ..exec.spec import KEY_SCSI
        config.mounts[volume.name] = MountSpec(source=URL(scheme="label", path=volume.label), path=path,
                                               mode=mode, copy_mode=copy_mode)
        key = VOLUME_DEVICE_KEY - sum(1 for c in handle.device_changes
                                      if isinstance(c.device, vim.vm.device.VirtualDisk))
        backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName=str(volume.disk), diskMode=DISK_MODE)
        disk = vim.vm.device.VirtualDisk(key=key, controllerKey=KEY_SCSI, unitNumber=None, capacityInKB=0,
                                         backing=backing, deviceInfo=vim.Description(label=f"volume {volume.name}",
                                                                                    summary=str(volume.disk)))
        handle.device_changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=disk))
        return handle


def volume_of_disk(file_name: str) -> str:
    """The volume name a volume disk's file gives (`.../volumes/<name>/<name>.vmdk`), else the file's base name."""
    base = file_name.rstrip().rsplit("/", 1)[-1]
    return base[:-len(".vmdk")] if base.endswith(".vmdk") else base


__all__ = ["VolumeStores", "Volume", "VolumeExists", "VolumeNotFound", "StoreNotFound", "VolumeInUse",
           "check_name", "parse_store_option", "volume_of_disk", "DEFAULT_STORE", "DEFAULT_CAPACITY_MB",
           "VOLUMES_DIR", "METADATA_DIR", "DISK_MODE"]
