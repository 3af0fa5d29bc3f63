#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each for a short while on
# its seed corpus (tests/fuzz/corpus/<name>/). FUZZ_SECONDS sets the time per target.
#   scripts/fuzz.sh            every target, 20 s each
#   scripts/fuzz.sh fuzz_mime  one target
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-20}

if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
        -Db_lundef=false -Dbuildtype=debugoptimized >/dev/null || exit 1
fi
meson compile -C build-fuzz >build-fuzz.compile.log 2>&1 || { cat build-fuzz.compile.log; exit 1; }

pass=0
fail=0
for bin in build-fuzz/tests/fuzz/fuzz_*; do
    [ -f "$bin" ] && [ -x "$bin" ] || continue
    name=$(basename "$bin")
    [ $# -gt 0 ] && [ "$1" != "$name" ] && continue
    corpus_seed=tests/fuzz/corpus/${name#fuzz_}
    [ -d "$corpus_seed" ] || corpus_seed=tests/fuzz/corpus/$(echo "${name#fuzz_}" | cut -d_ -f1)
    work=$(mktemp -d)
    [ -d "$corpus_seed" ] && cp -r "$corpus_seed"/. "$work"/
    dict=()
    [ -f "tests/fuzz/${name#fuzz_}.dict" ] && dict=(-dict="tests/fuzz/${name#fuzz_}.dict")
    if "$bin" "${dict[@]}" -max_total_time="$secs" -max_len=65536 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=0 "$work" >"$work.log" 2>&1; then
        echo "fuzz $name: ok ($(grep -c . "$work.log") log lines)"
        pass=$((pass + 1))
    else
        echo "fuzz $name: FAILED"
        tail -40 "$work.log"
        fail=$((fail + 1))
    fi
    rm -rf "$work" "$work.log"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
