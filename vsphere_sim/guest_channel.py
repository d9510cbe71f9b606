"""The guest side of the sim's guest channel: what a guest program imports to reach its VM.

A guest program (the VCH appliance, the tether) runs as a child process of the sim when its VM powers on; this is its
only way to its VM, the way VMware Tools' RPC is on a real ESX: read and write guestinfo keys, take guest operations
(StartProgramInGuest and friends), find its disks and serial ports, power its VM off. It needs nothing but the standard
library (no pyVmomi; guests are plain programs). The wire protocol is described in `vsphere_sim/guest_transport.py`.

    from vsphere_sim.guest_channel import GuestChannel

    channel = GuestChannel.from_env()                  # VSPHERE_SIM_GUEST_CHANNEL / VSPHERE_SIM_GUEST_TOKEN
    my_id = channel.get("guestinfo.vice./common/id")   # None when missing (or hidden from the guest)
    channel.set("guestinfo.vice..sessions|x.started", "true")
    channel.accept_logins([my_id])                     # guest operations must log in as my_id (any password)

    def handle(op):                                    # runs on its own thread, one per operation
        if op.program == "reload":
            op.started()                               # StartProgramInGuest returns its pid now
            reload_config()
            return 0                                   # the process's exit code, for ListProcessesInGuest
        if op.program == "kill":
            os.kill(child_pid, signal.Signals["SIG" + op.arguments].value)
            return 0
        op.reject(f'unknown command "{op.program}"')  # StartProgramInGuest fails (GuestOperationsFault)

    channel.serve_operations(handle)

Scopes (as Tools enforces them): only keys starting with `guestinfo.` exist for the guest; it can't write a key that
contains `/` (`set` raises `ReadOnlyKey`; `update` skips such keys and returns them, like VIC's sink).

Power off: when the VM powers off (or the sim goes away) the channel closes and `on_power_off` runs once; channels made
by `from_env()` default to sending SIGTERM to this process, and the sim SIGKILLs what is left a few seconds later.
From asyncio, wrap the channel in `AsyncGuestChannel`, or call the blocking methods with `asyncio.to_thread`.
"""
from __future__ import annotations

import asyncio
import errno
import itertools
import json
import os
import queue
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .guest_wire import ENV_CHANNEL, ENV_DIR, ENV_TOKEN, PROTOCOL, close_socket, encode, read_lines

DEFAULT_TIMEOUT = 30.0

__all__ = ["GuestChannel", "AsyncGuestChannel", "Operation", "GuestChannelError", "ChannelClosed", "ReadOnlyKey",
           "in_guest", "ENV_CHANNEL", "ENV_TOKEN", "ENV_DIR"]


