"""EventManager and its EventHistoryCollectors.

Other parts of the sim post events with `post_event(sim, event)` (or `sim.events.post(event)`): the manager fills in
`key`, `chainId`, `createdTime`, `userName` (the calling session's user) and a `fullFormattedMessage` when they are
missing, keeps the newest `MAX_EVENTS` in memory (events are not persisted across a sim restart), and hands each event
to every collector whose filter matches, updating that collector's `latestPage` (newest first, `pageSize` long) so
`WaitForUpdatesEx` on `latestPage` sees it, which is how govmomi's and VIC's event tailers watch events.

A collector's filter supports `entity` (recursion self / children / all), `eventTypeId` and `type` (a class name or a
base class: `VmEvent` matches `VmPoweredOnEvent`; an `EventEx` matches by its eventTypeId), `time`, `userName`,
`eventChainId`, `category` and `maxCount` (the initial page size). Entity containment is worked out when the event is
posted (folder / resource pool / host / datacenter ancestry at that moment), so a `VmRemovedEvent` still matches the
resource pool the VM was in.

Scrolling follows the vSphere API: a new collector is positioned at its oldest event (`ReadNextEvents` reads forward
in time, `ReadPreviousEvents` backwards, newest first); `ResetCollector` moves to just before the latest page,
`RewindCollector` to the oldest event.
"""
from __future__ import annotations

import collections
import datetime
import logging
from dataclasses import dataclass

from pyVmomi import vim, vmodl

from ..sessions import now
from .base import ManagedObjectImpl
from .data import make

log = logging.getLogger("vsphere_sim.events")

MAX_EVENTS = 10000
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 10
MAX_COLLECTORS = 32  # per session, vCenter's default `event.maxCollectors`
QUERY_LIMIT = 1000

# EventArgument fields of vim.event.Event, and the entity each names
_ARG_FIELDS = (("vm", "vm"), ("host", "host"), ("computeResource", "computeResource"), ("ds", "datastore"),
               ("net", "network"), ("dvs", "dvs"), ("datacenter", "datacenter"))


def post_event(sim, event: vim.event.Event) -> vim.event.Event:
    """Post an event from inside the sim (call under sim.lock); returns it with key and time filled in."""
    manager = sim.registry.find("EventManager")
    if manager is None:
        return event
    return manager.post(event)


def entity_argument(obj) -> vim.event.EntityEventArgument | None:
    """The EventArgument naming a managed entity (VmEventArgument for a VM, ...), for filling an event."""
    ref, name = obj.ref, obj.props.get("name")
    for arg_type, ref_type, field in _ENTITY_ARGS:
        if isinstance(ref, ref_type):
            return make(arg_type, name=name, **{field: ref})
    return make(vim.event.ManagedEntityEventArgument, name=name, entity=ref)


_ENTITY_ARGS = (
    (vim.event.VmEventArgument, vim.VirtualMachine, "vm"),
    (vim.event.HostEventArgument, vim.HostSystem, "host"),
    (vim.event.ComputeResourceEventArgument, vim.ComputeResource, "computeResource"),
    (vim.event.DatacenterEventArgument, vim.Datacenter, "datacenter"),
    (vim.event.DatastoreEventArgument, vim.Datastore, "datastore"),
    (vim.event.NetworkEventArgument, vim.Network, "network"),
    (vim.event.FolderEventArgument, vim.Folder, "folder"),
    (vim.event.ResourcePoolEventArgument, vim.ResourcePool, "resourcePool"),
)


