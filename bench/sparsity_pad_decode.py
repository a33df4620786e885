#!/usr/bin/python3
"""Decode speed of padded unstructured int4_g32 (issue 12): whole models of
the stories110M shape, decode tokens per CPU-second at one thread (as
bench/sparsity_decode.py, whose helpers this reuses), best of R rounds.

usage: bench/sparsity_pad_decode.py DIR [--tokens N] [--rounds R]

Makes in DIR (once): s110/ (lowbit synth --preset stories110m --dtype bf16),
q4 (dense int4_g32, RTN), u50q / u60q (magnitude unstructured 50 % / 60 %
with --format int4_g32: 384 of 768 kept, no padding / 308 padded to 320),
p24q (2:4 with --format int4_g32, the fused kernel). Unstructured rows take
the gather + lb_format_dot path. Prints each model's tokens per CPU-second
and its ratio to dense int4_g32 measured in the same run."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sparsity_decode as sd  # noqa: E402

SPECS = {"q4": ["quantize", "--format", "int4_g32"],
         "u50q": ["prune", "--pattern", "unstructured", "--ratio", "0.5", "--format", "int4_g32"],
         "u60q": ["prune", "--pattern", "unstructured", "--ratio", "0.6", "--format", "int4_g32"],
         "p24q": ["prune", "--pattern", "2:4", "--format", "int4_g32"]}


def main():
    a = sys.argv[1:]
    if not a or a[0].startswith("-"):
        sys.exit(__doc__)
    d, n, rounds = a[0], 48, 3
    for i in range(1, len(a) - 1):
        if a[i] == "--tokens": n = int(a[i + 1])
        if a[i] == "--rounds": rounds = int(a[i + 1])
    s110 = os.path.join(d, "s110")
    if not os.path.exists(os.path.join(s110, "model.safetensors")):
        sd.sh([sd.LB, "synth", "--out", s110, "--preset", "stories110m", "--dtype", "bf16", "--force"])
    for name, spec in SPECS.items():
        out = os.path.join(d, name + ".safetensors")
        if not os.path.exists(out):
            sd.sh([sd.LB, spec[0], "--model", s110, "--out", out] + spec[1:])
    cpu = {}
    for _ in range(rounds):
        for name in SPECS:
            m = os.path.join(d, name + ".safetensors")
            _, c, g = sd.run(m, n, 1)
            _, c1, _ = sd.run(m, 1, 1)
            v = (g - 1) / (c - c1) if c > c1 and g > 1 else float("nan")
            cpu[name] = max(cpu.get(name, 0), v)
    print(f"stories110m shape, {n} tokens, 1 thread, best of {rounds}; load average "
          f"{open('/proc/loadavg').read().split()[0]}\n")
    print("| model | tok per CPU-s | vs dense int4_g32 |")
    print("|---|---:|---:|")
    for name in SPECS:
        print(f"| {name} | {cpu[name]:.2f} | {cpu[name] / cpu['q4']:.2f}x |")


if __name__ == "__main__":
    main()
