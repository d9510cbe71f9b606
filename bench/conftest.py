"""Benchmark targets: the sim served by a separate process (so client and server don't share a GIL), over HTTP and
HTTPS, or whatever vSphere VSPHERE_URL/VSPHERE_USER/VSPHERE_PASSWORD point at."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
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
            return proc, BenchTarget(label, env["VSPHERE_URL"], env["VSPHERE_USER"], env["VSPHERE_PASSWORD"])
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
