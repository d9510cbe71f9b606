"""The guest side of the guest channel: a guest program's only way to its own VM (seam 2 of ARCHITECTURE.md).

The channel is treated as hardware, like VMware Tools' RPC on a real ESX: a Unix socket named by the environment the
VM's guest is started with, one JSON object per line (the protocol is documented in
`vsphere_sim/guest_transport.py`; vic_ref never imports vsphere_sim). It needs nothing but the standard library, so
the tether stays light.

    channel = GuestChannel.from_env()
    cid = channel.get("guestinfo.vice./common/id")
    channel.accept_logins([cid])                      # guest operations must log in as the container ID
    channel.serve_operations(handle)                  # handle(op) on a thread of its own, per operation
    disk = channel.wait_for_disk(lambda d: d.file == path, timeout=10)

Power off: when the VM powers off (or the sim goes away) the channel closes, `closed_event` is set and
`on_power_off` runs once. `from_env()` defaults it to SIGTERM to this process: a guest's way to learn it is halting.
"""
from __future__ import annotations

import itertools
import json
import os
import queue
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import errors

ENV_CHANNEL = "VSPHERE_SIM_GUEST_CHANNEL"
ENV_TOKEN = "VSPHERE_SIM_GUEST_TOKEN"
ENV_DIR = "VSPHERE_SIM_GUEST_DIR"
PROTOCOL = 1
DEFAULT_TIMEOUT = 30.0
GUESTINFO_PREFIX = "guestinfo."


class GuestChannelError(errors.Unavailable):
    """A request the channel refused or could not carry; `code` is the protocol's error code."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(f"guest channel: {code}: {message}" if message else f"guest channel: {code}")
        self.code = code


class ChannelClosed(GuestChannelError):
    """The channel is gone: the VM powered off, the sim stopped, or `close()` was called."""


class ReadOnlyKey(GuestChannelError):
    """The guest may not write that key (hidden, or read-only: it contains `/`)."""


def in_guest(environ=None) -> bool:
    """Whether this process is a VM's guest program (its environment names a guest channel)."""
    env = os.environ if environ is None else environ
    return bool(env.get(ENV_CHANNEL) and env.get(ENV_TOKEN))


def guest_dir(environ=None) -> str | None:
    """The guest's own scratch directory (kept across boots of the VM), if any."""
    return (os.environ if environ is None else environ).get(ENV_DIR)


# -- disks -----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DiskLayer:
    """One disk of a chain: its datastore path, the real path of its data, and whether that data is an ext4 image
    (`formatted == "ext4"`) or a directory tree (None)."""
    file: str
    data: str
    formatted: str | None = None


@dataclass(frozen=True)
class Disk:
    """A disk attached to this VM, as the guest sees it. `chain` is base first; the last layer is the disk itself."""
    key: int
    file: str | None
    unit_number: int | None = None
    controller_key: int | None = None
    device_label: str | None = None
    disk_mode: str | None = None
    capacity_kb: int | None = None
    uuid: str | None = None
    formatted: str | None = None
    label: str | None = None  # the filesystem label (/dev/disk/by-label), None for a directory tree
    chain: tuple[DiskLayer, ...] = field(default_factory=tuple)

    @classmethod
    def from_wire(cls, data: dict) -> Disk:
        chain = tuple(DiskLayer(layer.get("file") or "", layer.get("data") or "", layer.get("formatted"))
                      for layer in data.get("chain") or [])
        return cls(key=data.get("key"), file=data.get("file"), unit_number=data.get("unit_number"),
                   controller_key=data.get("controller_key"), device_label=data.get("device_label"),
                   disk_mode=data.get("disk_mode"), capacity_kb=data.get("capacity_kb"), uuid=data.get("uuid"),
                   formatted=data.get("formatted"), label=data.get("label"), chain=chain)

    @property
    def data(self) -> str | None:
        """The real path of this disk's own data (the top of its chain): where a guest writes."""
        return self.chain[-1].data if self.chain else None

    @property
    def data_paths(self) -> list[str]:
        """The real paths of the chain's data, base first (overlay lowers, then the upper)."""
        return [layer.data for layer in self.chain]


