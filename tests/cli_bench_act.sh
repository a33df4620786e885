#!/bin/sh
# lowbit bench act (weight x activation x rotation, docs/activations.md): a
# cell's KL divergence equals what `lowbit quantize` + `lowbit eval kld --act`
# give on the same text and protocol (the independent path), cells that
# cannot run are listed as skipped with the reason, bad options fail with one
# line and write nothing, the JSON parses. stories260K, ctx 64, 2 chunks.
. tests/cli_lib.sh
M=${LOWBIT_MODELS:-../shared/models}
D=${LOWBIT_DATA:-../shared/data}
expect_ok help $CLI bench act --help
check help-usage grep -q 'usage: lowbit bench act' "$T/out"
check help-default-cells grep -q 'int8_g32:none,int8_g32:int8,int4_g32:int8,int4_g32:int4,mxfp4:mxfp4,nvfp4:nvfp4' "$T/out"
check help-default-rots grep -q 'none,smoothquant,hadamard,stamp,dartquant' "$T/out"
expect_ok bench-list $CLI bench --help
check bench-lists-act grep -q '^  act ' "$T/out"
expect_fail no-text "--model and --text are required" $CLI bench act --model x
expect_fail bad-rot "--rotations spin: unknown rotation" $CLI bench act --model x --text y --rotations none,spin
expect_fail twice-rot "--rotations none: given twice" $CLI bench act --model x --text y --rotations none,none
expect_fail bad-cell "--cells int4_g32: a cell is WEIGHTS:ACTIVATIONS" $CLI bench act --model x --text y --cells int4_g32
expect_fail bad-cell2 "--cells :int8: a cell is WEIGHTS:ACTIVATIONS" $CLI bench act --model x --text y --cells :int8
expect_fail bad-wfmt "unknown weight format 'int9_g32'" $CLI bench act --model x --text y --cells int9_g32:int8
expect_fail bad-ctx "--ctx 0: must be an integer" $CLI bench act --model x --text y --ctx 0

S="$M/stories260K/stories260K.bin"
if [ ! -f "$S" ] || [ ! -f "$D/tinystories/tinystories_val.txt" ]; then
    echo "SKIP bench act runs: $S or $D/tinystories/tinystories_val.txt not found"; skip=$((skip + 1))
    done_tests; exit $?
fi
TX="$D/tinystories/tinystories_val.txt"
TOK="$M/stories260K/tok512.bin"
P="--model $S --tokenizer $TOK --text $TX --ctx 64 --chunks 2 --threads 2"
expect_fail bad-afmt "--cells int4_g32:int9: activation format 'int9' is unknown" $CLI bench act $P --cells int4_g32:int9 --out "$T/bad"
check bad-afmt-nothing test ! -e "$T/bad"
# the only cell asked for cannot run: an error, not a table
expect_fail only-skipped "nothing to measure: 'stamp-dct:int8': STaMP's low format needs elements under 8 bits" \
    $CLI bench act $P --cells int8_g32:int8 --rotations stamp --out "$T/bad"
check only-skipped-nothing test ! -e "$T/bad"
# calibration tail of the scored text reaching the scored chunks: refused before anything is written
head -c 3000 "$TX" >"$T/small.txt"
expect_fail overlap "overlap the 128 scored ones" $CLI bench act --model "$S" --tokenizer "$TOK" --text "$T/small.txt" \
    --calib-text "$T/small.txt" --calib-tokens 800 --ctx 64 --chunks 2 --rotations smoothquant --cells int8_g32:int8 --out "$T/bad"
check overlap-nothing test ! -e "$T/bad"

# the table: 2 cells x 4 rotations; smoothquant skipped (no --calib-text), stamp skipped on FP32 activations
expect_ok run $CLI bench act $P --cells int4_g32:int4,int8_g32:none --rotations none,smoothquant,hadamard,stamp \
    --out "$T/r" --json
