"""Volumes end to end (issue 6; DESIGN-DECISIONS §4, vic-behaviour.md §2): the real docker CLI against `vic-ref up`,
pyVmomi for what the VCH made in vSphere, the sim's datastore browser for the files.

Each case is one of VIC's 1-19..1-22 Robot cases (texts as vic-behaviour.md §2(b) lists them), or an acceptance
item of the issue: data persists across containers and across a restart of the VCH and the sim, `:ro` is read-only,
the capacity is what `df` shows and what the filesystem holds, bad input leaves nothing on the datastore.
"""
from __future__ import annotations

import json
import re

import pytest

from vic_ref.testing.vch import start_vch
from vic_ref.testing.volume_images import push_volume_images

from .conftest import datastore_files, find_vms, ok

pytestmark = pytest.mark.skipif(__import__("os").geteuid() != 0, reason="containers need root (loop mounts)")

STORE = "VIC/volumes"  # the default store of `vic-ref up`: [LocalDS_0] VIC


@pytest.fixture(scope="module")
def images(vch, docker_cli, registry, busybox_image) -> dict[str, str]:
    pushed = push_volume_images(registry, busybox_image.layers[0])
    for image in pushed.values():
        ok(docker_cli("pull", image.reference, timeout=120))
    return {name: image.reference for name, image in pushed.items()}


@pytest.fixture(scope="module")
def datastore(si):
    from pyVmomi import vim
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.Datastore], True)
    try:
        return next(ds for ds in view.view if ds.name == "LocalDS_0")
    finally:
        view.DestroyView()


def fails(result, *texts: str, rc: int = 1) -> str:
    code, out, err = result
    assert code == rc, f"rc={code}\nstdout={out}\nstderr={err}"
    for text in texts:
        assert text in out + err, f"{text!r} not in {out + err!r}"
    return out + err


def volume_names(docker_cli, *args: str) -> list[str]:
    return ok(docker_cli("volume", "ls", "-q", *args)).split()


def df_size(docker_cli, image: str, *volume_args: str, path: str = "/mydata") -> str:
    out = ok(docker_cli("run", "--rm", *volume_args, image, "df", "-Ph", path))
    (line,) = [line for line in out.splitlines() if "by-label" in line]
    return line.split()[1]


# -- 1-19 create -----------------------------------------------------------------------------------------------------
def test_create_and_capacities(docker_cli, busybox):
    name = ok(docker_cli("volume", "create")).strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", name)
    assert df_size(docker_cli, busybox, "-v", f"{name}:/mydata") == "975.9M"
    assert ok(docker_cli("volume", "create", "--name=test")).strip() == "test"
    assert df_size(docker_cli, busybox, "-v", "test:/mydata") == "975.9M"
    assert df_size(docker_cli, busybox, "-v", "/mydata") == "975.9M"
    assert ok(docker_cli("volume", "create", "--name=test4", "--opt", "cAPACITy=10000")).strip() == "test4"
    assert df_size(docker_cli, busybox, "-v", "test4:/mydata") == "9.5G"
    ok(docker_cli("volume", "create", "--name=test10g", "--opt", "Capacity=10G"))
    assert df_size(docker_cli, busybox, "-v", "test10g:/mydata") == "9.5G"
    fails(docker_cli("volume", "create", "--name=test"),
          "Error response from daemon: A volume named test already exists. Choose a different volume name.")


