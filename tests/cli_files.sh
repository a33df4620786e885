#!/bin/sh
# Outputs and inputs across commands (issue 13): an output that is an input
# is refused, an existing output needs --force, FIFOs and devices are refused
# as inputs, interrupted commands leave no temporary files, stale ones are
# cleared; long tokens print whole; sessions sized to the run; one option
# parser (--threads 0 everywhere, one error format, --version).
. tests/cli_lib.sh
M=${LOWBIT_MODELS:-../shared/models}
S260=$M/stories260K/stories260K.bin
no_temps() { ! ls -a "$1" | grep -q 'lowbit-tmp'; }

# a small model folder and a raw tensor
expect_ok synth-small $CLI synth --out "$T/m" --vocab 320 --dim 64 --layers 1 --heads 4 --hidden 128 --max-seq 64 --std 0.5
expect_fail synth-exists "exists (use --force" $CLI synth --out "$T/m" --dim 64 --layers 1 --heads 4 --hidden 128
expect_ok synth-force $CLI synth --out "$T/m" --vocab 320 --dim 64 --layers 1 --heads 4 --hidden 128 --max-seq 64 --std 0.5 --force
expect_ok synth-heads-alone $CLI synth --preset llama-3.2-1b --out "$T/h" --dim 96 --layers 1 --heads 12 --hidden 64 --max-seq 32 --dtype bf16
expect_ok tensor-sample $CLI tensor sample "$T/w.f32"
check tensor-sample-size test "$(wc -c <"$T/w.f32")" -eq 16384
expect_ok tensor-error-sample $CLI tensor error --format nvfp4 "$T/w.f32"

# outputs that are inputs (also through a link), existing outputs
cp "$T/m/model.safetensors" "$T/keep.st"
expect_fail quant-over-source "input folder" $CLI quantize --model "$T/m" --out "$T/m/model.safetensors" --format int8_g32 --force
check quant-source-intact cmp -s "$T/m/model.safetensors" "$T/keep.st"
expect_fail pack-self "is the input" $CLI pack --model "$T/m/model.safetensors" --out "$T/m/model.safetensors" --force
ln -s "$T/w.f32" "$T/link.f32"
expect_fail tensor-self-link "is the input" $CLI tensor quantize --format nvfp4 "$T/w.f32" "$T/link.f32" --force
expect_fail hadamard-self "is the input" $CLI hadamard "$T/w.f32" "$T/w.f32" --cols 64 --force
expect_ok quant-new $CLI quantize --model "$T/m" --out "$T/q.st" --format int8_g32
expect_fail quant-exists "exists (use --force" $CLI quantize --model "$T/m" --out "$T/q.st" --format int8_g32
expect_ok quant-force $CLI quantize --model "$T/m" --out "$T/q.st" --format int8_g32 --force
expect_fail pack-folder-force "remove the folder first" $CLI pack --model "$T/m" --out "$T/h" --force
if [ -f "$S260" ]; then
    TXT="$T/t.txt"; printf 'Once upon a time there was a cat. %.0s' $(seq 40) >"$TXT"
    expect_fail save-over-model "is the input" $CLI eval ppl --model "$S260" --text "$TXT" --ctx 32 --save-logits "$S260" --force
    expect_fail save-over-text "is the input" $CLI eval ppl --model "$S260" --text "$TXT" --ctx 32 --save-logits "$TXT" --force
    expect_fail kld-tokenizer "not used by kld" $CLI eval kld --model "$S260" --base "$T/q.st" --tokenizer "$S260"
    expect_ok ctx-eval-threads0 $CLI eval ppl --model "$S260" --text "$TXT" --ctx 32 --chunks 1 --threads 0
    expect_fail run-ctx-above "exceeds the model" $CLI run --model "$S260" --ctx 100000 -n 2
    printf 'caf\351\n' >"$T/bad.txt"
    expect_fail tokenize-utf8 "UTF-8" $CLI tokenize --model "$S260" --file "$T/bad.txt"
else skip=$((skip + 1)); echo "SKIP eval/run parts: $S260 absent"; fi

