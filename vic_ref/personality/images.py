"""The image routes of the Docker Engine API: pull, list, inspect, history, tag, remove, save, load, prune.

`add_image_routes(app, portlayer)` registers them (the app's router also answers `/v<version>/...`); the image store
is `portlayer.storage` (an `ImageStore`). Shapes and texts follow moby's `api/server/router/image` and
`daemon/images`: a pull fails with a plain HTTP error until its first progress line is out, and carries later errors
in the stream (`{"errorDetail": …, "error": …}`), as `docker pull` expects; a load always answers 200 and streams.
"""
from __future__ import annotations

import asyncio
import functools
import os
import re
import tempfile
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .. import errors
from ..imagec import progress, tarball
from ..imagec import reference as refs
from ..imagec.auth import decode_registry_auth
from ..imagec.pull import Puller
from ..trace import Operation
from .common import CALLS, add_route, api_version, bool_param, call, operation, version_less

PULLER: web.AppKey = web.AppKey("image_puller", Puller)
STORE: web.AppKey = web.AppKey("image_store", object)
JSON_TYPE = "application/json"
_ZERO_TIME = "0001-01-01T00:00:00Z"
_IMAGE_FILTERS = {"dangling", "label", "label!", "before", "since", "reference", "until"}


def add_image_routes(app: web.Application, portlayer, *, insecure_registries=(), tmp_dir: str | None = None) -> None:
    """Register the image routes for the port layer's image store (`portlayer.storage`, or an ImageStore)."""
    store = getattr(portlayer, "storage", portlayer)
    if tmp_dir is None:
        tmp_dir = os.environ.get("VSPHERE_SIM_GUEST_DIR") or None  # the appliance guest's own scratch space
    app[STORE] = store
    app[PULLER] = Puller(store, insecure_registries=insecure_registries, tmp_dir=tmp_dir)
    # fixed paths before the ones with a name (a name may hold slashes: 127.0.0.1:5000/busybox)
    add_route(app, "POST", "/images/create", pull)
    add_route(app, "GET", "/images/json", list_images)
    add_route(app, "GET", "/images/get", save_images)
    add_route(app, "POST", "/images/load", load_images)
    add_route(app, "POST", "/images/prune", prune_images)
    add_route(app, "GET", "/images/search", search_images)
    add_route(app, "GET", r"/images/{name:.+}/json", inspect_image)
    add_route(app, "GET", r"/images/{name:.+}/history", image_history)
    add_route(app, "GET", r"/images/{name:.+}/get", save_image)
    add_route(app, "POST", r"/images/{name:.+}/tag", tag_image)
    add_route(app, "POST", r"/images/{name:.+}/push", push_image)
    add_route(app, "DELETE", r"/images/{name:.+}", delete_image)


def _store(request: web.Request):
    store = request.app[STORE]
    if store is None:
        raise errors.Unavailable("this VCH has no image store")
    return store


# -- streaming from a worker thread ------------------------------------------------------------------------------
async def _stream(request: web.Request, response: web.StreamResponse, fn: Callable, *args, **kwargs) -> Any:
    """Run `fn(op, *args, sink=..., **kwargs)` on the pool; write each message it sinks as a JSON line; an error
    it raises becomes the stream's last line. The operation is cancelled if the client goes away."""
    loop = asyncio.get_running_loop()
    op = operation(request).child(getattr(fn, "__name__", "stream"))
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    def sink(message: dict) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, message)

    future = loop.run_in_executor(request.app[CALLS], functools.partial(fn, op, *args, sink=sink, **kwargs))
    future.add_done_callback(lambda _: queue.put_nowait(done))
    gone = False
    while True:
        message = await queue.get()
        if message is done:
            break
        if gone:
            continue
        try:
            await response.write(progress.encode(message))
        except (ConnectionResetError, RuntimeError):
            gone = True
            op.cancel()
    try:
        return future.result()
    except errors.VicError as err:
        (op.warning if not isinstance(err, (errors.NotFound, errors.InvalidArgument)) else op.info)(
            "%s %s: %s", request.method, request.path, err)
        if not gone:
            await response.write(progress.encode(progress.error(err.message)))
    except Exception as err:  # noqa: BLE001 - a bug still ends the stream in Docker's shape
        op.exception("%s %s failed", request.method, request.path)
        if not gone:
            await response.write(progress.encode(progress.error(f"{type(err).__name__}: {err}")))
    return None


async def _json_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={"Content-Type": JSON_TYPE})
    await response.prepare(request)
    return response


