"""Datastores as real directories: `"[ds] path"` <-> files, vSAN namespaces, virtual disks.

Layout under `<workdir>/datastores/`:
    <ds>/...                        a VMFS datastore's tree, as is
    <ds>/<uuid>/...                 vSAN: every top-level folder is a namespace stored under its own UUID ...
    <ds>/<friendly name> -> <uuid>  ... its friendly name a symlink to it, as /vmfs/volumes/vsanDatastore shows it
A virtual disk is a descriptor `<n>.vmdk` (vmdk descriptor text) plus its data `<n>-flat.vmdk`: a directory tree that a
guest uses as a filesystem (a child disk's data holds only its own layer; `disk_chain` gives base..child for an
overlay), or, for a disk created `formatted="ext4"`, a sparse image file.

Every fault is a pyVmomi fault worded as vCenter words it; host paths and Python names never reach a client.
"""
from __future__ import annotations

import errno
import logging
import os
import posixpath
import re
import secrets
import shutil
import stat
import subprocess
import uuid as uuid_mod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from pyVmomi import VmomiSupport, vim, vmodl

if TYPE_CHECKING:
    from .objects.datastore import DatastoreImpl

log = logging.getLogger("vsphere_sim.datastore_fs")

_PATH_RE = re.compile(r"^\[([^\[\]]*)\]\s*(.*)$", re.S)
DATA_SUFFIX = "-flat.vmdk"
# Extents ESX's datastore browser never lists: a disk shows as its descriptor only.
HIDDEN_EXTENT_SUFFIXES = ("-flat.vmdk", "-delta.vmdk", "-sesparse.vmdk", "-ctk.vmdk")
TMP_PREFIX = ".vsim-tmp-"
NO_PARENT_CID = "ffffffff"
NAMESPACE_HINT = ("top-level folders on a vSAN datastore are namespaces; create them with "
                  "DatastoreNamespaceManager.CreateDirectory")
DEFAULT_CAPACITY = 10 * 1024 ** 4  # 10 TiB, the size vcsim gives its datastores


# -- paths ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatastorePath:
    """A parsed `"[ds] dir/file"`: `path` is relative to the datastore root, `""` for the root itself."""
    datastore: str
    path: str = ""

    def __str__(self) -> str:
        return f"[{self.datastore}] {self.path}" if self.path else f"[{self.datastore}]"

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split("/")) if self.path else ()

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def parent(self) -> DatastorePath:
        return DatastorePath(self.datastore, self.path.rpartition("/")[0])

    @property
    def is_root(self) -> bool:
        return not self.path

    @property
    def is_top_level(self) -> bool:
        return len(self.parts) == 1

    def join(self, *names: str) -> DatastorePath:
        parts = list(self.parts)
        for name in names:
            parts.extend(p for p in name.split("/") if p)
        return DatastorePath(self.datastore, "/".join(parts))

    def with_top(self, top: str) -> DatastorePath:
        """The same path with its first component replaced (a vSAN friendly name by its UUID, or back)."""
        parts = list(self.parts)
        parts[0] = top
        return DatastorePath(self.datastore, "/".join(parts))


@dataclass
class DiskInfo:
    capacity_kb: int
    parent: DatastorePath | None
    data_path: Path
    uuid: str
    path: DatastorePath | None = None
    descriptor_path: Path | None = None
    formatted: str | None = None  # "ext4" when the data is a formatted image file, None for a directory tree
    cid: str = ""
    create_type: str = "monolithicFlat"
    thin: bool = True
    adapter_type: str = "lsilogic"


def invalid_path(text: str) -> vim.fault.InvalidDatastorePath:
    return vim.fault.InvalidDatastorePath(msg=f"Invalid datastore path '{text}'.", datastorePath=str(text))


def file_not_found(p) -> vim.fault.FileNotFound:
    return vim.fault.FileNotFound(msg=f"File {p} was not found", file=str(p))


def file_exists(p) -> vim.fault.FileAlreadyExists:
    return vim.fault.FileAlreadyExists(
        msg=f"Cannot complete the operation because the file or folder {p} already exists", file=str(p))


def cannot_create(p, why: str = "") -> vim.fault.CannotCreateFile:
    return vim.fault.CannotCreateFile(msg=f"Cannot complete file creation operation for {p}" + (f": {why}" if why
                                                                                               else "."), file=str(p))


def not_a_disk(p) -> vim.fault.FileFault:
    return vim.fault.FileFault(msg=f"The file {p} is not a virtual disk", file=str(p))


def fault_for_oserror(err: OSError, p) -> vmodl.MethodFault:
    """An OS error as the FileFault vCenter would give (never the host path or errno text)."""
    if err.errno == errno.ENOENT:
        return file_not_found(p)
    if err.errno == errno.EEXIST:
        return file_exists(p)
    if err.errno == errno.ENOTDIR:
        return vim.fault.NotADirectory(msg=f"{p} is not a folder", file=str(p))
    if err.errno == errno.EISDIR:
        return vim.fault.NotAFile(msg=f"{p} is a folder, not a file", file=str(p))
    if err.errno == errno.ENAMETOOLONG:
        return invalid_path(str(p))
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return vim.fault.NoDiskSpace(msg=f"There is no more space for file {p}", datastore=p.datastore
                                     if isinstance(p, DatastorePath) else "")
    if err.errno in (errno.EACCES, errno.EPERM):
        return vim.fault.NoPermission(msg=f"Permission to perform this operation on {p} was denied.",
                                      privilegeId="Datastore.FileManagement")
    return vim.fault.FileFault(msg=f"Cannot complete the operation on file {p}", file=str(p))


def vmdk_uuid() -> str:
    """`ddb.uuid` in the vmdk form: 16 bytes as hex pairs, a dash after the eighth."""
    raw = secrets.token_bytes(16)
    pairs = [f"{b:02x}" for b in raw]
    return " ".join(pairs[:8]) + "-" + " ".join(pairs[8:])


def escape_name(name: str) -> str:
    """A display name as a file name: vCenter writes '/' and '\\' in names as %2f and %5c."""
    return name.replace("/", "%2f").replace("\\", "%5c")


