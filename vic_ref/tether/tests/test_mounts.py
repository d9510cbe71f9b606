"""Volume mounts in the launcher: a real ext4 volume image mounted by label in a container's mount namespace
(nsinit run directly), copy on first mount, read-only, capacity, and the loop device gone afterwards."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from vic_ref.config.executor import COPY_NEW, URL, MountSpec
from vic_ref.portlayer.storage.volume_fs import format_ext4, label
from vic_ref.tether import mounts

NSINIT = Path(mounts.__file__).with_name("nsinit.py")
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
root_only = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(BUSYBOX),
                               reason="loop and overlay mounts need root and busybox-static")


@pytest.fixture
def image_root(tmp_path) -> Path:
    """A busybox root with image content under /data (a folder of mode 0750 with a file)."""
    root = tmp_path / "image"
    (root / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    for applet in ("sh", "cat", "ls", "df", "dd", "echo", "stat", "touch"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "data").mkdir(mode=0o750)
    os.chmod(root / "data", 0o750)
    (root / "data" / "from-image").write_text("image content\n")
    return root


def volume_image(tmp_path: Path, name: str, mb: int = 64) -> str:
    data = tmp_path / f"{name}-flat.vmdk"
    data.mkdir()
    format_ext4(str(data), mb * 1024, label(name))
    return str(data)


def run(tmp_path: Path, image_root: Path, script: str, volumes: list[dict]) -> tuple[int, str, list[dict]]:
    top = tmp_path / "c"
    for name in ("up", "work"):
        shutil.rmtree(top / name, ignore_errors=True)
        (top / name).mkdir(parents=True)
    reports, theirs = socket.socketpair()
    spec = {"mode": "primary", "rootfs": str(top / "rootfs"), "lower": [str(image_root)], "upper": str(top / "up"),
            "work": str(top / "work"), "binds": [], "path": "/bin/sh", "args": ["sh", "-c", script], "env": [],
            "dir": "/", "user": "", "group": "", "tty": False, "hostname": "c", "volumes": volumes,
            "report_fd": theirs.fileno()}
    fd = os.memfd_create("spec", 0)
    os.write(fd, json.dumps(spec).encode())
    os.lseek(fd, 0, os.SEEK_SET)
    done = subprocess.run([sys.executable, "-S", str(NSINIT), str(fd)], pass_fds=[fd, theirs.fileno()],
                          capture_output=True, text=True, timeout=60)
    os.close(fd)
    theirs.close()
    raw = b""
    while chunk := reports.recv(65536):
        raw += chunk
    reports.close()
    return done.returncode, done.stdout + done.stderr, [json.loads(line) for line in raw.splitlines()]


def vol(name: str, image: str, path: str = "/data", *, readonly=False, copy=True) -> dict:
    return {"name": name, "label": label(name), "image": image, "path": path, "readonly": readonly, "copy": copy}


def loop_devices_of(image: str) -> list[str]:
    out = subprocess.run(["losetup", "-j", image], capture_output=True, text=True).stdout
    return [line.split(":")[0] for line in out.splitlines()]


@root_only
def test_mount_copy_persist_readonly_capacity(tmp_path, image_root):
    image = volume_image(tmp_path, "v1")
    rc, out, _ = run(tmp_path, image_root, "stat -c %a /data; ls /data; echo 1 > /data/f; df -Pk /data",
                     [vol("v1", image)])
    assert rc == 0, out
    lines = out.splitlines()
    assert lines[:2] == ["750", "from-image"]  # the image's mode and content; lost+found stays hidden
    (df,) = [line for line in lines if line.startswith(f"/dev/disk/by-label/{label('v1')}")]
    assert 55_000 < int(df.split()[1]) <= 64 * 1024 and df.split()[-1] == "/data"
    assert loop_devices_of(image) == []  # the loop device went with the container's namespace
    # a second container: the data is there, the image content is not copied again
    (image_root / "data" / "from-image").write_text("changed\n")
    rc, out, _ = run(tmp_path, image_root, "cat /data/f /data/from-image", [vol("v1", image)])
    assert (rc, out) == (0, "1\nimage content\n")
    rc, out, _ = run(tmp_path, image_root, "cat /data/f; echo 2 > /data/f", [vol("v1", image, readonly=True)])
    assert rc != 0 and out.startswith("1\n") and "Read-only file system" in out
    rc, out, _ = run(tmp_path, image_root, "dd if=/dev/zero of=/data/fill bs=1M count=100", [vol("v1", image)])
    assert rc == 1 and "No space left on device" in out


@root_only
def test_nocopy_and_new_path(tmp_path, image_root):
    image = volume_image(tmp_path, "v2", 16)
    rc, out, _ = run(tmp_path, image_root, "ls -A /data; ls -A /new/dir", [vol("v2", image, copy=False),
                                                                          vol("v2b", volume_image(tmp_path, "v2b", 16),
                                                                              "/new/dir")])
    assert (rc, out) == (0, "")


@root_only
def test_mount_over_a_file_fails(tmp_path, image_root):
    (image_root / "afile").write_text("x")
    rc, _, reports = run(tmp_path, image_root, "true", [vol("v3", volume_image(tmp_path, "v3", 16), "/afile")])
    assert rc == 125
    assert reports[-1] == {"error": f"mounting /dev/disk/by-label/{label('v3')} on /afile failed: not a directory",
                           "code": 125}


def test_volume_specs_from_config(tmp_path):
    image = tmp_path / "x-flat.vmdk"
    image.write_bytes(b"")
    disk = SimpleNamespace(label="abc", formatted="ext4", data=str(image))
    channel = SimpleNamespace(disks=lambda: [disk])
    specs = mounts.volume_specs({"b": MountSpec(source=URL(scheme="label", path="abc"), path="/z", mode="ro",
                                                copy_mode=COPY_NEW),
                                 "a": MountSpec(source=URL(scheme="label", path="abc"), path="/a", mode="rw,nocopy")},
                                channel, wait=0)
    assert [(s["name"], s["path"], s["readonly"], s["copy"]) for s in specs] == [("a", "/a", False, False),
                                                                                 ("b", "/z", True, True)]
    with pytest.raises(mounts.MountError, match="timed out waiting for nope to appear"):
        mounts.volume_specs({"n": MountSpec(source=URL(scheme="label", path="nope"), path="/n")}, channel, wait=0)
    with pytest.raises(mounts.MountError, match="unsupported volume mount type for n: smb"):
        mounts.volume_specs({"n": MountSpec(source=URL.parse("smb://host/x"), path="/n")}, channel, wait=0)
    (nfs,) = mounts.volume_specs({"n": MountSpec(source=URL.parse("nfs://host/x/volumes/n"), path="/n",
                                                 mode="vers=3,addr=host,ro", copy_mode=COPY_NEW)}, channel, wait=0)
    assert (nfs["nfs"], nfs["path"], nfs["readonly"], nfs["copy"]) == ("nfs://host/x/volumes/n", "/n", True, True)
