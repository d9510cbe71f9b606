"""Placeholder: datastores as real directories (filled in below)."""


class DatastoreFS:
    def __init__(self, sim, root):
        self.sim = sim
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def wipe(self):
        pass
