"""`docker save` and `docker load` archives (moby image/tarexport), on the image store.

Save writes the layout dockerd wrote before 25.0 (and every docker load still reads):

    <layer>/VERSION, <layer>/json, <layer>/layer.tar     one folder per layer (here: named by its chain ID)
    <image hex>.json                                     the image config, byte for byte
    manifest.json     [{"Config": "<hex>.json", "RepoTags": ["busybox:latest"], "Layers": ["<layer>/layer.tar"]}]
    repositories      {"busybox": {"latest": "<top layer folder>"}}

Each layer.tar is the layer's original tar (rebuilt from its tar-split), so its sha256 is the diff ID in the config.
Load reads manifest.json (the layout above, or the OCI layout docker 25+ saves, which has one too), writes the
layers it doesn't have, checks every diff ID, adds the image and its tags, and reports `Loaded image: …`.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from .. import errors
from ..trace import Operation
from . import progress
from . import reference as refs
from .ids import chain_ids, digest_of, short_id

BLOCK = 512
_EPOCH_MTIME = 0


class LoadError(errors.InvalidArgument):
    """An archive `docker load` can't use."""


# -- save ------------------------------------------------------------------------------------------------------
def _header(name: str, size: int, *, directory: bool = False) -> bytes:
    info = tarfile.TarInfo(name + ("/" if directory else ""))
    info.size = 0 if directory else size
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mtime = _EPOCH_MTIME
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _file(name: str, data: bytes) -> Iterator[bytes]:
    yield _header(name, len(data))
    yield data
    yield b"\0" * (-len(data) % BLOCK)


def save_selection(op: Operation, store, names: list[str]) -> list[tuple[object, list[str]]]:
    """(image, RepoTags) for each image `names` asks for, in order (moby's tarexport parseNames): a tag saves that
    tag, a bare repository name every tag of it, an ID the image without tags. Errors before anything streams."""
    chosen: dict[str, tuple[object, list[str]]] = {}

    def add(image, tag: str | None) -> None:
        entry = chosen.setdefault(image.id, (image, []))
        if tag and tag not in entry[1]:
            entry[1].append(tag)

    for name in names:
        parsed = refs.parse_any(name)
        if isinstance(parsed, refs.Reference) and parsed.is_name_only:
            tagged = [(image, tag) for image in store.list(op) for tag in image.repo_tags
                      if refs.parse_normalized(tag).name == parsed.name]
            for image, tag in tagged:
                add(image, tag)
            if tagged:
                continue
        image = store.get(op, name)
        if isinstance(parsed, str) or _is_id_prefix(image.id, name) or parsed.digest is not None:
            add(image, None)
        else:
            add(image, parsed.familiar())
    return list(chosen.values())


def _is_id_prefix(image_id: str, text: str) -> bool:
    return image_id.startswith(text) or image_id.split(":", 1)[1].startswith(text)


def save(op: Operation, store, selection: list[tuple[object, list[str]]]) -> Iterator[bytes]:
    """The archive's bytes, streamed (a layer's disk is attached to the appliance while it is read)."""
    manifest, repositories, written = [], {}, set()
    for image, tags in selection:
        layer_paths = []
        with store.open_image(op, image) as data_dirs:
            parent = None
            for layer_id, diff_id in zip(image.layers, image.diff_ids):
                folder = layer_id
                layer_paths.append(f"{folder}/layer.tar")
                if folder not in written:
                    written.add(folder)
                    yield _header(folder, 0, directory=True)
                    yield from _file(f"{folder}/VERSION", b"1.0")
                    v1 = {"id": folder, "created": "1970-01-01T00:00:00Z", "os": image.config.get("os", "linux")}
                    if parent:
                        v1["parent"] = parent
                    yield from _file(f"{folder}/json", json.dumps(v1).encode())
                    yield from _layer_file(op, store, layer_id, diff_id, data_dirs[layer_id], f"{folder}/layer.tar")
                parent = folder
        config_name = f"{image.id[7:]}.json"
        if config_name not in written:
            written.add(config_name)
            yield from _file(config_name, image.raw_config)
        manifest.append({"Config": config_name, "RepoTags": tags or None, "Layers": layer_paths})
        for tag in tags:
            ref = refs.parse_normalized(tag)
            repositories.setdefault(ref.familiar_name(), {})[ref.tag] = image.layers[-1] if image.layers else ""
        store.event(op, "save", image.id, {"name": tags[0] if tags else image.id})
    yield from _file("manifest.json", json.dumps(manifest).encode())
    if repositories:
        yield from _file("repositories", json.dumps(repositories).encode())
    yield b"\0" * (2 * BLOCK)


def _layer_file(op: Operation, store, layer_id: str, diff_id: str, data_dir: str, name: str) -> Iterator[bytes]:
    layer = store.layer(op, layer_id)
    if layer.tar_size:
        size, chunks = layer.tar_size, store.layer_tar(op, layer_id, data_dir)
        spool = None
    else:  # size unknown: spool it first (tar headers come before the content)
        spool = tempfile.TemporaryFile()
        for chunk in store.layer_tar(op, layer_id, data_dir):
            spool.write(chunk)
        size = spool.tell()
        spool.seek(0)
        chunks = iter(lambda: spool.read(1024 * 1024), b"")
    try:
        yield _header(name, size)
        hasher, sent = hashlib.sha256(), 0
        for chunk in chunks:
            op.check()
            hasher.update(chunk)
            sent += len(chunk)
            yield chunk
        if sent != size:
            raise errors.InternalError(f"layer {layer_id[:12]}: its tar is {sent} bytes, expected {size}")
        if "sha256:" + hasher.hexdigest() != diff_id:
            op.warning("save: layer %s does not reproduce its diff ID %s", layer_id, diff_id)
        yield b"\0" * (-size % BLOCK)
    finally:
        if spool is not None:
            spool.close()


