"""The tether's launcher: what runs between the tether and a container process (standard library only).

Run as `python -S nsinit.py <fd>` (fd: an inherited memfd holding the JSON spec, so the container's `ps` shows no
spec), never imported by the container side. The tether is multi-threaded and
can't unshare a mount namespace itself (unshare(2) refuses CLONE_NEWNS in a threaded process), so it starts this
single-threaded helper with subprocess, and the helper does the namespace work.

Mode `primary` (the container's first process)::

    tether ── nsinit (outer: host PID namespace, new mount/UTS/IPC namespaces)
                └─ nsinit (init: PID 1 of the new PID namespace; chrooted; reaps orphans, like VIC's tether as PID 1)
                     └─ the container process (PID 2: its own session, user, working directory)

  The outer makes the namespaces (unshare NEWNS|NEWPID|NEWUTS|NEWIPC, `/` made rprivate) and forks the init. The init
  mounts the root filesystem (overlayfs: `lower` top first, `upper`, `work`) on `rootfs`, then `/proc` (of the new
  PID namespace), a tmpfs `/dev` with null, zero, full, random, urandom, tty, a devpts instance (`/dev/pts`,
  `/dev/ptmx`) and `/dev/shm`, bind-mounts the `binds` files (hosts, hostname, resolv.conf) over the image's, sets the
  hostname, chroots, resolves the user and the executable inside the root filesystem, and forks the process. Every
  mount lives in the container's mount namespace only: when its last process ends the kernel takes them all down, so
  nothing is left in the host's mount table whatever happens to the tether. The init ends when the container
  process does (the kernel then kills whatever else runs in the namespace) with its exit code: the status, or
  128+signal when a signal killed it; the outer passes that code on as its own.
  The init is not the container process (as in VIC, where the tether is PID 1): the process gets a signal's default
  action (`docker stop` of `sleep` ends it with 143 at once, as on VIC; Docker's own `sleep` as PID 1 ignores TERM).

Mode `exec` (an exec session): enter the init's namespaces (`/proc/<init_pid>/ns/{ipc,uts,mnt,pid}`), chroot into
`rootfs` and fork the process in the container's PID namespace; the helper stays outside and exits with its code.

A tty session's pty is opened inside the container (its own devpts instance, so `tty` and ttyname(3) find
`/dev/pts/N` there); the master goes back to the tether with the `started` report (SCM_RIGHTS).

Reports: JSON lines on the inherited `report_fd` (a Unix stream socket):
    {"init_pid": N}                     outer: the init's host PID (primary only)
    {"started": true, "pid": N}         the process runs (N: its PID as the helper's parent namespace sees it for
                                        exec; its PID inside the container for primary); `"pty": true` when the
                                        pty master comes with it
    {"error": "<text>", "code": C}      the launch failed (Docker's texts; C 127 not found, 126 not executable)
    {"exit": C}                         the process ended with Docker's exit code C
Then the helper exits with C as well.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import signal
import socket
import stat
import struct
import sys
import termios

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG = 1
TIOCSCTTY = 0x540E
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OVERLAY_OPTIONS_MAX = 3800  # the legacy mount(2) data page is 4096 bytes (guest-feasibility.md §4)

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                       data.encode() if data is not None else None), f"mount {fstype or source} on {target}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def sethostname(name: str) -> None:
    data = name.encode()
    _check(_libc.sethostname(data, len(data)), "sethostname")


def set_pdeathsig(sig: int) -> None:
    _libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


class Report:
    def __init__(self, fd: int):
        self.fd = fd

    def send(self, fds: tuple[int, ...] = (), **fields) -> None:
        if self.fd < 0:
            return
        data = (json.dumps(fields) + "\n").encode()
        try:
            if fds:
                with socket.socket(fileno=os.dup(self.fd)) as sock:
                    socket.send_fds(sock, [data], list(fds))
            else:
                os.write(self.fd, data)
        except OSError:
            pass


def exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1


# -- the root filesystem ---------------------------------------------------------------------------------------------
def mount_overlay(spec: dict) -> None:
    rootfs, lower, upper, work = spec["rootfs"], spec["lower"], spec["upper"], spec["work"]
    os.makedirs(rootfs, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    os.makedirs(upper, exist_ok=True)
    if not lower:
        mount(upper, rootfs, None, MS_BIND)
        return
    options = f"lowerdir={':'.join(lower)},upperdir={upper},workdir={work}"
    if len(options) > OVERLAY_OPTIONS_MAX:
        # short relative symlinks, mounted from their directory (guest-feasibility.md §4)
        links = os.path.join(os.path.dirname(work), "l")
        os.makedirs(links, exist_ok=True)
        for index, path in enumerate(lower):
            link = os.path.join(links, str(index))
            if os.path.islink(link):
                os.unlink(link)
            os.symlink(path, link)
        os.chdir(links)
        options = f"lowerdir={':'.join(str(i) for i in range(len(lower)))},upperdir={upper},workdir={work}"
    mount("overlay", rootfs, "overlay", 0, options)


DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))


def setup_rootfs(spec: dict) -> None:
    rootfs = spec["rootfs"]
    mount_overlay(spec)
    os.chdir("/")
    for name in ("proc", "dev", "etc", "sys", "tmp"):
        path = os.path.join(rootfs, name)
        if not os.path.isdir(path) and not os.path.lexists(path):
            os.makedirs(path, mode=0o1777 if name == "tmp" else 0o755, exist_ok=True)
    mount("proc", os.path.join(rootfs, "proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    dev = os.path.join(rootfs, "dev")
    mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755,size=65536k")
    for name, major, minor in DEVICES:
        path = os.path.join(dev, name)
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(path, 0o666)
    os.makedirs(os.path.join(dev, "pts"), exist_ok=True)
    os.makedirs(os.path.join(dev, "shm"), mode=0o1777, exist_ok=True)
    os.makedirs(os.path.join(dev, "mqueue"), exist_ok=True)
    try:
        mount("devpts", os.path.join(dev, "pts"), "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620")
        os.symlink("pts/ptmx", os.path.join(dev, "ptmx"))
    except OSError:
        os.mknod(os.path.join(dev, "ptmx"), 0o666 | stat.S_IFCHR, os.makedev(5, 2))
    mount("shm", os.path.join(dev, "shm"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("core", "/proc/kcore")):
        os.symlink(target, os.path.join(dev, name))
    for source, target in spec.get("binds") or []:
        path = os.path.join(rootfs, target.lstrip("/"))
        if os.path.islink(path) or os.path.isdir(path):
            continue  # an image that made it a link or a directory keeps it
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            with open(path, "a"):
                pass
        mount(source, path, None, MS_BIND)


# -- users and executables (inside the chroot) ---------------------------------------------------------------------
def _db(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n").split(":") for line in handle if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def resolve_user(user: str, group: str) -> tuple[int, int, list[int], str]:
    """(uid, gid, supplementary gids, home) of `user`/`group` from the container's own /etc/passwd and /etc/group."""
    if ":" in user and not group:
        user, group = user.split(":", 1)
    uid, gid, home, name = 0, 0, "/", "root"
    passwd = _db("/etc/passwd")
    if user:
        entry = next((e for e in passwd if len(e) >= 4 and (e[0] == user or (user.isdigit() and e[2] == user))),
                     None)
        if entry is not None:
            name, uid, gid = entry[0], int(entry[2]), int(entry[3])
            home = entry[5] if len(entry) > 5 and entry[5] else "/"
        elif user.isdigit():
            uid, name = int(user), ""
        else:
            raise LookupError(f"unable to find user {user}: no matching entries in passwd file")
    else:
        entry = next((e for e in passwd if len(e) >= 4 and e[2] == "0"), None)
        if entry is not None and len(entry) > 5 and entry[5]:
            home = entry[5]
    groups_db = _db("/etc/group")
    if group:
        entry = next((e for e in groups_db if len(e) >= 3 and (e[0] == group or (group.isdigit() and e[2] == group))),
                     None)
        if entry is not None:
            gid = int(entry[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise LookupError(f"unable to find group {group}: no matching entries in group file")
    extra = sorted({int(e[2]) for e in groups_db
                    if len(e) >= 4 and name and name in e[3].split(",") and e[2].isdigit()} - {gid})
    return uid, gid, extra, home


class LaunchError(Exception):
    def __init__(self, text: str, code: int):
        super().__init__(text)
        self.code = code


def look_path(name: str, env_path: str) -> str:
    """Go's exec.LookPath with Docker's texts (runc: `exec: "x": executable file not found in $PATH`)."""
    if not name:
        raise LaunchError('exec: "": executable file not found in $PATH', 127)

    def check(path: str) -> None:
        st = os.stat(path)  # FileNotFoundError goes up
        if stat.S_ISDIR(st.st_mode) or not (st.st_mode & 0o111):
            raise PermissionError(errno.EACCES, "permission denied")

    if "/" in name:
        try:
            check(name)
        except FileNotFoundError:
            raise LaunchError(f'exec: "{name}": stat {name}: no such file or directory', 127) from None
        except PermissionError:
            raise LaunchError(f'exec: "{name}": permission denied', 126) from None
        return name
    for directory in (env_path or DEFAULT_PATH).split(":"):
        candidate = os.path.join(directory or ".", name)
        try:
            check(candidate)
            return candidate
        except OSError:
            continue
    raise LaunchError(f'exec: "{name}": executable file not found in $PATH', 127)


def prepare_process(spec: dict) -> tuple[str, list[str], list[str], tuple[int, int, list[int]], str]:
    """(executable, argv, env, (uid, gid, groups), cwd), checked inside the chroot; LaunchError if it can't run."""
    env = [e for e in spec.get("env") or [] if "=" in e]
    names = {e.split("=", 1)[0] for e in env}
    if "PATH" not in names:
        env.insert(0, f"PATH={DEFAULT_PATH}")
    if "HOSTNAME" not in names and spec.get("hostname"):
        env.append(f"HOSTNAME={spec['hostname']}")
    try:
        uid, gid, groups, home = resolve_user(spec.get("user") or "", spec.get("group") or "")
    except LookupError as err:
        raise LaunchError(str(err), 125) from None
    if "HOME" not in names:
        env.append(f"HOME={home}")
    path_value = next((e.split("=", 1)[1] for e in reversed(env) if e.startswith("PATH=")), DEFAULT_PATH)
    args = list(spec.get("args") or [])
    name = spec.get("path") or (args[0] if args else "")
    if not args:
        args = [name]
    executable = look_path(name, path_value)
    cwd = spec.get("dir") or "/"
    if not os.path.isdir(cwd):
        try:
            os.makedirs(cwd, exist_ok=True)
            os.chown(cwd, uid, gid)
        except OSError as err:
            raise LaunchError(f"cannot create working directory {cwd}: {err.strerror}", 125) from None
    return executable, args, env, (uid, gid, groups), cwd


def open_pty(uid: int) -> tuple[int, int]:
    """A pty of the container's devpts (we are chrooted in it); the slave belongs to the process's user."""
    master, slave = os.openpty()
    if uid:
        os.fchown(slave, uid, -1)
    return master, slave


def spawn(executable: str, args: list[str], env: list[str], ids: tuple[int, int, list[int]], cwd: str,
          pty_slave: int | None) -> int:
    """Fork the process (its own session; the user's ids; Docker's exec error texts through a CLOEXEC pipe);
    with `pty_slave`, the slave is its stdio and controlling terminal."""
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            if pty_slave is not None:
                for fd in (0, 1, 2):
                    os.dup2(pty_slave, fd)
                os.close(pty_slave)
            os.setsid()
            if pty_slave is not None:
                fcntl.ioctl(0, TIOCSCTTY, 0)
            for sig in range(1, signal.NSIG):
                try:
                    signal.signal(sig, signal.SIG_DFL)
                except (OSError, ValueError):
                    pass
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            uid, gid, groups = ids
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            try:
                os.chdir(cwd)
            except OSError as err:
                raise LaunchError(f"chdir to cwd (\"{cwd}\") set in config.json failed: {err.strerror.lower()}",
                                  125) from None
            try:
                os.execve(executable, args, dict(e.split("=", 1) for e in env))
            except PermissionError:
                raise LaunchError(f'exec: "{args[0]}": permission denied', 126) from None
            except OSError as err:
                raise LaunchError(f'exec: "{args[0]}": {err.strerror.lower()}', 126 if err.errno == errno.ENOEXEC
                                  else 127) from None
        except LaunchError as err:
            os.write(wfd, json.dumps({"error": str(err), "code": err.code}).encode())
            os._exit(err.code)
        except BaseException as err:  # noqa: BLE001
            os.write(wfd, json.dumps({"error": str(err), "code": 125}).encode())
            os._exit(125)
    os.close(wfd)
    if pty_slave is not None:
        os.close(pty_slave)  # the master reads EIO once the process and its children are done with it
    data = b""
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        data += chunk
    os.close(rfd)
    if data:
        failure = json.loads(data)
        os.waitpid(pid, 0)
        raise LaunchError(failure["error"], failure["code"])
    return pid


def quiet_stdio() -> None:
    """The helper's own stdio go to /dev/null: only the container process holds the container's streams."""
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


# -- modes -------------------------------------------------------------------------------------------------------
def launch(spec: dict) -> tuple[int, int | None]:
    """Start the process of `spec` inside the chroot: (its pid, the pty master for a tty session)."""
    executable, args, env, ids, cwd = prepare_process(spec)
    master = slave = None
    if spec.get("tty"):
        master, slave = open_pty(ids[0])
        if spec.get("window_size"):  # (rows, cols, width px, height px)
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", *spec["window_size"]))
    try:
        return spawn(executable, args, env, ids, cwd, slave), master
    except BaseException:
        if master is not None:
            os.close(master)
        raise


def report_started(report: Report, pid: int, master: int | None) -> None:
    if master is None:
        report.send(started=True, pid=pid)
        return
    report.send(fds=(master,), started=True, pid=pid, pty=True)
    os.close(master)


def run_init(spec: dict, report: Report) -> int:
    """PID 1 of the container: build the root filesystem, start the process, reap everything until it ends."""
    set_pdeathsig(signal.SIGKILL)
    volumes = _mounts()
    try:
        setup_rootfs(spec)
        attached = volumes.attach(spec.get("volumes") or [], spec["rootfs"])
        if spec.get("hostname"):
            sethostname(spec["hostname"])
        os.chroot(spec["rootfs"])
        os.chdir("/")
        volumes.mount_all(attached)
        pid, master = launch(spec)
    except LaunchError as err:
        report.send(error=str(err), code=err.code)
        return err.code
    except volumes.MountError as err:
        report.send(error=str(err), code=125)
        return 125
    except OSError as err:
        report.send(error=f"container setup failed: {err}", code=125)
        return 125
    report_started(report, pid, master)
    quiet_stdio()
    while True:
        try:
            child, status = os.wait()
        except ChildProcessError:
            return 0
        if child == pid:
            code = exit_code(status)
            report.send(exit=code)
            return code


def _mounts():
    """The volume mounts module (`mounts.py` beside this file; a sibling module when run as a script)."""
    try:
        from . import mounts
    except ImportError:
        import mounts  # type: ignore[no-redef]
    return mounts


def run_primary(spec: dict, report: Report) -> int:
    unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC)
    mount("none", "/", None, MS_REC | MS_PRIVATE)
    pid = os.fork()
    if pid == 0:
        os._exit(run_init(spec, report))
    report.send(init_pid=pid)
    os.close(report.fd)
    report.fd = -1
    quiet_stdio()
    return _wait_forwarding(pid)


def run_exec(spec: dict, report: Report) -> int:
    init = spec["init_pid"]
    fds = [(os.open(f"/proc/{init}/ns/{name}", os.O_RDONLY), flag)
           for name, flag in (("ipc", CLONE_NEWIPC), ("uts", CLONE_NEWUTS), ("pid", CLONE_NEWPID),
                              ("mnt", CLONE_NEWNS))]
    try:
        for fd, flag in fds:
            setns(fd, flag)
            os.close(fd)
        os.chroot(spec["rootfs"])
        os.chdir("/")
        pid, master = launch(spec)
    except LaunchError as err:
        report.send(error=str(err), code=err.code)
        return err.code
    except OSError as err:
        report.send(error=f"exec setup failed: {err}", code=125)
        return 125
    report_started(report, pid, master)
    quiet_stdio()
    code = _wait_forwarding(pid)
    report.send(exit=code)
    return code


def _wait_forwarding(pid: int) -> int:
    """Wait for `pid`, passing the catchable signals we get on to it."""
    def forward(sig, _frame):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT,
                signal.SIGWINCH):
        signal.signal(sig, forward)
    while True:
        try:
            child, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return 1
        if child == pid and (os.WIFEXITED(status) or os.WIFSIGNALED(status)):
            return exit_code(status)


def main(argv: list[str]) -> int:
    fd = int(argv[1])
    with os.fdopen(fd, "rb") as handle:
        spec = json.loads(handle.read())
    report = Report(spec.get("report_fd", -1))
    if report.fd >= 0:
        os.set_inheritable(report.fd, False)
    try:
        if spec["mode"] == "primary":
            return run_primary(spec, report)
        return run_exec(spec, report)
    except OSError as err:
        report.send(error=f"{spec['mode']} setup failed: {err}", code=125)
        return 125


if __name__ == "__main__":
    sys.exit(main(sys.argv))
