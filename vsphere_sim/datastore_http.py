"""HTTP `/folder/<path>?dcPath=<datacenter>&dsName=<datastore>`: datastore files over GET, HEAD, PUT and DELETE.

What govmomi's Datastore.Upload/Download and pyVmomi users do for image and metadata transfer. A request needs the
vim25 session cookie of a logged-in session, or HTTP basic auth with the sim's user and password. Bodies stream in
chunks (never whole in memory); an upload replaces the file atomically when it completes. The sim lock is held only to
resolve the path and to commit, never while bytes move.
"""
from __future__ import annotations

import base64
import binascii
import email.utils
import html
import logging
import os
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, quote, unquote, urlsplit

from pyVmomi import vim, vmodl

from .datastore_paths import DatastorePath, clean_path
from .sessions import COOKIE_NAME

log = logging.getLogger("vsphere_sim.datastore_http")

CHUNK = 1024 * 1024
DRAIN_LIMIT = 1024 * 1024
MAX_CHUNK_LINE = 1024


class _HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# fault → HTTP status, most specific first
_STATUS = [
    (vim.fault.FileNotFound, 404),
    (vim.fault.InvalidDatastorePath, 400),
    (vim.fault.InvalidDatastore, 404),
    (vim.fault.CannotCreateFile, 403),
    (vim.fault.NoPermission, 403),
    (vim.fault.NotAFile, 409),
    (vim.fault.NotADirectory, 409),
    (vim.fault.FileLocked, 409),
    (vim.fault.NoDiskSpace, 507),
    (vmodl.fault.ManagedObjectNotFound, 404),
]


def _status_for(fault: vmodl.MethodFault) -> int:
    for cls, status in _STATUS:
        if isinstance(fault, cls):
            return status
    return 500


def handle_folder_request(handler, method: str) -> None:
    handler._folder_body_read = False  # one handler serves every request of a keep-alive connection
    try:
        _handle(handler, method)
    except _HttpError as err:
        _error(handler, err.status, err.message)
    except vmodl.MethodFault as fault:
        _error(handler, _status_for(fault), fault.msg or type(fault).__name__)
    except (ConnectionError, TimeoutError):
        handler.close_connection = True
    except Exception:  # a sim bug: answer 500 and keep serving
        log.exception("/folder %s %s failed", method, handler.path)
        _error(handler, 500, "Internal server error")


def _error(handler, status: int, message: str):
    if handler.command in ("PUT", "POST") and not getattr(handler, "_folder_body_read", False):
        # the body is unread: drain a small one so the connection stays usable, else close after answering
        try:
            length = int(handler.headers.get("Content-Length") or -1)
        except ValueError:
            length = -1
        if 0 <= length <= DRAIN_LIMIT and "chunked" not in handler.headers.get("Transfer-Encoding", "").lower():
            handler.rfile.read(length)
        else:
            handler.close_connection = True
    headers = {"WWW-Authenticate": 'Basic realm="VMware HTTP server"'} if status == 401 else None
    handler._send(status, (message + "\n").encode(), "text/plain; charset=utf-8", headers=headers)


def _handle(handler, method: str):
    sim = handler.server.sim
    url = urlsplit(handler.path)
    if url.path != "/folder" and not url.path.startswith("/folder/"):
        raise _HttpError(404, "Not found")
    if not _authorized(handler, sim):
        raise _HttpError(401, "Unauthorized: log in to the vim25 API or use basic authentication")
    query = parse_qs(url.query)
    ds_name = (query.get("dsName") or [None])[0]
    dc_path = (query.get("dcPath") or [None])[0]
    raw_path = unquote(url.path[len("/folder"):])
    if ds_name is None:
        if method in ("GET", "HEAD") and not raw_path.strip("/"):
            return _send_datastore_list(handler, sim, dc_path)
        raise _HttpError(404, "Not found: dsName is required")
    fs = sim.datastores
    with sim.lock:
        dc = _datacenter(sim, dc_path)
        dspath, ds = fs.resolve(DatastorePath(ds_name, clean_path(raw_path, raw_path)), dc)
        local = fs.local(dspath)
        if method in ("GET", "HEAD"):
            if local.is_dir() and not local.is_symlink():
                names = fs.list_dir(dspath)
                friendly = {u: n for n, u in fs.namespaces(ds).items()} if ds.is_vsan and dspath.is_root else {}
                return _send_listing(handler, dspath, names, friendly, dc_path)
            if local.is_symlink() or not local.is_file():
                raise _HttpError(404, f"File {dspath} was not found")
            try:
                handle = open(local, "rb")
                size = os.fstat(handle.fileno()).st_size
                mtime = os.fstat(handle.fileno()).st_mtime
            except OSError:
                raise _HttpError(404, f"File {dspath} was not found") from None
        elif method == "PUT":
            existed = local.is_file()
            writer = fs.open_write(dspath)
        elif method == "DELETE":
            fs.delete(dspath)
            handler._send(204, b"", "text/plain")
            return
        else:
            raise _HttpError(405, "Method not allowed")
    if method in ("GET", "HEAD"):
        with handle:
            _send_file(handler, handle, size, mtime)
        return
    # PUT: stream without the lock, commit under it
    try:
        for chunk in _body_chunks(handler):
            writer.write(chunk)
    except BaseException:
        writer.abort()
        handler.close_connection = True
        raise
    handler._folder_body_read = True
    with sim.lock:
        writer.close()
    status = 200 if existed else 201
    handler._send(status, b"", "text/plain")


