#!/usr/bin/env python3
"""Black-box test of bench/gen_playlists (the synthetic data generator), at 50 k rows:
determinism per seed, headers, the same rows in TSV/CSV/NDJSON (and through --gzip),
the documented duplicate/skip shares, and a heavy-tailed popularity.
Needs no daemon. Exit 0 pass, 1 fail, 77 skip (generator not built and no ITEMVEC_BUILD)."""
import collections
import csv
import glob
import gzip
import io
import json
import os
import re
import subprocess
import sys

ROWS = 50000
# Documented in bench/gen_playlists.c: per valid row, 2 % chance of an exact duplicate
# and 1 % of a row the seed's cleaning skips. Shares below are of all data lines.
DUP_BAND = (0.015, 0.025)
SKIP_BAND = (0.006, 0.014)

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + what, flush=True)
    else:
        failed += 1
        print("FAIL " + what, flush=True)


def find_generator():
    build = os.environ.get("ITEMVEC_BUILD")
    if build:
        return os.path.join(build, "bench", "gen_playlists")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    found = sorted(glob.glob(os.path.join(repo, "build*", "bench", "gen_playlists")))
    return found[0] if found else None


def run(gen, *args, stderr=False):
    p = subprocess.run([gen, "--rows", str(ROWS)] + list(args), capture_output=True, timeout=60)
    if p.returncode != 0:
        raise SystemExit("FAIL: %s exited %d: %s" % (args, p.returncode, p.stderr.decode()))
    return (p.stdout, p.stderr.decode()) if stderr else p.stdout


def parse_delimited(body, sep):
    reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""), delimiter=sep)
    header = next(reader)
    return header, [tuple(r) for r in reader]


def parse_ndjson(body):
    rows = []
    for line in body.decode("utf-8").splitlines():
        pl = json.loads(line)
        for it in pl["items"]:
            rows.append((pl["id"], it["id"], it["title"], it["artist"]))
    return rows


def main():
    gen = find_generator()
    if not gen or not os.path.exists(gen):
        if os.environ.get("ITEMVEC_BUILD"):
            print("FAIL: generator not found at %s" % gen, flush=True)
            return 1
        print("SKIP: gen_playlists not built (set ITEMVEC_BUILD)", flush=True)
        return 77

    tsv = run(gen, "--seed", "7")
    check(tsv == run(gen, "--seed", "7"), "same seed, identical output")
    check(tsv != run(gen, "--seed", "8"), "another seed, different output")

    csv_body, stats = run(gen, "--seed", "7", "--format", "csv", "--stats", stderr=True)
    check(csv_body == run(gen, "--seed", "7", "--format", "csv"), "--stats leaves the output alone")
    nd_body = run(gen, "--seed", "7", "--format", "ndjson")
    gz_body = run(gen, "--seed", "7", "--gzip")
    check(gzip.decompress(gz_body) == tsv, "--gzip output inflates to the TSV bytes")

    th, trows = parse_delimited(tsv, "\t")
    ch, crows = parse_delimited(csv_body, ",")
    nrows = parse_ndjson(nd_body)
    check(th == ["playlist_id", "item_id", "title", "artist"], "TSV header")
    check(ch == ["playlist_id", "item_id", "title", "artist"], "CSV header")
    check(trows == crows == nrows, "TSV, CSV and NDJSON carry the same %d rows" % len(trows))
    check(all(len(r) == 4 for r in trows), "4 fields on every row")
    check(
        b'""' in csv_body and any("," in r[2] for r in crows) and any('"' in r[2] for r in crows),
        "CSV exercises quoting (commas and quotes in titles)",
    )

    # Classify rows as the seed's cleaning and the daemon would.
    lines = len(trows)
    skipped = [r for r in trows if int(r[1]) <= 0 or r[2] == ""]
    kept = [r for r in trows if not (int(r[1]) <= 0 or r[2] == "")]
    distinct = set((r[0], r[1]) for r in kept)
    dups = len(kept) - len(distinct)
    check(len(distinct) == ROWS, "--rows counts distinct valid rows (%d)" % len(distinct))
    check(
        len(set(kept)) == len(distinct), "one title/artist per item (duplicates are exact copies)"
    )
    dshare, sshare = dups / lines, len(skipped) / lines
    check(DUP_BAND[0] <= dshare <= DUP_BAND[1], "duplicate share %.2f%% in %s" % (100 * dshare, DUP_BAND))
    check(SKIP_BAND[0] <= sshare <= SKIP_BAND[1], "skip share %.2f%% in %s" % (100 * sshare, SKIP_BAND))
    nonpos = sum(1 for r in skipped if int(r[1]) <= 0)
    check(0 < nonpos < len(skipped), "both skip kinds present (id<=0: %d, empty title: %d)"
          % (nonpos, len(skipped) - nonpos))
    # Skipped empty-title rows never hide a stored membership of their playlist.
    check(all((r[0], r[1]) not in distinct for r in skipped if r[2] == ""),
          "empty-title rows name items not otherwise in their playlist")

    freq = collections.Counter(item for _, item in distinct)
    counts = sorted(freq.values(), reverse=True)
    top = counts[: max(1, len(counts) // 100)]
    share = sum(top) / len(distinct)
    check(share >= 0.2, "heavy tail: top 1%% of %d items hold %.1f%% of rows" % (len(counts), 100 * share))
    check(counts[0] >= 50 * (len(distinct) / len(counts)),
          "most popular item far above the mean (%d vs %.1f)" % (counts[0], len(distinct) / len(counts)))
    check(all(int(i) > 0 for i in freq) and max(int(i) for i in freq) > 10 * len(freq),
          "item ids positive and scattered")
    playlists = set(r[0] for r in kept)
    m = re.search(r"playlists\s+(\d+)", stats)
    check(m is not None and int(m.group(1)) == len(playlists),
          "--stats playlist count matches the output (%d)" % len(playlists))
    m = re.search(r"lines \(data rows\)\s+(\d+)", stats)
    check(m is not None and int(m.group(1)) == lines, "--stats line count matches the output")
    for key in ("valid rows", "valid items", "valid groups", "cooc rows"):
        check(re.search(key + r"\s+\d+", stats) is not None, "--stats reports " + key)

    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
