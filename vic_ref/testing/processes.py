"""The host's process table, as the container tests read it (containers are real processes on this machine)."""
from __future__ import annotations

import os
import time


def _cmdline(pid: int | str) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _state_and_parent(pid: int | str) -> tuple[str, int, str] | None:
    """(state letter, parent PID, comm) from /proc/<pid>/stat, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            head, fields = handle.read().rsplit(")", 1)
    except OSError:
        return None
    state, ppid = fields.split()[:2]
    return state, int(ppid), head.split("(", 1)[1]


def pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def descends_from(pid: int, ancestor: int) -> bool:
    seen = 0
    while pid > 1 and seen < 64:
        if pid == ancestor:
            return True
        info = _state_and_parent(pid)
        if info is None:
            return False
        pid, seen = info[1], seen + 1
    return pid == ancestor


def nsinit_processes(under: int | None = None) -> list[int]:
    """The tether's launchers (one or two per running container, one per running exec); with `under`, only those
    below that process (a test's own `vic-ref up`: other VCHs may run on the machine)."""
    return [pid for pid in pids() if b"tether/nsinit.py" in _cmdline(pid)
            and (under is None or descends_from(pid, under))]


def processes_running(marker: bytes) -> list[int]:
    """PIDs whose command line contains `marker`."""
    return [pid for pid in pids() if marker in _cmdline(pid) and pid != os.getpid()]


def zombies(under: int | None = None, settle: float = 0.5) -> list[str]:
    """Zombies whose parent is a tether or a launcher (someone else's zombies are not ours to judge) and that are
    still there after `settle` seconds: a child that just exited is a zombie until its parent's reaper gets to it,
    which is no leak. With `under`, only those below that process (a test's own `vic-ref up`)."""
    def snapshot() -> dict[int, str]:
        found = {}
        for pid in pids():
            info = _state_and_parent(pid)
            if info is None or info[0] != "Z":
                continue
            parent = _cmdline(info[1]).replace(b"\0", b" ")
            if (b"vic_ref.tether" in parent or b"nsinit.py" in parent) and \
                    (under is None or descends_from(info[1], under)):
                found[pid] = f"{pid} {info[2]} (parent {info[1]} {parent[:80]!r})"
        return found

    first = snapshot()
    if not first or settle <= 0:
        return list(first.values())
    time.sleep(settle)
    second = snapshot()
    return [text for pid, text in second.items() if first.get(pid) == text]


def zombies_in_namespace_of(pid: int) -> list[str]:
    """Zombies in the PID namespace of `pid` (a container's process): whoever their parent is."""
    try:
        namespace = os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return []
    out = []
    for other in pids():
        info = _state_and_parent(other)
        if info is None or info[0] != "Z":
            continue
        try:
            if os.readlink(f"/proc/{other}/ns/pid") == namespace:
                out.append(f"{other} {info[2]} (parent {info[1]})")
        except OSError:
            continue
    return out


__all__ = ["descends_from", "nsinit_processes", "processes_running", "zombies", "zombies_in_namespace_of", "pids"]
