#!/bin/sh
# CLI of the number formats: lowbit formats, lowbit tensor quantize/dequantize/error,
# and every bad input (one clear line, non-zero exit, no output file left behind).
. tests/cli_lib.sh
expect_ok formats $CLI formats
check formats-mxfp4 grep -q '^mxfp4  *4.25  *32' "$T/out"
check formats-nvfp4 grep -q '^nvfp4  *4.5  *16  *fp32' "$T/out"
check formats-int8ch grep -q '^int8_ch  *8  *row' "$T/out"
expect_ok formats-json $CLI formats --json
check formats-json-nf4 grep -q '"name": "nf4", "bits_per_weight": 4.25, "block": 64' "$T/out"
expect_fail formats-bad "unknown option" $CLI formats --bogus

# inputs: 64 zero floats, and 64 finite random floats (random bytes with the top
# exponent bits of each value cleared, so |x| < 2; POSIX od + awk only)
LC_ALL=C awk 'BEGIN { for (i = 0; i < 64; i++) printf "%c%c%c%c", 0, 0, 0, 0 }' > "$T/zeros.f32"
head -c 256 /dev/urandom > "$T/rand.f32"
od -An -v -tu1 "$T/rand.f32" | LC_ALL=C awk '{ for (i = 1; i <= NF; i++) { n++; b = $i; if (n % 4 == 0) b = b % 64; printf "%c", b } }' > "$T/x.f32"
check x-size test "$(wc -c < "$T/x.f32")" -eq 256

for f in mxfp4 nvfp4 int4_g32 int4_g32_asym int8_ch nf4 ternary mxfp8_e4m3 mxint8; do
    expect_ok "q-$f" $CLI tensor quantize --format $f "$T/x.f32" "$T/$f.q"
    expect_ok "d-$f" $CLI tensor dequantize --format $f "$T/$f.q" "$T/$f.f32"
    check "d-$f-size" test "$(wc -c < "$T/$f.f32")" -eq 256
    expect_ok "e-$f" $CLI tensor error --format $f "$T/x.f32" --json
    check "e-$f-json" grep -q '"qsnr_db"' "$T/out"
done
# packed size: 64-byte header + 2 blocks of 17 bytes (mxfp4), + 4 blocks of 9 (nvfp4)
check q-mxfp4-size test "$(wc -c < "$T/mxfp4.q")" -eq $((64 + 34))
check q-nvfp4-size test "$(wc -c < "$T/nvfp4.q")" -eq $((64 + 36))
check q-magic sh -c "head -c 4 '$T/mxfp4.q' | grep -q LBFQ"
# zeros quantize to zeros, error 0 -> QSNR printed as inf / 999 in JSON
expect_ok zeros-q $CLI tensor quantize --format mxfp4 "$T/zeros.f32" "$T/z.q"
expect_ok zeros-d $CLI tensor dequantize --format mxfp4 "$T/z.q" "$T/z.f32"
check zeros-same cmp -s "$T/zeros.f32" "$T/z.f32"
expect_ok zeros-err $CLI tensor error --format nvfp4 "$T/zeros.f32" --json
check zeros-err-null grep -q '"mse": 0, "qsnr_db": null, "max_abs_err": 0' "$T/out"
# rules and --cols
expect_ok rule-ceil $CLI tensor quantize --format mxfp4 --scale-rule ceil "$T/x.f32" "$T/c.q"
expect_ok rule-mse $CLI tensor error --format mxfp4 --scale-rule mse "$T/x.f32"
check error-text grep -q 'qsnr:' "$T/out"
expect_ok rule-full $CLI tensor quantize --format int4_g32 --scale-rule full "$T/x.f32" "$T/full.q"
expect_ok rule-full-d $CLI tensor dequantize --format int4_g32 "$T/full.q" "$T/full.f32"
expect_ok rule-full-err $CLI tensor error --format int3_ch_bf16 --scale-rule full "$T/x.f32"
expect_fail rule-full-nf4 "scale rule full applies to symmetric INT formats" $CLI tensor quantize --format nf4 --scale-rule full "$T/x.f32" "$T/o13"
expect_ok cols $CLI tensor quantize --format int8_ch --cols 16 "$T/x.f32" "$T/ch.q"
check cols-size test "$(wc -c < "$T/ch.q")" -eq $((64 + 4 * (2 + 16)))
expect_ok cols-d $CLI tensor dequantize --format int8_ch "$T/ch.q" "$T/ch.f32"

# bad input: clear line, non-zero exit, no output left
expect_fail bad-format "unknown format 'nope'" $CLI tensor quantize --format nope "$T/x.f32" "$T/o1"
check bad-format-noout test ! -e "$T/o1"
head -c 10 "$T/x.f32" > "$T/odd.f32"
expect_fail bad-size4 "not a positive multiple of 4" $CLI tensor quantize --format mxfp4 "$T/odd.f32" "$T/o2"
check bad-size4-noout test ! -e "$T/o2"
head -c 40 "$T/x.f32" > "$T/ten.f32"
expect_fail bad-block "not a multiple of the mxfp4 block size 32" $CLI tensor quantize --format mxfp4 "$T/ten.f32" "$T/o3"
check bad-block-noout test ! -e "$T/o3"
expect_fail bad-block-err "block size" $CLI tensor error --format nvfp4 "$T/ten.f32"
expect_fail bad-cols "do not split" $CLI tensor quantize --format int8_ch --cols 7 "$T/x.f32" "$T/o4"
check bad-cols-noout test ! -e "$T/o4"
expect_fail missing-in "cannot open" $CLI tensor quantize --format mxfp4 "$T/missing.f32" "$T/o5"
check missing-in-noout test ! -e "$T/o5"
expect_fail missing-dir "cannot create" $CLI tensor quantize --format mxfp4 "$T/x.f32" "$T/nodir/o6"
check missing-dir-noout test ! -e "$T/nodir"
expect_fail missing-dir-d "cannot create" $CLI tensor dequantize --format mxfp4 "$T/mxfp4.q" "$T/nodir/o7"
expect_fail unreadable "not a regular file" $CLI tensor quantize --format mxfp4 "$T" "$T/o8"
check unreadable-noout test ! -e "$T/o8"
expect_fail wrong-format "holds format 'mxfp4', not 'nvfp4'" $CLI tensor dequantize --format nvfp4 "$T/mxfp4.q" "$T/o9"
check wrong-format-noout test ! -e "$T/o9"
expect_fail not-packed "no LBFQ header" $CLI tensor dequantize --format mxfp4 "$T/x.f32" "$T/o10"
check not-packed-noout test ! -e "$T/o10"
head -c 80 "$T/mxfp4.q" > "$T/trunc.q"
expect_fail truncated "does not match the file size" $CLI tensor dequantize --format mxfp4 "$T/trunc.q" "$T/o11"
check truncated-noout test ! -e "$T/o11"
expect_fail bad-rule "unknown scale rule" $CLI tensor quantize --format mxfp4 --scale-rule up "$T/x.f32" "$T/o12"
expect_fail no-format "format is required" $CLI tensor quantize "$T/x.f32" "$T/o13"
expect_fail bad-sub "unknown tensor command" $CLI tensor squash --format mxfp4 "$T/x.f32"
expect_fail missing-out "needs IN and OUT" $CLI tensor quantize --format mxfp4 "$T/x.f32"
expect_ok tensor-help $CLI tensor --help
check tensor-help-usage grep -q usage "$T/out"
check no-tmp-left sh -c "! ls '$T' | grep -q '\.tmp\.'"
done_tests
