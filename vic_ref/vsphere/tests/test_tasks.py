"""Task waits through a property collector, and retry_on_conflict, against the sim (plus retry unit tests)."""
from __future__ import annotations

import threading
import time

import pytest

from vic_ref import errors
from vic_ref.trace import Operation
from vic_ref.vsphere import retry_on_conflict, vim

from .conftest import call_count, create_vm, unique


def test_a_task_result_is_returned(session, op):
    vm = create_vm(session, op)
    assert isinstance(vm, vim.VirtualMachine)
    assert session.retrieve_one(op, vm, ["runtime.powerState"])["runtime.powerState"] == "poweredOff"


def test_a_task_fault_is_raised_as_a_vic_error(session, op):
    vm = create_vm(session, op)
    with pytest.raises(errors.InvalidState) as info:
        session.run_task(op, vm.PowerOffVM_Task)  # already off
    assert info.value.fault_name == "vim.fault.InvalidPowerState"
    name = session.retrieve_one(op, vm, ["name"])["name"]
    with pytest.raises(errors.AlreadyExists):
        create_vm(session, op, name=name)


def test_a_finished_task_is_read_once(sim_target, session, op):
    """A task the server finished before answering (the sim's inline tasks, a fast vCenter) costs one read: no property
    collector is made for its wait."""
    methods = ("RetrievePropertiesEx", "CreatePropertyCollector", "WaitForUpdatesEx")
    vm = create_vm(session, op)
    before = {m: call_count(sim_target, m) for m in methods}
    session.run_task(op, vm.PowerOnVM_Task)
    after = {m: call_count(sim_target, m) for m in methods}
    assert {m: after[m] - before[m] for m in methods} == {"RetrievePropertiesEx": 1, "CreatePropertyCollector": 0,
                                                          "WaitForUpdatesEx": 0}
    with pytest.raises(errors.InvalidState):
        session.run_task(op, vm.PowerOnVM_Task)  # a failed one too: its fault from that read
    assert call_count(sim_target, "CreatePropertyCollector") == before["CreatePropertyCollector"]
    session.run_task(op, vm.PowerOffVM_Task)


def test_the_wait_is_pushed_not_polled(sim_target, session, op, fault_rules):
    """A task that runs for a while costs a handful of calls, not one per poll interval."""
    vm = create_vm(session, op)
    fault_rules(method="PowerOnVM_Task", delay=0.6, delay_task_only=True, count=1)
    before = {m: call_count(sim_target, m) for m in ("WaitForUpdatesEx", "RetrievePropertiesEx", "Fetch")}
    started = time.monotonic()
    session.run_task(op, vm.PowerOnVM_Task)
    assert time.monotonic() - started >= 0.5
    assert session.retrieve_one(op, vm, ["runtime.powerState"])["runtime.powerState"] == "poweredOn"
    after = {m: call_count(sim_target, m) for m in before}
    assert after["WaitForUpdatesEx"] - before["WaitForUpdatesEx"] <= 4
    assert after["Fetch"] == before["Fetch"]  # no task.info polling
    session.run_task(op, vm.PowerOffVM_Task)


def test_a_deadline_stops_the_wait(session, op, fault_rules):
    vm = create_vm(session, op)
    fault_rules(method="PowerOnVM_Task", delay=1.5, delay_task_only=True, count=1)
    task = session.call(op, vm.PowerOnVM_Task)
    started = time.monotonic()
    with pytest.raises(errors.Timeout):
        session.wait_for_task(op, task, timeout=0.3)
    assert time.monotonic() - started < 1.4  # maxWaitSeconds is whole seconds: noticed within one
    session.wait_for_task(op, task)  # the task itself goes on
    session.run_task(op, vm.PowerOffVM_Task)


def test_cancel_stops_the_wait(session, op, fault_rules):
    vm = create_vm(session, op)
    fault_rules(method="PowerOnVM_Task", delay=1.6, delay_task_only=True, count=1)
    task = session.call(op, vm.PowerOnVM_Task)
    waiter = op.child("waiter")
    threading.Timer(0.2, waiter.cancel).start()
    started = time.monotonic()
    with pytest.raises(errors.Cancelled):
        session.wait_for_task(waiter, task)
    assert time.monotonic() - started < 1.5  # noticed within one long poll (MAX_POLL_SECONDS)
    session.wait_for_task(op, task)
    session.run_task(op, vm.PowerOffVM_Task)


