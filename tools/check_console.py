#!/usr/bin/env python3
"""The operators' web console (docs/console.md) checked in a real browser: headless Chromium (Debian's), driven by
selenium, against a real `devicesim center --web-port` on loopback.

    tools/check_console.py .build/debug/devicesim [--screenshots DIR]

First, without a browser: the catalogue has the same keys in English and Chinese, none empty, and every key the
page, its script and the login page name; console.html has no inline script or style; console.js never sets
innerHTML. Then it makes a journal with two accounts (`devicesim center operators add`, the password piped on
stdin: alice, supervisor, English; bob, operator, Chinese) and a registry (`devicesim center registry import`)
whose notes hold HTML, starts a centre with `--web-port` and two devices:

  - 1001, a real `devicesim run` whose button is a serial button box (hardware/serial-box-protocol.md) on a
    pseudo-terminal this script holds: it writes `P` and `R` to press the button as a box would;
  - 1002, the device of tools/attack_client.py (written from protocol.md), whose sessionStart says its model is
    `<img src=x onerror=…>`.

and checks, each printed as "ok …" or "FAIL …": every route and the stream refuse a request without a session
(401, or 303 to /login for the page, and no data); a wrong password is refused; after login a press shows up in
both operators' browsers as a new case within one second of the centre's alarm event ("at", when the centre took
the alarm, before its ack) by window.caseShownAt; take, dispatch with a note and close, each seen by the other
operator's browser; the second operator's take is refused with "taken by alice" shown; a state-changing request
without the CSRF token (or from another origin) is refused 403 and changes nothing; device and registry text with
HTML shows as text; the language switch re-renders without a reload; the devices, history and admin tabs.
Screenshots of the login page, the queue and a case in both languages go to --screenshots
(default .build/console-screenshots).

Exit status 0 when every check passed, 1 with the failed checks listed otherwise, 2 when Chromium,
chromedriver, selenium or cryptography is missing (`make browser-deps` installs them). Never skips.
"""
import argparse
import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tty
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ASSETS = HERE.parent / "Sources" / "CenterConsole" / "Assets"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PASSWORDS = {"alice": "correct horse battery staple", "bob": "右手边的红色按钮 7"}
HOSTILE_MODEL = "<img src=x onerror=alert(1)>"          # 28 bytes: a model is at most 32 (protocol.md §4.2)
HOSTILE_NOTES = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script> key safe 4711'
NOTE = "Ambulance called <b>now</b>, daughter informed"

failures = []


def check(condition, what):
    print(("ok    " if condition else "FAIL  ") + what, flush=True)
    if not condition:
        failures.append(what)
    return condition


# MARK: the page's files, without a browser

def catalogue_keys_used():
    html = (ASSETS / "console.html").read_text()
    login = (ASSETS / "login.html").read_text()
    script = (ASSETS / "console.js").read_text()
    used = set(re.findall(r'data-t(?:-placeholder)?="([^"]+)"', html))
    used |= set(re.findall(r"\{\{t:([\w.]+)\}\}", login))
    used |= set(re.findall(r"\bt\('([\w.]+)'", script))
    for pair in re.findall(r"\byesNo\([^,]+, '([\w.]+)', '([\w.]+)'\)", script):
        used |= set(pair)
    used |= set(re.findall(r"\['(resident\.\w+|col\.\w+|detail\.\w+)',", script))
    # The server fills the login page's error with these keys.
    # And names these refusals, which the page says as error.code.NAME ("taken" is said with the name).
    for source in (ASSETS.parent).glob("*.swift"):
        used |= set(re.findall(r'errorKey: "([\w.]+)"', source.read_text()))
        used |= {f"error.code.{code}" for code in re.findall(r"code: \.(\w+)", source.read_text()) if code != "taken"}
    return used


