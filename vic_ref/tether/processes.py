"""The container's process table, as `ps -ef` shows it (for `docker top`), read from the guest's /proc.

The container's processes are those in the PID namespace of the primary session's init (nsinit, PID 1 there, the
tether's stand-in, not listed). PIDs are the container's own (the last `NSpid` field), user names come from the
container's /etc/passwd, and the columns are procps' `-ef` ones: UID PID PPID C STIME TTY TIME CMD.
"""
from __future__ import annotations

import os
import time

TITLES = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
_TICKS = os.sysconf("SC_CLK_TCK")


def _boot_time() -> float:
    with open("/proc/stat") as handle:
        for line in handle:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def _users(init_pid: int) -> dict[int, str]:
    names: dict[int, str] = {}
    try:
        with open(f"/proc/{init_pid}/root/etc/passwd", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split(":")
                if len(fields) > 2 and fields[2].isdigit():
                    names.setdefault(int(fields[2]), fields[0])
    except OSError:
        pass
    return names


def _tty_name(tty_nr: int) -> str:
    if tty_nr == 0:
        return "?"
    major, minor = os.major(tty_nr), os.minor(tty_nr)
    if 136 <= major <= 143:  # Unix98 pty slaves
        return f"pts/{(major - 136) * 256 + minor}"
    if major == 4:
        return f"tty{minor}" if minor < 64 else f"ttyS{minor - 64}"
    return "?"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def _read_process(pid: int) -> dict | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
        with open(f"/proc/{pid}/status") as handle:
            status = dict(line.split(":", 1) for line in handle if ":" in line)
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read()
    except (OSError, ValueError):
        return None
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()  # from field 3 (state) on
    nspids = status.get("NSpid", "").split()
    args = [a.decode("utf-8", "replace") for a in cmdline.split(b"\0") if a]
    return {"host_pid": pid, "pid": int(nspids[-1]) if nspids else pid, "host_ppid": int(fields[1]),
            "tty_nr": int(fields[4]), "utime": int(fields[11]), "stime": int(fields[12]),
            "start_ticks": int(fields[19]), "uid": int(status.get("Uid", "0").split()[0]),
            "cmd": " ".join(args) if args else f"[{comm}]", "state": fields[0]}


def container_processes(init_pid: int) -> list[list[str]]:
    """Rows of `ps -ef` for the container whose init has host PID `init_pid` (the init itself left out)."""
    try:
        namespace = os.readlink(f"/proc/{init_pid}/ns/pid")
    except OSError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == init_pid:
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != namespace:
                continue
        except OSError:
            continue
        process = _read_process(int(entry))
        if process is not None:
            found.append(process)
    by_host_pid = {p["host_pid"]: p["pid"] for p in found} | {init_pid: 1}
    users = _users(init_pid)
    boot, now = _boot_time(), time.time()
    rows = []
    for p in sorted(found, key=lambda p: p["pid"]):
        started = boot + p["start_ticks"] / _TICKS
        stime = time.strftime("%H:%M" if now - started < 86400 else "%b%d", time.localtime(started))
        ppid = by_host_pid.get(p["host_ppid"], 0)  # an exec's process has its parent outside: 0
        cmd = p["cmd"] + (" <defunct>" if p["state"] == "Z" else "")
        rows.append([users.get(p["uid"], str(p["uid"])), str(p["pid"]), str(ppid), "0", stime,
                     _tty_name(p["tty_nr"]), _clock((p["utime"] + p["stime"]) / _TICKS), cmd])
    return rows


__all__ = ["TITLES", "container_processes"]
