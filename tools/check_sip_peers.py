#!/usr/bin/env python3
"""Our SIP user agent (`devicesim sip call|answer`) against SIPp, a SIP tester no one here wrote, and tshark
(Wireshark's dissectors) reading the RTP on the wire (issue 16).

SIPp as the operator's phone (UAS), we call it, over UDP and TCP:
- its built-in `uas` scenario with -rtp_echo: set-up, voice both ways (tshark: two RTP streams, 0 lost), our BYE;
- `uas_busy.xml`: 486 Busy Here, and the ACK our INVITE client transaction owes;
- `uas_ring_cancel.xml`: it rings forever; we CANCEL, it answers 200 and 487, we ACK;
- `uas_auth.xml`: a 401 digest challenge (MD5, qop=auth) that SIPp verifies (`verifyauth`).
SIPp as the caller (UAC), we answer, over UDP and TCP:
- its built-in `uac` scenario with -rtp_echo: set-up, voice, its BYE;
- `uac_cancel.xml`: it cancels while we ring; `uac_busy.xml`: we refuse with 486.
Garbage, truncated and oversized SIP at the centre's SIP port (UDP and TCP): answered 400 when it can be
addressed, else dropped; the centre stays up (OPTIONS answered 200) and its resident memory flat.
The centre's bridge (`center --operator`), SIPp's `uas` with -rtp_echo as the operator's phone, a home from
`devicesim load` that answers the centre's call: the home's voice goes to the phone and comes back through
the bridge; tshark sees the four RTP streams (home ↔ centre SRTP, centre ↔ phone RTP), none with a loss.
Homes that call out over SIP (`devicesim load --sip-call`, the firmware's `[voice] sip`): 20 homes raise an
alarm each and, once it is acknowledged, call SIPp's `uas_echo.xml` with -rtp_echo (the ARC's voice): SIPp
counts 20 successful calls, the load report 20 answered with their voice back and none lost.

    python3 tools/check_sip_peers.py .build/debug/devicesim

Prints one line per check and exits 1 if any failed.
"""
import json, os, re, socket, subprocess, sys, tempfile, time
from checklib import Tally, free_port

DEVICESIM = sys.argv[1] if len(sys.argv) > 1 else ".build/debug/devicesim"
HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, "sip")
TALLY = Tally(detail_limit=1500)


check = TALLY.check




def sipp(args, port, transport, tmp, name):
    """Starts SIPp on `port` (SIP) with its media port next to it; returns the process."""
    media = free_port()
    cmd = ["sipp", "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1", "-mp", str(media),
           "-t", "t1" if transport == "tcp" else "u1", "-m", "1", "-nostdin",
           "-trace_err", "-error_file", os.path.join(tmp, name + ".err"),
           "-trace_screen", "-screen_file", os.path.join(tmp, name + ".screen")] + args
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp), media


def sipp_result(process, tmp, name, timeout=40):
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
        return None, out.decode(errors="replace") + "(timed out)"
    detail = out.decode(errors="replace")
    for suffix in (".err", ".screen"):
        path = os.path.join(tmp, name + suffix)
        if os.path.exists(path):
            with open(path, errors="replace") as f:
                detail += "\n" + f.read()[-2500:]
    return process.returncode, detail


def our_call(uri, transport, extra=(), seconds=3):
    cmd = [DEVICESIM, "sip", "call", uri, "--json", "--transport", transport, "--seconds", str(seconds)] + list(extra)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    report = None
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            report = json.loads(line)
    return p.returncode, report, p.stdout + p.stderr


