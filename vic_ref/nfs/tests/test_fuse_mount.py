"""The FUSE mount of an NFS directory, driven with ordinary shell tools, checked through NfsClient and on disk."""
from __future__ import annotations

import os
import stat
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from vic_ref.nfs.fuse_mount import NfsMountError, is_mounted, start_mount, stop_mount
from vic_ref.nfs.libnfs import NfsClient


def sh(script: str, user: int | None = None, check: bool = True) -> subprocess.CompletedProcess:
    command = ["sh", "-c", script]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if check:
        assert result.returncode == 0, f"{script!r} failed: {result.stderr}"
    return result


def new_mountpoint() -> Path:
    # Straight under /tmp: pytest's own temporary folders are 0700, which other users could not get through.
    return Path(tempfile.mkdtemp(prefix="vic-nfs-mnt-"))


@pytest.fixture(scope="module")
def volume(nfs_server):
    """A directory of the export (as a VIC volume would be), mounted read-write through FUSE."""
    name = f"vol-{uuid.uuid4().hex[:8]}"
    with NfsClient.connect(nfs_server.url()) as client:
        client.makedirs(f"volumes/{name}", 0o755)
    mountpoint = new_mountpoint()
    process = start_mount(nfs_server.url(path=f"volumes/{name}"), str(mountpoint))
    yield mountpoint, nfs_server.export_dir / "volumes" / name, nfs_server.url(path=f"volumes/{name}")
    stop_mount(process, str(mountpoint))
    mountpoint.rmdir()


def test_shell_writes_reach_the_server(volume):
    mountpoint, on_disk, url = volume
    assert sh(f"cd {mountpoint} && echo 1 > f && cat f").stdout == "1\n"
    sh(f"cd {mountpoint} && echo 2 >> f && printf 3 >> f")
    assert (mountpoint / "f").read_text() == "1\n2\n3"
    assert (on_disk / "f").read_text() == "1\n2\n3"
    with NfsClient.connect(url) as client:
        assert client.read_bytes("f") == b"1\n2\n3"
        client.write_bytes("from-client", b"written by libnfs")
    (on_disk / "from-disk").write_text("written on the server's disk")
    assert sh(f"cat {mountpoint}/from-client {mountpoint}/from-disk").stdout == \
        "written by libnfswritten on the server's disk"


def test_names_rename_mkdir_p_rm_r(volume):
    mountpoint, on_disk, _ = volume
    sh(f"cd {mountpoint} && mkdir -p a/b/c && echo x > a/b/c/file && mv a/b renamed && ln -s renamed/c/file sym "
       f"&& ln renamed/c/file hard")
    assert (on_disk / "renamed/c/file").read_text() == "x\n" and not (on_disk / "a/b").exists()
    assert sh(f"cat {mountpoint}/sym").stdout == "x\n" and os.readlink(on_disk / "sym") == "renamed/c/file"
    assert os.stat(on_disk / "hard").st_nlink == 2 and (mountpoint / "hard").stat().st_nlink == 2
    assert sorted(os.listdir(mountpoint)) == sorted(os.listdir(on_disk))
    sh(f"cd {mountpoint} && echo keep > kept && echo other > other && mv -n other kept")
    assert (on_disk / "kept").read_text() == "keep\n"  # RENAME_NOREPLACE honoured
    sh(f"cd {mountpoint} && rm -r renamed a sym hard other kept")
    assert not {"renamed", "a", "sym", "hard"} & set(os.listdir(on_disk))


def test_permissions_and_owners(volume):
    mountpoint, on_disk, _ = volume
    sh(f"cd {mountpoint} && mkdir perms && echo s > perms/secret && chmod 600 perms/secret && chown 1000:1001 "
       f"perms && chmod 750 perms && touch -m -d 2001-02-03T04:05:06 perms/secret")
    info = os.stat(on_disk / "perms")
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o750, 1000, 1001)
    assert int(os.stat(on_disk / "perms/secret").st_mtime) == 981173106
    listing = sh(f"ls -ln {mountpoint}").stdout
    assert any(line.startswith("drwxr-x---") and " 1000 1001 " in line and line.endswith(" perms")
               for line in listing.splitlines())
    # Not root: the server judges the caller's own uid (no default_permissions, no squashing to the URL's uid).
    denied = sh(f"cat {mountpoint}/perms/secret", user=1000, check=False)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    sh(f"touch {mountpoint}/perms/made-by-1000", user=1000)
    assert os.stat(on_disk / "perms/made-by-1000").st_uid == 1000
    refused = sh(f"touch {mountpoint}/not-yours", user=1000, check=False)  # the volume's top is root's 0755
    assert refused.returncode != 0 and "Permission denied" in refused.stderr


