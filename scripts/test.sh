#!/usr/bin/env bash
# Builds Polaris and runs every test: unit (cmocka) and integration (real binary, real
# clients), first in a normal build, then again in an AddressSanitizer + UBSan build, then
# a short libFuzzer run of every parser.
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
# Counts test cases, not suites: cmocka prints "[==========] N test(s) run." and
# "[  FAILED  ] N test(s)", unittest prints "Ran N tests" and "FAILED (failures=a, errors=b)".
# A suite whose output has neither (crashed, timed out) counts as one failure.
import json, re, sys
ok = bad = 0
for line in open(sys.argv[1]):
    t = json.loads(line)
    out = (t.get('stdout') or '') + (t.get('stderr') or '')
    passed = t.get('result') in ('OK', 'EXPECTEDFAIL', 'SKIP')
    m = re.search(r'\[=+\] (\d+) test\(s\) run', out) or re.search(r'^Ran (\d+) tests?', out, re.M)
    if not m:
        ok, bad = (ok + 1, bad) if passed else (ok, bad + 1)
        continue
    n = int(m.group(1))
    f = re.search(r'\[  FAILED  \] (\d+) test', out)
    u = re.search(r'FAILED \((?:failures=(\d+))?(?:, )?(?:errors=(\d+))?', out)
    failed = int(f.group(1)) if f else sum(int(x or 0) for x in u.groups()) if u else 0
    if not passed and failed == 0:
        failed = 1
    ok += n - min(failed, n)
    bad += failed
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
    # Every parser's libFuzzer target, briefly, in its own instrumented build.
    fuzz_out=$(FUZZ_SECONDS=${FUZZ_SECONDS:-15} bash scripts/fuzz.sh)
    echo "$fuzz_out"
    set -- $(echo "$fuzz_out" | sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')
    total_pass=$((total_pass + ${1:-0}))
    total_fail=$((total_fail + ${2:-1}))
fi

echo "tests: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
