"""A Docker Registry HTTP API v2 client (the read side: what a pull needs), on requests.

    client = RegistryClient("127.0.0.1:5000", credentials)
    raw, media_type, digest = client.get_manifest(op, "busybox", "latest")
    config = client.get_blob(op, "busybox", config_digest, what="image config")
    client.download_blob(op, "busybox", layer_digest, file, progress=lambda n: ...)

Every manifest and blob is checked against its digest (sha256); a mismatch raises VerificationFailed and nothing
is returned. Plain http is used only for insecure registries (loopback, or named in `insecure_registries`), after
https failed, as dockerd does. Authentication follows the registry's `WWW-Authenticate` challenge (see auth.py).
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import threading
from collections.abc import Callable, Iterable
from typing import BinaryIO
from urllib.parse import urlencode

import requests

from ..trace import Operation
from . import auth as authmod
from .auth import ANONYMOUS, Credentials
from .errors import RegistryError, RegistryUnauthorized, RegistryUnavailable, VerificationFailed
from .manifest import ACCEPT

USER_AGENT = "vic-ref imagec (docker/28.2.2)"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 8 * 1024 * 1024
CHUNK = 256 * 1024
DEFAULT_TIMEOUT = 60.0


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _check_digest(expected: str, actual_hex: str, what: str, op: Operation | None = None) -> None:
    algorithm, _, encoded = expected.partition(":")
    if algorithm != "sha256":
        raise VerificationFailed(f"unsupported digest algorithm {algorithm} for {what} {expected}",
                                 op_id=op.id if op else None)
    if encoded != actual_hex:
        raise VerificationFailed(f"{what} verification failed for digest {expected}", op_id=op.id if op else None)


def is_insecure(registry: str, insecure_registries: Iterable[str] = ()) -> bool:
    """Whether a registry may be used over plain http: loopback always (as dockerd's default 127.0.0.0/8), or a
    host, host:port or CIDR named in `insecure_registries`."""
    if registry.startswith("[") and "]" in registry:
        host = registry[1:registry.index("]")]
    else:
        host = registry.split(":", 1)[0] if registry.count(":") == 1 else registry
    if host == "localhost":
        return True
    address = None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    if address is not None and address.is_loopback:
        return True
    for entry in insecure_registries:
        if entry in (registry, host):
            return True
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def _transport_text(method: str, url: str, err: Exception) -> str:
    """Go's wording for a failed request: `Get "http://h:p/v2/": dial tcp h:p: connect: connection refused`."""
    verb = method.capitalize()
    text = str(err)
    if isinstance(err, requests.exceptions.SSLError):
        if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
            text = "http: server gave HTTP response to HTTPS client"
    elif isinstance(err, requests.exceptions.ConnectionError):
        host = url.split("://", 1)[1].split("/", 1)[0]
        if "Connection refused" in text or "ConnectionRefused" in text:
            text = f"dial tcp {host}: connect: connection refused"
        elif "Name or service not known" in text or "NameResolution" in text or "nodename nor servname" in text:
            text = f"dial tcp: lookup {host.rsplit(':', 1)[0]}: no such host"
    elif isinstance(err, requests.exceptions.Timeout):
        text = "net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting " \
               "headers)"
    return f'{verb} "{url}": {text}'


def error_from_response(response: requests.Response) -> Exception:
    """distribution's HandleErrorResponse: a bearer challenge's `error` first, then the JSON body's first error."""
    status = response.status_code
    if 400 <= status < 500:
        for challenge in authmod.parse_challenges(_header_values(response, "WWW-Authenticate")):
            if challenge.scheme != "bearer":
                continue
            kind = challenge.params.get("error")
            code = {"invalid_token": "UNAUTHORIZED", "insufficient_scope": "DENIED"}.get(kind or "")
            if code is not None:
                return RegistryError(code, challenge.params.get("error_description", ""), status=status)
        parsed = _body_errors(response)
        if parsed is not None:
            return parsed
        if status == 401:
            return RegistryError("UNAUTHORIZED", status=status)
        body = response.text[:200]
        return RegistryError("UNKNOWN", status=status,
                             text=f"error parsing HTTP {status} response body: {body!r}")
    if status >= 500:
        parsed = _body_errors(response)
        if parsed is not None:
            return RegistryUnavailable(str(parsed))
        return RegistryUnavailable(f"received unexpected HTTP status: {status} {response.reason}")
    return RegistryError("UNKNOWN", status=status, text=f"unexpected HTTP status: {status} {response.reason}")


def _header_values(response: requests.Response, name: str) -> list[str]:
    raw = getattr(response.raw, "headers", None)
    if raw is not None and hasattr(raw, "getlist"):
        values = raw.getlist(name)
        if values:
            return list(values)
    value = response.headers.get(name)
    return [value] if value else []


def _body_errors(response: requests.Response) -> RegistryError | None:
    try:
        doc = json.loads(response.content or b"")
    except ValueError:
        return None
    items = doc.get("errors") if isinstance(doc, dict) else None
    if isinstance(items, list) and items and isinstance(items[0], dict) and items[0].get("code"):
        first = items[0]
        return RegistryError(str(first["code"]), str(first.get("message") or ""), status=response.status_code,
                             detail=first.get("detail"))
    if isinstance(doc, dict) and isinstance(doc.get("details"), str):  # token servers: {"details": "..."}
        return RegistryError("UNAUTHORIZED", doc["details"], status=response.status_code)
    return None


class RegistryClient:
    """One registry (`host[:port]`, or docker.io's API host), with one set of credentials. Thread-safe."""

    def __init__(self, registry: str, credentials: Credentials = ANONYMOUS, *,
                 insecure_registries: Iterable[str] = (), timeout: float = DEFAULT_TIMEOUT,
                 user_agent: str = USER_AGENT):
        self.registry = registry
        self.credentials = credentials
        self.insecure = is_insecure(registry, insecure_registries)
        self.timeout = timeout
        self.http = requests.Session()
        self.http.headers["User-Agent"] = user_agent
        self.scheme: str | None = None
        self.challenges: list[authmod.Challenge] = []
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- endpoint and authentication ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.registry}"

    def ping(self, op: Operation) -> None:
        """`GET /v2/`: pick https or (insecure registries only) http, and learn the auth challenge."""
        with self._lock:
            if self.scheme is not None:
                return
        last: Exception | None = None
        for scheme in ("https", "http") if self.insecure else ("https",):
            url = f"{scheme}://{self.registry}/v2/"
            op.check()
            try:
                reply = self.http.get(url, timeout=self.timeout, verify=not self.insecure)
            except requests.RequestException as err:
                last = RegistryUnavailable(_transport_text("GET", url, err), op_id=op.id)
                continue
            if reply.status_code in (200, 401):
                with self._lock:
                    self.scheme = scheme
                    self.challenges = authmod.parse_challenges(_header_values(reply, "WWW-Authenticate"))
                op.debug("registry %s speaks v2 over %s (auth: %s)", self.registry, scheme,
                         ",".join(c.scheme for c in self.challenges) or "none")
                return
            last = error_from_response(reply)
            if isinstance(last, RegistryError) and reply.status_code == 404:
                last = RegistryUnavailable(f"{url}: the registry does not speak the v2 API (HTTP 404)", op_id=op.id)
        assert last is not None
        raise last

    def _bearer(self, op: Operation, challenge: authmod.Challenge, scope: str, refresh: bool) -> str:
        if self.credentials.registry_token:
            return self.credentials.registry_token
        key = f"{challenge.realm} {scope}"
        with self._lock:
            if not refresh and key in self._tokens:
                return self._tokens[key]
        params = {k: v for k, v in (("service", challenge.params.get("service")), ("scope", scope)) if v}
        try:
            if self.credentials.identity_token:
                reply = self.http.post(challenge.realm, data={
                    "grant_type": "refresh_token", "refresh_token": self.credentials.identity_token,
                    "client_id": "docker", **params}, timeout=self.timeout, verify=not self.insecure)
            else:
                basic = None if self.credentials.anonymous else (self.credentials.username,
                                                                 self.credentials.password)
                reply = self.http.get(challenge.realm, params=params, auth=basic, timeout=self.timeout,
                                      verify=not self.insecure)
        except requests.RequestException as err:
            raise RegistryUnavailable(_transport_text("GET", f"{challenge.realm}?{urlencode(params)}", err),
                                      op_id=op.id) from err
        if reply.status_code in (401, 403):
            parsed = _body_errors(reply)
            message = parsed.registry_message if parsed is not None else "authentication required"
            raise RegistryUnauthorized(f"unauthorized: {message}", op_id=op.id)
        if reply.status_code != 200:
            raise RegistryUnauthorized(
                f'Get "{challenge.realm}": token auth attempt for registry {self.registry}: request failed with '
                f"status: {reply.status_code} {reply.reason}", op_id=op.id)
        try:
            token = authmod.token_from_response(reply.json())
        except ValueError as err:
            raise RegistryUnauthorized(f"unable to decode token response: {err}", op_id=op.id) from err
        with self._lock:
            self._tokens[key] = token
        return token

    def _auth_headers(self, op: Operation, scope: str, refresh: bool = False) -> dict[str, str]:
        for challenge in self.challenges:
            if challenge.scheme == "bearer" and challenge.realm:
                return {"Authorization": f"Bearer {self._bearer(op, challenge, scope, refresh)}"}
        for challenge in self.challenges:
            if challenge.scheme == "basic" and not self.credentials.anonymous:
                return {"Authorization": requests.auth._basic_auth_str(self.credentials.username,
                                                                      self.credentials.password)}
        return {}

    def request(self, op: Operation, method: str, path: str, *, scope: str, headers: dict | None = None,
                stream: bool = False) -> requests.Response:
        """An authorized request to `/v2/<path>`; registry errors raised as RegistryError (and kin)."""
        self.ping(op)
        url = f"{self.base_url}/v2/{path}"
        for attempt in (1, 2):
            op.check()
            sent = {**(headers or {}), **self._auth_headers(op, scope, refresh=attempt == 2)}
            try:
                reply = self.http.request(method, url, headers=sent, stream=stream, timeout=self.timeout,
                                          verify=not self.insecure)
            except requests.RequestException as err:
                raise RegistryUnavailable(_transport_text(method, url, err), op_id=op.id) from err
            if reply.status_code == 401 and attempt == 1 and "Authorization" in sent \
                    and any(c.scheme == "bearer" for c in self.challenges):
                reply.close()  # perhaps an expired token: fetch a fresh one once
                continue
            if reply.status_code >= 400:
                try:
                    raise error_from_response(reply)
                finally:
                    reply.close()
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    # -- content ------------------------------------------------------------------------------------------------
    def get_manifest(self, op: Operation, path: str, reference: str,
                     accept: Iterable[str] = ACCEPT) -> tuple[bytes, str, str]:
        """(raw bytes, Content-Type, digest) of a manifest by tag or digest; the digest is verified."""
        reply = self.request(op, "GET", f"{path}/manifests/{reference}", scope=authmod.scope_for(path),
                             headers={"Accept": ", ".join(accept)}, stream=True)
        try:
            raw = _read_limited(reply, MAX_MANIFEST_BYTES, "manifest")
        finally:
            reply.close()
        actual = hashlib.sha256(raw).hexdigest()
        if reference.startswith("sha256:") or ":" in reference:
            _check_digest(reference, actual, "manifest", op)
        else:
            header = reply.headers.get("Docker-Content-Digest")
            if header and header.startswith("sha256:"):
                _check_digest(header, actual, "manifest", op)
        return raw, reply.headers.get("Content-Type", ""), "sha256:" + actual

    def get_blob(self, op: Operation, path: str, digest: str, *, what: str = "blob",
                 limit: int = MAX_CONFIG_BYTES) -> bytes:
        """A small blob (an image config) in memory, verified."""
        reply = self.request(op, "GET", f"{path}/blobs/{digest}", scope=authmod.scope_for(path), stream=True)
        try:
            data = _read_limited(reply, limit, what)
        finally:
            reply.close()
        _check_digest(digest, hashlib.sha256(data).hexdigest(), what, op)
        return data

    def download_blob(self, op: Operation, path: str, digest: str, dest: BinaryIO, *,
                      progress: Callable[[int], None] | None = None, what: str = "filesystem layer") -> int:
        """Stream a blob into `dest`, verifying it; returns its size. On a mismatch `dest` holds garbage: the
        caller throws it away."""
        reply = self.request(op, "GET", f"{path}/blobs/{digest}", scope=authmod.scope_for(path), stream=True)
        hasher = hashlib.sha256()
        size = 0
        try:
            for chunk in reply.iter_content(CHUNK):
                op.check()
                hasher.update(chunk)
                dest.write(chunk)
                size += len(chunk)
                if progress is not None:
                    progress(size)
        except requests.RequestException as err:
            raise RegistryUnavailable(_transport_text("GET", reply.url, err), op_id=op.id) from err
        finally:
            reply.close()
        _check_digest(digest, hasher.hexdigest(), what, op)
        return size


def _read_limited(reply: requests.Response, limit: int, what: str) -> bytes:
    chunks, total = [], 0
    for chunk in reply.iter_content(CHUNK):
        total += len(chunk)
        if total > limit:
            raise RegistryError("UNKNOWN", text=f"{what} too large (more than {limit} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


__all__ = ["RegistryClient", "error_from_response", "is_insecure", "digest_of", "USER_AGENT"]
