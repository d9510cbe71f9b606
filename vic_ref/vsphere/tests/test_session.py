"""Session against the embedded sim over real HTTP(S): login, faults, re-login, keep-alive, op ids, TLS options."""
from __future__ import annotations

import hashlib
import re
import socket
import ssl
import threading
import time

import pytest

from vic_ref import errors
from vic_ref.trace import Operation
from vic_ref.vsphere import Session, Target, vim

from .conftest import call_count, target_for


def test_connect_reads_about_and_logs_in_once(sim_target, op):
    session = Session(target_for(sim_target)).connect(op)
    try:
        assert session.about.apiType == "VirtualCenter" and session.is_vc
        assert session.logins == 1
        assert session.session_key(op)
        assert session.current_time(op).year >= 2024
    finally:
        session.close(op)


def test_wrong_password_is_authentication_failed(sim_target, op):
    target = target_for(sim_target)
    target.password += "-wrong"
    with pytest.raises(errors.AuthenticationFailed) as info:
        Session(target).connect(op)
    assert info.value.fault_name == "vim.fault.InvalidLogin"
    assert info.value.op_id == op.id


def test_unreachable_target_is_unavailable(op):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(errors.Unavailable):
        Session(Target(f"http://127.0.0.1:{port}/sdk", "u", "p", keepalive=None)).connect(op)


def test_a_url_that_is_not_an_sdk_is_unavailable(sim_target, op):
    target = target_for(sim_target)
    target.url = target.url.replace("/sdk", "/nothing-here")
    with pytest.raises(errors.Unavailable, match="not a vSphere SDK endpoint"):
        Session(target).connect(op)


def test_bad_scheme_is_invalid_argument(op):
    with pytest.raises(errors.InvalidArgument):
        Session(Target("ftp://host/sdk")).connect(op)


def test_relogin_after_the_server_forgets_every_session(sim_target, op):
    session = Session(target_for(sim_target)).connect(op)
    try:
        before = session.session_key(op)
        sim_target.sim.end_all_sessions()  # what a restart of the sim (or vCenter) does to us
        root = session.content.rootFolder
        assert session.retrieve_one(op, root, ["name"])["name"]  # the call itself succeeds
        assert session.logins == 2
        after = session.session_key(op)
        assert after and after != before
    finally:
        session.close(op)


def test_relogin_from_many_threads_at_once(sim_target, op):
    session = Session(target_for(sim_target)).connect(op)
    try:
        session.session_key(op)
        sim_target.sim.end_all_sessions()
        failures, barrier = [], threading.Barrier(8)

        def worker(i):
            child = op.child(f"worker {i}")
            barrier.wait()
            try:
                session.retrieve_one(child, session.content.rootFolder, ["name"])
            except Exception as err:  # noqa: BLE001 - collected for the assertion
                failures.append(err)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert failures == []
        assert 2 <= session.logins <= 4  # logins are serialized; threads that lost the race reuse the new one
    finally:
        session.close(op)


def test_keepalive_calls_current_time(sim_target, op):
    before = call_count(sim_target, "CurrentTime")
    session = Session(target_for(sim_target, keepalive=0.05)).connect(op)
    try:
        deadline = time.monotonic() + 5
        while call_count(sim_target, "CurrentTime") < before + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert call_count(sim_target, "CurrentTime") >= before + 3
    finally:
        session.close(op)
    stopped = call_count(sim_target, "CurrentTime")
    time.sleep(0.2)
    assert call_count(sim_target, "CurrentTime") == stopped  # close stops the keep-alive


def test_every_call_carries_the_operation_id(session, op):
    sent = []

    def capture(request: bytes) -> bytes:
        sent.append(request.decode("utf-8", "replace"))
        return request

    child = op.child("traced")
    with session._soap.requestModifier(capture):  # test-only peek at the SOAP the stub sends
        session.retrieve_one(child, session.content.rootFolder, ["name"])
        session.current_time(op)
    assert re.search(rf"<operationID[^>]*>{re.escape(child.id)}</operationID>", sent[0])
    assert re.search(rf"<operationID[^>]*>{re.escape(op.id)}</operationID>", sent[1])


def test_faults_become_vic_errors(session, op):
    gone = vim.Folder("group-v999999", session._stub)
    with pytest.raises(errors.NotFound) as info:
        session.call(op, getattr, gone, "name")
    assert info.value.fault_name == "vmodl.fault.ManagedObjectNotFound"
    with pytest.raises(errors.NotFound):
        session.retrieve(op, [gone], ["name"])
    assert session.retrieve(op, [gone, session.content.rootFolder], ["name"], ignore_missing=True)[0].moid == \
        session.content.rootFolder._moId


def test_close_logs_out(sim_target, op):
    session = Session(target_for(sim_target)).connect(op)
    key = session.session_key(op)
    session.close(op)
    assert key not in {s.key for s in sim_target.sim.sessions.authenticated()}
    assert session.closed
    session.close(op)  # twice is fine
    with pytest.raises(errors.InvalidState):  # and it doesn't quietly log in again
        session.session_key(op)


def test_populate_resolves_the_target_inventory(session, op):
    assert session.datacenter is not None and session.datacenter_path == "/DC0"
    assert isinstance(session.pool, vim.ResourcePool)
    assert isinstance(session.compute_resource, vim.ComputeResource)
    assert isinstance(session.vm_folder, vim.Folder)
    assert session.retrieve_one(op, session.datastore, ["name"])["name"] == "LocalDS_0"


def test_populate_reports_what_it_cannot_find(sim_target, op):
    with pytest.raises(errors.NotFound, match="Failure finding ds"):
        Session.open(op, target_for(sim_target, datastore="no-such-ds", compute_resource="DC0_C0"), populate=True)


# -- TLS --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_server(sim_target):
    return sim_target.sim.serve("127.0.0.1:0", tls=True)  # closed with the sim


def _thumbprint(server, algorithm="sha256") -> str:
    der = ssl.PEM_cert_to_DER_cert(server.cert_path.read_text())
    digest = hashlib.new(algorithm, der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


@pytest.mark.parametrize("options", ["insecure", "thumbprint", "sha1", "ca_file"])
def test_https_options(sim_target, tls_server, op, options):
    target = Target(tls_server.url, sim_target.user, sim_target.password, keepalive=None)
    if options == "insecure":
        target.insecure = True
    elif options == "thumbprint":
        target.thumbprint = _thumbprint(tls_server)
    elif options == "sha1":
        target.thumbprint = _thumbprint(tls_server, "sha1")
    else:
        target.ca_file = str(tls_server.cert_path)
    session = Session(target).connect(op)
    try:
        assert session.session_key(op)
    finally:
        session.close(op)


def test_https_refuses_an_unknown_certificate(sim_target, tls_server, op):
    with pytest.raises(errors.Unavailable):
        Session(Target(tls_server.url, sim_target.user, sim_target.password, keepalive=None)).connect(op)
    wrong = Target(tls_server.url, sim_target.user, sim_target.password, keepalive=None, thumbprint="00" * 32)
    with pytest.raises(errors.PermissionDenied):
        Session(wrong).connect(op)


def test_operation_is_restored_after_a_call(session):
    from pyVmomi import VmomiSupport
    outer = Operation.new("outer")
    with session.operation(outer):
        with session.operation(outer.child("inner")):
            pass
        assert VmomiSupport.GetRequestContext()["operationID"] == outer.id
    assert "operationID" not in VmomiSupport.GetRequestContext()
