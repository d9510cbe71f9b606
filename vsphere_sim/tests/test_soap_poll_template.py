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