def static_checks():
    catalogue = json.loads((ASSETS / "catalogue.json").read_text())
    check(set(catalogue) == {"en", "zh"}, f"catalogue: English and Chinese, nothing else ({sorted(catalogue)})")
    en, zh = catalogue.get("en", {}), catalogue.get("zh", {})
    check(set(en) == set(zh), f"catalogue: the same keys in en and zh (only en: {sorted(set(en) - set(zh))}, "
                              f"only zh: {sorted(set(zh) - set(en))})")
    empty = [f"{lang}:{key}" for lang, table in catalogue.items() for key, text in table.items() if not str(text).strip()]
    check(not empty, f"catalogue: no empty text ({empty})")
    used = catalogue_keys_used()
    missing = sorted(key for key in used if key not in en or key not in zh)
    check(len(used) > 100 and not missing, f"catalogue: every key the pages use is there ({len(used)} used, missing {missing})")
    placeholders = [key for key in en if set(re.findall(r"\{\w+\}", en[key])) != set(re.findall(r"\{\w+\}", zh.get(key, "")))]
    check(not placeholders, f"catalogue: en and zh texts take the same {{parameters}} ({placeholders})")
    # Chinese texts are Chinese: every zh text that differs from en has a CJK character (names of languages apart).
    untranslated = [key for key in zh if zh[key] == en.get(key) and re.search(r"[A-Za-z]{3}", zh[key]) and key != "language.en"]
    check(not untranslated, f"catalogue: no zh text left in English ({untranslated})")
    html = (ASSETS / "console.html").read_text()
    check(not re.search(r"<script(?![^>]*\bsrc=)", html), "console.html: no inline script")
    check(not re.search(r"<style|\sstyle=|\son\w+=", html), "console.html: no inline style or event handler attribute")
    script = (ASSETS / "console.js").read_text()
    check(not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script),
          "console.js: never innerHTML, outerHTML, insertAdjacentHTML or document.write")


# MARK: the peers

def dependencies():
    try:
        import selenium  # noqa: F401
        import cryptography  # noqa: F401
    except ImportError as error:
        print(f"{error.name} is missing: run `make browser-deps` (it makes .build/browser-venv)", file=sys.stderr)
        sys.exit(2)
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            print(f"{path} is missing: run `make browser-deps` (Debian's chromium and chromium-driver)", file=sys.stderr)
            sys.exit(2)


def browser(width=1400):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    arguments = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-proxy-server",
                 "--disable-background-networking", f"--window-size={width},900", "--lang=en-GB"]
    # Sound without a click on the page. (Headless Chromium starts an AudioContext running whatever the policy,
    # so the page's #sound-enable, for a browser that blocks sound, is not reached here.)
    arguments.append("--autoplay-policy=no-user-gesture-required")
    for argument in arguments:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Given a driver, selenium runs no Selenium Manager and downloads nothing.
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def wait_until(driver, script, what, timeout=10.0, *args):
    """Polls a JavaScript condition until it holds (an awaited condition, never a fixed sleep); its last value."""
    end = time.monotonic() + timeout
    while True:
        try:
            value = driver.execute_script(script, *args)
        except Exception as error:  # a page between two loads
            value, problem = None, f": {error.__class__.__name__}"
        else:
            problem = ""
        if value or time.monotonic() > end:
            if not value:
                print(f"      (waited {timeout:.0f} s for {what}{problem})")
            return value
        time.sleep(0.05)


