"""A running VM's network-backed serial ports, connected as ESX connects them, and the guest's end of each.

The model
---------
A `VirtualSerialPort` with a `URIBackingInfo` of direction `client` (VIC's attach port: serviceURI
`tcp://127.0.0.1:2379`, proxyURI `telnet://<vch>:2377`) is, on ESX, a TCP connection the VMX opens to the service URI
while the VM runs and the port is connected; the guest's ttyS<n> is that byte stream. Here, for every such port of a
powered-on VM whose `connectable.connected` is true (set at power on from `startConnected`, or by a ReconfigVM edit
while the VM runs):

- the sim listens on a Unix stream socket, the guest's end of the port: `<workdir>/guests/<vm moid>/serial-<key>.sock`
  (the guest's scratch directory; in a short temp directory when that path is too long for a socket). The guest
  channel's `serial_ports` request gives it as `socket`. At most one guest connection at a time: a new one replaces
  the old, as reopening /dev/ttyS<n> would.
- the sim connects to the service URI: `tcp://host:port`, and `telnet://host:port` as raw TCP (no option
  negotiation). The proxy URI is ignored: there is no vSPC in the sim, the service URI is reached directly (for VIC's
  port, `127.0.0.1:2379` is the attach server on the same host). While the remote end isn't listening the connect is
  retried with backoff (`retry_initial` doubling to `retry_max` seconds), as ESX keeps trying while the port is
  connected; when the remote end closes, a fresh connection is made (the VCH may restart) and the guest's stream
  simply continues.
- bytes flow both ways unchanged. While one side is absent (no guest connection yet, or the remote end down), what the
  other side sends is held up to `buffer_limit` bytes and delivered when it appears; beyond that it is dropped, so a
  writer never blocks on a line nobody listens to. When both are there, a slow reader holds the writer back (flow
  control). Bytes held for a remote connection that closes are lost, as in flight on a real serial line.
- power off, reset, suspend, the port's disconnect or removal by ReconfigVM, the VM's destroy or unregister, and the sim
  closing close both sides: the guest reads EOF, the remote end sees the connection close, the socket file goes.

Ports of direction `server` (ESX listening on the URI), pipe and device backings are only described, not connected.
A file-backed port's file (`path` in `serial_ports`) is created, with its folder, when the port connects; the guest
appends to it (VIC's `answer.msg.serial.file.open=Append`).

Threads and locking: `sync(vm)` and `close_vm` are called under `sim.lock` (by the supervisor's power hooks and by
ReconfigVM) and never block: they bind or unlink the socket file and hand the rest to one selector thread,
`serial-ports`, which owns every socket, connect and retry. `close()` stops that thread and closes everything.
"""
from __future__ import annotations

import errno
import logging
import os
import queue
import selectors
import socket
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from pyVmomi import vim

log = logging.getLogger("vsphere_sim.serial")

SCHEMES = ("tcp", "telnet")
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def parse_service_uri(uri: str | None) -> tuple[str, int] | None:
    """(host, port) of `tcp://host:port` or `telnet://host:port` (IPv6 in brackets); None for anything else."""
    if not uri:
        return None
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in SCHEMES or not parts.hostname or not port:
        return None
    return parts.hostname, port


class Bridge:
    """One connected URI port: its guest socket, its remote connection and what is held between them. Everything but
    the constructor's fields belongs to the selector thread."""

    def __init__(self, moid: str, key: int, uri: str, address: tuple[str, int], path: str, listener: socket.socket):
        self.moid, self.key, self.uri, self.address, self.path = moid, key, uri, address, path
        self.listener = listener
        self.guest: socket.socket | None = None
        self.remote: socket.socket | None = None
        self.connecting = False
        self.to_guest = bytearray()
        self.to_remote = bytearray()
        self.retry_at = 0.0  # monotonic time of the next connect attempt while there is no remote connection
        self.backoff = 0.0
        self.connected_at: float | None = None
        self.attempts = 0
        self.remote_connects = 0  # remote connections made so far (for status and tests)
        self.guest_connects = 0
        self.closed = False

    def __repr__(self):
        return f"<Bridge {self.moid} serial {self.key} -> {self.uri}>"

    @property
    def remote_connected(self) -> bool:
        return self.remote is not None and not self.connecting

    def status(self) -> dict:
        return {"uri": self.uri, "socket": self.path, "remote_connected": self.remote_connected,
                "guest_connected": self.guest is not None, "remote_connects": self.remote_connects,
                "guest_connects": self.guest_connects, "closed": self.closed}


