#!/usr/bin/python3
"""expected_model_ref.py: Expected Attention scores of a real model's prompt,
stated the way kvpress's ExpectedAttentionPress computes them, for
tests/test_evict.c (test_expected_model).

usage: expected_model_ref.py MODEL OUT.f64 TOKEN [TOKEN ...]
writes float64 scores [n_layers, n_kv_heads, n_tokens] (little-endian); the
n_sink = 4 sink tokens are +inf.

Independent of the C scorer (src/kv/evict_expected.c) at every step that
matters: the forward pass is tests/ref/model_ref.py's (float64); the query
statistics come from the attention inputs (the post-norm hidden states of
the prompt, the first n_sink dropped) through Wq, i.e. mean and covariance
of h and then mu = Wq mean(h), Sigma = Wq cov(h) Wq^T per head (kvpress),
never from logged queries; the future rotation is the mean of the model's
own RoPE matrices R_t (model_ref.rope applied to the identity) over
t in [n, n + 512); keys are model_ref's post-RoPE keys; the score is
softmax_j(mu'.k_j/sqrt(d) + k_j^T Sigma' k_j/(2d)) over the non-sink tokens,
the mean over the GQA group, times ||v_j||."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_ref  # noqa: E402

N_SINK, N_FUTURE = 4, 512


def capture_attention_inputs(model, tokens):
    """The post-norm input of every layer's attention (model_ref.forward's
    own rmsnorm calls, recorded by identity of the layer's att_norm)."""
    cfg, emb, layers, final_norm, head = model
    norms = {id(L["att_norm"]): i for i, L in enumerate(layers)}
    seen = {}
    plain = model_ref.rmsnorm

    def spy(x, w, eps):
        y = plain(x, w, eps)
        if id(w) in norms:
            seen[norms[id(w)]] = y
        return y

    model_ref.rmsnorm = spy
    try:
        model_ref.forward(model, tokens)
    finally:
        model_ref.rmsnorm = plain
    return [seen[i] for i in range(len(layers))]


def mean_rotation(cfg, start, future):
    """mean over t in [start, start + future) of the model's RoPE matrix R_t
    (model_ref.rope applied to the basis vectors)."""
    d = cfg["hd"]
    basis = np.tile(np.eye(d)[None, :, :], (start + future, 1, 1))   # [t, i, :] = e_i
    rot = model_ref.rope(basis, cfg, start + future)                # [t, i, :] = R_t e_i
    return rot[start:].transpose(0, 2, 1).mean(axis=0)


def expected_scores(cfg, L, h, n, future=N_FUTURE, parts=None):
    """kvpress's scores [n_kv, n] of the first n tokens of layer L, whose
    attention inputs are h (rows 0..n-1 used: the prompt). parts, when a
    dict, receives the two logit terms z_mean and z_cov [n_kv, G, n-sink]."""
    d, H, KV = cfg["hd"], cfg["n_heads"], cfg["n_kv"]
    G = H // KV
    Rbar = mean_rotation(cfg, n, future)
    h = h[:n]
    k = model_ref.rope((h @ L["wk"].T).reshape(n, KV, d), cfg, n)
    v = (h @ L["wv"].T).reshape(n, KV, d)
    hs = h[N_SINK:]
    mh = hs.mean(axis=0)
    ch = (hs - mh).T @ (hs - mh) / hs.shape[0]
    res = np.empty((KV, n))
    if parts is not None:
        parts["z_mean"] = np.empty((KV, G, n - N_SINK))
        parts["z_cov"] = np.empty((KV, G, n - N_SINK))
    for kvh in range(KV):
        acc = np.zeros(n - N_SINK)
        K = k[N_SINK:, kvh]
        for g in range(G):
            Wq = L["wq"][(kvh * G + g) * d:(kvh * G + g + 1) * d]
            mu = Rbar @ (Wq @ mh)
            S = Rbar @ (Wq @ ch @ Wq.T) @ Rbar.T
            z1 = K @ mu / np.sqrt(d)
            z2 = 0.5 * np.einsum("ji,ik,jk->j", K, S, K) / d
            if parts is not None:
                parts["z_mean"][kvh, g], parts["z_cov"][kvh, g] = z1, z2
            z = z1 + z2
            e = np.exp(z - z.max())
            acc += e / e.sum()
        res[kvh, :N_SINK] = np.inf
        res[kvh, N_SINK:] = acc / G * np.linalg.norm(v[N_SINK:, kvh], axis=1)
    return res


def load(path):
    return model_ref.load_hf(path) if os.path.isdir(path) else model_ref.load_llama2c(path)


def main():
    if len(sys.argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    path, out, tokens = sys.argv[1], sys.argv[2], [int(t) for t in sys.argv[3:]]
    model = load(path)
    cfg, _, layers, _, _ = model
    n = len(tokens)
    res = np.stack([expected_scores(cfg, L, h, n) for L, h in zip(layers, capture_attention_inputs(model, tokens))])
    res.astype("<f8").tofile(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
