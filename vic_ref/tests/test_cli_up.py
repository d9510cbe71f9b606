"""`vic-ref up` as scripts use it: the contract lines, a VCH that answers, restarts on the same workdir, TLS, and
nothing left running after SIGTERM (or after vic-ref itself is killed)."""
from __future__ import annotations

import http.client
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from vic_ref.appliance import load_app_factory
from vic_ref.config import vch as vchconfig
from vic_ref.testing.vch import start_vch

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
PERSONALITY = load_app_factory() is not None


def ping(vch, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> str | None:
    host, port = "127.0.0.1", vch.docker_port
    conn = (http.client.HTTPSConnection(host, port, timeout=timeout, context=context) if vch.tls
            else http.client.HTTPConnection(host, port, timeout=timeout))
    try:
        conn.request("GET", "/_ping")
        reply = conn.getresponse()
        return reply.read().decode() if reply.status == 200 else None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
    try:
        conn.request("GET", "/sdk/vimServiceVersions.xml")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def wait_until(predicate, timeout=20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def appliance(vch):
    """(folder, [VMs in it], the appliance VM) as pyVmomi sees them."""
    parts = urlsplit(vch.vsphere_url)
    si = SmartConnect(host=parts.hostname, port=parts.port, user=vch.vsphere_user, pwd=vch.vsphere_password,
                      protocol="http")
    try:
        dc = next(e for e in si.RetrieveContent().rootFolder.childEntity if e.name == "DC0")
        folder = next(f for f in dc.vmFolder.childEntity if isinstance(f, vim.Folder) and f.name == vch.name)
        vms = [c for c in folder.childEntity if isinstance(c, vim.VirtualMachine)]
        vm = next(v for v in vms if v.name == vch.name)
        cdroms = [d.backing.fileName for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualCdrom)]
        extra = {o.key: o.value for o in vm.config.extraConfig}
        return {"vms": [v.name for v in vms], "cdroms": cdroms, "config": vchconfig.decode(extra),
                "power": vm.runtime.powerState}
    finally:
        Disconnect(si)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("up")


@pytest.fixture(scope="module")
def first(workdir):
    vch = start_vch(workdir)
    yield vch
    vch.stop()


def test_prints_the_contract_lines_then_ready(first):
    assert list(first.values) == ["VSPHERE_URL", "VSPHERE_USER", "VSPHERE_PASSWORD", "DOCKER_HOST"]
    assert re.fullmatch(r"tcp://127\.0\.0\.1:\d+", first.docker_host)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/sdk", first.vsphere_url)
    assert first.vsphere_user and first.vsphere_password
    print(f"vic-ref up: READY after {first.start_seconds:.2f}s")


def test_the_vch_answers_ping(first):
    assert ping(first) == "OK"


def test_the_appliance_vm_in_vsphere(first):
    seen = appliance(first)
    assert seen["vms"] == [first.name] and seen["power"] == "poweredOn"
    assert seen["cdroms"] == [f"[LocalDS_0] {first.name}/appliance.iso"]
    config = seen["config"]
    assert config.name == first.name and config.docker.port == first.docker_port
    assert config.connection.target == first.vsphere_url and config.connection.token == first.vsphere_password
    assert config.storage.volume_stores == {"default": "[LocalDS_0] VIC"}  # --volume-store LocalDS_0/VIC:default
    assert first.guest_log.is_file()


@pytest.mark.skipif(not PERSONALITY, reason="vic_ref.personality is not there yet")
def test_docker_version_and_info(first):
    rc, out, err = first.docker("version", timeout=60)
    assert rc == 0, err
    assert "Server:" in out
    rc, out, err = first.docker("info", timeout=60)
    assert rc == 0, err


@pytest.mark.skipif(not PERSONALITY, reason="vic_ref.personality is not there yet")
def test_docker_py_pings(first):
    client = first.docker_client()
    try:
        assert client.ping() is True
    finally:
        client.close()


def test_restart_on_the_same_workdir_reuses_the_vch(first, workdir):
    before = appliance(first)
    docker_host, url = first.docker_host, first.vsphere_url
    assert first.stop() == 0
    # everything is down: the Docker API and the sim
    assert ping(first) is None and not reachable(url)
    again = start_vch(workdir)
    try:
        assert again.docker_host == docker_host and again.vsphere_url == url  # the same ports again
        assert ping(again) == "OK"
        after = appliance(again)
        assert after["vms"] == [again.name]  # reused, not a second appliance
        assert after["config"].id == before["config"].id
        # vic-ref killed outright: the sim goes with it, and the next run still finds the VCH
        again.process.send_signal(signal.SIGKILL)
        again.process.wait(10)
        assert wait_until(lambda: not reachable(url)), "the sim outlived a killed vic-ref up"
        third = start_vch(workdir)
        try:
            assert ping(third) == "OK" and appliance(third)["config"].id == before["config"].id
        finally:
            third.stop()
    finally:
        again.stop()


def test_tls(tmp_path):
    vch = start_vch(tmp_path, tls=True)
    try:
        assert list(vch.values)[-2:] == ["DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"]
        assert vch.tls and vch.cert_path == tmp_path / "certs"
        certs = vch.cert_path
        assert {"ca.pem", "cert.pem", "key.pem"} <= {p.name for p in certs.iterdir()}
        context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        context.load_cert_chain(str(certs / "cert.pem"), str(certs / "key.pem"))
        assert ping(vch, context) == "OK"
        anonymous = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        assert ping(vch, anonymous) is None  # --tlsverify: no client certificate, no service
        if PERSONALITY:
            rc, out, err = vch.docker("version")
            assert rc == 0, err
    finally:
        assert vch.stop() == 0


def test_export_format_for_make_run(tmp_path):
    argv = [sys.executable, "-m", "vic_ref.cli", "up", "--workdir", str(tmp_path), "--export"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("# READY"):
                break
        exports = [line for line in lines if line.startswith("export ")]
        assert [line.split("=", 1)[0] for line in exports] == [
            "export VSPHERE_URL", "export VSPHERE_USER", "export VSPHERE_PASSWORD", "export DOCKER_HOST"]
        assert "export VSPHERE_PASSWORD='Admin!23'" in exports  # quoted for the shell
        assert lines[-1].startswith("# READY")
        if os.geteuid() != 0:
            assert any("not running as root" in line for line in lines)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
