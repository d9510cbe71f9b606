"""VirtualDiskManager: create, copy, move, delete, extend virtual disks and read their UUIDs.

The disk format and its data live in `vmdk.py`. pyVmomi's vim.VirtualDiskManager has no CreateChildDisk_Task:
child (delta) disks are created through ReconfigVM_Task with a parent backing, which the VM calls as
`sim.datastores.create_disk(path, 0, parent=...)`.
"""
from __future__ import annotations

from pyVmomi import vim, vmodl

from .base import ManagedObjectImpl

DISK_TYPES = {"preallocated", "thin", "seSparse", "rdm", "rdmp", "raw", "delta", "sparse2Gb", "thick2Gb",
              "eagerZeroedThick", "sparseMonolithic", "flatMonolithic", "thick"}


class VirtualDiskManagerImpl(ManagedObjectImpl):
    vim_type = vim.VirtualDiskManager
    persistent = False

    def _task(self, ctx, name, datacenter, work):
        fs = self.sim.datastores
        dspath, _, entity = fs.resolve_call(name, datacenter)
        return self.sim.tasks.start(ctx, self, lambda task: work(dspath), entity=entity)

    def CreateVirtualDisk_Task(self, ctx, name, spec, datacenter=None):
        if isinstance(spec, vim.VirtualDiskManager.DeviceBackedVirtualDiskSpec):
            raise vmodl.fault.NotSupported(msg="Device-backed virtual disks are not supported on this datastore")
        if not isinstance(spec, vim.VirtualDiskManager.FileBackedVirtualDiskSpec):
            raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: spec.capacityKb",
                                              invalidProperty="spec.capacityKb")
        if spec.diskType not in DISK_TYPES:
            raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: spec.diskType",
                                              invalidProperty="spec.diskType")

        def work(dspath):
            self.sim.datastores.create_disk(dspath, spec.capacityKb, disk_type=spec.diskType,
                                            adapter_type=spec.adapterType or "lsiLogic")
            return name
        return self._task(ctx, name, datacenter, work)

    def DeleteVirtualDisk_Task(self, ctx, name, datacenter=None):
        return self._task(ctx, name, datacenter, lambda dspath: self.sim.datastores.delete_disk(dspath))

    def CopyVirtualDisk_Task(self, ctx, sourceName, destName, sourceDatacenter=None, destDatacenter=None,
                             destSpec=None, force=None):
        return self._transfer(ctx, sourceName, sourceDatacenter, destName, destDatacenter, force, copy=True)

    def MoveVirtualDisk_Task(self, ctx, sourceName, destName, sourceDatacenter=None, destDatacenter=None,
                             force=None, profile=None):
        return self._transfer(ctx, sourceName, sourceDatacenter, destName, destDatacenter, force, copy=False)

    def _transfer(self, ctx, source, source_dc, dest, dest_dc, force, copy: bool):
        fs = self.sim.datastores
        src, dst, entity = fs.resolve_transfer(source, source_dc, dest, dest_dc)

        def work(task):
            if copy:
                fs.copy_disk(src, dst, bool(force))
                return dest
            fs.move_disk(src, dst, bool(force))
            return dest
        return self.sim.tasks.start(ctx, self, work, entity=entity)

    def ExtendVirtualDisk_Task(self, ctx, name, newCapacityKb, datacenter=None, eagerZero=None):
        return self._task(ctx, name, datacenter,
                          lambda dspath: self.sim.datastores.extend_disk(dspath, newCapacityKb) and None)

    def QueryVirtualDiskUuid(self, ctx, name, datacenter=None):
        fs = self.sim.datastores
        dspath, _, _ = fs.resolve_call(name, datacenter)
        return fs.disk_info(dspath).uuid

    def SetVirtualDiskUuid(self, ctx, name, uuid, datacenter=None):
        fs = self.sim.datastores
        dspath, _, _ = fs.resolve_call(name, datacenter)
        if len(bytes.fromhex(uuid.replace(" ", "").replace("-", "") or "x")) != 16:
            raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: uuid",
                                              invalidProperty="uuid")
        fs.set_disk_uuid(dspath, uuid)

    def QueryVirtualDiskGeometry(self, ctx, name, datacenter=None):
        fs = self.sim.datastores
        dspath, _, _ = fs.resolve_call(name, datacenter)
        sectors = fs.disk_info(dspath).capacity_kb * 2
        return vim.host.DiskDimensions.Chs(cylinder=max(1, sectors // (255 * 63)), head=255, sector=63)

    def QueryVirtualDiskFragmentation(self, ctx, name, datacenter=None):
        fs = self.sim.datastores
        dspath, _, _ = fs.resolve_call(name, datacenter)
        fs.disk_info(dspath)
        return 0

    # Provisioning changes that leave a simulated disk's content as it is: check the disk, do nothing.
    def _noop(self, ctx, name, datacenter=None, **_):
        return self._task(ctx, name, datacenter, lambda dspath: self.sim.datastores.disk_info(dspath) and None)

    InflateVirtualDisk_Task = _noop
    EagerZeroVirtualDisk_Task = _noop
    ZeroFillVirtualDisk_Task = _noop
    DefragmentVirtualDisk_Task = _noop
    ShrinkVirtualDisk_Task = _noop
