"""Issue 12, finding 6 (readers block the loop), the oversized playlist read:
GET /v1/playlists/{id} of a 100 k-item playlist used to build the whole
answer on the loop thread (seconds, hundreds of MB, /healthz stalled). It
now answers one page (page_size, default 100, max 1000; page_token ->
next_page_token) that storage reads by item-key range. Checks: the pages
cover the playlist exactly, in key order; tokens and sizes are validated;
and while four clients hammer the big playlist, /healthz keeps its p99
under the acceptance limit (tests/lib/reader_attack.py) and the daemon's
peak RSS hardly moves."""
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402
import reader_attack as ra  # noqa: E402

N = 100000  # items in the big playlist


class PlaylistRead(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="itemvec-hostile-pl-")
        ra.fixture(cls.dir, items=N, playlist_size=100, big=N, models=0)
        cls.d = Daemon(state_dir=cls.dir).start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def page(self, query=""):
        return self.d.json("GET", "/v1/playlists/big" + query)

    def test_default_page(self):
        p = self.page()
        self.assertEqual(p["id"], "big")
        self.assertEqual(len(p["items"]), 100)
        self.assertEqual(p["items"][0], {"id": "i0000001", "title": "i0000001", "artist": None})
        self.assertTrue(p["next_page_token"])

    def test_pages_cover_the_playlist(self):
        ids, token, pages = [], None, 0
        while True:
            p = self.page("?page_size=1000" + ("&page_token=" + token if token else ""))
            pages += 1
            self.assertLessEqual(len(p["items"]), 1000)
            ids += [i["id"] for i in p["items"]]
            token = p["next_page_token"]
            if not token:
                break
            self.assertLess(pages, N // 1000 + 2, "pagination does not end")
        self.assertEqual(pages, N // 1000)
        self.assertEqual(ids, ["i%07d" % k for k in range(1, N + 1)])

    def test_small_playlist_one_page(self):
        p = self.d.json("GET", "/v1/playlists/p000002")
        self.assertEqual([i["id"] for i in p["items"]], ["i%07d" % k for k in range(101, 201)])
        self.assertIsNone(p["next_page_token"])
        p = self.d.json("GET", "/v1/playlists/p000002?page_size=60")
        q = self.d.json("GET", "/v1/playlists/p000002?page_size=60&page_token="
                        + p["next_page_token"])
        self.assertEqual(len(p["items"]) + len(q["items"]), 100)
        self.assertIsNone(q["next_page_token"])

    def test_bad_tokens_and_sizes(self):
        for q in ("?page_token=x", "?page_token=i0", "?page_token=i-5", "?page_token=i12a",
                  "?page_token=p10", "?page_token=i99999999999999999999999",
                  "?page_size=0", "?page_size=1001", "?page_size=ten"):
            r = self.d.request("GET", "/v1/playlists/big" + q)
            self.assertEqual(r.status, 400, (q, r))
            self.assertEqual(r.header("Content-Type"), "application/problem+json")
        # a list token is not an item token, and the reverse
        lst = self.d.json("GET", "/v1/playlists?page_size=1")["next_page_token"]
        self.assertEqual(self.d.request("GET", "/v1/playlists/big?page_token=" + lst).status, 400)
        # past the end: an empty last page
        p = self.page("?page_token=i%d" % N)
        self.assertEqual((p["items"], p["next_page_token"]), ([], None))
        self.assertEqual(self.d.request("GET", "/v1/playlists/nope?page_size=5").status, 404)

    def test_attack_healthz_and_memory(self):
        pid = self.d.proc.pid
        before = ra.rss_bytes(pid)
        ra.reset_peak_rss(pid)
        reqs = [("GET", "/v1/playlists/big", None, {}),
                ("GET", "/v1/playlists/big?page_size=1000", None, {}),
                ("GET", "/v1/playlists/big?page_size=1000&page_token=i50000", None, {})]
        ra.healthz_rounds(self, "playlist pages", self.d.port,
                          [("GET", "/v1/playlists/p000001?page_size=1", None, {})], reqs,
                          check=lambda run: self.assertEqual(set(run.answers), {200}))
        peak = ra.rss_bytes(pid, "VmHWM")
        print("peak RSS growth %.1f MiB" % ((peak - before) / 2**20))
        # a page is ~0.1 MB of JSON; the whole playlist's answer was ~5 MB of
        # text and a ~60 MB jansson tree (not checked in sanitizer builds:
        # ASan's quarantine keeps freed memory resident)
        if not ra.sanitized():
            self.assertLess(peak - before, 24 * 2**20)


if __name__ == "__main__":
    run(globals())
