"""What a task leaves to settle (its events, its file layout) and the state store's change log.

Over HTTP a task's work runs after its call's answer, and what no task poll can read settles after the poll that shows
the task's end (vsphere_sim/settle.py). A client must never see the difference: whatever it asks right after a poll
already has the task's events and files. The store's change log must bring back, after a crash, every change sqlite
had not received yet, and also a layout whose settling the crash cut off.
"""
from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from vsphere_sim import Simulator, persist

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def served(tmp_path):
    sim = Simulator(tmp_path / "sim")
    server = sim.serve("127.0.0.1:0", tls=False)
    url = urlsplit(server.url)
    si = SmartConnect(host=url.hostname, port=url.port, user=sim.user, pwd=sim.password, protocol="http")
    try:
        yield sim, si
    finally:
        Disconnect(si)
        sim.close()


def _poll(si, task):
    """The lean client's wait: RetrievePropertiesEx of the task's info until it is final."""
    pc = si.content.propertyCollector
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=task)],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.Task,
                                                            pathSet=["info.state", "info.error", "info.result"])])
    while True:
        result = pc.RetrievePropertiesEx(specSet=[spec], options=vmodl.query.PropertyCollector.RetrieveOptions())
        values = {p.name: p.val for p in result.objects[0].propSet}
        if values["info.state"] == "error":
            raise values["info.error"]
        if values["info.state"] == "success":
            return values.get("info.result")


def _events(si, entity) -> list[str]:
    recursion = "self" if isinstance(entity, vim.VirtualMachine) else "all"
    spec = vim.event.EventFilterSpec(entity=vim.event.EventFilterSpec.ByEntity(entity=entity, recursion=recursion))
    events = sorted(si.content.eventManager.QueryEvents(spec), key=lambda e: e.key)
    return [type(e).__name__.rpartition(".")[2] for e in events]


def _layout_files(si, vm) -> set[str]:
    return {f.name.rpartition("/")[2] for f in vm.layoutEx.file}


def test_what_a_task_left_to_settle_is_there_for_the_next_call(served):
    sim, si = served
    dc = si.content.rootFolder.childEntity[0]
    pool = dc.hostFolder.childEntity[0].resourcePool
    spec = vim.vm.ConfigSpec(name="settled", guestId="otherLinux64Guest", numCPUs=1, memoryMB=64,
                             files=vim.vm.FileInfo(vmPathName=f"[{dc.datastore[0].name}]"))
    vm = _poll(si, dc.vmFolder.CreateVM_Task(config=spec, pool=pool))
    assert {"settled.vmx", "settled.nvram"} <= _layout_files(si, vm)
    assert _events(si, vm)[-1] == "VmCreatedEvent"

    _poll(si, vm.PowerOnVM_Task())
    assert any(name.endswith(".vswp") for name in _layout_files(si, vm))
    assert vm.layout.swapFile.endswith(".vswp")
    assert _events(si, vm)[-1] == "VmPoweredOnEvent"

    _poll(si, vm.PowerOffVM_Task())
    assert not any(name.endswith(".vswp") for name in _layout_files(si, vm))
    _poll(si, vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(name="settled-again")))
    events = _events(si, vm)
    assert events[-2:] == ["VmPoweredOffEvent", "VmReconfiguredEvent"]
    assert b'displayName = "settled-again"' in sim.datastores.read_file(vm.config.files.vmPathName)
    assert events.index("VmCreatedEvent") < events.index("VmPoweredOnEvent")

    # nothing is left queued once the next call has been served, and the store has it all
    assert not sim.lock.pending
    home = vm.config.files.vmPathName.rpartition("/")[0]
    _poll(si, vm.Destroy_Task())
    assert _events(si, dc)[-1] == "VmRemovedEvent"  # built while the VM was still in the inventory
    assert not sim.lock.pending and not sim.registry.dirty
    assert not sim.datastores.exists(home)  # its files and folder went when it settled


def _crash_copy(sim, dest: Path) -> Path:
    """The workdir as a kill -9 would leave it: the store's files as they are on disk right now (the sim goes on)."""
    dest.mkdir()
    for path in sim.workdir.iterdir():
        if path.name.startswith("state.db") and not path.name.endswith(".lock"):
            shutil.copy2(path, dest / path.name)
        elif path.is_dir():
            shutil.copytree(path, dest / path.name)
    return dest


