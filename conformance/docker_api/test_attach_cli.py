"""Issue 4 item 5 with the real docker CLI: foreground `docker run` (output, exit code, stdin) and `docker exec`,
through the tether's attach server (vic_ref/tether/attach.py) and the VCH's attach listener."""
from __future__ import annotations

from .conftest import ok


def test_run_foreground_prints_output(docker_cli, busybox):
    rc, out, err = docker_cli("run", "--rm", busybox, "echo", "hi", timeout=120)
    assert (rc, out) == (0, "hi\n"), err


def test_run_foreground_exit_code(docker_cli, busybox):
    rc, out, err = docker_cli("run", busybox, "sh", "-c", "exit 3", timeout=120)
    assert rc == 3, (out, err)


def test_run_interactive_stdin(docker_cli, busybox):
    rc, out, err = docker_cli("run", "-i", "--rm", busybox, "cat", input="data\n", timeout=120)
    assert (rc, out) == (0, "data\n"), err


def test_run_stderr(docker_cli, busybox):
    rc, out, err = docker_cli("run", "--rm", busybox, "sh", "-c", "echo out; echo err >&2", timeout=120)
    assert (rc, out) == (0, "out\n") and "err" in err, (out, err)


def test_exec_prints_output(docker_cli, busybox):
    cid = ok(docker_cli("run", "-d", busybox, "sleep", "300", timeout=120)).strip()
    try:
        rc, out, err = docker_cli("exec", cid, "echo", "hi", timeout=120)
        assert (rc, out) == (0, "hi\n"), err
    finally:
        docker_cli("rm", "-f", cid)


def test_run_rm_of_a_missing_image_pulls_it(docker_cli, busybox):
    before = ok(docker_cli("ps", "-aq"))
    ok(docker_cli("rmi", "-f", busybox))
    rc, out, err = docker_cli("run", "--rm", busybox, "echo", "pulled", timeout=180)
    assert rc == 0, err
    assert "Unable to find image" in err and out.endswith("pulled\n")
    assert busybox.split("/", 1)[1].split(":")[0] in ok(docker_cli("images"))
    assert ok(docker_cli("ps", "-aq")) == before  # --rm removed it
