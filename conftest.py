"""Shared fixtures: an embedded sim per test module (or a real vSphere from VSPHERE_URL), pyVmomi connections."""
from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

# docker-side fixtures: vch, docker_cli, docker_client (and the image suites' registry fixtures)
pytest_plugins = ["vic_ref.testing.fixtures"]


@dataclass
class VsphereTarget:
    """Where the conformance suites point: the embedded sim, or VSPHERE_URL/USER/PASSWORD."""
    url: str
    user: str
    password: str
    sim: object = None  # the Simulator when embedded; None against a real vSphere
    server: object = None

    @property
    def is_sim(self) -> bool:
        return self.sim is not None

    @property
    def control_url(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}/_sim"

    def connect(self):
        from pyVim.connect import SmartConnect
        parts = urlsplit(self.url)
        kwargs = {"disableSslCertValidation": True} if parts.scheme == "https" else {}
        return SmartConnect(host=parts.hostname, port=parts.port or (443 if parts.scheme == "https" else 80),
                            user=self.user, pwd=self.password, protocol=parts.scheme, **kwargs)


def external_target() -> VsphereTarget | None:
    url = os.environ.get("VSPHERE_URL")
    if not url:
        return None
    if "://" not in url:
        url = f"https://{url}/sdk"
    return VsphereTarget(url, os.environ.get("VSPHERE_USER", ""), os.environ.get("VSPHERE_PASSWORD", ""))


def pytest_collection_modifyitems(config, items):
    if external_target() is None:
        return
    skip = pytest.mark.skip(reason="needs the embedded simulator (VSPHERE_URL points at another vSphere)")
    for item in items:
        if "sim_only" in item.keywords:
            item.add_marker(skip)


def _start_sim(tmp_path_factory, tls: bool) -> VsphereTarget:
    from vsphere_sim import Simulator
    sim = Simulator(tmp_path_factory.mktemp("sim"))
    server = sim.serve("127.0.0.1:0", tls=tls)
    return VsphereTarget(server.url, sim.user, sim.password, sim, server)


@pytest.fixture(scope="module")
def sim_target(tmp_path_factory):
    """A fresh embedded sim for this module, over plain HTTP (fast), always the sim."""
    target = _start_sim(tmp_path_factory, tls=False)
    yield target
    target.sim.close()


@pytest.fixture(scope="module")
def vsphere(tmp_path_factory):
    """The vSphere under test: VSPHERE_URL if set, else a fresh embedded sim for this module."""
    target = external_target()
    if target is not None:
        yield target
        return
    target = _start_sim(tmp_path_factory, tls=False)
    yield target
    target.sim.close()


@pytest.fixture(scope="module")
def si(vsphere):
    """A logged-in pyVmomi ServiceInstance on the vSphere under test."""
    from pyVim.connect import Disconnect
    instance = vsphere.connect()
    yield instance
    try:
        Disconnect(instance)
    except Exception:
        pass


@pytest.fixture
def sim(vsphere):
    """The embedded Simulator; skips the test against a real vSphere."""
    if not vsphere.is_sim:
        pytest.skip("needs the embedded simulator")
    return vsphere.sim