def poll(condition, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    return condition()


def text(driver, selector):
    return driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", selector)


def iso_ms(stamp):
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def request(base, method, path, body=None, headers=None, cookies=None, timeout=5):
    """(status, headers, body) of one request, redirects not followed, errors as their status."""
    handlers = [NoRedirect()] + ([urllib.request.HTTPCookieProcessor(cookies)] if cookies is not None else [])
    opener = urllib.request.build_opener(*handlers)
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    try:
        with opener.open(req, timeout=timeout) as response:
            return response.status, response.headers, response.read(65536)
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read(65536)


class SerialBox:
    """A serial button box (hardware/serial-box-protocol.md) on a pseudo-terminal: the device opens the other end."""

    def __init__(self):
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        self.path = os.ttyname(self.slave)
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def send(self, line):
        with self._lock:
            os.write(self.master, line.encode() + b"\r\n")

    def heartbeats(self):
        """R and H every 5 s, as a box does, so the device never takes it as missing."""
        def beat():
            while not self._stop.is_set():
                self.send("H")
                self._stop.wait(5)
        self.send("R")
        threading.Thread(target=beat, daemon=True).start()

    def press(self, hold=0.3):
        # The physical press: held longer than the device's hold_ms (100 ms), then released.
        self.send("P")
        time.sleep(hold)
        self.send("R")

    def close(self):
        self._stop.set()
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def login(driver, base, name, password):
    from selenium.webdriver.common.by import By
    driver.get(base + "/login")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()


def console_ready(driver, name):
    return wait_until(driver, """return document.getElementById('operator-name') &&
        document.getElementById('operator-name').textContent === arguments[0] &&
        document.getElementById('connection').dataset.live === 'yes';""", f"{name}'s console to load", 15, name)


def row_state(driver, case):
    return driver.execute_script("""const r = document.querySelector('tr.case[data-case-id="' + arguments[0] + '"]');
        return r ? {state: r.dataset.state, isNew: r.classList.contains('new'), text: r.textContent} : null;""", case)


def shot(driver, directory, name):
    driver.save_screenshot(str(Path(directory) / (name + ".png")))


# MARK: the checks against a real centre

def unauthenticated(base):
    """Every route and the stream without a session: 401 (303 to /login for the page) and no data."""
    gets = ["/", "/assets/console.js", "/assets/console.css", "/assets/catalogue.json", "/api/me", "/api/stream",
            "/api/cases/1", "/api/devices?filter=all&q=", "/api/devices?filter=attention&q=", "/api/history?q=&before=9",
            "/api/operators"]
    posts = [("POST", "/logout"), ("PUT", "/api/me/language"), ("POST", "/api/cases/1/take"), ("POST", "/api/cases/1/call"),
             ("POST", "/api/cases/1/hangup"), ("POST", "/api/cases/1/dispatch"), ("POST", "/api/cases/1/close"),
             ("POST", "/api/operators"), ("POST", "/api/operators/alice/disable"), ("POST", "/api/registry")]
    refused = []
    for method, path in [("GET", p) for p in gets] + posts:
        body = None if method == "GET" else '{"language":"zh","note":"x","name":"eve","password":"x","role":"supervisor"}'
        status, headers, data = request(base, method, path, body=body, headers={"Content-Type": "application/json"})
        fine = status == 401 or (path == "/" and status == 303 and headers.get("Location", "").endswith("/login"))
        leaked = any(word in data for word in (b"event:", b'"cases"', b'"csrf"', b"caseShownAt", b'"en"', b"alice"))
        if not fine or leaked or headers.get("Set-Cookie"):
            refused.append(f"{method} {path} → {status} {data[:60]!r}")
    check(not refused, f"without a session every route and the stream are refused, no data ({len(gets) + len(posts)} "
                       f"requests; wrong: {refused})")


def csrf(base, case):
    """A state-changing request with a session but without the CSRF token, or from another origin: 403, nothing done."""
    jar = http.cookiejar.CookieJar()
    form = urllib.parse.urlencode({"name": "alice", "password": PASSWORDS["alice"]})
    status, _, _ = request(base, "POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"}, jar)
    check(status == 303 and any(c.name == "dk_session" for c in jar), f"login over HTTP: 303 with the dk_session cookie ({status})")
    status, _, data = request(base, "GET", "/api/me", cookies=jar)
    me = json.loads(data) if status == 200 else {}
    token = me.get("csrf", "")
    check(bool(token), "GET /api/me gives the CSRF token")
    attempts = [
        ("POST", "/api/operators", '{"name":"mallory","password":"p4ssword-long","role":"supervisor","language":"en"}', {}),
        ("POST", f"/api/cases/{case}/take", None, {}),
        ("PUT", "/api/me/language", '{"language":"zh"}', {}),
        ("POST", "/api/registry", "device,name\n1001,Mallory\n", {"Content-Type": "text/csv"}),
        ("POST", "/api/operators", '{"name":"mallory","password":"p4ssword-long","role":"supervisor","language":"en"}',
         {"X-CSRF-Token": "0" * len(token)}),
        ("POST", "/api/operators", '{"name":"mallory","password":"p4ssword-long","role":"supervisor","language":"en"}',
         {"X-CSRF-Token": token, "Origin": "http://evil.example"}),
        ("POST", "/logout", None, {}),
    ]
    for method, path, body, extra in attempts:
        headers = {"Content-Type": "application/json", **extra}
        status, _, _ = request(base, method, path, body, headers, jar)
        how = "a wrong token" if extra.get("X-CSRF-Token", "").startswith("000") else "another origin" if "Origin" in extra else "no token"
        check(status == 403, f"{method} {path} with {how}: 403 ({status})")
    status, _, data = request(base, "GET", "/api/operators", cookies=jar)
    check(status == 200 and b"mallory" not in data, f"…and no account was made (GET /api/operators {status})")
    status, _, data = request(base, "GET", "/api/me", cookies=jar)
    check(status == 200 and json.loads(data).get("language") == "en", "…the language did not change, the session did not end")
    status, _, data = request(base, "GET", f"/api/cases/{case}", cookies=jar)
    detail = json.loads(data) if status == 200 else {}
    check(status == 200 and detail.get("case", {}).get("takenBy") is None, f"…and the case was not taken ({detail.get('case', {}).get('takenBy')})")
    status, _, data = request(base, "GET", "/api/devices?filter=all&q=1001", cookies=jar)
    check(status == 200 and b"Mallory" not in data, "…and the registry was not changed")
    return jar, token


