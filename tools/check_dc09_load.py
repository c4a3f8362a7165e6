#!/usr/bin/env python3
"""`devicesim load --protocol dc09` against pysiaalarm, a DC-09 receiver no one here wrote (issue 15).

pysiaalarm (the receiver library of Home Assistant's SIA integration) listens on loopback with one account a
device (0001, 0002, … as the load tool names them), clear or with an AES key; the load tool's devices raise
alarms (and cancel some), lose mains and get it back, report battery and tamper against it. The check: the run loses nothing (every alarm raised is acknowledged),
and every acknowledged alarm, cancel and device event reached pysiaalarm, decoded with its SIA code (QA, OC,
AT/AR, YT/YR, TA) from its device's account, with a timestamp pysiaalarm took as valid. It prints what pysiaalarm sustained (events a second) and the load tool's
event → ACK latency.

    .build/dc09-venv/bin/python tools/check_dc09_load.py .build/debug/devicesim            # the make test check
    .build/dc09-venv/bin/python tools/check_dc09_load.py .build/release/devicesim \\
        --devices 2000 --alarm-rate 200 --duration 60 --transports tcp                      # a measurement

Exits 1 if any check failed.
"""
import argparse, asyncio, json, os, subprocess, sys, tempfile, threading, time
from checklib import Tally, free_port

from pysiaalarm import SIAAccount
from pysiaalarm.aio import SIAClient
from pysiaalarm.aio.server import SIAServerUDP
from pysiaalarm.utils import CommunicationsProtocol


def _connection_made(self, transport):
    """pysiaalarm's UDP server asserts its transport is an `asyncio.DatagramTransport`, which the selector
    event loop's datagram transport is not taken for here (Python 3.11), so it never answers a datagram. The
    same method without the assertion; nothing else of pysiaalarm is changed."""
    self.transport = transport


SIAServerUDP.connection_made = _connection_made

TALLY = Tally()


check = TALLY.check


def account(device):
    """The load tool's account for a device: its id in upper-case hex, at least four digits."""
    return format(device, "X").rjust(4, "0")




class Receiver:
    """A pysiaalarm receiver on its own thread and event loop; what it decoded, in order."""

    def __init__(self, port, devices, key, protocol):
        self.events = []
        self.loop = asyncio.new_event_loop()
        accounts = [SIAAccount(account(d), key) for d in devices]
        self.client = SIAClient("127.0.0.1", port, accounts, function=self.on_event, protocol=protocol)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def on_event(self, event):
        self.events.append((event.account, event.code, event.ri, event.sequence, event.valid_timestamp, time.time()))

    def start(self):
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.client.async_start(), self.loop).result(10)

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.client.async_stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def run_load(devicesim, port, transport, args, key_file, report, directory):
    # Two phases: half the homes lose mains, then it comes back; alarms and device events (battery, tamper)
    # all along.
    scenario = os.path.join(directory, "mains.toml")
    half = max(1, args.duration // 2)
    with open(scenario, "w") as f:
        f.write(f'name = "mains out and back"\n'
                f'[[phase]]\nname = "out"\nduration_s = {half}\nmains_lost_share = 0.5\nalarm_rate = {args.alarm_rate}\nevent_rate = {args.event_rate}\n'
                f'[[phase]]\nname = "back"\nduration_s = {half}\nmains_restored_share = 1\nalarm_rate = {args.alarm_rate}\nevent_rate = {args.event_rate}\n')
    command = [
        devicesim, "load", "--protocol", "dc09", "--center", f"127.0.0.1:{port}", "--transport", transport,
        "--devices", str(args.devices), "--ramp", str(args.ramp), "--scenario", scenario,
        "--cancel-share", str(args.cancel_share), "--drain", "10s",
        "--report", report, "--quiet", "--slo", "lost==0",
    ]
    if key_file:
        command += ["--dc09-key-file", key_file]
    started = time.time()
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.duration + 300)
    return done, time.time() - started


