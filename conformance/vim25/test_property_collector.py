"""The property collector as pyVmomi clients use it: traversal, paging, views, filters and WaitForUpdatesEx."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

PC = vmodl.query.PropertyCollector


def _datacenter(si):
    return next(e for e in si.content.rootFolder.childEntity if isinstance(e, vim.Datacenter))


def _pool(dc):
    compute = next(e for e in dc.hostFolder.childEntity if isinstance(e, vim.ComputeResource))
    return compute.resourcePool


def _datastore(dc):
    return next(ds for ds in dc.datastore if ds.summary.type != "vsan")


def _create_vm(si, name):
    dc = _datacenter(si)
    spec = vim.vm.ConfigSpec(name=name, guestId="otherGuest64", numCPUs=1, memoryMB=64,
                             files=vim.vm.FileInfo(vmPathName=f"[{_datastore(dc).name}]"))
    task = dc.vmFolder.CreateVM_Task(config=spec, pool=_pool(dc))
    WaitForTask(task)
    return task.info.result


@pytest.fixture(scope="module")
def vms(si):
    created = [_create_vm(si, f"pc-{i}-{uuid.uuid4().hex[:6]}") for i in range(5)]
    yield created
    for vm in created:
        try:
            WaitForTask(vm.Destroy_Task())
        except vmodl.fault.ManagedObjectNotFound:
            pass


def _vm_traversal():
    """The classic inventory walk: Folder → childEntity, Datacenter → vmFolder."""
    folder_to_children = PC.TraversalSpec(name="folderTraversal", type=vim.Folder, path="childEntity", skip=False,
                                          selectSet=[PC.SelectionSpec(name="folderTraversal"),
                                                     PC.SelectionSpec(name="dcToVm")])
    dc_to_vm = PC.TraversalSpec(name="dcToVm", type=vim.Datacenter, path="vmFolder", skip=False,
                                selectSet=[PC.SelectionSpec(name="folderTraversal")])
    return [folder_to_children, dc_to_vm]


def _all_vms_spec(si, paths):
    return PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=si.content.rootFolder, skip=True, selectSet=_vm_traversal())],
                         propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=paths)])


def test_traversal_from_root_finds_every_vm(si, vms):
    result = si.content.propertyCollector.RetrievePropertiesEx([_all_vms_spec(si, ["name"])], PC.RetrieveOptions())
    names = {oc.propSet[0].val for oc in result.objects}
    assert {vm.name for vm in vms} <= names
    assert all(isinstance(oc.obj, vim.VirtualMachine) for oc in result.objects)


def test_paging_with_max_objects(si, vms):
    pc = si.content.propertyCollector
    first = pc.RetrievePropertiesEx([_all_vms_spec(si, ["name"])], PC.RetrieveOptions(maxObjects=2))
    seen = [oc.obj for oc in first.objects]
    assert len(seen) == 2 and first.token
    token = first.token
    while token:
        page = pc.ContinueRetrievePropertiesEx(token)
        seen.extend(oc.obj for oc in page.objects)
        token = page.token
    assert {vm._moId for vm in vms} <= {ref._moId for ref in seen}
    assert len(seen) == len({ref._moId for ref in seen})


def test_container_view_lists_vms(si, vms):
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
    try:
        assert {vm._moId for vm in vms} <= {ref._moId for ref in view.view}
        spec = PC.FilterSpec(
            objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[
                PC.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)])],
            propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["name", "runtime.powerState"])])
        result = si.content.propertyCollector.RetrievePropertiesEx([spec], PC.RetrieveOptions())
        by_name = {dict((p.name, p.val) for p in oc.propSet)["name"]: oc for oc in result.objects}
        for vm in vms:
            props = dict((p.name, p.val) for p in by_name[vm.name].propSet)
            assert props["runtime.powerState"] == "poweredOff"
    finally:
        view.DestroyView()


def test_nested_path_and_invalid_path(si, vms):
    pc = si.content.propertyCollector
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vms[0])],
                         propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["config.hardware.numCPU"])])
    result = pc.RetrievePropertiesEx([spec], PC.RetrieveOptions())
    assert result.objects[0].propSet[0].val == 1
    bad = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vms[0])],
                        propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["config.noSuchThing"])])
    with pytest.raises(vmodl.query.InvalidProperty) as err:
        pc.RetrievePropertiesEx([bad], PC.RetrieveOptions())
    assert err.value.name == "config.noSuchThing"


def test_wait_for_updates_reports_enter_modify_and_timeout(si, vms):
    pc = si.content.propertyCollector.CreatePropertyCollector()
    try:
        vm = vms[1]
        pc.CreateFilter(PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vm)],
                                      propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["name"])]), True)
        first = pc.WaitForUpdatesEx("", PC.WaitOptions(maxWaitSeconds=5))
        update = first.filterSet[0].objectSet[0]
        assert update.kind == "enter" and update.changeSet[0].val == vm.name
        started = time.monotonic()
        assert pc.WaitForUpdatesEx(first.version, PC.WaitOptions(maxWaitSeconds=1)) is None
        assert time.monotonic() - started >= 0.9

        new_name = f"renamed-{uuid.uuid4().hex[:6]}"
        threading.Timer(0.3, lambda: WaitForTask(vm.Rename_Task(new_name))).start()
        second = pc.WaitForUpdatesEx(first.version, PC.WaitOptions(maxWaitSeconds=10))
        change = second.filterSet[0].objectSet[0]
        assert change.kind == "modify"
        assert [(c.name, c.val) for c in change.changeSet] == [("name", new_name)]
    finally:
        pc.DestroyPropertyCollector()


def test_destroyed_vm_leaves_the_filter(si):
    vm = _create_vm(si, f"pc-leave-{uuid.uuid4().hex[:6]}")
    pc = si.content.propertyCollector.CreatePropertyCollector()
    try:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        pc.CreateFilter(PC.FilterSpec(
            objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[
                PC.TraversalSpec(name="v", type=vim.view.ContainerView, path="view", skip=False)])],
            propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["name"])]), True)
        first = pc.WaitForUpdatesEx("", PC.WaitOptions(maxWaitSeconds=5))
        WaitForTask(vm.Destroy_Task())
        second = pc.WaitForUpdatesEx(first.version, PC.WaitOptions(maxWaitSeconds=10))
        kinds = {(u.obj._moId, u.kind) for f in second.filterSet for u in f.objectSet}
        assert (vm._moId, "leave") in kinds
        view.DestroyView()
    finally:
        pc.DestroyPropertyCollector()


def test_filters_are_private_to_their_session(si, vsphere, vms):
    other = vsphere.connect()
    try:
        mine = si.content.propertyCollector.CreateFilter(
            PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vms[0])],
                          propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["name"])]), True)
        try:
            theirs = other.content.propertyCollector.filter
            assert mine._moId not in {f._moId for f in theirs}
            assert mine._moId in {f._moId for f in si.content.propertyCollector.filter}
        finally:
            mine.DestroyPropertyFilter()
    finally:
        from pyVim.connect import Disconnect
        Disconnect(other)


def test_wait_for_task_sees_success_and_error(si, vms):
    vm = vms[2]
    assert WaitForTask(vm.PowerOnVM_Task()) == "success"
    try:
        with pytest.raises(vim.fault.InvalidPowerState):
            WaitForTask(vm.PowerOnVM_Task())
    finally:
        WaitForTask(vm.PowerOffVM_Task())
