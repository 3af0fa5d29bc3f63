/*
 * dav_method_copymove.c — COPY and MOVE (RFC 4918 §9.8, §9.9) of items between the
 * collections of one home and space (a calendar object cannot become a vCard), and MOVE
 * of a collection inside its home, which changes its URL segment only. Destination must
 * be on this server and in the user's own tree; Overwrite (default T) decides whether an
 * existing target is replaced (204) or the request fails (412). The target collection's
 * rules still apply: no UID conflicts, and the component must suit its class.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dav/dav_int.h"

/* Destination header → resolved resource; -1 when absent or not ours (already sent). */
static int dav_cm_dest(struct dav_req *q, struct dav_res *dst)
{
    const char *d = http_req_header(q->r, "Destination");
    char path[DAV_HREF_MAX];
    const char *p = d;

    if (!d) {
        dav_send_status(q, 400);
        return -1;
    }
    if (strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0) {
        p = strchr(p + (p[4] == ':' ? 7 : 8), '/');
        if (!p) {
            dav_send_status(q, 400);
            return -1;
        }
    }
    if (*p != '/' || strlen(p) >= sizeof(path)) {
        dav_send_status(q, 400);
        return -1;
    }
    strcpy(path, p);
    if (dav_pct_decode(path) != 0 || dav_resolve(q, path, dst) != 0) {
        dav_send_status(q, 400);
        return -1;
    }
    if (!dst->mine || dst->space != q->res.space) {
        dav_send_status(q, 502); /* RFC 4918 §9.8.5: a destination we cannot write */
        return -1;
    }
    return 0;
}

/* Checks the body fits the destination collection; 0 or the error sent. */
static int dav_cm_fits(struct dav_req *q, const struct dav_res *dst, const char *body, size_t len,
                       const struct store_item *replaced, char *uid, size_t uidlen)
{
    struct dav_ical *ic = NULL;
    struct store_item other;
    const char *precond;
    char err[128], href[DAV_HREF_MAX];
    int rc = 0;

    uid[0] = '\0';
    if (q->res.space == DAV_SPACE_CAL) {
        if (dav_ical_parse(body, len, &ic, &precond, err, sizeof(err)) == 0) {
            if (!(dav_ical_kind(ic) & dav_class_comps(dst->folder.cls))) {
                dav_send_error(q, 403, NS_CAL, "supported-calendar-component", NULL);
                rc = -1;
            }
            snprintf(uid, uidlen, "%s", dav_ical_uid(ic));
            dav_ical_free(ic);
        }
    }
    if (rc == 0 && !uid[0])
        snprintf(uid, uidlen, "%s", q->res.item.ext_uid);
    if (rc == 0 && uid[0] && store_item_by_ext_uid(q->u, dst->folder.id, uid, &other) == 0 &&
        other.id != q->res.item.id && (!replaced || other.id != replaced->id)) {
        dav_item_href(q, dst->space, &dst->folder, &other, href, sizeof(href));
        dav_send_error(q, 403, q->res.space == DAV_SPACE_CAL ? NS_CAL : NS_CARD, "no-uid-conflict",
                       href);
        rc = -1;
    }
    return rc;
}

/* The copy or move of one item; 0 with the status to send, or -1 when sent. */
static int dav_cm_item(struct dav_req *q, const struct dav_res *dst, int move)
{
    const struct store_item *src = &q->res.item;
    const struct store_item *old = dst->kind == DAV_K_ITEM ? &dst->item : NULL;
    struct store_item_new in = {0};
    struct store_item out;
    struct store_err e;
    char *body = NULL, uid[256];
    size_t len = 0;
    int rc = -2;

    if (store_item_body(q->u, src->id, &body, &len, &e) != 0)
        goto out;
    if (dav_cm_fits(q, dst, body, len, old, uid, sizeof(uid)) != 0) {
        rc = -1;
        goto out;
    }
    in.body = body;
    in.body_len = len;
    in.ctype = src->ctype;
    in.name = dst->name;
    in.ext_uid = uid[0] ? uid : NULL;
    if (store_txn_begin(q->u, &e) != 0)
        goto out;
    if ((old && store_item_delete(q->u, old->id, &e) != 0) ||
        store_item_add(q->u, dst->folder.id, &in, &out, &e) != 0 ||
        (q->res.space == DAV_SPACE_CAL && store_item_set_ranges(q->u, out.id, NULL, 0, 0, &e) != 0))
        goto fail;
    if (move && store_item_delete(q->u, src->id, &e) != 0)
        goto fail;
    if (store_txn_commit(q->u, NULL, &e) != 0)
        goto out;
    rc = old ? 204 : 201;
    goto out;
fail:
    store_txn_rollback(q->u);
out:
    free(body);
    return rc;
}

