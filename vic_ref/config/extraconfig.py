"""VIC's guestinfo key encoding (`pkg/vsphere/extraconfig`), both directions, for dataclasses declared with `@struct`.

A config is a tree of dataclasses whose fields carry a tag: `vic(key, scope)` like VIC's `vic:"0.1" scope:"…" key:"…"`,
or `inherit(GoName)` for a Go field without tags, which inherits the scope of its parent's key. From the scope and the
parent key each field gets its extraConfig key, exactly as VIC computes it (`keys.py`; `@non-persistent` is inherited
by every key below, and invalid with hidden). Values:

- a map: `<key>` = its keys sorted and joined by `|`, entries under `<key>|<mapkey>`; a slice of structs (or of IPs):
  entries under `<key>|<i>` and `<key>` = len-1; a slice of primitives: `<key>~` = the values joined by `|` and
  `<key>` = len-1; `bytes` as base64; empty slices, maps and byte strings, and None, are not written at all;
- strings are always written; an empty value is stored as `<nil>` (an empty extraConfig value deletes the key).

`encode()` returns the dict as it is stored in the VM's extraConfig (values already `<nil>`-escaped) and `decode()`
reads one back. Deviations from VIC, each where VIC would silently corrupt the data: a `|` or `\\` inside a value of a
primitive slice (an argv word such as `a|b`) is escaped as `\\|`/`\\\\`, values without them are byte-identical to
VIC's; map keys that would break the key syntax (empty, or containing `|` `@`, or `/` where the guest can see them) are
refused with InvalidArgument. A string whose value is literally `<nil>` reads back as "" (as in VIC).
"""
from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import functools
import ipaddress
import logging
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from ..errors import InvalidArgument
from .keys import (  # noqa: F401 - the key scheme is part of this module's API
    DEFAULT_PREFIX,
    GUESTINFO_PREFIX,
    HIDDEN,
    NIL_VALUE,
    NON_PERSISTENT,
    READ_ONLY,
    READ_WRITE,
    SECRET,
    SEPARATOR,
    SUFFIX_SEPARATOR,
    VICE_PREFIX,
    VOLATILE,
    Scope,
    append_to_prefix,
    calculate_key,
    escape_nil,
    guest_can_read,
    guest_can_write,
    is_non_persistent,
    is_secret,
    scope_from_names,
    scope_names_of_key,
    scope_of_key,
    unescape_nil,
    visible_to_guest,
    writable_by_guest,
)

log = logging.getLogger(__name__)


# -- field tags and @struct ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Tag:
    """How one field is keyed: `scopes` None means untagged (inherits the parent key's scope)."""
    key: str
    scopes: tuple[str, ...] | None = None
    skip: bool = False

    def key_under(self, prefix: str) -> str | None:
        """This field's key below `prefix` (None: never encoded)."""
        return _key_under(self, prefix)


# A pure function of its arguments, and encode/decode ask for the same keys over and over.
@functools.lru_cache(maxsize=16384)
def _key_under(tag: Tag, prefix: str) -> str | None:
    if tag.skip:
        return None
    prefix_scope = scope_of_key(prefix)
    scope = scope_from_names(tag.scopes if tag.scopes is not None else scope_names_of_key(prefix))
    if prefix_scope & Scope.NON_PERSISTENT:
        scope |= Scope.NON_PERSISTENT  # inherited even when the field names other scopes
    return calculate_key(scope, prefix, tag.key)


_NO_DEFAULT = dataclasses.MISSING


@dataclasses.dataclass(frozen=True)
class _Pending:
    """A field declaration waiting for @struct to turn it into a dataclass field with a default for its type."""
    tag: Tag
    default: Any = _NO_DEFAULT
    default_factory: Any = _NO_DEFAULT


def vic(key: str, scope: str = "", *, default: Any = _NO_DEFAULT, default_factory: Any = _NO_DEFAULT) -> Any:
    """A tagged field: `scope` is VIC's comma-separated scope list (`"read-only,non-persistent"`)."""
    scopes = tuple(s.strip() for s in scope.split(",")) if scope else ("",)
    return _Pending(Tag(key, scopes), default, default_factory)


