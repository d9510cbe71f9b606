"""Data versions and migration (VIC's `lib/migration`: `feature`, `manager`, `migrator`, the plugins).

Data versions are sequential integers, one per change of the guestinfo layout (`feature/feature.go`); the data
version vic-ref writes is `MAX_PLUGIN_VERSION - 1` (= `vic_ref.config.executor.PLUGIN_VERSION`). A container VM
records the version it was written with in `guestinfo.vice./version/PluginVersion`, the appliance VM in
`guestinfo.vice./init/version/PluginVersion`; a missing key means 0.

vic-ref ships two releases (DESIGN-DECISIONS §5): the current one and the older one it upgrades from, a stand-in for
a pre-rename VIC (data version 3, `TASKS_SUPPORTED`): its containers keep their name in the guest-visible
`guestinfo.vice./common/name` (no hidden `common/name`) and their tether puts that name in `/etc/hosts`. Which
release a VCH runs is chosen by the appliance ISO it boots (`RELEASES`).

Migration copies the map, runs every plugin registered for the target kind whose version is above the data's, in
ascending order, then sets the version key to the current version. It returns `(map, migrated)`; data that is not
older comes back as a copy with `migrated=False`. Migrated data is for reading: VIC never writes it back to an old
container VM (its commit drops ExtraConfig); vic-machine upgrade writes a migrated appliance config.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from ..config.executor import PLUGIN_VERSION, VERSION_KEY
from ..config.keys import unescape_nil

# -- feature versions (VIC lib/migration/feature/feature.go) --------------------------------------------------------
ADD_COMMON_SPEC_FOR_VCH = 1
ADD_COMMON_SPEC_FOR_CONTAINER = 2
TASKS_SUPPORTED = 3
RENAME_SUPPORTED = 4
MIGRATE_REGISTRY = 5
EXEC_SUPPORTED = 6
VICADMIN_PROXY_VAR_RENAME = 7
INSECURE_REGISTRIES_TYPE_CHANGE = 8
CONTAINER_CREATE_TIMESTAMP = 9
VCH_FOLDER_SUPPORT = 10
MAX_PLUGIN_VERSION = 11
CURRENT_DATA_VERSION = MAX_PLUGIN_VERSION - 1
assert CURRENT_DATA_VERSION == PLUGIN_VERSION

# -- the releases vic-ref ships: appliance version → the data version it writes -------------------------------------
CURRENT_RELEASE = "0.1.0"  # == vic_ref.config.vch.APPLIANCE_VERSION
PREVIOUS_RELEASE = "0.0.9"
RELEASES: dict[str, int] = {CURRENT_RELEASE: CURRENT_DATA_VERSION, PREVIOUS_RELEASE: TASKS_SUPPORTED}

APPLIANCE_VERSION_KEY = "guestinfo.vice./init/version/PluginVersion"
CONTAINER_VERSION_KEY = VERSION_KEY
LEGACY_NAME_KEY = "guestinfo.vice./common/name"  # before RENAME_SUPPORTED: read-only, the guest sees it
HIDDEN_NAME_KEY = "common/name"  # from RENAME_SUPPORTED on: hidden from the guest


def release_data_version(release: str) -> int | None:
    """The data version a vic-ref release writes; None for a release vic-ref does not know."""
    return RELEASES.get(release)


def version_of(data: Mapping[str, str], key: str = CONTAINER_VERSION_KEY) -> int:
    text = unescape_nil(data.get(key, ""))
    try:
        return int(text) if text else 0
    except ValueError:
        return 0


# -- plugins -------------------------------------------------------------------------------------------------------
Plugin = Callable[[dict[str, str]], None]
CONTAINER_PLUGINS: dict[int, Plugin] = {}
VCH_PLUGINS: dict[int, Plugin] = {}


def _container(version: int):
    def register(fn: Plugin) -> Plugin:
        CONTAINER_PLUGINS[version] = fn
        return fn
    return register


def _vch(version: int):
    def register(fn: Plugin) -> Plugin:
        VCH_PLUGINS[version] = fn
        return fn
    return register


@_container(ADD_COMMON_SPEC_FOR_CONTAINER)
def _common_name_for_container(data: dict[str, str]) -> None:
    """Plugin 2: the hidden `common/name` from the old guest-visible key (the old key stays: the old tether reads
    it)."""
    legacy = unescape_nil(data.get(LEGACY_NAME_KEY, ""))
    if legacy and not unescape_nil(data.get(HIDDEN_NAME_KEY, "")):
        data[HIDDEN_NAME_KEY] = legacy


@_container(CONTAINER_CREATE_TIMESTAMP)
def _create_time_nanoseconds(data: dict[str, str]) -> None:
    """Plugin 9: `createtime` from seconds to nanoseconds. vic-ref's older release already wrote nanoseconds, so a
    value that is plainly nanoseconds (after 1973 in them) is left alone."""
    key = "guestinfo.vice..createtime"
    text = unescape_nil(data.get(key, ""))
    if text.isdigit() and 0 < int(text) < 10 ** 11:
        data[key] = str(int(text) * 10 ** 9)


@_vch(MIGRATE_REGISTRY)
def _migrate_registry(data: dict[str, str]) -> None:
    """Plugin 5 (registry whitelist/insecure lists moved): vic-ref's VCH config has no registry settings."""


