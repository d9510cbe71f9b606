"""A container VM's names, paths and create spec (vic-behaviour.md §1(a)3-4, §5; DESIGN-DECISIONS §1)."""
from __future__ import annotations

import uuid

import pytest

from vic_ref.config import ExecutorConfig, ExecutorConfigCommon, encode
from vic_ref.portlayer.exec import spec
from vic_ref.vsphere import DatastorePath, vim

CID = "0123456789ab" + "c" * 52


def test_ids():
    ids = {spec.new_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) == 64 and all(c in "0123456789abcdef" for c in i) for i in ids)
    assert spec.short_id(CID) == "0123456789ab"


@pytest.mark.parametrize("name,expected", [
    ("web", "web-0123456789ab"),
    ("x" * 67, "x" * 67 + "-0123456789ab"),
    ("x" * 100, "x" * 67 + "-0123456789ab"),
])
def test_default_display_name(name, expected):
    shown = spec.display_name(name, CID)
    assert shown == expected and len(shown) <= 80


def test_hundred_character_name_gives_eighty():
    shown = spec.display_name("n" * 100, CID)
    assert len(shown) == 80 and shown.endswith("-" + CID[:12])


@pytest.mark.parametrize("convention,name,expected", [
    ("{id}-{name}", "web", "0123456789ab-web"),
    ("prefix-{name}", "web", "prefix-web"),
    ("{id}", "web", "0123456789ab"),
    ("c_{name}_{id}", "y" * 100, "c_" + "y" * 65 + "_0123456789ab"),
    ("z" * 90 + "{name}", "web", "web-0123456789ab"),  # no room: the default convention
])
def test_conventions(convention, name, expected):
    shown = spec.display_name(name, CID, convention)
    assert shown == expected and len(shown) <= 80


def test_bios_uuid_is_uuid5_of_the_id_in_the_vch_namespace():
    vch = str(uuid.uuid4())
    assert spec.bios_uuid(vch, CID) == str(uuid.uuid5(uuid.UUID(vch), CID)) == spec.bios_uuid(vch, CID)
    assert spec.bios_uuid(vch, CID) != spec.bios_uuid(str(uuid.uuid4()), CID)


@pytest.mark.parametrize("requested,mb", [(None, 2048), (0, 2048), (100 * 2 ** 20, 512), (600 * 2 ** 20, 640),
                                          (1024 * 2 ** 20, 1024), (1025 * 2 ** 20, 1152)])
def test_memory(requested, mb):
    assert spec.memory_mb(requested) == mb


def test_placement_paths():
    vmfs, vsan = spec.Placement("LocalDS_0"), spec.Placement("vsanDatastore", vsan=True)
    assert vmfs.vm_path(CID) == f"[LocalDS_0] {CID}/{CID}.vmx"
    assert vsan.vm_path(CID) == "[vsanDatastore]"  # vSAN names the namespace after the display name (= the ID)
    for p in (vmfs, vsan):
        assert p.folder(CID) == DatastorePath(p.datastore, CID)
        assert str(p.root_disk(CID)) == f"[{p.datastore}] {CID}/{CID}.vmdk"
        assert str(p.log_file(CID, "output.log")) == f"[{p.datastore}] {CID}/output.log"


def test_create_spec():
    cfg = ExecutorConfig(common=ExecutorConfigCommon(id=CID, name="web"))
    placement = spec.Placement("LocalDS_0")
    layer = DatastorePath("LocalDS_0", "VIC/x/images/l1/l1.vmdk")
    devices = spec.CreateDevices(bootstrap_iso="[LocalDS_0] vch/bootstrap.iso", root_disk=placement.root_disk(CID),
                                 parent_disk=layer, log_files=(placement.log_file(CID, "tether.debug"),
                                                               placement.log_file(CID, "output.log")))
    vch = str(uuid.uuid4())
    s = spec.create_spec(cfg, placement=placement, devices=devices, vch_id=vch, num_cpus=2, memory=2048,
                         version="1.2.3")
    assert s.name == CID and s.guestId == "otherGuest64" and s.numCPUs == 2 and s.memoryMB == 2048
    assert s.files.vmPathName == f"[LocalDS_0] {CID}/{CID}.vmx" and s.uuid == spec.bios_uuid(vch, CID)
    assert s.alternateGuestName.startswith("Photon - Container 1.2.3, ")
    extra = {o.key: o.value for o in s.extraConfig}
    assert extra["common/name"] == "web" and extra["guestinfo.vice./common/id"] == CID
    assert extra["disk.EnableUUID"] == "true" and extra["tools.upgrade.policy"] == "manual"
    assert set(encode(cfg)) <= set(extra)
    kinds = [type(c.device) for c in s.deviceChange]
    assert kinds == [vim.vm.device.ParaVirtualSCSIController, vim.vm.device.VirtualCdrom,
                     vim.vm.device.VirtualDisk, vim.vm.device.VirtualSerialPort, vim.vm.device.VirtualSerialPort]
    scsi, cdrom, disk, debug, output = (c.device for c in s.deviceChange)
    assert cdrom.backing.fileName == "[LocalDS_0] vch/bootstrap.iso" and cdrom.controllerKey == 200
    assert s.deviceChange[2].fileOperation == "create" and disk.controllerKey == scsi.key
    assert disk.backing.fileName == f"[LocalDS_0] {CID}/{CID}.vmdk" and disk.backing.thinProvisioned
    assert disk.backing.parent.fileName == str(layer)
    assert [debug.backing.fileName, output.backing.fileName] == [f"[LocalDS_0] {CID}/tether.debug",
                                                                 f"[LocalDS_0] {CID}/output.log"]
