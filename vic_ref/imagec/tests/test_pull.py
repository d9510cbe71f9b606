"""Pulls from the real docker-registry into the image store on the sim: progress as docker shows it, manifest lists,
errors in docker's words, and failed pulls that leave nothing behind."""
from __future__ import annotations

import hashlib

import pytest

from vic_ref import errors
from vic_ref.imagec import Puller, parse_pull
from vic_ref.imagec.errors import RegistryNotFound, RegistryUnavailable, VerificationFailed
from vic_ref.imagec.ids import chain_ids
from vic_ref.testing.registry import (
    OCI_INDEX,
    OCI_MANIFEST,
    make_config,
    make_layer,
)

pytestmark = pytest.mark.sim_only


def pull(store, op, reference: str, tag: str = ""):
    messages: list[dict] = []
    image = Puller(store).pull(op, parse_pull(reference, tag), sink=messages.append)
    return image, messages


def plain(messages: list[dict]) -> list[dict]:
    """The messages without the byte counts (whose number depends on timing)."""
    return [m for m in messages if m.get("status") not in ("Downloading", "Extracting")]


def layer_folders(fresh_vch) -> set[str]:
    root = fresh_vch.local(f"[LocalDS_0] VIC/{fresh_vch.config.id}/images")
    return {p.name for p in root.iterdir()}


def test_pull_busybox_like_docker(store, fresh_vch, op, registry, busybox_image):
    image, messages = pull(store, op, busybox_image.reference)
    short = busybox_image.layers[0].digest[7:19]
    assert plain(messages) == [
        {"status": "Pulling from busybox", "id": "latest"},
        {"status": "Pulling fs layer", "progressDetail": {}, "id": short},
        {"status": "Verifying Checksum", "progressDetail": {}, "id": short},
        {"status": "Download complete", "progressDetail": {}, "id": short},
        {"status": "Pull complete", "progressDetail": {}, "id": short},
        {"status": f"Digest: {busybox_image.manifest_digest}"},
        {"status": f"Status: Downloaded newer image for {registry.host}/busybox:latest"},
    ]
    downloads = [m for m in messages if m.get("status") == "Downloading"]
    total = len(busybox_image.layers[0].blob)
    assert downloads[-1]["progressDetail"] == {"current": total, "total": total}
    assert downloads[-1]["progress"].startswith("[" + "=" * 50 + ">]")
    extracting = [m for m in messages if m.get("status") == "Extracting"]
    assert extracting and extracting[-1]["progressDetail"]["current"] == total
    assert image.id == busybox_image.image_id
    assert image.repo_tags == [f"{registry.host}/busybox:latest"]
    assert image.repo_digests == [f"{registry.host}/busybox@{busybox_image.manifest_digest}"]
    assert image.config["config"]["Cmd"] == ["sh"]
    assert image.layers == chain_ids(busybox_image.diff_ids)
    # again: nothing to download
    again, messages = pull(store, op, busybox_image.reference)
    assert again.id == image.id
    assert messages == [{"status": "Pulling from busybox", "id": "latest"},
                        {"status": f"Digest: {busybox_image.manifest_digest}"},
                        {"status": f"Status: Image is up to date for {registry.host}/busybox:latest"}]


def test_layers_are_shared(store, op, busybox_image, busybox_volume_image):
    pull(store, op, busybox_image.reference)
    image, messages = pull(store, op, busybox_volume_image.name, "latest")
    base, top = (layer.digest[7:19] for layer in busybox_volume_image.layers)
    assert {"status": "Already exists", "progressDetail": {}, "id": base} in messages
    assert {"status": "Pull complete", "progressDetail": {}, "id": top} in messages
    assert image.config["config"]["Volumes"] == {"/data": {}}
    assert store.get(op, busybox_image.reference).top_layer == image.layers[0]


def test_pull_by_digest(store, op, registry, busybox_image):
    reference = f"{busybox_image.name}@{busybox_image.manifest_digest}"
    image, messages = pull(store, op, reference)
    assert messages[0] == {"status": "Pulling from busybox", "id": busybox_image.manifest_digest}
    assert messages[-1] == {"status": f"Status: Downloaded newer image for {reference}"}
    assert image.repo_tags == [] and image.repo_digests == [reference]
    assert store.get(op, reference).id == busybox_image.image_id


