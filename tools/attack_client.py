#!/usr/bin/env python3
"""An attacker's and a device's client for `devicesim center`, written from protocol.md alone.

It seals frames as a device would (§2, §3, on the `cryptography` package, not on swift-crypto), records and
replays them, floods, holds TCP connections, and checks what the centre answers and counts. Each check starts
a real centre (`devicesim center`, built by `swift build`) on free loopback ports with a fleet master key of
its own, over UDP and TCP, and stops it. The checks are the audit of issue 12 that concern the centre:

    stale-replay-udp, stale-replay-tcp, replay-after-restart   finding 1: only the current session counts
    refusals-counted                                         finding 2: refusals as counts, not per frame
    connection-limit, descriptors-exhausted, metrics-timeout  finding 6: connections and the metrics endpoint
    forged-ids                                               finding 7: forged frames under made-up ids
    key-epoch                                                finding 3: a re-provisioned device's next key epoch
    critical-extension                                       finding 4: an alarm of a later version
    reused-id                                                finding 5: an id reused for other content
    bad-field                                                finding 8: an alarm with one bad field

A check is one function decorated with @check(name); add one per finding. `--check NAME` (repeatable)
runs some; the default runs all and prints 'N passed, N failed'. `--bench rss|forged|tcp-hold` measures
instead (60 s each by default, `--seconds`) and prints one JSON line of figures: nothing is asserted.

Usage:
    tools/attack_client.py --devicesim .build/debug/devicesim [--check NAME]... [--bench NAME] [-v]
"""
import argparse
import json
import os
import random
import resource
import select
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from checklib import free_port

VERBOSE = False


def log(*args):
    if VERBOSE:
        print("   ", *args, file=sys.stderr, flush=True)


