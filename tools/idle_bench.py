#!/usr/bin/env python3
"""The idle device's footprint: `devicesim run` connected to a `devicesim center` and doing nothing but its
heartbeats, as docs/benchmarks.md ("The idle device") reports it.

Provisions a device from a fresh fleet master key (the simulated button), starts a centre on a port it chooses
itself and the device against it, then samples the device's `/proc` after `--settle` seconds and again
`--hold` seconds later: resident memory (`VmRSS`, of it `RssAnon` and `RssFile`), the mappings that hold it
(`/proc/PID/smaps`, summed by file), page faults, and the CPU time spent while holding. Also the binary's size
and the wall time of `devicesim --version` (median of 20). Prints one JSON object:

    tools/idle_bench.py --binary .build/release/devicesim [--transport tcp|udp] [--settle 20] [--hold 60]
"""
import argparse, contextlib, json, os, signal, statistics, subprocess, sys, tempfile, time

TICK = os.sysconf("SC_CLK_TCK")


def status(pid):
    """VmRSS, RssAnon, RssFile in bytes."""
    wanted = {"VmRSS", "RssAnon", "RssFile"}
    found = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in wanted:
                found[key] = int(rest.split()[0]) * 1024
    return found


def stat(pid):
    """Minor and major faults, CPU seconds (user + system)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return {"minflt": int(fields[7]), "majflt": int(fields[9]), "cpu_s": (int(fields[11]) + int(fields[12])) / TICK}


def resident_by_file(pid):
    """Resident bytes of each mapped file (anonymous mappings under "[anon]"), largest first."""
    totals, name = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and ":" not in parts[0]:
                name = os.path.basename(parts[5]) if len(parts) > 5 and parts[5].startswith("/") else (parts[5] if len(parts) > 5 else "[anon]")
            elif parts[0] == "Rss:":
                totals[name] = totals.get(name, 0) + int(parts[1]) * 1024
    return dict(sorted(((k, v) for k, v in totals.items() if v > 0), key=lambda kv: -kv[1]))


def start_time(binary):
    times = []
    for _ in range(20):
        t = time.perf_counter()
        subprocess.run([binary, "--version"], stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000, 1), round(min(times) * 1000, 1)


@contextlib.contextmanager
def running_device(binary, transport, directory, wrapper=()):
    """A `devicesim center` on a port of its choosing and a device provisioned against it, started as
    `wrapper + [binary, "run", ...]` (for example under valgrind); yields the device's `Popen` and its log
    file, and stops both at the end."""
    master = os.path.join(directory, "master.hex")
    with open(master, "w") as f:
        f.write(os.urandom(32).hex())
    log = open(os.path.join(directory, "centre.log"), "w+")
    centre = subprocess.Popen(
        [binary, "center", "--host", "127.0.0.1", "--port", "0", "--master-file", master,
         "--journal", os.path.join(directory, "journal.sqlite"), "--log-level", "notice"],
        stdout=subprocess.PIPE, stderr=log, text=True)
    device = None
    try:
        line = centre.stdout.readline()
        if not line:
            log.seek(0)
            raise SystemExit(f"the centre did not start; its log:\n{log.read()[-4000:]}")
        port = json.loads(line)[transport]
        config = os.path.join(directory, "device.toml")
        subprocess.run(
            [binary, "provision", "--id", "5", "--center", f"127.0.0.1:{port}", "--master-file", master,
             "--out", config, "--state-dir", os.path.join(directory, "state")],
            check=True, stdout=subprocess.DEVNULL)
        if transport == "udp":
            with open(config) as f:
                text = f.read()
            with open(config, "w") as f:
                f.write(text.replace('transport = "tcp"', 'transport = "udp"'))
        device_log = open(os.path.join(directory, "device.log"), "w+")
        device = subprocess.Popen([*wrapper, binary, "run", "--config", config], stdout=device_log, stderr=device_log)
        yield device, device_log
    finally:
        if device and device.poll() is None:
            device.send_signal(signal.SIGTERM)
            device.wait(timeout=60)
        centre.send_signal(signal.SIGTERM)
        centre.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=".build/release/devicesim")
    parser.add_argument("--transport", choices=["tcp", "udp"], default="tcp")
    parser.add_argument("--settle", type=float, default=20, help="seconds from the device's start to the first sample")
    parser.add_argument("--hold", type=float, default=60, help="seconds from the first sample to the second")
    parser.add_argument("--save-smaps", metavar="FILE", help="also write the device's /proc/PID/smaps at the end to FILE")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    with tempfile.TemporaryDirectory() as directory, running_device(binary, args.transport, directory) as (device, device_log):
        time.sleep(args.settle)
        if device.poll() is not None:
            device_log.seek(0)
            raise SystemExit(f"the device stopped (exit {device.returncode}); its log:\n{device_log.read()[-4000:]}")
        first, first_stat = status(device.pid), stat(device.pid)
        time.sleep(args.hold)
        second, second_stat, files = status(device.pid), stat(device.pid), resident_by_file(device.pid)
        if args.save_smaps:
            with open(f"/proc/{device.pid}/smaps") as f, open(args.save_smaps, "w") as out:
                out.write(f.read())
        device_log.seek(0)
        connected = "session" in device_log.read()
    median, fastest = start_time(binary)
    print(json.dumps({
        "binary": args.binary, "binary_bytes": os.path.getsize(binary), "transport": args.transport,
        "connected": connected,
        "at_settle": first, "after_hold": second,
        "faults_at_settle": {k: first_stat[k] for k in ("minflt", "majflt")},
        "faults_while_holding": {k: second_stat[k] - first_stat[k] for k in ("minflt", "majflt")},
        "cpu_ticks_while_holding": round((second_stat["cpu_s"] - first_stat["cpu_s"]) * TICK),
        "resident_by_file": {k: v for k, v in list(files.items())[:12]},
        "version_ms_median": median, "version_ms_min": fastest,
    }, indent=1))


if __name__ == "__main__":
    main()
