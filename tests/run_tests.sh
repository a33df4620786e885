#!/bin/sh
# Runs every test program (and the CLI tests) and prints one closing line
# "N passed, N failed[, N skipped]" summed over all of them. Exit status is
# non-zero when any test failed or a program crashed. Each program's line
# carries its wall time, so a slow CI run shows which tests to trim.
build=$1; shift
pass=0; fail=0; skip=0; crashed=0
export LOWBIT_CLI="$build/lowbit"
for t in "$@" $build/tests/fuzz_* tests/cli_*.sh tests/check_*.sh; do
    case $t in *.d) continue;; esac
    case $t in *cli_lib.sh) continue;; esac
    [ -e "$t" ] || continue
    case $t in *.sh) cmd="sh $t";; *) cmd=$t;; esac
    t0=$(date +%s%N)
    out=$($cmd 2>&1); rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    printf '%s\n' "$out" | grep -E '^(FAIL|FAILED|SKIP)' || true
    line=$(printf '%s\n' "$out" | grep -E ': [0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then
        echo "CRASH $t (exit $rc)"; printf '%s\n' "$out" | tail -n 20
        crashed=$((crashed + 1)); fail=$((fail + 1)); continue
    fi
    echo "$line ($ms ms)"
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + ${s:-0}))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then echo "CRASH $t (exit $rc)"; fail=$((fail + 1)); fi
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
