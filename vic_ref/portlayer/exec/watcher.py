"""The container watcher: one property collector on a container view of the VCH's folder, long-polled with
WaitForUpdatesEx on a thread of its own (VIC's vSphere event collector, done with property updates).

vSphere reports every change of a container VM in order, so the watcher is the one writer of the container cache's
snapshots: power transitions (and so `die` events and waits) follow from what it applies. Its first update is the
whole folder, which is how a starting VCH rebuilds its cache. If the session is lost, the collector went with it: the
watcher makes a new one, and the new first update is compared with the cache (containers removed meanwhile go).
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ... import errors
from ...trace import Operation
from ...vsphere import Session, vim, vmodl
from .vm import PROPERTIES

if TYPE_CHECKING:
    from .manager import Exec

PropertyCollector = vmodl.query.PropertyCollector

POLL_SECONDS = 1  # the longest one WaitForUpdatesEx blocks, so stop() is quick
RETRY_SECONDS = 1.0  # after an error, before making a new collector
STOP_WAIT = 0.25  # how long stop() waits for the watcher's thread to end (a daemon: it may be left behind)


class Watcher:
    def __init__(self, exec_: Exec, session: Session, folder):
        self.exec = exec_
        self.session = session
        self.folder = folder
        self.lock = threading.Lock()  # guards `latest`; taken inside the cache lock, never around it
        self.latest: dict[str, tuple[Any, dict[str, Any]]] = {}  # moid → (vm, properties) as last reported
        self._collector = None
        self._view = None
        self._version = ""
        self._logins = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.updates = 0  # how many updates were applied (for tests and logs)

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def start(self, op: Operation) -> None:
        """Read the whole folder once (the cache rebuild), then watch on a thread."""
        self._connect(op)
        self._poll(op, 0)
        self._thread = threading.Thread(target=self._run, name="vic-container-watcher", daemon=True)
        self._thread.start()

    def stop(self, op: Operation) -> None:
        """Stop watching, quickly: a VCH that powers off must not wait on a vSphere that may be gone already. The
        long poll is cancelled from a thread of its own (CancelWaitForUpdates) and the watcher cleans up after
        itself; we wait for it only briefly (its thread is a daemon)."""
        self._stop.set()
        collector = self._collector
        if collector is not None:
            threading.Thread(target=self._cancel, args=(op, collector), name="vic-watcher-cancel",
                             daemon=True).start()
        if self._thread is None:
            self._disconnect(op)
        elif self._thread is not threading.current_thread():
            self._thread.join(timeout=STOP_WAIT)

    def _cancel(self, op: Operation, collector) -> None:
        try:
            self.session.call(op, collector.CancelWaitForUpdates)
        except errors.VicError:
            pass

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    # -- the collector --------------------------------------------------------------------------------------------
    def _connect(self, op: Operation) -> None:
        content = self.session.content
        self._logins = self.session.logins
        self._collector = self.session.call(op, content.propertyCollector.CreatePropertyCollector)
        self._view = self.session.call(op, content.viewManager.CreateContainerView, self.folder,
                                       [vim.VirtualMachine], True)
        spec = PropertyCollector.FilterSpec(
            objectSet=[PropertyCollector.ObjectSpec(obj=self._view, skip=True, selectSet=[
                PropertyCollector.TraversalSpec(name="traverseView", type=vim.view.ContainerView, path="view",
                                                skip=False)])],
            propSet=[PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=list(PROPERTIES))])
        self.session.call(op, self._collector.CreateFilter, spec, False)
        self._version = ""

    def _disconnect(self, op: Operation) -> None:
        for obj, method in ((self._view, "DestroyView"), (self._collector, "DestroyPropertyCollector")):
            if obj is None:
                continue
            try:
                self.session.call(op, getattr(obj, method))
            except errors.VicError:
                pass  # gone with its session already
        self._view = self._collector = None

    def _poll(self, op: Operation, seconds: int) -> None:
        first = not self._version
        update = self.session.call(op, self._collector.WaitForUpdatesEx, self._version,
                                   PropertyCollector.WaitOptions(maxWaitSeconds=seconds))
        if self.session.logins != self._logins:
            # we logged in again meanwhile: this collector was the old session's
            raise _CollectorLost()
        if update is None:
            return
        self._version = update.version
        seen: set[str] = set()
        changed: list[tuple[Any, dict[str, Any] | None]] = []
        with self.lock:
            for filter_update in update.filterSet or []:
                for obj_update in filter_update.objectSet or []:
                    vm = obj_update.obj
                    moid = vm._moId
                    if obj_update.kind == "leave":
                        self.latest.pop(moid, None)
                        changed.append((vm, None))
                        continue
                    seen.add(moid)
                    _, props = self.latest.get(moid, (vm, {}))
                    props = dict(props)
                    for change in obj_update.changeSet or []:
                        if change.op in ("remove", "indirectRemove"):
                            props.pop(change.name, None)
                        else:
                            props[change.name] = change.val
                    self.latest[moid] = (vm, props)
                    changed.append((vm, props))
        self.updates += 1
        for vm, props in changed:
            if props is None:
                self.exec.vm_left(op, vm)
            else:
                self.exec.vm_changed(op, vm, props)
        if first:
            # a full picture: anything the cache has that vSphere no longer shows went while we were not looking
            self.exec.reconcile(op, seen)

    def _run(self) -> None:
        op = Operation.new("container watcher")
        while not self._stop.is_set():
            try:
                if self._collector is None:
                    self._connect(op)
                self._poll(op, POLL_SECONDS)
            except _CollectorLost:
                op.info("container watcher: vSphere session was renewed; watching again from a full update")
                self._collector = self._view = None
            except errors.VicError as err:
                if self._stop.is_set():
                    break
                op.warning("container watcher: %s; starting over in %.0fs", err, RETRY_SECONDS)
                self._disconnect(op)
                self._stop.wait(RETRY_SECONDS)
            except Exception as err:  # noqa: BLE001 - the watcher must outlive a bug in one update
                op.exception("container watcher: unexpected %s; starting over", type(err).__name__)
                self._disconnect(op)
                self._stop.wait(RETRY_SECONDS)
        self._disconnect(op)

    def latest_of(self, moid: str) -> tuple[Any, dict[str, Any]] | None:
        with self.lock:
            return self.latest.get(moid)


class _CollectorLost(Exception):
    pass


__all__ = ["Watcher"]
