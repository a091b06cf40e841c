#!/usr/bin/python3
"""Oracle: the matrix sources of ml/scores.c against numpy, on hand-made
groups (a 12-item matrix written out below, with a filtered item, an
oversized group and single-item groups, plus a seeded random 60-item one).

numpy computes, straight from the definitions in ml/scores.h, with the
seed's filters (items in >= MIN groups, groups of 2..MAX valid items):
  A      valid group × item incidence, |u| = row sums, freq = column sums
  cooc   AᵀA (off the diagonal);  cooc(γ) = cooc · freq(j)^γ
  pmi    cooc · (log2 cooc − log2 f_q − log2 f_j + log2 total)
  rp3    diag(f^-α) · (A·diag(|u|^-α))ᵀA · diag(f^-β)
  recommend: the sum of the inputs' rows, inputs and exclusions left out,
  candidates = items sharing a group with an input
and $ITEMVEC_TOOLS/scores_run answers the same similar / recommend
queries. Every list must agree: the same items in the same order (score
descending, ties by key) and scores within 1e-12 relative; near-ties
(within that tolerance) may come in either order.
"""
import os
import random
import subprocess
import sys

import numpy as np

MIN_FREQ = 2
MAX_SIZE = 6

# Hand-made: item 12 is in one group only (filtered at MIN_FREQ 2); the
# 8-item group is over MAX_SIZE; {12, 5} keeps one valid item (invalid).
HAND = [
    [1, 2, 3], [1, 2], [2, 3, 4], [1, 4], [5, 6, 7, 8], [5, 6], [6, 7], [1, 5, 9],
    [9, 10, 11], [10, 11], [2, 9, 10, 11], [3, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 7, 8],
    [12, 5], [7], [3, 8, 11], [1, 3], [4, 6, 8, 10],
]

PARAMS = [  # (source, γ, α, β): 0 cooc, 1 pmi, 2 rp3
    (0, 0.0, 0.5, -0.3), (0, 0.4, 0.5, -0.3), (0, -1.0, 0.5, -0.3), (0, 2.0, 0.5, -0.3),
    (1, 0.0, 0.5, -0.3), (2, 0.0, 0.5, -0.3), (2, 0.0, 1.0, 0.0), (2, 0.0, 0.0, 0.5),
    (2, 0.0, 0.25, -0.5), (2, 0.0, 2.0, 2.0), (2, 0.0, 0.75, 0.25),
]


def reference(groups):
    f = {}
    for g in groups:
        for i in g:
            f[i] = f.get(i, 0) + 1
    valid = [[i for i in g if f[i] >= MIN_FREQ] for g in groups]
    valid = [g for g in valid if 2 <= len(g) <= MAX_SIZE]
    keys = sorted({i for g in valid for i in g})
    dense = {k: d for d, k in enumerate(keys)}
    A = np.zeros((len(valid), len(keys)))
    for r, g in enumerate(valid):
        A[r, [dense[i] for i in g]] = 1
    return keys, dense, A


def scores(A, p):
    src, gamma, alpha, beta = p
    C = A.T @ A
    freq = np.diag(C).copy()
    size = A.sum(1)
    if src == 0:
        S = C * freq[None, :] ** gamma
    elif src == 1:
        with np.errstate(divide="ignore"):
            pmi = np.log2(C) - np.log2(freq)[:, None] - np.log2(freq)[None, :] + np.log2(freq.sum())
        S = C * np.where(C > 0, pmi, 0)
    else:
        W = (A * size[:, None] ** -alpha).T @ A
        S = freq[:, None] ** -alpha * W * freq[None, :] ** -beta
    return S, C > 0


def ranked(score, cand, keys, k):
    js = [j for j in range(len(keys)) if cand[j]]
    js.sort(key=lambda j: (-score[j], keys[j]))
    return [(keys[j], score[j]) for j in js[:k]]


def agree(got, want):
    if len(got) != len(want):
        return "length %d != %d" % (len(got), len(want))
    scale = max([abs(s) for _, s in want] + [1e-300])
    tol = 1e-12 * scale
    for t, ((gk, gs), (wk, ws)) in enumerate(zip(got, want)):
        if abs(gs - ws) > tol:
            return "position %d: score %r != %r" % (t, gs, ws)
        if gk != wk:
            # only a near-tie may swap: the other key must score the same
            near = [k for k, s in want if abs(s - ws) <= tol]
            if gk not in near:
                return "position %d: item %d != %d" % (t, gk, wk)
    return None


def run_case(name, groups, queries):
    keys, dense, A = reference(groups)
    lines = ["%d %d" % (MIN_FREQ, MAX_SIZE), str(len(groups))]
    lines += ["%d %s" % (len(g), " ".join(map(str, sorted(g)))) for g in groups]
    lines.append(str(len(queries)))
    expect = []
    for kind, p, k, a, b in queries:
        S, cand = scores(A, p)
        head = "%d %d %r %r %r %d" % (kind, p[0], p[1], p[2], p[3], k)
        if kind == 0:
            q = dense[a]
            c = cand[q].copy()
            c[q] = False
            expect.append(ranked(S[q], c, keys, k))
            lines.append("%s %d" % (head, a))
        else:
            ins = [dense[i] for i in dict.fromkeys(a) if i in dense]
            total = S[ins].sum(0)
            c = cand[ins].any(0)
            c[ins] = False
            for e in b:
                if e in dense:
                    c[dense[e]] = False
            expect.append(ranked(total, c, keys, k))
            lines.append("%s %d %s %d %s" % (head, len(a), " ".join(map(str, a)), len(b),
                                            " ".join(map(str, b))))
    tool = os.path.join(os.environ.get("ITEMVEC_TOOLS", ""), "scores_run")
    out = subprocess.run([tool], input="\n".join(lines) + "\n", capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert len(out) == len(queries), (name, out)
    bad = 0
    for (kind, p, k, a, b), line, want in zip(queries, out, expect):
        got = [(int(x.split(":")[0]), float(x.split(":")[1])) for x in line.split()]
        why = agree(got, want)
        if why:
            bad += 1
            print("FAIL %s %s %r %r: %s\n  got  %r\n  want %r" % (name, "similar" if kind == 0
                  else "recommend", p, a, why, got, want))
    print("%s: %d queries over %d items, %d disagree" % (name, len(queries), len(keys), bad))
    return bad


def main():
    bad = 0
    keys = sorted({i for g in HAND for i in g if sum(i in h for h in HAND) >= MIN_FREQ})
    queries = []
    for p in PARAMS:
        for q in keys:
            queries.append((0, p, 20, q, []))
        queries.append((1, p, 20, [1, 5, 9], []))
        queries.append((1, p, 3, [2, 2, 10, 12], [3]))  # a repeat, an unknown, an exclusion
        queries.append((1, p, 20, [6, 7, 8], [1, 99]))
    bad += run_case("hand-made", HAND, queries)

    rnd = random.Random(15)
    groups = []
    for _ in range(300):
        n = rnd.choice([1, 2, 2, 3, 3, 4, 5, 6, 7, 9])
        groups.append(sorted(set(min(60, int(rnd.paretovariate(0.8))) for _ in range(n))))
    queries = []
    rkeys, _, _ = reference(groups)
    for p in PARAMS:
        for q in rkeys[::3]:
            queries.append((0, p, 10, q, []))
        for t in range(10):
            queries.append((1, p, 10, rnd.sample(rkeys, 1 + t % 5), rnd.sample(rkeys, t % 3)))
    bad += run_case("random", groups, queries)
    if bad:
        print("FAIL: %d lists disagree with numpy" % bad)
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
