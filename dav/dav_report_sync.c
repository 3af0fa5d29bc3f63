/*
 * dav_report_sync.c — sync-collection (RFC 6578) on any calendar or address book, as a
 * view of the store's MODSEQ journal: the token is the folder MODSEQ the client last saw
 * (DAV_SYNC_PREFIX + number). Changed members are answered with their properties,
 * removed ones with a 404 response; the first sync (empty token) lists live members only.
 * A token that is malformed, from the future, or older than the journal keeps
 * (store_user_modseq_floor) is refused with 403 valid-sync-token, which makes clients
 * start over. <D:limit> is honoured: the answer stops between two MODSEQs, carries the
 * token of the last one sent and a 507 response for the collection.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dav/dav_int.h"

struct dav_change {
    struct store_item it;
    int removed;
};

struct dav_changes {
    struct dav_change *v;
    size_t n, cap;
    int initial;
};

static int dav_sync_cb(const struct store_item *it, int removed, void *ctx)
{
    struct dav_changes *c = ctx;

    if (removed && c->initial)
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct dav_change *v;
        if (cap > 200000)
            return -1;
        v = realloc(c->v, cap * sizeof(*v));
        if (!v)
            return -1;
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n].it = *it;
    c->v[c->n].removed = removed;
    c->n++;
    return 0;
}

/* The token's MODSEQ: 0 for the initial sync, -1 when it is not one of ours. */
static int64_t dav_sync_token(struct dav_req *q, xmlNodePtr root)
{
    xmlNodePtr tn = dav_xml_child(root, NS_DAV, "sync-token");
    char *t = tn ? dav_xml_text(tn) : strdup("");
    const char *p;
    char *end;
    int64_t v = -1;
    size_t pl = strlen(DAV_SYNC_PREFIX);

    if (!t)
        return -1;
    if (!*t) {
        v = 0;
    } else if (strncmp(t, DAV_SYNC_PREFIX, pl) == 0 && t[pl] >= '0' && t[pl] <= '9' &&
               strlen(t + pl) < 19) {
        p = t + pl;
        v = strtoll(p, &end, 10);
        if (*end || v > store_user_modseq(q->u) || (v > 0 && v < store_user_modseq_floor(q->u)))
            v = -1;
    }
    free(t);
    return v;
}

/* How many changes to send under the limit: never splits one MODSEQ. -1 when even the
 * first MODSEQ has more members than the limit allows. */
static long dav_sync_cut(const struct dav_changes *c, long limit)
{
    long k;

    if (!limit || (size_t)limit >= c->n)
        return (long)c->n;
    for (k = limit; k > 0; k--)
        if (c->v[k - 1].it.modseq < c->v[k].it.modseq)
            return k;
    return -1;
}

static void dav_sync_answer(struct dav_req *q, const struct dav_pset *ps,
                            const struct dav_changes *c, long k, int64_t token)
{
    struct buf b = {0};
    char href[DAV_HREF_MAX];
    long i;

    dav_ms_open(&b);
    for (i = 0; i < k; i++) {
        struct dav_parsed p = {0};
        if (c->v[i].removed) {
            dav_item_href(q, q->res.space, &q->res.folder, &c->v[i].it, href, sizeof(href));
            dav_ms_status_response(&b, href, 404);
        } else {
            dav_item_response(q, q->res.space, &q->res.folder, &c->v[i].it, ps, &p, &b);
        }
        dav_parsed_free(&p);
    }
    if ((size_t)k < c->n) {
        dav_ms_response_open(&b, q->res.href);
        buf_printf(&b,
                   "<D:status>%s</D:status><D:error><D:number-of-matches-within-limits/>"
                   "</D:error>",
                   dav_status_line(507));
        dav_ms_response_close(&b);
    }
    buf_printf(&b, "<D:sync-token>" DAV_SYNC_PREFIX "%" PRId64 "</D:sync-token>", token);
    dav_ms_close(&b);
    dav_send_ms(q, &b);
}

void dav_report_sync(struct dav_req *q, xmlNodePtr root)
{
    struct dav_pset ps = {0};
    struct dav_changes c = {0};
    struct store_err e;
    int64_t since, token;
    long limit, k;

    if (q->res.kind != DAV_K_COLL) {
        dav_send_error(q, 403, NS_DAV, "supported-report", NULL);
        return;
    }
    limit = dav_xml_limit(root, NS_DAV);
    if (limit < 0 || dav_report_pset(root, &ps) != 0) {
        dav_send_pset_error(q, &ps);
        goto out;
    }
    since = dav_sync_token(q, root);
    if (since < 0) {
        dav_send_error(q, 403, NS_DAV, "valid-sync-token", NULL);
        goto out;
    }
    c.initial = since == 0;
    if (store_changes_since(q->u, q->res.folder.id, since, dav_sync_cb, &c, &e) != 0) {
        dav_send_status(q, 500);
        goto out;
    }
    k = dav_sync_cut(&c, limit);
    if (k < 0) {
        dav_send_error(q, 507, NS_DAV, "number-of-matches-within-limits", NULL);
        goto out;
    }
    token = q->res.folder.modseq > since ? q->res.folder.modseq : since;
    if (c.n && c.v[c.n - 1].it.modseq > token)
        token = c.v[c.n - 1].it.modseq;
    if ((size_t)k < c.n)
        token = c.v[k - 1].it.modseq;
    dav_sync_answer(q, &ps, &c, k, token);
out:
    free(c.v);
    dav_pset_free(&ps);
}
