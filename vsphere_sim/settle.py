"""The sim's one lock, and the work a finished task leaves to settle.

A task's end is visible as soon as a poll reads its `info`. What no such poll can read (the events it posts, the file
layout it changed) need not be done by then: it is queued while the task runs and settles before the lock serves
anything else, either at the next acquire (unless that acquire is a task poll, which reads task info only) or right
after the answer that showed the task's end, while the client is still reading it. A client therefore never observes
an unsettled sim, and the time a client spends between a poll's answer and its next call is no longer idle.

What settling costs in durability: a `kill -9` in the fraction of a millisecond between a task's end becoming visible
and its settle flush loses that task's events; a VM's .vmx and file layout are redone on load (see `VmFiles.stale`).
"""
from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable

log = logging.getLogger("vsphere_sim.settle")


class SimLock:
    """A re-entrant lock (usable by `threading.Condition`) with the settle queue."""

    def __init__(self):
        self._lock = threading.RLock()
        self._local = threading.local()
        self.pending: collections.deque[Callable[[], None]] = collections.deque()
        # set by the dispatcher while a call's tasks run after its answer: only then is settle work queued
        self.queueing = False

    # -- the lock -----------------------------------------------------------------------------------------------
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not self._lock.acquire(blocking, timeout):
            return False
        local = self._local
        depth = local.__dict__.get("depth", 0) + 1
        local.depth = depth
        if depth == 1 and self.pending and not local.__dict__.get("task_poll"):
            self.settle()
        return True

    def release(self) -> None:
        self._local.depth -= 1
        self._lock.release()

    __enter__ = acquire

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire_for_task_poll(self) -> None:
        """Acquire without settling: the caller only reads tasks' info, which settling never changes."""
        self._local.task_poll = True
        try:
            self.acquire()
        finally:
            self._local.task_poll = False

    # what threading.Condition uses to wait with the lock held at any depth, and to take it back
    def _is_owned(self) -> bool:
        return self._lock._is_owned()

    def _release_save(self):
        depth = self._local.__dict__.get("depth", 0)
        self._local.depth = 0
        return self._lock._release_save(), depth

    def _acquire_restore(self, saved) -> None:
        state, depth = saved
        self._lock._acquire_restore(state)
        self._local.depth = depth
        if depth == 1 and self.pending and not self._local.__dict__.get("task_poll"):
            self.settle()

    # -- settling -----------------------------------------------------------------------------------------------
    def later(self, work: Callable[[], None]) -> None:
        """Run `work` when the running task's end has been shown (at once when no task is being run after its
        call's answer)."""
        if self.queueing:
            self.pending.append(work)
        else:
            work()

    def settle(self) -> None:
        """Run the queued work, in order (the lock is held). A failure is logged: it must not fail the caller."""
        pending = self.pending
        while pending:
            work = pending.popleft()
            try:
                work()
            except Exception:
                log.exception("settling %r failed", work)