def capture(tmp, name):
    """tshark on loopback, UDP only, until stopped; returns (process, path)."""
    path = os.path.join(tmp, name + ".pcapng")
    p = subprocess.Popen(["tshark", "-q", "-i", "lo", "-f", "udp", "-w", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # tshark prints "Capturing on 'Loopback: lo'" once it listens.
    deadline = time.time() + 15
    line = b""
    while time.time() < deadline and b"Capturing" not in line:
        line = p.stderr.readline()
        if not line:
            break
    return p, path


def rtp_streams(path):
    """tshark's RTP stream analysis of a capture: [(src port, dst port, packets, lost)]."""
    time.sleep(0.5)
    out = subprocess.run(["tshark", "-r", path, "-o", "rtp.heuristic_rtp:TRUE", "-q", "-z", "rtp,streams"],
                         capture_output=True, text=True, timeout=60).stdout
    streams = []
    for line in out.splitlines():
        # "0.002734 2.002835 127.0.0.1 16002 127.0.0.1 52552 0xB09619F0 g711U 101 0 (0.0%) ..."
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+(\S+)\s+(\d+)\s+(\S+)\s+(\d+)\s+(0x[0-9A-Fa-f]+)\s+(.*?)\s+(\d+)\s+(-?\d+)\s+\(", line)
        if m:
            streams.append((int(m.group(2)), int(m.group(4)), int(m.group(7)), int(m.group(8)), m.group(6)))
    return streams, out


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def options_request(branch, call_id, extra=""):
    return (f"OPTIONS sip:centre@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{branch}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:x@127.0.0.1>;tag=a{branch}\r\nTo: <sip:centre@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n{extra}Content-Length: 0\r\n\r\n").encode()


def garbage(tmp):
    """Garbage at the centre's SIP port: 400 or silence, never a crash, memory flat."""
    import random
    rng = random.Random(16)
    master = os.path.join(tmp, "garbage-master.hex")
    with open(master, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    sip_port = free_port()
    centre = subprocess.Popen([DEVICESIM, "center", "--port", "0", "--master-file", master, "--journal", os.path.join(tmp, "garbage.sqlite"),
                               "--operator", "sip:desk@127.0.0.1:9", "--sip-port", str(sip_port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.settimeout(5)

        def alive(tag):
            udp.sendto(options_request(tag, "alive-" + tag), ("127.0.0.1", sip_port))
            try:
                while True:
                    data, _ = udp.recvfrom(70000)
                    if b"alive-" + tag.encode() in data:
                        return data.startswith(b"SIP/2.0 200")
            except socket.timeout:
                return False

        deadline = time.time() + 30
        up = False
        while time.time() < deadline and not up:
            time.sleep(0.3)
            up = alive("first")
        check(up, "garbage: the centre's SIP port answers OPTIONS with 200")
        if not up:
            return
        valid = options_request("valid", "valid-1")
        invite = (b"INVITE sip:centre@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKinv\r\nMax-Forwards: 70\r\n"
                  b"From: <sip:x@127.0.0.1>;tag=1\r\nTo: <sip:centre@127.0.0.1>\r\nCall-ID: inv-1\r\nCSeq: 1 INVITE\r\n"
                  b"Content-Type: application/sdp\r\nContent-Length: 500\r\n\r\nv=0\r\n")

        def one(i):
            kind = i % 6
            if kind == 0:
                return os.urandom(rng.randint(0, 1400))
            if kind == 1:
                return valid[: rng.randint(0, len(valid) - 1)]  # truncated
            if kind == 2:
                return invite  # Content-Length larger than the body
            if kind == 3:
                return options_request(f"mf{i}", f"bad-{i}", extra="Max-Forwards: lots\r\n")  # addressable, malformed
            if kind == 4:
                return valid.replace(b"Content-Length: 0", b"X-Pad: " + b"A" * 60000 + b"\r\nContent-Length: 0")  # oversized
            data = bytearray(valid)
            for _ in range(8):
                data[rng.randrange(len(data))] = rng.randrange(256)
            return bytes(data)

        # Warm-up, then the measured flood.
        udp.setblocking(False)
        for i in range(3000):
            try:
                udp.sendto(one(i), ("127.0.0.1", sip_port))
            except (BlockingIOError, OSError):
                pass
        time.sleep(1)
        before = rss_kib(centre.pid)
        answers_400 = 0
        for i in range(3000, 33000):
            try:
                udp.sendto(one(i), ("127.0.0.1", sip_port))
            except (BlockingIOError, OSError):
                time.sleep(0.001)
            if i % 200 == 0:
                time.sleep(0.002)
                try:
                    while True:
                        data, _ = udp.recvfrom(70000)
                        if data.startswith(b"SIP/2.0 400"):
                            answers_400 += 1
                except (BlockingIOError, OSError):
                    pass
        # TCP: garbage, a header section that never ends, a body shorter than its length; each connection closed.
        closed = 0
        for payload in (os.urandom(3000), b"OPTIONS sip:c@127.0.0.1 SIP/2.0\r\n" + b"X: " + b"A" * 20000, invite + b"\r\n\r\n" + b"Z" * 70000):
            conn = socket.create_connection(("127.0.0.1", sip_port), timeout=5)
            try:
                conn.sendall(payload)
                conn.settimeout(20)  # a message left incomplete is closed after 10 s
                while conn.recv(65536):
                    pass
                closed += 1
            except (ConnectionResetError, BrokenPipeError):
                closed += 1
            except socket.timeout:
                pass
            finally:
                conn.close()
        time.sleep(1)
        after = rss_kib(centre.pid)
        udp.settimeout(5)
        udp.setblocking(True)
        udp.settimeout(5)
        check(centre.poll() is None and alive("after"), "garbage: after 33,000 bad datagrams and 3 bad TCP streams the centre still answers OPTIONS 200")
        check(answers_400 > 0, f"garbage: addressable malformed requests were answered 400 ({answers_400} read back)")
        check(closed == 3, f"garbage: the TCP streams that cannot be framed were closed ({closed} of 3)")
        check(after - before < 4096, f"garbage: resident memory flat over 30,000 datagrams ({before} KiB before, {after} KiB after)")
    finally:
        centre.terminate()
        try:
            centre.wait(timeout=20)
        except subprocess.TimeoutExpired:
            centre.kill()


def bridge(tmp):
    """The centre bridges SIPp (the operator's phone, echoing) and a load-tool home (issue 16, part 2)."""
    master = os.path.join(tmp, "master.hex")
    with open(master, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    phone_port = free_port()
    tshark, pcap = capture(tmp, "bridge")
    peer, media = sipp(["-sn", "uas", "-rtp_echo"], phone_port, "udp", tmp, "bridge-uas")
    time.sleep(0.5)
    report_path = os.path.join(tmp, "bridge.json")
    args = [DEVICESIM, "load", "--spawn-center", "--master-file", master, "--devices", "1", "--transport", "udp",
            "--alarm-rate", "5", "--duration", "8s", "--call-share", "1", "--call-duration", "5s", "--drain", "10s",
            "--report", report_path,
            "--center-arg", "--operator", "--center-arg", f"sip:desk1@127.0.0.1:{phone_port}",
            "--center-arg", "--sip-port", "--center-arg", "0",
            "--center-arg", "--auto-close-after", "--center-arg", "30"]
    load = subprocess.run(args, capture_output=True, text=True, timeout=180)
    sipp_code, detail = sipp_result(peer, tmp, "bridge-uas", timeout=30)
    tshark.terminate()
    tshark.wait(timeout=10)
    check(load.returncode == 0, "bridge: the load run with the centre bridging to SIPp ended well", load.stdout[-2000:] + load.stderr[-2000:])
    check(sipp_code == 0, "bridge: SIPp (the operator's phone) was called, answered, and got the centre's BYE when the home hung up", detail)
    try:
        with open(report_path) as f:
            report = json.load(f)
    except (OSError, ValueError) as error:
        check(False, "bridge: the load report", error)
        return
    calls = report.get("counts", report)
    answered = calls.get("callsAnswered", 0)
    received = calls.get("voicePacketsReceived", 0)
    lost = calls.get("voicePacketsLost", -1)
    check(answered >= 1 and received >= 100 and lost == 0,
          f"bridge: the home heard its own voice back through the bridge and SIPp's echo: {received} packets, {lost} lost", calls)
    streams, analysis = rtp_streams(pcap)
    phone_leg = [s for s in streams if media in (s[0], s[1])]
    home_leg = [s for s in streams if media not in (s[0], s[1])]
    check(len(phone_leg) == 2 and len(home_leg) >= 2 and all(s[3] == 0 and s[2] >= 100 for s in phone_leg + home_leg),
          f"bridge: tshark sees both legs' RTP, each way, none lost: phone {[(s[2], s[3]) for s in phone_leg]}, home {[(s[2], s[3]) for s in home_leg]}",
          analysis)


def homes_call_out(tmp, devices=20):
    """`devicesim load --sip-call`: each home calls SIPp after its alarm's ack (issue 16, parts 3 and 4)."""
    master = os.path.join(tmp, "master-out.hex")
    with open(master, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    port, media = free_port(), free_port()
    name = "homes-out"
    cmd = ["sipp", "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1", "-mp", str(media), "-t", "u1",
           "-m", str(devices), "-nostdin", "-trace_err", "-error_file", os.path.join(tmp, name + ".err"),
           "-trace_screen", "-screen_file", os.path.join(tmp, name + ".screen"),
           "-sf", os.path.join(SCENARIOS, "uas_echo.xml"), "-rtp_echo"]
    peer = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp)
    time.sleep(0.5)
    report_path = os.path.join(tmp, name + ".json")
    # Forty alarms a second for 4 s: every home gets one (an open alarm takes no other), so each home calls once.
    # Each event loop of the load tool runs its own part of the homes and its own part of the Poisson arrivals:
    # with 2 loops, 10 homes and a mean of 80 arrivals each. At ten a second (a mean of 20 for 10 homes) one
    # loop in about 200 drew fewer arrivals than it had homes, and a home never called (CI: 18 of 20).
    args = [DEVICESIM, "load", "--spawn-center", "--master-file", master, "--devices", str(devices), "--transport", "udp",
            "--alarm-rate", "40", "--duration", "4s", "--cancel-share", "0", "--drain", "30s", "--report", report_path,
            "--sip-call", f"sip:arc@127.0.0.1:{port}", "--call-share", "1", "--call-duration", "5s",
            "--center-arg", "--auto-close-after", "--center-arg", "60"]
    load = subprocess.run(args, capture_output=True, text=True, timeout=180)
    sipp_code, detail = sipp_result(peer, tmp, name, timeout=30)
    check(load.returncode == 0, "homes call out: the load run with --sip-call ended well", load.stdout[-2000:] + load.stderr[-2000:])
    check(sipp_code == 0, f"homes call out: SIPp (the ARC) took {devices} calls, all successful", detail)
    try:
        with open(report_path) as f:
            counts = json.load(f)["counts"]
    except (OSError, ValueError, KeyError) as error:
        check(False, "homes call out: the load report", error)
        return
    placed, answered = counts.get("sipCallsPlaced", 0), counts.get("sipCallsAnswered", 0)
    check(placed == devices and answered == devices and counts.get("sipCallsFailed", 1) == 0,
          f"homes call out: {placed} SIP calls placed, {answered} answered, none failed", counts)
    received, lost, silent = counts.get("sipVoicePacketsReceived", 0), counts.get("sipVoicePacketsLost", -1), counts.get("sipCallsSilent", -1)
    check(counts.get("sipCallsEnded", 0) == devices and silent == 0 and received >= devices * 100 and lost == 0,
          f"homes call out: every home heard its voice back through SIPp's echo: {received} packets, {lost} lost, {silent} calls silent", counts)


def main():
    with tempfile.TemporaryDirectory(prefix="sip-peers-") as tmp:
        password_file = os.path.join(tmp, "password")
        with open(password_file, "w") as f:
            f.write("s3cret desk\n")
        wrong_file = os.path.join(tmp, "wrong")
        with open(wrong_file, "w") as f:
            f.write("not it\n")

        for transport in ("udp", "tcp"):
            # 1. SIPp answers and echoes our voice; tshark reads both RTP streams.
            port = free_port()
            tshark, pcap = capture(tmp, "echo-" + transport)
            peer, media = sipp(["-sf", os.path.join(SCENARIOS, "uas_echo.xml"), "-rtp_echo"], port, transport, tmp, "uas-" + transport)
            time.sleep(0.5)
            code, report, out = our_call(f"sip:desk1@127.0.0.1:{port}", transport, seconds=3)
            sipp_code, detail = sipp_result(peer, tmp, "uas-" + transport)
            tshark.terminate()
            tshark.wait(timeout=10)
            check(code == 0 and report and report["end"] == "hungUp", f"{transport}: we call SIPp (uas), talk 3 s, hang up", out)
            check(sipp_code == 0, f"{transport}: SIPp's uas scenario completed (INVITE, 180, 200, ACK, BYE, 200)", detail)
            if report:
                check(report.get("setup_ms", 1e9) < 2000, f"{transport}: INVITE to 200 OK in {report.get('setup_ms', 0):.1f} ms", report)
                check(report.get("received", 0) >= 120 and report.get("lost", 1) == 0,
                      f"{transport}: our voice came back from SIPp's echo: {report.get('received')} of {report.get('sent')} packets, {report.get('lost')} lost, jitter {report.get('jitter_ms', 0):.2f} ms", report)
            streams, analysis = rtp_streams(pcap)
            to_peer = [s for s in streams if s[1] == media]
            from_peer = [s for s in streams if s[0] == media]
            check(len(to_peer) == 1 and len(from_peer) == 1 and all(s[3] == 0 and s[2] >= 120 and s[4] in ("g711U", "PCMU") for s in to_peer + from_peer),
                  f"{transport}: tshark sees one PCMU stream each way with 0 lost ({[(s[2], s[3]) for s in to_peer + from_peer]})", analysis)

            # 2. Busy: 486, and the ACK SIPp waits for.
            port = free_port()
            peer, _ = sipp(["-sf", os.path.join(SCENARIOS, "uas_busy.xml")], port, transport, tmp, "busy-" + transport)
            time.sleep(0.5)
            code, report, out = our_call(f"sip:desk1@127.0.0.1:{port}", transport)
            sipp_code, detail = sipp_result(peer, tmp, "busy-" + transport)
            check(code == 1 and report and report["end"] == "refused 486", f"{transport}: a busy phone is reported as refused 486", out)
            check(sipp_code == 0, f"{transport}: SIPp got our ACK for its 486", detail)

            # 3. Ringing, never answered: our CANCEL, its 200 and 487, our ACK.
            port = free_port()
            peer, _ = sipp(["-sf", os.path.join(SCENARIOS, "uas_ring_cancel.xml")], port, transport, tmp, "cancel-" + transport)
            time.sleep(0.5)
            code, report, out = our_call(f"sip:desk1@127.0.0.1:{port}", transport, extra=["--ring-timeout", "1"])
            sipp_code, detail = sipp_result(peer, tmp, "cancel-" + transport)
            check(report is not None and report["end"] == "hungUp" and "received" not in report,
                  f"{transport}: no answer within --ring-timeout: we CANCEL and the call ends unanswered", out)
            check(sipp_code == 0, f"{transport}: SIPp saw CANCEL, answered 200 and 487, and got our ACK", detail)

            # 4. A 401 challenge: right credentials answer it, wrong ones end in 403.
            port = free_port()
            peer, _ = sipp(["-sf", os.path.join(SCENARIOS, "uas_auth.xml"), "-rtp_echo"], port, transport, tmp, "auth-" + transport)
            time.sleep(0.5)
            code, report, out = our_call(f"sip:desk1@127.0.0.1:{port}", transport, extra=["--user", "desk1", "--password-file", password_file], seconds=2)
            sipp_code, detail = sipp_result(peer, tmp, "auth-" + transport)
            check(code == 0 and report and report["end"] == "hungUp", f"{transport}: a 401 challenge is answered with digest credentials", out)
            check(sipp_code == 0, f"{transport}: SIPp verified our digest response (verifyauth)", detail)
            port = free_port()
            peer, _ = sipp(["-sf", os.path.join(SCENARIOS, "uas_auth.xml")], port, transport, tmp, "badauth-" + transport)
            time.sleep(0.5)
            code, report, out = our_call(f"sip:desk1@127.0.0.1:{port}", transport, extra=["--user", "desk1", "--password-file", wrong_file])
            sipp_result(peer, tmp, "badauth-" + transport)
            check(code == 1 and report and report["end"] == "refused 403", f"{transport}: a wrong password ends in 403, reported", out)

            # 5. SIPp calls us: built-in uac with echo, its BYE after 3 s.
            for name, args, ours, expect in (
                ("uac", ["-sn", "uac", "-rtp_echo", "-d", "3000"], [], "byPeer"),
                ("uac-cancel", ["-sf", os.path.join(SCENARIOS, "uac_cancel.xml")], ["--ring-ms", "20000"], "cancelled"),
                ("uac-busy", ["-sf", os.path.join(SCENARIOS, "uac_busy.xml")], ["--reject", "486"], "hungUp"),
            ):
                port = free_port()
                answer = subprocess.Popen([DEVICESIM, "sip", "answer", "--port", str(port), "--calls", "1", "--seconds", "60", "--json"] + ours,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                time.sleep(1.0)
                peer_port = free_port()
                media = free_port()
                cmd = ["sipp", f"127.0.0.1:{port}", "-i", "127.0.0.1", "-p", str(peer_port), "-mi", "127.0.0.1", "-mp", str(media),
                       "-t", "t1" if transport == "tcp" else "u1", "-m", "1", "-nostdin",
                       "-trace_err", "-error_file", os.path.join(tmp, f"{name}-{transport}.err")] + args
                peer = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp)
                sipp_code, detail = sipp_result(peer, tmp, f"{name}-{transport}")
                try:
                    out, _ = answer.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    answer.kill()
                    out, _ = answer.communicate()
                reports = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
                report = reports[0] if reports else None
                check(sipp_code == 0, f"{transport}: SIPp's {name} scenario completed against `devicesim sip answer`", detail)
                check(report is not None and report["end"] == expect, f"{transport}: we report the {name} call as {expect}", out)
                if name == "uac" and report:
                    check(report.get("received", 0) >= 120 and report.get("lost", 1) == 0,
                          f"{transport}: voice both ways with SIPp calling: {report.get('received')} packets back, {report.get('lost')} lost", report)

        garbage(tmp)
        bridge(tmp)
        homes_call_out(tmp)

    print(f"{TALLY.checks - TALLY.failures}/{TALLY.checks} SIP checks passed")
    sys.exit(1 if TALLY.failures else 0)


if __name__ == "__main__":
    main()
