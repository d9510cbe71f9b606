"""The guest seam in-process: ISO manifests, booting and stopping guest programs, the guest channel (scopes, disks,
operations), and the guest operations / events that ride on it. A minimal VM stands in for VirtualMachineImpl so these
tests only need the supervisor; the end-to-end path through CreateVM/PowerOn is in conformance/vim25."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from pyVmomi import vim, vmodl

from vsphere_sim import Simulator
from vsphere_sim.guest_channel import ChannelClosed, GuestChannel, GuestChannelError, ReadOnlyKey
from vsphere_sim.guest_vm import guest_visible, guest_writable, make_manifest, parse_manifest
from vsphere_sim.guest_wire import ENV_TOKEN
from vsphere_sim.guests import GuestSupervisor
from vsphere_sim.objects.base import ManagedEntityImpl
from vsphere_sim.objects.event_manager import post_event, vm_event
from vsphere_sim.vmdk import ext4_label

pytestmark = pytest.mark.timeout(60)
DS = "GuestDS"
ISO = f"[{DS}] iso/example.iso"
USER = "0123456789abcdef"


class FakeVM(ManagedEntityImpl):
    """Just what the supervisor needs of a VM: config (extraConfig, devices, files), runtime, power methods."""
    vim_type = vim.VirtualMachine
    persistent = False

    def __init__(self, sim, moid, name, devices, extra=None):
        super().__init__(sim, moid, name, None)
        config = vim.vm.ConfigInfo(
            name=name, uuid="4210aaaa-bbbb-cccc-dddd-eeeeffff0000", files=vim.vm.FileInfo(vmPathName=""),
            hardware=vim.vm.VirtualHardware(device=devices),
            extraConfig=[vim.option.OptionValue(key=k, value=v) for k, v in (extra or {}).items()])
        self.init_props(config=config, runtime=vim.vm.RuntimeInfo(powerState="poweredOff"))
        self.power_offs = 0

    def power_on(self):
        with self.sim.lock:
            self.props["runtime"].powerState = "poweredOn"
            self.touch("runtime")
            return self.sim.guests.power_on(self)

    def guest_power_off(self):
        self.power_offs += 1
        self.props["runtime"].powerState = "poweredOff"
        self.touch("runtime")
        self.sim.guests.power_off(self)

    def power_off(self):
        with self.sim.lock:
            self.guest_power_off()

    def ec(self, key):
        with self.sim.lock:
            for option in self.props["config"].extraConfig:
                if option.key == key:
                    return option.value
        return None


def cdrom(iso=ISO):
    return vim.vm.device.VirtualCdrom(key=3000, backing=vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName=iso))


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _datacenter(sim):
    dcs = sim.registry.of_type(vim.Datacenter)
    if dcs:
        return dcs[0]
    return sim.registry.get(sim.call(sim.root_folder().ref, "CreateDatacenter", name="DC0"))


@pytest.fixture(scope="module")
def gsim(tmp_path_factory):
    sim = Simulator(tmp_path_factory.mktemp("guests"))
    sim.guests.grace = 2.0
    with sim.lock:
        sim.datastores.add_datastore(_datacenter(sim), DS)
        sim.datastores.write_file(ISO, make_manifest("vsphere_sim.example_guest", ["--user", USER, "--ip", "10.0.0.5"],
                                                     version="1.0"), create_parents=True)
        sim.datastores.write_file(f"[{DS}] iso/no-ops.iso",
                                  make_manifest("vsphere_sim.example_guest", ["--no-operations"]))
        sim.datastores.write_file(f"[{DS}] iso/real.iso", b"\x00" * 4096 + b"CD001")
    yield sim
    sim.close()


_counter = iter(range(1, 10_000))


def new_vm(sim, devices=None, extra=None):
    with sim.lock:
        vm = FakeVM(sim, f"vm-{1000 + next(_counter)}", "guest-test", [cdrom()] if devices is None else devices,
                    extra)
        sim.registry.add(vm)
    return vm


@pytest.fixture
def booted(gsim):
    vm = new_vm(gsim, extra={"guestinfo.example.input": "hello", "common/name": "secret",
                             "guestinfo.vice./common/id": USER})
    vm.power_on()
    wait_for(lambda: vm.ec("guestinfo.example.booted") == "true", what="the guest to boot")
    yield vm
    vm.power_off()


def guest_channel(sim, vm) -> GuestChannel:
    """A second connection into a running guest's channel, with its token (as the guest program itself would)."""
    instance = sim.guests.instance(vm)
    return GuestChannel(sim.guests._server.path, instance.token, timeout=5.0)


