#!/usr/bin/env python3
"""How many SIP calls one `devicesim load --sip-call` process holds against SIPp echoing the voice, and their
set-up time (issue 16, part 4).

For each fleet size given, starts SIPp (`tools/sip/uas_echo.xml -rtp_echo`, the ARC's voice) and runs
`devicesim load --spawn-center --sip-call … --call-share 1` with that many homes, each raising one alarm in
the first seconds and holding its call for --hold seconds; samples both processes' CPU time (/proc) every
second, and prints one JSON line a size: calls held at once, INVITE → 200 p50/p99/max, voice loss over all
calls and the share of calls above 0.1 % loss, per-call jitter p50/p99/max, both processes' CPU (a share of
one core, over the time the calls were held).

    tools/bench_sip_calls.py .build/release/devicesim 50 100 200 400

A size "holds" when every call was answered, loss stays below 0.1 % and the per-call jitter p99 below 20 ms.
"""
import json, os, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from check_sip_peers import free_port  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU time of `pid` and its threads, in seconds; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def run(devicesim, devices, hold, tmp):
    port, media = free_port(), free_port()
    sipp = subprocess.Popen(
        ["sipp", "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1", "-mp", str(media), "-t", "u1", "-nostdin",
         "-m", str(devices), "-max_socket", "60000", "-sf", os.path.join(HERE, "sip", "uas_echo.xml"), "-rtp_echo",
         "-trace_err", "-error_file", os.path.join(tmp, f"sipp-{devices}.err")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    time.sleep(0.5)
    master = os.path.join(tmp, "master.hex")
    with open(master, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    report = os.path.join(tmp, f"report-{devices}.json")
    # Alarms at five times the fleet a second for one second: every home gets one at once (an open alarm takes
    # no other), so the calls overlap for nearly all of --hold.
    load = subprocess.Popen(
        [devicesim, "load", "--spawn-center", "--master-file", master, "--devices", str(devices), "--transport", "udp",
         "--ramp", "2000", "--alarm-rate", str(devices * 5), "--duration", "1s", "--cancel-share", "0",
         "--drain", str(hold + 60), "--report", report, "--sip-call", f"sip:arc@127.0.0.1:{port}",
         "--call-share", "1", "--call-duration", f"{hold}s", "--center-arg", "--auto-close-after", "--center-arg", "600"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    samples = []  # (time, load cpu, sipp cpu)
    done = threading.Event()

    def sample():
        while not done.is_set():
            samples.append((time.time(), cpu_seconds(load.pid), cpu_seconds(sipp.pid)))
            time.sleep(1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = load.communicate(timeout=hold + 600)
    done.set()
    sampler.join()
    try:
        sipp.wait(timeout=30)
    except subprocess.TimeoutExpired:
        sipp.kill()
    with open(report) as f:
        r = json.load(f)
    c, lat = r["counts"], r["latency"]
    heard = c["sipVoicePacketsReceived"] + c["sipVoicePacketsLost"]
    bands = c.get("sipCallsByLoss", {})
    # The CPU over the calls' hold: the samples between 3 s after the start and the last one before hang-up.
    window = [s for s in samples if s[1] is not None and s[2] is not None]
    start = next((s for s in window if s[0] >= window[0][0] + 4), window[0])
    end = next((s for s in reversed(window) if s[0] <= start[0] + hold - 3), window[-1])
    span = max(end[0] - start[0], 1e-9)

    def pct(metric, key):
        return lat.get(metric, {}).get("percentiles", {}).get(key, 0) / 1000

    result = {
        "devices": devices, "hold_s": hold, "placed": c["sipCallsPlaced"], "answered": c["sipCallsAnswered"],
        "failed": c["sipCallsFailed"], "held_at_once": c["sipCallsHeldMost"],
        "setup_ms": {k: pct("sipsetup", k) for k in ("p50", "p99", "max")},
        "loss_percent": round(100 * c["sipVoicePacketsLost"] / heard, 4) if heard else None,
        "calls_above_0.1%_loss": sum(v for k, v in bands.items() if k not in ("0 %", "< 0.1 %")),
        "jitter_ms": {k: pct("sipjitter", k) for k in ("p50", "p99", "max")},
        "load_cpu_core": round((end[1] - start[1]) / span, 3), "sipp_cpu_core": round((end[2] - start[2]) / span, 3),
        "cpu_window_s": round(span, 1),
    }
    result["holds"] = (result["answered"] == devices and result["loss_percent"] is not None
                       and result["loss_percent"] < 0.1 and result["calls_above_0.1%_loss"] == 0 and result["jitter_ms"]["p99"] < 20)
    if load.returncode != 0:
        result["load_output"] = out[-1500:]
    return result


def main():
    devicesim = sys.argv[1]
    hold = int(os.environ.get("HOLD", "20"))
    for devices in [int(a) for a in sys.argv[2:]] or [50, 100, 200]:
        with tempfile.TemporaryDirectory(prefix="sip-bench-") as tmp:
            print(json.dumps(run(devicesim, devices, hold, tmp)), flush=True)


if __name__ == "__main__":
    main()