def inherit(key: str, *, default: Any = _NO_DEFAULT, default_factory: Any = _NO_DEFAULT) -> Any:
    """An untagged Go field named `key`: its scope is inherited from the parent's key."""
    return _Pending(Tag(key, None), default, default_factory)


def skip(*, default: Any = _NO_DEFAULT, default_factory: Any = _NO_DEFAULT) -> Any:
    """A field that is never encoded or decoded."""
    return _Pending(Tag("", None, skip=True), default, default_factory)


def struct(cls=None, **dataclass_kwargs):
    """Make `cls` a dataclass whose fields are all declared with vic()/inherit()/skip(), defaulting to zero values."""

    def wrap(cls):
        hints = typing.get_type_hints(cls)
        for name in cls.__dict__.get("__annotations__", {}):
            pending = cls.__dict__.get(name, _NO_DEFAULT)
            if not isinstance(pending, _Pending):
                raise TypeError(f"{cls.__name__}.{name}: declare it with vic(), inherit() or skip()")
            kwargs: dict[str, Any] = {"metadata": {"vic": pending.tag}}
            if pending.default is not _NO_DEFAULT:
                kwargs["default"] = pending.default
            elif pending.default_factory is not _NO_DEFAULT:
                kwargs["default_factory"] = pending.default_factory
            else:
                kwargs.update(_zero_default(hints[name]))
            setattr(cls, name, dataclasses.field(**kwargs))
        return dataclasses.dataclass(cls, **dataclass_kwargs)

    return wrap if cls is None else wrap(cls)


def _zero_default(hint) -> dict:
    info = type_info(hint)
    if info.kind in (Kind.PTR, Kind.IP, Kind.IPNET, Kind.TIME):
        return {"default": None}
    if info.kind is Kind.STR:
        return {"default": ""}
    if info.kind is Kind.BOOL:
        return {"default": False}
    if info.kind is Kind.INT:
        return {"default": 0}
    if info.kind is Kind.BYTES:
        return {"default": b""}
    if info.kind is Kind.LIST:
        return {"default_factory": list}
    if info.kind is Kind.MAP:
        return {"default_factory": dict}
    return {"default_factory": info.cls}


# -- type analysis -------------------------------------------------------------------------------------------------
class Kind(enum.Enum):
    STR = "str"
    INT = "int"
    BOOL = "bool"
    BYTES = "bytes"
    TIME = "time"  # Go time.Time; None is the zero time
    IP = "ip"  # Go net.IP ([]byte, base64); None is a nil IP
    IPNET = "ipnet"  # Go net.IPNet {IP, Mask}; None is the zero IPNet
    STRUCT = "struct"
    PTR = "ptr"  # a Go pointer: Optional[X]
    LIST = "list"
    MAP = "map"


@dataclasses.dataclass(frozen=True)
class TypeInfo:
    kind: Kind
    cls: Any = None
    elem: TypeInfo | None = None


_IP_TYPES = {ipaddress.IPv4Address, ipaddress.IPv6Address}
_IPNET_TYPES = {ipaddress.IPv4Interface, ipaddress.IPv6Interface}
_NONE = type(None)


@functools.cache
def type_info(hint) -> TypeInfo:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = set(typing.get_args(hint))
        optional = _NONE in args
        args.discard(_NONE)
        if args <= _IP_TYPES:
            return TypeInfo(Kind.IP)
        if args <= _IPNET_TYPES:
            return TypeInfo(Kind.IPNET)
        if args == {datetime.datetime}:
            return TypeInfo(Kind.TIME)
        if optional and len(args) == 1:
            return TypeInfo(Kind.PTR, elem=type_info(args.pop()))
        raise TypeError(f"unsupported union type {hint}")
    if origin is list:
        (elem,) = typing.get_args(hint)
        info = type_info(elem)
        if info.kind in (Kind.PTR, Kind.LIST, Kind.MAP, Kind.BYTES, Kind.TIME):
            raise TypeError(f"unsupported slice element type {elem} (VIC can't encode it either)")
        return TypeInfo(Kind.LIST, elem=info)
    if origin is dict:
        key_type, value = typing.get_args(hint)
        if key_type is not str:
            raise TypeError(f"map keys must be str, not {key_type}")
        return TypeInfo(Kind.MAP, elem=type_info(value))
    if hint is str:
        return TypeInfo(Kind.STR)
    if hint is bool:
        return TypeInfo(Kind.BOOL)
    if isinstance(hint, type) and issubclass(hint, int):
        return TypeInfo(Kind.INT, cls=hint)
    if hint is bytes:
        return TypeInfo(Kind.BYTES)
    if hint is datetime.datetime:
        return TypeInfo(Kind.TIME)
    if hint in _IP_TYPES:
        return TypeInfo(Kind.IP)
    if hint in _IPNET_TYPES:
        return TypeInfo(Kind.IPNET)
    if dataclasses.is_dataclass(hint):
        return TypeInfo(Kind.STRUCT, cls=hint)
    raise TypeError(f"unsupported field type {hint}")


