"""Folder: the inventory tree's containers (root, datacenter's vm/host/datastore/network folders), and the naming
rules every inventory entity shares (length, escaping, uniqueness among siblings)."""
from __future__ import annotations

from pyVmomi import vim, vmodl

from .base import ManagedEntityImpl, ref_list_append, ref_list_remove

# vCenter's limit on inventory names (VIC truncates its VM names to this).
MAX_NAME_LENGTH = 80

# What each of a datacenter's folders may hold (Folder.childType, as vCenter reports it).
VM_FOLDER_TYPES = ("Folder", "VirtualMachine", "VirtualApp")
HOST_FOLDER_TYPES = ("Folder", "ComputeResource")
DATASTORE_FOLDER_TYPES = ("Folder", "Datastore", "StoragePod")
NETWORK_FOLDER_TYPES = ("Folder", "Network", "DistributedVirtualSwitch")
ROOT_FOLDER_TYPES = ("Folder", "Datacenter")


# -- naming rules ---------------------------------------------------------------------------------------------------
def escape_name(name: str) -> str:
    """vCenter stores `%`, `/` and `\\` in entity names escaped, so inventory paths stay unambiguous."""
    return name.replace("%", "%25").replace("/", "%2f").replace("\\", "%5c")


def unescape_name(name: str) -> str:
    return name.replace("%2f", "/").replace("%2F", "/").replace("%5c", "\\").replace("%5C", "\\") \
        .replace("%25", "%")


def check_name_length(name: str) -> None:
    if len(name) > MAX_NAME_LENGTH:
        raise vmodl.fault.InvalidArgument(
            msg=f"A specified parameter was not correct: name (the name '{name}' is longer than "
                f"{MAX_NAME_LENGTH} characters)",
            invalidProperty="name")


def checked_entity_name(name, entity=None) -> str:
    """The name to store for a (non-VM) entity: not empty, at most 80 characters, escaped as vCenter does."""
    if name is None or not name.strip():
        raise vim.fault.InvalidName(msg=f"The name '{name or ''}' is invalid", name=name or "",
                                    entity=entity.ref if entity is not None else None)
    check_name_length(name)
    return escape_name(name)


def check_unique_name(container, name: str, exclude=None, children=None) -> None:
    """DuplicateName when another child of `container` already carries `name` (vCenter: unique among siblings)."""
    if container is None:
        return
    if children is None:
        # the entities of that name (the registry's index), checked for being children: not every child walked
        named = [obj for obj in container.sim.registry.named(name)
                 if obj is not exclude and obj.props.get("parent") is not None
                 and obj.props["parent"]._moId == container.moid]
        if not named:
            return
        children = container_children(container)
    for child in children:
        if child is exclude or child.props.get("name") != name:
            continue
        raise vim.fault.DuplicateName(msg=f"The name '{name}' already exists.", name=name, object=container.ref)


def container_children(container) -> list:
    """Entities whose names must be distinct from each other under `container`."""
    registry = container.sim.registry
    if isinstance(container.ref, vim.Folder):
        refs = container.props["childEntity"]
    elif isinstance(container.ref, vim.ResourcePool):
        refs = container.props.get("resourcePool") or []
    else:
        refs = []
    return [obj for obj in (registry.find(ref._moId) for ref in refs) if obj is not None]


def folder_moid_prefix(child_types) -> str:
    """vCenter's folder moids say what they hold: group-d (datacenters), -v (VMs), -h (hosts), -s, -n."""
    for wsdl_type, prefix in (("Datacenter", "group-d"), ("VirtualMachine", "group-v"), ("ComputeResource", "group-h"),
                              ("Datastore", "group-s"), ("Network", "group-n")):
        if wsdl_type in child_types:
            return prefix
    return "group-v"


