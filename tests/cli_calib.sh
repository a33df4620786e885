#!/bin/sh
# lowbit calib and quantize --calib / --calib-text: statistics of a real model
# on the TinyStories text (few tokens), the byte range taken from the file's
# tail, thread-count independence of the file, and bad input (another model,
# text too short, bad options, corrupt statistics) with no output left.
. tests/cli_lib.sh
M=${LOWBIT_MODELS:-../shared/models}
D=${LOWBIT_DATA:-../shared/data}
M6="$M/tinystories-656k"; M2="$M/stories260K/stories260K.bin"; TXT="$D/tinystories/tinystories_val.txt"
expect_ok help $CLI calib --help
check help-usage grep -q "usage: lowbit calib" "$T/out"
expect_fail unknown-opt "--bogus" $CLI calib --bogus 1
expect_fail missing-args "required" $CLI calib --model "$M6"
if [ -f "$M6/model.safetensors" ] && [ -f "$TXT" ]; then
    size=$(wc -c < "$TXT")
    expect_ok calib-json $CLI calib --model "$M6" --text "$TXT" --out "$T/s1.safetensors" --tokens 600 --ctx 64 --threads 1 --json
    check calib-json-tokens grep -q '"tokens": 600, "ctx": 64' "$T/out"
    check calib-tail grep -q "\"text_end\": $size," "$T/out"
    begin=$(sed -n 's/.*"text_begin": \([0-9]*\),.*/\1/p' "$T/out")
    before=$(sed -n 's/.*"tokens_before": \([0-9]*\),.*/\1/p' "$T/out")
    check calib-region test "$begin" -gt $((size / 2)) -a "$before" -gt 12800
    check calib-line-start sh -c "head -c $begin '$TXT' | tail -c 1 | od -An -c | grep -q '\\\\n'"
    expect_ok calib-threads $CLI calib --model "$M6" --text "$TXT" --out "$T/s2.safetensors" --tokens 600 --ctx 64 --threads 2
    check calib-text-range grep -q "600 tokens from bytes \[$begin, $size)" "$T/out"
    check calib-threads-same cmp -s "$T/s1.safetensors" "$T/s2.safetensors"
    expect_ok calib-from $CLI calib --model "$M6" --text "$TXT" --out "$T/s3.safetensors" --tokens 300 --from-byte 1000
    check calib-from-range grep -q "300 tokens from bytes \[1[0-9][0-9][0-9], [0-9]*) of $size," "$T/out"
    expect_fail calib-exists "exists" $CLI calib --model "$M6" --text "$TXT" --out "$T/s1.safetensors" --tokens 600
    printf 'Once upon a time there was a cat.\n' > "$T/short.txt"
    expect_fail text-short "has [0-9]* tokens in all; --tokens 1000 needs more" $CLI calib --model "$M6" --text "$T/short.txt" --out "$T/x.safetensors" --tokens 1000
    printf 'abc\377def\n' > "$T/bad.txt"
    expect_fail text-utf8 "not valid UTF-8 at byte 3" $CLI calib --model "$M6" --text "$T/bad.txt" --out "$T/x.safetensors" --tokens 2
    expect_fail calib-ctx "exceeds the model's 512 positions" $CLI calib --model "$M6" --text "$TXT" --out "$T/x.safetensors" --ctx 1000
    expect_fail from-byte "--from-byte 99999999" $CLI calib --model "$M6" --text "$TXT" --out "$T/x.safetensors" --from-byte 99999999
    # quantize with the statistics: rtn ignores them, so the file equals plain rtn's
    expect_ok q-calib $CLI quantize --model "$M6" --out "$T/q1.safetensors" --format int4_g32 --calib "$T/s1.safetensors"
    expect_ok q-plain $CLI quantize --model "$M6" --out "$T/q0.safetensors" --format int4_g32
    check q-calib-same cmp -s "$T/q0.safetensors" "$T/q1.safetensors"
    expect_ok q-seq $CLI quantize --model "$M6" --out "$T/q2.safetensors" --format int4_g32 --calib-text "$TXT" --calib-tokens 300 --calib-ctx 100 --sequential --json
    check q-seq-range grep -q "calibration text .*300 tokens from bytes \[[0-9]*, $size)" "$T/err"
    check q-seq-same cmp -s "$T/q0.safetensors" "$T/q2.safetensors"
    expect_fail q-seq-nocalib "--sequential collects statistics on the fly" $CLI quantize --model "$M6" --out "$T/x.safetensors" --format int4_g32 --sequential
    expect_fail q-both "exclude each other" $CLI quantize --model "$M6" --out "$T/x.safetensors" --format int4_g32 --calib "$T/s1.safetensors" --calib-text "$TXT"
    expect_fail q-tokens-alone "go with --calib-text" $CLI quantize --model "$M6" --out "$T/x.safetensors" --format int4_g32 --calib-tokens 100
    expect_fail q-text-short "has [0-9]* tokens in all" $CLI quantize --model "$M6" --out "$T/x.safetensors" --format int4_g32 --calib-text "$T/short.txt"
    head -c 5000 "$T/s1.safetensors" > "$T/trunc.safetensors"
    expect_fail q-trunc "trunc.safetensors" $CLI quantize --model "$M6" --out "$T/x.safetensors" --format int4_g32 --calib "$T/trunc.safetensors"
    expect_fail q-not-stats "not a lowbit calibration statistics file" $CLI quantize --model "$M6" --out "$T/x.safetensors" --format int4_g32 --calib "$M6/model.safetensors"
    expect_fail q-out-is-stats "" $CLI quantize --model "$M6" --out "$T/s1.safetensors" --format int4_g32 --calib "$T/s1.safetensors" --force
    check q-stats-kept cmp -s "$T/s1.safetensors" "$T/s2.safetensors"
    # a method that reads the statistics: a file and the same tokens on the fly give the same bits
    # (skipped while the registry has no gptq: its refusal then says "unknown method")
    $CLI quantize --model "$M6" --out "$T/x.safetensors" --format int4_g32 --method gptq >/dev/null 2>"$T/probe"
    if grep -q "needs calibration statistics" "$T/probe"; then
        check q-gptq-none test ! -e "$T/x.safetensors"
        expect_ok q-gptq-file $CLI quantize --model "$M6" --out "$T/g1.safetensors" --format int4_g32 --method gptq --calib "$T/s1.safetensors"
        expect_ok q-gptq-fly $CLI quantize --model "$M6" --out "$T/g2.safetensors" --format int4_g32 --method gptq --calib-text "$TXT" --calib-tokens 600 --calib-ctx 64
        check q-gptq-same cmp -s "$T/g1.safetensors" "$T/g2.safetensors"
        check q-gptq-differs sh -c "! cmp -s '$T/g1.safetensors' '$T/q0.safetensors'"
    fi
    if [ -f "$M2" ]; then
        expect_fail q-other-model "s1.safetensors: statistics of another model shape" $CLI quantize --model "$M2" --out "$T/x.safetensors" --format int4_g32 --calib "$T/s1.safetensors"
    fi
    check no-output test ! -e "$T/x.safetensors"
    check no-temp sh -c "! ls -a '$T' | grep -q tmp"
else
    echo "SKIP cli_calib: no tinystories-656k or TinyStories text"; skip=$((skip + 1))
fi
done_tests