def run(devicesim, shots):
    sys.path.insert(0, str(HERE))
    import attack_client
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    work = Path(tempfile.mkdtemp(prefix="console-check-"))
    journal = str(work / "center.sqlite")
    processes, drivers, box = [], [], None
    try:
        for name, role, language in (("alice", "supervisor", "en"), ("bob", "operator", "zh")):
            result = subprocess.run([devicesim, "center", "operators", "add", name, "--role", role, "--language", language,
                                     "--journal", journal], input=PASSWORDS[name] + "\n", capture_output=True, text=True, timeout=60)
            check(result.returncode == 0, f"operators add {name} --role {role}, the password on stdin (exit {result.returncode} "
                                          f"{result.stderr.strip()[:200]})")
        registry = work / "registry.csv"
        registry.write_text('device,name,address,contacts,notes\n'
                            '1001,王秀英,"北京市朝阳区幸福路 12 号 3 单元 401","女儿 李娜 138 0000 0000",'
                            f'"{HOSTILE_NOTES.replace(chr(34), chr(34) * 2)}"\n'
                            '1002,<b>Harold</b> Smith,"7 Elm Road, Leeds",neighbour: 0113 496 0000,dog in the hall\n'
                            '1003,Mary Jones,"2 Mill Lane, York",,never installed\n', encoding="utf-8")
        result = subprocess.run([devicesim, "center", "registry", "import", str(registry), "--journal", journal],
                                capture_output=True, text=True, timeout=60)
        check(result.returncode == 0, f"registry import of 3 residents (exit {result.returncode} {result.stderr.strip()[:200]})")

        web = attack_client.free_port()
        centre = attack_client.Centre(devicesim, work, extra=["--web-port", str(web)], journal=journal)
        processes.append(centre.process)
        base = f"http://127.0.0.1:{web}"
        if not poll(lambda: request(base, "GET", "/login")[0] == 200, 20):
            check(False, f"the console answers on {base}/login")
            return

        # Device 1001: `devicesim run` with a serial button box on a pseudo-terminal.
        box = SerialBox()
        config = work / "device.toml"
        result = subprocess.run([devicesim, "provision", "--id", "1001", "--center", f"127.0.0.1:{centre.tcp}", "--master-file",
                                 str(work / "master.hex"), "--state-dir", str(work / "state"), "--out", str(config)],
                                capture_output=True, text=True, timeout=60)
        check(result.returncode == 0, f"provision device 1001 ({result.stderr.strip()[:200]})")
        text_ = config.read_text()
        button = f'[button]\nbackend = "serial"\ndevice = "{box.path}"\nmode = "box"\nspeed = 9600\n'
        text_ = re.sub(r'\[button\]\n(?:[^\[\n][^\n]*\n)*', button + "\n", text_)
        config.write_text(text_)
        device = subprocess.Popen([devicesim, "run", "--config", str(config)], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=open(work / "device.err", "wb"))
        processes.append(device)
        box.heartbeats()
        online = poll(lambda: attack_client.events_of(centre, "online", device=1001), 20)
        check(bool(online), "device 1001 (devicesim run, a serial button box on a pseudo-terminal) is online")

        unauthenticated(base)

        # A wrong password, over HTTP and in the browser.
        form = urllib.parse.urlencode({"name": "alice", "password": "wrong password"})
        status, headers, data = request(base, "POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"})
        check(status == 401 and not headers.get("Set-Cookie"), f"a wrong password: 401, no cookie ({status})")
        alice = browser()
        drivers.append(alice)
        alice.get(base + "/login?lang=zh")
        shot(alice, shots, "login-zh")
        check((text(alice, "#login-submit") or "") == json.loads((ASSETS / "catalogue.json").read_text())["zh"]["login.submit"],
              "the login page in Chinese (?lang=zh)")
        login(alice, base, "alice", "not her password")
        refused = wait_until(alice, "const e = document.getElementById('login-error'); return e && !e.hidden && e.textContent.trim();",
                             "the login error")
        check(bool(refused) and "/login" in alice.current_url and not alice.get_cookie("dk_session"),
              f"the browser's wrong password is refused with a message ({refused!r})")
        shot(alice, shots, "login-refused-en")

        login(alice, base, "alice", PASSWORDS["alice"])
        check(bool(console_ready(alice, "alice")), "alice (supervisor, English) is in the console, the stream live")
        check(alice.execute_script("return !document.getElementById('tab-admin').hidden"), "alice sees the admin tab")
        bob = browser(width=1300)
        drivers.append(bob)
        login(bob, base, "bob", PASSWORDS["bob"])
        check(bool(console_ready(bob, "bob")), "bob (operator, Chinese) is in the console, the stream live")
        check(bob.execute_script("return document.getElementById('tab-admin').hidden"), "bob does not see the admin tab")
        check(bob.execute_script("return document.documentElement.lang") == "zh-Hans", "bob's page is in Chinese")

        # The press: within one second of the centre's alarm event, a new case on both screens.
        seen = len(centre.all_events())
        box.press()
        alarm = poll(lambda: [e for e in centre.all_events()[seen:] if e.get("event") == "alarm" and e.get("device") == 1001], 10)
        check(bool(alarm), "the press reached the centre (its alarm event)")
        update = poll(lambda: [e for e in centre.all_events()[seen:] if e.get("event") == "caseUpdate" and e.get("device") == 1001], 10)
        case = update[0]["case"] if update else None
        if case is None:
            return
        acked = iso_ms(alarm[0]["at"])
        for driver, name in ((alice, "alice"), (bob, "bob")):
            shown = wait_until(driver, "return window.caseShownAt[arguments[0]]", f"case {case} on {name}'s screen", 10, case)
            row = row_state(driver, case) or {}
            check(bool(shown) and shown - acked <= 1000 and row.get("isNew"),
                  f"{name}: case {case} on screen as new {shown - acked if shown else float('nan'):.0f} ms after the "
                  f"centre's alarm event (at most 1000 ms)")
        row = row_state(alice, case) or {}
        check("王秀英" in row.get("text", "") and "朝阳区" in row.get("text", ""), "the row names the resident and her address")
        for driver, name in ((alice, "alice"), (bob, "bob")):
            beeps = wait_until(driver, "return window.consoleBeeps", f"{name}'s beep", 5)
            check(bool(beeps), f"{name}'s browser beeped for the new case (window.consoleBeeps {beeps})")
        shot(alice, shots, "queue-en")
        shot(bob, shots, "queue-zh")

        # HTML from the registry's notes shows as text.
        alice.find_element(By.CSS_SELECTOR, f'tr.case[data-case-id="{case}"]').click()
        notes = wait_until(alice, "const d = document.getElementById('case-resident'); return d && d.textContent.includes('key safe 4711') && d.textContent;",
                           "the resident's notes", 10)
        check(bool(notes) and HOSTILE_NOTES in notes, "the resident's notes with HTML show as text in the case")
        check(alice.execute_script("return document.querySelectorAll('#case-detail img, #case-detail script, #queue img').length === 0 && window.pwned === undefined"),
              "…no element was made from them, nothing ran")
        bob.find_element(By.CSS_SELECTOR, f'tr.case[data-case-id="{case}"]').click()
        wait_until(bob, "return document.querySelectorAll('#case-history li').length > 0", "bob's case detail", 10)

        # Take, and the second operator's take refused.
        alice.find_element(By.ID, "action-take").click()
        taken = wait_until(alice, "return document.getElementById('case-taken-by').textContent.includes('alice')", "alice's take", 10)
        check(bool(taken), "alice takes the case (#case-taken-by)")
        seen_by_bob = wait_until(bob, """const r = document.querySelector('tr.case[data-case-id="' + arguments[0] + '"]');
            return r && r.dataset.state === 'operatorEngaged' && !r.classList.contains('new') && r.textContent.includes('alice');""",
                                 "bob to see the take", 5, case)
        check(bool(seen_by_bob), "bob sees it taken by alice, no longer highlighted as new")
        shot(alice, shots, "case-en")
        bob.find_element(By.ID, "action-take").click()
        error = wait_until(bob, "const e = document.getElementById('action-error'); return !e.hidden && e.textContent;", "bob's refusal", 10)
        check(bool(error) and "alice" in error, f"bob cannot take it too: 409 shown as {error!r}")
        shot(bob, shots, "case-zh")

        # Dispatch: a note is required; then every console sees it.
        alice.find_element(By.ID, "action-dispatch").click()
        error = wait_until(alice, "const e = document.getElementById('action-error'); return !e.hidden && e.textContent;", "the note's error", 5)
        check(bool(error), f"dispatch without a note is refused on the page ({error!r})")
        alice.find_element(By.ID, "dispatch-note").send_keys(NOTE)
        alice.find_element(By.ID, "action-dispatch").click()
        dispatched = wait_until(alice, """const d = document.getElementById('case-detail');
            return d.dataset.state === 'helpDispatched' && document.getElementById('case-history').textContent.includes(arguments[0]);""",
                                "the dispatch in alice's case", 10, NOTE)
        check(bool(dispatched), "alice dispatches help with a note: the case says so, its history has the note (as text)")
        by_bob = wait_until(bob, """const r = document.querySelector('tr.case[data-case-id="' + arguments[0] + '"]');
            return r && r.dataset.state === 'helpDispatched' && document.getElementById('case-history').textContent.includes(arguments[1]);""",
                            "bob to see the dispatch", 5, case, NOTE)
        check(bool(by_bob), "bob's queue and open case detail show the dispatch and its note")

        # Another device whose model is HTML; its alarm, while the first case is open.
        hostile = attack_client.Device(centre.master, 1002, centre, transport="tcp")
        hostile_start = attack_client.session_start() + bytes([0x01, len(HOSTILE_MODEL)]) + HOSTILE_MODEL.encode()
        hostile.anchor = hostile.counter
        hostile.down = attack_client.down_key(hostile.root, hostile.anchor)
        hostile.send(hostile_start)
        accepted = hostile.wait_for(lambda m: m["type"] == "sessionAccept", 10)
        check(bool(accepted), "device 1002 (attack_client, model " + HOSTILE_MODEL + ") has a session")
        seen = len(centre.all_events())
        hostile.send(attack_client.alarm(5))
        hostile.wait_for(lambda m: m["type"] == "ack", 10)
        update = poll(lambda: [e for e in centre.all_events()[seen:] if e.get("event") == "caseUpdate" and e.get("device") == 1002], 10)
        second = update[0]["case"] if update else None
        check(bool(second) and bool(wait_until(alice, "return window.caseShownAt[arguments[0]]", "device 1002's case", 10, second)),
              "device 1002's alarm is on alice's screen")

        # Close: the case leaves both queues.
        alice.find_element(By.ID, "action-close").click()
        closed = wait_until(alice, """return document.getElementById('case-detail').dataset.state === 'closed' &&
            !document.querySelector('tr.case[data-case-id="' + arguments[0] + '"]');""", "alice's close", 10, case)
        check(bool(closed), "alice closes the case: it leaves her queue, her detail says closed")
        gone = wait_until(bob, "return !document.querySelector('tr.case[data-case-id=\"' + arguments[0] + '\"]')", "bob's queue", 5, case)
        check(bool(gone), "bob's queue no longer has it")

        # The language switch, without a reload.
        alice.execute_script("window.stillHere = true")
        Select(alice.find_element(By.ID, "language-select")).select_by_value("zh")
        zh = json.loads((ASSETS / "catalogue.json").read_text())["zh"]
        switched = wait_until(alice, "return document.getElementById('tab-queue').textContent === arguments[0] && window.stillHere",
                              "the switch to Chinese", 5, zh["tab.queue"])
        check(bool(switched), "alice switches to Chinese: the page re-renders without a reload")
        status = alice.execute_script("return fetch('/api/me').then(r => r.json()).then(me => me.language)")
        check(status == "zh", f"…and the centre keeps it (GET /api/me language {status!r})")
        if second:
            alice.find_element(By.CSS_SELECTOR, f'tr.case[data-case-id="{second}"]').click()
            wait_until(alice, "return document.getElementById('case-device').textContent.includes('1002')", "case of 1002", 10)
            model = text(alice, "#case-device") or ""
            check(HOSTILE_MODEL in model and alice.execute_script("return document.querySelectorAll('#case-detail img').length") == 0,
                  "the device's model with HTML shows as text in the case")
            row_text = (row_state(alice, second) or {}).get("text", "")
            check("<b>Harold</b> Smith" in row_text, "the resident's name with HTML shows as text in the queue")
        shot(alice, shots, "queue-and-case-zh")
        Select(alice.find_element(By.ID, "language-select")).select_by_value("en")
        wait_until(alice, "return document.documentElement.lang === 'en'", "the switch back", 5)

        # Devices.
        alice.find_element(By.ID, "tab-devices").click()
        listed = wait_until(alice, "return Array.from(document.querySelectorAll('#devices tr.device')).map(r => r.dataset.deviceId)",
                            "the devices", 10)
        check(listed and "1001" in listed and "1002" in listed, f"the devices tab lists both devices ({listed})")
        model_cell = alice.execute_script("const r = document.querySelector('#devices tr.device[data-device-id=\"1002\"]'); return r ? r.textContent : ''")
        check(HOSTILE_MODEL in model_cell and alice.execute_script("return document.querySelectorAll('#devices img').length") == 0,
              "the model with HTML shows as text in the devices table")
        Select(alice.find_element(By.ID, "devices-filter")).select_by_value("attention")
        attention = wait_until(alice, """const rows = Array.from(document.querySelectorAll('#devices tr.device'));
            return rows.length && rows.every(r => r.classList.contains('attention')) && rows.map(r => r.dataset.deviceId);""",
                               "the attention filter", 10)
        check(bool(attention) and "1003" in attention and "1001" not in attention,
              f"'needs a technician' lists the registered device never heard from, not the healthy one ({attention})")
        shot(alice, shots, "devices-en")

        # History.
        alice.find_element(By.ID, "tab-history").click()
        history = wait_until(alice, "return Array.from(document.querySelectorAll('#history tr[data-case-id]')).map(r => r.dataset.caseId)",
                             "the history", 10)
        check(history and str(case) in history, f"the history lists the closed case ({history})")

        # Admin: the registry refused whole with its bad lines, then imported; an account added and disabled.
        alice.find_element(By.ID, "tab-admin").click()
        csv_box = alice.find_element(By.ID, "registry-csv")
        csv_box.send_keys("device,name\n1003,Ada\nnot-a-number,Bea\n")
        alice.find_element(By.ID, "registry-import").click()
        result = wait_until(alice, "const r = document.getElementById('registry-result'); return r.querySelector('.error') && r.textContent;",
                            "the registry's refusal", 10)
        check(bool(result) and "line 3:" in result, f"a CSV with a bad line is refused, its line named ({result!r})")
        csv_box.clear()
        csv_box.send_keys("device,name\n1003,Ada Lovelace\n")
        alice.find_element(By.ID, "registry-import").click()
        result = wait_until(alice, "const r = document.getElementById('registry-result'); return r.querySelector('.ok') && r.textContent;",
                            "the import", 10)
        check(bool(result) and "Imported 1 " in result, f"a good CSV is imported ({result!r})")
        names = wait_until(alice, "return Array.from(document.querySelectorAll('#operators tbody tr')).map(r => r.dataset.name)", "accounts", 10)
        check(names and "alice" in names and "bob" in names, f"the accounts table ({names})")
        alice.find_element(By.ID, "new-operator-name").send_keys("carol")
        alice.find_element(By.ID, "new-operator-password").send_keys("a long enough password")
        alice.find_element(By.ID, "new-operator-add").click()
        added = wait_until(alice, "return Array.from(document.querySelectorAll('#operators tbody tr')).some(r => r.dataset.name === 'carol')",
                           "carol", 10)
        check(bool(added), "alice adds an account (carol)")
        if added:
            alice.find_element(By.CSS_SELECTOR, '#operators tr[data-name="carol"] button.disable').click()
            disabled = wait_until(alice, """const r = document.querySelector('#operators tr[data-name="carol"]');
                return r && !r.querySelector('button.disable');""", "carol disabled", 10)
            check(bool(disabled), "…and disables it")
        shot(alice, shots, "admin-en")

        # CSRF over HTTP, with a session of its own.
        csrf(base, second or case)

        for driver, name in ((alice, "alice"), (bob, "bob")):
            try:
                driver.switch_to.alert
                check(False, f"{name}: no alert() ran")
            except NoAlertPresentException:
                pass
            severe = [e["message"] for e in driver.get_log("browser")
                      if e["level"] == "SEVERE" and "favicon" not in e["message"] and "/login" not in e["message"]
                      and " 409 " not in e["message"] and not ("/api/registry" in e["message"] and " 400 " in e["message"])]
            check(not severe, f"{name}'s browser logged no error ({severe[:3]})")
        # A console that gets no animation frames (a hidden tab) still applies the stream: bob's page loses
        # requestAnimationFrame, then a second press on device 1001.
        bob.execute_script("window.requestAnimationFrame = () => 0")
        seen = len(centre.all_events())
        box.press()
        update = poll(lambda: [e for e in centre.all_events()[seen:] if e.get("event") == "caseUpdate" and e.get("device") == 1001], 10)
        third = update[0]["case"] if update else None
        drawn = third and wait_until(bob, "return window.caseShownAt[arguments[0]]", "the case without animation frames", 10, third)
        check(bool(drawn), f"without animation frames (a hidden tab) bob's queue still shows the next case ({third})")

        cookie = (bob.get_cookie("dk_session") or {}).get("value", "")
        bob.find_element(By.ID, "logout").click()
        check(bool(wait_until(bob, "return location.pathname === '/login'", "the logout", 10)), "bob signs out: back at /login")
        status, _, _ = request(base, "GET", "/api/me", headers={"Cookie": f"dk_session={cookie}"})
        check(bool(cookie) and status == 401, f"…and his session is over (GET /api/me with his old cookie: {status})")
    finally:
        for driver in drivers:
            try:
                driver.quit()
            except Exception:
                pass
        if box:
            box.close()
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        if failures:
            for name in ("centre.err", "device.err"):
                path = work / name
                if path.exists():
                    print(f"--- last lines of {name}:\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:]))
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("devicesim", help="the devicesim binary to check")
    parser.add_argument("--screenshots", default=".build/console-screenshots", help="where the screenshots go")
    options = parser.parse_args()
    devicesim = os.path.abspath(options.devicesim)
    if not os.access(devicesim, os.X_OK):
        sys.exit(f"{devicesim} is not an executable: build it first (swift build --product devicesim)")
    started = time.monotonic()
    static_checks()
    dependencies()
    shots = os.path.abspath(options.screenshots)
    os.makedirs(shots, exist_ok=True)
    try:
        run(devicesim, shots)
    except Exception as error:  # a page that is not what the check expects: a failure, not a crash
        check(False, f"the check stopped: {error.__class__.__name__}: {str(error).splitlines()[0] if str(error) else ''}")
    print(f"{len(failures)} failed checks in {time.monotonic() - started:.1f} s; screenshots in {shots}")
    if failures:
        print("failed:\n  " + "\n  ".join(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
