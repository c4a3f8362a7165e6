"""What the peer checks (tools/check_*.py) share: a counted check that prints one line, a loopback port free
for both TCP and UDP, and latency percentiles as the notes report them."""

import socket


class Tally:
    """Counts checks and failures; `check` prints `ok   what` or `FAIL what: detail` (the detail's tail)."""

    def __init__(self, detail_limit=2500):
        self.checks = 0
        self.failed = []
        self.detail_limit = detail_limit

    def check(self, ok, what, detail=""):
        self.checks += 1
        if not ok:
            self.failed.append(what)
        print(("ok   " if ok else "FAIL ") + what + ("" if ok or not detail else ": " + str(detail)[-self.detail_limit:]),
              flush=True)
        return ok

    @property
    def failures(self):
        return len(self.failed)


def free_port():
    """A port free for both UDP and TCP on loopback (another process may still take it before it is bound:
    where the program can, let it bind port 0 and say which it got)."""
    for _ in range(50):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            udp.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            tcp.close()
            udp.close()
    raise RuntimeError("no loopback port free for both TCP and UDP")


def percentiles(values, unit="ms"):
    """`p50 …, p99 …, max … (count)` of `values`, or `none`."""
    if not values:
        return "none"
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]
    return f"p50 {pick(0.5):.0f} {unit}, p99 {pick(0.99):.0f} {unit}, max {values[-1]:.0f} {unit} ({len(values)})"