# -- load ------------------------------------------------------------------------------------------------------
def load(op: Operation, store, archive: BinaryIO, sink: progress.ProgressSink | None = None, *,
         quiet: bool = False, tmp_dir: str | None = None) -> list[str]:
    """Load a `docker save` archive (plain, gzip, bzip2 or xz) from a stream; the images' IDs."""
    reporter = progress.Reporter(sink)
    store.start(op)
    with tempfile.TemporaryDirectory(prefix="vic-load-", dir=tmp_dir) as tmp:
        spooled = os.path.join(tmp, "archive")
        with open(spooled, "wb") as out:
            shutil.copyfileobj(archive, out, 1024 * 1024)
        try:
            tar = tarfile.open(spooled, "r:*")
        except (tarfile.TarError, EOFError, OSError) as err:
            raise LoadError(f"unexpected EOF or invalid archive: {err}", op_id=op.id) from err
        with tar:
            members = {posixpath.normpath(m.name.lstrip("./") or "."): m for m in tar.getmembers()}
            manifest = _json_member(tar, members, "manifest.json")
            if manifest is None:
                raise LoadError("invalid archive: no manifest.json (only docker save archives can be loaded)",
                                op_id=op.id)
            if not isinstance(manifest, list):
                raise LoadError("invalid manifest.json", op_id=op.id)
            return [_load_entry(op, store, tar, members, entry, reporter, quiet) for entry in manifest]


def _member(tar: tarfile.TarFile, members: dict, name: str):
    member = members.get(posixpath.normpath(name.lstrip("./")))
    if member is None or not member.isfile():
        # a layer may be a symlink to another entry (the OCI layout docker 25+ writes)
        if member is not None and member.issym():
            target = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), member.linkname))
            return _member(tar, members, target)
        return None
    return tar.extractfile(member)


def _json_member(tar, members, name):
    handle = _member(tar, members, name)
    if handle is None:
        return None
    try:
        return json.loads(handle.read())
    except ValueError as err:
        raise LoadError(f"invalid {name}: {err}") from err


def _load_entry(op: Operation, store, tar, members, entry: dict, reporter: progress.Reporter, quiet: bool) -> str:
    config_name = entry.get("Config")
    handle = _member(tar, members, config_name or "")
    if handle is None:
        raise LoadError(f"invalid archive: no image config {config_name}", op_id=op.id)
    raw_config = handle.read()
    config = json.loads(raw_config)
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    layer_names = list(entry.get("Layers") or [])
    if len(diff_ids) != len(layer_names):
        raise LoadError(f"invalid manifest, layers length mismatch: expected {len(diff_ids)}, got "
                        f"{len(layer_names)}", op_id=op.id)
    layer_ids = chain_ids(diff_ids)
    written: list[str] = []
    with store.pin(layer_ids):
        try:
            for i, (layer_id, diff_id, name) in enumerate(zip(layer_ids, diff_ids, layer_names)):
                if store.has_layer(layer_id):
                    continue
                layer = _member(tar, members, name)
                if layer is None:
                    raise LoadError(f"invalid archive: no layer {name}", op_id=op.id)
                size = members[posixpath.normpath(name.lstrip("./"))].size if not quiet else 0
                short = short_id(diff_id)
                stream = _ProgressReader(layer, lambda n, s=short, t=size: reporter.count("Loading layer", s, n, t)) \
                    if not quiet else layer
                if _peek_gzip(layer):
                    stream = gzip.GzipFile(fileobj=stream, mode="rb")
                try:
                    store.write_layer(op, layer_id, layer_ids[i - 1] if i else None, stream, diff_id=diff_id)
                except errors.VicError as err:
                    if "diff ID verification failed" in str(err):
                        raise LoadError(f"invalid diffID for layer {i}: {err}", op_id=op.id) from err
                    raise
                written.append(layer_id)
            image, _ = store.add_image(op, raw_config)
        except BaseException:
            store.discard_layers(op, list(reversed(written)))
            raise
    tags = [t for t in entry.get("RepoTags") or [] if t]
    for tag in tags:
        ref = refs.parse_normalized(tag).with_default_tag()
        try:
            old = store.get(op, str(ref))
        except errors.NotFound:
            old = None
        if old is not None and old.id != image.id:
            reporter.send(progress.stream(f"The image {ref.familiar()} already exists, renaming the old one with "
                                          f"ID {old.id} to empty string\n"))
        store.tag(op, image.id, ref)
        reporter.send(progress.stream(f"Loaded image: {ref.familiar()}\n"))
    if not tags:
        reporter.send(progress.stream(f"Loaded image ID: {image.id}\n"))
    store.event(op, "load", image.id, {"name": tags[0] if tags else image.id})
    return image.id


class _ProgressReader:
    def __init__(self, handle, on_read):
        self.handle, self.on_read, self.count = handle, on_read, 0

    def read(self, n: int = -1) -> bytes:
        data = self.handle.read(n)
        self.count += len(data)
        self.on_read(self.count)
        return data

    def readable(self) -> bool:
        return True


def _peek_gzip(handle) -> bool:
    try:
        position = handle.tell()
        magic = handle.read(2)
        handle.seek(position)
    except (OSError, AttributeError):
        return False
    return magic == b"\x1f\x8b"


__all__ = ["save", "save_selection", "load", "LoadError", "digest_of"]
