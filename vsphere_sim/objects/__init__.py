"""One module per managed type. `create_managers` instantiates the singletons that ServiceContent points at."""
from __future__ import annotations


def create_managers(sim) -> None:
    from .folder import FolderImpl
    from .property_collector import PropertyCollectorImpl
    from .service_instance import ServiceInstanceImpl, SessionManagerImpl

    for obj in (ServiceInstanceImpl(sim), SessionManagerImpl(sim), PropertyCollectorImpl(sim, "propertyCollector")):
        sim.registry.add(obj)
    if sim.registry.find("group-d1") is None:
        sim.registry.add(FolderImpl(sim, "group-d1", "Datacenters", None, ["Folder", "Datacenter"]))
