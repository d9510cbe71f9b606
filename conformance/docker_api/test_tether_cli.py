"""Issue 4 with the real docker CLI: ttys (a pty on the CLI's side too, through pexpect), attach, start -a, exec,
top, signals, stop after the grace period, and what vSphere shows of a finished session."""
from __future__ import annotations

import json
import re
import time

import pexpect

from vic_ref.testing.processes import processes_running, zombies, zombies_in_namespace_of

from .conftest import find_vms, ok, wait_for

PROMPT = r"[#$] "


def spawn(vch, *args: str, rows: int = 24, cols: int = 80) -> pexpect.spawn:
    """The docker CLI on a pty of its own, as a user at a terminal runs it."""
    return pexpect.spawn("docker", list(args), env=vch.docker_env(), dimensions=(rows, cols), timeout=60,
                         encoding="utf-8", codec_errors="replace")


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def test_foreground_basics(docker_cli, busybox):
    assert docker_cli("run", "--rm", busybox, "echo", "hello", timeout=120)[:2] == (0, "hello\n")
    assert docker_cli("run", "--rm", busybox, "sh", "-c", "exit 3", timeout=120)[0] == 3
    rc, out, err = docker_cli("run", "--name", "no-such-cmd", busybox, "nosuchcmd", timeout=120)
    assert rc == 127 and 'exec: "nosuchcmd": executable file not found in $PATH' in err, (out, err)
    assert ok(docker_cli("inspect", "-f", "{{.State.ExitCode}}", "no-such-cmd")).strip() == "127"
    ok(docker_cli("rm", "no-such-cmd"))


def test_hostname_is_the_short_id_and_hosts_has_localhost(docker_cli, busybox):
    cid = ok(docker_cli("create", busybox, "sh", "-c", "cat /etc/hostname; cat /etc/hosts")).strip()
    rc, out, err = docker_cli("start", "-a", cid, timeout=120)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == cid[:12]
    assert "127.0.0.1\tlocalhost" in lines and any(line.startswith("::1\tlocalhost") for line in lines)
    ok(docker_cli("rm", cid))


def test_run_t_prints_a_tty_path(docker_cli, busybox):
    rc, out, err = docker_cli("run", "-t", "--rm", busybox, "tty", timeout=120)
    assert rc == 0, (out, err)
    assert re.fullmatch(r"/dev/pts/\d+\r?\n", out), out


def test_run_it_sizes_resizes_and_exits_with_the_code(vch, busybox):
    child = spawn(vch, "run", "-it", "--rm", busybox, "sh", rows=33, cols=101)
    child.expect(PROMPT)
    child.sendline("stty size; echo end''mark")
    child.expect("endmark")
    assert "33 101" in child.before
    child.setwinsize(40, 120)  # SIGWINCH: the CLI posts a resize, the VCH sends window-change
    deadline = time.monotonic() + 20
    while True:
        child.sendline("stty size; echo end''mark")
        child.expect("endmark")
        if "40 120" in child.before or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert "40 120" in child.before
    child.sendline("exit 5")
    assert finish(child) == 5


