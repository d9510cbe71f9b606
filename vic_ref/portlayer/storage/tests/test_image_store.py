"""The image store on the embedded sim: layers as disk chains, metadata, rebuild from the datastore, tags, rmi."""
from __future__ import annotations

import io
import os
import stat

import pytest

from vic_ref import errors
from vic_ref.imagec.errors import VerificationFailed
from vic_ref.imagec.ids import chain_ids
from vic_ref.imagec.reference import InvalidReference
from vic_ref.portlayer.storage import ContainerUse, ImageConflict, ImageNotFound
from vic_ref.portlayer.storage.image import SCRATCH
from vic_ref.testing.registry import busybox_layer, make_config, make_layer, volume_layer
from vic_ref.vsphere import DatastorePath, vim

pytestmark = pytest.mark.sim_only

BUSYBOX = busybox_layer()
VOLUME = volume_layer()
SMALL = make_layer([("dir", "app", 0o755), ("file", "app/run", b"#!/bin/sh\necho run\n", 0o755)])


def write_image(op, store, layers, *, tag=None, config=None):
    """Write an image's layers and record it, as a pull does."""
    ids = chain_ids([layer.diff_id for layer in layers])
    for i, layer in enumerate(layers):
        store.write_layer(op, ids[i], ids[i - 1] if i else None, io.BytesIO(layer.tar), diff_id=layer.diff_id)
    image, _ = store.add_image(op, config or make_config(layers), tag=tag)
    return image


def attached_disks(appliance, op) -> list[str]:
    devices = appliance.session.retrieve_one(op, appliance.vm, ["config.hardware.device"])["config.hardware.device"]
    return [d.backing.fileName for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]


def test_scratch_is_the_base(store, fresh_vch, op):
    scratch = store.layer_disk(op, SCRATCH)
    assert str(scratch) == f"[LocalDS_0] VIC/{fresh_vch.config.id}/images/scratch/scratch.vmdk"
    folder = fresh_vch.local(scratch.parent)
    assert (folder / "manifest").is_file() and (folder / "imageMetadata").is_dir()
    data = folder / "scratch-flat.vmdk"  # the sim keeps a disk's data as a tree beside its descriptor
    assert (data / "etc" / "hosts").is_file() and os.readlink(data / "etc" / "mtab") == "/proc/mounts"
    assert stat.S_IMODE(os.stat(data / ".tether").st_mode) == 0o777
    assert attached_disks(fresh_vch, op) == []  # nothing stays on the appliance


def test_layers_are_a_disk_chain(store, fresh_vch, op):
    image = write_image(op, store, [BUSYBOX, VOLUME], tag="busybox-volume")
    base, top = image.layers
    assert base == BUSYBOX.diff_id[7:]  # a base layer's chain ID is its diff ID
    assert image.top_layer == top and image.diff_ids == [BUSYBOX.diff_id, VOLUME.diff_id]
    disk = store.layer_disk(op, top)
    assert str(disk) == f"[LocalDS_0] VIC/{fresh_vch.config.id}/images/{top}/{top}.vmdk"
    descriptor = fresh_vch.local(disk).read_text()
    assert f"images/{base}/{base}.vmdk" in descriptor  # the parent hint: a child of the base layer ...
    base_descriptor = fresh_vch.local(store.layer_disk(op, base)).read_text()
    assert "images/scratch/scratch.vmdk" in base_descriptor  # ... which is a child of scratch
    top_data = fresh_vch.local(disk.parent) / f"{top}-flat.vmdk"
    assert (top_data / "etc" / "motd").is_file() and not (top_data / "bin").exists()  # only its own layer
    meta = fresh_vch.local(disk.parent) / "imageMetadata"
    assert sorted(p.name for p in meta.iterdir()) == sorted([
        "layer.json", "tarsplit.json.gz", f"config-{image.id[7:]}.json", f"refs-{image.id[7:]}.json"])
    assert attached_disks(fresh_vch, op) == []
    with pytest.raises(errors.NotFound):
        store.layer_disk(op, "f" * 64)


