"""EventManager and EventHistoryCollector as pyVmomi clients use them (govmomi's and VIC's event tailers included).

Each test posts its own events on folders it creates, and filters on them, so it runs against a vCenter with a
history of its own too."""
from __future__ import annotations

import datetime
import uuid

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

PC = vmodl.query.PropertyCollector


@pytest.fixture(scope="module")
def folders(si):
    """A folder with a child folder, under the root folder, for events of their own."""
    root = si.content.rootFolder
    parent = root.CreateFolder(f"events-{uuid.uuid4().hex[:8]}")
    child = parent.CreateFolder("child")
    yield parent, child
    WaitForTask(parent.Destroy_Task())


def _by_entity(entity, recursion="self", **fields):
    return vim.event.EventFilterSpec(
        entity=vim.event.EventFilterSpec.ByEntity(entity=entity, recursion=recursion), **fields)


def _log(si, entity, count, tag):
    for i in range(count):
        si.content.eventManager.LogUserEvent(entity=entity, msg=f"{tag} {i}")
    return [f"{tag} {i}" for i in range(count)]


def _messages(events):
    return [e.message for e in events]


@pytest.fixture
def collector(si):
    made = []

    def make(spec):
        c = si.content.eventManager.CreateCollectorForEvents(filter=spec)
        made.append(c)
        return c
    yield make
    for c in made:
        try:
            c.DestroyCollector()
        except vmodl.fault.ManagedObjectNotFound:
            pass


def test_log_user_event_and_query(si, vsphere, folders):
    parent, _ = folders
    tag = uuid.uuid4().hex
    si.content.eventManager.LogUserEvent(entity=parent, msg=f"hello {tag}")
    [event] = si.content.eventManager.QueryEvents(filter=_by_entity(parent, eventTypeId=["GeneralUserEvent"]))
    assert isinstance(event, vim.event.GeneralUserEvent)
    assert event.message == f"hello {tag}" and tag in event.fullFormattedMessage
    assert event.key > 0 and event.createdTime is not None and event.userName
    assert event.entity.entity == parent


def test_post_event_is_stamped(si, folders):
    parent, _ = folders
    tag = uuid.uuid4().hex
    arg = vim.event.ManagedEntityEventArgument(entity=parent, name=parent.name)
    si.content.eventManager.PostEvent(eventToPost=vim.event.GeneralUserEvent(
        message=f"posted {tag}", entity=arg, key=0, chainId=0, createdTime=datetime.datetime(2000, 1, 1)))
    events = si.content.eventManager.QueryEvents(filter=_by_entity(parent, eventTypeId=["GeneralUserEvent"]))
    [event] = [e for e in events if e.message == f"posted {tag}"]
    assert event.key > 0 and event.createdTime.year > 2000


def test_latest_page_is_newest_first_and_sized(si, folders, collector):
    _, child = folders
    messages = _log(si, child, 12, uuid.uuid4().hex)
    c = collector(_by_entity(child, eventTypeId=["GeneralUserEvent"]))
    page = c.latestPage
    assert _messages(page) == list(reversed(messages))[:10]  # the default page size is 10
    c.SetCollectorPageSize(3)
    assert _messages(c.latestPage) == list(reversed(messages))[:3]
    with pytest.raises(vmodl.fault.InvalidArgument):
        c.SetCollectorPageSize(-1)


def test_read_next_previous_rewind(si, folders, collector):
    parent, _ = folders
    tag = uuid.uuid4().hex
    messages = _log(si, parent, 5, tag)
    c = collector(_by_entity(parent, eventTypeId=["GeneralUserEvent"],
                             time=vim.event.EventFilterSpec.ByTime(beginTime=si.CurrentTime()
                                                                   - datetime.timedelta(minutes=5))))
    c.RewindCollector()
    mine = [m for m in _messages(c.ReadNextEvents(1000)) if m.startswith(tag)]
    assert mine == messages  # oldest first
    assert list(c.ReadNextEvents(10)) == []  # the end
    c.RewindCollector()
    first = c.ReadNextEvents(1)
    assert len(first) == 1
    newest = c.ReadPreviousEvents(10)  # back to the start: nothing older than what was read
    assert len(newest) <= 1
    with pytest.raises(vmodl.fault.InvalidArgument):
        c.ReadNextEvents(0)
    with pytest.raises(vmodl.fault.InvalidArgument):
        c.ReadPreviousEvents(0)


def test_entity_recursion(si, folders, collector):
    parent, child = folders
    tag = uuid.uuid4().hex
    si.content.eventManager.LogUserEvent(entity=parent, msg=f"{tag} parent")
    si.content.eventManager.LogUserEvent(entity=child, msg=f"{tag} child")

    def seen(recursion):
        spec = _by_entity(parent, recursion=recursion, eventTypeId=["GeneralUserEvent"])
        return sorted(m for m in _messages(si.content.eventManager.QueryEvents(filter=spec)) if m.startswith(tag))
    assert seen("self") == [f"{tag} parent"]
    assert seen("children") == [f"{tag} child"]
    assert seen("all") == [f"{tag} child", f"{tag} parent"]


def test_type_and_time_filters(si, folders):
    parent, _ = folders
    tag = uuid.uuid4().hex
    si.content.eventManager.LogUserEvent(entity=parent, msg=tag)
    em = si.content.eventManager
    assert not [e for e in em.QueryEvents(filter=_by_entity(parent, eventTypeId=["VmPoweredOnEvent"]))
                if getattr(e, "message", None) == tag]
    future = vim.event.EventFilterSpec.ByTime(beginTime=si.CurrentTime() + datetime.timedelta(hours=1))
    assert list(em.QueryEvents(filter=_by_entity(parent, time=future))) == []


@pytest.mark.sim_only
def test_base_type_filter(si, folders):
    parent, _ = folders
    tag = uuid.uuid4().hex
    si.content.eventManager.LogUserEvent(entity=parent, msg=tag)
    events = si.content.eventManager.QueryEvents(filter=_by_entity(parent, eventTypeId=["GeneralEvent"]))
    assert tag in _messages(events)


def test_latest_page_through_wait_for_updates(si, folders, collector):
    _, child = folders
    c = collector(_by_entity(child, eventTypeId=["GeneralUserEvent"]))
    pc = si.content.propertyCollector.CreatePropertyCollector()
    try:
        pc.CreateFilter(PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=c)],
                                      propSet=[PC.PropertySpec(type=vim.event.EventHistoryCollector,
                                                               pathSet=["latestPage"])]), False)
        options = PC.WaitOptions(maxWaitSeconds=10)
        first = pc.WaitForUpdatesEx("", options)
        tag = uuid.uuid4().hex
        si.content.eventManager.LogUserEvent(entity=child, msg=tag)
        update = pc.WaitForUpdatesEx(first.version, options)
        assert update is not None
        [change] = [ch for fs in update.filterSet for obj in fs.objectSet for ch in obj.changeSet]
        assert change.name == "latestPage" and change.val[0].message == tag
    finally:
        pc.DestroyPropertyCollector()


def test_destroyed_collector_is_gone(si, folders):
    parent, _ = folders
    c = si.content.eventManager.CreateCollectorForEvents(filter=_by_entity(parent))
    c.DestroyCollector()
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        c.ReadNextEvents(1)
