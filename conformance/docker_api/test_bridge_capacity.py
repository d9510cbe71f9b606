"""The default bridge network holds far more than one /24 of containers (Docker's own bridge is a /16): every container
created on it gets an address of its own at create, past the 254 a /24 has, and one of the later ones answers on its
address by name from another container. Its own VCH, since it fills the bridge with a few hundred containers."""
from __future__ import annotations

import ipaddress
import json
from concurrent.futures import ThreadPoolExecutor

from .conftest import ok

COUNT = 300  # more than the 253 addresses a /24 bridge had for containers
PINGED = "2 packets transmitted, 2 packets received"


def test_more_than_a_slash_24_of_containers_on_the_default_bridge(docker_cli, docker_client, busybox):
    bridge = json.loads(ok(docker_cli("network", "inspect", "bridge")))[0]
    subnet = ipaddress.ip_network(bridge["IPAM"]["Config"][0]["Subnet"])
    gateway = ipaddress.ip_address(bridge["IPAM"]["Config"][0]["Gateway"])
    assert subnet.num_addresses - 3 >= COUNT, subnet  # network, broadcast and gateway are no container's

    api = docker_client.api

    def create(index: int) -> str:
        return api.create_container(busybox, command=["sleep", "600"], name=f"crowd-{index}")["Id"]

    with ThreadPoolExecutor(4) as pool:  # the VCH takes creates in parallel; their addresses must not collide
        ids = list(pool.map(create, range(COUNT)))
    assert len(set(ids)) == COUNT

    # the addresses as the real CLI shows them: one each, all distinct, all in the bridge's subnet
    inspected = json.loads(ok(docker_cli("inspect", *ids, timeout=120)))
    addresses = [ipaddress.ip_address(c["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]) for c in inspected]
    assert len(set(addresses)) == COUNT
    assert all(a in subnet and a != gateway for a in addresses)
    assert sum(1 for a in addresses if a not in ipaddress.ip_network(f"{gateway}/24", strict=False)) > 0
    members = json.loads(ok(docker_cli("network", "inspect", "bridge")))[0]["Containers"]
    assert set(ids) <= set(members)

    # one beyond the first /24 of the bridge runs and is reachable by name on its address
    last = max(range(COUNT), key=lambda i: addresses[i])
    assert addresses[last] not in ipaddress.ip_network(f"{gateway}/24", strict=False)
    ok(docker_cli("start", f"crowd-{last}", timeout=120))
    out = ok(docker_cli("run", "--rm", busybox, "ping", "-c2", f"crowd-{last}", timeout=120))
    assert PINGED in out and str(addresses[last]) in out

    # and the next create still gets an address
    extra = ok(docker_cli("create", "--name", "one-more", busybox, "true")).strip()
    ip = json.loads(ok(docker_cli("inspect", extra)))[0]["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    assert ipaddress.ip_address(ip) in subnet and ipaddress.ip_address(ip) not in addresses