# -- the filesystem -------------------------------------------------------------------------------------------------
class DatastoreFS:
    def __init__(self, sim, root):
        self.sim = sim
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._by_name: dict[str, str] = {}  # datastore name -> moid, checked on every use
        # disk descriptor (resolved local path) -> its child disks' descriptors; None = rebuild by a scan when needed
        self._children: dict[str, set[str]] | None = None

    # -- parsing and lookup ---------------------------------------------------------------------------------------
    def parse(self, text) -> DatastorePath:
        """`"[ds] a/b"` (also `"[ds]/a/b"`, `"[ds] /a/b"` or a `/folder` URL) → DatastorePath, else
        InvalidDatastorePath."""
        if isinstance(text, DatastorePath):
            return text
        if not isinstance(text, str):
            raise invalid_path(str(text))
        stripped = text.strip()
        if stripped.startswith(("http://", "https://")):
            return self._parse_url(text)
        match = _PATH_RE.match(stripped)
        if match is None or not match.group(1).strip():
            raise invalid_path(text)
        return DatastorePath(match.group(1).strip(), clean_path(match.group(2), text))

    def _parse_url(self, text: str) -> DatastorePath:
        parts = urlsplit(text)
        query = parse_qs(parts.query)
        if not parts.path.startswith("/folder") or not query.get("dsName"):
            raise invalid_path(text)
        return DatastorePath(query["dsName"][0], clean_path(unquote(parts.path[len("/folder"):]), text))

    def datastore(self, name: str, datacenter=None, text: str | None = None) -> DatastoreImpl:
        """The datastore named `name` (in `datacenter` when given); InvalidDatastore when there is none."""
        registry = self.sim.registry
        moid = self._by_name.get(name)
        obj = registry.find(moid) if moid else None
        if obj is None or obj.name != name or not _in_datacenter(obj, datacenter):
            obj = None
            for candidate in registry.of_type(vim.Datastore):
                if candidate.name == name and _in_datacenter(candidate, datacenter):
                    obj = candidate
                    self._by_name[name] = candidate.moid
                    break
        if obj is None:
            msg = f"Invalid datastore path '{text}'." if text else f"Invalid datastore '{name}'."
            raise vim.fault.InvalidDatastore(msg=msg, name=name)
        return obj

    def datastore_by_volume(self, volume: str) -> DatastoreImpl | None:
        """The datastore whose /vmfs/volumes/<volume> is `volume` (its UUID, or `vsan:<uuid>`), or its name."""
        for ds in self.sim.registry.of_type(vim.Datastore):
            if volume in (ds.volume_id, ds.name):
                return ds
        return None

    def ds_dir(self, ds: DatastoreImpl | str) -> Path:
        return self.root / (ds if isinstance(ds, str) else ds.name)

    def resolve(self, dspath, datacenter=None) -> tuple[DatastorePath, DatastoreImpl]:
        """(DatastorePath, DatastoreImpl) of a path; InvalidDatastorePath / InvalidDatastore (also when `datacenter`
        is given and the datastore is not in it)."""
        text = dspath if isinstance(dspath, str) else None
        dspath = self.parse(dspath)
        return dspath, self.datastore(dspath.datastore, datacenter, text=text or str(dspath))

    def resolve_call(self, name, datacenter=None):
        """For a FileManager / VirtualDiskManager argument: (DatastorePath, DatastoreImpl, task entity). The
        datacenter is optional (real vCenter takes the datastore's own); given, the datastore must be in it."""
        dc = self.sim.registry.get(datacenter) if datacenter is not None else None
        dspath, ds = self.resolve(name, dc)
        return dspath, ds, dc or ds.datacenter() or ds

    def local(self, dspath) -> Path:
        """The real path of a datastore path: vSAN friendly names resolve to their UUID directory. A symlink on the
        way (one a guest made inside a disk's data) is refused, so nothing leads out of the datastore."""
        dspath, ds = self.resolve(dspath)
        return self._local(dspath, ds)

    def _local(self, dspath: DatastorePath, ds) -> Path:
        base = self.ds_dir(ds)
        parts = list(dspath.parts)
        if parts and ds.is_vsan:
            parts[0] = self._namespace_target(base, parts[0])
        path = base
        for i, part in enumerate(parts):
            path = path / part
            if i < len(parts) - 1 and path.is_symlink():
                raise invalid_path(str(dspath))
        return path

    # -- vSAN namespaces ------------------------------------------------------------------------------------------
    @staticmethod
    def _namespace_target(base: Path, name: str) -> str:
        try:
            target = os.readlink(base / name)
        except OSError:
            return name
        return target if "/" not in target else name

    def namespaces(self, ds) -> dict[str, str]:
        """friendly name → UUID of a vSAN datastore's top-level namespaces."""
        base = self.ds_dir(ds)
        out = {}
        try:
            entries = list(os.scandir(base))
        except FileNotFoundError:
            return out
        for entry in entries:
            if entry.is_symlink():
                target = os.readlink(entry.path)
                if "/" not in target:
                    out[entry.name] = target
        return out

    def friendly_name(self, ds, uuid: str) -> str | None:
        for name, target in self.namespaces(ds).items():
            if target == uuid:
                return name
        return None

    def is_namespace(self, ds, top: str) -> bool:
        base = self.ds_dir(ds)
        return (base / self._namespace_target(base, top)).is_dir()

    def create_namespace(self, ds, friendly: str | None) -> str:
        """A new top-level namespace on a vSAN datastore; returns its UUID. FileAlreadyExists if the name is taken."""
        base = self.ds_dir(ds)
        if friendly is not None:
            if not friendly or "/" in friendly or friendly in (".", "..") or friendly.startswith(TMP_PREFIX):
                raise vmodl.fault.InvalidArgument(msg=f"Invalid directory name '{friendly}'",
                                                  invalidProperty="displayName")
            if os.path.lexists(base / friendly):
                raise file_exists(DatastorePath(ds.name, friendly))
        ns_uuid = str(uuid_mod.uuid4())
        try:
            (base / ns_uuid).mkdir(parents=True)
            if friendly is not None:
                os.symlink(ns_uuid, base / friendly)
        except OSError as err:
            raise fault_for_oserror(err, DatastorePath(ds.name, friendly or ns_uuid)) from None
        return ns_uuid

    def uuid_path(self, ds, ns_uuid: str) -> str:
        """`/vmfs/volumes/vsan:<ds-uuid>/<ns-uuid>`, as DatastoreNamespaceManager.CreateDirectory returns it."""
        return f"/vmfs/volumes/{ds.volume_id}/{ns_uuid}"

    def _delete_namespace(self, ds, top: str):
        base = self.ds_dir(ds)
        target = self._namespace_target(base, top)
        friendly = top if target != top else self.friendly_name(ds, target)
        _rmtree(base / target)
        if friendly is not None and os.path.islink(base / friendly):
            os.unlink(base / friendly)

    def _check_vsan_top_create(self, dspath: DatastorePath, ds, what: str = "file"):
        """On vSAN the root holds namespaces only: no file, and no folder but through the namespace manager."""
        if not ds.is_vsan:
            return
        if not dspath.is_top_level:
            return
        if what == "file":
            raise cannot_create(dspath, "a vSAN datastore holds no files at its top level")
        if not self.is_namespace(ds, dspath.parts[0]):
            raise cannot_create(dspath, NAMESPACE_HINT)

    # -- VM homes -------------------------------------------------------------------------------------------------
    def create_vm_home(self, vm_path_name: str, display_name: str) -> DatastorePath:
        """Make the directory of a new VM and return the DatastorePath of its `.vmx` (the caller writes the file).

        `"[ds]"` alone: a directory named after the VM (on vSAN a namespace, shown by its UUID in vmPathName as real
        vSAN does). `"[ds] dir"` (no `.vmx`): `dir/<name>.vmx`. On vSAN the top-level folder must be named after the
        VM (InvalidDatastorePath naming both); it is created as a namespace when missing.
        """
        dspath, ds = self.resolve(vm_path_name)
        file_name = escape_name(display_name) + ".vmx"
        if dspath.is_root:
            if ds.is_vsan:
                base = self.ds_dir(ds)
                friendly = escape_name(display_name)
                ns_uuid = self._namespace_target(base, friendly)
                if ns_uuid == friendly or not (base / ns_uuid).is_dir():
                    ns_uuid = self.create_namespace(ds, friendly)
                dspath = DatastorePath(ds.name, f"{ns_uuid}/{file_name}")
            else:
                dspath = DatastorePath(ds.name, f"{escape_name(display_name)}/{file_name}")
        elif not dspath.path.endswith(".vmx"):
            dspath = dspath.join(file_name)
        if ds.is_vsan:
            self._check_vsan_vm_folder(dspath, ds, display_name, vm_path_name)
        local = self._local(dspath, ds)
        if os.path.lexists(local):
            raise file_exists(dspath)
        try:
            local.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise fault_for_oserror(err, dspath.parent) from None
        return dspath

    def _check_vsan_vm_folder(self, dspath: DatastorePath, ds, display_name: str, text: str):
        top = dspath.parts[0]
        if len(dspath.parts) < 2:
            raise vim.fault.InvalidDatastorePath(
                msg=f"Invalid datastore path '{text}': a virtual machine on vSAN datastore {ds.name} must be in a "
                    f"top-level folder named after it ('{display_name}')", datastorePath=str(text))
        base = self.ds_dir(ds)
        target = self._namespace_target(base, top)
        friendly = top if target != top else (self.friendly_name(ds, top) or top)
        if friendly != escape_name(display_name):
            raise vim.fault.InvalidDatastorePath(
                msg=f"Invalid datastore path '{text}': on vSAN datastore {ds.name} the top-level folder '{friendly}' "
                    f"must have the name of the virtual machine '{display_name}'", datastorePath=str(text))
        if not (base / target).is_dir():
            self.create_namespace(ds, top)

    # -- files ----------------------------------------------------------------------------------------------------
    def exists(self, dspath) -> bool:
        try:
            return os.path.lexists(self.local(dspath))
        except vmodl.MethodFault:
            return False

    def is_dir(self, dspath) -> bool:
        try:
            return self.local(dspath).is_dir()
        except vmodl.MethodFault:
            return False

    def read_file(self, dspath) -> bytes:
        dspath, ds = self.resolve(dspath)
        local = self._local(dspath, ds)
        if local.is_symlink() or local.is_dir():
            raise vim.fault.NotAFile(msg=f"{dspath} is a folder, not a file", file=str(dspath)) \
                if local.is_dir() else file_not_found(dspath)
        try:
            return local.read_bytes()
        except OSError as err:
            raise fault_for_oserror(err, dspath) from None

    def write_file(self, dspath, data: bytes, create_parents: bool = False) -> DatastorePath:
        """Write a whole file atomically (a temp file renamed over it): readers never see half a file."""
        with self.open_write(dspath, create_parents) as handle:
            handle.write(data)
        return self.parse(dspath)

    def open_write(self, dspath, create_parents: bool = False) -> AtomicWriter:
        """A file object whose content replaces the file at `close()` (for streamed uploads); `abort()` drops it."""
        dspath, ds = self.resolve(dspath)
        if dspath.is_root:
            raise vim.fault.NotAFile(msg=f"{dspath} is a folder, not a file", file=str(dspath))
        self._check_vsan_top_create(dspath, ds, "file")
        local = self._local(dspath, ds)
        if local.is_dir():
            raise vim.fault.NotAFile(msg=f"{dspath} is a folder, not a file", file=str(dspath))
        if create_parents and not local.parent.is_dir():
            self.make_dir(dspath.parent, True, exist_ok=True)
        if not local.parent.is_dir():
            raise file_not_found(dspath.parent)
        return AtomicWriter(local, dspath)

    def list_dir(self, dspath) -> list[str]:
        """Names in a folder, as the datastore browser would list them (extents and internal files hidden)."""
        dspath, ds = self.resolve(dspath)
        local = self._local(dspath, ds)
        if not local.is_dir():
            raise file_not_found(dspath)
        vsan_root = dspath.is_root and ds.is_vsan
        return sorted(name for name in os.listdir(local) if not self.hidden(local / name, vsan_root))

    @staticmethod
    def hidden(local: Path, vsan_root: bool = False) -> bool:
        name = local.name
        if name.startswith(TMP_PREFIX) or name.endswith(HIDDEN_EXTENT_SUFFIXES):
            return True
        # vSAN's friendly-name links: the browser lists each namespace once, by UUID, with its friendlyName
        return vsan_root and local.is_symlink()

    def make_dir(self, dspath, create_parents: bool = False, exist_ok: bool = False) -> DatastorePath:
        dspath, ds = self.resolve(dspath)
        if dspath.is_root:
            raise file_exists(dspath)
        if ds.is_vsan:
            top = DatastorePath(ds.name, dspath.parts[0])
            if self.is_namespace(ds, dspath.parts[0]):
                if dspath.is_top_level:
                    if exist_ok:
                        return dspath
                    raise file_exists(dspath)
            else:
                raise cannot_create(top, NAMESPACE_HINT)
        local = self._local(dspath, ds)
        if os.path.lexists(local):
            if exist_ok and local.is_dir():
                return dspath
            raise file_exists(dspath)
        if not local.parent.is_dir():
            if not create_parents:
                raise file_not_found(dspath.parent)
            for parent in reversed(_ancestors(dspath)):
                plocal = self._local(parent, ds)
                if os.path.lexists(plocal) and not plocal.is_dir():
                    raise vim.fault.NotADirectory(msg=f"{parent} is not a folder", file=str(parent))
        try:
            local.mkdir(parents=create_parents)
        except OSError as err:
            raise fault_for_oserror(err, dspath) from None
        return dspath

    def delete(self, dspath) -> None:
        """Delete a file or a folder tree; a disk descriptor takes its data along (as ESX does); a vSAN namespace goes
        with its friendly name."""
        dspath, ds = self.resolve(dspath)
        if dspath.is_root:
            raise vim.fault.CannotDeleteFile(msg=f"Cannot delete file {dspath}", file=str(dspath))
        local = self._local(dspath, ds)
        if not os.path.lexists(local):
            raise file_not_found(dspath)
        if local.is_dir() and not local.is_symlink():
            try:
                if ds.is_vsan and dspath.is_top_level:
                    self._delete_namespace(ds, dspath.parts[0])
                else:
                    _rmtree(local)
            except OSError as err:
                raise vim.fault.CannotDeleteFile(msg=f"Cannot delete file {dspath}", file=str(dspath)) from err
            self._children = None
        elif self._data_of(local) is not None:
            self.delete_disk(dspath)
        else:
            try:
                local.unlink()
            except OSError as err:
                raise vim.fault.CannotDeleteFile(msg=f"Cannot delete file {dspath}", file=str(dspath)) from err

    def move(self, src, dst, force: bool = False) -> DatastorePath:
        return self._transfer(src, dst, force, move=True)

    def copy(self, src, dst, force: bool = False) -> DatastorePath:
        return self._transfer(src, dst, force, move=False)

    def _transfer(self, src, dst, force, move: bool) -> DatastorePath:
        src, sds = self.resolve(src)
        dst, dds = self.resolve(dst)
        if src.is_root:
            raise (vim.fault.CannotDeleteFile(msg=f"Cannot move file {src}", file=str(src)) if move
                   else cannot_create(dst))
        slocal = self._local(src, sds)
        if not os.path.lexists(slocal):
            raise file_not_found(src)
        if dst.is_root:
            raise file_exists(dst)
        dlocal = self._local(dst, dds)
        if slocal == dlocal:
            if move:
                return dst
            raise file_exists(dst)
        if _is_within(dlocal, slocal):
            raise vim.fault.FileFault(msg=f"Cannot move or copy {src} into itself", file=str(dst))
        src_dir = slocal.is_dir() and not slocal.is_symlink()
        vsan_src_ns = sds.is_vsan and src.is_top_level and src_dir
        if move and vsan_src_ns and sds is dds and dst.is_top_level:
            # renaming a namespace: the UUID directory stays, its friendly name moves
            return self._rename_namespace(sds, src, dst, force)
        if dds.is_vsan and dst.is_top_level and not (src_dir and self.is_namespace(dds, dst.parts[0])):
            raise cannot_create(dst, NAMESPACE_HINT)
        if not dlocal.parent.is_dir():
            raise file_not_found(dst.parent)
        exists = os.path.lexists(dlocal)
        try:
            if src_dir and not move and exists and dlocal.is_dir():
                # a folder copied onto a folder merges into it; a clash needs `force`
                if not force:
                    clash = _first_clash(slocal, dlocal)
                    if clash is not None:
                        raise file_exists(dst.join(clash))
                _copytree(slocal, dlocal)
            else:
                if exists:
                    if not force:
                        raise file_exists(dst)
                    self._remove_with_data(dlocal)
                if src_dir:
                    _move(slocal, dlocal) if move else _copytree(slocal, dlocal)
                    if move and vsan_src_ns:
                        self._drop_namespace_link(sds, src.parts[0])
                elif slocal.is_symlink():
                    # a link (one a guest made) is moved or copied as a link, never followed out of the datastore
                    _move(slocal, dlocal) if move else os.symlink(os.readlink(slocal), dlocal)
                elif self._data_of(slocal) is not None:
                    self._transfer_disk(src, slocal, dst, dds, dlocal, move)
                else:
                    _move(slocal, dlocal) if move else _copyfile(slocal, dlocal)
        except OSError as err:
            raise fault_for_oserror(err, dst) from None
        if src_dir or dst.name.endswith(".vmdk"):
            self._children = None  # disks moved: rebuild the parent index on its next use
        return dst

    def _remove_with_data(self, local: Path):
        data = self._data_of(local) if not local.is_dir() else None
        _remove(local)
        if data is not None:
            _remove(data)

    def _rename_namespace(self, ds, src: DatastorePath, dst: DatastorePath, force: bool) -> DatastorePath:
        base = self.ds_dir(ds)
        target = self._namespace_target(base, src.parts[0])
        if os.path.lexists(base / dst.parts[0]):
            if not force:
                raise file_exists(dst)
            self._delete_namespace(ds, dst.parts[0])
        self._drop_namespace_link(ds, src.parts[0])
        os.symlink(target, base / dst.parts[0])
        return dst

    def _drop_namespace_link(self, ds, top: str):
        base = self.ds_dir(ds)
        friendly = top if os.path.islink(base / top) else self.friendly_name(ds, top)
        if friendly is not None and os.path.islink(base / friendly):
            os.unlink(base / friendly)

    # -- virtual disks --------------------------------------------------------------------------------------------
    def create_disk(self, dspath, capacity_kb: int | None, parent: DatastorePath | str | None = None,
                    formatted: str | None = None, *, disk_type: str = "thin", adapter_type: str = "lsiLogic",
                    label: str | None = None) -> DiskInfo:
        """A new disk: descriptor + data. With `parent`, a child (delta) disk that holds only its own layer and
        inherits the parent's capacity when none (or 0) is given."""
        dspath, ds = self.resolve(dspath)
        if not dspath.path.endswith(".vmdk") or dspath.path.endswith(HIDDEN_EXTENT_SUFFIXES):
            raise vmodl.fault.InvalidArgument(msg=f"Invalid virtual disk name {dspath}: it must end in .vmdk",
                                              invalidProperty="name")
        self._check_vsan_top_create(dspath, ds, "file")
        desc = self._local(dspath, ds)
        data = desc.with_name(desc.name[:-len(".vmdk")] + DATA_SUFFIX)
        if os.path.lexists(desc) or os.path.lexists(data):
            raise file_exists(dspath)
        if not desc.parent.is_dir():
            raise file_not_found(dspath.parent)
        pinfo = None
        if parent is not None:
            pinfo = self.disk_info(parent)
            if pinfo.formatted:
                raise vmodl.fault.NotSupported(msg=f"Cannot create a child of the formatted disk {pinfo.path}")
            if formatted:
                raise vmodl.fault.NotSupported(msg="A child disk cannot be created formatted")
            capacity_kb = max(int(capacity_kb or 0), pinfo.capacity_kb)
        capacity_kb = int(capacity_kb or 0)
        if capacity_kb < 0:
            raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: capacityKb",
                                              invalidProperty="capacityKb")
        if formatted not in (None, "ext4"):
            raise vmodl.fault.NotSupported(msg=f"Disk format {formatted} is not supported")
        info = DiskInfo(capacity_kb=capacity_kb, parent=pinfo.path if pinfo else None, data_path=data,
                        uuid=vmdk_uuid(), path=dspath, descriptor_path=desc, formatted=formatted,
                        cid=secrets.token_hex(4), create_type="vmfsSparse" if pinfo else "monolithicFlat",
                        thin=disk_type != "eagerZeroedThick" and disk_type != "preallocated",
                        adapter_type=adapter_type)
        try:
            if formatted == "ext4":
                _make_ext4(data, capacity_kb, label)
            else:
                data.mkdir()
            _atomic_write(desc, self._render_descriptor(info, pinfo, dspath, ds).encode())
        except OSError as err:
            _remove(data)
            raise fault_for_oserror(err, dspath) from None
        if pinfo is not None and self._children is not None:
            self._children.setdefault(str(pinfo.descriptor_path), set()).add(str(desc))
        return info

    def disk_info(self, dspath) -> DiskInfo:
        dspath, ds = self.resolve(dspath)
        desc = self._local(dspath, ds)
        if not os.path.lexists(desc):
            raise file_not_found(dspath)
        if desc.is_dir():
            raise not_a_disk(dspath)
        fields, ddb, extents = _parse_descriptor(desc, dspath)
        if not extents:
            raise not_a_disk(dspath)
        sectors, extent_file = extents[0]
        data = desc.parent / extent_file
        hint = fields.get("parentFileNameHint")
        parent = self._resolve_hint(dspath, ds, hint) if hint else None
        return DiskInfo(capacity_kb=sectors // 2, parent=parent, data_path=data, uuid=ddb.get("ddb.uuid", ""),
                        path=dspath, descriptor_path=desc, formatted="ext4" if data.is_file() else None,
                        cid=fields.get("CID", ""), create_type=fields.get("createType", ""),
                        thin=ddb.get("ddb.thinProvisioned") == "1", adapter_type=ddb.get("ddb.adapterType", ""))

    def disk_chain(self, dspath) -> list[Path]:
        """The data of a disk and all its parents, base first (the lower→upper order of an overlay)."""
        chain, seen = [], set()
        info = self.disk_info(dspath)
        while True:
            key = str(info.descriptor_path)
            if key in seen or len(chain) > 255:
                raise vim.fault.FileFault(msg=f"The parent chain of virtual disk {dspath} is circular",
                                          file=str(dspath))
            seen.add(key)
            chain.append(info.data_path)
            if info.parent is None:
                break
            info = self.disk_info(info.parent)
        chain.reverse()
        return chain

    def delete_disk(self, dspath) -> None:
        """Delete a disk (descriptor and data); refused with FileLocked while another disk has it as its parent, as
        ESX refuses a disk whose lock a child holds."""
        info = self.disk_info(dspath)
        children = self.children_of(info)
        if children:
            raise vim.fault.FileLocked(msg=f"Unable to access file {info.path} since it is locked (it is the parent "
                                           f"of {children[0]})", file=str(info.path))
        try:
            _remove(info.data_path)
            info.descriptor_path.unlink()
        except OSError as err:
            raise vim.fault.CannotDeleteFile(msg=f"Cannot delete file {info.path}", file=str(info.path)) from err
        if self._children is not None:
            self._children.pop(str(info.descriptor_path), None)
            if info.parent is not None:
                try:
                    pdesc = str(self.local(info.parent))
                    self._children.get(pdesc, set()).discard(str(info.descriptor_path))
                except vmodl.MethodFault:
                    pass

    def copy_disk(self, src, dst, force: bool = False) -> DiskInfo:
        """Copy a disk to a standalone one: a child's chain is consolidated into the copy (as vmkfstools -i does)."""
        sinfo = self.disk_info(src)
        dst, dds = self.resolve(dst)
        ddesc = self._local(dst, dds)
        if os.path.lexists(ddesc):
            if not force:
                raise file_exists(dst)
            self.delete_disk(dst)
        info = self.create_disk(dst, sinfo.capacity_kb, formatted=sinfo.formatted,
                                adapter_type=sinfo.adapter_type or "lsiLogic")
        try:
            if sinfo.formatted:
                info.data_path.unlink()
                _copyfile(sinfo.data_path, info.data_path)
            else:
                for layer in self.disk_chain(src):
                    _merge_layer(layer, info.data_path)
        except OSError as err:
            self.delete_disk(dst)
            raise fault_for_oserror(err, dst) from None
        return info

    def move_disk(self, src, dst, force: bool = False) -> DatastorePath:
        self.disk_info(src)  # FileNotFound / not a disk, before anything moves
        return self.move(src, dst, force)

    def extend_disk(self, dspath, new_capacity_kb: int) -> DiskInfo:
        info = self.disk_info(dspath)
        if new_capacity_kb < info.capacity_kb:
            raise vmodl.fault.InvalidArgument(
                msg=f"The new capacity ({new_capacity_kb} KB) of {info.path} is smaller than its current capacity "
                    f"({info.capacity_kb} KB)", invalidProperty="newCapacityKb")
        self._rewrite_descriptor(info, capacity_kb=new_capacity_kb)
        if info.formatted:
            os.truncate(info.data_path, new_capacity_kb * 1024)
        info.capacity_kb = new_capacity_kb
        return info

    def set_disk_uuid(self, dspath, value: str) -> None:
        info = self.disk_info(dspath)
        self._rewrite_descriptor(info, uuid=value)

    def children_of(self, info: DiskInfo) -> list[DatastorePath]:
        """Existing disks whose parent is this one (index verified against their descriptors)."""
        if self._children is None:
            self._children = self._scan_children()
        key = str(info.descriptor_path)
        out = []
        for child in sorted(self._children.get(key, ())):
            cdesc = Path(child)
            dspath = self._dspath_of(cdesc)
            if dspath is None:
                continue
            try:
                cinfo = self.disk_info(dspath)
                if cinfo.parent is not None and str(self.local(cinfo.parent)) == key:
                    out.append(dspath)
                    continue
            except vmodl.MethodFault:
                pass
            self._children[key].discard(child)
        return out

    def _scan_children(self) -> dict[str, set[str]]:
        index: dict[str, set[str]] = {}
        for ds in self.sim.registry.of_type(vim.Datastore):
            base = self.ds_dir(ds)
            for dirpath, dirnames, filenames in os.walk(base):
                # a disk's data is a guest filesystem, never a place for descriptors
                dirnames[:] = [d for d in dirnames if not d.endswith(DATA_SUFFIX)]
                for name in filenames:
                    if not name.endswith(".vmdk") or name.endswith(HIDDEN_EXTENT_SUFFIXES):
                        continue
                    desc = Path(dirpath) / name
                    dspath = self._dspath_of(desc)
                    if dspath is None:
                        continue
                    try:
                        info = self.disk_info(dspath)
                        if info.parent is not None:
                            index.setdefault(str(self.local(info.parent)), set()).add(str(desc))
                    except vmodl.MethodFault:
                        continue
        return index

    def _dspath_of(self, local: Path) -> DatastorePath | None:
        """The datastore path of a real path under the root (vSAN namespaces by UUID)."""
        try:
            rel = local.relative_to(self.root)
        except ValueError:
            return None
        parts = rel.parts
        if not parts:
            return None
        return DatastorePath(parts[0], "/".join(parts[1:]))

    def _data_of(self, desc: Path) -> Path | None:
        """The data of a disk descriptor, or None when `desc` is not a disk descriptor."""
        name = desc.name
        if not name.endswith(".vmdk") or name.endswith(HIDDEN_EXTENT_SUFFIXES) or desc.is_symlink() \
                or not desc.is_file():
            return None
        try:
            if desc.stat().st_size > 64 * 1024:
                return None
            _, _, extents = _parse_descriptor(desc, None)
        except vmodl.MethodFault:
            return None
        if not extents or "/" in extents[0][1]:
            return None
        data = desc.parent / extents[0][1]
        return data if os.path.lexists(data) else None

    def _transfer_disk(self, src, slocal: Path, dst, dds, dlocal: Path, move: bool):
        """Move or copy a descriptor with its data; the data is renamed after the new descriptor."""
        info = self.disk_info(src)
        ddata = dlocal.with_name(dlocal.name[:-len(".vmdk")] + DATA_SUFFIX) if dlocal.name.endswith(".vmdk") \
            else dlocal.with_name(dlocal.name + DATA_SUFFIX)
        if os.path.lexists(ddata):
            _remove(ddata)
        if move:
            shutil.move(info.data_path, ddata)
        elif info.data_path.is_dir():
            _copytree(info.data_path, ddata)
        else:
            _copyfile(info.data_path, ddata)
        pinfo = self.disk_info(info.parent) if info.parent is not None else None
        info.data_path = ddata
        text = self._render_descriptor(info, pinfo, dst, dds)
        _atomic_write(dlocal, text.encode())
        if move:
            slocal.unlink()

    def _rewrite_descriptor(self, info: DiskInfo, **changes):
        desc = info.descriptor_path
        lines = desc.read_text(errors="replace").splitlines()
        out = []
        for line in lines:
            stripped = line.strip()
            if "capacity_kb" in changes and _EXTENT_RE.match(stripped):
                m = _EXTENT_RE.match(stripped)
                line = f"{m.group(1)} {changes['capacity_kb'] * 2} {m.group(3)}"
            elif "uuid" in changes and stripped.startswith("ddb.uuid"):
                line = f'ddb.uuid = "{changes["uuid"]}"'
            out.append(line)
        _atomic_write(desc, ("\n".join(out) + "\n").encode())

    def _render_descriptor(self, info: DiskInfo, pinfo: DiskInfo | None, dspath: DatastorePath, ds) -> str:
        sectors = info.capacity_kb * 2
        cylinders = max(1, min(65535, sectors // (255 * 63)))
        lines = ["# Disk DescriptorFile", "version=1", 'encoding="UTF-8"', f"CID={info.cid or secrets.token_hex(4)}",
                 f"parentCID={pinfo.cid if pinfo else NO_PARENT_CID}",
                 f'createType="{"vmfsSparse" if pinfo else "monolithicFlat"}"']
        if pinfo is not None:
            lines.append(f'parentFileNameHint="{self._hint_for(dspath, ds, pinfo)}"')
        lines += ["", "# Extent description", f'RW {sectors} FLAT "{info.data_path.name}" 0', "",
                  "# The Disk Data Base", "#DDB", "",
                  f'ddb.adapterType = "{(info.adapter_type or "lsiLogic").lower()}"',
                  f'ddb.geometry.cylinders = "{cylinders}"', 'ddb.geometry.heads = "255"',
                  'ddb.geometry.sectors = "63"', f'ddb.longContentID = "{secrets.token_hex(16)}"',
                  f'ddb.thinProvisioned = "{1 if info.thin else 0}"', f'ddb.uuid = "{info.uuid}"',
                  'ddb.virtualHWVersion = "21"']
        if info.formatted:
            lines.append(f'ddb.sim.format = "{info.formatted}"')
        return "\n".join(lines) + "\n"

    def _hint_for(self, child: DatastorePath, cds, pinfo: DiskInfo) -> str:
        """parentFileNameHint as ESX writes it: the bare name in the same folder, else the /vmfs/volumes path (with
        the vSAN namespace by UUID, which a rename of its friendly name does not break)."""
        ppath = pinfo.path
        pds = self.datastore(ppath.datastore)
        if pinfo.descriptor_path.parent == self._local(child, cds).parent:
            return ppath.name
        parts = list(ppath.parts)
        if pds.is_vsan and parts:
            parts[0] = self._namespace_target(self.ds_dir(pds), parts[0])
        return f"/vmfs/volumes/{pds.volume_id}/{'/'.join(parts)}"

    def _resolve_hint(self, child: DatastorePath, cds, hint: str) -> DatastorePath:
        if hint.startswith("/vmfs/volumes/"):
            volume, _, rest = hint[len("/vmfs/volumes/"):].partition("/")
            pds = self.datastore_by_volume(volume)
            if pds is None:
                raise file_not_found(hint)
            return DatastorePath(pds.name, clean_path(rest, hint))
        if hint.startswith("["):
            return self.parse(hint)
        joined = posixpath.normpath(posixpath.join(child.parent.path, hint))
        if joined.startswith(".."):
            raise file_not_found(hint)
        return DatastorePath(child.datastore, clean_path(joined, hint))

    # -- datastores -----------------------------------------------------------------------------------------------
    def add_datastore(self, datacenter_impl, name: str, kind: str = "VMFS", hosts=(), capacity: int | None = None):
        """Create a datastore in a datacenter's datastore folder, mount it on `hosts` and make its directory."""
        from .objects.datastore import DatastoreImpl

        if not name or "/" in name or name in (".", "..") or name.startswith("."):
            raise vim.fault.InvalidName(msg=f"The name '{name}' is invalid", name=name)
        if kind not in ("VMFS", "vsan"):
            raise vmodl.fault.InvalidArgument(msg=f"Unsupported datastore type {kind}", invalidProperty="kind")
        for existing in self.sim.registry.of_type(vim.Datastore):
            if existing.name == name:
                raise vim.fault.DuplicateName(msg=f"The name '{name}' already exists.", name=name,
                                              object=existing.ref)
        folder = self.sim.registry.get(datacenter_impl.props["datastoreFolder"])
        if capacity is None:
            capacity = DEFAULT_CAPACITY
        ds = DatastoreImpl.build(self.sim, self.sim.registry.next_id("datastore"), name, folder, kind, capacity)
        self.ds_dir(name).mkdir(parents=True, exist_ok=True)
        self.sim.registry.add(ds)
        folder.add_child(ds)
        ds.ensure_browser()
        for container in (datacenter_impl,):
            _append_ref(container, "datastore", ds.ref)
        for host in hosts:
            ds.mount_on(host)
        self._by_name[name] = ds.moid
        return ds

    def space(self, ds) -> tuple[int, int]:
        """(capacity, freeSpace) of a datastore: its capacity, bounded by what the host filesystem has free."""
        capacity = ds.capacity
        try:
            st = os.statvfs(self.root)
            free = st.f_bavail * st.f_frsize
        except OSError:
            free = capacity
        return capacity, max(0, min(capacity, free))

    def wipe(self) -> None:
        """Remove every datastore's content (sim reset)."""
        self._by_name.clear()
        self._children = None
        for entry in list(self.root.iterdir()) if self.root.exists() else []:
            if entry.is_dir() and not entry.is_symlink():
                _rmtree(entry)
            else:
                entry.unlink()


# -- helpers --------------------------------------------------------------------------------------------------------
class AtomicWriter:
    """Writes to a temp file beside the target and renames it over the target on close."""

    def __init__(self, target: Path, dspath: DatastorePath):
        self.target = target
        self.dspath = dspath
        self.tmp = target.with_name(f"{TMP_PREFIX}{secrets.token_hex(6)}-{target.name}"[:255])
        try:
            self._fh = open(self.tmp, "xb")
        except OSError as err:
            raise fault_for_oserror(err, dspath) from None
        self.written = 0

    def write(self, data: bytes) -> int:
        try:
            self._fh.write(data)
        except OSError as err:
            self.abort()
            raise fault_for_oserror(err, self.dspath) from None
        self.written += len(data)
        return len(data)

    def close(self) -> None:
        if self._fh is None:
            return
        try:
            self._fh.close()
            os.replace(self.tmp, self.target)
        except OSError as err:
            self.abort()
            raise fault_for_oserror(err, self.dspath) from None
        self._fh = None

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        try:
            os.unlink(self.tmp)
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _atomic_write(path: Path, data: bytes):
    tmp = path.with_name(f"{TMP_PREFIX}{secrets.token_hex(6)}-{path.name}"[:255])
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError:
        _remove(tmp)
        raise


def clean_path(rest: str, text: str) -> str:
    """A datastore-relative path: leading/duplicate slashes and `.` dropped; `..` and NUL refused."""
    if "\x00" in rest:
        raise invalid_path(text)
    parts = [p for p in rest.strip().split("/") if p and p != "."]
    if any(p == ".." for p in parts):
        raise invalid_path(text)
    return "/".join(parts)


def _ancestors(dspath: DatastorePath) -> list[DatastorePath]:
    out, p = [], dspath.parent
    while not p.is_root:
        out.append(p)
        p = p.parent
    return out


def _in_datacenter(ds, datacenter) -> bool:
    if datacenter is None:
        return True
    if isinstance(datacenter, str):
        moid = datacenter
    elif isinstance(datacenter, VmomiSupport.ManagedObject):
        moid = datacenter._moId
    else:
        moid = datacenter.moid
    dc = ds.datacenter()
    return dc is not None and dc.moid == moid


def _append_ref(obj, prop: str, ref):
    if prop not in obj.props and prop not in obj.property_names():
        return
    refs = obj.props.get(prop)
    if refs is None:
        obj.set(**{prop: [ref]})
    elif all(r._moId != ref._moId for r in refs):
        refs.append(ref)
        obj.touch(prop)


def _is_within(path: Path, ancestor: Path) -> bool:
    try:
        path.relative_to(ancestor)
        return True
    except ValueError:
        return False


def _same_fs(a: Path, b: Path) -> bool:
    try:
        return os.lstat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def _rmtree(path: Path):
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink()
        return

    def onerror(func, p, exc_info):
        # a read-only directory inside a guest's filesystem: make it writable and try again
        try:
            os.chmod(os.path.dirname(p), 0o755)
            func(p)
        except OSError:
            raise exc_info[1] from None
    shutil.rmtree(path, onerror=onerror)


def _remove(path: Path):
    if os.path.lexists(path):
        _rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def _move(src: Path, dst: Path):
    if _same_fs(src, dst.parent):
        os.rename(src, dst)
    else:
        shutil.move(src, dst)


def _first_clash(src: Path, dst: Path) -> str | None:
    """The first file of tree `src` that a copy into `dst` would overwrite (folders merge, so they don't clash)."""
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            target = dst / rel / name
            if os.path.lexists(target):
                return posixpath.normpath(posixpath.join(rel, name))
        for name in dirnames:
            target = dst / rel / name
            if os.path.lexists(target) and not target.is_dir():
                return posixpath.normpath(posixpath.join(rel, name))
    return None


def _copyfile(src: Path, dst: Path):
    """Copy a file keeping holes (disk images are sparse)."""
    tmp = dst.with_name(f"{TMP_PREFIX}{secrets.token_hex(6)}-{dst.name}"[:255])
    try:
        if shutil.which("cp"):
            subprocess.run(["cp", "--sparse=always", "-p", "--", str(src), str(tmp)], check=True,
                           capture_output=True)
        else:
            shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    except subprocess.CalledProcessError as err:
        _remove(tmp)
        raise OSError(errno.EIO, err.stderr.decode(errors="replace")) from None
    except OSError:
        _remove(tmp)
        raise


def _copytree(src: Path, dst: Path):
    """Copy a folder tree exactly (symlinks as links, device nodes and modes kept where allowed), merging into an
    existing `dst`."""
    if shutil.which("cp"):
        dst.mkdir(exist_ok=True)
        result = subprocess.run(["cp", "-a", "--sparse=always", "--", f"{src}/.", str(dst)], capture_output=True)
        if result.returncode == 0:
            return
        log.debug("cp -a failed (%s), copying in Python", result.stderr.decode(errors="replace").strip())
    shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True,
                    ignore_dangling_symlinks=True, copy_function=shutil.copy2)


def _merge_layer(layer: Path, dst: Path):
    """Apply one overlay layer onto `dst`: whiteouts (0/0 char devices) delete, opaque folders replace, the rest is
    copied over."""
    for dirpath, dirnames, filenames in os.walk(layer):
        rel = os.path.relpath(dirpath, layer)
        target_dir = dst if rel == "." else dst / rel
        if rel != "." and _is_opaque(Path(dirpath)) and target_dir.is_dir():
            _rmtree(target_dir)
        if not target_dir.is_dir():
            _remove(target_dir)
            target_dir.mkdir(parents=True)
            shutil.copystat(dirpath, target_dir, follow_symlinks=False)
        for name in list(dirnames) + filenames:
            src = Path(dirpath) / name
            target = target_dir / name
            st = os.lstat(src)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                _remove(target)  # whiteout
                continue
            if stat.S_ISDIR(st.st_mode):
                if os.path.lexists(target) and not target.is_dir():
                    _remove(target)
                continue
            _remove(target)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(src), target)
            elif stat.S_ISREG(st.st_mode):
                shutil.copy2(src, target, follow_symlinks=False)
            else:
                try:
                    os.mknod(target, st.st_mode, st.st_rdev)
                except OSError:
                    log.debug("cannot copy special file %s without privileges", name)


