"""vSAN folder naming (DESIGN-DECISIONS §2): top-level folders are namespaces.

- FileManager.MakeDirectory at the top level → CannotCreateFile; DatastoreNamespaceManager.CreateDirectory makes them
  (again → FileAlreadyExists; on other datastores → CannotCreateFile) and returns the UUID path.
- CreateVM_Task with `"[vsanDatastore]"` creates the namespace named after the VM and shows its UUID in vmPathName; a VM
  created into a top-level folder named otherwise → InvalidDatastorePath naming both.
Black-box; VSPHERE_VSAN_DATASTORE names the vSAN datastore (default vsanDatastore); skipped where there is none.
"""
from __future__ import annotations

import importlib.util
import re
import uuid
from types import SimpleNamespace

import pytest
from pyVmomi import vim, vmodl

from .helpers import DS, VSAN, call, datacenter, raises

B = vim.host.DatastoreBrowser
NS_UUID_PATH = r"/vmfs/volumes/vsan:[0-9a-f]{16}-[0-9a-f]{16}/([0-9a-f-]{36})"



@pytest.fixture(scope="module")
def inv(vsphere, si):
    content = si.RetrieveContent()
    dc = datacenter(si)
    stores = {d.name: d for d in dc.datastore}
    if VSAN not in stores:
        pytest.skip(f"no vSAN datastore {VSAN} in {dc.name}")
    return SimpleNamespace(dc=dc, vsan=stores[VSAN], vmfs=stores.get(DS), fm=content.fileManager,
                           nsm=content.datastoreNamespaceManager, vsphere=vsphere)


@pytest.fixture
def namespace(inv):
    """A new namespace: (friendly name, UUID path); deleted afterwards."""
    name = f"ns-{uuid.uuid4().hex[:8]}"
    path = call(inv.nsm.CreateDirectory, inv.vsan, name)
    yield name, path
    try:
        call(inv.nsm.DeleteDirectory, datacenter=inv.dc, datastorePath=path)
    except vim.fault.FileNotFound:
        pass


def listing(inv, path, **spec):
    return call(inv.vsan.browser.SearchDatastore_Task, path, B.SearchSpec(**spec))


def test_vsan_datastore_properties(inv):
    assert inv.vsan.summary.type == "vsan"
    assert inv.vsan.summary.url.startswith("ds:///vmfs/volumes/vsan:")
    assert inv.vsan.capability.topLevelDirectoryCreateSupported is False
    assert isinstance(inv.vsan.info, vim.host.VsanDatastoreInfo)


def test_make_directory_at_top_level_is_refused(inv):
    name = f"mk-{uuid.uuid4().hex[:8]}"
    f = raises(vim.fault.CannotCreateFile, inv.fm.MakeDirectory, f"[{VSAN}] {name}", inv.dc)
    assert f.file == f"[{VSAN}] {name}"
    f = raises(vim.fault.CannotCreateFile, inv.fm.MakeDirectory, f"[{VSAN}] {name}/sub", inv.dc, True)
    assert f.file.startswith(f"[{VSAN}] {name}")


def test_create_directory(inv, namespace):
    name, path = namespace
    m = re.fullmatch(NS_UUID_PATH, path)
    assert m, path
    assert path.startswith("/vmfs/volumes/" + inv.vsan.summary.url.split("/vmfs/volumes/")[1].rstrip("/"))
    ns_uuid = m.group(1)
    # the namespace is reachable by friendly name and by UUID; below it MakeDirectory works
    call(inv.fm.MakeDirectory, f"[{VSAN}] {name}/sub", inv.dc)
    assert [f.path for f in listing(inv, f"[{VSAN}] {ns_uuid}").file] == ["sub"]
    assert [f.path for f in listing(inv, f"[{VSAN}] /{ns_uuid}").file] == ["sub"]  # VIC's form
    # the root lists the namespace by UUID, with its friendly name
    root = listing(inv, f"[{VSAN}]", matchPattern=[ns_uuid])
    assert [(f.path, f.friendlyName) for f in root.file] == [(ns_uuid, name)]


def test_create_directory_twice(inv, namespace):
    name, _ = namespace
    f = raises(vim.fault.FileAlreadyExists, inv.nsm.CreateDirectory, inv.vsan, name)
    assert name in f.file
    # MakeDirectory on an existing namespace: FileAlreadyExists (VIC tolerates exactly this)
    raises(vim.fault.FileAlreadyExists, inv.fm.MakeDirectory, f"[{VSAN}] {name}", inv.dc)


def test_create_directory_elsewhere_is_refused(inv):
    if inv.vmfs is None:
        pytest.skip(f"no datastore {DS}")
    f = raises(vim.fault.CannotCreateFile, inv.nsm.CreateDirectory, inv.vmfs, f"x-{uuid.uuid4().hex[:8]}")
    if inv.vsphere.is_sim:
        assert f.msg == "Datastore not supported for directory creation by DatastoreNamespaceManager"


