"""Issue 12, finding 6 (readers block the loop), JSON bodies: every JSON
body (POST /v1/jobs, POST /v1/recommend, PUT /v1/playlists/{id}) was
parsed on the loop thread, up to limits.max_json_body (16 MiB) each, and a
PUT's items were turned into a batch there too. Now each route has its own
bound (jobs 64 KiB, recommend 2 MiB: 413 beyond, before the body is read
when Content-Length says so), bodies over 64 KiB are parsed on the pool, and
a PUT's conversion and the freeing of its document run there as well.
Checks: the bounds, that large bodies still work (and fail) as before, and
/healthz's p99 while four clients send large PUT and recommend bodies,
against a control run of the same clients sending small ones."""
import json
import os
import shutil
import socket
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402
import reader_attack as ra  # noqa: E402

ITEMS = 10000
JSON = {"Content-Type": "application/json"}
BIG_PUT_ITEMS = 300000  # ~3.3 MB of JSON, cycling over the catalog's ids


def put_body(n, bad_at=None):
    ids = ["i%07d" % (k % ITEMS + 1) for k in range(n)]
    if bad_at is not None:
        ids[bad_at] = {"id": [1]}
    return json.dumps({"items": ids}).encode()


def padded_recommend(pad):
    """A valid recommend body made large with whitespace (JSON allows it)."""
    return (b'{"items": ["i0000001", "i0000002"],' + b" " * pad + b'"k": 5}')


def raw_post(port, path, body, chunked=False):
    """POST with Content-Length (or chunked when asked); returns the status."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        head = "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" % path
        if chunked:
            s.sendall((head + "Transfer-Encoding: chunked\r\n\r\n").encode())
            for i in range(0, len(body), 32768):
                part = body[i:i + 32768]
                s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            s.sendall(b"0\r\n\r\n")
        else:
            s.sendall((head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return int(data.split()[1])
    except (BrokenPipeError, ConnectionResetError):
        data = s.recv(4096)  # answered early, then closed: read what came
        return int(data.split()[1]) if data else None
    finally:
        s.close()


class JsonBodies(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="itemvec-hostile-json-")
        ra.fixture(cls.dir, items=ITEMS, playlist_size=100, models=1, dims=16)
        cls.d = Daemon(state_dir=cls.dir).start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_route_bounds(self):
        job = json.dumps({"type": "pmi", "params": {}}).encode()[:-1] + b" " * 70000 + b"}"
        r = self.d.request("POST", "/v1/jobs", job, JSON)
        self.assertEqual(r.status, 413, r)
        self.assertIn("65536", r.json()["detail"])
        self.assertEqual(raw_post(self.d.port, "/v1/jobs", job, chunked=True), 413)
        self.assertEqual(raw_post(self.d.port, "/v1/recommend", padded_recommend(2 << 20)), 413)
        self.assertEqual(raw_post(self.d.port, "/v1/recommend", padded_recommend(2 << 20),
                                  chunked=True), 413)
        # just under the bounds: accepted (the recommend one parsed on the pool)
        r = self.d.request("POST", "/v1/recommend", padded_recommend((2 << 20) - 100), JSON)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.json()["neighbors"]), 5)
        r = self.d.request("POST", "/v1/jobs", b'{"type": "nope"' + b" " * 60000 + b"}", JSON)
        self.assertEqual(r.status, 422, r)

    def test_large_body_errors(self):
        body = b'{"items": ["i0000001"],' + b"\n" * 100000 + b'"k": }'
        r = self.d.request("POST", "/v1/recommend", body, JSON)
        self.assertEqual(r.status, 400, r)
        self.assertEqual((r.json()["line"], r.json()["column"] > 0), (100001, True))
        r = self.d.request("PUT", "/v1/playlists/bad", put_body(20000, bad_at=19999), JSON)
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json()["errors"][0]["pointer"], "/items/19999/id")
        r = self.d.request("PUT", "/v1/playlists/bad", b'{"x": 1,' + b" " * 100000 + b'"items": []}',
                           JSON)
        self.assertEqual((r.status, r.json()["errors"][0]["pointer"]), (422, "/x"))
        self.assertEqual(self.d.request("GET", "/v1/playlists/bad").status, 404)

    def test_large_put(self):
        r = self.d.json("PUT", "/v1/playlists/large", put_body(BIG_PUT_ITEMS), JSON)
        self.assertEqual((r["items"], r["rows_received"]), (ITEMS, BIG_PUT_ITEMS))
        p = self.d.json("GET", "/v1/playlists/large?page_size=3")
        self.assertEqual([i["id"] for i in p["items"]], ["i0000001", "i0000002", "i0000003"])

    def test_attack_healthz(self):
        small = [("PUT", "/v1/playlists/s", put_body(10), JSON),
                 ("POST", "/v1/recommend", padded_recommend(10), JSON)]
        large = [("PUT", "/v1/playlists/s", put_body(BIG_PUT_ITEMS), JSON),
                 ("POST", "/v1/recommend", padded_recommend((2 << 20) - 100), JSON)]
        ra.healthz_rounds(self, "large JSON bodies", self.d.port, small, large,
                          check=lambda run: self.assertEqual(set(run.answers), {200}, run.answers),
                          control_kw=dict(workers=4, requests=40, seconds=6),
                          workers=4, requests=10, seconds=6)


if __name__ == "__main__":
    run(globals())