# -- pull ------------------------------------------------------------------------------------------------------
async def pull(request: web.Request) -> web.StreamResponse:
    """`POST /images/create?fromImage=…&tag=…` (docker pull, and run/create of a missing image)."""
    query = request.query
    if query.get("fromSrc"):
        raise errors.NotSupported("importing images (docker import) is not supported by this VCH")
    from_image = query.get("fromImage", "")
    if not from_image:
        raise errors.InvalidArgument("invalid reference format")
    ref = refs.parse_pull(from_image, query.get("tag", ""))
    platform = _platform(query.get("platform", ""))
    credentials = decode_registry_auth(request.headers.get("X-Registry-Auth"))
    puller: Puller = request.app[PULLER]
    plan = await call(request, puller.prepare, ref, credentials, platform=platform)
    response = await _json_stream(request)
    await _stream(request, response, _run_pull, puller, plan)
    await response.write_eof()
    return response


def _run_pull(op: Operation, puller: Puller, plan, *, sink) -> Any:
    return puller.run(op, plan, sink)


def _platform(text: str) -> tuple[str, str] | None:
    if not text:
        return None
    parts = text.lower().split("/")
    if len(parts) < 2 or not all(parts[:2]):
        raise errors.InvalidArgument(f'"{text}": unknown operating system or architecture: invalid argument')
    return parts[0], parts[1]


# -- list ------------------------------------------------------------------------------------------------------
def parse_filters(text: str, allowed: set[str]) -> dict[str, list[str]]:
    """Docker's filters JSON in both shapes: `{"k":{"v":true}}` (the Go CLI) and `{"k":["v"]}` (docker-py)."""
    import json
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise errors.InvalidArgument(f"invalid filter: {err}") from None
    if not isinstance(doc, dict):
        raise errors.InvalidArgument("invalid filter: expected a JSON object")
    out: dict[str, list[str]] = {}
    for key, value in doc.items():
        if key not in allowed:
            raise errors.InvalidArgument(f"invalid filter '{key}'")
        if isinstance(value, dict):
            out[key] = [k for k, v in value.items() if v]
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
        else:
            out[key] = [str(value)]
    return out


