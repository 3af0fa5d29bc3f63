/*
 * imap_cmd_move.c — MOVE and UID MOVE (RFC 6851). Each message is moved with
 * store_item_move, which keeps its item id: it is the same message in a new folder, which
 * ActiveSync and the change journals of the other protocols rely on (a copy and a delete
 * would look like a new message and a lost one). All moves are one transaction.
 *
 * Responses in the order RFC 6851 §3.3 gives: an untagged OK [COPYUID …] first, then the
 * EXPUNGE (or VANISHED) responses for the messages that left, then the tagged OK. The
 * expunges come from imap_mbox_sync, which sees the moves as removals in the journal.
 */
#include <stdlib.h>

#include "mail/imap.h"

struct imap_move {
    int64_t to;
    bool same; /* moving into the selected mailbox itself */
    uint32_t *src, *dst;
    size_t n, cap;
    struct store_err err;
    int rc;
};

static int imap_move_grow(struct imap_move *x)
{
    size_t cap = x->cap ? x->cap * 2 : 64;
    uint32_t *a = realloc(x->src, cap * sizeof(*a)), *b;

    if (a)
        x->src = a;
    b = a ? realloc(x->dst, cap * sizeof(*b)) : NULL;
    if (!b)
        return -1;
    x->dst = b;
    x->cap = cap;
    return 0;
}

/* Into the same mailbox the message gets a new UID at the end (RFC 6851 allows it): a copy
 * and a removal, since a move onto its own folder is not a change the journal can show. */
static int imap_move_item(struct imap_session *s, struct imap_move *x, int64_t id,
                          struct store_item *it)
{
    int rc;

    if (!x->same)
        return store_item_move(s->su, id, x->to, it, &x->err);
    rc = store_item_copy(s->su, id, x->to, it, &x->err);
    return rc == STORE_OK ? store_item_delete(s->su, id, &x->err) : rc;
}

static int imap_move_one(struct imap_session *s, size_t idx, void *ctx)
{
    struct imap_move *x = ctx;
    const struct imap_msg *m = &s->mbox->msgs[idx];
    struct store_item it;

    if (x->n == x->cap && imap_move_grow(x) < 0) {
        x->rc = STORE_ENOMEM;
        return 1;
    }
    x->rc = imap_move_item(s, x, m->id, &it);
    if (x->rc == STORE_ENOTFOUND) /* expunged meanwhile by someone else: skip it */
        x->rc = STORE_OK;
    else if (x->rc == STORE_OK) {
        x->src[x->n] = m->uid;
        x->dst[x->n++] = it.uid;
    }
    return x->rc != STORE_OK;
}

/* Returns -1 when a BAD was already sent, else 0 with x->rc telling the outcome. */
static int imap_move_run(struct imap_session *s, struct imap_cmd *cmd, struct imap_move *x)
{
    if ((x->rc = store_txn_begin(s->su, &x->err)) != STORE_OK)
        return 0;
    if (imap_mbox_each(s, cmd, cmd->args[0].str, cmd->uid, imap_move_one, x) < 0) {
        store_txn_rollback(s->su);
        return -1;
    }
    if (x->rc == STORE_OK)
        x->rc = store_txn_commit(s->su, NULL, &x->err);
    else
        store_txn_rollback(s->su);
    return 0;
}

static void imap_move_done(struct imap_session *s, struct imap_cmd *cmd,
                           const struct store_folder *to, const struct imap_move *x)
{
    struct store_folder f;

    if (x->n) {
        net_printf(s->c, "* OK [COPYUID %u ", to->uidvalidity);
        imap_out_uidset(s, x->src, x->n);
        net_printf(s->c, " ");
        imap_out_uidset(s, x->dst, x->n);
        net_printf(s->c, "] Moved\r\n");
    }
    imap_mbox_sync(s, IMAP_SYNC_EXPUNGE);
    if ((s->enabled & (IMAP_EN_CONDSTORE | IMAP_EN_QRESYNC)) &&
        store_folder_get(s->su, s->mbox->folder.id, &f, NULL) == STORE_OK)
        imap_ok(s, cmd, "[HIGHESTMODSEQ %llu] MOVE completed",
                (unsigned long long)IMAP_MODSEQ(f.modseq));
    else
        imap_ok(s, cmd, "MOVE completed");
}

void imap_cmd_move(struct imap_session *s, struct imap_cmd *cmd)
{
    struct imap_move x = {0};
    struct store_folder f;
    char name[1024];

    if (cmd->nargs != 2 || cmd->args[0].type != IMAP_ARG_ATOM) {
        imap_bad(s, cmd, "MOVE takes a message set and a mailbox name");
        return;
    }
    if (imap_arg_mailbox(s, cmd, &cmd->args[1], name, sizeof(name)) < 0)
        return;
    if (s->mbox->readonly) {
        imap_no(s, cmd, "The mailbox is read-only (EXAMINE)");
        return;
    }
    if (mail_folder_resolve(s->su, name, &f) != STORE_OK) {
        imap_no(s, cmd, "[TRYCREATE] Mailbox does not exist");
        return;
    }
    x.to = f.id;
    x.same = f.id == s->mbox->folder.id;
    if (imap_move_run(s, cmd, &x) < 0)
        goto out;
    if (x.rc != STORE_OK)
        imap_store_error(s, cmd, x.rc, &x.err, "Moving");
    else
        imap_move_done(s, cmd, &f, &x);
out:
    free(x.src);
    free(x.dst);
}
