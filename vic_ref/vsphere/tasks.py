"""Waiting for vSphere tasks, and retrying what conflicts (VIC's pkg/vsphere/tasks).

A wait first reads the task's `info.state`, `info.error` and `info.result` once (RetrievePropertiesEx on the
session's own collector, which keeps no state): a fast server has often finished the task by the time its `*_Task`
call returns (the sim runs most task bodies inline), and then that one call is the whole wait. A task still queued or
running is waited for as govmomi's property.Wait does: a property filter on those paths and a `WaitForUpdatesEx` loop
on a property collector made for that wait alone, so the server tells us when the task changes and we never poll. If
the session is lost mid-wait, the collector went with it; the wait starts over with a new one after the stub has
logged in again.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from .. import errors
from ..trace import Operation
from . import faults

if TYPE_CHECKING:
    from .session import Session

PropertyCollector = vmodl.query.PropertyCollector

TASK_PATHS = ("info.state", "info.error", "info.result")
FINAL_STATES = (vim.TaskInfo.State.success, vim.TaskInfo.State.error)
# Upper bound of one long poll, so a cancel from another thread, or a deadline, is noticed within this many seconds
# (maxWaitSeconds is whole seconds, so a deadline can't be hit more closely anyway).
MAX_POLL_SECONDS = 1
# How many times a wait starts over because its collector vanished with a lost session.
MAX_RESTARTS = 3


def wait_for_task(session: Session, op: Operation, task: vim.Task, timeout: float | None = None) -> Any:
    """The task's result once it succeeds; its fault as a VicError if it fails; Timeout/Cancelled from `op`."""
    if timeout is not None:
        op = op.with_timeout(timeout, f"wait for {task._moId}")
    info = _read_info(session, op, task)
    if info.get("info.state") in FINAL_STATES:
        return _outcome(op, task, info)
    for attempt in range(1, MAX_RESTARTS + 1):
        try:
            return _wait_once(session, op, task)
        except _CollectorLost:
            op.debug("property collector of the wait for %s vanished (session lost); waiting again (%d)",
                     task._moId, attempt)
    raise errors.Unavailable(f"lost the vSphere session {MAX_RESTARTS} times waiting for task {task._moId}",
                             op_id=op.id)


class _CollectorLost(Exception):
    pass


def _read_info(session: Session, op: Operation, task: vim.Task) -> dict[str, Any]:
    """The task's state, error and result as they are now (one RetrievePropertiesEx)."""
    op.check()
    try:
        return session.retrieve_one(op, task, list(TASK_PATHS))
    except errors.NotFound as err:
        raise errors.NotFound(f"task {task._moId} no longer exists", fault=err.fault, op_id=op.id) from err


def _outcome(op: Operation, task: vim.Task, info: dict[str, Any]) -> Any:
    """The result of a finished task, or its fault raised as a VicError."""
    if info.get("info.state") == vim.TaskInfo.State.success:
        return info.get("info.result")
    fault = info.get("info.error")
    if fault is None:
        raise errors.VsphereError(f"task {task._moId} failed without a fault", op_id=op.id)
    raise faults.to_vic_error(fault, op_id=op.id)


def _wait_once(session: Session, op: Operation, task: vim.Task) -> Any:
    content = session.content
    logins = session.logins
    collector = session.call(op, content.propertyCollector.CreatePropertyCollector)
    try:
        spec = PropertyCollector.FilterSpec(
            objectSet=[PropertyCollector.ObjectSpec(obj=task, skip=False)],
            propSet=[PropertyCollector.PropertySpec(type=vim.Task, pathSet=list(TASK_PATHS))])
        info: dict[str, Any] = {}
        version = ""
        with session.operation(op, f"wait for task {task._moId}"):
            try:
                collector.CreateFilter(spec, partialUpdates=False)
                while True:
                    op.check()
                    remaining = op.remaining()
                    seconds = MAX_POLL_SECONDS if remaining is None else max(1, min(MAX_POLL_SECONDS,
                                                                                     math.ceil(remaining)))
                    update = collector.WaitForUpdatesEx(version, PropertyCollector.WaitOptions(
                        maxWaitSeconds=seconds))
                    if session.logins != logins:
                        # we logged in again meanwhile: the collector and its filter were the old session's (a
                        # server may even keep them, reporting nothing to the new session)
                        raise _CollectorLost()
                    if update is None:
                        continue  # the long poll ran out with no change
                    version = update.version
                    _apply_update(update, task, info)
                    if info.get("info.state") in FINAL_STATES:
                        return _outcome(op, task, info)
            except vmodl.fault.ManagedObjectNotFound as err:
                if err.obj is not None and err.obj._moId == collector._moId:
                    raise _CollectorLost() from err
                raise errors.NotFound(f"task {task._moId} no longer exists", fault=err, op_id=op.id) from err
    finally:
        try:
            with session.operation(op, "destroy property collector"):
                collector.DestroyPropertyCollector()
        except errors.VicError:
            pass  # gone with its session already


def _apply_update(update, task: vim.Task, info: dict) -> None:
    for filter_update in update.filterSet or []:
        for obj_update in filter_update.objectSet or []:
            if obj_update.obj._moId != task._moId:
                continue
            if obj_update.kind == "leave":
                raise errors.NotFound(f"task {task._moId} no longer exists")
            for change in obj_update.changeSet or []:
                info[change.name] = None if change.op == "remove" else change.val
        for missing in filter_update.missingSet or []:
            if missing.obj._moId == task._moId:
                raise errors.NotFound(f"task {task._moId} no longer exists", fault=missing.fault)


# -- retries ---------------------------------------------------------------------------------------------------------
RETRYABLE = (errors.ConcurrentModification, errors.Busy)


def retry_on_conflict(op: Operation, fn: Callable[[Operation], Any], *, attempts: int = 8,
                      base_delay: float = 0.05, max_delay: float = 1.6,
                      retry_on: tuple[type[errors.VicError], ...] = RETRYABLE) -> Any:
    """`fn(op)`, again after a ConcurrentAccess or TaskInProgress, with jittered exponential backoff, `attempts`
    times at most. `fn` must start from fresh state each time (a new handle): the conflict means ours was stale.

    vSphere faults escaping `fn` are raised as VicErrors; the last conflict is raised when the attempts run out.
    """
    for attempt in range(1, attempts + 1):
        try:
            return fn(op)
        except Exception as err:
            if not isinstance(err, errors.VicError) and not faults.is_vsphere_error(err):
                raise
            mapped = faults.to_vic_error(err, op_id=op.id)
            if not isinstance(mapped, retry_on) or attempt == attempts:
                if mapped is err:
                    raise
                raise mapped from err
            # as VIC's tasks.WaitForResult: 50-150 ms doubling per attempt, capped
            delay = min(max_delay, base_delay * 2 ** (attempt - 1)) * random.uniform(1.0, 3.0) / 2
            op.debug("retrying after %s (attempt %d of %d, in %.0f ms)", type(mapped).__name__, attempt, attempts,
                     delay * 1000)
            op.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
