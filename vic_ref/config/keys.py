"""VIC's extraConfig key scheme (`pkg/vsphere/extraconfig/keys.go`): scopes, key calculation, guest visibility.

- read-only `guestinfo.vice./a/b/c`; read-write `guestinfo.vice..a.b.c` (every separator a `.`); hidden: the path
  without the `guestinfo.vice./` prefix (`common/name`); no scope at all means hidden|read-only;
- suffixes `@non-persistent` and `@secret`, always kept at the very end of a key.

A guest sees only `guestinfo.` keys and may write only those without a `/` (the read-write ones); the tether and the
sim's guest channel follow `guest_can_read`/`guest_can_write`.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

GUESTINFO_PREFIX = "guestinfo."
DEFAULT_PREFIX = "vice."
VICE_PREFIX = GUESTINFO_PREFIX + DEFAULT_PREFIX  # "guestinfo.vice."
SEPARATOR = "|"
SUFFIX_SEPARATOR = "@"
NIL_VALUE = "<nil>"

HIDDEN = "hidden"
READ_ONLY = "read-only"
READ_WRITE = "read-write"
VOLATILE = "volatile"
SECRET = "secret"
NON_PERSISTENT = "non-persistent"


class Scope(enum.IntFlag):
    INVALID = 1
    HIDDEN = 2
    READ_ONLY = 4
    WRITE_ONLY = 8
    READ_WRITE = 16
    NON_PERSISTENT = 32
    VOLATILE = 64
    SECRET = 128


# -- scopes and keys (VIC keys.go) ---------------------------------------------------------------------------------
def scope_from_names(names: Iterable[str]) -> Scope:
    """The scope bits of a tag's scope list; no scope at all means hidden|read-only."""
    names = [n.strip() for n in names]
    if not any(names):
        return Scope.HIDDEN | Scope.READ_ONLY
    scope = Scope(0)
    for name in names:
        if name == HIDDEN:
            scope |= Scope.HIDDEN
        elif name == READ_ONLY:
            scope |= Scope.READ_ONLY
        elif name == READ_WRITE:
            scope |= Scope.READ_WRITE
        elif name == VOLATILE:
            scope |= Scope.VOLATILE
        elif name == NON_PERSISTENT:
            scope |= Scope.NON_PERSISTENT
        elif name == SECRET:
            scope |= Scope.SECRET | Scope.READ_ONLY
        else:
            return Scope.INVALID
    return scope


def _suffixes(key: str) -> list[str]:
    return key.split(SUFFIX_SEPARATOR)[1:]


def is_secret(key: str) -> bool:
    return SECRET in _suffixes(key)


def is_non_persistent(key: str) -> bool:
    return NON_PERSISTENT in _suffixes(key)


def scope_names_of_key(key: str) -> list[str]:
    """The scopes a key's shape implies (what an untagged field below it inherits)."""
    names = []
    if not key.startswith(GUESTINFO_PREFIX):
        names.append(HIDDEN)
    names.append(READ_ONLY if "/" in key else READ_WRITE)
    if is_secret(key):
        names.append(SECRET)
    if is_non_persistent(key):
        names.append(NON_PERSISTENT)
    return names


def scope_of_key(key: str) -> Scope:
    return scope_from_names(scope_names_of_key(key))


def calculate_key(scope: Scope, prefix: str, key: str) -> str | None:
    """The key of field `key` with `scope` below `prefix`; None when the scope is invalid (VIC calculateKey)."""
    if scope & Scope.INVALID:
        return None
    hide = bool(scope & Scope.HIDDEN)
    write = bool(scope & Scope.READ_WRITE)
    visible = prefix.startswith(GUESTINFO_PREFIX)
    old_sep, new_sep = (".", "/")
    if not hide and write:
        old_sep, new_sep = ("/", ".")
    key = key.strip()
    # suffixes of the prefix are dropped here and re-added below if they still apply
    cut = prefix.find(SUFFIX_SEPARATOR)
    if cut != -1:
        prefix = prefix[:cut]
    out = f"{prefix}{new_sep}{key}" if prefix else key
    if scope & Scope.SECRET:
        out += SUFFIX_SEPARATOR + SECRET
    if scope & Scope.NON_PERSISTENT:
        if hide:
            return None  # hidden keys live in the VMX only; they can't be non-persistent guestinfo
        out += SUFFIX_SEPARATOR + NON_PERSISTENT
    if hide:
        # strip `guestinfo.vice.` and the read-only/read-write marker after it
        return out[len(VICE_PREFIX) + 1:] if visible else out
    out = out.replace(old_sep, new_sep)
    if not visible:
        return VICE_PREFIX + new_sep + out
    # the replace above also rewrote the `.` of the prefix itself
    return VICE_PREFIX + out[len(VICE_PREFIX):]


def append_to_prefix(prefix: str, separator: str, value: str) -> str:
    """`prefix + separator + value`, keeping any `@suffix` of the prefix at the very end."""
    cut = prefix.find(SUFFIX_SEPARATOR)
    suffix = ""
    if cut != -1:
        prefix, suffix = prefix[:cut], prefix[cut:]
    return f"{prefix}{separator}{value}{suffix}"


# -- guest visibility (the guest channel and the tether follow these) ---------------------------------------------
def guest_can_read(key: str) -> bool:
    """A guest sees guestinfo keys only; hidden keys (no `guestinfo.` prefix) never reach it."""
    return key.startswith(GUESTINFO_PREFIX)


def guest_can_write(key: str) -> bool:
    """A guest may write read-write keys only: guestinfo keys without a `/` (VIC's GuestInfoSink skips the others)."""
    return key.startswith(GUESTINFO_PREFIX) and "/" not in key


def visible_to_guest(data: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in data.items() if guest_can_read(k)}


def writable_by_guest(data: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in data.items() if guest_can_write(k)}


def escape_nil(value: str) -> str:
    return NIL_VALUE if value == "" else value


def unescape_nil(value: str) -> str:
    return "" if value == NIL_VALUE else value
