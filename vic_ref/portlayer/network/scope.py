"""Scopes (Docker's networks) and their address management, on loopback ranges.

A VCH owns one loopback range (`Network.bridge_ip_range` of its config, e.g. 127.42.0.0/16; the whole of 127/8 is
local, so no address needs configuring). The default `bridge` network is its first quarter, at most a /18 (16,381
containers in a /16 range; Docker's own bridge is a /16, VIC's too), never narrower than a /24. User networks are
`NETWORK_WIDTH`-bit slices of the rest (VIC's `--bridge-network-width`), the next free one unless `--subnet` says
otherwise. A network's first address is its gateway and its name server; containers get the following ones.
A bridge defined by an earlier VCH (a /24, before the bridge grew) keeps its subnet: definitions persist, and the
slices next to it stay free for user networks as before.

A scope's definition (`ScopeDefinition`) is what persists (hidden keys of the appliance VM, `store.py`); which
addresses are taken is not kept anywhere: it is the set of container endpoints, rebuilt from the container VMs.
"""
from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ... import errors
from ...config.extraconfig import struct, vic

DEFAULT_SCOPE = "bridge"
BRIDGE_DRIVER = "bridge"
NETWORK_WIDTH = 24  # each user network's prefix length inside the VCH's range
BRIDGE_WIDTH = 18  # the widest default bridge: 16,381 containers; the rest of a /16 is 192 user networks
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
PREDEFINED = (DEFAULT_SCOPE,)

# moby's texts (libnetwork/error.go, ipamapi/contract.go, daemon/network.go)
NO_POOL = "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
POOL_OVERLAP = "invalid pool request: Pool overlaps with other one on this address space"
NO_ADDRESSES = "no available addresses on this pool"
ADDRESS_IN_USE = "Address already in use"


@struct
class ScopeDefinition:
    """One network as it persists: identity, addresses, and Docker's labels and options (JSON)."""
    id: str = vic("id", "hidden")
    name: str = vic("name", "hidden")
    driver: str = vic("type", "hidden")
    subnet: str = vic("subnet", "hidden")
    gateway: str = vic("gateway", "hidden")
    ip_range: str = vic("iprange", "hidden")
    internal: bool = vic("internal", "hidden")
    created: str = vic("created", "hidden")
    labels: str = vic("labels", "hidden")
    options: str = vic("options", "hidden")


class NetworkNotFound(errors.NotFound):
    def __init__(self, ref: str):
        super().__init__(f"network {ref} not found")


class NetworkExists(errors.AlreadyExists):
    def __init__(self, name: str):
        super().__init__(f"network with name {name} already exists")


class PoolExhausted(errors.Unavailable):
    def __init__(self):
        super().__init__(NO_ADDRESSES)


@dataclass
class Scope:
    definition: ScopeDefinition

    @property
    def id(self) -> str:
        return self.definition.id

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def driver(self) -> str:
        return self.definition.driver or BRIDGE_DRIVER

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.definition.subnet)

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        if self.definition.gateway:
            return ipaddress.IPv4Address(self.definition.gateway)
        return next(self.subnet.hosts())

    @property
    def pool(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.definition.ip_range) if self.definition.ip_range else self.subnet

    @property
    def labels(self) -> dict[str, str]:
        return json.loads(self.definition.labels) if self.definition.labels else {}

    @property
    def options(self) -> dict[str, str]:
        return json.loads(self.definition.options) if self.definition.options else {}

    @property
    def predefined(self) -> bool:
        return self.name in PREDEFINED

    def allocate(self, used: Iterable[ipaddress.IPv4Address], start: int = 0) -> ipaddress.IPv4Address:
        """The first free address of the pool (never the gateway, the subnet's network or broadcast address), looking
        from address `start` (an int) on: the caller knows every address below it is taken, so a big pool isn't
        walked from its start on every allocation."""
        taken = used if isinstance(used, (set, frozenset, Mapping)) else set(used)
        pool, subnet = self.pool, self.subnet
        first, last = int(pool.network_address), int(pool.broadcast_address)
        if pool.prefixlen < 31:
            first, last = first + 1, last - 1
        first = max(first, int(subnet.network_address) + 1, start)
        last = min(last, int(subnet.broadcast_address) - 1)
        gateway = self.gateway
        for value in range(first, last + 1):
            ip = ipaddress.IPv4Address(value)
            if ip != gateway and ip not in taken:
                return ip
        raise PoolExhausted()

    def check_static(self, ip: ipaddress.IPv4Address, used: Iterable[ipaddress.IPv4Address]) -> None:
        """A user-chosen address (`--ip`): inside the subnet, not the gateway, not taken."""
        if ip not in self.subnet or ip in (self.subnet.network_address, self.subnet.broadcast_address):
            raise errors.InvalidArgument(f"no configured subnet or ip-range contain the IP address {ip}")
        taken = used if isinstance(used, (set, frozenset, Mapping)) else set(used)
        if ip == self.gateway or ip in taken:
            raise errors.Conflict(ADDRESS_IN_USE)


