#!/usr/bin/env python3
"""The deployment files of the centre (deploy/) against the devicesim binary they run.

    python3 tools/check_deploy.py .build/debug/devicesim

- deploy/systemd/devicekit-center.service: `systemd-analyze verify` finds nothing to say about it (when
  systemd-analyze is there; the rest is checked all the same), Restart=always, and the credentials it loads
  are the ones its command line and devicesim read (the master key's name is taken from
  Sources/devicesim/MasterKeyOptions.swift).
- Every `devicesim center` command line of the deployment: the unit's ExecStart= (with its Environment=
  defaults, deploy/systemd/center.env.example's values and systemd's %d substituted as systemd does) and
  each Kubernetes container's command and args (with $(VAR) taken from the container's env and its
  ConfigMaps) is run against the binary, its secrets replaced by temporary files (the unit's through
  $CREDENTIALS_DIRECTORY, as systemd hands them over) and its journal server by 127.0.0.1 on a port where
  nothing listens. It must exit 69, the journal unreachable: every flag parsed and was accepted, and the
  centre went as far as connecting. 64 is a usage error (a flag devicesim does not have, or a bad value).
- The Kubernetes manifests agree with those flags: the probes (readiness /ready, liveness /live) go to the
  container port of --metrics-port, which --metrics-bind serves beyond loopback; the device ports are
  --port over TCP and UDP; the secret files are on the Secret's volume; the headless, per-pod and
  disruption-budget objects select the StatefulSet's pods.
- When PostgreSQL's server is installed (make pg-deps), each command line also runs against a throwaway
  server (tools/pg_cluster.sh) with only its ports, its journal's address and its secrets changed: the
  centre listens, GET /live and /ready answer 200 on the metrics port and center_journal_up is 1.

The YAML is read with PyYAML when it is there, else with a small reader of the subset the manifests use
(which, with PyYAML there, must read them as PyYAML does). Prints one line per check (`ok   ...`,
`FAIL ...`) and `passed: ...` or `FAILED: ...`; exit status 1 when any check failed.
"""
import glob, http.client, json, os, re, select, shlex, shutil, socket, subprocess, sys, tempfile, time
from urllib.parse import urlsplit
from checklib import Tally

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNIT = os.path.join(ROOT, "deploy/systemd/devicekit-center.service")
ENV_EXAMPLE = os.path.join(ROOT, "deploy/systemd/center.env.example")
KUBERNETES = os.path.join(ROOT, "deploy/kubernetes")
MASTER_KEY_OPTIONS = os.path.join(ROOT, "Sources/devicesim/MasterKeyOptions.swift")
PG_CLUSTER = os.path.join(ROOT, "tools/pg_cluster.sh")
# The unit's programs are installed here; the check runs the binary it is given instead.
INSTALLED = "/usr/local/bin/devicesim"
WORKLOADS = {"StatefulSet", "Deployment", "DaemonSet", "Job", "Pod"}

TALLY = Tally()


check = TALLY.check



def note(what):
    print("     " + what, flush=True)


# --- A small YAML reader --------------------------------------------------------------------------------
# Block mappings and sequences, one-line flow collections, plain and quoted scalars, comments and documents:
# what deploy/kubernetes uses. Anything else (block scalars, anchors, multi-line flows) is refused, not guessed.

class YAMLSubsetError(Exception):
    pass


