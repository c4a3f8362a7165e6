#!/usr/bin/env python3
"""One benchmark run of `devicesim load` against a fresh `devicesim center` on this machine.

Starts the centre (release build, a new journal, an automatic operator, metrics on a free port), samples its
resident memory, CPU time and counters every second, runs the load tool with the arguments after `--`, and
prints one JSON line with both sides' figures:

    tools/load_bench.py --name udp-hold --journal-dir /var/tmp -- --transport udp --devices 100000 \
        --ramp 5000 --heartbeat-interval 30 --alarm-rate 0 --duration 600

The centre's CPU per heartbeat is its CPU time over the frames it received while every device was online
and nothing else happened (a holding run: `--alarm-rate 0`), divided by those frames. Its memory per device
is the growth of its resident set from before the ramp to the end of the steady phase, divided by devices.
The load tool's own figures come from its JSON report (`--json`, written here to the run's directory).
UDP datagrams the kernel dropped for a full receive buffer (/proc/net/snmp, the whole machine: run nothing
else) are counted up to all online (`udp_dropped_ramp`) and while holding (`udp_dropped_steady`).
"""
import argparse, json, os, secrets, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    """A port free for TCP and UDP below the ephemeral range, so that no device's socket takes it meanwhile."""
    while True:
        port = 20000 + secrets.randbelow(12000)
        try:
            with socket.socket() as t, socket.socket(type=socket.SOCK_DGRAM) as u:
                t.bind(("127.0.0.1", port))
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue


