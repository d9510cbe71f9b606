"""The VCH config: keys as VIC lays them out, secrets sealed, round trips, validation."""
from __future__ import annotations

import pytest

from vic_ref import errors
from vic_ref.config import vch
from vic_ref.config.secret import GUESTINFO_SECRET_KEY


def sample(**kwargs) -> vch.VCHConfig:
    kwargs.setdefault("volume_stores", {"default": "[LocalDS_0] volumes", "fast": "[vsanDatastore] v"})
    return vch.new_config("vch1", "http://127.0.0.1:8989/sdk", "administrator@vsphere.local", "Admin!23",
                          image_store="[LocalDS_0]", datacenter="DC0", compute_resource="DC0_C0", **kwargs)


def test_defaults():
    cfg = sample()
    assert cfg.network.bridge_ip_range == "127.42.0.0/16" == vch.DEFAULT_BRIDGE_RANGE
    assert (cfg.docker.address, cfg.docker.port, cfg.tls) == ("127.0.0.1", 2375, False)
    assert cfg.container.name_convention == "{name}-{id}"
    assert cfg.plugin_version == 10 and cfg.version == vch.APPLIANCE_VERSION
    assert cfg.docker_host == "tcp://127.0.0.1:2375"
    assert sample(host_cert=b"c", host_key=b"k").docker.port == 2376
    assert sample().id != sample().id  # a fresh UUID each time
    cfg.validate()


def test_keys_follow_vics_layout():
    data = vch.encode(sample())
    assert data["guestinfo.vice./init/common/name"] == "vch1"
    assert data["guestinfo.vice./init/version/PluginVersion"] == "10"
    assert data["guestinfo.vice./connect/target"] == "http://127.0.0.1:8989/sdk"
    assert data["guestinfo.vice./connect/username"] == "administrator@vsphere.local"
    assert data["guestinfo.vice./storage/volume_stores|default"] == "[LocalDS_0] volumes"
    assert data["guestinfo.vice./network/bridge-ip-range"] == "127.42.0.0/16"
    assert data["guestinfo.vice./docker/port"] == "2375"
    assert vch.session_started_key() == "guestinfo.vice..init.sessions|docker-personality.started"
    # everything is guest-visible: the appliance reads it all over the guest channel
    assert all(key.startswith("guestinfo.") for key in data)


def test_secrets_are_sealed_and_open_again():
    cfg = sample(host_cert=b"CERT", host_key=b"-----BEGIN PRIVATE KEY-----")
    data = vch.encode(cfg)
    assert GUESTINFO_SECRET_KEY in data
    assert "Admin!23" not in data["guestinfo.vice./connect/token@secret"]
    assert all("Admin!23" not in value for key, value in data.items())
    assert "host_key@secret" in " ".join(data)
    back = vch.decode(data)
    assert back == cfg
    assert back.connection.token == "Admin!23" and back.cert.host_key == b"-----BEGIN PRIVATE KEY-----"
    assert back.tls


def test_decode_ignores_other_keys_and_reads_the_guests_view():
    data = vch.encode(sample())
    data.update({"nvram": "vch1.nvram", "common/name": "hidden", "guestinfo.other": "x"})
    assert vch.decode(data) == vch.decode({k: v for k, v in data.items() if k.startswith("guestinfo.")})


def test_diff_rewrites_only_what_changed_and_keeps_the_seal():
    old = vch.encode(sample())
    cfg = vch.decode(old)
    cfg.docker.port = 3000
    secret = vch.secret_key_of(old)
    changes = dict(vch.diff({**old, "nvram": "x.nvram"}, vch.encode(cfg, secret)))
    assert changes["guestinfo.vice./docker/port"] == "3000"
    assert "nvram" not in changes and GUESTINFO_SECRET_KEY not in changes


@pytest.mark.parametrize("change,text", [
    (lambda c: setattr(c.init.common, "name", ""), "no VCH name"),
    (lambda c: setattr(c.init.common, "id", "nope"), "not a UUID"),
    (lambda c: setattr(c.storage, "image_store", "LocalDS_0"), "not a datastore path"),
    (lambda c: c.storage.volume_stores.update(bad="x"), "volume store bad"),
    (lambda c: setattr(c.network, "bridge_ip_range", "300.1.0.0/16"), "not a network"),
    (lambda c: setattr(c.docker, "port", 0), "out of range"),
    (lambda c: setattr(c.cert, "host_cert", b"x"), "both a host certificate and its key"),
])
def test_validation(change, text):
    cfg = sample()
    change(cfg)
    with pytest.raises(errors.InvalidArgument) as info:
        cfg.validate()
    assert text in str(info.value)
