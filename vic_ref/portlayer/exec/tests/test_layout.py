"""What a created container looks like in vSphere, seen with pyVmomi, on the VMFS and the vSAN datastore alike:
display name `{name}-{shortID}` (≤ 80), files in the datastore folder `<ID>`, the devices of vic-behaviour.md §5.4,
the executor config in guestinfo with the hidden name and the data version (DESIGN-DECISIONS §1)."""
from __future__ import annotations

import re

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

from vic_ref.config import PLUGIN_VERSION, VERSION_KEY, key_for
from vic_ref.portlayer.tests.harness import VchEnv, create_container

VD = vim.vm.device


@pytest.fixture(scope="module", params=["LocalDS_0", "vsanDatastore"])
def env(request, sim_target):
    env = VchEnv(sim_target.url, sim_target.user, sim_target.password, datastore=request.param)
    yield env
    env.close()


@pytest.fixture(scope="module")
def si(sim_target):
    return sim_target.connect()


def find_vm(si, folder_name: str, name: str) -> vim.VirtualMachine | None:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return next((vm for vm in view.view if vm.name == name and vm.parent.name == folder_name), None)
    finally:
        view.DestroyView()


def files_in(si, datastore: vim.Datastore, folder: str) -> set[str]:
    task = datastore.browser.SearchDatastore_Task(f"[{datastore.name}] {folder}",
                                                  vim.host.DatastoreBrowser.SearchSpec(matchPattern=["*"]))
    WaitForTask(task)
    return {f.path for f in task.info.result.file or []}


def test_create_layout(env, si, portlayer, image, op):
    cid = create_container(portlayer, op, image, "web", cmd=("sh", "-c", "echo hi"), env=["A=1"])
    short = cid[:12]
    vm = find_vm(si, env.name, f"web-{short}")
    assert vm is not None, "pyVmomi shows the VM as web-<shortID> in the VCH's folder"
    config = vm.config
    ds = vm.datastore[0]
    assert ds.name == env.datastore
    path = config.files.vmPathName
    if env.vsan:
        # the namespace was named after the display name at creation: the ID; its UUID shows in the path
        m = re.fullmatch(rf"\[{env.datastore}\] ([0-9a-f-]{{36}})/{cid}\.vmx", path)
        assert m, path
        browse = ds.browser.SearchDatastore_Task(f"[{ds.name}]", vim.host.DatastoreBrowser.SearchSpec(
            matchPattern=[m.group(1)]))
        WaitForTask(browse)
        assert [f.friendlyName for f in browse.info.result.file] == [cid]
    else:
        assert path == f"[{env.datastore}] {cid}/{cid}.vmx"
    files = files_in(si, ds, cid)
    assert {f"{cid}.vmx", f"{cid}.vmdk"} <= files, files
    assert vm.resourcePool.parent.name == "DC0_C0" or vm.resourcePool.owner.name == "DC0_C0"
    extra = {o.key: o.value for o in config.extraConfig}
    assert extra["common/name"] == "web"  # hidden: no guestinfo. prefix
    assert "guestinfo.vice./common/name" not in extra
    assert extra["guestinfo.vice./common/id"] == cid
    assert extra[VERSION_KEY] == str(PLUGIN_VERSION)
    assert extra[key_for("sessions", cid, "cmd", "path")] == "sh"
    devices = config.hardware.device
    (scsi,) = [d for d in devices if isinstance(d, VD.ParaVirtualSCSIController)]
    (cdrom,) = [d for d in devices if isinstance(d, VD.VirtualCdrom)]
    assert cdrom.backing.fileName == str(env.bootstrap)
    assert any(isinstance(d, VD.VirtualIDEController) and d.key == cdrom.controllerKey for d in devices)
    (disk,) = [d for d in devices if isinstance(d, VD.VirtualDisk)]
    assert disk.controllerKey == scsi.key
    assert disk.backing.fileName.endswith(f"/{cid}.vmdk")
    assert disk.backing.parent is not None
    assert disk.backing.parent.fileName.endswith(f"{image.top_layer}/{image.top_layer}.vmdk")
    logs = sorted(d.backing.fileName.rsplit("/", 1)[1] for d in devices if isinstance(d, VD.VirtualSerialPort))
    assert logs == ["output.log", "tether.debug"]
    assert config.uuid and config.guestId == "otherGuest64"
    portlayer.exec.remove(op, cid)
    assert find_vm(si, env.name, f"web-{short}") is None


def test_hundred_character_name(env, si, portlayer, image, op):
    name = "n" * 100
    cid = create_container(portlayer, op, image, name)
    info = portlayer.exec.info(name)
    assert info.name == name and len(info.display_name) == 80 and info.display_name == "n" * 67 + "-" + cid[:12]
    vm = find_vm(si, env.name, info.display_name)
    assert vm is not None
    assert {o.key: o.value for o in vm.config.extraConfig}["common/name"] == name
    portlayer.exec.remove(op, cid)
