/*
 * dav_report_multiget.c — calendar-multiget (RFC 4791 §7.9) and addressbook-multiget
 * (RFC 6352 §8.7): the requested properties of each listed href, answered under the href
 * exactly as the client wrote it; hrefs that name nothing of this user in this space get
 * a 404 response of their own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dav/dav_int.h"

/* An href as sent (absolute URL or path) → a decoded path in out; -1 when unusable. */
static int dav_href_to_path(const char *href, char *out, size_t outlen)
{
    const char *p = href;

    if (strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0) {
        p = strchr(p + (p[4] == ':' ? 7 : 8), '/');
        if (!p)
            return -1;
    }
    if (*p != '/' || strlen(p) >= outlen)
        return -1;
    strcpy(out, p);
    if (strchr(out, '?'))
        *strchr(out, '?') = '\0';
    return dav_pct_decode(out);
}

static void dav_multiget_one(struct dav_req *q, const struct dav_pset *ps, const char *href,
                             struct buf *b)
{
    char path[DAV_HREF_MAX];
    struct dav_res r;
    struct dav_parsed parsed = {0};

    if (dav_href_to_path(href, path, sizeof(path)) != 0 || dav_resolve(q, path, &r) != 0 ||
        r.kind != DAV_K_ITEM || r.space != q->res.space) {
        dav_ms_status_response(b, href, 404);
        return;
    }
    /* Clients match the answers to their hrefs as strings: give theirs back. */
    snprintf(r.href, sizeof(r.href), "%s", href);
    dav_props_response(q, &r, ps, &parsed, b);
    dav_parsed_free(&parsed);
}

void dav_report_multiget(struct dav_req *q, xmlNodePtr root)
{
    struct dav_pset ps = {0};
    struct buf b = {0};
    xmlNodePtr c;
    size_t n = 0;

    if (dav_report_pset(root, &ps) != 0) {
        dav_send_pset_error(q, &ps);
        goto out;
    }
    dav_ms_open(&b);
    for (c = root->children; c; c = c->next) {
        char *href;
        if (!dav_xml_is(c, NS_DAV, "href"))
            continue;
        if (++n > DAV_MULTIGET_MAX) {
            buf_free(&b);
            dav_send_status(q, 400);
            goto out;
        }
        href = dav_xml_text(c);
        if (href)
            dav_multiget_one(q, &ps, href, &b);
        free(href);
    }
    dav_ms_close(&b);
    dav_send_ms(q, &b);
out:
    dav_pset_free(&ps);
}
