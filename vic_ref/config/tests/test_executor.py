"""The container executor config: the key examples of vic-behaviour.md §4.2, round trips, guest views."""
from __future__ import annotations

import dataclasses
import ipaddress

from hypothesis import HealthCheck, given, settings

from vic_ref.config import (
    PLUGIN_VERSION,
    URL,
    Build,
    Cmd,
    Common,
    ContainerNetwork,
    ExecutorConfig,
    ExecutorConfigCommon,
    MountSpec,
    NetworkEndpoint,
    SessionConfig,
    data_version,
    decode,
    decode_visible_to_guest,
    diff,
    encode,
    encode_for_guest,
    extraconfig,
    key_for,
)

from .strategies import executor_configs

CID = "6ab1f2a0c3d44e5f8a9b0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f7"
EID = "e0f1a2b3c4d5e6f76ab1f2a0c3d44e5f8a9b0c1d2e3f405162738495a6b7c8d9"


def container() -> ExecutorConfig:
    return ExecutorConfig(
        common=ExecutorConfigCommon(id=CID, name="web"),
        create_time=1_700_000_000_000_000_000,
        sessions={CID: SessionConfig(common=Common(id=CID), cmd=Cmd(path="/bin/top", args=["/bin/top", "-b"],
                                                                    env=["PATH=/bin"], dir="/"),
                                     tty=True, stop_signal="TERM", started="true")},
        execs={EID: SessionConfig(common=Common(id=EID), cmd=Cmd(path="/bin/ls"))},
        mounts={"vol1": MountSpec(source=URL(scheme="label", path="vol1"), path="/data", mode="rw")},
        networks={"bridge": NetworkEndpoint(
            common=Common(id="1184"), assigned=ipaddress.ip_interface("172.16.0.2/16"),
            network=ContainerNetwork(common=Common(name="bridge"), type="bridge",
                                     nameservers=[ipaddress.ip_address("172.16.0.1")], aliases=["web"]))},
        key=b"-----BEGIN RSA PRIVATE KEY-----\n", layer_id="L1", image_id="I1", repo_name="busybox",
        version=Build(version="v1.5.0", build_number="1", plugin_version=PLUGIN_VERSION),
        annotations={"docker.stopsignal": "TERM"})


def test_keys_match_the_vic_examples():
    data = encode(container())
    assert data["guestinfo.vice./common/id"] == CID
    assert data["common/name"] == "web"  # DESIGN-DECISIONS §1: hidden
    assert "guestinfo.vice./common/name" not in data
    assert data["guestinfo.vice..createtime"] == "1700000000000000000"
    assert data[f"guestinfo.vice./sessions|{CID}/cmd/Args~"] == "/bin/top|-b"
    assert data[f"guestinfo.vice./sessions|{CID}/cmd/Args"] == "1"
    assert data[f"guestinfo.vice..sessions|{CID}.status"] == "0"
    assert data[f"guestinfo.vice..sessions|{CID}.started"] == "true"
    assert data[f"guestinfo.vice..sessions|{CID}.detail.stoptime"] == "0"
    assert data[f"guestinfo.vice./sessions|{CID}/stopSignal"] == "TERM"
    assert data[f"guestinfo.vice..execs|{EID}.status@non-persistent"] == "0"
    assert data["guestinfo.vice./execs@non-persistent"] == EID
    assert data["guestinfo.vice./mounts|vol1/source/Scheme"] == "label"
    assert data["guestinfo.vice./mounts|vol1/source/Path"] == "vol1"
    assert data["guestinfo.vice./mounts|vol1/dest"] == "/data"
    assert data["guestinfo.vice./networks|bridge/Common/id"] == "1184"
    assert data["guestinfo.vice./networks|bridge/network/Common/name"] == "bridge"
    assert data["guestinfo.vice..networks|bridge.network.type"] == "bridge"
    assert data["guestinfo.vice..networks|bridge.assigned.IP"] == "rBAAAg=="
    assert data["networks|bridge/network/aliases~"] == "web"
    assert data["guestinfo.vice./key"].startswith("LS0tLS1CRUdJTi")
    assert data["guestinfo.vice./layerid"] == "L1"
    assert data["guestinfo.vice./imageid"] == "I1"
    assert data["guestinfo.vice./repo"] == "busybox"
    assert data["guestinfo.vice./version/PluginVersion"] == "10"
    assert data["annotations"] == "docker.stopsignal"
    assert data["annotations|docker.stopsignal"] == "TERM"
    # hidden + non-persistent is invalid in VIC, so an exec's notes are never written
    assert f"execs|{EID}/common/notes" not in data and f"sessions|{CID}/common/notes" in data
    assert "" not in data.values()
    assert decode(data) == container()


