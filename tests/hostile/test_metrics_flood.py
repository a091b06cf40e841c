"""Metrics poisoning (issue 12, finding 9): an unauthenticated client
sending made-up methods and paths must neither create label values nor
crowd real series out of /metrics.

- 600 requests with distinct junk methods to /v1 paths and to an open
  path, without a token; then real authenticated requests;
- every method label is one of GET HEAD POST PUT DELETE other, every route
  label a route template or "unmatched"; the real series are there;
- a request without a token to an unknown /v1 path gets 401, not 404 (auth
  before routing: no route discovery without a token), and is counted as
  "unmatched", not under a route.

Bounded: ~620 requests on one kept-alive connection."""
import http.client
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402

CONF = "[auth]\ntokens = s3cret\n"
AUTH = {"Authorization": "Bearer s3cret"}
ROUTES = {"/healthz", "/readyz", "/metrics", "/v1/info", "/v1/admin/backup", "/v1/playlists",
          "/v1/playlists/{id}", "/v1/items/{id}", "/v1/items/{id}/cooccurrences",
          "/v1/pmi/pairs", "/v1/jobs", "/v1/jobs/{id}", "/v1/jobs/{id}/cancel",
          "/v1/items/{id}/similar", "/v1/recommend", "/v1/models", "/v1/models/{id}",
          "/v1/models/{id}/activate", "/v1/models/{id}/embeddings", "/v1/embeddings",
          "unmatched"}
SERIES = re.compile(r'^itemvecd_http_requests_total\{route="([^"]*)",method="([^"]*)",'
                    r'code="(\d+)"\} (\d+)$')


class MetricsFlood(unittest.TestCase):
    def test_junk_methods_do_not_poison_metrics(self):
        with Daemon(config_text=CONF) as d:
            conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
            statuses = {}
            for i in range(600):
                method = "JUNK%03d" % i
                path = ("/v1/info", "/v1/x%d" % i, "/nope%d" % i, "/healthz")[i % 4]
                conn.request(method, path)
                r = conn.getresponse()
                r.read()
                statuses[r.status] = statuses.get(r.status, 0) + 1
                if r.will_close:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
            conn.close()
            print("junk answers by status: %r" % statuses)
            # auth before routing: no token, unknown /v1 path -> 401 (checked last)
            unauth_unknown = d.request("GET", "/v1/no/such/route").status
            self.assertEqual(d.request("GET", "/v1/info", headers=AUTH).status, 200)
            self.assertEqual(d.request("GET", "/v1/playlists/nope", headers=AUTH).status, 404)
            self.assertEqual(d.request("GET", "/v1/no/such/route", headers=AUTH).status, 404)
            text = d.request("GET", "/metrics").body.decode()
            series = [SERIES.match(l) for l in text.splitlines()
                      if l.startswith("itemvecd_http_requests_total{")]
            self.assertTrue(all(series), "unparsable series")
            labels = [(m.group(1), m.group(2), int(m.group(3)), int(m.group(4))) for m in series]
            print("%d request series after the flood" % len(labels))
            bad = [l for l in labels if l[1] not in ("GET", "HEAD", "POST", "PUT", "DELETE",
                                                     "other") or l[0] not in ROUTES]
            self.assertEqual(bad[:5], [], "label values from client input (%d)" % len(bad))
            self.assertLess(len(labels), 40)
            have = {(r, m, c): n for r, m, c, n in labels}
            self.assertEqual(have.get(("/v1/info", "GET", 200)), 1)
            self.assertEqual(have.get(("/v1/playlists/{id}", "GET", 404)), 1)
            self.assertEqual(have.get(("unmatched", "GET", 404)), 1)
            self.assertEqual(have.get(("unmatched", "GET", 401)), 1)
            # the junk: counted, but under "other" and never per /v1 route
            self.assertGreaterEqual(have.get(("unmatched", "other", 401), 0), 300)
            self.assertFalse([l for l in labels if l[0].startswith("/v1") and l[1] == "other"])
            self.assertEqual(unauth_unknown, 401)


if __name__ == "__main__":
    run(globals())
