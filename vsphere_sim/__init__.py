"""vsphere_sim: an in-Python vCenter serving the real vim25 SOAP API to unmodified pyVmomi clients."""
from .simulator import DEFAULT_PASSWORD, DEFAULT_USER, Simulator

__all__ = ["Simulator", "DEFAULT_USER", "DEFAULT_PASSWORD"]
