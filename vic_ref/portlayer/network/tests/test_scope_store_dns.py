"""Scopes and IPAM, the persisted definitions, aliases, range choice, and the name server on its own."""
from __future__ import annotations

import ipaddress
import socket

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from vic_ref import errors
from vic_ref.config import ExecutorConfig, ExecutorConfigCommon
from vic_ref.portlayer.network import aliases, ranges, store
from vic_ref.portlayer.network.dns import NameServer
from vic_ref.portlayer.network.scope import (
    NO_POOL,
    POOL_OVERLAP,
    PoolExhausted,
    Scope,
    bridge_subnet,
    default_bridge,
    user_definition,
    vch_range,
)

SPACE = vch_range("127.42.0.0/16")


def test_bridge_and_user_networks_are_slices_of_the_vch_range():
    bridge = Scope(default_bridge("vch-id", SPACE))
    assert (str(bridge.subnet), str(bridge.gateway), bridge.name) == ("127.42.0.0/18", "127.42.0.1", "bridge")
    assert Scope(default_bridge("vch-id", SPACE)).id == bridge.id  # the same after every rebuild
    first = user_definition("a", SPACE, [bridge.subnet])
    assert (first.subnet, first.gateway) == ("127.42.64.0/24", "127.42.64.1")
    second = user_definition("b", SPACE, [bridge.subnet, ipaddress.ip_network(first.subnet)])
    assert second.subnet == "127.42.65.0/24"
    # a bridge an earlier VCH defined as a /24 keeps it: user networks go right after it, as they did
    old_bridge = ipaddress.ip_network("127.42.0.0/24")
    assert user_definition("a", SPACE, [old_bridge]).subnet == "127.42.1.0/24"
    with pytest.raises(errors.Conflict, match=POOL_OVERLAP):
        user_definition("c", SPACE, [bridge.subnet], subnet="127.42.0.128/25")
    with pytest.raises(errors.InvalidArgument, match="not a loopback range"):
        user_definition("c", SPACE, [], subnet="10.0.0.0/24")
    narrow = vch_range("127.60.0.0/24")
    assert str(Scope(default_bridge("x", narrow)).subnet) == "127.60.0.0/24"
    with pytest.raises(errors.Unavailable, match=NO_POOL):
        user_definition("c", narrow, [Scope(default_bridge("x", narrow)).subnet])
    # a narrower range: the bridge is its first quarter, never less than a /24
    assert str(bridge_subnet(vch_range("127.60.0.0/20"))) == "127.60.0.0/22"
    assert str(bridge_subnet(vch_range("127.60.0.0/23"))) == "127.60.0.0/24"
    with pytest.raises(errors.InvalidArgument):
        vch_range("192.168.0.0/16")


def test_allocation_skips_the_gateway_and_taken_addresses():
    scope = Scope(user_definition("small", SPACE, [], subnet="127.42.9.0/29"))
    assert str(scope.allocate([])) == "127.42.9.2"
    taken = [ipaddress.ip_address("127.42.9.2"), ipaddress.ip_address("127.42.9.3")]
    assert str(scope.allocate(taken)) == "127.42.9.4"
    with pytest.raises(PoolExhausted):
        scope.allocate([ipaddress.ip_address(f"127.42.9.{i}") for i in range(2, 7)])
    with pytest.raises(errors.Conflict):
        scope.check_static(ipaddress.ip_address("127.42.9.1"), [])
    # looking from a mark below which everything is taken finds the same first free address
    assert str(scope.allocate(set(taken), int(ipaddress.ip_address("127.42.9.4")))) == "127.42.9.4"


def test_the_default_bridge_has_room_for_thousands_of_containers():
    bridge = Scope(default_bridge("vch-id", SPACE))
    taken: set[ipaddress.IPv4Address] = set()
    mark = 0
    for _ in range(1000):
        ip = bridge.allocate(taken, mark)
        assert ip not in taken and ip in bridge.subnet and ip != bridge.gateway
        taken.add(ip)
        mark = int(ip) + 1
    # in order from the first after the gateway; inside a /18, .x.0 and .x.255 are ordinary addresses
    assert (str(min(taken)), str(max(taken))) == ("127.42.0.2", "127.42.3.233")


