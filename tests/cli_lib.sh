# cli_lib.sh: sourced by tests/cli_*.sh. Provides expect_ok / expect_fail and
# a summary line in the harness format. LOWBIT_CLI points at the binary.
CLI=${LOWBIT_CLI:-build/lowbit}
T=$(mktemp -d /tmp/lowbit_cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0; skip=0
ok()   { pass=$((pass + 1)); }
bad()  { fail=$((fail + 1)); echo "FAIL $name: $*"; }
# expect_ok NAME CMD...: command succeeds
expect_ok() { name=$1; shift; if "$@" >"$T/out" 2>"$T/err"; then ok; else bad "exit $? from: $* : $(cat "$T/err")"; fi; }
# expect_fail NAME PATTERN CMD...: fails with exit != 0, one stderr line matching PATTERN, no crash
expect_fail() {
    name=$1; pat=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -eq 0 ]; then bad "succeeded: $*"; return; fi
    if [ $rc -ge 128 ]; then bad "crashed (rc $rc): $*"; return; fi
    if ! grep -q -- "$pat" "$T/err"; then bad "stderr lacks '$pat': $(cat "$T/err")"; return; fi
    ok
}
check() { name=$1; shift; if "$@"; then ok; else bad "$*"; fi; }
done_tests() { echo "$(basename "$0" .sh): $pass passed, $fail failed, $skip skipped"; [ $fail -eq 0 ]; }
