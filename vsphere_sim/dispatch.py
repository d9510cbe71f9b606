"""The one chokepoint every vim25 call goes through: session, moref lookup, method lookup, faults, fault rules, lock.

Object methods raise pyVmomi `vmodl.MethodFault`s; anything else escaping a method is a bug in the sim and becomes a
`SystemError` fault (logged with its traceback) so the client sees a vSphere fault and the server keeps serving.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyVmomi import VmomiSupport, vim, vmodl

from . import soap
from .faults import FaultRules
from .objects.authorization_manager import check_method_enabled

if TYPE_CHECKING:
    from .sessions import Session
    from .simulator import Simulator

log = logging.getLogger("vsphere_sim.dispatch")

# Methods callable without a logged-in session (what vCenter allows before Login).
UNAUTHENTICATED_METHODS = frozenset({
    "RetrieveServiceContent", "Login", "LoginByToken", "LoginExtensionByCertificate", "CurrentTime",
    "RetrieveInternalContent",
})


@dataclass
class CallContext:
    sim: Simulator
    session: Session
    wsdl_name: str
    version: str
    this: object = None
    # set by a fault rule: run the task part of this call in the background after this many seconds
    task_delay: float = 0.0
    extra: dict = field(default_factory=dict)
    # where tasks.start queues its work to run after the answer is sent (None: run it inline)
    deferred: list | None = None

    @property
    def user(self) -> str:
        return self.session.user or ""


@dataclass
class DispatchResult:
    status: int
    body: bytes
    set_cookie: str | None = None


class Dispatcher:
    def __init__(self, sim: Simulator):
        self.sim = sim
        self.lock = sim.lock
        self.call_counts: Counter = Counter()
        self.fault_rules = FaultRules()
        self._counts_lock = threading.Lock()

    def handle(self, body: bytes, soap_action: str | None, cookie: str | None,
               send: Callable[[DispatchResult], None] | None = None) -> DispatchResult:
        """Serve one SOAP request. With `send`, the answer goes out through it before the work of the tasks the call
        started runs: still under the sim lock, so no other call can see a task unfinished, as when it ran inline;
        the client meanwhile reads the answer and sends its first poll, which waits for the lock."""
        version = soap.version_from_soap_action(soap_action)
        session, set_cookie = self.sim.sessions.for_cookie(cookie)
        try:
            request = soap.parse_request(body, soap_action, version)
        except soap.SoapRequestError as err:
            result = DispatchResult(500, _encode_fault(err.fault, version), set_cookie)
            if send is not None:
                send(result)
            return result
        with self._counts_lock:
            self.call_counts[request.wsdl_name] += 1
        deferred: list[Callable[[], None]] = []
        try:
            try:
                result_type, value = self.call(request, session, deferred if send is not None else None)
                payload = soap.encode_response(request.wsdl_name, result_type, value, request.version)
                result = DispatchResult(200, payload, set_cookie)
            except vmodl.MethodFault as fault:
                result = DispatchResult(500, _encode_fault(fault, request.version), set_cookie)
            except Exception as err:  # a sim bug: answer with a fault and keep serving
                log.exception("internal error in %s", request.wsdl_name)
                fault = vmodl.fault.SystemError(msg=f"{type(err).__name__}: {err}", reason=str(err))
                result = DispatchResult(500, _encode_fault(fault, request.version), set_cookie)
            if send is not None:
                send(result)
            return result
        finally:
            if deferred:
                self._run_deferred(deferred)
            elif self.lock.pending and send is not None:
                # a task poll just showed a task's end: settle it while the client reads the answer (settle.py)
                with self.lock:
                    self.sim.flush_state()

    def _run_deferred(self, deferred: list) -> None:
        """The tasks' work queued by the call, then the state flush; releases the lock `call` kept."""
        try:
            self.lock.queueing = True
            try:
                while deferred:
                    deferred.pop(0)()
            finally:
                self.lock.queueing = False
        finally:
            try:
                self.sim.flush_state()
            finally:
                self.lock.release()

    def call(self, request: soap.SoapRequest, session: Session, deferred: list | None = None):
        """Run the method under the sim lock. With a `deferred` list, task work is queued there instead of run
        inline; when any was queued the lock stays held and the caller must run `_run_deferred(deferred)`."""
        name = request.wsdl_name
        if name not in UNAUTHENTICATED_METHODS and not session.authenticated:
            raise vim.fault.NotAuthenticated(msg="The session is not authenticated.", object=request.this,
                                             privilegeId="System.View")
        rule = self.fault_rules.match(name, request.this._moId)
        if rule is not None and rule.delay and not rule.delay_task_only:
            time.sleep(rule.delay)
        if name in _RETRIEVE_METHODS and _reads_tasks_only(request.args.get("specSet")):
            self.lock.acquire_for_task_poll()
        else:
            self.lock.acquire()
        try:
            session.touch()
            obj = self.sim.registry.get(request.this)
            ctx = CallContext(self.sim, session, name, request.version, request.this, deferred=deferred)
            self.sim.current = ctx
            if rule is not None:
                if rule.fault is not None:
                    raise rule.make_fault(request.this)
                ctx.task_delay = rule.delay if rule.delay_task_only else 0.0
            if request.method is None:
                prop = request.args["prop"]
                result_type = VmomiSupport.GetPropertyInfo(type(request.this), prop).type \
                    if _has_property(type(request.this), prop) else object
                value = obj.get_path(prop)
                return result_type, value
            impl = getattr(obj, name, None)
            if impl is None or not callable(impl):
                raise vmodl.fault.MethodNotFound(
                    msg=f"The method {name} is not implemented by this simulator for {obj.vim_type._wsdlName}",
                    receiver=request.this, method=name)
            if name in (obj.props.get("disabledMethod") or ()):
                check_method_enabled(self.sim, obj, name, session)
            value = impl(ctx, **request.args)
            return request.method.info.result, value
        finally:
            if not deferred:
                try:
                    self.sim.flush_state()
                finally:
                    self.lock.release()


_RETRIEVE_METHODS = frozenset({"RetrievePropertiesEx", "RetrieveProperties"})


def _reads_tasks_only(specs) -> bool:
    """Whether a retrieve reads properties of Task objects and nothing else (no traversal): a task poll."""
    if not specs:
        return False
    for spec in specs:
        for obj_spec in spec.objectSet or ():
            if not isinstance(obj_spec.obj, vim.Task) or obj_spec.selectSet:
                return False
        for prop_spec in spec.propSet or ():
            if not issubclass(prop_spec.type, vim.Task):
                return False
    return True


def _encode_fault(fault: vmodl.MethodFault, version: str) -> bytes:
    """The fault's SOAP body; a fault pyVmomi cannot serialize (a required field unset) is a sim bug: SystemError."""
    try:
        return soap.encode_fault(fault, version)
    except Exception as err:
        log.exception("cannot serialize fault %s", type(fault).__name__)
        return soap.encode_fault(vmodl.fault.SystemError(
            msg=f"{fault.msg or type(fault).__name__} (and the sim could not serialize the fault: {err})",
            reason=str(err)), version)


def _has_property(vim_type, prop: str) -> bool:
    try:
        VmomiSupport.GetPropertyInfo(vim_type, prop)
        return True
    except (AttributeError, KeyError):
        raise vmodl.query.InvalidProperty(msg=f"Invalid property {prop}", name=prop) from None
