"""Test scaffolding for the image store: a stand-in appliance VM on the embedded sim, whose guest the test process
plays (the store finds its disks' data only through the guest channel, as in the real appliance).

    appliance = Appliance(sim_target)            # VM with a PVSCSI controller, booting idle_guest
    store = appliance.store()                    # ImageStore(op, session, vch_config, guest_channel)
    appliance.close()

The guest program (`idle_guest.py`) only publishes its channel path and boot token; the test process then opens
its own connection to that channel, with that token, and runs the store as the guest would.
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from vic_ref.config.vch import new_config
from vic_ref.guest import GuestChannel
from vic_ref.portlayer.storage import ImageStore
from vic_ref.trace import Operation
from vic_ref.vsphere import DatastorePath, Session, Target, vim

DATASTORE = "LocalDS_0"
COMPUTE = "DC0_C0"
GUEST_MODULE = "vic_ref.portlayer.storage.tests.idle_guest"


def iso_manifest(module: str) -> bytes:
    """A sim "ISO": the JSON manifest naming the guest program (vsphere_sim/guests.py, written here by hand)."""
    return json.dumps({"vsphere_sim_guest": {"module": module, "version": "test"}}).encode()


class Appliance:
    """A VM standing in for the VCH appliance, its guest channel, and a VCH config whose image store is on it."""

    def __init__(self, sim_target, *, datastore: str = DATASTORE, scsi: bool = True, vch_id: str | None = None):
        self.sim = sim_target.sim
        self.op = Operation.new("image store test appliance")
        op = self.op
        self.target = Target(sim_target.url, sim_target.user, sim_target.password, keepalive=None,
                             compute_resource=COMPUTE, datastore=datastore)
        self.session = Session.open(op, self.target, populate=True)
        session = self.session
        self.name = f"vch-{uuid.uuid4().hex[:8]}"
        folder = DatastorePath(datastore, self.name)
        session.call(op, session.content.fileManager.MakeDirectory, str(folder), session.datacenter, True)
        iso = folder.join("appliance.iso")
        session.upload(op, iso, iso_manifest(GUEST_MODULE))
        devices = [vim.vm.device.VirtualDeviceSpec(operation="add", device=vim.vm.device.VirtualCdrom(
            key=-2, controllerKey=200, unitNumber=0,
            backing=vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName=str(iso)),
            connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, connected=True)))]
        if scsi:
            controller = vim.vm.device.ParaVirtualSCSIController(key=-100, busNumber=0, sharedBus="noSharing")
            devices.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=controller))
        spec = vim.vm.ConfigSpec(name=self.name, guestId="otherGuest64", numCPUs=1, memoryMB=256,
                                 files=vim.vm.FileInfo(vmPathName=f"[{datastore}] {self.name}/"),
                                 deviceChange=devices)
        self.vm = session.run_task(op, session.vm_folder.CreateVM_Task, config=spec, pool=session.pool)
        self.channel = self.boot()
        self.config = new_config(self.name, sim_target.url, sim_target.user, sim_target.password,
                                 image_store=f"[{datastore}]", datacenter=session.datacenter_path,
                                 compute_resource=COMPUTE, vch_id=vch_id or str(uuid.uuid4()), port=1)

    def boot(self, timeout: float = 30.0) -> GuestChannel:
        """Power on (or reset) and connect to the new boot's guest channel."""
        state = self.session.retrieve_one(self.op, self.vm, ["runtime.powerState"])["runtime.powerState"]
        marker = Path(self.sim.workdir) / "guests" / self.vm._moId / "channel.json"
        marker.unlink(missing_ok=True)
        task = self.vm.ResetVM_Task if state == "poweredOn" else self.vm.PowerOnVM_Task
        self.session.run_task(self.op, task)
        deadline = time.monotonic() + timeout
        while not marker.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the appliance guest did not boot within {timeout}s")
            time.sleep(0.05)
        info = json.loads(marker.read_text())
        return GuestChannel(info["path"], info["token"])

    def store(self, **kwargs) -> ImageStore:
        store = ImageStore(self.op, self.session, self.config, self.channel, **kwargs)
        store.start(self.op)
        return store

    def local(self, path: DatastorePath | str) -> Path:
        """The real file behind a datastore path (for asserting on the datastore's layout)."""
        return Path(self.sim.datastores.local(str(path)))

    def close(self) -> None:
        try:
            self.channel.close()
            self.session.run_task(self.op, self.vm.PowerOffVM_Task)
        except Exception:  # noqa: BLE001 - tearing down
            pass
        self.session.close(self.op)


__all__ = ["Appliance", "iso_manifest", "DATASTORE", "COMPUTE"]
