#!/usr/bin/env python3
"""Oracle for the PMI job: the seed's stored procedure sp_ComputePMI run in
SQLite against ml/cooc.c (through the test tool pmi_dump) on real data.

For each dataset in ../shared/data (yes_small, yes_big, groceries-arules)
and each parameter pair, the memberships are loaded as a set of
(group, item) rows, handed to pmi_dump as a groups file, and the seed's SQL
statements are run in SQLite, translated only where the dialects differ:

  * CREATE OR REPLACE TABLE t AS ...  ->  DROP TABLE IF EXISTS t; CREATE TABLE t AS ...
    (item_cooc, which the seed replaces from itself, goes through a new name)
  * DECLARE total / SET total = (...) ->  a Python variable spliced into the SQL
  * LOG(x, 2): BigQuery's LOG(X, Y) is log base Y of X; SQLite's built-in
    log(B, X) has the arguments the other way round, so each LOG(x, 2) is
    rewritten to log2(x) (SQLite's built-in, or math.log2 when the library
    was built without math functions).
  * the procedure's IN parameters are spliced in as integer literals.

Compared: valid_items, valid_groups, total, cooc_rows, matrix_items exactly;
every (item1, item2, cooc) row exactly; pmi to 1e-9 relative (relative to
max(|pmi|, 1): a pmi near 0 is a difference of logs of size ~log2(total),
and SQLite's log2 may differ from libm's in the last bit).

Environment: ITEMVEC_DATA (else <repo>/../shared/data), ITEMVEC_TOOLS (dir
holding pmi_dump). Missing data: "SKIP: ..." and exit 77, except with
CI=true where it is a failure. Python 3 standard library only.
"""
import math
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.environ.get("ITEMVEC_DATA") or os.path.join(REPO, "..", "shared", "data")
TOOLS = os.environ.get("ITEMVEC_TOOLS") or os.path.join(REPO, "build-pmi", "tests", "tools")
PMI_DUMP = os.path.join(TOOLS, "pmi_dump")
REL_TOL = 1e-9

# (dataset, min_item_frequency, max_group_size, extra pmi_dump flags)
CASES = [
    ("yes_small", 15, 100, []),
    ("yes_big", 15, 100, ["--threads", "1"]),
    ("yes_big", 5, 30, ["--via-file", None]),  # None: a temporary directory
    ("groceries-arules", 15, 100, []),
    ("groceries-arules", 5, 30, []),
    ("groceries-arules", 1, 2, []),  # only baskets of exactly 2 items
]


def load_yes(folder):
    """train.txt from line 3: one playlist a line, 0-based song ids; item key = id + 1."""
    rows = set()
    with open(os.path.join(DATA, folder, "train.txt"), encoding="ascii") as f:
        for lineno, line in enumerate(f):
            if lineno < 2:
                continue
            group = lineno - 2
            for tok in line.split():
                rows.add((group, int(tok) + 1))
    return rows


def load_groceries(folder):
    """One basket a line, comma-separated names (kept verbatim, trailing
    spaces included); item key = 1-based rank of the name in sorted order."""
    baskets = []
    with open(os.path.join(DATA, folder, "groceries.csv"), encoding="utf-8", newline="") as f:
        for line in f:
            line = line.rstrip("\r\n")
            baskets.append([name for name in line.split(",") if name != ""] if line else [])
    names = sorted({n for b in baskets for n in b})
    key = {n: i + 1 for i, n in enumerate(names)}
    return {(g, key[n]) for g, b in enumerate(baskets) for n in b}


def write_groups(rows, path):
    groups = {}
    for g, item in rows:
        groups.setdefault(g, []).append(item)
    n = max(groups) + 1 if groups else 0
    with open(path, "w") as f:
        for g in range(n):
            f.write(" ".join(str(i) for i in sorted(groups.get(g, []))) + "\n")


def bq_to_sqlite(sql):
    """BigQuery LOG(X, 2) -> SQLite log2(X) (argument order differs)."""
    return re.sub(r"\bLOG\(([^,()]+), 2\)", r"log2(\1)", sql)


def create_or_replace(db, name, select_sql):
    """CREATE OR REPLACE TABLE name AS select_sql, also when select_sql reads name."""
    db.execute("DROP TABLE IF EXISTS _new")
    db.execute("CREATE TABLE _new AS " + select_sql)
    db.execute(f"DROP TABLE IF EXISTS {name}")
    db.execute(f"ALTER TABLE _new RENAME TO {name}")


