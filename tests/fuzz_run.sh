#!/bin/sh
# fuzz_run.sh BUILD FUZZ_BUILD SECONDS [libFuzzer options...]: runs every
# libFuzzer target in FUZZ_BUILD/tests for SECONDS each (make fuzz). Seeds:
# the files the built-in driver of the same target in BUILD lists
# (`fuzz_x --seeds`: real models, tests/ files, BUILD/fuzz-corpus), copied to
# FUZZ_BUILD/seeds/<target>; inputs libFuzzer finds go to
# FUZZ_BUILD/corpus/<target>, crashes to FUZZ_BUILD/crashes/. Prints one
# line per target (executions, exec/s, coverage) and fails if any crashed.
# FUZZ_TARGETS="fuzz_a fuzz_b" limits the run to those targets.
set -u
build=$1 fbuild=$2 secs=$3
shift 3
failed=0
mkdir -p "$fbuild/crashes" "$fbuild/logs"
for bin in "$fbuild"/tests/fuzz_*; do
    case $bin in *.d) continue;; esac
    name=$(basename "$bin")
    if [ -n "${FUZZ_TARGETS:-}" ]; then
        case " $FUZZ_TARGETS " in *" $name "*) ;; *) continue;; esac
    fi
    seeds="$fbuild/seeds/$name" work="$fbuild/corpus/$name" log="$fbuild/logs/$name.log"
    rm -rf "$seeds"; mkdir -p "$seeds" "$work"
    if [ -x "$build/tests/$name" ]; then
        "$build/tests/$name" --seeds | while read -r f; do cp "$f" "$seeds/"; done
    fi
    "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$fbuild/crashes/$name-" \
        "$@" "$work" "$seeds" >"$log" 2>&1
    rc=$?
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    eps=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
    corp=$(ls "$work" | wc -l)
    if [ $rc -ne 0 ]; then
        failed=$((failed + 1))
        echo "FAIL $name (exit $rc): see $log"
        grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log" | head -n 8
    else
        echo "ok   $name: ${runs:-?} runs, ${eps:-?} exec/s, ${cov:-cov ?}, corpus $corp"
    fi
done
echo "fuzz: $failed target(s) failed"
[ $failed -eq 0 ]
