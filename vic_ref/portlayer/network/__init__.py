"""The network component of the port layer (VIC's `lib/portlayer/network`): scopes, IPAM, endpoints, aliases and the
VCH's name server.

    network = Network(session, vch_config, exec_, events)
    network.start(op)              # definitions from the appliance VM, endpoints from the containers, DNS up
    network.join(op, handle, [EndpointRequest("bridge", aliases=["web"])], links=[("db", "database")])
    network.connect(op, ref, "net1", aliases=[...]) / network.disconnect(op, ref, "net1")
    network.create_scope(op, "net1", subnet=...) / network.remove_scope(op, "net1")
    network.close(op)

State: network definitions persist as hidden keys of the appliance VM (`store.py`); everything else (which container
has which address and names) is the containers' own endpoints (`ExecutorConfig.networks`), read from the exec cache.
The index the name server answers from is built from that cache when the VCH starts, and a container's part of it is
replaced from the cache whenever an event of that container says it changed (so a rename, a start or a removal show in
the answers at once, and nothing is kept twice); one event costs the same however many containers the VCH has.

Addresses are assigned when a container joins a network (create or connect) and kept until it leaves (disconnect or
removal): a container keeps its address across restarts of itself and of the VCH (Docker assigns at start instead).

Name resolution: all containers share the host's network namespace, so every query arrives from 127.0.0.1 and the
source can't tell who asks. The name server therefore listens on each network's first address (the gateway, which
is what `resolv.conf` names) for the names every member of that network may resolve, and, for a container that needs
answers of its own (it declared links, or it is on more than one network), on that container's own address, which is
then its `resolv.conf` name server: there it also answers the link aliases and names from all its networks.
"""
from __future__ import annotations

import collections
import ipaddress
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ... import errors
from ...config import Common, ContainerNetwork, ExecutorConfig, IPRange, NetworkEndpoint
from ...trace import Operation
from . import aliases as names
from .dns import NameServer, host_resolver
from .scope import (
    DEFAULT_SCOPE,
    NetworkExists,
    NetworkNotFound,
    Scope,
    ScopeDefinition,
    default_bridge,
    endpoint_id,
    user_definition,
    vch_range,
)
from .store import ApplianceStore

SHORT_ID = 12
NETWORK_KEYS = "guestinfo.vice./networks"  # the endpoint keys a connect may write while the container runs


@dataclass
class EndpointRequest:
    """One network a container is to join: its scope (name or ID), extra aliases, an address of the user's choice."""
    scope: str
    aliases: list[str] = field(default_factory=list)
    ip: str = ""


@dataclass
class _Member:
    """A container on one network, as the index has it."""
    container_id: str
    name: str
    ip: ipaddress.IPv4Address
    running: bool
    aliases: list[str]
    links: list[tuple[str, str]]


@dataclass
class _Indexed:
    """What the index holds of one container, so its part can be taken out again."""
    scopes: list[str] = field(default_factory=list)
    listeners: list[str] = field(default_factory=list)  # own-resolver addresses
    link_targets: set[str] = field(default_factory=set)


