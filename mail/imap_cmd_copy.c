/*
 * imap_cmd_copy.c — COPY and UID COPY (RFC 3501 §6.4.7, RFC 9051 §6.4.7) with UIDPLUS's
 * [COPYUID uidvalidity source-uids destination-uids] (RFC 4315 §3). All copies are one
 * transaction: over quota, the mailbox is left as it was and the answer is NO [OVERQUOTA].
 * A missing destination is NO [TRYCREATE].
 *
 * The COPYUID sets can be longer than a response line helper takes, so the tagged OK is
 * written here piece by piece. MOVE (imap_cmd_move.c) shares the transfer (imap_xfer_run).
 */
#include <stdlib.h>

#include "mail/imap.h"

void imap_out_uidset(struct imap_session *s, const uint32_t *uids, size_t n)
{
    const char *sep = "";

    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && uids[j + 1] == uids[j] + 1)
            j++;
        if (j == i)
            net_printf(s->c, "%s%u", sep, uids[i]);
        else
            net_printf(s->c, "%s%u:%u", sep, uids[i], uids[j]);
        sep = ",";
        i = j + 1;
    }
}

static int imap_xfer_grow(struct imap_xfer *x)
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

/* A move keeps the item id: the same message in a new folder, which ActiveSync and the
 * other protocols' journals rely on. Into the selected mailbox itself the message gets a
 * new UID at the end (RFC 6851 allows it): a copy and a removal, since a move onto its own
 * folder is not a change the journal can show. */
static int imap_xfer_item(struct imap_session *s, struct imap_xfer *x, int64_t id,
                          struct store_item *it)
{
    int rc;

    if (x->op == IMAP_XFER_COPY)
        return store_item_copy(s->su, id, x->to.id, it, &x->err);
    if (x->to.id != s->mbox->folder.id)
        return store_item_move(s->su, id, x->to.id, it, &x->err);
    rc = store_item_copy(s->su, id, x->to.id, it, &x->err);
    return rc == STORE_OK ? store_item_delete(s->su, id, &x->err) : rc;
}

static int imap_xfer_one(struct imap_session *s, size_t idx, void *ctx)
{
    struct imap_xfer *x = ctx;
    const struct imap_msg *m = &s->mbox->msgs[idx];
    struct store_item it;

    if (x->n == x->cap && imap_xfer_grow(x) < 0) {
        x->rc = STORE_ENOMEM;
        return 1;
    }
    x->rc = imap_xfer_item(s, x, m->id, &it);
    if (x->rc == STORE_ENOTFOUND) /* expunged meanwhile by someone else: skip it */
        x->rc = STORE_OK;
    else if (x->rc == STORE_OK) {
        x->src[x->n] = m->uid;
        x->dst[x->n++] = it.uid;
    }
    return x->rc != STORE_OK;
}

int imap_xfer_run(struct imap_session *s, struct imap_cmd *cmd, struct imap_xfer *x)
{
    char name[1024];

    if (cmd->nargs != 2 || cmd->args[0].type != IMAP_ARG_ATOM) {
        imap_bad(s, cmd, "%s takes a message set and a mailbox name", cmd->name);
        return -1;
    }
    if (imap_arg_mailbox(s, cmd, &cmd->args[1], name, sizeof(name)) < 0)
        return -1;
    if (x->op == IMAP_XFER_MOVE && s->mbox->readonly) {
        imap_no(s, cmd, "The mailbox is read-only (EXAMINE)");
        return -1;
    }
    if (mail_folder_resolve(s->su, name, &x->to) != STORE_OK) {
        imap_no(s, cmd, "[TRYCREATE] Mailbox does not exist");
        return -1;
    }
    /* All of it is one transaction: over quota, nothing was copied or moved. */
    if ((x->rc = store_txn_begin(s->su, &x->err)) != STORE_OK)
        return 0;
    if (imap_mbox_each(s, cmd, cmd->args[0].str, cmd->uid, imap_xfer_one, x) < 0) {
        store_txn_rollback(s->su);
        return -1;
    }
    if (x->rc == STORE_OK)
        x->rc = store_txn_commit(s->su, NULL, &x->err);
    else
        store_txn_rollback(s->su);
    return 0;
}

void imap_xfer_free(struct imap_xfer *x)
{
    free(x->src);
    free(x->dst);
}

void imap_cmd_copy(struct imap_session *s, struct imap_cmd *cmd)
{
    struct imap_xfer x = {.op = IMAP_XFER_COPY};

    if (imap_xfer_run(s, cmd, &x) < 0)
        goto out;
    if (x.rc != STORE_OK) {
        imap_store_error(s, cmd, x.rc, &x.err, "Copying");
        goto out;
    }
    if (x.n == 0) {
        imap_ok(s, cmd, "COPY completed (nothing to copy)");
        goto out;
    }
    net_printf(s->c, "%s OK [COPYUID %u ", cmd->tag, x.to.uidvalidity);
    imap_out_uidset(s, x.src, x.n);
    net_printf(s->c, " ");
    imap_out_uidset(s, x.dst, x.n);
    net_printf(s->c, "] COPY completed\r\n");
    s->bad_in_a_row = 0;
out:
    imap_xfer_free(&x);
}
