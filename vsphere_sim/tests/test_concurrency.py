"""50 clients at once, each with its own pyVmomi connection, running VM lifecycles that partly collide.

Every operation must succeed or fail with a vSphere fault (never a connection error, a malformed reply or a hang), and
the inventory afterwards must be exactly what the successful operations imply.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from pyVmomi import vim, vmodl

pytestmark = [pytest.mark.timeout(180)]

THREADS = 50
ROUNDS = 2
SHARED_NAMES = 5  # every thread also races for one of these names: exactly one create per name may win


@dataclass
class Outcome:
    ok: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    errors: list = field(default_factory=list)  # anything that is not a vSphere fault
    alive: dict = field(default_factory=dict)  # moid -> final name, for VMs this thread left in place
    shared: dict = field(default_factory=dict)  # shared name -> moid when this thread won it


def _wait(task, timeout=60.0):
    """Poll the task (one Fetch per poll): lean, and no property filters that would add contention of their own."""
    deadline = time.monotonic() + timeout
    while True:
        info = task.info
        if info.state == "success":
            return info.result
        if info.state == "error":
            raise info.error
        if time.monotonic() > deadline:
            raise TimeoutError(f"{task._moId} still {info.state}")
        time.sleep(0.005)


def _spec(name, datastore_name):
    return vim.vm.ConfigSpec(name=name, guestId="otherLinux64Guest", numCPUs=1, memoryMB=32,
                             files=vim.vm.FileInfo(vmPathName=f"[{datastore_name}]"))


def _placement(si):
    content = si.RetrieveContent()
    dcs = [e for e in content.rootFolder.childEntity if isinstance(e, vim.Datacenter)]
    if not dcs:
        pytest.skip("no datacenter in the inventory yet")
    dc = dcs[0]
    pool = next((getattr(e, "resourcePool", None) for e in dc.hostFolder.childEntity
                 if getattr(e, "resourcePool", None) is not None), None)
    if pool is None or not dc.datastore:
        pytest.skip("no resource pool or datastore in the inventory yet")
    return dc, pool, dc.datastore[0].name


@pytest.fixture(scope="module")
def setup(vsphere):
    from pyVim.connect import Disconnect
    si = vsphere.connect()
    dc, pool, ds_name = _placement(si)
    try:
        folder = dc.vmFolder.CreateFolder(f"concurrency-{int(time.time() * 1000)}")
    except vmodl.fault.MethodNotFound:
        pytest.skip("CreateFolder not implemented yet")
    yield si, folder, pool, ds_name
    try:
        for child in folder.childEntity:
            if isinstance(child, vim.VirtualMachine):
                if child.runtime.powerState == "poweredOn":
                    _wait(child.PowerOffVM_Task())
                _wait(child.Destroy_Task())
        _wait(folder.Destroy_Task())
    finally:
        Disconnect(si)


def _lifecycle(vsphere, folder_id, pool_id, ds_name, t: int, start: threading.Barrier) -> Outcome:
    from pyVim.connect import Disconnect
    out = Outcome()
    si = vsphere.connect()
    stub = si._stub
    folder, pool = vim.Folder(folder_id, stub=stub), vim.ResourcePool(pool_id, stub=stub)

    def op(name, call, *args, **kwargs):
        """Run a task method and wait for it; a vSphere fault is an outcome, anything else an error."""
        try:
            result = _wait(call(*args, **kwargs))
        except vmodl.MethodFault as fault:
            out.faults[f"{name}:{fault._wsdlName}"] += 1
            return None, fault
        except Exception as err:  # not a vSphere fault: the sim misbehaved
            out.errors.append(f"{name}: {type(err).__name__}: {err}")
            return None, err
        out.ok[name] += 1
        return result, None

    try:
        start.wait(30)
        shared = f"shared-{t % SHARED_NAMES}"
        vm, _ = op("create-shared", folder.CreateVM_Task, config=_spec(shared, ds_name), pool=pool)
        if vm is not None:
            out.shared[shared] = vm._moId
            out.alive[vm._moId] = shared
        for k in range(ROUNDS):
            vm, _ = op("create", folder.CreateVM_Task, config=_spec(f"c{t}-{k}", ds_name), pool=pool)
            if vm is None:
                continue
            name = f"c{t}-{k}"
            # every other thread renames onto its neighbour's name: some of these collide (DuplicateName)
            target = f"r{t // 2}-{k}"
            _, fault = op("rename", vm.ReconfigVM_Task, spec=vim.vm.ConfigSpec(name=target))
            if fault is None:
                name = target
            _, on_fault = op("power-on", vm.PowerOnVM_Task)
            if on_fault is None:
                op("power-off", vm.PowerOffVM_Task)
            if k % 2 == 0:
                _, fault = op("destroy", vm.Destroy_Task)
                if fault is None:
                    continue
            out.alive[vm._moId] = name
    finally:
        try:
            Disconnect(si)
        except Exception:
            pass
    return out


def test_fifty_clients_at_once(vsphere, setup):
    si, folder, pool, ds_name = setup
    start = threading.Barrier(THREADS)
    with ThreadPoolExecutor(THREADS) as executor:
        futures = [executor.submit(_lifecycle, vsphere, folder._moId, pool._moId, ds_name, t, start)
                   for t in range(THREADS)]
        # bounded: a deadlock shows up as a timeout here, not as a hung test run
        outcomes = [f.result(timeout=150) for f in futures]

    errors = [e for o in outcomes for e in o.errors]
    assert not errors, errors[:10]
    ok = sum((o.ok for o in outcomes), Counter())
    faults = sum((o.faults for o in outcomes), Counter())
    assert ok["create"] == THREADS * ROUNDS, faults
    assert ok["create-shared"] == SHARED_NAMES, faults
    assert set(faults) <= {"create-shared:DuplicateName", "rename:DuplicateName"}, faults
    assert ok["power-on"] == ok["power-off"] == THREADS * ROUNDS

    expected = {}
    for o in outcomes:
        expected.update(o.alive)
    winners = [o.shared for o in outcomes if o.shared]
    assert sorted(n for w in winners for n in w) == sorted(f"shared-{i}" for i in range(SHARED_NAMES))

    vms = {child._moId: child for child in folder.childEntity if isinstance(child, vim.VirtualMachine)}
    assert set(vms) == set(expected)
    for moid, vm in vms.items():
        assert vm.name == expected[moid]
        assert vm.runtime.powerState == "poweredOff"
    names = Counter(vm.name for vm in vms.values())
    assert max(names.values()) == 1, [n for n, c in names.items() if c > 1]