@_vch(VICADMIN_PROXY_VAR_RENAME)
def _vicadmin_proxy(data: dict[str, str]) -> None:
    """Plugin 7 (vicadmin's proxy variables renamed): vic-ref has no vicadmin."""


@_vch(INSECURE_REGISTRIES_TYPE_CHANGE)
def _insecure_registries(data: dict[str, str]) -> None:
    """Plugin 8 (insecure registries from URL structs to strings): vic-ref's VCH config has no registry settings."""


def _migrate(data: Mapping[str, str], key: str, plugins: dict[int, Plugin],
             target: int = CURRENT_DATA_VERSION) -> tuple[dict[str, str], bool]:
    out = dict(data)
    current = version_of(out, key)
    if current >= target:
        return out, False
    for version in sorted(plugins):
        if current < version <= target:
            plugins[version](out)
    out[key] = str(target)
    return out, True


def migrate_container(data: Mapping[str, str], target: int = CURRENT_DATA_VERSION) -> tuple[dict[str, str], bool]:
    """A container VM's extraConfig as data version `target` reads it (in memory only)."""
    return _migrate(data, CONTAINER_VERSION_KEY, CONTAINER_PLUGINS, target)


def migrate_vch(data: Mapping[str, str], target: int = CURRENT_DATA_VERSION) -> tuple[dict[str, str], bool]:
    """An appliance VM's extraConfig as data version `target` reads it."""
    return _migrate(data, APPLIANCE_VERSION_KEY, VCH_PLUGINS, target)


def container_layout(encoded: Mapping[str, str]) -> dict[str, str]:
    """A new container's encoded config in the layout of the data version it records: before RENAME_SUPPORTED the
    name is the guest-visible `guestinfo.vice./common/name` and there is no hidden `common/name`. A config that
    records no version is written in the current layout."""
    out = dict(encoded)
    if 0 < version_of(out) < RENAME_SUPPORTED:
        name = out.pop(HIDDEN_NAME_KEY, "")
        if name:
            out[LEGACY_NAME_KEY] = name
    return out


__all__ = ["RELEASES", "CURRENT_RELEASE", "PREVIOUS_RELEASE", "CURRENT_DATA_VERSION", "RENAME_SUPPORTED",
           "TASKS_SUPPORTED", "release_data_version", "migrate_container", "migrate_vch", "container_layout",
           "version_of", "LEGACY_NAME_KEY", "HIDDEN_NAME_KEY", "APPLIANCE_VERSION_KEY", "CONTAINER_VERSION_KEY"]
