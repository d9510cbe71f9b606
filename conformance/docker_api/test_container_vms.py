"""What `docker create` makes in vSphere, seen with pyVmomi: a VM `{name}-{shortID}` whose files are in the datastore
folder `<ID>`, on the VMFS datastore (the `vic-ref up` VCH) and on the vSAN datastore (a second VCH deployed there);
100-character names; a create the sim refuses leaves no VM, no folder and no reserved name."""
from __future__ import annotations

import re
import uuid

import pytest

from .conftest import datastore_files, find_vms, free_port, ok, sim_control

pytestmark = pytest.mark.sim_only


def check_layout(si, cid: str, name: str, datastore: str):
    (vm,) = find_vms(si, f"{name}-{cid[:12]}")
    assert vm.datastore[0].name == datastore
    path = vm.config.files.vmPathName
    if datastore == "vsanDatastore":
        assert re.fullmatch(rf"\[vsanDatastore\] [0-9a-f-]{{36}}/{cid}\.vmx", path), path
        assert cid in datastore_files(si, vm.datastore[0], "")  # the namespace, by its friendly name
    else:
        assert path == f"[{datastore}] {cid}/{cid}.vmx"
    assert {f"{cid}.vmx", f"{cid}.vmdk"} <= datastore_files(si, vm.datastore[0], cid)
    extra = {o.key: o.value for o in vm.config.extraConfig}
    assert extra["common/name"] == name and extra["guestinfo.vice./common/id"] == cid
    assert extra["guestinfo.vice./version/PluginVersion"]
    return vm


def test_vmfs_layout(docker_cli, busybox, si):
    cid = ok(docker_cli("create", "--name", "web", busybox)).strip()
    vm = check_layout(si, cid, "web", "LocalDS_0")
    assert vm.parent.name == "vic-ref"  # the VCH's folder
    ok(docker_cli("rm", "web"))
    assert not find_vms(si, f"web-{cid[:12]}")
    assert cid not in datastore_files(si, _datastore(si, "LocalDS_0"), "")  # its folder went with it


def _datastore(si, name):
    content = si.RetrieveContent()
    dc = content.rootFolder.childEntity[0]
    return next(d for d in dc.datastore if d.name == name)


def test_hundred_character_name(docker_cli, busybox, si):
    name = "a" + "b" * 99
    cid = ok(docker_cli("create", "--name", name, busybox)).strip()
    (vm,) = find_vms(si, name[:67] + "-" + cid[:12])
    assert len(vm.name) == 80 and vm.name.endswith("-" + cid[:12])
    assert ok(docker_cli("ps", "-a", "--format", "{{.Names}}", "--filter", f"id={cid}")).strip() == name
    ok(docker_cli("rm", name))


@pytest.mark.parametrize("method", ["CreateVM_Task", "ReconfigVM_Task"])
def test_refused_create_leaves_nothing(vch, docker_cli, busybox, si, method):
    ds = _datastore(si, "LocalDS_0")
    before_vms = {vm.name for vm in find_vms(si)}
    before_files = datastore_files(si, ds, "")
    sim_control(vch, "POST", "faults", {"method": method, "fault": "vim.fault.InvalidState", "count": 1,
                                        "message": "the sim refuses this VM"})
    try:
        rc, out, err = docker_cli("create", "--name", "refused", busybox)
    finally:
        sim_control(vch, "DELETE", "faults")
    assert rc == 1 and err.strip() == "Error response from daemon: the sim refuses this VM"
    assert {vm.name for vm in find_vms(si)} == before_vms
    assert datastore_files(si, ds, "") == before_files
    cid = ok(docker_cli("create", "--name", "refused", busybox)).strip()  # the name is free
    ok(docker_cli("rm", cid))


# -- a second VCH, on the vSAN datastore -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vsan_vch(vch, busybox_image):
    from vic_ref.config.vch import new_config
    from vic_ref.machine import deploy
    from vic_ref.trace import Operation
    from vic_ref.vsphere import Session, Target

    op = Operation.new("vSAN VCH")
    target = Target(vch.vsphere_url, vch.vsphere_user, vch.vsphere_password, compute_resource="DC0_C0",
                    datastore="vsanDatastore", keepalive=None)
    session = Session.open(op, target, populate=True)
    name = f"vsan-{uuid.uuid4().hex[:6]}"
    config = new_config(name, vch.vsphere_url, vch.vsphere_user, vch.vsphere_password,
                        image_store="[vsanDatastore]", datacenter="DC0", compute_resource="DC0_C0",
                        port=free_port())
    try:
        deployed = deploy.create(op, session, config, timeout=120)
    except Exception as err:  # noqa: BLE001 - the vSAN VCH is the deployer's; say why it can't run here
        session.close(op)
        pytest.fail(f"deploying a VCH on vsanDatastore failed: {err}")

    def docker(*args, timeout=60):
        return vch.docker(*args, timeout=timeout, env={"DOCKER_HOST": deployed.docker_host})

    yield name, docker
    try:
        deploy.power_off(op, session, deployed)
    finally:
        session.close(op)


def test_vsan_layout(vsan_vch, busybox_image, si):
    name, docker = vsan_vch
    ok(docker("pull", busybox_image.reference, timeout=120))
    cid = ok(docker("create", "--name", "web", busybox_image.reference)).strip()
    vm = check_layout(si, cid, "web", "vsanDatastore")
    assert vm.parent.name == name
    ok(docker("start", "web"))
    ok(docker("rm", "-f", "web"))
    assert not find_vms(si, f"web-{cid[:12]}")
    assert cid not in datastore_files(si, _datastore(si, "vsanDatastore"), "")
