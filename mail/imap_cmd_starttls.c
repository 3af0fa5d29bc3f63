/* imap_cmd_starttls.c — STARTTLS (RFC 3501 §6.2.1). net_starttls discards whatever the
 * client pipelined after the command, so nothing sent in clear counts as sent over TLS;
 * the client must ask for CAPABILITY again afterwards (the list changes). */
#include "mail/imap.h"

void imap_cmd_starttls(struct imap_session *s, struct imap_cmd *cmd)
{
    if (!net_conn_can_starttls(s->c)) {
        imap_no(s, cmd, "%s",
                net_conn_is_tls(s->c) ? "TLS is already active" : "TLS is not available here");
        return;
    }
    imap_ok(s, cmd, "Begin TLS negotiation now");
    if (net_starttls(s->c) < 0)
        s->state = IMAP_LOGOUT;
}
