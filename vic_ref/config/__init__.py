"""Executor config and its guestinfo key encoding (VIC's lib/config/executor + pkg/vsphere/extraconfig)."""
from . import extraconfig
from .executor import (
    PLUGIN_VERSION,
    URL,
    VERSION_KEY,
    Build,
    Cmd,
    Common,
    ContainerNetwork,
    Detail,
    Diagnostics,
    ExecutorConfig,
    ExecutorConfigCommon,
    ExitLog,
    IPRange,
    MountSpec,
    NetworkEndpoint,
    SessionConfig,
    SysLogConfig,
    data_version,
    decode,
    decode_visible_to_guest,
    diff,
    encode,
    encode_for_guest,
    key_for,
)
from .extraconfig import Change, guest_can_read, guest_can_write
from .secret import SecretKey

__all__ = [
    "extraconfig", "PLUGIN_VERSION", "VERSION_KEY", "URL", "Build", "Cmd", "Common", "ContainerNetwork", "Detail",
    "Diagnostics", "ExecutorConfig", "ExecutorConfigCommon", "ExitLog", "IPRange", "MountSpec", "NetworkEndpoint",
    "SessionConfig", "SysLogConfig", "data_version", "decode", "decode_visible_to_guest", "diff", "encode",
    "encode_for_guest", "key_for", "Change", "guest_can_read", "guest_can_write", "SecretKey",
]