# -- ISO manifests --------------------------------------------------------------------------------------------------
def test_manifest_round_trip_and_refusals():
    manifest = parse_manifest(make_manifest("vic_ref.appliance", ["-v"], version="1.5", env={"A": "b"},
                                            pythonpath=["/x"]))
    assert (manifest.module, manifest.args, manifest.version, manifest.env, manifest.pythonpath) == \
        ("vic_ref.appliance", ["-v"], "1.5", {"A": "b"}, ["/x"])
    for bad in (b"", b"\x00CD001", b"[]", b"{}", json.dumps({"vsphere_sim_guest": {"module": "a b"}}).encode(),
                json.dumps({"vsphere_sim_guest": {"module": "x", "args": [1]}}).encode(),
                json.dumps({"vsphere_sim_guest": {"module": "x", "env": {"A": 1}}}).encode(),
                b"{" * 70000):
        assert parse_manifest(bad) is None


def test_key_scopes():
    assert guest_visible("guestinfo.vice./common/id") and not guest_writable("guestinfo.vice./common/id")
    assert guest_writable("guestinfo.vice..sessions|abc.status")
    assert not guest_visible("common/name") and not guest_writable("common/name")


# -- booting --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("devices", [[], [cdrom(f"[{DS}] iso/real.iso")], [cdrom(f"[{DS}] iso/missing.iso")],
                                     [cdrom("[NoSuchDS] x.iso")]])
def test_no_guest_without_a_manifest(gsim, devices):
    vm = new_vm(gsim, devices)
    assert vm.power_on() is None
    assert gsim.guests.instance(vm) is None
    guest = vm.props["guest"]
    assert (guest.guestState, guest.toolsRunningStatus) == ("notRunning", "guestToolsNotRunning")


def test_boot_reads_and_writes_guestinfo(gsim, booted):
    vm = booted
    assert vm.ec("guestinfo.example.echo") == "hello"
    guest = vm.props["guest"]
    assert (guest.guestState, guest.toolsRunningStatus, guest.toolsStatus) == \
        ("running", "guestToolsRunning", "toolsOk")
    wait_for(lambda: vm.props["guest"].guestOperationsReady, what="guest operations ready")
    assert guest.ipAddress == "10.0.0.5" and guest.hostName == "example-guest"
    instance = gsim.guests.instance(vm)
    log_text = instance.log_path.read_text()
    assert "boots vsphere_sim.example_guest 1.0" in log_text and "booted" in log_text


def test_channel_scopes(gsim, booted):
    with guest_channel(gsim, booted) as channel:
        assert channel.info["vm"] == booted.moid
        assert channel.get("common/name") is None  # hidden: not even its existence shows
        assert channel.get("guestinfo.vice./common/id") == USER
        assert channel.get("guestinfo.nope", "dflt") == "dflt"
        assert "common/name" not in channel.items("")
        assert channel.items("guestinfo.example.")["guestinfo.example.input"] == "hello"
        with pytest.raises(ReadOnlyKey):
            channel.set("guestinfo.vice./common/id", "forged")
        with pytest.raises(ReadOnlyKey):
            channel.set("common/name", "forged")
        assert booted.ec("guestinfo.vice./common/id") == USER and booted.ec("common/name") == "secret"
        skipped = channel.update({"guestinfo.vice..sessions|x.status": "0", "guestinfo.vice./a/b": "no",
                                  "hidden": "no"})
        assert sorted(skipped) == ["guestinfo.vice./a/b", "hidden"]
        assert booted.ec("guestinfo.vice..sessions|x.status") == "0" and booted.ec("guestinfo.vice./a/b") is None


