"""Compute: hosts, standalone compute resources, clusters, resource pools, and the environment browser of each."""
from __future__ import annotations

import functools
import uuid as uuid_mod

from pyVmomi import VmomiSupport, vim, vmodl

from ..sessions import now
from .base import ManagedEntityImpl, ManagedObjectImpl, ref_list_add, ref_list_remove
from .data import make
from .folder import InventoryEntity, check_unique_name, checked_entity_name, new_moid

ESX_VERSION = "8.0.3"
ESX_BUILD = "24022510"
# what every simulated host has: 2 sockets x 8 cores x 2 threads at 2.4 GHz, 64 GiB
CPU_PACKAGES = 2
CPU_CORES = 16
CPU_THREADS = 32
CPU_MHZ = 2400
MEMORY_BYTES = 64 * 1024 ** 3
CPU_MODEL = "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz"


def required_false(cls, **values):
    """A data object with every required boolean set False unless given (capability objects have dozens)."""
    for name in _required_bools(cls):
        values.setdefault(name, False)
    return make(cls, **values)


@functools.cache
def _required_bools(cls) -> tuple[str, ...]:
    return tuple(prop.name for prop in cls._GetPropertyList()
                 if not prop.flags & VmomiSupport.F_OPTIONAL and prop.type is bool)


def esx_about() -> vim.AboutInfo:
    return vim.AboutInfo(name="VMware ESXi", fullName=f"VMware ESXi {ESX_VERSION} build-{ESX_BUILD}",
                         vendor="VMware, Inc.", version=ESX_VERSION, build=ESX_BUILD, localeVersion="INTL",
                         localeBuild="000", osType="vmnix-x86", productLineId="embeddedEsx", apiType="HostAgent",
                         apiVersion="8.0.3.0", licenseProductName="VMware ESX Server", licenseProductVersion="8.0")


def _allocation(shares: int, reservation: int = 0, limit: int = -1, expandable: bool = True):
    return vim.ResourceAllocationInfo(reservation=reservation, expandableReservation=expandable, limit=limit,
                                      shares=vim.SharesInfo(level="normal", shares=shares), overheadLimit=None)


def _usage(total: int) -> vim.ResourcePool.ResourceUsage:
    return vim.ResourcePool.ResourceUsage(reservationUsed=0, reservationUsedForVm=0, unreservedForPool=total,
                                          unreservedForVm=total, overallUsage=0, maxUsage=total)


@functools.lru_cache(maxsize=1)
def _host_browser_class():
    from .datastore_browser import KINDS, B, DatastoreBrowserImpl

    class HostDatastoreBrowserImpl(DatastoreBrowserImpl):
        """A host's own browser: the same searches, over the datastores the host mounts."""

        def __init__(self, sim, moid, host):
            ManagedObjectImpl.__init__(self, sim, moid)
            self.host_moid = host.moid
            self.init_props(supportedType=[query() for query, _ in KINDS.values()] + [B.Query()])

        def prop_datastore(self):
            host = self.sim.registry.find(self.host_moid)
            return vim.Datastore.Array(list(host.props["datastore"]) if host is not None else [])

    return HostDatastoreBrowserImpl


