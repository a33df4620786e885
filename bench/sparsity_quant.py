#!/usr/bin/env python3
"""Tables of bench/sparsity_quant.sh: mean KLD, top-1 agreement and PPL
ratio of pruned files with F32 / int4_g32 / mxfp4 kept values, per model
and text. A value marked * had
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


METRICS = [("mean KLD", "kld", "%.3f", 1), ("top-1 agreement %", "top1", "%.1f", 100),
           ("PPL ratio", "ppl_ratio", "%.3f", 1)]
METRIC = METRICS[0]


def kld(base, tx):
    """The current METRIC of a file on text tx (None when not measured)."""
    f = base + ".%s.kld.json" % tx
    return json.load(open(f))[METRIC[1]] * METRIC[3] if os.path.exists(f) else None


def packed(base, fmt):
    d = json.load(open(base + ".json"))
    pr = [t for t in d["tensors"] if t["status"] == "pruned"]
    return sum(t["stored"].startswith(fmt) for t in pr), len(pr)


for METRIC in METRICS:
    for mn, mname in MODELS:
        for tx, tname in TEXTS:
            print("#### %s on %s: %s, kept values F32 / int4_g32 / mxfp4\n" % (mname, tname, METRIC[0]))
            print("| criterion | " + " | ".join(p for _, p in PATS) + " |")
            print("|---|" + "---:|" * len(PATS))
            notes = set()
            for crit, mode in ROWS:
                cells = []
                for p, _ in PATS:
                    parts = []
                    f32 = None if mode == "joint" else kld("%s/%s_%s_%s.safetensors" % (D, mn, crit, p), tx)
                    parts.append("-" if f32 is None else METRIC[2] % f32)
                    for fmt in ("int4_g32", "mxfp4"):
                        base = "%s/%s_%s_%s_%s_%s.safetensors" % (D, mn, crit, p, fmt, mode)
                        v = kld(base, tx) if os.path.exists(base + ".json") else None
                        if v is None:
                            parts.append("-")
                            continue
                        k, n = packed(base, fmt)
                        parts.append(METRIC[2] % v + ("" if k == n else "*"))
                        if k != n:
                            notes.add("%s%s %s: %d of %d" % (crit, " joint" if mode == "joint" else "",
                                                             dict(PATS)[p], k, n))
                    cells.append(" / ".join(parts))
                print("| %s%s | %s |" % (crit, " joint" if mode == "joint" else "", " | ".join(cells)))
            if notes:
                print("\n\\* linears with packed values (both formats): " + "; ".join(sorted(notes)))
            print()

# ---- file sizes of the unstructured files with packed (padded) values
import math
import struct

BLOCK = {"int4_g32": (32, 18), "mxfp4": (32, 17)}   # elements per block, bytes per block


def header(f):
    raw = open(f, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:], 8 + n, len(raw)


def sizes(base, fmt):
    """(data, derived data, packed linears' bytes, their derivation, the same
    linears dense in fmt) of one file; derived from the masks alone."""
    h, data, head, size = header(base)
    B, bb = BLOCK[fmt]
    derived = lin = lin_derived = lin_dense = 0
    for t in json.load(open(base + ".json"))["tensors"]:
        r, c = t["shape"]
        if t["status"] != "pruned":
            derived += t["bytes"]
            continue
        n = t["name"]
        stored = sum(v["data_offsets"][1] - v["data_offsets"][0] for k, v in h.items() if k.startswith(n + "_"))
        mb = math.ceil(c / 8)
        o = h[n + "_bitmask"]["data_offsets"]
        mask = data[o[0]:o[1]]
        counts = [sum(bin(b).count("1") for b in mask[i * mb:(i + 1) * mb]) for i in range(r)]
        if t["stored"].startswith(fmt):
            kpad = math.ceil(max(counts) / B) * B
            d = r * (kpad // B * bb + mb) + 12 + len(fmt)   # + the format's name tensor
            lin += stored
            lin_derived += d
            lin_dense += r * math.ceil(c / B) * bb
        else:
            d = sum(counts) * 4 + r * mb + 12
        derived += d
    return size - head, derived, lin, lin_derived, lin_dense, size


print("#### File sizes of the unstructured files with packed values (prune, then RTN)\n")
print("derived: from each matrix's mask alone (k = the longest row rounded up to the block; "
      "rows x (k / B x block bytes + ceil(cols / 8)) + 12 + the format's name); dense: the same "
      "model quantized to the format (`lowbit quantize`, RTN).\n")
print("| model | criterion | ratio | format | data bytes | derived | data / derived | packed linears / dense linears | file / dense file |")
print("|---|---|---|---|---:|---:|---:|---:|---:|")
for mn, mname in MODELS:
    for crit in ("magnitude", "wanda", "sparsegpt"):
        for p in ("u50", "u60", "u70"):
            for fmt in ("int4_g32", "mxfp4"):
                base = "%s/%s_%s_%s_%s_rtn.safetensors" % (D, mn, crit, p, fmt)
                dense = "%s/%s_dense_%s.safetensors" % (D, mn, fmt)
                if not os.path.exists(base + ".json") or not os.path.exists(dense):
                    continue
                data, der, lin, lind, lindense, size = sizes(base, fmt)
                print("| %s | %s | 0.%s | %s | %d | %d | %.4f | %.4f | %.4f |" % (
                    mname, crit, p[1:], fmt, data, der, data / der, lin / lindense, size / os.path.getsize(dense)))

# ---- unstructured at the exact ratio: F32 against int4_g32 kept values
print("\n#### Unstructured at the exact ratio, kept values F32 and int4_g32 (tinystories text)\n")
print("| model | criterion | --ratio | values | sparsity | linears' bytes | KLD | top-1 |")
print("|---|---|---|---|---:|---:|---:|---:|")
for mn, mname in MODELS:
    for crit in ("magnitude", "wanda", "sparsegpt"):
        for p in ("u50", "u60", "u70"):
            for fmt, base in (("F32", "%s/%s_%s_%s.safetensors" % (D, mn, crit, p)),
                              ("int4_g32", "%s/%s_%s_%s_int4_g32_rtn.safetensors" % (D, mn, crit, p))):
                if not os.path.exists(base + ".ts.kld.json"):
                    continue
                j, k = json.load(open(base + ".json")), json.load(open(base + ".ts.kld.json"))
                lin = sum(t["bytes"] for t in j["tensors"] if t["status"] == "pruned")
                print("| %s | %s | 0.%s | %s | %.3f | %d | %.3f | %.1f %% |" % (
                    mname, crit, p[1:], fmt, j["linear_sparsity"], lin, k["kld"], 100 * k["top1"]))
