#!/usr/bin/env python3
"""The load tester's HTML pages checked in a real browser: headless Chromium (Debian's), driven by selenium.

    tools/check_report_html.py .build/debug/devicesim

Makes three pages with the devicesim given, each as a user would:
  - a run against a centre the tool starts and crashes (`load --spawn-center --restart-center 1`), objectives met;
  - a run against nothing (a closed port), whose latency objective must fail;
  - `load compare` of the first run's JSON with a second run's.
Then opens each in Chromium with every network route closed (no proxy, every host name unresolvable, the
page's own network emulated offline) and checks, after the page has rendered, that the PASS/FAIL banner
says what it must, that the plots are SVG with lines of non-zero size, that the tables are there with rows,
that the page asked the network for nothing, and that the .hgrm and CSV links carry HdrHistogram's format
and the seconds. Screenshots go to .build/report-check/ for a person to look at.

Exit status 0 when every check passed, 1 with the failed checks listed otherwise, 2 when Chromium,
chromedriver or selenium is missing (`make browser-deps` installs them). Never skips.
"""
import base64
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MASTER = "5a" * 32

failures = []


def check(condition, what):
    print(("ok    " if condition else "FAIL  ") + what)
    if not condition:
        failures.append(what)


def run(devicesim, args, expect_status):
    started = time.monotonic()
    result = subprocess.run([devicesim] + args, capture_output=True, text=True, timeout=120)
    print(f"ran   devicesim {' '.join(args)} → exit {result.returncode} in {time.monotonic() - started:.1f} s")
    if result.returncode != expect_status:
        sys.exit(f"devicesim {' '.join(args)} exited {result.returncode}, not {expect_status}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def closed_port():
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        print("selenium is missing: run `make browser-deps` (it makes .build/browser-venv)", file=sys.stderr)
        sys.exit(2)
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            print(f"{path} is missing: run `make browser-deps` (Debian's chromium and chromium-driver)", file=sys.stderr)
            sys.exit(2)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-proxy-server",
                     "--host-resolver-rules=MAP * ~NOTFOUND", "--disable-background-networking", "--window-size=1100,900"):
        options.add_argument(argument)
    # Given a driver, selenium runs no Selenium Manager and downloads nothing.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
    return driver


def rendered_svgs(driver):
    """Each SVG's rendered size and the number of plotted lines with at least two points in it."""
    return driver.execute_script("""
        return Array.from(document.querySelectorAll('svg')).map(svg => {
            const box = svg.getBoundingClientRect();
            const lines = Array.from(svg.querySelectorAll('polyline.series')).filter(l => {
                const b = l.getBBox(); return l.points.numberOfItems >= 2 && (b.width > 0 || b.height > 0);
            });
            return {width: box.width, height: box.height, lines: lines.length, bands: svg.querySelectorAll('rect.band').length};
        });""")


def table_rows(driver, selector):
    return driver.execute_script(f"const t = document.querySelector({selector!r}); return t ? t.rows.length : -1;")


def text_of(driver, selector):
    return driver.execute_script(f"const e = document.querySelector({selector!r}); return e ? e.innerText : null;")


