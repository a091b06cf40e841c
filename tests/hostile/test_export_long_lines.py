"""Embeddings export of long lines (issue 12, finding 12): a model row
whose NDJSON line passes 16 KiB (1024 dimensions of small negative floats
print 16 bytes each, plus a 200-byte id) must be exported whole, never with floats dropped.

A 1024-dimension model is trained, then (daemon stopped) its file's floats
are replaced by small negatives with nine significant digits, the CRCs
recomputed; after a restart GET /v1/embeddings (plain and gzip) must give
every item with all 1024 values, equal to the planted float32s.

Bounded: one small training job, 2 daemon starts, ~6 requests."""
import gzip
import json
import os
import random
import sqlite3
import struct
import sys
import unittest
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402
from pipeline import run_job  # noqa: E402

DIMS = 1024
HDR = 64
LONG_ID = b"item-" + b"x" * 200 + b"-%d"  # long ids (up to 256 bytes are valid)
ROWS = b"playlist_id\titem_id\n" + b"".join(
    b"p%d\t" % (i % 60) + LONG_ID % (1 + (i * 7) % 40) + b"\n" for i in range(1200))


def plant(path, seed=5):
    """Rewrites a model file (storage/model_file.c layout) with negative
    floats of nine significant digits; returns (values per row, new crc)."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    n, dims = struct.unpack_from("<QI", data, 16)
    assert dims == DIMS, dims
    rnd = random.Random(seed)
    vals = [-rnd.uniform(1.1, 9.9) * 1e-30 for _ in range(n * dims)]
    packed = struct.pack("<%df" % len(vals), *vals)
    floats = struct.unpack("<%df" % len(vals), packed)  # as float32
    off = HDR + n * 4
    data[off:off + len(packed)] = packed
    crc = zlib.crc32(bytes(data[HDR:]))
    struct.pack_into("<I", data, 40, crc)
    struct.pack_into("<I", data, 44, 0)
    struct.pack_into("<I", data, 44, zlib.crc32(bytes(data[:HDR])))
    with open(path, "wb") as f:
        f.write(data)
    return [floats[i * dims:(i + 1) * dims] for i in range(n)], crc


class ExportLongLines(unittest.TestCase):
    def test_lines_over_16k_are_exported_whole(self):
        d = Daemon()
        try:
            d.start()
            self.assertEqual(d.upload(ROWS).status, 200)
            run_job(d, "pmi", {"min_item_frequency": 2})
            job = run_job(d, "train", {"dimensions": DIMS, "max_iterations": 1})
            model = job["result"]["model"]
            d.stop()
            path = os.path.join(d.state_dir, "models", model + ".emb")
            rows, crc = plant(path)
            db = sqlite3.connect(os.path.join(d.state_dir, "itemvec.db"))
            db.execute("UPDATE models SET crc = ? WHERE id = ?", (crc, model))
            db.commit()
            db.close()
            d.start()
            for enc in ("identity", "gzip"):
                r = d.request("GET", "/v1/embeddings", headers={"Accept-Encoding": enc})
                self.assertEqual(r.status, 200, r)
                body = gzip.decompress(r.body) if enc == "gzip" else r.body
                lines = [l for l in body.split(b"\n") if l]
                longest = max(len(l) for l in lines)
                print("%s: %d lines, longest %d bytes" % (enc, len(lines), longest))
                self.assertEqual(len(lines), len(rows))
                for line, want in zip(lines, rows):
                    got = json.loads(line)["embedding"]
                    self.assertEqual(len(got), DIMS, "floats dropped from a long line")
                    self.assertEqual(struct.pack("<%df" % DIMS, *got),
                                     struct.pack("<%df" % DIMS, *want))
                self.assertGreater(longest, 16384)  # the case under test did occur
        finally:
            d.__exit__(None, None, None)


if __name__ == "__main__":
    run(globals())
