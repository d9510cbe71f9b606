"""Guest operations: GuestOperationsManager and its process and auth managers, served by the VM's guest program.

Every call checks, in vSphere's order: the VM is powered on (`InvalidPowerState`, "The attempted operation cannot be
performed in the current state (Powered off)."); its guest agent runs, i.e. the guest program is connected to its
channel (`GuestOperationsUnavailable`, "The guest operations agent could not be contacted."); the credentials are ones
the guest declared with `accept_logins` (`InvalidGuestLogin`); then the operation. StartProgramInGuest,
TerminateProcessInGuest and ReadEnvironmentVariableInGuest go to the guest as operations on its channel (protocol in
`vsphere_sim/guest_transport.py`) and wait for its answer at most `sim.guests.op_timeout` seconds; the guest answers a
start with a pid (the call's result) and later an exit code, which ListProcessesInGuest reports (exited processes stay
listed for 5 minutes, as on ESX).
"""
from __future__ import annotations

from pyVmomi import vim, vmodl

from ..guest_transport import GuestChannelRefused
from .base import ManagedObjectImpl
from .event_manager import entity_argument, post_event

UNAVAILABLE = "The guest operations agent could not be contacted."
BAD_LOGIN = "Failed to authenticate with the guest operating system using the supplied credentials."
_STATE_NAMES = {"poweredOff": "Powered off", "suspended": "Suspended", "poweredOn": "Powered on"}


class GuestOperationsManagerImpl(ManagedObjectImpl):
    vim_type = vim.vm.guest.GuestOperationsManager
    persistent = False

    def create_children(self):
        registry = self.sim.registry
        for cls, moid in ((GuestProcessManagerImpl, "guestOperationsProcessManager"),
                          (GuestAuthManagerImpl, "guestOperationsAuthManager")):
            if registry.find(moid) is None:
                registry.add(cls(self.sim, moid))
        self.set(processManager=vim.vm.guest.ProcessManager("guestOperationsProcessManager"),
                 authManager=vim.vm.guest.AuthManager("guestOperationsAuthManager"))


# -- the checks every guest operation makes ---------------------------------------------------------------------
def _vm(sim, vm_ref):
    vm = sim.registry.get(vm_ref)
    if not isinstance(vm.ref, vim.VirtualMachine):
        raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: vm", invalidProperty="vm")
    return vm


def guest_for(sim, vm_ref, auth, need_operations: bool = False):
    """(vm, guest instance, username) for a guest operation, or the fault vSphere gives."""
    vm = _vm(sim, vm_ref)
    runtime = vm.props.get("runtime")
    state = getattr(runtime, "powerState", None) or "poweredOff"
    if state != "poweredOn":
        raise vim.fault.InvalidPowerState(
            msg=f"The attempted operation cannot be performed in the current state ({_STATE_NAMES.get(state, state)}).",
            requestedState="poweredOn", existingState=state)
    instance = sim.guests.instance(vm)
    if instance is None or not instance.connected or (need_operations and not instance.operations_ready):
        raise vim.fault.GuestOperationsUnavailable(msg=UNAVAILABLE)
    return vm, instance, authenticate(instance, auth)


def authenticate(instance, auth) -> str:
    if isinstance(auth, vim.vm.guest.NamePasswordAuthentication):
        if instance.accepts_login(auth.username, auth.password):
            return auth.username
    elif isinstance(auth, vim.vm.guest.TicketedSessionAuthentication):
        user = instance.tickets.get(auth.ticket or "")
        if user is not None:
            return user
    raise vim.fault.InvalidGuestLogin(msg=BAD_LOGIN)


def _send(sim, instance, kind: str, payload: dict) -> dict:
    try:
        return sim.guests.send_operation(instance, kind, payload)
    except GuestChannelRefused:
        raise vim.fault.GuestOperationsUnavailable(msg=UNAVAILABLE) from None


def _guest_fault(reply: dict, program: str | None = None, pid: int | None = None) -> vmodl.MethodFault:
    """The fault a guest's rejection stands for."""
    name, message = reply.get("fault") or "GuestOperationsFault", reply.get("message") or ""
    if name == "FileNotFound":
        return vim.fault.FileNotFound(msg=message or f"File {program} was not found", file=program)
    if name == "GuestProcessNotFound":
        return vim.fault.GuestProcessNotFound(msg=message or f"The process {pid} was not found", pid=pid or 0)
    if name == "GuestPermissionDenied":
        return vim.fault.GuestPermissionDenied(msg=message or "Insufficient permissions in the guest")
    if name == "InvalidGuestLogin":
        return vim.fault.InvalidGuestLogin(msg=message or BAD_LOGIN)
    if name == "OperationNotSupportedByGuest":
        return vim.fault.OperationNotSupportedByGuest(msg=message or "The operation is not supported by the guest")
    if name == "GuestOperationsUnavailable":
        return vim.fault.GuestOperationsUnavailable(msg=message or UNAVAILABLE)
    return vim.fault.GuestOperationsFault(msg=message or "The guest operation failed")


