"""Session behaviour any vim25 server shows pyVmomi: SmartConnect, cookie, Login faults, Logout, Fetch."""
from __future__ import annotations

import requests
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim


def test_smartconnect_reads_about_and_current_session(si, vsphere):
    about = si.content.about
    assert about.apiType == "VirtualCenter"
    assert about.apiVersion.startswith("8.")
    session = si.content.sessionManager.currentSession
    assert session.userName.lower().endswith(vsphere.user.lower().split("@")[-1]) or session.userName == vsphere.user


def test_versions_document_advertises_vim25(vsphere):
    url = vsphere.url.rsplit("/sdk", 1)[0] + "/sdk/vimServiceVersions.xml"
    reply = requests.get(url, verify=False, timeout=10)
    assert reply.status_code == 200
    assert "<name>urn:vim25</name>" in reply.text


def test_wrong_password_is_invalid_login(si, vsphere):
    try:
        si.content.sessionManager.Login(vsphere.user, vsphere.password + "-wrong")
    except vim.fault.InvalidLogin:
        pass
    else:
        raise AssertionError("Login with a wrong password succeeded")


def test_smartconnect_with_wrong_password_fails(vsphere):
    from urllib.parse import urlsplit
    parts = urlsplit(vsphere.url)
    kwargs = {"disableSslCertValidation": True} if parts.scheme == "https" else {}
    try:
        SmartConnect(host=parts.hostname, port=parts.port, user=vsphere.user, pwd="definitely-wrong",
                     protocol=parts.scheme, **kwargs)
    except vim.fault.InvalidLogin:
        return
    raise AssertionError("SmartConnect with a wrong password succeeded")


def test_calls_after_logout_are_not_authenticated(vsphere):
    own = vsphere.connect()
    root = own.content.rootFolder
    assert root.name
    Disconnect(own)
    try:
        root.name  # noqa: B018 - the read is the test
    except vim.fault.NotAuthenticated:
        return
    raise AssertionError("a property read after Logout succeeded")


def test_unauthenticated_request_gets_not_authenticated(vsphere):
    """A raw SOAP call with no session cookie, as any HTTP client could send it."""
    body = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv='
            '"http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><RetrievePropertiesEx xmlns="urn:vim25">'
            '<_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>Folder</type>'
            '<pathSet>name</pathSet></propSet><objectSet><obj type="Folder">group-d1</obj></objectSet></specSet>'
            '<options/></RetrievePropertiesEx></soapenv:Body></soapenv:Envelope>')
    reply = requests.post(vsphere.url, data=body, verify=False, timeout=10,
                          headers={"Content-Type": "text/xml", "SOAPAction": "urn:vim25/8.0.3.0"})
    assert reply.status_code == 500
    assert "NotAuthenticated" in reply.text


def test_current_time_and_session_list(si):
    assert si.CurrentTime().year >= 2024
    sessions = si.content.sessionManager.sessionList
    assert any(s.key == si.content.sessionManager.currentSession.key for s in sessions)
