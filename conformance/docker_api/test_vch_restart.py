"""kill -9 of the VCH, then its restart: `docker ps -a` shows the same containers, names and states, and they still
work. The VCH keeps no state of its own; everything comes back from vSphere."""
from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from .conftest import find_vms, ok, sim_control, wait_for

pytestmark = pytest.mark.sim_only


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (through /proc's children lists)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found.append(child)
                todo.append(child)
    return found


def appliance_pid(vch) -> int:
    """The appliance's guest process: started by the sim, which `vic-ref up` started (ours, by parentage)."""
    for pid in descendants(vch.process.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"vic_ref.appliance" in argv:
            return pid
    raise AssertionError("no appliance process under vic-ref up")


def snapshot(docker_cli) -> list[str]:
    fmt = "{{.ID}} {{.Names}} {{.State}} {{.Image}} {{.Command}} {{.CreatedAt}}"
    return sorted(ok(docker_cli("ps", "-a", "--no-trunc", "--format", fmt)).splitlines())


def test_kill_9_and_restart(vch, docker_cli, busybox, si):
    ok(docker_cli("create", "-i", "--name", "r-created", busybox))
    ok(docker_cli("run", "-di", "--name", "r-running", busybox))
    ok(docker_cli("run", "-di", "--name", "r-exited", busybox))
    ok(docker_cli("stop", "r-exited"))
    ok(docker_cli("run", "-di", busybox))  # a random name
    assert ok(docker_cli("run", "--name", "r-logs", busybox, "sh", "-c",
                             "echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three")) \
        == "one\nthree\n"
    before = snapshot(docker_cli)
    states = {line.split()[1]: line.split()[2] for line in before}
    assert {states["r-created"], states["r-running"], states["r-exited"]} == {"created", "running", "exited"}
    exit_code = ok(docker_cli("inspect", "-f", "{{.State.ExitCode}}", "r-exited")).strip()

    pid = appliance_pid(vch)
    os.kill(pid, signal.SIGKILL)
    (appliance,) = find_vms(si, vch.name)
    wait_for(lambda: appliance.runtime.powerState == "poweredOff", 30, "the appliance VM to power off")
    rc, _, _ = docker_cli("ps", timeout=10)
    assert rc != 0  # nobody answers now

    from pyVim.task import WaitForTask
    WaitForTask(appliance.PowerOnVM_Task())
    wait_for(lambda: docker_cli("version", timeout=10)[0] == 0, 120, "the VCH to answer again", every=0.5)
    assert appliance_pid(vch) != pid

    after = snapshot(docker_cli)
    assert after == before
    assert ok(docker_cli("inspect", "-f", "{{.State.ExitCode}}", "r-exited")).strip() == exit_code
    # the output of a stopped container is on the datastore: logs work from a fresh VCH
    assert docker_cli("logs", "r-logs")[1:] == ("one\nthree\n", "two\n")
    rc, out, err = docker_cli("logs", "--tail", "2", "r-logs")
    assert (rc, out, err) == (0, "three\n", "two\n")
    stamped = ok(docker_cli("logs", "-t", "--tail", "1", "r-logs"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z three\n", stamped), stamped
    # names are taken again, and the containers work
    rc, _, err = docker_cli("create", "--name", "r-running", busybox)
    assert rc == 1 and 'The container name "/r-running" is already in use' in err
    ok(docker_cli("stop", "r-running"))
    ok(docker_cli("start", "r-created"))
    time.sleep(0.1)
    states = {line.split()[1]: line.split()[2] for line in snapshot(docker_cli)}
    assert states["r-running"] == "exited" and states["r-created"] == "running"
    ids = ok(docker_cli("ps", "-aq")).split()
    ok(docker_cli("rm", "-f", *ids))
    assert ok(docker_cli("ps", "-aq")) == ""


def test_a_create_cut_off_by_a_crash_leaves_nothing(vch, docker_cli, busybox, si):
    """The VCH dies between the two steps of a create (the VM exists under its bare ID, not yet renamed): once it is
    back, nothing of that container is left: no `docker ps -a` entry, no VM, no name taken."""
    import subprocess

    from pyVim.task import WaitForTask
    from pyVmomi import vim

    sim_control(vch, "POST", "faults", {"method": "ReconfigVM_Task", "delay": 60, "count": 1})
    env = dict(os.environ, DOCKER_HOST=vch.docker_host)
    create = subprocess.Popen(["docker", "create", "--name", "cut-off", busybox], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def half_made():
            return [vm for vm in find_vms(si) if len(vm.name) == 64 and vm.name.isalnum()]
        wait_for(half_made, 30, "the first step of the create")
        (vm,) = half_made()
        cid = vm.name
        pid = appliance_pid(vch)
        os.kill(pid, signal.SIGKILL)
    finally:
        sim_control(vch, "DELETE", "faults")
    create.wait(90)
    assert create.returncode != 0
    (appliance,) = find_vms(si, vch.name)
    wait_for(lambda: appliance.runtime.powerState == "poweredOff", 30, "the appliance VM to power off")
    WaitForTask(appliance.PowerOnVM_Task())
    wait_for(lambda: docker_cli("version", timeout=10)[0] == 0, 120, "the VCH to answer again", every=0.5)
    wait_for(lambda: not [v for v in find_vms(si) if v.name in (cid, f"cut-off-{cid[:12]}")], 60,
             "the half-made VM to go")
    assert cid not in ok(docker_cli("ps", "-aq", "--no-trunc"))
    ok(docker_cli("create", "--name", "cut-off", busybox))  # the name is free
    ok(docker_cli("rm", "-f", "cut-off"))
    assert isinstance(appliance, vim.VirtualMachine)
