#!/usr/bin/env python3
"""Tables of bench/sparsity_quant.sh: mean KLD of pruned files with F32 /
int4_g32 / mxfp4 kept values, per model and text. A value marked * had
some pruned linears keep F32 values (N:M kept count per row not a multiple
of the format's block; the count packed is given below each table);
unstructured masks are packed with padding (weights/sparse.c).
Usage: bench/sparsity_quant.py [DIR]"""
import json
import os
import sys

D = sys.argv[1] if len(sys.argv) > 1 else "/tmp/sp"
MODELS = [("s260", "stories260K"), ("t656", "tinystories-656k")]
TEXTS = [("ts", "tinystories"), ("wk", "wikitext-2")]
PATS = [("u50", "unstr. 50%"), ("u60", "unstr. 60%"), ("u70", "unstr. 70%"), ("2-4", "2:4"), ("4-8", "4:8"), ("8-2-8", "8:2:8")]
ROWS = [("magnitude", "rtn"), ("wanda", "rtn"), ("sparsegpt", "rtn"), ("sparsegpt", "joint")]


def kld(base, tx):
    f = base + ".%s.kld.json" % tx
    return json.load(open(f))["kld"] if os.path.exists(f) else None


def packed(base, fmt):
    d = json.load(open(base + ".json"))
    pr = [t for t in d["tensors"] if t["status"] == "pruned"]
    return sum(t["stored"].startswith(fmt) for t in pr), len(pr)


for mn, mname in MODELS:
    for tx, tname in TEXTS:
        print("#### %s on %s: mean KLD, kept values F32 / int4_g32 / mxfp4\n" % (mname, tname))
        print("| criterion | " + " | ".join(p for _, p in PATS) + " |")
        print("|---|" + "---:|" * len(PATS))
        notes = set()
        for crit, mode in ROWS:
            cells = []
            for p, _ in PATS:
                parts = []
                f32 = None if mode == "joint" else kld("%s/%s_%s_%s.safetensors" % (D, mn, crit, p), tx)
                parts.append("-" if f32 is None else "%.3f" % f32)
                for fmt in ("int4_g32", "mxfp4"):
                    base = "%s/%s_%s_%s_%s_%s.safetensors" % (D, mn, crit, p, fmt, mode)
                    v = kld(base, tx) if os.path.exists(base + ".json") else None
                    if v is None:
                        parts.append("-")
                        continue
                    k, n = packed(base, fmt)
                    parts.append("%.3f%s" % (v, "" if k == n else "*"))
                    if k != n:
                        notes.add("%s%s %s: %d of %d" % (crit, " joint" if mode == "joint" else "",
                                                         dict(PATS)[p], k, n))
                cells.append(" / ".join(parts))
            print("| %s%s | %s |" % (crit, " joint" if mode == "joint" else "", " | ".join(cells)))
        if notes:
            print("\n\\* linears with packed values (both formats): " + "; ".join(sorted(notes)))
        print()
