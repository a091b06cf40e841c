"""Ingest of the real datasets through the API (issue 2): yes_small in every
upload format gives the counts its README states (175,911 rows, 171,227
distinct memberships), re-uploads store nothing, yes_big's empty titles are
skipped as the seed's cleaning does, a bad row in the middle of a big
upload stores nothing, and an acknowledged upload survives kill -9.
Needs ../shared/data (skipped with a message when absent, except CI=true)."""
import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import itemvec_data as D  # noqa: E402
from daemon import Daemon, run  # noqa: E402

D.require_data()
SMALL = D.load_yes("yes_small")


class YesSmall(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(keep_state=True).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)
        shutil.rmtree(cls.d.state_dir, ignore_errors=True)

    def test_all_formats(self):
        d = self.d
        t0 = time.time()
        r = d.upload(D.to_tsv(SMALL.rows()))
        took = time.time() - t0
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"playlists": 41480, "rows_received": 175911,
                                    "rows_stored": 171227, "rows_duplicate": 175911 - 171227,
                                    "rows_skipped": 0,
                                    "skipped": {"missing_title": 0, "non_positive_id": 0}})
        print("yes_small TSV upload: %.2fs (%.0f rows/s)" % (took, 175911 / took))
        counts = d.json("GET", "/v1/info")["counts"]
        self.assertEqual(counts, {"playlists": 41480, "items": 3168, "memberships": 171227})
        for body, ct, gz in ((D.to_csv(SMALL.rows()), "text/csv", False),
                             (D.to_ndjson(SMALL.upload_playlists()), "application/x-ndjson", True),
                             (D.to_json(SMALL.upload_playlists()), "application/json", False)):
            r = d.upload(body, ct, gzip=gz)
            self.assertEqual(r.status, 200, r)
            j = r.json()
            self.assertEqual(j["rows_received"], 175911, ct)
            self.assertEqual(j["rows_stored"], 0, ct)
            self.assertEqual(j["rows_duplicate"], 175911, ct)
        self.assertEqual(d.json("GET", "/v1/info")["counts"]["memberships"], 171227)
        # titles and artists as song_hash.txt has them; song 0 is item "1"
        it = d.json("GET", "/v1/items/1")
        self.assertEqual(it["title"], SMALL.titles[0])
        self.assertEqual(it["artist"], SMALL.artists[0])
        pl = d.json("GET", "/v1/playlists/1")
        self.assertEqual(sorted(i["id"] for i in pl["items"]),
                         sorted({SMALL.item_id(s) for s in SMALL.playlists[0]}))


class YesBigAndFaults(unittest.TestCase):
    def test_yes_big_empty_titles_skipped(self):
        big = D.load_yes("yes_big")
        with Daemon() as d:
            r = d.upload(D.to_tsv(big.rows()), gzip=True)
            self.assertEqual(r.status, 200, r)
            j = r.json()
            self.assertEqual(j["rows_received"], 190649)
            self.assertEqual(j["skipped"]["missing_title"], 11)
            self.assertEqual(j["rows_stored"], len(big.table()))

    def test_bad_row_in_the_middle_stores_nothing(self):
        body = D.to_tsv(SMALL.rows()).split(b"\n")
        mid = len(body) // 2
        body[mid] = body[mid] + b"\textra"
        with Daemon() as d:
            r = d.upload(b"\n".join(body))
            self.assertEqual(r.status, 400, r)
            p = r.json()
            self.assertEqual(p["line"], mid + 1)
            self.assertEqual(d.json("GET", "/v1/info")["counts"],
                             {"playlists": 0, "items": 0, "memberships": 0})

    def test_kill9_after_ack(self):
        d = Daemon(keep_state=True)
        d.start()
        try:
            r = d.upload(D.to_csv(SMALL.rows()), "text/csv")
            self.assertEqual(r.json()["rows_stored"], 171227)
            d.kill9()
            d.start()
            self.assertEqual(d.json("GET", "/v1/info")["counts"]["memberships"], 171227)
        finally:
            d.stop()
            shutil.rmtree(d.state_dir, ignore_errors=True)


if __name__ == "__main__":
    run(globals())
