"""Deploying, reusing and removing a VCH appliance on the module's embedded sim, checked through pyVmomi."""
from __future__ import annotations

import json
import time
import uuid

import pytest
from pyVmomi import vim

from vic_ref import errors
from vic_ref.cli import free_port
from vic_ref.config import vch as vchconfig
from vic_ref.machine import deploy, isos
from vic_ref.trace import Operation
from vic_ref.vsphere import Session, Target

DATASTORE = "LocalDS_0"
pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def op(request) -> Operation:
    return Operation.new(request.node.name)


@pytest.fixture(scope="module")
def session(sim_target):
    op = Operation.new("deploy tests")
    s = Session.open(op, Target(sim_target.url, sim_target.user, sim_target.password, datacenter="DC0",
                                compute_resource="DC0_C0", datastore=DATASTORE, keepalive=None), populate=True)
    yield s
    s.close(op)


@pytest.fixture(scope="module")
def si(sim_target):
    from pyVim.connect import Disconnect
    instance = sim_target.connect()
    yield instance
    Disconnect(instance)


def config_for(sim_target, name=None, password=None, **kwargs) -> vchconfig.VCHConfig:
    kwargs.setdefault("port", free_port())
    return vchconfig.new_config(name or f"vch-{uuid.uuid4().hex[:6]}", sim_target.url, sim_target.user,
                                password if password is not None else sim_target.password,
                                image_store=f"[{DATASTORE}]", datacenter="DC0", compute_resource="DC0_C0",
                                volume_stores={"default": f"[{DATASTORE}] volumes"}, **kwargs)


def vm_folder(si, name):
    dc = next(e for e in si.RetrieveContent().rootFolder.childEntity if e.name == "DC0")
    return next((f for f in dc.vmFolder.childEntity if isinstance(f, vim.Folder) and f.name == name), None)


@pytest.fixture(scope="module")
def deployed(sim_target, session):
    op = Operation.new("deploy")
    began = time.monotonic()
    vch = deploy.create(op, session, config_for(sim_target), timeout=30)
    vch.seconds = time.monotonic() - began
    yield vch
    try:
        deploy.destroy(op, session, vch.name)
    except errors.NotFound:
        pass


def test_create_deploys_a_vch_that_answers(deployed):
    assert deploy.ping(deployed.config)
    assert deployed.power_state == "poweredOn"
    assert deployed.seconds < 10  # typically well under a second; the brief's target is 3 s to /_ping
    assert deployed.vmx_path.path == f"{deployed.name}/{deployed.name}.vmx"
    assert str(deployed.guest_log) == f"[{DATASTORE}] {deployed.name}/guest.log"


def test_the_appliance_vm_as_vsphere_shows_it(deployed, si, session, op):
    folder = vm_folder(si, deployed.name)
    assert folder is not None, f"no folder vm/{deployed.name}"
    [vm] = [c for c in folder.childEntity if isinstance(c, vim.VirtualMachine)]
    assert vm.name == deployed.name
    [cdrom] = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualCdrom)]
    assert cdrom.backing.fileName == f"[{DATASTORE}] {deployed.name}/{isos.APPLIANCE_ISO}"
    extra = {o.key: o.value for o in vm.config.extraConfig}
    config = vchconfig.decode(extra)
    assert config.id == deployed.id and config.name == deployed.name
    assert config.docker.port == deployed.config.docker.port
    assert config.resources.folder == f"/DC0/vm/{deployed.name}"
    assert config.container.bootstrap_image_path == f"[{DATASTORE}] {deployed.name}/{isos.BOOTSTRAP_ISO}"
    assert config.connection.token == session.target.password
    assert all(session.target.password not in str(v) for v in extra.values())  # sealed, never plain
    assert extra[vchconfig.session_started_key()] == "true"
    assert vm.guest.ipAddress == "127.0.0.1" and vm.guest.hostName == deployed.name
    # the ISOs are manifests booting this checkout's code
    for iso, module in ((isos.APPLIANCE_ISO, "vic_ref.appliance"), (isos.BOOTSTRAP_ISO, "vic_ref.tether")):
        spec = isos.read_manifest(session.download(op, deployed.home.join(iso)))
        assert spec["module"] == module and spec["pythonpath"] == [isos.repo_root()] and spec["version"]
    log = session.download(op, deployed.guest_log).decode()
    assert "serves the Docker API" in log


def test_find_and_a_second_create(deployed, sim_target, session, op):
    found = deploy.find(op, session, deployed.name)
    assert found.vm._moId == deployed.vm._moId and found.config == deployed.config
    assert deploy.find(op, session, "no-such-vch") is None
    with pytest.raises(errors.AlreadyExists):
        deploy.create(op, session, config_for(sim_target, name=deployed.name))


