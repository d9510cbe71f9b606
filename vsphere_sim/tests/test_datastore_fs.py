"""DatastoreFS in-process: paths, vSAN namespaces, VM homes, files, virtual disks and their chains, persistence."""
from __future__ import annotations

import os
import re

import pytest
from pyVmomi import vim, vmodl

from vsphere_sim import Simulator
from vsphere_sim.datastore_fs import DatastorePath

DS, VSAN = "LocalDS_0", "vsanDatastore"


def ensure_datastores(sim):
    """The default inventory's LocalDS_0 and vsanDatastore (added here to a sim started without one)."""
    with sim.lock:
        names = {ds.name for ds in sim.registry.of_type(vim.Datastore)}
        if {DS, VSAN} <= names:
            return
        dcs = sim.registry.of_type(vim.Datacenter)
        dc = dcs[0] if dcs else sim.registry.get(sim.call(sim.root_folder().ref, "CreateDatacenter", name="DC0"))
        hosts = [h for h in sim.registry.of_type(vim.HostSystem) if h.datacenter() is dc]
        for name, kind in ((DS, "VMFS"), (VSAN, "vsan")):
            if name not in names:
                sim.datastores.add_datastore(dc, name, kind=kind, hosts=hosts)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    s = Simulator(tmp_path_factory.mktemp("dsfs"))
    ensure_datastores(s)
    yield s
    s.close()


@pytest.fixture
def fs(sim):
    with sim.lock:
        yield sim.datastores


def fault(excinfo_type, fn, *args, **kwargs):
    with pytest.raises(excinfo_type) as info:
        fn(*args, **kwargs)
    assert type(info.value) is excinfo_type, type(info.value)
    return info.value


def no_host_path(sim, f):
    assert str(sim.workdir) not in (f.msg or "") and "types." not in (f.msg or "")


# -- paths ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,ds,path", [
    ("[LocalDS_0] a/b.vmx", "LocalDS_0", "a/b.vmx"),
    ("[LocalDS_0]", "LocalDS_0", ""),
    ("[LocalDS_0] ", "LocalDS_0", ""),
    ("[LocalDS_0]/a/b", "LocalDS_0", "a/b"),  # VIC's vSAN serial-port form
    ("[vsanDatastore] /0ea65357/x", "vsanDatastore", "0ea65357/x"),  # VIC's vSAN root form
    ("[my ds] a//b/./c/", "my ds", "a/b/c"),
    ("https://h/folder/a/b.txt?dcPath=DC0&dsName=LocalDS_0", "LocalDS_0", "a/b.txt"),
])
def test_parse(fs, text, ds, path):
    p = fs.parse(text)
    assert (p.datastore, p.path) == (ds, path)


@pytest.mark.parametrize("text", ["LocalDS_0 a", "[] a", "[LocalDS_0] a/../../etc", "[a", "", "[x] a\x00b"])
def test_parse_malformed(fs, text):
    f = fault(vim.fault.InvalidDatastorePath, fs.parse, text)
    assert f.datastorePath == text


def test_str_roundtrip(fs):
    assert str(fs.parse("[LocalDS_0]  a/b")) == "[LocalDS_0] a/b"
    assert str(fs.parse("[LocalDS_0]")) == "[LocalDS_0]"
    assert str(DatastorePath("d", "x").join("y/z")) == "[d] x/y/z"


def test_unknown_datastore(sim, fs):
    f = fault(vim.fault.InvalidDatastore, fs.local, "[nope] z")
    assert f.name == "nope" and "[nope] z" in f.msg
    no_host_path(sim, f)


