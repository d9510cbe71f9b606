"""The image routes (vic_ref/personality/images.py) driven by the real docker CLI and docker-py, over an image store
on the sim and the real docker-registry. The app is the image routes alone, with stand-ins for what the personality's
server adds (version prefixes, Docker's JSON errors through personality/errors.py, /_ping and /version), so these
tests don't depend on the rest of the personality."""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiohttp import web

from vic_ref import errors
from vic_ref.personality import common
from vic_ref.personality.errors import error_response
from vic_ref.personality.images import add_image_routes

pytestmark = pytest.mark.sim_only

_VERSIONED = re.compile(r"^/v(\d+(?:\.\d+)*)(/.*)$")


@web.middleware
async def docker_errors(request: web.Request, handler):
    try:
        return await handler(request)
    except errors.VicError as err:
        return error_response(err)


def route_versions(router: web.UrlDispatcher) -> None:
    """`/v1.44/images/json` resolves as `/images/json`, as the personality's router does."""
    resolve = router.resolve

    async def versioned(request: web.Request):
        match = _VERSIONED.match(request.rel_url.path)
        if match:
            request[common.VERSION] = match.group(1)
            request = request.clone(rel_url=request.rel_url.with_path(match.group(2)))
        return await resolve(request)

    router.resolve = versioned


class ImageApi:
    """The image routes served on a loopback port from a thread of their own."""

    def __init__(self, store):
        self.store = store
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        app = web.Application(middlewares=[docker_errors], client_max_size=64 * 1024 * 1024)
        route_versions(app.router)
        app[common.PORTLAYER] = self.store
        app[common.CALLS] = ThreadPoolExecutor(max_workers=16)
        app[common.WAITS] = ThreadPoolExecutor(max_workers=4)

        async def ping(request: web.Request) -> web.Response:
            return web.Response(text="OK", headers={"Api-Version": common.API_VERSION, "Ostype": "linux"})

        async def version(request: web.Request) -> web.Response:
            return web.json_response({"ApiVersion": common.API_VERSION, "MinAPIVersion": common.MIN_API_VERSION,
                                      "Version": "0.1.0", "Os": "linux", "Arch": "amd64"})

        app.router.add_route("HEAD", "/_ping", ping)
        app.router.add_route("GET", "/_ping", ping)
        app.router.add_route("GET", "/version", version)
        add_image_routes(app, self.store)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()

    @property
    def host(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def docker(self, *args: str, timeout: float = 120.0) -> tuple[int, str, str]:
        env = {**os.environ, "DOCKER_HOST": self.host}
        env.pop("DOCKER_TLS_VERIFY", None)
        done = subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=timeout)
        return done.returncode, done.stdout, done.stderr

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def module_store(appliance):
    return appliance.store()


@pytest.fixture(scope="module")
def api(module_store):
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed")
    server = ImageApi(module_store)
    yield server
    server.close()


def test_docker_pull_images_inspect_history(api, registry, busybox_image):
    ref = busybox_image.reference
    rc, out, err = api.docker("pull", ref)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "latest: Pulling from busybox"
    assert f"{busybox_image.layers[0].digest[7:19]}: Pull complete" in lines
    assert f"Digest: {busybox_image.manifest_digest}" in lines
    assert f"Status: Downloaded newer image for {ref}" in lines
    assert lines[-1] == ref
    rc, out, _ = api.docker("pull", ref)
    assert rc == 0 and f"Status: Image is up to date for {ref}" in out
    rc, out, _ = api.docker("images", "--format", "{{.Repository}} {{.Tag}} {{.ID}}")
    assert f"{busybox_image.name} latest {busybox_image.image_id[7:19]}" in out.splitlines()
    rc, out, _ = api.docker("image", "inspect", ref)
    inspect = json.loads(out)[0]
    assert inspect["Id"] == busybox_image.image_id and inspect["Config"]["Cmd"] == ["sh"]
    assert inspect["RootFS"]["Layers"] == busybox_image.diff_ids
    assert inspect["RepoDigests"] == [f"{busybox_image.name}@{busybox_image.manifest_digest}"]
    rc, out, _ = api.docker("history", "--no-trunc", "--format", "{{.ID}} {{.CreatedBy}}", ref)
    assert rc == 0
    assert out.splitlines() == [f'{busybox_image.image_id} /bin/sh -c #(nop)  CMD ["sh"]',
                                "<missing> /bin/sh -c #(nop) ADD file:busybox-static in / "]


