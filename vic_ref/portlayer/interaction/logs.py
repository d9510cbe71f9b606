"""Container logs from `[ds] <id>/output.log`, the file-backed serial port the tether writes its sessions' output to
(vic-behaviour.md §4.13).

Line format: the tether's (`vic_ref/tether/logfile.py`, the CRI log format):
`<RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>\\n`, where `F` means the original bytes were content + `\\n`
and `P` content alone (a partial line). A record without the tag (`<ts> <stream> <data>\\n`) is data + `\\n`; a line
that doesn't parse at all (console noise, raw output) is taken as stdout data with no timestamp.
Only complete lines are records; a partial last line waits for its end (`parse` says how many bytes it used),
except at the very end of a stopped container's log (`final=True`).
"""
from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass

STDOUT, STDERR = 1, 2
_STREAMS = {b"stdout": STDOUT, b"stderr": STDERR}
_LINE = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr)"
                   rb"(?: ([FP])(?= |\n|$))? ?(.*)$", re.S)


@dataclass(frozen=True)
class Entry:
    stream: int
    data: bytes
    time_ns: int = 0  # 0: unknown


def parse_time(text: str) -> int:
    """UnixNano of an RFC 3339 (nano) timestamp."""
    match = re.match(r"^(.*?T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$", text)
    if not match:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    base, frac, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    seconds = datetime.datetime.fromisoformat(base + zone).timestamp()
    return int(seconds) * 10 ** 9 + int((frac or "0").ljust(9, "0"))


def format_time(ns: int) -> str:
    """Docker's log timestamp (RFC3339NanoFixed: always nine digits)."""
    seconds, nanos = divmod(ns, 10 ** 9)
    stamp = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


def parse_line(line: bytes) -> Entry:
    match = _LINE.match(line)
    if not match:
        return Entry(STDOUT, line)
    stamp, stream, tag, data = match.groups()
    try:
        ns = parse_time(stamp.decode())
    except ValueError:
        return Entry(STDOUT, line)
    if tag == b"P":
        data = data[:-1] if data.endswith(b"\n") else data
    return Entry(_STREAMS[stream], data, ns)


def parse(data: bytes, *, final: bool = False) -> tuple[list[Entry], int]:
    """The records of `data` and how many bytes they took (a partial last line is left unless `final`)."""
    entries: list[Entry] = []
    pos = 0
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            break
        entries.append(parse_line(data[pos:end + 1]))
        pos = end + 1
    if final and pos < len(data):
        entries.append(parse_line(data[pos:]))
        pos = len(data)
    return entries, pos


def parse_since(text: str | None) -> int:
    """Docker's `since`/`until` query value (`1735689600.000000000`, seconds) as UnixNano; 0 when absent."""
    if not text:
        return 0
    seconds, _, frac = text.partition(".")
    try:
        return int(seconds) * 10 ** 9 + int((frac or "0")[:9].ljust(9, "0"))
    except ValueError:
        raise ValueError(f"invalid time {text!r}") from None


def select(entries: Iterable[Entry], *, stdout: bool = True, stderr: bool = True, since_ns: int = 0,
           until_ns: int = 0, tail: int | None = None) -> list[Entry]:
    """Docker's filters: the wanted streams, since ≤ time ≤ until, then the last `tail` records."""
    out = []
    for entry in entries:
        if entry.stream == STDOUT and not stdout or entry.stream == STDERR and not stderr:
            continue
        if since_ns and entry.time_ns and entry.time_ns < since_ns:  # Docker keeps a line stamped at `since`
            continue
        if until_ns and entry.time_ns and entry.time_ns > until_ns:
            continue
        out.append(entry)
    if tail is not None and tail >= 0:
        out = out[len(out) - tail:] if tail else []
    return out


def render(entry: Entry, timestamps: bool) -> bytes:
    if timestamps and entry.time_ns:
        return format_time(entry.time_ns).encode() + b" " + entry.data
    return entry.data


def parse_tail(text: str | None) -> int | None:
    """`tail=all` (or absent, or junk: Docker shows everything) → None; a number → that many."""
    if not text or text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value >= 0 else None


__all__ = ["Entry", "parse", "parse_line", "parse_time", "format_time", "parse_since", "parse_tail", "select",
           "render", "STDOUT", "STDERR"]
