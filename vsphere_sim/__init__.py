"""vsphere_sim: an in-Python vCenter serving the real vim25 SOAP API to unmodified pyVmomi clients.

Imported lazily so a guest program that only needs `vsphere_sim.guest_channel` doesn't load pyVmomi.
"""
__all__ = ["Simulator", "DEFAULT_USER", "DEFAULT_PASSWORD"]


def __getattr__(name):
    if name in __all__:
        from . import simulator
        return getattr(simulator, name)
    raise AttributeError(name)
