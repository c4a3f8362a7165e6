#!/usr/bin/env python3
"""The centre's operator bridge against peers no one here wrote (issue 16): baresip, the operator `desk1`,
registered to Kamailio (registrar and stateful proxy with digest authentication, tools/sip/kamailio.cfg);
the centre registers there too and calls the operator through it; baresip auto-answers and plays a known
audio file; what the home (a `devicesim load` device) receives is compared with that file by sox.

    python3 tools/check_sip_kamailio.py .build/debug/devicesim

With SIP_CHECK_KEEP=1 in the environment, the temporary directory (logs, capture, recordings) is kept.

The known audio (made here with sox): 1 s of silence, 2 s of 440 Hz, 1 s of silence, 2 s of 1 kHz, 0.5 s of
silence, 8 kHz mono. It is made as µ-law and handed to baresip as the 16-bit PCM those codes decode to, so
baresip's PCMU encoder gives back exactly those codes: the path baresip → Kamailio-routed call → centre
bridge → home is lossless, and what the home recorded must be a run of the file's own bytes. baresip 1.0's
`aufile` source plays the file once; when its timer (every second) finds the file played it stops the
call's media, without a BYE (the home's --call-duration then ends the call). So the home hears the file
from the moment its own leg of the bridge was up to its end, then up to a second of silence (the second
of silence at the file's start leaves time for the bridge to call the home). The reverse direction (the home's synthetic
voice reaching the operator) is what baresip's `sndfile` module writes of the audio it decodes.

Checks (printed ok/FAIL, exit 1 if any failed), from Kamailio's log, a tshark capture of its SIP port,
baresip's output and sox:
- both registrations challenged with 401 and then accepted with 200 (and in Kamailio's location table);
- the centre's INVITE challenged with 407 and sent again with Proxy-Authorization, relayed to baresip;
- baresip auto-answered (200 OK through Kamailio), the INVITE → 200 time through Kamailio (measured);
- the centre's ACK and BYE follow the Route set Kamailio's Record-Route made (baresip's 200 sent once, the
  BYE answered 200);
- the home's recording exists, sox reads it, its duration covers the file from the bridge's start to its end;
- its bytes are the file's own, in order; its RMS (sox stat) matches the same span of the file within 1 %
  (the path is lossless for this file; 1 % leaves room only for a stray packet at the span's edges);
- 440 Hz and 1 kHz (Goertzel on the decoded samples) in the right seconds and not in the others;
- baresip heard the home: its decoded audio is non-silent and lasts about as long as the call.
"""
import glob, math, os, shutil, signal, subprocess, sys, tempfile, time
from checklib import Tally, free_port

DEVICESIM = sys.argv[1] if len(sys.argv) > 1 else ".build/debug/devicesim"
HERE = os.path.dirname(os.path.abspath(__file__))
KAMAILIO_CFG = os.path.join(HERE, "sip", "kamailio.cfg")
PASSWORDS = {"centre": "centre-secret-7", "desk1": "desk1-secret-9"}  # as in kamailio.cfg
RATE = 8000
# The known audio: (seconds, tone in Hz or 0 for silence).
SEGMENTS = [(1.0, 0), (2.0, 440), (1.0, 0), (2.0, 1000), (0.5, 0)]
TALLY = Tally()
check = TALLY.check


def start(cmd, log, **kwargs):
    """Starts `cmd` in a process group of its own, output to the file `log`."""
    out = open(log, "wb")
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)


def stop(process, timeout=10):
    """Ends a process started by `start` and everything in its group: SIGTERM, then SIGKILL."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        pass


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def wait_for(condition, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def sox_stat(path):
    """sox's `stat` of a file: {'Length (seconds)': …, 'RMS     amplitude': …}."""
    out = subprocess.run(["sox", path, "-n", "stat"], capture_output=True, text=True, timeout=30).stderr
    values = {}
    for line in out.splitlines():
        name, _, value = line.partition(":")
        try:
            values[name.strip()] = float(value.split()[0])
        except (ValueError, IndexError):
            pass
    return values, out


def mulaw_decode(code):
    """G.711 µ-law to a 16-bit sample (as the firmware's and baresip's decoders)."""
    u = ~code & 0xFF
    exponent = (u >> 4) & 7
    magnitude = (((u & 0x0F) << 3) + 0x84 << exponent) - 0x84
    return -magnitude if u & 0x80 else magnitude


