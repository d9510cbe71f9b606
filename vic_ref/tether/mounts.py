"""Volume mounts of a container (VIC's tether `setMounts`/`MountLabel`, vic-behaviour.md §4.8). Standard library
only: the launcher (`nsinit.py`, run as a script) imports it as well as the tether.

Two halves:
- `volume_specs` (the tether, before the launch): each `label:` mount spec of the executor config, sorted by path,
  with the disk of that label the guest channel shows (a volume disk's data is an ext4 image file) → plain dicts for
  the launcher's spec: {label, image, path, readonly, copy}. A missing disk is waited for a moment, as VIC waits for
  /dev/disk/by-label; any other scheme is VIC's `unsupported volume mount type`.
- `attach` then `mount_all` (the launcher's namespace init, inside the container's own mount namespace): before the
  chroot each image gets a loop device (LOOP_CONFIGURE with autoclear: it detaches by itself once nothing holds it)
  and a node `/dev/disk/by-label/<label>` in the container's /dev; after the chroot the filesystem is mounted from
  that node at `/.tether/.filesystem-by-label/<label>` (noatime), an empty volume gets a copy of the image content
  under the path it will cover (copy mode CopyNew, VIC's copy on first mount; the path's owner and mode too), its
  `.vic.vol.data` is bind-mounted at the path (read-only when asked), and the staging mount and the node go again.
  Everything lives in the container's mount namespace only: when its last process ends the kernel unmounts it all
  and the loop device detaches, so the next container that mounts the volume finds its data on the datastore.
- NFS volumes (`nfs://host/path` specs): the tether mounts the export's directory on the host first (a FUSE client
  over libnfs, `vic_ref/tether/nfs.py`: this kernel has no NFS client) and puts that directory in the volume's
  `staged`; `attach` bind-mounts it into the container's staging folder and `mount_one` continues as for a disk
  (copy on first mount, the bind at the path, read-only when the options say `ro`).
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
import stat
import struct
import time

COPY_NEW = 2  # executor.CopyMode
DATA_DIR = ".vic.vol.data"
STAGING = "/.tether/.filesystem-by-label"
BY_LABEL = "dev/disk/by-label"
MS_RDONLY, MS_NOATIME, MS_REMOUNT, MS_BIND = 1, 1024, 32, 4096
MNT_DETACH = 2
LOOP_CTL_GET_FREE = 0x4C82
LOOP_CONFIGURE = 0x4C0A
LO_FLAGS_AUTOCLEAR = 4
LOOP_MAJOR = 7
DISK_WAIT = 10.0

_libc = ctypes.CDLL(None, use_errno=True)


class MountError(Exception):
    """A volume can't be mounted: the text is what `docker start` reports."""


# -- the tether's half -----------------------------------------------------------------------------------------------
def volume_specs(mounts: dict, channel, *, wait: float = DISK_WAIT) -> list[dict]:
    """The launcher's volume list from the executor config's `mounts` (name → MountSpec) and the guest channel."""
    out = []
    for name, spec in sorted(mounts.items(), key=lambda item: item[1].path):
        scheme = spec.source.scheme
        mode = [flag.strip() for flag in (spec.mode or "").split(",")]
        if scheme == "nfs":
            out.append({"name": name, "label": f"nfs-{name}", "nfs": str(spec.source), "path": spec.path,
                        "readonly": "ro" in mode, "copy": spec.copy_mode == COPY_NEW})
            continue
        if scheme != "label":
            raise MountError(f"unsupported volume mount type for {name}: {scheme}")
        label = spec.source.path or spec.source.host
        disk = _find_disk(channel, label, wait)
        image = disk.data if disk is not None else None
        if not image or not os.path.isfile(image):
            raise MountError(f"timed out waiting for {label} to appear")
        out.append({"name": name, "label": label, "image": image, "path": spec.path, "readonly": "ro" in mode,
                    "copy": spec.copy_mode == COPY_NEW})
    return out


def _find_disk(channel, label: str, wait: float):
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        for disk in channel.disks():
            if disk.label == label and disk.formatted == "ext4":
                return disk
        if time.monotonic() >= deadline:
            return None
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


# -- the launcher's half: loop devices (before the chroot) ---------------------------------------------------------
def _loop_config(fd: int) -> bytes:
    """struct loop_config {u32 fd; u32 block_size; struct loop_info64 info; u64 reserved[8]} with autoclear."""
    info = struct.pack("=QQQQQIIII64s64s32s2Q", 0, 0, 0, 0, 0, 0, 0, 0, LO_FLAGS_AUTOCLEAR, b"", b"", b"", 0, 0)
    return struct.pack("=II", fd, 0) + info + bytes(64)


def attach_loop(image: str) -> tuple[int, int]:
    """A loop device over `image` that detaches itself when the last user lets go: (its open fd, its rdev)."""
    backing = os.open(image, os.O_RDWR | os.O_CLOEXEC)
    try:
        control = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
        try:
            for _ in range(64):
                number = fcntl.ioctl(control, LOOP_CTL_GET_FREE)
                path = f"/dev/loop{number}"
                if not os.path.exists(path):
                    try:
                        os.mknod(path, 0o660 | stat.S_IFBLK, os.makedev(LOOP_MAJOR, number))
                    except FileExistsError:
                        pass
                device = os.open(path, os.O_RDWR | os.O_CLOEXEC)
                try:
                    fcntl.ioctl(device, LOOP_CONFIGURE, _loop_config(backing))
                except OSError as err:
                    os.close(device)
                    if err.errno == errno.EBUSY:
                        continue  # another launcher took it first
                    raise
                return device, os.fstat(device).st_rdev
        finally:
            os.close(control)
    finally:
        os.close(backing)
    raise OSError(errno.EBUSY, "no free loop device")


