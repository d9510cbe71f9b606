"""The image store: image layers as a chain of disks on the datastore (VIC lib/portlayer/storage/image/vsphere).

Layout, under the VCH's image store `[ds] path`:

    VIC/<vch-uuid>/images/scratch/scratch.vmdk               the base of every chain (an empty tree, VIC's min OS)
    VIC/<vch-uuid>/images/<layer>/<layer>.vmdk               a child disk of its parent layer's vmdk
    VIC/<vch-uuid>/images/<layer>/imageMetadata/layer.json   {id, parent, diff_id, size, blob_digest}
    VIC/<vch-uuid>/images/<layer>/imageMetadata/tarsplit.json.gz   the layer tar minus file contents (for save)
    VIC/<vch-uuid>/images/<layer>/imageMetadata/config-<image hex>.json   an image whose top layer this is: its
                                                             config, byte for byte (its sha256 is the image ID)
    VIC/<vch-uuid>/images/<layer>/imageMetadata/refs-<image hex>.json     its repository tags and digests
    VIC/<vch-uuid>/images/<layer>/manifest                   the "done" marker, written last
    VIC/<vch-uuid>/tmp/                                      scratch disks (docker save), emptied at start

A layer's id is its Docker chain ID (hex): the same content on the same parents is the same disk, shared by every
image that has it. The store keeps no state of its own: `ImageStore(...)` rebuilds its index from the datastore
(after detaching disks a crash left on the appliance and deleting half-written layers, as VIC's cleanup does).
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ... import errors
from ...imagec import reference as refs
from ...imagec.errors import VerificationFailed
from ...imagec.ids import chain_id, chain_ids, short_id
from ...trace import Operation
from ...vsphere import DatastorePath, Session
from . import layer_tar
from .disks import ApplianceDisks, AttachedDisk, Datastore

SCRATCH = "scratch"
METADATA_DIR = "imageMetadata"
MANIFEST = "manifest"
LAYER_META = "layer.json"
TARSPLIT = "tarsplit.json.gz"
DEFAULT_SCRATCH_KB = 8 * 1024 * 1024  # VIC's defaultDiskSizeInKB
# VIC's minimal OS in scratch (store.go FileForMinOS, DirForMinOS, SymLinkForMinOS)
MIN_OS_DIRS = {"etc": 0o755, "lib/modules": 0o755, "proc": 0o555, "sys": 0o555, "run": 0o755, ".tether": 0o777}
MIN_OS_FILES = {"etc/hostname": 0o644, "etc/hosts": 0o644, "etc/resolv.conf": 0o644}
MIN_OS_SYMLINKS = {"etc/mtab": "/proc/mounts"}
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def parse_created(text: str | None) -> float:
    """Unix seconds of an RFC 3339 time as image configs write it (nanoseconds allowed); 0 when unreadable."""
    if not text:
        return 0.0
    value = text.strip().replace("Z", "+00:00")
    if "." in value:
        head, _, rest = value.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        value = f"{head}.{digits[:6]}{zone}"
    try:
        stamp = datetime.datetime.fromisoformat(value)
    except ValueError:
        return 0.0
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.UTC)
    return (stamp - _EPOCH).total_seconds()


# -- records -----------------------------------------------------------------------------------------------------
@dataclass
class Layer:
    id: str  # chain ID hex, or "scratch"
    parent: str | None  # the parent layer's id (None for scratch)
    diff_id: str | None = None  # sha256 of the layer's tar
    size: int = 0  # bytes of file content
    blob_digest: str | None = None  # the compressed blob it came from, when pulled
    tar_size: int = 0  # bytes of the layer's tar (what `layer_tar` gives back)

    def to_json(self) -> bytes:
        return json.dumps({"id": self.id, "parent": self.parent, "diff_id": self.diff_id, "size": self.size,
                           "blob_digest": self.blob_digest, "tar_size": self.tar_size}, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Layer:
        doc = json.loads(data)
        return cls(doc["id"], doc.get("parent"), doc.get("diff_id"), int(doc.get("size") or 0),
                   doc.get("blob_digest"), int(doc.get("tar_size") or 0))


@dataclass
class Image:
    """An image as the port layer hands it out (docs/vch-internals.md contract)."""
    id: str  # "sha256:<hex>": the sha256 of the config
    top_layer: str  # the layer a container's root disk is a child of ("scratch" for an image without layers)
    layers: list[str]  # chain IDs, base first
    config: dict  # the Docker image config
    repo_tags: list[str] = field(default_factory=list)  # familiar: "busybox:latest"
    repo_digests: list[str] = field(default_factory=list)  # familiar: "busybox@sha256:..."
    created: str = ""  # the config's `created`, RFC 3339
    size: int = 0
    diff_ids: list[str] = field(default_factory=list)
    raw_config: bytes = field(default=b"", repr=False)
    last_tag_time: str = ""

    @property
    def short_id(self) -> str:
        return short_id(self.id)

    @property
    def created_unix(self) -> int:
        return int(parse_created(self.created))

    @property
    def container_config(self) -> dict:
        """The config's `config` (Cmd, Env, Entrypoint, Volumes, Labels...)."""
        return self.config.get("config") or {}

    @property
    def labels(self) -> dict:
        return dict(self.container_config.get("Labels") or {})


