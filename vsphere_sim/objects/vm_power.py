"""A VM's power operations: power on/off, reset, suspend, guest shutdown and reboot, with vSphere's faults.

The runtime state lives in `runtime` (shared with `summary.runtime`); each transition writes a line to the VM's
`vmware.log`, posts the event vCenter posts, and boots or stops the VM's guest program through `sim.guests`.
"""
from __future__ import annotations

import logging

from pyVmomi import vim, vmodl

from ..sessions import now

log = logging.getLogger("vsphere_sim.vm")

STATE_TEXT = {"poweredOn": "Powered on", "poweredOff": "Powered off", "suspended": "Suspended"}
DISK_LOCK_EXEMPT_MODES = ("nonpersistent", "independent_nonpersistent", "undoable")


def invalid_power_state(requested: str | None, existing: str) -> vim.fault.InvalidPowerState:
    return vim.fault.InvalidPowerState(
        msg=f"The attempted operation cannot be performed in the current state ({STATE_TEXT.get(existing, existing)}).",
        requestedState=requested, existingState=existing)


def _post(vm, event_type, *, leaving: bool = False, **fields):
    """Post a VM event as vCenter does; in a task it is built and posted when the task settles (settle.py). An event
    about a VM `leaving` the inventory is built at once, while the inventory still knows where the VM was."""
    from .event_manager import vm_event
    sim = vm.sim
    ctx = sim.current
    user, stamp = (ctx.user if ctx is not None else ""), now()

    def build():
        event = vm_event(sim, event_type, vm, **fields)
        event.createdTime = stamp
        return event, (sim.events.entry_for(event) if leaving else None)

    def post(built=None):
        try:
            event, entry = built or build()
            sim.events.post(event, user=user, entry=entry)
        except Exception:  # an event must never break the operation that posts it
            log.exception("%s: cannot post %s", vm.moid, event_type.__name__)

    if not leaving:
        sim.lock.later(post)
        return
    try:
        built = build()
    except Exception:
        log.exception("%s: cannot post %s", vm.moid, event_type.__name__)
        return
    sim.lock.later(lambda: post(built))


