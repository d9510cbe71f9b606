"""Placeholder: guest programs of powered-on VMs (filled in below)."""


class GuestSupervisor:
    def __init__(self, sim):
        self.sim = sim

    def resume_powered_on(self):
        pass

    def stop_all(self):
        pass
