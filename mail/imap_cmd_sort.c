/*
 * imap_cmd_sort.c — SORT / UID SORT (RFC 5256 §3) with ARRIVAL, CC, DATE, FROM, REVERSE,
 * SIZE, SUBJECT, TO and DISPLAYFROM / DISPLAYTO (RFC 5957).
 *
 * The messages are chosen by the SEARCH evaluator (imap_cmd_search.c); each chosen message
 * then gets one record holding every sort key, read once from the view and (only when a
 * key needs it) the structure cache, and the records are sorted with the key list as the
 * comparison. Strings compare with i;ascii-casemap; the final tie-break is the sequence
 * number, whatever the keys (RFC 5256 §3).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/imap.h"

#define IMAP_SORT_NKEYS (IMAP_SORT_DISPLAYTO + 1)

struct imap_sort_spec {
    struct imap_sort c[IMAP_SORT_MAX];
    size_t n;
    bool need_cache;
};

struct imap_sort_rec {
    size_t idx;
    int64_t idate, date, size;
    char *str[IMAP_SORT_NKEYS]; /* string keys, malloc'd; NULL when not needed */
};

static char *imap_sort_dup(const struct mime_str *v)
{
    return strndup(v->p ? v->p : "", v->len);
}

/* RFC 5957: the display name, else the address ("mailbox@host"). */
static char *imap_sort_display(const struct mime_str *name, const struct mime_str *mbox,
                               const struct mime_str *host)
{
    char *out;
    size_t n;

    if (name->len)
        return imap_sort_dup(name);
    n = mbox->len + (host && host->len ? host->len + 1 : 0);
    if (!(out = malloc(n + 1)))
        return NULL;
    memcpy(out, mbox->p ? mbox->p : "", mbox->len);
    if (host && host->len) {
        out[mbox->len] = '@';
        memcpy(out + mbox->len + 1, host->p, host->len);
    }
    out[n] = '\0';
    return out;
}

static char *imap_sort_string(const struct mime_cache *c, enum imap_sort_key k)
{
    switch (k) {
    case IMAP_SORT_CC:
        return imap_sort_dup(&c->cc_mailbox);
    case IMAP_SORT_FROM:
        return imap_sort_dup(&c->from_mailbox);
    case IMAP_SORT_TO:
        return imap_sort_dup(&c->to_mailbox);
    case IMAP_SORT_SUBJECT:
        return imap_sort_dup(&c->base_subject);
    case IMAP_SORT_DISPLAYFROM:
        return imap_sort_display(&c->from_name, &c->from_mailbox, &c->from_host);
    case IMAP_SORT_DISPLAYTO:
        return imap_sort_display(&c->to_name, &c->to_mailbox, NULL);
    default:
        return NULL;
    }
}

/* Fills one record; returns a store error (STORE_ENOTFOUND: the message is gone). */
static int imap_sort_fill(struct imap_session *s, const struct imap_sort_spec *spec,
                          struct imap_pre *pre, size_t idx, struct imap_sort_rec *rec)
{
    const struct imap_msg *m = &s->mbox->msgs[idx];
    struct mime_cache c;
    void *blob = NULL;
    int rc;

    memset(rec, 0, sizeof(*rec));
    rec->idx = idx;
    rec->idate = m->idate;
    rec->date = m->idate;
    rec->size = m->size;
    if (!spec->need_cache)
        return STORE_OK;
    if ((rc = imap_msg_cache_at(s, pre, idx, &blob, &c)) != STORE_OK)
        return rc;
    /* RFC 5256: without a usable Date:, the internal date stands in. */
    if (c.flags & MIME_CACHE_DATE_VALID)
        rec->date = c.date;
    for (size_t i = 0; i < spec->n && rc == STORE_OK; i++) {
        enum imap_sort_key k = spec->c[i].key;
        if (k == IMAP_SORT_ARRIVAL || k == IMAP_SORT_DATE || k == IMAP_SORT_SIZE || rec->str[k])
            continue;
        if (!(rec->str[k] = imap_sort_string(&c, k)))
            rc = STORE_ENOMEM;
    }
    free(blob);
    return rc;
}

