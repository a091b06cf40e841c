"""API tests for the job system and the PMI job (issue 3): validation,
202 + Location, polling to success, results equal to the seed's SQL,
PMI endpoints, cancel (queued and running), 429 on a full queue, restart
recovery after kill -9 and SIGTERM, a consistent snapshot while uploads
continue. A test hook (ITEMVEC_TEST_JOB_DELAY_MS) slows job checkpoints so
a job can be caught while it runs."""
import json
import os
import random
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402
from seed_pmi import seed_pmi  # noqa: E402


def make_rows(n_groups=400, n_items=60, seed=7):
    """Groups with a planted structure so PMI has something to find."""
    rnd = random.Random(seed)
    rows = set()
    for g in range(n_groups):
        cluster = g % 3
        size = rnd.randint(1, 12)
        for _ in range(size):
            if rnd.random() < 0.8:
                item = 1 + cluster * 20 + rnd.randrange(20)
            else:
                item = 1 + rnd.randrange(n_items)
            rows.add(("g%d" % g, str(item)))
    return sorted(rows)


def tsv(rows):
    out = ["playlist_id\titem_id\ttitle\tartist"]
    out += ["%s\t%s\tSong %s\tArtist %s" % (g, i, i, int(i) % 5) for g, i in rows]
    return ("\n".join(out) + "\n").encode()


