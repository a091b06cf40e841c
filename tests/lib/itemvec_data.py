#!/usr/bin/env python3
"""itemvec_data: loaders and upload converters for the real datasets in ../shared/data.

Python 3 standard library only. Used by the API and oracle tests; run
``python3 tests/lib/itemvec_data.py --self-test`` to check the datasets against
their README counts.

Typical use from a test in tests/api or tests/oracle::

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    import itemvec_data as D

    D.require_data()                      # path, or exit 77 (skip) / 1 when CI=true
    ds = D.load_yes("yes_small")          # or "yes_big", or D.load_groceries()
    body = D.to_csv(ds.rows())            # bytes for POST /v1/playlists (text/csv)
    body = D.to_ndjson(ds.upload_playlists())   # application/x-ndjson
    table = ds.table()                    # what the daemon stores: the seed's cleaned table

Functions
---------
data_dir()            env ITEMVEC_DATA, else <repo>/../shared/data (may not exist).
require_data()        data_dir() if it exists; otherwise prints
                      "SKIP: ../shared/data not found (real datasets absent)" and exits 77,
                      or, when env CI == "true", prints a FAIL line and exits 1.
load_yes(name)        name "yes_small" or "yes_big" -> Dataset.
load_groceries()      groceries-arules -> Dataset.
to_tsv(rows), to_csv(rows)
                      rows = iterable of (playlist_id, item_id, title, artist) -> bytes with
                      header "playlist_id,item_id,title,artist" (tab-separated for TSV).
                      A title/artist of None is written as an empty field; when every row
                      has artist None the artist column is left out (and the title column
                      too when every title is None), so "missing" is not sent as "empty".
                      Quoting (RFC 4180, also in TSV, whose parser takes the same quotes): a
                      field is quoted when it holds the separator, '"', CR/LF, or leading or
                      trailing whitespace (so "cream cheese " survives a CSV reader that
                      trims unquoted fields).
to_ndjson(playlists), to_json(playlists)
                      playlists = iterable of {"id": str, "items": [...]} where an item is a
                      string id or {"id", "title"?, "artist"?} -> bytes (one object per line,
                      or one JSON array). UTF-8, no ASCII escaping.
rows_to_playlists(rows)
                      groups rows into that shape (playlists in first-seen order, items in
                      row order, repeats kept; None title/artist keys omitted).

Dataset (what the loaders return)
---------------------------------
name            "yes_small", "yes_big" or "groceries".
playlist_ids    list of str: 1-based line numbers of the playlists ("1" is the first
                playlist; for Yes.com the two header lines of train.txt do not count).
playlists       list of lists of raw ids, file order, repeats kept. Yes.com: the 0-based
                int song ids of train.txt. Groceries: the item names (str), exactly as in
                the file, trailing spaces included ("cream cheese " is its own id).
titles, artists dicts raw id -> str (artists: None for groceries, which has no artist).
                Yes.com titles have the "\\/" escape of song_hash.txt undone; they are kept
                otherwise exactly (some have leading/trailing spaces, and two yes_big songs
                have an EMPTY title: the seed's cleaning skips their 11 rows).
item_id(raw)    the upload id, a str. Yes.com: str(song + 1) -- the seed's cleaning
                skips item id 0 (tracks_data_id > 0), so 0-based song ids are shifted;
                item_raw(item_id) undoes it. Groceries: the name itself.
rows()          list of (playlist_id, item_id, title, artist), file order, repeats kept.
distinct_rows() rows() without repeated (playlist_id, item_id) pairs (first kept).
table()         the seed's cleaned `playlist` table as the daemon stores it: distinct rows
                whose title is non-empty and whose item id, when numeric, is > 0.
upload_playlists(distinct=False)
                rows_to_playlists(rows() or distinct_rows()) for NDJSON/JSON uploads.

Note on ids with surrounding spaces: the daemon's CSV/TSV parser trims spaces around
ids (quoted or not), so "cream cheese " arrives as "cream cheese" through CSV/TSV but
unchanged through NDJSON/JSON. No groceries name differs from another only by spaces,
so the item count (169) is the same either way.
"""