class GuestChannelError(Exception):
    """A request the sim refused, or a channel failure; `code` is the protocol's error code."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class ChannelClosed(GuestChannelError):
    """The channel is gone: the VM was powered off, the sim stopped, or `close()` was called."""


class ReadOnlyKey(GuestChannelError, PermissionError):
    """The guest tried to write a key it may not write (hidden, or read-only: it contains `/`)."""


def in_guest(environ=None) -> bool:
    """Whether this process runs as a sim guest (its environment names a guest channel)."""
    env = os.environ if environ is None else environ
    return bool(env.get(ENV_CHANNEL) and env.get(ENV_TOKEN))


class Operation:
    """One guest operation sent to this guest. `kind` is `start` or `terminate`.

    start: `program`, `arguments` (one string, as vSphere passes it), `working_directory`, `env` (["K=V", ...]),
    `user`. Answer with `started(pid=None)` then `exited(code)`, or `reject(message, fault)` before starting.
    terminate: `pid`, `user`. Answer with `done()`, or `reject("...", fault="GuestProcessNotFound")`.
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
        self.names: list[str] = list(data.get("names") or [])
        self.answered = False
        self.finished = False
        self.detached = False

    def __repr__(self):
        return f"<Operation {self.id} {self.kind} {self.program!r} {self.arguments!r}>"

    def _reply(self, status: str, **fields) -> dict:
        return self.channel._request("op_reply", operation=self.id, status=status, **fields)

    def started(self, pid: int | None = None) -> int:
        """The program runs: StartProgramInGuest returns `pid` (the sim picks one when None); returns the pid."""
        if self.answered:
            raise RuntimeError("operation already answered")
        self.answered = True
        fields = {"pid": pid} if pid is not None else {}
        self.pid = self._reply("started", **fields).get("pid", pid)
        return self.pid

    def exited(self, exit_code: int = 0):
        """The program ended (after `started`, or instead of it for one that ends at once)."""
        if self.finished:
            return
        self.finished = True
        if not self.answered:
            self.answered = True
            self._reply("exited", exit_code=int(exit_code))
        else:
            self.channel._request("op_reply", operation=self.id, status="exited", exit_code=int(exit_code),
                                  **({"pid": self.pid} if self.pid is not None else {}))

    def reject(self, message: str, fault: str = "GuestOperationsFault"):
        """Refuse the operation: the vSphere call fails with `fault` (GuestOperationsFault, FileNotFound,
        GuestPermissionDenied, GuestProcessNotFound, OperationNotSupportedByGuest, InvalidGuestLogin)."""
        if self.answered:
            raise RuntimeError("operation already answered")
        self.answered = self.finished = True
        self._reply("rejected", fault=fault, message=message)

    def done(self):
        """A terminate was carried out."""
        if not self.answered:
            self.answered = self.finished = True
            self._reply("done")

    def detach(self):
        """After `started`: the program outlives the handler; call `exited` later yourself."""
        self.detached = True


