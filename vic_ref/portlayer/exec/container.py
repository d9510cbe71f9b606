"""A container as the port layer knows it: the last state vSphere reported for its VM, and what follows from it.

`Snapshot` is one consistent reading of a container VM (power state, changeVersion, extraConfig and the executor
config decoded from it). `Container` is the live cache entry: it holds the newest snapshot, which only the watcher
(the property collector, in vSphere's own order) replaces, and turns power transitions into exits that waits and
events follow. Operations read `info()`, an immutable copy.
"""
from __future__ import annotations

import datetime
import enum
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ...config import ExecutorConfig, SessionConfig, data_version, decode
from ...config.keys import unescape_nil
from ...vsphere import DatastorePath

ID_KEY = "guestinfo.vice./common/id"
LEGACY_NAME_KEY = "guestinfo.vice./common/name"  # where containers before rename support kept their name
RENAME_SUPPORTED = 4  # the data version from which the name is the hidden `common/name` (vic-behaviour.md §3)

POWERED_ON, POWERED_OFF, SUSPENDED = "poweredOn", "poweredOff", "suspended"


class State(enum.Enum):
    """The port layer's container states (VIC exec.State); `docker` is Docker's word for each."""
    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    SUSPENDED = "suspended"
    REMOVING = "removing"
    REMOVED = "removed"
    UNKNOWN = "unknown"

    @property
    def docker(self) -> str:
        return _DOCKER_STATES[self]


_DOCKER_STATES = {
    State.CREATED: "created", State.STARTING: "running", State.RUNNING: "running", State.STOPPING: "running",
    State.STOPPED: "exited", State.SUSPENDED: "paused", State.REMOVING: "removing", State.REMOVED: "removing",
    State.UNKNOWN: "dead",
}


def is_container(extra: dict[str, str]) -> bool:
    """Whether a VM's extraConfig is a container's (the appliance's own keys are under `init/`)."""
    return bool(container_id(extra))


def container_id(extra: dict[str, str]) -> str:
    """The container ID in a VM's extraConfig ("" for a VM that is no container), without decoding the rest."""
    return unescape_nil(extra.get(ID_KEY, ""))


@dataclass(frozen=True)
class Snapshot:
    """One reading of a container VM."""
    vm: Any  # vim.VirtualMachine
    display_name: str
    power_state: str
    change_version: str
    extra: dict[str, str]
    config: ExecutorConfig
    vm_path: str = ""  # config.files.vmPathName
    num_cpu: int = 0
    memory_mb: int = 0
    read_at: float = field(default_factory=time.time)

    @classmethod
    def from_properties(cls, vm, props: dict[str, Any], extra: dict[str, str] | None = None) -> Snapshot:
        """`extra`: the extraConfig of `props` as a dict, when the caller has made it already."""
        if extra is None:
            from ...vsphere import option_dict
            extra = option_dict(props.get("config.extraConfig"))
        return cls(vm=vm, display_name=props.get("name") or "", power_state=str(props.get("runtime.powerState") or
                                                                                 POWERED_OFF),
                   change_version=props.get("config.changeVersion") or "", extra=extra, config=decode(extra),
                   vm_path=props.get("config.files.vmPathName") or "",
                   num_cpu=int(props.get("summary.config.numCpu") or 0),
                   memory_mb=int(props.get("summary.config.memorySizeMB") or 0))

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def moid(self) -> str:
        return self.vm._moId

    @property
    def name(self) -> str:
        """The container name: the hidden `common/name`, else an older container's guest-visible key, else the
        display name without its `-<shortID>`."""
        if self.config.name:
            return self.config.name
        legacy = unescape_nil(self.extra.get(LEGACY_NAME_KEY, ""))
        if legacy:
            return legacy
        suffix = "-" + self.id[:12]
        return self.display_name[:-len(suffix)] if self.display_name.endswith(suffix) else self.display_name

    @property
    def session(self) -> SessionConfig | None:
        """The primary session (its ID is the container's)."""
        return self.config.sessions.get(self.id)

    @property
    def has_started(self) -> bool:
        """Whether the container ever ran (VIC hasStarted): a start or stop time is recorded."""
        sessions = self.config.sessions.values()
        return any(s.detail.start_time or s.detail.stop_time for s in sessions)

    @property
    def powered_on(self) -> bool:
        return self.power_state == POWERED_ON

    def state(self) -> State:
        """The state vSphere shows (VIC containerBase.State): power state plus whether it has run."""
        if self.power_state == POWERED_ON:
            session = self.session
            return State.RUNNING if session is None or session.started == "true" else State.STARTING
        if self.power_state == SUSPENDED:
            return State.SUSPENDED
        return State.STOPPED if self.has_started else State.CREATED

    @property
    def data_version(self) -> int:
        return data_version(self.extra)

    @property
    def datastore_folder(self) -> DatastorePath | None:
        """The folder of the VM's files: `[ds] <id>` (on vSAN the path may show the namespace's UUID)."""
        if not self.vm_path:
            return None
        try:
            return DatastorePath.parse(self.vm_path).parent
        except Exception:  # noqa: BLE001 - a path vSphere gave us but we can't read: no folder known
            return None


