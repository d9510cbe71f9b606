"""VM snapshots: CreateSnapshot_Task, RevertToSnapshot_Task / RevertToCurrentSnapshot_Task, RemoveSnapshot_Task,
RemoveAllSnapshots_Task.

A snapshot here captures the VM's configuration (devices, ISO, extraConfig, name) and its power state; reverting
restores them. Disk contents are not captured: no delta disks are made, so disks keep what was written after the
snapshot (what vic-machine's upgrade and rollback need, as the appliance VM keeps no state on disks). Files as ESX
has them: `<vm>-Snapshot<N>.vmsn` (here: the snapshot's .vmx) and the `<vm>.vmsd` index.
"""
from __future__ import annotations

import copy

from pyVmomi import vim, vmodl

from ..sessions import now
from . import vmx
from .base import ManagedObjectImpl
from .folder import new_moid
from .vm_power import _post


class VirtualMachineSnapshotImpl(ManagedObjectImpl):
    vim_type = vim.vm.Snapshot

    def __init__(self, sim, moid, vm, config, power_state: str):
        super().__init__(sim, moid)
        self.power_state = power_state
        self.init_props(config=config, childSnapshot=[], vm=vm.ref, value=[], availableField=[])

    def extra_state(self):
        return {"power_state": self.power_state}

    def load_extra_state(self, state):
        self.power_state = state.get("power_state", "poweredOff")

    def vm(self):
        return self.sim.registry.get(self.props["vm"])

    # -- WSDL methods -------------------------------------------------------------------------------------------
    def RevertToSnapshot_Task(self, ctx, host=None, suppressPowerOn=None):
        vm = self.vm()
        return self.sim.tasks.start(ctx, vm, lambda task: vm.revert_to(self, bool(suppressPowerOn)))

    def RemoveSnapshot_Task(self, ctx, removeChildren, consolidate=None):
        vm = self.vm()
        return self.sim.tasks.start(ctx, vm, lambda task: vm.remove_snapshot(self, bool(removeChildren)))

    def RenameSnapshot(self, ctx, name=None, description=None):
        vm = self.vm()
        node = vm.snapshot_node(self)
        if name:
            node.name = name
        if description is not None:
            node.description = description
        vm.touch("snapshot")
        vm.write_vmsd()


