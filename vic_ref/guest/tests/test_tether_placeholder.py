"""The placeholder tether (`python -m vic_ref.tether`, booted from the bootstrap ISO) through vSphere, as the port
layer will drive it: logins as the container ID, `reload`, `kill SIG`, `group-kill SIG`, refusals."""
from __future__ import annotations

import pytest

from vic_ref import errors
from vic_ref.config import key_for
from vic_ref.tether import parse_signal

from .conftest import wait_for

TETHER = "vic_ref.tether.placeholder"  # the containers here have no root disk
pytestmark = pytest.mark.timeout(120)


def container_id(n: int) -> str:
    return f"{n:02d}" * 32


def boot(guest_vms, cid):
    vm = guest_vms.create(TETHER, extra={"guestinfo.vice./common/id": cid, "common/name": "web"})
    started = key_for("sessions", cid, "started")
    wait_for(lambda: guest_vms.extra_config(vm).get(started) == "true", what="the tether to start its session")
    wait_for(lambda: guest_vms.props(vm, "guest.guestOperationsReady"), what="guestOperationsReady")
    return vm


def test_parse_signal():
    assert parse_signal("TERM") == parse_signal("SIGTERM") == parse_signal("sigterm") == parse_signal("15") == 15
    assert parse_signal("KILL") == 9
    for bad in ("NOPE", "0", "999", ""):
        with pytest.raises(ValueError):
            parse_signal(bad)


def test_tether_starts_the_primary_session_and_answers_operations(guest_vms, session, op):
    cid = container_id(1)
    vm = boot(guest_vms, cid)
    extra = guest_vms.extra_config(vm)
    assert int(extra[key_for("sessions", cid, "detail", "start_time")]) > 0
    assert session.start_program(op, vm, "reload", "", username=cid) > 0
    with pytest.raises(errors.VicError) as info:
        session.start_program(op, vm, "frobnicate", "x", username=cid)
    assert 'unknown command "frobnicate"' in str(info.value)
    with pytest.raises(errors.VicError) as info:
        session.start_program(op, vm, "kill", "NOSUCHSIG", username=cid)
    assert "unknown signal" in str(info.value)
    with pytest.raises(errors.AuthenticationFailed):
        session.start_program(op, vm, "reload", "", username=container_id(9))
    assert guest_vms.props(vm, "runtime.powerState") == "poweredOn"
    session.run_task(op, vm.PowerOffVM_Task)


@pytest.mark.parametrize("program,signal,status", [("kill", "TERM", 143), ("group-kill", "KILL", 137),
                                                    ("kill", "2", 130)])
def test_kill_records_the_exit_status_and_powers_off(guest_vms, session, op, program, signal, status):
    cid = container_id(status % 100)
    vm = boot(guest_vms, cid)
    session.start_program(op, vm, program, signal, username=cid)
    wait_for(lambda: guest_vms.props(vm, "runtime.powerState") == "poweredOff", what="the VM to power off")
    assert guest_vms.extra_config(vm)[key_for("sessions", cid, "exit_status")] == str(status)
