"""docker rename end to end (DESIGN-DECISIONS §3, vic-behaviour.md §1): VIC's checks in VIC's order and texts; one
commit of display name, hidden name key and aliases (pyVmomi shows it, on VMFS and vSAN); the name server and links
follow at once; a `rename` event; older containers (data version < 4) get their guest-visible name key rewritten;
the name table holds under 20 racing threads; a kill -9 of the VCH in the middle of a rename leaves the old or the
new name everywhere, never a mix."""
from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from vic_ref.testing.older import extra_config, is_older, make_older

from .conftest import find_vms, ok, sim_control, wait_for
from .test_container_vms import vsan_vch  # noqa: F401 - a fixture: a second VCH on vsanDatastore
from .test_networks_cli import PINGED, dns_query, gateway_of, ip_of
from .test_vch_restart import appliance_pid

pytestmark = pytest.mark.sim_only

VALID = "[a-zA-Z0-9][a-zA-Z0-9_.-]"


def vm_of(si, cid: str):
    (vm,) = [v for v in find_vms(si) if extra_config_id(v) == cid]
    return vm


def extra_config_id(vm) -> str:
    for option in vm.config.extraConfig or []:
        if option.key == "guestinfo.vice./common/id":
            return str(option.value)
    return ""


def container_vms(si) -> dict[str, tuple[str, dict[str, str]]]:
    """Container ID → (display name, extraConfig) of every container VM, in one property collector call."""
    from pyVmomi import vim, vmodl
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[vmodl.query.PropertyCollector.ObjectSpec(
                obj=view, skip=True, selectSet=[vmodl.query.PropertyCollector.TraversalSpec(
                    name="view", path="view", skip=False, type=vim.view.ContainerView)])],
            propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine,
                                                                pathSet=["name", "config.extraConfig"])])
        found = {}
        for obj in content.propertyCollector.RetrieveContents([spec]):
            props = {p.name: p.val for p in obj.propSet}
            extra = {o.key: str(o.value) for o in props.get("config.extraConfig") or []}
            cid = extra.get("guestinfo.vice./common/id", "")
            if cid:
                found[cid] = (props.get("name", ""), extra)
        return found
    finally:
        view.DestroyView()


def events(docker_cli, since: float, name: str) -> list[dict]:
    out = ok(docker_cli("events", "--since", f"{since:.3f}", "--until", f"{time.time() + 0.5:.3f}", "--filter",
                        "event=rename", "--filter", f"container={name}", "--format", "{{json .}}"))
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_checks_in_vics_order_with_vics_texts(vch, docker_cli, docker_client, busybox):
    api = docker_client.api
    cid5 = ok(docker_cli("create", "--name", "cont5", busybox)).strip()
    cid6 = ok(docker_cli("create", "--name", "cont6", busybox)).strip()

    def refused(old, new):
        import docker.errors
        with pytest.raises(docker.errors.APIError) as caught:
            api.rename(old, new)
        return caught.value.status_code, caught.value.explanation

    # 1 empty (before anything else), 2 invalid, 3 no such container, 4 same name, 5 in use
    assert refused("nosuch", "") == (500, "neither old nor new names may be empty")
    assert refused("nosuch", "-bad") == (500, f"invalid container name (-bad), only {VALID} are allowed")
    assert refused("nosuch", "xy") == (404, "No such container: nosuch")
    assert refused("cont5", "cont5") == (500, "renaming a container with the same name as its current name")
    assert refused(cid5[:12], "cont6") == (409, f'conflict. The name "cont6" is already in use by container {cid6}. '
                                                "You have to remove (or rename) that container to be able to re use "
                                                "that name.")
    # the CLI: its own empty-name check, and the daemon's texts
    rc, out, err = docker_cli("rename", "foo", "bar")
    assert rc != 0 and "No such container: foo" in err
    rc, out, err = docker_cli("rename", "cont5", "")
    assert rc != 0 and "Neither old nor new names may be empty" in err, err
    rc, out, err = docker_cli("rename", "cont5", "cont6")
    assert rc != 0 and "Error" in err and "already in use" in err
    # nothing changed by the refusals
    names = ok(docker_cli("ps", "-a", "--format", "{{.Names}}")).split()
    assert {"cont5", "cont6"} <= set(names)
    ok(docker_cli("rm", "cont5", "cont6"))


