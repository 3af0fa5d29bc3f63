/* imap_cmd_id.c — ID (RFC 2971). Clients send it before login (Thunderbird, iOS) and some
 * servers' answers are used to pick workarounds: we say who we are and nothing more. */
#include "mail/imap.h"

void imap_cmd_id(struct imap_session *s, struct imap_cmd *cmd)
{
    if (cmd->nargs != 1 || (cmd->args[0].type != IMAP_ARG_NIL &&
                            (cmd->args[0].type != IMAP_ARG_LIST || cmd->args[0].count % 2))) {
        imap_bad(s, cmd, "ID takes NIL or a list of field/value pairs");
        return;
    }
    imap_untagged(s, "ID (\"name\" \"Polaris\" \"vendor\" \"Polaris\")");
    imap_ok(s, cmd, "ID completed");
}
