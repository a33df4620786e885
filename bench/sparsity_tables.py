#!/usr/bin/env python3
"""Tables for docs/sparsity.md from /tmp/sp (measure.sh's outputs)."""
import json, os, math, sys
D = sys.argv[1] if len(sys.argv) > 1 else "/tmp/sp"
pats = ["u50", "u60", "u70", "2:4", "4:8", "8:3:8", "8:2:8"]
pname = {"u50": "unstr. 50%", "u60": "unstr. 60%", "u70": "unstr. 70%", "2:4": "2:4", "4:8": "4:8",
         "8:3:8": "8:3:8 (62.5%)", "8:2:8": "8:2:8 (75%)"}
crits = ["magnitude", "wanda", "sparsegpt"]
models = {"s260": ("stories260K", "../shared/models/stories260K/stories260K.bin"),
          "t656": ("tinystories-656k", "../shared/models/tinystories-656k/model.safetensors")}
texts = {"ts": "tinystories", "wk": "wikitext-2"}
acc = []
for mn, (mlabel, src) in models.items():
    for tx, tl in texts.items():
        print(f"\n### {mlabel} on {tl}: mean KLD (top-1 agreement %, PPL ratio)\n")
        print("| criterion | " + " | ".join(pname[p] for p in pats) + " |")
        print("|---|" + "---:|" * len(pats))
        res = {}
        for c in crits:
            cells = []
            for p in pats:
                f = f"{D}/{mn}_{c}_{p.replace(':', '-')}.safetensors.{tx}.kld.json"
                try:
                    j = json.load(open(f))
                    res[(c, p)] = j["kld"]
                    cells.append(f"{j['kld']:.3f} ({100*j['top1']:.1f}, {j['ppl_ratio']:.2f})")
                except Exception:
                    cells.append("-")
            print(f"| {c} | " + " | ".join(cells) + " |")
        for p in ["u50", "2:4"]:
            if all((c, p) in res for c in crits):
                acc.append((mlabel, tl, pname[p], res[("magnitude", p)], res[("wanda", p)], res[("sparsegpt", p)]))
print("\n### Acceptance: Wanda and SparseGPT below magnitude (mean KLD)\n")
print("| model | text | pattern | magnitude | wanda | sparsegpt | both below |")
print("|---|---|---|---:|---:|---:|---|")
for a in acc:
    print(f"| {a[0]} | {a[1]} | {a[2]} | {a[3]:.4f} | {a[4]:.4f} | {a[5]:.4f} | {'yes' if a[4] < a[3] and a[5] < a[3] else 'NO'} |")
print("\n### File sizes against the derived ratio\n")
print("data = file minus its safetensors header; dense = the same model saved dense by lowbit (`--keep '*'`).\n")
print("| model | pattern | file bytes | header bytes | data bytes | derived data bytes | data / derived | file / dense file | derived / dense data |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
import struct
def split(f):
    size = os.path.getsize(f)
    hl = struct.unpack("<Q", open(f, "rb").read(8))[0]
    return size, 8 + hl, size - 8 - hl
for mn, (mlabel, src) in models.items():
    dsize, dhead, ddata = split(f"{D}/{mn}_dense.safetensors")
    for p in pats:
        f = f"{D}/{mn}_magnitude_{p.replace(':', '-')}.safetensors"
        try:
            j = json.load(open(f + ".json"))
        except Exception:
            continue
        size, head, data = split(f)
        derived = 0
        for t in j["tensors"]:
            r, cc = t["shape"]
            if t["status"] == "pruned":
                derived += (1 - t["sparsity"]) * 4 * r * cc + r * math.ceil(cc / 8) + 12
            else:
                derived += t["bytes"]
        print(f"| {mlabel} | {pname[p]} | {size} | {head} | {data} | {derived:.0f} | {data/derived:.4f} | {size/dsize:.4f} | {derived/ddata:.4f} |")
