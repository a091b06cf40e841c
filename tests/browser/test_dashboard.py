"""The dashboard in a real browser (issue 16): Debian's headless chromium,
driven over the DevTools protocol (tests/lib/cdp.py), against an itemvecd
started with tokens, data (the Yes.com playlists of ../shared/data when
present, else planted synthetic ones), a model and an evaluate job. It
asserts on what a person sees:
- no token: the token dialog; a wrong token: a clear "refused" message;
- the overview's counts and active model, its metrics charts filling in;
- keyboard: Tab to "Jobs", Enter opens it and focus lands on its heading;
- the train job's loss chart has as many points as iterations (and the
  model page's too); the evaluate charts highlight the API's best method;
- a read-only token may look but an action answers with the 403 problem;
- search finds an item by a title prefix (case-insensitive); Enter on the
  result opens the item page, whose four neighbour lists are the API's and
  whose co-occurrence table is the API's; it fits a phone's width;
- playlist continuation (a read-only token may) lists the API's answer;
- a bad upload shows the API's line and column (and the line itself), a
  good one its counts;
- no JavaScript exception and no Content-Security-Policy violation.
Screenshots of each page go to <build>/browser/ (ITEMVEC_UPDATE_SCREENSHOTS=1
also copies them to docs/img/). Exit 77 (skip) when chromium cannot start,
except with CI=true, where that is a failure."""
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cdp import Browser, BrowserError  # noqa: E402
from daemon import Daemon, run  # noqa: E402

