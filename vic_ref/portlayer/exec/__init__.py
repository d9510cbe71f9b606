"""The exec component of the port layer: container VMs, handles, commit, lifecycle, the container cache."""
from .container import Container, ContainerInfo, Snapshot, State, rfc3339, to_ns
from .handle import TARGET_RUNNING, TARGET_STOPPED, Handle
from .lifecycle import (
    DEFAULT_STOP_TIMEOUT,
    NEXT_EXIT,
    NOT_RUNNING,
    REMOVED,
    WAIT_CONDITIONS,
    ContainerRunning,
    InvalidSignal,
    parse_signal,
)
from .manager import AmbiguousPrefix, Exec, Inventory, NotRunning, no_such_container
from .spec import display_name, short_id

__all__ = [
    "Exec", "Inventory", "Handle", "Container", "ContainerInfo", "Snapshot", "State", "NotRunning",
    "AmbiguousPrefix", "ContainerRunning", "InvalidSignal", "no_such_container", "parse_signal", "display_name",
    "short_id", "rfc3339", "to_ns", "TARGET_RUNNING", "TARGET_STOPPED", "WAIT_CONDITIONS", "NOT_RUNNING",
    "NEXT_EXIT", "REMOVED", "DEFAULT_STOP_TIMEOUT",
]
