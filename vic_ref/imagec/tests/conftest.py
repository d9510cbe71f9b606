"""Fixtures for imagec: an image store on a stand-in appliance (the storage tests' harness). The docker-registry
fixtures (`registry`, `busybox_image`, `busybox_volume_image`) come from vic_ref.testing.registry, a plugin the root
conftest loads."""
from __future__ import annotations

from vic_ref.portlayer.conftest import op  # noqa: F401
from vic_ref.portlayer.storage.tests.conftest import appliance, fresh_vch, store  # noqa: F401