import csv
import io
import json
import os
import re
import sys

__all__ = [
    "Dataset",
    "data_dir",
    "require_data",
    "load_yes",
    "load_groceries",
    "to_tsv",
    "to_csv",
    "to_ndjson",
    "to_json",
    "rows_to_playlists",
    "EXPECTED",
]

# README counts of each dataset (../shared/data/*/README.md), checked by the self-test.
EXPECTED = {
    "yes_small": {"playlists": 41480, "rows": 175911, "distinct": 171227, "items": 3168},
    "yes_big": {"playlists": 18139, "rows": 190649, "distinct": 174803, "items": 9765},
    "groceries": {"playlists": 9835, "rows": 43367, "distinct": 43367, "items": 169},
}

HEADER = ("playlist_id", "item_id", "title", "artist")


def data_dir():
    """Returns the datasets' folder: $ITEMVEC_DATA, else <repo>/../shared/data.

    The path is returned whether or not it exists; see require_data()."""
    env = os.environ.get("ITEMVEC_DATA")
    if env:
        return env
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.normpath(os.path.join(repo, "..", "shared", "data"))


def require_data():
    """Returns data_dir() when it exists. Otherwise exits: 77 (ctest's skip code) with
    a SKIP line, or 1 with a FAIL line when env CI is "true" (CI must have the data)."""
    path = data_dir()
    if os.path.isdir(path):
        return path
    if os.environ.get("CI") == "true":
        print(
            "FAIL: real datasets not found at %s (CI=true: ../shared/data or ITEMVEC_DATA "
            "must be provided in CI, tests that need it are not skipped there)" % path,
            flush=True,
        )
        sys.exit(1)
    print("SKIP: ../shared/data not found (real datasets absent)", flush=True)
    sys.exit(77)


class Dataset:
    """One loaded dataset; see the module docstring for the fields."""

    def __init__(self, name, playlists, titles, artists, id_offset):
        self.name = name
        self.playlists = playlists
        self.playlist_ids = [str(i + 1) for i in range(len(playlists))]
        self.titles = titles
        self.artists = artists
        # Yes.com: upload id = song + 1; groceries (names): None, the name itself.
        self._id_offset = id_offset
        self._rows = None

    def item_id(self, raw):
        if self._id_offset is None:
            return raw
        return str(raw + self._id_offset)

    def item_raw(self, item_id):
        if self._id_offset is None:
            return item_id
        return int(item_id) - self._id_offset

    def rows(self):
        if self._rows is None:
            # one tuple per distinct raw id, reused: the lists are ~200k rows
            conv = {
                raw: (self.item_id(raw), self.titles.get(raw), self.artists.get(raw))
                for items in self.playlists
                for raw in items
            }
            self._rows = [
                (pid,) + conv[raw]
                for pid, items in zip(self.playlist_ids, self.playlists)
                for raw in items
            ]
        return list(self._rows)

    def distinct_rows(self):
        seen = set()
        out = []
        for row in self.rows():
            key = (row[0], row[1])
            if key not in seen:
                seen.add(key)
                out.append(row)
        return out

    def table(self):
        out = []
        for row in self.distinct_rows():
            if not row[2]:
                continue
            try:
                if int(row[1]) <= 0:
                    continue
            except ValueError:
                pass
            out.append(row)
        return out

    def upload_playlists(self, distinct=False):
        return rows_to_playlists(self.distinct_rows() if distinct else self.rows())

    def __repr__(self):
        return "<Dataset %s: %d playlists>" % (self.name, len(self.playlists))


