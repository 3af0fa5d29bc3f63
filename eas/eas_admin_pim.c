/*
 * eas_admin_pim.c — the CLI's `item` commands: put an iCalendar or vCard object into a
 * user's calendar, task list, notes or address book (as a CalDAV/CardDAV client would,
 * with the same name, UID and occurrence-index rules as a device's item), and print one
 * back by UID. Operators use them to import single objects; the tests use them to give
 * devices items that no device wrote.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dav/dav_vcard.h"
#include "eas/eas_pim.h"

#define EAS_ADMIN_MAX_ITEM (8u << 20)

static int eas_admin_err(struct store_err *err, int code, const char *msg, const char *arg)
{
    if (err) {
        size_t n = strlen(msg) < sizeof(err->msg) - 1 ? strlen(msg) : sizeof(err->msg) - 1;
        err->code = code;
        memcpy(err->msg, msg, n);
        err->msg[n] = '\0';
        /* the argument as much as fits: a message is for the operator's eyes */
        if (arg && n + 2 < sizeof(err->msg)) {
            err->msg[n++] = ' ';
            for (const char *p = arg; *p && n + 1 < sizeof(err->msg); p++)
                err->msg[n++] = *p;
            err->msg[n] = '\0';
        }
    }
    return code;
}

/* The folder named (top level), or the default folder of the object's kind. */
static int eas_admin_folder(struct store_user *u, const char *folder, int kind,
                            struct store_folder *f)
{
    static const enum store_role roles[] = {
        0, 0, STORE_ROLE_CALENDAR, STORE_ROLE_CONTACTS, STORE_ROLE_TASKS, STORE_ROLE_NOTES};

    if (folder)
        return store_folder_find(u, 0, folder, f);
    if (kind < STORE_CLASS_CALENDAR || kind > STORE_CLASS_NOTES)
        return STORE_EINVAL;
    return store_folder_by_role(u, roles[kind], f);
}

/* The kind and UID of an object: 0 and uid, or -1 when it is neither. */
static int eas_admin_kind(const char *body, size_t len, int *kind, char *uid, size_t uidlen)
{
    if (len >= 11 && !strncasecmp(body, "BEGIN:VCARD", 11)) {
        struct dav_vcard *v;
        const char *pre;
        char e[128];
        if (dav_vcard_parse(body, len, &v, &pre, e, sizeof(e)) < 0)
            return -1;
        snprintf(uid, uidlen, "%s", dav_vcard_uid(v) ?: "");
        dav_vcard_free(v);
        *kind = STORE_CLASS_CONTACTS;
        return uid[0] ? 0 : -1;
    } else {
        icalcomponent *root = eas_ical_parse(body, len), *c = NULL;
        static const struct {
            icalcomponent_kind k;
            int cls;
        } kinds[] = {{ICAL_VEVENT_COMPONENT, STORE_CLASS_CALENDAR},
                     {ICAL_VTODO_COMPONENT, STORE_CLASS_TASKS},
                     {ICAL_VJOURNAL_COMPONENT, STORE_CLASS_NOTES}};
        for (size_t i = 0; root && !c && i < 3; i++)
            if ((c = eas_ical_master(root, kinds[i].k)))
                *kind = kinds[i].cls;
        snprintf(uid, uidlen, "%s", c && icalcomponent_get_uid(c) ? icalcomponent_get_uid(c) : "");
        if (root)
            icalcomponent_free(root);
        return uid[0] ? 0 : -1;
    }
}

