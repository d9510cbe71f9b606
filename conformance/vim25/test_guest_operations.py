"""Guest operations and the guest seam end to end, through pyVmomi: a VM boots the guest program its CD-ROM names,
the guest reads and writes guestinfo (as VIC's tether does), takes StartProgramInGuest commands, reports exit codes,
and powers its VM off when it exits.

The guest is `vsphere_sim.example_guest`, booted from an ISO manifest uploaded through the datastore HTTP API, so the
tests that need a running guest are sim-only; the faults without a guest (powered off, no guest agent) hold on any
vSphere."""
from __future__ import annotations

import time
import uuid
from urllib.parse import quote, urlsplit

import pytest
import requests
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from .helpers import datacenter, resource_pool, vmfs_datastore
from .helpers import walk as _walk

VD = vim.vm.device
USER = "4f2a" * 16  # a container ID, as VIC's port layer logs in to its tether
pytestmark = pytest.mark.timeout(120)



def wait_for(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def env(vsphere, si):
    content = si.RetrieveContent()
    dc = datacenter(si)
    ds = vmfs_datastore(dc)
    top = f"guestops-{uuid.uuid4().hex[:8]}"
    content.fileManager.MakeDirectory(f"[{ds.name}] {top}", dc)
    folder = dc.vmFolder.CreateFolder(top)
    ns = type("Env", (), {})()
    ns.si, ns.content, ns.dc, ns.ds, ns.pool, ns.folder, ns.top = si, content, dc, ds, resource_pool(dc), folder, top
    ns.vsphere = vsphere
    ns.pm = content.guestOperationsManager.processManager
    ns.am = content.guestOperationsManager.authManager
    yield ns
    for vm in _walk(folder):
        if isinstance(vm, vim.VirtualMachine) and vm.runtime.powerState == "poweredOn":
            WaitForTask(vm.PowerOffVM_Task())
    WaitForTask(folder.Destroy_Task())
    try:
        WaitForTask(content.fileManager.DeleteDatastoreFile_Task(f"[{ds.name}] {top}", dc))
    except vmodl.MethodFault:
        pass


def upload(env, name: str, data: bytes) -> str:
    """PUT a file into the test's datastore folder through /folder, as vic-machine uploads its ISOs."""
    parts = urlsplit(env.vsphere.url)
    url = (f"{parts.scheme}://{parts.netloc}/folder/{quote(env.top)}/{quote(name)}"
           f"?dcPath={quote(env.dc.name)}&dsName={quote(env.ds.name)}")
    response = requests.put(url, data=data, headers={"Cookie": env.si._stub.cookie.split(";")[0]}, verify=False)
    assert response.status_code in (200, 201), response.text
    return f"[{env.ds.name}] {env.top}/{name}"


def guest_iso(env, *args: str) -> str:
    from vsphere_sim.guests import make_manifest
    return upload(env, f"guest-{uuid.uuid4().hex[:6]}.iso",
                  make_manifest("vsphere_sim.example_guest", ["--user", USER, *args], version="test"))


def create_vm(env, iso: str | None = None, extra: dict | None = None, power_on: bool = True):
    devices = []
    if iso is not None:
        cdrom = VD.VirtualCdrom(key=-1, controllerKey=200, unitNumber=0,
                                backing=VD.VirtualCdrom.IsoBackingInfo(fileName=iso),
                                connectable=VD.VirtualDevice.ConnectInfo(startConnected=True, allowGuestControl=True,
                                                                         connected=False))
        devices.append(VD.VirtualDeviceSpec(operation="add", device=cdrom))
    spec = vim.vm.ConfigSpec(name=f"guest-{uuid.uuid4().hex[:8]}", guestId="otherGuest64", numCPUs=1, memoryMB=64,
                             files=vim.vm.FileInfo(vmPathName=f"[{env.ds.name}]"), deviceChange=devices,
                             extraConfig=[vim.option.OptionValue(key=k, value=v) for k, v in (extra or {}).items()])
    task = env.folder.CreateVM_Task(config=spec, pool=env.pool)
    WaitForTask(task)
    vm = task.info.result
    if power_on:
        WaitForTask(vm.PowerOnVM_Task())
    return vm


def extra_config(vm) -> dict:
    return {o.key: o.value for o in vm.config.extraConfig}


def auth(user=USER, password=""):
    return vim.vm.guest.NamePasswordAuthentication(username=user, password=password)


def start(env, vm, program, arguments="", credentials=None):
    return env.pm.StartProgramInGuest(vm, credentials or auth(),
                                      vim.vm.guest.ProcessManager.ProgramSpec(programPath=program,
                                                                              arguments=arguments))


def process(env, vm, pid):
    [info] = env.pm.ListProcessesInGuest(vm, auth(), [pid])
    return info


@pytest.fixture(scope="module")
def booted(env, vsphere):
    """A VM running the example guest, its guest operations ready."""
    if not vsphere.is_sim:
        pytest.skip("the example guest boots only in the embedded simulator")
    vm = create_vm(env, guest_iso(env, "--ip", "10.1.2.3"),
                   extra={"guestinfo.example.input": "hello", "guestinfo.vice./common/id": USER,
                          "common/name": "hidden-name"})
    wait_for(lambda: vm.guest.guestOperationsReady, what="the guest's operations")
    return vm


# -- the guest seam -------------------------------------------------------------------------------------------------
@pytest.mark.sim_only
def test_guest_reads_and_writes_guestinfo(booted):
    extra = wait_for(lambda: (e := extra_config(booted)).get("guestinfo.example.booted") == "true" and e,
                     what="the guest to write guestinfo")
    assert extra["guestinfo.example.echo"] == "hello"  # read by the guest, written back through the channel
    guest = booted.guest
    assert (guest.guestState, guest.toolsRunningStatus, guest.toolsStatus) == \
        ("running", "guestToolsRunning", "toolsOk")
    assert guest.ipAddress == "10.1.2.3"
    assert booted.summary.guest.toolsRunningStatus == "guestToolsRunning"


@pytest.mark.sim_only
def test_guest_cannot_write_read_only_or_hidden_keys(env, booted):
    pid = start(env, booted, "write", "guestinfo.vice./common/id=forged")
    wait_for(lambda: process(env, booted, pid).exitCode is not None, what="the write to end")
    assert process(env, booted, pid).exitCode == 1
    pid = start(env, booted, "write", "common/name=forged")
    wait_for(lambda: process(env, booted, pid).exitCode == 1, what="the refused hidden write")
    extra = extra_config(booted)
    assert extra["guestinfo.vice./common/id"] == USER and extra["common/name"] == "hidden-name"
    pid = start(env, booted, "write", "guestinfo.vice..sessions|x.status=0")
    wait_for(lambda: process(env, booted, pid).exitCode == 0, what="the read-write write")
    assert extra_config(booted)["guestinfo.vice..sessions|x.status"] == "0"


@pytest.mark.sim_only
def test_start_program_and_list_processes(env, booted):
    pid = start(env, booted, "true")
    assert isinstance(pid, int) and pid > 0
    info = wait_for(lambda: (p := process(env, booted, pid)).endTime is not None and p, what="the exit")
    assert (info.name, info.owner, info.exitCode) == ("true", USER, 0)
    assert info.cmdLine.startswith('"true"') and info.startTime is not None
    pid_false = start(env, booted, "false")
    wait_for(lambda: process(env, booted, pid_false).exitCode == 1, what="exit code 1")
    listed = {p.pid for p in env.pm.ListProcessesInGuest(booted, auth())}
    assert {pid, pid_false} <= listed


@pytest.mark.sim_only
def test_reload_reaches_the_guest(env, booted):
    before = int(extra_config(booted).get("guestinfo.example.reloads", "0"))
    start(env, booted, "reload")  # what VIC's port layer sends after changing a running container's config
    wait_for(lambda: extra_config(booted).get("guestinfo.example.reloads") == str(before + 1), what="the reload")


@pytest.mark.sim_only
def test_terminate_process(env, booted):
    pid = start(env, booted, "sleep", "60")
    info = process(env, booted, pid)
    assert info.endTime is None and info.exitCode is None
    env.pm.TerminateProcessInGuest(booted, auth(), pid)
    wait_for(lambda: process(env, booted, pid).exitCode == 143, what="the terminated process's exit code")
    with pytest.raises(vim.fault.GuestProcessNotFound):
        env.pm.TerminateProcessInGuest(booted, auth(), pid)


@pytest.mark.sim_only
def test_credentials(env, booted):
    with pytest.raises(vim.fault.InvalidGuestLogin):
        start(env, booted, "true", credentials=auth("root", "vmware"))
    with pytest.raises(vim.fault.InvalidGuestLogin):
        env.pm.ListProcessesInGuest(booted, auth("nobody"))
    env.am.ValidateCredentialsInGuest(booted, auth())
    ticket = env.am.AcquireCredentialsInGuest(booted, auth())
    start(env, booted, "true", credentials=ticket)
    env.am.ReleaseCredentialsInGuest(booted, ticket)
    with pytest.raises(vim.fault.InvalidGuestLogin):
        env.am.ValidateCredentialsInGuest(booted, ticket)


@pytest.mark.sim_only
def test_unknown_program_is_refused(env, booted):
    with pytest.raises(vim.fault.GuestOperationsFault) as err:
        start(env, booted, "frobnicate")
    assert 'unknown command "frobnicate"' in err.value.msg
    with pytest.raises(vmodl.fault.InvalidArgument):
        start(env, booted, "")


@pytest.mark.sim_only
def test_environment(env, booted):
    values = env.pm.ReadEnvironmentVariableInGuest(booted, auth(), ["PYTHONUNBUFFERED"])
    assert list(values) == ["PYTHONUNBUFFERED=1"]


@pytest.mark.sim_only
def test_kill_ends_the_guest_and_powers_the_vm_off(env):
    vm = create_vm(env, guest_iso(env))
    wait_for(lambda: vm.guest.guestOperationsReady, what="the guest's operations")
    start(env, vm, "kill", "TERM")  # as VIC stops a container: the tether's process ends, the VM powers off
    wait_for(lambda: vm.runtime.powerState == "poweredOff", what="the VM to power off")
    assert extra_config(vm)["guestinfo.example.exit"] == "143"
    assert vm.guest.toolsRunningStatus == "guestToolsNotRunning" and not vm.guest.guestOperationsReady
    events = env.content.eventManager.QueryEvents(vim.event.EventFilterSpec(
        entity=vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self"),
        eventTypeId=["VmPoweredOffEvent", "VmPoweredOnEvent"]))
    assert [type(e).__name__ for e in events][:2] == ["vim.event.VmPoweredOffEvent", "vim.event.VmPoweredOnEvent"]


@pytest.mark.sim_only
def test_power_off_stops_the_guest_and_power_on_boots_it_again(env):
    vm = create_vm(env, guest_iso(env), extra={"guestinfo.example.input": "one"})
    wait_for(lambda: vm.guest.guestOperationsReady, what="the first boot")
    WaitForTask(vm.PowerOffVM_Task())
    assert vm.guest.guestState == "notRunning"
    with pytest.raises(vim.fault.InvalidPowerState):
        start(env, vm, "true")
    WaitForTask(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[
        vim.option.OptionValue(key="guestinfo.example.input", value="two")])))
    WaitForTask(vm.PowerOnVM_Task())
    wait_for(lambda: extra_config(vm).get("guestinfo.example.echo") == "two", what="the second boot")


