"""Datastores and their files through pyVmomi: Datastore properties, FileManager, HostDatastoreBrowser.

Black-box: runs against any vSphere (VSPHERE_URL; VSPHERE_DATACENTER / VSPHERE_DATASTORE name the VMFS datastore to
use, default DC0 / LocalDS_0). Where vcsim differs from vCenter (spec/vim25-for-pyvmomi.md §2.2) these tests follow
vCenter: optional datacenter arguments, all files without a matchPattern, `"[ds] dir"` folder paths, tasks whose
entity is a ManagedEntity, fault messages without host paths.
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



@pytest.fixture(scope="module")
def inv(vsphere, si):
    content = si.RetrieveContent()
    dc = datacenter(si)
    ds = next(d for d in dc.datastore if d.name == DS)
    parts = urlsplit(vsphere.url)
    cookie = si._stub.cookie.split(";")[0] if si._stub.cookie else ""
    return SimpleNamespace(dc=dc, ds=ds, fm=content.fileManager, base=f"{parts.scheme}://{parts.netloc}",
                           cookie=cookie, verify=False, vsphere=vsphere)


@pytest.fixture
def top(inv):
    """A fresh top-level folder, removed afterwards."""
    name = f"dsf-{uuid.uuid4().hex[:8]}"
    call(inv.fm.MakeDirectory, f"[{DS}] {name}", inv.dc)
    yield name
    try:
        call(inv.fm.DeleteDatastoreFile_Task, f"[{DS}] {name}", inv.dc)
    except vim.fault.FileNotFound:
        pass


def put(inv, path: str, data: bytes):
    url = f"{inv.base}/folder/{quote(path)}?dcPath={quote(inv.dc.name)}&dsName={quote(DS)}"
    r = requests.put(url, data=data, headers={"Cookie": inv.cookie}, verify=inv.verify)
    assert r.status_code in (200, 201), r.text


def search(inv, path, **spec):
    return call(inv.ds.browser.SearchDatastore_Task, path, B.SearchSpec(**spec))


def names(result):
    return sorted(f.path for f in result.file)


# -- the Datastore object -------------------------------------------------------------------------------------------
def test_datastore_properties(inv):
    s = inv.ds.summary
    assert s.name == DS and s.type == "VMFS" and s.accessible
    assert re.fullmatch(r"ds:///vmfs/volumes/[^/]+/", s.url)
    assert 0 < s.freeSpace <= s.capacity
    assert s.datastore == inv.ds
    assert isinstance(inv.ds.info, vim.host.VmfsDatastoreInfo) and inv.ds.info.url == s.url
    assert inv.ds.capability.topLevelDirectoryCreateSupported is True
    assert isinstance(inv.ds.browser, vim.host.DatastoreBrowser)
    assert inv.ds.host and all(isinstance(m.key, vim.HostSystem) and m.mountInfo.accessMode == "readWrite"
                               for m in inv.ds.host)
    assert inv.ds in inv.dc.datastore
    for mount in inv.ds.host:
        assert inv.ds in mount.key.datastore


# -- FileManager ----------------------------------------------------------------------------------------------------
def test_make_directory(inv, top):
    call(inv.fm.MakeDirectory, f"[{DS}] {top}/a", inv.dc)
    f = raises(vim.fault.FileAlreadyExists, inv.fm.MakeDirectory, f"[{DS}] {top}/a", inv.dc)
    assert f.file == f"[{DS}] {top}/a"
    raises(vim.fault.FileNotFound, inv.fm.MakeDirectory, f"[{DS}] {top}/x/y", inv.dc, False)
    call(inv.fm.MakeDirectory, f"[{DS}] {top}/x/y", inv.dc, True)
    assert names(search(inv, f"[{DS}] {top}/x")) == ["y"]


def test_datacenter_is_optional(inv, top):
    """vCenter takes the datastore's own datacenter (vcsim insists on one: InvalidArgument)."""
    call(inv.fm.MakeDirectory, f"[{DS}] {top}/nodc")
    put(inv, f"{top}/nodc/f.txt", b"x")
    call(inv.fm.CopyDatastoreFile_Task, sourceName=f"[{DS}] {top}/nodc/f.txt", sourceDatacenter=inv.dc,
         destinationName=f"[{DS}] {top}/nodc/g.txt")
    call(inv.fm.MoveDatastoreFile_Task, sourceName=f"[{DS}] {top}/nodc/g.txt",
         destinationName=f"[{DS}] {top}/nodc/h.txt")
    call(inv.fm.DeleteDatastoreFile_Task, f"[{DS}] {top}/nodc/f.txt")
    assert names(search(inv, f"[{DS}] {top}/nodc")) == ["h.txt"]


