"""The executor config of a container VM (VIC's `lib/config/executor`), as it lives in the VM's guestinfo.

Field keys and scopes are VIC's, so the keys match vic-behaviour.md §4.2: `guestinfo.vice./common/id`,
`guestinfo.vice..sessions|<id>.status`, `guestinfo.vice./sessions|<id>/cmd/Args~`,
`guestinfo.vice..execs|<eid>.status@non-persistent`, `guestinfo.vice./mounts|<vol>/source/Scheme`,
`guestinfo.vice./version/PluginVersion`. As DESIGN-DECISIONS §1 has it, the container name is the hidden key
`common/name` (the guest can't read it, and it can be rewritten while the VM runs).

Go's embedded structs without tags (`Common` in a network endpoint, `TrustLevel`) and untagged fields (`Cmd.Path` is
tagged, `Build.PluginVersion` is not) keep their Go names as keys, as VIC's reflection gives them.
"""
from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Mapping

from . import extraconfig
from .extraconfig import inherit, struct, vic

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Go's net.IPNet: an address *with* its mask, host bits kept (172.16.0.2/16)
IPNet = ipaddress.IPv4Interface | ipaddress.IPv6Interface

# The data version a container VM created by this code records (VIC: feature.MaxPluginVersion - 1).
PLUGIN_VERSION = 10
VERSION_KEY = "guestinfo.vice./version/PluginVersion"

# executor.CopyMode
COPY_NEVER = 1
COPY_NEW = 2

# executor.TrustLevel
TRUST_UNSPECIFIED, TRUST_PUBLISHED, TRUST_OPEN, TRUST_CLOSED, TRUST_OUTBOUND, TRUST_PEERS = range(6)


@struct
class Common:
    """Common data of a session or network (executor.Common)."""
    execution_environment: str = inherit("ExecutionEnvironment")
    id: str = vic("id", "read-only")
    name: str = vic("name", "read-only")
    notes: str = vic("notes", "hidden")


@struct
class ExecutorConfigCommon:
    """The container's own common data: its name is hidden from the guest."""
    execution_environment: str = inherit("ExecutionEnvironment")
    id: str = vic("id", "read-only")
    name: str = vic("name", "hidden")
    notes: str = vic("notes", "hidden")


@struct
class SysLogConfig:
    network: str = inherit("Network")
    raddr: str = inherit("RAddr")


@struct
class ExitLog:
    time: datetime.datetime | None = inherit("Time")
    exit_status: int = inherit("ExitStatus")
    message: str = inherit("Message")


@struct
class Diagnostics:
    debug_level: int = vic("debug", "read-only")
    resurrection_count: int = vic("resurrections", "read-write")
    exit_logs: list[ExitLog] = vic("exitlogs", "read-write")
    syslog: SysLogConfig | None = vic("syslog", "read-only")


@struct
class URL:
    """Go 1.8's net/url.URL, encoded field by field (its User is never encoded by VIC: no exported fields)."""
    scheme: str = inherit("Scheme")
    opaque: str = inherit("Opaque")
    host: str = inherit("Host")
    path: str = inherit("Path")
    raw_path: str = inherit("RawPath")
    force_query: bool = inherit("ForceQuery")
    raw_query: str = inherit("RawQuery")
    fragment: str = inherit("Fragment")

    @classmethod
    def parse(cls, text: str) -> URL:
        """`label:vol1`, `nfs://host/export?uid=0`: scheme, host, path, query and fragment."""
        from urllib.parse import urlsplit
        parts = urlsplit(text)
        if parts.scheme and not parts.netloc and not parts.path.startswith("/") and "//" not in text:
            # `label:name` has no authority and no rooted path: Go keeps the rest in Path for label URLs VIC builds
            return cls(scheme=parts.scheme, path=parts.path, raw_query=parts.query, fragment=parts.fragment)
        return cls(scheme=parts.scheme, host=parts.netloc, path=parts.path, raw_query=parts.query,
                   fragment=parts.fragment, force_query=text.endswith("?") and not parts.query)

    def __str__(self) -> str:
        out = f"{self.scheme}:" if self.scheme else ""
        if self.opaque:
            out += self.opaque
        else:
            if self.host or self.scheme in ("nfs", "http", "https", "ds"):
                out += f"//{self.host}"
            out += self.path
        if self.force_query or self.raw_query:
            out += f"?{self.raw_query}"
        if self.fragment:
            out += f"#{self.fragment}"
        return out


@struct
class MountSpec:
    """A volume to mount in the guest: `label:<disk label>` or an nfs:// URL → path."""
    source: URL = vic("source", "read-only")
    path: str = vic("dest", "read-only")
    mode: str = vic("mode", "read-only")
    copy_mode: int = vic("copymode", "read-only")

    @property
    def label(self) -> str | None:
        """The disk label of a `label:` mount (VIC puts it in the URL's Path)."""
        return self.source.path if self.source.scheme == "label" else None


@struct
class Cmd:
    path: str = vic("Path", "read-only")
    args: list[str] = vic("Args", "read-only")
    env: list[str] = vic("Env", "read-only")
    dir: str = vic("Dir", "read-only")


@struct
class Detail:
    """Timestamps of a session, UnixNano (VIC's executor.Detail)."""
    create_time: int = vic("createtime", "read-write")
    start_time: int = vic("starttime", "read-write")
    stop_time: int = vic("stoptime", "read-write")


