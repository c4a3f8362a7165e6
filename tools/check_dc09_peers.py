#!/usr/bin/env python3
"""Our SIA DC-09 frames against two implementations no one here wrote (issue 15's codec step).

- pysiaalarm (the DC-09 receiver library Home Assistant uses) parses every frame `devicesim protocol
  dc09-frame` writes: each event of docs/dc09.md's table, SIA-DCS and ADM-CID, clear and encrypted with
  AES-128/192/256; it must find the CRC right, the account, the code, the zone and the time, and answer ACK.
  Its answers (ACK, encrypted ACK, NAK with its time, NAK for a stale timestamp) are read back by
  `devicesim protocol dc09-decode`.
- dc09-spt (a DC-09 dialler) writes SIA-DCS, ADM-CID and NULL frames, clear and encrypted, which
  `dc09-decode` must read; and it must accept our ACK and NAK answers.
- dc09-spt reports alarms, a cancel, mains lost and NULL, SIA-DCS and Contact ID, clear and AES-128/256, over
  TCP and UDP into a spawned `devicesim center --dc09-port 0`: it must see each acknowledged, and the centre's
  --json events and its journal (read with sqlite3) must show them once each as the account's device's
  alarms, events and cases.

    .build/dc09-venv/bin/python tools/check_dc09_peers.py .build/debug/devicesim

Prints one line per check and exits 1 if any failed.
"""
import json, os, subprocess, sys, tempfile, time
from checklib import Tally

from pysiaalarm import SIAAccount
from pysiaalarm.event import SIAEvent, NAKEvent
from pysiaalarm.utils import ResponseType
from pysiaalarm.data.adm_mapping import ADM_MAPPING
from dc09_spt.msg.dc09_msg import dc09_msg
from dc09_spt.msg.dc03_msg import dc03_msg
from dc09_spt.msg.dc05_msg import dc05_msg

dc09_module = sys.modules["dc09_spt.msg.dc09_msg"]  # the package's name is shadowed by its class



class _PycryptoAES:
    """dc09-spt was written for pycrypto, which no longer builds; pycryptodome (its successor, installed in its
    place) wants bytes where pycrypto took str. This hands dc09-spt's str to pycryptodome as the same bytes."""
    AES = dc09_module.AES
    MODE_CBC = AES.MODE_CBC

    @staticmethod
    def new(key, mode, iv):
        def as_bytes(value):
            return value.encode("latin-1") if isinstance(value, str) else value
        cipher = _PycryptoAES.AES.new(as_bytes(key), mode, as_bytes(iv))

        class Cipher:
            def encrypt(self, data):
                return cipher.encrypt(as_bytes(data))

            def decrypt(self, data):
                return cipher.decrypt(as_bytes(data))
        return Cipher()


dc09_module.AES = _PycryptoAES

DEVICESIM = sys.argv[1] if len(sys.argv) > 1 else ".build/debug/devicesim"
ACCOUNT = "1234"
# pysiaalarm takes a key as text and uses its characters' bytes; dc09-spt takes bytes (16 or 32).
KEYS = {16: "0123456789ABCDEF", 24: "0123456789ABCDEF01234567", 32: "0123456789ABCDEF0123456789ABCDEF"}
# Our table (docs/dc09.md): event name → (SIA code, Contact ID event, qualifier, zone).
TABLE = {
    "alarm:button": ("QA", 101, 1, 1), "alarm:pendant": ("QA", 101, 1, 2), "alarm:fall": ("MA", 100, 1, 3),
    "alarm:inactivity": ("MA", 102, 1, 4), "alarm:test": ("RP", 602, 1, 0), "cancel:button": ("OC", 406, 1, 1),
    "mainsLost": ("AT", 301, 1, 0), "mainsRestored": ("AR", 301, 3, 0), "lowBattery": ("YT", 302, 1, 0),
    "batteryOK": ("YR", 302, 3, 0), "buttonMissing": ("EM", 333, 1, 1), "buttonRestored": ("EN", 333, 3, 1),
    "tamper": ("TA", 137, 1, 0), "restart": ("RR", 305, 1, 0),
}

TALLY = Tally()
key_files = {}


check = TALLY.check


def key_file(size):
    if size not in key_files:
        fd, path = tempfile.mkstemp(suffix=".hex")
        os.write(fd, KEYS[size].encode().hex().encode())
        os.close(fd)
        key_files[size] = path
    return ["--key-file", key_files[size]]


