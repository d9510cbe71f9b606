"""docker-py 7.2 against the personality in-process: its negotiation, the container flows and its exception classes."""
from __future__ import annotations

import docker
import pytest


def test_negotiation_and_ping(dpy):
    assert dpy.version()["ApiVersion"] == "1.44"
    assert dpy.api.api_version == "1.44"
    assert dpy.ping() is True


def test_container_flow(dpy, api):
    c = dpy.containers.create("busybox", name="pyweb", labels={"app": "web"}, environment=["X=1"])
    assert c.name == "pyweb" and c.status == "created"
    assert c.attrs["HostConfig"]["LogConfig"]["Type"] == "json-file"
    assert c.attrs["Config"]["Env"][0] == "X=1" and c.labels == {"app": "web"}
    c.start()
    c.reload()
    assert c.status == "running" and c.attrs["State"]["Running"] is True
    assert [x.name for x in dpy.containers.list(filters={"label": "app=web"})] == ["pyweb"]
    assert [x.name for x in dpy.containers.list(all=True, filters={"name": "pyweb"})] == ["pyweb"]
    c.stop(timeout=5)
    c.reload()
    assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 143
    assert [x.id for x in dpy.containers.list(all=True, filters={"status": "exited", "name": "pyweb"})] == [c.id]
    assert dpy.containers.get(c.id[:10]).name == "pyweb"
    c.rename("pyweb2")
    c.reload()
    assert c.name == "pyweb2"
    c.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        c.reload()


def test_run_detached_and_wait(dpy):
    c = dpy.containers.run("busybox", detach=True, name="pyrun")
    c.kill(signal="TERM")
    assert c.wait(timeout=30) == {"StatusCode": 143}
    c.start()
    c.kill()
    assert c.wait(timeout=30)["StatusCode"] == 137
    c.remove()


def test_exception_classes(dpy):
    with pytest.raises(docker.errors.NotFound) as info:
        dpy.containers.get("nosuch")
    assert info.value.status_code == 404 and "No such container: nosuch" in str(info.value)
    dpy.containers.create("busybox", name="pydup")
    with pytest.raises(docker.errors.APIError) as conflict:
        dpy.containers.create("busybox", name="pydup")
    assert conflict.value.status_code == 409 and not isinstance(conflict.value, docker.errors.NotFound)
    assert 'The container name "/pydup" is already in use' in conflict.value.explanation
    with pytest.raises(docker.errors.APIError) as invalid:
        dpy.containers.create("busybox", name="py dup")
    assert invalid.value.status_code == 400
    with pytest.raises(docker.errors.APIError) as bad_filter:
        dpy.containers.list(filters={"bogus": "1"})
    assert bad_filter.value.status_code == 400 and bad_filter.value.explanation == "invalid filter 'bogus'"
    running = dpy.containers.get("pydup")
    running.start()
    with pytest.raises(docker.errors.APIError) as busy:
        running.remove()
    assert busy.value.status_code == 409
    running.remove(force=True)
    with pytest.raises(docker.errors.ImageNotFound):
        dpy.containers.create("nosuchimage:1")
