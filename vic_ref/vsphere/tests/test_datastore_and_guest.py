"""Datastore paths, file transfer over /folder, and guest operations on a VM booted with the sim's example guest."""
from __future__ import annotations

import io
import json
import time

import pytest

from vic_ref import errors
from vic_ref.vsphere import DatastorePath, vim

from .conftest import create_vm, unique


# -- paths -------------------------------------------------------------------------------------------------------
def test_datastore_path_parsing_and_joining():
    path = DatastorePath.parse("[LocalDS_0] abc/abc.vmx")
    assert (path.datastore, path.path, path.name) == ("LocalDS_0", "abc/abc.vmx", "abc.vmx")
    assert str(path.parent) == "[LocalDS_0] abc"
    assert str(path.parent.parent) == "[LocalDS_0]"
    assert str(DatastorePath("ds").join("a/", "/b", "", "c.vmdk")) == "[ds] a/b/c.vmdk"
    assert DatastorePath.parse("[my ds]   /x") == DatastorePath("my ds", "x")
    assert DatastorePath.of(path) is path
    for bad in ("no brackets", "[] x", "[ds x"):
        with pytest.raises(errors.InvalidArgument):
            DatastorePath.parse(bad)


# -- transfers ---------------------------------------------------------------------------------------------------
def test_upload_and_download_round_trip(session, op, tmp_path):
    folder = unique("files")
    session.call(op, session.content.fileManager.MakeDirectory, f"[LocalDS_0] {folder}", session.datacenter, True)
    path = DatastorePath("LocalDS_0", f"{folder}/blob.bin")
    data = bytes(range(256)) * 5000  # ~1.2 MB: more than one chunk
    session.upload(op, path, data)
    assert session.download(op, path) == data
    # streamed both ways, from and to files
    source = tmp_path / "src.bin"
    source.write_bytes(data[::-1])
    session.upload(op, str(path), source)
    out = io.BytesIO()
    assert session.download(op, path, out) == len(data)
    assert out.getvalue() == data[::-1]
    session.download(op, path, tmp_path / "copy.bin")
    assert (tmp_path / "copy.bin").read_bytes() == data[::-1]


def test_unseekable_upload_is_sent_chunked(session, op):
    class Pipe(io.RawIOBase):
        def __init__(self, blocks):
            self.blocks = list(blocks)

        def readable(self):
            return True

        def readinto(self, buffer):
            if not self.blocks:
                return 0
            block = self.blocks.pop(0)
            buffer[:len(block)] = block
            return len(block)

    folder = unique("pipe")
    session.call(op, session.content.fileManager.MakeDirectory, f"[LocalDS_0] {folder}", session.datacenter, True)
    path = f"[LocalDS_0] {folder}/piped.txt"
    session.upload(op, path, io.BufferedReader(Pipe([b"hello ", b"chunked ", b"world"])))
    assert session.download(op, path) == b"hello chunked world"


def test_download_of_a_missing_file_is_not_found(session, op):
    with pytest.raises(errors.NotFound):
        session.download(op, "[LocalDS_0] no-such-dir/none.txt")


def test_transfers_log_in_again_after_a_lost_session(sim_target, session, op):
    folder = unique("relog")
    session.call(op, session.content.fileManager.MakeDirectory, f"[LocalDS_0] {folder}", session.datacenter, True)
    path = f"[LocalDS_0] {folder}/f.txt"
    logins = session.logins
    sim_target.sim.end_all_sessions()
    session.upload(op, path, b"after restart")
    sim_target.sim.end_all_sessions()
    assert session.download(op, path) == b"after restart"
    assert session.logins == logins + 2


# -- guest operations --------------------------------------------------------------------------------------------
GUEST_USER = "6ab1f2a0c3d4"  # the tether accepts the container ID; the example guest accepts --user


def _manifest() -> bytes:
    # the sim boots `python -m <module> <args>` from an "ISO" holding this manifest (vsphere_sim/guests.py)
    return json.dumps({"vsphere_sim_guest": {"module": "vsphere_sim.example_guest",
                                             "args": ["--user", GUEST_USER]}}).encode()


def _extra(session, op, vm) -> dict:
    return {o.key: o.value for o in session.retrieve_one(op, vm, ["config.extraConfig"]).get(
        "config.extraConfig", [])}


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def guest_vm(session):
    from vic_ref.trace import Operation
    op = Operation.new("guest vm")
    iso = f"[LocalDS_0] {unique('iso')}/guest.iso"
    session.call(op, session.content.fileManager.MakeDirectory, str(DatastorePath.parse(iso).parent),
                 session.datacenter, True)
    session.upload(op, iso, _manifest())
    cdrom = vim.vm.device.VirtualDeviceSpec(operation="add", device=vim.vm.device.VirtualCdrom(
        key=-3000, controllerKey=200, unitNumber=0,
        backing=vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName=iso)))
    vm = create_vm(session, op, devices=[cdrom])
    session.run_task(op, vm.PowerOnVM_Task)
    if not _wait_for(lambda: _extra(session, op, vm).get("guestinfo.example.booted") == "true"):
        pytest.fail("the example guest did not boot")
    yield vm
    try:
        session.run_task(op, vm.PowerOffVM_Task)
    except errors.InvalidState:
        pass


def test_start_program_reaches_the_guest(session, op, guest_vm):
    pid = session.start_program(op, guest_vm, "reload", username=GUEST_USER)
    assert isinstance(pid, int)
    assert _wait_for(lambda: _extra(session, op, guest_vm).get("guestinfo.example.reloads") == "1")


def test_guest_login_is_checked(session, op, guest_vm):
    with pytest.raises(errors.AuthenticationFailed) as info:
        session.start_program(op, guest_vm, "reload", username="someone-else")
    assert info.value.fault_name == "vim.fault.InvalidGuestLogin"


def test_guest_operations_need_a_running_guest(session, op):
    vm = create_vm(session, op)
    with pytest.raises((errors.Unavailable, errors.InvalidState)):
        session.start_program(op, vm, "reload", username=GUEST_USER)
