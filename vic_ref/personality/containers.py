"""Container routes (VIC's ContainerBackend over the port layer's exec component).

create, start, stop, restart, kill, rm, inspect, list (`ps`), wait, logs, top (basic), rename; attach,
resize and exec are in `attach.py`. Texts and statuses are Docker's where a client reads them (docker-api-clients.md).
"""
from __future__ import annotations

import asyncio
import json
import math
import struct
import time
from typing import Any

from aiohttp import web

from .. import errors
from ..portlayer.events import LABELS_ANNOTATION
from ..portlayer.exec import WAIT_CONDITIONS
from ..portlayer.exec.spec import DEFAULT_CPUS, memory_mb
from . import common, filters, networks, views, volumes
from .common import api_version, bool_param, call, call_long, client_gone, int_param, json_body, portlayer
from .errors import DockerError, bad_request, wait_error, wrapped
from .system import backend_name

STDOUT, STDERR = 1, 2


# -- create --------------------------------------------------------------------------------------------------------
def _cpus(host: dict[str, Any]) -> int:
    """The VM's CPU count: --cpus (NanoCpus), --cpuset-cpus (VIC: N means N CPUs) or --cpu-count; VIC's default."""
    if host.get("NanoCpus"):
        return max(1, math.ceil(int(host["NanoCpus"]) / 1e9))
    cpuset = str(host.get("CpusetCpus") or "").strip()
    if cpuset:
        if cpuset.isdigit():
            return max(1, int(cpuset))
        count = 0
        for part in cpuset.split(","):
            lo, _, hi = part.partition("-")
            count += (int(hi) - int(lo) + 1) if hi else 1
        return max(1, count)
    if host.get("CpuCount"):
        return max(1, int(host["CpuCount"]))
    return DEFAULT_CPUS


def create_container(op, pl, name: str, body: dict[str, Any]) -> str:
    """Create a container from a Docker create body: image lookup (a 404 makes the CLI pull), the config merged
    with the image's, a name reserved, then handle, joins and one commit (VIC's containerCreate pipeline)."""
    image_ref = body.get("Image") or ""
    if not image_ref:
        raise bad_request("No image specified")
    if pl.storage is None:
        raise errors.Unavailable("no image store: images can't be used")
    image = pl.storage.get(op, image_ref)
    config = views.stored_config(body, views.image_container_config(image))
    entrypoint = config.get("Entrypoint") or []
    if entrypoint == [""]:
        entrypoint = config["Entrypoint"] = []
    argv = list(entrypoint) + list(config.get("Cmd") or [])
    if not argv:
        raise bad_request("no command specified")
    config["Image"] = image_ref
    host = views.stored_host_config(body)
    mounts = volumes.plan_mounts(config, host)  # checked before anything is made; Config.Volumes as VIC keeps it
    annotations = {views.CONFIG_ANNOTATION: views.encode_annotation(config),
                   views.HOSTCONFIG_ANNOTATION: views.encode_annotation(host)}
    if config.get("Labels"):
        annotations[LABELS_ANNOTATION] = views.encode_annotation(config["Labels"])
    if host.get("AutoRemove"):
        annotations[views.AUTOREMOVE_ANNOTATION] = views.encode_annotation(True)
    networking = body.get("NetworkingConfig")
    if isinstance(networking, dict) and networking:
        annotations[views.NETWORKING_ANNOTATION] = views.encode_annotation(networking)
    endpoints = networks.plan_endpoints(pl, host, networking)  # a missing network fails before anything is made
    user, _, group = str(config.get("User") or "").partition(":")
    made: list[str] = []  # volumes this create makes: removed again if it fails
    handle = pl.exec.create_handle(op, name=name or None, num_cpus=_cpus(host),
                                   memory_mb=memory_mb(host.get("Memory")), annotations=annotations,
                                   hostname=config.get("Hostname") or "", domainname=config.get("Domainname") or "")
    try:
        pl.exec.join_image(op, handle, image, repo=image_ref)
        pl.exec.join_task(op, handle, path=argv[0], args=argv[1:], env=config.get("Env") or [],
                          workdir=config.get("WorkingDir") or "", user=user, group=group,
                          tty=bool(config.get("Tty")), open_stdin=bool(config.get("OpenStdin")),
                          attach=bool(config.get("AttachStdin") or config.get("AttachStdout")
                                      or config.get("AttachStderr")),
                          stop_signal=config.get("StopSignal") or "")
        volumes.join_mounts(op, pl, handle, mounts, container=name or handle.config.name, image=image_ref,
                            made=made)
        networks.join(op, pl, handle, endpoints)
    except BaseException:
        pl.exec.discard(op, handle)
        volumes.discard_made(op, pl, made)
        networks.release(pl, handle)
        raise
    try:
        pl.exec.commit(op, handle)
    except BaseException:
        volumes.discard_made(op, pl, made)
        networks.release(pl, handle)
        raise
    return handle.id


