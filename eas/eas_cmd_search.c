/*
 * eas_cmd_search.c — Search (MS-ASCMD 2.2.1.16) of the Mailbox store (FreeText over
 * subject, addresses and body text, in one folder or all mail folders, with a date
 * bound, newest first, Range, LongId in results) and of the GAL (the users of the user's
 * own domain by address prefix), and Find (16.1, 2.2.1.8) on the same mailbox search.
 *
 * The mailbox search reads each candidate's structure cache (subject, From/To/Cc, kept
 * when the message was stored) and only decodes a body when the headers did not match;
 * it looks at no more than EAS_SEARCH_SCAN_MAX messages, newest first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "eas/eas_sync.h"
#include "mail/mime.h"

#define SEARCH_OK            1
#define SEARCH_INVALID       2
#define SEARCH_SERVER        3
#define SEARCH_NOTFOUND      6
#define SEARCH_COMPLEX       8
#define EAS_SEARCH_SCAN_MAX  20000
#define EAS_SEARCH_HITS_MAX  1000
#define EAS_SEARCH_RANGE_MAX 100

struct eas_hit {
    int64_t id, folder_id, idate;
};

struct eas_search {
    struct eas_req *req;
    const char *text;      /* FreeText, "" for any */
    int64_t after, before; /* idate bounds, 0 none */
    int64_t folder;        /* 0: every mail folder */
    int deep;
    struct eas_hit *cand;
    size_t ncand, capcand;
    struct eas_hit hits[EAS_SEARCH_HITS_MAX];
    size_t nhits;
};

static int eas_search_cand(const struct store_item_brief *b, void *ctx)
{
    struct eas_search *s = ctx;

    if ((s->after && b->idate <= s->after) || (s->before && b->idate >= s->before))
        return 0;
    if (s->ncand == s->capcand) {
        size_t cap = s->capcand ? s->capcand * 2 : 512;
        struct eas_hit *n = realloc(s->cand, cap * sizeof(*n));
        if (!n)
            return 1;
        s->cand = n;
        s->capcand = cap;
    }
    s->cand[s->ncand++] = (struct eas_hit){.id = b->id, .idate = b->idate};
    return 0;
}

struct eas_folder_walk {
    struct eas_search *s;
    int64_t *ids;
    size_t n, cap;
};

static int eas_search_folder_cb(const struct store_folder *f, void *ctx)
{
    struct eas_folder_walk *w = ctx;
    int take = w->s->folder == 0 || f->id == w->s->folder;

    /* DeepTraversal: the subfolders of a taken folder too (parents come first) */
    for (size_t i = 0; !take && w->s->deep && i < w->n; i++)
        if (w->ids[i] == f->parent_id)
            take = 1;
    if (!take || f->role == STORE_ROLE_JUNK || f->role == STORE_ROLE_TRASH) {
        if (!(take && w->s->folder))
            return 0;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 32;
        int64_t *n = realloc(w->ids, cap * sizeof(*n));
        if (!n)
            return 1;
        w->ids = n;
        w->cap = cap;
    }
    w->ids[w->n++] = f->id;
    return 0;
}

static int eas_hit_cmp(const void *a, const void *b)
{
    const struct eas_hit *x = a, *y = b;

    if (x->idate != y->idate)
        return x->idate > y->idate ? -1 : 1;
    return x->id > y->id ? -1 : x->id < y->id;
}

/* Does the message match the free text? Headers from the cache first, then the body. */
static int eas_search_match(struct eas_search *s, const struct eas_hit *h)
{
    void *meta = NULL;
    size_t mlen = 0;
    struct mime_cache c;
    char *body = NULL, *text = NULL;
    size_t blen = 0, tlen = 0;
    int hit = 0;

    if (!*s->text)
        return 1;
    if (store_item_meta(s->req->u, h->id, &meta, &mlen, NULL) == STORE_OK && meta &&
        mime_cache_open(meta, mlen, &c) == 0)
        hit = strcasestr(c.subject.p, s->text) || strcasestr(c.from.p, s->text) ||
              strcasestr(c.to.p, s->text) || strcasestr(c.cc.p, s->text);
    free(meta);
    if (hit)
        return 1;
    if (store_item_body(s->req->u, h->id, &body, &blen, NULL) != STORE_OK)
        return 0;
    if (eas_email_text(body, blen, EAS_BODY_PLAIN, &text, &tlen, NULL) == 0) {
        hit = strcasestr(text, s->text) != NULL;
        free(text);
    }
    free(body);
    return hit;
}