def open_page(driver, path, shots, name):
    driver.get("file://" + os.path.abspath(path))
    state = driver.execute_script("return document.readyState")
    check(state == "complete", f"{name}: the page loaded ({state})")
    fetched = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    check(fetched == [], f"{name}: nothing fetched from anywhere ({fetched})")
    outside = driver.execute_script("""
        return Array.from(document.querySelectorAll('[src],[href],link,script[src]'))
            .map(e => e.getAttribute('src') || e.getAttribute('href') || '')
            .filter(u => /^(https?:|\\/\\/)/i.test(u));""")
    check(outside == [], f"{name}: no link or source outside the page ({outside})")
    driver.save_screenshot(os.path.join(shots, name + ".png"))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: tools/check_report_html.py PATH/TO/devicesim")
    devicesim = os.path.abspath(sys.argv[1])
    if not os.access(devicesim, os.X_OK):
        sys.exit(f"{devicesim} is not an executable: build it first (swift build --product devicesim)")
    shots = os.path.abspath(".build/report-check")
    os.makedirs(shots, exist_ok=True)
    work = tempfile.mkdtemp(prefix="report-check-")
    started = time.monotonic()
    try:
        key = os.path.join(work, "master.hex")
        with open(key, "w") as f:
            f.write(MASTER)
        os.chmod(key, 0o600)
        common = ["--master-file", key, "--transport", "udp", "--alarm-rate", "20", "--heartbeat-interval", "1s", "--drain", "100", "--quiet"]
        run(devicesim, ["load", "--spawn-center", "--devices", "60", "--duration", "3", "--restart-center", "1"] + common
            + ["--report", f"{work}/a.json", "--html", f"{work}/a.html", "--slo", "alarm.p99<30s", "--slo", "lost==0"], 0)
        run(devicesim, ["load", "--spawn-center", "--devices", "40", "--duration", "2"] + common + ["--report", f"{work}/b.json"], 0)
        run(devicesim, ["load", "--center", f"127.0.0.1:{closed_port()}", "--master-file", key, "--devices", "5", "--duration", "1",
                        "--drain", "0", "--quiet", "--html", f"{work}/nothing.html", "--slo", "alarm.p99<1ms"], 1)
        run(devicesim, ["load", "compare", f"{work}/a.json", f"{work}/b.json", "--html", f"{work}/compare.html"], 0)

        driver = browser()
        try:
            open_page(driver, f"{work}/a.html", shots, "run")
            banner = text_of(driver, "#verdict") or ""
            check(banner.startswith("PASS"), f"run: the banner says PASS ({banner[:60]!r})")
            check("alarm.p99<30s" in banner and "lost==0" in banner, "run: the banner lists each objective")
            check("centre journal" in banner, "run: the banner has the centre's journal check")
            svgs = rendered_svgs(driver)
            # Alarms, online, sessions, errors, latency over time; percentile plots of alarm, session, heartbeat, engaged.
            check(len(svgs) >= 9, f"run: at least 9 plots ({len(svgs)})")
            check(all(s["width"] > 300 and s["height"] > 100 for s in svgs), "run: every plot is drawn at its size")
            check(all(s["lines"] >= 1 for s in svgs), f"run: every plot has a line of two points or more ({[s['lines'] for s in svgs]})")
            check(all(s["bands"] >= 3 for s in svgs[:5]), f"run: the plots over time show the ramp, phase and drain bands ({[s['bands'] for s in svgs[:5]]})")
            for table, least in (("#metadata", 10), ("#latency", 7), ("#counts", 15), ("#phases", 3)):
                rows = table_rows(driver, table)
                check(rows >= least, f"run: table {table} has {least} rows or more ({rows})")
            metadata = text_of(driver, "#metadata") or ""
            check("git commit" in metadata and "host" in metadata and "load --spawn-center" in metadata, "run: the metadata names the commit, host and command")
            check(MASTER not in driver.page_source, "run: the master key is nowhere in the page")
            empty = driver.execute_script("return Array.from(document.querySelectorAll('#latency td.empty')).map(e => e.innerText)")
            check(any("declined" in e for e in empty), f"run: empty rows say why ({empty})")
            links = driver.execute_script("return Array.from(document.querySelectorAll('#downloads a')).map(a => [a.download, a.href])")
            names = [name for name, _ in links]
            check("alarm.hgrm" in names and "seconds.csv" in names, f"run: .hgrm and CSV links ({names})")
            for name, href in links:
                text = base64.b64decode(href.split(",", 1)[1]).decode()
                if name.endswith(".hgrm"):
                    check(text.startswith("       Value     Percentile TotalCount 1/(1-Percentile)\n\n") and "#[Mean    =" in text
                          and "#[Buckets =" in text, f"run: {name} is HdrHistogram's percentile format")
                else:
                    check(text.startswith("second,phase,alarms_raised,alarms_sent,alarms_acknowledged,"), f"run: {name} is the seconds' CSV")

            open_page(driver, f"{work}/nothing.html", shots, "nothing")
            banner = text_of(driver, "#verdict") or ""
            check(banner.startswith("FAIL") and "MISSED" in banner and "nothing measured" in banner,
                  f"nothing: the banner says FAIL and why ({banner[:120]!r})")
            failures_table = text_of(driver, "#failures") or ""
            check("connection refused" in failures_table, "nothing: the failures table gives the reason")
            check(table_rows(driver, "#failures") >= 2, "nothing: the failures table has a row")

            open_page(driver, f"{work}/compare.html", shots, "compare")
            check((text_of(driver, "#verdict") or "").startswith("Compared with"), "compare: the summary is at the top")
            svgs = rendered_svgs(driver)
            check(len(svgs) >= 3 and all(s["lines"] == 2 for s in svgs), f"compare: each percentile plot overlays both runs ({[s['lines'] for s in svgs]})")
            tables = driver.execute_script("return Array.from(document.querySelectorAll('table.compare')).map(t => t.rows.length)")
            check(len(tables) >= 3 and all(rows == 3 for rows in tables), f"compare: a table per latency with both runs ({tables})")
            check(table_rows(driver, "#runs") == 3, "compare: the runs' context table")
        finally:
            driver.quit()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(failures)} failed checks in {time.monotonic() - started:.1f} s; screenshots in {shots}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
