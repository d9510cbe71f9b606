"""VirtualMachine: create, register, reconfigure, rename, destroy, unregister; its files on the datastore.

Every change is validated whole before anything is touched, then committed at once: a failed reconfigure leaves the
config (and the disks it would have created) as they were. The `.vmx` is rewritten atomically after every change, so
RegisterVM_Task can rebuild the VM from it. Power operations are in `vm_power.py`, devices in `vm_devices.py`,
files in `vm_files.py`, snapshots in `vm_snapshot.py`, the `.vmx` format in `vmx.py`, config fields in
`vm_config.py`.
"""
from __future__ import annotations

import functools
import logging
import posixpath

from pyVmomi import vim, vmodl

from ..datastore_fs import parse_datastore_path
from ..sessions import now
from . import vm_config, vmx
from .base import ManagedEntityImpl, ref_list_add, ref_list_remove
from .compute import required_false
from .data import make
from .folder import InventoryEntity, check_name_length, check_unique_name, escape_name, new_moid
from .network import backing_network
from .vm_devices import DevicePlanner, default_devices, fill_disk, relabel
from .vm_files import LOG_NAME, VmFiles, quietly, remove_vm_folder
from .vm_power import VmPowerOps, _post, invalid_power_state
from .vm_snapshot import VmSnapshotOps

log = logging.getLogger("vsphere_sim.vm")

# nested pyVmomi types, looked up once: each `vim.vm.X.Y` goes through pyVmomi's lazy-type lookup (a lock and a map)
_GuestSummary = vim.vm.Summary.GuestSummary
_ConfigSummary = vim.vm.Summary.ConfigSummary
_StorageSummary = vim.vm.Summary.StorageSummary
_QuickStats = vim.vm.Summary.QuickStats
_DatastoreUrlPair = vim.vm.ConfigInfo.DatastoreUrlPair

NVRAM_SIZE = 8684


class AttachedDisk(tuple):
    """A VM disk as `(label, "[ds] path")`; it also reads as the VirtualDisk device it describes."""

    def __new__(cls, device):
        self = super().__new__(cls, (device.deviceInfo.label if device.deviceInfo else "", device.backing.fileName))
        self.device = device
        return self

    def __getattr__(self, name):
        return getattr(self.__dict__["device"], name)

    @property
    def label(self) -> str:
        return self[0]

    @property
    def path(self) -> str:
        return self[1]


def _invalid_config(prop: str, msg: str) -> vim.fault.InvalidVmConfig:
    return vim.fault.InvalidVmConfig(msg=msg, property=prop)


def checked_vm_name(name, prop: str = "configSpec.name") -> str:
    """A VM display name as vCenter stores it: not empty, at most 80 characters, `%` `/` `\\` escaped."""
    if name is None or name == "":
        raise _invalid_config(prop, f"A specified parameter was not correct: {prop}")
    check_name_length(name)
    return escape_name(name)


