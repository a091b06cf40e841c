"""Helpers of the hostile-client suite (tests/hostile/): latency probes of
/healthz on fresh connections, percentiles, starting itemvecd with a
configuration it must refuse, and raw half-sent requests. Traffic goes to
127.0.0.1 only; every helper is bounded in time and in requests."""
import http.client
import os
import socket
import subprocess
import time


def percentile(xs, p):
    """The p-th percentile (nearest rank) of xs; None for an empty list."""
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def healthz_once(port, timeout=5.0):
    """One GET /healthz on a new connection: (status or None, ms, error)."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        r.read()
        return r.status, (time.perf_counter() - t0) * 1000.0, None
    except (OSError, http.client.HTTPException) as e:
        return None, (time.perf_counter() - t0) * 1000.0, "%s: %s" % (type(e).__name__, e)
    finally:
        conn.close()


def healthz_probe(port, n, pause=0.02, timeout=3.0, budget=20.0):
    """n sequential /healthz requests on fresh connections, given up after
    budget seconds (the rest count as failures). Returns (latencies_ms of
    the 200s, failures as [(i, status, error)])."""
    lat, fails = [], []
    t_end = time.time() + budget
    for i in range(n):
        if time.time() > t_end:
            fails += [(j, None, "probe budget of %.0f s spent" % budget) for j in range(i, n)]
            break
        st, ms, err = healthz_once(port, timeout)
        if st == 200:
            lat.append(ms)
        else:
            fails.append((i, st, err))
        time.sleep(pause)
    return lat, fails


def summary(name, lat):
    return "%s: n=%d p50=%.2f ms p99=%.2f ms max=%.2f ms" % (
        name, len(lat), percentile(lat, 50) or 0, percentile(lat, 99) or 0, max(lat) if lat else 0)


def start_expecting_refusal(binary, args, env=None, timeout=15):
    """Starts itemvecd with args that it must refuse. Returns (exit code,
    stderr text); when it does not exit within timeout (it started
    serving), it is killed and the exit code is None."""
    e = dict(os.environ)
    e.pop("NOTIFY_SOCKET", None)
    if env:
        e.update(env)
    p = subprocess.Popen([binary] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=e)
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, (err or b"").decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, (err or b"").decode("utf-8", "replace")


def wait_port(port, timeout=10):
    """Whether something accepts on 127.0.0.1:port within timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def half_request(port, first=b"GET /healthz HTTP/1.1\r\nHost: x\r\n", source="127.0.0.1"):
    """A connection from source (any 127.0.0.0/8 address: several client
    addresses without leaving the host) that sent the start of a request
    and never ends its headers (slowloris). Non-blocking; None when the
    connect fails."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2, source_address=(source, 0))
        s.sendall(first)
        s.setblocking(False)
        return s
    except OSError:
        return None


def closed_by_peer(s):
    """Whether the server closed (or reset) the non-blocking socket s."""
    try:
        data = s.recv(4096, socket.MSG_PEEK)
        return data == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def trickle(s, data=b"X-a: b\r\n"):
    """Sends a little more header; False when the connection is gone."""
    try:
        s.send(data)
        return True
    except BlockingIOError:
        return True
    except OSError:
        return False
