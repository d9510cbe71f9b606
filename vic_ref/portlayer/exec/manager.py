"""The exec component (VIC's `lib/portlayer/exec`): container VMs from creation to removal, and the cache of them.

Handles: `create_handle` / `get_handle`, joins (`join_image`, `join_task`, `Handle.rename`), `commit` (the single
writer; a stale changeVersion is retried from a fresh handle by `update`). Lifecycle (`lifecycle.py`): start, stop,
kill, restart, remove, wait, rename. The cache holds every container VM of the VCH's folder; the watcher is the one
writer of its snapshots, and operations wait until it shows their result (`_sync`), so the cache, waits and events
follow vSphere's own order of changes.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ... import errors
from ...config import Build, Cmd, Common, Diagnostics, ExecutorConfig, ExecutorConfigCommon, SessionConfig
from ...config.executor import PLUGIN_VERSION
from ...config.vch import VCHConfig
from ...trace import Operation
from ...vsphere import DatastorePath, Session, option_dict, option_values, retry_on_conflict, vim
from ..events import EventBus
from ..names import NameConflict, NameTable
from . import spec as vmspec
from . import vm as vmops
from .container import Container, ContainerInfo, Snapshot, State, container_id, exit_code_of
from .handle import TARGET_RUNNING, TARGET_STOPPED, Creation, Handle
from .lifecycle import Lifecycle
from .sessions import Sessions
from .watcher import Watcher

SYNC_TIMEOUT = 15.0  # how long an operation waits for the watcher to show its result before reading it itself


class NotRunning(errors.Conflict):
    """Docker's `container <id> is not running` (HTTP 409)."""

    def __init__(self, container_id: str, **kwargs):
        super().__init__(f"container {container_id} is not running", **kwargs)
        self.container_id = container_id


class AmbiguousPrefix(errors.InvalidArgument):
    def __init__(self, prefix: str):
        super().__init__(f"multiple IDs found with provided prefix: {prefix}")


def no_such_container(ref: str) -> errors.NotFound:
    return errors.NotFound(f"No such container: {ref}")


@dataclass
class Inventory:
    """Where the VCH's containers live in vSphere."""
    datacenter: Any
    folder: Any  # the VCH's VM folder
    pool: Any
    datastore: Any  # the image store's datastore: container folders go there too (as VIC's session.Datastore)
    placement: vmspec.Placement
    bootstrap_iso: str


