"""Manifests and indexes, credentials and challenges, progress messages: the pure parts of imagec."""
from __future__ import annotations

import base64
import json

import pytest

from vic_ref.imagec import auth, manifest, progress
from vic_ref.imagec.errors import NoMatchingManifest, RegistryError, UnsupportedManifest, translate_pull_error
from vic_ref.imagec.reference import parse_normalized
from vic_ref.imagec.registry import is_insecure

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
DIGEST_C = "sha256:" + "c" * 64


def index(media_type: str, entries: list[tuple[str, str, str]]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": [
        {"mediaType": manifest.DOCKER_MANIFEST, "digest": d, "size": 1, "platform": {"os": o, "architecture": a}}
        for d, o, a in entries]}).encode()


@pytest.mark.parametrize("media_type", [manifest.DOCKER_MANIFEST_LIST, manifest.OCI_INDEX])
def test_index_picks_linux_amd64(media_type):
    parsed = manifest.parse(index(media_type, [(DIGEST_A, "linux", "arm64"), (DIGEST_B, "linux", "amd64"),
                                               (DIGEST_C, "windows", "amd64")]))
    assert isinstance(parsed, manifest.ImageIndex)
    assert parsed.select().digest == DIGEST_B
    assert parsed.select("linux", "arm64").digest == DIGEST_A


def test_index_without_amd64():
    parsed = manifest.parse(index(manifest.OCI_INDEX, [(DIGEST_A, "linux", "arm64")]))
    with pytest.raises(NoMatchingManifest) as caught:
        parsed.select()
    assert str(caught.value) == "no matching manifest for linux/amd64 in the manifest list entries"


def test_oci_index_without_media_type_is_told_by_shape():
    raw = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": manifest.OCI_MANIFEST, "digest": DIGEST_A, "size": 1,
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    assert isinstance(manifest.parse(raw, "application/octet-stream"), manifest.ImageIndex)
    raw = json.dumps({"schemaVersion": 2, "config": {"digest": DIGEST_A, "size": 2}, "layers": []}).encode()
    assert manifest.parse(raw).media_type == manifest.OCI_MANIFEST


def test_schema2_and_oci_manifests():
    for media_type, layer_type, compression in ((manifest.DOCKER_MANIFEST, manifest.DOCKER_LAYER, "gzip"),
                                                (manifest.OCI_MANIFEST, manifest.OCI_LAYER, "")):
        raw = json.dumps({"schemaVersion": 2, "mediaType": media_type,
                          "config": {"mediaType": manifest.DOCKER_CONFIG, "digest": DIGEST_A, "size": 10},
                          "layers": [{"mediaType": layer_type, "digest": DIGEST_B, "size": 20}]}).encode()
        parsed = manifest.parse(raw)
        assert isinstance(parsed, manifest.ImageManifest)
        assert parsed.config.digest == DIGEST_A and parsed.layers[0].size == 20
        assert parsed.layers[0].compression == compression


def test_unsupported():
    with pytest.raises(UnsupportedManifest, match="schema 1"):
        manifest.parse(json.dumps({"schemaVersion": 1, "name": "x", "fsLayers": []}).encode())
    zstd = manifest.Descriptor(manifest.OCI_LAYER_ZSTD, DIGEST_A, 1)
    with pytest.raises(UnsupportedManifest, match="unsupported media type"):
        zstd.compression  # noqa: B018


# -- credentials and challenges --------------------------------------------------------------------------------
def test_registry_auth_header():
    assert auth.decode_registry_auth(None).anonymous
    assert auth.decode_registry_auth("e30=").anonymous  # {} as the docker CLI sends it
    assert auth.decode_registry_auth("!!not base64!!").anonymous
    creds = auth.decode_registry_auth(auth.encode_registry_auth(auth.Credentials("me", "pw", server_address="r")))
    assert (creds.username, creds.password, creds.server_address) == ("me", "pw", "r")
    packed = base64.urlsafe_b64encode(json.dumps({"auth": base64.b64encode(b"u:p:w").decode()}).encode())
    assert auth.decode_registry_auth(packed.decode().rstrip("=")).password == "p:w"  # unpadded, `auth` field
    assert "pw" not in repr(creds)


