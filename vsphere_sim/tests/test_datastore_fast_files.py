"""The direct file paths of a VM's life cycle (swap made in place, own files unlinked after one folder lookup, an
empty folder removed in one rmdir) leave the datastore as write_file / delete did."""
from __future__ import annotations

import os

import pytest
from pyVmomi import vim

from vsphere_sim import Simulator
from vsphere_sim.tests.test_datastore_fs import DS, VSAN, ensure_datastores


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    s = Simulator(tmp_path_factory.mktemp("fastfiles"))
    ensure_datastores(s)
    yield s
    s.close()


@pytest.fixture
def fs(sim):
    with sim.lock:
        yield sim.datastores


def test_create_empty_makes_or_empties_a_file(fs):
    fs.make_dir(f"[{DS}] sw")
    fs.create_empty(f"[{DS}] sw/a.vswp")
    assert fs.read_file(f"[{DS}] sw/a.vswp") == b""
    fs.write_file(f"[{DS}] sw/b.vswp", b"old")
    fs.create_empty(f"[{DS}] sw/b.vswp")
    assert fs.read_file(f"[{DS}] sw/b.vswp") == b""
    # a symlink is replaced by the file, as write_file's rename does; a folder is refused as by write_file
    os.symlink("/etc/hostname", fs.local(f"[{DS}] sw/c.vswp"))
    fs.create_empty(f"[{DS}] sw/c.vswp")
    assert not fs.local(f"[{DS}] sw/c.vswp").is_symlink() and fs.read_file(f"[{DS}] sw/c.vswp") == b""
    fs.make_dir(f"[{DS}] sw/d.vswp")
    with pytest.raises(vim.fault.NotAFile):
        fs.create_empty(f"[{DS}] sw/d.vswp")
    with pytest.raises(vim.fault.FileNotFound):
        fs.create_empty(f"[{DS}] nowhere/e.vswp")
    assert fs.list_dir(f"[{DS}] sw") == ["a.vswp", "b.vswp", "c.vswp", "d.vswp"]
    fs.delete(f"[{DS}] sw")


def test_remove_files_and_empty_dir(fs):
    fs.make_dir(f"[{DS}] rm")
    for name in ("a.vmx", "a.nvram", "vmware.log"):
        fs.write_file(f"[{DS}] rm/{name}", b"x")
    fs.make_dir(f"[{DS}] rm/a.vmsd")  # not a plain file: goes through delete(), as before
    fs.write_file(f"[{DS}] rm/other", b"x")
    fs.remove_files(f"[{DS}] rm", ["a.vmx", "a.nvram", "vmware.log", "a.vmsd", "gone.vswp", "../rm2"])
    assert fs.list_dir(f"[{DS}] rm") == ["other"]
    assert not fs.remove_empty_dir(f"[{DS}] rm")  # not empty: nothing done
    assert fs.exists(f"[{DS}] rm/other")
    fs.remove_files(f"[{DS}] rm", ["other"])
    assert fs.remove_empty_dir(f"[{DS}] rm")
    assert not fs.exists(f"[{DS}] rm")
    assert not fs.remove_empty_dir(f"[{DS}]") and not fs.remove_empty_dir(f"[{DS}] rm")
    fs.remove_files(f"[{DS}] rm", ["a.vmx"])  # a folder that is gone: nothing to do


def test_remove_files_leaves_a_symlinked_folder_alone(fs):
    fs.make_dir(f"[{DS}] real")
    fs.write_file(f"[{DS}] real/a.vmx", b"x")
    os.symlink("real", fs.local(f"[{DS}] link"))
    fs.remove_files(f"[{DS}] link", ["a.vmx"])
    assert fs.exists(f"[{DS}] real/a.vmx")  # local() refuses a symlink on the way, so delete() never reached it
    assert not fs.remove_empty_dir(f"[{DS}] link")
    fs.delete(f"[{DS}] link")
    fs.delete(f"[{DS}] real")


def test_vsan_namespace_folder_goes_through_delete(fs):
    home = fs.create_vm_home(f"[{VSAN}]", "fastvm").parent
    assert not fs.remove_empty_dir(str(home))  # a namespace goes with its friendly name: delete() does that
    fs.create_empty(str(home.join("x.vswp")))
    fs.remove_files(str(home), ["x.vswp"])
    assert fs.list_dir(str(home)) == []
    fs.delete(str(home))