def test_key_for_names_the_keys_the_port_layer_and_tether_use():
    assert key_for("sessions", CID, "exit_status") == f"guestinfo.vice..sessions|{CID}.status"
    assert key_for("execs", EID, "started") == f"guestinfo.vice..execs|{EID}.started@non-persistent"
    assert key_for("sessions", CID, "cmd", "args") == f"guestinfo.vice./sessions|{CID}/cmd/Args"
    assert key_for("common", "name") == "common/name"
    assert key_for("version", "plugin_version") == "guestinfo.vice./version/PluginVersion"


def test_guest_view_hides_hidden_keys_and_writes_only_read_write_ones():
    data = encode(container())
    seen = decode_visible_to_guest(data)
    assert seen.common.name == "" and seen.annotations == {} and seen.networks["bridge"].network.aliases == []
    assert seen.common.id == CID and seen.sessions[CID].cmd.args == ["/bin/top", "-b"]
    # the tether reports a launch: only the read-write keys leave the guest
    seen.sessions[CID].started = "true"
    seen.sessions[CID].exit_status = 137
    written = encode_for_guest(seen)
    assert all(k.startswith("guestinfo.") and "/" not in k for k in written)
    assert written[f"guestinfo.vice..sessions|{CID}.status"] == "137"
    assert f"guestinfo.vice./sessions|{CID}/cmd/Path" not in written


def test_diff_deletes_only_config_keys():
    old = {**encode(container()), "disk.EnableUUID": "true", "guestinfo.other": "x"}
    cfg = container()
    del cfg.execs[EID]
    cfg.common.name = "renamed"
    changes = dict(diff(old, encode(cfg)))
    assert changes["common/name"] == "renamed"
    assert changes[f"guestinfo.vice..execs|{EID}.status@non-persistent"] == ""
    assert changes["guestinfo.vice./execs@non-persistent"] == ""
    assert "disk.EnableUUID" not in changes and "guestinfo.other" not in changes
    assert decode(extraconfig.apply(old, diff(old, encode(cfg)))) == cfg


def test_data_version():
    assert data_version(encode(container())) == PLUGIN_VERSION
    assert data_version({}) == 0
    assert data_version(encode(ExecutorConfig())) == 0


def test_mount_label_and_url():
    assert MountSpec(source=URL.parse("label:vol1")).label == "vol1"
    assert str(URL.parse("nfs://host/export/share?uid=0")) == "nfs://host/export/share?uid=0"
    assert URL.parse("nfs://host/export").host == "host"


configs = executor_configs()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_round_trip(cfg):
    data = encode(cfg)
    assert "" not in data.values()
    assert decode(data) == cfg


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_guest_round_trip_keeps_visible_keys(cfg):
    data = encode(cfg)
    visible = extraconfig.visible_to_guest(data)
    assert extraconfig.visible_to_guest(encode(decode_visible_to_guest(data))) == visible
    assert all(extraconfig.guest_can_write(k) for k in encode_for_guest(cfg))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs, configs)
def test_diff_turns_one_config_into_another(a, b):
    old = {**encode(a), "disk.EnableUUID": "true"}
    result = extraconfig.apply(old, diff(old, encode(b)))
    assert decode(result) == b
    assert result["disk.EnableUUID"] == "true"


def test_dataclass_defaults_are_independent():
    one, two = ExecutorConfig(), ExecutorConfig()
    one.sessions["x"] = SessionConfig()
    assert two.sessions == {} and dataclasses.fields(ExecutorConfig)
