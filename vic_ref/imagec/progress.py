"""Docker's JSON progress stream (moby pkg/jsonmessage, pkg/progress, go-units), as `docker pull` and `docker load`
read it.

    {"status":"Pulling from library/busybox","id":"latest"}
    {"status":"Downloading","progressDetail":{"current":22048,"total":2220094},"progress":"[>   ]  22.05kB/2.22MB",
     "id":"ec562eabd705"}
    {"errorDetail":{"message":"..."},"error":"..."}

A `ProgressSink` is any callable taking one message dict; `Reporter` wraps it with the message shapes, throttles
byte counts (at most every 1% or 100 ms per id) and is safe to call from several download threads.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

ProgressSink = Callable[[dict], None]

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
BAR_WIDTH = 50
# The daemon renders with no terminal: go's JSONProgress.width() is then 200, so the bar is always drawn.
_THROTTLE_SECONDS = 0.1


def human_size(size: float) -> str:
    """go-units HumanSize: 4 significant digits, decimal units (`32.77kB`, `2.222MB`)."""
    i = 0
    while size >= 1000.0 and i < len(_DECIMAL_UNITS) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.4g}{_DECIMAL_UNITS[i]}"


def progress_bar(current: int, total: int) -> str:
    """JSONProgress.String() as the daemon renders it: `[====>      ]  1.2MB/2.2MB`."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}"
    percentage = min(int(current / total * 100) // 2, BAR_WIDTH)
    bar = "[" + "=" * percentage + ">" + " " * max(0, BAR_WIDTH - percentage) + "] "
    numbers = f"{human_size(current):>8}/{human_size(total)}"
    if current > total:
        numbers = f"{human_size(current):>8}"
    return bar + numbers


def encode(message: dict) -> bytes:
    """One line of the stream, with Go's HTML-safe escaping (`>` as \\u003e), as dockerd writes it."""
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return text.encode("utf-8") + b"\r\n"


def status(text: str, id: str | None = None) -> dict:
    return {"status": text, "id": id} if id else {"status": text}


def update(text: str, id: str, current: int | None = None, total: int | None = None) -> dict:
    """A progress update (`progressDetail` always present, `{}` when there is nothing to count)."""
    detail: dict = {}
    if current is not None:
        detail["current"] = int(current)
        if total:
            detail["total"] = int(total)
    message: dict = {"status": text, "progressDetail": detail}
    bar = progress_bar(current or 0, total or 0) if current is not None else ""
    if bar:
        message["progress"] = bar
    message["id"] = id
    return message


def error(text: str) -> dict:
    return {"errorDetail": {"message": text}, "error": text}


def stream(text: str) -> dict:
    return {"stream": text}


def short_id(digest: str) -> str:
    """stringid.TruncateID: 12 hex digits, without the algorithm."""
    return digest.split(":", 1)[-1][:12]


class Reporter:
    """Builds and throttles progress messages for one stream; thread-safe."""

    def __init__(self, sink: ProgressSink | None):
        self.sink = sink
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, int]] = {}  # id -> (time, current) of the last update sent

    def send(self, message: dict) -> None:
        if self.sink is None:
            return
        with self._lock:
            self.sink(message)

    def status(self, text: str, id: str | None = None) -> None:
        self.send(status(text, id))

    def update(self, text: str, id: str, current: int | None = None, total: int | None = None) -> None:
        self.send(update(text, id, current, total))

    def count(self, text: str, id: str, current: int, total: int | None) -> None:
        """A byte count: sent when it moved at least 1% (or 100 ms passed), and always at the end."""
        now = time.monotonic()
        key = f"{id} {text}"
        with self._lock:
            last_time, last_current = self._last.get(key, (0.0, -1))
            final = total is not None and current >= total
            step = total / 100 if total else 512 * 1024
            if not final and current - last_current < step and now - last_time < _THROTTLE_SECONDS:
                return
            self._last[key] = (now, current)
        self.update(text, id, current, total)


__all__ = ["ProgressSink", "Reporter", "human_size", "progress_bar", "encode", "status", "update", "error",
           "stream", "short_id"]
