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
    # static scales: calibrated on the text's tail, then eval with --act int8:static --act-calib
    expect_ok calib $CLI calib --model "$H" --tokenizer "$H/tokenizer.json" --text "$T/t.txt" --tokens 256 --ctx 64 --out "$T/c.calib"
    expect_ok kld-static $CLI eval kld --model "$T/a.safetensors" --base "$T/base.bin" --act int8:static --act-calib "$T/c.calib" --json
    check kld-static-positive sh -c "grep -q '\"kld\": [0-9.]*e-0[1-9]\\|\"kld\": 0\\.[0-9]*[1-9]' '$T/out'"
    expect_fail static-nocalib "static scales need calibration statistics" $CLI eval kld --model "$T/a.safetensors" --base "$T/base.bin" --act int8:static
    expect_fail static-mx "'mxfp4' is no symmetric INT block format" $CLI eval kld --model "$T/a.safetensors" --base "$T/base.bin" --act mxfp4 --act-calib "$T/c.calib"
    expect_fail static-noact "--act-calib needs --act" $CLI eval kld --model "$T/a.safetensors" --base "$T/base.bin" --act-calib "$T/c.calib"
    expect_fail static-nofile "--act-calib" $CLI eval kld --model "$T/a.safetensors" --base "$T/base.bin" --act int8 --act-calib "$T/none.calib"
    # static scales stored by quantize: the file gives eval's --act-calib figure without it
    expect_ok q-static $CLI quantize --model "$H" --out "$T/s.safetensors" --format int8_g32 --act int8:static --act-calib "$T/c.calib"
    expect_ok inspect-static $CLI inspect "$T/s.safetensors"
    check inspect-static-act grep -q "mlp.down_proj *int8_g32 .* int8_g32:static" "$T/out"
    expect_ok kld-file-static $CLI eval kld --model "$T/s.safetensors" --base "$T/base.bin" --json
    sed 's/"model": "[^"]*", //' "$T/out" > "$T/file.json"
    expect_ok kld-flag-static $CLI eval kld --model "$T/a.safetensors" --base "$T/base.bin" --act int8:static --act-calib "$T/c.calib" --json
    sed 's/"model": "[^"]*", //' "$T/out" > "$T/flag.json"
    check static-file-equals-flag sh -c "grep -o '\"kld\": [^,]*' '$T/file.json' > '$T/k1' && grep -o '\"kld\": [^,]*' '$T/flag.json' > '$T/k2' && test -s '$T/k1' && cmp -s '$T/k1' '$T/k2'"
    expect_fail q-static-noact "--act-calib needs --act" $CLI quantize --model "$H" --out "$T/d.safetensors" --format int8_g32 --act-calib "$T/c.calib"
    expect_fail q-static-rot "transforms" $CLI quantize --model "$H" --out "$T/d.safetensors" --format int8_g32 --hadamard 0 --act int8:static --act-calib "$T/c.calib"
    expect_fail q-static-quarot "not --quarot" $CLI quantize --model "$H" --out "$T/d.safetensors" --format int8_g32 --quarot --act int8 --act-calib "$T/c.calib"
    expect_fail q-static-mx "no symmetric INT block format" $CLI quantize --model "$H" --out "$T/d.safetensors" --format int8_g32 --act mxfp4 --act-calib "$T/c.calib"
    check q-static-no-partial test ! -e "$T/d.safetensors"
else
    echo "SKIP cli_act: no tinystories-656k in $M"; skip=$((skip + 1))
fi
if [ -f "$M/stories260K/stories260K.bin" ]; then
    expect_ok fallback $CLI run --model "$M/stories260K/stories260K.bin" -p "Once" -n 4 --temp 0 --act int8
    check fallback-note grep -q "5 linears keep FP32 inputs" "$T/err"
fi
done_tests