def test_bad_input_leaves_nothing(docker_cli, busybox, si, datastore):
    before = datastore_files(si, datastore, STORE)
    fails(docker_cli("volume", "create", "-d", "fakeDriver", "--name=test2"),
          "error looking up volume plugin fakeDriver: plugin not found")
    fails(docker_cli("volume", "create", "--name=test3", "--opt", "VolumeStore=fakeStore"),
          "No volume store named (fakeStore) exists")
    fails(docker_cli("volume", "create", "--name=test3", "--opt", "bogus=foo"), "bogus is not a supported option")
    for value in ("0", "-1"):
        fails(docker_cli("volume", "create", "--name=test5", "--opt", f"Capacity={value}"),
              f"Error response from daemon: bad driver value - Invalid size: {value}")
    for value in ("9223372036854775808", "9999999999999999999"):
        fails(docker_cli("volume", "create", "--name=test7", "--opt", f"Capacity={value}"),
              f"Error response from daemon: bad driver value - Capacity value too large: {value}")
    fails(docker_cli("volume", "create", "--name=test8", "--opt", "Capacity=abc"),
          "Error response from daemon: bad driver value - invalid size: 'abc'")
    out = fails(docker_cli("volume", "create", "--name=test???"))
    assert out.strip() == ('Error response from daemon: volume name "test???" includes invalid characters, only '
                           '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed')
    fails(docker_cli("volume", "create", "--name=../../x"), 'volume name "../../x" includes invalid characters')
    fails(docker_cli("volume", "create", "--name=" + "a" * 300), "is too long")
    fails(docker_cli("run", "-v", "/dir:/dir", busybox),
          "Error response from daemon: Bad request error from portlayer: mounting directories as a data volume is "
          "not supported.", rc=125)
    assert datastore_files(si, datastore, STORE) == before
    assert not {"test2", "test3", "test5", "test7", "test8", "x"} & set(volume_names(docker_cli))


def test_flags_are_checked(docker_cli, busybox):
    before = volume_names(docker_cli)
    for flag in ("z", "Z", "shared", "rslave"):
        fails(docker_cli("create", "-v", f"flagvol:/data:{flag}", busybox), f'"{flag}" flag')
    fails(docker_cli("create", "-v", "flagvol:/data:bogus", busybox), "invalid mode: bogus")
    assert volume_names(docker_cli) == before


# -- data, read-only, capacity, devices --------------------------------------------------------------------------
def test_data_persists_ro_and_capacity(vch, docker_cli, busybox, si, datastore):
    ok(docker_cli("run", "--rm", "-v", "data:/d", busybox, "sh", "-c", "echo 1 > /d/f"))
    assert ok(docker_cli("run", "--rm", "-v", "data:/d", busybox, "cat", "/d/f")) == "1\n"
    fails(docker_cli("run", "--rm", "-v", "data:/d:ro", busybox, "sh", "-c", "echo 2 > /d/f"),
          "Read-only file system")
    assert ok(docker_cli("run", "--rm", "-v", "data:/d:ro", busybox, "cat", "/d/f")) == "1\n"
    assert {"data.vmdk", "imageMetadata"} <= datastore_files(si, datastore, f"{STORE}/data")
    # the volume's disk in the container VM: independent persistent, the store's file
    cid = ok(docker_cli("create", "-v", "data:/d", busybox, "true")).strip()
    (vm,) = [vm for vm in find_vms(si) if vm.name.endswith(cid[:12])]
    disks = {d.backing.fileName: d.backing.diskMode for d in vm.config.hardware.device
             if type(d).__name__.endswith("VirtualDisk")}
    assert disks[f"[LocalDS_0] {STORE}/data/data.vmdk"] == "independent_persistent"
    mounts = json.loads(ok(docker_cli("inspect", "-f", "{{json .Mounts}}", cid)))
    assert mounts == [{"Type": "volume", "Name": "data", "Source": "data", "Destination": "/d", "Driver": "vsphere",
                       "Mode": "rw", "RW": True, "Propagation": ""}]
    ok(docker_cli("rm", cid))
    assert "data.vmdk" in datastore_files(si, datastore, f"{STORE}/data")  # the VM's destroy left the volume
    # 64 MB: the filesystem holds what the capacity allows, then ENOSPC
    ok(docker_cli("volume", "create", "--name=small", "--opt", "Capacity=64"))
    out = fails(docker_cli("run", "--rm", "-v", "small:/s", busybox, "sh", "-c",
                           "df -Pk /s; dd if=/dev/zero of=/s/fill bs=1M count=100"), "No space left on device")
    size_kb = int([line for line in out.splitlines() if "by-label" in line][0].split()[1])
    assert 55_000 < size_kb <= 64 * 1024


def test_volume_in_use_by_running_container(docker_cli, busybox):
    name = ok(docker_cli("volume", "create")).strip()
    first = ok(docker_cli("run", "-dit", "-v", f"{name}:/mydata", busybox)).strip()
    try:
        fails(docker_cli("run", "-dit", "-v", f"{name}:/mydata", busybox), "Error response from daemon",
              f"device {name} in use", rc=125)
    finally:
        ok(docker_cli("rm", "-f", first))


