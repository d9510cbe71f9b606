"""Benchmark targets: the sim served by a separate process (so client and server don't share a GIL), over HTTP and
HTTPS, or whatever vSphere VSPHERE_URL/VSPHERE_USER/VSPHERE_PASSWORD point at."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]


@dataclass
class BenchTarget:
    label: str  # "sim-http", "sim-https" or "external"
    url: str
    user: str
    password: str
    pid: int | None = None  # the server's process, when it is ours: its CPU time is read from /proc

    def server_cpu(self) -> float | None:
        """CPU seconds (user + system) the server process has used so far, or None when it isn't ours."""
        if self.pid is None:
            return None
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @property
    def transport(self) -> str:
        return urlsplit(self.url).scheme

    def connect(self):
        from pyVim.connect import SmartConnect
        parts = urlsplit(self.url)
        return SmartConnect(host=parts.hostname, port=parts.port or (443 if parts.scheme == "https" else 80),
                            user=self.user, pwd=self.password, protocol=parts.scheme, disableSslCertValidation=True)


def pytest_configure(config):
    # pytest-benchmark writes --benchmark-json into this directory but does not create it
    (REPO / "bench" / ".results").mkdir(parents=True, exist_ok=True)


def pytest_collection_modifyitems(session, config, items):
    # The vim25 suites first: the Docker suites' VCH (its sim, appliance and up to 1,000 containers, alive for the
    # rest of the session) would otherwise run its watchers beside the sims the vim25 suites measure.
    items.sort(key=lambda item: 0 if Path(str(item.fspath)).name.startswith("test_vim25") else 1)


def _external() -> BenchTarget | None:
    url = os.environ.get("VSPHERE_URL")
    if not url:
        return None
    if "://" not in url:
        url = f"https://{url}/sdk"
    return BenchTarget("external", url, os.environ.get("VSPHERE_USER", ""), os.environ.get("VSPHERE_PASSWORD", ""))


def _serve_sim(workdir: Path, tls: bool) -> tuple[subprocess.Popen, BenchTarget]:
    cmd = [sys.executable, "-m", "vsphere_sim", "--listen", "127.0.0.1:0", "--workdir", str(workdir)]
    if not tls:
        cmd.append("--no-tls")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    env, deadline = {}, time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        line = line.strip()
        if line == "READY":
            label = "sim-https" if tls else "sim-http"
            return proc, BenchTarget(label, env["VSPHERE_URL"], env["VSPHERE_USER"], env["VSPHERE_PASSWORD"],
                                     pid=proc.pid)
        key, _, value = line.partition("=")
        env[key] = value
    proc.kill()
    raise RuntimeError(f"vsphere-sim did not start: {env}")


def _targets() -> list[str]:
    return ["external"] if _external() is not None else ["sim-http", "sim-https"]


@pytest.fixture(scope="session", params=_targets())
def bench_target(request, tmp_path_factory):
    if request.param == "external":
        yield _external()
        return
    proc, target = _serve_sim(tmp_path_factory.mktemp(request.param), tls=request.param == "sim-https")
    yield target
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def bench_si(bench_target):
    from pyVim.connect import Disconnect
    si = bench_target.connect()
    yield si
    try:
        Disconnect(si)
    except Exception:
        pass


# -- the Docker side: an embedded VCH (`vic-ref up`) with busybox from a local registry, or DOCKER_HOST -------------
@dataclass
class DockerTarget:
    label: str  # "vch-sim" (the embedded VCH) or "external" (DOCKER_HOST)
    image: str
    host: str
    vch: object | None = None  # RunningVCH when embedded
    vsphere: BenchTarget | None = None  # where the VCH's appliance VM lives, for the VCH-start sweep
    appliance: str | None = None  # the appliance VM's name
    closers: list = field(default_factory=list)

    def close(self) -> None:
        """Stop the embedded VCH and registry (idempotent): the sweeps end with this, so the vim25 suites that run
        after them don't share the machine with an idle VCH."""
        while self.closers:
            self.closers.pop()()

    def client(self, timeout: int = 120):
        import docker
        if self.vch is not None:
            return self.vch.docker_client(timeout=timeout)
        return docker.from_env(timeout=timeout)


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def sweep_levels(name: str, default: str) -> list[int]:
    return [int(n) for n in (os.environ.get(name) or default).replace(" ", "").split(",") if n]


@pytest.fixture(scope="session")
def docker_target(tmp_path_factory):
    host = os.environ.get("DOCKER_HOST")
    if host:
        import docker
        image = os.environ.get("BENCH_IMAGE", "busybox:latest")
        client = docker.from_env(timeout=120)
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            client.images.pull(image)
        client.close()
        vsphere, appliance = _external(), os.environ.get("BENCH_VCH_NAME")
        yield DockerTarget("external", image, host, vsphere=vsphere if appliance else None, appliance=appliance)
        return
    from vic_ref.testing.registry import push_busybox, start_registry
    from vic_ref.testing.vch import start_vch
    registry = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        image = push_busybox(registry).reference
        vch = start_vch(tmp_path_factory.mktemp("vch"))
        try:
            client = vch.docker_client()
            client.images.pull(image)
            client.close()
            vsphere = BenchTarget("vch-sim", vch.vsphere_url, vch.vsphere_user, vch.vsphere_password)
            target = DockerTarget("vch-sim", image, vch.docker_host, vch=vch, vsphere=vsphere, appliance=vch.name,
                                  closers=[registry.stop, vch.stop])
            yield target
            target.close()
        finally:
            vch.stop()
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def docker_api(docker_target):
    """docker-py's low-level APIClient, one call per Docker API request."""
    client = docker_target.client()
    yield client.api
    client.close()


def sim_counts(docker_target) -> dict[str, int] | None:
    """The embedded sim's calls served per vim25 method (GET /_sim/counts), or None on another target."""
    if docker_target.vch is None:
        return None
    import json
    import urllib.request
    with urllib.request.urlopen(f"{docker_target.vch.control_url}/counts", timeout=30) as reply:
        data = json.loads(reply.read())
    return data.get("counts", data) if isinstance(data, dict) else None


def vim25_calls_of_one(docker_target, fn, setup=None) -> dict[str, int] | None:
    """Run `fn` once more (after `setup`, untimed) and count the vim25 calls the sim served meanwhile, by method.
    Background calls (the VCH's own WaitForUpdatesEx loop) land in the count too; they are few."""
    if docker_target.vch is None:
        return None
    args, kwargs = setup() if setup is not None else ((), {})
    before = sim_counts(docker_target)
    fn(*args, **kwargs)
    after = sim_counts(docker_target)
    if before is None or after is None:
        return None
    delta = {m: after[m] - before.get(m, 0) for m in after if isinstance(after[m], int)
             and after[m] - before.get(m, 0) > 0}
    return dict(sorted(delta.items(), key=lambda kv: -kv[1]))


# -- where `make bench`'s time goes: every test's setup + call + teardown, for the report --------------------------
_durations: dict[str, float] = {}


def pytest_runtest_logreport(report):
    module = report.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    _durations[module] = _durations.get(module, 0.0) + report.duration


def pytest_sessionfinish(session, exitstatus):
    import json
    path = REPO / "bench" / ".results" / "durations.json"
    try:
        path.write_text(json.dumps({k: round(v, 1) for k, v in _durations.items()}, indent=1))
    except OSError:
        pass
