"""Tasks: a `*_Task` method returns a Task at once; its work runs here, queued → running → success | error.

The work runs inline (the task is already finished when the call returns, as a fast vCenter often is) unless a fault
rule asks for a delay, in which case it runs on a worker thread after the delay, under the sim lock. A call served over
HTTP queues the work on its context instead: dispatch sends the answer first and then runs it, still under the lock the
call took, so no other call ever sees the task unfinished but the client reads the answer meanwhile.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pyVmomi import VmomiSupport, vim, vmodl

from .objects.base import ManagedObjectImpl
from .objects.data import make
from .sessions import now

if TYPE_CHECKING:
    from .dispatch import CallContext

log = logging.getLogger("vsphere_sim.tasks")

# Finished tasks stay readable for a while (vCenter keeps them around), then are dropped from the registry.
KEEP_FINISHED = 2000


class TaskImpl(ManagedObjectImpl):
    vim_type = vim.Task
    persistent = False

    def SetTaskState(self, ctx, state, result=None, fault=None):
        info = self.props["info"]
        info.state = state
        info.result = result
        info.error = fault
        self.touch("info")

    def UpdateProgress(self, ctx, percentDone):
        self.props["info"].progress = percentDone
        self.touch("info")

    def CancelTask(self, ctx):
        raise vim.fault.InvalidState(msg="The task can no longer be cancelled")


def _method_for(wsdl_name: str):
    try:
        return VmomiSupport.GetWsdlMethod("urn:vim25", wsdl_name)
    except KeyError:
        return None


class TaskRunner:
    def __init__(self, sim):
        self.sim = sim
        self._finished: collections.deque = collections.deque()
        self._event_chain = 0

    def start(self, ctx: CallContext, target: ManagedObjectImpl, work: Callable[[TaskImpl], object],
              entity: ManagedObjectImpl | None = None) -> vim.Task:
        """Create the Task for the current call and run `work(task)`; its return value is the task's result."""
        registry = self.sim.registry
        task = TaskImpl(self.sim, registry.next_id("task"))
        method = _method_for(ctx.wsdl_name)
        entity = entity if entity is not None else (target if isinstance(target.ref, vim.ManagedEntity) else None)
        self._event_chain += 1
        info = make(
            vim.TaskInfo,
            key=task.moid, task=task.ref, name=method, descriptionId=_description_id(target, method, ctx.wsdl_name),
            entity=entity.ref if entity is not None else None,
            entityName=entity.name if entity is not None else None,
            state="queued", cancelled=False, cancelable=False, reason=make(vim.TaskReasonUser, userName=ctx.user),
            queueTime=now(), eventChainId=self._event_chain, changeTag=None, parentTaskKey=None,
            rootTaskKey=None, activationId=None)
        task.init_props(info=info)
        registry.add(task)
        if ctx.task_delay:
            thread = threading.Thread(target=self._run_later, args=(task, work, ctx.task_delay), daemon=True,
                                      name=f"task-{task.moid}")
            thread.start()
        elif ctx.deferred is not None:
            ctx.deferred.append(lambda: self._run(task, work))
        else:
            self._run(task, work)
        return task.ref

    def _run_later(self, task, work, delay):
        time.sleep(delay)
        with self.sim.lock:
            try:
                self._run(task, work)
            finally:
                self.sim.flush_state()

    def _run(self, task: TaskImpl, work):
        info = task.props["info"]
        # state and the times are values of the field's own type: set without pyVmomi's per-set type check (the
        # result and error, whatever the work gave, still go through it)
        _set = object.__setattr__
        _set(info, "state", "running")
        _set(info, "startTime", now())
        task.touch("info")
        try:
            result = work(task)
        except vmodl.MethodFault as fault:
            _set(info, "state", "error")
            info.error = fault
        except Exception as err:
            log.exception("task %s failed", task.moid)
            _set(info, "state", "error")
            info.error = vmodl.fault.SystemError(msg=f"{type(err).__name__}: {err}", reason=str(err))
        else:
            _set(info, "state", "success")
            info.result = result
        _set(info, "completeTime", now())
        task.touch("info")
        self._retire(task)

    def _retire(self, task):
        self._finished.append(task)
        while len(self._finished) > KEEP_FINISHED:
            self.sim.registry.remove(self._finished.popleft())


def _description_id(target, method, wsdl_name) -> str:
    name = method.info.name if method is not None else wsdl_name
    return f"{target.vim_type._wsdlName}.{name[:1].lower()}{name[1:]}"