def run_sql(rows, min_item_frequency, max_group_size):
    """The seed's sp_ComputePMI, statement by statement. Returns (fields, cursor)."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute("SELECT log2(2)")
    except sqlite3.OperationalError:
        db.create_function("log2", 1, math.log2, deterministic=True)
    db.execute("PRAGMA temp_store = MEMORY")
    # vw_item_groups: SELECT list_Id AS group_Id, track_Id AS item_Id FROM playlist
    # (the playlist table is SELECT DISTINCT, so rows are a set).
    db.execute("CREATE TABLE vw_item_groups (group_Id INTEGER, item_Id INTEGER)")
    db.executemany("INSERT INTO vw_item_groups VALUES (?, ?)", sorted(rows))
    # No index on vw_item_groups: with one, SQLite's planner answers the
    # two IN (...) filters below by probing every (valid group, valid item)
    # combination (quadratic); a plain scan is linear.

    ctes = f"""
    WITH
    valid_items AS MATERIALIZED (
        SELECT item_Id, COUNT(group_Id) AS item_frequency
        FROM vw_item_groups
        GROUP BY item_Id
        HAVING item_frequency >= {int(min_item_frequency)}
    ),
    valid_groups AS MATERIALIZED (
        SELECT group_Id, COUNT(item_Id) AS group_size
        FROM vw_item_groups
        WHERE item_Id IN (SELECT item_Id FROM valid_items)
        GROUP BY group_Id
        HAVING group_size BETWEEN 2 AND {int(max_group_size)}
    )
    """
    fields = {}
    fields["valid_items"] = db.execute(ctes + "SELECT COUNT(*) FROM valid_items").fetchone()[0]
    fields["valid_groups"] = db.execute(ctes + "SELECT COUNT(*) FROM valid_groups").fetchone()[0]

    # Get items with minimum frequency
    create_or_replace(db, "valid_item_groups", ctes + """
    SELECT item_Id, group_Id
    FROM vw_item_groups
    WHERE item_Id IN (SELECT item_Id FROM valid_items)
    AND group_Id IN (SELECT group_Id FROM valid_groups)""")
    db.execute("CREATE INDEX vig2_group ON valid_item_groups(group_Id, item_Id)")

    # Compute pairwise cooc
    create_or_replace(db, "item_cooc", """
    SELECT item1_Id, item2_Id, SUM(cooc) AS cooc
    FROM
    (
        SELECT
        a.item_Id item1_Id,
        b.item_Id item2_Id,
        1 as cooc
        FROM valid_item_groups a
        JOIN valid_item_groups b
        ON a.group_Id = b.group_Id
        AND a.item_Id < b.item_Id
    )
    GROUP BY  item1_Id, item2_Id""")

    # Compute item frequencies
    create_or_replace(db, "item_frequency", """
    SELECT item_Id, COUNT(group_Id) AS frequency
    FROM valid_item_groups
    GROUP BY item_Id""")
    db.execute("CREATE UNIQUE INDEX if_item ON item_frequency(item_Id)")

    # Compute total frequency |D|
    total = db.execute("SELECT SUM(frequency) AS total FROM item_frequency").fetchone()[0]
    fields["total"] = total or 0  # SUM of no rows is NULL; the C side reports 0

    # Add mirror item-pair cooc and same item frequency as cooc
    create_or_replace(db, "item_cooc", """
    SELECT item1_Id, item2_Id, cooc
    FROM item_cooc
    UNION ALL
    SELECT item2_Id as item1_Id, item1_Id AS item2_Id, cooc
    FROM item_cooc
    UNION ALL
    SELECT item_Id as item1_Id, item_Id AS item2_Id, frequency as cooc
    FROM item_frequency""")

    # Compute PMI
    create_or_replace(db, "item_cooc", bq_to_sqlite(f"""
    SELECT
        a.item1_Id,
        a.item2_Id,
        a.cooc,
        LOG(a.cooc, 2) - LOG(b.frequency, 2) - LOG(c.frequency, 2) + LOG({int(total or 1)}, 2) AS pmi
    FROM item_cooc a
    JOIN item_frequency b
    ON a.item1_Id = b.item_Id
    JOIN item_frequency c
    ON a.item2_Id = c.item_Id"""))

    fields["cooc_rows"] = db.execute("SELECT COUNT(*) FROM item_cooc").fetchone()[0]
    fields["matrix_items"] = db.execute("SELECT COUNT(*) FROM item_frequency").fetchone()[0]
    cur = db.execute("SELECT item1_Id, item2_Id, cooc, pmi FROM item_cooc ORDER BY item1_Id, item2_Id")
    return fields, cur


def run_case(dataset, rows, min_freq, max_size, flags, tmp):
    groups_path = os.path.join(tmp, dataset + ".groups")
    if not os.path.exists(groups_path):
        write_groups(rows, groups_path)
    flags = [tmp if f is None else f for f in flags]
    t0 = time.monotonic()
    proc = subprocess.run([PMI_DUMP, "--min-item-frequency", str(min_freq), "--max-group-size",
                           str(max_size)] + flags + [groups_path],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t_c = time.monotonic() - t0
    if proc.returncode != 0:
        return [f"pmi_dump exited {proc.returncode}: {proc.stderr.strip()}"], t_c, 0.0
    lines = proc.stdout.split("\n")
    sep = lines.index("--")
    c_fields = {k: int(v) for k, v in (line.split() for line in lines[:sep])}
    c_rows = lines[sep + 1:]
    if c_rows and c_rows[-1] == "":
        c_rows.pop()

    t0 = time.monotonic()
    sql_fields, cur = run_sql(rows, min_freq, max_size)
    errors = []
    for k, v in sql_fields.items():
        if c_fields.get(k) != v:
            errors.append(f"{k}: C {c_fields.get(k)} != SQL {v}")
    n = 0
    max_rel = 0.0
    for sql_row in cur:
        if n >= len(c_rows):
            errors.append(f"C has {len(c_rows)} rows, SQL more")
            break
        parts = c_rows[n].split()
        i1, i2, cooc, pmi = int(parts[0]), int(parts[1]), int(parts[2]), float(parts[3])
        if (i1, i2, cooc) != tuple(sql_row[:3]):
            errors.append(f"row {n}: C ({i1}, {i2}, {cooc}) != SQL {tuple(sql_row[:3])}")
        else:
            ref = sql_row[3]
            diff = abs(pmi - ref)
            rel = diff / max(abs(pmi), abs(ref), 1.0)
            max_rel = max(max_rel, rel)
            if rel > REL_TOL:
                errors.append(f"row {n} ({i1}, {i2}): pmi C {pmi!r} != SQL {ref!r}")
        n += 1
        if len(errors) > 10:
            break
    else:
        if n != len(c_rows):
            errors.append(f"C has {len(c_rows)} rows, SQL {n}")
    t_sql = time.monotonic() - t0
    summary = " ".join(f"{k}={c_fields.get(k)}" for k in sql_fields)
    print(f"  {summary} max_rel_pmi_diff={max_rel:.3g} (C {t_c:.2f}s, SQLite {t_sql:.2f}s)")
    return errors, t_c, t_sql


def main():
    if not os.path.isdir(DATA):
        msg = f"SKIP: data directory {DATA} not found (set ITEMVEC_DATA)"
        print(msg)
        return 1 if os.environ.get("CI") == "true" else 77
    if not os.access(PMI_DUMP, os.X_OK):
        print(f"FAIL: {PMI_DUMP} not found or not executable (set ITEMVEC_TOOLS)")
        return 1
    passed = failed = 0
    loaded = {}
    with tempfile.TemporaryDirectory(prefix="pmi_oracle.") as tmp:
        for dataset, min_freq, max_size, flags in CASES:
            if dataset not in loaded:
                folder = os.path.join(DATA, dataset)
                if not os.path.isdir(folder):
                    print(f"SKIP: {folder} not found")
                    if os.environ.get("CI") == "true":
                        failed += 1
                    loaded[dataset] = None
                    continue
                loaded[dataset] = (load_groceries(dataset) if dataset.startswith("groceries")
                                   else load_yes(dataset))
            rows = loaded[dataset]
            if rows is None:
                continue
            name = f"{dataset} min_item_frequency={min_freq} max_group_size={max_size}"
            if flags:
                name += " " + " ".join("DIR" if f is None else f for f in flags)
            print(f"{name} ({len(rows)} memberships)")
            errors, _, _ = run_case(dataset, rows, min_freq, max_size, flags, tmp)
            if errors:
                failed += 1
                print(f"FAIL: {name}")
                for e in errors:
                    print(f"    {e}")
            else:
                passed += 1
                print(f"ok: {name}")
    print(f"{passed} passed, {failed} failed")
    if passed == 0 and failed == 0:
        return 1 if os.environ.get("CI") == "true" else 77
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
