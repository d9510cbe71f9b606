"""Container lifecycle through the port layer on the embedded sim, with the placeholder tether as the guest:
start, stop (signal, grace, KILL, power off), kill, restart, remove, wait, state, events, handles and conflicts."""
from __future__ import annotations

import threading
import time

import pytest

from vic_ref import errors
from vic_ref.machine import isos
from vic_ref.portlayer.exec import ContainerRunning, NotRunning, State
from vic_ref.portlayer.exec.lifecycle import RenameRefused
from vic_ref.portlayer.names import NameConflict
from vic_ref.portlayer.tests.harness import VchEnv, create_container
from vic_ref.trace import Operation


def actions(portlayer, cid: str) -> list[str]:
    return [e.action for e in portlayer.events.history() if e.actor_id == cid]


def test_create_start_stop_remove(portlayer, image, op):
    cid = create_container(portlayer, op, image, "life")
    info = portlayer.exec.info("life")
    assert info.state is State.CREATED and info.state.docker == "created" and not info.running
    assert info.exit_code == 0 and info.started_ns == 0 and info.created_ns > 0
    assert portlayer.exec.start(op, "life") is True
    info = portlayer.exec.info(cid)
    assert info.state is State.RUNNING and info.running and info.session.started == "true"
    assert info.started_ns > info.created_ns
    assert portlayer.exec.start(op, "life") is False  # running already: Docker's 304
    assert portlayer.exec.stop(op, cid[:8]) is True
    info = portlayer.exec.info(cid)
    assert info.state.docker == "exited" and info.exit_code == 143  # the tether's 128 + SIGTERM
    assert info.finished_ns >= info.started_ns > 0
    assert portlayer.exec.stop(op, cid) is False
    portlayer.exec.remove(op, "life")
    with pytest.raises(errors.NotFound, match="^No such container: life$"):
        portlayer.exec.info("life")
    assert "life" not in portlayer.names
    assert actions(portlayer, cid) == ["create", "start", "kill", "die", "stop", "destroy"]


def test_kill_and_restart(portlayer, image, op):
    cid = create_container(portlayer, op, image, "killme")
    with pytest.raises(NotRunning, match=f"^container {cid} is not running$"):
        portlayer.exec.kill(op, cid)
    portlayer.exec.start(op, cid)
    portlayer.exec.kill(op, cid, "KILL")
    info = portlayer.exec.info(cid)
    assert info.state.docker == "exited" and info.exit_code == 137
    portlayer.exec.restart(op, cid, timeout=5)
    assert portlayer.exec.info(cid).running
    portlayer.exec.kill(op, cid, "SIGTERM")  # not KILL: sent, not waited for
    assert portlayer.exec.wait(op, cid, "not-running", timeout=15).exit_code == 143
    with pytest.raises(errors.InvalidArgument, match="^Invalid signal: SIGNOPE$"):
        portlayer.exec.kill(op, cid, "SIGNOPE")
    portlayer.exec.remove(op, cid)
    # restarting a stopped container only starts it (Docker: no kill/die/stop then)
    assert actions(portlayer, cid) == ["create", "start", "kill", "die", "start", "restart", "kill", "die", "destroy"]


def test_remove_running_needs_force(portlayer, image, op):
    cid = create_container(portlayer, op, image, "busy")
    portlayer.exec.start(op, cid)
    with pytest.raises(ContainerRunning) as info:
        portlayer.exec.remove(op, "busy")
    assert str(info.value) == ('cannot remove container "/busy": container is running: stop the container before '
                               "removing or force remove")
    assert portlayer.exec.info(cid).running
    portlayer.exec.remove(op, "busy", force=True)
    assert "busy" not in portlayer.names
    with pytest.raises(errors.NotFound):
        portlayer.exec.find(cid)


def test_removed_container_leaves_no_files(env, portlayer, image, op):
    cid = create_container(portlayer, op, image, "tidy")
    portlayer.exec.start(op, cid)
    portlayer.exec.stop(op, cid, timeout=2)
    folder = portlayer.exec.inventory.placement.folder(cid)
    from vic_ref.portlayer.exec import vm as vmops
    assert vmops.folder_exists(env.session, op, env.session.datastore, folder)
    portlayer.exec.remove(op, cid)
    assert not vmops.folder_exists(env.session, op, env.session.datastore, folder)


