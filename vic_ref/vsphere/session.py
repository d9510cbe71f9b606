"""Session: one logged-in connection to a vSphere target (VIC's pkg/vsphere/session), the way in for the rest.

A target is a URL, a user and a password (plus TLS options and the inventory paths VIC's session.Config carries).
`Session.connect()` negotiates the API version from `/sdk/vimServiceVersions.xml`, logs in, and keeps the session alive
with a background `CurrentTime` every `keepalive` seconds. Every call goes through a pyVmomi SessionOrientedStub
whose login method we supply: when vSphere answers `NotAuthenticated` (the session expired, or the sim restarted and
forgot it) the stub logs in again and retries the call, so callers never see the loss. Objects that belong to a
session (property collectors, views) die with it; the helpers that use them (task waits, view retrieval) start over
when that happens.

Thread safety, which the port layer relies on when it calls from an asyncio app through a thread pool:
- pyVmomi's SoapStubAdapter takes an HTTP connection from a lock-guarded pool for each call, so calls from several
  threads run in parallel on separate connections; the session cookie is one attribute, replaced atomically.
- The SOAP `operationID` header comes from pyVmomi's request context, which is thread-local: `operation(op)` sets it
  for the calling thread only.
- The stub serializes logins under its own lock and re-reads `currentSession` before logging in, so threads that all
  lost the session at once log in once.
- At most `max_in_flight` calls are on the wire at a time (VIC's LimitConcurrency); a long poll holds a slot.
- A task wait first reads the task once through the session's default collector (RetrievePropertiesEx keeps no state
  there, so threads can share it); a task still running is waited for on a property collector of the wait's own, never
  a shared one, so concurrent waits don't steal each other's updates.
- The cached inventory (datacenter, pool, folder, datastore) is set by `populate()` before the session is shared.
Caveat (pyVmomi's): after a socket error the stub retries the call, so a request the server had already received may
run twice; the sim only closes connections when it stops.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

from pyVmomi import SoapAdapter, VmomiSupport, vim

from .. import errors
from ..trace import Operation
from . import faults

log = logging.getLogger(__name__)

DEFAULT_KEEPALIVE = 300.0
DEFAULT_HTTP_TIMEOUT = 120.0
DEFAULT_MAX_IN_FLIGHT = 32


@dataclass
class Target:
    """Where and how to connect, and which inventory to use (VIC session.Config; `vic-machine` flags)."""
    url: str
    user: str = ""
    password: str = ""
    # TLS: `insecure` skips verification; `thumbprint` pins the server certificate (SHA-1/256/512, `:` optional)
    insecure: bool = False
    thumbprint: str | None = None
    ca_file: str | None = None
    # inventory: names or paths, None = the only one there is (VIC's --target datacenter, --compute-resource,
    # --image-store datastore)
    datacenter: str | None = None
    compute_resource: str | None = None
    datastore: str | None = None
    # seconds between keep-alive calls; None or 0 = none
    keepalive: float | None = DEFAULT_KEEPALIVE
    http_timeout: float = DEFAULT_HTTP_TIMEOUT
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs) -> Target | None:
        """VSPHERE_URL / VSPHERE_USER / VSPHERE_PASSWORD (and VSPHERE_INSECURE=1), or None without a URL."""
        environ = os.environ if environ is None else environ
        url = environ.get("VSPHERE_URL")
        if not url:
            return None
        kwargs.setdefault("insecure", environ.get("VSPHERE_INSECURE", "") in ("1", "true", "yes"))
        return cls(url, environ.get("VSPHERE_USER", ""), environ.get("VSPHERE_PASSWORD", ""), **kwargs)

    @property
    def scheme(self) -> str:
        return urlsplit(self._full_url()).scheme

    def _full_url(self) -> str:
        return self.url if "://" in self.url else f"https://{self.url}/sdk"

    def parts(self) -> tuple[str, str, int, str]:
        """(scheme, host, port, path) of the SDK endpoint; a bare host means https://host/sdk."""
        split = urlsplit(self._full_url())
        if split.scheme not in ("http", "https"):
            raise errors.InvalidArgument(f"unsupported vSphere URL scheme {split.scheme!r} in {self.url}")
        port = split.port or (443 if split.scheme == "https" else 80)
        return split.scheme, split.hostname or "localhost", port, split.path or "/sdk"


def _offered_versions(document: bytes) -> list[str]:
    """The urn:vim25 versions a vimServiceVersions.xml offers, newest first."""
    root = ElementTree.fromstring(document)
    for namespace in root.iter("namespace"):
        if (namespace.findtext("name") or "").strip() == "urn:vim25":
            versions = [(namespace.findtext("version") or "").strip()]
            for prior in namespace.iter("priorVersions"):
                versions += [(v.text or "").strip() for v in prior.iter("version")]
            return [v for v in versions if v]
    return []


