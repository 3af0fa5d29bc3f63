/*
 * dav_method_mkcol.c — MKCALENDAR (RFC 4791 §5.3.1) and MKCOL, plain or extended
 * (RFC 5689), directly inside a home. Each creates a store folder: under /caldav a
 * CALENDAR folder, or TASKS when the supported-calendar-component-set is VTODO only,
 * NOTES when VJOURNAL only; under /carddav a CONTACTS folder. The URL segment becomes
 * the folder's store name and is kept in its props ("seg"), so later renames through
 * displayname or ActiveSync never move the collection.
 *
 * Properties set at creation: displayname, the descriptions, calendar-color,
 * calendar-order, calendar-timezone; properties we do not interpret are kept as dead
 * properties (dav_dead.c, up to DAV_MK_DEAD of them; one that does not fit is dropped);
 * other live properties are ignored. A resourcetype naming the other space's collection
 * type is refused with valid-resourcetype.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dav/dav_int.h"

#define DAV_MK_DEAD 32

struct dav_mk {
    enum store_class cls;
    char props[1024];
    char *tz;
    xmlDocPtr doc;                /* the request, which dead[] points into */
    xmlNodePtr dead[DAV_MK_DEAD]; /* properties we do not interpret, kept as dead ones */
    size_t ndead;
};

static unsigned dav_mk_comps(xmlNodePtr set)
{
    unsigned k = 0;
    xmlNodePtr c;

    for (c = set->children; c; c = c->next) {
        xmlChar *name;
        if (!dav_xml_is(c, NS_CAL, "comp"))
            continue;
        name = xmlGetProp(c, (const xmlChar *)"name");
        if (name && strcmp((char *)name, "VEVENT") == 0)
            k |= DAV_ICAL_VEVENT;
        else if (name && strcmp((char *)name, "VTODO") == 0)
            k |= DAV_ICAL_VTODO;
        else if (name && strcmp((char *)name, "VJOURNAL") == 0)
            k |= DAV_ICAL_VJOURNAL;
        xmlFree(name);
    }
    return k;
}

/* Reads one property of a set; -1 refuses the request. */
static int dav_mk_prop(struct dav_req *q, struct dav_mk *mk, xmlNodePtr p)
{
    static const struct {
        const char *ns, *name, *key;
    } keys[] = {{NS_DAV, "displayname", "dn"},
                {NS_CAL, "calendar-description", "desc"},
                {NS_CARD, "addressbook-description", "desc"},
                {NS_APPL, "calendar-color", "color"},
                {NS_APPL, "calendar-order", "order"}};
    size_t i;
    int rc = 0;

    if (dav_xml_is(p, NS_DAV, "resourcetype")) {
        int cal = dav_xml_child(p, NS_CAL, "calendar") != NULL;
        int card = dav_xml_child(p, NS_CARD, "addressbook") != NULL;
        if ((q->res.space == DAV_SPACE_CAL && card) || (q->res.space == DAV_SPACE_CARD && cal))
            return -1;
        return 0;
    }
    if (dav_xml_is(p, NS_CAL, "supported-calendar-component-set")) {
        unsigned k = dav_mk_comps(p);
        if (!(k & DAV_ICAL_VEVENT) && k == DAV_ICAL_VTODO)
            mk->cls = STORE_CLASS_TASKS;
        else if (!(k & DAV_ICAL_VEVENT) && k == DAV_ICAL_VJOURNAL)
            mk->cls = STORE_CLASS_NOTES;
        return 0;
    }
    if (dav_xml_is(p, NS_CAL, "calendar-timezone")) {
        free(mk->tz);
        mk->tz = dav_xml_text(p);
        return !mk->tz ? -1 : strlen(mk->tz) > DAV_TZ_MAX ? -4 : 0;
    }
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (dav_xml_is(p, keys[i].ns, keys[i].name)) {
            char *v = dav_xml_text(p);
            /* -4: the values do not fit the folder's props (1 KiB in all) */
            rc = v && dav_fprop_set(mk->props, sizeof(mk->props), keys[i].key, v) == 0 ? 0 : -4;
            free(v);
            return rc;
        }
    }
    if (!dav_prop_is_live(dav_xml_ns(p), (const char *)p->name) && mk->ndead < DAV_MK_DEAD)
        mk->dead[mk->ndead++] = p;
    return 0;
}

/* Reads the body (mkcalendar or mkcol, each with set/prop); -1 on 400, -2 on 403, -3 on
 * 415, -4 on 507. */
