"""The filesystem of a new volume disk, made by the appliance (VIC `pkg/vsphere/disk`: mkfs ext4 with the volume's
label, then the `.vic.vol.data` folder that hides lost+found from the container).

On ESX the appliance sees a hot-added disk as a block device and runs mkfs on it. The guest channel gives a guest a
disk's data instead (`GuestChannel.disks()`): a fresh disk's data is an empty folder, and formatting it puts an ext4
image of the disk's capacity in that folder's place, as mkfs fills a device. The sim then reports the disk as
formatted, with the filesystem's label (what /dev/disk/by-label shows), to every VM the disk is attached to.

mkfs runs with `-O ^resize_inode` (a volume never grows online), which gives the sizes VIC's volumes show in `df`
(1 GiB: 975.9M), and `-m 0`: the whole capacity is the container's, whoever its user is.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile

from ... import errors

DATA_DIR = ".vic.vol.data"  # VIC's VolumeDataDir: what is mounted at the container's path
LABEL_LENGTH = 16  # ext4's label limit
MKFS_OPTIONS = ("-q", "-F", "-O", "^resize_inode", "-m", "0", "-E", "nodiscard")


def label(name: str) -> str:
    """VIC's volume label: the first 16 hex characters of md5(name) (an ext4 label has at most 16)."""
    return hashlib.md5(name.encode()).hexdigest()[:LABEL_LENGTH]  # noqa: S324 - a label, not a secret


def mkfs_binary() -> str:
    found = shutil.which("mkfs.ext4") or shutil.which("mkfs.ext4", path="/sbin:/usr/sbin")
    if found is None:
        raise errors.Unavailable("mkfs.ext4 is not installed (e2fsprogs): volumes can't be created")
    return found


def format_ext4(data: str, capacity_kb: int, fs_label: str) -> None:
    """Make the disk whose data is at `data` an ext4 filesystem of `capacity_kb` labelled `fs_label`, with an empty
    `.vic.vol.data` (mode 0755) at its root."""
    mkfs = mkfs_binary()
    if os.path.isdir(data):
        if os.listdir(data):
            raise errors.InvalidState(f"the new volume disk at {data} is not empty")
        os.rmdir(data)
    with open(data, "wb") as handle:
        handle.truncate(capacity_kb * 1024)
    with tempfile.TemporaryDirectory(prefix="vic-vol-seed-") as seed:
        os.mkdir(os.path.join(seed, DATA_DIR), 0o755)
        os.chmod(os.path.join(seed, DATA_DIR), 0o755)
        done = subprocess.run([mkfs, *MKFS_OPTIONS, "-L", fs_label[:LABEL_LENGTH], "-d", seed, data],
                              capture_output=True, text=True)
    if done.returncode != 0:
        raise errors.InternalError(f"mkfs.ext4 failed: {(done.stderr or done.stdout).strip()}")


__all__ = ["label", "format_ext4", "DATA_DIR", "LABEL_LENGTH"]
