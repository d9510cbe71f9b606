"""`vic-ref`: the embedded sim plus a deployed VCH, for people (`make run`) and scripts.

    vic-ref up --workdir DIR [--docker-port N] [--sim-port N] [--tls] [--name NAME] [--export]

starts `vsphere-sim` (a subprocess, state in DIR/sim), deploys the VCH on it with `vic-machine create`'s own code
(`vic_ref.machine.commands.create`; its log lines go to stderr) or reuses the one a previous run left in DIR (powered
on again, its settings brought to the options given; its release is kept: `vic-machine upgrade` changes that), prints

    VSPHERE_URL=...  VSPHERE_USER=...  VSPHERE_PASSWORD=...  DOCKER_HOST=tcp://127.0.0.1:N
    (DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH=DIR/certs with --tls)
    READY

one per line on stdout (`--export`: as `export NAME=value` lines for a shell, then a `# READY` comment), and runs until
SIGTERM or SIGINT; then it powers the appliance off and stops the sim. Ports not given are those of the previous run
on DIR when still free (so DOCKER_HOST stays the same across restarts), else free ones. Logs go to stderr; the sim's
to DIR/sim.log, the appliance's to its guest.log on the datastore (DIR/sim/datastores/LocalDS_0/<name>/guest.log).
"""
from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import errors

log = logging.getLogger("vic_ref.cli")

# The sim's default inventory (vsphere_sim/inventory.py): the VCH goes on the cluster and the VMFS datastore.
DATACENTER = "DC0"
COMPUTE_RESOURCE = "DC0_C0"
DATASTORE = "LocalDS_0"
DEFAULT_NAME = "vic-ref"
DEFAULT_VOLUME_STORE = f"{DATASTORE}/VIC:default"  # volumes in `[LocalDS_0] VIC/volumes/<name>/`, as VIC's docs show
SIM_START_TIMEOUT = 60.0
SIM_STOP_TIMEOUT = 15.0
STATE_FILE = "vic-ref.json"


