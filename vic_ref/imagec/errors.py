"""Registry errors, and how a pull reports them (moby's distribution/errors.go texts).

A registry answers errors as `{"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", ...}]}`; Go's
errcode prints one as `<code lowercased, _ as space>: <message>`, e.g. `manifest unknown: manifest unknown`. A pull
turns the not-found kinds into Docker's sentences (`translate_pull_error`), so `docker pull` prints what it prints
against dockerd. Every class is a `vic_ref.errors` subclass; personality/errors.py maps them to HTTP by base class.
"""
from __future__ import annotations

from .. import errors

# errcode's own default messages (docker/distribution registry/api/errcode, registry/api/v2/errors.go)
DEFAULT_MESSAGES = {
    "UNAUTHORIZED": "authentication required",
    "DENIED": "requested access to the resource is denied",
    "UNSUPPORTED": "The operation is unsupported.",
    "TOOMANYREQUESTS": "too many requests",
    "UNKNOWN": "unknown error",
    "MANIFEST_UNKNOWN": "manifest unknown",
    "NAME_UNKNOWN": "repository name not known to registry",
    "BLOB_UNKNOWN": "blob unknown to registry",
    "NAME_INVALID": "invalid repository name",
    "TAG_INVALID": "manifest tag did not match URI",
    "MANIFEST_INVALID": "manifest invalid",
    "DIGEST_INVALID": "provided digest did not match uploaded content",
}


def code_text(code: str) -> str:
    """errcode.ErrorCode.Error(): `MANIFEST_UNKNOWN` → `manifest unknown`."""
    return code.replace("_", " ").lower()


class RegistryError(errors.VicError):
    """An error a registry answered (or, without a body, one made from its HTTP status)."""

    def __init__(self, code: str, message: str = "", *, status: int = 0, detail=None, text: str = "", **kwargs):
        self.code = code
        self.registry_message = message or DEFAULT_MESSAGES.get(code, "")
        self.status = status
        self.detail = detail
        # `text` replaces the errcode form for errors that are not the registry's own (unparseable answers)
        super().__init__(text or f"{code_text(code)}: {self.registry_message}", **kwargs)


class RegistryNotFound(errors.NotFound):
    """A pull of something the registry doesn't have (or won't show): docker's sentences, 404."""


class RegistryUnauthorized(errors.AuthenticationFailed):
    """The registry wants credentials we don't have, or refused the ones we sent."""


class RegistryUnavailable(errors.Unavailable):
    """The registry can't be reached (connection refused, TLS failure, 5xx)."""


class VerificationFailed(errors.InternalError):
    """Content whose digest does not match what the registry or manifest promised."""


class UnsupportedManifest(errors.NotSupported):
    """A manifest media type (or layer type) this client does not pull."""


class NoMatchingManifest(errors.NotFound):
    """A manifest list / OCI index without a linux/amd64 entry."""


def translate_pull_error(err: BaseException, ref) -> BaseException:
    """The error a pull of `ref` reports for a registry error (moby translatePullError / notFoundError)."""
    if not isinstance(err, RegistryError):
        return err
    cause = str(err)
    if err.code == "DENIED":
        return RegistryNotFound(f"pull access denied for {ref.familiar_name()}, repository does not exist or may "
                                f"require 'docker login': {cause}", op_id=err.op_id)
    if err.code == "MANIFEST_UNKNOWN":
        return RegistryNotFound(f"manifest for {ref.familiar()} not found: {cause}", op_id=err.op_id)
    if err.code == "NAME_UNKNOWN":
        return RegistryNotFound(f"repository {ref.familiar_name()} not found: {cause}", op_id=err.op_id)
    if err.code == "UNAUTHORIZED":
        return RegistryUnauthorized(cause, op_id=err.op_id)
    if err.code == "TOOMANYREQUESTS" or err.status >= 500:
        return RegistryUnavailable(cause, op_id=err.op_id)
    return err


__all__ = [
    "RegistryError", "RegistryNotFound", "RegistryUnauthorized", "RegistryUnavailable", "VerificationFailed",
    "UnsupportedManifest", "NoMatchingManifest", "translate_pull_error", "code_text", "DEFAULT_MESSAGES",
]
