/*
 * imap_cmd_expunge.c — EXPUNGE (RFC 3501 §6.4.3) and UID EXPUNGE (UIDPLUS, RFC 4315 §2.1):
 * removes the messages marked \Deleted (for UID EXPUNGE only those in the UID set), all in
 * one store transaction. The untagged EXPUNGE (or VANISHED under QRESYNC) responses are
 * not written here: the removals reach the view through the change journal like anyone
 * else's, and imap_mbox_sync sends them before the tagged OK.
 */
#include "mail/imap.h"

struct imap_expunge {
    struct store_err err;
    int rc;
};

static int imap_expunge_one(struct imap_session *s, size_t idx, void *ctx)
{
    struct imap_expunge *x = ctx;
    const struct imap_msg *m = &s->mbox->msgs[idx];

    if (!(m->flags & STORE_FLAG_DELETED) || m->expunged)
        return 0;
    x->rc = store_item_delete(s->su, m->id, &x->err);
    if (x->rc == STORE_ENOTFOUND) /* someone else removed it first: fine */
        x->rc = STORE_OK;
    return x->rc != STORE_OK;
}

/* Runs the removals in one transaction. Returns -1 when a BAD was already sent. */
static int imap_expunge_run(struct imap_session *s, struct imap_cmd *cmd, struct imap_expunge *x)
{
    struct imap_mbox *mb = s->mbox;

    if ((x->rc = store_txn_begin(s->su, &x->err)) != STORE_OK)
        return 0;
    if (cmd->uid) {
        if (imap_mbox_each(s, cmd, cmd->args[0].str, true, imap_expunge_one, x) < 0) {
            store_txn_rollback(s->su);
            return -1;
        }
    } else {
        for (size_t i = 0; i < mb->n && x->rc == STORE_OK; i++)
            imap_expunge_one(s, i, x);
    }
    if (x->rc == STORE_OK)
        x->rc = store_txn_commit(s->su, NULL, &x->err);
    else
        store_txn_rollback(s->su);
    return 0;
}

void imap_cmd_expunge(struct imap_session *s, struct imap_cmd *cmd)
{
    struct imap_expunge x = {.rc = STORE_OK};
    struct store_folder f;

    if (cmd->uid ? cmd->nargs != 1 || cmd->args[0].type != IMAP_ARG_ATOM : cmd->nargs != 0) {
        imap_bad(s, cmd, cmd->uid ? "UID EXPUNGE takes a UID set" : "EXPUNGE takes no arguments");
        return;
    }
    if (s->mbox->readonly) {
        imap_no(s, cmd, "The mailbox is read-only (EXAMINE)");
        return;
    }
    /* First bring the view up to date, so a \Deleted another session set counts too. */
    imap_mbox_sync(s, IMAP_SYNC_EXPUNGE);
    if (imap_expunge_run(s, cmd, &x) < 0)
        return;
    if (x.rc != STORE_OK) {
        imap_store_error(s, cmd, x.rc, &x.err, "Expunging");
        return;
    }
    imap_mbox_sync(s, IMAP_SYNC_EXPUNGE);
    /* With CONDSTORE or QRESYNC on, the tagged OK carries the mailbox's HIGHESTMODSEQ after
     * the removals (RFC 7162), so the client's cached value stays exact. */
    if ((s->enabled & (IMAP_EN_CONDSTORE | IMAP_EN_QRESYNC)) &&
        store_folder_get(s->su, s->mbox->folder.id, &f, NULL) == STORE_OK) {
        imap_ok(s, cmd, "[HIGHESTMODSEQ %llu] %s completed",
                (unsigned long long)IMAP_MODSEQ(f.modseq), cmd->uid ? "UID EXPUNGE" : "EXPUNGE");
        return;
    }
    imap_ok(s, cmd, "%s completed", cmd->uid ? "UID EXPUNGE" : "EXPUNGE");
}