def vm_event(sim, event_type, vm, **fields) -> vim.event.Event:
    """Build a VM event (VmPoweredOnEvent, ...) with the vm, host, computeResource and datacenter arguments
    filled from the inventory, ready for `post_event`."""
    args = {"vm": entity_argument(vm)}
    runtime = vm.props.get("runtime")
    host = sim.registry.find(runtime.host._moId) if runtime is not None and runtime.host is not None else None
    if host is not None:
        args["host"] = entity_argument(host)
        compute = host.props.get("parent")
        compute = sim.registry.find(compute._moId) if compute is not None else None
        if compute is not None and isinstance(compute.ref, vim.ComputeResource):
            args["computeResource"] = entity_argument(compute)
    datacenter = vm.datacenter() if hasattr(vm, "datacenter") else None
    if datacenter is not None:
        args["datacenter"] = entity_argument(datacenter)
    if fields:  # from callers (configSpec of a reconfigure, names of a rename): checked as pyVmomi checks them
        event = make(event_type, **args)
        for name, value in fields.items():
            setattr(event, name, value)
        return event
    return make(event_type, **args)


@dataclass
class _Entry:
    """A posted event and the entities it concerns, worked out when it was posted."""
    event: vim.event.Event
    selves: frozenset   # moids the event's arguments name
    within: frozenset   # moids of every entity containing one of them (not the entities themselves)
    type_names: frozenset