def test_channel_refuses_bad_tokens_and_requests(gsim, booted):
    path = gsim.guests._server.path
    with pytest.raises(ChannelClosed):
        GuestChannel(path, "not-a-token", timeout=5.0)
    with guest_channel(gsim, booted) as channel:
        with pytest.raises(GuestChannelError) as err:
            channel._request("frobnicate")
        assert err.value.code == "unknown_op"
        with pytest.raises(GuestChannelError) as err:
            channel._request("set", values={"guestinfo.a": 1})
        assert err.value.code == "bad_request"
        channel.ping()


def test_disks_and_serial_ports(gsim):
    with gsim.lock:
        gsim.datastores.make_dir(f"[{DS}] disks")
        gsim.datastores.create_disk(f"[{DS}] disks/base.vmdk", 1024)
        gsim.datastores.create_disk(f"[{DS}] disks/child.vmdk", 0, parent=f"[{DS}] disks/base.vmdk")
    disk = vim.vm.device.VirtualDisk(
        key=2000, unitNumber=0, controllerKey=1000, capacityInKB=1024,
        deviceInfo=vim.Description(label="Hard disk 1", summary="1,024 KB"),
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName=f"[{DS}] disks/child.vmdk",
                                                              diskMode="persistent"))
    serial = vim.vm.device.VirtualSerialPort(
        key=9000, deviceInfo=vim.Description(label="Serial port 1", summary=""),
        connectable=vim.vm.device.VirtualDevice.ConnectInfo(connected=True, startConnected=True),
        backing=vim.vm.device.VirtualSerialPort.FileBackingInfo(fileName=f"[{DS}] disks/tether.debug"))
    vm = new_vm(gsim, [cdrom(), disk, serial])
    vm.power_on()
    try:
        wait_for(lambda: vm.ec("guestinfo.example.booted") == "true", what="boot")
        with guest_channel(gsim, vm) as channel:
            [d] = channel.disks()
            assert d["file"] == f"[{DS}] disks/child.vmdk" and d["device_label"] == "Hard disk 1"
            assert [layer["file"] for layer in d["chain"]] == [f"[{DS}] disks/base.vmdk", f"[{DS}] disks/child.vmdk"]
            assert all(os.path.isdir(layer["data"]) for layer in d["chain"])
            assert d["label"] is None and d["formatted"] is None
            [port] = channel.serial_ports()
            assert port["kind"] == "file" and port["path"].endswith("disks/tether.debug") and port["connected"]
    finally:
        vm.power_off()


def test_ext4_label(tmp_path):
    image = tmp_path / "img"
    block = bytearray(2048)
    block[1024 + 0x38:1024 + 0x3A] = b"\x53\xef"
    block[1024 + 0x78:1024 + 0x78 + 11] = b"containerfs"
    image.write_bytes(bytes(block))
    assert ext4_label(image) == "containerfs"
    image.write_bytes(b"\0" * 2048)
    assert ext4_label(image) is None


# -- stopping -------------------------------------------------------------------------------------------------------
def test_power_off_stops_the_guest(gsim):
    vm = new_vm(gsim)
    instance = vm.power_on()
    wait_for(lambda: vm.ec("guestinfo.example.booted") == "true", what="boot")
    channel = guest_channel(gsim, vm)
    vm.power_off()
    assert instance.exited.wait(10), "the guest outlived its VM"
    assert gsim.guests.instance(vm) is None
    assert vm.props["guest"].guestState == "notRunning"
    wait_for(lambda: channel.closed, what="the channel to close")
    with pytest.raises(ChannelClosed):
        channel.get("guestinfo.example.input")
    # a guest of a powered-off VM can't connect again with its old token
    with pytest.raises(ChannelClosed):
        GuestChannel(gsim.guests._server.path, instance.token, timeout=5.0)


def test_guest_exit_powers_the_vm_off(gsim):
    vm = new_vm(gsim)
    instance = vm.power_on()
    wait_for(lambda: vm.ec("guestinfo.example.booted") == "true", what="boot")
    os.kill(instance.pid, signal.SIGTERM)  # as if the guest OS halted by itself
    wait_for(lambda: vm.props["runtime"].powerState == "poweredOff", what="the VM to power off")
    assert vm.power_offs == 1 and gsim.guests.instance(vm) is None
    assert vm.props["guest"].toolsRunningStatus == "guestToolsNotRunning"


