"""AuthorizationManager: DisableMethods/EnableMethods, roles, privileges, permissions.

`DisableMethods` / `EnableMethods` are vCenter's internal methods (namespace `urn:internalvim25`) that VIC uses to
protect its VMs from Destroy_Task (`DisabledMethodRequest{method: "Destroy_Task", reasonId: ...}`, source "VIC").
pyVmomi doesn't ship them, so `register_internal_methods()` (run on import) adds them to pyVmomi's type registry: the
sim can then parse the calls, and an in-process pyVmomi client can make them (vic_ref needs the same registration on
its side, as it doesn't import the sim). As on vCenter, a method disabled by a source is refused with `MethodDisabled`
("The method is disabled by '<source>'") to every session except the one that disabled it, until that source enables
it again; several sources can disable one method, and it stays disabled until all of them enabled it. The entity's
`disabledMethod` property lists the disabled methods. `check_method_enabled` is the test dispatch applies.

The sim has one user, so privilege checks grant everything to it and nothing to anyone else; roles and permissions are
kept (and persisted) so clients that manage them see their changes.
"""
from __future__ import annotations

from pyVmomi import VmomiSupport, vim, vmodl
from pyVmomi.VmomiSupport import F_OPTIONAL

from .base import ManagedObjectImpl

_VERSION = "vim.version.version1"
_REQUEST_TYPE = "vim.AuthorizationManager.DisabledMethodRequest"


def register_internal_methods() -> None:
    """Teach pyVmomi DisableMethods/EnableMethods and DisabledMethodRequest (idempotent)."""
    try:
        VmomiSupport.GetWsdlType("urn:vim25", "DisabledMethodRequest")
    except KeyError:
        VmomiSupport.CreateDataType(_REQUEST_TYPE, "DisabledMethodRequest", "vmodl.DynamicData", _VERSION,
                                    [("method", "string", _VERSION, 0), ("reasonId", "string", _VERSION, F_OPTIONAL)])
    methods = [
        ("DisableMethods", (("entity", "vim.ManagedEntity[]", _VERSION, 0, None),
                            ("method", _REQUEST_TYPE + "[]", _VERSION, F_OPTIONAL, None),
                            ("sourceId", "string", _VERSION, 0, None),
                            ("sessionScope", "boolean", _VERSION, F_OPTIONAL, None))),
        ("EnableMethods", (("entity", "vim.ManagedEntity[]", _VERSION, 0, None),
                           ("method", "string[]", _VERSION, F_OPTIONAL, None),
                           ("sourceId", "string", _VERSION, 0, None))),
    ]
    cls = vim.AuthorizationManager
    ns = VmomiSupport.GetInternedWsdlNamespace(_VERSION)
    # pyVmomi has no public way to add a method to a loaded type; this mirrors what its LoadManagedType does.
    with VmomiSupport._lazyLock:
        for wsdl_name, params in methods:
            try:
                VmomiSupport.GetWsdlMethod(ns, wsdl_name)
                continue
            except KeyError:
                pass
            info = VmomiSupport.LazyObject(
                name=wsdl_name, typeName="vim.AuthorizationManager", wsdlName=wsdl_name, version=_VERSION,
                params=tuple(VmomiSupport.LazyObject(name=p[0], typeName=p[1], version=p[2], flags=p[3], privId=p[4])
                             for p in params),
                isTask=False, resultFlags=0, resultName="void", methodResultName="void", privId="Global.Disable",
                faults=[])
            method = VmomiSupport.ManagedMethod(info)
            VmomiSupport._SetWsdlMethod(ns, wsdl_name, method)
            cls._methodInfo[wsdl_name] = info
            setattr(cls, wsdl_name, method)


register_internal_methods()


def method_disabled_fault(source: str) -> vim.fault.MethodDisabled:
    return vim.fault.MethodDisabled(msg=f"The method is disabled by '{source}'", source=source)


def check_method_enabled(sim, obj, wsdl_name: str, session) -> None:
    """Raise MethodDisabled when `wsdl_name` is disabled on `obj` for this session (dispatch's check)."""
    disabled = obj.props.get("disabledMethod")
    if not disabled or wsdl_name not in disabled:
        return
    manager = sim.registry.find("AuthorizationManager")
    sources = manager.disabled.get(obj.moid, {}).get(wsdl_name, {}) if manager is not None else {}
    if not sources:
        raise method_disabled_fault("")
    session_key = getattr(session, "key", None)
    for source, record in sorted(sources.items()):
        if session_key is None or session_key not in record.get("sessions", ()):
            raise method_disabled_fault(source)