def _strip_comment(line):
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'" and (i == 0 or line[i - 1] in " \t[{,:-"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _scalar(text):
    text = text.strip()
    if text[:1] == '"':
        if not text.endswith('"') or len(text) < 2:
            raise YAMLSubsetError(f"unterminated string {text}")
        return json.loads(text)
    if text[:1] == "'":
        if not text.endswith("'") or len(text) < 2:
            raise YAMLSubsetError(f"unterminated string {text}")
        return text[1:-1].replace("''", "'")
    if text[:1] in "|>&*!%@`":
        raise YAMLSubsetError(f"not in the subset this reader takes: {text}")
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if re.fullmatch(r"[-+]?0[0-7]+", text):
        return int(text, 8)  # YAML 1.1, as PyYAML and Kubernetes read it: defaultMode: 0440
    if re.fullmatch(r"[-+]?(0|[1-9][0-9]*)", text):
        return int(text)
    if re.fullmatch(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?", text):
        return float(text)
    return text


def _flow(text, i):
    """The flow value at text[i:] ({...}, [...] or a scalar ending at , ] }), and where it ends."""
    while i < len(text) and text[i] == " ":
        i += 1
    if i < len(text) and text[i] in "[{":
        closing = "]" if text[i] == "[" else "}"
        items, mapping = [], {}
        i += 1
        while True:
            while i < len(text) and text[i] == " ":
                i += 1
            if i >= len(text):
                raise YAMLSubsetError(f"unclosed {text}")
            if text[i] == closing:
                return (items if closing == "]" else mapping), i + 1
            if closing == "}":
                colon = text.find(":", i)
                if colon < 0:
                    raise YAMLSubsetError(f"no ':' in {text}")
                key = _scalar(text[i:colon])
                value, i = _flow(text, colon + 1)
                mapping[key] = value
            else:
                value, i = _flow(text, i)
                items.append(value)
            while i < len(text) and text[i] == " ":
                i += 1
            if i < len(text) and text[i] == ",":
                i += 1
    if i < len(text) and text[i] in "\"'":
        quote, j = text[i], i + 1
        while j < len(text):
            if text[j] == "\\" and quote == '"':
                j += 2
                continue
            if text[j] == quote:
                if quote == "'" and text[j + 1:j + 2] == "'":
                    j += 2
                    continue
                return _scalar(text[i:j + 1]), j + 1
            j += 1
        raise YAMLSubsetError(f"unterminated string in {text}")
    j = i
    while j < len(text) and text[j] not in ",]}":
        j += 1
    return _scalar(text[i:j]), j


def _value(text):
    text = text.strip()
    if text[:1] in "[{":
        value, end = _flow(text, 0)
        if text[end:].strip():
            raise YAMLSubsetError(f"text after a flow collection: {text}")
        return value
    return _scalar(text)


def _key_and_rest(text):
    """('key', 'rest') for `key: rest` or `key:`; None for a line that is not a mapping entry."""
    if text[:1] in "\"'[{":
        return None
    match = re.match(r"([^\s:#][^:#]*?|[^\s:#]*(?::[^\s:#][^:#]*?)*):(?:\s+(.*))?$", text)
    if not match:
        return None
    return match.group(1).strip(), (match.group(2) or "")


def _block(lines, i, indent):
    if lines[i][1].startswith("- ") or lines[i][1] == "-":
        return _sequence(lines, i, indent)
    return _mapping(lines, i, indent)


def _nested(lines, i, indent, allow_sequence_here):
    """The value of a `key:` or `-` with nothing after it, from the lines below it."""
    if i < len(lines) and lines[i][0] > indent:
        return _block(lines, i, lines[i][0])
    if allow_sequence_here and i < len(lines) and lines[i][0] == indent and (lines[i][1].startswith("- ") or lines[i][1] == "-"):
        return _sequence(lines, i, indent)
    return None, i


def _sequence(lines, i, indent):
    items = []
    while i < len(lines) and lines[i][0] == indent and (lines[i][1].startswith("- ") or lines[i][1] == "-"):
        text = lines[i][1]
        rest = text[1:].lstrip()
        if not rest:
            value, i = _nested(lines, i + 1, indent, False)
        elif _key_and_rest(rest):
            lines[i] = (indent + len(text) - len(rest), rest)
            value, i = _mapping(lines, i, lines[i][0])
        else:
            value, i = _value(rest), i + 1
        items.append(value)
    return items, i


def _mapping(lines, i, indent):
    mapping = {}
    while i < len(lines) and lines[i][0] == indent and not (lines[i][1].startswith("- ") or lines[i][1] == "-"):
        entry = _key_and_rest(lines[i][1])
        if entry is None:
            raise YAMLSubsetError(f"not a mapping entry: {lines[i][1]}")
        key, rest = entry
        if key in mapping:
            raise YAMLSubsetError(f"key {key} given twice")
        if rest:
            mapping[_scalar(key)], i = _value(rest), i + 1
        else:
            mapping[_scalar(key)], i = _nested(lines, i + 1, indent, True)
    if i < len(lines) and lines[i][0] > indent:
        raise YAMLSubsetError(f"unexpected indentation: {lines[i][1]}")
    return mapping, i


def read_yaml_subset(text):
    documents, current = [], []
    for raw in text.splitlines() + ["---"]:
        if raw.rstrip() == "---" or raw.startswith("--- "):
            if current:
                value, end = _block(current, 0, current[0][0])
                if end != len(current):
                    raise YAMLSubsetError(f"unexpected line: {current[end][1]}")
                documents.append(value)
            current = []
            continue
        if "\t" in raw[:len(raw) - len(raw.lstrip())]:
            raise YAMLSubsetError("a tab in indentation")
        line = _strip_comment(raw)
        if line.strip():
            current.append((len(line) - len(line.lstrip(" ")), line.strip()))
    return documents


def read_yaml(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        import yaml
    except ImportError:
        return read_yaml_subset(text)
    return [d for d in yaml.safe_load_all(text) if d is not None]


# --- The unit -------------------------------------------------------------------------------------------

def read_unit(path):
    """{section: [(key, value)]}, continuation lines joined as systemd joins them."""
    sections, section, pending = {}, None, ""
    with open(path, encoding="utf-8") as f:
        for raw in f.read().splitlines():
            line = raw.strip()
            if not pending and (not line or line[0] in "#;"):
                continue
            if pending and line[:1] in "#;":
                continue  # a comment inside a continued line is skipped by systemd too
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line, pending = pending + line, ""
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
                sections.setdefault(section, [])
            elif "=" in line:
                key, value = line.split("=", 1)
                sections.setdefault(section, []).append((key.strip(), value.strip()))
    return sections


def unit_values(sections, section, key):
    return [v for k, v in sections.get(section, []) if k == key]


def environment_assignments(value):
    """Environment=A=1 "B=two words" → {A: '1', B: 'two words'}."""
    out = {}
    for word in shlex.split(value):
        if "=" in word:
            name, v = word.split("=", 1)
            out[name] = v
    return out


def read_environment_file(path):
    """KEY=value lines, as systemd's EnvironmentFile= reads them (quotes removed, comments skipped)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for raw in f.read().splitlines():
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            name, _, value = line.partition("=")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            out[name.strip()] = value
    return out


def exec_arguments(command, environment, specifiers):
    """systemd's ExecStart= words: %x specifiers, ${NAME} as one word's part, $NAME alone as words split at
    whitespace (none when empty). A specifier not in `specifiers` or a variable not set is an error here."""
    command = command.lstrip("-@:+!")
    words = []
    for word in shlex.split(command):
        def specifier(match):
            letter = match.group(1)
            if letter == "%":
                return "%"
            if letter not in specifiers:
                raise KeyError(f"specifier %{letter}")
            return specifiers[letter]
        word = re.sub(r"%(.)", specifier, word)
        alone = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if alone:
            if alone.group(1) not in environment:
                raise KeyError(f"${alone.group(1)}")
            words += environment[alone.group(1)].split()
            continue

        def variable(match):
            if match.group(1) not in environment:
                raise KeyError("${" + match.group(1) + "}")
            return environment[match.group(1)]
        words.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", variable, word))
    return words


# --- Command lines ----------------------------------------------------------------------------------------

def option(args, name):
    """The value of the last `--name VALUE` or `--name=VALUE`, else None."""
    value = None
    for i, word in enumerate(args):
        if word == name and i + 1 < len(args):
            value = args[i + 1]
        elif word.startswith(name + "="):
            value = word.split("=", 1)[1]
    return value


def replace_option(args, name, value):
    out, skip = [], False
    for i, word in enumerate(args):
        if skip:
            skip = False
            continue
        if word == name and i + 1 < len(args):
            out += [name, value]
            skip = True
        elif word.startswith(name + "="):
            out.append(f"{name}={value}")
        else:
            out.append(word)
    return out


def is_centre(args):
    """Whether argv runs the centre: devicesim center [serve] ..."""
    return len(args) >= 2 and os.path.basename(args[0]) == "devicesim" and args[1] == "center" \
        and (len(args) == 2 or args[2] not in ("operators", "registry", "help"))


def journal_elsewhere(url, host, port, user=None, database=None, tls=True):
    parts = urlsplit(url)
    query = [q for q in parts.query.split("&") if q and (tls or not q.startswith("sslmode="))]
    return (f"{parts.scheme}://{user or parts.username}@{host}:{port}/{database or parts.path.lstrip('/')}"
            + ("?" + "&".join(query) if query else ""))


def clean_environment(**extra):
    """The environment a run gets: nothing of this shell's PostgreSQL, credentials or keys."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PG") and k not in ("CREDENTIALS_DIRECTORY", "DEVICEKIT_MASTER_KEY")}
    env.update(extra)
    return env


def wait_for_binary(path, seconds=180):
    """The binary may be rebuilt under us: wait for it to be there and executable again."""
    deadline = time.monotonic() + seconds
    while not (os.path.isfile(path) and os.access(path, os.X_OK)):
        if time.monotonic() > deadline:
            return False
        time.sleep(2)
    return True


def run_once(devicesim, argv, env, timeout=60):
    """Runs argv with the binary in place of argv[0]; a binary being replaced meanwhile is waited for."""
    for attempt in range(3):
        if not wait_for_binary(devicesim):
            return None
        try:
            return subprocess.run([devicesim] + argv[1:], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired as expired:
            said = expired.stderr.decode(errors="replace") if isinstance(expired.stderr, bytes) else (expired.stderr or "")
            return subprocess.CompletedProcess(argv, None, "", f"{said}\n(still running after {timeout} s: killed)")
        except OSError as error:  # ETXTBSY, ENOENT: the binary replaced meanwhile
            if attempt == 2:
                raise
            note(f"(the binary could not be run, {error}: trying again)")
            time.sleep(5)


def last_line(text):
    """What a run said that matters: its `Error:` line, else its last line."""
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("Error:")]
    return errors[-1] if errors else lines[-1] if lines else "(nothing)"


# --- The checks -------------------------------------------------------------------------------------------

def check_unit(devicesim, work):
    """The unit's checks; returns (name, argv, environment, files) for the command-line runs, or None."""
    if not check(os.path.isfile(UNIT), "deploy/systemd/devicekit-center.service is there"):
        return None
    sections = read_unit(UNIT)
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        note("systemd-analyze is not there: the unit is not verified by systemd (the rest is checked)")
    else:
        # verify wants ExecStart='s program to exist: the binary under test stands in for the installed one.
        copy = os.path.join(work, os.path.basename(UNIT))
        with open(UNIT, encoding="utf-8") as f:
            text = f.read()
        with open(copy, "w", encoding="utf-8") as f:
            f.write(text.replace(INSTALLED, os.path.abspath(devicesim)))
        result = subprocess.run([analyze, "verify", "--man=no", copy], capture_output=True, text=True, timeout=120)
        said = [l.replace(copy, os.path.relpath(UNIT, ROOT)) for l in (result.stdout + result.stderr).splitlines()
                if os.path.basename(UNIT) in l]
        check(result.returncode == 0 and not said,
              f"systemd-analyze verify: the unit loads, every directive known and every value taken ({INSTALLED} as {devicesim})",
              "; ".join(said) or last_line(result.stderr))
        security = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", copy],
                                  capture_output=True, text=True, timeout=120)
        level = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", security.stdout)
        if level:
            check(float(level.group(1)) <= 2.0, f"systemd-analyze security: exposure {level.group(1)} {level.group(2)} (at most 2.0)")
        else:
            note("systemd-analyze security --offline=yes gave no exposure level: " + last_line(security.stderr))

    service = "Service"
    check(unit_values(sections, service, "Restart") == ["always"], "the unit restarts the centre after any exit (Restart=always)",
          unit_values(sections, service, "Restart"))
    check(unit_values(sections, "Unit", "StartLimitIntervalSec") == ["0"], "the unit never stops restarting (StartLimitIntervalSec=0)")
    wants = " ".join(unit_values(sections, "Unit", "Wants") + unit_values(sections, "Unit", "After"))
    check(wants.count("network-online.target") >= 2, "the unit wants and comes after network-online.target")

    credentials = {}
    for value in unit_values(sections, service, "LoadCredential") + unit_values(sections, service, "LoadCredentialEncrypted"):
        name, _, source = value.partition(":")
        credentials[name] = source
    try:
        with open(MASTER_KEY_OPTIONS, encoding="utf-8") as f:
            master_name = re.search(r'credentialName\s*=\s*"([^"]+)"', f.read()).group(1)
    except (OSError, AttributeError):
        master_name = "devicekit-master-key"
        note(f"(the credential's name not read from {os.path.relpath(MASTER_KEY_OPTIONS, ROOT)}: {master_name} assumed)")
    check(master_name in credentials, f"the unit loads the fleet master key as the credential devicesim reads ({master_name})",
          sorted(credentials))

    environment = {}
    for value in unit_values(sections, service, "Environment"):
        environment.update(environment_assignments(value))
    files = unit_values(sections, service, "EnvironmentFile")
    check(files == ["/etc/devicekit/center.env"], "the unit reads its settings from /etc/devicekit/center.env (EnvironmentFile=)", files)
    if not check(os.path.isfile(ENV_EXAMPLE), "deploy/systemd/center.env.example is there"):
        return None
    example = read_environment_file(ENV_EXAMPLE)
    environment.update(example)
    check(example.get("CENTER_JOURNAL", "").startswith(("postgres://", "postgresql://")),
          "center.env.example sets CENTER_JOURNAL to a PostgreSQL journal", example.get("CENTER_JOURNAL"))
    check(all(k.startswith("CENTER_") for k in example), "center.env.example sets only CENTER_* variables",
          [k for k in example if not k.startswith("CENTER_")])

    starts = unit_values(sections, service, "ExecStart")
    if not check(len(starts) == 1, "the unit has one ExecStart=", starts):
        return None
    credentials_directory = os.path.join(work, "credentials")
    try:
        argv = exec_arguments(starts[0], environment, {"d": credentials_directory})
    except KeyError as missing:
        check(False, "ExecStart= uses only variables that are set and specifiers that are known", missing)
        return None
    used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", starts[0]))
    check(used <= set(environment), "ExecStart= uses only variables the unit or center.env.example sets", used - set(environment))
    unused = sorted(set(example) - used)
    check(not unused, "ExecStart= uses every variable of center.env.example", unused)
    if not check(is_centre(argv) and argv[0] == INSTALLED, f"ExecStart= runs {INSTALLED} center", argv[:3]):
        return None
    password = option(argv, "--journal-password-file") or ""
    name = password[len(credentials_directory) + 1:] if password.startswith(credentials_directory + "/") else None
    check(name in credentials, "--journal-password-file is a credential the unit loads (%d/NAME with LoadCredential=NAME:...)",
          password)
    check(option(argv, "--master-file") is None and not any(a.startswith("--master") and a != "--master-file" for a in argv),
          "the master key is not on the command line (the credential is read by itself)")
    # The credentials systemd would hand over: every one the unit loads, with throwaway contents.
    os.makedirs(credentials_directory, exist_ok=True)
    for credential in credentials:
        with open(os.path.join(credentials_directory, credential), "w") as f:
            f.write(os.urandom(32).hex() if credential == master_name else "not-the-password\n")
    return ("the unit's ExecStart=", argv, {"CREDENTIALS_DIRECTORY": credentials_directory}, {})


def config_maps(documents):
    return {(d.get("metadata", {}).get("namespace"), d["metadata"]["name"]): d.get("data") or {}
            for d in documents if d.get("kind") == "ConfigMap"}


def container_environment(container, maps, namespace):
    env = {}
    for entry in container.get("env") or []:
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
        elif "configMapKeyRef" in (entry.get("valueFrom") or {}):
            ref = entry["valueFrom"]["configMapKeyRef"]
            value = maps.get((namespace, ref["name"]), {}).get(ref["key"])
            if value is not None:
                env[entry["name"]] = value
    return env


def expand(word, env):
    """Kubernetes' $(VAR) in command and args; $$ is a literal $. An unknown $(VAR) stays as it is."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), word)


def pod_spec(document):
    if document.get("kind") == "Pod":
        return document.get("spec", {})
    if document.get("kind") == "Job":
        return document["spec"]["template"]["spec"]
    return document.get("spec", {}).get("template", {}).get("spec", {})


def port_number(port, container, protocol="TCP"):
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port and p.get("protocol", "TCP") == protocol:
            return p["containerPort"]
    return None


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_kubernetes(work):
    """The manifests' checks; returns [(name, argv, environment, files)] for the command-line runs."""
    paths = sorted(glob.glob(os.path.join(KUBERNETES, "*.yaml")))
    if not check(bool(paths), "deploy/kubernetes has manifests"):
        return []
    documents, subset_agrees = [], True
    try:
        import yaml
    except ImportError:
        yaml = None
        note("PyYAML is not there: the manifests are read with this check's own reader of the YAML they use")
    for path in paths:
        try:
            docs = read_yaml(path)
        except Exception as error:
            check(False, f"{os.path.relpath(path, ROOT)} is YAML", error)
            continue
        if yaml is not None:
            try:
                mine = read_yaml_subset(open(path, encoding="utf-8").read())
            except YAMLSubsetError as error:
                mine = error
            if mine != docs:
                subset_agrees = False
                check(False, f"this check's YAML reader reads {os.path.relpath(path, ROOT)} as PyYAML does",
                      mine if isinstance(mine, Exception) else "a different value")
        documents += [d for d in docs if isinstance(d, dict) and d.get("kind") != "Kustomization"]
    if yaml is not None and subset_agrees:
        check(True, "this check's own YAML reader reads every manifest as PyYAML does (for machines without PyYAML)")

    kustomization = os.path.join(KUBERNETES, "kustomization.yaml")
    if os.path.isfile(kustomization):
        listed = set(read_yaml(kustomization)[0].get("resources") or [])
        present = {os.path.basename(p) for p in paths} - {"kustomization.yaml"}
        check(listed == present, "kustomization.yaml lists every manifest", sorted(listed ^ present))
        kubectl = shutil.which("kubectl")
        if kubectl:
            result = subprocess.run([kubectl, "kustomize", KUBERNETES], capture_output=True, text=True, timeout=120)
            check(result.returncode == 0, "kubectl kustomize deploy/kubernetes renders (kubectl apply -k)", last_line(result.stderr))

    maps = config_maps(documents)
    runs = []
    services = [d for d in documents if d.get("kind") == "Service"]
    for workload in [d for d in documents if d.get("kind") in WORKLOADS]:
        name = f"{workload['kind']} {workload['metadata']['name']}"
        namespace = workload["metadata"].get("namespace")
        spec = pod_spec(workload)
        labels = (workload.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {}) \
            if workload["kind"] != "Pod" else workload["metadata"].get("labels") or {}
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        pod_security = spec.get("securityContext") or {}
        for container in spec.get("containers") or []:
            env = container_environment(container, maps, namespace)
            argv = [expand(w, env) for w in (container.get("command") or []) + (container.get("args") or [])]
            if not is_centre(argv):
                continue
            what = f"{name}, container {container['name']}"
            unresolved = [w for w in argv if re.search(r"\$\([A-Za-z_]", w)]
            check(not unresolved, f"{what}: every $(VAR) of its args is set by its env", unresolved)
            security = container.get("securityContext") or {}
            check((security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")) is True
                  and (security.get("runAsUser", pod_security.get("runAsUser")) or 0) != 0,
                  f"{what}: runs as a user other than root (runAsNonRoot, runAsUser)")
            check(security.get("readOnlyRootFilesystem") is True and security.get("allowPrivilegeEscalation") is False
                  and "ALL" in ((security.get("capabilities") or {}).get("drop") or []),
                  f"{what}: read-only root file system, no privilege escalation, every capability dropped")
            requests = (container.get("resources") or {}).get("requests") or {}
            check("cpu" in requests and "memory" in requests, f"{what}: requests CPU and memory", requests)

            # The secrets: files on a Secret volume, never literal values on the command line or in env.
            files = {}
            for flag in ("--journal-password-file", "--master-file"):
                path = option(argv, flag)
                if not check(path is not None, f"{what}: has {flag}"):
                    continue
                mounts = [m for m in container.get("volumeMounts") or []
                          if path.startswith(m["mountPath"].rstrip("/") + "/")]
                volume = volumes.get(mounts[-1]["name"]) if mounts else None
                secret = (volume or {}).get("secret")
                relative = path[len(mounts[-1]["mountPath"].rstrip("/")) + 1:] if mounts else None
                items = {i["path"] for i in (secret or {}).get("items") or []}
                check(secret is not None and (not items or relative in items),
                      f"{what}: {flag} {path} is a file of a Secret volume it mounts",
                      f"mount {mounts[-1]['mountPath'] if mounts else None}, volume {volume}")
                files[flag] = path
            check(not any(e.get("name") in ("PGPASSWORD", "DEVICEKIT_MASTER_KEY") for e in container.get("env") or []),
                  f"{what}: no secret in its environment (PGPASSWORD, DEVICEKIT_MASTER_KEY)")

            # Probes and ports against the flags.
            metrics = option(argv, "--metrics-port")
            bind = option(argv, "--metrics-bind") or "127.0.0.1"
            device_port = int(option(argv, "--port") or 7700)
            for probe, path in (("readinessProbe", "/ready"), ("livenessProbe", "/live"), ("startupProbe", "/live")):
                get = (container.get(probe) or {}).get("httpGet")
                if probe == "startupProbe" and get is None:
                    continue
                port = port_number((get or {}).get("port"), container)
                check(get is not None and get.get("path") == path and metrics is not None and port == int(metrics),
                      f"{what}: {probe} is GET {path} on --metrics-port {metrics}",
                      f"httpGet {get}, container port {port}")
            check(bind in ("0.0.0.0", "::", "[::]"),
                  f"{what}: --metrics-bind {bind} serves the pod's address, where the kubelet's probes come", bind)
            tcp = port_number("devices-tcp", container, "TCP")
            declared = {(p.get("protocol", "TCP"), p["containerPort"]) for p in container.get("ports") or []}
            check({("TCP", device_port), ("UDP", device_port)} <= declared,
                  f"{what}: declares --port {device_port} over TCP and UDP", sorted(declared))
            check(tcp == device_port, f"{what}: its port named devices-tcp is --port", tcp)

            # Who selects its pods.
            if workload["kind"] == "StatefulSet":
                st = workload["spec"]
                check(selects(st["selector"].get("matchLabels"), labels), f"{name}: its selector matches its pods' labels")
                headless = [s for s in services if s["metadata"]["name"] == st.get("serviceName")]
                check(len(headless) == 1 and headless[0]["spec"].get("clusterIP") == "None"
                      and selects(headless[0]["spec"].get("selector"), labels),
                      f"{name}: its serviceName {st.get('serviceName')} is a headless Service that selects its pods")
                replicas = st.get("replicas", 1)
                check(replicas == 2, f"{name}: two nodes (replicas: 2)", replicas)
                for index in range(replicas):
                    pod = f"{workload['metadata']['name']}-{index}"
                    own = [s for s in services if s["spec"].get("type") in ("LoadBalancer", "NodePort")
                           and s["spec"].get("selector", {}).get("statefulset.kubernetes.io/pod-name") == pod]
                    ok = len(own) == 1 and selects({k: v for k, v in own[0]["spec"]["selector"].items()
                                                    if k != "statefulset.kubernetes.io/pod-name"}, labels)
                    ports = {(p.get("protocol", "TCP"), port_number(p.get("targetPort", p["port"]), container, p.get("protocol", "TCP")))
                             for p in own[0]["spec"].get("ports", [])} if own else set()
                    check(ok and {("TCP", device_port), ("UDP", device_port)} <= ports,
                          f"{name}: pod {pod} has a Service of its own for devices outside the cluster, TCP and UDP to --port {device_port}",
                          f"{[s['metadata']['name'] for s in own]}, {sorted(ports, key=str)}")
                budgets = [d for d in documents if d.get("kind") == "PodDisruptionBudget"
                           and selects(d["spec"].get("selector", {}).get("matchLabels"), labels)]
                check(len(budgets) == 1 and budgets[0]["spec"].get("minAvailable") == 1,
                      f"{name}: a PodDisruptionBudget keeps one node of the two (minAvailable: 1)")
            runs.append((what, argv, {}, files))
    check(bool(runs), "deploy/kubernetes runs `devicesim center` in a container")
    return runs


def prepare(argv, files, work):
    """argv with its secret files replaced by throwaway ones."""
    for flag, _ in files.items():
        path = os.path.join(work, flag.strip("-"))
        with open(path, "w") as f:
            f.write(os.urandom(32).hex() if flag == "--master-file" else "not-the-password\n")
        os.chmod(path, 0o600)
        argv = replace_option(argv, flag, path)
    return argv


def check_refused_journal(devicesim, runs, work):
    """Runs each command line against a journal server that is not there; returns the runs that passed."""
    accepted = []
    # A port on 127.0.0.1 where nothing listens: bound, never listening, held until the end.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    try:
        for what, argv, env, files in runs:
            journal = option(argv, "--journal")
            if not check(journal is not None and journal.startswith(("postgres://", "postgresql://")),
                         f"{what}: --journal is a PostgreSQL journal", journal):
                continue
            check(urlsplit(journal).password is None, f"{what}: --journal holds no password")
            check(option(argv, "--forward") is None, f"{what}: no --forward (refused with a PostgreSQL journal)")
            runnable = replace_option(prepare(argv, files, work), "--journal", journal_elsewhere(journal, "127.0.0.1", port))
            result = run_once(devicesim, runnable, clean_environment(**env))
            if result is None:
                check(False, f"{what}: {devicesim} is there to run")
                continue
            said = result.stderr.strip()
            reached = "PostgreSQL journal" in said and f"127.0.0.1:{port}" in said
            if check(result.returncode == 69 and reached,
                     f"{what}: devicesim takes every flag and stops at the unreachable journal (exit 69, not 64)",
                     f"exit {result.returncode}: {last_line(said)}"):
                accepted.append((what, argv, env, files))
        # And that this check tells a usage error when it sees one.
        if accepted:
            what, argv, env, files = accepted[0]
            wrong = replace_option(prepare(argv, files, work), "--journal",
                                   journal_elsewhere(option(argv, "--journal"), "127.0.0.1", port)) + ["--no-such-option"]
            result = run_once(devicesim, wrong, clean_environment(**env))
            check(result is not None and result.returncode == 64,
                  "a flag devicesim does not have is refused with 64 (so the runs above would have told)",
                  result and f"exit {result.returncode}")
    finally:
        closed.close()
    return accepted


def http_get(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def check_live(devicesim, runs, work):
    """Each command line against a throwaway PostgreSQL server, when one can be made."""
    # Its own directory, searchable by the server's user (as root, pg_cluster.sh runs it as postgres).
    parent = tempfile.mkdtemp(prefix="check-deploy-pg-")
    os.chmod(parent, 0o755)
    cluster = os.path.join(parent, "pg")
    started = subprocess.run(["bash", PG_CLUSTER, "start", cluster], capture_output=True, text=True, timeout=180,
                             stdin=subprocess.DEVNULL)
    if started.returncode != 0:
        note("no throwaway PostgreSQL server, so no live runs (tools/pg_cluster.sh: " + last_line(started.stderr)
             + "; make pg-deps installs PostgreSQL's server)")
        shutil.rmtree(parent, ignore_errors=True)
        return
    server = dict(line.split("=", 1) for line in started.stdout.split())
    try:
        for what, argv, env, files in runs:
            runnable = prepare(argv, files, work)
            # The password file (the unit's: its credential) gets the throwaway server's password.
            with open(option(runnable, "--journal-password-file"), "w") as f:
                f.write(server["PGPASSWORD"] + "\n")
            runnable = replace_option(runnable, "--journal", journal_elsewhere(
                option(argv, "--journal"), server["PGHOST"], server["PGPORT"], server["PGUSER"], server["PGDATABASE"], tls=False))
            for flag in ("--port", "--metrics-port", "--web-port", "--sip-port", "--dc09-port"):
                if option(runnable, flag) is not None:
                    runnable = replace_option(runnable, flag, "0")
            if not wait_for_binary(devicesim):
                check(False, f"{what}: {devicesim} is there to run")
                continue
            log_path = os.path.join(work, "live.log")
            with open(log_path, "w") as log:
                centre = subprocess.Popen([devicesim] + runnable[1:], env=clean_environment(**env), stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=log, text=True)
            try:
                # Its first line once it listens; at most 60 s.
                ready, _, _ = select.select([centre.stdout], [], [], 60)
                line = centre.stdout.readline() if ready else ""
                try:
                    listening = json.loads(line)
                except ValueError:
                    listening = {}
                if not check(listening.get("event") == "listening" and "metrics" in listening,
                             f"{what}: against a throwaway PostgreSQL, the centre listens and serves metrics",
                             (line.strip() or "no listening line within 60 s") + "; log: " + last_line(open(log_path).read())):
                    continue
                metrics = listening["metrics"]
                live, ready = http_get(metrics, "/live"), http_get(metrics, "/ready")
                _, text = http_get(metrics, "/metrics")
                check(live[0] == 200 and ready[0] == 200 and re.search(r"^center_journal_up 1(\.0)?$", text, re.M),
                      f"{what}: GET /live 200 and GET /ready 200 on its metrics port, center_journal_up 1",
                      f"/live {live[0]}, /ready {ready[0]} {ready[1].strip()[:200]}")
            finally:
                centre.terminate()
                try:
                    centre.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    centre.kill()
                    centre.wait()
                centre.stdout.close()
    finally:
        subprocess.run(["bash", PG_CLUSTER, "stop", cluster], capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
        shutil.rmtree(parent, ignore_errors=True)


def main():
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit("usage: python3 tools/check_deploy.py DEVICESIM   (e.g. .build/debug/devicesim)")
    devicesim = os.path.abspath(sys.argv[1])
    if not wait_for_binary(devicesim):
        sys.exit(f"{devicesim} is not an executable: build it first (swift build --product devicesim)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="check-deploy-") as work:
        os.chmod(work, 0o700)
        runs = []
        unit = check_unit(devicesim, work)
        if unit:
            runs.append(unit)
        runs += check_kubernetes(work)
        if runs:
            accepted = check_refused_journal(devicesim, runs, work)
            if accepted:
                check_live(devicesim, accepted, work)
    elapsed = time.monotonic() - started
    if TALLY.failed:
        print(f"FAILED: {TALLY.failures} of {TALLY.checks} deployment checks ({elapsed:.1f} s):\n  " + "\n  ".join(TALLY.failed), flush=True)
        sys.exit(1)
    print(f"passed: {TALLY.checks} deployment checks of deploy/ against {sys.argv[1]} ({elapsed:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