async def create(request: web.Request) -> web.Response:
    body = await json_body(request, {})
    if not isinstance(body, dict):
        raise bad_request("invalid JSON: the body must be an object")
    name = request.query.get("name", "")
    cid = await call(request, create_container, portlayer(request), name, body)
    return web.json_response({"Id": cid, "Warnings": []}, status=201)


# -- lifecycle -------------------------------------------------------------------------------------------------------
async def start(request: web.Request) -> web.Response:
    changed = await call(request, portlayer(request).exec.start, request.match_info["name"])
    return web.Response(status=204 if changed else 304)


def _stop_params(request: web.Request) -> tuple[int | None, str | None]:
    timeout = int_param(request, "t")
    signal = None
    if not common.version_less(api_version(request), "1.42"):
        signal = request.query.get("signal") or None
    return timeout, signal


async def stop(request: web.Request) -> web.Response:
    timeout, signal = _stop_params(request)
    changed = await call(request, portlayer(request).exec.stop, request.match_info["name"], timeout=timeout,
                         signal=signal)
    return web.Response(status=204 if changed else 304)


async def restart(request: web.Request) -> web.Response:
    timeout, signal = _stop_params(request)
    await call(request, portlayer(request).exec.restart, request.match_info["name"], timeout=timeout, signal=signal)
    return web.Response(status=204)


