"""A VM's files on its datastore: the .vmx rewritten after every change, vmware.log, the swap file of a running VM,
and layout / layoutEx / storage read from the files as they are."""
from __future__ import annotations

import logging
import os
import stat

from pyVmomi import vim, vmodl

from ..sessions import now
from . import vm_config, vmx
from .data import make

log = logging.getLogger("vsphere_sim.vm")

LOG_NAME = "vmware.log"

# nested pyVmomi types, looked up once: each `vim.vm.X.Y` goes through pyVmomi's lazy-type lookup (a lock and a map)
_FileInfo = vim.vm.FileLayoutEx.FileInfo
_DiskUnit = vim.vm.FileLayoutEx.DiskUnit
_DiskLayoutEx = vim.vm.FileLayoutEx.DiskLayout
_DiskLayout = vim.vm.FileLayout.DiskLayout
_UsageOnDatastore = vim.vm.StorageInfo.UsageOnDatastore
_StorageSummary = vim.vm.Summary.StorageSummary


class VmFiles:
    """Mixed into VirtualMachineImpl."""

    def write_vmx(self, how: str = "replace"):
        """The .vmx from the VM's config. `how`: "replace" (atomically), "new" (the file does not exist yet: a VM
        being created in its own folder), "overwrite" (in place: the VM is saved as stale, so a crash mid-write is
        redone on load)."""
        data = vmx.dumps(vmx.vmx_entries(self.props["config"], self.home_dir(), self._network_name))
        datastores = self.sim.datastores
        write = {"new": datastores.write_new_file, "overwrite": datastores.overwrite_file}.get(how,
                                                                                              datastores.write_file)
        write(self.vmx_path(), data)

    def vm_log(self, line: str):
        """Append a line to the VM's vmware.log (the VMX's own log)."""
        try:
            local = self.sim.datastores.local(self.sibling(LOG_NAME))
            stamp = vm_config.utcnow().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            with open(local, "a", encoding="utf-8") as handle:
                handle.write(f"{stamp} In(05) vmx - {line}\n")
        except (OSError, vmodl.MethodFault) as err:
            log.warning("%s: cannot write %s: %s", self.moid, LOG_NAME, err)

    def swap_name(self) -> str:
        return f"{self.base_name()}-{self.props['config'].instanceUuid[:8]}.vswp"

    def _create_swap(self):
        quietly(self.sim.datastores.create_empty, self.sibling(self.swap_name()))

    def _delete_swap(self):
        self.sim.datastores.remove_files(self.home_dir(), [self.swap_name()])

    # What waits for the running task to settle ("vmx": the .vmx rewrite, "layout": refresh_files). Saved with the
    # VM, so a sim killed before the task settled does it on load (on_loaded).
    stale: frozenset = frozenset()

    def write_vmx_later(self):
        """`write_vmx` when the running task settles (settle.py); at once outside a task."""
        self._later("vmx", self.write_vmx)

    def refresh_files_later(self):
        """`refresh_files` when the running task settles (settle.py); at once outside a task."""
        self._later("layout", self.refresh_files)

    def _later(self, what: str, work):
        lock = self.sim.lock
        if not lock.queueing:
            work()
            return
        if not self.stale:
            lock.later(self.settle_files)
        if what not in self.stale:
            self.stale = self.stale | {what}
            self.touch()  # saved with its extra state

    def settle_files(self):
        """What waits, in order: the .vmx first, so the layout sees the file as it is written."""
        stale, self.stale = self.stale, frozenset()
        if not stale or self.sim.registry.find(self.moid) is not self:
            return
        self.touch()
        if "vmx" in stale:
            self.write_vmx("overwrite")
        if "layout" in stale:
            self.refresh_files()

    def refresh_files(self):
        """layout, layoutEx, storage and summary.storage from the files as they are on the datastore."""
        datastores = self.sim.datastores
        files: list = []
        by_name: dict[str, int] = {}
        # the VM's own files are in its home folder: resolve that once (and check it is no symlink, as local_str
        # checks every folder on a file's way) instead of once per file
        prefix = self.home_dir() + "/"
        try:
            home_local = datastores.local_str(prefix[:-1])
            if os.path.islink(home_local):
                home_local = None
        except (OSError, vmodl.MethodFault):
            home_local = None

        def local_of(path: str) -> str:
            if home_local is not None and path.startswith(prefix):
                name = path[len(prefix):]
                if name and "/" not in name and name not in (".", ".."):
                    return f"{home_local}/{name}"
            return datastores.local_str(path)

        def add(path: str, kind: str) -> int | None:
            if path in by_name:
                return by_name[path]
            try:
                st = os.stat(local_of(path))
            except (OSError, vmodl.MethodFault):
                return None
            is_file = stat.S_ISREG(st.st_mode)
            size = st.st_size if is_file else 4096
            used = st.st_blocks * 512 if is_file else size
            key = len(files)
            files.append(make(_FileInfo, key=key, name=path, type=kind, size=size,
                              uniqueSize=used, accessible=True))
            by_name[path] = key
            return key

        add(self.vmx_path(), "config")
        nvram = self.sibling(self.extra_config("nvram") or self.base_name() + ".nvram")
        add(nvram, "nvram")
        log_key = add(self.sibling(LOG_NAME), "log")
        swap_key = add(self.sibling(self.swap_name()), "swap") if self.power_state == "poweredOn" else None
        if self.props.get("snapshot") is not None:
            add(self.sibling(self.base_name() + ".vmsd"), "snapshotList")
            for node in self._all_nodes():
                add(self.sibling(f"{self.base_name()}-Snapshot{node.id}.vmsn"), "snapshotData")
        disks_ex, disks = [], []
        leaf_used: dict[int, int] = {}
        for dev in self.devices():
            if not isinstance(dev, vim.vm.device.VirtualDisk):
                continue
            chain, backing, names = [], dev.backing, []
            while backing is not None and getattr(backing, "fileName", None):
                desc = add(backing.fileName, "diskDescriptor")
                keys = [k for k in (desc,) if k is not None]
                if desc is not None and backing.fileName.endswith(".vmdk"):
                    extent_key = add(backing.fileName[:-len(".vmdk")] + "-flat.vmdk", "diskExtent")
                    if extent_key is not None:
                        keys.append(extent_key)
                if not chain:
                    leaf_used[dev.key] = sum(files[k].uniqueSize or 0 for k in keys)
                chain.append(make(_DiskUnit, fileKey=keys))
                names.append(backing.fileName)
                backing = getattr(backing, "parent", None)
            chain.reverse()
            disks_ex.append(make(_DiskLayoutEx, key=dev.key, chain=chain))
            disks.append(make(_DiskLayout, key=dev.key, diskFile=list(reversed(names))))
        stamp = now()
        self.props["layoutEx"] = make(vim.vm.FileLayoutEx, file=files, disk=disks_ex, snapshot=[], timestamp=stamp)
        home = self.home_dir() + "/"
        self.props["layout"] = make(vim.vm.FileLayout,
            configFile=[f.name[len(home):] for f in files if f.type == "nvram"],
            logFile=[LOG_NAME] if log_key is not None else [], disk=disks, snapshot=[],
            swapFile=files[swap_key].name if swap_key is not None else None)
        usage: dict[str, list[int]] = {}
        for f in files:
            ds = f.name[1:].partition("]")[0]
            usage.setdefault(ds, [0, 0])[0] += f.uniqueSize or 0
        for dev in self.devices():
            if isinstance(dev, vim.vm.device.VirtualDisk) and dev.backing.fileName.startswith("["):
                ds = dev.backing.fileName[1:].partition("]")[0]
                usage.setdefault(ds, [0, 0])[1] += max(0, (dev.capacityInKB or 0) * 1024 - leaf_used.get(dev.key, 0))
        per_ds = []
        for name, (committed, uncommitted) in usage.items():
            try:
                ds = datastores.datastore(name)
            except vmodl.MethodFault:
                continue
            per_ds.append(make(_UsageOnDatastore, datastore=ds.ref, committed=committed,
                                                               uncommitted=uncommitted, unshared=committed))
        self.props["storage"] = make(vim.vm.StorageInfo, perDatastoreUsage=per_ds, timestamp=stamp)
        committed = sum(u.committed for u in per_ds)
        self.props["summary"].storage = make(_StorageSummary,
            committed=committed, uncommitted=sum(u.uncommitted for u in per_ds), unshared=committed,
            timestamp=stamp)
        self.touch("layoutEx", "layout", "storage", "summary")

    def RefreshStorageInfo(self, ctx):
        self.refresh_files()


def remove_vm_folder(sim, home: str):
    """After Destroy_Task: the VM's folder goes once its files are gone, as ESX removes it; anything else in it (a
    disk that was detached first, files others put there) keeps it, and a datastore root is never removed."""
    datastores = sim.datastores
    try:
        dspath = datastores.parse(home)
        if dspath.is_root:
            return
        # the sim's guest console log (guests.py) is the VM's own file, like vmware.log: it goes with the VM
        datastores.remove_files(dspath, ["guest.log"])
        if datastores.remove_empty_dir(dspath):
            return
        if dspath.is_root or not datastores.is_dir(home) or datastores.list_dir(home):
            return
        datastores.delete(home)  # on vSAN a namespace, which goes with its friendly name
    except vmodl.MethodFault:
        pass


def quietly(func, *args):
    """Best-effort file cleanup: a file already gone (or a disk another still needs) is no error here."""
    try:
        func(*args)
    except (vmodl.MethodFault, OSError) as err:
        log.debug("ignored: %s%r: %s", getattr(func, "__name__", func), args, err)