def load_yes(name):
    """Loads a Yes.com dataset ("yes_small" or "yes_big") from data_dir().

    train.txt: 2 header lines (upstream ids, counts), then one playlist per line of
    0-based song ids, each line ending with a space. song_hash.txt: id TAB title TAB
    artist with "\\/" for "/". Raises ValueError on a malformed file."""
    if name not in ("yes_small", "yes_big"):
        raise ValueError("load_yes: unknown dataset %r" % name)
    folder = os.path.join(data_dir(), name)
    titles, artists = {}, {}
    with open(os.path.join(folder, "song_hash.txt"), encoding="utf-8", newline="") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            parts = line.split("\t")
            if len(parts) != 3:
                raise ValueError("%s/song_hash.txt:%d: expected 3 fields" % (name, lineno))
            song = int(parts[0])
            titles[song] = parts[1].replace("\\/", "/")
            artists[song] = parts[2].replace("\\/", "/")
    playlists = []
    with open(os.path.join(folder, "train.txt"), encoding="ascii", newline="") as f:
        for lineno, line in enumerate(f, 1):
            if lineno <= 2:
                continue
            line = line.rstrip("\n")
            if not line.strip():
                continue
            songs = [int(tok) for tok in line.split(" ") if tok != ""]
            for s in songs:
                if s not in titles:
                    raise ValueError("%s/train.txt:%d: song %d not in song_hash" % (name, lineno, s))
            playlists.append(songs)
    return Dataset(name, playlists, titles, artists, id_offset=1)


def load_groceries():
    """Loads groceries-arules/groceries.csv: one basket per line, item names separated
    by commas, names kept byte-exact (trailing spaces included), no quoting in the file."""
    path = os.path.join(data_dir(), "groceries-arules", "groceries.csv")
    playlists = []
    names = {}
    with open(path, encoding="utf-8", newline="") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            items = line.split(",")
            for it in items:
                names[it] = it
            playlists.append(items)
    return Dataset("groceries", playlists, names, {}, id_offset=None)


def rows_to_playlists(rows):
    """Groups (playlist_id, item_id, title, artist) rows into upload playlist objects."""
    order = []
    by_id = {}
    for pid, item, title, artist in rows:
        pl = by_id.get(pid)
        if pl is None:
            pl = by_id[pid] = {"id": pid, "items": []}
            order.append(pl)
        obj = {"id": item}
        if title is not None:
            obj["title"] = title
        if artist is not None:
            obj["artist"] = artist
        pl["items"].append(obj)
    return order


_NEEDS_QUOTES = {
    ",": re.compile(r'[,"\r\n]|^\s|\s$'),
    "\t": re.compile(r'[\t"\r\n]|^\s|\s$'),
}


def _delimited(rows, sep):
    rows = list(rows)
    ncols = 4
    if rows and all(r[3] is None for r in rows):
        ncols = 3
        if all(r[2] is None for r in rows):
            ncols = 2
    needs = _NEEDS_QUOTES[sep]
    memo = {}  # titles and ids repeat a lot: quote each distinct value once

    def field(value):
        q = memo.get(value)
        if q is None:
            s = "" if value is None else str(value)
            q = memo[value] = '"' + s.replace('"', '""') + '"' if needs.search(s) else s
        return q

    out = [sep.join(HEADER[:ncols])]
    for r in rows:
        out.append(sep.join([field(v) for v in r[:ncols]]))
    return ("\n".join(out) + "\n").encode("utf-8")


def to_tsv(rows):
    """Rows -> text/tab-separated-values bytes (header row first)."""
    return _delimited(rows, "\t")


def to_csv(rows):
    """Rows -> text/csv bytes, RFC 4180 quoting where needed (header row first)."""
    return _delimited(rows, ",")


def _dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def to_ndjson(playlists):
    """Playlist objects -> application/x-ndjson bytes, one playlist per line."""
    return "".join(_dumps(p) + "\n" for p in playlists).encode("utf-8")


def to_json(playlists):
    """Playlist objects -> application/json bytes: one JSON array of them."""
    return _dumps(list(playlists)).encode("utf-8")


# ---- self-test -------------------------------------------------------------------