# -- privileges and roles -------------------------------------------------------------------------------------------
_PRIVILEGE_GROUPS = {
    "System": ["Anonymous", "View", "Read"],
    "Global": ["ManageCustomFields", "SetCustomField", "LogEvent", "CancelTask", "Licenses", "Diagnostics",
               "Settings", "Proxy", "DisableMethods", "EnableMethods", "ServiceManagers", "Health",
               "SystemTag", "GlobalTag", "VCServer"],
    "Folder": ["Create", "Delete", "Rename", "Move"],
    "Datacenter": ["Create", "Delete", "Rename", "Move", "IpPoolConfig"],
    "Datastore": ["Rename", "Move", "Delete", "Browse", "DeleteFile", "FileManagement", "AllocateSpace", "Config",
                  "UpdateVirtualMachineFiles", "UpdateVirtualMachineMetadata"],
    "Network": ["Move", "Delete", "Config", "Assign"],
    "Host.Config": ["Settings", "Network", "Storage", "AdvancedConfig"],
    "Host.Inventory": ["AddStandaloneHost", "CreateCluster", "AddHostToCluster", "RemoveHostFromCluster",
                       "EditCluster"],
    "VirtualMachine.Inventory": ["Create", "CreateFromExisting", "Register", "Delete", "Unregister", "Move"],
    "VirtualMachine.Interact": ["PowerOn", "PowerOff", "Suspend", "Reset", "ConsoleInteract", "DeviceConnection",
                                "SetCDMedia", "SetFloppyMedia", "ToolsInstall", "GuestControl", "AnswerQuestion"],
    "VirtualMachine.GuestOperations": ["Query", "Modify", "Execute", "QueryAliases", "ModifyAliases"],
    "VirtualMachine.Config": ["Rename", "Annotation", "AddExistingDisk", "AddNewDisk", "RemoveDisk", "RawDevice",
                              "HostUSBDevice", "CPUCount", "Memory", "AddRemoveDevice", "EditDevice", "Settings",
                              "Resource", "UpgradeVirtualHardware", "ResetGuestInfo", "AdvancedConfig",
                              "DiskLease", "SwapPlacement", "DiskExtend", "ChangeTracking", "ManagedBy"],
    "VirtualMachine.State": ["CreateSnapshot", "RevertToSnapshot", "RemoveSnapshot", "RenameSnapshot"],
    "VirtualMachine.Provisioning": ["Customize", "Clone", "PromoteDisks", "CreateTemplateFromVM", "DeployTemplate",
                                    "CloneTemplate", "MarkAsTemplate", "MarkAsVM", "ReadCustSpecs",
                                    "ModifyCustSpecs", "DiskRandomAccess", "DiskRandomRead", "GetVmFiles",
                                    "PutVmFiles"],
    "Resource": ["AssignVMToPool", "AssignVAppToPool", "ApplyRecommendation", "CreatePool", "RenamePool",
                 "EditPool", "MovePool", "DeletePool", "HotMigrate", "ColdMigrate", "QueryVMotion"],
    "VApp": ["ResourceConfig", "InstanceConfig", "ApplicationConfig", "ManagedByConfig", "Export", "Import",
             "PullFromUrls", "ExtractOvfEnvironment", "AssignVM", "AssignResourcePool", "AssignVApp", "Clone",
             "Create", "Delete", "Unregister", "Move", "PowerOn", "PowerOff", "Suspend", "Rename"],
    "Authorization": ["ModifyPermissions", "ModifyRoles", "ReassignRolePermissions"],
    "Sessions": ["TerminateSession", "ValidateSession", "GlobalMessage", "ImpersonateUser"],
    "Task": ["Create", "Update"],
    "Extension": ["Register", "Update", "Unregister"],
    "Alarm": ["Create", "Delete", "Edit", "Acknowledge", "SetAlarmStatus", "DisableActions"],
    "DVSwitch": ["Create", "Modify", "Delete", "Move", "PortConfig", "PortSetting"],
    "DVPortgroup": ["Create", "Modify", "Delete", "PolicyOp", "ScopeOp"],
    "StorageProfile": ["View", "Update"],
    "Cryptographer": ["Access"],
}

