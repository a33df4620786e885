#!/bin/bash
# Pruning with the kept values quantized (issue 12's "alone and with
# INT4/MXFP4"): both real models, both texts, magnitude / wanda / sparsegpt
# x unstructured 50/60/70 %, 2:4, 4:8, 8:2:8 with the kept values in
# int4_g32 or mxfp4 (prune, then RTN; unstructured masks at the exact ratio,
# padded storage; sparsegpt's N:M and V:N:M also --joint). Same calibration
# and scoring as bench/sparsity_measure.sh, whose dense logits it needs (made
# here when DIR lacks them, as are the F32 unstructured files). PATS picks
# the patterns (default all: "u50 u60 u70 2:4 4:8 8:2:8"), CRITS the
# criteria (default "magnitude wanda sparsegpt"). sparsegpt with --format
# and an unstructured pattern uses prune's default per-row groups.
# Usage (repository root, after make):
#   [PATS="u50 u60 u70"] [CRITS=sparsegpt] bench/sparsity_quant.sh [DIR]; bench/sparsity_quant.py [DIR]
set -e
L=./build/lowbit
M260=../shared/models/stories260K/stories260K.bin
M656=../shared/models/tinystories-656k
TS=../shared/data/tinystories/tinystories_val.txt
WK=../shared/data/wikitext2/wiki.test.raw
D=${1:-/tmp/sp}; mkdir -p $D
[ -f $D/calib.txt ] || tail -c 60000 $TS > $D/calib.txt
for mn in s260 t656; do
  [ $mn = s260 ] && M=$M260 || M=$M656
  for tx in ts wk; do
    [ $tx = ts ] && T=$TS || T=$WK
    [ -f $D/base_${mn}_$tx.st ] || $L eval ppl --model $M --text $T --ctx 128 --chunks 40 --save-logits $D/base_${mn}_$tx.st --force > /dev/null
  done
  for fmt in int4_g32 mxfp4; do   # the dense file of each format, for the file sizes
    [ -f $D/${mn}_dense_$fmt.safetensors ] || $L quantize --model $M --out $D/${mn}_dense_$fmt.safetensors --format $fmt --force > /dev/null
  done
  for crit in ${CRITS:-magnitude wanda sparsegpt}; do
    for pat in ${PATS:-u50 u60 u70 2:4 4:8 8:2:8}; do
      case $pat in u*) P="--pattern unstructured --ratio 0.${pat#u}";; *) P="--pattern $pat";; esac
      C=""; [ $crit != magnitude ] && C="--calib-text $D/calib.txt"
      f32=$D/${mn}_${crit}_${pat//:/-}.safetensors
      if [ ${pat:0:1} = u ] && [ ! -f $f32.ts.kld.json ]; then
        $L prune --model $M --out $f32 --criterion $crit $P $C --force --json > $f32.json
        for tx in ts wk; do $L eval kld --model $f32 --base $D/base_${mn}_$tx.st --json > $f32.$tx.kld.json; done
      fi
      for fmt in int4_g32 mxfp4; do
        for mode in rtn joint; do
          [ $mode = joint ] && { [ $crit != sparsegpt ] || [ ${pat:0:1} = u ]; } && continue
          J=""; [ $mode = joint ] && J="--joint"
          out=$D/${mn}_${crit}_${pat//:/-}_${fmt}_${mode}.safetensors
          $L prune --model $M --out $out --criterion $crit $P --format $fmt $J $C --force --json > $out.json
          for tx in ts wk; do $L eval kld --model $out --base $D/base_${mn}_$tx.st --json > $out.$tx.kld.json; done
        done
      done
      echo "$mn $crit $pat done"
    done
  done
done
