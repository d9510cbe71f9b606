"""The Docker Engine API server of a VCH (VIC's `lib/apiservers/engine`): `make_app(portlayer, vch_config)`.

Routing: every route is registered once, without a version; the router also resolves `/v<version>/<path>` to it, so
`/_ping`, `/v1.44/_ping`, `/version` and `/v1.41/containers/json` all work (the docker CLI pings without a prefix,
docker-py uses one everywhere). A version outside [1.24, 1.44] is refused with Docker's text. Every response carries
Docker's `Api-Version`, `Server` and `Ostype` headers.

Errors: route code raises `VicError`s; one middleware turns them into Docker's JSON (`errors.py`), and unknown paths
into Docker's `page not found`.

The port layer is started (its caches rebuilt from vSphere) when the app starts, before it serves, if its owner has
not started it already. Image routes come from `vic_ref.personality.images.add_image_routes(app, portlayer)`.
"""
from __future__ import annotations

import asyncio
import logging
import re
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from .. import errors as vic_errors
from ..trace import Operation
from . import common
from .common import API_VERSION, MIN_API_VERSION, OP, VERSION, version_less
from .errors import PAGE_NOT_FOUND, DockerError, error_response, json_error

log = logging.getLogger("vic_ref.personality")

_VERSIONED = re.compile(r"^/v(\d+(?:\.\d+)*)(/.*)$")
CALL_THREADS = 64
WAIT_THREADS = 512
CLIENT_MAX_SIZE = 64 * 1024 * 1024  # image loads and build contexts are streamed; bodies here are small JSON


def route_versions(router: web.UrlDispatcher) -> None:
    """Make the router resolve `/v<version>/<path>` as `<path>` (moby registers each route with and without it).

    Done on the router the app made (a router of our own is a deprecated Application argument): its `resolve`
    sees the path without the prefix; the handler still gets the original request, version and all.
    """
    resolve = router.resolve

    async def versioned_resolve(request: web.Request):
        match = _VERSIONED.match(request.rel_url.path)
        if match:
            return await resolve(request.clone(rel_url=request.rel_url.with_path(match.group(2))))
        return await resolve(request)

    router.resolve = versioned_resolve


def requested_version(path: str) -> str | None:
    match = _VERSIONED.match(path)
    return match.group(1) if match else None


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Docker's JSON for every error a route lets out."""
    try:
        return await handler(request)
    except vic_errors.VicError as err:
        op = request.get(OP)
        status = error_status(err)
        if op is not None:
            (op.warning if status >= 500 else op.info)("%s %s: %d %s", request.method, request.path, status, err)
        return error_response(err)
    except web.HTTPNotFound:
        return json_error(404, PAGE_NOT_FOUND)
    except web.HTTPMethodNotAllowed:
        return json_error(405, "method not allowed")
    except web.HTTPException:
        raise
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as err:  # noqa: BLE001 - a bug must still answer in Docker's shape
        op = request.get(OP)
        (op.exception if op is not None else log.exception)("%s %s failed", request.method, request.path)
        return json_error(500, f"{type(err).__name__}: {err}")


def error_status(err: BaseException) -> int:
    from .errors import status_of
    return status_of(err)


@web.middleware
async def version_middleware(request: web.Request, handler):
    """The request's operation and API version; versions outside [min, ours] refused as moby refuses them."""
    request[OP] = Operation.new(f"{request.method} {request.path}")
    version = requested_version(request.path)
    if version is not None:
        if version_less(version, MIN_API_VERSION):
            raise DockerError(400, f"client version {version} is too old. Minimum supported API version is "
                                   f"{MIN_API_VERSION}, please upgrade your client to a newer version")
        if version_less(API_VERSION, version):
            raise DockerError(400, f"client version {version} is too new. Maximum supported API version is "
                                   f"{API_VERSION}")
    request[VERSION] = version or API_VERSION
    return await handler(request)


def server_header(config) -> str:
    return f"Docker/{getattr(config, 'version', '') or '0.0.0'} (linux)"


def make_app(portlayer, vch_config) -> web.Application:
    """The Docker API of one VCH over its port layer."""
    from . import containers, events, system, volumes

    app = web.Application(middlewares=[error_middleware, version_middleware], client_max_size=CLIENT_MAX_SIZE)
    route_versions(app.router)
    app[common.PORTLAYER] = portlayer
    app[common.CONFIG] = vch_config
    app[common.CALLS] = ThreadPoolExecutor(max_workers=CALL_THREADS, thread_name_prefix="docker-api")
    app[common.WAITS] = ThreadPoolExecutor(max_workers=WAIT_THREADS, thread_name_prefix="docker-wait")
    server = server_header(vch_config)

    async def headers(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Api-Version"] = API_VERSION
        response.headers["Server"] = server
        response.headers["Ostype"] = "linux"

    async def start_portlayer(app: web.Application) -> None:
        if getattr(portlayer, "started", True):
            return
        op = Operation.new("start the port layer")
        await asyncio.get_running_loop().run_in_executor(app[common.CALLS], portlayer.start, op)

    async def stop_pools(app: web.Application) -> None:
        unsubscribe()
        app[common.CALLS].shutdown(wait=False, cancel_futures=True)
        app[common.WAITS].shutdown(wait=False, cancel_futures=True)

    app.on_response_prepare.append(headers)
    app.on_startup.append(start_portlayer)
    app.on_cleanup.append(stop_pools)

    unsubscribe = containers.watch_autoremove(app)
    system.add_routes(app)
    containers.add_routes(app)
    events.add_routes(app)
    from . import networks
    networks.add_routes(app)
    volumes.add_routes(app)
    try:
        from .images import add_image_routes
    except ModuleNotFoundError as err:
        if err.name != "vic_ref.personality.images":
            raise
        log.warning("vic_ref.personality.images is missing: no image routes")
    else:
        add_image_routes(app, portlayer)
    return app


__all__ = ["make_app", "route_versions", "requested_version", "API_VERSION", "MIN_API_VERSION"]