class GuestChannel:
    def __init__(self, path: str, token: str, timeout: float = DEFAULT_TIMEOUT,
                 on_power_off: Callable[[], Any] | None = None):
        self.path = path
        self.token = token
        self.timeout = timeout
        self.on_power_off = on_power_off
        self.info: dict = {}
        self.closed = False
        self._ids = itertools.count(1)
        self._waiting: dict[int, list] = {}  # id -> [Event, reply]
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._ops: queue.Queue = queue.Queue()
        self._subscribed = False
        self._power_off_done = False
        self._closing = False
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError as err:
            self.sock.close()
            raise ChannelClosed("unreachable", f"cannot connect to {path}: {err}") from None
        self._reader = threading.Thread(target=self._read_loop, name="guest-channel-reader", daemon=True)
        self._reader.start()
        try:
            self.info = self._request("hello", token=token, protocol=PROTOCOL)
        except GuestChannelError:
            self.close()
            raise

    @classmethod
    def from_env(cls, environ=None, timeout: float = DEFAULT_TIMEOUT,
                 on_power_off: Callable[[], Any] | None = None) -> GuestChannel:
        """The channel of the guest this process is; by default a power off sends SIGTERM to this process."""
        env = os.environ if environ is None else environ
        path, token = env.get(ENV_CHANNEL), env.get(ENV_TOKEN)
        if not path or not token:
            raise GuestChannelError("not_a_guest", f"{ENV_CHANNEL} and {ENV_TOKEN} are not set")
        if on_power_off is None:
            def on_power_off():
                os.kill(os.getpid(), signal.SIGTERM)
        return cls(path, token, timeout=timeout, on_power_off=on_power_off)

    # -- guestinfo ----------------------------------------------------------------------------------------------
    def get(self, key: str, default: str | None = None) -> str | None:
        """The value of a guestinfo key; `default` when it is missing or hidden from the guest."""
        value = self._request("get", key=key)["value"]
        return default if value is None else value

    def items(self, prefix: str = "guestinfo.") -> dict[str, str]:
        """Every guest-visible key starting with `prefix`, with its value (one round trip)."""
        return self._request("items", prefix=prefix)["items"]

    def keys(self, prefix: str = "guestinfo.") -> list[str]:
        return sorted(self.items(prefix))

    def set(self, key: str, value: str) -> None:
        """Write one key; ReadOnlyKey when the guest may not write it."""
        self._request("set", values={key: str(value)}, strict=True)

    def update(self, values: dict[str, str]) -> list[str]:
        """Write many keys in one change; keys the guest may not write are skipped and returned (VIC's sink)."""
        if not values:
            return []
        result = self._request("set", values={k: str(v) for k, v in values.items()}, strict=False)
        return result["skipped"]

    # -- devices ------------------------------------------------------------------------------------------------
    def disks(self) -> list[dict]:
        """The VM's disks: key, unit_number, controller_key, device_label, label (filesystem label or None), file,
        disk_mode, capacity_kb, uuid, chain ([{file, descriptor, data}], base first; data is the real path)."""
        return self._request("disks")["disks"]

    def disk_by_label(self, label: str) -> dict | None:
        for disk in self.disks():
            if disk.get("label") == label:
                return disk
        return None

    def serial_ports(self) -> list[dict]:
        """The VM's serial ports: key, label, connected, start_connected, kind (file: file, path; uri: uri,
        proxy_uri, direction, socket; pipe: pipe, endpoint; device: device)."""
        return self._request("serial_ports")["ports"]

    def open_serial(self, port: dict | int) -> socket.socket:
        """Open a network-backed serial port (an entry of `serial_ports()`, or its key): a connected stream socket
        that is the port's ttyS<n>, bytes both ways unchanged. Opening the port again replaces this socket (it reads
        EOF), as does the port's disconnect or the VM's power off. Raises OSError (ENODEV) when the port is not a
        connected URI port."""
        if not isinstance(port, dict):
            port = next((p for p in self.serial_ports() if p.get("key") == port), {})
        path = port.get("socket")
        if not path:
            raise OSError(errno.ENODEV, f"serial port {port.get('key')} is not a connected network port")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            raise
        return sock

    # -- identity and state -------------------------------------------------------------------------------------
    def accept_logins(self, logins) -> None:
        """Credentials guest operations must present. Items: a username (any password), a (username, password)
        pair, or {"username", "password"}; username "*" accepts anyone. Replaces the previous list."""
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
        """What Tools would report: shown as the VM's guest.ipAddress / hostName / guestFullName."""
        self._request("report", ip_address=ip_address, host_name=host_name, full_name=full_name)

    def power_off(self) -> None:
        """Halt: the VM powers off (and this process is then stopped like any guest of a powered-off VM)."""
        self._request("power_off")

    def ping(self) -> None:
        self._request("ping")

    # -- guest operations ---------------------------------------------------------------------------------------
    def subscribe(self) -> None:
        """Take guest operations on this channel (the VM's guestOperationsReady becomes true)."""
        if not self._subscribed:
            self._request("subscribe")
            self._subscribed = True

    def operations(self, timeout: float | None = None) -> Iterator[Operation]:
        """Incoming operations, one at a time (blocking); ends when the channel closes, or after `timeout`
        seconds without one. Answer each yourself (`started`/`exited`, `reject`, `done`)."""
        self.subscribe()
        while True:
            try:
                op = self._ops.get(timeout=timeout)
            except queue.Empty:
                return
            if op is None:
                self._ops.put(None)  # wake any other reader too
                return
            yield op

    def serve_operations(self, handler: Callable[[Operation], Any]) -> threading.Thread:
        """Run `handler(op)` for each operation, each on its own thread, and answer for it when it doesn't:

        start: returning an int (or None = 0) reports the program ended with that exit code (after an implicit
        `started` when it didn't call it); raising rejects it, or exits 1 when it had started. `op.detach()` keeps
        the process running past the handler. terminate: returning means `done`; raising rejects it.
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
                if op.kind == "start":
                    if not op.detached:
                        op.exited(result if isinstance(result, int) and not isinstance(result, bool) else 0)
                else:
                    op.done()
            except GuestChannelError:
                pass

        def loop():
            for op in self.operations():
                threading.Thread(target=run, args=(op,), name=f"guest-op-{op.id}", daemon=True).start()

        thread = threading.Thread(target=loop, name="guest-operations", daemon=True)
        thread.start()
        return thread

    def process_exited(self, pid: int, exit_code: int) -> None:
        """A process a guest operation started has ended (when it was answered with `started(pid)` elsewhere)."""
        self._request("process_exited", pid=int(pid), exit_code=int(exit_code))

    # -- plumbing -----------------------------------------------------------------------------------------------
    def close(self) -> None:
        self._closing = True
        self._shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _request(self, op: str, /, **fields) -> dict:
        if self.closed:
            raise ChannelClosed("closed", "the guest channel is closed")
        request_id = next(self._ids)
        slot = [threading.Event(), None]
        with self._lock:
            self._waiting[request_id] = slot
        data = encode({"id": request_id, "op": op, **fields})
        try:
            with self._send_lock:
                self.sock.sendall(data)
            if not slot[0].wait(self.timeout):
                raise GuestChannelError("timeout", f"no answer to {op} within {self.timeout}s")
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
            code, message = reply.get("error", "error"), reply.get("message", "")
            if code == "read_only":
                raise ReadOnlyKey(code, message)
            if code in ("powered_off", "invalid_token"):
                raise ChannelClosed(code, message)
            raise GuestChannelError(code, message)
        return reply.get("result") or {}

    def _read_loop(self):
        read_lines(self.sock, lambda line: self._on_message(json.loads(line)), lambda: self.closed)
        self._shutdown()

    def _on_message(self, msg: dict):
        if "event" in msg:
            if msg["event"] == "operation":
                self._on_operation(Operation(self, msg["operation"]))
            elif msg["event"] == "power_off":
                self._powered_off()
            return
        with self._lock:
            slot = self._waiting.get(msg.get("id"))
        if slot is not None:
            slot[1] = msg
            slot[0].set()

    def _on_operation(self, op: Operation):
        if op.kind == "environment":
            # Answered by the library itself: this program's environment without the channel's secrets.
            env = {k: v for k, v in os.environ.items() if k not in (ENV_CHANNEL, ENV_TOKEN)}
            wanted = op.names or sorted(env)
            values = [f"{name}={env[name]}" for name in wanted if name in env]
            threading.Thread(target=self._answer_quietly, args=(op, "environment", {"env": values}),
                             daemon=True).start()
            return
        self._ops.put(op)

    def _answer_quietly(self, op: Operation, status: str, fields: dict):
        try:
            op._reply(status, **fields)
        except GuestChannelError:
            pass

    def _powered_off(self):
        if self._power_off_done or self._closing:
            return
        self._power_off_done = True
        if self.on_power_off is not None:
            try:
                self.on_power_off()
            except Exception:
                pass

    def _shutdown(self):
        with self._lock:
            if self.closed:
                return
            self.closed = True
            waiting = list(self._waiting.values())
        for slot in waiting:
            slot[0].set()
        self._ops.put(None)
        close_socket(self.sock)
        self._powered_off()


class AsyncGuestChannel:
    """asyncio face of a GuestChannel: each blocking method becomes a coroutine run in a worker thread, and
    `operations()` is an async iterator.

        channel = AsyncGuestChannel(GuestChannel.from_env())
        value = await channel.get("guestinfo.x")
        async for op in channel.operations(): ...
    """

    def __init__(self, channel: GuestChannel):
        self.channel = channel

    def __getattr__(self, name):
        attr = getattr(self.channel, name)
        if not callable(attr) or name in ("operations", "serve_operations", "close"):
            return attr

        async def call(*args, **kwargs):
            return await asyncio.to_thread(attr, *args, **kwargs)
        return call

    async def operations(self):
        await asyncio.to_thread(self.channel.subscribe)
        while True:
            op = await asyncio.to_thread(self.channel._ops.get)
            if op is None:
                self.channel._ops.put(None)
                return
            yield op

    def close(self):
        self.channel.close()