def _label_match(labels: dict, wanted: list[str]) -> bool:
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def _until(text: str) -> float:
    """A timestamp as Docker's filters take it: unix seconds, RFC 3339, or a Go duration before now."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    match = re.fullmatch(r"((?:\d+(?:\.\d+)?(?:h|m|s|ms))+)", text)
    if match:
        seconds = 0.0
        for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text):
            seconds += float(amount) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
        return time.time() - seconds
    from ..portlayer.storage.image import parse_created
    stamp = parse_created(text)
    if not stamp:
        raise errors.InvalidArgument(f"failed to parse value as time or duration: \"{text}\"")
    return stamp


def _list(op: Operation, store, filters: dict[str, list[str]]) -> list:
    images = store.list(op)
    dangling = filters.get("dangling")
    if dangling:
        value = dangling[0].lower()
        if value not in ("true", "false", "1", "0"):
            raise errors.InvalidArgument(f"invalid filter 'dangling={dangling[0]}'")
        only = value in ("true", "1")
        # moby: dangling = neither tags nor digests
        images = [i for i in images if (not i.repo_tags and not i.repo_digests) == only]
    if filters.get("label"):
        images = [i for i in images if _label_match(i.labels, filters["label"])]
    if filters.get("label!"):
        images = [i for i in images if not any(_label_match(i.labels, [w]) for w in filters["label!"])]
    for value in filters.get("before") or []:
        mark = store.get(op, value).created_unix
        images = [i for i in images if i.created_unix < mark]
    for value in filters.get("since") or []:
        mark = store.get(op, value).created_unix
        images = [i for i in images if i.created_unix > mark]
    for value in filters.get("until") or []:
        limit = _until(value)
        images = [i for i in images if i.created_unix < limit]
    patterns = filters.get("reference")
    out = []
    for image in images:
        tags, digests = list(image.repo_tags), list(image.repo_digests)
        if patterns:
            tags = [t for t in tags if any(refs.familiar_match(p, refs.parse_normalized(t)) for p in patterns)]
            digests = [d for d in digests if any(refs.familiar_match(p, refs.parse_normalized(d)) for p in patterns)]
            if not tags and not digests:
                continue
        out.append((image, tags, digests))
    return out


async def list_images(request: web.Request) -> web.Response:
    """`GET /images/json` (docker images)."""
    filters = parse_filters(request.query.get("filters", ""), _IMAGE_FILTERS)
    if request.query.get("filter"):  # the old single-name filter (API < 1.28)
        filters.setdefault("reference", []).append(request.query["filter"])
    items = await call(request, _list, _store(request), filters)
    old = version_less(api_version(request), "1.44")
    body = []
    for image, tags, digests in items:
        summary: dict[str, Any] = {
            "Containers": -1, "Created": image.created_unix, "Id": image.id, "Labels": image.labels or None,
            "ParentId": "", "RepoDigests": digests, "RepoTags": tags, "SharedSize": -1, "Size": image.size,
        }
        if old:
            summary["VirtualSize"] = image.size
        body.append(summary)
    return web.json_response(body)


# -- inspect and history ---------------------------------------------------------------------------------------
_CONFIG_FIELDS = (
    ("Hostname", ""), ("Domainname", ""), ("User", ""), ("AttachStdin", False), ("AttachStdout", False),
    ("AttachStderr", False), ("Tty", False), ("OpenStdin", False), ("StdinOnce", False), ("Env", None),
    ("Cmd", None), ("Image", ""), ("Volumes", None), ("WorkingDir", ""), ("Entrypoint", None), ("OnBuild", None),
    ("Labels", None),
)
_CONFIG_OPTIONAL = ("ExposedPorts", "Healthcheck", "ArgsEscaped", "NetworkDisabled", "MacAddress", "StopSignal",
                    "StopTimeout", "Shell")


def container_config(config: dict | None) -> dict:
    """A container.Config as dockerd serializes it: every field, the omitempty ones only when set."""
    config = config or {}
    out: dict[str, Any] = {}
    for name, default in _CONFIG_FIELDS:
        out[name] = config.get(name, default)
        if name in ("Env", "Cmd", "Entrypoint", "OnBuild") and out[name] == []:
            out[name] = None if name != "Env" else []
    for name in _CONFIG_OPTIONAL:
        if config.get(name):
            out[name] = config[name]
    return out


def inspect_body(image, version: str) -> dict:
    config = image.config
    body: dict[str, Any] = {
        "Id": image.id, "RepoTags": image.repo_tags, "RepoDigests": image.repo_digests, "Parent": "",
        "Comment": config.get("comment", ""), "Created": image.created or _ZERO_TIME,
        "Container": config.get("container", ""),
        # kept at every version: docker-compose v1 reads it (docker-api-clients.md §3)
        "ContainerConfig": container_config(config.get("container_config")),
        "DockerVersion": config.get("docker_version", ""), "Author": config.get("author", ""),
        "Config": container_config(config.get("config")),
        "Architecture": config.get("architecture", ""),
    }
    if config.get("variant"):
        body["Variant"] = config["variant"]
    body["Os"] = config.get("os", "")
    if config.get("os.version"):
        body["OsVersion"] = config["os.version"]
    body["Size"] = image.size
    if version_less(version, "1.44"):
        body["VirtualSize"] = image.size
    body["GraphDriver"] = {"Data": None, "Name": "vsphere"}
    body["RootFS"] = {"Type": "layers", "Layers": list(image.diff_ids)}
    body["Metadata"] = {"LastTagTime": image.last_tag_time or _ZERO_TIME}
    return body


async def inspect_image(request: web.Request) -> web.Response:
    """`GET /images/{name}/json`."""
    image = await call(request, _store(request).get, request.match_info["name"])
    return web.json_response(inspect_body(image, api_version(request)))


def history_body(image, store=None, op: Operation | None = None) -> list[dict]:
    history = list(image.config.get("history") or [])
    sizes = []
    if store is not None and op is not None:
        for layer_id in image.layers:
            try:
                sizes.append(store.layer(op, layer_id).size)
            except errors.NotFound:
                sizes.append(0)
    if not history:
        history = [{"created": image.created} for _ in image.layers] or [{"created": image.created}]
    out, layer = [], 0
    for item in history:
        size = 0
        if not item.get("empty_layer"):
            size = sizes[layer] if layer < len(sizes) else 0
            layer += 1
        out.append({"Comment": item.get("comment", ""), "Created": int(_unix(item.get("created"))),
                    "CreatedBy": item.get("created_by", ""), "Id": "<missing>", "Size": size, "Tags": None})
    out.reverse()
    out[0]["Id"] = image.id
    out[0]["Tags"] = image.repo_tags or None
    return out


def _unix(text: str | None) -> float:
    from ..portlayer.storage.image import parse_created
    return parse_created(text)


def _history(op: Operation, store, name: str) -> list[dict]:
    return history_body(store.get(op, name), store, op)


async def image_history(request: web.Request) -> web.Response:
    """`GET /images/{name}/history`."""
    return web.json_response(await call(request, _history, _store(request), request.match_info["name"]))


# -- tag and remove ------------------------------------------------------------------------------------------------
def repo_tag_reference(repo: str, tag: str) -> refs.Reference:
    """moby's httputils.RepoTagReference, and the tag route's own check."""
    if not repo and not tag:
        raise errors.InvalidArgument("repository name must have at least one component")
    ref = refs.parse_normalized(repo)
    if ref.digest is not None:
        raise errors.InvalidArgument("cannot import digest reference")
    ref = ref.with_tag(tag) if tag else ref.with_default_tag()
    if ref.familiar_name() == "sha256":
        raise errors.InvalidArgument("refusing to create an ambiguous tag using digest algorithm as name")
    return ref


async def tag_image(request: web.Request) -> web.Response:
    """`POST /images/{name}/tag?repo=…&tag=…` → 201."""
    target = repo_tag_reference(request.query.get("repo", ""), request.query.get("tag", ""))
    await call(request, _store(request).tag, request.match_info["name"], target)
    return web.Response(status=201)


async def delete_image(request: web.Request) -> web.Response:
    """`DELETE /images/{name}?force=…&noprune=…` (docker rmi)."""
    records = await call(request, _store(request).remove, request.match_info["name"],
                         force=bool_param(request, "force"), prune=not bool_param(request, "noprune"))
    return web.json_response(records)


def _prune(op: Operation, store, filters: dict[str, list[str]]) -> dict:
    dangling_only = True
    if filters.get("dangling"):
        dangling_only = filters["dangling"][0].lower() in ("true", "1")
    candidates = [i for i in store.list(op) if (not i.repo_tags and not i.repo_digests) or not dangling_only]
    if filters.get("label"):
        candidates = [i for i in candidates if _label_match(i.labels, filters["label"])]
    for value in filters.get("until") or []:
        limit = _until(value)
        candidates = [i for i in candidates if i.created_unix < limit]
    deleted, reclaimed = [], 0
    for image in candidates:
        if getattr(store, "usage", None) is not None and store.usage(op, image.id):
            continue
        try:
            records = store.remove(op, image.id, force=not dangling_only)
        except errors.Conflict:
            continue
        deleted.extend(records)
        reclaimed += image.size
    return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}


async def prune_images(request: web.Request) -> web.Response:
    """`POST /images/prune` (docker image prune)."""
    filters = parse_filters(request.query.get("filters", ""), {"dangling", "label", "until"})
    return web.json_response(await call(request, _prune, _store(request), filters))


async def search_images(request: web.Request) -> web.Response:
    raise errors.NotSupported("searching registries (docker search) is not supported by this VCH")


async def push_image(request: web.Request) -> web.Response:
    raise errors.NotSupported("pushing images (docker push) is not supported by this VCH")


# -- save and load ---------------------------------------------------------------------------------------------
async def save_images(request: web.Request) -> web.StreamResponse:
    """`GET /images/get?names=a&names=b` (docker save a b)."""
    return await _save(request, request.query.getall("names", []))


async def save_image(request: web.Request) -> web.StreamResponse:
    """`GET /images/{name}/get`."""
    return await _save(request, [request.match_info["name"]])


async def _save(request: web.Request, names: list[str]) -> web.StreamResponse:
    store = _store(request)
    if not names:
        raise errors.InvalidArgument("no images given to save")
    selection = await call(request, tarball.save_selection, store, names)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})
    await response.prepare(request)
    op = operation(request).child("save")
    loop = asyncio.get_running_loop()
    chunks = tarball.save(op, store, selection)
    pool = request.app[CALLS]
    try:
        while True:
            chunk = await loop.run_in_executor(pool, next, chunks, None)
            if chunk is None:
                break
            await response.write(chunk)
    except (ConnectionResetError, RuntimeError):
        op.cancel()
    except errors.VicError as err:
        op.warning("save %s failed midway: %s", names, err)  # the client sees a short tar, as with dockerd
        op.cancel()
    finally:
        await loop.run_in_executor(pool, chunks.close)
    await response.write_eof()
    return response


async def load_images(request: web.Request) -> web.StreamResponse:
    """`POST /images/load?quiet=…` (docker load): the body is the archive."""
    store = _store(request)
    quiet = bool_param(request, "quiet")
    tmp_dir = request.app[PULLER].tmp_dir
    spool = tempfile.TemporaryFile(dir=tmp_dir)
    try:
        while True:
            chunk = await request.content.read(1024 * 1024)
            if not chunk:
                break
            spool.write(chunk)
        spool.seek(0)
        response = await _json_stream(request)
        await _stream(request, response, _run_load, store, spool, quiet=quiet, tmp_dir=tmp_dir)
    finally:
        spool.close()
    await response.write_eof()
    return response


def _run_load(op: Operation, store, archive, *, sink, quiet: bool, tmp_dir: str | None) -> list[str]:
    return tarball.load(op, store, archive, sink, quiet=quiet, tmp_dir=tmp_dir)


__all__ = ["add_image_routes", "parse_filters", "inspect_body", "history_body", "container_config",
           "repo_tag_reference", "PULLER", "STORE"]