def test_a_crash_before_the_change_log_reaches_sqlite_loses_nothing(tmp_path, caplog):
    sim = Simulator(tmp_path / "sim")
    try:
        sim.store.APPLY_INTERVAL = 3600  # the applier waits: the folders below are only in the change log
        dc = next(c for c in sim.root_folder().children() if isinstance(c.ref, vim.Datacenter))
        for name in ("a", "b", "c"):
            sim.call(dc.props["vmFolder"], "CreateFolder", name=name)
        crashed = _crash_copy(sim, tmp_path / "crashed")
    finally:
        sim.close()
    logs = sorted(crashed.glob("state.db.changes.*"))
    assert logs and logs[-1].stat().st_size > 0
    with open(logs[-1], "ab") as log_file:  # and the record the kill cut off in the middle of its write
        log_file.write(b"\x40\x00\x00\x00\x01\x02\x03\x04partial")
    caplog.set_level(logging.WARNING, logger="vsphere_sim.persist")
    with Simulator(crashed) as again:
        dc = next(c for c in again.root_folder().children() if isinstance(c.ref, vim.Datacenter))
        names = {child.name for child in again.get(dc.props["vmFolder"]).children()}
        assert {"a", "b", "c"} <= names
    assert "partial record" in caplog.text
    assert not list(crashed.glob("state.db.changes.*"))  # replayed into sqlite, then dropped


def test_a_crash_before_a_vm_settled_redoes_its_vmx_and_layout_on_load(tmp_path):
    sim = Simulator(tmp_path / "sim")
    try:
        dc = next(c for c in sim.root_folder().children() if isinstance(c.ref, vim.Datacenter))
        compute = sim.get(dc.props["hostFolder"]).children()[0]
        spec = vim.vm.ConfigSpec(name="unsettled", guestId="otherLinux64Guest", numCPUs=1, memoryMB=64,
                                 files=vim.vm.FileInfo(vmPathName=f"[{sim.get(dc.props['datastore'][0]).name}]"))
        ref = sim.wait_task(sim.call(dc.props["vmFolder"], "CreateVM_Task", config=spec,
                                     pool=compute.props["resourcePool"]))
        vm = sim.get(ref)
        with sim.lock:  # rename and power on as served tasks do: the .vmx and layout queued to settle later
            sim.lock.queueing = True
            try:
                vm.reconfigure(vim.vm.ConfigSpec(name="renamed"))
                vm.power_on()
            finally:
                sim.lock.queueing = False
            sim.flush_state()
            assert vm.stale == {"vmx", "layout"} and not any(f.type == "swap" for f in vm.props["layoutEx"].file)
            assert b"renamed" not in sim.datastores.read_file(vm.vmx_path())
            crashed = _crash_copy(sim, tmp_path / "crashed")
            sim.lock.settle()
    finally:
        sim.close()
    with Simulator(crashed) as again:
        vm = again.get(ref)
        assert not vm.stale
        assert any(f.type == "swap" for f in vm.props["layoutEx"].file)
        assert b'displayName = "renamed"' in again.datastores.read_file(vm.vmx_path())
        # the summary is saved without its runtime (the VM's runtime is the same object): it is put back
        assert vm.props["summary"].runtime is vm.props["runtime"]
        assert vm.props["summary"].runtime.powerState == "poweredOn"


# -- the applier's coalescing: the same database as every statement applied one after the other ---------------------
_MOIDS = st.sampled_from(["vm-1", "vm-2", "group-v3"])
_NAMES = st.sampled_from(["name", "config", "summary"])
_STATEMENT = st.one_of(
    st.tuples(st.just("objects"), st.lists(st.tuples(_MOIDS, st.just("cls"), st.sampled_from(["{}", '{"a":1}'])),
                                           min_size=1, max_size=2)),
    st.tuples(st.just("props"), st.lists(st.tuples(_MOIDS, _NAMES, st.binary(max_size=3)), min_size=1, max_size=3)),
    st.tuples(st.just("delete_prop"), st.lists(st.tuples(_MOIDS, _NAMES), min_size=1, max_size=2)),
    st.tuples(st.just("delete_objects"), st.lists(st.tuples(_MOIDS), min_size=1, max_size=1)),
    st.tuples(st.just("delete_props"), st.lists(st.tuples(_MOIDS), min_size=1, max_size=1)),
    st.tuples(st.just("meta"), st.lists(st.tuples(st.sampled_from(["counter:vm", "counter:task"]),
                                                  st.sampled_from(["1", "2"])), min_size=1, max_size=1)),
)


def _database(statements) -> dict:
    conn = sqlite3.connect(":memory:")
    conn.executescript(persist._SCHEMA)
    for statement, rows in statements:
        conn.executemany(persist._STATEMENTS[statement], rows)
    return {table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall()) for table in ("objects", "props", "meta")}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_STATEMENT, min_size=1, max_size=4), min_size=1, max_size=6))
def test_coalescing_a_batch_keeps_what_the_database_ends_up_with(records):
    everything = [change for changes in records for change in changes]
    assert _database(persist.coalesce(records)) == _database(everything)


def test_a_vm_created_and_destroyed_in_one_batch_costs_only_its_deletes():
    created = [("objects", [("vm-9", "cls", "{}")]), ("props", [("vm-9", "name", b"a"), ("vm-9", "config", b"c")])]
    renamed = [("props", [("vm-9", "name", b"b")])]
    destroyed = [("delete_objects", [("vm-9",)]), ("delete_props", [("vm-9",)]), ("delete_members", [("vm-9",)])]
    assert persist.coalesce([created, renamed, destroyed]) == destroyed
