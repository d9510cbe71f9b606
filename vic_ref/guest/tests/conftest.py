"""A VM booted in the module's embedded sim, whose guest program (`idle_guest`) hands its channel environment to the
test: the test then is the guest, through vic_ref.guest, and checks the effects through vSphere."""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from vic_ref.machine import isos
from vic_ref.trace import Operation
from vic_ref.vsphere import Session, Target, vim

DATASTORE = "LocalDS_0"
VD = vim.vm.device


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def op(request) -> Operation:
    return Operation.new(request.node.name)


@pytest.fixture(scope="module")
def session(sim_target):
    op = Operation.new("guest tests")
    s = Session.open(op, Target(sim_target.url, sim_target.user, sim_target.password, datacenter="DC0",
                                compute_resource="DC0_C0", datastore=DATASTORE, keepalive=None), populate=True)
    yield s
    s.close(op)


class GuestVMs:
    """Makes VMs that boot a given guest module from an uploaded ISO manifest."""

    def __init__(self, session: Session, sim_target):
        self.session = session
        self.sim = sim_target.sim
        self.folder = f"guest-tests-{uuid.uuid4().hex[:8]}"
        op = Operation.new("guest VMs")
        session.call(op, session.content.fileManager.MakeDirectory, f"[{DATASTORE}] {self.folder}",
                     session.datacenter, True)
        self.isos: dict[str, str] = {}

    def iso(self, module: str) -> str:
        if module not in self.isos:
            path = f"[{DATASTORE}] {self.folder}/{module.replace('.', '-')}.iso"
            self.session.upload(Operation.new("upload iso"), path, isos.manifest(module, version="test"))
            self.isos[module] = path
        return self.isos[module]

    def create(self, module: str, extra: dict | None = None, power_on: bool = True) -> vim.VirtualMachine:
        op = Operation.new("create guest VM")
        cdrom = VD.VirtualCdrom(key=-1, controllerKey=200, unitNumber=0,
                                backing=VD.VirtualCdrom.IsoBackingInfo(fileName=self.iso(module)),
                                connectable=VD.VirtualDevice.ConnectInfo(startConnected=True, connected=True))
        spec = vim.vm.ConfigSpec(
            name=f"g-{uuid.uuid4().hex[:10]}", guestId="otherGuest64", numCPUs=1, memoryMB=64,
            files=vim.vm.FileInfo(vmPathName=f"[{DATASTORE}]"),
            deviceChange=[VD.VirtualDeviceSpec(operation="add", device=cdrom),
                          VD.VirtualDeviceSpec(operation="add", device=VD.ParaVirtualSCSIController(
                              key=-100, busNumber=0, sharedBus="noSharing"))],
            extraConfig=[vim.option.OptionValue(key=k, value=v) for k, v in (extra or {}).items()])
        vm = self.session.run_task(op, self.session.vm_folder.CreateVM_Task, config=spec, pool=self.session.pool)
        if power_on:
            self.session.run_task(op, vm.PowerOnVM_Task)
        return vm

    def guest_env(self, vm) -> dict:
        """The channel environment the idle guest of `vm` wrote for us."""
        path = Path(self.sim.workdir) / "guests" / vm._moId / "env.json"
        wait_for(path.exists, what=f"{vm._moId}'s guest to boot")
        return json.loads(path.read_text())

    def props(self, vm, *paths):
        values = self.session.retrieve_one(Operation.new("props"), vm, list(paths))
        return values if len(paths) > 1 else values.get(paths[0])

    def extra_config(self, vm) -> dict:
        options = self.props(vm, "config.extraConfig") or []
        return {o.key: o.value for o in options}


@pytest.fixture(scope="module")
def guest_vms(session, sim_target):
    return GuestVMs(session, sim_target)
