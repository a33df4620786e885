#!/usr/bin/python3
# calib_tables.py DIR: the summary of bench/calib_quant.sh's runs (DIR/<tag>/quant.json):
# mean KL divergence per method x format, and the acceptance checks of issue 9.
import json, math, sys

TAGS = [("260k-ts", "stories260K / TinyStories"), ("260k-wt", "stories260K / WikiText-2"),
        ("656k-ts", "tinystories-656k / TinyStories"), ("656k-wt", "tinystories-656k / WikiText-2")]
FREE = ["rtn", "sinq", "hadamard+rtn"]
METHODS = FREE + ["rtn:calib", "gptq", "gptq:act", "mr-gptq", "qronos", "awq", "awq+sinq"]
FORMATS = ["int4_g32", "int4_g32_asym", "int4_g64", "int4_g64_asym", "int4_g128", "int4_g128_asym", "int3_g32_asym",
           "int3_g64_asym", "int2_g32_asym", "mxfp4", "nvfp4", "nvint4", "nf4", "mxint8"]

def load(d, tag):
    rows = json.load(open(f"{d}/{tag}/quant.json"))["rows"]
    return {(r["method"], r["format"]): r for r in rows if not r["failed"]}

def kld(R, m, f):
    r = R.get((m, f))
    return r["kld"] if r else math.nan

def cmp(a, b):
    """'**yes** a < b' or 'no: a >= b'."""
    return "**yes** %.4f < %.4f" % (a, b) if a < b else "no: %.4f >= %.4f" % (a, b)

d = sys.argv[1] if len(sys.argv) > 1 else "bench-calib"
data = {t: load(d, t) for t, _ in TAGS}
for t, name in TAGS:
    R = data[t]
    print(f"\n#### {name}: mean KL divergence (bits/weight of the linears in the JSON)\n")
    print("| format | " + " | ".join(METHODS) + " |")
    print("|---|" + "---:|" * len(METHODS))
    for f in FORMATS:
        vals = [kld(R, m, f) for m in METHODS]
        best = min(v for v in vals if not math.isnan(v))
        cells = [("**%.4f**" if v == best else "%.4f") % v for v in vals]
        print(f"| {f} | " + " | ".join(cells) + " |")
print("\n#### Acceptance checks\n")
print("| check | " + " | ".join(n for _, n in TAGS) + " |")
print("|---|" + "---|" * len(TAGS))
def row(label, fn):
    print(f"| {label} | " + " | ".join(fn(data[t]) for t, _ in TAGS) + " |")
for f in ["int4_g32_asym", "int4_g64_asym", "int3_g32_asym", "int3_g64_asym", "mxfp4"]:
    row(f"GPTQ < RTN, {f}", lambda R, f=f: cmp(kld(R, "gptq", f), kld(R, "rtn", f)))
row("MR-GPTQ < GPTQ, mxfp4", lambda R: cmp(kld(R, "mr-gptq", "mxfp4"), kld(R, "gptq", "mxfp4")))
for f in ["int4_g32", "int4_g32_asym", "int4_g64", "int4_g64_asym", "int4_g128", "int4_g128_asym"]:
    row(f"AWQ < RTN, {f}", lambda R, f=f: cmp(kld(R, "awq", f), kld(R, "rtn", f)))
def three(R):
    cal = min((kld(R, m, f), m, f) for m in METHODS[3:] for f in ["int3_g32_asym", "int3_g64_asym"])
    free = min((kld(R, m, f), m, f) for m in FREE for f in ["int3_g32_asym", "int3_g64_asym"])
    return "%s (%s %s vs %s %s)" % (cmp(cal[0], free[0]), cal[1], cal[2], free[1], free[2])
row("3 bits: best calibrated < best calibration-free", three)
def best45(R):
    b = min((r["kld"], r["method"], r["format"], r["bits_linear"]) for r in R.values()
            if r["n_quantized"] > 0 and r["bits_linear"] <= 4.5)
    return "%.4f (%s %s, %.3f bits)" % b
row("best at <= 4.5 bits/weight", best45)