def test_ensure_reuses_and_reconfigures(deployed, sim_target, session, op, si):
    same = config_for(sim_target, name=deployed.name, port=deployed.config.docker.port)
    assert same.id != deployed.id
    before = deploy.refresh(op, session, deployed)
    again = deploy.ensure(op, session, same, timeout=30)
    assert again.vm._moId == deployed.vm._moId and again.id == deployed.id  # identity kept
    changed_port = free_port()
    moved = deploy.ensure(op, session, config_for(sim_target, name=deployed.name, port=changed_port), timeout=30)
    assert moved.vm._moId == deployed.vm._moId and moved.id == deployed.id
    assert moved.config.docker.port == changed_port and deploy.ping(moved.config)
    assert not deploy.ping(before.config)
    # powered off (as `vic-ref up` leaves it): ensure powers it back on
    deploy.power_off(op, session, moved)
    assert not deploy.ping(moved.config)
    back = deploy.ensure(op, session, config_for(sim_target, name=deployed.name, port=changed_port), timeout=30)
    assert back.power_state == "poweredOn" and deploy.ping(back.config)
    deployed.config = back.config


def test_a_boot_failure_is_reported_with_the_appliances_log(sim_target, session, op):
    config = config_for(sim_target, password="wrong password")
    began = time.monotonic()
    with pytest.raises(errors.Unavailable) as info:
        deploy.create(op, session, config, timeout=30)
    assert time.monotonic() - began < 15  # fails early, not at the timeout
    text = str(info.value)
    assert "the appliance failed to start" in text or "powered off" in text
    assert f"[{DATASTORE}] {config.name}/guest.log" in text
    assert "  | " in text  # the log's last lines are in the error
    deploy.destroy(op, session, config.name)


def test_a_busy_port_is_reported(sim_target, session, op):
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        config = config_for(sim_target, port=busy.getsockname()[1])
        with pytest.raises(errors.Unavailable) as info:
            deploy.create(op, session, config, timeout=30)
    assert "cannot listen on 127.0.0.1" in str(info.value)
    deploy.destroy(op, session, config.name)


def test_destroy_removes_the_vch_its_containers_and_files(sim_target, session, op, si):
    vch = deploy.create(op, session, config_for(sim_target), timeout=30)
    # a container VM in the VCH's folder, booting the placeholder tether from the VCH's bootstrap ISO
    cdrom = vim.vm.device.VirtualCdrom(
        key=-1, controllerKey=200, unitNumber=0,
        backing=vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName=vch.config.container.bootstrap_image_path))
    cid = uuid.uuid4().hex * 2
    # named as a finished container is: a VM still named after its bare ID is an interrupted create the VCH removes
    spec = vim.vm.ConfigSpec(name=f"c1-{cid[:12]}", guestId="otherGuest64", numCPUs=1, memoryMB=64,
                             files=vim.vm.FileInfo(vmPathName=f"[{DATASTORE}] {cid}"),
                             deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="add", device=cdrom)],
                             extraConfig=[vim.option.OptionValue(key="guestinfo.vice./common/id", value=cid)])
    container = session.run_task(op, vch.folder.CreateVM_Task, config=spec, pool=session.pool)
    session.run_task(op, container.PowerOnVM_Task)
    browser = session.content.fileManager
    deploy.destroy(op, session, vch.name)
    assert vm_folder(si, vch.name) is None
    assert deploy.find(op, session, vch.name) is None
    assert not deploy.ping(vch.config)
    for path in (vch.home, f"[{DATASTORE}] {cid}"):
        with pytest.raises(errors.NotFound):
            session.run_task(op, browser.DeleteDatastoreFile_Task, str(path), session.datacenter)
    with pytest.raises(errors.NotFound):
        deploy.destroy(op, session, vch.name)


def test_tls_with_client_verification(sim_target, session, op, tmp_path):
    import ssl
    tls = deploy.make_tls(tmp_path / "certs")
    assert deploy.make_tls(tmp_path / "certs") == tls  # reused, not remade
    assert {p.name for p in (tmp_path / "certs").iterdir()} >= {"ca.pem", "cert.pem", "key.pem"}
    config = config_for(sim_target, host_cert=tls.server_cert, host_key=tls.server_key, ca_certs=tls.ca_cert)
    vch = deploy.create(op, session, config, timeout=30, ssl_context=tls.client_ssl_context())
    try:
        assert vch.config.tls
        assert deploy.ping(vch.config, ssl_context=tls.client_ssl_context())
        assert not deploy.ping(vch.config)  # no client certificate: refused
        no_ca = ssl.create_default_context()
        no_ca.load_cert_chain(str(tls.cert_path / "cert.pem"), str(tls.cert_path / "key.pem"))
        assert not deploy.ping(vch.config, ssl_context=no_ca)  # the server's certificate isn't trusted
    finally:
        deploy.destroy(op, session, vch.name)


def test_manifests():
    spec = isos.read_manifest(isos.appliance_iso("9.9"))
    assert spec == {"module": "vic_ref.appliance", "args": [], "version": "9.9", "pythonpath": [isos.repo_root()]}
    assert isos.read_manifest(b"\x00CD001") is None
    assert json.loads(isos.bootstrap_iso())["vsphere_sim_guest"]["module"] == "vic_ref.tether"