@dataclass(frozen=True)
class ContainerInfo:
    """What inspect and list show of a container, taken at one moment."""
    id: str
    name: str
    state: State
    snapshot: Snapshot
    exit_code: int
    error: str
    created_ns: int
    started_ns: int
    finished_ns: int
    restart_count: int = 0

    @property
    def running(self) -> bool:
        return self.state in (State.RUNNING, State.STARTING, State.STOPPING)

    @property
    def display_name(self) -> str:
        return self.snapshot.display_name

    @property
    def config(self) -> ExecutorConfig:
        return self.snapshot.config

    @property
    def session(self) -> SessionConfig | None:
        return self.snapshot.session

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.snapshot.config.annotations)

    @property
    def image_id(self) -> str:
        return self.snapshot.config.image_id

    @property
    def layer_id(self) -> str:
        return self.snapshot.config.layer_id

    @property
    def repo(self) -> str:
        return self.snapshot.config.repo_name

    @property
    def power_state(self) -> str:
        return self.snapshot.power_state


def _ran_unseen(old: Snapshot, new: Snapshot) -> bool:
    """Whether a whole run (power on, launch, exit, power off) happened between two powered-off readings: the
    property collector reports a property's latest value, so a short process can come and go between two updates.
    The tether's launch report is the evidence: `started` is reset to "" (with a new start time) only before a power
    on, and set again only by a tether that ran."""
    before, after = old.session, new.session
    if after is None or not after.started:
        return False
    if before is None:
        return False
    return before.started == "" or after.detail.start_time != before.detail.start_time


def exit_code_of(session: SessionConfig | None) -> tuple[int, str]:
    """(exit code, error) of the primary session as Docker shows them (VIC convert.State): a launch failure is
    126 (permission denied) or 127 (no such file), with the tether's text as the error."""
    if session is None:
        return 0, ""
    started = session.started
    if started not in ("", "true"):
        if "permission denied" in started:
            return 126, started
        if "no such" in started:
            return 127, started
        return session.exit_status or 125, started
    return session.exit_status, ""


def to_ns(value: int) -> int:
    """A session time as nanoseconds: data version 9 and later store UnixNano, older ones seconds."""
    if 0 < value < 10 ** 12:
        return value * 10 ** 9
    return value


def rfc3339(ns: int) -> str:
    """Go's time.RFC3339Nano of a UnixNano time (zero → Go's zero time), as Docker writes it."""
    if ns <= 0:
        return "0001-01-01T00:00:00Z"
    seconds, nanos = divmod(ns, 10 ** 9)
    stamp = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"


class Container:
    """The cache entry of one container: the newest snapshot and what happened to it since we started watching."""

    def __init__(self, snapshot: Snapshot):
        self.id = snapshot.id
        self.cond = threading.Condition()
        self.op_lock = threading.RLock()  # one lifecycle operation (start, stop, remove) at a time
        self._snapshot = snapshot
        self._transient: State | None = None  # STARTING / STOPPING / REMOVING while an operation runs
        self.exits = 0  # running → not running transitions seen
        self.starts = 0  # not running → running transitions seen
        self.removed = False
        self.restart_count = 0

    # -- updates (the watcher's, under the cache's ordering) ----------------------------------------------------
    def update(self, snapshot: Snapshot) -> tuple[bool, bool]:
        """Take a newer snapshot; (started, exited): whether a run began / ended since the last one."""
        with self.cond:
            old = self._snapshot
            self._snapshot = snapshot
            started = not old.powered_on and snapshot.powered_on
            exited = old.powered_on and not snapshot.powered_on
            if not old.powered_on and not snapshot.powered_on and _ran_unseen(old, snapshot):
                started = exited = True
            if started:
                self.starts += 1
            if exited:
                self.exits += 1
            self.cond.notify_all()
        return started, exited

    def mark_removed(self) -> None:
        with self.cond:
            self.removed = True
            self._transient = State.REMOVED
            self.cond.notify_all()

    def set_transient(self, state: State | None) -> None:
        with self.cond:
            self._transient = state
            self.cond.notify_all()

    # -- reading ------------------------------------------------------------------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        with self.cond:
            return self._snapshot

    @property
    def name(self) -> str:
        return self.snapshot.name

    def state(self) -> State:
        with self.cond:
            return self._state_locked()

    def _state_locked(self) -> State:
        # starting and stopping are states of a powered-on VM: once it is off, vSphere's word is the truth
        transient = self._transient
        if transient in (State.STARTING, State.STOPPING) and not self._snapshot.powered_on:
            transient = None
        return transient or self._snapshot.state()

    def info(self) -> ContainerInfo:
        with self.cond:
            snap = self._snapshot
            state = self._state_locked()
            restarts = self.restart_count
        session = snap.session
        code, error = exit_code_of(session)
        started = to_ns(session.detail.start_time) if session is not None else 0
        finished = to_ns(session.detail.stop_time) if session is not None else 0
        return ContainerInfo(id=snap.id, name=snap.name, state=state, snapshot=snap, exit_code=code, error=error,
                             created_ns=to_ns(snap.config.create_time), started_ns=started, finished_ns=finished,
                             restart_count=restarts)

    def wait_for(self, predicate, timeout: float, op=None) -> bool:
        """Wait until `predicate(self)` holds (checked under the lock at every update); False on timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if op is not None:
                    op.check()
                    left = min(left, 0.25)  # notice the operation's cancellation
                self.cond.wait(left)
            return True

    def __repr__(self) -> str:
        return f"<Container {self.id[:12]} {self.name!r} {self.state().value}>"


__all__ = ["Container", "ContainerInfo", "Snapshot", "State", "is_container", "container_id", "exit_code_of", "to_ns",
           "rfc3339", "ID_KEY", "POWERED_ON", "POWERED_OFF", "SUSPENDED"]