@pytest.mark.sim_only
def test_shutdown_guest(env):
    vm = create_vm(env, guest_iso(env))
    wait_for(lambda: vm.guest.toolsRunningStatus == "guestToolsRunning", what="tools")
    vm.ShutdownGuest()
    wait_for(lambda: vm.runtime.powerState == "poweredOff", what="the guest to halt")


@pytest.mark.sim_only
def test_guest_without_operations(env):
    vm = create_vm(env, guest_iso(env, "--no-operations"))
    wait_for(lambda: vm.guest.toolsRunningStatus == "guestToolsRunning", what="tools")
    with pytest.raises(vim.fault.GuestOperationsUnavailable):
        start(env, vm, "true")


# -- faults without a guest (any vSphere) ---------------------------------------------------------------------------
def test_operations_need_a_powered_on_vm(env):
    vm = create_vm(env, power_on=False)
    for call in (lambda: start(env, vm, "/bin/true"), lambda: env.pm.ListProcessesInGuest(vm, auth()),
                 lambda: env.am.ValidateCredentialsInGuest(vm, auth())):
        with pytest.raises(vim.fault.InvalidPowerState) as err:
            call()
        assert err.value.existingState == "poweredOff"


def test_operations_need_a_guest_agent(env):
    vm = create_vm(env)  # no CD-ROM: nothing boots, Tools never runs
    assert vm.guest.toolsRunningStatus == "guestToolsNotRunning"
    with pytest.raises(vim.fault.GuestOperationsUnavailable):
        start(env, vm, "/bin/true")
    with pytest.raises(vim.fault.GuestOperationsUnavailable):
        env.pm.ListProcessesInGuest(vm, auth())


@pytest.mark.sim_only
def test_destroying_a_booted_vm_leaves_no_folder(env, vsphere):
    """Everything the VM wrote while its guest ran, the sim's guest console log included, goes with Destroy_Task."""
    vm = create_vm(env, guest_iso(env))
    wait_for(lambda: vm.guest.guestOperationsReady, what="the guest's operations")
    home = vm.config.files.vmPathName.rsplit("/", 1)[0]
    WaitForTask(vm.PowerOffVM_Task())
    WaitForTask(vm.Destroy_Task())
    browser = env.ds.browser
    task = browser.SearchDatastore_Task(f"[{env.ds.name}]", vim.host.DatastoreBrowser.SearchSpec())
    WaitForTask(task)
    folders = {f.path for f in task.info.result.file}
    assert home.split("] ", 1)[1] not in folders
