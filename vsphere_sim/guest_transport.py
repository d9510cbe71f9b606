"""The sim's end of the guest channel: the Unix socket guests connect to, its connections, and the protocol.

`guests.py` (the supervisor) answers the requests; `guest_channel.py` is the guest's end; `guest_wire.py` is the
framing both ends share.

The guest channel protocol (version 1)
--------------------------------------
One Unix stream socket per sim; a guest may open several connections. Each message is one JSON object on one line
(UTF-8, `\\n`-terminated). The guest sends requests `{"id": N, "op": NAME, ...}`; the sim answers each with
`{"id": N, "ok": true, "result": {...}}` or `{"id": N, "ok": false, "error": CODE, "message": TEXT}`. The sim also
sends events `{"event": NAME, ...}` at any time. The first request on a connection must be `hello`.

Requests:
  hello {token, protocol: 1}    -> {vm, name, uuid, instance_uuid, version}       (error `invalid_token`)
  get {key}                     -> {value: str | null}     null: missing, or hidden from the guest
  items {prefix}                -> {items: {key: value}}   every guest-visible key starting with prefix
  set {values: {k: v}, strict}  -> {written: [...], skipped: [...]}; strict: refuse all (`read_only`) if any key
                                   is not writable, else write the writable ones and name the rest in `skipped`
  disks                         -> {disks: [...]}          see `guest_vm.describe_disks`
  serial_ports                  -> {ports: [...]}          see `guest_vm.describe_serial_ports`
  accept_logins {logins: [{username, password|null}]}      the guest credentials guest operations must present
                                   (password null: any password; username "*": any user); replaces the list
  report {ip_address, host_name, full_name}                shown in the VM's `guest` properties
  subscribe                     -> {}   this connection takes guest operations (`guestOperationsReady` = true)
  op_reply {operation, status, pid?, exit_code?, fault?, message?, env?}   operation: the operation's id
                                   status: started | exited | rejected | done | environment
  process_exited {pid, exit_code}         a process started by a guest operation ended
  power_off                     -> {}   the guest halts: the VM powers off
  ping                          -> {}

Events:
  operation {operation: {id, kind, ...}}   kind `start`: program, arguments, working_directory, env, user;
                                           kind `terminate`: pid, user; kind `environment`: names, user.
                                           Answer with `op_reply` within `op_timeout` seconds.
  power_off {}                             the VM was powered off; the connection closes after it.

Error codes: `invalid_token` (hello; the connection closes), `bad_request`, `unknown_op`, `read_only`, `powered_off`
(the boot was revoked: every later request fails so), `internal` (a sim bug; the connection stays).

Guestinfo scopes, as VMware Tools enforces them: the guest sees only keys starting with `guestinfo.` (others, such as
VIC's hidden `common/name`, are invisible and unwritable), and it can't write a `guestinfo.` key containing `/` (VIC's
read-only scope, `guestinfo.vice./common/id`); read-write keys (`guestinfo.vice..sessions|x.status`) it can.

Threads: one accepts; each connection has a reader (requests are answered on it, one at a time, in order) and a
writer (sends never block the caller: a guest that stops reading can't stall the sim).
"""
from __future__ import annotations

import json
import logging
import os
import queue
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol

from .guest_wire import close_socket, encode, read_lines

log = logging.getLogger("vsphere_sim.guests")

SOCKET_NAME = "guest-channel.sock"
MAX_LINE = 16 * 1024 * 1024
# a handler's answer meaning "no reply: I answered myself" (a power off answers before it closes the connection)
NO_REPLY = object()
_CLOSE = object()