def test_move_copy_delete(inv, top):
    put(inv, f"{top}/a.txt", b"a")
    put(inv, f"{top}/b.txt", b"b")
    f = raises(vim.fault.FileAlreadyExists, inv.fm.MoveDatastoreFile_Task, sourceName=f"[{DS}] {top}/a.txt",
               sourceDatacenter=inv.dc, destinationName=f"[{DS}] {top}/b.txt", destinationDatacenter=inv.dc)
    assert f.file == f"[{DS}] {top}/b.txt"
    call(inv.fm.MoveDatastoreFile_Task, sourceName=f"[{DS}] {top}/a.txt", sourceDatacenter=inv.dc,
         destinationName=f"[{DS}] {top}/b.txt", destinationDatacenter=inv.dc, force=True)
    assert names(search(inv, f"[{DS}] {top}")) == ["b.txt"]
    call(inv.fm.MakeDirectory, f"[{DS}] {top}/sub", inv.dc)
    call(inv.fm.CopyDatastoreFile_Task, sourceName=f"[{DS}] {top}/b.txt", sourceDatacenter=inv.dc,
         destinationName=f"[{DS}] {top}/sub/c.txt", destinationDatacenter=inv.dc)
    raises(vim.fault.FileAlreadyExists, inv.fm.CopyDatastoreFile_Task, sourceName=f"[{DS}] {top}/b.txt",
           sourceDatacenter=inv.dc, destinationName=f"[{DS}] {top}/sub/c.txt", destinationDatacenter=inv.dc)
    # folders copy recursively
    call(inv.fm.CopyDatastoreFile_Task, sourceName=f"[{DS}] {top}/sub", sourceDatacenter=inv.dc,
         destinationName=f"[{DS}] {top}/sub2", destinationDatacenter=inv.dc)
    assert names(search(inv, f"[{DS}] {top}/sub2")) == ["c.txt"]
    call(inv.fm.DeleteDatastoreFile_Task, f"[{DS}] {top}/sub2", inv.dc)
    f = raises(vim.fault.FileNotFound, inv.fm.DeleteDatastoreFile_Task, f"[{DS}] {top}/sub2", inv.dc)
    assert f.file == f"[{DS}] {top}/sub2"
    f = raises(vim.fault.FileNotFound, inv.fm.MoveDatastoreFile_Task, sourceName=f"[{DS}] {top}/nope",
               sourceDatacenter=inv.dc, destinationName=f"[{DS}] {top}/nope2", destinationDatacenter=inv.dc)
    assert f.file == f"[{DS}] {top}/nope"


def test_unknown_datastore_and_malformed_path(inv):
    f = raises(vim.fault.InvalidDatastore, inv.fm.MakeDirectory, "[no-such-ds] x", inv.dc)
    assert "no-such-ds" in (f.name or f.msg)
    raises(vim.fault.InvalidDatastore, inv.fm.DeleteDatastoreFile_Task, "[no-such-ds] x", inv.dc)
    raises(vim.fault.InvalidDatastorePath, inv.fm.MakeDirectory, "no brackets", inv.dc)


