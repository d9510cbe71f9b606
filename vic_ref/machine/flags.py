"""Parsing what vic-machine's flags take, as VIC's `cmd/vic-machine/common` does: the target URL, Go durations,
datastore paths for `--image-store` and `--volume-store`, and urfave/cli-style booleans (`--force=true`).

Pure functions, no vSphere: they raise `UsageError` with VIC's text where VIC has one.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .. import errors

DEFAULT_NAME = "virtual-container-host"
MAX_DISPLAY_NAME_LEN = 31  # VIC's create.MaxDisplayNameLen
MAX_VM_NAME_LEN = 80
SHORT_ID_LEN = 12
ID_TOKEN = "{id}"
NAME_TOKEN = "{name}"

_DS_INPUT_FORMAT = "<datastore url w/ path>:label"
_NFS_INPUT_FORMAT = "nfs://<host>/<url-path>?<mount option as query parameters>:<label>"


class UsageError(errors.InvalidArgument):
    """A flag's value is wrong: vic-machine says so and exits 1 before touching vSphere."""


# -- the target ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TargetURL:
    """`--target` split as VIC splits it: the SDK endpoint, the credentials in it, and the datacenter path."""
    sdk_url: str  # scheme://host[:port]/sdk
    host: str  # host[:port], for messages
    user: str | None = None
    password: str | None = None
    datacenter: str | None = None


def parse_target(text: str) -> TargetURL:
    """`https://host/sdk` (the default form), `host`, `host/datacenter`, `user:password@host/dc`, `http://...` (the
    sim). A path other than `/sdk` names the datacenter, as in VIC (`--target vc.example.com/dc1`)."""
    text = (text or "").strip()
    if not text:
        raise UsageError("--target argument must be specified")
    raw = text if "://" in text else f"https://{text}"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"unsupported scheme {parts.scheme!r} in --target {text}: use https:// (or http:// for a "
                         f"simulator)")
    if not parts.hostname:
        raise UsageError(f"--target {text} names no host")
    host = parts.netloc.rsplit("@", 1)[-1]
    path = parts.path.rstrip("/")
    if path == "/sdk":
        datacenter = None
    elif path.startswith("/sdk/"):
        datacenter = path[len("/sdk/"):]
    else:
        datacenter = path.lstrip("/") or None
    return TargetURL(sdk_url=f"{parts.scheme}://{host}/sdk", host=host,
                     user=unquote(parts.username) if parts.username else None,
                     password=unquote(parts.password) if parts.password is not None else None,
                     datacenter=unquote(datacenter) if datacenter else None)


# -- durations -----------------------------------------------------------------------------------------------------
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds from a Go duration (`3m0s`, `90s`, `1h`, `1.5m`, `500ms`) or a plain number of seconds."""
    value = (text or "").strip()
    if value.startswith("-"):
        raise UsageError(f"invalid duration {text!r}: it must not be negative")
    body = value.removeprefix("+")
    try:
        return float(body)
    except ValueError:
        pass
    seconds, pos = 0.0, 0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if match is None:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not body or pos != len(body):
        raise UsageError(f"invalid duration {text!r}: use a Go duration like 3m0s or a number of seconds")
    return seconds


def format_duration(seconds: float) -> str:
    """Go's time.Duration.String(): `3m0s`, `1h0m0s`, `1.5s`, `500ms`, `0s`."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        ms = seconds * 1000
        return f"{ms:g}ms" if ms >= 1 else f"{seconds * 1e6:g}µs"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text


# -- booleans as urfave/cli takes them -----------------------------------------------------------------------------
def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "t", "true", "yes", "y", "on"):
        return True
    if value in ("0", "f", "false", "no", "n", "off"):
        return False
    raise UsageError(f"invalid boolean value {text!r}")