static int imap_cmp64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

static int imap_sort_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct imap_sort_spec *spec = ctx;
    const struct imap_sort_rec *a = pa, *b = pb;

    for (size_t i = 0; i < spec->n; i++) {
        enum imap_sort_key k = spec->c[i].key;
        int r;
        if (k == IMAP_SORT_ARRIVAL)
            r = imap_cmp64(a->idate, b->idate);
        else if (k == IMAP_SORT_DATE)
            r = imap_cmp64(a->date, b->date);
        else if (k == IMAP_SORT_SIZE)
            r = imap_cmp64(a->size, b->size);
        else
            r = strcasecmp(a->str[k], b->str[k]); /* i;ascii-casemap */
        if (r)
            return spec->c[i].reverse ? -r : r;
    }
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static void imap_sort_free(struct imap_sort_rec *recs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < IMAP_SORT_NKEYS; k++)
            free(recs[i].str[k]);
    free(recs);
}

/* Builds the records of the matching messages (gone ones dropped) and sorts them. */
static int imap_sort_records(struct imap_session *s, const struct imap_sort_spec *spec,
                             const size_t *idx, size_t n, struct imap_sort_rec **out, size_t *nout)
{
    struct imap_sort_rec *recs = calloc(n ? n : 1, sizeof(*recs));
    struct imap_pre *pre = NULL;
    size_t o = 0;
    int rc = STORE_OK;

    if (!recs)
        return STORE_ENOMEM;
    if (spec->need_cache)
        pre = imap_pre_new();
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        rc = imap_sort_fill(s, spec, pre, idx[i], &recs[o]);
        if (rc == STORE_OK)
            o++;
        else if (rc == STORE_ENOTFOUND)
            rc = STORE_OK;
    }
    imap_pre_free(pre);
    if (rc != STORE_OK) {
        imap_sort_free(recs, o + 1);
        return rc;
    }
    qsort_r(recs, o, sizeof(*recs), imap_sort_cmp, (void *)spec);
    *out = recs;
    *nout = o;
    return STORE_OK;
}

void imap_cmd_sort(struct imap_session *s, struct imap_cmd *cmd)
{
    struct imap_sort_spec spec = {0};
    struct imap_search q;
    char err[256];
    struct imap_sort_rec *recs = NULL;
    size_t *idx = NULL, n = 0, nrec = 0;
    int rc;

    if (cmd->nargs < 3) {
        imap_bad(s, cmd, "SORT takes (sort keys) charset search-criteria");
        return;
    }
    if (imap_sort_parse(&cmd->args[0], spec.c, &spec.n, err, sizeof(err)) < 0) {
        imap_bad(s, cmd, "%s", err);
        return;
    }
    for (size_t i = 0; i < spec.n; i++)
        spec.need_cache |= spec.c[i].key != IMAP_SORT_ARRIVAL && spec.c[i].key != IMAP_SORT_SIZE;
    if (cmd->args[1].type != IMAP_ARG_ATOM && cmd->args[1].type != IMAP_ARG_QUOTED) {
        imap_bad(s, cmd, "SORT needs a charset");
        return;
    }
    if (imap_search_criteria(s, cmd, cmd->args[1].str, &cmd->args[2], cmd->nargs - 2, &q) < 0)
        return;
    rc = imap_search_run(s, &q, &idx, &n, NULL);
    if (rc == STORE_OK)
        rc = imap_sort_records(s, &spec, idx, n, &recs, &nrec);
    free(idx);
    if (rc != STORE_OK) {
        imap_store_error(s, cmd, rc, NULL, "SORT");
        return;
    }
    net_printf(s->c, "* SORT");
    for (size_t i = 0; i < nrec; i++)
        net_printf(s->c, " %u",
                   cmd->uid ? s->mbox->msgs[recs[i].idx].uid : (uint32_t)(recs[i].idx + 1));
    net_printf(s->c, "\r\n");
    imap_sort_free(recs, nrec);
    imap_ok(s, cmd, "SORT completed");
}
