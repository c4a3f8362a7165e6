#!/usr/bin/env python3
"""The centre as a DC-09 gateway (`devicesim center --forward dc09://…`) against pysiaalarm as the ARC.

pysiaalarm (the DC-09 receiver library Home Assistant uses; none of us wrote it) listens over TCP with account
1234, first in the clear, then with an AES key, then over UDP with the key (its threaded server: see ARC). A `devicesim center --forward dc09://127.0.0.1:PORT?account=1234…`
takes a small `devicesim load` fleet's alarms, cancels and device events; in the middle of the run the
pysiaalarm receiver is stopped and, a few seconds later, started again on the same port. Then:

- every case event the centre journalled (the DC-09 code table's: alarms, test alarms, cancels, battery,
  tamper, ...) arrived at pysiaalarm, decoded with the right code, account, device (the SIA `id` modifier),
  zone and a timestamp inside pysiaalarm's window; none lost;
- none twice beyond DC-09's own retransmission: distinct (account, sequence, code, zone, device) are counted,
  and each journalled event is exactly one of them; per device they arrive in the order journalled;
- the centre's queue is empty at the end, and it logged the receiver down and back once each.

    .build/dc09-venv/bin/python tools/check_dc09_gateway.py .build/debug/devicesim [--bench N]

With --bench N it measures instead: N alarms queued while pysiaalarm is down, then the time the queue takes
to drain once it is back (events/s). Prints one line per check and exits 1 if any failed.
"""
import asyncio, collections, json, os, signal, sqlite3, subprocess, sys, tempfile, threading, time
from checklib import Tally, free_port

from pysiaalarm import SIAAccount
from pysiaalarm.aio import SIAClient
from pysiaalarm.sync.client import SIAClient as ThreadedSIAClient
from pysiaalarm.utils import CommunicationsProtocol

DEVICESIM = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else ".build/debug/devicesim"
BENCH = int(sys.argv[sys.argv.index("--bench") + 1]) if "--bench" in sys.argv else None
ACCOUNT = "1234"
# pysiaalarm takes a key as text and uses its characters' bytes; we give the same bytes in hex.
KEY = "0123456789ABCDEF0123456789ABCDEF"
# docs/dc09.md's table: our alarm kinds and event kinds → SIA code and zone.
ALARMS = {"button": ("QA", 1), "pendant": ("QA", 2), "fall": ("MA", 3), "inactivity": ("MA", 4), "test": ("RP", 0)}
EVENTS = {"mainsLost": ("AT", 0), "mainsRestored": ("AR", 0), "lowBattery": ("YT", 0), "batteryOK": ("YR", 0),
          "buttonMissing": ("EM", 1), "buttonRestored": ("EN", 1), "tamper": ("TA", 0), "restart": ("RR", 0)}

TALLY = Tally()


check = TALLY.check




class ARC:
    """pysiaalarm's receiver, which can be stopped and started again: over TCP its asyncio server (on a thread of
    its own here), over UDP its threaded server (3.2.2's asyncio UDP server never answers on Python 3.11: its
    `connection_made` asserts a transport class the event loop's is not, and keeps no transport to answer on)."""

    def __init__(self, port, key, udp=False):
        self.port, self.key, self.udp = port, key, udp
        self.events = []  # (arrived at, SIAEvent)
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.client = None

    async def _received(self, event):
        with self.lock:
            self.events.append((time.time(), event))

    async def _start(self):
        self.client = SIAClient("127.0.0.1", self.port, [SIAAccount(ACCOUNT, self.key)], self._received,
                                protocol=CommunicationsProtocol.TCP)
        await self.client.async_start(reuse_address=True)

    async def _stop(self):
        await self.client.async_stop()

    def _received_sync(self, event):
        with self.lock:
            self.events.append((time.time(), event))

    def start(self):
        if self.udp:
            self.client = ThreadedSIAClient("127.0.0.1", self.port, [SIAAccount(ACCOUNT, self.key)], self._received_sync,
                                            protocol=CommunicationsProtocol.UDP)
            self.client.start()
            return
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    def stop(self):
        if self.udp:
            self.client.stop()
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)

    def snapshot(self):
        with self.lock:
            return list(self.events)