@dataclass(frozen=True)
class ContainerUse:
    """A container created from an image (what `usage` reports, for rmi's conflict checks)."""
    id: str
    running: bool


UsageFn = Callable[[Operation, str], list[ContainerUse]]  # (op, image id) -> containers using it
EventFn = Callable[[Operation, str, str, dict], None]  # (op, action, image id or ref, attributes)


class ImageNotFound(errors.NotFound):
    pass


class ImageConflict(errors.Conflict):
    """A delete refused: Docker's `conflict: unable to delete …` texts; `hard` ones can't be forced."""

    def __init__(self, message: str, *, hard: bool = False, used: bool = False, **kwargs):
        super().__init__(message, **kwargs)
        self.hard = hard
        self.used = used


@dataclass
class _Refs:
    tags: list[str] = field(default_factory=list)  # full references: docker.io/library/busybox:latest
    digests: list[str] = field(default_factory=list)  # docker.io/library/busybox@sha256:...
    last_tag_time: str = ""

    def to_json(self) -> bytes:
        return json.dumps({"repo_tags": self.tags, "repo_digests": self.digests,
                           "last_tag_time": self.last_tag_time}, indent=1).encode()


class ImageStore:
    """The VCH's images and layers. Every method takes the Operation first; thread-safe.

    `start(op)` rebuilds the index from the datastore (the port layer calls it; any other call does it first when
    nobody has). `usage(op, image_id)` lists the containers using an image (the exec layer sets it with
    `set_usage`; without one nothing is in use); `on_event(op, action, id, attributes)` hears
    pull/tag/untag/delete/load/save.
    """

    def __init__(self, op: Operation, session: Session, vch_config, guest_channel, *,
                 usage: UsageFn | None = None, on_event: EventFn | None = None,
                 scratch_kb: int = DEFAULT_SCRATCH_KB):
        self.session = session
        self.guest = guest_channel
        self.usage = usage
        self.on_event = on_event
        self.scratch_kb = scratch_kb
        root = DatastorePath.parse(vch_config.storage.image_store)
        self.vch_id = vch_config.id
        self.root = root.join("VIC", self.vch_id)
        self.images_dir = self.root.join("images")
        self.tmp_dir = self.root.join("tmp")
        self.datastore = Datastore(session, root.datastore)
        self.disks = ApplianceDisks(session, guest_channel)
        self._lock = threading.RLock()
        self._layer_locks: dict[str, threading.Lock] = {}
        self._pins: Counter[str] = Counter()  # layers a pull or load in progress builds on
        self._layers: dict[str, Layer] = {}
        self._images: dict[str, Image] = {}
        self._refs: dict[str, _Refs] = {}  # image id -> its references
        self._tags: dict[str, str] = {}  # full tag reference -> image id
        self._digests: dict[str, str] = {}  # full canonical reference -> image id
        self._started = False
        self._start_lock = threading.Lock()

    def start(self, op: Operation) -> None:
        """Rebuild the index from the datastore, once (idempotent)."""
        with self._start_lock:
            if not self._started:
                self.rebuild(op)
                self._started = True

    def close(self, op: Operation) -> None:
        """Nothing to release: every disk the store attaches is detached when its work ends."""

    def _ready(self, op: Operation) -> None:
        if not self._started:
            self.start(op)

    def set_usage(self, usage: UsageFn | None) -> None:
        """The exec layer's `(op, image_id) -> [ContainerUse]`, for rmi's conflict checks."""
        self.usage = usage

    def set_event_listener(self, on_event: EventFn | None) -> None:
        self.on_event = on_event

    # -- paths --------------------------------------------------------------------------------------------------
    def layer_dir(self, layer_id: str) -> DatastorePath:
        return self.images_dir.join(layer_id)

    def _disk_path(self, layer_id: str) -> DatastorePath:
        return self.layer_dir(layer_id).join(f"{layer_id}.vmdk")

    def _meta(self, layer_id: str, name: str) -> DatastorePath:
        return self.layer_dir(layer_id).join(METADATA_DIR, name)

    def layer_disk(self, op: Operation, layer_id: str) -> DatastorePath:
        """The vmdk of a complete layer: what a container's root disk (or the next layer) is a child of."""
        self._ready(op)
        with self._lock:
            if layer_id not in self._layers:
                raise errors.NotFound(f"layer {layer_id} not found in the image store", op_id=op.id)
        return self._disk_path(layer_id)

    # -- start ----------------------------------------------------------------------------------------------------
    def rebuild(self, op: Operation) -> None:
        """Rebuild the index from the datastore; detach leftovers, delete half-written layers, make scratch."""
        op = op.child("rebuild image store")
        left = self.disks.detach_all(op, self.root)
        if left:
            op.info("detached %d image store disk(s) left on the appliance: %s", len(left), ", ".join(left))
        self.datastore.delete(op, self.tmp_dir)
        self.datastore.mkdir(op, self.images_dir)
        tree = self.datastore.tree(op, self.images_dir)
        doubtful = False  # something could not be read: collect no garbage this time, it may not be garbage
        layers: dict[str, Layer] = {}
        metadata: dict[str, list[str]] = {}
        for name, is_dir in sorted((tree.get("") or {}).items()):
            if not is_dir:
                continue
            entries = tree.get(name) or {}
            if name != SCRATCH and not refs.IDENTIFIER_RE.match(name):
                op.warning("image store: ignoring unknown folder %s", self.layer_dir(name))
                continue
            if MANIFEST not in entries or f"{name}.vmdk" not in entries:
                op.info("image store: deleting incomplete layer %s", name)
                try:
                    self._delete_layer_files(op, name)
                    continue
                except errors.InUse:
                    # other disks are its children, so it was complete once (VIC keeps scratch the same way)
                    op.warning("image store: layer %s has no done marker but has children; keeping it", name)
                    if name != SCRATCH:
                        doubtful = True
                        continue
                    self.datastore.upload(op, self.layer_dir(name).join(MANIFEST), b"")
            if name == SCRATCH:
                layers[name] = Layer(SCRATCH, None)
            else:
                try:
                    layers[name] = Layer.from_json(self.datastore.download(op, self._meta(name, LAYER_META)))
                except (errors.VicError, ValueError, KeyError) as err:
                    op.warning("image store: layer %s has unreadable metadata (%s); ignored", name, err)
                    doubtful = True
                    continue
            metadata[name] = sorted(tree.get(f"{name}/{METADATA_DIR}") or {})
        # a layer whose chain is broken can't be used (its parent was lost)
        valid: dict[str, Layer] = {}
        for layer_id in layers:
            chain, node = [], layer_id
            while node is not None and node in layers and node not in chain:
                chain.append(node)
                node = layers[node].parent
            if node is None:
                valid[layer_id] = layers[layer_id]
            else:
                op.warning("image store: layer %s has a broken chain (missing %s); ignored", layer_id, node)
        with self._lock:
            self._layers = valid
            self._images, self._refs, self._tags, self._digests = {}, {}, {}, {}
        if SCRATCH not in valid:
            self._create_scratch(op)
        for layer_id, names in metadata.items():
            if layer_id not in valid:
                continue
            for name in names:
                if name.startswith("config-") and name.endswith(".json"):
                    if not self._load_image(op, layer_id, name[len("config-"):-len(".json")], names):
                        doubtful = True
        removed = [] if doubtful else self.collect_garbage(op)
        if removed:
            op.info("image store: removed %d layer(s) no image has: %s", len(removed), ", ".join(removed))
        op.info("image store %s: %d layers, %d images", self.images_dir, len(self._layers) - 1, len(self._images))

    def collect_garbage(self, op: Operation) -> list[str]:
        """Delete layers no image has (left by a forced rmi whose container has gone since, or by a pull that died
        before recording its image), children first; a layer still some disk's parent (a container's) stays."""
        with self._lock:
            used = {layer for image in self._images.values() for layer in image.layers}
            orphans = [layer_id for layer_id in self._layers
                       if layer_id != SCRATCH and layer_id not in used and layer_id not in self._pins]

            def depth(layer_id: str) -> int:
                count, node = 0, self._layers[layer_id].parent
                while node is not None and node in self._layers and count < 1000:
                    count, node = count + 1, self._layers[node].parent
                return count

            orphans.sort(key=depth, reverse=True)
        return self.discard_layers(op, orphans)

    def _load_image(self, op: Operation, layer_id: str, hex_id: str, names: list[str]) -> bool:
        try:
            raw = self.datastore.download(op, self._meta(layer_id, f"config-{hex_id}.json"))
            if hashlib.sha256(raw).hexdigest() != hex_id:
                raise ValueError("its content does not match its id")
            image = self._image_from_config(raw)
            if image.top_layer != layer_id or any(layer not in self._layers for layer in image.layers):
                raise ValueError("its layers are not all in the store")
            ref_doc: dict = {}
            if f"refs-{hex_id}.json" in names:
                ref_doc = json.loads(self.datastore.download(op, self._meta(layer_id, f"refs-{hex_id}.json")))
        except (errors.VicError, ValueError, KeyError) as err:
            op.warning("image store: image sha256:%s in layer %s is unreadable (%s); ignored", hex_id, layer_id, err)
            return False
        with self._lock:
            self._images[image.id] = image
            entry = _Refs(list(ref_doc.get("repo_tags") or []), list(ref_doc.get("repo_digests") or []),
                          str(ref_doc.get("last_tag_time") or ""))
            self._refs[image.id] = entry
            for tag in list(entry.tags):
                other = self._tags.get(tag)
                if other is not None and other != image.id:
                    # a crash while a tag moved: the newer tagging wins
                    if self._refs[other].last_tag_time >= entry.last_tag_time:
                        entry.tags.remove(tag)
                        continue
                    self._refs[other].tags.remove(tag)
                self._tags[tag] = image.id
            for digest in entry.digests:
                self._digests[digest] = image.id
        return True

    def _image_from_config(self, raw: bytes) -> Image:
        config = json.loads(raw)
        if not isinstance(config, dict):
            raise ValueError("an image config is a JSON object")
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        layers = chain_ids(diff_ids)
        with self._lock:
            size = sum(self._layers[layer].size for layer in layers if layer in self._layers)
        return Image(id="sha256:" + hashlib.sha256(raw).hexdigest(), top_layer=layers[-1] if layers else SCRATCH,
                     layers=layers, config=config, created=str(config.get("created") or ""), size=size,
                     diff_ids=diff_ids, raw_config=raw)

    def _create_scratch(self, op: Operation) -> None:
        """The scratch layer: an empty tree with VIC's minimal OS structure (store.go createBaseStructure)."""
        import os
        op.info("image store: creating the scratch layer")
        self.datastore.mkdir(op, self.layer_dir(SCRATCH).join(METADATA_DIR))
        try:
            with self.disks.new_disk(op, self._disk_path(SCRATCH), capacity_kb=self.scratch_kb,
                                     label="scratch") as disk:
                for rel, mode in MIN_OS_DIRS.items():
                    os.makedirs(os.path.join(disk.data, rel), exist_ok=True)
                    os.chmod(os.path.join(disk.data, rel), mode)
                for rel, mode in MIN_OS_FILES.items():
                    with open(os.path.join(disk.data, rel), "a"):
                        pass
                    os.chmod(os.path.join(disk.data, rel), mode)
                for rel, target in MIN_OS_SYMLINKS.items():
                    path = os.path.join(disk.data, rel)
                    if not os.path.lexists(path):
                        os.symlink(target, path)
            self.datastore.upload(op, self.layer_dir(SCRATCH).join(MANIFEST), b"")
        except BaseException:
            self._delete_layer_files(op, SCRATCH)
            raise
        with self._lock:
            self._layers[SCRATCH] = Layer(SCRATCH, None)

    # -- queries ----------------------------------------------------------------------------------------------
    def has_image(self, image_id: str) -> bool:
        with self._lock:
            return image_id in self._images

    def has_layer(self, layer_id: str) -> bool:
        with self._lock:
            return layer_id in self._layers

    def layer(self, op: Operation, layer_id: str) -> Layer:
        with self._lock:
            found = self._layers.get(layer_id)
        if found is None:
            raise errors.NotFound(f"layer {layer_id} not found in the image store", op_id=op.id)
        return found

    def list(self, op: Operation) -> list[Image]:
        """Every image, newest first (as `docker images` lists them)."""
        self._ready(op)
        with self._lock:
            images = [self._view(image_id) for image_id in self._images]
        return sorted(images, key=lambda i: (i.created_unix, i.id), reverse=True)

    def get(self, op: Operation, ref_or_id: str) -> Image:
        """An image by reference (`busybox`, `busybox:1.36`, `busybox@sha256:…`), full ID, or ID prefix (moby's
        GetImage); ImageNotFound (`No such image: busybox:latest`) or InvalidReference otherwise."""
        image_id = self.resolve(op, ref_or_id)
        with self._lock:
            return self._view(image_id)

    def resolve(self, op: Operation, ref_or_id: str) -> str:
        """The image ID `ref_or_id` names (see `get`)."""
        self._ready(op)
        parsed = refs.parse_any(ref_or_id)
        with self._lock:
            if isinstance(parsed, str):
                if parsed in self._images:
                    return parsed
                raise ImageNotFound(f"No such image: {parsed}", op_id=op.id)
            if parsed.digest is not None:
                found = self._digests.get(str(parsed.canonical()))
            else:
                found = self._tags.get(str(parsed.with_default_tag()))
            if found is not None:
                return found
            found = self._search_prefix(ref_or_id)
            if found is not None:
                return found
        raise ImageNotFound(f"No such image: {parsed.with_default_tag().familiar()}", op_id=op.id)

    def _search_prefix(self, text: str) -> str | None:
        prefix = text[len("sha256:"):] if text.startswith("sha256:") else text
        if not re.match(r"^[a-f0-9]+$", prefix or "-"):
            return None
        matches = [i for i in self._images if i[len("sha256:"):].startswith(prefix)]
        return matches[0] if len(matches) == 1 else None

    def _view(self, image_id: str) -> Image:
        """A copy of an image with its current references (callers may keep it)."""
        image = self._images[image_id]
        entry = self._refs.get(image_id) or _Refs()
        return Image(image.id, image.top_layer, list(image.layers), image.config,
                     [refs.parse_normalized(t).familiar() for t in entry.tags],
                     [refs.parse_normalized(d).familiar() for d in entry.digests],
                     image.created, image.size, list(image.diff_ids), image.raw_config, entry.last_tag_time)

    def references(self, op: Operation, image_id: str) -> list[refs.Reference]:
        """The image's tag and digest references (full)."""
        with self._lock:
            entry = self._refs.get(image_id) or _Refs()
            return [refs.parse_normalized(r) for r in entry.tags + entry.digests]

    # -- writing layers ---------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def layer_lock(self, layer_id: str) -> Iterator[None]:
        """Held while a layer is written, so two pulls of one layer write it once."""
        with self._lock:
            lock = self._layer_locks.setdefault(layer_id, threading.Lock())
        with lock:
            yield

    @contextlib.contextmanager
    def pin(self, layer_ids: list[str]) -> Iterator[None]:
        """Keep `discard_layers` off these layers while a pull or load that uses them runs."""
        with self._lock:
            self._pins.update(layer_ids)
        try:
            yield
        finally:
            with self._lock:
                self._pins.subtract(layer_ids)
                for layer_id in layer_ids:
                    if self._pins[layer_id] <= 0:
                        del self._pins[layer_id]

    def discard_layers(self, op: Operation, layer_ids: list[str]) -> list[str]:
        """Delete layers a failed pull or load wrote (top first), unless an image has them or another pull uses
        them (pinned more than once: ours and theirs); the ids deleted."""
        deleted = []
        for layer_id in layer_ids:
            with self._lock:
                used = any(layer_id in image.layers for image in self._images.values()) or \
                    self._pins[layer_id] > 1 or layer_id not in self._layers
            if used:
                continue
            with self.layer_lock(layer_id):
                try:
                    self.datastore.delete_disk(op, self._disk_path(layer_id))
                except errors.InUse:
                    continue
                with self._lock:
                    self._layers.pop(layer_id, None)
                self.datastore.delete(op, self.layer_dir(layer_id))
            deleted.append(layer_id)
        return deleted

    def write_layer(self, op: Operation, layer_id: str, parent: str | None, tar: BinaryIO, *,
                    diff_id: str | None = None, blob_digest: str | None = None) -> Layer:
        """Write one layer from its (uncompressed) tar as a child disk of `parent` (None: scratch).

        `diff_id`, when given, is checked against the tar's sha256 (VerificationFailed, and nothing is left
        behind). An existing layer is returned as it is (the tar is not read).
        """
        self._ready(op)
        parent = parent or SCRATCH
        with self.layer_lock(layer_id):
            with self._lock:
                existing = self._layers.get(layer_id)
            if existing is not None:
                return existing
            parent_disk = self.layer_disk(op, parent)
            op.info("image store: writing layer %s on %s", layer_id, parent)
            self._delete_layer_files(op, layer_id)  # leftovers of an earlier failed write
            self.datastore.mkdir(op, self.layer_dir(layer_id).join(METADATA_DIR))
            try:
                with self.disks.new_disk(op, self._disk_path(layer_id), parent_disk,
                                         label=f"image layer {layer_id[:12]}") as disk:
                    result = layer_tar.unpack(tar, disk.data, check=op.check)
                if diff_id is not None and result.diff_id != diff_id:
                    raise VerificationFailed(f"layer {layer_id[:12]}: diff ID verification failed: expected "
                                             f"{diff_id}, got {result.diff_id}", op_id=op.id)
                layer = Layer(layer_id, parent, result.diff_id, result.size, blob_digest, result.tar_size)
                self.datastore.upload(op, self._meta(layer_id, TARSPLIT), result.tarsplit)
                self.datastore.upload(op, self._meta(layer_id, LAYER_META), layer.to_json())
                self.datastore.upload(op, self.layer_dir(layer_id).join(MANIFEST), b"")
            except BaseException as err:
                op.warning("image store: writing layer %s failed (%s); removing it", layer_id, err)
                with contextlib.suppress(errors.VicError):
                    self._delete_layer_files(op, layer_id)
                raise
            with self._lock:
                self._layers[layer_id] = layer
            return layer

    def _delete_layer_files(self, op: Operation, layer_id: str) -> None:
        """Delete a layer's disk and folder (the disk first: a locked one, a container's parent, stops here)."""
        self.datastore.delete_disk(op, self._disk_path(layer_id))
        self.datastore.delete(op, self.layer_dir(layer_id))

    # -- images -------------------------------------------------------------------------------------------------
    def add_image(self, op: Operation, raw_config: bytes, *, tag: refs.Reference | str | None = None,
                  digest: refs.Reference | str | None = None) -> tuple[Image, bool]:
        """Record an image whose layers are all written (its config, byte for byte), and optionally tag it and
        note the manifest digest it was pulled by. Returns (image, whether the tag now points somewhere new)."""
        self._ready(op)
        image = self._image_from_config(raw_config)
        missing = [layer for layer in image.layers if not self.has_layer(layer)]
        if missing:
            raise errors.InvalidState(f"image {image.id}: layer {missing[0]} is not in the store", op_id=op.id)
        with self._lock:
            known = image.id in self._images
        if not known:
            self.datastore.upload(op, self._meta(image.top_layer, f"config-{image.id[7:]}.json"), raw_config)
            with self._lock:
                self._images.setdefault(image.id, image)
                self._refs.setdefault(image.id, _Refs())
            self._save_refs(op, image.id)
        changed = not known
        if tag is not None:
            changed = self._set_tag(op, image.id, _full(tag).with_default_tag()) or changed
        if digest is not None:
            changed = self._add_digest(op, image.id, _full(digest).canonical()) or changed
        with self._lock:
            return self._view(image.id), changed

    def _set_tag(self, op: Operation, image_id: str, tag: refs.Reference) -> bool:
        """Point `tag` at the image (moving it off another one); whether anything changed."""
        key = str(tag.tagged())
        with self._lock:
            previous = self._tags.get(key)
            if previous == image_id:
                return False
            self._tags[key] = image_id
            now = _now()
            if previous is not None:
                self._refs[previous].tags.remove(key)
            entry = self._refs[image_id]
            entry.tags.append(key)
            entry.last_tag_time = now
        if previous is not None:
            self._save_refs(op, previous)
        self._save_refs(op, image_id)
        return True

    def _add_digest(self, op: Operation, image_id: str, canonical: refs.Reference) -> bool:
        key = str(canonical)
        with self._lock:
            previous = self._digests.get(key)
            if previous == image_id:
                return False
            self._digests[key] = image_id
            if previous is not None and key in self._refs[previous].digests:
                self._refs[previous].digests.remove(key)
            self._refs[image_id].digests.append(key)
        if previous is not None:
            self._save_refs(op, previous)
        self._save_refs(op, image_id)
        return True

    def _save_refs(self, op: Operation, image_id: str) -> None:
        with self._lock:
            image = self._images.get(image_id)
            entry = self._refs.get(image_id)
            if image is None or entry is None:
                return
            data = entry.to_json()
        self.datastore.upload(op, self._meta(image.top_layer, f"refs-{image_id[7:]}.json"), data)

    def tag(self, op: Operation, ref_or_id: str, new_tag: refs.Reference | str) -> Image:
        """`docker tag`: point a tag at the image `ref_or_id` names (moving it off any other image)."""
        image_id = self.resolve(op, ref_or_id)
        target = _full(new_tag)
        if target.digest is not None:
            raise errors.InvalidArgument("refusing to create a tag with a digest reference", op_id=op.id)
        self._set_tag(op, image_id, target.with_default_tag())
        self._event(op, "tag", image_id, {"name": target.with_default_tag().familiar()})
        with self._lock:
            return self._view(image_id)

    def untag(self, op: Operation, ref: refs.Reference | str) -> str | None:
        """Remove one tag or digest reference; the image it pointed at (None if it pointed nowhere)."""
        target = _full(ref)
        with self._lock:
            if target.digest is not None:
                key = str(target.canonical())
                image_id = self._digests.pop(key, None)
                if image_id is not None:
                    self._refs[image_id].digests.remove(key)
            else:
                key = str(target.with_default_tag().tagged())
                image_id = self._tags.pop(key, None)
                if image_id is not None:
                    self._refs[image_id].tags.remove(key)
        if image_id is not None:
            self._save_refs(op, image_id)
        return image_id

    # -- deleting (moby daemon/images/image_delete.go) ----------------------------------------------------------
    def remove(self, op: Operation, ref_or_id: str, *, force: bool = False, prune: bool = True) -> list[dict]:
        """`docker rmi`: Docker's records (`{"Untagged": …}`, `{"Deleted": …}`), or ImageConflict / NotFound."""
        image_id = self.resolve(op, ref_or_id)
        records: list[dict] = []
        repo_refs = self.references(op, image_id)
        removed_repository_ref = False
        if not _is_id_prefix(image_id, ref_or_id):
            if not force and _is_single_reference(repo_refs):
                using = self._containers(op, image_id)
                if using:
                    raise ImageConflict(
                        f'conflict: unable to remove repository reference "{ref_or_id}" (must force) - container '
                        f"{short_id(using[0].id)} is using its referenced image {short_id(image_id)}", op_id=op.id)
            parsed = refs.parse_normalized(ref_or_id).with_default_tag()
            self.untag(op, parsed)
            records.append({"Untagged": parsed.familiar()})
            self._event(op, "untag", image_id, {"name": image_id})
            repo_refs = self.references(op, image_id)
            if parsed.digest is None:
                # the last tag of a repository takes that repository's digest references with it
                if not any(r.digest is None and r.name == parsed.name for r in repo_refs):
                    for other in [r for r in repo_refs if r.digest is not None and r.name == parsed.name]:
                        self.untag(op, other)
                        records.append({"Untagged": other.familiar()})
                    repo_refs = self.references(op, image_id)
            if repo_refs:
                return records
            removed_repository_ref = True
        elif _is_single_reference(repo_refs):
            conflict = self._conflict(op, image_id, hard=True, active_ref=False, stopped=not force)
            if conflict is not None:
                raise conflict
            for ref in repo_refs:
                self.untag(op, ref)
                records.append({"Untagged": ref.familiar()})
                self._event(op, "untag", image_id, {"name": image_id})
        self._delete_helper(op, image_id, records, force=force, quiet=removed_repository_ref)
        return records

    def _containers(self, op: Operation, image_id: str) -> list[ContainerUse]:
        return list(self.usage(op, image_id) or []) if self.usage is not None else []

    def _conflict(self, op: Operation, image_id: str, *, hard: bool, active_ref: bool,
                  stopped: bool) -> ImageConflict | None:
        short = short_id(image_id)
        using = self._containers(op, image_id) if hard or stopped else []
        if hard:
            running = next((c for c in using if c.running), None)
            if running is not None:
                return ImageConflict(f"conflict: unable to delete {short} (cannot be forced) - image is being used "
                                     f"by running container {short_id(running.id)}", hard=True, used=True,
                                     op_id=op.id)
        if active_ref and self.references(op, image_id):
            return ImageConflict(f"conflict: unable to delete {short} (must be forced) - image is referenced in "
                                 f"multiple repositories", op_id=op.id)
        if stopped:
            idle = next((c for c in using if not c.running), None)
            if idle is not None:
                return ImageConflict(f"conflict: unable to delete {short} (must be forced) - image is being used "
                                     f"by stopped container {short_id(idle.id)}", used=True, op_id=op.id)
        return None

    def _delete_helper(self, op: Operation, image_id: str, records: list[dict], *, force: bool,
                       quiet: bool) -> None:
        conflict = self._conflict(op, image_id, hard=True, active_ref=not force, stopped=not force)
        if conflict is not None:
            dangling = not self.references(op, image_id)
            if quiet and (not dangling or conflict.used):
                return
            raise conflict
        for ref in self.references(op, image_id):
            self.untag(op, ref)
            records.append({"Untagged": ref.familiar()})
            self._event(op, "untag", image_id, {"name": image_id})
        removed = self._delete_image(op, image_id)
        records.append({"Deleted": image_id})
        records.extend({"Deleted": f"sha256:{layer}"} for layer in removed)
        self._event(op, "delete", image_id, {"name": image_id})

    def _delete_image(self, op: Operation, image_id: str) -> list[str]:
        """Delete the image's files, then its layers no other image has; the layer ids deleted (top first)."""
        with self._lock:
            image = self._images.pop(image_id, None)
            self._refs.pop(image_id, None)
            if image is None:
                return []
            shared = {layer for other in self._images.values() for layer in other.layers}
        hex_id = image_id[7:]
        self.datastore.delete(op, self._meta(image.top_layer, f"refs-{hex_id}.json"))
        self.datastore.delete(op, self._meta(image.top_layer, f"config-{hex_id}.json"))
        removed: list[str] = []
        for layer_id in reversed(image.layers):
            if layer_id in shared:
                break  # another image has it, and so every layer under it
            with self.layer_lock(layer_id):
                try:
                    self.datastore.delete_disk(op, self._disk_path(layer_id))
                except errors.InUse as err:
                    op.info("image store: layer %s stays: %s", layer_id, err)
                    break  # a container's disk is its child; its parents stay too
                with self._lock:
                    self._layers.pop(layer_id, None)
                self.datastore.delete(op, self.layer_dir(layer_id))
            removed.append(layer_id)
        return removed

    # -- reading layers back (docker save) --------------------------------------------------------------------
    @contextlib.contextmanager
    def open_image(self, op: Operation, image: Image) -> Iterator[dict[str, str]]:
        """The data directories of an image's layers ({layer id: path}), readable while the context lasts.

        A scratch child disk of the top layer is attached to the appliance: its chain names every layer's data.
        """
        import secrets
        self.datastore.mkdir(op, self.tmp_dir)
        path = self.tmp_dir.join(f"export-{secrets.token_hex(8)}.vmdk")
        with self.disks.new_disk(op, path, self.layer_disk(op, image.top_layer), label="image export",
                                 destroy=True) as disk:
            yield _layer_paths(image, disk)

    def layer_tar(self, op: Operation, layer_id: str, data_dir: str) -> Iterator[bytes]:
        """A layer's original tar (its sha256 is the layer's diff ID), from its tar-split and its data."""
        try:
            split = self.datastore.download(op, self._meta(layer_id, TARSPLIT))
        except errors.NotFound:
            split = None
        if split is None:
            import tempfile
            op.warning("image store: layer %s has no tar-split; packing its tree (its diff ID will differ)",
                       layer_id)
            with tempfile.TemporaryFile() as spool:
                layer_tar.pack(data_dir, spool)
                spool.seek(0)
                while True:
                    block = spool.read(layer_tar.CHUNK)
                    if not block:
                        return
                    yield block
        yield from layer_tar.export(split, data_dir)

    # -- misc ------------------------------------------------------------------------------------------------
    def _event(self, op: Operation, action: str, image_id: str, attributes: dict) -> None:
        """Docker's image events (moby LogImageEvent): the image's labels plus `name`."""
        if self.on_event is None:
            return
        with self._lock:
            image = self._images.get(image_id)
        if image is not None:
            attributes = {**image.labels, **attributes}
        try:
            self.on_event(op, action, image_id, attributes)
        except Exception as err:  # events are best effort; a listener must not fail an image operation
            op.debug("image event %s for %s: listener failed: %s", action, image_id, err)

    def event(self, op: Operation, action: str, image_id: str, attributes: dict | None = None) -> None:
        """Publish an image event for callers that act on images (pull, load, save)."""
        self._event(op, action, image_id, attributes or {})

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"layers": len(self._layers) - (1 if SCRATCH in self._layers else 0), "images": len(self._images)}


