/*
 * eas_cmd_folder.c — FolderCreate, FolderUpdate and FolderDelete (MS-ASCMD 2.2.1.3,
 * 2.2.1.6, 2.2.1.4): changes to the folder hierarchy made by the device.
 *
 * Each carries the device's hierarchy SyncKey, which must be its current one (Status 9
 * otherwise, as for FolderSync). The change is made in the store first; then the device's
 * view (eas_hier_apply) takes the change it made, and only that, under a new key, which
 * the answer carries: anything else that changed meanwhile still comes with the next
 * FolderSync. Default folders (those with a role) can be neither renamed, moved nor
 * deleted (Status 3).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eas/eas_int.h"

/* Status values shared by the three commands (MS-ASCMD 2.2.3.177.3/.5/.6). */
enum {
    FOLDER_OK = 1,
    FOLDER_EXISTS = 2,
    FOLDER_SPECIAL = 3,
    FOLDER_NOT_FOUND = 4,
    FOLDER_PARENT_NOT_FOUND = 5,
    FOLDER_SERVER_ERROR = 6,
    FOLDER_BAD_KEY = 9,
    FOLDER_MALFORMED = 10,
};

/* The answer: <root><Status/>[<SyncKey/>][<ServerId/>]</root>. */
static int eas_folder_answer(struct eas_req *req, unsigned root_tag, int status, uint32_t key,
                             int64_t server_id)
{
    struct eas_node *root;
    char txt[24];

    eas_doc_free(req->out);
    req->out = eas_doc_new();
    root = req->out ? eas_add(req->out, NULL, root_tag) : NULL;
    if (!root || !eas_add_int(req->out, root, EAS_FOLDERHIERARCHY_STATUS, status))
        return -1;
    if (status != FOLDER_OK)
        return 0;
    snprintf(txt, sizeof(txt), "%u", key);
    if (!eas_add_text(req->out, root, EAS_FOLDERHIERARCHY_SYNCKEY, txt))
        return -1;
    if (server_id > 0) {
        snprintf(txt, sizeof(txt), "%lld", (long long)server_id);
        if (!eas_add_text(req->out, root, EAS_FOLDERHIERARCHY_SERVERID, txt))
            return -1;
    }
    return 0;
}

/* Reads the request root and checks its SyncKey against the device's hierarchy state.
 * Returns 0 with h loaded, or the Status to answer. */
static int eas_folder_begin(struct eas_req *req, unsigned root_tag, const struct eas_node **root,
                            struct eas_hstate *h)
{
    uint32_t key;

    memset(h, 0, sizeof(*h));
    *root = req->in ? eas_doc_root(req->in) : NULL;
    if (!*root || (*root)->tag != root_tag)
        return FOLDER_MALFORMED;
    if (eas_hier_parse_key(eas_child_text(*root, EAS_FOLDERHIERARCHY_SYNCKEY), &key) != 0)
        return FOLDER_MALFORMED;
    if (eas_hier_load(req->u, req->device_id, h) != STORE_OK)
        return FOLDER_SERVER_ERROR;
    if (key == 0 || key != h->key) {
        eas_hier_free(h);
        return FOLDER_BAD_KEY;
    }
    return 0;
}

/* A store failure as the command's Status. */
static int eas_folder_store_status(int rc)
{
    switch (rc) {
    case STORE_EEXIST:
        return FOLDER_EXISTS;
    case STORE_ENOTFOUND:
        return FOLDER_NOT_FOUND;
    case STORE_EINVAL:
        return FOLDER_MALFORMED;
    default:
        return FOLDER_SERVER_ERROR;
    }
}

/* The parent named by ParentId: "0" is the top level. Returns 0 or a Status. */
static int eas_folder_parent(struct eas_req *req, const struct eas_node *root, int64_t *parent)
{
    struct store_folder pf;

    if (eas_parse_folder_id(eas_child_text(root, EAS_FOLDERHIERARCHY_PARENTID), parent) != 0)
        return FOLDER_MALFORMED;
    if (*parent == 0)
        return 0;
    if (store_folder_get(req->u, *parent, &pf, NULL) != STORE_OK || !eas_folder_type(&pf))
        return FOLDER_PARENT_NOT_FOUND;
    return 0;
}

/* Records the device's own change and answers with the new key. */
static int eas_folder_commit(struct eas_req *req, unsigned root_tag, struct eas_hstate *h,
                             int64_t id, int remove, int64_t answer_id)
{
    struct eas_hfolder f = {.id = id};
    struct store_folder sf;
    int rc;

    if (!remove) {
        if (store_folder_get(req->u, id, &sf, NULL) != STORE_OK)
            return eas_folder_answer(req, root_tag, FOLDER_SERVER_ERROR, 0, 0);
        f.parent = sf.parent_id;
        f.type = eas_folder_type(&sf);
        snprintf(f.name, sizeof(f.name), "%s", sf.name);
    }
    if (eas_hier_apply(h, &f, remove) != 0 || eas_hier_save(req->u, req->device_id, h) != STORE_OK)
        rc = eas_folder_answer(req, root_tag, FOLDER_SERVER_ERROR, 0, 0);
    else
        rc = eas_folder_answer(req, root_tag, FOLDER_OK, h->key, answer_id);
    return rc;
}

