#!/usr/bin/python3
"""gptq_ref.py: an independent NumPy GPTQ, written from the description of
the reference algorithm (IST-DASLab/gptq, ../shared/references section 4),
for tests/test_gptq.c.

    gptq_ref.py DIR FORMAT ACT_ORDER DAMP

DIR holds meta.txt ("rows cols"), W.bin (rows x cols float32) and H.bin
(cols x cols float64); Q.bin (rows x cols float32, the dequantized GPTQ
result in the original column order) is written there.

Formats: int4_g32 (symmetric, FP16 scale amax/7, codes -7..7),
int4_g32_asym (FP16 scale (max-min)/15 with min <= 0 <= max, zero point
round(-min/scale) in 0..15), mxfp4 (E8M0 scale 2^(floor(log2 amax) - 2), E2M1
elements rounded to nearest, ties to the even code, saturating at 6).

The algorithm is the plain (not lazily batched) one: for each column i in
turn, q = Q(w_i), err = (w_i - q) / U_ii, W[:, i+1:] -= outer(err, U[i, i+1:]),
with U the upper Cholesky factor of (H + damp * mean(diag H) I)^-1 after
dead columns (H_ii = 0: H_ii = 1, weights zeroed). Without act order each
block's scale is set from the row's current weights when its first column
is reached; with act order, columns go in descending diag H (a stable sort:
equal diagonals keep ascending index) and every block's scale is set up
front from the original weights (static groups)."""
import sys
import numpy as np

F32 = np.float32
G = 32
FP4 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0], dtype=np.float64)


def f16(x):
    """float32 -> float16 (nearest even) -> float32, as the FP16 scale store."""
    return np.asarray(x, dtype=F32).astype(np.float16).astype(F32)


def grid_params(fmt, x):
    """Scale parameters of blocks x (rows x 32, float32): a tuple per format."""
    x = x.astype(F32)
    if fmt == "int4_g32":
        amax = np.max(np.abs(x), axis=1)
        d = f16(amax / F32(7))
        inv = np.where(d > 0, F32(1) / np.where(d > 0, d, F32(1)), F32(0)).astype(F32)
        return (d, inv)
    if fmt == "int4_g32_asym":
        mn = np.minimum(np.min(x, axis=1), F32(0))
        mx = np.maximum(np.max(x, axis=1), F32(0))
        d = f16((mx - mn) / F32(15))
        inv = np.where(d > 0, F32(1) / np.where(d > 0, d, F32(1)), F32(0)).astype(F32)
        z = np.clip(np.rint(-mn * inv), 0, 15).astype(F32)
        return (d, inv, z)
    if fmt == "mxfp4":
        amax = np.max(np.abs(x), axis=1).astype(np.float64)
        m, e2 = np.frexp(amax)               # amax = m 2^e2, m in [0.5, 1)
        e = np.where(amax > 0, e2 - 1 - 2, -127)
        e = np.clip(e, -127, 127)
        return (e.astype(np.int64),)
    raise SystemExit("gptq_ref.py: unknown format " + fmt)


def fp4_round(v):
    """Nearest E2M1 magnitude of |v| (ties to the even code), with v's sign."""
    a = np.minimum(np.abs(v), 6.0)
    dist = np.abs(a[:, None] - FP4[None, :])
    best = np.min(dist, axis=1)
    code = np.empty(len(a), dtype=np.int64)
    for r in range(len(a)):
        ties = np.nonzero(dist[r] == best[r])[0]
        even = [c for c in ties if c % 2 == 0]
        code[r] = even[0] if even else ties[0]
    return np.where(np.signbit(v), -1.0, 1.0) * FP4[code]


def quantize(fmt, p, rows_sel, w):
    """Round the column w (float64, one value per row in rows_sel) with the
    parameters p of each row's block; returns float64 values."""
    x = w.astype(F32)
    if fmt == "int4_g32":
        d, inv = p[0][rows_sel], p[1][rows_sel]
        q = np.clip(np.rint(x * inv), -7, 7).astype(F32)
        return (q * d).astype(F32).astype(np.float64)
    if fmt == "int4_g32_asym":
        d, inv, z = p[0][rows_sel], p[1][rows_sel], p[2][rows_sel]
        q = np.clip(np.rint(x * inv) + z, 0, 15).astype(F32)
        return ((q - z) * d).astype(F32).astype(np.float64)
    e = p[0][rows_sel]
    v = x.astype(np.float64) * np.ldexp(1.0, -e)   # exact: a power-of-two scaling of a float32
    return (fp4_round(v) * np.ldexp(1.0, e)).astype(F32).astype(np.float64)


def upper_factor(H):
    """U upper with U^T U = H^-1."""
    L = np.linalg.cholesky(H)
    Li = np.linalg.inv(L)
    Hinv = Li.T @ Li
    return np.linalg.cholesky(Hinv).T


def gptq(fmt, W, H, act_order, damp):
    rows, n = W.shape
    W = W.astype(np.float64).copy()
    H = H.copy()
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    nb = n // G
    params = [None] * nb
    if act_order:
        for b in range(nb):
            params[b] = grid_params(fmt, W[:, b * G:(b + 1) * G])
        perm = np.argsort(-np.diag(H), kind="stable")
    else:
        perm = np.arange(n)
    H = H[np.ix_(perm, perm)]
    W = W[:, perm]
    H = H + damp * np.mean(np.diag(H)) * np.eye(n)
    U = upper_factor(H)
    Q = np.zeros((rows, n))
    everyone = np.arange(rows)
    for i in range(n):
        col = perm[i]
        if not act_order and col % G == 0:
            params[col // G] = grid_params(fmt, W[:, i:i + G])
        q = quantize(fmt, params[col // G], everyone, W[:, i])
        Q[:, col] = q
        err = (W[:, i] - q) / U[i, i]
        W[:, i + 1:] -= np.outer(err, U[i, i + 1:])
    return Q


def main():
    d, fmt, act, damp = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    rows, cols = (int(t) for t in open(d + "/meta.txt").read().split())
    W = np.fromfile(d + "/W.bin", dtype=F32).reshape(rows, cols)
    H = np.fromfile(d + "/H.bin", dtype=np.float64).reshape(cols, cols)
    Q = gptq(fmt, W, H, act, damp)
    Q.astype(F32).tofile(d + "/Q.bin")


if __name__ == "__main__":
    main()
