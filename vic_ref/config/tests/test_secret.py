"""@secret values: NaCl secretbox as VIC uses it, checked byte for byte against libsodium where it is installed."""
from __future__ import annotations

import base64
import ctypes
import ctypes.util
import os

import pytest

from vic_ref.config import extraconfig as ec
from vic_ref.config.extraconfig import struct, vic
from vic_ref.config.secret import GUESTINFO_SECRET_KEY, SecretKey
from vic_ref.errors import InvalidArgument


def _libsodium():
    name = ctypes.util.find_library("sodium")
    for candidate in filter(None, [name, "libsodium.so.23", "libsodium.so"]):
        try:
            lib = ctypes.CDLL(candidate)
        except OSError:
            continue
        if lib.sodium_init() >= 0:
            return lib
    return None


@pytest.mark.parametrize("size", [0, 1, 31, 32, 33, 64, 65, 300])
def test_seal_matches_libsodium_secretbox(size):
    lib = _libsodium()
    if lib is None:
        pytest.skip("libsodium is not installed: nothing to compare with")
    key, nonce, message = os.urandom(32), os.urandom(24), os.urandom(size)
    boxed = ctypes.create_string_buffer(16 + size)
    assert lib.crypto_secretbox_easy(boxed, message, ctypes.c_ulonglong(size), nonce, key) == 0
    assert SecretKey(key).seal(message, nonce) == nonce + boxed.raw  # Go's secretbox.Seal(nonce[:], …)


def test_open_and_tampering():
    key = SecretKey()
    sealed = key.seal(b"token")
    assert key.open(sealed) == b"token"
    assert key.seal(b"token") != sealed  # a fresh nonce each time
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    for bad in (tampered, sealed[:10]):
        with pytest.raises(InvalidArgument):
            key.open(bad)
    with pytest.raises(InvalidArgument):
        SecretKey().open(sealed)


def test_key_string_form():
    key = SecretKey()
    assert SecretKey.from_string(str(key)).key == key.key
    assert "<SecretKey>" == repr(key)
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(InvalidArgument):
            SecretKey.from_string(bad)


@struct
class Connection:
    username: str = vic("username", "read-only")
    token: str = vic("token", "secret")
    empty: str = vic("empty", "secret")


def test_sealed_entries_round_trip():
    data = ec.encode(Connection(username="admin", token="s3cr3t"))
    assert set(data) == {"guestinfo.vice./username", "guestinfo.vice./token@secret", "guestinfo.vice./empty@secret"}
    key = SecretKey()
    sealed = key.seal_values(data)
    assert sealed[GUESTINFO_SECRET_KEY] == str(key)
    assert "s3cr3t" not in sealed["guestinfo.vice./token@secret"]
    assert sealed["guestinfo.vice./username"] == "admin"
    opened = SecretKey.from_data(sealed).open_values(sealed)
    assert GUESTINFO_SECRET_KEY not in opened
    assert ec.decode(Connection, opened) == Connection(username="admin", token="s3cr3t")
    assert SecretKey.from_data({}) is None
    with pytest.raises(InvalidArgument):
        SecretKey().open_values(sealed)
