"""How vic-machine talks to its user.

On a terminal: rich, with a spinner on the step in progress and a tick (and its duration) once it is done, warnings
in yellow and errors in red. Otherwise (a pipe, a file, CI): VIC's plain log lines, `INFO[0003] text` (logrus's
level and the seconds since start), which scripts and Robot keywords parse. Log lines go to stdout as VIC writes
them; errors go to stderr. `--debug` adds vic_ref's own log (`DEBU[...] op=...: ...`).
"""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

_LEVELS = {"info": "INFO", "warn": "WARN", "error": "ERRO", "debug": "DEBU"}


class Output:
    """Progress, messages and results of one vic-machine run."""

    def __init__(self, *, tty: bool | None = None, debug: int = 0, stdout: TextIO | None = None,
                 stderr: TextIO | None = None):
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.tty = self.stdout.isatty() if tty is None else tty
        self.debug_level = debug
        self.started = time.monotonic()
        self._step: str | None = None
        self._step_started = 0.0
        self._status = None
        self._console = self._err_console = None
        if self.tty:
            from rich.console import Console
            self._console = Console(file=self.stdout, highlight=False)
            self._err_console = Console(file=self.stderr, highlight=False)

    # -- log lines -------------------------------------------------------------------------------------------------
    def info(self, text: str = "") -> None:
        self._emit("info", text)

    def warn(self, text: str) -> None:
        self._emit("warn", text)

    def error(self, text: str) -> None:
        self._emit("error", text)

    def debug(self, text: str) -> None:
        if self.debug_level > 0:
            self._emit("debug", text)

    def _emit(self, level: str, text: str) -> None:
        if not self.tty:
            stream = self.stderr if level == "error" else self.stdout
            elapsed = int(time.monotonic() - self.started)
            for line in (text.splitlines() or [""]):
                stream.write(f"{_LEVELS[level]}[{elapsed:04d}] {line}\n")
            stream.flush()
            return
        from rich.text import Text
        if level == "info":
            self._console.print(Text(text))
        elif level == "warn":
            self._console.print(Text.assemble(("Warning: ", "bold yellow"), (text, "yellow")))
        elif level == "debug":
            self._console.print(Text(text, style="dim"))
        else:
            self._pause()
            self._err_console.print(Text.assemble(("Error: ", "bold red"), (text, "red")))
            self._resume()

    # -- steps -----------------------------------------------------------------------------------------------------
    def step(self, text: str) -> None:
        """A step begins; the previous one (if any) is done."""
        self.end_step()
        self._step, self._step_started = text, time.monotonic()
        if not self.tty:
            self.info(text)
            return
        self._status = self._console.status(text, spinner="dots")
        self._status.start()

    def end_step(self, ok: bool = True) -> None:
        if self._step is None:
            return
        text, took = self._step, time.monotonic() - self._step_started
        self._step = None
        if not self.tty:
            return
        from rich.text import Text
        if self._status is not None:
            self._status.stop()
            self._status = None
        mark = ("✓ ", "green") if ok else ("✗ ", "red")
        self._console.print(Text.assemble(mark, (text, "" if ok else "red"), (f"  {took:.1f}s", "dim")))

    def _pause(self) -> None:
        if self._status is not None:
            self._status.stop()

    def _resume(self) -> None:
        if self._status is not None:
            self._status.start()

    # -- results ---------------------------------------------------------------------------------------------------
    def table(self, headers: list[str], rows: list[list[str]]) -> None:
        """VIC's `ls` table: a blank line, then columns padded as its tabwriter pads them."""
        self.end_step()
        if self.tty:
            from rich import box
            from rich.table import Table
            table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
            for header in headers:
                table.add_column(header, no_wrap=True)
            for row in rows:
                table.add_row(*row)
            self._console.print(table)
            return
        widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
        lines = [""]
        for row in [headers, *rows]:
            cells = [str(cell).ljust(widths[i] + 8) for i, cell in enumerate(row[:-1])] + [str(row[-1])]
            lines.append("".join(cells).rstrip())
        self.stdout.write("\n".join(lines) + "\n")
        self.stdout.flush()

    def plain(self, text: str) -> None:
        """A line of output as it is (e.g. `vic-machine version`), with no log decoration."""
        self.end_step()
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def close(self, ok: bool = True) -> None:
        self.end_step(ok)


class LogForwarder(logging.Handler):
    """vic_ref's log records, shown as `--debug` lines."""

    def __init__(self, output: Output):
        super().__init__(logging.DEBUG)
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.output.debug(f"{record.name}: {record.getMessage()}")
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


def route_logs(output: Output) -> Callable[[], None]:
    """Send vic_ref's logging to `output` (shown with --debug, swallowed otherwise); returns what undoes it (for
    callers that run vic-machine inside a longer-lived process, such as tests)."""
    root = logging.getLogger("vic_ref")
    saved = (list(root.handlers), root.level, root.propagate)
    root.handlers[:] = [LogForwarder(output)]
    root.setLevel(logging.DEBUG if output.debug_level > 0 else logging.CRITICAL + 1)
    root.propagate = False

    def undo() -> None:
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]

    return undo


__all__ = ["Output", "route_logs"]