# -- hosts ----------------------------------------------------------------------------------------------------------
class HostSystemImpl(InventoryEntity, ManagedEntityImpl):
    vim_type = vim.HostSystem

    @classmethod
    def add(cls, sim, compute, spec) -> HostSystemImpl:
        """A host joins vCenter: AddHost_Task / AddStandaloneHost_Task."""
        name = (spec.hostName or "").strip() if spec is not None else ""
        if not name:
            raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: spec.hostName",
                                              invalidProperty="spec.hostName")
        for other in sim.registry.of_type(vim.HostSystem):
            if other.name == name:
                raise vim.fault.AlreadyConnected(msg=f"The host {name} is already managed by this vCenter Server.",
                                                 name=name)
        host = cls(sim, new_moid(sim, "host"), name, compute)
        host.build(spec)
        sim.registry.add(host)
        net_sys = host.create_network_system()
        host.props["configManager"].networkSystem = net_sys.ref
        # every ESX host comes with vSwitch0 and its Management Network
        net_sys.AddVirtualSwitch(None, "vSwitch0", vim.host.VirtualSwitch.Specification(numPorts=128, mtu=1500))
        net_sys.add_portgroup(vim.host.PortGroup.Specification(
            name="Management Network", vlanId=0, vswitchName="vSwitch0", policy=vim.host.NetworkPolicy()),
            vm_network=False)
        host.props["datastoreBrowser"] = host.ensure_browser()
        host.touch("configManager", "datastoreBrowser")
        return host

    def ensure_browser(self):
        """The host's HostDatastoreBrowser (`datastoreBrowser-host-N`): it browses the datastores the host mounts."""
        moid = f"datastoreBrowser-{self.moid}"
        if self.sim.registry.find(moid) is None:
            self.sim.registry.add(_host_browser_class()(self.sim, moid, self))
        return vim.host.DatastoreBrowser(moid)

    def build(self, spec):
        boot = now()
        host_uuid = str(uuid_mod.uuid4())
        runtime = vim.host.RuntimeInfo(connectionState="connected", powerState="poweredOn", inMaintenanceMode=False,
                                       inQuarantineMode=False, standbyMode="none", bootTime=boot,
                                       healthSystemRuntime=None, dasHostState=None)
        hardware_summary = vim.host.Summary.HardwareSummary(
            vendor="VMware, Inc.", model="VMware Virtual Platform", uuid=host_uuid, memorySize=MEMORY_BYTES,
            cpuModel=CPU_MODEL, cpuMhz=CPU_MHZ, numCpuPkgs=CPU_PACKAGES, numCpuCores=CPU_CORES,
            numCpuThreads=CPU_THREADS, numNics=2, numHBAs=2)
        config_summary = vim.host.Summary.ConfigSummary(
            name=self.name, port=(spec.port if spec is not None and spec.port else 443),
            sslThumbprint=spec.sslThumbprint if spec is not None else None, product=esx_about(),
            vmotionEnabled=False, faultToleranceEnabled=False, featureVersion=[], agentVmDatastore=None,
            agentVmNetwork=None)
        summary = vim.host.Summary(
            host=self.ref, hardware=hardware_summary, runtime=runtime, config=config_summary,
            quickStats=vim.host.Summary.QuickStats(overallCpuUsage=0, overallMemoryUsage=0, distributedCpuFairness=0,
                                                   distributedMemoryFairness=0, uptime=0),
            overallStatus="green", rebootRequired=False, managementServerIp="127.0.0.1", maxEVCModeKey=None,
            currentEVCModeKey=None, customValue=[])
        hardware = vim.host.HardwareInfo(
            systemInfo=vim.host.SystemInfo(vendor="VMware, Inc.", model="VMware Virtual Platform", uuid=host_uuid,
                                           serialNumber=f"VMware-{host_uuid[:8]}"),
            cpuInfo=vim.host.CpuInfo(numCpuPackages=CPU_PACKAGES, numCpuCores=CPU_CORES, numCpuThreads=CPU_THREADS,
                                     hz=CPU_MHZ * 1000 * 1000),
            cpuPkg=[vim.host.CpuPackage(index=i, vendor="intel", hz=CPU_MHZ * 1000 * 1000, busHz=100 * 1000 * 1000,
                                        description=CPU_MODEL, threadId=list(range(i * 16, i * 16 + 16)))
                    for i in range(CPU_PACKAGES)],
            memorySize=MEMORY_BYTES, smcPresent=False, cpuFeature=[], numaInfo=None,
            biosInfo=vim.host.BIOSInfo(biosVersion="6.00", releaseDate=boot, vendor="Phoenix Technologies LTD"))
        capability = required_false(
            vim.host.Capability, recursiveResourcePoolsSupported=True, cpuMemoryResourceConfigurationSupported=True,
            rebootSupported=True, shutdownSupported=True, vmotionSupported=True, maintenanceModeSupported=True,
            perVmSwapFiles=True, localSwapDatastoreSupported=True, nfsSupported=True, iscsiSupported=True,
            vlanTaggingSupported=True, nicTeamingSupported=True, highGuestMemSupported=True,
            deltaDiskBackingsSupported=True, storageVMotionSupported=True, vStorageCapable=True,
            nestedHVSupported=True, maxRunningVMs=1024, maxSupportedVcpus=768, maxRegisteredVMs=4096,
            maxSupportedVMs=1024, datastorePrincipalSupported=True, supportedVmfsMajorVersion=[6])
        config = vim.host.ConfigInfo(host=self.ref, product=esx_about(), hyperThread=None, network=None,
                                     option=[], optionDef=[])
        self.init_props(
            runtime=runtime, summary=summary, hardware=hardware, capability=capability, config=config,
            configManager=vim.host.ConfigManager(), datastoreBrowser=None, vm=[], datastore=[], network=[],
            licensableResource=vim.LicenseManager.LicensableResourceInfo(
                resource=[vim.KeyAnyValue(key="numCpuPackages", value=CPU_PACKAGES),
                          vim.KeyAnyValue(key="numCpuCores", value=CPU_CORES)]),
            systemResources=None)

    def create_network_system(self):
        from .network import HostNetworkSystemImpl
        net_sys = HostNetworkSystemImpl(self.sim, f"networkSystem-{self.moid.rpartition('-')[2]}", self)
        self.sim.registry.add(net_sys)
        return net_sys

    def network_system(self):
        ref = self.props["configManager"].networkSystem
        return self.sim.registry.find(ref._moId) if ref is not None else None

    def refresh_network_config(self):
        """host.config.network mirrors the network system's networkInfo."""
        net_sys = self.network_system()
        if net_sys is not None:
            self.props["config"].network = net_sys.props["networkInfo"]
            self.touch("config")

    def on_loaded(self):
        self.props["summary"].runtime = self.props["runtime"]
        self.refresh_network_config()
        self.ensure_browser()

    @property
    def connected(self) -> bool:
        runtime = self.props["runtime"]
        return runtime.connectionState == "connected" and not runtime.inMaintenanceMode

    def _set_runtime(self, **values):
        runtime = self.props["runtime"]
        for key, value in values.items():
            setattr(runtime, key, value)
        self.props["summary"].runtime = runtime
        self.touch("runtime", "summary")
        compute = self.parent
        if compute is not None and hasattr(compute, "refresh_summary"):
            compute.refresh_summary()

    def check_new_name(self, new_name):
        raise vmodl.fault.NotSupported(msg="A host can't be renamed; its name is its address")

    # -- WSDL methods -------------------------------------------------------------------------------------------
    def EnterMaintenanceMode_Task(self, ctx, timeout, evacuatePoweredOffVms=None, maintenanceSpec=None):
        def work(task):
            if self.props["runtime"].inMaintenanceMode:
                raise vim.fault.InvalidState(msg="The operation is not allowed in the current state.")
            for ref in self.props["vm"]:
                vm = self.sim.registry.get(ref)
                if vm.power_state != "poweredOff":
                    raise vim.fault.InvalidState(msg=f"The host {self.name} has powered-on virtual machines")
            self._set_runtime(inMaintenanceMode=True)
        return self.sim.tasks.start(ctx, self, work)

    def ExitMaintenanceMode_Task(self, ctx, timeout):
        def work(task):
            if not self.props["runtime"].inMaintenanceMode:
                raise vim.fault.InvalidState(msg="The operation is not allowed in the current state.")
            self._set_runtime(inMaintenanceMode=False)
        return self.sim.tasks.start(ctx, self, work)

    def DisconnectHost_Task(self, ctx):
        def work(task):
            self._set_runtime(connectionState="disconnected")
        return self.sim.tasks.start(ctx, self, work)

    def ReconnectHost_Task(self, ctx, cnxSpec=None, reconnectSpec=None):
        def work(task):
            self._set_runtime(connectionState="connected")
        return self.sim.tasks.start(ctx, self, work)

    def RetrieveHardwareUptime(self, ctx):
        return int((now() - self.props["runtime"].bootTime).total_seconds())

    def QueryHostConnectionInfo(self, ctx):
        return vim.host.ConnectInfo(serverIp="127.0.0.1", inDasCluster=False, host=self.props["summary"],
                                    vm=[], vimAccountNameRequired=False, clusterSupported=True, network=[],
                                    datastore=[], license=None, capability=None)

    def check_destroy(self):
        runtime = self.props["runtime"]
        if runtime.connectionState == "connected" and not runtime.inMaintenanceMode:
            raise vim.fault.InvalidState(msg=f"The host {self.name} must be in maintenance mode or disconnected to "
                                             f"be removed.")

    def destroy(self):
        """The host leaves vCenter: its VMs leave the inventory (their files stay), its mounts and links go."""
        sim = self.sim
        for ref in list(self.props["vm"]):
            vm = sim.registry.find(ref._moId)
            if vm is not None:
                vm.remove_from_inventory()
        for ref in list(self.props["datastore"]):
            ds = sim.registry.find(ref._moId)
            if ds is not None:
                unmount = getattr(ds, "unmount_from", None)
                if unmount is not None:
                    unmount(self)
                else:
                    ref_list_remove(ds, "host", self.ref)
        for ref in list(self.props["network"]):
            net = sim.registry.find(ref._moId)
            if net is not None:
                ref_list_remove(net, "host", self.ref)
        net_sys = self.network_system()
        if net_sys is not None:
            sim.registry.remove(net_sys)
        compute = self.parent
        if compute is not None:
            compute.host_removed(self)
        sim.registry.remove(self)


