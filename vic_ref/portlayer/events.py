"""Docker-style events (VIC's port layer event manager, in Docker's shape): container create, start, die, stop, kill,
destroy, rename, restart, attach…, image pull, tag, untag, delete; kept in a bounded history and sent to subscribers.

`FilterArgs` is Docker's filter set (`{"type": {"container": true}}`), with Docker's matching rules
(`daemon/internal/filters`), used for events here and for container lists in the personality.
`EventFilter` is Docker's event filter (`daemon/events/filter.go`).

Subscribers are callbacks run on the publishing thread, which may hold the container cache's lock: they must be
quick and must not call back into the port layer (the personality hands events to its event loop with
`call_soon_threadsafe`, or to a thread pool). `subscribe` returns the past events matching `since` atomically with the
subscription, so a reader sees each event exactly once.
"""
from __future__ import annotations

import base64
import collections
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import errors
from ..trace import Operation

HISTORY = 1024  # events kept for `since` (Docker keeps 256)
LABELS_ANNOTATION = "docker.labels"  # VIC's persona keeps a container's labels here (base64 JSON)

CONTAINER, IMAGE, VOLUME, NETWORK, DAEMON = "container", "image", "volume", "network", "daemon"


# -- Docker's filter arguments -------------------------------------------------------------------------------------
class InvalidFilter(errors.InvalidArgument):
    """`invalid filter 'x'` (or `invalid filter 'x=[v]'`), as Docker words it (HTTP 400)."""

    def __init__(self, name: str = "", values: list[str] | None = None):
        text = "invalid filter"
        if name:
            text += f" '{name}"
            if values is not None:
                text += "=[" + " ".join(values) + "]"
            text += "'"
        super().__init__(text)


