"""Mount one NFS directory through FUSE, read-write, served by libnfs (the kernel here has no NFS client).

    python -m vic_ref.nfs.fuse_mount <nfs-url> <mountpoint> [--ro] [--ready-fd N] [--url-credentials]

It connects first (so an unreachable server or a missing path is a one-line error on stderr and exit status 1, with
nothing mounted), then mounts in the foreground, single-threaded, `allow_other,noatime`, and writes one byte to the
ready fd once the kernel has the mount. SIGTERM (libfuse's own handler) unmounts and exits.

Permissions are the server's to decide, as with a kernel NFS mount: there is no `default_permissions`, and each
request reaches the server with the calling process's uid, gid and supplementary groups (AUTH_SYS). With
`--url-credentials` every request uses the URL's uid/gid instead.

Callers use `start_mount(url, mountpoint)` and `stop_mount(proc, mountpoint)`.
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import errno
import functools
import logging
import os
import select
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

from vic_ref.nfs.libnfs import NfsClient, NfsFile, NfsUnavailable

UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
RENAME_NOREPLACE = 1
# open(2) flags the server should see; creation flags are the kernel's business before open, and O_APPEND is
# resolved by the kernel into write offsets.
OPEN_FLAGS_PASSED = os.O_ACCMODE | os.O_TRUNC | os.O_SYNC | os.O_DSYNC
MNT_DETACH = 2

log = logging.getLogger("vic_ref.nfs.fuse_mount")


class NfsMountError(RuntimeError):
    """The FUSE mount did not come up; the message is the child's own error line."""


def _import_mfusepy():
    # mfusepy prefers libfuse2 when both are installed; we are written against libfuse3 (renameat2 flags,
    # UTIME_OMIT passed through, Debian's fuse3 package).
    if "FUSE_LIBRARY_PATH" not in os.environ:
        os.environ["FUSE_LIBRARY_PATH"] = ctypes.util.find_library("fuse3") or "libfuse3.so.3"
    try:
        import mfusepy
    except OSError as error:  # mfusepy loads libfuse at import time
        raise NfsMountError(f"libfuse3 is not installed ({error}); install the Debian package fuse3") from None
    return mfusepy


