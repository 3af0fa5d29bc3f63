#!/usr/bin/env bash
# Builds Polaris and runs every test: unit (cmocka) and integration (real binary, real
# clients), first in a normal build, then again in an AddressSanitizer + UBSan build.
#   scripts/test.sh            everything
#   scripts/test.sh --quick    the normal build only
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh --test || exit 1

total_pass=0
total_fail=0

# run_suite DIR [meson setup options...]
run_suite() {
    local dir=$1; shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >/dev/null || { total_fail=$((total_fail + 1)); return; }
    fi
    if ! meson compile -C "$dir" >"$dir.compile.log" 2>&1; then
        cat "$dir.compile.log"
        echo "build failed in $dir"
        total_fail=$((total_fail + 1))
        return
    fi
    meson test -C "$dir" --print-errorlogs --num-processes 2
    local counts
    counts=$(/usr/bin/python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
ok = bad = 0
for line in open(sys.argv[1]):
    r = json.loads(line).get('result')
    if r in ('OK', 'EXPECTEDFAIL', 'SKIP'):
        ok += 1
    else:
        bad += 1
print(ok, bad)
PY
)
    set -- $counts
    echo "$dir: $1 passed, $2 failed"
    total_pass=$((total_pass + $1))
    total_fail=$((total_fail + $2))
}

run_suite build
if [ "${1:-}" != "--quick" ]; then
    run_suite build-asan -Db_sanitize=address,undefined -Dbuildtype=debug
fi

echo "tests: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
