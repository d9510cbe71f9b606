"""The vSphere calls the exec component makes on container VMs: read one, wait for one to change, power, destroy,
delete its folder, run a guest program. Every call goes through `vic_ref.vsphere` (faults arrive as VicErrors).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from ... import errors
from ...trace import Operation
from ...vsphere import DatastorePath, Session, vim, vmodl
from .container import Snapshot

PropertyCollector = vmodl.query.PropertyCollector

# What the port layer reads of a container VM: everything a Snapshot needs.
PROPERTIES = ("name", "runtime.powerState", "config.changeVersion", "config.extraConfig", "config.files.vmPathName",
              "summary.config.numCpu", "summary.config.memorySizeMB")


def run_task(session: Session, op: Operation, obj, method: str, **kwargs) -> Any:
    """`obj.<method>(**kwargs)`, a `*_Task`, and its result; a fault's message is vSphere's own text (the session's
    `run_task` would put pyVmomi's name for the bound method, `<lambda>`, before it)."""
    with session.operation(op):
        task = getattr(obj, method)(**kwargs)
    return session.wait_for_task(op, task)


def read(session: Session, op: Operation, vm) -> Snapshot:
    """A fresh snapshot of a container VM (NotFound when it is gone)."""
    props = session.retrieve_one(op, vm, list(PROPERTIES))
    return Snapshot.from_properties(vm, props)


def wait_until(session: Session, op: Operation, vm, paths: tuple[str, ...],
               predicate: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any] | None:
    """Watch `paths` of one VM until `predicate(values)` holds: the values, or None after `timeout` seconds.

    A property collector of its own (as govmomi's property.Wait): vSphere tells us of each change, we never poll.
    NotFound when the VM goes away meanwhile.
    """
    deadline = time.monotonic() + max(timeout, 0.0)
    collector = session.call(op, session.content.propertyCollector.CreatePropertyCollector)
    values: dict[str, Any] = {}
    try:
        spec = PropertyCollector.FilterSpec(
            objectSet=[PropertyCollector.ObjectSpec(obj=vm, skip=False)],
            propSet=[PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=list(paths))])
        with session.operation(op, f"wait for {vm._moId}"):
            collector.CreateFilter(spec, partialUpdates=False)
            version = ""
            while True:
                op.check()
                left = deadline - time.monotonic()
                # the first call returns the current values at once; later ones long-poll (whole seconds, at most
                # one, so a cancel or the deadline is noticed soon)
                seconds = 0 if not version else max(0, min(1, math.ceil(left)))
                update = collector.WaitForUpdatesEx(version, PropertyCollector.WaitOptions(maxWaitSeconds=seconds))
                if update is not None:
                    version = update.version
                    for filter_update in update.filterSet or []:
                        for obj_update in filter_update.objectSet or []:
                            if obj_update.kind == "leave":
                                raise errors.NotFound(f"{vm._moId} no longer exists", op_id=op.id)
                            for change in obj_update.changeSet or []:
                                values[change.name] = None if change.op == "remove" else change.val
                    if predicate(values):
                        return values
                if time.monotonic() >= deadline:
                    return None
    except vmodl.fault.ManagedObjectNotFound as err:
        raise errors.NotFound(f"{vm._moId} no longer exists", fault=err, op_id=op.id) from err
    finally:
        try:
            session.call(op, collector.DestroyPropertyCollector)
        except errors.VicError:
            pass


def wait_for_power_off(session: Session, op: Operation, vm, timeout: float) -> bool:
    """Whether the VM is (or within `timeout` seconds gets) powered off."""
    if timeout <= 0:
        state = session.retrieve_one(op, vm, ["runtime.powerState"]).get("runtime.powerState")
        return state == "poweredOff"
    found = wait_until(session, op, vm, ("runtime.powerState",),
                       lambda v: v.get("runtime.powerState") == "poweredOff", timeout)
    return found is not None


def power_on(session: Session, op: Operation, vm) -> None:
    """Power on; a disk another running VM holds (a volume) is VIC's DevicesInUseError: `device <id> in use`."""
    try:
        run_task(session, op, vm, "PowerOnVM_Task")
    except errors.VicError as err:
        locked = locked_disks(err.fault)
        if not locked:
            raise
        from ..storage.volumes import volume_of_disk
        raise DevicesInUse([volume_of_disk(path) for path in locked], fault=err.fault, op_id=op.id) from err


