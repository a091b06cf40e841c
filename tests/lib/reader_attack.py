"""Helpers of the reader attacks in tests/hostile/ (issue 12, findings 6-8):
a /healthz prober and the attackers, each in its own process so the test's
Python (and its GIL) never shows up as daemon latency; percentiles; the
/healthz acceptance check; and the state-dir fixture (tests/tools/
state_fixture: a large catalog and ready models without uploading and
training through the daemon). Loopback only; every attack is bounded by a
request count and a deadline.

    healthz_rounds(self, "name", d.port,
                   [("GET", "/v1/items/i0000001", None, {})],   # the control
                   [("GET", "/v1/...", None, {})])              # the attack

The control runs the same number of client processes with a cheap request,
so both runs load the (shared, small) machine alike and differ only in what
the daemon has to do.
"""
import http.client
import multiprocessing as mp
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack import rss_bytes, reset_peak_rss, sanitized  # noqa: E402,F401 (re-exported)

# The acceptance: /healthz p99 under 100 ms while an attack runs.
# The test box has 2 cores shared by several builds and test runs (load
# averages of 10+ were seen), where the client processes alone can push a
# /healthz past 100 ms by scheduling; so the limit is 100 ms or 3x the p99
# of the control run (same clients, cheap request) measured just before,
# whichever is larger, but never more than 400 ms; and a test passes at the
# first of up to 3 rounds (control, then attack) that meets it, so a burst of
# load from another test or build fails a round, not the test. The old code
# stalls the loop for seconds under these attacks, in every round.
P99_LIMIT_MS = 100.0
P99_CONTROL_FACTOR = 3.0
P99_CAP_MS = 400.0



_ctx = mp.get_context("fork")


