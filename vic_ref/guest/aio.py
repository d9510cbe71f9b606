"""asyncio helpers for the guest channel: the appliance's event loop must never block on it.

    channel = AsyncGuestChannel(GuestChannel.from_env())
    value = await channel.get("guestinfo.x")          # any blocking method, run in a worker thread
    async for op in channel.operations(): ...         # guest operations as an async iterator
    await channel.wait_closed()                       # until the VM powers off
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from .channel import GuestChannel, Operation

# Methods that are not wrapped: properties and the non-blocking ones.
_DIRECT = frozenset({"operations", "serve_operations", "close", "wait_closed", "closed", "info", "closed_event",
                     "vm_name", "path", "timeout", "on_power_off", "open_another"})


class AsyncGuestChannel:
    """The blocking methods of a GuestChannel as coroutines (each in a worker thread); the rest as they are."""

    def __init__(self, channel: GuestChannel):
        self.channel = channel

    def __getattr__(self, name: str):
        attr = getattr(self.channel, name)
        if name in _DIRECT or not callable(attr):
            return attr

        async def call(*args, **kwargs):
            return await asyncio.to_thread(attr, *args, **kwargs)

        call.__name__ = name
        return call

    async def operations(self) -> AsyncIterator[Operation]:
        """Guest operations, one at a time, until the channel closes. Answer each with `await answer(...)` or the
        blocking op methods in a thread."""
        await asyncio.to_thread(self.channel.subscribe)
        for_thread = self.channel._ops
        while True:
            op = await asyncio.to_thread(for_thread.get)
            if op is None:
                for_thread.put(None)  # wake any other reader as well
                return
            yield op

    async def wait_closed(self, timeout: float | None = None) -> bool:
        """Until the channel closes (the VM powered off); False on timeout."""
        return await asyncio.to_thread(self.channel.closed_event.wait, timeout)

    def close(self) -> None:
        self.channel.close()


async def answer(op: Operation, method: str, *args, **kwargs):
    """`op.<method>(*args)` (started, exited, reject, done) without blocking the loop."""
    return await asyncio.to_thread(getattr(op, method), *args, **kwargs)
