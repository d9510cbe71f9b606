"""HostDatastoreBrowser: SearchDatastore_Task / SearchDatastoreSubFolders_Task over a datastore's real directory.

As ESX: no matchPattern means every file; folderPath is `"[ds] dir"`; a disk shows as its descriptor only (its
`-flat.vmdk` data is never listed nor descended into); on vSAN the root lists each namespace by UUID with its
friendlyName. Without queries every file matches; `details.fileType` asks for typed infos (FolderFileInfo, ...).
"""
from __future__ import annotations

import datetime
import fnmatch
import os
import stat
from pathlib import Path

from pyVmomi import vim

from ..datastore_paths import DatastorePath, file_not_found
from ..vmdk import DATA_SUFFIX
from .base import ManagedObjectImpl

B = vim.host.DatastoreBrowser

# file kind -> (query type, info type); "folder" by being a directory, the rest by extension
KINDS = {
    "folder": (B.FolderQuery, B.FolderInfo),
    "disk": (B.VmDiskQuery, B.VmDiskInfo),
    "iso": (B.IsoImageQuery, B.IsoImageInfo),
    "floppy": (B.FloppyImageQuery, B.FloppyImageInfo),
    "config": (B.VmConfigQuery, B.VmConfigInfo),
    "template": (B.TemplateVmConfigQuery, B.TemplateVmConfigInfo),
    "nvram": (B.VmNvramQuery, B.VmNvramInfo),
    "log": (B.VmLogQuery, B.VmLogInfo),
    "snapshot": (B.VmSnapshotQuery, B.VmSnapshotInfo),
}
EXTENSIONS = {".vmdk": "disk", ".iso": "iso", ".flp": "floppy", ".vmx": "config", ".vmtx": "template",
              ".nvram": "nvram", ".log": "log", ".vmsn": "snapshot"}
QUERY_KIND = {query: kind for kind, (query, _) in KINDS.items()}
CONTROLLERS = {"lsilogic": vim.vm.device.VirtualLsiLogicController,
               "lsisas1068": vim.vm.device.VirtualLsiLogicSASController,
               "buslogic": vim.vm.device.VirtualBusLogicController,
               "pvscsi": vim.vm.device.ParaVirtualSCSIController,
               "ide": vim.vm.device.VirtualIDEController}


