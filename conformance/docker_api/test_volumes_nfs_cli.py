"""NFS volume stores end to end (issue 6; VIC 1-19 case 16, vic-behaviour.md §2(a)2 and §4.8): a real NFS server
(Debian's nfs-ganesha), `vic-machine configure` adding it to a running VCH as `nfsfqdn`, and the real docker CLI
putting volumes there. What the VCH wrote is read back from the export's directory on this machine.
"""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from vic_ref.testing.nfs_server import served_export
from vic_ref.testing.processes import processes_running

from .conftest import ok

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="containers need root (mounts)"),
              pytest.mark.timeout(300)]

DEFAULT_STORE = "LocalDS_0/VIC:default"  # what `vic-ref up` configured
STORE = "nfsfqdn"


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A real NFS server for this module (it owns port 2049 while the module runs): (server, its export folder)."""
    for server in served_export(tmp_path_factory):
        yield server, Path(server.export_dir)


@pytest.fixture(scope="module")
def nfs_store(vch, export, vic_machine, busybox) -> str:
    """The VCH with the NFS store added by `vic-machine configure` (VIC's case 16, with the machine's FQDN)."""
    server, _ = export
    url = server.url(socket.gethostname())
    rc, out = vic_machine("configure", f"--volume-store={DEFAULT_STORE}", f"--volume-store={url}:{STORE}")
    assert rc == 0 and "Completed successfully" in out, out
    assert "cannot be brought online" not in out, out
    return url


def docker(docker_cli, *args: str, timeout: float = 90) -> str:
    return ok(docker_cli(*args, timeout=timeout)).strip()


def test_configure_brings_the_store_online(docker_cli, nfs_store, vic_machine, export):
    info = json.loads(docker(docker_cli, "info", "--format", "{{json .SystemStatus}}"))
    stores = dict((key, value) for key, value in info)["VolumeStores"].split()
    assert sorted(stores) == ["default", STORE]
    rc, out = vic_machine("inspect")
    assert rc == 0 and f"{STORE}: {nfs_store}" in out, out
    _, directory = export
    assert (directory / "volumes").is_dir() and (directory / "volumes_metadata").is_dir()


def test_volume_round_trips_file_content(docker_cli, busybox, nfs_store, export):
    _, directory = export
    assert docker(docker_cli, "volume", "create", "--opt", f"VolumeStore={STORE}", "--name", "nfs-data") == "nfs-data"
    docker(docker_cli, "run", "--rm", "-v", "nfs-data:/mydata", busybox, "sh", "-c",
           "echo hello from nfs > /mydata/f && mkdir -p /mydata/a/b && echo 2 > /mydata/a/b/g")
    assert docker(docker_cli, "run", "--rm", "-v", "nfs-data:/mydata", busybox, "cat", "/mydata/f") == "hello from nfs"
    # the data is on the export, where VIC's NFS store puts it, with the metadata beside it
    assert (directory / "volumes/nfs-data/f").read_text() == "hello from nfs\n"
    assert (directory / "volumes/nfs-data/a/b/g").read_text() == "2\n"
    model = json.loads((directory / "volumes_metadata/nfs-data/DockerMetaData").read_text())
    assert model["Name"] == "nfs-data" and model["DriverOpts"] == {"VolumeStore": STORE}
    (inspected,) = json.loads(docker(docker_cli, "volume", "inspect", "nfs-data"))
    assert inspected["Driver"] == "vsphere" and inspected["Options"] == {"VolumeStore": STORE}
    assert "nfs-data" in docker(docker_cli, "volume", "ls", "-q").split()


def test_read_only_mount(docker_cli, busybox, nfs_store):
    docker(docker_cli, "volume", "create", "--opt", f"VolumeStore={STORE}", "nfs-ro")
    rc, out, err = docker_cli("run", "--rm", "-v", "nfs-ro:/d:ro", busybox, "touch", "/d/x")
    assert rc == 1 and "Read-only file system" in out + err, (rc, out, err)


def test_running_containers_share_a_volume(docker_cli, busybox, nfs_store):
    """No disk, so no `device in use`: two running containers use one NFS volume and see each other's writes."""
    docker(docker_cli, "volume", "create", "--opt", f"VolumeStore={STORE}", "nfs-shared")
    first = docker(docker_cli, "run", "-d", "-v", "nfs-shared:/shared", busybox, "top")
    second = docker(docker_cli, "run", "-d", "-v", "nfs-shared:/shared", busybox, "top")
    try:
        docker(docker_cli, "exec", first, "sh", "-c", "echo from-first > /shared/note")
        assert docker(docker_cli, "exec", second, "cat", "/shared/note") == "from-first"
    finally:
        docker(docker_cli, "rm", "-f", first, second)


