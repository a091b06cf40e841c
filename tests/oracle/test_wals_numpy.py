#!/usr/bin/python3
"""Oracle: ml/wals (Cholesky solver) against a straightforward numpy ALS.

On the real yes_small playlists ($ITEMVEC_DATA/yes_small/train.txt: from
line 3 one playlist per line, 0-based song ids -> item id = id + 1, DISTINCT
per playlist), computes the seed's sp_ComputePMI(15, 100) item_cooc / pmi in
numpy exactly as the SQL defines it, writes the score matrix r = cooc * pmi
(WALSCSR1, see tests/tools/wals_run.c) and a fixed initial factor set, then
runs

  - numpy: implicit ALS (Hu, Koren, Volinsky 2008) with dense per-row normal
    equations in float64, loss over all n^2 cells from the definition;
  - $ITEMVEC_TOOLS/wals_run --solver cholesky from the same factors;

and requires the loss curves to agree within 1e-3 relative. Also checks that
the CG solver's curve decreases and ends near the exact one.

Data absent -> "SKIP: ..." and exit 77 (exit 1 when CI == "true").
"""
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DIMS = 16
ITERS = 6
ALPHA = 1.0
L2 = 1.0
MIN_ITEM_FREQUENCY = 15
MAX_GROUP_SIZE = 100

passed = 0
failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print("ok   " + what)
    else:
        failed += 1
        print("FAIL " + what)


def skip(why):
    if os.environ.get("CI") == "true":
        print("FAIL (CI): " + why)
        sys.exit(1)
    print("SKIP: " + why)
    sys.exit(77)


def read_groups(path):
    groups = []
    with open(path) as fp:
        for ln, line in enumerate(fp):
            if ln < 2:
                continue
            ids = sorted({int(t) + 1 for t in line.split()})
            groups.append(ids)
    return groups


def seed_pmi(groups):
    """sp_ComputePMI: returns (items, C cooc dense, freq, total)."""
    # valid_items: COUNT(group_Id) per item over the DISTINCT table
    count = {}
    for g in groups:
        for i in g:
            count[i] = count.get(i, 0) + 1
    valid_items = {i for i, c in count.items() if c >= MIN_ITEM_FREQUENCY}
    # valid_groups: 2 <= number of valid items <= max_group_size
    vig = []
    for g in groups:
        v = [i for i in g if i in valid_items]
        if 2 <= len(v) <= MAX_GROUP_SIZE:
            vig.append(v)
    items = sorted({i for g in vig for i in g})
    index = {item: k for k, item in enumerate(items)}
    n = len(items)
    C = np.zeros((n, n), dtype=np.int64)
    for g in vig:
        idx = np.array([index[i] for i in g])
        C[np.ix_(idx, idx)] += 1  # pairs both orders + diagonal = frequency
    freq = np.diag(C).copy()
    total = int(freq.sum())
    return items, C, freq, total


def write_matrix(path, R, mask):
    n = R.shape[0]
    rows, cols = np.nonzero(mask)
    row_ptr = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(np.bincount(rows, minlength=n), out=row_ptr[1:])
    with open(path, "wb") as fp:
        fp.write(b"WALSCSR1")
        fp.write(struct.pack("<IIQ", n, n, len(rows)))
        fp.write(row_ptr.astype("<u8").tobytes())
        fp.write(cols.astype("<u4").tobytes())
        fp.write(R[rows, cols].astype("<f4").tobytes())


def als_half(R, mask, Y, alpha, lam):
    """Solve every row: (YtY + sum_obs (c-1) y y^T + lam I) x = sum_obs c p y."""
    n, f = R.shape[0], Y.shape[1]
    W = np.where(mask, alpha * np.abs(R), 0.0)              # c - 1 on observed cells
    CP = np.where(mask & (R > 0), 1.0 + alpha * np.abs(R), 0.0)
    G = Y.T @ Y
    YY = (Y[:, :, None] * Y[:, None, :]).reshape(Y.shape[0], f * f)
    A = (W @ YY).reshape(n, f, f) + G[None, :, :] + lam * np.eye(f)[None, :, :]
    b = CP @ Y
    return np.linalg.solve(A, b[:, :, None])[:, :, 0]


def loss(R, mask, X, Y, alpha, lam):
    S = X @ Y.T
    C = np.where(mask, 1.0 + alpha * np.abs(R), 1.0)
    P = (mask & (R > 0)).astype(np.float64)
    return float((C * (P - S) ** 2).sum() + lam * ((X ** 2).sum() + (Y ** 2).sum()))


