#!/bin/sh
# lowbit pack / unpack: round trips (file and folder), byte-identical BF16
# restore, JSON output, refusals (F16, already packed, not packed, damaged),
# and no output left behind on failure.
. tests/cli_lib.sh
M=${LOWBIT_MODELS:-../shared/models}/tinystories-656k
expect_ok help-pack $CLI pack --help
check help-pack-usage grep -q usage "$T/out"
expect_fail pack-no-out "required" $CLI pack --model x
expect_fail pack-bad-opt "unknown option" $CLI pack --frob
expect_fail pack-missing-in "nope" $CLI pack --model "$T/nope.safetensors" --out "$T/o"
if [ -f "$M/model.safetensors" ]; then
    expect_ok pack-f32 $CLI pack --model "$M/model.safetensors" --out "$T/p.st" --json
    check pack-json grep -q '"rounded_f32_tensors": 20' "$T/out"
    check pack-ratio awk -F'"ratio_vs_bf16": ' '{split($2, a, ","); exit !(a[1] > 0.5 && a[1] < 0.70)}' "$T/out"
    expect_ok pack-text $CLI pack --model "$M/model.safetensors" --out "$T/p2.st"
    check pack-text-note grep -q "rounded to BF16" "$T/out"
    expect_ok unpack $CLI unpack --model "$T/p.st" --out "$T/u.st"
    expect_ok repack-bf16 $CLI pack --model "$T/u.st" --out "$T/pp.st" --stream-len 1000 --threads 2
    expect_ok unpack-bf16 $CLI unpack --model "$T/pp.st" --out "$T/uu.st" --json
    check bf16-byte-identical cmp -s "$T/u.st" "$T/uu.st"
    check bf16-sha-identical test "$(sha256sum < "$T/u.st")" = "$(sha256sum < "$T/uu.st")"
    expect_fail already-packed "already packed" $CLI pack --model "$T/p.st" --out "$T/x.st"
    check no-output-left test ! -e "$T/x.st"
    expect_fail not-packed "not a packed model" $CLI unpack --model "$T/u.st" --out "$T/x.st"
    # damage one byte near the end (exponent bits of the last tensor)
    n=$(wc -c < "$T/p.st")
    cp "$T/p.st" "$T/bad.st"
    printf '\377' | dd of="$T/bad.st" bs=1 seek=$((n - 50)) conv=notrunc 2>/dev/null
    expect_fail damaged "corrupt" $CLI unpack --model "$T/bad.st" --out "$T/x.st"
    check damaged-no-output test ! -e "$T/x.st"
    head -c $((n - 10)) "$T/p.st" > "$T/trunc.st"
    expect_fail truncated "lowbit unpack:" $CLI unpack --model "$T/trunc.st" --out "$T/x.st"
    # folders: safetensors packed, other files copied; unpack restores the folder
    expect_ok pack-folder $CLI pack --model "$M" --out "$T/pf"
    check folder-config cmp -s "$M/config.json" "$T/pf/config.json"
    check folder-tokenizer cmp -s "$M/tokenizer.json" "$T/pf/tokenizer.json"
    expect_ok unpack-folder $CLI unpack --model "$T/pf" --out "$T/uf"
    check folder-bf16 cmp -s "$T/u.st" "$T/uf/model.safetensors"
    expect_fail folder-exists "exists" $CLI pack --model "$M" --out "$T/pf"
    # run / eval on the packed folder equal the BF16 folder's, bit for bit
    D=${LOWBIT_DATA:-../shared/data}/tinystories/tinystories_val.txt
    if [ -f "$D" ]; then
        expect_ok eval-bf16 $CLI eval ppl --model "$T/uf" --text "$D" --ctx 64 --chunks 3 --json
        sed -E 's/"model": "[^"]*", //; s/, "seconds".*//' "$T/out" > "$T/e1"
        expect_ok eval-packed $CLI eval ppl --model "$T/pf" --text "$D" --ctx 64 --chunks 3 --json
        sed -E 's/"model": "[^"]*", //; s/, "seconds".*//' "$T/out" > "$T/e2"
        check eval-identical cmp -s "$T/e1" "$T/e2"
        check eval-has-nll grep -q '"nll"' "$T/e1"
    fi
    expect_ok run-bf16 $CLI run --model "$T/uf" -p "Once upon a time" -n 24 --temp 0
    cp "$T/out" "$T/r1"
    expect_ok run-packed $CLI run --model "$T/pf" -p "Once upon a time" -n 24 --temp 0 --threads 2
    check run-identical cmp -s "$T/r1" "$T/out"
else
    echo "SKIP cli_pack: no $M"; skip=$((skip + 1))
fi
# F16 input is refused: a one-tensor safetensors written by hand
hdr='{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}  '
printf '\070\000\000\000\000\000\000\000%s\000\074\000\100' "$hdr" > "$T/f16.st"
expect_fail f16 "F16" $CLI pack --model "$T/f16.st" --out "$T/x.st"
check f16-no-output test ! -e "$T/x.st"
done_tests
