"""The container's output log (`output.log`, the file-backed serial port VIC calls ttyS2) and its reader.

Format: one record per line, the CRI log format (Kubernetes' container log files)::

    <timestamp> <stream> <tag> <content>\\n

- `timestamp`: UTC, RFC 3339 with nanoseconds, always nine digits: `2024-05-01T12:00:00.123456789Z` (a parser should
  also accept Go's RFC3339Nano with trailing zeros trimmed);
- `stream`: `stdout` or `stderr` (a tty session's output is all `stdout`);
- `tag`: `F` the content was a full line: the original bytes are content + `\\n`; `P` a partial line: the original
  bytes are the content alone (what the process wrote so far, or its last line if it had no newline);
- `content`: the raw bytes of the line, without its `\\n` (any other byte, `\\r` included, is kept as is).

Concatenating the decoded contents of one stream gives exactly the bytes the process wrote to it. A record is written
for each read from the process's pipe: complete lines as `F` records, a trailing incomplete line at once as `P` (so
`docker logs -f` shows a prompt without a newline). Records are appended with one write(2) each, so a reader sees
whole records, possibly followed by one incomplete final line still being written: `parse` ignores a last line with no
`\\n`. The file survives power cycles and is appended to by every run of the container (VIC's
`answer.msg.serial.file.open=Append`).
"""
from __future__ import annotations

import datetime
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

STDOUT, STDERR = "stdout", "stderr"
FULL, PARTIAL = b"F", b"P"


def timestamp(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    seconds, nanos = divmod(ns, 10 ** 9)
    base = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def parse_timestamp(text: str) -> int:
    """UnixNano of a record's timestamp (nine digits or Go's trimmed RFC3339Nano, `Z` only)."""
    base, _, frac = text.rstrip("Z").partition(".")
    dt = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.UTC)
    return int(dt.timestamp()) * 10 ** 9 + int((frac + "000000000")[:9] or 0)


def encode(stream: str, data: bytes, ns: int | None = None) -> bytes:
    """The records of one chunk of output."""
    if not data:
        return b""
    stamp = f"{timestamp(ns)} {stream} ".encode()
    out = []
    lines = data.split(b"\n")
    for line in lines[:-1]:
        out.append(stamp + FULL + b" " + line + b"\n")
    if lines[-1]:
        out.append(stamp + PARTIAL + b" " + lines[-1] + b"\n")
    return b"".join(out)


@dataclass(frozen=True)
class Record:
    time_ns: int
    stream: str
    data: bytes  # the original bytes: content + b"\n" for a full line


def parse(data: bytes) -> Iterator[Record]:
    """The records of an output.log's content (a final line with no `\\n` is still being written: skipped)."""
    lines = data.split(b"\n")
    for line in lines[:-1]:
        parts = line.split(b" ", 3)
        if len(parts) < 3:
            continue
        stamp, stream, tag = parts[0], parts[1], parts[2]
        content = parts[3] if len(parts) > 3 else b""
        try:
            ns = parse_timestamp(stamp.decode())
        except ValueError:
            continue
        yield Record(ns, stream.decode(errors="replace"), content + b"\n" if tag == FULL else content)


class OutputLog:
    """Appends records to the output log file; thread-safe (one write per chunk)."""

    def __init__(self, path: str | None):
        self.path = path
        self._lock = threading.Lock()
        self._fd = -1
        if path:
            try:
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError:
                self._fd = -1

    def write(self, stream: str, data: bytes) -> None:
        records = encode(stream, data)
        if not records or self._fd < 0:
            return
        with self._lock:
            try:
                os.write(self._fd, records)
            except OSError:
                pass

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                try:
                    os.fsync(self._fd)
                except OSError:
                    pass
                os.close(self._fd)
                self._fd = -1
