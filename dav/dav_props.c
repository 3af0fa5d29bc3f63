/*
 * dav_props.c — the property table: for every live property, the resource kinds and
 * space it exists on and a getter writing its value. PROPFIND, the REPORTs and
 * PROPPATCH (to tell protected live properties from unknown ones) all go through it.
 *
 * Collection properties a client may set (displayname, descriptions, Apple's color and
 * order) live as a flat JSON object in the folder's engine-owned props, next to the URL
 * segment ("seg"); the calendar time zone, often several KiB, lives in the store's engine
 * state (namespace "dav.tz"), which the 1 KiB props field could not hold.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dav/dav_int.h"

/* --- folder props: a flat JSON object of strings --------------------------------------- */
#define DAV_JSON_MEMBERS 32 /* members of the props object we read */

struct dav_jmember {
    const char *k, *v; /* raw spans including quotes */
    size_t klen, vlen;
};

static const char *dav_json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* The end of a JSON string starting at p (a quote), or NULL. */
static const char *dav_json_str_end(const char *p)
{
    if (*p != '"')
        return NULL;
    for (p++; *p; p++) {
        if (*p == '\\' && p[1])
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* The end of any JSON value: a string, a number or literal, or a nested object/array
 * (brackets balanced, strings skipped). NULL when it is none of those: a props field we
 * cannot read is then rewritten afresh rather than copied through half-understood. */
static const char *dav_json_val_end(const char *p)
{
    int depth = 0;

    if (*p == '"')
        return dav_json_str_end(p);
    if (*p != '{' && *p != '[') {
        const char *s = p;
        while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p && strchr("+-.E", *p)))
            p++;
        return p > s && *p ? p : NULL;
    }
    for (; *p; p++) {
        if (*p == '"') {
            p = dav_json_str_end(p);
            if (!p)
                return NULL;
            p--;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if ((*p == '}' || *p == ']') && --depth == 0) {
            return p + 1;
        }
    }
    return NULL;
}

/* Splits the object into members; returns the count or -1 when it is not an object. */
static int dav_json_members(const char *json, struct dav_jmember *m, int max)
{
    const char *p = dav_json_ws(json), *e;
    int n = 0;

    if (!*p)
        return 0;
    if (*p != '{')
        return -1;
    p = dav_json_ws(p + 1);
    while (*p && *p != '}') {
        if (n == max)
            return -1;
        e = dav_json_str_end(p);
        if (!e)
            return -1;
        m[n].k = p;
        m[n].klen = (size_t)(e - p);
        p = dav_json_ws(e);
        if (*p != ':')
            return -1;
        p = dav_json_ws(p + 1);
        e = dav_json_val_end(p);
        if (!e || e == p)
            return -1;
        m[n].v = p;
        m[n].vlen = (size_t)(e - p);
        n++;
        p = dav_json_ws(e);
        if (*p == ',')
            p = dav_json_ws(p + 1);
        else if (*p != '}')
            return -1;
    }
    return *p == '}' ? n : -1;
}

static size_t dav_utf8_put(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/* Decodes a JSON string span (with quotes) into out. */
static void dav_json_unquote(const char *s, size_t n, char *out, size_t outlen)
{
    size_t i, o = 0;

    for (i = 1; i + 1 < n && o + 4 < outlen; i++) {
        char c = s[i];
        if (c != '\\') {
            out[o++] = c;
            continue;
        }
        c = s[++i];
        if (c == 'n')
            out[o++] = '\n';
        else if (c == 't')
            out[o++] = '\t';
        else if (c == 'r')
            out[o++] = '\r';
        else if (c == 'u' && i + 4 < n) {
            char hex[5] = {s[i + 1], s[i + 2], s[i + 3], s[i + 4], 0};
            o += dav_utf8_put(out + o, (unsigned)strtoul(hex, NULL, 16));
            i += 4;
        } else
            out[o++] = c;
    }
    out[o] = '\0';
}

static int dav_json_key_is(const struct dav_jmember *m, const char *key)
{
    size_t kl = strlen(key);

    return m->klen == kl + 2 && memcmp(m->k + 1, key, kl) == 0;
}

void dav_fprop_get(const char *json, const char *key, char *out, size_t outlen)
{
    struct dav_jmember m[DAV_JSON_MEMBERS];
    int n = dav_json_members(json, m, DAV_JSON_MEMBERS), i;

    out[0] = '\0';
    for (i = 0; i < n; i++) {
        if (dav_json_key_is(&m[i], key) && m[i].v[0] == '"') {
            dav_json_unquote(m[i].v, m[i].vlen, out, outlen);
            return;
        }
    }
}

static void dav_json_quote(struct buf *b, const char *s)
{
    buf_puts(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            buf_printf(b, "\\u%04x", c);
        else
            buf_put(b, s, 1);
    }
    buf_puts(b, "\"");
}

int dav_fprop_set(char *json, size_t jsonlen, const char *key, const char *val)
{
    struct dav_jmember m[DAV_JSON_MEMBERS];
    struct buf b = {0};
    int n = dav_json_members(json, m, DAV_JSON_MEMBERS), i, kept, first = 1, rc = -1;

    if (n < 0)
        n = 0; /* not ours to read: start afresh rather than fail every PROPPATCH */
    buf_puts(&b, "{");
    for (i = 0, kept = 0; i < n; i++)
        kept += !dav_json_key_is(&m[i], key);
    if (val && kept == DAV_JSON_MEMBERS)
        goto out; /* one more member could not be read back */
    for (i = 0; i < n; i++) {
        if (dav_json_key_is(&m[i], key))
            continue;
        buf_puts(&b, first ? "" : ",");
        buf_put(&b, m[i].k, m[i].klen);
        buf_puts(&b, ":");
        buf_put(&b, m[i].v, m[i].vlen);
        first = 0;
    }
    if (val) {
        buf_puts(&b, first ? "" : ",");
        dav_json_quote(&b, key);
        buf_puts(&b, ":");
        dav_json_quote(&b, val);
    }
    buf_puts(&b, "}");
    if (!b.oom && b.len < jsonlen) {
        memcpy(json, b.p, b.len + 1);
        rc = 0;
    }
out:
    buf_free(&b);
    return rc;
}

unsigned dav_class_comps(enum store_class c)
{
    switch (c) {
    case STORE_CLASS_TASKS:
        return DAV_ICAL_VTODO;
    case STORE_CLASS_NOTES:
        return DAV_ICAL_VJOURNAL;
    default:
        return DAV_ICAL_VEVENT;
    }
}

/* --- the table -------------------------------------------------------------------------- */
#define KR   (1u << DAV_K_ROOT)
#define KP   (1u << DAV_K_PRINCIPAL)
#define KH   (1u << DAV_K_HOME)
#define KC   (1u << DAV_K_COLL)
#define KI   (1u << DAV_K_ITEM)
#define KALL (KR | KP | KH | KC | KI)

struct dav_pctx {
    struct dav_req *q;
    const struct dav_res *res;
    const struct dav_pset *ps;
    struct dav_parsed *parsed;
};

/* A getter writes the value and returns 1, or 0 when the resource has no such value. */
typedef int (*dav_getter)(struct dav_pctx *c, struct buf *b);

struct dav_pdef {
    const char *ns, *name;
    unsigned kinds;
    int space; /* 0: any, else the dav_space it exists in */
    int allprop;
    dav_getter get;
};

static void dav_href_el(struct buf *b, const char *href)
{
    buf_puts(b, "<D:href>");
    dav_buf_esc(b, href, strlen(href));
    buf_puts(b, "</D:href>");
}

static int pg_resourcetype(struct dav_pctx *c, struct buf *b)
{
    switch (c->res->kind) {
    case DAV_K_ROOT:
    case DAV_K_HOME:
        buf_puts(b, "<D:collection/>");
        break;
    case DAV_K_PRINCIPAL:
        buf_puts(b, "<D:collection/><D:principal/>");
        break;
    case DAV_K_COLL:
        buf_puts(b, c->res->space == DAV_SPACE_CARD ? "<D:collection/><CR:addressbook/>"
                                                    : "<D:collection/><C:calendar/>");
        break;
    default:
        break;
    }
    return 1;
}

static int pg_displayname(struct dav_pctx *c, struct buf *b)
{
    char dn[512];
    const struct dav_res *r = c->res;

    switch (r->kind) {
    case DAV_K_PRINCIPAL:
    case DAV_K_ROOT:
        dav_buf_esc(b, c->q->acct->address, strlen(c->q->acct->address));
        return 1;
    case DAV_K_HOME:
        buf_puts(b, r->space == DAV_SPACE_CARD ? "Address books" : "Calendars");
        return 1;
    case DAV_K_COLL:
        dav_fprop_get(r->folder.props, "dn", dn, sizeof(dn));
        if (!*dn)
            snprintf(dn, sizeof(dn), "%s", r->folder.name);
        dav_buf_esc(b, dn, strlen(dn));
        return 1;
    default:
        return 0;
    }
}

static int pg_getetag(struct dav_pctx *c, struct buf *b)
{
    char etag[64];

    if (c->res->kind == DAV_K_COLL)
        snprintf(etag, sizeof(etag), "\"c%" PRId64 "-%" PRId64 "\"", c->res->folder.id,
                 c->res->folder.modseq);
    else
        dav_etag(&c->res->item, etag, sizeof(etag));
    dav_buf_esc(b, etag, strlen(etag));
    return 1;
}

static int pg_getcontenttype(struct dav_pctx *c, struct buf *b)
{
    const char *ct = c->res->item.ctype;

    if (!*ct)
        ct = c->res->space == DAV_SPACE_CARD ? "text/vcard" : "text/calendar";
    dav_buf_esc(b, ct, strlen(ct));
    if (!strstr(ct, "component=") && c->res->space == DAV_SPACE_CAL &&
        strncmp(ct, "text/calendar", 13) == 0 && !strchr(ct, ';')) {
        unsigned k = dav_class_comps(c->res->folder.cls);
        buf_puts(b, k == DAV_ICAL_VTODO      ? "; component=vtodo"
                    : k == DAV_ICAL_VJOURNAL ? "; component=vjournal"
                                             : "; component=vevent");
    }
    return 1;
}

static int pg_getcontentlength(struct dav_pctx *c, struct buf *b)
{
    buf_printf(b, "%" PRId64, c->res->item.size);
    return 1;
}

static int pg_getlastmodified(struct dav_pctx *c, struct buf *b)
{
    char t[64];
    struct tm tm;
    time_t mt = (time_t)c->res->item.mtime;

    if (!gmtime_r(&mt, &tm) || !strftime(t, sizeof(t), "%a, %d %b %Y %H:%M:%S GMT", &tm))
        return 0;
    buf_puts(b, t);
    return 1;
}

static int pg_principal(struct dav_pctx *c, struct buf *b)
{
    char href[DAV_HREF_MAX];

    dav_principal_href(c->q, href, sizeof(href));
    dav_href_el(b, href);
    return 1;
}

static int pg_principal_coll(struct dav_pctx *c, struct buf *b)
{
    dav_href_el(b, "/principals/");
    return 1;
}

static int pg_cal_home(struct dav_pctx *c, struct buf *b)
{
    char href[DAV_HREF_MAX];

    dav_home_href(c->q, DAV_SPACE_CAL, href, sizeof(href));
    dav_href_el(b, href);
    return 1;
}

static int pg_card_home(struct dav_pctx *c, struct buf *b)
{
    char href[DAV_HREF_MAX];

    dav_home_href(c->q, DAV_SPACE_CARD, href, sizeof(href));
    dav_href_el(b, href);
    return 1;
}

static int pg_cuaddr(struct dav_pctx *c, struct buf *b)
{
    char href[DAV_HREF_MAX + 8];

    snprintf(href, sizeof(href), "mailto:%s", c->q->acct->address);
    dav_href_el(b, href);
    dav_principal_href(c->q, href, sizeof(href));
    dav_href_el(b, href);
    return 1;
}

static int pg_cutype(struct dav_pctx *c, struct buf *b)
{
    buf_puts(b, "INDIVIDUAL");
    return 1;
}

static int pg_privs(struct dav_pctx *c, struct buf *b)
{
    static const char *const privs[] = {"read",
                                        "write",
                                        "write-properties",
                                        "write-content",
                                        "bind",
                                        "unbind",
                                        "read-current-user-privilege-set"};
    size_t i, n = sizeof(privs) / sizeof(privs[0]);

    /* Items hold nothing: no bind/unbind there. Principals and the root are read-only. */
    if (c->res->kind == DAV_K_PRINCIPAL || c->res->kind == DAV_K_ROOT) {
        buf_puts(b, "<D:privilege><D:read/></D:privilege><D:privilege>"
                    "<D:read-current-user-privilege-set/></D:privilege>");
        return 1;
    }
    for (i = 0; i < n; i++) {
        if (c->res->kind == DAV_K_ITEM && (i == 4 || i == 5))
            continue;
        buf_printf(b, "<D:privilege><D:%s/></D:privilege>", privs[i]);
    }
    if (c->res->space == DAV_SPACE_CAL)
        buf_puts(b, "<D:privilege><C:read-free-busy/></D:privilege>");
    return 1;
}

static int pg_reports(struct dav_pctx *c, struct buf *b)
{
    if (c->res->kind == DAV_K_PRINCIPAL || c->res->kind == DAV_K_ROOT ||
        c->res->kind == DAV_K_HOME) {
        buf_puts(b, "<D:supported-report><D:report><D:expand-property/></D:report>"
                    "</D:supported-report>");
        return 1;
    }
    static const char *const cal[] = {"C:calendar-query", "C:calendar-multiget",
                                      "C:free-busy-query", "D:sync-collection"};
    static const char *const card[] = {"CR:addressbook-query", "CR:addressbook-multiget",
                                       "D:sync-collection"};
    const char *const *list = c->res->space == DAV_SPACE_CARD ? card : cal;
    size_t i, n = c->res->space == DAV_SPACE_CARD ? 3 : 4;

    if (c->res->kind != DAV_K_COLL)
        return 1; /* an empty set: no reports apply outside collections */
    for (i = 0; i < n; i++)
        buf_printf(b, "<D:supported-report><D:report><%s/></D:report></D:supported-report>",
                   list[i]);
    return 1;
}

static int pg_sync_token(struct dav_pctx *c, struct buf *b)
{
    buf_printf(b, DAV_SYNC_PREFIX "%" PRId64, c->res->folder.modseq);
    return 1;
}

static int pg_ctag(struct dav_pctx *c, struct buf *b)
{
    buf_printf(b, "%" PRId64, c->res->folder.modseq);
    return 1;
}

static int dav_quota(struct dav_pctx *c, int64_t *used, int64_t *avail)
{
    int64_t quota = 0;

    if (store_user_usage(c->q->u, used, &quota) != 0)
        return 0;
    *avail = quota > *used ? quota - *used : 0;
    return 1;
}

static int pg_quota_used(struct dav_pctx *c, struct buf *b)
{
    int64_t used, avail;

    if (!dav_quota(c, &used, &avail))
        return 0;
    buf_printf(b, "%" PRId64, used);
    return 1;
}

static int pg_quota_avail(struct dav_pctx *c, struct buf *b)
{
    int64_t used, avail;

    if (!dav_quota(c, &used, &avail))
        return 0;
    buf_printf(b, "%" PRId64, avail);
    return 1;
}

static int dav_fprop_el(struct dav_pctx *c, struct buf *b, const char *key)
{
    char v[1024];

    dav_fprop_get(c->res->folder.props, key, v, sizeof(v));
    if (!*v)
        return 0;
    dav_buf_esc(b, v, strlen(v));
    return 1;
}

static int pg_desc(struct dav_pctx *c, struct buf *b)
{
    return dav_fprop_el(c, b, "desc");
}

static int pg_color(struct dav_pctx *c, struct buf *b)
{
    return dav_fprop_el(c, b, "color");
}

static int pg_order(struct dav_pctx *c, struct buf *b)
{
    return dav_fprop_el(c, b, "order");
}

static int pg_timezone(struct dav_pctx *c, struct buf *b)
{
    char key[32];
    void *v = NULL;
    size_t n = 0;
    struct store_err e;

    snprintf(key, sizeof(key), "%" PRId64, c->res->folder.id);
    if (store_state_get(c->q->u, "dav.tz", key, &v, &n, &e) != 0)
        return 0;
    dav_buf_esc(b, v, n);
    free(v);
    return 1;
}

static int pg_comp_set(struct dav_pctx *c, struct buf *b)
{
    unsigned k = dav_class_comps(c->res->folder.cls);

    buf_printf(b, "<C:comp name=\"%s\"/>",
               k == DAV_ICAL_VTODO      ? "VTODO"
               : k == DAV_ICAL_VJOURNAL ? "VJOURNAL"
                                        : "VEVENT");
    return 1;
}

static int pg_cal_data_types(struct dav_pctx *c, struct buf *b)
{
    buf_puts(b, "<C:calendar-data content-type=\"text/calendar\" version=\"2.0\"/>");
    return 1;
}

static int pg_card_data_types(struct dav_pctx *c, struct buf *b)
{
    buf_puts(b, "<CR:address-data-type content-type=\"text/vcard\" version=\"3.0\"/>"
                "<CR:address-data-type content-type=\"text/vcard\" version=\"4.0\"/>");
    return 1;
}

static int pg_max_size(struct dav_pctx *c, struct buf *b)
{
    buf_printf(b, "%" PRId64, c->q->d->cfg->dav_max_resource);
    return 1;
}

static int pg_calendar_data(struct dav_pctx *c, struct buf *b)
{
    char *out;
    size_t n = 0;

    if (!c->ps->cdata || !dav_ical_data_needs_parse(c->ps->cdata)) {
        if (!c->parsed->body && store_item_body(c->q->u, c->res->item.id, &c->parsed->body,
                                                &c->parsed->body_len, &(struct store_err){0}) != 0)
            return 0;
        dav_buf_esc(b, c->parsed->body, c->parsed->body_len);
        return 1;
    }
    if (dav_parse_item(c->q, DAV_SPACE_CAL, &c->res->item, c->parsed) != 0)
        return 0;
    out = dav_ical_data_render(c->ps->cdata, c->parsed->ical, &n);
    if (!out)
        return 0;
    dav_buf_esc(b, out, n);
    free(out);
    return 1;
}

static int pg_address_data(struct dav_pctx *c, struct buf *b)
{
    char *out;
    size_t n = 0;

    if (dav_parse_item(c->q, DAV_SPACE_CARD, &c->res->item, c->parsed) != 0)
        return 0;
    if (!c->ps->adata ||
        !dav_vcard_data_needs_parse(c->ps->adata, dav_vcard_version(c->parsed->vcard))) {
        dav_buf_esc(b, c->parsed->body, c->parsed->body_len);
        return 1;
    }
    out = dav_vcard_data_render(c->ps->adata, c->parsed->vcard, &n);
    if (!out)
        return 0;
    dav_buf_esc(b, out, n);
    free(out);
    return 1;
}

static const struct dav_pdef dav_ptable[] = {
    {NS_DAV, "resourcetype", KALL, 0, 1, pg_resourcetype},
    {NS_DAV, "displayname", KR | KP | KH | KC, 0, 1, pg_displayname},
    {NS_DAV, "getetag", KC | KI, 0, 1, pg_getetag},
    {NS_DAV, "getcontenttype", KI, 0, 1, pg_getcontenttype},
    {NS_DAV, "getcontentlength", KI, 0, 1, pg_getcontentlength},
    {NS_DAV, "getlastmodified", KI, 0, 1, pg_getlastmodified},
    {NS_DAV, "current-user-principal", KALL, 0, 0, pg_principal},
    {NS_DAV, "principal-URL", KR | KP | KH, 0, 0, pg_principal},
    {NS_DAV, "owner", KP | KH | KC | KI, 0, 0, pg_principal},
    {NS_DAV, "principal-collection-set", KR | KP | KH, 0, 0, pg_principal_coll},
    {NS_DAV, "current-user-privilege-set", KALL, 0, 0, pg_privs},
    {NS_DAV, "supported-report-set", KALL, 0, 0, pg_reports},
    {NS_DAV, "sync-token", KC, 0, 0, pg_sync_token},
    {NS_DAV, "quota-used-bytes", KH | KC, 0, 0, pg_quota_used},
    {NS_DAV, "quota-available-bytes", KH | KC, 0, 0, pg_quota_avail},
    {NS_CS, "getctag", KC, 0, 0, pg_ctag},
    {NS_CAL, "calendar-home-set", KR | KP | KH, 0, 0, pg_cal_home},
    {NS_CAL, "calendar-user-address-set", KR | KP | KH, 0, 0, pg_cuaddr},
    {NS_CAL, "calendar-user-type", KP, 0, 0, pg_cutype},
    {NS_CAL, "calendar-description", KC, DAV_SPACE_CAL, 0, pg_desc},
    {NS_CAL, "calendar-timezone", KC, DAV_SPACE_CAL, 0, pg_timezone},
    {NS_CAL, "supported-calendar-component-set", KC, DAV_SPACE_CAL, 0, pg_comp_set},
    {NS_CAL, "supported-calendar-data", KC, DAV_SPACE_CAL, 0, pg_cal_data_types},
    {NS_CAL, "max-resource-size", KC, DAV_SPACE_CAL, 0, pg_max_size},
    {NS_CAL, "calendar-data", KI, DAV_SPACE_CAL, 0, pg_calendar_data},
    {NS_APPL, "calendar-color", KC, DAV_SPACE_CAL, 0, pg_color},
    {NS_APPL, "calendar-order", KC, DAV_SPACE_CAL, 0, pg_order},
    {NS_CARD, "addressbook-home-set", KR | KP | KH, 0, 0, pg_card_home},
    {NS_CARD, "addressbook-description", KC, DAV_SPACE_CARD, 0, pg_desc},
    {NS_CARD, "supported-address-data", KC, DAV_SPACE_CARD, 0, pg_card_data_types},
    {NS_CARD, "max-resource-size", KC, DAV_SPACE_CARD, 0, pg_max_size},
    {NS_CARD, "address-data", KI, DAV_SPACE_CARD, 0, pg_address_data},
};
#define DAV_NPROPS (sizeof(dav_ptable) / sizeof(dav_ptable[0]))

static const struct dav_pdef *dav_pdef_find(const char *ns, const char *name)
{
    size_t i;

    for (i = 0; i < DAV_NPROPS; i++)
        if (strcmp(dav_ptable[i].name, name) == 0 && strcmp(dav_ptable[i].ns, ns) == 0)
            return &dav_ptable[i];
    return NULL;
}

int dav_prop_is_live(const char *ns, const char *name)
{
    return dav_pdef_find(ns, name) != NULL;
}

static int dav_pdef_applies(const struct dav_pdef *d, const struct dav_res *r)
{
    return (d->kinds & (1u << r->kind)) && (!d->space || d->space == (int)r->space);
}

int dav_prop_value(struct dav_req *q, const struct dav_res *res, const char *ns, const char *name,
                   struct buf *out)
{
    static const struct dav_pset none;
    struct dav_parsed parsed = {0};
    struct dav_pctx c = {q, res, &none, &parsed};
    const struct dav_pdef *d = dav_pdef_find(ns, name);
    int rc = d && dav_pdef_applies(d, res) ? d->get(&c, out) : 0;

    dav_parsed_free(&parsed);
    return rc;
}

/* --- prop requests ---------------------------------------------------------------------- */
#define DAV_PSET_MAX 128

int dav_pset_from_prop(xmlNodePtr prop, struct dav_pset *ps)
{
    xmlNodePtr c;
    const char *precond = NULL;
    char err[128];

    for (c = prop ? prop->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (ps->n == DAV_PSET_MAX)
            return -1;
        if (!ps->p) {
            ps->p = calloc(DAV_PSET_MAX, sizeof(*ps->p));
            if (!ps->p)
                return -1;
        }
        ps->p[ps->n].ns = dav_xml_ns(c);
        ps->p[ps->n].name = (const char *)c->name;
        ps->p[ps->n].node = c;
        ps->n++;
        if (dav_xml_is(c, NS_CAL, "calendar-data") && !ps->cdata &&
            (c->children || c->properties) &&
            dav_ical_data_compile(c, &ps->cdata, err, sizeof(err)) != 0)
            return -1;
        if (dav_xml_is(c, NS_CARD, "address-data") && !ps->adata &&
            (c->children || c->properties) &&
            dav_vcard_data_compile(c, &ps->adata, &precond, err, sizeof(err)) != 0) {
            ps->precond = precond;
            return -1;
        }
    }
    return 0;
}

void dav_send_pset_error(struct dav_req *q, const struct dav_pset *ps)
{
    if (ps->precond)
        dav_send_error(q, 403, NS_CARD, ps->precond, NULL);
    else
        dav_send_status(q, 400);
}

void dav_pset_free(struct dav_pset *ps)
{
    free(ps->p);
    if (ps->cdata)
        dav_ical_data_free(ps->cdata);
    if (ps->adata)
        dav_vcard_data_free(ps->adata);
    if (ps->doc)
        xmlFreeDoc(ps->doc);
    memset(ps, 0, sizeof(*ps));
}

/* One property's value into ok, or its empty element into missing. */
static void dav_prop_one(struct dav_pctx *c, const char *ns, const char *name, struct buf *ok,
                         struct buf *missing)
{
    const struct dav_pdef *d = dav_pdef_find(ns, name);
    struct buf v = {0};

    if (!d && c->res->kind == DAV_K_COLL && dav_dead_get(c->q, c->res->folder.id, ns, name, ok)) {
        /* a dead property: stored as the whole element */
    } else if (d && dav_pdef_applies(d, c->res) && d->get(c, &v) && !v.oom) {
        dav_xml_open_el(ok, ns, name);
        if (v.len) {
            buf_puts(ok, ">");
            buf_put(ok, v.p, v.len);
            dav_xml_close_el(ok, ns, name);
        } else {
            buf_puts(ok, "/>");
        }
    } else {
        dav_xml_open_el(missing, ns, name);
        buf_puts(missing, "/>");
    }
    buf_free(&v);
}

static void dav_propstat(struct buf *b, struct buf *props, int status)
{
    if (!props->len)
        return;
    buf_puts(b, "<D:propstat><D:prop>");
    buf_put(b, props->p, props->len);
    buf_printf(b, "</D:prop><D:status>%s</D:status></D:propstat>", dav_status_line(status));
}

int dav_props_response(struct dav_req *q, const struct dav_res *res, const struct dav_pset *ps,
                       struct dav_parsed *parsed, struct buf *b)
{
    struct dav_pctx c = {q, res, ps, parsed};
    struct buf ok = {0}, missing = {0};
    size_t i;

    for (i = 0; ps->mode != DAV_PM_PROP && i < DAV_NPROPS; i++) {
        const struct dav_pdef *d = &dav_ptable[i];
        if (!dav_pdef_applies(d, res))
            continue;
        if (ps->mode == DAV_PM_PROPNAME) {
            dav_xml_open_el(&ok, d->ns, d->name);
            buf_puts(&ok, "/>");
        } else if (d->allprop) {
            dav_prop_one(&c, d->ns, d->name, &ok, &missing);
        }
    }
    if (ps->mode != DAV_PM_PROP && res->kind == DAV_K_COLL)
        dav_dead_all(q, res->folder.id, ps->mode == DAV_PM_PROPNAME, &ok);
    for (i = 0; i < ps->n; i++)
        dav_prop_one(&c, ps->p[i].ns, ps->p[i].name, &ok, &missing);
    dav_ms_response_open(b, res->href);
    if (!ok.len && (!missing.len || q->minimal))
        buf_puts(&ok, " "); /* a response always carries a propstat */
    dav_propstat(b, &ok, 200);
    /* allprop lists only what exists: a getter with nothing to say is left out there. */
    if ((ps->mode != DAV_PM_ALLPROP || ps->n) && !q->minimal)
        dav_propstat(b, &missing, 404);
    dav_ms_response_close(b);
    buf_free(&ok);
    buf_free(&missing);
    return b->oom ? -1 : 0;
}
