"""`docker ps` filtering (moby `daemon/list.go`): which filters exist, their values' checks and texts, and the walk
over the containers (newest first) with `before`, `since`, `limit`.

Both shapes of the `filters` parameter are accepted (the CLI's map of maps, docker-py's lists): `FilterArgs.from_json`.
"""
from __future__ import annotations

from .. import errors
from ..portlayer.events import FilterArgs, InvalidFilter
from ..portlayer.exec import ContainerInfo
from .views import HOSTCONFIG_ANNOTATION, config_json, decode_annotation

PS_FILTERS = ("ancestor", "before", "exited", "id", "isolation", "label", "name", "status", "health", "since",
              "volume", "network", "is-task", "publish", "expose")
STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")
HEALTH = ("starting", "healthy", "unhealthy", "none")


class ListContext:
    """The checked filters of one listing (moby foldFilter)."""

    def __init__(self, args: FilterArgs, *, all_: bool, limit: int, find, image_ids) -> None:
        args.validate(PS_FILTERS)
        self.args = args
        self.all = all_
        self.limit = limit
        self.exited: list[int] = []
        for value in args.get("exited"):
            try:
                self.exited.append(int(value))
            except ValueError:
                raise errors.InvalidArgument(f"invalid filter 'exited={value}': strconv.Atoi: parsing "
                                             f'"{value}": invalid syntax') from None
        for value in args.get("status"):
            if value not in STATES:
                raise errors.InvalidArgument(f"invalid filter 'status={value}': invalid value for state ({value}): "
                                             f"must be one of {', '.join(STATES)}")
            self.all = True
        self.task_filter = args.contains("is-task")
        self.is_task = args.get_bool("is-task", False)
        for value in args.get("health"):
            if value not in HEALTH:
                raise errors.InvalidArgument(f"invalid filter 'health={value}': Unrecognised health status "
                                             f"({value}): must be one of {', '.join(HEALTH)}")
        self.before = None
        for value in args.get("before"):
            self.before = find(value).id
        self.since = None
        for value in args.get("since"):
            self.since = find(value).id
        self.ancestor = args.contains("ancestor")
        self.images: set[str] = set()
        if self.ancestor:
            for value in args.get("ancestor"):
                self.images |= image_ids(value)
        self.count = 0


def include(ctx: ListContext, info: ContainerInfo) -> str:
    """"include", "exclude" or "stop" for one container (moby includeContainerInList)."""
    args = ctx.args
    if ctx.before is not None:
        if info.id == ctx.before:
            ctx.before = None
        return "exclude"
    if ctx.since is not None and info.id == ctx.since:
        return "stop"
    running = info.state.docker in ("running", "paused")
    if not running and not ctx.all and ctx.limit <= 0:
        return "exclude"
    if not args.match("name", "/" + info.name) and not args.match("name", info.name):
        return "exclude"
    if not args.match("id", info.id):
        return "exclude"
    if ctx.task_filter and ctx.is_task:
        return "exclude"  # no swarm tasks here
    labels = config_json(info).get("Labels") or {}
    if not args.match_kv_list("label", labels):
        return "exclude"
    if args.contains("isolation") and not args.exact_match("isolation", "default"):
        return "exclude"
    if 0 < ctx.limit <= ctx.count:
        return "stop"
    if ctx.exited:
        if running or not info.started_ns or info.exit_code not in ctx.exited:
            return "exclude"
    if not args.match("status", info.state.docker):
        return "exclude"
    if not args.exact_match("health", "none"):
        return "exclude"
    if ctx.ancestor and info.image_id not in ctx.images and info.repo not in ctx.images:
        return "exclude"
    if args.contains("network"):
        host = decode_annotation(info.annotations, HOSTCONFIG_ANNOTATION, {}) or {}
        mode = host.get("NetworkMode") or "default"
        if not any(v == mode for v in args.get("network")):
            return "exclude"
    if args.contains("volume"):
        return "exclude"  # volumes come with the volume issue
    return "include"


def select(ctx: ListContext, infos: list[ContainerInfo]) -> list[ContainerInfo]:
    out: list[ContainerInfo] = []
    for info in infos:
        action = include(ctx, info)
        if action == "stop":
            break
        if action == "include":
            out.append(info)
            ctx.count += 1
    return out


def parse(text: str | None) -> FilterArgs:
    return FilterArgs.from_json(text)


__all__ = ["ListContext", "select", "include", "parse", "PS_FILTERS", "InvalidFilter"]
