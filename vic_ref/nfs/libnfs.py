"""A ctypes binding of libnfs's synchronous API (Debian's libnfs 4.0.0, libnfs.so.13): an NFSv3 client in user space.

The kernel here has no NFS client, so volume stores on NFS go through this: `NfsClient.connect(url)` takes the URL form
VIC uses, `nfs://host[:port]/export/path?uid=0&gid=0&proto=tcp&port=2049`, and offers os-like calls on paths relative
to that directory. Failures are OSError with the errno the server gave (libnfs returns -errno) and the path.

libnfs keeps one connection per context and is not thread-safe, so every call holds the client's lock.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno as errno_codes
import os
import posixpath
import stat as stat_module
import threading
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

DEBIAN_PACKAGE = "libnfs13"
READ_CHUNK = 1 << 20
# libnfs 4.0 reports an RPC timeout as -EINTR ("Command timed out"; we never cancel calls) and an RPC-level
# failure (connection lost for good) as -EFAULT: say what they mean.
_LIBNFS_ERRNO_MEANING = {errno_codes.EINTR: errno_codes.ETIMEDOUT, errno_codes.EFAULT: errno_codes.EIO}


class NfsUnavailable(RuntimeError):
    """libnfs is not installed on this machine."""


# -- the C side ----------------------------------------------------------------------------------------------------
class _NfsUrl(ctypes.Structure):
    _fields_ = [("server", ctypes.c_char_p), ("path", ctypes.c_char_p), ("file", ctypes.c_char_p)]


class _NfsStat64(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "nfs_dev", "nfs_ino", "nfs_mode", "nfs_nlink", "nfs_uid", "nfs_gid", "nfs_rdev", "nfs_size", "nfs_blksize",
        "nfs_blocks", "nfs_atime", "nfs_mtime", "nfs_ctime", "nfs_atime_nsec", "nfs_mtime_nsec", "nfs_ctime_nsec",
        "nfs_used")]


class _NfsStatvfs64(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree", "f_favail", "f_fsid",
        "f_flag", "f_namemax")]


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _NfsDirent(ctypes.Structure):
    pass


_NfsDirent._fields_ = [
    ("next", ctypes.POINTER(_NfsDirent)), ("name", ctypes.c_char_p), ("inode", ctypes.c_uint64),
    ("type", ctypes.c_uint32), ("mode", ctypes.c_uint32), ("size", ctypes.c_uint64),
    ("atime", _Timeval), ("mtime", _Timeval), ("ctime", _Timeval),
    ("uid", ctypes.c_uint32), ("gid", ctypes.c_uint32), ("nlink", ctypes.c_uint32),
    ("dev", ctypes.c_uint64), ("rdev", ctypes.c_uint64), ("blksize", ctypes.c_uint64), ("blocks", ctypes.c_uint64),
    ("used", ctypes.c_uint64), ("atime_nsec", ctypes.c_uint32), ("mtime_nsec", ctypes.c_uint32),
    ("ctime_nsec", ctypes.c_uint32),
]

_ctx = ctypes.c_void_p
_str = ctypes.c_char_p
_int = ctypes.c_int
_u64 = ctypes.c_uint64
_SIGNATURES = {
    "nfs_init_context": (_ctx, []),
    "nfs_destroy_context": (None, [_ctx]),
    "nfs_get_error": (_str, [_ctx]),
    "nfs_parse_url_dir": (ctypes.POINTER(_NfsUrl), [_ctx, _str]),
    "nfs_destroy_url": (None, [ctypes.POINTER(_NfsUrl)]),
    "nfs_mount": (_int, [_ctx, _str, _str]),
    "nfs_set_timeout": (None, [_ctx, _int]),
    "nfs_set_dircache": (None, [_ctx, _int]),
    "nfs_set_autoreconnect": (None, [_ctx, _int]),
    "nfs_set_auth": (None, [_ctx, ctypes.c_void_p]),
    "libnfs_authunix_create": (ctypes.c_void_p,
                               [_str, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32,
                                ctypes.POINTER(ctypes.c_uint32)]),
    "nfs_umask": (ctypes.c_uint16, [_ctx, ctypes.c_uint16]),
    "nfs_get_readmax": (_u64, [_ctx]),
    "nfs_get_writemax": (_u64, [_ctx]),
    "nfs_stat64": (_int, [_ctx, _str, ctypes.POINTER(_NfsStat64)]),
    "nfs_lstat64": (_int, [_ctx, _str, ctypes.POINTER(_NfsStat64)]),
    "nfs_fstat64": (_int, [_ctx, ctypes.c_void_p, ctypes.POINTER(_NfsStat64)]),
    "nfs_open2": (_int, [_ctx, _str, _int, _int, ctypes.POINTER(ctypes.c_void_p)]),
    "nfs_close": (_int, [_ctx, ctypes.c_void_p]),
    # libnfs 4.x order: (offset, count, buf); libnfs 5+ moved buf before count.
    "nfs_pread": (_int, [_ctx, ctypes.c_void_p, _u64, _u64, ctypes.c_void_p]),
    "nfs_pwrite": (_int, [_ctx, ctypes.c_void_p, _u64, _u64, ctypes.c_void_p]),
    "nfs_fsync": (_int, [_ctx, ctypes.c_void_p]),
    "nfs_ftruncate": (_int, [_ctx, ctypes.c_void_p, _u64]),
    "nfs_truncate": (_int, [_ctx, _str, _u64]),
    "nfs_mkdir2": (_int, [_ctx, _str, _int]),
    "nfs_rmdir": (_int, [_ctx, _str]),
    "nfs_unlink": (_int, [_ctx, _str]),
    "nfs_opendir": (_int, [_ctx, _str, ctypes.POINTER(ctypes.c_void_p)]),
    "nfs_readdir": (ctypes.POINTER(_NfsDirent), [_ctx, ctypes.c_void_p]),
    "nfs_closedir": (None, [_ctx, ctypes.c_void_p]),
    "nfs_statvfs64": (_int, [_ctx, _str, ctypes.POINTER(_NfsStatvfs64)]),
    "nfs_readlink2": (_int, [_ctx, _str, ctypes.POINTER(ctypes.c_void_p)]),
    "nfs_chmod": (_int, [_ctx, _str, _int]),
    "nfs_lchmod": (_int, [_ctx, _str, _int]),
    "nfs_chown": (_int, [_ctx, _str, _int, _int]),
    "nfs_lchown": (_int, [_ctx, _str, _int, _int]),
    "nfs_utimes": (_int, [_ctx, _str, ctypes.POINTER(_Timeval)]),
    "nfs_lutimes": (_int, [_ctx, _str, ctypes.POINTER(_Timeval)]),
    "nfs_access": (_int, [_ctx, _str, _int]),
    "nfs_symlink": (_int, [_ctx, _str, _str]),
    "nfs_rename": (_int, [_ctx, _str, _str]),
    "nfs_link": (_int, [_ctx, _str, _str]),
}

_loaded: ctypes.CDLL | None = None
_load_lock = threading.Lock()


def load_library() -> ctypes.CDLL:
    """libnfs with its prototypes declared; loaded once per process (a shared library is process state anyway)."""
    global _loaded
    with _load_lock:
        if _loaded is None:
            name = ctypes.util.find_library("nfs") or "libnfs.so.13"
            try:
                lib = ctypes.CDLL(name, use_errno=True)
            except OSError as error:
                raise NfsUnavailable(f"libnfs is not installed ({error}); install the Debian package "
                                     f"{DEBIAN_PACKAGE} (`make install` does)") from None
            for function, (restype, argtypes) in _SIGNATURES.items():
                symbol = getattr(lib, function)
                symbol.restype, symbol.argtypes = restype, argtypes
            _libc = ctypes.CDLL(None)
            _libc.free.argtypes = [ctypes.c_void_p]
            lib.libc_free = _libc.free
            _loaded = lib
        return _loaded


# -- URLs ----------------------------------------------------------------------------------------------------------
def libnfs_url(url: str) -> str:
    """VIC's URL in the form libnfs 4.0 parses: it has no `host:port`, so a port there becomes `nfsport=`."""
    parts = urlsplit(url)
    if parts.scheme != "nfs" or not parts.hostname:
        raise ValueError(f"not an NFS URL (nfs://host/export/path?...): {url!r}")
    if parts.port is None:
        return url  # as given: libnfs reads its own arguments and ignores the rest (proto, port)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(key == "nfsport" for key, _ in query):
        query.append(("nfsport", str(parts.port)))
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"nfs://{host}{parts.path or '/'}" + (f"?{urlencode(query)}" if query else "")


