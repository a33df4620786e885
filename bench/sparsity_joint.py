#!/usr/bin/env python3
"""Table of bench/sparsity_joint.sh: SparseGPT prune-then-RTN against the
joint mode, mean KL divergence (top-1 agreement %) per model, text, pattern
and format. Usage: bench/sparsity_joint.py [DIR]"""
import json
import sys

D = sys.argv[1] if len(sys.argv) > 1 else "/tmp/sp"
MODELS = [("s260", "stories260K"), ("t656", "tinystories-656k")]
TEXTS = [("ts", "tinystories"), ("wk", "wikitext-2")]


def cell(path):
    d = json.load(open(path))
    return d["kld"], d["kld_err"], 100 * d["top1"]


print("| model | text | pattern | format | prune, then RTN | joint | joint - RTN | joint below |")
print("|---|---|---|---|---:|---:|---:|---|")
for mn, mname in MODELS:
    for tx, tname in TEXTS:
        for pat in ("2-4", "4-8"):
            for fmt in ("int4_g32", "mxfp4"):
                base = "%s/%s_sgpt_%s_%s_" % (D, mn, pat, fmt)
                r = cell(base + "rtn.safetensors.%s.kld.json" % tx)
                j = cell(base + "joint.safetensors.%s.kld.json" % tx)
                print("| %s | %s | %s | %s | %.3f +- %.3f (%.1f) | %.3f +- %.3f (%.1f) | %+.3f | %s |" % (
                    mname, tname, pat.replace("-", ":"), fmt, r[0], r[1], r[2], j[0], j[1], j[2], j[0] - r[0],
                    "yes" if j[0] < r[0] else "no"))
