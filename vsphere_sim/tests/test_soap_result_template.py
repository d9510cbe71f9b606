"""A task poll's RetrievePropertiesEx answer is encoded from a template per shape (soap.py puts the moids in): the
bytes must be exactly pyVmomi's own for the same value, and anything outside the templated shapes is encoded plainly."""
from __future__ import annotations

from pyVmomi import vim, vmodl

from vsphere_sim import soap

VERSION = soap.DEFAULT_VERSION
METHOD = soap.lookup_method("RetrievePropertiesEx")
RESULT_TYPE = METHOD.info.result
PC = vmodl.query.PropertyCollector


def _result(task: str, *props, missing=()) -> PC.RetrieveResult:
    return PC.RetrieveResult(objects=[PC.ObjectContent(
        obj=vim.Task(task), propSet=[vmodl.DynamicProperty(name=n, val=v) for n, v in props],
        missingSet=list(missing))])


def _both(value) -> tuple[bytes, bytes]:
    return (soap.encode_response("RetrievePropertiesEx", RESULT_TYPE, value, VERSION),
            soap._encode_response("RetrievePropertiesEx", RESULT_TYPE, value, VERSION))


def test_templated_answers_are_pyvmomis_bytes():
    success, running = vim.TaskInfo.State.success, vim.TaskInfo.State.running
    for value in (_result("task-1", ("info.state", success)),
                  _result("task-22", ("info.state", success)),
                  _result("task-3", ("info.state", running)),
                  _result("task-4", ("info.state", success), ("info.result", vim.VirtualMachine("vm-41"))),
                  _result("task-5", ("info.state", success), ("info.result", vim.VirtualMachine("vm-5"))),
                  _result("task-6", ("info.state", success), ("info.result", vim.Folder("group-v7"))),
                  _result("task-7", ("info.cancelable", True), ("info.cancelled", False)),
                  _result("task-8", ("info.state", "success"), ("info.result", vim.VirtualMachine("vm-8"))),
                  _result("task-9", ("info.state", "success"))):
        templated, plain = _both(value)
        assert templated == plain
    assert any(key[-1][0] is vim.Task for key in soap._result_templates)


def test_other_answers_are_encoded_plainly():
    fault = vmodl.fault.ManagedObjectNotFound(obj=vim.Task("task-9"), msg="gone")
    for value in (_result("task-8", ("info.state", vim.TaskInfo.State.error),
                          ("info.error", vmodl.fault.SystemError(msg="boom", reason="x"))),
                  _result("task-9", missing=[PC.MissingProperty(path="", fault=fault)]),
                  _result("task-10", ("info.name", "a <name> & more")),
                  _result("task-10", ("info.name", "vm-10")),
                  _result("task-11", ("info.result", vim.VirtualMachine("vm-1", serverGuid="guid"))),
                  PC.RetrieveResult(token="1", objects=[_result("task-12").objects[0]]),
                  PC.RetrieveResult(objects=[_result("task-13").objects[0], _result("task-14").objects[0]])):
        templated, plain = _both(value)
        assert templated == plain
    assert soap._result_shape(_result("task-10", ("info.name", "two words"))) is None