def test_a_wait_survives_losing_the_session(sim_target, session, op, fault_rules):
    vm = create_vm(session, op)
    fault_rules(method="PowerOnVM_Task", delay=1.0, delay_task_only=True, count=1)
    task = session.call(op, vm.PowerOnVM_Task)
    logins = session.logins
    threading.Timer(0.3, sim_target.sim.sessions.clear).start()
    session.wait_for_task(op, task, timeout=20)
    assert session.logins == logins + 1
    assert session.retrieve_one(op, vm, ["runtime.powerState"])["runtime.powerState"] == "poweredOn"
    session.run_task(op, vm.PowerOffVM_Task)


def test_retry_on_conflict_with_a_stale_change_version(session, op):
    """ReconfigVM_Task with an old changeVersion is ConcurrentAccess; the retry re-reads and succeeds."""
    vm = create_vm(session, op)
    stale = session.retrieve_one(op, vm, ["config.changeVersion"])["config.changeVersion"]
    session.run_task(op, vm.ReconfigVM_Task, spec=vim.vm.ConfigSpec(annotation="someone else"))
    attempts = []

    def reconfigure(attempt_op: Operation):
        version = stale if not attempts else \
            session.retrieve_one(attempt_op, vm, ["config.changeVersion"])["config.changeVersion"]
        attempts.append(version)
        spec = vim.vm.ConfigSpec(changeVersion=version, extraConfig=[vim.option.OptionValue(key="guestinfo.x",
                                                                                            value="1")])
        return session.run_task(attempt_op, vm.ReconfigVM_Task, spec=spec)

    with pytest.raises(errors.ConcurrentModification):
        reconfigure(op)
    attempts.clear()
    session.retry_on_conflict(op, reconfigure, base_delay=0.001)
    assert len(attempts) == 2
    extra = {o.key: o.value for o in session.retrieve_one(op, vm, ["config.extraConfig"])["config.extraConfig"]}
    assert extra["guestinfo.x"] == "1"


def test_retry_on_injected_concurrent_access(sim_target, session, op, fault_rules):
    vm = create_vm(session, op, name=unique("conflict"))
    fault_rules(method="ReconfigVM_Task", fault="vim.fault.ConcurrentAccess", count=2)
    calls = []

    def rename(attempt_op):
        calls.append(attempt_op)
        return session.run_task(attempt_op, vm.ReconfigVM_Task, spec=vim.vm.ConfigSpec(annotation="x"))

    retry_on_conflict(op, rename, base_delay=0.001)
    assert len(calls) == 3


# -- retry_on_conflict without a sim ----------------------------------------------------------------------------
def _flaky(failures):
    calls = []

    def fn(op):
        calls.append(op)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return "done"

    return fn, calls


@pytest.mark.parametrize("failure", [
    errors.ConcurrentModification("stale"), errors.Busy("busy"),
    vim.fault.ConcurrentAccess(msg="raw fault"), vim.fault.TaskInProgress(msg="raw busy"),
])
def test_retry_retries_conflicts(failure):
    fn, calls = _flaky([failure, failure])
    assert retry_on_conflict(Operation.new("t"), fn, base_delay=0.001) == "done"
    assert len(calls) == 3


def test_retry_is_bounded_and_raises_the_vic_error():
    fn, calls = _flaky([vim.fault.ConcurrentAccess(msg="again")] * 10)
    with pytest.raises(errors.ConcurrentModification) as info:
        retry_on_conflict(Operation.new("t"), fn, attempts=4, base_delay=0.001)
    assert len(calls) == 4 and info.value.fault_name == "vim.fault.ConcurrentAccess"


def test_retry_does_not_retry_other_errors():
    fn, calls = _flaky([vim.fault.DuplicateName(msg="taken")])
    with pytest.raises(errors.AlreadyExists):
        retry_on_conflict(Operation.new("t"), fn)
    fn, calls = _flaky([ValueError("a bug")])
    with pytest.raises(ValueError):
        retry_on_conflict(Operation.new("t"), fn)
    assert len(calls) == 1


def test_retry_backoff_stops_when_the_operation_is_cancelled():
    op = Operation.new("t")
    fn, calls = _flaky([errors.Busy("busy")] * 10)
    threading.Timer(0.1, op.cancel).start()
    with pytest.raises(errors.Cancelled):
        retry_on_conflict(op, fn, attempts=10, base_delay=0.5, max_delay=5)
