#!/bin/sh
# dartquant (docs/activations.md#dartquant): quantize with a learned rotation
# on stories260K (calibration on the fly from a small text), inspect shows the
# dense rotation, run works with int4 activations; without calibration, or
# with a statistics file (no activation rows), it fails with one clear line
# and leaves no output.
. tests/cli_lib.sh
M=${LOWBIT_MODELS:-../shared/models}
S="$M/stories260K"
if [ -f "$S/stories260K.bin" ]; then
    head -c 20000 "${LOWBIT_DATA:-../shared/data}/tinystories/tinystories_val.txt" > "$T/t.txt"
    expect_ok q-dart $CLI quantize --model "$S/stories260K.bin" --tokenizer "$S/tok512.bin" --out "$T/d.safetensors" \
        --format int4_g32 --method dartquant --act int4 --calib-text "$T/t.txt" --calib-tokens 1024 --calib-ctx 64
    expect_ok inspect $CLI inspect "$T/d.safetensors"
    check inspect-rot grep -q "q_proj *int4_g32 *dartquant .* R " "$T/out"
    expect_ok run $CLI run --model "$T/d.safetensors" --tokenizer "$S/tok512.bin" -p "Once upon a time" -n 8 --temp 0
    expect_fail q-nocalib "needs calibration" $CLI quantize --model "$S/stories260K.bin" --out "$T/e.safetensors" \
        --format int4_g32 --method dartquant
    check no-partial test ! -e "$T/e.safetensors"
    expect_ok calib $CLI calib --model "$S/stories260K.bin" --tokenizer "$S/tok512.bin" --text "$T/t.txt" --tokens 512 \
        --ctx 64 --out "$T/c.safetensors"
    expect_fail q-statsfile "--calib-text" $CLI quantize --model "$S/stories260K.bin" --out "$T/e.safetensors" \
        --format int4_g32 --method dartquant --calib "$T/c.safetensors"
    check no-partial-2 test ! -e "$T/e.safetensors"
else
    echo "SKIP cli_dart: no stories260K in $M"; skip=$((skip + 1))
fi
done_tests
