"""SearchIndex: find entities by inventory path, UUID, datastore path, IP, DNS name, or as a named child."""
from __future__ import annotations

from pyVmomi import vim, vmodl

from .base import ManagedObjectImpl


class SearchIndexImpl(ManagedObjectImpl):
    vim_type = vim.SearchIndex
    persistent = False
    _macs: set[str] | None = None

    def used_macs(self) -> set[str]:
        """Every NIC MAC handed out since the sim started (built from the inventory on first use), so a new one is
        unique without a look at every VM. A destroyed VM's MAC stays taken, which costs nothing."""
        if self._macs is None:
            macs = set()
            for vm in self.sim.registry.of_type(vim.VirtualMachine):
                for dev in vm.devices():
                    if isinstance(dev, vim.vm.device.VirtualEthernetCard) and dev.macAddress:
                        macs.add(dev.macAddress.lower())
            self._macs = macs
        return self._macs

    def _get(self, ref):
        return self.sim.registry.get(ref)

    def _datacenter(self, ref):
        if ref is None:
            return None
        dc = self._get(ref)
        if not isinstance(dc.ref, vim.Datacenter):
            raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: datacenter",
                                              invalidProperty="datacenter")
        return dc

    def _vms(self, datacenter):
        for vm in self.sim.registry.of_type(vim.VirtualMachine):
            if datacenter is None or vm.datacenter() is datacenter:
                yield vm

    def _hosts(self, datacenter):
        for host in self.sim.registry.of_type(vim.HostSystem):
            if datacenter is None or host.datacenter() is datacenter:
                yield host

    @staticmethod
    def children_of(entity) -> list:
        """What FindChild and inventory paths look into: a folder's entities, a datacenter's four folders, a
        compute resource's hosts and root pool, a pool's child pools and VMs."""
        registry = entity.sim.registry
        refs = []
        if isinstance(entity.ref, vim.Folder):
            refs = list(entity.props["childEntity"])
        elif isinstance(entity.ref, vim.Datacenter):
            refs = [entity.props[p] for p in ("vmFolder", "hostFolder", "datastoreFolder", "networkFolder")]
        elif isinstance(entity.ref, vim.ComputeResource):
            refs = list(entity.props["host"]) + ([entity.props["resourcePool"]] if entity.props.get("resourcePool")
                                                 else [])
        elif isinstance(entity.ref, vim.ResourcePool):
            refs = list(entity.props.get("resourcePool") or []) + list(entity.props.get("vm") or [])
        return [obj for obj in (registry.find(r._moId) for r in refs) if obj is not None]

    # -- WSDL methods -------------------------------------------------------------------------------------------
    def FindByInventoryPath(self, ctx, inventoryPath):
        """`DC0/vm/folder/name`: names separated by `/` from the root folder (a `/` inside a name is `%2f`)."""
        node = self.sim.root_folder()
        parts = [p for p in (inventoryPath or "").split("/") if p]
        for part in parts:
            for child in self.children_of(node):
                if child.props.get("name") == part:
                    node = child
                    break
            else:
                return None
        return node.ref

    def FindChild(self, ctx, entity, name):
        parent = self._get(entity)
        for child in self.children_of(parent):
            if child.props.get("name") == name:
                return child.ref
        return None

    def FindByUuid(self, ctx, uuid, vmSearch, datacenter=None, instanceUuid=None):
        dc = self._datacenter(datacenter)
        wanted = (uuid or "").lower()
        if vmSearch:
            for vm in self._vms(dc):
                config = vm.props["config"]
                value = config.instanceUuid if instanceUuid else config.uuid
                if value and value.lower() == wanted:
                    return vm.ref
            return None
        if instanceUuid:
            raise vmodl.fault.InvalidArgument(msg="instanceUuid can only be used with vmSearch",
                                              invalidProperty="instanceUuid")
        for host in self._hosts(dc):
            if host.props["hardware"].systemInfo.uuid.lower() == wanted:
                return host.ref
        return None

    def FindAllByUuid(self, ctx, uuid, vmSearch, datacenter=None, instanceUuid=None):
        dc = self._datacenter(datacenter)
        wanted = (uuid or "").lower()
        if vmSearch:
            return [vm.ref for vm in self._vms(dc)
                    if ((vm.props["config"].instanceUuid if instanceUuid else vm.props["config"].uuid) or "").lower()
                    == wanted]
        return [h.ref for h in self._hosts(dc) if h.props["hardware"].systemInfo.uuid.lower() == wanted]

    def FindByDatastorePath(self, ctx, datacenter, path):
        dc = self._datacenter(datacenter)
        datastores = self.sim.datastores
        dspath = datastores.parse(path)
        datastores.datastore(dspath.datastore, datacenter=dc, text=path)
        wanted = str(dspath)
        for vm in self._vms(dc):
            if str(datastores.parse(vm.props["config"].files.vmPathName)) == wanted:
                return vm.ref
        return None

    def FindByIp(self, ctx, ip, vmSearch, datacenter=None):
        found = self.FindAllByIp(ctx, ip, vmSearch, datacenter)
        return found[0] if found else None

    def FindAllByIp(self, ctx, ip, vmSearch, datacenter=None):
        dc = self._datacenter(datacenter)
        if vmSearch:
            out = []
            for vm in self._vms(dc):
                guest = vm.props.get("guest")
                addresses = {guest.ipAddress} if guest is not None and guest.ipAddress else set()
                for nic in (guest.net or []) if guest is not None else []:
                    addresses.update(nic.ipAddress or [])
                if ip in addresses:
                    out.append(vm.ref)
            return out
        out = []
        for host in self._hosts(dc):
            net_sys = host.network_system()
            vnics = net_sys.props["networkInfo"].vnic if net_sys is not None else []
            if any(v.spec.ip is not None and v.spec.ip.ipAddress == ip for v in vnics):
                out.append(host.ref)
        return out

    def FindByDnsName(self, ctx, dnsName, vmSearch, datacenter=None):
        found = self.FindAllByDnsName(ctx, dnsName, vmSearch, datacenter)
        return found[0] if found else None

    def FindAllByDnsName(self, ctx, dnsName, vmSearch, datacenter=None):
        dc = self._datacenter(datacenter)
        wanted = (dnsName or "").lower()
        if vmSearch:
            return [vm.ref for vm in self._vms(dc)
                    if vm.props.get("guest") is not None and (vm.props["guest"].hostName or "").lower() == wanted]
        return [h.ref for h in self._hosts(dc) if h.name.lower() == wanted]