def test_lookup_like_docker(store, op):
    image = write_image(op, store, [BUSYBOX], tag="busybox")
    store.add_image(op, image.raw_config, digest="busybox@sha256:" + "d" * 64)
    for name in ("busybox", "busybox:latest", "docker.io/library/busybox", image.id, image.id[7:], image.id[7:19],
                 "sha256:" + image.id[7:15], "busybox@sha256:" + "d" * 64):
        assert store.get(op, name).id == image.id, name
    assert store.get(op, "busybox").repo_tags == ["busybox:latest"]
    assert store.get(op, "busybox").repo_digests == ["busybox@sha256:" + "d" * 64]
    for name, text in (("nosuch", "No such image: nosuch:latest"), ("busybox:2", "No such image: busybox:2"),
                       ("abcdef123456", "No such image: abcdef123456:latest"),
                       ("sha256:" + "e" * 64, "No such image: sha256:" + "e" * 64)):
        with pytest.raises(ImageNotFound) as caught:
            store.get(op, name)
        assert str(caught.value) == text
    with pytest.raises(InvalidReference):
        store.get(op, "Bad:Name:")


def test_rebuilt_from_the_datastore(store, fresh_vch, op):
    image = write_image(op, store, [BUSYBOX, VOLUME], tag="app:1")
    store.tag(op, "app:1", "app:2")
    other = write_image(op, store, [BUSYBOX], tag="busybox")
    # a crash left a half-written layer behind, its disk still on the appliance
    leftover = store.layer_dir("e" * 64)
    store.datastore.mkdir(op, leftover)
    store.disks._add(op, leftover.join("e" * 64 + ".vmdk"), store.layer_disk(op, SCRATCH), 0, "left behind")
    assert len(attached_disks(fresh_vch, op)) == 1
    again = fresh_vch.store()
    assert attached_disks(fresh_vch, op) == []
    assert {i.id for i in again.list(op)} == {image.id, other.id}
    assert sorted(again.get(op, image.id).repo_tags) == ["app:1", "app:2"]
    assert again.get(op, "busybox").layers == other.layers
    assert again.get(op, image.id).config == image.config and again.get(op, image.id).size == image.size
    assert not again.has_layer("e" * 64)
    assert not fresh_vch.local(store.layer_dir("e" * 64)).exists()
    # scratch lost its done marker: it has children, so it is kept (and marked again), as VIC keeps it
    store.datastore.delete(op, store.layer_dir(SCRATCH).join("manifest"))
    third = fresh_vch.store()
    assert third.get(op, "app:2").id == image.id
    assert fresh_vch.local(store.layer_dir(SCRATCH).join("manifest")).exists()


def test_a_bad_layer_leaves_nothing(store, fresh_vch, op):
    layer_id = chain_ids([SMALL.diff_id])[0]
    with pytest.raises(VerificationFailed, match="diff ID verification failed"):
        store.write_layer(op, layer_id, None, io.BytesIO(SMALL.tar), diff_id="sha256:" + "0" * 64)
    assert not store.has_layer(layer_id)
    assert not fresh_vch.local(store.layer_dir(layer_id)).exists()
    assert attached_disks(fresh_vch, op) == []
    with pytest.raises(errors.InvalidArgument):  # a breakout: refused, and also nothing left
        store.write_layer(op, "a" * 64, None, io.BytesIO(make_layer([("file", "../x", b"x", 0o644)]).tar))
    assert not fresh_vch.local(store.layer_dir("a" * 64)).exists()


