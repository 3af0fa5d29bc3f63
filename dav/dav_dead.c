/*
 * dav_dead.c — dead properties of collections (RFC 4918 §4): properties clients set that
 * we do not interpret (Apple's refresh rate, client bookkeeping) are kept as they came
 * and returned by PROPFIND. Each is the property element serialised with its namespace
 * declarations, in the store's engine state under "dav.dead.<folder id>", key
 * "{namespace}name"; deleting the collection drops them. Items carry no dead properties.
 *
 * Bounded: a value of at most DAV_DEAD_MAX bytes, at most DAV_DEAD_COUNT per collection.
 */
#include <inttypes.h>
#include <libxml/xmlsave.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dav/dav_int.h"

static void dav_dead_ns(int64_t folder_id, char *out, size_t outlen)
{
    snprintf(out, outlen, "dav.dead.%" PRId64, folder_id);
}

static int dav_dead_key(const char *ns, const char *name, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "{%s}%s", ns, name);

    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

/* The element alone, with the namespace declarations it needs, as text. */
static char *dav_dead_serialise(xmlNodePtr el, size_t *len)
{
    xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
    xmlNodePtr copy;
    xmlBufferPtr buf;
    char *out = NULL;

    if (!doc)
        return NULL;
    copy = xmlDocCopyNode(el, doc, 1);
    buf = xmlBufferCreate();
    if (copy && buf) {
        xmlDocSetRootElement(doc, copy);
        if (xmlNodeDump(buf, doc, copy, 0, 0) > 0) {
            *len = (size_t)xmlBufferLength(buf);
            out = strndup((const char *)xmlBufferContent(buf), *len);
        }
    }
    if (buf)
        xmlBufferFree(buf);
    xmlFreeDoc(doc);
    return out;
}

struct dav_dead_count {
    size_t n;
    int exists;
    const char *key;
};

static int dav_dead_count_cb(const char *key, const void *val, size_t len, void *ctx)
{
    struct dav_dead_count *c = ctx;

    (void)val;
    (void)len;
    c->n++;
    if (strcmp(key, c->key) == 0)
        c->exists = 1;
    return 0;
}

int dav_dead_check(struct dav_req *q, int64_t folder_id, xmlNodePtr el)
{
    char ns[64], key[1100];
    struct dav_dead_count c = {0, 0, key};
    struct store_err e;
    size_t len = 0;
    char *val;

    dav_dead_ns(folder_id, ns, sizeof(ns));
    if (dav_dead_key(dav_xml_ns(el), (const char *)el->name, key, sizeof(key)) != 0 ||
        store_state_list(q->u, ns, dav_dead_count_cb, &c, &e) != 0 ||
        (!c.exists && c.n >= DAV_DEAD_COUNT))
        return -1;
    val = dav_dead_serialise(el, &len);
    free(val);
    return val && len <= DAV_DEAD_MAX ? 0 : -1;
}

int dav_dead_set(struct dav_req *q, int64_t folder_id, xmlNodePtr el)
{
    char ns[64], key[1100];
    struct store_err e;
    size_t len = 0;
    char *val;
    int rc;

    dav_dead_ns(folder_id, ns, sizeof(ns));
    if (dav_dead_key(dav_xml_ns(el), (const char *)el->name, key, sizeof(key)) != 0)
        return -1;
    val = dav_dead_serialise(el, &len);
    if (!val || len > DAV_DEAD_MAX) {
        free(val);
        return -1;
    }
    rc = store_state_put(q->u, ns, key, val, len, &e);
    free(val);
    return rc == 0 ? 0 : -1;
}

int dav_dead_del(struct dav_req *q, int64_t folder_id, const char *pns, const char *name)
{
    char ns[64], key[1100];
    struct store_err e;
    int rc;

    dav_dead_ns(folder_id, ns, sizeof(ns));
    if (dav_dead_key(pns, name, key, sizeof(key)) != 0)
        return 0; /* could never have been stored */
    rc = store_state_del(q->u, ns, key, &e);
    return rc == 0 || rc == STORE_ENOTFOUND ? 0 : -1;
}

int dav_dead_get(struct dav_req *q, int64_t folder_id, const char *pns, const char *name,
                 struct buf *out)
{
    char ns[64], key[1100];
    struct store_err e;
    void *val = NULL;
    size_t len = 0;

    dav_dead_ns(folder_id, ns, sizeof(ns));
    if (dav_dead_key(pns, name, key, sizeof(key)) != 0 ||
        store_state_get(q->u, ns, key, &val, &len, &e) != 0)
        return 0;
    buf_put(out, val, len);
    free(val);
    return 1;
}

struct dav_dead_all {
    struct buf *out;
    int names_only;
};

static int dav_dead_all_cb(const char *key, const void *val, size_t len, void *ctx)
{
    struct dav_dead_all *a = ctx;
    const char *close = strchr(key, '}');

    if (!a->names_only) {
        buf_put(a->out, val, len);
        return 0;
    }
    if (key[0] != '{' || !close)
        return 0;
    buf_puts(a->out, "<X:");
    buf_puts(a->out, close + 1);
    buf_puts(a->out, " xmlns:X=\"");
    dav_buf_esc(a->out, key + 1, (size_t)(close - key - 1));
    buf_puts(a->out, "\"/>");
    return 0;
}

void dav_dead_all(struct dav_req *q, int64_t folder_id, int names_only, struct buf *out)
{
    struct dav_dead_all a = {out, names_only};
    char ns[64];
    struct store_err e;

    dav_dead_ns(folder_id, ns, sizeof(ns));
    store_state_list(q->u, ns, dav_dead_all_cb, &a, &e);
}

struct dav_dead_keys {
    char **k;
    size_t n;
};

static int dav_dead_keys_cb(const char *key, const void *val, size_t len, void *ctx)
{
    struct dav_dead_keys *d = ctx;
    char **k;

    (void)val;
    (void)len;
    if (d->n >= DAV_DEAD_COUNT * 2)
        return 1;
    k = realloc(d->k, (d->n + 1) * sizeof(*k));
    if (!k)
        return 1;
    d->k = k;
    d->k[d->n] = strdup(key);
    if (d->k[d->n])
        d->n++;
    return 0;
}

int dav_dead_drop(struct dav_req *q, int64_t folder_id)
{
    struct dav_dead_keys d = {NULL, 0};
    char ns[64];
    struct store_err e;
    size_t i;
    int rc = 0;

    dav_dead_ns(folder_id, ns, sizeof(ns));
    if (store_state_list(q->u, ns, dav_dead_keys_cb, &d, &e) != 0)
        rc = -1;
    for (i = 0; i < d.n; i++) {
        if (rc == 0 && store_state_del(q->u, ns, d.k[i], &e) != 0)
            rc = -1;
        free(d.k[i]);
    }
    free(d.k);
    return rc;
}
