"""Handles (VIC's `lib/portlayer/exec/handle.go`): a snapshot of a container plus the change wanted.

Joins change only the handle: its executor config, the display name, device changes, the target power state. Commit
(`commit.py`) is the single writer that sends the difference to vSphere with the snapshot's `changeVersion`; a stale
one fails with ConcurrentModification and the caller starts again from a fresh handle.
"""
from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field
from typing import Any

from ...config import ExecutorConfig, encode, key_for
from ...config.executor import PLUGIN_VERSION
from ...config.keys import GUESTINFO_PREFIX, is_non_persistent
from .container import LEGACY_NAME_KEY, POWERED_OFF, RENAME_SUPPORTED, Snapshot
from .spec import CreateDevices, Placement

TARGET_RUNNING, TARGET_STOPPED = "running", "stopped"
NAME_KEY = key_for("common", "name")  # the hidden `common/name`


@dataclass
class Creation:
    """What only a new container has: where its files go and its devices and resources."""
    placement: Placement
    devices: CreateDevices = field(default_factory=CreateDevices)
    num_cpus: int = 2
    memory_mb: int = 2048
    reserved_names: list[str] = field(default_factory=list)  # released if the create fails


class Handle:
    """A container's snapshot and the desired change; `commit` applies it."""

    def __init__(self, config: ExecutorConfig, *, snapshot: Snapshot | None = None,
                 creation: Creation | None = None):
        self.key = secrets.token_hex(16)
        self.snapshot = snapshot  # None while creating
        self.creation = creation
        self.config = config  # the desired executor config (a private copy)
        self.display_name: str | None = None  # a new display name, if wanted
        self.device_changes: list[Any] = []
        self.target_state: str | None = None
        self.reload = False  # send the tether `reload` after the commit (when running)
        # guest-visible key prefixes this commit may write while the VM runs (keys only the VCH writes, e.g. a
        # network connect's endpoint: nothing of the guest's is lost)
        self.running_writable: tuple[str, ...] = ()
        self.legacy_name: str | None = None  # an older container's new name, for its guest-visible name key

    @classmethod
    def for_snapshot(cls, snapshot: Snapshot) -> Handle:
        return cls(copy.deepcopy(snapshot.config), snapshot=snapshot)

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def creating(self) -> bool:
        return self.snapshot is None

    @property
    def vm(self):
        return self.snapshot.vm if self.snapshot is not None else None

    @property
    def powered_on(self) -> bool:
        return self.snapshot is not None and self.snapshot.power_state != POWERED_OFF

    # -- joins that belong to the handle itself -------------------------------------------------------------------
    def rename(self, name: str, display_name: str) -> Handle:
        """The container becomes `name`: the hidden `common/name` and the VM display name, in one commit. An older
        container (data version below RENAME_SUPPORTED) keeps its name where its data has it, the guest-visible
        `guestinfo.vice./common/name` (written even while it runs: only the VCH writes that key), and gets no hidden
        name key (DESIGN-DECISIONS §3, vic-behaviour.md §3 item 3)."""
        from ..network.aliases import rename as rename_aliases
        old = self.snapshot.name if self.snapshot is not None else self.config.common.name
        self.config.common.name = name
        self.display_name = display_name
        rename_aliases(self.config, old, name)  # `<scope>:<old>` → `<scope>:<new>` on every network, same commit
        if self.snapshot is not None and self.snapshot.data_version < RENAME_SUPPORTED:
            self.legacy_name = name
            self.running_writable = (*self.running_writable, LEGACY_NAME_KEY)
        return self

    def set_target_state(self, state: str | None) -> Handle:
        self.target_state = state
        return self

    # -- what commit sends ----------------------------------------------------------------------------------------
    def extra_config_changes(self, powered_on: bool | None = None) -> list[tuple[str, str]]:
        """The extraConfig changes from the snapshot to the desired config (VIC Handle.Commit's scope filter): while
        the VM runs only hidden and non-persistent keys may change (the rest is the guest's now); otherwise every
        key but the non-persistent ones."""
        from ...config import diff
        if self.snapshot is None:
            return list(encode(self.config).items())
        running = self.powered_on if powered_on is None else powered_on
        version = self.snapshot.data_version
        # Older data (vic-behaviour.md §3 item 3: never write the new format to old VMs): only what this handle's
        # operation changed goes out, the difference between the old data as read and as wanted, so the decode and
        # encode round trip adds no new-format keys (hidden name, defaults) and drops no old ones (the guest-visible
        # name key); the one new-format key rename would add, the hidden name, stays out: `legacy_name` instead.
        base = encode(self.snapshot.config) if version < PLUGIN_VERSION else self.snapshot.extra
        wanted = diff(base, encode(self.config))
        if version < RENAME_SUPPORTED:
            wanted = [c for c in wanted if c[0] != NAME_KEY]
            if self.legacy_name is not None:
                wanted.append((LEGACY_NAME_KEY, self.legacy_name))
        changes = []
        for key, value in wanted:
            hidden = not key.startswith(GUESTINFO_PREFIX)
            volatile = is_non_persistent(key)
            if running and not (hidden or volatile or key.startswith(self.running_writable)):
                continue
            if not running and volatile:
                continue
            changes.append((key, value))
        return changes

    def __repr__(self) -> str:
        return f"<Handle {self.key[:8]} {self.id[:12]}{' (create)' if self.creating else ''}>"


__all__ = ["Handle", "Creation", "TARGET_RUNNING", "TARGET_STOPPED"]