def proc_sample(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return cpu, rss


def udp_errors():
    """The kernel's UDP counters (all sockets of this network namespace): datagrams dropped because a
    socket's receive buffer was full, and sends refused for a full send buffer."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    fields = dict(zip(rows[0][1:], (int(v) for v in rows[1][1:])))
    return fields.get("RcvbufErrors", 0), fields.get("SndbufErrors", 0)


def children(pid):
    """Child processes of `pid`, whichever of its threads started them."""
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return found


def metrics(port):
    values = {}
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return values
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                pass
    return values


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--binary", default=".build/release/devicesim")
    parser.add_argument("--journal-dir", default=None, help="where the centre's journal goes (default: a temporary directory)")
    parser.add_argument("--journal", default=None,
                        help="the centre's journal instead: postgres://USER@HOST:PORT/DATABASE (its password in PGPASSWORD)")
    parser.add_argument("--center-arg", action="append", default=[], help="one more argument for `devicesim center`")
    parser.add_argument("--center-workers", type=int, default=1, help="`devicesim center --workers N`: its processes are summed")
    parser.add_argument("--out", default="bench-results", help="directory for the run's files")
    parser.add_argument("load_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    load_args = [a for a in args.load_args if a != "--"]

    os.makedirs(args.out, exist_ok=True)
    run_dir = tempfile.mkdtemp(prefix=args.name + "-", dir=args.out)
    journal_dir = args.journal_dir or run_dir
    master = secrets.token_hex(32)
    master_file = os.path.join(run_dir, "master.hex")
    with open(os.open(master_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(master)
    port = free_port()
    metrics_port = 9000 + secrets.randbelow(500) * 20  # workers serve on metrics_port + index
    # --heartbeat-interval, or its old name --heartbeat
    named = [a for a in ("--heartbeat-interval", "--heartbeat") if a in load_args]
    heartbeat = load_args[load_args.index(named[0]) + 1] if named else "30"
    centre_cmd = [
        args.binary, "center", "--host", "127.0.0.1", "--port", str(port), "--master-file", master_file,
        "--journal", args.journal or os.path.join(journal_dir, f"{os.path.basename(run_dir)}.sqlite"),
        "--heartbeat-interval", heartbeat, "--auto-engage-after", "100", "--auto-close-after", "60",
        "--metrics-port", str(metrics_port), "--log-level", "warning",
    ] + (["--workers", str(args.center_workers)] if args.center_workers > 1 else []) + args.center_arg
    centre_log = open(os.path.join(run_dir, "center.log"), "w")
    centre = subprocess.Popen(centre_cmd, stdout=centre_log, stderr=subprocess.STDOUT)
    samples = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            cpu = rss = 0
            for pid in [centre.pid] + children(centre.pid):
                try:
                    c, r = proc_sample(pid)
                except OSError:
                    continue
                cpu, rss = cpu + c, rss + r
            if cpu == 0:
                return
            m = {}
            for k in range(args.center_workers):
                for name, value in metrics(metrics_port + k).items():
                    m[name] = m.get(name, 0) + value
            rcvbuf, sndbuf = udp_errors()
            samples.append({"t": time.monotonic(), "cpu": cpu, "rss": rss, "rcvbuf": rcvbuf, "sndbuf": sndbuf,
                            "frames": m.get("center_frames_received_total", 0),
                            "sessions": m.get("center_sessions_active", 0)})
            stop.wait(1)

    deadline = time.monotonic() + 30
    while not metrics(metrics_port) and time.monotonic() < deadline:
        time.sleep(0.1)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    time.sleep(1.5)
    report_path = os.path.join(run_dir, "load.json")
    load_cmd = [args.binary, "load", "--center", f"127.0.0.1:{port}", "--master-file", master_file,
                "--report", report_path, "--quiet"] + load_args
    started = time.monotonic()
    load = subprocess.run(load_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ended = time.monotonic()
    stop.set()
    sampler.join()
    centre.send_signal(signal.SIGTERM)
    try:
        centre.wait(timeout=30)
    except subprocess.TimeoutExpired:
        centre.kill()
    with open(os.path.join(run_dir, "load.txt"), "w") as f:
        f.write(load.stdout)
    if load.returncode not in (0, 1) or not os.path.exists(report_path):
        print(load.stdout[-3000:], file=sys.stderr)
        sys.exit(f"the load tool failed with status {load.returncode}")
    report = json.load(open(report_path))
    devices = report["devices"]
    steady_start = started + report["rampSeconds"] + 1
    steady_end = steady_start + report["steadySeconds"]
    online_at = started + (report.get("allOnlineSeconds") or report["rampSeconds"]) + 5
    window = [s for s in samples if online_at <= s["t"] <= steady_end]
    before = samples[0] if samples else None
    result = {"name": args.name, "dir": run_dir, "devices": devices, "transport": report["transports"],
              "load_exit": load.returncode, "wall_s": round(ended - started, 1)}
    c = report["counts"]
    result.update({k: c[k] for k in ("sessionsOpened", "reconnects", "alarmsRaised", "alarmsSent", "alarmsAcknowledged", "alarmsLost",
                                     "heartbeatsSent", "heartbeatAcks", "callsAnswered", "voicePacketsLost") if k in c})
    result.update(table_percentiles(load.stdout))
    if report.get("allOnlineSeconds"):
        result["all_online_s"] = report["allOnlineSeconds"]
        result["sessions_per_s"] = round(devices / report["allOnlineSeconds"])
    if report.get("residentBytesHolding") and report.get("residentBytesBefore"):
        result["load_bytes_per_device"] = round((report["residentBytesHolding"] - report["residentBytesBefore"]) / devices)
    if report.get("steadyCPUSeconds") and report.get("steadyHeartbeats"):
        result["load_cpu_us_per_heartbeat"] = round(report["steadyCPUSeconds"] / report["steadyHeartbeats"] * 1e6, 1)
    if before and window:
        last = window[-1]
        result["center_bytes_per_device"] = round((max(s["rss"] for s in window) - before["rss"]) / devices)
        frames = window[-1]["frames"] - window[0]["frames"]
        if frames > 0:
            result["center_cpu_us_per_frame"] = round((last["cpu"] - window[0]["cpu"]) / frames * 1e6, 1)
        result["center_sessions_min_in_window"] = min(s["sessions"] for s in window)
        # Datagrams the kernel dropped (either side's receive buffer full), up to all online and while holding.
        ramp = [s for s in samples if s["t"] < online_at]
        if ramp:
            result["udp_dropped_ramp"] = ramp[-1]["rcvbuf"] - before["rcvbuf"]
        result["udp_dropped_steady"] = last["rcvbuf"] - window[0]["rcvbuf"]
        result["udp_send_refused"] = samples[-1]["sndbuf"] - before["sndbuf"]
    if report.get("steadyHeartbeats"):
        result["steady_heartbeat_acks"] = report["steadyHeartbeats"]
    print(json.dumps(result))


LABELS = {"alarm → ack": "alarm", "session set-up": "session", "heartbeat round trip": "heartbeat",
          "alarm → operator": "engaged", "alarm → operator voice": "voice", "voice jitter per call": "jitter"}


def table_percentiles(text):
    """The latency rows of the tool's final table: {metric: {count, p50, ..., max}} in milliseconds."""
    lines = text.splitlines()
    header = next((l.split() for l in lines if l.strip().startswith("count")), None)
    rows = {}
    for line in lines:
        label = line[:22].strip()
        if label in LABELS and header:
            cells = line[22:].split()
            values, k = [], 1
            while k < len(cells):
                if cells[k] == "—":
                    values.append(None); k += 1
                else:
                    number, unit = float(cells[k]), cells[k + 1]
                    values.append(number * 1000 if unit == "s" else number); k += 2
            rows[LABELS[label]] = dict(zip(header, [int(cells[0])] + values))
    return rows


if __name__ == "__main__":
    main()
