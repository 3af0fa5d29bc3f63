#!/usr/bin/env bash
# Builds Polaris and runs it on an embedded default: SQLite under ./demo-data, the demo
# domain example.com with alice (Enhanced) and bob (Basic), listeners on loopback high
# ports. Prints what a person needs to point a client at it. Ctrl-C stops it.
# Ports can be moved with POLARIS_HTTP_PORT / POLARIS_HTTPS_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null

DATA=demo-data
CONF=$DATA/polaris.ini
HTTP_PORT=${POLARIS_HTTP_PORT:-8080}
HTTPS_PORT=${POLARIS_HTTPS_PORT:-8443}
# The mail ports, moved up by 1000 or so from the standard ones so no root is needed.
IMAP_PORT=1143 IMAPS_PORT=1993 POP3_PORT=1110 POP3S_PORT=1995
SMTP_PORT=2525 SUBMISSION_PORT=1587 SUBMISSIONS_PORT=1465
ALICE_PW='Alice-Demo-2026!'
BOB_PW='Bob-Demo-2026!'
mkdir -p "$DATA"
cat > "$CONF" <<INI
; Polaris demo configuration (written by scripts/demo.sh)
[server]
hostname = localhost
; *.localhost resolves to this machine in curl and browsers, so the per-domain host
; example--com.localhost works without any DNS.
web_base = localhost
data_dir = .

[listen]
http = 127.0.0.1:$HTTP_PORT
https = 127.0.0.1:$HTTPS_PORT
imap = 127.0.0.1:$IMAP_PORT
imaps = 127.0.0.1:$IMAPS_PORT
pop3 = 127.0.0.1:$POP3_PORT
pop3s = 127.0.0.1:$POP3S_PORT
smtp = 127.0.0.1:$SMTP_PORT
submission = 127.0.0.1:$SUBMISSION_PORT
submissions = 127.0.0.1:$SUBMISSIONS_PORT

[auth]
; On this loopback-only demo, clients may log in without TLS too.
allow_plaintext = loopback
INI

P="build/polaris -c $CONF"
$P domain show example.com >/dev/null 2>&1 || $P domain add example.com >/dev/null
$P user show alice@example.com >/dev/null 2>&1 ||
    $P user add alice@example.com --type enhanced --password-stdin <<<"$ALICE_PW" >/dev/null
$P user show bob@example.com >/dev/null 2>&1 ||
    $P user add bob@example.com --type basic --password-stdin <<<"$BOB_PW" >/dev/null

HOST=example--com.localhost
cat <<TXT

  Polaris demo — data in $DATA/, config $CONF

  Domain      example.com   (web host $HOST)
  Users       alice@example.com  password $ALICE_PW  (Enhanced: mail, ActiveSync, CalDAV, CardDAV)
              bob@example.com    password $BOB_PW    (Basic: mail only)

  IMAP        127.0.0.1 port $IMAP_PORT (STARTTLS), $IMAPS_PORT (TLS)
  POP3        127.0.0.1 port $POP3_PORT (STLS), $POP3S_PORT (TLS)
  SMTP        127.0.0.1 port $SUBMISSION_PORT (submission, STARTTLS), $SUBMISSIONS_PORT (TLS),
              $SMTP_PORT (incoming MX)
              user name: the full address; certificate: $DATA/tls/cert.pem

  HTTP        http://$HOST:$HTTP_PORT/
  HTTPS       https://$HOST:$HTTPS_PORT/   (self-signed: $DATA/tls/cert.pem)
  ActiveSync  https://$HOST:$HTTPS_PORT/Microsoft-Server-ActiveSync
  CalDAV      https://$HOST:$HTTPS_PORT/caldav
  CardDAV     https://$HOST:$HTTPS_PORT/carddav
  Autoconfig  http://$HOST:$HTTP_PORT/mail/config-v1.1.xml

  Try:  curl -u 'alice@example.com:$ALICE_PW' imap://127.0.0.1:$IMAP_PORT/INBOX
        curl -u 'alice@example.com:$ALICE_PW' -X PROPFIND -H 'Depth: 1' http://$HOST:$HTTP_PORT/caldav/alice@example.com/
  Admin: $P --help

  Calendars and address books: paste the CalDAV or CardDAV URL into Thunderbird, DAVx5,
  iOS or eM Client; phones and Outlook add an Exchange account with server $HOST.
  Stopping: Ctrl-C.

TXT
exec $P serve
