#!/usr/bin/env python3
"""How many bridged calls one centre process holds, at what cost and with what delay (issue 16's figures).

For each N: `devicesim sip answer --stamp-voice` plays N operators' phones (one process, every call answered at
once, its voice stamped with its send time); `devicesim load --spawn-center` runs N homes whose centre has N
`--operator` URIs at that phone; every home gets one alarm, each engaged case rings a phone and is bridged to its
home, and each call lasts --call-seconds. Measured while all N calls are up:

- voice operator → home through the bridge: per-call loss and jitter (the load report), and the one-way delay
  of the phone's stamped voice at the home (load report `voiceDelay`, p50 of each call);
- voice home → operator: per-call loss, jitter and stamped delay at the phone (`sip answer --json`);
- the centre's CPU (utime + stime from /proc over a window with all calls up), per call;
- for comparison, the same phone called directly by `devicesim sip call --stamp-voice` (no bridge).

    python3 tools/sip_bridge_bench.py .build/release/devicesim --calls 50 100 200

Prints one line per N and a JSON summary; exits 1 if a run could not be measured.
"""
import argparse, json, os, re, signal, socket, subprocess, sys, tempfile, time

HZ = os.sysconf("SC_CLK_TCK")


from check_sip_peers import free_port  # noqa: E402  (one port free for both UDP and TCP)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def centre_pid(journal):
    out = subprocess.run(["pgrep", "-f", journal], capture_output=True, text=True).stdout.split()
    for pid in out:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"center" in f.read():
                    return int(pid)
        except OSError:
            pass
    return None


def percentile(values, fraction):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * fraction))]


