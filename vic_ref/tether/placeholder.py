"""A stand-in tether that runs no process: it keeps a container VM "running" and answers the port layer's guest
operations. For tests whose images are empty disks (the port layer's `FakeImageStore`): a bootstrap ISO with
`args: ["--placeholder"]` boots it (`python -m vic_ref.tether --placeholder`); the real tether is `vic_ref.tether`.

What it does:
- connects to the guest channel and accepts guest logins for the container ID (`guestinfo.vice./common/id`), the
  user the port layer logs in as (any password);
- marks the primary session (ID = container ID) started: `guestinfo.vice..sessions|<id>.started = true`, start time;
- answers guest operations: `reload` ok; `kill SIG` and `group-kill SIG` end the (imaginary) primary process as if
  SIG killed it: exit status 128+signo under the session's `status` key, then the VM powers off; anything else is
  refused with the tether's text `unknown command "<program>"`;
- stays up until the VM powers off.
"""
from __future__ import annotations

import logging
import signal
import threading
import time

from ..config import key_for
from ..guest import ChannelClosed, GuestChannel, GuestChannelError, Operation

log = logging.getLogger("vic_ref.tether")

ID_KEY = "guestinfo.vice./common/id"


def parse_signal(text: str) -> int:
    """`TERM`, `SIGTERM`, `sigterm` or `15` → 15; ValueError for anything else (as Go's signal parsing)."""
    text = text.strip()
    if text.isdigit():
        number = int(text)
        if 0 < number < signal.NSIG:
            return number
        raise ValueError(f"unknown signal {text!r}")
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise ValueError(f"unknown signal {text!r}") from None


class PlaceholderTether:
    def __init__(self, channel: GuestChannel):
        self.channel = channel
        self.id = ""
        self.stopping = threading.Event()

    def boot(self) -> None:
        self.id = self.channel.get(ID_KEY) or ""
        if not self.id:
            log.warning("no container id in %s; guest operations will find no login", ID_KEY)
        self.channel.accept_logins([self.id] if self.id else [])
        self.channel.serve_operations(self.handle)
        if self.id:
            # started last: once the port layer sees it, the tether is ready for operations
            self.channel.update({
                key_for("sessions", self.id, "detail", "start_time"): str(time.time_ns()),
                key_for("sessions", self.id, "started"): "true",
            })
        log.info("placeholder tether up for %s", self.id or "<no id>")

    def handle(self, op: Operation):
        log.info("guest operation %s %r %r as %s", op.kind, op.program, op.arguments, op.user)
        if op.kind != "start":
            op.reject(f"no process {op.pid}", fault="GuestProcessNotFound")
            return None
        if op.program == "reload":
            return 0
        if op.program in ("kill", "group-kill"):
            try:
                signo = parse_signal(op.arguments or "TERM")
            except ValueError as err:
                op.reject(str(err))
                return None
            op.started()
            self.die(128 + signo)
            return 0
        op.reject(f'unknown command "{op.program}"')
        return None

    def die(self, status: int) -> None:
        """The primary process ended with `status`: record it, then halt the VM (off this thread, so the operation
        is answered first)."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        if self.id:
            try:
                self.channel.update({key_for("sessions", self.id, "exit_status"): str(status)})
            except GuestChannelError as err:
                log.warning("cannot record exit status %d: %s", status, err)
        log.info("primary process exits with %d; powering off", status)
        threading.Thread(target=self._power_off, name="tether-power-off", daemon=True).start()

    def _power_off(self) -> None:
        time.sleep(0.05)  # let the operation's answer go out before the channel closes
        try:
            self.channel.power_off()
        except (ChannelClosed, GuestChannelError):
            pass


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s tether %(levelname)s %(message)s")
    done = threading.Event()
    # A power off SIGTERMs us (the channel's default); the signal just ends the wait.
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        channel = GuestChannel.from_env(on_power_off=done.set)
    except GuestChannelError as err:
        log.error("%s", err)
        return 1
    tether = PlaceholderTether(channel)
    try:
        tether.boot()
    except ChannelClosed:
        return 0
    while not done.wait(1.0):  # a timed wait so signals are handled promptly
        if channel.closed:
            break
    channel.close()
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main())
