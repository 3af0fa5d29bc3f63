/* imap_cmd_noop.c — NOOP and CHECK: nothing to do; the updates sent after every command
 * (imap.c) are what clients poll them for. CHECK is gone in IMAP4rev2 but rev1 clients
 * still send it. */
#include "mail/imap.h"

void imap_cmd_noop(struct imap_session *s, struct imap_cmd *cmd)
{
    imap_ok(s, cmd, "%s completed", cmd->name);
}

void imap_cmd_check(struct imap_session *s, struct imap_cmd *cmd)
{
    imap_cmd_noop(s, cmd);
}
