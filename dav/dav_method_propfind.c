/*
 * dav_method_propfind.c — PROPFIND (RFC 4918 §9.1) with Depth 0 and 1. Depth infinity
 * (also an absent Depth, which means infinity) is refused with propfind-finite-depth:
 * a client walking a whole home should go collection by collection.
 *
 * Depth 1 lists: the root (/caldav/, /carddav/) → the space's collections, so the URL
 * customers paste shows the calendars directly; a home → its collections; a collection →
 * its items; /principals/ → the user's principal.
 */
#include <stdlib.h>
#include <string.h>

#include "dav/dav_int.h"

struct dav_pf {
    struct dav_req *q;
    const struct dav_pset *ps;
    struct buf *b;
    enum dav_space sp;
    const struct store_folder *folder;
    int failed;
};

static int dav_pf_folder_cb(const struct store_folder *f, void *vctx)
{
    struct dav_pf *c = vctx;
    struct dav_res res = {0};
    struct dav_parsed parsed = {0};

    if (!dav_class_in_space(f->cls, c->sp))
        return 0;
    res.space = c->sp;
    res.kind = DAV_K_COLL;
    res.folder = *f;
    dav_folder_seg(f, res.seg, sizeof(res.seg));
    dav_coll_href(c->q, c->sp, f, res.href, sizeof(res.href));
    if (dav_props_response(c->q, &res, c->ps, &parsed, c->b) != 0)
        c->failed = 1;
    dav_parsed_free(&parsed);
    return c->failed;
}

static int dav_pf_item_cb(const struct store_item *it, void *vctx)
{
    struct dav_pf *c = vctx;
    struct dav_res res = {0};
    struct dav_parsed parsed = {0};

    res.space = c->sp;
    res.kind = DAV_K_ITEM;
    res.folder = *c->folder;
    res.item = *it;
    dav_item_href(c->q, c->sp, c->folder, it, res.href, sizeof(res.href));
    if (dav_props_response(c->q, &res, c->ps, &parsed, c->b) != 0)
        c->failed = 1;
    dav_parsed_free(&parsed);
    return c->failed;
}

/* The members of the resource for Depth 1. */
static int dav_pf_children(struct dav_req *q, struct dav_pf *c)
{
    const struct dav_res *r = &q->res;
    struct store_err e;
    struct dav_res pr = {0};
    struct dav_parsed parsed = {0};
    int rc = 0;

    switch (r->kind) {
    case DAV_K_ROOT:
        if (r->space == DAV_SPACE_PRINC) {
            pr.space = DAV_SPACE_PRINC;
            pr.kind = DAV_K_PRINCIPAL;
            dav_principal_href(q, pr.href, sizeof(pr.href));
            rc = dav_props_response(q, &pr, c->ps, &parsed, c->b);
            break;
        }
        /* the root lists the collections like the home does */
        __attribute__((fallthrough));
    case DAV_K_HOME:
        c->sp = r->space;
        rc = dav_folder_list(q, r->space, dav_pf_folder_cb, c);
        break;
    case DAV_K_COLL:
        c->sp = r->space;
        c->folder = &r->folder;
        rc = store_item_list(q->u, r->folder.id, 0, UINT32_MAX, dav_pf_item_cb, c, &e);
        break;
    default:
        break;
    }
    return rc < 0 || c->failed ? -1 : 0;
}

/* Reads the request body into ps: an empty body is allprop (RFC 4918 §9.1). */
static int dav_pf_parse(struct dav_req *q, struct dav_pset *ps)
{
    xmlDocPtr doc;
    xmlNodePtr root, prop;
    int rc = -1;

    if (q->body_len == 0) {
        ps->mode = DAV_PM_ALLPROP;
        return 0;
    }
    doc = dav_xml_parse(q->body, q->body_len);
    if (!doc)
        return -1;
    root = xmlDocGetRootElement(doc);
    if (!dav_xml_is(root, NS_DAV, "propfind"))
        goto out;
    if ((prop = dav_xml_child(root, NS_DAV, "prop"))) {
        ps->mode = DAV_PM_PROP;
        rc = dav_pset_from_prop(prop, ps);
    } else if (dav_xml_child(root, NS_DAV, "propname")) {
        ps->mode = DAV_PM_PROPNAME;
        rc = 0;
    } else if (dav_xml_child(root, NS_DAV, "allprop")) {
        ps->mode = DAV_PM_ALLPROP;
        rc = dav_pset_from_prop(dav_xml_child(root, NS_DAV, "include"), ps);
    }
out:
    if (rc != 0) {
        const char *precond = ps->precond;
        dav_pset_free(ps);
        ps->precond = precond;
        xmlFreeDoc(doc);
        return -1;
    }
    ps->doc = doc; /* the names in ps point into it */
    return 0;
}

void dav_method_propfind(struct dav_req *q)
{
    struct dav_pset ps = {0};
    struct buf b = {0};
    struct dav_parsed parsed = {0};
    struct dav_pf c = {q, &ps, &b, 0, NULL, 0};
    int depth = dav_depth(q, -1);

    if (q->res.kind == DAV_K_NONE || q->res.kind == DAV_K_NEWCOLL || q->res.kind == DAV_K_NEWITEM) {
        dav_send_status(q, 404);
        return;
    }
    if (depth == -2) {
        dav_send_status(q, 400);
        return;
    }
    if (depth == -1 && q->res.kind != DAV_K_ITEM) {
        dav_send_error(q, 403, NS_DAV, "propfind-finite-depth", NULL);
        return;
    }
    if (dav_pf_parse(q, &ps) != 0) {
        dav_send_pset_error(q, &ps);
        return;
    }
    dav_ms_open(&b);
    if (dav_props_response(q, &q->res, &ps, &parsed, &b) != 0 ||
        (depth != 0 && dav_pf_children(q, &c) != 0)) {
        buf_free(&b);
        dav_send_status(q, 500);
        goto out;
    }
    dav_ms_close(&b);
    dav_send_ms(q, &b);
out:
    dav_parsed_free(&parsed);
    dav_pset_free(&ps);
}
