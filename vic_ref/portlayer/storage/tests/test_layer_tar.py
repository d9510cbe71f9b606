"""Layer tars into a layer's directory and back: overlay whiteouts, breakout refusal, byte-exact round trips."""
from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile

import pytest

from vic_ref.portlayer.storage import layer_tar
from vic_ref.testing.registry import busybox_layer, make_layer, volume_layer

ROOT = os.geteuid() == 0


def unpack(tmp_path, data: bytes, name: str = "layer"):
    root = tmp_path / name
    root.mkdir()
    return root, layer_tar.unpack(io.BytesIO(data), str(root))


def tar_of(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def entry(name: str, kind=tarfile.REGTYPE, **fields) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = fields.pop("mode", 0o644)
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def test_busybox_round_trip(tmp_path):
    layer = busybox_layer()
    root, result = unpack(tmp_path, layer.tar)
    assert result.diff_id == layer.diff_id and result.tar_size == len(layer.tar)
    assert os.readlink(root / "bin" / "sh") == "/bin/busybox"
    assert os.access(root / "bin" / "busybox", os.X_OK)
    assert stat.S_IMODE(os.stat(root / "tmp").st_mode) == 0o1777
    assert (root / "etc" / "passwd").read_bytes().startswith(b"root:x:0:0:")
    rebuilt = b"".join(layer_tar.export(result.tarsplit, str(root)))
    assert rebuilt == layer.tar  # byte for byte: docker load checks the diff ID


def test_whiteouts_become_overlay_whiteouts(tmp_path):
    layer = volume_layer()
    root, result = unpack(tmp_path, layer.tar)
    wget = os.lstat(root / "usr" / "bin" / "wget")
    assert stat.S_ISCHR(wget.st_mode) and wget.st_rdev == 0  # an overlayfs whiteout
    assert not (root / "usr" / "bin" / ".wh.wget").exists()
    assert layer_tar.is_opaque(str(root / "opt"))
    assert not (root / "opt" / ".wh..wh..opq").exists()
    assert os.stat(root / "opt" / "tool").st_ino == os.stat(root / "opt" / "tool-link").st_ino
    assert b"".join(layer_tar.export(result.tarsplit, str(root))) == layer.tar


def test_pack_turns_them_back(tmp_path):
    root, _ = unpack(tmp_path, volume_layer().tar)
    out = io.BytesIO()
    layer_tar.pack(str(root), out)
    names = tarfile.open(fileobj=io.BytesIO(out.getvalue())).getnames()
    assert "usr/bin/.wh.wget" in names and "opt/.wh..wh..opq" in names
    assert "usr/bin/wget" not in names
    again, _ = unpack(tmp_path, out.getvalue(), "again")  # and it applies again the same way
    assert stat.S_ISCHR(os.lstat(again / "usr" / "bin" / "wget").st_mode)


@pytest.mark.parametrize("members, message", [
    ([(entry("../evil"), b"x")], "outside of the layer"),
    ([(entry("a/../../evil"), b"x")], "outside of the layer"),
    ([(entry("link", tarfile.SYMTYPE, linkname="../../../etc"), None)], "invalid symlink"),
    ([(entry("hard", tarfile.LNKTYPE, linkname="../outside"), None)], "outside of the layer"),
    ([(entry("dir", tarfile.SYMTYPE, linkname="/tmp"), None), (entry("dir/file"), b"x")],
     "is a symlink in the same layer"),
])
def test_breakouts_are_refused(tmp_path, members, message):
    root = tmp_path / "layer"
    root.mkdir()
    with pytest.raises(layer_tar.BreakoutError, match=message):
        layer_tar.unpack(io.BytesIO(tar_of(*members)), str(root))
    assert not (tmp_path / "evil").exists() and not (tmp_path / "outside").exists()


def test_absolute_names_stay_inside(tmp_path):
    root, _ = unpack(tmp_path, tar_of((entry("/etc/abs"), b"x"), (entry("/../../up"), b"y")))
    assert (root / "etc" / "abs").read_bytes() == b"x"
    assert (root / "up").read_bytes() == b"y"


def test_duplicate_entries_keep_their_bytes(tmp_path):
    data = tar_of((entry("f"), b"first"), (entry("f"), b"second version"))
    root, result = unpack(tmp_path, data)
    assert (root / "f").read_bytes() == b"second version"
    assert b"".join(layer_tar.export(result.tarsplit, str(root))) == data


def test_file_replaces_directory_and_back(tmp_path):
    data = tar_of((entry("x", tarfile.DIRTYPE, mode=0o755), None), (entry("x/y"), b"1"), (entry("x"), b"file"),
                  (entry("z"), b"file"), (entry("z", tarfile.DIRTYPE, mode=0o700), None))
    root, _ = unpack(tmp_path, data)
    assert (root / "x").read_bytes() == b"file"
    assert (root / "z").is_dir() and stat.S_IMODE(os.stat(root / "z").st_mode) == 0o700


@pytest.mark.skipif(not ROOT, reason="ownership and devices need root")
def test_ownership_modes_devices_xattrs(tmp_path):
    dev = entry("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3)
    owned = entry("home/u/file", uid=1000, gid=1001, mode=0o4755, mtime=1234567890)
    xattr = entry("cap")
    xattr.pax_headers = {"SCHILY.xattr.user.test": "value"}
    root, _ = unpack(tmp_path, tar_of((dev, None), (owned, b"#!/bin/sh\n"), (xattr, b"x"),
                                      (entry("fifo", tarfile.FIFOTYPE), None)))
    st = os.lstat(root / "dev" / "null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    st = os.stat(root / "home" / "u" / "file")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), int(st.st_mtime)) == (1000, 1001, 0o4755, 1234567890)
    assert stat.S_ISFIFO(os.lstat(root / "fifo").st_mode)
    try:
        assert os.getxattr(root / "cap", "user.test") == b"value"
    except OSError:
        pytest.skip("this filesystem has no user xattrs")


def test_gnu_tar_long_names_round_trip(tmp_path):
    """A tar written by GNU tar (GNU format: ././@LongLink entries), not by Python."""
    src = tmp_path / "src"
    deep = src / ("d" * 80) / ("e" * 80)
    deep.mkdir(parents=True)
    (deep / ("f" * 120)).write_bytes(b"long name\n" * 100)
    os.symlink("f" * 120, deep / ("l" * 110))
    archive = tmp_path / "gnu.tar"
    subprocess.run(["tar", "--format=gnu", "-C", str(src), "-cf", str(archive), "."], check=True)
    data = archive.read_bytes()
    root, result = unpack(tmp_path, data)
    assert (root / ("d" * 80) / ("e" * 80) / ("f" * 120)).read_bytes() == b"long name\n" * 100
    assert os.readlink(root / ("d" * 80) / ("e" * 80) / ("l" * 110)) == "f" * 120
    assert b"".join(layer_tar.export(result.tarsplit, str(root))) == data


def test_truncated_and_garbage(tmp_path):
    data = make_layer([("file", "a", b"x" * 5000, 0o644)]).tar
    root = tmp_path / "t"
    root.mkdir()
    with pytest.raises(layer_tar.LayerFormatError, match="unexpected EOF"):
        layer_tar.unpack(io.BytesIO(data[:1024 + 700]), str(root))
    root2 = tmp_path / "g"
    root2.mkdir()
    with pytest.raises(layer_tar.LayerFormatError):
        layer_tar.unpack(io.BytesIO(b"\x01" * 1024), str(root2))


def test_empty_tar(tmp_path):
    _, result = unpack(tmp_path, b"\0" * 1024)
    assert result.size == 0 and result.tar_size == 1024
