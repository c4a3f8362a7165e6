#!/usr/bin/env python3
"""Runs a test command (`swift test`) with a wall-clock limit, and says which tests hung if it is reached.

A test that never finishes (a deadlock) would otherwise hold CI until its own limit, with nothing to say
which test it was: the runner's output to a pipe is block-buffered, so its last lines never arrive. Here the
command writes to a pseudo-terminal (line-buffered), every line is passed on as it comes, and the tests that
Swift Testing said "started" but neither "passed" nor "failed" are listed when the limit is reached. Then the
command's process group is stopped (SIGINT, then SIGKILL) and the exit status is 124, as timeout(1) gives.

    tools/test_watchdog.py --limit 900 -- swift test
"""

import argparse
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

# A test's own lines, not its cases' ("◇ Test case passing 2 arguments … to f(a:b:) started.").
STARTED = re.compile(r"^◇ Test (?!case )(.+?) started\.")
ENDED = re.compile(r"^[✔✘] Test (?!case )(.+?)(?: with \d+ test cases?)? (passed|failed)")
SHOWN = 60
ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # colours, which a terminal gets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=float, required=True, help="seconds the command may take")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")

    master, slave = pty.openpty()
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    running: dict[str, float] = {}
    deadline = time.monotonic() + args.limit
    pending = b""
    out = sys.stdout.buffer
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return hung(child, running, args.limit)
        ready, _, _ = select.select([master], [], [], min(left, 5))
        if not ready:
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer of the terminal has closed it
            chunk = b""
        if not chunk:
            break
        out.write(chunk)
        out.flush()
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line = ESCAPES.sub("", raw.decode("utf-8", "replace")).strip("\r")
            if (match := STARTED.match(line)) and match.group(1) != "run":  # "◇ Test run started."
                running[match.group(1)] = time.monotonic()
            elif match := ENDED.match(line):
                running.pop(match.group(1), None)
    os.close(master)
    return child.wait()


def hung(child: subprocess.Popen, running: dict, limit: float) -> int:
    now = time.monotonic()
    print(f"\ntest_watchdog: the tests did not finish within {limit:.0f} s; "
          f"{len(running)} started and never ended:", flush=True)
    # Swift Testing says "started" of nearly every test at once, and a test of a serialized suite waits there
    # for the one before it: the hung test is in this list, with those that waited behind it.
    ordered = sorted(running.items(), key=lambda item: item[1])
    for name, since in ordered[:SHOWN]:
        print(f"  {name} (started {now - since:.0f} s ago)", flush=True)
    if len(ordered) > SHOWN:
        print(f"  ... and {len(ordered) - SHOWN} more", flush=True)
    for sig, grace in ((signal.SIGINT, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            break
        try:
            child.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    return 124


if __name__ == "__main__":
    sys.exit(main())
