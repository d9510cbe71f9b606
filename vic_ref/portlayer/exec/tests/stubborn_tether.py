"""A test tether whose process ignores SIGTERM (and every signal but KILL), so a stop has to wait out its grace
period and go on to `group-kill KILL`. Booted like the placeholder tether: `python -m
vic_ref.portlayer.exec.tests.stubborn_tether` from a bootstrap ISO of the test's own."""
from __future__ import annotations

import logging
import signal
import sys
import threading

from vic_ref.guest import ChannelClosed, GuestChannel, GuestChannelError
from vic_ref.tether.placeholder import PlaceholderTether, parse_signal

log = logging.getLogger("stubborn_tether")


class StubbornTether(PlaceholderTether):
    def handle(self, op):
        if op.kind == "start" and op.program in ("kill", "group-kill"):
            try:
                signo = parse_signal(op.arguments or "TERM")
            except ValueError as err:
                op.reject(str(err))
                return None
            if signo != signal.SIGKILL:
                log.info("ignoring %s %s", op.program, op.arguments)
                return 0  # the process shrugs it off
        return super().handle(op)


def main() -> int:
    logging.basicConfig(level=logging.INFO)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        channel = GuestChannel.from_env(on_power_off=done.set)
    except GuestChannelError as err:
        log.error("%s", err)
        return 1
    try:
        StubbornTether(channel).boot()
    except ChannelClosed:
        return 0
    while not done.wait(1.0):
        if channel.closed:
            break
    channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
