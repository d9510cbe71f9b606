"""vic-machine's flag values parsed as VIC parses them: the target, Go durations, datastore paths, names."""
from __future__ import annotations

import pytest

from vic_ref.machine import flags
from vic_ref.machine.flags import UsageError


@pytest.mark.parametrize("text, sdk, dc, user, password", [
    ("https://vc.example.com/sdk", "https://vc.example.com/sdk", None, None, None),
    ("vc.example.com", "https://vc.example.com/sdk", None, None, None),
    ("vc.example.com/dc1", "https://vc.example.com/sdk", "dc1", None, None),
    ("root:p%40ss@10.0.0.1:8443/dc%201", "https://10.0.0.1:8443/sdk", "dc 1", "root", "p@ss"),
    ("http://127.0.0.1:8989/sdk", "http://127.0.0.1:8989/sdk", None, None, None),
    ("http://127.0.0.1:8989/sdk/DC0", "http://127.0.0.1:8989/sdk", "DC0", None, None),
    ("https://user@host/", "https://host/sdk", None, "user", None),
])
def test_parse_target(text, sdk, dc, user, password):
    target = flags.parse_target(text)
    assert (target.sdk_url, target.datacenter, target.user, target.password) == (sdk, dc, user, password)
    assert "@" not in target.host


@pytest.mark.parametrize("text", ["", "ftp://host/sdk", "https:///sdk"])
def test_parse_target_rejects(text):
    with pytest.raises(UsageError):
        flags.parse_target(text)


@pytest.mark.parametrize("text, seconds", [
    ("3m0s", 180.0), ("90s", 90.0), ("1h", 3600.0), ("1h2m3.5s", 3723.5), ("500ms", 0.5), ("1.5m", 90.0),
    ("42", 42.0), ("2.5", 2.5), ("+10s", 10.0),
])
def test_parse_duration(text, seconds):
    assert flags.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "3x", "m", "-1s", "-5", "1s garbage", "s1"])
def test_parse_duration_rejects(text):
    with pytest.raises(UsageError):
        flags.parse_duration(text)


@pytest.mark.parametrize("seconds, text", [
    (180, "3m0s"), (1, "1s"), (90, "1m30s"), (3600, "1h0m0s"), (0.5, "500ms"), (1.5, "1.5s"), (0, "0s"),
])
def test_format_duration_is_go_like(seconds, text):
    assert flags.format_duration(seconds) == text
    assert flags.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text, value", [("true", True), ("1", True), ("false", False), ("F", False)])
def test_parse_bool(text, value):
    assert flags.parse_bool(text) is value


def test_parse_bool_rejects():
    with pytest.raises(UsageError):
        flags.parse_bool("maybe")


@pytest.mark.parametrize("text, parsed", [
    ("LocalDS_0", ("LocalDS_0", "")), ("LocalDS_0/images/x", ("LocalDS_0", "images/x")),
    ("ds://LocalDS_0/p", ("LocalDS_0", "p")), ("[LocalDS_0] some/path", ("LocalDS_0", "some/path")),
    ("my%20ds/p/", ("my ds", "p")),
])
def test_datastore_path(text, parsed):
    assert flags.datastore_path(text) == parsed


def test_datastore_path_rejects_other_schemes():
    with pytest.raises(UsageError, match="bad scheme"):
        flags.datastore_path("nfs://host/share")


@pytest.mark.parametrize("text, label, store", [
    ("LocalDS_0/vch1-vols:default", "default", "[LocalDS_0] vch1-vols"),
    ("LocalDS_0:default", "default", "[LocalDS_0]"),
    ("ds://LocalDS_0/a/b:fast", "fast", "[LocalDS_0] a/b"),
])
def test_volume_store(text, label, store):
    assert flags.volume_store(text) == (label, store)


@pytest.mark.parametrize("text", ["LocalDS_0", "LocalDS_0/p:", ":label", "ds/p:bad label", "ds/p?x=1:label"])
def test_volume_store_rejects_with_vics_text(text):
    with pytest.raises(UsageError, match="volume store input must be in format"):
        flags.volume_store(text)


def test_name_rules():
    assert flags.check_name("vch-1") == "vch-1"
    with pytest.raises(UsageError, match="exceeds the permitted 31 characters limit"):
        flags.check_name("x" * 32)
    with pytest.raises(UsageError):
        flags.check_name("a/b")


def test_name_convention_needs_a_token():
    assert flags.check_name_convention("web-{name}") == "web-{name}"
    assert flags.check_name_convention("{id}") == "{id}"
    with pytest.raises(UsageError, match=r"Container name convention must include \{id\} or \{name\} token"):
        flags.check_name_convention("web")


def test_network_and_port():
    assert flags.check_network("172.16.0.0/12") == "172.16.0.0/12"
    assert flags.check_network("10.1.2.3/8") == "10.0.0.0/8"
    with pytest.raises(UsageError):
        flags.check_network("not-a-net")
    assert flags.check_port("2376") == 2376
    for bad in ("0", "70000", "x"):
        with pytest.raises(UsageError):
            flags.check_port(bad)


def test_volume_store_nfs_target_keeps_its_mount_options():
    url = "nfs://nfs.example.com/mnt/nfs-vol?uid=0&gid=0&proto=tcp&port=2049"
    assert flags.volume_store(f"{url}:nfsfqdn") == ("nfsfqdn", url)


@pytest.mark.parametrize("text, missing", [("nfs:///mnt/vol:x", "host"), ("nfs://host:x", "path")])
def test_volume_store_nfs_target_needs_host_and_path(text, missing):
    with pytest.raises(UsageError, match=f"is missing the {missing} field"):
        flags.volume_store(text)
