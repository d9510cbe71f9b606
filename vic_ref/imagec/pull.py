"""Pull an image from a registry into the image store, reporting progress as `docker pull` shows it.

Two steps, so an API server can fail with a plain HTTP error before it starts streaming (as dockerd does when the
manifest can't be had):

    puller = Puller(store)
    plan = puller.prepare(op, reference.parse_pull("busybox"), credentials)   # registry errors raise here
    image = puller.run(op, plan, sink)                                         # progress messages to sink(dict)

`run` downloads blobs (three at a time) into a temporary folder, checking each digest, and writes layers in order as
child disks (`ImageStore.write_layer`, which checks each diff ID). If anything fails, the layers this pull wrote and
no image uses are deleted again: a failed pull leaves nothing behind.
"""
from __future__ import annotations

import gzip
import json
import os
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

from .. import errors
from ..trace import Operation
from . import manifest as mf
from . import progress
from .auth import ANONYMOUS, Credentials
from .errors import RegistryError, UnsupportedManifest, VerificationFailed, translate_pull_error
from .ids import chain_ids, digest_of
from .reference import Reference
from .registry import RegistryClient

MAX_DOWNLOADS = 3  # dockerd's max-concurrent-downloads default


@dataclass
class PullPlan:
    """What `prepare` found: the manifest to pull and the digest docker prints."""
    ref: Reference
    client: RegistryClient
    manifest: mf.ImageManifest
    digest: str  # of the manifest (or the manifest list / index) the reference names
    media_type: str = ""
    notes: list[str] = field(default_factory=list)


class _Counting:
    """A file wrapper that reports how many bytes were read (the `Extracting` progress of a compressed blob)."""

    def __init__(self, handle: BinaryIO, on_read):
        self.handle = handle
        self.count = 0
        self.on_read = on_read

    def read(self, n: int = -1) -> bytes:
        data = self.handle.read(n)
        self.count += len(data)
        self.on_read(self.count)
        return data

    def readable(self) -> bool:
        return True