def test_convert_namespace_path(inv, namespace):
    name, path = namespace
    ns_uuid = re.fullmatch(NS_UUID_PATH, path).group(1)
    volume = inv.vsan.summary.url  # ds:///vmfs/volumes/vsan:<uuid>/
    converted = call(inv.nsm.ConvertNamespacePathToUuidPath, inv.dc, f"{volume}{name}/x.vmx")
    assert converted == f"{volume}{ns_uuid}/x.vmx"


def test_delete_directory(inv):
    name = f"del-{uuid.uuid4().hex[:8]}"
    path = call(inv.nsm.CreateDirectory, inv.vsan, name)
    call(inv.nsm.DeleteDirectory, datacenter=inv.dc, datastorePath=path)
    raises(vim.fault.FileNotFound, inv.nsm.DeleteDirectory, datacenter=inv.dc, datastorePath=path)
    # the friendly name is free again
    path2 = call(inv.nsm.CreateDirectory, inv.vsan, name)
    assert path2 != path
    call(inv.nsm.DeleteDirectory, datacenter=inv.dc, datastorePath=f"[{VSAN}] {name}")
    raises(vim.fault.CannotCreateFile, inv.fm.MakeDirectory, f"[{VSAN}] {name}/sub", inv.dc)


def test_file_manager_deletes_namespace(inv):
    name = f"fm-{uuid.uuid4().hex[:8]}"
    call(inv.nsm.CreateDirectory, inv.vsan, name)
    call(inv.fm.DeleteDatastoreFile_Task, f"[{VSAN}] {name}", inv.dc)
    raises(vim.fault.FileNotFound, inv.nsm.DeleteDirectory, datacenter=inv.dc, datastorePath=f"[{VSAN}] {name}")


# -- CreateVM_Task on vSAN ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pool(inv):
    if inv.vsphere.is_sim and importlib.util.find_spec("vsphere_sim.objects.virtual_machine") is None:
        pytest.skip("the sim has no VirtualMachine yet")
    compute = next((e for e in inv.dc.hostFolder.childEntity if isinstance(e, vim.ComputeResource)), None)
    if compute is None:
        pytest.skip("no compute resource")
    return compute.resourcePool


def create_vm(inv, pool, name, vm_path):
    spec = vim.vm.ConfigSpec(name=name, guestId="otherGuest64", numCPUs=1, memoryMB=64,
                             files=vim.vm.FileInfo(vmPathName=vm_path))
    return call(inv.dc.vmFolder.CreateVM_Task, config=spec, pool=pool)


def destroy(vm):
    try:
        call(vm.Destroy_Task)
    except vmodl.fault.ManagedObjectNotFound:
        pass


def test_create_vm_into_datastore_root_makes_namespace(inv, pool):
    name = f"vsanvm-{uuid.uuid4().hex[:8]}"
    vm = create_vm(inv, pool, name, f"[{VSAN}]")
    try:
        vm_path = vm.config.files.vmPathName
        m = re.fullmatch(rf"\[{VSAN}\] ([0-9a-f-]{{36}})/{name}\.vmx", vm_path)
        assert m, vm_path  # the namespace's UUID, as real vSAN (and vcsim 0.52) show it
        root = listing(inv, f"[{VSAN}]", matchPattern=[m.group(1)])
        assert [f.friendlyName for f in root.file] == [name]
    finally:
        destroy(vm)


def test_create_vm_into_existing_namespace(inv, pool):
    """VIC: CreateDirectory(<id>) first, then CreateVM_Task with "[vsanDatastore]" and display name <id>."""
    name = f"vsanvm-{uuid.uuid4().hex[:8]}"
    path = call(inv.nsm.CreateDirectory, inv.vsan, name)
    ns_uuid = re.fullmatch(NS_UUID_PATH, path).group(1)
    vm = create_vm(inv, pool, name, f"[{VSAN}]")
    try:
        assert vm.config.files.vmPathName == f"[{VSAN}] {ns_uuid}/{name}.vmx"
    finally:
        destroy(vm)


def test_create_vm_into_folder_named_otherwise_is_refused(inv, pool, namespace):
    folder, _ = namespace
    name = f"vsanvm-{uuid.uuid4().hex[:8]}"
    path = f"[{VSAN}] {folder}/{name}.vmx"
    f = raises(vim.fault.InvalidDatastorePath, create_vm, inv, pool, name, path)
    assert f.datastorePath == path
    assert folder in f.msg and name in f.msg


def test_create_vm_with_explicit_matching_folder(inv, pool):
    name = f"vsanvm-{uuid.uuid4().hex[:8]}"
    vm = create_vm(inv, pool, name, f"[{VSAN}] {name}/{name}.vmx")
    try:
        assert vm.config.files.vmPathName == f"[{VSAN}] {name}/{name}.vmx"
    finally:
        destroy(vm)
