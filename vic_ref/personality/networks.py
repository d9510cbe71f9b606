"""Network routes (`docker network create/ls/inspect/rm/connect/disconnect/prune`) over the port layer's network
component, the networks of a container being created, and the NetworkSettings inspect shows. Docker's shapes and
texts (moby `api/server/router/network`, `daemon/network.go`, libnetwork's errors).
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import errors
from ..portlayer.network import DEFAULT_SCOPE, EndpointRequest, Scope
from ..portlayer.network.scope import endpoint_id
from . import common
from .common import call, json_body, portlayer
from .errors import bad_request

LIST_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")
DEFAULT_MODES = ("", "default", DEFAULT_SCOPE)


# -- a container's networks at create ------------------------------------------------------------------------------
def plan_endpoints(pl, host: dict[str, Any], networking: Any) -> tuple[list[EndpointRequest], list[tuple[str, str]]]:
    """The networks a create body asks for (HostConfig.NetworkMode first, then NetworkingConfig's others) and its
    links (`name:alias`); each network checked to exist."""
    mode = str(host.get("NetworkMode") or "")
    configs = {}
    if isinstance(networking, dict) and isinstance(networking.get("EndpointsConfig"), dict):
        configs = {k: v or {} for k, v in networking["EndpointsConfig"].items()}
    if mode == "none":
        return [], []
    if mode == "host" or mode.startswith("container:"):
        raise errors.NotSupported(f"network mode {mode} is not supported: containers get an address of their own")
    primary = DEFAULT_SCOPE if mode in DEFAULT_MODES else mode
    order = [primary] + [n for n in configs if n != primary and not (n in DEFAULT_MODES and primary == DEFAULT_SCOPE)]
    requests = []
    links: list[tuple[str, str]] = []
    for name in order:
        scope = pl.network.scope(name)
        settings = configs.get(name) or (configs.get("default") if name == DEFAULT_SCOPE else None) or {}
        aliases = [str(a) for a in settings.get("Aliases") or []]
        ip = str((settings.get("IPAMConfig") or {}).get("IPv4Address") or "")
        if aliases and scope.name == DEFAULT_SCOPE:
            raise bad_request("network-scoped alias is supported only for containers in user defined networks")
        requests.append(EndpointRequest(scope.name, aliases=aliases, ip=ip))
        links += [parse_link(text) for text in settings.get("Links") or []]
    links += [parse_link(text) for text in host.get("Links") or []]
    return requests, links


def parse_link(text: str) -> tuple[str, str]:
    """`name:alias` or `name` (the alias is then the name); Docker's `/name:/self/alias` form too."""
    target, _, alias = str(text).partition(":")
    target = target.lstrip("/")
    alias = alias.rsplit("/", 1)[-1] if alias else target
    if not target:
        raise bad_request(f"invalid link: {text}")
    return target, alias


def join(op, pl, handle, plan: tuple[list[EndpointRequest], list[tuple[str, str]]]) -> None:
    requests, links = plan
    pl.network.join(op, handle, requests, links)


def release(pl, handle) -> None:
    pl.network.release(handle.id)


# -- what inspect and ps show ---------------------------------------------------------------------------------------
def settings_json(pl, info) -> dict[str, Any]:
    """NetworkSettings: Networks from the endpoints; the top-level (deprecated) fields from the default bridge."""
    networks = pl.network.endpoints(info.config)
    bridge = networks.get(DEFAULT_SCOPE) or {}
    return {
        "Bridge": "", "SandboxID": "", "SandboxKey": "", "Ports": {}, "HairpinMode": False,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None, "EndpointID": bridge.get("EndpointID", ""),
        "Gateway": bridge.get("Gateway", ""), "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "IPAddress": bridge.get("IPAddress", ""), "IPPrefixLen": bridge.get("IPPrefixLen", 0), "IPv6Gateway": "",
        "MacAddress": "", "Networks": networks,
    }


# -- networks -------------------------------------------------------------------------------------------------------
def network_json(pl, scope: Scope, *, containers: bool = True) -> dict[str, Any]:
    config = {"Subnet": str(scope.subnet), "Gateway": str(scope.gateway)}
    if scope.definition.ip_range:
        config["IPRange"] = scope.definition.ip_range
    members = {}
    if containers:
        for m in pl.network.members(scope.name):
            members[m.container_id] = {"Name": m.name, "EndpointID": endpoint_id(m.container_id, scope.id),
                                       "MacAddress": "", "IPv4Address": f"{m.ip}/{scope.subnet.prefixlen}",
                                       "IPv6Address": ""}
    return {
        "Name": scope.name, "Id": scope.id, "Created": scope.definition.created or "0001-01-01T00:00:00Z",
        "Scope": "local", "Driver": scope.driver, "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None if scope.predefined else {}, "Config": [config]},
        "Internal": scope.definition.internal, "Attachable": False, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": members, "Options": scope.options,
        "Labels": scope.labels,
    }


def list_networks(op, pl, filter_text: str | None) -> list[dict[str, Any]]:
    from .filters import parse
    args = parse(filter_text)
    args.validate(LIST_FILTERS)
    for value in args.get("type"):
        if value not in ("custom", "builtin"):
            raise errors.InvalidArgument(f"invalid filter: 'type'='{value}'")
    out = []
    for scope in pl.network.scopes():
        kind = "builtin" if scope.predefined else "custom"
        if not (args.fuzzy_match("name", scope.name) and args.fuzzy_match("id", scope.id)
                and args.exact_match("driver", scope.driver) and args.exact_match("type", kind)
                and args.exact_match("scope", "local") and args.match_kv_list("label", scope.labels)):
            continue
        if args.contains("dangling"):
            dangling = not scope.predefined and not pl.network.members(scope.name)
            if args.get_bool("dangling", True) != dangling:
                continue
        out.append(network_json(pl, scope, containers=False))
    return out


async def list_(request: web.Request) -> web.Response:
    return web.json_response(await call(request, list_networks, portlayer(request), request.query.get("filters")))


async def inspect(request: web.Request) -> web.Response:
    pl = portlayer(request)
    scope = pl.network.scope(request.match_info["id"])
    return web.json_response(network_json(pl, scope))


def create_network(op, pl, body: dict[str, Any]) -> Scope:
    name = str(body.get("Name") or "")
    if not name:
        raise bad_request("network name must not be empty")
    if body.get("EnableIPv6"):
        raise errors.NotSupported("IPv6 networks are not supported")
    ipam = body.get("IPAM") or {}
    configs = ipam.get("Config") or []
    if len(configs) > 1:
        raise errors.InvalidArgument("at most one ipam config supported")
    first = configs[0] if configs else {}
    return pl.network.create_scope(op, name, driver=str(body.get("Driver") or ""),
                                   subnet=str(first.get("Subnet") or ""), gateway=str(first.get("Gateway") or ""),
                                   ip_range=str(first.get("IPRange") or ""), internal=bool(body.get("Internal")),
                                   labels=body.get("Labels") or None, options=body.get("Options") or None)


async def create(request: web.Request) -> web.Response:
    body = await json_body(request, {})
    if not isinstance(body, dict):
        raise bad_request("invalid JSON: the body must be an object")
    scope = await call(request, create_network, portlayer(request), body)
    return web.json_response({"Id": scope.id, "Warning": ""}, status=201)


async def remove(request: web.Request) -> web.Response:
    await call(request, portlayer(request).network.remove_scope, request.match_info["id"])
    return web.Response(status=204)


async def connect(request: web.Request) -> web.Response:
    body = await json_body(request, {}) or {}
    container = str(body.get("Container") or "")
    if not container:
        raise bad_request("no container specified")
    settings = body.get("EndpointConfig") or {}
    pl = portlayer(request)
    scope = pl.network.scope(request.match_info["id"])
    aliases = [str(a) for a in settings.get("Aliases") or []]
    if aliases and scope.name == DEFAULT_SCOPE:
        raise bad_request("network-scoped alias is supported only for containers in user defined networks")
    ip = str((settings.get("IPAMConfig") or {}).get("IPv4Address") or "")
    links = [parse_link(text) for text in settings.get("Links") or []]
    await call(request, pl.network.connect, container, scope.id, aliases=aliases, ip=ip, links=links)
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    body = await json_body(request, {}) or {}
    container = str(body.get("Container") or "")
    if not container:
        raise bad_request("no container specified")
    pl = portlayer(request)
    await call(request, pl.network.disconnect, container, request.match_info["id"], force=bool(body.get("Force")))
    return web.Response(status=200)


def prune_networks(op, pl) -> list[str]:
    removed = []
    for scope in pl.network.scopes():
        if scope.predefined or pl.network.members(scope.name):
            continue
        try:
            pl.network.remove_scope(op, scope.id)
            removed.append(scope.name)
        except errors.VicError as err:
            op.warning("prune: network %s: %s", scope.name, err)
    return removed


async def prune(request: web.Request) -> web.Response:
    removed = await call(request, prune_networks, portlayer(request))
    return web.json_response({"NetworksDeleted": removed or None})


def add_routes(app: web.Application) -> None:
    add = common.add_route
    add(app, "GET", "/networks", list_)
    add(app, "POST", "/networks/create", create)
    add(app, "POST", "/networks/prune", prune)
    add(app, "GET", "/networks/{id}", inspect)
    add(app, "DELETE", "/networks/{id}", remove)
    add(app, "POST", "/networks/{id}/connect", connect)
    add(app, "POST", "/networks/{id}/disconnect", disconnect)


__all__ = ["add_routes", "plan_endpoints", "join", "release", "settings_json", "parse_link"]