# -- image volumes: copy on first mount ------------------------------------------------------------------------------
def test_image_content_copied_once(docker_cli, images):
    example = images["vol-example"]
    listing = ok(docker_cli("run", "--rm", example, "ls", "/etc/example")).split()
    assert listing == ["testfile.txt", "thisshouldexist"]
    assert ok(docker_cli("run", "--rm", example, "cat", "/etc/example/testfile.txt")) == "TestFile\n"
    ok(docker_cli("run", "--rm", "-v", "test15:/etc/example", example, "true"))
    assert ok(docker_cli("run", "--rm", "-v", "test15:/mnt/test15", example, "cat", "/mnt/test15/testfile.txt")) \
        == "TestFile\n"
    ok(docker_cli("run", "--rm", "-v", "test16:/etc/example", example, "sh", "-c",
                  "echo more >> /etc/example/testfile.txt"))
    assert ok(docker_cli("run", "--rm", "-v", "test16:/etc/example", example, "cat",
                         "/etc/example/testfile.txt")) == "TestFile\nmore\n"
    assert ok(docker_cli("run", "--rm", "-v", "nocopy1:/etc/example:nocopy", example, "ls", "-A",
                         "/etc/example")) == ""


def test_inspect_binds_and_config_volumes(docker_cli, images):
    mongo = images["vol-mongo"]
    cid = ok(docker_cli("create", "-v", "mongo-named:/data/db", "-v", "/extra", mongo)).strip()
    (data,) = json.loads(ok(docker_cli("inspect", cid)))
    assert data["HostConfig"]["Binds"] == ["mongo-named:/data/db"]
    keys = sorted(data["Config"]["Volumes"])
    assert "mongo-named:/data/db:rw" in keys
    anonymous = {k.split(":")[1]: k.split(":")[0] for k in keys if not k.startswith("mongo-named:")}
    assert sorted(anonymous) == ["/data/configdb", "/extra"]
    assert {m["Destination"]: m["Name"] for m in data["Mounts"]} == {"/data/db": "mongo-named", **anonymous}
    names = volume_names(docker_cli)
    assert "mongo-named" in names and all(v in names for v in anonymous.values())
    # the image's /data/db content and mode came with the named volume
    ok(docker_cli("start", "-a", cid))
    out = ok(docker_cli("run", "--rm", "-v", "mongo-named:/x", mongo, "sh", "-c", "stat -c %a /x; cat /x/README"))
    assert out == "700\nmongo data\n"
    # rm -v: the anonymous volumes go, the named one stays
    ok(docker_cli("rm", "-v", cid))
    names = volume_names(docker_cli)
    assert "mongo-named" in names and not any(v in names for v in anonymous.values())


def test_rm_v_keeps_volumes_others_use(docker_cli, busybox):
    first = ok(docker_cli("create", "-v", "/shared", busybox)).strip()
    (key,) = json.loads(ok(docker_cli("inspect", "-f", "{{json .Config.Volumes}}", first)))
    anon = key.split(":")[0]
    second = ok(docker_cli("create", "-v", f"{anon}:/data", busybox)).strip()
    ok(docker_cli("rm", "-v", first))
    assert anon in volume_names(docker_cli)
    ok(docker_cli("rm", "-v", second))
    assert anon in volume_names(docker_cli)  # named in the second container: never anonymous there
    ok(docker_cli("run", "--rm", "-v", f"{anon}:/data", busybox, "true"))
    ok(docker_cli("run", "--rm", "-v", "/autoremoved", busybox, "true"))
    assert anon in volume_names(docker_cli)


# -- 1-20 inspect, 1-21 ls, 1-22 rm, prune -----------------------------------------------------------------------------
def test_inspect(docker_cli):
    ok(docker_cli("volume", "create", "--name=insp", "--opt", "Capacity=200MB", "--label", "team=a"))
    (data,) = json.loads(ok(docker_cli("volume", "inspect", "insp")))
    assert data["Name"] == "insp" and data["Driver"] == "vsphere"
    assert data["Options"] == {"Capacity": "200MB"} and data["Labels"] == {"team": "a"}
    assert re.fullmatch(r"[0-9a-f]{16}", data["Mountpoint"])
    fails(docker_cli("volume", "inspect", "fakeVolume"), "No such volume: fakeVolume")


