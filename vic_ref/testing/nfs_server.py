"""A real NFS server for tests: Debian's nfs-ganesha (FSAL VFS) exporting one directory, NFSv3 and v4 over TCP.

    server = NfsServer(export_dir)          # pseudo path /mnt/nfs-vol, port 2049
    server.start()                          # rpcbind first if nothing answers on 111, then ganesha in the foreground
    server.url()                            # nfs://<fqdn>/mnt/nfs-vol?uid=0&gid=0&proto=tcp&port=2049
    server.stop()

The pytest fixture `nfs_server` (session scope) is one such server on a temporary directory: use it with
`pytest_plugins = ["vic_ref.testing.nfs_server"]` or `from vic_ref.testing.nfs_server import nfs_server`.
`served_export(tmp_path_factory)` is its body, for a fixture of a narrower scope (vic_ref/nfs/tests uses a package
one, so that port 2049 is free again for the suites after it).
A missing ganesha fails the test with the Debian package to install (`make install` provides it); it never skips.

Only one NFS server can own port 2049 on a machine, so a second start fails clearly instead of finding the other one.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from vic_ref.nfs.libnfs import NfsClient

GANESHA = "/usr/bin/ganesha.nfsd"
GANESHA_VFS_PLUGIN = "/usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so"
RPCBIND = "/usr/sbin/rpcbind"
DEBIAN_PACKAGES = "nfs-ganesha nfs-ganesha-vfs rpcbind libnfs13"
NFS_PORT = 2049
RPCBIND_PORT = 111
DEFAULT_PSEUDO = "/mnt/nfs-vol"

GANESHA_CONFIG = """\
NFS_CORE_PARAM {{
  NFS_Port = {port};
  Enable_NLM = false;
  Enable_RQUOTA = false;
  Mount_Path_Pseudo = true;
  Protocols = 3, 4;
}}
NFSV4 {{ Graceless = true; }}
EXPORT {{
  Export_Id = 1;
  Path = "{path}";
  Pseudo = "{pseudo}";
  Access_Type = RW;
  Squash = No_Root_Squash;
  Protocols = 3, 4;
  Transports = TCP;
  SecType = sys;
  FSAL {{ Name = VFS; }}
}}
"""


class NfsServerError(RuntimeError):
    pass


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _listener(port: int) -> str:
    """Who listens on a TCP port, as `ss` tells it (for error messages)."""
    try:
        out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown process"
    return " ".join(out.split()) or "unknown process"


def _ganesha_processes() -> list[tuple[int, str]]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"ganesha.nfsd"):
            found.append((int(entry), b" ".join(cmdline).decode(errors="replace").strip()))
    return found


class NfsServer:
    def __init__(self, export_dir: str | os.PathLike, pseudo: str = DEFAULT_PSEUDO, port: int = NFS_PORT,
                 workdir: str | os.PathLike | None = None):
        self.export_dir = Path(export_dir).resolve()
        self.pseudo = pseudo
        self.port = port
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else None
        self._ganesha: subprocess.Popen | None = None
        self._rpcbind: subprocess.Popen | None = None
        self.start_seconds: float | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "ganesha.log"

    def url(self, host: str | None = None, path: str = "") -> str:
        """VIC's volume store URL for this export (plus an optional path inside it)."""
        suffix = "/" + path.strip("/") if path.strip("/") else ""
        return f"nfs://{host or socket.getfqdn()}{self.pseudo}{suffix}?uid=0&gid=0&proto=tcp&port={self.port}"

    def start(self, timeout: float = 30.0) -> NfsServer:
        missing = [path for path in (GANESHA, GANESHA_VFS_PLUGIN, RPCBIND) if not os.path.exists(path)]
        if missing:
            raise NfsServerError(f"{', '.join(missing)} missing: install the Debian packages {DEBIAN_PACKAGES} "
                                 "(`make install` does)")
        if _listening(self.port):
            others = ", ".join(f"pid {pid}: {cmd}" for pid, cmd in _ganesha_processes()) or _listener(self.port)
            raise NfsServerError(f"port {self.port} is already served ({others}); only one NFS server can run on a "
                                 f"machine: stop it first, or share it instead of starting {self.pseudo} again")
        self.export_dir.mkdir(parents=True, exist_ok=True)
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="vic-nfs-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        try:
            self._start_rpcbind()
            config = self.workdir / "ganesha.conf"
            config.write_text(GANESHA_CONFIG.format(port=self.port, path=self.export_dir, pseudo=self.pseudo))
            self._ganesha = subprocess.Popen(
                [GANESHA, "-F", "-f", str(config), "-L", str(self.log_path), "-p", str(self.workdir / "ganesha.pid"),
                 "-N", "NIV_EVENT"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def _start_rpcbind(self) -> None:
        # ganesha registers NFSv3 and MOUNT with the portmapper and dies if there is none; libnfs finds MOUNT there.
        if _listening(RPCBIND_PORT):
            return
        self._rpcbind = subprocess.Popen([RPCBIND, "-w", "-f"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while not _listening(RPCBIND_PORT):
            if self._rpcbind.poll() is not None or time.monotonic() > deadline:
                raise NfsServerError(f"rpcbind did not start (exit status {self._rpcbind.poll()})")
            time.sleep(0.05)

    def _wait_ready(self, timeout: float) -> None:
        url = self.url(host="127.0.0.1")
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._ganesha.poll() is not None:
                raise NfsServerError(f"ganesha.nfsd exited with status {self._ganesha.returncode}; "
                                     f"log {self.log_path}:\n{self.log_tail()}")
            if _listening(self.port):
                try:
                    NfsClient.connect(url, timeout=5).close()
                    return
                except OSError as error:
                    last_error = error
            time.sleep(0.1)
        raise NfsServerError(f"ganesha.nfsd did not serve {self.pseudo} within {timeout:.0f}s ({last_error}); "
                             f"log {self.log_path}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except (OSError, TypeError):
            return "(no log)"
        # dbus complaints are expected: there is no system bus here and ganesha works without it.
        return "\n".join([line for line in text if "dbus" not in line.lower()][-lines:])

    @property
    def running(self) -> bool:
        return self._ganesha is not None and self._ganesha.poll() is None

    def stop(self) -> None:
        for attribute in ("_ganesha", "_rpcbind"):
            process = getattr(self, attribute)
            if process is None:
                continue
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            setattr(self, attribute, None)
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> NfsServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def served_export(tmp_path_factory):
    """A started NfsServer on a fresh directory, stopped when the generator is closed: the body of the fixtures.
    A missing or failing ganesha fails the test (never skips)."""
    export = tmp_path_factory.mktemp("nfs-export")
    export.chmod(0o755)  # pytest makes it 0700: other users could not even look up names in the export
    server = NfsServer(export)
    try:
        server.start()
    except NfsServerError as error:
        pytest.fail(str(error))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nfs_server(tmp_path_factory):
    """A running ganesha exporting a fresh directory as /mnt/nfs-vol; `.export_dir` is that directory on disk.
    It holds port 2049 until the session ends: suites that start their own NfsServer must not run beside it."""
    yield from served_export(tmp_path_factory)
