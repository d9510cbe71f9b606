"""Docker layer tars ↔ a layer disk's directory tree (what VIC's lib/archive does on a mounted ext4 disk).

`unpack(src, root)` applies one layer tar into the (empty) data directory of its own child disk:
- Docker whiteouts become overlayfs whiteouts, because the tether stacks the disk chain as an overlay: `.wh.<name>` is
  a 0/0 character device `<name>`, `.wh..wh..opq` an opaque directory (xattr `trusted.overlay.opaque=y`, or
  `user.overlay.opaque=y` where trusted xattrs can't be set); other `.wh..wh.*` (aufs metadata) are skipped.
- Nothing is written outside `root`: names with `..` that leave it, hardlinks and symlinks pointing out of it (as
  Docker's breakout checks), and writes through a symlink inside the layer are refused (`BreakoutError`).
- Ownership, modes, times, devices and xattrs are kept as far as the process may (root keeps them all).

It also records the tar's own bytes apart from the file contents (a "tar-split", as Docker's layer store keeps), so
`export(tarsplit, root)` gives back the very same tar, byte for byte: its sha256 is the layer's diff ID again, which
`docker load` checks. `pack(root, out)` writes a Docker-format tar of a tree when there is no tar-split.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ... import errors

BLOCK = 512
CHUNK = 1024 * 1024
WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_META = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
         tarfile.GNUTYPE_LONGLINK)
_HEADER_ONLY = (tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE)
TARSPLIT_VERSION = 1


class BreakoutError(errors.InvalidArgument):
    """A layer entry that would write outside the layer's directory."""


class LayerFormatError(errors.InvalidArgument):
    """Not a tar we can apply (truncated, bad header, GNU sparse files)."""


@dataclass
class UnpackResult:
    diff_id: str  # sha256 of the whole tar stream, as read
    size: int  # bytes of file content (Docker's layer size)
    tar_size: int  # bytes of the tar stream
    tarsplit: bytes  # gzipped JSON lines: the tar without file contents, to rebuild it by `export`


class _Source:
    """The tar stream: exact reads, hashed and counted as they pass."""

    def __init__(self, src: BinaryIO):
        self.src = src
        self.hasher = hashlib.sha256()
        self.count = 0

    def read(self, n: int) -> bytes:
        parts, left = [], n
        while left > 0:
            block = self.src.read(left)
            if not block:
                break
            parts.append(block)
            left -= len(block)
        data = b"".join(parts)
        self.hasher.update(data)
        self.count += len(data)
        return data

    def exact(self, n: int) -> bytes:
        data = self.read(n)
        if len(data) != n:
            raise LayerFormatError("unexpected EOF in layer tar")
        return data

    def drain(self) -> bytes:
        parts = []
        while True:
            block = self.read(CHUNK)
            if not block:
                return b"".join(parts)
            parts.append(block)


class _Split:
    """The tar-split being recorded: raw bytes, and references to file contents kept in the tree."""

    def __init__(self):
        self.segments: list[dict] = []
        self.raw = bytearray()
        self.files: dict[str, int] = {}  # path -> index of its (last) payload segment

    def add_raw(self, data: bytes) -> None:
        self.raw += data

    def flush(self) -> None:
        if self.raw:
            self.segments.append({"r": base64.b64encode(bytes(self.raw)).decode()})
            self.raw = bytearray()

    def add_file(self, rel: str, size: int) -> None:
        self.flush()
        self.files[rel] = len(self.segments)
        self.segments.append({"f": rel, "n": size})

    def inline(self, rel: str, data: bytes) -> None:
        """A payload about to be overwritten by a later entry of the same tar: keep its bytes in the split."""
        index = self.files.pop(rel, None)
        if index is not None:
            self.segments[index] = {"r": base64.b64encode(data).decode()}

    def encode(self) -> bytes:
        self.flush()
        lines = [json.dumps({"v": TARSPLIT_VERSION})] + [json.dumps(s, separators=(",", ":")) for s in self.segments]
        return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


