"""Auth fails closed (issue 12, finding 1). On a non-loopback address
(0.0.0.0 on a free port; every request goes to 127.0.0.1):

- a token file holding only comments, a token list of separators, or a set
  $CREDENTIALS_DIRECTORY without tokens: itemvecd refuses to start, exit 2,
  one line naming the key; nothing listens;
- the same token file on loopback is refused too (a token file was meant);
- SIGHUP after the token file was emptied or deleted keeps the old tokens
  (401 without one, 200 with the old one) and logs the refusal loudly;
- control: a file with a token starts; /v1 and POST /v1/admin/backup need it.

Bounded: 6 daemon starts, ~20 requests."""
import os
import signal
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from attack import start_expecting_refusal, wait_port  # noqa: E402
from daemon import Daemon, free_port, run  # noqa: E402

BIN = os.environ.get("ITEMVECD")


class RefusedStart(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="itemvec-auth-")

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def refused(self, conf_text, listen_host="0.0.0.0", env=None, key="auth.token_file"):
        conf = self.write("itemvecd.conf", conf_text)
        port = free_port()
        rc, err = start_expecting_refusal(
            BIN, ["--listen", "%s:%d" % (listen_host, port), "--state-dir",
                  os.path.join(self.tmp, "state"), "--config", conf], env=env, timeout=10)
        what = "%r on %s" % (conf_text, listen_host)
        self.assertIsNotNone(rc, "%s: itemvecd started and served (fails open)" % what)
        self.assertEqual(rc, 2, "%s: exit %s, stderr %r" % (what, rc, err))
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, err)
        self.assertIn(key, lines[0])
        self.assertFalse(wait_port(port, timeout=0.3), "%s: something listens" % what)

    def test_comment_only_token_file_on_any_address(self):
        tf = self.write("tokens", "# tokens go here\n\n   \n#ro:not-a-token\n")
        self.refused("[auth]\ntoken_file = %s\n" % tf)
        self.refused("[auth]\ntoken_file = %s\n" % tf, listen_host="127.0.0.1")

    def test_separators_are_not_tokens(self):
        self.refused("[auth]\ntokens = , ,\nread_tokens = ,\n", key="server.listen")

    def test_credentials_directory_is_not_a_token(self):
        cred = os.path.join(self.tmp, "cred")
        os.mkdir(cred)
        self.refused("", env={"CREDENTIALS_DIRECTORY": cred}, key="server.listen")


class Reload(unittest.TestCase):
    def test_sighup_with_an_emptied_or_deleted_token_file_keeps_the_old_tokens(self):
        tmp = tempfile.mkdtemp(prefix="itemvec-auth-")
        tf = os.path.join(tmp, "tokens")
        with open(tf, "w") as f:
            f.write("tok-old\nro:tok-ro\n")
        conf = "[auth]\ntoken_file = %s\n" % tf
        with Daemon(config_text=conf, listen_host="0.0.0.0") as d:
            old = {"Authorization": "Bearer tok-old"}
            self.assertEqual(d.request("GET", "/v1/info").status, 401)
            self.assertEqual(d.request("POST", "/v1/admin/backup").status, 401)
            self.assertEqual(d.request("GET", "/v1/info", headers=old).status, 200)
            for how in ("emptied", "deleted"):
                if how == "emptied":
                    with open(tf, "w") as f:
                        f.write("# all tokens revoked\n")
                else:
                    os.unlink(tf)
                refusals = d.log_text().count("reload: REFUSED")
                d.proc.send_signal(signal.SIGHUP)
                deadline = time.time() + 10
                while time.time() < deadline and d.log_text().count("reload: REFUSED") == refusals \
                        and "configuration reloaded" not in d.log_text():
                    time.sleep(0.05)
                log = d.log_text()
                self.assertFalse("configuration reloaded" in log,
                                 "%s token file: the reload was applied" % how)
                self.assertGreater(log.count("reload: REFUSED"), refusals, how)
                self.assertEqual(d.request("GET", "/v1/info").status, 401, how)
                self.assertEqual(d.request("POST", "/v1/admin/backup").status, 401, how)
                self.assertEqual(d.request("GET", "/v1/info", headers=old).status, 200, how)
                self.assertIsNone(d.proc.poll())


if __name__ == "__main__":
    run(globals())
