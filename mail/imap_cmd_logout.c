/* imap_cmd_logout.c — LOGOUT (RFC 3501 §6.1.3). */
#include "mail/imap.h"

void imap_cmd_logout(struct imap_session *s, struct imap_cmd *cmd)
{
    imap_untagged(s, "BYE Logging out");
    imap_ok(s, cmd, "LOGOUT completed");
    s->state = IMAP_LOGOUT;
}
