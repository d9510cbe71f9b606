"""Lists of morefs in the state store (a folder's childEntity, a pool's, host's and datastore's vm): one row per member,
written step by step, so a VM created in a folder of thousands writes as little as one in an empty folder; the lists
come back whole and in order after a restart, also when they were changed around the step log."""
from __future__ import annotations

import sqlite3

import pytest
from pyVmomi import vim

from vsphere_sim import Simulator

pytestmark = pytest.mark.timeout(120)


def _vm_folder(sim):
    return next(c for c in sim.root_folder().children() if isinstance(c.ref, vim.Datacenter)).props["vmFolder"]


def _create_vm(sim, folder_ref, name):
    dc = next(c for c in sim.root_folder().children() if isinstance(c.ref, vim.Datacenter))
    compute = sim.get(dc.props["hostFolder"]).children()[0]
    ds = sim.get(dc.props["datastore"][0])
    spec = vim.vm.ConfigSpec(name=name, guestId="otherLinux64Guest", numCPUs=1, memoryMB=64,
                             files=vim.vm.FileInfo(vmPathName=f"[{ds.name}]"))
    return sim.wait_task(sim.call(folder_ref, "CreateVM_Task", config=spec, pool=compute.props["resourcePool"]))


def _lists(sim, folder_ref, vm):
    pool = sim.get(sim.get(vm).props["resourcePool"])
    obj = sim.get(vm)
    host = sim.get(obj.props["runtime"].host)
    ds = sim.get(obj.props["datastore"][0])
    return {name: [r._moId for r in target.props[prop]] for name, target, prop in (
        ("folder", sim.get(folder_ref), "childEntity"), ("pool", pool, "vm"), ("host", host, "vm"),
        ("datastore", ds, "vm"))}


def _member_rows(workdir) -> int:
    conn = sqlite3.connect(f"file:{workdir}/state.db?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM members").fetchone()[0]
    finally:
        conn.close()


class _CountingStatements:
    """Rows the store's flushes write into `members`, read off the change records they append to the log."""

    def __init__(self, store):
        self.rows = 0
        self.real = store._write_changes
        store._write_changes = self

    def __call__(self, changes):
        self.rows += sum(len(rows) for statement, rows in changes if statement in ("clear", "insert", "remove"))
        return self.real(changes)


def test_lists_survive_a_restart_in_order(tmp_path):
    with Simulator(tmp_path) as sim:
        folder = _vm_folder(sim)
        vms = [_create_vm(sim, folder, f"vm{i}") for i in range(6)]
        sim.wait_task(sim.call(vms[2], "Destroy_Task"))
        sim.wait_task(sim.call(vms[5], "Destroy_Task"))
        vms.append(_create_vm(sim, folder, "vm6"))
        before = _lists(sim, folder, vms[0])
    assert [m for m in before["folder"] if m.startswith("vm-")] == [vms[i]._moId for i in (0, 1, 3, 4, 6)]
    with Simulator(tmp_path) as sim:
        assert _lists(sim, folder, vms[0]) == before
        vms.append(_create_vm(sim, folder, "vm7"))  # positions continue after the loaded ones
        sim.wait_task(sim.call(vms[1], "Destroy_Task"))
        before = _lists(sim, folder, vms[0])
    with Simulator(tmp_path) as sim:
        assert _lists(sim, folder, vms[0]) == before


def test_a_list_changed_around_the_helpers_is_written_whole(tmp_path):
    with Simulator(tmp_path) as sim:
        folder_ref = _vm_folder(sim)
        vms = [_create_vm(sim, folder_ref, f"vm{i}") for i in range(3)]
        folder = sim.get(folder_ref)
        with sim.lock:
            refs = folder.props["childEntity"]
            refs.reverse()  # a change the step log does not see
            folder.touch("childEntity")
            sim.flush_state()
        vms.append(_create_vm(sim, folder_ref, "vm3"))
        before = [r._moId for r in folder.props["childEntity"]]
    with Simulator(tmp_path) as sim:
        assert [r._moId for r in sim.get(folder_ref).props["childEntity"]] == before


def test_creating_a_vm_writes_the_same_rows_in_a_big_folder(tmp_path):
    with Simulator(tmp_path) as sim:
        folder = _vm_folder(sim)
        counter = _CountingStatements(sim.store)
        _create_vm(sim, folder, "first")
        small = counter.rows
        for i in range(300):
            _create_vm(sim, folder, f"filler{i}")
        counter.rows = 0
        last = _create_vm(sim, folder, "last")
        big = counter.rows
        counter.rows = 0
        sim.wait_task(sim.call(last, "Destroy_Task"))
        destroyed = counter.rows
        assert big == small, (small, big)
        assert destroyed <= small
    assert _member_rows(tmp_path) >= 4 * 301


def test_a_list_emptied_to_none_and_back(tmp_path):
    with Simulator(tmp_path) as sim:
        folder_ref = _vm_folder(sim)
        vms = [_create_vm(sim, folder_ref, f"vm{i}") for i in range(2)]
        folder = sim.get(folder_ref)
        with sim.lock:
            saved = list(folder.props["childEntity"])
            folder.set(childEntity=None)
            sim.flush_state()
            folder.set(childEntity=saved[::-1])
            sim.flush_state()
        before = [r._moId for r in folder.props["childEntity"]]
        assert vms[0]._moId in before
    with Simulator(tmp_path) as sim:
        assert [r._moId for r in sim.get(folder_ref).props["childEntity"]] == before