def check_renamed(si, cid: str, new: str, datastore: str):
    display = f"{new[:67]}-{cid[:12]}"
    vm = vm_of(si, cid)
    assert vm.name == display
    extra = extra_config(vm)
    assert extra["common/name"] == new
    assert "guestinfo.vice./common/name" not in extra
    path = vm.config.files.vmPathName
    if datastore == "vsanDatastore":
        assert path.startswith("[vsanDatastore] ") and path.endswith(f"/{cid}.vmx"), path
    else:
        assert path == f"[{datastore}] {cid}/{cid}.vmx"  # the folder is still the ID
    return vm


def test_rename_created_running_stopped(vch, docker_cli, busybox, si):
    since = time.time()
    cid1 = ok(docker_cli("create", "--name", "cont1-name1", busybox, "sleep", "600")).strip()
    ok(docker_cli("rename", "cont1-name1", "cont1-name2"))
    check_renamed(si, cid1, "cont1-name2", "LocalDS_0")
    names = ok(docker_cli("ps", "-a", "--format", "{{.Names}}")).split()
    assert "cont1-name2" in names and "cont1-name1" not in names
    assert ok(docker_cli("inspect", "-f", "{{.Name}}", "cont1-name2")).strip() == "/cont1-name2"
    (event,) = events(docker_cli, since, cid1)
    assert event["Action"] == "rename" and event["Actor"]["Attributes"]["oldName"] == "/cont1-name1"
    assert event["Actor"]["Attributes"]["name"] == "cont1-name2" and "warning" not in event["Actor"]["Attributes"]

    # running: the name server follows at once
    cid2 = ok(docker_cli("run", "-d", "--name", "cont2-name1", busybox, "sleep", "600", timeout=120)).strip()
    gateway = gateway_of(docker_cli)
    ip = ip_of(docker_cli, "cont2-name1")
    assert dns_query(gateway, "cont2-name1") == [ip]
    ok(docker_cli("rename", "cont2-name1", "cont2-name2"))
    assert dns_query(gateway, "cont2-name2") == [ip] and dns_query(gateway, "cont2-name1") == []
    check_renamed(si, cid2, "cont2-name2", "LocalDS_0")

    # stopped, then started again under its new name
    ok(docker_cli("stop", "-t", "1", "cont2-name2"))
    ok(docker_cli("rename", "cont2-name2", "cont3-name2"))
    ok(docker_cli("start", "cont3-name2", timeout=120))
    assert dns_query(gateway, "cont3-name2") == [ip]
    check_renamed(si, cid2, "cont3-name2", "LocalDS_0")

    # a 70-character name: cut to 67 in the display name, whole everywhere else
    long = "n" * 70
    ok(docker_cli("rename", "cont1-name2", long))
    vm = check_renamed(si, cid1, long, "LocalDS_0")
    assert len(vm.name) == 80 and vm.name == "n" * 67 + "-" + cid1[:12]
    assert ok(docker_cli("ps", "-a", "--filter", f"id={cid1}", "--format", "{{.Names}}")).strip() == long
    # the old names are free again
    ok(docker_cli("create", "--name", "cont1-name1", busybox))
    ok(docker_cli("rm", "-f", cid1, cid2, "cont1-name1"))


