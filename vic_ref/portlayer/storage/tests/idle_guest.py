"""A test-only appliance guest: it boots, tells the test how to reach its guest channel, and idles until power off.

The storage tests run the image store in the test process as if it were this guest (disk data paths come only
through the guest channel), so the guest writes its channel path and boot token to `channel.json` in its scratch
directory; nothing else of it is needed.
"""
from __future__ import annotations

import json
import os

from vic_ref.guest import ENV_CHANNEL, ENV_DIR, ENV_TOKEN, GuestChannel


def main() -> None:
    channel = GuestChannel.from_env()
    target = os.path.join(os.environ[ENV_DIR], "channel.json")
    with open(target + ".tmp", "w") as handle:
        json.dump({"path": os.environ[ENV_CHANNEL], "token": os.environ[ENV_TOKEN], "vm": channel.info.get("vm")},
                  handle)
    os.replace(target + ".tmp", target)
    channel.wait_closed()


if __name__ == "__main__":
    main()
