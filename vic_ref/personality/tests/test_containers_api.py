"""Container routes over raw HTTP: what the clients send (docker-api-clients.md) and what they need back."""
from __future__ import annotations

import base64
import http.client
import json
import threading
import time

import pytest


def test_create_response_and_stored_config(api):
    reply = api.post("/v1.44/containers/create", params={"name": "raw1"}, json={
        "Image": "alpine:3.19", "Cmd": None, "Env": ["A=1", "HOME=/x"], "Labels": {"k": "v"},
        "HostConfig": {"NetworkMode": "default", "RestartPolicy": {"Name": "no"},
                       "Memory": 600 * 2 ** 20, "LogConfig": {"Type": "", "Config": {}}},
        "NetworkingConfig": {"mynet": None}})
    assert reply.status_code == 201 and reply.json()["Warnings"] == []
    cid = reply.json()["Id"]
    body = api.get(f"/v1.44/containers/{cid}/json").json()
    assert body["Path"] == "/bin/sh" and body["Args"] == []  # the image's Cmd
    assert body["Config"]["Env"] == ["A=1", "HOME=/x", "PATH=/bin"]  # user first; the image's others after
    assert body["Config"]["Labels"] == {"k": "v"} and body["Config"]["StopSignal"] == "SIGQUIT"
    # (Binds are volumes now: conformance/docker_api/test_volumes_cli.py checks them; this VCH has no volume store)
    assert body["HostConfig"]["LogConfig"]["Type"] == "json-file" and body["HostConfig"]["Binds"] is None
    assert body["Created"].endswith("Z") and body["State"]["StartedAt"] == "0001-01-01T00:00:00Z"
    info = api.portlayer.exec.info(cid)
    assert info.snapshot.memory_mb == 640 and info.session.stop_signal == "SIGQUIT"
    annotations = info.annotations
    assert json.loads(base64.b64decode(annotations["docker.labels"])) == {"k": "v"}
    api.delete(f"/v1.44/containers/{cid}")


def test_no_command(api):
    # an empty Cmd takes the image's...
    reply = api.post("/v1.44/containers/create", json={"Image": "busybox", "Entrypoint": None, "Cmd": []})
    assert reply.status_code == 201
    api.delete(f"/v1.44/containers/{reply.json()['Id']}")
    # ...unless an Entrypoint is given: [""] (`--entrypoint ""`) is reset to none, and then nothing is left to run
    reply = api.post("/v1.44/containers/create", json={"Image": "busybox", "Entrypoint": [""], "Cmd": []})
    assert reply.status_code == 400 and reply.json() == {"message": "no command specified"}


def test_start_stop_not_modified(api):
    cid = api.create("nm")
    assert api.post(f"/v1.44/containers/{cid}/stop").status_code == 304
    assert api.post(f"/v1.44/containers/{cid}/start").status_code == 204
    assert api.post(f"/v1.44/containers/{cid}/start").status_code == 304
    assert api.post(f"/v1.44/containers/{cid}/stop", params={"t": "2"}).status_code == 204
    assert api.post(f"/v1.44/containers/{cid}/stop", params={"t": "x"}).status_code == 400
    assert api.delete(f"/v1.44/containers/{cid}", params={"v": "False", "link": "False",
                                                            "force": "False"}).status_code == 204
    assert api.delete(f"/v1.44/containers/{cid}").json() == {"message": f"No such container: {cid}"}