def wav_samples(path):
    """The samples of a WAV file as 16-bit integers (sox converts whatever it is)."""
    raw = subprocess.run(["sox", path, "-t", "raw", "-e", "signed-integer", "-b", "16", "-L", "-"], capture_output=True, timeout=30).stdout
    return [int.from_bytes(raw[i:i + 2], "little", signed=True) for i in range(0, len(raw) - 1, 2)]


def goertzel(samples, hertz):
    """The power of one frequency in `samples`, relative to their energy (0…1 for a pure tone: ~0.5)."""
    if not samples:
        return 0.0
    k = 2 * math.cos(2 * math.pi * hertz / RATE)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    energy = sum(x * x for x in samples)
    return power / (energy * len(samples) / 2) if energy else 0.0


def make_audio(tmp):
    """The known audio as µ-law codes (`known-ulaw.wav`) and the PCM they decode to (`known.wav`, for baresip)."""
    parts = []
    for n, (seconds, hertz) in enumerate(SEGMENTS):
        part = os.path.join(tmp, f"part{n}.wav")
        effect = ["synth", str(seconds), "sine", str(hertz), "vol", "0.5"] if hertz else ["trim", "0", str(seconds)]
        subprocess.run(["sox", "-D", "-n", "-r", str(RATE), "-c", "1", "-e", "u-law", part] + effect, check=True, timeout=30)
        parts.append(part)
    ulaw = os.path.join(tmp, "known-ulaw.wav")
    pcm = os.path.join(tmp, "known.wav")
    subprocess.run(["sox", "-D"] + parts + [ulaw], check=True, timeout=30)
    subprocess.run(["sox", "-D", ulaw, "-e", "signed-integer", "-b", "16", pcm], check=True, timeout=30)
    with open(ulaw, "rb") as f:
        codes = f.read()[58:]  # sox's µ-law WAV header is 58 bytes (fmt of 18, fact)
    return pcm, codes


def baresip_config(tmp, kport, bport, audio):
    directory = os.path.join(tmp, "baresip")
    dumps = os.path.join(tmp, "baresip-heard")
    os.makedirs(directory)
    os.makedirs(dumps)
    with open(os.path.join(directory, "accounts"), "w") as f:
        f.write(f"<sip:desk1@127.0.0.1:{kport};transport=udp>;auth_pass={PASSWORDS['desk1']};answermode=auto;regint=600;audio_codecs=PCMU\n")
    with open(os.path.join(directory, "config"), "w") as f:
        f.write(f"""poll_method\tepoll
sip_listen\t127.0.0.1:{bport}
call_max_calls\t2
audio_source\taufile,{audio}
audio_buffer\t20-160
ausrc_format\ts16
auenc_format\ts16
audec_format\ts16
rtcp_mux\tno
module_path\t/usr/lib/baresip/modules
module\tg711.so
module\taufile.so
module\tsndfile.so
module_tmp\taccount.so
snd_path\t{dumps}
""")
    return directory, dumps


def sip_trace(pcap, kport):
    """The SIP messages through Kamailio's port: [(time, src port, dst port, first line, CSeq, From user, has Proxy-Authorization)]."""
    out = subprocess.run(
        ["tshark", "-r", pcap, "-d", f"udp.port=={kport},sip", "-Y", "sip", "-T", "fields", "-E", "separator=\t",
         "-e", "frame.time_relative", "-e", "udp.srcport", "-e", "udp.dstport", "-e", "sip.Request-Line", "-e", "sip.Status-Line",
         "-e", "sip.CSeq", "-e", "sip.from.user", "-e", "sip.Proxy-Authorization", "-e", "sip.Authorization"],
        capture_output=True, text=True, timeout=60).stdout
    messages = []
    for line in out.splitlines():
        f = line.split("\t") + [""] * 9
        messages.append({"t": float(f[0] or 0), "src": int(f[1] or 0), "dst": int(f[2] or 0), "line": f[3] or f[4],
                         "cseq": f[5], "from": f[6], "proxy_auth": bool(f[7]), "auth": bool(f[8])})
    return messages, out


def registrations(messages, user):
    """The REGISTER exchanges of `user`: the statuses answered, in order, and whether the retry carried credentials."""
    flow = []
    for m in messages:
        if m["from"] != user or "REGISTER" not in m["cseq"]:
            continue
        if m["line"].startswith("REGISTER"):
            flow.append("REGISTER+auth" if m["auth"] else "REGISTER")
        elif m["line"].startswith("SIP/2.0"):
            flow.append(m["line"].split()[1])
    return flow


