"""Virtual disks on the datastores: descriptor format, parent chains and their index, layer merge, ext4 images.

A disk is a descriptor `<n>.vmdk` (vmdk descriptor text; a child names its parent in `parentFileNameHint` and has
`createType="vmfsSparse"`) plus its data `<n>-flat.vmdk`, which is either
- a directory tree a guest uses as a filesystem. A child disk's data holds only its own layer: the guest stacks the
  chain's directories (`chain()`, base first) as an overlay, like a VMDK delta chain. Deleted files in a layer are
  overlay whiteouts (0/0 character devices), replaced folders are opaque (`trusted.`/`user.overlay.opaque`), and a
  copy of a child consolidates its chain by merging the layers (`merge_layer`);
- or, for a disk created `formatted="ext4"`, a sparse image file of the disk's capacity formatted ext4 (with the
  disk's label); such a disk has no children.

A disk with children is locked: deleting it raises FileLocked naming a child, as ESX refuses a disk whose lock a child
holds. Which disks are whose children is kept in an index (parent descriptor → child descriptors, real paths), built
by a scan of every datastore on first use and kept in step by every create, delete, move and copy; an entry is
verified against the child's descriptor before it is trusted, so a stale entry costs nothing but a read.

`VirtualDisks` is reached through `sim.datastores` (`DatastoreFS.create_disk`, `disk_info`, `disk_chain`,
`delete_disk`, `copy_disk`, ... delegate here); paths are resolved by the DatastoreFS.
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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pyVmomi import vim, vmodl

from .datastore_paths import (
    DatastorePath,
    atomic_write,
    clean_path,
    copyfile,
    copytree,
    fault_for_oserror,
    file_exists,
    file_not_found,
    remove,
    rmtree,
)

if TYPE_CHECKING:
    from .datastore_fs import DatastoreFS

log = logging.getLogger("vsphere_sim.vmdk")

DATA_SUFFIX = "-flat.vmdk"
# Extents ESX's datastore browser never lists: a disk shows as its descriptor only.
HIDDEN_EXTENT_SUFFIXES = ("-flat.vmdk", "-delta.vmdk", "-sesparse.vmdk", "-ctk.vmdk")
NO_PARENT_CID = "ffffffff"
MAX_DESCRIPTOR = 64 * 1024
MAX_CHAIN = 255


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


def not_a_disk(p) -> vim.fault.FileFault:
    return vim.fault.FileFault(msg=f"The file {p} is not a virtual disk", file=str(p))


def vmdk_uuid() -> str:
    """`ddb.uuid` in the vmdk form: 16 bytes as hex pairs, a dash after the eighth."""
    raw = secrets.token_bytes(16)
    pairs = [f"{b:02x}" for b in raw]
    return " ".join(pairs[:8]) + "-" + " ".join(pairs[8:])


def is_descriptor_name(name: str) -> bool:
    return name.endswith(".vmdk") and not name.endswith(HIDDEN_EXTENT_SUFFIXES)


def data_path_for(desc: Path) -> Path:
    """Where a descriptor's data goes: `<n>.vmdk` → `<n>-flat.vmdk`."""
    stem = desc.name[:-len(".vmdk")] if desc.name.endswith(".vmdk") else desc.name
    return desc.with_name(stem + DATA_SUFFIX)