@functools.cache
def struct_fields(cls) -> tuple[tuple[str, Tag, TypeInfo], ...]:
    """(python name, tag, type) of every field of a @struct class, in declaration order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        tag = f.metadata.get("vic")
        if tag is None:
            raise TypeError(f"{cls.__name__}.{f.name} has no vic tag; declare the class with @struct")
        out.append((f.name, tag, type_info(hints[f.name])))
    return tuple(out)


# the untagged fields of Go's net.IPNet
_IPNET_IP = Tag("IP")
_IPNET_MASK = Tag("Mask")


# -- values --------------------------------------------------------------------------------------------------------
GO_ZERO_TIME = "0001-01-01 00:00:00 +0000 UTC"
_GO_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? "
                      r"([+-])(\d{2})(\d{2})(?: (\S+))?")


def format_go_time(value: datetime.datetime | None) -> str:
    """Go's time.Time.String() ("2006-01-02 15:04:05.999999999 -0700 MST"), always in UTC; None is the zero time."""
    if value is None:
        return GO_ZERO_TIME
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    value = value.astimezone(datetime.UTC)
    frac = f".{value.microsecond:06d}".rstrip("0") if value.microsecond else ""
    return f"{value:%Y-%m-%d %H:%M:%S}{frac} +0000 UTC"


def parse_go_time(text: str) -> datetime.datetime | None:
    match = _GO_TIME.match(text)
    if match is None:
        raise ValueError(f"not a Go time: {text!r}")
    year, month, day, hour, minute, second, frac, sign, off_h, off_m, _zone = match.groups()
    if (year, month, day) == ("0001", "01", "01") and (hour, minute, second) == ("00", "00", "00") and not frac:
        return None
    offset = datetime.timedelta(hours=int(off_h), minutes=int(off_m)) * (-1 if sign == "-" else 1)
    micro = int((frac or "0").ljust(6, "0")[:6])
    value = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro,
                              tzinfo=datetime.timezone(offset))
    return value.astimezone(datetime.UTC)


def _ip_bytes(ip, *, short_v4: bool) -> bytes:
    """Go's byte form: net.ParseIP gives 16 bytes for IPv4 (v4-in-v6); ParseCIDR's IPNet gives 4."""
    if ip.version == 4 and not short_v4:
        return b"\x00" * 10 + b"\xff\xff" + ip.packed
    return ip.packed


def _ip_from_bytes(raw: bytes):
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw)
    if len(raw) == 16:
        if raw[:12] == b"\x00" * 10 + b"\xff\xff":
            return ipaddress.IPv4Address(raw[12:])
        return ipaddress.IPv6Address(raw)
    raise ValueError(f"an IP has 4 or 16 bytes, not {len(raw)}")


