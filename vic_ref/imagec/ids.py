"""Image and layer identifiers as Docker computes them (image/v1, layer.CreateChainID, stringid)."""
from __future__ import annotations

import hashlib


def digest_of(data: bytes) -> str:
    """`sha256:<hex>` of some bytes (an image ID is the digest of its config)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chain_id(parent: str | None, diff_id: str) -> str:
    """A layer's ChainID (hex, no algorithm): the diff ID for a base layer (parent None or "scratch"), else
    sha256("sha256:<parent chain ID> <diff ID>")."""
    if parent in (None, "scratch"):
        return diff_id.split(":", 1)[1]
    return hashlib.sha256(f"sha256:{parent} {diff_id}".encode()).hexdigest()


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The chain IDs of a stack of layers, base first."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(chain_id(out[-1] if out else None, diff_id))
    return out


def short_id(image_id: str) -> str:
    """stringid.TruncateID: 12 hex digits without the algorithm."""
    return image_id.split(":", 1)[-1][:12]


__all__ = ["digest_of", "chain_id", "chain_ids", "short_id"]