def _groups_of(pid: int) -> tuple[int, ...]:
    """Supplementary groups of the calling process: FUSE passes only uid, gid and pid."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("Groups:"):
                    return tuple(int(group) for group in line.split()[1:])[:16]  # AUTH_SYS carries 16
    except (OSError, ValueError):
        pass
    return ()


def nfs_operation(method: Callable) -> Callable:
    """Run as the caller (unless the mount uses the URL's credentials) and hand errors to FUSE as errno values."""
    @functools.wraps(method)
    def wrapper(self: NfsFilesystem, *args):
        if self.caller_credentials:
            uid, gid, pid = self._fuse.fuse_get_context()
            self.client.set_credentials(uid, gid, _groups_of(pid) if pid else ())
        try:
            return method(self, *args)
        except OSError as error:
            if not isinstance(error, self._fuse.FuseOSError):
                log.debug("%s%r: %s", method.__name__, args[:2], error)
            raise self._fuse.FuseOSError(error.errno or errno.EIO) from None
    return wrapper


def writer(method: Callable) -> Callable:
    """Refused on a read-only mount (the kernel's `ro` refuses most before they get here)."""
    @functools.wraps(method)
    def wrapper(self: NfsFilesystem, *args):
        if self.readonly:
            raise self._fuse.FuseOSError(errno.EROFS)
        return method(self, *args)
    return wrapper


class NfsFilesystem:
    """mfusepy operations over one NfsClient. Paths from FUSE are relative to the mounted directory."""

    use_ns = True  # times in integer nanoseconds

    def __init__(self, client: NfsClient, readonly: bool = False, caller_credentials: bool = True,
                 on_mounted: Callable[[], None] | None = None):
        self._fuse = _import_mfusepy()
        self.client = client
        self.readonly = readonly
        self.caller_credentials = caller_credentials
        self.on_mounted = on_mounted
        self._files: dict[int, NfsFile] = {}
        self._written: set[int] = set()
        self._next_handle = 1
        self.mounted = False

    def _add(self, handle: NfsFile) -> int:
        number = self._next_handle
        self._next_handle += 1
        self._files[number] = handle
        return number

    def _file(self, fh: int) -> NfsFile:
        try:
            return self._files[fh]
        except KeyError:
            raise OSError(errno.EBADF, "unknown file handle") from None

    # -- life cycle -------------------------------------------------------------------------------------------------
    def init(self, path: str) -> None:
        # The kernel sends INIT once the mount exists; requests wait for our answer, so "ready" is true already.
        self.mounted = True
        if self.on_mounted is not None:
            self.on_mounted()

    def destroy(self, path: str) -> None:
        for handle in self._files.values():
            try:
                handle.close()
            except OSError:
                pass
        self._files.clear()
        self.client.close()

    # -- attributes -------------------------------------------------------------------------------------------------
    @nfs_operation
    def getattr(self, path: str, fh: int | None = None) -> dict:
        info = self.client.lstat(path)
        return {
            "st_mode": info.st_mode, "st_ino": info.st_ino, "st_nlink": info.st_nlink, "st_uid": info.st_uid,
            "st_gid": info.st_gid, "st_size": info.st_size, "st_atime": info.st_atime_ns,
            "st_mtime": info.st_mtime_ns, "st_ctime": info.st_ctime_ns, "st_blksize": info.st_blksize,
            "st_blocks": info.st_blocks, "st_rdev": info.st_rdev,
        }

    @nfs_operation
    def access(self, path: str, mode: int) -> int:
        if self.readonly and mode & os.W_OK:
            raise OSError(errno.EROFS, "read-only mount")
        self.client.access(path, mode)
        return 0

    @nfs_operation
    @writer
    def chmod(self, path: str, mode: int) -> int:
        self.client.chmod(path, mode & 0o7777)
        return 0

    @nfs_operation
    @writer
    def chown(self, path: str, uid: int, gid: int) -> int:
        self.client.chown(path, uid, gid, follow_symlinks=False)
        return 0

    @nfs_operation
    @writer
    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        if times is None or times == (UTIME_NOW, UTIME_NOW):
            self.client.utimes(path, follow_symlinks=False)  # the server's clock
            return 0
        if UTIME_OMIT in times:
            current = self.client.lstat(path)
            kept = (current.st_atime_ns, current.st_mtime_ns)
            times = tuple(kept[index] if value == UTIME_OMIT else value for index, value in enumerate(times))
        now = time.time_ns()
        times = tuple(now if value == UTIME_NOW else value for value in times)
        self.client.utimes(path, ns=times, follow_symlinks=False)
        return 0

    @nfs_operation
    def statfs(self, path: str) -> dict:
        info = self.client.statvfs(path)
        return {key: getattr(info, key) for key in (
            "f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree", "f_favail",
            "f_namemax")}

    # -- directories and names --------------------------------------------------------------------------------------
    @nfs_operation
    def readdir(self, path: str, fh: int) -> list[tuple[str, dict, int]]:
        # Inode numbers must come along: with use_ino, an entry with inode 0 is one readdir(3) skips.
        here = self.client.lstat(path).st_ino
        entries = [(".", {"st_ino": here, "st_mode": stat.S_IFDIR}, 0),
                   ("..", {"st_ino": 1, "st_mode": stat.S_IFDIR}, 0)]
        entries += [(entry.name, {"st_ino": entry.inode, "st_mode": entry.mode}, 0)
                    for entry in self.client.scandir(path)]
        return entries

    @nfs_operation
    @writer
    def mkdir(self, path: str, mode: int) -> int:
        self.client.mkdir(path, mode & 0o7777)
        return 0

    @nfs_operation
    @writer
    def rmdir(self, path: str) -> int:
        self.client.rmdir(path)
        return 0

    @nfs_operation
    @writer
    def unlink(self, path: str) -> int:
        self.client.unlink(path)
        return 0

    @nfs_operation
    @writer
    def rename(self, old: str, new: str, flags: int = 0) -> int:
        if flags & ~RENAME_NOREPLACE:
            raise OSError(errno.EINVAL, "rename flags other than RENAME_NOREPLACE are not supported over NFSv3")
        # NFSv3 has no no-replace rename: check, then rename (a race with other clients is possible).
        if flags & RENAME_NOREPLACE and self.client.exists(new):
            raise OSError(errno.EEXIST, os.strerror(errno.EEXIST), new)
        self.client.rename(old, new)
        return 0

    @nfs_operation
    @writer
    def symlink(self, link_path: str, target: str) -> int:
        self.client.symlink(target, link_path)
        return 0

    @nfs_operation
    def readlink(self, path: str) -> str:
        return self.client.readlink(path)

    @nfs_operation
    @writer
    def link(self, new_path: str, existing_path: str) -> int:
        self.client.link(existing_path, new_path)
        return 0

    # -- file contents ----------------------------------------------------------------------------------------------
    @nfs_operation
    def open(self, path: str, flags: int) -> int:
        if self.readonly and (flags & os.O_ACCMODE != os.O_RDONLY or flags & os.O_TRUNC):
            raise OSError(errno.EROFS, "read-only mount")
        return self._add(self.client.open(path, flags & OPEN_FLAGS_PASSED))

    @nfs_operation
    @writer
    def create(self, path: str, mode: int, flags: int = os.O_WRONLY) -> int:
        wanted = (flags & (OPEN_FLAGS_PASSED | os.O_EXCL)) | os.O_CREAT
        return self._add(self.client.open(path, wanted, mode & 0o7777))

    @nfs_operation
    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return self._file(fh).pread(size, offset)

    @nfs_operation
    @writer
    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        written = self._file(fh).pwrite(data, offset)
        self._written.add(fh)
        return written

    @nfs_operation
    @writer
    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        if fh is not None and fh in self._files:
            self._files[fh].ftruncate(length)
        else:
            self.client.truncate(path, length)
        return 0

    @nfs_operation
    def flush(self, path: str, fh: int) -> int:
        # Close-to-open consistency, like the kernel's NFS client: libnfs writes UNSTABLE, so COMMIT on close.
        if fh in self._written:
            self._written.discard(fh)
            self._file(fh).fsync()
        return 0

    @nfs_operation
    def fsync(self, path: str, datasync: int, fh: int) -> int:
        self._written.discard(fh)
        self._file(fh).fsync()
        return 0

    @nfs_operation
    def release(self, path: str, fh: int) -> int:
        self._written.discard(fh)
        handle = self._files.pop(fh, None)
        if handle is not None:
            handle.close()
        return 0


def _fuse_class():
    mfusepy = _import_mfusepy()

    class RenameFlagsFUSE(mfusepy.FUSE):
        """mfusepy drops renameat2's flags; `mv -n` (RENAME_NOREPLACE) must not replace."""

        def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
            return self.operations.rename(old.decode(self.encoding, self.errors),
                                          new.decode(self.encoding, self.errors), flags)

    return RenameFlagsFUSE


def fs_name(client: NfsClient) -> str:
    """What /proc/mounts and df show as the source, like a kernel NFS mount: server:/export/dir."""
    directory = client.export.rstrip("/") + (client.base if client.base != "/" else "")
    return f"{client.server}:{directory or '/'}".replace(",", "_")


def serve(url: str, mountpoint: str, readonly: bool = False, ready_fd: int | None = None,
          caller_credentials: bool = True, rpc_timeout: float = 30.0) -> None:
    """Connect, mount and serve until unmounted or signalled (blocks). Raises before mounting if NFS fails."""
    client = NfsClient.connect(url, timeout=rpc_timeout)

    def signal_ready() -> None:
        if ready_fd is not None:
            os.write(ready_fd, b"1")
            os.close(ready_fd)

    operations = NfsFilesystem(client, readonly=readonly, caller_credentials=caller_credentials,
                               on_mounted=signal_ready)
    options = {"allow_other": True, "noatime": True, "fsname": fs_name(client), "subtype": "nfs", "use_ino": True}
    if readonly:
        options["ro"] = True
    try:
        _fuse_class()(operations, mountpoint, foreground=True, nothreads=True, **options)
    except RuntimeError:
        # libfuse3's fuse_main returns 8 when its loop ends on SIGTERM/SIGINT/SIGHUP too: once mounted, that is
        # the normal way out (the mount is gone either way).
        if not operations.mounted:
            raise


def watch_parent(pid: int, every: float = 0.5) -> None:
    """SIGTERM ourselves (libfuse unmounts and returns) once `pid` is no longer our parent: a tether killed with
    -9 must not leave its volume mounts behind. Polling, because PR_SET_PDEATHSIG follows the spawning thread."""
    def watch() -> None:
        while os.getppid() == pid:
            time.sleep(every)
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vic_ref.nfs.fuse_mount", description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="nfs://host/export/path?uid=0&gid=0&...")
    parser.add_argument("mountpoint")
    parser.add_argument("--ro", action="store_true", help="mount read-only")
    parser.add_argument("--ready-fd", type=int, help="write one byte to this fd once mounted")
    parser.add_argument("--url-credentials", action="store_true",
                        help="send every request with the URL's uid/gid instead of the caller's")
    parser.add_argument("--rpc-timeout", type=float, default=30.0, help="seconds before an NFS call fails")
    parser.add_argument("--debug", action="store_true", help="log every failed NFS call")
    parser.add_argument("--parent-pid", type=int,
                        help="unmount and exit when this process (the one that started us) is gone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, stream=sys.stderr,
                        format="nfs-fuse: %(levelname)s %(message)s")
    if args.ready_fd is not None:
        os.set_inheritable(args.ready_fd, False)
    if args.parent_pid:
        watch_parent(args.parent_pid)
    try:
        if not os.path.isdir(args.mountpoint):
            raise NotADirectoryError(errno.ENOTDIR, "mountpoint is not a directory", args.mountpoint)
        serve(args.url, args.mountpoint, readonly=args.ro, ready_fd=args.ready_fd,
              caller_credentials=not args.url_credentials, rpc_timeout=args.rpc_timeout)
    except (OSError, ValueError, RuntimeError, NfsUnavailable) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"nfs-fuse: cannot mount {args.url} on {args.mountpoint}: {message}", file=sys.stderr, flush=True)
        return 1
    return 0