class GuestChannelRefused(Exception):
    """A guest request refused with a protocol error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class RequestHandler(Protocol):
    def handle(self, connection: Connection, msg: dict) -> dict | object:
        """The result of a request (or NO_REPLY); raise GuestChannelRefused to refuse it."""

    def connection_closed(self, connection: Connection) -> None: ...


class ChannelServer:
    """The Unix socket guests connect to, at `<workdir>/guest-channel.sock` (or in a short temp dir when that path
    is too long for a socket)."""

    def __init__(self, workdir: Path, handler: RequestHandler):
        self.handler = handler
        self._tmpdir = None
        path = Path(workdir) / SOCKET_NAME
        if len(str(path)) > 100:  # sun_path is 108 bytes
            self._tmpdir = tempfile.mkdtemp(prefix="vsim-")
            path = Path(self._tmpdir) / SOCKET_NAME
        self.path = str(path)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o600)
        self.sock.listen(128)
        self.sock.settimeout(0.5)
        self.closed = False
        self.connections: set[Connection] = set()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept_loop, name="guest-channel", daemon=True)
        self.thread.start()

    def _accept_loop(self):
        while not self.closed:
            try:
                sock, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self.closed:
                    return
                time.sleep(0.05)
                continue
            connection = Connection(self, sock)
            with self._lock:
                self.connections.add(connection)
            connection.start()

    def forget(self, connection: Connection):
        with self._lock:
            self.connections.discard(connection)

    def close(self):
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
        with self._lock:
            connections = list(self.connections)
        for connection in connections:
            connection.close()
        self.thread.join(2.0)
        try:
            os.unlink(self.path)
        except OSError:
            pass
        if self._tmpdir:
            try:
                os.rmdir(self._tmpdir)
            except OSError:
                pass


class Connection:
    """One guest connection. `instance` is the guest boot that said hello on it (set by the handler)."""

    def __init__(self, server: ChannelServer, sock: socket.socket):
        self.server = server
        self.handler = server.handler
        self.sock = sock
        self.sock.settimeout(30.0)  # bounds a send to a guest that stopped reading
        self.instance = None
        self.closed = False
        self._out: queue.Queue = queue.Queue()
        self._close_lock = threading.Lock()

    def start(self):
        threading.Thread(target=self._read_loop, name="guest-conn-r", daemon=True).start()
        threading.Thread(target=self._write_loop, name="guest-conn-w", daemon=True).start()

    # -- sending (never blocks the caller) ------------------------------------------------------------------------
    def send(self, message: dict):
        if not self.closed:
            self._out.put(message)

    def reply(self, request_id, result: dict):
        self.send({"id": request_id, "ok": True, "result": result})

    def close_after_send(self):
        self._out.put(_CLOSE)

    def _write_loop(self):
        while True:
            message = self._out.get()
            if message is _CLOSE or self.closed:
                break
            try:
                self.sock.sendall(encode(message))
            except OSError:
                break
        self.close()

    # -- receiving ----------------------------------------------------------------------------------------------
    def _read_loop(self):
        try:
            read_lines(self.sock, self._dispatch, lambda: self.closed, MAX_LINE)
        finally:
            self.close()

    def _dispatch(self, line: bytes):
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
        except ValueError as err:
            self.send({"id": None, "ok": False, "error": "bad_request", "message": f"bad JSON: {err}"})
            return
        request_id = msg.get("id")
        try:
            result = self.handler.handle(self, msg)
        except GuestChannelRefused as err:
            self.send({"id": request_id, "ok": False, "error": err.code, "message": str(err)})
            if err.code == "invalid_token":
                self.close_after_send()
            return
        except Exception as err:  # a sim bug: answer, log, keep serving
            log.exception("guest channel: %s failed", msg.get("op"))
            self.send({"id": request_id, "ok": False, "error": "internal", "message": f"{type(err).__name__}: {err}"})
            return
        if result is not NO_REPLY:
            self.reply(request_id, result)

    def close(self):
        with self._close_lock:
            if self.closed:
                return
            self.closed = True
        self._out.put(_CLOSE)
        close_socket(self.sock)
        self.server.forget(self)
        try:
            self.handler.connection_closed(self)
        except Exception:
            log.exception("guest channel: closing a connection failed")
