/*
 * dav_method_report.c — REPORT (RFC 3253 §3.6): reads the body safely and hands it to
 * the report its root element names. Reports we do not implement answer 403
 * supported-report, as RFC 3253 §3.6 asks. Also the helpers the reports share.
 */
#include <stdlib.h>
#include <string.h>

#include "dav/dav_int.h"

#define DAV_ITEMS_MAX 200000 /* items one report may collect */

int dav_items_cb(const struct store_item *it, void *ctx)
{
    struct dav_items *a = ctx;

    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        struct store_item *v;
        if (cap > DAV_ITEMS_MAX)
            return -1;
        v = realloc(a->v, cap * sizeof(*v));
        if (!v)
            return -1;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = *it;
    return 0;
}

void dav_items_free(struct dav_items *a)
{
    free(a->v);
    memset(a, 0, sizeof(*a));
}

int dav_item_response(struct dav_req *q, enum dav_space sp, const struct store_folder *f,
                      const struct store_item *it, const struct dav_pset *ps,
                      struct dav_parsed *parsed, struct buf *b)
{
    struct dav_res res;

    memset(&res, 0, sizeof(res));
    res.space = sp;
    res.kind = DAV_K_ITEM;
    res.mine = 1;
    res.folder = *f;
    res.item = *it;
    dav_item_href(q, sp, f, it, res.href, sizeof(res.href));
    return dav_props_response(q, &res, ps, parsed, b);
}

int dav_report_pset(xmlNodePtr root, struct dav_pset *ps)
{
    ps->mode = DAV_PM_PROP;
    return dav_pset_from_prop(dav_xml_child(root, NS_DAV, "prop"), ps);
}

static const struct {
    const char *ns, *name;
    enum dav_space space; /* 0: any */
    void (*fn)(struct dav_req *q, xmlNodePtr root);
} dav_reports[] = {
    {NS_CAL, "calendar-query", DAV_SPACE_CAL, dav_report_calendar_query},
    {NS_CAL, "calendar-multiget", DAV_SPACE_CAL, dav_report_multiget},
    {NS_CAL, "free-busy-query", DAV_SPACE_CAL, dav_report_freebusy},
    {NS_CARD, "addressbook-query", DAV_SPACE_CARD, dav_report_addressbook_query},
    {NS_CARD, "addressbook-multiget", DAV_SPACE_CARD, dav_report_multiget},
    {NS_DAV, "sync-collection", 0, dav_report_sync},
    {NS_DAV, "expand-property", 0, dav_report_expand},
};

void dav_method_report(struct dav_req *q)
{
    xmlDocPtr doc;
    xmlNodePtr root;
    size_t i;

    if (q->res.kind == DAV_K_NONE || q->res.kind == DAV_K_NEWITEM || q->res.kind == DAV_K_NEWCOLL) {
        dav_send_status(q, 404);
        return;
    }
    doc = dav_xml_parse(q->body, q->body_len);
    if (!doc) {
        dav_send_status(q, 400);
        return;
    }
    root = xmlDocGetRootElement(doc);
    for (i = 0; i < sizeof(dav_reports) / sizeof(dav_reports[0]); i++) {
        if (!dav_xml_is(root, dav_reports[i].ns, dav_reports[i].name))
            continue;
        if (dav_reports[i].space && dav_reports[i].space != q->res.space)
            break;
        dav_reports[i].fn(q, root);
        xmlFreeDoc(doc);
        return;
    }
    dav_send_error(q, 403, NS_DAV, "supported-report", NULL);
    xmlFreeDoc(doc);
}
