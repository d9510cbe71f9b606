"""The state store: saves the inventory in sqlite so a restarted sim keeps its VMs, folders and datastores.

One row per persistent managed object (its class and `extra_state()` as JSON), one row per top-level property. Dispatch
calls `flush()` after every vim25 call; it writes, in one record, only the properties whose registry version moved
since they were last written, so a flush after one VM change costs that VM's changed properties, not the world. A list
of morefs (a folder's childEntity, a datastore's vm: thousands) is kept one row per member in `members`, and the steps
`base.ref_list_*` logged are written as they are (a member added or removed), so creating the 10,000th VM writes what
the 1st did; a list changed any other way is rewritten whole.

sqlite runs in WAL mode. A flush does not write sqlite itself: it appends its rows to a change log with one `write`
(in the OS page cache, it survives a `kill -9` of the sim, as a committed sqlite transaction did, at a fraction of the
cost); the applier thread writes the log into sqlite a few times a second in one transaction and deletes it, and a
sim that did not stop cleanly replays its logs before it loads. A crash therefore loses at most the call in flight.
WAL checkpoints (the only fsyncs) run on that thread too, off the calls' path.

Property values are stored in a compact form built on pyVmomi's own type registry: every non-plain value carries its
vmodl type name (`vim.vm.ConfigInfo`, `vim.Folder`, `long`, `vim.VirtualMachine.PowerState`, ...) and comes back as the
same pyVmomi type via `VmomiSupport.GetVmodlType`, so a loaded value serializes to the same vim25 XML as the saved one.
That form (plain dicts, lists and scalars) is written with `marshal`. Against `SoapAdapter.SerializeToStr` it is ~6x
faster (a VM config: 0.06 ms against 0.6 ms), which matters on the hot path. A value it cannot hold falls back to
pyVmomi's SOAP XML (`SerializeToStr` / `Deserialize`). `python -m vsphere_sim.persist STATE.db [MOID]` prints the
stored objects as JSON.
"""
from __future__ import annotations

import base64
import datetime
import fcntl
import importlib
import json
import logging
import marshal
import os
import re
import sqlite3
import struct
import threading
import time
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyVmomi import SoapAdapter, VmomiSupport
from pyVmomi.VmomiSupport import F_OPTIONAL, Array, DataObject, ManagedObject

from .objects.data import shallow_copy

if TYPE_CHECKING:
    from .objects.base import ManagedObjectImpl
    from .registry import Registry

log = logging.getLogger("vsphere_sim.persist")

