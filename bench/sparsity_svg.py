#!/usr/bin/env python3
"""Plots of docs/sparsity.md: mean KL divergence to the dense model against
bytes per weight of the linears (q, k, v, o, gate, up, down), pruned files
beside quantization alone (RTN), one SVG per model and text. Reads the
files of bench/sparsity_measure.sh and bench/sparsity_joint.sh in DIR.
Usage: bench/sparsity_svg.py [DIR] [OUTDIR] (default /tmp/sp docs/img)"""
import json
import math
import os
import sys

D = sys.argv[1] if len(sys.argv) > 1 else "/tmp/sp"
OUT = sys.argv[2] if len(sys.argv) > 2 else "docs/img"
MODELS = [("s260", "stories260K"), ("t656", "tinystories-656k")]
TEXTS = [("ts", "tinystories"), ("wk", "wikitext-2")]
LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PATS = [("u50", "50%"), ("u60", "60%"), ("u70", "70%"), ("2-4", "2:4"), ("4-8", "4:8"), ("8-3-8", "8:3:8"),
        ("8-2-8", "8:2:8")]


def bpw(path):
    """Bytes per weight of the linears, from a prune or quantize --json summary."""
    d = json.load(open(path))
    b = n = 0
    for t in d["tensors"]:
        if any(k in t["name"] for k in LINEAR):
            b += t["bytes"]
            n += t["shape"][0] * t["shape"][1]
    return b / n


def point(base, tx):
    f = base + ".%s.kld.json" % tx
    if not os.path.exists(f) or not os.path.exists(base + ".json"):
        return None
    return bpw(base + ".json"), json.load(open(f))["kld"]


def series(mn, tx):
    s = []
    q = [point("%s/%s_q_%s.safetensors" % (D, mn, f), tx)
         for f in ("int8_g32", "mxfp6_e2m3", "int4_g32", "mxfp4", "int3_g32", "int2_g32")]
    s.append(("quantization alone (RTN: int8, mxfp6, int4, mxfp4, int3, int2)", "#000", True,
              sorted(p for p in q if p)))
    for crit, col in (("magnitude", "#d62728"), ("wanda", "#1f77b4"), ("sparsegpt", "#2ca02c")):
        pts = [point("%s/%s_%s_%s.safetensors" % (D, mn, crit, p), tx) for p, _ in PATS]
        s.append((crit + " (F32 values: 50/60/70%, 2:4, 4:8, 8:3:8, 8:2:8)", col, False, [p for p in pts if p]))
    pts = [point("%s/%s_%s_2-4-int4.safetensors" % (D, mn, c), tx) for c in ("magnitude", "wanda", "sparsegpt")]
    s.append(("2:4 + int4_g32, prune then RTN (magnitude, wanda, sparsegpt)", "#ff7f0e", False, [p for p in pts if p]))
    pts = [point("%s/%s_sgpt_%s_%s_joint.safetensors" % (D, mn, p, f), tx) for p in ("2-4", "4-8")
           for f in ("int4_g32", "mxfp4")]
    s.append(("sparsegpt joint 2:4 / 4:8 + int4_g32 / mxfp4", "#9467bd", False, [p for p in pts if p]))
    return s


def svg(title, ss, path):
    W, H, L, R, T, B = 760, 470, 70, 330, 30, 420
    xs = [p[0] for _, _, _, pts in ss for p in pts]
    ys = [p[1] for _, _, _, pts in ss for p in pts if p[1] > 0]
    x0, x1 = 0.0, math.ceil(max(xs) * 2) / 2
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    X = lambda x: L + (x - x0) / (x1 - x0) * (W - R - L)
    Y = lambda y: B - (math.log10(y) - y0) / (y1 - y0) * (B - T)
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">'
         % (W, H), '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="18" font-size="13">%s</text>' % (L, title)]
    for e in range(y0, y1 + 1):
        o.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" '
                 'text-anchor="end">1e%d</text>' % (L, W - R, Y(10 ** e), Y(10 ** e), L - 4, Y(10 ** e) + 4, e))
    x = x0
    while x <= x1 + 1e-9:
        o.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#eee"/><text x="%.1f" y="%d" '
                 'text-anchor="middle">%.1f</text>' % (X(x), X(x), T, B, X(x), B + 14, x))
        x += 0.5 if x1 > 2 else 0.25
    o.append('<text x="%d" y="%d" text-anchor="middle">bytes per weight of the linears</text>'
             % ((L + W - R) // 2, B + 32))
    o.append('<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">mean KLD (nats)</text>'
             % ((T + B) // 2, (T + B) // 2))
    for i, (name, col, line, pts) in enumerate(ss):
        pts = [p for p in pts if p[1] > 0]
        if line and len(pts) > 1:
            o.append('<polyline fill="none" stroke="%s" points="%s"/>' % (
                col, " ".join("%.1f,%.1f" % (X(a), Y(b)) for a, b in pts)))
        for a, b in pts:
            o.append('<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>' % (X(a), Y(b), col))
        ly = T + 10 + i * 34
        o.append('<circle cx="%d" cy="%d" r="4" fill="%s"/>' % (W - R + 16, ly, col))
        words, lines, cur = name.split(), [], ""
        for w in words:
            if len(cur) + len(w) > 44:
                lines.append(cur)
                cur = w
            else:
                cur = (cur + " " + w).strip()
        lines.append(cur)
        for k, t in enumerate(lines[:2]):
            o.append('<text x="%d" y="%d">%s</text>' % (W - R + 26, ly + 4 + 13 * k, t))
    o.append("</svg>")
    open(path, "w").write("\n".join(o) + "\n")


for mn, mname in MODELS:
    for tx, tname in TEXTS:
        ss = series(mn, tx)
        svg("mean KL divergence vs bytes/weight, pruned and quantized: %s on %s" % (mname, tname), ss,
            "%s/sparsity_%s_%s.svg" % (OUT, mname, tname))
