"""The registry in-process: objects by type (without walking the tasks), and what a removed entity leaves behind."""
from __future__ import annotations

import pytest
from pyVmomi import vim

from vsphere_sim import Simulator

Request = vim.AuthorizationManager.DisabledMethodRequest


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    s = Simulator(tmp_path_factory.mktemp("registry"), persist=False)
    yield s
    s.close()


def test_of_type_by_index(sim):
    registry = sim.registry
    with sim.lock:
        folders = registry.of_type(vim.Folder)
        assert folders and all(isinstance(f.ref, vim.Folder) for f in folders)
        # a supertype spans several indexes and keeps the order objects were added in, as a walk of them all would
        for vim_type in (vim.ManagedEntity, vim.Network, vim.ComputeResource, vim.Task):
            walked = [o for o in registry.objects.values() if isinstance(o.ref, vim_type)]
            assert registry.of_type(vim_type) == walked
        new = registry.get(sim.call(sim.root_folder().ref, "CreateFolder", name="of-type"))
        assert registry.of_type(vim.Folder)[-1] is new and registry.of_type(vim.ManagedEntity)[-1] is new
        sim.wait_task(sim.call(new.ref, "Destroy_Task"))
        assert new not in registry.of_type(vim.Folder) and new not in registry.of_type(vim.ManagedEntity)
        assert registry.of_type(vim.Task)[-1].props["info"].descriptionId == "Folder.destroy"
        assert registry.of_type(vim.VirtualApp) == []


def test_destroyed_entity_is_forgotten_by_the_authorization_manager(sim):
    with sim.lock:
        auth = sim.registry.get("AuthorizationManager")
        outer = sim.registry.get(sim.call(sim.root_folder().ref, "CreateFolder", name="auth-outer"))
        inner = sim.registry.get(sim.call(outer.ref, "CreateFolder", name="auth-inner"))
        sim.call(auth.ref, "DisableMethods", entity=[outer.ref, inner.ref],
                 method=[Request(method="Rename_Task", reasonId="vic")], sourceId="test")
        assert {outer.moid, inner.moid} <= set(auth.disabled)
        sim.wait_task(sim.call(outer.ref, "Destroy_Task"))  # the inner folder goes with it
        assert outer.moid not in auth.disabled and inner.moid not in auth.disabled


def test_events_is_the_event_manager(sim):
    assert sim.events is sim.registry.get("EventManager")
