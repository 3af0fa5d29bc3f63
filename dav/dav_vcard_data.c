/*
 * dav_vcard_data.c — the CARDDAV:address-data request element (RFC 6352 §10.4): which
 * media type and version the client wants the cards in, and which properties. Most
 * requests ask for the card as stored, and then the stored bytes are answered without
 * parsing; a version change or a property subset renders the parsed card.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dav/dav_vcard_int.h"

#define NS_CARDDAV     "urn:ietf:params:xml:ns:carddav"
#define PRECOND_CONV   "supported-address-data-conversion"
#define MAX_DATA_PROPS 200
#define MAX_NAME       256

struct dav_vcard_data {
    int version; /* 0: as stored */
    int subset;  /* only the named properties */
    char **names;
    unsigned char *novalue;
    size_t n;
};

static int dfail(const char **precond, char *err, size_t errlen, const char *pre, const char *msg)
{
    if (precond)
        *precond = pre;
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    return -1;
}

static int is_card_elem(xmlNodePtr n)
{
    return n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
           !strcmp((const char *)n->ns->href, NS_CARDDAV);
}

/* "3.0" / "4.0" → 3 / 4, -1 for anything else. */
static int parse_version(const char *s, size_t n)
{
    if (n == 3 && !strncmp(s, "3.0", 3))
        return 3;
    if (n == 3 && !strncmp(s, "4.0", 3))
        return 4;
    return -1;
}

/* content-type "text/vcard" with optional parameters, of which version= counts (some
 * clients put the version there rather than in the attribute). 0, or -1 if not vCard. */
static int parse_ctype(const char *ct, int *version)
{
    size_t n = strcspn(ct, ";");

    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n != 10 || strncasecmp(ct, "text/vcard", 10))
        return -1;
    for (const char *p = strchr(ct, ';'); p; p = strchr(p + 1, ';')) {
        const char *s = p + 1 + strspn(p + 1, " \t");
        if (!strncasecmp(s, "version=", 8)) {
            s += 8;
            size_t l = strcspn(s, "; \t");
            if (l >= 2 && s[0] == '"' && s[l - 1] == '"')
                s++, l -= 2;
            *version = parse_version(s, l);
            if (*version < 0)
                return -1;
        }
    }
    return 0;
}

static int add_prop(struct dav_vcard_data *d, xmlNodePtr k)
{
    xmlChar *name = xmlGetNoNsProp(k, (const xmlChar *)"name");
    xmlChar *nov = xmlGetNoNsProp(k, (const xmlChar *)"novalue");
    int rc = -1;

    if (!name || !*name || strlen((const char *)name) > MAX_NAME || d->n == MAX_DATA_PROPS ||
        (nov && strcmp((const char *)nov, "yes") && strcmp((const char *)nov, "no")))
        goto out;
    d->names[d->n] = strdup((const char *)name);
    if (!d->names[d->n])
        goto out;
    d->novalue[d->n++] = nov && !strcmp((const char *)nov, "yes");
    rc = 0;
out:
    xmlFree(name);
    xmlFree(nov);
    return rc;
}

static int read_children(struct dav_vcard_data *d, xmlNodePtr n)
{
    int allprop = 0;

    for (xmlNodePtr k = n->children; k; k = k->next) {
        if (!is_card_elem(k))
            continue; /* other namespaces: ignored */
        if (!strcmp((const char *)k->name, "allprop")) {
            allprop = 1;
        } else if (!strcmp((const char *)k->name, "prop")) {
            if (!d->names) {
                d->names = calloc(MAX_DATA_PROPS, sizeof(*d->names));
                d->novalue = calloc(MAX_DATA_PROPS, 1);
                if (!d->names || !d->novalue)
                    return -1;
            }
            if (add_prop(d, k) < 0)
                return -1;
        } else {
            return -1;
        }
    }
    if (allprop && d->n)
        return -1; /* allprop or a list of prop, not both */
    d->subset = d->n > 0;
    return 0;
}

int dav_vcard_data_compile(xmlNodePtr address_data, struct dav_vcard_data **out,
                           const char **precond, char *err, size_t errlen)
{
    struct dav_vcard_data *d = calloc(1, sizeof(*d));
    xmlChar *ct = NULL, *ver = NULL;
    int rc = -1;

    *out = NULL;
    if (precond)
        *precond = NULL;
    if (!d)
        return dfail(precond, err, errlen, NULL, "out of memory");
    if (!address_data)
        goto done;
    if (!is_card_elem(address_data) || strcmp((const char *)address_data->name, "address-data")) {
        dfail(precond, err, errlen, NULL, "not a CARDDAV:address-data element");
        goto err;
    }
    ct = xmlGetNoNsProp(address_data, (const xmlChar *)"content-type");
    ver = xmlGetNoNsProp(address_data, (const xmlChar *)"version");
    if (ct && parse_ctype((const char *)ct, &d->version) < 0) {
        dfail(precond, err, errlen, PRECOND_CONV, "only text/vcard is available");
        goto err;
    }
    if (ver && (d->version = parse_version((const char *)ver, strlen((const char *)ver))) < 0) {
        dfail(precond, err, errlen, PRECOND_CONV, "only vCard 3.0 and 4.0 are available");
        goto err;
    }
    if (read_children(d, address_data) < 0) {
        dfail(precond, err, errlen, NULL, "malformed address-data element");
        goto err;
    }
done:
    *out = d;
    d = NULL;
    rc = 0;
err:
    xmlFree(ct);
    xmlFree(ver);
    dav_vcard_data_free(d);
    return rc;
}

void dav_vcard_data_free(struct dav_vcard_data *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        free(d->names[i]);
    free(d->names);
    free(d->novalue);
    free(d);
}

int dav_vcard_data_version(const struct dav_vcard_data *d)
{
    return d ? d->version : 0;
}

int dav_vcard_data_needs_parse(const struct dav_vcard_data *d, int stored_version)
{
    if (!d)
        return 0;
    return d->subset || (d->version && d->version != stored_version);
}

/* Which properties a subset keeps: the named ones ("EMAIL", or "item1.EMAIL" for one
 * group), plus what a card cannot be without (UID, FN, N; BEGIN/END/VERSION are always
 * written). 2 asks for the property with an empty value (novalue="yes"). */
static int keep(const struct dav_vcard_prop *p, void *arg)
{
    const struct dav_vcard_data *d = arg;

    if (!strcmp(p->name, "UID") || !strcmp(p->name, "FN") || !strcmp(p->name, "N"))
        return 1;
    for (size_t i = 0; i < d->n; i++) {
        const char *want = d->names[i], *dot = strchr(want, '.');
        int hit;
        if (dot)
            hit = p->group && strlen(p->group) == (size_t)(dot - want) &&
                  !strncasecmp(p->group, want, (size_t)(dot - want)) &&
                  dav_vc_ieq(p->name, dot + 1);
        else
            hit = dav_vc_ieq(p->name, want);
        if (hit)
            return d->novalue[i] ? 2 : 1;
    }
    return 0;
}

char *dav_vcard_data_render(const struct dav_vcard_data *d, const struct dav_vcard *v, size_t *len)
{
    int version = d && d->version ? d->version : v->version;
    struct dav_vcard *conv = NULL;
    const struct dav_vcard *src = v;
    char *out;

    if (version != v->version) {
        conv = dav_vc_convert(v, version);
        if (!conv)
            return NULL;
        src = conv;
    }
    out = dav_vc_write(src, d && d->subset ? keep : NULL, (void *)d, len);
    dav_vcard_free(conv);
    return out;
}
