#!/usr/bin/env python3
"""What the operators' web console costs and how fast it shows an alarm, measured (nothing asserted).

    tools/bench_console.py PATH/TO/devicesim [--latency-alarms 1000] [--storm-rate 2000] [--storm-seconds 60]
                           [--consoles 10] [--json OUT.json] [--only latency|storm]

(1) latency: a centre with --web-port and an automatic operator (--auto-engage-after 3s --auto-close-after 1s,
    so the queue stays short), `devicesim load` raising alarms at a moderate rate until --latency-alarms have
    been acknowledged, one headless Chromium console watching. For each case: the centre's alarm event "at"
    (its --json stream; the centre takes the alarm, journals it, then acks) to window.caseShownAt[case] (when
    the page first drew its row). p50, p99 and max over the cases matched.
(2) storm: the same centre without --json, --consoles headless Chromium consoles (each its own account and
    session, logged in from its own loopback address so the per-address login limit does not pace them) while
    `devicesim load` raises --storm-rate alarms a second for --storm-seconds. At the start, every 10 s and at
    the end: the centre's CPU (from /proc/PID/stat, % of one core over the interval) and resident memory, and
    each browser's JS heap (CDP Performance.getMetrics, JSHeapUsedSize) and number of queue rows in its DOM.

Prints a table and writes JSON (--json, default .build/console-bench.json). Not part of `make test`. Use a
release build for figures worth quoting (swift build -c release --product devicesim). Needs what
`make browser-deps` installs.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_console  # noqa: E402  (the browser, the waits)
from attack_client import free_port  # noqa: E402

PASSWORD = "bench password, not secret"


def iso_ms(stamp):
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))] if ordered else None


class Centre:
    """`devicesim center` with --web-port on loopback, its standard output in a file."""

    def __init__(self, devicesim, work, accounts, json_events):
        self.work = work
        self.journal = str(work / "center.sqlite")
        self.master = work / "master.hex"
        if not self.master.exists():
            self.master.write_text(os.urandom(32).hex())
            self.master.chmod(0o600)
        for name in accounts:
            subprocess.run([devicesim, "center", "operators", "add", name, "--role", "operator", "--language", "en",
                            "--journal", self.journal], input=PASSWORD + "\n", capture_output=True, text=True, check=True)
        self.web = free_port()
        self.out = work / "centre.out"
        arguments = [devicesim, "center", "--host", "127.0.0.1", "--port", "0", "--master-file", str(self.master),
                     "--journal", self.journal, "--web-port", str(self.web),
                     "--auto-engage-after", "3s", "--auto-close-after", "1s"] + (["--json"] if json_events else [])
        self.process = subprocess.Popen(arguments, stdin=subprocess.DEVNULL, stdout=open(self.out, "wb"),
                                        stderr=open(work / "centre.err", "wb"))
        listening = check_console.poll(lambda: self._listening(), 30)
        if not listening:
            sys.exit("the centre did not start: " + (work / "centre.err").read_text()[-2000:])
        self.tcp = listening["tcp"]
        self.base = f"http://127.0.0.1:{self.web}"

    def _listening(self):
        for line in self.out.read_text(errors="replace").splitlines()[:5]:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "listening":
                return event
        return None

    def events(self):
        for line in self.out.read_text(errors="replace").splitlines():
            try:
                yield json.loads(line)
            except ValueError:
                continue

    def cpu_seconds(self):
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self):
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def session_cookie(centre, name, source):
    """Logs in over HTTP from a loopback address of its own; the dk_session cookie's value."""
    connection = http.client.HTTPConnection("127.0.0.1", centre.web, timeout=30, source_address=(source, 0))
    connection.request("POST", "/login", urllib.parse.urlencode({"name": name, "password": PASSWORD}),
                       {"Content-Type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    response.read()
    match = re.search(r"dk_session=([^;]+)", response.getheader("Set-Cookie") or "")
    if response.status != 303 or not match:
        sys.exit(f"login of {name} from {source}: {response.status}, no session")
    return match.group(1)


def console(centre, name, source):
    driver = check_console.browser()
    driver.get(centre.base + "/login")
    driver.add_cookie({"name": "dk_session", "value": session_cookie(centre, name, source), "path": "/", "httpOnly": True})
    driver.get(centre.base + "/")
    if not check_console.console_ready(driver, name):
        sys.exit(f"{name}'s console did not load")
    driver.execute_cdp_cmd("Performance.enable", {})
    return driver


def heap_mib(driver):
    metrics = {m["name"]: m["value"] for m in driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
    return metrics.get("JSHeapUsedSize", 0) / 2**20


class StreamReader(threading.Thread):
    """A console that is not a browser: reads /api/stream as EventSource would and counts what came. The
    centre serves it exactly as a browser's stream (the same bytes, one encoding for all); only the browser's
    own cost is missing, which the browser consoles measure."""

    def __init__(self, centre, name, source):
        super().__init__(daemon=True)
        self.cookie = session_cookie(centre, name, source)
        self.centre = centre
        self.bytes = 0
        self.messages = 0
        self.stop = False

    def run(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.centre.web, timeout=30)
        connection.request("GET", "/api/stream", headers={"Cookie": f"dk_session={self.cookie}", "Accept": "text/event-stream"})
        response = connection.getresponse()
        while not self.stop:
            chunk = response.read1(65536)
            if not chunk:
                break
            self.bytes += len(chunk)
            self.messages += chunk.count(b"\n\n")
        connection.close()


def load(devicesim, centre, devices, rate, seconds, first_id, log, cancel_share):
    return subprocess.Popen([devicesim, "load", "--center", f"127.0.0.1:{centre.tcp}", "--master-file", str(centre.master),
                             "--transport", "udp", "--devices", str(devices), "--first-id", str(first_id), "--ramp", "5000",
                             "--alarm-rate", str(rate), "--duration", f"{seconds}s", "--drain", "5s", "--quiet",
                             "--cancel-share", str(cancel_share)],
                            stdin=subprocess.DEVNULL, stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def latency(devicesim, options, work):
    centre = Centre(devicesim, work, ["watcher"], json_events=True)
    driver = None
    try:
        driver = console(centre, "watcher", "127.0.0.2")
        rate = options.latency_rate
        seconds = int(options.latency_alarms / rate) + 2
        print(f"latency: {options.latency_alarms} alarms at {rate}/s from 500 devices, one console", flush=True)
        # No cancels: a case opened and cancelled within one batch never reaches a screen, and is no latency.
        runner = load(devicesim, centre, 500, rate, seconds, 1, work / "load-latency.out", 0)
        runner.wait(timeout=seconds + 120)
        alarms = {}
        cases = {}
        for event in centre.events():
            if event.get("event") == "alarm":
                alarms.setdefault((event["device"], event["alarm"]), iso_ms(event["at"]))
            elif event.get("event") == "caseUpdate" and event.get("state") == "received":
                cases.setdefault(event["case"], (event["device"], event["alarm"]))
        shown = check_console.wait_until(driver, "return window.caseShownAt", "caseShownAt", 5) or {}
        latencies, never_shown, no_alarm = [], [], []
        for case, key in sorted(cases.items())[: options.latency_alarms]:
            if str(case) not in shown:
                never_shown.append(case)
            elif key not in alarms:
                no_alarm.append(case)
            else:
                latencies.append(shown[str(case)] - alarms[key])
        return {"alarms": len(alarms), "cases": len(cases), "matched": len(latencies),
                "never_shown": never_shown[:50], "no_alarm_event": no_alarm[:50],
                "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
                "max_ms": max(latencies) if latencies else None,
                "mean_ms": statistics.fmean(latencies) if latencies else None}
    finally:
        if driver:
            driver.quit()
        centre.stop()


def storm(devicesim, options, work):
    names = [f"console{i}" for i in range(options.consoles)]
    centre = Centre(devicesim, work, names, json_events=False)
    drivers = []
    readers = []
    samples = []
    try:
        browsers = options.consoles if options.browsers is None else min(options.browsers, options.consoles)
        for i, name in enumerate(names):
            if i < browsers:
                drivers.append(console(centre, name, f"127.0.0.{i + 2}"))
            else:
                readers.append(StreamReader(centre, name, f"127.0.0.{i + 2}"))
                readers[-1].start()
        devices = max(10000, options.storm_rate * 6)
        print(f"storm: {options.storm_rate} alarms/s for {options.storm_seconds} s from {devices} devices, "
              f"{options.consoles} consoles ({len(drivers)} Chromium, {len(readers)} stream readers)", flush=True)
        runner = load(devicesim, centre, devices, options.storm_rate, options.storm_seconds, 100000, work / "load-storm.out", 0.1)
        started = time.monotonic()
        last_cpu, last_at = centre.cpu_seconds(), started

        def sample(label):
            nonlocal last_cpu, last_at
            now, cpu = time.monotonic(), centre.cpu_seconds()
            heaps, rows = [], []
            for driver in drivers:
                heaps.append(heap_mib(driver))
                rows.append(driver.execute_script("return document.querySelectorAll('#queue tr.case').length"))
            row = {"at": label, "seconds": round(now - started, 1),
                   "centre_cpu_percent": round(100 * (cpu - last_cpu) / max(now - last_at, 1e-6), 1),
                   "centre_rss_mib": round(centre.rss_mib(), 1),
                   "heap_mib": [round(h, 1) for h in heaps], "rows": rows,
                   "reader_kib": [round(r.bytes / 1024) for r in readers], "reader_messages": [r.messages for r in readers]}
            last_cpu, last_at = cpu, now
            samples.append(row)
            heap_text = f"JS heap MiB min/max {min(heaps):.1f}/{max(heaps):.1f}   rows {min(rows)}–{max(rows)}" if heaps else ""
            reader_text = f"   readers {sum(r.messages for r in readers)} messages, {sum(r.bytes for r in readers) // 1024} KiB" if readers else ""
            print(f"{label:>6} {row['seconds']:>6.1f} s  centre {row['centre_cpu_percent']:>6.1f} % CPU "
                  f"{row['centre_rss_mib']:>7.1f} MiB   {heap_text}{reader_text}", flush=True)

        sample("start")
        # The ramp (devices / 5000 s) and one second to settle come before the storm's steady phase.
        end = started + devices / 5000 + 1 + options.storm_seconds
        next_sample = started + 10
        while time.monotonic() < end and runner.poll() is None:
            time.sleep(max(0.0, min(next_sample, end) - time.monotonic()))
            if time.monotonic() >= next_sample:
                sample(f"{int(next_sample - started)}s")
                next_sample += 10
        sample("end")
        runner.wait(timeout=120)
        report = (work / "load-storm.out").read_text(errors="replace")
        return {"rate": options.storm_rate, "seconds": options.storm_seconds, "devices": devices,
                "consoles": options.consoles, "browsers": len(drivers), "readers": len(readers),
                "samples": samples, "load_tail": report.splitlines()[-30:]}
    finally:
        for reader in readers:
            reader.stop = True
        for driver in drivers:
            driver.quit()
        centre.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("devicesim")
    parser.add_argument("--latency-alarms", type=int, default=1000)
    parser.add_argument("--latency-rate", type=float, default=20)
    parser.add_argument("--storm-rate", type=int, default=2000)
    parser.add_argument("--storm-seconds", type=int, default=60)
    parser.add_argument("--consoles", type=int, default=10)
    parser.add_argument("--browsers", type=int, help="of the consoles, how many are headless Chromium (default: all); "
                        "the others read the stream as EventSource does, for a machine too small for ten browsers")
    parser.add_argument("--only", choices=["latency", "storm"])
    parser.add_argument("--json", default=".build/console-bench.json")
    options = parser.parse_args()
    devicesim = os.path.abspath(options.devicesim)
    check_console.dependencies()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {"commit": commit, "devicesim": devicesim, "date": datetime.now().astimezone().isoformat(timespec="seconds"),
              "cpus": os.cpu_count()}
    for part, function in (("latency", latency), ("storm", storm)):
        if options.only in (None, part):
            work = Path(tempfile.mkdtemp(prefix=f"console-bench-{part}-"))
            try:
                result[part] = function(devicesim, options, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    if "latency" in result:
        r = result["latency"]
        print(f"\nack → on screen over {r['matched']} cases (of {r['cases']}): p50 {r['p50_ms']:.0f} ms, "
              f"p99 {r['p99_ms']:.0f} ms, max {r['max_ms']:.0f} ms" if r["matched"] else f"\nno case matched: {r}")
    Path(options.json).parent.mkdir(parents=True, exist_ok=True)
    Path(options.json).write_text(json.dumps(result, indent=1) + "\n")
    print(f"written to {options.json}")


if __name__ == "__main__":
    main()
