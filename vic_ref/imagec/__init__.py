"""imagec: the Docker Registry HTTP API v2 client feeding the image store (VIC's lib/imagec), and docker save/load.

- `reference`: image references with Docker's normalization and error texts.
- `registry`: the registry client (ping, token auth, manifests, blobs, all digest-checked).
- `manifest`: schema 2 / OCI manifests and indexes (linux/amd64 is picked from an index).
- `pull`: `Puller(store).prepare(op, ref, credentials)` then `.run(op, plan, sink)` with Docker's progress stream.
- `tarball`: `save(...)` / `load(...)` in the docker-save format.
- `progress`: the JSON progress messages `docker pull`/`docker load` print.
"""
from .auth import ANONYMOUS, Credentials, decode_registry_auth, encode_registry_auth
from .errors import (
    NoMatchingManifest,
    RegistryError,
    RegistryNotFound,
    RegistryUnauthorized,
    RegistryUnavailable,
    UnsupportedManifest,
    VerificationFailed,
)
from .pull import Puller, PullPlan
from .reference import InvalidReference, Reference, parse_any, parse_normalized, parse_pull
from .registry import RegistryClient

__all__ = [
    "Puller", "PullPlan", "RegistryClient", "Reference", "InvalidReference", "parse_normalized", "parse_any",
    "parse_pull", "Credentials", "ANONYMOUS", "decode_registry_auth", "encode_registry_auth", "RegistryError",
    "RegistryNotFound", "RegistryUnauthorized", "RegistryUnavailable", "VerificationFailed", "UnsupportedManifest",
    "NoMatchingManifest",
]
