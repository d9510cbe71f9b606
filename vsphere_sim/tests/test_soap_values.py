"""The sim's request reader (soap.py + soap_values.py) against pyVmomi's own SoapDeserializer: requests serialized by
pyVmomi's client stub must read back as the same values (compared as pyVmomi serializes them), and bad input must
still fail."""
from __future__ import annotations

import datetime

import pytest
from pyVmomi import SoapAdapter, VmomiSupport, vim, vmodl
from pyVmomi.VmomiSupport import F_OPTIONAL, ManagedObject, Object

from vsphere_sim import soap

VERSION = soap.DEFAULT_VERSION
ACTION = '"urn:vim25/8.0.3.0"'


def _request(this, method_name: str, **args) -> bytes:
    method = soap.lookup_method(method_name)
    stub = SoapAdapter.SoapStubAdapter(host="localhost", version=VERSION)
    values = [args.get(p.name) for p in method.info.params]
    body = stub.SerializeRequest(this, method.info, values)
    return body if isinstance(body, bytes) else body.encode()


def _xml(value, ptype) -> str:
    info = Object(name="v", type=ptype, version=VERSION, flags=F_OPTIONAL)
    return SoapAdapter.SerializeToStr(value, info, VERSION)


class _PyVmomiReader(SoapAdapter.ExpatDeserializerNSHandlers):
    """The reference: each param element handed to pyVmomi's own SoapDeserializer (the sim's reader until 2026-11)."""

    def __init__(self, parser, params):
        super().__init__()
        self.parser, self.params, self.depth, self.values, self.pending = parser, params, 0, {}, None

    def _collect(self):
        if self.pending is not None:
            name, deser, is_item = self.pending
            self.pending = None
            if is_item:
                self.values.setdefault(name, []).append(deser.GetResult())
            else:
                self.values[name] = deser.GetResult()

    def StartElementHandler(self, tag, attr):
        self._collect()
        self.depth += 1
        local = tag.rpartition(" ")[2]
        if self.depth == 4:
            ptype = ManagedObject if local == "_this" else self.params[local].type
            is_item = issubclass(ptype, list)
            deser = SoapAdapter.SoapDeserializer(version=VERSION)
            deser.Deserialize(self.parser, ptype.Item if is_item else ptype, False, self.nsMap)
            self.pending = (local, deser, is_item)
            self.depth -= 1
            deser.StartElementHandler(tag, attr)

    def EndElementHandler(self, tag):
        self._collect()
        self.depth -= 1

    def CharacterDataHandler(self, data):
        pass


def _reference(body: bytes, method_name: str) -> dict:
    from xml.parsers.expat import ParserCreate
    parser = ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    reader = _PyVmomiReader(parser, {p.name: p for p in soap.lookup_method(method_name).info.params})
    SoapAdapter.SetHandlers(parser, SoapAdapter.GetHandlers(reader))
    parser.Parse(body, True)
    reader._collect()
    return reader.values


def _check(this, method_name, **args):
    body = _request(this, method_name, **args)
    parsed = soap.parse_request(body, ACTION)
    assert parsed.wsdl_name == method_name
    assert parsed.this._moId == this._moId and type(parsed.this) is type(this)
    reference = _reference(body, method_name)
    method = soap.lookup_method(method_name)
    for p in method.info.params:
        mine, theirs = parsed.args.get(p.name), reference.get(p.name)
        if issubclass(p.type, list) and theirs is not None:
            theirs = p.type(theirs)
        assert _xml(mine, p.type) == _xml(theirs, p.type), p.name
        assert type(mine) is type(theirs) or (mine is None and theirs is None)
    return parsed


