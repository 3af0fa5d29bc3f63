/*
 * imap_cmd_rename.c — RENAME (RFC 3501 §6.3.5, RFC 9051 §6.3.6), including moves across
 * the hierarchy: "Work.2023" → "Archive.Work.2023" creates Archive.Work if missing and
 * reparents the folder; its subfolders follow, being linked by parent. One transaction.
 *
 * Renaming INBOX is special (RFC 3501): every message in INBOX moves to a new mailbox of
 * the new name and INBOX stays, empty; folders below INBOX stay where they are. The
 * messages are moved, not copied, so they keep their identity for the other protocols.
 *
 * A folder with a role (Sent, Trash…) may be renamed: the role stays with the folder.
 */
#include <stdlib.h>

#include "mail/imap.h"

struct imap_ids {
    int64_t *v;
    size_t n, cap;
    int failed;
};

static int imap_collect_id(const struct store_item *it, void *ctx)
{
    struct imap_ids *ids = ctx;

    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 256;
        int64_t *p = realloc(ids->v, cap * sizeof(*p));
        if (!p) {
            ids->failed = 1;
            return 1;
        }
        ids->v = p;
        ids->cap = cap;
    }
    ids->v[ids->n++] = it->id;
    return 0;
}

/* Inside the transaction: a new folder `name` receiving everything INBOX holds. The ids are
 * read first; moving while the listing runs would change what it walks. */
static int imap_rename_inbox(struct imap_session *s, const struct store_folder *inbox,
                             int64_t parent, const char *leaf, struct store_err *err)
{
    struct imap_ids ids = {0};
    int64_t id;
    int rc;

    rc = store_folder_create(s->su, parent, leaf, STORE_CLASS_MAIL, STORE_ROLE_NONE, &id, err);
    if (rc == STORE_OK)
        rc = store_item_list(s->su, inbox->id, 0, UINT32_MAX, imap_collect_id, &ids, err);
    if (rc == STORE_OK && ids.failed)
        rc = STORE_ENOMEM;
    for (size_t i = 0; rc == STORE_OK && i < ids.n; i++)
        rc = store_item_move(s->su, ids.v[i], id, NULL, err);
    free(ids.v);
    return rc;
}

static int imap_rename_run(struct imap_session *s, const struct store_folder *from, const char *to,
                           struct store_err *err)
{
    const char *leaf;
    int64_t parent;
    int rc;

    if ((rc = store_txn_begin(s->su, err)) != STORE_OK)
        return rc;
    rc = imap_mailbox_prepare(s, to, &parent, &leaf, err);
    if (rc == STORE_OK && from->role == STORE_ROLE_INBOX)
        rc = imap_rename_inbox(s, from, parent, leaf, err);
    else if (rc == STORE_OK)
        rc = store_folder_rename(s->su, from->id, parent, leaf, err);
    if (rc == STORE_OK)
        return store_txn_commit(s->su, NULL, err);
    store_txn_rollback(s->su);
    return rc;
}

void imap_cmd_rename(struct imap_session *s, struct imap_cmd *cmd)
{
    struct store_folder from;
    struct store_err err = {0};
    char old[1024], to[1024];
    int rc;

    if (cmd->nargs != 2) {
        imap_bad(s, cmd, "RENAME takes the existing and the new mailbox name");
        return;
    }
    if (imap_arg_mailbox(s, cmd, &cmd->args[0], old, sizeof(old)) < 0 ||
        imap_arg_mailbox(s, cmd, &cmd->args[1], to, sizeof(to)) < 0)
        return;
    imap_mailbox_trim(old);
    imap_mailbox_trim(to);
    if (mail_folder_resolve(s->su, old, &from) != STORE_OK) {
        imap_no(s, cmd, "[NONEXISTENT] Mailbox does not exist");
        return;
    }
    if ((rc = imap_rename_run(s, &from, to, &err)) != STORE_OK) {
        imap_store_error(s, cmd, rc, &err, "Renaming the mailbox");
        return;
    }
    imap_ok(s, cmd, "RENAME completed");
}
