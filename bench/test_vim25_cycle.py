"""The pyVmomi VM cycle CreateVM_Task → ReconfigVM_Task(rename) → PowerOnVM_Task → PowerOffVM_Task → Destroy_Task, and
CurrentTime as the floor of one round trip.

Three ways to wait for a task, as real clients do:
- poll:  RetrievePropertiesEx of info.state/error/result until final (2 round trips per op when the task is done)
- wait:  a property filter on the task and WaitForUpdatesEx until final (govmomi's task.Wait; 4 round trips)
- pyvim: pyVim.task.WaitForTask, then task.info.result (what most pyVmomi scripts do; ~9 round trips)
Each op is timed from the call to observed completion; the per-op medians go into the benchmark's extra_info.
"""
from __future__ import annotations

import itertools
import os
import statistics
import time

import pytest
from pyVmomi import vim, vmodl

# 300 cycles (~2 s a style): a burst of load from elsewhere on a shared machine then moves the median less
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "300"))
WARMUP = 10
OPS = ("CreateVM_Task", "ReconfigVM_Task", "PowerOnVM_Task", "PowerOffVM_Task", "Destroy_Task")
FINAL = ("success", "error")
_names = itertools.count()


def test_current_time(benchmark, bench_target, bench_si):
    benchmark.extra_info.update(target=bench_target.label, transport=bench_target.transport, style="floor",
                                ops_per_round=1)
    server0, client0 = bench_target.server_cpu(), time.process_time()
    rounds = max(200, ROUNDS * 10)
    benchmark.pedantic(bench_si.CurrentTime, rounds=rounds, warmup_rounds=20)
    server1, client1 = bench_target.server_cpu(), time.process_time()
    calls = rounds + 20
    if server0 is not None and server1 is not None:
        benchmark.extra_info["server_cpu_ms_per_round"] = round((server1 - server0) / calls * 1e3, 3)
    benchmark.extra_info["client_cpu_ms_per_round"] = round((client1 - client0) / calls * 1e3, 3)


# -- waiting for tasks ---------------------------------------------------------------------------------------------
def _task_spec(task):
    return vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=task, skip=False)],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.Task,
                                                            pathSet=["info.state", "info.error", "info.result"])])


def _final(values: dict):
    if values.get("info.state") == "error":
        raise values["info.error"]
    return values.get("info.result")


class PollWaiter:
    def __init__(self, si):
        self.pc = si.content.propertyCollector
        self.options = vmodl.query.PropertyCollector.RetrieveOptions()

    def __call__(self, task):
        spec = _task_spec(task)
        while True:
            result = self.pc.RetrievePropertiesEx(specSet=[spec], options=self.options)
            values = {p.name: p.val for p in result.objects[0].propSet}
            if values.get("info.state") in FINAL:
                return _final(values)
            time.sleep(0.0005)


class UpdatesWaiter:
    def __init__(self, si):
        # a collector of our own, as govmomi does, so waits never see other filters' updates
        self.pc = si.content.propertyCollector.CreatePropertyCollector()
        self.options = vmodl.query.PropertyCollector.WaitOptions(maxWaitSeconds=30)

    def __call__(self, task):
        flt = self.pc.CreateFilter(_task_spec(task), partialUpdates=False)
        try:
            version, values = "", {}
            while values.get("info.state") not in FINAL:
                update = self.pc.WaitForUpdatesEx(version, self.options)
                if update is None:
                    continue
                version = update.version
                for fs in update.filterSet:
                    for obj in fs.objectSet:
                        for change in obj.changeSet:
                            values[change.name] = change.val
            return _final(values)
        finally:
            flt.DestroyPropertyFilter()


def pyvim_waiter(task):
    from pyVim.task import WaitForTask
    WaitForTask(task)
    return task.info.result


# -- the cycle -----------------------------------------------------------------------------------------------------
def _placement(si):
    content = si.RetrieveContent()
    dcs = [e for e in content.rootFolder.childEntity if isinstance(e, vim.Datacenter)]
    if not dcs:
        pytest.skip("no datacenter in the inventory")
    dc = dcs[0]
    pool = next((e.resourcePool for e in dc.hostFolder.childEntity if getattr(e, "resourcePool", None)), None)
    wanted = os.environ.get("BENCH_DATASTORE")
    datastores = [d for d in dc.datastore if wanted in (None, d.name)]
    if pool is None or not datastores:
        pytest.skip("no resource pool or datastore in the inventory")
    return dc.vmFolder, pool, datastores[0].name


def _spec(name, ds_name):
    return vim.vm.ConfigSpec(name=name, guestId="otherLinux64Guest", numCPUs=1, memoryMB=64,
                             files=vim.vm.FileInfo(vmPathName=f"[{ds_name}]"))


def _cycle(folder, pool, ds_name, wait, samples):
    name = f"bench-{os.getpid()}-{next(_names)}"
    t0 = time.perf_counter()
    vm = wait(folder.CreateVM_Task(config=_spec(name, ds_name), pool=pool))
    t1 = time.perf_counter()
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(name=name + "-r")))
    t2 = time.perf_counter()
    wait(vm.PowerOnVM_Task())
    t3 = time.perf_counter()
    wait(vm.PowerOffVM_Task())
    t4 = time.perf_counter()
    wait(vm.Destroy_Task())
    t5 = time.perf_counter()
    for op, start, end in zip(OPS, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5)):
        samples[op].append(end - start)


@pytest.mark.parametrize("style", ["poll", "wait", "pyvim"])
def test_vm_cycle(benchmark, bench_target, bench_si, style):
    folder, pool, ds_name = _placement(bench_si)
    wait = {"poll": PollWaiter, "wait": UpdatesWaiter}.get(style, lambda si: pyvim_waiter)(bench_si)
    samples = {op: [] for op in OPS}
    try:
        _cycle(folder, pool, ds_name, wait, samples)  # also the check that the target can run the cycle at all
    except vmodl.fault.MethodNotFound as fault:
        pytest.skip(f"the target does not implement {fault.method}")
    samples = {op: [] for op in OPS}
    server0, client0 = bench_target.server_cpu(), time.process_time()
    benchmark.pedantic(_cycle, args=(folder, pool, ds_name, wait, samples), rounds=ROUNDS, warmup_rounds=WARMUP)
    server1, client1 = bench_target.server_cpu(), time.process_time()
    cycles = ROUNDS + WARMUP
    if server0 is not None and server1 is not None:
        benchmark.extra_info["server_cpu_ms_per_round"] = round((server1 - server0) / cycles * 1e3, 3)
    benchmark.extra_info["client_cpu_ms_per_round"] = round((client1 - client0) / cycles * 1e3, 3)
    benchmark.extra_info.update(
        target=bench_target.label, transport=bench_target.transport, style=style, ops_per_round=len(OPS),
        op_median_ms={op: round(statistics.median(v) * 1e3, 3) for op, v in samples.items()},
        op_p95_ms={op: round(_p95(v) * 1e3, 3) for op, v in samples.items()})


def test_connect(benchmark, bench_target):
    """SmartConnect: versions GET + RetrieveServiceContent + Login (a new TLS handshake each time on https)."""
    from pyVim.connect import Disconnect

    def connect_once():
        Disconnect(bench_target.connect())

    benchmark.extra_info.update(target=bench_target.label, transport=bench_target.transport, style="connect",
                                ops_per_round=1)
    benchmark.pedantic(connect_once, rounds=max(10, ROUNDS // 5), warmup_rounds=1)


def _p95(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
