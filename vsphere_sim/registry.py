"""Managed objects by moref, and the change log that property filters and the state store read.

Every change goes through `changed()`: it bumps the global version, stamps the properties with it and wakes waiters.
Objects are also indexed by their vim type, so `of_type(vim.Datastore)` never walks the (up to thousands of) tasks.
"""
from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from pyVmomi import vim, vmodl

if TYPE_CHECKING:
    from .objects.base import ManagedObjectImpl


class Registry:
    def __init__(self, lock: threading.RLock):
        self.lock = lock
        self.objects: dict[str, ManagedObjectImpl] = {}
        self.version = 0
        # bumped when objects are added or removed, so filters know to recompute their object sets
        self.structure_version = 0
        self.removed: dict[str, int] = {}  # moid -> version at removal, for `leave` updates
        self.changes = threading.Condition(lock)
        self._counters: dict[str, itertools.count] = {}
        self.dirty: set[str] = set()
        self.deleted: set[str] = set()
        # the moref class of each object -> its objects by moid, in the order they were added
        self._by_type: dict[type, dict[str, ManagedObjectImpl]] = {}
        self._added: dict[str, int] = {}  # moid -> when it was added, to merge several types in `objects` order
        self._add_count = itertools.count()
        # called with each object removed (the simulator drops what other parts keep about a destroyed entity)
        self.on_remove: list[Callable[[ManagedObjectImpl], None]] = []
        # inventory entities by name, so a sibling-name check never walks a folder of thousands
        self._by_name: dict[str, dict[str, ManagedObjectImpl]] = {}
        self._name_of: dict[str, str] = {}

    def next_id(self, prefix: str) -> str:
        """vCenter-style moref ids: `vm-42`, `task-7`; one counter per prefix, never reused."""
        counter = self._counters.setdefault(prefix, itertools.count(1))
        while True:
            moid = f"{prefix}-{next(counter)}"
            if moid not in self.objects and moid not in self.removed:
                return moid

    def reserve_counter(self, prefix: str, above: int):
        """After loading saved state, make new ids start above the highest saved one."""
        current = self._counters.get(prefix)
        start = above + 1
        if current is not None:
            start = max(start, next(current))
        self._counters[prefix] = itertools.count(start)

    def add(self, obj: ManagedObjectImpl) -> ManagedObjectImpl:
        if obj.moid in self.objects:
            raise ValueError(f"duplicate moref {obj.moid}")
        self.objects[obj.moid] = obj
        self._by_type.setdefault(type(obj.ref), {})[obj.moid] = obj
        self._added[obj.moid] = next(self._add_count)
        self.removed.pop(obj.moid, None)
        self.version += 1
        self.structure_version = self.version
        for name in obj.props:
            obj.prop_versions[name] = self.version
        if obj.persistent:
            self.dirty.add(obj.moid)
            self.deleted.discard(obj.moid)
        self._index_name(obj)
        self.changes.notify_all()
        return obj

    def remove(self, obj: ManagedObjectImpl) -> None:
        if self.objects.pop(obj.moid, None) is None:
            return
        bucket = self._by_type.get(type(obj.ref))
        if bucket is not None:
            bucket.pop(obj.moid, None)
        self._added.pop(obj.moid, None)
        self.version += 1
        self.structure_version = self.version
        self.removed[obj.moid] = self.version
        self._unindex_name(obj.moid)
        if obj.persistent:
            self.deleted.add(obj.moid)
            self.dirty.discard(obj.moid)
        self.changes.notify_all()
        for hook in self.on_remove:
            hook(obj)

    def changed(self, obj: ManagedObjectImpl, names: Iterable[str]) -> None:
        self.version += 1
        for name in names:
            obj.prop_versions[name] = self.version
            if name == "name" and obj.moid in self.objects:
                self._index_name(obj)
        if obj.persistent and obj.moid in self.objects:
            self.dirty.add(obj.moid)
        self.changes.notify_all()

    def get(self, ref, expected: type | None = None) -> ManagedObjectImpl:
        """The object for a moref (or moid); ManagedObjectNotFound when it is gone or of another type."""
        moid = ref if isinstance(ref, str) else ref._moId
        obj = self.objects.get(moid)
        if obj is None or (not isinstance(ref, str) and not isinstance(obj.ref, type(ref))):
            raise vmodl.fault.ManagedObjectNotFound(
                msg=f"The object '{_describe(ref)}' has already been deleted or has not been completely created",
                obj=ref if not isinstance(ref, str) else None)
        if expected is not None and not isinstance(obj, expected):
            raise vmodl.fault.InvalidArgument(msg=f"{_describe(ref)} is not a {expected.__name__}",
                                              invalidProperty="_this")
        return obj

    def find(self, moid: str):
        return self.objects.get(moid)

    def named(self, name: str) -> list[ManagedObjectImpl]:
        """The inventory entities called `name`, anywhere."""
        return list(self._by_name.get(name, {}).values())

    def _index_name(self, obj: ManagedObjectImpl) -> None:
        name = obj.props.get("name")
        if not isinstance(name, str) or not isinstance(obj.ref, vim.ManagedEntity):
            return
        moid = obj.moid
        old = self._name_of.get(moid)
        if old == name:
            return
        if old is not None:
            self._unindex_name(moid)
        self._by_name.setdefault(name, {})[moid] = obj
        self._name_of[moid] = name

    def _unindex_name(self, moid: str) -> None:
        old = self._name_of.pop(moid, None)
        if old is not None:
            bucket = self._by_name.get(old)
            if bucket is not None:
                bucket.pop(moid, None)
                if not bucket:
                    del self._by_name[old]

    def of_type(self, vim_type: type) -> list:
        """The objects whose moref is a `vim_type` (subtypes too), in the order they were added."""
        buckets = [bucket for cls, bucket in self._by_type.items() if bucket and issubclass(cls, vim_type)]
        if len(buckets) == 1:
            return list(buckets[0].values())
        added = self._added
        return sorted(itertools.chain.from_iterable(b.values() for b in buckets), key=lambda o: added[o.moid])


def _describe(ref) -> str:
    if isinstance(ref, str):
        return ref
    return f"vim.{ref._wsdlName}:{ref._moId}"
