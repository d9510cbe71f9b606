"""Hostile and broken input: every request gets a SOAP fault (HTTP 500, parseable) or a clean HTTP error, never a
crash, a dropped connection on a well-framed request, or a hang; and the sim keeps serving (a CurrentTime round trip
after each case)."""
from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyVmomi import vim, vmodl

pytestmark = [pytest.mark.sim_only, pytest.mark.timeout(60)]

SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
HEADERS = {"SOAPAction": '"urn:vim25/8.0.3.0"', "Content-Type": "text/xml; charset=utf-8"}
ENVELOPE = ('<?xml version="1.0" encoding="UTF-8"?>'
            f'<soapenv:Envelope xmlns:soapenv="{SOAPENV}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soapenv:Body>{}</soapenv:Body></soapenv:Envelope>')
CURRENT_TIME = '<CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></CurrentTime>'
PC = '<_this type="PropertyCollector">propertyCollector</_this>'


def envelope(inner: str) -> bytes:
    return ENVELOPE.format(inner).encode()


@pytest.fixture(scope="module")
def target(sim_target):
    return sim_target


@pytest.fixture(scope="module")
def si(target):
    from pyVim.connect import Disconnect
    instance = target.connect()
    yield instance
    try:
        Disconnect(instance)
    except Exception:  # the session may be gone (a reset ends every session)
        pass


@pytest.fixture(scope="module")
def http(target):
    """A raw HTTP session logged in through a hand-written Login, for requests pyVmomi would refuse to build."""
    session = requests.Session()
    login = (f'<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this>'
             f'<userName>{target.user}</userName><password>{target.password}</password></Login>')
    response = session.post(target.url, data=envelope(login), headers=HEADERS, timeout=10)
    assert response.status_code == 200, response.text
    # The cookie is marked Secure (as vCenter's is), so requests would not send it over plain HTTP: send it by hand.
    session.headers["Cookie"] = response.headers["Set-Cookie"].split(";", 1)[0]
    yield session
    session.close()


@pytest.fixture(autouse=True)
def still_serving(si):
    """After every case the sim must still answer a typed round trip."""
    yield
    assert si.CurrentTime() is not None


def fault_of(response: requests.Response) -> tuple[str, str]:
    """(detail element name, faultstring) of a SOAP fault response; fails the test if it is not one."""
    assert response.status_code == 500, (response.status_code, response.text[:300])
    root = ET.fromstring(response.content)
    fault = root.find(f"{{{SOAPENV}}}Body/{{{SOAPENV}}}Fault")
    assert fault is not None, response.text[:300]
    assert fault.findtext("faultcode") == "ServerFaultCode"
    detail = fault.find("detail")
    assert detail is not None and len(detail), response.text[:300]
    return detail[0].tag.rpartition("}")[2], fault.findtext("faultstring") or ""


def post(target, body: bytes, session=None, headers=HEADERS) -> requests.Response:
    return (session or requests).post(target.url, data=body, headers=headers, timeout=10)


# -- malformed SOAP ----------------------------------------------------------------------------------------------------
MALFORMED = {
    "empty": b"",
    "garbage": b"this is not xml at all",
    "binary": bytes(range(256)) * 4,
    "invalid utf-8": b'<?xml version="1.0" encoding="UTF-8"?><a>\xff\xfe</a>',
    "not an envelope": b"<?xml version='1.0'?><hello/>",
    "envelope in no namespace": b"<Envelope><Body><CurrentTime/></Body></Envelope>",
    "truncated": envelope(CURRENT_TIME)[:-40],
    "no method": envelope(""),
    "two methods": envelope(CURRENT_TIME * 2),
    "missing _this": envelope('<CurrentTime xmlns="urn:vim25"></CurrentTime>'),
    "_this without type": envelope('<CurrentTime xmlns="urn:vim25"><_this>ServiceInstance</_this></CurrentTime>'),
    "_this of an unknown type": envelope(
        '<CurrentTime xmlns="urn:vim25"><_this type="NoSuchType">ServiceInstance</_this></CurrentTime>'),
    "unknown parameter": envelope(
        '<CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this><bogus>1</bogus>'
        '</CurrentTime>'),
    "parameter twice": envelope(
        '<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>a</userName>'
        '<userName>b</userName><password>x</password></Login>'),
    "unknown xsi:type": envelope(
        f'<RetrievePropertiesEx xmlns="urn:vim25">{PC}<specSet xsi:type="Bogus"></specSet><options/>'
        '</RetrievePropertiesEx>'),
    "undefined entity": envelope(
        '<CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">&foo;</_this></CurrentTime>'),
    "deep nesting": envelope(
        f'<RetrievePropertiesEx xmlns="urn:vim25">{PC}<specSet>' + "<propSet>" * 20000 + "</propSet>" * 20000
        + "</specSet><options/></RetrievePropertiesEx>"),
    "mismatched tags": envelope('<CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">x</this></CurrentTime>'),
}


