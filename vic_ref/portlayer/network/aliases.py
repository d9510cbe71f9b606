"""The names a container answers to, kept in its endpoints (`ContainerNetwork.aliases`, hidden keys, so they can be
rewritten while the container runs), in VIC's two shapes:

- `<scope>:<alias>`: the container's own names on that network: its name, its short ID, its `--network-alias`es;
- `<container id>:<alias>`: a link: on this network, `alias` means that container (declared by `--link name:alias`).
  The target is kept by ID, not by name (VIC keeps the name), so renaming the target changes nothing here and the
  link's name resolution follows at once; the linking container's HostConfig.Links is shown from this, with the
  target's current name.

An entry's first part tells which: it is the endpoint's own network name, or a 64-hex container ID.
"""
from __future__ import annotations

import re

from ...config import ExecutorConfig

CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$")


def own(scope: str, alias: str) -> str:
    return f"{scope}:{alias}"


def link(target_id: str, alias: str) -> str:
    return f"{target_id}:{alias}"


def split(scope: str, entry: str) -> tuple[str, str, str]:
    """("own" | "link" | "", first part, alias) of one alias entry on `scope`."""
    first, sep, alias = entry.rpartition(":")
    if not sep:
        return "", "", entry
    if first == scope:
        return "own", first, alias
    if CONTAINER_ID.match(first):
        return "link", first, alias
    return "", first, alias


def own_aliases(scope: str, entries: list[str]) -> list[str]:
    return [alias for kind, _, alias in (split(scope, e) for e in entries) if kind == "own"]


def links(scope: str, entries: list[str]) -> list[tuple[str, str]]:
    """(target id, alias) of each link declared on `scope`."""
    return [(first, alias) for kind, first, alias in (split(scope, e) for e in entries) if kind == "link"]


def rename(config: ExecutorConfig, old: str, new: str) -> None:
    """`<scope>:<old>` becomes `<scope>:<new>` in every scope the container is on (the rename's commit carries it)."""
    for scope, endpoint in config.networks.items():
        entries = endpoint.network.aliases
        endpoint.network.aliases = [own(scope, new) if e == own(scope, old) else e for e in entries]
        if own(scope, new) not in endpoint.network.aliases:
            endpoint.network.aliases.insert(0, own(scope, new))


__all__ = ["own", "link", "split", "own_aliases", "links", "rename"]