def test_tags_move_between_images(store, fresh_vch, op):
    first = write_image(op, store, [BUSYBOX], tag="app")
    second = write_image(op, store, [BUSYBOX, SMALL], tag="app")
    assert store.get(op, "app").id == second.id
    assert store.get(op, first.id).repo_tags == []
    with pytest.raises(errors.InvalidArgument, match="digest reference"):
        store.tag(op, "app", "app@sha256:" + "1" * 64)
    again = fresh_vch.store()
    assert again.get(op, "app").id == second.id and again.get(op, first.id).repo_tags == []


def test_rmi_untags_and_deletes(store, fresh_vch, op):
    image = write_image(op, store, [BUSYBOX, SMALL], tag="app:1")
    store.tag(op, "app:1", "other:1")
    assert store.remove(op, "other:1") == [{"Untagged": "other:1"}]
    store.tag(op, "app:1", "third")
    with pytest.raises(ImageConflict) as caught:
        store.remove(op, image.id[7:19])
    assert str(caught.value) == (f"conflict: unable to delete {image.id[7:19]} (must be forced) - image is "
                                 f"referenced in multiple repositories")
    store.remove(op, "third")
    records = store.remove(op, "app:1")
    base, top = image.layers
    assert records == [{"Untagged": "app:1"}, {"Deleted": image.id}, {"Deleted": f"sha256:{top}"},
                       {"Deleted": f"sha256:{base}"}]
    assert store.list(op) == [] and not store.has_layer(top)
    assert not fresh_vch.local(store.layer_dir(top)).exists()
    assert store.has_layer(SCRATCH)


def test_rmi_keeps_shared_layers(store, op):
    base = write_image(op, store, [BUSYBOX], tag="busybox")
    app = write_image(op, store, [BUSYBOX, SMALL], tag="app")
    records = store.remove(op, "app")
    assert records == [{"Untagged": "app:latest"}, {"Deleted": app.id}, {"Deleted": f"sha256:{app.top_layer}"}]
    assert store.has_layer(base.top_layer)
    assert store.get(op, "busybox").id == base.id


def test_rmi_by_id_with_one_tag_and_digests(store, op):
    image = write_image(op, store, [BUSYBOX], tag="busybox")
    digest = "sha256:" + "9" * 64
    store.add_image(op, image.raw_config, digest=f"busybox@{digest}")
    records = store.remove(op, image.id[7:19])
    assert records[:2] == [{"Untagged": "busybox:latest"}, {"Untagged": f"busybox@{digest}"}]
    assert records[2] == {"Deleted": image.id}


def test_rmi_conflicts_with_containers(store, fresh_vch, op):
    image = write_image(op, store, [BUSYBOX, SMALL], tag="app")
    uses: list[ContainerUse] = []
    store.set_usage(lambda op_, image_id: [u for u in uses if image_id == image.id])
    cid = "c" * 64
    uses.append(ContainerUse(cid, running=False))
    with pytest.raises(ImageConflict) as caught:
        store.remove(op, "app")
    assert str(caught.value) == (f'conflict: unable to remove repository reference "app" (must force) - container '
                                 f"cccccccccccc is using its referenced image {image.id[7:19]}")
    with pytest.raises(ImageConflict) as caught:
        store.remove(op, image.id)
    assert str(caught.value) == (f"conflict: unable to delete {image.id[7:19]} (must be forced) - image is being "
                                 f"used by stopped container cccccccccccc")
    uses[0] = ContainerUse(cid, running=True)
    with pytest.raises(ImageConflict) as caught:
        store.remove(op, image.id, force=True)
    assert str(caught.value) == (f"conflict: unable to delete {image.id[7:19]} (cannot be forced) - image is "
                                 f"being used by running container cccccccccccc")
    assert caught.value.hard
    # a stopped container's root disk is a child of the top layer: a forced rmi deletes the image, not the layers
    uses[0] = ContainerUse(cid, running=False)
    root_disk = DatastorePath("LocalDS_0", f"{fresh_vch.name}/{cid[:12]}.vmdk")
    with store.disks.new_disk(op, root_disk, store.layer_disk(op, image.top_layer)):
        pass
    records = store.remove(op, "app", force=True)
    assert records == [{"Untagged": "app:latest"}, {"Deleted": image.id}]
    assert store.has_layer(image.top_layer)  # still the container's parent
    assert store.collect_garbage(op) == []  # and it stays while the container's disk is its child
    store.datastore.delete_disk(op, root_disk)
    again = fresh_vch.store()  # the container is gone: the next start collects the orphans, children first
    assert not again.has_layer(image.top_layer) and not again.has_layer(image.layers[0])
    assert not fresh_vch.local(store.layer_dir(image.top_layer)).exists()


