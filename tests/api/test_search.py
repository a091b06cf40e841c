"""API tests for the item search GET /v1/items?q=PREFIX (issue 16): id,
title and artist prefixes, case-insensitive (ASCII), each item once,
pagination with page_size/page_token that walks the same list as one big
page, the empty query listing every item, the search following uploads
and renames (its table is synced by the writer before a search), and
400s for a bad token, a token from another search, an over-long q and a
bad page_size."""
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from daemon import Daemon, run  # noqa: E402

TSV = "\n".join([
    "playlist_id\titem_id\ttitle\tartist",
    "p1\tA1\tBeat It\tMichael Jackson",
    "p1\tb2\tbeatles song\tThe Beatles",
    "p1\tbeat3\tOther\tBeat Boys",
    "p2\tx4\tBEAT\tbeat",
    "p2\tx5\tBeaz\tx",
    "p2\t50%_off\tt\ta",
]) + "\n"


def q(d, query, **params):
    params["q"] = query
    return d.request("GET", "/v1/items?" + urllib.parse.urlencode(params))


def walk(d, query, page_size):
    ids, token, pages = [], None, 0
    while True:
        params = {"page_size": page_size}
        if token:
            params["page_token"] = token
        r = q(d, query, **params)
        assert r.status == 200, r
        body = r.json()
        assert len(body["items"]) <= page_size
        ids += [it["id"] for it in body["items"]]
        token = body["next_page_token"]
        pages += 1
        assert pages < 500
        if token is None:
            return ids, pages


class Search(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon().__enter__()
        assert cls.d.upload(TSV).status == 200
        # many items sharing a title prefix, for pagination
        rows = ["playlist_id\titem_id\ttitle\tartist"]
        rows += ["g%d\tsong%03d\tLove Song %03d\tBand %d" % (i % 7, i, i, i % 5) for i in range(250)]
        assert cls.d.upload("\n".join(rows) + "\n").status == 200

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def test_fields_order_and_case(self):
        r = q(self.d, "beat")
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual([it["id"] for it in body["items"]], ["beat3", "x4", "A1", "b2"])
        self.assertIsNone(body["next_page_token"])
        a1 = body["items"][2]
        self.assertEqual(a1, {"id": "A1", "title": "Beat It", "artist": "Michael Jackson",
                              "playlists": 1})
        self.assertEqual([it["id"] for it in q(self.d, "BEAT").json()["items"]],
                         ["beat3", "x4", "A1", "b2"])
        self.assertEqual([it["id"] for it in q(self.d, "michael j").json()["items"]], ["A1"])
        self.assertEqual([it["id"] for it in q(self.d, "50%").json()["items"]], ["50%_off"])
        self.assertEqual(q(self.d, "zzz").json(), {"items": [], "next_page_token": None})

    def test_pagination_walks_the_same_list(self):
        one, pages = walk(self.d, "love", 1000)
        self.assertEqual(pages, 1)
        self.assertEqual(one, ["song%03d" % i for i in range(250)])
        paged, pages = walk(self.d, "love", 7)
        self.assertEqual(paged, one)
        self.assertGreaterEqual(pages, 36)
        # "band" matches only artists: by artist, then key
        band, _ = walk(self.d, "Band 3", 10)
        self.assertEqual(band, ["song%03d" % i for i in range(3, 250, 5)])

    def test_empty_query_lists_everything(self):
        everything, _ = walk(self.d, "", 100)
        self.assertEqual(len(everything), len(set(everything)))
        self.assertGreaterEqual(len(everything), 256)
        r = self.d.request("GET", "/v1/items?page_size=2")
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.json()["items"]), 2)
        self.assertTrue(r.json()["next_page_token"])

    def test_follows_uploads_and_renames(self):
        d = self.d
        self.assertEqual(q(d, "qqq").json()["items"], [])
        tsv = "playlist_id\titem_id\ttitle\tartist\nr1\tren1\tQqq Song\tSomeone\n"
        self.assertEqual(d.upload(tsv).status, 200)
        self.assertEqual([it["id"] for it in q(d, "qqq").json()["items"]], ["ren1"])
        # the latest upload's title wins, and the search follows it
        self.assertEqual(d.upload(tsv.replace("Qqq Song", "Rrr Song")).status, 200)
        self.assertEqual(q(d, "qqq").json()["items"], [])
        self.assertEqual([it["title"] for it in q(d, "rrr").json()["items"]], ["Rrr Song"])

    def test_bad_parameters(self):
        d = self.d
        for params in ({"page_token": "zzz"}, {"page_token": "t"}, {"page_token": "t-1"},
                       {"page_token": "t12x"}, {"page_size": 0}, {"page_size": 1001}):
            r = q(d, "love", **params)
            self.assertEqual(r.status, 400, (params, r))
            self.assertEqual(r.header("Content-Type"), "application/problem+json")
        # a token of another search: an unknown key, or the all-items phase
        self.assertEqual(q(d, "love", page_token="t999999").status, 400)
        self.assertEqual(q(d, "love", page_token="k5").status, 400)
        self.assertEqual(q(d, "", page_token="t5").status, 400)
        r = q(d, "x" * 257)
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["errors"][0]["pointer"], "q")
        self.assertEqual(q(d, "x" * 256).status, 200)


class SearchAuth(unittest.TestCase):
    def test_read_token_may_search(self):
        conf = "[auth]\ntokens = rw-secret\nread_tokens = ro-secret\n"
        with Daemon(config_text=conf) as d:
            self.assertEqual(d.request("GET", "/v1/items?q=a").status, 401)
            r = d.request("GET", "/v1/items?q=a", headers={"Authorization": "Bearer ro-secret"})
            self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    run(globals())
