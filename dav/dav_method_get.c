/*
 * dav_method_get.c — GET and HEAD of a calendar object or vCard: the stored bytes with
 * their strong ETag and Last-Modified. A vCard is converted when the client asks for the
 * other version (Accept: text/vcard;version=4.0, RFC 6352 §6.3.2.1 / RFC 6350); else it
 * is served as it was stored. Collections are not readable with GET (405).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dav/dav_int.h"

/* The vCard version the Accept header asks for: 3, 4 or 0 (no preference). */
static int dav_get_wanted_version(struct dav_req *q)
{
    const char *a = http_req_header(q->r, "Accept");

    if (!a || !strstr(a, "vcard"))
        return 0;
    if (strstr(a, "version=4.0") || strstr(a, "version=\"4.0\""))
        return 4;
    if (strstr(a, "version=3.0") || strstr(a, "version=\"3.0\""))
        return 3;
    return 0;
}

static void dav_get_headers(struct dav_req *q)
{
    char etag[64], lm[64];
    struct tm tm;
    time_t mt = (time_t)q->res.item.mtime;

    dav_etag(&q->res.item, etag, sizeof(etag));
    http_add_header(q->r, "ETag", etag);
    if (gmtime_r(&mt, &tm) && strftime(lm, sizeof(lm), "%a, %d %b %Y %H:%M:%S GMT", &tm))
        http_add_header(q->r, "Last-Modified", lm);
}

void dav_method_get(struct dav_req *q)
{
    struct dav_parsed p = {0};
    struct store_err e;
    const char *ctype;
    char *conv = NULL;
    size_t conv_len = 0;
    int want;

    if (q->res.kind != DAV_K_ITEM) {
        if (q->res.kind == DAV_K_NONE || q->res.kind == DAV_K_NEWITEM ||
            q->res.kind == DAV_K_NEWCOLL) {
            dav_send_status(q, 404);
            return;
        }
        http_add_header(q->r, "Allow", "OPTIONS, PROPFIND, PROPPATCH, REPORT, DELETE");
        dav_send_status(q, 405);
        return;
    }
    if (store_item_body(q->u, q->res.item.id, &p.body, &p.body_len, &e) != 0) {
        dav_send_status(q, 500);
        return;
    }
    want = q->res.space == DAV_SPACE_CARD ? dav_get_wanted_version(q) : 0;
    if (want && dav_parse_item(q, DAV_SPACE_CARD, &q->res.item, &p) == 0 &&
        dav_vcard_version(p.vcard) != want)
        conv = dav_vcard_convert(p.vcard, want, &conv_len);
    ctype = q->res.space == DAV_SPACE_CARD ? "text/vcard; charset=utf-8"
                                           : "text/calendar; charset=utf-8";
    if (conv) {
        ctype = want == 4 ? "text/vcard; charset=utf-8; version=4.0"
                          : "text/vcard; charset=utf-8; version=3.0";
    } else {
        /* Converted output is not the stored entity: no strong ETag for it. */
        dav_get_headers(q);
    }
    http_respond(q->r, 200, ctype, conv ? conv : p.body, conv ? conv_len : p.body_len);
    free(conv);
    dav_parsed_free(&p);
}
