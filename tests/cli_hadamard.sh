#!/bin/sh
# lowbit tensor quantize/dequantize/error --hadamard N: the rotated round trip
# agrees bit for bit with the same steps done by separate commands (lowbit
# hadamard + tensor quantize/dequantize + hadamard --inverse), error reports
# the original-domain QSNR (checked with awk on the files), rotation helps
# block formats on outlier data, and bad N / mismatches fail cleanly.
. tests/cli_lib.sh
SEED=${TEST_SEED:-$(date +%s)}
echo "cli_hadamard: TEST_SEED=$SEED"
ROWS=32; COLS=256
floats() { od -An -v -t f4 "$1" | tr -s ' ' '\n' | sed '/^$/d'; }
# qsnr A B: 10 log10(sum a^2 / sum (b - a)^2) over two raw float32 files
qsnr() {
    floats "$1" > "$T/qa"; floats "$2" > "$T/qb"
    paste "$T/qa" "$T/qb" | awk '{ sx += $1 * $1; d = $2 - $1; se += d * d } END { printf "%.4f\n", 10 * log(sx / se) / log(10) }'
}
json_num() { sed -E "s/.*\"$1\": ([-0-9.e+]+).*/\1/" "$T/out"; }
# data: multiples of 1/64 in (-2, 2) (exact in float32), columns 5 and 77 times 32
# (outlier channels). Float32 bytes are built in awk (sign, exponent, mantissa).
LC_ALL=C awk -v seed="$SEED" -v rows=$ROWS -v cols=$COLS '
function put(v,   s, a, e, m, bits, i) {
    if (v == 0) { printf "%c%c%c%c", 0, 0, 0, 0; return }
    s = v < 0; a = s ? -v : v; e = 0
    while (a >= 2) { a /= 2; e++ } while (a < 1) { a *= 2; e-- }
    m = int((a - 1) * 8388608 + 0.5); bits = s * 2147483648 + (e + 127) * 8388608 + m
    for (i = 0; i < 4; i++) { printf "%c", bits % 256; bits = int(bits / 256) }
}
BEGIN { srand(seed); for (r = 0; r < rows; r++) for (c = 0; c < cols; c++) {
    v = int(rand() * 255) - 127; if (c == 5 || c == 77) v *= 32; put(v / 64) } }' > "$T/x.f32"
check data-size test "$(wc -c < "$T/x.f32")" -eq $((ROWS * COLS * 4))
check data-values [ "$(floats "$T/x.f32" | awk '{ v = $1 * 64; if (v != int(v) || v > 127 * 32 || v < -127 * 32) bad++ } END { print bad + 0 }')" = 0 ]

# 1. quantize --hadamard == hadamard, quantize, dequantize, hadamard --inverse (same bytes)
for f in mxfp4 nvfp4 int4_g32; do
    expect_ok "q-$f" $CLI tensor quantize --format $f --cols $COLS --hadamard 32 --hadamard-seed 9 "$T/x.f32" "$T/$f.q"
    expect_ok "d-$f" $CLI tensor dequantize --format $f "$T/$f.q" "$T/$f.y"
    expect_ok "rot-$f" $CLI hadamard "$T/x.f32" "$T/r.f32" --cols $COLS --block 32 --seed 9 --force
    expect_ok "q0-$f" $CLI tensor quantize --format $f --cols $COLS "$T/r.f32" "$T/$f.q0"
    expect_ok "d0-$f" $CLI tensor dequantize --format $f "$T/$f.q0" "$T/$f.r0"
    expect_ok "inv-$f" $CLI hadamard "$T/$f.r0" "$T/$f.y0" --cols $COLS --block 32 --seed 9 --inverse
    tail -c +65 "$T/$f.q" > "$T/p1"; tail -c +65 "$T/$f.q0" > "$T/p0"
    check "packed-same-$f" cmp -s "$T/p1" "$T/p0"
    check "deq-same-$f" cmp -s "$T/$f.y" "$T/$f.y0"
    # 2. error --hadamard: the QSNR of exactly this round trip, in the original domain
    expect_ok "e-$f" $CLI tensor error --format $f --cols $COLS --hadamard 32 --hadamard-seed 9 "$T/x.f32" --json
    check "e-json-$f" grep -q '"values": 8192, "hadamard": 32, "mse": ' "$T/out"
    got=$(json_num qsnr_db); want=$(qsnr "$T/x.f32" "$T/$f.y")
    check "e-qsnr-$f" awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; exit !(d < 0.01 && d > -0.01) }'
    # the library's own error in the rotated domain agrees (R is orthonormal)
    expect_ok "e-rot-$f" $CLI tensor error --format $f --cols $COLS "$T/r.f32" --json
    lib=$(json_num qsnr_db)
    check "e-orth-$f" awk -v a="$got" -v b="$lib" 'BEGIN { d = a - b; exit !(d < 0.01 && d > -0.01) }'