def test_random_names(portlayer, image, op):
    ids = [create_container(portlayer, op, image) for _ in range(3)]
    names = [portlayer.exec.info(cid).name for cid in ids]
    assert len(set(names)) == 3 and all("_" in n for n in names)
    for cid, name in zip(ids, names):
        assert portlayer.exec.info(name).id == cid
        assert portlayer.exec.info(cid).display_name == f"{name}-{cid[:12]}"
        portlayer.exec.remove(op, cid)


def test_lookup_rules(portlayer, image, op):
    a = create_container(portlayer, op, image, "lookup")
    assert portlayer.exec.find(a).id == a and portlayer.exec.find("lookup").id == a
    assert portlayer.exec.find("/lookup").id == a and portlayer.exec.find(a[:5]).id == a
    with pytest.raises(errors.NotFound, match="^No such container: nosuch$"):
        portlayer.exec.find("nosuch")
    portlayer.exec.remove(op, a)


def test_wait_conditions(portlayer, image, op):
    cid = create_container(portlayer, op, image, "waiter")
    # not running: at once
    assert portlayer.exec.wait(op, cid, "not-running", timeout=5).exit_code == 0
    results: dict[str, object] = {}

    def wait(condition):
        try:
            results[condition] = portlayer.exec.wait(op, cid, condition, timeout=60)
        except Exception as err:  # noqa: BLE001
            results[condition] = err

    threads = [threading.Thread(target=wait, args=(c,)) for c in ("next-exit", "removed")]
    for t in threads:
        t.start()
    time.sleep(0.3)
    assert not results  # nothing exited yet
    portlayer.exec.start(op, cid)
    portlayer.exec.stop(op, cid)
    threads[0].join(15)
    assert results["next-exit"].exit_code == 143
    assert "removed" not in results
    portlayer.exec.remove(op, cid)
    threads[1].join(15)
    assert results["removed"].exit_code == 143
    with pytest.raises(errors.InvalidArgument, match='invalid condition: "soon"'):
        portlayer.exec.wait(op, "waiter", "soon")


def test_wait_is_cancellable(portlayer, image, op):
    cid = create_container(portlayer, op, image, "cancel")
    portlayer.exec.start(op, cid)
    waiting = op.child("wait")
    threading.Timer(0.3, waiting.cancel).start()
    with pytest.raises(errors.Cancelled):
        portlayer.exec.wait(waiting, cid, "next-exit")
    portlayer.exec.remove(op, cid, force=True)


def test_stale_handle_conflicts_and_update_retries(portlayer, image, op):
    cid = create_container(portlayer, op, image, "stale")
    first = portlayer.exec.get_handle(op, cid)
    second = portlayer.exec.get_handle(op, cid)
    first.config.annotations["x"] = "1"
    portlayer.exec.commit(op, first)
    second.config.annotations["y"] = "2"
    with pytest.raises(errors.ConcurrentModification):
        portlayer.exec.commit(op, second)
    calls = []

    def mutate(handle):
        calls.append(handle.snapshot.change_version)
        if len(calls) == 1:  # someone else changes the VM between our read and our commit
            other = portlayer.exec.get_handle(op, cid)
            other.config.annotations["z"] = "3"
            portlayer.exec.commit(op, other)
        handle.config.annotations["y"] = "2"

    portlayer.exec.update(op, cid, mutate)
    assert len(calls) == 2
    fresh = portlayer.exec.get_handle(op, cid)
    assert {k: fresh.config.annotations[k] for k in "xyz"} == {"x": "1", "y": "2", "z": "3"}
    portlayer.exec.remove(op, cid)


