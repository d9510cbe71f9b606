"""`vsphere-sim`: serve the simulator on its own, with its state kept in a work directory.

    vsphere-sim --listen 127.0.0.1:8989 --workdir DIR [--user U --password P] [--no-tls]

Prints `VSPHERE_URL=...`, `VSPHERE_USER=...`, `VSPHERE_PASSWORD=...` and then `READY`, one per line, and serves until
SIGINT or SIGTERM. Started again on the same DIR it has the same inventory, disks and files.
"""
from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading

from . import DEFAULT_PASSWORD, DEFAULT_USER


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vsphere-sim", description="An in-Python vCenter serving the vim25 SOAP API.")
    parser.add_argument("--listen", default="127.0.0.1:8989", metavar="HOST:PORT",
                        help="address to serve on; port 0 picks a free one (default %(default)s)")
    parser.add_argument("--workdir", required=True, metavar="DIR",
                        help="state (inventory database, datastore files, TLS certificate) lives here")
    parser.add_argument("--user", default=DEFAULT_USER)
    parser.add_argument("--password", default=DEFAULT_PASSWORD)
    parser.add_argument("--no-tls", action="store_true", help="serve plain HTTP instead of HTTPS")
    parser.add_argument("--no-seed", action="store_true",
                        help="start a fresh workdir with an empty inventory instead of the default one")
    parser.add_argument("--lock-wait", type=float, default=15.0, metavar="SECONDS",
                        help="wait this long for a previous sim on the same workdir to finish stopping")
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    # Installed before the sim starts so a signal during start-up still ends in a clean close.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    from .simulator import Simulator
    sim = Simulator(args.workdir, user=args.user, password=args.password, seed=not args.no_seed,
                    lock_wait=args.lock_wait)
    # A server whose heap is mostly the inventory, which lives as long as the process: what boot built is frozen out
    # of the collector's scans, and each call's few thousand short-lived objects no longer trigger a young collection
    # every 700 allocations (the collector was ~5% of a VM cycle).
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        server = sim.serve(args.listen, tls=not args.no_tls)
        print(f"VSPHERE_URL={server.url}", flush=True)
        print(f"VSPHERE_USER={sim.user}", flush=True)
        print(f"VSPHERE_PASSWORD={sim.password}", flush=True)
        print("READY", flush=True)
        while not stop.wait(1.0):  # a timed wait so signal handlers run promptly
            pass
    finally:
        sim.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
