"""WaitForUpdatesEx latency: from a change to the update arriving at a watcher that is already waiting.

A second connection (as a watcher such as the VCH's event loop would have) holds a property filter on one VM's
`name` and sits in WaitForUpdatesEx; each round renames the VM (ReconfigVM_Task) on the main connection and is timed
from just before that call until the watcher has the new name. The previous round's task is waited for in the
untimed setup, so rounds don't overlap.
"""
from __future__ import annotations

import itertools
import os
import queue
import threading
import time

import pytest
from pyVmomi import vim, vmodl

from .conftest import env_int

ROUNDS = env_int("BENCH_UPDATES_ROUNDS", env_int("BENCH_ROUNDS", 100))


def test_wait_for_updates_latency(benchmark, bench_target, bench_si):
    content = bench_si.RetrieveContent()
    dc = next((e for e in content.rootFolder.childEntity if isinstance(e, vim.Datacenter)), None)
    if dc is None:
        pytest.skip("no datacenter")
    pool = next(e.resourcePool for e in dc.hostFolder.childEntity if getattr(e, "resourcePool", None))
    ds_name = os.environ.get("BENCH_DATASTORE") or dc.datastore[0].name
    from pyVim.task import WaitForTask
    base = f"bench-watch-{os.getpid()}"
    task = dc.vmFolder.CreateVM_Task(config=vim.vm.ConfigSpec(
        name=base, guestId="otherLinux64Guest", numCPUs=1, memoryMB=64,
        files=vim.vm.FileInfo(vmPathName=f"[{ds_name}]")), pool=pool)
    WaitForTask(task)
    vm = task.info.result

    watcher_si = bench_target.connect()
    PC = vmodl.query.PropertyCollector
    pc = watcher_si.content.propertyCollector.CreatePropertyCollector()
    pc.CreateFilter(PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vim.VirtualMachine(vm._moId, watcher_si._stub))],
                                  propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["name"])]),
                    partialUpdates=False)
    seen: queue.Queue = queue.Queue()
    stop = threading.Event()

    def watch():
        version = ""
        options = PC.WaitOptions(maxWaitSeconds=5)
        while not stop.is_set():
            try:
                update = pc.WaitForUpdatesEx(version, options)
            except Exception as err:  # noqa: BLE001
                seen.put(err)
                return
            if update is None:
                continue
            now = time.perf_counter()
            version = update.version
            for fs in update.filterSet:
                for obj in fs.objectSet:
                    for change in obj.changeSet:
                        if change.name == "name":
                            seen.put((now, change.val))

    thread = threading.Thread(target=watch, name="bench-watcher", daemon=True)
    thread.start()
    first = seen.get(timeout=30)  # the initial state
    assert not isinstance(first, Exception), first
    names = itertools.count(1)
    state = {"task": None}
    samples = []

    def setup():
        if state["task"] is not None:
            WaitForTask(state["task"])
        while not seen.empty():
            seen.get_nowait()
        return (f"{base}-{next(names)}",), {}

    def change_and_see(name):
        t0 = time.perf_counter()
        state["task"] = vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(name=name))
        while True:
            item = seen.get(timeout=30)
            if isinstance(item, Exception):
                raise item
            if item[1] == name:
                samples.append(item[0] - t0)
                return

    benchmark.extra_info.update(target=bench_target.label, transport=bench_target.transport,
                                style="WaitForUpdatesEx latency", kind="updates", ops_per_round=1)
    try:
        benchmark.pedantic(change_and_see, setup=setup, rounds=ROUNDS, warmup_rounds=2)
    finally:
        stop.set()
        if state["task"] is not None:
            WaitForTask(state["task"])
        vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(name=base + "-done"))  # an update to wake the watcher
        thread.join(10)
        from pyVim.connect import Disconnect
        try:
            Disconnect(watcher_si)
        except Exception:  # noqa: BLE001
            pass
        WaitForTask(vm.Destroy_Task())
