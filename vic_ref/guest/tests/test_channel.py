"""vic_ref.guest against the sim's guest channel: guestinfo scopes, disks, guest operations, reports, power off."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from vic_ref import errors
from vic_ref.guest import AsyncGuestChannel, ChannelClosed, Disk, GuestChannel, GuestChannelError, ReadOnlyKey, answer
from vic_ref.trace import Operation
from vic_ref.vsphere import vim

from .conftest import DATASTORE, VD, wait_for

IDLE = "vic_ref.guest.tests.idle_guest"
CID = "c0ffee" * 10 + "abcd"
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def booted(guest_vms):
    """A running VM and the test's channel to it, as its guest."""
    vm = guest_vms.create(IDLE, extra={"guestinfo.vice./common/id": CID, "common/name": "hidden-name",
                                       "guestinfo.vice..sessions|x.status": "0", "guestinfo.plain": "hello"})
    powered_off = threading.Event()
    channel = GuestChannel.from_env(guest_vms.guest_env(vm), on_power_off=powered_off.set)
    yield vm, channel
    channel.close()


def test_from_env_needs_a_guest_environment():
    with pytest.raises(GuestChannelError) as info:
        GuestChannel.from_env({})
    assert info.value.code == "not_a_guest"
    assert isinstance(info.value, errors.VicError)


def test_hello_names_the_vm(booted):
    vm, channel = booted
    assert channel.info["vm"] == vm._moId
    assert channel.vm_name and channel.vm_name.startswith("g-")


def test_guestinfo_scopes(booted, guest_vms):
    vm, channel = booted
    assert channel.get("guestinfo.vice./common/id") == CID
    assert channel.get("common/name") is None  # hidden from the guest
    assert channel.get("guestinfo.missing", "dflt") == "dflt"
    items = channel.items("guestinfo.vice.")
    assert items["guestinfo.vice./common/id"] == CID and "common/name" not in items
    assert "guestinfo.plain" not in items and channel.items()["guestinfo.plain"] == "hello"
    # read-write keys are writable, read-only and hidden ones are not
    channel.set("guestinfo.vice..sessions|x.status", "143")
    with pytest.raises(ReadOnlyKey):
        channel.set("guestinfo.vice./common/id", "forged")
    skipped = channel.update({"guestinfo.vice..sessions|x.started": "true", "guestinfo.vice./common/id": "x",
                              "common/name": "x"})
    assert sorted(skipped) == ["common/name", "guestinfo.vice./common/id"]
    with pytest.raises(ReadOnlyKey):
        channel.update({"guestinfo.a": "1", "guestinfo.vice./b": "2"}, strict=True)
    extra = guest_vms.extra_config(vm)
    assert extra["guestinfo.vice..sessions|x.status"] == "143"
    assert extra["guestinfo.vice..sessions|x.started"] == "true"
    assert extra["guestinfo.vice./common/id"] == CID and extra["common/name"] == "hidden-name"
    assert "guestinfo.a" not in extra


def test_report_shows_in_the_vms_guest_info(booted, guest_vms):
    vm, channel = booted
    channel.report(ip_address="127.0.0.9", host_name="guesthost", full_name="test guest")
    wait_for(lambda: guest_vms.props(vm, "guest.ipAddress") == "127.0.0.9", what="the reported IP")
    assert guest_vms.props(vm, "guest.hostName") == "guesthost"


def test_guest_operations_reach_the_handler(booted, guest_vms, session, op):
    vm, channel = booted
    seen = []

    def handle(gop):
        seen.append((gop.kind, gop.program, gop.arguments, gop.user))
        if gop.program == "reload":
            return 0
        if gop.program == "slow":
            gop.started()
            time.sleep(0.1)
            return 3
        if gop.program == "boom":
            raise RuntimeError("it broke")
        gop.reject(f'unknown command "{gop.program}"')
        return None

    channel.accept_logins([CID])
    channel.serve_operations(handle)
    wait_for(lambda: guest_vms.props(vm, "guest.guestOperationsReady"), what="guestOperationsReady")
    assert session.start_program(op, vm, "reload", "", username=CID) > 0
    assert session.start_program(op, vm, "slow", "a b", username=CID) > 0
    with pytest.raises(errors.VicError) as info:
        session.start_program(op, vm, "frobnicate", "", username=CID)
    assert 'unknown command "frobnicate"' in str(info.value)
    with pytest.raises(errors.VicError) as info:
        session.start_program(op, vm, "boom", "", username=CID)
    assert "it broke" in str(info.value)
    with pytest.raises(errors.AuthenticationFailed):
        session.start_program(op, vm, "reload", "", username="someone-else")
    assert ("start", "slow", "a b", CID) in seen
    # the exit code of the slow one reaches ListProcessesInGuest
    manager = session.content.guestOperationsManager.processManager
    auth = vim.vm.guest.NamePasswordAuthentication(username=CID, password="")

    def slow_exit():
        procs = session.call(op, manager.ListProcessesInGuest, vm, auth)
        return next((p.exitCode for p in procs if p.name == "slow" and p.endTime is not None), None)

    assert wait_for(slow_exit, what="the slow program's exit") == 3


