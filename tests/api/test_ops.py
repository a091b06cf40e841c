"""Operations (issue 7): sd_notify messages on a test NOTIFY_SOCKET
(READY=1 with STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1 in order),
bearer-token auth (read-write, read-only, token file, reload on SIGHUP,
tokens never logged), and the Prometheus /metrics exposition."""
import os
import re
import signal
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402


class Notify(unittest.TestCase):
    def test_notify_sequence(self):
        tmp = tempfile.mkdtemp(prefix="itemvec-notify-")
        path = os.path.join(tmp, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(10)
        msgs = []

        def recv_until(pred, timeout=10):
            deadline = time.time() + timeout
            while time.time() < deadline:
                try:
                    m = sock.recv(4096).decode()
                except socket.timeout:
                    break
                msgs.append(m)
                if pred(m):
                    return m
            raise AssertionError("no matching notify message; got %r" % msgs)

        d = Daemon(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
        try:
            d.start()
            ready = recv_until(lambda m: "READY=1" in m)
            self.assertIn("STATUS=", ready)
            recv_until(lambda m: "WATCHDOG=1" in m)
            d.proc.send_signal(signal.SIGHUP)
            recv_until(lambda m: "RELOADING=1" in m)
            recv_until(lambda m: "READY=1" in m)
            self.assertEqual(d.stop(), 0)
            recv_until(lambda m: "STOPPING=1" in m)
            order = [i for i, m in enumerate(msgs) if "READY=1" in m or "STOPPING=1" in m]
            self.assertTrue("READY=1" in msgs[order[0]] and "STOPPING=1" in msgs[order[-1]])
        finally:
            d.stop()
            sock.close()
            os.unlink(path)
            os.rmdir(tmp)


class Auth(unittest.TestCase):
    def test_tokens(self):
        conf = "[auth]\ntokens = rw-secret-1, rw-secret-2\nread_tokens = ro-secret\n"
        with Daemon(config_text=conf) as d:
            body = b"playlist_id\titem_id\np\t1\n"
            r = d.upload(body)
            self.assertEqual(r.status, 401)
            self.assertTrue(r.header("WWW-Authenticate").startswith("Bearer"))
            self.assertEqual(r.header("Content-Type"), "application/problem+json")
            bad = {"Authorization": "Bearer rw-secret-"}
            self.assertEqual(d.upload(body, headers=bad).status, 401)
            ro = {"Authorization": "Bearer ro-secret"}
            self.assertEqual(d.upload(body, headers=ro).status, 403)
            self.assertEqual(d.request("GET", "/v1/info", headers=ro).status, 200)
            rw = {"Authorization": "Bearer rw-secret-2"}
            self.assertEqual(d.upload(body, headers=rw).status, 200)
            self.assertEqual(d.request("GET", "/v1/info").status, 401)
            self.assertEqual(d.request("GET", "/healthz").status, 200)
            self.assertEqual(d.request("GET", "/readyz").status, 200)
            self.assertEqual(d.request("GET", "/metrics").status, 200)
            log = d.log_text()
            for secret in ("rw-secret-1", "rw-secret-2", "ro-secret"):
                self.assertNotIn(secret, log)

    def test_token_file_and_reload(self):
        with Daemon() as probe:
            state = probe.state_dir
        tmp = tempfile.mkdtemp(prefix="itemvec-tok-")
        tf = os.path.join(tmp, "tokens")
        with open(tf, "w") as f:
            f.write("# comment\ntok-a\nro:tok-b\n")
        conf = "[auth]\ntoken_file = %s\nmetrics_open = false\n" % tf
        with Daemon(config_text=conf) as d:
            a = {"Authorization": "Bearer tok-a"}
            b = {"Authorization": "Bearer tok-b"}
            self.assertEqual(d.request("GET", "/metrics").status, 401)
            self.assertEqual(d.request("GET", "/metrics", headers=b).status, 200)
            self.assertEqual(d.request("DELETE", "/v1/playlists/x", headers=b).status, 403)
            self.assertEqual(d.request("DELETE", "/v1/playlists/x", headers=a).status, 404)
            with open(tf, "w") as f:
                f.write("tok-c\n")
            d.proc.send_signal(signal.SIGHUP)
            c = {"Authorization": "Bearer tok-c"}
            deadline = time.time() + 10
            while time.time() < deadline and d.request("GET", "/v1/info", headers=c).status != 200:
                time.sleep(0.05)
            self.assertEqual(d.request("GET", "/v1/info", headers=c).status, 200)
            self.assertEqual(d.request("GET", "/v1/info", headers=a).status, 401)
        os.unlink(tf)
        os.rmdir(tmp)
        self.assertFalse(os.path.exists(state))


class Metrics(unittest.TestCase):
    def test_exposition(self):
        with Daemon() as d:
            d.request("GET", "/v1/info")
            d.request("GET", "/v1/playlists/nope")
            d.request("GET", "/no/such/route")
            d.upload(b"playlist_id\titem_id\np\t1\np\t2\n")
            r = d.request("GET", "/metrics")
            self.assertEqual(r.status, 200)
            self.assertTrue(r.header("Content-Type").startswith("text/plain; version=0.0.4"))
            text = r.body.decode()
            for line in text.splitlines():
                if line and not line.startswith("#"):
                    self.assertRegex(line, r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-z_]+="[^"]*",?)*\})? ([-+0-9.eE]+|NaN)$')
            self.assertIn('itemvecd_http_requests_total{route="/v1/info",method="GET",code="200"} 1', text)
            self.assertIn('itemvecd_http_requests_total{route="/v1/playlists/{id}",method="GET",code="404"} 1', text)
            self.assertIn('route="unmatched",method="GET",code="404"', text)
            self.assertIn('itemvecd_http_request_duration_seconds_bucket{route="/v1/info",le="+Inf"} 1', text)
            self.assertIn('itemvecd_jobs{type="pmi",state="succeeded"} 0', text)
            self.assertIn("itemvecd_memberships 2", text)
            self.assertIn("itemvecd_playlists 1", text)
            self.assertIn("itemvecd_items 2", text)
            self.assertIn("itemvecd_active_model_items 0", text)
            self.assertIn("itemvecd_build_info{", text)
            self.assertIn("itemvecd_training_loss", text)
            self.assertRegex(text, r"process_resident_memory_bytes [1-9]")
            self.assertNotIn("nope", text)  # raw ids never become labels


class Backup(unittest.TestCase):
    def test_online_backup_restores(self):
        import shutil
        with Daemon() as d:
            rows = b"playlist_id\titem_id\ttitle\tartist\n" + b"".join(
                b"b%d\t%d\tt\ta\n" % (i % 40, 1 + i % 97) for i in range(3000))
            self.assertEqual(d.upload(rows).status, 200)
            r = d.request("POST", "/v1/admin/backup")
            self.assertEqual(r.status, 200, r)
            rel = r.json()["path"]  # relative to the state dir: no internal paths in replies
            self.assertTrue(rel.startswith("backups/"), rel)
            path = os.path.join(d.state_dir, rel)
            counts = d.json("GET", "/v1/info")["counts"]
            self.assertEqual(d.request("GET", "/v1/admin/backup").status, 405)
            restored = tempfile.mkdtemp(prefix="itemvec-restore-")
            shutil.copytree(path, restored, dirs_exist_ok=True)
        with Daemon(state_dir=restored) as r2:
            self.assertEqual(r2.json("GET", "/v1/info")["counts"], counts)
            self.assertEqual(len(r2.json("GET", "/v1/playlists/b1")["items"]), 75)
        shutil.rmtree(restored, ignore_errors=True)


if __name__ == "__main__":
    run(globals())