@pytest.mark.parametrize("body", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_request_gets_invalid_request(target, body):
    name, message = fault_of(post(target, body))
    assert name == "InvalidRequestFault", message


# -- entity expansion and DOCTYPE --------------------------------------------------------------------------------------
BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                            for i in range(1, 10))
                  + ']>' + ENVELOPE.format('<CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">&lol9;'
                                           '</_this></CurrentTime>').split("?>", 1)[1])
DOCTYPES = {
    "billion laughs": BILLION_LAUGHS.encode(),
    "external entity": (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                        + ENVELOPE.format('<CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">&e;'
                                          '</_this></CurrentTime>').split("?>", 1)[1].encode()),
    "parameter entity": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x"> %p;]><x/>',
    "bare doctype": b'<?xml version="1.0"?><!DOCTYPE soapenv:Envelope>'
                    + ENVELOPE.format(CURRENT_TIME).split("?>", 1)[1].encode(),
}


@pytest.mark.parametrize("body", list(DOCTYPES.values()), ids=list(DOCTYPES))
def test_doctype_and_entities_are_refused(target, body):
    name, message = fault_of(post(target, body))
    assert name == "InvalidRequestFault"
    assert "root:" not in message  # nothing of /etc/passwd leaks back


# -- unknown methods, morefs and wrong types ---------------------------------------------------------------------------
def test_unknown_method_is_method_not_found(target, http):
    body = envelope('<NoSuchMethod xmlns="urn:vim25"><_this type="Folder">group-d1</_this></NoSuchMethod>')
    name, message = fault_of(post(target, body, http))
    assert name == "MethodNotFoundFault" and "NoSuchMethod" in message


def test_unimplemented_wsdl_method_is_method_not_found_in_pyvmomi(si, target):
    """A real vim25 method the sim does not implement comes back to pyVmomi as vmodl.fault.MethodNotFound."""
    implemented = set(requests.get(target.control_url + "/about", timeout=10).json()["methods"]
                      .get("ServiceInstance", []))
    if "RetrieveProductComponents" in implemented:
        pytest.skip("RetrieveProductComponents is implemented now; pick another unimplemented method")
    with pytest.raises(vmodl.fault.MethodNotFound) as info:
        si.RetrieveProductComponents()
    assert info.value.method == "RetrieveProductComponents"


def test_unknown_moref_is_managed_object_not_found(si):
    stub = si._stub
    with pytest.raises(vmodl.fault.ManagedObjectNotFound) as info:
        vim.VirtualMachine("vm-does-not-exist", stub=stub).name  # noqa: B018 (a Fetch)
    assert info.value.obj._moId == "vm-does-not-exist"
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        vim.Folder("group-nope", stub=stub).CreateFolder("x")


def test_moref_of_the_wrong_type_is_not_found(si):
    # ServiceInstance exists, but not as a Folder: vCenter treats (type, id) as the identity
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        vim.Folder("ServiceInstance", stub=si._stub).CreateFolder("x")


