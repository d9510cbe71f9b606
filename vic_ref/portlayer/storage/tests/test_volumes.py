"""Volume stores on the embedded sim: layout, the ext4 image and its label, metadata, rebuild from the datastore,
VIC's refusals, removal and in-use, joins."""
from __future__ import annotations

import dataclasses
import os
import uuid

import pytest

from vic_ref import errors
from vic_ref.config import ExecutorConfig
from vic_ref.config.executor import COPY_NEVER
from vic_ref.portlayer.exec.handle import Creation, Handle
from vic_ref.portlayer.exec.spec import KEY_SCSI, Placement
from vic_ref.portlayer.storage import volume_fs
from vic_ref.portlayer.storage.volumes import (
    StoreNotFound,
    VolumeExists,
    VolumeInUse,
    VolumeNotFound,
    VolumeStores,
    parse_store_option,
    volume_of_disk,
)
from vic_ref.vsphere import DatastorePath, vim

pytestmark = pytest.mark.sim_only


@pytest.fixture
def stores(appliance, op):
    """Volume stores of their own (a fresh root) on the module's appliance."""
    root = f"vols-{uuid.uuid4().hex[:8]}"
    config = dataclasses.replace(appliance.config, storage=dataclasses.replace(
        appliance.config.storage, volume_stores={"default": f"[LocalDS_0] {root}", "other": f"[LocalDS_0] {root}-b"}))
    made = VolumeStores(op, appliance.session, config, appliance.channel)
    made.start(op)
    made.test_config = config
    return made


def ext4_label(path) -> str | None:
    with open(path, "rb") as handle:
        handle.seek(1024 + 0x78)
        return handle.read(16).split(b"\0", 1)[0].decode() or None


def test_create_layout_and_filesystem(appliance, stores, op):
    volume = stores.create(op, "vol1", capacity_mb=16, metadata={"DockerMetaData": b'{"Name": "vol1"}'})
    root = stores.roots["default"]
    assert volume.disk == root.join("volumes", "vol1", "vol1.vmdk")
    assert volume.label == volume_fs.label("vol1") and len(volume.label) == 16
    data = appliance.local(volume.disk.parent.join("vol1-flat.vmdk"))
    assert data.is_file() and data.stat().st_size == 16 * 1024 * 1024  # sparse, of the capacity
    assert ext4_label(data) == volume.label
    meta = appliance.local(volume.folder.join("imageMetadata", "DockerMetaData"))
    assert meta.read_bytes() == b'{"Name": "vol1"}'
    devices = appliance.session.retrieve_one(op, appliance.vm, ["config.hardware.device"])["config.hardware.device"]
    assert not [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]  # detached after formatting
    assert [v.name for v in stores.list(op)] == ["vol1"]
    default = stores.create(op, "vol2")
    assert appliance.local(default.folder.join("vol2-flat.vmdk")).stat().st_size == 1024 ** 3


def test_refusals_leave_nothing(appliance, stores, op):
    stores.create(op, "dup", capacity_mb=8)
    with pytest.raises(VolumeExists):
        stores.create(op, "dup", capacity_mb=8)
    with pytest.raises(StoreNotFound, match=r"volume store \(nostore\) not found"):
        stores.create(op, "x1", store="nostore")
    for bad in ("../../x", "a/b", ".hidden", "a" * 300):
        with pytest.raises(errors.InvalidArgument):
            stores.create(op, bad, capacity_mb=8)
    folder = appliance.local(stores.volumes_dir("default"))
    assert sorted(os.listdir(folder)) == ["dup"]


def test_failed_format_leaves_nothing(appliance, stores, op, monkeypatch):
    def broken(data, capacity_kb, label):
        raise errors.InternalError("mkfs.ext4 failed: no")
    monkeypatch.setattr(volume_fs, "format_ext4", broken)
    with pytest.raises(errors.InternalError):
        stores.create(op, "broken", capacity_mb=8)
    assert os.listdir(appliance.local(stores.volumes_dir("default"))) == []
    with pytest.raises(VolumeNotFound):
        stores.get(op, "broken")


def test_rebuilt_from_the_datastore(appliance, stores, op):
    stores.create(op, "keep", capacity_mb=8, metadata={"k": b"v"})
    stores.create(op, "elsewhere", store="other", capacity_mb=8)
    # a create cut off before its metadata: deleted when the stores come back
    unfinished = appliance.local(stores.volumes_dir("default").join("half"))
    unfinished.mkdir()
    (unfinished / "half.vmdk").write_text("# Disk DescriptorFile\n")
    again = VolumeStores(op, appliance.session, stores.test_config, appliance.channel)
    again.start(op)
    assert {v.name: v.store for v in again.list(op)} == {"keep": "default", "elsewhere": "other"}
    assert again.get(op, "keep").metadata == {"k": b"v"}
    assert not unfinished.exists()


def test_remove_and_in_use(appliance, stores, op):
    volume = stores.create(op, "gone", capacity_mb=8)
    users = {"gone": ["c" * 64]}
    stores.set_usage(lambda op, name: users.get(name, []))
    with pytest.raises(VolumeInUse, match=f"volume gone in use by {'c' * 64}"):
        stores.remove(op, "gone")
    users.clear()
    stores.remove(op, "gone")
    assert not appliance.local(volume.folder).exists()
    with pytest.raises(VolumeNotFound):
        stores.remove(op, "gone")


def test_join_adds_the_disk_and_mount_spec(stores, op):
    volume = stores.create(op, "joined", capacity_mb=8)
    handle = Handle(ExecutorConfig(), creation=Creation(placement=Placement("LocalDS_0")))
    handle.config.common.id = "f" * 64
    stores.join(op, handle, volume, "/data", mode="ro", copy_mode=COPY_NEVER)
    spec = handle.config.mounts["joined"]
    assert (spec.source.scheme, spec.label, spec.path, spec.mode, spec.copy_mode) == \
        ("label", volume.label, "/data", "ro", COPY_NEVER)
    (change,) = handle.device_changes
    assert change.operation == "add" and change.fileOperation is None
    assert change.device.backing.fileName == str(volume.disk)
    assert change.device.backing.diskMode == "independent_persistent" and change.device.controllerKey == KEY_SCSI
    with pytest.raises(errors.Conflict, match="already in container"):
        stores.join(op, handle, volume, "/other")


def test_store_option_syntax():
    assert parse_store_option("LocalDS_0/VIC:default") == ("default", "[LocalDS_0] VIC")
    assert parse_store_option("LocalDS_0:default") == ("default", "[LocalDS_0] VIC")
    assert parse_store_option("ds/a/b:fast") == ("fast", "[ds] a/b")
    assert parse_store_option("[ds] x/y:named") == ("named", "[ds] x/y")
    with pytest.raises(errors.InvalidArgument):
        parse_store_option("no-name")
    assert volume_of_disk("/vmfs/volumes/abc/VIC/volumes/v1/v1.vmdk") == "v1"
    assert str(DatastorePath("ds", "a")) == "[ds] a"


def test_vic_ref_up_volume_store_options():
    from vic_ref.cli import volume_stores
    assert volume_stores(None) == {"default": "[LocalDS_0] VIC"}
    assert volume_stores(["LocalDS_0/vols:default", "LocalDS_1:fast"]) == {"default": "[LocalDS_0] vols",
                                                                           "fast": "[LocalDS_1] VIC"}
    with pytest.raises(errors.InvalidArgument, match="given twice"):
        volume_stores(["a/x:default", "b/y:default"])
