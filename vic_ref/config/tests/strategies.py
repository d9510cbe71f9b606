"""Hypothesis strategies for any @struct config, built from the codec's own type analysis."""
from __future__ import annotations

import datetime
import ipaddress

from hypothesis import strategies as st

from vic_ref.config import extraconfig
from vic_ref.config.extraconfig import Kind, TypeInfo

# "<nil>" is the stored form of "" and reads back as "" (as in VIC), so it can't round-trip as a value.
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=12).filter(lambda s: s != extraconfig.NIL_VALUE)
# map keys as the port layer makes them: ids, network and volume names
map_keys = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,11}", fullmatch=True)
ints = st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1)
# Go keeps nanoseconds, we microseconds; the zero time is None
times = st.datetimes(min_value=datetime.datetime(1970, 1, 1), max_value=datetime.datetime(2200, 1, 1),
                     timezones=st.just(datetime.UTC))
# Go treats ::ffff:a.b.c.d as the IPv4 address a.b.c.d; so does the decoder
ips = st.ip_addresses().filter(lambda ip: ip.version == 4 or ip.ipv4_mapped is None)


def _ipnet(ip):
    return st.integers(0, ip.max_prefixlen).map(lambda n: ipaddress.ip_interface((ip, n)))


ipnets = ips.flatmap(_ipnet)


def for_type(info: TypeInfo, depth: int = 0) -> st.SearchStrategy:
    kind = info.kind
    if kind is Kind.STR:
        return texts
    if kind is Kind.INT:
        return ints
    if kind is Kind.BOOL:
        return st.booleans()
    if kind is Kind.BYTES:
        return st.binary(max_size=24)
    if kind is Kind.TIME:
        return st.none() | times
    if kind is Kind.IP:
        return st.none() | ips
    if kind is Kind.IPNET:
        return st.none() | ipnets
    if kind is Kind.PTR:
        return st.none() | for_type(info.elem, depth)
    if kind is Kind.LIST:
        elem = info.elem
        if elem.kind is Kind.IP:
            return st.lists(ips, max_size=3)
        if elem.kind is Kind.IPNET:
            return st.lists(ipnets, max_size=3)
        return st.lists(for_type(elem, depth + 1), max_size=3 if depth < 2 else 1)
    if kind is Kind.MAP:
        return st.dictionaries(map_keys, for_type(info.elem, depth + 1), max_size=2 if depth < 2 else 1)
    if kind is Kind.STRUCT:
        return for_struct(info.cls, depth + 1)
    raise TypeError(kind)


def for_struct(cls, depth: int = 0) -> st.SearchStrategy:
    fields = {name: for_type(info, depth) for name, tag, info in extraconfig.struct_fields(cls) if not tag.skip}
    return st.builds(cls, **fields)


def _without_exec_notes(cfg):
    # an exec's notes are hidden under a non-persistent key: VIC never writes them, so they can't round-trip
    for session in cfg.execs.values():
        session.common.notes = ""
    return cfg


def executor_configs() -> st.SearchStrategy:
    from vic_ref.config import ExecutorConfig
    return for_struct(ExecutorConfig).map(_without_exec_notes)