_SYSTEM_ROLES = [
    (-5, "NoAccess", "No access", "Used for restricting granted access", []),
    (-4, "Anonymous", "Anonymous", "Not logged-in user (cannot be granted)", ["System.Anonymous"]),
    (-3, "View", "View", "Visibility access (cannot be granted)", ["System.Anonymous", "System.View"]),
    (-2, "ReadOnly", "Read-only", "See details of objects, but not make changes",
     ["System.Anonymous", "System.View", "System.Read"]),
    (-1, "Admin", "Administrator", "Full access rights", None),  # None: every privilege
]
FIRST_CUSTOM_ROLE = 1000


def all_privilege_ids() -> list[str]:
    return [f"{group}.{name}" for group, names in _PRIVILEGE_GROUPS.items() for name in names]


def _privileges() -> list:
    return [vim.AuthorizationManager.Privilege(privId=f"{group}.{name}", onParent=False, name=name,
                                               privGroupName=group)
            for group, names in _PRIVILEGE_GROUPS.items() for name in names]


def _role(role_id: int, name: str, label: str, summary: str, privileges: list[str], system: bool):
    return vim.AuthorizationManager.Role(roleId=role_id, system=system, name=name,
                                         info=vim.Description(label=label, summary=summary),
                                         privilege=sorted(privileges))


