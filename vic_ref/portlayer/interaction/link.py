"""One container's SSH connection to the VCH and the attach streams over it (VIC `lib/portlayer/attach/communication`).

The tether is the SSH *server* on its serial stream; the VCH is the client (user `daemon`, no authentication, client
version `SSH-2.0-VIC`). What the VCH sends (vic-behaviour.md §4.12):

- global request `container-ids` (no payload) → reply: the session and exec IDs that can be attached to, a string
  (Go ssh.Marshal of `{IDs []string}`: a comma-separated name-list; a JSON list is accepted too);
- global request `version` → reply: uint32 (10);
- global request `processes` (ours, for `docker top`) → reply: a string, JSON `{"Titles": [...], "Processes": [...]}`;
- channel type `attach`, extra data = string(session ID); refusals carry the tether's text (`session <id> is
  invalid`, `launch failed with: …`, `process finished with exit code: <n>`);
- on an attach channel, requests: `unblock` (no payload; releases a session waiting in RunBlock), `window-change`
  (uint32 cols, rows, width px, height px), `close-stdin` (no payload; the tether propagates EOF), `signal`
  (string name; VIC's tether answers false), `ping`;
- channel data: stdin to the tether; from it stdout as data and stderr as extended data (type 1) when no TTY.

The tether may send `container-ids` to us (on reload, with the exec IDs): we answer true and note the IDs.
"""
from __future__ import annotations

import asyncio
import json
import logging
import socket
from typing import Any

import asyncssh
from asyncssh.constants import EXTENDED_DATA_STDERR
from asyncssh.packet import String, UInt32

log = logging.getLogger("vic_ref.portlayer.interaction")

USER = "daemon"
CLIENT_VERSION = "VIC"
STDOUT, STDERR = 1, 2
MSG_REQUEST_SUCCESS = 81


def parse_ids(payload: bytes) -> list[str]:
    """The IDs of a `container-ids` reply: a name-list string (`a,b`), or JSON (`["a","b"]`, `{"IDs": [...]}`)."""
    try:
        text = asyncssh.packet.SSHPacket(payload).get_string().decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - not an SSH string: take the bytes as they are
        text = payload.decode("utf-8", "replace")
    text = text.strip()
    if text.startswith(("[", "{")):
        try:
            value = json.loads(text)
        except ValueError:
            value = []
        if isinstance(value, dict):
            value = value.get("IDs") or value.get("ids") or []
        return [str(v) for v in value or []]
    return [part for part in text.split(",") if part]


class _AttachSession(asyncssh.SSHTCPSession):
    def __init__(self, stream: AttachStream):
        self.stream = stream

    def data_received(self, data: bytes, datatype) -> None:
        self.stream._queue.put_nowait((STDERR if datatype == EXTENDED_DATA_STDERR else STDOUT, data))

    def eof_received(self) -> bool:
        self.stream._queue.put_nowait(None)
        return True  # keep our side open: stdin may still go (feasibility §2 pitfall)

    def connection_lost(self, exc) -> None:
        self.stream._queue.put_nowait(None)
        self.stream.closed.set()