def test_disks_and_waiting_for_a_hot_added_disk(booted, guest_vms, session, op):
    vm, channel = booted
    assert channel.disks() == []
    path = f"[{DATASTORE}] {guest_vms.folder}/hot-{vm._moId}.vmdk"
    backing = VD.VirtualDisk.FlatVer2BackingInfo(fileName=path, diskMode="persistent", thinProvisioned=True)
    add = VD.VirtualDeviceSpec(operation="add", fileOperation="create", device=VD.VirtualDisk(
        key=-1, controllerKey=1000, unitNumber=0, capacityInKB=1024, backing=backing))

    def hot_add():
        time.sleep(0.3)
        session.run_task(Operation.new("hot add"), vm.ReconfigVM_Task, spec=vim.vm.ConfigSpec(deviceChange=[add]))

    adder = threading.Thread(target=hot_add)
    adder.start()
    began = time.monotonic()
    disk = channel.wait_for_disk(file=path, timeout=10)
    adder.join()
    assert 0.2 < time.monotonic() - began < 5
    assert isinstance(disk, Disk) and disk.file == path and disk.capacity_kb == 1024
    assert len(disk.chain) == 1 and disk.chain[-1].file == path
    assert disk.data and disk.data_paths == [disk.data]
    assert channel.disk(file=path) == disk and channel.disk(key=disk.key) == disk
    assert channel.disk(label="no-such-label") is None


def test_waiting_for_a_disk_is_bounded(booted):
    _, channel = booted
    began = time.monotonic()
    with pytest.raises(errors.Timeout) as info:
        channel.wait_for_disk(label="never", timeout=0.3)
    assert time.monotonic() - began < 2
    assert "label='never'" in str(info.value)


def test_async_wrapper(booted):
    _, channel = booted

    async def go():
        achannel = AsyncGuestChannel(channel)
        value = await achannel.get("guestinfo.vice./common/id")
        items = await achannel.items("guestinfo.vice./")
        await achannel.ping()
        return value, items, achannel.info, achannel.closed

    value, items, info, closed = asyncio.run(go())
    assert value == CID and items["guestinfo.vice./common/id"] == CID
    assert info["vm"] and closed is False


def test_async_operations_iterator(guest_vms, session, op):
    vm = guest_vms.create(IDLE, extra={"guestinfo.vice./common/id": CID})
    channel = GuestChannel.from_env(guest_vms.guest_env(vm), on_power_off=lambda: None)

    async def serve(first: asyncio.Future):
        achannel = AsyncGuestChannel(channel)
        await achannel.accept_logins([CID])
        async for gop in achannel.operations():
            await answer(gop, "exited", 0)
            if not first.done():
                first.set_result(gop.program)

    async def go():
        first = asyncio.get_running_loop().create_future()
        server = asyncio.create_task(serve(first))
        await asyncio.to_thread(wait_for, lambda: guest_vms.props(vm, "guest.guestOperationsReady"))
        await asyncio.to_thread(session.start_program, op, vm, "reload", "", username=CID)
        program = await asyncio.wait_for(first, 10)
        channel.close()  # ends the iterator
        await asyncio.wait_for(server, 10)
        return program

    try:
        assert asyncio.run(go()) == "reload"
    finally:
        channel.close()
        session.run_task(op, vm.PowerOffVM_Task)


def test_power_off_from_the_guest_closes_the_channel(guest_vms):
    vm = guest_vms.create(IDLE)
    fired = threading.Event()
    channel = GuestChannel.from_env(guest_vms.guest_env(vm), on_power_off=fired.set)
    channel.power_off()
    assert channel.wait_closed(10) and fired.wait(10)
    wait_for(lambda: guest_vms.props(vm, "runtime.powerState") == "poweredOff", what="power off")
    with pytest.raises(ChannelClosed):
        channel.get("guestinfo.x")


def test_power_off_from_vsphere_fires_on_power_off_once(guest_vms, session, op):
    vm = guest_vms.create(IDLE)
    calls = []
    channel = GuestChannel.from_env(guest_vms.guest_env(vm), on_power_off=lambda: calls.append(1))
    session.run_task(op, vm.PowerOffVM_Task)
    assert channel.wait_closed(10)
    time.sleep(0.1)
    assert calls == [1]


def test_close_does_not_fire_on_power_off(guest_vms, session, op):
    vm = guest_vms.create(IDLE)
    calls = []
    channel = GuestChannel.from_env(guest_vms.guest_env(vm), on_power_off=lambda: calls.append(1))
    channel.close()
    assert channel.closed and calls == []
    assert guest_vms.props(vm, "runtime.powerState") == "poweredOn"
    session.run_task(op, vm.PowerOffVM_Task)
