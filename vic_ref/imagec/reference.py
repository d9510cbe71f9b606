"""Image references with Docker's rules and texts (github.com/distribution/reference: regexp.go, normalize.go).

    ref = parse_normalized("busybox")            # docker.io/library/busybox (no tag yet)
    ref = ref.with_default_tag()                 # docker.io/library/busybox:latest
    ref.familiar()                               # "busybox:latest", what docker prints
    ref.registry, ref.path, ref.tag, ref.digest  # "docker.io", "library/busybox", "latest", None

Errors are `InvalidReference` (an InvalidArgument) with the library's own texts (`invalid reference format`,
`invalid reference format: repository name (library/BusyBox) must be lowercase`, ...).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .. import errors

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_NAME = "library"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255
# Where docker.io's API lives (the Hub's v2 endpoint).
DOCKER_HUB_REGISTRY = "registry-1.docker.io"

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN_AND_PORT = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_NAME = rf"(?:{_DOMAIN_AND_PORT}/)?{_REMOTE_NAME}"

REFERENCE_RE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$")
ANCHORED_NAME_RE = re.compile(rf"^(?:({_DOMAIN_AND_PORT})/)?({_REMOTE_NAME})$")
TAG_RE = re.compile(rf"^{_TAG}$")
IDENTIFIER_RE = re.compile(r"^[a-f0-9]{64}$")
SHORT_IDENTIFIER_RE = re.compile(r"^[a-f0-9]{6,64}$")
_DIGEST_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}


class InvalidReference(errors.InvalidArgument):
    default_message = "invalid reference format"


@dataclass(frozen=True)
class Reference:
    """A normalized named reference: registry domain, repository path, and an optional tag and/or digest."""
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    # -- names ----------------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The full repository name: `docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def registry(self) -> str:
        """The domain to talk to: docker.io's API host for docker.io, else the domain as given."""
        return DOCKER_HUB_REGISTRY if self.domain == DEFAULT_DOMAIN else self.domain

    def familiar_name(self) -> str:
        """The name as docker prints it: `busybox`, `user/app`, `127.0.0.1:5000/busybox`."""
        if self.domain == DEFAULT_DOMAIN:
            parts = self.path.split("/")
            if len(parts) == 2 and parts[0] == OFFICIAL_REPO_NAME:
                return parts[1]
            return self.path
        return self.name

    def familiar(self) -> str:
        """FamiliarString: `busybox:latest`, `busybox@sha256:…`."""
        return self.familiar_name() + self._suffix()

    def _suffix(self) -> str:
        out = f":{self.tag}" if self.tag is not None else ""
        return out + (f"@{self.digest}" if self.digest is not None else "")

    def __str__(self) -> str:
        return self.name + self._suffix()

    # -- variants -------------------------------------------------------------------------------------------------
    @property
    def is_name_only(self) -> bool:
        return self.tag is None and self.digest is None

    def with_tag(self, tag: str) -> Reference:
        if not TAG_RE.match(tag):
            raise InvalidReference("invalid tag format")
        return replace(self, tag=tag)

    def with_digest(self, digest: str) -> Reference:
        return replace(self, digest=validate_digest(digest))

    def with_default_tag(self) -> Reference:
        """TagNameOnly: the reference with `latest` when it has neither tag nor digest."""
        return replace(self, tag=DEFAULT_TAG) if self.is_name_only else self

    def name_only(self) -> Reference:
        return Reference(self.domain, self.path)

    def tagged(self) -> Reference:
        """Only the tag part (drop a digest), for repository tags."""
        return replace(self, digest=None)

    def canonical(self) -> Reference:
        """Only the digest part (drop a tag), for repository digests."""
        return replace(self, tag=None)

    @property
    def tag_or_digest(self) -> str:
        return self.digest if self.digest is not None else (self.tag or DEFAULT_TAG)


