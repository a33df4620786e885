#!/usr/bin/env python3
"""model_ref.py: an independent NumPy reference of the llama forward pass.

It parses the model files itself (no lowbit code): a llama2.c legacy
checkpoint (.bin: 7 int32 header, then fp32 weights in run.c's order) or a
Hugging Face folder (config.json + model.safetensors, LlamaForCausalLM), and
computes the logits of a token sequence from position 0 in float64.

usage: model_ref.py MODEL OUT.f32 TOKEN [TOKEN ...]
writes float32 logits [n_tokens, vocab] (little-endian, row-major) to OUT.f32.
"""
import json
import os
import struct
import sys

import numpy as np


def load_llama2c(path):
    raw = open(path, "rb").read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    hs = dim // n_heads
    w = np.frombuffer(raw, dtype="<f4", offset=28).astype(np.float64)
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        a = w[off:off + n].reshape(shape)
        off += n
        return a

    emb = take(vocab, dim)
    att_norm = take(n_layers, dim)
    wq = take(n_layers, n_heads * hs, dim)
    wk = take(n_layers, n_kv * hs, dim)
    wv = take(n_layers, n_kv * hs, dim)
    wo = take(n_layers, dim, n_heads * hs)
    ffn_norm = take(n_layers, dim)
    w1 = take(n_layers, hidden, dim)
    w2 = take(n_layers, dim, hidden)
    w3 = take(n_layers, hidden, dim)
    final_norm = take(dim)
    take(seq, hs // 2)  # freq_cis_real (unused: recomputed)
    take(seq, hs // 2)  # freq_cis_imag
    head = emb if shared else take(vocab, dim)
    layers = [dict(att_norm=att_norm[l], wq=wq[l], wk=wk[l], wv=wv[l], wo=wo[l], ffn_norm=ffn_norm[l],
                   gate=w1[l], down=w2[l], up=w3[l]) for l in range(n_layers)]
    cfg = dict(dim=dim, n_heads=n_heads, n_kv=n_kv, hd=hs, eps=1e-5, theta=10000.0, rope="interleaved",
               vocab=vocab)
    return cfg, emb, layers, final_norm, head


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    types = {"F32": "<f4", "F16": "<f2", "F64": "<f8"}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = raw[8 + n + a:8 + n + b]
        if info["dtype"] == "BF16":
            u = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(buf, dtype=types[info["dtype"]])
        out[name] = arr.astype(np.float64).reshape(info["shape"])
    return out


def load_hf(folder):
    c = json.load(open(os.path.join(folder, "config.json")))
    t = read_safetensors(os.path.join(folder, "model.safetensors"))
    n_layers = c["num_hidden_layers"]
    dim, n_heads = c["hidden_size"], c["num_attention_heads"]
    hd = c.get("head_dim") or dim // n_heads
    layers = []
    for l in range(n_layers):
        p = "model.layers.%d." % l
        layers.append(dict(att_norm=t[p + "input_layernorm.weight"], wq=t[p + "self_attn.q_proj.weight"],
                           wk=t[p + "self_attn.k_proj.weight"], wv=t[p + "self_attn.v_proj.weight"],
                           wo=t[p + "self_attn.o_proj.weight"], ffn_norm=t[p + "post_attention_layernorm.weight"],
                           gate=t[p + "mlp.gate_proj.weight"], up=t[p + "mlp.up_proj.weight"],
                           down=t[p + "mlp.down_proj.weight"]))
    # tied checkpoints may store either name only (safetensors drops aliases)
    emb = t.get("model.embed_tokens.weight", t.get("lm_head.weight"))
    head = t.get("lm_head.weight", emb)
    cfg = dict(dim=dim, n_heads=n_heads, n_kv=c.get("num_key_value_heads", n_heads), hd=hd,
               eps=c.get("rms_norm_eps", 1e-6), theta=float(c.get("rope_theta", 10000.0)), rope="half",
               vocab=c["vocab_size"])
    return cfg, emb, layers, t["model.norm.weight"], head


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, cfg, n):
    """x: [n, heads, hd]; rotate by position."""
    hd = cfg["hd"]
    inv = 1.0 / cfg["theta"] ** (np.arange(0, hd, 2) / hd)
    ang = np.arange(n)[:, None] * inv[None, :]          # [n, hd/2]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    y = x.copy()
    if cfg["rope"] == "interleaved":
        a, b = x[..., 0::2], x[..., 1::2]
        y[..., 0::2], y[..., 1::2] = a * c - b * s, a * s + b * c
    else:
        h = hd // 2
        a, b = x[..., :h], x[..., h:]
        y[..., :h], y[..., h:] = a * c - b * s, a * s + b * c
    return y


def forward(model, tokens):
    cfg, emb, layers, final_norm, head = model
    n, hd, H, KV = len(tokens), cfg["hd"], cfg["n_heads"], cfg["n_kv"]
    x = emb[np.array(tokens)]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for L in layers:
        h = rmsnorm(x, L["att_norm"], cfg["eps"])
        q = rope((h @ L["wq"].T).reshape(n, H, hd), cfg, n)
        k = rope((h @ L["wk"].T).reshape(n, KV, hd), cfg, n)
        v = (h @ L["wv"].T).reshape(n, KV, hd)
        k = np.repeat(k, H // KV, axis=1)
        v = np.repeat(v, H // KV, axis=1)
        sc = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd) + mask
        sc = np.exp(sc - sc.max(axis=-1, keepdims=True))
        sc /= sc.sum(axis=-1, keepdims=True)
        a = np.einsum("hqk,khd->qhd", sc, v).reshape(n, H * hd)
        x = x + a @ L["wo"].T
        h = rmsnorm(x, L["ffn_norm"], cfg["eps"])
        g = h @ L["gate"].T
        x = x + (g / (1 + np.exp(-g)) * (h @ L["up"].T)) @ L["down"].T
    return rmsnorm(x, final_norm, cfg["eps"]) @ head.T


def main():
    if len(sys.argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    path, out, tokens = sys.argv[1], sys.argv[2], [int(t) for t in sys.argv[3:]]
    model = load_hf(path) if os.path.isdir(path) else load_llama2c(path)
    forward(model, tokens).astype("<f4").tofile(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
