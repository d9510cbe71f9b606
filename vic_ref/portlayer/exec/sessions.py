"""Exec sessions and RunBlock (VIC's `lib/portlayer/task`: Join/Bind/Inspect of execs; `attach` Bind's RunBlock).

- `create_exec`: a new session under `execs|<eid>` (keys non-persistent: they go while the VM runs, and vanish at
  power off), committed through a handle, then the tether's `reload` so it launches it (blocked until an attach
  unblocks it when `run_block`).
- `exec_info`: what `GET /exec/{id}/json` shows, from the container's latest snapshot.
- `set_run_block`: the primary session waits for an attach's `unblock` before it launches (set when an attach comes
  before the start, cleared after).
Mixed into `Exec` (manager.py).
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ... import errors
from ...config import Cmd, Common, Diagnostics, SessionConfig
from ...trace import Operation
from .handle import Handle

if TYPE_CHECKING:
    from .manager import Exec


@dataclass(frozen=True)
class ExecInfo:
    id: str
    container_id: str
    running: bool
    exit_code: int | None
    session: SessionConfig
    pid: int = 0

    @property
    def tty(self) -> bool:
        return self.session.tty


class NoSuchExec(errors.NotFound):
    def __init__(self, eid: str):
        super().__init__(f"No such exec instance: {eid}")


class Sessions:
    def create_exec(self: Exec, op: Operation, ref: str, *, path: str, args: Iterable[str] = (),
                    env: Iterable[str] = (), workdir: str = "", user: str = "", tty: bool = False,
                    open_stdin: bool = False, attach: bool = True, run_block: bool = True,
                    active: bool = True) -> str:
        """Add an exec session to a running container; its ID."""
        container = self.find(ref)
        if not container.snapshot.powered_on:
            raise self.not_running(container)
        eid = secrets.token_hex(32)
        user_, _, group = user.partition(":")

        def mutate(handle: Handle) -> None:
            if not handle.powered_on:
                raise self.not_running(container)
            handle.config.execs[eid] = SessionConfig(
                common=Common(id=eid, name=handle.config.name),
                cmd=Cmd(path=path, args=[path, *args], env=list(env), dir=workdir),
                tty=tty, open_stdin=open_stdin, attach=attach, active=active, run_block=run_block,
                user=user_, group=group, diagnostics=Diagnostics(debug_level=self.config.init.debug))
            handle.config.execs[eid].detail.create_time = time.time_ns()
            handle.reload = active
        self.update(op, container.id, mutate)
        # exec start and inspect look the session up in the cache: it must be there when the ID is handed out
        self._sync(op, container.id, container.snapshot.vm, lambda snap: eid in snap.config.execs)
        op.info("exec %s added to %s", eid[:12], container.id[:12])
        return eid

    def activate_exec(self: Exec, op: Operation, ref: str, eid: str, *, run_block: bool) -> None:
        """`docker exec` start: the session becomes active and the tether is reloaded to launch it."""
        def mutate(handle: Handle) -> None:
            session = handle.config.execs.get(eid)
            if session is None:
                raise NoSuchExec(eid)
            if not handle.powered_on:
                raise self.not_running(self.find(ref))
            session.active = True
            session.run_block = run_block
            session.detail.start_time = time.time_ns()
            handle.reload = True
        self.update(op, ref, mutate)

    def find_exec(self: Exec, eid: str):
        """(container, session) of an exec ID, from the cache."""
        with self._lock:
            containers = list(self._containers.values())
        for container in containers:
            session = container.snapshot.config.execs.get(eid)
            if session is not None:
                return container, session
        raise NoSuchExec(eid)

    def exec_info(self: Exec, eid: str) -> ExecInfo:
        container, session = self.find_exec(eid)
        snap = container.snapshot
        started = session.started == "true"
        stopped = bool(session.detail.stop_time) and session.detail.stop_time >= session.detail.start_time
        running = snap.powered_on and started and not stopped
        exit_code = session.exit_status if stopped and started else None
        if started and not stopped and not snap.powered_on:
            exit_code = 137  # the container stopped under it before its own end was written: killed, as in Docker
        if session.started not in ("", "true"):
            exit_code = 126 if "permission denied" in session.started else 127 if (
                "no such" in session.started or "not found" in session.started) else 1
        return ExecInfo(eid, container.id, running, exit_code, session)

    def set_run_block(self: Exec, op: Operation, ref: str, value: bool) -> None:
        """The primary session's RunBlock (a read-write key: only while the VM is off)."""
        def mutate(handle: Handle) -> None:
            session = handle.config.sessions.get(handle.id)
            if session is None or handle.powered_on or session.run_block == value:
                return
            session.run_block = value
        self.update(op, ref, mutate)


__all__ = ["Sessions", "ExecInfo", "NoSuchExec"]
