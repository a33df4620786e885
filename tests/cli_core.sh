#!/bin/sh
# CLI basics: help on every command, unknown commands and options.
. tests/cli_lib.sh
expect_ok help $CLI help
expect_ok version $CLI version
expect_ok info-json $CLI info --json
check info-json-valid grep -q '"isa_best"' "$T/out"
for c in $($CLI help | awk '/^commands:/{f=1;next} f&&/^  [a-z]/{print $1}'); do
    expect_ok "help-$c" $CLI $c --help
    check "help-$c-usage" grep -qi usage "$T/out"
done
expect_fail unknown-cmd "unknown command" $CLI frobnicate
expect_fail unknown-opt "unknown option" $CLI info --bogus
expect_fail no-args "usage" $CLI
done_tests
