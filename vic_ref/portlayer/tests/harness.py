"""A VCH's surroundings for in-process tests of the port layer and the personality, on the embedded sim.

`VchEnv` makes what `vic-machine create` would: a VM folder for the VCH, its datastore folder with the bootstrap ISO
(which boots `vic_ref.tether`), a VCH config, a logged-in session; and an image layer disk to make containers of
(`FakeImageStore`, standing in for the image store: `get` and `layer_disk`).
"""
from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field

from vic_ref import errors
from vic_ref.config.vch import VCHConfig, new_config
from vic_ref.machine import isos
from vic_ref.trace import Operation
from vic_ref.vsphere import DatastorePath, Session, Target, vim

COMPUTE = "DC0_C0"  # the cluster: both the VMFS and the vSAN datastore are mounted on its hosts


@dataclass
class FakeImage:
    id: str
    top_layer: str
    layers: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    repo_tags: list[str] = field(default_factory=list)
    repo_digests: list[str] = field(default_factory=list)
    created: str = "2024-01-01T00:00:00Z"
    size: int = 0


class FakeImageStore:
    """Images by reference or ID; each image's top layer is a real (small) disk on the datastore."""

    def __init__(self, session: Session, datastore: str, root: str, vsan: bool = False):
        self.session = session
        self.vsan = vsan
        self._namespace = False
        self.datastore = datastore
        self.root = root  # "VIC/<vch-id>/images"
        self.images: dict[str, FakeImage] = {}

    def add(self, op: Operation, ref: str, *, cmd: list[str] | None = None, env: list[str] | None = None,
            entrypoint: list[str] | None = None, workdir: str = "", stop_signal: str = "") -> FakeImage:
        layer = uuid.uuid4().hex + uuid.uuid4().hex
        folder = DatastorePath(self.datastore, f"{self.root}/{layer}")
        dc = self.session.datacenter
        if self.vsan and not self._namespace:
            # vSAN: top-level folders are namespaces, made by the namespace manager
            try:
                self.session.call(op, self.session.content.datastoreNamespaceManager.CreateDirectory,
                                  self.session.datastore, displayName=self.root.split("/", 1)[0])
            except errors.AlreadyExists:
                pass
            self._namespace = True
        self.session.call(op, self.session.content.fileManager.MakeDirectory, str(folder), dc, True)
        disk_spec = vim.VirtualDiskManager.FileBackedVirtualDiskSpec(diskType="thin", adapterType="lsiLogic",
                                                                      capacityKb=1024)
        self.session.run_task(op, self.session.content.virtualDiskManager.CreateVirtualDisk_Task,
                              name=str(folder.join(f"{layer}.vmdk")), datacenter=dc, spec=disk_spec)
        container_config = {"Cmd": cmd if cmd is not None else ["sh"],
                            "Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                            "Entrypoint": entrypoint, "WorkingDir": workdir, "Labels": None}
        if stop_signal:
            container_config["StopSignal"] = stop_signal
        image = FakeImage(id="sha256:" + uuid.uuid4().hex + uuid.uuid4().hex, top_layer=layer, layers=[layer],
                          config={"architecture": "amd64", "os": "linux", "config": container_config},
                          repo_tags=[ref if ":" in ref else f"{ref}:latest"])
        for key in (ref, image.repo_tags[0], image.id, image.id[len("sha256:"):]):
            self.images[key] = image
        return image

    def get(self, op: Operation, ref: str) -> FakeImage:
        image = self.images.get(ref) or self.images.get(f"{ref}:latest")
        if image is None:
            shown = ref if ":" in ref else f"{ref}:latest"
            raise errors.NotFound(f"No such image: {shown}")
        return image

    def layer_disk(self, op: Operation, layer_id: str) -> DatastorePath:
        return DatastorePath(self.datastore, f"{self.root}/{layer_id}/{layer_id}.vmdk")

    def list(self, op: Operation) -> list[FakeImage]:
        return list({id(i): i for i in self.images.values()}.values())


class VchEnv:
    """A VCH's folder, datastore folder, bootstrap ISO and config on a running sim, plus a session."""

    def __init__(self, url: str, user: str, password: str, *, datastore: str = "LocalDS_0",
                 name: str | None = None):
        self.op = Operation.new("test VCH env")
        self.name = name or f"vch-{uuid.uuid4().hex[:6]}"
        self.datastore = datastore
        self.target = Target(url, user, password, keepalive=None, compute_resource=COMPUTE, datastore=datastore)
        self.session = Session.open(self.op, self.target, populate=True)
        op, session = self.op, self.session
        self.folder = session.call(op, session.vm_folder.CreateFolder, self.name)
        kind = session.retrieve_one(op, session.datastore, ["summary.type"]).get("summary.type")
        self.vsan = kind == "vsan"
        ds_folder = DatastorePath(datastore, self.name)
        if self.vsan:
            session.call(op, session.content.datastoreNamespaceManager.CreateDirectory, session.datastore,
                         displayName=self.name)
        else:
            session.call(op, session.content.fileManager.MakeDirectory, str(ds_folder), session.datacenter, True)
        self.bootstrap = ds_folder.join(isos.BOOTSTRAP_ISO)
        # images here are empty disks: the placeholder tether keeps containers "running" without a process
        session.upload(op, self.bootstrap, isos.bootstrap_iso(args=["--placeholder"]))
        folder_path = session.finder.inventory_path(op, self.folder)
        self.config: VCHConfig = new_config(
            self.name, url, user, password, image_store=f"[{datastore}]", datacenter=session.datacenter_path,
            compute_resource=COMPUTE, folder=folder_path, bootstrap_image_path=str(self.bootstrap), port=1)
        self.images = FakeImageStore(session, datastore, f"VIC/{self.config.id}/images", vsan=self.vsan)

    def with_config(self, **changes) -> VCHConfig:
        self.config = dataclasses.replace(self.config, **changes)
        return self.config

    def portlayer(self, *, start: bool = True):
        from vic_ref.portlayer import PortLayer
        portlayer = PortLayer(self.op, self.session, self.config, None, storage=self.images)
        if start:
            portlayer.start(self.op)
        return portlayer

    def close(self) -> None:
        self.session.close(self.op)


__all__ = ["VchEnv", "FakeImageStore", "FakeImage", "COMPUTE", "create_container"]


def create_container(portlayer, op: Operation, image, name: str | None = None, *, cmd: tuple[str, ...] = ("sh",),
                     annotations: dict | None = None, **task) -> str:
    """Create a container the way the personality does: handle, image join, task join, commit."""
    handle = portlayer.exec.create_handle(op, name=name, annotations=annotations)
    try:
        portlayer.exec.join_image(op, handle, image, repo=image.repo_tags[0].split(":")[0])
        portlayer.exec.join_task(op, handle, path=cmd[0], args=cmd[1:], **task)
    except BaseException:
        portlayer.exec.discard(op, handle)
        raise
    portlayer.exec.commit(op, handle)
    return handle.id