/* Fills s->hits, newest first. */
static int eas_search_run(struct eas_search *s)
{
    struct eas_folder_walk w = {.s = s};
    size_t scanned = 0;

    if (store_folder_list(s->req->u, STORE_CLASS_MAIL, eas_search_folder_cb, &w, NULL) !=
        STORE_OK) {
        free(w.ids);
        return SEARCH_SERVER;
    }
    if (s->folder && w.n == 0)
        return SEARCH_NOTFOUND;
    for (size_t i = 0; i < w.n; i++) {
        size_t from = s->ncand;
        if (store_item_list_brief(s->req->u, w.ids[i], eas_search_cand, s, NULL) != STORE_OK)
            break;
        for (size_t k = from; k < s->ncand; k++)
            s->cand[k].folder_id = w.ids[i];
    }
    free(w.ids);
    if (s->ncand > 1)
        qsort(s->cand, s->ncand, sizeof(*s->cand), eas_hit_cmp);
    for (size_t i = 0;
         i < s->ncand && scanned < EAS_SEARCH_SCAN_MAX && s->nhits < EAS_SEARCH_HITS_MAX;
         i++, scanned++)
        if (eas_search_match(s, &s->cand[i]))
            s->hits[s->nhits++] = s->cand[i];
    return SEARCH_OK;
}

/* "a-b" → [lo, hi]; default 0-99; refuses malformed ranges. */
static int eas_parse_range(const char *r, size_t *lo, size_t *hi)
{
    unsigned long a = 0, b = 99;
    int n = 0;

    if (r && (sscanf(r, "%lu-%lu%n", &a, &b, &n) != 2 || r[n] || b < a))
        return -1;
    if (b - a >= EAS_SEARCH_RANGE_MAX)
        b = a + EAS_SEARCH_RANGE_MAX - 1;
    *lo = a;
    *hi = b;
    return 0;
}

/* Reads And/FreeText/CollectionId/GreaterThan/LessThan of a mailbox query. */
static int eas_search_query(struct eas_search *s, const struct eas_node *q, int depth)
{
    if (depth > 4)
        return -1;
    for (const struct eas_node *n = q->first; n; n = n->next) {
        if (n->tag == EAS_SEARCH_AND) {
            if (eas_search_query(s, n, depth + 1) < 0)
                return -1;
        } else if (n->tag == EAS_SEARCH_FREETEXT || n->tag == EAS_FIND_FREETEXT) {
            s->text = eas_text(n);
        } else if (n->tag == EAS_AIRSYNC_COLLECTIONID) {
            s->folder = strtoll(eas_text(n), NULL, 10);
            if (s->folder <= 0)
                return -1;
        } else if (n->tag == EAS_SEARCH_GREATERTHAN || n->tag == EAS_SEARCH_LESSTHAN) {
            const char *v = eas_child_text(n, EAS_SEARCH_VALUE);
            struct tm tm = {0};
            int64_t t;
            if (!v || !strptime(v, "%Y-%m-%dT%H:%M:%S", &tm))
                return -1;
            t = timegm(&tm);
            if (n->tag == EAS_SEARCH_GREATERTHAN)
                s->after = t;
            else
                s->before = t;
        } else if (n->tag == EAS_SEARCH_OR) {
            return -2; /* too complex */
        }
    }
    return 0;
}