def test_symlink_escape_refused(sim, fs):
    fs.make_dir("[LocalDS_0] esc")
    (fs.local("[LocalDS_0] esc") / "out").symlink_to("/etc")
    fault(vim.fault.InvalidDatastorePath, fs.read_file, "[LocalDS_0] esc/out/passwd")
    (fs.local("[LocalDS_0] esc") / "pw").symlink_to("/etc/passwd")
    fault(vim.fault.FileNotFound, fs.read_file, "[LocalDS_0] esc/pw")
    fs.copy("[LocalDS_0] esc/pw", "[LocalDS_0] esc/pw2")  # copied as a link, not as the host file
    assert fs.local("[LocalDS_0] esc/pw2").is_symlink()
    fs.delete("[LocalDS_0] esc")
    assert (sim.workdir / "datastores").exists()


# -- files ----------------------------------------------------------------------------------------------------------
def test_files(sim, fs):
    fs.make_dir("[LocalDS_0] f1/a/b", create_parents=True)
    fault(vim.fault.FileAlreadyExists, fs.make_dir, "[LocalDS_0] f1/a")
    f = fault(vim.fault.FileNotFound, fs.make_dir, "[LocalDS_0] f2/x")
    assert f.file == "[LocalDS_0] f2" and f.msg == "File [LocalDS_0] f2 was not found"
    fs.write_file("[LocalDS_0] f1/a/x.txt", b"hello")
    assert fs.read_file("[LocalDS_0] f1/a/x.txt") == b"hello"
    assert fs.list_dir("[LocalDS_0] f1/a") == ["b", "x.txt"]
    fault(vim.fault.FileNotFound, fs.write_file, "[LocalDS_0] nodir/x.txt", b"")
    fs.copy("[LocalDS_0] f1", "[LocalDS_0] f3")
    f = fault(vim.fault.FileAlreadyExists, fs.copy, "[LocalDS_0] f1", "[LocalDS_0] f3")
    assert f.file == "[LocalDS_0] f3/a/x.txt"  # a folder copy merges; only a clashing file needs force
    fs.copy("[LocalDS_0] f1", "[LocalDS_0] f3", force=True)
    fault(vim.fault.FileAlreadyExists, fs.move, "[LocalDS_0] f1/a/x.txt", "[LocalDS_0] f3/a/x.txt")
    fs.move("[LocalDS_0] f1/a/x.txt", "[LocalDS_0] f3/a/x.txt", force=True)
    assert not fs.exists("[LocalDS_0] f1/a/x.txt")
    fs.delete("[LocalDS_0] f3")
    f = fault(vim.fault.FileNotFound, fs.delete, "[LocalDS_0] f3")
    no_host_path(sim, f)
    fault(vim.fault.CannotDeleteFile, fs.delete, "[LocalDS_0]")
    fault(vim.fault.FileFault, fs.move, "[LocalDS_0] f1", "[LocalDS_0] f1/a/inner")
    fs.delete("[LocalDS_0] f1")


def test_atomic_writer_abort_leaves_nothing(fs):
    fs.make_dir("[LocalDS_0] aw")
    w = fs.open_write("[LocalDS_0] aw/big.bin")
    w.write(b"x" * 10)
    w.abort()
    assert fs.list_dir("[LocalDS_0] aw") == []
    assert list(fs.local("[LocalDS_0] aw").iterdir()) == []
    fs.delete("[LocalDS_0] aw")


def test_new_files_and_overwrites_in_place(sim, fs):
    fs.make_dir("[LocalDS_0] ow")
    fs.write_new_file("[LocalDS_0] ow/a.vmx", b"first version, long")
    fs.write_new_file("[LocalDS_0] ow/a.vmx", b"there already: replaced")  # falls back to write_file
    assert fs.read_file("[LocalDS_0] ow/a.vmx") == b"there already: replaced"
    inode = fs.local("[LocalDS_0] ow/a.vmx").stat().st_ino
    fs.overwrite_file("[LocalDS_0] ow/a.vmx", b"short")
    assert fs.read_file("[LocalDS_0] ow/a.vmx") == b"short"  # cut to the new length
    fs.overwrite_file("[LocalDS_0] ow/a.vmx", b"a longer one than before")
    assert fs.read_file("[LocalDS_0] ow/a.vmx") == b"a longer one than before"
    assert fs.local("[LocalDS_0] ow/a.vmx").stat().st_ino == inode  # in place: no temp file, no rename
    fs.overwrite_file("[LocalDS_0] ow/b.vmx", b"not there: made")
    assert fs.read_file("[LocalDS_0] ow/b.vmx") == b"not there: made"
    fault(vim.fault.FileNotFound, fs.write_new_file, "[LocalDS_0] nodir/x.vmx", b"")
    fault(vim.fault.FileNotFound, fs.overwrite_file, "[LocalDS_0] nodir/x.vmx", b"")
    assert fs.list_dir("[LocalDS_0] ow") == ["a.vmx", "b.vmx"]
    fs.delete("[LocalDS_0] ow")


