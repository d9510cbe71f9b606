"""Docker API hot paths through docker-py (the low-level APIClient: one call = one Docker API request), against the
embedded VCH or DOCKER_HOST: create, start, rename, stop, rm, ps -a, volume create, and `run --rm echo` (create,
start, wait, logs through the tether's output, remove).

Each op is timed alone; whatever puts a container into the state the op needs (created, running) is done in the
benchmark's untimed setup. Containers and volumes made here are removed at the end of the module, so the sweeps that
follow start from an empty VCH.
"""
from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import env_int, vim25_calls_of_one

ROUNDS = env_int("BENCH_DOCKER_ROUNDS", 30)
SLOW_ROUNDS = env_int("BENCH_DOCKER_SLOW_ROUNDS", max(3, ROUNDS // 3))  # start, stop, run: ~0.5-1 s each
LABELS = {"vic-ref-bench": "api"}
LONG_RUNNING = ["sleep", "3600"]
_names = itertools.count()


def _name(prefix: str) -> str:
    return f"bench-{prefix}-{os.getpid()}-{next(_names)}"


@pytest.fixture(scope="module")
def made(docker_target, docker_api):
    """Everything this module creates, removed (in parallel) at the end."""
    record = {"containers": [], "volumes": []}
    yield record
    def rm(cid):
        try:
            docker_api.remove_container(cid, force=True)
        except Exception:  # noqa: BLE001 - already gone (rm, run --rm)
            pass
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(rm, record["containers"]))
    for name in record["volumes"]:
        try:
            docker_api.remove_volume(name)
        except Exception:  # noqa: BLE001
            pass


def _info(benchmark, docker_target, op: str, **extra):
    benchmark.extra_info.update(kind="docker", target=docker_target.label, style=op, ops_per_round=1, **extra)


def _bench(benchmark, docker_target, fn, *, setup=None, rounds: int, warmup: int = 0):
    """Time `fn` (after the untimed `setup`, per round), then count the vim25 calls of one more run of it."""
    benchmark.pedantic(fn, setup=setup, rounds=rounds, warmup_rounds=warmup)
    calls = vim25_calls_of_one(docker_target, fn, setup)
    if calls is not None:
        benchmark.extra_info["vim25_calls"] = calls


def _create(docker_api, docker_target, made, prefix: str, command=None) -> str:
    cid = docker_api.create_container(docker_target.image, name=_name(prefix), command=command,
                                      labels=LABELS)["Id"]
    made["containers"].append(cid)
    return cid


def test_create(benchmark, docker_target, docker_api, made):
    """POST /containers/create of busybox (a name, default command): one container VM made and named."""
    def create():
        made["containers"].append(docker_api.create_container(docker_target.image, name=_name("create"),
                                                              labels=LABELS)["Id"])
    create()  # warm-up
    _info(benchmark, docker_target, "create")
    _bench(benchmark, docker_target, create, rounds=ROUNDS, warmup=1)


def test_start(benchmark, docker_target, docker_api, made):
    """POST /containers/{id}/start of a created container running `sleep 3600`: power on, the tether starts it."""
    def setup():
        return (_create(docker_api, docker_target, made, "start", LONG_RUNNING),), {}
    _info(benchmark, docker_target, "start")
    _bench(benchmark, docker_target, docker_api.start, setup=setup, rounds=SLOW_ROUNDS)


def test_rename(benchmark, docker_target, docker_api, made):
    """POST /containers/{id}/rename of a created container, back and forth between two names."""
    cid = _create(docker_api, docker_target, made, "rename")
    names = itertools.cycle([_name("renamed"), _name("rename")])

    def setup():
        return (cid, next(names)), {}
    _info(benchmark, docker_target, "rename")
    _bench(benchmark, docker_target, docker_api.rename, setup=setup, rounds=ROUNDS, warmup=1)


def test_stop(benchmark, docker_target, docker_api, made):
    """POST /containers/{id}/stop (t=10, docker's default) of a running `sleep 3600`."""
    def setup():
        cid = _create(docker_api, docker_target, made, "stop", LONG_RUNNING)
        docker_api.start(cid)
        return (cid,), {"timeout": 10}
    _info(benchmark, docker_target, "stop")
    _bench(benchmark, docker_target, docker_api.stop, setup=setup, rounds=SLOW_ROUNDS)


def test_rm(benchmark, docker_target, docker_api, made):
    """DELETE /containers/{id} of a created (never started) container: the VM destroyed."""
    def setup():
        return (_create(docker_api, docker_target, made, "rm"),), {}
    _info(benchmark, docker_target, "rm")
    _bench(benchmark, docker_target, docker_api.remove_container, setup=setup, rounds=ROUNDS)


def test_ps_all(benchmark, docker_target, docker_api, made):
    """GET /containers/json?all=1 with the few containers this module left (the sweeps do N = 10..1,000)."""
    n = len(docker_api.containers(all=True))
    _info(benchmark, docker_target, "ps -a", n=n)
    _bench(benchmark, docker_target, lambda: docker_api.containers(all=True), rounds=ROUNDS, warmup=1)


def test_volume_create(benchmark, docker_target, docker_api, made):
    """POST /volumes/create in the default volume store (an ext4 disk image made on the datastore)."""
    def setup():
        name = _name("vol")
        made["volumes"].append(name)
        return (name,), {}
    _info(benchmark, docker_target, "volume create")
    _bench(benchmark, docker_target, docker_api.create_volume, setup=setup, rounds=max(5, ROUNDS // 2))


def test_run_rm_echo(benchmark, docker_target, made):
    """docker-py `containers.run(image, ["echo", ...], remove=True)`: create, start, wait, logs (the tether's output),
    remove: the whole `docker run --rm busybox echo` round trip."""
    client = docker_target.client()
    try:
        def run():
            out = client.containers.run(docker_target.image, ["echo", "bench"], remove=True,
                                        name=_name("run"), labels=LABELS)
            assert out == b"bench\n", out
        _info(benchmark, docker_target, "run --rm echo")
        _bench(benchmark, docker_target, run, rounds=SLOW_ROUNDS, warmup=1)
    finally:
        client.close()
