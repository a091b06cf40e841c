"""API tests for issue 13's imports on small synthetic playlists:
POST /v1/pmi/import (a co-occurrence table computed elsewhere becomes a
succeeded pmi job equal to itemvecd's own: the same matrix file, pairs,
similar?source=cooc|pmi, and a train job on it gives the same model), the
table formats (CSV/TSV/NDJSON, seed and itemvecd column names, gzip,
concatenated shards), new item ids, POST /v1/models/import (a model
exported as JSONL and imported serves identical neighbours; source
"import"; activate), GET /v1/pmi/sql's validation of client text pasted
into SQL, and bad input of every kind: 4xx with a location, nothing stored,
the daemon alive."""
import gzip
import json
import math
import os
import random
import sys
import threading
import time
import unittest
import http.client

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402
from pipeline import read_jsonl, run_job  # noqa: E402
import cooc_file as CF  # noqa: E402


def planted_tsv(n_groups=800, seed=5):
    rnd = random.Random(seed)
    lines = ["playlist_id\titem_id\ttitle\tartist"]
    for g in range(n_groups):
        c = g % 4
        items = set()
        for _ in range(rnd.randint(2, 9)):
            items.add(1 + c * 20 + rnd.randrange(20) if rnd.random() < 0.85 else 1 + rnd.randrange(80))
        lines += ["g%d\t%d\tSong %d\tArtist %d" % (g, i, i, (i - 1) // 20) for i in sorted(items)]
    return ("\n".join(lines) + "\n").encode()


def table_rows(text, sep=","):
    lines = text.decode().splitlines()
    return lines[0], lines[1:]


class Imports(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(keep_state=True).__enter__()
        assert cls.d.upload(planted_tsv()).status == 200
        cls.native = run_job(cls.d, "pmi", {"min_item_frequency": 5})["id"]
        cls.native_file = CF.read_cooc(cls.pmi_path(cls.native))
        cls.ids = CF.item_ids(cls.d.state_dir)
        cls.table = CF.to_table(cls.native_file, cls.ids)

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)
        import shutil
        shutil.rmtree(cls.d.state_dir, ignore_errors=True)

    @classmethod
    def pmi_path(cls, job):
        return os.path.join(cls.d.state_dir, "pmi", job + ".cooc")

    # ---- helpers ----

    def post(self, path, body, ctype="text/csv", gz=False, headers=None):
        h = {"Content-Type": ctype}
        if gz:
            body = gzip.compress(body)
            h["Content-Encoding"] = "gzip"
        h.update(headers or {})
        return self.d.request("POST", path, body, h)

    def state(self):
        """What an import may change: job and model records, item count, files."""
        d = self.d
        jobs = [j["id"] for j in d.json("GET", "/v1/jobs?page_size=1000")["jobs"]]
        models = [m["id"] for m in d.json("GET", "/v1/models?page_size=1000")["models"]]
        items = d.json("GET", "/v1/info")["counts"]["items"]
        files = sorted(os.listdir(os.path.join(d.state_dir, "pmi")))
        mdir = os.path.join(d.state_dir, "models")
        mfiles = sorted(os.listdir(mdir)) if os.path.isdir(mdir) else []
        return jobs, models, items, files, mfiles

    def assert_refused(self, r, status, before, *where):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.header("Content-Type"), "application/problem+json", r)
        p = r.json()
        for key in where:
            self.assertIn(key, p, p)
        self.assertEqual(self.state(), before, "an import that failed stored something")
        self.assertEqual(self.d.request("GET", "/healthz").status, 200)
        return p

    def assert_same_matrix(self, job):
        a, b = self.native_file, CF.read_cooc(self.pmi_path(job))
        for k in ("n", "nnz", "total"):
            self.assertEqual(a[k], b[k], k)
        for k in ("keys", "freq", "row_ptr", "col", "cooc"):
            self.assertEqual(a[k], b[k], k)

    # ---- the co-occurrence table ----

    def test_csv_import_equals_native(self):
        r = self.post("/v1/pmi/import?min_item_frequency=5&max_group_size=100", self.table)
        self.assertEqual(r.status, 201, r)
        a = r.json()
        job = a["job"]
        self.assertEqual(r.header("Location"), "/v1/jobs/" + job)
        f = self.native_file
        self.assertEqual((a["matrix_items"], a["cooc_rows"], a["total"], a["new_items"]),
                         (f["n"], f["nnz"], f["total"], 0))
        self.assert_same_matrix(job)
        j = self.d.json("GET", "/v1/jobs/" + job)
        self.assertEqual((j["type"], j["state"], j["params"]["source"]), ("pmi", "succeeded", "import"))
        self.assertEqual(j["params"]["min_item_frequency"], 5)
        self.assertEqual(j["result"]["total"], f["total"])
        # the PMI routes answer the same for both jobs
        for path in ("/v1/pmi/pairs?limit=20&job=%s", "/v1/items/3/cooccurrences?k=15&job=%s",
                     "/v1/items/3/similar?source=cooc&k=10&job=%s",
                     "/v1/items/3/similar?source=pmi&k=10&job=%s"):
            x = self.d.json("GET", path % self.native)
            y = self.d.json("GET", path % job)
            x.pop("job", None)
            y.pop("job", None)
            self.assertEqual(x, y, path)
        # the newest succeeded pmi job is the import: routes without job= use it
        self.assertEqual(self.d.json("GET", "/v1/pmi/pairs?limit=1")["job"], job)
        # train on both with a fixed seed: the same model
        params = {"dimensions": 8, "seed": 11, "max_iterations": 4, "activate": False}
        m1 = run_job(self.d, "train", dict(params, pmi_job=self.native))["result"]["model"]
        m2 = run_job(self.d, "train", dict(params, pmi_job=job))["result"]["model"]
        e1 = self.d.request("GET", "/v1/models/%s/embeddings" % m1).body
        e2 = self.d.request("GET", "/v1/models/%s/embeddings" % m2).body
        self.assertEqual(e1, e2)

    def test_formats_names_and_gzip(self):
        f = self.native_file
        shuffled = lambda rows: random.Random(2).sample(rows, len(rows))  # noqa: E731
        cases = [
            ("text/tab-separated-values", CF.to_table(f, self.ids, "tsv"), False, "tsv"),
            ("application/x-ndjson", CF.to_table(f, self.ids, "ndjson", order=shuffled), True, "ndjson"),
            ("text/csv", CF.to_table(f, self.ids, names=("item1", "item2", "cooc", "pmi")), True, "csv"),
            ("text/csv", CF.to_table(f, self.ids, with_pmi=False, order=shuffled), False, "csv"),
        ]
        for ctype, body, gz, fmt in cases:
            r = self.post("/v1/pmi/import", body, ctype, gz=gz)
            self.assertEqual(r.status, 201, (ctype, r))
            self.assert_same_matrix(r.json()["job"])
            self.assertEqual(self.d.json("GET", r.header("Location"))["params"]["format"], fmt)
        # shards, each with its header, concatenated; CRLF; BOM; extra columns
        head, rows = table_rows(self.table)
        half = len(rows) // 2
        body = ("\ufeff" + head + ",score\r\n" + "\r\n".join(x + ",1" for x in rows[:half]) + "\r\n" +
                head + ",score\r\n" + "\r\n".join(x + ",2" for x in rows[half:]) + "\r\n").encode()
        # the repeated header must equal the first line exactly to be skipped
        body = body.replace(("\r\n" + head + ",score\r\n").encode(), ("\r\n" + head + ",score\r\n").encode())
        r = self.post("/v1/pmi/import", body)
        self.assertEqual(r.status, 201, r)
        self.assert_same_matrix(r.json()["job"])

    def test_new_ids_become_items(self):
        before = self.d.json("GET", "/v1/info")["counts"]["items"]
        body = ("item1_Id,item2_Id,cooc\n"
                "new-a,new-a,3\nnew-b,new-b,2\nnew-a,new-b,2\nnew-b,new-a,2\n"
                "\"new,c\",\"new,c\",1\n").encode()
        r = self.post("/v1/pmi/import", body)
        self.assertEqual(r.status, 201, r)
        a = r.json()
        self.assertEqual((a["new_items"], a["matrix_items"], a["total"], a["cooc_rows"]), (3, 3, 6, 5))
        self.assertEqual(self.d.json("GET", "/v1/info")["counts"]["items"], before + 3)
        it = self.d.json("GET", "/v1/items/new-a")
        self.assertEqual((it["title"], it["playlists"]), (None, 0))
        pairs = self.d.json("GET", "/v1/pmi/pairs?limit=5&job=" + a["job"])["pairs"]
        self.assertEqual({(p["item1"], p["item2"]) for p in pairs}, {("new-a", "new-b"), ("new-b", "new-a")})
        p = pairs[0]
        self.assertAlmostEqual(p["pmi"], math.log2(2) - math.log2(3) - math.log2(2) + math.log2(6), places=12)
        sim = self.d.json("GET", "/v1/items/new-b/similar?source=cooc&job=" + a["job"])
        self.assertEqual([n["id"] for n in sim["neighbors"]], ["new-a"])

    def test_bad_tables(self):
        head, rows = table_rows(self.table)
        row = rows[0]
        diag = next(x for x in rows if x.split(",")[0] == x.split(",")[1])
        off = [x for x in rows if x.split(",")[0] != x.split(",")[1]]
        a, b, c, p = off[0].split(",")
        mirror = "%s,%s,%s,%s" % (b, a, c, p)
        rest = [x for x in rows if x not in (off[0], mirror)]

        def body(lines, header=head):
            return ("\n".join([header] + lines) + "\n").encode()

        before = self.state()
        cases = [
            # (what, body, status, keys that locate the problem)
            ("asymmetric pair", body(rest + [off[0]]), 422, ("pair",)),
            ("cooc differs", body(rest + [off[0], "%s,%s,%d,%s" % (b, a, int(c) + 1, p)]), 422, ("pair",)),
            ("duplicate row", body(rows + [off[0]]), 422, ("pair",)),
            ("missing diagonal", body([x for x in rows if x != diag]), 422, ("pair",)),
            ("second diagonal", body(rows + [diag]), 422, ("line", "pair")),
            ("negative cooc", body(rows[:5] + ["%s,%s,-3,1.0" % (a, b)] + rows[5:]), 400, ("line", "column")),
            ("zero cooc", body(rows[:5] + ["%s,%s,0,1.0" % (a, b)]), 400, ("line", "column")),
            ("NaN pmi", body(rows[:3] + ["%s,%s,%s,NaN" % (a, b, c)] + rows[3:]), 400, ("line", "column")),
            ("inf pmi", body(rows[:3] + ["%s,%s,%s,1e999" % (a, b, c)]), 400, ("line", "column")),
            ("wrong pmi (ln)", body([",".join(x.split(",")[:3] + [repr(float(x.split(",")[3]) * math.log(2))])
                                     for x in rows]), 422, ("pair",)),
            ("one wrong pmi", body(rest + [off[0], "%s,%s,%s,%r" % (b, a, c, float(p) + 0.5)]), 422, ()),
            ("wrong header", body(rows, "a,b,cooc,pmi"), 400, ("line", "column")),
            ("no header", b"", 400, ("line",)),
            ("ragged row", body(rows[:4] + ["%s,%s" % (a, b)]), 400, ("line", "column")),
            ("empty id", body(rows[:4] + [",%s,1,1.0" % b]), 400, ("line", "column")),
            ("id too long", body(rows[:4] + ["%s,%s,1,1.0" % ("x" * 257, b)]), 400, ("line", "column")),
            ("unterminated quote", body(rows[:4] + ['"abc,%s,1,1.0' % b]), 400, ("line",)),
            ("pmi on some rows", ("\n".join(json.dumps({"item1_Id": "a", "item2_Id": "a", "cooc": 1, "pmi": 0.0}) if i == 0
                                  else json.dumps({"item1_Id": "b", "item2_Id": "b", "cooc": 1})
                                  for i in range(2)) + "\n").encode(), 400, ("line",)),
        ]
        for what, data, status, where in cases:
            ctype = "application/x-ndjson" if what == "pmi on some rows" else "text/csv"
            r = self.post("/v1/pmi/import", data, ctype)
            p = self.assert_refused(r, status, before, *where)
            if "pair" in where:
                self.assertEqual(len(p["pair"]), 2, p)
        # a pmi in another log base names the pair and the total it was checked with
        r = self.post("/v1/pmi/import", body([",".join(x.split(",")[:3] + [repr(float(x.split(",")[3]) * math.log(2))])
                                              for x in rows]))
        self.assertIn("total = %d" % self.native_file["total"], r.json()["detail"])
        # an asymmetric pair names the row and its missing mirror
        r = self.post("/v1/pmi/import", body(rest + [off[0]]))
        self.assertEqual(r.json()["pair"], [a, b])
        self.assertIn("no mirror row", r.json()["detail"])
        # truncated gzip, corrupt gzip
        gz = gzip.compress(self.table)
        for data in (gz[:len(gz) // 2], gz[:10] + b"\x00" * 50 + gz[60:]):
            r = self.post("/v1/pmi/import", data, headers={"Content-Encoding": "gzip"})
            self.assert_refused(r, 400, before)
        # wrong content types and encodings
        self.assert_refused(self.post("/v1/pmi/import", self.table, "application/json"), 415, before)
        self.assert_refused(self.post("/v1/pmi/import", self.table, headers={"Content-Encoding": "br"}), 415, before)
        r = self.d.request("POST", "/v1/pmi/import?pmi_tolerance=2", self.table, {"Content-Type": "text/csv"})
        self.assert_refused(r, 400, before)

    def test_row_limit(self):
        with Daemon(config_text="[limits]\nmax_import_rows = 10\n") as d:
            body = ("item1,item2,cooc\n" + "".join("i%d,i%d,1\n" % (k, k) for k in range(11))).encode()
            r = d.request("POST", "/v1/pmi/import", body, {"Content-Type": "text/csv"})
            self.assertEqual(r.status, 413, r)
            self.assertEqual(d.json("GET", "/v1/jobs")["jobs"], [])
            body = ("item1,item2,cooc\n" + "".join("i%d,i%d,1\n" % (k, k) for k in range(10))).encode()
            self.assertEqual(d.request("POST", "/v1/pmi/import", body, {"Content-Type": "text/csv"}).status, 201)
        # memory, not only rows: two new long ids per row cost far more than a row
        with Daemon(config_text="[limits]\nmax_import_rows = 20000\n") as d:
            body = ("item1,item2,cooc\n" + "".join("%s%d,%s%d,1\n" % ("a" * 240, k, "b" * 240, k)
                                                    for k in range(8000))).encode()
            r = d.request("POST", "/v1/pmi/import", body, {"Content-Type": "text/csv"})
            self.assertEqual(r.status, 413, r)
            self.assertIn("distinct item ids", r.json()["detail"])
            self.assertEqual(d.json("GET", "/v1/jobs")["jobs"], [])
            self.assertEqual(d.json("GET", "/v1/info")["counts"]["items"], 0)

    def test_one_import_at_a_time(self):
        # a first import whose body is still arriving holds the slot
        conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=30)
        conn.putrequest("POST", "/v1/pmi/import")
        conn.putheader("Content-Type", "text/csv")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        head = b"item1,item2,cooc\nq1,q1,1\n"
        conn.send(b"%x\r\n%s\r\n" % (len(head), head))
        time.sleep(0.3)
        r = self.post("/v1/pmi/import", self.table)
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.header("Retry-After"), "10")
        # the loop stays responsive while that body streams
        self.assertEqual(self.d.request("GET", "/healthz").status, 200)
        conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 201, resp.read())
        conn.close()

    # ---- embeddings ----

    def test_model_roundtrip(self):
        src = run_job(self.d, "train", {"pmi_job": self.native, "dimensions": 6, "seed": 3,
                                         "activate": False})["result"]["model"]
        export = self.d.request("GET", "/v1/models/%s/embeddings" % src).body
        r = self.post("/v1/models/import", export, "application/x-ndjson", gz=True)
        self.assertEqual(r.status, 201, r)
        a = r.json()
        mid = a["model"]
        self.assertEqual(r.header("Location"), "/v1/models/" + mid)
        self.assertEqual((a["items"], a["dimensions"], a["active"]), (len(read_jsonl(export)), 6, False))
        m = self.d.json("GET", "/v1/models/" + mid)
        self.assertEqual((m["source"], m["job"], m["active"]), ("import", None, False))
        self.assertEqual(self.d.json("GET", "/v1/models/" + src)["source"], "train")
        # the same file content: the export of the import is byte-identical
        self.assertEqual(self.d.request("GET", "/v1/models/%s/embeddings" % mid).body, export)
        for item in [e["id"] for e in read_jsonl(export)][:25]:
            x = self.d.json("GET", "/v1/items/%s/similar?k=10&model=%s" % (item, src))
            y = self.d.json("GET", "/v1/items/%s/similar?k=10&model=%s" % (item, mid))
            self.assertEqual(x["neighbors"], y["neighbors"], item)
        # ?activate=true: served at once as the active model; ids as integers too
        lines = [json.loads(x) for x in export.decode().splitlines()]
        body = "\n".join(json.dumps({"embedding": o["embedding"], "id": int(o["id"]), "extra": [1, {"a": None}]})
                         for o in lines).encode()
        r = self.post("/v1/models/import?activate=true", body, "application/x-ndjson")
        self.assertEqual(r.status, 201, r)
        act = r.json()["model"]
        self.assertEqual(self.d.json("GET", "/v1/info")["active_model"]["id"], act)
        y = self.d.json("GET", "/v1/items/%s/similar?k=5" % lines[0]["id"])
        self.assertEqual(y["model"], act)
        x = self.d.json("GET", "/v1/items/%s/similar?k=5&model=%s" % (lines[0]["id"], src))
        self.assertEqual(x["neighbors"], y["neighbors"])

    def test_model_new_items(self):
        body = b'{"id":"emb-x","embedding":[1,0,0]}\n{"id":"emb-y","embedding":[0.9,0.1,0]}\n' \
               b'{"id":"emb-z","embedding":[0,0,1]}\n'
        r = self.post("/v1/models/import", body, "application/x-ndjson")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["new_items"], 3)
        mid = r.json()["model"]
        s = self.d.json("GET", "/v1/items/emb-x/similar?k=2&model=" + mid)
        self.assertEqual([n["id"] for n in s["neighbors"]], ["emb-y", "emb-z"])

    def test_bad_embeddings(self):
        before = self.state()
        good = ['{"id":"e%d","embedding":[%d,1,2]}' % (i, i) for i in range(5)]

        def body(lines):
            return ("\n".join(lines) + "\n").encode()
        cases = [
            ("ragged dimensions", body(good + ['{"id":"e9","embedding":[1,2]}']), 422, ("line", "item")),
            ("duplicate id", body(good + ['{"id":"e2","embedding":[1,2,3]}']), 422, ("line", "item")),
            ("NaN", body(good[:2] + ['{"id":"e9","embedding":[1,NaN,3]}']), 400, ("line", "column")),
            ("float overflow", body(good[:2] + ['{"id":"e9","embedding":[1,1e39,3]}']), 400, ("line", "column")),
            ("null value", body(good[:2] + ['{"id":"e9","embedding":[1,null,3]}']), 400, ("line", "column")),
            ("missing id", body(good[:2] + ['{"embedding":[1,2,3]}']), 400, ("line",)),
            ("empty embedding", body(['{"id":"e9","embedding":[]}']), 400, ("line",)),
            ("not JSON", body(good[:2] + ['{"id":"e9","embedding":[1,2,3]']), 400, ("line", "column")),
            ("no lines", b"\n", 422, ()),
            ("float id", body(['{"id":1.5,"embedding":[1,2,3]}']), 400, ("line", "column")),
        ]
        for what, data, status, where in cases:
            r = self.post("/v1/models/import", data, "application/x-ndjson")
            with self.subTest(what):
                self.assert_refused(r, status, before, *where)
        r = self.post("/v1/models/import", body(good + ['{"id":"e2","embedding":[1,2,3]}']), "application/x-ndjson")
        self.assertEqual((r.json()["line"], r.json()["item"]), (6, "e2"))
        self.assertIn("line 3", r.json()["detail"])
        gz = gzip.compress(body(good))
        r = self.post("/v1/models/import", gz[:-8], "application/x-ndjson", headers={"Content-Encoding": "gzip"})
        self.assert_refused(r, 400, before)
        self.assert_refused(self.post("/v1/models/import", body(good), "text/csv"), 415, before)
        self.assert_refused(self.post("/v1/models/import?activate=maybe", body(good), "application/x-ndjson"), 400, before)

    # ---- the SQL ----

    def test_sql_dialects(self):
        for dialect, extra in (("duckdb", ""), ("spark", ""), ("bigquery", "&out=gs://b/x/part-*.csv")):
            r = self.d.request("GET", "/v1/pmi/sql?dialect=%s&table=db.rows&min_item_frequency=7"
                                      "&max_group_size=50%s" % (dialect, extra))
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.header("Content-Type").startswith("application/sql"), r.headers)
            text = r.body.decode()
            self.assertIn("item1_Id, item2_Id, cooc, pmi", text)
            if dialect == "bigquery":
                self.assertIn("CALL `db.sp_ComputePMI`(7, 50);", text)
                self.assertIn("LOG(a.cooc, 2) - LOG(b.frequency, 2) - LOG(c.frequency, 2) + LOG(total, 2)", text)
                self.assertIn("EXPORT DATA OPTIONS (uri = 'gs://b/x/part-*.csv'", text)
            else:
                self.assertIn("HAVING COUNT(group_Id) >= 7", text)
                self.assertIn("BETWEEN 2 AND 50", text)
        self.assertEqual(self.d.request("GET", "/v1/pmi/sql?dialect=spark&table=rows").status, 200)

    def test_sql_refuses_hostile_text(self):
        bad = [
            ("dialect=postgres&table=t", "dialect"),
            ("table=t", "dialect"),
            ("dialect=duckdb", "table"),
            ("dialect=duckdb&table=t%3B%20DROP%20TABLE%20x", "table"),
            ("dialect=duckdb&table=t%27--", "table"),
            ("dialect=duckdb&table=a.b.c.d", "table"),
            ("dialect=duckdb&table=1abc", "table"),
            ("dialect=spark&table=t%60x", "table"),
            ("dialect=duckdb&table=a..b", "table"),
            ("dialect=duckdb&table=" + "x" * 129, "table"),
            ("dialect=bigquery&table=t&out=gs://b/*.csv", "table"),
            ("dialect=bigquery&table=d.t", "out"),
            ("dialect=bigquery&table=d.t&out=gs://b/x.csv", "out"),
            ("dialect=duckdb&table=t&out=x%27);%20DROP%20TABLE%20y;--", "out"),
            ("dialect=duckdb&table=t&out=a%0Ab", "out"),
            ("dialect=duckdb&table=t&min_item_frequency=0", "min_item_frequency"),
            ("dialect=duckdb&table=t&max_group_size=1", "max_group_size"),
        ]
        for q, name in bad:
            r = self.d.request("GET", "/v1/pmi/sql?" + q)
            self.assertEqual(r.status, 400, (q, r))
            p = r.json()
            self.assertIn(name, p["detail"], (q, p))
        r = self.d.request("GET", "/v1/pmi/sql?dialect=bigquery&table=my-proj.ds.t&out=gs://b/p-*.csv")
        self.assertEqual(r.status, 200, r)
        self.assertIn("`my-proj.ds.item_cooc`", r.body.decode())


if __name__ == "__main__":
    run(globals())
