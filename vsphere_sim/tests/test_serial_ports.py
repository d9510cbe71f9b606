"""Network-backed serial ports as ESX connects them (guest_serial.py): while a VM runs and its URI port is connected,
the sim connects to the port's service URI and bridges it to a Unix socket, the guest's ttyS<n>. A TCP listener in the
test stands for the VCH's attach server; the test itself plays the guest by connecting to the port's socket."""
from __future__ import annotations

import copy
import os
import socket
import threading
import time

import pytest
from pyVmomi import vim

from vsphere_sim import Simulator
from vsphere_sim.guest_serial import parse_service_uri
from vsphere_sim.guest_vm import describe_serial_ports

pytestmark = pytest.mark.timeout(60)
VD = vim.vm.device
DS = "LocalDS_0"
ATTACH_KEY = 9000  # the first serial port's key


def fast(sim):
    sim.guests.serial.retry_initial = 0.02
    sim.guests.serial.retry_max = 0.1
    return sim


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    sim = fast(Simulator(tmp_path_factory.mktemp("serial"), persist=False))
    yield sim
    sim.close()


class Vch:
    """A TCP listener standing for the VCH's attach server."""

    def __init__(self, port=0):
        self.sock = socket.create_server(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(5.0)

    @property
    def uri(self):
        return f"tcp://127.0.0.1:{self.port}"

    def accept(self, timeout=5.0) -> socket.socket:
        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        conn.settimeout(5.0)
        return conn

    def close(self):
        self.sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def read_exactly(sock, n) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def assert_eof(sock):
    sock.settimeout(5.0)
    try:
        assert sock.recv(100) == b""
    except ConnectionResetError:
        pass


def uri_port(uri, connected=False, start_connected=True, key=-1):
    return VD.VirtualSerialPort(
        key=key, yieldOnPoll=True,
        backing=VD.VirtualSerialPort.URIBackingInfo(direction="client", serviceURI=uri,
                                                    proxyURI="telnet://0.0.0.0:2377"),
        connectable=VD.VirtualDevice.ConnectInfo(connected=connected, startConnected=start_connected,
                                                 allowGuestControl=True))


def create_vm(sim, devices, name=None):
    dc = sim.registry.of_type(vim.Datacenter)[0]
    pool = sim.registry.of_type(vim.ClusterComputeResource)[0].props["resourcePool"]
    name = name or f"serial-{os.urandom(4).hex()}"
    spec = vim.vm.ConfigSpec(name=name, guestId="otherGuest64", numCPUs=1, memoryMB=512,
                             files=vim.vm.FileInfo(vmPathName=f"[{DS}]"),
                             deviceChange=[VD.VirtualDeviceSpec(operation="add", device=d) for d in devices])
    ref = sim.wait_task(sim.call(dc.props["vmFolder"], "CreateVM_Task", config=spec, pool=pool))
    return sim.registry.get(ref)


def power(sim, vm, method):
    sim.wait_task(sim.call(vm.ref, method))


def port_of(sim, vm, key=ATTACH_KEY) -> dict:
    with sim.lock:
        return next(p for p in describe_serial_ports(sim, vm) if p["key"] == key)


def guest_open(sim, vm, key=ATTACH_KEY) -> socket.socket:
    path = port_of(sim, vm, key)["socket"]
    assert path, "the port has no guest socket"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    sock.settimeout(5.0)
    return sock


def edit_connected(sim, vm, connected, key=ATTACH_KEY):
    device = copy.deepcopy(next(d for d in vm.serial_ports() if d.key == key))
    device.connectable.connected = connected
    sim.wait_task(sim.call(vm.ref, "ReconfigVM_Task", spec=vim.vm.ConfigSpec(
        deviceChange=[VD.VirtualDeviceSpec(operation="edit", device=device)])))


def status(sim, vm, key=ATTACH_KEY):
    return sim.guests.serial.status(vm.moid, key)


# -- tests ------------------------------------------------------------------------------------------------------------
def test_parse_service_uri():
    assert parse_service_uri("tcp://127.0.0.1:2379") == ("127.0.0.1", 2379)
    assert parse_service_uri("telnet://vch.local:2377") == ("vch.local", 2377)
    assert parse_service_uri("tcp://[::1]:23") == ("::1", 23)
    for bad in (None, "", "tcp://127.0.0.1", "file:///x", "tcp://:80", "tcp://h:99999", "vspc://h:1"):
        assert parse_service_uri(bad) is None


def test_bytes_both_ways_then_power_off(sim):
    vch = Vch()
    vm = create_vm(sim, [uri_port(vch.uri)])
    assert port_of(sim, vm)["socket"] is None  # powered off: nothing connected
    power(sim, vm, "PowerOnVM_Task")
    remote = vch.accept()
    port = port_of(sim, vm)
    assert port["kind"] == "uri" and port["uri"] == vch.uri and port["direction"] == "client"
    assert port["proxy_uri"] == "telnet://0.0.0.0:2377" and port["connected"] and port["start_connected"]
    assert port["socket"].endswith(f"serial-{ATTACH_KEY}.sock") and os.path.exists(port["socket"])
    guest = guest_open(sim, vm)
    guest.sendall(b"\x16\x01hello from the guest")
    assert read_exactly(remote, 22) == b"\x16\x01hello from the guest"
    payload = bytes(range(256)) * 1024  # 256 KiB, every byte value: more than the buffers hold at once
    threading.Thread(target=remote.sendall, args=(payload,), daemon=True).start()
    assert read_exactly(guest, len(payload)) == payload
    power(sim, vm, "PowerOffVM_Task")
    assert_eof(guest)
    assert_eof(remote)
    assert not os.path.exists(port["socket"]) and port_of(sim, vm)["socket"] is None
    guest.close(), remote.close(), vch.close()


def test_remote_restart_reconnects_and_the_guest_stream_continues(sim):
    vch = Vch()
    vm = create_vm(sim, [uri_port(vch.uri)])
    power(sim, vm, "PowerOnVM_Task")
    remote = vch.accept()
    guest = guest_open(sim, vm)
    guest.sendall(b"one")
    assert read_exactly(remote, 3) == b"one"
    # the VCH restarts: its connection and its listener go, then it listens again on the same port
    remote.close()
    vch.close()
    time.sleep(0.2)
    vch = Vch(vch.port)
    remote = vch.accept()
    wait_for(lambda: status(sim, vm)["remote_connected"], what="the reconnect")
    guest.sendall(b"two")
    assert read_exactly(remote, 3) == b"two"
    remote.sendall(b"three")
    assert read_exactly(guest, 5) == b"three"
    assert status(sim, vm)["guest_connects"] == 1
    power(sim, vm, "PowerOffVM_Task")
    assert_eof(guest)
    guest.close(), remote.close(), vch.close()


def test_listener_not_up_at_power_on(sim):
    port = free_port()
    vm = create_vm(sim, [uri_port(f"telnet://localhost:{port}")])  # telnet:// is raw TCP
    power(sim, vm, "PowerOnVM_Task")
    guest = guest_open(sim, vm)
    guest.sendall(b"early")  # held until the line is up
    time.sleep(0.3)
    assert not status(sim, vm)["remote_connected"]
    vch = Vch(port)
    remote = vch.accept()
    assert read_exactly(remote, 5) == b"early"
    remote.sendall(b"late")
    assert read_exactly(guest, 4) == b"late"
    power(sim, vm, "PowerOffVM_Task")
    assert_eof(remote)
    guest.close(), remote.close(), vch.close()


def test_vic_bind_and_unbind_by_reconfigure(sim):
    """VIC creates the port disconnected (connected and startConnected false) and connects it with a ReconfigVM
    edit while the VM runs (Bind), disconnects it the same way (Unbind); removing the device disconnects it too."""
    vch = Vch()
    vm = create_vm(sim, [uri_port(vch.uri, start_connected=False)])
    power(sim, vm, "PowerOnVM_Task")
    assert port_of(sim, vm)["socket"] is None and not port_of(sim, vm)["connected"]
    edit_connected(sim, vm, True)
    remote = vch.accept()
    guest = guest_open(sim, vm)
    guest.sendall(b"bound")
    assert read_exactly(remote, 5) == b"bound"
    edit_connected(sim, vm, False)
    assert_eof(guest)
    assert_eof(remote)
    assert port_of(sim, vm)["socket"] is None
    guest.close(), remote.close()
    edit_connected(sim, vm, True)
    remote = vch.accept()
    guest = guest_open(sim, vm)
    remote.sendall(b"again")
    assert read_exactly(guest, 5) == b"again"
    device = next(d for d in vm.serial_ports() if d.key == ATTACH_KEY)
    sim.wait_task(sim.call(vm.ref, "ReconfigVM_Task", spec=vim.vm.ConfigSpec(
        deviceChange=[VD.VirtualDeviceSpec(operation="remove", device=device)])))
    assert_eof(guest)
    assert_eof(remote)
    assert sim.guests.serial.status(vm.moid, ATTACH_KEY) is None
    power(sim, vm, "PowerOffVM_Task")
    guest.close(), remote.close(), vch.close()


def test_reopening_replaces_the_guest_connection_and_reset_reconnects(sim):
    vch = Vch()
    vm = create_vm(sim, [uri_port(vch.uri)])
    power(sim, vm, "PowerOnVM_Task")
    remote = vch.accept()
    first = guest_open(sim, vm)
    first.sendall(b"1")
    assert read_exactly(remote, 1) == b"1"
    second = guest_open(sim, vm)
    assert_eof(first)
    remote.sendall(b"to-second")
    assert read_exactly(second, 9) == b"to-second"
    power(sim, vm, "ResetVM_Task")  # a reset closes both sides; the new boot connects afresh
    assert_eof(second)
    assert_eof(remote)
    remote2 = vch.accept()
    third = guest_open(sim, vm)
    third.sendall(b"after reset")
    assert read_exactly(remote2, 11) == b"after reset"
    sim.wait_task(sim.call(vm.ref, "PowerOffVM_Task"))
    sim.wait_task(sim.call(vm.ref, "Destroy_Task"))
    assert_eof(third)
    assert_eof(remote2)
    for s in (first, second, third, remote, remote2):
        s.close()
    vch.close()


def test_file_backed_port_file_is_there_to_append(sim):
    vm = create_vm(sim, [VD.VirtualSerialPort(
        key=-1, yieldOnPoll=True, backing=VD.VirtualSerialPort.FileBackingInfo(fileName=f"[{DS}] logs-x/tether.debug"),
        connectable=VD.VirtualDevice.ConnectInfo(connected=True, startConnected=True, allowGuestControl=True))])
    power(sim, vm, "PowerOnVM_Task")
    port = port_of(sim, vm)
    assert port["kind"] == "file" and port["file"] == f"[{DS}] logs-x/tether.debug" and port["connected"]
    assert os.path.isfile(port["path"]) and "socket" not in port
    for line in (b"first\n", b"second\n"):
        with open(port["path"], "ab") as f:
            f.write(line)
    with sim.lock:
        assert sim.datastores.read_file(f"[{DS}] logs-x/tether.debug") == b"first\nsecond\n"
    power(sim, vm, "PowerOffVM_Task")


def _sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return count


def test_closing_the_sim_leaves_nothing(tmp_path):
    before = _sockets()
    vch = Vch()
    sim = fast(Simulator(tmp_path / "sim", persist=False))
    vms = [create_vm(sim, [uri_port(vch.uri)]) for _ in range(3)]
    waiting = create_vm(sim, [uri_port(f"tcp://127.0.0.1:{free_port()}")])  # never connects: retries until closed
    for vm in [*vms, waiting]:
        power(sim, vm, "PowerOnVM_Task")
    remotes = [vch.accept() for _ in vms]
    guests = [guest_open(sim, vm) for vm in vms]
    paths = [port_of(sim, vm)["socket"] for vm in [*vms, waiting]]
    thread = sim.guests.serial._thread
    assert thread is not None and thread.is_alive()
    sim.close()
    for s in [*guests, *remotes]:
        assert_eof(s)
        s.close()
    vch.close()
    assert not thread.is_alive()
    assert not any(os.path.exists(p) for p in paths)
    assert _sockets() == before


def test_a_booted_guest_finds_and_opens_its_port(sim):
    """The guest's view: `serial_ports` on the guest channel gives the port's socket, `open_serial` opens it."""
    from vsphere_sim.guest_channel import GuestChannel
    from vsphere_sim.guests import make_manifest
    iso = f"[{DS}] iso/serial-guest.iso"
    with sim.lock:
        sim.datastores.write_file(iso, make_manifest("vsphere_sim.example_guest"), create_parents=True)
    vch = Vch()
    vm = create_vm(sim, [VD.VirtualIDEController(key=200, busNumber=0),
                         VD.VirtualCdrom(key=-2, controllerKey=200, unitNumber=0,
                                         backing=VD.VirtualCdrom.IsoBackingInfo(fileName=iso),
                                         connectable=VD.VirtualDevice.ConnectInfo(startConnected=True)),
                         uri_port(vch.uri)])
    power(sim, vm, "PowerOnVM_Task")
    try:
        instance = wait_for(lambda: sim.guests.instance(vm), what="the guest")
        with GuestChannel(sim.guests._server.path, instance.token, timeout=5.0) as channel:
            [port] = channel.serial_ports()
            assert port["kind"] == "uri" and port["socket"] and port["key"] == ATTACH_KEY
            tty = channel.open_serial(port["key"])
            tty.settimeout(5.0)
            remote = vch.accept()
            remote.sendall(b"SYN")
            assert read_exactly(tty, 3) == b"SYN"
            tty.sendall(b"ACK")
            assert read_exactly(remote, 3) == b"ACK"
    finally:
        power(sim, vm, "PowerOffVM_Task")
    assert_eof(tty)
    assert_eof(remote)
    tty.close(), remote.close(), vch.close()