def frame(event, fmt="sia", size=None, extra=()):
    # Our devices always name a receiver (R0 unless configured): pysiaalarm answers "None" where a frame has none.
    if "--receiver" not in extra:
        extra = ("--receiver", "0", *extra)
    args = [DEVICESIM, "protocol", "dc09-frame", event, "--account", ACCOUNT, "--format", fmt, *extra]
    if size:
        args += key_file(size)
    return subprocess.run(args, check=True, capture_output=True).stdout


def decode(data, size=None):
    args = [DEVICESIM, "protocol", "dc09-decode"] + (key_file(size) if size else [])
    out = subprocess.run(args, input=data, capture_output=True)
    return [json.loads(line) for line in out.stdout.decode().splitlines()]


def account(size):
    return {ACCOUNT: SIAAccount(ACCOUNT, KEYS[size] if size else None)}


# 1. pysiaalarm receives every event of the table, in both payloads, clear and encrypted.
for size in (None, 16, 24, 32):
    for fmt in ("sia", "cid"):
        for event, (sia, cid, qualifier, zone) in TABLE.items():
            name = f"pysiaalarm reads {event} as {'SIA-DCS' if fmt == 'sia' else 'ADM-CID'}" + (f", AES-{size * 8}" if size else "")
            raw = frame(event, fmt, size)
            try:
                parsed = SIAEvent.from_line(raw.decode("ascii").strip(), account(size))
            except Exception as error:  # noqa: BLE001 - any refusal is a failed check
                check(False, name, error)
                continue
            problems = []
            if not parsed.valid_message:
                problems.append(f"CRC {parsed.msg_crc} != {parsed.calc_crc}")
            if parsed.account != ACCOUNT:
                problems.append(f"account {parsed.account}")
            if fmt == "sia":
                if parsed.code != sia or parsed.message != f"{zone:03d}" or parsed.ri != "1":
                    problems.append(f"code {parsed.code} zone {parsed.message} area {parsed.ri}")
            else:
                expected = ADM_MAPPING.get(str(cid), {}).get(str(qualifier), "YN")
                if (parsed.event_type, parsed.event_qualifier, parsed.ri, parsed.partition) != (str(cid), str(qualifier), f"{zone:03d}", "01") or parsed.code != expected:
                    problems.append(f"event {parsed.event_qualifier}{parsed.event_type} zone {parsed.ri} partition {parsed.partition} code {parsed.code}")
            if not parsed.valid_timestamp or parsed.timestamp is None:
                problems.append(f"timestamp {parsed.timestamp}")
            if parsed.response != ResponseType.ACK:
                problems.append(f"answer {parsed.response}")
            check(not problems, name, "; ".join(problems))
            if parsed.response == ResponseType.ACK and event == "alarm:button":
                answer = decode(parsed.create_response(), size)
                ok = len(answer) == 1 and answer[0].get("id") == "ACK" and answer[0].get("sequence") == "0001" \
                    and answer[0].get("account") == ACCOUNT and answer[0].get("encrypted") == bool(size) \
                    and (not size or abs(answer[0].get("timestamp", 0) - time.time()) < 5)
                check(ok, f"dc09-decode reads pysiaalarm's ACK ({fmt}{', AES-%d' % (size * 8) if size else ''})", answer)
    # NULL supervision.
    parsed = SIAEvent.from_line(frame("null", "sia", size).decode().strip(), account(size))
    check(parsed.valid_message and parsed.response == ResponseType.ACK, f"pysiaalarm takes our NULL supervision{', AES-%d' % (size * 8) if size else ''}",
          f"{parsed.message_type} {parsed.response}")

# 2. pysiaalarm's NAKs: its bare NAK, and the one for a timestamp outside its window (-40 s / +20 s).
answer = decode(NAKEvent().create_response())
check(len(answer) == 1 and answer[0].get("id") == "NAK" and abs(answer[0].get("timestamp", 0) - time.time()) < 5,
      "dc09-decode reads pysiaalarm's NAK and its time", answer)
stale = frame("alarm:button", "sia", 16, ["--time", str(int(time.time()) - 120)])
parsed = SIAEvent.from_line(stale.decode().strip(), account(16))
check(parsed.response == ResponseType.NAK, "pysiaalarm answers NAK to a timestamp 120 s old", parsed.response)
answer = decode(parsed.create_response(), 16)
check(len(answer) == 1 and answer[0].get("id") == "NAK" and abs(answer[0].get("timestamp", 0) - time.time()) < 5,
      "dc09-decode reads that NAK and pysiaalarm's time", answer)

