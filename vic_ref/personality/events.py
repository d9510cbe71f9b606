"""`GET /events`: the VCH's event stream as Docker sends it, one JSON object per line, with `since`, `until`
and `filters` (type, event, container, image, label, …; Docker's matching rules).

Headers go out at once; past events from `since` come first, then new ones as they happen, until `until` or the
client goes away. Events are published on port layer threads and handed to the event loop thread-safely.
"""
from __future__ import annotations

import asyncio
import datetime
import json
import time

from aiohttp import web

from ..portlayer.events import EventFilter, FilterArgs
from .common import add_route, client_gone, portlayer
from .errors import bad_request


def parse_time(text: str, name: str, now_ns: int) -> int | None:
    """Docker's timestamp forms: unix seconds with optional fraction (`1735689600.000000000`), RFC 3339, or a
    duration before now (`10m`); nanoseconds since the epoch."""
    text = text.strip()
    if not text:
        return None
    try:
        seconds, _, fraction = text.partition(".")
        if seconds.lstrip("-").isdigit() and (not fraction or fraction.isdigit()):
            nanos = int((fraction + "000000000")[:9]) if fraction else 0
            return int(seconds) * 10 ** 9 + nanos
        if text[-1] in "smh" and text[:-1].replace(".", "", 1).isdigit():
            scale = {"s": 1, "m": 60, "h": 3600}[text[-1]]
            return now_ns - int(float(text[:-1]) * scale * 10 ** 9)
        stamp = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=datetime.UTC)
        return int(stamp.timestamp() * 10 ** 9)
    except ValueError:
        raise bad_request(f'invalid value for "{name}": failed to parse value as time or duration: "{text}"') \
            from None


async def events(request: web.Request) -> web.StreamResponse:
    now = time.time_ns()
    since = parse_time(request.query.get("since", ""), "since", now)
    until = parse_time(request.query.get("until", ""), "until", now)
    args = FilterArgs.from_json(request.query.get("filters"))
    args.validate(EventFilter.ACCEPTED)
    filt = EventFilter(args)
    bus = portlayer(request).events
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def deliver(event) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, event)

    live = until is None or until > now
    past, unsubscribe = bus.subscribe(deliver, filt, since_ns=since if since is not None else None,
                                      until_ns=until) if live else (bus.history(since, until, filt), lambda: None)
    response = web.StreamResponse(status=200)
    response.content_type = "application/json"
    try:
        await response.prepare(request)
        for event in past:
            await response.write(json.dumps(event.to_docker()).encode() + b"\n")
        while live:
            timeout = 1.0
            if until is not None:
                left = (until - time.time_ns()) / 1e9
                if left <= 0:
                    break
                timeout = min(timeout, left)
            try:
                event = await asyncio.wait_for(queue.get(), timeout)
            except TimeoutError:
                if client_gone(request):
                    break
                continue
            if until is not None and event.time_nano > until:
                break
            await response.write(json.dumps(event.to_docker()).encode() + b"\n")
        await response.write_eof()
    except ConnectionResetError:
        pass
    finally:
        unsubscribe()
    return response


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/events", events)


__all__ = ["add_routes", "parse_time"]