class Exec(Lifecycle, Sessions):
    def __init__(self, session: Session, vch_config: VCHConfig, names: NameTable, events: EventBus,
                 storage: Any = None):
        self.session = session
        self.config = vch_config
        self.names = names
        self.events = events
        self.storage = storage
        self.inventory: Inventory | None = None
        self.attach_uri = ""  # the interaction component's listener, written into new containers' attach port
        self.watcher: Watcher | None = None
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # notified whenever the cache changes
        self._containers: dict[str, Container] = {}
        self._by_moid: dict[str, str] = {}
        self._creating: set[str] = set()
        self._discarding: set[str] = set()  # interrupted creates being removed
        # IDs this process began creating: only a create of an earlier VCH run can have been cut off by a crash (the
        # watcher may still show our own fresh VM under its bare ID for a moment after the rename)
        self._created_here: set[str] = set()
        # jobs the watcher hands off (recording a stop time the tether didn't): never on the watcher's thread
        self._background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vic-exec-bg")
        self._rename_locks: dict[str, threading.Lock] = {}  # one rename of a container at a time
        # older containers renamed since they last ran: their tether is sent `reload` once they start
        self._reload_at_start: set[str] = set()

    # -- setup ----------------------------------------------------------------------------------------------------
    def open(self, op: Operation) -> None:
        """Find the VCH's folder, pool and datastore, then rebuild the cache from vSphere and keep watching."""
        self.inventory = self._resolve(op)
        self.watcher = Watcher(self, self.session, self.inventory.folder)
        self.watcher.start(op)
        op.info("exec: %d containers in %s", len(self._containers), self.config.resources.folder or "the vm folder")

    def close(self, op: Operation) -> None:
        if self.watcher is not None:
            self.watcher.stop(op)
        self._background.shutdown(wait=False, cancel_futures=True)

    def _resolve(self, op: Operation) -> Inventory:
        session, cfg = self.session, self.config
        finder = session.finder
        datacenter = session.datacenter or finder.datacenter(op, cfg.resources.datacenter or None)
        folder = session.vm_folder
        if cfg.resources.folder:
            folder = finder.folder(op, cfg.resources.folder, datacenter)
        pool = session.pool or finder.resource_pool(op, cfg.resources.compute_resource or None, datacenter)
        ds_name = DatastorePath.parse(cfg.storage.image_store).datastore
        datastore = finder.datastore(op, ds_name, datacenter)
        kind = session.retrieve_one(op, datastore, ["summary.type"]).get("summary.type")
        placement = vmspec.Placement(ds_name, vsan=str(kind).lower() == "vsan")
        return Inventory(datacenter, folder, pool, datastore, placement, cfg.container.bootstrap_image_path)

    # -- the cache: what the watcher tells us ---------------------------------------------------------------------
    def vm_changed(self, op: Operation, vm, props: dict[str, Any]) -> None:
        extra = option_dict(props.get("config.extraConfig"))
        cid = container_id(extra)
        if not cid or cid in self._creating:
            # not a container, or one being created: not decoded for nothing (checked again under the lock)
            return
        snap = Snapshot.from_properties(vm, props, extra)
        with self._lock:
            if snap.id in self._creating:
                return  # the create in flight admits it once it is complete
            container = self._containers.get(snap.id)
            if container is None and self._interrupted_create(snap):
                self._discard_interrupted(op, snap)
                return
            if container is None:
                self._admit_locked(op, snap)
            else:
                started, exited = container.update(snap)
                # under the cache lock, so an operation that waits for the cache (`_sync`) sees its events out;
                # in vSphere's order, so a short run's start comes before its die
                if started:
                    self._publish(op, "start", container.info())
                if exited:
                    self._exited(op, container)
            self._changed.notify_all()

    def _interrupted_create(self, snap: Snapshot) -> bool:
        """Step one of a create whose step two never came (the VCH died in between): the VM still carries the bare
        ID as its display name, which no finished container has (unless the naming convention makes it so)."""
        if snap.display_name != snap.id or snap.id in self._created_here:
            return False
        return vmspec.display_name(snap.name, snap.id, self.config.container.name_convention) != snap.id

    def _discard_interrupted(self, op: Operation, snap: Snapshot) -> None:
        """Nobody was ever told about such a container: remove its VM and folder, off the watcher's thread."""
        if snap.id in self._discarding:
            return
        self._discarding.add(snap.id)
        folder = snap.datastore_folder or self.inventory.placement.folder(snap.id)

        def discard():
            try:
                op.warning("container %s: its create was interrupted; removing its VM and %s", snap.id[:12], folder)
                if snap.power_state != "poweredOff":
                    vmops.power_off(self.session, op, snap.vm)
                vmops.destroy(self.session, op, snap.vm)
                vmops.delete_folder(self.session, op, folder, self.inventory.datacenter)
            except errors.VicError as err:
                op.error("could not remove the half-created container %s: %s", snap.id[:12], err)
            finally:
                self._discarding.discard(snap.id)

        threading.Thread(target=discard, name=f"discard-{snap.id[:12]}", daemon=True).start()

    def vm_left(self, op: Operation, vm) -> None:
        container = self._forget(vm._moId)
        if container is not None:
            op.info("container %s (%s) left the inventory", container.name, container.id[:12])
            self._publish(op, "destroy", container.info())

    def reconcile(self, op: Operation, seen_moids: set[str]) -> None:
        with self._lock:
            gone = [moid for moid in self._by_moid if moid not in seen_moids]
        for moid in gone:
            self.vm_left(op, _Ref(moid))

    def _admit_locked(self, op: Operation, snap: Snapshot) -> Container:
        container = Container(snap)
        self._containers[snap.id] = container
        self._by_moid[snap.moid] = snap.id
        try:
            self.names.reserve(snap.name, snap.id)
        except (NameConflict, errors.InvalidArgument) as err:
            op.warning("container %s: its name %r can't be taken: %s", snap.id[:12], snap.name, err)
        return container

    def _forget(self, moid: str) -> Container | None:
        """Drop a container from the cache (it is gone from vSphere); the one caller that gets it announces it."""
        with self._lock:
            cid = self._by_moid.pop(moid, None)
            container = self._containers.pop(cid, None) if cid is not None else None
            if container is not None:
                self.names.release_all(container.id)
                container.mark_removed()
            self._changed.notify_all()
        return container

    def _exited(self, op: Operation, container: Container) -> None:
        """A run ended: Docker's `die`; the stop time is recorded off this thread if the tether didn't."""
        info = container.info()
        self._publish(op, "die", info, exitCode=info.exit_code)
        try:
            self._background.submit(self._note_stop_time, container.id)
        except RuntimeError:
            pass  # closing: the next VCH finds the container stopped anyway

    def _note_stop_time(self, cid: str) -> None:
        """Record when the container stopped if its tether didn't (the VM powered off under it)."""
        op = Operation.new(f"stop time of {cid[:12]}")
        try:
            self.record_stop(op, cid, killed=False)
        except errors.VicError as err:
            op.debug("no stop time recorded for %s: %s", cid[:12], err)

    # -- lookup ---------------------------------------------------------------------------------------------------
    def find(self, ref: str) -> Container:
        """A container by full ID, exact name, or unique ID prefix (Docker's order); NotFound otherwise."""
        if not ref:
            raise no_such_container(ref)
        with self._lock:
            container = self._containers.get(ref)
            if container is not None:
                return container
            holder = self.names.holder(ref)
            if holder is not None and holder in self._containers:
                return self._containers[holder]
            matches = [c for cid, c in self._containers.items() if cid.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise AmbiguousPrefix(ref)
        raise no_such_container(ref)

    def info(self, ref: str) -> ContainerInfo:
        return self.find(ref).info()

    def lookup(self, container_id: str) -> ContainerInfo | None:
        """The container with exactly this ID, or None: no name or prefix matching, so no walk of the cache. Takes
        no cache lock (one dict read), so an event subscriber may call it while holding locks of its own."""
        container = self._containers.get(container_id)
        return container.info() if container is not None else None

    def list(self) -> list[ContainerInfo]:
        """Every container, newest first (Docker's order)."""
        with self._lock:
            containers = list(self._containers.values())
        infos = [c.info() for c in containers]
        return sorted(infos, key=lambda i: (i.created_ns, i.id), reverse=True)

    def __len__(self) -> int:
        with self._lock:
            return len(self._containers)

    def read_file(self, op: Operation, ref: str, name: str = "output.log") -> bytes:
        """A file of the container's datastore folder (its logs: `output.log`, `tether.debug`); b"" if absent."""
        container = self.find(ref)
        folder = container.snapshot.datastore_folder or self.inventory.placement.folder(container.id)
        try:
            return self.session.download(op, folder.join(name))
        except errors.NotFound:
            return b""

    # -- handles --------------------------------------------------------------------------------------------------
    def get_handle(self, op: Operation, ref: str) -> Handle:
        """A handle on the container's current state, read fresh from vSphere (VIC NewHandle refreshes too)."""
        container = self.find(ref)
        try:
            snap = vmops.read(self.session, op, container.snapshot.vm)
        except errors.NotFound:
            self.vm_left(op, container.snapshot.vm)
            raise no_such_container(ref) from None
        return Handle.for_snapshot(snap)

    def create_handle(self, op: Operation, *, name: str | None = None, num_cpus: int | None = None,
                      memory_mb: int | None = None, annotations: dict[str, str] | None = None,
                      hostname: str = "", domainname: str = "") -> Handle:
        """A new container: an ID, its name reserved (random when none is given), its executor config. Commit the
        handle to create it, or `discard` it; a failed commit releases the name itself."""
        if self.inventory is None:
            raise errors.InvalidState("the port layer is not open")
        cid = vmspec.new_id()
        reserved = self.names.reserve(name, cid) if name else self.names.reserve_random(cid)
        version = self.config.init.version
        config = ExecutorConfig(
            common=ExecutorConfigCommon(id=cid, name=reserved), create_time=time.time_ns(),
            diagnostics=Diagnostics(debug_level=self.config.init.debug),
            version=Build(version=version.version if version else "", git_commit=version.git_commit if version
                          else "", build_number=version.build_number if version else "",
                          plugin_version=self.config.plugin_version or PLUGIN_VERSION),
            annotations=dict(annotations or {}), hostname=hostname, domainname=domainname, key=vmspec.host_key())
        placement = self.inventory.placement
        devices = vmspec.CreateDevices(bootstrap_iso=self.inventory.bootstrap_iso,
                                       log_files=tuple(placement.log_file(cid, f) for f in vmspec.LOG_FILES),
                                       attach_uri=self.attach_uri)
        creation = Creation(placement=placement, devices=devices, num_cpus=num_cpus or vmspec.DEFAULT_CPUS,
                            memory_mb=memory_mb or vmspec.DEFAULT_MEMORY_MB, reserved_names=[reserved])
        with self._lock:
            self._creating.add(cid)
            self._created_here.add(cid)
        op.debug("create handle for %s (%s)", reserved, cid)
        return Handle(config, creation=creation)

    def join_image(self, op: Operation, handle: Handle, image: Any, *, repo: str = "",
                   layer_disk: DatastorePath | None = None) -> Handle:
        """The container's root disk is a new child of the image's top layer (VIC storage AddImageToContainer)."""
        if handle.creation is None:
            raise errors.InvalidArgument("an image can only be joined to a container being created")
        if layer_disk is None:
            if self.storage is None:
                raise errors.Unavailable("no image store")
            layer_disk = self.storage.layer_disk(op, image.top_layer)
        handle.config.layer_id = image.top_layer
        handle.config.image_id = image.id
        handle.config.repo_name = repo or (image.repo_tags[0] if getattr(image, "repo_tags", None) else image.id)
        devices = handle.creation.devices
        devices.root_disk = handle.creation.placement.root_disk(handle.id)
        devices.parent_disk = DatastorePath.of(layer_disk)
        return handle

    def join_task(self, op: Operation, handle: Handle, *, path: str, args: Iterable[str] = (),
                  env: Iterable[str] = (), workdir: str = "", user: str = "", group: str = "", tty: bool = False,
                  open_stdin: bool = False, attach: bool = False, stop_signal: str = "",
                  restart: bool = False) -> Handle:
        """The primary session (its ID is the container's): what the tether runs (VIC CreateContainerTask)."""
        session = SessionConfig(
            common=Common(id=handle.id, name=handle.config.name),
            cmd=Cmd(path=path, args=[path, *args], env=list(env), dir=workdir),
            tty=tty, open_stdin=open_stdin, attach=attach, active=True, restart=restart, stop_signal=stop_signal,
            user=user, group=group, diagnostics=Diagnostics(debug_level=self.config.init.debug))
        handle.config.sessions[handle.id] = session
        return handle

    def discard(self, op: Operation, handle: Handle) -> None:
        """Give up a handle that was never committed: a new container's names are free again."""
        if handle.creation is not None:
            for name in handle.creation.reserved_names:
                self.names.release(name, handle.id)
            with self._lock:
                self._creating.discard(handle.id)

    # -- commit ---------------------------------------------------------------------------------------------------
    def commit(self, op: Operation, handle: Handle) -> None:
        """Send the handle's change to vSphere: create, or reconfigure (with the snapshot's changeVersion), then
        power on or off as targeted, then reload the tether if asked and running."""
        if handle.creating:
            self._create(op, handle)
            return
        vm = handle.vm
        stopping = handle.target_state == TARGET_STOPPED and handle.powered_on
        if stopping:
            vmops.power_off(self.session, op, vm)
        changes = handle.extra_config_changes(powered_on=handle.powered_on and not stopping)
        rename = handle.display_name is not None and handle.display_name != handle.snapshot.display_name
        if changes or rename or handle.device_changes:
            if stopping:
                # the power off changed the VM: the rest goes against its current version
                handle.snapshot = vmops.read(self.session, op, vm)
            spec = vim.vm.ConfigSpec(changeVersion=handle.snapshot.change_version or None,
                                     extraConfig=option_values(changes) or None,
                                     deviceChange=handle.device_changes or None)
            if rename:
                spec.name = handle.display_name
            op.debug("reconfigure %s: %d extraConfig changes%s", handle.id[:12], len(changes),
                     f", name {handle.display_name}" if rename else "")
            vmops.run_task(self.session, op, vm, "ReconfigVM_Task", spec=spec)
        if handle.target_state == TARGET_RUNNING and not handle.powered_on:
            vmops.power_on(self.session, op, vm)
        elif handle.reload and handle.powered_on and not stopping:
            vmops.guest_program(self.session, op, vm, handle.id, "reload")

    def update(self, op: Operation, ref: str, mutate: Callable[[Handle], Any]) -> None:
        """Change a container through a fresh handle and commit it, again from a fresh one on a conflict."""
        def attempt(op: Operation) -> None:
            handle = self.get_handle(op, ref)
            mutate(handle)
            self.commit(op, handle)
        retry_on_conflict(op, attempt)

    def _create(self, op: Operation, handle: Handle) -> None:
        """Create a container VM in two steps (DESIGN-DECISIONS §1): CreateVM_Task with display name = ID in folder
        `<id>`, then ReconfigVM_Task to `{name}-{shortID}`. A failure leaves no VM, no folder and no name."""
        inv, creation, cid = self.inventory, handle.creation, handle.id
        name = handle.config.name
        display = vmspec.display_name(name, cid, self.config.container.name_convention)
        spec = vmspec.create_spec(handle.config, placement=creation.placement, devices=creation.devices,
                                  vch_id=self.config.id, num_cpus=creation.num_cpus, memory=creation.memory_mb,
                                  version=self.config.version)
        if handle.device_changes:
            # devices joined to the new container (its volumes' disks) go in the same CreateVM_Task
            spec.deviceChange = list(spec.deviceChange or []) + list(handle.device_changes)
        vm = None
        try:
            vm = vmops.run_task(self.session, op, inv.folder, "CreateVM_Task", config=spec, pool=inv.pool)
            op.info("created container VM %s (%s) in %s", cid, vm._moId, creation.placement.folder(cid))
            vmops.run_task(self.session, op, vm, "ReconfigVM_Task", spec=vim.vm.ConfigSpec(name=display))
        except BaseException as err:
            self._undo_create(op, handle, vm, err)
            raise
        with self._lock:
            self._creating.discard(cid)
            # what the watcher ignored while the create was in flight: admitted now if it is the finished VM; if it
            # is not, the watcher's next update is (the rename is a change it has yet to report) and admits it
            latest = self.watcher.latest_of(vm._moId) if self.watcher is not None else None
            if latest is not None and latest[1].get("name") == display:
                self.vm_changed(op, vm, latest[1])
        container = self._sync(op, cid, vm, lambda snap: snap.display_name == display)
        self._publish(op, "create", container.info())

    def _undo_create(self, op: Operation, handle: Handle, vm, err: BaseException) -> None:
        cid = handle.id
        op.warning("creating container %s failed: %s; cleaning up", cid[:12], err)
        if vm is not None:
            try:
                vmops.destroy(self.session, op, vm)
            except errors.VicError as cleanup:
                op.error("could not destroy the half-created VM %s: %s", vm._moId, cleanup)
        folder = handle.creation.placement.folder(cid)
        try:
            if vmops.delete_folder(self.session, op, folder, self.inventory.datacenter):
                op.info("deleted %s", folder)
        except errors.VicError as cleanup:
            op.error("could not delete %s: %s", folder, cleanup)
        self.discard(op, handle)

    # -- syncing with the watcher ---------------------------------------------------------------------------------
    def _sync(self, op: Operation, cid: str, vm, predicate: Callable[[Snapshot], bool],
              timeout: float = SYNC_TIMEOUT, *, container_predicate: Callable[[Container], bool] | None = None
              ) -> Container:
        """The cache entry once the watcher shows what `predicate` wants of its snapshot (or `container_predicate`
        of the entry, for its transition counters); read directly if that takes too long."""
        def done(container: Container) -> bool:
            if container_predicate is not None:
                return container_predicate(container)
            return predicate(container.snapshot)

        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                container = self._containers.get(cid)
                if container is not None and done(container):
                    return container
                left = deadline - time.monotonic()
                if left <= 0 or self.watcher is None or not self.watcher.running:
                    break
                self._changed.wait(min(left, 0.25))
        op.debug("the watcher doesn't show %s yet: reading it", cid[:12])
        snap = vmops.read(self.session, op, vm)
        self.vm_changed(op, vm, _props_of(snap))
        with self._lock:
            container = self._containers.get(cid)
        if container is None:
            raise no_such_container(cid)
        return container

    # -- events ---------------------------------------------------------------------------------------------------
    def _publish(self, op: Operation | None, action: str, info: ContainerInfo, **attributes: Any) -> None:
        self.events.container(op, action, info.id, name=info.name, image=info.repo, annotations=info.annotations,
                              **attributes)


class _Ref:
    """A moref stand-in for a VM we only know by moid (one that left while we were not watching)."""

    def __init__(self, moid: str):
        self._moId = moid


def _props_of(snap: Snapshot) -> dict[str, Any]:
    """A snapshot back in the watcher's property form."""
    return {"name": snap.display_name, "runtime.powerState": snap.power_state,
            "config.changeVersion": snap.change_version,
            "config.extraConfig": option_values(snap.extra), "config.files.vmPathName": snap.vm_path,
            "summary.config.numCpu": snap.num_cpu, "summary.config.memorySizeMB": snap.memory_mb}


__all__ = ["Exec", "Inventory", "NotRunning", "AmbiguousPrefix", "no_such_container", "State", "ContainerInfo",
           "Container", "exit_code_of", "SYNC_TIMEOUT"]