def _parse_pax(data: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    pos = 0
    while pos < len(data) and data[pos:pos + 1] != b"\0":
        space = data.find(b" ", pos)
        if space == -1:
            raise LayerFormatError("invalid PAX header")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise LayerFormatError("invalid PAX header") from None
        record = data[space + 1:pos + length]
        if length <= 0 or not record.endswith(b"\n") or b"=" not in record:
            raise LayerFormatError("invalid PAX header")
        key, _, value = record[:-1].partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value
        pos += length
    return out


def _padded(size: int) -> int:
    return (size + BLOCK - 1) // BLOCK * BLOCK


def clean_name(name: str) -> str:
    """The entry's path relative to the root ("" for the root); BreakoutError if it leaves the root."""
    cleaned = posixpath.normpath("/" + name) if name.startswith("/") else posixpath.normpath(name)
    cleaned = cleaned.lstrip("/")
    if cleaned in ("", "."):
        return ""
    if cleaned == ".." or cleaned.startswith("../"):
        raise BreakoutError(f"{name!r} is outside of the layer")
    return cleaned


class _Applier:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.as_root = os.geteuid() == 0
        self.dirs: list[tuple[str, tarfile.TarInfo, dict]] = []
        self.size = 0

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def ensure_parent(self, rel: str) -> str:
        """Make the entry's parent directories (0755) inside the root, never through a symlink; its parent path."""
        parent = posixpath.dirname(rel)
        current = self.root
        for part in parent.split("/") if parent else []:
            current = os.path.join(current, part)
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                os.mkdir(current, 0o755)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise BreakoutError(f"{rel!r}: its parent {part!r} is a symlink in the same layer")
            if not stat.S_ISDIR(st.st_mode):
                raise LayerFormatError(f"{rel!r}: its parent {part!r} is not a directory")
        return current

    def clear(self, path: str, keep_dir: bool) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if not keep_dir:
                shutil.rmtree(path)
        else:
            os.unlink(path)

    def owner_mode_times(self, path: str, info: tarfile.TarInfo, xattrs: dict, *, link: bool = False,
                         fd: int | None = None) -> None:
        if self.as_root:
            try:
                if fd is not None:
                    os.fchown(fd, info.uid, info.gid)
                else:
                    os.chown(path, info.uid, info.gid, follow_symlinks=False)
            except OSError:
                pass
        if not link:
            if fd is not None:
                os.fchmod(fd, info.mode & 0o7777)
            else:
                os.chmod(path, info.mode & 0o7777)
        for name, value in xattrs.items():
            try:
                if fd is not None:
                    os.setxattr(fd, name, value)
                else:
                    os.setxattr(path, name, value, follow_symlinks=False)
            except OSError:
                pass  # unsupported or not permitted here, as dockerd ignores ENOTSUP/EPERM for xattrs
        mtime_ns = int(info.mtime * 1_000_000_000)
        try:
            if fd is not None:
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            else:
                os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
        except OSError:
            pass

    def whiteout(self, rel: str, info: tarfile.TarInfo) -> None:
        base = posixpath.basename(rel)
        parent = self.ensure_parent(rel)
        if base == WHITEOUT_OPAQUE:
            set_opaque(parent)
            return
        target = os.path.join(parent, base[len(WHITEOUT_PREFIX):])
        self.clear(target, keep_dir=False)
        os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        if self.as_root:
            os.chown(target, info.uid, info.gid, follow_symlinks=False)

    def finish(self) -> None:
        # directory modes and times last: creating their children changed them
        for path, info, xattrs in reversed(self.dirs):
            self.owner_mode_times(path, info, xattrs)


def set_opaque(path: str) -> None:
    """Mark a directory opaque for overlayfs (trusted.*, else user.* where trusted xattrs are not permitted)."""
    last: OSError | None = None
    for name in OPAQUE_XATTRS:
        try:
            os.setxattr(path, name, b"y", follow_symlinks=False)
            return
        except OSError as err:
            last = err
    raise errors.InternalError(f"cannot mark {path} opaque: {last}")


def is_opaque(path: str) -> bool:
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def unpack(src: BinaryIO, root: str, *, check: Callable[[], None] | None = None) -> UnpackResult:
    """Apply the (uncompressed) layer tar `src` into `root`; see the module docstring."""
    source = _Source(src)
    split = _Split()
    applier = _Applier(root)
    global_pax: dict[str, bytes] = {}
    pending_pax: dict[str, bytes] = {}
    long_name: str | None = None
    long_link: str | None = None
    while True:
        if check is not None:
            check()
        block = source.read(BLOCK)
        if not block:
            break  # EOF without end-of-archive blocks: Go's archive/tar accepts it
        if len(block) < BLOCK:
            raise LayerFormatError("unexpected EOF in layer tar")
        split.add_raw(block)
        if block == b"\0" * BLOCK:
            split.add_raw(source.drain())  # end of archive: the second zero block and any padding
            break
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as err:
            raise LayerFormatError(f"archive/tar: invalid tar header: {err}") from err
        if info.type in _META:
            data = source.exact(_padded(info.size))
            split.add_raw(data)
            body = data[:info.size]
            if info.type in (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE):
                pending_pax.update(_parse_pax(body))
            elif info.type == tarfile.XGLTYPE:
                global_pax.update(_parse_pax(body))
            elif info.type == tarfile.GNUTYPE_LONGNAME:
                long_name = body.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            else:
                long_link = body.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            continue
        if info.type == tarfile.GNUTYPE_SPARSE:
            raise LayerFormatError("GNU sparse files are not supported in layers")
        pax = {**global_pax, **pending_pax}
        name = pax["path"].decode("utf-8", "surrogateescape") if "path" in pax else (long_name or info.name)
        linkname = pax["linkpath"].decode("utf-8", "surrogateescape") if "linkpath" in pax \
            else (long_link or info.linkname)
        for key, attr in (("size", "size"), ("uid", "uid"), ("gid", "gid")):
            if key in pax:
                setattr(info, attr, int(pax[key]))
        if "mtime" in pax:
            info.mtime = float(pax["mtime"])
        xattrs = {k[len("SCHILY.xattr."):]: v for k, v in pax.items() if k.startswith("SCHILY.xattr.")}
        pending_pax, long_name, long_link = {}, None, None
        _apply_entry(applier, split, source, info, name, linkname, xattrs)
    applier.finish()
    return UnpackResult("sha256:" + source.hasher.hexdigest(), applier.size, source.count, split.encode())


def _apply_entry(applier: _Applier, split: _Split, source: _Source, info: tarfile.TarInfo, name: str,
                 linkname: str, xattrs: dict) -> None:
    rel = clean_name(name)
    base = posixpath.basename(rel)
    regular = info.type in _REGULAR
    # archive/tar: header-only types carry no data whatever their size field says
    payload = 0 if info.type in _HEADER_ONLY else info.size

    def skip_payload() -> None:
        if payload:
            split.add_raw(source.exact(_padded(payload)))

    if not rel:  # the root itself: its metadata only
        if info.type == tarfile.DIRTYPE:
            applier.dirs.append((applier.root, info, xattrs))
        skip_payload()
        return
    if base.startswith(WHITEOUT_META_PREFIX) and base != WHITEOUT_OPAQUE or \
            rel.split("/", 1)[0].startswith(WHITEOUT_META_PREFIX):
        skip_payload()  # aufs metadata (.wh..wh.plnk and friends)
        return
    if base.startswith(WHITEOUT_PREFIX):
        applier.whiteout(rel, info)
        skip_payload()
        return
    parent = applier.ensure_parent(rel)
    path = os.path.join(parent, base)
    is_dir = info.type == tarfile.DIRTYPE
    if regular and rel in split.files:
        # the same path twice in one tar: keep the earlier content in the split before it is overwritten
        try:
            with open(path, "rb") as old:
                split.inline(rel, old.read())
        except OSError:
            pass
    applier.clear(path, keep_dir=is_dir)
    if is_dir:
        if not os.path.isdir(path):
            os.mkdir(path, 0o700)
        applier.dirs.append((path, info, xattrs))
        skip_payload()
    elif regular:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            left = info.size
            while left > 0:
                chunk = source.exact(min(CHUNK, left))
                _write_all(fd, chunk)
                left -= len(chunk)
            applier.owner_mode_times(path, info, xattrs, fd=fd)
        finally:
            os.close(fd)
        applier.size += info.size
        split.add_file(rel, info.size)
        padding = _padded(info.size) - info.size
        if padding:
            split.add_raw(source.exact(padding))
    elif info.type == tarfile.SYMTYPE:
        # as Go's filepath.Join (an absolute target stays under the layer: it resolves in the container's root)
        target = os.path.normpath(os.path.dirname(path) + "/" + linkname)
        if not (target == applier.root or target.startswith(applier.root + os.sep)):
            raise BreakoutError(f"invalid symlink {path!r} -> {linkname!r}")
        os.symlink(linkname, path)
        applier.owner_mode_times(path, info, xattrs, link=True)
        skip_payload()
    elif info.type == tarfile.LNKTYPE:
        target_rel = clean_name(linkname)
        if not target_rel:
            raise BreakoutError(f"invalid hardlink {name!r} -> {linkname!r}")
        target = applier.path(target_rel)
        if not os.path.lexists(target):
            raise LayerFormatError(f"invalid hardlink {name!r} -> {linkname!r}: no such file in the layer")
        os.link(target, path, follow_symlinks=False)
        skip_payload()
    elif info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE):
        kind = {tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK, tarfile.FIFOTYPE: stat.S_IFIFO}
        try:
            os.mknod(path, kind[info.type] | (info.mode & 0o7777),
                     os.makedev(info.devmajor, info.devminor) if info.type != tarfile.FIFOTYPE else 0)
        except PermissionError:
            skip_payload()  # devices need root; dockerd in a user namespace skips them the same way
            return
        applier.owner_mode_times(path, info, xattrs)
        skip_payload()
    else:
        skip_payload()  # unknown types are ignored, as archive/tar's users do


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# -- back to a tar -----------------------------------------------------------------------------------------------
def export(tarsplit: bytes, root: str) -> Iterator[bytes]:
    """The layer's original tar: the split's raw bytes, with file contents read from `root`."""
    lines = gzip.decompress(tarsplit).decode().splitlines()
    header = json.loads(lines[0]) if lines else {}
    if header.get("v") != TARSPLIT_VERSION:
        raise errors.InternalError(f"unknown tar-split version {header.get('v')!r}")
    root = os.path.abspath(root)
    for line in lines[1:]:
        segment = json.loads(line)
        if "r" in segment:
            yield base64.b64decode(segment["r"])
            continue
        rel, size = segment["f"], int(segment["n"])
        path = os.path.join(root, rel)
        left = size
        with open(path, "rb") as handle:
            while left > 0:
                chunk = handle.read(min(CHUNK, left))
                if not chunk:
                    raise errors.InternalError(f"layer file {rel} is shorter than when it was written")
                left -= len(chunk)
                yield chunk


