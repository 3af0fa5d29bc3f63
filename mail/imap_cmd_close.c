/* imap_cmd_close.c — CLOSE (RFC 3501 §6.4.2): removes the \Deleted messages silently when
 * the mailbox is read-write, then leaves it. All the removals are one store transaction. */
#include "mail/imap.h"

void imap_cmd_close(struct imap_session *s, struct imap_cmd *cmd)
{
    struct imap_mbox *mb = s->mbox;
    struct store_err err = {0};
    int rc = STORE_OK;

    if (cmd->nargs) {
        imap_bad(s, cmd, "CLOSE takes no arguments");
        return;
    }
    if (!mb->readonly && (rc = store_txn_begin(s->su, &err)) == STORE_OK) {
        for (size_t i = 0; i < mb->n && rc == STORE_OK; i++)
            if ((mb->msgs[i].flags & STORE_FLAG_DELETED) && !mb->msgs[i].expunged) {
                rc = store_item_delete(s->su, mb->msgs[i].id, &err);
                if (rc == STORE_ENOTFOUND) /* already gone: fine */
                    rc = STORE_OK;
            }
        if (rc == STORE_OK)
            rc = store_txn_commit(s->su, NULL, &err);
        else
            store_txn_rollback(s->su);
    }
    imap_mbox_close(s);
    if (rc != STORE_OK) {
        imap_store_error(s, cmd, rc, &err, "Expunging");
        return;
    }
    imap_ok(s, cmd, "CLOSE completed");
}
