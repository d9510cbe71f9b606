"""vic-machine upgrade / rollback end to end: an old VCH (`vic-ref up --appliance-version 0.0.9`, which deploys
through vic-machine create's code) with containers (running and stopped, the default bridge and network `bar`, a
named and an anonymous volume), upgraded and rolled back with the real vic-machine console script.

- the old release writes old data (PluginVersion 3, the name in the guest-visible key, in /etc/hosts);
- a 1-second --timeout on a slow target (a sim delay on PowerOnVM_Task) rolls back, with VIC's texts, and leaves no
  snapshot;
- killing the appliance's guest at a point of the upgrade (made reproducible with sim delay rules) and re-running
  upgrade or rollback ends with one working VCH and every container as it was.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from vic_ref.migration import PREVIOUS_RELEASE
from vic_ref.testing.vch import start_vch

from .conftest import connect, ok, sim_control, wait_for

pytestmark = pytest.mark.timeout(300)

NAME = "vic-ref"


@pytest.fixture(scope="module")
def vch(tmp_path_factory):
    running = start_vch(tmp_path_factory.mktemp("old-vch"), extra_args=("--appliance-version", PREVIOUS_RELEASE))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def appliance(vch):
    from pyVim.connect import Disconnect
    from pyVmomi import vim
    si = connect(vch.vsphere_url, vch.vsphere_user, vch.vsphere_password)
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    (vm,) = [v for v in view.view if v.name == NAME]
    yield vm
    Disconnect(si)


def docker(vch, *args, timeout=60):
    return ok(vch.docker(*args, timeout=timeout)).strip()


@pytest.fixture(scope="module")
def containers(vch, busybox_image):
    """The old VCH's containers: {name: (id, {network: ip})}, plus which run."""
    image = busybox_image.reference
    docker(vch, "pull", image, timeout=120)
    docker(vch, "network", "create", "bar")
    docker(vch, "volume", "create", "named-volume")
    docker(vch, "run", "-d", "--name", "top1", image, "top")
    docker(vch, "run", "-d", "--name", "onbar", "--net", "bar", image, "top")
    docker(vch, "run", "-d", "--name", "mount-data-test", "-v", "/mnt/test", "-v", "named-volume:/mnt/named", image,
           "top")
    docker(vch, "create", "--name", "off1", image, "true")
    return snapshot_of(vch)


def snapshot_of(vch) -> dict:
    """{name: (id, state, {network: ip}, mounts)} of every container."""
    ids = docker(vch, "ps", "-aq", "--no-trunc").split()
    import json
    out = {}
    for info in json.loads(docker(vch, "inspect", *ids)):
        nets = {net: cfg["IPAddress"] for net, cfg in (info["NetworkSettings"]["Networks"] or {}).items()}
        mounts = sorted(m["Destination"] for m in info.get("Mounts") or [])
        out[info["Name"].lstrip("/")] = (info["Id"], info["State"]["Status"], nets, mounts)
    return out


def version_of(vic_machine) -> str:
    rc, out = vic_machine("inspect")
    assert rc == 0, out
    line = next(x for x in out.splitlines() if "VCH version:" in x)
    return line.split("VCH version:", 1)[1].strip().split("-", 1)[0]


def snapshots(appliance) -> list[str]:
    info = appliance.snapshot
    names, stack = [], list(info.rootSnapshotList if info is not None else [])
    while stack:
        node = stack.pop()
        names.append(node.name)
        stack.extend(node.childSnapshotList or [])
    return names


