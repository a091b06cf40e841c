"""Slowloris (issue 12, finding 5): connections that never finish their
request headers, trickling a header line now and then so that an
inactivity timeout never fires, must neither lock out a new client nor be
held forever.

- a flood of such connections from three addresses (127.0.0.1, the
  victim's own, and 127.0.0.2-3), over both the per-address and the total
  limit, while a new client asks /healthz: every request is answered, and
  the latency (p50/p99, fresh connections) is printed next to the baseline
  measured in the same run;
- one trickling connection is closed by server.header_timeout, although it
  is never inactive for long;
- control: a client that sends its headers slowly but within the deadline
  is answered.

Bounded: ~5 s of attack, at most 5,000 attacker connections and 130 probe
requests. Limits are configured small so that the test needs few sockets."""
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from attack import (closed_by_peer, half_request, healthz_probe, percentile,  # noqa: E402
                    summary, trickle)
from daemon import Daemon, run  # noqa: E402

HEADER_TIMEOUT = 2
CONF = ("[server]\nmax_connections = 64\nmax_connections_per_ip = 32\n"
        "header_timeout = %d\nconnection_timeout = 30\n" % HEADER_TIMEOUT)


class Flood:
    """Holds `width` half-sent requests open, trickling a header line into
    each every `period` s and replacing those the server closes, until
    stopped or `max_opened` connections were opened."""

    def __init__(self, port, width=120, period=0.25, max_opened=5000,
                 sources=("127.0.0.1", "127.0.0.2", "127.0.0.3")):
        self.port, self.width, self.period, self.max_opened = port, width, period, max_opened
        self.sources = sources
        self.socks = []
        self.opened = 0
        self.closed_by_server = 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def top_up(self):
        while len(self.socks) < self.width and self.opened < self.max_opened:
            s = half_request(self.port, source=self.sources[self.opened % len(self.sources)])
            self.opened += 1
            if s is None:
                self.closed_by_server += 1
                continue
            self.socks.append(s)

    def run(self):
        while not self.stop_flag.is_set():
            alive = []
            for s in self.socks:
                if closed_by_peer(s) or not trickle(s):
                    self.closed_by_server += 1
                    s.close()
                else:
                    alive.append(s)
            self.socks = alive
            self.top_up()
            self.stop_flag.wait(self.period)

    def start(self):
        self.top_up()
        self.thread.start()

    def stop(self):
        self.stop_flag.set()
        self.thread.join(10)
        for s in self.socks:
            s.close()


class Slowloris(unittest.TestCase):
    def test_flood_does_not_lock_out_a_new_client(self):
        with Daemon(config_text=CONF) as d:
            base, fails = healthz_probe(d.port, 30)
            self.assertEqual(fails, [])
            flood = Flood(d.port)
            flood.start()
            try:
                time.sleep(1.0)  # the flood is in place (and past MHD's plain limit of 64)
                held = len(flood.socks)
                lat, fails = healthz_probe(d.port, 100, pause=0.03)
            finally:
                flood.stop()
            print(summary("baseline /healthz", base))
            print(summary("/healthz during slowloris (%d half-sent requests kept open, %d opened "
                          "in all, %d closed by the server%s)"
                          % (held, flood.opened, flood.closed_by_server,
                             ", budget exhausted" if flood.opened >= flood.max_opened else ""),
                          lat))
            print("acceptance: p99 during the attack %.2f ms (target < 100 ms)"
                  % (percentile(lat, 99) or -1))
            self.assertFalse(fails, "a new client was locked out (%d of 100): %r" % (len(fails), fails[:3]))
            self.assertIsNone(d.proc.poll())
            m = d.request("GET", "/metrics").body.decode()
            print("server side: " + ", ".join(
                l.split("{")[1].replace('"} ', "=").replace('reason="', "")
                for l in m.splitlines() if l.startswith("itemvecd_http_connections_closed_total")))
            self.assertRegex(m, r'itemvecd_http_connections_closed_total\{reason="evicted"\} [1-9]')

    def test_trickling_connection_is_closed_by_the_header_deadline(self):
        with Daemon(config_text=CONF) as d:
            s = half_request(d.port)
            self.assertIsNotNone(s)
            t0 = time.time()
            closed_after = None
            # a header line every 0.25 s: never inactive, so only an absolute
            # deadline closes it; give it 3x header_timeout
            while time.time() - t0 < 3 * HEADER_TIMEOUT:
                if closed_by_peer(s) or not trickle(s):
                    closed_after = time.time() - t0
                    break
                time.sleep(0.25)
            s.close()
            print("trickling connection closed after %s s (header_timeout %d s, "
                  "connection_timeout 30 s)" % (
                      "%.2f" % closed_after if closed_after else "never", HEADER_TIMEOUT))
            self.assertIsNotNone(closed_after, "held past 3x header_timeout")
            # the deadline also applies to the next request on a kept-alive
            # connection: one request, then silence
            s = half_request(d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            t0 = time.time()
            got, closed_after = b"", None
            while time.time() - t0 < 3 * HEADER_TIMEOUT:
                try:
                    chunk = s.recv(4096)
                    if chunk == b"":
                        closed_after = time.time() - t0
                        break
                    got += chunk
                except BlockingIOError:
                    time.sleep(0.05)
            s.close()
            self.assertIn(b" 200 ", got.split(b"\r\n")[0])
            self.assertIsNotNone(closed_after, "idle kept-alive connection held past the deadline")

    def test_busy_connections_count_against_the_address(self):
        """Connections busy with a request are never closed to make room: at
        max_connections_per_ip a new one from that address is refused,
        while another address is served."""
        conf = "[server]\nmax_connections_per_ip = 2\nheader_timeout = %d\n" % HEADER_TIMEOUT
        with Daemon(config_text=conf) as d:
            busy = [half_request(d.port, b"POST /v1/playlists HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Type: text/tab-separated-values\r\n"
                                 b"Content-Length: 100000\r\n\r\nplaylist_id\titem_id\n")
                    for _ in range(2)]
            self.assertTrue(all(busy))
            time.sleep(0.3)
            refused = half_request(d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            refused.setblocking(True)
            refused.settimeout(5)
            try:
                answer = refused.recv(100)
            except ConnectionResetError:
                answer = b""
            refused.close()
            other = half_request(d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                                 source="127.0.0.2")
            other.setblocking(True)
            other.settimeout(5)
            served = other.recv(100)
            other.close()
            for s in busy:
                self.assertFalse(closed_by_peer(s), "a busy connection was closed")
                s.close()
            self.assertEqual(answer, b"", "a third connection from the address was served")
            self.assertTrue(served.startswith(b"HTTP/1.1 200"), served)
            time.sleep(0.5)  # the server sees the busy ones close
            m = d.request("GET", "/metrics").body.decode()
            self.assertRegex(m, r'itemvecd_http_connections_closed_total\{reason="refused"\} [1-9]')

    def test_slow_but_complete_headers_are_answered(self):
        with Daemon(config_text=CONF) as d:
            s = half_request(d.port, b"GET /healthz HTTP/1.1\r\n")
            for part in (b"Host: x\r\n", b"X-a: 1\r\n", b"X-b: 2\r\n", b"\r\n"):
                time.sleep(0.2)  # 0.8 s in all, well inside header_timeout
                self.assertTrue(trickle(s, part))
            s.setblocking(True)
            s.settimeout(5)
            data = s.recv(4096)
            s.close()
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:100])


if __name__ == "__main__":
    run(globals())