def main():
    for tool in ("kamailio", "kamcmd", "baresip", "sox", "tshark"):
        if shutil.which(tool) is None:
            print(f"FAIL {tool} is not installed: run make sip-deps")
            sys.exit(1)
    tmp = tempfile.mkdtemp(prefix="sip-kamailio-")
    processes = []
    try:
        run(tmp, processes)
    finally:
        for process in reversed(processes):
            stop(process)
        if os.environ.get("SIP_CHECK_KEEP"):
            print(f"kept {tmp} (SIP_CHECK_KEEP)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{TALLY.checks - TALLY.failures}/{TALLY.checks} Kamailio/baresip checks passed")
    sys.exit(1 if TALLY.failures else 0)


def run(tmp, processes):
    kport, bport = free_port(), free_port()
    audio, known = make_audio(tmp)
    known_stat, _ = sox_stat(audio)
    print(f"the known audio: {known_stat.get('Length (seconds)', 0):.3f} s, RMS {known_stat.get('RMS     amplitude', 0):.4f}", flush=True)

    pcap = os.path.join(tmp, "sip.pcapng")
    tshark = start(["tshark", "-q", "-i", "lo", "-f", f"udp port {kport}", "-w", pcap], os.path.join(tmp, "tshark.log"))
    processes.append(tshark)
    if not wait_for(lambda: "Capturing" in read(os.path.join(tmp, "tshark.log")), 15):
        check(False, "tshark captures on loopback", read(os.path.join(tmp, "tshark.log")))
        return

    kamailio_log = os.path.join(tmp, "kamailio.log")
    control = os.path.join(tmp, "kamailio_ctl")
    kamailio = start(["kamailio", "-f", KAMAILIO_CFG, "-l", f"udp:127.0.0.1:{kport}", "-DD", "-E", "-w", tmp, "-Y", tmp,
                      "-A", f'CTL_SOCKET="unix:{control}"'], kamailio_log, cwd=tmp)
    processes.append(kamailio)
    if not wait_for(lambda: os.path.exists(control), 15):
        check(False, "Kamailio starts", read(kamailio_log))
        return
    version = subprocess.run(["kamailio", "-v"], capture_output=True, text=True).stdout.splitlines()[0]

    config, dumps = baresip_config(tmp, kport, bport, audio)
    baresip_log = os.path.join(tmp, "baresip.log")
    baresip = start(["baresip", "-f", config, "-t", "120"], baresip_log, cwd=tmp)
    processes.append(baresip)

    def located(user):
        out = subprocess.run(["kamcmd", "-s", f"unix:{control}", "ul.lookup", "location", user], capture_output=True, text=True, timeout=10).stdout
        return "Contact" in out or "Address" in out
    check(wait_for(lambda: located("desk1"), 20), f"baresip registered desk1 with Kamailio ({version}): kamcmd ul.lookup finds its contact",
          read(baresip_log) + read(kamailio_log)[-2000:])

    master = os.path.join(tmp, "master.hex")
    with open(master, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    password = os.path.join(tmp, "centre.password")
    with open(password, "w") as f:
        f.write(PASSWORDS["centre"] + "\n")
    recordings = os.path.join(tmp, "heard")
    report = os.path.join(tmp, "report.json")
    load = [DEVICESIM, "load", "--spawn-center", "--master-file", master, "--devices", "1", "--transport", "udp",
            "--alarm-rate", "5", "--duration", "12s", "--call-share", "1", "--call-duration", "9s", "--drain", "10s",
            "--record-calls", recordings, "--report", report]
    for arg in ["--operator", f"sip:desk1@127.0.0.1:{kport}", "--sip-registrar", f"sip:127.0.0.1:{kport}",
                "--sip-identity", "sip:centre@127.0.0.1", "--sip-user", "centre", "--sip-password-file", password,
                "--sip-port", "0", "--auto-close-after", "30"]:
        load += ["--center-arg", arg]
    result = subprocess.run(load, capture_output=True, text=True, timeout=240)
    check(result.returncode == 0, "the load run with the centre bridging to baresip through Kamailio ended well",
          result.stdout[-2500:] + result.stderr[-2500:])
    located_centre = located("centre")
    stop(baresip)
    time.sleep(0.5)  # the last SIP messages reach the capture
    stop(tshark)
    stop(kamailio)
    kamailio_text = read(kamailio_log)
    baresip_text = read(baresip_log)

    # Registrations: 401, then 200 with credentials, for both.
    messages, trace = sip_trace(pcap, kport)
    for user in ("desk1", "centre"):
        flow = registrations(messages, user)
        ok = len(flow) >= 4 and flow[:4] == ["REGISTER", "401", "REGISTER+auth", "200"]
        check(ok and f"sipcheck: registered {user} at" in kamailio_text,
              f"Kamailio challenged {user}'s REGISTER with 401 and accepted the one with credentials (200): {' → '.join(flow[:4])}", trace)
    check(located_centre, "the centre was in Kamailio's location table during the run (kamcmd ul.lookup)")

    # The call: the centre's INVITE challenged 407, sent again with Proxy-Authorization, relayed, answered.
    invites = [m for m in messages if m["from"] == "centre" and "INVITE" in m["cseq"]]
    to_kamailio = [m for m in invites if m["dst"] == kport and m["line"].startswith("INVITE")]
    from_kamailio = [m for m in invites if m["src"] == kport]
    statuses = [m["line"].split()[1] for m in from_kamailio if m["line"].startswith("SIP/2.0")]
    check(len(to_kamailio) >= 2 and not to_kamailio[0]["proxy_auth"] and to_kamailio[1]["proxy_auth"] and "407" in statuses,
          f"Kamailio challenged the centre's INVITE with 407 and it came again with Proxy-Authorization (statuses to the centre: {statuses})", trace)
    relayed = [m for m in invites if m["src"] == kport and m["dst"] == bport and m["line"].startswith("INVITE")]
    answered = [m for m in invites if m["src"] == bport and m["line"].startswith("SIP/2.0 200")]
    check(relayed and answered and "200" in statuses, "Kamailio relayed the INVITE to baresip, baresip answered 200 OK, and Kamailio passed it on", trace)
    if len(to_kamailio) >= 2 and answered:
        authorised = to_kamailio[1]["t"]
        to_centre = [m for m in from_kamailio if m["line"].startswith("SIP/2.0 200") and m["t"] >= authorised]
        if to_centre and relayed:
            print(f"     INVITE with credentials → 200 OK at the centre through Kamailio: {(to_centre[0]['t'] - authorised) * 1000:.1f} ms "
                  f"(relayed INVITE → baresip's 200: {(answered[0]['t'] - relayed[0]['t']) * 1000:.1f} ms; "
                  f"first INVITE → 200: {(to_centre[0]['t'] - to_kamailio[0]['t']) * 1000:.1f} ms)", flush=True)
    acks = [m for m in messages if m["line"].startswith("ACK") and m["src"] == kport and m["dst"] == bport and "INVITE" not in m["cseq"]]
    answers = [m for m in messages if m["src"] == bport and m["line"].startswith("SIP/2.0 200") and "INVITE" in m["cseq"]]
    check(acks and len(answers) == 1,
          f"the centre's ACK reached baresip through Kamailio (Route from its Record-Route), so baresip sent its 200 OK once ({len(answers)} sent)", trace)
    byes = [m for m in messages if m["line"].startswith("BYE")]
    bye_answers = [m["line"] for m in messages if "BYE" in m["cseq"] and m["line"].startswith("SIP/2.0")]
    check("call: answering call" in baresip_text and byes and all(line.startswith("SIP/2.0 200") for line in bye_answers) and bye_answers,
          f"baresip auto-answered, and the call ended with a BYE through Kamailio answered 200 ({len(byes)} BYE seen, answers {bye_answers})",
          baresip_text[-2500:] + trace)

    # What the home heard.
    files = sorted(glob.glob(os.path.join(recordings, "device-*-call-*.wav")))
    check(len(files) == 1, f"the home recorded its call: {[os.path.basename(f) for f in files]}", result.stderr[-1500:])
    if not files:
        return
    heard_stat, heard_text = sox_stat(files[0])
    duration = heard_stat.get("Length (seconds)", 0)
    with open(files[0], "rb") as f:
        codes = f.read()[58:]
    codes = codes[:int(round(duration * RATE))]
    # Where in the file the home's leg began: the first 20 ms of it that is not silence, found in the file.
    start_at = None
    for i in range(0, max(0, len(codes) - 160), 160):
        chunk = codes[i:i + 160]
        if len(set(chunk)) > 4:
            found = known.find(chunk)
            if found >= 0:
                start_at = found - i
            break
    check(start_at is not None and 0 <= start_at < RATE,
          f"the home's recording is the known audio from {start_at / RATE if start_at is not None else 0:.3f} s of it on (within its first second of silence)",
          f"{len(codes)} samples")
    if start_at is None or not 0 <= start_at < RATE:
        return
    # baresip notices the end of the file within a second, and sends silence until then; then its media stops.
    played = len(known) - start_at
    tail = codes[played:]
    same = sum(1 for a, b in zip(known[start_at:], codes) if a == b or {a, b} == {0x7F, 0xFF})
    check(played / RATE <= duration <= played / RATE + 1.1 and all(c in (0x7F, 0xFF) for c in tail),
          f"its duration, {duration:.3f} s, covers the file from the home's leg's start to its end ({played / RATE:.3f} s), "
          f"then {len(tail) / RATE:.3f} s of silence until baresip noticed the end of the file",
          heard_text)
    check(same == played, f"the recording is the file's own bytes, in order: {same} of {played} samples identical (PCMU both legs, no transcoding)")
    span_path, heard_span = os.path.join(tmp, "span.wav"), os.path.join(tmp, "heard-span.wav")
    subprocess.run(["sox", "-D", audio, span_path, "trim", f"{start_at}s", f"{played}s"], check=True, timeout=30)
    subprocess.run(["sox", "-D", files[0], "-e", "signed-integer", "-b", "16", heard_span, "trim", "0s", f"{played}s"], check=True, timeout=30)
    span_stat, _ = sox_stat(span_path)
    heard_span_stat, heard_span_text = sox_stat(heard_span)
    rms_heard, rms_span = heard_span_stat.get("RMS     amplitude", 0), span_stat.get("RMS     amplitude", 0)
    check(rms_span > 0 and abs(rms_heard - rms_span) <= 0.01 * rms_span and abs(heard_span_stat.get("Length (seconds)", 0) - played / RATE) < 0.001,
          f"sox: RMS of the recording {rms_heard:.4f} (with its silent tail {heard_stat.get('RMS     amplitude', 0):.4f}), "
          f"of the same span of the file {rms_span:.4f} (whole file {known_stat.get('RMS     amplitude', 0):.4f}): within 1 %",
          heard_span_text)

    # The tones, second by second of the file, in the recording.
    samples = [mulaw_decode(c) for c in codes]
    offset = start_at
    t = 0.0
    tones_ok, table = True, []
    for seconds, hertz in SEGMENTS:
        begin, end = int((t + 0.1) * RATE) - offset, int((t + seconds - 0.1) * RATE) - offset
        t += seconds
        if begin < 0 or end > len(samples):
            continue
        window = samples[begin:end]
        p440, p1k = goertzel(window, 440), goertzel(window, 1000)
        rms = math.sqrt(sum(x * x for x in window) / len(window)) if window else 0
        table.append(f"{t - seconds:.1f}-{t:.1f} s: 440 Hz {p440:.2f}, 1 kHz {p1k:.2f}, RMS {rms:.0f}")
        if hertz == 440:
            tones_ok &= p440 > 0.4 and p1k < 0.01
        elif hertz == 1000:
            tones_ok &= p1k > 0.4 and p440 < 0.01
        else:
            tones_ok &= rms < 50
    check(tones_ok and len(table) >= 4, "the tones are where the file has them (Goertzel): " + "; ".join(table))

    # The reverse direction: what baresip decoded of the home's voice.
    dumps_heard = sorted(glob.glob(os.path.join(dumps, "dump-*-dec.wav")))
    if not dumps_heard:
        check(False, "baresip recorded what it heard (sndfile)", os.listdir(dumps))
        return
    back_stat, back_text = sox_stat(dumps_heard[-1])
    back_rms, back_length = back_stat.get("RMS     amplitude", 0), back_stat.get("Length (seconds)", 0)
    check(back_rms > 0.01 and back_length >= 0.8 * played / RATE,
          f"baresip heard the home's voice through the bridge: {back_length:.3f} s, RMS {back_rms:.4f} (silence would be 0)", back_text)


if __name__ == "__main__":
    main()