def _layer_paths(image: Image, disk: AttachedDisk) -> dict[str, str]:
    # chain: scratch, layers..., the scratch child itself (last)
    data = list(disk.chain[:-1])
    layers = [SCRATCH, *image.layers]
    if len(data) != len(layers):
        raise errors.InternalError(f"image {image.id}: the disk chain has {len(data)} layers, the image "
                                   f"{len(layers)}")
    return dict(zip(layers, data))


def _full(ref: refs.Reference | str) -> refs.Reference:
    return ref if isinstance(ref, refs.Reference) else refs.parse_normalized(ref)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _is_id_prefix(image_id: str, text: str) -> bool:
    return image_id.startswith(text) or image_id.split(":", 1)[1].startswith(text)


def _is_single_reference(repo_refs: list[refs.Reference]) -> bool:
    """moby isSingleReference: all references in one repository with at most one tag; False when empty."""
    if len(repo_refs) <= 1:
        return len(repo_refs) == 1
    single = None
    canonical_names = set()
    for ref in repo_refs:
        if ref.digest is not None:
            canonical_names.add(ref.name)
        elif single is None:
            single = ref
        else:
            return False
    if single is None:
        single = repo_refs[0]
    return len(canonical_names) == 1 and single.name in canonical_names


__all__ = ["ImageStore", "Image", "Layer", "ContainerUse", "ImageNotFound", "ImageConflict", "SCRATCH",
           "chain_id", "chain_ids", "short_id", "parse_created"]
