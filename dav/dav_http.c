/*
 * dav_http.c — request dispatch for /caldav, /carddav and /principals: opens the
 * authenticated user's store, resolves the path to a resource (only the owner's own
 * paths exist; another user's look like nothing at all, 404), and calls the method.
 * Also the path and href helpers, ETags and the If-Match / If-None-Match checks.
 *
 * URL layout (docs/dav.md):
 *   /caldav/<address>/<collection>/<item>.ics     calendars, task lists, journals
 *   /carddav/<address>/<book>/<item>.vcf          address books
 *   /principals/<address>/                        the principal
 * A collection's segment is stored in its folder props ("seg") when DAV made it, so a
 * rename (displayname, ActiveSync FolderUpdate) never moves it; folders made elsewhere
 * use their role ("calendar", "contacts", "tasks", "notes") or "f<id>".
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dav/dav_int.h"

static const char *dav_space_root(enum dav_space sp)
{
    return sp == DAV_SPACE_CAL ? "/caldav/" : sp == DAV_SPACE_CARD ? "/carddav/" : "/principals/";
}

int dav_class_in_space(enum store_class c, enum dav_space sp)
{
    if (sp == DAV_SPACE_CAL)
        return c == STORE_CLASS_CALENDAR || c == STORE_CLASS_TASKS || c == STORE_CLASS_NOTES;
    if (sp == DAV_SPACE_CARD)
        return c == STORE_CLASS_CONTACTS;
    return 0;
}

/* --- hrefs ------------------------------------------------------------------------------- */
void dav_href_seg(struct buf *b, const char *seg, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s;

    for (s = (const unsigned char *)seg; *s; s++) {
        if (isalnum(*s) || strchr("-._~@+,=:", *s) || (keep_slash && *s == '/')) {
            buf_put(b, (const char *)s, 1);
        } else {
            char e[3] = {'%', hex[*s >> 4], hex[*s & 15]};
            buf_put(b, e, 3);
        }
    }
}