def test_folder_where_a_resource_pool_is_expected(target, http):
    body = envelope('<CreateVM_Task xmlns="urn:vim25"><_this type="Folder">group-d1</_this>'
                    '<config><name>x</name></config><pool type="Folder">group-d1</pool></CreateVM_Task>')
    name, _ = fault_of(post(target, body, http))
    assert name in {"InvalidArgumentFault", "InvalidRequestFault", "ManagedObjectNotFoundFault",
                    "MethodNotFoundFault", "InvalidTypeFault", "NotSupportedFault"}


def test_non_entity_where_an_entity_is_expected(target, http):
    body = envelope('<CreateContainerView xmlns="urn:vim25"><_this type="ViewManager">ViewManager</_this>'
                    '<container type="PropertyCollector">propertyCollector</container><type>Folder</type>'
                    '<recursive>true</recursive></CreateContainerView>')
    name, _ = fault_of(post(target, body, http))
    assert name in {"InvalidArgumentFault", "InvalidRequestFault", "ManagedObjectNotFoundFault"}


@pytest.mark.parametrize("inner", [
    f'<WaitForUpdatesEx xmlns="urn:vim25">{PC}<version></version><options><maxWaitSeconds>abc</maxWaitSeconds>'
    "</options></WaitForUpdatesEx>",
    f'<RetrievePropertiesEx xmlns="urn:vim25">{PC}<specSet><propSet><type>Folder</type><pathSet>name</pathSet>'
    '</propSet><objectSet><obj type="Folder">group-d1</obj></objectSet></specSet>'
    "<options><maxObjects>many</maxObjects></options></RetrievePropertiesEx>",
    f'<RetrievePropertiesEx xmlns="urn:vim25">{PC}<specSet><propSet><type>Folder</type><all>maybe</all>'
    '</propSet><objectSet><obj type="Folder">group-d1</obj></objectSet></specSet><options/></RetrievePropertiesEx>',
], ids=["string for int", "string for int in options", "string for bool"])
def test_wrong_scalar_types(target, http, inner):
    name, _ = fault_of(post(target, envelope(inner), http))
    assert name == "InvalidRequestFault"


@pytest.mark.parametrize("inner", [
    f'<RetrievePropertiesEx xmlns="urn:vim25">{PC}</RetrievePropertiesEx>',
    '<CreateFolder xmlns="urn:vim25"><_this type="Folder">group-d1</_this></CreateFolder>',
    '<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this></Login>',
], ids=["RetrievePropertiesEx without specSet", "CreateFolder without name", "Login without user"])
def test_missing_required_parameter(target, http, inner):
    name, message = fault_of(post(target, envelope(inner), http))
    assert name == "InvalidRequestFault" and "missing" in message


def test_fetch_of_an_unknown_property(target, http):
    body = envelope('<Fetch xmlns="urn:vim25"><_this type="Folder">group-d1</_this><prop>noSuchProp</prop></Fetch>')
    name, _ = fault_of(post(target, body, http))
    assert name == "InvalidPropertyFault"


def test_calls_before_login_are_not_authenticated(target):
    body = envelope(f'<RetrievePropertiesEx xmlns="urn:vim25">{PC}<specSet><propSet><type>Folder</type>'
                    '<pathSet>name</pathSet></propSet><objectSet><obj type="Folder">group-d1</obj></objectSet>'
                    "</specSet><options/></RetrievePropertiesEx>")
    name, _ = fault_of(post(target, body))
    assert name == "NotAuthenticatedFault"


def test_unknown_soap_action_version_still_answers(target):
    response = post(target, envelope(CURRENT_TIME), headers={**HEADERS, "SOAPAction": '"urn:vim25/99.9"'})
    assert response.status_code == 200 and b"CurrentTimeResponse" in response.content