/* The new item's occurrence index: re-derived from its body (copies are new items). */
static void dav_cm_reindex(struct dav_req *q, const struct dav_res *dst)
{
    struct dav_res r;
    struct dav_parsed p = {0};
    struct store_err e;
    char path[DAV_HREF_MAX];

    if (q->res.space != DAV_SPACE_CAL)
        return;
    snprintf(path, sizeof(path), "%s", dst->href);
    if (dav_pct_decode(path) != 0 || dav_resolve(q, path, &r) != 0 || r.kind != DAV_K_ITEM)
        return;
    if (dav_parse_item(q, DAV_SPACE_CAL, &r.item, &p) == 0 && store_txn_begin(q->u, &e) == 0) {
        if (dav_index_item(q, r.item.id, p.ical, time(NULL) + DAV_HORIZON_SECS) != 0 ||
            store_txn_commit(q->u, NULL, &e) != 0)
            store_txn_rollback(q->u);
    }
    dav_parsed_free(&p);
}

/* MOVE of a collection to a new segment in the same home. */
static void dav_cm_coll(struct dav_req *q, const struct dav_res *dst)
{
    struct store_folder f = q->res.folder;
    struct store_err e;

    if (dst->kind != DAV_K_NEWCOLL) {
        dav_send_status(q, dst->kind == DAV_K_COLL ? 412 : 409);
        return;
    }
    if (dav_fprop_set(f.props, sizeof(f.props), "seg", dst->name) != 0 ||
        store_folder_set_props(q->u, f.id, f.props, &e) != 0) {
        dav_send_status(q, 500);
        return;
    }
    dav_send_status(q, 201);
}

void dav_method_copymove(struct dav_req *q)
{
    int move = strcmp(q->method, "MOVE") == 0;
    const char *ow = http_req_header(q->r, "Overwrite");
    struct dav_res dst;
    int rc;

    if (q->res.kind != DAV_K_ITEM && !(move && q->res.kind == DAV_K_COLL)) {
        dav_send_status(q, q->res.kind == DAV_K_NONE || q->res.kind == DAV_K_NEWITEM ||
                                   q->res.kind == DAV_K_NEWCOLL
                               ? 404
                               : 403);
        return;
    }
    if (dav_cm_dest(q, &dst) != 0)
        return;
    if (q->res.kind == DAV_K_COLL) {
        dav_cm_coll(q, &dst);
        return;
    }
    if (dst.kind == DAV_K_ITEM && dst.item.id == q->res.item.id) {
        dav_send_status(q, 403); /* source and destination are the same resource */
        return;
    }
    if (dst.kind == DAV_K_ITEM && ow && (ow[0] == 'F' || ow[0] == 'f')) {
        dav_send_status(q, 412);
        return;
    }
    if (dst.kind != DAV_K_ITEM && dst.kind != DAV_K_NEWITEM) {
        dav_send_status(q, 409);
        return;
    }
    rc = dav_cm_item(q, &dst, move);
    if (rc == -1)
        return;
    if (rc < 0) {
        dav_send_status(q, 500);
        return;
    }
    dav_cm_reindex(q, &dst);
    if (rc == 201) {
        http_add_header(q->r, "Location", dst.href);
        http_respond(q->r, 201, NULL, "", 0);
    } else {
        dav_send_status(q, 204);
    }
}
