#!/bin/sh
# fuzz_corpus.sh BUILD: seed corpora for the fuzz targets that read whole
# files through the public API, written with the lowbit CLI from the real
# models in $LOWBIT_MODELS (default ../shared/models) into BUILD/fuzz-corpus/
# <target>/. Each corpus also gets seeds from a tiny synthetic model (a few
# KB) so that fuzzing executes fast. Nothing model-derived is committed: the
# corpus is made at build time (make fuzz-corpus; make test and make fuzz
# depend on it). Missing models only mean fewer seeds.
set -eu
build=$1
lowbit="$build/lowbit"
models=${LOWBIT_MODELS:-../shared/models}
data=${LOWBIT_DATA:-../shared/data}
ts="$models/tinystories-656k"
s260="$models/stories260K"
text="$data/tinystories/tinystories_val.txt"
out="$build/fuzz-corpus"
tmp=$(mktemp -d /tmp/lowbit_corpus.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$out.new"
mkdir -p "$out.new/fuzz_qmodel" "$out.new/fuzz_packed" "$out.new/fuzz_logits" "$out.new/fuzz_hf_folder"
# (quantize's note that no tokenizer lies beside the output is expected here)
q() { "$lowbit" quantize --threads 1 "$@" >/dev/null 2>&1 || { echo "fuzz_corpus: quantize $* failed" >&2; exit 1; }; }

# Container of a model folder for fuzz_hf_folder (tests/fuzz_files.h):
# "%LBFZ<k>" + file content, k indexing fuzz_folder_names.
folder() {
    dst=$1; shift
    : > "$dst"
    while [ $# -ge 2 ]; do printf '%%LBFZ%s' "$1" >> "$dst"; cat "$2" >> "$dst"; shift 2; done
}

# A tiny synthetic model: dim 32 (one 32-block per row), vocab 64.
"$lowbit" synth --out "$tmp/tiny" --dim 32 --layers 1 --heads 2 --kv-heads 1 --hidden 64 --vocab 64 \
    --max-seq 32 --dtype bf16 --std 0.5 >/dev/null
q --model "$tmp/tiny" --out "$out.new/fuzz_qmodel/tiny_int4_g32_asym.safetensors" --format int4_asym --group 32
q --model "$tmp/tiny" --out "$out.new/fuzz_qmodel/tiny_mxfp4_hadamard.safetensors" --format mxfp4 --method hadamard+rtn
q --model "$tmp/tiny" --out "$out.new/fuzz_qmodel/tiny_nvfp4_sinq_emb.safetensors" --format nvfp4 --method sinq \
    --quantize-embeddings
q --model "$tmp/tiny" --out "$out.new/fuzz_qmodel/tiny_f32_rotated.safetensors" --format f32 --method hadamard+rtn
"$lowbit" pack --model "$tmp/tiny/model.safetensors" --out "$out.new/fuzz_packed/tiny.safetensors" --stream-len 64 >/dev/null
"$lowbit" pack --model "$tmp/tiny" --out "$tmp/tiny_packed" --stream-len 64 >/dev/null
folder "$out.new/fuzz_hf_folder/tiny" 0 "$tmp/tiny/config.json" 1 "$tmp/tiny/model.safetensors"
folder "$out.new/fuzz_hf_folder/tiny_packed" 0 "$tmp/tiny_packed/config.json" 1 "$tmp/tiny_packed/model.safetensors"

if [ -f "$ts/model.safetensors" ]; then
    q --model "$ts" --out "$out.new/fuzz_qmodel/ts656k_int4_g64_asym.safetensors" --format int4_asym --group 64
    q --model "$ts" --out "$out.new/fuzz_qmodel/ts656k_nvfp4_hadamard.safetensors" --format nvfp4 --method hadamard+rtn
    "$lowbit" pack --model "$ts" --out "$tmp/ts_packed" >/dev/null
    cp "$tmp/ts_packed/model.safetensors" "$out.new/fuzz_packed/ts656k.safetensors"
    folder "$out.new/fuzz_hf_folder/ts656k" 0 "$ts/config.json" 1 "$ts/model.safetensors" 2 "$ts/tokenizer.json"
    folder "$out.new/fuzz_hf_folder/ts656k_packed" 0 "$ts/config.json" 1 "$tmp/ts_packed/model.safetensors" \
        2 "$ts/tokenizer.json" 7 "$ts/generation_config.json"
    folder "$out.new/fuzz_hf_folder/tiny_tok" 0 "$tmp/tiny/config.json" 1 "$tmp/tiny/model.safetensors" \
        2 "$ts/tokenizer.json"
else
    echo "fuzz_corpus: $ts absent; tinystories-656k seeds skipped" >&2
fi
if [ -f "$s260/stories260K.bin" ] && [ -f "$text" ]; then
    # stories260K has vocab 512, like fuzz_logits' own model.
    for sc in half full; do
        "$lowbit" eval ppl --model "$s260/stories260K.bin" --tokenizer "$s260/tok512.bin" --text "$text" \
            --ctx 16 --chunks 2 --scoring $sc --threads 1 --save-logits "$out.new/fuzz_logits/s260k_ctx16_$sc.lp" >/dev/null
    done
    "$lowbit" eval ppl --model "$s260/stories260K.bin" --tokenizer "$s260/tok512.bin" --text "$text" \
        --ctx 4 --chunks 1 --threads 1 --save-logits "$out.new/fuzz_logits/s260k_ctx4.lp" >/dev/null
    folder "$out.new/fuzz_hf_folder/tiny_tokbin" 0 "$tmp/tiny/config.json" 1 "$tmp/tiny/model.safetensors" \
        6 "$s260/tok512.bin"
else
    echo "fuzz_corpus: $s260 or $text absent; saved-logits seeds skipped" >&2
fi
rm -rf "$out"
mv "$out.new" "$out"
