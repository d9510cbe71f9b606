"""Guest programs of powered-on VMs: booting, stopping, and answering their requests on the guest channel.

Booting
-------
When a VM powers on, the VM's power method calls `sim.guests.power_on(vm)`. The guest program is chosen by the ISO in
the VM's CD-ROM (`vm.iso_paths()`, first match wins). In the sim an ISO is a small file whose content is a JSON
manifest::

    {"vsphere_sim_guest": {"module": "vic_ref.appliance",      # run as `python -m <module> <args...>`
                           "args": ["--flag", "value"],        # optional
                           "version": "1.5.0",                  # optional, informational (shown in the log)
                           "env": {"NAME": "value"},            # optional, added to the program's environment
                           "pythonpath": ["/extra/import/dir"]}}  # optional, prepended to PYTHONPATH

(at most 64 KiB; `guest_vm.make_manifest` writes one, `guest_vm.parse_manifest` reads one). Anything else in the
CD-ROM (a real ISO, a missing file, no CD-ROM) boots no guest: the VM is powered on, its `guest.guestState` stays
`notRunning` and guest operations fail with `GuestOperationsUnavailable`, as for a VM whose OS never starts VMware
Tools. The manifest runs code on the sim's host: only use a sim where you trust whoever can upload to its
datastores.

The program runs as a child process of the sim (`sys.executable -m module args`) in its own session (process group),
with its working directory `<workdir>/guests/<vm moid>/` (scratch space the guest owns; kept across boots) and these
environment variables:

    VSPHERE_SIM_GUEST_CHANNEL   path of the sim's guest channel (a Unix socket)
    VSPHERE_SIM_GUEST_TOKEN     this boot's secret; it names the VM and dies with this boot
    VSPHERE_SIM_GUEST_DIR       the scratch directory above

Its stdout and stderr (the guest's console) are appended to `guest.log` in the VM's datastore folder, beside the
VMX's `vmware.log`, or to `<workdir>/guests/<vm moid>.log` when the folder can't be resolved.

Stopping
--------
`power_off(vm)` (power off, reset, destroy) is a pull of the plug: the guest's token is revoked at once (the guest can
no longer read or write the VM), a `power_off` event is sent on its channel, the program gets SIGTERM, and whatever of
its process group is left after `grace` seconds gets SIGKILL; nothing of a guest outlives its VM for longer than that.
When the program exits on its own, the VM powers off (`vm.guest_power_off()`), as a VM does when its OS halts.
`shutdown(vm)` (ShutdownGuest) asks the guest to halt: SIGTERM, and the VM powers off when the program has exited;
`reboot(vm)` (RebootGuest) stops the guest and boots it again.
`resume_powered_on()` boots a fresh guest for every VM that was powered on when the sim stopped; `stop_all()` stops
every guest without touching the VMs (the sim is closing or resetting).

A boot also connects the VM's network-backed serial ports (`self.serial`, `guest_serial.py`): each connected URI port
becomes a TCP connection to its service URI bridged to a Unix socket the guest opens as its ttyS<n>; power off closes
them, and ReconfigVM (`devices_changed`) connects or disconnects them while the VM runs.

The guest channel
-----------------
The protocol (requests, events, error codes, guestinfo scopes) is described in `guest_transport.py`, which holds the
socket side; `GuestSupervisor.handle` answers the requests (`_op_<name>`); what a request describes of the VM (disks,
serial ports, guestinfo, the `guest` properties) is in `guest_vm.py`. The guest's own end is `guest_channel.py`.

Locking: VM state is touched only under `sim.lock`: every guest request is served under it (on its connection's
thread). `self._lock` guards the supervisor's own tables and is never held while taking `sim.lock`. A guest operation
waits for the guest's answer on a Condition of `sim.lock`, which releases the sim lock while waiting, so the guest's
own requests are served meanwhile; every wait has a timeout.
"""
from __future__ import annotations

import datetime
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pyVmomi import vim