def test_racing_creates_of_one_name(portlayer, image, op):
    outcomes = []
    barrier = threading.Barrier(5)

    def create():
        barrier.wait()
        try:
            outcomes.append(create_container(portlayer, Operation.new("race"), image, "contested"))
        except NameConflict as err:
            outcomes.append(err)

    threads = [threading.Thread(target=create) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if isinstance(o, str)]
    assert len(winners) == 1 and len(outcomes) == 5
    assert all(o.holder == winners[0] for o in outcomes if isinstance(o, NameConflict))
    assert sum(1 for i in portlayer.exec.list() if i.name == "contested") == 1
    portlayer.exec.remove(op, winners[0])


def test_racing_creates_and_renames_of_one_name(portlayer, image, op):
    """Creates and renames that all want one name: exactly one container gets it, the others keep theirs."""
    others = [create_container(portlayer, op, image, f"racer-{i}") for i in range(3)]
    barrier = threading.Barrier(6)
    outcomes = []

    def create():
        barrier.wait()
        try:
            outcomes.append(("create", create_container(portlayer, Operation.new("race"), image, "prize")))
        except NameConflict as err:
            outcomes.append(("create", err))

    def rename(cid):
        barrier.wait()
        try:
            portlayer.exec.rename(Operation.new("race"), cid, "prize")
            outcomes.append(("rename", cid))
        except errors.Conflict as err:
            outcomes.append(("rename", err))

    threads = [threading.Thread(target=create) for _ in range(3)] + [threading.Thread(target=rename, args=(c,))
                                                                      for c in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for _, o in outcomes if isinstance(o, str)]
    assert len(outcomes) == 6 and len(winners) == 1, outcomes
    holders = [i for i in portlayer.exec.list() if i.name == "prize"]
    assert [h.id for h in holders] == winners
    for i, cid in enumerate(others):
        expected = "prize" if cid == winners[0] else f"racer-{i}"
        assert portlayer.exec.info(cid).name == expected and portlayer.names.holder(expected) == cid
    for cid in {*others, *winners}:
        portlayer.exec.remove(op, cid)


def test_commit_to_an_older_container_writes_no_new_format_keys(portlayer, image, op, env):
    """An older container (data version 3: name in the guest-visible key, no hidden one): a commit sends only what
    its operation changed; a rename rewrites the guest-visible name key and adds no hidden one."""
    from vic_ref.vsphere import option_values, vim
    cid = create_container(portlayer, op, image, "elder")
    vm = portlayer.exec.find(cid).snapshot.vm
    env.session.run_task(op, vm.ReconfigVM_Task, spec=vim.vm.ConfigSpec(extraConfig=option_values([
        ("guestinfo.vice./common/name", "elder"), ("common/name", ""),
        ("guestinfo.vice./version/PluginVersion", "3")])))
    handle = portlayer.exec.get_handle(op, cid)
    assert handle.snapshot.name == "elder" and handle.snapshot.data_version == 3
    handle.config.annotations["x"] = "1"
    assert handle.extra_config_changes() == [("annotations|x", "1")] or \
        [k for k, _ in handle.extra_config_changes()] == ["annotations", "annotations|x"]
    handle = portlayer.exec.get_handle(op, cid)
    handle.rename("elder2", f"elder2-{cid[:12]}")
    changes = dict(handle.extra_config_changes(powered_on=True))
    assert changes.get("guestinfo.vice./common/name") == "elder2" and "common/name" not in changes
    assert "guestinfo.vice./version/PluginVersion" not in changes
    portlayer.exec.rename(op, "elder", "elder2")
    extra = portlayer.exec.get_handle(op, cid).snapshot.extra
    assert extra["guestinfo.vice./common/name"] == "elder2" and "common/name" not in extra
    assert extra["guestinfo.vice./version/PluginVersion"] == "3"
    assert portlayer.exec.info(cid).name == "elder2" and portlayer.names.holder("elder2") == cid
    portlayer.exec.remove(op, cid)


