"""Placeholder: the state store (filled in below)."""


class StateStore:
    def __init__(self, path):
        self.path = path

    def load(self, sim) -> bool:
        return False

    def flush(self, registry) -> None:
        registry.dirty.clear()
        registry.deleted.clear()

    def wipe(self):
        pass

    def close(self):
        pass