def test_export_gives_back_the_layer_tars(store, op):
    image = write_image(op, store, [BUSYBOX, VOLUME], tag="busybox-volume")
    with store.open_image(op, image) as dirs:
        assert set(dirs) == {SCRATCH, *image.layers}
        tars = [b"".join(store.layer_tar(op, layer, dirs[layer])) for layer in image.layers]
    assert tars == [BUSYBOX.tar, VOLUME.tar]


def test_layers_need_their_parent(store, op):
    with pytest.raises(errors.NotFound):
        store.write_layer(op, "b" * 64, "c" * 64, io.BytesIO(SMALL.tar))
    with pytest.raises(errors.InvalidState):
        store.add_image(op, make_config([SMALL]))  # its layer is not there


def test_events(store, op):
    heard: list[tuple[str, str, dict]] = []
    store.set_event_listener(lambda op_, action, actor, attributes: heard.append((action, actor, attributes)))
    labelled = make_config([SMALL], {"Cmd": ["sh"], "Labels": {"team": "a"}})
    image = write_image(op, store, [SMALL], tag="app", config=labelled)
    store.tag(op, "app", "app:2")
    store.remove(op, "app:2")
    store.remove(op, "app")
    assert heard == [("tag", image.id, {"team": "a", "name": "app:2"}),
                     ("untag", image.id, {"team": "a", "name": image.id}),
                     ("untag", image.id, {"team": "a", "name": image.id}),
                     ("delete", image.id, {"name": image.id})]


def test_on_vsan(fresh_vch, op):
    """On vSAN the store's top folder is a namespace (DatastoreNamespaceManager), the rest as on VMFS."""
    import dataclasses
    fresh_vch.config = dataclasses.replace(fresh_vch.config, storage=dataclasses.replace(
        fresh_vch.config.storage, image_store="[vsanDatastore]"))
    store = fresh_vch.store()
    image = write_image(op, store, [BUSYBOX, VOLUME], tag="vsan")
    assert store.layer_disk(op, image.top_layer).datastore == "vsanDatastore"
    again = fresh_vch.store()
    assert again.get(op, "vsan").id == image.id
    with again.open_image(op, image) as dirs:
        assert b"".join(again.layer_tar(op, image.top_layer, dirs[image.top_layer])) == VOLUME.tar
    assert again.remove(op, "vsan")[-1] == {"Deleted": f"sha256:{image.layers[0]}"}


def test_an_appliance_without_a_scsi_controller_gets_one(sim_target, op):
    from .harness import Appliance
    bare = Appliance(sim_target, scsi=False)
    try:
        store = bare.store()
        write_image(op, store, [SMALL], tag="small")
        devices = bare.session.retrieve_one(op, bare.vm, ["config.hardware.device"])["config.hardware.device"]
        assert any(isinstance(d, vim.vm.device.ParaVirtualSCSIController) for d in devices)
    finally:
        bare.close()


def test_concurrent_writers_share_a_layer(store, op):
    import threading
    results, failures = [], []

    def writer():
        try:
            results.append(write_image(op, store, [BUSYBOX, SMALL], tag="same"))
        except Exception as err:  # noqa: BLE001 - collected for the assertion
            failures.append(err)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == [] and len({r.id for r in results}) == 1
    assert store.stats() == {"layers": 2, "images": 1}