def _parse_delimited(body, sep):
    """Reads back to_csv/to_tsv output with Python's csv module (RFC 4180 quotes)."""
    reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""), delimiter=sep)
    header = next(reader)
    out = []
    for rec in reader:
        rec = rec + [None] * (4 - len(rec))
        out.append(tuple(rec))
    return header, out


def _norm(rows):
    # A None title/artist is written as an empty field, read back as "".
    return [tuple("" if v is None else v for v in r) for r in rows]


def self_test():
    """Checks the README counts and the converters' round trips. Returns (passed, failed)."""
    require_data()
    passed = failed = 0

    def check(cond, what):
        nonlocal passed, failed
        if cond:
            passed += 1
            print("ok   %s" % what, flush=True)
        else:
            failed += 1
            print("FAIL %s" % what, flush=True)

    loaded = {
        "yes_small": load_yes("yes_small"),
        "yes_big": load_yes("yes_big"),
        "groceries": load_groceries(),
    }
    for name, ds in loaded.items():
        exp = EXPECTED[name]
        rows = ds.rows()
        distinct = ds.distinct_rows()
        items = {r[1] for r in rows}
        got = {
            "playlists": len(ds.playlists),
            "rows": len(rows),
            "distinct": len(distinct),
            "items": len(items),
        }
        check(got == exp, "%s counts %s (README %s)" % (name, got, exp))
        check(
            ds.playlist_ids[0] == "1" and ds.playlist_ids[-1] == str(exp["playlists"]),
            "%s playlist ids 1..%d" % (name, exp["playlists"]),
        )

        # The converters carry the rows unchanged (repeats included).
        for fmt, sep, fn in (("csv", ",", to_csv), ("tsv", "\t", to_tsv)):
            header, back = _parse_delimited(fn(rows), sep)
            ncols = len(header)
            check(
                header == list(HEADER[:ncols]) and [r[:ncols] for r in back]
                == [r[:ncols] for r in _norm(rows)],
                "%s %s round trip (%d rows, %d columns)" % (name, fmt, len(back), ncols),
            )
        pls = rows_to_playlists(rows)
        nd = [json.loads(line) for line in to_ndjson(pls).decode().splitlines()]
        js = json.loads(to_json(pls).decode())
        flat = [
            (p["id"], it["id"], it.get("title"), it.get("artist")) for p in nd for it in p["items"]
        ]
        check(
            nd == js and flat == rows and len(nd) == exp["playlists"],
            "%s ndjson/json round trip (%d playlists)" % (name, len(nd)),
        )

    ys = loaded["yes_small"]
    check(len(ys.rows()) == 175911 and len(ys.distinct_rows()) == 171227,
          "yes_small as rows: 175,911 rows, 171,227 distinct (playlist,item) pairs")
    check(
        min(int(r[1]) for r in ys.rows()) == 1 and ys.item_raw("1") == 0
        and ys.titles[0] == "Gucci Time (w/ Swizz Beatz)",
        "yes ids shifted by one (song 0 -> item \"1\"), \\/ unescaped",
    )
    yb = loaded["yes_big"]
    empty = [r for r in yb.rows() if not r[2]]
    check(
        len(empty) == 11 and len(yb.table()) == 174803 - len({(r[0], r[1]) for r in empty}),
        "yes_big: 11 rows with an empty title, dropped by table() (%d rows)" % len(yb.table()),
    )
    gr = loaded["groceries"]
    check(
        "cream cheese " in gr.titles and "cream cheese" not in gr.titles
        and len(gr.table()) == 43367,
        "groceries: trailing-space names kept exactly",
    )
    csv_body = to_csv(gr.rows()).decode()
    check('"cream cheese "' in csv_body and csv_body.startswith("playlist_id,item_id,title\n"),
          "groceries csv: spaced names quoted, no artist column")
    return passed, failed


def main(argv):
    if len(argv) > 1 and argv[1] == "--self-test":
        passed, failed = self_test()
        print("%d passed, %d failed" % (passed, failed), flush=True)
        return 1 if failed else 0
    print("usage: %s --self-test" % argv[0], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
