"""Operations (vic_ref.trace) and the fault → VicError mapping (no sim needed)."""
from __future__ import annotations

import logging
import os
import threading
import time

import pytest

from vic_ref import errors
from vic_ref.trace import Operation
from vic_ref.vsphere import fault_message, is_fault, to_vic_error, vim, vmodl


# -- operations --------------------------------------------------------------------------------------------------
def test_ids_chain_from_the_root():
    root = Operation.new("docker run")
    assert root.id.startswith(f"{os.getpid()}.")
    child = root.child("create")
    grandchild = child.child("commit")
    assert child.id == f"{root.id}.1" and grandchild.id == f"{root.id}.1.1"
    assert root.child("start").id == f"{root.id}.2"
    assert grandchild.parent is child and str(grandchild) == f"op={grandchild.id}"
    assert Operation.new("other").id != root.id


def test_from_id_continues_an_incoming_operation():
    op = Operation.from_id("4242.7", "port layer call")
    assert op.id == "4242.7.1" and op.parent.id == "4242.7"
    assert Operation.from_id(None, "fresh").parent is None


def test_every_log_line_carries_the_op_id(caplog):
    op = Operation.new("logged")
    with caplog.at_level(logging.DEBUG, logger="vic_ref"):
        op.info("hello %s", "world")
        op.logger("vic_ref.portlayer").warning("from a module logger")
    lines = [r for r in caplog.records if "hello" in r.getMessage() or "module logger" in r.getMessage()]
    assert [r.getMessage() for r in lines] == [f"op={op.id}: hello world", f"op={op.id}: from a module logger"]
    assert all(r.op_id == op.id for r in lines)
    assert lines[1].name == "vic_ref.portlayer"


def test_deadlines_are_inherited_and_the_earliest_wins():
    root = Operation.new("r", timeout=0.05)
    child = root.child("c", timeout=10)
    assert child.remaining() <= 0.05
    time.sleep(0.06)
    with pytest.raises(errors.Timeout):
        child.check()
    assert Operation.new("none").remaining() is None


def test_cancel_reaches_children_and_wakes_sleepers():
    root = Operation.new("r")
    child = root.child("c")
    threading.Timer(0.05, root.cancel).start()
    started = time.monotonic()
    with pytest.raises(errors.Cancelled):
        child.sleep(5)
    assert time.monotonic() - started < 1
    assert child.cancelled and not Operation.new("x").cancelled


def test_sleep_stops_at_the_deadline():
    op = Operation.new("r", timeout=0.05)
    with pytest.raises(errors.Timeout):
        op.sleep(5)


# -- faults ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fault, error", [
    (vim.fault.ConcurrentAccess(), errors.ConcurrentModification),
    (vim.fault.TaskInProgress(), errors.Busy),
    (vim.fault.VAppTaskInProgress(), errors.Busy),
    (vim.fault.DuplicateName(), errors.AlreadyExists),
    (vim.fault.FileAlreadyExists(), errors.AlreadyExists),
    (vmodl.fault.ManagedObjectNotFound(), errors.NotFound),
    (vim.fault.FileNotFound(), errors.NotFound),
    (vim.fault.InvalidDatastorePath(), errors.InvalidArgument),
    (vim.fault.InvalidDatastore(), errors.NotFound),
    (vim.fault.InvalidLogin(), errors.AuthenticationFailed),
    (vim.fault.InvalidGuestLogin(), errors.AuthenticationFailed),
    (vim.fault.NotAuthenticated(), errors.PermissionDenied),
    (vim.fault.GuestOperationsUnavailable(), errors.Unavailable),
    (vim.fault.InvalidPowerState(), errors.InvalidState),
    (vmodl.fault.InvalidArgument(), errors.InvalidArgument),
    (vmodl.fault.MethodNotFound(), errors.NotSupported),
    (vim.fault.CannotCreateFile(), errors.VsphereError),
])
def test_fault_mapping(fault, error):
    fault.msg = "vSphere says no"
    mapped = to_vic_error(fault, "doing it", op_id="1.2")
    assert type(mapped) is error
    assert str(mapped) == "doing it: vSphere says no"
    assert mapped.fault is fault and mapped.fault_name == type(fault).__name__ and mapped.op_id == "1.2"
    assert is_fault(mapped, type(fault))


def test_conflicts_are_conflicts():
    for fault in (vim.fault.ConcurrentAccess(), vim.fault.DuplicateName(), vim.fault.TaskInProgress()):
        assert isinstance(to_vic_error(fault), errors.Conflict)


def test_messages_and_other_errors():
    assert fault_message(vim.fault.DuplicateName()) == "vim.fault.DuplicateName"
    localized = vim.fault.CannotCreateFile(faultMessage=[vmodl.LocalizableMessage(key="k", message="no room")])
    assert fault_message(localized) == "no room"
    assert isinstance(to_vic_error(TimeoutError("slow")), errors.Unavailable)
    assert isinstance(to_vic_error(ConnectionResetError()), errors.Unavailable)
    already = errors.NotFound("x")
    assert to_vic_error(already) is already
    assert isinstance(to_vic_error(KeyError("bug")), errors.InternalError)
    assert repr(errors.NotFound("gone", fault=vim.fault.FileNotFound())) == \
        "NotFound('gone', fault=vim.fault.FileNotFound)"