def _post_guest_event(sim, vm, operation: str):
    # vCenter logs each guest operation on the VM ("Guest operation Start Program performed on Virtual machine ...").
    post_event(sim, vim.event.EventEx(
        eventTypeId="com.vmware.vc.guestOperations.GuestOperation", severity="info", vm=entity_argument(vm),
        objectId=vm.moid, objectType=vim.VirtualMachine, objectName=vm.props.get("name"),
        arguments=[vim.KeyAnyValue(key="operationName", value=operation)],
        fullFormattedMessage=f"Guest operation {operation} performed on Virtual machine {vm.props.get('name')}."))


class GuestProcessManagerImpl(ManagedObjectImpl):
    vim_type = vim.vm.guest.ProcessManager
    persistent = False

    def StartProgramInGuest(self, ctx, vm, auth, spec):
        obj, instance, user = guest_for(self.sim, vm, auth, need_operations=True)
        if spec is None or not spec.programPath:
            raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: spec.programPath",
                                              invalidProperty="spec.programPath")
        payload = {"program": spec.programPath, "arguments": spec.arguments or "",
                   "working_directory": spec.workingDirectory, "env": list(spec.envVariables or []), "user": user}
        reply = _send(self.sim, instance, "start", payload)
        if reply.get("status") not in ("started", "exited"):
            raise _guest_fault(reply, program=spec.programPath)
        _post_guest_event(self.sim, obj, "Start Program")
        return reply["pid"]

    def ListProcessesInGuest(self, ctx, vm, auth, pids=None):
        _, instance, _ = guest_for(self.sim, vm, auth)
        wanted = set(pids or [])
        return vim.vm.guest.ProcessManager.ProcessInfo.Array([
            vim.vm.guest.ProcessManager.ProcessInfo(name=p.name, pid=p.pid, owner=p.owner, cmdLine=p.cmd_line,
                                                    startTime=p.start_time, endTime=p.end_time,
                                                    exitCode=p.exit_code)
            for p in sorted(instance.process_list(), key=lambda p: p.pid) if not wanted or p.pid in wanted])

    def TerminateProcessInGuest(self, ctx, vm, auth, pid):
        obj, instance, user = guest_for(self.sim, vm, auth, need_operations=True)
        process = instance.processes.get(pid)
        if process is None or process.end_time is not None:
            raise vim.fault.GuestProcessNotFound(msg=f"The process {pid} was not found", pid=pid)
        reply = _send(self.sim, instance, "terminate", {"pid": pid, "user": user})
        if reply.get("status") != "done":
            raise _guest_fault(reply, pid=pid)
        _post_guest_event(self.sim, obj, "Terminate Process")

    def ReadEnvironmentVariableInGuest(self, ctx, vm, auth, names=None):
        _, instance, user = guest_for(self.sim, vm, auth, need_operations=True)
        reply = _send(self.sim, instance, "environment", {"names": list(names or []), "user": user})
        if reply.get("status") != "environment":
            raise _guest_fault(reply)
        return [str(v) for v in reply.get("env") or []]


class GuestAuthManagerImpl(ManagedObjectImpl):
    vim_type = vim.vm.guest.AuthManager
    persistent = False

    def ValidateCredentialsInGuest(self, ctx, vm, auth):
        guest_for(self.sim, vm, auth)

    def AcquireCredentialsInGuest(self, ctx, vm, requestedAuth, sessionID=None):
        _, instance, user = guest_for(self.sim, vm, requestedAuth)
        return vim.vm.guest.TicketedSessionAuthentication(ticket=instance.issue_ticket(user), interactiveSession=False)

    def ReleaseCredentialsInGuest(self, ctx, vm, auth):
        _, instance, _ = guest_for(self.sim, vm, auth)
        if isinstance(auth, vim.vm.guest.TicketedSessionAuthentication):
            instance.tickets.pop(auth.ticket, None)
