"""The network component in a port layer on the embedded sim: endpoints joined at create, the name server's answers
(names, short IDs, aliases, links by who asks), rename, connect/disconnect, and a rebuild from vSphere."""
from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from vic_ref import errors
from vic_ref.config.vch import Network as NetworkConfig
from vic_ref.portlayer.network import EndpointRequest
from vic_ref.portlayer.tests.harness import VchEnv
from vic_ref.vsphere import vim

RANGE = "127.198.0.0/16"


@pytest.fixture(scope="module")
def env(sim_target):
    env = VchEnv(sim_target.url, sim_target.user, sim_target.password)
    env.with_config(network=dataclasses.replace(NetworkConfig(), bridge_ip_range=RANGE))
    # the appliance VM, where network definitions persist (an empty VM of the VCH's name in its folder)
    spec = vim.vm.ConfigSpec(name=env.name, guestId="otherLinux64Guest", numCPUs=1, memoryMB=64,
                             files=vim.vm.FileInfo(vmPathName=f"[{env.datastore}] {env.name}"))
    env.session.run_task(env.op, env.folder.CreateVM_Task, config=spec, pool=env.session.pool)
    yield env
    env.close()


def create(pl, op, image, name, requests=None, links=()):
    handle = pl.exec.create_handle(op, name=name)
    pl.exec.join_image(op, handle, image, repo="busybox")
    pl.exec.join_task(op, handle, path="sh")
    try:
        pl.network.join(op, handle, requests or [EndpointRequest("bridge")], links)
    except BaseException:
        pl.exec.discard(op, handle)  # as the personality does
        pl.network.release(handle.id)
        raise
    pl.exec.commit(op, handle)
    return handle.id


def test_endpoints_names_links_and_rename(portlayer, image, op):
    pl = portlayer
    bridge = pl.network.scope("bridge")
    gateway = str(bridge.gateway)
    assert gateway == "127.198.0.1" and gateway in pl.network.dns.addresses
    db = create(pl, op, image, "db")
    endpoint = pl.exec.info(db).config.networks["bridge"]
    db_ip = str(endpoint.ip.ip)
    assert db_ip == "127.198.0.2" and [str(s) for s in endpoint.network.nameservers] == [gateway]
    assert pl.network.resolve(gateway, "db") is None  # not running: no answer (Docker's rule)
    pl.exec.start(op, db)
    assert pl.network.resolve(gateway, "db") == [db_ip] == pl.network.resolve(gateway, db[:12])

    app = create(pl, op, image, "app", links=[("db", "database")])
    app_endpoint = pl.exec.info(app).config.networks["bridge"]
    own = str(app_endpoint.ip.ip)
    # a linking container asks on its own address, which the name server now serves for it
    assert [str(s) for s in app_endpoint.network.nameservers] == [own] and own in pl.network.dns.addresses
    assert pl.network.resolve(own, "database") == [db_ip] and pl.network.resolve(gateway, "database") is None
    assert pl.network.links_of(pl.exec.info(app).config) == ["/db:/app/database"]

    pl.exec.rename(op, "db", "store")
    assert pl.network.resolve(gateway, "store") == [db_ip] and pl.network.resolve(gateway, "db") is None
    assert pl.network.resolve(own, "database") == [db_ip]  # the link follows the target, kept by ID
    assert pl.network.links_of(pl.exec.info(app).config) == ["/store:/app/database"]

    with pytest.raises(errors.NotFound, match="could not get container for nosuch"):
        create(pl, op, image, "bad", links=[("nosuch", "x")])
    assert "bad" not in pl.names
    for cid in (app, db):
        pl.exec.remove(op, cid, force=True)
    assert own not in pl.network.dns.addresses and pl.network.resolve(gateway, "store") is None


def test_user_networks_connect_disconnect_and_rebuild(env, portlayer, image, op):
    pl = portlayer
    net = pl.network.create_scope(op, "front")
    assert str(net.subnet) == "127.198.64.0/24" and str(net.gateway) in pl.network.dns.addresses
    with pytest.raises(errors.Conflict, match="^network with name front already exists$"):
        pl.network.create_scope(op, "front")
    web = create(pl, op, image, "web", [EndpointRequest("front", aliases=["www"])])
    pl.exec.start(op, web)
    web_ip = str(pl.exec.info(web).config.networks["front"].ip.ip)
    assert pl.network.resolve(str(net.gateway), "www") == [web_ip]
    assert pl.network.resolve(str(pl.network.scope("bridge").gateway), "web") is None
    pl.network.connect(op, web, "bridge")
    config = pl.exec.info(web).config
    assert set(config.networks) == {"front", "bridge"}
    with pytest.raises(errors.PermissionDenied, match="has active endpoints"):
        pl.network.remove_scope(op, "front")

    # a new port layer on the same vSphere state: the same networks, addresses and answers
    fresh = env.portlayer(start=False)
    pl.close(op)
    try:
        fresh.start(op)
        assert fresh.network.scope("front").id == net.id
        assert fresh.network.resolve(str(net.gateway), "www") == [web_ip]
        fresh.network.disconnect(op, web, "front")
        with pytest.raises(errors.InvalidArgument, match="is not connected to network front"):
            fresh.network.disconnect(op, web, "front")
        fresh.exec.remove(op, web, force=True)
        fresh.network.remove_scope(op, "front")
        with pytest.raises(errors.NotFound, match="^network front not found$"):
            fresh.network.scope("front")
        with pytest.raises(errors.PermissionDenied, match="pre-defined"):
            fresh.network.remove_scope(op, "bridge")
    finally:
        fresh.close(op)


def test_a_bridge_stored_as_a_slash_24_keeps_its_subnet(env, image, op):
    """A VCH from before the default bridge grew stored it as a /24: a port layer started on that state (an upgraded
    or restarted VCH) keeps the stored subnet and the addresses in it, and new user networks take the slices after it,
    as they did."""
    pl = env.portlayer()
    stored = pl.network.scope("bridge").definition
    assert stored.subnet == "127.198.0.0/18"
    old = dataclasses.replace(stored, subnet="127.198.0.0/24")
    pl.network.store.save(op, "bridge", old)
    pl.close(op)

    upgraded = env.portlayer()
    try:
        bridge = upgraded.network.scope("bridge")
        assert (str(bridge.subnet), bridge.id) == ("127.198.0.0/24", stored.id)
        cid = create(upgraded, op, image, "on-old-bridge")
        assert upgraded.exec.info(cid).config.networks["bridge"].ip in ipaddress.ip_interface("127.198.0.0/24").network
        net = upgraded.network.create_scope(op, "after-old-bridge")
        assert str(net.subnet) == "127.198.1.0/24"
        upgraded.network.remove_scope(op, "after-old-bridge")
        upgraded.exec.remove(op, cid, force=True)
    finally:
        upgraded.network.store.save(op, "bridge", stored)
        upgraded.close(op)
