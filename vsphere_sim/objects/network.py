"""Networks: standard port groups (vim.Network, made by HostNetworkSystem.AddPortGroup on each host, as vCenter shows a
port group present on hosts as one Network), and distributed switches with their port groups."""
from __future__ import annotations

import secrets
import uuid as uuid_mod

from pyVmomi import vim

from ..sessions import now
from .base import ManagedEntityImpl, ManagedObjectImpl, ref_list_add, ref_list_remove
from .folder import InventoryEntity, check_unique_name, checked_entity_name, new_moid

DVS_VERSION = "8.0.3"


def find_network(sim, datacenter, ref=None, name: str | None = None):
    """A standard network (or DV port group) by moref, or by name within a datacenter."""
    if ref is not None:
        obj = sim.registry.find(ref._moId)
        if obj is not None and isinstance(obj.ref, vim.Network):
            return obj
        return None
    if not name:
        return None
    if datacenter is not None:
        candidates = (sim.registry.find(r._moId) for r in datacenter.props.get("network") or [])
    else:
        candidates = sim.registry.of_type(vim.Network)
    for obj in candidates:
        if obj is not None and obj.name == name:
            return obj
    return None


def find_portgroup(sim, switch_uuid: str | None, key: str | None):
    for obj in sim.registry.of_type(vim.dvs.DistributedVirtualPortgroup):
        if obj.props["key"] == key and (not switch_uuid or obj.switch_uuid() == switch_uuid):
            return obj
    return None


def backing_network(sim, backing):
    """The Network entity a NIC backing points at, or None."""
    if isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
        port = backing.port
        return find_portgroup(sim, port.switchUuid, port.portgroupKey) if port is not None else None
    if isinstance(backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo):
        if backing.network is not None:
            return sim.registry.find(backing.network._moId)
    return None


class NetworkImpl(InventoryEntity, ManagedEntityImpl):
    vim_type = vim.Network

    def __init__(self, sim, moid, name, folder):
        super().__init__(sim, moid, name, folder)
        self.init_props(summary=vim.Network.Summary(network=self.ref, name=name, accessible=True, ipPoolName=""),
                        host=[], vm=[])

    @classmethod
    def ensure(cls, sim, datacenter, name: str) -> NetworkImpl:
        """The datacenter's standard network of this name, created in its network folder when it is new."""
        for obj in sim.registry.of_type(vim.Network):
            if type(obj) is cls and obj.name == name and obj.datacenter() is datacenter:
                return obj
        folder = sim.registry.get(datacenter.props["networkFolder"])
        net = cls(sim, new_moid(sim, "network"), name, folder)
        sim.registry.add(net)
        folder.add_child(net)
        ref_list_add(datacenter, "network", net.ref)
        return net

    def on_renamed(self):
        self.props["summary"].name = self.name
        self.touch("summary")

    def check_destroy(self):
        if self.props["vm"]:
            raise vim.fault.ResourceInUse(msg=f"The network '{self.name}' is in use by virtual machines",
                                          type=self.vim_type, name=self.name)

    def destroy(self):
        for ref in list(self.props["host"]):
            host = self.sim.registry.find(ref._moId)
            if host is not None:
                ref_list_remove(host, "network", self.ref)
        _unlink(self)


def _unlink(net):
    sim = net.sim
    dc = net.datacenter()
    if dc is not None:
        ref_list_remove(dc, "network", net.ref)
    parent = net.parent
    if parent is not None:
        parent.remove_child(net)
    sim.registry.remove(net)


