/* imap_cmd_namespace.c — NAMESPACE (RFC 2342): one personal namespace, no prefix, '.' as
 * the hierarchy separator (the hosting product names archives "Archive.Inbox.2023"). No
 * shared or other users' namespaces: tenants and users never see each other. */
#include "mail/imap.h"

void imap_cmd_namespace(struct imap_session *s, struct imap_cmd *cmd)
{
    if (cmd->nargs) {
        imap_bad(s, cmd, "NAMESPACE takes no arguments");
        return;
    }
    imap_untagged(s, "NAMESPACE ((\"\" \"%c\")) NIL NIL", MAIL_HIER_SEP);
    imap_ok(s, cmd, "NAMESPACE completed");
}
