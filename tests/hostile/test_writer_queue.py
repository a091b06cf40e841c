"""Hostile: the writer queue (issue 12, finding 4: no bound, so writes
pile up in memory behind a slow commit).

The test holds SQLite's write lock on the daemon's database itself (BEGIN
IMMEDIATE from Python, as a stuck commit would), so the writer stalls on its
first commit. With limits.max_writer_queue = 1, one more write may wait;
every further upload, PUT or DELETE must be answered 503 with Retry-After at
once (nothing stored), and /healthz must keep answering (p99 < 100 ms, or
3x the idle p99 of the same run on a slower machine; printed). When the lock is released the accepted uploads commit (200). On
the old code nothing is refused: every upload waits for the lock.
Loopback only; bounded: the lock is held ~2 s (the writer's busy timeout
is 10 s), 8 small uploads.
In sanitizer builds the latency and memory figures are printed, not
bounded (attack.check_bound).
"""
import os
import sqlite3
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402
from attack import HealthProbe, check_latency, idle_probe  # noqa: E402

CONF = "[limits]\nmax_writer_queue = 1\n"


def body(tag):
    return b"playlist_id\titem_id\n" + b"".join(b"%s\t%d\n" % (tag, k + 1) for k in range(100))


class WriterQueue(unittest.TestCase):
    def test_full_queue_answers_503(self):
        with Daemon(config_text=CONF) as d:
            self.assertEqual(d.upload(body(b"warm")).status, 200)
            idle = idle_probe(d.port)
            db = sqlite3.connect(os.path.join(d.state_dir, "itemvec.db"), timeout=5,
                                 isolation_level=None)
            db.execute("BEGIN IMMEDIATE")  # the writer's next commit waits on this
            results = {}

            def upload(tag):
                results[tag] = d.upload(body(tag))

            probe = HealthProbe(d.port).start()
            threads = []
            try:
                # a: taken by the writer (stalls on the lock); b: waits in the queue.
                for tag in (b"a", b"b"):
                    t = threading.Thread(target=upload, args=(tag,))
                    t.start()
                    threads.append(t)
                    time.sleep(0.3)
                refused = []
                for k in range(6):
                    tag = b"x%d" % k
                    t0 = time.monotonic()
                    r = d.upload(body(tag))
                    refused.append((tag, r, time.monotonic() - t0))
                put = d.request("PUT", "/v1/playlists/y", {"items": ["1", "2"]})
                delete = d.request("DELETE", "/v1/playlists/warm")
            finally:
                time.sleep(0.5)
                db.execute("ROLLBACK")
                db.close()
            for t in threads:
                t.join(60)
            probe.stop()
            print("while the writer is stuck: %s; PUT %d, DELETE %d; /healthz: %s"
                  % (", ".join("%s %d in %.3fs" % (t.decode(), r.status, s)
                               for t, r, s in refused), put.status, delete.status,
                     probe.summary()))
            for tag, r, _ in refused:
                self.assertEqual(r.status, 503, r)
                p = r.json()
                self.assertEqual(p["type"], "urn:itemvec:problem:writer-busy", p)
                self.assertTrue(r.header("Retry-After"), r)
            for r in (put, delete):
                self.assertEqual(r.status, 503, r)
                self.assertTrue(r.header("Retry-After"), r)
            for tag in (b"a", b"b"):
                self.assertEqual(results[tag].status, 200, results[tag])
            # Refused writes left nothing behind; accepted ones are stored.
            for tag, _, _ in refused:
                self.assertEqual(d.request("GET", "/v1/playlists/" + tag.decode()).status, 404)
            self.assertEqual(d.request("GET", "/v1/playlists/y").status, 404)
            self.assertEqual(d.request("GET", "/v1/playlists/warm").status, 200)
            self.assertEqual(d.request("GET", "/v1/playlists/b").status, 200)
            check_latency(self, probe, idle, "test_writer_queue")


if __name__ == "__main__":
    run(globals())
