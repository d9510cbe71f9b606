"""The tether's handshake server (vic_ref/tether/attach.py) against the VCH's client, with stale bytes and SYNs."""
from __future__ import annotations

import asyncio
import socket

from vic_ref.portlayer.interaction.handshake import SYN, client_handshake
from vic_ref.tether.attach import server_handshake


def test_handshake_skips_junk_and_restarts_on_a_new_syn():
    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        a.sendall(b"junk" + bytes([SYN, 7]))  # a stale SYN whose handshake the client abandoned
        loop = asyncio.get_running_loop()
        server = loop.create_task(server_handshake(loop, b))
        await asyncio.sleep(0.05)
        await asyncio.wait_for(asyncio.gather(client_handshake(a, attempt=0.3), server), 5)
        a.close()
        b.close()
    asyncio.run(main())