class AuthorizationManagerImpl(ManagedObjectImpl):
    vim_type = vim.AuthorizationManager
    # Its extra state (who disabled which method, custom roles, permissions) survives a sim restart.
    persistent = True

    def __init__(self, sim, moid):
        super().__init__(sim, moid)
        self.disabled: dict[str, dict[str, dict[str, dict]]] = {}  # moid -> method -> source -> {reason, sessions}
        self.custom_roles: dict[int, dict] = {}
        self.permissions: list[dict] = []
        self.init_props(privilegeList=_privileges(), roleList=self._roles(),
                        description=vim.AuthorizationDescription(
                            privilege=[vim.ElementDescription(key=p, label=p.rpartition(".")[2],
                                                              summary=p.rpartition(".")[2])
                                       for p in all_privilege_ids()],
                            privilegeGroup=[vim.ElementDescription(key=g, label=g, summary=g)
                                            for g in _PRIVILEGE_GROUPS]))

    # -- state ------------------------------------------------------------------------------------------------------
    def extra_state(self) -> dict:
        # sessions are not kept: after a restart every session is another session
        return {"disabled": {moid: {m: {s: {"reason": r.get("reason")} for s, r in sources.items()}
                                    for m, sources in methods.items()}
                             for moid, methods in self.disabled.items()},
                "roles": {str(k): v for k, v in self.custom_roles.items()},
                "permissions": self.permissions}

    def load_extra_state(self, state: dict) -> None:
        self.disabled = {moid: {m: {s: {"reason": r.get("reason"), "sessions": []} for s, r in sources.items()}
                                for m, sources in methods.items()}
                         for moid, methods in (state.get("disabled") or {}).items()}
        self.custom_roles = {int(k): v for k, v in (state.get("roles") or {}).items()}
        self.permissions = list(state.get("permissions") or [])
        self.props["privilegeList"] = self._coerce("privilegeList", _privileges())
        self.props["roleList"] = self._coerce("roleList", self._roles())

    def _save(self):
        self.sim.registry.changed(self, ())

    # -- DisableMethods / EnableMethods -----------------------------------------------------------------------------
    def DisableMethods(self, ctx, entity, method=None, sourceId=None, sessionScope=None):
        objects = [self.sim.registry.get(ref) for ref in entity or []]
        for obj in objects:
            _require_entity(obj)
        for obj in objects:
            methods = self.disabled.setdefault(obj.moid, {})
            for request in method or []:
                record = methods.setdefault(request.method, {}).setdefault(sourceId or "", {"sessions": []})
                record["reason"] = request.reasonId
                if ctx.session.key not in record["sessions"]:
                    record["sessions"].append(ctx.session.key)
            self._publish(obj)
        self._save()

    def EnableMethods(self, ctx, entity, method=None, sourceId=None):
        objects = [self.sim.registry.get(ref) for ref in entity or []]
        for obj in objects:
            _require_entity(obj)
        for obj in objects:
            methods = self.disabled.get(obj.moid, {})
            for name in method or []:
                sources = methods.get(name)
                if sources is None:
                    continue
                sources.pop(sourceId or "", None)
                if not sources:
                    del methods[name]
            if not methods:
                self.disabled.pop(obj.moid, None)
            self._publish(obj)
        self._save()

    def _publish(self, obj):
        names = sorted(self.disabled.get(obj.moid, {}))
        if list(obj.props.get("disabledMethod") or []) != names:
            obj.set(disabledMethod=names)

    def forget_entity(self, moid: str):
        """An entity was destroyed: drop what was disabled on it."""
        if self.disabled.pop(moid, None) is not None:
            self._save()

    # -- roles ------------------------------------------------------------------------------------------------------
    def _roles(self) -> list:
        roles = []
        for role_id, name, label, summary, privileges in _SYSTEM_ROLES:
            roles.append(_role(role_id, name, label, summary,
                               all_privilege_ids() if privileges is None else privileges, True))
        for role_id, role in sorted(self.custom_roles.items()):
            privileges = sorted(set(role["privileges"]) | {"System.Anonymous", "System.View", "System.Read"})
            roles.append(_role(role_id, role["name"], role["name"], role["name"], privileges, False))
        return roles

    def _role_names(self) -> dict[str, int]:
        return {role.name: role.roleId for role in self.props["roleList"]}

    def AddAuthorizationRole(self, ctx, name, privIds=None):
        if not name:
            raise vim.fault.InvalidName(msg="The name '' is invalid.", name=name)
        if name in self._role_names():
            raise vim.fault.AlreadyExists(msg=f"The specified key, name, or identifier '{name}' already exists.",
                                          name=name)
        self._check_privileges(privIds)
        role_id = max([FIRST_CUSTOM_ROLE - 1, *self.custom_roles]) + 1
        self.custom_roles[role_id] = {"name": name, "privileges": sorted(set(privIds or []))}
        self.set(roleList=self._roles())
        return role_id

    def UpdateAuthorizationRole(self, ctx, roleId, newName, privIds=None):
        role = self._custom_role(roleId)
        if newName and newName != role["name"] and newName in self._role_names():
            raise vim.fault.AlreadyExists(msg=f"The specified key, name, or identifier '{newName}' already exists.",
                                          name=newName)
        self._check_privileges(privIds)
        if newName:
            role["name"] = newName
        if privIds is not None:
            role["privileges"] = sorted(set(privIds))
        self.set(roleList=self._roles())

    def RemoveAuthorizationRole(self, ctx, roleId, failIfUsed):
        self._custom_role(roleId)
        used = [p for p in self.permissions if p["roleId"] == roleId]
        if used and failIfUsed:
            raise vim.fault.RemoveFailed(msg="The role is in use.")
        self.permissions = [p for p in self.permissions if p["roleId"] != roleId]
        del self.custom_roles[roleId]
        self.set(roleList=self._roles())

    def _custom_role(self, role_id):
        role = self.custom_roles.get(role_id)
        if role is None:
            if any(r[0] == role_id for r in _SYSTEM_ROLES):
                raise vmodl.fault.InvalidArgument(msg="A system role cannot be changed.", invalidProperty="roleId")
            raise vim.fault.NotFound(msg=f"The object or item referred to could not be found: role {role_id}")
        return role

    def _check_privileges(self, priv_ids):
        known = set(all_privilege_ids())
        for priv in priv_ids or []:
            if priv not in known:
                raise vmodl.fault.InvalidArgument(msg=f"A specified parameter was not correct: privIds ({priv})",
                                                  invalidProperty="privIds")

    # -- permissions ------------------------------------------------------------------------------------------------
    def _permission(self, record: dict) -> vim.AuthorizationManager.Permission:
        ref = self.sim.registry.find(record["entity"])
        return vim.AuthorizationManager.Permission(entity=ref.ref if ref is not None else None,
                                                   principal=record["principal"], group=record["group"],
                                                   roleId=record["roleId"], propagate=record["propagate"])

    def _all_permissions(self) -> list[dict]:
        admin = {"entity": "group-d1", "principal": _principal(self.sim.user), "group": False, "roleId": -1,
                 "propagate": True}
        return [admin, *self.permissions]

    def RetrieveAllPermissions(self, ctx):
        return vim.AuthorizationManager.Permission.Array(
            [self._permission(p) for p in self._all_permissions() if self.sim.registry.find(p["entity"])])

    def RetrieveEntityPermissions(self, ctx, entity, inherited):
        obj = self.sim.registry.get(entity)
        moids = {obj.moid}
        if inherited:
            moids |= {a.moid for a in obj.ancestors()} if hasattr(obj, "ancestors") else set()
        return vim.AuthorizationManager.Permission.Array(
            [self._permission(p) for p in self._all_permissions()
             if p["entity"] in moids and (p["entity"] == obj.moid or p["propagate"])])

    def RetrieveRolePermissions(self, ctx, roleId):
        if roleId not in {r.roleId for r in self.props["roleList"]}:
            raise vim.fault.NotFound(msg=f"The object or item referred to could not be found: role {roleId}")
        return vim.AuthorizationManager.Permission.Array(
            [self._permission(p) for p in self._all_permissions() if p["roleId"] == roleId])

    def SetEntityPermissions(self, ctx, entity, permission=None):
        obj = self.sim.registry.get(entity)
        roles = {r.roleId for r in self.props["roleList"]}
        for perm in permission or []:
            if perm.roleId not in roles:
                raise vim.fault.NotFound(msg=f"The object or item referred to could not be found: role {perm.roleId}")
            self.permissions = [p for p in self.permissions
                                if not (p["entity"] == obj.moid and p["principal"] == perm.principal
                                        and p["group"] == bool(perm.group))]
            self.permissions.append({"entity": obj.moid, "principal": perm.principal, "group": bool(perm.group),
                                     "roleId": perm.roleId, "propagate": bool(perm.propagate)})
        self._save()

    def ResetEntityPermissions(self, ctx, entity, permission=None):
        obj = self.sim.registry.get(entity)
        self.permissions = [p for p in self.permissions if p["entity"] != obj.moid]
        self.SetEntityPermissions(ctx, entity, permission)

    def RemoveEntityPermission(self, ctx, entity, user, isGroup):
        obj = self.sim.registry.get(entity)
        before = len(self.permissions)
        self.permissions = [p for p in self.permissions
                            if not (p["entity"] == obj.moid and p["principal"] == user and p["group"] == isGroup)]
        if len(self.permissions) == before:
            raise vim.fault.NotFound(msg=f"The object or item referred to could not be found: permission for {user}")
        self._save()

    # -- privilege checks -------------------------------------------------------------------------------------------
    def _granted_to_session(self, session_id: str | None) -> bool:
        session = self.sim.sessions.get(session_id) if session_id else None
        return bool(session and session.authenticated and session.user == self.sim.user)

    def _granted_to_user(self, user: str | None) -> bool:
        if not user:
            return False
        short = user.split("\\")[-1].lower()
        return short in (self.sim.user.lower(), self.sim.user.split("@")[0].lower()) or \
            _principal(self.sim.user).lower() == user.lower()

    def HasPrivilegeOnEntity(self, ctx, entity, sessionId, privId=None):
        self.sim.registry.get(entity)
        granted = self._granted_to_session(sessionId)
        return [granted for _ in privId or []]

    def HasPrivilegeOnEntities(self, ctx, entity, sessionId, privId=None):
        granted = self._granted_to_session(sessionId)
        return vim.AuthorizationManager.EntityPrivilege.Array(
            [self._entity_privilege(self.sim.registry.get(ref).ref, privId, granted) for ref in entity or []])

    def HasUserPrivilegeOnEntities(self, ctx, entities, userName, privId=None):
        granted = self._granted_to_user(userName)
        return vim.AuthorizationManager.EntityPrivilege.Array(
            [self._entity_privilege(self.sim.registry.get(ref).ref, privId, granted) for ref in entities or []])

    def FetchUserPrivilegeOnEntities(self, ctx, entities, userName):
        granted = self._granted_to_user(userName)
        privileges = all_privilege_ids() if granted else []
        return vim.AuthorizationManager.UserPrivilegeResult.Array(
            [vim.AuthorizationManager.UserPrivilegeResult(entity=self.sim.registry.get(ref).ref,
                                                          privileges=privileges)
             for ref in entities or []])

    @staticmethod
    def _entity_privilege(ref, priv_ids, granted: bool):
        return vim.AuthorizationManager.EntityPrivilege(
            entity=ref, privAvailability=[vim.AuthorizationManager.PrivilegeAvailability(privId=p, isGranted=granted)
                                          for p in priv_ids or []])


def _require_entity(obj):
    if not isinstance(obj.ref, vim.ManagedEntity):
        raise vmodl.fault.InvalidArgument(msg="A specified parameter was not correct: entity",
                                          invalidProperty="entity")


def _principal(user: str) -> str:
    """vCenter names an SSO user DOMAIN\\user: administrator@vsphere.local -> VSPHERE.LOCAL\\Administrator."""
    name, _, domain = user.partition("@")
    return f"{domain.upper()}\\{name.capitalize()}" if domain else name
