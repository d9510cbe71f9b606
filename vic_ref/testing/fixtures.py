"""pytest fixtures for the docker-side suites (loaded from the root conftest through `pytest_plugins`).

- `vch` (module): `vic-ref up` on free ports in a temporary workdir: a sim plus a deployed VCH; a `RunningVCH`
  (docker_host, vsphere_url/user/password, control_url, workdir, guest_log, docker(), docker_client()).
- `docker_cli` (module): `docker_cli(*args, timeout=60, input=None) -> (rc, stdout, stderr)`, the real docker CLI
  with DOCKER_HOST set to the module's VCH.
- `docker_client` (module): a docker-py `DockerClient` on the module's VCH.
The image suites' `registry` and `busybox_image` fixtures come from `vic_ref/testing/registry.py` when it exists.
"""
from __future__ import annotations

import importlib.util

import pytest

from .vch import RunningVCH, start_vch

# The image engineer's fixtures, as a plugin of this plugin, once the module is there.
pytest_plugins = ["vic_ref.testing.registry"] if importlib.util.find_spec("vic_ref.testing.registry") else []


@pytest.fixture(scope="module")
def vch(tmp_path_factory) -> RunningVCH:
    running = start_vch(tmp_path_factory.mktemp("vch"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def docker_cli(vch):
    def run(*args: str, timeout: float = 60.0, input: str | None = None, env: dict | None = None):
        return vch.docker(*args, timeout=timeout, input=input, env=env)
    return run


@pytest.fixture(scope="module")
def docker_client(vch):
    client = vch.docker_client()
    try:
        yield client
    finally:
        client.close()
