#!/usr/bin/python3
"""Decode speed of whole pruned models of the stories110M shape (issue 12).

usage: bench/sparsity_decode.py DIR [--tokens N] [--rounds R] [--threads 1,2]

Makes in DIR (once; reused when present), with build/lowbit:
  s110/             lowbit synth --preset stories110m --dtype bf16 (random weights)
  q4.safetensors    lowbit quantize --format int4_g32 (RTN; dense int4_g32)
  p24, vnm, u50     lowbit prune --pattern 2:4 | 64:2:8 | unstructured --ratio 0.5 (magnitude, BF16 kept)
  p24q, vnmq        the same 2:4 / 64:2:8 with --format int4_g32
then times `lowbit run -p "Once upon a time" -n N --temp 0 --threads T --json`
per model (the models in turn, R rounds, best round kept), plus dense int4_g32
with --act int8 (W4A8, the integer kernels) and 2:4 / 64:2:8 int4_g32 with
--act int8 (the sparse integer kernel of src/kernels/sparse.h). Per run: the generation tokens/s
that lowbit run prints (wall), and, at one thread, decode tokens per CPU-second:
(N - 1) / (CPU time of the N-token run - CPU time of a 1-token run), which
leaves out both the load/prefill cost and the time other jobs held the core.
Embeddings and lm_head stay dense BF16 in every file (pruning and
quantization cover the 84 linears), so whole-model ratios are below the
per-matrix ones of bench_sparse. Random weights: the text is nonsense, the
speed is that of real weights of the same shapes."""
import json, os, subprocess, sys

LB = "build/lowbit"
TOK = "../shared/models/llama2c-tokenizer/tokenizer.bin"


def sh(args):
    r = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode:
        sys.exit(f"failed: {' '.join(args)}\n{r.stderr}")


def make(d):
    s110 = os.path.join(d, "s110")
    if not os.path.exists(os.path.join(s110, "model.safetensors")):
        sh([LB, "synth", "--out", s110, "--preset", "stories110m", "--dtype", "bf16", "--force"])
    specs = {
        "q4": ["quantize", "--format", "int4_g32"],
        "p24": ["prune", "--pattern", "2:4"],
        "vnm": ["prune", "--pattern", "64:2:8"],
        "u50": ["prune", "--pattern", "unstructured", "--ratio", "0.5"],
        "p24q": ["prune", "--pattern", "2:4", "--format", "int4_g32"],
        "vnmq": ["prune", "--pattern", "64:2:8", "--format", "int4_g32"],
    }
    for name, a in specs.items():
        out = os.path.join(d, name + ".safetensors")
        if not os.path.exists(out):
            sh([LB, a[0], "--model", s110, "--out", out] + a[1:])
    return s110


def run(model, n, threads, act=None):
    """(generated tokens/s wall, CPU seconds, generated tokens) of one run."""
    args = [LB, "run", "--model", model, "--tokenizer", TOK, "-p", "Once upon a time", "-n", str(n), "--temp", "0",
            "--threads", str(threads), "--json"]
    if act:
        args += ["--act", act]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    if status:
        sys.exit(f"failed: {' '.join(args)}")
    j = json.loads(out)
    return j["gen_tokens_per_s"], ru.ru_utime + ru.ru_stime, j["generated_tokens"]


def main():
    a = sys.argv[1:]
    if not a or a[0].startswith("-"):
        sys.exit(__doc__)
    d, n, rounds, threads = a[0], 64, 3, [1, 2]
    for i in range(1, len(a) - 1):
        if a[i] == "--tokens": n = int(a[i + 1])
        if a[i] == "--rounds": rounds = int(a[i + 1])
        if a[i] == "--threads": threads = [int(t) for t in a[i + 1].split(",")]
    os.makedirs(d, exist_ok=True)
    s110 = make(d)
    models = [("dense BF16", s110, None), ("dense int4_g32", "q4", None), ("dense int4_g32 W4A8 (--act int8)", "q4", "int8"),
              ("2:4 BF16", "p24", None), ("64:2:8 BF16", "vnm", None), ("unstructured 50% BF16", "u50", None),
              ("2:4 int4_g32", "p24q", None), ("64:2:8 int4_g32", "vnmq", None),
              ("2:4 int4_g32 --act int8", "p24q", "int8"), ("64:2:8 int4_g32 --act int8", "vnmq", "int8")]
    path = lambda m: m if os.path.isdir(m) else os.path.join(d, m + ".safetensors")
    wall, cpu = {}, {}
    for r in range(rounds):
        for th in threads:
            for name, m, act in models:
                t, c, g = run(path(m), n, th, act)
                wall[name, th] = max(wall.get((name, th), 0), t)
                if th == 1:
                    _, c1, _ = run(path(m), 1, th, act)
                    v = (g - 1) / (c - c1) if c > c1 and g > 1 else float("nan")
                    cpu[name] = max(cpu.get(name, 0), v)
    load = open("/proc/loadavg").read().split()[0]
    print(f"stories110m shape, {n} generated tokens, best of {rounds} rounds; load average {load}\n")
    print("| model | threads | decode tok/s (wall) | vs dense BF16 | vs dense int4_g32 | vs W4A8 | tok per CPU-s | vs dense BF16 (CPU) | vs dense int4_g32 (CPU) | vs W4A8 (CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for th in threads:
        for name, _, _ in models:
            w = wall[name, th]
            row = f"| {name} | {th} | {w:.2f} | {w / wall['dense BF16', th]:.2f}x | {w / wall['dense int4_g32', th]:.2f}x | {w / wall['dense int4_g32 W4A8 (--act int8)', th]:.2f}x |"
            if th == 1:
                c = cpu[name]
                row += f" {c:.2f} | {c / cpu['dense BF16']:.2f}x | {c / cpu['dense int4_g32']:.2f}x | {c / cpu['dense int4_g32 W4A8 (--act int8)']:.2f}x |"
            else:
                row += " | | | |"
            print(row)


if __name__ == "__main__":
    main()
