#!/bin/sh
# lowbit prune: a real model end to end (magnitude and wanda, 2:4 and
# unstructured; statistics from --calib-text and from a `lowbit calib` file;
# SparseGPT's joint mode; unstructured with packed, padded values), the summary and JSON, the pruned file running and
# reloading, bad input (ratio, N > M, unknown names, calibration missing, a
# statistics file of another model, --calib with --calib-text, --joint
# without sparsegpt) with nothing written; lowbit quantize --prune writing
# the same file as lowbit prune --format [--joint].
. tests/cli_lib.sh
M=${LOWBIT_MODELS:-../shared/models}
D=${LOWBIT_DATA:-../shared/data}
expect_ok help $CLI prune --help
check help-usage grep -q "usage: lowbit prune" "$T/out"
if [ -f "$M/stories260K/stories260K.bin" ] && [ -f "$D/tinystories/tinystories_val.txt" ]; then
    S="$M/stories260K/stories260K.bin"
    head -c 20000 "$D/tinystories/tinystories_val.txt" > "$T/calib.txt"
    expect_ok p-mag $CLI prune --model "$S" --out "$T/a.safetensors" --pattern 2:4
    check p-summary grep -q "linears: 35 pruned, sparsity 0.5000" "$T/out"
    check p-stored grep -q "down_proj.weight .*F32 2:4 bitmask" "$T/out"
    expect_ok p-run $CLI run --model "$T/a.safetensors" --tokenizer "$M/stories260K/tok512.bin" --temp 0 -n 8
    expect_ok p-wanda $CLI prune --model "$S" --out "$T/b.safetensors" --criterion wanda --ratio 0.6 --calib-text "$T/calib.txt" --calib-tokens 512 --dtype bf16 --json
    check p-json grep -q '"criterion": "wanda"' "$T/out"
    check p-json-stored grep -q '"stored": "BF16 unstructured bitmask"' "$T/out"
    expect_ok p-int4 $CLI prune --model "$S" --out "$T/q.safetensors" --pattern 2:4 --format int4_g32
    check p-int4-stored grep -q "q_proj.weight .*int4_g32 2:4 bitmask" "$T/out"
    check p-int4-down grep -q "down_proj.weight .*F32 2:4 bitmask" "$T/out"
    expect_ok p-int4-run $CLI run --model "$T/q.safetensors" --tokenizer "$M/stories260K/tok512.bin" --temp 0 -n 8
    expect_ok c-stats $CLI calib --model "$S" --text "$T/calib.txt" --out "$T/s260.stats" --tokens 512
    expect_ok p-calib $CLI prune --model "$S" --out "$T/w.safetensors" --criterion sparsegpt --pattern 2:4 --calib "$T/s260.stats"
    check p-calib-summary grep -q "linears: 35 pruned, sparsity 0.5000" "$T/out"
    expect_ok p-joint $CLI prune --model "$S" --out "$T/j.safetensors" --criterion sparsegpt --pattern 2:4 --format int4_g32 --joint --calib "$T/s260.stats"
    check p-joint-stored grep -q "q_proj.weight .*int4_g32 2:4 bitmask" "$T/out"
    check p-joint-down grep -q "down_proj.weight .*F32 2:4 bitmask" "$T/out"
    expect_ok p-joint-run $CLI run --model "$T/j.safetensors" --tokenizer "$M/stories260K/tok512.bin" --temp 0 -n 8
    # unstructured with --format: the exact ratio (64 - floor(64 x 0.6) = 26 kept), padded storage;
    # SparseGPT with packed values: per-row groups by default (every row the same count, the file smaller
    # than with the reference's block-wide threshold, --groups block, whose rows differ and pad)
    expect_ok p-sgpt-row $CLI prune --model "$S" --out "$T/g1.safetensors" --criterion sparsegpt --ratio 0.5 --format int4_g32 --calib "$T/s260.stats"
    expect_ok p-sgpt-block $CLI prune --model "$S" --out "$T/g2.safetensors" --criterion sparsegpt --ratio 0.5 --format int4_g32 --calib "$T/s260.stats" --groups block
    check p-sgpt-row-smaller test "$(wc -c < "$T/g1.safetensors")" -lt "$(wc -c < "$T/g2.safetensors")"
    expect_fail p-groups-magnitude "--groups applies to --criterion sparsegpt" $CLI prune --model "$S" --out "$T/c.safetensors" --ratio 0.5 --groups row
    expect_fail p-groups-bad "--groups" $CLI prune --model "$S" --out "$T/c.safetensors" --criterion sparsegpt --calib "$T/s260.stats" --groups col
    check p-groups-nothing test ! -e "$T/c.safetensors"
    # SparseGPT's rows of different counts packed too (the reference's rule)
    expect_ok p-pad $CLI prune --model "$S" --out "$T/u.safetensors" --ratio 0.6 --format int4_g32
    check p-pad-exact grep -q "q_proj.weight .*int4_g32 unstructured bitmask *0.5938" "$T/out"
    expect_ok p-pad-sgpt $CLI prune --model "$S" --out "$T/u.safetensors" --criterion sparsegpt --ratio 0.6 --format int4_g32 --calib "$T/s260.stats" --groups block --force
    check p-pad-sgpt-down grep -q "down_proj.weight .*int4_g32 unstructured bitmask" "$T/out"
    expect_ok p-pad-run $CLI run --model "$T/u.safetensors" --tokenizer "$M/stories260K/tok512.bin" --temp 0 -n 8
    # truncated values: down_proj's codes tensor one block (16 bytes) short per row, the file otherwise consistent
    python3 - "$T/u.safetensors" "$T/trunc.safetensors" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h, data = json.loads(raw[8:8 + n]), raw[8 + n:]
