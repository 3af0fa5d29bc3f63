#!/usr/bin/env bash
# Side-by-side benchmarks: Polaris against the servers people run today, installed from
# Debian, on this machine, in the same run. Writes bench/results/<date>-<suite>.md.
#   bench/run.sh            full run (100,000 messages)
#   bench/run.sh --quick    a few minutes (10,000 messages), for development
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

bash scripts/deps.sh
missing=()
for p in dovecot-core dovecot-imapd; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian starts Dovecot as a system service on install; the benchmark runs its own.
systemctl stop dovecot 2>/dev/null || service dovecot stop 2>/dev/null || true

[ -f build-bench/build.ninja ] || meson setup build-bench -Dbuildtype=release -Dtests=false >/dev/null
meson compile -C build-bench >/dev/null

if [ $quick = 1 ]; then
    args=(--messages 10000 --append 1000 --sessions 20 --idle 200 --runs 3 --mixed-seconds 5)
else
    args=(--messages 100000 --append 10000 --sessions 50 --idle 1000 --runs 5 --mixed-seconds 10)
fi
json=$(mktemp)
/usr/bin/python3 bench/imap_bench.py --polaris build-bench/polaris "${args[@]}" >"$json"

out=bench/results/$(date -u +%Y-%m-%d)-imap$([ $quick = 1 ] && echo -quick).md
/usr/bin/python3 bench/report.py imap "$json" >"$out"
rm -f "$json"
cat "$out"
echo "written: $out"
