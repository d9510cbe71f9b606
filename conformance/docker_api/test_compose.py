"""docker-compose v1 (1.29.2, as docker-api-clients.md §3 pins it; `make install` puts it in .venv-compose) against
a VCH: `up -d`, `ps`, `up -d` after a change (stop, rename to `<shortid>_<name>`, create, start, remove the old),
`up -d --force-recreate`, `down`; its label filters in docker-py's list shape; its network and the service-name
aliases resolving from the other service."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import ok, wait_for

pytestmark = pytest.mark.sim_only

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "proj"


def compose_binary() -> str | None:
    candidates = [os.environ.get("VIC_REF_DOCKER_COMPOSE", ""), str(ROOT / ".venv-compose" / "bin" / "docker-compose"),
                  shutil.which("docker-compose") or ""]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


COMPOSE_FILE = """\
version: "2.4"
services:
  db:
    image: {image}
    command: ["sleep", "600"]
    labels:
      tier: "{tier}"
  web:
    image: {image}
    command: ["sh", "-c", "while true; do ping -c1 -W1 db >/dev/null && echo db-ok; sleep 1; done"]
    depends_on:
      - db
"""


@pytest.fixture(scope="module")
def compose(vch, tmp_path_factory):
    binary = compose_binary()
    if binary is None:
        pytest.fail("docker-compose 1.29.2 is not installed: run `make install` (it makes .venv-compose)")
    folder = tmp_path_factory.mktemp("compose")
    env = vch.docker_env()

    def run(*args: str, timeout: float = 180.0) -> tuple[int, str, str]:
        done = subprocess.run([binary, "-p", PROJECT, *args], cwd=folder, env=env, capture_output=True, text=True,
                              timeout=timeout)
        return done.returncode, done.stdout, done.stderr

    run.folder = folder
    return run


def write(compose, image: str, tier: str) -> None:
    (compose.folder / "docker-compose.yml").write_text(COMPOSE_FILE.format(image=image, tier=tier))


def containers(docker_cli) -> dict[str, dict]:
    """name → {id, state} of the project's containers (the label filter in the Go CLI's shape)."""
    out = ok(docker_cli("ps", "-a", "--no-trunc", "--filter", f"label=com.docker.compose.project={PROJECT}",
                        "--format", "{{.Names}} {{.ID}} {{.State}}"))
    return {line.split()[0]: {"id": line.split()[1], "state": line.split()[2]} for line in out.splitlines()}


def db_resolves_from_web(docker_cli) -> bool:
    return "db-ok" in ok(docker_cli("logs", f"{PROJECT}_web_1"))


def test_compose_project_lifecycle(vch, docker_cli, docker_client, busybox, compose):
    write(compose, busybox, "one")
    rc, out, err = compose("up", "-d")
    assert rc == 0, err
    first = containers(docker_cli)
    assert set(first) == {f"{PROJECT}_db_1", f"{PROJECT}_web_1"}
    assert all(c["state"] == "running" for c in first.values()), first
    # compose's network, with the service names as aliases
    nets = json.loads(ok(docker_cli("inspect", "-f", "{{json .NetworkSettings.Networks}}", f"{PROJECT}_web_1")))
    assert set(nets) == {f"{PROJECT}_default"} and "web" in nets[f"{PROJECT}_default"]["Aliases"]
    wait_for(lambda: db_resolves_from_web(docker_cli), 30, "web to reach db by its service name")
    out = ok(docker_cli("exec", f"{PROJECT}_web_1", "nslookup", "db"))
    db_ip = nets_ip(docker_cli, f"{PROJECT}_db_1")
    assert f"Address: {db_ip}" in out, out

    # ps, and the label filters as docker-py sends them (the list shape)
    rc, out, err = compose("ps")
    assert rc == 0, err
    assert f"{PROJECT}_db_1" in out and f"{PROJECT}_web_1" in out and "Up" in out, out
    listed = docker_client.api.containers(filters={"label": [f"com.docker.compose.project={PROJECT}",
                                                             "com.docker.compose.service=db"]})
    assert [c["Names"] for c in listed] == [[f"/{PROJECT}_db_1"]]

    # nothing changed: up to date
    rc, out, err = compose("up", "-d")
    assert rc == 0 and "is up-to-date" in err, err
    assert containers(docker_cli) == first

    # a change to db: it is recreated (stop, rename to <shortid>_<name>, create, start, rm); web is not
    write(compose, busybox, "two")
    started = time.time()
    rc, out, err = compose("up", "-d")
    assert rc == 0, err
    assert "Recreating" in err, err
    second = containers(docker_cli)
    assert set(second) == {f"{PROJECT}_db_1", f"{PROJECT}_web_1"}, second
    assert second[f"{PROJECT}_db_1"]["id"] != first[f"{PROJECT}_db_1"]["id"]
    assert all(c["state"] == "running" for c in second.values()), second
    assert ok(docker_cli("inspect", "-f", "{{index .Config.Labels \"tier\"}}", f"{PROJECT}_db_1")).strip() == "two"
    assert first[f"{PROJECT}_db_1"]["id"] not in ok(docker_cli("ps", "-aq", "--no-trunc"))
    old_db = first[f"{PROJECT}_db_1"]["id"]
    renames = ok(docker_cli("events", "--since", f"{started:.3f}", "--until", f"{time.time():.3f}", "--filter",
                            "event=rename", "--format", "{{.Actor.ID}} {{.Actor.Attributes.oldName}} "
                            "{{.Actor.Attributes.name}}")).splitlines()
    assert renames == [f"{old_db} /{PROJECT}_db_1 {old_db[:12]}_{PROJECT}_db_1"], renames
    since = ok(docker_cli("logs", f"{PROJECT}_web_1")).count("db-ok")
    wait_for(lambda: ok(docker_cli("logs", f"{PROJECT}_web_1")).count("db-ok") > since + 1, 30,
             "web to reach the new db by its service name")
    assert nets_ip(docker_cli, f"{PROJECT}_db_1") in ok(docker_cli("exec", f"{PROJECT}_web_1", "nslookup", "db"))

    # --force-recreate: both again
    since = docker_client.api.inspect_container(f"{PROJECT}_db_1")["Id"]
    rc, out, err = compose("up", "-d", "--force-recreate")
    assert rc == 0, err
    third = containers(docker_cli)
    assert set(third) == {f"{PROJECT}_db_1", f"{PROJECT}_web_1"}, third
    assert third[f"{PROJECT}_db_1"]["id"] != since
    assert third[f"{PROJECT}_web_1"]["id"] != second[f"{PROJECT}_web_1"]["id"]
    assert all(c["state"] == "running" for c in third.values()), third
    remaining = ok(docker_cli("ps", "-aq", "--no-trunc")).split()
    assert since not in remaining and second[f"{PROJECT}_web_1"]["id"] not in remaining
    wait_for(lambda: db_resolves_from_web(docker_cli), 30, "the new web to reach the new db")

    # down: containers and the network go
    rc, out, err = compose("down")
    assert rc == 0, err
    assert containers(docker_cli) == {}
    assert f"{PROJECT}_default" not in ok(docker_cli("network", "ls", "--format", "{{.Name}}")).split()


def nets_ip(docker_cli, name: str) -> str:
    return ok(docker_cli("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name)).strip()
