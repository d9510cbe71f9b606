"""Virtual disks through pyVmomi: VirtualDiskManager, disks in the datastore browser, descriptors over /folder.

Black-box against any vSphere (see test_datastore_files.py for the environment variables); the disk-chain tests that
need a child disk made in-process are sim-only (pyVmomi's VirtualDiskManager has no CreateChildDisk_Task: children
come from ReconfigVM_Task with a parent backing).
"""
from __future__ import annotations

import re
import uuid
from types import SimpleNamespace
from urllib.parse import quote, urlsplit

import pytest
import requests
from pyVmomi import vim

from .helpers import DS, call, datacenter, raises, wait

B = vim.host.DatastoreBrowser
VDM = vim.VirtualDiskManager
UUID_RE = r"([0-9a-fA-F]{2} ){7}[0-9a-fA-F]{2}-([0-9a-fA-F]{2} ){7}[0-9a-fA-F]{2}"



@pytest.fixture(scope="module")
def inv(vsphere, si):
    content = si.RetrieveContent()
    dc = datacenter(si)
    ds = next(d for d in dc.datastore if d.name == DS)
    parts = urlsplit(vsphere.url)
    cookie = si._stub.cookie.split(";")[0] if si._stub.cookie else ""
    return SimpleNamespace(dc=dc, ds=ds, fm=content.fileManager, vdm=content.virtualDiskManager,
                           base=f"{parts.scheme}://{parts.netloc}", cookie=cookie)


@pytest.fixture
def top(inv):
    name = f"vd-{uuid.uuid4().hex[:8]}"
    call(inv.fm.MakeDirectory, f"[{DS}] {name}", inv.dc)
    yield name
    try:
        call(inv.fm.DeleteDatastoreFile_Task, f"[{DS}] {name}", inv.dc)
    except vim.fault.FileNotFound:
        pass


def spec(capacity_kb=1024, disk_type="thin", cls=VDM.FileBackedVirtualDiskSpec, **kw):
    return cls(diskType=disk_type, adapterType="lsiLogic", capacityKb=capacity_kb, **kw)


def create(inv, path, capacity_kb=1024, **kw):
    return call(inv.vdm.CreateVirtualDisk_Task, path, inv.dc, spec(capacity_kb, **kw))


def disks(inv, folder, **details):
    query = B.VmDiskQuery(details=B.VmDiskQuery.Details(diskType=True, capacityKb=True, hardwareVersion=True,
                                                        controllerType=True, diskExtents=True, thin=True))
    result = call(inv.ds.browser.SearchDatastore_Task, folder,
                  B.SearchSpec(query=[query], details=B.FileInfo.Details(fileSize=True, fileType=True,
                                                                         modification=True)))
    return {f.path: f for f in result.file}


def get(inv, path):
    url = f"{inv.base}/folder/{quote(path)}?dcPath={quote(inv.dc.name)}&dsName={quote(DS)}"
    return requests.get(url, headers={"Cookie": inv.cookie}, verify=False)


def test_create_and_browse(inv, top):
    path = f"[{DS}] {top}/d1.vmdk"
    assert create(inv, path, 2048) == path
    found = disks(inv, f"[{DS}] {top}")
    assert list(found) == ["d1.vmdk"]  # the -flat.vmdk extent is never listed
    info = found["d1.vmdk"]
    assert isinstance(info, B.VmDiskInfo) and info.capacityKb == 2048 and info.thin is True
    assert info.diskType is vim.vm.device.VirtualDisk.FlatVer2BackingInfo
    plain = call(inv.ds.browser.SearchDatastore_Task, f"[{DS}] {top}", B.SearchSpec())
    assert [f.path for f in plain.file] == ["d1.vmdk"]
    f = raises(vim.fault.FileAlreadyExists, inv.vdm.CreateVirtualDisk_Task, path, inv.dc, spec())
    assert f.file == path


def test_create_without_datacenter_and_sesparse(inv, top):
    create(inv, f"[{DS}] {top}/plain.vmdk", 1024)
    call(inv.vdm.CreateVirtualDisk_Task, name=f"[{DS}] {top}/nodc.vmdk",
         spec=spec(1024, "eagerZeroedThick"))
    call(inv.vdm.CreateVirtualDisk_Task, name=f"[{DS}] {top}/se.vmdk", datacenter=inv.dc,
         spec=spec(1024, "seSparse", VDM.SeSparseVirtualDiskSpec))
    found = disks(inv, f"[{DS}] {top}")
    assert sorted(found) == ["nodc.vmdk", "plain.vmdk", "se.vmdk"]
    assert found["nodc.vmdk"].thin is False


def test_create_in_missing_folder_and_bad_datastore(inv, top):
    raises(vim.fault.FileNotFound, inv.vdm.CreateVirtualDisk_Task, f"[{DS}] {top}/nope/x.vmdk", inv.dc, spec())
    raises(vim.fault.InvalidDatastore, inv.vdm.CreateVirtualDisk_Task, "[no-such-ds] x.vmdk", inv.dc, spec())


