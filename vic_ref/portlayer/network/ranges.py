"""Choosing a VCH's loopback range, so several VCHs run side by side on one machine (`vic-ref up`).

A range is free when its first address's port 53 can be bound (no name server of another VCH, or of anything else,
answers there) and no other `vic-ref up` holds its lock: an advisory lock file per range, held for the life of the
process that chose it, closes the window between choosing a range and the appliance binding its name server.
"""
from __future__ import annotations

import fcntl
import ipaddress
import os
import socket
import tempfile

FIRST = 42  # 127.42.0.0/16, the default range (DESIGN-DECISIONS §7)
LAST = 254
LOCK_DIR = os.path.join(tempfile.gettempdir(), "vic-ref-ranges")


def port_53_free(address: str) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address, 53))
            except PermissionError:
                continue  # not root: nobody can bind it, so nothing tells us it is taken
            except OSError:
                return False
    return True


def lock(network: str, lock_dir: str = LOCK_DIR):
    """An open file holding the range's lock, or None if another process holds it."""
    os.makedirs(lock_dir, exist_ok=True)
    path = os.path.join(lock_dir, network.replace("/", "_") + ".lock")
    handle = open(path, "a+")  # noqa: SIM115 - kept open: the lock lives as long as the file
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def pick(lock_dir: str = LOCK_DIR) -> tuple[str, object]:
    """(range, lock) of the first free 127.N.0.0/16, N from 42 up; RuntimeError when none is."""
    for n in range(FIRST, LAST + 1):
        network = f"127.{n}.0.0/16"
        held = lock(network, lock_dir)
        if held is None:
            continue
        first = str(next(ipaddress.ip_network(network).hosts()))
        if port_53_free(first):
            return network, held
        held.close()
    raise RuntimeError("no free loopback range for the VCH's bridge network (127.42-254.0.0/16 are all taken)")


__all__ = ["pick", "lock", "port_53_free", "LOCK_DIR"]