# -- guest operations --------------------------------------------------------------------------------------------
class Operation:
    """One guest operation sent to this guest (StartProgramInGuest, TerminateProcessInGuest).

    kind `start`: `program`, `arguments` (one string, as vSphere passes it), `working_directory`, `env`, `user`;
    answer with `started(pid=None)` and then `exited(code)`, or `reject(message, fault)` instead.
    kind `terminate`: `pid`, `user`; answer with `done()` or `reject(..., fault="GuestProcessNotFound")`.
    """

    def __init__(self, channel: GuestChannel, data: dict):
        self.channel = channel
        self.data = data
        self.id: int = data["id"]
        self.kind: str = data.get("kind", "start")
        self.program: str = data.get("program") or ""
        self.arguments: str = data.get("arguments") or ""
        self.working_directory: str | None = data.get("working_directory")
        self.env: list[str] = list(data.get("env") or [])
        self.user: str | None = data.get("user")
        self.pid: int | None = data.get("pid")
        self.answered = False
        self.finished = False
        self.detached = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Operation {self.id} {self.kind} {self.program!r} {self.arguments!r}>"

    def _reply(self, status: str, **fields) -> dict:
        return self.channel._request("op_reply", operation=self.id, status=status, **fields)

    def started(self, pid: int | None = None) -> int | None:
        """The program runs: StartProgramInGuest returns its pid (picked by the VM when None)."""
        with self._lock:
            if self.answered:
                raise RuntimeError(f"{self!r} already answered")
            self.answered = True
        result = self._reply("started", **({"pid": pid} if pid is not None else {}))
        self.pid = result.get("pid", pid)
        return self.pid

    def exited(self, exit_code: int = 0) -> None:
        """The program ended (after `started`, or in its place for a program that ends at once)."""
        with self._lock:
            if self.finished:
                return
            self.finished = True
            first = not self.answered
            self.answered = True
        fields = {"exit_code": int(exit_code)}
        if not first and self.pid is not None:
            fields["pid"] = self.pid
        self._reply("exited", **fields)

    def reject(self, message: str, fault: str = "GuestOperationsFault") -> None:
        """Refuse: the vSphere call fails with `fault` and `message`."""
        with self._lock:
            if self.answered:
                raise RuntimeError(f"{self!r} already answered")
            self.answered = self.finished = True
        self._reply("rejected", fault=fault, message=message)

    def done(self) -> None:
        """A terminate was carried out."""
        with self._lock:
            if self.answered:
                return
            self.answered = self.finished = True
        self._reply("done")

    def detach(self) -> None:
        """After `started`: the program outlives the handler; call `exited` yourself later."""
        self.detached = True


OperationHandler = Callable[[Operation], Any]