class HostNetworkSystemImpl(ManagedObjectImpl):
    """A host's network configuration: virtual switches and port groups (vCenter's `networkSystem-N`)."""
    vim_type = vim.host.NetworkSystem

    def __init__(self, sim, moid, host):
        super().__init__(sim, moid)
        self.host_moid = host.moid
        caps = vim.host.NetCapabilities(
            canSetPhysicalNicLinkSpeed=True, supportsNicTeaming=True, supportsVlan=True, usesServiceConsoleNic=False,
            supportsNetworkHints=True, vswitchConfigSupported=True, vnicConfigSupported=True,
            ipRouteConfigSupported=True, dnsConfigSupported=True, dhcpOnVnicSupported=True, ipV6Supported=True)
        vnic = vim.host.VirtualNic(
            device="vmk0", key="key-vim.host.VirtualNic-vmk0", portgroup="Management Network",
            spec=vim.host.VirtualNic.Specification(
                ip=vim.host.IpConfig(dhcp=False, ipAddress="127.0.0.1", subnetMask="255.0.0.0"),
                mac=_host_mac(host.moid), mtu=1500))
        self.init_props(
            capabilities=caps,
            networkInfo=vim.host.NetworkInfo(vswitch=[], portgroup=[], vnic=[vnic], pnic=[]),
            dnsConfig=vim.host.DnsConfig(dhcp=False, hostName=host.name, domainName="vsphere.local",
                                         address=["127.0.0.1"], searchDomain=[]),
            networkConfig=vim.host.NetworkConfig(vswitch=[], portgroup=[]))

    def extra_state(self):
        return {"host": self.host_moid}

    def load_extra_state(self, state):
        self.host_moid = state.get("host")

    @property
    def host(self):
        return self.sim.registry.get(self.host_moid)

    def _vswitch(self, name):
        for vswitch in self.props["networkInfo"].vswitch:
            if vswitch.name == name:
                return vswitch
        return None

    def AddVirtualSwitch(self, ctx, vswitchName, spec=None):
        if self._vswitch(vswitchName) is not None:
            raise vim.fault.AlreadyExists(msg=f"The specified key, name, or identifier '{vswitchName}' already exists.",
                                          name=vswitchName)
        spec = spec or vim.host.VirtualSwitch.Specification(numPorts=128)
        vswitch = vim.host.VirtualSwitch(name=vswitchName, key=f"key-vim.host.VirtualSwitch-{vswitchName}",
                                         numPorts=spec.numPorts or 128, numPortsAvailable=spec.numPorts or 128,
                                         mtu=spec.mtu or 1500, portgroup=[], pnic=[], spec=spec)
        self.props["networkInfo"].vswitch.append(vswitch)
        self.touch("networkInfo")
        self.host.refresh_network_config()

    def AddPortGroup(self, ctx, portgrp):
        self.add_portgroup(portgrp, vm_network=True)

    def add_portgroup(self, portgrp, vm_network: bool):
        """A port group on a vSwitch; a VM port group also shows in vCenter as a Network (a VMkernel one, such as
        the Management Network every host has, does not)."""
        info = self.props["networkInfo"]
        if any(pg.spec.name == portgrp.name for pg in info.portgroup):
            raise vim.fault.AlreadyExists(msg=f"The specified key, name, or identifier '{portgrp.name}' already "
                                              f"exists.", name=portgrp.name)
        vswitch = self._vswitch(portgrp.vswitchName)
        if vswitch is None:
            raise vim.fault.NotFound(msg=f"The object or item referred to could not be found: vSwitch "
                                         f"'{portgrp.vswitchName}'")
        key = f"key-vim.host.PortGroup-{portgrp.name}"
        info.portgroup.append(vim.host.PortGroup(key=key, port=[], vswitch=vswitch.key, spec=portgrp,
                                                 computedPolicy=portgrp.policy or vim.host.NetworkPolicy()))
        vswitch.portgroup = list(vswitch.portgroup or []) + [key]
        self.touch("networkInfo")
        host = self.host
        dc = host.datacenter()
        if dc is not None and vm_network:
            net = NetworkImpl.ensure(self.sim, dc, portgrp.name)
            ref_list_add(net, "host", host.ref)
            ref_list_add(host, "network", net.ref)
            compute = host.parent
            if compute is not None:
                ref_list_add(compute, "network", net.ref)
        host.refresh_network_config()

    def RemovePortGroup(self, ctx, pgName):
        info = self.props["networkInfo"]
        for i, pg in enumerate(info.portgroup):
            if pg.spec.name == pgName:
                del info.portgroup[i]
                self.touch("networkInfo")
                break
        else:
            raise vim.fault.NotFound(msg=f"The object or item referred to could not be found: port group '{pgName}'")
        host = self.host
        net = find_network(self.sim, host.datacenter(), name=pgName)
        if net is not None and type(net) is NetworkImpl:
            ref_list_remove(net, "host", host.ref)
            ref_list_remove(host, "network", net.ref)
        host.refresh_network_config()

    def RefreshNetworkSystem(self, ctx):
        pass