# -- compute resources ----------------------------------------------------------------------------------------------
class ComputeResourceImpl(InventoryEntity, ManagedEntityImpl):
    """A standalone host's compute resource (`domain-sN`)."""
    vim_type = vim.ComputeResource

    @classmethod
    def add_standalone(cls, sim, folder, spec, comp_res_spec=None) -> ComputeResourceImpl:
        name = (spec.hostName or "").strip() if spec is not None else ""
        if name:
            check_unique_name(folder, name)
        compute = cls(sim, new_moid(sim, "domain-s"), name or "host", folder)
        compute.init_compute()
        sim.registry.add(compute)
        try:
            host = HostSystemImpl.add(sim, compute, spec)
        except vmodl.MethodFault:
            sim.registry.remove(compute)
            raise
        folder.add_child(compute)
        compute.create_root_pool()
        compute.host_added(host)
        return compute

    def init_compute(self):
        self.init_props(host=[], datastore=[], network=[], resourcePool=None,
                        summary=self._summary([]), environmentBrowser=None, lifecycleManaged=False,
                        configurationEx=vim.ComputeResource.ConfigInfo(vmSwapPlacement="vmDirectory",
                                                                       spbmEnabled=True,
                                                                       defaultHardwareVersionKey="vmx-21"))

    def create_root_pool(self):
        pool = ResourcePoolImpl.create_root(self.sim, self)
        browser = EnvironmentBrowserImpl(self.sim, new_moid(self.sim, "envbrowser"), self)
        self.sim.registry.add(browser)
        self.set(resourcePool=pool.ref, environmentBrowser=browser.ref)

    def _summary(self, hosts):
        cls = vim.ClusterComputeResource.Summary if isinstance(self.ref, vim.ClusterComputeResource) \
            else vim.ComputeResource.Summary
        up = [h for h in hosts if h.connected]
        values = dict(totalCpu=CPU_CORES * CPU_MHZ * len(hosts), totalMemory=MEMORY_BYTES * len(hosts),
                      numCpuCores=CPU_CORES * len(hosts), numCpuThreads=CPU_THREADS * len(hosts),
                      effectiveCpu=CPU_CORES * CPU_MHZ * len(up), effectiveMemory=MEMORY_BYTES * len(up) // 2 ** 20,
                      numHosts=len(hosts), numEffectiveHosts=len(up), overallStatus="green")
        if cls is vim.ClusterComputeResource.Summary:
            values.update(currentFailoverLevel=0, numVmotions=0, admissionControlInfo=None,
                          usageSummary=None, currentBalance=None, targetBalance=None)
        return cls(**values)

    def hosts(self):
        return [self.sim.registry.get(ref) for ref in self.props["host"]]

    def refresh_summary(self):
        summary = self._summary(self.hosts())
        self.set(summary=summary)
        if "summaryEx" in self.props:
            self.set(summaryEx=summary)
        pool = self.root_pool()
        if pool is not None:
            pool.refresh_root_capacity()

    def root_pool(self):
        ref = self.props.get("resourcePool")
        return self.sim.registry.find(ref._moId) if ref is not None else None

    def host_added(self, host):
        ref_list_add(self, "host", host.ref)
        for prop in ("datastore", "network"):
            for ref in host.props[prop]:
                ref_list_add(self, prop, ref)
        self.refresh_summary()

    def host_removed(self, host):
        ref_list_remove(self, "host", host.ref)
        if not self.props["host"] and not isinstance(self.ref, vim.ClusterComputeResource):
            self.destroy_empty()  # a standalone host's compute resource goes with its host
            return
        self.refresh_summary()

    def pick_host(self, datastore=None):
        """Where a new VM goes: a connected host that mounts its datastore, the one with fewest VMs."""
        hosts = [h for h in self.hosts() if h.connected]
        if datastore is not None:
            mounted = {m.key._moId for m in (datastore.props.get("host") or []) if getattr(m, "key", None)}
            if mounted:
                hosts = [h for h in hosts if h.moid in mounted]
        if not hosts:
            return None
        return min(hosts, key=lambda h: len(h.props["vm"]))

    # -- WSDL methods -------------------------------------------------------------------------------------------
    def ReconfigureComputeResource_Task(self, ctx, spec, modify):
        def work(task):
            config = self.props["configurationEx"]
            if getattr(spec, "vmSwapPlacement", None):
                config.vmSwapPlacement = spec.vmSwapPlacement
            self.touch("configurationEx")
        return self.sim.tasks.start(ctx, self, work)

    def check_destroy(self):
        for host in self.hosts():
            for ref in host.props["vm"]:
                vm = self.sim.registry.get(ref)
                if vm.power_state != "poweredOff":
                    raise vim.fault.InvalidState(msg=f"The host {host.name} has powered-on virtual machines")

    def destroy(self):
        for host in self.hosts():
            host.destroy()
        if self.sim.registry.find(self.moid) is self:
            self.destroy_empty()

    def destroy_empty(self):
        """Leave the inventory once no host is left (a standalone host's compute resource goes with its host)."""
        pool = self.root_pool()
        if pool is not None:
            pool.destroy_tree()
        browser_ref = self.props.get("environmentBrowser")
        if browser_ref is not None:
            browser = self.sim.registry.find(browser_ref._moId)
            if browser is not None:
                self.sim.registry.remove(browser)
        parent = self.parent
        if parent is not None:
            parent.remove_child(self)
        self.sim.registry.remove(self)