def appliance_pids(vch) -> list[int]:
    """The VCH processes (guests of this sim's appliance VM) on this machine."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"vic_ref.appliance" not in (entry / "cmdline").read_bytes():
                continue
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if str(vch.workdir / "sim").encode() in environ:
            pids.append(int(entry.name))
    return pids


def delay(vch, method: str, seconds: float) -> None:
    sim_control(vch, "POST", "faults", {"method": method, "delay": seconds, "count": 1})


def healthy(vch, expected: dict) -> None:
    """One VCH answers, and every container is there with its ID, state, addresses and mounts."""
    wait_for(lambda: vch.docker("version", timeout=10)[0] == 0, 60, "the VCH to answer")
    assert snapshot_of(vch) == expected


# -- the old release -----------------------------------------------------------------------------------------------
def test_old_release_writes_old_data(vch, containers, appliance, vic_machine):
    from pyVmomi import vim
    assert version_of(vic_machine) == PREVIOUS_RELEASE
    content = connect(vch.vsphere_url, vch.vsphere_user, vch.vsphere_password).RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    vm = next(v for v in view.view if v.name.startswith("top1-"))
    extra = {o.key: o.value for o in vm.config.extraConfig}
    assert extra["guestinfo.vice./version/PluginVersion"] == "3"
    assert extra["guestinfo.vice./common/name"] == "top1" and "common/name" not in extra
    hosts = docker(vch, "exec", "top1", "cat", "/etc/hosts")
    assert "top1" in hosts.split()


def test_rename_is_refused_by_the_old_release(vch, containers):
    rc, out, err = vch.docker("rename", "off1", "off2")
    assert rc != 0 and "does not support rename" in out + err


# -- upgrade, its limits, rollback -----------------------------------------------------------------------------------
def test_timeout_rolls_back(vch, containers, vic_machine, appliance):
    delay(vch, "PowerOnVM_Task", 1.5)  # a busy vSphere target
    began = time.monotonic()
    rc, out = vic_machine("upgrade", "--timeout", "1s")
    assert rc == 1, out
    assert "Upgrading VCH exceeded time limit of 1s. Please increase the timeout using --timeout to accommodate " \
           "for a busy vSphere target" in out
    assert "Rolling back upgrade" in out and "Completed successfully" not in out
    assert time.monotonic() - began < 60
    assert snapshots(appliance) == []
    assert version_of(vic_machine) == PREVIOUS_RELEASE
    healthy(vch, containers)


def test_upgrade_rollback_upgrade(vch, containers, vic_machine, appliance):
    rc, out = vic_machine("upgrade")
    assert rc == 0 and "Completed successfully" in out and "Rolling back" not in out, out
    assert version_of(vic_machine) != PREVIOUS_RELEASE and len(snapshots(appliance)) == 1
    healthy(vch, containers)
    rc, out = vic_machine("upgrade")
    assert rc == 1 and "has same or newer version" in out and "No upgrade is available." in out
    rc, out = vic_machine("rollback")
    assert rc == 0 and "Completed successfully" in out, out
    assert version_of(vic_machine) == PREVIOUS_RELEASE and snapshots(appliance) == []
    healthy(vch, containers)
    rc, out = vic_machine("upgrade", "--rollback")
    assert rc == 1 and "could not be found" in out


def test_a_concurrent_upgrade_is_refused(vch, containers, vic_machine):
    delay(vch, "CreateSnapshot_Task", 2.0)
    first: dict = {}
    thread = threading.Thread(target=lambda: first.update(result=vic_machine("upgrade")))
    thread.start()
    time.sleep(1.0)
    rc, out = vic_machine("upgrade")
    thread.join()
    assert rc == 1 and "another upgrade/configure operation is in progress" in out, out
    assert first["result"][0] == 0, first["result"][1]
    healthy(vch, containers)
    assert ok_rollback(vic_machine)


def ok_rollback(vic_machine) -> bool:
    rc, out = vic_machine("upgrade", "--rollback")
    assert rc == 0, out
    return True


# -- the appliance's guest killed at a point of the upgrade -----------------------------------------------------------
def _kill_old_guest_while_snapshotting(vch):
    delay(vch, "CreateSnapshot_Task", 1.5)
    return lambda: _kill(vch, appliance_pids(vch))


def _kill_new_guest_while_booting(vch):
    old = set(appliance_pids(vch))
    return lambda: _kill(vch, wait_for(lambda: [p for p in appliance_pids(vch) if p not in old], 30,
                                       "the new appliance to boot", every=0.02))


def _kill(vch, pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("point", ["old-guest-during-snapshot", "new-guest-booting", "new-guest-after-upgrade"])
def test_guest_killed_during_upgrade(vch, containers, vic_machine, point):
    running = {name for name, (_, state, _, _) in containers.items() if state == "running"}
    if point == "new-guest-after-upgrade":
        rc, out = vic_machine("upgrade")
        assert rc == 0, out
        _kill(vch, appliance_pids(vch))
        rc, out = vic_machine("rollback")  # the one step back, from a VCH whose appliance died
        assert rc == 0 and "Completed successfully" in out, out
    else:
        arm = (_kill_old_guest_while_snapshotting if point == "old-guest-during-snapshot"
               else _kill_new_guest_while_booting)(vch)
        result: dict = {}
        thread = threading.Thread(target=lambda: result.update(r=vic_machine("upgrade")))
        thread.start()
        time.sleep(0.5)
        arm()
        thread.join()
        rc, out = result["r"]
        if rc == 0:  # the upgrade got past the kill: step back
            assert "Completed successfully" in out
        else:
            assert "Rolling back upgrade" in out, out
            rc, out = vic_machine("upgrade")  # re-run: now it goes through
            assert rc == 0, out
        rc, out = vic_machine("rollback")
        assert rc == 0, out
    assert len(appliance_pids(vch)) == 1
    healthy(vch, containers)
    assert {n for n, (_, s, _, _) in snapshot_of(vch).items() if s == "running"} == running
