"""The personality served in-process over a port layer on the module's embedded sim, and the real clients pointed at
it: `api` (the server, with `url`, `docker_host`, the port layer and a test image store), `cli` (the docker CLI),
`dpy` (a docker-py client)."""
from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from pathlib import Path

import pytest
import requests

from vic_ref.personality.server import make_app
from vic_ref.portlayer.tests.harness import VchEnv


class ApiServer:
    """make_app(portlayer, config) on 127.0.0.1:<free port>, on an event loop of its own thread."""

    def __init__(self, portlayer, config):
        from aiohttp import web
        self.portlayer = portlayer
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="api-server", daemon=True)
        self.thread.start()

        async def start():
            app = make_app(portlayer, config)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            return runner, site._server.sockets[0].getsockname()[1]

        self.runner, self.port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(60)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def docker_host(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Api:
    def __init__(self, env: VchEnv, server: ApiServer, image):
        self.env = env
        self.server = server
        self.image = image
        self.http = requests.Session()

    @property
    def portlayer(self):
        return self.server.portlayer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def docker_host(self) -> str:
        return self.server.docker_host

    def get(self, path: str, **kwargs):
        return self.http.get(self.url + path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.http.post(self.url + path, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.http.delete(self.url + path, **kwargs)

    def head(self, path: str, **kwargs):
        return self.http.head(self.url + path, **kwargs)

    def create(self, name: str | None = None, **body) -> str:
        body.setdefault("Image", "busybox")
        reply = self.post("/v1.44/containers/create", params={"name": name} if name else None, json=body)
        assert reply.status_code == 201, reply.text
        return reply.json()["Id"]


@pytest.fixture(scope="module")
def api(sim_target, tmp_path_factory):
    env = VchEnv(sim_target.url, sim_target.user, sim_target.password)
    image = env.images.add(env.op, "busybox")
    env.images.add(env.op, "alpine:3.19", cmd=["/bin/sh"], env=["PATH=/bin", "HOME=/root"], stop_signal="SIGQUIT")
    portlayer = env.portlayer(start=False)  # the app starts it before it serves
    server = ApiServer(portlayer, env.config)
    yield Api(env, server, image)
    server.stop()
    portlayer.close(env.op)
    env.close()


@pytest.fixture(scope="module")
def cli(api, tmp_path_factory):
    """The real docker CLI against the in-process VCH: `cli(*args) -> (rc, stdout, stderr)`."""
    config = tmp_path_factory.mktemp("docker-config")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(DOCKER_HOST=api.docker_host, DOCKER_CONFIG=str(config))

    def run(*args: str, timeout: float = 60.0):
        done = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=timeout,
                              cwd=str(Path(config)))
        return done.returncode, done.stdout, done.stderr

    return run


@pytest.fixture(scope="module")
def dpy(api):
    import docker
    client = docker.DockerClient(base_url=api.docker_host, timeout=60)
    yield client
    client.close()
