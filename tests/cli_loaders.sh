#!/bin/sh
# lowbit synth / inspect: round trip through the CLI, the real shared models,
# and broken inputs (truncated files, lying configs): each must fail with one
# "lowbit <cmd>:" line naming the file, never a crash.
. tests/cli_lib.sh
M=${LOWBIT_MODELS:-../shared/models}

expect_ok synth-help $CLI synth --help
check synth-help-usage grep -q usage "$T/out"
expect_ok synth-tiny $CLI synth --out "$T/tiny" --dim 64 --layers 2 --heads 4 --kv-heads 2 --hidden 96 --vocab 100 --dtype bf16 --seed 7 --json
check synth-json grep -q '"n_params": ' "$T/out"
# params by formula: embed 100*64 + 2 layers * (2*64 + 64*64 + 2*32*64 + 64*64 + 3*96*64) + 64 = 68160 (tied)
check synth-params grep -q '"n_params": 68160,' "$T/out"
check synth-files test -s "$T/tiny/config.json" -a -s "$T/tiny/model.safetensors"
expect_ok synth-again $CLI synth --out "$T/tiny2" --dim 64 --layers 2 --heads 4 --kv-heads 2 --hidden 96 --vocab 100 --dtype bf16 --seed 7
check synth-deterministic cmp -s "$T/tiny/model.safetensors" "$T/tiny2/model.safetensors"
expect_ok inspect-dir $CLI inspect "$T/tiny"
check inspect-text grep -q 'model.layers.1.mlp.down_proj.weight *BF16 *64 x 96' "$T/out"
expect_ok inspect-json $CLI inspect "$T/tiny/model.safetensors" --json
check inspect-json-format grep -q '"format": "safetensors"' "$T/out"
expect_fail synth-no-out "required" $CLI synth --dim 64
expect_fail synth-bad-dtype "dtype" $CLI synth --out "$T/x" --dtype q4
expect_fail synth-bad-heads "num_attention_heads" $CLI synth --out "$T/x" --dim 64 --heads 5
expect_fail synth-bad-preset "unknown synth preset" $CLI synth --out "$T/x" --preset gpt-9
expect_fail synth-bad-num "--layers" $CLI synth --out "$T/x" --layers abc
check synth-nothing-left test ! -e "$T/x/model.safetensors"
expect_fail inspect-none "no model path" $CLI inspect
expect_fail inspect-missing "no such file" $CLI inspect "$T/nope.bin"
expect_fail inspect-opt "unknown option" $CLI inspect --bogus "$T/tiny"

# broken copies of the synthesized folder
mkdir -p "$T/cut"
cp "$T/tiny/config.json" "$T/cut/"
for n in 0 7 8 100 2000 50000; do
    head -c $n "$T/tiny/model.safetensors" > "$T/cut/model.safetensors"
    expect_fail "inspect-cut-$n" "model.safetensors" $CLI inspect "$T/cut"
done
sed 's/"num_key_value_heads": 2/"num_key_value_heads": 3/' "$T/tiny/config.json" > "$T/cut/config.json"
cp "$T/tiny/model.safetensors" "$T/cut/"
expect_fail inspect-bad-kv "config.json.*num_key_value_heads" $CLI inspect "$T/cut"
sed '/"hidden_size"/d' "$T/tiny/config.json" > "$T/cut/config.json"
expect_fail inspect-no-hidden "config.json.*hidden_size" $CLI inspect "$T/cut"

if [ -f "$M/stories260K/stories260K.bin" ]; then
    expect_ok inspect-llama2c $CLI inspect "$M/stories260K/stories260K.bin"
    check inspect-llama2c-params grep -q '260032 parameters' "$T/out"
    expect_ok inspect-llama2c-v1 $CLI inspect "$M/stories260K/stories260K_v1.bin" --json
    check inspect-v1-format grep -q '"format": "llama2c-v1"' "$T/out"
    for n in 0 20 28 100 500000 1056539; do
        head -c $n "$M/stories260K/stories260K.bin" > "$T/cut.bin"
        expect_fail "inspect-llama2c-cut-$n" "cut.bin.*truncated" $CLI inspect "$T/cut.bin"
    done
else
    echo "SKIP cli_loaders: stories260K not found in $M"; skip=$((skip + 1))
fi
if [ -f "$M/tinystories-656k/model.safetensors" ]; then
    expect_ok inspect-hf $CLI inspect "$M/tinystories-656k"
    check inspect-hf-params grep -q '656000 parameters' "$T/out"
else
    echo "SKIP cli_loaders: tinystories-656k not found in $M"; skip=$((skip + 1))
fi
# A path names one file, and files are recognised by their content (issue 13,
# defects 1 and 3): a broken or foreign .safetensors beside a good model is
# refused with its own error, never replaced by the folder's model.safetensors;
# a lowbit file without an extension loads; a saved-logits file is not a model.
if [ -d "$M/tinystories-656k" ]; then
    TK="$M/tinystories-656k/tokenizer.json"
    cp -r "$M/tinystories-656k" "$T/m6"
    expect_ok q2 $CLI quantize --model "$T/m6" --out "$T/m6/q2.safetensors" --format int2_g32
    sz=$(wc -c < "$T/m6/q2.safetensors")
    head -c $((sz / 2)) "$T/m6/q2.safetensors" > "$T/m6/q2cut.safetensors"
    expect_fail cut-beside-model "q2cut.safetensors" $CLI run --model "$T/m6/q2cut.safetensors" -n 2
    head -c 5000 /dev/urandom > "$T/m6/x.safetensors"
    expect_fail random-beside-model "x.safetensors" $CLI run --model "$T/m6/x.safetensors" -n 2
    mkdir -p "$T/lone"
    cp "$T/m6/q2cut.safetensors" "$T/lone/q.safetensors"
    expect_fail cut-alone "q.safetensors" $CLI run --model "$T/lone/q.safetensors" --tokenizer "$TK" -n 2
    check cut-alone-own-error sh -c "! grep -q config.json '$T/err'"
    expect_ok q4-noext $CLI quantize --model "$T/m6" --out "$T/lone/q4noext" --format int4_g32
    expect_ok run-noext $CLI run --model "$T/lone/q4noext" --tokenizer "$TK" -n 3 --temp 0
    expect_ok inspect-noext $CLI inspect "$T/lone/q4noext"
    check inspect-noext-table grep -q 'quantized weights' "$T/out"
    expect_ok save-lp $CLI eval ppl --model "$T/m6" --text "${LOWBIT_DATA:-../shared/data}/tinystories/tinystories_val.txt" --ctx 64 --chunks 1 --save-logits "$T/lone/base.lp"
    expect_fail run-lp "not a model's weights.*lowbit-logprobs" $CLI run --model "$T/lone/base.lp" --tokenizer "$TK" -n 2
    expect_ok inspect-lp $CLI inspect "$T/lone/base.lp"
    head -c 3000 /dev/urandom > "$T/lone/junk"
    expect_fail junk-tried "not a model file lowbit reads (tried" $CLI run --model "$T/lone/junk" --tokenizer "$TK" -n 2
else
    echo "SKIP cli_loaders: tinystories-656k not found in $M (content detection checks)"; skip=$((skip + 1))
fi
done_tests
