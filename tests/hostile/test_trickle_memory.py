"""Hostile: memory held per upload connection while a client trickles its
body (issue 12, finding 3: ~35x the bytes sent).

Each shape runs against a fresh daemon: the body is sent in 16 KiB pieces
with pauses, left unfinished or finished, and the growth of the daemon's peak
RSS (VmHWM of /proc/<pid>/status, reset just before) is compared with the
bytes sent, in the same run:
  - a CSV header of ~1 MB of commas (one field per byte; the old parser
    kept 32 bytes of bookkeeping per field: +31 MiB for 1 MiB),
  - one NDJSON line of ~1 MB of `1,` items, then small lines (the old JSON
    fast path kept a 72-byte descriptor per item: +37 MiB),
  - the control: 4 MB of TSV rows with all-distinct ids, whose write set is
    what an upload must hold (~7x its bytes for ids this short).
Bounds: growth <= 4 x bytes + 4 MiB for the parser shapes, <= 10 x bytes +
4 MiB for the write set. /healthz is probed every 20 ms during each (~150
probes); p99 and max printed, p99 < 100 ms or 3x the same daemon's idle p99
measured just before (attack.check_latency; a 1 MB record is ~35 ms of loop
work in one piece, so the max may pass 100 ms on a loaded machine).
Loopback only; ~6 MB sent in all, ~3 s per shape.
In sanitizer builds the latency and memory figures are printed, not
bounded (attack.check_bound).
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402
from attack import (HealthProbe, RawUpload, check_bound, check_latency, idle_probe,  # noqa: E402
                    peak_rss_bytes, reset_peak_rss)

MiB = 1 << 20
PIECE = 16 * 1024
TRICKLE_SECONDS = 3.0  # each body is spread over this, /healthz probed every 20 ms


def csv_commas(n):
    yield b"playlist_id,item_id" + b"," * (n - 20)


def ndjson_big_record(n):
    body = b'{"id":"big","items":[' + b"1," * 499000 + b'1]}\n'  # ~1 MB, one line
    yield body
    k = 0
    while True:
        yield b'{"id":"q%d","items":[%d]}\n' % (k, k + 1)
        k += 1


def tsv_distinct(n):
    yield b"playlist_id\titem_id\n"
    k = 0
    while True:
        yield b"p%d\t%d\n" % (k // 50, 1000000 + k)
        k += 1


class TrickleMemory(unittest.TestCase):
    def trickle(self, name, content_type, gen, total, factor, finish):
        with Daemon() as d:
            pid = d.proc.pid
            idle = idle_probe(d.port)
            up = RawUpload(d.port, content_type, length=total + 4096)
            time.sleep(0.2)
            reset_peak_rss(pid)
            before = peak_rss_bytes(pid)
            probe = HealthProbe(d.port).start()
            buf = b""
            pause = TRICKLE_SECONDS / (total / PIECE)  # spread over ~3 s
            for part in gen(total):
                buf += part
                while len(buf) >= PIECE or (buf and up.sent + len(buf) >= total):
                    piece, buf = buf[:PIECE], buf[PIECE:]
                    self.assertTrue(up.send(piece), "%s: connection closed early" % name)
                    time.sleep(pause)
                if up.sent >= total:
                    break
            time.sleep(0.3)
            grown = peak_rss_bytes(pid) - before
            probe.stop()
            bound = factor * up.sent + 4 * MiB
            print("%s: sent %.2f MiB, peak RSS +%.2f MiB (%.1fx), bound %.1f MiB; /healthz: %s"
                  % (name, up.sent / MiB, grown / MiB, grown / up.sent, bound / MiB,
                     probe.summary()))
            if finish:
                status, _, body = up.finish()
                self.assertEqual(status, 200, body)
            else:
                up.close()
            check_bound(self, grown, bound + 1, "%s: RSS growth (bytes)" % name)
            check_latency(self, probe, idle, name)

    def test_csv_wide_header(self):
        self.trickle("csv 1 MB of commas", "text/csv", csv_commas, 1000000, 4, finish=False)

    def test_ndjson_long_record(self):
        self.trickle("ndjson 1 MB record", "application/x-ndjson", ndjson_big_record,
                     1200000, 4, finish=True)

    def test_tsv_distinct_ids_control(self):
        self.trickle("tsv distinct ids (control)", "text/tab-separated-values", tsv_distinct,
                     4 * MiB, 10, finish=True)


if __name__ == "__main__":
    run(globals())
