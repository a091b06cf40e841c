"""The ANN index (issue 14) on a model written by bench/gen_model (planted
clusters, 6000 items x 24 dims): ANN answers against the exact path
(recall@10 over sampled items, cosine and dot, a threshold that fails when
the graph is poor), the index persisted beside the model file and read back
on restart without a rebuild (same files, same CRC-checked manifest; a
corrupted graph is rebuilt), ?exact=true, and the auto threshold
([serving] ann_min_items)."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402

N, DIMS, MODEL = 6000, 24, "m900000"
RECALL_MIN = 0.9  # measured 0.99+ (cosine) and 0.97 (dot) at ef_search 64
SAMPLE = 60


def gen_model(state, items=N, dims=DIMS, seq=900000):
    tool = os.path.join(os.environ["ITEMVEC_BUILD"], "bench", "gen_model")
    subprocess.run([tool, "--state", state, "--items", str(items), "--dims", str(dims),
                    "--clusters", str(items // 50), "--noise", "0.8",
                    "--model-seq", str(seq)], check=True, stdout=subprocess.DEVNULL)


def full_log(d):
    # the whole log: Daemon.log_text() keeps only its tail, which the
    # /readyz polls of a slow (sanitizer) start-up can push a line out of
    with open(d.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def conf(index, min_items=200000):
    return "[serving]\nindex = %s\nann_min_items = %d\n" % (index, min_items)


def similar(d, item, extra=""):
    return d.json("GET", "/v1/items/%s/similar?k=10%s" % (item, extra))


def recall(d, metric):
    hit = tot = 0
    extra = "&metric=dot" if metric == "dot" else ""
    for t in range(SAMPLE):
        item = "g%d" % (t * (N // SAMPLE))
        a = similar(d, item, extra)
        e = similar(d, item, extra + "&exact=true")
        assert a["index"] == "ann" and e["index"] == "exact", (a["index"], e["index"])
        exact = {n["id"]: n["score"] for n in e["neighbors"]}
        for n in a["neighbors"]:
            if n["id"] in exact:
                hit += 1
                # re-scored exactly: a found neighbour has the exact score
                assert abs(n["score"] - exact[n["id"]]) <= 1e-6 * max(1, abs(n["score"]))
        tot += len(e["neighbors"])
    return hit / tot


class AnnTest(unittest.TestCase):
    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="itemvec-ann-")
        gen_model(self.state)

    def tearDown(self):
        shutil.rmtree(self.state, ignore_errors=True)

    def files(self):
        return {f: os.stat(os.path.join(self.state, "models", f))
                for f in os.listdir(os.path.join(self.state, "models")) if ".ann" in f}

    def test_recall_persist_reload_exact(self):
        with Daemon(state_dir=self.state, config_text=conf("ann")) as d:
            m = d.json("GET", "/v1/models/" + MODEL)
            ix = m["serving"]["index"]
            self.assertEqual(ix["kind"], "ann")
            self.assertFalse(ix["loaded_from_file"])
            self.assertGreaterEqual(ix["recall_at_10"]["cosine"], RECALL_MIN)
            self.assertGreaterEqual(ix["recall_at_10"]["dot"], RECALL_MIN)
            self.assertGreater(ix["memory_bytes"], 0)
            # each item's neighbours through the graph are kept: min(topk 100, ef 64)
            self.assertEqual(ix["lists"], 64)
            wide = d.json("GET", "/v1/items/g7/similar?k=100")  # beyond the lists: a search
            self.assertEqual((wide["index"], len(wide["neighbors"])), ("ann", 100))
            self.assertGreaterEqual(recall(d, "cosine"), RECALL_MIN)
            self.assertGreaterEqual(recall(d, "dot"), RECALL_MIN)
            r = d.request("GET", "/v1/items/g1/similar?exact=maybe")
            self.assertEqual(r.status, 400)
            before = similar(d, "g7")
        files = self.files()
        self.assertEqual(sorted(files), ["%s.emb.ann" % MODEL, "%s.emb.ann-cos" % MODEL,
                                         "%s.emb.ann-lists" % MODEL])
        # restart: read back, not rebuilt (files untouched, flagged as loaded)
        with Daemon(state_dir=self.state, config_text=conf("ann")) as d:
            ix = d.json("GET", "/v1/models/" + MODEL)["serving"]["index"]
            self.assertTrue(ix["loaded_from_file"])
            self.assertEqual(similar(d, "g7"), before)
            self.assertNotIn("rebuilding", full_log(d))
        after = self.files()
        for f, st in files.items():
            self.assertEqual((st.st_ino, st.st_mtime_ns), (after[f].st_ino, after[f].st_mtime_ns), f)
        # a corrupted graph fails its CRC and is rebuilt
        path = os.path.join(self.state, "models", "%s.emb.ann-cos" % MODEL)
        with open(path, "r+b") as f:
            f.seek(os.path.getsize(path) // 2)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0xFF]))
        with Daemon(state_dir=self.state, config_text=conf("ann")) as d:
            ix = d.json("GET", "/v1/models/" + MODEL)["serving"]["index"]
            self.assertFalse(ix["loaded_from_file"])
            self.assertIn("rebuilding", full_log(d))
            self.assertEqual(similar(d, "g7")["neighbors"], before["neighbors"])

    def test_auto_threshold(self):
        # below the threshold: exact (precomputed lists), nothing written
        with Daemon(state_dir=self.state, config_text=conf("auto", N + 1)) as d:
            self.assertEqual(d.json("GET", "/v1/models/" + MODEL)["serving"]["index"]["kind"],
                             "exact")
            self.assertEqual(similar(d, "g3")["index"], "exact")
            self.assertEqual(similar(d, "g3", "&metric=dot")["index"], "exact")
        self.assertEqual(self.files(), {})
        # at the threshold: ANN
        with Daemon(state_dir=self.state, config_text=conf("auto", N)) as d:
            self.assertEqual(d.json("GET", "/v1/models/" + MODEL)["serving"]["index"]["kind"],
                             "ann")
            self.assertEqual(similar(d, "g3")["index"], "ann")
            self.assertEqual(similar(d, "g3", "&exact=true")["index"], "exact")
        # index = exact wins over a catalogue above the threshold
        with Daemon(state_dir=self.state, config_text=conf("exact", 2)) as d:
            self.assertEqual(similar(d, "g3")["index"], "exact")

    def test_start_up_load_runs_on_the_pool(self):
        # A model whose ANN index is not on disk yet takes a while to serve up
        # at start (read, names, two graphs, the recall sample): the daemon
        # listens meanwhile, /readyz and queries of the active model answer
        # 503 loading-model, /v1/models/{id} shows the progress, and the rest
        # of the API works. (Before, start-up loaded it before listening: a
        # 1 M-item model kept the port closed for minutes.)
        big = tempfile.mkdtemp(prefix="itemvec-ann-start-")
        try:
            gen_model(big, items=40000, dims=32)
            d = Daemon(state_dir=big, config_text=conf("ann"))
            d.start(wait=False)
            try:
                seen = {}
                deadline = time.time() + 300
                while time.time() < deadline:
                    try:
                        r = d.request("GET", "/readyz", timeout=2)
                    except OSError:
                        time.sleep(0.02)
                        continue
                    if r.status == 200:
                        break
                    self.assertEqual((r.status, r.json()["type"].rsplit(":", 1)[-1]),
                                     (503, "loading-model"), r)
                    s = d.request("GET", "/v1/items/g5/similar?k=5")
                    if s.status == 503:
                        seen["similar"] = (s.json(), s.header("Retry-After"))
                    m = d.json("GET", "/v1/models/" + MODEL)
                    if "loading" in m:
                        seen["loading"] = m["loading"]
                    seen["info"] = d.request("GET", "/v1/info").status
                    seen["healthz"] = d.request("GET", "/healthz").status
                    time.sleep(0.05)
                self.assertEqual(d.request("GET", "/readyz").status, 200)
                self.assertIn("similar", seen, "never saw the loading state")
                body, retry = seen["similar"]
                self.assertTrue(body["type"].endswith("loading-model"), body)
                self.assertIn(MODEL, body["detail"])
                self.assertEqual(retry, "5")
                self.assertIn(seen["loading"]["stage"], ("read", "names", "normalise",
                                                         "ann-load", "ann-build", "ann-recall"))
                self.assertTrue(0 <= seen["loading"]["fraction"] <= 1)
                self.assertEqual((seen["info"], seen["healthz"]), (200, 200))
                self.assertEqual(similar(d, "g5")["index"], "ann")
                self.assertNotIn("loading", d.json("GET", "/v1/models/" + MODEL))
            finally:
                d.stop()
            # SIGTERM while the index is being built: the build stops (it
            # does not hold the drain for minutes), nothing half-built is
            # kept, and the next start builds it again
            models = os.path.join(big, "models")
            for f in os.listdir(models):
                if ".ann" in f:
                    os.unlink(os.path.join(models, f))
            d = Daemon(state_dir=big, config_text=conf("ann"))
            d.start(wait=False)
            try:
                deadline = time.time() + 60
                while time.time() < deadline:
                    try:
                        r = d.request("GET", "/readyz", timeout=2)
                        if r.status == 503 and "ann-build" in r.json()["detail"]:
                            break
                    except OSError:
                        pass
                    time.sleep(0.02)
            finally:
                self.assertEqual(d.stop(), 0)
            self.assertIn("loading model %s stopped by the shutdown" % MODEL, full_log(d))
            self.assertEqual([f for f in os.listdir(models) if ".ann" in f], [])
        finally:
            shutil.rmtree(big, ignore_errors=True)


if __name__ == "__main__":
    run(globals())