static int dav_mk_body(struct dav_req *q, struct dav_mk *mk)
{
    xmlDocPtr doc;
    xmlNodePtr root, set, prop, p;
    int rc = 0;

    if (q->body_len == 0)
        return 0;
    doc = dav_xml_parse(q->body, q->body_len);
    root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!(strcmp(q->method, "MKCALENDAR") == 0 ? dav_xml_is(root, NS_CAL, "mkcalendar")
                                               : dav_xml_is(root, NS_DAV, "mkcol"))) {
        /* MKCOL with a body that is not an extended-MKCOL request: 415 (RFC 4918
         * §9.3, RFC 5689 §3); a broken MKCALENDAR body is just bad. */
        rc = strcmp(q->method, "MKCOL") == 0 ? -3 : -1;
        goto out;
    }
    for (set = root->children; set && rc == 0; set = set->next) {
        if (!dav_xml_is(set, NS_DAV, "set"))
            continue;
        prop = dav_xml_child(set, NS_DAV, "prop");
        for (p = prop ? prop->children : NULL; p && rc == 0; p = p->next)
            if (p->type == XML_ELEMENT_NODE && (rc = dav_mk_prop(q, mk, p)) == -1)
                rc = -2;
    }
out:
    mk->doc = doc; /* freed by the caller: dead[] points into it */
    return rc;
}

/* Creates the folder, its props and time zone in one transaction. */
static int dav_mk_create(struct dav_req *q, struct dav_mk *mk)
{
    struct store_err e;
    int64_t id = 0;
    char name[64], key[32];
    size_t i;
    int rc;

    if (store_txn_begin(q->u, &e) != 0)
        return -1;
    rc = store_folder_create(q->u, 0, q->res.name, mk->cls, STORE_ROLE_NONE, &id, &e);
    if (rc == STORE_EEXIST || rc == STORE_EINVAL) {
        /* The segment is not a usable store name (or is taken by a folder of another
         * class): the folder gets a generated name, the URL keeps the segment. */
        snprintf(name, sizeof(name), "DAV %" PRId64, (int64_t)time(NULL) ^ (int64_t)rand());
        rc = store_folder_create(q->u, 0, name, mk->cls, STORE_ROLE_NONE, &id, &e);
    }
    if (rc != 0)
        goto err;
    if (dav_fprop_set(mk->props, sizeof(mk->props), "seg", q->res.name) != 0 ||
        store_folder_set_props(q->u, id, mk->props, &e) != 0)
        goto err;
    snprintf(key, sizeof(key), "%" PRId64, id);
    if (mk->tz && store_state_put(q->u, "dav.tz", key, mk->tz, strlen(mk->tz), &e) != 0)
        goto err;
    for (i = 0; i < mk->ndead; i++)
        if (dav_dead_check(q, id, mk->dead[i]) == 0 && dav_dead_set(q, id, mk->dead[i]) != 0)
            goto err;
    if (store_txn_commit(q->u, NULL, &e) != 0)
        return -1;
    return 0;
err:
    log_warn("dav", "creating collection %s failed: %s", q->res.name, e.msg);
    store_txn_rollback(q->u);
    return -1;
}

void dav_method_mkcol(struct dav_req *q)
{
    struct dav_mk mk = {0};
    int rc;

    if (q->res.kind == DAV_K_COLL || q->res.kind == DAV_K_ITEM || q->res.kind == DAV_K_HOME ||
        q->res.kind == DAV_K_ROOT || q->res.kind == DAV_K_PRINCIPAL) {
        http_add_header(q->r, "Allow", "OPTIONS, GET, HEAD, DELETE, PROPFIND, PROPPATCH, REPORT");
        dav_send_status(q, 405);
        return;
    }
    mk.cls = q->res.space == DAV_SPACE_CARD ? STORE_CLASS_CONTACTS : STORE_CLASS_CALENDAR;
    /* The body is judged first: a MKCOL body we cannot honour is 415 wherever it goes. */
    rc = dav_mk_body(q, &mk);
    if (rc == 0 && q->res.kind == DAV_K_NEWITEM) {
        /* Collections hold resources only: no nested collections. */
        dav_send_status(q, 403);
        goto out;
    }
    if (rc == 0 && q->res.kind != DAV_K_NEWCOLL) {
        /* Inside the own home a missing parent is 409 (RFC 4918 §9.3.1); elsewhere the
         * path simply does not exist for this user. */
        dav_send_status(q, q->res.mine ? 409 : 404);
        goto out;
    }
    if (rc == 0 && strcmp(q->method, "MKCALENDAR") == 0 && q->res.space != DAV_SPACE_CAL) {
        dav_send_status(q, 403);
        goto out;
    }
    if (rc == -1) {
        dav_send_status(q, 400);
    } else if (rc == -3) {
        dav_send_status(q, 415);
    } else if (rc == -4) {
        dav_send_status(q, 507);
    } else if (rc == -2) {
        dav_send_error(q, 403, NS_DAV, "valid-resourcetype", NULL);
    } else if (dav_mk_create(q, &mk) != 0) {
        dav_send_status(q, 500);
    } else {
        http_add_header(q->r, "Location", q->res.href);
        http_respond(q->r, 201, NULL, "", 0);
    }
out:
    free(mk.tz);
    if (mk.doc)
        xmlFreeDoc(mk.doc);
}