t = h["model.layers.0.mlp.down_proj.weight_values_packed"]
(r, cb), (a, b) = t["shape"], t["data_offsets"]
codes = b"".join(data[a + i * cb:a + i * cb + cb - 16] for i in range(r))
cut = (b - a) - len(codes)
for k, v in h.items():
    if k != "__metadata__" and v["data_offsets"][0] >= b:
        v["data_offsets"] = [v["data_offsets"][0] - cut, v["data_offsets"][1] - cut]
t["shape"], t["data_offsets"] = [r, cb - 16], [a, a + len(codes)]
hj = json.dumps(h).encode()
hj += b" " * (-len(hj) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(hj)) + hj + data[:a] + codes + data[b:])
PY
    expect_fail p-pad-trunc "down_proj.weight_values_packed': expected shape" $CLI run --model "$T/trunc.safetensors" --tokenizer "$M/stories260K/tok512.bin" --temp 0 -n 1
    expect_fail joint-magnitude "needs criterion sparsegpt and a format" $CLI prune --model "$S" --out "$T/c.safetensors" --pattern 2:4 --format int4_g32 --joint
    expect_fail joint-unstructured "N:M or V:N:M" $CLI prune --model "$S" --out "$T/c.safetensors" --criterion sparsegpt --format int4_g32 --joint --calib "$T/s260.stats"
    expect_fail calib-both "--calib and --calib-text exclude each other" $CLI prune --model "$S" --out "$T/c.safetensors" --criterion wanda --calib "$T/s260.stats" --calib-text "$T/calib.txt"
    expect_fail calib-magnitude "uses no calibration statistics" $CLI prune --model "$S" --out "$T/c.safetensors" --calib "$T/s260.stats"
    expect_fail calib-missing "no such file" $CLI prune --model "$S" --out "$T/c.safetensors" --criterion wanda --calib "$T/none.stats"
    expect_fail calib-not-stats "s260.stats\|a.safetensors" $CLI prune --model "$S" --out "$T/c.safetensors" --criterion wanda --calib "$T/a.safetensors"
    expect_ok q-prune $CLI quantize --model "$S" --out "$T/qp.safetensors" --format int4_g32 --prune magnitude:2:4
    check q-prune-same cmp "$T/qp.safetensors" "$T/q.safetensors"
    expect_ok q-prune-joint $CLI quantize --model "$S" --out "$T/qj.safetensors" --format int4_g32 --prune sparsegpt:2:4 --method gptq --calib "$T/s260.stats" --json
    check q-prune-joint-json grep -q '"criterion": "sparsegpt"' "$T/out"
    check q-prune-joint-same cmp "$T/qj.safetensors" "$T/j.safetensors"
    expect_ok q-prune-wanda $CLI quantize --model "$S" --out "$T/qw.safetensors" --format mxfp4 --prune wanda:unstructured:0.6 --calib "$T/s260.stats"
    check q-prune-wanda-summary grep -q "linears: 35 pruned" "$T/out"
    expect_fail q-prune-spec "expected CRITERION:PATTERN" $CLI quantize --model "$S" --out "$T/c.safetensors" --format int4_g32 --prune magnitude
    expect_fail q-prune-ratio "ratio must be a number in \[0, 1)" $CLI quantize --model "$S" --out "$T/c.safetensors" --format int4_g32 --prune magnitude:unstructured:1
    expect_fail q-prune-gptq "only sparsegpt has a joint" $CLI quantize --model "$S" --out "$T/c.safetensors" --format int4_g32 --prune wanda:2:4 --method gptq --calib "$T/s260.stats"
    expect_fail q-prune-method "composes with --method rtn" $CLI quantize --model "$S" --out "$T/c.safetensors" --format int4_g32 --prune magnitude:2:4 --method sinq
    expect_fail q-prune-opts "--prune takes" $CLI quantize --model "$S" --out "$T/c.safetensors" --format int4_g32 --prune magnitude:2:4 --hadamard 64
    expect_fail q-prune-calib "needs calibration" $CLI quantize --model "$S" --out "$T/c.safetensors" --format int4_g32 --prune sparsegpt:2:4
    if [ -d "$M/tinystories-656k" ]; then
        expect_ok c-stats-656 $CLI calib --model "$M/tinystories-656k" --text "$T/calib.txt" --out "$T/t656.stats" --tokens 256
        expect_fail calib-other-model "t656.stats" $CLI prune --model "$S" --out "$T/c.safetensors" --criterion wanda --calib "$T/t656.stats"
    fi
    expect_fail bad-format "unknown" $CLI prune --model "$S" --out "$T/c.safetensors" --pattern 2:4 --format int5
    expect_ok p-inspect $CLI inspect "$T/b.safetensors"
    check p-inspect-values grep -q "weight_values" "$T/out"
    expect_fail bad-ratio "--ratio 1: must lie in \[0, 1)" $CLI prune --model "$S" --out "$T/c.safetensors" --ratio 1
    expect_fail bad-nm "N (kept per group) must lie in \[1, M\]" $CLI prune --model "$S" --out "$T/c.safetensors" --pattern 5:4
    expect_fail bad-vnm "M must lie in \[4, 256\]" $CLI prune --model "$S" --out "$T/c.safetensors" --pattern 8:2:3
    expect_fail bad-pattern "unknown pattern 'dense'" $CLI prune --model "$S" --out "$T/c.safetensors" --pattern dense
    expect_fail bad-criterion "unknown criterion 'obs'" $CLI prune --model "$S" --out "$T/c.safetensors" --criterion obs
    expect_fail no-calib "needs calibration data" $CLI prune --model "$S" --out "$T/c.safetensors" --criterion sparsegpt
    expect_fail seq-no-text "--sequential collects statistics while pruning" $CLI prune --model "$S" --out "$T/c.safetensors" --criterion wanda --calib "$T/s260.stats" --sequential
    expect_fail seq-magnitude "goes with a criterion that reads statistics" $CLI quantize --model "$S" --out "$T/c.safetensors" --format int4_g32 --prune magnitude:2:4 --calib-text "$T/calib.txt" --calib-tokens 512 --sequential
    expect_ok seq-wanda $CLI prune --model "$S" --out "$T/seq.safetensors" --criterion wanda --pattern 2:4 --calib-text "$T/calib.txt" --calib-tokens 512 --sequential
    check seq-wanda-summary grep -q "linears: 35 pruned" "$T/out"
    expect_fail bad-dtype "unknown values dtype 'int4'" $CLI prune --model "$S" --out "$T/c.safetensors" --dtype int4
    expect_fail repruned "prune the dense model" $CLI prune --model "$T/a.safetensors" --out "$T/c.safetensors"
    check no-partial test ! -e "$T/c.safetensors"
    check no-temp sh -c "! ls '$T' | grep -q tmp"
else
    echo "SKIP cli_prune: no stories260K in $M or no text in $D"; skip=$((skip + 1))
fi
expect_fail no-model "no such file" $CLI prune --model "$T/none.bin" --out "$T/d.safetensors"
expect_fail missing-args "required" $CLI prune --pattern 2:4
done_tests
