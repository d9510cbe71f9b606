"""A VCH's surroundings on the module's embedded sim, and a started port layer on them (a test module that needs
other surroundings overrides `env`; the rest follow it)."""
from __future__ import annotations

import pytest

from vic_ref.portlayer.tests.harness import VchEnv
from vic_ref.trace import Operation


@pytest.fixture(scope="module")
def env(sim_target):
    env = VchEnv(sim_target.url, sim_target.user, sim_target.password)
    yield env
    env.close()


@pytest.fixture(scope="module")
def image(env):
    return env.images.add(env.op, "busybox")


@pytest.fixture(scope="module")
def portlayer(env, image):
    pl = env.portlayer()
    yield pl
    pl.close(env.op)


@pytest.fixture
def op(request) -> Operation:
    return Operation.new(request.node.name)