def new_moid(sim, prefix: str) -> str:
    """A vCenter-style moid. `vm`, `host`... give `vm-42`; `group-v`, `domain-c` give `group-v42`, `domain-c42`."""
    registry = sim.registry
    if not prefix.endswith("-") and prefix[-1].isalpha() and "-" in prefix:
        while True:
            moid = registry.next_id(prefix).replace(f"{prefix}-", prefix, 1)
            if moid not in registry.objects and moid not in registry.removed:
                return moid
    return registry.next_id(prefix)


class InventoryEntity:
    """Rename_Task and Destroy_Task as every inventory entity has them; subclasses say what destroying means."""

    def rename_container(self):
        """The object among whose children the name must be unique."""
        return self.parent

    def check_new_name(self, new_name) -> str:
        name = checked_entity_name(new_name, self)
        check_unique_name(self.rename_container(), name, exclude=self)
        return name

    def Rename_Task(self, ctx, newName):
        def work(task):
            name = self.check_new_name(newName)
            self.set(name=name)
            self.on_renamed()
        return self.sim.tasks.start(ctx, self, work)

    def on_renamed(self):
        """Hook: keep other properties that carry the name in step."""

    def Destroy_Task(self, ctx):
        def work(task):
            self.check_destroy()
            self.destroy()
        # vCenter's task for a destroyed entity keeps pointing at it (by moref) after it is gone.
        return self.sim.tasks.start(ctx, self, work)

    def check_destroy(self):
        """Raise the fault that would stop this entity (or anything under it) from being destroyed."""

    def destroy(self):
        raise vmodl.fault.NotSupported(msg=f"Destroying a {self.vim_type._wsdlName} is not supported")

    def Reload(self, ctx):
        pass