class VmSnapshotOps:
    """Mixed into VirtualMachineImpl."""

    def snapshots(self) -> list[VirtualMachineSnapshotImpl]:
        out = []

        def walk(nodes):
            for node in nodes or []:
                snap = self.sim.registry.find(node.snapshot._moId)
                if snap is not None:
                    out.append(snap)
                walk(node.childSnapshotList)
        info = self.props.get("snapshot")
        walk(info.rootSnapshotList if info is not None else [])
        return out

    def snapshot_node(self, snap, nodes=None):
        info = self.props.get("snapshot")
        for node in (nodes if nodes is not None else (info.rootSnapshotList if info is not None else [])):
            if node.snapshot._moId == snap.moid:
                return node
            found = self.snapshot_node(snap, node.childSnapshotList)
            if found is not None:
                return found
        return None

    def _snapshot_file(self, node_id: int) -> str:
        return self.sibling(f"{self.base_name()}-Snapshot{node_id}.vmsn")

    # -- WSDL methods -------------------------------------------------------------------------------------------
    def CreateSnapshot_Task(self, ctx, name, memory, quiesce, description=None):
        return self.sim.tasks.start(ctx, self, lambda task: self.create_snapshot(name, description, memory,
                                                                                 quiesce).ref)

    def RevertToCurrentSnapshot_Task(self, ctx, host=None, suppressPowerOn=None):
        def work(task):
            info = self.props.get("snapshot")
            if info is None or info.currentSnapshot is None:
                raise vim.fault.NotFound(msg="The object or item referred to could not be found: the virtual "
                                             "machine has no current snapshot.")
            self.revert_to(self.sim.registry.get(info.currentSnapshot), bool(suppressPowerOn))
        return self.sim.tasks.start(ctx, self, work)

    def RemoveAllSnapshots_Task(self, ctx, consolidate=None, spec=None):
        def work(task):
            info = self.props.get("snapshot")
            for node in list(info.rootSnapshotList if info is not None else []):
                self.remove_snapshot(self.sim.registry.get(node.snapshot), True)
        return self.sim.tasks.start(ctx, self, work)

    def ConsolidateVMDisks_Task(self, ctx):
        return self.sim.tasks.start(ctx, self, lambda task: None)

    # -- the work -----------------------------------------------------------------------------------------------
    def create_snapshot(self, name, description, memory, quiesce) -> VirtualMachineSnapshotImpl:
        if not name:
            raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: name",
                                              invalidProperty="name")
        if self.props["config"].template:
            raise vmodl.fault.NotSupported(msg="The operation is not supported on the object: a template.")
        state = self.power_state
        kept_state = "poweredOn" if state == "poweredOn" and memory else "poweredOff"
        snap = VirtualMachineSnapshotImpl(self.sim, new_moid(self.sim, "snapshot"), self,
                                          copy.deepcopy(self.props["config"]), kept_state)
        self.sim.registry.add(snap)
        info = self.props.get("snapshot")
        all_nodes = self._all_nodes()
        node = vim.vm.SnapshotTree(snapshot=snap.ref, vm=self.ref, name=name, description=description or "",
                                   id=max((n.id for n in all_nodes), default=0) + 1, createTime=now(),
                                   state=state, quiesced=bool(quiesce and state == "poweredOn"),
                                   childSnapshotList=[], replaySupported=False)
        current = self.sim.registry.find(info.currentSnapshot._moId) if info is not None and \
            info.currentSnapshot is not None else None
        if current is not None:
            parent_node = self.snapshot_node(current)
            parent_node.childSnapshotList = list(parent_node.childSnapshotList or []) + [node]
            current.props["childSnapshot"].append(snap.ref)
            current.touch("childSnapshot")
            roots = list(info.rootSnapshotList)
        else:
            roots = list(info.rootSnapshotList) if info is not None else []
            roots.append(node)
        self.set(snapshot=vim.vm.SnapshotInfo(currentSnapshot=snap.ref, rootSnapshotList=roots),
                 rootSnapshot=[n.snapshot for n in roots])
        self.sim.datastores.write_file(self._snapshot_file(node.id), vmx.dumps(
            vmx.vmx_entries(snap.props["config"], self.home_dir(), self._network_name)))
        self.write_vmsd()
        self.vm_log(f"SnapshotVMX: taking snapshot '{name}' (id {node.id})")
        self.refresh_files()
        return snap

    def revert_to(self, snap, suppress_power_on: bool):
        if self.power_state != "poweredOff":
            self.power_off(f"Reverting to snapshot {snap.moid}: powering off")
        saved = copy.deepcopy(snap.props["config"])
        config = self.props["config"]
        # the config as it was, with a changeVersion newer than any the VM had
        saved.changeVersion = config.changeVersion
        self._bump_change_version(saved)
        self._refresh_config(saved)
        if saved.name != self.name:
            self.set(name=saved.name)
        self.set(config=saved)
        self._sync_links()
        self.write_vmx()
        info = self.props["snapshot"]
        info.currentSnapshot = snap.ref
        self.touch("snapshot")
        self.write_vmsd()
        self.vm_log(f"Reverting to snapshot {snap.moid}")
        self.refresh_files()
        _post(self, vim.event.VmReconfiguredEvent, configSpec=vim.vm.ConfigSpec())
        if snap.power_state == "poweredOn" and not suppress_power_on:
            self.power_on()
            _post(self, vim.event.VmPoweredOnEvent)

    def remove_snapshot(self, snap, remove_children: bool):
        info = self.props["snapshot"]
        node = self.snapshot_node(snap)
        parent = self._parent_node(node)
        siblings = parent.childSnapshotList if parent is not None else info.rootSnapshotList
        index = next(i for i, n in enumerate(siblings) if n is node)
        doomed = [node]
        if remove_children:
            doomed = self._subtree(node)
            replacement = []
        else:
            replacement = list(node.childSnapshotList or [])
        siblings = list(siblings[:index]) + replacement + list(siblings[index + 1:])
        parent_snap = self.sim.registry.find(parent.snapshot._moId) if parent is not None else None
        roots = list(info.rootSnapshotList)
        if parent is not None:
            parent.childSnapshotList = siblings
            parent_snap.set(childSnapshot=[n.snapshot for n in siblings])
        else:
            roots = siblings
        gone = {n.snapshot._moId for n in doomed}
        if info.currentSnapshot is not None and info.currentSnapshot._moId in gone:
            info.currentSnapshot = parent.snapshot if parent is not None else None
        for n in doomed:
            obj = self.sim.registry.find(n.snapshot._moId)
            if obj is not None:
                self.sim.registry.remove(obj)
            path = self._snapshot_file(n.id)
            if self.sim.datastores.exists(path):
                self.sim.datastores.delete(path)
        if roots:
            info.rootSnapshotList = roots
            self.set(snapshot=info, rootSnapshot=[n.snapshot for n in roots])
        else:
            self.set(snapshot=None, rootSnapshot=[])
        self.write_vmsd()
        self.refresh_files()

    def drop_snapshots(self):
        """The VM leaves the inventory: its snapshot objects go with it (their files stay, or go with Destroy)."""
        for snap in self.snapshots():
            self.sim.registry.remove(snap)

    def _all_nodes(self):
        out = []

        def walk(nodes):
            for n in nodes or []:
                out.append(n)
                walk(n.childSnapshotList)
        info = self.props.get("snapshot")
        walk(info.rootSnapshotList if info is not None else [])
        return out

    def _subtree(self, node):
        out = [node]
        for child in node.childSnapshotList or []:
            out.extend(self._subtree(child))
        return out

    def _parent_node(self, node):
        for candidate in self._all_nodes():
            if any(c is node for c in candidate.childSnapshotList or []):
                return candidate
        return None

    def write_vmsd(self):
        """`<vm>.vmsd`, the snapshot index ESX keeps beside the .vmx (removed when there are no snapshots)."""
        path = self.sibling(f"{self.base_name()}.vmsd")
        nodes = self._all_nodes()
        if not nodes:
            if self.sim.datastores.exists(path):
                self.sim.datastores.delete(path)
            return
        info = self.props["snapshot"]
        current = next((n for n in nodes if info.currentSnapshot is not None
                        and n.snapshot._moId == info.currentSnapshot._moId), None)
        entries = [("snapshot.lastUID", str(max(n.id for n in nodes))), ("snapshot.numSnapshots", str(len(nodes))),
                   ("snapshot.current", str(current.id) if current is not None else "0")]
        for i, n in enumerate(nodes):
            parent = self._parent_node(n)
            entries += [(f"snapshot{i}.uid", str(n.id)), (f"snapshot{i}.displayName", n.name),
                        (f"snapshot{i}.description", n.description or ""),
                        (f"snapshot{i}.filename", f"{self.base_name()}-Snapshot{n.id}.vmsn"),
                        (f"snapshot{i}.createTimeHigh", str(int(n.createTime.timestamp()))),
                        (f"snapshot{i}.type", "1" if n.state == "poweredOn" else "0")]
            if parent is not None:
                entries.append((f"snapshot{i}.parent", str(parent.id)))
        self.sim.datastores.write_file(path, vmx.dumps(entries))