class EventManagerImpl(ManagedObjectImpl):
    vim_type = vim.event.EventManager
    persistent = False

    def __init__(self, sim, moid):
        super().__init__(sim, moid)
        self.entries: collections.deque[_Entry] = collections.deque(maxlen=MAX_EVENTS)
        self.collectors: dict[str, EventHistoryCollectorImpl] = {}
        self._next_key = 0
        self._next_chain = 0
        self.init_props(description=_description(), latestEvent=None, maxCollector=MAX_COLLECTORS)

    # -- internal API -------------------------------------------------------------------------------------------
    def post(self, event: vim.event.Event, user: str | None = None, stamp_time: bool = False,
             entry: _Entry | None = None) -> vim.event.Event:
        """Post an event; `entry` (from `entry_for`) when the entities it names were looked up before they changed."""
        # the fields filled here get values of their own types (int, datetime, str): set without pyVmomi's checks
        _set = object.__setattr__
        self._next_key += 1
        _set(event, "key", self._next_key)
        if not event.chainId:
            _set(event, "chainId", event.key)
        if stamp_time or event.createdTime is None:
            _set(event, "createdTime", now())
        if user is not None:
            event.userName = user
        elif not event.userName:
            ctx = self.sim.current
            _set(event, "userName", ctx.user if ctx is not None else "")
        if not event.fullFormattedMessage:
            _set(event, "fullFormattedMessage", _format(event))
        entry = self.entry_for(event) if entry is None else entry
        self.entries.append(entry)
        self.set(latestEvent=event)
        registry = self.sim.registry
        for moid, collector in list(self.collectors.items()):
            if registry.find(moid) is not collector:  # its session ended
                del self.collectors[moid]
            elif collector.matches(entry):
                collector.append(entry)
        return event

    def entry_for(self, event) -> _Entry:
        """The entities an event concerns, as the inventory has them now (`post` takes it when posting later)."""
        selves, within = set(), set()
        for field, ref_name in _ARG_FIELDS:
            arg = getattr(event, field, None)
            ref = getattr(arg, ref_name, None) if arg is not None else None
            if ref is not None:
                selves.add(ref._moId)
                # containment is transitive: an argument already above another (a VM event's host, compute resource
                # and datacenter) adds nothing, so one walk up from the VM serves all four
                if ref._moId not in within:
                    within |= self._containers(ref._moId)
        entity = getattr(getattr(event, "entity", None), "entity", None)  # GeneralUserEvent, ...
        if entity is not None:
            selves.add(entity._moId)
            if entity._moId not in within:
                within |= self._containers(entity._moId)
        if isinstance(event, vim.event.EventEx) and event.objectId:
            selves.add(event.objectId)
            if event.objectId not in within:
                within |= self._containers(event.objectId)
        return _Entry(event, frozenset(selves), frozenset(within), frozenset(_type_names(event)))

    def _containers(self, moid: str) -> set[str]:
        """Every entity that has `moid` below it: folder parents, and for a VM its resource pools, vApp and host."""
        registry = self.sim.registry
        seen: set[str] = set()
        todo = [moid]
        while todo:
            obj = registry.find(todo.pop())
            if obj is None:
                continue
            for ref in _up_links(obj):
                if ref is not None and ref._moId not in seen:
                    seen.add(ref._moId)
                    todo.append(ref._moId)
        seen.discard(moid)
        return seen

    # -- vim25 --------------------------------------------------------------------------------------------------
    def CreateCollectorForEvents(self, ctx, filter):
        owned = [c for c in self.collectors.values() if c.session_key == ctx.session.key]
        if len(owned) >= self.props["maxCollector"]:
            raise vim.fault.InvalidState(msg="The maximum number of event collectors has been reached for this "
                                             "session.")
        size = min(filter.maxCount, MAX_PAGE_SIZE) if filter.maxCount and filter.maxCount > 0 else DEFAULT_PAGE_SIZE
        collector = EventHistoryCollectorImpl(self.sim, self.sim.registry.next_id("eventCollector"), self, filter,
                                              ctx.session.key, size)
        entries = [e for e in self.entries if collector.matches(e)]
        collector.load(entries)
        self.collectors[collector.moid] = collector
        self.sim.registry.add(collector)
        ctx.session.owned.append(collector.ref)
        return collector.ref

    def QueryEvents(self, ctx, filter, eventViewSpec=None):
        probe = EventHistoryCollectorImpl(self.sim, "query", self, filter, ctx.session.key, DEFAULT_PAGE_SIZE)
        limit = filter.maxCount if filter.maxCount and filter.maxCount > 0 else QUERY_LIMIT
        found = [e.event for e in reversed(self.entries) if probe.matches(e)]
        return vim.event.Event.Array(found[:limit])

    def PostEvent(self, ctx, eventToPost, taskInfo=None):
        if eventToPost is None or not isinstance(eventToPost, vim.event.Event):
            raise vim.fault.InvalidEvent(msg="The event is invalid.")
        if taskInfo is not None and not eventToPost.chainId:
            eventToPost.chainId = taskInfo.eventChainId or 0
        # A client's event gets the server's key and time, as vCenter stamps them.
        eventToPost.key = 0
        self.post(eventToPost, user=ctx.user, stamp_time=True)

    def LogUserEvent(self, ctx, entity, msg):
        obj = self.sim.registry.get(entity)
        event = vim.event.GeneralUserEvent(message=msg, entity=vim.event.ManagedEntityEventArgument(
            name=obj.props.get("name"), entity=obj.ref))
        arg_field = {vim.VirtualMachine: "vm", vim.HostSystem: "host", vim.Datacenter: "datacenter"}
        for ref_type, field in arg_field.items():
            if isinstance(obj.ref, ref_type):
                setattr(event, field, entity_argument(obj))
        self.post(event, user=ctx.user)

    def RetrieveArgumentDescription(self, ctx, eventTypeId):
        return vim.event.EventDescription.EventArgDesc.Array([])

    def forget(self, collector: EventHistoryCollectorImpl):
        self.collectors.pop(collector.moid, None)


