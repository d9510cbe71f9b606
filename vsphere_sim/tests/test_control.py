"""The /_sim control API: reset, fault rules, inventory, about, call counts, and who may use it."""
from __future__ import annotations

import base64
import time
from types import SimpleNamespace

import pytest
import requests
from pyVmomi import vim, vmodl

from vsphere_sim import control
from vsphere_sim.objects.folder import FolderImpl

pytestmark = [pytest.mark.sim_only, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def si(sim_target):
    from pyVim.connect import Disconnect
    instance = sim_target.connect()
    yield instance
    try:
        Disconnect(instance)
    except Exception:  # the session may be gone (a reset ends every session)
        pass


@pytest.fixture
def api(sim_target):
    base = sim_target.control_url

    def call(method, path, **kwargs):
        response = requests.request(method, base + path, timeout=10, **kwargs)
        assert response.headers["Content-Type"] == "application/json"
        return response

    yield call
    requests.delete(base + "/faults", timeout=10)


def test_about_lists_implemented_methods_per_type(api):
    about = api("GET", "/about").json()
    assert {"CurrentTime", "RetrieveServiceContent"} <= set(about["methods"]["ServiceInstance"])
    assert {"Login", "Logout"} <= set(about["methods"]["SessionManager"])
    assert "RetrievePropertiesEx" in about["methods"]["PropertyCollector"]
    assert "ManagedEntity" not in about["methods"]
    assert about["total"] == sum(len(v) for v in about["methods"].values())


def test_counts_count_calls_and_reset(api, si):
    assert api("DELETE", "/counts").json() == {"counts": {}, "total": 0}
    for _ in range(3):
        si.CurrentTime()
    counts = api("GET", "/counts").json()
    assert counts["counts"]["CurrentTime"] == 3
    api("DELETE", "/counts")
    assert "CurrentTime" not in api("GET", "/counts").json()["counts"]


def test_fault_rule_fires_count_times_then_retires(api, si):
    rule = api("POST", "/faults", json={"method": "CurrentTime", "fault": "vim.fault.ConcurrentAccess",
                                        "message": "busy now", "count": 2}).json()["rules"][0]
    assert rule["id"] > 0 and rule["fault"] == "vim.fault.ConcurrentAccess"
    for _ in range(2):
        with pytest.raises(vim.fault.ConcurrentAccess) as info:
            si.CurrentTime()
        assert info.value.msg == "busy now"
    assert si.CurrentTime() is not None
    assert api("GET", "/faults").json()["rules"] == []


def test_fault_rule_for_one_object_with_fields(api, si):
    api("POST", "/faults", json={"method": "Fetch", "object": "group-d1", "fault": "ManagedObjectNotFound",
                                 "fields": {"obj": {"type": "Folder", "value": "group-d1"}}, "count": 1})
    with pytest.raises(vmodl.fault.ManagedObjectNotFound) as info:
        si.content.rootFolder.name  # noqa: B018 (a Fetch on group-d1)
    assert info.value.obj._moId == "group-d1"
    assert si.content.rootFolder.name


def test_delay_rule_and_delete_by_id(api, si):
    rules = api("POST", "/faults", json=[{"method": "CurrentTime", "delay": 0.3},
                                         {"method": "NoSuchMethodYet", "fault": "InvalidState"}]).json()["rules"]
    t0 = time.monotonic()
    si.CurrentTime()
    assert time.monotonic() - t0 >= 0.3
    assert api("DELETE", f"/faults/{rules[0]['id']}").json() == {"removed": rules[0]["id"]}
    assert [r["id"] for r in api("GET", "/faults").json()["rules"]] == [rules[1]["id"]]
    assert api("DELETE", f"/faults/{rules[0]['id']}").status_code == 404
    t0 = time.monotonic()
    si.CurrentTime()
    assert time.monotonic() - t0 < 0.3


@pytest.mark.parametrize("rule,error", [
    ({"method": "CurrentTime", "fault": "vim.fault.NoSuchFault"}, "unknown fault type"),
    ({"method": "CurrentTime", "fault": "InvalidState", "colour": "red"}, "unknown fault rule fields"),
    ({"method": "CurrentTime"}, "needs a fault or a delay"),
    ({"method": "CurrentTime", "fault": "InvalidState", "fields": {"nope": 1}}, "no field nope"),
    ({"method": "CurrentTime", "delay": "soon"}, "bad fault rule"),
    ("just a string", "JSON object"),
])
def test_bad_fault_rules_are_refused(api, rule, error):
    response = api("POST", "/faults", json=rule)
    assert response.status_code == 400 and error in response.json()["error"]
    assert api("GET", "/faults").json()["rules"] == []


def test_bad_json_and_unknown_routes(api):
    assert api("POST", "/faults", data=b"{not json").status_code == 400
    assert api("GET", "/nothing-here").status_code == 404
    assert api("PUT", "/counts").status_code == 405


def test_inventory_dumps_objects(api, sim_target):
    sim = sim_target.sim
    with sim.lock:
        root = sim.root_folder()
        folder = FolderImpl(sim, sim.registry.next_id("group-v"), "dumped", root, ["Folder"])
        sim.registry.add(folder)
        root.add_child(folder)
    objects = {o["moid"]: o for o in api("GET", "/inventory").json()["objects"]}
    assert objects["group-d1"]["type"] == "Folder"
    assert folder.moid in objects["group-d1"]["children"]
    assert objects[folder.moid] == {"moid": folder.moid, "type": "Folder", "name": "dumped", "parent": "group-d1",
                                    "children": []}
    only = api("GET", "/inventory?type=ServiceInstance").json()["objects"]
    assert [o["moid"] for o in only] == ["ServiceInstance"]


def test_inventory_shows_vm_power_state_and_config(api, sim_target, si):
    vms = api("GET", "/inventory?type=VirtualMachine").json()["objects"]
    for vm in vms:
        assert vm["powerState"] in ("poweredOn", "poweredOff", "suspended")
        assert "config" in vm


def test_state_reports_the_store(api):
    state = api("GET", "/state").json()
    assert state["path"].endswith("state.db") and state["objects"] >= 1


def test_reset_restores_a_fresh_inventory(api, sim_target, si):
    sim = sim_target.sim
    with sim.lock:
        root = sim.root_folder()
        folder = FolderImpl(sim, sim.registry.next_id("group-v"), "doomed", root, ["Folder"])
        sim.registry.add(folder)
        root.add_child(folder)
        sim.flush_state()
    api("POST", "/faults", json={"method": "Nothing", "delay": 1})
    si.CurrentTime()
    answer = api("POST", "/reset").json()
    assert answer["reset"] is True
    assert sim.registry.find(folder.moid) is None
    assert api("GET", "/faults").json()["rules"] == []
    assert api("GET", "/counts").json()["total"] == 0
    # sessions end with a reset, as with a restarted vCenter: pyVmomi must log in again
    with pytest.raises(vim.fault.NotAuthenticated):
        si.content.rootFolder.name  # noqa: B018
    fresh = sim_target.connect()
    assert folder.moid not in [e._moId for e in fresh.content.rootFolder.childEntity]


# -- who may use it ----------------------------------------------------------------------------------------------------
def fake_handler(sim, path="/_sim/counts", client="10.1.2.3", headers=None):
    sent = {}
    handler = SimpleNamespace(
        path=path, headers=headers or {}, client_address=(client, 40000), server=SimpleNamespace(sim=sim),
        _read_body=lambda: b"", sent=sent)

    def send(status, body, content_type="", headers=None):
        sent.update(status=status, body=body, headers=headers or {})
    handler._send = send
    return handler


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_remote_clients_must_authenticate(sim_target):
    sim = sim_target.sim
    handler = fake_handler(sim)
    control.handle_control_request(handler, "GET")
    assert handler.sent["status"] == 401 and "WWW-Authenticate" in handler.sent["headers"]

    handler = fake_handler(sim, headers={"Authorization": basic(sim.user, "wrong")})
    control.handle_control_request(handler, "GET")
    assert handler.sent["status"] == 401

    handler = fake_handler(sim, headers={"Authorization": basic(sim.user, sim.password)})
    control.handle_control_request(handler, "GET")
    assert handler.sent["status"] == 200


def test_a_logged_in_vim25_session_cookie_is_enough(sim_target):
    sim = sim_target.sim
    session, set_cookie = sim.sessions.for_cookie(None)
    cookie = set_cookie.split(";", 1)[0]
    handler = fake_handler(sim, headers={"Cookie": cookie})
    control.handle_control_request(handler, "GET")
    assert handler.sent["status"] == 401  # not logged in yet
    session.authenticated = True
    handler = fake_handler(sim, headers={"Cookie": cookie})
    control.handle_control_request(handler, "GET")
    assert handler.sent["status"] == 200
    sim.sessions.end(session)


@pytest.mark.parametrize("client", ["127.0.0.1", "127.5.5.5", "::1"])
def test_loopback_clients_need_no_credentials(sim_target, client):
    handler = fake_handler(sim_target.sim, client=client)
    control.handle_control_request(handler, "GET")
    assert handler.sent["status"] == 200
