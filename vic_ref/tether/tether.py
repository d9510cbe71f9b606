"""The tether: the container VM's guest program (VIC's `lib/tether`, vic-behaviour.md §4; DESIGN-DECISIONS §6).

Boot (`Tether.boot`): read the executor config from guestinfo (what the guest may see), accept guest logins for the
container ID, find the root disk (`[ds] <id>/<id>.vmdk`) and the log serial ports (`tether.debug`, `output.log`),
write the container's /etc files (hostname, hosts, resolv.conf) into `<guest dir>/tether/etc/`, then launch the
primary session (`nsinit.py`: namespaces, overlay root, /proc, /dev, chroot, user, PATH lookup). Its launch report
goes back as `sessions|<id>.started` ("true" or Docker's error text) with `detail.starttime`; its end as
`sessions|<id>.status` (exit code; 128+signal) with `detail.stoptime`, after which the VM powers off (VIC halts).

Guest operations (StartProgramInGuest as the container ID): `reload` re-reads the config and launches new exec
sessions; `kill <SIG>` signals the container process, `group-kill <SIG>` its process group; anything else is refused
with `unknown command "<program>"`.

Reaping: the tether is a child subreaper (PR_SET_CHILD_SUBREAPER) and owns every wait: one thread waits for any
child and hands the status to whoever registered the PID; anything else (an orphan) is just reaped. Inside a
container the namespace's init (nsinit) reaps the container's orphans.

The root filesystem's mounts live only in the container's mount namespace: the kernel removes them when the
container's last process ends, whatever happens to the tether. On power off (the channel's `power_off` event, or
SIGTERM) the tether SIGKILLs every container process tree and exits.

Output: stdout and stderr of the primary session are appended to `output.log` in the format `logfile.py` documents
(`<RFC3339 ns timestamp> <stdout|stderr> <F|P> <content>`); the tether's own log goes to `tether.debug`.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from ..config import ExecutorConfig, SessionConfig, decode_visible_to_guest, key_for
from ..config.executor import data_version
from ..guest import ChannelClosed, GuestChannel, GuestChannelError, Operation
from ..guest.channel import guest_dir
from .attach import AttachServer, set_window_size
from .logfile import STDERR, STDOUT, OutputLog
from .mounts import MountError, volume_specs
from .nfs import NfsMounts

log = logging.getLogger("vic_ref.tether")

NSINIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nsinit.py")
PREFIX = "guestinfo.vice."
NAME_KEY = "guestinfo.vice./common/name"
RENAME_SUPPORTED = 4  # data versions below it put the container name in /etc/hosts (DESIGN-DECISIONS §3)
SHORT_ID = 12
PR_SET_CHILD_SUBREAPER = 36
NEEDS_ROOT = ("starting a container needs root (namespaces, chroot and overlay mounts): run vic-ref as root")
LOCALHOST = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
             "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters"]


def parse_signal(text: str) -> int:
    """`TERM`, `SIGTERM`, `sigterm` or `15` → 15; ValueError for anything else (as Go's signal parsing)."""
    text = (text or "").strip()
    if text.isdigit():
        number = int(text)
        if 0 < number < signal.NSIG:
            return number
        raise ValueError(f"unknown signal {text!r}")
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise ValueError(f"unknown signal {text!r}") from None


# -- reaping ---------------------------------------------------------------------------------------------------------
class Reaper:
    """The only waiter for this process's children: `spawn` registers a callback for a PID; orphans are reaped."""

    def __init__(self):
        self._lock = threading.Lock()
        self._callbacks: dict[int, object] = {}
        self._unclaimed: dict[int, int] = {}
        self._children = threading.Event()
        self._stopped = False
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        except OSError:
            pass
        self._thread = threading.Thread(target=self._run, name="tether-reaper", daemon=True)
        self._thread.start()

    def spawn(self, argv: list[str], on_exit, **kwargs) -> subprocess.Popen:
        with self._lock:
            proc = subprocess.Popen(argv, **kwargs)
            self._callbacks[proc.pid] = (proc, on_exit)
            status = self._unclaimed.pop(proc.pid, None)
        self._children.set()
        if status is not None:
            self._deliver(proc.pid, status)
        return proc

    def _run(self) -> None:
        while not self._stopped:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                self._children.clear()
                self._children.wait(0.5)
                continue
            except InterruptedError:
                continue
            with self._lock:
                known = pid in self._callbacks
                if not known:
                    self._unclaimed[pid] = status  # an orphan, or a spawn not registered yet
                    if len(self._unclaimed) > 1000:
                        self._unclaimed.pop(next(iter(self._unclaimed)))
            if known:
                self._deliver(pid, status)
            else:
                log.debug("reaped pid %d (status %d)", pid, status)

    def _deliver(self, pid: int, status: int) -> None:
        with self._lock:
            proc, on_exit = self._callbacks.pop(pid, (None, None))
        if proc is None:
            return
        code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.waitstatus_to_exitcode(status)
        proc.returncode = code  # Popen must never wait itself
        try:
            on_exit(code)
        except Exception:  # noqa: BLE001
            log.exception("exit handler of pid %d", pid)

    def stop(self) -> None:
        self._stopped = True
        self._children.set()


# -- one running session -----------------------------------------------------------------------------------------
@dataclass
class Running:
    id: str
    kind: str  # "sessions" or "execs"
    config: SessionConfig
    helper: subprocess.Popen | None = None
    init_pid: int = 0  # primary: the namespace init's host PID
    pid: int = 0  # the container process's host PID (0 until known)
    exit_code: int | None = None
    started: threading.Event = field(default_factory=threading.Event)
    exited: threading.Event = field(default_factory=threading.Event)
    copiers: list[threading.Thread] = field(default_factory=list)
    error: str = ""


def _host_pid_of_child(init_pid: int) -> int:
    """The host PID of the init's first child (the container process)."""
    try:
        with open(f"/proc/{init_pid}/task/{init_pid}/children") as handle:
            children = handle.read().split()
        return int(children[0]) if children else 0
    except (OSError, ValueError):
        return 0


class Tether:
    def __init__(self, channel: GuestChannel, *, scratch: str | None = None):
        self.channel = channel
        self.scratch = scratch or guest_dir() or os.getcwd()
        self.config = ExecutorConfig()
        self.raw: dict[str, str] = {}
        self.id = ""
        self.sessions: dict[str, Running] = {}
        self.primary: Running | None = None
        self.output: OutputLog | None = None
        self.rootfs = ""
        self.reaper = Reaper()
        self.nfs_mounts = NfsMounts(self.reaper, os.path.join(self.scratch, "tether", "nfs"))
        self.done = threading.Event()
        self._lock = threading.RLock()
        self._halting = False
        self.attach = AttachServer(self)

    # -- config ---------------------------------------------------------------------------------------------------
    def load(self) -> ExecutorConfig:
        self.raw = self.channel.items(PREFIX)
        self.config = decode_visible_to_guest(self.raw)
        self.id = self.config.id
        return self.config

    def write(self, values: dict[str, str]) -> None:
        try:
            skipped = self.channel.update(values)
            if skipped:
                log.warning("guest may not write %s", skipped)
        except GuestChannelError as err:
            log.warning("cannot write %s: %s", sorted(values), err)

    def session_keys(self, run: Running, **fields) -> dict[str, str]:
        out = {}
        for name, value in fields.items():
            path = ("detail", name) if name in ("start_time", "stop_time") else (name,)
            out[key_for(run.kind, run.id, *path)] = str(value)
        return out

    # -- boot ---------------------------------------------------------------------------------------------------
    def boot(self) -> None:
        self.load()
        if not self.id:
            raise RuntimeError("no container id in guestinfo.vice./common/id")
        self.channel.accept_logins([self.id, *self.volume_labels()])
        self.setup_logs()
        log.info("tether up for %s (data version %d)", self.id, data_version(self.raw))
        self.channel.serve_operations(self.handle)
        session = self.config.sessions.get(self.id)
        if session is None:
            log.error("no primary session in the config")
            return
        self.primary = Running(self.id, "sessions", session)
        self.sessions[self.id] = self.primary
        self.run_blocked(self.primary, self._launch_primary_safely)

    def _launch_primary_safely(self, run: Running) -> None:
        try:
            self.launch_primary(run)
        except Exception as err:  # noqa: BLE001
            log.exception("launching the primary session")
            self.launch_failed(run, f"container setup failed: {err}", 125)

    def run_blocked(self, run: Running, launch) -> None:
        """Launch now, or (RunBlock with an attach server) once an attach's `unblock` arrives."""
        if not (run.config.run_block and self.attach.running):
            launch(run)
            return

        def wait() -> None:
            log.info("%s %s waits for an attach (RunBlock)", run.kind, run.id[:12])
            if self.attach.wait_unblock(run.id):
                launch(run)
        threading.Thread(target=wait, name=f"runblock-{run.id[:12]}", daemon=True).start()

    def volume_labels(self) -> list[str]:
        return [m.label for m in self.config.mounts.values() if m.label]

    def setup_logs(self) -> None:
        ports = []
        try:
            ports = self.channel.serial_ports()
        except GuestChannelError as err:
            log.warning("no serial ports: %s", err)
        paths = {}
        for port in ports:
            if port.get("kind") == "file" and port.get("path"):
                paths[os.path.basename(str(port.get("file") or port["path"]))] = port["path"]
        debug = paths.get("tether.debug")
        if debug:
            handler = logging.FileHandler(debug)
            handler.setFormatter(logging.Formatter("%(asctime)s tether %(levelname)s %(message)s"))
            logging.getLogger().addHandler(handler)
            if self.primary_debug_level() > 0:
                logging.getLogger().setLevel(logging.DEBUG)
        self.output = OutputLog(paths.get("output.log"))
        sockets = [p.get("socket") for p in ports if p.get("kind") == "uri" and p.get("socket")]
        if sockets and self.attach.start(str(sockets[0])):
            log.info("attach server on %s", sockets[0])

    def primary_debug_level(self) -> int:
        session = self.config.sessions.get(self.id)
        level = self.config.diagnostics.debug_level
        if session is not None:
            level = max(level, session.diagnostics.debug_level)
        return level

    # -- the root filesystem --------------------------------------------------------------------------------------
    def root_disk(self):
        disks = [d for d in self.channel.disks() if d.chain]
        for disk in disks:
            if disk.file and disk.file.rstrip().endswith(f"/{self.id}.vmdk"):
                return disk
        return disks[0] if disks else None

    def hostname(self) -> str:
        name = self.config.hostname or self.id[:SHORT_ID]
        if self.config.hostname and self.config.domainname:
            name = f"{name}.{self.config.domainname}"
        return name

    def etc_files(self, layers: list[str]) -> list[list[str]]:
        """Write hostname, hosts (and resolv.conf when the config names nameservers); the binds over the image's."""
        etc = os.path.join(self.scratch, "tether", "etc")
        os.makedirs(etc, exist_ok=True)
        self.etc_layers = layers  # a reload rewrites the files in place (the bind mounts show the new content)
        hostname = self.hostname()
        short = hostname.split(".", 1)[0]
        binds = []
        with open(os.path.join(etc, "hostname"), "w") as handle:
            handle.write(hostname + "\n")
        binds.append([os.path.join(etc, "hostname"), "/etc/hostname"])
        lines = [line for line in _image_file(layers, "etc/hosts").splitlines() if line.strip()]
        for entry in LOCALHOST:
            if entry not in lines:
                lines.append(entry)
        names = [hostname] if short == hostname else [hostname, short]
        if data_version(self.raw) < RENAME_SUPPORTED:
            # an older container's name, read once per boot as VIC's setHostname does ("once only"): a reload
            # rewrites the network entries but keeps it, so a rename while running shows here after a restart
            if getattr(self, "hosts_name", None) is None:
                try:
                    self.hosts_name = self.channel.get(NAME_KEY) or ""
                except GuestChannelError:
                    self.hosts_name = ""
            if self.hosts_name:
                names.append(self.hosts_name)
        lines.append("127.0.1.1\t" + " ".join(names))
        lines.append("::1\t" + " ".join(names))
        for net, endpoint in sorted(self.config.networks.items()):
            if endpoint.ip is not None:
                lines.append(f"{endpoint.ip.ip}\t{net}.localhost")  # VIC's updateHosts
        with open(os.path.join(etc, "hosts"), "w") as handle:
            handle.write("\n".join(lines) + "\n")
        binds.append([os.path.join(etc, "hosts"), "/etc/hosts"])
        nameservers = []
        for endpoint in self.config.networks.values():
            for server in [*endpoint.network.nameservers, *endpoint.network.assigned.nameservers]:
                if str(server) not in nameservers:
                    nameservers.append(str(server))
        if nameservers:
            content = "".join(f"nameserver {server}\n" for server in nameservers)
            with open(os.path.join(etc, "resolv.conf"), "w") as handle:
                handle.write(content)
            binds.append([os.path.join(etc, "resolv.conf"), "/etc/resolv.conf"])
        return binds

    # -- launching ----------------------------------------------------------------------------------------------
    def launch_primary(self, run: Running) -> None:
        if os.geteuid() != 0:
            self.launch_failed(run, NEEDS_ROOT, 125)
            return
        disk = self.root_disk()
        if disk is None:
            self.launch_failed(run, "container setup failed: no root disk attached", 125)
            return
        if any(layer.formatted for layer in disk.chain):
            self.launch_failed(run, "container setup failed: the root disk is not a directory tree", 125)
            return
        paths = disk.data_paths
        upper, lower = paths[-1], list(reversed(paths[:-1]))
        os.makedirs(upper, exist_ok=True)
        base = os.path.join(self.scratch, "tether")
        work = os.path.join(base, "work")
        if _device(base) != _device(upper):
            work = upper.rstrip("/") + ".work"  # overlay wants upper and work on one filesystem
        if os.path.isdir(work):
            subprocess.run(["rm", "-rf", work], check=False)
        self.rootfs = os.path.join(base, "rootfs")
        try:
            volumes = volume_specs(self.config.mounts, self.channel)
            for volume in volumes:
                if volume.get("nfs"):
                    volume["staged"] = self.nfs_mounts.mount(volume)
        except MountError as err:
            self.nfs_mounts.unmount_all()
            self.launch_failed(run, str(err), 125)
            return
        spec = self.process_spec(run.config)
        spec.update(mode="primary", rootfs=self.rootfs, lower=lower, upper=upper, work=work,
                    binds=self.etc_files([upper, *lower]), volumes=volumes)
        self.spawn(run, spec)

    def process_spec(self, session: SessionConfig) -> dict:
        cmd = session.cmd
        return {"path": cmd.path, "args": list(cmd.args or ([cmd.path] if cmd.path else [])),
                "env": list(cmd.env), "dir": cmd.dir, "user": session.user, "group": session.group,
                "tty": bool(session.tty), "hostname": self.hostname()}

    def spawn(self, run: Running, spec: dict) -> None:
        # a socket, not a pipe: a tty session's pty master comes back on it (nsinit opens the pty in the container)
        report_sock, report_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        size = getattr(run, "window_size", None)
        if run.config.tty and size:
            spec = {**spec, "window_size": list(size)}  # the pty has the client's size before the process starts
        spec_fd = os.memfd_create("nsinit-spec", 0)
        os.write(spec_fd, json.dumps({**spec, "report_fd": report_w.fileno()}).encode())
        os.lseek(spec_fd, 0, os.SEEK_SET)
        close_after = [spec_fd]
        streams: list[tuple[int, str]] = []
        null = open(os.devnull, "r+b")  # noqa: SIM115 - handed to the child
        stdin_arg: object = null
        stdout: object = null
        stderr: object = null
        if not run.config.tty:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            stdout, stderr = out_w, err_w
            close_after += [out_w, err_w]
            streams += [(out_r, STDOUT), (err_r, STDERR)]
            if run.config.open_stdin:
                # stdin stays open, as `docker run -i` keeps it; the attach server writes what attach channels send
                in_r, in_w = os.pipe()
                run.stdin_w = in_w  # type: ignore[attr-defined]
                close_after.append(in_r)
                stdin_arg = in_r
        try:
            run.helper = self.reaper.spawn([sys.executable, "-S", NSINIT, str(spec_fd)],
                                           lambda code: self.on_exit(run, code),
                                           stdin=stdin_arg, stdout=stdout, stderr=stderr,
                                           pass_fds=[report_w.fileno(), spec_fd], close_fds=True)
        finally:
            report_w.close()
            for fd in close_after:
                os.close(fd)
            null.close()
        if run.config.open_stdin and not run.config.tty and self.attach.running:
            self.attach.pump_stdin(run.id, run.stdin_w, tty=False, close=True)  # type: ignore[attr-defined]
            run.stdin_w = None  # type: ignore[attr-defined]  # the pump owns (and closes) it
        for fd, stream in streams:
            self.start_copier(run, fd, stream)
        threading.Thread(target=self.read_reports, args=(run, report_sock), name=f"report-{run.id[:12]}",
                         daemon=True).start()

    def start_copier(self, run: Running, fd: int, stream: str) -> None:
        thread = threading.Thread(target=self.copy_output, args=(run, fd, stream),
                                  name=f"output-{run.id[:12]}-{stream}", daemon=True)
        thread.start()
        run.copiers.append(thread)

    def attach_pty(self, run: Running, master: int) -> None:
        """The tty session's pty master arrived (with `started`): copy its output, feed it stdin."""
        run.pty_master = master  # type: ignore[attr-defined]
        size = getattr(run, "window_size", None)
        if size is not None:
            set_window_size(master, size, run.id)
        if run.config.open_stdin and self.attach.running:
            self.attach.pump_stdin(run.id, master, tty=True, close=False)
        self.start_copier(run, master, STDOUT)

    def copy_output(self, run: Running, fd: int, stream: str) -> None:
        primary = run.kind == "sessions"
        try:
            while True:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    break  # a pty master gives EIO when the last slave closes
                if not data:
                    break
                if primary and self.output is not None:
                    self.output.write(stream, data)
                self.attach.output(run.id, stream == STDERR, data)
        finally:
            os.close(fd)

    def read_reports(self, run: Running, sock: socket.socket) -> None:
        buffer = b""
        fds: list[int] = []  # passed descriptors, in order; a report line that carries one takes it
        with sock:
            while True:
                try:
                    chunk, received, _flags, _addr = socket.recv_fds(sock, 65536, 4)
                except OSError:
                    break
                fds += received
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    try:
                        report = json.loads(line)
                    except ValueError:
                        log.warning("bad report line %r", line)
                        continue
                    if report.get("pty") and fds:
                        report["pty_fd"] = fds.pop(0)
                    self.on_report(run, report)
        for fd in fds:
            os.close(fd)

    def on_report(self, run: Running, report: dict) -> None:
        log.debug("%s %s: %s", run.kind, run.id[:12], report)
        if "init_pid" in report:
            run.init_pid = int(report["init_pid"])
        elif report.get("started"):
            if run.kind == "sessions":
                run.pid = _host_pid_of_child(run.init_pid) if run.init_pid else 0
            else:
                run.pid = int(report.get("pid") or 0)
            if "pty_fd" in report:
                self.attach_pty(run, report["pty_fd"])
            self.write(self.session_keys(run, started="true", start_time=time.time_ns()))
            run.started.set()
            log.info("%s %s started: pid %d", run.kind, run.id[:12], run.pid)
        elif "error" in report:
            self.launch_failed(run, str(report["error"]), int(report.get("code") or 125), exits=False)

    def launch_failed(self, run: Running, text: str, code: int, *, exits: bool = True) -> None:
        """The launch failed: `started` carries the error, `status` the code (VIC: the session is encoded either
        way). With `exits`, nothing else will report: end the session now."""
        log.error("%s %s launch failed: %s", run.kind, run.id[:12], text)
        run.error = text
        now = time.time_ns()
        self.write(self.session_keys(run, exit_status=code, started=text, start_time=now))
        run.started.set()
        if exits:
            self.on_exit(run, code)

    def on_exit(self, run: Running, code: int) -> None:
        run.started.wait(5.0)  # its report first: `started` goes out before `status`
        for thread in run.copiers:
            thread.join(5.0)
        run.exit_code = code
        stdin_w = getattr(run, "stdin_w", None)
        if stdin_w is not None:
            try:
                os.close(stdin_w)
            except OSError:
                pass
        log.info("%s %s exited with %d", run.kind, run.id[:12], code)
        self.attach.ended(run.id)
        self.write(self.session_keys(run, exit_status=code, stop_time=time.time_ns()))
        run.exited.set()
        if run is self.primary:
            self.nfs_mounts.unmount_all()
            self.halt()

    # -- guest operations -----------------------------------------------------------------------------------------
    def handle(self, op: Operation):
        log.info("guest operation %s %r %r as %s", op.kind, op.program, op.arguments, op.user)
        if op.kind != "start":
            op.reject(f"no process {op.pid}", fault="GuestProcessNotFound")
            return None
        if op.program == "reload":
            self.reload()
            return 0
        if op.program in ("kill", "group-kill"):
            try:
                signo = parse_signal(op.arguments or "TERM")
            except ValueError as err:
                op.reject(str(err))
                return None
            self.signal_primary(signo, group=op.program == "group-kill")
            return 0
        op.reject(f'unknown command "{op.program}"')
        return None

    def signal_primary(self, signo: int, *, group: bool) -> None:
        run = self.primary
        if run is None or run.exited.is_set():
            return
        run.started.wait(10.0)
        pid = run.pid or (_host_pid_of_child(run.init_pid) if run.init_pid else 0)
        try:
            if pid:
                (os.killpg if group else os.kill)(pid, signo)
            elif signo == signal.SIGKILL and run.init_pid:
                os.kill(run.init_pid, signal.SIGKILL)
        except ProcessLookupError:
            if signo == signal.SIGKILL and run.init_pid:
                _kill_quietly(run.init_pid, signal.SIGKILL)

    def reload(self) -> None:
        """Re-read the config; launch exec sessions that are new and active (VIC's reload → processSessions)."""
        added: list[str] = []
        with self._lock:
            self.load()
            if getattr(self, "etc_layers", None) is not None:
                self.etc_files(self.etc_layers)  # a network connect or disconnect changes hosts and resolv.conf
            for eid, session in self.config.execs.items():
                if eid in self.sessions or not session.active or session.started:
                    continue
                run = Running(eid, "execs", session)
                self.sessions[eid] = run
                added.append(eid)
                self.run_blocked(run, self.launch_exec)
        if added:
            self.attach.announce(added)

    def launch_exec(self, run: Running) -> None:
        primary = self.primary
        if primary is None or not primary.init_pid or primary.exited.is_set():
            self.launch_failed(run, f"container {self.id[:12]} is not running", 125)
            return
        spec = self.process_spec(run.config)
        spec.update(mode="exec", init_pid=primary.init_pid, rootfs=self.rootfs)
        self.spawn(run, spec)

    # -- halt -----------------------------------------------------------------------------------------------------
    def halt(self) -> None:
        """The primary process ended: flush and power the VM off (VIC halts the VM)."""
        with self._lock:
            if self._halting:
                return
            self._halting = True
        if self.output is not None:
            self.output.close()
        log.info("powering off")
        for handler in logging.getLogger().handlers:
            handler.flush()
        threading.Thread(target=self._power_off, name="tether-power-off", daemon=True).start()

    def _power_off(self) -> None:
        time.sleep(0.05)  # let a pending operation's answer go out first
        try:
            self.channel.power_off()
        except (ChannelClosed, GuestChannelError):
            pass
        self.done.set()

    def kill_all(self) -> None:
        """Power off: every container process tree goes (an init's death takes its PID namespace with it)."""
        self.attach.stop()
        for run in list(self.sessions.values()):
            if run.init_pid:
                _kill_quietly(run.init_pid, signal.SIGKILL)
            if run.helper is not None and run.helper.returncode is None:
                _kill_quietly(run.helper.pid, signal.SIGKILL)
        deadline = time.monotonic() + 3.0
        for run in list(self.sessions.values()):
            if run.helper is not None:
                run.exited.wait(max(0.0, deadline - time.monotonic()))


def _kill_quietly(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _device(path: str) -> int | None:
    probe = path
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    try:
        return os.stat(probe or "/").st_dev
    except OSError:
        return None


def _image_file(layers: list[str], rel: str) -> str:
    """A file's text as the overlay of `layers` (top first) shows it; "" when absent or whited out."""
    import stat as stat_
    for layer in layers:
        path = os.path.join(layer, rel)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat_.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return ""  # a whiteout
        if stat_.S_ISREG(st.st_mode):
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    return handle.read()
            except OSError:
                return ""
        return ""
    return ""


def run_guest(make_agent, shutdown=None) -> int:
    """A container VM's guest process: connect the guest channel, boot the agent `make_agent(channel)` (the tether or
    the placeholder), stay up until the VM powers off, the agent is done or a signal ends us, then `shutdown(agent)`.
    A power off SIGTERMs us (the channel's default): the signal only ends the wait."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s tether %(levelname)s %(message)s")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        channel = GuestChannel.from_env(on_power_off=done.set)
    except GuestChannelError as err:
        log.error("%s", err)
        return 1
    agent = make_agent(channel)
    agent_done = getattr(agent, "done", None) or threading.Event()
    try:
        agent.boot()
    except ChannelClosed:
        done.set()
    except Exception:  # noqa: BLE001
        log.exception("tether boot failed")
        done.set()
    while not done.wait(0.5) and not agent_done.is_set():  # a timed wait so signals are handled promptly
        if channel.closed:
            break
    if shutdown is not None:
        shutdown(agent)
    channel.close()
    return 0


def main() -> int:
    def shutdown(tether: Tether) -> None:
        tether.kill_all()
        if tether.output is not None:
            tether.output.close()
        tether.reaper.stop()

    return run_guest(Tether, shutdown)