@pytest.mark.parametrize("media_type", ["application/vnd.docker.distribution.manifest.list.v2+json", OCI_INDEX])
def test_manifest_lists_pick_linux_amd64(store, op, registry, busybox_image, media_type):
    arm_layer = make_layer([("file", "arch", b"arm64\n", 0o644)])
    arm = registry.push_image("multi", "arm64", [arm_layer], make_config([arm_layer], architecture="arm64"),
                              media_type=OCI_MANIFEST if media_type == OCI_INDEX else busybox_image_type())
    amd = registry.push_image("multi", "amd64", busybox_image.layers, busybox_image.config,
                              media_type=OCI_MANIFEST if media_type == OCI_INDEX else busybox_image_type())
    digest = registry.push_index("multi", "latest", [(arm, "linux", "arm64"), (amd, "linux", "amd64")],
                                 media_type=media_type)
    image, messages = pull(store, op, f"{registry.host}/multi")
    assert image.id == busybox_image.image_id
    assert {"status": f"Digest: {digest}"} in messages  # the list's digest, as docker prints it
    assert image.repo_digests == [f"{registry.host}/multi@{digest}"]


def busybox_image_type() -> str:
    return "application/vnd.docker.distribution.manifest.v2+json"


def test_errors_in_dockers_words(store, op, registry, busybox_image):
    with pytest.raises(RegistryNotFound) as caught:
        pull(store, op, busybox_image.name, "nosuch")
    assert str(caught.value) == (f"manifest for {registry.host}/busybox:nosuch not found: manifest unknown: "
                                 f"manifest unknown")
    with pytest.raises(RegistryNotFound) as caught:
        pull(store, op, f"{registry.host}/nosuch/repo")
    # distribution 2.8 answers MANIFEST_UNKNOWN for a repository it doesn't have (Docker Hub answers DENIED)
    assert str(caught.value) == (f"manifest for {registry.host}/nosuch/repo:latest not found: manifest unknown: "
                                 f"manifest unknown")
    with pytest.raises(RegistryUnavailable) as caught:
        pull(store, op, "127.0.0.1:1/busybox")
    assert str(caught.value) == 'Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused'
    assert store.list(op) == []


def blob_file(registry, digest: str):
    hex_digest = digest.split(":", 1)[1]
    return registry.root / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256" / hex_digest[:2] / \
        hex_digest / "data"


def test_a_corrupt_layer_fails_the_pull_and_leaves_nothing(store, fresh_vch, op, registry):
    good = make_layer([("file", "good", b"fine\n" * 1000, 0o644)])
    bad = make_layer([("file", "bad", b"to be corrupted\n" * 1000, 0o644)])
    pushed = registry.push_image("corrupt", "latest", [good, bad], make_config([good, bad]))
    path = blob_file(registry, bad.digest)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")  # the registry serves what it has
    before = layer_folders(fresh_vch)
    with pytest.raises(VerificationFailed) as caught:
        pull(store, op, pushed.reference)
    assert str(caught.value) == f"filesystem layer verification failed for digest {bad.digest}"
    assert layer_folders(fresh_vch) == before == {"scratch"}
    assert store.list(op) == [] and store.stats()["layers"] == 0


def test_a_corrupt_config_or_manifest_fails_the_pull(store, fresh_vch, op, registry):
    layer = make_layer([("file", "c", b"config test\n", 0o644)])
    config = make_config([layer], {"Cmd": ["true"]})
    pushed = registry.push_image("badconfig", "latest", [layer], config)
    path = blob_file(registry, "sha256:" + hashlib.sha256(config).hexdigest())
    path.write_bytes(path.read_bytes().replace(b"true", b"fals"))
    with pytest.raises(VerificationFailed, match=f"image config verification failed for digest {pushed.image_id}"):
        pull(store, op, pushed.reference)
    layer2 = make_layer([("file", "m", b"manifest test\n", 0o644)])
    pushed2 = registry.push_image("badmanifest", "latest", [layer2], make_config([layer2]))
    path = blob_file(registry, pushed2.manifest_digest)
    path.write_bytes(path.read_bytes().replace(b'"schemaVersion": 2', b'"schemaVersion":  2'))
    with pytest.raises(VerificationFailed, match="manifest verification failed for digest"):
        pull(store, op, pushed2.reference)
    assert layer_folders(fresh_vch) == {"scratch"}


def test_windows_images_are_refused(store, op, registry):
    layer = make_layer([("file", "w", b"w\n", 0o644)])
    pushed = registry.push_image("windows", "latest", [layer], make_config([layer], os_name="windows"))
    with pytest.raises(errors.NotSupported, match='image operating system "windows" cannot be used on this platform'):
        pull(store, op, pushed.reference)


def test_concurrent_pulls(store, op, registry, busybox_volume_image):
    import threading
    outcomes: list = []

    def one():
        try:
            outcomes.append(pull(store, op, busybox_volume_image.reference)[0].id)
        except Exception as err:  # noqa: BLE001 - collected for the assertion
            outcomes.append(err)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert outcomes == [busybox_volume_image.image_id] * 4
    assert store.stats() == {"layers": 2, "images": 1}