def test_challenges():
    parsed = auth.parse_challenges([
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull",error="insufficient_scope"',
        'Basic realm="a, realm"'])
    assert [c.scheme for c in parsed] == ["bearer", "basic"]
    assert parsed[0].realm == "https://auth.docker.io/token"
    assert parsed[0].params["scope"] == "repository:library/busybox:pull"
    assert parsed[0].params["error"] == "insufficient_scope"
    assert parsed[1].realm == "a, realm"
    # two challenges in one header value, as requests joins repeated headers
    joined = auth.parse_challenges(['Basic realm="x", Bearer realm="https://t",service="s"'])
    assert [(c.scheme, c.realm) for c in joined] == [("basic", "x"), ("bearer", "https://t")]


def test_pull_error_texts():
    ref = parse_normalized("nosuch").with_default_tag()
    denied = translate_pull_error(RegistryError("DENIED"), ref)
    assert str(denied) == ("pull access denied for nosuch, repository does not exist or may require 'docker login': "
                           "denied: requested access to the resource is denied")
    missing = translate_pull_error(RegistryError("MANIFEST_UNKNOWN", "manifest unknown"),
                                   parse_normalized("busybox:nosuch"))
    assert str(missing) == "manifest for busybox:nosuch not found: manifest unknown: manifest unknown"
    unknown = translate_pull_error(RegistryError("NAME_UNKNOWN"), parse_normalized("127.0.0.1:5000/x"))
    assert str(unknown) == ("repository 127.0.0.1:5000/x not found: name unknown: repository name not known to "
                            "registry")


def test_insecure_registries():
    assert is_insecure("127.0.0.1:5000") and is_insecure("localhost:5000") and is_insecure("[::1]:5000")
    assert not is_insecure("registry.example.com")
    assert is_insecure("registry.example.com:5000", ["registry.example.com:5000"])
    assert is_insecure("10.1.2.3:5000", ["10.0.0.0/8"])
    assert not is_insecure("11.1.2.3:5000", ["10.0.0.0/8"])


# -- progress -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size, text", [(0, "0B"), (999, "999B"), (1000, "1kB"), (32768, "32.77kB"),
                                        (2221834, "2.222MB"), (123456789, "123.5MB"), (5 * 10 ** 9, "5GB")])
def test_human_size(size, text):
    assert progress.human_size(size) == text


def test_progress_bar_and_lines():
    assert progress.progress_bar(0, 0) == ""
    assert progress.progress_bar(32768, 2221834) == "[>" + " " * 50 + "]  32.77kB/2.222MB"
    assert progress.progress_bar(2221834, 2221834) == "[" + "=" * 50 + ">]  2.222MB/2.222MB"
    line = progress.encode(progress.update("Downloading", "ec562eabd705", 32768, 2221834))
    assert line.startswith(b'{"status":"Downloading","progressDetail":{"current":32768,"total":2221834},'
                           b'"progress":"[\\u003e')
    assert line.endswith(b'"id":"ec562eabd705"}\r\n')
    assert progress.encode(progress.status("Digest: x")) == b'{"status":"Digest: x"}\r\n'
    assert progress.update("Pull complete", "abc") == {"status": "Pull complete", "progressDetail": {}, "id": "abc"}
    assert progress.error("boom") == {"errorDetail": {"message": "boom"}, "error": "boom"}


def test_reporter_throttles_counts():
    sent = []
    reporter = progress.Reporter(sent.append)
    for n in range(0, 1001):
        reporter.count("Downloading", "x", n, 1000)
    assert sent[-1]["progressDetail"] == {"current": 1000, "total": 1000}
    assert 2 <= len(sent) <= 110  # about one per percent, and always the end
