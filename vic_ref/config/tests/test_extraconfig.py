"""The generic key scheme: VIC's key calculation cases, value encodings, escaping, diff."""
from __future__ import annotations

import datetime
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vic_ref.config import extraconfig as ec
from vic_ref.config.extraconfig import Scope, calculate_key, inherit, scope_from_names, struct, vic
from vic_ref.errors import InvalidArgument

P = ec.VICE_PREFIX  # "guestinfo.vice."


# -- key calculation: the cases of VIC's keys_test.go ----------------------------------------------------------
@pytest.mark.parametrize("scopes, prefix, key, expected", [
    ([ec.HIDDEN], "a/b", "c", "a/b/c"),                               # stays hidden
    ([ec.HIDDEN], P + "/a/b", "c", "a/b/c"),                          # hiding strips the guestinfo prefix
    ([ec.READ_ONLY], "a/b", "c", P + "/a/b/c"),                       # revealed
    ([ec.READ_ONLY], P + "/a/b", "c", P + "/a/b/c"),
    ([ec.READ_WRITE], P + ".a.b", "c", P + ".a.b.c"),
    ([ec.READ_ONLY], "", "a", P + "/a"),                              # top level
    ([ec.READ_WRITE], P + "/a/b", "c", P + ".a.b.c"),                 # read-only parent, read-write child
    ([ec.READ_ONLY], P + ".a.b", "c", P + "/a/b/c"),                  # and the reverse
    ([ec.READ_WRITE], P + ".a", "b/c", P + ".a.b.c"),                 # compound key
    ([], P + ".a/b", "c", "a/b/c"),                                   # no scope = hidden|read-only
    ([], P + ".a.b", "c", "a.b/c"),
    ([], "a.b", "c", "a.b/c"),
    ([ec.SECRET, ec.READ_WRITE], P + ".a.b", "c", P + ".a.b.c@secret"),
    ([ec.NON_PERSISTENT, ec.READ_WRITE], P + ".a.b", "c", P + ".a.b.c@non-persistent"),
])
def test_calculate_key_matches_vic(scopes, prefix, key, expected):
    assert calculate_key(scope_from_names(scopes), prefix, key) == expected


def test_multiple_suffixes_and_invalid_combinations():
    key = calculate_key(scope_from_names([ec.NON_PERSISTENT, ec.SECRET, ec.READ_WRITE]), P + ".a.b", "c")
    assert "@secret" in key and "@non-persistent" in key
    assert calculate_key(scope_from_names([ec.HIDDEN, ec.NON_PERSISTENT]), "", "a") is None
    assert calculate_key(scope_from_names(["bogus"]), "", "a") is None
    assert scope_from_names([""]) == Scope.HIDDEN | Scope.READ_ONLY


def test_suffix_moves_to_the_end():
    assert ec.append_to_prefix(P + "/execs@non-persistent", "|", "e1") == P + "/execs|e1@non-persistent"
    assert ec.append_to_prefix(P + "/args", "", "~") == P + "/args~"


def test_scope_of_key():
    assert ec.scope_of_key("common/name") == Scope.HIDDEN | Scope.READ_ONLY
    assert ec.scope_of_key("annotations") == Scope.HIDDEN | Scope.READ_WRITE
    assert ec.scope_of_key(P + "/common/id") == Scope.READ_ONLY
    assert ec.scope_of_key(P + ".x.y@non-persistent") == Scope.READ_WRITE | Scope.NON_PERSISTENT


@pytest.mark.parametrize("key, read, write", [
    (P + "/common/id", True, False),
    (P + "..sessions|x.status"[1:], True, True),
    (P + ".execs|e.status@non-persistent", True, True),
    ("common/name", False, False),
    ("annotations", False, False),
    ("disk.EnableUUID", False, False),
])
def test_guest_visibility(key, read, write):
    assert ec.guest_can_read(key) is read
    assert ec.guest_can_write(key) is write


# -- a small config exercising every kind of value --------------------------------------------------------------
@struct
class Inner:
    name: str = inherit("Name")
    count: int = vic("count", "read-write")


