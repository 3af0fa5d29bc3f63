/*
 * dav_report_calendar.c — calendar-query (RFC 4791 §7.8) and free-busy-query (§7.10).
 *
 * When the filter implies a time range, candidates come from the store's occurrence
 * index (store_item_range_query) instead of the whole collection. Items whose index
 * stops before the end of the range (open-ended rules indexed up to a horizon) are
 * re-expanded up to a horizon past the query and their index extended, so the next query
 * over that range reads the index alone. The filter itself (dav_ical_filter_match) then
 * decides, with recurrences and time zones applied.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dav/dav_int.h"

/* Candidates of a report over the target: one item, the index window, or everything. */
static int dav_cal_candidates(struct dav_req *q, int windowed, int64_t start, int64_t end,
                              struct dav_items *a)
{
    struct store_err e;

    if (q->res.kind == DAV_K_ITEM)
        return dav_items_cb(&q->res.item, a);
    if (windowed)
        return store_item_range_query(q->u, q->res.folder.id, start, end, dav_items_cb, a, &e);
    return store_item_list(q->u, q->res.folder.id, 0, UINT32_MAX, dav_items_cb, a, &e);
}

/* Up to when an item's index is complete; 0 when it has none. Candidates from the index
 * came with it (store_item_range_query); another item costs a lookup. */
static int64_t dav_cal_until(struct dav_req *q, const struct store_item *it)
{
    int64_t until = 0;
    struct store_err e;

    if (it->index_until)
        return it->index_until;
    return store_item_index_until(q->u, it->id, &until, &e) == 0 ? until : 0;
}

/* Extends an item's index when it is incomplete before end. Failures only cost speed. */
static void dav_cal_reindex(struct dav_req *q, const struct store_item *it,
                            const struct dav_ical *c, int64_t end)
{
    struct store_err e;

    if (dav_cal_until(q, it) >= end)
        return;
    if (store_txn_begin(q->u, &e) != 0)
        return;
    if (dav_index_item(q, it->id, c,
                       end > INT64_MAX - DAV_HORIZON_SECS ? INT64_MAX : end + DAV_HORIZON_SECS) !=
            0 ||
        store_txn_commit(q->u, NULL, &e) != 0)
        store_txn_rollback(q->u);
}

static int dav_cal_target_ok(struct dav_req *q)
{
    if (q->res.kind == DAV_K_COLL || q->res.kind == DAV_K_ITEM)
        return 1;
    dav_send_error(q, 403, NS_DAV, "supported-report", NULL);
    return 0;
}

void dav_report_calendar_query(struct dav_req *q, xmlNodePtr root)
{
    struct dav_pset ps = {0};
    struct dav_ical_filter *flt = NULL;
    struct dav_items a = {0};
    struct buf b = {0};
    const char *precond = NULL;
    char err[256];
    int64_t start = 0, end = 0;
    int windowed, simple;
    unsigned kind = 0;
    size_t i;

    if (!dav_cal_target_ok(q))
        return;
    if (dav_report_pset(root, &ps) != 0) {
        dav_send_pset_error(q, &ps);
        goto out;
    }
    if (dav_ical_filter_compile(dav_xml_child(root, NS_CAL, "filter"), &flt, &precond, err,
                                sizeof(err)) != 0) {
        dav_send_error(q, 403, NS_CAL, precond ? precond : "valid-filter", NULL);
        goto out;
    }
    windowed = dav_ical_filter_window(flt, &start, &end);
    /* The common query (events in a window, etags or data as stored): the index is the
     * answer for items it covers completely, without parsing a single resource. */
    simple = windowed && q->res.kind == DAV_K_COLL && dav_ical_filter_simple(flt, &kind) &&
             kind == dav_class_comps(q->res.folder.cls); /* holds that kind only */
    if (dav_cal_candidates(q, windowed, start, end, &a) != 0) {
        dav_send_status(q, 500);
        goto out;
    }
    dav_ms_open(&b);
    for (i = 0; i < a.n; i++) {
        struct dav_parsed p = {0};
        if (simple && dav_cal_until(q, &a.v[i]) >= end) {
            dav_item_response(q, DAV_SPACE_CAL, &q->res.folder, &a.v[i], &ps, &p, &b);
        } else if (dav_parse_item(q, DAV_SPACE_CAL, &a.v[i], &p) == 0) {
            if (windowed)
                dav_cal_reindex(q, &a.v[i], p.ical, end);
            if (dav_ical_filter_match(flt, p.ical) == 1)
                dav_item_response(q, DAV_SPACE_CAL, &q->res.folder, &a.v[i], &ps, &p, &b);
        }
        dav_parsed_free(&p);
    }
    dav_ms_close(&b);
    dav_send_ms(q, &b);
out:
    if (flt)
        dav_ical_filter_free(flt);
    dav_items_free(&a);
    dav_pset_free(&ps);
}

static int dav_fb_range(xmlNodePtr root, int64_t *start, int64_t *end)
{
    xmlNodePtr tr = dav_xml_child(root, NS_CAL, "time-range");
    xmlChar *s, *e;
    int rc = -1;

    if (!tr)
        return -1;
    s = xmlGetProp(tr, (const xmlChar *)"start");
    e = xmlGetProp(tr, (const xmlChar *)"end");
    if (s && dav_ical_parse_utc((const char *)s, start) == 0) {
        if (!e)
            *end = INT64_MAX;
        if (!e || dav_ical_parse_utc((const char *)e, end) == 0)
            rc = *end > *start ? 0 : -1;
    }
    xmlFree(s);
    xmlFree(e);
    return rc;
}

void dav_report_freebusy(struct dav_req *q, xmlNodePtr root)
{
    struct dav_items a = {0};
    struct dav_ical_fb *fb = NULL;
    int64_t start = 0, end = 0;
    char *out = NULL;
    size_t i, len = 0;

    if (!dav_cal_target_ok(q))
        return;
    if (dav_fb_range(root, &start, &end) != 0) {
        dav_send_status(q, 400);
        return;
    }
    fb = dav_ical_fb_new(start, end);
    if (!fb || dav_cal_candidates(q, 1, start, end, &a) != 0) {
        dav_send_status(q, 500);
        goto out;
    }
    for (i = 0; i < a.n; i++) {
        struct dav_parsed p = {0};
        if (dav_parse_item(q, DAV_SPACE_CAL, &a.v[i], &p) == 0) {
            dav_cal_reindex(q, &a.v[i], p.ical, end);
            dav_ical_fb_add(fb, p.ical);
        }
        dav_parsed_free(&p);
    }
    out = dav_ical_fb_render(fb, &len);
    if (!out)
        dav_send_status(q, 500);
    else
        http_respond(q->r, 200, "text/calendar; charset=utf-8", out, len);
out:
    free(out);
    if (fb)
        dav_ical_fb_free(fb);
    dav_items_free(&a);
}
