#!/bin/sh
# act_accuracy.sh: KL divergence of activation formats (docs/activations.md).
# SET=bench (default): `lowbit bench act` (the weight x activation x rotation
# table, the documented way) on both real models and both texts, ctx 256, 60
# chunks, rotations none, smoothquant, hadamard, stamp, dartquant, quarot,
# calibrated on the TinyStories text's tail; writes OUTDIR/MODEL-TEXT/act.md,
# .json, .svg and prints the four tables. The other SETs are the earlier
# per-cell runs of `lowbit quantize` / `lowbit eval kld`:
# SET=base: W8A16 vs W8A8 (int8_g32 weights, FP32 vs int8_g32 activations), W4A8,
# W4A4 INT (int4_g32 x int4_g32) and MXFP4/MXFP4 and NVFP4/NVFP4, each with
# and without the online Hadamard rotation (weights hadamard+rtn: the
# activation is rotated by the weight's transform, then quantized), on both
# real models and both texts. Base: the FP32 model's log-probabilities.
# SET=sq: SmoothQuant W8A8 (smoothquant int8_g32, calibrated on the
# TinyStories text's tail with --calib-text) against rtn and hadamard+rtn,
# activations FP32, INT8 blocks of 32 and INT8 per token (int8_ch).
# SET=stamp: STaMP (--act stamp-KIND:int4[:AVG]) against plain int4
# activations and the identity transform at equal average bits.
# SET=dart: DartQuant (learned rotation, calibrated on the TinyStories
# text's tail with --calib-text) against no rotation and the online
# Hadamard, W4A4 INT (int4_g32 x int4_g32) and MXFP4/MXFP4; the quantize
# CPU time of dartquant and hadamard+rtn goes to OUTDIR/times.txt.
# SET=quarot: the QuaRot residual-stream rotation (quantize --quarot), alone
# (rtn) and with the online Hadamard of every linear input (--hadamard 0),
# W4A4 INT and MXFP4/MXFP4 (compare with SET=dart's none/hadamard rows).
# SET=static: static (calibrated) activation scales (--act FORMAT:static
# --act-calib: max |x| per block from `lowbit calib` on the tail of the same
# text, 16384 tokens; eval reads from its start) against per-token scales.
# usage: [SET=bench|base|sq|stamp|dart|quarot|static] bench/act_accuracy.sh [OUTDIR]   (prints markdown)
set -e
SET=${SET:-bench}
L=${LOWBIT_CLI:-build/lowbit}
M=${LOWBIT_MODELS:-../shared/models}
D=${LOWBIT_DATA:-../shared/data}
O=${1:-/tmp/lowbit-act-accuracy}
CTX=${CTX:-256}
CHUNKS=${CHUNKS:-60}
mkdir -p "$O"
if [ $SET = bench ]; then
    for model in stories260K tinystories-656k; do
        if [ $model = stories260K ]; then src="$M/stories260K/stories260K.bin"; else src="$M/tinystories-656k"; fi
        for text in tinystories wikitext2; do
            if [ $text = tinystories ]; then t="$D/tinystories/tinystories_val.txt"; else t="$D/wikitext2/wiki.test.raw"; fi
            echo "### $model, $text"; echo
            "$L" bench act --model "$src" --text "$t" --calib-text "$D/tinystories/tinystories_val.txt" --ctx $CTX \
                --chunks $CHUNKS --rotations none,smoothquant,hadamard,stamp,dartquant,quarot --out "$O/$model-$text"
            echo
        done
    done
    exit 0