# -- making definitions ------------------------------------------------------------------------------------------
def new_id() -> str:
    return secrets.token_hex(32)


def bridge_id(vch_id: str) -> str:
    """The default network's ID: derived from the VCH's, so it is the same however often it is rebuilt."""
    return hashlib.sha256(f"vic-ref bridge {vch_id}".encode()).hexdigest()


def endpoint_id(container_id: str, network_id: str) -> str:
    return hashlib.sha256(f"{container_id}/{network_id}".encode()).hexdigest()


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def vch_range(text: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(text, strict=False)
    except ValueError as err:
        raise errors.InvalidArgument(f"invalid bridge network range {text!r}: {err}") from None
    if not net.subnet_of(LOOPBACK):
        raise errors.InvalidArgument(f"bridge network range {net} is not a loopback range (127.0.0.0/8)")
    return net


def slices(space: ipaddress.IPv4Network) -> Iterable[ipaddress.IPv4Network]:
    """The VCH range cut into network-sized slices (the range itself if it is that narrow already)."""
    if space.prefixlen >= NETWORK_WIDTH:
        return [space]
    return space.subnets(new_prefix=NETWORK_WIDTH)


def bridge_subnet(space: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    """The default bridge's subnet in a new VCH: the first quarter of the range, at most a /18, at least a /24 (or the
    whole range, when that is narrower)."""
    prefix = min(max(BRIDGE_WIDTH, space.prefixlen + 2), NETWORK_WIDTH)
    if space.prefixlen >= prefix:
        return space
    return next(space.subnets(new_prefix=prefix))


def default_bridge(vch_id: str, space: ipaddress.IPv4Network) -> ScopeDefinition:
    subnet = bridge_subnet(space)
    return ScopeDefinition(id=bridge_id(vch_id), name=DEFAULT_SCOPE, driver=BRIDGE_DRIVER, subnet=str(subnet),
                           gateway=str(next(subnet.hosts())), created=now_rfc3339(),
                           options=json.dumps({"com.docker.network.bridge.default_bridge": "true",
                                               "com.docker.network.bridge.name": "bridge0"}))


def next_subnet(space: ipaddress.IPv4Network, taken: Iterable[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    taken = list(taken)
    for candidate in slices(space):
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    raise errors.Unavailable(NO_POOL)


def user_definition(name: str, space: ipaddress.IPv4Network, taken: list[ipaddress.IPv4Network], *,
                    driver: str = "", subnet: str = "", gateway: str = "", ip_range: str = "",
                    internal: bool = False, labels: dict | None = None, options: dict | None = None
                    ) -> ScopeDefinition:
    """A new user network's definition: the next free slice of the VCH's range, or the `--subnet` given (which must
    be loopback and overlap no other network of this VCH)."""
    if driver and driver != BRIDGE_DRIVER:
        raise errors.NotFound(f'plugin "{driver}" not found')
    if subnet:
        try:
            net = ipaddress.IPv4Network(subnet, strict=False)
        except ValueError:
            raise errors.InvalidArgument(f"invalid subnet {subnet}: invalid CIDR address: {subnet}") from None
        if not net.subnet_of(LOOPBACK):
            raise errors.InvalidArgument(f"subnet {net} is not a loopback range: vic-ref networks live in "
                                         f"127.0.0.0/8, where containers reach each other on one machine")
        if any(net.overlaps(t) for t in taken):
            raise errors.Conflict(POOL_OVERLAP)
    else:
        if gateway or ip_range:
            raise errors.InvalidArgument("every ip-range or gateway must have a corresponding subnet")
        net = next_subnet(space, taken)
    gw = next(net.hosts())
    if gateway:
        try:
            gw = ipaddress.IPv4Address(gateway)
        except ValueError:
            raise errors.InvalidArgument(f"invalid gateway address {gateway}") from None
        if gw not in net:
            raise errors.InvalidArgument(f"gateway {gw} is not in subnet {net}")
    if ip_range:
        try:
            pool = ipaddress.IPv4Network(ip_range, strict=False)
        except ValueError:
            raise errors.InvalidArgument(f"invalid ip-range {ip_range}") from None
        if not pool.subnet_of(net):
            raise errors.InvalidArgument(f"ip-range {pool} is not in subnet {net}")
        ip_range = str(pool)
    return ScopeDefinition(id=new_id(), name=name, driver=BRIDGE_DRIVER, subnet=str(net), gateway=str(gw),
                           ip_range=ip_range, internal=internal, created=now_rfc3339(),
                           labels=json.dumps(labels) if labels else "", options=json.dumps(options) if options else "")


__all__ = ["Scope", "ScopeDefinition", "NetworkNotFound", "NetworkExists", "PoolExhausted", "DEFAULT_SCOPE",
           "NETWORK_WIDTH", "BRIDGE_WIDTH", "bridge_subnet", "default_bridge", "user_definition", "next_subnet",
           "vch_range", "slices", "bridge_id", "endpoint_id", "new_id"]