def test_uuid(inv, top):
    path = f"[{DS}] {top}/u.vmdk"
    create(inv, path)
    value = call(inv.vdm.QueryVirtualDiskUuid, path, inv.dc)
    assert re.fullmatch(UUID_RE, value)
    new = "60 00 c2 9a 4b 1c 2d 3e-4f 50 61 72 83 94 a5 b6"
    call(inv.vdm.SetVirtualDiskUuid, path, inv.dc, new)
    assert call(inv.vdm.QueryVirtualDiskUuid, path, inv.dc).lower() == new
    raises(vim.fault.FileNotFound, inv.vdm.QueryVirtualDiskUuid, f"[{DS}] {top}/none.vmdk", inv.dc)


def test_extend(inv, top):
    path = f"[{DS}] {top}/e.vmdk"
    create(inv, path, 1024)
    call(inv.vdm.ExtendVirtualDisk_Task, path, inv.dc, 4096, False)
    assert disks(inv, f"[{DS}] {top}")["e.vmdk"].capacityKb == 4096


def test_copy_move_delete(inv, top):
    src = f"[{DS}] {top}/src.vmdk"
    create(inv, src, 1024)
    call(inv.fm.MakeDirectory, f"[{DS}] {top}/other", inv.dc)
    call(inv.vdm.CopyVirtualDisk_Task, sourceName=src, sourceDatacenter=inv.dc,
         destName=f"[{DS}] {top}/other/copy.vmdk", destDatacenter=inv.dc)
    raises(vim.fault.FileAlreadyExists, inv.vdm.CopyVirtualDisk_Task, sourceName=src, sourceDatacenter=inv.dc,
           destName=f"[{DS}] {top}/other/copy.vmdk", destDatacenter=inv.dc)
    call(inv.vdm.MoveVirtualDisk_Task, sourceName=src, sourceDatacenter=inv.dc,
         destName=f"[{DS}] {top}/other/moved.vmdk", destDatacenter=inv.dc)
    assert sorted(disks(inv, f"[{DS}] {top}/other")) == ["copy.vmdk", "moved.vmdk"]
    assert disks(inv, f"[{DS}] {top}") == {}
    a, b = (call(inv.vdm.QueryVirtualDiskUuid, f"[{DS}] {top}/other/{n}.vmdk", inv.dc) for n in ("copy", "moved"))
    assert a and b
    call(inv.vdm.DeleteVirtualDisk_Task, f"[{DS}] {top}/other/moved.vmdk", inv.dc)
    raises(vim.fault.FileNotFound, inv.vdm.DeleteVirtualDisk_Task, f"[{DS}] {top}/other/moved.vmdk", inv.dc)
    # FileManager deletes a disk whole (descriptor and extent), as ESX does
    call(inv.fm.DeleteDatastoreFile_Task, f"[{DS}] {top}/other/copy.vmdk", inv.dc)
    listing = call(inv.ds.browser.SearchDatastore_Task, f"[{DS}] {top}/other", B.SearchSpec())
    assert [f.path for f in listing.file] == []


def test_descriptor_over_http(inv, top):
    create(inv, f"[{DS}] {top}/h.vmdk", 1024)
    r = get(inv, f"{top}/h.vmdk")
    assert r.status_code == 200
    text = r.text
    assert text.startswith("# Disk DescriptorFile") and "createType=" in text
    assert re.search(r'^RW 2048 \w+ "h-flat.vmdk"', text, re.M)
    assert re.search(r'ddb.uuid = "' + UUID_RE + '"', text)


# -- sim-only: child disks (made in-process, as ReconfigVM_Task with a parent backing does) -------------------------
@pytest.mark.sim_only
def test_parent_of_a_child_is_locked(inv, top, sim):
    parent = f"[{DS}] {top}/parent.vmdk"
    create(inv, parent, 1024)
    call(inv.fm.MakeDirectory, f"[{DS}] {top}/c", inv.dc)
    with sim.lock:
        sim.datastores.create_disk(f"[{DS}] {top}/c/child.vmdk", 0, parent=parent)
    child = disks(inv, f"[{DS}] {top}/c")["child.vmdk"]
    assert child.capacityKb == 1024
    text = get(inv, f"{top}/c/child.vmdk").text
    assert 'createType="vmfsSparse"' in text and re.search(r'parentFileNameHint="/vmfs/volumes/[^/]+/' + top +
                                                           r'/parent.vmdk"', text)
    f = raises(vim.fault.FileLocked, inv.vdm.DeleteVirtualDisk_Task, parent, inv.dc)
    assert f.file == parent
    raises(vim.fault.FileLocked, inv.fm.DeleteDatastoreFile_Task, parent, inv.dc)
    call(inv.vdm.DeleteVirtualDisk_Task, f"[{DS}] {top}/c/child.vmdk", inv.dc)
    call(inv.vdm.DeleteVirtualDisk_Task, parent, inv.dc)


@pytest.mark.sim_only
def test_task_entity_is_datacenter(inv, top):
    task = inv.vdm.CreateVirtualDisk_Task(f"[{DS}] {top}/t.vmdk", inv.dc, spec())
    wait(task)
    assert task.info.entity == inv.dc and task.info.entityName == inv.dc.name
