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

/* Checks the body fits the destination collection; 0 or the error sent. *ic receives the
 * parsed calendar object (for its occurrence index), NULL for a vCard. */
static int dav_cm_fits(struct dav_req *q, const struct dav_res *dst, const char *body, size_t len,
                       const struct store_item *replaced, int move, struct dav_ical **ic)
{
    const char *uid = q->res.item.ext_uid, *precond;
    struct store_item other;
    char err[128], href[DAV_HREF_MAX];

    *ic = NULL;
    if (q->res.space == DAV_SPACE_CAL) {
        if (dav_ical_parse(body, len, ic, &precond, err, sizeof(err)) != 0) {
            dav_send_error(q, 403, NS_CAL, precond ? precond : "valid-calendar-data", NULL);
            return -1;
        }
        if (!(dav_ical_kind(*ic) & dav_class_comps(dst->folder.cls))) {
            dav_send_error(q, 403, NS_CAL, "supported-calendar-component", NULL);
            return -1;
        }
        uid = dav_ical_uid(*ic);
    }
    if (uid[0] && store_item_by_ext_uid(q->u, dst->folder.id, uid, &other) == 0 &&
        (!move || other.id != q->res.item.id) && (!replaced || other.id != replaced->id)) {
        dav_item_href(q, dst->space, &dst->folder, &other, href, sizeof(href));
        dav_send_error(q, 403, q->res.space == DAV_SPACE_CAL ? NS_CAL : NS_CARD, "no-uid-conflict",
                       href);
        return -1;
    }
    return 0;
}

/* The writes of a copy or move, in the caller's transaction: a new item at the
 * destination (replacing one there), its occurrence index, and for MOVE the source gone. */
static int dav_cm_write(struct dav_req *q, const struct dav_res *dst, int move,
                        const struct store_item_new *in, const struct dav_ical *ic)
{
    const struct store_item *old = dst->kind == DAV_K_ITEM ? &dst->item : NULL;
    struct store_item out;
    struct store_err e;

    if ((old && store_item_delete(q->u, old->id, &e) != 0) ||
        store_item_add(q->u, dst->folder.id, in, &out, &e) != 0)
        return -1;
    if (ic && dav_index_item(q, out.id, ic, time(NULL) + DAV_HORIZON_SECS) != 0)
        return -1;
    if (move && store_item_delete(q->u, q->res.item.id, &e) != 0)
        return -1;
    return 0;
}

/* The copy or move of one item; the status to send (201, 204), -1 when an error was
 * sent, -2 on failure. */
static int dav_cm_item(struct dav_req *q, const struct dav_res *dst, int move)
{
    const struct store_item *src = &q->res.item;
    struct store_item_new in = {0};
    struct dav_ical *ic = NULL;
    struct store_err e;
    char *body = NULL;
    size_t len = 0;
    int rc = -2;

    if (store_item_body(q->u, src->id, &body, &len, &e) != 0)
        goto out;
    if (dav_cm_fits(q, dst, body, len, dst->kind == DAV_K_ITEM ? &dst->item : NULL, move, &ic) !=
        0) {
        rc = -1;
        goto out;
    }
    in.body = body;
    in.body_len = len;
    in.ctype = src->ctype;
    in.name = dst->name;
    in.ext_uid = ic ? dav_ical_uid(ic) : (src->ext_uid[0] ? src->ext_uid : NULL);
    if (store_txn_begin(q->u, &e) != 0)
        goto out;
    if (dav_cm_write(q, dst, move, &in, ic) != 0) {
        store_txn_rollback(q->u);
        goto out;
    }
    if (store_txn_commit(q->u, NULL, &e) == 0)
        rc = dst->kind == DAV_K_ITEM ? 204 : 201;
out:
    if (ic)
        dav_ical_free(ic);
    free(body);
    return rc;
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
    if (rc == 201) {
        http_add_header(q->r, "Location", dst.href);
        http_respond(q->r, 201, NULL, "", 0);
    } else {
        dav_send_status(q, 204);
    }
}
