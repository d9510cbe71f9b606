"""Placeholder: the default inventory (filled in below)."""


def seed_default_inventory(sim):
    pass
