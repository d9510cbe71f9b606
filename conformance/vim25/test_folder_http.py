"""Datastore files over HTTP: `/folder/<path>?dcPath=<dc>&dsName=<ds>` (govmomi's Datastore.Upload / Download).

Authenticated by the vim25 session cookie or HTTP basic auth. Black-box against any vSphere; DELETE and the vSAN-root
refusal are sim-only.
"""
from __future__ import annotations

import hashlib
import os
import uuid
from types import SimpleNamespace
from urllib.parse import quote, urlsplit

import pytest
import requests
from pyVmomi import vim, vmodl

from .helpers import DS, VSAN, datacenter, wait


class _Http(requests.Session):
    """verify=False on each request: a session-wide `verify` loses to REQUESTS_CA_BUNDLE from the environment."""

    def request(self, *args, **kwargs):
        kwargs.setdefault("verify", False)
        return super().request(*args, **kwargs)


@pytest.fixture(scope="module")
def inv(vsphere, si):
    content = si.RetrieveContent()
    dc = datacenter(si)
    parts = urlsplit(vsphere.url)
    session = _Http()
    session.headers["Cookie"] = si._stub.cookie.split(";")[0]
    top = f"http-{uuid.uuid4().hex[:8]}"
    content.fileManager.MakeDirectory(f"[{DS}] {top}", dc)
    ns = SimpleNamespace(dc=dc, fm=content.fileManager, base=f"{parts.scheme}://{parts.netloc}", http=session,
                         top=top, vsphere=vsphere)
    yield ns
    try:
        wait(content.fileManager.DeleteDatastoreFile_Task(f"[{DS}] {top}", dc))
    except vmodl.MethodFault:
        pass


def url(inv, path, ds=DS, dc=None):
    return f"{inv.base}/folder/{quote(path)}?dcPath={quote(dc or inv.dc.name)}&dsName={quote(ds)}"


def test_put_get_roundtrip(inv):
    u = url(inv, f"{inv.top}/hello.txt")
    r = inv.http.put(u, data=b"hello world")
    assert r.status_code in (200, 201)
    r = inv.http.get(u)
    assert r.status_code == 200 and r.content == b"hello world"
    r = inv.http.put(u, data=b"replaced")
    assert r.status_code in (200, 201)
    assert inv.http.get(u).content == b"replaced"
    r = inv.http.head(u)
    assert r.status_code == 200 and r.headers["Content-Length"] == str(len(b"replaced"))


@pytest.mark.sim_only
def test_put_status_created_then_ok(inv):
    u = url(inv, f"{inv.top}/status.txt")
    assert inv.http.put(u, data=b"1").status_code == 201
    assert inv.http.put(u, data=b"2").status_code == 200


def test_uploaded_file_is_visible_to_the_api(inv):
    inv.http.put(url(inv, f"{inv.top}/seen.bin"), data=b"\x00" * 100)
    ds = next(d for d in inv.dc.datastore if d.name == DS)
    spec = vim.host.DatastoreBrowser.SearchSpec(matchPattern=["seen.bin"],
                                                details=vim.host.DatastoreBrowser.FileInfo.Details(fileSize=True))
    result = wait(ds.browser.SearchDatastore_Task(f"[{DS}] {inv.top}", spec))
    assert [(f.path, f.fileSize) for f in result.file] == [("seen.bin", 100)]


def test_streamed_upload_and_download(inv):
    """A chunked upload of 24 MB (bigger than one read), downloaded back intact."""
    chunk = os.urandom(1024 * 1024)
    digest = hashlib.sha256()

    def body():
        for _ in range(24):
            digest.update(chunk)
            yield chunk
    u = url(inv, f"{inv.top}/big.bin")
    r = inv.http.put(u, data=body())
    assert r.status_code in (200, 201), r.text
    with inv.http.get(u, stream=True) as r:
        assert r.status_code == 200 and r.headers["Content-Length"] == str(24 * 1024 * 1024)
        got = hashlib.sha256()
        for part in r.iter_content(256 * 1024):
            got.update(part)
    assert got.hexdigest() == digest.hexdigest()


def test_basic_auth(inv):
    u = url(inv, f"{inv.top}/basic.txt")
    auth = (inv.vsphere.user, inv.vsphere.password)
    r = requests.put(u, data=b"b", auth=auth, verify=False)
    assert r.status_code in (200, 201)
    assert requests.get(u, auth=auth, verify=False).content == b"b"


def test_unauthenticated_is_401(inv):
    u = url(inv, f"{inv.top}/hello.txt")
    assert requests.get(u, verify=False).status_code == 401
    assert requests.get(u, auth=(inv.vsphere.user, "wrong"), verify=False).status_code == 401
    r = requests.get(u, headers={"Cookie": 'vmware_soap_session="not-a-session"'}, verify=False)
    assert r.status_code == 401
    assert requests.put(url(inv, f"{inv.top}/x.txt"), data=b"x", verify=False).status_code == 401


def test_not_found(inv):
    assert inv.http.get(url(inv, f"{inv.top}/missing.txt")).status_code == 404
    assert inv.http.get(url(inv, "x.txt", ds="no-such-ds")).status_code == 404
    assert inv.http.put(url(inv, f"{inv.top}/no/dir/x.txt"), data=b"x").status_code == 404
    assert inv.http.get(url(inv, f"{inv.top}/hello.txt", dc="no-such-dc")).status_code == 404


@pytest.mark.sim_only
def test_delete(inv):
    u = url(inv, f"{inv.top}/gone.txt")
    inv.http.put(u, data=b"x")
    assert inv.http.delete(u).status_code == 204
    assert inv.http.get(u).status_code == 404
    assert inv.http.delete(u).status_code == 404


@pytest.mark.sim_only
def test_no_files_at_vsan_root(inv):
    r = inv.http.put(url(inv, "root.txt", ds=VSAN), data=b"x")
    assert r.status_code == 403


@pytest.mark.sim_only
def test_directory_listing_and_escape(inv):
    inv.http.put(url(inv, f"{inv.top}/listed.txt"), data=b"x")
    r = inv.http.get(url(inv, inv.top))
    assert r.status_code == 200 and "listed.txt" in r.text
    r = inv.http.get(f"{inv.base}/folder/{inv.top}/../../../etc/passwd?dcPath={inv.dc.name}&dsName={DS}")
    assert r.status_code in (400, 404)
