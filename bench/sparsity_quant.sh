#!/bin/bash
# Pruning with the kept values quantized (issue 12's "alone and with
# INT4/MXFP4"): both real models, both texts, magnitude / wanda / sparsegpt
# x unstructured 50 %, 2:4, 4:8, 8:2:8 with the kept values in int4_g32 or
# mxfp4 (prune, then RTN; sparsegpt's N:M and V:N:M also --joint). Same
# calibration and scoring as bench/sparsity_measure.sh (run that first on
# the same DIR for the dense logits). Usage (repository root, after make):
#   bench/sparsity_quant.sh [DIR]; bench/sparsity_quant.py [DIR]
set -e
L=./build/lowbit
M260=../shared/models/stories260K/stories260K.bin
M656=../shared/models/tinystories-656k
D=${1:-/tmp/sp}
for mn in s260 t656; do
  [ $mn = s260 ] && M=$M260 || M=$M656
  for crit in magnitude wanda sparsegpt; do
    for pat in u50 2:4 4:8 8:2:8; do
      [ $pat = u50 ] && P="--pattern unstructured --ratio 0.5" || P="--pattern $pat"
      C=""; [ $crit != magnitude ] && C="--calib-text $D/calib.txt"
      for fmt in int4_g32 mxfp4; do
        for mode in rtn joint; do
          [ $mode = joint ] && { [ $crit != sparsegpt ] || [ $pat = u50 ]; } && continue
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
