"""A real Docker registry for the image suites, and small busybox images pushed to it (no docker engine needed).

pytest fixtures (a plugin: `vic_ref/testing/fixtures.py` loads it, or `pytest_plugins = ["vic_ref.testing.registry"]`):
- `registry` (session): Debian's `docker-registry` (distribution 2.8) serving on a free loopback port, filesystem
  storage in a temporary folder, no auth. Skipped with a clear message when the binary is missing, unless `CI` is
  set (then it fails: `make install` puts it there).
- `busybox_image` (session): a one-layer image built from Debian's busybox-static (`/bin/busybox` plus its applet
  links from `busybox --list-full`, /etc/passwd, /etc/group; `Cmd ["sh"]`, Env PATH), pushed as
  `<registry>/busybox:latest` through the Registry v2 API (monolithic blob uploads, a schema 2 manifest).
- `busybox_volume_image` (session): busybox plus a second layer (a /data folder, /etc/motd, a whiteout of
  /usr/bin/wget, an opaque /opt), with `VOLUME /data`, `ENTRYPOINT`, `WORKDIR`, a label; `<registry>/busybox-volume`.

`Registry.push_image(repo, tag, layers, config)` pushes any image built with `make_layer` / `make_config`.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import secrets
import socket
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

REGISTRY_BINARY = "/usr/bin/docker-registry"
BUSYBOX = "/bin/busybox"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CREATED = "2024-01-01T00:00:00Z"
MTIME = 1704067200  # CREATED, so the layers are the same bytes on every run


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def missing_tool(message: str) -> None:
    """Skip (on a developer's machine) or fail (in CI, where `make install` provides it)."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(message + " (CI is set: `make install` should have installed it)")
    pytest.skip(message)


# -- layers and images ---------------------------------------------------------------------------------------------
@dataclass
class Layer:
    tar: bytes  # uncompressed
    blob: bytes  # gzip-compressed, what the registry stores

    @property
    def diff_id(self) -> str:
        return sha256(self.tar)

    @property
    def digest(self) -> str:
        return sha256(self.blob)


def make_layer(entries: list[tuple]) -> Layer:
    """A layer tar from (kind, path, ...) entries, deterministic (fixed times, root owner):
    ("dir", path, mode), ("file", path, bytes, mode), ("symlink", path, target), ("hardlink", path, target),
    ("whiteout", path) (a `.wh.` marker for path), ("opaque", dir)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            kind, path = entry[0], entry[1]
            if kind == "whiteout":
                head, _, base = path.rpartition("/")
                path = f"{head}/.wh.{base}" if head else f".wh.{base}"
                kind, entry = "file", ("file", path, b"", 0o644)
            elif kind == "opaque":
                path = f"{path.rstrip('/')}/.wh..wh..opq"
                kind, entry = "file", ("file", path, b"", 0o644)
            info = tarfile.TarInfo(path)
            info.mtime, info.uid, info.gid, info.uname, info.gname = MTIME, 0, 0, "", ""
            data = None
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, entry[2]
            elif kind == "file":
                data = entry[2]
                info.size, info.mode = len(data), entry[3]
            elif kind == "symlink":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry[2], 0o777
            elif kind == "hardlink":
                info.type, info.linkname, info.mode = tarfile.LNKTYPE, entry[2], 0o755
            else:
                raise ValueError(f"unknown layer entry kind {kind!r}")
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = out.getvalue()
    return Layer(raw, gzip.compress(raw, mtime=0))


def busybox_entries(busybox: str = BUSYBOX) -> list[tuple]:
    """A busybox rootfs (guest-feasibility.md §1): the static binary, its applet links, users and groups."""
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    with open(busybox, "rb") as handle:
        binary = handle.read()
    dirs = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "tmp", "home", "var", "dev", "proc", "sys"}
    for applet in applets:
        parent = applet.rpartition("/")[0]
        while parent:
            dirs.add(parent)
            parent = parent.rpartition("/")[0]
    modes = {"root": 0o700, "tmp": 0o1777}
    entries: list[tuple] = [("dir", d, modes.get(d, 0o755)) for d in sorted(dirs)]
    entries.append(("file", "bin/busybox", binary, 0o755))
    entries += [("symlink", a, "/bin/busybox") for a in sorted(set(applets)) if a != "bin/busybox"]
    # Docker Hub's busybox has every applet in /bin too (VIC's suites run `/bin/top`): a /bin link for each other
    bin_names = {a.rpartition("/")[2] for a in applets if a.startswith("bin/")}
    entries += [("symlink", f"bin/{n}", "/bin/busybox")
                for n in sorted({a.rpartition("/")[2] for a in applets} - bin_names)]
    entries.append(("file", "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                                          b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644))
    entries.append(("file", "etc/group", b"root:x:0:\nnogroup:x:65534:\n", 0o644))
    return entries


def make_config(layers: list[Layer], config: dict | None = None, history: list[dict] | None = None, *,
                architecture: str = "amd64", os_name: str = "linux") -> bytes:
    """An image config (its bytes: their sha256 is the image ID)."""
    doc = {
        "architecture": architecture, "os": os_name, "created": CREATED,
        "config": config if config is not None else {"Env": [PATH_ENV], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": history if history is not None else [
            {"created": CREATED, "created_by": f"/bin/sh -c #(nop) ADD file:{layer.diff_id[7:19]} in / "}
            for layer in layers],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass
class PushedImage:
    registry: str  # host:port
    repo: str
    tag: str
    manifest_digest: str
    config: bytes
    layers: list[Layer] = field(default_factory=list)
    manifest: bytes = b""

    @property
    def reference(self) -> str:
        """`127.0.0.1:PORT/busybox:latest`."""
        return f"{self.registry}/{self.repo}:{self.tag}"

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repo}"

    @property
    def image_id(self) -> str:
        return sha256(self.config)

    @property
    def diff_ids(self) -> list[str]:
        return [layer.diff_id for layer in self.layers]

    @property
    def config_doc(self) -> dict:
        return json.loads(self.config)


# -- the registry ----------------------------------------------------------------------------------------------
class Registry:
    """A running docker-registry, and the v2 API calls a push makes."""

    def __init__(self, root: Path, port: int, process: subprocess.Popen | None = None):
        self.root = root
        self.port = port
        self.process = process
        self.host = f"127.0.0.1:{port}"
        self.url = f"http://{self.host}"
        self.http = requests.Session()

    def stop(self) -> None:
        self.http.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def push_blob(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        head = self.http.head(f"{self.url}/v2/{repo}/blobs/{digest}", timeout=30)
        if head.status_code == 200:
            return digest
        start = self.http.post(f"{self.url}/v2/{repo}/blobs/uploads/", timeout=30)
        assert start.status_code == 202, start.text
        location = urljoin(self.url, start.headers["Location"])
        put = self.http.put(location, params={"digest": digest}, data=data, timeout=60,
                            headers={"Content-Type": "application/octet-stream"})
        assert put.status_code == 201, put.text
        return digest

    def push_manifest(self, repo: str, reference: str, raw: bytes, media_type: str = MANIFEST_V2) -> str:
        reply = self.http.put(f"{self.url}/v2/{repo}/manifests/{reference}", data=raw, timeout=30,
                              headers={"Content-Type": media_type})
        assert reply.status_code == 201, reply.text
        return reply.headers.get("Docker-Content-Digest") or sha256(raw)

    def push_image(self, repo: str, tag: str, layers: list[Layer], config: bytes, *,
                   media_type: str = MANIFEST_V2) -> PushedImage:
        """Push the blobs and a schema 2 (or OCI) manifest; tag it."""
        for layer in layers:
            self.push_blob(repo, layer.blob)
        self.push_blob(repo, config)
        oci = media_type == OCI_MANIFEST
        manifest = {
            "schemaVersion": 2, "mediaType": media_type,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json" if oci else CONFIG_V1,
                       "size": len(config), "digest": sha256(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip" if oci else LAYER_GZIP,
                        "size": len(layer.blob), "digest": layer.digest} for layer in layers],
        }
        raw = json.dumps(manifest, indent=3).encode()
        digest = self.push_manifest(repo, tag, raw, media_type)
        return PushedImage(self.host, repo, tag, digest, config, list(layers), raw)

    def push_index(self, repo: str, tag: str, entries: list[tuple[PushedImage, str, str]], *,
                   media_type: str = MANIFEST_LIST) -> str:
        """A manifest list / OCI index of pushed images: entries of (image, os, architecture)."""
        child_type = OCI_MANIFEST if media_type == OCI_INDEX else MANIFEST_V2
        doc = {"schemaVersion": 2, "mediaType": media_type, "manifests": [
            {"mediaType": child_type, "size": len(image.manifest), "digest": image.manifest_digest,
             "platform": {"architecture": arch, "os": os_name}} for image, os_name, arch in entries]}
        return self.push_manifest(repo, tag, json.dumps(doc, indent=3).encode(), media_type)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_registry(root: Path, binary: str = REGISTRY_BINARY, timeout: float = 20.0) -> Registry:
    """Start docker-registry on a free loopback port with filesystem storage under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    last_error = ""
    for _ in range(3):  # the port may be taken between picking and binding
        port = _free_port()
        config = {  # YAML is a superset of JSON
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
            "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
            "health": {"storagedriver": {"enabled": False}},
        }
        config_path = root / "config.yml"
        config_path.write_text(json.dumps(config, indent=1))
        log = open(root / "registry.log", "ab")  # noqa: SIM115 - the process keeps it
        process = subprocess.Popen([binary, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        log.close()
        registry = Registry(root, port, process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:
                if requests.get(f"{registry.url}/v2/", timeout=2).status_code == 200:
                    return registry
            except requests.RequestException:
                pass
            time.sleep(0.1)
        registry.stop()
        last_error = (root / "registry.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"docker-registry did not start:\n{last_error}")


# -- fixtures --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """A running docker-registry (http, no auth) for the session."""
    if not os.path.exists(REGISTRY_BINARY):
        missing_tool(f"{REGISTRY_BINARY} is missing: apt-get install docker-registry")
    running = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield running
    finally:
        running.stop()


def busybox_layer() -> Layer:
    if not os.access(BUSYBOX, os.X_OK):
        missing_tool(f"{BUSYBOX} is missing: apt-get install busybox-static")
    return make_layer(busybox_entries())


@pytest.fixture(scope="session")
def busybox_image(registry) -> PushedImage:
    """`<registry>/busybox:latest`: one busybox layer, Cmd ["sh"]."""
    return push_busybox(registry)


def push_busybox(registry: Registry) -> PushedImage:
    """Build the busybox image and push it as `<registry>/busybox:latest`."""
    layer = busybox_layer()
    config = make_config([layer], {"Env": [PATH_ENV], "Cmd": ["sh"]}, [
        {"created": CREATED, "created_by": "/bin/sh -c #(nop) ADD file:busybox-static in / "},
        {"created": CREATED, "created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True}])
    return registry.push_image("busybox", "latest", [layer], config)


def volume_layer() -> Layer:
    return make_layer([
        ("dir", "data", 0o755), ("file", "data/README", b"the data volume\n", 0o644),
        ("dir", "etc", 0o755), ("file", "etc/motd", b"hello from busybox-volume\n", 0o644),
        ("dir", "usr", 0o755), ("dir", "usr/bin", 0o755), ("whiteout", "usr/bin/wget"),
        ("dir", "opt", 0o755), ("opaque", "opt"), ("file", "opt/tool", b"#!/bin/sh\necho tool\n", 0o755),
        ("hardlink", "opt/tool-link", "opt/tool"),
    ])


@pytest.fixture(scope="session")
def busybox_volume_image(registry, busybox_image) -> PushedImage:
    """`<registry>/busybox-volume:latest`: busybox plus a layer with /data; VOLUME, ENTRYPOINT, WORKDIR, a label."""
    layers = [busybox_image.layers[0], volume_layer()]
    config = make_config(layers, {
        "Env": [PATH_ENV, "GREETING=hello"], "Cmd": ["echo $GREETING"], "Entrypoint": ["/bin/sh", "-c"],
        "Volumes": {"/data": {}}, "WorkingDir": "/data", "Labels": {"org.vic-ref.test": "volume"},
        "ExposedPorts": {"8080/tcp": {}}}, [
        {"created": CREATED, "created_by": "/bin/sh -c #(nop) ADD file:busybox-static in / "},
        {"created": CREATED, "created_by": "/bin/sh -c #(nop) COPY dir:data in / "},
        {"created": CREATED, "created_by": '/bin/sh -c #(nop)  VOLUME ["/data"]', "empty_layer": True},
        {"created": CREATED, "created_by": '/bin/sh -c #(nop)  ENTRYPOINT ["/bin/sh" "-c"]', "empty_layer": True},
        {"created": CREATED, "created_by": '/bin/sh -c #(nop)  CMD ["echo $GREETING"]', "empty_layer": True}])
    return registry.push_image("busybox-volume", "latest", layers, config)


__all__ = ["Registry", "PushedImage", "Layer", "make_layer", "make_config", "busybox_entries", "busybox_layer",
           "push_busybox", "volume_layer", "start_registry", "registry", "busybox_image", "busybox_volume_image",
           "sha256"]
