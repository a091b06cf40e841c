"""Private state and stale temp files (issue 12, finding 11).

- started with a permissive umask (022, as outside systemd), every file and
  directory itemvecd creates (database, WAL, PMI and model files,
  backups) has no group/other permission bits;
- temp files ".<name>.tmp.<pid>.<n>" left by a writer killed mid-write are
  removed at start and each removal is logged; those of a live process,
  and other dot files, are left alone.

Bounded: 1 daemon, a small PMI and training job, ~10 requests."""
import os
import stat
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402
from pipeline import run_job  # noqa: E402

ROWS = b"playlist_id\titem_id\ttitle\tartist\n" + b"".join(
    b"p%d\t%d\tt%d\ta\n" % (i % 60, 1 + (i * 7) % 40, 1 + (i * 7) % 40) for i in range(1200))


def dead_pid():
    """A pid that no process has (for a temp file whose writer is gone)."""
    for pid in range(4000000, 3000000, -7919):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            continue
    raise RuntimeError("no free pid found")


class PrivateFiles(unittest.TestCase):
    def test_umask_and_stale_temp_cleanup(self):
        state = tempfile.mkdtemp(prefix="itemvec-priv-")
        dead = dead_pid()
        for sub in ("pmi", "models"):
            os.makedirs(os.path.join(state, sub))
        stale = [os.path.join(state, "models", ".m1.emb.tmp.%d.0" % dead),
                 os.path.join(state, "pmi", ".j1.cooc.tmp.%d.3" % dead),
                 os.path.join(state, ".x.tmp.%d.1" % dead)]
        kept = [os.path.join(state, "models", ".m2.emb.tmp.%d.0" % os.getpid()),  # alive: us
                os.path.join(state, "models", ".keepme"),
                os.path.join(state, "pmi", "notes.tmp.%d.0" % dead)]  # not a dot file
        for p in stale + kept:
            with open(p, "wb") as f:
                f.write(b"partial")
        old_umask = os.umask(0o022)
        try:
            with Daemon(state_dir=state) as d:
                log = d.log_text()
                for p in stale:
                    self.assertFalse(os.path.exists(p), "stale temp file kept: %s" % p)
                    self.assertIn(os.path.basename(p), log)
                for p in kept:
                    self.assertTrue(os.path.exists(p), "removed a file that is not stale: %s" % p)
                self.assertEqual(d.upload(ROWS).status, 200)
                run_job(d, "pmi", {"min_item_frequency": 2})
                run_job(d, "train", {"dimensions": 4, "max_iterations": 2})
                self.assertEqual(d.request("POST", "/v1/admin/backup").status, 200)
                # what the test made itself (and backup hard links to it)
                ours = {os.path.join(state, n) for n in ("test.conf", "daemon.log", "pmi",
                                                           "models")} | set(kept)
                our_inodes = {os.lstat(p).st_ino for p in ours}
                loose = []
                n_checked = 0
                for root, dirs, files in os.walk(state):
                    for name in dirs + files:
                        p = os.path.join(root, name)
                        if p in ours or os.lstat(p).st_ino in our_inodes:
                            continue
                        n_checked += 1
                        mode = stat.S_IMODE(os.lstat(p).st_mode)
                        if mode & 0o077:
                            loose.append("%s %o" % (os.path.relpath(p, state), mode))
                print("%d files and directories checked" % n_checked)
                self.assertGreaterEqual(n_checked, 6)
                self.assertEqual(loose, [], "readable by group/others")
        finally:
            os.umask(old_umask)
            import shutil
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    run(globals())
