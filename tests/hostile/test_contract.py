"""Contract gaps (issue 12, finding 13).

- a body on a route that takes none (GET, HEAD, DELETE, the bodiless
  POSTs) is refused with a 400 problem before anything happens: a DELETE
  with a body deletes nothing; Content-Length: 0 is fine;
- a read-only token may POST /v1/recommend (a query sent as a body) but
  still not write;
- the loopback test is exact: "127.evil.example" is not loopback, so
  without tokens it is refused (exit 2), while 127.0.0.2, localhost and
  [::1] are accepted;
- recommend refuses an unknown field (a typo such as "exlude") with a 400
  problem whose pointer names it.

Bounded: 2 daemons, 5 --check-config runs, ~25 requests."""
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from attack import start_expecting_refusal  # noqa: E402
from daemon import Daemon, run  # noqa: E402

PROBLEM = "application/problem+json"
RW = {"Authorization": "Bearer rw-tok"}
RO = {"Authorization": "Bearer ro-tok"}


def chunked_request(port, method, path, chunk):
    """One request with a chunked body, sent in one write (the server may
    answer and close before reading it). Returns (status, content type)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(b"%s %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"%x\r\n%s\r\n0\r\n\r\n" % (method.encode(), path.encode(), len(chunk), chunk))
        data = b""
        while b"\r\n\r\n" not in data:
            part = s.recv(4096)
            if not part:
                break
            data += part
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        hdrs = {k.strip().lower(): v.strip() for k, v in
                (l.split(":", 1) for l in head[1:] if ":" in l)}
        return int(head[0].split()[1]), hdrs.get("content-type")
    finally:
        s.close()


class Bodies(unittest.TestCase):
    def test_bodies_on_bodiless_routes_are_refused(self):
        with Daemon() as d:
            self.assertEqual(d.request("PUT", "/v1/playlists/keep", {"items": ["1", "2"]}).status,
                             200)
            cases = [("GET", "/v1/info"), ("HEAD", "/v1/info"), ("GET", "/healthz"),
                     ("DELETE", "/v1/playlists/keep"), ("POST", "/v1/admin/backup"),
                     ("GET", "/v1/playlists/keep")]
            for m, path in cases:
                r = d.request(m, path, b'{"sneaky":1}', {"Content-Type": "application/json"})
                self.assertEqual(r.status, 400, "%s %s with a body: %r" % (m, path, r))
                if m != "HEAD":
                    self.assertEqual(r.header("Content-Type"), PROBLEM)
                    self.assertIn("takes no request body", r.json()["detail"])
            st, ctype = chunked_request(d.port, "DELETE", "/v1/playlists/keep", b"x" * 10)
            self.assertEqual(st, 400)
            self.assertEqual(ctype, PROBLEM)
            # nothing happened: the playlist is still there, no backup was made
            self.assertEqual(len(d.json("GET", "/v1/playlists/keep")["items"]), 2)
            self.assertFalse(os.path.exists(os.path.join(d.state_dir, "backups")) and
                             os.listdir(os.path.join(d.state_dir, "backups")))
            # control: an explicit empty body is no body
            r = d.request("GET", "/v1/info", headers={"Content-Length": "0"})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(d.request("DELETE", "/v1/playlists/keep", b"").status, 204)


class ReadOnlyRecommend(unittest.TestCase):
    def test_read_only_token_may_recommend_but_not_write(self):
        conf = "[auth]\ntokens = rw-tok\nread_tokens = ro-tok\n"
        with Daemon(config_text=conf) as d:
            body = {"items": ["1", "2"], "k": 3}
            r = d.request("POST", "/v1/recommend", body, RO)
            self.assertNotEqual(r.status, 403, r)
            self.assertEqual(r.status, 409, r)  # allowed; no model is active yet
            self.assertEqual(d.request("POST", "/v1/recommend", body).status, 401)
            self.assertEqual(d.request("POST", "/v1/jobs", {"type": "pmi"}, RO).status, 403)
            self.assertEqual(d.request("PUT", "/v1/playlists/x", {"items": ["1"]}, RO).status, 403)
            self.assertEqual(d.request("POST", "/v1/admin/backup", None, RO).status, 403)
            self.assertEqual(d.request("GET", "/v1/info", None, RO).status, 200)

    def test_recommend_refuses_unknown_fields(self):
        with Daemon() as d:
            r = d.request("POST", "/v1/recommend", {"items": ["1"], "k": 3, "exlude": ["2"]})
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.header("Content-Type"), PROBLEM)
            p = r.json()
            self.assertEqual(p["errors"][0]["pointer"], "/exlude")
            r = d.request("POST", "/v1/recommend", {"items": ["1"], "a/b~c": 1})
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.json()["errors"][0]["pointer"], "/a~1b~0c")
            # known fields pass the check (409: no model is active)
            r = d.request("POST", "/v1/recommend",
                          {"items": ["1"], "k": 3, "exclude": [], "model": None,
                           "source": "embedding"})
            self.assertEqual(r.status, 409, r)


class Loopback(unittest.TestCase):
    def check(self, listen):
        return start_expecting_refusal(os.environ["ITEMVECD"],
                                       ["--check-config", "--config", "/dev/null",
                                        "--listen", listen], timeout=10)

    def test_loopback_is_exact(self):
        for listen in ("127.evil.example:8080", "127.0.0.1.nip.io:8080", "0.0.0.0:8080"):
            rc, err = self.check(listen)
            self.assertEqual(rc, 2, "%s accepted without tokens: %r" % (listen, err))
            self.assertIn("server.listen", err)
        for listen in ("127.0.0.2:8080", "localhost:8080", "[::1]:8080"):
            rc, err = self.check(listen)
            self.assertEqual(rc, 0, "%s refused: %r" % (listen, err))


if __name__ == "__main__":
    run(globals())