class EventHistoryCollectorImpl(ManagedObjectImpl):
    vim_type = vim.event.EventHistoryCollector
    persistent = False

    def __init__(self, sim, moid, manager: EventManagerImpl, spec, session_key: str, page_size: int):
        super().__init__(sim, moid)
        self.manager = manager
        self.spec = spec
        self.session_key = session_key
        self.page_size = page_size
        self.items: list[_Entry] = []  # oldest first
        self.pos = 0  # index of the next event ReadNextEvents returns
        self.init_props(filter=spec, latestPage=[], initialized=True)
        self._prepare(spec)

    def _prepare(self, spec):
        entity = spec.entity
        self.entity = entity.entity._moId if entity is not None and entity.entity is not None else None
        self.recursion = (entity.recursion or "all") if entity is not None else "all"
        self.types = set(spec.eventTypeId or []) | set(spec.type or [])
        self.categories = set(spec.category or [])
        self.begin = spec.time.beginTime if spec.time is not None else None
        self.end = spec.time.endTime if spec.time is not None else None
        self.users = spec.userName
        self.chain = spec.eventChainId or 0
        root = self.sim.root_folder() if self.sim.registry.find("group-d1") is not None else None
        self.is_root = root is not None and self.entity == root.moid

    # -- matching -------------------------------------------------------------------------------------------------
    def matches(self, entry: _Entry) -> bool:
        event = entry.event
        if self.chain and event.chainId != self.chain:
            return False
        if self.types and not (entry.type_names & self.types):
            return False
        if self.categories and _category(event) not in self.categories:
            return False
        if self.begin is not None and _as_utc(event.createdTime) < _as_utc(self.begin):
            return False
        if self.end is not None and _as_utc(event.createdTime) > _as_utc(self.end):
            return False
        if self.users is not None:
            user = event.userName or ""
            system = not user
            if not ((self.users.systemUser and system) or user in (self.users.userList or [])):
                return False
        if self.entity is not None:
            is_self = self.entity in entry.selves
            below = self.entity in entry.within
            if self.recursion == "self":
                return is_self or self.is_root
            if self.recursion == "children":
                return below
            return is_self or below or self.is_root
        return True

    # -- the page -------------------------------------------------------------------------------------------------
    def load(self, entries: list[_Entry]):
        self.items = list(entries)[-MAX_EVENTS:]
        self.pos = 0
        self._publish()

    def append(self, entry: _Entry):
        self.items.append(entry)
        if len(self.items) > MAX_EVENTS:
            drop = len(self.items) - MAX_EVENTS
            del self.items[:drop]
            self.pos = max(0, self.pos - drop)
        self._publish()

    def _publish(self):
        page = [e.event for e in reversed(self.items[-self.page_size:])] if self.page_size else []
        self.set(latestPage=vim.event.Event.Array(page))

    # -- vim25 --------------------------------------------------------------------------------------------------
    def ReadNextEvents(self, ctx, maxCount):
        if maxCount is None or maxCount <= 0:
            raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: maxCount",
                                              invalidProperty="maxCount")
        chunk = self.items[self.pos:self.pos + maxCount]
        self.pos += len(chunk)
        return vim.event.Event.Array([e.event for e in chunk])

    def ReadPreviousEvents(self, ctx, maxCount):
        if maxCount is None or maxCount <= 0:
            raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: maxCount",
                                              invalidProperty="maxCount")
        start = max(0, self.pos - maxCount)
        chunk = self.items[start:self.pos]
        self.pos = start
        return vim.event.Event.Array([e.event for e in reversed(chunk)])

    def SetCollectorPageSize(self, ctx, maxCount):
        self.page_size = _page_size(maxCount)
        self._publish()

    def ResetCollector(self, ctx):
        self.pos = max(0, len(self.items) - self.page_size)

    def RewindCollector(self, ctx):
        self.pos = 0

    def DestroyCollector(self, ctx):
        self.manager.forget(self)
        self.sim.registry.remove(self)
        owned = ctx.session.owned
        for i, ref in enumerate(owned):
            if ref._moId == self.moid:
                del owned[i]
                break


# -- helpers --------------------------------------------------------------------------------------------------------
def _page_size(count) -> int:
    if count is None or count < 0 or count > MAX_PAGE_SIZE:
        raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: maxCount",
                                          invalidProperty="maxCount")
    return count