# 3. dc09-spt as existing equipment: its frames, read by dc09-decode.
for size in (None, 16, 32):
    sender = dc09_msg(ACCOUNT, KEYS[size].encode() if size else None, 1, 2)
    label = f", AES-{size * 8}" if size else ""
    cases = [
        ("SIA-DCS", dc03_msg.dc03event(ACCOUNT, {"code": "QA", "zone": "1", "area": "1"}), "#1234|Nri1QA1"),
        ("ADM-CID", dc05_msg.dc05event(ACCOUNT, {"code": "101", "q": "1", "zone": "1", "area": "1"}), "#1234|1101 01 001"),
        ("NULL", "]", ""),
    ]
    for number, (kind, payload, data) in enumerate(cases, start=1):
        block = sender.dc09block(number, kind, payload)
        read = decode(block.encode("latin-1"), size)
        expected = {"id": kind, "sequence": f"{number:04d}", "receiver": "1", "line": "2", "account": ACCOUNT, "encrypted": bool(size)}
        ok = len(read) == 1 and all(read[0].get(k) == v for k, v in expected.items()) and read[0].get("data") == data \
            and (not size or abs(read[0].get("timestamp", 0) - time.time()) < 5)
        check(ok, f"dc09-decode reads dc09-spt's {kind}{label}", read)
    # dc09-spt accepts our answers to its message 1.
    ack = frame("ack", "sia", size, ["--sequence", "1", "--receiver", "1", "--line", "2"]).decode("ascii")
    try:
        kind, offset = sender.dc09answer(1, ack)
        check(kind == "ACK" and (not size or abs(offset) < 5), f"dc09-spt accepts our ACK{label}", (kind, offset))
    except Exception as error:  # noqa: BLE001
        check(False, f"dc09-spt accepts our ACK{label}", error)
nak = frame("nak", "sia", None, ["--receiver", "1", "--line", "2"]).decode("ascii")
try:
    kind, offset = dc09_msg(ACCOUNT).dc09answer(1, nak)
    check(kind == "NAK" and offset is not None and abs(offset) < 5, "dc09-spt reads our NAK and its time", (kind, offset))
except Exception as error:  # noqa: BLE001
    check(False, "dc09-spt reads our NAK and its time", error)

