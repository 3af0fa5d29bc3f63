/* imap_cmd_unselect.c — UNSELECT (RFC 3691): leave the mailbox, remove nothing. */
#include "mail/imap.h"

void imap_cmd_unselect(struct imap_session *s, struct imap_cmd *cmd)
{
    if (cmd->nargs) {
        imap_bad(s, cmd, "UNSELECT takes no arguments");
        return;
    }
    imap_mbox_close(s);
    imap_ok(s, cmd, "UNSELECT completed");
}
