"""Issue 12, finding 7 (training memory unchecked): a train job's items x
dimensions was never compared with memory, so one POST could start a
training the OOM killer ends by killing the daemon; and a job running when
the daemon died was requeued up to three starts, so it could kill the
daemon three times. Now the job's peak memory is estimated when it is
submitted (jobs/job_memory.h) and a job over jobs.memory_budget is refused
with a 422 problem naming the estimate and the budget; and a job that was
running at two unclean stops fails instead of starting a third time.
Checks: the refusal and its control (a small job under the same budget
runs), the budget applying on SIGHUP, and two kill -9 in a row during a
train job (as two OOM kills would). /healthz's p99 is measured while
clients submit oversized train jobs (against a control of small ones)."""
import os
import random
import signal
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402
import reader_attack as ra  # noqa: E402

SLOW = {"ITEMVEC_TEST_JOB_DELAY_MS": "300"}
# dimensions 1024 (the maximum) needs ~10 MiB on this data, dimensions 8 ~4 MiB
BUDGET = "[jobs]\nmemory_budget = 6M\n"
JSON = {"Content-Type": "application/json"}


def tsv(seed=7):
    rnd = random.Random(seed)
    rows = set()
    for g in range(400):
        for _ in range(rnd.randint(2, 12)):
            rows.add(("g%d" % g, str(1 + (g % 3) * 20 + rnd.randrange(20))))
    out = ["playlist_id\titem_id\ttitle"] + ["%s\t%s\tSong %s" % (g, i, i) for g, i in sorted(rows)]
    return ("\n".join(out) + "\n").encode()


def wait_job(d, job, states=("succeeded", "failed", "cancelled"), timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        j = d.json("GET", "/v1/jobs/" + job)
        if j["state"] in states:
            return j
        time.sleep(0.05)
    raise AssertionError("job %s not in %s: %r" % (job, states, j))


def prepare(d):
    """Uploads the playlists and runs a pmi job to train on."""
    if d.upload(tsv()).status != 200:
        raise AssertionError("upload failed")
    pmi = d.json("POST", "/v1/jobs", {"type": "pmi", "params": {"min_item_frequency": 1}},
                 expect=202)["id"]
    if wait_job(d, pmi)["state"] != "succeeded":
        raise AssertionError("pmi job failed")


def train(d, dims):
    return d.request("POST", "/v1/jobs", {"type": "train", "params": {
        "dimensions": dims, "max_iterations": 3, "seed": 1}})


class TrainMemory(unittest.TestCase):
    def test_refused_over_budget(self):
        with Daemon(config_text=BUDGET) as d:
            prepare(d)
            r = train(d, 1024)
            self.assertEqual(r.status, 422, r)
            p = r.json()
            print("refusal:", p["detail"])
            self.assertEqual(r.header("Content-Type"), "application/problem+json")
            self.assertEqual(p["type"], "urn:itemvec:problem:memory-budget")
            self.assertEqual(p["memory_budget_bytes"], 6 << 20)
            self.assertGreater(p["memory_estimate_bytes"], p["memory_budget_bytes"])
            self.assertEqual(p["errors"][0]["pointer"], "/params/dimensions")
            self.assertIn("jobs.memory_budget 6.0 MiB", p["detail"])
            self.assertIn("1024 dimensions", p["detail"])
            self.assertEqual(d.json("GET", "/v1/jobs?type=train")["jobs"], [])
            # the control: a small model under the same budget trains
            ok = train(d, 8)
            self.assertEqual(ok.status, 202, ok)
            self.assertEqual(wait_job(d, ok.json()["id"])["state"], "succeeded")
            # a reloaded budget applies to the next submission
            with open(os.path.join(d.state_dir, "test.conf"), "w") as f:
                f.write("[jobs]\nmemory_budget = 1G\n")
            d.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 10
            while train_status(d) != 202 and time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(train_status(d), 202)

    def test_default_budget_from_memory(self):
        with Daemon() as d:  # jobs.memory_budget = 0: derived from the machine
            prepare(d)
            r = train(d, 8)
            self.assertEqual(r.status, 202, r)
            self.assertEqual(wait_job(d, r.json()["id"])["state"], "succeeded")

    def test_attack_healthz(self):
        with Daemon(config_text=BUDGET) as d:
            prepare(d)
            big = ("POST", "/v1/jobs", b'{"type":"train","params":{"dimensions":1024}}', JSON)
            bad = ("POST", "/v1/jobs", b'{"type":"train","params":{"dimensions":"x"}}', JSON)
            ra.healthz_rounds(self, "oversized train jobs", d.port, [bad], [big],
                              check=lambda run: self.assertEqual(set(run.answers), {422}),
                              requests=100, seconds=4)
            self.assertEqual(d.json("GET", "/v1/jobs?type=train")["jobs"], [])

    def test_two_unclean_stops_fail_the_job(self):
        d = Daemon(env=SLOW, keep_state=True)
        d.start()
        try:
            prepare(d)
            job = train(d, 8).json()["id"]
            for kill in (1, 2):  # as two OOM kills of the daemon during the job would
                # kill only once the start is durable (the writer stores the
                # "running" record a moment after the job starts)
                deadline = time.time() + 60
                while stored_state(d, job) != ("running", kill):
                    self.assertLess(time.time(), deadline, "job %s never stored as running "
                                    "(attempt %d)" % (job, kill))
                    time.sleep(0.05)
                d.kill9()
                d.start()
            d.env = None
            j = d.json("GET", "/v1/jobs/" + job)
            self.assertEqual(j["state"], "failed", j)
            self.assertEqual(j["attempts"], 2)
            self.assertIn("jobs.memory_budget", j["error"]["detail"])
            self.assertIn("not retried", j["error"]["detail"])
            self.assertIn("failed: interrupted", d.log_text())
        finally:
            d.stop()
            import shutil
            shutil.rmtree(d.state_dir, ignore_errors=True)


def stored_state(d, job):
    """(state, attempts) of the job as stored in the database (read-only,
    beside the running daemon: WAL mode lets readers in)."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(d.state_dir, "itemvec.db"), uri=True)
    try:
        row = db.execute("SELECT state, attempts FROM jobs WHERE id = ?", (job,)).fetchone()
    finally:
        db.close()
    return tuple(row) if row else None


def train_status(d):
    return train(d, 1024).status


if __name__ == "__main__":
    run(globals())