def test_definitions_round_trip_and_claim_only_their_own_keys():
    definitions = {"bridge": default_bridge("v", SPACE),
                   "my.net-1": user_definition("my.net-1", SPACE, [], labels={"com.example/x": "1"})}
    encoded = store.encode(definitions)
    assert all(k.startswith("scopes") for k in encoded)
    assert store.decode(encoded) == definitions
    # a VCH's guestinfo beside them is never deleted by a save (it once was: the whole appliance config went)
    assert not store._owned("guestinfo.vice./init/common/name") and store._owned("scopes|bridge/subnet")


def test_rename_rewrites_own_aliases_on_every_scope_and_keeps_links():
    from vic_ref.config import ContainerNetwork, NetworkEndpoint
    cid, target = "a" * 64, "b" * 64
    config = ExecutorConfig(common=ExecutorConfigCommon(id=cid, name="old"))
    for scope in ("bridge", "net1"):
        config.networks[scope] = NetworkEndpoint(network=ContainerNetwork(aliases=[
            aliases.own(scope, "old"), aliases.own(scope, cid[:12]), aliases.link(target, "db")]))
    aliases.rename(config, "old", "new")
    for scope in ("bridge", "net1"):
        entries = config.networks[scope].network.aliases
        assert aliases.own_aliases(scope, entries) == ["new", cid[:12]]
        assert aliases.links(scope, entries) == [(target, "db")]


def test_ranges_are_locked_by_whoever_picked_them(tmp_path):
    first, lock1 = ranges.pick(str(tmp_path))
    second, lock2 = ranges.pick(str(tmp_path))
    assert first != second and first.startswith("127.") and first.endswith(".0.0/16")
    assert ranges.lock(first, str(tmp_path)) is None
    lock1.close()
    again = ranges.lock(first, str(tmp_path))
    assert again is not None
    again.close()
    lock2.close()


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


@pytest.fixture
def server():
    address = "127.199.3.1"
    names = {"web": ["127.199.3.5"], "two": ["127.199.3.6", "127.199.3.7"]}
    ns = NameServer(lambda where, qname: names.get(qname) if where == address else None,
                    port=_free_port(address), forward=None)
    ns.bind(address)
    yield ns, address
    ns.close()


def ask(ns, address, name, qtype="A", tcp=False):
    question = DNSRecord.question(name, qtype)
    return DNSRecord.parse(question.send(address, ns.port, tcp=tcp, timeout=3))


def test_name_server_answers_udp_and_tcp(server):
    ns, address = server
    reply = ask(ns, address, "web")
    assert [str(r.rdata) for r in reply.rr] == ["127.199.3.5"] and reply.header.aa
    assert [str(r.rdata) for r in ask(ns, address, "TWO", tcp=True).rr] == ["127.199.3.6", "127.199.3.7"]
    aaaa = ask(ns, address, "web", "AAAA")
    assert aaaa.header.rcode == RCODE.NOERROR and not aaaa.rr  # known, no IPv6: no retries by the client
    assert ask(ns, address, "nosuch").header.rcode == RCODE.NXDOMAIN
    assert ask(ns, address, "nosuch.example.com").header.rcode == RCODE.REFUSED  # nowhere to forward
    assert QTYPE.A == 1


def test_a_second_server_cannot_take_the_address(server):
    ns, address = server
    other = NameServer(lambda *_: None, port=ns.port)
    try:
        with pytest.raises(OSError):
            other.bind(address)
        assert other.listen([address]).keys() == {address}
    finally:
        other.close()
    ns.unbind(address)
    with pytest.raises(OSError):
        ask(ns, address, "web", tcp=True)  # closed: connection refused


def test_dotted_names_we_do_not_know_go_to_the_host_resolver():
    upstream_address, address = "127.199.4.1", "127.199.5.1"
    upstream = NameServer(lambda where, qname: ["127.199.4.9"] if qname == "svc.example.com" else None,
                          port=_free_port(upstream_address))
    upstream.bind(upstream_address)
    ns = NameServer(lambda where, qname: None, port=_free_port(address), forward=f"{upstream_address}:{upstream.port}")
    ns.bind(address)
    try:
        assert [str(r.rdata) for r in ask(ns, address, "svc.example.com").rr] == ["127.199.4.9"]
        assert [str(r.rdata) for r in ask(ns, address, "svc.example.com", tcp=True).rr] == ["127.199.4.9"]
        assert ask(ns, address, "svc").header.rcode == RCODE.NXDOMAIN  # single labels are never forwarded
    finally:
        ns.close()
        upstream.close()
