/*
 * imap_cmd_select.c — SELECT and EXAMINE (RFC 3501 §6.3.1-2, RFC 9051 §6.3.2) with the
 * CONDSTORE parameter and QRESYNC's quick resynchronisation (RFC 7162 §3.2.5): a client
 * that knows (UIDVALIDITY, MODSEQ) gets only the UIDs expunged since (VANISHED (EARLIER))
 * and the messages changed since, straight from the store's change journal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/imap.h"

struct imap_qresync {
    bool given;
    uint32_t uidvalidity;
    uint64_t modseq;          /* IMAP mod-sequence */
    struct imap_seqset known; /* known UIDs, or none (n == 0 and !given_known) */
    bool given_known;
};

static int imap_select_params(struct imap_session *s, struct imap_cmd *cmd,
                              const struct imap_arg *list, struct imap_qresync *q)
{
    char err[256];

    for (size_t i = 0; i < list->count; i++) {
        const struct imap_arg *p = &list->list[i];
        if (imap_arg_is_atom(p, "CONDSTORE")) {
            s->enabled |= IMAP_EN_CONDSTORE; /* RFC 7162 §3.1: a CONDSTORE-enabling command */
            continue;
        }
        if (!imap_arg_is_atom(p, "QRESYNC") || i + 1 >= list->count) {
            imap_bad(s, cmd, "Unknown SELECT parameter");
            return -1;
        }
        if (!(s->enabled & IMAP_EN_QRESYNC)) {
            imap_bad(s, cmd, "QRESYNC must be enabled first (ENABLE QRESYNC)");
            return -1;
        }
        const struct imap_arg *v = &list->list[++i];
        if (v->type != IMAP_ARG_LIST || v->count < 2 || v->count > 4 ||
            v->list[0].type != IMAP_ARG_ATOM || v->list[1].type != IMAP_ARG_ATOM ||
            imap_parse_nz_number(v->list[0].str, v->list[0].len, &q->uidvalidity) < 0 ||
            imap_parse_number64(v->list[1].str, v->list[1].len, &q->modseq) < 0) {
            imap_bad(s, cmd, "QRESYNC takes (uidvalidity modseq [known-uids [seq-match]])");
            return -1;
        }
        if (v->count >= 3) {
            if (v->list[2].type != IMAP_ARG_ATOM ||
                imap_seqset_parse(&cmd->arena, v->list[2].str, v->list[2].len, 0, &q->known, err,
                                  sizeof(err)) < 0) {
                imap_bad(s, cmd, "QRESYNC known-uids: %s", err);
                return -1;
            }
            imap_seqset_resolve(&q->known, UINT32_MAX);
            q->given_known = true;
        }
        q->given = true;
    }
    return 0;
}

struct imap_vanished {
    struct imap_session *s;
    const struct imap_qresync *q;
    const char *sep;
    size_t *changed;
    size_t nchanged, cap;
};

static int imap_vanished_cb(const struct store_item *it, int removed, void *ctx)
{
    struct imap_vanished *v = ctx;

    if (removed) {
        if (v->q->given_known && !imap_seqset_contains(&v->q->known, it->uid))
            return 0;
        net_printf(v->s->c, "%s%u", *v->sep ? v->sep : "* VANISHED (EARLIER) ", it->uid);
        v->sep = ",";
        return 0;
    }
    long idx = imap_mbox_find_uid(v->s->mbox, it->uid);
    if (idx < 0)
        return 0;
    if (v->nchanged == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        size_t *p = realloc(v->changed, cap * sizeof(*p));
        if (!p)
            return 1;
        v->changed = p;
        v->cap = cap;
    }
    v->changed[v->nchanged++] = (size_t)idx;
    return 0;
}