class FolderImpl(InventoryEntity, ManagedEntityImpl):
    vim_type = vim.Folder

    def __init__(self, sim, moid, name, parent=None, child_types=()):
        super().__init__(sim, moid, name, parent)
        self.init_props(childType=list(child_types), childEntity=[])

    def children(self):
        return [obj for obj in (self.sim.registry.find(ref._moId) for ref in self.props["childEntity"])
                if obj is not None]

    def add_child(self, child):
        ref_list_append(self, "childEntity", child.ref)

    def remove_child(self, child):
        ref_list_remove(self, "childEntity", child.ref)

    def child_named(self, name):
        for child in container_children(self):
            if child.props.get("name") == name:
                return child
        return None

    def _require_child_type(self, wsdl_type: str):
        if wsdl_type not in self.props["childType"]:
            raise vmodl.fault.NotSupported(
                msg=f"The operation is not supported on the object: folder '{self.name}' cannot hold a {wsdl_type}")

    def is_special(self) -> bool:
        """The root folder and a datacenter's four folders can't be renamed, moved or destroyed."""
        parent = self.props.get("parent")
        return parent is None or isinstance(parent, vim.Datacenter)

    # -- WSDL methods -------------------------------------------------------------------------------------------
    def CreateFolder(self, ctx, name):
        self._require_child_type("Folder")
        name = checked_entity_name(name)
        check_unique_name(self, name)
        folder = FolderImpl(self.sim, new_moid(self.sim, folder_moid_prefix(self.props["childType"])),
                            name, self, self.props["childType"])
        self.sim.registry.add(folder)
        self.add_child(folder)
        return folder.ref

    def CreateDatacenter(self, ctx, name):
        from .datacenter import DatacenterImpl
        self._require_child_type("Datacenter")
        name = checked_entity_name(name)
        check_unique_name(self, name)
        return DatacenterImpl.create(self.sim, self, name).ref

    def CreateClusterEx(self, ctx, name, spec):
        from .compute import ClusterComputeResourceImpl
        self._require_child_type("ComputeResource")
        name = checked_entity_name(name)
        check_unique_name(self, name)
        return ClusterComputeResourceImpl.create(self.sim, self, name, spec).ref

    def CreateCluster(self, ctx, name, spec):
        return self.CreateClusterEx(ctx, name, spec)

    def AddStandaloneHost_Task(self, ctx, spec, addConnected, compResSpec=None, license=None):
        from .compute import ComputeResourceImpl
        self._require_child_type("ComputeResource")

        def work(task):
            return ComputeResourceImpl.add_standalone(self.sim, self, spec, compResSpec).ref
        return self.sim.tasks.start(ctx, self, work)

    def CreateDVS_Task(self, ctx, spec):
        from .network import DistributedVirtualSwitchImpl
        self._require_child_type("DistributedVirtualSwitch")

        def work(task):
            return DistributedVirtualSwitchImpl.create(self.sim, self, spec).ref
        return self.sim.tasks.start(ctx, self, work)

    def CreateVM_Task(self, ctx, config, pool, host=None):
        from .virtual_machine import VirtualMachineImpl
        self._require_child_type("VirtualMachine")

        def work(task):
            return VirtualMachineImpl.create(self.sim, self, config, pool, host).ref
        return self.sim.tasks.start(ctx, self, work)

    def RegisterVM_Task(self, ctx, path, asTemplate, name=None, pool=None, host=None):
        from .virtual_machine import VirtualMachineImpl
        self._require_child_type("VirtualMachine")

        def work(task):
            return VirtualMachineImpl.register(self.sim, self, path, name, asTemplate, pool, host).ref
        return self.sim.tasks.start(ctx, self, work)

    def MoveIntoFolder_Task(self, ctx, list):  # noqa: A002 - the WSDL parameter is called `list`
        def work(task):
            entities = [self.sim.registry.get(ref) for ref in list]
            for entity in entities:
                self._check_move(entity)
            for entity in entities:
                old = entity.parent
                if old is self:
                    continue
                old.remove_child(entity)
                self.add_child(entity)
                entity.set(parent=self.ref)
        return self.sim.tasks.start(ctx, self, work)

    def _check_move(self, entity):
        wsdl = entity.vim_type._wsdlName
        kind = {"ClusterComputeResource": "ComputeResource", "VmwareDistributedVirtualSwitch":
                "DistributedVirtualSwitch", "DistributedVirtualPortgroup": "Network"}.get(wsdl, wsdl)
        if kind not in self.props["childType"] or isinstance(entity.ref, vim.dvs.DistributedVirtualPortgroup):
            raise vmodl.fault.NotSupported(msg=f"A {wsdl} cannot be moved into folder '{self.name}'")
        if isinstance(entity, FolderImpl) and entity.is_special():
            raise vmodl.fault.NotSupported(msg=f"The folder '{entity.name}' cannot be moved")
        if entity is self or (isinstance(entity, FolderImpl) and entity in list(self.ancestors())):
            raise vim.fault.InvalidFolder(msg="A folder cannot be moved into itself or one of its subfolders",
                                          target=entity.ref)
        if entity.datacenter() is not self.datacenter():
            raise vmodl.fault.NotSupported(msg="Entities cannot be moved between datacenters")
        if entity.parent is not self:
            check_unique_name(self, entity.name)

    def UnregisterAndDestroy_Task(self, ctx):
        def work(task):
            for child in self.children():
                if child.props.get("childEntity"):
                    raise vim.fault.InvalidState(msg=f"The folder '{child.name}' is not empty")
            for child in self.children():
                if isinstance(child.ref, vim.VirtualMachine):
                    child.check_destroy()  # powered on: InvalidPowerState, as UnregisterVM
                    child.remove_from_inventory()
                else:
                    child.check_destroy()
                    child.destroy()
        return self.sim.tasks.start(ctx, self, work)

    # -- rename / destroy ---------------------------------------------------------------------------------------
    def check_new_name(self, new_name):
        if self.is_special():
            raise vmodl.fault.NotSupported(msg=f"The folder '{self.name}' cannot be renamed")
        return super().check_new_name(new_name)

    def check_destroy(self):
        if self.is_special():
            raise vmodl.fault.NotSupported(msg=f"The folder '{self.name}' cannot be destroyed")
        for child in self.children():
            child.check_destroy()

    def destroy(self):
        for child in self.children():
            child.destroy()
        parent = self.parent
        if parent is not None:
            parent.remove_child(self)
        self.sim.registry.remove(self)