def journal_rows(path, sql):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def expected_events(journal):
    """Per device, the SIA (code, zone) of every forwarded case event, in the order journalled."""
    per_device = collections.defaultdict(list)
    kinds = {}
    for device, mid, kind, ref, body in journal_rows(
            journal, "SELECT device, id, kind, ref, json FROM message ORDER BY device, received_at, id"):
        fields = json.loads(body)
        if kind == "alarm":
            kinds[(device, mid)] = fields["kind"]
            per_device[device].append(ALARMS[fields["kind"]])
        elif kind == "alarmCancel":
            per_device[device].append(("OC", ALARMS.get(kinds.get((device, ref), "button"), ("QA", 1))[1]))
        elif kind == "event" and fields["kind"] in EVENTS:
            per_device[device].append(EVENTS[fields["kind"]])
    return per_device


def start_centre(journal, master, forward, log):
    """The centre on a TCP port it chooses itself (`--port 0`: no window in which another socket can take a port
    chosen here first); returns the process and that port."""
    centre = subprocess.Popen(
        [DEVICESIM, "center", "--host", "127.0.0.1", "--port", "0", "--master-file", master,
         "--journal", journal, "--forward", forward, "--auto-engage-after", "100ms", "--auto-close-after", "1s",
         "--log-level", "notice", "--no-call-on-engage"],
        stdout=subprocess.PIPE, stderr=log, text=True)
    line = centre.stdout.readline()  # the ports, once it listens
    if not line:
        centre.wait(timeout=30)
        log.seek(0)
        raise SystemExit(f"the centre did not start (exit {centre.returncode}); its log:\n{log.read()[-4000:]}")
    return centre, json.loads(line)["tcp"]