class ClusterComputeResourceImpl(ComputeResourceImpl):
    vim_type = vim.ClusterComputeResource

    @classmethod
    def create(cls, sim, folder, name, spec) -> ClusterComputeResourceImpl:
        cluster = cls(sim, new_moid(sim, "domain-c"), name, folder)
        cluster.init_compute()
        drs = vim.cluster.DrsConfigInfo(enabled=False, enableVmBehaviorOverrides=True,
                                        defaultVmBehavior="fullyAutomated", vmotionRate=3, option=[])
        das = vim.cluster.DasConfigInfo(enabled=False, vmMonitoring="vmMonitoringDisabled",
                                        hostMonitoring="enabled", failoverLevel=1, admissionControlEnabled=True,
                                        option=[])
        vsan = vim.vsan.cluster.ConfigInfo(enabled=False)
        if spec is not None:
            if getattr(spec, "drsConfig", None) is not None and spec.drsConfig.enabled is not None:
                drs.enabled = spec.drsConfig.enabled
                drs.defaultVmBehavior = spec.drsConfig.defaultVmBehavior or drs.defaultVmBehavior
            if getattr(spec, "dasConfig", None) is not None and spec.dasConfig.enabled is not None:
                das.enabled = spec.dasConfig.enabled
            if getattr(spec, "vsanConfig", None) is not None and spec.vsanConfig.enabled is not None:
                vsan.enabled = spec.vsanConfig.enabled
        summary = cluster.props["summary"]
        cluster.init_props(
            configuration=vim.cluster.ConfigInfo(dasConfig=das, drsConfig=drs, rule=[], dasVmConfig=[],
                                                 drsVmConfig=[]),
            configurationEx=vim.cluster.ConfigInfoEx(vmSwapPlacement="vmDirectory", dasConfig=das, drsConfig=drs,
                                                     rule=[], dasVmConfig=[], drsVmConfig=[], group=[],
                                                     vsanConfigInfo=vsan, spbmEnabled=True,
                                                     defaultHardwareVersionKey="vmx-21"),
            summaryEx=summary, recommendation=[], drsRecommendation=[], migrationHistory=[], actionHistory=[],
            drsFault=[])
        sim.registry.add(cluster)
        folder.add_child(cluster)
        cluster.create_root_pool()
        return cluster

    def AddHost_Task(self, ctx, spec, asConnected, resourcePool=None, license=None):
        def work(task):
            host = HostSystemImpl.add(self.sim, self, spec)
            self.host_added(host)
            if not asConnected:
                host._set_runtime(connectionState="disconnected")
                self.refresh_summary()
            return host.ref
        return self.sim.tasks.start(ctx, self, work)

    def MoveInto_Task(self, ctx, host):
        def work(task):
            for ref in host:
                h = self.sim.registry.get(ref)
                old = h.parent
                if old is self:
                    continue
                if not h.props["runtime"].inMaintenanceMode:
                    raise vim.fault.InvalidState(msg=f"The host {h.name} must be in maintenance mode to move")
                old.host_removed(h)
                h.set(parent=self.ref)
                self.host_added(h)
        return self.sim.tasks.start(ctx, self, work)

    def ReconfigureComputeResource_Task(self, ctx, spec, modify):
        def work(task):
            config = self.props["configurationEx"]
            if getattr(spec, "drsConfig", None) is not None and spec.drsConfig.enabled is not None:
                config.drsConfig.enabled = spec.drsConfig.enabled
                if spec.drsConfig.defaultVmBehavior:
                    config.drsConfig.defaultVmBehavior = spec.drsConfig.defaultVmBehavior
            if getattr(spec, "dasConfig", None) is not None and spec.dasConfig.enabled is not None:
                config.dasConfig.enabled = spec.dasConfig.enabled
            vsan = getattr(spec, "vsanConfig", None)
            if vsan is not None and vsan.enabled is not None:
                config.vsanConfigInfo.enabled = vsan.enabled
            self.props["configuration"].drsConfig = config.drsConfig
            self.props["configuration"].dasConfig = config.dasConfig
            self.touch("configurationEx", "configuration")
        return self.sim.tasks.start(ctx, self, work)

    def ReconfigureCluster_Task(self, ctx, spec, modify):
        return self.ReconfigureComputeResource_Task(ctx, spec, modify)

    def PlaceVm(self, ctx, placementSpec):
        host = self.pick_host()
        rec = vim.cluster.PlacementResult(recommendations=[vim.cluster.Recommendation(
            key="1", type="V1", time=now(), rating=5, reason="xvmotionPlacement",
            reasonText="Virtual machine placement",
            target=self.ref, action=[vim.cluster.PlacementAction(target=host.ref if host else None,
                                                                  vm=placementSpec.vm)])])
        return rec

    def on_loaded(self):
        self.props["summaryEx"] = self.props["summary"]