class SerialPorts:
    """Every running VM's connected URI serial ports (see the module docstring)."""

    retry_initial = 0.05   # seconds before the first connect retry; doubled per failure ...
    retry_max = 1.0        # ... up to this
    buffer_limit = 64 * 1024
    chunk = 64 * 1024

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self._lock = threading.Lock()
        self._bridges: dict[tuple[str, int], Bridge] = {}
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._stop: threading.Event | None = None  # the running selector thread's
        self._local = threading.local()  # .selector: the selector thread's own
        self._tmpdir: str | None = None

    # -- called under sim.lock ------------------------------------------------------------------------------------
    def sync(self, vm) -> None:
        """Bring the VM's bridges in line with its power state and serial ports; create connected file ports' files."""
        wanted: dict[int, tuple[str, tuple[str, int]]] = {}
        runtime = vm.props.get("runtime")
        if runtime is not None and runtime.powerState == "poweredOn" and vm.sim.registry.find(vm.moid) is vm:
            for device in _serial_ports(vm):
                connectable = device.connectable
                if connectable is None or not connectable.connected:
                    continue
                backing = device.backing
                if isinstance(backing, vim.vm.device.VirtualSerialPort.URIBackingInfo):
                    if (backing.direction or "client") != "client":
                        continue
                    address = parse_service_uri(backing.serviceURI)
                    if address is None:
                        log.warning("%s: serial port %s: cannot connect to %r (tcp:// or telnet:// host:port only)",
                                    vm.moid, device.key, backing.serviceURI)
                        continue
                    wanted[device.key] = (backing.serviceURI, address)
                elif isinstance(backing, vim.vm.device.VirtualSerialPort.FileBackingInfo):
                    _open_file_port(vm, device)
        with self._lock:
            current = {key: b for (moid, key), b in self._bridges.items() if moid == vm.moid}
            for key, bridge in current.items():
                if key not in wanted or wanted[key][0] != bridge.uri:
                    self._remove(bridge)
            for key, (uri, address) in wanted.items():
                bridge = self._bridges.get((vm.moid, key))
                if bridge is None:
                    self._add(vm.moid, key, uri, address)

    def close_vm(self, moid: str) -> None:
        """Close every bridge of the VM (powered off, reset, destroyed)."""
        with self._lock:
            for bridge in [b for (m, _), b in self._bridges.items() if m == moid]:
                self._remove(bridge)

    # -- queries ----------------------------------------------------------------------------------------------------
    def socket_path(self, moid: str, key: int) -> str | None:
        with self._lock:
            bridge = self._bridges.get((moid, key))
            return bridge.path if bridge is not None else None

    def status(self, moid: str, key: int) -> dict | None:
        with self._lock:
            bridge = self._bridges.get((moid, key))
        return bridge.status() if bridge is not None else None

    # -- lifecycle --------------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close every bridge and stop the selector thread (the sim is closing or resetting)."""
        with self._lock:
            for bridge in list(self._bridges.values()):
                self._remove(bridge)
            thread, self._thread = self._thread, None
            if thread is not None:
                self._stop.set()
                self._wake()
        if thread is not None:
            thread.join(5.0)
            if thread.is_alive():
                log.error("serial ports: the selector thread did not stop")
        with self._lock:
            tmpdir = self._tmpdir if not self._bridges else None
            if tmpdir is not None:
                self._tmpdir = None
        if tmpdir is not None:
            try:
                os.rmdir(tmpdir)
            except OSError:
                pass

    # -- adding and removing (under self._lock) ---------------------------------------------------------------------
    def _socket_file(self, moid: str, key: int) -> str:
        path = self.workdir / "guests" / moid / f"serial-{key}.sock"
        if len(str(path)) <= 100:  # sun_path is 108 bytes
            path.parent.mkdir(parents=True, exist_ok=True)
            return str(path)
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="vsim-serial-")
        return os.path.join(self._tmpdir, f"{moid}-serial-{key}.sock")

    def _add(self, moid: str, key: int, uri: str, address: tuple[str, int]):
        path = self._socket_file(moid, key)
        _unlink(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)
            os.chmod(path, 0o600)
            listener.listen(4)
            listener.setblocking(False)
        except OSError as err:
            listener.close()
            log.error("%s: serial port %s: cannot listen on %s: %s", moid, key, path, err)
            return
        bridge = Bridge(moid, key, uri, address, path, listener)
        self._bridges[(moid, key)] = bridge
        self._ensure_thread()
        self._commands.put(("add", bridge))
        self._wake()
        log.info("%s: serial port %s connected to %s (guest end %s)", moid, key, uri, path)

    def _remove(self, bridge: Bridge):
        if self._bridges.get((bridge.moid, bridge.key)) is bridge:
            del self._bridges[(bridge.moid, bridge.key)]
        # The file goes now, so a port reconnected right away can bind the same path; the sockets close on the
        # selector thread.
        _unlink(bridge.path)
        self._commands.put(("remove", bridge))
        self._wake()
        log.info("%s: serial port %s disconnected from %s", bridge.moid, bridge.key, bridge.uri)

    def _ensure_thread(self):
        if self._thread is not None:
            return
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, _READ, None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run,
                                        args=(self._selector, self._wake_r, self._wake_w, self._stop),
                                        name="serial-ports", daemon=True)
        self._thread.start()

    def _wake(self):
        wake = self._wake_w
        if wake is None:
            return
        try:
            wake.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already awake (the pipe is full) or closing

    # -- the selector thread ----------------------------------------------------------------------------------------
    def _run(self, selector: selectors.BaseSelector, wake_r: socket.socket, wake_w: socket.socket,
             stop: threading.Event):
        bridges: set[Bridge] = set()
        self._local.selector = selector
        try:
            while True:
                timeout = self._next_timeout(bridges)
                for key, mask in selector.select(timeout):
                    if key.data is None:
                        try:
                            while wake_r.recv(4096):
                                pass
                        except (BlockingIOError, OSError):
                            pass
                        continue
                    bridge, role = key.data
                    if not bridge.closed:
                        self._event(bridge, role, mask)
                while True:
                    try:
                        command, bridge = self._commands.get_nowait()
                    except queue.Empty:
                        break
                    if command == "add":
                        bridges.add(bridge)
                        selector.register(bridge.listener, _READ, (bridge, "listen"))
                    else:
                        bridges.discard(bridge)
                        self._shut(bridge)
                if stop.is_set():
                    break
                now = time.monotonic()
                for bridge in list(bridges):
                    if bridge.remote is None and not bridge.closed and bridge.retry_at <= now:
                        self._connect(bridge)
        except Exception:
            log.exception("serial ports: the selector thread failed")
        finally:
            for bridge in bridges:
                self._shut(bridge)
            while True:  # bridges added after the last round
                try:
                    command, bridge = self._commands.get_nowait()
                except queue.Empty:
                    break
                self._shut(bridge)
            with self._lock:
                if self._wake_w is wake_w:
                    self._wake_r = self._wake_w = None
                    self._selector = None
            selector.close()
            wake_r.close()
            wake_w.close()

    def _next_timeout(self, bridges) -> float | None:
        waits = [b.retry_at for b in bridges if b.remote is None and not b.closed]
        if not waits:
            return None
        return max(0.0, min(waits) - time.monotonic())

    def _event(self, bridge: Bridge, role: str, mask: int):
        if role == "listen":
            self._accept(bridge)
        elif role == "guest":
            if mask & _WRITE:
                self._send(bridge, "guest")
            if mask & _READ and bridge.guest is not None:
                self._recv(bridge, "guest")
        elif role == "remote":
            if bridge.connecting:
                self._connected(bridge)
            else:
                if mask & _WRITE:
                    self._send(bridge, "remote")
                if mask & _READ and bridge.remote is not None:
                    self._recv(bridge, "remote")
        self._interest(bridge)

    def _accept(self, bridge: Bridge):
        try:
            sock, _ = bridge.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:
            log.debug("%r: accept failed: %s", bridge, err)
            return
        sock.setblocking(False)
        if bridge.guest is not None:  # the port reopened: the new opener has it
            self._drop(bridge, "guest")
        bridge.guest = sock
        bridge.guest_connects += 1

    def _connect(self, bridge: Bridge):
        host, port = bridge.address
        try:
            # each attempt tries the next address a name resolves to (localhost: ::1 and 127.0.0.1)
            addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            family, kind, proto, _, address = addresses[bridge.attempts % len(addresses)]
            bridge.attempts += 1
            sock = socket.socket(family, kind, proto)
        except OSError as err:
            log.debug("%r: cannot resolve %s: %s", bridge, host, err)
            self._retry(bridge)
            return
        sock.setblocking(False)
        code = sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            sock.close()
            self._retry(bridge)
            return
        bridge.remote, bridge.connecting = sock, True
        self._interest(bridge)

    def _connected(self, bridge: Bridge):
        code = bridge.remote.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code != 0:
            self._drop(bridge, "remote")
            return
        bridge.connecting = False
        bridge.connected_at = time.monotonic()
        bridge.remote_connects += 1
        log.debug("%r: connected (%d)", bridge, bridge.remote_connects)

    def _retry(self, bridge: Bridge):
        bridge.backoff = min(self.retry_max, bridge.backoff * 2 if bridge.backoff else self.retry_initial)
        bridge.retry_at = time.monotonic() + bridge.backoff

    def _recv(self, bridge: Bridge, side: str):
        sock = bridge.guest if side == "guest" else bridge.remote
        try:
            data = sock.recv(self.chunk)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(bridge, side)
            return
        peer_present = bridge.remote_connected if side == "guest" else bridge.guest is not None
        held = bridge.to_remote if side == "guest" else bridge.to_guest
        held += data
        if not peer_present and len(held) > self.buffer_limit:
            del held[self.buffer_limit:]  # nobody on the line: what doesn't fit is dropped

    def _send(self, bridge: Bridge, side: str):
        sock, held = (bridge.guest, bridge.to_guest) if side == "guest" else (bridge.remote, bridge.to_remote)
        if sock is None or not held:
            return
        try:
            sent = sock.send(held)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(bridge, side)
            return
        del held[:sent]

    def _drop(self, bridge: Bridge, side: str):
        """One side went away: a guest that closed (the next opener gets the port), or the remote end (retry)."""
        sock = bridge.guest if side == "guest" else bridge.remote
        if sock is None:
            return
        self._unregister(sock)
        sock.close()
        if side == "guest":
            bridge.guest = None
            return
        was_up = bridge.connected_at is not None and not bridge.connecting
        bridge.remote, bridge.connecting = None, False
        if was_up:
            bridge.to_remote.clear()  # in flight: lost
        if was_up and time.monotonic() - bridge.connected_at >= self.retry_max:
            bridge.backoff = 0.0  # it was up a while: the remote end restarted, try again soon
        bridge.connected_at = None
        self._retry(bridge)

    def _interest(self, bridge: Bridge):
        if bridge.closed:
            return
        limit = self.buffer_limit
        if bridge.guest is not None:
            events = 0
            if not bridge.remote_connected or len(bridge.to_remote) < limit:
                events |= _READ
            if bridge.to_guest:
                events |= _WRITE
            self._register(bridge.guest, events, (bridge, "guest"))
        if bridge.remote is not None:
            if bridge.connecting:
                events = _WRITE
            else:
                events = _READ if bridge.guest is None or len(bridge.to_guest) < limit else 0
                if bridge.to_remote:
                    events |= _WRITE
            self._register(bridge.remote, events, (bridge, "remote"))

    def _register(self, sock: socket.socket, events: int, data):
        selector = self._local.selector
        try:
            selector.get_key(sock)
        except KeyError:
            if events:
                selector.register(sock, events, data)
            return
        if events:
            selector.modify(sock, events, data)
        else:
            selector.unregister(sock)

    def _unregister(self, sock: socket.socket):
        try:
            self._local.selector.unregister(sock)
        except (KeyError, ValueError):
            pass

    def _shut(self, bridge: Bridge):
        if bridge.closed:
            return
        bridge.closed = True
        for sock in (bridge.listener, bridge.guest, bridge.remote):
            if sock is None:
                continue
            self._unregister(sock)
            try:
                if sock is not bridge.listener:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        bridge.guest = bridge.remote = None
        bridge.to_guest.clear()
        bridge.to_remote.clear()


# -- helpers -------------------------------------------------------------------------------------------------------
def _serial_ports(vm) -> list:
    if hasattr(vm, "serial_ports"):
        return list(vm.serial_ports())
    hardware = getattr(vm.props.get("config"), "hardware", None)
    return [d for d in (getattr(hardware, "device", None) or []) if isinstance(d, vim.vm.device.VirtualSerialPort)]


def _open_file_port(vm, device):
    """A connected file port's file exists (with its folder) for the guest to append to, as the VMX opens it."""
    datastores = vm.sim.datastores
    try:
        path = Path(datastores.local(datastores.parse(device.backing.fileName)))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab"):
            pass
    except Exception as err:  # an unknown datastore, a path the sim refuses: the port has no file
        log.warning("%s: serial port %s: cannot open %s: %s", vm.moid, device.key, device.backing.fileName, err)


def _unlink(path: str):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        log.debug("cannot remove %s: %s", path, err)
