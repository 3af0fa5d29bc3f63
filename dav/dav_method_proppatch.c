/*
 * dav_method_proppatch.c — PROPPATCH (RFC 4918 §9.2) on collections: displayname,
 * calendar-description / addressbook-description, Apple's calendar-color and
 * calendar-order, and calendar-timezone; properties we do not interpret are kept as dead
 * properties of the collection (dav_dead.c). Live properties we compute are refused with
 * 403 cannot-modify-protected-property, everything on items and homes with 403, values
 * that do not fit with 507; the rest of the request then fails with 424, since PROPPATCH
 * is all or nothing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dav/dav_int.h"

#define DAV_PP_MAX 64

struct dav_pp_op {
    const char *ns, *name;
    xmlNodePtr node;
    int remove;
    const char *key; /* folder props member; "" for calendar-timezone; NULL: not settable */
    int dead;        /* a property we do not interpret: kept as sent (dav_dead.c) */
    int status;
};

/* The folder props key a settable property lives under, or NULL. */
static const char *dav_pp_key(const struct dav_res *r, const char *ns, const char *name)
{
    if (strcmp(ns, NS_DAV) == 0 && strcmp(name, "displayname") == 0)
        return "dn";
    if (r->space == DAV_SPACE_CAL) {
        if (strcmp(ns, NS_CAL) == 0 && strcmp(name, "calendar-description") == 0)
            return "desc";
        if (strcmp(ns, NS_APPL) == 0 && strcmp(name, "calendar-color") == 0)
            return "color";
        if (strcmp(ns, NS_APPL) == 0 && strcmp(name, "calendar-order") == 0)
            return "order";
        if (strcmp(ns, NS_CAL) == 0 && strcmp(name, "calendar-timezone") == 0)
            return "";
    }
    if (r->space == DAV_SPACE_CARD && strcmp(ns, NS_CARD) == 0 &&
        strcmp(name, "addressbook-description") == 0)
        return "desc";
    return NULL;
}

/* Collects the set/remove operations in document order; -1 when malformed. */
static int dav_pp_collect(struct dav_req *q, xmlNodePtr root, struct dav_pp_op *ops, size_t *n)
{
    xmlNodePtr op, prop, p;

    for (op = root->children; op; op = op->next) {
        int remove = dav_xml_is(op, NS_DAV, "remove");
        if (op->type != XML_ELEMENT_NODE)
            continue;
        if (!remove && !dav_xml_is(op, NS_DAV, "set"))
            return -1;
        prop = dav_xml_child(op, NS_DAV, "prop");
        if (!prop)
            return -1;
        for (p = prop->children; p; p = p->next) {
            if (p->type != XML_ELEMENT_NODE)
                continue;
            if (*n == DAV_PP_MAX)
                return -1;
            ops[*n].ns = dav_xml_ns(p);
            ops[*n].name = (const char *)p->name;
            ops[*n].node = p;
            ops[*n].remove = remove;
            ops[*n].key = dav_pp_key(&q->res, ops[*n].ns, ops[*n].name);
            ops[*n].dead = !ops[*n].key && !dav_prop_is_live(ops[*n].ns, ops[*n].name);
            ops[*n].status = ops[*n].key || ops[*n].dead ? 200 : 403;
            (*n)++;
        }
    }
    return 0;
}

/* Tries the operations on a copy first: values that do not fit (the props field holds
 * 1 KiB in all, a time zone 64 KiB) are refused per property with 507 rather than
 * failing the whole request later. */
static void dav_pp_check_room(struct dav_req *q, struct dav_pp_op *ops, size_t n)
{
    char props[sizeof(q->res.folder.props)];
    size_t i;

    snprintf(props, sizeof(props), "%s", q->res.folder.props);
    for (i = 0; i < n; i++) {
        char *v;
        if (ops[i].status == 200 && ops[i].dead) {
            if (!ops[i].remove && dav_dead_check(q, q->res.folder.id, ops[i].node) != 0)
                ops[i].status = 507;
            continue;
        }
        v = ops[i].remove ? NULL : dav_xml_text(ops[i].node);
        if (ops[i].status != 200 || (!ops[i].remove && !v)) {
            free(v);
            continue;
        }
        if (*ops[i].key ? dav_fprop_set(props, sizeof(props), ops[i].key, v) != 0
                        : (v && strlen(v) > DAV_TZ_MAX))
            ops[i].status = 507;
        free(v);
    }
}