class VirtualMachineImpl(VmPowerOps, VmSnapshotOps, VmFiles, InventoryEntity, ManagedEntityImpl):
    vim_type = vim.VirtualMachine

    # -- creation -----------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, sim, folder, spec, pool_ref, host_ref) -> VirtualMachineImpl:
        if spec is None:
            raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: config",
                                              invalidProperty="config")
        name = checked_vm_name(spec.name)
        if spec.files is None or not spec.files.vmPathName:
            raise _invalid_config("configSpec.files.vmPathName",
                                  "A specified parameter was not correct: configSpec.files.vmPathName")
        check_unique_name(folder, name)
        pool, compute = _pool(sim, pool_ref, folder)
        datastores = sim.datastores
        dspath = datastores.parse(spec.files.vmPathName)
        ds = datastores.datastore(dspath.datastore, datacenter=folder.datacenter(), text=spec.files.vmPathName)
        host = _placement(sim, compute, host_ref, ds)
        bios_uuid = vm_config.valid_uuid(spec.uuid, "configSpec.uuid") if spec.uuid else vm_config.new_bios_uuid()
        instance_uuid = _unique_instance_uuid(sim, spec.instanceUuid)
        vmx_path = datastores.create_vm_home(spec.files.vmPathName, name)
        home = str(vmx_path.parent)
        vm = cls(sim, new_moid(sim, "vm"), name, folder)
        created: list[str] = []
        try:
            vm.init_vm(vm_config.new_config(spec, name, str(vmx_path), bios_uuid, instance_uuid), pool, host)
            config = vm.props["config"]
            vm_config.apply_fields(config, spec)
            config.hardware.device = default_devices()
            plan = DevicePlanner(vm, config.hardware.device, False, lambda: _all_macs(sim),
                                 copy_devices=False).apply(spec.deviceChange)
            created = vm._create_disks(plan)
            config.hardware.device = plan.devices
            vm_config.apply_extra_config(config, spec.extraConfig)
            if not vm.extra_config("nvram"):
                vm_config.apply_extra_config(config, [vim.option.OptionValue(key="nvram",
                                                                             value=vm.base_name() + ".nvram")])
            vm._refresh_config(config)
            sim.datastores.write_new_file(vm.sibling(vm.extra_config("nvram") or vm.base_name() + ".nvram"),
                                          b"NVRAM\0" + bytes(NVRAM_SIZE - 6))
            vm.write_vmx("new")
        except Exception:
            for path in created:
                quietly(sim.datastores.delete_disk, path)
            for leftover in (str(vmx_path), str(vmx_path)[:-len(".vmx")] + ".nvram"):
                if sim.datastores.exists(leftover):
                    quietly(sim.datastores.delete, leftover)
            remove_vm_folder(sim, home)
            raise
        vm.attach(folder, pool, host)
        vm.refresh_files_later()
        _post(vm, vim.event.VmCreatedEvent)
        return vm

    @classmethod
    def register(cls, sim, folder, path, name, as_template, pool_ref, host_ref) -> VirtualMachineImpl:
        """RegisterVM_Task: rebuild a VM from its .vmx (name, uuids, devices, extraConfig)."""
        datastores = sim.datastores
        dspath = datastores.parse(path)
        ds = datastores.datastore(dspath.datastore, datacenter=folder.datacenter(), text=path)
        if not dspath.path.endswith(".vmx"):
            raise vim.fault.InvalidDatastorePath(msg=f"Invalid datastore path '{path}'.", datastorePath=path)
        vmx_path = str(dspath)
        for other in sim.registry.of_type(vim.VirtualMachine):
            if other.props["config"].files.vmPathName == vmx_path:
                raise vim.fault.AlreadyExists(msg=f"The specified key, name, or identifier '{vmx_path}' already "
                                                  f"exists.", name=vmx_path)
        data = datastores.read_file(vmx_path)
        home = str(dspath.parent)
        parsed = vmx.parse_vmx(vmx.loads(data), home)
        display = name if name else parsed.get("displayName")
        if not display:
            display = dspath.name[:-len(".vmx")]
        vm_name = escape_name(display) if name else display
        check_name_length(vm_name)
        if as_template is False and vmx.true(parsed.get("template")):
            as_template = True
        check_unique_name(folder, vm_name)
        if pool_ref is None and not as_template:
            raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: pool",
                                              invalidProperty="pool")
        if pool_ref is not None:
            pool, compute = _pool(sim, pool_ref, folder)
        else:
            if host_ref is None:
                raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: host",
                                                  invalidProperty="host")
            host_obj = sim.registry.get(host_ref)
            compute = host_obj.parent
            pool = compute.root_pool()
        host = _placement(sim, compute, host_ref, ds)
        bios_uuid = vmx.parse_uuid(parsed.get("uuid.bios", "")) or vm_config.new_bios_uuid()
        instance_uuid = vmx.parse_uuid(parsed.get("vc.uuid", ""))
        if instance_uuid is None or any(o.props["config"].instanceUuid == instance_uuid
                                        for o in sim.registry.of_type(vim.VirtualMachine)):
            instance_uuid = vm_config.new_instance_uuid()
        spec = vim.vm.ConfigSpec(
            name=vm_name, guestId=vm_config.GUEST_IDS.get((parsed.get("guestOS") or "").lower(), "otherGuest"),
            numCPUs=_int(parsed.get("numvcpus"), 1), numCoresPerSocket=_int(parsed.get("cpuid.coresPerSocket"), 1),
            memoryMB=_int(parsed.get("memSize"), 32), version="vmx-" + (parsed.get("virtualHW.version") or "21"),
            annotation=parsed.get("annotation"), alternateGuestName=parsed.get("alternateGuestName"),
            firmware=parsed.get("firmware"), cpuHotAddEnabled=vmx.true(parsed.get("vcpu.hotadd")),
            memoryHotAddEnabled=vmx.true(parsed.get("mem.hotadd")))
        vm = cls(sim, new_moid(sim, "vm"), vm_name, folder)
        config = vm_config.new_config(spec, vm_name, vmx_path, bios_uuid, instance_uuid)
        vm_config.apply_fields(config, spec)
        vm.init_vm(config, pool, host)
        config.template = bool(as_template)
        config.hardware.device = _rebuild_devices(sim, vm, parsed)
        _all_macs(sim).update(d.macAddress.lower() for d in config.hardware.device
                              if isinstance(d, vim.vm.device.VirtualEthernetCard) and d.macAddress)
        config.extraConfig = [vim.option.OptionValue(key=k, value=v) for k, v in parsed.extra_config]
        vm._refresh_config(config)
        vm.attach(folder, pool, host)
        vm.write_vmx()
        vm.refresh_files()
        _post(vm, vim.event.VmRegisteredEvent)
        return vm

    def init_vm(self, config, pool, host):
        """The properties of a powered-off VM with this config (devices may still be added)."""
        ref = self.ref
        compute = pool.owner()
        runtime = make(vim.vm.RuntimeInfo,
            host=host.ref, connectionState="connected", powerState="poweredOff", faultToleranceState="notConfigured",
            toolsInstallerMounted=False, numMksConnections=0, recordReplayState="inactive", onlineStandby=False,
            consolidationNeeded=False, paused=False, snapshotInBackground=False, instantCloneFrozen=False,
            suspendInterval=0, device=[], featureRequirement=[], offlineFeatureRequirement=[],
            maxCpuUsage=config.hardware.numCPU * 2400, maxMemoryUsage=config.hardware.memoryMB)
        guest = make(vim.vm.GuestInfo,
            guestState="notRunning", toolsRunningStatus="guestToolsNotRunning", toolsStatus="toolsNotRunning",
            toolsVersionStatus="guestToolsNotInstalled", toolsVersionStatus2="guestToolsNotInstalled",
            toolsVersion="0", guestId=None, net=[], ipStack=[], disk=[], appHeartbeatStatus="appStatusGray",
            guestOperationsReady=False, interactiveGuestOperationsReady=False, guestStateChangeSupported=False,
            generationInfo=[], guestKernelCrashed=False)
        summary = make(vim.vm.Summary,
            vm=ref, runtime=runtime,
            guest=make(_GuestSummary, toolsStatus="toolsNotRunning",
                       toolsVersionStatus2="guestToolsNotInstalled",
                       toolsRunningStatus="guestToolsNotRunning"),
            config=make(_ConfigSummary, name=config.name, template=False,
                        vmPathName=config.files.vmPathName),
            storage=make(_StorageSummary, committed=0, uncommitted=0, unshared=0, timestamp=now()),
            quickStats=make(_QuickStats, guestHeartbeatStatus="gray"), overallStatus="green",
            customValue=[])
        capability = required_false(
            vim.vm.Capability, snapshotOperationsSupported=True, multipleSnapshotsSupported=True,
            snapshotConfigSupported=True, poweredOffSnapshotsSupported=True, memorySnapshotsSupported=True,
            revertToSnapshotSupported=True, quiescedSnapshotsSupported=True, disableSnapshotsSupported=True,
            lockSnapshotsSupported=True, bootOptionsSupported=True, bootRetryOptionsSupported=True,
            changeTrackingSupported=True, multipleCoresPerSocketSupported=True, seSparseDiskSupported=True,
            nestedHVSupported=True, diskSharesSupported=True, swapPlacementSupported=True,
            settingVideoRamSizeSupported=True, toolsSyncTimeSupported=True, virtualMmuUsageSupported=True)
        self.init_props(
            config=config, runtime=runtime, guest=guest, summary=summary, capability=capability,
            environmentBrowser=compute.props.get("environmentBrowser") or vim.EnvironmentBrowser(
                f"envbrowser-{compute.moid}"),
            resourcePool=pool.ref, parentVApp=None,
            resourceConfig=make(vim.ResourceConfigSpec, entity=ref, changeVersion=None, lastModified=None,
                                cpuAllocation=config.cpuAllocation,
                                memoryAllocation=config.memoryAllocation),
            layout=make(vim.vm.FileLayout, configFile=[], logFile=[], disk=[], snapshot=[], swapFile=None),
            layoutEx=make(vim.vm.FileLayoutEx, file=[], disk=[], snapshot=[], timestamp=now()),
            storage=make(vim.vm.StorageInfo, perDatastoreUsage=[], timestamp=now()),
            datastore=[], network=[], snapshot=None, rootSnapshot=[], guestHeartbeatStatus="gray")

    def attach(self, folder, pool, host):
        """Enter the inventory: registry, folder, resource pool, host, datastores, networks."""
        self.sim.registry.add(self)
        folder.add_child(self)
        ref_list_add(pool, "vm", self.ref)
        ref_list_add(host, "vm", self.ref)
        self._sync_links()

    stored_without = {"summary": "runtime"}

    def extra_state(self):
        return {"stale": sorted(self.stale)} if self.stale else {}

    def load_extra_state(self, state):
        self.stale = frozenset(state.get("stale", ()))

    def on_loaded(self):
        self.props["summary"].runtime = self.props["runtime"]
        if self.stale:  # the sim stopped before the last task settled
            self.settle_files()

    # -- paths --------------------------------------------------------------------------------------------------
    def vmx_path(self) -> str:
        return self.props["config"].files.vmPathName

    def home_dir(self) -> str:
        """`"[ds] dir"` of the VM's .vmx."""
        return _home_of(self.vmx_path())

    def base_name(self) -> str:
        return posixpath.basename(self.sim.datastores.parse(self.vmx_path()).path)[:-len(".vmx")]

    def sibling(self, file_name: str) -> str:
        return _sibling_of(self.vmx_path(), file_name)

    def devices(self) -> list:
        return list(self.props["config"].hardware.device or [])

    def host(self):
        return self.sim.registry.get(self.props["runtime"].host)

    def pool(self):
        ref = self.props.get("resourcePool")
        return self.sim.registry.find(ref._moId) if ref is not None else None

    # -- the API for the guest supervisor -------------------------------------------------------------------------
    def extra_config(self, key: str) -> str | None:
        low = key.lower()
        for option in self.props["config"].extraConfig or []:
            if option.key.lower() == low:
                return "" if option.value is None else str(option.value)
        return None

    def extra_config_items(self) -> dict[str, str]:
        return {o.key: "" if o.value is None else str(o.value) for o in self.props["config"].extraConfig or []}

    def update_extra_config(self, values: dict) -> None:
        """Set keys (an empty value deletes one), as a reconfigure does: .vmx rewritten, changeVersion bumped."""
        with self.sim.lock:
            if self.sim.registry.find(self.moid) is not self:
                return
            config = self.props["config"]
            options = [vim.option.OptionValue(key=k, value="" if v is None else v) for k, v in values.items()]
            if vm_config.apply_extra_config(config, options):
                self._bump_change_version(config)
                self.touch("config")
                self.write_vmx()

    def iso_paths(self) -> list[str]:
        return [d.backing.fileName for d in self.devices()
                if isinstance(d, vim.vm.device.VirtualCdrom)
                and isinstance(d.backing, vim.vm.device.VirtualCdrom.IsoBackingInfo) and d.backing.fileName]

    def disks(self) -> list[AttachedDisk]:
        return [AttachedDisk(d) for d in self.devices() if isinstance(d, vim.vm.device.VirtualDisk)]

    def serial_ports(self) -> list:
        return [d for d in self.devices() if isinstance(d, vim.vm.device.VirtualSerialPort)]

    # -- reconfigure --------------------------------------------------------------------------------------------
    def ReconfigVM_Task(self, ctx, spec):
        def work(task):
            self.reconfigure(spec)
            _post(self, vim.event.VmReconfiguredEvent, configSpec=spec)
        return self.sim.tasks.start(ctx, self, work)

    def reconfigure(self, spec):
        config = self.props["config"]
        if spec.changeVersion and spec.changeVersion != config.changeVersion:
            raise vim.fault.ConcurrentAccess(
                msg="Cannot complete operation due to concurrent modification by another operation.")
        name = None
        if spec.name is not None:
            name = checked_vm_name(spec.name)
            if name == self.name:
                name = None
            else:
                check_unique_name(self.parent, name, exclude=self)
        powered_on = self.is_powered_on()
        vm_config.check_reconfigure(config, spec, powered_on)
        if spec.instanceUuid and spec.instanceUuid != config.instanceUuid:
            _unique_instance_uuid(self.sim, spec.instanceUuid)
        new = vm_config.copy_config(config)
        vm_config.apply_fields(new, spec)
        vm_config.apply_extra_config(new, spec.extraConfig)
        if spec.instanceUuid:
            new.instanceUuid = vm_config.valid_uuid(spec.instanceUuid, "configSpec.instanceUuid")
        plan = None
        if spec.deviceChange:
            plan = DevicePlanner(self, new.hardware.device, powered_on,
                                 lambda: _all_macs(self.sim)).apply(spec.deviceChange)
            if powered_on:
                self.check_disk_locks(*self.open_disks(plan.devices))
            for path in plan.replaced:
                self.sim.datastores.delete_disk(path)
            created = self._create_disks(plan)
            try:
                for path, capacity_kb in plan.extends:
                    self.sim.datastores.extend_disk(path, capacity_kb)
            except Exception:
                for path in created:
                    quietly(self.sim.datastores.delete_disk, path)
                raise
            new.hardware.device = plan.devices
        if name is not None:
            new.name = name
        self._bump_change_version(new)
        self._refresh_config(new)
        self.set(config=new)
        if name is not None:
            self.set(name=name)
        if spec.cpuAllocation is not None or spec.memoryAllocation is not None:
            rc = self.props["resourceConfig"]
            rc.cpuAllocation, rc.memoryAllocation = new.cpuAllocation, new.memoryAllocation
            self.touch("resourceConfig")
        if plan is not None:
            for path in plan.destroys:
                if not any(path == d.path for d in self.disks()):
                    quietly(self.sim.datastores.delete_disk, path)
        self._sync_links()
        self.write_vmx_later()
        self.refresh_files_later()
        if plan is not None and powered_on:
            self._guests("devices_changed")  # serial ports connected or disconnected while running

    def _create_disks(self, plan) -> list[str]:
        """Create the plan's new disks; if one fails, remove those already made and raise."""
        created = []
        try:
            for item in plan.creates:
                if item.make_folder:
                    self._make_folder(self.sim.datastores.parse(item.path).parent)
                info = self.sim.datastores.create_disk(item.path, item.capacity_kb, parent=item.parent,
                                                       disk_type="thin" if item.thin else "preallocated")
                created.append(item.path)
                fill_disk(self.sim, item.device, info)
        except Exception:
            for path in created:
                quietly(self.sim.datastores.delete_disk, path)
            raise
        return created

    def _make_folder(self, folder):
        datastores = self.sim.datastores
        if datastores.exists(str(folder)):
            return
        ds = datastores.datastore(folder.datastore)
        if getattr(ds, "is_vsan", False) and folder.is_top_level:
            datastores.create_namespace(ds, folder.name)
        else:
            datastores.make_dir(str(folder), create_parents=True, exist_ok=True)

    def _bump_change_version(self, config):
        config.changeVersion, config.modified = vm_config.next_change_version(config.changeVersion)

    def _refresh_config(self, config):
        """Everything derived from the config: device labels, datastore URLs, and the summary's config part."""
        relabel(config.hardware.device, lambda backing: self._network_name(backing))
        urls = []
        for ds in self._datastores(config):
            urls.append(make(_DatastoreUrlPair, name=ds.name, url=f"/vmfs/volumes/{ds.volume_id}"))
        config.datastoreUrl = urls
        config.hotPlugMemoryLimit = config.hardware.memoryMB
        summary = self.props["summary"]
        devices = config.hardware.device
        summary.config = make(_ConfigSummary,
            name=config.name, template=config.template, vmPathName=config.files.vmPathName,
            memorySizeMB=config.hardware.memoryMB, cpuReservation=config.cpuAllocation.reservation or 0,
            memoryReservation=config.memoryAllocation.reservation or 0, numCpu=config.hardware.numCPU,
            numEthernetCards=sum(isinstance(d, vim.vm.device.VirtualEthernetCard) for d in devices),
            numVirtualDisks=sum(isinstance(d, vim.vm.device.VirtualDisk) for d in devices), uuid=config.uuid,
            instanceUuid=config.instanceUuid, guestId=config.guestId, guestFullName=config.guestFullName,
            annotation=config.annotation or "", installBootRequired=False, tpmPresent=False,
            numVmiopBackings=0, hwVersion=config.version, managedBy=config.managedBy)
        self.touch("summary")

    def _network_name(self, backing) -> str | None:
        net = backing_network(self.sim, backing)
        if net is not None:
            return net.name
        return getattr(backing, "deviceName", None)

    def _datastores(self, config=None):
        """The datastores holding this VM's files: its home, its disks (and their parents), its ISOs."""
        config = config or self.props["config"]
        names = [self.sim.datastores.parse(config.files.vmPathName).datastore]
        for dev in config.hardware.device or []:
            backing = getattr(dev, "backing", None)
            while backing is not None and getattr(backing, "fileName", None):
                text = backing.fileName
                if text.startswith("["):
                    names.append(text[1:].partition("]")[0])
                backing = getattr(backing, "parent", None)
        out = []
        for name in dict.fromkeys(names):
            try:
                out.append(self.sim.datastores.datastore(name))
            except vmodl.MethodFault:
                pass
        return out

    def _sync_links(self):
        """`datastore` and `network` here, `vm` on each of those, as vCenter keeps both sides."""
        datastores = self._datastores()
        networks = []
        for dev in self.devices():
            if isinstance(dev, vim.vm.device.VirtualEthernetCard):
                net = backing_network(self.sim, dev.backing)
                if net is not None and net not in networks:
                    networks.append(net)
        for prop, targets in (("datastore", datastores), ("network", networks)):
            old = {r._moId for r in self.props.get(prop) or []}
            new = {t.moid for t in targets}
            for moid in old - new:
                obj = self.sim.registry.find(moid)
                if obj is not None:
                    _unlink_vm(obj, self)
            for target in targets:
                if target.moid not in old:
                    _link_vm(target, self)
            if old != new or len(old) != len(self.props.get(prop) or []):
                self.set(**{prop: [t.ref for t in targets]})

    # -- rename -------------------------------------------------------------------------------------------------
    def Rename_Task(self, ctx, newName):
        def work(task):
            if newName is None or newName == "":
                raise vim.fault.InvalidName(msg=f"The name '{newName or ''}' is invalid", name=newName or "",
                                            entity=self.ref)
            check_name_length(newName)
            name = escape_name(newName)
            if name == self.name:
                return
            check_unique_name(self.parent, name, exclude=self)
            old = self.name
            config = vm_config.copy_config(self.props["config"])
            config.name = name
            self._bump_change_version(config)
            self._refresh_config(config)
            self.set(config=config, name=name)
            self.write_vmx_later()
            _post(self, vim.event.VmRenamedEvent, oldName=old, newName=name)
        return self.sim.tasks.start(ctx, self, work)

    # -- leaving the inventory ----------------------------------------------------------------------------------
    def check_destroy(self):
        if self.power_state == "poweredOn":
            raise invalid_power_state("poweredOff", "poweredOn")

    def check_destroy_inventory(self):
        self.check_destroy()

    def destroy(self):
        """Destroy_Task: the VM's files go, its attached disks too (but not one another disk still depends on), and
        its folder once empty. The VM leaves the inventory at once; its files go when the task settles (settle.py):
        no client sees them in between, and a crash in between leaves only files no VM refers to."""
        datastores = self.sim.datastores
        home = self.home_dir()
        self._guests("power_off")
        disks = [disk.path for disk in self.disks()]
        serial_files = []
        for dev in self.serial_ports():  # serial output in the VM's folder is the VM's, like its log
            backing = dev.backing
            if isinstance(backing, vim.vm.device.VirtualSerialPort.FileBackingInfo) and \
                    backing.fileName.startswith(home + "/"):
                serial_files.append(backing.fileName)
        snapshot_files = [f"{self.base_name()}-Snapshot{n.id}.vmsn" for n in self._all_nodes()]
        own_files = [self.base_name() + ".vmx", self.extra_config("nvram") or self.base_name() + ".nvram", LOG_NAME,
                     self.swap_name(), self.base_name() + ".vmxf", self.base_name() + ".vmsd", *snapshot_files]

        def remove_files():
            for path in disks:
                try:
                    datastores.delete_disk(path)
                except vim.fault.FileNotFound:
                    pass
                except vmodl.MethodFault as fault:  # FileLocked: another disk has it as its parent
                    log.info("%s: disk %s kept: %s", self.moid, path, fault.msg)
            for path in serial_files:
                if datastores.exists(path):
                    quietly(datastores.delete, path)
            datastores.remove_files(home, own_files)
            remove_vm_folder(self.sim, home)

        self.remove_from_inventory()
        self.sim.lock.later(remove_files)

    def UnregisterVM(self, ctx):
        if self.power_state == "poweredOn":
            raise invalid_power_state("poweredOff", "poweredOn")
        self.remove_from_inventory()

    def remove_from_inventory(self):
        """Leave folder, pool, host, datastores and networks; files stay."""
        if self.power_state != "poweredOff":
            self._guests("power_off")
        folder = self.parent
        if folder is not None:
            folder.remove_child(self)
        pool = self.pool()
        if pool is not None:
            ref_list_remove(pool, "vm", self.ref)
        host = self.sim.registry.find(self.props["runtime"].host._moId)
        if host is not None:
            ref_list_remove(host, "vm", self.ref)
        for prop in ("datastore", "network"):
            for ref in self.props.get(prop) or []:
                obj = self.sim.registry.find(ref._moId)
                if obj is not None:
                    _unlink_vm(obj, self)
        self.drop_snapshots()
        _post(self, vim.event.VmRemovedEvent, leaving=True)
        self.sim.registry.remove(self)

    def move_to_pool(self, pool):
        old = self.pool()
        if old is not None:
            ref_list_remove(old, "vm", self.ref)
        ref_list_add(pool, "vm", self.ref)
        self.set(resourcePool=pool.ref)

    def move_to_host(self, host):
        old = self.host()
        ref_list_remove(old, "vm", self.ref)
        ref_list_add(host, "vm", self.ref)
        runtime = self.props["runtime"]
        runtime.host = host.ref
        self.touch("runtime", "summary")

    def MarkAsTemplate(self, ctx):
        if self.power_state != "poweredOff":
            raise invalid_power_state("poweredOff", self.power_state)
        self._set_template(True)

    def MarkAsVirtualMachine(self, ctx, pool, host=None):
        if not self.props["config"].template:
            raise vmodl.fault.NotSupported(msg="The operation is not supported on the object: the virtual machine "
                                               "is not a template.")
        self.move_to_pool(self.sim.registry.get(pool))
        self._set_template(False)

    def _set_template(self, template: bool):
        config = self.props["config"]
        config.template = template
        self._bump_change_version(config)
        self._refresh_config(config)
        self.touch("config")
        self.write_vmx()