def validate_digest(text: str) -> str:
    """A digest `algorithm:hex` as go-digest validates it (its texts); returned unchanged."""
    algorithm, sep, encoded = text.partition(":")
    if not sep or not algorithm or not encoded:
        raise InvalidReference("invalid checksum digest format")
    length = _DIGEST_ALGORITHMS.get(algorithm)
    if length is None:
        if not re.match(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*$", algorithm):
            raise InvalidReference("invalid checksum digest format")
        raise InvalidReference("unsupported digest algorithm")
    if len(encoded) != length or not re.match(r"^[a-f0-9]+$", encoded):
        raise InvalidReference("invalid checksum digest length")
    return text


def parse(text: str) -> Reference:
    """reference.Parse: a reference exactly as written (no defaults); Reference.domain is "" without one."""
    match = REFERENCE_RE.match(text)
    if match is None:
        if text == "":
            raise InvalidReference("repository name must have at least one component")
        if REFERENCE_RE.match(text.lower()) is not None:
            raise InvalidReference("repository name must be lowercase")
        raise InvalidReference("invalid reference format")
    name, tag, digest = match.groups()
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    name_match = ANCHORED_NAME_RE.match(name)
    domain, path = (name_match.group(1) or "", name_match.group(2)) if name_match else ("", name)
    if digest is not None:
        validate_digest(digest)
    return Reference(domain, path, tag, digest)


def split_docker_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    first = name[:i]
    if i == -1 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, name[i + 1:]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = f"{OFFICIAL_REPO_NAME}/{remainder}"
    return domain, remainder


def parse_normalized(text: str) -> Reference:
    """reference.ParseNormalizedNamed: `busybox` → docker.io/library/busybox (tag and digest as written)."""
    if IDENTIFIER_RE.match(text):
        raise InvalidReference(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = split_docker_domain(text)
    remote_name = remainder.split(":", 1)[0]
    if remote_name.lower() != remote_name:
        raise InvalidReference(f"invalid reference format: repository name ({remote_name}) must be lowercase")
    ref = parse(f"{domain}/{remainder}")
    if not ref.domain:
        # a name the grammar could not split (cannot happen after split_docker_domain, kept for safety)
        raise InvalidReference("invalid reference format")
    return ref


def parse_any(text: str) -> Reference | str:
    """reference.ParseAnyReference: an image ID (`sha256:<hex>`, returned as that string) or a named reference."""
    if IDENTIFIER_RE.match(text):
        return "sha256:" + text
    if ":" in text and "/" not in text:
        algorithm, _, encoded = text.partition(":")
        if algorithm in _DIGEST_ALGORITHMS and re.match(r"^[a-f0-9]+$", encoded) \
                and len(encoded) == _DIGEST_ALGORITHMS[algorithm]:
            return text
    return parse_normalized(text)


def parse_pull(from_image: str, tag: str = "") -> Reference:
    """What `POST /images/create?fromImage=…&tag=…` pulls: the tag (or a digest given as the tag) is applied, and
    `latest` when there is neither (moby's postImagesCreate; pulling every tag is not supported)."""
    ref = parse_normalized(from_image)
    if tag:
        try:
            digest = validate_digest(tag)  # the "tag" may be a digest
        except InvalidReference:
            ref = ref.with_tag(tag)
        else:
            ref = Reference(ref.domain, ref.path, None, digest)
    return ref.with_default_tag()


def familiar_match(pattern: str, ref: Reference) -> bool:
    """reference.FamiliarMatch: a glob against the familiar string, and against the familiar name alone."""
    if _path_match(pattern, ref.familiar()):
        return True
    return _path_match(pattern, ref.familiar_name()) if ref.tag is not None or ref.digest is not None else False


def _path_match(pattern: str, text: str) -> bool:
    """Go's path.Match: `*` does not cross `/`."""
    regex = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            regex += "[^/]*"
        elif c == "?":
            regex += "[^/]"
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                return False
            body = pattern[i + 1:end]
            if body.startswith("^"):
                body = "!" + body[1:]
            regex += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            regex += re.escape(pattern[i])
        else:
            regex += re.escape(c)
        i += 1
    try:
        return re.fullmatch(regex, text) is not None
    except re.error:
        return False


__all__ = [
    "Reference", "InvalidReference", "parse", "parse_normalized", "parse_any", "parse_pull", "validate_digest",
    "familiar_match", "DEFAULT_DOMAIN", "DEFAULT_TAG", "IDENTIFIER_RE", "SHORT_IDENTIFIER_RE",
]