# -- vSAN -----------------------------------------------------------------------------------------------------------
def test_vsan_make_dir_top_level_refused(fs):
    f = fault(vim.fault.CannotCreateFile, fs.make_dir, "[vsanDatastore] top")
    assert f.file == "[vsanDatastore] top"
    f = fault(vim.fault.CannotCreateFile, fs.make_dir, "[vsanDatastore] top/sub", True)
    assert f.file == "[vsanDatastore] top"
    fault(vim.fault.CannotCreateFile, fs.write_file, "[vsanDatastore] file.txt", b"")


def test_vsan_namespace(sim, fs):
    ds = fs.datastore(VSAN)
    ns = fs.create_namespace(ds, "ns1")
    assert re.fullmatch(r"[0-9a-f-]{36}", ns)
    assert fs.uuid_path(ds, ns) == f"/vmfs/volumes/{ds.volume_id}/{ns}"
    assert ds.volume_id.startswith("vsan:")
    f = fault(vim.fault.FileAlreadyExists, fs.create_namespace, ds, "ns1")
    assert f.file == "[vsanDatastore] ns1"
    # friendly name and UUID lead to one directory
    fs.make_dir("[vsanDatastore] ns1/sub")
    assert fs.is_dir(f"[vsanDatastore] {ns}/sub")
    assert fs.local("[vsanDatastore] ns1/sub") == fs.ds_dir(ds) / ns / "sub"
    fault(vim.fault.FileAlreadyExists, fs.make_dir, "[vsanDatastore] ns1")
    fs.make_dir("[vsanDatastore] ns1", exist_ok=True)
    # the root lists namespaces by UUID, once
    assert ns in fs.list_dir("[vsanDatastore]") and "ns1" not in fs.list_dir("[vsanDatastore]")
    # rename keeps the UUID
    fs.move("[vsanDatastore] ns1", "[vsanDatastore] ns1b")
    assert fs.namespaces(ds)["ns1b"] == ns and "ns1" not in fs.namespaces(ds)
    fs.delete("[vsanDatastore] ns1b")
    assert ns not in fs.namespaces(ds).values() and not (fs.ds_dir(ds) / ns).exists()


def test_vm_home_vmfs(fs):
    p = fs.create_vm_home("[LocalDS_0] h1/h1.vmx", "h1")
    assert str(p) == "[LocalDS_0] h1/h1.vmx" and fs.is_dir("[LocalDS_0] h1")
    assert str(fs.create_vm_home("[LocalDS_0]", "h2")) == "[LocalDS_0] h2/h2.vmx"
    assert str(fs.create_vm_home("[LocalDS_0] h3", "vm3")) == "[LocalDS_0] h3/vm3.vmx"
    assert str(fs.create_vm_home("[LocalDS_0]", "a/b")) == "[LocalDS_0] a%2fb/a%2fb.vmx"
    fs.write_file(p, b"")
    f = fault(vim.fault.FileAlreadyExists, fs.create_vm_home, "[LocalDS_0] h1/h1.vmx", "h1")
    assert f.file == "[LocalDS_0] h1/h1.vmx"
    fault(vim.fault.InvalidDatastore, fs.create_vm_home, "[nope] z", "z")
    for d in ("h1", "h2", "h3", "a%2fb"):
        fs.delete(f"[LocalDS_0] {d}")


