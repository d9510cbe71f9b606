"""Interaction routes: the hijacked attach, resize, and `docker exec` (VIC's ContainerAttach, ContainerExec*).

The hijack (attach-and-ssh-feasibility.md §1): the 101 goes out through aiohttp after the connection's asyncio
protocol is swapped for a StreamReaderProtocol, so stdin is read from the raw stream (half-close included) and output
written with flow control; the swap's `connection_lost` also reaches aiohttp's protocol (no leaked connections).
Framing: raw bytes with a TTY, Docker's 8-byte frames (`[stream,0,0,0,len BE]`) without.

Attach: a container that is not running yet gets RunBlock (its process waits for our `unblock`) before the 101, so
`docker run` and `start -a` lose no output; then the attach waits for the container's tether to connect to the
attach listener, opens an `attach` channel, unblocks it, and pumps until the tether closes the channel. RunBlock is
cleared once the container has stopped, so a later plain `docker start` doesn't wait.

Exec: create adds an inactive session (`execs|<eid>`); start makes it active (RunBlock when attached) and reloads
the tether, then attaches like attach does; inspect reads the session's status.
"""
from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
import time
from typing import Any

from aiohttp import web

from .. import errors
from ..trace import Operation
from . import common, views
from .common import bool_param, call, int_param, json_body, portlayer
from .errors import bad_request

ATTACH_TIMEOUT = 180.0  # how long an attach waits for the container's tether to connect (a start may be slow)
RAW, MUX = "application/vnd.docker.raw-stream", "application/vnd.docker.multiplexed-stream"
STREAMS: web.AppKey = web.AppKey("attach_streams", dict)  # session ID → set of open AttachStreams
SIZES: web.AppKey = web.AppKey("attach_sizes", dict)  # session ID → the last (cols, rows) asked


DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
CONTROL_KEYS = {f"ctrl-{chr(ord('a') + i)}": i + 1 for i in range(26)} | {
    "ctrl-@": 0, "ctrl-[": 27, "ctrl-\\": 28, "ctrl-]": 29, "ctrl-^": 30, "ctrl-_": 31}


def detach_sequence(keys: str) -> bytes:
    """Docker's detach-keys syntax (`ctrl-p,ctrl-q`, single characters) as bytes; Docker's text when bad."""
    codes = bytearray()
    for key in keys.split(","):
        if len(key) == 1:
            codes.append(ord(key))
        elif key in CONTROL_KEYS:
            codes.append(CONTROL_KEYS[key])
        elif not key.startswith("ctrl-"):
            raise bad_request(f"Invalid detach keys ({keys}) provided")
    return bytes(codes)


