"""A restarted VCH knows every container: a new port layer (a new session, nothing carried over) rebuilds its cache,
names and states from vSphere; changes made behind its back show up through the watcher."""
from __future__ import annotations

import time

import pytest

from vic_ref import errors
from vic_ref.portlayer.names import NameConflict
from vic_ref.portlayer.tests.harness import VchEnv, create_container
from vic_ref.vsphere import Session


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def first(sim_target, request):
    env = VchEnv(sim_target.url, sim_target.user, sim_target.password)
    image = env.images.add(env.op, "busybox")
    pl = env.portlayer()
    yield env, pl, image
    pl.close(env.op)
    env.close()


def second_portlayer(env):
    """What a restarted appliance builds: a new session, a new port layer, the same VCH config and images."""
    from vic_ref.portlayer import PortLayer
    session = Session.open(env.op, env.target, populate=True)
    pl = PortLayer(env.op, session, env.config, None, storage=env.images)
    pl.start(env.op)
    return pl, session


def test_restart_rebuilds_containers_names_and_states(first, op):
    env, pl, image = first
    created = create_container(pl, op, image, "created1")
    running = create_container(pl, op, image, "running1")
    exited = create_container(pl, op, image, "exited1", cmd=("sh", "-c", "exit 3"), env=["A=1"])
    pl.exec.start(op, running)
    pl.exec.start(op, exited)
    pl.exec.stop(op, exited)
    before = {i.id: (i.name, i.state.docker, i.exit_code, i.display_name, i.created_ns, i.started_ns, i.finished_ns)
              for i in pl.exec.list()}
    pl.close(op)  # the old VCH is gone (its watcher stopped; nothing else of it is used again)

    pl2, session = second_portlayer(env)
    try:
        after = {i.id: (i.name, i.state.docker, i.exit_code, i.display_name, i.created_ns, i.started_ns,
                        i.finished_ns) for i in pl2.exec.list()}
        assert after == before
        assert {v[1] for v in after.values()} == {"created", "running", "exited"}
        assert after[exited][2] == 143
        assert [i.id for i in pl2.exec.list()] == [exited, running, created]  # newest first
        info = pl2.exec.info("exited1")
        assert info.session.cmd.args == ["sh", "-c", "exit 3"] and info.session.cmd.env == ["A=1"]
        # the names are taken again
        with pytest.raises(NameConflict):
            create_container(pl2, op, image, "running1")
        assert pl2.names.snapshot() == {"created1": created, "running1": running, "exited1": exited}
        # and the containers work as before
        assert pl2.exec.stop(op, "running1")
        assert pl2.exec.start(op, "created1")
        for cid in (created, running, exited):
            pl2.exec.remove(op, cid, force=True)
        assert len(pl2.exec) == 0 and len(pl2.names) == 0
    finally:
        pl2.close(op)
        session.close(op)


def test_changes_behind_the_vchs_back(first, op):
    env, pl, image = first
    cid = create_container(pl, op, image, "outside")
    pl.exec.start(op, cid)
    vm = pl.exec.info(cid).snapshot.vm
    # the process exits on its own: the guest powers the VM off
    pl.exec.kill(op, cid, "TERM")
    assert wait_for(lambda: pl.exec.info(cid).state.docker == "exited")
    assert [e.action for e in pl.events.history() if e.actor_id == cid][-1] == "die"
    # someone destroys the VM in vSphere: the container goes, its name is free
    env.session.run_task(op, vm.Destroy_Task)
    assert wait_for(lambda: "outside" not in pl.names)
    with pytest.raises(errors.NotFound):
        pl.exec.find(cid)
    assert [e.action for e in pl.events.history() if e.actor_id == cid][-1] == "destroy"


def test_stop_time_recorded_when_the_tether_did_not(first, op):
    env, pl, image = first
    cid = create_container(pl, op, image, "stoptime")
    pl.exec.start(op, cid)
    pl.exec.kill(op, cid, "TERM")  # the placeholder tether powers off without writing a stop time
    assert wait_for(lambda: pl.exec.info(cid).finished_ns > pl.exec.info(cid).started_ns > 0)
    pl.exec.remove(op, cid)
