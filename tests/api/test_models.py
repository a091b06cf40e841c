"""API tests for training, models, export and serving (issues 4 and 5) on
small synthetic data with planted clusters: the train job's result and
progress, model records, activation and deletion rules, the JSONL export
(one line per item, string ids, ETag/304, gzip, HEAD), similar-items and
recommend answers against a numpy brute-force reference, error codes, and
the active model surviving a restart."""
import gzip
import json
import os
import random
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402
from pipeline import read_jsonl, run_job, wait_job  # noqa: E402


def planted_tsv(n_groups=1500, seed=3):
    rnd = random.Random(seed)
    lines = ["playlist_id\titem_id\ttitle\tartist"]
    for g in range(n_groups):
        c = g % 4
        items = set()
        for _ in range(rnd.randint(2, 10)):
            items.add(1 + c * 25 + rnd.randrange(25) if rnd.random() < 0.85 else 1 + rnd.randrange(100))
        lines += ["g%d\t%d\tSong %d\tArtist %d" % (g, i, i, (i - 1) // 25) for i in sorted(items)]
    return ("\n".join(lines) + "\n").encode()


def reference_topk(ids, emb, i, k, exclude=()):
    """Cosine top-k with ties by id, the item itself and exclude left out."""
    norm = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-30)
    scores = norm @ norm[i] if isinstance(i, (int, np.integer)) else norm @ i
    order = sorted((j for j in range(len(ids)) if j not in exclude), key=lambda j: (-scores[j], ids[j]))
    return [(ids[j], float(scores[j])) for j in order[:k]]


class Pipeline(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(keep_state=True).__enter__()
        assert cls.d.upload(planted_tsv()).status == 200

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)
        import shutil
        shutil.rmtree(cls.d.state_dir, ignore_errors=True)

    def test_1_no_model_yet(self):
        d = self.d
        r = d.request("POST", "/v1/jobs", {"type": "train"})
        self.assertEqual(r.status, 409, r)
        self.assertEqual(r.json()["errors"][0]["pointer"], "/params/pmi_job")
        self.assertEqual(d.request("GET", "/v1/items/1/similar").status, 409)
        self.assertEqual(d.request("GET", "/v1/embeddings").status, 404)
        self.assertEqual(d.request("POST", "/v1/recommend", {"items": ["1"]}).status, 409)

    def test_2_train_export_serve(self):
        d = self.d
        pmi = run_job(d, "pmi", {"min_item_frequency": 5})
        self.assertEqual(d.request("POST", "/v1/jobs", {"type": "train", "params": {"dimensions": 0}}).status, 422)
        self.assertEqual(d.request("POST", "/v1/jobs", {"type": "train", "params": {"solver": "magic"}}).status, 422)
        self.assertEqual(d.request("POST", "/v1/jobs", {"type": "train", "params": {"pmi_job": "j999"}}).status, 422)
        job = run_job(d, "train", {"dimensions": 8, "max_iterations": 6, "early_stop": False, "seed": 7})
        res = job["result"]
        self.assertEqual(job["params"]["pmi_job"], pmi["id"])
        self.assertEqual(res["items"], pmi["result"]["matrix_items"])
        self.assertEqual(res["iterations"], 6)
        self.assertEqual(len(res["loss"]), 6)
        self.assertLess(res["loss"][-1], res["loss"][0])
        for a, b in zip(res["loss"], res["loss"][1:]):
            self.assertLessEqual(b, a * (1 + 1e-6))
        model = res["model"]
        info = d.json("GET", "/v1/info")
        self.assertEqual(info["active_model"]["id"], model)
        m = d.json("GET", "/v1/models/" + model)
        self.assertTrue(m["active"])
        self.assertEqual(m["dimensions"], 8)
        self.assertEqual(m["loss"], res["loss"])
        self.assertEqual(m["params"]["seed"], 7)
        self.assertIn(model, [x["id"] for x in d.json("GET", "/v1/models")["models"]])

        # export: JSONL, one line per matrix item, string ids, the seed's shape
        r = d.request("GET", "/v1/models/%s/embeddings" % model)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "application/x-ndjson")
        rows = read_jsonl(r.body)
        self.assertEqual(len(rows), res["items"])
        for row in rows:
            self.assertEqual(set(row), {"id", "embedding"})
            self.assertIsInstance(row["id"], str)
            self.assertEqual(len(row["embedding"]), 8)
        etag = r.header("ETag")
        self.assertTrue(etag.startswith('"') and etag.endswith('"'))
        self.assertEqual(d.request("GET", "/v1/embeddings").body, r.body)
        self.assertEqual(d.request("GET", "/v1/embeddings", headers={"If-None-Match": etag}).status, 304)
        gz = d.request("GET", "/v1/embeddings", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(gz.header("Content-Encoding"), "gzip")
        self.assertEqual(gzip.decompress(gz.body), r.body)
        self.assertNotEqual(gz.header("ETag"), etag)
        head = d.request("HEAD", "/v1/embeddings")
        self.assertEqual(head.status, 200)
        self.assertEqual(head.body, b"")

        # similar: equal to a brute-force cosine top-k, ties by id
        ids = [row["id"] for row in rows]
        emb = np.array([row["embedding"] for row in rows], dtype=np.float64)
        for i in range(len(ids)):
            got = d.json("GET", "/v1/items/%s/similar?k=7" % ids[i])
            self.assertEqual(got["model"], model)
            ref = reference_topk(ids, emb, i, 7, exclude={i})
            gs = [(n["id"], n["score"]) for n in got["neighbors"]]
            self.assertEqual(len(gs), 7)
            for (gid, gsc), (rid, rsc) in zip(gs, ref):
                self.assertAlmostEqual(gsc, rsc, delta=2e-5)
                if gid != rid:  # only a float near-tie may swap
                    self.assertAlmostEqual(gsc, rsc, delta=2e-5)
            self.assertEqual(gs[0][0] == ref[0][0] or abs(gs[0][1] - ref[1][1]) < 2e-5, True)
        n = d.json("GET", "/v1/items/%s/similar?k=3" % ids[0])["neighbors"][0]
        self.assertTrue(n["title"].startswith("Song "))
        self.assertTrue(n["artist"].startswith("Artist "))
        big = d.json("GET", "/v1/items/%s/similar?k=1000" % ids[0])["neighbors"]
        self.assertEqual(len(big), len(ids) - 1)

        # metric=dot: inner product of the raw embeddings (ties by id)
        for i in (0, 3, len(ids) - 1):
            got = d.json("GET", "/v1/items/%s/similar?k=6&metric=dot" % ids[i])
            self.assertEqual(got["metric"], "dot")
            dots = emb @ emb[i]
            ref = sorted((j for j in range(len(ids)) if j != i), key=lambda j: (-dots[j], ids[j]))[:6]
            for n, j in zip(got["neighbors"], ref):
                self.assertAlmostEqual(n["score"], dots[j], delta=1e-4 * max(1, abs(dots[j])))
            self.assertEqual([n["id"] for n in got["neighbors"]][:3], [ids[j] for j in ref][:3])
        self.assertEqual(d.request("GET", "/v1/items/%s/similar?metric=l2" % ids[0]).status, 400)
        self.assertEqual(d.request("GET", "/v1/items/%s/similar?metric=dot&source=cooc" % ids[0]).status, 400)

        # recommend: the sum of normalised inputs, inputs and exclude left out
        a, b, c = ids[0], ids[1], ids[2]
        rec = d.json("POST", "/v1/recommend", {"items": [a, int(b)], "k": 5, "exclude": [c, "nope"]})
        norm = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        q = norm[0] + norm[1]
        ref = reference_topk(ids, emb, q, 5, exclude={0, 1, 2})
        self.assertEqual([x["id"] for x in rec["neighbors"]], [x for x, _ in ref])
        rec = d.json("POST", "/v1/recommend", {"items": [a, "unknown-item"]})
        self.assertEqual(rec["unknown_items"], ["unknown-item"])
        self.assertEqual(len(rec["neighbors"]), 10)

        # sources from the PMI matrix
        co = d.json("GET", "/v1/items/%s/similar?source=cooc&k=5" % ids[0])
        self.assertIsNone(co["model"])
        scores = [x["score"] for x in co["neighbors"]]
        self.assertEqual(scores, sorted(scores, reverse=True))
        self.assertEqual(d.json("GET", "/v1/items/%s/similar?source=pmi&k=3" % ids[0])["source"], "pmi")

        # errors
        for q in ("k=0", "k=1001", "k=x", "source=magic"):
            self.assertEqual(d.request("GET", "/v1/items/%s/similar?%s" % (ids[0], q)).status, 400, q)
        self.assertEqual(d.request("GET", "/v1/items/nope/similar").status, 404)
        self.assertEqual(d.request("GET", "/v1/items/%s/similar?model=m999" % ids[0]).status, 404)
        for body in ({"items": []}, {"items": "a"}, {"items": [a], "k": 0}, {"items": [a], "k": "5"},
                     {"items": [{"x": 1}]}, [1]):
            self.assertEqual(d.request("POST", "/v1/recommend", body).status, 422, body)
        self.assertEqual(d.request("POST", "/v1/recommend", b"{", {"Content-Type": "application/json"}).status, 400)
        self.assertEqual(d.request("POST", "/v1/recommend", {"items": ["zz"]}).status, 404)

    def test_3_activation_and_delete(self):
        d = self.d
        first = d.json("GET", "/v1/info")["active_model"]["id"]
        job = run_job(d, "train", {"dimensions": 4, "max_iterations": 2, "activate": False})
        second = job["result"]["model"]
        self.assertEqual(d.json("GET", "/v1/info")["active_model"]["id"], first)
        self.assertFalse(d.json("GET", "/v1/models/" + second)["active"])
        # a named, inactive model answers too
        item = read_jsonl(d.request("GET", "/v1/models/%s/embeddings" % second).body)[0]["id"]
        self.assertEqual(d.json("GET", "/v1/items/%s/similar?model=%s" % (item, second))["model"], second)
        self.assertEqual(d.json("POST", "/v1/models/%s/activate" % second)["active"], True)
        self.assertEqual(d.json("GET", "/v1/info")["active_model"]["id"], second)
        self.assertEqual(d.json("GET", "/v1/items/%s/similar" % item)["model"], second)
        self.assertEqual(d.request("DELETE", "/v1/models/" + second).status, 409)
        self.assertEqual(d.request("DELETE", "/v1/models/" + first).status, 204)
        self.assertEqual(d.request("GET", "/v1/models/" + first).status, 404)
        self.assertEqual(d.request("POST", "/v1/models/m999/activate").status, 404)
        # the active model is loaded before /readyz turns 200 after a restart
        d.stop()
        d.start()
        self.assertEqual(d.json("GET", "/v1/items/%s/similar" % item)["model"], second)


if __name__ == "__main__":
    run(globals())