def _authorized(handler, sim) -> bool:
    cookie_header = handler.headers.get("Cookie")
    if cookie_header:
        try:
            jar = SimpleCookie(cookie_header)
        except CookieError:
            jar = None
        if jar is not None and COOKIE_NAME in jar:
            session = sim.sessions.get(jar[COOKIE_NAME].value)
            if session is not None and session.authenticated:
                session.touch()
                return True
    auth = handler.headers.get("Authorization") or ""
    if auth[:6].lower() == "basic ":
        try:
            user, _, password = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return user == sim.user and password == sim.password
    return False


def _datacenter(sim, dc_path: str | None):
    """The datacenter at an inventory path (`DC0`, `folder/DC0`); None for no path or ESX's `ha-datacenter`."""
    if not dc_path or dc_path == "ha-datacenter":
        return None
    node = sim.root_folder()
    for name in [p for p in dc_path.strip("/").split("/") if p]:
        found = None
        for ref in node.props.get("childEntity") or ():
            child = sim.registry.find(ref._moId)
            if child is not None and child.props.get("name") == name:
                found = child
                break
        if found is None:
            raise _HttpError(404, f"Datacenter {dc_path} was not found")
        node = found
    if not isinstance(node.ref, vim.Datacenter):
        raise _HttpError(404, f"Datacenter {dc_path} was not found")
    return node.ref


def _body_chunks(handler):
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        while True:
            line = handler.rfile.readline(MAX_CHUNK_LINE)
            if not line:
                raise ConnectionError("request body ended early")
            try:
                size = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                raise _HttpError(400, "Malformed chunked body") from None
            if size == 0:
                while handler.rfile.readline(MAX_CHUNK_LINE) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            yield from _read_counted(handler.rfile, size)
            handler.rfile.readline(MAX_CHUNK_LINE)
    else:
        try:
            remaining = int(handler.headers.get("Content-Length") or 0)
        except ValueError:
            raise _HttpError(400, "Malformed Content-Length") from None
        if remaining < 0:
            raise _HttpError(400, "Malformed Content-Length")
        yield from _read_counted(handler.rfile, remaining)


def _read_counted(rfile, size: int):
    """`size` bytes of the body, in pieces of at most CHUNK; ConnectionError when the client sends fewer."""
    while size:
        data = rfile.read(min(size, CHUNK))
        if not data:
            raise ConnectionError("request body ended early")
        size -= len(data)
        yield data


def _send_file(handler, handle, size: int, mtime: float):
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Length", str(size))
    handler.send_header("Last-Modified", email.utils.formatdate(mtime, usegmt=True))
    handler.end_headers()
    if handler.command == "HEAD":
        return
    remaining = size
    while remaining > 0:
        data = handle.read(min(CHUNK, remaining))
        if not data:
            break
        handler.wfile.write(data)
        remaining -= len(data)
    if remaining:
        handler.close_connection = True  # the file shrank under us; the length we sent is a lie


def _send_listing(handler, dspath: DatastorePath, names, friendly, dc_path):
    query = f"?dcPath={quote(dc_path or '')}&dsName={quote(dspath.datastore)}"
    base = "/folder/" + quote(dspath.path) + ("/" if dspath.path else "")
    rows = [f'<tr><td><a href="{html.escape(base + quote(n) + query)}">{html.escape(friendly.get(n, n))}</a></td></tr>'
            for n in names]
    title = html.escape(str(dspath))
    body = (f"<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>Index of {title}</h1>"
            f"<table>{''.join(rows)}</table></body></html>").encode()
    handler._send(200, body, "text/html; charset=utf-8")


def _send_datastore_list(handler, sim, dc_path):
    with sim.lock:
        dc = _datacenter(sim, dc_path)
        stores = [ds for ds in sim.registry.of_type(vim.Datastore)
                  if dc is None or (ds.datacenter() is not None and ds.datacenter().moid == dc._moId)]
        names = sorted(ds.name for ds in stores)
    rows = [f'<tr><td><a href="/folder?dcPath={quote(dc_path or "")}&amp;dsName={quote(n)}">{html.escape(n)}</a>'
            f"</td></tr>" for n in names]
    body = (f"<!DOCTYPE html><html><head><title>Datastores</title></head><body><table>{''.join(rows)}</table>"
            f"</body></html>").encode()
    handler._send(200, body, "text/html; charset=utf-8")
