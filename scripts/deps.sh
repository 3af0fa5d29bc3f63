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
           python3-caldav vdirsyncer litmus python3-vobject python3-icalendar  # DAV clients
           libwbxml2-utils  # ActiveSync: an independent WBXML decoder
           python3-cryptography  # ActiveSync ValidateCert: test certificates
           # npm: only when the machine has none (a NodeSource nodejs bundles npm and
           # conflicts with Debian's npm package)
           $(command -v npm >/dev/null 2>&1 || echo npm))

# The libFuzzer smoke run of scripts/test.sh (clang's fuzzer runtime).
fuzz_pkgs=(clang libclang-rt-14-dev)

want=("${build_pkgs[@]}")
[ "${1:-}" = "--test" ] && want+=("${test_pkgs[@]}" "${fuzz_pkgs[@]}")

# Thunderbird's EAS add-on (webext-eas4tbsync) depends on Thunderbird itself, so it is not
# installed: its .deb is fetched from the archive and unpacked under build-deps/, where the
# ActiveSync tests load its WBXML codec into Node as an independent client.
fetch_eas4tbsync() {
    local dest=build-deps/eas4tbsync
    [ -f "$dest/content/includes/wbxmltools.js" ] && return 0
    local tmp
    tmp=$(mktemp -d)
    chmod 777 "$tmp"
    (cd "$tmp" && apt-get download webext-eas4tbsync >/dev/null 2>&1) || {
        $SUDO apt-get update -qq && (cd "$tmp" && apt-get download webext-eas4tbsync >/dev/null)
    } || { echo "cannot fetch webext-eas4tbsync" >&2; rm -rf "$tmp"; return 1; }
    dpkg-deb -x "$tmp"/webext-eas4tbsync_*.deb "$tmp/x"
    mkdir -p "$dest"
    /usr/bin/python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
        "$tmp"/x/usr/share/webext/eas4tbsync@jobisoft.de.xpi "$dest"
    rm -rf "$tmp"
}

cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ "${1:-}" = "--test" ] && fetch_eas4tbsync
exit 0