# -- the caller's side ---------------------------------------------------------------------------------------------
def is_mounted(mountpoint: str) -> bool:
    target = os.path.realpath(mountpoint)
    try:
        with open("/proc/self/mountinfo") as mountinfo:
            return any(_unescape(line.split()[4]) == target for line in mountinfo)
    except OSError:
        return False


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape") if "\\" in field else field


def mount_command(url: str, mountpoint: str, ready_fd: int, *, readonly: bool = False,
                  caller_credentials: bool = True, rpc_timeout: float = 30.0,
                  parent_pid: int | None = None) -> list[str]:
    """The command line of a FUSE client for `url` on `mountpoint` that signals `ready_fd` once mounted."""
    command = [sys.executable, "-m", "vic_ref.nfs.fuse_mount", url, mountpoint, "--ready-fd", str(ready_fd),
               "--rpc-timeout", str(rpc_timeout)]
    if readonly:
        command.append("--ro")
    if not caller_credentials:
        command.append("--url-credentials")
    if parent_pid:
        command += ["--parent-pid", str(parent_pid)]
    return command


def start_mount(url: str, mountpoint: str, readonly: bool = False, timeout: float = 10,
                log_path: str | None = None, caller_credentials: bool = True,
                rpc_timeout: float = 30.0) -> subprocess.Popen:
    """Start the FUSE server for `url` on `mountpoint` and wait until the mount is in place. Raises NfsMountError
    with the child's error text if it fails. The child's stderr goes to `log_path` (default: a file that exists as
    long as the child does). While the server is down, each file operation fails after `rpc_timeout` seconds with
    ETIMEDOUT; the mount recovers by itself once the server is back."""
    read_end, write_end = os.pipe()
    command = mount_command(url, mountpoint, write_end, readonly=readonly, caller_credentials=caller_credentials,
                            rpc_timeout=rpc_timeout)
    errors = open(log_path, "a+b") if log_path else tempfile.TemporaryFile()
    start_offset = errors.seek(0, os.SEEK_END)
    try:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
                                   pass_fds=(write_end,), start_new_session=True)
    finally:
        os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], timeout)
        signalled = os.read(read_end, 1) if ready else None
    finally:
        os.close(read_end)
    with errors:
        if signalled == b"1":
            return process
        if signalled is None:  # still not mounted after `timeout`: give up on it
            process.kill()
        process.wait()
        errors.seek(start_offset)
        lines = errors.read().decode(errors="replace").strip().splitlines()
    reason = lines[-1] if lines else f"exit status {process.returncode}"
    if signalled is None:
        reason = f"not mounted after {timeout}s ({reason})"
    if is_mounted(mountpoint):
        detach_mount(mountpoint)
    raise NfsMountError(reason)


def stop_mount(process: subprocess.Popen, mountpoint: str, timeout: float = 10) -> None:
    """SIGTERM (libfuse unmounts and exits), then SIGKILL if need be, then a lazy unmount if anything is left."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if is_mounted(mountpoint):
        detach_mount(mountpoint)


def detach_mount(mountpoint: str) -> None:
    """A lazy unmount (the mount goes once nothing uses it); nothing if it is not a mount point."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(os.fsencode(mountpoint), MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):  # not a mount point (any more)
            raise OSError(code, f"lazy unmount failed: {os.strerror(code)}", mountpoint)


if __name__ == "__main__":
    sys.exit(main())
