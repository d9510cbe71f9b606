"""PropertyCollector and PropertyFilter: RetrievePropertiesEx (+paging), traversal specs, WaitForUpdates(Ex).

Filters belong to the session that created them, even on the shared `propertyCollector` (as on vCenter, each session
sees only its own filters there). Change detection: every property carries the registry version of its last change;
a filter remembers what it last reported per (object, path) and compares serialized values only for properties stamped
after its last look, so an unchanged inventory costs nothing to watch.
"""
from __future__ import annotations

import functools
import itertools
import time
from dataclasses import dataclass, field

from pyVmomi import SoapAdapter, VmomiSupport, vim, vmodl

from .base import ManagedObjectImpl
from .data import make

_MISSING = object()
_ObjectContent = vmodl.query.PropertyCollector.ObjectContent
_MissingProperty = vmodl.query.PropertyCollector.MissingProperty
_RetrieveResult = vmodl.query.PropertyCollector.RetrieveResult
_DynamicProperty = vmodl.DynamicProperty
_SER_VERSION = VmomiSupport.GetVersionFromVersionUri("vim25/8.0.3.0")


@functools.lru_cache(maxsize=4096)
def path_type(vim_type, path: str):
    """The static type at a property path, or None when the path does not exist on the type."""
    head, _, rest = path.partition(".")
    try:
        current = VmomiSupport.GetPropertyInfo(vim_type, head).type
    except (AttributeError, KeyError):
        return None
    while rest:
        part, _, rest = rest.partition(".")
        if issubclass(current, list):
            return None
        try:
            current = current._GetPropertyInfo(part).type
        except (AttributeError, KeyError):
            return None
    return current


@functools.lru_cache(maxsize=1024)
def all_property_names(vim_type) -> tuple[str, ...]:
    return tuple(p.name for p in vim_type._GetPropertyList())


def typed(value, static_type):
    """pyVmomi needs typed arrays where a value goes out as anyType (DynamicProperty.val, PropertyChange.val)."""
    if isinstance(value, list) and not hasattr(value, "Item") and static_type is not None \
            and issubclass(static_type, list):
        return static_type(value)
    return value


def fingerprint(value) -> str:
    """A comparable form of a value (pyVmomi data objects have no __eq__)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return repr(value)
    return SoapAdapter.SerializeToStr(value, VmomiSupport.Object(name="v", type=object, version=_SER_VERSION,
                                                                 flags=VmomiSupport.F_OPTIONAL), _SER_VERSION)


# -- object set computation ---------------------------------------------------------------------------------------
def _named_selections(spec: vmodl.query.PropertyCollector.FilterSpec) -> dict:
    named = {}

    def visit(selections):
        for sel in selections or []:
            if sel.name and isinstance(sel, vmodl.query.PropertyCollector.TraversalSpec) and sel.name not in named:
                named[sel.name] = sel
                visit(sel.selectSet)
            elif isinstance(sel, vmodl.query.PropertyCollector.TraversalSpec):
                visit(sel.selectSet)

    for obj_spec in spec.objectSet or []:
        visit(obj_spec.selectSet)
    return named


def _resolve(sel, named):
    if isinstance(sel, vmodl.query.PropertyCollector.TraversalSpec):
        return sel
    target = named.get(sel.name)
    if target is None:
        raise vmodl.fault.InvalidArgument(msg=f"Unknown selection spec name {sel.name}",
                                          invalidProperty="selectSet")
    return target


def collect_objects(sim, spec, report_missing: bool = False):
    """The ordered object set a filter spec selects, plus morefs of starting objects that don't exist."""
    registry = sim.registry
    named = _named_selections(spec)
    result: dict[str, ManagedObjectImpl] = {}
    missing = []
    seen: set[tuple[str, int]] = set()

    def traverse(obj, selections):
        for sel in selections or []:
            ts = _resolve(sel, named)
            key = (obj.moid, id(ts))
            if key in seen:
                continue
            seen.add(key)
            if not isinstance(obj.ref, ts.type):
                continue
            try:
                value = obj.get_path(ts.path)
            except vmodl.query.InvalidProperty:
                raise vmodl.fault.InvalidArgument(msg=f"Invalid traversal path {ts.path} for {ts.type._wsdlName}",
                                                  invalidProperty="path") from None
            if value is None:
                continue
            refs = value if isinstance(value, list) else [value]
            for ref in refs:
                if not isinstance(ref, VmomiSupport.ManagedObject):
                    continue
                target = registry.find(ref._moId)
                if target is None:
                    continue
                if not ts.skip:
                    result.setdefault(target.moid, target)
                traverse(target, ts.selectSet)

    for obj_spec in spec.objectSet or []:
        if obj_spec.obj is None:
            raise vmodl.fault.InvalidArgument(msg="ObjectSpec.obj is not set", invalidProperty="obj")
        obj = registry.find(obj_spec.obj._moId)
        if obj is None or not isinstance(obj.ref, type(obj_spec.obj)):
            if report_missing:
                missing.append(obj_spec.obj)
                continue
            raise vmodl.fault.ManagedObjectNotFound(
                msg=f"The object '{obj_spec.obj._wsdlName}:{obj_spec.obj._moId}' has already been deleted or has "
                    "not been completely created", obj=obj_spec.obj)
        if not obj_spec.skip:
            result.setdefault(obj.moid, obj)
        traverse(obj, obj_spec.selectSet)
    return list(result.values()), missing


