#!/usr/bin/env python3
"""Failover of the centre (issue 18): two nodes, each in a network namespace of its own with its own address,
share one PostgreSQL journal; a fleet uses both, node a killed with SIGKILL in the middle of an alarm storm.

    python3 tools/check_failover.py .build/debug/devicesim [--devices N] [--rate R] [--duration S] [--transport tcp|udp]

Needs root (it makes the namespaces: `ip netns`, veth pairs, removed at the end whatever happens) and
PostgreSQL's server (`make pg-deps`; a throwaway cluster by tools/pg_cluster.sh, removed at the end). The nodes
reach the database over its Unix socket (network namespaces do not separate the file system); the devices
reach the nodes over the veth pairs:

    host (devicesim load ×2)  10.213.1.1 ── veth ── 10.213.1.2  node a (devicesim center --node a)
                              10.213.2.1 ── veth ── 10.213.2.2  node b (devicesim center --node b)

Two fleets of `devicesim load`, half the devices each: fleet A has node a as its primary and b as its secondary,
fleet B the other way round. Both nodes run an automatic operator (engages after 1 s, closes 2 s later) with a
3 s case lease. After 10 s of the storm node a is killed with SIGKILL: its devices find their connection reset
(TCP) or their centre silent (UDP), try a twice, and open their sessions at b.

Checks (ok/FAIL, exit status 1 if any failed):
- each fleet's run ends well and its journal check passes (`--center-journal`): every alarm a device saw
  acknowledged is in the database, once;
- every alarm recorded was dispatched once: one case each, no state of a case written twice, and every case
  closed in the end (node b took over node a's open cases once a's lease lapsed, and worked them);
- every device of fleet A opened a session at b after the kill.

Measured (printed): the devices' failover (kill → the device's session at b, from the journal's supervision
rows), the alarms' failover (for each alarm of fleet A raised before its device reached b and recorded after
the kill: kill or its press, whichever is later → b recorded it; the ack follows once the batch commits), how
long b took to take a's cases over, and each fleet's alarm → ack from the load tool's report.
"""
import argparse, json, os, secrets, signal, subprocess, sys, tempfile, time, urllib.request
from checklib import Tally, percentiles

HERE = os.path.dirname(os.path.abspath(__file__))
TALLY = Tally()


check = TALLY.check




class Namespaces:
    """Two network namespaces, each joined to the host by a veth pair: 10.213.N.1 here, 10.213.N.2 there."""

    def __init__(self):
        tag = f"{os.getpid() % 100000}"
        self.names = {node: f"dkfo-{node}-{tag}" for node in ("a", "b")}
        self.links = {node: f"dkfo{node}{tag}" for node in ("a", "b")}
        self.made = []

    @staticmethod
    def ip(*arguments):
        subprocess.run(["ip", *arguments], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def address(self, node, side):
        return f"10.213.{1 if node == 'a' else 2}.{side}"

    def make(self):
        taken = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
        if "10.213." in taken:
            raise SystemExit("10.213.0.0/16 is in use on this host: the check needs it for its namespaces")
        for node, name in self.names.items():
            self.ip("netns", "add", name)
            self.made.append(name)
            host, inner = self.links[node], self.links[node] + "p"
            self.ip("link", "add", host, "type", "veth", "peer", "name", inner, "netns", name)
            self.ip("addr", "add", self.address(node, 1) + "/24", "dev", host)
            self.ip("link", "set", host, "up")
            self.ip("-n", name, "addr", "add", self.address(node, 2) + "/24", "dev", inner)
            self.ip("-n", name, "link", "set", inner, "up")
            self.ip("-n", name, "link", "set", "lo", "up")

    def remove(self):
        for name in self.made:  # the veth pair goes with its namespace
            subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)


