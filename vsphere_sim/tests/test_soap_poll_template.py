"""Task polls are parsed once per shape (soap.py masks the Task moid): each poll must still read back as its own
task, with fresh argument objects, and as the plain parse reads it."""
from __future__ import annotations

from pyVmomi import SoapAdapter, vim, vmodl

from vsphere_sim import soap

VERSION = soap.DEFAULT_VERSION
ACTION = '"urn:vim25/8.0.3.0"'


def _poll(task_moid: str, paths=("info.state", "info.error", "info.result")) -> bytes:
    pc = vmodl.query.PropertyCollector
    spec = pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=vim.Task(task_moid), skip=False)],
                         propSet=[pc.PropertySpec(type=vim.Task, pathSet=list(paths))])
    method = soap.lookup_method("RetrievePropertiesEx")
    stub = SoapAdapter.SoapStubAdapter(host="localhost", version=VERSION)
    body = stub.SerializeRequest(vmodl.query.PropertyCollector("propertyCollector"), method.info,
                                 [[spec], pc.RetrieveOptions()])
    return body if isinstance(body, bytes) else body.encode()


def _plain(body: bytes) -> soap.SoapRequest:
    return soap._parse_request(body, VERSION)


def test_each_poll_reads_its_own_task_as_the_plain_parse_does():
    first, second = soap.parse_request(_poll("task-41"), ACTION), soap.parse_request(_poll("task-42"), ACTION)
    assert first.args["specSet"][0].objectSet[0].obj == vim.Task("task-41")
    assert second.args["specSet"][0].objectSet[0].obj == vim.Task("task-42")
    for request, moid in ((first, "task-41"), (second, "task-42")):
        plain = _plain(_poll(moid))
        assert (request.wsdl_name, request.this, request.method) == (plain.wsdl_name, plain.this, plain.method)
        assert repr(request.args) == repr(plain.args)
        assert type(request.args["specSet"]) is type(plain.args["specSet"])


def test_polls_share_no_objects():
    first, second = soap.parse_request(_poll("task-51"), ACTION), soap.parse_request(_poll("task-52"), ACTION)
    assert first.args["specSet"] is not second.args["specSet"]
    assert first.args["specSet"][0] is not second.args["specSet"][0]
    assert first.args["options"] is not second.args["options"]
    first.args["specSet"][0].propSet[0].pathSet.append("info.progress")
    assert list(soap.parse_request(_poll("task-53"), ACTION).args["specSet"][0].propSet[0].pathSet) == \
        ["info.state", "info.error", "info.result"]


def test_other_shapes_are_parsed_apart():
    request = soap.parse_request(_poll("task-61", paths=("info",)), ACTION)
    assert list(request.args["specSet"][0].propSet[0].pathSet) == ["info"]
    assert request.args["specSet"][0].objectSet[0].obj == vim.Task("task-61")


def _vm_call(method_name: str, vm_moid: str) -> bytes:
    method = soap.lookup_method(method_name)
    stub = SoapAdapter.SoapStubAdapter(host="localhost", version=VERSION)
    body = stub.SerializeRequest(vim.VirtualMachine(vm_moid), method.info, [])
    return body if isinstance(body, bytes) else body.encode()


def test_calls_on_a_vm_read_their_own_vm_from_the_second_on():
    for n in range(4):  # the first parses plainly, the next come from the template
        moid = f"vm-{700 + n}"
        request = soap.parse_request(_vm_call("PowerOnVM_Task", moid), ACTION)
        plain = _plain(_vm_call("PowerOnVM_Task", moid))
        assert request.this == vim.VirtualMachine(moid)
        assert (request.wsdl_name, request.this, request.method) == (plain.wsdl_name, plain.this, plain.method)
        assert repr(request.args) == repr(plain.args)
    assert any(b"vsim-task-mark" in key[0] and b"PowerOnVM_Task" in key[0] for key in soap._templates)


def test_text_that_looks_like_a_moref_is_left_alone():
    body = _vm_call("PowerOffVM_Task", "vm-5").replace(
        b"</PowerOffVM_Task>", b"<x>type=&quot;Task&quot;&gt;task-1&lt;</x></PowerOffVM_Task>")
    assert soap._MOREF.findall(body) == [soap._MOREF.findall(_vm_call("PowerOffVM_Task", "vm-5"))[0]]
    assert soap._markup_moref(b"<a>type=\"Task\">task-1</a>") is None
