#!/bin/sh
# budget_quant.sh: the mixed-precision run of docs/results.md (issue 9, the
# 4.5-bit target): `lowbit bench quant` on both real models and both texts
# (ctx 128, 100 chunks, statistics and the budget's KL probes from the
# text's tail, disjoint from the scored chunks), methods mr-gptq and
# gptq:act on int4_g32 at a budget of 4.5 bits/weight over the linears, the
# candidates below, metric 2 (the model's KL divergence with one linear
# quantized), plus the same methods without a budget. Prints each run's
# markdown table. Usage: sh bench/budget_quant.sh [OUT] (default bench-budget).
out=${1:-bench-budget}
M=${LOWBIT_MODELS:-../shared/models}; D=${LOWBIT_DATA:-../shared/data}
CLI=${LOWBIT_CLI:-build/lowbit}
CAND="int3_g32,int3_g32_asym,int4_g64,int4_g128,int4_g32_asym,mxfp6_e2m3,int8_g32"
mkdir -p "$out" || exit 1
for run in "tinystories-656k tinystories/tinystories_val.txt 656k-ts" \
           "tinystories-656k wikitext2/wiki.test.raw 656k-wt" \
           "stories260K/stories260K.bin tinystories/tinystories_val.txt 260k-ts" \
           "stories260K/stories260K.bin wikitext2/wiki.test.raw 260k-wt"; do
    set -- $run
    tok=""; case $1 in stories260K*) tok="--tokenizer $M/stories260K/tok512.bin";; esac
    echo "## $3"
    $CLI bench quant --model "$M/$1" $tok --text "$D/$2" --ctx 128 --chunks 100 --gen 0 --threads 2 \
        --methods mr-gptq,gptq:act --formats int4_g32 --bits-budget 4.5 --budget-formats "$CAND" \
        --budget-metric 2 --out "$out/$3" | grep '|' || exit 1
done
