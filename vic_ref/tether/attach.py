"""The tether's attach server (VIC `cmd/tether/attach*.go`, vic-behaviour.md §4.12): the container end of
`docker attach`, foreground `docker run`, `start -a` and `exec`.

Transport: the VM's network-backed (URI) serial port. The guest channel's `serial_ports()` gives it a `socket` (a Unix
stream socket the sim bridges to the VCH's attach listener); the server connects to it, and connects again whenever
the stream closes (VCH restart, port reconnect) until the tether stops.

On every new stream:

1. **Byte handshake**, the tether as the server (`pkg/serial/handshake.go`): the VCH sends `SYN(0x16), n`; we answer
   `ACK(0x06), n+1, m`; it sends `ACK, m+1`; we confirm with `ACK`. Anything before a SYN is skipped. A new SYN at any
   point (the VCH gave up and started again, or stale bytes left on the line) restarts the handshake with that SYN; a
   wrong `m+1` gets a `NAK(0x15)` and we wait for the next SYN.
2. **SSH**, the tether as the server (asyncssh over the stream, `encoding=None`): host key = the executor config's
   `key` (PEM; a fresh Ed25519 key when the config has none), no authentication (the VCH logs in as `daemon`,
   client version `SSH-2.0-VIC`).
   - global request `container-ids` → reply a string: the comma-separated IDs of the sessions and execs that are
     known and have not ended (the primary first); the tether also *sends* `container-ids` (no reply wanted) with the
     exec IDs when a reload added execs;
   - global request `version` → reply uint32 10;
   - global request `processes` (ours, for `docker top`) → reply a string: JSON `{"Titles": [...], "Processes":
     [[...], ...]}`, the container's processes in `ps -ef` columns (`processes.py`); any other global request fails;
   - channel type `attach`, extra data = string(session ID). Refused (open failure "connect failed") with
     `attach channel requires ID in ExtraData`, `session <id> is invalid`, `launch failed with: <Started>` or
     `process finished with exit code: <n>`;
   - channel requests: `unblock` (releases a session held by RunBlock; false when its launch failed),
     `close-stdin` (EOF on the process's stdin: the pipe is closed, or EOT 0x04 is written to a tty),
     `window-change` (uint32 cols, rows, width px, height px: TIOCSWINSZ on the session's pty; tty only),
     `signal` (string; answered false, as VIC's tether does), `ping` (true);
   - channel data from the VCH = the process's stdin (every channel of a session feeds the same stdin, and only when
     the session has OpenStdin); towards the VCH: stdout as channel data, stderr as extended data type 1 (a tty
     session's output is all stdout). Output goes to `output.log` as well (the primary's) whether or not anyone is
     attached; channels get what is written while they are open.
   - When the session's process ends, after its output has been sent, every attach channel of the session is closed;
     the exit code is in the session's config (`status`), not on the channel.

RunBlock: a session whose config says `runblock` is not launched until an `unblock` request arrives on one of its
channels (the tether waits in a thread; power off ends the wait).

Threads: the server runs its own asyncio loop in a thread (`tether-attach`); the tether's output copier threads hand
output over with `call_soon_threadsafe`; stdin is written to the process by one writer thread per session.
"""
from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import queue
import random
import socket
import struct
import termios
import threading
from typing import Any

import asyncssh
from asyncssh.channel import SSHTCPChannel
from asyncssh.constants import EXTENDED_DATA_STDERR
from asyncssh.misc import ChannelOpenError
from asyncssh.packet import String, UInt32

from .processes import TITLES, container_processes

log = logging.getLogger("vic_ref.tether.attach")

SYN, ACK, NAK = 0x16, 0x06, 0x15
VERSION = 10
OPEN_CONNECT_FAILED = 2
RECONNECT_DELAY = 0.2
EOT = b"\x04"


class SessionState:
    """What the attach side knows of one session: its channels, its unblock and its stdin queue."""

    def __init__(self, sid: str):
        self.id = sid
        self.channels: list[Any] = []
        self.unblocked = threading.Event()
        self.stdin: queue.Queue = queue.Queue()  # bytes, or None for close-stdin
        self.ended = False


