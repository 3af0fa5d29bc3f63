/*
 * dav_method_put.c — PUT of a calendar object (RFC 4791 §5.3.2) or a vCard (RFC 6352
 * §6.3.2) into a collection. The bytes are stored exactly as sent (ETags stay strong,
 * ORGANIZER/ATTENDEE and Apple's group cards survive untouched), after validation:
 *
 *   size above [dav] max_resource      403 max-resource-size
 *   wrong Content-Type                 403 supported-calendar-data / supported-address-data
 *   not iCalendar / vCard              403 valid-calendar-data / valid-address-data
 *   resource rules (one UID, no METHOD) 403 valid-calendar-object-resource
 *   component the folder's class does not hold (a VTODO into an event calendar): 403
 *   supported-calendar-component — ActiveSync syncs each folder as one type
 *   UID already used by another resource of the collection: 403 no-uid-conflict + href
 *   If-Match / If-None-Match failing   412
 *
 * The uid check, the write and (for calendars) the occurrence index are one transaction;
 * 201/204 is sent only after it committed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dav/dav_int.h"

struct dav_put {
    struct dav_ical *ical;
    struct dav_vcard *vcard;
    const char *uid;
    const char *pns; /* namespace of the preconditions: CalDAV or CardDAV */
};

static int dav_put_ctype_ok(struct dav_req *q)
{
    const char *ct = http_req_header(q->r, "Content-Type");

    if (!ct)
        return 1; /* some clients send none: the parser decides */
    if (q->res.space == DAV_SPACE_CAL)
        return strncasecmp(ct, "text/calendar", 13) == 0;
    return strncasecmp(ct, "text/vcard", 10) == 0 || strncasecmp(ct, "text/x-vcard", 12) == 0 ||
           strncasecmp(ct, "text/directory", 14) == 0;
}

/* Validates the body; 0, or sends the error and returns -1. */
static int dav_put_validate(struct dav_req *q, struct dav_put *p)
{
    const char *precond = NULL;
    char err[256] = "";
    int rc;

    if ((int64_t)q->body_len > q->d->cfg->dav_max_resource) {
        dav_send_error(q, 403, p->pns, "max-resource-size", NULL);
        return -1;
    }
    if (!dav_put_ctype_ok(q)) {
        dav_send_error(q, 403, p->pns,
                       q->res.space == DAV_SPACE_CAL ? "supported-calendar-data"
                                                     : "supported-address-data",
                       NULL);
        return -1;
    }
    if (q->res.space == DAV_SPACE_CAL)
        rc = dav_ical_parse(q->body, q->body_len, &p->ical, &precond, err, sizeof(err));
    else
        rc = dav_vcard_parse(q->body, q->body_len, &p->vcard, &precond, err, sizeof(err));
    if (rc != 0) {
        log_info("dav", "PUT %s refused: %s", q->path, err);
        dav_send_error(q, 403, p->pns,
                       precond ? precond
                               : (q->res.space == DAV_SPACE_CAL ? "valid-calendar-data"
                                                                : "valid-address-data"),
                       NULL);
        return -1;
    }
    if (p->ical && !(dav_ical_kind(p->ical) & dav_class_comps(q->res.folder.cls))) {
        dav_send_error(q, 403, NS_CAL, "supported-calendar-component", NULL);
        return -1;
    }
    p->uid = p->ical ? dav_ical_uid(p->ical) : dav_vcard_uid(p->vcard);
    if (!p->uid || !*p->uid || strlen(p->uid) >= sizeof(((struct store_item *)0)->ext_uid)) {
        dav_send_error(q, 403, p->pns,
                       p->ical ? "valid-calendar-object-resource" : "valid-address-data", NULL);
        return -1;
    }
    return 0;
}

