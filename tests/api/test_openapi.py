"""The API description docs/openapi.json (issue 16) against the code:
- every route of api/routes.c is documented, and every documented
  operation is a route (both directions);
- GET /v1/openapi.json serves exactly docs/openapi.json (ETag, 304, auth);
- every schema uses only the JSON Schema subset tests/lib/openapi_check.py
  checks, and every $ref resolves;
- a walk of every documented operation against a live daemon with tokens
  configured (ingest, pmi, train, models, serving, errors, 401/403): each
  answer's status must be listed for its operation, its Content-Type
  documented, and its body valid against the schema. Each operation must
  be walked with a success at least once, so a new route cannot go
  undocumented or unexercised."""
import json
import os
import random
import re
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402
from openapi_check import Spec  # noqa: E402

SRC = os.environ.get("ITEMVEC_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
SPEC_PATH = os.path.join(SRC, "docs", "openapi.json")
CONF = "[auth]\ntokens = rw-secret\nread_tokens = ro-secret\n"
TOKENS = {"rw": "rw-secret", "ro": "ro-secret", "wrong": "not-a-token", None: None}


def planted_tsv(n_groups=800, seed=3):
    rnd = random.Random(seed)
    lines = ["playlist_id\titem_id\ttitle\tartist"]
    for g in range(n_groups):
        c = g % 4
        items = set()
        for _ in range(rnd.randint(2, 10)):
            items.add(1 + c * 25 + rnd.randrange(25) if rnd.random() < 0.85 else 1 + rnd.randrange(100))
        lines += ["g%d\t%d\tSong %d\tArtist %d" % (g, i, i, (i - 1) // 25) for i in sorted(items)]
    return ("\n".join(lines) + "\n").encode()


def routes_c():
    """(METHOD, pattern) of every entry of api/routes.c's table."""
    with open(os.path.join(SRC, "api", "routes.c"), encoding="utf-8") as f:
        text = f.read()
    table = text[text.index("api_routes[]"):]
    return set(re.findall(r'\{\s*"(GET|POST|PUT|DELETE|PATCH)",\s*"([^"]+)"', table))


class Static(unittest.TestCase):
    def test_every_route_is_documented_and_back(self):
        spec = Spec.load(SPEC_PATH)
        documented = {(m, p) for m, p, _ in spec.operations()}
        routes = routes_c()
        self.assertGreater(len(routes), 20)
        self.assertEqual(sorted(routes - documented), [],
                         "routes in api/routes.c missing from docs/openapi.json")
        self.assertEqual(sorted(documented - routes), [],
                         "operations in docs/openapi.json that api/routes.c does not serve")

    def test_description_is_well_formed(self):
        spec = Spec.load(SPEC_PATH)
        doc = spec.doc
        self.assertEqual(doc["openapi"], "3.1.0")
        spec.check_schemas()  # raises on an unsupported keyword or a dangling $ref
        ids = [op["operationId"] for _, _, op in spec.operations()]
        self.assertEqual(len(ids), len(set(ids)), "operationIds must be unique")
        for m, p, op in spec.operations():
            self.assertIn("responses", op, (m, p))
            self.assertTrue(any(s.startswith("2") or s.startswith("3") for s in op["responses"]), (m, p))
            for name in re.findall(r"\{(\w+)\}", p):
                params = [spec.deref(x) for x in op.get("parameters", []) +
                          doc["paths"][p].get("parameters", [])]
                self.assertTrue(any(x["in"] == "path" and x["name"] == name for x in params),
                                "%s %s: path parameter %s undocumented" % (m, p, name))

    def test_validator_rejects(self):
        """The validator can fail: wrong type, missing/undocumented property,
        oneOf, enum, a status not listed, a Content-Type not listed."""
        spec = Spec.load(SPEC_PATH)
        item = {"$ref": "#/components/schemas/Item"}
        good = {"id": "1", "title": None, "artist": "a", "playlists": 3}
        self.assertEqual(spec.validate(good, item), [])
        self.assertTrue(spec.validate(dict(good, playlists="3"), item))
        self.assertTrue(spec.validate({"id": "1", "title": None, "artist": "a"}, item))
        self.assertTrue(spec.validate(dict(good, extra=1), item))
        self.assertTrue(spec.validate({"status": "maybe"}, {"$ref": "#/components/schemas/Health"}))
        self.assertTrue(spec.validate({"active_model": 3}, {"properties": {"active_model": spec.resolve(
            "#/components/schemas/Info")["properties"]["active_model"]}}))
        self.assertTrue(spec.check_response("GET", "/v1/items/{id}", 418, "application/json", b"{}"))
        self.assertTrue(spec.check_response("GET", "/v1/items/{id}", 200, "text/plain", b"x"))


class Walk(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.spec = Spec.load(SPEC_PATH)
        cls.d = Daemon(config_text=CONF).__enter__()
        cls.seen = {}

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def wait(self, job_id, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            j = self.d.json("GET", "/v1/jobs/" + job_id, headers={"Authorization": "Bearer ro-secret"})
            if j["state"] in ("succeeded", "failed", "cancelled"):
                return j
            time.sleep(0.05)
        raise AssertionError("job %s did not finish" % job_id)

    def call(self, method, template, expect, ids=None, query=None, body=None, token="rw",
             headers=None, content_type=None):
        path = template
        for k, v in (ids or {}).items():
            path = path.replace("{%s}" % k, urllib.parse.quote(v, safe=""))
        if query:
            path += "?" + urllib.parse.urlencode(query)
        hdrs = dict(headers or {})
        if TOKENS[token]:
            hdrs["Authorization"] = "Bearer " + TOKENS[token]
        if content_type:
            hdrs["Content-Type"] = content_type
        r = self.d.request(method, path, body, hdrs)
        self.assertEqual(r.status, expect, "%s %s: %r" % (method, path, r))
        errors = self.spec.check_response(method, template, r.status, r.header("Content-Type"),
                                          r.body)
        self.assertEqual(errors, [], "%s %s" % (method, path))
        self.seen.setdefault((method, template), set()).add(r.status)
        return r

    def test_walk_every_operation(self):
        c = self.call
        # open routes, the dashboard, the description
        c("GET", "/healthz", 200, token=None)
        c("GET", "/readyz", 200, token=None)
        c("GET", "/metrics", 200, token=None)
        c("GET", "/ui", 308, token=None)
        r = c("GET", "/ui/", 200, token=None)
        c("GET", "/ui/", 304, token=None, headers={"If-None-Match": r.header("ETag")})
        for f in ("app.js", "charts.js", "style.css", "favicon.svg", "index.html"):
            c("GET", "/ui/{file}", 200, {"file": f}, token=None)
        c("GET", "/ui/{file}", 404, {"file": "nope.js"}, token=None)
        r = c("GET", "/v1/openapi.json", 200, token="ro")
        with open(SPEC_PATH, "rb") as f:
            self.assertEqual(r.body, f.read(), "/v1/openapi.json must be docs/openapi.json as is")
        c("GET", "/v1/openapi.json", 304, token="ro", headers={"If-None-Match": r.header("ETag")})
        c("GET", "/v1/openapi.json", 401, token=None)
        c("GET", "/v1/info", 200, token="ro")
        c("GET", "/v1/info", 401, token="wrong")

        # before any job: the 409s of a fresh daemon
        c("POST", "/v1/playlists", 403, body=b"x", token="ro", content_type="text/csv")
        c("POST", "/v1/playlists", 400, body=b"playlist_id\titem_id\np1\n",
          content_type="text/tab-separated-values")
        c("POST", "/v1/playlists", 415, body=b"x", content_type="image/png")
        c("POST", "/v1/playlists", 200, body=planted_tsv(), content_type="text/tab-separated-values")
        c("POST", "/v1/playlists", 200, content_type="application/json",
          body=json.dumps([{"id": "j1", "items": ["1", 2, {"id": "3", "title": "Song 3"}]}]))
        c("GET", "/v1/items/{id}/cooccurrences", 409, {"id": "1"})
        c("GET", "/v1/pmi/pairs", 409)
        c("GET", "/v1/items/{id}/similar", 409, {"id": "1"})
        c("POST", "/v1/recommend", 409, body={"items": ["1"]})
        c("GET", "/v1/embeddings", 404)
        c("GET", "/v1/replication/active", 409, token="ro")
        c("POST", "/v1/jobs", 409, body={"type": "train"})

        # playlists and items
        r = c("GET", "/v1/playlists", 200, query={"page_size": 5}, token="ro")
        c("GET", "/v1/playlists", 200, query={"page_size": 5, "page_token": r.json()["next_page_token"]})
        c("GET", "/v1/playlists", 400, query={"page_size": 0})
        c("GET", "/v1/playlists/{id}", 200, {"id": "g1"}, token="ro")
        c("GET", "/v1/playlists/{id}", 404, {"id": "nope"})
        c("PUT", "/v1/playlists/{id}", 200, {"id": "new"}, body={"items": ["1", "2"]})
        c("PUT", "/v1/playlists/{id}", 422, {"id": "new"}, body={"items": "x"})
        c("PUT", "/v1/playlists/{id}", 415, {"id": "new"}, body=b"{}", content_type="text/plain")
        c("PUT", "/v1/playlists/{id}", 400, {"id": "new"}, body=b"{", content_type="application/json")
        c("PUT", "/v1/playlists/{id}", 403, {"id": "new"}, body={"items": []}, token="ro")
        c("DELETE", "/v1/playlists/{id}", 204, {"id": "new"})
        c("DELETE", "/v1/playlists/{id}", 404, {"id": "new"})
        c("GET", "/v1/items", 200, query={"q": "song 1", "page_size": 3}, token="ro")
        c("GET", "/v1/items", 200)
        c("GET", "/v1/items", 400, query={"q": "x", "page_token": "bogus"})
        c("GET", "/v1/items/{id}", 200, {"id": "1"}, token="ro")
        c("GET", "/v1/items/{id}", 404, {"id": "nope"})
        c("GET", "/v1/items/{id}", 400, {"id": "a\x01b"})

        # jobs
        c("POST", "/v1/jobs", 422, body={"type": "nope"})
        c("POST", "/v1/jobs", 400, body=b"{", content_type="application/json")
        c("POST", "/v1/jobs", 415, body=b"{}", content_type="text/plain")
        c("POST", "/v1/jobs", 403, body={"type": "pmi"}, token="ro")
        pmi = c("POST", "/v1/jobs", 202, body={"type": "pmi", "params": {"min_item_frequency": 5}}).json()
        self.assertEqual(self.wait(pmi["id"])["state"], "succeeded")
        c("GET", "/v1/jobs/{id}", 200, {"id": pmi["id"]}, token="ro")
        c("GET", "/v1/jobs/{id}", 404, {"id": "j999"})
        c("POST", "/v1/jobs/{id}/cancel", 409, {"id": pmi["id"]})
        c("POST", "/v1/jobs/{id}/cancel", 404, {"id": "j999"})
        train = c("POST", "/v1/jobs", 202, body={"type": "train", "params": {
            "dimensions": 8, "max_iterations": 5, "early_stop": False, "seed": 1}}).json()
        self.assertEqual(self.wait(train["id"])["state"], "succeeded")
        slow = c("POST", "/v1/jobs", 202, body={"type": "train", "params": {
            "dimensions": 64, "max_iterations": 1000, "early_stop": False, "activate": False}}).json()
        c("POST", "/v1/jobs/{id}/cancel", 200, {"id": slow["id"]})
        c("POST", "/v1/jobs/{id}/cancel", 403, {"id": slow["id"]}, token="ro")
        self.assertEqual(self.wait(slow["id"])["state"], "cancelled")
        c("GET", "/v1/jobs", 200, query={"page_size": 2}, token="ro")
        c("GET", "/v1/jobs", 200, query={"state": "succeeded", "type": "pmi"})
        c("GET", "/v1/jobs", 400, query={"state": "bogus"})
        c("GET", "/v1/jobs/{id}", 200, {"id": slow["id"]})

        # pmi results
        c("GET", "/v1/pmi/pairs", 200, query={"limit": 5}, token="ro")
        c("GET", "/v1/pmi/pairs", 400, query={"limit": 0})
        c("GET", "/v1/pmi/pairs", 404, query={"job": "j999"})
        c("GET", "/v1/items/{id}/cooccurrences", 200, {"id": "1"}, query={"k": 5}, token="ro")
        c("GET", "/v1/items/{id}/cooccurrences", 404, {"id": "nope"})
        c("GET", "/v1/items/{id}/cooccurrences", 400, {"id": "1"}, query={"k": 0})

        # models and serving
        model = self.wait(train["id"])["result"]["model"]
        r = c("GET", "/v1/models", 200, token="ro")
        self.assertTrue(r.json()["models"])
        c("GET", "/v1/models", 400, query={"page_token": "x"})
        c("GET", "/v1/models/{id}", 200, {"id": model}, token="ro")
        c("GET", "/v1/models/{id}", 404, {"id": "m999"})
        c("POST", "/v1/models/{id}/activate", 200, {"id": model})
        c("POST", "/v1/models/{id}/activate", 404, {"id": "m999"})
        c("POST", "/v1/models/{id}/activate", 403, {"id": model}, token="ro")
        r = c("GET", "/v1/models/{id}/embeddings", 200, {"id": model}, token="ro")
        c("GET", "/v1/models/{id}/embeddings", 304, {"id": model},
          headers={"If-None-Match": r.header("ETag")})
        c("GET", "/v1/models/{id}/embeddings", 404, {"id": "m999"})
        c("GET", "/v1/embeddings", 200, token="ro")
        c("GET", "/v1/items/{id}/similar", 200, {"id": "1"}, query={"k": 5}, token="ro")
        c("GET", "/v1/items/{id}/similar", 200, {"id": "1"}, query={"metric": "dot"})
        c("GET", "/v1/items/{id}/similar", 200, {"id": "1"}, query={"source": "cooc"})
        c("GET", "/v1/items/{id}/similar", 200, {"id": "1"}, query={"source": "pmi"})
        c("GET", "/v1/items/{id}/similar", 400, {"id": "1"}, query={"k": 0})
        c("GET", "/v1/items/{id}/similar", 200, {"id": "1"}, query={"exact": "true"})
        c("GET", "/v1/items/{id}/similar", 400, {"id": "1"}, query={"exact": "maybe"})
        # what a read replica downloads (docs/api.md "Replication")
        r = c("GET", "/v1/replication/active", 200, token="ro")
        c("GET", "/v1/replication/active", 304, token="ro",
          headers={"If-None-Match": r.header("ETag")})
        active = r.json()["model"]
        c("GET", "/v1/replication/files/{id}", 200, {"id": "model"}, query={"model": active})
        c("GET", "/v1/replication/files/{id}", 200, {"id": "names"}, query={"model": active})
        c("GET", "/v1/replication/files/{id}", 409, {"id": "model"}, query={"model": "m999"})
        c("GET", "/v1/replication/files/{id}", 404, {"id": "nope"}, query={"model": active})
        c("GET", "/v1/items/{id}/similar", 404, {"id": "nope"})
        c("POST", "/v1/recommend", 200, body={"items": ["1", "2", "zzz"], "k": 5})
        c("POST", "/v1/recommend", 404, body={"items": ["zzz"]})
        c("POST", "/v1/recommend", 422, body={"items": []})
        c("POST", "/v1/recommend", 200, body={"items": ["1"]}, token="ro")  # a query
        c("POST", "/v1/recommend", 400, body={"items": ["1"], "exlude": ["2"]})
        c("DELETE", "/v1/models/{id}", 409, {"id": model})
        other = c("POST", "/v1/jobs", 202, body={"type": "train", "params": {
            "dimensions": 4, "max_iterations": 2, "activate": False}}).json()
        other = self.wait(other["id"])["result"]["model"]
        c("DELETE", "/v1/models/{id}", 403, {"id": other}, token="ro")
        c("DELETE", "/v1/models/{id}", 204, {"id": other})
        c("DELETE", "/v1/models/{id}", 404, {"id": other})

        # beyond one machine: the seed's SQL, imports of a PMI table and of embeddings
        c("GET", "/v1/pmi/sql", 200, query={"dialect": "duckdb", "table": "playlists"}, token="ro")
        c("GET", "/v1/pmi/sql", 400, query={"dialect": "duckdb", "table": "x; DROP TABLE y"})
        table = b"item1_Id,item2_Id,cooc\nimp_a,imp_a,2\nimp_b,imp_b,2\nimp_a,imp_b,1\nimp_b,imp_a,1\n"
        c("POST", "/v1/pmi/import", 403, body=table, token="ro", content_type="text/csv")
        c("POST", "/v1/pmi/import", 201, body=table, content_type="text/csv")
        c("POST", "/v1/pmi/import", 400, body=b"item1_Id,item2_Id,cooc\nimp_a,imp_a,x\n",
          content_type="text/csv")
        emb = b'{"id":"imp_a","embedding":[0.1,0.2]}\n{"id":"imp_b","embedding":[0.3,0.1]}\n'
        c("POST", "/v1/models/import", 201, body=emb, content_type="application/x-ndjson")
        c("POST", "/v1/models/import", 415, body=emb, content_type="image/png")

        # admin
        c("POST", "/v1/admin/backup", 403, token="ro")
        c("POST", "/v1/admin/backup", 200)

        # every documented operation was walked with a success
        for m, p, op in self.spec.operations():
            statuses = self.seen.get((m, p), set())
            self.assertTrue(any(200 <= s < 400 for s in statuses),
                            "%s %s was not walked with a success (saw %s)" % (m, p, sorted(statuses)))


if __name__ == "__main__":
    run(globals())
