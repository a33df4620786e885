#!/bin/sh
# lowbit kv / run --kv / eval ppl --kv / eval kv: the registry listing, SPEC
# errors (one line naming the option, non-zero exit), f32 = no --kv bit for
# bit, a KIVI cache's story, and eval kv's table (f16 close to f32, 2-bit
# without a window worse than with one) in markdown and JSON.
. tests/cli_lib.sh
M=${LOWBIT_MODELS:-../shared/models}
D=${LOWBIT_DATA:-../shared/data}
S260=$M/stories260K/stories260K.bin
VAL=$D/tinystories/tinystories_val.txt

expect_ok kv-list $CLI kv --list
check kv-list-kivi grep -q "^kivi .*store" "$T/out"
expect_ok kv-list-json $CLI kv --list --json
check kv-list-json-obj grep -q '"name": "fmt", "kind": "store"' "$T/out"
expect_ok kv-check $CLI kv --check "kivi:bits=2"
check kv-check-full grep -qx "kivi:bits=2,group=32,residual=128,rot=none" "$T/out"
expect_fail kv-unknown "unknown policy 'nope'" $CLI kv --check nope
expect_fail kv-param "has no parameter 'x'" $CLI kv --check "kivi:x=1"
expect_fail kv-bits "2, 3, 4 or 8" $CLI kv --check "kivi:bits=6"
expect_fail kv-two "two storage policies" $CLI kv --check "f16+kivi"
expect_fail kv-none "give --list or --check" $CLI kv
if [ ! -f "$S260" ] || [ ! -f "$VAL" ]; then
    echo "SKIP cli_kv (models): shared models/data absent ($M, $D)"; skip=1; done_tests; exit $?
fi
expect_fail run-kv-bad "lowbit run: --kv: unknown policy" $CLI run --model "$S260" --kv "kivy:bits=4" -n 4
expect_fail run-kv-window "not shorter than the context" $CLI run --model "$S260" --kv "kivi:residual=256" -n 20
expect_fail run-kv-fmt "not a multiple of its block" $CLI run --model "$S260" --kv "fmt:format=mxfp4" -n 20
expect_ok run-f32 $CLI run --model "$S260" --temp 0 -n 60 --kv f32
cp "$T/out" "$T/f32"
expect_ok run-default $CLI run --model "$S260" --temp 0 -n 60
check run-f32-same cmp -s "$T/out" "$T/f32"
expect_ok run-kivi $CLI run --model "$S260" --temp 0 -n 60 --kv "kivi:bits=4,residual=32" --json
check run-kivi-json grep -q '"kv": "kivi:bits=4,group=32,residual=32,rot=none"' "$T/out"
check run-kivi-story grep -q "Once upon a time" "$T/out"
expect_ok ppl-f32 $CLI eval ppl --model "$S260" --text "$VAL" --ctx 128 --chunks 2 --json --kv f32
sed 's/"tokens_per_s": [^,]*,//; s/"seconds": [^,]*,//' "$T/out" > "$T/p1"
expect_ok ppl-plain $CLI eval ppl --model "$S260" --text "$VAL" --ctx 128 --chunks 2 --json
sed 's/"tokens_per_s": [^,]*,//; s/"seconds": [^,]*,//' "$T/out" > "$T/p2"
check ppl-f32-same cmp -s "$T/p1" "$T/p2"
expect_fail ppl-kv-bad "eval ppl: --kv: kivi bits=1" $CLI eval ppl --model "$S260" --text "$VAL" --kv "kivi:bits=1"
expect_ok evkv-md $CLI eval kv --model "$S260" --text "$VAL" --ctx 96 --cont 32 --chunks 2 --threads 2 \
    --sweep "f16;kivi:bits=2,group=16,residual=32;kivi:bits=2,group=16,residual=0"
check evkv-md-head grep -q "^| SPEC | KL div" "$T/out"
expect_ok evkv-json $CLI eval kv --model "$S260" --text "$VAL" --ctx 96 --cont 32 --chunks 2 --threads 2 --json \
    --kv f16 --kv "kivi:bits=2,group=16,residual=32" --kv "kivi:bits=2,group=16,residual=0"
k1=$(sed -n 's/.*"spec": "f16.*"kld": \([^,]*\),.*/\1/p' "$T/out")
k2=$(sed -n 's/.*"spec": "kivi:bits=2,group=16,residual=32.*"kld": \([^,]*\),.*/\1/p' "$T/out")
k3=$(sed -n 's/.*"spec": "kivi:bits=2,group=16,residual=0.*"kld": \([^,]*\),.*/\1/p' "$T/out")
check evkv-f16-small awk -v a="$k1" 'BEGIN { exit !(a != "" && a < 0.001) }'
check evkv-window-helps awk -v a="$k2" -v b="$k3" 'BEGIN { exit !(a != "" && b != "" && a < b) }'
q1=$(sed -n 's/.*"spec": "f16.*"v_qsnr_db": \([^}]*\)}.*/\1/p' "$T/out")
q3=$(sed -n 's/.*"spec": "kivi:bits=2,group=16,residual=0.*"v_qsnr_db": \([^}]*\)}.*/\1/p' "$T/out")
# f16 keeps 11 bits of mantissa: about 6 dB per bit, so > 60 dB; 2-bit codes far below
check evkv-qsnr awk -v a="$q1" -v b="$q3" 'BEGIN { exit !(a != "" && b != "" && a > 60 && b > 3 && b < 20) }'
expect_ok evkv-svg $CLI eval kv --model "$S260" --text "$VAL" --ctx 64 --cont 16 --chunks 1 --svg "$T/kv.svg" \
    --sweep "kivi:bits=4,group=16,residual=0;kivi:bits=2,group=16,residual=0;f16"
