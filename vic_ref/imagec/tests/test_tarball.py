"""docker save / docker load archives on the image store."""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import tarfile
import uuid

import pytest

from vic_ref import errors
from vic_ref.imagec import Puller, parse_pull, tarball
from vic_ref.testing.registry import make_config, make_layer

pytestmark = pytest.mark.sim_only


def pulled(store, op, image):
    return Puller(store).pull(op, parse_pull(image.reference))


def saved(store, op, names: list[str]) -> bytes:
    return b"".join(tarball.save(op, store, tarball.save_selection(op, store, names)))


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def other_store(appliance):
    """A second, empty store (another VCH id) on the same appliance."""
    appliance.config = dataclasses.replace(appliance.config, init=dataclasses.replace(
        appliance.config.init, common=dataclasses.replace(appliance.config.init.common, id=str(uuid.uuid4()))))
    return appliance.store()


def load(store, op, archive: bytes, quiet: bool = True) -> tuple[list[str], list[dict]]:
    messages: list[dict] = []
    ids = tarball.load(op, store, io.BytesIO(archive), messages.append, quiet=quiet)
    return ids, messages


def test_save_is_a_docker_archive(store, op, busybox_volume_image):
    image = pulled(store, op, busybox_volume_image)
    files = members(saved(store, op, [busybox_volume_image.reference]))
    manifest = json.loads(files["manifest.json"])
    assert manifest == [{"Config": f"{image.id[7:]}.json", "RepoTags": [busybox_volume_image.reference],
                         "Layers": [f"{layer}/layer.tar" for layer in image.layers]}]
    assert files[f"{image.id[7:]}.json"] == busybox_volume_image.config
    for name, diff_id in zip(manifest[0]["Layers"], image.diff_ids):
        assert "sha256:" + hashlib.sha256(files[name]).hexdigest() == diff_id  # byte-exact layer tars
    assert json.loads(files["repositories"]) == {
        busybox_volume_image.name: {"latest": image.layers[-1]}}


def test_load_into_another_vch(store, fresh_vch, op, busybox_image, busybox_volume_image):
    pulled(store, op, busybox_image)
    pulled(store, op, busybox_volume_image)
    archive = saved(store, op, [busybox_image.reference, busybox_volume_image.reference])
    target = other_store(fresh_vch)
    ids, messages = load(target, op, archive, quiet=False)
    assert ids == [busybox_image.image_id, busybox_volume_image.image_id]
    assert [m for m in messages if "stream" in m] == [
        {"stream": f"Loaded image: {busybox_image.reference}\n"},
        {"stream": f"Loaded image: {busybox_volume_image.reference}\n"}]
    assert any(m.get("status") == "Loading layer" for m in messages)
    assert target.get(op, busybox_volume_image.reference).layers == store.get(op, busybox_volume_image.reference).layers
    # loading again writes nothing and says the same
    _, again = load(target, op, archive)
    assert again == [{"stream": f"Loaded image: {busybox_image.reference}\n"},
                     {"stream": f"Loaded image: {busybox_volume_image.reference}\n"}]


def test_load_moves_a_tag_and_loads_untagged(store, op, busybox_image, busybox_volume_image):
    pulled(store, op, busybox_image)
    volume = pulled(store, op, busybox_volume_image)
    by_id = saved(store, op, [volume.id[7:19]])
    assert json.loads(members(by_id)["manifest.json"])[0]["RepoTags"] is None
    store.tag(op, busybox_image.reference, "moving:1")
    archive = saved(store, op, ["moving:1"])
    store.tag(op, volume.id, "moving:1")  # now the tag is elsewhere
    _, messages = load(store, op, archive)
    assert messages == [
        {"stream": f"The image moving:1 already exists, renaming the old one with ID {volume.id} to empty string\n"},
        {"stream": "Loaded image: moving:1\n"}]
    assert store.get(op, "moving:1").id == busybox_image.image_id
    _, messages = load(store, op, by_id)
    assert messages == [{"stream": f"Loaded image ID: {volume.id}\n"}]


def test_save_a_repository_saves_its_tags(store, op, busybox_image):
    image = pulled(store, op, busybox_image)
    store.tag(op, image.id, "repo:a")
    store.tag(op, image.id, "repo:b")
    manifest = json.loads(members(saved(store, op, ["repo"]))["manifest.json"])
    assert sorted(manifest[0]["RepoTags"]) == ["repo:a", "repo:b"]


def test_compressed_and_oci_style_archives(store, fresh_vch, op):
    layer = make_layer([("file", "oci", b"from an OCI-style archive\n", 0o644)])
    config = make_config([layer])
    config_hex = hashlib.sha256(config).hexdigest()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:  # what docker 25+ saves: blobs plus a manifest.json
        for name, data in ((f"blobs/sha256/{config_hex}", config), (f"blobs/sha256/{layer.diff_id[7:]}", layer.tar),
                           ("manifest.json", json.dumps([{"Config": f"blobs/sha256/{config_hex}",
                                                          "RepoTags": ["oci:1"],
                                                          "Layers": [f"blobs/sha256/{layer.diff_id[7:]}"]}]).encode()),
                           ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    ids, messages = load(store, op, gzip.compress(out.getvalue()))
    assert ids == ["sha256:" + config_hex] and messages == [{"stream": "Loaded image: oci:1\n"}]


def test_a_bad_layer_loads_nothing(store, fresh_vch, op):
    good = make_layer([("file", "good", b"good\n", 0o644)])
    bad = make_layer([("file", "bad", b"bad\n", 0o644)])
    config = make_config([good, bad])
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in (("g/layer.tar", good.tar), ("b/layer.tar", bad.tar.replace(b"bad\n", b"BAD\n")),
                           ("c.json", config),
                           ("manifest.json", json.dumps([{"Config": "c.json", "RepoTags": ["bad:1"],
                                                          "Layers": ["g/layer.tar", "b/layer.tar"]}]).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(tarball.LoadError, match="invalid diffID for layer 1"):
        load(store, op, out.getvalue())
    assert store.stats() == {"layers": 0, "images": 0}
    root = fresh_vch.local(f"[LocalDS_0] VIC/{fresh_vch.config.id}/images")
    assert {p.name for p in root.iterdir()} == {"scratch"}
    with pytest.raises(tarball.LoadError, match="no manifest.json"):
        load(store, op, b"\0" * 1024)
    with pytest.raises(errors.NotFound, match="No such image: nosuch:latest"):
        saved(store, op, ["nosuch"])