def paths_for(obj, prop_specs) -> list[str] | None:
    """The property paths wanted for an object, or None when no PropertySpec covers its type."""
    paths: list[str] = []
    matched = False
    for ps in prop_specs:
        if not isinstance(obj.ref, ps.type):
            continue
        matched = True
        names = all_property_names(type(obj.ref)) if ps.all else (ps.pathSet or [])
        for name in names:
            if name not in paths:
                paths.append(name)
    return paths if matched else None


def validate_prop_specs(prop_specs):
    if not prop_specs:
        raise vmodl.fault.InvalidArgument(msg="PropertyFilterSpec.propSet is empty", invalidProperty="propSet")
    for ps in prop_specs:
        if ps.type is None:
            raise vmodl.fault.InvalidArgument(msg="PropertySpec.type is not set", invalidProperty="type")
        for path in ps.pathSet or []:
            if path_type(ps.type, path) is None:
                raise vmodl.query.InvalidProperty(msg=f"Invalid property path {path} for {ps.type._wsdlName}",
                                                  name=path)


def read_path(obj, path):
    """(value, fault) for one path of one object; a path the type has but that cannot be read gives a fault."""
    try:
        return typed(obj.get_path(path), path_type(type(obj.ref), path)), None
    except vmodl.MethodFault as fault:
        return None, fault


def object_content(obj, paths) -> vmodl.query.PropertyCollector.ObjectContent:
    props, missing = [], []
    for path in paths:
        value, fault = read_path(obj, path)
        if fault is not None:
            missing.append(make(_MissingProperty, path=path, fault=fault))
        elif value is not None:
            props.append(make(_DynamicProperty, name=path, val=value))
    return make(_ObjectContent, obj=obj.ref, propSet=props, missingSet=missing)


