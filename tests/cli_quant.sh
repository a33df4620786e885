#!/bin/sh
# lowbit quantize: a real model end to end, the summary, bad input (unknown
# format/method, non-power-of-two group, missing model) with no output left.
. tests/cli_lib.sh
M=${LOWBIT_MODELS:-../shared/models}
expect_ok help $CLI quantize --help
check help-usage grep -q usage "$T/out"
if [ -f "$M/stories260K/stories260K.bin" ]; then
    expect_ok q-rtn $CLI quantize --model "$M/stories260K/stories260K.bin" --out "$T/a.safetensors" --format int4_asym --group 32
    check q-tokenizer-hint grep -q -- "--tokenizer .*tok512.bin" "$T/err"
    check q-summary grep -q "linears: 35 quantized, 0 kept" "$T/out"
    check q-padded grep -q "down_proj.weight .*int4_g32_asym .*quantized (padded to 192)" "$T/out"
    check q-file test -s "$T/a.safetensors"
    expect_ok q-json $CLI quantize --model "$M/stories260K/stories260K.bin" --out "$T/b.safetensors" --format mxfp4 --hadamard 32 --scale-rule mse --json --keep '*layers.0.*'
    check q-json-method grep -q '"method": "hadamard+rtn"' "$T/out"
    check q-json-keep grep -q '"status": "kept (--keep)"' "$T/out"
    expect_ok inspect $CLI inspect "$T/b.safetensors"
    check inspect-packed grep -q "weight_packed" "$T/out"
    check inspect-summary grep -q "self_attn.q_proj *mxfp4 *hadamard+rtn *32 H32" "$T/out"
    expect_fail bad-format "unknown format 'int5'" $CLI quantize --model "$M/stories260K/stories260K.bin" --out "$T/c.safetensors" --format int5
    expect_fail bad-method "unknown method 'no-such-method'" $CLI quantize --model "$M/stories260K/stories260K.bin" --out "$T/c.safetensors" --format mxfp4 --method no-such-method
    expect_fail gptq-no-calib "needs calibration statistics" $CLI quantize --model "$M/stories260K/stories260K.bin" --out "$T/c.safetensors" --format mxfp4 --method gptq
    expect_fail bad-group "not a power of two" $CLI quantize --model "$M/stories260K/stories260K.bin" --out "$T/c.safetensors" --format int4 --group 48
    expect_fail bad-rule "scale-rule" $CLI quantize --model "$M/stories260K/stories260K.bin" --out "$T/c.safetensors" --format int4 --group 32 --scale-rule best
    expect_fail bad-full "int4_g32_asym: scale rule full applies to symmetric INT formats" $CLI quantize --model "$M/stories260K/stories260K.bin" --out "$T/c.safetensors" --format int4_asym --group 32 --scale-rule full
    check no-partial test ! -e "$T/c.safetensors"
    expect_ok q-full $CLI quantize --model "$M/stories260K/stories260K.bin" --out "$T/f.safetensors" --format int4_g32 --scale-rule full
    check q-full-summary grep -q "linears: 35 quantized, 0 kept" "$T/out"
    expect_ok q-padded-run $CLI run --model "$T/f.safetensors" --tokenizer "$M/stories260K/tok512.bin" --temp 0 -n 8
    check q-padded-story grep -q "Once upon a time" "$T/out"
    expect_ok q-full-inspect $CLI inspect "$T/f.safetensors"
    check q-full-int4 grep -q "self_attn.q_proj *int4_g32" "$T/out"
    # mixed precision under a bits budget: each linear's choice in the table, the mean within the budget
    S260="$M/stories260K/stories260K.bin"; TXT="${LOWBIT_DATA:-../shared/data}/tinystories/tinystories_val.txt"
    if [ -f "$TXT" ]; then
        expect_ok q-budget $CLI quantize --model "$S260" --tokenizer "$M/stories260K/tok512.bin" --out "$T/g.safetensors" --format int4_g32 --method rtn --calib-text "$TXT" --calib-tokens 512 --bits-budget 5.2 --budget-formats int8_g32,int4_g64 --json
        check q-budget-mix grep -q '"format": "int8_g32"' "$T/out"
        check q-budget-mean /usr/bin/python3 -c "import json,sys; r=json.load(open('$T/out')); b=r['linear_bits_per_weight']; sys.exit(not 4.5 < b <= 5.2)"
        expect_ok q-budget-run $CLI run --model "$T/g.safetensors" --tokenizer "$M/stories260K/tok512.bin" --temp 0 -n 8
        check q-budget-story grep -q "Once upon a time" "$T/out"
        expect_fail budget-low "below the cheapest candidates" $CLI quantize --model "$S260" --tokenizer "$M/stories260K/tok512.bin" --out "$T/h.safetensors" --format int4_g32 --method rtn --calib-text "$TXT" --calib-tokens 512 --bits-budget 3 --budget-formats int8_g32
        expect_fail budget-metric-alone "need --bits-budget B" $CLI quantize --model "$S260" --out "$T/h.safetensors" --format int4_g32 --budget-metric 2
        expect_fail budget-no-calib "give --calib STATS or --calib-text" $CLI quantize --model "$S260" --out "$T/h.safetensors" --format int4_g32 --bits-budget 4.5
        check no-budget-partial test ! -e "$T/h.safetensors"
    fi
    check no-temp sh -c "! ls '$T' | grep -q tmp"
else
    echo "SKIP cli_quant: no stories260K in $M"; skip=$((skip + 1))
fi
expect_fail no-model "no such file" $CLI quantize --model "$T/none.bin" --out "$T/d.safetensors" --format mxfp4
expect_fail missing-args "required" $CLI quantize --format mxfp4
done_tests