def test_big_file_and_df(volume):
    mountpoint, on_disk, _ = volume
    sh(f"head -c 4194304 /dev/urandom > {mountpoint}/big && dd if=/dev/zero of={mountpoint}/big bs=4096 seek=100 "
       "count=2 conv=notrunc status=none")
    assert (mountpoint / "big").read_bytes() == (on_disk / "big").read_bytes()
    assert os.path.getsize(on_disk / "big") == 4194304
    fields = sh(f"df -P {mountpoint}").stdout.splitlines()[1].split()
    assert fields[0].endswith(f":/mnt/nfs-vol/volumes/{on_disk.name}") and int(fields[1]) > 0
    source, _, kind, options = sh(f"grep ' {mountpoint} ' /proc/mounts").stdout.split()[:4]
    assert (source, kind) == (fields[0], "fuse.nfs") and "allow_other" in options and "noatime" in options


def test_bind_mount_in_a_new_mount_namespace(volume, tmp_path):
    mountpoint, on_disk, _ = volume
    (on_disk / "seen-inside").write_text("through the bind mount\n")
    target = tmp_path / "bound"
    target.mkdir()
    result = sh(f"unshare -m sh -c 'mount --bind {mountpoint} {target} && cat {target}/seen-inside "
                f"&& echo written > {target}/written-inside'")
    assert result.stdout == "through the bind mount\n"
    assert (on_disk / "written-inside").read_text() == "written\n"
    assert not is_mounted(str(target))  # the bind lived in the other namespace only


def test_read_only_mount_refuses_writes(nfs_server, volume):
    _, on_disk, url = volume
    (on_disk / "readable").write_text("read me\n")
    mountpoint = new_mountpoint()
    process = start_mount(url, str(mountpoint), readonly=True)
    try:
        assert sh(f"cat {mountpoint}/readable").stdout == "read me\n"
        for script in (f"touch {mountpoint}/new", f"echo x >> {mountpoint}/readable", f"mkdir {mountpoint}/d",
                       f"rm {mountpoint}/readable", f"chmod 600 {mountpoint}/readable"):
            refused = sh(script, check=False)
            assert refused.returncode != 0 and "Read-only file system" in refused.stderr, script
        assert (on_disk / "readable").read_text() == "read me\n"
    finally:
        stop_mount(process, str(mountpoint))
        mountpoint.rmdir()


def test_stop_leaves_no_mount_and_errors_are_reported(nfs_server, volume, tmp_path):
    _, _, url = volume
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    process = start_mount(url, str(mountpoint))
    assert is_mounted(str(mountpoint))
    stop_mount(process, str(mountpoint))
    assert process.returncode == 0 and not is_mounted(str(mountpoint))
    killed = start_mount(url, str(mountpoint))
    killed.kill()
    killed.wait()
    assert sh(f"ls {mountpoint}", check=False).stderr.endswith("Transport endpoint is not connected\n")
    stop_mount(killed, str(mountpoint))  # a dead server's mount is detached
    assert not is_mounted(str(mountpoint))
    with pytest.raises(NfsMountError, match="No such file or directory"):
        start_mount(nfs_server.url(path="volumes/no-such-volume"), str(mountpoint))
    with pytest.raises(NfsMountError, match="cannot mount"):
        start_mount("nfs://no-such-host.invalid/mnt/nfs-vol", str(mountpoint))
    assert not is_mounted(str(mountpoint)) and os.listdir(mountpoint) == []


def test_open_files_survive_unlink_and_rename_over(volume):
    mountpoint, on_disk, _ = volume
    (mountpoint / "doomed").write_text("still here")
    descriptor = os.open(mountpoint / "doomed", os.O_RDWR)
    try:
        os.unlink(mountpoint / "doomed")
        # libfuse hides it (.fuse_hidden*, like the kernel NFS client's .nfs* silly rename) until the last close.
        assert os.pread(descriptor, 100, 0) == b"still here" and not (on_disk / "doomed").exists()
    finally:
        os.close(descriptor)
    deadline = time.monotonic() + 5  # the kernel sends RELEASE after close(2) has returned
    while [name for name in os.listdir(on_disk) if name.startswith(".fuse_hidden")]:
        assert time.monotonic() < deadline, "the hidden file outlived its last close"
        time.sleep(0.02)
    (mountpoint / "old").write_text("old")
    (mountpoint / "new").write_text("new")
    descriptor = os.open(mountpoint / "old", os.O_RDONLY)
    try:
        os.rename(mountpoint / "new", mountpoint / "old")
        assert os.pread(descriptor, 10, 0) == b"old" and (on_disk / "old").read_text() == "new"
    finally:
        os.close(descriptor)
