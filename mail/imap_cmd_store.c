/*
 * imap_cmd_store.c — STORE / UID STORE (RFC 3501 §6.4.6, RFC 9051 §6.4.6): FLAGS, +FLAGS,
 * -FLAGS and their .SILENT forms, keywords, and CONDSTORE's UNCHANGEDSINCE (RFC 7162
 * §3.1.3).
 *
 * All changes go into one store transaction, so they take one MODSEQ and other sessions
 * see them at once. A message failing UNCHANGEDSINCE is not an error of the transaction
 * (the store rolls back only that item's savepoint) but goes into [MODIFIED set]. Nothing
 * is written to the client while the transaction holds the user's lock: results are
 * collected, committed, and only then reported. The view is updated with what the store
 * returned, so the sync after the command does not report our own changes a second time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/imap.h"

struct imap_store_res {
    size_t idx;
    uint32_t flags;
    int64_t modseq;
    bool changed;
    char *keywords;
};

struct imap_store_run {
    enum store_flag_op op;
    uint32_t flags;
    const char *keywords; /* NULL: leave them */
    bool silent;
    bool conditional;
    uint64_t unchanged; /* UNCHANGEDSINCE, an IMAP MODSEQ */
    struct imap_store_res *res;
    size_t n, cap;
    uint32_t *modified; /* sequence numbers or UIDs that failed UNCHANGEDSINCE */
    size_t nmod, capmod;
    bool gone;
    int rc;
    struct store_err err;
    bool uid;
};

static int imap_store_grow(void **p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    void *q = realloc(*p, ncap * size);
    if (!q)
        return -1;
    *p = q;
    *cap = ncap;
    return 0;
}

/* RFC 7162: a MODSEQ above UNCHANGEDSINCE fails; the store checks store_modseq > if_modseq,
 * which is the same test for values above 1. UNCHANGEDSINCE 0 and 1 are decided here. */
static bool imap_store_precheck_fails(const struct imap_store_run *r, const struct imap_msg *m)
{
    return r->conditional && r->unchanged <= 1 && IMAP_MODSEQ(m->modseq) > r->unchanged;
}

static int imap_store_modified(struct imap_store_run *r, const struct imap_msg *m, size_t idx)
{
    if (imap_store_grow((void **)&r->modified, &r->capmod, r->nmod, sizeof(*r->modified)) < 0)
        return -1;
    r->modified[r->nmod++] = r->uid ? m->uid : (uint32_t)(idx + 1);
    return 0;
}

static int imap_store_one(struct imap_session *s, size_t idx, void *ctx)
{
    struct imap_store_run *r = ctx;
    struct imap_msg *m = &s->mbox->msgs[idx];
    int64_t if_modseq = r->conditional && r->unchanged > 1 ? STORE_MODSEQ(r->unchanged) : 0;
    struct store_item it;
    int rc;

    if (imap_store_precheck_fails(r, m)) {
        rc = STORE_ECONFLICT;
    } else {
        rc = store_item_set_flags(s->su, m->id, r->op, r->flags, r->keywords, if_modseq, &it,
                                  &r->err);
    }
    if (rc == STORE_ECONFLICT) {
        r->rc = imap_store_modified(r, m, idx) < 0 ? STORE_ENOMEM : 0;
        return r->rc != 0;
    }
    if (rc == STORE_ENOTFOUND) {
        r->gone = true;
        return 0;
    }
    if (rc == STORE_OK && imap_store_grow((void **)&r->res, &r->cap, r->n, sizeof(*r->res)) < 0)
        rc = STORE_ENOMEM;
    if (rc != STORE_OK) {
        r->rc = rc;
        return 1;
    }
    struct imap_store_res *res = &r->res[r->n++];
    res->idx = idx;
    res->flags = it.flags;
    res->modseq = it.modseq;
    res->changed = it.modseq != m->modseq;
    res->keywords = it.keywords[0] ? strdup(it.keywords) : NULL;
    return 0;
}

/* Brings the view's entries up to date and sends the untagged FETCHes. */
static void imap_store_report(struct imap_session *s, struct imap_store_run *r)
{
    bool condstore = s->enabled & IMAP_EN_CONDSTORE;

    for (size_t i = 0; i < r->n; i++) {
        struct imap_store_res *res = &r->res[i];
        struct imap_msg *m = &s->mbox->msgs[res->idx];
        m->flags = res->flags;
        m->modseq = res->modseq;
        free(m->keywords);
        m->keywords = res->keywords;
        res->keywords = NULL;
        /* RFC 7162 §3.1.3: with CONDSTORE, .SILENT still reports the new MODSEQ of what
         * changed, so the client's cache stays right. */
        if (r->silent && !(condstore && res->changed))
            continue;
        net_printf(s->c, "* %zu FETCH (", res->idx + 1);
        if (r->uid)
            net_printf(s->c, "UID %u ", m->uid);
        if (!r->silent) {
            net_write(s->c, "FLAGS ", 6);
            imap_out_flags(s, m->flags, m->keywords);
        }
        if (condstore)
            net_printf(s->c, "%sMODSEQ (%llu)", r->silent ? "" : " ",
                       (unsigned long long)IMAP_MODSEQ(m->modseq));
        net_write(s->c, ")\r\n", 3);
    }
}