def _prefix_len(mask: bytes, bits: int) -> int:
    if len(mask) == 16 and bits == 32:
        mask = mask[12:]
    value = int.from_bytes(mask, "big")
    width = len(mask) * 8
    ones = width - (value ^ ((1 << width) - 1)).bit_length()
    if value != ((1 << width) - 1) ^ ((1 << (width - ones)) - 1):
        raise ValueError("non-canonical net mask")
    return ones


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _primitive_str(info: TypeInfo, value) -> str:
    if info.kind is Kind.STR:
        return value
    if info.kind is Kind.BOOL:
        return "true" if value else "false"
    if info.kind is Kind.INT:
        return str(int(value))
    raise TypeError(f"not a primitive: {info.kind}")


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _primitive_from(info: TypeInfo, text: str, key: str):
    """Go fromString: "" is the zero value; a value that doesn't parse is logged and read as the zero value."""
    if info.kind is Kind.STR:
        return text
    if text == "":
        return False if info.kind is Kind.BOOL else _int_value(info, 0)
    if info.kind is Kind.BOOL:
        if text in _TRUE:
            return True
        if text not in _FALSE:
            log.warning("extraconfig: %s: %r is not a bool", key, text)
        return False
    try:
        return _int_value(info, int(text, 10))
    except ValueError:
        log.warning("extraconfig: %s: %r is not an integer", key, text)
        return _int_value(info, 0)


def _int_value(info: TypeInfo, number: int):
    if info.cls in (None, int) or info.cls is bool:
        return number
    try:
        return info.cls(number)
    except ValueError:  # an IntEnum without that member: keep the number
        return number


def _join_values(values: list[str]) -> str:
    return SEPARATOR.join(v.replace("\\", "\\\\").replace(SEPARATOR, "\\" + SEPARATOR) for v in values)


def _split_values(text: str) -> list[str]:
    if "\\" not in text:
        return text.split(SEPARATOR)
    out, current, chars = [], [], iter(text)
    for ch in chars:
        if ch == "\\":
            current.append(next(chars, "\\"))
        elif ch == SEPARATOR:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return out


def _check_map_key(map_key: str, prefix: str) -> None:
    if not map_key:
        raise InvalidArgument(f"empty map key under {prefix}")
    bad = [c for c in (SEPARATOR, SUFFIX_SEPARATOR) if c in map_key]
    if "/" in map_key and prefix.startswith(GUESTINFO_PREFIX):
        bad.append("/")  # would turn a read-write key into a read-only one
    if bad:
        raise InvalidArgument(f"map key {map_key!r} under {prefix} contains {' '.join(bad)}")


# -- encode --------------------------------------------------------------------------------------------------------
def encode(obj, prefix: str = "") -> dict[str, str]:
    """The extraConfig entries of a @struct object (or a subtree, with the prefix VIC's CalculateKeys gives it)."""
    out: dict[str, str] = {}
    _encode(out, obj, type_info(type(obj)), prefix)
    return {key: escape_nil(value) for key, value in out.items()}


def _encode(out: dict, value, info: TypeInfo, key: str) -> None:
    kind = info.kind
    if kind in (Kind.STR, Kind.INT, Kind.BOOL):
        out[key] = _primitive_str(info, value)
    elif kind is Kind.BYTES:
        if value:
            out[key] = _b64(bytes(value))
    elif kind is Kind.TIME:
        out[key] = format_go_time(value)
    elif kind is Kind.IP:
        if value is not None:
            out[key] = _b64(_ip_bytes(value, short_v4=False))
    elif kind is Kind.IPNET:
        if value is not None:
            out[_IPNET_IP.key_under(key)] = _b64(_ip_bytes(value.ip, short_v4=True))
            out[_IPNET_MASK.key_under(key)] = _b64(value.netmask.packed)
    elif kind is Kind.PTR:
        if value is not None:
            _encode(out, value, info.elem, key)
    elif kind is Kind.STRUCT:
        for name, tag, field_info in struct_fields(type(value)):
            field_key = tag.key_under(key)
            if field_key is not None:
                _encode(out, getattr(value, name), field_info, field_key)
    elif kind is Kind.LIST:
        if not value:
            return
        elem = info.elem
        if elem.kind in (Kind.STRUCT, Kind.IP, Kind.IPNET):
            for i, item in enumerate(value):
                _encode(out, item, elem, append_to_prefix(key, SEPARATOR, str(i)))
        else:
            out[append_to_prefix(key, "", "~")] = _join_values([_primitive_str(elem, v) for v in value])
        out[key] = str(len(value) - 1)
    elif kind is Kind.MAP:
        if not value:
            return
        for map_key in value:
            _check_map_key(map_key, key)
            _encode(out, value[map_key], info.elem, append_to_prefix(key, SEPARATOR, map_key))
        out[key] = SEPARATOR.join(sorted(value))
    else:  # pragma: no cover - type_info admits nothing else
        raise TypeError(kind)