SRC = os.environ.get("ITEMVEC_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("ITEMVEC_BUILD", tempfile.gettempdir())
SHOTS = os.path.join(BUILD, "browser")
RW, RO = "rw-dashboard-token", "ro-dashboard-token"
CONF = "[auth]\ntokens = %s\nread_tokens = %s\n" % (RW, RO)


def skip_or_fail(why):
    if os.environ.get("CI") == "true":
        print("FAIL: the browser test must run in CI: %s" % why)
        sys.exit(1)
    print("SKIP: %s" % why)
    sys.exit(77)


def dataset_tsv():
    """(name, TSV bytes): yes_small when ../shared/data has it, else
    planted clusters with made-up titles."""
    try:
        import itemvec_data as D
        if os.path.isdir(os.path.join(D.data_dir(), "yes_small")):
            ds = D.load_yes("yes_small")
            return "yes_small", D.to_tsv(ds.rows())
    except Exception as e:  # a broken data dir: fall back, but say so
        print("note: yes_small not usable (%s); using synthetic data" % e)
    rnd = random.Random(5)
    words = ["Blue", "Night", "River", "Gold", "Echo", "Paper", "Storm", "Velvet", "Neon", "Stone"]
    lines = ["playlist_id\titem_id\ttitle\tartist"]
    for g in range(3000):
        c = g % 6
        items = {1 + c * 40 + rnd.randrange(40) if rnd.random() < 0.85 else 1 + rnd.randrange(240)
                 for _ in range(rnd.randint(3, 12))}
        for i in sorted(items):
            title = "%s %s %d" % (words[i % 10], words[(i // 10) % 10], i)
            lines.append("g%d\t%d\t%s\tBand %d" % (g, i, title, (i - 1) // 40))
    return "synthetic", ("\n".join(lines) + "\n").encode()


class Dashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = Browser.unavailable()
        if why:
            skip_or_fail(why)
        os.makedirs(SHOTS, exist_ok=True)
        cls.d = Daemon(config_text=CONF).__enter__()
        name, tsv = dataset_tsv()
        print("data: %s" % name)
        assert cls.api("POST", "/v1/playlists", tsv, ctype="text/tab-separated-values").status == 200
        cls.pmi = cls.run_job("pmi", {"min_item_frequency": 15 if name == "yes_small" else 5})
        cls.train = cls.run_job("train", {"dimensions": 16, "max_iterations": 6,
                                          "early_stop": False, "seed": 3})
        cls.evaluate = cls.run_job("evaluate", {
            "k": [1, 5, 10, 20], "dimensions": 16, "max_iterations": 4,
            "methods": ["embedding", "cooc", "pmi", "popularity", "embedding_dot"]})
        cls.model = cls.train["result"]["model"]
        try:
            cls.b = Browser(width=1280, height=900).__enter__()
        except (BrowserError, OSError) as e:
            cls.d.__exit__(None, None, None)
            skip_or_fail("chromium cannot start: %s" % e)
        cls.base = "http://127.0.0.1:%d/ui/" % cls.d.port

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "b", None):
            cls.b.__exit__(None, None, None)
        cls.d.__exit__(None, None, None)

    # ---- helpers ----

    @classmethod
    def api(cls, method, path, body=None, token=RW, ctype=None):
        hdrs = {"Authorization": "Bearer " + token}
        if ctype:
            hdrs["Content-Type"] = ctype
        return cls.d.request(method, path, body, hdrs)

    @classmethod
    def get(cls, path):
        r = cls.api("GET", path, token=RO)
        assert r.status == 200, (path, r)
        return r.json()

    @classmethod
    def run_job(cls, type_, params):
        r = cls.api("POST", "/v1/jobs", {"type": type_, "params": params})
        assert r.status == 202, r
        job_id = r.json()["id"]
        deadline = time.time() + 300
        while time.time() < deadline:
            j = cls.get("/v1/jobs/" + job_id)
            if j["state"] in ("succeeded", "failed", "cancelled"):
                assert j["state"] == "succeeded", j
                return j
            time.sleep(0.1)
        raise AssertionError("job %s did not finish" % job_id)

    def go(self, hash_):
        self.b.eval("location.hash = %s" % json.dumps(hash_))

    def text(self, selector):
        return self.b.eval("(document.querySelector(%s) || {}).textContent || ''" % json.dumps(selector))

    def count(self, selector):
        return self.b.eval("document.querySelectorAll(%s).length" % json.dumps(selector))

    def shot(self, name, full_page=True):
        path = self.b.screenshot(os.path.join(SHOTS, name + ".png"), full_page=full_page)
        if os.environ.get("ITEMVEC_UPDATE_SCREENSHOTS") == "1":
            os.makedirs(os.path.join(SRC, "docs", "img"), exist_ok=True)
            shutil.copy(path, os.path.join(SRC, "docs", "img", name + ".png"))

    def traffic(self, stop):
        ids = [it["id"] for it in self.get("/v1/items?page_size=200")["items"]]
        rnd = random.Random(1)
        t0 = time.time()
        while not stop.is_set():
            rate = 5 + 20 * abs(((time.time() - t0) / 20) % 2 - 1)  # a triangle wave
            self.api("GET", "/v1/items/%s/similar?k=10" % rnd.choice(ids), token=RO)
            time.sleep(1 / rate)

    def enter_token(self, token):
        self.b.wait("document.getElementById('token-dialog').open", what="the token dialog")
        self.b.focus("#token-input")
        self.b.type(token)
        self.b.key("Enter")

    # ---- the steps, in order ----

    def test_01_token(self):
        b = self.b
        b.navigate(self.base)
        b.wait("document.getElementById('token-dialog').open", what="the token dialog")
        self.assertIn("requires an API token", self.text("#token-message"))
        self.enter_token("wrong-token")
        msg = b.wait("document.getElementById('token-dialog').open && "
                     "document.getElementById('token-message').textContent.includes('refused') && "
                     "document.getElementById('token-message').textContent",
                     what="the refused-token message")
        self.assertIn("The token was refused", msg)
        self.assertIn("not valid", msg)
        self.assertIn("401", msg)
        b.wait("document.querySelector('main .problem')", what="the 401 problem on the page")
        self.assertIn("Unauthorized", self.text("main .problem .problem-title"))
        self.shot("token")
        b.eval("document.getElementById('token-input').value = ''")
        self.enter_token(RO)

    def test_02_overview(self):
        b = self.b
        counts = self.get("/v1/info")["counts"]
        b.wait("document.querySelector('.stat-value') && "
               "!document.getElementById('token-dialog').open", what="the counts")
        values = b.eval("[...document.querySelectorAll('.stat-value')].map(e => e.textContent)")
        self.assertEqual(values, ["{:,}".format(counts["playlists"]), "{:,}".format(counts["items"]),
                                  "{:,}".format(counts["memberships"])])
        self.assertIn(self.model, self.text("main .card:nth-child(2)"))
        self.assertIn("BLAS", self.text("main"))
        # three metrics samples make two requests/s points
        points = 2
        stop = threading.Event()
        if os.environ.get("ITEMVEC_UPDATE_SCREENSHOTS") == "1":
            # the docs' picture: a minute of samples under some varying traffic
            points = 25
            threading.Thread(target=self.traffic, args=(stop,), daemon=True).start()
        try:
            b.wait("+(document.querySelector('.spark svg') || {getAttribute: () => 0})"
                   ".getAttribute('data-points') >= %d" % points, timeout=30 + 3 * points,
                   what="the metrics charts")
        finally:
            stop.set()
        self.assertEqual(self.count(".spark svg"), 3)
        self.shot("overview")

    def test_03_keyboard_to_jobs(self):
        b = self.b
        # focus is on the overview's heading; the navigation is before it
        self.assertEqual(b.eval("document.activeElement.tagName"), "H1")
        for _ in range(12):
            b.key("Tab", shift=True)
            if b.eval("document.activeElement.textContent.trim()") == "Jobs":
                break
        self.assertEqual(b.eval("document.activeElement.getAttribute('href')"), "#/jobs")
        b.key("Enter")
        b.wait("location.hash === '#/jobs' && document.activeElement.tagName === 'H1'",
               what="the jobs page with focus on its heading")
        self.assertEqual(b.eval("document.activeElement.textContent"), "Jobs")
        b.wait("document.querySelectorAll('main table tbody tr').length === 3", what="3 jobs")
        self.assertEqual(b.eval("document.querySelector('[aria-current=page]').textContent"), "Jobs")
        self.shot("jobs")

    def test_04_train_loss_chart(self):
        b = self.b
        loss = self.train["result"]["loss"]
        self.assertEqual(len(loss), self.train["result"]["iterations"])
        self.go("#/jobs/" + self.train["id"])
        b.wait("document.querySelector('.loss-chart svg')", what="the loss chart")
        self.assertEqual(self.count(".loss-chart circle.pt"), len(loss))
        self.assertEqual(b.eval("+document.querySelector('.loss-chart svg').getAttribute('data-points')"),
                         len(loss))
        self.assertIn(self.model, self.text("main"))
        self.shot("job-train")

    def test_05_evaluate_charts(self):
        b = self.b
        res = self.evaluate["result"]
        kmax = max(res["k"])
        self.go("#/jobs/" + self.evaluate["id"])
        b.wait("document.querySelectorAll('.eval-chart').length === 3", what="3 evaluate charts")
        for metric in ("recall", "hit", "coverage"):
            best = max(res["methods"], key=lambda m: res["methods"][m]["%s@%d" % (metric, kmax)])
            sel = ".eval-chart[data-metric=%s]" % metric
            shown = b.eval("document.querySelector('%s .series.best').dataset.series" % sel)
            self.assertEqual(shown, best, metric)
            self.assertEqual(self.count(sel + " .series"), len(res["methods"]))
            self.assertEqual(self.count(sel + " circle.pt"), len(res["methods"]) * len(res["k"]))
        self.assertGreaterEqual(self.count(".eval-table td.best"), 3 * len(res["k"]))
        self.shot("job-evaluate")

    def test_06_model_page(self):
        b = self.b
        model = self.get("/v1/models/" + self.model)
        self.go("#/models")
        b.wait("document.querySelector('main table') && document.querySelector('main table')"
               ".textContent.includes(%s)" % json.dumps(self.model), what="the models table")
        self.assertIn("active", self.text("main table"))
        self.go("#/models/" + self.model)
        b.wait("document.querySelector('.loss-chart svg')", what="the model's loss chart")
        self.assertEqual(self.count(".loss-chart circle.pt"), len(model["loss"]))
        self.assertIn("Precomputed lists", self.text("main"))
        self.shot("model")

    def test_07_read_only_token_cannot_act(self):
        b = self.b
        self.go("#/jobs")
        b.wait("document.querySelector('#job-type') && "
               "document.querySelectorAll('main table tbody tr').length === 3",
               what="the start-job form below the jobs")
        b.click("form.stack button[type=submit]")
        msg = b.wait("(document.querySelector('form.stack .problem') || {}).textContent",
                     what="the 403 problem")
        self.assertIn("Forbidden", msg)
        self.assertIn("403", msg)
        self.assertIn("read-write token", msg)

    def test_08_search_by_title_prefix(self):
        b = self.b
        target = self.get("/v1/pmi/pairs?limit=1")["pairs"][0]["item1"]
        title = self.get("/v1/items/" + urllib.parse.quote(target, safe=""))["title"]
        prefix, page = None, None
        for n in range(3, len(title) + 1):
            q = title[:n].lower()
            page = self.get("/v1/items?page_size=25&q=" + urllib.parse.quote(q))
            if any(it["id"] == target for it in page["items"]):
                prefix = q
                break
        self.assertIsNotNone(prefix, "no prefix of %r finds it on the first page" % title)
        type(self).target = target
        self.go("#/explore")
        b.wait("document.activeElement && document.activeElement.id === 'search'",
               what="focus in the search field")
        b.type(prefix)
        link = "a[href=%s]" % json.dumps("#/items/" + urllib.parse.quote(target, safe=""))
        b.wait("document.querySelector(%s)" % json.dumps("#results " + link), timeout=20,
               what="the item in the results")
        shown = b.eval("[...document.querySelectorAll('#results tbody tr td:first-child')]"
                       ".map(e => e.textContent)")
        self.assertEqual(shown, [it["id"] for it in page["items"]])
        self.shot("explore")
        type(self).link = link

    def test_09_item_page_matches_api(self):
        b = self.b
        target = self.target
        b.focus("#results " + self.link)
        b.key("Enter")
        b.wait("location.hash.startsWith('#/items/')", what="the item page")
        q = "/v1/items/%s/similar?k=10" % urllib.parse.quote(target, safe="")
        for source, extra in (("embedding", ""), ("dot", "&metric=dot"), ("cooc", "&source=cooc"),
                              ("pmi", "&source=pmi")):
            want = [n["id"] for n in self.get(q + extra)["neighbors"]]
            self.assertEqual(len(want), 10)
            sel = "section[data-source=%s] ol li" % source
            b.wait("document.querySelectorAll(%s).length > 0" % json.dumps(sel), what=source)
            got = b.eval("[...document.querySelectorAll(%s)].map(e => e.dataset.id)" % json.dumps(sel))
            self.assertEqual(got, want, source)
        pairs = self.get("/v1/items/%s/cooccurrences?k=10" % urllib.parse.quote(target, safe=""))["pairs"]
        b.wait("document.querySelectorAll('main .card.wide table tbody tr').length > 0",
               what="the co-occurrence table")
        got = b.eval("[...document.querySelectorAll('main .card.wide table tbody tr td:first-child')]"
                     ".map(e => e.textContent)")
        self.assertEqual(got, [p["item2"] for p in pairs])
        self.shot("item")
        b.viewport(390, 844, mobile=True, scale=2)
        b.pump(0.5)
        width = b.eval("document.documentElement.scrollWidth")
        self.assertLessEqual(width, 392, "the item page is wider than a phone")
        self.shot("item-phone", full_page=False)
        b.viewport(1280, 900)

    def test_10_playlist_continuation(self):
        b = self.b
        # a query sent as a POST: a read-only token may continue a playlist
        self.assertEqual(b.eval("document.getElementById('playlist-items').value"), self.target)
        b.click("form.stack button.primary")
        b.wait("document.querySelectorAll('#recommend-out li').length > 0", what="recommendations")
        got = b.eval("[...document.querySelectorAll('#recommend-out li')].map(e => e.dataset.id)")
        r = self.api("POST", "/v1/recommend", {"items": [self.target], "k": 10}, token=RO)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(got, [n["id"] for n in r.json()["neighbors"]])
        # the Token button: change to the read-write token for the upload
        b.click("#token-button")
        self.enter_token(RW)
        b.wait("!document.getElementById('token-dialog').open && "
               "document.querySelector('#playlist-items') && "
               "document.querySelectorAll('section[data-source] ol').length === 4",
               what="the item page again, loaded")
        self.assertEqual(b.eval("document.getElementById('token-button').textContent"), "Token ✓")

    def test_11_upload(self):
        b = self.b
        bad = b"playlist_id\titem_id\ttitle\tartist\nu1\t901\tNew A\tX\nu1\t902\tNew B\n"
        r = self.api("POST", "/v1/playlists", bad, ctype="text/tab-separated-values")
        self.assertEqual(r.status, 400)
        line, column = r.json()["line"], r.json()["column"]
        tmp = tempfile.mkdtemp(prefix="itemvec-upload-")
        try:
            path = os.path.join(tmp, "bad.tsv")
            with open(path, "wb") as f:
                f.write(bad)
            self.go("#/upload")
            b.wait("document.querySelector('#dropzone')", what="the upload page")
            b.set_file("#file", path)
            b.wait("document.querySelector('#upload-out .problem .line')", what="the parse error")
            self.assertEqual(self.text("#upload-out .problem .line"), str(line))
            self.assertEqual(self.text("#upload-out .problem .column"), str(column))
            self.assertIn("nothing was stored", self.text("#upload-out .problem"))
            b.wait("document.querySelector('#upload-out .source-line')", what="the quoted line")
            self.assertIn("u1\t902\tNew B", self.text("#upload-out .source-line pre"))
            self.shot("upload")
            before = self.get("/v1/info")["counts"]["memberships"]
            good = os.path.join(tmp, "good.tsv")
            with open(good, "wb") as f:
                f.write(b"playlist_id\titem_id\ttitle\tartist\nu1\t901\tNew A\tX\nu1\t902\tNew B\tY\n")
            b.set_file("#file", good)
            b.wait("(document.querySelector('#upload-out .ok') || {}).textContent", what="the counts")
            self.assertIn("Stored", self.text("#upload-out .ok"))
            rows = b.eval("[...document.querySelectorAll('#upload-out dd')].map(e => e.textContent)")
            self.assertEqual(rows[:3], ["1", "2", "2"])  # playlists, received, stored
            self.assertEqual(self.get("/v1/info")["counts"]["memberships"], before + 2)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_12_no_script_errors(self):
        self.b.pump(0.3)
        self.assertEqual(self.b.exceptions, [])
        csp = [c for c in self.b.console if "Content Security Policy" in (c[2] or "")
               or "Refused to" in (c[2] or "")]
        self.assertEqual(csp, [])
        errors = [c for c in self.b.console if c[0] == "error" and c[1] not in ("network",)]
        self.assertEqual(errors, [])


if __name__ == "__main__":
    run(globals())