class VirtualDisks:
    def __init__(self, fs: DatastoreFS):
        self.fs = fs
        # disk descriptor (resolved local path) -> its child disks' descriptors; None = rebuild by a scan when needed
        self._children: dict[str, set[str]] | None = None

    # -- create, read, delete -------------------------------------------------------------------------------------
    def create(self, dspath, capacity_kb: int | None, parent: DatastorePath | str | None = None,
               formatted: str | None = None, *, disk_type: str = "thin", adapter_type: str = "lsiLogic",
               label: str | None = None) -> DiskInfo:
        """A new disk: descriptor + data. With `parent`, a child (delta) disk that holds only its own layer and
        inherits the parent's capacity when none (or 0) is given."""
        fs = self.fs
        dspath, ds = fs.resolve(dspath)
        if not is_descriptor_name(dspath.path):
            raise vmodl.fault.InvalidArgument(msg=f"Invalid virtual disk name {dspath}: it must end in .vmdk",
                                              invalidProperty="name")
        fs.check_vsan_top_create(dspath, ds, "file")
        desc = fs.local(dspath, ds)
        data = data_path_for(desc)
        if os.path.lexists(desc) or os.path.lexists(data):
            raise file_exists(dspath)
        if not desc.parent.is_dir():
            raise file_not_found(dspath.parent)
        pinfo = None
        if parent is not None:
            pinfo = self.info(parent)
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
                make_ext4(data, capacity_kb, label)
            else:
                data.mkdir()
            atomic_write(desc, self._render_descriptor(info, pinfo, dspath, ds).encode())
        except OSError as err:
            remove(data)
            raise fault_for_oserror(err, dspath) from None
        if pinfo is not None and self._children is not None:
            self._children.setdefault(str(pinfo.descriptor_path), set()).add(str(desc))
        return info

    def info(self, dspath) -> DiskInfo:
        dspath, ds = self.fs.resolve(dspath)
        desc = self.fs.local(dspath, ds)
        if not os.path.lexists(desc):
            raise file_not_found(dspath)
        if desc.is_dir():
            raise not_a_disk(dspath)
        fields, ddb, extents = parse_descriptor(desc, dspath)
        if not extents:
            raise not_a_disk(dspath)
        sectors, extent_file = extents[0]
        data = desc.parent / extent_file
        hint = fields.get("parentFileNameHint")
        parent = self._resolve_hint(dspath, hint) if hint else None
        return DiskInfo(capacity_kb=sectors // 2, parent=parent, data_path=data, uuid=ddb.get("ddb.uuid", ""),
                        path=dspath, descriptor_path=desc, formatted="ext4" if data.is_file() else None,
                        cid=fields.get("CID", ""), create_type=fields.get("createType", ""),
                        thin=ddb.get("ddb.thinProvisioned") == "1", adapter_type=ddb.get("ddb.adapterType", ""))

    def chain(self, dspath) -> list[Path]:
        """The data of a disk and all its parents, base first (the lower→upper order of an overlay)."""
        chain, seen = [], set()
        info = self.info(dspath)
        while True:
            key = str(info.descriptor_path)
            if key in seen or len(chain) > MAX_CHAIN:
                raise vim.fault.FileFault(msg=f"The parent chain of virtual disk {dspath} is circular",
                                          file=str(dspath))
            seen.add(key)
            chain.append(info.data_path)
            if info.parent is None:
                break
            info = self.info(info.parent)
        chain.reverse()
        return chain

    def delete(self, dspath) -> None:
        """Delete a disk (descriptor and data); refused with FileLocked while another disk has it as its parent, as
        ESX refuses a disk whose lock a child holds."""
        info = self.info(dspath)
        children = self.children_of(info)
        if children:
            raise vim.fault.FileLocked(msg=f"Unable to access file {info.path} since it is locked (it is the parent "
                                           f"of {children[0]})", file=str(info.path))
        try:
            remove(info.data_path)
            info.descriptor_path.unlink()
        except OSError as err:
            raise vim.fault.CannotDeleteFile(msg=f"Cannot delete file {info.path}", file=str(info.path)) from err
        if self._children is not None:
            self._children.pop(str(info.descriptor_path), None)
            if info.parent is not None:
                try:
                    pdesc = str(self.fs.local(info.parent))
                    self._children.get(pdesc, set()).discard(str(info.descriptor_path))
                except vmodl.MethodFault:
                    pass

    # -- copy, move, change ---------------------------------------------------------------------------------------
    def copy(self, src, dst, force: bool = False) -> DiskInfo:
        """Copy a disk to a standalone one: a child's chain is consolidated into the copy (as vmkfstools -i does)."""
        sinfo = self.info(src)
        dst, dds = self.fs.resolve(dst)
        if os.path.lexists(self.fs.local(dst, dds)):
            if not force:
                raise file_exists(dst)
            self.delete(dst)
        info = self.create(dst, sinfo.capacity_kb, formatted=sinfo.formatted,
                           adapter_type=sinfo.adapter_type or "lsiLogic")
        try:
            if sinfo.formatted:
                info.data_path.unlink()
                copyfile(sinfo.data_path, info.data_path)
            else:
                for layer in self.chain(src):
                    merge_layer(layer, info.data_path)
        except OSError as err:
            self.delete(dst)
            raise fault_for_oserror(err, dst) from None
        return info

    def move(self, src, dst, force: bool = False) -> DatastorePath:
        self.info(src)  # FileNotFound / not a disk, before anything moves
        return self.fs.move(src, dst, force)

    def transfer(self, src: DatastorePath, slocal: Path, dst: DatastorePath, dds, dlocal: Path, move: bool):
        """Move or copy a descriptor with its data (for FileManager's move and copy); the data is renamed after the
        new descriptor and a parent hint rewritten for the new folder. Raises OSError."""
        info = self.info(src)
        ddata = data_path_for(dlocal)
        if os.path.lexists(ddata):
            remove(ddata)
        if move:
            shutil.move(info.data_path, ddata)
        elif info.data_path.is_dir():
            copytree(info.data_path, ddata)
        else:
            copyfile(info.data_path, ddata)
        pinfo = self.info(info.parent) if info.parent is not None else None
        info.data_path = ddata
        atomic_write(dlocal, self._render_descriptor(info, pinfo, dst, dds).encode())
        if move:
            slocal.unlink()

    def extend(self, dspath, new_capacity_kb: int) -> DiskInfo:
        info = self.info(dspath)
        if new_capacity_kb < info.capacity_kb:
            raise vmodl.fault.InvalidArgument(
                msg=f"The new capacity ({new_capacity_kb} KB) of {info.path} is smaller than its current capacity "
                    f"({info.capacity_kb} KB)", invalidProperty="newCapacityKb")
        self._rewrite_descriptor(info, capacity_kb=new_capacity_kb)
        if info.formatted:
            os.truncate(info.data_path, new_capacity_kb * 1024)
        info.capacity_kb = new_capacity_kb
        return info

    def set_uuid(self, dspath, value: str) -> None:
        self._rewrite_descriptor(self.info(dspath), uuid=value)

    def data_of(self, desc: Path) -> Path | None:
        """The data of a disk descriptor (a real path), or None when `desc` is not a disk descriptor."""
        if not is_descriptor_name(desc.name) or desc.is_symlink() or not desc.is_file():
            return None
        try:
            if desc.stat().st_size > MAX_DESCRIPTOR:
                return None
            _, _, extents = parse_descriptor(desc, None)
        except vmodl.MethodFault:
            return None
        if not extents or "/" in extents[0][1]:
            return None
        data = desc.parent / extents[0][1]
        return data if os.path.lexists(data) else None

    # -- the parent index -----------------------------------------------------------------------------------------
    def children_of(self, info: DiskInfo) -> list[DatastorePath]:
        """Existing disks whose parent is this one (index verified against their descriptors)."""
        if self._children is None:
            self._children = {}
            try:
                for ds in self.fs.sim.registry.of_type(vim.Datastore):
                    self._index_tree(self.fs.ds_dir(ds))
            except BaseException:
                self._children = None  # half an index would answer wrongly: scan again next time
                raise
        key = str(info.descriptor_path)
        out = []
        for child in sorted(self._children.get(key, ())):
            dspath = self.fs.dspath_of(Path(child))
            if dspath is None:
                continue
            try:
                cinfo = self.info(dspath)
                if cinfo.parent is not None and str(self.fs.local(cinfo.parent)) == key:
                    out.append(dspath)
                    continue
            except vmodl.MethodFault:
                pass
            self._children[key].discard(child)
        return out

    def drop_index(self) -> None:
        """Forget the index; the next use rebuilds it by a scan of every datastore (as after a restart)."""
        self._children = None

    def forget_under(self, local: Path) -> None:
        """The files at or under `local` are gone: drop the index's entries for the child disks that were there. A
        parent that was there keeps the children elsewhere that still name it, as a scan would find them."""
        if not self._children:
            return
        top, prefix = str(local), str(local) + os.sep
        for key in list(self._children):
            children = self._children[key]
            children -= {c for c in children if c == top or c.startswith(prefix)}
            if not children:
                del self._children[key]

    def files_changed(self, gone: Path | None, changed: Path) -> None:
        """Files were moved or copied (FileManager): forget the disks at `gone` (the source of a move) and at
        `changed` (the destination), then index the disks at `changed` as they are now: a scan of that tree only."""
        if self._children is None:
            return
        if gone is not None:
            self.forget_under(gone)
        self.forget_under(changed)
        self._index_tree(changed)

    def _index_tree(self, root: Path) -> None:
        """Add the child disks in the tree at `root` (or the descriptor `root`) to the index."""
        if root.is_file():
            self._index_descriptor(root)
            return
        if root.is_symlink() or root.name.endswith(DATA_SUFFIX):
            return  # a scan never follows a link to a folder, nor looks into a disk's data
        for dirpath, dirnames, filenames in os.walk(root):
            # a disk's data is a guest filesystem, never a place for descriptors
            dirnames[:] = [d for d in dirnames if not d.endswith(DATA_SUFFIX)]
            for name in filenames:
                self._index_descriptor(Path(dirpath) / name)

    def _index_descriptor(self, desc: Path) -> None:
        if not is_descriptor_name(desc.name):
            return
        dspath = self.fs.dspath_of(desc)
        if dspath is None:
            return
        try:
            info = self.info(dspath)
            if info.parent is not None:
                self._children.setdefault(str(self.fs.local(info.parent)), set()).add(str(desc))
        except vmodl.MethodFault:
            pass

    # -- the descriptor -------------------------------------------------------------------------------------------
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
        atomic_write(desc, ("\n".join(out) + "\n").encode())

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
        fs = self.fs
        ppath = pinfo.path
        pds = fs.datastore(ppath.datastore)
        if pinfo.descriptor_path.parent == fs.local(child, cds).parent:
            return ppath.name
        parts = list(ppath.parts)
        if pds.is_vsan and parts:
            parts[0] = fs.namespace_target(fs.ds_dir(pds), parts[0])
        return f"/vmfs/volumes/{pds.volume_id}/{'/'.join(parts)}"

    def _resolve_hint(self, child: DatastorePath, hint: str) -> DatastorePath:
        if hint.startswith("/vmfs/volumes/"):
            volume, _, rest = hint[len("/vmfs/volumes/"):].partition("/")
            pds = self.fs.datastore_by_volume(volume)
            if pds is None:
                raise file_not_found(hint)
            return DatastorePath(pds.name, clean_path(rest, hint))
        if hint.startswith("["):
            return self.fs.parse(hint)
        joined = posixpath.normpath(posixpath.join(child.parent.path, hint))
        if joined.startswith(".."):
            raise file_not_found(hint)
        return DatastorePath(child.datastore, clean_path(joined, hint))