static void eas_search_props(struct eas_req *req, struct eas_node *props, const struct eas_hit *h,
                             const struct eas_coll_opts *o)
{
    struct store_item it;
    char *body = NULL;
    size_t len = 0;

    if (store_item_get(req->u, h->id, &it, NULL) == STORE_OK &&
        store_item_body(req->u, h->id, &body, &len, NULL) == STORE_OK)
        eas_email_appdata(req->out, props, req->version, &it, body, len, o);
    free(body);
}

static int eas_search_mailbox(struct eas_req *req, const struct eas_node *store,
                              struct eas_node *out)
{
    const struct eas_node *q = eas_child(store, EAS_SEARCH_QUERY);
    const struct eas_node *opts = eas_child(store, EAS_SEARCH_OPTIONS);
    struct eas_search *s = calloc(1, sizeof(*s));
    struct eas_coll_opts o;
    size_t lo, hi;
    int status, rc;
    char range[48];

    if (!s)
        return SEARCH_SERVER;
    s->req = req;
    s->text = "";
    s->deep = opts && eas_child(opts, EAS_SEARCH_DEEPTRAVERSAL);
    eas_coll_opts_default(&o);
    if (opts)
        eas_body_prefs_parse(opts, &o);
    if (!q || (rc = eas_search_query(s, q, 0)) < 0 ||
        eas_parse_range(opts ? eas_child_text(opts, EAS_SEARCH_RANGE) : NULL, &lo, &hi) < 0) {
        status = q && rc == -2 ? SEARCH_COMPLEX : SEARCH_INVALID;
        goto done;
    }
    if ((status = eas_search_run(s)) != SEARCH_OK)
        goto done;
    eas_add_int(req->out, out, EAS_SEARCH_STATUS, SEARCH_OK);
    for (size_t i = lo; i <= hi && i < s->nhits; i++) {
        struct eas_node *r = eas_add(req->out, out, EAS_SEARCH_RESULT);
        char lid[48], cid[24];
        eas_add_text(req->out, r, EAS_AIRSYNC_CLASS, "Email");
        eas_server_id(lid, sizeof(lid), s->hits[i].folder_id, s->hits[i].id);
        eas_add_text(req->out, r, EAS_SEARCH_LONGID, lid);
        snprintf(cid, sizeof(cid), "%lld", (long long)s->hits[i].folder_id);
        eas_add_text(req->out, r, EAS_AIRSYNC_COLLECTIONID, cid);
        eas_search_props(req, eas_add(req->out, r, EAS_SEARCH_PROPERTIES), &s->hits[i], &o);
    }
    if (s->nhits > lo) {
        snprintf(range, sizeof(range), "%zu-%zu", lo, (hi < s->nhits - 1 ? hi : s->nhits - 1));
        eas_add_text(req->out, out, EAS_SEARCH_RANGE, range);
    }
    eas_add_int(req->out, out, EAS_SEARCH_TOTAL, (long long)s->nhits);
    status = 0;
done:
    free(s->cand);
    free(s);
    return status;
}

/* ---- GAL ----------------------------------------------------------------------------------- */

struct eas_gal {
    const char *q;
    size_t qlen;
    struct store_account *hits;
    size_t n, cap;
};

static int eas_gal_cb(const struct store_account *a, void *ctx)
{
    struct eas_gal *g = ctx;

    if (!a->active || strncasecmp(a->address, g->q, g->qlen) != 0)
        return 0;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        struct store_account *n;
        if (cap > 1000 || !(n = realloc(g->hits, cap * sizeof(*n))))
            return 1;
        g->hits = n;
        g->cap = cap;
    }
    g->hits[g->n++] = *a;
    return 0;
}

