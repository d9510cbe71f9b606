"""The tether's pieces without a VCH: the output.log format, and nsinit (overlay root, namespaces, exec)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from vic_ref.tether import logfile, parse_signal
from vic_ref.tether.tether import NSINIT

BUSYBOX = "/bin/busybox"


def test_logfile_round_trip():
    data = logfile.encode("stdout", b"one\ntwo\r\n\nthree", ns=1_700_000_000_123_456_789)
    data += logfile.encode("stderr", b"err\n", ns=1_700_000_000_000_000_000)
    assert data.splitlines()[0] == b"2023-11-14T22:13:20.123456789Z stdout F one"
    assert data.splitlines()[3] == b"2023-11-14T22:13:20.123456789Z stdout P three"
    records = list(logfile.parse(data + b"2023-11-14T22:13:20Z stdout F incomplete"))
    assert b"".join(r.data for r in records if r.stream == "stdout") == b"one\ntwo\r\n\nthree"
    assert [r.data for r in records if r.stream == "stderr"] == [b"err\n"]
    assert records[0].time_ns == 1_700_000_000_123_456_789
    assert logfile.parse_timestamp("2023-11-14T22:13:20.1Z") == 1_700_000_000_100_000_000


def test_parse_signal():
    assert parse_signal("TERM") == parse_signal("SIGTERM") == parse_signal("15") == 15
    with pytest.raises(ValueError):
        parse_signal("NOPE")


def run(spec: dict) -> tuple[subprocess.Popen, int]:
    r, w = os.pipe()
    fd = os.memfd_create("spec", 0)
    os.write(fd, json.dumps({**spec, "report_fd": w}).encode())
    os.lseek(fd, 0, os.SEEK_SET)
    proc = subprocess.Popen([sys.executable, "-S", NSINIT, str(fd)], pass_fds=[w, fd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    os.close(w)
    os.close(fd)
    return proc, r


def reports(fd: int) -> list[dict]:
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    os.close(fd)
    return [json.loads(line) for line in data.splitlines()]


@pytest.mark.skipif(os.geteuid() != 0 or not os.access(BUSYBOX, os.X_OK), reason="needs root and busybox-static")
def test_nsinit_primary_and_exec(tmp_path):
    base = tmp_path / "base"
    (base / "bin").mkdir(parents=True)
    (base / "etc").mkdir()
    shutil.copy(BUSYBOX, base / "bin" / "busybox")
    for applet in ("sh", "sleep", "hostname", "ps", "cat", "ls", "id"):
        os.symlink("busybox", base / "bin" / applet)
    (base / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    os.mknod(base / "etc" / "gone", 0o600 | 0o020000, 0)  # a whiteout: hides nothing below, shows nothing
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n")
    common = {"rootfs": str(tmp_path / "rootfs"), "hostname": "c0ffee", "env": [], "dir": "/", "user": "",
              "group": ""}
    primary, report_fd = run({**common, "mode": "primary", "lower": [str(base)], "upper": str(tmp_path / "up"),
                              "work": str(tmp_path / "work"), "binds": [[str(hosts), "/etc/hosts"]],
                              "path": "sh", "args": ["sh", "-c", "echo ready; cat /etc/hosts; sleep 30"]})
    line = primary.stdout.readline()
    assert line == b"ready\n", (reports(report_fd), primary.stderr.read())
    first = json.loads(os.read(report_fd, 65536).decode().splitlines()[0])
    init = first["init_pid"]
    execd, exec_fd = run({**common, "mode": "exec", "init_pid": init, "path": "sh",
                          "args": ["sh", "-c", "hostname; ps -o pid,args; touch /new; exit 4"]})
    out, _ = execd.communicate(timeout=10)
    assert execd.returncode == 4
    lines = out.decode().splitlines()
    assert lines[0] == "c0ffee"
    pids = [line.split()[0] for line in lines[2:]]
    assert pids[:2] == ["1", "2"]  # the namespace's init, then the primary process
    assert [r for r in reports(exec_fd) if "exit" in r] == [{"exit": 4}]
    assert (tmp_path / "up" / "new").exists()  # writes go to the upper layer
    os.kill(init, 9)
    assert primary.wait(10) == 137
    primary.stdout.close()
    primary.stderr.close()
    with open("/proc/self/mountinfo") as handle:
        assert str(tmp_path) not in handle.read()  # the mounts went with the namespace

    failed, fd = run({**common, "mode": "primary", "lower": [str(base)], "upper": str(tmp_path / "up"),
                      "work": str(tmp_path / "work2"), "binds": [], "path": "nosuch", "args": ["nosuch"]})
    assert failed.wait(10) == 127
    failed.stdout.close()
    failed.stderr.close()
    assert reports(fd)[1:] == [{"error": 'exec: "nosuch": executable file not found in $PATH', "code": 127}]