def test_rename_basic(portlayer, image, op):
    cid = create_container(portlayer, op, image, "before")
    create_container(portlayer, op, image, "taken")
    portlayer.exec.rename(op, "before", "after")
    info = portlayer.exec.info("after")
    assert info.id == cid and info.display_name == f"after-{cid[:12]}" and info.config.name == "after"
    assert "before" not in portlayer.names
    with pytest.raises(errors.Conflict, match='^conflict. The name "taken" is already in use by container '):
        portlayer.exec.rename(op, "after", "taken")
    # VIC answers these with 500 (vic-behaviour.md §1(a)6): not an InvalidArgument (400)
    with pytest.raises(RenameRefused, match="same name"):
        portlayer.exec.rename(op, "after", "after")
    with pytest.raises(RenameRefused, match=r"^invalid container name \(b ad\)"):
        portlayer.exec.rename(op, "after", "b ad")
    with pytest.raises(RenameRefused, match="^neither old nor new names may be empty$"):
        portlayer.exec.rename(op, "nosuch", "")
    assert [e.attributes.get("oldName") for e in portlayer.events.history() if e.action == "rename"][-1] == "/before"
    portlayer.exec.remove(op, cid)
    portlayer.exec.remove(op, "taken")


# -- a tether that ignores SIGTERM: the grace period, then group-kill KILL -------------------------------------------
@pytest.fixture(scope="module")
def stubborn(sim_target):
    env = VchEnv(sim_target.url, sim_target.user, sim_target.password)
    env.session.upload(env.op, env.bootstrap, isos.manifest("vic_ref.portlayer.exec.tests.stubborn_tether"))
    image = env.images.add(env.op, "busybox")
    pl = env.portlayer()
    yield pl, image
    pl.close(env.op)
    env.close()


def test_stop_waits_the_grace_then_kills(stubborn, op):
    pl, image = stubborn
    cid = create_container(pl, op, image, "stubborn")
    pl.exec.start(op, cid)
    began = time.monotonic()
    assert pl.exec.stop(op, cid, timeout=2)
    took = time.monotonic() - began
    assert 1.5 <= took < 10, took  # the grace period of 2 s, then KILL did it
    info = pl.exec.info(cid)
    assert info.state.docker == "exited" and info.exit_code == 137
    pl.exec.remove(op, cid)


# -- no guest at all: start can't be confirmed, stop powers off hard ---------------------------------------------------
@pytest.fixture(scope="module")
def guestless(sim_target):
    env = VchEnv(sim_target.url, sim_target.user, sim_target.password)
    env.session.upload(env.op, env.bootstrap, b"not an ISO the sim boots")
    image = env.images.add(env.op, "busybox")
    pl = env.portlayer()
    pl.exec.start_timeout = 1.0
    yield pl, image
    pl.close(env.op)
    env.close()


def test_without_a_guest(guestless, op):
    pl, image = guestless
    cid = create_container(pl, op, image, "mute")
    with pytest.raises(errors.Timeout, match="unable to wait for process launch status"):
        pl.exec.start(op, cid)
    assert pl.exec.info(cid).power_state == "poweredOn"
    assert pl.exec.stop(op, cid, timeout=1)
    info = pl.exec.info(cid)
    assert info.power_state == "poweredOff" and info.exit_code == 137
    pl.exec.remove(op, cid)


# -- a process that ends at once -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quick(sim_target):
    env = VchEnv(sim_target.url, sim_target.user, sim_target.password)
    env.session.upload(env.op, env.bootstrap, isos.manifest("vic_ref.portlayer.exec.tests.quick_tether"))
    image = env.images.add(env.op, "busybox")
    pl = env.portlayer()
    yield pl, image
    pl.close(env.op)
    env.close()


def test_a_process_that_ends_at_once(quick, op):
    pl, image = quick
    cid = create_container(pl, op, image, "quick", cmd=("true",))
    for _ in range(3):
        waiter: dict = {}

        def wait(waiter=waiter):
            waiter.update(info=pl.exec.wait(op, cid, "next-exit", timeout=30))

        thread = threading.Thread(target=wait)
        thread.start()
        time.sleep(0.1)
        began = time.monotonic()
        assert pl.exec.start(op, cid)
        assert time.monotonic() - began < 10  # no waiting for a running state that never shows
        thread.join(30)
        assert waiter["info"].exit_code == 0 and waiter["info"].state.docker == "exited"
    assert actions(pl, cid) == ["create"] + ["start", "die"] * 3
    pl.exec.remove(op, cid)