# -- helpers --------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _home_of(vmx_path: str) -> str:
    # the paths of a VM's files are asked for a dozen times per operation; they only change with vmPathName
    return str(parse_datastore_path(vmx_path).parent)


@functools.lru_cache(maxsize=16384)
def _sibling_of(vmx_path: str, file_name: str) -> str:
    return str(parse_datastore_path(_home_of(vmx_path)).join(file_name))


def _pool(sim, pool_ref, folder):
    if pool_ref is None:
        raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: pool", invalidProperty="pool")
    pool = sim.registry.get(pool_ref)
    if not isinstance(pool.ref, vim.ResourcePool):
        raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: pool", invalidProperty="pool")
    compute = pool.owner()
    if compute.datacenter() is not folder.datacenter():
        raise vmodl.fault.InvalidArgument(msg="The resource pool is not in the folder's datacenter",
                                          invalidProperty="pool")
    return pool, compute


def _placement(sim, compute, host_ref, ds):
    if host_ref is not None:
        host = sim.registry.get(host_ref)
        if not isinstance(host.ref, vim.HostSystem) or host.parent is not compute:
            raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: host",
                                              invalidProperty="host")
        return host
    host = compute.pick_host(ds)
    if host is None:
        if compute.pick_host() is None:
            raise vim.fault.InvalidState(msg=f"No host in {compute.name} is available to run the virtual machine.")
        raise vim.fault.InvalidDatastore(msg=f"The datastore '{ds.name}' is not accessible from any host of "
                                             f"{compute.name}.", datastore=ds.ref, name=ds.name)
    return host


