"""FileManager: MakeDirectory, Move/Copy/DeleteDatastoreFile_Task on datastore files.

Datacenter arguments are optional, as on real vCenter: a path's datastore is looked up by name (in the datacenter when
one is given) and a destination defaults to the source's datacenter. Paths that don't resolve fail at the call; file
errors (FileNotFound, FileAlreadyExists, ...) fail the task. A task's entity is the datacenter, so pyVim's WaitForTask
can read its info.
"""
from __future__ import annotations

from pyVmomi import vim

from ..datastore_paths import file_not_found
from .base import ManagedObjectImpl


class FileManagerImpl(ManagedObjectImpl):
    vim_type = vim.FileManager
    persistent = False

    def MakeDirectory(self, ctx, name, datacenter=None, createParentDirectories=None):
        fs = self.sim.datastores
        dspath, _, _ = fs.resolve_call(name, datacenter)
        fs.make_dir(dspath, bool(createParentDirectories))

    def DeleteDatastoreFile_Task(self, ctx, name, datacenter=None):
        fs = self.sim.datastores
        dspath, _, entity = fs.resolve_call(name, datacenter)
        return self.sim.tasks.start(ctx, self, lambda task: fs.delete(dspath), entity=entity)

    def MoveDatastoreFile_Task(self, ctx, sourceName, destinationName, sourceDatacenter=None,
                               destinationDatacenter=None, force=None):
        return self._transfer(ctx, sourceName, sourceDatacenter, destinationName, destinationDatacenter, force,
                              self.sim.datastores.move)

    def CopyDatastoreFile_Task(self, ctx, sourceName, destinationName, sourceDatacenter=None,
                               destinationDatacenter=None, force=None):
        return self._transfer(ctx, sourceName, sourceDatacenter, destinationName, destinationDatacenter, force,
                              self.sim.datastores.copy)

    def _transfer(self, ctx, source, source_dc, dest, dest_dc, force, op):
        src, dst, entity = self.sim.datastores.resolve_transfer(source, source_dc, dest, dest_dc)
        return self.sim.tasks.start(ctx, self, lambda task: op(src, dst, bool(force)) and None, entity=entity)

    def QueryFileLockInfo(self, ctx, path, host=None):
        fs = self.sim.datastores
        dspath, _, _ = fs.resolve_call(path)
        if not fs.exists(dspath):
            raise file_not_found(dspath)
        return vim.FileManager.FileLockInfoResult(lockInfo=[])