def one_run(devicesim, transport, key, args, directory):
    protocol = CommunicationsProtocol.TCP if transport == "tcp" else CommunicationsProtocol.UDP
    port = free_port()
    devices = range(1, args.devices + 1)
    receiver = Receiver(port, devices, key, protocol)
    receiver.start()
    key_file = None
    if key:
        key_file = os.path.join(directory, "aes.hex")
        with open(key_file, "w") as f:
            f.write(key.encode().hex() + "\n")  # pysiaalarm's key is the text's bytes
    report_path = os.path.join(directory, f"load-{transport}-{len(key or '')}.json")
    try:
        done, seconds = run_load(devicesim, port, transport, args, key_file, report_path, directory)
    finally:
        time.sleep(0.5)
        receiver.stop()
    label = f"{transport}, {'AES-%d' % (len(key) * 8) if key else 'clear'}"
    check(done.returncode == 0, f"{label}: devicesim load --protocol dc09 ran and met lost==0 (exit {done.returncode})"
          + ("" if done.returncode == 0 else f": {done.stderr.strip()[-800:]}"))
    try:
        with open(report_path) as f:
            report = json.load(f)
    except (OSError, ValueError) as error:
        check(False, f"{label}: the report {report_path} is readable ({error})")
        return
    counts = report["counts"]
    raised, acked, lost = counts["alarmsRaised"], counts["alarmsAcknowledged"], counts["alarmsLost"]
    check(raised > 0 and acked == raised and lost == 0, f"{label}: every alarm raised was acknowledged ({acked} of {raised}, {lost} lost)")
    alarms = [e for e in receiver.events if e[1] == "QA"]
    distinct = {(e[0], e[3]) for e in alarms}
    known = {account(d) for d in devices}
    check(len(distinct) >= acked, f"{label}: pysiaalarm decoded every acknowledged alarm ({len(distinct)} distinct of {acked}; {len(alarms)} frames with retransmissions)")
    check(all(e[0] in known and e[2] == "1" and e[4] for e in receiver.events),
          f"{label}: every event came from a device's account, area 1, with a timestamp pysiaalarm took as valid")
    cancels = sum(1 for e in receiver.events if e[1] == "OC")
    check(cancels >= counts["cancelsAcknowledged"], f"{label}: the cancels arrived as OC ({cancels} for {counts['cancelsAcknowledged']} acknowledged)")
    mains_lost = {(e[0], e[3]) for e in receiver.events if e[1] == "AT"}
    mains_back = {(e[0], e[3]) for e in receiver.events if e[1] == "AR"}
    others = {(e[0], e[3]) for e in receiver.events if e[1] in ("AT", "AR", "YT", "YR", "TA")}
    check(len(mains_lost) > 0 and len(mains_back) > 0 and len(others) >= counts["eventsAcknowledged"],
          f"{label}: mains lost (AT, {len(mains_lost)}) and restored (AR, {len(mains_back)}) arrived, and every acknowledged device event "
          f"({len(others)} distinct for {counts['eventsAcknowledged']})")
    events = [e for e in receiver.events if e[1] != "RP"]
    if len(events) > 1:
        span = events[-1][5] - events[0][5]
        rate = len(events) / span if span > 0 else 0
        alarm = report["latency"].get("alarm", {})
        print(f"     {label}: pysiaalarm took {len(events)} events in {span:.1f} s = {rate:.0f} events/s; "
              f"event → ACK p50 {percentile(alarm, 'p50')} ms, p99 {percentile(alarm, 'p99')} ms, max {percentile(alarm, 'max')} ms", flush=True)


def percentile(histogram, name):
    """A percentile of the report's histogram (its JSON gives them in µs), in ms."""
    micros = histogram.get("percentiles", {}).get(name)
    return "?" if micros is None else round(micros / 1000, 2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("devicesim")
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--ramp", type=float, default=500)
    parser.add_argument("--alarm-rate", type=float, default=20)
    parser.add_argument("--event-rate", type=float, default=5)
    parser.add_argument("--cancel-share", type=float, default=0.2)
    parser.add_argument("--duration", type=int, default=6, help="seconds: half with mains out, half with it back")
    parser.add_argument("--transports", default="tcp,udp")
    parser.add_argument("--keys", default="clear,16,32", help="clear and/or key sizes in bytes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        for transport in args.transports.split(","):
            for key in args.keys.split(","):
                one_run(args.devicesim, transport, None if key == "clear" else "K" * int(key), args, directory)
    print(f"{TALLY.failures} failed" if TALLY.failures else "all passed", flush=True)
    sys.exit(1 if TALLY.failures else 0)


if __name__ == "__main__":
    main()