def test_list_shapes_and_filters(api):
    a = api.create("ls-a", Labels={"com.docker.compose.project": "proj", "com.docker.compose.oneoff": "False"})
    b = api.create("ls-b", Labels={"com.docker.compose.project": "other"})
    listing = api.get("/v1.44/containers/json", params={"all": "1"}).json()
    entry = next(e for e in listing if e["Id"] == a)
    assert entry["Names"] == ["/ls-a"] and entry["Image"] == "busybox" and entry["Command"] == "sh"
    assert entry["State"] == "created" and entry["Status"] == "Created" and isinstance(entry["Created"], int)
    assert entry["Labels"]["com.docker.compose.project"] == "proj" and entry["Ports"] == []
    assert entry["HostConfig"] == {"NetworkMode": "default"}
    # docker-py / compose: list shape with spaces; the CLI: map of maps
    compose = '{"label": ["com.docker.compose.project=proj", "com.docker.compose.oneoff=False"]}'
    got = api.get("/v1.44/containers/json", params={"limit": "-1", "all": "1", "size": "0", "trunc_cmd": "0",
                                                   "filters": compose}).json()
    assert [e["Id"] for e in got] == [a]
    cli_shape = json.dumps({"label": {"com.docker.compose.project": True}, "name": {"^ls-": True}})
    assert {e["Id"] for e in api.get("/v1.44/containers/json", params={"all": "1", "filters": cli_shape}).json()} \
        == {a, b}
    assert api.get("/v1.44/containers/json", params={"filters": '{"id": ["' + a[:6] + '"]}', "all": "1"}).json()[0][
        "Id"] == a
    assert [e["Id"] for e in api.get("/v1.44/containers/json", params={
        "all": "1", "filters": json.dumps({"before": [b]})}).json() if e["Id"] in (a, b)] == [a]
    assert [e["Id"] for e in api.get("/v1.44/containers/json", params={
        "all": "1", "filters": json.dumps({"since": [a]})}).json() if e["Id"] in (a, b)] == [b]
    reply = api.get("/v1.44/containers/json", params={"filters": json.dumps({"since": ["nosuch"]})})
    assert reply.status_code == 404 and reply.json()["message"] == "No such container: nosuch"
    reply = api.get("/v1.44/containers/json", params={"filters": '{"exited": ["x"]}'})
    assert reply.status_code == 400 and reply.json()["message"].startswith("invalid filter 'exited=x'")
    reply = api.get("/v1.44/containers/json", params={"filters": '{"status": ["zzz"]}'})
    assert reply.json()["message"] == ("invalid filter 'status=zzz': invalid value for state (zzz): must be one of "
                                       "created, running, paused, restarting, removing, exited, dead")
    reply = api.get("/v1.44/containers/json", params={"filters": '{"nope": ["1"]}'})
    assert reply.status_code == 400 and reply.json() == {"message": "invalid filter 'nope'"}
    sized = api.get("/v1.44/containers/json", params={"all": "1", "size": "1", "limit": "1"}).json()
    assert len(sized) == 1 and "SizeRw" in sized[0]
    for cid in (a, b):
        api.delete(f"/v1.44/containers/{cid}")


def test_wait_sends_headers_at_once(api):
    cid = api.create("waiter")
    conn = http.client.HTTPConnection("127.0.0.1", api.server.port, timeout=30)
    conn.request("POST", f"/v1.44/containers/{cid}/wait?condition=next-exit", headers={"Content-Length": "0"})
    began = time.monotonic()
    reply = conn.getresponse()  # `docker run` sends this before start: the headers must not wait for the exit
    assert reply.status == 200 and time.monotonic() - began < 5
    assert reply.getheader("Content-Type") == "application/json"
    results = {}
    reader = threading.Thread(target=lambda: results.update(body=reply.read()))
    reader.start()
    api.post(f"/v1.44/containers/{cid}/start")
    time.sleep(0.2)
    assert "body" not in results
    api.post(f"/v1.44/containers/{cid}/kill", params={"signal": "SIGTERM"})
    reader.join(30)
    assert json.loads(results["body"]) == {"StatusCode": 143}
    conn.close()
    # not-running on a stopped container and the bad cases
    assert api.post(f"/v1.44/containers/{cid}/wait").json() == {"StatusCode": 143}
    reply = api.post(f"/v1.44/containers/{cid}/wait", params={"condition": "later"})
    assert reply.status_code == 400 and reply.json() == {"message": 'invalid condition: "later"'}
    assert api.post("/v1.44/containers/nosuch/wait").status_code == 404
    api.delete(f"/v1.44/containers/{cid}")


def test_abandoned_wait_frees_its_thread(api):
    """`docker run -d` abandons its wait: the port layer's wait is cancelled, its thread given back."""
    cid = api.create("abandoned")
    container = api.portlayer.exec.find(cid)
    conns = []
    for _ in range(3):
        conn = http.client.HTTPConnection("127.0.0.1", api.server.port, timeout=30)
        conn.request("POST", f"/v1.44/containers/{cid}/wait?condition=removed", headers={"Content-Length": "0"})
        assert conn.getresponse().status == 200
        conns.append(conn)
    deadline = time.monotonic() + 5
    while len(container.cond._waiters) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(container.cond._waiters) == 3  # three waits in the port layer
    for conn in conns:
        conn.close()
    deadline = time.monotonic() + 5
    while container.cond._waiters and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not container.cond._waiters
    api.delete(f"/v1.44/containers/{cid}")


def test_kill_texts(api):
    cid = api.create("kt")
    reply = api.post("/v1.44/containers/kt/kill")
    assert reply.status_code == 409
    assert reply.json()["message"] == f"cannot kill container: kt: container {cid} is not running"
    reply = api.post("/v1.44/containers/nosuch/kill")
    assert reply.status_code == 404 and reply.json()["message"] == "cannot kill container: nosuch: No such " \
                                                                    "container: nosuch"
    api.post("/v1.44/containers/kt/start")
    reply = api.post("/v1.44/containers/kt/kill", params={"signal": "SIGBOGUS"})
    assert reply.status_code == 400 and reply.json()["message"] == "cannot kill container: kt: Invalid signal: " \
                                                                    "SIGBOGUS"
    api.delete("/v1.44/containers/kt", params={"force": "1"})


