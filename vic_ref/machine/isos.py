"""The appliance and bootstrap ISOs.

In the sim an ISO is a JSON manifest naming the guest program a VM boots from its CD-ROM (the format is the sim's,
documented in `vsphere_sim/guests.py`): the appliance ISO boots `vic_ref.appliance`, the bootstrap ISO boots
`vic_ref.tether`. `pythonpath` points at the checkout vic_ref runs from, so the guest imports this very code.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..config.vch import APPLIANCE_VERSION

MANIFEST_KEY = "vsphere_sim_guest"
APPLIANCE_ISO = "appliance.iso"
BOOTSTRAP_ISO = "bootstrap.iso"
APPLIANCE_MODULE = "vic_ref.appliance"
TETHER_MODULE = "vic_ref.tether"


def repo_root() -> str:
    """The directory that holds the `vic_ref` package this process runs."""
    return str(Path(__file__).resolve().parent.parent.parent)


def manifest(module: str, *, version: str = APPLIANCE_VERSION, args: list[str] | None = None,
             env: dict[str, str] | None = None, pythonpath: list[str] | None = None) -> bytes:
    """An ISO's content: `python -m module args` with `pythonpath` first on the import path."""
    spec: dict = {"module": module, "args": list(args or []), "version": version,
                  "pythonpath": list(pythonpath if pythonpath is not None else [repo_root()])}
    if env:
        spec["env"] = dict(env)
    return (json.dumps({MANIFEST_KEY: spec}, indent=1) + "\n").encode("utf-8")


def appliance_iso(version: str = APPLIANCE_VERSION, **kwargs) -> bytes:
    return manifest(APPLIANCE_MODULE, version=version, **kwargs)


def bootstrap_iso(version: str = APPLIANCE_VERSION, **kwargs) -> bytes:
    return manifest(TETHER_MODULE, version=version, **kwargs)


def read_manifest(data: bytes) -> dict | None:
    """The guest spec of an ISO's content, or None when it is not a manifest (a real ISO)."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    spec = doc.get(MANIFEST_KEY) if isinstance(doc, dict) else None
    return spec if isinstance(spec, dict) else None
