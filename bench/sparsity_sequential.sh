#!/bin/bash
# Sequential pruning statistics (lowbit prune --sequential) against the dense
# model's statistics, the protocol of bench/sparsity_measure.sh: wanda and
# sparsegpt at unstructured 50 % / 70 % and 2:4 on both real models; KL
# divergence against the dense model's saved logits (40 chunks of 128 tokens
# from the start of each text); calibration on the last 60 kB of
# tinystories_val.txt (disjoint from the scored chunks). Prints a markdown
# table. Usage (from the repository root, after make):
#   bench/sparsity_sequential.sh [DIR]
set -e
L=./build/lowbit
M260=../shared/models/stories260K/stories260K.bin
M656=../shared/models/tinystories-656k
TS=../shared/data/tinystories/tinystories_val.txt
WK=../shared/data/wikitext2/wiki.test.raw
D=${1:-/tmp/spseq}; mkdir -p $D
tail -c 60000 $TS > $D/calib.txt
for mn in s260 t656; do
  [ $mn = s260 ] && M=$M260 || M=$M656
  for tx in ts wk; do
    [ $tx = ts ] && T=$TS || T=$WK
    [ -f $D/base_${mn}_$tx.st ] || $L eval ppl --model $M --text $T --ctx 128 --chunks 40 --save-logits $D/base_${mn}_$tx.st --force > /dev/null
  done
  for crit in wanda sparsegpt; do
    for pat in u50 u70 2:4; do
      case $pat in u50) P="--pattern unstructured --ratio 0.5";; u70) P="--pattern unstructured --ratio 0.7";;
                   *) P="--pattern $pat";; esac
      for mode in dense seq; do
        S=""; [ $mode = seq ] && S="--sequential"
        out=$D/${mn}_${crit}_${pat//:/-}_$mode.safetensors
        $L prune --model $M --out $out --criterion $crit $P --calib-text $D/calib.txt $S --force --json > $out.json
        for tx in ts wk; do
          $L eval kld --model $out --base $D/base_${mn}_$tx.st --json > $out.$tx.kld.json
        done
      done
    done
  done
done
/usr/bin/python3 - "$D" <<'PY'
import json, sys
d = sys.argv[1]
print("| model | text | criterion | pattern | KLD, dense statistics | KLD, sequential | change |")
print("|---|---|---|---|---:|---:|---:|")
for mn, mname in (("s260", "stories260K"), ("t656", "tinystories-656k")):
    for tx, tname in (("ts", "TinyStories"), ("wk", "WikiText-2")):
        for crit in ("wanda", "sparsegpt"):
            for pat, pname in (("u50", "50 %"), ("u70", "70 %"), ("2-4", "2:4")):
                k = [json.load(open("%s/%s_%s_%s_%s.safetensors.%s.kld.json" % (d, mn, crit, pat, m, tx)))["kld"]
                     for m in ("dense", "seq")]
                print("| %s | %s | %s | %s | %.4f | %.4f | %+.1f %% |" % (mname, tname, crit, pname, k[0], k[1],
                                                                        100 * (k[1] / k[0] - 1)))
PY
