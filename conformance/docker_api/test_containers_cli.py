"""Issue 3 with the real docker CLI against `vic-ref up`: create, start, stop, ps -a, inspect, rm -f; Docker's error
texts with the CLI's exit codes; ps filters in the CLI's map-of-maps shape."""
from __future__ import annotations

import json
import re

from .conftest import ok


def test_create_start_stop_ps_inspect_rm(docker_cli, busybox):
    cid = ok(docker_cli("create", "-i", "--name", "c1", busybox)).strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    lines = ok(docker_cli("ps", "-a")).splitlines()
    assert lines[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    (row,) = [line for line in lines[1:] if line.endswith(" c1")]
    columns = re.split(r"\s{2,}", row)
    assert columns[0] == cid[:12] and columns[1] == busybox and columns[2] == '"sh"'
    assert columns[3].endswith("ago") and columns[4] == "Created"
    assert ok(docker_cli("start", "c1")).strip() == "c1"
    fmt = "{{.ID}}|{{.Image}}|{{.Command}}|{{.State}}|{{.Status}}|{{.Names}}"
    row = ok(docker_cli("ps", "--no-trunc", "--format", fmt)).strip()
    assert re.fullmatch(rf'{cid}\|{re.escape(busybox)}\|"sh"\|running\|Up .+\|c1', row), row
    assert ok(docker_cli("stop", "c1")).strip() == "c1"
    row = ok(docker_cli("ps", "-a", "--format", fmt, "--filter", "name=^c1$")).strip()
    assert re.fullmatch(rf'{cid[:12]}\|{re.escape(busybox)}\|"sh"\|exited\|Exited \(143\) .+ ago\|c1', row), row
    assert ok(docker_cli("ps", "-q")) == ""
    (data,) = json.loads(ok(docker_cli("inspect", "c1")))
    assert data["Id"] == cid and data["Name"] == "/c1" and data["Path"] == "sh" and data["Args"] == []
    assert data["State"]["Status"] == "exited" and data["State"]["ExitCode"] == 143
    assert data["State"]["Running"] is False and data["State"]["FinishedAt"] > data["State"]["StartedAt"]
    assert data["Config"]["Image"] == busybox and data["Image"].startswith("sha256:")
    assert data["HostConfig"]["LogConfig"]["Type"] == "json-file"
    out = ok(docker_cli("inspect", "-f", "{{.Name}} {{.State.Status}} {{.Config.Hostname}}", "c1")).strip()
    assert out == f"/c1 exited {cid[:12]}"
    ok(docker_cli("start", "c1"))
    assert ok(docker_cli("rm", "-f", "c1")).strip() == "c1"
    assert "c1" not in ok(docker_cli("ps", "-a", "--format", "{{.Names}}")).split()
    rc, out, err = docker_cli("inspect", "c1")
    assert rc == 1 and err.strip() == "Error: No such object: c1"


def test_docker_error_texts(docker_cli, busybox):
    cid = ok(docker_cli("create", "--name", "web", busybox)).strip()
    rc, out, err = docker_cli("create", "--name", "web", busybox)
    assert rc == 1 and err.strip() == (
        f'Error response from daemon: Conflict. The container name "/web" is already in use by container "{cid}". '
        "You have to remove (or rename) that container to be able to reuse that name.")
    rc, out, err = docker_cli("run", "-d", "--name", "web", busybox)
    assert rc == 125 and err.startswith('docker: Error response from daemon: Conflict. The container name "/web"')
    rc, out, err = docker_cli("create", "--name", "-web", busybox)
    assert rc == 1 and err.strip() == ("Error response from daemon: Invalid container name (-web), only "
                                       "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    rc, out, err = docker_cli("container", "inspect", "nosuch")
    assert rc == 1 and out.strip() == "[]" and err.strip() == "Error response from daemon: No such container: nosuch"
    for command in (("stop", "nosuch"), ("rm", "nosuch"), ("restart", "nosuch")):
        rc, out, err = docker_cli(*command)
        assert rc == 1 and err.strip() == "Error response from daemon: No such container: nosuch", command
    rc, out, err = docker_cli("start", "nosuch")
    assert rc == 1 and "Error response from daemon: No such container: nosuch" in err
    rc, out, err = docker_cli("rm", "-f", "nosuch")
    assert rc == 0 and "No such container: nosuch" in err  # the CLI's quirk
    rc, out, err = docker_cli("ps", "--filter", "colour=red")
    assert rc == 1 and err.strip() == "Error response from daemon: invalid filter 'colour'"
    rc, out, err = docker_cli("kill", "web")
    assert rc == 1 and err.strip() == f"Error response from daemon: cannot kill container: web: container {cid} is " \
                                      "not running"
    ok(docker_cli("start", "web"))
    rc, out, err = docker_cli("rm", "web")
    assert rc == 1 and err.strip() == ('Error response from daemon: cannot remove container "/web": container is '
                                       "running: stop the container before removing or force remove")
    ok(docker_cli("rm", "-f", "web"))


def test_ps_filters(docker_cli, busybox):
    a = ok(docker_cli("create", "--name", "pf-a", "--label", "tier=front", busybox)).strip()
    b = ok(docker_cli("run", "-di", "--name", "pf-b", "--label", "tier=back", busybox)).strip()

    def names(*flags):
        out = ok(docker_cli("ps", "-a", "--format", "{{.Names}}", *flags))
        return [n for n in out.split() if n.startswith("pf-")]

    assert names() == ["pf-b", "pf-a"]  # newest first
    assert names("--filter", "label=tier=front") == ["pf-a"]
    assert names("--filter", "status=running") == ["pf-b"]
    assert names("--filter", "status=created") == ["pf-a"]
    assert names("--filter", f"id={a[:8]}") == ["pf-a"]
    assert names("--filter", "name=pf-b") == ["pf-b"]
    assert names("--filter", f"before={b}") == ["pf-a"]
    assert names("--filter", "since=pf-a") == ["pf-b"]
    ok(docker_cli("kill", "pf-b"))
    assert names("--filter", "exited=137") == ["pf-b"]
    assert names("--filter", "status=exited", "--filter", "label=tier") == ["pf-b"]
    for name in ("pf-a", "pf-b"):
        ok(docker_cli("rm", name))


def test_run_detached_wait_restart_rename(docker_cli, busybox):
    cid = ok(docker_cli("run", "-di", busybox)).strip()
    name = ok(docker_cli("inspect", "-f", "{{.Name}}", cid)).strip()
    assert re.fullmatch(r"/[a-z]+_[a-z]+\d?", name)
    ok(docker_cli("kill", "-s", "TERM", cid))
    assert ok(docker_cli("wait", cid)).strip() == "143"
    ok(docker_cli("restart", cid))
    assert ok(docker_cli("inspect", "-f", "{{.State.Running}}", cid)).strip() == "true"
    ok(docker_cli("rename", cid, "renamed"))
    assert ok(docker_cli("ps", "--format", "{{.Names}}", "--filter", f"id={cid}")).strip() == "renamed"
    ok(docker_cli("rm", "-f", "renamed"))
