"""qronos_ref.py: independent NumPy reference of lowbit's Qronos
(src/quant/qronos.c, after Brevitas' qronos.py) for int4_g32 (symmetric,
FP16 scale, floor rule), written from the algorithm, not from the C code.

usage: qronos_ref.py IN OUT
IN : int64 rows, n; float32 W (rows, n); float64 H, Hq, Hqx (n, n)
     (H = mean x x^T, Hq = mean xq xq^T, Hqx = mean xq x^T)
OUT: float64 loss (mean ||W x - Q xq||^2); float32 Q (rows, n) dequantized

Grid: each 32-block's scale from the original W (fp16(amax/7)), fixed.
lambda = 1e-6 sigma_max(Hq) (30 power iterations from ones/sqrt(n)).
Step 1 (Brevitas): v0 = (W G[:,0] - V triu(Hq,1)[0,:]) / Hq00, G = Hqx^T,
V = W with dead columns zeroed; q0 = Q(v0); iH = (Hq + lI)^-1, its
Sherman-Morrison downdate A = (Hq + lI)[1:,1:]^-1; V[:,1:] =
(W (G + lI)[:,1:] - q0 Hq[0,1:]) A. Step 2: GPTQ over columns 1.. with
L = upper Cholesky factor of A."""
import sys
import numpy as np


def main():
    raw = open(sys.argv[1], "rb").read()
    rows, n = (int(v) for v in np.frombuffer(raw, np.int64, 2))
    off = 16
    W = np.frombuffer(raw, np.float32, rows * n, off).reshape(rows, n); off += 4 * rows * n
    mats = []
    for _ in range(3):
        mats.append(np.frombuffer(raw, np.float64, n * n, off).reshape(n, n)); off += 8 * n * n
    H, Hq, Hqx = mats
    G = Hqx.T

    amax = np.abs(W.reshape(rows, n // 32, 32)).max(axis=2).astype(np.float32)
    sd = (amax / np.float32(7)).astype(np.float16).astype(np.float32)      # (rows, blocks)
    with np.errstate(divide="ignore"):
        inv = np.where(sd > 0, np.float32(1) / sd, np.float32(0)).astype(np.float32)

    def quant(v, j):
        q = np.clip(np.rint(v.astype(np.float32) * inv[:, j // 32]), -7, 7).astype(np.float32)
        return (q * sd[:, j // 32]).astype(np.float32).astype(np.float64)

    v = np.ones(n) / np.sqrt(n)
    sig = 0.0
    for _ in range(30):
        u = Hq @ v
        sig = np.linalg.norm(u)
        v = u / sig
    lam = 1e-6 * sig

    Wd = W.astype(np.float64)
    dead = np.diag(Hq) == 0
    V = Wd.copy()
    V[:, dead] = 0
    Dhi = 1.0 / Hq[0, 0] if Hq[0, 0] != 0 else 0.0
    V[:, 0] = Wd @ G[:, 0] * Dhi - V @ np.triu(Hq, 1)[0, :] * Dhi
    Q = np.zeros((rows, n))
    Q[:, 0] = quant(V[:, 0], 0)
    iH = np.linalg.inv(Hq + lam * np.eye(n))
    A = iH[1:, 1:] - np.outer(iH[1:, 0], iH[1:, 0]) / iH[0, 0]
    Gd = G + lam * np.eye(n)
    V[:, 1:] = (Wd @ Gd[:, 1:] - np.outer(Q[:, 0], Hq[0, 1:])) @ A
    V[:, 0] = Q[:, 0]
    L = np.linalg.cholesky(A).T        # upper: A = L^T L
    for j in range(1, n):
        Q[:, j] = quant(V[:, j], j)
        e = (V[:, j] - Q[:, j]) / L[j - 1, j - 1]
        V[:, j + 1:] -= np.outer(e, L[j - 1, j:])
        V[:, j] = Q[:, j]
    loss = np.sum((Wd @ H) * Wd) - 2 * np.sum((Q @ Hqx) * Wd) + np.sum((Q @ Hq) * Q)
    with open(sys.argv[2], "wb") as f:
        f.write(np.array([loss], np.float64).tobytes())
        f.write(Q.astype(np.float32).tobytes())


main()
