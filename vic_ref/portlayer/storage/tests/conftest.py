"""Fixtures for the image store tests: one stand-in appliance per module on the module's embedded sim."""
from __future__ import annotations

import dataclasses
import uuid

import pytest

from .harness import Appliance


@pytest.fixture(scope="module")
def appliance(sim_target):
    running = Appliance(sim_target)
    yield running
    running.close()


@pytest.fixture
def fresh_vch(appliance):
    """The module's appliance with a new VCH id: an empty image store of its own."""
    appliance.config = dataclasses.replace(
        appliance.config, init=dataclasses.replace(
            appliance.config.init, common=dataclasses.replace(appliance.config.init.common, id=str(uuid.uuid4()))))
    return appliance


@pytest.fixture
def store(fresh_vch):
    return fresh_vch.store()