# -- filters ------------------------------------------------------------------------------------------------------
class PropertyFilterImpl(ManagedObjectImpl):
    vim_type = vmodl.query.PropertyCollector.Filter
    persistent = False

    def __init__(self, sim, moid, collector: PropertyCollectorImpl, session, spec, partial_updates: bool):
        super().__init__(sim, moid)
        self.collector = collector
        self.session = session
        self.init_props(spec=spec, partialUpdates=partial_updates)
        # moid -> {path: fingerprint} of what the client has been told
        self.reported: dict[str, dict[str, str]] = {}
        self.known_refs: dict = {}  # moid -> ref of the objects last selected, to report `leave` for deleted ones
        self.checked_version = -1

    @property
    def spec(self):
        return self.props["spec"]

    def DestroyPropertyFilter(self, ctx):
        self.collector.drop_filter(self)

    def compute_update(self, full: bool):
        """A FilterUpdate with what changed since the last report (everything when `full`), or None."""
        registry = self.sim.registry
        since = -1 if full else self.checked_version
        if not full and since >= registry.version:
            return None
        if full:
            self.reported = {}
        objects, missing_refs = collect_objects(self.sim, self.spec, report_missing=True)
        previous_refs, self.known_refs = self.known_refs, {o.moid: o.ref for o in objects}
        prop_specs = self.spec.propSet
        updates = []
        current_ids = set()
        for obj in objects:
            paths = paths_for(obj, prop_specs)
            if paths is None:
                continue
            current_ids.add(obj.moid)
            seen = self.reported.get(obj.moid)
            if seen is None:
                seen = self.reported[obj.moid] = {}
                changes = []
                for path in paths:
                    value, fault = read_path(obj, path)
                    seen[path] = fingerprint(value) if fault is None else "!fault"
                    if fault is None and value is not None:
                        changes.append(vmodl.query.PropertyCollector.Change(name=path, op="assign", val=value))
                updates.append(vmodl.query.PropertyCollector.ObjectUpdate(kind="enter", obj=obj.ref,
                                                                          changeSet=changes, missingSet=[]))
                continue
            changes = []
            for path in paths:
                head = path.split(".", 1)[0]
                computed = hasattr(obj, "prop_" + head)
                if not computed and obj.prop_versions.get(head, 0) <= since and path in seen:
                    continue
                value, fault = read_path(obj, path)
                mark = fingerprint(value) if fault is None else "!fault"
                if seen.get(path, _MISSING) == mark:
                    continue
                seen[path] = mark
                if fault is None:
                    changes.append(vmodl.query.PropertyCollector.Change(name=path, op="assign", val=value))
            if changes:
                updates.append(vmodl.query.PropertyCollector.ObjectUpdate(kind="modify", obj=obj.ref,
                                                                          changeSet=changes, missingSet=[]))
        for moid in [m for m in self.reported if m not in current_ids]:
            del self.reported[moid]
            ref = previous_refs.get(moid)
            if ref is not None:
                updates.append(vmodl.query.PropertyCollector.ObjectUpdate(kind="leave", obj=ref, changeSet=[],
                                                                          missingSet=[]))
        self.checked_version = registry.version
        if not updates and not missing_refs:
            return None
        return vmodl.query.PropertyCollector.FilterUpdate(filter=self.ref, objectSet=updates, missingSet=missing_refs)


@dataclass
class _SessionState:
    """What one session has on one collector: its filters, its update version, its paged retrievals."""
    filters: list = field(default_factory=list)
    version: int = 0
    pending: dict = field(default_factory=dict)  # token -> remaining ObjectContents
    cancelled: bool = False


