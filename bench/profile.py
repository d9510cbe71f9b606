"""Where the time of the lean VM cycle goes, on both sides of the wire (pyinstrument; not part of `make bench`).

    python -m bench.profile [--cycles 200] [--out bench/profiles]

Starts the sim over HTTP under bench/_profiled_sim.py, runs the poll-style CreateVM→Reconfig→PowerOn→PowerOff→Destroy
cycle in this process under pyinstrument, and writes cycle-client.txt and cycle-server.txt; the server's is all its
connection threads added up (idle waits of WaitForUpdatesEx or keep-alive reads included: read it by the SOAP call
frames, not the total).
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pyinstrument import Profiler

from .conftest import REPO, BenchTarget
from .test_vim25_cycle import OPS, PollWaiter, _cycle, _placement


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "profiles")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    server_txt = (args.out / "cycle-server.txt").resolve()
    with tempfile.TemporaryDirectory() as workdir:
        proc = subprocess.Popen([sys.executable, "-m", "bench._profiled_sim", str(server_txt), "--listen",
                                 "127.0.0.1:0", "--workdir", workdir, "--no-tls"], cwd=REPO, stdout=subprocess.PIPE,
                                text=True)
        env = {}
        for line in proc.stdout:
            line = line.strip()
            if line == "READY":
                break
            key, _, value = line.partition("=")
            env[key] = value
        target = BenchTarget("sim-http", env["VSPHERE_URL"], env["VSPHERE_USER"], env["VSPHERE_PASSWORD"],
                             pid=proc.pid)
        from pyVim.connect import Disconnect
        si = target.connect()
        folder, pool, ds_name = _placement(si)
        wait = PollWaiter(si)
        samples = {op: [] for op in OPS}
        for _ in range(5):
            _cycle(folder, pool, ds_name, wait, samples)
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        cpu0, began = target.server_cpu(), time.perf_counter()
        profiler.start()
        for _ in range(args.cycles):
            _cycle(folder, pool, ds_name, wait, samples)
        session = profiler.stop()
        wall, cpu1 = time.perf_counter() - began, target.server_cpu()
        Disconnect(si)
        (args.out / "cycle-client.txt").write_text(profiler.output_text(unicode=True, color=False))
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    server_ms = (cpu1 - cpu0) / args.cycles * 1e3
    print(f"{args.cycles} cycles in {wall:.2f} s: {wall / args.cycles * 1e3:.2f} ms per cycle, "
          f"{args.cycles * 5 / wall:.0f} vim25 task ops/s (profiled); server CPU {server_ms:.2f} ms per cycle; "
          f"client profile {session.duration:.2f} s")
    print(f"wrote {args.out / 'cycle-client.txt'} and {server_txt}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