done
# header tag: byte 52 'H', flags 1 (signs), u16 block 32, u64 seed 9
check tag [ "$(od -An -v -tu1 -j 52 -N 12 "$T/mxfp4.q" | tr -s ' \n' ' ')" = " 72 1 32 0 9 0 0 0 0 0 0 0 " ]
expect_ok q-plain $CLI tensor quantize --format mxfp4 --cols $COLS "$T/x.f32" "$T/plain.q"
check tag-none [ "$(od -An -v -tu1 -j 52 -N 12 "$T/plain.q" | tr -s ' \n' ' ')" = " 0 0 0 0 0 0 0 0 0 0 0 0 " ]

# 3. rotation helps MXFP4 and INT4 on outlier channels (blocks of 32 and 128, plain and signed)
for f in mxfp4 int4_g32; do
    expect_ok "e0-$f" $CLI tensor error --format $f --cols $COLS "$T/x.f32" --json; q0=$(json_num qsnr_db)
    check "e0-json-$f" grep -q '"values": 8192, "mse": ' "$T/out"
    for h in 32 128; do
        expect_ok "eh-$f-$h" $CLI tensor error --format $f --cols $COLS --hadamard $h "$T/x.f32" --json
        qh=$(json_num qsnr_db)
        check "helps-$f-$h" awk -v a="$qh" -v b="$q0" 'BEGIN { exit !(a > b + 1) }'
    done
done

# 4. round trip returns close values: int8 groups through a 64-block rotation
expect_ok q8 $CLI tensor quantize --format int8_g32 --cols $COLS --hadamard 64 "$T/x.f32" "$T/i8.q"
expect_ok d8 $CLI tensor dequantize --format int8_g32 --hadamard 64 "$T/i8.q" "$T/i8.y"
check close-int8 awk -v q="$(qsnr "$T/x.f32" "$T/i8.y")" 'BEGIN { exit !(q > 35) }'
# a Paley-order block: 384 = 12 * 32 (rows of 384 values)
head -c $((16 * 384 * 4)) "$T/x.f32" > "$T/x384.f32"
expect_ok q-paley $CLI tensor quantize --format mxfp8_e4m3 --cols 384 --hadamard 384 "$T/x384.f32" "$T/p.q"
expect_ok d-paley $CLI tensor dequantize --format mxfp8_e4m3 "$T/p.q" "$T/p.y"
check close-paley awk -v q="$(qsnr "$T/x384.f32" "$T/p.y")" 'BEGIN { exit !(q > 25) }'

# 5. bad N and mismatches: one clear line, non-zero exit, no output left
expect_fail bad-order "not a supported Hadamard order" $CLI tensor quantize --format mxfp4 --cols $COLS --hadamard 7 "$T/x.f32" "$T/o1"
check bad-order-noout test ! -e "$T/o1"
expect_fail bad-divide "does not divide the row length 256" $CLI tensor quantize --format mxfp4 --cols $COLS --hadamard 24 "$T/x.f32" "$T/o2"
check bad-divide-noout test ! -e "$T/o2"
expect_fail bad-big "does not divide the row length 256" $CLI tensor error --format mxfp4 --cols $COLS --hadamard 512 "$T/x.f32"
expect_fail bad-zero "must be an integer" $CLI tensor quantize --format mxfp4 --hadamard 0 "$T/x.f32" "$T/o3"
expect_fail bad-text "must be an integer" $CLI tensor error --format mxfp4 --hadamard x32 "$T/x.f32"
expect_fail bad-max "must be an integer" $CLI tensor error --format mxfp4 --hadamard 65536 "$T/x.f32"
expect_fail seed-alone "needs --hadamard" $CLI tensor error --format mxfp4 --hadamard-seed 3 "$T/x.f32"
expect_fail d-mismatch "was quantized with --hadamard 32, not 64" $CLI tensor dequantize --format mxfp4 --hadamard 64 "$T/mxfp4.q" "$T/o4"
check d-mismatch-noout test ! -e "$T/o4"
expect_fail d-seed "hadamard-seed does not match" $CLI tensor dequantize --format mxfp4 --hadamard 32 --hadamard-seed 8 "$T/mxfp4.q" "$T/o5"
expect_fail d-untagged "holds no Hadamard transform" $CLI tensor dequantize --format mxfp4 --hadamard 32 "$T/plain.q" "$T/o6"
check d-untagged-noout test ! -e "$T/o6"
expect_fail d-wrongfmt "holds format 'mxfp4', not 'nvfp4'" $CLI tensor dequantize --format nvfp4 "$T/mxfp4.q" "$T/o7"
check d-wrongfmt-noout test ! -e "$T/o7"
head -c 100 "$T/mxfp4.q" > "$T/trunc.q"
expect_fail d-trunc "does not match the file size" $CLI tensor dequantize --format mxfp4 "$T/trunc.q" "$T/o8"
check d-trunc-noout test ! -e "$T/o8"
expect_fail d-nodir "cannot create" $CLI tensor dequantize --format mxfp4 "$T/mxfp4.q" "$T/nodir/o9"
expect_fail q-nodir "cannot create" $CLI tensor quantize --format mxfp4 --cols $COLS --hadamard 32 "$T/x.f32" "$T/nodir/o9"
check nodir-noout test ! -e "$T/nodir"
check no-tmp-left sh -c "! ls '$T' | grep -q '\.tmp\.'"
done_tests
