"""Image manifests: Docker schema 2, manifest lists, OCI manifests and indexes; picking linux/amd64.

Only what a pull needs: a manifest's config and layer descriptors, an index's entries with their platforms.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from .errors import NoMatchingManifest, UnsupportedManifest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"

MANIFEST_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_MANIFEST_LIST, OCI_INDEX)
# What a pull asks for, as dockerd does (schema 1 is not pulled any more).
ACCEPT = (DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX)
# Layer media types and their compression ("" = a plain tar).
LAYER_COMPRESSION = {
    DOCKER_LAYER: "gzip", DOCKER_FOREIGN_LAYER: "gzip", OCI_LAYER: "", OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_NONDIST: "", OCI_LAYER_NONDIST_GZIP: "gzip",
    "application/vnd.docker.image.rootfs.diff.tar": "",
}

DEFAULT_PLATFORM = ("linux", "amd64")


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    platform: dict | None = None
    annotations: dict | None = None

    @classmethod
    def from_json(cls, doc: dict) -> Descriptor:
        if not isinstance(doc, dict) or not isinstance(doc.get("digest"), str):
            raise UnsupportedManifest("manifest invalid: a descriptor has no digest")
        return cls(str(doc.get("mediaType") or ""), doc["digest"], int(doc.get("size") or 0),
                   tuple(doc.get("urls") or ()), doc.get("platform"), doc.get("annotations"))

    def to_json(self) -> dict:
        out = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.platform:
            out["platform"] = self.platform
        return out

    @property
    def compression(self) -> str:
        """"gzip" or "" for the layer types we pull; UnsupportedManifest for the rest (zstd, unknown)."""
        if self.media_type in LAYER_COMPRESSION:
            return LAYER_COMPRESSION[self.media_type]
        raise UnsupportedManifest(f"unsupported media type {self.media_type}")


@dataclass(frozen=True)
class ImageManifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    raw: bytes = field(repr=False, default=b"")


@dataclass(frozen=True)
class ImageIndex:
    media_type: str
    manifests: tuple[Descriptor, ...]
    raw: bytes = field(repr=False, default=b"")

    def select(self, os_name: str = DEFAULT_PLATFORM[0], architecture: str = DEFAULT_PLATFORM[1]) -> Descriptor:
        """The entry for the platform (dockerd's platform matcher, without variants); the first match wins."""
        for entry in self.manifests:
            platform = entry.platform or {}
            if platform.get("os") == os_name and platform.get("architecture") == architecture \
                    and entry.media_type in (*MANIFEST_TYPES, ""):
                return entry
        raise NoMatchingManifest(f"no matching manifest for {os_name}/{architecture} in the manifest list entries")


def media_type_of(raw: bytes, content_type: str | None) -> str:
    """The manifest's media type: its own `mediaType` field, else the response's Content-Type, else guessed."""
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        if doc.get("schemaVersion") == 1:
            return DOCKER_SCHEMA1_SIGNED if "signatures" in doc else DOCKER_SCHEMA1
        if isinstance(doc.get("mediaType"), str) and doc["mediaType"]:
            return doc["mediaType"]
    ctype = (content_type or "").split(";", 1)[0].strip()
    if ctype in (*MANIFEST_TYPES, *INDEX_TYPES):
        return ctype
    if isinstance(doc, dict):  # OCI allows no mediaType: tell them apart by shape
        if "manifests" in doc:
            return OCI_INDEX
        if "config" in doc:
            return OCI_MANIFEST
    return ctype


def parse(raw: bytes, content_type: str | None = None) -> ImageManifest | ImageIndex:
    media_type = media_type_of(raw, content_type)
    if media_type in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        raise UnsupportedManifest(
            "Docker Image manifest version 2, schema 1 is not supported; the image must be pushed again with a "
            "newer client")
    try:
        doc = json.loads(raw)
    except ValueError as err:
        raise UnsupportedManifest(f"manifest invalid: {err}") from err
    if not isinstance(doc, dict):
        raise UnsupportedManifest("manifest invalid: not a JSON object")
    if media_type in INDEX_TYPES:
        return ImageIndex(media_type, tuple(Descriptor.from_json(m) for m in doc.get("manifests") or []), raw)
    if media_type in MANIFEST_TYPES:
        if "config" not in doc:
            raise UnsupportedManifest("manifest invalid: no config")
        return ImageManifest(media_type, Descriptor.from_json(doc["config"]),
                             tuple(Descriptor.from_json(layer) for layer in doc.get("layers") or []), raw)
    raise UnsupportedManifest(f"unsupported manifest media type and no default available: {media_type}")


def build_manifest(config: Descriptor, layers: list[Descriptor], media_type: str = DOCKER_MANIFEST) -> bytes:
    """A schema 2 (or OCI) manifest's bytes, as registries and `docker push` write them."""
    doc = {"schemaVersion": 2, "mediaType": media_type, "config": config.to_json(),
           "layers": [layer.to_json() for layer in layers]}
    return json.dumps(doc, indent=3).encode()


__all__ = [
    "Descriptor", "ImageManifest", "ImageIndex", "parse", "media_type_of", "build_manifest", "ACCEPT",
    "DOCKER_MANIFEST", "DOCKER_MANIFEST_LIST", "DOCKER_CONFIG", "DOCKER_LAYER", "OCI_MANIFEST", "OCI_INDEX",
    "OCI_CONFIG", "OCI_LAYER", "OCI_LAYER_GZIP", "OCI_LAYER_ZSTD", "MANIFEST_TYPES", "INDEX_TYPES",
]
