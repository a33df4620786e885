#!/bin/sh
# check_layers.sh: no module includes a header of a module above it. The
# order is read from docs/design.md (the line starting "Module order:"), so
# the document and the check cannot drift apart. Every `#include "DIR/..."`
# in src/MODULE/*.{c,h} must name MODULE itself or a module listed before
# it; tools/ includes only lowbit.h and its own cli.h. Prints
# "check_layers: N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
order=$(sed -n 's/^Module order: *//p' docs/design.md | tr -d '`.' | tr ',' ' ')
pass=0; fail=0
if [ -z "$order" ]; then echo "FAIL check_layers: no 'Module order:' line in docs/design.md"; exit 1; fi
rank() { i=0; for m in $order; do [ "$m" = "$1" ] && { echo $i; return; }; i=$((i + 1)); done; echo -1; }
for dir in src/*/; do
    mod=$(basename "$dir"); r=$(rank "$mod")
    if [ "$r" -lt 0 ]; then echo "FAIL check_layers: src/$mod is not in the module order"; fail=$((fail + 1)); continue; fi
    for f in "$dir"*.c "$dir"*.h; do
        [ -e "$f" ] || continue
        for inc in $(sed -n 's/^#include "\([a-z_]*\)\/.*/\1/p' "$f" | sort -u); do
            ri=$(rank "$inc")
            if [ "$ri" -lt 0 ] || [ "$ri" -gt "$r" ]; then
                echo "FAIL check_layers: $f includes $inc/ (module $mod may use only: $(echo $order | sed "s/ $mod.*//") $mod)"
                fail=$((fail + 1))
            else pass=$((pass + 1)); fi
        done
    done
done
for f in tools/*.c tools/*.h; do
    if sed -n 's/^#include "\(.*\)"/\1/p' "$f" | grep -qv '^\(lowbit\.h\|cli\.h\)$'; then
        echo "FAIL check_layers: $f includes a private header (the CLI uses only lowbit.h)"; fail=$((fail + 1))
    else pass=$((pass + 1)); fi
done
echo "check_layers: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
