"""Datastore: a VMFS or vSAN datastore whose content is a real directory (see `datastore_fs.py`).

Its kind, volume UUID and capacity live in its own properties (`summary.type`, `summary.url`, `summary.capacity`), so a
datastore loaded from the state store needs nothing else. Free space is the host filesystem's, bounded by the capacity.
"""
from __future__ import annotations

import secrets

from pyVmomi import vim

from ..sessions import now
from .base import ManagedEntityImpl, ref_list_add, ref_list_remove

MAX_FILE_SIZE = 62 * 1024 ** 4  # VMFS 6: 62 TB
MAX_MEMORY_FILE_SIZE = 64 * 1024 ** 4


def _volume_id(kind: str) -> str:
    if kind == "vsan":
        return f"vsan:{secrets.token_hex(8)}-{secrets.token_hex(8)}"
    # VMFS volume UUIDs: 8-8-4-12 hex, the last part the MAC of the host that formatted it
    return f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(6)}"


class DatastoreImpl(ManagedEntityImpl):
    vim_type = vim.Datastore

    @classmethod
    def build(cls, sim, moid: str, name: str, folder, kind: str, capacity: int) -> DatastoreImpl:
        ds = cls(sim, moid, name, folder)
        volume = _volume_id(kind)
        url = f"ds:///vmfs/volumes/{volume}/"
        vsan = kind == "vsan"
        summary = vim.Datastore.Summary(
            datastore=ds.ref, name=name, url=url, capacity=capacity, freeSpace=capacity, uncommitted=0,
            accessible=True, multipleHostAccess=vsan, type=kind, maintenanceMode="normal")
        common = dict(name=name, url=url, freeSpace=capacity, maxFileSize=MAX_FILE_SIZE,
                      maxVirtualDiskCapacity=MAX_FILE_SIZE, maxMemoryFileSize=MAX_MEMORY_FILE_SIZE,
                      timestamp=now(), containerId=volume.removeprefix("vsan:"),
                      supportedVDiskFormats=["vsanSparse" if vsan else "seSparse", "thin", "lazyzeroedthick",
                                             "eagerzeroedthick"])
        if vsan:
            info = vim.host.VsanDatastoreInfo(membershipUuid=volume.removeprefix("vsan:"), accessGenNo=0, **common)
        else:
            uuid = volume
            info = vim.host.VmfsDatastoreInfo(
                maxPhysicalRDMFileSize=MAX_FILE_SIZE, maxVirtualRDMFileSize=MAX_FILE_SIZE,
                vmfs=vim.host.VmfsVolume(type="VMFS", name=name, capacity=capacity, blockSizeMb=1, blockSize=1024,
                                         maxBlocks=capacity // (1024 * 1024), majorVersion=6, version="6.82",
                                         uuid=uuid, extent=[vim.host.ScsiDisk.Partition(
                                             diskName=f"mpx.vmhba0:C0:T{moid.rpartition('-')[2]}:L0", partition=1)],
                                         vmfsUpgradable=False, ssd=True, local=True),
                **common)
        capability = vim.Datastore.Capability(
            directoryHierarchySupported=True, rawDiskMappingsSupported=not vsan,
            perFileThinProvisioningSupported=True, storageIORMSupported=not vsan, nativeSnapshotSupported=vsan,
            topLevelDirectoryCreateSupported=not vsan, seSparseSupported=not vsan, vmfsSparseSupported=not vsan,
            vsanSparseSupported=vsan, upitSupported=False, vmdkExpandSupported=True, clusteredVmdkSupported=False)
        ds.init_props(summary=summary, info=info, capability=capability, host=[], vm=[],
                      browser=vim.host.DatastoreBrowser(f"datastoreBrowser-{moid}"), iormConfiguration=None)
        return ds

    # -- what the filesystem needs ----------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.props["summary"].type

    @property
    def is_vsan(self) -> bool:
        return self.kind == "vsan"

    @property
    def volume_id(self) -> str:
        """The `/vmfs/volumes/<id>` of this datastore: its UUID (`vsan:<uuid>` on vSAN)."""
        return self.props["summary"].url.rstrip("/").rpartition("/")[2]

    @property
    def capacity(self) -> int:
        return self.props["summary"].capacity

    # -- computed properties --------------------------------------------------------------------------------------
    def prop_summary(self):
        summary = self.props["summary"]
        summary.capacity, summary.freeSpace = self.sim.datastores.space(self)
        return summary

    def prop_info(self):
        info = self.props["info"]
        info.freeSpace = self.sim.datastores.space(self)[1]
        info.timestamp = now()
        return info

    # -- wiring ---------------------------------------------------------------------------------------------------
    def ensure_browser(self):
        from .datastore_browser import DatastoreBrowserImpl
        ref = self.props["browser"]
        if self.sim.registry.find(ref._moId) is None:
            self.sim.registry.add(DatastoreBrowserImpl(self.sim, ref._moId, self))

    def on_loaded(self):
        self.sim.datastores.ds_dir(self).mkdir(parents=True, exist_ok=True)
        self.ensure_browser()

    def mount_on(self, host):
        """Mount on a host: `host` here, `datastore` there (and on the host's compute resource)."""
        mounts = self.props["host"]
        if any(m.key._moId == host.moid for m in mounts):
            return
        mounts.append(vim.Datastore.HostMount(key=host.ref, mountInfo=vim.host.MountInfo(
            path=f"/vmfs/volumes/{self.volume_id}", accessMode="readWrite", mounted=True, accessible=True)))
        self.touch("host")
        for owner in (host, host.parent):
            if owner is not None and "datastore" in owner.property_names():
                ref_list_add(owner, "datastore", self.ref)

    def unmount_from(self, host):
        """The host leaves: its mount goes, and this datastore leaves its (and its compute resource's) list."""
        mounts = self.props["host"]
        for i, mount in enumerate(mounts):
            if mount.key._moId == host.moid:
                del mounts[i]
                self.touch("host")
                break
        ref_list_remove(host, "datastore", self.ref)

    def add_vm(self, vm):
        ref_list_add(self, "vm", vm.ref)

    def remove_vm(self, vm):
        ref_list_remove(self, "vm", vm.ref)

    # -- vim25 methods --------------------------------------------------------------------------------------------
    def RefreshDatastore(self, ctx):
        self.touch("summary", "info")

    def RefreshDatastoreStorageInfo(self, ctx):
        self.touch("summary", "info")