int eas_cmd_foldercreate(struct eas_req *req)
{
    const unsigned tag = EAS_FOLDERHIERARCHY_FOLDERCREATE;
    const struct eas_node *root;
    struct eas_hstate h;
    struct store_err e = {0};
    const char *name;
    int64_t parent = 0, id = 0;
    int status, cls, rc;

    if ((status = eas_folder_begin(req, tag, &root, &h)) != 0)
        return eas_folder_answer(req, tag, status, 0, 0);
    name = eas_child_text(root, EAS_FOLDERHIERARCHY_DISPLAYNAME);
    cls = eas_folder_type_class((int)eas_child_int(root, EAS_FOLDERHIERARCHY_TYPE, 0));
    if (!name || !*name || !cls)
        status = FOLDER_MALFORMED;
    else
        status = eas_folder_parent(req, root, &parent);
    if (status == 0) {
        rc = store_folder_create(req->u, parent, name, (enum store_class)cls, STORE_ROLE_NONE, &id,
                                 &e);
        if (rc != STORE_OK) {
            status = eas_folder_store_status(rc);
            log_info("eas", "%s: FolderCreate \"%s\" refused: %s", req->acct->address, name, e.msg);
        }
    }
    rc = status ? eas_folder_answer(req, tag, status, 0, 0)
                : eas_folder_commit(req, tag, &h, id, 0, id);
    eas_hier_free(&h);
    return rc;
}

int eas_cmd_folderupdate(struct eas_req *req)
{
    const unsigned tag = EAS_FOLDERHIERARCHY_FOLDERUPDATE;
    const struct eas_node *root;
    struct eas_hstate h;
    struct store_folder f;
    struct store_err e = {0};
    const char *name;
    int64_t id = 0, parent = 0;
    int status, rc;

    if ((status = eas_folder_begin(req, tag, &root, &h)) != 0)
        return eas_folder_answer(req, tag, status, 0, 0);
    name = eas_child_text(root, EAS_FOLDERHIERARCHY_DISPLAYNAME);
    if (eas_parse_folder_id(eas_child_text(root, EAS_FOLDERHIERARCHY_SERVERID), &id) != 0 ||
        !name || !*name)
        status = FOLDER_MALFORMED;
    else if (store_folder_get(req->u, id, &f, NULL) != STORE_OK || !eas_folder_type(&f))
        status = FOLDER_NOT_FOUND;
    else if (f.role != STORE_ROLE_NONE)
        status = FOLDER_SPECIAL;
    else
        status = eas_folder_parent(req, root, &parent);
    if (status == 0 && (rc = store_folder_rename(req->u, id, parent, name, &e)) != STORE_OK) {
        status = rc == STORE_ENOTFOUND ? FOLDER_PARENT_NOT_FOUND : eas_folder_store_status(rc);
        log_info("eas", "%s: FolderUpdate of %lld refused: %s", req->acct->address, (long long)id,
                 e.msg);
    }
    rc = status ? eas_folder_answer(req, tag, status, 0, 0)
                : eas_folder_commit(req, tag, &h, id, 0, 0);
    eas_hier_free(&h);
    return rc;
}

int eas_cmd_folderdelete(struct eas_req *req)
{
    const unsigned tag = EAS_FOLDERHIERARCHY_FOLDERDELETE;
    const struct eas_node *root;
    struct eas_hstate h;
    struct store_folder f;
    struct store_err e = {0};
    int64_t id = 0;
    int status, rc;

    if ((status = eas_folder_begin(req, tag, &root, &h)) != 0)
        return eas_folder_answer(req, tag, status, 0, 0);
    if (eas_parse_folder_id(eas_child_text(root, EAS_FOLDERHIERARCHY_SERVERID), &id) != 0)
        status = FOLDER_MALFORMED;
    else if (store_folder_get(req->u, id, &f, NULL) != STORE_OK || !eas_folder_type(&f))
        status = FOLDER_NOT_FOUND;
    else if (f.role != STORE_ROLE_NONE)
        status = FOLDER_SPECIAL;
    else if ((rc = store_folder_delete(req->u, id, &e)) != STORE_OK)
        status = eas_folder_store_status(rc);
    rc = status ? eas_folder_answer(req, tag, status, 0, 0)
                : eas_folder_commit(req, tag, &h, id, 1, 0);
    eas_hier_free(&h);
    return rc;
}
