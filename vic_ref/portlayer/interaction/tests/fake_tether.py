"""A test tether's attach side: connects to the VCH's attach listener as the sim's serial bridge would, answers the
byte handshake as the server and serves SSH with the protocol of vic-behaviour.md §4.12 (`container-ids`,
`version`, channel type `attach` with the session ID, `unblock`, `window-change`, `close-stdin`, `signal`).

Each session is a coroutine `program(io)` run once its channel is open and it is unblocked (RunBlock), with
`io.write(data)`, `io.write_stderr(data)`, `await io.read()` (b"" at stdin EOF), `io.sizes` (window changes);
it returns the exit status. Useful programs: `echo(text)`, `cat`, `exit_with(n)`.
"""
from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import asyncssh
from asyncssh.channel import SSHTCPChannel
from asyncssh.constants import EXTENDED_DATA_STDERR
from asyncssh.misc import ChannelOpenError
from asyncssh.packet import String, UInt32

from vic_ref.portlayer.interaction.handshake import server_handshake

OPEN_CONNECT_FAILED = 2


class SessionIO:
    def __init__(self):
        self.channels: list[SSHTCPChannel] = []
        self.stdin: asyncio.Queue = asyncio.Queue()
        self.sizes: list[tuple[int, int]] = []
        self.signals: list[str] = []
        self.unblocked = asyncio.Event()
        self.output: list[tuple[int, bytes]] = []

    def write(self, data: bytes) -> None:
        self.output.append((1, data))
        for chan in self.channels:
            chan.write(data)

    def write_stderr(self, data: bytes) -> None:
        self.output.append((2, data))
        for chan in self.channels:
            chan.write(data, EXTENDED_DATA_STDERR)

    async def read(self) -> bytes:
        return await self.stdin.get()


class _Channel(SSHTCPChannel):
    _write_datatypes = {EXTENDED_DATA_STDERR}

    def __init__(self, conn, loop, io: SessionIO):
        super().__init__(conn, loop, None, "strict", 2 * 1024 * 1024, 32768)
        self.io = io

    def _process_unblock_request(self, packet) -> bool:
        self.io.unblocked.set()
        return True

    def _process_window_change_request(self, packet) -> bool:
        cols, rows = packet.get_uint32(), packet.get_uint32()
        self.io.sizes.append((cols, rows))
        return True

    def _process_close_stdin_request(self, packet) -> bool:
        self.io.stdin.put_nowait(b"")
        return True

    def _process_signal_request(self, packet) -> bool:
        self.io.signals.append(packet.get_string().decode())
        return False

    def _process_ping_request(self, packet) -> bool:
        return True


class _Session(asyncssh.SSHTCPSession):
    def __init__(self, io: SessionIO):
        self.io = io

    def data_received(self, data, datatype) -> None:
        self.io.stdin.put_nowait(data)

    def eof_received(self) -> bool:
        return True


Program = Callable[[SessionIO], Awaitable[int]]


class FakeTether:
    def __init__(self, sessions: dict[str, Program], *, run_block: bool = True,
                 host_key: asyncssh.SSHKey | None = None):
        self.programs = sessions
        self.run_block = run_block
        self.host_key = host_key or asyncssh.generate_private_key("ssh-ed25519")
        self.io = {sid: SessionIO() for sid in sessions}
        self.exit: dict[str, int] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self.conn = None
        self.version_asked = asyncio.Event()

    async def run(self, port: int, host: str = "127.0.0.1") -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
        await server_handshake(sock)
        tether = self

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn) -> None:
                tether.conn = conn
                conn._process_container_ids_global_request = lambda packet: conn._report_global_response(
                    String(",".join(sid for sid in tether.programs if sid not in tether.exit)))

                def version(packet) -> None:
                    tether.version_asked.set()
                    conn._report_global_response(UInt32(10))
                conn._process_version_global_request = version
                conn._process_attach_open = lambda packet: tether._open(conn, packet)

            def begin_auth(self, username: str) -> bool:
                return False

        self.conn = await asyncssh.run_server(sock, server_host_keys=[self.host_key], server_factory=Server,
                                              encoding=None)
        for sid in self.programs:
            self.tasks[sid] = asyncio.create_task(self._launch(sid))

    def _open(self, conn, packet):
        sid = packet.get_string().decode()
        packet.check_end()
        if sid not in self.programs:
            raise ChannelOpenError(OPEN_CONNECT_FAILED, f"session {sid} is invalid")
        if sid in self.exit:
            raise ChannelOpenError(OPEN_CONNECT_FAILED, f"process finished with exit code: {self.exit[sid]}")
        io = self.io[sid]
        chan = _Channel(conn, asyncio.get_running_loop(), io)
        io.channels.append(chan)
        return chan, _Session(io)

    async def _launch(self, sid: str) -> None:
        io = self.io[sid]
        if self.run_block:
            await io.unblocked.wait()
        status = await self.programs[sid](io)
        self.exit[sid] = status
        await asyncio.sleep(0.05)
        for chan in io.channels:
            chan.close()

    def add_session(self, sid: str, program: Program) -> None:
        """An exec added by a reload: tell the VCH (the tether sends `container-ids` on reload)."""
        self.programs[sid] = program
        self.io[sid] = SessionIO()
        self.tasks[sid] = asyncio.create_task(self._launch(sid))
        self.conn._send_global_request(b"container-ids", String(sid), want_reply=False)

    def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        if self.conn is not None:
            self.conn.close()


def run_in_thread(tether: FakeTether, port: int):
    """Run the tether on an event loop of its own thread; the returned function stops it."""
    import threading
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-tether", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(tether.run(port), loop).result(30)

    def stop() -> None:
        loop.call_soon_threadsafe(tether.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    return stop


def echo(text: str, stderr: str = "", status: int = 0) -> Program:
    async def program(io: SessionIO) -> int:
        io.write(text.encode())
        if stderr:
            io.write_stderr(stderr.encode())
        return status
    return program


async def cat(io: SessionIO) -> int:
    while True:
        data = await io.read()
        if not data:
            return 0
        io.write(data)


def exit_with(status: int) -> Program:
    async def program(io: SessionIO) -> int:
        return status
    return program