int eas_admin_item_put(struct store *st, const char *address, const char *folder, const char *body,
                       size_t len, char *uid, size_t uidlen, int *replaced, struct store_err *err)
{
    struct store_user *u = NULL;
    struct store_folder f;
    struct store_item it, out;
    struct eas_pim_out po = {0};
    int kind = 0, rc;

    *replaced = 0;
    if (len > EAS_ADMIN_MAX_ITEM || eas_admin_kind(body, len, &kind, po.uid, sizeof(po.uid)) < 0)
        return eas_admin_err(err, STORE_EINVAL,
                             "not an iCalendar event, task or note, or a vCard, with a UID", NULL);
    if ((rc = store_user_open(st, address, &u, err)) != STORE_OK)
        return rc;
    if ((rc = eas_admin_folder(u, folder, kind, &f)) != STORE_OK) {
        rc = eas_admin_err(err, STORE_ENOTFOUND, "no such folder", folder);
        goto out;
    }
    if ((f.cls == STORE_CLASS_CONTACTS) != (kind == STORE_CLASS_CONTACTS) ||
        f.cls == STORE_CLASS_MAIL) {
        rc = eas_admin_err(err, STORE_EINVAL, "the object does not belong in folder", f.name);
        goto out;
    }
    po.text = (char *)body;
    po.len = len;
    if ((rc = store_txn_begin(u, err)) != STORE_OK)
        goto out;
    if (store_item_by_ext_uid(u, f.id, po.uid, &it) == STORE_OK) {
        *replaced = 1;
        rc = eas_pim_store(u, &f, &it, &po, &out);
    } else {
        rc = eas_pim_store(u, &f, NULL, &po, &out);
    }
    if (rc != STORE_OK) {
        store_txn_rollback(u);
        eas_admin_err(err, rc, "the object could not be stored", NULL);
        goto out;
    }
    rc = store_txn_commit(u, NULL, err);
    snprintf(uid, uidlen, "%s", po.uid);
out:
    store_user_release(u);
    return rc;
}

int eas_admin_item_get(struct store *st, const char *address, const char *folder, const char *uid,
                       char **body, size_t *len, struct store_err *err)
{
    struct store_user *u = NULL;
    struct store_folder f;
    struct store_item it;
    int rc = store_user_open(st, address, &u, err), found = 0;

    if (rc != STORE_OK)
        return rc;
    /* without a folder: every PIM default folder is looked at */
    for (int k = STORE_CLASS_CALENDAR; k <= STORE_CLASS_NOTES && !found; k++) {
        if (eas_admin_folder(u, folder, k, &f) != STORE_OK)
            continue;
        found = store_item_by_ext_uid(u, f.id, uid, &it) == STORE_OK;
        if (folder)
            break;
    }
    if (!found)
        rc = eas_admin_err(err, STORE_ENOTFOUND, "no item with UID", uid);
    else
        rc = store_item_body(u, it.id, body, len, err);
    store_user_release(u);
    return rc;
}

struct eas_admin_list_ctx {
    eas_item_cb cb;
    void *ctx;
    const char *folder;
    int stop;
};

static int eas_admin_list_item(const struct store_item *it, void *ctx)
{
    struct eas_admin_list_ctx *l = ctx;

    l->stop = l->cb(l->folder, it->ext_uid, it->name, l->ctx);
    return l->stop;
}

int eas_admin_item_list(struct store *st, const char *address, const char *folder, eas_item_cb cb,
                        void *ctx, struct store_err *err)
{
    struct store_user *u = NULL;
    struct store_folder f;
    struct eas_admin_list_ctx l = {.cb = cb, .ctx = ctx};
    int rc = store_user_open(st, address, &u, err);

    if (rc != STORE_OK)
        return rc;
    for (int k = STORE_CLASS_CALENDAR; k <= STORE_CLASS_NOTES && !l.stop; k++) {
        if (eas_admin_folder(u, folder, k, &f) != STORE_OK) {
            if (folder) {
                rc = eas_admin_err(err, STORE_ENOTFOUND, "no such folder", folder);
                break;
            }
            continue;
        }
        l.folder = f.name;
        if ((rc = store_item_list(u, f.id, 0, UINT32_MAX, eas_admin_list_item, &l, err)) !=
            STORE_OK)
            break;
        if (folder)
            break;
    }
    store_user_release(u);
    return rc;
}
