#!/usr/bin/python3
"""evict_ref.py: independent NumPy statement of the KV eviction scorers and
selection rules (src/kv/score.c, src/kv/evict.c), for tests/test_evict.c.

Usage: evict_ref.py IN OUT. IN (little-endian, written by the test):
  int64[16]  T hd group nq interleaved next_pos n_sink window kernel page
             n_future qbuf cov vnorm n_ratio H
  float64[2] eps alpha
  float32 k[T*hd] v[T*hd]; int64 pos[T]; float32 q[nq*group*hd]; int64 qpos[nq]
  float64 inv_freq[hd/2]; float32 sel[T]; float64 ratios[n_ratio]
  int64 Th[H] keep[H]; float32 scores of head h [Th[h]] for h in 0..H-1
OUT: float64 scores[T] for knorm keydiff paged streaming snapkv tova observed
expected; then per ratio: int64 n, idx[n]; then AdaKV: per head int64 n,
idx[n]; then int64 the page the paged rule drops at decode.

Written from the method descriptions (kvpress semantics), not from the C:
full rotation matrices instead of pairwise rotations, matrix products
instead of loops, sorting by a key tuple instead of a comparator."""
import sys
import numpy as np


def read(f, dt, n):
    a = np.frombuffer(f.read(np.dtype(dt).itemsize * n), dtype=dt)
    assert a.size == n, "short input"
    return a


