/*
 * dav_report_addressbook.c — addressbook-query (RFC 6352 §8.6): every card of the
 * collection that matches the filter, up to the client's <CR:limit>; a truncated answer
 * ends with a 507 response for the collection (number-of-matches-within-limits).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dav/dav_int.h"

void dav_report_addressbook_query(struct dav_req *q, xmlNodePtr root)
{
    struct dav_pset ps = {0};
    struct dav_vcard_filter *flt = NULL;
    struct dav_items a = {0};
    struct buf b = {0};
    struct store_err e;
    const char *precond = NULL;
    char err[256];
    long limit = dav_xml_limit(root, NS_CARD), found = 0;
    size_t i;

    if (q->res.kind != DAV_K_COLL) {
        dav_send_error(q, 403, NS_DAV, "supported-report", NULL);
        return;
    }
    if (limit < 0 || dav_report_pset(root, &ps) != 0) {
        dav_send_pset_error(q, &ps);
        goto out;
    }
    if (dav_vcard_filter_compile(dav_xml_child(root, NS_CARD, "filter"), &flt, &precond, err,
                                 sizeof(err)) != 0) {
        dav_send_error(q, 403, NS_CARD, precond ? precond : "supported-filter", NULL);
        goto out;
    }
    if (store_item_list(q->u, q->res.folder.id, 0, UINT32_MAX, dav_items_cb, &a, &e) != 0) {
        dav_send_status(q, 500);
        goto out;
    }
    dav_ms_open(&b);
    for (i = 0; i < a.n; i++) {
        struct dav_parsed p = {0};
        if (dav_parse_item(q, DAV_SPACE_CARD, &a.v[i], &p) == 0 &&
            dav_vcard_filter_match(flt, p.vcard) == 1) {
            if (limit && found == limit) {
                dav_ms_response_open(&b, q->res.href);
                buf_printf(&b,
                           "<D:status>%s</D:status><D:error>"
                           "<D:number-of-matches-within-limits/></D:error>",
                           dav_status_line(507));
                dav_ms_response_close(&b);
                dav_parsed_free(&p);
                break;
            }
            found++;
            dav_item_response(q, DAV_SPACE_CARD, &q->res.folder, &a.v[i], &ps, &p, &b);
        }
        dav_parsed_free(&p);
    }
    dav_ms_close(&b);
    dav_send_ms(q, &b);
out:
    if (flt)
        dav_vcard_filter_free(flt);
    dav_items_free(&a);
    dav_pset_free(&ps);
}