class FilterArgs:
    """key → set of values (Docker's filters.Args)."""

    def __init__(self, fields: Mapping[str, Iterable[str]] | None = None):
        self.fields: dict[str, dict[str, bool]] = {}
        for key, values in (fields or {}).items():
            for value in values:
                self.add(key, value)

    @classmethod
    def from_json(cls, text: str | None) -> FilterArgs:
        """Both shapes clients send: the Go CLI's map of maps `{"label": {"a=b": true}}` and docker-py's lists
        `{"label": ["a=b"]}`; anything else is `invalid filter`."""
        args = cls()
        if not text:
            return args
        try:
            data = json.loads(text)
        except ValueError:
            raise InvalidFilter() from None
        if not isinstance(data, dict):
            raise InvalidFilter()
        for key, values in data.items():
            if isinstance(values, dict):
                for value, wanted in values.items():
                    if wanted is True:
                        args.add(key, str(value))
                    args.fields.setdefault(key, {})
            elif isinstance(values, list):
                for value in values:
                    args.add(key, str(value))
                args.fields.setdefault(key, {})
            else:
                raise InvalidFilter()
        return args

    def add(self, key: str, value: str) -> None:
        self.fields.setdefault(key, {})[value] = True

    def get(self, key: str) -> list[str]:
        return list(self.fields.get(key, {}))

    def contains(self, key: str) -> bool:
        return key in self.fields

    def keys(self) -> list[str]:
        return list(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def validate(self, accepted: Iterable[str]) -> None:
        allowed = set(accepted)
        for name in self.fields:
            if name not in allowed:
                raise InvalidFilter(name)

    def exact_match(self, key: str, source: str) -> bool:
        values = self.fields.get(key)
        if not values:
            return True
        return values.get(source, False)

    def unique_exact_match(self, key: str, source: str) -> bool:
        values = self.fields.get(key)
        if not values:
            return True
        return len(values) == 1 and source in values

    def fuzzy_match(self, key: str, source: str) -> bool:
        """Exact, or a value is a prefix of `source`."""
        if self.exact_match(key, source):
            return True
        return any(source.startswith(prefix) for prefix in self.fields.get(key, {}))

    def match(self, key: str, source: str) -> bool:
        """Exact, or a value is a regular expression found in `source` (Go's regexp.MatchString)."""
        if self.exact_match(key, source):
            return True
        for pattern in self.fields.get(key, {}):
            try:
                if re.search(pattern, source):
                    return True
            except re.error:
                continue
        return False

    def match_kv_list(self, key: str, sources: Mapping[str, str] | None) -> bool:
        """Every `k` or `k=v` value is in `sources` (a container's labels)."""
        values = self.fields.get(key)
        if not values:
            return True
        if not sources:
            return False
        for value in values:
            name, sep, wanted = value.partition("=")
            if name not in sources:
                return False
            if sep and sources[name] != wanted:
                return False
        return True

    def get_bool(self, key: str, default: bool) -> bool:
        values = self.fields.get(key)
        if values is None:
            return default
        if not values:
            raise InvalidFilter(key)
        falsy = "0" in values or "false" in values
        truthy = "1" in values or "true" in values
        if falsy == truthy:
            raise InvalidFilter(key, self.get(key))
        return truthy

    def __repr__(self) -> str:
        return f"FilterArgs({ {k: list(v) for k, v in self.fields.items()} })"


# -- events ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    type: str
    action: str
    actor_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    time_nano: int = field(default_factory=time.time_ns)
    scope: str = "local"

    def to_docker(self) -> dict[str, Any]:
        """The event as `/events` sends it (API 1.22+ shape with the legacy status/id/from fields)."""
        out: dict[str, Any] = {}
        if self.type in (CONTAINER, IMAGE):
            out["status"] = self.action
            out["id"] = self.actor_id
            if self.type == CONTAINER and "image" in self.attributes:
                out["from"] = self.attributes["image"]
        out.update({"Type": self.type, "Action": self.action,
                    "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
                    "scope": self.scope, "time": self.time_nano // 10 ** 9, "timeNano": self.time_nano})
        return out


def _family_name(image: str) -> str:
    """`docker.io/library/busybox:latest` → `busybox` (Docker's FamiliarName of the reference, roughly)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[:len(name) - len(last)] + last.split(":", 1)[0]
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "library/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    return name


class EventFilter:
    """Which events a subscriber wants (Docker's daemon/events/filter.go)."""

    ACCEPTED = ("container", "event", "image", "label", "network", "type", "volume", "daemon", "plugin", "scope",
                "node", "service", "secret", "config")
    _FUZZY_EVENTS = {"health_status", "exec_create", "exec_start"}

    def __init__(self, args: FilterArgs | None = None):
        self.args = args or FilterArgs()

    def include(self, ev: Event) -> bool:
        a = self.args
        if any(v in self._FUZZY_EVENTS for v in a.get("event")):
            event_ok = a.fuzzy_match("event", ev.action)
        else:
            event_ok = a.exact_match("event", ev.action)
        return (event_ok and a.exact_match("type", ev.type)
                and (not a.contains("scope") or a.exact_match("scope", ev.scope))
                and self._fuzzy_name(ev, DAEMON) and self._fuzzy_name(ev, CONTAINER)
                and self._fuzzy_name(ev, "plugin") and self._fuzzy_name(ev, VOLUME)
                and self._fuzzy_name(ev, NETWORK) and self._image(ev)
                and (not a.contains("label") or a.match_kv_list("label", ev.attributes)))

    def _fuzzy_name(self, ev: Event, kind: str) -> bool:
        return self.args.fuzzy_match(kind, ev.actor_id) or self.args.fuzzy_match(kind, ev.attributes.get("name", ""))

    def _image(self, ev: Event) -> bool:
        name = ev.attributes.get("name" if ev.type == IMAGE else "image", "")
        a = self.args
        return (a.exact_match("image", ev.actor_id) or a.exact_match("image", name)
                or a.exact_match("image", _family_name(ev.actor_id)) or a.exact_match("image", _family_name(name)))


def labels_of(annotations: Mapping[str, str]) -> dict[str, str]:
    """A container's labels from its annotations (VIC's `docker.labels`: base64 of JSON)."""
    blob = annotations.get(LABELS_ANNOTATION)
    if not blob:
        return {}
    try:
        labels = json.loads(base64.b64decode(blob))
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in (labels or {}).items()} if isinstance(labels, dict) else {}


Subscriber = Callable[[Event], None]


class EventBus:
    """The VCH's event stream: publish, keep a bounded history, fan out to subscribers."""

    def __init__(self, history: int = HISTORY):
        self._lock = threading.Lock()
        self._history: collections.deque[Event] = collections.deque(maxlen=history)
        self._subscribers: dict[int, tuple[Subscriber, EventFilter | None]] = {}
        self._next = 0

    def publish(self, op: Operation | None, event: Event) -> Event:
        with self._lock:
            self._history.append(event)
            targets = list(self._subscribers.values())
        if op is not None:
            op.debug("event %s %s %s", event.type, event.action, event.actor_id[:24])
        for callback, filt in targets:
            if filt is None or filt.include(event):
                try:
                    callback(event)
                except Exception:  # noqa: BLE001 - one bad subscriber must not stop the others
                    if op is not None:
                        op.exception("event subscriber failed")
        return event

    # -- the kinds of events the VCH makes ------------------------------------------------------------------------
    def container(self, op: Operation | None, action: str, container_id: str, *, name: str = "", image: str = "",
                  annotations: Mapping[str, str] | None = None, **attributes: Any) -> Event:
        """A container event; attributes `image`, `name`, the labels, and any extra (exitCode, signal, oldName)."""
        attrs: dict[str, str] = dict(labels_of(annotations or {}))
        if image:
            attrs["image"] = image
        if name:
            attrs["name"] = name
        attrs.update({k: str(v) for k, v in attributes.items()})
        return self.publish(op, Event(CONTAINER, action, container_id, attrs))

    def image(self, op: Operation | None, action: str, ref: str, **attributes: Any) -> Event:
        """An image event (pull, tag, untag, delete, load…): `ref` is the actor (reference or ID); `name` the repo."""
        attrs = {k: str(v) for k, v in attributes.items()}
        if "name" not in attrs and not ref.startswith("sha256:"):
            attrs["name"] = _family_name(ref)
        return self.publish(op, Event(IMAGE, action, ref, attrs))

    # -- reading ------------------------------------------------------------------------------------------------
    def subscribe(self, callback: Subscriber, filt: EventFilter | None = None, *,
                  since_ns: int | None = None, until_ns: int | None = None) -> tuple[list[Event], Callable[[], None]]:
        """Past events from `since_ns` (up to `until_ns`) and a subscription to new ones, atomically; returns
        (past, unsubscribe). Without `since_ns` there are no past events."""
        with self._lock:
            past = [] if since_ns is None else self._select(since_ns, until_ns, filt)
            key = self._next
            self._next += 1
            self._subscribers[key] = (callback, filt)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers.pop(key, None)

        return past, unsubscribe

    def history(self, since_ns: int | None = None, until_ns: int | None = None,
                filt: EventFilter | None = None) -> list[Event]:
        with self._lock:
            return self._select(since_ns or 0, until_ns, filt)

    def _select(self, since_ns: int, until_ns: int | None, filt: EventFilter | None) -> list[Event]:
        return [e for e in self._history
                if e.time_nano >= since_ns and (until_ns is None or e.time_nano <= until_ns)
                and (filt is None or filt.include(e))]

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)


__all__ = ["Event", "EventBus", "EventFilter", "FilterArgs", "InvalidFilter", "labels_of", "CONTAINER", "IMAGE",
           "VOLUME", "NETWORK", "DAEMON", "LABELS_ANNOTATION"]