def _is_opaque(path: Path) -> bool:
    for attr in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(path, attr, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _make_ext4(path: Path, capacity_kb: int, label: str | None):
    """A sparse image file of the disk's capacity, formatted ext4 when mkfs.ext4 is available."""
    with open(path, "xb") as handle:
        handle.truncate(capacity_kb * 1024)
    mkfs = shutil.which("mkfs.ext4") or shutil.which("mkfs.ext4", path="/sbin:/usr/sbin")
    if mkfs is None:
        log.warning("mkfs.ext4 not found: disk data %s left unformatted", path.name)
        return
    cmd = [mkfs, "-q", "-F", "-m", "0"]
    if label:
        cmd += ["-L", label[:16]]
    result = subprocess.run(cmd + [str(path)], capture_output=True)
    if result.returncode != 0:
        path.unlink()
        raise OSError(errno.EIO, "mkfs.ext4 failed")


_EXTENT_RE = re.compile(r'^(RW|RDONLY|NOACCESS)\s+(\d+)\s+(.*)$')
_EXTENT_FILE_RE = re.compile(r'^\S+\s+"([^"]+)"')


def _parse_descriptor(desc: Path, dspath) -> tuple[dict, dict, list[tuple[int, str]]]:
    try:
        with open(desc, "rb") as handle:
            raw = handle.read(64 * 1024)
    except OSError as err:
        raise fault_for_oserror(err, dspath or desc.name) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise not_a_disk(dspath or desc.name) from None
    if "# Disk DescriptorFile" not in text[:200]:
        raise not_a_disk(dspath or desc.name)
    fields, ddb, extents = {}, {}, []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _EXTENT_RE.match(line)
        if m:
            fm = _EXTENT_FILE_RE.match(m.group(3))
            if fm:
                extents.append((int(m.group(2)), fm.group(1)))
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip().strip('"')
        (ddb if key.startswith("ddb.") else fields)[key] = value
    return fields, ddb, extents

