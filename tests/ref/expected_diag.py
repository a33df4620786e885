#!/usr/bin/python3
"""expected_diag.py: why Expected Attention keeps what it keeps, per layer,
in float64 NumPy (model_ref.py's forward, expected_model_ref.py's kvpress
statement of the score). Not a test: the analysis behind docs/results.md.

usage: expected_diag.py MODEL IDS CTX CONT CHUNKS
IDS: token ids, space separated (lowbit tokenize --model MODEL --file TEXT).
Chunk c is ids[c L, (c + 1) L), L = CTX + CONT + 1, its first token BOS (1),
as lowbit eval kv cuts it. Per chunk and layer: A_j = the attention of the
CONT continuation queries (every query head of the group) to context token
j; the prompt's Expected Attention scores with future = 512, CONT and 1
positions. Printed per layer, mean over chunks and kv heads:
  oracle   attention the best CTX/2 tokens per head keep (ratio 0.5)
  ea@F     attention Expected Attention's kept half keeps, future F
  last64   attention the last 64 context tokens receive
  rho@F    Spearman correlation of the score with A_j (non-sink tokens)
  tiny     fraction of non-sink scores below 1e-6 of the head's maximum
  sd(mean), sd(cov)   spread over the tokens of the logit's two terms
                      mu'.k/sqrt(d) and k'S'k/(2d), future 512"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_ref  # noqa: E402
import expected_model_ref as ea  # noqa: E402


def ranks(x):
    r = np.empty(len(x))
    r[np.argsort(x, kind="stable")] = np.arange(len(x))
    return r


def kept_mass(score, A, keep):
    # higher first; ties to the later token (as lowbit's selection)
    order = sorted(range(len(score)), key=lambda j: (-score[j], -j))[:keep]
    return A[order].sum() / A.sum()


def main():
    if len(sys.argv) != 6:
        sys.stderr.write(__doc__)
        return 2
    path, idsf, ctx, cont, chunks = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    ids = [int(t) for t in open(idsf).read().split()]
    model = ea.load(path)
    cfg, _, layers, _, _ = model
    d, H, KV = cfg["hd"], cfg["n_heads"], cfg["n_kv"]
    G, Lc = H // KV, ctx + cont + 1
    fut = [512, cont, 1]
    keys = ["oracle"] + ["ea@%d" % f for f in fut] + ["last64"] + ["rho@%d" % f for f in fut] + \
        ["tiny", "sd(mean)", "sd(cov)"]
    stats = np.zeros((len(layers), len(keys)))
    n = 0
    for c in range(chunks):
        tok = ids[c * Lc:(c + 1) * Lc]
        if len(tok) < Lc:
            break
        tok = [1] + tok[1:ctx + cont]
        n += 1
        hs = ea.capture_attention_inputs(model, tok)
        for li, (L, h) in enumerate(zip(layers, hs)):
            T = ctx + cont
            q = model_ref.rope((h @ L["wq"].T).reshape(T, H, d), cfg, T)
            k = model_ref.rope((h @ L["wk"].T).reshape(T, KV, d), cfg, T)
            sc = {f: ea.expected_scores(cfg, L, h, ctx, f) for f in fut}
            parts = {}
            ea.expected_scores(cfg, L, h, ctx, 512, parts)
            for kvh in range(KV):
                A = np.zeros(ctx)
                for g in range(G):
                    for i in range(ctx, T):
                        z = k[:i + 1, kvh] @ q[i, kvh * G + g] / np.sqrt(d)
                        w = np.exp(z - z.max())
                        A += (w / w.sum())[:ctx]
                keep = ctx // 2
                row = [np.sort(A)[::-1][:keep].sum() / A.sum()]
                row += [kept_mass(sc[f][kvh], A, keep) for f in fut]
                row += [A[ctx - 64:].sum() / A.sum()]
                for f in fut:
                    s = sc[f][kvh][ea.N_SINK:]
                    row.append(np.corrcoef(ranks(s), ranks(A[ea.N_SINK:]))[0, 1])
                s = sc[512][kvh][ea.N_SINK:]
                row.append(np.mean(s < 1e-6 * s.max()))
                row.append(parts["z_mean"][kvh].std(axis=1).mean())
                row.append(parts["z_cov"][kvh].std(axis=1).mean())
                stats[li] += np.array(row) / KV
    stats /= max(n, 1)
    print("%s: %d chunks, ctx %d, cont %d" % (path, n, ctx, cont))
    print("| layer | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for li in range(len(layers)):
        print("| %d | " % li + " | ".join("%.3f" % x for x in stats[li]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
