"""The guest channel client: how a guest program (the VCH appliance, the tether) reaches its own VM.

See `channel.py` for the API; `aio.py` has asyncio wrappers. No pyVmomi, no vsphere_sim: standard library only.
"""
from .aio import AsyncGuestChannel, answer
from .channel import (
    ENV_CHANNEL,
    ENV_DIR,
    ENV_TOKEN,
    ChannelClosed,
    Disk,
    DiskLayer,
    GuestChannel,
    GuestChannelError,
    Operation,
    ReadOnlyKey,
    guest_dir,
    in_guest,
)

__all__ = [
    "GuestChannel", "AsyncGuestChannel", "Operation", "Disk", "DiskLayer", "GuestChannelError", "ChannelClosed",
    "ReadOnlyKey", "in_guest", "guest_dir", "answer", "ENV_CHANNEL", "ENV_TOKEN", "ENV_DIR",
]