class DatastoreBrowserImpl(ManagedObjectImpl):
    vim_type = vim.host.DatastoreBrowser
    persistent = False  # rebuilt by its datastore on load

    def __init__(self, sim, moid, datastore):
        super().__init__(sim, moid)
        self.init_props(datastore=[datastore.ref],
                        supportedType=[query() for query, _ in KINDS.values()] + [B.Query()])

    # -- vim25 methods --------------------------------------------------------------------------------------------
    def SearchDatastore_Task(self, ctx, datastorePath, searchSpec=None):
        fs = self.sim.datastores
        dspath, ds = fs.resolve(datastorePath)
        return self.sim.tasks.start(ctx, self, lambda task: self._search_one(dspath, ds, searchSpec), entity=ds)

    def SearchDatastoreSubFolders_Task(self, ctx, datastorePath, searchSpec=None):
        fs = self.sim.datastores
        dspath, ds = fs.resolve(datastorePath)

        def work(task):
            start = fs.local(dspath)
            if not start.is_dir():
                raise file_not_found(dspath)
            results = []
            self._walk(dspath, ds, start, searchSpec, results)
            return B.SearchResults.Array(results)
        return self.sim.tasks.start(ctx, self, work, entity=ds)

    def DeleteFile(self, ctx, datastorePath):
        self.sim.datastores.delete(datastorePath)

    # -- search ---------------------------------------------------------------------------------------------------
    def _search_one(self, dspath: DatastorePath, ds, spec):
        local = self.sim.datastores.local(dspath)
        if not local.is_dir():
            raise file_not_found(dspath)
        return B.SearchResults(datastore=ds.ref, folderPath=str(dspath),
                               file=self._files(dspath, ds, local, spec)[0])

    def _walk(self, dspath, ds, local: Path, spec, results):
        files, folders = self._files(dspath, ds, local, spec)
        results.append(B.SearchResults(datastore=ds.ref, folderPath=str(dspath), file=files))
        for name in folders:
            self._walk(dspath.join(name), ds, local / name, spec, results)

    def _files(self, dspath: DatastorePath, ds, local: Path, spec):
        """(matching FileInfos, every subfolder name to recurse into) of one folder."""
        fs = self.sim.datastores
        spec = spec or B.SearchSpec()
        patterns = list(spec.matchPattern or []) or ["*"]
        fold = bool(spec.searchCaseInsensitive)
        if fold:
            patterns = [p.lower() for p in patterns]
        queries = list(spec.query or [])
        details = spec.details
        vsan_root = ds.is_vsan and dspath.is_root
        friendly = {uuid: name for name, uuid in fs.namespaces(ds).items()} if vsan_root else {}
        infos, folders = [], []
        try:
            entries = sorted(os.scandir(local), key=lambda e: e.name)
        except OSError:
            raise file_not_found(dspath) from None
        for entry in entries:
            path = Path(entry.path)
            if fs.hidden(path, vsan_root) or entry.is_symlink():
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if is_dir:
                folders.append(entry.name)
            names = [entry.name] + ([friendly[entry.name]] if entry.name in friendly else [])
            if not any(fnmatch.fnmatchcase(n.lower() if fold else n, p) for n in names for p in patterns):
                continue
            info = self._info(dspath, ds, path, st, is_dir, queries, details)
            if info is None:
                continue
            if entry.name in friendly:
                info.friendlyName = friendly[entry.name]
            infos.append(info)
        if spec.sortFoldersFirst:
            infos.sort(key=lambda i: not isinstance(i, B.FolderInfo))
        return infos, folders

    def _info(self, dspath, ds, path: Path, st, is_dir, queries, details):
        kind = "folder" if is_dir else EXTENSIONS.get(path.suffix.lower(), "file")
        disk = None
        if kind == "disk":
            try:
                disk = self.sim.datastores.disk_info(dspath.join(path.name))
            except Exception:  # a file named .vmdk that is no disk descriptor is a plain file
                kind = "file"
        chosen = None
        if queries:
            matched = [q for q in queries if type(q) is B.Query or QUERY_KIND.get(type(q)) == kind]
            if kind == "disk":
                matched = [q for q in matched if not isinstance(q, B.VmDiskQuery) or _disk_filter(q, disk)]
            if not matched:
                return None
            specific = [q for q in matched if type(q) is not B.Query]
            chosen = specific[0] if specific else matched[0]
        typed = (chosen is not None and type(chosen) is not B.Query) or bool(details and details.fileType)
        cls = KINDS[kind][1] if typed and kind in KINDS else B.FileInfo
        info = cls(path=path.name)
        if details is not None:
            if details.fileSize:
                size = st.st_size
                if disk is not None and disk.formatted:
                    size += os.stat(disk.data_path).st_blocks * 512
                info.fileSize = size
            if details.modification:
                info.modification = datetime.datetime.fromtimestamp(st.st_mtime, datetime.UTC)
            if details.fileOwner:
                info.owner = "root"
        if isinstance(info, B.VmDiskInfo) and disk is not None:
            flags = chosen.details if isinstance(chosen, B.VmDiskQuery) else None
            if flags is not None:
                if flags.diskType:
                    info.diskType = vim.vm.device.VirtualDisk.FlatVer2BackingInfo
                if flags.capacityKb:
                    info.capacityKb = disk.capacity_kb
                if flags.hardwareVersion:
                    info.hardwareVersion = 4
                if flags.controllerType:
                    info.controllerType = CONTROLLERS.get(disk.adapter_type.lower(),
                                                          vim.vm.device.VirtualLsiLogicController)
                if flags.diskExtents:
                    info.diskExtents = [str(dspath.join(path.name[:-len(".vmdk")] + DATA_SUFFIX))]
                if flags.thin:
                    info.thin = disk.thin
        return info


def _disk_filter(query, disk) -> bool:
    f = query.filter
    if f is None or disk is None:
        return disk is not None
    if f.diskType and vim.vm.device.VirtualDisk.FlatVer2BackingInfo not in f.diskType:
        return False
    if f.matchHardwareVersion and 4 not in f.matchHardwareVersion:
        return False
    if f.controllerType and CONTROLLERS.get(disk.adapter_type.lower()) not in f.controllerType:
        return False
    if f.thin is not None and f.thin != disk.thin:
        return False
    return True