def _host_mac(moid: str) -> str:
    digits = int("".join(c for c in moid if c.isdigit()) or "0")
    return f"00:50:56:{(digits >> 16) & 0x3F:02x}:{(digits >> 8) & 0xFF:02x}:{digits & 0xFF:02x}"


class DistributedVirtualSwitchImpl(InventoryEntity, ManagedEntityImpl):
    vim_type = vim.dvs.VmwareDistributedVirtualSwitch

    @classmethod
    def create(cls, sim, folder, spec) -> DistributedVirtualSwitchImpl:
        config_spec = spec.configSpec
        name = checked_entity_name(config_spec.name)
        check_unique_name(folder, name)
        dvs = cls(sim, new_moid(sim, "dvs"), name, folder)
        switch_uuid = " ".join(f"{b:02x}" for b in uuid_mod.uuid4().bytes[:8]) + "-" + \
            " ".join(f"{b:02x}" for b in uuid_mod.uuid4().bytes[8:])
        product = spec.productInfo or vim.dvs.ProductSpec(name="DVS", vendor="VMware, Inc.", version=DVS_VERSION)
        uplinks = config_spec.uplinkPortPolicy or vim.DistributedVirtualSwitch.NameArrayUplinkPortPolicy(
            uplinkPortName=["uplink1", "uplink2", "uplink3", "uplink4"])
        config = vim.dvs.VmwareDistributedVirtualSwitch.ConfigInfo(
            uuid=switch_uuid, name=name, numStandalonePorts=0, numPorts=0, maxPorts=2147483647,
            uplinkPortPolicy=uplinks, uplinkPortgroup=[], defaultPortConfig=config_spec.defaultPortConfig
            or vim.dvs.VmwareDistributedVirtualSwitch.VmwarePortConfigPolicy(),
            host=[], productInfo=product, configVersion="1", contact=vim.DistributedVirtualSwitch.ContactInfo(),
            createTime=now(), networkResourceManagementEnabled=False, maxMtu=1500,
            description=config_spec.description)
        dvs.init_props(
            uuid=switch_uuid, config=config, portgroup=[],
            capability=vim.DistributedVirtualSwitch.Capability(dvsOperationSupported=True,
                                                               dvPortGroupOperationSupported=True,
                                                               dvPortOperationSupported=True),
            summary=vim.DistributedVirtualSwitch.Summary(name=name, uuid=switch_uuid, numPorts=0,
                                                         productInfo=product, hostMember=[], vm=[], host=[],
                                                         portgroupName=[]),
            runtime=vim.DistributedVirtualSwitch.RuntimeInfo(hostMemberRuntime=[]), networkResourcePool=[])
        sim.registry.add(dvs)
        folder.add_child(dvs)
        uplink = DistributedVirtualPortgroupImpl.create(
            sim, dvs, vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
                name=f"{name}-DVUplinks-{dvs.moid.rpartition('-')[2]}", type="earlyBinding",
                numPorts=len(uplinks.uplinkPortName)), uplink=True)
        config.uplinkPortgroup = [uplink.ref]
        for member in config_spec.host or []:
            dvs._member(member)
        dvs.touch("config")
        return dvs

    def _member(self, member):
        host = self.sim.registry.get(member.host)
        config = self.props["config"]
        hosts = [m for m in config.host if m.config.host._moId != host.moid]
        if member.operation in ("add", "edit"):
            hosts.append(vim.dvs.HostMember(
                config=vim.dvs.HostMember.ConfigInfo(host=host.ref, maxProxySwitchPorts=member.maxProxySwitchPorts
                                                     or 512, backing=member.backing
                                                     or vim.dvs.HostMember.PnicBacking(pnicSpec=[])),
                status="up"))
            for pg_ref in self.props["portgroup"]:
                pg = self.sim.registry.get(pg_ref)
                ref_list_add(pg, "host", host.ref)
                ref_list_add(host, "network", pg.ref)
        elif member.operation == "remove":
            for pg_ref in self.props["portgroup"]:
                pg = self.sim.registry.get(pg_ref)
                ref_list_remove(pg, "host", host.ref)
                ref_list_remove(host, "network", pg.ref)
        config.host = hosts
        summary = self.props["summary"]
        summary.hostMember = [m.config.host for m in hosts]
        summary.host = [m.config.host for m in hosts]
        self.touch("config", "summary")

    def member_hosts(self):
        return [self.sim.registry.get(m.config.host) for m in self.props["config"].host]

    def ReconfigureDvs_Task(self, ctx, spec):
        def work(task):
            config = _begin_reconfigure(self, spec)
            for member in spec.host or []:
                self._member(member)
            if spec.description is not None:
                config.description = spec.description
            _end_reconfigure(self, config)
        return self.sim.tasks.start(ctx, self, work)

    def CreateDVPortgroup_Task(self, ctx, spec):
        def work(task):
            return DistributedVirtualPortgroupImpl.create(self.sim, self, spec).ref
        return self.sim.tasks.start(ctx, self, work)

    def AddDVPortgroup_Task(self, ctx, spec):
        def work(task):
            for one in spec:
                DistributedVirtualPortgroupImpl.create(self.sim, self, one)
        return self.sim.tasks.start(ctx, self, work)

    def FetchDVPortKeys(self, ctx, criteria=None):
        keys = []
        for pg_ref in self.props["portgroup"]:
            keys.extend(self.sim.registry.get(pg_ref).props.get("portKeys") or [])
        return keys

    def on_renamed(self):
        self.props["config"].name = self.name
        self.props["summary"].name = self.name
        self.touch("config", "summary")

    def check_destroy(self):
        for pg_ref in self.props["portgroup"]:
            self.sim.registry.get(pg_ref).check_destroy()

    def destroy(self):
        for pg_ref in list(self.props["portgroup"]):
            self.sim.registry.get(pg_ref).destroy()
        self.parent.remove_child(self)
        self.sim.registry.remove(self)


