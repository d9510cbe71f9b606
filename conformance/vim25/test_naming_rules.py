"""The naming rules vSphere enforces on VMs (DESIGN-DECISIONS §2), each with its exact fault class and fields.

- display names over 80 characters → vmodl.fault.InvalidArgument(invalidProperty="name"), on CreateVM_Task,
  ReconfigVM_Task and Rename_Task alike; 80 is fine;
- no name → InvalidVmConfig(configSpec.name); no vmPathName → InvalidVmConfig(configSpec.files.vmPathName);
- a second VM of one name in one folder → vim.fault.DuplicateName(name, object=the folder), on all three;
- `%`, `/` and `\\` in a name are stored escaped (`%25`, `%2f`, `%5c`);
- an unknown datastore → InvalidDatastore (the server keeps serving); a malformed path → InvalidDatastorePath;
- a ReconfigVM_Task with a stale changeVersion → ConcurrentAccess.
Black-box: pyVmomi only. VSPHERE_DATACENTER / VSPHERE_DATASTORE pick the targets on a real vCenter.
"""
from __future__ import annotations

import uuid

import pytest
from pyVmomi import vim, vmodl

from .helpers import datacenter, raises, resource_pool, unique, vmfs_datastore, wait
from .helpers import walk as _walk


@pytest.fixture(scope="module")
def env(si):
    content = si.RetrieveContent()
    dc = datacenter(si)
    ds = vmfs_datastore(dc)
    folder = dc.vmFolder.CreateFolder(f"vsim-naming-{uuid.uuid4().hex[:8]}")
    ns = type("Env", (), {})()
    ns.dc, ns.ds, ns.pool, ns.folder, ns.content = dc, ds.name, resource_pool(dc), folder, content
    yield ns
    for vm in _walk(folder):
        if isinstance(vm, vim.VirtualMachine) and vm.runtime.powerState == "poweredOn":
            wait(vm.PowerOffVM_Task())
    wait(folder.Destroy_Task())  # a folder's Destroy_Task destroys the VMs in it



def spec(env, name, path=None):
    return vim.vm.ConfigSpec(name=name, guestId="otherGuest64", numCPUs=1, memoryMB=64,
                             files=vim.vm.FileInfo(vmPathName=path if path is not None else f"[{env.ds}]"))


def create(env, name, path=None):
    return wait(env.folder.CreateVM_Task(config=spec(env, name, path), pool=env.pool))



# -- length -----------------------------------------------------------------------------------------------------------
def test_create_with_81_characters_is_invalid_argument(env):
    fault = raises(vmodl.fault.InvalidArgument, env.folder.CreateVM_Task, config=spec(env, "a" * 81), pool=env.pool)
    assert fault.invalidProperty == "name"
    assert not [c for c in env.folder.childEntity if c.name == "a" * 81]


def test_create_with_80_characters_is_fine(env):
    name = unique("x").ljust(80, "x")
    vm = create(env, name)
    assert vm.name == name and vm.config.name == name and vm.summary.config.name == name


def test_reconfigure_to_81_characters_is_invalid_argument(env):
    vm = create(env, unique())
    fault = raises(vmodl.fault.InvalidArgument, vm.ReconfigVM_Task, spec=vim.vm.ConfigSpec(name="b" * 81))
    assert fault.invalidProperty == "name"


def test_rename_to_81_characters_is_invalid_argument(env):
    vm = create(env, unique())
    before = vm.name
    fault = raises(vmodl.fault.InvalidArgument, vm.Rename_Task, newName="c" * 81)
    assert fault.invalidProperty == "name"
    assert vm.name == before == vm.config.name


# -- empty names and paths ------------------------------------------------------------------------------------------
def test_create_without_name_is_invalid_vm_config(env):
    fault = raises(vim.fault.InvalidVmConfig, env.folder.CreateVM_Task, config=spec(env, ""), pool=env.pool)
    assert fault.property == "configSpec.name"


def test_create_without_vm_path_is_invalid_vm_config(env):
    config = spec(env, unique())
    config.files = None
    fault = raises(vim.fault.InvalidVmConfig, env.folder.CreateVM_Task, config=config, pool=env.pool)
    assert fault.property == "configSpec.files.vmPathName"


def test_rename_to_empty_is_invalid_name(env):
    vm = create(env, unique())
    fault = raises(vim.fault.InvalidName, vm.Rename_Task, newName="")
    assert fault.name == ""


