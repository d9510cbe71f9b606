"""The personality's volume rules without a VCH: VIC's option parsing and texts, -v parsing, Config.Volumes keys."""
from __future__ import annotations

import pytest

from vic_ref.personality.errors import DockerError
from vic_ref.personality.volumes import create_request, from_human_size, parse_capacity, plan_mounts


@pytest.mark.parametrize("text, mb", [("10000", 10000), ("10G", 10000), ("200MB", 200), ("1.5g", 1500),
                                      ("1 GB", 1000), ("2t", 2_000_000), ("100000", 100000)])
def test_capacity(text, mb):
    assert parse_capacity(text) == mb


@pytest.mark.parametrize("text, message", [
    ("0", "Invalid size: 0"), ("-1", "Invalid size: -1"),
    ("9223372036854775808", "Capacity value too large: 9223372036854775808"),
    ("9999999999999999999", "Capacity value too large: 9999999999999999999"),
    ("0.5", "Capacity value too large: 0.5"), ("abc", "invalid size: 'abc'"), ("10X", "invalid size: '10X'")])
def test_capacity_refused(text, message):
    with pytest.raises(ValueError) as caught:
        parse_capacity(text)
    assert str(caught.value) == message


def test_human_size_is_decimal():
    assert from_human_size("1k") == 1000 and from_human_size("1KiB") == 1000 and from_human_size("3") == 3


def message(fn, *args):
    with pytest.raises(DockerError) as caught:
        fn(*args)
    return caught.value.status, caught.value.message


def test_create_request_order_and_texts():
    assert message(create_request, "v", "fakeDriver", {}, {}) == (
        500, "error looking up volume plugin fakeDriver: plugin not found")
    assert message(create_request, "test???", "", {}, {}) == (
        500, 'volume name "test???" includes invalid characters, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed')
    assert message(create_request, "v", "local", {"bogus": "foo"}, {}) == (
        500, "bad driver value - bogus is not a supported option")
    assert message(create_request, "v", "vsphere", {"Capacity": "0"}, {}) == (
        500, "bad driver value - Invalid size: 0")
    request = create_request("v", "local", {"VolumeStore": "fast", "cAPACITy": "2G"}, {"a": "b"})
    assert (request.store, request.capacity_mb, request.opts) == ("fast", 2000, {"VolumeStore": "fast",
                                                                                 "cAPACITy": "2G"})
    assert len(create_request("", "", None, None).name) == 36  # a UUID when no name is given


def test_plan_mounts_rewrites_anonymous_keys():
    config = {"Volumes": {"/data/db": {}, "/data/configdb": {}}}
    host = {"Binds": ["named:/data/db", "ro-vol:/r:ro"]}
    plan = plan_mounts(config, host)
    assert [(m.name, m.dest, m.flags, m.anonymous) for m in plan if not m.anonymous] == [
        ("named", "/data/db", "rw", False), ("ro-vol", "/r", "ro", False)]
    (anon,) = [m for m in plan if m.anonymous]
    assert anon.dest == "/data/configdb" and anon.flags == "rw"
    assert sorted(config["Volumes"]) == sorted(["named:/data/db:rw", f"{anon.name}:/data/configdb:rw"])


@pytest.mark.parametrize("bind, text", [
    ("/dir:/dir", "Bad request error from portlayer: mounting directories as a data volume is not supported."),
    ("a:b:c:d", "volume bind input is invalid: -v a:b:c:d"),
    ("v:relative", "mount path must be absolute"),
    ("v:/x:z", '"z" flag (SELinux relabeling)'), ("v:/x:Z", '"Z" flag'),
    ("v:/x:rshared", '"rshared" flag (mount propagation)'), ("v:/x:ro,rw", "invalid mode: ro,rw"),
    ("v:/x:weird", "invalid mode: weird")])
def test_plan_mounts_refusals(bind, text):
    status, text_out = message(plan_mounts, {}, {"Binds": [bind]})
    assert status == 400 and text in text_out


def test_duplicate_mount_point():
    assert message(plan_mounts, {}, {"Binds": ["a:/x", "b:/x"]}) == (400, "Duplicate mount point: /x")
