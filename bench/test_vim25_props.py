"""RetrievePropertiesEx of N VMs (N = 10, 100, 1,000, and 10,000 on sim-http only; BENCH_PROPS_N), the property
retrieval every inventory-wide client does (the VCH's cache rebuild, govc ls, PowerCLI Get-VM): a ContainerView of a
folder holding N VMs, one RetrievePropertiesEx of name, runtime.powerState, config.uuid and config.extraConfig
through it, plus ContinueRetrievePropertiesEx while the server pages. N=1,000 is also the hot-path number
"RetrievePropertiesEx of 1,000 VMs".

The VMs are made once per target through CreateVM_Task from a few connections in parallel, grown in place (N=100
reuses the 10 of N=10) in a folder of their own (in subfolders of 500, which the view sees recursively); the seconds
that took are recorded with each point.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from pyVmomi import vim, vmodl

from .conftest import env_int, sweep_levels

LEVELS = sweep_levels("BENCH_PROPS_N", "10,100,1000,10000")
# N above 1,000 only on these targets: 10,000 VMs take ~70 s to make, once is what fits `make bench`'s 10 minutes
BIG_N = 1000
BIG_TARGETS = (os.environ.get("BENCH_PROPS_BIG_TARGETS") or "sim-http").split(",")
ROUNDS = env_int("BENCH_PROPS_ROUNDS", 15)
THREADS = env_int("BENCH_SETUP_THREADS", 4)
# VMs per subfolder. The sim's CreateVM_Task no longer costs O(VMs in the folder) (a name index, list members
# saved a row each), so one folder holds them all; a smaller shard spreads them for servers that still do.
SHARD = env_int("BENCH_PROPS_SHARD", 10_000)
PATHS = ["name", "runtime.powerState", "config.uuid", "config.extraConfig"]
_folders = itertools.count()


class VMPopulation:
    def __init__(self, target, si):
        self.target = target
        self.si = si
        content = si.RetrieveContent()
        dc = next(e for e in content.rootFolder.childEntity if isinstance(e, vim.Datacenter))
        self.pool = next(e.resourcePool for e in dc.hostFolder.childEntity if getattr(e, "resourcePool", None))
        wanted = os.environ.get("BENCH_DATASTORE")
        self.ds_name = next(d.name for d in dc.datastore if wanted in (None, d.name))
        self.folder = dc.vmFolder.CreateFolder(f"bench-props-{os.getpid()}-{next(_folders)}")
        self.shards: list = []  # subfolders of SHARD VMs each; the view below is recursive
        self.count = 0
        self.setup_seconds: dict[int, float] = {}
        self._local = threading.local()
        self._sis = []
        self._lock = threading.Lock()

    def _folder(self, index: int):
        si = getattr(self._local, "si", None)
        if si is None:
            si = self._local.si = self.target.connect()
            with self._lock:
                self._sis.append(si)
        shard = self.shards[index // SHARD]
        return vim.Folder(shard._moId, si._stub), vim.ResourcePool(self.pool._moId, si._stub)

    def _create(self, index: int) -> None:
        folder, pool = self._folder(index)
        spec = vim.vm.ConfigSpec(name=f"props-{index:05d}", guestId="otherLinux64Guest", numCPUs=1, memoryMB=64,
                                 files=vim.vm.FileInfo(vmPathName=f"[{self.ds_name}]"))
        task = folder.CreateVM_Task(config=spec, pool=pool)
        while task.info.state not in ("success", "error"):
            time.sleep(0.002)
        if task.info.state == "error":
            raise task.info.error

    def grow(self, n: int) -> None:
        if self.count >= n:
            return
        began = time.monotonic()
        while len(self.shards) * SHARD < n:
            self.shards.append(self.folder.CreateFolder(f"shard-{len(self.shards)}"))
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(self._create, range(self.count, n)))
        self.count = n
        self.setup_seconds[n] = time.monotonic() - began

    def close(self) -> None:
        from pyVim.connect import Disconnect
        for si in self._sis:
            try:
                Disconnect(si)
            except Exception:  # noqa: BLE001
                pass


@pytest.fixture(scope="module")
def vm_pool(bench_target, bench_si):
    try:
        population = VMPopulation(bench_target, bench_si)
    except (StopIteration, vmodl.fault.MethodNotFound) as err:
        pytest.skip(f"cannot make a folder of VMs on this target: {err!r}")
    yield population
    if bench_target.label == "external":  # the sim goes away with its process; a real vSphere is cleaned up
        from pyVim.task import WaitForTask
        WaitForTask(population.folder.UnregisterAndDestroy_Task())
    population.close()


@pytest.fixture(scope="module", params=LEVELS, ids=lambda n: f"N{n}")
def vm_population(request, vm_pool) -> int:
    if request.param > BIG_N and vm_pool.target.label not in BIG_TARGETS:
        pytest.skip(f"N={request.param} runs on {', '.join(BIG_TARGETS)} only (BENCH_PROPS_BIG_TARGETS)")
    vm_pool.grow(request.param)
    return request.param


def retrieve_all(pc, spec, options) -> int:
    """RetrievePropertiesEx plus ContinueRetrievePropertiesEx until the token runs out: the objects seen."""
    result = pc.RetrievePropertiesEx(specSet=[spec], options=options)
    seen = 0
    while result is not None:
        seen += len(result.objects)
        if not result.token:
            break
        result = pc.ContinueRetrievePropertiesEx(token=result.token)
    return seen


def test_retrieve_properties(benchmark, bench_target, bench_si, vm_pool, vm_population):
    content = bench_si.RetrieveContent()
    view = content.viewManager.CreateContainerView(vm_pool.folder, [vim.VirtualMachine], True)
    PC = vmodl.query.PropertyCollector
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[
            PC.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)])],
        propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=PATHS)])
    options = PC.RetrieveOptions()
    pc = content.propertyCollector
    try:
        assert retrieve_all(pc, spec, options) == vm_population
        benchmark.extra_info.update(kind="sweep", sweep="RetrievePropertiesEx", target=bench_target.label,
                                    transport=bench_target.transport, style="RetrievePropertiesEx",
                                    n=vm_population, ops_per_round=1,
                                    setup_s=round(vm_pool.setup_seconds.get(vm_population, 0.0), 2))
        rounds = ROUNDS if vm_population <= BIG_N else max(3, ROUNDS // 3)
        benchmark.pedantic(retrieve_all, args=(pc, spec, options), rounds=rounds, warmup_rounds=1)
    finally:
        view.DestroyView()