def _unique_instance_uuid(sim, wanted: str | None) -> str:
    if not wanted:
        return vm_config.new_instance_uuid()  # random: 114 bits, no need to look for a clash
    value = vm_config.valid_uuid(wanted, "configSpec.instanceUuid")
    for other in sim.registry.of_type(vim.VirtualMachine):
        if other.props["config"].instanceUuid == value:
            raise vmodl.fault.InvalidArgument(
                msg=f"A specified parameter was not correct: configSpec.instanceUuid (already used by "
                    f"{other.name})", invalidProperty="configSpec.instanceUuid")
    return value


def _all_macs(sim) -> set[str]:
    """The live set of MACs in use (the SearchIndex keeps it); the planner adds the ones it makes."""
    index = sim.registry.find("SearchIndex")
    if index is None or not hasattr(index, "used_macs"):
        return set()
    return index.used_macs()


def _link_vm(obj, vm):
    add = getattr(obj, "add_vm", None)
    if add is not None:
        add(vm)
    elif "vm" in obj.props:
        ref_list_add(obj, "vm", vm.ref)


def _unlink_vm(obj, vm):
    remove = getattr(obj, "remove_vm", None)
    if remove is not None:
        remove(vm)
    elif "vm" in obj.props:
        ref_list_remove(obj, "vm", vm.ref)