@struct
class Sample:
    text: str = vic("text", "read-only")
    flag: bool = vic("flag", "read-write")
    number: int = vic("n", "read-only")
    blob: bytes = vic("blob", "read-only")
    when: datetime.datetime | None = vic("when", "read-only")
    words: list[str] = vic("words", "read-only")
    numbers: list[int] = vic("numbers", "read-write")
    items: list[Inner] = vic("items", "read-only")
    table: dict[str, str] = vic("table", "read-only")
    inners: dict[str, Inner] = vic("inners", "read-only,non-persistent")
    secret: str = vic("token", "secret")
    maybe: Inner | None = vic("maybe", "read-only")
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = vic("ip", "read-only")
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = vic("ips", "read-only")
    net: ipaddress.IPv4Interface | ipaddress.IPv6Interface | None = vic("net", "read-write")
    hidden_map: dict[str, str] = vic("hmap", "hidden")
    local: str = ec.skip(default="not encoded")


def test_every_kind_of_value():
    sample = Sample(text="", flag=True, number=-3, blob=b"\x00\xff", words=["a", "", "c"], numbers=[1, 2],
                    items=[Inner("x", 1), Inner("y", 2)], table={"b": "2", "a": "1"},
                    inners={"k": Inner("z", 3)}, secret="s3", maybe=None,
                    when=datetime.datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=datetime.UTC),
                    ip=ipaddress.ip_address("10.0.0.1"), ips=[ipaddress.ip_address("fe80::1")],
                    net=ipaddress.ip_interface("172.16.0.2/16"), hidden_map={"h": "v"}, local="x")
    data = ec.encode(sample)
    assert data == {
        P + "/text": "<nil>",  # empty strings are written, as <nil>
        P + ".flag": "true",
        P + "/n": "-3",
        P + "/blob": "AP8=",
        P + "/when": "2024-01-02 03:04:05.12 +0000 UTC",
        P + "/words~": "a||c", P + "/words": "2",
        P + ".numbers~": "1|2", P + ".numbers": "1",
        P + "/items": "1",
        P + "/items|0/Name": "x", P + ".items|0.count": "1",
        P + "/items|1/Name": "y", P + ".items|1.count": "2",
        P + "/table": "a|b", P + "/table|a": "1", P + "/table|b": "2",
        P + "/inners@non-persistent": "k",
        P + "/inners|k/Name@non-persistent": "z", P + ".inners|k.count@non-persistent": "3",
        P + "/token@secret": "s3",
        # net.ParseIP's 16-byte form for a plain IP ...
        P + "/ip": "AAAAAAAAAAAAAP//CgAAAQ==",
        P + "/ips": "0", P + "/ips|0": "/oAAAAAAAAAAAAAAAAAAAQ==",
        # ... and ParseCIDR's 4-byte form in an IPNet
        P + ".net.IP": "rBAAAg==", P + ".net.Mask": "//8AAA==",
        "hmap": "h", "hmap|h": "v",
    }
    back = ec.decode(Sample, data)
    assert back == Sample(**{**sample.__dict__, "local": "not encoded"})


def test_empty_slices_maps_bytes_and_none_are_omitted():
    data = ec.encode(Sample())
    assert set(data) == {P + "/text", P + ".flag", P + "/n", P + "/when", P + "/token@secret"}
    assert data[P + "/when"] == ec.GO_ZERO_TIME
    assert ec.decode(Sample, data) == Sample()
    assert ec.decode(Sample, {}) == Sample()


def test_primitive_slice_values_with_separators_round_trip():
    words = ["sh", "-c", "echo a|b", "back\\slash", "\\|", "|", ""]
    data = ec.encode(Sample(words=words))
    assert data[P + "/words~"] == "sh|-c|echo a\\|b|back\\\\slash|\\\\\\||\\||"
    assert ec.decode(Sample, data).words == words


