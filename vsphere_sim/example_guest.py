"""A tiny guest program for tests and as an example of the guest channel (`python -m vsphere_sim.example_guest`).

At boot it copies `guestinfo.example.input` to `guestinfo.example.echo`, sets `guestinfo.example.booted` to `true`,
accepts guest logins for the `--user` names (any password), reports `--ip`, and takes guest operations:

    reload           copy input to echo again; count reloads in guestinfo.example.reloads
    kill <SIG>       exit as a process killed by SIG would (128 + signal number): the VM powers off
    exit <N>         exit with status N: the VM powers off
    sleep <S>        a process that runs S seconds (exit 0), or until TerminateProcessInGuest (exit 143)
    true / false     a process that exits 0 / 1 at once
    write <k>=<v>    write a guestinfo key (exit 0, or 1 when the guest may not write it)
    poweroff         halt (the VM powers off)
    anything else    refused: `unknown command "<program>"` (as the tether's toolbox answers)

Options: --user NAME (repeatable), --ip ADDRESS, --no-operations (never take guest operations),
--exit-after SECONDS (exit by itself, status 0).
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from .guest_channel import ChannelClosed, GuestChannel, GuestChannelError, Operation, ReadOnlyKey


class ExampleGuest:
    def __init__(self, channel: GuestChannel, users: list[str]):
        self.channel = channel
        self.users = users
        self.reloads = 0
        self.exit_code: int | None = None
        self.done = threading.Event()
        self.sleepers: dict[int, threading.Event] = {}
        self.lock = threading.Lock()

    def log(self, text: str):
        print(f"example_guest[{self.channel.info.get('vm')}]: {text}", flush=True)

    def echo(self):
        value = self.channel.get("guestinfo.example.input", "")
        self.channel.update({"guestinfo.example.echo": value, "guestinfo.example.reloads": str(self.reloads)})

    def boot(self, ip: str | None, operations: bool):
        self.channel.accept_logins(self.users)
        self.echo()
        if ip:
            self.channel.report(ip_address=ip, host_name="example-guest")
        if operations:
            self.channel.serve_operations(self.handle)
        self.channel.set("guestinfo.example.booted", "true")
        self.log(f"booted; logins {self.users}; operations {'on' if operations else 'off'}")

    def finish(self, code: int):
        with self.lock:
            if self.exit_code is None:
                self.exit_code = code
        self.done.set()

    # -- guest operations ---------------------------------------------------------------------------------------
    def handle(self, op: Operation):
        self.log(f"operation {op.kind} {op.program!r} {op.arguments!r} as {op.user}")
        if op.kind == "terminate":
            with self.lock:
                stop = self.sleepers.get(op.pid)
            if stop is None:
                op.reject(f"no process {op.pid}", fault="GuestProcessNotFound")
                return None
            stop.set()
            return None
        args = op.arguments.split()
        program = op.program
        if program == "reload":
            self.reloads += 1
            self.echo()
            return 0
        if program == "kill":
            name = (args[0] if args else "TERM").upper().removeprefix("SIG")
            number = getattr(signal, "SIG" + name, None)
            if number is None:
                op.reject(f"unknown signal {name}")
                return None
            op.exited(0)  # answer before going away, so StartProgramInGuest gets its pid
            self.finish(128 + int(number))
            return None
        if program == "exit":
            op.exited(0)
            self.finish(int(args[0]) if args else 0)
            return None
        if program == "sleep":
            stop = threading.Event()
            with self.lock:  # a terminate right after StartProgramInGuest returns must find the sleeper
                op.started()
                self.sleepers[op.pid] = stop
            terminated = stop.wait(float(args[0]) if args else 3600.0)
            with self.lock:
                self.sleepers.pop(op.pid, None)
            return 143 if terminated else 0
        if program in ("true", "false"):
            return 0 if program == "true" else 1
        if program == "write":
            key, _, value = op.arguments.partition("=")
            try:
                self.channel.set(key.strip(), value.strip())
            except ReadOnlyKey:
                return 1
            return 0
        if program == "poweroff":
            op.started()
            threading.Thread(target=self.channel.power_off, daemon=True).start()
            return 0
        op.reject(f'unknown command "{program}"')
        return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="example_guest")
    parser.add_argument("--user", action="append", default=[])
    parser.add_argument("--ip")
    parser.add_argument("--no-operations", action="store_true")
    parser.add_argument("--exit-after", type=float)
    args = parser.parse_args(argv)

    guest_ref: list[ExampleGuest] = []

    def on_power_off():
        # the VM is off: stop at once (the sim would SIGTERM us anyway)
        if guest_ref:
            guest_ref[0].finish(0)

    channel = GuestChannel.from_env(on_power_off=on_power_off)
    guest = ExampleGuest(channel, args.user)
    guest_ref.append(guest)
    signal.signal(signal.SIGTERM, lambda *_: guest.finish(0))
    try:
        guest.boot(args.ip, not args.no_operations)
    except ChannelClosed:
        return 0
    deadline = time.monotonic() + args.exit_after if args.exit_after else None
    while not guest.done.wait(0.2):
        if deadline is not None and time.monotonic() >= deadline:
            guest.finish(0)
    code = guest.exit_code or 0
    try:
        channel.set("guestinfo.example.exit", str(code))
    except GuestChannelError:
        pass
    guest.log(f"exiting with {code}")
    channel.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
