"""AuthorizationManager as VIC and pyVmomi clients use it: DisableMethods/EnableMethods (VIC protects its VMs from
Destroy_Task this way), roles, privileges and privilege checks.

DisableMethods/EnableMethods are vCenter-internal and missing from pyVmomi; importing the sim's authorization module
teaches pyVmomi both, as a client that uses them must do."""
from __future__ import annotations

import uuid

import pytest
from pyVim.connect import Disconnect
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

import vsphere_sim.objects.authorization_manager  # noqa: F401 - registers DisableMethods/EnableMethods in pyVmomi

DisabledMethodRequest = vim.AuthorizationManager.DisabledMethodRequest


@pytest.fixture
def other_session(vsphere):
    """A second session: a method is disabled for every session but the one that disabled it."""
    instance = vsphere.connect()
    yield instance
    Disconnect(instance)


def _folder(si, prefix="auth"):
    return si.content.rootFolder.CreateFolder(f"{prefix}-{uuid.uuid4().hex[:8]}")


def _in(instance, obj):
    """The same managed object, seen through another connection."""
    return type(obj)(obj._moId, instance._stub)


def test_system_roles_and_privileges(si):
    am = si.content.authorizationManager
    roles = {r.roleId: r for r in am.roleList}
    assert roles[-1].name == "Admin" and roles[-1].system
    assert roles[-2].name == "ReadOnly" and set(roles[-2].privilege) >= {"System.View", "System.Read"}
    assert roles[-5].name == "NoAccess" and not roles[-5].privilege
    privileges = {p.privId for p in am.privilegeList}
    assert {"System.View", "VirtualMachine.Interact.PowerOn", "VirtualMachine.GuestOperations.Execute",
            "Global.DisableMethods"} <= privileges
    assert set(roles[-1].privilege) >= privileges - {"System.Anonymous"}


def test_privilege_checks_for_the_session_user(si):
    am = si.content.authorizationManager
    session = si.content.sessionManager.currentSession
    root = si.content.rootFolder
    assert list(am.HasPrivilegeOnEntity(root, session.key, ["System.View", "VirtualMachine.Inventory.Create"])) == \
        [True, True]
    [entity] = am.HasPrivilegeOnEntities([root], session.key, ["System.Read"])
    assert entity.entity == root and entity.privAvailability[0].isGranted


def test_disable_and_enable_methods(si, other_session):
    am = si.content.authorizationManager
    folder = _folder(si)
    source = f"test-{uuid.uuid4().hex[:6]}"
    am.DisableMethods(entity=[folder], method=[DisabledMethodRequest(method="Destroy_Task", reasonId="protected")],
                      sourceId=source)
    assert "Destroy_Task" in folder.disabledMethod
    with pytest.raises(vim.fault.MethodDisabled) as err:
        _in(other_session, folder).Destroy_Task()
    assert err.value.source == source and source in err.value.msg
    am.EnableMethods(entity=[folder], method=["Destroy_Task"], sourceId=source)
    assert "Destroy_Task" not in folder.disabledMethod
    WaitForTask(_in(other_session, folder).Destroy_Task())


def test_a_method_stays_disabled_until_every_source_enables_it(si, other_session):
    am = si.content.authorizationManager
    folder = _folder(si)
    request = [DisabledMethodRequest(method="Destroy_Task")]
    am.DisableMethods(entity=[folder], method=request, sourceId="first")
    am.DisableMethods(entity=[folder], method=request, sourceId="second")
    am.EnableMethods(entity=[folder], method=["Destroy_Task"], sourceId="first")
    assert "Destroy_Task" in folder.disabledMethod
    with pytest.raises(vim.fault.MethodDisabled) as err:
        _in(other_session, folder).Destroy_Task()
    assert err.value.source == "second"
    am.EnableMethods(entity=[folder], method=["Destroy_Task"], sourceId="second")
    WaitForTask(folder.Destroy_Task())


def test_the_disabling_session_may_still_call_it(si):
    am = si.content.authorizationManager
    folder = _folder(si)
    am.DisableMethods(entity=[folder], method=[DisabledMethodRequest(method="Destroy_Task")], sourceId="self")
    WaitForTask(folder.Destroy_Task())


def test_disable_methods_on_a_missing_entity(si):
    am = si.content.authorizationManager
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        am.DisableMethods(entity=[vim.Folder("group-v999999", si._stub)],
                          method=[DisabledMethodRequest(method="Destroy_Task")], sourceId="x")


def test_custom_role_round_trip(si):
    am = si.content.authorizationManager
    name = f"role-{uuid.uuid4().hex[:8]}"
    role_id = am.AddAuthorizationRole(name=name, privIds=["VirtualMachine.Interact.PowerOn"])
    try:
        role = next(r for r in am.roleList if r.roleId == role_id)
        assert role.name == name and "VirtualMachine.Interact.PowerOn" in role.privilege and not role.system
        with pytest.raises(vim.fault.AlreadyExists):
            am.AddAuthorizationRole(name=name)
        am.UpdateAuthorizationRole(roleId=role_id, newName=name + "-x", privIds=["System.View"])
        role = next(r for r in am.roleList if r.roleId == role_id)
        assert role.name == name + "-x" and "VirtualMachine.Interact.PowerOn" not in role.privilege
    finally:
        am.RemoveAuthorizationRole(roleId=role_id, failIfUsed=False)
    assert role_id not in {r.roleId for r in am.roleList}
