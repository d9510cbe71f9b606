"""What every route module shares: the app's keys, running port layer calls off the event loop, query parameters
as Docker reads them, and API versions.

Port layer calls are synchronous (pyVmomi); routes run them on the app's thread pool with the request's operation as
the first argument. Long waits (container wait, log follow) get a pool of their own so they never starve the rest.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from ..trace import Operation
from .errors import bad_request

API_VERSION = "1.44"  # what we speak; docker-compose v1 needs ≤ 1.44 (docker-api-clients.md §3)
MIN_API_VERSION = "1.24"
PRODUCT = "vSphere Integrated Containers"

PORTLAYER: web.AppKey = web.AppKey("portlayer", object)
CONFIG: web.AppKey = web.AppKey("vch_config", object)
CALLS: web.AppKey = web.AppKey("calls", ThreadPoolExecutor)
WAITS: web.AppKey = web.AppKey("waits", ThreadPoolExecutor)

OP: web.RequestKey = web.RequestKey("vic.op", Operation)  # the request's Operation
VERSION: web.RequestKey = web.RequestKey("vic.api_version", str)  # the API version of its path (or ours)

_VERSION_RE = re.compile(r"^\d+(\.\d+)*$")


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def version_less(a: str, b: str) -> bool:
    return version_tuple(a) < version_tuple(b)


def api_version(request: web.Request) -> str:
    return request.get(VERSION) or API_VERSION


def operation(request: web.Request) -> Operation:
    op = request.get(OP)
    if op is None:
        op = Operation.new(f"{request.method} {request.path}")
        request[OP] = op
    return op


def portlayer(request: web.Request):
    return request.app[PORTLAYER]


async def call(request: web.Request, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn(op, *args, **kwargs)` on the app's pool, with the request's operation."""
    op = operation(request)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(request.app[CALLS], functools.partial(fn, op, *args, **kwargs))


async def call_long(request: web.Request, fn: Callable[..., Any], *args: Any, poll: float = 0.5,
                    **kwargs: Any) -> Any:
    """A long blocking call (a wait) on the waits pool, under a child operation that is cancelled when the client
    goes away (aiohttp doesn't cancel handlers on disconnect), so the thread is given back."""
    op = operation(request).child(getattr(fn, "__name__", "wait"))
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(request.app[WAITS], functools.partial(fn, op, *args, **kwargs))
    try:
        while True:
            done, _ = await asyncio.wait({future}, timeout=poll)
            if done:
                return future.result()
            if client_gone(request):
                op.cancel()
                with contextlib.suppress(Exception):
                    await future
                raise ConnectionResetError("client went away")
    except asyncio.CancelledError:
        op.cancel()
        raise


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


# -- query parameters as Docker reads them (httputils) ---------------------------------------------------------------
def bool_param(request: web.Request, name: str, default: bool = False) -> bool:
    """Docker's BoolValue: absent → default; "", "0", "no", "false", "none" → False; anything else True
    (docker-py sends True/False)."""
    if name not in request.query:
        return default
    value = request.query.get(name, "").strip().lower()
    return value not in ("", "0", "no", "false", "none")


def int_param(request: web.Request, name: str, default: int | None = None) -> int | None:
    text = request.query.get(name, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise bad_request(f'strconv.Atoi: parsing "{text}": invalid syntax') from None


async def json_body(request: web.Request, default: Any = None) -> Any:
    """The request's JSON body (None/`default` when empty); 400 when it isn't JSON."""
    raw = await request.read()
    if not raw.strip():
        return default
    import json
    try:
        return json.loads(raw)
    except ValueError as err:
        raise bad_request(f"invalid JSON: {err}") from None


def add_route(app: web.Application, method: str, path: str, handler) -> None:
    """A route; the version prefix (`/v1.44/...`) is handled by the router, so it is registered once."""
    app.router.add_route(method, path, handler)


__all__ = ["API_VERSION", "MIN_API_VERSION", "PRODUCT", "PORTLAYER", "CONFIG", "CALLS", "WAITS", "OP", "VERSION",
           "version_tuple", "version_less", "api_version", "operation", "portlayer", "call", "call_long",
           "client_gone", "bool_param", "int_param", "json_body", "add_route"]
