"""Datastore paths (`"[ds] dir/file"`), the file faults vCenter gives, and the file primitives (atomic write, sparse
copy, tree removal) that `datastore_fs.py` (files and folders) and `vmdk.py` (virtual disks) share.

Every fault is a pyVmomi fault worded as vCenter words it; host paths and Python names never reach a client.
"""
from __future__ import annotations

import errno
import logging
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pyVmomi import vim, vmodl

log = logging.getLogger("vsphere_sim.datastore_fs")

# Temp files (atomic writes, uploads in flight) carry this prefix; the datastore browser never lists them.
TMP_PREFIX = ".vsim-tmp-"


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


def clean_path(rest: str, text: str) -> str:
    """A datastore-relative path: leading/duplicate slashes and `.` dropped; `..` and NUL refused."""
    if "\x00" in rest:
        raise invalid_path(text)
    parts = [p for p in rest.strip().split("/") if p and p != "."]
    if any(p == ".." for p in parts):
        raise invalid_path(text)
    return "/".join(parts)


# -- faults ---------------------------------------------------------------------------------------------------------
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


# -- file primitives ------------------------------------------------------------------------------------------------
def _tmp_beside(path: Path) -> Path:
    return path.with_name(f"{TMP_PREFIX}{secrets.token_hex(6)}-{path.name}"[:255])


class AtomicWriter:
    """Writes to a temp file beside the target and renames it over the target on close."""

    def __init__(self, target: Path, dspath: DatastorePath):
        self.target = target
        self.dspath = dspath
        self.tmp = _tmp_beside(target)
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


def atomic_write(path: Path, data: bytes):
    """Write a whole file through a temp file renamed over it (raises OSError)."""
    tmp = _tmp_beside(path)
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError:
        remove(tmp)
        raise


def rmtree(path: Path):
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


def remove(path: Path):
    """Remove a file, a link or a folder tree, if there."""
    if os.path.lexists(path):
        rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def copyfile(src: Path, dst: Path):
    """Copy a file keeping holes (disk images are sparse)."""
    tmp = _tmp_beside(dst)
    try:
        if shutil.which("cp"):
            subprocess.run(["cp", "--sparse=always", "-p", "--", str(src), str(tmp)], check=True,
                           capture_output=True)
        else:
            shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    except subprocess.CalledProcessError as err:
        remove(tmp)
        raise OSError(errno.EIO, err.stderr.decode(errors="replace")) from None
    except OSError:
        remove(tmp)
        raise


def copytree(src: Path, dst: Path):
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


def is_within(path: Path, ancestor: Path) -> bool:
    """Whether `path` is `ancestor` or below it (as paths, no filesystem access)."""
    try:
        path.relative_to(ancestor)
        return True
    except ValueError:
        return False
