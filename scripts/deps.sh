#!/usr/bin/env bash
# Installs the Debian packages Polaris needs, only when some are missing.
#   scripts/deps.sh          build + run
#   scripts/deps.sh --test   also what the test suite drives (real clients, peers)
set -euo pipefail

build_pkgs=(meson ninja-build gcc pkg-config
            libmicrohttpd-dev libxml2-dev libical-dev libsqlite3-dev libssl-dev
            libinih-dev libcrypt-dev openssl)
test_pkgs=(libcmocka-dev python3 sqlite3 curl isync nodejs swaks libnet-ssleay-perl
           python3-aiosmtpd python3-dkim dnsmasq-base  # outbound queue: sink MX, DKIM, MX DNS
           # npm: only when the machine has none (a NodeSource nodejs bundles npm and
           # conflicts with Debian's npm package)
           $(command -v npm >/dev/null 2>&1 || echo npm))

# The libFuzzer smoke run of scripts/test.sh (clang's fuzzer runtime).
fuzz_pkgs=(clang libclang-rt-14-dev)

want=("${build_pkgs[@]}")
[ "${1:-}" = "--test" ] && want+=("${test_pkgs[@]}" "${fuzz_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing Debian packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
