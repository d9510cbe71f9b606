"""Docker's filter arguments (both wire shapes, matching rules, texts) and the event bus."""
from __future__ import annotations

import base64
import json
import threading

import pytest

from vic_ref.portlayer.events import Event, EventBus, EventFilter, FilterArgs, InvalidFilter


def test_both_shapes_parse_alike():
    cli = FilterArgs.from_json('{"label":{"a=b":true},"name":{"web":true},"status":{"running":true}}')
    py = FilterArgs.from_json('{"label": ["a=b"], "name": ["web"], "status": ["running"]}')
    assert cli.fields == py.fields == {"label": {"a=b": True}, "name": {"web": True}, "status": {"running": True}}
    assert FilterArgs.from_json("").fields == {} and FilterArgs.from_json(None).fields == {}


@pytest.mark.parametrize("text", ["[1]", "nope", '{"a": 1}', '{"a": "x"}'])
def test_malformed_filters(text):
    with pytest.raises(InvalidFilter) as info:
        FilterArgs.from_json(text)
    assert str(info.value) == "invalid filter"


def test_validate_names_the_unknown_filter():
    args = FilterArgs({"foo": ["bar"]})
    with pytest.raises(InvalidFilter) as info:
        args.validate(["name", "label"])
    assert str(info.value) == "invalid filter 'foo'"


def test_matching_rules():
    args = FilterArgs({"name": ["^we"], "id": ["abc"], "label": ["a=b", "c"]})
    assert args.match("name", "web") and not args.match("name", "db")  # a regular expression, searched
    assert args.fuzzy_match("id", "abcdef") and not args.fuzzy_match("id", "xabc")  # a prefix
    assert args.exact_match("id", "abc") and not args.exact_match("id", "abcd")
    assert args.match_kv_list("label", {"a": "b", "c": ""}) and not args.match_kv_list("label", {"a": "b"})
    assert not args.match_kv_list("label", {"a": "x", "c": "1"}) and not args.match_kv_list("label", None)
    empty = FilterArgs()
    assert empty.match("name", "x") and empty.exact_match("id", "y") and empty.match_kv_list("label", {})


def test_bool_filter():
    assert FilterArgs({"is-task": ["true"]}).get_bool("is-task", False) is True
    assert FilterArgs().get_bool("is-task", False) is False
    with pytest.raises(InvalidFilter) as info:
        FilterArgs({"is-task": ["true", "0"]}).get_bool("is-task", False)
    assert str(info.value).startswith("invalid filter 'is-task=[")


def _labels(**labels):
    return {"docker.labels": base64.b64encode(json.dumps(labels).encode()).decode()}


def test_container_event_shape():
    bus = EventBus()
    ev = bus.container(None, "die", "c" * 64, name="web", image="busybox", annotations=_labels(tier="front"),
                       exitCode=143)
    doc = ev.to_docker()
    assert doc["status"] == "die" and doc["id"] == "c" * 64 and doc["from"] == "busybox"
    assert doc["Type"] == "container" and doc["Action"] == "die" and doc["scope"] == "local"
    assert doc["Actor"] == {"ID": "c" * 64, "Attributes": {"tier": "front", "image": "busybox", "name": "web",
                                                           "exitCode": "143"}}
    assert doc["time"] == doc["timeNano"] // 10 ** 9


def test_image_event_shape():
    doc = EventBus().image(None, "pull", "busybox:latest").to_docker()
    assert doc["Type"] == "image" and doc["id"] == "busybox:latest" and "from" not in doc
    assert doc["Actor"]["Attributes"] == {"name": "busybox"}


def _ev(type_, action, actor, **attrs):
    return Event(type_, action, actor, attrs)


@pytest.mark.parametrize("filters,event,wanted", [
    ({"type": ["container"]}, _ev("container", "start", "abc", name="web"), True),
    ({"type": ["image"]}, _ev("container", "start", "abc", name="web"), False),
    ({"event": ["die"]}, _ev("container", "die", "abc"), True),
    ({"event": ["die"]}, _ev("container", "stop", "abc"), False),
    ({"container": ["web"]}, _ev("container", "start", "abc", name="web"), True),
    ({"container": ["ab"]}, _ev("container", "start", "abc", name="web"), True),  # an ID prefix
    ({"container": ["db"]}, _ev("container", "start", "abc", name="web"), False),
    ({"image": ["busybox"]}, _ev("container", "start", "abc", image="busybox:latest"), True),
    ({"label": ["a=b"]}, _ev("container", "start", "abc", a="b"), True),
    ({"label": ["a=c"]}, _ev("container", "start", "abc", a="b"), False),
])
def test_event_filter(filters, event, wanted):
    assert EventFilter(FilterArgs(filters)).include(event) is wanted


def test_subscribe_gets_history_and_new_events_once():
    bus = EventBus(history=4)
    first = bus.container(None, "create", "a" * 64, name="a")
    for action in ("start", "die", "stop"):
        bus.container(None, action, "a" * 64, name="a")
    got = []
    past, unsubscribe = bus.subscribe(got.append, since_ns=first.time_nano)
    assert [e.action for e in past] == ["create", "start", "die", "stop"]
    bus.container(None, "destroy", "a" * 64, name="a")
    bus.image(None, "pull", "busybox:latest")
    assert [e.action for e in got] == ["destroy", "pull"]
    unsubscribe()
    bus.container(None, "create", "b" * 64)
    assert len(got) == 2 and bus.subscribers == 0
    assert [e.action for e in bus.history()][-1] == "create" and len(bus.history()) == 4  # bounded


def test_subscriber_filter_and_a_failing_subscriber():
    bus = EventBus()
    got = []
    bus.subscribe(lambda e: 1 / 0)
    bus.subscribe(got.append, EventFilter(FilterArgs({"type": ["image"]})))
    bus.container(None, "create", "a" * 64)
    bus.image(None, "tag", "busybox:1")
    assert [e.action for e in got] == ["tag"]


def test_publish_from_threads():
    bus = EventBus()
    seen = []
    lock = threading.Lock()

    def record(e):
        with lock:
            seen.append(e)

    bus.subscribe(record)
    threads = [threading.Thread(target=lambda i=i: [bus.container(None, "start", f"{i}") for _ in range(50)])
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 400
