"""Container lifecycle on top of handles and commit (VIC `lib/portlayer/exec/base.go` start, stop, kill, remove).

- start: the primary session's `started`/`status` reset and its start time set, power on, then wait until the
  tether reports `started` ("true", or the error that stopped the launch).
- stop: guest operation `kill <StopSignal|TERM>` as the container ID, wait the grace period for the VM to power off,
  then `group-kill KILL`, wait again, then a hard power off; the stop time (and 137 after a hard power off) recorded.
- kill: `kill <SIG>`; for KILL, wait for the power off and power off hard if it doesn't come.
- remove: refused while running unless forced; the VM destroyed and its datastore folder deleted, its names freed.
- wait: `not-running`, `next-exit`, `removed`, from the cache's transitions.
Mixed into `Exec` (manager.py), which provides the cache, handles and commit.
"""
from __future__ import annotations

import signal as signals
import threading
import time
from typing import TYPE_CHECKING, Any

from ... import errors
from ...config import key_for
from ...trace import Operation
from ...vsphere import retry_on_conflict
from . import spec as vmspec
from . import vm as vmops
from .container import POWERED_ON, RENAME_SUPPORTED, Container, ContainerInfo, State
from .handle import TARGET_RUNNING, Handle

if TYPE_CHECKING:
    from .manager import Exec

START_TIMEOUT = 180.0  # VIC's PropertyCollectorTimeout: how long the tether has to report `started`
DEFAULT_STOP_TIMEOUT = 10  # Docker's and VIC's grace period
KILL_WAIT = 10.0  # how long a KILL gets before the hard power off (VIC kill)
LAUNCH_FAILURE_HALT = 10.0  # how long a failed launch gets for the tether to power its VM off
GUEST_GONE = (errors.Unavailable, errors.AuthenticationFailed, errors.NotSupported)

NOT_RUNNING, NEXT_EXIT, REMOVED = "not-running", "next-exit", "removed"
WAIT_CONDITIONS = (NOT_RUNNING, NEXT_EXIT, REMOVED)


class InvalidSignal(errors.InvalidArgument):
    def __init__(self, text: str):
        super().__init__(f"Invalid signal: {text}")


def parse_signal(text: str | int | None, default: str = "KILL") -> tuple[int, str]:
    """(number, name without SIG) of `SIGTERM`, `TERM`, `term` or `15` (Docker's signal.ParseSignal)."""
    raw = str(text).strip() if text not in (None, "") else default
    if raw.isdigit():
        number = int(raw)
        try:
            return number, signals.Signals(number).name[3:]
        except ValueError:
            raise InvalidSignal(raw) from None
    name = raw.upper()
    name = name[3:] if name.startswith("SIG") else name
    try:
        return int(signals.Signals["SIG" + name]), name
    except KeyError:
        raise InvalidSignal(raw) from None


def stopped(snap) -> bool:
    """Powered off, with the stop recorded (by the tether, or by us after it)."""
    session = snap.session
    return not snap.powered_on and (session is None or session.detail.stop_time >= session.detail.start_time)


def started_key(container_id: str) -> str:
    return key_for("sessions", container_id, "started")


class RenameRefused(errors.VicError):
    """A rename VIC's persona refuses before looking further (HTTP 500, as VIC answers: empty, invalid, same name)."""


class ContainerRunning(errors.Conflict):
    """Docker's refusal to remove a running container (HTTP 409)."""

    def __init__(self, name: str):
        super().__init__(f'cannot remove container "/{name}": container is running: stop the container before '
                         "removing or force remove")