def test_vm_home_vsan(fs):
    ds = fs.datastore(VSAN)
    p = fs.create_vm_home("[vsanDatastore]", "v1")
    ns = fs.namespaces(ds)["v1"]
    assert str(p) == f"[vsanDatastore] {ns}/v1.vmx"  # vmPathName shows the UUID, as on real vSAN
    # an existing namespace named after the VM is used (VIC creates it first with CreateDirectory)
    fs.create_namespace(ds, "v2")
    ns2 = fs.namespaces(ds)["v2"]
    assert str(fs.create_vm_home("[vsanDatastore]", "v2")) == f"[vsanDatastore] {ns2}/v2.vmx"
    # explicit friendly path: kept as given, namespace created implicitly
    assert str(fs.create_vm_home("[vsanDatastore] v3/v3.vmx", "v3")) == "[vsanDatastore] v3/v3.vmx"
    assert "v3" in fs.namespaces(ds)
    # the top-level folder must be named after the VM
    f = fault(vim.fault.InvalidDatastorePath, fs.create_vm_home, "[vsanDatastore] other/v4.vmx", "v4")
    assert f.datastorePath == "[vsanDatastore] other/v4.vmx" and "'other'" in f.msg and "'v4'" in f.msg
    assert "other" not in fs.namespaces(ds)
    f = fault(vim.fault.InvalidDatastorePath, fs.create_vm_home, "[vsanDatastore] v3/v5.vmx", "v5")
    assert "'v3'" in f.msg and "'v5'" in f.msg
    fault(vim.fault.InvalidDatastorePath, fs.create_vm_home, "[vsanDatastore] v6.vmx", "v6")
    # by UUID: the namespace's friendly name counts
    assert str(fs.create_vm_home(f"[vsanDatastore] {ns}/x/v1.vmx", "v1")) == f"[vsanDatastore] {ns}/x/v1.vmx"
    fs.write_file(p, b"")
    fault(vim.fault.FileAlreadyExists, fs.create_vm_home, "[vsanDatastore]", "v1")
    for name in ("v1", "v2", "v3"):
        fs.delete(f"[vsanDatastore] {name}")


# -- disks ----------------------------------------------------------------------------------------------------------
def test_disk_format(fs):
    fs.make_dir("[LocalDS_0] d1")
    info = fs.create_disk("[LocalDS_0] d1/base.vmdk", 4096)
    assert info.capacity_kb == 4096 and info.parent is None and info.data_path.is_dir()
    assert info.data_path.name == "base-flat.vmdk"
    text = fs.read_file("[LocalDS_0] d1/base.vmdk").decode()
    assert text.startswith("# Disk DescriptorFile\nversion=1\n")
    assert 'createType="monolithicFlat"' in text and "parentCID=ffffffff" in text
    assert 'RW 8192 FLAT "base-flat.vmdk" 0' in text
    assert re.search(r'ddb\.uuid = "([0-9a-f]{2} ){7}[0-9a-f]{2}-([0-9a-f]{2} ){7}[0-9a-f]{2}"', text)
    assert fs.list_dir("[LocalDS_0] d1") == ["base.vmdk"]  # the data is never listed
    fault(vim.fault.FileAlreadyExists, fs.create_disk, "[LocalDS_0] d1/base.vmdk", 1)
    fault(vmodl.fault.InvalidArgument, fs.create_disk, "[LocalDS_0] d1/base.txt", 1)
    fault(vim.fault.FileNotFound, fs.create_disk, "[LocalDS_0] nope/x.vmdk", 1)
    fault(vim.fault.CannotCreateFile, fs.create_disk, "[vsanDatastore] x.vmdk", 1)
    fs.extend_disk("[LocalDS_0] d1/base.vmdk", 8192)
    assert fs.disk_info("[LocalDS_0] d1/base.vmdk").capacity_kb == 8192
    fault(vmodl.fault.InvalidArgument, fs.extend_disk, "[LocalDS_0] d1/base.vmdk", 1)
    fs.write_file("[LocalDS_0] d1/not.vmdk", b"garbage")
    f = fault(vim.fault.FileFault, fs.disk_info, "[LocalDS_0] d1/not.vmdk")
    assert "not a virtual disk" in f.msg
    fs.delete("[LocalDS_0] d1")