def _check_thumbprint(conn: http.client.HTTPSConnection, thumbprint: str) -> None:
    """Compare the server certificate with a pinned SHA-1/256/512 thumbprint (`:` separators optional)."""
    want = thumbprint.replace(":", "").lower()
    der = conn.sock.getpeercert(binary_form=True)
    algorithm = {40: "sha1", 64: "sha256", 128: "sha512"}.get(len(want))
    if algorithm is None or hashlib.new(algorithm, der).hexdigest() != want:
        conn.close()
        raise errors.PermissionDenied(f"the certificate of {conn.host} does not match the pinned thumbprint")


class _SessionStub(SoapAdapter.SessionOrientedStub):
    """Re-logs in on NotAuthenticated and retries (pyVmomi's session stub); caps the calls in flight."""

    SESSION_EXCEPTIONS = (vim.fault.NotAuthenticated,)

    def __init__(self, soap_stub, login, max_in_flight: int):
        super().__init__(soap_stub, login, retryDelay=0.1, retryCount=4)
        self._slots = threading.BoundedSemaphore(max_in_flight)

    def InvokeMethod(self, mo, info, args):  # noqa: N802 - pyVmomi's name
        with self._slots:
            return super().InvokeMethod(mo, info, args)

    def InvokeAccessor(self, mo, info):  # noqa: N802 - pyVmomi's name
        with self._slots:
            return super().InvokeAccessor(mo, info)


