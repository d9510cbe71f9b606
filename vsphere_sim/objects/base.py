"""The base of every simulated managed object.

A managed object holds its vim25 properties as pyVmomi values in `props`, keyed by the top-level property name. Every
change goes through `set()` or `touch()`, which tell the registry, so property filters and persistence both see it.
Methods are named exactly as in the WSDL (`PowerOnVM_Task`); dispatch calls them with the parsed keyword arguments and a
`CallContext` first.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pyVmomi import VmomiSupport, vim, vmodl

if TYPE_CHECKING:
    from ..simulator import Simulator


class ManagedObjectImpl:
    vim_type: ClassVar[type] = VmomiSupport.ManagedObject
    # Transient objects (tasks, sessions' collectors and views) are never written to the state store.
    persistent: ClassVar[bool] = True

    def __init__(self, sim: Simulator, moid: str):
        self.sim = sim
        self.ref = self.vim_type(moid)
        self.props: dict[str, Any] = {}
        # registry version at which each top-level property last changed
        self.prop_versions: dict[str, int] = {}

    @property
    def moid(self) -> str:
        return self.ref._moId

    def __repr__(self):
        return f"<{type(self).__name__} {self.moid}>"

    # -- properties ---------------------------------------------------------------------------------------------
    @classmethod
    def property_names(cls) -> list[str]:
        return [p.name for p in cls.vim_type._GetPropertyList()]

    @classmethod
    def property_type(cls, name: str):
        return VmomiSupport.GetPropertyInfo(cls.vim_type, name).type

    def get_property(self, name: str):
        """Value of a top-level property; computed ones override `prop_<name>`."""
        getter = getattr(self, "prop_" + name, None)
        if getter is not None:
            return getter()
        return self.props.get(name)

    def get_path(self, path: str):
        """Value at a property path such as `runtime.powerState`; InvalidProperty for a path the type lacks."""
        head, _, rest = path.partition(".")
        try:
            self.property_type(head)
        except (AttributeError, KeyError):
            raise vmodl.query.InvalidProperty(name=path) from None
        value = self.get_property(head)
        while rest and value is not None:
            part, _, rest = rest.partition(".")
            try:
                value = getattr(value, part)
            except AttributeError:
                raise vmodl.query.InvalidProperty(name=path) from None
        return value

    def _coerce(self, name: str, value):
        # Lists go out as anyType in property results, where pyVmomi needs its typed arrays.
        if isinstance(value, list) and not hasattr(value, "Item"):
            return self.property_type(name)(value)
        return value

    def init_props(self, **values):
        """Assign properties at construction, before the object is registered."""
        for name, value in values.items():
            self.props[name] = self._coerce(name, value)

    def set(self, **values):
        """Assign top-level properties and record the change."""
        for name, value in values.items():
            self.props[name] = self._coerce(name, value)
        self.touch(*values)

    def touch(self, *names: str):
        """Record that properties changed in place (a nested field was assigned)."""
        self.sim.registry.changed(self, names)

    # -- hooks for the state store ------------------------------------------------------------------------------
    # property -> a field of it the store leaves out, because another property holds that same object (on_loaded
    # puts it back): saved once, not once more with every change of the property around it
    stored_without: dict[str, str] = {}

    def extra_state(self) -> dict:
        """Non-property state to persist (JSON-able)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def on_loaded(self) -> None:
        """Called after every object has been loaded from the state store."""


class ManagedEntityImpl(ManagedObjectImpl):
    vim_type = vim.ManagedEntity

    def __init__(self, sim, moid, name: str, parent=None):
        super().__init__(sim, moid)
        self.init_props(
            name=name, parent=parent.ref if parent is not None else None, overallStatus="green",
            configStatus="green", disabledMethod=[], recentTask=[], declaredAlarmState=[],
            triggeredAlarmState=[], alarmActionsEnabled=True, tag=[], value=[], availableField=[],
            customValue=[], configIssue=[], effectiveRole=[-1], permission=[])

    @property
    def name(self) -> str:
        return self.props["name"]

    @property
    def parent(self) -> ManagedEntityImpl | None:
        ref = self.props.get("parent")
        return self.sim.registry.get(ref) if ref is not None else None

    def ancestors(self):
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    def datacenter(self):
        for node in self.ancestors():
            if isinstance(node.ref, vim.Datacenter):
                return node
        return None


# -- list properties of morefs --------------------------------------------------------------------------------------
# A folder's childEntity or a datastore's vm can hold thousands of morefs. The helpers below change them one at a time
# and log each step in `obj.ref_log[prop]`, so the state store writes that step instead of the whole list (persist.py).
def ref_list_append(obj, prop: str, ref) -> None:
    """Append a moref to a list property (no duplicate check), and record the change."""
    refs = obj.props.get(prop)
    if refs is None:
        obj.set(**{prop: [ref]})
        return
    before = obj.prop_versions.get(prop)
    refs.append(ref)
    obj.touch(prop)
    _log_ref_step(obj, prop, before, "add", ref)


def ref_list_add(obj, prop: str, ref) -> None:
    """Append a moref to a list property unless it is already there, and record the change."""
    refs = obj.props.get(prop)
    if refs is not None:
        members = _members(obj, prop, refs)
        if ref._moId in members:
            return
    ref_list_append(obj, prop, ref)
    if refs is not None:
        members.add(ref._moId)
        obj.__dict__["ref_members"][prop] = (obj.prop_versions.get(prop), members)


def ref_list_remove(obj, prop: str, ref) -> None:
    """Remove a moref from a list property (if there), and record the change."""
    refs = obj.props.get(prop) or []
    i = _index_of(refs, ref._moId)
    if i is None:
        return
    before = obj.prop_versions.get(prop)
    cached = obj.__dict__.get("ref_members", {}).get(prop)
    del refs[i]
    obj.touch(prop)
    _log_ref_step(obj, prop, before, "remove", ref)
    if cached is not None and cached[0] == before:
        cached[1].discard(ref._moId)
        obj.__dict__["ref_members"][prop] = (obj.prop_versions.get(prop), cached[1])


def _members(obj, prop: str, refs) -> set[str]:
    """The moids in a list property, kept beside it while only these helpers change it (rebuilt otherwise)."""
    cache = obj.__dict__.setdefault("ref_members", {})
    version = obj.prop_versions.get(prop)
    found = cache.get(prop)
    if found is None or found[0] != version:
        found = cache[prop] = (version, {r._moId for r in refs})
    return found[1]


def _index_of(refs, moid: str) -> int | None:
    # Newest first: what goes is most often what came last (a VM created, then destroyed). The helpers never put a
    # moref in twice, so the last one found is the only one.
    for i in range(len(refs) - 1, -1, -1):
        if refs[i]._moId == moid:
            return i
    return None


def _log_ref_step(obj, prop: str, before, op: str, ref) -> None:
    """One step of a list property, from version `before` to its current one (only kept when a store will read it)."""
    if obj.sim.store is None or not obj.persistent:
        return
    log = obj.__dict__.setdefault("ref_log", {})
    log.setdefault(prop, []).append((before, obj.prop_versions.get(prop), op, ref))
