"""Backups (issue 12, finding 10): a client with a read-write token must not
be able to fill the disk with backups, and no reply may show where the
state lives or what SQLite said.

- backup.keep = 2 and four backups: two directories remain, the newest;
  the replies name them relative to the state dir;
- a backup that cannot create its directory answers 500 without an
  absolute path;
- a backup whose database copy fails in SQLite answers 500 without
  SQLite's message (it is in the log, under the request id).

Bounded: 3 daemons, ~10 requests."""
import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402

ROWS = b"playlist_id\titem_id\ttitle\tartist\n" + b"".join(
    b"b%d\t%d\tt\ta\n" % (i % 20, 1 + i % 50) for i in range(500))


class Backups(unittest.TestCase):
    def assert_no_internal_text(self, body, state_dir):
        text = body.decode("utf-8", "replace")
        self.assertNotIn(state_dir, text)
        self.assertNotIn(os.path.realpath(state_dir), text)
        self.assertIsNone(re.search(r'(?<![\w.])/(tmp|var|home|root|etc|run|srv)/', text),
                          "an absolute path in %r" % text)
        for sqlite_says in ("not a database", "SQLITE", "no such table", "malformed",
                            "unable to open", "disk I/O"):
            self.assertNotIn(sqlite_says, text)

    def test_retention_and_relative_names(self):
        with Daemon(config_text="[backup]\nkeep = 2\n") as d:
            self.assertEqual(d.upload(ROWS).status, 200)
            names = []
            for _ in range(4):
                r = d.request("POST", "/v1/admin/backup")
                self.assertEqual(r.status, 200, r)
                self.assert_no_internal_text(r.body, d.state_dir)
                rel = r.json()["path"]
                self.assertTrue(rel.startswith("backups/"), rel)
                names.append(rel.split("/", 1)[1])
            kept = sorted(os.listdir(os.path.join(d.state_dir, "backups")))
            self.assertEqual(kept, sorted(names[-2:]))
            self.assertIn("backup.keep", d.log_text())

    def test_failed_backup_directory_names_no_path(self):
        state = tempfile.mkdtemp(prefix="itemvec-bk-")
        with open(os.path.join(state, "backups"), "w") as f:
            f.write("not a directory\n")
        try:
            with Daemon(state_dir=state) as d:
                r = d.request("POST", "/v1/admin/backup")
                self.assertEqual(r.status, 500, r)
                self.assert_no_internal_text(r.body, state)
        finally:
            shutil.rmtree(state, ignore_errors=True)

    def test_sqlite_failure_text_stays_in_the_log(self):
        with Daemon() as d:
            self.assertEqual(d.upload(ROWS).status, 200)
            # the daemon keeps its open database (and WAL); a new connection
            # (the backup's) finds a file that is not a database, and no WAL
            db = os.path.join(d.state_dir, "itemvec.db")
            junk = db + ".junk"
            with open(junk, "wb") as f:
                f.write(b"this is not an SQLite database" * 200)
            os.rename(junk, db)
            for ext in ("-wal", "-shm"):
                if os.path.exists(db + ext):
                    os.unlink(db + ext)
            r = d.request("POST", "/v1/admin/backup")
            self.assertEqual(r.status, 500, r)
            self.assert_no_internal_text(r.body, d.state_dir)
            rid = r.header("X-Request-Id")
            self.assertIn(rid, r.body.decode())
            self.assertIn(rid, d.log_text())
            self.assertEqual(d.request("GET", "/v1/info").status, 200)


if __name__ == "__main__":
    run(globals())
