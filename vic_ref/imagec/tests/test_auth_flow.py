"""The registry auth flows against a small aiohttp registry written here: bearer tokens (anonymous, basic
credentials, refresh after expiry), insufficient scope, basic-auth registries, and a lying Docker-Content-Digest."""
from __future__ import annotations

import asyncio
import base64
import json
import threading

import pytest
from aiohttp import web

from vic_ref.imagec import Credentials, Puller, RegistryClient, parse_pull
from vic_ref.imagec.errors import RegistryNotFound, RegistryUnauthorized, VerificationFailed
from vic_ref.imagec.registry import digest_of
from vic_ref.testing.registry import LAYER_GZIP, MANIFEST_V2, make_config, make_layer
from vic_ref.trace import Operation

USER, PASSWORD = "alice", "secret"
LAYER = make_layer([("dir", "srv", 0o755), ("file", "srv/hello", b"hello from the token registry\n", 0o644)])
CONFIG = make_config([LAYER], {"Cmd": ["cat", "/srv/hello"]})
MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": MANIFEST_V2,
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(CONFIG),
               "digest": digest_of(CONFIG)},
    "layers": [{"mediaType": LAYER_GZIP, "size": len(LAYER.blob), "digest": LAYER.digest}]}).encode()
BLOBS = {digest_of(CONFIG): CONFIG, LAYER.digest: LAYER.blob}


class FakeRegistry:
    """`mode` "bearer": /v2 wants tokens from /token (private/* needs alice's basic credentials); "basic": /v2 wants
    alice's basic credentials itself. Every request is recorded."""

    def __init__(self, mode: str = "bearer"):
        self.mode = mode
        self.requests: list[tuple[str, str, str | None]] = []  # (path, query, Authorization)
        self.expire_next = 0  # how many valid tokens to refuse as expired (invalid_token)
        self.lie_about_digest = False
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_get("/token", self.token)
        app.router.add_get("/v2/", self.ping)
        app.router.add_get(r"/v2/{repo:.+}/manifests/{ref}", self.manifest)
        app.router.add_get(r"/v2/{repo:.+}/blobs/{digest}", self.blob)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def close(self) -> None:
        async def stop():
            await self._runner.cleanup()
        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # -- the registry ---------------------------------------------------------------------------------------
    def _record(self, request: web.Request) -> None:
        self.requests.append((request.path, request.query_string, request.headers.get("Authorization")))

    @staticmethod
    def _basic(request: web.Request) -> tuple[str, str] | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user, password

    def _challenge(self, request: web.Request, scope: str = "", error: str = "") -> web.Response:
        if self.mode == "basic":
            value = 'Basic realm="fake"'
        else:
            value = f'Bearer realm="http://{self.host}/token",service="fake-registry"'
            if scope:
                value += f',scope="{scope}"'
            if error:
                value += f',error="{error}"'
        code = "DENIED" if error == "insufficient_scope" else "UNAUTHORIZED"
        message = "requested access to the resource is denied" if code == "DENIED" else "authentication required"
        return web.json_response({"errors": [{"code": code, "message": message, "detail": None}]}, status=401,
                                 headers={"WWW-Authenticate": value})

    def _authorized(self, request: web.Request, repo: str | None) -> web.Response | None:
        """None when the request may go on, else the 401 to send."""
        if self.mode == "basic":
            return None if self._basic(request) == (USER, PASSWORD) else self._challenge(request)
        header = request.headers.get("Authorization", "")
        scope = f"repository:{repo}:pull" if repo else ""
        if not header.startswith("Bearer "):
            return self._challenge(request, scope)
        token = json.loads(base64.b64decode(header[7:]))
        if self.expire_next:
            self.expire_next -= 1
            return self._challenge(request, scope, "invalid_token")
        if repo is None:
            return None
        if scope not in token["scopes"]:
            return self._challenge(request, scope, "insufficient_scope")
        return None

    async def token(self, request: web.Request) -> web.Response:
        self._record(request)
        scope = request.query.get("scope", "")
        credentials = self._basic(request)
        if credentials is not None and credentials != (USER, PASSWORD):
            return web.json_response({"details": "incorrect username or password"}, status=401)
        granted = [scope] if scope and (credentials or ":private/" not in f":{scope.split(':')[1]}") else []
        token = base64.b64encode(json.dumps({"scopes": granted, "user": credentials[0] if credentials else None})
                                 .encode()).decode()
        return web.json_response({"token": token, "expires_in": 300})

    async def ping(self, request: web.Request) -> web.Response:
        self._record(request)
        return self._authorized(request, None) or web.json_response({})

    async def manifest(self, request: web.Request) -> web.Response:
        self._record(request)
        denied = self._authorized(request, request.match_info["repo"])
        if denied is not None:
            return denied
        digest = "sha256:" + "0" * 64 if self.lie_about_digest else digest_of(MANIFEST)
        if request.match_info["ref"] not in ("latest", digest_of(MANIFEST)):
            return web.json_response({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]},
                                     status=404)
        return web.Response(body=MANIFEST, content_type=MANIFEST_V2, headers={"Docker-Content-Digest": digest})

    async def blob(self, request: web.Request) -> web.Response:
        self._record(request)
        denied = self._authorized(request, request.match_info["repo"])
        return denied or web.Response(body=BLOBS[request.match_info["digest"]],
                                      content_type="application/octet-stream")


