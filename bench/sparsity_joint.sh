#!/bin/bash
# SparseGPT's joint prune-and-quantize against pruning then RTN (issue 12's
# acceptance "joint 2:4 + INT4 below pruning then RTN"): both real models,
# both texts, sparsegpt at 2:4 and 4:8 with the kept values in int4_g32 and
# mxfp4, each as prune-then-RTN and as --joint; KL divergence against the
# dense model's logits (40 chunks of 128 tokens from the start of each
# text; calibration on the last 60 kB of tinystories_val.txt, as
# bench/sparsity_measure.sh). Usage (repository root, after make):
#   bench/sparsity_joint.sh [DIR]; bench/sparsity_joint.py [DIR]; bench/sparsity_svg.py [DIR]
# (the last section: quantization alone with RTN, the reference curve of the plots)
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
  for fmt in int4_g32 mxfp4; do
    for pat in 2:4 4:8; do
      for mode in rtn joint; do
        J=""; [ $mode = joint ] && J="--joint"
        out=$D/${mn}_sgpt_${pat//:/-}_${fmt}_$mode.safetensors
        $L prune --model $M --out $out --criterion sparsegpt --pattern $pat --format $fmt $J \
          --calib-text $D/calib.txt --force --json > $out.json
        for tx in ts wk; do
          $L eval kld --model $out --base $D/base_${mn}_$tx.st --json > $out.$tx.kld.json
        done
        echo "$mn $fmt $pat $mode done"
      done
    done
  done
done
# quantization alone (RTN), the reference curve of bench/sparsity_svg.py
for mn in s260 t656; do
  [ $mn = s260 ] && M=$M260 || M=$M656
  for fmt in int8_g32 mxfp6_e2m3 int4_g32 mxfp4 int3_g32 int2_g32; do
    out=$D/${mn}_q_$fmt.safetensors
    $L quantize --model $M --out $out --format $fmt --force --json > $out.json 2>/dev/null
    for tx in ts wk; do $L eval kld --model $out --base $D/base_${mn}_$tx.st --json > $out.$tx.kld.json; done
  done
  echo "$mn quantization-only done"
done