from .guest_serial import SerialPorts
from .guest_transport import NO_REPLY, ChannelServer, Connection, GuestChannelRefused
from .guest_vm import (
    GUESTINFO_PREFIX,
    MAX_MANIFEST_BYTES,
    GuestManifest,
    describe_disks,
    describe_serial_ports,
    extra_config_items,
    guest_visible,
    guest_writable,
    iso_paths,
    parse_manifest,
    set_guest_state,
    update_extra_config,
)
from .guest_vm import make_manifest as make_manifest  # the content of a guest's ISO, for tests and installers
from .guest_wire import ENV_CHANNEL, ENV_DIR, ENV_TOKEN, PROTOCOL

log = logging.getLogger("vsphere_sim.guests")

# Exited processes started by guest operations stay listed this long (vSphere: 5 minutes), at most this many.
PROCESS_RETENTION = 300.0
MAX_PROCESSES = 256
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)


# -- per-boot state -------------------------------------------------------------------------------------------------
@dataclass
class GuestProcess:
    """A process started by a guest operation, as ListProcessesInGuest reports it."""
    pid: int
    name: str
    owner: str
    cmd_line: str
    start_time: datetime.datetime
    end_time: datetime.datetime | None = None
    exit_code: int | None = None
    ended_at: float | None = None  # monotonic, for retention


@dataclass
class PendingOperation:
    id: int
    kind: str
    payload: dict
    reply: dict | None = None