class DevicesInUse(errors.Conflict):
    """VIC's DevicesInUseError: a power on refused because another running VM holds these disks."""

    def __init__(self, devices: list[str], **kwargs):
        super().__init__(f"device {','.join(devices)} in use", **kwargs)
        self.devices = devices


def locked_disks(fault) -> list[str]:
    """The disk files a GenericVmConfigFault `msg.fileio.lock` names (VIC's vm.LockedDisks), else []."""
    messages = getattr(fault, "faultMessage", None) or []
    if not any(getattr(m, "key", "") == "msg.fileio.lock" for m in messages):
        return []
    out = []
    for message in messages:
        if getattr(message, "key", "") == "msg.disk.noBackEnd":
            for arg in getattr(message, "arg", None) or []:
                if arg.value and str(arg.value) not in out:
                    out.append(str(arg.value))
    return out


def detach_independent_disks(session: Session, op: Operation, vm) -> list[str]:
    """Remove the VM's independent disks (volumes) from it, files kept, so a destroy leaves them on the datastore
    (VIC DeleteExceptDisks). The files detached."""
    devices = session.retrieve_one(op, vm, ["config.hardware.device"]).get("config.hardware.device") or []
    disks = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)
             and str(getattr(d.backing, "diskMode", "") or "").startswith("independent")]
    if not disks:
        return []
    spec = vim.vm.ConfigSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="remove", device=d)
                                           for d in disks])
    run_task(session, op, vm, "ReconfigVM_Task", spec=spec)
    return [d.backing.fileName for d in disks]


def power_off(session: Session, op: Operation, vm) -> bool:
    """Hard power off; False when the VM was off already (VIC poweroff tolerates exactly that)."""
    try:
        run_task(session, op, vm, "PowerOffVM_Task")
        return True
    except errors.InvalidState as err:
        if isinstance(err.fault, vim.fault.InvalidPowerState) and err.fault.existingState == "poweredOff":
            return False
        raise


def destroy(session: Session, op: Operation, vm) -> None:
    """Destroy the VM; already gone is fine. A VM found powered on is powered off first. Its independent disks
    (volumes) are detached first: they outlive the VM."""
    try:
        detach_independent_disks(session, op, vm)
        run_task(session, op, vm, "Destroy_Task")
    except errors.NotFound:
        return
    except errors.InvalidState:
        power_off(session, op, vm)
        try:
            detach_independent_disks(session, op, vm)
            run_task(session, op, vm, "Destroy_Task")
        except errors.NotFound:
            return


def delete_folder(session: Session, op: Operation, folder: DatastorePath, datacenter) -> bool:
    """Delete a datastore folder and whatever is left in it (on vSAN, a namespace); False if it was not there."""
    manager = session.content.fileManager
    try:
        run_task(session, op, manager, "DeleteDatastoreFile_Task", name=str(folder), datacenter=datacenter)
        return True
    except errors.NotFound:
        return False


def folder_exists(session: Session, op: Operation, datastore, folder: DatastorePath) -> bool:
    """Whether `[ds] <name>` exists, asked through the datastore browser."""
    browser = session.retrieve_one(op, datastore, ["browser"])["browser"]
    parent = folder.parent
    spec = vim.host.DatastoreBrowser.SearchSpec(matchPattern=[folder.name])
    try:
        result = run_task(session, op, browser, "SearchDatastore_Task", datastorePath=str(parent), searchSpec=spec)
    except errors.NotFound:
        return False
    return any(f.path == folder.name or getattr(f, "friendlyName", None) == folder.name
               for f in result.file or [])


def guest_program(session: Session, op: Operation, vm, container_id: str, program: str, arguments: str = "") -> int:
    """Run a tether command (`kill TERM`, `group-kill KILL`, `reload`) as VIC does: the container ID is the user,
    with no password (the tether accepts only its container's ID). The guest's pid of the command."""
    auth = vim.vm.guest.NamePasswordAuthentication(username=container_id, password="", interactiveSession=False)
    spec = vim.vm.guest.ProcessManager.ProgramSpec(programPath=program, arguments=arguments)
    op.debug("guest program %s %s on %s", program, arguments, vm._moId)
    with session.operation(op):
        processes = session.content.guestOperationsManager.processManager
        return processes.StartProgramInGuest(vm, auth, spec)


__all__ = ["PROPERTIES", "run_task", "read", "wait_until", "wait_for_power_off", "power_on", "power_off", "destroy",
           "delete_folder", "folder_exists", "guest_program", "DevicesInUse", "locked_disks",
           "detach_independent_disks"]