# -- resource pools -------------------------------------------------------------------------------------------------
class ResourcePoolImpl(InventoryEntity, ManagedEntityImpl):
    vim_type = vim.ResourcePool

    @classmethod
    def create_root(cls, sim, owner) -> ResourcePoolImpl:
        pool = cls(sim, new_moid(sim, "resgroup"), "Resources", owner)
        hosts = len(owner.props["host"])
        cpu = _allocation(4000, CPU_CORES * CPU_MHZ * hosts, CPU_CORES * CPU_MHZ * hosts, False)
        mem = _allocation(163840, MEMORY_BYTES * hosts // 2 ** 20, MEMORY_BYTES * hosts // 2 ** 20, False)
        pool.init_pool(owner, vim.ResourceConfigSpec(cpuAllocation=cpu, memoryAllocation=mem))
        sim.registry.add(pool)
        return pool

    def init_pool(self, owner, spec):
        config = vim.ResourceConfigSpec(entity=self.ref, changeVersion="1", lastModified=now(),
                                        cpuAllocation=spec.cpuAllocation, memoryAllocation=spec.memoryAllocation)
        runtime = vim.ResourcePool.RuntimeInfo(memory=_usage(MEMORY_BYTES), cpu=_usage(CPU_CORES * CPU_MHZ),
                                               overallStatus="green")
        self.init_props(
            owner=owner.ref, resourcePool=[], vm=[], config=config, runtime=runtime, childConfiguration=[],
            summary=vim.ResourcePool.Summary(name=self.name, config=config, runtime=runtime,
                                             quickStats=vim.ResourcePool.Summary.QuickStats(),
                                             configuredMemoryMB=0))

    def refresh_root_capacity(self):
        owner = self.owner()
        hosts = len(owner.props["host"])
        config = self.props["config"]
        config.cpuAllocation.reservation = config.cpuAllocation.limit = CPU_CORES * CPU_MHZ * hosts
        config.memoryAllocation.reservation = config.memoryAllocation.limit = MEMORY_BYTES * hosts // 2 ** 20
        runtime = self.props["runtime"]
        runtime.cpu = _usage(CPU_CORES * CPU_MHZ * hosts)
        runtime.memory = _usage(MEMORY_BYTES * hosts)
        self.touch("config", "runtime", "summary")

    def owner(self):
        return self.sim.registry.get(self.props["owner"])

    def is_root(self) -> bool:
        return not isinstance(self.props["parent"], vim.ResourcePool)

    def rename_container(self):
        parent = self.parent
        return parent if isinstance(parent.ref, vim.ResourcePool) else None

    def on_renamed(self):
        self.props["summary"].name = self.name
        self.touch("summary")

    def check_new_name(self, new_name):
        if self.is_root():
            raise vmodl.fault.NotSupported(msg="The root resource pool can't be renamed")
        return super().check_new_name(new_name)

    def _spec(self, spec):
        """Fill what a ResourceConfigSpec leaves out with vCenter's defaults."""
        cpu = spec.cpuAllocation if spec is not None and spec.cpuAllocation is not None else _allocation(4000)
        mem = spec.memoryAllocation if spec is not None and spec.memoryAllocation is not None \
            else _allocation(163840)
        for alloc, shares in ((cpu, 4000), (mem, 163840)):
            if alloc.reservation is None:
                alloc.reservation = 0
            if alloc.limit is None:
                alloc.limit = -1
            if alloc.expandableReservation is None:
                alloc.expandableReservation = True
            if alloc.shares is None:
                alloc.shares = vim.SharesInfo(level="normal", shares=shares)
            elif alloc.shares.level != "custom":
                alloc.shares.shares = {"low": shares // 2, "normal": shares, "high": shares * 2}.get(
                    alloc.shares.level, shares)
        return vim.ResourceConfigSpec(cpuAllocation=cpu, memoryAllocation=mem)

    # -- WSDL methods -------------------------------------------------------------------------------------------
    def CreateResourcePool(self, ctx, name, spec):
        name = checked_entity_name(name)
        check_unique_name(self, name)
        pool = ResourcePoolImpl(self.sim, new_moid(self.sim, "resgroup"), name, self)
        pool.init_pool(self.owner(), self._spec(spec))
        self.sim.registry.add(pool)
        ref_list_add(self, "resourcePool", pool.ref)
        self._child_config()
        return pool.ref

    def _child_config(self):
        children = [self.sim.registry.get(ref) for ref in self.props["resourcePool"]]
        self.set(childConfiguration=[c.props["config"] for c in children])

    def UpdateConfig(self, ctx, name=None, config=None):
        if name is not None and name != self.name:
            self.set(name=self.check_new_name(name))
            self.on_renamed()
        if config is not None:
            current = self.props["config"]
            if config.changeVersion and config.changeVersion != current.changeVersion:
                raise vim.fault.ConcurrentAccess(msg="Cannot complete operation due to concurrent modification by "
                                                     "another operation.")
            merged = self._spec(vim.ResourceConfigSpec(cpuAllocation=config.cpuAllocation or current.cpuAllocation,
                                                       memoryAllocation=config.memoryAllocation
                                                       or current.memoryAllocation))
            current.cpuAllocation = merged.cpuAllocation
            current.memoryAllocation = merged.memoryAllocation
            current.changeVersion = str(int(current.changeVersion or "0") + 1)
            current.lastModified = now()
            self.touch("config", "summary")
            parent = self.parent
            if isinstance(parent, ResourcePoolImpl):
                parent._child_config()

    def UpdateChildResourceConfiguration(self, ctx, spec):
        for one in spec:
            child = self.sim.registry.get(one.entity)
            child.UpdateConfig(ctx, None, one)

    def MoveIntoResourcePool(self, ctx, list):  # noqa: A002 - the WSDL parameter is called `list`
        entities = [self.sim.registry.get(ref) for ref in list]
        for entity in entities:
            if isinstance(entity, ResourcePoolImpl):
                if entity is self or self in entity.descendants():
                    raise vmodl.fault.InvalidArgument(msg="A resource pool cannot be moved into itself",
                                                      invalidProperty="list")
                check_unique_name(self, entity.name)
            elif not isinstance(entity.ref, vim.VirtualMachine):
                raise vmodl.fault.InvalidArgument(msg="Only virtual machines and resource pools can be moved",
                                                  invalidProperty="list")
        for entity in entities:
            if isinstance(entity, ResourcePoolImpl):
                old = entity.parent
                ref_list_remove(old, "resourcePool", entity.ref)
                old._child_config()
                entity.set(parent=self.ref)
                ref_list_add(self, "resourcePool", entity.ref)
                self._child_config()
            else:
                entity.move_to_pool(self)

    def CreateChildVM_Task(self, ctx, config, host=None):
        from .virtual_machine import VirtualMachineImpl
        folder = self.sim.registry.get(self.datacenter().props["vmFolder"])

        def work(task):
            return VirtualMachineImpl.create(self.sim, folder, config, self.ref, host).ref
        return self.sim.tasks.start(ctx, self, work)

    def RegisterChildVM_Task(self, ctx, path, name=None, host=None):
        from .virtual_machine import VirtualMachineImpl
        folder = self.sim.registry.get(self.datacenter().props["vmFolder"])

        def work(task):
            return VirtualMachineImpl.register(self.sim, folder, path, name, False, self.ref, host).ref
        return self.sim.tasks.start(ctx, self, work)

    def DestroyChildren(self, ctx):
        for ref in list(self.props["resourcePool"]):
            self.sim.registry.get(ref).destroy()

    def descendants(self):
        for ref in self.props["resourcePool"]:
            child = self.sim.registry.get(ref)
            yield child
            yield from child.descendants()

    def check_destroy(self):
        if self.is_root():
            raise vmodl.fault.NotSupported(msg="The root resource pool can't be destroyed")

    def destroy(self):
        """vCenter moves a destroyed pool's VMs and child pools up to its parent."""
        parent = self.parent
        for ref in list(self.props["vm"]):
            self.sim.registry.get(ref).move_to_pool(parent)
        for ref in list(self.props["resourcePool"]):
            child = self.sim.registry.get(ref)
            child.set(parent=parent.ref)
            ref_list_add(parent, "resourcePool", child.ref)
        ref_list_remove(parent, "resourcePool", self.ref)
        parent._child_config()
        self.sim.registry.remove(self)

    def destroy_tree(self):
        """Remove this pool and everything below it (its owner is going away)."""
        for ref in list(self.props["resourcePool"]):
            child = self.sim.registry.find(ref._moId)
            if child is not None:
                child.destroy_tree()
        self.sim.registry.remove(self)

    def on_loaded(self):
        summary = self.props["summary"]
        summary.config = self.props["config"]
        summary.runtime = self.props["runtime"]


# -- environment browser --------------------------------------------------------------------------------------------
class EnvironmentBrowserImpl(ManagedObjectImpl):
    """What a compute resource offers a VM (`envbrowser-N`): its datastores and networks."""
    vim_type = vim.EnvironmentBrowser

    def __init__(self, sim, moid, compute=None):
        super().__init__(sim, moid)
        self.compute_moid = compute.moid if compute is not None else None
        self.init_props(datastoreBrowser=None)

    def extra_state(self):
        return {"compute": self.compute_moid}

    def load_extra_state(self, state):
        self.compute_moid = state.get("compute")

    def QueryConfigOptionDescriptor(self, ctx):
        from .datacenter import config_option_descriptors
        return config_option_descriptors()

    def QueryConfigTarget(self, ctx, host=None):
        compute = self.sim.registry.get(self.compute_moid)
        datastores = []
        for ref in compute.props["datastore"]:
            ds = self.sim.registry.find(ref._moId)
            if ds is None:
                continue
            summary = ds.get_property("summary")
            datastores.append(vim.vm.DatastoreInfo(
                name=ds.name, datastore=summary, capability=ds.get_property("capability"),
                maxFileSize=62 * 1024 ** 4, maxVirtualDiskCapacity=62 * 1024 ** 4, mode="readWrite"))
        networks, portgroups = [], []
        for ref in compute.props["network"]:
            net = self.sim.registry.find(ref._moId)
            if net is None:
                continue
            if isinstance(net.ref, vim.dvs.DistributedVirtualPortgroup):
                dvs = net.dvs()
                portgroups.append(vim.dvs.DistributedVirtualPortgroupInfo(
                    switchName=dvs.name, switchUuid=dvs.props["uuid"], portgroupName=net.name,
                    portgroupKey=net.props["key"], portgroupType=net.props["config"].type, uplinkPortgroup=bool(
                        net.props["config"].uplink), portgroup=net.ref))
            else:
                networks.append(vim.vm.NetworkInfo(name=net.name, network=net.props["summary"]))
        hosts = compute.hosts()
        return vim.vm.ConfigTarget(
            numCpus=CPU_THREADS * max(1, len(hosts)), numCpuCores=CPU_CORES * max(1, len(hosts)),
            numNumaNodes=CPU_PACKAGES, smcPresent=False, datastore=datastores, network=networks,
            distributedVirtualPortgroup=portgroups, maxMemMBOptimalPerf=MEMORY_BYTES // 2 ** 20,
            maxCpusPerHost=CPU_THREADS, resourcePool=None)


__all__ = ["HostSystemImpl", "ComputeResourceImpl", "ClusterComputeResourceImpl", "ResourcePoolImpl",
           "EnvironmentBrowserImpl"]
