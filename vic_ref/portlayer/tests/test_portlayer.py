"""The PortLayer's own wiring: the image store hears from it (which containers use an image) and talks to it
(image events), without any vSphere call."""
from __future__ import annotations

import uuid

from vic_ref.config.vch import new_config
from vic_ref.portlayer import PortLayer
from vic_ref.trace import Operation


class StubStore:
    def __init__(self):
        self.usage = self.listener = None
        self.started = self.closed = False

    def set_usage(self, usage):
        self.usage = usage

    def set_event_listener(self, listener):
        self.listener = listener


def test_image_store_hooks():
    op = Operation.new("hooks")
    config = new_config("vch", "http://127.0.0.1:1/sdk", "u", "p", image_store="[ds]", vch_id=str(uuid.uuid4()))
    store = StubStore()
    pl = PortLayer(op, None, config, None, storage=store)
    assert pl.storage is store and store.usage is not None and store.listener is not None
    assert store.usage(op, "sha256:" + "0" * 64) == []  # no container uses it
    store.listener(op, "pull", "busybox:latest", {})
    store.listener(op, "untag", "sha256:" + "1" * 64, {"name": "busybox:1"})
    events = [e.to_docker() for e in pl.events.history()]
    assert [(e["Type"], e["Action"], e["Actor"]["ID"]) for e in events] == [
        ("image", "pull", "busybox:latest"), ("image", "untag", "sha256:" + "1" * 64)]
    assert events[0]["Actor"]["Attributes"] == {"name": "busybox"}
    assert events[1]["Actor"]["Attributes"] == {"name": "busybox:1"}
    assert not pl.started and repr(pl).startswith("<PortLayer vch")