# -- datastore paths -----------------------------------------------------------------------------------------------
def datastore_path(text: str, flag: str = "--image-store") -> tuple[str, str]:
    """(datastore, path) from `datastore/path`, `datastore`, `ds://datastore/path` or `[datastore] path`."""
    value = (text or "").strip()
    if value.startswith("["):
        match = re.match(r"^\[([^\]]+)\]\s*(.*)$", value)
        if match is None:
            raise UsageError(f"{flag}: invalid datastore path {text!r}")
        return match.group(1), match.group(2).strip().strip("/")
    if value.startswith("ds://"):
        value = value[len("ds://"):]
    elif "://" in value:
        raise UsageError(f"bad scheme {value.split('://', 1)[0]!r} provided for datastore")
    value = unquote(value)
    datastore, _, path = value.partition("/")
    if not datastore:
        raise UsageError(f"{flag}: no datastore in {text!r}; use the format datastore/path")
    return datastore, path.strip("/")


def format_datastore_path(datastore: str, path: str = "") -> str:
    return f"[{datastore}] {path}" if path else f"[{datastore}]"


_LABEL = re.compile(r"^[A-Za-z0-9_.-]+$")


def volume_store(text: str) -> tuple[str, str]:
    """(label, "[ds] path") from `--volume-store datastore/path:label` (or `datastore:label`, `ds://...`), or
    (label, "nfs://host/path?options") for an NFS target."""
    bad = UsageError(f"volume store input must be in format {_DS_INPUT_FORMAT} or {_NFS_INPUT_FORMAT}")
    target, sep, label = (text or "").rpartition(":")
    if not sep or not target or not label or not _LABEL.match(label):
        raise bad
    if target.startswith("nfs://"):
        return label, nfs_target(target)
    if "?" in target:
        raise UsageError(f"volume store input must be in format datastore/path:label or {_NFS_INPUT_FORMAT}")
    datastore, path = datastore_path(target, "--volume-store")
    return label, format_datastore_path(datastore, path)


def nfs_target(url: str) -> str:
    """An NFS volume store's target as VIC's validateNFSTarget checks it: a host and an export path; the mount
    options ride along as query parameters (`uid`, `gid` are what the port layer uses)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise UsageError(f"volume store target ({url}) is missing the host field. format: "
                         "<nfs://<user>:<password>@<host>/<share point path>:label")
    if not parts.path:
        raise UsageError(f"volume store target ({url}) is missing the path field. format: "
                         "<nfs://<host>/<share point path>?<mount options as query vars>:label")
    return url


# -- other values --------------------------------------------------------------------------------------------------
def check_name(name: str) -> str:
    if not name or not name.strip():
        raise UsageError("--name must not be empty")
    if len(name) > MAX_DISPLAY_NAME_LEN:
        raise UsageError(f"Display name {name} exceeds the permitted {MAX_DISPLAY_NAME_LEN} characters limit. Please "
                         f"use a shorter -name parameter")
    if "/" in name or "\\" in name or "%" in name:
        raise UsageError(f"--name {name!r}: the characters / \\ % are not allowed in a VCH name")
    return name


def check_name_convention(convention: str) -> str:
    if ID_TOKEN not in convention and NAME_TOKEN not in convention:
        raise UsageError(f"Container name convention must include {ID_TOKEN} or {NAME_TOKEN} token")
    if len(convention) - len(ID_TOKEN) >= MAX_VM_NAME_LEN - SHORT_ID_LEN:
        raise UsageError(f"Container name convetion exceeds maximum length "
                         f"({MAX_VM_NAME_LEN - SHORT_ID_LEN}, discounting tokens)")
    return convention


def check_network(value: str, flag: str = "--bridge-network-range") -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise UsageError(f"{flag} {value!r} is not a network in CIDR notation (e.g. 172.16.0.0/12)") from None


def check_port(value: str | int) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"--docker-port {value!r} is not a port number") from None
    if not 0 < port < 65536:
        raise UsageError(f"--docker-port {port} is out of range (1-65535)")
    return port


__all__ = ["UsageError", "TargetURL", "parse_target", "parse_duration", "format_duration", "parse_bool",
           "datastore_path", "format_datastore_path", "volume_store", "nfs_target", "check_name",
           "check_name_convention", "check_network", "check_port", "DEFAULT_NAME"]