def _up_links(obj):
    """The entities directly above `obj` in any of vCenter's hierarchies."""
    props = obj.props
    yield props.get("parent")
    if isinstance(obj.ref, vim.VirtualMachine):
        yield props.get("resourcePool")
        yield props.get("parentVApp")
        runtime = props.get("runtime")
        if runtime is not None:
            yield runtime.host
    elif isinstance(obj.ref, vim.ResourcePool):
        yield props.get("owner")
    elif isinstance(obj.ref, vim.Datastore) or isinstance(obj.ref, vim.Network):
        pass


_type_cache: dict[type, tuple[str, ...]] = {}


def _type_names(event) -> tuple[str, ...]:
    """The WSDL names of the event's class and its bases up to Event (an EventEx adds its eventTypeId)."""
    t = type(event)
    names = _type_cache.get(t)
    if names is None:
        names = tuple(c._wsdlName for c in t.__mro__ if hasattr(c, "_wsdlName") and issubclass(c, vim.event.Event))
        _type_cache[t] = names
    if isinstance(event, (vim.event.EventEx, vim.event.ExtendedEvent)):
        extra = getattr(event, "eventTypeId", None)
        return names + ((extra,) if extra else ())
    return names


def _category(event) -> str:
    severity = getattr(event, "severity", None)
    if isinstance(event, vim.event.EventEx) and severity:
        return severity
    name = type(event)._wsdlName
    if "Error" in name or "Failed" in name:
        return "error"
    if "Warning" in name:
        return "warning"
    if isinstance(event, vim.event.GeneralUserEvent):
        return "user"
    return "info"


def _as_utc(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value


# messages as vCenter's EventDescription formats them (fullFormat), for the events the sim posts
_MESSAGES = {
    "VmCreatedEvent": "Created virtual machine {vm} on {host} in {datacenter}",
    "VmBeingCreatedEvent": "Creating {vm} on host {host} in {datacenter}",
    "VmPoweredOnEvent": "{vm} on {host} in {datacenter} is powered on",
    "VmStartingEvent": "{vm} on host {host} in {datacenter} is starting",
    "VmPoweredOffEvent": "{vm} on {host} in {datacenter} is powered off",
    "VmStoppingEvent": "{vm} on {host} in {datacenter} is stopping",
    "VmGuestShutdownEvent": "Guest OS shut down for {vm} on {host} in {datacenter}",
    "VmResettingEvent": "{vm} on {host} in {datacenter} is reset",
    "VmSuspendedEvent": "{vm} on {host} in {datacenter} is suspended",
    "VmRemovedEvent": "Removed {vm} on {host} from {datacenter}",
    "VmReconfiguredEvent": "Reconfigured {vm} on {host} in {datacenter}",
    "VmRenamedEvent": "Renamed {vm} from {oldName} to {newName} in {datacenter}",
    "VmRegisteredEvent": "Registered {vm} on {host} in {datacenter}",
    "VmRelocatedEvent": "Completed the relocation of the virtual machine",
    "VmMigratedEvent": "Migration of virtual machine {vm} completed",
}


def _format(event) -> str:
    name = type(event)._wsdlName
    template = _MESSAGES.get(name)
    if template is not None:
        fields = {field: getattr(getattr(event, field, None), "name", None) or "" for field, _ in _ARG_FIELDS}
        fields.update(oldName=getattr(event, "oldName", "") or "", newName=getattr(event, "newName", "") or "")
        return template.format(**fields)
    message = getattr(event, "message", None)
    if message:
        return message
    return name


def _description() -> vim.event.EventDescription:
    categories = [vim.ElementDescription(key=k, label=k.capitalize(), summary=k.capitalize())
                  for k in ("info", "warning", "error", "user")]
    details = [vim.event.EventDescription.EventDetail(key=getattr(vim.event, name), category="info",
                                                      formatOnDatacenter=text, formatOnComputeResource=text,
                                                      formatOnHost=text, formatOnVm=text, fullFormat=text,
                                                      description=name)
               for name, text in sorted(_MESSAGES.items())]
    return vim.event.EventDescription(category=categories, eventInfo=details, enumeratedTypes=[])