async def server_handshake(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    async def byte() -> int:
        data = await loop.sock_recv(sock, 1)
        if not data:
            raise ConnectionError("the serial stream closed during the handshake")
        return data[0]

    current = await byte()
    while True:
        if current != SYN:
            current = await byte()
            continue
        n = await byte()
        m = random.randrange(256)
        await loop.sock_sendall(sock, bytes([ACK, (n + 1) & 0xFF, m]))
        answer = await byte()
        if answer != ACK:
            current = answer  # a new SYN restarts; anything else is skipped
            continue
        value = await byte()
        if value == (m + 1) & 0xFF:
            await loop.sock_sendall(sock, bytes([ACK]))
            return
        await loop.sock_sendall(sock, bytes([NAK]))
        current = value


class _Channel(SSHTCPChannel):
    _write_datatypes = {EXTENDED_DATA_STDERR}

    def __init__(self, conn, loop, server: AttachServer, state: SessionState):
        super().__init__(conn, loop, None, "strict", 2 * 1024 * 1024, 32768)
        self.server = server
        self.state = state

    def _process_unblock_request(self, packet) -> bool:
        packet.check_end()
        run = self.server.tether.sessions.get(self.state.id)
        if run is not None and run.error:
            return False
        self.state.unblocked.set()
        return True

    def _process_window_change_request(self, packet) -> bool:
        cols, rows, width, height = (packet.get_uint32() for _ in range(4))
        return self.server.resize(self.state.id, cols, rows, width, height)

    def _process_close_stdin_request(self, packet) -> bool:
        self.state.stdin.put(None)
        return True

    def _process_signal_request(self, packet) -> bool:
        return False

    def _process_ping_request(self, packet) -> bool:
        return True


class _Session(asyncssh.SSHTCPSession):
    def __init__(self, server: AttachServer, state: SessionState):
        self.server = server
        self.state = state
        self.chan = None

    def connection_made(self, chan) -> None:
        self.chan = chan

    def data_received(self, data, datatype) -> None:
        if data:
            self.state.stdin.put(bytes(data))

    def eof_received(self) -> bool:
        return True  # keep our side open (feasibility §2 pitfall)

    def connection_lost(self, exc) -> None:
        if self.chan in self.state.channels:
            self.state.channels.remove(self.chan)


def set_window_size(master: int, size: tuple[int, int, int, int], sid: str) -> bool:
    """TIOCSWINSZ with (rows, cols, width px, height px)."""
    try:
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", *size))
    except OSError as err:
        log.debug("attach %s: window-change: %s", sid[:12], err)
        return False
    return True


class AttachServer:
    def __init__(self, tether: Any):
        self.tether = tether
        self.states: dict[str, SessionState] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.conn: Any = None
        self.stopped = threading.Event()
        self.path = ""
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def start(self, path: str) -> bool:
        if not path:
            return False
        self.path = path
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._thread, name="tether-attach", daemon=True)
        self.thread.start()
        return True

    @property
    def running(self) -> bool:
        return self.loop is not None and not self.stopped.is_set()

    def _thread(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve_forever())
        except Exception:  # noqa: BLE001
            log.exception("attach server")

    def stop(self) -> None:
        self.stopped.set()
        for state in list(self.states.values()):
            state.unblocked.set()
        if self.loop is not None and self.conn is not None:
            self.loop.call_soon_threadsafe(self.conn.close)

    def host_key(self):
        key = self.tether.config.key
        if key:
            try:
                return asyncssh.import_private_key(key)
            except (asyncssh.KeyImportError, ValueError) as err:
                log.warning("attach: cannot read the config's host key: %s", err)
        return asyncssh.generate_private_key("ssh-ed25519")

    async def _serve_forever(self) -> None:
        loop = asyncio.get_running_loop()
        key = self.host_key()
        while not self.stopped.is_set():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, self.path)
                await server_handshake(loop, sock)
                log.info("attach: handshake done, serving SSH")
                self.conn = await asyncssh.run_server(sock, server_host_keys=[key], server_factory=self._factory,
                                                      encoding=None, keepalive_interval=0)
                await self.conn.wait_closed()
                log.info("attach: SSH connection closed")
            except (OSError, ConnectionError, asyncssh.Error) as err:
                log.debug("attach: stream ended: %s", err)
            except Exception:  # noqa: BLE001
                log.exception("attach: connection failed")
            finally:
                self.conn = None
                try:
                    sock.close()
                except OSError:
                    pass
            await asyncio.sleep(RECONNECT_DELAY)

    def _factory(self):
        server = self

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn) -> None:
                conn._process_container_ids_global_request = lambda packet: conn._report_global_response(
                    String(",".join(server.active_ids())))
                conn._process_version_global_request = lambda packet: conn._report_global_response(UInt32(VERSION))
                conn._process_processes_global_request = lambda packet: conn._report_global_response(
                    String(json.dumps(server.processes())))
                conn._process_attach_open = lambda packet: server._open(conn, packet)

            def begin_auth(self, username: str) -> bool:
                return False

        return Server()

    def processes(self) -> dict:
        """The `processes` reply: the container's process table (`docker top`)."""
        primary = self.tether.primary
        rows = container_processes(primary.init_pid) if primary is not None and primary.init_pid else []
        return {"Titles": TITLES, "Processes": rows}

    # -- sessions -------------------------------------------------------------------------------------------------
    def state(self, sid: str) -> SessionState:
        with self._lock:
            state = self.states.get(sid)
            if state is None:
                state = self.states[sid] = SessionState(sid)
            return state

    def active_ids(self) -> list[str]:
        tether = self.tether
        ids = []
        for sid in [*tether.config.sessions, *tether.config.execs]:
            run = tether.sessions.get(sid)
            if run is not None and (run.exit_code is not None or run.error):
                continue
            if run is None and sid in tether.config.execs and not tether.config.execs[sid].active:
                continue
            if sid not in ids:
                ids.append(sid)
        return ids

    def _open(self, conn, packet):
        sid = packet.get_string().decode("utf-8", "replace")
        packet.check_end()
        if not sid:
            raise ChannelOpenError(OPEN_CONNECT_FAILED, "attach channel requires ID in ExtraData")
        tether = self.tether
        if sid not in tether.sessions and sid not in tether.config.sessions and sid not in tether.config.execs:
            raise ChannelOpenError(OPEN_CONNECT_FAILED, f"session {sid} is invalid")
        run = tether.sessions.get(sid)
        if run is not None and run.error:
            raise ChannelOpenError(OPEN_CONNECT_FAILED, f"launch failed with: {run.error}")
        if run is not None and run.exit_code is not None:
            raise ChannelOpenError(OPEN_CONNECT_FAILED, f"process finished with exit code: {run.exit_code}")
        state = self.state(sid)
        chan = _Channel(conn, asyncio.get_running_loop(), self, state)
        state.channels.append(chan)
        return chan, _Session(self, state)

    def wait_unblock(self, sid: str) -> bool:
        """RunBlock: wait for an `unblock` (True) or the server's stop (False)."""
        state = self.state(sid)
        while not state.unblocked.wait(0.5):
            if self.stopped.is_set():
                return False
        return not self.stopped.is_set() or state.unblocked.is_set()

    def output(self, sid: str, stderr: bool, data: bytes) -> None:
        """From a copier thread: send output to every open channel of the session."""
        if self.loop is None or not data:
            return
        state = self.states.get(sid)
        if state is None or not state.channels:
            return
        self.loop.call_soon_threadsafe(self._write, state, stderr, bytes(data))

    @staticmethod
    def _write(state: SessionState, stderr: bool, data: bytes) -> None:
        for chan in list(state.channels):
            try:
                chan.write(data, EXTENDED_DATA_STDERR if stderr else None)
            except (OSError, asyncssh.Error) as err:
                log.debug("attach %s: write: %s", state.id[:12], err)

    def ended(self, sid: str, timeout: float = 2.0) -> None:
        """From the exit path, after the output copiers are done: close the session's channels (their pending output
        goes first) and wait a little for them to close."""
        state = self.states.get(sid)
        if state is None:
            return
        state.ended = True
        state.stdin.put(None)
        if self.loop is None or not state.channels or self.loop.is_closed():
            return

        async def close() -> None:
            channels = list(state.channels)
            for chan in channels:
                chan.close()
            await asyncio.wait([asyncio.ensure_future(chan.wait_closed()) for chan in channels], timeout=timeout)
        try:
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout + 0.5)
        except Exception as err:  # noqa: BLE001
            log.debug("attach %s: closing channels: %s", sid[:12], err)

    def announce(self, ids: list[str]) -> None:
        """A reload added execs: tell the VCH (`container-ids`, no reply wanted)."""
        if self.loop is None or not ids:
            return

        def send() -> None:
            if self.conn is not None:
                try:
                    self.conn._send_global_request(b"container-ids", String(",".join(ids)), want_reply=False)
                except Exception as err:  # noqa: BLE001
                    log.debug("attach: announce: %s", err)
        self.loop.call_soon_threadsafe(send)

    def resize(self, sid: str, cols: int, rows: int, width: int, height: int) -> bool:
        run = self.tether.sessions.get(sid)
        if run is None or not run.config.tty:
            return False
        run.window_size = (rows, cols, width, height)  # type: ignore[attr-defined]  # for a pty still to come
        master = getattr(run, "pty_master", None)
        if master is None:
            return True
        return set_window_size(master, run.window_size, sid)  # type: ignore[attr-defined]

    def pump_stdin(self, sid: str, fd: int, *, tty: bool, close: bool) -> None:
        """Start the thread that writes the session's attach stdin to `fd` (closing it at close-stdin when
        `close`, else writing EOT for a tty)."""
        state = self.state(sid)

        def run() -> None:
            while True:
                data = state.stdin.get()
                try:
                    if data is None:
                        if state.ended or not tty:
                            if close:
                                os.close(fd)
                            return
                        os.write(fd, EOT)
                        continue
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                except OSError:
                    return
        threading.Thread(target=run, name=f"stdin-{sid[:12]}", daemon=True).start()


__all__ = ["AttachServer", "server_handshake"]
