"""Hostile: gzip amplification (issue 12, finding 4: a 146 KB gzip body of
20 M rows held 80 MiB and a long commit).

The bomb: 20 M rows of one repeated line, ~80 KB of gzip that decodes to
80 MB. It must be refused with 413 (type gzip-ratio) after decoding at most
limits.max_gzip_ratio (32) times what arrived plus 64 KiB, the daemon's
peak RSS (VmHWM, reset before) must grow by less than 16 MiB, nothing may be
stored, and /healthz (probed throughout, while the bomb is sent 20 times)
must keep p99 < 100 ms (or 3x the idle p99 of the same run on a slower
machine: attack.check_latency). The control in the same run: an honest gzip upload
(distinct rows with titles, ratio ~4) is stored. On the old code the bomb
was stored: 200 after ~8 s, /healthz p99 > 1.5 s.
Loopback only; one daemon, ~1.6 MB sent.
In sanitizer builds the latency and memory figures are printed, not
bounded (attack.check_bound).
"""
import gzip
import os
import re
import sys
import time
import unittest
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402
from attack import (HealthProbe, check_bound, check_latency, idle_probe, peak_rss_bytes,  # noqa: E402
                    reset_peak_rss)

MiB = 1 << 20
BOMB_ROWS = 20000000
ROUNDS = 20


def bomb():
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [z.compress(b"playlist_id\titem_id\n")]
    block = b"p\t1\n" * (1 << 18)
    for _ in range(BOMB_ROWS // (1 << 18)):
        out.append(z.compress(block))
    out.append(z.flush())
    return b"".join(out), 20 + 4 * (BOMB_ROWS // (1 << 18)) * (1 << 18)


class GzipBomb(unittest.TestCase):
    def test_bomb_refused_early_honest_gzip_stored(self):
        body, decoded_size = bomb()
        with Daemon() as d:
            honest = b"playlist_id\titem_id\ttitle\tartist\n" + b"".join(
                b"h%d\t%d\tSong %d\tArtist %d\n" % (k // 20, k + 1, k, k % 97)
                for k in range(20000))
            r = d.upload(honest, gzip=True)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["rows_stored"], 20000)

            pid = d.proc.pid
            idle = idle_probe(d.port)
            reset_peak_rss(pid)
            before = peak_rss_bytes(pid)
            probe = HealthProbe(d.port).start()
            answers = []
            t0 = time.monotonic()
            for _ in range(ROUNDS):
                r = d.upload(body, headers={"Content-Encoding": "gzip",
                                            "Content-Type": "text/tab-separated-values"},
                             gzip=False)
                answers.append(r)
                if r.status != 413:
                    break
            elapsed = time.monotonic() - t0
            time.sleep(0.2)
            grown = peak_rss_bytes(pid) - before
            probe.stop()
            print("bomb: %d bytes of gzip for %d bytes of TSV, sent %d times; answers %s in "
                  "%.3fs; peak RSS +%.2f MiB; /healthz: %s"
                  % (len(body), decoded_size, len(answers),
                     sorted(set(a.status for a in answers)), elapsed, grown / MiB,
                     probe.summary()))
            r = answers[-1]
            print("answer: %s" % r.body[:300])
            self.assertEqual(r.status, 413, r)
            p = r.json()
            self.assertEqual(p["type"], "urn:itemvec:problem:gzip-ratio", p)
            m = re.search(r"\((\d+) bytes from (\d+)\)", p["detail"])
            self.assertIsNotNone(m, p)
            decoded, encoded = int(m.group(1)), int(m.group(2))
            self.assertLessEqual(decoded, 32 * encoded + 128 * 1024)
            self.assertLess(decoded, decoded_size // 20, "the bomb was decoded nearly whole")
            check_bound(self, grown, 16 * MiB, "peak RSS growth (bytes) during the bomb")
            self.assertEqual(d.request("GET", "/v1/playlists/p").status, 404)
            check_latency(self, probe, idle, "gzip bomb x%d" % ROUNDS)


if __name__ == "__main__":
    run(globals())