def test_docker_tag_rmi_save_load(api, registry, busybox_image, tmp_path):
    ref = busybox_image.reference
    assert api.docker("pull", ref)[0] == 0
    assert api.docker("tag", ref, "mybox:1") == (0, "", "")
    rc, out, _ = api.docker("images", "mybox", "--format", "{{.Repository}}:{{.Tag}}")
    assert out.split() == ["mybox:1"]
    rc, out, err = api.docker("rmi", busybox_image.image_id[7:19])
    assert rc == 1 and err.strip() == (f"Error response from daemon: conflict: unable to delete "
                                       f"{busybox_image.image_id[7:19]} (must be forced) - image is referenced in "
                                       f"multiple repositories")
    assert api.docker("rmi", "mybox:1")[1].strip() == "Untagged: mybox:1"
    archive = tmp_path / "busybox.tar"
    rc, _, err = api.docker("save", "-o", str(archive), ref)
    assert rc == 0, err
    rc, out, _ = api.docker("rmi", ref)
    assert rc == 0
    assert out.splitlines()[:3] == [f"Untagged: {ref}",
                                    f"Untagged: {busybox_image.name}@{busybox_image.manifest_digest}",
                                    f"Deleted: {busybox_image.image_id}"]
    rc, out, err = api.docker("load", "-i", str(archive))
    assert rc == 0, err
    assert out.strip().splitlines()[-1] == f"Loaded image: {ref}"
    rc, out, _ = api.docker("images", "-q", "--no-trunc", ref)
    assert out.strip() == busybox_image.image_id


def test_docker_errors(api, registry, busybox_image):
    rc, _, err = api.docker("pull", f"{busybox_image.name}:nosuch")
    assert rc == 1
    assert err.strip() == (f"Error response from daemon: manifest for {busybox_image.name}:nosuch not found: "
                           f"manifest unknown: manifest unknown")
    rc, _, err = api.docker("rmi", "nosuch")
    assert rc == 1 and err.strip() == "Error response from daemon: No such image: nosuch:latest"
    rc, _, err = api.docker("image", "inspect", "nosuch")
    assert rc == 1 and "No such image: nosuch" in err
    rc, _, err = api.docker("tag", "nosuch", "x")
    assert rc == 1 and err.strip() == "Error response from daemon: No such image: nosuch:latest"


def test_docker_py(api, registry, busybox_volume_image, busybox_image):
    import docker
    client = docker.DockerClient(base_url=api.host, version="1.44")
    try:
        image = client.images.pull(busybox_volume_image.name, tag="latest")
        assert image.id == busybox_volume_image.image_id
        assert image.attrs["Config"]["Volumes"] == {"/data": {}}
        assert image.labels == {"org.vic-ref.test": "volume"}
        listed = client.images.list(filters={"label": "org.vic-ref.test=volume"})
        assert [i.id for i in listed] == [busybox_volume_image.image_id]
        assert [i.id for i in client.images.list(filters={"dangling": True})] == []
        assert image.tag("pyvol", "2")
        assert "pyvol:2" in client.images.get("pyvol:2").tags
        data = b"".join(client.images.get("pyvol:2").save())
        client.images.remove("pyvol:2")
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get("pyvol:2")
        loaded = client.images.load(data)
        assert [i.id for i in loaded] == [busybox_volume_image.image_id]
        history = client.images.get(busybox_volume_image.reference).history()
        assert history[0]["Id"] == busybox_volume_image.image_id and history[0]["CreatedBy"].endswith(
            'CMD ["echo $GREETING"]')
    finally:
        client.close()
