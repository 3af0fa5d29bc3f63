/*
 * eas_cmd_moveitems.c — MoveItems (MS-ASCMD 2.2.1.12): a real move in the store (same
 * item id, a new UID in the target folder; IMAP sees a move), with the device's sync
 * state of both folders updated in the same transaction, so the next Sync neither deletes
 * the item from the source again nor adds it to the target a second time.
 */
#include <stdio.h>
#include <string.h>

#include "eas/eas_sync.h"

#define MOVE_BAD_SOURCE 1
#define MOVE_BAD_DEST   2
#define MOVE_OK         3
#define MOVE_SAME       4
#define MOVE_FAILED     5

#define EAS_MOVE_MAX 1000 /* moves per request */

/* The device already knows where the item is: record it in both folders' states. */
static int eas_move_states(struct eas_req *req, int64_t src, const struct store_item *it)
{
    struct eas_sync_state st;
    int rc;

    rc = eas_sync_state_load(req->u, req->device_id, src, &st);
    if (rc == STORE_OK) {
        eas_snap_unhold(&st.cur, it->id);
        rc = eas_sync_state_save(req->u, req->device_id, &st);
    }
    eas_sync_state_free(&st);
    if (rc != STORE_OK && rc != STORE_ENOTFOUND)
        return rc;
    rc = eas_sync_state_load(req->u, req->device_id, it->folder_id, &st);
    if (rc == STORE_OK && st.cur.key) {
        eas_snap_hold(&st.cur, it->id, it->modseq, it->idate);
        rc = eas_sync_state_save(req->u, req->device_id, &st);
    }
    eas_sync_state_free(&st);
    return rc == STORE_ENOTFOUND ? STORE_OK : rc;
}

static int eas_move_one(struct eas_req *req, const struct eas_node *m, char *dst_id, size_t dstlen)
{
    const char *sid = eas_child_text(m, EAS_MOVE_SRCMSGID);
    struct store_folder sf, df;
    struct store_item it, moved;
    int64_t fid, iid;
    int rc;

    if (!sid || eas_parse_server_id(sid, &fid, &iid) < 0 ||
        eas_folder_lookup(req, eas_child_text(m, EAS_MOVE_SRCFLDID), &sf) != STORE_OK ||
        fid != sf.id || store_item_get(req->u, iid, &it, NULL) != STORE_OK || it.folder_id != sf.id)
        return MOVE_BAD_SOURCE;
    if (eas_folder_lookup(req, eas_child_text(m, EAS_MOVE_DSTFLDID), &df) != STORE_OK)
        return MOVE_BAD_DEST;
    if (df.id == sf.id)
        return MOVE_SAME;
    if (df.cls != sf.cls)
        return MOVE_BAD_DEST;
    if (store_txn_begin(req->u, NULL) != STORE_OK)
        return MOVE_FAILED;
    rc = store_item_move(req->u, it.id, df.id, &moved, NULL);
    if (rc == STORE_OK)
        rc = eas_move_states(req, sf.id, &moved);
    if (rc != STORE_OK) {
        store_txn_rollback(req->u);
        return MOVE_FAILED;
    }
    if (store_txn_commit(req->u, NULL, NULL) != STORE_OK)
        return MOVE_FAILED;
    eas_server_id(dst_id, dstlen, df.id, moved.id);
    return MOVE_OK;
}

int eas_cmd_moveitems(struct eas_req *req)
{
    const struct eas_node *root = req->in ? eas_doc_root(req->in) : NULL, *m;
    struct eas_node *out;
    int n = 0;

    if (!root || root->tag != EAS_MOVE_MOVEITEMS || !eas_child(root, EAS_MOVE_MOVE)) {
        req->http_status = 400;
        return 0;
    }
    if (!(req->out = eas_doc_new()) || !(out = eas_add(req->out, NULL, EAS_MOVE_MOVEITEMS))) {
        req->http_status = 500;
        return 0;
    }
    for (m = eas_child(root, EAS_MOVE_MOVE); m && n < EAS_MOVE_MAX;
         m = eas_next(m, EAS_MOVE_MOVE), n++) {
        char dst[48] = "";
        int status = eas_move_one(req, m, dst, sizeof(dst));
        struct eas_node *r = eas_add(req->out, out, EAS_MOVE_RESPONSE);

        eas_add_text(req->out, r, EAS_MOVE_SRCMSGID, eas_child_text(m, EAS_MOVE_SRCMSGID) ?: "");
        eas_add_int(req->out, r, EAS_MOVE_STATUS, status);
        if (status == MOVE_OK)
            eas_add_text(req->out, r, EAS_MOVE_DSTMSGID, dst);
    }
    return 0;
}