class Session:
    """A logged-in vSphere session plus the inventory it works in. Every public method takes an Operation first."""

    def __init__(self, target: Target):
        self.target = target
        self.si: vim.ServiceInstance | None = None
        self.content: vim.ServiceInstanceContent | None = None
        self.logins = 0  # how many times we logged in (1 + re-logins)
        self._soap: SoapAdapter.SoapStubAdapter | None = None
        self._stub: _SessionStub | None = None
        self._local = threading.local()  # the Operation of the current call, per thread, for the login log line
        self._stop = threading.Event()  # set by close(): no keep-alive, no more logins
        self._keepalive: threading.Thread | None = None
        # inventory, set by populate()
        self.datacenter: vim.Datacenter | None = None
        self.datacenter_path: str | None = None
        self.compute_resource: vim.ComputeResource | None = None
        self.pool: vim.ResourcePool | None = None
        self.vm_folder: vim.Folder | None = None
        self.datastore: vim.Datastore | None = None

    # -- connecting ---------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, op: Operation, target: Target, populate: bool = False) -> Session:
        """Connect (and optionally populate the inventory); log out again if populating fails."""
        session = cls(target).connect(op)
        if populate:
            try:
                session.populate(op)
            except BaseException:
                session.close(op)
                raise
        return session

    def connect(self, op: Operation) -> Session:
        scheme, host, port, path = self.target.parts()
        op.debug("connecting to %s://%s:%d%s as %s", scheme, host, port, path, self.target.user)
        version = self._negotiate_version(op, path)
        # pyVmomi's convention: a negative port means plain http
        self._soap = SoapAdapter.SoapStubAdapter(
            host=host, port=port if scheme == "https" else -port, path=path, version=version,
            sslContext=self._ssl_context(), thumbprint=self.target.thumbprint,
            httpConnectionTimeout=self.target.http_timeout, poolSize=self.target.max_in_flight)
        self._stub = _SessionStub(self._soap, self._login, self.target.max_in_flight)
        self.si = vim.ServiceInstance("ServiceInstance", self._stub)
        try:
            with self.operation(op, "connect"):
                # the stub logs in before its first call
                self.content = self.si.RetrieveContent()
        except BaseException:
            self._soap.DropConnections()
            self._soap = None
            raise
        about = self.content.about
        op.info("connected to %s (%s, API %s) as %s", about.fullName, about.apiType, about.apiVersion,
                self.target.user)
        self._start_keepalive()
        return self

    def _negotiate_version(self, op: Operation, sdk_path: str) -> str:
        """The newest vim25 version both the server (vimServiceVersions.xml) and pyVmomi know.

        Done here rather than with pyVim's SmartStubAdapter, which can't negotiate over plain http.
        """
        url = sdk_path.rstrip("/") + "/vimServiceVersions.xml"
        try:
            conn = self.http_connection()
            try:
                conn.request("GET", url)
                reply = conn.getresponse()
                body = reply.read()
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as err:
            raise errors.Unavailable(f"cannot reach vSphere at {self.target.url}: {err}", op_id=op.id) from err
        if reply.status != 200:
            raise errors.Unavailable(f"{self.target.url} is not a vSphere SDK endpoint: GET {url} gave HTTP "
                                     f"{reply.status}", op_id=op.id)
        try:
            offered = _offered_versions(body)
        except ElementTree.ParseError as err:
            raise errors.Unavailable(f"{self.target.url}: unreadable {url}: {err}", op_id=op.id) from err
        known = set(VmomiSupport.GetServiceVersions("vim25"))
        for offer in offered:
            try:
                version = VmomiSupport.GetVersionFromVersionUri(f"vim25/{offer}")
            except KeyError:
                continue  # newer than this pyVmomi
            if version in known:
                op.debug("vim25 version %s (%s)", offer, version)
                return version
        raise errors.NotSupported(f"{self.target.url} offers no vim25 version pyVmomi knows: {offered}",
                                  op_id=op.id)

    def http_connection(self) -> http.client.HTTPConnection:
        """A new HTTP(S) connection to the target with the session's TLS settings (thumbprint checked)."""
        scheme, host, port, _ = self.target.parts()
        timeout = self.target.http_timeout
        if scheme == "http":
            return http.client.HTTPConnection(host, port, timeout=timeout)
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._ssl_context())
        if self.target.thumbprint:
            conn.connect()
            _check_thumbprint(conn, self.target.thumbprint)
        return conn

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.target.scheme != "https":
            return None
        if self.target.insecure or self.target.thumbprint:
            # the thumbprint, when given, is checked on every new connection instead
            return ssl._create_unverified_context()  # noqa: S323 - asked for
        context = ssl.create_default_context()
        if self.target.ca_file:
            context.load_verify_locations(self.target.ca_file)
        return context

    def _login(self, soap_stub) -> None:
        """The stub's login method: runs on the calling thread, before its call, under the stub's login lock."""
        op = getattr(self._local, "op", None)
        logger = op.log if op is not None else log
        if self._stop.is_set():
            raise errors.InvalidState("the vSphere session was closed", op_id=op.id if op else None)
        manager = vim.ServiceInstance("ServiceInstance", soap_stub).RetrieveContent().sessionManager
        try:
            if manager.currentSession is not None:
                return  # another thread logged in already
        except vim.fault.NotAuthenticated:
            pass
        manager.Login(self.target.user, self.target.password)
        self.logins += 1
        if self.logins > 1:
            logger.info("vSphere session lost; logged in again (login %d)", self.logins)
        else:
            logger.debug("logged in to vSphere as %s", self.target.user)

    def _start_keepalive(self) -> None:
        interval = self.target.keepalive
        if not interval or self._keepalive is not None:
            return
        self._keepalive = threading.Thread(target=self._keepalive_loop, args=(interval,), daemon=True,
                                           name=f"vsphere-keepalive-{id(self):x}")
        self._keepalive.start()

    def _keepalive_loop(self, interval: float) -> None:
        op = Operation.new("vmomi keep alive")
        while not self._stop.wait(interval):
            try:
                with self.operation(op, "keepalive"):
                    self.si.CurrentTime()
            except errors.VicError as err:
                op.warning("session keepalive error: %s", err)

    def close(self, op: Operation) -> None:
        """Stop the keep-alive, log out and drop the connections. Safe to call twice."""
        self._stop.set()
        if self._keepalive is not None and self._keepalive is not threading.current_thread():
            self._keepalive.join(timeout=5)
        self._keepalive = None
        if self._soap is None:
            return
        try:
            with self.operation(op, "logout"):
                # straight through the SOAP stub: logging out must not log in first
                vim.ServiceInstance("ServiceInstance", self._soap).RetrieveContent().sessionManager.Logout()
        except errors.VicError as err:
            op.debug("logout: %s", err)
        self._soap.DropConnections()
        self._soap = None

    @property
    def closed(self) -> bool:
        return self._soap is None

    # -- calls --------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def operation(self, op: Operation, what: str = "") -> Iterator[None]:
        """Run vSphere calls for `op`: its id goes out as the SOAP operationID; faults come back as VicErrors."""
        context = VmomiSupport.GetRequestContext()
        previous_id = context.get("operationID")
        previous_op = getattr(self._local, "op", None)
        context["operationID"] = op.id
        self._local.op = op
        try:
            yield
        except errors.VicError:
            raise
        except Exception as err:
            if not faults.is_vsphere_error(err):
                raise
            raise faults.to_vic_error(err, what, op.id) from err
        finally:
            if previous_id is None:
                context.pop("operationID", None)
            else:
                context["operationID"] = previous_id
            self._local.op = previous_op

    def call(self, op: Operation, method: Callable, *args, **kwargs) -> Any:
        """`method(*args, **kwargs)` (a bound pyVmomi method) under `op`; faults raised as VicErrors."""
        with self.operation(op, getattr(method, "__name__", "") or ""):
            return method(*args, **kwargs)

    def run_task(self, op: Operation, method: Callable, *args, timeout: float | None = None, **kwargs) -> Any:
        """Start a `*_Task` method and wait for it; its result, or its fault as a VicError."""
        task = self.call(op, method, *args, **kwargs)
        return self.wait_for_task(op, task, timeout=timeout)

    def current_time(self, op: Operation):
        return self.call(op, self.si.CurrentTime)

    @property
    def about(self) -> vim.AboutInfo:
        return self.content.about

    @property
    def is_vc(self) -> bool:
        return self.content.about.apiType == "VirtualCenter"

    def session_key(self, op: Operation) -> str | None:
        """The key of the server-side session we are logged in as."""
        current = self.call(op, getattr, self.content.sessionManager, "currentSession")
        return current.key if current is not None else None

    def cookie_header(self) -> str:
        """`vmware_soap_session="…"`: the session cookie for plain HTTP requests (datastore files)."""
        raw = self._soap.cookie if self._soap is not None else ""
        return raw.split(";", 1)[0].strip()

    def ensure_logged_in(self, op: Operation) -> None:
        """Make sure the server still knows our session (before plain HTTP calls, which the stub can't retry)."""
        self.session_key(op)  # NotAuthenticated here makes the stub log in again

    # -- helpers in their own modules, as methods for callers holding a Session ---------------------------------
    def wait_for_task(self, op: Operation, task: vim.Task, timeout: float | None = None) -> Any:
        from .tasks import wait_for_task
        return wait_for_task(self, op, task, timeout=timeout)

    def retry_on_conflict(self, op: Operation, fn: Callable[[Operation], Any], **kwargs) -> Any:
        from .tasks import retry_on_conflict
        return retry_on_conflict(op, fn, **kwargs)

    def retrieve(self, op: Operation, objs, props=None, **kwargs):
        from .properties import retrieve
        return retrieve(self, op, objs, props, **kwargs)

    def retrieve_one(self, op: Operation, obj, props=None) -> dict:
        from .properties import retrieve_one
        return retrieve_one(self, op, obj, props)

    def retrieve_view(self, op: Operation, container, types, props=None, **kwargs):
        from .properties import retrieve_view
        return retrieve_view(self, op, container, types, props, **kwargs)

    @property
    def finder(self):
        from .finder import Finder
        return Finder(self)

    def populate(self, op: Operation) -> Session:
        """Resolve the target's datacenter, compute resource (→ pool), VM folder and datastore (VIC Populate)."""
        finder = self.finder
        problems = []
        try:
            self.datacenter = finder.datacenter(op, self.target.datacenter)
            self.datacenter_path = finder.inventory_path(op, self.datacenter)
            self.vm_folder = self.call(op, getattr, self.datacenter, "vmFolder")
        except errors.VicError as err:
            raise errors.NotFound(f"Failure finding dc ({self.target.datacenter or ''}): {err}",
                                  op_id=op.id) from err
        try:
            self.pool = finder.resource_pool(op, self.target.compute_resource, self.datacenter)
            self.compute_resource = finder.owner(op, self.pool)
        except errors.VicError as err:
            problems.append(f"Failure finding compute resource ({self.target.compute_resource or ''}): {err}")
        try:
            if self.target.datastore is not None:
                self.datastore = finder.datastore(op, self.target.datastore, self.datacenter)
            else:
                stores = finder.datastores(op, self.datacenter)
                self.datastore = stores[0] if len(stores) == 1 else None
        except errors.VicError as err:
            problems.append(f"Failure finding ds ({self.target.datastore}): {err}")
        if problems:
            raise errors.NotFound("\n".join(problems), op_id=op.id)
        op.debug("vSphere resource cache populated: dc=%s pool=%s ds=%s", self.datacenter_path,
                 self.pool and self.pool._moId, self.datastore and self.datastore._moId)
        return self

    # -- datastore files and guest operations -------------------------------------------------------------------
    def upload(self, op: Operation, path, source, **kwargs) -> None:
        from .datastore import upload
        upload(self, op, path, source, **kwargs)

    def download(self, op: Operation, path, dest=None, **kwargs):
        from .datastore import download
        return download(self, op, path, dest, **kwargs)

    def start_program(self, op: Operation, vm: vim.VirtualMachine, program: str, arguments: str = "", **kwargs):
        from .guest import start_program
        return start_program(self, op, vm, program, arguments, **kwargs)

    def __repr__(self) -> str:
        return f"<Session {self.target.user}@{self.target.url} logins={self.logins}>"
