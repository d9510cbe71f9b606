"""The cache entry's reading of snapshots: states, and runs seen as transitions even when a short one came and went
between two property collector updates."""
from __future__ import annotations

from vic_ref.config import Cmd, Common, ExecutorConfig, ExecutorConfigCommon, SessionConfig, encode
from vic_ref.portlayer.exec.container import Container, Snapshot, State, exit_code_of, rfc3339

CID = "f" * 64


class FakeVM:
    _moId = "vm-1"


def snap(power="poweredOff", started="", start=0, stop=0, status=0, name="web") -> Snapshot:
    session = SessionConfig(common=Common(id=CID), cmd=Cmd(path="sh", args=["sh"]), started=started,
                            exit_status=status)
    session.detail.start_time, session.detail.stop_time = start, stop
    cfg = ExecutorConfig(common=ExecutorConfigCommon(id=CID, name=name), sessions={CID: session})
    extra = encode(cfg)
    return Snapshot(vm=FakeVM(), display_name=f"{name}-{CID[:12]}", power_state=power, change_version="1",
                    extra=extra, config=cfg)


def test_states():
    assert snap().state() is State.CREATED
    assert snap("poweredOn", "true", 5).state() is State.RUNNING
    assert snap("poweredOn", "", 5).state() is State.STARTING
    assert snap("poweredOff", "true", 5, 6).state() is State.STOPPED
    assert snap("suspended", "true", 5).state().docker == "paused"
    assert [s.docker for s in (State.STARTING, State.STOPPING, State.REMOVING)] == ["running", "running", "removing"]


def test_observed_transitions():
    c = Container(snap())
    assert c.update(snap(started="", start=10)) == (False, False)  # our reset before a power on
    assert c.update(snap("poweredOn", "", 10)) == (True, False)
    assert c.update(snap("poweredOn", "true", 11)) == (False, False)
    assert c.update(snap("poweredOff", "true", 11, status=143)) == (False, True)
    assert (c.starts, c.exits) == (1, 1)
    assert c.update(snap("poweredOff", "true", 11, 12, status=143)) == (False, False)  # the stop time recorded


def test_a_run_between_two_updates_is_still_a_run():
    c = Container(snap("poweredOff", "", 10))  # reset, then everything else unseen
    assert c.update(snap("poweredOff", "true", 11, status=0)) == (True, True)
    # even the reset unseen: a new start time with a launch report
    assert c.update(snap("poweredOff", "true", 20, status=1)) == (True, True)
    assert (c.starts, c.exits) == (2, 2)
    # a launch failure reported while we didn't look
    c2 = Container(snap("poweredOff", "", 10))
    assert c2.update(snap("poweredOff", "exec: no such file", 10)) == (True, True)


def test_exit_codes_and_times():
    assert exit_code_of(snap(started="true", status=3).session) == (3, "")
    assert exit_code_of(snap(started="fork/exec /x: permission denied").session)[0] == 126
    assert exit_code_of(snap(started="/x: no such executable in PATH").session)[0] == 127
    assert rfc3339(0) == "0001-01-01T00:00:00Z"
    assert rfc3339(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert rfc3339(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
    t = 1_700_000_000_000_000_000
    info = Container(snap("poweredOff", "true", t + 5, t + 6, 143)).info()
    assert info.exit_code == 143 and (info.started_ns, info.finished_ns) == (t + 5, t + 6) and info.name == "web"
    # data versions before 9 kept seconds: shown as nanoseconds
    assert Container(snap("poweredOff", "true", 1_700_000_000, 1_700_000_001)).info().started_ns == t