async def kill(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    try:
        await call(request, portlayer(request).exec.kill, name, request.query.get("signal") or "KILL")
    except errors.VicError as err:
        raise wrapped(err, f"cannot kill container: {name}: ") from err
    return web.Response(status=204)


async def remove(request: web.Request) -> web.Response:
    force = bool_param(request, "force")
    if bool_param(request, "link"):
        raise DockerError(400, "Conflict, cannot remove the default link name of the container")
    pl = portlayer(request)
    info = pl.exec.info(request.match_info["name"]) if bool_param(request, "v") else None
    await call(request, pl.exec.remove, request.match_info["name"], force=force)
    if info is not None:
        await call(request, remove_volumes_of, pl, info)
    return web.Response(status=204)


def remove_volumes_of(op, pl, info) -> None:
    """`rm -v`, `--rm`: the removed container's anonymous volumes that nobody else uses go too."""
    volumes.remove_anonymous(op, pl, info, views.decode_annotation(info.annotations, views.CONFIG_ANNOTATION, {}),
                             views.decode_annotation(info.annotations, views.HOSTCONFIG_ANNOTATION, {}))


async def rename(request: web.Request) -> web.Response:
    pl = portlayer(request)
    info = await call(request, pl.exec.rename, request.match_info["name"], request.query.get("name", ""))
    await call(request, rewrite_links_to, pl, info.id)
    return web.Response(status=204)


def rewrite_links_to(op, pl, target_id: str) -> None:
    """After a rename (DESIGN-DECISIONS §3): the stored HostConfig.Links of every container linking to the renamed
    one, rewritten from the backend data (the links kept by target ID in its endpoints) with current names, so the
    stored config, inspect and a restarted VCH agree. A linker gone meanwhile is skipped."""
    def mutate(handle) -> None:
        host = views.decode_annotation(handle.config.annotations, views.HOSTCONFIG_ANNOTATION, {})
        host["Links"] = pl.network.links_of(handle.config) or None
        handle.config.annotations[views.HOSTCONFIG_ANNOTATION] = views.encode_annotation(host)

    for linker in pl.network.linkers(target_id):
        try:
            pl.exec.update(op, linker, mutate)
        except errors.NotFound:
            continue


# -- inspect and list ------------------------------------------------------------------------------------------------
async def inspect(request: web.Request) -> web.Response:
    pl = portlayer(request)
    info = pl.exec.info(request.match_info["name"])
    body = views.inspect_json(info, backend_name(request.app[common.CONFIG]))
    body["NetworkSettings"] = networks.settings_json(pl, info)
    body["HostConfig"]["Links"] = pl.network.links_of(info.config) or None  # targets by their current names
    if bool_param(request, "size"):
        body["SizeRw"] = 0
        body["SizeRootFs"] = 0
    return web.json_response(body)


def list_containers(op, pl, *, all_: bool, limit: int, size: bool, filter_text: str | None) -> list[dict]:
    args = filters.parse(filter_text)

    def image_ids(ref: str) -> set[str]:
        if pl.storage is None:
            return set()
        try:
            image = pl.storage.get(op, ref)
        except errors.NotFound:
            op.warning("ps: no image %s for the ancestor filter", ref)
            return set()
        return {image.id}

    ctx = filters.ListContext(args, all_=all_, limit=limit, find=pl.exec.find, image_ids=image_ids)
    now = time.time_ns()
    out = []
    for info in filters.select(ctx, pl.exec.list()):
        summary = views.summary_json(info, size=size, now_ns=now)
        summary["NetworkSettings"] = {"Networks": pl.network.endpoints(info.config)}
        out.append(summary)
    return out


async def list_(request: web.Request) -> web.Response:
    body = await call(request, list_containers, portlayer(request), all_=bool_param(request, "all"),
                      limit=int_param(request, "limit", -1), size=bool_param(request, "size"),
                      filter_text=request.query.get("filters"))
    return web.json_response(body)


# -- wait ------------------------------------------------------------------------------------------------------------
async def wait(request: web.Request) -> web.StreamResponse:
    """Headers at once (API ≥ 1.30; `docker run` sends the wait before start and may never read the body), the body
    `{"StatusCode": n}` when the condition holds."""
    name = request.match_info["name"]
    legacy = common.version_less(api_version(request), "1.30")
    condition = "not-running" if legacy else (request.query.get("condition") or "not-running")
    if condition not in WAIT_CONDITIONS:
        raise bad_request(f'invalid condition: "{condition}"')
    pl = portlayer(request)
    pl.exec.find(name)  # 404 before any header goes out
    response = web.StreamResponse(status=200)
    response.content_type = "application/json"
    if not legacy:
        await response.prepare(request)
    try:
        info = await call_long(request, pl.exec.wait, name, condition)
        body = {"StatusCode": info.exit_code}
    except ConnectionResetError:
        return response
    except errors.VicError as err:
        if legacy:
            raise
        body = {"StatusCode": -1, "Error": wait_error(err)}
    if legacy:
        await response.prepare(request)
    try:
        await response.write(json.dumps(body).encode() + b"\n")
        await response.write_eof()
    except ConnectionResetError:
        pass
    return response


# -- logs: the datastore's output.log, in the tether's line format (portlayer/interaction/logs.py) ------------
def _frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


FOLLOW_POLL = 0.5


async def logs(request: web.Request) -> web.StreamResponse:
    """`docker logs` [-f] [-t] [--tail N] [--since T] [--until T]. -f polls the file while the container runs and
    ends once it has stopped and the rest of the file is out. Works for any container the VCH finds, restarts
    included: the log lives on the datastore."""
    from ..portlayer.interaction import logs as logfile
    name = request.match_info["name"]
    stdout, stderr = bool_param(request, "stdout"), bool_param(request, "stderr")
    if not (stdout or stderr):
        raise bad_request("You must choose at least one stream")
    try:
        since = logfile.parse_since(request.query.get("since"))
        until = logfile.parse_since(request.query.get("until"))
    except ValueError as err:
        raise bad_request(str(err)) from None
    timestamps = bool_param(request, "timestamps")
    tail = logfile.parse_tail(request.query.get("tail"))
    follow = bool_param(request, "follow")
    pl = portlayer(request)
    info = pl.exec.info(name)
    cid = info.id
    tty = bool(info.session.tty) if info.session is not None else False
    data = await call(request, pl.exec.read_file, cid, "output.log")
    running = info.running
    entries, used = logfile.parse(data, final=not (follow and running))
    response = web.StreamResponse(status=200)
    response.content_type = "application/vnd.docker.raw-stream" if tty else \
        "application/vnd.docker.multiplexed-stream"
    await response.prepare(request)

    async def send(batch) -> None:
        chunk = b""
        for entry in logfile.select(batch, stdout=stdout, stderr=stderr, since_ns=since, until_ns=until):
            text = logfile.render(entry, timestamps)
            chunk += text if tty else _frame(entry.stream, text)
        if chunk:
            await response.write(chunk)

    try:
        await send(logfile.select(entries, tail=tail))
        offset = used
        while follow and running and not client_gone(request):
            await asyncio.sleep(FOLLOW_POLL)
            try:
                running = pl.exec.info(cid).running
            except errors.NotFound:
                running = False
            more = await call(request, pl.exec.read_file, cid, "output.log")
            if len(more) > offset:
                batch, used = logfile.parse(more[offset:], final=not running)
                offset += used
                await send(batch)
        await response.write_eof()
    except (ConnectionResetError, errors.NotFound):
        pass
    return response


# -- top (basic) -----------------------------------------------------------------------------------------------------
async def top(request: web.Request) -> web.Response:
    """The container's processes as `ps -ef` shows them, from its tether (`ps_args` other than -ef are not
    supported: the table is the tether's, not a host `ps`)."""
    pl = portlayer(request)
    info = pl.exec.info(request.match_info["name"])
    if not info.running:
        raise errors.Conflict(f"container {info.id} is not running")
    try:
        table = await pl.interaction.processes(info.id)
    except errors.Timeout:
        raise errors.Conflict(f"container {info.id} is not running") from None
    return web.json_response(table)


# -- --rm: the personality removes a container that exits (as Docker's daemon and VIC's persona do) -------------
def watch_autoremove(app: web.Application):
    """Subscribe to `die` events; a container created with AutoRemove is removed on the app's pool. Returns the
    unsubscribe function."""
    from ..portlayer.events import EventFilter, FilterArgs
    from ..trace import Operation

    pl = app[common.PORTLAYER]

    def remove(cid: str) -> None:
        op = Operation.new(f"autoremove {cid[:12]}")
        try:
            info = pl.exec.info(cid)
            if views.decode_annotation(info.annotations, views.AUTOREMOVE_ANNOTATION, False) and not info.running:
                pl.exec.remove(op, cid, force=True)
                remove_volumes_of(op, pl, info)
        except errors.NotFound:
            pass
        except errors.VicError as err:
            op.warning("removing %s after it exited: %s", cid[:12], err)

    def on_die(event) -> None:
        try:
            app[common.CALLS].submit(remove, event.actor_id)
        except RuntimeError:
            pass  # the app is shutting down

    _, unsubscribe = pl.events.subscribe(on_die, EventFilter(FilterArgs({"type": ["container"], "event": ["die"]})))
    return unsubscribe


def add_routes(app: web.Application) -> None:
    add = common.add_route
    add(app, "POST", "/containers/create", create)
    add(app, "GET", "/containers/json", list_)
    add(app, "GET", "/containers/{name}/json", inspect)
    add(app, "POST", "/containers/{name}/start", start)
    add(app, "POST", "/containers/{name}/stop", stop)
    add(app, "POST", "/containers/{name}/restart", restart)
    add(app, "POST", "/containers/{name}/kill", kill)
    add(app, "POST", "/containers/{name}/wait", wait)
    add(app, "POST", "/containers/{name}/rename", rename)
    add(app, "GET", "/containers/{name}/logs", logs)
    add(app, "GET", "/containers/{name}/top", top)
    add(app, "DELETE", "/containers/{name}", remove)
    from . import attach
    attach.add_routes(app)


__all__ = ["add_routes", "create_container", "list_containers"]
