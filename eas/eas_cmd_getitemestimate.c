/*
 * eas_cmd_getitemestimate.c — GetItemEstimate (MS-ASCMD 2.2.1.9): how many changes the
 * next Sync of each collection would send, counted from the same per-device state and
 * rules as Sync (eas_sync_state.c), without changing anything.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eas/eas_sync.h"

#define GIE_OK         1
#define GIE_BAD_COLL   2
#define GIE_NOT_PRIMED 3
#define GIE_BAD_KEY    4

/* Counts one collection; returns a Status and *estimate. */
static int eas_gie_count(struct eas_req *req, const struct eas_node *c, long *estimate)
{
    const char *id = eas_child_text(c, EAS_GETITEMESTIMATE_COLLECTIONID);
    const char *key = eas_child_text(c, EAS_AIRSYNC_SYNCKEY);
    const struct eas_node *opts = eas_child(c, EAS_AIRSYNC_OPTIONS);
    struct eas_sync_state st;
    struct store_folder f;
    long long filter;
    char *end;
    unsigned long k;
    int64_t now = time(NULL);
    int rc;

    if (eas_folder_lookup(req, id, &f) != STORE_OK)
        return GIE_BAD_COLL;
    if (!key)
        return GIE_BAD_KEY;
    k = strtoul(key, &end, 10);
    if (*end || !*key)
        return GIE_BAD_KEY;
    if (k == 0)
        return GIE_NOT_PRIMED;
    rc = eas_sync_state_load(req->u, req->device_id, f.id, &st);
    if (rc == STORE_ENOTFOUND) {
        eas_sync_state_free(&st);
        return GIE_NOT_PRIMED;
    }
    if (rc != STORE_OK || k != st.cur.key) {
        eas_sync_state_free(&st);
        return rc != STORE_OK ? GIE_BAD_COLL : GIE_BAD_KEY;
    }
    /* 12.x puts FilterType in the collection, 14.0+ in Options */
    filter = eas_child_int(opts ? opts : c, EAS_AIRSYNC_FILTERTYPE, st.opts.filter);
    if (filter < 0 || filter > 8)
        filter = st.opts.filter;
    rc = eas_snap_refresh(req->u, &st.cur, f.id, f.cls, (int)filter, now);
    *estimate = rc == STORE_OK ? eas_snap_estimate(req->u, &st.cur, f.id,
                                                   eas_filter_cutoff((int)filter, now), 0)
                               : -1;
    eas_sync_state_free(&st);
    return *estimate < 0 ? GIE_BAD_COLL : GIE_OK;
}

int eas_cmd_getitemestimate(struct eas_req *req)
{
    const struct eas_node *root = req->in ? eas_doc_root(req->in) : NULL, *colls, *c;
    struct eas_node *out;

    if (!(req->out = eas_doc_new()) ||
        !(out = eas_add(req->out, NULL, EAS_GETITEMESTIMATE_GETITEMESTIMATE)))
        goto oom;
    colls = root && root->tag == EAS_GETITEMESTIMATE_GETITEMESTIMATE
                ? eas_child(root, EAS_GETITEMESTIMATE_COLLECTIONS)
                : NULL;
    if (!colls || !eas_child(colls, EAS_GETITEMESTIMATE_COLLECTION)) {
        struct eas_node *r = eas_add(req->out, out, EAS_GETITEMESTIMATE_RESPONSE);
        eas_add_int(req->out, r, EAS_GETITEMESTIMATE_STATUS, GIE_BAD_COLL);
        return 0;
    }
    for (c = eas_child(colls, EAS_GETITEMESTIMATE_COLLECTION); c;
         c = eas_next(c, EAS_GETITEMESTIMATE_COLLECTION)) {
        struct eas_node *r = eas_add(req->out, out, EAS_GETITEMESTIMATE_RESPONSE), *rc;
        long estimate = 0;
        int status = eas_gie_count(req, c, &estimate);

        eas_add_int(req->out, r, EAS_GETITEMESTIMATE_STATUS, status);
        rc = eas_add(req->out, r, EAS_GETITEMESTIMATE_COLLECTION);
        eas_add_text(req->out, rc, EAS_GETITEMESTIMATE_COLLECTIONID,
                     eas_child_text(c, EAS_GETITEMESTIMATE_COLLECTIONID) ?: "");
        if (status == GIE_OK)
            eas_add_int(req->out, rc, EAS_GETITEMESTIMATE_ESTIMATE, estimate);
    }
    return 0;
oom:
    req->http_status = 500;
    return 0;
}