def psql(cluster, sql):
    out = subprocess.run(
        [cluster["psql"], "-X", "-At", "-F", "\t", "-h", cluster["dir"], "-p", cluster["PGPORT"], "-U", "devicekit", "-d", "devicekit",
         "-c", sql], capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def start_cluster(directory):
    out = subprocess.run([os.path.join(HERE, "pg_cluster.sh"), "start", directory], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit("could not start PostgreSQL: " + out.stderr.strip())
    cluster = dict(line.split("=", 1) for line in out.stdout.split())
    cluster["dir"] = directory
    bindir = os.path.dirname(subprocess.run(["bash", "-c", "ls -dv /usr/lib/postgresql/*/bin/psql | tail -n1"],
                                            capture_output=True, text=True).stdout.strip())
    cluster["psql"] = os.path.join(bindir, "psql") if bindir else "psql"
    return cluster


def start_node(devicesim, namespaces, node, journal, master, log, environment):
    address = namespaces.address(node, 2)
    process = subprocess.Popen(
        ["ip", "netns", "exec", namespaces.names[node], devicesim, "center", "--host", address, "--port", "7700",
         "--journal", journal, "--master-file", master, "--node", node, "--case-lease", "3s",
         "--auto-engage-after", "1s", "--auto-close-after", "2s", "--no-call-on-engage", "--heartbeat-interval", "10s",
         "--metrics-port", "9100", "--metrics-bind", address, "--log-level", "notice"],
        stdout=subprocess.PIPE, stderr=log, text=True, env=environment)
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=30)
        log.seek(0)
        raise SystemExit(f"node {node} did not start (exit {process.returncode}); its log:\n{log.read()[-4000:]}")
    return process


def ready(address):
    try:
        with urllib.request.urlopen(f"http://{address}:9100/ready", timeout=2) as answer:
            return answer.status == 200
    except Exception:
        return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("devicesim")
    parser.add_argument("--devices", type=int, default=2000, help="devices in all, half each fleet")
    parser.add_argument("--rate", type=float, default=300, help="alarms a second in all")
    parser.add_argument("--duration", type=int, default=30, help="seconds of the storm; node a dies after 10")
    parser.add_argument("--transport", default="tcp", choices=["tcp", "udp"])
    options = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("check_failover.py makes network namespaces: run it as root")
    devicesim = os.path.abspath(options.devicesim)
    work = tempfile.mkdtemp(prefix="dkfo-", dir="/tmp")
    os.chmod(work, 0o755)
    namespaces, cluster, nodes, fleets = Namespaces(), None, {}, []
    try:
        cluster = start_cluster(os.path.join(work, "pg"))
        namespaces.make()
        journal = f"postgres://devicekit@localhost:{cluster['PGPORT']}/devicekit?host={cluster['dir']}"
        environment = dict(os.environ, PGPASSWORD=cluster["PGPASSWORD"])
        master = os.path.join(work, "master.hex")
        with open(master, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        logs = {node: open(os.path.join(work, f"node-{node}.log"), "w+") for node in ("a", "b")}
        for node in ("a", "b"):
            nodes[node] = start_node(devicesim, namespaces, node, journal, master, logs[node], environment)
        check(all(ready(namespaces.address(n, 2)) for n in nodes), "both nodes ready (/ready 200 on their own addresses)")

        half = options.devices // 2
        report = {fleet: os.path.join(work, f"fleet-{fleet}.json") for fleet in ("A", "B")}
        for fleet, primary, secondary, first in (("A", "a", "b", 1), ("B", "b", "a", 1_000_001)):
            fleets.append(subprocess.Popen(
                [devicesim, "load", "--center", namespaces.address(primary, 2) + ":7700",
                 "--secondary", namespaces.address(secondary, 2) + ":7700", "--devices", str(half),
                 "--first-id", str(first), "--transport", options.transport, "--ramp", "2000",
                 "--alarm-rate", str(options.rate / 2), "--cancel-share", "0.1", "--duration", f"{options.duration}s",
                 "--drain", "60s", "--heartbeat-interval", "10s", "--master-file", master, "--center-journal", journal,
                 "--quiet", "--report", report[fleet]],
                stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"fleet-{fleet}.err"), "w+"), env=environment))
        ramp = half / 2000 + 1
        time.sleep(ramp + 10)
        nodes["a"].send_signal(signal.SIGKILL)  # `ip netns exec` became the centre: this is its pid
        killed = time.time()
        killed_ms = int(killed * 1000)
        nodes["a"].wait(timeout=10)
        print(f"     node a killed (SIGKILL) {ramp + 10:.1f} s into the run", flush=True)

        for fleet, process in zip(("A", "B"), fleets):
            process.wait(timeout=options.duration + 300)
            with open(os.path.join(work, f"fleet-{fleet}.err")) as f:
                err = f.read()
            check(process.returncode == 0, f"fleet {fleet}: the load run ended well and its journal check passed", err[-2000:])
            try:
                with open(report[fleet]) as f:
                    run = json.load(f)
            except (OSError, ValueError) as error:
                check(False, f"fleet {fleet}: its report", error)
                continue
            counts, journal_check = run.get("counts", {}), run.get("centerJournal") or {}
            check(journal_check.get("missingCount") == 0 and journal_check.get("duplicated") == 0
                  and journal_check.get("acknowledged") == counts.get("alarmsAcknowledged"),
                  f"fleet {fleet}: every one of its {counts.get('alarmsAcknowledged')} acknowledged alarms in the database, once", journal_check)
            check(counts.get("alarmsLost") == 0, f"fleet {fleet}: no alarm lost ({counts.get('alarmsRaised')} raised)", counts)
            alarm = run.get("latency", {}).get("alarm", {}).get("percentiles", {})
            print(f"     fleet {fleet}: alarm → ack (the load tool's, from the Poisson instant) "
                  + ", ".join(f"{k} {alarm[k] / 1000:.1f} ms" for k in ("p50", "p99", "max") if k in alarm), flush=True)

        deadline = time.time() + 60
        while time.time() < deadline and psql(cluster, "SELECT COUNT(*) FROM dispatch_case WHERE state < 4")[0][0] != "0":
            time.sleep(0.5)
        open_cases = int(psql(cluster, "SELECT COUNT(*) FROM dispatch_case WHERE state < 4")[0][0])
        check(open_cases == 0, "every case closed in the end (a's open cases taken over and worked by b)", f"{open_cases} still open")
        alarms = int(psql(cluster, "SELECT COUNT(*) FROM message WHERE kind = 'alarm'")[0][0])
        cases = psql(cluster, "SELECT COUNT(*), COUNT(DISTINCT (device, alarm_id)) FROM dispatch_case")[0]
        check(alarms > 0 and int(cases[0]) == alarms and int(cases[1]) == alarms,
              f"each of the {alarms} alarms recorded dispatched once: one case each", cases)
        twice = psql(cluster, "SELECT case_id, state, COUNT(*) FROM case_update GROUP BY 1, 2 HAVING COUNT(*) > 1 LIMIT 5")
        check(not twice, "no state of a case written twice (one node worked each case at a time)", twice)
        owners = dict(psql(cluster, "SELECT COALESCE(owner, '-'), COUNT(*) FROM dispatch_case GROUP BY 1"))
        print(f"     cases by their last owner: {owners}", flush=True)

        sessions = psql(cluster, f"""
            SELECT device, MIN(at) FROM supervision WHERE online = 1 AND at >= {killed_ms} AND device < 1000000 GROUP BY device""")
        moved = {int(d): int(at) for d, at in sessions}
        check(len(moved) == half, f"all {half} devices of fleet A opened a session at b after the kill", f"{len(moved)} did")
        print(f"     devices' failover (kill → session at b): {percentiles([at - killed_ms for at in moved.values()])}", flush=True)
        rows = psql(cluster, f"""
            SELECT device, id, received_at, (json::jsonb->>'triggeredAt')::bigint FROM message
            WHERE kind = 'alarm' AND device < 1000000 AND received_at >= {killed_ms}""")
        failover = [int(received) - max(int(pressed), killed_ms) for device, _, received, pressed in rows
                    if int(device) in moved and int(pressed) < moved[int(device)]]
        print(f"     alarms' failover (kill or press → recorded at b, for alarms raised before their device reached b): "
              f"{percentiles(failover)}", flush=True)
        logs["b"].flush()
        text = open(logs["b"].name).read()
        check("took over the open cases of nodes whose lease lapsed" in text, "b said in its log that it took a's open cases over")
        for line in text.splitlines():
            if "took over the open cases" in line:
                print("     b: " + line.strip()[:300], flush=True)
    finally:
        for process in fleets:
            if process.poll() is None:
                process.kill()
        for process in nodes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
        namespaces.remove()
        if cluster:
            subprocess.run([os.path.join(HERE, "pg_cluster.sh"), "stop", cluster["dir"]], stderr=subprocess.DEVNULL)
        if TALLY.failures == 0 and not os.environ.get("FAILOVER_KEEP"):
            subprocess.run(["rm", "-rf", work])
        else:
            print(f"     logs kept in {work}", flush=True)
    print(f"{'FAILED' if TALLY.failures else 'passed'}: {TALLY.checks} failover checks, two nodes in network namespaces on one PostgreSQL", flush=True)
    sys.exit(1 if TALLY.failures else 0)


if __name__ == "__main__":
    main()