def _rich_config_spec():
    disk = vim.vm.device.VirtualDisk(
        key=-1, controllerKey=1000, unitNumber=0, capacityInKB=1024,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName="[ds] a/b.vmdk", diskMode="persistent",
                                                             thinProvisioned=True),
        connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, allowGuestControl=False,
                                                           connected=False))
    nic = vim.vm.device.VirtualVmxnet3(
        key=-2, addressType="generated",
        backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="VM Network",
                                                                    network=vim.Network("network-7")))
    return vim.vm.ConfigSpec(
        name="vm/1 %x", guestId="otherLinux64Guest", numCPUs=2, memoryMB=512, annotation="a <b> & \"c\"",
        files=vim.vm.FileInfo(vmPathName="[ds]"), uuid="42000000-0000-0000-0000-000000000001",
        extraConfig=[vim.option.OptionValue(key="guestinfo.a", value="x"),
                     vim.option.OptionValue(key="guestinfo.n", value=5),
                     vim.option.OptionValue(key="guestinfo.b", value=True),
                     vim.option.OptionValue(key="guestinfo.empty", value="")],
        deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk),
                      vim.vm.device.VirtualDeviceSpec(operation="add", device=nic),
                      vim.vm.device.VirtualDeviceSpec(operation="add", device=vim.vm.device.ParaVirtualSCSIController(
                          key=-3, busNumber=0, sharedBus="noSharing"))],
        cpuAllocation=vim.ResourceAllocationInfo(reservation=100, shares=vim.SharesInfo(level="high", shares=0)),
        bootOptions=vim.vm.BootOptions(bootOrder=[vim.vm.BootOptions.BootableDiskDevice(deviceKey=-1)]))


def test_create_vm_with_devices_options_and_escapes():
    _check(vim.Folder("group-v3"), "CreateVM_Task", config=_rich_config_spec(), pool=vim.ResourcePool("resgroup-1"))


def test_retrieve_with_traversal_specs():
    PC = vmodl.query.PropertyCollector
    traversal = PC.TraversalSpec(name="folders", type=vim.Folder, path="childEntity", skip=False,
                                 selectSet=[PC.SelectionSpec(name="folders"),
                                            PC.TraversalSpec(type=vim.Datacenter, path="vmFolder", skip=True)])
    spec = PC.FilterSpec(
        propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["name", "config.extraConfig"]),
                 PC.PropertySpec(type=vim.Folder, all=True)],
        objectSet=[PC.ObjectSpec(obj=vim.Folder("group-d1"), skip=False, selectSet=[traversal])],
        reportMissingObjectsInResults=True)
    parsed = _check(PC("propertyCollector"), "RetrievePropertiesEx", specSet=[spec, spec],
                    options=PC.RetrieveOptions(maxObjects=5))
    assert len(parsed.args["specSet"]) == 2
    assert parsed.args["specSet"][0].propSet[0].type is vim.VirtualMachine


def test_scalars_dates_enums_and_binary():
    _check(vim.event.EventManager("EventManager"), "QueryEvents", filter=vim.event.EventFilterSpec(
        time=vim.event.EventFilterSpec.ByTime(beginTime=datetime.datetime(2024, 1, 2, 3, 4, 5,
                                                                          tzinfo=datetime.UTC)),
        eventTypeId=["VmPoweredOnEvent"], maxCount=7, disableFullMessage=True,
        entity=vim.event.EventFilterSpec.ByEntity(entity=vim.VirtualMachine("vm-1"), recursion="all")))
    _check(vim.VirtualMachine("vm-1"), "PowerOnVM_Task", host=vim.HostSystem("host-9"))


def test_arrays_of_morefs_and_any_typed_options():
    _check(vim.Folder("group-v3"), "MoveIntoFolder_Task", list=[vim.VirtualMachine("vm-1"), vim.Folder("group-v9")])
    _check(vim.option.OptionManager("VpxSettings"), "UpdateOptions", changedValue=[
        vim.option.OptionValue(key="a.long", value=VmomiSupport.GetVmodlType("long")(1 << 40)),
        vim.option.OptionValue(key="a.list", value=VmomiSupport.GetVmodlType("string[]")(["x", "y"]))])


def test_a_wrongly_typed_field_still_fails():
    good = _request(vim.Folder("group-v3"), "CreateVM_Task", config=vim.vm.ConfigSpec(name="x", numCPUs=1),
                    pool=vim.ResourcePool("resgroup-1"))
    bad = good.replace(b"<numCPUs>1</numCPUs>", b"<numCPUs>one</numCPUs>")
    assert bad != good
    with pytest.raises(soap.SoapRequestError):
        soap.parse_request(bad, ACTION)
    as_string = good.replace(b"<numCPUs>1</numCPUs>", b'<numCPUs xsi:type="xsd:string">1</numCPUs>')
    with pytest.raises(soap.SoapRequestError):
        soap.parse_request(as_string, ACTION)


def test_this_keeps_its_type():
    parsed = soap.parse_request(_request(vim.ServiceInstance("ServiceInstance"), "CurrentTime"), ACTION)
    assert isinstance(parsed.this, vim.ServiceInstance) and isinstance(parsed.this, ManagedObject)
    assert VmomiSupport.GetWsdlName(type(parsed.this)) == "ServiceInstance"