/* One operation inside the transaction (props: the folder props being rebuilt). */
static int dav_pp_one(struct dav_req *q, const struct dav_pp_op *op, char *props, size_t plen)
{
    struct store_err e;
    char key[32], *v;
    int rc;

    if (op->dead)
        return op->remove ? dav_dead_del(q, q->res.folder.id, op->ns, op->name)
                          : dav_dead_set(q, q->res.folder.id, op->node);
    snprintf(key, sizeof(key), "%" PRId64, q->res.folder.id);
    if (op->remove && !*op->key) {
        rc = store_state_del(q->u, "dav.tz", key, &e);
        return rc == 0 || rc == STORE_ENOTFOUND ? 0 : -1;
    }
    v = op->remove ? NULL : dav_xml_text(op->node);
    if (!op->remove && !v)
        return -1;
    if (*op->key)
        rc = dav_fprop_set(props, plen, op->key, v);
    else
        rc = strlen(v) > DAV_TZ_MAX || store_state_put(q->u, "dav.tz", key, v, strlen(v), &e) != 0
                 ? -1
                 : 0;
    free(v);
    return rc;
}

/* Applies the operations inside one transaction. */
static int dav_pp_apply(struct dav_req *q, struct dav_pp_op *ops, size_t n)
{
    struct store_folder *f = &q->res.folder;
    char props[sizeof(f->props)];
    struct store_err e;
    size_t i;

    snprintf(props, sizeof(props), "%s", f->props);
    if (store_txn_begin(q->u, &e) != 0)
        return -1;
    for (i = 0; i < n; i++)
        if (dav_pp_one(q, &ops[i], props, sizeof(props)) != 0)
            goto err;
    if (strcmp(props, f->props) != 0 && store_folder_set_props(q->u, f->id, props, &e) != 0)
        goto err;
    return store_txn_commit(q->u, NULL, &e) == 0 ? 0 : -1;
err:
    store_txn_rollback(q->u);
    return -1;
}

static void dav_pp_answer(struct dav_req *q, struct dav_pp_op *ops, size_t n, int failed)
{
    struct buf b = {0};
    size_t i;

    dav_ms_open(&b);
    dav_ms_response_open(&b, q->res.href);
    for (i = 0; i < n; i++) {
        int st = failed && ops[i].status == 200 ? 424 : ops[i].status;
        buf_puts(&b, "<D:propstat><D:prop>");
        dav_xml_open_el(&b, ops[i].ns, ops[i].name);
        buf_puts(&b, "/></D:prop>");
        buf_printf(&b, "<D:status>%s</D:status>", dav_status_line(st));
        if (st == 403 && dav_prop_is_live(ops[i].ns, ops[i].name))
            buf_puts(&b, "<D:error><D:cannot-modify-protected-property/></D:error>");
        buf_puts(&b, "</D:propstat>");
    }
    dav_ms_response_close(&b);
    dav_ms_close(&b);
    dav_send_ms(q, &b);
}

void dav_method_proppatch(struct dav_req *q)
{
    struct dav_pp_op ops[DAV_PP_MAX];
    xmlDocPtr doc = NULL;
    xmlNodePtr root;
    size_t n = 0, i;
    int failed = 0;

    if (q->res.kind == DAV_K_NONE || q->res.kind == DAV_K_NEWCOLL || q->res.kind == DAV_K_NEWITEM) {
        dav_send_status(q, 404);
        return;
    }
    doc = dav_xml_parse(q->body, q->body_len);
    root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!dav_xml_is(root, NS_DAV, "propertyupdate") || dav_pp_collect(q, root, ops, &n) != 0) {
        dav_send_status(q, 400);
        goto out;
    }
    for (i = 0; i < n; i++)
        if (q->res.kind != DAV_K_COLL)
            ops[i].status = 403; /* only collections carry settable properties */
    if (q->res.kind == DAV_K_COLL)
        dav_pp_check_room(q, ops, n);
    for (i = 0; i < n; i++)
        if (ops[i].status != 200)
            failed = 1;
    if (!failed && n && dav_pp_apply(q, ops, n) != 0) {
        dav_send_status(q, 500);
        goto out;
    }
    dav_pp_answer(q, ops, n, failed);
out:
    if (doc)
        xmlFreeDoc(doc);
}