class DistributedVirtualPortgroupImpl(InventoryEntity, ManagedEntityImpl):
    vim_type = vim.dvs.DistributedVirtualPortgroup

    @classmethod
    def create(cls, sim, dvs, spec, uplink: bool = False) -> DistributedVirtualPortgroupImpl:
        dc = dvs.datacenter()
        folder = sim.registry.get(dc.props["networkFolder"])
        name = checked_entity_name(spec.name)
        for net in sim.registry.of_type(vim.dvs.DistributedVirtualPortgroup):
            if net.name == name and net.datacenter() is dc:
                raise vim.fault.DuplicateName(msg=f"The name '{name}' already exists.", name=name, object=folder.ref)
        moid = new_moid(sim, "dvportgroup")
        pg = cls(sim, moid, name, folder)
        num_ports = spec.numPorts if spec.numPorts is not None else 8
        config = vim.dvs.DistributedVirtualPortgroup.ConfigInfo(
            key=moid, name=name, numPorts=num_ports, distributedVirtualSwitch=dvs.ref, type=spec.type or
            "earlyBinding", autoExpand=spec.autoExpand if spec.autoExpand is not None else True,
            defaultPortConfig=spec.defaultPortConfig or vim.dvs.VmwareDistributedVirtualSwitch.VmwarePortConfigPolicy(),
            description=spec.description, configVersion="0", uplink=uplink,
            policy=vim.dvs.VmwareDistributedVirtualSwitch.VMwarePortgroupPolicy(
                blockOverrideAllowed=True, shapingOverrideAllowed=False, vendorConfigOverrideAllowed=False,
                livePortMovingAllowed=False, portConfigResetAtDisconnect=True, vlanOverrideAllowed=False,
                uplinkTeamingOverrideAllowed=False, securityPolicyOverrideAllowed=False))
        pg.init_props(key=moid, config=config, portKeys=[], host=[], vm=[],
                      summary=vim.Network.Summary(network=pg.ref, name=name, accessible=True, ipPoolName=""))
        sim.registry.add(pg)
        folder.add_child(pg)
        ref_list_add(dc, "network", pg.ref)
        ref_list_add(dvs, "portgroup", pg.ref)
        dvs_summary = dvs.props["summary"]
        dvs_summary.portgroupName = list(dvs_summary.portgroupName or []) + [name]
        dvs.touch("summary")
        pg._add_ports(num_ports)
        for host in dvs.member_hosts():
            ref_list_add(pg, "host", host.ref)
            ref_list_add(host, "network", pg.ref)
        return pg

    def dvs(self):
        return self.sim.registry.get(self.props["config"].distributedVirtualSwitch)

    def switch_uuid(self) -> str:
        return self.dvs().props["uuid"]

    def _add_ports(self, count: int):
        dvs = self.dvs()
        config = dvs.props["config"]
        start = config.numPorts
        keys = [str(start + i) for i in range(count)]
        self.set(portKeys=list(self.props["portKeys"]) + keys)
        config.numPorts = start + count
        dvs.props["summary"].numPorts = config.numPorts
        dvs.touch("config", "summary")

    def assign_port(self, port):
        """Bind a NIC's port connection to this port group (early binding gives it a port of its own)."""
        port.switchUuid = self.switch_uuid()
        port.portgroupKey = self.props["key"]
        if not port.portKey:
            used = set()
            for vm in (self.sim.registry.find(r._moId) for r in self.props["vm"]):
                for dev in vm.devices() if vm is not None else ():
                    backing = getattr(dev, "backing", None)
                    if isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo) \
                            and backing.port is not None and backing.port.portgroupKey == port.portgroupKey:
                        used.add(backing.port.portKey)
            free = [k for k in self.props["portKeys"] if k not in used]
            if not free:
                if not self.props["config"].autoExpand:
                    raise vim.fault.NotFound(msg=f"No free port in distributed port group '{self.name}'")
                self._add_ports(8)
                free = [k for k in self.props["portKeys"] if k not in used]
            port.portKey = free[0]
        if port.connectionCookie is None:
            port.connectionCookie = secrets.randbelow(2 ** 31)

    def on_renamed(self):
        self.props["config"].name = self.name
        self.props["summary"].name = self.name
        self.touch("config", "summary")

    def check_destroy(self):
        if self.props["vm"]:
            raise vim.fault.ResourceInUse(msg=f"The resource '{self.name}' is in use.", type=self.vim_type,
                                          name=self.name)

    def destroy(self):
        dvs = self.dvs()
        ref_list_remove(dvs, "portgroup", self.ref)
        dvs_summary = dvs.props["summary"]
        dvs_summary.portgroupName = [n for n in dvs_summary.portgroupName or [] if n != self.name]
        dvs.touch("summary")
        for ref in list(self.props["host"]):
            host = self.sim.registry.find(ref._moId)
            if host is not None:
                ref_list_remove(host, "network", self.ref)
        _unlink(self)

    def ReconfigureDVPortgroup_Task(self, ctx, spec):
        def work(task):
            config = _begin_reconfigure(self, spec)
            if spec.numPorts is not None and spec.numPorts > config.numPorts:
                self._add_ports(spec.numPorts - config.numPorts)
                config.numPorts = spec.numPorts
            _end_reconfigure(self, config)
        return self.sim.tasks.start(ctx, self, work)


def _begin_reconfigure(entity, spec):
    """What ReconfigureDvs_Task and ReconfigureDVPortgroup_Task do first: a stale `configVersion` (the caller read
    the config before another change) is ConcurrentAccess; a new name is checked and applied. Returns the config."""
    config = entity.props["config"]
    if spec.configVersion and spec.configVersion != config.configVersion:
        raise vim.fault.ConcurrentAccess(msg="Cannot complete operation due to concurrent modification by "
                                             "another operation.")
    if spec.name and spec.name != entity.name:
        entity.set(name=entity.check_new_name(spec.name))
        entity.on_renamed()
    return config


def _end_reconfigure(entity, config):
    """A reconfigure is done: the next `configVersion`."""
    config.configVersion = str(int(config.configVersion or "0") + 1)
    entity.touch("config")


__all__ = ["NetworkImpl", "HostNetworkSystemImpl", "DistributedVirtualSwitchImpl", "DistributedVirtualPortgroupImpl",
           "find_network", "find_portgroup", "backing_network"]
