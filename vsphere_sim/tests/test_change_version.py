"""changeVersion is read back with fromisoformat for the shape the sim writes: the same datetime strptime gives, and
any other text read (or refused) exactly as strptime does."""
from __future__ import annotations

import datetime

import pytest

from vsphere_sim.objects import vm_config

FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@pytest.mark.parametrize("text", [
    "2026-11-24T01:43:51.123456Z", "2026-01-02T03:04:05.000001Z", "2026-13-02T03:04:05.000001Z",
    "2026-01-02T03:04:05.12Z", "2026-01-02T03:04:05Z", "2026-01-02 03:04:05.000001Z", "2026-1-02T03:04:05.000001Z",
    "2026-01-02T03:04:61.000001Z", "2026-01-02T24:00:00.000000Z", "2026-02-30T03:04:05.000001Z", "x", ""])
def test_same_as_strptime(text):
    try:
        expected = datetime.datetime.strptime(text, FORMAT).replace(tzinfo=datetime.UTC)
    except ValueError:
        with pytest.raises(ValueError):
            vm_config._parse_change_version(text)
    else:
        assert vm_config._parse_change_version(text) == expected


def test_next_change_version_grows():
    first, stamp = vm_config.next_change_version(None)
    assert first == stamp.strftime(FORMAT)
    future = "2999-01-01T00:00:00.000000Z"
    nxt, _ = vm_config.next_change_version(future)
    assert nxt == "2999-01-01T00:00:00.000001Z"
