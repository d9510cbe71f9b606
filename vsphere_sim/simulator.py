"""The Simulator: owns every piece of one simulated vCenter (no module-level state, so tests run many side by side)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from pyVmomi import vim

from .dispatch import CallContext, Dispatcher
from .registry import Registry
from .sessions import Session, SessionTable
from .settle import SimLock
from .tasks import TaskRunner

if TYPE_CHECKING:
    from .objects.event_manager import EventManagerImpl

log = logging.getLogger("vsphere_sim")

DEFAULT_USER = "administrator@vsphere.local"
DEFAULT_PASSWORD = "Admin!23"


class Simulator:
    def __init__(self, workdir: str | Path, user: str = DEFAULT_USER, password: str = DEFAULT_PASSWORD,
                 seed: bool = True, persist: bool = True, lock_wait: float = 0.0):
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.user = user
        self.password = password
        self.lock = SimLock()
        self.registry = Registry(self.lock)
        self.sessions = SessionTable()
        self.tasks = TaskRunner(self)
        self.dispatcher = Dispatcher(self)
        self.current: CallContext | None = None  # the call being served (all calls run under self.lock)
        self.servers: list = []
        self.closed = False
        from . import persist as persist_mod
        self.store = persist_mod.StateStore(self.workdir / "state.db", lock_wait) if persist else None
        from .datastore_fs import DatastoreFS
        self.datastores = DatastoreFS(self, self.workdir / "datastores")
        from .guests import GuestSupervisor
        self.guests = GuestSupervisor(self)
        # the EventManager, for posting events from inside the sim: `sim.events.post(event)` (set at every boot)
        self.events: EventManagerImpl | None = None
        # a destroyed entity leaves nothing behind in the managers that keep state about entities
        self.registry.on_remove.append(self._entity_removed)
        self._internal_session = Session("internal", user=user, authenticated=True)
        with self.lock:
            self._boot(seed)

    # -- boot ---------------------------------------------------------------------------------------------------
    def _boot(self, seed: bool):
        from .objects import create_managers
        create_managers(self)
        self.events = self.registry.get("EventManager")
        loaded = self.store.load(self) if self.store is not None else False
        if not loaded and seed:
            from .inventory import seed_default_inventory
            seed_default_inventory(self)
        self.flush_state()
        if loaded:
            self.guests.resume_powered_on()

    def reset(self, seed: bool = True):
        """Back to a fresh default inventory: every VM, file and session is gone."""
        with self.lock:
            self.guests.stop_all()
            self.sessions.clear()
            for obj in list(self.registry.objects.values()):
                self.registry.remove(obj)
            if self.store is not None:
                self.store.wipe()
            self.datastores.wipe()
            self.registry.dirty.clear()
            self.registry.deleted.clear()
            self._boot(seed)

    # -- calls --------------------------------------------------------------------------------------------------
    def call(self, this, wsdl_name: str, **args):
        """Call a vim25 method in-process as an authenticated client would (used to seed the inventory)."""
        from . import soap
        method = soap.lookup_method(wsdl_name)
        for param in method.info.params:
            args.setdefault(param.name, None)
        request = soap.SoapRequest(wsdl_name, this, args, soap.DEFAULT_VERSION, method)
        _, value = self.dispatcher.call(request, self._internal_session)
        return value

    def wait_task(self, task_ref):
        """Result of an in-process task (internal calls run tasks inline unless a fault rule delays them)."""
        info = self.registry.get(task_ref).props["info"]
        if info.state == "error":
            raise info.error
        return info.result

    def end_session(self, session: Session):
        with self.lock:
            for ref in list(session.owned):
                obj = self.registry.find(ref._moId)
                if obj is not None:
                    self.registry.remove(obj)
            session.owned.clear()
            self.sessions.end(session)

    def end_all_sessions(self):
        """Drop every client session with what it owns (collectors, filters, views), as a vCenter restart does."""
        with self.lock:
            for session in list(self.sessions._sessions.values()):
                self.end_session(session)

    def _entity_removed(self, obj) -> None:
        if not isinstance(obj.ref, vim.ManagedEntity):
            return
        if isinstance(obj.ref, vim.VirtualMachine):
            self.guests.vm_removed(obj.moid)
        authorization = self.registry.find("AuthorizationManager")
        if authorization is not None:
            authorization.forget_entity(obj.moid)

    def flush_state(self):
        if self.store is not None:
            self.store.flush(self.registry)

    # -- serving ------------------------------------------------------------------------------------------------
    def serve(self, listen: str = "127.0.0.1:0", tls: bool = True):
        """Start serving vim25 on a background thread; returns the server (its `.url`)."""
        from .server import SimServer
        server = SimServer(self, listen, tls)
        server.start()
        self.servers.append(server)
        return server

    def close(self):
        if self.closed:
            return
        self.closed = True
        for server in self.servers:
            server.stop()
        self.guests.stop_all()
        with self.lock:
            self.flush_state()
            if self.store is not None:
                self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- helpers for objects ------------------------------------------------------------------------------------
    def get(self, ref):
        return self.registry.get(ref)

    def root_folder(self):
        return self.registry.get(vim.Folder("group-d1"))