class GuestInstance:
    """One boot of one VM's guest: its program, its connections, its processes and the credentials it accepts."""

    def __init__(self, supervisor: GuestSupervisor, vm_moid: str, manifest: GuestManifest):
        self.supervisor = supervisor
        self.vm_moid = vm_moid
        self.manifest = manifest
        self.token = secrets.token_hex(16)
        self.popen: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.stopped = False  # revoked: powered off, or the program exited
        self.exited = threading.Event()
        self.connections: set[Connection] = set()
        self.ops_connection: Connection | None = None
        self.logins: list[dict] = []
        self.tickets: dict[str, str] = {}  # AcquireCredentialsInGuest ticket -> username
        self.processes: dict[int, GuestProcess] = {}
        self.op_pids: dict[int, int] = {}  # operation id -> pid of the process it started
        self.pending: dict[int, PendingOperation] = {}
        self._next_op = 0
        self._next_pid = 1000
        self.report: dict[str, str] = {}

    def __repr__(self):
        return f"<GuestInstance {self.vm_moid} {self.manifest.module} pid={self.popen.pid if self.popen else None}>"

    @property
    def connected(self) -> bool:
        return bool(self.connections) and not self.stopped

    @property
    def operations_ready(self) -> bool:
        return self.ops_connection is not None and not self.ops_connection.closed and not self.stopped

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    # -- credentials ------------------------------------------------------------------------------------------------
    def accepts_login(self, username: str | None, password: str | None) -> bool:
        for login in self.logins:
            if login["username"] not in ("*", username):
                continue
            if login.get("password") is None or login["password"] == (password or ""):
                return True
        return False

    def issue_ticket(self, username: str) -> str:
        ticket = secrets.token_hex(16)
        self.tickets[ticket] = username
        return ticket

    # -- processes --------------------------------------------------------------------------------------------------
    def allocate_pid(self) -> int:
        self._next_pid += 1
        while self._next_pid in self.processes:
            self._next_pid += 1
        return self._next_pid

    def next_op_id(self) -> int:
        self._next_op += 1
        return self._next_op

    def record_start(self, pid: int, program: str, arguments: str, owner: str):
        cmd = f'"{program}" {arguments}'.rstrip() if arguments else f'"{program}"'
        self.processes[pid] = GuestProcess(pid, program, owner, cmd, _now())
        self._prune()

    def record_exit(self, pid: int, exit_code: int):
        proc = self.processes.get(pid)
        if proc is None or proc.end_time is not None:
            return
        proc.end_time, proc.exit_code, proc.ended_at = _now(), int(exit_code), time.monotonic()

    def _prune(self):
        limit = time.monotonic() - PROCESS_RETENTION
        for pid in [p.pid for p in self.processes.values() if p.ended_at is not None and p.ended_at < limit]:
            del self.processes[pid]
        while len(self.processes) > MAX_PROCESSES:
            ended = [p for p in self.processes.values() if p.ended_at is not None]
            victim = min(ended or self.processes.values(), key=lambda p: p.ended_at or 0.0)
            del self.processes[victim.pid]
        if len(self.op_pids) > MAX_PROCESSES:
            self.op_pids = {op: pid for op, pid in self.op_pids.items() if pid in self.processes}

    def process_list(self) -> list[GuestProcess]:
        self._prune()
        return list(self.processes.values())


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# -- the supervisor -------------------------------------------------------------------------------------------------
class GuestSupervisor:
    # seconds a guest gets between SIGTERM and SIGKILL when its VM powers off
    grace = 5.0
    # seconds a guest operation waits for the guest's answer
    op_timeout = 10.0

    def __init__(self, sim):
        self.sim = sim
        self.instances: dict[str, GuestInstance] = {}  # vm moid -> current boot
        self._tokens: dict[str, GuestInstance] = {}
        self._stopping: dict[str, GuestInstance] = {}  # vm moid -> a revoked boot whose program still runs
        self._lock = threading.Lock()
        self._server: ChannelServer | None = None
        self._replies = threading.Condition(sim.lock)  # waits release sim.lock
        # running VMs' network-backed serial ports and the guest's end of each (guest_serial.py)
        self.serial = SerialPorts(sim.workdir)

    # -- public API for the VM's power methods --------------------------------------------------------------------
    def power_on(self, vm) -> GuestInstance | None:
        """Boot the guest the VM's CD-ROM names (call under sim.lock, with the VM powered on or powering on)."""
        # A reset or a quick power cycle: the previous guest must be gone before the next one boots.
        for old in (self.instances.get(vm.moid), self._stopping.get(vm.moid)):
            if old is not None and not old.exited.is_set():
                self._stop(old, wait=True)
        set_guest_state(vm, running=False)
        # a fresh boot: its serial ports connect afresh (before the guest starts, so their sockets are there)
        self.serial.close_vm(vm.moid)
        self.serial.sync(vm)
        manifest, iso = self._find_manifest(vm)
        if manifest is None:
            log.info("%s: no guest program in its CD-ROM; the guest stays notRunning", vm.moid)
            return None
        instance = GuestInstance(self, vm.moid, manifest)
        self._start_process(vm, instance, iso)
        return instance

    def power_off(self, vm) -> None:
        """Pull the plug on the VM's guest (call under sim.lock); idempotent. The VM's guest goes notRunning."""
        instance = self.instances.get(vm.moid)
        if instance is not None:
            self._stop(instance, wait=False)
        self.serial.close_vm(vm.moid)
        set_guest_state(vm, running=False)

    def devices_changed(self, vm) -> None:
        """The VM's devices changed (ReconfigVM): connect or disconnect its serial ports (under sim.lock)."""
        self.serial.sync(vm)

    def vm_removed(self, moid: str) -> None:
        """The VM left the inventory: nothing of it stays connected."""
        self.serial.close_vm(moid)

    def shutdown(self, vm) -> None:
        """ShutdownGuest: ask the guest OS to halt (SIGTERM); the VM powers off once its program has exited."""
        instance = self.instance(vm)
        if instance is not None and instance.popen is not None and not instance.exited.is_set():
            try:
                instance.popen.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    def reboot(self, vm) -> None:
        """RebootGuest: the guest stops and boots again (the VM stays powered on)."""
        self.power_on(vm)

    def resume_powered_on(self) -> None:
        """After a restart: boot a fresh guest for every VM that is powered on."""
        with self.sim.lock:
            for vm in self.sim.registry.of_type(vim.VirtualMachine):
                runtime = vm.props.get("runtime")
                if runtime is not None and runtime.powerState == "poweredOn":
                    try:
                        self.power_on(vm)
                    except Exception:
                        log.exception("%s: cannot resume its guest", vm.moid)

    def stop_all(self) -> None:
        """Stop every guest (the sim is closing or resetting); VMs are left as they are."""
        with self._lock:
            # and the ones already powered off that are still in their grace: nothing may outlive the sim
            instances = [*self.instances.values(), *self._stopping.values()]
        for instance in instances:
            self._stop(instance, wait=False)
        self.serial.close()
        deadline = time.monotonic() + self.grace
        for instance in instances:
            if not instance.exited.wait(max(0.0, deadline - time.monotonic())):
                _kill_group(instance, signal.SIGKILL)
                instance.exited.wait(1.0)
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.close()

    # -- queries for guest operations -----------------------------------------------------------------------------
    def instance(self, vm) -> GuestInstance | None:
        instance = self.instances.get(vm.moid if not isinstance(vm, str) else vm)
        return instance if instance is not None and not instance.stopped else None

    def send_operation(self, instance: GuestInstance, kind: str, payload: dict, timeout: float | None = None) -> dict:
        """Send an operation to the guest and wait for its first answer (call under sim.lock; the wait releases it).

        Returns the guest's reply (`status` started | exited | rejected | done | environment); raises
        GuestChannelRefused("unavailable") when the guest can't take operations or doesn't answer in time.
        """
        connection = instance.ops_connection
        if connection is None or connection.closed or instance.stopped:
            raise GuestChannelRefused("unavailable", "the guest takes no operations")
        op = PendingOperation(instance.next_op_id(), kind, payload)
        instance.pending[op.id] = op
        ctx = self.sim.current
        try:
            connection.send({"event": "operation", "operation": {"id": op.id, "kind": kind, **payload}})
            deadline = time.monotonic() + (self.op_timeout if timeout is None else timeout)
            while op.reply is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or instance.stopped or connection.closed:
                    break
                self._replies.wait(min(remaining, 0.5))
        finally:
            instance.pending.pop(op.id, None)
            self.sim.current = ctx  # other calls ran while we waited
        if op.reply is None:
            raise GuestChannelRefused("unavailable", "the guest did not answer the operation")
        return op.reply

    # -- booting ----------------------------------------------------------------------------------------------------
    def _find_manifest(self, vm) -> tuple[GuestManifest | None, str | None]:
        for iso in iso_paths(vm):
            data = self._read_datastore_file(iso)
            if data is None:
                continue
            manifest = parse_manifest(data)
            if manifest is not None:
                return manifest, iso
        return None, None

    def _read_datastore_file(self, ds_path: str) -> bytes | None:
        try:
            path = Path(self.sim.datastores.local(self.sim.datastores.parse(ds_path)))
            with path.open("rb") as f:
                return f.read(MAX_MANIFEST_BYTES + 1)
        except Exception as err:  # missing file, unknown datastore, ...: this ISO boots nothing
            log.debug("cannot read ISO %s: %s", ds_path, err)
            return None

    def _start_process(self, vm, instance: GuestInstance, iso: str | None):
        server = self._ensure_server()
        manifest = instance.manifest
        guest_dir = self.sim.workdir / "guests" / vm.moid
        guest_dir.mkdir(parents=True, exist_ok=True)
        instance.log_path = self._log_path(vm)
        env = dict(os.environ)
        env.update(manifest.env)
        env[ENV_CHANNEL] = server.path
        env[ENV_TOKEN] = instance.token
        env[ENV_DIR] = str(guest_dir)
        env["PYTHONUNBUFFERED"] = "1"
        paths = [*manifest.pythonpath, _REPO_ROOT]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        argv = [sys.executable, "-m", manifest.module, *manifest.args]
        with self._lock:
            self._tokens[instance.token] = instance
            self.instances[vm.moid] = instance
        logfile = instance.log_path.open("ab")
        try:
            logfile.write(f"--- {_now().isoformat()} vsphere_sim: {vm.moid} boots {manifest.module} "
                          f"{manifest.version} from {iso}\n".encode())
            logfile.flush()
            instance.popen = subprocess.Popen(argv, cwd=guest_dir, env=env, stdin=subprocess.DEVNULL,
                                              stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True,
                                              close_fds=True)
        except OSError as err:
            log.error("%s: cannot start guest %s: %s", vm.moid, manifest.module, err)
            with self._lock:
                self._tokens.pop(instance.token, None)
                self.instances.pop(vm.moid, None)
            instance.stopped = True
            instance.exited.set()
            return
        finally:
            logfile.close()
        log.info("%s: guest %s started (pid %d, log %s)", vm.moid, manifest.module, instance.popen.pid,
                 instance.log_path)
        threading.Thread(target=self._watch, args=(instance,), name=f"guest-{vm.moid}", daemon=True).start()

    def _log_path(self, vm) -> Path:
        try:
            vmx = vm.props["config"].files.vmPathName
            path = Path(self.sim.datastores.local(self.sim.datastores.parse(vmx))).parent
            if path.is_dir():
                return path / "guest.log"
        except Exception:
            pass
        fallback = self.sim.workdir / "guests" / f"{vm.moid}.log"
        fallback.parent.mkdir(parents=True, exist_ok=True)
        return fallback

    def _ensure_server(self) -> ChannelServer:
        with self._lock:
            if self._server is None:
                self._server = ChannelServer(self.sim.workdir, self)
            return self._server

    # -- stopping ---------------------------------------------------------------------------------------------------
    def _revoke(self, instance: GuestInstance) -> bool:
        """Take the instance's rights away; False when it already was."""
        with self._lock:
            if instance.stopped:
                return False
            instance.stopped = True
            self._tokens.pop(instance.token, None)
            if self.instances.get(instance.vm_moid) is instance:
                del self.instances[instance.vm_moid]
            connections = list(instance.connections)
        for connection in connections:
            connection.send({"event": "power_off"})
            connection.close_after_send()
        with self.sim.lock:
            self._replies.notify_all()
        return True

    def _stop(self, instance: GuestInstance, wait: bool):
        self._revoke(instance)
        if instance.popen is None or instance.exited.is_set():
            return
        with self._lock:
            self._stopping[instance.vm_moid] = instance
        try:
            instance.popen.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        if wait:
            # A new boot of the same VM: the old guest must be gone first (it can't reach the sim any more, so this
            # wait under the sim lock can't deadlock; it is bounded by the grace).
            if not instance.exited.wait(self.grace):
                _kill_group(instance, signal.SIGKILL)
                instance.exited.wait(1.0)
        else:
            threading.Thread(target=self._reap_later, args=(instance,), name=f"guest-reap-{instance.vm_moid}",
                             daemon=True).start()

    def _reap_later(self, instance: GuestInstance):
        if not instance.exited.wait(self.grace):
            log.warning("%s: guest did not stop within %.1fs of SIGTERM; killing it", instance.vm_moid, self.grace)
            _kill_group(instance, signal.SIGKILL)

    def _watch(self, instance: GuestInstance):
        """Wait for the guest program to end; then nothing of it may live on, and a VM still on powers off."""
        code = instance.popen.wait()
        _kill_group(instance, signal.SIGKILL)  # the machine is off: stragglers in its process group go too
        instance.exited.set()
        with self._lock:
            if self._stopping.get(instance.vm_moid) is instance:
                del self._stopping[instance.vm_moid]
        if not self._revoke(instance):
            return  # it was stopped by a power off
        log.info("%s: guest %s exited with %s; powering the VM off", instance.vm_moid, instance.manifest.module, code)
        with self.sim.lock:
            vm = self.sim.registry.find(instance.vm_moid)
            if vm is None or self.instances.get(instance.vm_moid) is not None:
                return
            runtime = vm.props.get("runtime")
            if runtime is None or runtime.powerState != "poweredOn":
                set_guest_state(vm, running=False)
                return
            try:
                _guest_power_off(self.sim, vm)
            except Exception:
                log.exception("%s: powering off after the guest exited failed", vm.moid)
            finally:
                self.sim.flush_state()

    # -- requests from guests -------------------------------------------------------------------------------------
    def _hello(self, connection: Connection, msg: dict) -> dict:
        token = msg.get("token")
        with self._lock:
            instance = self._tokens.get(token) if isinstance(token, str) else None
            if instance is None or instance.stopped:
                raise GuestChannelRefused("invalid_token", "unknown or expired guest token")
            instance.connections.add(connection)
        connection.instance = instance
        with self.sim.lock:
            vm = self._vm(instance)
            self._refresh(instance, vm)
            config = vm.props.get("config")
            return {"vm": vm.moid, "name": vm.props.get("name"), "protocol": PROTOCOL,
                    "uuid": getattr(config, "uuid", None), "instance_uuid": getattr(config, "instanceUuid", None),
                    "version": instance.manifest.version}

    def _refresh(self, instance: GuestInstance, vm):
        set_guest_state(vm, running=instance.connected, operations_ready=instance.operations_ready,
                        report=instance.report)

    def _vm(self, instance: GuestInstance):
        vm = self.sim.registry.find(instance.vm_moid)
        if vm is None or instance.stopped:
            raise GuestChannelRefused("powered_off", "the VM is powered off")
        return vm

    def handle(self, connection: Connection, msg: dict) -> dict:
        """Answer one guest request (called on the connection's thread)."""
        op = msg.get("op")
        if op == "hello":
            return self._hello(connection, msg)
        instance = connection.instance
        if instance is None:
            raise GuestChannelRefused("bad_request", "the first request must be hello")
        if instance.stopped:
            raise GuestChannelRefused("powered_off", "the VM is powered off")
        if op == "ping":
            return {}
        handler = getattr(self, f"_op_{op}", None) if isinstance(op, str) else None
        if handler is None:
            raise GuestChannelRefused("unknown_op", f"unknown request {op!r}")
        with self.sim.lock:
            vm = self._vm(instance)
            try:
                return handler(instance, vm, connection, msg)
            finally:
                self.sim.flush_state()

    def _op_get(self, instance, vm, connection, msg):
        key = _str_arg(msg, "key")
        value = extra_config_items(vm).get(key) if guest_visible(key) else None
        return {"value": value}

    def _op_items(self, instance, vm, connection, msg):
        prefix = msg.get("prefix") or GUESTINFO_PREFIX
        if not isinstance(prefix, str):
            raise GuestChannelRefused("bad_request", "prefix must be a string")
        return {"items": {k: v for k, v in extra_config_items(vm).items() if guest_visible(k) and k.startswith(prefix)}}

    def _op_set(self, instance, vm, connection, msg):
        values = msg.get("values")
        if not isinstance(values, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in values.items()):
            raise GuestChannelRefused("bad_request", "values must map strings to strings")
        skipped = [k for k in values if not guest_writable(k)]
        if skipped and msg.get("strict"):
            raise GuestChannelRefused("read_only", f"the guest cannot write {', '.join(sorted(skipped))}")
        writable = {k: v for k, v in values.items() if guest_writable(k)}
        if writable:
            update_extra_config(vm, writable)
        return {"written": sorted(writable), "skipped": sorted(skipped)}

    def _op_disks(self, instance, vm, connection, msg):
        return {"disks": describe_disks(self.sim, vm)}

    def _op_serial_ports(self, instance, vm, connection, msg):
        return {"ports": describe_serial_ports(self.sim, vm)}

    def _op_accept_logins(self, instance, vm, connection, msg):
        logins = msg.get("logins")
        if not isinstance(logins, list):
            raise GuestChannelRefused("bad_request", "logins must be a list")
        clean = []
        for login in logins:
            if not isinstance(login, dict) or not isinstance(login.get("username"), str):
                raise GuestChannelRefused("bad_request", "each login needs a username")
            password = login.get("password")
            if password is not None and not isinstance(password, str):
                raise GuestChannelRefused("bad_request", "a password must be a string or null")
            clean.append({"username": login["username"], "password": password})
        instance.logins = clean
        return {}

    def _op_report(self, instance, vm, connection, msg):
        for name in ("ip_address", "host_name", "full_name"):
            value = msg.get(name)
            if value is None:
                instance.report.pop(name, None)
            elif isinstance(value, str):
                instance.report[name] = value
        self._refresh(instance, vm)
        return {}

    def _op_subscribe(self, instance, vm, connection, msg):
        with self._lock:
            instance.ops_connection = connection
        self._refresh(instance, vm)
        return {}

    def _op_op_reply(self, instance, vm, connection, msg):
        op_id, status = msg.get("operation"), msg.get("status")
        if status not in ("started", "exited", "rejected", "done", "environment"):
            raise GuestChannelRefused("bad_request", f"unknown status {status!r}")
        pending = instance.pending.get(op_id)
        reply = {k: msg[k] for k in ("status", "fault", "message", "env") if k in msg}
        result: dict = {}
        if status in ("started", "exited"):
            # The process table is kept here, on the channel's thread, so an exit reported right after the start
            # can't overtake it.
            pid = msg.get("pid") if _is_int(msg.get("pid")) else instance.op_pids.get(op_id)
            if pid is None:
                pid = instance.allocate_pid()
            if op_id not in instance.op_pids and pending is not None and pending.kind == "start":
                payload = pending.payload
                instance.record_start(pid, payload.get("program", ""), payload.get("arguments", ""),
                                      payload.get("user") or "")
            instance.op_pids[op_id] = pid
            if status == "exited":
                instance.record_exit(pid, _int(msg.get("exit_code"), 0))
            reply["pid"] = result["pid"] = pid
        if pending is not None and pending.reply is None:
            pending.reply = reply
            self._replies.notify_all()
        return result

    def _op_process_exited(self, instance, vm, connection, msg):
        pid = msg.get("pid")
        if not isinstance(pid, int):
            raise GuestChannelRefused("bad_request", "pid must be an integer")
        instance.record_exit(pid, _int(msg.get("exit_code"), 0))
        return {}

    def _op_power_off(self, instance, vm, connection, msg):
        # Answer first: powering off closes this connection.
        connection.reply(msg.get("id"), {})
        runtime = vm.props.get("runtime")
        if runtime is not None and runtime.powerState == "poweredOn":
            _guest_power_off(self.sim, vm)
        return NO_REPLY

    def connection_closed(self, connection: Connection):
        instance = connection.instance
        if instance is None:
            return
        with self._lock:
            instance.connections.discard(connection)
            if instance.ops_connection is connection:
                instance.ops_connection = None
        if instance.stopped:
            return
        with self.sim.lock:
            self._replies.notify_all()
            vm = self.sim.registry.find(instance.vm_moid)
            if vm is not None and not instance.stopped:
                self._refresh(instance, vm)
                self.sim.flush_state()


def _str_arg(msg: dict, name: str) -> str:
    value = msg.get(name)
    if not isinstance(value, str):
        raise GuestChannelRefused("bad_request", f"{name} must be a string")
    return value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(value, default: int) -> int:
    return value if _is_int(value) else default


def _kill_group(instance: GuestInstance, sig: int):
    if instance.popen is None:
        return
    try:
        os.killpg(instance.popen.pid, sig)  # the guest runs in its own session: pgid == pid
    except (ProcessLookupError, PermissionError):
        pass


def _guest_power_off(sim, vm):
    if hasattr(vm, "guest_power_off"):
        vm.guest_power_off()
    else:  # until the VM has its guest-initiated power off: a plain one
        sim.wait_task(sim.call(vm.ref, "PowerOffVM_Task"))
