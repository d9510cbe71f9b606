"""A failed create leaves no VM, no datastore folder and no reserved name, on the VMFS and the vSAN datastore: the
sim refuses the VM (CreateVM_Task) or the rename that follows it (ReconfigVM_Task), through its fault rules."""
from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest

from vic_ref import errors
from vic_ref.portlayer.tests.harness import VchEnv, create_container
from vic_ref.trace import Operation
from vic_ref.vsphere import vim

pytestmark = pytest.mark.sim_only

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def control(target, method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{target.control_url}/{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as reply:
        return json.loads(reply.read())


@pytest.fixture(scope="module", params=["LocalDS_0", "vsanDatastore"])
def env(request, sim_target):
    env = VchEnv(sim_target.url, sim_target.user, sim_target.password, datastore=request.param)
    image = env.images.add(env.op, "busybox")
    pl = env.portlayer()
    yield env, pl, image
    pl.close(env.op)
    env.close()
    control(sim_target, "DELETE", "faults")


def container_folders(env) -> set[str]:
    """Top-level folders of the datastore named like a container ID (on vSAN: namespaces by friendly name)."""
    session, op = env.session, env.op
    browser = session.retrieve_one(op, session.datastore, ["browser"])["browser"]
    result = session.run_task(op, browser.SearchDatastore_Task, datastorePath=f"[{env.datastore}]",
                              searchSpec=vim.host.DatastoreBrowser.SearchSpec(matchPattern=["*"]))
    names = {getattr(f, "friendlyName", None) or f.path for f in result.file or []}
    return {n for n in names if HEX64.match(n)}


def vms_in_folder(env) -> list[str]:
    children = env.session.retrieve_one(env.op, env.folder, ["childEntity"]).get("childEntity") or []
    return [c._moId for c in children if isinstance(c, vim.VirtualMachine)]


@pytest.mark.parametrize("method", ["CreateVM_Task", "ReconfigVM_Task"])
def test_failed_create_leaves_nothing(env, sim_target, method):
    env_, pl, image = env
    op = Operation.new(f"failing {method}")
    folders, vms = container_folders(env_), vms_in_folder(env_)
    mark = time.time_ns()
    control(sim_target, "POST", "faults", {"method": method, "fault": "vim.fault.InvalidState",
                                           "message": "refused by a test", "count": 1})
    with pytest.raises(errors.VicError, match="refused by a test"):
        create_container(pl, op, image, "doomed")
    assert vms_in_folder(env_) == vms
    assert container_folders(env_) == folders
    assert "doomed" not in pl.names and len(pl.exec) == 0
    assert not pl.events.history(since_ns=mark)  # no create (nor any other) event for it
    # the name and the place are free: the same create works now
    cid = create_container(pl, op, image, "doomed")
    assert container_folders(env_) == folders | {cid}
    pl.exec.remove(op, cid)
    assert container_folders(env_) == folders


def test_failed_rename_keeps_the_old_name_and_frees_the_new(env, sim_target):
    """A rename whose reconfigure vSphere refuses: the old name everywhere, the new one free (DESIGN §3)."""
    env_, pl, image = env
    op = Operation.new("failing rename")
    cid = create_container(pl, op, image, "keeper")
    control(sim_target, "POST", "faults", {"method": "ReconfigVM_Task", "fault": "vim.fault.InvalidState",
                                           "message": "refused by a test", "count": 1})
    with pytest.raises(errors.VicError, match="refused by a test"):
        pl.exec.rename(op, "keeper", "wanted")
    assert pl.names.holder("keeper") == cid and "wanted" not in pl.names
    assert pl.exec.info(cid).name == "keeper" and pl.exec.info(cid).display_name == f"keeper-{cid[:12]}"
    pl.exec.rename(op, "keeper", "wanted")  # and it works once vSphere does
    assert pl.names.holder("wanted") == cid and "keeper" not in pl.names
    pl.exec.remove(op, cid)