def test_logs_top_attach(api):
    cid = api.create("lt")
    reply = api.get(f"/v1.44/containers/{cid}/logs", params={"stdout": "1", "stderr": "1"})
    assert reply.status_code == 200 and reply.content == b""
    assert reply.headers["Content-Type"] == "application/vnd.docker.multiplexed-stream"
    assert api.get(f"/v1.44/containers/{cid}/logs").json() == {"message": "You must choose at least one stream"}
    reply = api.get(f"/v1.44/containers/{cid}/top")
    assert reply.status_code == 409 and reply.json() == {"message": f"container {cid} is not running"}
    # a running container's table comes from its tether: conformance/docker_api/test_tether_cli.py
    api.delete(f"/v1.44/containers/{cid}", params={"force": "true"})


def _hijack(api, path: str):
    """POST `path` with Docker's upgrade headers on a raw socket: (socket, the response head)."""
    import socket as sockets
    sock = sockets.create_connection(("127.0.0.1", api.server.port), timeout=30)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Type: text/plain\r\n"
                 f"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    return sock, head.decode()


def _frames(sock) -> list[tuple[int, bytes]]:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    out = []
    while data:
        kind, size = data[0], int.from_bytes(data[4:8], "big")
        out.append((kind, data[8:8 + size]))
        data = data[8 + size:]
    return out


def test_attach_before_start_gets_all_output(api):
    """docker run's order: attach (101) → start; the test tether serves the attach stream as the container's."""
    from vic_ref.portlayer.interaction.tests.fake_tether import FakeTether, echo, run_in_thread
    cid = api.create("at")
    sock, head = _hijack(api, f"/v1.44/containers/{cid}/attach?stream=1&stdout=1&stderr=1")
    assert head.startswith("HTTP/1.1 101 UPGRADED") and "application/vnd.docker.multiplexed-stream" in head
    assert api.portlayer.exec.find(cid).snapshot.session.run_block  # the process waits for the attach
    assert api.post(f"/v1.44/containers/{cid}/start").status_code == 204
    import asyncssh
    key = asyncssh.import_private_key(api.portlayer.exec.find(cid).snapshot.config.key)
    tether = FakeTether({cid: echo("hi\n", stderr="oops\n")}, host_key=key)
    stop = run_in_thread(tether, api.portlayer.interaction.port)
    try:
        frames = _frames(sock)
    finally:
        stop()
        sock.close()
    assert (1, b"hi\n") in frames and (2, b"oops\n") in frames
    api.delete(f"/v1.44/containers/{cid}", params={"force": "true"})


def read_events(api, params, count, timeout=20.0):
    events, errors = [], []

    def reader():
        try:
            with api.http.get(api.url + "/v1.44/events", params=params, stream=True, timeout=timeout) as reply:
                assert reply.status_code == 200
                for line in reply.iter_lines():
                    if line:
                        events.append(json.loads(line))
                        if len(events) >= count:
                            return
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    thread = threading.Thread(target=reader)
    thread.start()
    return thread, events, errors


def test_events_stream_and_filters(api):
    thread, events, errors = read_events(api, {"filters": json.dumps({"type": {"container": True},
                                                                      "container": {"ev1": True}})}, 4)
    time.sleep(0.5)
    cid = api.create("ev1")
    api.create("ev-other")
    api.post(f"/v1.44/containers/{cid}/start")
    api.post(f"/v1.44/containers/{cid}/kill")
    thread.join(20)
    assert not errors
    assert [e["Action"] for e in events] == ["create", "start", "kill", "die"]
    first = events[0]
    assert first["Type"] == "container" and first["id"] == cid and first["status"] == "create"
    assert first["Actor"]["Attributes"]["name"] == "ev1" and first["from"] == "busybox"
    assert events[2]["Actor"]["Attributes"]["signal"] == "9" and events[3]["Actor"]["Attributes"]["exitCode"] == "137"
    # since/until: the past, then the end
    since = str(first["time"])
    until = str(events[-1]["time"] + 1)
    with api.http.get(api.url + "/v1.44/events", params={"since": since, "until": until, "filters": json.dumps(
            {"event": ["create"]})}, timeout=20) as reply:
        lines = [json.loads(x) for x in reply.text.splitlines() if x]
    assert {e["Actor"]["Attributes"]["name"] for e in lines} >= {"ev1", "ev-other"}
    assert all(e["Action"] == "create" for e in lines)
    reply = api.get("/v1.44/events", params={"filters": '{"bogus": ["x"]}'})
    assert reply.status_code == 400 and reply.json() == {"message": "invalid filter 'bogus'"}
    for name in ("ev1", "ev-other"):
        api.delete(f"/v1.44/containers/{name}", params={"force": "1"})


@pytest.mark.parametrize("version", ["1.25", "1.29"])
def test_legacy_wait_before_130(api, version):
    cid = api.create(f"legacy-{version}")
    reply = api.post(f"/v{version}/containers/{cid}/wait")
    assert reply.status_code == 200 and reply.json()["StatusCode"] == 0
    api.delete(f"/v{version}/containers/{cid}")