static int imap_size_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* VANISHED (EARLIER) and the changed messages' FETCH, since the client's MODSEQ. */
static void imap_select_qresync(struct imap_session *s, const struct imap_qresync *q)
{
    struct imap_mbox *mb = s->mbox;
    struct imap_vanished v = {.s = s, .q = q, .sep = ""};
    struct store_err err;

    if (!q->given || q->uidvalidity != mb->folder.uidvalidity)
        return; /* a different UIDVALIDITY: the client must resync fully */
    if (store_changes_since(s->su, mb->folder.id, STORE_MODSEQ(q->modseq), imap_vanished_cb, &v,
                            &err) == STORE_OK) {
        if (*v.sep)
            net_printf(s->c, "\r\n");
        if (v.nchanged) /* qsort on a NULL array is undefined even for zero items */
            qsort(v.changed, v.nchanged, sizeof(v.changed[0]), imap_size_cmp);
        for (size_t i = 0; i < v.nchanged; i++) {
            const struct imap_msg *m = &mb->msgs[v.changed[i]];
            net_printf(s->c, "* %zu FETCH (UID %u FLAGS ", v.changed[i] + 1, m->uid);
            imap_out_flags(s, m->flags, m->keywords);
            net_printf(s->c, " MODSEQ (%llu))\r\n", (unsigned long long)IMAP_MODSEQ(m->modseq));
        }
    }
    free(v.changed);
}

static void imap_select_report(struct imap_session *s, const struct store_folder *f)
{
    struct imap_mbox *mb = s->mbox;
    bool rev2 = s->enabled & IMAP_EN_REV2;

    imap_untagged(s, "FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)");
    imap_untagged(s, "OK [PERMANENTFLAGS (%s)] Flags permitted",
                  mb->readonly ? ""
                               : "\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded \\*");
    imap_untagged(s, "%zu EXISTS", mb->n);
    if (!rev2) {
        imap_untagged(s, "0 RECENT");
        for (size_t i = 0; i < mb->n; i++)
            if (!(mb->msgs[i].flags & STORE_FLAG_SEEN)) {
                imap_untagged(s, "OK [UNSEEN %zu] First unseen", i + 1);
                break;
            }
    }
    imap_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", f->uidvalidity);
    imap_untagged(s, "OK [UIDNEXT %u] Predicted next UID", mb->uidnext);
    imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest", (unsigned long long)IMAP_MODSEQ(f->modseq));
    if (rev2) {
        net_printf(s->c, "* LIST () \"%c\" ", MAIL_HIER_SEP);
        imap_out_mailbox(s, mb->name);
        net_printf(s->c, "\r\n");
    }
}

void imap_cmd_select(struct imap_session *s, struct imap_cmd *cmd)
{
    bool examine = cmd->name[0] == 'E';
    struct imap_qresync q = {0};
    struct store_folder f;
    struct store_err err = {0};
    char name[1024], path[1024];
    int rc;

    if (cmd->nargs < 1 || cmd->nargs > 2 ||
        (cmd->nargs == 2 && cmd->args[1].type != IMAP_ARG_LIST)) {
        imap_bad(s, cmd, "%s takes a mailbox name and optional parameters", cmd->name);
        return;
    }
    if (imap_arg_mailbox(s, cmd, &cmd->args[0], name, sizeof(name)) < 0)
        return;
    if (cmd->nargs == 2 && imap_select_params(s, cmd, &cmd->args[1], &q) < 0)
        return;
    /* Selecting closes the current mailbox whatever happens next (RFC 3501 §6.3.1). */
    if (s->mbox) {
        imap_mbox_close(s);
        if (s->enabled & (IMAP_EN_QRESYNC | IMAP_EN_REV2))
            imap_untagged(s, "OK [CLOSED] Previous mailbox closed");
    }
    /* The view gives the counts SELECT reports; the folder's own would re-read them. */
    if (mail_folder_resolve_nocount(s->su, name, &f) != STORE_OK) {
        imap_no(s, cmd, "[NONEXISTENT] Mailbox does not exist");
        return;
    }
    if (imap_folder_path(s, &f, path, sizeof(path)) < 0)
        snprintf(path, sizeof(path), "%s", name);
    if ((rc = imap_mbox_open(s, &f, path, examine, &err)) != STORE_OK) {
        imap_store_error(s, cmd, rc, &err, "Opening the mailbox");
        return;
    }
    imap_select_report(s, &f);
    imap_select_qresync(s, &q);
    imap_ok(s, cmd, "[%s] %s completed", examine ? "READ-ONLY" : "READ-WRITE", cmd->name);
}