def test_stop_and_start_mount_again_and_leave_nothing_behind(docker_cli, busybox, nfs_store):
    """Each start mounts the volume again (a new tether: the VM powered off); a stop leaves no FUSE client and no
    mount on the host."""
    docker(docker_cli, "volume", "create", "--opt", f"VolumeStore={STORE}", "nfs-restart")
    cid = docker(docker_cli, "run", "-d", "-v", "nfs-restart:/d", busybox, "sh", "-c",
                 "echo $$ >> /d/starts; exec top")
    try:
        docker(docker_cli, "stop", "-t", "1", cid)
        assert not fuse_clients() and not fuse_mounts()
        docker(docker_cli, "start", cid)
        assert len(docker(docker_cli, "exec", cid, "cat", "/d/starts").split()) == 2
    finally:
        docker(docker_cli, "rm", "-f", cid)
    assert not fuse_clients() and not fuse_mounts()


def fuse_clients() -> list[int]:
    return processes_running(b"vic_ref.nfs.fuse_mount")


def fuse_mounts() -> list[str]:
    with open("/proc/self/mountinfo") as mountinfo:
        return [line for line in mountinfo if " fuse.nfs " in line]


def test_image_content_is_copied_into_a_new_volume(docker_cli, busybox, nfs_store, export):
    _, directory = export
    docker(docker_cli, "volume", "create", "--opt", f"VolumeStore={STORE}", "nfs-etc")
    listing = docker(docker_cli, "run", "--rm", "-v", "nfs-etc:/etc", busybox, "ls", "/etc").split()
    assert "passwd" in listing
    assert (directory / "volumes/nfs-etc/passwd").read_text().startswith("root:")
    # not copied again over what the volume holds now
    docker(docker_cli, "run", "--rm", "-v", "nfs-etc:/etc", busybox, "sh", "-c", "echo extra >> /etc/passwd")
    assert docker(docker_cli, "run", "--rm", "-v", "nfs-etc:/etc", busybox, "tail", "-n", "1", "/etc/passwd") == \
        "extra"


def test_remove_deletes_the_volume_from_the_export(docker_cli, busybox, nfs_store, export):
    _, directory = export
    docker(docker_cli, "volume", "create", "--opt", f"VolumeStore={STORE}", "nfs-gone")
    docker(docker_cli, "run", "--rm", "-v", "nfs-gone:/d", busybox, "sh", "-c", "echo x > /d/f")
    assert (directory / "volumes/nfs-gone/f").exists()
    assert docker(docker_cli, "volume", "rm", "nfs-gone") == "nfs-gone"
    assert not (directory / "volumes/nfs-gone").exists()
    assert not (directory / "volumes_metadata/nfs-gone").exists()
    assert "nfs-gone" not in docker(docker_cli, "volume", "ls", "-q").split()


def test_unreachable_store_is_reported_and_the_vch_runs_without_it(docker_cli, busybox, vic_machine, nfs_store):
    """Last: VIC's configure adds a store it can't reach; vic-machine names it and the VCH runs on without it. The
    configure restarts the appliance: the NFS store's volumes are found again, data and all."""
    unreachable = "nfs://127.0.0.1:1/mnt/nowhere?uid=0&gid=0"
    rc, out = vic_machine("configure", f"--volume-store={DEFAULT_STORE}", f"--volume-store={nfs_store}:{STORE}",
                          f"--volume-store={unreachable}:offline")
    assert rc == 0 and "Completed successfully" in out, out
    assert ("VolumeStore (offline) cannot be brought online - check network, nfs server, and --volume-store "
            "configurations") in out, out
    rc, out, err = docker_cli("volume", "create", "--opt", "VolumeStore=offline", "v-off")
    assert rc == 1 and "No volume store named (offline) exists" in out + err, (out, err)
    assert "nfs-data" in docker(docker_cli, "volume", "ls", "-q").split()
    assert docker(docker_cli, "run", "--rm", "-v", "nfs-data:/mydata", busybox, "cat", "/mydata/f") == "hello from nfs"
