#!/bin/sh
# lowbit tokenize: ids for known text, decode, round trip through files, errors.
. tests/cli_lib.sh
M=${LOWBIT_MODELS:-../shared/models}
D=${LOWBIT_DATA:-../shared/data}
expect_ok help $CLI tokenize --help
check help-usage grep -q usage "$T/out"
expect_fail no-model "give --model" $CLI tokenize "hi"
expect_fail bad-opt "unknown option" $CLI tokenize --model x --frob
expect_fail missing-model "no such" $CLI tokenize --model /nonexistent/model.bin "hi"
printf 'garbage' > "$T/tokenizer.bin"
expect_fail corrupt-bin "tokenizer.bin" $CLI tokenize --tokenizer "$T/tokenizer.bin" "hi"
printf '{"model": {"type": "Unigram", "vocab": []}}' > "$T/tokenizer.json"
expect_fail unigram "Unigram" $CLI tokenize --model "$T" "hi"

if [ -f "$M/tinystories-656k/model.safetensors" ]; then
    # a single-file safetensors model (as `lowbit quantize` writes) finds the
    # tokenizer.json beside it, and names what it looked for when absent
    mkdir "$T/single"
    ln -s "$(cd "$M/tinystories-656k" && pwd)/model.safetensors" "$T/single/q.safetensors"
    expect_fail single-none "looked for tokenizer.json" $CLI tokenize --model "$T/single/q.safetensors" "hi"
    cp "$M/tinystories-656k/tokenizer.json" "$T/single/"
    expect_ok single-found $CLI tokenize --model "$T/single/q.safetensors" "Once upon a time"
    $CLI tokenize --model "$M/tinystories-656k" "Once upon a time" > "$T/want" 2>/dev/null
    check single-same-ids cmp -s "$T/out" "$T/want"
else
    echo "SKIP cli_tokenize: tinystories-656k absent"; skip=$((skip + 1))
fi

if [ -f "$M/llama2c-tokenizer/tokenizer.bin" ]; then
    # the Llama 2 tokenizer's well-known ids for "Hello world"
    expect_ok hello $CLI tokenize --tokenizer "$M/llama2c-tokenizer/tokenizer.bin" --bos Hello world
    check hello-ids [ "$(cat "$T/out")" = "1 15043 3186" ]
    expect_ok hello-json $CLI tokenize --tokenizer "$M/llama2c-tokenizer/tokenizer.bin" --bos --json "Hello world"
    check hello-json-ids grep -q '"ids": \[1, 15043, 3186\]' "$T/out"
    expect_ok decode $CLI tokenize --tokenizer "$M/llama2c-tokenizer/tokenizer.bin" --decode "1, 15043, 3186"
    check decode-text [ "$(cat "$T/out")" = "Hello world" ]
    expect_fail bad-ids "not a token id" $CLI tokenize --tokenizer "$M/llama2c-tokenizer/tokenizer.bin" --decode "1 x"
    expect_fail big-id "outside the vocabulary" $CLI tokenize --tokenizer "$M/llama2c-tokenizer/tokenizer.bin" --decode 32000
else
    echo "SKIP cli_tokenize: $M/llama2c-tokenizer missing"; skip=$((skip + 1))
fi

# real tokenizer.json files fetched by .ci/run (npm @lenml/tokenizer-*)
X=${LOWBIT_EXT_TOKENIZERS:-build/ext-tokenizers}
if [ -f "$X/gpt4/tokenizer.json" ] && [ -f "$X/gpt4o/tokenizer.json" ]; then
    # tiktoken's published ids for "Hello world" (cl100k_base, o200k_base)
    expect_ok cl100k-hello $CLI tokenize --tokenizer "$X/gpt4/tokenizer.json" "Hello world"
    check cl100k-hello-ids [ "$(cat "$T/out")" = "9906 1917" ]
    expect_ok o200k-hello $CLI tokenize --tokenizer "$X/gpt4o/tokenizer.json" "Hello world"
    check o200k-hello-ids [ "$(cat "$T/out")" = "13225 2375" ]
    # <|endoftext|> is BOS and EOS there: only a leading BOS vanishes in decode
    expect_ok bos-eos-decode $CLI tokenize --tokenizer "$X/gpt4/tokenizer.json" --decode 13347 100257 13347
    check bos-eos-text [ "$(cat "$T/out")" = "Hi<|endoftext|>Hi" ]
else
    echo "SKIP cli_tokenize: $X/gpt4 or $X/gpt4o absent (.ci/run fetches them with npm pack)"; skip=$((skip + 1))
fi

for m in stories260K/stories260K.bin tinystories-656k; do
    if [ ! -e "$M/$m" ] || [ ! -f "$D/tinystories/tinystories_val.txt" ]; then
        echo "SKIP cli_tokenize: $M/$m or the TinyStories text missing"; skip=$((skip + 1)); continue
    fi
    head -c 20000 "$D/tinystories/tinystories_val.txt" > "$T/text"
    expect_ok "encode-$m" $CLI tokenize --model "$M/$m" --bos --file "$T/text"
    mv "$T/out" "$T/ids"
    expect_ok "decode-$m" $CLI tokenize --model "$M/$m" --decode --file "$T/ids"
    { cat "$T/text"; echo; } > "$T/want"
    check "round-trip-$m" cmp -s "$T/want" "$T/out"
done
# A broken tokenizer file is described as what it was meant to be (issue 13, defect 12).
echo garbage > "$T/bad.json"
expect_fail json-not-json "bad.json: not a tokenizer.json" $CLI tokenize --tokenizer "$T/bad.json" hi
echo garbage > "$T/tok.model"
expect_fail neither-format "neither a tokenizer.json .* nor a llama2.c tokenizer.bin" $CLI tokenize --tokenizer "$T/tok.model" hi
done_tests