static int dav_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int dav_pct_decode(char *s)
{
    char *w = s;

    for (; *s; s++) {
        if (*s != '%') {
            *w++ = *s;
            continue;
        }
        int hi = dav_hexval((unsigned char)s[1]),
            lo = hi < 0 ? -1 : dav_hexval((unsigned char)s[2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return -1;
        *w++ = (char)(hi * 16 + lo);
        s += 2;
    }
    *w = '\0';
    return 0;
}

/* Writes a buffer into a fixed-size href field (truncation cannot happen for paths we
 * accepted: they are bounded well below DAV_HREF_MAX; an overlong one becomes ""). */
static void dav_buf_to(struct buf *b, char *out, size_t outlen)
{
    if (!b->oom && b->p && b->len < outlen)
        memcpy(out, b->p, b->len + 1);
    else if (outlen)
        out[0] = '\0';
    buf_free(b);
}

void dav_home_href(const struct dav_req *q, enum dav_space sp, char *out, size_t outlen)
{
    struct buf b = {0};

    buf_puts(&b, dav_space_root(sp));
    dav_href_seg(&b, q->acct->address, 0);
    buf_puts(&b, "/");
    dav_buf_to(&b, out, outlen);
}

void dav_principal_href(const struct dav_req *q, char *out, size_t outlen)
{
    dav_home_href(q, DAV_SPACE_PRINC, out, outlen);
}

void dav_folder_seg(const struct store_folder *f, char *out, size_t outlen)
{
    dav_fprop_get(f->props, "seg", out, outlen);
    if (*out)
        return;
    switch (f->role) {
    case STORE_ROLE_CALENDAR:
        snprintf(out, outlen, "calendar");
        break;
    case STORE_ROLE_CONTACTS:
        snprintf(out, outlen, "contacts");
        break;
    case STORE_ROLE_TASKS:
        snprintf(out, outlen, "tasks");
        break;
    case STORE_ROLE_NOTES:
        snprintf(out, outlen, "notes");
        break;
    default:
        snprintf(out, outlen, "f%" PRId64, f->id);
        break;
    }
}

void dav_coll_href(const struct dav_req *q, enum dav_space sp, const struct store_folder *f,
                   char *out, size_t outlen)
{
    struct buf b = {0};
    char seg[256];

    dav_folder_seg(f, seg, sizeof(seg));
    buf_puts(&b, dav_space_root(sp));
    dav_href_seg(&b, q->acct->address, 0);
    buf_puts(&b, "/");
    dav_href_seg(&b, seg, 0);
    buf_puts(&b, "/");
    dav_buf_to(&b, out, outlen);
}

void dav_item_name(const struct store_item *it, enum dav_space sp, char *out, size_t outlen)
{
    const char *ext = sp == DAV_SPACE_CARD ? ".vcf" : ".ics";

    /* A nameless item (made by ActiveSync) is shown as <id>.ics: the change journal
     * keeps the id of a deleted item but not its UID, and sync-collection must name a
     * deletion with the href the client knows. <ext_uid>.ics is still resolved. */
    if (it->name[0])
        snprintf(out, outlen, "%s", it->name);
    else
        snprintf(out, outlen, "%" PRId64 "%s", it->id, ext);
}

void dav_item_href(const struct dav_req *q, enum dav_space sp, const struct store_folder *f,
                   const struct store_item *it, char *out, size_t outlen)
{
    char coll[DAV_HREF_MAX], name[300];
    struct buf b = {0};

    dav_coll_href(q, sp, f, coll, sizeof(coll));
    dav_item_name(it, sp, name, sizeof(name));
    buf_puts(&b, coll);
    dav_href_seg(&b, name, 0);
    dav_buf_to(&b, out, outlen);
}

/* --- lookups ------------------------------------------------------------------------------ */
struct dav_find_ctx {
    enum dav_space sp;
    const char *seg;
    struct store_folder *out;
    int found;
};

static int dav_find_cb(const struct store_folder *f, void *vctx)
{
    struct dav_find_ctx *c = vctx;
    char seg[256];

    if (!dav_class_in_space(f->cls, c->sp))
        return 0;
    dav_folder_seg(f, seg, sizeof(seg));
    if (strcmp(seg, c->seg) != 0)
        return 0;
    *c->out = *f;
    c->found = 1;
    return 1;
}

int dav_folder_list(struct dav_req *q, enum dav_space sp, store_folder_cb cb, void *ctx)
{
    static const enum store_class cal[] = {STORE_CLASS_CALENDAR, STORE_CLASS_TASKS,
                                           STORE_CLASS_NOTES};
    static const enum store_class card[] = {STORE_CLASS_CONTACTS};
    const enum store_class *cls = sp == DAV_SPACE_CARD ? card : cal;
    size_t i, n = sp == DAV_SPACE_CARD ? 1 : 3;
    struct store_err e;
    int rc = 0;

    for (i = 0; i < n && rc == 0; i++)
        rc = store_folder_list(q->u, cls[i], cb, ctx, &e);
    return rc < 0 ? rc : 0;
}

int dav_find_coll(struct dav_req *q, enum dav_space sp, const char *seg, struct store_folder *out)
{
    struct dav_find_ctx c = {sp, seg, out, 0};
    char cseg[256];
    int rc;

    if (q->coll_cached && q->coll_sp == sp) {
        dav_folder_seg(&q->coll, cseg, sizeof(cseg));
        if (strcmp(cseg, seg) == 0) {
            *out = q->coll;
            return 0;
        }
    }
    rc = dav_folder_list(q, sp, dav_find_cb, &c);
    if (rc < 0)
        return rc;
    if (!c.found)
        return STORE_ENOTFOUND;
    q->coll_cached = 1;
    q->coll_sp = sp;
    q->coll = *out;
    return 0;
}

int dav_find_item(struct dav_req *q, const struct store_folder *f, const char *name,
                  struct store_item *out)
{
    char base[256];
    size_t n = strlen(name);
    struct store_err e;
    int rc;

    rc = store_item_by_name(q->u, f->id, name, out);
    if (rc != STORE_ENOTFOUND)
        return rc;
    /* Items from other engines have no name: <ext_uid>.ics or <id>.ics stands for them. */
    if (n < 5 || n - 4 >= sizeof(base) ||
        (strcasecmp(name + n - 4, ".ics") != 0 && strcasecmp(name + n - 4, ".vcf") != 0))
        return STORE_ENOTFOUND;
    memcpy(base, name, n - 4);
    base[n - 4] = '\0';
    rc = store_item_by_ext_uid(q->u, f->id, base, out);
    if (rc == 0 && out->name[0] == '\0')
        return 0;
    if (rc < 0 && rc != STORE_ENOTFOUND)
        return rc;
    if (base[strspn(base, "0123456789")] == '\0' && strlen(base) < 19) {
        rc = store_item_get(q->u, strtoll(base, NULL, 10), out, &e);
        if (rc == 0 && out->folder_id == f->id && out->name[0] == '\0')
            return 0;
        if (rc < 0 && rc != STORE_ENOTFOUND)
            return rc;
    }
    return STORE_ENOTFOUND;
}

#define DAV_MAX_SEGS 8

/* Splits a decoded path into at most DAV_MAX_SEGS non-empty segments (in buf). */
static int dav_split(const char *path, char *buf, size_t buflen, char **segs)
{
    int n = 0;
    char *p, *save = NULL;

    if (strlen(path) >= buflen)
        return -1;
    strcpy(buf, path);
    for (p = strtok_r(buf, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
        if (n == DAV_MAX_SEGS)
            return -1;
        segs[n++] = p;
    }
    return n;
}

static int dav_resolve_coll(struct dav_req *q, char **segs, int n, struct dav_res *res)
{
    struct buf b = {0};
    int rc;

    rc = dav_find_coll(q, res->space, segs[2], &res->folder);
    if (rc == STORE_ENOTFOUND) {
        if (n == 3) {
            res->kind = DAV_K_NEWCOLL;
            snprintf(res->name, sizeof(res->name), "%s", segs[2]);
            dav_home_href(q, res->space, res->href, sizeof(res->href));
            buf_puts(&b, res->href);
            dav_href_seg(&b, segs[2], 0);
            buf_puts(&b, "/");
            dav_buf_to(&b, res->href, sizeof(res->href));
        }
        return 0;
    }
    if (rc < 0)
        return -1;
    dav_folder_seg(&res->folder, res->seg, sizeof(res->seg));
    dav_coll_href(q, res->space, &res->folder, res->href, sizeof(res->href));
    if (n == 3) {
        res->kind = DAV_K_COLL;
        return 0;
    }
    if (n > 4 || strlen(segs[3]) >= sizeof(res->name))
        return 0;
    snprintf(res->name, sizeof(res->name), "%s", segs[3]);
    rc = dav_find_item(q, &res->folder, segs[3], &res->item);
    if (rc < 0 && rc != STORE_ENOTFOUND)
        return -1;
    res->kind = rc == 0 ? DAV_K_ITEM : DAV_K_NEWITEM;
    if (rc == 0) {
        dav_item_href(q, res->space, &res->folder, &res->item, res->href, sizeof(res->href));
    } else {
        buf_puts(&b, res->href);
        dav_href_seg(&b, segs[3], 0);
        dav_buf_to(&b, res->href, sizeof(res->href));
    }
    return 0;
}

int dav_resolve(struct dav_req *q, const char *path, struct dav_res *res)
{
    char buf[DAV_HREF_MAX], *segs[DAV_MAX_SEGS];
    int n;

    memset(res, 0, sizeof(*res));
    n = dav_split(path, buf, sizeof(buf), segs);
    if (n < 1)
        return 0;
    if (strcmp(segs[0], "caldav") == 0)
        res->space = DAV_SPACE_CAL;
    else if (strcmp(segs[0], "carddav") == 0)
        res->space = DAV_SPACE_CARD;
    else if (strcmp(segs[0], "principals") == 0)
        res->space = DAV_SPACE_PRINC;
    else
        return 0;
    if (n == 1) {
        res->kind = DAV_K_ROOT;
        snprintf(res->href, sizeof(res->href), "%s", dav_space_root(res->space));
        return 0;
    }
    /* Another user's tree answers exactly like a path that does not exist. */
    if (strcasecmp(segs[1], q->acct->address) != 0)
        return 0;
    res->mine = 1;
    if (n == 2) {
        res->kind = res->space == DAV_SPACE_PRINC ? DAV_K_PRINCIPAL : DAV_K_HOME;
        dav_home_href(q, res->space, res->href, sizeof(res->href));
        return 0;
    }
    if (res->space == DAV_SPACE_PRINC)
        return 0;
    return dav_resolve_coll(q, segs, n, res);
}

/* --- headers ------------------------------------------------------------------------------ */
int dav_depth(struct dav_req *q, int def)
{
    const char *d = http_req_header(q->r, "Depth");

    if (!d)
        return def;
    if (strcmp(d, "0") == 0)
        return 0;
    if (strcmp(d, "1") == 0)
        return 1;
    if (strcasecmp(d, "infinity") == 0)
        return -1;
    return -2;
}

void dav_etag(const struct store_item *it, char *out, size_t outlen)
{
    snprintf(out, outlen, "\"%" PRId64 "-%" PRId64 "\"", it->id, it->modseq);
}

/* 1 when the header's comma-separated list holds "*" or etag. Weak tags never match: we
 * only issue strong ones and If-Match uses the strong comparison. */
static int dav_etag_listed(const char *list, const char *etag)
{
    size_t el = strlen(etag);
    const char *p = list;

    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        if (*p == '*')
            return 1;
        if (strncmp(p, etag, el) == 0 && (p[el] == '\0' || p[el] == ',' || p[el] == ' '))
            return 1;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}

int dav_preconditions(struct dav_req *q, const struct store_item *it)
{
    const char *im = http_req_header(q->r, "If-Match");
    const char *inm = http_req_header(q->r, "If-None-Match");
    char etag[64];

    if (it)
        dav_etag(it, etag, sizeof(etag));
    if (im && (!it || !dav_etag_listed(im, etag)))
        return 412;
    if (inm && it && dav_etag_listed(inm, etag))
        return 412;
    return 0;
}

/* --- dispatch ----------------------------------------------------------------------------- */
static const struct {
    const char *name;
    void (*fn)(struct dav_req *q);
} dav_methods[] = {
    {"OPTIONS", dav_method_options},
    {"PROPFIND", dav_method_propfind},
    {"PROPPATCH", dav_method_proppatch},
    {"MKCOL", dav_method_mkcol},
    {"MKCALENDAR", dav_method_mkcol},
    {"PUT", dav_method_put},
    {"GET", dav_method_get},
    {"HEAD", dav_method_get},
    {"DELETE", dav_method_delete},
    {"COPY", dav_method_copymove},
    {"MOVE", dav_method_copymove},
    {"REPORT", dav_method_report},
};

/* RFC 8144 (and the older Brief header Apple clients send): leave out what is missing. */
static int dav_wants_minimal(struct http_req *r)
{
    const char *prefer = http_req_header(r, "Prefer");
    const char *brief = http_req_header(r, "Brief");

    if (prefer && strstr(prefer, "return=minimal")) {
        http_add_header(r, "Preference-Applied", "return=minimal");
        return 1;
    }
    return brief && (brief[0] == 't' || brief[0] == 'T');
}

enum http_action dav_http_handle(struct http_req *r, enum http_phase phase, void *ctx)
{
    struct dav_req q = {0};
    struct store_err e;
    size_t i;

    (void)phase;
    q.d = ctx;
    q.r = r;
    q.acct = http_req_account(r);
    q.method = http_req_method(r);
    q.path = http_req_path(r);
    q.body = http_req_body(r, &q.body_len);
    q.minimal = dav_wants_minimal(r);
    if (!q.acct) {
        http_respond_text(r, 500, "Internal Server Error\n");
        return HTTP_RESPOND;
    }
    if (store_user_open(q.d->st, q.acct->address, &q.u, &e) != 0) {
        log_error("dav", "opening the store of %s failed: %s", q.acct->address, e.msg);
        http_respond_text(r, 503, "Service Unavailable\n");
        return HTTP_RESPOND;
    }
    if (dav_resolve(&q, q.path, &q.res) != 0) {
        http_respond_text(r, 503, "Service Unavailable\n");
        goto out;
    }
    for (i = 0; i < sizeof(dav_methods) / sizeof(dav_methods[0]); i++) {
        if (strcmp(q.method, dav_methods[i].name) == 0) {
            dav_methods[i].fn(&q);
            goto out;
        }
    }
    http_add_header(r, "Allow",
                    "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, "
                    "MKCALENDAR, COPY, MOVE, REPORT");
    http_respond_text(r, 405, "Method Not Allowed\n");
out:
    store_user_release(q.u);
    return HTTP_RESPOND;
}

int dav_parse_item(struct dav_req *q, enum dav_space sp, const struct store_item *it,
                   struct dav_parsed *p)
{
    struct store_err e;
    const char *precond;
    char err[128];

    if (!p->body && store_item_body(q->u, it->id, &p->body, &p->body_len, &e) != 0)
        return -1;
    if (sp == DAV_SPACE_CARD) {
        if (!p->vcard &&
            dav_vcard_parse(p->body, p->body_len, &p->vcard, &precond, err, sizeof(err)) != 0)
            return -1;
        return 0;
    }
    if (!p->ical && dav_ical_parse(p->body, p->body_len, &p->ical, &precond, err, sizeof(err)) != 0)
        return -1;
    return 0;
}

void dav_parsed_free(struct dav_parsed *p)
{
    if (p->ical)
        dav_ical_free(p->ical);
    if (p->vcard)
        dav_vcard_free(p->vcard);
    free(p->body);
    memset(p, 0, sizeof(*p));
}

int dav_index_item(struct dav_req *q, int64_t item_id, const struct dav_ical *c, int64_t horizon)
{
    struct store_range *r = NULL;
    size_t n = 0;
    int64_t complete = 0;
    struct store_err e;
    int rc;

    if (dav_ical_ranges(c, horizon, &r, &n, &complete) != 0)
        return -1;
    rc = store_item_set_ranges(q->u, item_id, r, n, complete, &e);
    free(r);
    return rc == 0 ? 0 : -1;
}
