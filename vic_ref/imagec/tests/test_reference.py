"""Reference parsing with distribution/reference's rules and texts."""
from __future__ import annotations

import pytest

from vic_ref import errors
from vic_ref.imagec import reference as r


@pytest.mark.parametrize("text, name, familiar", [
    ("busybox", "docker.io/library/busybox", "busybox"),
    ("busybox:1.36", "docker.io/library/busybox", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox", "busybox"),
    ("docker.io/busybox", "docker.io/library/busybox", "busybox"),
    ("index.docker.io/library/busybox:latest", "docker.io/library/busybox", "busybox:latest"),
    ("user/app", "docker.io/user/app", "user/app"),
    ("user/app/sub", "docker.io/user/app/sub", "user/app/sub"),
    ("127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox"),
    ("127.0.0.1:5000/busybox:latest", "127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox:latest"),
    ("localhost/app", "localhost/app", "localhost/app"),
    ("localhost:5000/a/b:c", "localhost:5000/a/b", "localhost:5000/a/b:c"),
    ("registry.example.com/x", "registry.example.com/x", "registry.example.com/x"),
    ("[::1]:5000/x", "[::1]:5000/x", "[::1]:5000/x"),
    ("a__b-c.d/e", "docker.io/a__b-c.d/e", "a__b-c.d/e"),  # not a domain: a path with separators... see below
])
def test_normalized_names(text, name, familiar):
    if text == "a__b-c.d/e":
        # a first component with a dot is a domain (splitDockerDomain), and `a__b-c.d` is a valid host? No:
        # underscores are not allowed in domains, so the whole thing is invalid
        with pytest.raises(r.InvalidReference, match="^invalid reference format$"):
            r.parse_normalized(text)
        return
    ref = r.parse_normalized(text)
    assert ref.name == name
    assert ref.familiar() == familiar


def test_defaults_and_parts():
    ref = r.parse_normalized("busybox").with_default_tag()
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("docker.io", "library/busybox", "latest", None)
    assert str(ref) == "docker.io/library/busybox:latest"
    assert ref.registry == "registry-1.docker.io"
    local = r.parse_normalized("127.0.0.1:5000/busybox")
    assert local.registry == "127.0.0.1:5000" and local.path == "busybox"
    digest = "sha256:" + "a" * 64
    pinned = r.parse_normalized(f"busybox@{digest}")
    assert pinned.tag is None and pinned.digest == digest
    assert pinned.with_default_tag() == pinned  # a digest needs no tag
    assert pinned.familiar() == f"busybox@{digest}"
    assert pinned.tag_or_digest == digest


@pytest.mark.parametrize("text, message", [
    ("", "invalid reference format"),  # split gives docker.io/library/ → empty path
    ("BusyBox", "invalid reference format: repository name (library/BusyBox) must be lowercase"),
    ("busybox:", "invalid reference format"),
    ("busy box", "invalid reference format"),
    ("busybox::1", "invalid reference format"),
    ("-busybox", "invalid reference format"),
    ("busybox@sha256:abc", "invalid reference format"),
    ("a" * 64, f"invalid repository name ({'a' * 64}), cannot specify 64-byte hexadecimal strings"),
    ("busybox:" + "x" * 129, "invalid reference format"),
])
def test_invalid(text, message):
    with pytest.raises(r.InvalidReference) as caught:
        r.parse_normalized(text)
    assert str(caught.value) == message
    assert isinstance(caught.value, errors.InvalidArgument)


def test_uppercase_first_component_is_a_domain():
    # splitDockerDomain: a first component that isn't all lower case is a registry host
    ref = r.parse_normalized("Foo/bar")
    assert (ref.domain, ref.path) == ("Foo", "bar")


def test_name_too_long():
    with pytest.raises(r.InvalidReference, match="must not be more than 255 characters"):
        r.parse_normalized("a/" + "b" * 300)


def test_digest_validation_texts():
    with pytest.raises(r.InvalidReference, match="unsupported digest algorithm"):
        r.validate_digest("md5:" + "a" * 32)
    with pytest.raises(r.InvalidReference, match="invalid checksum digest length"):
        r.validate_digest("sha256:abcd")
    with pytest.raises(r.InvalidReference, match="invalid checksum digest format"):
        r.validate_digest("nodigest")


def test_parse_any_ids_and_refs():
    full = "b" * 64
    assert r.parse_any(full) == f"sha256:{full}"
    assert r.parse_any(f"sha256:{full}") == f"sha256:{full}"
    short = r.parse_any("abc123")
    assert isinstance(short, r.Reference) and short.familiar() == "abc123"


def test_parse_pull_as_the_create_route():
    assert str(r.parse_pull("busybox")) == "docker.io/library/busybox:latest"
    assert str(r.parse_pull("docker.io/library/alpine", "3.19")) == "docker.io/library/alpine:3.19"
    digest = "sha256:" + "c" * 64
    by_digest = r.parse_pull("alpine", digest)  # a digest given as the tag
    assert by_digest.digest == digest and by_digest.tag is None
    with pytest.raises(r.InvalidReference, match="invalid tag format"):
        r.parse_pull("alpine", "bad tag")


@pytest.mark.parametrize("pattern, ref, expected", [
    ("busybox", "busybox:latest", True),
    ("busybox:*", "busybox:latest", True),
    ("busy*", "busybox:latest", True),
    ("*box", "busybox:1.36", True),
    ("library/*", "busybox:latest", False),
    ("127.0.0.1:5000/*", "127.0.0.1:5000/busybox:latest", True),
    ("*", "user/app:1", False),  # `*` does not cross `/`
    ("alpine", "busybox:latest", False),
])
def test_familiar_match(pattern, ref, expected):
    assert r.familiar_match(pattern, r.parse_normalized(ref)) is expected
