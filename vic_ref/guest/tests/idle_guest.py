"""A guest program that does nothing but hand its channel environment to the test (in its guest directory) and wait
for SIGTERM: the test then speaks for the guest through vic_ref.guest (`python -m vic_ref.guest.tests.idle_guest`)."""
import json
import os
import signal
import sys
import time

from vic_ref.guest import ENV_CHANNEL, ENV_DIR, ENV_TOKEN

env = {k: os.environ[k] for k in (ENV_CHANNEL, ENV_TOKEN, ENV_DIR)}
tmp = os.path.join(os.environ[ENV_DIR], "env.json.tmp")
with open(tmp, "w") as f:
    json.dump(env, f)
os.replace(tmp, os.path.join(os.environ[ENV_DIR], "env.json"))  # atomic: the test never reads half a file
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
deadline = time.monotonic() + 600
while time.monotonic() < deadline:
    time.sleep(0.2)