# -- decode --------------------------------------------------------------------------------------------------------
_MISSING = object()


def decode(cls, data: Mapping[str, str], prefix: str = ""):
    """Build a `cls` from extraConfig entries (`<nil>` reads as ""); fields without keys keep their defaults."""
    value = _decode(data, type_info(cls), prefix)
    return cls() if value is _MISSING else value


def _get(data: Mapping[str, str], key: str):
    value = data.get(key, _MISSING)
    return value if value is _MISSING else unescape_nil(value)


def _decode(data: Mapping[str, str], info: TypeInfo, key: str):
    """The value at `key`, or _MISSING when nothing for it is stored (Go's ErrKeyNotFound)."""
    kind = info.kind
    if kind in (Kind.STR, Kind.INT, Kind.BOOL):
        text = _get(data, key)
        return text if text is _MISSING else _primitive_from(info, text, key)
    if kind is Kind.BYTES:
        text = _get(data, key)
        if text is _MISSING:
            return _MISSING
        try:
            return _unb64(text)
        except ValueError:
            log.warning("extraconfig: %s is not base64", key)
            return _MISSING
    if kind is Kind.TIME:
        text = _get(data, key)
        if text is _MISSING:
            return _MISSING
        try:
            return parse_go_time(text)
        except ValueError:
            log.warning("extraconfig: %s: %r is not a time", key, text)
            return None
    if kind is Kind.IP:
        text = _get(data, key)
        if text is _MISSING:
            return _MISSING
        try:
            return _ip_from_bytes(_unb64(text))
        except ValueError:
            log.warning("extraconfig: %s: %r is not an IP", key, text)
            return _MISSING
    if kind is Kind.IPNET:
        return _decode_ipnet(data, key)
    if kind is Kind.PTR:
        return _decode(data, info.elem, key)
    if kind is Kind.STRUCT:
        kwargs, found = {}, False
        for name, tag, field_info in struct_fields(info.cls):
            field_key = tag.key_under(key)
            if field_key is None:
                continue
            value = _decode(data, field_info, field_key)
            if value is not _MISSING:
                kwargs[name] = value
                found = True
        return info.cls(**kwargs) if found else _MISSING
    if kind is Kind.LIST:
        return _decode_list(data, info, key)
    if kind is Kind.MAP:
        listing = _get(data, key)
        if listing is _MISSING or listing == "":
            return _MISSING
        out = {}
        for map_key in listing.split(SEPARATOR):
            value = _decode(data, info.elem, append_to_prefix(key, SEPARATOR, map_key))
            if value is not _MISSING:
                out[map_key] = value
        return out
    raise TypeError(kind)  # pragma: no cover


def _decode_ipnet(data: Mapping[str, str], key: str):
    ip_text = _get(data, _IPNET_IP.key_under(key))
    mask_text = _get(data, _IPNET_MASK.key_under(key))
    if ip_text is _MISSING:
        return _MISSING
    try:
        ip = _ip_from_bytes(_unb64(ip_text))
        bits = ip.max_prefixlen
        prefix_len = bits if mask_text is _MISSING else _prefix_len(_unb64(mask_text), bits)
        return ipaddress.ip_interface((ip, prefix_len))
    except ValueError as err:
        log.warning("extraconfig: %s is not an IP network: %s", key, err)
        return _MISSING


def _decode_list(data: Mapping[str, str], info: TypeInfo, key: str):
    length_text = _get(data, key)
    if length_text is _MISSING or length_text == "":
        return _MISSING
    try:
        length = int(length_text) + 1
    except ValueError:
        log.warning("extraconfig: %s: %r is not a slice length", key, length_text)
        return _MISSING
    elem = info.elem
    if elem.kind in (Kind.STRUCT, Kind.IP, Kind.IPNET):
        out = []
        for i in range(length):
            value = _decode(data, elem, append_to_prefix(key, SEPARATOR, str(i)))
            if value is not _MISSING:
                out.append(value)
            elif elem.kind is Kind.STRUCT:
                out.append(elem.cls())  # Go keeps a zero struct at that index
        return out
    values_text = _get(data, append_to_prefix(key, "", "~"))
    if values_text is _MISSING:
        return _MISSING
    values = _split_values(values_text)
    if len(values) < length:
        log.warning("extraconfig: %s has %d values, its length says %d", key, len(values), length)
    return [_primitive_from(elem, v, key) for v in values[:length]]