class Lifecycle:
    start_timeout = START_TIMEOUT
    kill_wait = KILL_WAIT

    # -- start ----------------------------------------------------------------------------------------------------
    def start(self: Exec, op: Operation, ref: str, *, timeout: float | None = None) -> bool:
        """Power the container on and wait for its tether's `started`; False if it was running already (HTTP 304)."""
        container = self.find(ref)
        cid = container.id
        with container.op_lock:
            with container.cond:
                starts = container.starts
            if not retry_on_conflict(op, lambda op: self._power_on(op, cid)):
                return False
            container.set_transient(State.STARTING)
            try:
                detail = self._wait_started(op, container, self.start_timeout if timeout is None else timeout)
            finally:
                container.set_transient(None)
            if detail != "true":
                # the tether halts after a failed launch: let the container be stopped (removable) when we answer
                vmops.wait_for_power_off(self.session, op, container.snapshot.vm, LAUNCH_FAILURE_HALT)
                raise errors.InternalError(detail)
            self._reload_if_renamed(op, container)

            def caught_up(c: Container) -> bool:
                # the watcher saw this power on, and then the launch report or already the exit of a short process
                snap = c.snapshot
                return c.starts > starts and (not snap.powered_on or (snap.session is not None
                                                                       and snap.session.started != ""))

            # the watcher publishes `start` when it sees the power on
            self._sync(op, cid, container.snapshot.vm, None, container_predicate=caught_up)
        return True

    def _reload_if_renamed(self: Exec, op: Operation, container: Container) -> None:
        """An older container renamed since its last start (DESIGN-DECISIONS §3): its tether is told to `reload`, so
        its /etc/hosts is written again from the guest-visible name key the rename rewrote."""
        with self._lock:
            if container.id not in self._reload_at_start:
                return
            self._reload_at_start.discard(container.id)
        try:
            vmops.guest_program(self.session, op, container.snapshot.vm, container.id, "reload")
            op.info("sent reload to %s: it was renamed while it was not running", container.id[:12])
        except errors.VicError as err:
            op.warning("reload of the renamed container %s: %s", container.id[:12], err)

    def _power_on(self: Exec, op: Operation, cid: str) -> bool:
        handle = self.get_handle(op, cid)
        if handle.powered_on:
            return False
        session = handle.config.sessions.get(cid)
        if session is not None:
            # VIC Handle.Commit for StateRunning: the tether reports these afresh
            session.started = ""
            session.exit_status = 0
            session.detail.start_time = time.time_ns()
        handle.set_target_state(TARGET_RUNNING)
        self.commit(op, handle)
        return True

    def _wait_started(self: Exec, op: Operation, container: Container, timeout: float) -> str:
        """The tether's launch report: "true", or the error text (VIC waitForSession)."""
        key = started_key(container.id)

        def value_of(values) -> str:
            for option in values.get("config.extraConfig") or []:
                if option.key == key:
                    return "" if option.value in (None, "<nil>") else str(option.value)
            return ""

        def ready(values) -> bool:
            return bool(value_of(values)) or values.get("runtime.powerState") == "poweredOff"

        values = vmops.wait_until(self.session, op, container.snapshot.vm, ("config.extraConfig",
                                                                            "runtime.powerState"), ready, timeout)
        if values is None:
            raise errors.Timeout(f"unable to wait for process launch status: no report from {container.id[:12]} "
                                 f"within {timeout:g}s")
        detail = value_of(values)
        if not detail:
            return "the container exited before its process was launched"
        return detail

    # -- stop -----------------------------------------------------------------------------------------------------
    def stop(self: Exec, op: Operation, ref: str, *, timeout: int | None = None, signal: str | None = None) -> bool:
        """Stop the container (signal, grace, KILL, power off); False if it was not running (HTTP 304)."""
        container = self.find(ref)
        with container.op_lock:
            snap = vmops.read(self.session, op, container.snapshot.vm)
            if not snap.powered_on:
                return False
            grace = DEFAULT_STOP_TIMEOUT if timeout is None or timeout < 0 else timeout
            session = snap.session
            wanted = signal or (session.stop_signal if session is not None else "") or "TERM"
            number, name = parse_signal(wanted)
            container.set_transient(State.STOPPING)
            try:
                self._publish(op, "kill", container.info(), signal=number)
                killed = self._shutdown(op, container, [("kill", name, float(grace)),
                                                        ("group-kill", "KILL", min(float(grace), self.kill_wait))])
                self.record_stop(op, container.id, killed=killed)
            finally:
                container.set_transient(None)
            container = self._sync(op, container.id, snap.vm, stopped)
            self._publish(op, "stop", container.info())
        return True

    def _shutdown(self: Exec, op: Operation, container: Container, steps) -> bool:
        """Guest signals with a wait for the power off after each, then a hard power off. Whether it came to that."""
        vm = container.snapshot.vm
        for action, sig, wait in steps:
            op.info("sending %s -%s %s", action, sig, container.id[:12])
            try:
                vmops.guest_program(self.session, op, vm, container.id, action, sig)
            except errors.InvalidState:
                return False  # powered off meanwhile
            except GUEST_GONE as err:
                op.warning("%s %s: %s; powering it off", action, container.id[:12], err)
                break  # no guest to ask: waiting is pointless
            except errors.VicError as err:
                op.warning("%s -%s %s: %s", action, sig, container.id[:12], err)
            if vmops.wait_for_power_off(self.session, op, vm, wait):
                return False
            op.warning("%s did not power off within %gs of %s -%s", container.id[:12], wait, action, sig)
        op.warning("hard power off of %s", container.id[:12])
        return vmops.power_off(self.session, op, vm)

    def record_stop(self: Exec, op: Operation, ref: str, *, killed: bool) -> None:
        """After a power off: the stop time, if the tether didn't record one; exit status 137 if we killed the VM."""
        def mutate(handle: Handle) -> None:
            if handle.powered_on:
                return  # started again meanwhile: nothing to record
            session = handle.config.sessions.get(handle.id)
            if session is None:
                return
            if session.detail.stop_time < session.detail.start_time or not session.detail.stop_time:
                session.detail.stop_time = time.time_ns()
            if killed:
                session.exit_status = 128 + int(signals.SIGKILL)
        self.update(op, ref, mutate)

    # -- kill -----------------------------------------------------------------------------------------------------
    def kill(self: Exec, op: Operation, ref: str, signal: str | int | None = "KILL") -> None:
        """Send a signal to the container's process; KILL also makes sure the VM goes off (VIC kill)."""
        container = self.find(ref)
        number, name = parse_signal(signal)
        snap = vmops.read(self.session, op, container.snapshot.vm)
        if not snap.powered_on:
            raise self.not_running(container)
        self._publish(op, "kill", container.info(), signal=number)
        if number != int(signals.SIGKILL):
            try:
                vmops.guest_program(self.session, op, snap.vm, container.id, "kill", name)
            except errors.InvalidState:
                raise self.not_running(container) from None
            return
        with container.op_lock:
            killed = self._shutdown(op, container, [("kill", "KILL", self.kill_wait)])
            self.record_stop(op, container.id, killed=killed)
            self._sync(op, container.id, snap.vm, stopped)

    def not_running(self, container: Container) -> errors.Conflict:
        from .manager import NotRunning
        return NotRunning(container.id)

    # -- restart --------------------------------------------------------------------------------------------------
    def restart(self: Exec, op: Operation, ref: str, *, timeout: int | None = None,
                signal: str | None = None) -> None:
        container = self.find(ref)
        self.stop(op, container.id, timeout=timeout, signal=signal)
        self.start(op, container.id)
        self._publish(op, "restart", container.info())

    # -- remove ---------------------------------------------------------------------------------------------------
    def remove(self: Exec, op: Operation, ref: str, *, force: bool = False) -> None:
        """Destroy the container VM and its datastore folder; refused while it runs unless `force`."""
        container = self.find(ref)
        cid = container.id
        with container.op_lock:
            vm = container.snapshot.vm
            try:
                snap = vmops.read(self.session, op, vm)
            except errors.NotFound:
                self.vm_left(op, vm)
                return
            if snap.power_state == POWERED_ON:
                if not force:
                    raise ContainerRunning(snap.name)
                self._publish(op, "kill", container.info(), signal=int(signals.SIGKILL))
                self._shutdown(op, container, [("kill", "KILL", min(self.kill_wait, 2.0))])
            container.set_transient(State.REMOVING)
            try:
                vmops.destroy(self.session, op, vm)
            except BaseException:
                container.set_transient(None)
                raise
            folder = self.inventory.placement.folder(cid)
            try:
                vmops.delete_folder(self.session, op, folder, self.inventory.datacenter)
            except errors.VicError as err:
                op.warning("removing %s: could not delete %s: %s", cid[:12], folder, err)
            gone = self._forget(vm._moId)
            if gone is not None:
                self._publish(op, "destroy", gone.info())
        op.info("removed container %s (%s)", snap.name, cid)

    # -- wait -----------------------------------------------------------------------------------------------------
    def wait(self: Exec, op: Operation, ref: str, condition: str = NOT_RUNNING,
             timeout: float | None = None) -> ContainerInfo:
        """Block until the condition holds (Docker's wait conditions); the container's info then. Cancel `op` to
        give up (a client that went away)."""
        if condition not in WAIT_CONDITIONS:
            raise errors.InvalidArgument(f'invalid condition: "{condition}"')
        container = self.find(ref)
        with container.cond:
            exits = container.exits
        if condition == NOT_RUNNING:
            def done(c: Container) -> bool:
                return c.removed or not c.snapshot.powered_on
        elif condition == NEXT_EXIT:
            def done(c: Container) -> bool:
                return c.removed or c.exits > exits
        else:
            def done(c: Container) -> bool:
                return c.removed
        limit = timeout if timeout is not None else 10 ** 9
        if not container.wait_for(done, limit, op):
            raise errors.Timeout(f"timed out waiting for {container.id[:12]} ({condition})")
        return container.info()

    # -- rename (DESIGN-DECISIONS §3; VIC's checks, order and texts, vic-behaviour.md §1(a)6) --------------------
    def rename(self: Exec, op: Operation, ref: str, new_name: str) -> ContainerInfo:
        """Give the container a new name: the new name reserved in the one name table create uses, then one commit
        (display name, hidden `common/name`, `<scope>:<name>` aliases; an older container's guest-visible name key
        too), then the old name freed. A failed commit frees the new name and keeps the old. The container's info
        afterwards; the `rename` event carries `oldName` (and `warning` for an older container renamed while it
        runs: its /etc/hosts keeps the old name until it restarts)."""
        from ..names import NAME_CHARS, NAME_PATTERN, NameConflict, clean
        if not ref or not new_name:
            raise RenameRefused("neither old nor new names may be empty")
        bare = clean(new_name)
        if not NAME_PATTERN.match(bare):
            raise RenameRefused(f"invalid container name ({new_name}), only {NAME_CHARS} are allowed")
        container = self.find(ref)
        if 0 < self.config.plugin_version < RENAME_SUPPORTED:
            # this VCH runs a release from before rename (vic_ref.migration): it has no rename at all
            raise errors.InternalError(f"container {container.name} does not support rename")
        with self._rename_lock(container.id):  # one rename of a container at a time: each sees the name before it
            old = container.name
            if old == bare:
                raise RenameRefused("renaming a container with the same name as its current name")
            try:
                self.names.reserve(bare, container.id)
            except NameConflict as err:
                raise errors.Conflict(f'conflict. The name "{bare}" is already in use by container {err.holder}. '
                                      "You have to remove (or rename) that container to be able to re use that "
                                      "name.") from None
            display = vmspec.display_name(bare, container.id, self.config.container.name_convention)
            seen: dict[str, Any] = {}

            def mutate(handle: Handle) -> None:
                seen["old"] = handle.snapshot.name
                seen["legacy"] = handle.snapshot.data_version < RENAME_SUPPORTED
                seen["running"] = handle.powered_on
                handle.rename(bare, display)

            try:
                self.update(op, container.id, mutate)
            except BaseException:
                self.names.release(bare, container.id)
                raise
            old = seen.get("old") or old
            if old != bare:
                self.names.release(old, container.id)
            container = self._sync(op, container.id, container.snapshot.vm, lambda s: s.display_name == display)
        attributes: dict[str, Any] = {"oldName": f"/{old}"}
        if seen.get("legacy"):
            if seen.get("running"):
                warning = (f"container {bare} was renamed from {old} while running; its /etc/hosts still lists "
                           f"{old} until it is restarted")
                op.warning("%s", warning)
                attributes["warning"] = warning
            with self._lock:
                self._reload_at_start.add(container.id)  # the tether rewrites /etc/hosts once it runs
        info = container.info()
        self._publish(op, "rename", info, **attributes)
        op.info("renamed container %s from %s to %s", container.id[:12], old, bare)
        return info

    def _rename_lock(self: Exec, cid: str) -> threading.Lock:
        with self._lock:
            return self._rename_locks.setdefault(cid, threading.Lock())


__all__ = ["Lifecycle", "parse_signal", "InvalidSignal", "ContainerRunning", "RenameRefused", "started_key",
           "WAIT_CONDITIONS", "NOT_RUNNING", "NEXT_EXIT", "REMOVED", "START_TIMEOUT", "DEFAULT_STOP_TIMEOUT"]