static int eas_search_gal(struct eas_req *req, const struct eas_node *store, struct eas_node *out)
{
    const struct eas_node *opts = eas_child(store, EAS_SEARCH_OPTIONS);
    const char *q = eas_child_text(store, EAS_SEARCH_QUERY);
    struct eas_gal g = {0};
    size_t lo, hi, shown = 0;
    char range[48];

    if (!q || !*q || strlen(q) > 256 ||
        eas_parse_range(opts ? eas_child_text(opts, EAS_SEARCH_RANGE) : NULL, &lo, &hi) < 0)
        return SEARCH_INVALID;
    g.q = q;
    g.qlen = strlen(q);
    /* the user's own domain only: tenants never see each other */
    if (store_account_list(req->e->st, req->acct->domain, eas_gal_cb, &g, NULL) != STORE_OK) {
        free(g.hits);
        return SEARCH_SERVER;
    }
    eas_add_int(req->out, out, EAS_SEARCH_STATUS, SEARCH_OK);
    for (size_t i = lo; i <= hi && i < g.n; i++, shown++) {
        struct eas_node *r = eas_add(req->out, out, EAS_SEARCH_RESULT);
        struct eas_node *p = eas_add(req->out, r, EAS_SEARCH_PROPERTIES);
        eas_add_text(req->out, p, EAS_GAL_DISPLAYNAME, g.hits[i].localpart);
        eas_add_text(req->out, p, EAS_GAL_ALIAS, g.hits[i].localpart);
        eas_add_text(req->out, p, EAS_GAL_EMAILADDRESS, g.hits[i].address);
    }
    if (shown) {
        snprintf(range, sizeof(range), "%zu-%zu", lo, lo + shown - 1);
        eas_add_text(req->out, out, EAS_SEARCH_RANGE, range);
    }
    eas_add_int(req->out, out, EAS_SEARCH_TOTAL, (long long)g.n);
    free(g.hits);
    return 0;
}

int eas_cmd_search(struct eas_req *req)
{
    const struct eas_node *root = req->in ? eas_doc_root(req->in) : NULL, *store;
    struct eas_node *out, *resp, *st;
    const char *name;
    int status;

    if (!(req->out = eas_doc_new()) || !(out = eas_add(req->out, NULL, EAS_SEARCH_SEARCH))) {
        req->http_status = 500;
        return 0;
    }
    store = root && root->tag == EAS_SEARCH_SEARCH ? eas_child(root, EAS_SEARCH_STORE) : NULL;
    name = store ? eas_child_text(store, EAS_SEARCH_NAME) : NULL;
    if (!name) {
        eas_add_int(req->out, out, EAS_SEARCH_STATUS, SEARCH_INVALID);
        return 0;
    }
    eas_add_int(req->out, out, EAS_SEARCH_STATUS, SEARCH_OK);
    resp = eas_add(req->out, out, EAS_SEARCH_RESPONSE);
    st = eas_add(req->out, resp, EAS_SEARCH_STORE);
    if (!strcasecmp(name, "Mailbox"))
        status = eas_search_mailbox(req, store, st);
    else if (!strcasecmp(name, "GAL"))
        status = eas_search_gal(req, store, st);
    else
        status = SEARCH_INVALID; /* DocumentLibrary is not served */
    if (status)
        eas_add_int(req->out, st, EAS_SEARCH_STATUS, status);
    return 0;
}

/* ---- Find (16.1) ------------------------------------------------------------------------------
 */

