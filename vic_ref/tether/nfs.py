"""NFS volume mounts on the tether's side (VIC's tether `MountTarget`, vic-behaviour.md §4.8).

VIC's tether has the container VM's kernel mount `host:/path` with type nfs. This kernel has no NFS client, so the
tether runs one FUSE client per NFS volume (`vic_ref.nfs.fuse_mount`, libnfs underneath) that mounts the volume's
directory on the export at a staging folder of its own, before the launcher builds the container's mount namespace;
the launcher then bind-mounts that folder into the container (`mounts.attach`). The clients are this tether's
children, started through its reaper (the only waiter for its children), and end when the primary process ends.
"""
from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import threading
import time

from ..nfs.fuse_mount import detach_mount, is_mounted, mount_command
from .mounts import MountError

log = logging.getLogger(__name__)

READY_TIMEOUT = 20.0  # the server may be slow to answer its first MOUNT
STOP_TIMEOUT = 5.0


class NfsMounts:
    """The FUSE clients of one container, by volume name."""

    def __init__(self, reaper, base_dir: str):
        self.reaper = reaper
        self.base_dir = base_dir
        self._lock = threading.Lock()
        self._clients: dict[str, tuple[object, str, threading.Event]] = {}

    def mount(self, volume: dict, *, timeout: float = READY_TIMEOUT) -> str:
        """Mount the volume's export directory (`volume["nfs"]`) at a staging folder: its path. MountError with the
        client's own reason when the export can't be mounted."""
        name, url, target = volume["name"], volume["nfs"], volume["path"]
        staged = os.path.join(self.base_dir, name)
        os.makedirs(staged, exist_ok=True)
        _lazy_unmount(staged)  # a client of a tether that died may have left its mount here
        log_path = os.path.join(self.base_dir, f"{name}.log")
        ready_r, ready_w = os.pipe()
        exited = threading.Event()
        argv = mount_command(url, staged, ready_w, parent_pid=os.getpid())
        try:
            with open(log_path, "wb") as log_file:
                proc = self.reaper.spawn(argv, lambda code: exited.set(), stdin=subprocess.DEVNULL,
                                         stdout=log_file, stderr=log_file, pass_fds=[ready_w], close_fds=True)
        except OSError as err:
            os.close(ready_r)
            os.close(ready_w)
            raise MountError(f"mounting {url} on {target} failed: {err.strerror or err}") from None
        os.close(ready_w)
        try:
            readable, _, _ = select.select([ready_r], [], [], timeout)
            ready = bool(readable) and os.read(ready_r, 1) == b"1"
        finally:
            os.close(ready_r)
        if not ready:
            _stop(proc, exited)
            _lazy_unmount(staged)
            reason = _last_line(log_path).rsplit(f"{staged}: ", 1)[-1]  # the client's own reason, without its prefix
            raise MountError(f"mounting {url} on {target} failed: {reason or 'timed out'}")
        with self._lock:
            self._clients[name] = (proc, staged, exited)
        log.info("NFS volume %s: %s mounted at %s (pid %d)", name, url, staged, proc.pid)
        return staged

    def unmount_all(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, {}
        for name, (proc, staged, exited) in clients.items():
            _stop(proc, exited)
            _lazy_unmount(staged)
            log.info("NFS volume %s unmounted from %s", name, staged)


def _stop(proc, exited: threading.Event) -> None:
    """SIGTERM (the client unmounts and exits), then SIGKILL; the reaper collects it."""
    for signo, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 1.0)):
        if exited.is_set():
            return
        try:
            os.kill(proc.pid, signo)
        except ProcessLookupError:
            return
        exited.wait(wait)


def _lazy_unmount(path: str) -> None:
    if is_mounted(path):
        try:
            detach_mount(path)
        except OSError as err:
            log.warning("could not unmount %s: %s", path, err)


def _last_line(path: str) -> str:
    deadline = time.monotonic() + 1.0
    while True:  # the client writes its reason just before it exits
        try:
            with open(path, "rb") as handle:
                lines = handle.read().decode("utf-8", "replace").strip().splitlines()
        except OSError:
            lines = []
        if lines or time.monotonic() >= deadline:
            return lines[-1].strip() if lines else ""
        time.sleep(0.05)


__all__ = ["NfsMounts"]