def test_rename_on_vsan(vsan_vch, busybox_image, si):  # noqa: F811 - the fixture imported above
    _, docker = vsan_vch
    ok(docker("pull", busybox_image.reference, timeout=120))
    cid = ok(docker("create", "--name", "vs-1", busybox_image.reference)).strip()
    folder_before = vm_of(si, cid).config.files.vmPathName
    ok(docker("rename", "vs-1", "vs-2"))
    vm = check_renamed(si, cid, "vs-2", "vsanDatastore")
    assert vm.config.files.vmPathName == folder_before  # the namespace is not renamed
    ok(docker("rm", "vs-2"))


def test_links_follow_a_rename(vch, docker_cli, busybox, si):
    ok(docker_cli("run", "-d", "--name", "lk-target", busybox, "sleep", "600", timeout=120))
    target_ip = ip_of(docker_cli, "lk-target")
    ok(docker_cli("create", "--name", "lk-linker", "--link", "lk-target:db", busybox, "sh", "-c",
                  "ping -c2 db; sleep 600"))
    ok(docker_cli("rename", "lk-target", "lk-renamed"))
    links = json.loads(ok(docker_cli("inspect", "-f", "{{json .HostConfig.Links}}", "lk-linker")))
    assert links == ["/lk-renamed:/lk-linker/db"]
    # the stored HostConfig (the annotation a restarted VCH reads) was rewritten too
    linker_id = ok(docker_cli("inspect", "-f", "{{.Id}}", "lk-linker")).strip()
    stored = stored_host_config(si, linker_id)
    assert stored["Links"] == ["/lk-renamed:/lk-linker/db"]
    ok(docker_cli("start", "lk-linker", timeout=120))
    logs = wait_for(lambda: (lambda text: text if "packets received" in text else "")(
        ok(docker_cli("logs", "lk-linker"))), 30, "the linker's ping")
    assert PINGED in logs and f"({target_ip})" in logs, logs
    out = ok(docker_cli("run", "--rm", "--link", "lk-renamed:alias2", busybox, "ping", "-c2", "alias2",
                        timeout=120))
    assert PINGED in out and target_ip in out
    ok(docker_cli("rm", "-f", "lk-renamed", "lk-linker"))


def stored_host_config(si, cid: str) -> dict:
    extra = extra_config(vm_of(si, cid))
    (key,) = [k for k in extra if k.endswith("docker.hostconfig")]
    return json.loads(base64.b64decode(extra[key]))


def tether_log(vch, cid: str) -> str:
    path = vch.workdir / "sim" / "datastores" / "LocalDS_0" / cid / "tether.debug"
    return path.read_text(errors="replace") if path.exists() else ""


