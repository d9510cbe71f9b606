"""The byte handshake that starts every attach stream, before SSH (VIC `pkg/serial/handshake.go`,
vic-behaviour.md §4.12).

A serial line carries whatever the guest or an earlier connection left in it; the handshake puts both ends in step:

    client (VCH)                 server (tether)
    SYN(0x16), n         ──▶
                         ◀──     ACK(0x06), n+1, m        (NAK 0x15 to refuse)
    ACK, m+1             ──▶
                         ◀──     ACK

All numbers are one byte, modulo 256. The client skips anything else it reads before the answer it expects, and sends
a fresh SYN (a new n) after `attempt` seconds without one, so a tether that opens its end late still gets in step.
After the last ACK the stream belongs to SSH: the tether sends its SSH banner first.

`client_handshake` reads one byte at a time from a raw socket, so it never takes bytes that belong to SSH.
"""
from __future__ import annotations

import asyncio
import random
import socket

SYN, ACK, NAK = 0x16, 0x06, 0x15


class HandshakeError(ConnectionError):
    pass


async def _recv_byte(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> int:
    data = await loop.sock_recv(sock, 1)
    if not data:
        raise HandshakeError("the serial stream closed during the handshake")
    return data[0]


async def _expect_answer(loop, sock, n: int) -> int:
    """Read until `ACK, n+1, m` (m returned); HandshakeError on NAK so the caller starts again."""
    want = (n + 1) & 0xFF
    while True:
        byte = await _recv_byte(loop, sock)
        if byte == NAK:
            raise HandshakeError("the tether refused the handshake (NAK)")
        if byte != ACK:
            continue
        if await _recv_byte(loop, sock) != want:
            continue
        return await _recv_byte(loop, sock)


async def client_handshake(sock: socket.socket, *, attempt: float = 1.0, timeout: float | None = None) -> None:
    """The VCH's side on a connected non-blocking socket; HandshakeError when the stream closes or `timeout`
    passes."""
    loop = asyncio.get_running_loop()

    async def run() -> None:
        while True:
            n = random.randrange(256)
            await loop.sock_sendall(sock, bytes([SYN, n]))
            try:
                m = await asyncio.wait_for(_expect_answer(loop, sock, n), attempt)
            except (TimeoutError, HandshakeError) as err:
                if isinstance(err, HandshakeError) and "closed" in str(err):
                    raise
                continue
            await loop.sock_sendall(sock, bytes([ACK, (m + 1) & 0xFF]))
            try:
                while await asyncio.wait_for(_recv_byte(loop, sock), attempt) != ACK:
                    pass
            except TimeoutError:
                continue
            return

    if timeout is None:
        await run()
    else:
        try:
            await asyncio.wait_for(run(), timeout)
        except TimeoutError:
            raise HandshakeError(f"no handshake within {timeout:g}s") from None


async def server_handshake(sock: socket.socket) -> None:
    """The tether's side (for test tethers), on a non-blocking socket: wait for SYN,n; answer; check ACK,m+1;
    confirm."""
    loop = asyncio.get_running_loop()
    while True:
        if await _recv_byte(loop, sock) != SYN:
            continue
        n = await _recv_byte(loop, sock)
        m = random.randrange(256)
        await loop.sock_sendall(sock, bytes([ACK, (n + 1) & 0xFF, m]))
        ack = await _recv_byte(loop, sock)
        if ack == SYN:  # the client gave up on us and started again: answer that one
            continue
        value = await _recv_byte(loop, sock)
        if ack == ACK and value == (m + 1) & 0xFF:
            await loop.sock_sendall(sock, bytes([ACK]))
            return
        await loop.sock_sendall(sock, bytes([NAK]))


__all__ = ["client_handshake", "server_handshake", "HandshakeError", "SYN", "ACK", "NAK"]
