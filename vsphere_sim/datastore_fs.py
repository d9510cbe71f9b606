"""Datastores as real directories: `"[ds] path"` <-> files, vSAN namespaces, the files and folders FileManager and the
datastore browser work on.

Layout under `<workdir>/datastores/`:
    <ds>/...                        a VMFS datastore's tree, as is
    <ds>/<uuid>/...                 vSAN: every top-level folder is a namespace stored under its own UUID ...
    <ds>/<friendly name> -> <uuid>  ... its friendly name a symlink to it, as /vmfs/volumes/vsanDatastore shows it
Virtual disks (descriptor + data, parent chains) are `vmdk.py`'s; `DatastoreFS` keeps their public methods
(`create_disk`, `disk_info`, `delete_disk`, ...), which delegate to `self.disks`. Paths, faults and file primitives are
in `datastore_paths.py`.

Every fault is a pyVmomi fault worded as vCenter words it; host paths and Python names never reach a client.
"""
from __future__ import annotations

import errno
import functools
import logging
import os
import posixpath
import re
import shutil
import uuid as uuid_mod
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from pyVmomi import VmomiSupport, vim, vmodl

from .datastore_paths import (
    TMP_PREFIX,
    AtomicWriter,
    DatastorePath,
    cannot_create,
    clean_path,
    copyfile,
    copytree,
    fault_for_oserror,
    file_exists,
    file_not_found,
    invalid_path,
    is_within,
    remove,
    rmtree,
)
from .vmdk import HIDDEN_EXTENT_SUFFIXES, DiskInfo, VirtualDisks, is_descriptor_name

log = logging.getLogger("vsphere_sim.datastore")

if TYPE_CHECKING:
    from .objects.datastore import DatastoreImpl

_PATH_RE = re.compile(r"^\[([^\[\]]*)\]\s*(.*)$", re.S)
NAMESPACE_HINT = ("top-level folders on a vSAN datastore are namespaces; create them with "
                  "DatastoreNamespaceManager.CreateDirectory")
DEFAULT_CAPACITY = 10 * 1024 ** 4  # 10 TiB, the size vcsim gives its datastores


def escape_name(name: str) -> str:
    """A display name as a file name: vCenter writes '/' and '\\' in names as %2f and %5c."""
    return name.replace("/", "%2f").replace("\\", "%5c")


def parse_datastore_path(text) -> DatastorePath:
    """`DatastoreFS.parse` for code without the sim at hand."""
    if isinstance(text, DatastorePath):
        return text
    if not isinstance(text, str):
        raise invalid_path(str(text))
    return _parse_text(text)


@functools.lru_cache(maxsize=8192)
def _parse_text(text: str) -> DatastorePath:
    # A VM's paths are parsed dozens of times per operation (home, siblings, disks); a fault is not cached.
    stripped = text.strip()
    if stripped.startswith(("http://", "https://")):
        parts = urlsplit(text)
        query = parse_qs(parts.query)
        if not parts.path.startswith("/folder") or not query.get("dsName"):
            raise invalid_path(text)
        return DatastorePath(query["dsName"][0], clean_path(unquote(parts.path[len("/folder"):]), text))
    match = _PATH_RE.match(stripped)
    if match is None or not match.group(1).strip():
        raise invalid_path(text)
    return DatastorePath(match.group(1).strip(), clean_path(match.group(2), text))