def _rebuild_devices(sim, vm, parsed) -> list:
    """Devices read from a .vmx, completed as the VM had them: disk capacities and chains from their files, NIC
    networks by name (or distributed port group), labels."""
    from .network import find_network, find_portgroup
    devices = default_devices()
    keys = {d.key for d in devices}
    by_key = {d.key: d for d in devices}
    for dev in parsed.devices:
        if dev.key in keys:
            continue
        if isinstance(dev, vim.vm.device.VirtualDisk):
            try:
                fill_disk(sim, dev, sim.datastores.disk_info(dev.backing.fileName))
            except vmodl.MethodFault as fault:
                log.warning("%s: disk %s of the registered VM is unreadable: %s", vm.moid, dev.backing.fileName,
                            fault.msg)
        elif isinstance(dev, vim.vm.device.VirtualEthernetCard):
            net = parsed.nic_networks.get(dev.key, {})
            if net.get("portgroup"):
                pg = find_portgroup(sim, net.get("switch"), net.get("portgroup"))
                port = vim.dvs.PortConnection(switchUuid=net.get("switch") or "", portgroupKey=net.get("portgroup"),
                                              portKey=net.get("port"))
                if pg is not None:
                    pg.assign_port(port)
                dev.backing = vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=port)
            else:
                found = find_network(sim, vm.datacenter(), None, net.get("name"))
                dev.backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
                    deviceName=net.get("name") or "", network=found.ref if found is not None else None)
        elif isinstance(dev, vim.vm.device.VirtualCdrom) and isinstance(
                dev.backing, vim.vm.device.VirtualCdrom.IsoBackingInfo):
            try:
                dev.backing.datastore = sim.datastores.datastore(
                    sim.datastores.parse(dev.backing.fileName).datastore).ref
            except vmodl.MethodFault:
                pass
        devices.append(dev)
        keys.add(dev.key)
        by_key[dev.key] = dev
    for dev in devices:
        controller = by_key.get(dev.controllerKey) if dev.controllerKey is not None else None
        if isinstance(controller, vim.vm.device.VirtualController) and dev.key not in (controller.device or []):
            controller.device = list(controller.device or []) + [dev.key]
    return devices


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
