"""DatastoreNamespaceManager: top-level directories (namespaces) of vSAN datastores.

A namespace is a directory named by a UUID with a friendly name beside it (see `datastore_fs.py`). CreateDirectory
returns the stable UUID path `/vmfs/volumes/vsan:<ds-uuid>/<ns-uuid>`; other datastore kinds are refused as vCenter
refuses them.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from pyVmomi import vim

from ..datastore_paths import DatastorePath, cannot_create, file_not_found, invalid_path
from .base import ManagedObjectImpl

NOT_SUPPORTED = "Datastore not supported for directory creation by DatastoreNamespaceManager"


class DatastoreNamespaceManagerImpl(ManagedObjectImpl):
    vim_type = vim.DatastoreNamespaceManager
    persistent = False

    def CreateDirectory(self, ctx, datastore, displayName=None, policy=None, size=None):
        ds = self.sim.registry.get(datastore)
        fs = self.sim.datastores
        if not ds.is_vsan:
            fault = cannot_create(DatastorePath(ds.name, displayName or ""))
            fault.msg = NOT_SUPPORTED
            raise fault
        return fs.uuid_path(ds, fs.create_namespace(ds, displayName))

    def DeleteDirectory(self, ctx, datastorePath, datacenter=None):
        fs = self.sim.datastores
        dspath, ds = self._namespace_path(datastorePath, datacenter)
        if not ds.is_vsan or len(dspath.parts) != 1:
            raise vim.fault.InvalidDatastorePath(
                msg=f"Invalid datastore path '{datastorePath}': not a top-level directory of a vSAN datastore",
                datastorePath=datastorePath)
        if not fs.is_namespace(ds, dspath.parts[0]):
            raise file_not_found(datastorePath)
        fs.delete(dspath)

    def ConvertNamespacePathToUuidPath(self, ctx, namespaceUrl, datacenter=None):
        """`ds:///vmfs/volumes/vsan:<ds>/<friendly>/rest` (or `"[ds] friendly/rest"`) with the namespace's UUID."""
        fs = self.sim.datastores
        dspath, ds = self._namespace_path(namespaceUrl, datacenter)
        if not ds.is_vsan or dspath.is_root:
            raise invalid_path(namespaceUrl)
        base = fs.ds_dir(ds)
        top = fs.namespace_target(base, dspath.parts[0])
        if not (base / top).is_dir():
            raise file_not_found(namespaceUrl)
        rest = "/".join((top,) + dspath.parts[1:])
        if namespaceUrl.startswith("["):
            return str(DatastorePath(ds.name, rest))
        return f"ds:///vmfs/volumes/{ds.volume_id}/{rest}" + ("/" if namespaceUrl.endswith("/") else "")

    def _namespace_path(self, text, datacenter):
        """A datastore path, a `ds:///vmfs/volumes/<vol>/...` URL or a `/vmfs/volumes/<vol>/...` path."""
        fs = self.sim.datastores
        if not isinstance(text, str):
            raise invalid_path(str(text))
        path = text
        if text.startswith("ds://"):
            path = urlsplit(text).path
        if path.startswith("/vmfs/volumes/"):
            volume, _, rest = path[len("/vmfs/volumes/"):].partition("/")
            ds = fs.datastore_by_volume(volume)
            if ds is None:
                raise vim.fault.InvalidDatastore(msg=f"Invalid datastore path '{text}'.", name=volume)
            return fs.parse(f"[{ds.name}] {rest}"), ds
        dc = self.sim.registry.get(datacenter) if datacenter is not None else None
        return fs.resolve(text, dc)