def test_decoding_reads_go_forms():
    data = {
        P + "/ip": "CgAAAQ==",  # a 4-byte IP (net.IPv4(...).To4())
        P + ".net.IP": "AAAAAAAAAAAAAP//rBAAAg==", P + ".net.Mask": "////AA==",  # 16-byte IP in an IPNet
        P + ".flag": "T", P + "/n": "", P + "/when": "2024-01-02 05:04:05.123456789 +0200 EET m=+0.001",
    }
    sample = ec.decode(Sample, data)
    assert sample.ip == ipaddress.ip_address("10.0.0.1")
    assert sample.net == ipaddress.ip_interface("172.16.0.2/24")
    assert sample.flag is True and sample.number == 0
    assert sample.when == datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.UTC)


def test_garbage_values_decode_to_zero_values_without_raising():
    data = {P + "/n": "x", P + ".flag": "maybe", P + "/blob": "!!", P + "/ip": "AAA=", P + "/when": "now",
            P + "/words": "5", P + "/words~": "only", P + "/items": "z", P + ".net.IP": "AQID"}
    sample = ec.decode(Sample, data)
    assert (sample.number, sample.flag, sample.blob, sample.ip, sample.when) == (0, False, b"", None, None)
    assert sample.words == ["only"] and sample.items == [] and sample.net is None


@pytest.mark.parametrize("bad", ["", "a|b", "a@b", "a/b"])
def test_map_keys_that_would_break_the_key_syntax_are_refused(bad):
    with pytest.raises(InvalidArgument):
        ec.encode(Sample(table={bad: "v"}))


def test_slash_is_fine_in_hidden_map_keys():
    assert ec.decode(Sample, ec.encode(Sample(hidden_map={"a/b": "v"}))).hidden_map == {"a/b": "v"}


def test_key_for():
    assert ec.key_for(Sample, "text") == P + "/text"
    assert ec.key_for(Sample, "inners", "k", "count") == P + ".inners|k.count@non-persistent"
    assert ec.key_for(Sample, "items", 1, "name") == P + "/items|1/Name"
    assert ec.key_for(Sample, "net", "Mask") == P + ".net.Mask"
    with pytest.raises(KeyError):
        ec.key_for(Sample, "local")
    with pytest.raises(KeyError):
        ec.key_for(Sample, "nope")


def test_struct_requires_tags():
    with pytest.raises(TypeError):
        @struct
        class Untagged:
            x: str = ""


# -- go time -----------------------------------------------------------------------------------------------------
def test_go_time_format():
    utc = datetime.UTC
    assert ec.format_go_time(datetime.datetime(2017, 3, 4, 5, 6, 7, tzinfo=utc)) == "2017-03-04 05:06:07 +0000 UTC"
    assert ec.format_go_time(None) == "0001-01-01 00:00:00 +0000 UTC"
    assert ec.parse_go_time("0001-01-01 00:00:00 +0000 UTC") is None
    with pytest.raises(ValueError):
        ec.parse_go_time("yesterday")


# -- diff --------------------------------------------------------------------------------------------------------
def test_diff_changes_additions_and_deletions():
    old = {"a": "1", "b": "2", "vmx.own": "keep"}
    new = {"a": "1", "b": "3", "c": ""}
    assert ec.diff(old, new) == [("b", "3"), ("c", "<nil>"), ("vmx.own", "")]
    assert ec.diff(old, new, owned=lambda k: not k.startswith("vmx.")) == [("b", "3"), ("c", "<nil>")]


kv = st.dictionaries(st.sampled_from("abcdefg"), st.sampled_from(["1", "2", "<nil>"]), max_size=7)


@given(kv, kv)
def test_diff_then_apply_gives_new(old, new):
    changes = ec.diff(old, new)
    assert ec.apply(old, changes) == new
    assert all(value != "" or key not in new for key, value in changes)


@given(kv, kv)
def test_diff_never_deletes_keys_it_does_not_own(old, new):
    owned = {"a", "b", "c"}.__contains__
    result = ec.apply(old, ec.diff(old, new, owned=owned))
    assert {k: v for k, v in result.items() if owned(k) or k in new} == new
    assert all(result[k] == v for k, v in old.items() if not owned(k) and k not in new)
