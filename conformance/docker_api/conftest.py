"""Black-box Docker API suites: the real docker CLI and docker-py against a VCH from `vic-ref up` (the `vch`,
`docker_cli`, `docker_client` fixtures of vic_ref/testing/fixtures.py), with images from a local registry
(`registry`, `busybox_image`); pyVmomi looks at what the VCH made in vSphere."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest


def wait_for(predicate, timeout: float = 30.0, what: str = "condition", every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def ok(result) -> str:
    rc, out, err = result
    assert rc == 0, f"rc={rc}\nstdout={out}\nstderr={err}"
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(url: str, user: str, password: str):
    from pyVim.connect import SmartConnect
    parts = urlsplit(url)
    kwargs = {"disableSslCertValidation": True} if parts.scheme == "https" else {}
    return SmartConnect(host=parts.hostname, port=parts.port, user=user, pwd=password, protocol=parts.scheme,
                        **kwargs)


def sim_control(vch, method: str, path: str, body=None):
    """The sim's control API (fault rules): http on loopback, no credentials needed."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{vch.control_url}/{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


@pytest.fixture(scope="module")
def si(vch):
    from pyVim.connect import Disconnect
    instance = connect(vch.vsphere_url, vch.vsphere_user, vch.vsphere_password)
    yield instance
    try:
        Disconnect(instance)
    except Exception:  # noqa: BLE001 - the sim may be gone already
        pass


@pytest.fixture(scope="module")
def vic_machine(vch):
    """The real vic-machine console script against the module's VCH (named `vic-ref` by `vic-ref up`):
    `run(*args) -> (exit code, stdout and stderr)`, with the VSPHERE_* variables it reads and no others."""
    command = str(Path(sys.executable).with_name("vic-machine"))

    def run(*args: str, timeout: float = 180) -> tuple[int, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "VSPHERE_", "VIC_MACHINE_"))}
        env.update(VSPHERE_URL=vch.vsphere_url, VSPHERE_USER=vch.vsphere_user, VSPHERE_PASSWORD=vch.vsphere_password)
        done = subprocess.run([command, *args, "--name", vch.name], env=env, capture_output=True, text=True,
                              timeout=timeout, cwd=vch.workdir)
        return done.returncode, done.stdout + done.stderr
    return run


@pytest.fixture(scope="module")
def busybox(vch, docker_cli, busybox_image) -> str:
    """busybox pulled into the module's VCH from the local registry; its reference."""
    ok(docker_cli("pull", busybox_image.reference, timeout=120))
    return busybox_image.reference


def find_vms(si, name: str | None = None):
    from pyVmomi import vim
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return [vm for vm in view.view if name is None or vm.name == name]
    finally:
        view.DestroyView()


def datastore_files(si, datastore, folder: str) -> set[str]:
    from pyVim.task import WaitForTask
    from pyVmomi import vim
    task = datastore.browser.SearchDatastore_Task(f"[{datastore.name}] {folder}".rstrip(),
                                                  vim.host.DatastoreBrowser.SearchSpec(matchPattern=["*"]))
    try:
        WaitForTask(task)
    except vim.fault.FileNotFound:
        return set()
    return {getattr(f, "friendlyName", None) or f.path for f in task.info.result.file or []}


def in_ci() -> bool:
    return bool(os.environ.get("CI"))
