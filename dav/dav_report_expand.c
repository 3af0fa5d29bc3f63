/*
 * dav_report_expand.c — expand-property (RFC 3253 §3.8), which Apple clients use on the
 * principal: each named property of the request-URI is returned, and where it holds
 * hrefs and the request names properties inside it, each href is replaced by a response
 * for that resource with those properties (recursively, a few levels deep). Hrefs that
 * name nothing of this user (a mailto:, another user's path) come back as a 404 response.
 */
#include <stdlib.h>
#include <string.h>

#include "dav/dav_int.h"

#define DAV_EXPAND_DEPTH 3

static void dav_expand_res(struct dav_req *q, const struct dav_res *res, xmlNodePtr spec,
                           struct buf *b, int depth);

/* {ns}name of a <D:property name=".." namespace=".."/> (namespace defaults to DAV:). */
static int dav_expand_name(xmlNodePtr p, char *ns, size_t nslen, char *name, size_t namelen)
{
    xmlChar *n = xmlGetProp(p, (const xmlChar *)"name");
    xmlChar *s = xmlGetProp(p, (const xmlChar *)"namespace");
    int ok = n && *n && strlen((char *)n) < namelen && (!s || strlen((char *)s) < nslen);

    if (ok) {
        strcpy(name, (char *)n);
        strcpy(ns, s ? (char *)s : NS_DAV);
    }
    xmlFree(n);
    xmlFree(s);
    return ok;
}

/* Replaces each <D:href>X</D:href> of a value by the response for X. */
static void dav_expand_hrefs(struct dav_req *q, const char *val, xmlNodePtr spec, struct buf *b,
                             int depth)
{
    const char *p = val, *s, *e;
    char path[DAV_HREF_MAX];
    struct dav_res r;

    while ((s = strstr(p, "<D:href>")) && (e = strstr(s, "</D:href>"))) {
        size_t n = (size_t)(e - s - 8);
        p = e + 9;
        if (n >= sizeof(path))
            continue;
        memcpy(path, s + 8, n);
        path[n] = '\0';
        /* our own hrefs carry no XML entities: they are percent-encoded */
        if (path[0] == '/' && dav_pct_decode(path) == 0 && dav_resolve(q, path, &r) == 0 &&
            r.kind != DAV_K_NONE && r.kind != DAV_K_NEWCOLL && r.kind != DAV_K_NEWITEM) {
            dav_expand_res(q, &r, spec, b, depth + 1);
        } else {
            memcpy(path, s + 8, n);
            path[n] = '\0';
            dav_ms_status_response(b, path, 404);
        }
    }
}

static void dav_expand_res(struct dav_req *q, const struct dav_res *res, xmlNodePtr spec,
                           struct buf *b, int depth)
{
    struct buf ok = {0}, missing = {0};
    char ns[256], name[128];
    xmlNodePtr p;

    for (p = spec->children; p; p = p->next) {
        struct buf v = {0};
        if (!dav_xml_is(p, NS_DAV, "property") ||
            !dav_expand_name(p, ns, sizeof(ns), name, sizeof(name)))
            continue;
        if (!dav_prop_value(q, res, ns, name, &v) || v.oom) {
            dav_xml_open_el(&missing, ns, name);
            buf_puts(&missing, "/>");
        } else {
            dav_xml_open_el(&ok, ns, name);
            buf_puts(&ok, ">");
            if (dav_xml_child(p, NS_DAV, "property") && depth < DAV_EXPAND_DEPTH)
                dav_expand_hrefs(q, v.p ? v.p : "", p, &ok, depth);
            else if (v.len)
                buf_put(&ok, v.p, v.len);
            dav_xml_close_el(&ok, ns, name);
        }
        buf_free(&v);
    }
    dav_ms_response_open(b, res->href);
    if (ok.len) {
        buf_puts(b, "<D:propstat><D:prop>");
        buf_put(b, ok.p, ok.len);
        buf_printf(b, "</D:prop><D:status>%s</D:status></D:propstat>", dav_status_line(200));
    }
    if (missing.len) {
        buf_puts(b, "<D:propstat><D:prop>");
        buf_put(b, missing.p, missing.len);
        buf_printf(b, "</D:prop><D:status>%s</D:status></D:propstat>", dav_status_line(404));
    }
    dav_ms_response_close(b);
    buf_free(&ok);
    buf_free(&missing);
}

void dav_report_expand(struct dav_req *q, xmlNodePtr root)
{
    struct buf b = {0};

    dav_ms_open(&b);
    dav_expand_res(q, &q->res, root, &b, 0);
    dav_ms_close(&b);
    dav_send_ms(q, &b);
}