def _join(base: str, path: str) -> str:
    """An export-relative absolute path for a path relative to the client's directory (".." can't climb out)."""
    path = os.fsdecode(path)
    clean = posixpath.normpath("/" + path.lstrip("/"))
    return posixpath.join(base, clean.lstrip("/")).rstrip("/") or "/"


# -- results -------------------------------------------------------------------------------------------------------
def _stat_result(st: _NfsStat64) -> os.stat_result:
    atime_ns = st.nfs_atime * 10**9 + st.nfs_atime_nsec
    mtime_ns = st.nfs_mtime * 10**9 + st.nfs_mtime_nsec
    ctime_ns = st.nfs_ctime * 10**9 + st.nfs_ctime_nsec
    return os.stat_result((
        st.nfs_mode, st.nfs_ino, st.nfs_dev, st.nfs_nlink, st.nfs_uid, st.nfs_gid, st.nfs_size,
        st.nfs_atime, st.nfs_mtime, st.nfs_ctime,
        atime_ns / 1e9, mtime_ns / 1e9, ctime_ns / 1e9, atime_ns, mtime_ns, ctime_ns,
        st.nfs_blksize, st.nfs_blocks, st.nfs_rdev,
    ))


class DirEntry(NamedTuple):
    name: str
    inode: int
    mode: int  # with the file type bits
    size: int
    uid: int
    gid: int


