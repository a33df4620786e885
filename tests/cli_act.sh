#!/bin/sh
# --act (activation formats, docs/activations.md): quantize records it (inspect
# shows it), run and eval honour and override it, bad names fail with one
# clear line and leave no output, widths a block does not divide fall back.
. tests/cli_lib.sh
M=${LOWBIT_MODELS:-../shared/models}
expect_ok help-run $CLI run --help
check help-run-act grep -q -- "--act" "$T/out"
expect_ok help-eval $CLI eval --help
check help-eval-act grep -q -- "--act" "$T/out"
expect_ok help-quantize $CLI quantize --help
check help-quantize-act grep -q -- "--act" "$T/out"
H="$M/tinystories-656k"
if [ -f "$H/model.safetensors" ]; then
    expect_ok q-act $CLI quantize --model "$H" --out "$T/a.safetensors" --format int8_g32 --act int8
    expect_ok inspect $CLI inspect "$T/a.safetensors"
    check inspect-act grep -q "mlp.down_proj *int8_g32 .* int8_g32" "$T/out"
    expect_ok run-act $CLI run --model "$T/a.safetensors" --tokenizer "$H/tokenizer.json" -p "Once upon a time" -n 8 --temp 0
    expect_ok run-none $CLI run --model "$T/a.safetensors" --tokenizer "$H/tokenizer.json" -p "Once upon a time" -n 8 --temp 0 --act none
    expect_ok run-mxfp4 $CLI run --model "$T/a.safetensors" --tokenizer "$H/tokenizer.json" -p "Once upon a time" -n 8 --temp 0 --act mxfp4
    expect_fail run-bad "--act int9: activation format 'int9' is unknown" $CLI run --model "$T/a.safetensors" --tokenizer "$H/tokenizer.json" -p "x" -n 2 --act int9
    expect_fail q-bad "activation format 'fp5' is unknown" $CLI quantize --model "$H" --out "$T/c.safetensors" --format int8_g32 --act fp5
    check no-partial test ! -e "$T/c.safetensors"
    head -c 6000 "${LOWBIT_DATA:-../shared/data}/tinystories/tinystories_val.txt" > "$T/t.txt"
    expect_ok ppl-base $CLI eval ppl --model "$T/a.safetensors" --tokenizer "$H/tokenizer.json" --text "$T/t.txt" --ctx 128 --act none --save-logits "$T/base.bin"
    expect_ok kld-int4 $CLI eval kld --model "$T/a.safetensors" --base "$T/base.bin" --act int4 --json
    check kld-positive sh -c "grep -q '\"kld\": [0-9.]*e-0[1-9]\\|\"kld\": 0\\.[0-9]*[1-9]' '$T/out'"
    expect_fail kld-bad "--act mxfp5" $CLI eval kld --model "$T/a.safetensors" --base "$T/base.bin" --act mxfp5
else
    echo "SKIP cli_act: no tinystories-656k in $M"; skip=$((skip + 1))
fi
if [ -f "$M/stories260K/stories260K.bin" ]; then
    expect_ok fallback $CLI run --model "$M/stories260K/stories260K.bin" -p "Once" -n 4 --temp 0 --act int8
    check fallback-note grep -q "5 linears keep FP32 inputs" "$T/err"
fi
done_tests