# FIFOs and devices are refused, never read
mkfifo "$T/fifo"
expect_fail fifo-model "not a regular file" timeout 5 $CLI run --model "$T/fifo" -n 1
expect_fail fifo-text "not a regular file" timeout 5 $CLI eval ppl --model "$T/m" --text "$T/fifo"
expect_fail fifo-base "not a regular file" timeout 5 $CLI eval kld --model "$T/m" --base "$T/fifo"
expect_fail zero-tensor "not a regular file" timeout 5 $CLI tensor error --format nvfp4 /dev/zero
expect_fail zero-text "not a regular file" timeout 5 $CLI tokenize --model "$T/m" --tokenizer "$T/m/config.json" --file /dev/zero

# long tokens (> 64 bytes) and padded-vocabulary ids: every generated token is printed
python3 - "$T/m/tokenizer.bin" <<'PY'
import struct, sys
with open(sys.argv[1], 'wb') as f:
    f.write(struct.pack('<i', 108))
    for i in range(256):
        s = ('<unk>' if i == 0 else '<s>' if i == 1 else '</s>' if i == 2 else 't%03d' % i + 'x' * 96).encode()
        f.write(struct.pack('<fi', 0.0, len(s)) + s)
PY
expect_ok run-long-tokens $CLI run --model "$T/m" --temp 1 -n 30 --json
n=$(sed -n 's/.*"generated_tokens": \([0-9]*\).*/\1/p' "$T/out")
len=$(sed -n 's/^{"text": "\([^"]*\)".*/\1/p' "$T/out" | tr -d '\n' | wc -c)
check run-long-tokens-printed test "$n" -gt 0 -a "$len" -eq $((n * 100))

# a huge declared context costs only what the run needs
expect_ok synth-bigctx $CLI synth --out "$T/big" --vocab 320 --dim 64 --layers 1 --heads 4 --hidden 128 --max-seq 67108864
cp "$T/m/tokenizer.bin" "$T/big/"
expect_ok run-bigctx timeout 10 $CLI run --model "$T/big" -n 4 --temp 0

# interrupts: no temporaries, no output; stale temporaries of killed runs are cleared
interrupt() {   # NAME SIGNAL OUT CMD...
    what=$1; sig=$2; out=$3; shift 3
    "$@" >/dev/null 2>&1 & pid=$!
    sleep 0.4; kill -s "$sig" $pid 2>/dev/null; wait $pid 2>/dev/null; rc=$?
    check "$what-no-temps" no_temps "$(dirname "$out")"
    if [ $rc -eq 0 ]; then skip=$((skip + 1)); echo "SKIP $what: finished before the signal"; return; fi
    check "$what-killed" test $rc -ge 128
    check "$what-no-output" test ! -e "$out"
}
interrupt synth-int INT "$T/s110" $CLI synth --preset stories110m --out "$T/s110"
expect_ok synth-110 $CLI synth --preset stories110m --out "$T/s110" --layers 4
interrupt quant-term TERM "$T/s110q.st" $CLI quantize --model "$T/s110" --out "$T/s110q.st" --format int4_g32 --method sinq --threads 1
interrupt pack-int INT "$T/s110p" $CLI pack --model "$T/s110" --out "$T/s110p" --threads 1
mkdir "$T/.s110p.lowbit-tmp.999999"; : >"$T/.s110p.lowbit-tmp.999999/x"; : >"$T/.q2.st.lowbit-tmp.999998"
expect_ok stale-cleared $CLI tensor sample "$T/q2.st"
check stale-file-removed test ! -e "$T/.q2.st.lowbit-tmp.999998"
check stale-msg grep -q "stale temporary" "$T/err"

# one parser: --threads 0 everywhere, one error format, --version, exit codes
expect_ok version-flag $CLI --version
check version-text grep -q "^lowbit " "$T/out"
expect_fail threads-neg "lowbit quantize: --threads -1: must be an integer in \[0, 1024\]" $CLI quantize --model "$T/m" --out "$T/x.st" --format int8_g32 --threads -1
expect_fail missing-value "lowbit run: --ctx: needs a value" $CLI run --model "$T/m" --ctx
expect_fail bench-unknown-format "unknown format" $CLI bench quant --model "$T/m" --formats nope --out "$T/bq"
sed 's/"vocab_size": 320/"vocab_size": 384/' "$T/m/config.json" >"$T/cfg" && mv "$T/cfg" "$T/m/config.json"
expect_fail inspect-not-loading "does not load" $CLI inspect "$T/m"
done_tests