fi
echo "| model | text | weights | activations | rotation | KLD | top-1 % | PPL ratio |"
echo "|---|---|---|---|---|---:|---:|---:|"
for model in stories260K tinystories-656k; do
    if [ $model = stories260K ]; then src="$M/stories260K/stories260K.bin"; tok="$M/stories260K/tok512.bin"
    else src="$M/tinystories-656k"; tok="$M/tinystories-656k/tokenizer.json"; fi
    [ $SET = sq ] && "$L" quantize --model "$src" --out "$O/$model-int8_g32-sq.safetensors" --format int8_g32 \
        --method smoothquant --calib-text "$D/tinystories/tinystories_val.txt" --force >/dev/null 2>&1
    fmts="int8_g32 int4_g32 mxfp4 nvfp4"; [ $SET = sq ] && fmts=int8_g32; [ $SET = stamp ] && fmts=int4_g32
    [ $SET = dart ] || [ $SET = quarot ] && fmts="int4_g32 mxfp4"
    [ $SET = static ] && fmts="int8_g32 int4_g32"
    for fmt in $fmts; do
        if [ $SET = quarot ]; then
            "$L" quantize --model "$src" --out "$O/$model-$fmt-qr.safetensors" --format $fmt --quarot --force >/dev/null 2>&1
            "$L" quantize --model "$src" --out "$O/$model-$fmt-qrh.safetensors" --format $fmt --quarot --hadamard 0 \
                --force >/dev/null 2>&1
            continue
        fi
        if [ $SET = dart ]; then
            /usr/bin/time -f "$model $fmt dartquant %U s user %e s wall" -a -o "$O/times.txt" "$L" quantize --model "$src" \
                --out "$O/$model-$fmt-dq.safetensors" --format $fmt --method dartquant \
                --calib-text "$D/tinystories/tinystories_val.txt" --force >/dev/null 2>&1
            /usr/bin/time -f "$model $fmt hadamard+rtn %U s user %e s wall" -a -o "$O/times.txt" "$L" quantize \
                --model "$src" --out "$O/$model-$fmt-h.safetensors" --format $fmt --hadamard 0 --force >/dev/null 2>&1
        fi
        "$L" quantize --model "$src" --out "$O/$model-$fmt.safetensors" --format $fmt --force >/dev/null 2>&1
        "$L" quantize --model "$src" --out "$O/$model-$fmt-h.safetensors" --format $fmt --hadamard 0 --force >/dev/null 2>&1
    done
    for text in tinystories wikitext2; do
        if [ $text = tinystories ]; then t="$D/tinystories/tinystories_val.txt"; else t="$D/wikitext2/wiki.test.raw"; fi
        base="$O/$model-$text.base"
        "$L" eval ppl --model "$src" --tokenizer "$tok" --text "$t" --ctx $CTX --chunks $CHUNKS --save-logits "$base" --force >/dev/null
        calib="$O/$model-$text.calib"
        [ $SET = static ] && "$L" calib --model "$src" --tokenizer "$tok" --text "$t" --out "$calib" --force >/dev/null 2>&1
        # weights activations rotation
        runs="int8_g32 none none;int8_g32 int8_g32 none;int4_g32 none none;int4_g32 int8_g32 none;int4_g32 int4_g32 none;int4_g32 int4_g32 hadamard;mxfp4 mxfp4 none;mxfp4 mxfp4 hadamard;nvfp4 nvfp4 none;nvfp4 nvfp4 hadamard"
        [ $SET = sq ] && runs="int8_g32 none none;int8_g32 int8_g32 none;int8_g32 int8_ch none;int8_g32 none smoothquant;int8_g32 int8_g32 smoothquant;int8_g32 int8_ch smoothquant;int8_g32 none hadamard;int8_g32 int8_g32 hadamard;int8_g32 int8_ch hadamard"
        [ $SET = dart ] && runs="int4_g32 none none;int4_g32 int4_g32 none;int4_g32 int4_g32 hadamard;int4_g32 none dartquant;int4_g32 int4_g32 dartquant;mxfp4 mxfp4 none;mxfp4 mxfp4 hadamard;mxfp4 mxfp4 dartquant"
        [ $SET = quarot ] && runs="int4_g32 none quarot;int4_g32 int4_g32 quarot;int4_g32 int4_g32 quarot+hadamard;mxfp4 mxfp4 quarot;mxfp4 mxfp4 quarot+hadamard"
        [ $SET = static ] && runs="int8_g32 none none;int8_g32 int8_g32 none;int8_g32 int8_g32:static none;int4_g32 int8_g32 none;int4_g32 int8_g32:static none;int4_g32 int4_g32 none;int4_g32 int4_g32:static none"
        [ $SET = stamp ] && runs="int4_g32 none none;int4_g32 int4_g32 none;int4_g32 stamp-id:int4:4.25 none;int4_g32 stamp-haar:int4:4.25 none;int4_g32 stamp-dct:int4:4.25 none;int4_g32 stamp-id:int4:4.5 none;int4_g32 stamp-dct:int4:4.5 none;int4_g32 int4_g32 hadamard;int4_g32 stamp-dct:int4:4.25 hadamard"
        IFS=';'
        for run in $runs; do
            IFS=' '
            set -- $run
            f="$O/$model-$1.safetensors"
            [ "$3" = hadamard ] && f="$O/$model-$1-h.safetensors"
            [ "$3" = smoothquant ] && f="$O/$model-$1-sq.safetensors"
            [ "$3" = dartquant ] && f="$O/$model-$1-dq.safetensors"
            [ "$3" = quarot ] && f="$O/$model-$1-qr.safetensors"
            [ "$3" = quarot+hadamard ] && f="$O/$model-$1-qrh.safetensors"
            ac=""; case "$2" in *:static) ac="--act-calib $calib";; esac
            r=$("$L" eval kld --model "$f" --base "$base" --act "$2" $ac --json 2>/dev/null)
            kld=$(echo "$r" | sed 's/.*"kld": \([^,]*\),.*/\1/'); top=$(echo "$r" | sed 's/.*"top1": \([^,]*\),.*/\1/')
            pr=$(echo "$r" | sed 's/.*"ppl_ratio": \([^,]*\),.*/\1/')
            a=$2; [ "$a" = none ] && a="FP32"
            printf "| %s | %s | %s | %s | %s | %.5f | %.2f | %.4f |\n" $model $text $1 "$a" $3 "$kld" \
                "$(echo "$top * 100" | bc -l)" "$pr"
            IFS=';'
        done
        IFS=' '
    done
done