# -- the filesystem -------------------------------------------------------------------------------------------------
class DatastoreFS:
    def __init__(self, sim, root):
        self.sim = sim
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._root_text = str(self.root)
        self._by_name: dict[str, str] = {}  # datastore name -> moid, checked on every use
        self.disks = VirtualDisks(self)

    # -- parsing and lookup ---------------------------------------------------------------------------------------
    def parse(self, text) -> DatastorePath:
        """`"[ds] a/b"` (also `"[ds]/a/b"`, `"[ds] /a/b"` or a `/folder` URL) → DatastorePath, else
        InvalidDatastorePath."""
        if isinstance(text, DatastorePath):
            return text
        if not isinstance(text, str):
            raise invalid_path(str(text))
        return _parse_text(text)

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

    def resolve_transfer(self, source, source_dc, dest, dest_dc):
        """For a move or copy (FileManager, VirtualDiskManager): (source path, destination path, task entity); the
        destination's datacenter defaults to the source datastore's."""
        src, sds, entity = self.resolve_call(source, source_dc)
        if dest_dc is None:
            dc = sds.datacenter()
            dest_dc = dc.ref if dc is not None else None
        dst, _, _ = self.resolve_call(dest, dest_dc)
        return src, dst, entity

    def local(self, dspath, ds=None) -> Path:
        """The real path of a datastore path (of a resolved DatastorePath when its datastore `ds` is given): vSAN
        friendly names resolve to their UUID directory. A symlink on the way (one a guest made inside a disk's data)
        is refused, so nothing leads out of the datastore."""
        return Path(self.local_str(dspath, ds))

    def local_str(self, dspath, ds=None) -> str:
        """`local()` as a string (pathlib costs more than the lstat calls here)."""
        if ds is None:
            dspath, ds = self.resolve(dspath)
        base = os.path.join(self._root_text, ds.name)
        parts = dspath.parts
        if parts and ds.is_vsan:
            parts = (self.namespace_target(Path(base), parts[0]), *parts[1:])
        path = base
        last = len(parts) - 1
        for i, part in enumerate(parts):
            path = f"{path}/{part}"
            if i < last and os.path.islink(path):
                raise invalid_path(str(dspath))
        return path

    def dspath_of(self, local: Path) -> DatastorePath | None:
        """The datastore path of a real path under the root (vSAN namespaces by UUID)."""
        try:
            rel = local.relative_to(self.root)
        except ValueError:
            return None
        parts = rel.parts
        if not parts:
            return None
        return DatastorePath(parts[0], "/".join(parts[1:]))

    # -- vSAN namespaces ------------------------------------------------------------------------------------------
    @staticmethod
    def namespace_target(base: Path, name: str) -> str:
        """The UUID directory a top-level name of a vSAN datastore stands for (the name itself when not a link)."""
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
        return (base / self.namespace_target(base, top)).is_dir()

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
        target = self.namespace_target(base, top)
        friendly = top if target != top else self.friendly_name(ds, target)
        rmtree(base / target)
        self.disks.forget_under(base / target)
        if friendly is not None and os.path.islink(base / friendly):
            os.unlink(base / friendly)

    def check_vsan_top_create(self, dspath: DatastorePath, ds, what: str = "file"):
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
                ns_uuid = self.namespace_target(base, friendly)
                if ns_uuid == friendly or not (base / ns_uuid).is_dir():
                    ns_uuid = self.create_namespace(ds, friendly)
                dspath = DatastorePath(ds.name, f"{ns_uuid}/{file_name}")
            else:
                dspath = DatastorePath(ds.name, f"{escape_name(display_name)}/{file_name}")
        elif not dspath.path.endswith(".vmx"):
            dspath = dspath.join(file_name)
        if ds.is_vsan:
            self._check_vsan_vm_folder(dspath, ds, display_name, vm_path_name)
        local = self.local(dspath, ds)
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
        target = self.namespace_target(base, top)
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
            return os.path.lexists(self.local_str(dspath))
        except vmodl.MethodFault:
            return False

    def is_dir(self, dspath) -> bool:
        try:
            return self.local(dspath).is_dir()
        except vmodl.MethodFault:
            return False

    def read_file(self, dspath) -> bytes:
        dspath, ds = self.resolve(dspath)
        local = self.local(dspath, ds)
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
        self.check_vsan_top_create(dspath, ds, "file")
        local = self.local(dspath, ds)
        if local.is_dir():
            raise vim.fault.NotAFile(msg=f"{dspath} is a folder, not a file", file=str(dspath))
        if create_parents and not local.parent.is_dir():
            self.make_dir(dspath.parent, True, exist_ok=True)
        if not local.parent.is_dir():
            raise file_not_found(dspath.parent)
        return AtomicWriter(local, dspath)

    # -- files written in place (a VM's own files): one file operation, not write_file's temp file and rename --------
    def _open_in_place(self, dspath, flags: int, fall_back: tuple[int, ...]):
        """(dspath, fd, local path) of a file to write in place; fd None where write_file must do the write: the
        datastore's root or a vSAN top level (their own rules), or an open failing with an errno in `fall_back`."""
        dspath, ds = self.resolve(dspath)
        if dspath.is_root or (ds.is_vsan and dspath.is_top_level):
            return dspath, None, None
        local = self.local_str(dspath, ds)
        try:
            return dspath, os.open(local, flags | os.O_NOFOLLOW, 0o666), local
        except OSError as err:
            if err.errno in fall_back:
                return dspath, None, local
            raise fault_for_oserror(err, dspath) from None

    def write_new_file(self, dspath, data: bytes) -> DatastorePath:
        """A file that does not exist yet (a new VM's .vmx and .nvram in its new folder), created with its content:
        write_file's temp file and rename cost ~0.1 ms of kernel metadata work each. A file already there goes
        through write_file."""
        dspath, fd, local = self._open_in_place(dspath, os.O_WRONLY | os.O_CREAT | os.O_EXCL, (errno.EEXIST,))
        if fd is None:
            return self.write_file(dspath, data)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError as err:
            os.close(fd)
            os.unlink(local)  # no half a file left behind
            raise fault_for_oserror(err, dspath) from None
        os.close(fd)
        return dspath

    def overwrite_file(self, dspath, data: bytes) -> DatastorePath:
        """Rewrite a file in place (write over it, cut it to length): ~3 µs against ~100 µs for write_file. Not
        atomic: only for a file whose owner redoes it if the sim dies in the middle (a VM's .vmx while the VM is saved
        as stale). A file not there, a symlink or a folder goes through write_file (which makes it, or says what is
        wrong)."""
        dspath, fd, _local = self._open_in_place(dspath, os.O_WRONLY, (errno.ENOENT, errno.ELOOP, errno.EISDIR))
        if fd is None:
            return self.write_file(dspath, data)
        try:
            view, offset = memoryview(data), 0
            while offset < len(data):
                offset += os.pwrite(fd, view[offset:], offset)
            os.ftruncate(fd, len(data))
        except OSError as err:
            raise fault_for_oserror(err, dspath) from None
        finally:
            os.close(fd)
        return dspath

    def create_empty(self, dspath) -> None:
        """An empty file at `dspath` (a VM's swap file), made in place: an empty file has no half a reader could see.
        A symlink is replaced and a folder refused, as write_file does."""
        dspath, fd, _local = self._open_in_place(dspath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                                                 (errno.ELOOP, errno.EISDIR))
        if fd is None:
            self.write_file(dspath, b"")
        else:
            os.close(fd)

    def remove_files(self, folder, names) -> None:
        """Best effort: the files `names` in `folder` (a VM's own files) are gone afterwards, as `delete` of each that
        exists would leave them; a plain file is unlinked after one lookup of the folder, anything else (a folder, a
        disk descriptor, a name with a slash) goes through `delete`. Errors are logged at debug level, not raised."""
        try:
            folder = self.parse(folder)
            base = self.local_str(folder)
            if not folder.is_root and os.path.islink(base):
                base = None  # local() of a file below refuses a symlinked folder: let delete() say so
        except vmodl.MethodFault:
            base = None
        for name in names:
            if base is not None and name and "/" not in name and name not in (".", "..") \
                    and not is_descriptor_name(name):
                try:
                    os.unlink(f"{base}/{name}")
                    continue
                except FileNotFoundError:
                    continue
                except OSError:
                    pass  # a folder, or not ours to unlink: delete() decides, as before
            path = folder.join(name) if isinstance(folder, DatastorePath) else None
            if path is None or not self.exists(path):
                continue
            try:
                self.delete(path)
            except (vmodl.MethodFault, OSError) as err:
                log.debug("ignored: delete %s: %s", path, err)

    def remove_empty_dir(self, dspath) -> bool:
        """`delete` of a folder that is empty (no hidden file either) in one rmdir; False, with nothing done, for
        anything else (not empty, a symlink, a datastore root or vSAN namespace): then the caller decides."""
        try:
            dspath, ds = self.resolve(dspath)
            if dspath.is_root or (ds.is_vsan and dspath.is_top_level):
                return False
            local = self.local_str(dspath, ds)
        except vmodl.MethodFault:
            return False
        if os.path.islink(local):
            return False
        try:
            os.rmdir(local)
        except OSError:
            return False
        self.disks.forget_under(Path(local))
        return True

    def list_dir(self, dspath) -> list[str]:
        """Names in a folder, as the datastore browser would list them (extents and internal files hidden)."""
        dspath, ds = self.resolve(dspath)
        local = self.local(dspath, ds)
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
        local = self.local(dspath, ds)
        if os.path.lexists(local):
            if exist_ok and local.is_dir():
                return dspath
            raise file_exists(dspath)
        if not local.parent.is_dir():
            if not create_parents:
                raise file_not_found(dspath.parent)
            for parent in reversed(_ancestors(dspath)):
                plocal = self.local(parent, ds)
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
        local = self.local(dspath, ds)
        if not os.path.lexists(local):
            raise file_not_found(dspath)
        if local.is_dir() and not local.is_symlink():
            try:
                if ds.is_vsan and dspath.is_top_level:
                    self._delete_namespace(ds, dspath.parts[0])
                else:
                    rmtree(local)
                    self.disks.forget_under(local)
            except OSError as err:
                raise vim.fault.CannotDeleteFile(msg=f"Cannot delete file {dspath}", file=str(dspath)) from err
        elif self.disks.data_of(local) is not None:
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
        slocal = self.local(src, sds)
        if not os.path.lexists(slocal):
            raise file_not_found(src)
        if dst.is_root:
            raise file_exists(dst)
        dlocal = self.local(dst, dds)
        if slocal == dlocal:
            if move:
                return dst
            raise file_exists(dst)
        if is_within(dlocal, slocal):
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
                copytree(slocal, dlocal)
            else:
                if exists:
                    if not force:
                        raise file_exists(dst)
                    self._remove_with_data(dlocal)
                if src_dir:
                    _move(slocal, dlocal) if move else copytree(slocal, dlocal)
                    if move and vsan_src_ns:
                        self._drop_namespace_link(sds, src.parts[0])
                elif slocal.is_symlink():
                    # a link (one a guest made) is moved or copied as a link, never followed out of the datastore
                    _move(slocal, dlocal) if move else os.symlink(os.readlink(slocal), dlocal)
                elif self.disks.data_of(slocal) is not None:
                    self.disks.transfer(src, slocal, dst, dds, dlocal, move)
                else:
                    _move(slocal, dlocal) if move else copyfile(slocal, dlocal)
        except OSError as err:
            raise fault_for_oserror(err, dst) from None
        if src_dir or src.name.endswith(".vmdk") or dst.name.endswith(".vmdk"):
            self.disks.files_changed(slocal if move else None, dlocal)  # disks moved or copied: keep the index
        return dst

    def _remove_with_data(self, local: Path):
        data = self.disks.data_of(local) if not local.is_dir() else None
        remove(local)
        if data is not None:
            remove(data)

    def _rename_namespace(self, ds, src: DatastorePath, dst: DatastorePath, force: bool) -> DatastorePath:
        base = self.ds_dir(ds)
        target = self.namespace_target(base, src.parts[0])
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

    # -- virtual disks (vmdk.py) ---------------------------------------------------------------------------------
    def create_disk(self, dspath, capacity_kb: int | None, parent: DatastorePath | str | None = None,
                    formatted: str | None = None, *, disk_type: str = "thin", adapter_type: str = "lsiLogic",
                    label: str | None = None) -> DiskInfo:
        """A new disk: descriptor + data; with `parent`, a child disk holding only its own layer."""
        return self.disks.create(dspath, capacity_kb, parent, formatted, disk_type=disk_type,
                                 adapter_type=adapter_type, label=label)

    def disk_info(self, dspath) -> DiskInfo:
        return self.disks.info(dspath)

    def disk_chain(self, dspath) -> list[Path]:
        """The data of a disk and all its parents, base first."""
        return self.disks.chain(dspath)

    def delete_disk(self, dspath) -> None:
        """Delete a disk with its data; FileLocked while another disk has it as its parent."""
        self.disks.delete(dspath)

    def copy_disk(self, src, dst, force: bool = False) -> DiskInfo:
        """Copy a disk to a standalone one (a child's chain consolidated into it)."""
        return self.disks.copy(src, dst, force)

    def move_disk(self, src, dst, force: bool = False) -> DatastorePath:
        return self.disks.move(src, dst, force)

    def extend_disk(self, dspath, new_capacity_kb: int) -> DiskInfo:
        return self.disks.extend(dspath, new_capacity_kb)

    def set_disk_uuid(self, dspath, value: str) -> None:
        self.disks.set_uuid(dspath, value)

    def children_of(self, info: DiskInfo) -> list[DatastorePath]:
        return self.disks.children_of(info)

    # -- datastores -----------------------------------------------------------------------------------------------
    def add_datastore(self, datacenter_impl, name: str, kind: str = "VMFS", hosts=(), capacity: int | None = None):
        """Create a datastore in a datacenter's datastore folder, mount it on `hosts` and make its directory."""
        from .objects.base import ref_list_add
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
        ref_list_add(datacenter_impl, "datastore", ds.ref)
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
        self.disks.drop_index()
        for entry in list(self.root.iterdir()) if self.root.exists() else []:
            if entry.is_dir() and not entry.is_symlink():
                rmtree(entry)
            else:
                entry.unlink()


# -- helpers --------------------------------------------------------------------------------------------------------
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


def _same_fs(a: Path, b: Path) -> bool:
    try:
        return os.lstat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


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


