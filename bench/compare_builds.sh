#!/bin/sh
# compare_builds.sh OLD_LOWBIT NEW_LOWBIT: are two builds' outputs byte-identical?
# Each binary quantizes the shared models with 8 method/format/transform
# combinations (rtn, sinq, hadamard+rtn, hadamard+sinq, rotation alone,
# int4/int8/nf4/mxfp4/nvfp4/mxint8, MSE scales, quantized embeddings), packs
# tinystories-656k losslessly, then saves the log-probabilities of 3 chunks
# of 64 tokens (eval ppl --save-logits) and a greedy 30-token story for each
# of the 11 models. Every file is written under the same path for both
# binaries (the saved-logits header names the model path), and the SHA-256 of
# all 36 files are compared. Used for refactors that must not change a bit.
set -eu
OLD=$1; NEW=$2
S=${LOWBIT_MODELS:-../shared/models}; D=${LOWBIT_DATA:-../shared/data}
T=$D/tinystories/tinystories_val.txt
M1=$S/stories260K/stories260K.bin; M2=$S/tinystories-656k
W=$(mktemp -d /tmp/lowbit_cmp.XXXXXX); trap 'rm -rf "$W"' EXIT
gen() {
    B=$1; O=$W/out; rm -rf "$O"; mkdir -p "$O"
    q() { name=$1; m=$2; shift 2; "$B" quantize --model "$m" --out "$O/$name.safetensors" "$@" --threads 2 >/dev/null 2>&1; }
    q a_int4 "$M2" --format int4_g32
    q b_sinq "$M2" --format int4_asym --group 64 --method sinq
    q c_hmx "$M2" --format mxfp4 --method hadamard+rtn --quantize-embeddings
    q d_hnv "$M2" --format nvfp4 --method hadamard+sinq --scale-rule mse
    q e_i8 "$M1" --format int8_g32 --quantize-embeddings
    q f_nf4 "$M1" --format nf4 --method sinq
    q g_rot "$M2" --format f32 --method hadamard+rtn
    q h_mxi8 "$M2" --format mxint8 --hadamard 16
    "$B" pack --model "$M2" --out "$O/packed" >/dev/null 2>&1
    for m in "$M1" "$M2" "$O"/*.safetensors "$O/packed"; do
        n=$(basename "$m"); tk=$M2/tokenizer.json
        case $n in stories260K*|e_*|f_*) tk=$S/stories260K/tok512.bin;; esac
        "$B" eval ppl --model "$m" --text "$T" --tokenizer "$tk" --ctx 64 --chunks 3 --save-logits "$O/$n.lp" --threads 2 >/dev/null 2>&1
        "$B" run --model "$m" --tokenizer "$tk" --temp 0 -n 30 --threads 1 2>/dev/null > "$O/$n.run"
    done
    (cd "$O" && find . -type f | sort | xargs sha256sum)
}
gen "$OLD" > "$W/old.sums"
gen "$NEW" > "$W/new.sums"
n=$(wc -l < "$W/old.sums")
if diff "$W/old.sums" "$W/new.sums"; then echo "compare_builds: $n files identical"; else echo "compare_builds: outputs differ"; exit 1; fi