class PropertyCollectorImpl(ManagedObjectImpl):
    vim_type = vmodl.query.PropertyCollector
    persistent = False
    _tokens = itertools.count(1)

    def __init__(self, sim, moid, owner_session=None):
        super().__init__(sim, moid)
        self.owner_session = owner_session
        self.states: dict[str, _SessionState] = {}

    def _state(self, ctx) -> _SessionState:
        return self.states.setdefault(ctx.session.key, _SessionState())

    def prop_filter(self):
        ctx = self.sim.current
        if ctx is None:
            return vmodl.query.PropertyCollector.Filter.Array()
        return vmodl.query.PropertyCollector.Filter.Array([f.ref for f in self._state(ctx).filters])

    # -- retrieval ------------------------------------------------------------------------------------------------
    def _retrieve(self, spec_set):
        contents = []
        for spec in spec_set or []:
            validate_prop_specs(spec.propSet)
            objects, missing = collect_objects(self.sim, spec, bool(spec.reportMissingObjectsInResults))
            for obj in objects:
                paths = paths_for(obj, spec.propSet)
                if paths is not None:
                    contents.append(object_content(obj, paths))
            for ref in missing:
                fault = vmodl.fault.ManagedObjectNotFound(obj=ref, msg="The object has already been deleted")
                contents.append(vmodl.query.PropertyCollector.ObjectContent(
                    obj=ref, propSet=[], missingSet=[vmodl.query.PropertyCollector.MissingProperty(path="",
                                                                                                   fault=fault)]))
        return contents

    def RetrieveProperties(self, ctx, specSet):
        return self._retrieve(specSet)

    def RetrievePropertiesEx(self, ctx, specSet, options):
        contents = self._retrieve(specSet)
        if not contents:
            return None
        limit = options.maxObjects if options is not None and options.maxObjects else None
        return self._page(ctx, contents, limit)

    def _page(self, ctx, contents, limit):
        if limit is None or len(contents) <= limit:
            return make(_RetrieveResult, objects=contents)
        token = str(next(self._tokens))
        state = self._state(ctx)
        state.pending[token] = (contents[limit:], limit)
        return vmodl.query.PropertyCollector.RetrieveResult(token=token, objects=contents[:limit])

    def ContinueRetrievePropertiesEx(self, ctx, token):
        state = self._state(ctx)
        pending = state.pending.pop(token, None)
        if pending is None:
            raise vmodl.fault.InvalidArgument(msg=f"Invalid token {token}", invalidProperty="token")
        rest, limit = pending
        return self._page(ctx, rest, limit)

    def CancelRetrievePropertiesEx(self, ctx, token):
        if self._state(ctx).pending.pop(token, None) is None:
            raise vmodl.fault.InvalidArgument(msg=f"Invalid token {token}", invalidProperty="token")

    # -- collectors and filters -----------------------------------------------------------------------------------
    def CreatePropertyCollector(self, ctx):
        collector = PropertyCollectorImpl(self.sim, f"session[{ctx.session.key}]{self.sim.registry.next_id('pc')}",
                                          ctx.session)
        self.sim.registry.add(collector)
        ctx.session.owned.append(collector.ref)
        return collector.ref

    def DestroyPropertyCollector(self, ctx):
        if self.moid == "propertyCollector":
            raise vmodl.fault.NotSupported(msg="The default property collector cannot be destroyed")
        for state in self.states.values():
            for flt in list(state.filters):
                self.sim.registry.remove(flt)
        self.states.clear()
        self.sim.registry.remove(self)

    def CreateFilter(self, ctx, spec, partialUpdates):
        validate_prop_specs(spec.propSet)
        collect_objects(self.sim, spec, report_missing=True)  # surface bad traversal specs now
        moid = f"session[{ctx.session.key}]{self.sim.registry.next_id('filter')}"
        flt = PropertyFilterImpl(self.sim, moid, self, ctx.session, spec, bool(partialUpdates))
        self.sim.registry.add(flt)
        self._state(ctx).filters.append(flt)
        ctx.session.owned.append(flt.ref)
        self.touch("filter")
        return flt.ref

    def drop_filter(self, flt: PropertyFilterImpl):
        state = self.states.get(flt.session.key)
        if state is not None and flt in state.filters:
            state.filters.remove(flt)
        self.sim.registry.remove(flt)
        self.touch("filter")

    # -- updates --------------------------------------------------------------------------------------------------
    def _collect_updates(self, state: _SessionState, full: bool, max_objects: int | None):
        filter_updates = []
        for flt in list(state.filters):
            if flt.moid not in self.sim.registry.objects:
                state.filters.remove(flt)
                continue
            update = flt.compute_update(full)
            if update is not None:
                filter_updates.append(update)
        return filter_updates

    def _wait(self, ctx, version, max_wait: float | None, max_objects: int | None = None):
        state = self._state(ctx)
        full = version in (None, "")
        if not full:
            try:
                int(str(version).split(".")[0])
            except ValueError:
                raise vmodl.fault.InvalidArgument(msg=f"Invalid version {version}", invalidProperty="version") \
                    from None
        state.cancelled = False
        deadline = None if max_wait is None else time.monotonic() + max_wait
        changes = self.sim.registry.changes
        while True:
            updates = self._collect_updates(state, full, max_objects)
            if updates:
                state.version += 1
                return vmodl.query.PropertyCollector.UpdateSet(version=str(state.version), filterSet=updates,
                                                               truncated=False)
            full = False
            if state.cancelled:
                state.cancelled = False
                raise vmodl.fault.RequestCanceled(msg="The request was canceled by the client")
            if ctx.session.key not in self.states or not ctx.session.authenticated:
                raise vim.fault.NotAuthenticated(msg="The session is no longer authenticated.")
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                changes.wait(min(remaining, 1.0))
            else:
                changes.wait(1.0)
            # other calls ran while this one waited; computed properties read the caller from sim.current
            self.sim.current = ctx

    def WaitForUpdatesEx(self, ctx, version, options):
        max_wait = None
        max_objects = None
        if options is not None:
            if options.maxWaitSeconds is not None:
                max_wait = max(0, options.maxWaitSeconds)
            max_objects = options.maxObjectUpdates
        return self._wait(ctx, version, max_wait, max_objects)

    def WaitForUpdates(self, ctx, version):
        return self._wait(ctx, version, None)

    def CheckForUpdates(self, ctx, version):
        return self._wait(ctx, version, 0)

    def CancelWaitForUpdates(self, ctx):
        self._state(ctx).cancelled = True
        self.sim.registry.changes.notify_all()
