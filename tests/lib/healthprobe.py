"""Helpers for tests/hostile: a /healthz prober that runs while an attack
does, and the daemon's memory from /proc. Loopback only.

    probe = HealthProbe(d.port).start()
    ... attack ...
    lat = probe.stop()          # seconds per /healthz, in order
    print(probe.summary())      # "n=.. p50=..ms p99=..ms max=..ms"
"""
import http.client
import threading
import time


def rss_bytes(pid):
    """Resident set size of pid (VmRSS of /proc/<pid>/status), in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for pid %d" % pid)


def percentile(values, q):
    v = sorted(values)
    if not v:
        return float("nan")
    k = min(len(v) - 1, max(0, int(round(q / 100.0 * (len(v) - 1)))))
    return v[k]


class HealthProbe:
    """GET /healthz on a new connection every `interval` seconds until
    stopped; a request that fails or times out counts as `timeout` seconds."""

    def __init__(self, port, interval=0.02, timeout=10.0):
        self.port = port
        self.interval = interval
        self.timeout = timeout
        self.latencies = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                c.request("GET", "/healthz")
                r = c.getresponse()
                r.read()
                c.close()
                ok = r.status == 200
            except OSError:
                ok = False
            dt = time.monotonic() - t0
            if not ok:
                self.failures += 1
                dt = max(dt, self.timeout)
            self.latencies.append(dt)
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join(self.timeout + 5)
        return self.latencies

    def p99(self):
        return percentile(self.latencies, 99)

    def summary(self):
        lat = self.latencies
        return "n=%d p50=%.1fms p99=%.1fms max=%.1fms failures=%d" % (
            len(lat), percentile(lat, 50) * 1e3, percentile(lat, 99) * 1e3,
            (max(lat) if lat else float("nan")) * 1e3, self.failures)
