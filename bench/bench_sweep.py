#!/usr/bin/env python3
"""The evaluate job's sweep on a public dataset (docs/quality.md, "The
sweep"; docs/benchmarks.md): starts build/itemvecd on a free port with a
temporary state dir, uploads the dataset, runs one evaluate job and prints
its wall time and result as one JSON line. Prints, never fails.

    python3 bench/bench_sweep.py yes_big ['{"sweep": true}']

DATASET: yes_small, yes_big or groceries; params default {"sweep": true}.
ITEMVECD overrides the binary (default build/itemvecd).
"""
import json, os, sys, time
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
import itemvec_data as D
from daemon import Daemon
from pipeline import run_job
name = sys.argv[1]
params = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {"sweep": True}
ds = D.load_groceries() if name == "groceries" else D.load_yes(name)
os.environ.setdefault("ITEMVECD", os.path.join(HERE, "..", "build", "itemvecd"))
with Daemon() as d:
    r = d.upload(D.to_tsv(ds.rows()))
    assert r.status == 200, r
    t = time.time()
    j = run_job(d, "evaluate", params)
    wall = time.time() - t
    out = {"dataset": name, "wall": wall, "params": params, "result": j.get("result"), "state": j["state"], "error": j.get("error")}
    print(json.dumps(out))
