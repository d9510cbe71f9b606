"""Property retrieval in batches: RetrievePropertiesEx, paging through ContinueRetrievePropertiesEx.

For a list of morefs (one ObjectSpec each, chunked) or for everything of some types under a container (a
ContainerView, traversed through its `view` property, destroyed afterwards).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from .. import errors
from ..trace import Operation

if TYPE_CHECKING:
    from .session import Session

PropertyCollector = vmodl.query.PropertyCollector

DEFAULT_PAGE = 500  # objects per RetrievePropertiesEx / ContinueRetrievePropertiesEx page


@dataclass
class ObjectProperties:
    """The properties of one object: `props[path]`; paths the server couldn't read are in `missing` (path → fault)."""
    obj: Any
    props: dict[str, Any] = field(default_factory=dict)
    missing: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, path: str) -> Any:
        return self.props[path]

    def get(self, path: str, default: Any = None) -> Any:
        return self.props.get(path, default)

    @property
    def moid(self) -> str:
        return self.obj._moId


def _prop_specs(types: Iterable[type], props: Sequence[str] | None) -> list:
    if props is None:
        return [PropertyCollector.PropertySpec(type=t, all=True) for t in types]
    return [PropertyCollector.PropertySpec(type=t, pathSet=list(props)) for t in types]


def _collect(session: Session, op: Operation, spec, page: int) -> list[ObjectProperties]:
    collector = session.content.propertyCollector
    out: list[ObjectProperties] = []
    with session.operation(op, "retrieve properties"):
        result = collector.RetrievePropertiesEx([spec], PropertyCollector.RetrieveOptions(maxObjects=page))
        while result is not None:
            for content in result.objects or []:
                out.append(ObjectProperties(
                    content.obj, {p.name: p.val for p in content.propSet or []},
                    {m.path: m.fault for m in content.missingSet or []}))
            if not result.token:
                break
            result = collector.ContinueRetrievePropertiesEx(result.token)
    return out


def retrieve(session: Session, op: Operation, objs: Sequence, props: Sequence[str] | None = None, *,
             page: int = DEFAULT_PAGE, ignore_missing: bool = False) -> list[ObjectProperties]:
    """`props` (None = all) of each object in `objs`, in the order given.

    An object that doesn't exist (any more) raises NotFound, or is left out with `ignore_missing`.
    """
    objs = list(objs)
    if not objs:
        return []
    found: dict[tuple[str, str], ObjectProperties] = {}
    for start in range(0, len(objs), page):
        chunk = objs[start:start + page]
        types = {type(o) for o in chunk}
        spec = PropertyCollector.FilterSpec(
            objectSet=[PropertyCollector.ObjectSpec(obj=o, skip=False) for o in chunk],
            propSet=_prop_specs(types, props), reportMissingObjectsInResults=True)
        for item in _collect(session, op, spec, page):
            if "" in item.missing and not item.props:  # the object itself is gone
                if not ignore_missing:
                    raise errors.NotFound(f"{type(item.obj).__name__} {item.moid} not found",
                                          fault=item.missing[""], op_id=op.id)
                continue
            found[(type(item.obj).__name__, item.moid)] = item
    ordered = []
    for obj in objs:
        item = found.get((type(obj).__name__, obj._moId))
        if item is None:
            if not ignore_missing:
                raise errors.NotFound(f"{type(obj).__name__} {obj._moId} not found", op_id=op.id)
            continue
        ordered.append(item)
    return ordered


def retrieve_one(session: Session, op: Operation, obj, props: Sequence[str] | None = None) -> dict[str, Any]:
    """`props` of one object as a dict (a missing path is absent)."""
    return retrieve(session, op, [obj], props)[0].props


def retrieve_view(session: Session, op: Operation, container, types: Sequence[type],
                  props: Sequence[str] | None = None, *, recursive: bool = True,
                  page: int = DEFAULT_PAGE) -> list[ObjectProperties]:
    """`props` of every object of `types` under `container` (the root folder, a datacenter's folder…)."""
    manager = session.content.viewManager
    for attempt in (1, 2):
        logins = session.logins
        view = session.call(op, manager.CreateContainerView, container, list(types), recursive)
        try:
            spec = PropertyCollector.FilterSpec(
                objectSet=[PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[
                    PropertyCollector.TraversalSpec(name="traverseView", type=vim.view.ContainerView, path="view",
                                                    skip=False)])],
                propSet=_prop_specs(types, props))
            return _collect(session, op, spec, page)
        except errors.NotFound:
            # the view vanished with a lost session: make another one
            if attempt == 2 or session.logins == logins:
                raise
        finally:
            try:
                session.call(op, view.DestroyView)
            except errors.VicError:
                pass
    raise AssertionError("unreachable")  # pragma: no cover