class _Interrupted(Exception):
    """SIGTERM/SIGINT while starting up."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vic-ref", description="vic-ref: a VCH on the embedded vSphere simulator")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the sim and a VCH on it; run until SIGTERM/SIGINT")
    up.add_argument("--workdir", required=True, metavar="DIR", help="state of the sim and the VCH lives here")
    up.add_argument("--docker-port", type=int, default=None, metavar="N", help="the Docker API port")
    up.add_argument("--sim-port", type=int, default=None, metavar="N", help="the sim's vim25 port (plain HTTP)")
    up.add_argument("--tls", action="store_true", help="serve the Docker API over TLS with client verification")
    up.add_argument("--name", default=DEFAULT_NAME, help="the VCH's name (default %(default)s)")
    up.add_argument("--export", action="store_true", help="print `export NAME=value` lines for a shell")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the sim and the VCH")
    up.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    up.add_argument("--bridge-network-range", default=None, metavar="CIDR",
                    help="the VCH's loopback range for its networks (default: the previous run's, else the first "
                         "free 127.N.0.0/16 from 127.42.0.0/16 on)")
    up.add_argument("--appliance-version", default=None, metavar="VERSION",
                    help="deploy an appliance of this release (vic_ref.migration.RELEASES; default: the current "
                         "one); an existing VCH keeps its own")
    up.add_argument("--volume-store", action="append", default=None, metavar="DS/PATH:NAME",
                    help="a volume store, as vic-machine takes it (repeatable); `default` holds anonymous volumes "
                         f"(default: {DEFAULT_VOLUME_STORE})")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "up":
        return Up(args).run()
    return 2


# -- ports -----------------------------------------------------------------------------------------------------------
def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: SIGTERM when vic-ref dies, so a killed `vic-ref up` leaves no sim behind (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# -- the sim -------------------------------------------------------------------------------------------------------
class SimProcess:
    """`vsphere-sim` as a subprocess: started, read until READY, stopped with SIGTERM (SIGKILL if it hangs)."""

    def __init__(self, workdir: Path, port: int, log_path: Path):
        self.workdir = workdir
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.values: dict[str, str] = {}

    def start(self, timeout: float) -> None:
        argv = [sys.executable, "-m", "vsphere_sim", "--listen", f"127.0.0.1:{self.port}", "--workdir",
                str(self.workdir), "--no-tls", "--log-level", "INFO"]
        log_file = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log_file, stdin=subprocess.DEVNULL,
                                         preexec_fn=_die_with_parent)
        finally:
            log_file.close()
        lines: queue.Queue = queue.Queue()

        def read():
            for raw in self.proc.stdout:
                lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
            lines.put(None)

        threading.Thread(target=read, name="sim-stdout", daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise errors.Timeout(f"the sim did not start within {timeout:g}s; see {self.log_path}") from None
            if line is None:
                code = self.proc.wait()
                raise errors.Unavailable(f"the sim exited with status {code} while starting; see {self.log_path}")
            if line == "READY":
                return
            name, sep, value = line.partition("=")
            if sep:
                self.values[name] = value

    @property
    def url(self) -> str:
        return self.values["VSPHERE_URL"]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = SIM_STOP_TIMEOUT) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("the sim did not stop within %gs; killing it", timeout)
            self.proc.kill()
            self.proc.wait(5)


# -- vic-ref up ----------------------------------------------------------------------------------------------------
class Up:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.workdir = Path(args.workdir).resolve()
        self.sim: SimProcess | None = None
        self.session = None
        self.vch = None
        self.stop = threading.Event()
        self.starting = True
        self.range_lock = None  # held while we run: no other `vic-ref up` takes our bridge range

    def _on_signal(self, signum, _frame):
        self.stop.set()
        if self.starting:
            raise _Interrupted(signal.Signals(signum).name)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            try:
                self.start()
            except _Interrupted:
                return 0
            except errors.VicError as err:
                print(f"vic-ref up: {err}", file=sys.stderr, flush=True)
                return 1
            self.starting = False
            while not self.stop.wait(0.5):  # timed, so signals are handled promptly
                if not self.sim.alive():
                    print(f"vic-ref up: the sim exited (status {self.sim.proc.returncode}); see "
                          f"{self.sim.log_path}", file=sys.stderr, flush=True)
                    return 1
            return 0
        finally:
            self.starting = False
            self.shutdown()

    def start(self) -> None:
        from .config import vch as vchconfig
        from .machine import certs, deploy
        from .trace import Operation
        from .vsphere import Session, Target

        args = self.args
        self.workdir.mkdir(parents=True, exist_ok=True)
        previous = self._load_state()
        began = time.monotonic()
        sim_port = args.sim_port if args.sim_port is not None else _reusable(previous.get("sim_port"))
        # decided before the sim starts: it resumes a VCH left powered on, which takes its old port at once
        docker_port = args.docker_port
        if docker_port is None:
            docker_port = _reusable(previous.get("docker_port")) or free_port()
        self.sim = SimProcess(self.workdir / "sim", sim_port or 0, self.workdir / "sim.log")
        self.sim.start(args.timeout)
        log.info("sim up at %s in %.2fs", self.sim.url, time.monotonic() - began)

        op = Operation.new("vic-ref up", timeout=args.timeout)
        user, password = self.sim.values.get("VSPHERE_USER", ""), self.sim.values.get("VSPHERE_PASSWORD", "")
        target = Target(self.sim.url, user, password, datacenter=DATACENTER, compute_resource=COMPUTE_RESOURCE,
                        datastore=DATASTORE, keepalive=None)
        self.session = Session.open(op, target, populate=True)
        bridge_range = self._bridge_range(previous)
        stores = volume_stores(args.volume_store)
        cert_path = self.workdir / "certs"
        deployed = time.monotonic()
        existing = deploy.find(op, self.session, args.name)
        if existing is None:
            self.vch = self._create(op, user, password, stores, bridge_range, docker_port, cert_path)
        else:
            if args.appliance_version and args.appliance_version != existing.config.version:
                log.warning("VCH %s exists at version %s: --appliance-version %s ignored (vic-machine upgrade "
                            "changes a VCH's version)", args.name, existing.config.version, args.appliance_version)
            tls = certs.prepare(args.name, cert_path=cert_path) if args.tls else None
            config = dataclasses.replace(existing.config)
            config.storage = dataclasses.replace(config.storage, volume_stores=stores)
            config.network = dataclasses.replace(config.network, bridge_ip_range=bridge_range)
            config.docker = dataclasses.replace(config.docker, port=docker_port)
            config.cert = vchconfig.Certificate(host_cert=tls.host_cert if tls else b"",
                                                host_key=tls.host_key if tls else b"",
                                                ca_certs=tls.ca_certs if tls else b"")
            self.vch = deploy.ensure(op, self.session, config, timeout=args.timeout,
                                     ssl_context=tls.client_ssl_context() if tls else None)
        log.info("VCH %s up in %.2fs (%.2fs in all)", self.vch.name, time.monotonic() - deployed,
                 time.monotonic() - began)
        self._save_state({"sim_port": int(self.sim.url.rsplit(":", 1)[1].split("/")[0]),
                          "docker_port": docker_port, "name": args.name, "bridge_range": bridge_range})
        values = {"VSPHERE_URL": self.sim.url, "VSPHERE_USER": user, "VSPHERE_PASSWORD": password,
                  "DOCKER_HOST": f"tcp://127.0.0.1:{docker_port}"}
        if args.tls:
            values.update(DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(cert_path))
        self._announce(values)

    def _create(self, op, user: str, password: str, stores: dict[str, str], bridge_range: str, docker_port: int,
                cert_path: Path):
        """A new VCH, deployed as `vic-machine create` deploys one (the same code; its log lines on stderr)."""
        from .machine import commands, flags
        from .machine.output import Output
        from .migration import RELEASES
        args = self.args
        if args.appliance_version and args.appliance_version not in RELEASES:
            raise errors.InvalidArgument(f"--appliance-version {args.appliance_version}: vic-ref ships "
                                         f"{', '.join(sorted(RELEASES))}")
        out = Output(tty=False, stdout=sys.stderr, stderr=sys.stderr)
        conn = commands.Connection(target=flags.parse_target(self.sim.url), user=user, password=password)
        opts = commands.CreateOptions(
            name=args.name, compute_resource=COMPUTE_RESOURCE, image_store=DATASTORE, volume_stores=stores,
            bridge_range=bridge_range, docker_port=docker_port, no_tls=not args.tls,
            cert_path=str(cert_path) if args.tls else None, timeout=args.timeout,
            appliance_version=args.appliance_version)
        try:
            return commands.create(op, out, conn, opts)
        except commands.MachineError as err:
            raise errors.Unavailable("\n".join([err.message, *err.hints, *([err.details] if err.details else [])])) \
                from err

    def _announce(self, values: dict[str, str]) -> None:
        if self.args.export:
            import shlex
            lines = [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
            lines.append(f"# VCH {self.args.name} is up; the appliance's log: "
                         f"{self.workdir}/sim/datastores/{DATASTORE}/{self.args.name}/guest.log")
            if os.geteuid() != 0:
                lines.append("# not running as root: containers can be created but not started "
                             "(namespaces, chroot and mounts need root)")
            lines.append("# READY (Ctrl-C stops the VCH and the sim)")
        else:
            lines = [f"{name}={value}" for name, value in values.items()] + ["READY"]
        print("\n".join(lines), flush=True)

    def shutdown(self) -> None:
        """Power the appliance off (its containers are left as they are), log out, stop the sim; all bounded."""
        from .trace import Operation
        op = Operation.new("vic-ref down", timeout=SIM_STOP_TIMEOUT)
        if self.vch is not None and self.session is not None and self.sim is not None and self.sim.alive():
            from .machine import deploy
            try:
                deploy.power_off(op, self.session, self.vch)
            except errors.VicError as err:
                log.warning("powering the VCH off: %s", err)
        if self.session is not None:
            try:
                self.session.close(op)
            except errors.VicError:
                pass
        if self.sim is not None:
            self.sim.stop()

    def _bridge_range(self, previous: dict) -> str:
        """--bridge-network-range, else the previous run's (its containers' addresses are in it), else a free one."""
        from .config import vch as vchconfig
        from .portlayer.network import ranges
        chosen = self.args.bridge_network_range or previous.get("bridge_range")
        if not chosen and previous.get("name"):
            chosen = vchconfig.DEFAULT_BRIDGE_RANGE  # deployed before ranges were chosen: keep what it has
        if chosen:
            self.range_lock = ranges.lock(chosen)
            if self.range_lock is None:
                log.warning("bridge range %s is locked by another vic-ref up; using it anyway", chosen)
            return chosen
        try:
            chosen, self.range_lock = ranges.pick()
        except RuntimeError as err:
            raise errors.Unavailable(str(err)) from None
        return chosen

    # -- ports kept across runs ---------------------------------------------------------------------------------
    def _load_state(self) -> dict:
        try:
            return json.loads((self.workdir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return {}

    def _save_state(self, state: dict) -> None:
        (self.workdir / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n")


def volume_stores(options: list[str] | None) -> dict[str, str]:
    """`--volume-store ds/path:name` options → {name: "[ds] path"} (vic-machine's syntax; an empty path is `VIC`)."""
    from .portlayer.storage.volumes import parse_store_option
    stores: dict[str, str] = {}
    for text in options if options is not None else [DEFAULT_VOLUME_STORE]:
        name, path = parse_store_option(text)
        if name in stores:
            raise errors.InvalidArgument(f"volume store {name} is given twice")
        stores[name] = path
    return stores


def _reusable(port) -> int | None:
    return port if isinstance(port, int) and port > 0 and port_free(port) else None


if __name__ == "__main__":
    sys.exit(main())
