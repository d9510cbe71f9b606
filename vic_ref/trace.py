"""Operations: the id that follows one request through every layer (VIC's `pkg/trace`).

An `Operation` is the first argument of every cross-layer call. Every log line written through it starts with
`op=<id>: `, so one `docker run` can be followed from the personality through the port layer down to vSphere (the
vSphere layer also sends the id as the SOAP `operationID` header, which vCenter writes into its own logs).

Ids: a root operation is `<pid>.<n>`; a child's id chains onto its parent's (`<parent>.<n>`), so a grep for the root
id finds the whole tree. An operation also carries what Go's context carried in VIC: a deadline and cancellation, both
inherited by children, checked by long waits (task waits, retries) through `check()` and `sleep()`.
"""
from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from typing import Any

from .errors import Cancelled, Timeout

DEFAULT_LOGGER = logging.getLogger("vic_ref")

# Process-wide, like VIC's opCount: root ids must be unique within the process. Nothing else depends on it, so it
# doesn't stop several PortLayers or sims from running side by side in one test process.
_root_ids = itertools.count(1)


class OperationLogger(logging.LoggerAdapter):
    """Prefixes every message with `op=<id>: ` and puts the id in the record as `op_id`."""

    def process(self, msg: Any, kwargs: dict) -> tuple[Any, dict]:
        extra = dict(kwargs.get("extra") or {})
        extra.setdefault("op_id", self.extra["op_id"])
        kwargs["extra"] = extra
        return f"op={self.extra['op_id']}: {msg}", kwargs


class Operation:
    """One unit of work, passed first to every cross-layer call. Create roots with `Operation.new()`."""

    def __init__(self, description: str, *, op_id: str | None = None, parent: Operation | None = None,
                 deadline: float | None = None, logger: logging.Logger | None = None):
        self.id = op_id if op_id is not None else f"{os.getpid()}.{next(_root_ids)}"
        self.parent = parent
        self.description = description
        self.started = time.monotonic()
        # monotonic clock; None = no deadline of its own (a parent's may still apply)
        self.deadline = deadline
        self._logger = logger or (parent._logger if parent is not None else DEFAULT_LOGGER)
        self.log = OperationLogger(self._logger, {"op_id": self.id})
        self._cancelled = threading.Event()
        self._child_ids = itertools.count(1)

    # -- creation -----------------------------------------------------------------------------------------------
    @classmethod
    def new(cls, description: str, *, timeout: float | None = None,
            logger: logging.Logger | None = None) -> Operation:
        """A root operation (an incoming API request, a background job)."""
        deadline = time.monotonic() + timeout if timeout is not None else None
        op = cls(description, deadline=deadline, logger=logger)
        op.log.debug("[NewOperation] %s", description)
        return op

    @classmethod
    def from_id(cls, op_id: str | None, description: str, *, logger: logging.Logger | None = None) -> Operation:
        """Continue an operation whose id arrived from elsewhere (another process, a request header).

        As VIC's NewOperationFromID: a child chained onto the incoming id, or a new root when there is none.
        """
        if not op_id:
            return cls.new(description, logger=logger)
        carrier = cls(description, op_id=op_id, logger=logger)
        return carrier.child(description)

    def child(self, description: str, *, timeout: float | None = None) -> Operation:
        """A sub-operation: id `<self.id>.<n>`, inherits logger, deadline and cancellation."""
        deadline = time.monotonic() + timeout if timeout is not None else None
        child = Operation(description, op_id=f"{self.id}.{next(self._child_ids)}", parent=self, deadline=deadline)
        self.log.debug("[ChildOperation: %s] %s", child.id, description)
        return child

    def with_timeout(self, timeout: float, description: str | None = None) -> Operation:
        return self.child(description or self.description, timeout=timeout)

    # -- deadline and cancellation ------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Cancel this operation and every child made from it."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        node: Operation | None = self
        while node is not None:
            if node._cancelled.is_set():
                return True
            node = node.parent
        return False

    def effective_deadline(self) -> float | None:
        """The earliest deadline of this operation and its ancestors (monotonic clock), or None."""
        deadlines = [n.deadline for n in self._lineage() if n.deadline is not None]
        return min(deadlines) if deadlines else None

    def remaining(self) -> float | None:
        """Seconds left before the deadline (may be negative), or None without a deadline."""
        deadline = self.effective_deadline()
        return None if deadline is None else deadline - time.monotonic()

    @property
    def expired(self) -> bool:
        remaining = self.remaining()
        return remaining is not None and remaining <= 0

    def check(self) -> None:
        """Raise Cancelled or Timeout if the operation should stop now."""
        if self.cancelled:
            raise Cancelled(f"{self.description}: operation {self.id} was cancelled", op_id=self.id)
        if self.expired:
            raise Timeout(f"{self.description}: operation {self.id} exceeded its deadline", op_id=self.id)

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake up and raise as soon as the operation is cancelled or runs out of time."""
        end = time.monotonic() + max(0.0, seconds)
        while True:
            self.check()
            left = end - time.monotonic()
            remaining = self.remaining()
            if remaining is not None:
                left = min(left, remaining)
            if left <= 0:
                self.check()
                return
            # our own cancel wakes us at once; an ancestor's is seen within 50 ms
            self._cancelled.wait(min(left, 0.05))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _lineage(self):
        node: Operation | None = self
        while node is not None:
            yield node
            node = node.parent

    # -- logging ------------------------------------------------------------------------------------------------
    def logger(self, logger: logging.Logger | str) -> OperationLogger:
        """This operation's prefix on another logger (a module's own `logging.getLogger(__name__)`)."""
        base = logging.getLogger(logger) if isinstance(logger, str) else logger
        return OperationLogger(base, {"op_id": self.id})

    def debug(self, msg: str, *args, **kwargs) -> None:
        self.log.debug(msg, *args, **kwargs)

    def info(self, msg: str, *args, **kwargs) -> None:
        self.log.info(msg, *args, **kwargs)

    def warning(self, msg: str, *args, **kwargs) -> None:
        self.log.warning(msg, *args, **kwargs)

    def error(self, msg: str, *args, **kwargs) -> None:
        self.log.error(msg, *args, **kwargs)

    def exception(self, msg: str, *args, **kwargs) -> None:
        self.log.exception(msg, *args, **kwargs)

    def __str__(self) -> str:
        return f"op={self.id}"

    def __repr__(self) -> str:
        return f"<Operation {self.id} {self.description!r}>"


__all__ = ["Operation", "OperationLogger", "DEFAULT_LOGGER"]
