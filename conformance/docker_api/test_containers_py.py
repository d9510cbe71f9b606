"""Issue 3 with docker-py 7.2 against `vic-ref up`: the same flows, and exceptions of the right classes."""
from __future__ import annotations

import docker
import pytest


def test_flows(docker_client, busybox):
    assert docker_client.version()["ApiVersion"] == "1.44" and docker_client.ping()
    c = docker_client.containers.create(busybox, name="py1", labels={"suite": "py"}, stdin_open=True)
    assert c.status == "created" and c.name == "py1"
    c.start()
    c.reload()
    assert c.status == "running"
    assert [x.name for x in docker_client.containers.list(filters={"label": "suite=py"})] == ["py1"]
    c.stop()
    c.reload()
    assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 143
    listed = docker_client.containers.list(all=True, filters={"name": "py1"})
    assert [x.id for x in listed] == [c.id]
    c.remove(force=True)
    assert not docker_client.containers.list(all=True, filters={"name": "py1"})


def test_run_detached_wait(docker_client, busybox):
    c = docker_client.containers.run(busybox, detach=True, stdin_open=True)
    c.kill()
    assert c.wait(timeout=30) == {"StatusCode": 137}
    c.remove()


def test_exceptions(docker_client, busybox):
    with pytest.raises(docker.errors.NotFound) as missing:
        docker_client.containers.get("nosuch")
    assert missing.value.status_code == 404 and missing.value.explanation == "No such container: nosuch"
    c = docker_client.containers.create(busybox, name="pydup")
    with pytest.raises(docker.errors.APIError) as conflict:
        docker_client.containers.create(busybox, name="pydup")
    assert conflict.value.status_code == 409
    assert conflict.value.explanation.startswith('Conflict. The container name "/pydup" is already in use')
    with pytest.raises(docker.errors.APIError) as invalid:
        docker_client.containers.create(busybox, name="py dup")
    assert invalid.value.status_code == 400 and "Invalid container name (py dup)" in invalid.value.explanation
    with pytest.raises(docker.errors.APIError) as bad_filter:
        docker_client.containers.list(filters={"colour": "red"})
    assert bad_filter.value.status_code == 400 and bad_filter.value.explanation == "invalid filter 'colour'"
    c.start()
    with pytest.raises(docker.errors.APIError) as running:
        c.remove()
    assert running.value.status_code == 409 and "container is running" in running.value.explanation
    c.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        c.remove()