def rope_matrix(p, inv_freq, d, inter):
    """R_p as a d x d matrix: x -> x cos + rotate_half(x) sin per pair."""
    R = np.zeros((d, d))
    for i, f in enumerate(inv_freq):
        a, b = (2 * i, 2 * i + 1) if inter else (i, i + d // 2)
        c, s = np.cos(p * f), np.sin(p * f)
        R[a, a], R[a, b], R[b, a], R[b, b] = c, -s, s, c
    return R


def softmax(z):
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def causal_attn(K, pos, q, qp):
    d = K.shape[1]
    z = np.where(pos <= qp, K @ q / np.sqrt(d), -np.inf)
    return softmax(z)


def main():
    fin = open(sys.argv[1], "rb")
    (T, d, G, nq, inter, next_pos, n_sink, window, kernel, page, n_future, qbuf, cov, vnorm,
     n_ratio, H) = [int(x) for x in read(fin, "<i8", 16)]
    eps, alpha = read(fin, "<f8", 2)
    K = read(fin, "<f4", T * d).astype(np.float64).reshape(T, d)
    V = read(fin, "<f4", T * d).astype(np.float64).reshape(T, d)
    pos = read(fin, "<i8", T)
    Q = read(fin, "<f4", nq * G * d).astype(np.float64).reshape(nq, G, d)
    qpos = read(fin, "<i8", nq)
    inv_freq = read(fin, "<f8", d // 2)
    sel = read(fin, "<f4", T)
    ratios = read(fin, "<f8", n_ratio)
    Th = read(fin, "<i8", H)
    keep = read(fin, "<i8", H)
    heads = [read(fin, "<f4", int(t)) for t in Th]

    out = []
    kn = np.linalg.norm(K, axis=1)
    vn = np.linalg.norm(V, axis=1)
    out.append(-kn)                                   # knorm
    kh = K / kn[:, None]
    anchor = kh.mean(axis=0)
    out.append(-(kh @ anchor) / np.linalg.norm(anchor))  # keydiff
    paged = vn / kn                                   # paged
    last_start = ((T - 1) // page) * page
    paged[:page] = np.inf
    paged[last_start:] = np.inf
    out.append(paged)
    st = np.arange(T, dtype=np.float64)               # streaming
    st[pos < n_sink] = np.inf
    out.append(st)

    # snapkv: window queries, mean over them, avg_pool1d(kernel, pad, count_include_pad), mean over group
    w = min(window, nq, T)
    A = np.array([[causal_attn(K, pos, Q[i, g], qpos[i]) for i in range(nq - w, nq)] for g in range(G)])
    s = A.mean(axis=1)[:, : T - w]                    # (G, T-w)
    r = kernel // 2
    padded = np.pad(s, ((0, 0), (r, r)))
    pooled = np.stack([padded[:, j: j + kernel].sum(axis=1) / kernel for j in range(T - w)], axis=1)
    out.append(np.concatenate([pooled.mean(axis=0), np.full(w, np.inf)]))

    # tova: the last query, mean over group, last token kept
    t = np.mean([causal_attn(K, pos, Q[nq - 1, g], qpos[nq - 1]) for g in range(G)], axis=0)
    t[T - 1] = np.inf
    out.append(t)

    # observed: sum of attention over all queries / number of queries that see the token
    tot = sum(causal_attn(K, pos, Q[i, g], qpos[i]) for i in range(nq) for g in range(G))
    seen = np.array([(qpos >= p).sum() for p in pos], dtype=np.float64)
    out.append(np.where(seen > 0, tot / np.maximum(seen, 1) / G, 0.0))

    # expected attention
    use = [i for i in range(max(0, nq - qbuf) if qbuf > 0 else 0, nq) if qpos[i] >= n_sink]
    Rbar = np.mean([rope_matrix(next_pos + t_, inv_freq, d, inter) for t_ in range(n_future)], axis=0)
    acc = np.zeros(T)
    for g in range(G):
        pre = np.array([rope_matrix(qpos[i], inv_freq, d, inter).T @ Q[i, g] for i in use])
        mu = pre.mean(axis=0)
        S = (pre - mu).T @ (pre - mu) / len(use)
        mu2, S2 = Rbar @ mu, Rbar @ S @ Rbar.T
        z = K @ mu2 / np.sqrt(d)
        if cov:
            z = z + 0.5 * np.einsum("ji,ik,jk->j", K, S2, K) / d
        ns = pos >= n_sink          # the softmax leaves the sinks out (kvpress)
        sm = np.zeros(T)
        sm[ns] = softmax(z[ns])
        acc += sm
    ea = acc / G + eps
    if vnorm:
        ea = ea * vn
    ea[pos < n_sink] = np.inf
    out.append(ea)

    fo = open(sys.argv[2], "wb")
    for a in out:
        fo.write(np.asarray(a, dtype="<f8").tobytes())

    def order(scores, head=0):
        # NaN last; higher score first; ties: lower head, then the later token
        key = [(bool(np.isnan(x)), 0.0 if np.isnan(x) else -float(x), head, -i) for i, x in enumerate(scores)]
        return [-k[3] for k in sorted(key)], key

    for ratio in ratios:
        n = int(T * (1 - ratio))
        idx = sorted(order(sel)[0][:n])
        fo.write(np.array([n] + idx, dtype="<i8").tobytes())

    # AdaKV: per-head floor int(alpha keep), then one global ranking of the rest
    kept = []
    rest = []
    for h in range(H):
        o, key = order(heads[h], h)
        fl = int(alpha * keep[h])
        kept.append(set(o[:fl]))
        rest += [key[i] for i in o[fl:]]   # key[i] is token i's (keys hold -i)
    rest.sort()
    for k in rest[: int(keep.sum()) - sum(len(x) for x in kept)]:
        kept[k[2]].add(-k[3])
    for h in range(H):
        fo.write(np.array([len(kept[h])] + sorted(kept[h]), dtype="<i8").tobytes())

    # paged decode: lowest mean page, never first or last, earliest on ties
    npg = (T + page - 1) // page
    means = [paged[p * page:(p + 1) * page].mean() for p in range(1, npg - 1)]
    pick = -1 if not means else 1 + int(np.argmin(means))
    fo.write(np.array([pick], dtype="<i8").tobytes())


if __name__ == "__main__":
    main()