def direct(devicesim, tmp):
    """The same phone, called directly: the delay without a bridge."""
    port = free_port()
    answer = subprocess.Popen([devicesim, "sip", "answer", "--port", str(port), "--calls", "1", "--stamp-voice", "--json", "--srtp", "off"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1)
    call = subprocess.run([devicesim, "sip", "call", f"sip:desk@127.0.0.1:{port}", "--seconds", "10", "--stamp-voice", "--json", "--srtp", "off"],
                          capture_output=True, text=True, timeout=60)
    out, _ = answer.communicate(timeout=30)
    mine = [json.loads(l) for l in call.stdout.splitlines() if l.startswith("{")]
    theirs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return (mine[0] if mine else {}), (theirs[0] if theirs else {})


def run(devicesim, n, call_seconds, tmp):
    phone_port = free_port()
    journal = os.path.join(tmp, f"centre-{n}.sqlite")
    master = os.path.join(tmp, "master.hex")
    report_path = os.path.join(tmp, f"load-{n}.json")
    answer = subprocess.Popen([devicesim, "sip", "answer", "--port", str(phone_port), "--stamp-voice", "--json", "--srtp", "off",
                               "--seconds", str(call_seconds + 120)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(1)
    operators = []
    for k in range(n):
        operators += ["--center-arg", "--operator", "--center-arg", f"sip:desk{k}@127.0.0.1:{phone_port}"]
    ramp_seconds = max(2, n // 50)
    args = [devicesim, "load", "--spawn-center", "--master-file", master, "--devices", str(n), "--transport", "udp",
            "--ramp", "200", "--alarm-rate", str(max(5, n)), "--duration", f"{call_seconds + ramp_seconds + 10}s",
            "--call-share", "1", "--call-duration", f"{call_seconds}s", "--stamp-voice", "--drain", "20s",
            "--report", report_path, "--center-journal", journal, "--quiet",
            "--center-arg", "--sip-port", "--center-arg", "0", "--center-arg", "--sip-srtp", "--center-arg", "off",
            "--center-arg", "--engage-call-rate", "--center-arg", "500",
            "--center-arg", "--auto-close-after", "--center-arg", str(call_seconds + 300)] + operators
    load = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # The window: from when the last call should be up (ramp, alarms, set-up) to before the first ends.
    pid = None
    deadline = time.time() + 60
    while pid is None and time.time() < deadline:
        time.sleep(0.5)
        pid = centre_pid(journal)
    window_start = ramp_seconds + 8
    window = max(5, call_seconds - window_start - 5)
    time.sleep(window_start)
    cpu0, t0 = (cpu_seconds(pid), time.time()) if pid else (None, None)
    time.sleep(window)
    cpu1, t1 = (cpu_seconds(pid), time.time()) if pid else (None, None)
    out, _ = load.communicate(timeout=call_seconds + 600)
    answer.send_signal(signal.SIGINT)
    phone_out, _ = answer.communicate(timeout=60)
    calls = [json.loads(l) for l in phone_out.splitlines() if l.startswith("{")]
    try:
        with open(report_path) as f:
            report = json.load(f)
    except (OSError, ValueError):
        print(out[-3000:])
        return None
    return {"n": n, "load_exit": load.returncode, "report": report, "phone_calls": calls,
            "centre_cpu": (cpu1 - cpu0) / (t1 - t0) if pid else None, "window_s": window}


def summarise(result):
    n = result["n"]
    report = result["report"]
    counts = report.get("counts", {})
    latency = report.get("latency", {})
    calls = [c for c in result["phone_calls"] if c.get("received")]
    loss_home = counts.get("voicePacketsLost", 0) / max(1, counts.get("voicePacketsReceived", 0) + counts.get("voicePacketsLost", 0))
    loss_phone = [c.get("loss_ratio", 0) for c in calls]
    jitter_phone = [c.get("jitter_ms", 0) for c in calls]
    delay_phone = [c["delay_p50_ms"] for c in calls if "delay_p50_ms" in c]
    delay_phone99 = [c["delay_p99_ms"] for c in calls if "delay_p99_ms" in c]
    def ms(metric, key):
        value = (latency.get(metric) or {}).get("percentiles", {}).get(key)
        return value / 1000 if value is not None else None
    worst_loss = max([loss_home] + loss_phone) if loss_phone else loss_home
    worst_jitter = max(filter(None, [ms("jitter", "max"), max(jitter_phone) if jitter_phone else None]), default=None)
    return {
        "calls": n, "answered": counts.get("callsAnswered"), "phone_calls_reported": len(calls),
        "held": counts.get("callsAnswered") == n and len(calls) == n and worst_loss < 0.001 and (worst_jitter or 0) < 20,
        "home_loss_ratio": loss_home, "home_jitter_ms_p50_max": (ms("jitter", "p50"), ms("jitter", "max")),
        "home_delay_ms_p50_p99_max_of_call_medians": (ms("voiceDelay", "p50"), ms("voiceDelay", "p99"), ms("voiceDelay", "max")),
        "phone_loss_max": max(loss_phone) if loss_phone else None, "phone_jitter_p99_ms": percentile(jitter_phone, 0.99),
        "phone_delay_p50_of_p50_ms": percentile(delay_phone, 0.5), "phone_delay_max_of_p99_ms": max(delay_phone99) if delay_phone99 else None,
        "centre_cpu_cores": result["centre_cpu"], "centre_cpu_per_call_percent": (result["centre_cpu"] * 100 / n) if result["centre_cpu"] else None,
        "load_exit": result["load_exit"],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("devicesim")
    parser.add_argument("--calls", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--call-seconds", type=int, default=40)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sip-bench-") as tmp:
        with open(os.path.join(tmp, "master.hex"), "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        mine, theirs = direct(options.devicesim, tmp)
        print(f"direct call (no bridge): INVITE→200 {mine.get('setup_ms', 0):.2f} ms; one-way stamped delay p50 {mine.get('delay_p50_ms', 0):.3f} / "
              f"{theirs.get('delay_p50_ms', 0):.3f} ms, p99 {mine.get('delay_p99_ms', 0):.3f} / {theirs.get('delay_p99_ms', 0):.3f} ms (caller / callee side)", flush=True)
        summaries = []
        failed = False
        for n in options.calls:
            result = run(options.devicesim, n, options.call_seconds, tmp)
            if result is None:
                print(f"{n} calls: no report")
                failed = True
                continue
            s = summarise(result)
            summaries.append(s)
            print(json.dumps(s), flush=True)
        print(json.dumps({"direct": {"caller": mine, "callee": theirs}, "bridged": summaries}))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