class VmPowerOps:
    """Mixed into VirtualMachineImpl."""

    @property
    def power_state(self) -> str:
        return self.props["runtime"].powerState

    def is_powered_on(self) -> bool:
        return self.power_state == "poweredOn"

    # -- WSDL methods -------------------------------------------------------------------------------------------
    def PowerOnVM_Task(self, ctx, host=None):
        return self.sim.tasks.start(ctx, self, lambda task: self.power_on(host))

    def PowerOffVM_Task(self, ctx):
        def work(task):
            if self.power_state == "poweredOff":
                raise invalid_power_state("poweredOff", "poweredOff")
            self.power_off("Powering off (PowerOffVM_Task)")
            _post(self, vim.event.VmPoweredOffEvent)
        return self.sim.tasks.start(ctx, self, work)

    def ResetVM_Task(self, ctx):
        def work(task):
            if self.power_state != "poweredOn":
                raise invalid_power_state("poweredOn", self.power_state)
            _post(self, vim.event.VmResettingEvent)
            self.vm_log("Reset: the virtual machine is being reset")
            self._guests("power_off")
            self._set_runtime(bootTime=now())
            self.vm_log("Power on (after reset)")
            self._guests("power_on")
        return self.sim.tasks.start(ctx, self, work)

    def SuspendVM_Task(self, ctx):
        def work(task):
            if self.power_state != "poweredOn":
                raise invalid_power_state("poweredOn", self.power_state)
            self.vm_log("Suspending the virtual machine")
            self._set_runtime(powerState="suspended", suspendTime=now())
            self._disconnect_devices()
            self._guests("power_off")
            self.refresh_files()
            _post(self, vim.event.VmSuspendedEvent)
        return self.sim.tasks.start(ctx, self, work)

    def ShutdownGuest(self, ctx):
        self._require_tools()
        _post(self, vim.event.VmGuestShutdownEvent)
        shutdown = getattr(self.sim.guests, "shutdown", None)
        if shutdown is not None:
            shutdown(self)
        else:
            self.power_off("Guest OS initiated shutdown (ShutdownGuest)")
            _post(self, vim.event.VmPoweredOffEvent)

    def RebootGuest(self, ctx):
        self._require_tools()
        _post(self, vim.event.VmGuestRebootEvent)
        self.vm_log("Guest OS initiated reboot (RebootGuest)")
        reboot = getattr(self.sim.guests, "reboot", None)
        if reboot is not None:
            reboot(self)
        else:
            self._guests("power_off")
            self._guests("power_on")

    def StandbyGuest(self, ctx):
        self._require_tools()
        raise vmodl.fault.NotSupported(msg="The guest operating system does not support standby.")

    def _require_tools(self):
        if self.power_state != "poweredOn":
            raise invalid_power_state("poweredOn", self.power_state)
        guest = self.props.get("guest")
        if guest is None or guest.toolsRunningStatus != "guestToolsRunning":
            raise vim.fault.ToolsUnavailable(
                msg="Cannot complete operation because VMware Tools is not running in this virtual machine.")

    # -- transitions ----------------------------------------------------------------------------------------------
    def power_on(self, host_ref=None):
        state = self.power_state
        if state == "poweredOn":
            raise invalid_power_state("poweredOn", state)
        if self.props["config"].template:
            raise vmodl.fault.NotSupported(msg="The operation is not supported on the object: a template can't be "
                                               "powered on.")
        host = self.host()
        if host_ref is not None and host_ref._moId != host.moid:
            target = self.sim.registry.get(host_ref)
            if target.parent is not host.parent:
                raise vmodl.fault.InvalidArgument(msg="The host is not in the VM's compute resource",
                                                  invalidProperty="host")
            self.move_to_host(target)
            host = target
        if not host.connected:
            raise vim.fault.InvalidHostState(msg=f"The operation is not allowed in the current state of the host "
                                                 f"{host.name}.", host=host.ref)
        self.check_disk_locks()
        resumed = state == "suspended"
        self._set_runtime(powerState="poweredOn", bootTime=self.props["runtime"].bootTime if resumed else now(),
                          suspendTime=None)
        self._connect_devices()
        self._create_swap()
        self.vm_log("Power on" if not resumed else "Resuming the virtual machine")
        self.refresh_files_later()
        _post(self, vim.event.VmResumingEvent if resumed else vim.event.VmPoweredOnEvent)
        self._guests("power_on")

    def power_off(self, why: str):
        """To poweredOff, from on or suspended (the caller checked it may)."""
        self.vm_log(why)
        self._set_runtime(powerState="poweredOff", bootTime=None, suspendTime=None)
        self._disconnect_devices()
        self._delete_swap()
        self.refresh_files_later()
        self._guests("power_off")

    def guest_power_off(self):
        """The guest halted by itself (its program exited or asked to): the VM powers off, as after a guest
        shutdown. Safe to call from any thread; a no-op unless the VM is powered on."""
        with self.sim.lock:
            if self.sim.registry.find(self.moid) is not self or self.power_state != "poweredOn":
                return
            self.power_off("Guest OS halted; powering off")
            _post(self, vim.event.VmPoweredOffEvent)

    def _guests(self, what: str):
        hook = getattr(self.sim.guests, what, None)
        if hook is None:
            return
        try:
            hook(self)
        except Exception:  # a guest program that can't start leaves a VM whose OS never came up
            log.exception("%s: guests.%s failed", self.moid, what)

    def _set_runtime(self, **values):
        runtime = self.props["runtime"]
        for key, value in values.items():
            setattr(runtime, key, value)
        summary = self.props["summary"]
        summary.runtime = runtime
        on = runtime.powerState == "poweredOn"
        summary.quickStats.guestHeartbeatStatus = "gray"
        summary.quickStats.uptimeSeconds = 0 if on else None
        summary.quickStats.overallCpuUsage = 0 if on else None
        runtime.maxCpuUsage = self.props["config"].hardware.numCPU * 2400
        runtime.maxMemoryUsage = self.props["config"].hardware.memoryMB
        self.touch("runtime", "summary")

    def _connect_devices(self):
        changed = False
        for dev in self.devices():
            conn = getattr(dev, "connectable", None)
            if conn is not None and conn.connected != bool(conn.startConnected):
                conn.connected = bool(conn.startConnected)
                changed = True
        if changed:
            self.touch("config")

    def _disconnect_devices(self):
        changed = False
        for dev in self.devices():
            conn = getattr(dev, "connectable", None)
            if conn is not None and conn.connected:
                conn.connected = False
                changed = True
        if changed:
            self.touch("config")

    # -- disk locks -----------------------------------------------------------------------------------------------
    def open_disks(self, devices=None):
        """(leaf files opened read-write, parent files opened read-only) of this VM's disks."""
        rw, ro = set(), set()
        for dev in self.devices() if devices is None else devices:
            if not isinstance(dev, vim.vm.device.VirtualDisk):
                continue
            backing = dev.backing
            mode = getattr(backing, "diskMode", None)
            if getattr(backing, "sharing", None) == "sharingMultiWriter":
                continue
            (ro if mode in DISK_LOCK_EXEMPT_MODES else rw).add(backing.fileName)
            parent = getattr(backing, "parent", None)
            while parent is not None:
                ro.add(parent.fileName)
                parent = getattr(parent, "parent", None)
        return rw, ro

    def check_disk_locks(self, rw=None, ro=None):
        """ESX locks a running VM's disks: a disk open read-write elsewhere (or read-only elsewhere while we need it
        read-write) fails the power on with GenericVmConfigFault `msg.fileio.lock`, as VIC's LockedDisks reads it."""
        if rw is None:
            rw, ro = self.open_disks()
        if not rw and not ro:
            return
        locked = []
        for other in self.sim.registry.of_type(vim.VirtualMachine):
            if other is self or other.power_state == "poweredOff":
                continue
            orw, oro = other.open_disks()
            locked.extend(sorted((rw & (orw | oro)) | (ro & orw)))
        if locked:
            raise self.lock_fault(sorted(set(locked)))

    def lock_fault(self, files) -> vim.fault.GenericVmConfigFault:
        LM, KV = vmodl.LocalizableMessage, vmodl.KeyAnyValue
        messages = [LM(key="msg.fileio.lock", message="Failed to lock the file")]
        for file_name in files:
            path = self.vmfs_path(file_name)
            messages.append(LM(key="msg.disk.noBackEnd", arg=[KV(key="1", value=path)],
                               message=f"Cannot open the disk '{path}' or one of the snapshot disks it depends on. "))
        messages += [LM(key="msg.moduletable.powerOnFailed", arg=[KV(key="1", value="Disk")],
                        message="Module 'Disk' power on failed. "),
                     LM(key="msg.vmx.poweron.failed", message="Failed to start the virtual machine."),
                     LM(key="vpxd.vm.poweron.unexpectedfailure", arg=[KV(key="1", value=self.name)],
                        message=f"An error was received from the ESX host while powering on VM {self.name}.")]
        text = " ".join(m.message.strip() for m in reversed(messages))
        return vim.fault.GenericVmConfigFault(msg=text, reason="Failed to lock the file", faultMessage=messages)

    def vmfs_path(self, ds_path: str) -> str:
        """`"[ds] dir/x.vmdk"` as ESX names it in faults: `/vmfs/volumes/<volume uuid>/dir/x.vmdk`."""
        try:
            parsed = self.sim.datastores.parse(ds_path)
            ds = self.sim.datastores.datastore(parsed.datastore)
            return f"/vmfs/volumes/{ds.volume_id}/{parsed.path}"
        except (vmodl.MethodFault, AttributeError):
            return ds_path
