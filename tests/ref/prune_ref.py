#!/usr/bin/env python3
"""Independent NumPy reference of lowbit's pruning (docs/sparsity.md), written
from the Wanda and SparseGPT reference code (locuslab/wanda lib/prune.py,
IST-DASLab/sparsegpt sparsegpt.py), vectorised the way they are.

usage: prune_ref.py IN OUT CRITERION PATTERN RATIO DAMP BLOCK ROWS COLS
IN holds W (float32, rows x cols), sq (float64, cols), H (float64, cols x cols);
OUT gets keep (uint8, rows x cols) then the pruned W (float64, rows x cols).
CRITERION "sparsegpt+int4_g32" is SparseGPT's joint prune-and-quantize mode
(the reference's fasterprune with a quantizer): inside the column loop,
after the mask decision, the kept weight is rounded onto its block's grid
and (w - q) / U_ii propagated; the grids belong to blocks of 32 consecutive
kept values of a row (the packed layout), each set when the first column of
its span (32 / N groups of M) is reached, from the current weights the
pattern would keep on the whole span then. int4_g32: FP16 scale amax / 7
(nearest even), codes round(x / scale) in [-7, 7], all in float32.
Ties: the lowest score is pruned first, equal scores the lower index first
(argsort kind="stable")."""
import sys
import numpy as np


def parse(pattern):
    parts = [int(x) for x in pattern.split(":")] if pattern != "unstructured" else []
    if len(parts) == 2:
        return ("nm", 0, parts[0], parts[1])
    if len(parts) == 3:
        return ("vnm", parts[0], parts[1], parts[2])
    return ("un", 0, 0, 0)


def select(kind, v, n, m, ratio, S):
    """Mask (True = kept) of the pattern for scores S (rows x cols)."""
    rows, cols = S.shape
    keep = np.ones(S.shape, dtype=bool)
    if kind == "un":
        k = int(np.floor(cols * ratio))
        order = np.argsort(S, axis=1, kind="stable")
        np.put_along_axis(keep, order[:, :k], False, axis=1)
        return keep
    full = cols // m * m if kind == "vnm" else 0
    for c in range(full, cols, m):       # N:M groups (V:N:M: only the tail)
        g = min(m, cols - c)
        drop = g - n * g // m
        order = np.argsort(S[:, c:c + g], axis=1, kind="stable")
        np.put_along_axis(keep[:, c:c + g], order[:, :drop], False, axis=1)
    for r0 in range(0, rows, max(v, 1)):
        if kind != "vnm":
            break
        r1 = min(rows, r0 + v)
        for c in range(0, full, m):
            blk = S[r0:r1, c:c + m]
            colsum = np.zeros(m)
            for r in range(blk.shape[0]):   # sum in row order, as the C code
                colsum += blk[r]
            four = np.sort(np.argsort(colsum, kind="stable")[m - 4:])
            sub = blk[:, four]
            order = np.argsort(sub, axis=1, kind="stable")
            kb = np.zeros(blk.shape, dtype=bool)
            for r in range(blk.shape[0]):
                kb[r, four[order[r, 4 - n:]]] = True
            keep[r0:r1, c:c + m] = kb
    return keep


