"""Fixtures for the vSphere layer: a Session on the module's embedded sim (root conftest's `sim_target`)."""
from __future__ import annotations

import json
import uuid

import pytest
import requests

from vic_ref import errors
from vic_ref.trace import Operation
from vic_ref.vsphere import Session, Target, vim

DATACENTER = "DC0"
DATASTORE = "LocalDS_0"
CLUSTER = "DC0_C0"


@pytest.fixture
def op(request) -> Operation:
    return Operation.new(request.node.name)


def target_for(sim_target, **kwargs) -> Target:
    kwargs.setdefault("keepalive", None)
    return Target(sim_target.url, sim_target.user, sim_target.password, **kwargs)


@pytest.fixture(scope="module")
def session(sim_target):
    op = Operation.new("test session")
    s = Session.open(op, target_for(sim_target, datacenter=DATACENTER, datastore=DATASTORE,
                                             compute_resource=CLUSTER), populate=True)
    yield s
    s.close(op)


@pytest.fixture
def fault_rules(sim_target):
    """Add sim fault rules over its control API; all are dropped after the test."""
    url = sim_target.control_url + "/faults"

    def add(**rule):
        reply = requests.post(url, data=json.dumps(rule), timeout=10)
        assert reply.status_code == 200, reply.text
        return reply.json()

    yield add
    requests.delete(url, timeout=10)


def call_count(sim_target, method: str) -> int:
    return requests.get(sim_target.control_url + "/counts", timeout=10).json()["counts"].get(method, 0)


def unique(prefix: str = "vic") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_vm(session: Session, op: Operation, name: str | None = None, extra: dict | None = None,
              devices: list | None = None) -> vim.VirtualMachine:
    """A small powered-off VM in the session's VM folder and pool (skips if the sim can't make VMs yet)."""
    spec = vim.vm.ConfigSpec(
        name=name or unique(), guestId="otherGuest64", numCPUs=1, memoryMB=64,
        files=vim.vm.FileInfo(vmPathName=f"[{session.datastore.name if session.datastore else DATASTORE}]"),
        extraConfig=[vim.option.OptionValue(key=k, value=v) for k, v in (extra or {}).items()],
        deviceChange=devices or [])
    try:
        return session.run_task(op, session.vm_folder.CreateVM_Task, config=spec, pool=session.pool)
    except errors.NotSupported as err:
        pytest.skip(f"the sim can't create VMs yet: {err}")