class NfsFile:
    """An open NFS file: positional reads and writes, no file position (FUSE and callers give offsets)."""

    def __init__(self, client: NfsClient, handle: ctypes.c_void_p, path: str):
        self._client = client
        self._handle = handle
        self.path = path

    @property
    def closed(self) -> bool:
        return self._handle is None

    def _live_handle(self) -> ctypes.c_void_p:
        if self._handle is None:
            raise OSError(errno_codes.EBADF, "NFS file is closed", self.path)
        return self._handle

    def pread(self, size: int, offset: int) -> bytes:
        buffer = ctypes.create_string_buffer(size)
        got = self._client._call("nfs_pread", self.path, self._live_handle(), offset, size, buffer)
        return buffer.raw[:got]

    def pwrite(self, data: bytes, offset: int) -> int:
        data = bytes(data)
        return self._client._call("nfs_pwrite", self.path, self._live_handle(), offset, len(data), data)

    def fstat(self) -> os.stat_result:
        st = _NfsStat64()
        self._client._call("nfs_fstat64", self.path, self._live_handle(), ctypes.byref(st))
        return _stat_result(st)

    def fsync(self) -> None:
        self._client._call("nfs_fsync", self.path, self._live_handle())

    def ftruncate(self, length: int) -> None:
        self._client._call("nfs_ftruncate", self.path, self._live_handle(), length)

    def close(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            self._client._call("nfs_close", self.path, handle)

    def __enter__(self) -> NfsFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class NfsClient:
    """One NFSv3 connection to one directory of an export. Paths are relative to that directory."""

    def __init__(self, lib: ctypes.CDLL, context: int, url: str, server: str, export: str, base: str):
        self._lib = lib
        self._context = context
        self._lock = threading.RLock()
        self._credentials: tuple[int, int, tuple[int, ...]] | None = None
        self.url = url
        self.server = server
        self.export = export  # what the server's MOUNT protocol accepted
        self.base = base  # the URL's directory, relative to the export root

    @classmethod
    def connect(cls, url: str, timeout: float | None = 30.0, dircache: bool = False) -> NfsClient:
        """Connect and mount. `timeout` bounds each call (libnfs's default is to wait for ever; whole seconds).
        libnfs's directory cache is off by default: other clients (containers, the appliance) change the same tree.
        URL arguments (uid, gid, dircache, autoreconnect, nfsport, mountport, ...) win over these defaults."""
        lib = load_library()
        context = lib.nfs_init_context()
        if not context:
            raise OSError(errno_codes.ENOMEM, "nfs_init_context failed", url)
        try:
            lib.nfs_set_dircache(context, int(dircache))
            if timeout is not None:
                lib.nfs_set_timeout(context, max(1, round(timeout)) * 1000)
            # Modes reach the server as given: callers (and FUSE, which has applied the process's umask) mean them.
            lib.nfs_umask(context, 0)
            parsed = lib.nfs_parse_url_dir(context, libnfs_url(url).encode())
            if not parsed:
                raise ValueError(f"bad NFS URL {url!r}: {_error_text(lib, context)}")
            try:
                server = (parsed.contents.server or b"").decode()
                path = (parsed.contents.path or b"/").decode()
            finally:
                lib.nfs_destroy_url(parsed)
            if not server:
                raise ValueError(f"NFS URL has no server: {url!r}")
            export, base = cls._mount(lib, context, server, posixpath.normpath(path), url)
            client = cls(lib, context, url, server, export, base)
        except BaseException:
            lib.nfs_destroy_context(context)
            raise
        try:
            if not stat_module.S_ISDIR(client.stat("").st_mode):
                raise OSError(errno_codes.ENOTDIR, os.strerror(errno_codes.ENOTDIR), url)
        except OSError as error:
            client.close()
            raise OSError(error.errno, error.strerror, url) from None
        except BaseException:
            client.close()
            raise
        return client

    @staticmethod
    def _mount(lib: ctypes.CDLL, context: int, server: str, path: str, url: str) -> tuple[str, str]:
        """Mount `path`, or, when the server exports only a parent of it, that parent (then the rest is a
        directory inside). Returns (export, base directory inside it)."""
        candidate, rest = path, ""
        first_error: OSError | None = None
        while True:
            result = lib.nfs_mount(context, server.encode(), candidate.encode())
            if result == 0:
                return candidate, "/" + rest if rest else "/"
            code = -result if result < 0 else errno_codes.EIO
            error = OSError(code, f"{os.strerror(code)} (mounting {server}:{candidate}: "
                                  f"{_error_text(lib, context)})", url)
            first_error = first_error or error
            # Only "no such export" is worth climbing for; a dead server or a refused connection is final.
            if code not in (errno_codes.ENOENT, errno_codes.EACCES, errno_codes.EPERM, errno_codes.EINVAL) \
                    or candidate == "/":
                raise first_error
            candidate, leaf = posixpath.split(candidate)
            rest = posixpath.join(leaf, rest) if rest else leaf

    # -- plumbing ---------------------------------------------------------------------------------------------------
    def _path(self, path: str | bytes) -> str:
        return _join(self.base, path)

    def _call(self, function: str, path: str, *args) -> int:
        with self._lock:
            if self._context is None:
                raise OSError(errno_codes.EBADF, "NFS client is closed", path)
            result = getattr(self._lib, function)(self._context, *args)
            if result < 0:
                code = _LIBNFS_ERRNO_MEANING.get(-result, -result)
                raise OSError(code, f"{os.strerror(code)} ({_error_text(self._lib, self._context)})", path)
            return result

    def set_credentials(self, uid: int, gid: int, groups: tuple[int, ...] = ()) -> None:
        """AUTH_SYS credentials for the following calls (the server checks permissions with these)."""
        wanted = (uid, gid, tuple(groups))
        with self._lock:
            if wanted == self._credentials:
                return
            group_array = (ctypes.c_uint32 * max(1, len(groups)))(*groups)
            auth = self._lib.libnfs_authunix_create(b"libnfs", uid & 0xFFFFFFFF, gid & 0xFFFFFFFF, len(groups),
                                                    group_array)
            if not auth:
                raise OSError(errno_codes.ENOMEM, "libnfs_authunix_create failed")
            self._lib.nfs_set_auth(self._context, auth)  # frees the previous one
            self._credentials = wanted

    @property
    def readmax(self) -> int:
        with self._lock:
            return self._lib.nfs_get_readmax(self._context)

    @property
    def writemax(self) -> int:
        with self._lock:
            return self._lib.nfs_get_writemax(self._context)

    def close(self) -> None:
        with self._lock:
            if self._context is not None:
                context, self._context = self._context, None
                self._lib.nfs_destroy_context(context)

    def __enter__(self) -> NfsClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_context", None) is not None:
            self.close()

    # -- metadata ---------------------------------------------------------------------------------------------------
    def stat(self, path: str) -> os.stat_result:
        st = _NfsStat64()
        self._call("nfs_stat64", path, self._path(path).encode(), ctypes.byref(st))
        return _stat_result(st)

    def lstat(self, path: str) -> os.stat_result:
        st = _NfsStat64()
        self._call("nfs_lstat64", path, self._path(path).encode(), ctypes.byref(st))
        return _stat_result(st)

    def exists(self, path: str) -> bool:
        try:
            self.lstat(path)
        except FileNotFoundError:
            return False
        return True

    def access(self, path: str, mode: int) -> None:
        """Raise PermissionError unless the current credentials may `mode` (os.R_OK | os.W_OK | os.X_OK, or
        os.F_OK) the path: the server's ACCESS answer."""
        self._call("nfs_access", path, self._path(path).encode(), mode)

    def scandir(self, path: str = "") -> list[DirEntry]:
        """The entries of a directory but "." and "..", with what READDIRPLUS gave for each."""
        entries = []
        handle = ctypes.c_void_p()
        with self._lock:
            self._call("nfs_opendir", path, self._path(path).encode(), ctypes.byref(handle))
            try:
                while entry := self._lib.nfs_readdir(self._context, handle):
                    found = entry.contents
                    name = os.fsdecode(found.name)
                    if name not in (".", ".."):
                        entries.append(DirEntry(name, found.inode, found.mode, found.size, found.uid, found.gid))
            finally:
                self._lib.nfs_closedir(self._context, handle)
        return entries

    def listdir(self, path: str = "") -> list[str]:
        return [entry.name for entry in self.scandir(path)]

    def statvfs(self, path: str = "") -> os.statvfs_result:
        st = _NfsStatvfs64()
        self._call("nfs_statvfs64", path, self._path(path).encode(), ctypes.byref(st))
        return os.statvfs_result((st.f_bsize, st.f_frsize, st.f_blocks, st.f_bfree, st.f_bavail, st.f_files,
                                  st.f_ffree, st.f_favail, st.f_flag, st.f_namemax, st.f_fsid))

    def chmod(self, path: str, mode: int, follow_symlinks: bool = True) -> None:
        self._call("nfs_chmod" if follow_symlinks else "nfs_lchmod", path, self._path(path).encode(), mode)

    def chown(self, path: str, uid: int, gid: int, follow_symlinks: bool = True) -> None:
        """-1 leaves that id as it is."""
        self._call("nfs_chown" if follow_symlinks else "nfs_lchown", path, self._path(path).encode(), uid, gid)

    def utimes(self, path: str, times: tuple[float, float] | None = None, *,
               ns: tuple[int, int] | None = None, follow_symlinks: bool = True) -> None:
        """Like os.utime: (atime, mtime) in seconds, or ns=(atime_ns, mtime_ns), or neither for now.
        NFSv3 through libnfs carries microseconds."""
        function = "nfs_utimes" if follow_symlinks else "nfs_lutimes"
        if times is None and ns is None:
            self._call(function, path, self._path(path).encode(), None)
            return
        if ns is None:
            ns = (round(times[0] * 1e9), round(times[1] * 1e9))
        values = (_Timeval * 2)(*(_Timeval(value // 10**9, (value % 10**9) // 1000) for value in ns))
        self._call(function, path, self._path(path).encode(), values)

    def truncate(self, path: str, length: int) -> None:
        self._call("nfs_truncate", path, self._path(path).encode(), length)

    # -- names ------------------------------------------------------------------------------------------------------
    def mkdir(self, path: str, mode: int = 0o777) -> None:
        self._call("nfs_mkdir2", path, self._path(path).encode(), mode)

    def makedirs(self, path: str, mode: int = 0o777, exist_ok: bool = True) -> None:
        clean = self._path(path)[len(self.base):].strip("/")
        if not clean:
            if not exist_ok:
                raise FileExistsError(errno_codes.EEXIST, os.strerror(errno_codes.EEXIST), path)
            return
        current = ""
        parts = clean.split("/")
        for index, part in enumerate(parts):
            current = f"{current}/{part}"
            try:
                self.mkdir(current, mode)
            except FileExistsError:
                if index == len(parts) - 1 and not exist_ok:
                    raise
                if not stat_module.S_ISDIR(self.stat(current).st_mode):
                    raise NotADirectoryError(errno_codes.ENOTDIR, os.strerror(errno_codes.ENOTDIR), current)

    def rmdir(self, path: str) -> None:
        self._call("nfs_rmdir", path, self._path(path).encode())

    def unlink(self, path: str) -> None:
        self._call("nfs_unlink", path, self._path(path).encode())

    def rename(self, old: str, new: str) -> None:
        self._call("nfs_rename", f"{old} -> {new}", self._path(old).encode(), self._path(new).encode())

    def symlink(self, target: str, linkname: str) -> None:
        """linkname -> target (target is stored as given, like os.symlink)."""
        self._call("nfs_symlink", linkname, os.fsencode(target), self._path(linkname).encode())

    def readlink(self, path: str) -> str:
        pointer = ctypes.c_void_p()
        self._call("nfs_readlink2", path, self._path(path).encode(), ctypes.byref(pointer))
        try:
            return os.fsdecode(ctypes.string_at(pointer.value))
        finally:
            self._lib.libc_free(pointer)

    def link(self, existing: str, new: str) -> None:
        self._call("nfs_link", f"{existing} -> {new}", self._path(existing).encode(), self._path(new).encode())

    def remove_tree(self, path: str) -> None:
        """Remove path and everything under it; a missing path is fine (Go's os.RemoveAll)."""
        try:
            info = self.lstat(path)
        except FileNotFoundError:
            return
        if stat_module.S_ISDIR(info.st_mode):
            for name in self.listdir(path):
                self.remove_tree(posixpath.join(os.fsdecode(path), name))
            try:
                self.rmdir(path)
            except FileNotFoundError:
                pass
        else:
            try:
                self.unlink(path)
            except FileNotFoundError:
                pass

    # -- contents ---------------------------------------------------------------------------------------------------
    def open(self, path: str, flags: int = os.O_RDONLY, mode: int = 0o666) -> NfsFile:
        """flags as for os.open (O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_NOFOLLOW, O_SYNC and the access mode)."""
        handle = ctypes.c_void_p()
        self._call("nfs_open2", path, self._path(path).encode(), flags, mode, ctypes.byref(handle))
        return NfsFile(self, handle, os.fsdecode(path))

    def read_bytes(self, path: str) -> bytes:
        chunks = []
        with self.open(path) as handle:
            offset = 0
            while chunk := handle.pread(READ_CHUNK, offset):
                chunks.append(chunk)
                offset += len(chunk)
        return b"".join(chunks)

    def write_bytes(self, path: str, data: bytes, mode: int = 0o644) -> None:
        with self.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode) as handle:
            offset = 0
            view = memoryview(data)
            while offset < len(data):
                offset += handle.pwrite(view[offset:offset + READ_CHUNK], offset)


def _error_text(lib: ctypes.CDLL, context: int) -> str:
    text = lib.nfs_get_error(context)
    return text.decode(errors="replace") if text else "no detail from libnfs"
