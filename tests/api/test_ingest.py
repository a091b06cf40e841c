"""API tests for the foundation (issue 2): health, info, ingest in every
format, the seed's cleaning rules, idempotency, all-or-nothing uploads,
playlist/item reads, errors as problem+json, durability across kill -9.
Starts the real daemon on a free loopback port with a temp state dir."""
import gzip
import json
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402

TSV = (b"playlist_id\titem_id\ttitle\tartist\n"
       b"p1\t10\tSong A\tArtist X\n"
       b"p1\t11\tSong B\tArtist Y\n"
       b"p1\t10\tSong A\tArtist X\n"      # duplicate inside the upload
       b"p2\t10\tSong A2\tArtist X\n"     # latest title wins
       b"p2\t0\tZero\tArtist Z\n"         # id <= 0: skipped
       b"p2\t12\t\tArtist Z\n"            # empty title: skipped
       b"p3\t-4\tNeg\tArtist Z\n")        # id <= 0: skipped


def problem(testcase, r, status):
    testcase.assertEqual(r.status, status, r)
    testcase.assertEqual(r.header("Content-Type"), "application/problem+json", r)
    p = r.json()
    for k in ("type", "title", "status", "detail"):
        testcase.assertIn(k, p)
    testcase.assertEqual(p["status"], status)
    testcase.assertTrue(r.header("X-Request-Id"))
    return p