# -- the descriptor format ------------------------------------------------------------------------------------------
_EXTENT_RE = re.compile(r'^(RW|RDONLY|NOACCESS)\s+(\d+)\s+(.*)$')
_EXTENT_FILE_RE = re.compile(r'^\S+\s+"([^"]+)"')


def parse_descriptor(desc: Path, dspath) -> tuple[dict, dict, list[tuple[int, str]]]:
    """(header fields, ddb.* fields, extents as (sectors, file name)) of a descriptor; `not_a_disk` for anything
    else."""
    try:
        with open(desc, "rb") as handle:
            raw = handle.read(MAX_DESCRIPTOR)
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


# -- the data -------------------------------------------------------------------------------------------------------
def merge_layer(layer: Path, dst: Path):
    """Apply one overlay layer onto `dst`: whiteouts (0/0 char devices) delete, opaque folders replace, the rest is
    copied over."""
    for dirpath, dirnames, filenames in os.walk(layer):
        rel = os.path.relpath(dirpath, layer)
        target_dir = dst if rel == "." else dst / rel
        if rel != "." and _is_opaque(Path(dirpath)) and target_dir.is_dir():
            rmtree(target_dir)
        if not target_dir.is_dir():
            remove(target_dir)
            target_dir.mkdir(parents=True)
            shutil.copystat(dirpath, target_dir, follow_symlinks=False)
        for name in list(dirnames) + filenames:
            src = Path(dirpath) / name
            target = target_dir / name
            st = os.lstat(src)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                remove(target)  # whiteout
                continue
            if stat.S_ISDIR(st.st_mode):
                if os.path.lexists(target) and not target.is_dir():
                    remove(target)
                continue
            remove(target)
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


def make_ext4(path: Path, capacity_kb: int, label: str | None):
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


def ext4_label(path: str | Path) -> str | None:
    """The volume label in an ext4 image's superblock (what blkid reports), or None."""
    try:
        with open(path, "rb") as f:
            f.seek(1024)
            block = f.read(0x88)
    except OSError:
        return None
    if len(block) < 0x88 or block[0x38:0x3A] != b"\x53\xef":
        return None
    label = block[0x78:0x88].split(b"\0", 1)[0]
    return label.decode("utf-8", "replace") or None