def percentile(xs, q):
    """The q-th percentile (nearest rank) of xs; 0 for an empty list."""
    if not xs:
        return 0.0
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(q / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def fixture(state_dir, items=10000, playlist_size=50, big=0, models=1, dims=32, seed=1):
    """Writes the state_fixture catalog and models into state_dir."""
    tool = os.path.join(os.environ["ITEMVEC_TOOLS"], "state_fixture")
    subprocess.check_call([tool, "--state-dir", state_dir, "--items", str(items),
                           "--playlist-size", str(playlist_size), "--big-playlist", str(big),
                           "--models", str(models), "--dims", str(dims), "--seed", str(seed)])


def _probe_main(port, interval, timeout, stop, out):
    lat = []
    while not stop.is_set():
        t0 = time.monotonic()
        ok = False
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            c.close()
            ok = r.status == 200
        except (OSError, http.client.HTTPException):
            pass
        ms = (time.monotonic() - t0) * 1000.0
        lat.append(ms if ok else max(ms, timeout * 1000.0))  # a failure counts as the timeout
        stop.wait(interval)
    out.put(lat)


class Probe:
    """GET /healthz on a new connection every `interval` seconds (as a
    monitor would) while the with-block runs; .latencies in ms."""

    def __init__(self, port, interval=0.01, timeout=10.0):
        self.port, self.interval, self.timeout = port, interval, timeout
        self.latencies = []

    def __enter__(self):
        self.stop = _ctx.Event()
        self.out = _ctx.Queue()
        self.proc = _ctx.Process(target=_probe_main,
                                 args=(self.port, self.interval, self.timeout, self.stop,
                                       self.out))
        self.proc.start()
        time.sleep(0.2)  # let it take a few samples before the attack starts
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.latencies = self.out.get(timeout=self.timeout + 30)
        self.proc.join(10)


def probe_for(port, seconds, interval=0.01):
    """The idle control: /healthz latencies (ms) over `seconds`."""
    with Probe(port, interval) as p:
        time.sleep(seconds)
    return p.latencies


def _attack_main(port, reqs, requests, deadline, out):
    counts, conn, i = {}, None, 0
    while i < requests and time.time() < deadline:
        method, path, body, headers = reqs[i % len(reqs)]
        i += 1
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            r.read()
            counts[r.status] = counts.get(r.status, 0) + 1
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            counts[type(e).__name__] = counts.get(type(e).__name__, 0) + 1
            if conn:
                conn.close()
            conn = None
    out.put(counts)


def hammer(port, reqs, workers=4, requests=100, seconds=10.0):
    """`workers` processes, each sending up to `requests` of reqs (a list of
    (method, path, body bytes or None, headers dict), taken in turn) on a
    kept-alive connection, until `seconds` have passed. Returns the merged
    {status or exception name: count}."""
    out = _ctx.Queue()
    deadline = time.time() + seconds
    procs = [_ctx.Process(target=_attack_main, args=(port, reqs, requests, deadline, out))
             for _ in range(workers)]
    for p in procs:
        p.start()
    total = {}
    for _ in procs:
        for k, v in out.get(timeout=seconds + 120).items():
            total[k] = total.get(k, 0) + v
    for p in procs:
        p.join(10)
    return total


class Run:
    """What attack() measured: the /healthz latencies (ms) and the answers."""

    def __init__(self, latencies, answers):
        self.latencies, self.answers = latencies, answers


def attack(port, reqs, workers=4, requests=150, seconds=5.0):
    """hammer() with a /healthz Probe running alongside."""
    with Probe(port) as p:
        answers = hammer(port, reqs, workers, requests, seconds)
    return Run(p.latencies, answers)


def healthz_limit(control):
    """The acceptance limit for an attack run after this control run."""
    return min(max(P99_LIMIT_MS, P99_CONTROL_FACTOR * percentile(control.latencies, 99)),
               P99_CAP_MS)


def report(name, control, hostile, rnd=1):
    c, a = control.latencies, hostile.latencies
    print("healthz %s (round %d): control n=%d p50=%.1f p99=%.1f ms | attack n=%d p50=%.1f "
          "p99=%.1f max=%.1f ms | limit %.1f ms%s | answers %s" % (
              name, rnd, len(c), percentile(c, 50), percentile(c, 99), len(a),
              percentile(a, 50), percentile(a, 99), max(a) if a else 0, healthz_limit(control),
              " (sanitizer build: not checked)" if sanitized() else "", hostile.answers))


def check_healthz(test, name, control, hostile):
    """Prints the /healthz latencies of a control and an attack run and
    asserts the attack's p99 is under the acceptance limit (P99_LIMIT_MS);
    in sanitizer builds only prints."""
    report(name, control, hostile)
    test.assertGreater(len(hostile.latencies), 5, "the probe took too few samples")
    if sanitized():
        return
    p_a = percentile(hostile.latencies, 99)
    test.assertLess(p_a, healthz_limit(control), "%s: /healthz p99 %.1f ms under attack "
                    "(control %.1f ms)" % (name, p_a, percentile(control.latencies, 99)))


def healthz_rounds(test, name, port, control_reqs, hostile_reqs, rounds=3, check=None,
                   control_kw=None, **kw):
    """Up to `rounds` rounds of a control run (control_reqs, control_kw or
    kw) then an attack run (hostile_reqs, kw), each printed; passes at the
    first round whose attack p99 is under its limit. A loop that the attack
    blocks fails every round; a burst of load from other processes on the
    shared machine (another test, a build) fails one. check(run), when
    given, asserts on every attack run's answers. Returns the last attack
    run."""
    for rnd in range(1, rounds + 1):
        control = attack(port, control_reqs, **(control_kw or kw))
        hostile = attack(port, hostile_reqs, **kw)
        report(name, control, hostile, rnd)
        if check:
            check(hostile)
        test.assertGreater(len(hostile.latencies), 5, "the probe took too few samples")
        p_a = percentile(hostile.latencies, 99)
        if sanitized() or p_a < healthz_limit(control):
            return hostile
    test.fail("%s: /healthz p99 %.1f ms under attack in each of %d rounds (last limit %.1f ms)"
              % (name, p_a, rounds, healthz_limit(control)))
