#!/bin/sh
# lowbit run / eval on the real shared models: the known greedy story of
# stories260K, identical perplexity across threads and ISA paths, a base file
# compared with itself, and one-line errors (no partial output) on bad input.
. tests/cli_lib.sh
M=${LOWBIT_MODELS:-../shared/models}
D=${LOWBIT_DATA:-../shared/data}
S260=$M/stories260K/stories260K.bin
TS=$M/tinystories-656k
VAL=$D/tinystories/tinystories_val.txt
if [ ! -f "$S260" ] || [ ! -f "$VAL" ]; then
    echo "SKIP cli_run: shared models/data absent ($M, $D)"; skip=1; done_tests; exit $?
fi
json_field() { sed -n "s/.*\"$1\": \([^,}]*\).*/\1/p" "$2"; }

# (a) greedy story from BOS (../shared/models/README.md)
STORY="Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high."
expect_ok run-greedy $CLI run --model "$S260" --temp 0 -n 120
check run-greedy-story grep -qF "$STORY" "$T/out"
check run-greedy-speed grep -q "generation: .* tokens/s" "$T/err"
for isa in ref avx2 avx512; do
    LOWBIT_ISA=$isa $CLI run --model "$S260" --temp 0.8 --top-p 0.9 --seed 7 -n 40 --threads 2 >"$T/s_$isa" 2>/dev/null
done
$CLI run --model "$S260" --temp 0.8 --top-p 0.9 --seed 7 -n 40 --threads 1 >"$T/s_1" 2>/dev/null
check run-sampled-identical cmp -s "$T/s_ref" "$T/s_avx512"
check run-sampled-identical-avx2 cmp -s "$T/s_ref" "$T/s_avx2"
check run-sampled-threads cmp -s "$T/s_1" "$T/s_avx512"
expect_ok run-echo $CLI run --model "$S260" --temp 0 -n 8 -p "Once upon a time"
check run-echo-prompt grep -q "^Once upon a time, there" "$T/out"
expect_ok run-json $CLI run --model "$S260" --temp 0 -n 20 --json -p "Once upon"
check run-json-text grep -q '"text": "' "$T/out"

# (c) perplexity identical for threads 1/2 and every ISA
for isa in ref avx2 avx512; do
    for th in 1 2; do
        LOWBIT_ISA=$isa $CLI eval ppl --model "$S260" --text "$VAL" --ctx 128 --chunks 12 --threads $th --json \
            >"$T/p_${isa}_$th" 2>"$T/err" || bad "eval ppl $isa $th: $(cat "$T/err")"
        json_field ppl "$T/p_${isa}_$th" >>"$T/ppls"
        json_field ppl_err "$T/p_${isa}_$th" >>"$T/errs"
    done
done
check ppl-identical test "$(sort -u "$T/ppls" | wc -l)" -eq 1
check ppl-err-identical test "$(sort -u "$T/errs" | wc -l)" -eq 1
check ppl-plausible awk '{ exit !($1 > 2 && $1 < 20) }' "$T/ppls"

# base file, then KL divergence of the same model against it
expect_ok ppl-save $CLI eval ppl --model "$S260" --text "$VAL" --ctx 64 --chunks 4 --save-logits "$T/base.st"
check ppl-save-file test -s "$T/base.st"
expect_ok kld-self $CLI eval kld --model "$S260" --base "$T/base.st" --text "$VAL" --json
check kld-self-top1 grep -q '"top1": 1.000000' "$T/out"
check kld-self-zero awk -F'"kld": ' '{ split($2, a, ","); exit !(a[1] < 1e-6) }' "$T/out"
ls "$T" | grep -q tmp && bad "temporary files left: $(ls "$T")"

# tinystories-656k (Hugging Face folder + tokenizer.json)
if $CLI eval ppl --model "$TS" --text "$VAL" --ctx 128 --chunks 4 >"$T/out" 2>"$T/err"; then
    ok
    expect_fail kld-other-model "vocabulary" $CLI eval kld --model "$TS" --base "$T/base.st"
    expect_fail tok-mismatch "vocabulary" $CLI run --model "$TS" --tokenizer "$M/stories260K/tok512.bin" -n 5
elif grep -q "not supported" "$T/err"; then
    echo "SKIP cli_run: tinystories-656k: $(cat "$T/err")"; skip=$((skip + 1))
else
    bad "eval ppl tinystories-656k: $(cat "$T/err")"
fi

# bad input: one clear line, non-zero exit, no output file
printf '' >"$T/empty.txt"
printf 'abc\377\376def\n' >"$T/bad.txt"
printf 'Once upon a time there was a different text altogether, long enough.\n' >"$T/other.txt"
expect_fail tok-mismatch-32k "vocabulary" $CLI run --model "$S260" --tokenizer "$M/llama2c-tokenizer/tokenizer.bin" -n 5
expect_fail empty-text "empty" $CLI eval ppl --model "$S260" --text "$T/empty.txt"
expect_fail bad-utf8 "UTF-8" $CLI eval ppl --model "$S260" --text "$T/bad.txt"
expect_fail short-text "tokens" $CLI eval ppl --model "$S260" --text "$T/other.txt" --ctx 128
expect_fail ctx-zero "ctx" $CLI eval ppl --model "$S260" --text "$VAL" --ctx 0
expect_fail ctx-huge "ctx" $CLI eval ppl --model "$S260" --text "$VAL" --ctx 100000 --save-logits "$T/no.st"
check no-partial-output test ! -e "$T/no.st"
expect_fail save-unwritable "nonexistent" $CLI eval ppl --model "$S260" --text "$VAL" --ctx 64 --chunks 1 --save-logits /nonexistent/x.st
expect_fail scoring-bad "scoring" $CLI eval ppl --model "$S260" --text "$VAL" --scoring most
expect_fail n-neg "\-n" $CLI run --model "$S260" -n -1
expect_fail temp-neg "temp" $CLI run --model "$S260" --temp -1
expect_fail top-p-zero "top-p" $CLI run --model "$S260" --top-p 0
expect_fail top-p-big "top-p" $CLI run --model "$S260" --top-p 2
expect_ok threads-zero-all-cores $CLI run --model "$S260" --threads 0 -n 2
expect_fail threads-huge "threads" $CLI eval ppl --model "$S260" --text "$VAL" --threads 100000
expect_fail ctx-run "context" $CLI run --model "$S260" --ctx 2 -p "Once upon a time there was"
expect_fail missing-model "cannot open\|such file" $CLI run --model /nonexistent/model.bin
expect_fail missing-text "cannot open" $CLI eval ppl --model "$S260" --text /nonexistent/t.txt
expect_fail missing-base "cannot open" $CLI eval kld --model "$S260" --base /nonexistent/b.st
expect_fail base-not-base "safetensors\|base" $CLI eval kld --model "$S260" --base "$S260"
expect_fail base-other-text "another text" $CLI eval kld --model "$S260" --base "$T/base.st" --text "$T/other.txt"
expect_fail no-model "model" $CLI eval ppl --text "$VAL"
expect_fail eval-sub "subcommand" $CLI eval perplexity --model "$S260"
done_tests