/* The MODIFIED set for the tagged response ("" when none). */
static void imap_store_finish(struct imap_session *s, struct imap_cmd *cmd,
                              struct imap_store_run *r)
{
    char *mod = NULL;

    if (r->nmod) {
        /* imap_mbox_each visits in ascending order: already sorted and distinct. */
        if (!(mod = imap_numbers_format(r->modified, r->nmod))) {
            imap_no(s, cmd, "[SERVERBUG] Out of memory");
            return;
        }
        imap_ok(s, cmd, "[MODIFIED %s] Conditional STORE failed for some messages", mod);
    } else if (r->gone) {
        imap_no(s, cmd, "[EXPUNGEISSUED] Some of the messages no longer exist");
    } else {
        imap_ok(s, cmd, "STORE completed");
    }
    free(mod);
}

/* "(UNCHANGEDSINCE n)" — RFC 7162 §3.1.3. */
static int imap_store_modifiers(struct imap_session *s, struct imap_cmd *cmd,
                                const struct imap_arg *mods, struct imap_store_run *r)
{
    if (mods->count != 2 || !imap_arg_is_atom(&mods->list[0], "UNCHANGEDSINCE") ||
        mods->list[1].type != IMAP_ARG_ATOM ||
        imap_parse_number64(mods->list[1].str, mods->list[1].len, &r->unchanged) < 0) {
        imap_bad(s, cmd, "Invalid STORE modifiers");
        return -1;
    }
    r->conditional = true;
    s->enabled |= IMAP_EN_CONDSTORE; /* a CONDSTORE-enabling command (RFC 7162 §3.1) */
    return 0;
}

/* Parses "[mods] item flags..." into r; kw receives the keywords. */
static int imap_store_args(struct imap_session *s, struct imap_cmd *cmd, struct imap_store_run *r,
                           char *kw, size_t kwsize)
{
    size_t i = 1;
    enum imap_store_op op;
    struct imap_flags fl;
    char err[256];

    if (cmd->nargs < 3 || cmd->args[0].type != IMAP_ARG_ATOM) {
        imap_bad(s, cmd, "STORE takes a message set, an item and flags");
        return -1;
    }
    if (cmd->args[1].type == IMAP_ARG_LIST) {
        if (imap_store_modifiers(s, cmd, &cmd->args[1], r) < 0)
            return -1;
        i++;
    }
    if (i + 1 >= cmd->nargs) {
        imap_bad(s, cmd, "Flags expected");
        return -1;
    }
    if (imap_store_item_parse(&cmd->args[i], &op, &r->silent, err, sizeof(err)) < 0) {
        imap_bad(s, cmd, "%s", err);
        return -1;
    }
    /* RFC 3501: a flag list, or (leniently, as clients send it) bare flags. */
    struct imap_arg bare = {
        .type = IMAP_ARG_LIST, .list = &cmd->args[i + 1], .count = cmd->nargs - i - 1};
    const struct imap_arg *flags = bare.count == 1 ? &cmd->args[i + 1] : &bare;
    if (imap_flags_parse(&cmd->arena, flags, IMAP_FLAGS_STORE, &fl, err, sizeof(err)) < 0) {
        imap_bad(s, cmd, "%s", err);
        return -1;
    }
    r->op = op == IMAP_STORE_SET   ? STORE_FLAGS_SET
            : op == IMAP_STORE_ADD ? STORE_FLAGS_ADD
                                   : STORE_FLAGS_REMOVE;
    r->flags = imap_flags_to_store(fl.sys);
    if (imap_keywords_join(&fl, &r->flags, kw, kwsize) < 0) {
        imap_no(s, cmd, "[LIMIT] Too many keywords");
        return -1;
    }
    /* FLAGS replaces the keywords too (with none when none are given). */
    r->keywords = r->op == STORE_FLAGS_SET || *kw ? kw : NULL;
    return 0;
}

static void imap_store_free(struct imap_store_run *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->res[i].keywords);
    free(r->res);
    free(r->modified);
}

void imap_cmd_store(struct imap_session *s, struct imap_cmd *cmd)
{
    struct imap_store_run r = {.uid = cmd->uid};
    char kw[sizeof(((struct store_item *)0)->keywords)];
    int64_t modseq;

    if (imap_store_args(s, cmd, &r, kw, sizeof(kw)) < 0)
        return;
    if (s->mbox->readonly) {
        imap_no(s, cmd, "The mailbox is open read-only (EXAMINE)");
        return;
    }
    /* The results are written into the view: make it this session's own first. */
    if (imap_mbox_own(s->mbox) < 0) {
        imap_no(s, cmd, "[SERVERBUG] Out of memory");
        return;
    }
    if ((r.rc = store_txn_begin(s->su, &r.err)) != STORE_OK)
        goto err;
    if (imap_mbox_each(s, cmd, cmd->args[0].str, cmd->uid, imap_store_one, &r) < 0) {
        store_txn_rollback(s->su);
        goto out;
    }
    if (r.rc != STORE_OK) {
        store_txn_rollback(s->su);
        goto err;
    }
    if ((r.rc = store_txn_commit(s->su, &modseq, &r.err)) != STORE_OK)
        goto err;
    imap_store_report(s, &r);
    imap_store_finish(s, cmd, &r);
    goto out;
err:
    imap_store_error(s, cmd, r.rc, &r.err, "STORE");
out:
    imap_store_free(&r);
}
