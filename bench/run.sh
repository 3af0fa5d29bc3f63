#!/usr/bin/env bash
# Side-by-side benchmarks: Polaris against the servers people run today, installed from
# Debian, on this machine, in the same run. Writes bench/results/<date>-<suite>[-quick].md,
# with the scaling curves as PNGs next to it.
#   bench/run.sh                  every suite, full run (an hour or more)
#   bench/run.sh --quick          every suite in a few minutes each, for development
#   bench/run.sh imap|smtp|dav|eas [--quick]   some suites only
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
suites=()
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        imap|smtp|dav|eas) suites+=("$arg") ;;
        *) echo "usage: bench/run.sh [imap|smtp|dav|eas]... [--quick]" >&2; exit 2 ;;
    esac
done
[ ${#suites[@]} -eq 0 ] && suites=(imap smtp dav eas)
want() { local s; for s in "${suites[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

bash scripts/deps.sh
# python3-matplotlib draws the scaling curves. Cyrus: cyrus-common's master and
# cyrus-caldav's httpd only; Debian's cyrus-imapd conflicts with Dovecot (both provide
# imap-server) and the benchmark does not need it (see bench/cyrus_peer.py). cyrus-common
# needs a mail transport agent: Postfix (preseeded below), not Debian's default exim4.
pkgs=(python3-matplotlib)
want imap && pkgs+=(dovecot-core dovecot-imapd)
want smtp && pkgs+=(dovecot-core dovecot-lmtpd postfix)
want dav && pkgs+=(radicale xandikos postfix cyrus-common cyrus-caldav sasl2-bin sogo
                   mariadb-server memcached)
want eas && pkgs+=(dovecot-core dovecot-imapd sogo sogo-activesync mariadb-server memcached
                   libwbxml2-utils)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
new_postfix=0
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    if [[ " ${missing[*]} " == *" postfix "* ]]; then
        new_postfix=1
        # No system mail configuration: the benchmark runs its own Postfix instance.
        echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
    fi
    $SUDO apt-get update -qq
    # The peers run as throwaway instances started by the benchmark: keep Debian from
    # starting their system services on install (MariaDB, memcached, SOGo, Cyrus), unless
    # a policy is already in place.
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
        own_policy=1
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    [ $own_policy = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
fi
# Debian starts Dovecot (and Postfix) as system services on install; the benchmark runs its
# own instances on loopback ports with throwaway configs. A Postfix that was already
# installed is the machine's MTA and is left alone (ours uses other ports and directories).
systemctl stop dovecot 2>/dev/null || service dovecot stop 2>/dev/null || true
if [ $new_postfix = 1 ]; then
    systemctl stop postfix 2>/dev/null || service postfix stop 2>/dev/null || true
fi

[ -f build-bench/build.ninja ] || meson setup build-bench -Dbuildtype=release -Dtests=false >/dev/null
meson compile -C build-bench >/dev/null

suffix=$([ $quick = 1 ] && echo -quick || true)

# report SUITE JSON: the results file (and its plots) from a benchmark's JSON.
report() {
    local out=bench/results/$(date -u +%Y-%m-%d)-$1$suffix
    /usr/bin/python3 bench/report.py "$1" "$2" --plots "$out" >"$out.md"
    rm -f "$2"
    cat "$out.md"
    echo "written: $out.md"
}

if want imap; then
    if [ $quick = 1 ]; then
        args=(--messages 10000 --append 1000 --sessions 20 --idle 200 --runs 3 --mixed-seconds 5
              --curve-points 3)
    else
        args=(--messages 100000 --append 10000 --sessions 50 --idle 1000 --runs 5 --mixed-seconds 10
              --curve-points 5)
    fi
    json=$(mktemp)
    /usr/bin/python3 bench/imap_bench.py --polaris build-bench/polaris "${args[@]}" >"$json"
    report imap "$json"
fi

if want smtp; then
    if [ $quick = 1 ]; then
        args=(--messages 1000 --runs 1)
    else
        args=(--messages 10000 --runs 3)
    fi
    json=$(mktemp)
    /usr/bin/python3 bench/smtp_bench.py --polaris build-bench/polaris --senders 20 \
        --size 10240 "${args[@]}" >"$json"
    report smtp "$json"
fi

if want dav; then
    if [ $quick = 1 ]; then
        args=(--events 1000 --contacts 1000 --runs 3 --curve-points 3)
    else
        args=(--events 10000 --contacts 10000 --runs 5 --curve-points 5)
    fi
    json=$(mktemp)
    /usr/bin/python3 bench/dav_bench.py --polaris build-bench/polaris "${args[@]}" >"$json"
    report dav "$json"
fi

if want eas; then
    # SOGo holds one waiting Ping per worker process: --sogo-devices must exceed
    # --sogo-workers for its limit to be found.
    if [ $quick = 1 ]; then
        args=(--messages 1000 --devices 1000 --curve-points 3 --runs 1 --sogo-workers 8
              --sogo-devices 12)
    else
        args=(--messages 10000 --devices 10000 --curve-points 6 --runs 3 --sogo-workers 64
              --sogo-devices 80)
    fi
    json=$(mktemp)
    /usr/bin/python3 bench/eas_bench.py --polaris build-bench/polaris "${args[@]}" >"$json"
    report eas "$json"
fi