# -- HTTP framing and sizes --------------------------------------------------------------------------------------------
def raw_exchange(target, data: bytes, timeout=10.0) -> bytes:
    """Send raw bytes, read until the server answers or closes; b'' means a closed connection."""
    parts = urlsplit(target.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    break
        except ConnectionResetError:
            pass
        return b"".join(chunks)


def status_of(reply: bytes) -> int | None:
    if not reply.startswith(b"HTTP/1."):
        return None
    return int(reply.split(b" ", 2)[1])


@pytest.mark.parametrize("head", [
    b"POST /sdk HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\nabc",
    b"POST /sdk HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /sdk HTTP/1.1\r\nHost: x\r\nContent-Length: twelve\r\n\r\n",
    b"POST /sdk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFF\r\nabc\r\n",
], ids=["huge length", "negative length", "non-numeric length", "huge chunk"])
def test_oversized_or_bad_length_is_refused_without_reading(target, head):
    assert status_of(raw_exchange(target, head)) == 413


def test_malformed_chunking_is_a_clean_error_or_close(target):
    reply = raw_exchange(target, b"POST /sdk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n"
                                 b"0\r\n\r\n")
    assert reply == b"" or status_of(reply) in (400, 413, 500)


def test_body_over_the_soap_limit(target):
    from vsphere_sim import soap
    body = envelope(" " * (soap.MAX_REQUEST_BYTES + 1) + CURRENT_TIME)
    name, message = fault_of(post(target, body))
    assert name == "InvalidRequestFault" and "exceeds" in message


@pytest.mark.parametrize("request_bytes,expected", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"PATCH /sdk HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    (b"GET /sdk HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    (b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 404),
    (b"POST /sdk HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n", 431),
], ids=["bad request line", "unsupported verb", "GET /sdk", "unknown path", "header too long"])
def test_http_level_errors(target, request_bytes, expected):
    reply = raw_exchange(target, request_bytes)
    if status_of(reply) is None:  # http.server answers a one-word request line the HTTP/0.9 way: the page only
        assert f"Error code: {expected}".encode() in reply
    else:
        assert status_of(reply) in (expected, 400)


def test_a_stalled_client_does_not_block_others(target, si):
    parts = urlsplit(target.url)
    stalled = []
    try:
        for _ in range(5):
            sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
            sock.sendall(b"POST /sdk HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n<soapenv:Env")
            stalled.append(sock)
        half = socket.create_connection((parts.hostname, parts.port), timeout=10)
        half.sendall(b"POST /sdk HTT")  # not even a request line
        stalled.append(half)
        assert si.CurrentTime() is not None
    finally:
        for sock in stalled:
            sock.close()


def test_client_disconnecting_mid_body(target):
    parts = urlsplit(target.url)
    for _ in range(10):
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
            sock.sendall(b"POST /sdk HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + envelope(CURRENT_TIME)[:50])


def test_many_bad_requests_at_once(target):
    bodies = list(MALFORMED.values())[:8] + list(DOCTYPES.values())

    def one(i):
        return fault_of(post(target, bodies[i % len(bodies)]))[0]

    with ThreadPoolExecutor(16) as pool:
        names = list(pool.map(one, range(96), timeout=50))
    assert set(names) == {"InvalidRequestFault"}


# -- fuzzing a valid request -------------------------------------------------------------------------------------------
VALID = envelope(f'<RetrievePropertiesEx xmlns="urn:vim25">{PC}<specSet><propSet><type>Folder</type>'
                 '<pathSet>name</pathSet></propSet><objectSet><obj type="Folder">group-d1</obj>'
                 "<skip>false</skip></objectSet></specSet><options><maxObjects>10</maxObjects></options>"
                 "</RetrievePropertiesEx>")


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 3), st.binary(max_size=6)),
                min_size=1, max_size=4))
def test_mutated_requests_get_an_answer(target, http, mutations):
    """Byte-level mutations of a valid call: the answer is a result or a SOAP fault, never a dropped connection."""
    body = bytearray(VALID)
    for position, kind, data in mutations:
        position = min(position, len(body))
        if kind == 0:
            body[position:position + len(data)] = data
        elif kind == 1:
            body[position:position] = data
        elif kind == 2:
            del body[position:position + len(data) + 1]
        else:
            body[position:position] = b"<x>" if data else b"</"
    response = post(target, bytes(body), http)
    if response.status_code != 200:
        fault_of(response)


def test_property_collector_still_works_afterwards(si):
    assert si.RetrieveContent().rootFolder.name
