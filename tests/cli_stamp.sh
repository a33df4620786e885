#!/bin/sh
# --act stamp-KIND:FORMAT[:AVG] (STaMP, docs/activations.md): quantize records
# it, run and eval take it, bad specs fail with one line and leave no output.
. tests/cli_lib.sh
M=${LOWBIT_MODELS:-../shared/models}
H="$M/tinystories-656k"
if [ -f "$H/model.safetensors" ]; then
    expect_ok q-stamp $CLI quantize --model "$H" --out "$T/s.safetensors" --format int8_g32 --act stamp-dct:int4
    expect_ok inspect $CLI inspect "$T/s.safetensors"
    check inspect-stamp grep -q "mlp.down_proj *int8_g32 .* stamp-dct:int4_g32:4.25" "$T/out"
    expect_ok run-stamp $CLI run --model "$T/s.safetensors" --tokenizer "$H/tokenizer.json" -p "Once upon a time" -n 8 --temp 0
    expect_ok run-haar $CLI run --model "$T/s.safetensors" --tokenizer "$H/tokenizer.json" -p "Once upon a time" -n 4 --temp 0 --act stamp-haar:int4:4.5
    expect_fail run-bad "unknown STaMP transform 'fft'" $CLI run --model "$T/s.safetensors" --tokenizer "$H/tokenizer.json" -p "x" -n 2 --act stamp-fft:int4
    expect_fail q-bad "average bits '9' must be a number in \[4, 8\]" $CLI quantize --model "$H" --out "$T/c.safetensors" --format int8_g32 --act stamp-dct:int4:9
    check no-partial test ! -e "$T/c.safetensors"
    head -c 6000 "${LOWBIT_DATA:-../shared/data}/tinystories/tinystories_val.txt" > "$T/t.txt"
    expect_ok ppl-base $CLI eval ppl --model "$T/s.safetensors" --tokenizer "$H/tokenizer.json" --text "$T/t.txt" --ctx 128 --act none --save-logits "$T/base.bin"
    expect_ok kld-stamp $CLI eval kld --model "$T/s.safetensors" --base "$T/base.bin" --json
    check kld-positive sh -c "grep -q '\"kld\": [0-9.]*e-0[1-9]\\|\"kld\": 0\\.[0-9]*[1-9]' '$T/out'"
else
    echo "SKIP cli_stamp: no tinystories-656k in $M"; skip=$((skip + 1))
fi
done_tests