def test_ls_filters(docker_cli, busybox):
    ok(docker_cli("volume", "create", "--name=testVol"))
    ok(docker_cli("volume", "create", "--name=danglingVol"))
    ok(docker_cli("volume", "create", "--name=labelVol", "--label=labeled"))
    cid = ok(docker_cli("create", "-v", "testVol:/test", busybox)).strip()
    try:
        table = ok(docker_cli("volume", "ls"))
        assert "DRIVER" in table and "VOLUME NAME" in table and re.search(r"vsphere\s+testVol", table)
        fails(docker_cli("volume", "ls", "-f", "bogusfilter=test"),
              "Error response from daemon: Invalid filter 'bogusfilter'")
        dangling = volume_names(docker_cli, "-f", "dangling=true")
        assert "danglingVol" in dangling and "testVol" not in dangling
        joined = volume_names(docker_cli, "-f", "dangling=false")
        assert "testVol" in joined and "danglingVol" not in joined
        assert volume_names(docker_cli, "-f", "name=dang") == ["danglingVol"]
        assert {"testVol", "danglingVol"} <= set(volume_names(docker_cli, "-f", "driver=vsphere"))
        assert volume_names(docker_cli, "-f", "driver=vsph") == []
        assert volume_names(docker_cli, "-f", "label=labeled") == ["labelVol"]
        assert volume_names(docker_cli, "-f", "dangling=true", "-f", "name=dang") == ["danglingVol"]
        assert volume_names(docker_cli, "-f", "dangling=false", "-f", "name=dang") == []
    finally:
        ok(docker_cli("rm", cid))


def test_rm_and_prune(docker_cli, busybox, si, datastore):
    ok(docker_cli("volume", "create", "--name=rm2"))
    ok(docker_cli("volume", "rm", "rm2"))
    assert "rm2" not in volume_names(docker_cli)
    assert "rm2" not in datastore_files(si, datastore, STORE)
    cid = ok(docker_cli("create", "-v", "rm4:/test", busybox)).strip()
    fails(docker_cli("volume", "rm", "rm4"), "Error response from daemon: volume rm4 in use by")
    fails(docker_cli("volume", "rm", "rm3"), "Error response from daemon: Get rm3: no such volume")
    ok(docker_cli("rm", cid))
    ok(docker_cli("volume", "rm", "rm4"))
    fails(docker_cli("volume", "prune", "-f"),
          "vSphere Integrated Containers does not yet implement VolumesPrune")


# -- restart of the VCH and the sim ------------------------------------------------------------------------------
def test_data_survives_vch_and_sim_restart(tmp_path, busybox_image):
    stores = ("--volume-store", "LocalDS_0/VIC:default", "--volume-store", "LocalDS_0/fast:fast")
    vch = start_vch(tmp_path / "vch", extra_args=stores)
    try:
        ok(vch.docker("pull", busybox_image.reference, timeout=120))
        ok(vch.docker("run", "--rm", "-v", "data:/d", busybox_image.reference, "sh", "-c", "echo 1 > /d/f"))
        ok(vch.docker("volume", "create", "--name=fastvol", "--opt", "VolumeStore=fast", "--opt", "Capacity=8"))
        port = vch.docker_port
    finally:
        vch.stop()
    fast = tmp_path / "vch" / "sim" / "datastores" / "LocalDS_0" / "fast" / "volumes" / "fastvol"
    assert {"fastvol.vmdk", "fastvol-flat.vmdk", "imageMetadata"} <= {p.name for p in fast.iterdir()}
    vch = start_vch(tmp_path / "vch", docker_port=port, extra_args=stores)
    try:
        assert sorted(ok(vch.docker("volume", "ls", "-q")).split()) == ["data", "fastvol"]
        assert ok(vch.docker("run", "--rm", "-v", "data:/d", busybox_image.reference, "cat", "/d/f")) == "1\n"
    finally:
        vch.stop()
