/* imap_cmd_capability.c — CAPABILITY (RFC 3501 §6.1.1): what this session may use now. */
#include "mail/imap.h"

void imap_cmd_capability(struct imap_session *s, struct imap_cmd *cmd)
{
    char caps[1024];

    if (cmd->nargs) {
        imap_bad(s, cmd, "CAPABILITY takes no arguments");
        return;
    }
    imap_capabilities(s, caps, sizeof(caps));
    imap_untagged(s, "CAPABILITY %s", caps);
    imap_ok(s, cmd, "CAPABILITY completed");
}
