"""The tether end to end: a VCH from `vic-ref up`, the real docker CLI, a busybox image from the local registry."""
from __future__ import annotations

import json
import os
import time

import pytest

from vic_ref.testing.processes import nsinit_processes, zombies
from vic_ref.tether import logfile

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root (namespaces, overlay mounts)")


def ok(result) -> str:
    rc, out, err = result
    assert rc == 0, f"rc={rc}\nstdout={out}\nstderr={err}"
    return out


@pytest.fixture(scope="module")
def busybox(vch, docker_cli, busybox_image) -> str:
    ok(docker_cli("pull", busybox_image.reference, timeout=120))
    return busybox_image.reference


def rootfs_mounts(vch) -> list[str]:
    with open("/proc/self/mountinfo") as handle:
        return [line for line in handle if str(vch.workdir) in line]


def test_exit_code_wait_inspect_ps(docker_cli, busybox):
    cid = ok(docker_cli("run", "-d", busybox, "sh", "-c", "echo hi; echo oops >&2; exit 3")).strip()
    assert ok(docker_cli("wait", cid)).strip() == "3"
    (data,) = json.loads(ok(docker_cli("inspect", cid)))
    assert data["State"]["ExitCode"] == 3 and data["State"]["Status"] == "exited"
    assert data["State"]["FinishedAt"] > data["State"]["StartedAt"]
    status = ok(docker_cli("ps", "-a", "--filter", f"id={cid}", "--format", "{{.Status}}")).strip()
    assert status.startswith("Exited (3)")
    ok(docker_cli("rm", cid))


def output_of(vch, cid: str) -> dict[str, bytes]:
    """The container's output.log on the sim's datastore, decoded per stream."""
    (path,) = [os.path.join(d, "output.log") for d, _, files in os.walk(vch.workdir)
               if os.path.basename(d) == cid and "output.log" in files]
    with open(path, "rb") as handle:
        data = handle.read()
    out: dict[str, bytes] = {}
    for record in logfile.parse(data):
        out[record.stream] = out.get(record.stream, b"") + record.data
    return out


def test_hostname_hosts_proc_dev(vch, docker_cli, busybox):
    cid = ok(docker_cli("run", "-d", busybox, "sh", "-c",
                        "hostname; cat /etc/hosts; ps -o pid,args; ls /dev; printf end")).strip()
    assert ok(docker_cli("wait", cid)).strip() == "0"
    out = output_of(vch, cid)["stdout"].decode()
    lines = out.splitlines()
    assert lines[0] == cid[:12]
    assert f"127.0.1.1\t{cid[:12]}" in lines and "127.0.0.1\tlocalhost" in lines
    assert not any(line.startswith("127.0.1.1") and len(line.split()) > 2 for line in lines)  # no name (§3)
    processes = [line.split(None, 1) for line in lines if line.strip().split(" ")[0].isdigit()]
    assert [p[0] for p in processes][:2] == ["1", "2"] and "hostname; cat" in processes[1][1]
    for node in ("null", "zero", "urandom", "tty", "pts", "ptmx", "shm"):
        assert node in lines
    assert out.endswith("end")  # a last line with no newline is kept as written
    ok(docker_cli("rm", cid))


def test_stderr_and_env(vch, docker_cli, busybox):
    cid = ok(docker_cli("run", "-d", "-e", "FOO=bar", "-w", "/work", "-u", "nobody", busybox, "sh", "-c",
                        "echo $FOO $PATH; pwd; id -u; echo err >&2")).strip()
    assert ok(docker_cli("wait", cid)).strip() == "0"
    out = output_of(vch, cid)
    assert out["stdout"].decode().splitlines() == [
        "bar /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "/work", "65534"]
    assert out["stderr"] == b"err\n"
    ok(docker_cli("rm", cid))


def test_missing_executable(docker_cli, busybox):
    rc, out, err = docker_cli("run", "-d", "--name", "noexec", busybox, "nosuch")
    assert rc != 0
    assert 'exec: "nosuch": executable file not found in $PATH' in err
    (data,) = json.loads(ok(docker_cli("inspect", "noexec")))
    assert data["State"]["ExitCode"] == 127
    ok(docker_cli("rm", "noexec"))


def test_stop_sleep(docker_cli, busybox):
    cid = ok(docker_cli("run", "-d", busybox, "sleep", "600")).strip()
    started = time.monotonic()
    ok(docker_cli("stop", cid))
    assert time.monotonic() - started < 8  # TERM ends `sleep` at once: it is not PID 1 (VIC)
    (data,) = json.loads(ok(docker_cli("inspect", cid)))
    assert data["State"]["ExitCode"] == 143
    ok(docker_cli("rm", cid))


def test_no_leftovers(vch, docker_cli, busybox):
    cid = ok(docker_cli("run", "-d", busybox, "sh", "-c", "sleep 100 & sleep 100 & exit 0")).strip()
    assert ok(docker_cli("wait", cid)).strip() == "0"
    running = ok(docker_cli("run", "-d", busybox, "sh", "-c", "(sleep 0.1 &) ; (true &) ; sleep 100")).strip()
    time.sleep(1.0)
    assert zombies(under=vch.process.pid) == []  # orphans inside are reaped by the namespace's init
    ok(docker_cli("rm", "-f", running))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (nsinit_processes(vch.process.pid) or rootfs_mounts(vch)):
        time.sleep(0.2)
    assert nsinit_processes(vch.process.pid) == []
    assert rootfs_mounts(vch) == []
    assert zombies(under=vch.process.pid) == []
    ok(docker_cli("rm", cid))