class DetachWatch:
    """Docker's escape proxy: holds back bytes that may start the detach sequence, passes the rest on."""

    def __init__(self, sequence: bytes):
        self.sequence = sequence
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to pass on, whether the sequence was typed)."""
        if not self.sequence:
            return data, False
        out = bytearray()
        for byte in data:
            candidate = self.held + bytes([byte])
            if self.sequence.startswith(candidate):
                if candidate == self.sequence:
                    self.held = b""
                    return bytes(out), True
                self.held = candidate
            else:
                out += candidate
                self.held = b""
        return bytes(out), False


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


class _Hijacked(asyncio.StreamReaderProtocol):
    def __init__(self, reader: asyncio.StreamReader, original):
        super().__init__(reader)
        self._original = original

    def connection_lost(self, exc) -> None:
        super().connection_lost(exc)
        if self._original is not None:
            with contextlib.suppress(Exception):
                self._original.connection_lost(exc)


async def hijack(request: web.Request, content_type: str):
    """101 UPGRADED and the raw stream: (response, reader, writer)."""
    response = web.StreamResponse(status=101, reason="UPGRADED",
                                  headers={"Content-Type": content_type, "Connection": "Upgrade", "Upgrade": "tcp"})
    response.force_close()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2 ** 20)
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("client went away")
    protocol = _Hijacked(reader, request.protocol)
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    await response.prepare(request)
    return response, reader, writer


def _register(app, sid: str, stream) -> None:
    app[STREAMS].setdefault(sid, set()).add(stream)


def _unregister(app, sid: str, stream) -> None:
    streams = app[STREAMS].get(sid)
    if streams is not None:
        streams.discard(stream)
        if not streams:
            del app[STREAMS][sid]


async def pump(request: web.Request, sid: str, *, tty: bool, stdin: bool, stdout: bool, stderr: bool,
               running: callable, on_wait=None, close_stdin: bool = True, detach_keys: bytes = b"",
               before_close=None) -> None:
    """Attach the client to session `sid` over the hijacked connection until the session's output ends.

    At the client's end of stdin the session's stdin is closed with `close_stdin` (Docker: exec, and attach of a
    StdinOnce container without a tty); otherwise the attach ends there and the process keeps its stdin. Typing
    `detach_keys` (tty only, as Docker) ends the attach too. `before_close` is awaited once the attach has ended,
    before the client sees the end of the stream (exec: the exit code must be known when the CLI asks); bytes it
    returns go to the client as stdout (exec: Docker's text of a failed launch)."""
    app = request.app
    interaction = portlayer(request).interaction
    op = common.operation(request)
    _, reader, writer = await hijack(request, RAW if tty else MUX)
    pending_stdin: list[bytes] = []
    stdin_done = asyncio.Event()
    detached = asyncio.Event()  # the client detached (sequence typed, or stdin ended without close_stdin)
    watch = DetachWatch(detach_keys if tty else b"")

    async def read_client() -> None:
        # stdin may come before the start: buffer it until the channel is open
        while True:
            data = await reader.read(65536)
            if not data:
                stdin_done.set()
                if stdin and not close_stdin:
                    detached.set()
                return
            if stdin:
                data, typed = watch.feed(data)
                if data:
                    if stream_box:
                        stream_box[0].write(data)
                    else:
                        pending_stdin.append(data)
                if typed:
                    op.info("attach %s: detached by the client's detach keys", sid[:12])
                    detached.set()
                    return

    stream_box: list[Any] = []
    client = asyncio.create_task(read_client())
    stream = None
    try:
        deadline = time.monotonic() + ATTACH_TIMEOUT
        while stream is None:
            if reader.at_eof() and writer.transport.is_closing():
                return
            if detached.is_set():
                return
            try:
                stream = await interaction.attach(sid, timeout=1.0)
            except errors.Timeout:
                if on_wait is not None:
                    await on_wait()
                if time.monotonic() > deadline or not await running():
                    op.info("attach %s: no connection from its tether", sid[:12])
                    return
            except errors.Conflict as err:
                op.info("attach %s refused: %s", sid[:12], err)
                return
        stream_box.append(stream)
        _register(app, sid, stream)
        size = app[SIZES].get(sid)
        if size and tty:
            await stream.resize(*size)
        for data in pending_stdin:
            stream.write(data)
        pending_stdin.clear()
        await stream.unblock()

        async def close_stdin_at_eof() -> None:
            await stdin_done.wait()
            if stdin and close_stdin and not detached.is_set():
                await stream.close_stdin()
        closer = asyncio.create_task(close_stdin_at_eof())
        output = asyncio.create_task(copy_output(stream, writer, tty=tty, stdout=stdout, stderr=stderr))
        detach = asyncio.create_task(detached.wait())
        try:
            await asyncio.wait([output, detach], return_when=asyncio.FIRST_COMPLETED)
            if output.done():
                output.result()
        finally:
            for task in (closer, output, detach):
                task.cancel()
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        if before_close is not None and not detached.is_set() and not writer.transport.is_closing():
            with contextlib.suppress(Exception):
                last_words = await before_close()
                if last_words:
                    writer.write(last_words if tty else frame(1, last_words))
                    await writer.drain()
        if stream is not None:
            _unregister(app, sid, stream)
            stream.close()
        client.cancel()
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
            writer.close()


async def copy_output(stream, writer: asyncio.StreamWriter, *, tty: bool, stdout: bool, stderr: bool) -> None:
    while (item := await stream.read()) is not None:
        kind, data = item
        if (kind == 1 and not stdout) or (kind == 2 and not stderr):
            continue
        writer.write(data if tty else frame(kind, data))
        await writer.drain()


# -- attach ------------------------------------------------------------------------------------------------------
async def attach(request: web.Request) -> web.StreamResponse:
    pl = portlayer(request)
    name = request.match_info["name"]
    info = pl.exec.info(name)
    if not bool_param(request, "stream") and not bool_param(request, "logs"):
        raise bad_request("at least one of stream or logs must be true")
    keys = detach_sequence(request.query.get("detachKeys") or DEFAULT_DETACH_KEYS)
    session = info.session
    tty = bool(session.tty) if session is not None else False
    blocks = request.app[RUN_BLOCKS]
    blocked = False
    if not info.running:
        # the process must wait for us (VIC Bind's RunBlock); only a stopped VM's config can take it
        try:
            await call(request, blocks.hold, pl, info.id)
            blocked = True
        except errors.VicError as err:
            common.operation(request).warning("attach %s: no RunBlock: %s", info.id[:12], err)
    cid = info.id
    since_exits = pl.exec.find(cid).exits

    async def running() -> bool:
        try:
            container = pl.exec.find(cid)
        except errors.NotFound:
            return False
        # not yet started (or starting) counts: the CLI starts after it has attached
        return container.exits == since_exits

    stored = views.decode_annotation(info.annotations, views.CONFIG_ANNOTATION, {}) or {}
    host = views.decode_annotation(info.annotations, views.HOSTCONFIG_ANNOTATION, {}) or {}
    console = host.get("ConsoleSize") or [0, 0]
    if tty and cid not in request.app[SIZES] and len(console) == 2 and all(console):
        # `run -it` sends its terminal's size with the create: the pty has it before the process starts
        request.app[SIZES][cid] = (int(console[1]), int(console[0]))
    try:
        await pump(request, cid, tty=tty, stdin=bool_param(request, "stdin"), stdout=bool_param(request, "stdout"),
                   stderr=bool_param(request, "stderr"), running=running,
                   close_stdin=bool(stored.get("StdinOnce")), detach_keys=keys)
    finally:
        if blocked:
            request.app[common.CALLS].submit(blocks.release, pl, cid)
    return web.StreamResponse(status=101)


class RunBlocks:
    """RunBlock of stopped containers that an attach waits on. Set when an attach comes, cleared once the container
    is off again and no attach holds it any more (a plain `docker start` must not wait), under one lock: a clear
    left over from the previous `start -a` must not undo the RunBlock the next attach relies on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders: dict[str, int] = {}

    def hold(self, op: Operation, pl, cid: str) -> None:
        with self._lock:
            self._holders[cid] = self._holders.get(cid, 0) + 1
            try:
                pl.exec.set_run_block(op, cid, True)
            except BaseException:
                self._drop(cid)
                raise

    def release(self, pl, cid: str) -> None:
        op = Operation.new(f"clear RunBlock of {cid[:12]}")
        try:
            container = pl.exec.find(cid)
            container.wait_for(lambda c: c.removed or not c.snapshot.powered_on, 60)
        except errors.VicError as err:
            op.debug("RunBlock of %s stays: %s", cid[:12], err)
            container = None
        with self._lock:
            self._drop(cid)
            if container is None or container.removed or self._holders.get(cid):
                return
            try:
                pl.exec.set_run_block(op, cid, False)
            except errors.VicError as err:
                op.debug("RunBlock of %s stays: %s", cid[:12], err)

    def _drop(self, cid: str) -> None:
        left = self._holders.get(cid, 1) - 1
        if left > 0:
            self._holders[cid] = left
        else:
            self._holders.pop(cid, None)


RUN_BLOCKS: web.AppKey = web.AppKey("run_blocks", RunBlocks)


async def _resize(request: web.Request, sid: str) -> None:
    h, w = int_param(request, "h", 0), int_param(request, "w", 0)
    if not h or not w:
        return
    request.app[SIZES][sid] = (w, h)
    for stream in list(request.app[STREAMS].get(sid, ())):
        await stream.resize(w, h)


async def resize(request: web.Request) -> web.Response:
    info = portlayer(request).exec.info(request.match_info["name"])
    await _resize(request, info.id)
    return web.Response(status=200)


# -- exec --------------------------------------------------------------------------------------------------------
async def exec_create(request: web.Request) -> web.Response:
    pl = portlayer(request)
    info = pl.exec.info(request.match_info["name"])
    body = await json_body(request, {})
    if not isinstance(body, dict):
        raise bad_request("invalid JSON: the body must be an object")
    cmd = body.get("Cmd") or []
    if isinstance(cmd, str):
        cmd = [cmd]
    if not cmd:
        raise bad_request("No exec command specified")
    if not info.running:
        raise errors.Conflict(f"Container {info.id} is not running")
    env = list(body.get("Env") or [])
    if info.session is not None:
        env = list(info.session.cmd.env) + env
    attached = bool(body.get("AttachStdin") or body.get("AttachStdout") or body.get("AttachStderr"))
    eid = await call(request, pl.exec.create_exec, info.id, path=cmd[0], args=cmd[1:], env=env,
                     workdir=body.get("WorkingDir") or (info.session.cmd.dir if info.session else ""),
                     user=body.get("User") or "", tty=bool(body.get("Tty")),
                     open_stdin=bool(body.get("AttachStdin")), attach=attached, run_block=attached, active=False)
    request.app[EXEC_ATTACH][eid] = {"stdin": bool(body.get("AttachStdin")),
                                     "stdout": bool(body.get("AttachStdout")),
                                     "stderr": bool(body.get("AttachStderr"))}
    return web.json_response({"Id": eid}, status=201)


EXEC_ATTACH: web.AppKey = web.AppKey("exec_attach", dict)  # exec ID → which streams its creator asked for


async def exec_start(request: web.Request) -> web.StreamResponse:
    pl = portlayer(request)
    eid = request.match_info["id"]
    container, session = pl.exec.find_exec(eid)
    body = await json_body(request, {}) or {}
    detach = bool(body.get("Detach"))
    wanted = request.app[EXEC_ATTACH].get(eid, {"stdin": session.open_stdin, "stdout": True, "stderr": True})
    if session.active:
        raise errors.Conflict(f"Error: Exec command {eid} is already running")
    await call(request, pl.exec.activate_exec, container.id, eid, run_block=not detach)
    if detach:
        return web.Response(status=200)
    cid = container.id

    async def running() -> bool:
        try:
            return pl.exec.find(cid).snapshot.powered_on
        except errors.NotFound:
            return False

    async def refresh_ids() -> None:
        # the tether tells us of a reloaded exec itself; ask too, in case that message was missed
        interaction = pl.interaction
        if interaction.connected(cid):
            with contextlib.suppress(Exception):
                await interaction.refresh(await interaction.link(cid, 1))

    async def exit_code_known() -> bytes:
        # the CLI asks exec inspect for the exit code once the stream ends: the tether's report comes first
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                info = pl.exec.exec_info(eid)
            except errors.NotFound:
                return b""
            if info.exit_code is not None:
                started = info.session.started
                if started not in ("", "true"):  # the launch failed: Docker writes its error to the stream
                    return f"OCI runtime exec failed: exec failed: unable to start container process: " \
                           f"{started}: unknown\r\n".encode()
                return b""
            await asyncio.sleep(0.05)
        return b""

    await pump(request, eid, tty=bool(session.tty), stdin=wanted["stdin"], stdout=wanted["stdout"],
               stderr=wanted["stderr"], running=running, on_wait=refresh_ids, before_close=exit_code_known)
    return web.StreamResponse(status=101)


async def exec_inspect(request: web.Request) -> web.Response:
    pl = portlayer(request)
    eid = request.match_info["id"]
    info = pl.exec.exec_info(eid)
    session = info.session
    args = list(session.cmd.args)
    return web.json_response({
        "ID": eid, "Running": info.running, "ExitCode": info.exit_code, "ContainerID": info.container_id,
        "OpenStdin": session.open_stdin, "OpenStdout": session.attach, "OpenStderr": session.attach,
        "CanRemove": False, "DetachKeys": "", "Pid": info.pid,
        "ProcessConfig": {"tty": session.tty, "entrypoint": session.cmd.path, "arguments": args[1:],
                          "privileged": False, "user": session.user}})


async def exec_resize(request: web.Request) -> web.Response:
    eid = request.match_info["id"]
    portlayer(request).exec.find_exec(eid)
    await _resize(request, eid)
    return web.Response(status=201)


# -- app wiring --------------------------------------------------------------------------------------------------
def add_routes(app: web.Application) -> None:
    app[STREAMS] = {}
    app[SIZES] = {}
    app[EXEC_ATTACH] = {}
    app[RUN_BLOCKS] = RunBlocks()
    add = common.add_route
    add(app, "POST", "/containers/{name}/attach", attach)
    add(app, "POST", "/containers/{name}/resize", resize)
    add(app, "POST", "/containers/{name}/exec", exec_create)
    add(app, "POST", "/exec/{id}/start", exec_start)
    add(app, "POST", "/exec/{id}/resize", exec_resize)
    add(app, "GET", "/exec/{id}/json", exec_inspect)

    async def start_interaction(app: web.Application) -> None:
        interaction = getattr(app[common.PORTLAYER], "interaction", None)
        if interaction is not None:
            await interaction.start()

    async def stop_interaction(app: web.Application) -> None:
        interaction = getattr(app[common.PORTLAYER], "interaction", None)
        if interaction is not None:
            await interaction.close()

    app.on_startup.append(start_interaction)
    app.on_cleanup.append(stop_interaction)


__all__ = ["add_routes", "hijack", "frame", "pump"]