class AttachStream:
    """An open `attach` channel: `read()` gives (STDOUT|STDERR, bytes) until None (the tether is done); `write`
    sends stdin; `close_stdin`, `resize`, `unblock`, `signal` are the channel requests."""

    def __init__(self, link: TetherLink, session_id: str):
        self.link = link
        self.session_id = session_id
        self.chan: Any = None
        self._queue: asyncio.Queue = asyncio.Queue()
        self.closed = asyncio.Event()
        self._eof = False

    async def open(self) -> AttachStream:
        chan = self.link.conn.create_tcp_channel(encoding=None)
        chan._read_datatypes = {EXTENDED_DATA_STDERR}  # stderr arrives as extended data
        await chan._open_forward(lambda: _AttachSession(self), b"attach", String(self.session_id))
        self.chan = chan
        return self

    async def read(self) -> tuple[int, bytes] | None:
        if self._eof:
            return None
        item = await self._queue.get()
        if item is None:
            self._eof = True
        return item

    def write(self, data: bytes) -> None:
        if data and self.chan is not None and not self.closed.is_set():
            self.chan.write(data)

    async def _request(self, name: bytes, *args: bytes) -> bool:
        if self.chan is None or self.closed.is_set():
            return False
        try:
            return bool(await asyncio.wait_for(self.chan._make_request(name, *args), 10))
        except (TimeoutError, OSError, asyncssh.Error) as err:
            log.debug("attach %s: request %s: %s", self.session_id[:12], name.decode(), err)
            return False

    async def close_stdin(self) -> bool:
        ok = await self._request(b"close-stdin")
        return ok

    async def resize(self, cols: int, rows: int) -> bool:
        return await self._request(b"window-change", UInt32(cols), UInt32(rows), UInt32(0), UInt32(0))

    async def unblock(self) -> bool:
        return await self._request(b"unblock")

    async def signal(self, name: str) -> bool:
        return await self._request(b"signal", String(name))

    async def ping(self) -> bool:
        return await self._request(b"ping")

    def close(self) -> None:
        if self.chan is not None:
            try:
                self.chan.close()
            except Exception:  # noqa: BLE001 - closing anyway
                pass


class TetherLink:
    """The SSH client connection to one container's tether."""

    def __init__(self, conn: asyncssh.SSHClientConnection):
        self.conn = conn
        self.container_id = ""
        self.ids: set[str] = set()
        self.closed = asyncio.Event()
        self.changed = asyncio.Event()  # set whenever `ids` changes (the tether told us of execs)
        # the tether's own `container-ids` (on reload): private asyncssh hook (feasibility §2)
        conn._process_container_ids_global_request = self._tether_ids

    @classmethod
    async def connect(cls, sock: socket.socket, *, host: str = "tether") -> TetherLink:
        conn = await asyncssh.connect(sock=sock, host=host, username=USER, known_hosts=None, client_keys=None,
                                      agent_path=None, config=None, password=None, kbdint_auth=False,
                                      gss_host=None, client_version=CLIENT_VERSION, keepalive_interval=15,
                                      encoding=None)
        return cls(conn)

    def _tether_ids(self, packet) -> None:
        try:
            ids = parse_ids(packet.get_remaining_payload())
        except Exception:  # noqa: BLE001
            ids = []
        self.ids.update(ids)
        self.changed.set()
        self.conn._report_global_response(True)

    async def global_request(self, name: str, *args: bytes) -> bytes | None:
        pkttype, packet = await asyncio.wait_for(self.conn._make_global_request(name.encode(), *args), 10)
        if pkttype != MSG_REQUEST_SUCCESS:
            return None
        return packet.get_remaining_payload()

    async def container_ids(self) -> list[str]:
        payload = await self.global_request("container-ids")
        ids = parse_ids(payload) if payload is not None else []
        self.ids.update(ids)
        return ids

    async def version(self) -> int | None:
        payload = await self.global_request("version")
        if not payload or len(payload) < 4:
            return None
        return int.from_bytes(payload[:4], "big")

    async def processes(self) -> dict | None:
        """The container's process table in `ps -ef` columns; None if the tether doesn't answer `processes`."""
        payload = await self.global_request("processes")
        if not payload or len(payload) < 4:
            return None
        try:
            return json.loads(payload[4:4 + int.from_bytes(payload[:4], "big")])
        except ValueError:
            return None

    def host_key(self) -> Any:
        return self.conn.get_server_host_key()

    async def attach(self, session_id: str) -> AttachStream:
        """Open an attach channel to a session; asyncssh.ChannelOpenError (with the tether's text) if refused."""
        return await AttachStream(self, session_id).open()

    def close(self) -> None:
        self.conn.close()
        self.closed.set()


__all__ = ["TetherLink", "AttachStream", "parse_ids", "STDOUT", "STDERR", "USER"]
