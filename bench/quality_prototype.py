#!/usr/bin/env python3
"""Prototype behind docs/quality.md, "Why the seed's embeddings lose half the
signal": on yes_small (or yes_big) with its own random 10% playlist split,
compares the co-occurrence baseline with eigen-factorisations of several
targets ranked by cosine (what itemvec serves) and by inner product, using
the evaluate job's metric (recall@10, ties by index). Dense numpy, so it
needs ~1 GB and a minute or two; prints numbers, never fails.

    /usr/bin/python3 bench/quality_prototype.py [yes_small|yes_big]
"""
import os
import random
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
import itemvec_data as D  # noqa: E402


def main():
    ds = D.load_yes(sys.argv[1] if len(sys.argv) > 1 else "yes_small")
    rnd = random.Random(1)
    pls = [sorted(set(p)) for p in ds.playlists]
    held = [rnd.random() < 0.1 for _ in pls]
    train = [p for p, h in zip(pls, held) if not h]
    test = [p for p, h in zip(pls, held) if h]
    # the seed's filters: items in >= 15 playlists, playlists of 2..100 valid items
    f = {}
    for p in train:
        for i in p:
            f[i] = f.get(i, 0) + 1
    train = [[i for i in p if f[i] >= 15] for p in train]
    train = [p for p in train if 2 <= len(p) <= 100]
    items = sorted({i for p in train for i in p})
    idx = {i: k for k, i in enumerate(items)}
    n = len(items)
    A = np.zeros((len(train), n), np.float32)
    for g, p in enumerate(train):
        A[g, [idx[i] for i in p]] = 1
    C = (A.T @ A).astype(np.float64)
    freq = np.diag(C).copy()
    total = freq.sum()
    with np.errstate(divide="ignore"):
        pmi = np.log2(C) - np.log2(freq)[:, None] - np.log2(freq)[None, :] + np.log2(total)
    pmi[C == 0] = 0
    lists = [[idx[i] for i in p if i in idx] for p in test]
    lists = [x for x in lists if len(x) >= 2]

    def recall(S, k=10):
        S = S.copy()
        np.fill_diagonal(S, -np.inf)
        top = np.argsort(-S, axis=1, kind="stable")[:, :k]
        out = []
        for x in lists:
            s = set(x)
            for q in x:
                R = s - {q}
                out.append(len(R & set(top[q].tolist())) / min(k, len(R)))
        return np.mean(out)

    def cosine(E):
        E = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-30)
        return recall(E @ E.T)

    print("items %d, scored lists %d" % (n, len(lists)))
    print("cooc                       %.4f" % recall(C))
    print("cooc·pmi                   %.4f" % recall(C * pmi))
    print("cooc/sqrt(f_j) (full-rank cosine order) %.4f" % recall(C / np.sqrt(freq)[None, :]))
    print("cooc/f_j^0.25              %.4f" % recall(C / freq[None, :] ** 0.25))
    targets = [("log(1+cooc)", np.log1p(C)), ("positive pmi", np.maximum(pmi, 0)),
               ("sppmi shift 2", np.maximum(pmi - 2, 0) * (C > 0)),
               ("cooc/sqrt(f f)", C / np.sqrt(np.outer(freq, freq))), ("cooc·pmi", C * pmi)]
    for name, T in targets:
        w, V = np.linalg.eigh(T)
        for f_ in (50, 200):
            o = np.argsort(-np.abs(w))[:f_]
            E = V[:, o] * np.abs(w[o]) ** 0.5
            line = "%-16s rank %3d  cosine %.4f" % (name, f_, cosine(E))
            if f_ == 50:
                line += "  inner product %.4f" % recall((V[:, o] * w[o]) @ V[:, o].T)
                line += "  corr(|e|, log f) %.2f" % np.corrcoef(np.linalg.norm(E, axis=1), np.log(freq))[0, 1]
            print(line, flush=True)


if __name__ == "__main__":
    main()
