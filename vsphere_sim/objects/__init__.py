"""One module per managed type. `create_managers` instantiates the singletons that ServiceContent points at."""
from __future__ import annotations

import importlib

# (module, class, moid): the fixed singletons of a vCenter, as ServiceContent names them
MANAGERS = [
    ("service_instance", "ServiceInstanceImpl", "ServiceInstance"),
    ("service_instance", "SessionManagerImpl", "SessionManager"),
    ("property_collector", "PropertyCollectorImpl", "propertyCollector"),
    ("view", "ViewManagerImpl", "ViewManager"),
    ("search_index", "SearchIndexImpl", "SearchIndex"),
    ("file_manager", "FileManagerImpl", "FileManager"),
    ("virtual_disk_manager", "VirtualDiskManagerImpl", "VirtualDiskManager"),
    ("namespace_manager", "DatastoreNamespaceManagerImpl", "DatastoreNamespaceManager"),
    ("guest_operations", "GuestOperationsManagerImpl", "guestOperationsManager"),
    ("event_manager", "EventManagerImpl", "EventManager"),
    ("authorization_manager", "AuthorizationManagerImpl", "AuthorizationManager"),
    ("task_manager", "TaskManagerImpl", "TaskManager"),
    ("misc_managers", "OptionManagerImpl", "VpxSettings"),
]


def create_managers(sim) -> None:
    from .folder import FolderImpl

    for module_name, class_name, moid in MANAGERS:
        if sim.registry.find(moid) is not None:
            continue
        module = importlib.import_module(f"{__name__}.{module_name}")
        cls = getattr(module, class_name)
        sim.registry.add(cls(sim, moid) if moid not in ("ServiceInstance", "SessionManager") else cls(sim))
        if hasattr(sim.registry.find(moid), "create_children"):
            sim.registry.find(moid).create_children()
    if sim.registry.find("group-d1") is None:
        sim.registry.add(FolderImpl(sim, "group-d1", "Datacenters", None, ["Folder", "Datacenter"]))