def load(port, master, devices, rate, duration, events=0.0):
    return subprocess.Popen(
        [DEVICESIM, "load", "--center", f"127.0.0.1:{port}", "--devices", str(devices), "--alarm-rate", str(rate),
         "--event-rate", str(events), "--cancel-share", "0.3", "--duration", duration, "--master-file", master,
         "--quiet", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def queue_depth(journal):
    return journal_rows(journal, "SELECT COUNT(*) FROM dc09_forward")[0][0]


def wait(condition, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def run(label, key, directory, udp=False):
    journal = os.path.join(directory, f"journal-{label}.sqlite")
    master = os.path.join(directory, "master.hex")
    arc_port = free_port()
    forward = f"dc09://127.0.0.1:{arc_port}?account={ACCOUNT}" + (f"&key={key.encode().hex()}" if key else "")
    forward += "&transport=udp" if udp else ""
    arc = ARC(arc_port, key, udp)
    arc.start()
    log = open(os.path.join(directory, f"centre-{label}.log"), "w+")
    centre, centre_port = start_centre(journal, master, forward, log)
    try:
        fleet = load(centre_port, master, devices=20, rate=8, duration="12s", events=3)
        time.sleep(4)
        arc.stop()
        stopped = time.time()
        time.sleep(4)
        arc.start()
        back = time.time()
        backlog = queue_depth(journal)
        print(f"     {label}: pysiaalarm down for {back - stopped:.1f}s in the middle of the run, {backlog} events queued", flush=True)
        if wait(lambda: queue_depth(journal) == 0 or fleet.poll() is not None, 60) and fleet.poll() is None:
            print(f"     {label}: the queue was empty {time.time() - back:.2f}s after pysiaalarm came back", flush=True)
        out, err = fleet.communicate(timeout=180)
        check(fleet.returncode == 0, f"{label}: the load run ended well", err[-2000:])
        drained = wait(lambda: queue_depth(journal) == 0, 120)
        check(drained, f"{label}: the centre's DC-09 queue is empty at the end", queue_depth(journal))
        expected = expected_events(journal)
        total = sum(len(v) for v in expected.values())
        wait(lambda: len({key_of(e) for _, e in arc.snapshot()}) >= total, 30)
    finally:
        centre.send_signal(signal.SIGTERM)
        centre.wait(timeout=30)
        arc.stop()
    received = arc.snapshot()
    distinct = {}
    for arrived, event in received:
        distinct.setdefault(key_of(event), (arrived, event))
    check(total > 20, f"{label}: the fleet raised events ({total} journalled, of the table's kinds)")
    check(len(distinct) == total, f"{label}: each journalled event arrived once (distinct account, sequence, code, zone, device)",
          f"{len(distinct)} distinct at pysiaalarm, {total} journalled")
    check(len(received) - len(distinct) >= 0,
          f"{label}: {len(received) - len(distinct)} more arrived as DC-09 retransmissions (same sequence)")
    check(all(e.account == ACCOUNT for _, e in distinct.values()), f"{label}: every event under account {ACCOUNT}")
    check(all(e.ri == "1" for _, e in distinct.values()), f"{label}: every event in area (ri) 1")
    check(all(e.encrypted == bool(key) for _, e in distinct.values()), f"{label}: every event {'encrypted' if key else 'in the clear'}")
    bad_time = [e.timestamp for arrived, e in distinct.values()
                if not e.valid_timestamp or e.timestamp is None or abs(e.timestamp.timestamp() - arrived) > 60]
    check(not bad_time, f"{label}: every event's time inside pysiaalarm's window and within a minute of its arrival", bad_time[:3])
    got = collections.defaultdict(list)
    for _, event in sorted(distinct.values(), key=lambda pair: int(pair[1].sequence)):
        got[int(event.id or -1)].append((event.code, int(event.message or -1)))
    wrong = {d: (expected[d], got.get(d)) for d in expected if expected[d] != got.get(d)}
    check(not wrong, f"{label}: per device, the codes and zones journalled, in the order journalled ({len(expected)} devices)",
          list(wrong.items())[:2])
    log.seek(0)
    text = log.read()
    downs, backs = text.count("DC-09 receiver down"), text.count("DC-09 receiver back")
    if udp:
        # Over UDP a receiver is down after 3 unanswered frames in a row (10 s each): a 4 s outage may pass
        # as retransmissions alone.
        check(downs == backs and downs <= 1, f"{label}: the centre logged the receiver down and back at most once each",
              f"{downs} down, {backs} back")
    else:
        check(downs == 1 and backs == 1, f"{label}: the centre logged the receiver down and back once each", f"{downs} down, {backs} back")


def key_of(event):
    return (event.account, event.sequence, event.code, event.message, event.id)


def bench(count, directory):
    """`count` alarms queued while pysiaalarm is down; then how fast the queue drains."""
    journal = os.path.join(directory, "journal-bench.sqlite")
    master = os.path.join(directory, "master.hex")
    arc_port = free_port()
    log = open(os.path.join(directory, "centre-bench.log"), "w+")
    centre, centre_port = start_centre(journal, master, f"dc09://127.0.0.1:{arc_port}?account={ACCOUNT}", log)
    try:
        devices = max(50, count // 10)
        seconds = max(5, count // 200)
        fleet = load(centre_port, master, devices=devices, rate=count / seconds, duration=f"{seconds}s")
        fleet.communicate(timeout=600)
        queued = queue_depth(journal)
        arc = ARC(arc_port, None)
        started = time.time()
        arc.start()
        wait(lambda: queue_depth(journal) == 0, 600)
        ended = time.time()
        first = min(arrived for arrived, _ in arc.snapshot())
        print(f"bench: {queued} events queued while pysiaalarm was down; the queue was empty {ended - started:.2f}s after "
              f"it came back (the reconnection's backoff included), {ended - first:.2f}s after the first arrived: "
              f"{(queued - 1) / (ended - first):.0f} events/s to pysiaalarm (TCP, window 1)", flush=True)
        arc.stop()
    finally:
        centre.send_signal(signal.SIGTERM)
        centre.wait(timeout=30)


def main():
    with tempfile.TemporaryDirectory() as directory:
        with open(os.path.join(directory, "master.hex"), "w") as f:
            f.write(os.urandom(32).hex())
        if BENCH:
            bench(BENCH, directory)
            return
        run("clear", None, directory)
        run("AES-256", KEY, directory)
        run("UDP, AES-256", KEY, directory, udp=True)
    print(f"{'FAILED' if TALLY.failures else 'passed'}: DC-09 gateway against pysiaalarm", flush=True)
    sys.exit(1 if TALLY.failures else 0)


if __name__ == "__main__":
    main()
