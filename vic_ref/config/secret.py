"""Values of `@secret` keys, sealed as VIC seals them (`pkg/vsphere/extraconfig/secret.go`).

VIC encrypts a secret value with NaCl's secretbox (XSalsa20-Poly1305) under a 32-byte key and stores
`base64(nonce || tag || ciphertext)`; the key itself, base64, goes in `guestinfo.ovfEnv`, which vSphere hides from API
readers but shows the guest. `cryptography` has Poly1305 but no XSalsa20, so the stream cipher is here, in Python:
secrets are a few short values (a token, a key), not bulk data.
"""
from __future__ import annotations

import base64
import hmac
import secrets as _random
import struct
from collections.abc import Mapping

from cryptography.hazmat.primitives.poly1305 import Poly1305

from ..errors import InvalidArgument
from .extraconfig import escape_nil, is_secret, unescape_nil

GUESTINFO_SECRET_KEY = "guestinfo.ovfEnv"
KEY_SIZE = 32
NONCE_SIZE = 24
TAG_SIZE = 16

_SIGMA = struct.unpack("<4I", b"expand 32-byte k")
_MASK = 0xFFFFFFFF


def _rounds(x: list[int]) -> list[int]:
    """20 Salsa20 rounds (10 double rounds) on a 16-word state, in place."""
    def r(a, b, c, k):  # x[a] ^= rotl(x[b] + x[c], k)
        v = (x[b] + x[c]) & _MASK
        x[a] ^= ((v << k) | (v >> (32 - k))) & _MASK

    for _ in range(10):
        r(4, 0, 12, 7), r(8, 4, 0, 9), r(12, 8, 4, 13), r(0, 12, 8, 18)
        r(9, 5, 1, 7), r(13, 9, 5, 9), r(1, 13, 9, 13), r(5, 1, 13, 18)
        r(14, 10, 6, 7), r(2, 14, 10, 9), r(6, 2, 14, 13), r(10, 6, 2, 18)
        r(3, 15, 11, 7), r(7, 3, 15, 9), r(11, 7, 3, 13), r(15, 11, 7, 18)
        r(1, 0, 3, 7), r(2, 1, 0, 9), r(3, 2, 1, 13), r(0, 3, 2, 18)
        r(6, 5, 4, 7), r(7, 6, 5, 9), r(4, 7, 6, 13), r(5, 4, 7, 18)
        r(11, 10, 9, 7), r(8, 11, 10, 9), r(9, 8, 11, 13), r(10, 9, 8, 18)
        r(12, 15, 14, 7), r(13, 12, 15, 9), r(14, 13, 12, 13), r(15, 14, 13, 18)
    return x


def _state(key: bytes, sixteen: bytes) -> list[int]:
    k = struct.unpack("<8I", key)
    n = struct.unpack("<4I", sixteen)
    return [_SIGMA[0], *k[:4], _SIGMA[1], *n, _SIGMA[2], *k[4:], _SIGMA[3]]


def _hsalsa20(key: bytes, nonce16: bytes) -> bytes:
    x = _rounds(_state(key, nonce16))
    return struct.pack("<8I", x[0], x[5], x[10], x[15], x[6], x[7], x[8], x[9])


def _salsa20_stream(key: bytes, nonce8: bytes, length: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < length:
        start = _state(key, nonce8 + struct.pack("<Q", counter))
        x = _rounds(list(start))
        out += struct.pack("<16I", *((a + b) & _MASK for a, b in zip(x, start)))
        counter += 1
    return bytes(out[:length])


def _xor(data: bytes, stream: bytes) -> bytes:
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream[:len(data)], "little")).to_bytes(len(data),
                                                                                                    "little")


class SecretKey:
    """A secretbox key: seals and opens `@secret` values."""

    def __init__(self, key: bytes | None = None):
        key = _random.token_bytes(KEY_SIZE) if key is None else bytes(key)
        if len(key) != KEY_SIZE:
            raise InvalidArgument("invalid secret key")
        self.key = key

    @classmethod
    def from_string(cls, text: str) -> SecretKey:
        try:
            return cls(base64.b64decode(text, validate=True))
        except ValueError as err:
            raise InvalidArgument(f"invalid secret key: {err}") from err

    def __str__(self) -> str:
        return base64.b64encode(self.key).decode("ascii")

    def __repr__(self) -> str:
        return "<SecretKey>"  # never the key itself

    # -- secretbox ----------------------------------------------------------------------------------------------
    def seal(self, plaintext: bytes, nonce: bytes | None = None) -> bytes:
        """`nonce || tag || ciphertext`, as Go's secretbox.Seal(nonce[:], …) returns it."""
        nonce = _random.token_bytes(NONCE_SIZE) if nonce is None else nonce
        subkey = _hsalsa20(self.key, nonce[:16])
        stream = _salsa20_stream(subkey, nonce[16:], 32 + len(plaintext))
        ciphertext = _xor(plaintext, stream[32:])
        tag = Poly1305.generate_tag(stream[:32], ciphertext)
        return nonce + tag + ciphertext

    def open(self, sealed: bytes) -> bytes:
        if len(sealed) < NONCE_SIZE + TAG_SIZE:
            raise InvalidArgument("sealed value too short")
        nonce, tag, ciphertext = sealed[:NONCE_SIZE], sealed[NONCE_SIZE:NONCE_SIZE + TAG_SIZE], \
            sealed[NONCE_SIZE + TAG_SIZE:]
        subkey = _hsalsa20(self.key, nonce[:16])
        stream = _salsa20_stream(subkey, nonce[16:], 32 + len(ciphertext))
        if not hmac.compare_digest(Poly1305.generate_tag(stream[:32], ciphertext), tag):
            raise InvalidArgument("failed to decrypt value")
        return _xor(ciphertext, stream[32:])

    # -- extraConfig entries ------------------------------------------------------------------------------------
    def seal_values(self, data: Mapping[str, str]) -> dict[str, str]:
        """Encoded entries with every `@secret` value sealed, plus the key itself (VIC's SecretKey.Sink)."""
        out = {GUESTINFO_SECRET_KEY: str(self)}
        for key, value in data.items():
            if is_secret(key):
                value = base64.b64encode(self.seal(unescape_nil(value).encode("utf-8"))).decode("ascii")
            out[key] = value
        return out

    def open_values(self, data: Mapping[str, str]) -> dict[str, str]:
        """Entries with `@secret` values opened (VIC's SecretKey.Source); the key entry is left out."""
        out = {}
        for key, value in data.items():
            if key == GUESTINFO_SECRET_KEY:
                continue
            if is_secret(key):
                try:
                    value = escape_nil(self.open(base64.b64decode(value, validate=True)).decode("utf-8"))
                except ValueError as err:
                    raise InvalidArgument(f"failed to decrypt value for {key}: {err}") from err
            out[key] = value
        return out

    @classmethod
    def from_data(cls, data: Mapping[str, str]) -> SecretKey | None:
        """The key stored beside the entries, if any."""
        text = data.get(GUESTINFO_SECRET_KEY)
        return cls.from_string(text) if text else None
