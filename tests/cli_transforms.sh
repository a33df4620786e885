#!/bin/sh
# lowbit hadamard: plans, applying the transform to raw float32 files (values
# worked out by hand), round trips, and errors that leave no output behind.
. tests/cli_lib.sh
# float32 little-endian bytes as octal escapes for printf
F1='\0\0\200\77'; F2='\0\0\0\100'; F3='\0\0\100\100'; F4='\0\0\200\100'; F0='\0\0\0\0'
floats() { od -An -v -t f4 "$1" | tr -s ' \n' '  ' | sed 's/^ //; s/ $//'; }

expect_ok plan $CLI hadamard --plan 172,384,11008,14336
check plan-172 grep -q '^| 172 | 4 | 1 | 4 | 43 | no |$' "$T/out"
check plan-384 grep -q '^| 384 | 384 | 12 | 32 | 1 | yes |$' "$T/out"
check plan-11008 grep -q '^| 11008 | 256 | 1 | 256 | 43 | no |$' "$T/out"
check plan-14336 grep -q '^| 14336 | 14336 | 28 | 512 | 1 | yes |$' "$T/out"
expect_ok plan-json $CLI hadamard --plan 768 --max-block 200 --json
check plan-json-192 grep -q '"block": 192, "m": 12, "pow2": 16' "$T/out"

# x = [1 2 3 4]: H_4 x / 2 = [5 -1 -2 0] exactly; two rows
printf "$F1$F2$F3$F4$F4$F3$F2$F1" >"$T/x.f32"
expect_ok apply $CLI hadamard "$T/x.f32" "$T/y.f32" --cols 4
check apply-values [ "$(floats "$T/y.f32")" = "5 -1 -2 0 5 1 2 0" ]
expect_ok inverse $CLI hadamard "$T/y.f32" "$T/z.f32" --cols 4 --inverse
check inverse-exact cmp -s "$T/x.f32" "$T/z.f32"
# along cols on the 2 x 4 matrix: rows mixed by H_2 / sqrt(2)
printf "$F1$F1$F1$F1$F1$F1$F1$F1" >"$T/o.f32"
expect_ok cols $CLI hadamard "$T/o.f32" "$T/c.f32" --cols 4 --along cols --json
check cols-json grep -q '"along": "cols", "block": 2' "$T/out"
check cols-values [ "$(floats "$T/c.f32")" = "1.4142135 1.4142135 1.4142135 1.4142135 0 0 0 0" ]
# random signs: round trip restores the input exactly for these values; the
# transform differs from the plain one
expect_ok seeded $CLI hadamard "$T/x.f32" "$T/s.f32" --cols 4 --block 4 --seed 7
expect_ok seeded-inv $CLI hadamard "$T/s.f32" "$T/t.f32" --cols 4 --block 4 --seed 7 --inverse
check seeded-roundtrip cmp -s "$T/x.f32" "$T/t.f32"
# a 12-point block: e_0 maps to the first column of H_12 / sqrt(12), every |entry| = 0.28867513
printf "$F1$F0$F0$F0$F0$F0$F0$F0$F0$F0$F0$F0" >"$T/e.f32"
expect_ok h12 $CLI hadamard "$T/e.f32" "$T/h.f32" --cols 12
check h12-magnitudes [ "$(floats "$T/h.f32" | tr -d '-' | tr ' ' '\n' | sort -u)" = "0.28867513" ]

expect_fail bad-size "not a whole number of rows" $CLI hadamard "$T/x.f32" "$T/bad.f32" --cols 3
check no-partial-output [ ! -e "$T/bad.f32" ]
expect_fail bad-block "block 6 is not a supported" $CLI hadamard "$T/e.f32" "$T/bad.f32" --cols 12 --block 6
expect_fail bad-divide "does not divide" $CLI hadamard "$T/x.f32" "$T/bad.f32" --cols 8 --along cols --block 4
check no-partial-output2 [ ! -e "$T/bad.f32" ]
expect_fail missing-in "cannot open" $CLI hadamard "$T/nope.f32" "$T/bad.f32" --cols 4
expect_fail no-cols "--cols C is required" $CLI hadamard "$T/x.f32" "$T/bad.f32"
expect_fail odd-plan "odd" $CLI hadamard --plan 43
expect_fail bad-along "rows|cols" $CLI hadamard "$T/x.f32" "$T/bad.f32" --cols 4 --along diag
expect_fail unknown "unknown option" $CLI hadamard --frob
done_tests
