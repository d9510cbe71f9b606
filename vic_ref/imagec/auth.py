"""Registry credentials and the token flow (distribution's registry/client/auth, docker/cli's X-Registry-Auth).

A registry's `/v2/` answers 401 with `WWW-Authenticate` challenges: `Basic realm=...` (send credentials as they are)
or `Bearer realm=...,service=...` (ask the realm for a token: `GET realm?service=…&scope=repository:<path>:pull`,
anonymously or with basic credentials, and send `Authorization: Bearer <token>`).
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from .. import errors


@dataclass(frozen=True)
class Credentials:
    """What `X-Registry-Auth` carries (docker's AuthConfig); all empty = anonymous."""
    username: str = ""
    password: str = ""
    identity_token: str = ""  # an OAuth refresh token (docker login to an OAuth registry)
    registry_token: str = ""  # a bearer token to send as it is
    server_address: str = ""

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)

    def __repr__(self) -> str:  # never print secrets
        return f"Credentials(username={self.username!r}, anonymous={self.anonymous})"


ANONYMOUS = Credentials()


def _b64decode(text: str) -> bytes:
    text = text.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.urlsafe_b64decode(padded)
    except (binascii.Error, ValueError):
        return base64.b64decode(padded)


def decode_registry_auth(header: str | None) -> Credentials:
    """The credentials in an `X-Registry-Auth` header (base64url JSON); empty or `e30=` (`{}`) is anonymous.

    An unreadable header is anonymous as well, as dockerd treats it (it logs and carries on).
    """
    if not header:
        return ANONYMOUS
    try:
        data = json.loads(_b64decode(header).decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return ANONYMOUS
    if not isinstance(data, dict):
        return ANONYMOUS
    username, password = str(data.get("username") or ""), str(data.get("password") or "")
    if not username and data.get("auth"):
        try:
            username, _, password = _b64decode(str(data["auth"])).decode("utf-8").partition(":")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            pass
    return Credentials(username, password, str(data.get("identitytoken") or ""),
                       str(data.get("registrytoken") or ""), str(data.get("serveraddress") or ""))


def encode_registry_auth(credentials: Credentials) -> str:
    """The `X-Registry-Auth` value for `credentials` (for tests and clients)."""
    doc = {"username": credentials.username, "password": credentials.password,
           "serveraddress": credentials.server_address}
    if credentials.identity_token:
        doc["identitytoken"] = credentials.identity_token
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


# -- challenges ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "basic", "bearer"
    params: dict

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(rf'\s*({_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|({_TOKEN}))\s*,?')


def parse_challenges(headers: list[str]) -> list[Challenge]:
    """Every challenge in the `WWW-Authenticate` header values (RFC 7235; quoted strings may hold commas)."""
    out: list[Challenge] = []
    for header in headers:
        text = header
        while text.strip():
            match = re.match(rf"\s*,?\s*({_TOKEN})\s*", text)
            if match is None:
                break
            scheme = match.group(1).lower()
            text = text[match.end():]
            params: dict[str, str] = {}
            while True:
                param = _PARAM.match(text)
                # a token followed by something other than `=` starts the next challenge
                if param is None:
                    break
                value = param.group(2)
                value = re.sub(r"\\(.)", r"\1", value) if value is not None else param.group(3)
                params[param.group(1).lower()] = value
                text = text[param.end():]
            out.append(Challenge(scheme, params))
    return out


def scope_for(path: str, actions: str = "pull") -> str:
    return f"repository:{path}:{actions}"


def token_from_response(doc: dict) -> str:
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    if not token:
        raise errors.AuthenticationFailed("authorization server did not include a token in the response")
    return str(token)


__all__ = ["Credentials", "ANONYMOUS", "decode_registry_auth", "encode_registry_auth", "Challenge",
           "parse_challenges", "scope_for", "token_from_response"]
