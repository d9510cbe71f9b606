"""Property retrieval (batches, paging, views) and the finder, against the sim's default inventory; path rules alone."""
from __future__ import annotations

import pytest

from vic_ref import errors
from vic_ref.vsphere import vim
from vic_ref.vsphere.finder import resolve_path, split_path

from .conftest import call_count


# -- properties ------------------------------------------------------------------------------------------------
def test_retrieve_keeps_the_order_asked(session, op):
    root = session.content.rootFolder
    items = session.retrieve(op, [session.vm_folder, root, session.datacenter], ["name"])
    assert [i["name"] for i in items] == ["vm", "Datacenters", "DC0"]
    assert session.retrieve(op, [], ["name"]) == []


def test_retrieve_all_properties_and_nested_paths(session, op):
    props = session.retrieve_one(op, session.datastore, None)
    assert props["name"] == "LocalDS_0" and "summary" in props
    nested = session.retrieve_one(op, session.datastore, ["summary.type", "summary.accessible"])
    assert nested == {"summary.type": "VMFS", "summary.accessible": True}


def test_pages_are_followed(sim_target, session, op):
    everything = session.retrieve_view(op, session.content.rootFolder, [vim.ManagedEntity], ["name"])
    assert len(everything) > 6
    before = call_count(sim_target, "ContinueRetrievePropertiesEx")
    paged = session.retrieve_view(op, session.content.rootFolder, [vim.ManagedEntity], ["name"], page=3)
    assert call_count(sim_target, "ContinueRetrievePropertiesEx") - before == (len(everything) - 1) // 3
    assert sorted(i.moid for i in paged) == sorted(i.moid for i in everything)
    refs = [i.obj for i in everything]
    by_list = session.retrieve(op, refs, ["name"], page=4)
    assert [i.moid for i in by_list] == [r._moId for r in refs]


def test_views_are_destroyed_after_use(session, op):
    manager = session.content.viewManager
    before = len(session.call(op, getattr, manager, "viewList") or [])
    session.retrieve_view(op, session.datacenter, [vim.Datastore], ["name"])
    assert len(session.call(op, getattr, manager, "viewList") or []) == before


def test_retrieve_view_survives_a_lost_session(sim_target, session, op):
    sim_target.sim.end_all_sessions()
    names = {i["name"] for i in session.retrieve_view(op, session.datacenter, [vim.Datastore], ["name"])}
    assert {"LocalDS_0", "vsanDatastore"} <= names


# -- finder against the default inventory -------------------------------------------------------------------------
def test_datacenter(session, op):
    finder = session.finder
    dc = finder.datacenter(op)  # the only one
    assert dc._moId == session.datacenter._moId
    assert finder.datacenter(op, "DC0")._moId == dc._moId
    assert finder.datacenter(op, "/DC0")._moId == dc._moId
    with pytest.raises(errors.NotFound, match="datacenter 'DC9' not found"):
        finder.datacenter(op, "DC9")


def test_compute_resources_and_pools(session, op):
    finder = session.finder
    cluster = finder.compute_resource(op, "DC0_C0")
    assert isinstance(cluster, vim.ClusterComputeResource)
    with pytest.raises(errors.InvalidArgument, match="multiple instances"):
        finder.compute_resource(op)  # a cluster and a standalone host
    root_pool = session.retrieve_one(op, cluster, ["resourcePool"])["resourcePool"]
    assert finder.resource_pool(op, "DC0_C0")._moId == root_pool._moId
    child = finder.resource_pool(op, "DC0_C0/DC0_C0_RP1")
    assert session.retrieve_one(op, child, ["name"])["name"] == "DC0_C0_RP1"
    for path in ("DC0_C0/Resources/DC0_C0_RP1", "/DC0/host/DC0_C0/Resources/DC0_C0_RP1", "DC0_C0_RP1"):
        assert finder.resource_pool(op, path)._moId == child._moId, path
    assert finder.owner(op, child)._moId == cluster._moId
    standalone = finder.resource_pool(op, "DC0_H0")
    assert isinstance(finder.owner(op, standalone), vim.ComputeResource)
    with pytest.raises(errors.NotFound):
        finder.resource_pool(op, "DC0_C0/nope")
    assert finder.inventory_path(op, child) == "/DC0/host/DC0_C0/Resources/DC0_C0_RP1"


def test_datastores(session, op):
    finder = session.finder
    names = {session.retrieve_one(op, d, ["name"])["name"] for d in finder.datastores(op)}
    assert {"LocalDS_0", "vsanDatastore"} <= names
    assert finder.datastore(op, "/DC0/datastore/vsanDatastore")._moId == finder.datastore(op, "vsanDatastore")._moId
    with pytest.raises(errors.InvalidArgument):
        finder.datastore(op)  # two of them
    with pytest.raises(errors.NotFound, match="datastore 'nope' not found"):
        finder.datastore(op, "nope")
    with pytest.raises(errors.NotFound):
        finder.datastore(op, "/DC0/host/DC0_C0")  # exists, but is no datastore


def test_folders(session, op):
    finder = session.finder
    assert finder.folder(op)._moId == session.vm_folder._moId
    name = "finder-folder"
    made = session.call(op, session.vm_folder.CreateFolder, name)
    try:
        assert finder.folder(op, name)._moId == made._moId
        assert finder.folder(op, f"/DC0/vm/{name}")._moId == made._moId
    finally:
        session.run_task(op, made.Destroy_Task)


# -- the path rules without a vSphere ----------------------------------------------------------------------------
TREE = {
    "root": [("dc1", "dc1"), ("dc2", "dc2"), ("folder", "f")],
    "f": [("dc3", "dc3")],
    "dc1": [("host", "h1"), ("datastore", "s1")],
    "h1": [("c1", "c1"), ("c2", "c2")],
    "c1": [("Resources", "r1"), ("p1", "p1")],
    "c2": [("Resources", "r2"), ("p1", "p2")],
}


def children(node):
    return TREE.get(node, [])


@pytest.mark.parametrize("path, expected", [
    ("dc1", "dc1"), ("dc1/host/c1", "c1"), ("dc1/host/c1/p1", "p1"), ("folder/dc3", "dc3"),
    ("dc1/host/c2/Resources", "r2"), ("*/host/c1", "c1"), ("dc1/nope", None), ("", "root"),
])
def test_resolve_path(path, expected):
    assert resolve_path(children, "root", split_path(path)) == expected


def test_resolve_path_refuses_ambiguity():
    with pytest.raises(errors.InvalidArgument):
        resolve_path(children, "root", split_path("dc1/host/*/p1"))


def test_split_path():
    assert split_path("/a//b/./c/") == ["a", "b", "c"]
