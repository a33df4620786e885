#!/bin/sh
# calib_quant.sh: the calibrated-methods table of docs/results.md (issue 9).
# Runs `lowbit bench quant` with ten methods x fourteen formats on both real
# models and both texts (ctx 128, 100 chunks, statistics from 16384 tokens
# of the text's tail, disjoint from the scored chunks), into OUT/<tag>/, then
# prints the summary tables (bench/calib_tables.py). About 15 minutes on 2
# cores. Usage: sh bench/calib_quant.sh [OUT] (default bench-calib).
out=${1:-bench-calib}
M=${LOWBIT_MODELS:-../shared/models}; D=${LOWBIT_DATA:-../shared/data}
CLI=${LOWBIT_CLI:-build/lowbit}
METH="rtn,sinq,hadamard+rtn,rtn:calib,gptq,gptq:act,mr-gptq,qronos,awq,awq+sinq"
FMT="int4_g32,int4_g32_asym,int4_g64,int4_g64_asym,int4_g128,int4_g128_asym,int3_g32_asym,int3_g64_asym,int2_g32_asym,mxfp4,nvfp4,nvint4,nf4,mxint8"
mkdir -p "$out" || exit 1
for run in "stories260K/stories260K.bin tinystories/tinystories_val.txt 260k-ts" \
           "stories260K/stories260K.bin wikitext2/wiki.test.raw 260k-wt" \
           "tinystories-656k tinystories/tinystories_val.txt 656k-ts" \
           "tinystories-656k wikitext2/wiki.test.raw 656k-wt"; do
    set -- $run
    tok=""; case $1 in stories260K*) tok="--tokenizer $M/stories260K/tok512.bin";; esac
    $CLI bench quant --model "$M/$1" $tok --text "$D/$2" --ctx 128 --chunks 100 --gen 0 --threads 1 \
        --methods "$METH" --formats "$FMT" --out "$out/$3" --json > /dev/null || exit 1
done
/usr/bin/python3 bench/calib_tables.py "$out"