static void eas_find_result(struct eas_req *req, struct eas_node *resp, const struct eas_hit *h)
{
    struct store_item it;
    void *meta = NULL;
    size_t mlen = 0;
    struct mime_cache c;
    struct eas_node *r, *p;
    char sid[48], cid[24], date[40];
    struct tm tm;
    time_t t;

    if (store_item_get(req->u, h->id, &it, NULL) != STORE_OK ||
        store_item_meta(req->u, h->id, &meta, &mlen, NULL) != STORE_OK || !meta ||
        mime_cache_open(meta, mlen, &c) < 0) {
        free(meta);
        return;
    }
    r = eas_add(req->out, resp, EAS_FIND_RESULT);
    eas_add_text(req->out, r, EAS_AIRSYNC_CLASS, "Email");
    eas_server_id(sid, sizeof(sid), h->folder_id, h->id);
    eas_add_text(req->out, r, EAS_AIRSYNC_SERVERID, sid);
    snprintf(cid, sizeof(cid), "%lld", (long long)h->folder_id);
    eas_add_text(req->out, r, EAS_AIRSYNC_COLLECTIONID, cid);
    p = eas_add(req->out, r, EAS_FIND_PROPERTIES);
    eas_add_text(req->out, p, EAS_EMAIL_SUBJECT, c.subject.p);
    t = (time_t)it.idate;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    eas_add_text(req->out, p, EAS_EMAIL_DATERECEIVED, date);
    eas_add_text(req->out, p, EAS_EMAIL_DISPLAYTO, c.to_name.len ? c.to_name.p : c.to.p);
    eas_add_int(req->out, p, EAS_EMAIL_IMPORTANCE, 1);
    eas_add_int(req->out, p, EAS_EMAIL_READ, (it.flags & STORE_FLAG_SEEN) ? 1 : 0);
    eas_add_int(req->out, p, EAS_EMAIL2_ISDRAFT, (it.flags & STORE_FLAG_DRAFT) ? 1 : 0);
    eas_add_int(req->out, p, EAS_FIND_HASATTACHMENTS,
                (c.flags & MIME_CACHE_HAS_ATTACHMENTS) ? 1 : 0);
    eas_add_text(req->out, p, EAS_EMAIL_FROM, c.from.p);
    free(meta);
}

int eas_cmd_find(struct eas_req *req)
{
    const struct eas_node *root = req->in ? eas_doc_root(req->in) : NULL, *ex, *crit, *q, *opts;
    struct eas_node *out, *resp;
    struct eas_search *s;
    size_t lo, hi;
    char range[48];

    if (!(req->out = eas_doc_new()) || !(out = eas_add(req->out, NULL, EAS_FIND_FIND))) {
        req->http_status = 500;
        return 0;
    }
    ex = root && root->tag == EAS_FIND_FIND ? eas_child(root, EAS_FIND_EXECUTESEARCH) : NULL;
    crit = ex ? eas_child(ex, EAS_FIND_MAILBOXSEARCHCRITERION) : NULL;
    q = crit ? eas_child(crit, EAS_FIND_QUERY) : NULL;
    opts = crit ? eas_child(crit, EAS_FIND_OPTIONS) : NULL;
    if (!q || !(s = calloc(1, sizeof(*s)))) {
        eas_add_int(req->out, out, EAS_FIND_STATUS, SEARCH_INVALID);
        return 0;
    }
    s->req = req;
    s->text = "";
    s->deep = opts && eas_child(opts, EAS_FIND_DEEPTRAVERSAL);
    if (eas_search_query(s, q, 0) < 0 ||
        eas_parse_range(opts ? eas_child_text(opts, EAS_FIND_RANGE) : NULL, &lo, &hi) < 0 ||
        eas_search_run(s) != SEARCH_OK) {
        eas_add_int(req->out, out, EAS_FIND_STATUS, SEARCH_INVALID);
        goto done;
    }
    eas_add_int(req->out, out, EAS_FIND_STATUS, SEARCH_OK);
    resp = eas_add(req->out, out, EAS_FIND_RESPONSE);
    eas_add_text(req->out, resp, EAS_ITEMOPERATIONS_STORE, "Mailbox");
    eas_add_int(req->out, resp, EAS_FIND_STATUS, SEARCH_OK);
    for (size_t i = lo; i <= hi && i < s->nhits; i++)
        eas_find_result(req, resp, &s->hits[i]);
    if (s->nhits > lo) {
        snprintf(range, sizeof(range), "%zu-%zu", lo, (hi < s->nhits - 1 ? hi : s->nhits - 1));
        eas_add_text(req->out, resp, EAS_FIND_RANGE, range);
    }
    eas_add_int(req->out, resp, EAS_FIND_TOTAL, (long long)s->nhits);
done:
    free(s->cand);
    free(s);
    return 0;
}
