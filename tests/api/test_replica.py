"""Read replicas (issue 14): a primary and two replicas on loopback ports.
A model on the primary (bench/gen_model, served from an ANN index)
propagates to both replicas with its index (read, not rebuilt) and the
same answers; writes to a replica are refused with 403 naming the primary;
with the primary killed the replicas keep serving and count failures;
the primary back on the same port with a newer model: both catch up."""
import os
import signal
import subprocess
import sys
import tempfile
import shutil
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import daemon as daemon_mod  # noqa: E402
from daemon import Daemon, run  # noqa: E402

N, DIMS = 3000, 16
CONF = "[serving]\nindex = ann\n"


def gen_model(state, seq, seed):
    tool = os.path.join(os.environ["ITEMVEC_BUILD"], "bench", "gen_model")
    subprocess.run([tool, "--state", state, "--items", str(N), "--dims", str(DIMS),
                    "--model-seq", str(seq), "--seed", str(seed)], check=True,
                   stdout=subprocess.DEVNULL)


def wait_for(pred, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("condition not met in %ss" % timeout)


def start_on(d, port):
    saved = daemon_mod.free_port
    daemon_mod.free_port = lambda: port
    try:
        d.start()
    finally:
        daemon_mod.free_port = saved


class ReplicaTest(unittest.TestCase):
    def test_replicas(self):
        pstate = tempfile.mkdtemp(prefix="itemvec-primary-")
        gen_model(pstate, 900000, 1)
        primary = Daemon(state_dir=pstate, config_text=CONF)
        primary.start()
        url = "http://127.0.0.1:%d" % primary.port
        reps = [Daemon(args=["--replica-of", url]) for _ in range(2)]
        try:
            for r in reps:
                r.start()
            want = primary.json("GET", "/v1/items/g42/similar?k=5")
            self.assertEqual(want["index"], "ann")
            for r in reps:
                info = r.json("GET", "/v1/info")
                self.assertEqual(info["replica"]["model"], "m900000")
                self.assertEqual(info["replica"]["of"], url)
                self.assertIsNotNone(info["replica"]["lag_seconds"])
                self.assertEqual(r.json("GET", "/v1/items/g42/similar?k=5"), want)
                with open(r.log_path, "rb") as f:  # whole log: log_text() is its tail
                    self.assertIn(b"ANN index read", f.read())
                # writes are refused, naming the primary
                w = r.request("POST", "/v1/jobs", {"type": "pmi"})
                self.assertEqual(w.status, 403)
                self.assertEqual(w.json()["primary"], url)
                self.assertEqual(r.request("DELETE", "/v1/playlists/x").status, 403)
                self.assertIn("itemvecd_replica_syncs_total 1", r.request("GET", "/metrics").body.decode())
            # primary gone: replicas keep serving the last model
            primary.kill9()
            for r in reps:
                wait_for(lambda: r.json("GET", "/v1/info")["replica"]["failures"] > 0)
                self.assertEqual(r.json("GET", "/v1/items/g42/similar?k=5"), want)
                self.assertEqual(r.request("GET", "/readyz").status, 200)
            # primary back with a newer model: replicas catch up
            gen_model(pstate, 900001, 2)
            start_on(primary, int(url.rsplit(":", 1)[1]))
            newer = primary.json("GET", "/v1/items/g42/similar?k=5")
            self.assertEqual(newer["model"], "m900001")
            for r in reps:
                wait_for(lambda: r.json("GET", "/v1/info")["replica"]["model"] == "m900001")
                self.assertEqual(r.json("GET", "/v1/items/g42/similar?k=5"), newer)
                files = sorted(os.listdir(os.path.join(r.state_dir, "replica")))
                self.assertTrue(all(f.startswith("m900001.") for f in files), files)
        finally:
            for r in reps:
                r.stop()
                shutil.rmtree(r.state_dir, ignore_errors=True)
            if primary.proc and primary.proc.poll() is None:
                primary.stop()
            shutil.rmtree(pstate, ignore_errors=True)

    def test_readyz_before_first_model(self):
        # a replica of a primary that is not there: up, but not ready
        port = daemon_mod.free_port()
        r = Daemon(args=["--replica-of", "http://127.0.0.1:%d" % port])
        r.start(wait=False)
        try:
            def up():
                try:
                    return r.request("GET", "/readyz", timeout=2)
                except OSError:
                    return None
            resp = wait_for(up)
            self.assertEqual(resp.status, 503)
            self.assertIn("replica", resp.json()["detail"])
        finally:
            r.stop()
            shutil.rmtree(r.state_dir, ignore_errors=True)

    def test_bad_flag(self):
        p = subprocess.run([os.environ["ITEMVECD"], "--replica-of", "ftp://x", "--state-dir",
                            tempfile.mkdtemp()], capture_output=True)
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    run(globals())