def test_disk_chain_and_locking(fs):
    fs.make_dir("[LocalDS_0] images/base", create_parents=True)
    fs.make_dir("[LocalDS_0] images/l1", create_parents=True)
    fs.make_dir("[LocalDS_0] c1")
    base = fs.create_disk("[LocalDS_0] images/base/base.vmdk", 2048)
    l1 = fs.create_disk("[LocalDS_0] images/l1/l1.vmdk", 0, parent=fs.parse("[LocalDS_0] images/base/base.vmdk"))
    c1 = fs.create_disk("[LocalDS_0] c1/c1.vmdk", None, parent="[LocalDS_0] images/l1/l1.vmdk")
    assert l1.capacity_kb == 2048 and c1.capacity_kb == 2048
    assert fs.disk_chain("[LocalDS_0] c1/c1.vmdk") == [base.data_path, l1.data_path, c1.data_path]
    text = fs.read_file("[LocalDS_0] c1/c1.vmdk").decode()
    assert 'createType="vmfsSparse"' in text
    ds = fs.datastore(DS)
    assert f'parentFileNameHint="/vmfs/volumes/{ds.volume_id}/images/l1/l1.vmdk"' in text
    assert f"parentCID={l1.cid}" in text
    assert fs.disk_info("[LocalDS_0] c1/c1.vmdk").parent == fs.parse("[LocalDS_0] images/l1/l1.vmdk")
    # a parent with a child is locked, through VirtualDiskManager and FileManager alike
    f = fault(vim.fault.FileLocked, fs.delete_disk, "[LocalDS_0] images/l1/l1.vmdk")
    assert f.file == "[LocalDS_0] images/l1/l1.vmdk" and "[LocalDS_0] c1/c1.vmdk" in f.msg
    fault(vim.fault.FileLocked, fs.delete, "[LocalDS_0] images/base/base.vmdk")
    # the index survives a scan from scratch (as after a restart)
    fs.disks.drop_index()
    fault(vim.fault.FileLocked, fs.delete_disk, "[LocalDS_0] images/l1/l1.vmdk")
    fs.delete_disk("[LocalDS_0] c1/c1.vmdk")
    assert not c1.data_path.exists() and not c1.descriptor_path.exists()
    fs.delete("[LocalDS_0] images/l1/l1.vmdk")  # FileManager-style delete takes the data along
    assert not l1.data_path.exists()
    fs.delete_disk("[LocalDS_0] images/base/base.vmdk")
    fs.delete("[LocalDS_0] images")
    fs.delete("[LocalDS_0] c1")


def test_same_folder_child_hint_and_move(fs):
    fs.make_dir("[LocalDS_0] m1")
    fs.make_dir("[LocalDS_0] m2")
    fs.create_disk("[LocalDS_0] m1/p.vmdk", 1024)
    fs.create_disk("[LocalDS_0] m1/c.vmdk", 0, parent="[LocalDS_0] m1/p.vmdk")
    assert 'parentFileNameHint="p.vmdk"' in fs.read_file("[LocalDS_0] m1/c.vmdk").decode()
    (fs.disk_info("[LocalDS_0] m1/c.vmdk").data_path / "f").write_text("x")
    fs.move("[LocalDS_0] m1/c.vmdk", "[LocalDS_0] m2/moved.vmdk")
    moved = fs.disk_info("[LocalDS_0] m2/moved.vmdk")
    assert moved.parent == fs.parse("[LocalDS_0] m1/p.vmdk")  # the hint was rewritten for the new folder
    assert moved.data_path.name == "moved-flat.vmdk" and (moved.data_path / "f").read_text() == "x"
    assert fs.list_dir("[LocalDS_0] m1") == ["p.vmdk"]
    fs.delete("[LocalDS_0] m2")
    fs.delete("[LocalDS_0] m1")