def test_a_stubborn_guest_is_killed(gsim, tmp_path):
    stubborn = tmp_path / "stubborn_guest.py"
    stubborn.write_text("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                        "while True: time.sleep(1)\n")
    with gsim.lock:
        gsim.datastores.write_file(f"[{DS}] iso/stubborn.iso",
                                   make_manifest("stubborn_guest", pythonpath=[str(tmp_path)]))
    vm = new_vm(gsim, [cdrom(f"[{DS}] iso/stubborn.iso")])
    instance = vm.power_on()
    time.sleep(0.3)
    start = time.monotonic()
    vm.power_off()
    assert time.monotonic() - start < 1.0, "power off waits for no guest"
    assert instance.exited.wait(gsim.guests.grace + 5)


def test_power_on_again_replaces_the_guest(gsim):
    vm = new_vm(gsim)
    first = vm.power_on()
    wait_for(lambda: vm.ec("guestinfo.example.booted") == "true", what="boot")
    second = vm.power_on()  # a reset: the old guest goes first
    try:
        assert first.exited.is_set() and second is not first
        wait_for(lambda: gsim.guests.instance(vm) is second and second.connected, what="the new boot")
    finally:
        vm.power_off()


def test_reset_waits_for_the_old_guest(gsim, tmp_path):
    """Power off + power on at once (ResetVM_Task): the old guest, slow to stop, is gone before the new one boots."""
    slow = tmp_path / "slow_guest.py"
    slow.write_text("import signal, sys, time\n"
                    "signal.signal(signal.SIGTERM, lambda *a: (time.sleep(0.5), sys.exit(0)))\n"
                    "while True: time.sleep(1)\n")
    with gsim.lock:
        gsim.datastores.write_file(f"[{DS}] iso/slow.iso", make_manifest("slow_guest", pythonpath=[str(tmp_path)]))
    vm = new_vm(gsim, [cdrom(f"[{DS}] iso/slow.iso")])
    first = vm.power_on()
    time.sleep(0.3)  # let it install its handler
    with gsim.lock:
        vm.guest_power_off()
        second = vm.power_on()
    try:
        assert first.exited.is_set() and second is not None and not second.exited.is_set()
    finally:
        vm.power_off()


def test_resume_and_stop_all(tmp_path):
    sim = Simulator(tmp_path / "sim")
    try:
        with sim.lock:
            sim.datastores.add_datastore(_datacenter(sim), DS)
            sim.datastores.write_file(ISO, make_manifest("vsphere_sim.example_guest"), create_parents=True)
        vm = new_vm(sim)
        with sim.lock:
            vm.props["runtime"].powerState = "poweredOn"  # as loaded from the state store
        sim.guests.resume_powered_on()
        instance = sim.guests.instance(vm)
        assert instance is not None
        wait_for(lambda: instance.connected, what="the resumed guest")
        sim.guests.stop_all()
        assert instance.exited.is_set()
        assert vm.props["runtime"].powerState == "poweredOn"  # stop_all leaves VMs alone
    finally:
        sim.close()


# -- guest operations -----------------------------------------------------------------------------------------------
def _auth(user=USER, password="x"):
    return vim.vm.guest.NamePasswordAuthentication(username=user, password=password)


def _start(sim, vm, program, arguments="", auth=None):
    spec = vim.vm.guest.ProcessManager.ProgramSpec(programPath=program, arguments=arguments)
    return sim.call(vim.vm.guest.ProcessManager("guestOperationsProcessManager"), "StartProgramInGuest",
                    vm=vm.ref, auth=auth or _auth(), spec=spec)


def _list(sim, vm, pids=None):
    return sim.call(vim.vm.guest.ProcessManager("guestOperationsProcessManager"), "ListProcessesInGuest",
                    vm=vm.ref, auth=_auth(), pids=pids)


def test_start_program_and_list_processes(gsim, booted):
    wait_for(lambda: booted.props["guest"].guestOperationsReady, what="operations")
    pid = _start(gsim, booted, "true")
    pid_false = _start(gsim, booted, "false")
    [info] = _list(gsim, booted, [pid])
    assert (info.name, info.owner, info.cmdLine, info.exitCode) == ("true", USER, '"true"', 0)
    assert info.endTime is not None
    wait_for(lambda: _list(gsim, booted, [pid_false])[0].exitCode == 1, what="the exit code")
    booted_input = booted.ec("guestinfo.example.reloads")
    _start(gsim, booted, "reload")
    wait_for(lambda: booted.ec("guestinfo.example.reloads") == str(int(booted_input) + 1), what="the reload")


def test_terminate_process(gsim, booted):
    wait_for(lambda: booted.props["guest"].guestOperationsReady, what="operations")
    pid = _start(gsim, booted, "sleep", "60")
    [info] = _list(gsim, booted, [pid])
    assert info.endTime is None and info.exitCode is None and info.cmdLine == '"sleep" 60'
    gsim.call(vim.vm.guest.ProcessManager("guestOperationsProcessManager"), "TerminateProcessInGuest",
              vm=booted.ref, auth=_auth(), pid=pid)
    wait_for(lambda: _list(gsim, booted, [pid])[0].exitCode == 143, what="the terminated exit code")
    with pytest.raises(vim.fault.GuestProcessNotFound):
        gsim.call(vim.vm.guest.ProcessManager("guestOperationsProcessManager"), "TerminateProcessInGuest",
                  vm=booted.ref, auth=_auth(), pid=pid)


def test_operation_faults(gsim, booted):
    wait_for(lambda: booted.props["guest"].guestOperationsReady, what="operations")
    with pytest.raises(vim.fault.InvalidGuestLogin):
        _start(gsim, booted, "true", auth=_auth("someone-else"))
    with pytest.raises(vim.fault.GuestOperationsFault) as err:
        _start(gsim, booted, "frob")
    assert type(err.value) is vim.fault.GuestOperationsFault and 'unknown command "frob"' in err.value.msg
    with pytest.raises(vmodl.fault.InvalidArgument):
        _start(gsim, booted, "")
    env = gsim.call(vim.vm.guest.ProcessManager("guestOperationsProcessManager"), "ReadEnvironmentVariableInGuest",
                    vm=booted.ref, auth=_auth(), names=["PYTHONUNBUFFERED", ENV_TOKEN])
    assert env == ["PYTHONUNBUFFERED=1"]  # the channel's secret never shows


def test_operations_unavailable_and_powered_off(gsim):
    vm = new_vm(gsim)
    with pytest.raises(vim.fault.InvalidPowerState) as err:
        _start(gsim, vm, "true")
    assert err.value.existingState == "poweredOff" and "(Powered off)" in err.value.msg
    with gsim.lock:
        gsim.datastores.write_file(f"[{DS}] iso/none.txt", b"not an iso")
    plain = new_vm(gsim, [cdrom(f"[{DS}] iso/none.txt")])
    plain.power_on()
    try:
        with pytest.raises(vim.fault.GuestOperationsUnavailable):
            _start(gsim, plain, "true")
        with pytest.raises(vim.fault.GuestOperationsUnavailable):
            _list(gsim, plain)
    finally:
        plain.power_off()
    no_ops = new_vm(gsim, [cdrom(f"[{DS}] iso/no-ops.iso")])
    no_ops.power_on()
    try:
        wait_for(lambda: no_ops.ec("guestinfo.example.booted") == "true", what="boot")
        with pytest.raises(vim.fault.GuestOperationsUnavailable):  # Tools runs, but takes no operations
            _start(gsim, no_ops, "true")
    finally:
        no_ops.power_off()


def test_operation_timeout_is_bounded(gsim, booted, monkeypatch):
    wait_for(lambda: booted.props["guest"].guestOperationsReady, what="operations")
    with guest_channel(gsim, booted) as silent:
        silent.subscribe()  # operations now go to a connection that never answers
        monkeypatch.setattr(GuestSupervisor, "op_timeout", 0.5)
        start = time.monotonic()
        with pytest.raises(vim.fault.GuestOperationsUnavailable):
            _start(gsim, booted, "true")
        assert time.monotonic() - start < 3
        # the sim kept serving others while it waited
        assert booted.ec("guestinfo.example.booted") == "true"


def test_kill_powers_the_vm_off(gsim):
    vm = new_vm(gsim)
    vm.power_on()
    wait_for(lambda: vm.props["guest"] is not None and vm.props["guest"].guestOperationsReady, what="operations")
    _start(gsim, vm, "kill", "TERM")
    wait_for(lambda: vm.props["runtime"].powerState == "poweredOff", what="the VM to power off")
    assert vm.ec("guestinfo.example.exit") == "143"


def test_credentials_tickets(gsim, booted):
    auth_manager = vim.vm.guest.AuthManager("guestOperationsAuthManager")
    gsim.call(auth_manager, "ValidateCredentialsInGuest", vm=booted.ref, auth=_auth())
    with pytest.raises(vim.fault.InvalidGuestLogin):
        gsim.call(auth_manager, "ValidateCredentialsInGuest", vm=booted.ref, auth=_auth("nobody"))
    ticket = gsim.call(auth_manager, "AcquireCredentialsInGuest", vm=booted.ref, requestedAuth=_auth())
    assert isinstance(ticket, vim.vm.guest.TicketedSessionAuthentication)
    gsim.call(auth_manager, "ValidateCredentialsInGuest", vm=booted.ref, auth=ticket)
    gsim.call(auth_manager, "ReleaseCredentialsInGuest", vm=booted.ref, auth=ticket)
    with pytest.raises(vim.fault.InvalidGuestLogin):
        gsim.call(auth_manager, "ValidateCredentialsInGuest", vm=booted.ref, auth=ticket)


def test_concurrent_operations(gsim, booted):
    wait_for(lambda: booted.props["guest"].guestOperationsReady, what="operations")
    results, errors = [], []

    def run():
        try:
            results.append(_start(gsim, booted, "true"))
        except Exception as err:  # noqa: BLE001 - collected for the assert
            errors.append(err)
    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(set(results)) == 8


# -- events posted from inside the sim --------------------------------------------------------------------------------
def test_vm_event_helper(gsim):
    vm = new_vm(gsim)
    with gsim.lock:
        event = post_event(gsim, vm_event(gsim, vim.event.VmPoweredOnEvent, vm))
    assert event.key > 0 and event.vm.vm == vm.ref and event.createdTime is not None
    assert "is powered on" in event.fullFormattedMessage


def test_guest_requested_power_off(gsim):
    vm = new_vm(gsim)
    vm.power_on()
    wait_for(lambda: vm.props["guest"].guestOperationsReady, what="operations")
    _start(gsim, vm, "poweroff")  # the guest calls channel.power_off(), as `halt` would
    wait_for(lambda: vm.props["runtime"].powerState == "poweredOff", what="the VM to power off")
    assert vm.power_offs == 1


def test_async_channel(gsim, booted):
    from vsphere_sim.guest_channel import AsyncGuestChannel

    async def main():
        channel = AsyncGuestChannel(guest_channel(gsim, booted))
        try:
            await channel.set("guestinfo.example.async", "yes")
            return await channel.get("guestinfo.example.input"), await channel.items("guestinfo.example.async")
        finally:
            channel.close()
    assert asyncio.run(main()) == ("hello", {"guestinfo.example.async": "yes"})


def test_close_kills_guests_in_their_grace(tmp_path, monkeypatch):
    stubborn = tmp_path / "stubborn2_guest.py"
    stubborn.write_text("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                        "while True: time.sleep(1)\n")
    sim = Simulator(tmp_path / "sim")
    sim.guests.grace = 0.5
    with sim.lock:
        sim.datastores.add_datastore(_datacenter(sim), DS)
        sim.datastores.write_file(f"[{DS}] stubborn.iso", make_manifest("stubborn2_guest", pythonpath=[str(tmp_path)]))
    vm = new_vm(sim, [cdrom(f"[{DS}] stubborn.iso")])
    instance = vm.power_on()
    time.sleep(0.3)
    # no reaper (as when the sim process is going away): the SIGTERM is ignored, close must still kill it
    monkeypatch.setattr(sim.guests, "_reap_later", lambda instance: None)
    vm.power_off()
    assert not instance.exited.wait(0.7)
    sim.close()
    assert instance.exited.wait(5)


def test_guest_channel_needs_no_pyvmomi():
    """Guests are plain programs: the channel module (and the wire module it shares with the sim) imports nothing
    but the standard library."""
    import subprocess
    import sys

    import vsphere_sim
    code = "import sys, vsphere_sim.guest_channel; sys.exit('pyVmomi' in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30,
                   cwd=str(Path(vsphere_sim.__file__).parent.parent))