# 4. dc09-spt as existing equipment reporting into our centre's DC-09 port (`devicesim center --dc09-port 0`):
#    its events must be acknowledged (dc09-spt's own transfer says ACK), shown on the centre's --json stream,
#    journalled as its device's messages and open and close cases (read from the journal with sqlite3).
def receiver_checks():
    import sqlite3, threading
    work = tempfile.mkdtemp(prefix="dc09-receiver-")
    # Three accounts: clear, AES-128 and AES-256, each reporting for a device of ours.
    devices = {"4321": (201, None), "4322": (202, 16), "4323": (203, 32)}
    with open(os.path.join(work, "accounts.toml"), "w") as f:
        for acct, (device, size) in devices.items():
            f.write(f'[accounts."{acct}"]\ndevice = {device}\n')
            if size:
                f.write(f'key = "{KEYS[size].encode().hex()}"\n')
    with open(os.path.join(work, "keys.toml"), "w") as f:
        f.write("[devices]\n1 = \"" + "00" * 32 + "\"\n")
    journal = os.path.join(work, "journal.sqlite")
    centre = subprocess.Popen(
        [DEVICESIM, "center", "--host", "127.0.0.1", "--port", "0", "--dc09-port", "0", "--dc09-accounts",
         os.path.join(work, "accounts.toml"), "--keys", os.path.join(work, "keys.toml"), "--journal", journal, "--json",
         "--no-call-on-engage", "--stop-with-stdin"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = []
    listening = threading.Event()

    def read_events():
        for line in centre.stdout:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
            if events[-1].get("event") == "listening":
                listening.set()
    threading.Thread(target=read_events, daemon=True).start()
    try:
        if not listening.wait(60):
            check(False, "devicesim center --dc09-port 0 starts and says its DC-09 port", centre.stderr.read() if centre.poll() is not None else "no listening line")
            return
        port = next(e for e in events if e.get("event") == "listening").get("dc09")
        check(isinstance(port, int) and port > 0, "devicesim center --dc09-port 0 says the port it chose", port)
        from dc09_spt.dc09_spt import dc09_spt
        from dc09_spt.comm.transpath import TransPath
        number = 0
        for transport in ("tcp", "udp"):
            for acct, (device, size) in devices.items():
                spt = dc09_spt(acct)
                key = KEYS[size].encode() if size else None
                path = TransPath("127.0.0.1", port, acct, key=key, receiver=1, line=2, type=transport)
                label = f"over {transport.upper()}" + (f", AES-{size * 8}" if size else ", clear")
                reports = [
                    ("SIA-DCS", dc03_msg.dc03event(acct, {"code": "QA", "zone": "1", "area": "1"}), "its SIA-DCS alarm (QA)"),
                    ("ADM-CID", dc05_msg.dc05event(acct, {"code": "301", "q": "1", "zone": "0", "area": "1"}), "its Contact ID mains lost (1 301)"),
                    ("SIA-DCS", dc03_msg.dc03event(acct, {"code": "OC", "zone": "1", "area": "1"}), "its SIA-DCS cancel (OC)"),
                    ("ADM-CID", dc05_msg.dc05event(acct, {"code": "100", "q": "1", "zone": "3", "area": "1"}), "its Contact ID fall alarm (1 100)"),
                    ("NULL", "]", "its NULL supervision"),
                ]
                for kind, payload, what in reports:
                    number += 1
                    try:
                        acked = spt.transfer_msg(number, kind, payload, path)
                    except Exception as error:  # noqa: BLE001 - any failure to talk is a failed check
                        acked = error
                    check(acked is True, f"dc09-spt sees {what} acknowledged by our centre {label}", acked)
                # The same message again (dc09-spt retransmits with the same number when it missed the ACK).
                try:
                    again = spt.transfer_msg(number - 1, "ADM-CID", reports[3][1], path)
                except Exception as error:  # noqa: BLE001
                    again = error
                check(again is True, f"dc09-spt's retransmission is acknowledged again {label}", again)

        def seen(match, count, what):
            deadline = time.time() + 30
            found = []
            while time.time() < deadline:
                found = [e for e in list(events) if match(e)]
                if len(found) >= count:
                    break
                time.sleep(0.05)
            check(len(found) == count, what, f"{len(found)} of {count}")

        for acct, (device, size) in devices.items():
            seen(lambda e: e.get("event") == "alarm" and e.get("device") == device and e.get("kind") == "button" and e.get("dispatched"), 2,
                 f"--json shows account {acct}'s SIA-DCS alarms as device {device}'s alarms, dispatched (TCP, UDP)")
            seen(lambda e: e.get("event") == "alarm" and e.get("device") == device and e.get("kind") == "fall", 2,
                 f"--json shows account {acct}'s Contact ID fall alarms once each, retransmissions not again")
            seen(lambda e: e.get("event") == "recorded" and e.get("device") == device and e.get("message", {}).get("kind") == "mainsLost", 2,
                 f"--json shows account {acct}'s mains lost events")
            seen(lambda e: e.get("event") == "caseUpdate" and e.get("device") == device and e.get("state") == "closed", 2,
                 f"account {acct}'s cancels close the cases of its alarms")
    finally:
        centre.stdin.close()
        try:
            centre.wait(30)
        except subprocess.TimeoutExpired:
            centre.kill()
    db = sqlite3.connect(journal)
    for acct, (device, size) in devices.items():
        kinds = [row[0] for row in db.execute("SELECT kind FROM message WHERE device = ? ORDER BY received_at, id", (device,))]
        check(kinds == ["alarm", "event", "alarmCancel", "alarm"] * 2, f"the journal holds account {acct}'s events once each as device {device}'s messages", kinds)
        cases = db.execute("SELECT state FROM dispatch_case WHERE device = ? ORDER BY id", (device,)).fetchall()
        check(len(cases) == 4, f"the journal holds the four cases account {acct}'s alarms opened (two closed by cancels)", cases)
    db.close()


receiver_checks()

for path in key_files.values():
    os.unlink(path)
print(f"{TALLY.checks - TALLY.failures} of {TALLY.checks} DC-09 peer checks passed")
sys.exit(1 if TALLY.failures else 0)
