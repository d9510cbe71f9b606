"""The NFS volume store against a real NFS server (Debian's nfs-ganesha): VIC's layout on the export, what a scan
finds again, unfinished volumes, and the mount spec a join writes. The docker-level flows are in
conformance/docker_api/test_volumes_nfs_cli.py."""
from __future__ import annotations

import pytest

from vic_ref import errors
from vic_ref.portlayer.storage.nfs_volumes import MOUNT_OPTIONS, NfsVolumeStore, parse_ids
from vic_ref.testing.nfs_server import served_export


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from served_export(tmp_path_factory)


@pytest.fixture
def store(server):
    return NfsVolumeStore("nfs", server.url("localhost"))


def test_create_scan_remove_on_the_export(store, server, op):
    export = server.export_dir
    store.start(op)
    assert (export / "volumes").is_dir() and (export / "volumes_metadata").is_dir()
    store.create(op, "v1", {"DockerMetaData": b'{"Name": "v1"}', "extra": b"x"})
    assert (export / "volumes/v1").is_dir()
    assert (export / "volumes_metadata/v1/DockerMetaData").read_bytes() == b'{"Name": "v1"}'
    assert store.scan(op) == {"v1": {"DockerMetaData": b'{"Name": "v1"}', "extra": b"x"}}
    with pytest.raises(FileExistsError):
        store.create(op, "v1", {"k": b"v"})
    (export / "volumes/v1/data").write_text("kept")
    store.remove(op, "v1")
    assert not (export / "volumes/v1").exists() and not (export / "volumes_metadata/v1").exists()
    assert store.scan(op) == {}


def test_scan_deletes_a_volume_whose_create_never_finished(store, server, op):
    store.start(op)
    (server.export_dir / "volumes/half-made").mkdir()
    assert "half-made" not in store.scan(op)
    assert not (server.export_dir / "volumes/half-made").exists()


def test_volume_source_and_mount_options(store):
    assert store.volume_source("v") == "nfs://localhost/mnt/nfs-vol/volumes/v"
    assert store.mount_options() == f"{MOUNT_OPTIONS},addr=localhost"
    assert store.mount_options(readonly=True).endswith(",addr=localhost,ro")


def test_unreachable_export_is_unavailable(op):
    store = NfsVolumeStore("off", "nfs://127.0.0.1:1/mnt/nowhere?uid=0")
    with pytest.raises(errors.Unavailable, match="volume store off"):
        store.start(op)


@pytest.mark.parametrize("query, ids", [("", (1000, 1000)), ("uid=0", (0, 0)), ("uid=5&gid=7", (5, 7)),
                                        ("gid=3", (1000, 3))])
def test_ids_as_vic_reads_them(query, ids):
    assert parse_ids(f"nfs://h/p?{query}") == ids


def test_negative_ids_are_refused():
    with pytest.raises(errors.InvalidArgument, match="has invalid uid : \\(-1\\)"):
        parse_ids("nfs://h/p?uid=-1")