FORMAT = "3"
# Stores of these formats load (format 2 had no `members`: its lists are whole rows, rewritten as members on change).
READABLE_FORMATS = ("2", FORMAT)
_PLAIN = (str, int, float, bool)
_MISSING = object()
_MOID_COUNTER = re.compile(r"^(.+?)-?(\d+)$")  # vm-42 -> vm; group-v12 -> group-v (see folder.new_moid)
# The newest version pyVmomi knows, so the XML fallback drops no property.
_XML_VERSION = VmomiSupport.newestVersions.Get("vim")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS objects (moid TEXT PRIMARY KEY, cls TEXT NOT NULL, extra TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS props (moid TEXT NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL,
                                  PRIMARY KEY (moid, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (moid TEXT NOT NULL, name TEXT NOT NULL, seq INTEGER NOT NULL,
                                    member TEXT NOT NULL, value BLOB NOT NULL,
                                    PRIMARY KEY (moid, name, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_by_member ON members (moid, name, member);
"""
# The props row of a list kept in `members`: its array type.
_MEMBERS_KEY = "$members"
# A change log record's frame: payload length and CRC-32.
_FRAME = struct.Struct("<II")


class StateStoreError(RuntimeError):
    pass


# -- value codec ----------------------------------------------------------------------------------------------------
_type_names: dict[type, str] = {}


def _vmodl_name(t: type) -> str:
    name = _type_names.get(t)
    if name is None:
        name = _type_names[t] = VmomiSupport.GetVmodlName(t)
    return name


def encode_value(value: Any) -> Any:
    """A pyVmomi value as JSON-able data that `decode_value` turns back into the same pyVmomi types."""
    t = type(value)
    if value is None or t in _PLAIN:
        return value
    encoder = _encoders.get(t)
    if encoder is None:
        encoder = _encoders[t] = _encoder_for(t)
    return encoder(value)


def _encoder_for(t: type):
    # One encoder per concrete type, chosen once: the per-value work is then a dict lookup and the field loop.
    if issubclass(t, DataObject):
        name = _vmodl_name(t)
        # Values the constructor gives anyway are left out (unset optionals, empty arrays, and required fields still
        # at their False / 0 / "" default): smaller rows, faster flushes, and decode_value restores them.
        defaults = {k: v for k, v in t().__dict__.items() if type(v) in _PLAIN}

        def encode_data(value):
            out = {"$d": name}
            for key, item in value.__dict__.items():
                if item is None:
                    continue
                it = type(item)
                if it in _PLAIN:
                    default = defaults.get(key, _MISSING)
                    if default is _MISSING or default != item or type(default) is not it:
                        out[key] = item
                elif isinstance(item, list) and not item:
                    continue
                else:
                    # encode_value's encoder lookup, inlined: this loop is most of a flush
                    encoder = _encoders.get(it)
                    if encoder is None:
                        encoder = _encoders[it] = _encoder_for(it)
                    out[key] = encoder(item)
            return out
        return encode_data
    if issubclass(t, Array):
        name = _vmodl_name(t)
        return lambda value: {"$a": name, "v": [encode_value(item) for item in value]}
    if issubclass(t, list):
        return lambda value: {"$l": [encode_value(item) for item in value]}
    if issubclass(t, ManagedObject):
        name = _vmodl_name(t)
        return lambda value: ({"$m": name, "v": value._moId, "g": value._serverGuid} if value._serverGuid
                              else {"$m": name, "v": value._moId})
    if issubclass(t, datetime.datetime):
        return lambda value: {"$t": value.isoformat()}
    if issubclass(t, bytes):
        name = _vmodl_name(t)
        return lambda value: {"$b": base64.b64encode(value).decode("ascii"), "t": name}
    if issubclass(t, type):
        return lambda value: {"$T": _vmodl_name(value)}
    if issubclass(t, (str, int, float)):  # long, short, byte, double, enums, PropertyPath, URI
        name, base = _vmodl_name(t), t.__mro__[-2]
        return lambda value: {"$s": name, "v": base(value)}
    raise TypeError(f"cannot encode {t.__name__}")


_encoders: dict[type, Any] = {}


def decode_value(data: Any) -> Any:
    if data is None or type(data) in _PLAIN:
        return data
    if isinstance(data, list):  # not produced by encode_value; tolerated
        return [decode_value(item) for item in data]
    if "$d" in data:
        cls = VmomiSupport.GetVmodlType(data["$d"])
        obj = cls()
        for key, raw in data.items():
            if key == "$d":
                continue
            try:
                info = cls._GetPropertyInfo(key)
            except AttributeError:
                log.warning("dropping %s.%s: not in this pyVmomi", data["$d"], key)
                continue
            value = decode_value(raw)
            if isinstance(value, list) and not isinstance(value, Array) and issubclass(info.type, list):
                value = info.type(value)
            # the value passed CheckField when it was set; skip it (and its global lock) on the way back
            object.__setattr__(obj, key, value)
        return obj
    if "$a" in data:
        return VmomiSupport.GetVmodlType(data["$a"])([decode_value(item) for item in data["v"]])
    if "$l" in data:
        return [decode_value(item) for item in data["$l"]]
    if "$m" in data:
        return VmomiSupport.GetVmodlType(data["$m"])(data["v"], serverGuid=data.get("g"))
    if "$t" in data:
        return datetime.datetime.fromisoformat(data["$t"])
    if "$b" in data:
        return VmomiSupport.GetVmodlType(data["t"])(base64.b64decode(data["$b"]))
    if "$T" in data:
        return VmomiSupport.GetVmodlType(data["$T"])
    if "$s" in data:
        return VmomiSupport.GetVmodlType(data["$s"])(data["v"])
    if "$x" in data:
        return _decode_xml(data["$x"], data.get("t"))
    raise StateStoreError(f"unknown encoded value {sorted(data)[:3]}")


def _encode_xml(value, name: str, ptype) -> dict:
    info = VmomiSupport.Object(name=name, type=ptype, version=_XML_VERSION, flags=F_OPTIONAL)
    xml = SoapAdapter.SerializeToStr(value, info, _XML_VERSION)
    return {"$x": xml, "t": _vmodl_name(ptype)}


def _decode_xml(xml: str, type_name: str | None):
    ptype = VmomiSupport.GetVmodlType(type_name) if type_name else object
    if not xml:
        return None
    if issubclass(ptype, list):
        # SerializeToStr writes an array as repeated sibling elements: parse each under a wrapper
        wrapped = f'<w xmlns="urn:vim25">{xml}</w>'
        items = []
        for child in ET.fromstring(wrapped):
            items.append(SoapAdapter.Deserialize(ET.tostring(child, encoding="unicode"), ptype.Item))
        return ptype(items)
    return SoapAdapter.Deserialize(xml, ptype)


def encode_property(obj: ManagedObjectImpl, name: str, value) -> bytes:
    try:
        data = encode_value(value)
    except (TypeError, KeyError, AttributeError):
        data = _encode_xml(value, name, obj.property_type(name))
    return marshal.dumps(data)


def decode_property(blob: bytes):
    return decode_value(marshal.loads(blob))


def _class_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_class(name: str) -> type:
    module, _, qualname = name.partition(":")
    value: Any = importlib.import_module(module)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


class _Written:
    """What the store holds for one object: the class, the extra-state JSON and each property's version; for each list
    kept in `members`, the next free position."""
    __slots__ = ("cls", "extra", "versions", "next_seq")

    def __init__(self, cls: str, extra: str, versions: dict[str, int | None], next_seq: dict | None = None):
        self.cls = cls
        self.extra = extra
        self.versions = versions
        self.next_seq: dict[str, int] = next_seq if next_seq is not None else {}


_list_kinds: dict[tuple[type, str], str | None] = {}


def member_list_type(obj, name: str) -> str | None:
    """The vmodl array type of a property kept in `members` (an array of morefs), else None."""
    key = (type(obj), name)
    if key not in _list_kinds:
        try:
            ptype = obj.property_type(name)
        except (AttributeError, KeyError):
            ptype = None
        is_refs = ptype is not None and issubclass(ptype, Array) and issubclass(ptype.Item, ManagedObject)
        _list_kinds[key] = _vmodl_name(ptype) if is_refs else None
    return _list_kinds[key]


def _member_row(moid: str, name: str, seq: int, ref) -> tuple:
    return (moid, name, seq, ref._moId, marshal.dumps(encode_value(ref)))


# The statements a flush's changes apply, by the names its change records use.
_STATEMENTS = {
    "delete_objects": "DELETE FROM objects WHERE moid=?",
    "delete_props": "DELETE FROM props WHERE moid=?",
    "delete_members": "DELETE FROM members WHERE moid=?",
    "objects": "INSERT OR REPLACE INTO objects VALUES (?,?,?)",
    "delete_prop": "DELETE FROM props WHERE moid=? AND name=?",
    "props": "INSERT OR REPLACE INTO props VALUES (?,?,?)",
    "meta": "INSERT OR REPLACE INTO meta VALUES (?,?)",
    # members: a list's steps
    "clear": "DELETE FROM members WHERE moid=? AND name=?",
    "insert": "INSERT OR REPLACE INTO members VALUES (?,?,?,?,?)",
    # the first of that member, as ref_list_remove takes it
    "remove": "DELETE FROM members WHERE moid=? AND name=? AND seq=(SELECT min(seq) FROM members "
              "WHERE moid=? AND name=? AND member=?)",
}


class _MemberOps:
    """The `members` rows one flush writes, in order: a list's logged steps as they were taken, or the whole list."""

    def __init__(self):
        self.batches: list[tuple[str, list]] = []  # (kind, rows): runs of one kind, in order
        self.logs_written: list[tuple] = []  # (obj, prop) whose logged steps this flush covers

    def _add(self, kind: str, rows):
        if self.batches and self.batches[-1][0] == kind:
            self.batches[-1][1].extend(rows)
        else:
            self.batches.append((kind, list(rows)))

    def collect(self, obj, name: str, refs, written_version, next_seq: int | None) -> int:
        """Rows for list property `name` of `obj`, written at `written_version` (next free position `next_seq`);
        returns the next free position after them."""
        moid = obj.moid
        steps = obj.__dict__.get("ref_log", {}).get(name)
        self.logs_written.append((obj, name))
        if next_seq is not None and steps and _steps_cover(steps, written_version, obj.prop_versions.get(name)):
            for _before, _after, op, ref in steps:
                if op == "add":
                    self._add("insert", [_member_row(moid, name, next_seq, ref)])
                    next_seq += 1
                else:
                    self._add("remove", [(moid, name, moid, name, ref._moId)])
            return next_seq
        self.clear(moid, name)
        self._add("insert", [_member_row(moid, name, seq, ref) for seq, ref in enumerate(refs)])
        return len(refs)

    def clear(self, moid: str, name: str):
        self._add("clear", [(moid, name)])


def _steps_cover(steps, written_version, current_version) -> bool:
    """Whether the logged steps lead, one after the other, from the written version to the current one (no change to
    the list went around the helpers)."""
    version = written_version
    for before, after, _op, _ref in steps:
        if before != version:
            return False
        version = after
    return version == current_version


# -- the store ------------------------------------------------------------------------------------------------------
class StateStore:
    # Seconds the applier lets changes gather in the change log before it writes them into sqlite in one transaction.
    APPLY_INTERVAL = 0.25

    def __init__(self, path: str | Path, lock_wait: float = 0.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Two sims on one workdir would overwrite each other's state: the second one is refused. The kernel drops the
        # lock when the process dies, so a kill -9 never leaves a stale lock behind.
        self._lock_file = open(self.path.with_name(self.path.name + ".lock"), "a")  # noqa: SIM115 (held until close)
        # A sim restarted right after the previous one was told to stop may wait `lock_wait` seconds for it to go.
        deadline = time.monotonic() + lock_wait
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._lock_file.close()
                    raise StateStoreError(f"{self.path} is in use by another running simulator") from None
                time.sleep(0.05)
        # Every use is under the store's own lock (callers also hold sim.lock); server threads share the connection.
        self._conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        # No checkpoint inside a commit (its fsyncs cost milliseconds on the call's path): the checkpointer thread
        # does them. journal_size_limit trims the WAL file after a checkpoint lets it restart.
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        self._conn.execute("PRAGMA journal_size_limit=67108864")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._written: dict[str, _Written] = {}
        self._counters: dict[str, int] = {}  # highest id per moid prefix ever saved, so ids are never reused
        self._failing = False
        self.closed = False
        row = self._conn.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        if row is None or row[0] in READABLE_FORMATS:
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (FORMAT,))
        elif row[0] != FORMAT:
            self._conn.close()
            self._lock_file.close()
            raise StateStoreError(f"{self.path} has state format {row[0]}, this sim writes {FORMAT}; "
                                  f"use a fresh workdir")
        self._conn.execute("PRAGMA busy_timeout=10000")
        # Every sqlite use after boot is the applier's or a drain's, one at a time under this lock.
        self._apply_lock = threading.Lock()
        self._replay_change_logs()
        self._pending: list[list] = []  # change records in the open logs, not yet in sqlite
        self._applied_logs: list[Path] = []  # logs whose records are in sqlite once the next commit is done
        self._log_gen = 0
        self._log_fd = -1
        self._open_change_log()
        self._changed = threading.Event()
        self._stopping = threading.Event()
        self._applier = threading.Thread(target=self._apply_loop, daemon=True,
                                         name=f"state-applier-{self.path.parent.name}")
        self._applier.start()

    # -- the change log -------------------------------------------------------------------------------------------
    # A flush appends its changes to a log file with one write: in the page cache it survives a kill -9 as a sqlite
    # commit did, at a tenth of the cost (a commit rewrites whole pages). The applier thread writes the records into
    # sqlite a few times a second and deletes the logs they came from; a sim that did not stop cleanly replays its
    # logs into sqlite before it loads. Frame: length, CRC-32 (both 4 bytes, little-endian), marshal'd records.
    def _open_change_log(self) -> None:
        self._log_gen += 1
        path = self.path.with_name(f"{self.path.name}.changes.{self._log_gen:06d}")
        self._log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        self._log_file = path
        self._log_size = 0

    def _write_changes(self, changes: list) -> None:
        """Append one flush's changes to the log (under self._lock)."""
        payload = marshal.dumps(changes)
        frame = _FRAME.pack(len(payload), zlib.crc32(payload)) + payload
        try:
            written = os.write(self._log_fd, frame)
            if written != len(frame):
                raise OSError(f"short write to {self._log_file} ({written} of {len(frame)} bytes)")
        except OSError:
            os.ftruncate(self._log_fd, self._log_size)  # no torn frame for the next record to follow
            raise
        self._log_size += len(frame)
        self._pending.append(changes)
        self._changed.set()

    def _apply(self, records: list) -> None:
        """Write change records into sqlite, in one transaction (under self._apply_lock)."""
        conn = self._conn
        conn.execute("BEGIN")
        try:
            apply_changes(conn, records)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _drain(self) -> bool:
        """Move what the logs hold into sqlite, then delete them (under self._apply_lock); False if sqlite failed."""
        with self._lock:
            records, self._pending = self._pending, []
            if records and not self.closed:
                self._applied_logs.append(self._log_file)
                os.close(self._log_fd)
                self._open_change_log()
        if not records and not self._applied_logs:
            return True
        try:
            self._apply(records)
        except sqlite3.Error:
            log.exception("state store %s: writing the change log into sqlite failed; will retry", self.path)
            with self._lock:
                self._pending[:0] = records  # still in their log files, which stay until this works
            return False
        for path in self._applied_logs:
            path.unlink(missing_ok=True)
        self._applied_logs.clear()
        return True

    def _replay_change_logs(self) -> None:
        """A sim that did not stop cleanly left change logs: write their records into sqlite, then drop the logs."""
        logs = change_logs(self.path)
        records = [record for path in logs for record in read_change_log(path)]
        if records:
            self._apply(records)
            log.info("state store %s: replayed %d changes from %d change logs", self.path, len(records), len(logs))
        for path in logs:
            path.unlink()

    # -- writing ------------------------------------------------------------------------------------------------
    def flush(self, registry: Registry) -> None:
        """Write every dirty object and delete every deleted one, in one change log record; then clear both sets."""
        if not registry.dirty and not registry.deleted:
            return
        with self._lock:
            if self.closed:
                return
            obj_rows, prop_rows, prop_deletes, written_updates = [], [], [], []
            member_ops = _MemberOps()
            counters: dict[str, int] = {}
            objects = registry.objects
            for moid in registry.dirty:
                obj = objects.get(moid)
                if obj is None or not obj.persistent:
                    continue
                if moid not in self._written:
                    self._note_counter(counters, moid)
                self._collect(obj, obj_rows, prop_rows, prop_deletes, written_updates, member_ops)
            deleted = [moid for moid in registry.deleted if moid not in objects]
            for moid in deleted:
                self._note_counter(counters, moid)
            changes: list[tuple[str, list]] = []  # (statement, rows), in the order they apply
            if deleted:
                params = [(m,) for m in deleted]
                changes += [("delete_objects", params), ("delete_props", params), ("delete_members", params)]
            changes += member_ops.batches
            if obj_rows:
                changes.append(("objects", obj_rows))
            if prop_deletes:
                changes.append(("delete_prop", prop_deletes))
            if prop_rows:
                changes.append(("props", prop_rows))
            if counters:
                changes.append(("meta", [(f"counter:{p}", str(n)) for p, n in counters.items()]))
            try:
                self._write_changes(changes)
            except OSError:
                # Keep the sets: the next call's flush retries. Log once per failing streak, not per call.
                if not self._failing:
                    log.exception("state store %s: flush failed; will retry", self.path)
                self._failing = True
                return
            self._failing = False
            for moid in deleted:
                self._written.pop(moid, None)
            for moid, cls, extra, updates, removed, next_seq in written_updates:
                record = self._written.get(moid)
                if record is None or record.cls != cls:
                    record = self._written[moid] = _Written(cls, extra, {})
                record.extra = extra
                record.versions.update(updates)
                for name in removed:
                    if name not in updates:
                        record.versions.pop(name, None)
                    record.next_seq.pop(name, None)
                record.next_seq.update(next_seq)
            for obj, name in member_ops.logs_written:
                steps = obj.__dict__.get("ref_log")
                if steps is not None:
                    steps.pop(name, None)
            self._counters.update(counters)
        registry.dirty.clear()
        registry.deleted.clear()

    def _note_counter(self, counters: dict, moid: str):
        match = _MOID_COUNTER.match(moid)
        if match is not None:
            prefix, n = match.group(1), int(match.group(2))
            if n > max(self._counters.get(prefix, 0), counters.get(prefix, 0)):
                counters[prefix] = n

    def _collect(self, obj, obj_rows, prop_rows, prop_deletes, written_updates, member_ops):
        """Rows for what changed in `obj` since it was last written; the bookkeeping is applied after the commit."""
        moid = obj.moid
        old = self._written.get(moid)
        cls = _class_name(type(obj))
        try:
            state = obj.extra_state()
            extra = json.dumps(state, separators=(",", ":"), sort_keys=True) if state else "{}"
        except (TypeError, ValueError):
            log.exception("state store: extra_state of %s is not JSON; keeping the last saved one", moid)
            extra = old.extra if old is not None else "{}"
        if old is None or old.cls != cls:
            old_versions: dict = {}
            old_seq: dict = {}
            obj_rows.append((moid, cls, extra))
        else:
            old_versions = old.versions
            old_seq = old.next_seq
            if old.extra != extra:
                obj_rows.append((moid, cls, extra))
        versions = obj.prop_versions
        props = obj.props
        stored_without = obj.stored_without
        updates = {}
        next_seq: dict[str, int] = {}
        dropped: list[str] = []  # lists kept in members before, written whole now
        for name, value in props.items():
            version = versions.get(name)
            if old_versions.get(name, _MISSING) == version:
                continue
            list_type = member_list_type(obj, name) if isinstance(value, list) else None
            if list_type is not None:
                if name not in old_seq:  # first time kept as members: the props row says so
                    prop_rows.append((moid, name, marshal.dumps({_MEMBERS_KEY: list_type})))
                next_seq[name] = member_ops.collect(obj, name, value, old_versions.get(name, _MISSING),
                                                    old_seq.get(name))
                updates[name] = version
                continue
            if name in old_seq:  # no longer a list of morefs: a whole row again
                member_ops.clear(moid, name)
                dropped.append(name)
            if name in stored_without and value is not None:
                value = shallow_copy(value)
                value.__dict__[stored_without[name]] = None
            try:
                prop_rows.append((moid, name, encode_property(obj, name, value)))
            except Exception:  # a half-built value must not break the call that made it; save the rest
                log.exception("state store: cannot save %s.%s", moid, name)
                continue
            updates[name] = version
        removed = [name for name in old_versions if name not in props]
        for name in removed:
            prop_deletes.append((moid, name))
            if name in old_seq:
                member_ops.clear(moid, name)
        written_updates.append((moid, cls, extra, updates, removed + dropped, next_seq))

    def _apply_loop(self):
        while not self._stopping.is_set():
            if not self._changed.wait(1.0):
                continue
            # let a burst of calls gather in the log, then write it into sqlite in one transaction
            if self._stopping.wait(self.APPLY_INTERVAL):
                break
            self._changed.clear()
            with self._apply_lock:
                if self._drain():
                    try:
                        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    except sqlite3.Error:
                        log.debug("state store: background checkpoint failed", exc_info=True)

    # -- reading ------------------------------------------------------------------------------------------------
    def load(self, sim) -> bool:
        """Rebuild the saved objects into `sim.registry`; False when the store is empty (a fresh workdir)."""
        from .objects.base import ManagedObjectImpl

        with self._apply_lock, self._lock:
            rows = self._conn.execute("SELECT moid, cls, extra FROM objects").fetchall()
            if not rows:
                return False
            props: dict[str, dict[str, bytes]] = {}
            for moid, name, value in self._conn.execute("SELECT moid, name, value FROM props"):
                props.setdefault(moid, {})[name] = value
            members: dict[tuple[str, str], list[bytes]] = {}
            next_seq: dict[str, dict[str, int]] = {}
            for moid, name, seq, value in self._conn.execute(
                    "SELECT moid, name, seq, value FROM members ORDER BY moid, name, seq"):
                members.setdefault((moid, name), []).append(value)
                next_seq.setdefault(moid, {})[name] = seq + 1
            for key, value in self._conn.execute("SELECT key, value FROM meta WHERE key LIKE 'counter:%'"):
                self._counters[key.removeprefix("counter:")] = int(value)
        registry = sim.registry
        loaded: list[tuple[ManagedObjectImpl, str, str, dict]] = []
        for moid, cls_name, extra in rows:
            try:
                cls = _import_class(cls_name)
            except (ImportError, AttributeError):
                log.error("state store: skipping %s, class %s no longer exists", moid, cls_name)
                continue
            values = {}
            member_props: dict[str, int] = {}
            for name, blob in props.get(moid, {}).items():
                try:
                    data = marshal.loads(blob)
                    if isinstance(data, dict) and _MEMBERS_KEY in data:
                        value = VmomiSupport.GetVmodlType(data[_MEMBERS_KEY])(
                            decode_property(b) for b in members.get((moid, name), ()))
                        member_props[name] = next_seq.get(moid, {}).get(name, 0)
                    else:
                        value = decode_value(data)
                    values[name] = value
                except Exception:
                    log.exception("state store: cannot load %s.%s", moid, name)
            existing = registry.find(moid)
            if existing is not None:
                # A fixed object made before load (the root folder): take the saved values in place.
                obj = existing
                for name, value in values.items():
                    obj.props[name] = obj._coerce(name, value)
                registry.changed(obj, list(values))
            else:
                obj = cls.__new__(cls)
                ManagedObjectImpl.__init__(obj, sim, moid)
                for name, value in values.items():
                    obj.props[name] = obj._coerce(name, value)
            loaded.append((obj, cls_name, extra, values, member_props))
        for obj, _cls, extra, _values, _members in loaded:
            obj.load_extra_state(json.loads(extra))
            if registry.find(obj.moid) is None:
                registry.add(obj)
        with self._lock:
            for obj, cls_name, extra, values, member_props in loaded:
                # what is on disk now: nothing to rewrite until something changes
                self._written[obj.moid] = _Written(cls_name, extra,
                                                   {name: obj.prop_versions.get(name) for name in values},
                                                   member_props)
                registry.dirty.discard(obj.moid)
        highest: dict[str, int] = dict(self._counters)
        for obj, *_ in loaded:
            match = _MOID_COUNTER.match(obj.moid)
            if match is not None:
                prefix, n = match.group(1), int(match.group(2))
                highest[prefix] = max(highest.get(prefix, 0), n)
        for prefix, n in highest.items():
            registry.reserve_counter(prefix, n)
        for obj, *_ in loaded:
            try:
                obj.on_loaded()
            except Exception:
                log.exception("state store: on_loaded of %s failed", obj.moid)
        return True

    # -- housekeeping -------------------------------------------------------------------------------------------
    def wipe(self) -> None:
        """Forget everything saved (the counters too: a reset sim starts from vm-1 like a fresh one)."""
        with self._apply_lock:
            self._drain()
        with self._apply_lock, self._lock:
            self._conn.execute("BEGIN")
            self._conn.execute("DELETE FROM objects")
            self._conn.execute("DELETE FROM props")
            self._conn.execute("DELETE FROM members")
            self._conn.execute("DELETE FROM meta WHERE key LIKE 'counter:%'")
            self._conn.execute("COMMIT")
            self._written.clear()
            self._counters.clear()

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self._stopping.set()
        self._applier.join(10)
        with self._apply_lock:
            drained = self._drain()
            with self._lock:
                os.close(self._log_fd)
                if drained:
                    self._log_file.unlink(missing_ok=True)  # empty: drained above, and closed stops flushes
                try:
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error:
                    pass
                self._conn.close()
                self._lock_file.close()  # releases the flock

    def stats(self) -> dict:
        with self._apply_lock:
            self._drain()
            objects = self._conn.execute("SELECT count(*) FROM objects").fetchone()[0]
            props = self._conn.execute("SELECT count(*) FROM props").fetchone()[0]
        return {"path": str(self.path), "objects": objects, "properties": props}


def change_logs(db_path: Path) -> list[Path]:
    """The change logs of the store at `db_path`, oldest first."""
    return sorted(db_path.parent.glob(db_path.name + ".changes.*"))


def apply_changes(conn, records: list) -> None:
    """Execute change records (coalesced) on a sqlite connection."""
    for statement, rows in coalesce(records):
        conn.executemany(_STATEMENTS[statement], rows)


def coalesce(records: list) -> list[tuple[str, list]]:
    """The statements of `records` in order, without the object and property rows that a later record of the batch
    overwrites or deletes: a VM created and destroyed between two applier runs costs sqlite nothing but its deletes,
    and a property changed by every call is written once per run."""
    objects_later: set[str] = set()  # moids whose object row a later statement writes or deletes
    props_later: set[tuple[str, str]] = set()  # (moid, name) written or deleted later
    all_props_deleted_later: set[str] = set()
    kept: list[tuple[str, list]] = []
    for changes in reversed(records):
        for statement, rows in reversed(changes):
            if statement == "objects":
                rows = [row for row in rows if row[0] not in objects_later]
                objects_later.update(row[0] for row in rows)
            elif statement == "props":
                rows = [row for row in rows if row[0] not in all_props_deleted_later
                        and (row[0], row[1]) not in props_later]
                props_later.update((row[0], row[1]) for row in rows)
            elif statement == "delete_objects":
                objects_later.update(row[0] for row in rows)
            elif statement == "delete_props":
                all_props_deleted_later.update(row[0] for row in rows)
            elif statement == "delete_prop":
                props_later.update(rows)
            if rows:
                kept.append((statement, rows))
    kept.reverse()
    merged: list[tuple[str, list]] = []  # runs of one statement in one executemany
    for statement, rows in kept:
        if merged and merged[-1][0] == statement:
            merged[-1][1].extend(rows)
        else:
            merged.append((statement, list(rows)))
    return merged


def read_change_log(path: Path) -> list:
    """The whole records of a change log; a record the writer did not finish (the sim was killed in its write, so it
    was never acknowledged) ends it."""
    data = path.read_bytes()
    records, offset = [], 0
    while offset + _FRAME.size <= len(data):
        size, crc = _FRAME.unpack_from(data, offset)
        payload = data[offset + _FRAME.size:offset + _FRAME.size + size]
        if len(payload) != size or zlib.crc32(payload) != crc:
            break
        records.append(marshal.loads(payload))
        offset += _FRAME.size + size
    if offset != len(data):
        log.warning("state store: %s ends in a partial record (%d bytes dropped)", path, len(data) - offset)
    return records


# -- a look inside, for debugging ------------------------------------------------------------------------------------
def dump(path: str | Path, moid: str | None = None) -> dict:
    """The stored objects as JSON-able data (read-only; works while a sim is running: the change logs not yet in
    sqlite are applied to a copy in memory)."""
    path = Path(path).resolve()
    conn = sqlite3.connect(":memory:")
    try:
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            source.backup(conn)
        finally:
            source.close()
        for log_path in change_logs(path):
            try:
                apply_changes(conn, read_change_log(log_path))
            except FileNotFoundError:  # written into sqlite meanwhile (it was in the copy)
                continue
        query, args = "SELECT moid, cls, extra FROM objects", ()
        if moid is not None:
            query, args = query + " WHERE moid=?", (moid,)
        out = {}
        for oid, cls, extra in conn.execute(query, args):
            props = {name: marshal.loads(blob) for name, blob in
                     conn.execute("SELECT name, value FROM props WHERE moid=?", (oid,))}
            for name, blob in conn.execute("SELECT name, value FROM members WHERE moid=? ORDER BY name, seq", (oid,)):
                entry = props.get(name)
                if isinstance(entry, dict) and _MEMBERS_KEY in entry:
                    entry.setdefault("members", []).append(marshal.loads(blob))
            out[oid] = {"class": cls, "extra": json.loads(extra), "props": props}
        return out
    finally:
        conn.close()


if __name__ == "__main__":
    import sys
    if len(sys.argv) not in (2, 3):
        print("usage: python -m vsphere_sim.persist STATE.db [MOID]", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(dump(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else None), indent=1, default=repr))
