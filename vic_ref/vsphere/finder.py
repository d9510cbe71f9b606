"""Finding inventory objects by name or inventory path (what govmomi's find.Finder does for VIC).

Paths are govmomi's: absolute from the root folder (`/dc1/host/cluster1/Resources/pool1`, `/dc1/datastore/ds1`), or
relative to the datacenter folder that holds that kind of object (`cluster1/pool1` under `host`, `ds1` under
`datastore`). A bare name is searched for anywhere below that folder. None asks for the only one there is, and is an
error when there are several (`default datacenter resolves to multiple instances, please specify`).

The walk itself (`resolve_path`) is pure: it is given a function that lists an object's children by name, so the
path rules are tested without a vSphere. Children are what an inventory path goes through: a folder's childEntity, a
datacenter's vm/host/datastore/network folders, a compute resource's root pool (`Resources`) and hosts, a pool's
child pools and vApps. As VIC's `--compute-resource cluster1/pool1` expects, a compute resource also lists its root
pool's children, so `Resources` may be left out.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyVmomi import vim

from .. import errors
from ..trace import Operation

if TYPE_CHECKING:
    from .session import Session

Children = Callable[[Any], list[tuple[str, Any]]]

# the datacenter folder each kind of object is found under
_BASE_FOLDER = {
    vim.Datacenter: None,  # the root folder
    vim.ComputeResource: "hostFolder",
    vim.ResourcePool: "hostFolder",
    vim.HostSystem: "hostFolder",
    vim.Datastore: "datastoreFolder",
    vim.Folder: "vmFolder",
    vim.VirtualMachine: "vmFolder",
    vim.Network: "networkFolder",
}

_KIND_NAMES = {
    vim.Datacenter: "datacenter", vim.ComputeResource: "compute resource", vim.ResourcePool: "resource pool",
    vim.HostSystem: "host", vim.Datastore: "datastore", vim.Folder: "folder", vim.VirtualMachine: "vm",
    vim.Network: "network",
}


def split_path(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def resolve_path(children: Children, start: Any, parts: list[str]) -> Any | None:
    """The object reached from `start` by following child names `parts`, or None. `*` matches one level."""
    nodes = [start]
    for part in parts:
        following = []
        for node in nodes:
            for name, child in children(node):
                if name == part or part == "*":
                    following.append(child)
        if not following:
            return None
        nodes = following
    if len(nodes) > 1:
        raise errors.InvalidArgument(f"path '{'/'.join(parts)}' resolves to {len(nodes)} objects")
    return nodes[0]


class Finder:
    """Looks objects up over one Session; every method takes the Operation first."""

    def __init__(self, session: Session):
        self.session = session

    # -- children, as an inventory path walks them ----------------------------------------------------------------
    def children(self, op: Operation, node: Any) -> list[tuple[str, Any]]:
        props = self._child_props(node)
        if not props:
            return []
        values = self.session.retrieve_one(op, node, props)
        refs: list = []
        named: list[tuple[str, Any]] = []
        if isinstance(node, vim.Datacenter):
            named = [(name, values[p]) for p, name in (("vmFolder", "vm"), ("hostFolder", "host"),
                                                       ("datastoreFolder", "datastore"),
                                                       ("networkFolder", "network")) if values.get(p) is not None]
        elif isinstance(node, vim.ComputeResource):
            pool = values.get("resourcePool")
            if pool is not None:
                named.append(("Resources", pool))
                refs.extend(self.session.retrieve_one(op, pool, ["resourcePool"]).get("resourcePool") or [])
            refs.extend(values.get("host") or [])
        else:
            for p in props:
                refs.extend(values.get(p) or [])
        if refs:
            names = self.session.retrieve(op, refs, ["name"], ignore_missing=True)
            named.extend((item.get("name"), item.obj) for item in names)
        return named

    @staticmethod
    def _child_props(node: Any) -> list[str]:
        if isinstance(node, vim.Folder):
            return ["childEntity"]
        if isinstance(node, vim.Datacenter):
            return ["vmFolder", "hostFolder", "datastoreFolder", "networkFolder"]
        if isinstance(node, vim.ComputeResource):
            return ["resourcePool", "host"]
        if isinstance(node, vim.ResourcePool):
            return ["resourcePool"]  # includes vApps, which are pools
        return []

    # -- generic lookup -------------------------------------------------------------------------------------------
    def find(self, op: Operation, kind: type, path: str | None, datacenter: vim.Datacenter | None = None) -> Any:
        """One object of `kind` by path, name, or (path None) the only one there is under `datacenter`."""
        label = _KIND_NAMES.get(kind, kind.__name__)
        root = self.session.content.rootFolder
        base = self._base(op, kind, datacenter)
        if path is None:
            found = self.all(op, kind, base)
            if len(found) == 1:
                return found[0][1]
            if not found:
                raise errors.NotFound(f"no default {label} found", op_id=op.id)
            raise errors.InvalidArgument(f"default {label} resolves to multiple instances, please specify",
                                         op_id=op.id)
        parts = split_path(path)
        if path.startswith("/"):
            obj = resolve_path(lambda n: self.children(op, n), root, parts)
        elif len(parts) > 1:
            obj = resolve_path(lambda n: self.children(op, n), base, parts)
        else:
            matches = [ref for name, ref in self.all(op, kind, base) if name == path]
            if len(matches) > 1:
                raise errors.InvalidArgument(f"path '{path}' resolves to multiple {label}s", op_id=op.id)
            obj = matches[0] if matches else None
        if obj is None or not isinstance(obj, kind):
            raise errors.NotFound(f"{label} '{path}' not found", op_id=op.id)
        return obj

    def all(self, op: Operation, kind: type, base: Any = None) -> list[tuple[str, Any]]:
        """(name, ref) of every object of `kind` below `base` (default: the root folder)."""
        base = base if base is not None else self.session.content.rootFolder
        items = self.session.retrieve_view(op, base, [kind], ["name"])
        return sorted(((item.get("name"), item.obj) for item in items), key=lambda pair: (pair[0] or "", pair[1]._moId))

    def _base(self, op: Operation, kind: type, datacenter: vim.Datacenter | None) -> Any:
        folder = next((f for k, f in _BASE_FOLDER.items() if issubclass(kind, k)), None)
        if folder is None:
            return self.session.content.rootFolder
        dc = datacenter if datacenter is not None else (self.session.datacenter or self.datacenter(op))
        return self.session.retrieve_one(op, dc, [folder])[folder]

    # -- the kinds VIC looks up -----------------------------------------------------------------------------------
    def datacenter(self, op: Operation, path: str | None = None) -> vim.Datacenter:
        return self.find(op, vim.Datacenter, path)

    def compute_resource(self, op: Operation, path: str | None = None,
                         datacenter: vim.Datacenter | None = None) -> vim.ComputeResource:
        return self.find(op, vim.ComputeResource, path, datacenter)

    def resource_pool(self, op: Operation, path: str | None = None,
                      datacenter: vim.Datacenter | None = None) -> vim.ResourcePool:
        """VIC's --compute-resource: a cluster or host (→ its root pool), or a pool (`cluster1/pool1`)."""
        if path is None:
            cr = self.compute_resource(op, None, datacenter)
        else:
            base = self._base(op, vim.ResourcePool, datacenter)
            parts = split_path(path)
            if path.startswith("/"):
                obj = resolve_path(lambda n: self.children(op, n), self.session.content.rootFolder, parts)
            elif len(parts) == 1:
                obj = self._by_name(op, path, base)
            else:
                obj = resolve_path(lambda n: self.children(op, n), base, parts)
            if isinstance(obj, vim.ResourcePool):
                return obj
            if not isinstance(obj, vim.ComputeResource):
                raise errors.NotFound(f"compute resource '{path}' not found", op_id=op.id)
            cr = obj
        return self.session.retrieve_one(op, cr, ["resourcePool"])["resourcePool"]

    def _by_name(self, op: Operation, name: str, base: Any) -> Any:
        for kind in (vim.ComputeResource, vim.ResourcePool):
            matches = [ref for n, ref in self.all(op, kind, base) if n == name]
            if len(matches) > 1:
                raise errors.InvalidArgument(f"path '{name}' resolves to multiple objects", op_id=op.id)
            if matches:
                return matches[0]
        return None

    def owner(self, op: Operation, pool: vim.ResourcePool) -> vim.ComputeResource:
        """The compute resource (cluster or standalone host) a pool belongs to."""
        return self.session.retrieve_one(op, pool, ["owner"])["owner"]

    def datastore(self, op: Operation, path: str | None = None,
                  datacenter: vim.Datacenter | None = None) -> vim.Datastore:
        return self.find(op, vim.Datastore, path, datacenter)

    def datastores(self, op: Operation, datacenter: vim.Datacenter | None = None) -> list[vim.Datastore]:
        return [ref for _, ref in self.all(op, vim.Datastore, self._base(op, vim.Datastore, datacenter))]

    def folder(self, op: Operation, path: str | None = None,
               datacenter: vim.Datacenter | None = None) -> vim.Folder:
        """A VM folder; None is the datacenter's `vm` folder itself."""
        if path is None:
            return self._base(op, vim.Folder, datacenter)
        return self.find(op, vim.Folder, path, datacenter)

    def inventory_path(self, op: Operation, obj: Any) -> str:
        """`/dc1/host/cluster1`: the object's names up to (not including) the root folder."""
        names = []
        root = self.session.content.rootFolder._moId
        node = obj
        while node is not None and node._moId != root:
            values = self.session.retrieve_one(op, node, ["name", "parent"])
            names.append(values.get("name", ""))
            node = values.get("parent")
        return "/" + "/".join(reversed(names))