def test_parent_index_kept_in_step_without_rescans(fs, monkeypatch):
    """Deleting, moving and copying folders updates the disk-parent index for what changed only: no scan of every
    datastore after the first, and the locks stay right (as a scan from scratch would find them)."""
    for folder in ("ix/base", "ix/a", "ix/b"):
        fs.make_dir(f"[LocalDS_0] {folder}", create_parents=True)
    fs.create_disk("[LocalDS_0] ix/base/p.vmdk", 1024)
    fs.create_disk("[LocalDS_0] ix/a/c.vmdk", 0, parent="[LocalDS_0] ix/base/p.vmdk")
    fault(vim.fault.FileLocked, fs.delete_disk, "[LocalDS_0] ix/base/p.vmdk")  # the index is built now
    scans = []
    real_index_tree = fs.disks._index_tree
    monkeypatch.setattr(fs.disks, "_index_tree", lambda root: (scans.append(root), real_index_tree(root))[1])
    fs.move("[LocalDS_0] ix/a", "[LocalDS_0] ix/a2")
    f = fault(vim.fault.FileLocked, fs.delete_disk, "[LocalDS_0] ix/base/p.vmdk")
    assert "[LocalDS_0] ix/a2/c.vmdk" in f.msg
    fs.copy("[LocalDS_0] ix/a2", "[LocalDS_0] ix/b/copy")
    fs.delete("[LocalDS_0] ix/a2")
    f = fault(vim.fault.FileLocked, fs.delete_disk, "[LocalDS_0] ix/base/p.vmdk")
    assert "[LocalDS_0] ix/b/copy/c.vmdk" in f.msg
    fs.delete("[LocalDS_0] ix/b")  # a VM's folder going: only its entries leave the index
    assert fs.disks._children is not None
    ds = fs.datastore(VSAN)
    fs.create_namespace(ds, "ix-ns")
    fs.create_disk("[vsanDatastore] ix-ns/c.vmdk", 0, parent="[LocalDS_0] ix/base/p.vmdk")
    fault(vim.fault.FileLocked, fs.delete_disk, "[LocalDS_0] ix/base/p.vmdk")
    fs.delete("[vsanDatastore] ix-ns")  # a vSAN namespace (the UUID directory and its friendly name)
    assert fs.disks._children is not None
    fs.delete_disk("[LocalDS_0] ix/base/p.vmdk")
    # only the trees that changed were scanned, never a datastore's root
    assert scans and all("ix" in root.parts for root in scans)
    fs.delete("[LocalDS_0] ix")


def test_copy_disk_consolidates_chain(fs):
    fs.make_dir("[LocalDS_0] cp")
    base = fs.create_disk("[LocalDS_0] cp/base.vmdk", 1024)
    (base.data_path / "etc").mkdir()
    (base.data_path / "etc/a").write_text("base")
    (base.data_path / "etc/gone").write_text("base")
    child = fs.create_disk("[LocalDS_0] cp/child.vmdk", 0, parent="[LocalDS_0] cp/base.vmdk")
    (child.data_path / "etc").mkdir()
    (child.data_path / "etc/a").write_text("child")
    try:
        import os
        os.mknod(child.data_path / "etc/gone", 0o600 | 0o020000, 0)  # an overlay whiteout
        whiteout = True
    except OSError:
        whiteout = False
    copy = fs.copy_disk("[LocalDS_0] cp/child.vmdk", "[LocalDS_0] cp/flat.vmdk")
    assert copy.parent is None and copy.capacity_kb == 1024
    assert (copy.data_path / "etc/a").read_text() == "child"
    if whiteout:
        assert not (copy.data_path / "etc/gone").exists()
    fault(vim.fault.FileAlreadyExists, fs.copy_disk, "[LocalDS_0] cp/child.vmdk", "[LocalDS_0] cp/flat.vmdk")
    fs.delete("[LocalDS_0] cp")