cp "$T/out" "$T/stdout.json"
for f in md json svg; do check "file-$f" test -s "$T/r/act.$f"; done
check stdout-is-json cmp -s "$T/stdout.json" "$T/r/act.json"
check no-leftovers sh -c "[ \$(ls '$T/r' | wc -l) -eq 3 ]"
check json-parses python3 -m json.tool "$T/r/act.json" /dev/null
J="$T/r/act.json"
# field W A ROT NAME: one row's value
field() { grep "\"weights\": \"$1\", \"act\": \"$2\", \"rotation\": \"$3\"," "$J" | sed -E "s/.*\"$4\": \"?([^,\"}]*).*/\\1/"; }
check rows-8 test "$(grep -c '"status": ' "$J")" -eq 8
# stories260K's down_proj (172 inputs) keeps FP32 inputs under 32-blocks, as eval kld reports
check fp32-linears test "$(field int4_g32 int4 none fp32_input_linears)" = 5
check md-fp32-linears grep -q '^Activations int4: 5 linears keep FP32 inputs' "$T/r/act.md"
check sq-skipped test "$(field int4_g32 int4 smoothquant status)" = skipped
check sq-reason grep -q '"rotation": "smoothquant", "status": "skipped", "reason": "smoothquant needs calibration statistics: give --calib-text FILE"' "$J"
check stamp-fp32-skipped test "$(field int8_g32 none stamp status)" = skipped
check md-skipped grep -q '| int8_g32 | FP32 | stamp | skipped: STaMP transforms quantized activations' "$T/r/act.md"
check stamp-measured test "$(field int4_g32 int4 stamp status)" = measured
check svg-root grep -q '^<svg xmlns="http://www.w3.org/2000/svg"' "$T/r/act.svg"
check svg-end sh -c "tail -n 1 '$T/r/act.svg' | grep -q '</svg>'"
check svg-bars test "$(grep -c '<rect x=.*<title>' "$T/r/act.svg")" -eq 5

# the independent path: base by eval ppl, weights by quantize, scored by eval kld --act
expect_ok base $CLI eval ppl --model "$S" --tokenizer "$TOK" --text "$TX" --ctx 64 --chunks 2 --save-logits "$T/base"
expect_ok q-rtn $CLI quantize --model "$S" --out "$T/rtn.safetensors" --format int4_g32
expect_ok q-had $CLI quantize --model "$S" --out "$T/had.safetensors" --format int4_g32 --hadamard 0
expect_ok q8 $CLI quantize --model "$S" --out "$T/w8.safetensors" --format int8_g32
kld() { $CLI eval kld --model "$1" --base "$T/base" --act "$2" --json | sed -E 's/.*"kld": ([^,]*),.*/\1/'; }
check kld-none test "$(kld "$T/rtn.safetensors" int4)" = "$(field int4_g32 int4 none kld)"
check kld-hadamard test "$(kld "$T/had.safetensors" int4)" = "$(field int4_g32 int4 hadamard kld)"
check kld-stamp test "$(kld "$T/rtn.safetensors" stamp-dct:int4)" = "$(field int4_g32 int4 stamp kld)"
check kld-w8a16 test "$(kld "$T/w8.safetensors" none)" = "$(field int8_g32 none none kld)"
check kld-w8a16-had-differs test "$(field int8_g32 none hadamard kld)" != "$(field int8_g32 none none kld)"
# the summary line counts the cells where the rotation's KLD is below none's
lower=$(awk -v a="$(field int4_g32 int4 hadamard kld)" -v b="$(field int4_g32 int4 none kld)" \
    -v c="$(field int8_g32 none hadamard kld)" -v d="$(field int8_g32 none none kld)" 'BEGIN { print (a < b) + (c < d) }')
check summary grep -q "^- hadamard lowers KLD vs none in $lower of 2 cells" "$T/r/act.md"
check summary-stamp grep -q "^- stamp lowers KLD vs none in [01] of 1 cells" "$T/r/act.md"
check summary-json grep -q "{\"rotation\": \"hadamard\", \"lower\": $lower, \"cells\": 2}" "$J"
# markdown on stdout without --json, the same as act.md
expect_ok run-md $CLI bench act $P --cells int4_g32:int4 --rotations none --out "$T/r2"
check stdout-is-md cmp -s "$T/out" "$T/r2/act.md"
check md-header grep -q '^| weights | activations | rotation | bits/w | KLD | top-1 % | PPL | PPL ratio |' "$T/out"
done_tests