@struct
class SessionConfig:
    """A process tree in the container: the primary session (ID = container ID) or an exec."""
    common: Common = vic("common", "read-only")
    cmd: Cmd = vic("cmd", "read-only")
    attach: bool = vic("attach", "read-only")
    open_stdin: bool = vic("openstdin", "read-only")
    run_block: bool = vic("runblock", "read-write")
    active: bool = vic("active", "read-only")
    tty: bool = vic("tty", "read-only")
    exit_status: int = vic("status", "read-write")
    # "" not yet, "true" launched, else the launch error text
    started: str = vic("started", "read-write")
    restart: bool = vic("restart", "read-only")
    stop_signal: str = vic("stopSignal", "read-only")
    diagnostics: Diagnostics = vic("diagnostics", "read-only")
    user: str = vic("User", "read-only")
    group: str = vic("Group", "read-only")
    # last, as in VIC: everything else is written by the time the timestamps are
    detail: Detail = vic("detail", "read-write")

    @property
    def id(self) -> str:
        return self.common.id


@struct
class IPRange:
    """pkg/ip.Range."""
    first: IPAddress | None = vic("first", "read-only")
    last: IPAddress | None = vic("last", "read-only")


@struct
class AssignedNetwork:
    """What the guest learned (DHCP): written back by the tether."""
    gateway: IPNet | None = vic("gateway", "read-write")
    nameservers: list[IPAddress] = vic("dns", "read-write")


@struct
class ContainerNetwork:
    """The network an endpoint is on: Common.Name = network name, Common.ID = its underlay."""
    common: Common = inherit("Common")
    type: str = vic("type", "read-write")
    destinations: list[IPNet] = vic("destinations", "read-only")
    gateway: IPNet | None = vic("gateway", "read-only")
    default: bool = vic("default", "read-only")
    nameservers: list[IPAddress] = vic("dns", "read-only")
    pools: list[IPRange] = vic("pools", "read-only")
    aliases: list[str] = vic("aliases", "hidden")
    trust_level: int = inherit("TrustLevel")
    assigned: AssignedNetwork = vic("assigned", "read-write")


@struct
class NetworkEndpoint:
    """One vNIC: Common.ID = its PCI slot, Common.Name = the alias requested."""
    common: Common = inherit("Common")
    static: bool = vic("static", "read-only")
    ip: IPNet | None = vic("ip", "read-only")
    assigned: IPNet | None = vic("assigned", "read-write")
    network: ContainerNetwork = vic("network", "read-only")
    ports: list[str] = vic("ports", "read-only")
    internal: bool = vic("internal", "read-only")


@struct
class Build:
    """pkg/version.Build; PluginVersion is the data version (§3 of vic-behaviour.md)."""
    version: str = inherit("Version")
    git_commit: str = inherit("GitCommit")
    build_date: str = inherit("BuildDate")
    build_number: str = inherit("BuildNumber")
    state: str = inherit("State")
    plugin_version: int = inherit("PluginVersion")


@struct
class ExecutorConfig:
    """Everything a container VM's tether needs, and what it reports back (read-write keys)."""
    common: ExecutorConfigCommon = vic("common", "read-only")
    # UnixNano (data version ≥ 9; seconds before)
    create_time: int = vic("createtime", "read-write")
    diagnostics: Diagnostics = vic("diagnostics", "read-only")
    sessions: dict[str, SessionConfig] = vic("sessions", "read-only")
    execs: dict[str, SessionConfig] = vic("execs", "read-only,non-persistent")
    mounts: dict[str, MountSpec] = vic("mounts", "read-only")
    networks: dict[str, NetworkEndpoint] = vic("networks", "read-only")
    # the attach server's SSH host key (PEM)
    key: bytes = vic("key", "read-only")
    layer_id: str = vic("layerid", "read-only")
    image_id: str = vic("imageid", "read-only")
    annotations: dict[str, str] = vic("annotations", "hidden")
    repo_name: str = vic("repo", "read-only")
    version: Build | None = vic("version", "read-only")
    asymmetric_routing: bool = vic("asymrouting", "read-only")
    hostname: str = vic("hostname", "read-only")
    domainname: str = vic("domainname", "read-only")

    @property
    def id(self) -> str:
        return self.common.id

    @property
    def name(self) -> str:
        return self.common.name


# -- the executor config's own entry points -------------------------------------------------------------------------
def encode(cfg: ExecutorConfig) -> dict[str, str]:
    """The guestinfo/extraConfig entries of a container's config (values `<nil>`-escaped, ready for ReconfigVM)."""
    return extraconfig.encode(cfg)


def decode(data: Mapping[str, str]) -> ExecutorConfig:
    """A container's config from its extraConfig (other keys in `data` are ignored)."""
    return extraconfig.decode(ExecutorConfig, data)


def decode_visible_to_guest(data: Mapping[str, str]) -> ExecutorConfig:
    """The config as the tether sees it: hidden fields (the name, notes, annotations, aliases) stay empty."""
    return extraconfig.decode(ExecutorConfig, extraconfig.visible_to_guest(data))


def encode_for_guest(cfg: ExecutorConfig) -> dict[str, str]:
    """The entries the tether may write back (read-write keys only, as VIC's GuestInfoSink filters them)."""
    return extraconfig.writable_by_guest(extraconfig.encode(cfg))


def key_for(*path: str | int) -> str:
    """The key of one part of an ExecutorConfig, e.g. `key_for("sessions", sid, "started")`."""
    return extraconfig.key_for(ExecutorConfig, *path)


owns_key = extraconfig.owned_by(ExecutorConfig)


def diff(old: Mapping[str, str], new: Mapping[str, str]) -> list[extraconfig.Change]:
    """Changes from a VM's current extraConfig to `new`, deleting only keys an ExecutorConfig can own."""
    return extraconfig.diff(old, new, owned=owns_key)


def data_version(data: Mapping[str, str]) -> int:
    """The data version a container VM was written with; a missing key means 0 (pre-versioning data)."""
    text = extraconfig.unescape_nil(data.get(VERSION_KEY, ""))
    try:
        return int(text) if text else 0
    except ValueError:
        return 0
