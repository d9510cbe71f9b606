"""The attach listener and the SSH protocol against a fake tether (no vSphere): handshake, container-ids, version,
attach channels, stdout/stderr, stdin and close-stdin, window-change, unblock, refusals."""
from __future__ import annotations

import asyncio
import socket

import pytest

from vic_ref import errors
from vic_ref.portlayer.interaction import STDERR, STDOUT, Interaction, attach_port
from vic_ref.portlayer.interaction.handshake import ACK, SYN, client_handshake, server_handshake

from .fake_tether import FakeTether, cat, echo

CID = "a" * 64


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def _started() -> Interaction:
    inter = Interaction(port=0)
    await inter.start()
    return inter


async def _drain(stream) -> list[tuple[int, bytes]]:
    out = []
    while (item := await stream.read()) is not None:
        out.append(item)
    return out


def test_attach_port_is_stable():
    assert attach_port(2375) == 2376
    assert attach_port(1) == 0


def test_handshake_skips_junk():
    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(b, b"console noise\r\n")
        server = asyncio.create_task(server_handshake(b))
        await client_handshake(a, timeout=5)
        await server
        await loop.sock_sendall(b, b"SSH-2.0-x\r\n")
        assert await loop.sock_recv(a, 100) == b"SSH-2.0-x\r\n"
        a.close()
        b.close()
    run(main())
    assert (SYN, ACK) == (0x16, 0x06)


def test_attach_output_and_exit():
    async def main():
        inter = await _started()
        tether = FakeTether({CID: echo("hi\n", stderr="oops\n")})
        await tether.run(inter.port)
        stream = await inter.attach(CID, timeout=10)
        assert await stream.unblock()
        out = await _drain(stream)
        assert b"".join(d for s, d in out if s == STDOUT) == b"hi\n"
        assert b"".join(d for s, d in out if s == STDERR) == b"oops\n"
        await asyncio.wait_for(tether.version_asked.wait(), 5)
        tether.close()
        await inter.close()
    run(main())


def test_stdin_and_resize():
    async def main():
        inter = await _started()
        tether = FakeTether({CID: cat})
        await tether.run(inter.port)
        stream = await inter.attach(CID, timeout=10)
        await stream.unblock()
        assert await stream.resize(100, 30)
        stream.write(b"data\n")
        assert await stream.close_stdin()
        out = await _drain(stream)
        assert b"".join(d for _, d in out) == b"data\n"
        assert tether.io[CID].sizes == [(100, 30)]
        tether.close()
        await inter.close()
    run(main())


def test_refusals_and_missing_link():
    async def main():
        inter = await _started()
        tether = FakeTether({CID: cat}, run_block=False)
        await tether.run(inter.port)
        await inter.link(CID, 10)
        with pytest.raises(errors.Conflict, match="is invalid"):
            link = await inter.link(CID, 1)
            try:
                await link.attach("b" * 64)
            except Exception as err:  # the link's own error: map as Interaction.attach does
                import asyncssh
                if isinstance(err, asyncssh.ChannelOpenError):
                    raise errors.Conflict(err.reason) from None
                raise
        with pytest.raises(errors.Timeout):
            await inter.link("c" * 64, 0.2)
        tether.close()
        await inter.close()
    run(main())