/* Inside the transaction: the UID must be this resource's alone. 0, or the error sent. */
static int dav_put_uid_check(struct dav_req *q, struct dav_put *p, const struct store_item *old)
{
    struct store_item other;
    char href[DAV_HREF_MAX];
    int rc = store_item_by_ext_uid(q->u, q->res.folder.id, p->uid, &other);

    if (rc < 0 && rc != STORE_ENOTFOUND)
        return -2;
    if (rc == 0 && (!old || other.id != old->id)) {
        dav_item_href(q, q->res.space, &q->res.folder, &other, href, sizeof(href));
        dav_send_error(q, 403, p->pns, "no-uid-conflict", href);
        return -1;
    }
    /* A resource keeps its UID for life (RFC 4791 §5.3.2.1). */
    if (old && old->ext_uid[0] && strcmp(old->ext_uid, p->uid) != 0) {
        dav_send_error(q, 403, p->pns, "no-uid-conflict", q->res.href);
        return -1;
    }
    return 0;
}

/* The write and the index; returns 0 with *it, -1 when the error was sent, -2 failure. */
static int dav_put_store(struct dav_req *q, struct dav_put *p, struct store_item *it)
{
    const struct store_item *old = q->res.kind == DAV_K_ITEM ? &q->res.item : NULL;
    struct store_item_new in = {
        .body = q->body,
        .body_len = q->body_len,
        .ctype = q->res.space == DAV_SPACE_CAL ? "text/calendar" : "text/vcard",
        .name = old ? NULL : q->res.name,
        .ext_uid = p->uid,
    };
    struct store_err e;
    int rc;

    if (store_txn_begin(q->u, &e) != 0)
        return -2;
    rc = dav_put_uid_check(q, p, old);
    if (rc != 0)
        goto fail;
    if (old)
        rc = store_item_replace(q->u, old->id, &in, old->modseq, it, &e);
    else
        rc = store_item_add(q->u, q->res.folder.id, &in, it, &e);
    if (rc == STORE_ECONFLICT || rc == STORE_EEXIST) {
        dav_send_status(q, 412); /* changed or created meanwhile */
        rc = -1;
        goto fail;
    }
    if (rc == STORE_EQUOTA) {
        dav_send_status(q, 507);
        rc = -1;
        goto fail;
    }
    if (rc != 0 ||
        (p->ical && dav_index_item(q, it->id, p->ical, time(NULL) + DAV_HORIZON_SECS) != 0)) {
        rc = -2;
        goto fail;
    }
    if (store_txn_commit(q->u, NULL, &e) != 0)
        return -2;
    /* The committed state (the modseq the transaction took) for the ETag. */
    return store_item_get(q->u, it->id, it, &e) == 0 ? 0 : -2;
fail:
    store_txn_rollback(q->u);
    return rc;
}

void dav_method_put(struct dav_req *q)
{
    struct dav_put p = {0};
    struct store_item it;
    char etag[64];
    int rc;

    p.pns = q->res.space == DAV_SPACE_CARD ? NS_CARD : NS_CAL;
    if (q->res.kind != DAV_K_ITEM && q->res.kind != DAV_K_NEWITEM) {
        if (q->res.kind == DAV_K_NONE || q->res.kind == DAV_K_NEWCOLL)
            dav_send_status(q, q->res.mine ? 409 : 404);
        else
            dav_send_status(q, 405);
        return;
    }
    rc = dav_preconditions(q, q->res.kind == DAV_K_ITEM ? &q->res.item : NULL);
    if (rc) {
        dav_send_status(q, rc);
        return;
    }
    if (dav_put_validate(q, &p) != 0)
        goto out;
    rc = dav_put_store(q, &p, &it);
    if (rc == -2) {
        dav_send_status(q, 500);
    } else if (rc == 0) {
        dav_etag(&it, etag, sizeof(etag));
        http_add_header(q->r, "ETag", etag);
        http_respond(q->r, q->res.kind == DAV_K_ITEM ? 204 : 201, NULL, "", 0);
    }
out:
    if (p.ical)
        dav_ical_free(p.ical);
    if (p.vcard)
        dav_vcard_free(p.vcard);
}
