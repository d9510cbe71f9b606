"""The interaction component of the port layer (VIC's `lib/portlayer/attach`): the attach listener and the SSH
connections to container tethers, plus the container logs (`logs.py`).

Transport (vic-behaviour.md §4.12, §5.4): every container VM has a network-backed serial port (URI backing,
direction client, serviceURI `tcp://127.0.0.1:<attach port>`). While the VM runs with that port connected, vSphere
(the sim) connects to the URI and bridges the connection to the guest's serial line. The VCH accepts it, runs the
byte handshake as the client (`handshake.py`), then SSH as the client (`link.py`); `container-ids` says whose tether
it is. Attach streams are channels on that connection.

Choices:
- **Connected from power-on.** The attach serial port is created connected and start-connected, so every running
  container has its SSH connection to the VCH as soon as its tether serves it; an attach needs no reconfigure of the
  VM (VIC binds at attach time: Connected=true on Bind, cleared on Unbind). What VIC's Bind also does, RunBlock for a
  session attached before it starts, is done by the personality through a handle (`Exec.set_run_block`), so no output
  is lost between the launch and the attach.
- **A stable port.** Containers keep the serviceURI they were created with, so a restarted VCH must listen on the
  same port: it is the Docker API port + 1 (`attach_port`), unless given; if that port can't be had, a free one is
  taken (with a warning: containers created before then can't attach until recreated).
- The host key is not pinned at connect (the container is known only after `container-ids`); afterwards the
  server's key is compared with the container's config `key` when one is set, and a mismatch drops the connection.

The component is asyncio-native: `start()` and the attach calls run on the event loop that serves the Docker API.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from ... import errors
from .handshake import HandshakeError, client_handshake
from .link import STDERR, STDOUT, AttachStream, TetherLink

log = logging.getLogger("vic_ref.portlayer.interaction")

LISTEN_ADDRESS = "127.0.0.1"
HANDSHAKE_TIMEOUT = 600.0  # a tether may serve its end late (or never: the placeholder tether doesn't)
IDS_RETRY = 0.2


def attach_port(docker_port: int) -> int:
    """The attach listener's port for a VCH whose Docker API is on `docker_port` (stable across restarts)."""
    if 1024 <= docker_port < 65535:
        return docker_port + 1
    return 0


