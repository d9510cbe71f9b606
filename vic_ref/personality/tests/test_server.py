"""`/_ping`, `/version`, `/info`, version prefixes and Docker's error shape (docker-api-clients.md §1-2)."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("path", ["/_ping", "/v1.44/_ping", "/v1.24/_ping"])
def test_ping(api, path):
    for reply in (api.get(path), api.head(path)):
        assert reply.status_code == 200
        h = reply.headers
        assert h["Api-Version"] == "1.44" and h["Ostype"] == "linux" and h["Docker-Experimental"] == "false"
        assert h["Swarm"] == "inactive" and h["Builder-Version"] and h["Server"].startswith("Docker/")
        assert h["Cache-Control"] == "no-cache, no-store, must-revalidate" and h["Pragma"] == "no-cache"
        assert h["Content-Type"].startswith("text/plain")
    assert api.get(path).text == "OK" and api.head(path).text == ""


@pytest.mark.parametrize("path", ["/version", "/v1.44/version", "/v1.41/version"])
def test_version(api, path):
    reply = api.get(path)
    body = reply.json()
    assert reply.status_code == 200 and reply.headers["Api-Version"] == "1.44"
    assert body["ApiVersion"] == "1.44" and body["MinAPIVersion"] == "1.24" and body["Os"] == "linux"
    assert body["Version"] == api.env.config.version
    assert body["Components"][0]["Name"] == "Engine" and body["Platform"]["Name"]


def test_info(api):
    body = api.get("/v1.44/info").json()
    assert body["Swarm"]["LocalNodeState"] == "inactive"
    assert body["Driver"].startswith("vSphere Integrated Containers ") and body["Driver"].endswith("Backend Engine")
    assert body["Name"] == api.env.name and body["OSType"] == "linux" and body["ID"] == api.env.config.id
    for key in ("Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped", "Images", "NCPU",
                "MemTotal", "ServerVersion", "SystemStatus"):
        assert key in body
    assert body["Images"] >= 1


@pytest.mark.parametrize("version,text", [
    ("1.23", "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to "
             "a newer version"),
    ("1.12", "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to "
             "a newer version"),
    ("1.45", "client version 1.45 is too new. Maximum supported API version is 1.44"),
    ("1.50", "client version 1.50 is too new. Maximum supported API version is 1.44"),
])
def test_versions_out_of_range(api, version, text):
    reply = api.get(f"/v{version}/containers/json")
    assert reply.status_code == 400 and reply.json() == {"message": text}
    assert reply.headers["Content-Type"].startswith("application/json")


def test_unknown_path(api):
    for path in ("/nope", "/v1.44/nope", "/v1.44/containers/x/nope"):
        reply = api.get(path)
        assert reply.status_code == 404 and reply.json() == {"message": "page not found"}


def test_errors_are_dockers_json(api):
    reply = api.get("/v1.44/containers/nosuch/json")
    assert reply.status_code == 404 and reply.json() == {"message": "No such container: nosuch"}
    assert reply.headers["Content-Type"].startswith("application/json")
    reply = api.post("/v1.44/containers/create", data=b"{nope", headers={"Content-Type": "application/json"})
    assert reply.status_code == 400 and reply.json()["message"].startswith("invalid JSON")