class Puller:
    def __init__(self, store, *, insecure_registries=(), tmp_dir: str | None = None,
                 max_downloads: int = MAX_DOWNLOADS, timeout: float = 60.0):
        self.store = store
        self.insecure_registries = tuple(insecure_registries)
        self.tmp_dir = tmp_dir
        self.max_downloads = max_downloads
        self.timeout = timeout

    def client(self, ref: Reference, credentials: Credentials = ANONYMOUS) -> RegistryClient:
        return RegistryClient(ref.registry, credentials, insecure_registries=self.insecure_registries,
                              timeout=self.timeout)

    # -- step 1 -------------------------------------------------------------------------------------------------
    def prepare(self, op: Operation, ref: Reference, credentials: Credentials = ANONYMOUS, *,
                platform: tuple[str, str] | None = None) -> PullPlan:
        """Resolve the reference to one image manifest for `platform` (default linux/amd64), errors as
        `docker pull` prints them."""
        ref = ref.with_default_tag()
        client = self.client(ref, credentials)
        try:
            raw, content_type, digest = client.get_manifest(op, ref.path, ref.tag_or_digest)
            parsed = mf.parse(raw, content_type)
            notes = []
            if isinstance(parsed, mf.ImageIndex):
                entry = parsed.select(*(platform or mf.DEFAULT_PLATFORM))
                notes.append(f"{parsed.media_type} → {entry.digest}")
                raw2, content_type2, _ = client.get_manifest(op, ref.path, entry.digest)
                parsed = mf.parse(raw2, content_type2 or entry.media_type)
                if not isinstance(parsed, mf.ImageManifest):
                    raise UnsupportedManifest("a manifest list entry is itself a manifest list")
        except RegistryError as err:
            client.close()
            raise translate_pull_error(err, ref) from err
        except BaseException:
            client.close()
            raise
        op.debug("pull %s: manifest %s (%s), %d layers", ref, digest, parsed.media_type, len(parsed.layers))
        return PullPlan(ref, client, parsed, digest, parsed.media_type, notes)

    # -- step 2 -------------------------------------------------------------------------------------------------
    def run(self, op: Operation, plan: PullPlan, sink: progress.ProgressSink | None = None):
        """Pull the planned image; returns the store's Image. Progress goes to `sink` (one dict per message)."""
        try:
            return self._run(op, plan, progress.Reporter(sink))
        except RegistryError as err:
            raise translate_pull_error(err, plan.ref) from err
        finally:
            plan.client.close()

    def pull(self, op: Operation, ref: Reference, credentials: Credentials = ANONYMOUS,
             sink: progress.ProgressSink | None = None):
        return self.run(op, self.prepare(op, ref, credentials), sink)

    def _run(self, op: Operation, plan: PullPlan, reporter: progress.Reporter):
        ref, client, manifest = plan.ref, plan.client, plan.manifest
        self.store.start(op)
        reporter.status(f"Pulling from {ref.path}", ref.tag_or_digest)
        raw_config = client.get_blob(op, ref.path, manifest.config.digest, what="image config")
        config = _config(raw_config)
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(manifest.layers):
            raise errors.InvalidArgument("layers from manifest don't match image configuration", op_id=op.id)
        for layer in manifest.layers:
            layer.compression  # noqa: B018 - raises UnsupportedManifest for types we can't apply
        layer_ids = chain_ids(diff_ids)
        image_id = digest_of(raw_config)
        with self.store.pin(layer_ids):
            if not self.store.has_image(image_id):
                self._layers(op, plan, reporter, diff_ids, layer_ids)
            image, changed = self.store.add_image(op, raw_config, tag=ref if ref.digest is None else None,
                                                  digest=ref.name_only().with_digest(plan.digest))
        reporter.status(f"Digest: {plan.digest}")
        verb = "Downloaded newer image" if changed else "Image is up to date"
        reporter.status(f"Status: {verb} for {ref.familiar()}")
        self.store.event(op, "pull", ref.familiar(), {"name": ref.familiar_name()})
        return image

    def _layers(self, op: Operation, plan: PullPlan, reporter: progress.Reporter, diff_ids: list[str],
                layer_ids: list[str]) -> None:
        ref, client, descriptors = plan.ref, plan.client, plan.manifest.layers
        todo = [i for i, layer_id in enumerate(layer_ids) if not self.store.has_layer(layer_id)]
        for i, descriptor in enumerate(descriptors):
            short = progress.short_id(descriptor.digest)
            if i in todo:
                reporter.update("Pulling fs layer", short)
            else:
                reporter.update("Already exists", short)
        written: list[str] = []
        stop = threading.Event()
        with tempfile.TemporaryDirectory(prefix="vic-pull-", dir=self.tmp_dir) as tmp, \
                ThreadPoolExecutor(max_workers=self.max_downloads, thread_name_prefix="pull") as pool:
            started = threading.Semaphore(self.max_downloads)
            futures: dict[int, Future] = {}
            for n, i in enumerate(todo):
                if n >= self.max_downloads:
                    reporter.update("Waiting", progress.short_id(descriptors[i].digest))
                futures[i] = pool.submit(self._download, op, client, ref, descriptors[i],
                                         os.path.join(tmp, f"{i}.blob"), reporter, started, stop)
            try:
                for i in todo:
                    path = futures[i].result()
                    descriptor = descriptors[i]
                    parent = layer_ids[i - 1] if i > 0 else None
                    self._extract(op, descriptor, path, layer_ids[i], parent, diff_ids[i], reporter)
                    written.append(layer_ids[i])
                    os.unlink(path)
            except BaseException:
                stop.set()
                for future in futures.values():
                    future.cancel()
                discarded = self.store.discard_layers(op, list(reversed(written)))
                if discarded:
                    op.info("pull %s failed: removed the layers it wrote: %s", ref, ", ".join(discarded))
                raise

    def _download(self, op: Operation, client: RegistryClient, ref: Reference, descriptor: mf.Descriptor,
                  path: str, reporter: progress.Reporter, started: threading.Semaphore,
                  stop: threading.Event) -> str:
        short = progress.short_id(descriptor.digest)
        with started:
            if stop.is_set():
                raise errors.Cancelled("pull aborted", op_id=op.id)
            total = descriptor.size or None
            with open(path, "wb") as handle:
                client.download_blob(op, ref.path, descriptor.digest, handle,
                                     progress=lambda n: _checked(stop, op) or reporter.count(
                                         "Downloading", short, n, total))
            reporter.update("Verifying Checksum", short)
            reporter.update("Download complete", short)
        return path

    def _extract(self, op: Operation, descriptor: mf.Descriptor, path: str, layer_id: str, parent: str | None,
                 diff_id: str, reporter: progress.Reporter) -> None:
        short = progress.short_id(descriptor.digest)
        total = os.path.getsize(path)
        with open(path, "rb") as raw:
            counting = _Counting(raw, lambda n: reporter.count("Extracting", short, n, total))
            stream: BinaryIO = gzip.GzipFile(fileobj=counting, mode="rb") if _is_gzip(raw) else counting
            try:
                self.store.write_layer(op, layer_id, parent, stream, diff_id=diff_id,
                                       blob_digest=descriptor.digest)
            except (OSError, EOFError, gzip.BadGzipFile) as err:
                raise VerificationFailed(f"failed to register layer: {err}", op_id=op.id) from err
        reporter.update("Pull complete", short)


def _checked(stop: threading.Event, op: Operation) -> None:
    if stop.is_set():
        raise errors.Cancelled("pull aborted", op_id=op.id)
    return None


def _is_gzip(handle: BinaryIO) -> bool:
    position = handle.tell()
    magic = handle.read(2)
    handle.seek(position)
    return magic == b"\x1f\x8b"


def _config(raw: bytes) -> dict:
    try:
        config = json.loads(raw)
    except ValueError as err:
        raise errors.InvalidArgument(f"invalid image config: {err}") from err
    if not isinstance(config, dict):
        raise errors.InvalidArgument("invalid image config: not a JSON object")
    os_name = config.get("os")
    if os_name and os_name != "linux":
        raise errors.NotSupported(f'image operating system "{os_name}" cannot be used on this platform')
    return config


__all__ = ["Puller", "PullPlan", "MAX_DOWNLOADS"]