def test_task_info_names_method_and_entity(inv, top):
    """pyVmomi 9 type-checks TaskInfo.entity: a manager there (as vcsim puts it) breaks task.info."""
    task = inv.fm.DeleteDatastoreFile_Task(f"[{DS}] {top}", inv.dc)
    wait(task)
    info = task.info
    assert info.state == "success"
    assert info.descriptionId and isinstance(info.entity, vim.ManagedEntity)
    assert info.name == vim.FileManager.DeleteDatastoreFile_Task or \
        getattr(info.name, "info", None) and info.name.info.wsdlName == "DeleteDatastoreFile_Task"


# -- HostDatastoreBrowser -------------------------------------------------------------------------------------------
def test_search_without_pattern_lists_everything(inv, top):
    put(inv, f"{top}/one.txt", b"1")
    put(inv, f"{top}/two.log", b"22")
    call(inv.fm.MakeDirectory, f"[{DS}] {top}/dir", inv.dc)
    result = search(inv, f"[{DS}] {top}")
    assert names(result) == ["dir", "one.txt", "two.log"]
    assert result.folderPath.rstrip("/") == f"[{DS}] {top}"
    assert result.datastore == inv.ds


def test_search_patterns_and_details(inv, top):
    put(inv, f"{top}/a.txt", b"12345")
    put(inv, f"{top}/B.TXT", b"")
    put(inv, f"{top}/c.iso", b"iso")
    call(inv.fm.MakeDirectory, f"[{DS}] {top}/zdir", inv.dc)
    assert names(search(inv, f"[{DS}] {top}", matchPattern=["*.txt"])) == ["a.txt"]
    assert names(search(inv, f"[{DS}] {top}", matchPattern=["*.txt"], searchCaseInsensitive=True)) == \
        ["B.TXT", "a.txt"]
    assert names(search(inv, f"[{DS}] {top}", matchPattern=["a.*", "c.*"])) == ["a.txt", "c.iso"]
    details = B.FileInfo.Details(fileType=True, fileSize=True, modification=True, fileOwner=True)
    result = search(inv, f"[{DS}] {top}", details=details, sortFoldersFirst=True)
    assert result.file[0].path == "zdir" and isinstance(result.file[0], B.FolderInfo)
    by_name = {f.path: f for f in result.file}
    assert by_name["a.txt"].fileSize == 5 and by_name["a.txt"].modification is not None
    assert isinstance(by_name["c.iso"], B.IsoImageInfo)
    # queries select file types
    result = search(inv, f"[{DS}] {top}", query=[B.FolderQuery()])
    assert names(result) == ["zdir"] and isinstance(result.file[0], B.FolderInfo)
    assert names(search(inv, f"[{DS}] {top}", query=[B.IsoImageQuery()])) == ["c.iso"]
    assert names(search(inv, f"[{DS}] {top}", query=[B.IsoImageQuery(), B.FolderQuery()])) == ["c.iso", "zdir"]


def test_search_missing_folder(inv, top):
    f = raises(vim.fault.FileNotFound, inv.ds.browser.SearchDatastore_Task, f"[{DS}] {top}/nope")
    assert f.file.startswith(f"[{DS}] {top}/nope")


def test_search_sub_folders(inv, top):
    call(inv.fm.MakeDirectory, f"[{DS}] {top}/a/b", inv.dc, True)
    put(inv, f"{top}/a/b/deep.txt", b"d")
    put(inv, f"{top}/a/mid.txt", b"m")
    results = call(inv.ds.browser.SearchDatastoreSubFolders_Task, f"[{DS}] {top}",
                   B.SearchSpec(matchPattern=["*.txt"]))
    by_path = {r.folderPath.rstrip("/"): names(r) for r in results}
    # "[ds] dir" with a space, as ESX writes it (vcsim: "[ds]/dir")
    assert by_path == {f"[{DS}] {top}": [], f"[{DS}] {top}/a": ["mid.txt"], f"[{DS}] {top}/a/b": ["deep.txt"]}
