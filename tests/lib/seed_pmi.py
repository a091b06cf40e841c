"""The seed's sp_ComputePMI run in SQLite on a list of (group, item) rows:
a small oracle for API-level tests (tests/oracle/test_pmi_oracle.py is the
full one on real data). Returns the result fields and the item_cooc rows.

LOG(x, 2) of BigQuery is log base 2 of x: registered as LOG2 here.
"""
import math
import sqlite3


def seed_pmi(rows, min_item_frequency=15, max_group_size=100):
    db = sqlite3.connect(":memory:")
    db.create_function("LOG2", 1, math.log2)
    db.execute("CREATE TABLE vw_item_groups (group_Id TEXT, item_Id TEXT)")
    db.executemany("INSERT INTO vw_item_groups VALUES (?, ?)", sorted(set(rows)))
    db.executescript(f"""
        CREATE TABLE valid_items AS
          SELECT item_Id, COUNT(group_Id) AS item_frequency FROM vw_item_groups
          GROUP BY item_Id HAVING item_frequency >= {int(min_item_frequency)};
        CREATE TABLE valid_groups AS
          SELECT group_Id, COUNT(item_Id) AS group_size FROM vw_item_groups
          WHERE item_Id IN (SELECT item_Id FROM valid_items)
          GROUP BY group_Id HAVING group_size BETWEEN 2 AND {int(max_group_size)};
        CREATE TABLE valid_item_groups AS
          SELECT item_Id, group_Id FROM vw_item_groups
          WHERE item_Id IN (SELECT item_Id FROM valid_items)
            AND group_Id IN (SELECT group_Id FROM valid_groups);
        CREATE TABLE cooc1 AS
          SELECT item1_Id, item2_Id, SUM(cooc) AS cooc FROM (
            SELECT a.item_Id item1_Id, b.item_Id item2_Id, 1 AS cooc
            FROM valid_item_groups a JOIN valid_item_groups b
            ON a.group_Id = b.group_Id AND a.item_Id < b.item_Id)
          GROUP BY item1_Id, item2_Id;
        CREATE TABLE item_frequency AS
          SELECT item_Id, COUNT(group_Id) AS frequency FROM valid_item_groups GROUP BY item_Id;
    """)
    total = db.execute("SELECT SUM(frequency) FROM item_frequency").fetchone()[0] or 0
    db.executescript("""
        CREATE TABLE cooc2 AS
          SELECT item1_Id, item2_Id, cooc FROM cooc1
          UNION ALL SELECT item2_Id, item1_Id, cooc FROM cooc1
          UNION ALL SELECT item_Id, item_Id, frequency FROM item_frequency;
    """)
    out = []
    if total:
        out = db.execute(f"""
            SELECT a.item1_Id, a.item2_Id, a.cooc, b.frequency, c.frequency,
                   LOG2(a.cooc) - LOG2(b.frequency) - LOG2(c.frequency) + LOG2({total}) AS pmi
            FROM cooc2 a JOIN item_frequency b ON a.item1_Id = b.item_Id
            JOIN item_frequency c ON a.item2_Id = c.item_Id""").fetchall()
    fields = {
        "valid_items": db.execute("SELECT COUNT(*) FROM valid_items").fetchone()[0],
        "valid_groups": db.execute("SELECT COUNT(*) FROM valid_groups").fetchone()[0],
        "total": total,
        "cooc_rows": len(out),
        "matrix_items": db.execute("SELECT COUNT(*) FROM item_frequency").fetchone()[0],
    }
    return fields, out