def sparsegpt(W, H, kind, v, n, m, ratio, damp, block, rows_groups=False):
    W = W.astype(np.float64).copy()
    H = H.copy()
    rows, cols = W.shape
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H[np.diag_indices(cols)] += damp * np.mean(np.diag(H))
    Hinv = np.linalg.cholesky(np.linalg.inv(H)).T      # upper U, H^-1 = U^T U
    mm = 1 if kind == "un" else m
    B = max(mm, block // mm * mm)
    keep = np.ones(W.shape, dtype=bool)
    for i1 in range(0, cols, B):
        i2 = min(i1 + B, cols)
        W1 = W[:, i1:i2].copy()
        Hinv1 = Hinv[i1:i2, i1:i2]
        Err1 = np.zeros_like(W1)
        d = np.diag(Hinv1)
        if kind == "un" and rows_groups:   # each row of the block prunes its own lowest
            mask1 = select("un", 0, 0, 0, ratio, W1 ** 2 / d.reshape(1, -1) ** 2)
        elif kind == "un":
            tmp = W1 ** 2 / d.reshape(1, -1) ** 2
            k = int(np.floor(tmp.size * ratio))
            flat = np.ones(tmp.size, dtype=bool)
            flat[np.argsort(tmp.ravel(), kind="stable")[:k]] = False
            mask1 = flat.reshape(tmp.shape)
        else:
            mask1 = np.ones(W1.shape, dtype=bool)
        for i in range(i2 - i1):
            if kind != "un" and i % m == 0:
                g = min(m, i2 - i1 - i)
                tmp = W1[:, i:i + g] ** 2 / d[i:i + g].reshape(1, -1) ** 2
                sub = ("nm", 0, n, m) if kind == "nm" else (kind, v, n, m)
                mask1[:, i:i + g] = select(sub[0], sub[1], sub[2], sub[3], ratio, tmp)
            w = W1[:, i]
            q = np.where(mask1[:, i], w, 0.0)
            err = (w - q) / Hinv1[i, i]
            W1[:, i:] -= np.outer(err, Hinv1[i, i:])
            W1[:, i] = q
            Err1[:, i] = err
        W[:, i1:i2] = W1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
        keep[:, i1:i2] = mask1
    return keep, np.where(keep, W, 0.0)


def f16(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


def int4_grid(vals):
    """(scale, inverse) of the int4_g32 block of float32 values vals."""
    d = f16(np.max(np.abs(vals)) / np.float32(7))
    return d, (np.float32(1) / d if d > 0 else np.float32(0))


def int4_round(x, d, inv):
    q = np.clip(np.rint(np.float32(x) * inv), -7, 7).astype(np.float32)
    return float(np.float32(q * d))


def sparsegpt_joint(W, H, kind, v, n, m, damp):
    W = W.astype(np.float64).copy()
    H = H.copy()
    rows, cols = W.shape
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H[np.diag_indices(cols)] += damp * np.mean(np.diag(H))
    U = np.linalg.cholesky(np.linalg.inv(H)).T
    d = np.diag(U)
    G = 32
    span = G // n * m
    nblocks = int(np.sum(select(kind, v, n, m, 0.0, np.ones((1, cols))))) // G   # kept per row / 32
    keep = np.zeros(W.shape, dtype=bool)
    grids = {}
    used = np.zeros(rows, dtype=np.int64)
    for i in range(cols):
        if i % span == 0 and i // span < nblocks:
            c1 = min(cols, i + span)
            prov = select(kind, v, n, m, 0.0, W[:, i:c1] ** 2 / d[i:c1].reshape(1, -1) ** 2)
            for r in range(rows):
                vals = W[r, i:c1][prov[r]].astype(np.float32)
                assert len(vals) == G, "span does not hold a whole block"
                grids[(r, i // span)] = int4_grid(vals)
        if i % m == 0:
            g = min(m, cols - i)
            sub = ("nm", 0) if kind == "nm" else (kind, v)
            keep[:, i:i + g] = select(sub[0], sub[1], n, m, 0.0, W[:, i:i + g] ** 2 / d[i:i + g].reshape(1, -1) ** 2)
        w = W[:, i].copy()
        q = np.zeros(rows)
        for r in range(rows):
            if keep[r, i]:
                dd, inv = grids[(r, used[r] // G)]
                used[r] += 1
                q[r] = int4_round(w[r], dd, inv)
        err = (w - q) / U[i, i]
        W[:, i:] -= np.outer(err, U[i, i:])
        W[:, i] = q
    return keep, np.where(keep, W, 0.0)


def main():
    src, dst, crit, pattern = sys.argv[1:5]
    ratio, damp = float(sys.argv[5]), float(sys.argv[6])
    block, rows, cols = int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
    raw = open(src, "rb").read()
    W = np.frombuffer(raw, np.float32, rows * cols).reshape(rows, cols)
    sq = np.frombuffer(raw, np.float64, cols, 4 * rows * cols)
    H = np.frombuffer(raw, np.float64, cols * cols, 4 * rows * cols + 8 * cols).reshape(cols, cols)
    kind, v, n, m = parse(pattern)
    if crit == "sparsegpt+int4_g32":
        keep, Wp = sparsegpt_joint(W, H, kind, v, n, m, damp)
    elif crit in ("sparsegpt", "sparsegpt:rows"):
        keep, Wp = sparsegpt(W, H, kind, v, n, m, ratio, damp, block, crit == "sparsegpt:rows")
    else:
        S = np.abs(W.astype(np.float64))
        if crit == "wanda":
            S = S * np.sqrt(np.maximum(sq, 0)).reshape(1, -1)
        keep = select(kind, v, n, m, ratio, S)
        Wp = np.where(keep, W.astype(np.float64), 0.0)
    with open(dst, "wb") as f:
        f.write(keep.astype(np.uint8).tobytes())
        f.write(Wp.astype(np.float64).tobytes())


if __name__ == "__main__":
    main()
