#!/usr/bin/env python3
"""Prototype behind docs/quality.md, "Sources": on a public dataset, with the
evaluate job's split (seeded FNV-1a/splitmix64 hash of the playlist id, 10%
held out, seed 0) and the seed's filters, compares the served sources for
similar items (recall@10, hit@10, coverage@10 per query item) and for playlist
continuation (half of each held-out playlist in, the rest to find):

  cooc(γ)      cooc(q, j) · freq(j)^γ
  rp3(α, β)    freq(q)^-α · Σ_{u ∋ q, j} |u|^-α · freq(j)^-β   (P³α / RP³β)
  pmi          cooc · pmi (the seed's score)
  popularity   freq(j)

Dense numpy; prints numbers, never fails. Ties by item id (strcmp order).

    /usr/bin/python3 bench/sources_prototype.py [yes_small|yes_big|groceries]
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
import itemvec_data as D  # noqa: E402

M64 = (1 << 64) - 1


def id_hash(s, seed=0):
    h = 0xCBF29CE484222325 ^ seed
    for b in s.encode():
        h ^= b
        h = (h * 0x100000001B3) & M64
    h = (h + 0x9E3779B97F4A7C15) & M64
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & M64
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & M64
    return h ^ (h >> 31)


def mix(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def load(name):
    ds = D.load_groceries() if name == "groceries" else D.load_yes(name)
    key = {}
    groups = []
    for items in ds.playlists:
        ks = set()
        for raw in items:
            iid = ds.item_id(raw)
            if iid not in key:
                key[iid] = len(key) + 1
            ks.add(key[iid])
        groups.append(sorted(ks))
    ids = {k: i for i, k in key.items()}
    return ds.playlist_ids, groups, ids


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else "yes_small"
    pids, groups, ids = load(name)
    held = [(id_hash(p) >> 11) * (1.0 / 9007199254740992.0) < 0.1 for p in pids]
    train = [g for g, h in zip(groups, held) if not h]
    test = [g for g, h in zip(groups, held) if h]
    f = {}
    for g in train:
        for i in g:
            f[i] = f.get(i, 0) + 1
    vg = [[i for i in g if f[i] >= 15] for g in train]
    vg = [g for g in vg if 2 <= len(g) <= 100]
    keys = sorted({i for g in vg for i in g})
    dense = {k: d for d, k in enumerate(keys)}
    n = len(keys)
    A = np.zeros((len(vg), n), np.float64)
    for r, g in enumerate(vg):
        A[r, [dense[i] for i in g]] = 1
    size = A.sum(1)
    C = A.T @ A
    freq = np.diag(C).copy()
    total = freq.sum()
    with np.errstate(divide="ignore"):
        pmi = np.log2(C) - np.log2(freq)[:, None] - np.log2(freq)[None, :] + np.log2(total)
    pmi[C == 0] = 0
    nz = C > 0
    idorder = sorted(range(n), key=lambda d: ids[keys[d]].encode())
    tie = np.empty(n, np.int64)
    tie[idorder] = np.arange(n)
    lists = [[dense[i] for i in g if i in dense] for g in test]
    lists = [x for x in lists if len(x) >= 2]
    print("%s: items %d, train groups %d, scored lists %d" % (name, n, len(vg), len(lists)))

    def topk(row, valid, k):
        cand = np.nonzero(valid)[0]
        o = np.lexsort((tie[cand], -row[cand]))
        return cand[o[:k]]

    def similar(S, valid, k=10):
        rec, hit, cov = [], 0, set()
        tops = {}
        for x in lists:
            s = set(x)
            for q in x:
                if q not in tops:
                    v = valid[q].copy()
                    v[q] = False
                    tops[q] = topk(S[q], v, k)
                t = tops[q]
                cov.update(t.tolist())
                found = len((s - {q}) & set(t.tolist()))
                rec.append(found / min(k, len(s) - 1))
                hit += found > 0
        return np.mean(rec), hit / len(rec), len(cov) / n

    def continuation(S, valid, k=10):
        rec, hit = [], 0
        for li, x in enumerate(lists):
            o = sorted(x, key=lambda d: mix(keys[d] ^ (li * 0)))
            half = len(o) // 2
            inp, R = o[:half], set(o[half:])
            score = S[inp].sum(0)
            v = valid[inp].any(0)
            v[inp] = False
            t = topk(score, v, k)
            found = len(R & set(t.tolist()))
            rec.append(found / min(k, len(R)))
            hit += found > 0
        return np.mean(rec), hit / len(rec)

    def show(label, S, valid):
        r, h, c = similar(S, valid)
        cr, ch = continuation(S, valid)
        print("%-22s similar %.4f / %.3f / %.3f   continuation %.4f / %.3f" % (label, r, h, c, cr, ch),
              flush=True)

    allv = np.ones((n, n), bool)
    show("popularity", np.tile(freq, (n, 1)), allv)
    show("pmi", C * pmi, nz)
    for g in (0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0):
        show("cooc γ=%.1f" % g, C * freq[None, :] ** g, nz)
    for a in (0, 0.25, 0.5, 0.75, 1.0):
        W = (A * size[:, None] ** -a).T @ A
        for b in (-0.5, -0.3, -0.1, 0, 0.1, 0.25, 0.5):
            show("rp3 α=%.2f β=%.2f" % (a, b), W * freq[:, None] ** -a * freq[None, :] ** -b, nz)


if __name__ == "__main__":
    main()
