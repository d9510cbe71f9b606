"""Scaling sweeps on the Docker side, N = 10, 100, 1,000 containers (BENCH_SWEEP_N): `docker ps -a`, rename of one
container among N, and VCH start (appliance power-off, then power-on until `docker ps -a` lists all N).

The population grows in place: the N=100 point reuses the 10 containers of N=10 and creates 90 more, and so on,
through docker-py creates in a small thread pool (created, never started: ps, rename and the VCH's cache rebuild
don't need them running), with `--net none` (BENCH_SWEEP_NETWORK=bridge puts them on the default bridge).
pytest runs every benchmark of one N before the next N (the module-scoped `population` fixture is parametrized),
and the time spent growing the population is recorded with each point.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import env_int, sweep_levels, vim25_calls_of_one

LEVELS = sweep_levels("BENCH_SWEEP_N", "10,100,1000")
ROUNDS = env_int("BENCH_SWEEP_ROUNDS", 15)
VCH_ROUNDS = env_int("BENCH_VCH_ROUNDS", 3)
THREADS = env_int("BENCH_SETUP_THREADS", 4)
LABELS = {"vic-ref-bench": "sweep"}
# `--net none` keeps the sweeps about the container count alone (the default bridge, a /18, would hold them too:
# BENCH_SWEEP_NETWORK=bridge measures that).
NETWORK = os.environ.get("BENCH_SWEEP_NETWORK", "none")


class Population:
    """Containers created for the sweeps; grown, never shrunk; removed at the end of the session."""

    def __init__(self, target):
        self.target = target
        self.ids: list[str] = []
        self.setup_seconds: dict[int, float] = {}
        self._local = threading.local()
        self._clients = []
        self._lock = threading.Lock()

    def _api(self):
        api = getattr(self._local, "api", None)
        if api is None:
            client = self.target.client()
            with self._lock:
                self._clients.append(client)
            api = self._local.api = client.api
        return api

    def _create(self, index: int) -> str:
        api = self._api()
        host_config = api.create_host_config(network_mode=NETWORK) if NETWORK else None
        return api.create_container(self.target.image, name=f"sweep-{os.getpid()}-{index:05d}", labels=LABELS,
                                    host_config=host_config)["Id"]

    def grow(self, n: int) -> None:
        have = len(self.ids)
        if have >= n:
            return
        began = time.monotonic()
        with ThreadPoolExecutor(THREADS) as pool:
            self.ids += list(pool.map(self._create, range(have, n)))
        self.setup_seconds[n] = time.monotonic() - began

    def remove_all(self) -> None:
        def rm(cid):
            try:
                self._api().remove_container(cid, force=True)
            except Exception:  # noqa: BLE001
                pass
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(rm, self.ids))
        for client in self._clients:
            client.close()


@pytest.fixture(scope="module")
def sweep_pool(docker_target):
    pool = Population(docker_target)
    yield pool
    if docker_target.vch is None:  # an embedded VCH goes away with its sim; an external one is cleaned up
        pool.remove_all()
    docker_target.close()


@pytest.fixture(scope="module", params=LEVELS, ids=lambda n: f"N{n}")
def population(request, sweep_pool, docker_api) -> int:
    _settle(docker_api)  # after a VCH start, pooled connections are stale
    sweep_pool.grow(request.param)
    return request.param


def _settle(api, tries: int = 50) -> None:
    for _ in range(tries):
        try:
            api.ping()
            return
        except Exception:  # noqa: BLE001
            time.sleep(0.1)
    api.ping()


def _info(benchmark, docker_target, sweep_pool, sweep: str, n: int, shown: int):
    benchmark.extra_info.update(kind="sweep", sweep=sweep, target=docker_target.label, style=sweep, n=n,
                                containers=shown, ops_per_round=1,
                                setup_s=round(sweep_pool.setup_seconds.get(n, 0.0), 2))


def test_sweep_ps_all(benchmark, docker_target, docker_api, sweep_pool, population):
    """`docker ps -a` (GET /containers/json?all=1) with N containers."""
    shown = len(docker_api.containers(all=True))
    assert shown >= population
    _info(benchmark, docker_target, sweep_pool, "docker ps -a", population, shown)
    benchmark.pedantic(docker_api.containers, kwargs={"all": True}, rounds=ROUNDS, warmup_rounds=1)
    benchmark.extra_info["vim25_calls"] = vim25_calls_of_one(docker_target, lambda: docker_api.containers(all=True))


def test_sweep_rename(benchmark, docker_target, docker_api, sweep_pool, population):
    """`docker rename` of one container among N, back and forth between two names."""
    cid = sweep_pool.ids[population // 2]
    names = [f"sweep-renamed-{os.getpid()}-{population}", docker_api.inspect_container(cid)["Name"].lstrip("/")]
    state = {"i": 0}

    def setup():
        state["i"] += 1
        return (cid, names[(state["i"] + 1) % 2]), {}  # names[0] first: the current name is names[1]
    _info(benchmark, docker_target, sweep_pool, "docker rename", population, len(sweep_pool.ids))
    benchmark.pedantic(docker_api.rename, setup=setup, rounds=ROUNDS, warmup_rounds=0)
    benchmark.extra_info["vim25_calls"] = vim25_calls_of_one(docker_target, docker_api.rename, setup)
    if state["i"] % 2:  # left at names[0]: back to the original
        docker_api.rename(cid, names[1])


# -- VCH start: power the appliance off, then on, and wait for ps -a to list every container ----------------------
@pytest.fixture(scope="module")
def appliance(docker_target):
    if docker_target.vsphere is None or not docker_target.appliance:
        pytest.skip("VCH start needs the appliance's vSphere: set VSPHERE_URL/USER/PASSWORD and BENCH_VCH_NAME "
                    "with DOCKER_HOST")
    from pyVim.connect import Disconnect
    from pyVmomi import vim
    si = docker_target.vsphere.connect()
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        found = [vm for vm in view.view if vm.name == docker_target.appliance]
    finally:
        view.DestroyView()
    if len(found) != 1:
        pytest.skip(f"no single appliance VM named {docker_target.appliance!r}")
    yield found[0]
    try:
        Disconnect(si)
    except Exception:  # noqa: BLE001
        pass


def appliance_pid(vch) -> int | None:
    """The embedded appliance's guest process (a descendant of `vic-ref up` running vic_ref.appliance)."""
    todo = [vch.process.pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            for child in children:
                try:
                    if b"vic_ref.appliance" in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0"):
                        return child
                except OSError:
                    continue
                todo.append(child)
    return None


# the appliance's boot as its log tells it (vic_ref/appliance.py, the port layer's start-up lines)
_PHASES = [("process start + login", "connected to "), ("image and volume stores", "volume stores "),
           ("container cache rebuild", "exec: "), ("networks, listeners", "serves the Docker API")]


def boot_phases(guest_log: Path, t0: float, done: float) -> dict[str, float] | None:
    """Seconds per boot phase of the last boot in the appliance's log: from power-on (t0) to each marker line,
    then to `done` (the ps -a that listed everyone)."""
    import datetime
    try:
        lines = guest_log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    start = max((i for i, line in enumerate(lines) if _PHASES[0][1] in line), default=None)
    if start is None:
        return None
    out, last = {}, t0
    for name, marker in _PHASES:
        hit = next((line for line in lines[start:] if marker in line), None)
        if hit is None:
            return None
        try:
            at = datetime.datetime.strptime(hit[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        except ValueError:
            return None
        out[name] = at - last
        last = at
    out["first full docker ps -a"] = done - last
    return out


def _wait_task(task, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while task.info.state not in ("success", "error"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {task} still {task.info.state}")
        time.sleep(0.02)
    if task.info.state == "error":
        raise task.info.error


def test_sweep_vch_start(benchmark, docker_target, sweep_pool, population, appliance):
    """VCH start with N containers: from PowerOnVM_Task of the powered-off appliance until the Docker API answers
    and `docker ps -a` lists all N (the appliance boots, the port layer rebuilds its container cache from vSphere)."""
    expected = len(sweep_pool.ids)

    stops = []

    def power_off():
        """Untimed: power off, and (embedded) wait until the old appliance process is gone, since a PowerOnVM_Task
        issued while it is still in its SIGTERM grace waits for it (the time to stop is recorded on its own)."""
        pid = appliance_pid(docker_target.vch) if docker_target.vch is not None else None
        began = time.monotonic()
        if appliance.runtime.powerState != "poweredOff":
            _wait_task(appliance.PowerOffVM_Task())
        while pid is not None and Path(f"/proc/{pid}").exists() and time.monotonic() - began < 60:
            time.sleep(0.01)
        stops.append(time.monotonic() - began)
        return (), {}

    phases = []

    def start():
        t0 = time.time()
        _wait_task(appliance.PowerOnVM_Task())
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            client = None
            try:  # a fresh client each time: the client's version probe is a request too
                client = docker_target.client(timeout=60)
                if len(client.api.containers(all=True)) >= expected:
                    if docker_target.vch is not None:
                        phases.append(boot_phases(docker_target.vch.guest_log, t0, time.time()))
                    return
            except Exception:  # noqa: BLE001 - not answering yet
                pass
            finally:
                if client is not None:
                    client.close()
            time.sleep(0.05)
        raise TimeoutError(f"the VCH did not list {expected} containers within 240 s")

    _info(benchmark, docker_target, sweep_pool, "VCH start", population, expected)
    try:
        benchmark.pedantic(start, setup=power_off, rounds=VCH_ROUNDS)
        benchmark.extra_info["vim25_calls"] = vim25_calls_of_one(docker_target, start, power_off)
        benchmark.extra_info.update(stop_s=[round(x, 3) for x in stops])
        if phases and all(phases):
            benchmark.extra_info["boot_phases_s"] = {
                k: round(sorted(p[k] for p in phases)[len(phases) // 2], 3) for k in phases[0]}
    finally:
        if appliance.runtime.powerState != "poweredOn":
            _wait_task(appliance.PowerOnVM_Task())
