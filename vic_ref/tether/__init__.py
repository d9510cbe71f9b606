"""The container VM's guest program (VIC's tether), booted from the bootstrap ISO: `python -m vic_ref.tether`.

- `tether.py`: the tether (config, root filesystem, sessions, guest operations, reaping, power off);
- `nsinit.py`: the single-threaded launcher between the tether and a container process (namespaces, mounts, chroot);
- `logfile.py`: the `output.log` record format (and its reader, for `docker logs`);
- `placeholder.py`: a stand-in that runs no process, for tests whose images are empty disks
  (`python -m vic_ref.tether --placeholder`).
"""
from __future__ import annotations

import sys

from .tether import Tether, parse_signal

__all__ = ["Tether", "parse_signal", "main"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--placeholder" in args:
        from .placeholder import main as placeholder_main
        return placeholder_main()
    from .tether import main as tether_main
    return tether_main()