@pytest.fixture
def fake():
    registry = FakeRegistry()
    yield registry
    registry.close()


@pytest.fixture
def basic_fake():
    registry = FakeRegistry("basic")
    yield registry
    registry.close()


@pytest.fixture
def plain_op(request) -> Operation:
    return Operation.new(request.node.name)


def manifest_of(registry: FakeRegistry, repo: str, credentials=Credentials(), op=None) -> bytes:
    with RegistryClient(registry.host, credentials) as client:
        raw, _, digest = client.get_manifest(op or Operation.new("t"), repo, "latest")
    assert digest == digest_of(MANIFEST)
    return raw


def test_anonymous_token(fake, plain_op):
    assert manifest_of(fake, "public/app", op=plain_op) == MANIFEST
    tokens = [r for r in fake.requests if r[0] == "/token"]
    assert len(tokens) == 1
    assert "scope=repository:public/app:pull" in tokens[0][1] and "service=fake-registry" in tokens[0][1]
    assert tokens[0][2] is None  # anonymous: no credentials sent to the realm


def test_private_needs_login(fake, plain_op):
    with pytest.raises(RegistryNotFound) as caught:
        Puller(None).prepare(plain_op, parse_pull(f"{fake.host}/private/app"))
    assert str(caught.value) == (f"pull access denied for {fake.host}/private/app, repository does not exist or may "
                                 "require 'docker login': denied: requested access to the resource is denied")
    assert manifest_of(fake, "private/app", Credentials(USER, PASSWORD), plain_op) == MANIFEST
    token_auth = [r[2] for r in fake.requests if r[0] == "/token" and r[2]]
    assert token_auth and token_auth[-1] == "Basic " + base64.b64encode(b"alice:secret").decode()


def test_wrong_password(fake, plain_op):
    with pytest.raises(RegistryUnauthorized) as caught:
        manifest_of(fake, "private/app", Credentials(USER, "nope"), plain_op)
    assert str(caught.value) == "unauthorized: incorrect username or password"


def test_expired_token_is_refreshed(fake, plain_op):
    with RegistryClient(fake.host) as client:
        client.get_manifest(plain_op, "public/app", "latest")
        fake.expire_next = 1
        raw, _, _ = client.get_manifest(plain_op, "public/app", "latest")
    assert raw == MANIFEST
    assert len([r for r in fake.requests if r[0] == "/token"]) == 2


def test_basic_auth_registry(basic_fake, plain_op):
    assert manifest_of(basic_fake, "any/app", Credentials(USER, PASSWORD), plain_op) == MANIFEST
    with pytest.raises(RegistryUnauthorized, match="^unauthorized: authentication required$"):
        Puller(None).prepare(plain_op, parse_pull(f"{basic_fake.host}/any/app"))


def test_lying_content_digest(fake, plain_op):
    fake.lie_about_digest = True
    with pytest.raises(VerificationFailed, match="manifest verification failed for digest sha256:0000"):
        manifest_of(fake, "public/app", op=plain_op)


@pytest.mark.sim_only
def test_pull_through_tokens_into_the_store(fake, store, op):
    messages: list[dict] = []
    image = Puller(store).pull(op, parse_pull(f"{fake.host}/private/app"), Credentials(USER, PASSWORD),
                               sink=messages.append)
    assert image.config["config"]["Cmd"] == ["cat", "/srv/hello"]
    assert messages[-1] == {"status": f"Status: Downloaded newer image for {fake.host}/private/app:latest"}
    blob_requests = [r for r in fake.requests if "/blobs/" in r[0]]
    assert blob_requests and all(r[2].startswith("Bearer ") for r in blob_requests)