class Interaction:
    def __init__(self, exec_: Any = None, *, address: str = LISTEN_ADDRESS, port: int | None = None,
                 docker_port: int = 0):
        self.exec = exec_
        self.address = address
        self.wanted_port = attach_port(docker_port) if port is None else port
        self.port = 0
        self._sock: socket.socket | None = None
        self._task: asyncio.Task | None = None
        self._conns: set[asyncio.Task] = set()
        self._links: dict[str, TetherLink] = {}  # session or container ID → link
        self._changed: asyncio.Condition | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- the listener ---------------------------------------------------------------------------------------------
    @property
    def service_uri(self) -> str:
        return f"tcp://{self.address}:{self.port}" if self.port else ""

    async def start(self) -> None:
        if self._sock is not None:
            return
        self.loop = asyncio.get_running_loop()
        self._changed = asyncio.Condition()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.address, self.wanted_port))
        except OSError as err:
            if not self.wanted_port:
                raise
            log.warning("attach listener: port %d is taken (%s); using a free one: containers created before "
                        "can't attach", self.wanted_port, err)
            sock.bind((self.address, 0))
        sock.listen(128)
        sock.setblocking(False)
        self._sock = sock
        self.port = sock.getsockname()[1]
        if self.exec is not None:
            self.exec.attach_uri = self.service_uri
        self._task = self.loop.create_task(self._accept(), name="attach-listener")
        log.info("attach listener on %s", self.service_uri)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        for task in list(self._conns):
            task.cancel()
        for link in set(self._links.values()):
            link.close()
        self._links.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, peer = await loop.sock_accept(self._sock)
            conn.setblocking(False)
            task = loop.create_task(self._serve(conn, peer), name=f"attach-conn-{peer[1]}")
            self._conns.add(task)
            task.add_done_callback(self._conns.discard)

    async def _serve(self, sock: socket.socket, peer) -> None:
        link = None
        try:
            await client_handshake(sock, timeout=HANDSHAKE_TIMEOUT)
            link = await TetherLink.connect(sock)
            ids = []
            for _ in range(25):
                ids = await link.container_ids()
                if ids:
                    break
                await asyncio.sleep(IDS_RETRY)
            cid = self._container_of(ids)
            link.container_id = cid
            if not self._key_matches(cid, link):
                log.warning("attach: the tether's host key does not match container %s's; dropping", cid[:12])
                link.close()
                return
            version = await link.version()
            log.info("attach: tether of %s connected from %s:%d (sessions %s, version %s)", cid[:12] or "?",
                     *peer[:2], ",".join(i[:12] for i in ids), version)
            await self._register(link, ids)
            watch = asyncio.create_task(self._watch_ids(link))
            try:
                await link.conn.wait_closed()
            finally:
                watch.cancel()
        except (HandshakeError, OSError, asyncssh_errors()) as err:
            log.info("attach connection from %s:%d ended: %s", peer[0], peer[1], err)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one bad connection must not end the listener
            log.exception("attach connection from %s:%d failed", peer[0], peer[1])
        finally:
            if link is not None:
                link.closed.set()
                await self._unregister(link)
            with contextlib.suppress(OSError):
                sock.close()

    async def _watch_ids(self, link: TetherLink) -> None:
        while True:
            await link.changed.wait()
            link.changed.clear()
            await self._register(link, list(link.ids))

    def _container_of(self, ids: list[str]) -> str:
        if self.exec is not None:
            for sid in ids:
                try:
                    container = self.exec.find(sid)
                except errors.VicError:
                    continue
                if container.id == sid:
                    return sid
        return ids[0] if ids else ""

    def _key_matches(self, cid: str, link: TetherLink) -> bool:
        if self.exec is None or not cid:
            return True
        try:
            pem = self.exec.find(cid).snapshot.config.key
        except errors.VicError:
            return True
        if not pem:
            return True
        try:
            import asyncssh
            expected = asyncssh.import_private_key(pem).convert_to_public().export_public_key()
            actual = link.host_key()
            return actual is None or actual.export_public_key() == expected
        except Exception as err:  # noqa: BLE001 - a key we can't read: don't lock the user out
            log.debug("attach: can't compare host keys of %s: %s", cid[:12], err)
            return True

    async def _register(self, link: TetherLink, ids: list[str]) -> None:
        async with self._changed:
            for sid in {*ids, link.container_id} - {""}:
                old = self._links.get(sid)
                if old is not None and old is not link:
                    old.close()
                self._links[sid] = link
            self._changed.notify_all()

    async def _unregister(self, link: TetherLink) -> None:
        async with self._changed:
            for sid in [s for s, lk in self._links.items() if lk is link]:
                del self._links[sid]
            self._changed.notify_all()

    # -- what the personality uses --------------------------------------------------------------------------------
    async def link(self, session_id: str, timeout: float) -> TetherLink:
        """The connection of the tether that runs `session_id` (a container or exec ID), once it is there;
        errors.Timeout if it doesn't come within `timeout` seconds."""
        async def wait() -> TetherLink:
            async with self._changed:
                while True:
                    link = self._links.get(session_id)
                    if link is not None and not link.closed.is_set():
                        return link
                    await self._changed.wait()
        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise errors.Timeout(f"no attach connection from {session_id[:12]} within {timeout:g}s") from None

    def connected(self, session_id: str) -> bool:
        link = self._links.get(session_id)
        return link is not None and not link.closed.is_set()

    async def refresh(self, link: TetherLink) -> None:
        """Ask the tether for its sessions again (after an exec was added)."""
        ids = await link.container_ids()
        await self._register(link, ids)

    async def processes(self, container_id: str, timeout: float = 5.0) -> dict:
        """The container's processes (`docker top`), from its tether; errors.Conflict when it can't tell."""
        link = await self.link(container_id, timeout)
        table = await link.processes()
        if table is None:
            raise errors.Conflict(f"container {container_id} did not report its processes")
        return table

    async def attach(self, session_id: str, timeout: float) -> AttachStream:
        """An attach channel to the session; errors.Conflict with the tether's text if it refuses."""
        import asyncssh
        link = await self.link(session_id, timeout)
        try:
            return await link.attach(session_id)
        except asyncssh.ChannelOpenError as err:
            raise errors.Conflict(err.reason or str(err)) from None


def asyncssh_errors() -> type[BaseException]:
    import asyncssh
    return asyncssh.Error


__all__ = ["Interaction", "AttachStream", "TetherLink", "attach_port", "STDOUT", "STDERR"]
