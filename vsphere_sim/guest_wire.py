"""The wire level of the guest channel, shared by its two ends: `guest_channel.py` (the guest's side, what a guest
program imports) and `guest_transport.py` (the sim's side, where the protocol is described). Standard library only:
a guest program must be able to import it without pyVmomi.
"""
from __future__ import annotations

import json
import logging
import select
import socket
from collections.abc import Callable

log = logging.getLogger("vsphere_sim.guest_wire")

PROTOCOL = 1
# The environment a guest program is started with.
ENV_CHANNEL = "VSPHERE_SIM_GUEST_CHANNEL"  # path of the sim's guest channel (a Unix socket)
ENV_TOKEN = "VSPHERE_SIM_GUEST_TOKEN"      # this boot's secret; it names the VM and dies with this boot
ENV_DIR = "VSPHERE_SIM_GUEST_DIR"          # the guest's scratch directory


def encode(message: dict) -> bytes:
    """One message as it goes on the wire: compact JSON on one `\\n`-terminated UTF-8 line."""
    return (json.dumps(message, separators=(",", ":")) + "\n").encode("utf-8")


def read_lines(sock: socket.socket, on_line: Callable[[bytes], None], closed: Callable[[], bool],
               max_line: int | None = None) -> None:
    """Read `sock` and call `on_line` with each non-blank line (without its `\\n`) until the peer closes, `closed()`
    turns true (checked every half second), the socket fails, `on_line` raises ValueError, or a line grows past
    `max_line` bytes. The caller closes the socket afterwards."""
    buffer = b""
    try:
        while not closed():
            readable, _, _ = select.select([sock], [], [], 0.5)
            if not readable:
                continue
            chunk = sock.recv(65536)
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    on_line(line)
            if max_line is not None and len(buffer) > max_line:
                log.warning("guest channel: line over %d bytes; closing the connection", max_line)
                return
    except (OSError, ValueError):
        pass


def close_socket(sock: socket.socket) -> None:
    """Shut a socket down both ways (so a reader blocked on it wakes) and close it; errors are ignored."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
