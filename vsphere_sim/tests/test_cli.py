"""`vsphere-sim` as a process: the lines it prints, serving HTTP and HTTPS, clean exit on SIGTERM/SIGINT, restart."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

pytestmark = [pytest.mark.sim_only, pytest.mark.timeout(90)]
REPO = Path(__file__).resolve().parents[2]


def start(workdir: Path, *extra: str) -> tuple[subprocess.Popen, dict]:
    # `python -m vsphere_sim` runs the same main() as the console script, without needing the package installed
    proc = subprocess.Popen([sys.executable, "-m", "vsphere_sim", "--listen", "127.0.0.1:0", "--workdir", str(workdir),
                             *extra], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if lines[-1] == "READY":
            return proc, dict(entry.split("=", 1) for entry in lines[:-1])
    proc.kill()
    raise AssertionError(f"no READY: {lines} {proc.stderr.read()}")


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()


def connect(env: dict):
    from pyVim.connect import SmartConnect
    parts = urlsplit(env["VSPHERE_URL"])
    return SmartConnect(host=parts.hostname, port=parts.port, user=env["VSPHERE_USER"], pwd=env["VSPHERE_PASSWORD"],
                        protocol=parts.scheme, disableSslCertValidation=True)


def test_console_script_is_declared():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["vsphere-sim"] == "vsphere_sim.cli:main"
    from vsphere_sim.cli import main
    assert callable(main)


def test_prints_the_contract_lines_in_order(tmp_path):
    proc, env = start(tmp_path, "--no-tls", "--user", "me@vsphere.local", "--password", "s3cret!")
    try:
        assert list(env) == ["VSPHERE_URL", "VSPHERE_USER", "VSPHERE_PASSWORD"]
        assert env["VSPHERE_URL"].startswith("http://127.0.0.1:") and env["VSPHERE_URL"].endswith("/sdk")
        assert env["VSPHERE_USER"] == "me@vsphere.local" and env["VSPHERE_PASSWORD"] == "s3cret!"
        si = connect(env)
        assert si.CurrentTime() is not None
    finally:
        assert stop(proc) == 0


def test_tls_by_default_and_sigint(tmp_path):
    proc, env = start(tmp_path)
    try:
        assert env["VSPHERE_URL"].startswith("https://")
        si = connect(env)
        assert si.content.about.apiVersion
    finally:
        assert stop(proc, signal.SIGINT) == 0
    assert "Traceback" not in proc.stderr.read()


def test_restart_on_the_same_workdir_keeps_state(tmp_path):
    proc, env = start(tmp_path, "--no-tls")
    try:
        si = connect(env)
        root = si.content.rootFolder
        from pyVmomi import vmodl
        try:
            created = root.CreateFolder("survivor")._moId
        except vmodl.fault.MethodNotFound:
            created = None
        control = env["VSPHERE_URL"].replace("/sdk", "/_sim")
        before = requests.get(control + "/inventory?type=Folder", timeout=10).json()["objects"]
    finally:
        assert stop(proc) == 0
    proc, env = start(tmp_path, "--no-tls")
    try:
        control = env["VSPHERE_URL"].replace("/sdk", "/_sim")
        after = requests.get(control + "/inventory?type=Folder", timeout=10).json()["objects"]
        assert after == before
        if created is not None:
            si = connect(env)
            assert created in [e._moId for e in si.content.rootFolder.childEntity]
    finally:
        assert stop(proc) == 0


def test_bad_arguments_fail_fast(tmp_path):
    result = subprocess.run([sys.executable, "-m", "vsphere_sim", "--listen", "127.0.0.1:0"], cwd=REPO,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--workdir" in result.stderr
