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
import threading
import time

from ..config import key_for
from ..guest import ChannelClosed, GuestChannel, GuestChannelError, Operation
from .tether import parse_signal, run_guest

log = logging.getLogger("vic_ref.tether")

ID_KEY = "guestinfo.vice./common/id"


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
    return run_guest(PlaceholderTether)


if __name__ == "__main__":
    import sys
    sys.exit(main())