class Basics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def test_health_ready_info(self):
        r = self.d.request("GET", "/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"status": "ok"})
        self.assertTrue(r.header("X-Request-Id"))
        self.assertEqual(self.d.request("GET", "/readyz").status, 200)
        info = self.d.json("GET", "/v1/info")
        self.assertIn("version", info)
        self.assertIn("blas", info["build"])
        for k in ("playlists", "items", "memberships"):
            self.assertIn(k, info["counts"])
        self.assertIn("active_model", info)

    def test_request_id_echoed(self):
        r = self.d.request("GET", "/healthz", headers={"X-Request-Id": "abc-123"})
        self.assertEqual(r.header("X-Request-Id"), "abc-123")
        r = self.d.request("GET", "/healthz", headers={"X-Request-Id": "bad id\x7f"})
        self.assertNotEqual(r.header("X-Request-Id"), "bad id\x7f")

    def test_not_found_and_method(self):
        problem(self, self.d.request("GET", "/v1/nope"), 404)
        p = problem(self, self.d.request("PATCH", "/v1/playlists"), 405)
        self.assertIn("POST", p["detail"])
        r = self.d.request("DELETE", "/healthz")
        problem(self, r, 405)
        self.assertIn("GET", r.header("Allow"))
        problem(self, self.d.request("GET", "/v1/playlists/%zz"), 400)

    def test_unsupported_media_type(self):
        p = problem(self, self.d.upload(b"x", content_type="text/plain"), 415)
        self.assertIn("text/plain", p["detail"])
        problem(self, self.d.request("POST", "/v1/playlists", b"a"), 415)
        problem(self, self.d.upload(TSV, headers={"Content-Encoding": "br"}), 415)

    def test_upload_counts_and_cleaning(self):
        r = self.d.upload(TSV.replace(b"p1", b"c1").replace(b"p2", b"c2").replace(b"p3", b"c3"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"playlists": 2, "rows_received": 7, "rows_stored": 3,
                                    "rows_duplicate": 1, "rows_skipped": 3,
                                    "skipped": {"missing_title": 1, "non_positive_id": 2}})
        item = self.d.json("GET", "/v1/items/10")
        self.assertEqual(item["title"], "Song A2")
        self.assertGreaterEqual(item["playlists"], 2)
        pl = self.d.json("GET", "/v1/playlists/c1")
        self.assertEqual(sorted(i["id"] for i in pl["items"]), ["10", "11"])
        self.assertEqual(self.d.request("GET", "/v1/playlists/c3").status, 404)
        # idempotent
        r2 = self.d.upload(TSV.replace(b"p1", b"c1").replace(b"p2", b"c2").replace(b"p3", b"c3"))
        self.assertEqual(r2.json()["rows_stored"], 0)
        self.assertEqual(r2.json()["rows_duplicate"], 4)

    def test_all_formats_same_result(self):
        before = self.d.json("GET", "/v1/info")["counts"]
        csv = b'playlist_id,item_id,title,artist\r\nf1,100,"Hello, ""World""",A\r\nf1,101,B,C\r\n'
        nd = b'{"id":"f1","items":[{"id":"100","title":"Hello, \\"World\\"","artist":"A"},101]}\n'
        js = json.dumps([{"id": "f1", "items": [100, "101"]}]).encode()
        r = self.d.upload(csv, "text/csv")
        self.assertEqual(r.json()["rows_stored"], 2, r)
        for body, ct in ((nd, "application/x-ndjson"), (js, "application/json")):
            r = self.d.upload(body, ct)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["rows_stored"], 0)
            self.assertEqual(r.json()["rows_duplicate"], 2)
        r = self.d.upload(csv, "text/csv; charset=utf-8", gzip=True)
        self.assertEqual(r.json()["rows_duplicate"], 2, r)
        self.assertEqual(self.d.json("GET", "/v1/items/100")["title"], 'Hello, "World"')
        after = self.d.json("GET", "/v1/info")["counts"]
        self.assertEqual(after["memberships"], before["memberships"] + 2)

    def test_seed_column_names(self):
        body = b"list_Id\ttrack_Id\ttrack_title\ttrack_artist\ns1\t5\tT\tA\n"
        r = self.d.upload(body)
        self.assertEqual(r.json()["rows_stored"], 1, r)

    def test_parse_error_stores_nothing(self):
        before = self.d.json("GET", "/v1/info")["counts"]
        rows = [b"playlist_id\titem_id\ttitle\tartist"]
        rows += [b"e%d\t%d\tt\ta" % (i // 10, 1000 + i) for i in range(5000)]
        rows[2500] = b"e250\t77\tonly three fields"
        p = problem(self, self.d.upload(b"\n".join(rows) + b"\n"), 400)
        self.assertEqual(p["line"], 2501)
        self.assertIn("column", p)
        self.assertEqual(self.d.json("GET", "/v1/info")["counts"], before)
        self.assertEqual(self.d.request("GET", "/v1/playlists/e1").status, 404)
        p = problem(self, self.d.upload(b'{"id":"x","items":[1,2}\n', "application/x-ndjson"), 400)
        self.assertEqual(p["line"], 1)
        problem(self, self.d.upload(b"\x1f\x8b\x08garbage", headers={"Content-Encoding": "gzip"}), 400)
        self.assertEqual(self.d.json("GET", "/v1/info")["counts"], before)

    def test_invalid_ids(self):
        before = self.d.json("GET", "/v1/info")["counts"]
        long_id = b"x" * 300
        problem(self, self.d.upload(b"playlist_id\titem_id\nq1\t" + long_id + b"\n"), 400)
        problem(self, self.d.upload(b"playlist_id\titem_id\nq1\t\xff\xfe\n"), 400)
        problem(self, self.d.request("GET", "/v1/items/" + "y" * 300), 400)
        self.assertEqual(self.d.json("GET", "/v1/info")["counts"], before)

    def test_put_delete_and_list(self):
        r = self.d.request("PUT", "/v1/playlists/pp%2F1", {"items": ["1", 2, {"id": "3", "title": "T3"}]})
        self.assertEqual(r.status, 200, r)
        pl = self.d.json("GET", "/v1/playlists/pp%2F1")
        self.assertEqual(pl["id"], "pp/1")
        self.assertEqual(sorted(i["id"] for i in pl["items"]), ["1", "2", "3"])
        r = self.d.request("PUT", "/v1/playlists/pp%2F1", {"items": ["2"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual([i["id"] for i in self.d.json("GET", "/v1/playlists/pp%2F1")["items"]], ["2"])
        problem(self, self.d.request("PUT", "/v1/playlists/pp%2F1", {"items": "no"}), 422)
        problem(self, self.d.request("PUT", "/v1/playlists/pp%2F1", b"{bad", {"Content-Type": "application/json"}), 400)
        self.assertEqual(self.d.request("DELETE", "/v1/playlists/pp%2F1").status, 204)
        problem(self, self.d.request("DELETE", "/v1/playlists/pp%2F1"), 404)
        problem(self, self.d.request("GET", "/v1/playlists/pp%2F1"), 404)
        # pagination walks every playlist exactly once
        seen, token, pages = [], None, 0
        while True:
            q = "/v1/playlists?page_size=2" + ("&page_token=" + token if token else "")
            page = self.d.json("GET", q)
            seen += [p["id"] for p in page["playlists"]]
            pages += 1
            token = page["next_page_token"]
            if not token:
                break
        self.assertEqual(len(seen), len(set(seen)))
        self.assertEqual(len(seen), self.d.json("GET", "/v1/info")["counts"]["playlists"])
        problem(self, self.d.request("GET", "/v1/playlists?page_size=0"), 400)
        problem(self, self.d.request("GET", "/v1/playlists?page_token=zzz"), 400)

    def test_healthz_answers_during_slow_upload(self):
        """An upload in progress does not stall other requests."""
        s = socket.create_connection(("127.0.0.1", self.d.port))
        head = (b"POST /v1/playlists HTTP/1.1\r\nHost: x\r\nContent-Type: text/tab-separated-values\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
        s.sendall(head)
        def chunk(b):
            s.sendall(b"%x\r\n%s\r\n" % (len(b), b))
        chunk(b"playlist_id\titem_id\ttitle\tartist\n")
        for i in range(20):
            chunk(b"slow\t%d\tt\ta\n" % (5000 + i))
            t0 = time.time()
            r = self.d.request("GET", "/healthz", timeout=5)
            self.assertEqual(r.status, 200)
            self.assertLess(time.time() - t0, 1.0)
        chunk(b"")
        resp = s.recv(65536)
        while b"\r\n\r\n" not in resp:
            resp += s.recv(65536)
        s.close()
        self.assertIn(b"200 OK", resp.split(b"\r\n")[0])


class Limits(unittest.TestCase):
    def test_body_and_row_limits(self):
        conf = "[limits]\nmax_body_size = 2K\nmax_upload_rows = 3\nmax_json_body = 1K\n"
        with Daemon(config_text=conf) as d:
            big = b"playlist_id\titem_id\n" + b"".join(b"p\t%d\n" % i for i in range(1, 1000))
            problem(self, d.upload(big), 413)
            rows = b"playlist_id\titem_id\np\t1\np\t2\np\t3\np\t4\n"
            problem(self, d.upload(rows), 413)
            problem(self, d.upload(big, gzip=True), 413)
            problem(self, d.request("PUT", "/v1/playlists/x", {"items": ["a" * 50] * 40}), 413)
            self.assertEqual(d.json("GET", "/v1/info")["counts"]["memberships"], 0)

    def test_bad_config_exits_2(self):
        import subprocess
        binary = os.environ["ITEMVECD"]
        with Daemon() as d:
            conf = os.path.join(d.state_dir, "bad.conf")
            with open(conf, "w") as f:
                f.write("[limits]\nmax_upload_rows = lots\n")
            p = subprocess.run([binary, "--config", conf, "--check-config"], capture_output=True, text=True)
            self.assertEqual(p.returncode, 2)
            self.assertIn("limits.max_upload_rows", p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1)
            p = subprocess.run([binary, "--listen", "nonsense"], capture_output=True, text=True)
            self.assertEqual(p.returncode, 2)
            self.assertIn("listen", p.stderr)
            p = subprocess.run([binary, "--bogus"], capture_output=True, text=True)
            self.assertEqual(p.returncode, 2)
            p = subprocess.run([binary, "--listen", "0.0.0.0:1", "--check-config", "--config", "/dev/null"],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 2)
            self.assertIn("tokens", p.stderr)
            p = subprocess.run([binary, "--version"], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0)
            self.assertIn("itemvecd", p.stdout)


class Durability(unittest.TestCase):
    def test_kill9_after_ack_loses_nothing(self):
        d = Daemon(keep_state=True)
        d.start()
        try:
            rows = b"playlist_id\titem_id\ttitle\tartist\n" + b"".join(
                b"k%d\t%d\tt%d\ta\n" % (i % 97, 1 + i % 501, i) for i in range(20000))
            r = d.upload(rows)
            self.assertEqual(r.status, 200, r)
            stored = r.json()["rows_stored"]
            d.kill9()
            d.start()
            counts = d.json("GET", "/v1/info")["counts"]
            self.assertEqual(counts["memberships"], stored)
            self.assertEqual(counts["playlists"], 97)
            self.assertEqual(d.upload(rows).json()["rows_stored"], 0)
            self.assertEqual(d.stop(), 0)
        finally:
            d.stop()
            import shutil
            shutil.rmtree(d.state_dir, ignore_errors=True)


if __name__ == "__main__":
    run(globals())
