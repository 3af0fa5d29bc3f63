/*
 * dav_method_delete.c — DELETE of an item (If-Match honoured) or of a collection the
 * user made, with its time zone and dead properties. Default collections (the folders
 * with a role: Calendar, Contacts, Tasks, Notes) refuse with 403: ActiveSync and every
 * client expect them to exist. A home, the root and the principal cannot be deleted
 * either.
 */
#include <inttypes.h>
#include <stdio.h>

#include "dav/dav_int.h"

static void dav_delete_item(struct dav_req *q)
{
    struct store_err e;
    int rc = dav_preconditions(q, &q->res.item);

    if (rc) {
        dav_send_status(q, rc);
        return;
    }
    rc = store_item_delete(q->u, q->res.item.id, &e);
    if (rc == STORE_ENOTFOUND) {
        dav_send_status(q, 404);
        return;
    }
    dav_send_status(q, rc == 0 ? 204 : 500);
}

static void dav_delete_coll(struct dav_req *q)
{
    struct store_err e;
    char key[32];
    int rc;

    if (q->res.folder.role != STORE_ROLE_NONE) {
        dav_send_status(q, 403);
        return;
    }
    if (store_txn_begin(q->u, &e) != 0)
        goto fail;
    snprintf(key, sizeof(key), "%" PRId64, q->res.folder.id);
    rc = store_state_del(q->u, "dav.tz", key, &e);
    if ((rc != 0 && rc != STORE_ENOTFOUND) || dav_dead_drop(q, q->res.folder.id) != 0 ||
        store_folder_delete(q->u, q->res.folder.id, &e) != 0) {
        store_txn_rollback(q->u);
        goto fail;
    }
    if (store_txn_commit(q->u, NULL, &e) != 0)
        goto fail;
    dav_send_status(q, 204);
    return;
fail:
    log_warn("dav", "deleting collection %" PRId64 " failed: %s", q->res.folder.id, e.msg);
    dav_send_status(q, 500);
}

void dav_method_delete(struct dav_req *q)
{
    switch (q->res.kind) {
    case DAV_K_ITEM:
        dav_delete_item(q);
        break;
    case DAV_K_COLL:
        dav_delete_coll(q);
        break;
    case DAV_K_ROOT:
    case DAV_K_HOME:
    case DAV_K_PRINCIPAL:
        dav_send_status(q, 403);
        break;
    default:
        dav_send_status(q, 404);
        break;
    }
}