def wait_job(d, job_id, states=("succeeded", "failed", "cancelled"), timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        j = d.json("GET", "/v1/jobs/" + job_id)
        if j["state"] in states:
            return j
        time.sleep(0.05)
    raise AssertionError("job %s not in %s after %ss: %r" % (job_id, states, timeout, j))


def submit(d, type_, params=None, expect=202):
    body = {"type": type_}
    if params is not None:
        body["params"] = params
    r = d.request("POST", "/v1/jobs", body)
    if r.status != expect:
        raise AssertionError("submit: expected %d, got %r" % (expect, r))
    return r


class PmiJob(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon().__enter__()
        cls.rows = make_rows()
        r = cls.d.upload(tsv(cls.rows))
        assert r.status == 200, r

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def test_validation(self):
        d = self.d
        for params, pointer in (({"bogus": 1}, "/params/bogus"),
                                ({"min_item_frequency": "15"}, "/params/min_item_frequency"),
                                ({"min_item_frequency": 0}, "/params/min_item_frequency"),
                                ({"max_group_size": 1.5}, "/params/max_group_size"),
                                ({"max_group_size": None}, "/params/max_group_size")):
            r = submit(d, "pmi", params, expect=422)
            self.assertEqual(r.header("Content-Type"), "application/problem+json")
            self.assertEqual(r.json()["errors"][0]["pointer"], pointer, r)
        r = submit(d, "nope", {}, expect=422)
        self.assertEqual(r.json()["errors"][0]["pointer"], "/type")
        r = d.request("POST", "/v1/jobs", b"{not json", {"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        r = d.request("POST", "/v1/jobs", {"type": "pmi", "extra": 1})
        self.assertEqual(r.status, 422)
        r = d.request("POST", "/v1/jobs", [1, 2])
        self.assertEqual(r.status, 422)
        self.assertEqual(d.request("GET", "/v1/jobs/j999999").status, 404)
        self.assertEqual(d.request("GET", "/v1/jobs?state=bogus").status, 400)

    def check_pmi(self, minf, maxg):
        d = self.d
        r = submit(d, "pmi", {"min_item_frequency": minf, "max_group_size": maxg})
        job = r.json()
        self.assertEqual(r.header("Location"), "/v1/jobs/" + job["id"])
        self.assertEqual(job["params"], {"min_item_frequency": minf, "max_group_size": maxg})
        self.assertIn(job["state"], ("queued", "running", "succeeded"))
        done = wait_job(d, job["id"])
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["progress"]["fraction"], 1.0)
        fields, rows = seed_pmi(self.rows, minf, maxg)
        for k, v in fields.items():
            self.assertEqual(done["result"][k], v, k)
        return done, rows

    def test_pmi_matches_seed_sql(self):
        done, rows = self.check_pmi(15, 100)
        self.check_pmi(3, 5)
        # top pairs like the seed's exploration query
        pairs = self.d.json("GET", "/v1/pmi/pairs?limit=6&job=" + done["id"])
        self.assertEqual(pairs["job"], done["id"])
        expect = sorted(((c * p, a, b, c, p) for a, b, c, f1, f2, p in rows if a != b),
                        key=lambda t: (-t[0], int(t[1]), int(t[2])))[:6]
        got = pairs["pairs"]
        self.assertEqual(len(got), 6)
        for e, g in zip(expect, got):
            self.assertAlmostEqual(g["score"], e[0], places=9)
            self.assertAlmostEqual(g["pmi"], e[4], places=9)
            self.assertEqual(g["cooc"], e[3])
        # an item's co-occurrences, by score
        item = got[0]["item1"]
        co = self.d.json("GET", "/v1/items/%s/cooccurrences?k=5&job=%s" % (item, done["id"]))
        mine = sorted(((c * p, b) for a, b, c, f1, f2, p in rows if a == item and b != item),
                      key=lambda t: (-t[0], int(t[1])))[:5]
        self.assertEqual([p["item2"] for p in co["pairs"]], [b for _, b in mine])
        self.assertEqual(co["pairs"][0]["title"], "Song %s" % mine[0][1])
        self.assertEqual(self.d.request("GET", "/v1/items/nope/cooccurrences").status, 404)
        self.assertEqual(self.d.request("GET", "/v1/pmi/pairs?job=j424242").status, 404)
        self.assertEqual(self.d.request("GET", "/v1/pmi/pairs?limit=0").status, 400)
        # listing and filters
        lst = self.d.json("GET", "/v1/jobs?type=pmi&state=succeeded")
        self.assertTrue(any(j["id"] == done["id"] for j in lst["jobs"]))
        self.assertEqual(self.d.json("GET", "/v1/jobs?type=train")["jobs"], [])
        # terminal jobs cannot be cancelled
        self.assertEqual(self.d.request("POST", "/v1/jobs/%s/cancel" % done["id"]).status, 409)

    def test_everything_filtered(self):
        done = wait_job(self.d, submit(self.d, "pmi", {"min_item_frequency": 100000}).json()["id"])
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["result"]["cooc_rows"], 0)
        self.assertEqual(done["result"]["valid_items"], 0)


class TieOrder(unittest.TestCase):
    def test_ties_by_id_not_by_key(self):
        # items "9" and "10" co-occur equally with "5"; "9" is stored first
        # (the lower key), "10" comes first in byte order: the contract's tie
        # rule (docs/api.md) is the id, for the pairs and an item's row alike
        with Daemon() as d:
            # two uploads: keys follow the order items are first stored in
            d.upload(tsv([("g1", "9"), ("g1", "5")]))
            d.upload(tsv([("g2", "10"), ("g2", "5")]))
            job = wait_job(d, submit(d, "pmi", {"min_item_frequency": 1}).json()["id"])
            self.assertEqual(job["state"], "succeeded", job)
            row = d.json("GET", "/v1/items/5/cooccurrences?k=5")["pairs"]
            self.assertEqual([p["item2"] for p in row], ["10", "9"])
            self.assertEqual(row[0]["score"], row[1]["score"])
            pairs = d.json("GET", "/v1/pmi/pairs?limit=10")["pairs"]
            self.assertEqual([(p["item1"], p["item2"]) for p in pairs],
                             [("10", "5"), ("5", "10"), ("5", "9"), ("9", "5")])
            self.assertEqual(len({p["score"] for p in pairs}), 1)


class EmptyAndNoJob(unittest.TestCase):
    def test_empty_store(self):
        with Daemon() as d:
            self.assertEqual(d.request("GET", "/v1/pmi/pairs").status, 409)
            done = wait_job(d, submit(d, "pmi").json()["id"])
            self.assertEqual(done["state"], "succeeded", done)
            self.assertEqual(done["result"]["total"], 0)
            self.assertEqual(d.json("GET", "/v1/pmi/pairs")["pairs"], [])


SLOW = {"ITEMVEC_TEST_JOB_DELAY_MS": "300"}


class Lifecycle(unittest.TestCase):
    def test_cancel_and_queue_full(self):
        conf = "[jobs]\nconcurrency = 1\nqueue_size = 1\n"
        with Daemon(config_text=conf, env=SLOW) as d:
            d.upload(tsv(make_rows()))
            a = submit(d, "pmi").json()["id"]
            wait_job(d, a, states=("running",))
            b = submit(d, "pmi").json()["id"]
            r = submit(d, "pmi", expect=429)
            self.assertTrue(r.header("Retry-After"))
            # cancel the queued one: immediate
            j = d.json("POST", "/v1/jobs/%s/cancel" % b)
            self.assertEqual(j["state"], "cancelled")
            self.assertEqual(d.request("POST", "/v1/jobs/%s/cancel" % b).status, 409)
            # cancel the running one: at the next checkpoint
            j = d.json("POST", "/v1/jobs/%s/cancel" % a)
            self.assertIn(j["state"], ("running", "cancelled"))
            done = wait_job(d, a)
            self.assertEqual(done["state"], "cancelled")
            self.assertIsNotNone(done["finished_at"])

    def test_restart_recovery_kill9(self):
        d = Daemon(env=SLOW, keep_state=True)
        d.start()
        try:
            d.upload(tsv(make_rows()))
            a = submit(d, "pmi").json()["id"]
            b = submit(d, "pmi", {"min_item_frequency": 2}).json()["id"]
            wait_job(d, a, states=("running",))
            d.kill9()
            d.env = None
            d.start()
            ja = d.json("GET", "/v1/jobs/" + a)
            self.assertIn(ja["state"], ("queued", "running", "succeeded"))
            done = wait_job(d, a)
            self.assertEqual(done["state"], "succeeded", done)
            self.assertEqual(done["attempts"], 2)
            self.assertEqual(wait_job(d, b)["state"], "succeeded")
        finally:
            d.stop()
            import shutil
            shutil.rmtree(d.state_dir, ignore_errors=True)

    def test_sigterm_requeues_running_job(self):
        d = Daemon(env=SLOW, keep_state=True)
        d.start()
        try:
            d.upload(tsv(make_rows()))
            a = submit(d, "pmi").json()["id"]
            wait_job(d, a, states=("running",))
            t0 = time.time()
            self.assertEqual(d.stop(signal.SIGTERM), 0)
            self.assertLess(time.time() - t0, 5)
            d.env = None
            d.start()
            done = wait_job(d, a)
            self.assertEqual(done["state"], "succeeded", done)
        finally:
            d.stop()
            import shutil
            shutil.rmtree(d.state_dir, ignore_errors=True)

    def test_job_queued_by_an_older_version(self):
        # A train job stored by a version whose params lacked later fields
        # ("negative", "method", ...) is recovered and trains with their
        # defaults (a NULL "negative" used to crash the worker).
        d = Daemon(keep_state=True)
        d.start()
        try:
            d.upload(tsv(make_rows()))
            pmi = wait_job(d, submit(d, "pmi").json()["id"])["id"]
            d.stop()
            import sqlite3
            db = sqlite3.connect(os.path.join(d.state_dir, "itemvec.db"))
            old = {"dimensions": 8, "alpha": 1.0, "l2_reg": 1.0, "max_iterations": 2,
                   "early_stop": True, "min_rel_progress": 0.01, "seed": 1, "solver": "cg",
                   "cg_steps": 3, "target": "score", "pmi_job": pmi, "activate": True}
            db.execute("INSERT INTO jobs (id, type, state, params, created_ms) "
                       "VALUES ('j900', 'train', 'queued', ?, 1)", (json.dumps(old),))
            db.commit()
            db.close()
            d.start()
            done = wait_job(d, "j900")
            self.assertEqual(done["state"], "succeeded", done)
            self.assertEqual(d.request("GET", "/healthz").status, 200)
        finally:
            d.stop()
            import shutil
            shutil.rmtree(d.state_dir, ignore_errors=True)

    def test_snapshot_while_uploading(self):
        with Daemon(env=SLOW) as d:
            rows = make_rows()
            d.upload(tsv(rows))
            a = submit(d, "pmi", {"min_item_frequency": 1}).json()["id"]
            wait_job(d, a, states=("running",))
            time.sleep(0.1)  # past the snapshot read
            more = [("h%d" % g, str(500 + g % 7)) for g in range(300)]
            for k in range(0, 300, 50):
                self.assertEqual(d.upload(tsv(more[k:k + 50])).status, 200)
            done = wait_job(d, a)
            self.assertEqual(done["state"], "succeeded")
            fields, _ = seed_pmi(rows, 1, 100)
            self.assertEqual(done["result"]["total"], fields["total"])
            self.assertEqual(done["result"]["memberships"], len(rows))


if __name__ == "__main__":
    run(globals())
