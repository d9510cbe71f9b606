"""The real docker CLI (28.2.2) against the personality in-process: the container flows of issue 3, with the CLI's
own output, error texts and exit codes."""
from __future__ import annotations

import json
import re

import pytest


def ok(result):
    rc, out, err = result
    assert rc == 0, f"rc={rc}\nstdout={out}\nstderr={err}"
    return out


def test_version_negotiates_to_ours(cli):
    out = ok(cli("version"))
    assert "API version:       1.44 (downgraded from 1.50)" in out
    assert "API version:      1.44 (minimum version 1.24)" in out


def test_info(cli, api):
    out = ok(cli("info"))
    assert "Swarm: inactive" in out and f"Name: {api.env.name}" in out
    assert "Storage Driver: vSphere Integrated Containers" in out


def test_create_start_stop_ps_inspect_rm(cli, api):
    cid = ok(cli("create", "--name", "c1", "busybox")).strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    out = ok(cli("ps", "-a"))
    header, row = out.splitlines()[0], [line for line in out.splitlines() if line.endswith(" c1")][0]
    assert header.split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert row.startswith(cid[:12]) and '"sh"' in row and "Created" in row and " busybox " in row
    assert ok(cli("start", "c1")).strip() == "c1"
    out = ok(cli("ps"))
    assert any(line.endswith(" c1") and " Up " in line for line in out.splitlines())
    assert ok(cli("ps", "--format", "{{.Names}} {{.State}}")).split() == ["c1", "running"]
    assert ok(cli("stop", "c1")).strip() == "c1"
    out = ok(cli("ps", "-a", "--format", "{{.ID}}\t{{.Names}}\t{{.Status}}"))
    assert re.search(rf"^{cid[:12]}\tc1\tExited \(143\) .* ago$", out, re.M), out
    assert ok(cli("ps", "-q")) == ""
    data = json.loads(ok(cli("inspect", "c1")))
    assert len(data) == 1 and data[0]["Id"] == cid and data[0]["Name"] == "/c1"
    state = data[0]["State"]
    assert state["Status"] == "exited" and state["Running"] is False and state["ExitCode"] == 143
    assert data[0]["Config"]["Image"] == "busybox" and data[0]["Config"]["Cmd"] == ["sh"]
    assert data[0]["HostConfig"]["LogConfig"]["Type"] == "json-file"
    assert ok(cli("inspect", "-f", "{{.State.Status}} {{.Config.Hostname}} {{.Path}}", "c1")).strip() == \
        f"exited {cid[:12]} sh"
    assert ok(cli("rm", "-f", "c1")).strip() == "c1"
    assert ok(cli("ps", "-aq")) == ""


def test_error_texts_and_exit_codes(cli, api):
    ok(cli("create", "--name", "web", "busybox"))
    rc, out, err = cli("create", "--name", "web", "busybox")
    holder = api.portlayer.exec.find("web").id
    assert rc == 1 and err.strip() == (
        f'Error response from daemon: Conflict. The container name "/web" is already in use by container '
        f'"{holder}". You have to remove (or rename) that container to be able to reuse that name.')
    rc, out, err = cli("create", "--name", "we b", "busybox")
    assert rc == 1 and err.strip() == ("Error response from daemon: Invalid container name (we b), only "
                                       "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    rc, out, err = cli("run", "-d", "--name", "web", "busybox")
    assert rc == 125 and err.startswith("docker: Error response from daemon: Conflict. The container name")
    rc, out, err = cli("start", "nosuch")
    assert rc == 1 and "Error response from daemon: No such container: nosuch" in err
    assert "failed to start containers: nosuch" in err
    rc, out, err = cli("container", "inspect", "nosuch")
    assert rc == 1 and out.strip() == "[]" and err.strip() == "Error response from daemon: No such container: nosuch"
    rc, out, err = cli("stop", "nosuch")
    assert rc == 1 and err.strip() == "Error response from daemon: No such container: nosuch"
    rc, out, err = cli("rm", "-f", "nosuch")  # the CLI's own quirk: the error shown, exit 0
    assert rc == 0 and "No such container: nosuch" in err
    rc, out, err = cli("ps", "--filter", "foo=bar")
    assert rc == 1 and err.strip() == "Error response from daemon: invalid filter 'foo'"
    rc, out, err = cli("ps", "--filter", "status=sleepy")
    assert rc == 1 and "invalid filter 'status=sleepy'" in err
    rc, out, err = cli("kill", "web")
    assert rc == 1 and err.strip() == (f"Error response from daemon: cannot kill container: web: container "
                                       f"{holder} is not running")
    ok(cli("start", "web"))
    rc, out, err = cli("rm", "web")
    assert rc == 1 and err.strip() == ('Error response from daemon: cannot remove container "/web": container is '
                                       "running: stop the container before removing or force remove")
    rc, out, err = cli("create", "nosuchimage")  # the 404 makes the CLI pull (which can't reach a registry here)
    assert rc == 1 and "Unable to find image 'nosuchimage:latest' locally" in err
    ok(cli("rm", "-f", "web"))


def test_run_detached_wait_kill_restart(cli, api):
    cid = ok(cli("run", "-d", "--name", "runner", "busybox")).strip()
    assert api.portlayer.exec.info(cid).running
    ok(cli("kill", "-s", "TERM", "runner"))
    assert ok(cli("wait", "runner")).strip() == "143"
    ok(cli("restart", "runner"))
    assert ok(cli("inspect", "-f", "{{.State.Running}}", "runner")).strip() == "true"
    ok(cli("kill", "runner"))
    assert ok(cli("inspect", "-f", "{{.State.ExitCode}}", "runner")).strip() == "137"
    ok(cli("rename", "runner", "walker"))
    assert ok(cli("ps", "-a", "--format", "{{.Names}}", "--filter", f"id={cid}")).strip() == "walker"
    ok(cli("rm", "walker"))


@pytest.mark.parametrize("flag,expected", [
    (["--filter", "name=^f-"], ["f-b", "f-a"]),
    (["--filter", "label=tier=front"], ["f-a"]),
    (["--filter", "label=tier"], ["f-b", "f-a"]),
    (["--filter", "status=running"], ["f-b"]),
    (["--filter", "status=created"], ["f-a"]),
    (["--filter", "ancestor=alpine:3.19"], ["f-b"]),
    (["--filter", "exited=0"], []),
    (["-n", "1"], ["f-b"]),
])
def test_ps_filters(cli, api, flag, expected):
    if not api.portlayer.names.holder("f-a"):
        ok(cli("create", "--name", "f-a", "--label", "tier=front", "busybox"))
        ok(cli("run", "-d", "--name", "f-b", "--label", "tier=back", "alpine:3.19"))
    out = ok(cli("ps", "-a", "--format", "{{.Names}}", *flag))
    assert [n for n in out.split() if n.startswith("f-")] == expected


def test_run_rm_removes_the_container_when_it_exits(cli, api):
    import time
    cid = ok(cli("run", "-d", "--rm", "--name", "gone", "busybox")).strip()
    ok(cli("kill", "-s", "TERM", "gone"))
    deadline = time.monotonic() + 15
    while api.portlayer.names.holder("gone") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert api.portlayer.names.holder("gone") is None
    rc, out, err = cli("container", "inspect", cid)
    assert rc == 1 and f"No such container: {cid}" in err