def test_older_containers(vch, docker_cli, busybox, si):
    """Containers as an older VCH wrote them (vic_ref.testing.older): the name in the guest-visible key and in
    /etc/hosts. Powered off: the rename rewrites that key too and the next start sends `reload`. Running: the rename
    works, DNS follows, /etc/hosts keeps the old name until a restart, and the VCH warns (log and event)."""
    gateway = gateway_of(docker_cli)
    cmd = ("sh", "-c", "sleep 600")
    off = ok(docker_cli("create", "--name", "old-off", busybox, *cmd)).strip()
    on = ok(docker_cli("create", "--name", "old-on", busybox, *cmd)).strip()
    for cid, name in ((off, "old-off"), (on, "old-on")):
        assert make_older(vm_of(si, cid)) == name
        assert is_older(vm_of(si, cid))
    # the VCH sees them as older containers under their names
    wait_for(lambda: {"old-off", "old-on"} <= set(ok(docker_cli("ps", "-a", "--format", "{{.Names}}")).split()),
             15, "the older containers' names")

    # powered off
    ok(docker_cli("rename", "old-off", "old-off2"))
    vm = vm_of(si, off)
    extra = extra_config(vm)
    assert vm.name == f"old-off2-{off[:12]}" and extra["guestinfo.vice./common/name"] == "old-off2"
    assert is_older(vm), "no new-format keys written to an older container"
    ok(docker_cli("start", "old-off2", timeout=120))
    hosts = ok(docker_cli("exec", "old-off2", "cat", "/etc/hosts"))
    assert "old-off2" in hosts.split() and "old-off" not in hosts.split(), hosts
    wait_for(lambda: "'reload'" in tether_log(vch, off), 15, "the reload sent at the start after the rename")
    assert is_older(vm_of(si, off)), "a start writes no new-format keys to an older container"
    ip = ip_of(docker_cli, "old-off2")
    assert dns_query(gateway, "old-off2") == [ip]

    # powered on
    ok(docker_cli("start", "old-on", timeout=120))
    assert "old-on" in ok(docker_cli("exec", "old-on", "cat", "/etc/hosts")).split()
    since = time.time()
    ok(docker_cli("rename", "old-on", "old-on2"))
    warning = ("container old-on2 was renamed from old-on while running; its /etc/hosts still lists old-on until it "
               "is restarted")
    (event,) = events(docker_cli, since, on)
    assert event["Actor"]["Attributes"]["warning"] == warning and event["Actor"]["Attributes"]["oldName"] == "/old-on"
    wait_for(lambda: warning in vch.guest_log.read_text(errors="replace"), 10, "the warning in the VCH's log")
    ip = ip_of(docker_cli, "old-on2")
    assert dns_query(gateway, "old-on2") == [ip] and dns_query(gateway, "old-on") == []
    hosts = ok(docker_cli("exec", "old-on2", "cat", "/etc/hosts")).split()
    assert "old-on" in hosts and "old-on2" not in hosts  # as the warning says
    vm = vm_of(si, on)
    assert vm.name == f"old-on2-{on[:12]}" and extra_config(vm)["guestinfo.vice./common/name"] == "old-on2"
    assert is_older(vm)
    ok(docker_cli("restart", "-t", "1", "old-on2", timeout=120))
    hosts = ok(docker_cli("exec", "old-on2", "cat", "/etc/hosts")).split()
    assert "old-on2" in hosts and "old-on" not in hosts
    ok(docker_cli("rm", "-f", off, on))


