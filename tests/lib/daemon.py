"""Black-box test harness: starts the real itemvecd on a free loopback port
with a temporary state dir, talks HTTP to it like curl would, and stops or
kills it. Used by tests/api/test_*.py (run by ctest with env ITEMVECD set to
the built binary).

    with Daemon() as d:
        st, hdrs, body = d.request("GET", "/v1/info")
        info = d.json("GET", "/v1/info")
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:300])


class Daemon:
    def __init__(self, state_dir=None, config_text=None, args=(), env=None, keep_state=False,
                 listen_host="127.0.0.1"):
        self.binary = os.environ.get("ITEMVECD")
        if not self.binary:
            raise RuntimeError("ITEMVECD is not set (run through ctest)")
        self.own_state = state_dir is None
        self.state_dir = state_dir or tempfile.mkdtemp(prefix="itemvec-test-")
        self.keep_state = keep_state
        self.config_text = config_text
        self.args = list(args)
        self.env = env
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.state_dir, "daemon.log")
        # where it binds; requests always go to 127.0.0.1 (hostile tests bind
        # 0.0.0.0 to exercise the non-loopback rules without leaving the host)
        self.listen_host = listen_host

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        if self.own_state and not self.keep_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def start(self, wait=True):
        self.port = free_port()
        cmd = [self.binary, "--listen", "%s:%d" % (self.listen_host, self.port),
               "--state-dir", self.state_dir]
        conf = os.path.join(self.state_dir, "test.conf")
        with open(conf, "w") as f:
            f.write(self.config_text or "")
        cmd += ["--config", conf] + self.args
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        if self.env:
            env.update(self.env)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("itemvecd exited with %s:\n%s" % (self.proc.returncode, self.log_text()))
            try:
                r = self.request("GET", "/readyz", timeout=2)
                if r.status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("itemvecd not ready after %ss:\n%s" % (timeout, self.log_text()))

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-5000:]
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None, timeout=120):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            elif isinstance(body, str):
                body = body.encode()
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, r.getheaders(), data)
        finally:
            conn.close()

    def json(self, method, path, body=None, headers=None, expect=200):
        r = self.request(method, path, body, headers)
        if expect is not None and r.status != expect:
            raise AssertionError("%s %s: expected %d, got %r" % (method, path, expect, r))
        return r.json() if r.body else None

    def upload(self, data, content_type="text/tab-separated-values", gzip=False, headers=None):
        hdrs = {"Content-Type": content_type}
        if gzip:
            import gzip as gz
            data = gz.compress(data)
            hdrs["Content-Encoding"] = "gzip"
        hdrs.update(headers or {})
        return self.request("POST", "/v1/playlists", data, hdrs)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if not self.proc or self.proc.poll() is not None:
            rc = self.proc.returncode if self.proc else None
            self._close_log()
            return rc
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError("itemvecd did not stop within %ss" % timeout)
        finally:
            self._close_log()
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self._close_log()

    def _close_log(self):
        if getattr(self, "log", None):
            self.log.close()
            self.log = None


def run(module_globals):
    """Runs the TestCase classes of a test module, prints "N passed, M
    failed, K skipped" and exits 0 only when nothing failed. An unexpected
    success (a known bug marked @expectedFailure that got fixed) counts as a
    failure, so the marker gets dropped."""
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for obj in list(module_globals.values()):
        if isinstance(obj, type) and issubclass(obj, unittest.TestCase):
            suite.addTests(loader.loadTestsFromTestCase(obj))
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    fixed = len(result.unexpectedSuccesses)
    failed = len(result.failures) + len(result.errors) + fixed
    skipped = len(result.skipped)
    passed = max(0, result.testsRun - failed - skipped)
    if fixed:
        print("%d known bug(s) now fixed: remove @unittest.expectedFailure" % fixed)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(0 if failed == 0 else 1)