def test_formatted_disk(fs):
    import shutil
    fs.make_dir("[LocalDS_0] vol")
    info = fs.create_disk("[LocalDS_0] vol/v.vmdk", 8 * 1024, formatted="ext4", label="0123456789abcdef")
    assert info.data_path.is_file() and info.data_path.stat().st_size == 8 * 1024 * 1024
    assert info.data_path.stat().st_blocks * 512 < 8 * 1024 * 1024  # sparse
    assert fs.disk_info("[LocalDS_0] vol/v.vmdk").formatted == "ext4"
    if shutil.which("dumpe2fs") or shutil.which("dumpe2fs", path="/sbin:/usr/sbin"):
        import subprocess
        out = subprocess.run([shutil.which("dumpe2fs", path="/sbin:/usr/sbin:/usr/bin"), "-h", str(info.data_path)],
                             capture_output=True, text=True).stdout
        assert "0123456789abcdef" in out
    fs.extend_disk("[LocalDS_0] vol/v.vmdk", 16 * 1024)
    assert info.data_path.stat().st_size == 16 * 1024 * 1024
    fs.delete("[LocalDS_0] vol")


# -- datastores and persistence -------------------------------------------------------------------------------------
def test_datastore_object(sim, fs):
    ds = fs.datastore(DS)
    s = ds.get_property("summary")
    assert s.type == "VMFS" and s.accessible and s.name == DS
    assert re.fullmatch(r"ds:///vmfs/volumes/[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{12}/", s.url)
    assert 0 < s.freeSpace <= s.capacity
    vs = fs.datastore(VSAN)
    assert vs.get_property("summary").type == "vsan"
    assert re.fullmatch(r"ds:///vmfs/volumes/vsan:[0-9a-f]{16}-[0-9a-f]{16}/", vs.get_property("summary").url)
    assert vs.props["capability"].topLevelDirectoryCreateSupported is False
    assert ds.props["capability"].topLevelDirectoryCreateSupported is True
    assert sim.registry.find(ds.props["browser"]._moId) is not None
    f = fault(vim.fault.DuplicateName, fs.add_datastore, ds.datacenter(), DS)
    assert f.name == DS


def test_restart_keeps_datastores_and_namespaces(tmp_path):
    s = Simulator(tmp_path)
    ensure_datastores(s)
    with s.lock:
        fs = s.datastores
        ds = fs.datastore(VSAN)
        ns = fs.create_namespace(ds, "keep")
        fs.create_disk("[vsanDatastore] keep/d.vmdk", 1024)
        url = ds.props["summary"].url
    s.close()
    s2 = Simulator(tmp_path)
    try:
        with s2.lock:
            fs = s2.datastores
            ds = fs.datastore(VSAN)
            assert ds.props["summary"].url == url and ds.is_vsan
            assert fs.namespaces(ds) == {"keep": ns}
            assert fs.disk_info("[vsanDatastore] keep/d.vmdk").capacity_kb == 1024
            assert s2.registry.find(ds.props["browser"]._moId) is not None
    finally:
        s2.close()


def test_wipe(tmp_path):
    s = Simulator(tmp_path, persist=False)
    ensure_datastores(s)
    with s.lock:
        s.datastores.make_dir("[LocalDS_0] w")
        s.datastores.wipe()
        assert list((tmp_path / "datastores").iterdir()) == []
    s.close()


# -- a VM's life cycle takes direct file paths (swap made in place, its own files unlinked after one folder lookup,
# an empty folder removed in one rmdir); they must leave the datastore as write_file / delete do
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
