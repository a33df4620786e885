"""awq_ref.py: independent NumPy reference of lowbit's AWQ alpha search
(src/quant/awq.c) for int4_g32 (symmetric, FP16 scale, floor rule).

usage: awq_ref.py IN OUT
IN : int64 rows, n; float32 W (rows, n); float64 H (n, n); float64 abs (n)
OUT: float64 alpha, float64 err; float32 Y (rows, n) = dequant * col_scale

For alpha = k/20, k = 0..19: a = max(abs, 1e-4 max abs), s = a^alpha,
s /= sqrt(max s * min s); W diag(s) rounded to nearest on int4_g32 (scale =
fp16(amax/7), code = clip(rint(x / scale), -7, 7)); Y = dequant * float32(1/s);
err = tr((W - Y) H (W - Y)^T). The first alpha with the least err wins."""
import sys
import numpy as np


def int4_g32(x):
    rows, n = x.shape
    b = x.reshape(rows, n // 32, 32)
    amax = np.abs(b).max(axis=2, keepdims=True).astype(np.float32)
    sd = (amax / np.float32(7)).astype(np.float16).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(sd > 0, np.float32(1) / sd, np.float32(0)).astype(np.float32)
    q = np.clip(np.rint(b * inv), -7, 7).astype(np.float32)
    return (q * sd).astype(np.float32).reshape(rows, n)


def main():
    raw = open(sys.argv[1], "rb").read()
    rows, n = np.frombuffer(raw, np.int64, 2)
    off = 16
    W = np.frombuffer(raw, np.float32, rows * n, off).reshape(rows, n); off += 4 * rows * n
    H = np.frombuffer(raw, np.float64, n * n, off).reshape(n, n); off += 8 * n * n
    a = np.frombuffer(raw, np.float64, n, off)
    amax = a.max()
    a = np.where(a > 1e-4 * amax, a, 1e-4 * amax) if amax > 0 else np.ones(n)
    best = (np.inf, None, None)
    for k in range(20):
        alpha = k / 20
        s = np.power(a, alpha)
        s = s / np.sqrt(s.max() * s.min())
        ws = (W * s.astype(np.float32)).astype(np.float32)
        c = (1.0 / s).astype(np.float32)
        Y = (int4_g32(ws) * c).astype(np.float32)
        E = W.astype(np.float64) - Y.astype(np.float64)
        err = float(np.sum((E @ H) * E))
        if err < best[0]:
            best = (err, alpha, Y)
    with open(sys.argv[2], "wb") as f:
        f.write(np.array([best[1], best[0]], np.float64).tobytes())
        f.write(best[2].astype(np.float32).tobytes())


main()