def attach(volumes: list[dict], rootfs: str) -> list[dict]:
    """Give each volume a loop device and its `/dev/disk/by-label/<label>` node in the container's /dev."""
    attached = []
    by_label = os.path.join(rootfs, BY_LABEL)
    try:
        for volume in volumes:
            if volume.get("nfs"):
                stage = os.path.join(rootfs, STAGING.lstrip("/"), volume["label"])
                try:
                    os.makedirs(stage, exist_ok=True)
                    _mount(volume["staged"], stage, None, MS_BIND)
                except (OSError, KeyError) as err:
                    raise MountError(f"mounting {volume['nfs']} on {volume['path']} failed: "
                                     f"{getattr(err, 'strerror', None) or err}") from None
                attached.append(dict(volume))
                continue
            try:
                fd, rdev = attach_loop(volume["image"])
            except OSError as err:
                raise MountError(f"mounting {volume['label']} on {volume['path']} failed: no loop device: "
                                 f"{err.strerror or err}") from None
            attached.append({**volume, "loop_fd": fd})
            os.makedirs(by_label, exist_ok=True)
            node = os.path.join(by_label, volume["label"])
            if os.path.lexists(node):
                os.unlink(node)
            os.mknod(node, 0o600 | stat.S_IFBLK, rdev)
    except BaseException:
        release(attached)
        raise
    return attached


def release(attached: list[dict]) -> None:
    for volume in attached:
        fd = volume.pop("loop_fd", None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


# -- the launcher's half: mounts (inside the chroot) ---------------------------------------------------------------
def _mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    result = _libc.mount(source.encode() if source else None, target.encode(), fstype.encode() if fstype else None,
                         ctypes.c_ulong(flags), data.encode() if data is not None else None)
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _umount(target: str) -> None:
    _libc.umount2(target.encode(), MNT_DETACH)


def mount_all(attached: list[dict]) -> None:
    """Mount every attached volume at its path (we are chrooted in the container's root); MountError on failure.
    The loop fds are closed whatever happens (the mounts hold the devices from now on)."""
    try:
        for volume in attached:
            mount_one(volume)
    finally:
        release(attached)
        _remove_nodes(attached)


def mount_one(volume: dict) -> None:
    label, target = volume["label"], volume["path"]
    stage = f"{STAGING}/{label}"
    if volume.get("nfs"):
        device = volume["nfs"]  # already at the stage (attach); the export's directory is the data itself
    else:
        device = f"/{BY_LABEL}/{label}"
        try:
            os.makedirs(stage, exist_ok=True)
            _mount(device, stage, "ext4", MS_NOATIME)
        except OSError as err:
            raise MountError(f"mounting {device} on {stage} failed: {err.strerror or err}") from None
    try:
        data = os.path.join(stage, DATA_DIR)
        if volume.get("nfs") or not os.path.isdir(data):
            data = stage  # a volume without VIC's data folder: the filesystem itself
        try:
            before = os.stat(target)
        except FileNotFoundError:
            before = None
        if before is not None and not stat.S_ISDIR(before.st_mode):
            raise MountError(f"mounting {device} on {target} failed: not a directory")
        if before is None:
            os.makedirs(target, 0o755, exist_ok=True)
        elif _empty(data):
            if volume.get("copy") and not _empty(target):
                copy_tree(target, data)
            os.chown(data, before.st_uid, before.st_gid)
            os.chmod(data, stat.S_IMODE(before.st_mode))
        try:
            _mount(data, target, None, MS_BIND)
            if volume.get("readonly"):
                _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        except OSError as err:
            raise MountError(f"mounting {device} on {target} failed: {err.strerror or err}") from None
    finally:
        _umount(stage)  # the bind mount at the path keeps the filesystem
        try:
            os.rmdir(stage)
        except OSError:
            pass


def _remove_nodes(attached: list[dict]) -> None:
    for volume in attached:
        try:
            os.unlink(f"/{BY_LABEL}/{volume['label']}")
        except OSError:
            pass


def _empty(path: str) -> bool:
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except OSError:
        return True


def copy_tree(src: str, dst: str) -> None:
    """Copy the image content under `src` into the empty volume at `dst`: files, links, devices, owners, modes,
    times (VIC copies what the mount shadows before mounting)."""
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        target_dir = dst if rel == "." else os.path.join(dst, rel)
        for name in dirnames + filenames:
            source = os.path.join(dirpath, name)
            target = os.path.join(target_dir, name)
            st = os.lstat(source)
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                os.mkdir(target, stat.S_IMODE(mode))
            elif stat.S_ISLNK(mode):
                os.symlink(os.readlink(source), target)
            elif stat.S_ISREG(mode):
                shutil.copyfile(source, target, follow_symlinks=False)
            else:
                try:
                    os.mknod(target, mode, st.st_rdev)
                except OSError:
                    continue
            os.lchown(target, st.st_uid, st.st_gid)
            if not stat.S_ISLNK(mode):
                os.chmod(target, stat.S_IMODE(mode))
                os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


__all__ = ["volume_specs", "attach", "mount_all", "release", "copy_tree", "MountError", "attach_loop"]
