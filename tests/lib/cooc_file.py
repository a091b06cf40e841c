"""Reader for itemvecd's PMI result files (<state>/pmi/<job>.cooc, the
layout in storage/cooc_file.h), for tests that compare results or export a
co-occurrence table the way a warehouse would.

    r = read_cooc(path)       # dict: n, nnz, total, keys, freq, row_ptr, col, cooc, ...
    ids = item_ids(state_dir) # {key: id} read from the database (read-only)
    for key1, key2, cooc, pmi in rows(r): ...
"""
import math
import os
import sqlite3
import struct
from array import array


def read_cooc(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"IVCOOC\r\n", "not a cooc file: %s" % path
    (n, nnz, total, valid_items, valid_groups, min_freq, max_size) = struct.unpack_from("<QQQQQqq", data, 24)
    off = 128

    def take(code, count):
        nonlocal off
        a = array(code)
        size = a.itemsize * count
        a.frombytes(data[off:off + size])
        off += size
        return a
    keys = take("I", n)
    freq = take("I", n)
    row_ptr = take("Q", n + 1)
    col = take("I", nnz)
    cooc = take("I", nnz)
    return {"n": n, "nnz": nnz, "total": total, "valid_items": valid_items,
            "valid_groups": valid_groups, "min_item_frequency": min_freq,
            "max_group_size": max_size, "keys": keys, "freq": freq, "row_ptr": row_ptr,
            "col": col, "cooc": cooc}


def pmi(r, i, e):
    """The seed's pmi of entry e of row i, as ml/cooc.h's cooc_pmi computes it."""
    return (math.log2(r["cooc"][e]) - math.log2(r["freq"][i]) - math.log2(r["freq"][r["col"][e]])
            + math.log2(r["total"]))


def rows(r):
    """(key1, key2, cooc, pmi) for every entry, the seed's item_cooc rows."""
    keys, col, cooc, rp = r["keys"], r["col"], r["cooc"], r["row_ptr"]
    for i in range(r["n"]):
        for e in range(rp[i], rp[i + 1]):
            yield keys[i], keys[col[e]], cooc[e], pmi(r, i, e)


def item_ids(state_dir):
    """{key: id} from the daemon's database, opened read-only."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(state_dir, "itemvec.db"), uri=True)
    try:
        return dict(db.execute("SELECT key, id FROM items"))
    finally:
        db.close()


def to_table(r, ids, fmt="csv", names=("item1_Id", "item2_Id", "cooc", "pmi"), with_pmi=True,
             order=None):
    """The result as an item_cooc export: fmt csv, tsv or ndjson; rows in
    file order unless order (a function on the list of rows) reorders them."""
    import json
    out = [(ids[a], ids[b], c, p) for a, b, c, p in rows(r)]
    if order:
        out = order(out)
    if fmt == "ndjson":
        lines = []
        for a, b, c, p in out:
            o = {names[0]: a, names[1]: b, names[2]: c}
            if with_pmi:
                o[names[3]] = p
            lines.append(json.dumps(o))
        return ("\n".join(lines) + "\n").encode()
    sep = "\t" if fmt == "tsv" else ","
    head = names if with_pmi else names[:3]
    lines = [sep.join(head)]
    for a, b, c, p in out:
        f = [a, b, str(c)] + ([repr(p)] if with_pmi else [])
        lines.append(sep.join(f))
    return ("\n".join(lines) + "\n").encode()