class Network:
    def __init__(self, session, vch_config, exec_, events, *, dns_port: int = 53, forward: str | None = None):
        self.session = session
        self.config = vch_config
        self.exec = exec_
        self.events = events
        self.dns_port = dns_port
        self.forward = forward
        self.space = vch_range(vch_config.network.bridge_ip_range or "127.42.0.0/16")
        self.store: ApplianceStore | None = None
        self.dns: NameServer | None = None
        self._lock = threading.RLock()
        self._scopes: dict[str, Scope] = {}
        self._pending: dict[str, dict[str, ipaddress.IPv4Address]] = {}  # container id → scope → address
        self._members: dict[str, dict[str, _Member]] = {}  # scope name → container id → member
        self._listeners: dict[str, str] = {}  # own-resolver address → container id
        self._indexed: dict[str, _Indexed] = {}  # container id → its part of the index
        self._linkers: dict[str, set[str]] = {}  # target id → ids of the containers that link to it
        # scope name → address → how many hold it (members and pending reservations: the two overlap for a moment)
        self._taken: dict[str, collections.Counter] = {}
        self._free_from: dict[str, int] = {}  # scope name → every address of its pool below this one is taken
        self._unsubscribe = None
        self.dns_errors: dict[str, OSError] = {}

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def start(self, op: Operation) -> None:
        """Network definitions from the appliance VM (the default bridge made if missing), the endpoint index from
        the exec cache, the name server on every network's first address."""
        from ..events import EventFilter, FilterArgs
        inventory = self.exec.inventory
        self.store = ApplianceStore(self.session, inventory.folder if inventory else None, self.config.name)
        definitions = self.store.load(op)
        if DEFAULT_SCOPE not in definitions:
            definitions[DEFAULT_SCOPE] = default_bridge(self.config.id, self.space)
            self.store.save(op, DEFAULT_SCOPE, definitions[DEFAULT_SCOPE])
        with self._lock:
            self._scopes = {name: Scope(d) for name, d in definitions.items()}
        if self.dns is None:
            self.dns = NameServer(self.resolve, port=self.dns_port,
                                  forward=self.forward if self.forward is not None else host_resolver())
        self.refresh(op)
        _, self._unsubscribe = self.events.subscribe(
            lambda event: self.refresh_container(event.actor_id), EventFilter(FilterArgs({"type": ["container"]})))
        op.info("network: %d networks (%s), name server on %s", len(self._scopes), ", ".join(sorted(self._scopes)),
                ", ".join(sorted(self.dns.addresses)) or "nothing")

    def close(self, op: Operation) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.dns is not None:
            self.dns.close()
            self.dns = None

    # -- scopes ---------------------------------------------------------------------------------------------------
    def scopes(self) -> list[Scope]:
        with self._lock:
            return sorted(self._scopes.values(), key=lambda s: s.name)

    def scope(self, ref: str) -> Scope:
        """A network by full ID, exact name, or unique ID prefix (moby's FindNetwork)."""
        with self._lock:
            scopes = list(self._scopes.values())
        for s in scopes:
            if s.id == ref:
                return s
        for s in scopes:
            if s.name == ref:
                return s
        matches = [s for s in scopes if ref and s.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise errors.InvalidArgument(f"network {ref} is ambiguous ({len(matches)} matches found based on ID "
                                         "prefix)")
        raise NetworkNotFound(ref)

    def create_scope(self, op: Operation, name: str, **options: Any) -> Scope:
        """A user-defined bridge network (Docker's texts for a taken name and for address pools)."""
        from ..names import NAME_CHARS, NAME_PATTERN
        if not NAME_PATTERN.match(name or ""):
            raise errors.InvalidArgument(f'invalid name "{name}" for network: only {NAME_CHARS} are allowed')
        with self._lock:
            if name in self._scopes:
                raise NetworkExists(name)
            taken = [s.subnet for s in self._scopes.values()]
            definition = user_definition(name, self.space, taken, **options)
            scope = Scope(definition)
            self._scopes[name] = scope
        try:
            self._bind_gateway(scope)
            self.store.save(op, name, definition)
        except BaseException:
            with self._lock:
                self._scopes.pop(name, None)
            self._update_listeners()
            raise
        self.events.publish(op, _network_event("create", scope))
        op.info("network %s (%s) created on %s", name, scope.id[:12], scope.subnet)
        return scope

    def remove_scope(self, op: Operation, ref: str) -> Scope:
        scope = self.scope(ref)
        if scope.predefined:
            raise errors.PermissionDenied(f"{scope.name} is a pre-defined network and cannot be removed")
        members = self.members(scope.name)
        if members:
            listed = ", ".join(f'name:"{m.name}" id:"{endpoint_id(m.container_id, scope.id)[:12]}"'
                               for m in members)
            raise errors.PermissionDenied(f"error while removing network: network {scope.name} has active "
                                          f"endpoints ({listed})")
        self.store.save(op, scope.name, None)
        with self._lock:
            self._scopes.pop(scope.name, None)
            self._members.pop(scope.name, None)
            self._taken.pop(scope.name, None)
            self._free_from.pop(scope.name, None)
        self._update_listeners()
        self.events.publish(op, _network_event("destroy", scope))
        op.info("network %s (%s) removed", scope.name, scope.id[:12])
        return scope

    def _bind_gateway(self, scope: Scope) -> None:
        """The name server on the new network's first address now: a range another VCH (or anything) serves is
        refused before it is used."""
        if self.dns is None:
            return
        address = str(scope.gateway)
        try:
            self.dns.bind(address)
        except OSError as err:
            raise errors.Unavailable(f"cannot serve DNS on {address}:{self.dns_port} for network {scope.name}: "
                                     f"{err.strerror or err}") from None

    # -- endpoints ------------------------------------------------------------------------------------------------
    def join(self, op: Operation, handle, requests: Iterable[EndpointRequest],
             links: Iterable[tuple[str, str]] = ()) -> None:
        """Put a container being created on its networks: an address on each, its names as aliases, its links on the
        networks it shares with their targets, and the name server its resolv.conf names."""
        requests = list(requests)
        config: ExecutorConfig = handle.config
        for request in requests:
            self._add_endpoint(op, config, self.scope(request.scope), request.aliases, request.ip,
                               primary=not config.networks)
        for target_ref, alias in links:
            self._add_link(config, target_ref, alias)
        self._set_nameservers(config)

    def _add_endpoint(self, op: Operation, config: ExecutorConfig, scope: Scope, extra: list[str], ip: str,
                      *, primary: bool) -> NetworkEndpoint:
        cid = config.id
        if scope.name in config.networks:
            raise errors.Conflict(f"{config.name} is already attached to network {scope.name}")
        with self._lock:
            used = self._used(scope.name)
            if ip:
                try:
                    wanted = ipaddress.IPv4Address(ip)
                except ValueError:
                    raise errors.InvalidArgument(f"invalid IPv4 address: {ip}") from None
                if scope.name == DEFAULT_SCOPE:
                    raise errors.InvalidArgument("user specified IP address is supported on user defined networks "
                                                 "only")
                scope.check_static(wanted, used)
                address = wanted
            else:
                address = scope.allocate(used, self._free_from.get(scope.name, 0))
                self._free_from[scope.name] = int(address) + 1
            self._pending.setdefault(cid, {})[scope.name] = address
            self._take(scope.name, address)
        entries = [names.own(scope.name, config.name), names.own(scope.name, cid[:SHORT_ID])]
        entries += [names.own(scope.name, a) for a in extra if names.own(scope.name, a) not in entries]
        pool = scope.pool
        endpoint = NetworkEndpoint(
            common=Common(id=str(len(config.networks)), name=scope.name), static=bool(ip),
            ip=ipaddress.IPv4Interface(f"{address}/{scope.subnet.prefixlen}"),
            network=ContainerNetwork(
                common=Common(id=scope.id, name=scope.name), type=scope.driver, default=primary,
                gateway=ipaddress.IPv4Interface(f"{scope.gateway}/{scope.subnet.prefixlen}"),
                nameservers=[scope.gateway], aliases=entries,
                pools=[IPRange(first=pool.network_address, last=pool.broadcast_address)]))
        config.networks[scope.name] = endpoint
        op.debug("container %s joins %s at %s", cid[:12], scope.name, address)
        return endpoint

    def _add_link(self, config: ExecutorConfig, target_ref: str, alias: str) -> None:
        try:
            target = self.exec.find(target_ref)
        except errors.NotFound as err:
            raise errors.NotFound(f"could not get container for {target_ref}: {err}") from None
        alias = alias or target.name
        shared = [s for s in config.networks if s in target.snapshot.config.networks]
        if not shared:
            raise errors.InvalidArgument(f"Cannot link to {target.name}, as it does not belong to the default "
                                         "network")
        for scope in shared:
            entry = names.link(target.id, alias)
            if entry not in config.networks[scope].network.aliases:
                config.networks[scope].network.aliases.append(entry)

    def _set_nameservers(self, config: ExecutorConfig) -> None:
        """The network's first address, or the container's own address when it needs answers of its own."""
        endpoints = list(config.networks.values())
        if not endpoints:
            return
        own = len(endpoints) > 1 or any(names.links(e.network.common.name, e.network.aliases) for e in endpoints)
        for endpoint in endpoints:
            gateway = endpoint.network.gateway.ip if endpoint.network.gateway is not None else None
            endpoint.network.nameservers = [endpoints[0].ip.ip] if own else ([gateway] if gateway else [])

    def release(self, container_id: str) -> None:
        """Forget the addresses reserved for a container whose create or connect did not happen."""
        with self._lock:
            for scope_name, address in self._pending.pop(container_id, {}).items():
                self._untake(scope_name, address)

    def connect(self, op: Operation, ref: str, scope_ref: str, *, aliases: Iterable[str] = (), ip: str = "",
                links: Iterable[tuple[str, str]] = ()) -> None:
        """Put an existing container on one more network, in one commit; a running one's tether is told to reload
        (its hosts and resolv.conf follow)."""
        scope = self.scope(scope_ref)
        container = self.exec.find(ref)

        def mutate(handle) -> None:
            if scope.name in handle.config.networks:
                raise errors.PermissionDenied(f"endpoint with name {handle.config.name} already exists in network "
                                              f"{scope.name}")
            self._add_endpoint(op, handle.config, scope, list(aliases), ip, primary=not handle.config.networks)
            for target_ref, alias in links:
                self._add_link(handle.config, target_ref, alias)
            self._set_nameservers(handle.config)
            self._writable_while_running(handle)

        try:
            self.exec.update(op, container.id, mutate)
        finally:
            self.release(container.id)
        self._after_change(op, container.id, lambda cfg: scope.name in cfg.networks)
        self.events.publish(op, _network_event("connect", scope, container=container.id))

    def disconnect(self, op: Operation, ref: str, scope_ref: str, *, force: bool = False) -> None:
        scope = self.scope(scope_ref)
        container = self.exec.find(ref)

        def mutate(handle) -> None:
            if scope.name not in handle.config.networks:
                raise errors.InvalidArgument(f"container {container.id} is not connected to network {scope.name}")
            del handle.config.networks[scope.name]
            self._set_nameservers(handle.config)
            self._writable_while_running(handle)

        self.exec.update(op, container.id, mutate)
        self._after_change(op, container.id, lambda cfg: scope.name not in cfg.networks)
        self.events.publish(op, _network_event("disconnect", scope, container=container.id))

    def _writable_while_running(self, handle) -> None:
        # endpoint keys are guest-visible (read-only to the guest): only the VCH writes them, so writing them while
        # the container runs loses nothing of the guest's; the tether rereads them on `reload`
        if hasattr(handle, "running_writable"):
            handle.running_writable = (*handle.running_writable, NETWORK_KEYS)
        handle.reload = True

    def _after_change(self, op: Operation, cid: str, done) -> None:
        self.exec._sync(op, cid, self.exec.find(cid).snapshot.vm, lambda snap: done(snap.config))
        self.refresh_container(cid)

    # -- the index ------------------------------------------------------------------------------------------------
    def refresh(self, op: Operation | None) -> None:
        """Rebuild who is on which network from the whole exec cache, and the name server's addresses from that."""
        infos = self.exec.list()
        with self._lock:
            self._members = {}
            self._listeners = {}
            self._indexed = {}
            self._linkers = {}
            self._taken = {}
            self._free_from = {}
            for pending in self._pending.values():
                for scope_name, address in pending.items():
                    self._take(scope_name, address)
            for info in infos:
                self._index_locked(info)
        self._update_listeners()

    def refresh_container(self, container_id: str) -> None:
        """Replace one container's part of the index with what the exec cache has of it now (nothing if it is gone).

        The cache is read under the index's lock, so two events of one container from two threads can't leave the
        older reading in the index (`lookup` takes no lock of the cache's: events are published under it)."""
        with self._lock:
            info = self.exec.lookup(container_id)
            self._unindex_locked(container_id)
            if info is not None:
                self._index_locked(info)
        self._update_listeners()

    def _index_locked(self, info) -> None:
        indexed = _Indexed()
        config = info.config
        for scope_name, endpoint in config.networks.items():
            if endpoint.ip is None:
                continue
            entries = list(endpoint.network.aliases)
            member = _Member(info.id, info.name, endpoint.ip.ip, info.running, names.own_aliases(scope_name, entries),
                             names.links(scope_name, entries))
            self._members.setdefault(scope_name, {})[info.id] = member
            self._take(scope_name, member.ip)
            indexed.scopes.append(scope_name)
            for target_id, _ in member.links:
                indexed.link_targets.add(target_id)
                self._linkers.setdefault(target_id, set()).add(info.id)
            for server in endpoint.network.nameservers:
                if server == endpoint.ip.ip:
                    self._listeners[str(server)] = info.id
                    indexed.listeners.append(str(server))
        self._indexed[info.id] = indexed
        # its reservations are its endpoints now
        pending = self._pending.get(info.id)
        if pending:
            for scope_name in [s for s in pending if s in indexed.scopes]:
                self._untake(scope_name, pending.pop(scope_name))
            if not pending:
                del self._pending[info.id]

    def _unindex_locked(self, container_id: str) -> None:
        indexed = self._indexed.pop(container_id, None)
        if indexed is None:
            return
        for scope_name in indexed.scopes:
            member = self._members.get(scope_name, {}).pop(container_id, None)
            if member is not None:
                self._untake(scope_name, member.ip)
        for address in indexed.listeners:
            if self._listeners.get(address) == container_id:
                del self._listeners[address]
        for target_id in indexed.link_targets:
            linkers = self._linkers.get(target_id)
            if linkers is not None:
                linkers.discard(container_id)
                if not linkers:
                    del self._linkers[target_id]

    def _take(self, scope_name: str, address: ipaddress.IPv4Address) -> None:
        self._taken.setdefault(scope_name, collections.Counter())[address] += 1

    def _untake(self, scope_name: str, address: ipaddress.IPv4Address) -> None:
        taken = self._taken.get(scope_name)
        if taken is None or address not in taken:
            return
        taken[address] -= 1
        if taken[address] <= 0:
            del taken[address]
            # freed below the mark: the next allocation looks from here
            if int(address) < self._free_from.get(scope_name, 0):
                self._free_from[scope_name] = int(address)

    def _update_listeners(self) -> None:
        if self.dns is None:
            return
        with self._lock:
            wanted = {str(s.gateway) for s in self._scopes.values()} | set(self._listeners)
        failed = self.dns.listen(wanted)
        new = {a: e for a, e in failed.items() if a not in self.dns_errors}  # each failure logged once
        self.dns_errors = failed
        for address, err in new.items():
            Operation.new("name server").error("cannot serve DNS on %s:%d: %s", address, self.dns_port,
                                               err.strerror or err)

    def _used(self, scope_name: str) -> collections.Counter:
        """The scope's taken addresses (members' and reserved ones), as a read-only mapping: under the lock."""
        return self._taken.get(scope_name) or collections.Counter()

    def members(self, scope_name: str) -> list[_Member]:
        with self._lock:
            return list(self._members.get(scope_name, {}).values())

    # -- name resolution ------------------------------------------------------------------------------------------
    def resolve(self, address: str, qname: str) -> list[str] | None:
        """The addresses `qname` has for whoever asks the name server on `address`; None if unknown."""
        with self._lock:
            asker = self._listeners.get(address)
            if asker is not None:
                indexed = self._indexed.get(asker)
                return self._resolve_for(asker, list(indexed.scopes) if indexed else [], qname)
            scope = next((s for s in self._scopes.values() if str(s.gateway) == address), None)
            if scope is None:
                return None
            return self._lookup(scope.name, qname)

    def _lookup(self, scope_name: str, qname: str) -> list[str] | None:
        found = [str(m.ip) for m in self._members.get(scope_name, {}).values()
                 if m.running and qname in (a.lower() for a in m.aliases)]
        return found or None

    def _resolve_for(self, asker: str, scopes: list[str], qname: str) -> list[str] | None:
        for scope_name in scopes:
            members = self._members.get(scope_name, {})
            me = members.get(asker)
            if me is None:
                continue
            for target_id, alias in me.links:
                if alias.lower() == qname:
                    target = members.get(target_id)
                    if target is not None and target.running:
                        return [str(target.ip)]
        for scope_name in scopes:
            found = self._lookup(scope_name, qname)
            if found:
                return found
        return None

    # -- what inspect shows -----------------------------------------------------------------------------------------
    def endpoints(self, config: ExecutorConfig) -> dict[str, dict[str, Any]]:
        """Docker's NetworkSettings.Networks of a container, from its endpoints."""
        out = {}
        for scope_name, endpoint in config.networks.items():
            entries = list(endpoint.network.aliases)
            own = names.own_aliases(scope_name, entries)
            user = [a for a in own if a not in (config.name, config.id[:SHORT_ID])]
            gateway = endpoint.network.gateway
            out[scope_name] = {
                "IPAMConfig": {"IPv4Address": str(endpoint.ip.ip)} if endpoint.static and endpoint.ip else None,
                "Links": [f"{self._name_of(t)}:{a}" for t, a in names.links(scope_name, entries)] or None,
                "Aliases": (user + [config.id[:SHORT_ID]]) if scope_name != DEFAULT_SCOPE else None,
                "MacAddress": "", "DriverOpts": None, "NetworkID": endpoint.network.common.id,
                "EndpointID": endpoint_id(config.id, endpoint.network.common.id),
                "Gateway": str(gateway.ip) if gateway is not None else "",
                "IPAddress": str(endpoint.ip.ip) if endpoint.ip else "",
                "IPPrefixLen": endpoint.ip.network.prefixlen if endpoint.ip else 0,
                "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                "DNSNames": own or None,
            }
        return out

    def links_of(self, config: ExecutorConfig) -> list[str]:
        """Docker's HostConfig.Links (`/<target>:/<self>/<alias>`), with each target's current name."""
        out = []
        for scope_name, endpoint in config.networks.items():
            for target_id, alias in names.links(scope_name, endpoint.network.aliases):
                entry = f"/{self._name_of(target_id)}:/{config.name}/{alias}"
                if entry not in out:
                    out.append(entry)
        return out

    def linkers(self, target_id: str) -> list[str]:
        """IDs of the containers that declared a link to `target_id` (on any network), from their endpoints."""
        with self._lock:
            return sorted(self._linkers.get(target_id, ()))

    def _name_of(self, container_id: str) -> str:
        try:
            return self.exec.find(container_id).name
        except errors.NotFound:
            return container_id[:SHORT_ID]


def _network_event(action: str, scope: Scope, **attributes: str):
    from ..events import NETWORK, Event
    attrs = {"name": scope.name, "type": scope.driver, **attributes}
    return Event(NETWORK, action, scope.id, attrs)


__all__ = ["Network", "EndpointRequest", "Scope", "ScopeDefinition", "NetworkNotFound", "NetworkExists",
           "DEFAULT_SCOPE"]