# -- keys of parts of a config (VIC CalculateKeys) -----------------------------------------------------------------
def key_for(cls, *path: str | int, prefix: str = "") -> str:
    """The key of one node of a config: python field names, map keys and slice indexes from the root.

    `key_for(ExecutorConfig, "sessions", sid, "exit_status")` → `guestinfo.vice..sessions|<sid>.status`.
    For a primitive slice this is its length key; its values are at `<key>~`.
    """
    info, key = type_info(cls), prefix
    for part in path:
        if info.kind is Kind.PTR:
            info = info.elem
        if info.kind is Kind.STRUCT:
            for name, tag, field_info in struct_fields(info.cls):
                if name == part:
                    key = tag.key_under(key)
                    if key is None:
                        raise KeyError(f"{info.cls.__name__}.{part} is never encoded")
                    info = field_info
                    break
            else:
                raise KeyError(f"{info.cls.__name__} has no field {part!r}")
        elif info.kind is Kind.MAP:
            key, info = append_to_prefix(key, SEPARATOR, str(part)), info.elem
        elif info.kind is Kind.LIST and info.elem.kind in (Kind.STRUCT, Kind.IP, Kind.IPNET):
            key, info = append_to_prefix(key, SEPARATOR, str(int(part))), info.elem
        elif info.kind is Kind.IPNET and part in ("IP", "Mask"):
            key, info = (_IPNET_IP if part == "IP" else _IPNET_MASK).key_under(key), TypeInfo(Kind.BYTES)
        else:
            raise KeyError(f"can't descend into {info.kind.value} with {part!r}")
    return key


def top_level_keys(cls) -> frozenset[str]:
    """The bare key names of a config's top-level fields (`common`, `sessions`, …): the roots of its hidden keys."""
    return frozenset(tag.key for _, tag, _ in struct_fields(cls) if not tag.skip)


def owned_by(cls) -> Callable[[str], bool]:
    """A predicate for the extraConfig keys a config of type `cls` may have written (to scope deletions in diff)."""
    roots = top_level_keys(cls)
    split = re.compile(r"[/|.@~]")
    # a config whose fields are all hidden never writes guest-visible keys: it must not claim the VCH's or a tether's
    visible = any((tag.key_under("") or "").startswith(VICE_PREFIX) for _, tag, _ in struct_fields(cls))

    def owned(key: str) -> bool:
        return (visible and key.startswith(VICE_PREFIX)) or split.split(key, maxsplit=1)[0] in roots

    return owned


# -- updates -------------------------------------------------------------------------------------------------------
class Change(NamedTuple):
    """One extraConfig update, shaped like vim.option.OptionValue; value "" deletes the key (ReconfigVM)."""
    key: str
    value: str


def diff(old: Mapping[str, str], new: Mapping[str, str],
         owned: Callable[[str], bool] | None = None) -> list[Change]:
    """The changes that turn `old` into `new`: changed and added keys, and removed ones with value "".

    `owned` limits deletions to keys we wrote (a VM's extraConfig holds vSphere's own keys too); new values are
    `<nil>`-escaped so that an empty value is never taken for a deletion.
    """
    changes = [Change(k, escape_nil(v)) for k, v in sorted(new.items()) if old.get(k) != escape_nil(v)]
    changes += [Change(k, "") for k in sorted(old) if k not in new and (owned is None or owned(k))]
    return changes


def apply(data: Mapping[str, str], changes: Iterable[Change | tuple[str, str]]) -> dict[str, str]:
    """What a VM's extraConfig becomes after ReconfigVM with `changes` (a test and sim helper)."""
    out = dict(data)
    for key, value in changes:
        if value == "":
            out.pop(key, None)
        else:
            out[key] = value
    return out
