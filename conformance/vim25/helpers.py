"""What every vim25 conformance suite needs: the targets named by the environment, task waiting, fault assertions.

Black-box: pyVmomi only, so the suites run against the embedded sim or any vSphere named by VSPHERE_URL.
VSPHERE_DATACENTER / VSPHERE_DATASTORE / VSPHERE_VSAN_DATASTORE pick the targets on a real vCenter.
"""
from __future__ import annotations

import os
import time
import uuid

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

DC = os.environ.get("VSPHERE_DATACENTER", "DC0")
DS = os.environ.get("VSPHERE_DATASTORE", "LocalDS_0")
VSAN = os.environ.get("VSPHERE_VSAN_DATASTORE", "vsanDatastore")


def wait(task):
    """A task's result, or its fault raised. pyVim's WaitForTask reads TaskInfo whole, entity included, so this also
    checks what vcsim gets wrong; a server without property collector filters is polled instead."""
    try:
        WaitForTask(task)
    except vmodl.fault.MethodNotFound:
        deadline = time.monotonic() + 60
        while task.info.state in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.01)
        if task.info.state == "error":
            raise task.info.error from None
    return task.info.result


def call(fn, *args, **kwargs):
    """A method's result; for a *_Task method its task's result. Faults raise whether the call or the task fails."""
    result = fn(*args, **kwargs)
    return wait(result) if isinstance(result, vim.Task) else result


def raises(fault_cls, fn, *args, **kwargs):
    """The fault a call raises, asserting its exact class and a message in vCenter's terms (no host paths)."""
    with pytest.raises(vmodl.MethodFault) as info:
        call(fn, *args, **kwargs)
    assert type(info.value) is fault_cls, f"{type(info.value).__name__}: {info.value.msg}"
    msg = info.value.msg or ""
    assert "types." not in msg and "/tmp/" not in msg, msg
    return info.value


def unique(prefix: str = "vm") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def walk(folder):
    """Every entity below an inventory folder, depth first."""
    for child in folder.childEntity:
        yield child
        if isinstance(child, vim.Folder):
            yield from walk(child)


def datacenter(si) -> vim.Datacenter:
    dcs = [e for e in si.RetrieveContent().rootFolder.childEntity if isinstance(e, vim.Datacenter)]
    return next((d for d in dcs if d.name == DC), dcs[0])


def vmfs_datastore(dc: vim.Datacenter) -> vim.Datastore:
    """DS if the datacenter has it, else its first accessible datastore that isn't vSAN."""
    stores = [d for d in dc.datastore if d.summary.accessible]
    return next((d for d in stores if d.name == DS), None) or \
        next((d for d in stores if d.summary.type != "vsan"), stores[0])


def resource_pool(dc: vim.Datacenter) -> vim.ResourcePool:
    compute = next(c for c in walk(dc.hostFolder) if isinstance(c, vim.ComputeResource) and c.resourcePool)
    return compute.resourcePool