def run_tool(tool, mpath, ipath, solver, outdir):
    lpath = os.path.join(outdir, "loss_%s.txt" % solver)
    cmd = [tool, "--matrix", mpath, "--init", ipath, "--solver", solver, "--dims", str(DIMS),
           "--alpha", str(ALPHA), "--l2", str(L2), "--iters", str(ITERS), "--threads", "2",
           "--loss-out", lpath]
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if res.returncode != 0:
        print(res.stderr)
        return None
    with open(lpath) as fp:
        return [float(line.split()[1]) for line in fp if line.strip()]


def main():
    t0 = time.time()
    data = os.environ.get("ITEMVEC_DATA") or os.path.join(REPO, "..", "shared", "data")
    train = os.path.join(data, "yes_small", "train.txt")
    if not os.path.exists(train):
        skip("no %s" % train)
    tools = os.environ.get("ITEMVEC_TOOLS") or os.path.join(REPO, "build", "tests", "tools")
    tool = os.path.join(tools, "wals_run")
    if not os.access(tool, os.X_OK):
        skip("no wals_run in %s (build the tests first)" % tools)

    items, C, freq, total = seed_pmi(read_groups(train))
    n = len(items)
    mask = C > 0
    with np.errstate(divide="ignore"):
        pmi = (np.log2(np.where(mask, C, 1)) - np.log2(freq)[:, None] - np.log2(freq)[None, :]
               + np.log2(total))
    R64 = np.where(mask, C * pmi, 0.0)
    R = R64.astype(np.float32).astype(np.float64)  # the values the C code sees
    print("yes_small: %d items, %d nonzeros, total %d, %.1f%% negative scores" %
          (n, int(mask.sum()), total, 100.0 * float((R[mask] < 0).mean())))
    check(n > 3000 and np.array_equal(mask, mask.T) and np.allclose(R, R.T), "PMI matrix shape")

    rng = np.random.default_rng(20240601)
    X0 = (rng.uniform(-1.0, 1.0, (n, DIMS)) / np.sqrt(DIMS)).astype(np.float32)
    Y0 = (rng.uniform(-1.0, 1.0, (n, DIMS)) / np.sqrt(DIMS)).astype(np.float32)

    with tempfile.TemporaryDirectory() as tmp:
        mpath = os.path.join(tmp, "r.bin")
        ipath = os.path.join(tmp, "init.bin")
        write_matrix(mpath, R, mask)
        with open(ipath, "wb") as fp:
            fp.write(X0.astype("<f4").tobytes())
            fp.write(Y0.astype("<f4").tobytes())
        c_chol = run_tool(tool, mpath, ipath, "cholesky", tmp)
        c_cg = run_tool(tool, mpath, ipath, "cg", tmp)

    check(c_chol is not None and len(c_chol) == ITERS, "wals_run cholesky ran %d iterations" % ITERS)
    check(c_cg is not None and len(c_cg) == ITERS, "wals_run cg ran %d iterations" % ITERS)
    if c_chol is None or c_cg is None:
        print("%d passed, %d failed" % (passed, failed))
        return 1

    X = X0.astype(np.float64)
    Y = Y0.astype(np.float64)
    ref = []
    for it in range(ITERS):
        X = als_half(R, mask, Y, ALPHA, L2)
        Y = als_half(R.T, mask.T, X, ALPHA, L2)
        ref.append(loss(R, mask, X, Y, ALPHA, L2))
    for it in range(ITERS):
        rel = abs(c_chol[it] - ref[it]) / ref[it]
        check(rel < 1e-3, "iteration %d: numpy %.9g, wals cholesky %.9g (rel %.2g)" %
              (it, ref[it], c_chol[it], rel))
    check(all(c_chol[k + 1] <= c_chol[k] * (1 + 1e-6) for k in range(ITERS - 1)),
          "cholesky loss decreases")
    check(all(c_cg[k + 1] <= c_cg[k] * (1 + 1e-6) for k in range(ITERS - 1)),
          "cg loss decreases: " + " ".join("%.6g" % v for v in c_cg))
    check(abs(c_cg[-1] - ref[-1]) / ref[-1] < 0.05,
          "cg ends within 5%% of the exact curve (%.6g vs %.6g)" % (c_cg[-1], ref[-1]))
    print("elapsed %.1f s" % (time.time() - t0))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