# -- the channel -------------------------------------------------------------------------------------------------
class GuestChannel:
    """One connection to the VM's guest channel. Thread-safe: requests from many threads share it."""

    def __init__(self, path: str, token: str, *, timeout: float = DEFAULT_TIMEOUT,
                 on_power_off: Callable[[], Any] | None = None):
        self.path = path
        self.timeout = timeout
        self.on_power_off = on_power_off
        self.info: dict = {}  # hello's answer: vm (moid), name, uuid, instance_uuid, version
        self.closed_event = threading.Event()
        self._token = token
        self._ids = itertools.count(1)
        self._waiting: dict[int, list] = {}  # request id -> [Event, reply]
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._ops: queue.Queue = queue.Queue()
        self._subscribed = False
        self._closing = False
        self._power_off_fired = False
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)  # bounds a send to a channel that stopped reading
        try:
            self._sock.connect(path)
        except OSError as err:
            self._sock.close()
            raise ChannelClosed("unreachable", f"cannot connect to {path}: {err}") from None
        self._reader = threading.Thread(target=self._read_loop, name="guest-channel-reader", daemon=True)
        self._reader.start()
        try:
            self.info = self._request("hello", token=token, protocol=PROTOCOL)
        except GuestChannelError:
            self.close()
            raise

    @classmethod
    def from_env(cls, environ=None, *, timeout: float = DEFAULT_TIMEOUT,
                 on_power_off: Callable[[], Any] | None = None) -> GuestChannel:
        """The channel of the guest this process is. Unless told otherwise, a power off SIGTERMs this process."""
        env = os.environ if environ is None else environ
        path, token = env.get(ENV_CHANNEL), env.get(ENV_TOKEN)
        if not path or not token:
            raise GuestChannelError("not_a_guest", f"{ENV_CHANNEL} and {ENV_TOKEN} are not set: not a VM's guest")
        if on_power_off is None:
            def on_power_off():
                os.kill(os.getpid(), signal.SIGTERM)
        return cls(path, token, timeout=timeout, on_power_off=on_power_off)

    def open_another(self, **kwargs) -> GuestChannel:
        """A second connection for the same guest (e.g. one per event loop); it does not fire `on_power_off`."""
        return GuestChannel(self.path, self._token, timeout=kwargs.pop("timeout", self.timeout), **kwargs)

    @property
    def closed(self) -> bool:
        return self.closed_event.is_set()

    @property
    def vm_name(self) -> str | None:
        return self.info.get("name")

    # -- guestinfo ----------------------------------------------------------------------------------------------
    def get(self, key: str, default: str | None = None) -> str | None:
        """A guestinfo key's value; `default` when it is missing or hidden from the guest."""
        value = self._request("get", key=key).get("value")
        return default if value is None else value

    def items(self, prefix: str = GUESTINFO_PREFIX) -> dict[str, str]:
        """Every guest-visible key starting with `prefix`, with its value, in one round trip."""
        return dict(self._request("items", prefix=prefix).get("items") or {})

    def set(self, key: str, value: str) -> None:
        """Write one key; ReadOnlyKey when the guest may not write it."""
        self._request("set", values={key: str(value)}, strict=True)

    def update(self, values: dict[str, str], *, strict: bool = False) -> list[str]:
        """Write many keys in one change. Not strict: keys the guest may not write are skipped and returned (VIC's
        GuestInfoSink); strict: nothing is written if any is not writable (ReadOnlyKey)."""
        if not values:
            return []
        result = self._request("set", values={k: str(v) for k, v in values.items()}, strict=strict)
        return list(result.get("skipped") or [])

    # -- devices ------------------------------------------------------------------------------------------------
    def disks(self) -> list[Disk]:
        return [Disk.from_wire(d) for d in self._request("disks").get("disks") or []]

    def disk(self, *, file: str | None = None, label: str | None = None, key: int | None = None) -> Disk | None:
        """The attached disk with that datastore path, filesystem label or device key, if any."""
        for disk in self.disks():
            if _matches(disk, file, label, key):
                return disk
        return None

    def wait_for_disk(self, predicate: Callable[[Disk], bool] | None = None, *, file: str | None = None,
                      label: str | None = None, key: int | None = None, timeout: float = 30.0,
                      interval: float = 0.05) -> Disk:
        """Wait until a matching disk is attached (as a guest waits for a hot-added disk to show up).

        Raises errors.Timeout after `timeout` seconds, ChannelClosed if the VM powers off meanwhile.
        """
        deadline = time.monotonic() + timeout
        delay = interval
        while True:
            for disk in self.disks():
                if _matches(disk, file, label, key) and (predicate is None or predicate(disk)):
                    return disk
            left = deadline - time.monotonic()
            if left <= 0:
                wanted = ", ".join(f"{n}={v!r}" for n, v in (("file", file), ("label", label), ("key", key))
                                   if v is not None) or "the predicate"
                raise errors.Timeout(f"no disk matching {wanted} appeared within {timeout:g}s")
            if self.closed_event.wait(min(delay, left)):
                raise ChannelClosed("closed", "the VM powered off while waiting for a disk")
            delay = min(delay * 2, 0.5)  # hot-adds are quick; back off for the slow ones

    def serial_ports(self) -> list[dict]:
        """The VM's serial ports: key, label, connected, kind (file: path; uri: uri, proxy_uri, direction)."""
        return list(self._request("serial_ports").get("ports") or [])

    # -- identity, state, power ---------------------------------------------------------------------------------
    def accept_logins(self, logins: Iterable) -> None:
        """The credentials guest operations must present; replaces the previous list. Items: a user name (any
        password), a (user, password) pair or {"username", "password"}; user "*" is anyone."""
        clean = []
        for login in logins:
            if isinstance(login, str):
                clean.append({"username": login, "password": None})
            elif isinstance(login, dict):
                clean.append({"username": login["username"], "password": login.get("password")})
            else:
                username, password = login
                clean.append({"username": username, "password": password})
        self._request("accept_logins", logins=clean)

    def report(self, ip_address: str | None = None, host_name: str | None = None,
               full_name: str | None = None) -> None:
        """What Tools reports: the VM's guest.ipAddress, hostName and guestFullName."""
        self._request("report", ip_address=ip_address, host_name=host_name, full_name=full_name)

    def power_off(self) -> None:
        """Halt: the VM powers off (and this process is then stopped like any guest of a powered-off VM)."""
        try:
            self._request("power_off")
        except ChannelClosed:
            pass  # the answer and the close race; either way the VM is going down

    def ping(self) -> None:
        self._request("ping")

    # -- guest operations ---------------------------------------------------------------------------------------
    def subscribe(self) -> None:
        """Take guest operations on this connection (the VM's guestOperationsReady becomes true)."""
        if not self._subscribed:
            self._request("subscribe")
            self._subscribed = True

    def operations(self, timeout: float | None = None) -> Iterator[Operation]:
        """Incoming operations, one at a time; ends when the channel closes, or after `timeout` idle seconds."""
        self.subscribe()
        while True:
            try:
                op = self._ops.get(timeout=timeout)
            except queue.Empty:
                return
            if op is None:
                self._ops.put(None)  # wake any other reader as well
                return
            yield op

    def serve_operations(self, handler: OperationHandler) -> threading.Thread:
        """Run `handler(op)` for each operation on a thread of its own, and answer for it when it doesn't:

        start: a returned int (None = 0) is the exit code (with an implicit `started` first when it didn't call
        it); an exception rejects the operation with its text, or exits 1 once started; `op.detach()` keeps the
        program running past the handler. terminate: returning means `done`, an exception rejects it.
        """
        self.subscribe()

        def run(op: Operation):
            try:
                result = handler(op)
            except Exception as err:
                try:
                    if not op.answered:
                        op.reject(str(err) or type(err).__name__)
                    elif op.kind == "start" and not op.detached:
                        op.exited(1)
                except GuestChannelError:
                    pass
                return
            try:
                if op.kind != "start":
                    op.done()
                elif not op.detached:
                    op.exited(result if isinstance(result, int) and not isinstance(result, bool) else 0)
            except GuestChannelError:
                pass  # powered off meanwhile (a `kill` ends that way)

        def loop():
            for op in self.operations():
                threading.Thread(target=run, args=(op,), name=f"guest-op-{op.id}", daemon=True).start()

        thread = threading.Thread(target=loop, name="guest-operations", daemon=True)
        thread.start()
        return thread

    def process_exited(self, pid: int, exit_code: int) -> None:
        """A process a guest operation started (answered `started(pid)`) has ended."""
        self._request("process_exited", pid=int(pid), exit_code=int(exit_code))

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Block until the channel closes (the VM powered off); False on timeout."""
        return self.closed_event.wait(timeout)

    # -- plumbing -----------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close this connection without powering anything off (`on_power_off` does not run)."""
        self._closing = True
        self._shutdown()

    def __enter__(self) -> GuestChannel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, op: str, /, **fields) -> dict:
        if self.closed:
            raise ChannelClosed("closed", "the guest channel is closed")
        request_id = next(self._ids)
        slot: list = [threading.Event(), None]
        with self._lock:
            self._waiting[request_id] = slot
        line = (json.dumps({"id": request_id, "op": op, **fields}, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            with self._send_lock:
                self._sock.sendall(line)
            if not slot[0].wait(self.timeout):
                raise GuestChannelError("timeout", f"no answer to {op} within {self.timeout:g}s")
        except OSError as err:
            self._shutdown()
            raise ChannelClosed("closed", f"guest channel failed: {err}") from None
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)
        reply = slot[1]
        if reply is None:
            raise ChannelClosed("closed", "the guest channel closed")
        if not reply.get("ok"):
            code, message = reply.get("error") or "error", reply.get("message") or ""
            if code == "read_only":
                raise ReadOnlyKey(code, message)
            if code in ("powered_off", "invalid_token"):
                raise ChannelClosed(code, message)
            raise GuestChannelError(code, message)
        return reply.get("result") or {}

    def _read_loop(self) -> None:
        buffer = b""
        try:
            while not self.closed:
                readable, _, _ = select.select([self._sock], [], [], 0.5)
                if not readable:
                    continue
                chunk = self._sock.recv(65536)
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        self._on_message(json.loads(line))
        except (OSError, ValueError):
            pass
        self._shutdown()

    def _on_message(self, msg: dict) -> None:
        event = msg.get("event")
        if event == "operation":
            self._on_operation(Operation(self, msg["operation"]))
            return
        if event == "power_off":
            self._fire_power_off()
            return
        if event is not None:
            return  # an event of a newer protocol: ignore
        with self._lock:
            slot = self._waiting.get(msg.get("id"))
        if slot is not None:
            slot[1] = msg
            slot[0].set()

    def _on_operation(self, op: Operation) -> None:
        if op.kind == "environment":
            # ReadEnvironmentVariableInGuest: answered here, without the channel's own secrets
            env = {k: v for k, v in os.environ.items() if k not in (ENV_CHANNEL, ENV_TOKEN)}
            names = list(op.data.get("names") or []) or sorted(env)
            values = [f"{name}={env[name]}" for name in names if name in env]
            threading.Thread(target=self._reply_quietly, args=(op, "environment", {"env": values}),
                             daemon=True).start()
            return
        self._ops.put(op)

    @staticmethod
    def _reply_quietly(op: Operation, status: str, fields: dict) -> None:
        try:
            op._reply(status, **fields)
        except GuestChannelError:
            pass

    def _fire_power_off(self) -> None:
        with self._lock:
            if self._power_off_fired or self._closing:
                return
            self._power_off_fired = True
        if self.on_power_off is not None:
            try:
                self.on_power_off()
            except Exception:
                pass

    def _shutdown(self) -> None:
        with self._lock:
            if self.closed_event.is_set():
                return
            self.closed_event.set()
            waiting = list(self._waiting.values())
        for slot in waiting:
            slot[0].set()
        self._ops.put(None)
        for step in (lambda: self._sock.shutdown(socket.SHUT_RDWR), self._sock.close):
            try:
                step()
            except OSError:
                pass
        self._fire_power_off()  # a channel that drops is a VM that is gone


def _matches(disk: Disk, file: str | None, label: str | None, key: int | None) -> bool:
    return ((file is None or disk.file == file) and (label is None or disk.label == label)
            and (key is None or disk.key == key))