check evkv-svg-curve grep -q '<polyline fill="none"' "$T/kv.svg"
check evkv-svg-family grep -q '>kivi:group=16,residual=0,rot=none</text>' "$T/kv.svg"
expect_fail evkv-svg-exists "exists (use --force" $CLI eval kv --model "$S260" --text "$VAL" --kv f16 --svg "$T/kv.svg"
expect_fail evkv-nospec "no cache to evaluate" $CLI eval kv --model "$S260" --text "$VAL"
expect_fail evkv-badspec "unknown policy" $CLI eval kv --model "$S260" --text "$VAL" --kv "f32;x"
expect_fail evkv-long "exceed the model's" $CLI eval kv --model "$S260" --text "$VAL" --kv f16 --ctx 500 --cont 64
# XQuant: the full form, refusals, bits=32 (F32 rows of X) = f32 in run and eval ppl, eval kv at 4 and 2 bits
expect_ok xq-check $CLI kv --check "xquant:bits=2,cl=1"
check xq-check-full grep -qx "xquant:bits=2,group=32,format=int8_ch,cl=1,rank=0,page=32" "$T/out"
expect_fail xq-bits "xquant bits=5" $CLI kv --check "xquant:bits=5"
expect_fail xq-evict "eviction stage 'snapkv'" $CLI run --model "$S260" --kv "snapkv:ratio=0.5+xquant" -n 4
expect_ok run-xq32 $CLI run --model "$S260" --temp 0 -n 60 --kv "xquant:bits=32"
check run-xq32-same cmp -s "$T/out" "$T/f32"
expect_ok run-xq4 $CLI run --model "$S260" --temp 0 -n 60 --kv "xquant:bits=4,cl=1" --json
check run-xq4-json grep -q '"kv": "xquant:bits=4,group=32,format=int8_ch,cl=1,rank=0,page=32"' "$T/out"
check run-xq4-story grep -q "Once upon a time" "$T/out"
expect_ok ppl-xq32 $CLI eval ppl --model "$S260" --text "$VAL" --ctx 128 --chunks 2 --json --kv "xquant:bits=32"
sed 's/"tokens_per_s": [^,]*,//; s/"seconds": [^,]*,//; s/"kv": "[^"]*"//' "$T/out" > "$T/p3"
sed 's/"kv": "[^"]*"//' "$T/p1" > "$T/p4"
check ppl-xq32-same cmp -s "$T/p3" "$T/p4"
expect_ok kld-base $CLI eval ppl --model "$S260" --text "$VAL" --ctx 128 --chunks 2 --save-logits "$T/base.bin"
expect_ok kld-f32 $CLI eval kld --model "$S260" --base "$T/base.bin" --kv f32 --json
sed 's/"tokens_per_s": [^,}]*//' "$T/out" > "$T/k1"
expect_ok kld-xq32 $CLI eval kld --model "$S260" --base "$T/base.bin" --kv "xquant:bits=32" --json
sed 's/"tokens_per_s": [^,}]*//' "$T/out" > "$T/k2"
check kld-xq32-same cmp -s "$T/k1" "$T/k2"
expect_ok kld-xq4 $CLI eval kld --model "$S260" --base "$T/base.bin" --kv "xquant:bits=4" --json
check kld-xq4-lossy grep -q '"top1": 0\.' "$T/out"
expect_ok evkv-xq $CLI eval kv --model "$S260" --text "$VAL" --ctx 96 --cont 32 --chunks 2 --threads 2 --json \
    --kv "xquant:bits=32" --kv "xquant:bits=4" --kv "xquant:bits=2"
x0=$(sed -n 's/.*"spec": "xquant:bits=32.*"kld": \([^,]*\),.*/\1/p' "$T/out")
x4=$(sed -n 's/.*"spec": "xquant:bits=4.*"kld": \([^,]*\),.*/\1/p' "$T/out")
x2=$(sed -n 's/.*"spec": "xquant:bits=2.*"kld": \([^,]*\),.*/\1/p' "$T/out")
b4=$(sed -n 's/.*"spec": "xquant:bits=4.*"bytes_per_token": \([^,]*\),.*/\1/p' "$T/out")
check evkv-xq-exact awk -v a="$x0" 'BEGIN { exit !(a != "" && a == 0) }'
check evkv-xq-order awk -v a="$x4" -v b="$x2" 'BEGIN { exit !(a != "" && b != "" && 0 < a && a < b) }'
# 5 layers x (64 x 4 / 8 code bytes + 2 x 2 x 64 / 32 scale/min bytes + 4 position bytes), 96 = 3 whole pages
check evkv-xq-bytes awk -v a="$b4" 'BEGIN { exit !(a == 220) }'
done_tests