def pack(root: str, out: BinaryIO) -> None:
    """A Docker-format layer tar of a tree (overlay whiteouts back to `.wh.` files), for layers without a
    tar-split; the bytes differ from the original tar, so the diff ID does too."""
    root = os.path.abspath(root)
    links: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, root)
            rel_dir = "" if rel_dir == "." else rel_dir
            if rel_dir and is_opaque(dirpath):
                marker = tarfile.TarInfo(posixpath.join(rel_dir, WHITEOUT_OPAQUE))
                marker.mtime = 0
                tar.addfile(marker)
            for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]) + \
                    sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))):
                path = os.path.join(dirpath, name)
                rel = posixpath.join(rel_dir, name) if rel_dir else name
                st = os.lstat(path)
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    info = tarfile.TarInfo(posixpath.join(rel_dir, WHITEOUT_PREFIX + name) if rel_dir
                                           else WHITEOUT_PREFIX + name)
                    info.mtime, info.uid, info.gid = int(st.st_mtime), st.st_uid, st.st_gid
                    tar.addfile(info)
                    continue
                info = tar.gettarinfo(path, rel)
                info.uname = info.gname = ""
                if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                    key = (st.st_dev, st.st_ino)
                    if key in links:
                        info.type, info.linkname, info.size = tarfile.LNKTYPE, links[key], 0
                        tar.addfile(info)
                        continue
                    links[key] = rel
                if stat.S_ISREG(st.st_mode):
                    with open(path, "rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)


def tree_size(root: str) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


__all__ = ["unpack", "export", "pack", "UnpackResult", "BreakoutError", "LayerFormatError", "clean_name",
           "set_opaque", "is_opaque", "tree_size"]
