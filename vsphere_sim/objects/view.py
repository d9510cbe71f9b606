"""ViewManager with ContainerView and ListView: the views VIC and pyVmomi scripts traverse with the collector.

A ContainerView's `view` is computed from the inventory each time it is read, so it always matches the container's
current contents; the property collector compares computed properties by value, so watchers see changes.
"""
from __future__ import annotations

from pyVmomi import vim, vmodl

from .base import ManagedObjectImpl


class ViewManagerImpl(ManagedObjectImpl):
    vim_type = vim.view.ViewManager
    persistent = False

    def prop_viewList(self):
        ctx = self.sim.current
        if ctx is None:
            return vim.view.View.Array()
        return vim.view.View.Array([ref for ref in ctx.session.owned if isinstance(ref, vim.view.View)])

    def _register(self, ctx, view):
        self.sim.registry.add(view)
        ctx.session.owned.append(view.ref)
        return view.ref

    def CreateContainerView(self, ctx, container, type, recursive):
        target = self.sim.registry.get(container)
        if not isinstance(target.ref, (vim.Folder, vim.Datacenter, vim.ComputeResource, vim.ResourcePool,
                                       vim.HostSystem, vim.VirtualApp)):
            raise vmodl.fault.InvalidArgument(msg=f"{container._wsdlName} is not a container",
                                              invalidProperty="container")
        for t in type or []:
            if not issubclass(t, vim.ManagedEntity):
                raise vmodl.fault.InvalidArgument(msg=f"{t._wsdlName} is not a managed entity type",
                                                  invalidProperty="type")
        moid = f"session[{ctx.session.key}]{self.sim.registry.next_id('view')}"
        return self._register(ctx, ContainerViewImpl(self.sim, moid, container, list(type or []), bool(recursive)))

    def CreateListView(self, ctx, obj):
        moid = f"session[{ctx.session.key}]{self.sim.registry.next_id('view')}"
        view = ListViewImpl(self.sim, moid)
        for ref in obj or []:
            self.sim.registry.get(ref)
        view.init_props(view=list(obj or []))
        return self._register(ctx, view)

    def CreateListViewFromView(self, ctx, view):
        source = self.sim.registry.get(view)
        return self.CreateListView(ctx, list(source.get_property("view") or []))

    def CreateInventoryView(self, ctx):
        moid = f"session[{ctx.session.key}]{self.sim.registry.next_id('view')}"
        root = self.sim.root_folder()
        return self._register(ctx, ContainerViewImpl(self.sim, moid, root.ref, [], True, inventory=True))


class _ViewImpl(ManagedObjectImpl):
    persistent = False

    def DestroyView(self, ctx):
        self.sim.registry.remove(self)
        ctx.session.owned[:] = [r for r in ctx.session.owned if r._moId != self.moid]


# Properties that hold an entity's inventory children, by container type.
def _children(obj) -> list:
    ref = obj.ref
    props = obj.props
    if isinstance(ref, vim.Folder):
        return list(props.get("childEntity") or [])
    if isinstance(ref, vim.Datacenter):
        return [r for r in (props.get("vmFolder"), props.get("hostFolder"), props.get("datastoreFolder"),
                            props.get("networkFolder")) if r is not None]
    if isinstance(ref, vim.ComputeResource):
        out = list(props.get("host") or [])
        if props.get("resourcePool") is not None:
            out.append(props["resourcePool"])
        return out
    if isinstance(ref, vim.ResourcePool):  # includes VirtualApp
        return list(props.get("resourcePool") or []) + list(props.get("vm") or [])
    if isinstance(ref, vim.HostSystem):
        return list(props.get("vm") or [])
    return []


class ContainerViewImpl(_ViewImpl):
    vim_type = vim.view.ContainerView

    def __init__(self, sim, moid, container, types, recursive, inventory=False):
        super().__init__(sim, moid)
        self.types = tuple(types)
        self.init_props(container=container, type=[t._wsdlName for t in types], recursive=recursive)

    def prop_view(self):
        registry = self.sim.registry
        container = registry.find(self.props["container"]._moId)
        if container is None:
            return vim.ManagedObject.Array()
        found, seen = [], {container.moid}
        queue = [container]
        while queue:
            node = queue.pop(0)
            for ref in _children(node):
                child = registry.find(ref._moId)
                if child is None or child.moid in seen:
                    continue
                seen.add(child.moid)
                if not self.types or isinstance(child.ref, self.types):
                    found.append(child.ref)
                if self.props["recursive"]:
                    queue.append(child)
        return vim.ManagedObject.Array(found)


class ListViewImpl(_ViewImpl):
    vim_type = vim.view.ListView

    def ModifyListView(self, ctx, add=None, remove=None):
        current = list(self.props.get("view") or [])
        unresolved = []
        for ref in add or []:
            if self.sim.registry.find(ref._moId) is None:
                unresolved.append(ref)
            elif all(r._moId != ref._moId for r in current):
                current.append(ref)
        drop = {r._moId for r in remove or []}
        self.set(view=[r for r in current if r._moId not in drop])
        return unresolved

    def ResetListView(self, ctx, obj=None):
        unresolved = [r for r in obj or [] if self.sim.registry.find(r._moId) is None]
        self.set(view=[r for r in obj or [] if self.sim.registry.find(r._moId) is not None])
        return unresolved

    def ResetListViewFromView(self, ctx, view):
        source = self.sim.registry.get(view)
        self.set(view=list(source.get_property("view") or []))