def test_run_dit_then_attach_and_type(vch, docker_cli, busybox):
    ok(docker_cli("run", "-dit", "--name", "typed", busybox, timeout=120))
    child = spawn(vch, "attach", "typed")
    time.sleep(0.5)  # the attach is up once the CLI has its stream; typing before it is buffered anyway
    child.sendline("echo o''k")
    child.expect("ok\r\n")
    child.sendline("exit 4")
    assert finish(child) == 4
    assert ok(docker_cli("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "typed")).split() == \
        ["exited", "4"]
    ok(docker_cli("rm", "typed"))


def test_start_a_and_stdin(docker_cli, busybox):
    ok(docker_cli("create", "--name", "started-a", busybox, "sh", "-c", "echo from start; exit 2"))
    assert docker_cli("start", "-a", "started-a", timeout=120)[:2] == (2, "from start\n")
    ok(docker_cli("create", "-i", "--name", "started-ai", busybox, "cat"))
    assert docker_cli("start", "-ai", "started-ai", input="piped\n", timeout=120)[:2] == (0, "piped\n")
    ok(docker_cli("rm", "started-a", "started-ai"))


def test_exec_it_and_i(vch, docker_cli, busybox):
    ok(docker_cli("run", "-d", "--name", "exec-host", busybox, "sleep", "600", timeout=120))
    try:
        child = spawn(vch, "exec", "-it", "exec-host", "sh")
        child.expect(PROMPT)
        child.sendline("tty; echo $((6*7))")
        child.expect("42")
        assert re.search(r"/dev/pts/\d+", child.before)
        child.sendline("exit 3")
        assert finish(child) == 3
        assert docker_cli("exec", "-i", "exec-host", "cat", input="into exec\n")[:2] == (0, "into exec\n")
        assert docker_cli("exec", "exec-host", "sh", "-c", "exit 6")[0] == 6
    finally:
        docker_cli("rm", "-f", "exec-host")


def test_top_lists_processes_and_orphans_are_reaped(vch, docker_cli, busybox):
    # 50 children that leave a grandchild behind: the grandchildren are orphans the container's init must reap
    script = 'i=0; while [ $i -lt 50 ]; do sh -c "sleep 0.05 &"; i=$((i+1)); done; echo spawned; exec sleep 601'
    ok(docker_cli("run", "-d", "--name", "c1", busybox, "sh", "-c", script, timeout=120))
    try:
        wait_for(lambda: "spawned" in ok(docker_cli("logs", "c1")), 60, "the children to be spawned")
        time.sleep(1.0)  # the last sleeps end
        lines = ok(docker_cli("top", "c1")).splitlines()
        assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        assert [line.split()[-2:] for line in lines[1:]] == [["sleep", "601"]]
        (pid,) = processes_running(b"sleep\x00601")
        assert zombies_in_namespace_of(pid) == []
        assert zombies(under=vch.process.pid) == []
        ok(docker_cli("exec", "-d", "c1", "sleep", "602"))
        wait_for(lambda: "sleep 602" in ok(docker_cli("top", "c1")), 30, "the exec in top")
    finally:
        docker_cli("rm", "-f", "c1")
    rc, _, err = docker_cli("top", "c1")
    assert rc == 1 and "No such container: c1" in err


def test_stop_after_the_grace_period_and_kill_s(docker_cli, busybox):
    script = 'trap "echo got USR1" USR1; trap "" TERM; echo ready; while true; do sleep 0.1; done'
    ok(docker_cli("run", "-d", "--name", "stubborn", busybox, "sh", "-c", script, timeout=120))
    wait_for(lambda: "ready" in ok(docker_cli("logs", "stubborn")), 60, "the traps to be set")
    ok(docker_cli("kill", "-s", "USR1", "stubborn"))
    wait_for(lambda: "got USR1" in ok(docker_cli("logs", "stubborn")), 30, "USR1 to arrive")
    assert ok(docker_cli("inspect", "-f", "{{.State.Running}}", "stubborn")).strip() == "true"
    began = time.monotonic()
    ok(docker_cli("stop", "-t", "2", "stubborn"))
    took = time.monotonic() - began
    assert took >= 2.0  # TERM was ignored: the grace period ran out
    assert ok(docker_cli("inspect", "-f", "{{.State.ExitCode}}", "stubborn")).strip() == "137"
    ok(docker_cli("rm", "stubborn"))


def test_vsphere_shows_the_finished_session(docker_cli, busybox, si):
    cid = ok(docker_cli("run", "-d", busybox, "sh", "-c", "exit 9", timeout=120)).strip()
    assert ok(docker_cli("wait", cid)).strip() == "9"
    (vm,) = [vm for vm in find_vms(si) if vm.name.endswith(cid[:12])]
    wait_for(lambda: vm.runtime.powerState == "poweredOff", 30, "the container VM to power off")
    keys = {o.key: o.value for o in vm.config.extraConfig}
    prefix = f"guestinfo.vice..sessions|{cid}."
    assert keys[prefix + "status"] == "9"
    assert keys[prefix + "started"] == "true"
    assert int(keys[prefix + "detail.stoptime"]) >= int(keys[prefix + "detail.starttime"]) > 0
    ok(docker_cli("rm", cid))


def test_bad_detach_keys_are_refused(vch, docker_cli, busybox):
    import requests
    ok(docker_cli("run", "-dit", "--name", "detach-keys", busybox, timeout=120))
    try:
        reply = requests.post(f"{vch.base_url}/containers/detach-keys/attach",
                              params={"stream": "1", "stdin": "1", "detachKeys": "bad-key"}, timeout=30)
        assert reply.status_code == 400
        assert json.loads(reply.text)["message"] == "Invalid detach keys (bad-key) provided"
    finally:
        docker_cli("rm", "-f", "detach-keys")