# -- duplicates -------------------------------------------------------------------------------------------------------
def test_create_with_a_sibling_name_is_duplicate_name(env):
    name = unique("dup")
    create(env, name)
    fault = raises(vim.fault.DuplicateName, env.folder.CreateVM_Task,
                   config=spec(env, name, f"[{env.ds}] {unique('other')}/{name}.vmx"), pool=env.pool)
    assert fault.name == name
    assert fault.object == env.folder
    assert len([c for c in env.folder.childEntity if c.name == name]) == 1


def test_reconfigure_to_a_sibling_name_is_duplicate_name(env):
    first, second = unique("r1"), unique("r2")
    create(env, first)
    vm = create(env, second)
    fault = raises(vim.fault.DuplicateName, vm.ReconfigVM_Task, spec=vim.vm.ConfigSpec(name=first))
    assert fault.name == first and fault.object == env.folder
    assert vm.name == second == vm.config.name


def test_rename_to_a_sibling_name_is_duplicate_name(env):
    first, second = unique("m1"), unique("m2")
    create(env, first)
    vm = create(env, second)
    fault = raises(vim.fault.DuplicateName, vm.Rename_Task, newName=first)
    assert fault.name == first and fault.object == env.folder
    assert vm.name == second


def test_the_same_name_in_another_folder_is_fine(env):
    name = unique("same")
    create(env, name)
    other = env.folder.CreateFolder(unique("sub"))
    try:
        vm = wait(other.CreateVM_Task(config=spec(env, name, f"[{env.ds}] {unique('d')}/{name}.vmx"),
                                      pool=env.pool))
        assert vm.name == name
        wait(vm.Destroy_Task())
    finally:
        wait(other.Destroy_Task())


def test_create_folder_with_a_sibling_name_is_duplicate_name(env):
    name = unique("f")
    env.folder.CreateFolder(name)
    with pytest.raises(vim.fault.DuplicateName) as info:
        env.folder.CreateFolder(name)
    assert info.value.name == name and info.value.object == env.folder


# -- escaping ---------------------------------------------------------------------------------------------------------
def test_special_characters_are_escaped(env):
    tag = uuid.uuid4().hex[:8]
    vm = create(env, f"a/b%c\\d-{tag}")
    assert vm.name == f"a%2fb%25c%5cd-{tag}"
    assert vm.config.name == vm.name == vm.summary.config.name
    assert f"a%2fb%25c%5cd-{tag}" in vm.config.files.vmPathName


def test_rename_keeps_every_name_in_step(env):
    vm = create(env, unique("old"))
    new = unique("new")
    wait(vm.Rename_Task(newName=new))
    assert vm.name == new and vm.config.name == new and vm.summary.config.name == new


# -- datastores and paths ---------------------------------------------------------------------------------------------
def test_unknown_datastore_is_invalid_datastore(env, si):
    name = unique()
    raises(vim.fault.InvalidDatastore, env.folder.CreateVM_Task,
           config=spec(env, name, "[no-such-datastore-x] z/z.vmx"), pool=env.pool)
    si.CurrentTime()  # the server is still serving
    assert not [c for c in env.folder.childEntity if c.name == name]


@pytest.mark.parametrize("path", ["no brackets", "[] x/x.vmx", "[unclosed x.vmx"])
def test_malformed_path_is_invalid_datastore_path(env, path):
    fault = raises(vim.fault.InvalidDatastorePath, env.folder.CreateVM_Task, config=spec(env, unique(), path),
                   pool=env.pool)
    assert fault.datastorePath == path


def test_a_second_vm_in_the_same_file_is_file_already_exists(env):
    name = unique("f")
    path = f"[{env.ds}] {name}/{name}.vmx"
    create(env, name, path)
    raises(vim.fault.FileAlreadyExists, env.folder.CreateVM_Task, config=spec(env, unique("g"), path), pool=env.pool)


# -- changeVersion ----------------------------------------------------------------------------------------------------
def test_stale_change_version_is_concurrent_access(env):
    vm = create(env, unique("cv"))
    stale = vm.config.changeVersion
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="first", changeVersion=stale)))
    assert vm.config.changeVersion != stale
    raises(vim.fault.ConcurrentAccess, vm.ReconfigVM_Task,
           spec=vim.vm.ConfigSpec(annotation="second", changeVersion=stale))
    assert vm.config.annotation == "first"
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="third", changeVersion=vm.config.changeVersion)))
    assert vm.config.annotation == "third"
