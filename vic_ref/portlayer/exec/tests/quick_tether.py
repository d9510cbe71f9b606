"""A test tether whose process ends at once (`docker run busybox true`): it reports the launch, the exit status 0
and the stop time, then powers the VM off, all within moments of the power on."""
from __future__ import annotations

import sys
import time

from vic_ref.config import key_for
from vic_ref.guest import ChannelClosed, GuestChannel, GuestChannelError


def main() -> int:
    try:
        channel = GuestChannel.from_env()
    except GuestChannelError:
        return 1
    try:
        cid = channel.get("guestinfo.vice./common/id") or ""
        now = time.time_ns()
        channel.update({key_for("sessions", cid, "detail", "start_time"): str(now),
                        key_for("sessions", cid, "started"): "true"})
        channel.update({key_for("sessions", cid, "exit_status"): "0",
                        key_for("sessions", cid, "detail", "stop_time"): str(time.time_ns())})
        channel.power_off()
    except (ChannelClosed, GuestChannelError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
