#!/bin/bash
# The measurements of docs/sparsity.md (issue 12): both real models, both
# texts, magnitude / wanda / sparsegpt x unstructured 50/60/70 %, 2:4, 4:8,
# 8:3:8, 8:2:8; KL divergence against the dense model's saved logits (40
# chunks of 128 tokens from the start of each text); calibration on the last
# 60 kB of tinystories_val.txt (disjoint from the scored chunks).
# Usage (from the repository root, after make): bench/sparsity_measure.sh [DIR]
# then bench/sparsity_tables.py [DIR] prints the tables.
set -e
L=./build/lowbit
M260=../shared/models/stories260K/stories260K.bin
M656=../shared/models/tinystories-656k
TS=../shared/data/tinystories/tinystories_val.txt
WK=../shared/data/wikitext2/wiki.test.raw
D=${1:-/tmp/sp}; mkdir -p $D
tail -c 60000 $TS > $D/calib.txt
for mn in s260 t656; do
  [ $mn = s260 ] && M=$M260 || M=$M656
  for tx in ts wk; do
    [ $tx = ts ] && T=$TS || T=$WK
    [ -f $D/base_${mn}_$tx.st ] || $L eval ppl --model $M --text $T --ctx 128 --chunks 40 --save-logits $D/base_${mn}_$tx.st --force > /dev/null
  done
  for crit in magnitude wanda sparsegpt; do
    for pat in u50 u60 u70 2:4 4:8 8:3:8 8:2:8; do
      case $pat in u50) P="--pattern unstructured --ratio 0.5";; u60) P="--pattern unstructured --ratio 0.6";;
                   u70) P="--pattern unstructured --ratio 0.7";; *) P="--pattern $pat";; esac
      out=$D/${mn}_${crit}_${pat//:/-}.safetensors
      C=""; [ $crit != magnitude ] && C="--calib-text $D/calib.txt"
      $L prune --model $M --out $out --criterion $crit $P $C --force --json > $out.json
      for tx in ts wk; do
        [ $tx = ts ] && T=$TS || T=$WK
        $L eval kld --model $out --base $D/base_${mn}_$tx.st --json > $out.$tx.kld.json 2>/dev/null || echo "kld failed $out $tx"
      done
      echo "$mn $crit $pat done"
    done
  done
done
for mn in s260 t656; do   # 2:4 with int4_g32 values, and int4_g32 alone
  [ $mn = s260 ] && M=$M260 || M=$M656
  $L quantize --model $M --out $D/${mn}_rtn_int4.safetensors --format int4_g32 --force --json > $D/${mn}_rtn_int4.safetensors.json 2>/dev/null
  for tx in ts wk; do $L eval kld --model $D/${mn}_rtn_int4.safetensors --base $D/base_${mn}_$tx.st --json > $D/${mn}_rtn_int4.safetensors.$tx.kld.json; done
  for crit in magnitude wanda sparsegpt; do
    out=$D/${mn}_${crit}_2-4-int4.safetensors
    C=""; [ $crit != magnitude ] && C="--calib-text $D/calib.txt"
    $L prune --model $M --out $out --criterion $crit --pattern 2:4 --format int4_g32 $C --force --json > $out.json
    for tx in ts wk; do $L eval kld --model $out --base $D/base_${mn}_$tx.st --json > $out.$tx.kld.json; done
  done
done
for mn in s260 t656; do   # the same model saved dense by lowbit, for the file-size ratios
  [ $mn = s260 ] && M=$M260 || M=$M656
  $L prune --model $M --out $D/${mn}_dense.safetensors --keep '*' --force --json > $D/${mn}_dense.safetensors.json
done