class CheckFailed(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def wait_until(condition, timeout, what, interval=0.05):
    """Polls `condition` until it is true; fails naming `what` after `timeout` seconds (a bound, not a measure)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(interval)
    if not condition():
        raise CheckFailed(f"after {timeout} s: {what}")


# MARK: protocol.md §3.2 keys

def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    # RFC 5869: an empty salt means HashLen zero bytes.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt or None, info=info).derive(ikm)


def root_key(master: bytes, device: int, epoch: int = 0) -> bytes:
    # §3.2: the key epoch joins the info from epoch 1 on, as 2 bytes.
    info = device.to_bytes(4, "big") + (epoch.to_bytes(2, "big") if epoch else b"")
    return hkdf(master, b"DeviceKit v1 device", info)


def up_key(root: bytes) -> bytes:
    return hkdf(root, b"", b"DeviceKit v1 up")


def down_key(root: bytes, anchor: int) -> bytes:
    return hkdf(root, anchor.to_bytes(6, "big"), b"DeviceKit v1 down")


# MARK: §2.1 frames, §3.3 nonces

def seal_up(key: bytes, device: int, counter: int, body: bytes, epoch: int = 0) -> bytes:
    length = 13 + len(body) + 16
    # §2.1: the low 3 bits of an up frame's first byte are the key epoch modulo 8.
    header = bytes([0x10 | epoch % 8]) + length.to_bytes(2, "big") + device.to_bytes(4, "big") + counter.to_bytes(6, "big")
    return header + ChaCha20Poly1305(key).encrypt(header[-12:], body, header)


def open_down(key: bytes, frame: bytes):
    """(salt, sequence, body) of a down frame, or None if it is not one or does not authenticate."""
    if len(frame) < 32 or frame[0] != 0x18 or int.from_bytes(frame[1:3], "big") != len(frame):
        return None
    header = frame[:15]
    try:
        body = ChaCha20Poly1305(key).decrypt(header[-12:], frame[15:], header)
    except Exception:
        return None
    return int.from_bytes(frame[7:11], "big"), int.from_bytes(frame[11:15], "big"), body


# MARK: §4 messages

def time48(milliseconds: int) -> bytes:
    return milliseconds.to_bytes(6, "big")


def now_ms() -> int:
    return int(time.time() * 1000)


def session_start(boot_count=1, epoch=0) -> bytes:
    # firmware 1.0.0, capabilities: button (bit 0); extension 0x02 keyEpoch u16 from epoch 1 on (§4.2)
    body = bytes([0x01, 1, 0, 0]) + (1).to_bytes(2, "big") + boot_count.to_bytes(4, "big")
    return body + (bytes([0x02, 2]) + epoch.to_bytes(2, "big") if epoch else b"")


def heartbeat(status=0b101, battery=90) -> bytes:
    return bytes([0x02, status, battery])


def alarm(alarm_id: int, kind=1, battery=87, flags=0, at=None, extensions=b"") -> bytes:
    return (bytes([0x03]) + alarm_id.to_bytes(4, "big") + bytes([kind]) + time48(at if at is not None else now_ms())
            + bytes([battery, flags]) + extensions)


def event(event_id: int, kind: int, at: int, value=0) -> bytes:
    return bytes([0x05]) + event_id.to_bytes(4, "big") + bytes([kind]) + time48(at) + value.to_bytes(4, "big")


def ack(message_id: int) -> bytes:
    return bytes([0x80]) + message_id.to_bytes(4, "big")


def decode_down(body: bytes) -> dict:
    kind = body[0]
    if kind == 0x41:
        return {"type": "sessionAccept", "centerTime": int.from_bytes(body[1:7], "big")}
    if kind == 0x42:
        return {"type": "heartbeatAck", "echoedCounter": int.from_bytes(body[1:7], "big")}
    if kind == 0x43:
        return {"type": "caseUpdate", "id": int.from_bytes(body[1:5], "big"), "state": body[9]}
    if kind == 0x80:
        return {"type": "ack", "id": int.from_bytes(body[1:5], "big")}
    if kind == 0x81:
        return {"type": "nak", "id": int.from_bytes(body[1:5], "big"), "reason": body[5]}
    if kind in (0x44, 0x45, 0x90, 0x91, 0x92):
        return {"type": hex(kind), "id": int.from_bytes(body[1:5], "big")}
    return {"type": hex(kind)}


# MARK: a device

class Device:
    """One device of the fleet over UDP or TCP, from a chosen loopback source address."""

    def __init__(self, master: bytes, device_id: int, centre, transport="udp", source="127.0.0.1", counter=65536, epoch=0):
        self.id = device_id
        self.epoch = epoch
        self.root = root_key(master, device_id, epoch)
        self.up = up_key(self.root)
        self.transport = transport
        self.counter = counter
        self.anchor = None
        self.down = None
        self.messages = []
        self.closed = False
        self._buffer = b""
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((source, 0))
            self.sock.connect(("127.0.0.1", centre.udp))
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.bind((source, 0))
            self.sock.settimeout(10)
            self.sock.connect(("127.0.0.1", centre.tcp))
        self.sock.setblocking(False)

    def seal(self, body: bytes, counter=None) -> bytes:
        if counter is None:
            counter = self.counter
            self.counter += 1
        return seal_up(self.up, self.id, counter, body, self.epoch)

    def send_raw(self, frame: bytes):
        if self.transport == "udp":
            self.sock.send(frame)
        else:
            self.sock.setblocking(True)
            self.sock.sendall(frame)
            self.sock.setblocking(False)

    def send(self, body: bytes) -> bytes:
        frame = self.seal(body)
        self.send_raw(frame)
        return frame

    def poll(self, timeout=0.05):
        """Reads what arrived; down frames of the current session become `messages`."""
        if self.closed:
            return
        # poll, not select: a device of a run that holds thousands of sockets has a descriptor above 1024.
        waiter = select.poll()
        waiter.register(self.sock, select.POLLIN)
        if not waiter.poll(timeout * 1000):
            return
        frames = []
        try:
            while True:
                data = self.sock.recv(65536)
                if self.transport == "udp":
                    frames.append(data)
                    continue
                if not data:
                    self.closed = True
                    break
                self._buffer += data
        except (BlockingIOError, InterruptedError):
            pass
        except (ConnectionResetError, ConnectionRefusedError):
            self.closed = True
        while len(self._buffer) >= 3:
            length = int.from_bytes(self._buffer[1:3], "big")
            if len(self._buffer) < length:
                break
            frames.append(self._buffer[:length])
            self._buffer = self._buffer[length:]
        for frame in frames:
            opened = open_down(self.down, frame) if self.down else None
            if opened:
                message = decode_down(opened[2])
                self.messages.append(message)
                if message["type"] == "caseUpdate":  # reliable: acknowledged, as a device does (§4.7)
                    self.send(ack(message["id"]))

    def wait_for(self, match, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for message in self.messages:
                if match(message):
                    return message
            self.poll(0.02)
        return next((m for m in self.messages if match(m)), None)

    def handshake(self, timeout=10.0, retry=1.0):
        """Opens a session; over UDP a lost sessionStart or sessionAccept is retried every `retry` seconds
        with a new sessionStart (a new counter, so a new anchor), as a device does."""
        end = time.monotonic() + timeout
        while True:
            self.anchor = self.counter
            self.down = down_key(self.root, self.anchor)
            self.messages = []
            self.send(session_start(epoch=self.epoch))
            wait = min(retry, end - time.monotonic()) if self.transport == "udp" else end - time.monotonic()
            accept = self.wait_for(lambda m: m["type"] == "sessionAccept", max(wait, 0))
            if accept or time.monotonic() >= end:
                return accept

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# MARK: a real centre

class Centre:
    """`devicesim center` on free loopback ports with a fleet master key of its own, `--json` events read
    by a thread (or, with `read_events=False`, left unread in the pipe, as a slow reader would)."""

    def __init__(self, devicesim, workdir, extra=(), nofile=None, read_events=True, journal=None, master=None, cpu=None):
        self.master = master or os.urandom(32)
        self.workdir = Path(workdir)
        key_file = self.workdir / "master.hex"
        key_file.write_text(self.master.hex())
        key_file.chmod(0o600)
        self.journal = journal or str(self.workdir / "center.sqlite")
        self.metrics_port = free_port()
        arguments = [devicesim, "center", "--host", "127.0.0.1", "--port", "0", "--master-file", str(key_file),
                     "--journal", self.journal, "--json", "--metrics-port", str(self.metrics_port), *extra]
        log("centre:", " ".join(arguments[1:]))

        def limits():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})

        self.process = subprocess.Popen(arguments, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=open(self.workdir / "centre.err", "ab"), preexec_fn=limits)
        first = self.process.stdout.readline()
        if not first:
            raise CheckFailed("the centre did not start: " + (self.workdir / "centre.err").read_text()[-2000:])
        listening = json.loads(first)
        self.tcp, self.udp = listening["tcp"], listening["udp"]
        self.events = []
        self._lock = threading.Lock()
        if read_events:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                self.events.append(event)

    def all_events(self):
        with self._lock:
            return list(self.events)

    def metrics(self) -> dict:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).read().decode()
        except OSError as error:
            raise CheckFailed(f"the metrics endpoint did not answer ({error})")
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def metric(self, sample: str) -> float:
        return self.metrics().get(sample, 0.0)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.returncode not in (0, -15):
            raise CheckFailed(f"the centre exited with {self.process.returncode}: "
                              + (self.workdir / "centre.err").read_text()[-2000:])


STALE = 'center_frames_refused_total{category="stale"}'


def events_of(centre, name, **fields):
    """The events called `name` with these fields (and any others: every event has its time, "at")."""
    return [e for e in centre.all_events() if e.get("event") == name and all(e.get(k) == v for k, v in fields.items())]


# MARK: checks

CHECKS = {}


def check(name):
    def register(function):
        CHECKS[name] = function
        return function
    return register


@check("stale-replay-udp")
def stale_replay_udp(options, workdir):
    """A recorded heartbeat replayed after the device went silent keeps it offline and draws no answer."""
    centre = Centre(options.devicesim, workdir, ["--offline-after", "1"])
    try:
        device = Device(centre.master, 1001, centre, "udp")
        expect(device.handshake(), "no sessionAccept")
        recorded = device.send(heartbeat())
        expect(device.wait_for(lambda m: m["type"] == "heartbeatAck"), "no heartbeatAck")
        wait_until(lambda: events_of(centre, "offline", device=1001), 15,
                   "the silent device was never reported offline")
        replayer = Device(centre.master, 1001, centre, "udp", source="127.0.0.3")
        for _ in range(5):
            replayer.send_raw(recorded)
            time.sleep(0.2)
        wait_until(lambda: centre.metric(STALE) >= 5, 10, "the replays were not counted as stale")
        online = events_of(centre, "online", device=1001)
        expect(len(online) == 1, f"the replay brought the device back online ({len(online)} online events)")
        expect(centre.metric("center_devices_online") == 0, "center_devices_online is not 0 after the replay")
        replayer.poll(0.3)
        expect(not replayer.messages and not replayer.closed, "the replayer got an answer")
    finally:
        centre.stop()


@check("stale-replay-tcp")
def stale_replay_tcp(options, workdir):
    """A recorded frame replayed on a TCP connection does not authenticate it: its timeout still closes it."""
    centre = Centre(options.devicesim, workdir, ["--offline-after", "1", "--auth-timeout", "1.5"])
    try:
        device = Device(centre.master, 1002, centre, "tcp")
        expect(device.handshake(), "no sessionAccept")
        recorded = device.send(heartbeat())
        expect(device.wait_for(lambda m: m["type"] == "heartbeatAck"), "no heartbeatAck")
        device.close()
        wait_until(lambda: events_of(centre, "offline", device=1002), 15,
                   "the silent device was never reported offline")
        replayer = Device(centre.master, 1002, centre, "tcp", source="127.0.0.3")
        replayer.send_raw(recorded)
        end = time.monotonic() + 15
        while not replayer.closed and time.monotonic() < end:
            replayer.poll(0.1)
        expect(replayer.closed, "the replayer's connection is still open: the replay authenticated it")
        expect(centre.metric(STALE) >= 1, "the replay was not counted as stale")
        expect(centre.metric('center_connections_closed_total{reason="authTimeout"}') >= 1,
               "the connection was not closed by the authentication timeout")
    finally:
        centre.stop()


@check("replay-after-restart")
def replay_after_restart(options, workdir):
    """One recorded heartbeat replayed to a restarted centre does not report the device online, nor keep it
    online: the next run supervises the device its journal says was online, and reports it offline in its time."""
    first = Centre(options.devicesim, workdir)
    try:
        device = Device(first.master, 1003, first, "udp")
        expect(device.handshake(), "no sessionAccept")
        recorded = device.send(heartbeat())
        expect(device.wait_for(lambda m: m["type"] == "heartbeatAck"), "no heartbeatAck")
    finally:
        first.stop()
    second = Centre(options.devicesim, workdir, extra=("--offline-after", "2s"), journal=first.journal, master=first.master)
    try:
        replayer = Device(second.master, 1003, second, "udp", source="127.0.0.3")
        replayer.send_raw(recorded)
        wait_until(lambda: second.metric(STALE) >= 1, 10, "the replay was not counted as stale")
        wait_until(lambda: events_of(second, "offline", device=1003), 15, "the device online at the restart was not reported offline")
        expect(not any(e.get("event") == "online" for e in second.all_events()), "the replay reported the device online")
        expect(second.metric("center_devices_online") == 0, "center_devices_online is not 0")
    finally:
        second.stop()


@check("refusals-counted")
def refusals_counted(options, workdir):
    """A flood of 4-byte datagrams, with --json to a reader that does not read, is reported as a few counts."""
    centre = Centre(options.devicesim, workdir, read_events=False)
    count = 20_000
    try:
        flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(count):
            flood.sendto(b"\x10\x00\x04\x00", ("127.0.0.1", centre.udp))
        malformed = 'center_frames_refused_total{category="malformed"}'
        wait_until(lambda: centre.metric(malformed) >= count * 0.5, 30, "the flood was not counted")
        # The kernel may have dropped some: wait until the count stops rising, then one report interval more.
        previous = -1.0
        while centre.metric(malformed) != previous:
            previous = centre.metric(malformed)
            time.sleep(0.5)
        time.sleep(1.5)
        received = centre.metric(malformed)
    finally:
        centre.process.terminate()
        output = centre.process.stdout.read().decode()  # now the reader reads
        centre.stop()
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    refused = [e for e in events if e.get("event") == "refused"]
    reported = sum(e.get("count", 1) for e in refused if e.get("reason") == "malformed")
    log(f"{received:.0f} datagrams received, {len(refused)} refused events reporting {reported}")
    expect(len(refused) < 100, f"{len(refused)} refused events for {received:.0f} datagrams: one per frame")
    expect(reported == received, f"the refused events report {reported}, the metrics {received:.0f}")


def hold_connections(count, sources, port):
    held = []
    for index in range(count):
        s = socket.socket()
        s.setblocking(False)
        s.bind((sources[index % len(sources)], 0))
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        held.append(s)
    return held


def sessions_over_tcp(centre, rounds, device_id, timeout=8.0):
    """A device opening `rounds` sessions, each on a new connection; returns how many opened."""
    opened = 0
    device = None
    counter = 65536
    for _ in range(rounds):
        try:
            device = Device(centre.master, device_id, centre, "tcp", counter=counter)
            if device.handshake(timeout):
                device.send(heartbeat())
                if device.wait_for(lambda m: m["type"] == "heartbeatAck", timeout):
                    opened += 1
            counter = device.counter + 1
        except OSError as error:
            log("device connection failed:", error)
            counter += 100
        finally:
            if device:
                device.close()
    return opened


@check("connection-limit")
def connection_limit(options, workdir):
    """An attacker holding connections up to the descriptor limit keeps no device out."""
    centre = Centre(options.devicesim, workdir, ["--auth-timeout", "60"], nofile=256)
    held = []
    try:
        held = hold_connections(600, [f"127.0.0.{i}" for i in range(10, 20)], centre.tcp)
        wait_until(lambda: centre.metric("center_connections_accepted_total") >= 190, 15, "the attacker's connections were not accepted")
        opened = sessions_over_tcp(centre, 11, 1004)
        expect(opened == 11, f"{opened} of 11 sessions opened while an attacker held connections")
        expect(centre.metric("center_connections_open") <= 256, "more connections open than descriptors")
    finally:
        for s in held:
            s.close()
        centre.stop()


@check("descriptors-exhausted")
def descriptors_exhausted(options, workdir):
    """With a connection limit above the descriptor limit, accept runs out of descriptors: the centre pauses
    accepting (no spinning) and closes its oldest unauthenticated connection, so a device still gets in."""
    centre = Centre(options.devicesim, workdir, ["--auth-timeout", "60", "--max-connections", "5000"], nofile=128)
    held = []
    try:
        held = hold_connections(300, [f"127.0.0.{i}" for i in range(10, 20)], centre.tcp)
        wait_until(lambda: centre.metric("center_accept_backoffs_total") >= 1, 15, "accept never ran out of descriptors")
        cpu_before, wall_before = centre.cpu_seconds(), time.monotonic()
        time.sleep(2)
        share = (centre.cpu_seconds() - cpu_before) / (time.monotonic() - wall_before)
        log(f"centre CPU while out of descriptors: {share:.0%} of a core")
        opened = sessions_over_tcp(centre, 3, 1005)
        expect(opened == 3, f"{opened} of 3 sessions opened while descriptors were exhausted")
    finally:
        for s in held:
            s.close()
        centre.stop()


@check("metrics-timeout")
def metrics_timeout(options, workdir):
    """Half-sent metrics requests are closed; the endpoint listens on loopback only."""
    centre = Centre(options.devicesim, workdir, ["--host", "0.0.0.0"])
    held = []
    try:
        listening = []
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            address, port = fields[1].split(":")
            if fields[3] == "0A" and int(port, 16) == centre.metrics_port:
                listening.append(socket.inet_ntoa(struct.pack("<I", int(address, 16))))
        expect(listening == ["127.0.0.1"], f"the metrics endpoint listens on {listening}")
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", centre.metrics_port))
            s.sendall(b"GET /metr")
            held.append(s)
        end = time.monotonic() + 20
        open_ones = list(held)
        while open_ones and time.monotonic() < end:
            ready, _, _ = select.select(open_ones, [], [], 0.5)
            for s in ready:
                try:
                    closed = s.recv(4096) == b""
                except ConnectionResetError:
                    closed = True
                if closed:
                    open_ones.remove(s)
        expect(not open_ones, f"{len(open_ones)} of 50 half-sent requests still open after 20 s")
        expect(centre.metric("center_metrics_requests_refused_total") >= 50, "the closed requests were not counted")
    finally:
        for s in held:
            s.close()
        centre.stop()


def forged_frames(master_bytes_unused, port, seconds, stop=None):
    """Sends forged frames under random device ids as fast as one process can; returns how many."""
    flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flood.connect(("127.0.0.1", port))
    body = os.urandom(3 + 16)
    header_tail = b"\x00\x00\x00\x00\x00\x01"
    sent = 0
    end = time.monotonic() + seconds
    ids = [random.getrandbits(32).to_bytes(4, "big") for _ in range(4096)]
    while time.monotonic() < end and not (stop and stop.is_set()):
        for device in ids:
            try:
                flood.send(b"\x10\x00\x20" + device + header_tail + body)
                sent += 1
            except (BlockingIOError, ConnectionRefusedError):
                pass
        ids = [random.getrandbits(32).to_bytes(4, "big") for _ in range(4096)]
    return sent


def alarms_during(centre, seconds, interval=0.05, device_id=2001):
    """A device of the fleet sending one alarm every `interval`, each retransmitted (same id, new counter)
    every second until acknowledged, as protocol.md §4.7 has devices do; returns (sent, acknowledged,
    latencies from the first transmission to the ack, in ms, sorted)."""
    device = Device(centre.master, device_id, centre, "udp", source="127.0.0.2")
    expect(device.handshake(), "no sessionAccept")
    first_sent, last_sent, latencies = {}, {}, []
    next_id = 1

    def collect():
        device.poll(0.005)
        now = time.monotonic()
        for message in device.messages:
            if message["type"] == "ack" and message["id"] in first_sent:
                latencies.append((now - first_sent.pop(message["id"])) * 1000)
                last_sent.pop(message["id"], None)
        device.messages = []
        for alarm_id, at in list(last_sent.items()):
            if now - at >= 1.0:
                device.send(alarm(alarm_id))
                last_sent[alarm_id] = now

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        first_sent[next_id] = last_sent[next_id] = time.monotonic()
        device.send(alarm(next_id))
        next_id += 1
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline:
            collect()
    drain = time.monotonic() + 10
    while first_sent and time.monotonic() < drain:
        collect()
    device.close()
    return next_id - 1, len(latencies), sorted(latencies)


def forged_flood_process(options, port, seconds, cpu=None):
    """The flood in a process of its own (no GIL shared with the device), at the highest rate it can send."""
    return subprocess.Popen([sys.executable, __file__, "--devicesim", options.devicesim, "--flood-forged", str(port),
                             "--seconds", str(seconds)], stdout=subprocess.PIPE,
                            preexec_fn=None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu})))


@check("forged-ids")
def forged_ids(options, workdir):
    """Forged frames under random ids cost at most the forger's budget in key derivations; alarms still pass."""
    centre = Centre(options.devicesim, workdir, ["--rate", "1000", "--burst", "1000"])
    try:
        flood_started = time.monotonic()
        flood = forged_flood_process(options, centre.udp, 5)
        time.sleep(0.5)
        sent, acked, latencies = alarms_during(centre, 4)
        forged = int(flood.communicate()[0] or 0)
        flood_seconds = time.monotonic() - flood_started
        derivations = centre.metric("center_key_derivations_total")
        limited = centre.metric('center_frames_dropped_total{reason="sourceLimited"}')
        log(f"{forged} forged frames sent, {limited:.0f} dropped before derivation, {derivations:.0f} derivations; "
            f"alarms {acked}/{sent}, p99 {percentile(latencies, 0.99)} ms")
        expect(acked == sent, f"{sent - acked} of {sent} alarms never acknowledged during the flood")
        expect(limited > 0, "no forged frame was dropped before key derivation")
        # The forger's burst (4 × 50) and 50 a second while it forged, and the device's own key.
        bound = 200 + 50 * (flood_seconds + 1) + 1
        expect(derivations <= bound, f"{derivations:.0f} key derivations for one forging source in {flood_seconds:.1f} s")
    finally:
        centre.stop()


# MARK: benchmarks (figures, not checks)

@check("key-epoch")
def key_epoch(options, workdir):
    """A device that lost its state opens a session at the next key epoch, its counter from 0 again; the
    centre then refuses the old epoch's frames and a sessionStart whose body names another epoch (§3.2, §3.4)."""
    centre = Centre(options.devicesim, workdir)
    try:
        for transport in ("udp", "tcp"):
            device_id = 3001 if transport == "udp" else 3002
            old = Device(centre.master, device_id, centre, transport, counter=900_000)
            expect(old.handshake(), f"{transport}: no sessionAccept at epoch 0")
            old.send(alarm(1))
            expect(old.wait_for(lambda m: m == {"type": "ack", "id": 1}), f"{transport}: epoch 0 alarm not acked")
            new = Device(centre.master, device_id, centre, transport, counter=0, epoch=1)
            expect(new.handshake(), f"{transport}: the next epoch's sessionStart (counter 0) was not accepted")
            new.send(alarm(2))
            expect(new.wait_for(lambda m: m == {"type": "ack", "id": 2}), f"{transport}: epoch 1 alarm not acked")
            wait_until(lambda: events_of(centre, "keyEpochChanged", device=device_id, epoch=1), 10,
                       f"{transport}: no keyEpochChanged event")
            # The old key, however high its counter, opens nothing now.
            stale = centre.metric(STALE)
            retired = Device(centre.master, device_id, centre, transport, counter=2_000_000)
            retired.anchor, retired.down = retired.counter, down_key(retired.root, retired.counter)
            retired.send(session_start())
            expect(retired.wait_for(lambda m: m["type"] == "sessionAccept", 1.5) is None,
                   f"{transport}: a sessionStart under the retired epoch 0 was answered")
            wait_until(lambda: centre.metric(STALE) > stale, 10, f"{transport}: the retired epoch's frame was not counted stale")
            for d in (old, new, retired):
                d.close()
        # A sessionStart sealed under epoch 2's key that names epoch 3 in its body.
        liar = Device(centre.master, 3001, centre, "udp", counter=0, epoch=2)
        liar.anchor, liar.down = 0, down_key(liar.root, 0)
        liar.send_raw(seal_up(liar.up, 3001, 0, session_start(epoch=3), 2))
        expect(liar.wait_for(lambda m: m["type"] == "sessionAccept", 1.5) is None,
               "a sessionStart naming another epoch than its key's was answered")
        liar.close()
    finally:
        centre.stop()


@check("critical-extension")
def critical_extension(options, workdir):
    """An alarm of a later version (a critical extension this centre does not know) is recorded, dispatched and
    flagged, and answered nak(unsupported) once; its copy is a replay; sent again without it, acked (§4.1)."""
    centre = Centre(options.devicesim, workdir)
    try:
        device = Device(centre.master, 3101, centre, "udp")
        expect(device.handshake(), "no sessionAccept")
        raised = now_ms() - 5_000
        frame = device.send(alarm(7, at=raised, extensions=bytes([0x85, 0x02, 0xAB, 0xCD])))
        expect(device.wait_for(lambda m: m == {"type": "nak", "id": 7, "reason": 2}), "no nak(unsupported) for alarm 7")
        wait_until(lambda: events_of(centre, "alarm", device=3101, alarm=7, dispatched=True), 10,
                   "the alarm of a later version was not recorded and dispatched")
        wait_until(lambda: events_of(centre, "alarmFlagged", device=3101, alarm=7), 10, "the alarm was not flagged for the operator")
        flagged = events_of(centre, "alarmFlagged", device=3101, alarm=7)
        expect(any("0x85" in f for f in flagged[0]["flags"]), f"the flag does not name the extension: {flagged}")
        replayed = centre.metric('center_frames_refused_total{category="replayed"}')
        device.messages = []
        device.send_raw(frame)
        wait_until(lambda: centre.metric('center_frames_refused_total{category="replayed"}') > replayed, 10,
                   "the copy of the undecodable frame was not refused as replayed (its counter was not used up)")
        device.send(alarm(7, at=raised))
        expect(device.wait_for(lambda m: m == {"type": "ack", "id": 7}), "the alarm sent again as v1 was not acked")
        time.sleep(0.3)
        expect(len(events_of(centre, "alarm", device=3101, alarm=7)) == 1, "the alarm was dispatched twice")
        device.close()
    finally:
        centre.stop()


@check("reused-id")
def reused_id(options, workdir):
    """An alarm id reused for another call for help is dispatched as a case of its own and flagged; a
    retransmission (battery changed) is not; an event id reused for other content is refused (§4.7)."""
    centre = Centre(options.devicesim, workdir)
    try:
        device = Device(centre.master, 3201, centre, "tcp")
        expect(device.handshake(), "no sessionAccept")
        first = now_ms() - 3_600_000
        device.send(alarm(1, kind=1, at=first))
        expect(device.wait_for(lambda m: m == {"type": "ack", "id": 1}), "alarm 1 not acked")
        device.messages = []
        device.send(alarm(1, kind=1, at=first, battery=80))  # a retransmission, another battery reading
        expect(device.wait_for(lambda m: m == {"type": "ack", "id": 1}), "the retransmission was not acked")
        time.sleep(0.3)
        expect(len(events_of(centre, "alarm", device=3201, alarm=1)) == 1, "a retransmission was dispatched again")
        device.messages = []
        device.send(alarm(1, kind=4, at=now_ms()))  # id 1 again, a fall an hour later
        expect(device.wait_for(lambda m: m == {"type": "ack", "id": 1}), "the reused-id alarm was not acked")
        wait_until(lambda: len(events_of(centre, "alarm", device=3201, alarm=1)) == 2, 10,
                   "the alarm under a reused id was not dispatched")
        wait_until(lambda: events_of(centre, "alarmFlagged", device=3201, alarm=1), 10, "the reused id was not flagged")
        device.send(event(5, kind=2, at=first))
        expect(device.wait_for(lambda m: m == {"type": "ack", "id": 5}), "event 5 not acked")
        device.messages = []
        device.send(event(5, kind=6, at=now_ms()))
        expect(device.wait_for(lambda m: m == {"type": "nak", "id": 5, "reason": 1}), "the reused event id was not refused invalid")
        expect(centre.metric("center_id_conflicts_total") >= 2, "conflicts not counted")
        device.close()
    finally:
        centre.stop()


@check("bad-field")
def bad_field(options, workdir):
    """An authentic alarm with one bad field is recorded, dispatched and acked with the field marked; another
    message with a bad field gets nak(invalid) rather than silence (§4.1)."""
    centre = Centre(options.devicesim, workdir)
    try:
        device = Device(centre.master, 3301, centre, "udp")
        expect(device.handshake(), "no sessionAccept")
        device.send(alarm(11, battery=150))
        expect(device.wait_for(lambda m: m == {"type": "ack", "id": 11}), "the alarm with battery 150 was not acked")
        wait_until(lambda: events_of(centre, "alarm", device=3301, alarm=11, dispatched=True, battery=None), 10,
                   "the alarm with battery 150 was not dispatched (battery unknown)")
        wait_until(lambda: events_of(centre, "alarmFlagged", device=3301, alarm=11), 10, "the alarm with battery 150 was not flagged")
        flagged = events_of(centre, "alarmFlagged", device=3301, alarm=11)
        expect(any("battery 150" in f for f in flagged[0]["flags"]), f"battery 150 not named: {flagged}")
        # Extensions out of order: holdMilliseconds (0x02) before pressCount (0x01).
        device.send(alarm(12, extensions=bytes([0x02, 0x02, 0x04, 0xB0, 0x01, 0x02, 0x00, 0x03])))
        expect(device.wait_for(lambda m: m == {"type": "ack", "id": 12}), "the alarm with extensions out of order was not acked")
        # An event cut short after its id: nak(invalid).
        device.send(bytes([0x05]) + (13).to_bytes(4, "big") + bytes([2]))
        expect(device.wait_for(lambda m: m == {"type": "nak", "id": 13, "reason": 1}), "the malformed event was not answered nak(invalid)")
        device.close()
    finally:
        centre.stop()


def percentile(values, p):
    if not values:
        return None
    return round(values[min(len(values) - 1, int(len(values) * p))], 2)


def bench_rss(options, workdir):
    centre = Centre(options.devicesim, workdir, read_events=False)
    # A slow reader: one line a second.
    def slow():
        for line in centre.process.stdout:
            time.sleep(1)
    threading.Thread(target=slow, daemon=True).start()
    flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flood.setblocking(False)
    start_rss = centre.rss_kib()
    samples, sent = [], 0
    end = time.monotonic() + options.seconds
    next_sample = time.monotonic() + 1
    while time.monotonic() < end:
        for _ in range(1000):
            try:
                flood.sendto(b"\x10\x00\x04\x00", ("127.0.0.1", centre.udp))
                sent += 1
            except BlockingIOError:
                pass
        if time.monotonic() >= next_sample:
            samples.append(centre.rss_kib())
            next_sample += 1
    received = centre.metric('center_frames_refused_total{category="malformed"}')
    centre.stop()
    return {"bench": "rss", "seconds": options.seconds, "datagramsSent": sent, "datagramsCounted": int(received),
            "rssStartKiB": start_rss, "rssMinKiB": min(samples), "rssMaxKiB": max(samples), "rssEndKiB": samples[-1],
            "rssGrowthFromFirstSecondKiB": max(samples) - samples[0], "samplesKiB": samples}


def bench_forged(options, workdir):
    # With --center-cpu N the centre runs on CPU N alone and the flood and the device on the others: on a
    # machine of two cores, as if the attacker were another machine.
    others = None
    if options.center_cpu is not None:
        others = set(os.sched_getaffinity(0)) - {options.center_cpu}
        os.sched_setaffinity(0, others)
    centre = Centre(options.devicesim, workdir, ["--rate", "1000", "--burst", "1000"], cpu=options.center_cpu)
    # The flood in a process of its own, at the highest rate one process can send.
    flood = forged_flood_process(options, centre.udp, options.seconds, cpu=min(others) if others else None)
    time.sleep(1)
    cpu_before = centre.cpu_seconds()
    sent, acked, latencies = alarms_during(centre, options.seconds - 2)
    cpu = centre.cpu_seconds() - cpu_before
    forged = int(flood.communicate()[0] or 0)
    metrics = centre.metrics()
    centre.stop()
    return {"bench": "forged", "seconds": options.seconds, "forgedSent": forged,
            "forgedPerSecond": round(forged / options.seconds),
            "droppedBeforeDerivation": int(metrics.get('center_frames_dropped_total{reason="sourceLimited"}', 0)),
            "forgedRefused": int(metrics.get('center_frames_refused_total{category="forged"}', 0)),
            "keyDerivations": int(metrics.get("center_key_derivations_total", 0)),
            "alarmsSent": sent, "alarmsAcked": acked, "ackP50ms": percentile(latencies, 0.5),
            "ackP99ms": percentile(latencies, 0.99), "ackMaxMs": round(latencies[-1], 2) if latencies else None,
            "centerCpuShare": round(cpu / (options.seconds - 2), 2), "centerCpu": options.center_cpu}


def bench_tcp_hold(options, workdir):
    """A device opening one session after another over TCP while an attacker, from 30 other addresses, holds
    more connections than the centre's limit and reconnects whatever the centre closes. The centre runs with
    4,096 descriptors (limit 3,072), so that one attacking process (20,000 descriptors here) can hold it."""
    centre = Centre(options.devicesim, workdir, ["--auth-timeout", "5"], nofile=4096)
    sources = [f"127.0.0.{i}" for i in range(10, 40)]
    held = hold_connections(3500, sources, centre.tcp)
    sessions = opened = 0
    setups = []
    counter = 65536
    end = time.monotonic() + options.seconds
    try:
        while time.monotonic() < end:
            # Reconnect what the centre closed (evicted, timed out), so that the attacker stays over the limit.
            for s in list(held):
                try:
                    gone = s.recv(1) == b""
                except BlockingIOError:
                    gone = False  # still open (or still connecting)
                except OSError:
                    gone = True
                if gone:
                    held.remove(s)
                    s.close()
            if len(held) < 3500:
                held += hold_connections(3500 - len(held), sources, centre.tcp)
            device = None
            started = time.monotonic()
            try:
                device = Device(centre.master, 3001, centre, "tcp", counter=counter)
                sessions += 1
                if device.handshake(5):
                    opened += 1
                    setups.append((time.monotonic() - started) * 1000)
                counter = device.counter + 1
            except OSError as error:
                log("device:", error)
                counter += 100
            finally:
                if device:
                    device.close()
            time.sleep(0.2)
        metrics = centre.metrics()
    finally:
        for s in held:
            s.close()
        centre.stop()
    setups.sort()
    return {"bench": "tcp-hold", "seconds": options.seconds, "attackerConnectionsHeld": 3500,
            "sessionsTried": sessions, "sessionsOpened": opened, "setupP50ms": percentile(setups, 0.5),
            "setupMaxMs": round(setups[-1], 2) if setups else None,
            "connectionsAccepted": int(metrics.get("center_connections_accepted_total", 0)),
            "evicted": int(metrics.get('center_connections_closed_total{reason="evicted"}', 0)),
            "authTimeouts": int(metrics.get('center_connections_closed_total{reason="authTimeout"}', 0)),
            "refusedAtLimit": int(metrics.get('center_connections_closed_total{reason="connectionLimit"}', 0)),
            "acceptBackoffs": int(metrics.get("center_accept_backoffs_total", 0)),
            "connectionsOpenAtEnd": int(metrics.get("center_connections_open", 0))}


BENCHES = {"rss": bench_rss, "forged": bench_forged, "tcp-hold": bench_tcp_hold}


def main() -> int:
    global VERBOSE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devicesim", default=".build/debug/devicesim", help="the devicesim binary to run as the centre")
    parser.add_argument("--check", action="append", choices=sorted(CHECKS), help="run this check (repeatable); default: all")
    parser.add_argument("--bench", choices=sorted(BENCHES), help="measure instead of checking")
    parser.add_argument("--seconds", type=float, default=60, help="length of a --bench run")
    parser.add_argument("--center-cpu", type=int, help="--bench forged: run the centre on this CPU alone, the rest elsewhere")
    parser.add_argument("--centre-cpu", dest="center_cpu", type=int, help=argparse.SUPPRESS)  # the other spelling
    parser.add_argument("--flood-forged", type=int, metavar="UDP_PORT", help=argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="store_true")
    options = parser.parse_args()
    VERBOSE = options.verbose
    if options.flood_forged:
        print(forged_frames(None, options.flood_forged, options.seconds))
        return 0
    if not Path(options.devicesim).exists():
        print(f"{options.devicesim} does not exist: build it with `swift build` (or pass --devicesim PATH)")
        return 2
    # The attacker's connections and the centre's need descriptors of their own.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if options.bench:
        with tempfile.TemporaryDirectory(prefix="attack-") as workdir:
            print(json.dumps(BENCHES[options.bench](options, workdir)), flush=True)
        return 0
    passed = failed = 0
    for name in options.check or list(CHECKS):
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"attack-{name}-") as workdir:
            try:
                CHECKS[name](options, workdir)
                passed += 1
                print(f"ok   {name} ({time.monotonic() - started:.1f} s)", flush=True)
            except Exception as error:
                failed += 1
                detail = str(error) if isinstance(error, CheckFailed) else traceback.format_exc()
                print(f"FAIL {name}: {detail}", flush=True)
    print(f"attack: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