def test_twenty_threads_rename_among_forty_names(vch, docker_client, busybox, si):
    """20 threads rename 20 containers among 40 names for 30 seconds: no name is ever given to two containers or
    lost; afterwards `docker ps`, the VM display names and the name server agree."""
    api = docker_client.api
    pool = [f"race-{i:02d}" for i in range(40)]
    with ThreadPoolExecutor(10) as setup:
        ids = list(setup.map(lambda name: api.create_container(busybox, ["sleep", "600"], name=name)["Id"],
                             pool[:20]))
        list(setup.map(api.start, ids[:10]))  # running ones too: their names are on the name server
    deadline = time.monotonic() + 30.0
    outcomes = {"ok": 0, "conflict": 0, "same": 0}
    failures: list[str] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        import docker.errors
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            cid, name = rng.choice(ids), rng.choice(pool)
            try:
                api.rename(cid, name)
                kind = "ok"
            except docker.errors.APIError as err:
                if err.status_code == 409 and "is already in use" in err.explanation:
                    kind = "conflict"
                elif err.status_code == 500 and "same name" in err.explanation:
                    kind = "same"
                else:
                    with lock:
                        failures.append(f"{err.status_code} {err.explanation}")
                    continue
            with lock:
                outcomes[kind] += 1

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures[:5]
    assert outcomes["ok"] > 20, outcomes
    print("renames:", outcomes)

    names = {c["Id"]: c["Names"][0].lstrip("/") for c in api.containers(all=True) if c["Id"] in ids}
    assert len(names) == 20 and len(set(names.values())) == 20, names
    assert set(names.values()) <= set(pool)
    vms = container_vms(si)
    assert {cid: vms[cid][0] for cid in ids} == {cid: f"{name}-{cid[:12]}" for cid, name in names.items()}
    assert {cid: vms[cid][1]["common/name"] for cid in ids} == names
    gateway = next(iter(api.inspect_network("bridge")["IPAM"]["Config"]))["Gateway"]
    for cid in ids[:10]:
        ip = api.inspect_container(cid)["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        assert dns_query(gateway, names[cid]) == [ip]
    free = [n for n in pool if n not in names.values()]
    for name in free[:5]:
        assert dns_query(gateway, name) == []
    # every name not held is free, every held one is taken
    api.create_container(busybox, ["true"], name=free[0])
    import docker.errors
    with pytest.raises(docker.errors.APIError) as caught:
        api.create_container(busybox, ["true"], name=names[ids[0]])
    assert caught.value.status_code == 409
    with ThreadPoolExecutor(10) as teardown:
        list(teardown.map(lambda cid: api.remove_container(cid, force=True), ids + [free[0]]))


def test_kill_9_in_the_middle_of_a_rename(vch, docker_cli, busybox, si):
    """The VCH dies while the rename's ReconfigVM_Task is held up in vSphere: after its restart the container has
    the old or the new name everywhere (display name, hidden key, docker ps, DNS), never a mix. The rename is one
    ReconfigVM_Task, so this holds by construction; the sim finishes the held-up call after the VCH is gone."""
    from pyVim.task import WaitForTask

    cid = ok(docker_cli("run", "-d", "--name", "k9-old", busybox, "sleep", "600", timeout=120)).strip()
    linker = ok(docker_cli("create", "--name", "k9-linker", "--link", "k9-old:db", busybox)).strip()
    vm = vm_of(si, cid)
    sim_control(vch, "POST", "faults", {"method": "ReconfigVM_Task", "object": vm._moId, "delay": 3, "count": 1})
    rename = subprocess.Popen(["docker", "rename", "k9-old", "k9-new"], env=vch.docker_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # a rule with a count retires when it fires: the rename's reconfigure is being held up now
        wait_for(lambda: not sim_control(vch, "GET", "faults")["rules"], 10, "the held-up reconfigure")
        os.kill(appliance_pid(vch), signal.SIGKILL)
    finally:
        sim_control(vch, "DELETE", "faults")
    rename.wait(30)
    assert rename.returncode != 0  # the VCH died under it
    (appliance,) = find_vms(si, vch.name)
    wait_for(lambda: appliance.runtime.powerState == "poweredOff", 30, "the appliance VM to power off")
    time.sleep(3.5)  # the held-up call has run by now
    WaitForTask(appliance.PowerOnVM_Task())
    wait_for(lambda: docker_cli("version", timeout=10)[0] == 0, 120, "the VCH to answer again", every=0.5)

    name = ok(docker_cli("ps", "-a", "--filter", f"id={cid}", "--format", "{{.Names}}")).strip()
    assert name in ("k9-old", "k9-new")
    other = "k9-new" if name == "k9-old" else "k9-old"
    vm = vm_of(si, cid)
    assert vm.name == f"{name}-{cid[:12]}" and extra_config(vm)["common/name"] == name
    aliases = [v for k, v in extra_config(vm).items() if k.endswith("aliases~")]
    assert any(f"bridge:{name}" in v for v in aliases) and not any(f"bridge:{other}" in v for v in aliases), aliases
    gateway = gateway_of(docker_cli)
    ip = ip_of(docker_cli, name)
    wait_for(lambda: dns_query(gateway, name) == [ip], 10, "the name server to answer the container's name")
    assert dns_query(gateway, other) == []
    assert json.loads(ok(docker_cli("inspect", "-f", "{{json .HostConfig.Links}}", linker))) == \
        [f"/{name}:/k9-linker/db"]
    # the name table agrees: the other name is free, this one taken
    ok(docker_cli("create", "--name", other, busybox))
    rc, _, err = docker_cli("create", "--name", name, busybox)
    assert rc != 0 and "already in use" in err
    ok(docker_cli("rm", "-f", cid, linker, other))
