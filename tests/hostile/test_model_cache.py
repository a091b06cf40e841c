"""Issue 12, finding 8: `?model=` for a model that is not the active one was
served from a cache of ONE other model, so clients alternating between two
models reloaded the whole file (ids, names, normalised index) on every
request. Other models now live in a least-recently-used cache bounded by
serving.model_cache_bytes. Checks: alternating between two models that fit
the budget loads each once (hits are a small fraction of a load's latency,
a ratio measured in the same run; the load counter of /metrics stays at 2);
cycling through three models that do not fit keeps the cache within its
byte budget; and /healthz's p99 while four clients cycle ?model= (against a
control run of the same clients querying the active model)."""
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402
import reader_attack as ra  # noqa: E402

N, DIMS = 100000, 32


def metric(d, name):
    text = d.request("GET", "/metrics").body.decode()
    m = re.search(r"^%s (\d+)$" % name, text, re.M)
    if not m:
        raise AssertionError("no metric %s in /metrics" % name)
    return int(m.group(1))


class ModelCache(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="itemvec-hostile-cache-")
        ra.fixture(cls.dir, items=N, playlist_size=100, models=4, dims=DIMS)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def start(self, budget):
        conf = "[serving]\nprecompute_max_items = 0\nmodel_cache_bytes = %s\n" % budget
        return Daemon(state_dir=self.dir, config_text=conf).start()

    def similar(self, d, model):
        t0 = time.monotonic()
        r = d.json("GET", "/v1/items/i0000003/similar?k=5&model=" + model)
        self.assertEqual(r["model"], model)
        return time.monotonic() - t0

    def test_alternating_models_hit(self):
        d = self.start("1G")
        try:
            loads = [self.similar(d, "m1002"), self.similar(d, "m1003")]
            hits = [self.similar(d, m) for m in ("m1002", "m1003") * 5]
            print("loads %s s, alternating hits median %.4f s" % (
                ["%.3f" % x for x in loads], statistics.median(hits)))
            self.assertLess(statistics.median(hits), 0.25 * min(loads))
            self.assertEqual(metric(d, "itemvecd_model_cache_loads_total"), 2)
            self.assertEqual(metric(d, "itemvecd_model_cache_models"), 2)
        finally:
            d.stop()

    def test_budget_bounds_the_cache(self):
        d = self.start("1G")
        try:
            self.similar(d, "m1002")
            one = metric(d, "itemvecd_model_cache_bytes")  # one model's size
        finally:
            d.stop()
        budget = int(2.5 * one)  # room for two models, not three
        d = self.start(budget)
        try:
            for m in ("m1002", "m1003", "m1004", "m1002", "m1004"):
                self.similar(d, m)
                self.assertLessEqual(metric(d, "itemvecd_model_cache_bytes"), budget)
            self.assertEqual(metric(d, "itemvecd_model_cache_models"), 2)
            self.assertGreaterEqual(metric(d, "itemvecd_model_cache_evictions_total"), 2)
            # the last two used (m1002, m1004) are cached: no load for them
            loads = metric(d, "itemvecd_model_cache_loads_total")
            self.similar(d, "m1002")
            self.similar(d, "m1004")
            self.assertEqual(metric(d, "itemvecd_model_cache_loads_total"), loads)
        finally:
            d.stop()

    def test_attack_healthz(self):
        d = self.start("1G")
        try:
            path = "/v1/items/i0000003/similar?k=5"
            reqs = [("GET", path + "&model=" + m, None, {}) for m in ("m1002", "m1003", "m1004")]
            ra.healthz_rounds(self, "?model= cycling", d.port, [("GET", path, None, {})], reqs,
                              check=lambda run: self.assertEqual(set(run.answers), {200}),
                              requests=40, seconds=5)
            self.assertLessEqual(metric(d, "itemvecd_model_cache_loads_total"), 3)
        finally:
            d.stop()


if __name__ == "__main__":
    run(globals())
