#!/usr/bin/env python3
"""How many DC-09 events a second the centre's DC-09 port takes over TCP from one sender with frames pipelined,
and the event -> ACK latency (p50, p99). A measurement for the report, not a test: nothing is asserted.

    python3 tools/bench_dc09_receiver.py .build/release/devicesim --events 20000 --window 256 --kind event

Spawns `devicesim center --dc09-port 0` on a fresh journal (--dc09-rate high enough not to limit), connects
once, and sends SIA-DCS frames (clear, timestamped now) while at most --window wait for their ACK. Accounts
rotate every 9,000 events so that no sequence number repeats within an account (which the centre would take
for a retransmission). Prints one JSON line.
"""
import argparse, json, os, socket, subprocess, sys, tempfile, threading, time

def crc16_arc(data):
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc

def frame(account, sequence, code, zone):
    stamp = time.strftime("_%H:%M:%S,%m-%d-%Y", time.gmtime())
    message = f'"SIA-DCS"{sequence:04d}R0L0#{account}[#{account}|Nri1/{code}{zone:03d}]{stamp}'.encode()
    return b"\n" + f"{crc16_arc(message):04X}{len(message):04X}".encode() + message + b"\r"

def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else None

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("devicesim")
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--window", type=int, default=256, help="frames sent and not yet acknowledged, at most")
    parser.add_argument("--kind", choices=["event", "alarm"], default="event",
                        help="event: mains lost/restored (journalled, no case); alarm: QA alarms, each opening a case")
    parser.add_argument("--journal-batch", type=int, default=512)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="dc09-bench-")
    accounts = [f"{1000 + i:04d}" for i in range(args.events // 9000 + 1)]
    with open(os.path.join(work, "accounts.toml"), "w") as f:
        for i, account in enumerate(accounts):
            f.write(f'[accounts."{account}"]\ndevice = {100 + i}\n')
    with open(os.path.join(work, "keys.toml"), "w") as f:
        f.write('[devices]\n1 = "' + "00" * 32 + '"\n')
    centre = subprocess.Popen(
        [args.devicesim, "center", "--host", "127.0.0.1", "--port", "0", "--dc09-port", "0",
         "--dc09-accounts", os.path.join(work, "accounts.toml"), "--keys", os.path.join(work, "keys.toml"),
         "--journal", os.path.join(work, "journal.sqlite"), "--dc09-rate", "1000000", "--no-call-on-engage",
         "--journal-batch", str(args.journal_batch), "--stop-with-stdin", "--log-level", "error"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    port = json.loads(centre.stdout.readline())["dc09"]
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    sent_at = {}
    latencies = []
    answers = {"ACK": 0, "other": 0}
    room = threading.Semaphore(args.window)
    done = threading.Event()

    def reader():
        buffer = b""
        while len(latencies) + answers["other"] < args.events:
            chunk = sock.recv(65536)
            if not chunk:
                break
            now = time.perf_counter()
            buffer += chunk
            *lines, buffer = buffer.split(b"\r")
            for line in lines:
                start = line.find(b'"')
                kind = line[start + 1:line.find(b'"', start + 1)].decode()
                body = line[line.find(b'"', start + 1) + 1:]
                key = (body[body.find(b"#") + 1:body.find(b"[")].decode(), int(body[:4]))
                if kind == "ACK" and key in sent_at:
                    latencies.append(now - sent_at.pop(key))
                    answers["ACK"] += 1
                else:
                    answers["other"] += 1
                room.release()
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    codes = ["AT", "AR"] if args.kind == "event" else ["QA"]
    started = time.perf_counter()
    for n in range(args.events):
        account = accounts[n // 9000]
        sequence = n % 9000 + 1
        data = frame(account, sequence, codes[n % len(codes)], 0 if args.kind == "event" else 1)
        room.acquire()
        sent_at[(account, sequence)] = time.perf_counter()
        sock.sendall(data)
    done.wait(120)
    elapsed = time.perf_counter() - started
    sock.close()
    centre.stdin.close()
    centre.wait(30)
    print(json.dumps({
        "events": args.events, "kind": args.kind, "window": args.window, "acked": answers["ACK"], "otherAnswers": answers["other"],
        "seconds": round(elapsed, 3), "eventsPerSecond": round(answers["ACK"] / elapsed, 1),
        "ackP50ms": round(percentile(latencies, 50) * 1000, 2), "ackP99ms": round(percentile(latencies, 99) * 1000, 2),
        "ackMaxms": round(max(latencies) * 1000, 2),
    }))

if __name__ == "__main__":
    main()
