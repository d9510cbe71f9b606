"""NfsClient against a real ganesha: files, directories, errors, big files, metadata, threads."""
from __future__ import annotations

import errno
import os
import stat
import threading
import time
import uuid

import pytest

from vic_ref.nfs.libnfs import NfsClient, libnfs_url


@pytest.fixture
def client(nfs_server):
    with NfsClient.connect(nfs_server.url()) as connected:
        yield connected


@pytest.fixture
def workdir(client, nfs_server):
    """A fresh directory in the export for one test: (name relative to the client, path on disk)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    client.mkdir(name, 0o755)
    yield name, nfs_server.export_dir / name
    client.remove_tree(name)


def test_file_round_trip_reaches_the_export_on_disk(client, workdir):
    name, on_disk = workdir
    client.write_bytes(f"{name}/hello.txt", b"hello\n", mode=0o640)
    assert client.read_bytes(f"{name}/hello.txt") == b"hello\n"
    assert (on_disk / "hello.txt").read_bytes() == b"hello\n"
    info = client.stat(f"{name}/hello.txt")
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o640
    assert info.st_size == 6 and info.st_ino == os.stat(on_disk / "hello.txt").st_ino
    (on_disk / "from-disk").write_bytes(b"written beside the server")
    assert client.read_bytes(f"{name}/from-disk") == b"written beside the server"


def test_directories(client, workdir):
    name, on_disk = workdir
    client.makedirs(f"{name}/a/b/c", 0o750)
    client.makedirs(f"{name}/a/b", 0o750)  # exist_ok
    assert (on_disk / "a/b/c").is_dir() and stat.S_IMODE(os.stat(on_disk / "a/b").st_mode) == 0o750
    client.write_bytes(f"{name}/a/f", b"x")
    assert sorted(client.listdir(f"{name}/a")) == ["b", "f"]
    entries = {entry.name: entry for entry in client.scandir(f"{name}/a")}
    assert stat.S_ISDIR(entries["b"].mode) and stat.S_ISREG(entries["f"].mode) and entries["f"].size == 1
    assert client.exists(f"{name}/a/b/c") and not client.exists(f"{name}/nope")
    client.rmdir(f"{name}/a/b/c")
    client.remove_tree(f"{name}/a")
    client.remove_tree(f"{name}/a")  # missing is fine
    assert client.listdir(name) == [] and not (on_disk / "a").exists()


def test_errors_carry_errno_and_path(client, workdir):
    name, _ = workdir
    with pytest.raises(FileNotFoundError) as missing:
        client.stat(f"{name}/missing")
    assert missing.value.errno == errno.ENOENT and missing.value.filename == f"{name}/missing"
    assert "missing" in str(missing.value)
    with pytest.raises(FileNotFoundError):
        client.open(f"{name}/missing")
    with pytest.raises(FileNotFoundError):
        client.unlink(f"{name}/missing")
    client.mkdir(f"{name}/d")
    with pytest.raises(FileExistsError) as exists:
        client.mkdir(f"{name}/d")
    assert exists.value.errno == errno.EEXIST
    client.write_bytes(f"{name}/d/f", b"")
    with pytest.raises(FileExistsError):
        client.open(f"{name}/d/f", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    with pytest.raises(OSError) as not_empty:
        client.rmdir(f"{name}/d")
    assert not_empty.value.errno == errno.ENOTEMPTY
    with pytest.raises(NotADirectoryError):
        client.listdir(f"{name}/d/f")
    with pytest.raises(FileExistsError):
        client.makedirs(f"{name}/d", exist_ok=False)


def test_big_file_with_offsets(client, workdir):
    name, on_disk = workdir
    data = bytearray(os.urandom(5 * 1024 * 1024 + 123))
    client.write_bytes(f"{name}/big", bytes(data))
    assert client.read_bytes(f"{name}/big") == data
    patch = os.urandom(70_000)
    with client.open(f"{name}/big", os.O_RDWR) as handle:
        assert handle.pwrite(patch, 3_000_000) == len(patch)
        data[3_000_000:3_000_000 + len(patch)] = patch
        assert handle.pread(100_000, 2_990_000) == data[2_990_000:3_090_000]
        assert handle.pread(1000, len(data) - 10) == data[-10:]
        assert handle.pread(1000, len(data) + 5) == b""
        handle.fsync()
        handle.ftruncate(4096)
        assert handle.fstat().st_size == 4096
    assert (on_disk / "big").read_bytes() == data[:4096]
    with client.open(f"{name}/sparse", os.O_WRONLY | os.O_CREAT, 0o600) as handle:
        handle.pwrite(b"end", 1_000_000)
    assert client.stat(f"{name}/sparse").st_size == 1_000_003
    assert client.read_bytes(f"{name}/sparse")[:10] == b"\0" * 10
    assert client.readmax > 0 and client.writemax > 0


def test_metadata_links_and_renames(client, workdir):
    name, on_disk = workdir
    client.write_bytes(f"{name}/f", b"12345")
    client.chmod(f"{name}/f", 0o600)
    client.chown(f"{name}/f", 1000, 1001)
    client.chown(f"{name}/f", -1, 1002)  # -1 keeps the uid
    info = os.stat(on_disk / "f")
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o600, 1000, 1002)
    client.utimes(f"{name}/f", (1_000_000_000.5, 978_307_200.25))
    info = client.stat(f"{name}/f")
    assert (info.st_atime_ns, info.st_mtime_ns) == (1_000_000_000_500_000_000, 978_307_200_250_000_000)
    before = time.time()
    client.utimes(f"{name}/f")
    assert client.stat(f"{name}/f").st_mtime >= before - 5
    client.truncate(f"{name}/f", 2)
    assert client.read_bytes(f"{name}/f") == b"12"
    client.symlink("f", f"{name}/link")
    assert client.readlink(f"{name}/link") == "f" and os.readlink(on_disk / "link") == "f"
    assert stat.S_ISLNK(client.lstat(f"{name}/link").st_mode) and stat.S_ISREG(client.stat(f"{name}/link").st_mode)
    client.link(f"{name}/f", f"{name}/hard")
    assert client.stat(f"{name}/f").st_nlink == 2
    client.rename(f"{name}/hard", f"{name}/moved")
    assert sorted(client.listdir(name)) == ["f", "link", "moved"]
    client.access(f"{name}/f", os.R_OK | os.W_OK)
    vfs = client.statvfs("")
    assert vfs.f_blocks > 0 and vfs.f_bsize > 0 and vfs.f_namemax >= 255


def test_credentials_are_the_servers_to_judge(client, workdir):
    name, on_disk = workdir
    client.write_bytes(f"{name}/root-only", b"secret", mode=0o600)
    try:
        client.set_credentials(1000, 1000)
        with pytest.raises(PermissionError):
            client.read_bytes(f"{name}/root-only")
        with pytest.raises(PermissionError):
            client.write_bytes(f"{name}/new", b"")  # the directory is root's, 0755
        client.set_credentials(0, 0)
        client.chmod(name, 0o777)
        client.set_credentials(1000, 1000, (1000, 27))
        client.write_bytes(f"{name}/mine", b"")
        assert (os.stat(on_disk / "mine").st_uid, os.stat(on_disk / "mine").st_gid) == (1000, 1000)
    finally:
        client.set_credentials(0, 0)


def test_subdirectory_urls(nfs_server, client, workdir):
    name, _ = workdir
    client.makedirs(f"{name}/volumes/v1")
    client.write_bytes(f"{name}/volumes/v1/data", b"in v1")
    with NfsClient.connect(nfs_server.url(path=f"{name}/volumes/v1")) as inside:
        assert inside.listdir("") == ["data"] and inside.read_bytes("/data") == b"in v1"
        assert inside.listdir("../..") == ["data"]  # ".." stops at the URL's directory
    with pytest.raises(FileNotFoundError, match="nfs://"):
        NfsClient.connect(nfs_server.url(path=f"{name}/volumes/none"))
    with pytest.raises(NotADirectoryError):
        NfsClient.connect(nfs_server.url(path=f"{name}/volumes/v1/data"))


def test_unreachable_server_fails_fast():
    began = time.monotonic()
    with pytest.raises(OSError):
        NfsClient.connect("nfs://no-such-host.invalid/mnt/nfs-vol?uid=0&gid=0", timeout=5)
    with pytest.raises(OSError):
        NfsClient.connect("nfs://127.0.0.1/mnt/nfs-vol?nfsport=9&mountport=9", timeout=5)
    assert time.monotonic() - began < 10


def test_url_forms():
    assert libnfs_url("nfs://h.example.com/mnt/nfs-vol?uid=0&gid=0&proto=tcp&port=2049") == \
        "nfs://h.example.com/mnt/nfs-vol?uid=0&gid=0&proto=tcp&port=2049"
    assert libnfs_url("nfs://h:2050/e?uid=1") == "nfs://h/e?uid=1&nfsport=2050"
    with pytest.raises(ValueError):
        libnfs_url("http://h/e")


def test_one_client_from_many_threads(client, workdir):
    name, on_disk = workdir
    failures = []

    def work(index: int) -> None:
        try:
            for round_ in range(10):
                payload = f"{index}-{round_}".encode() * 1000
                client.write_bytes(f"{name}/t{index}", payload)
                assert client.read_bytes(f"{name}/t{index}") == payload
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert len(client.listdir(name)) == 6
