/*
 * dav_vcard_filter.c — CardDAV addressbook-query filters (RFC 6352 §10.5) and the
 * address-data request element (§10.4): compiled once per REPORT from the DAV core's
 * already parsed (safely) libxml2 nodes, then applied to every card of the collection.
 *
 * Text matching folds case with the requested collation (RFC 4790): i;octet compares
 * bytes, i;ascii-casemap folds ASCII letters, i;unicode-casemap (the default) also folds
 * the Latin, Greek and Cyrillic letters contact names are written in — a simple fold, not
 * full Unicode normalization.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dav/dav_vcard_int.h"

#define NS_CARDDAV      "urn:ietf:params:xml:ns:carddav"
#define MAX_PROPFILTERS 100
#define MAX_TESTS       100 /* text-match or param-filter per prop-filter */
#define MAX_TEXT        4096
#define MAX_NAME        256

enum coll { COLL_OCTET, COLL_ASCII, COLL_UNICODE };
enum mt { MT_EQUALS, MT_CONTAINS, MT_STARTS, MT_ENDS };

struct text_match {
    char *text; /* already folded with coll */
    enum coll coll;
    enum mt mt;
    int negate;
};

struct param_filter {
    char *name;
    int not_defined;
    struct text_match *tm; /* NULL: the parameter only has to be there */
};

struct prop_filter {
    char *name, *group; /* group NULL: any group */
    int not_defined, allof;
    struct text_match *tm;
    size_t ntm;
    struct param_filter *pf;
    size_t npf;
};

struct dav_vcard_filter {
    int allof;
    struct prop_filter *p;
    size_t n;
};

/* ---- collations ---- */

/* Simple case fold of one code point (lower case; ß handled by the caller). */
static unsigned fold_cp(unsigned c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7))
        return c + 32;
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177) || (c >= 0x1E00 && c <= 0x1E95) ||
        (c >= 0x1EA0 && c <= 0x1EFF))
        return c & 1 ? c : c + 1;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
        return c & 1 ? c + 1 : c;
    if (c == 0x178)
        return 0xFF;
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
        return c + 32;
    if (c == 0x3C2)
        return 0x3C3; /* final sigma */
    if (c == 0x386)
        return 0x3AC; /* Greek capitals with tonos */
    if (c >= 0x388 && c <= 0x38A)
        return c + 37;
    if (c == 0x38C)
        return 0x3CC;
    if (c == 0x38E || c == 0x38F)
        return c + 63;
    if (c >= 0x410 && c <= 0x42F)
        return c + 32;
    if (c >= 0x400 && c <= 0x40F)
        return c + 80;
    return c;
}

/* Decodes one UTF-8 sequence at s (n bytes left); *len gets its length. A byte that does
 * not start a valid sequence is returned as itself (length 1). */
static unsigned utf8_next(const unsigned char *s, size_t n, size_t *len)
{
    unsigned c = s[0];
    size_t k = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;

    *len = 1;
    if (c < 0x80 || k == 0 || n <= k)
        return c;
    unsigned cp = c & (0x3F >> k);
    for (size_t i = 1; i <= k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return c;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    *len = k + 1;
    return cp;
}

static size_t utf8_put(unsigned cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* s folded for the collation, malloc'd. A folded letter never takes more bytes than the
 * original (ß → "ss" is two for two), so 2n+1 always fits. */
static char *fold(const char *s, enum coll coll)
{
    size_t n = strlen(s);
    char *out = malloc(2 * n + 1), *o = out;

    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (coll != COLL_UNICODE || c < 0x80) {
            *o++ = coll != COLL_OCTET && c >= 'A' && c <= 'Z' ? (char)(c + 32) : (char)c;
            i++;
            continue;
        }
        size_t len;
        unsigned cp = utf8_next((const unsigned char *)s + i, n - i, &len);
        if (len == 1) {
            *o++ = (char)c;
        } else if (cp == 0xDF) {
            memcpy(o, "ss", 2);
            o += 2;
        } else {
            o += utf8_put(fold_cp(cp), o);
        }
        i += len;
    }
    *o = '\0';
    return out;
}

/* ---- matching ---- */

static int text_matches(const struct text_match *t, const char *raw)
{
    char *plain = dav_vcard_unescape(raw);
    char *v = plain ? fold(plain, t->coll) : NULL;
    int r = 0;

    if (v) {
        size_t vl = strlen(v), tl = strlen(t->text);
        switch (t->mt) {
        case MT_EQUALS:
            r = strcmp(v, t->text) == 0;
            break;
        case MT_CONTAINS:
            r = strstr(v, t->text) != NULL;
            break;
        case MT_STARTS:
            r = vl >= tl && memcmp(v, t->text, tl) == 0;
            break;
        case MT_ENDS:
            r = vl >= tl && memcmp(v + vl - tl, t->text, tl) == 0;
            break;
        }
    }
    free(plain);
    free(v);
    return r;
}

/* A parameter value matches when it or one item of its comma list does. */
static int param_value_matches(const struct text_match *t, const char *value)
{
    if (text_matches(t, value))
        return 1;
    if (!strchr(value, ','))
        return 0;
    for (const char *s = value;;) {
        size_t n = strcspn(s, ",");
        char *item = strndup(s, n);
        int r = item && text_matches(t, item);
        free(item);
        if (r)
            return 1;
        if (!s[n])
            return 0;
        s += n + 1;
    }
}

static int param_filter_matches(const struct param_filter *f, const struct dav_vcard_prop *p)
{
    int found = 0, match = 0;

    for (size_t i = 0; i < p->nparams; i++) {
        if (!dav_vc_ieq(p->params[i].name, f->name))
            continue;
        found = 1;
        if (f->tm && param_value_matches(f->tm, p->params[i].value))
            match = 1;
    }
    if (f->not_defined)
        return !found;
    if (!f->tm)
        return found;
    return found && (f->tm->negate ? !match : match);
}

static int prop_named(const struct prop_filter *f, const struct dav_vcard_prop *p)
{
    if (!dav_vc_ieq(p->name, f->name))
        return 0;
    return !f->group || (p->group && dav_vc_ieq(p->group, f->group));
}

/* One property instance against the prop-filter's tests. */
static int instance_matches(const struct prop_filter *f, const struct dav_vcard_prop *p)
{
    size_t ntests = f->ntm + f->npf;

    for (size_t i = 0; i < ntests; i++) {
        int r;
        if (i < f->ntm)
            r = text_matches(&f->tm[i], p->value) != f->tm[i].negate;
        else
            r = param_filter_matches(&f->pf[i - f->ntm], p);
        if (r && !f->allof)
            return 1;
        if (!r && f->allof)
            return 0;
    }
    return f->allof;
}

static int prop_filter_matches(const struct prop_filter *f, const struct dav_vcard *v)
{
    int defined = 0;

    for (size_t i = 0; i < v->nprops; i++) {
        const struct dav_vcard_prop *p = &v->props[i].p;
        if (!prop_named(f, p))
            continue;
        defined = 1;
        if (f->not_defined)
            break;
        if (!f->ntm && !f->npf)
            return 1;
        if (instance_matches(f, p))
            return 1;
    }
    return f->not_defined ? !defined : 0;
}

int dav_vcard_filter_match(const struct dav_vcard_filter *f, const struct dav_vcard *v)
{
    if (!f || !f->n)
        return 1;
    for (size_t i = 0; i < f->n; i++) {
        int r = prop_filter_matches(&f->p[i], v);
        if (r && !f->allof)
            return 1;
        if (!r && f->allof)
            return 0;
    }
    return f->allof;
}

/* ---- compiling ---- */

struct cctx {
    const char **precond;
    char *err;
    size_t errlen;
};

static int cfail(struct cctx *c, const char *precond, const char *msg)
{
    *c->precond = precond;
    if (c->err && c->errlen)
        snprintf(c->err, c->errlen, "%s", msg);
    return -1;
}

static int is_card(xmlNodePtr n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
           !strcmp((const char *)n->ns->href, NS_CARDDAV) && !strcmp((const char *)n->name, name);
}

/* The CardDAV elements under n; elements of other namespaces are ignored (WebDAV's rule
 * for unknown elements). */
static xmlNodePtr next_card(xmlNodePtr n)
{
    for (; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
            !strcmp((const char *)n->ns->href, NS_CARDDAV))
            return n;
    return NULL;
}

/* An attribute's value, malloc'd (NULL when absent). */
static char *attr(xmlNodePtr n, const char *name)
{
    xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
    char *s = v ? strdup((const char *)v) : NULL;
    xmlFree(v);
    return s;
}

/* anyof (default) 0, allof 1, -1 for anything else. */
static int test_attr(xmlNodePtr n)
{
    char *t = attr(n, "test");
    int r = !t ? 0 : !strcmp(t, "anyof") ? 0 : !strcmp(t, "allof") ? 1 : -1;
    free(t);
    return r;
}

static char *name_attr(xmlNodePtr n)
{
    char *s = attr(n, "name");

    if (s && (!*s || strlen(s) > MAX_NAME ||
              strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                        "qrstuvwxyz0123456789-.") != strlen(s))) {
        free(s);
        return NULL;
    }
    return s;
}

static int compile_text_match(struct cctx *c, xmlNodePtr n, struct text_match *t)
{
    char *coll = attr(n, "collation"), *mt = attr(n, "match-type"),
         *neg = attr(n, "negate-condition");
    xmlChar *text = NULL;
    int rc = -1;

    memset(t, 0, sizeof(*t));
    if (!coll || !strcmp(coll, "i;unicode-casemap"))
        t->coll = COLL_UNICODE;
    else if (!strcmp(coll, "i;ascii-casemap"))
        t->coll = COLL_ASCII;
    else if (!strcmp(coll, "i;octet"))
        t->coll = COLL_OCTET;
    else {
        cfail(c, "supported-collation", "unsupported collation");
        goto out;
    }
    if (!mt || !strcmp(mt, "contains"))
        t->mt = MT_CONTAINS;
    else if (!strcmp(mt, "equals"))
        t->mt = MT_EQUALS;
    else if (!strcmp(mt, "starts-with"))
        t->mt = MT_STARTS;
    else if (!strcmp(mt, "ends-with"))
        t->mt = MT_ENDS;
    else {
        cfail(c, "valid-filter", "unknown match-type");
        goto out;
    }
    if (neg && strcmp(neg, "yes") && strcmp(neg, "no")) {
        cfail(c, "valid-filter", "negate-condition is yes or no");
        goto out;
    }
    t->negate = neg && !strcmp(neg, "yes");
    text = xmlNodeGetContent(n);
    if (text && strlen((const char *)text) > MAX_TEXT) {
        cfail(c, "valid-filter", "text-match too long");
        goto out;
    }
    t->text = fold(text ? (const char *)text : "", t->coll);
    if (!t->text) {
        cfail(c, "valid-filter", "out of memory");
        goto out;
    }
    rc = 0;
out:
    free(coll);
    free(mt);
    free(neg);
    xmlFree(text);
    return rc;
}

static int compile_param_filter(struct cctx *c, xmlNodePtr n, struct param_filter *f)
{
    xmlNodePtr k = next_card(n->children);

    f->name = name_attr(n);
    if (!f->name)
        return cfail(c, "valid-filter", "param-filter needs a name");
    if (!k)
        return 0;
    if (next_card(k->next))
        return cfail(c, "valid-filter", "param-filter holds one test at most");
    if (is_card(k, "is-not-defined")) {
        f->not_defined = 1;
        return 0;
    }
    if (!is_card(k, "text-match"))
        return cfail(c, "valid-filter", "unknown element in param-filter");
    f->tm = calloc(1, sizeof(*f->tm));
    if (!f->tm)
        return cfail(c, "valid-filter", "out of memory");
    return compile_text_match(c, k, f->tm);
}

static int compile_prop_filter(struct cctx *c, xmlNodePtr n, struct prop_filter *f)
{
    char *dot;

    f->name = name_attr(n);
    if (!f->name)
        return cfail(c, "valid-filter", "prop-filter needs a name");
    dot = strchr(f->name, '.');
    if (dot) {
        /* "item1.EMAIL": only that group's property */
        *dot = '\0';
        f->group = f->name;
        f->name = strdup(dot + 1);
        if (!f->name || !*f->name || strchr(f->name, '.'))
            return cfail(c, "valid-filter", "bad prop-filter name");
    }
    f->allof = test_attr(n);
    if (f->allof < 0)
        return cfail(c, "valid-filter", "test is anyof or allof");
    f->tm = calloc(MAX_TESTS, sizeof(*f->tm));
    f->pf = calloc(MAX_TESTS, sizeof(*f->pf));
    if (!f->tm || !f->pf)
        return cfail(c, "valid-filter", "out of memory");
    for (xmlNodePtr k = next_card(n->children); k; k = next_card(k->next)) {
        if (is_card(k, "is-not-defined")) {
            if (f->ntm || f->npf || f->not_defined)
                return cfail(c, "valid-filter", "is-not-defined stands alone");
            f->not_defined = 1;
        } else if (f->not_defined) {
            return cfail(c, "valid-filter", "is-not-defined stands alone");
        } else if (is_card(k, "text-match")) {
            if (f->ntm == MAX_TESTS)
                return cfail(c, "valid-filter", "too many text-match elements");
            if (compile_text_match(c, k, &f->tm[f->ntm++]) < 0)
                return -1;
        } else if (is_card(k, "param-filter")) {
            if (f->npf == MAX_TESTS)
                return cfail(c, "valid-filter", "too many param-filter elements");
            if (compile_param_filter(c, k, &f->pf[f->npf++]) < 0)
                return -1;
        } else {
            return cfail(c, "valid-filter", "unknown element in prop-filter");
        }
    }
    return 0;
}

int dav_vcard_filter_compile(xmlNodePtr filter, struct dav_vcard_filter **out, const char **precond,
                             char *err, size_t errlen)
{
    static const char *dummy;
    struct cctx c = {precond ? precond : &dummy, err, errlen};
    struct dav_vcard_filter *f = calloc(1, sizeof(*f));

    *out = NULL;
    if (!f)
        return cfail(&c, "valid-filter", "out of memory");
    if (!filter)
        goto done; /* no filter element: every card matches */
    if (!is_card(filter, "filter")) {
        cfail(&c, "valid-filter", "not a CARDDAV:filter");
        goto err;
    }
    f->allof = test_attr(filter);
    if (f->allof < 0) {
        cfail(&c, "valid-filter", "test is anyof or allof");
        goto err;
    }
    f->p = calloc(MAX_PROPFILTERS, sizeof(*f->p));
    if (!f->p) {
        cfail(&c, "valid-filter", "out of memory");
        goto err;
    }
    for (xmlNodePtr k = next_card(filter->children); k; k = next_card(k->next)) {
        if (!is_card(k, "prop-filter")) {
            cfail(&c, "valid-filter", "only prop-filter may appear in filter");
            goto err;
        }
        if (f->n == MAX_PROPFILTERS) {
            cfail(&c, "valid-filter", "too many prop-filter elements");
            goto err;
        }
        if (compile_prop_filter(&c, k, &f->p[f->n++]) < 0)
            goto err;
    }
done:
    *out = f;
    return 0;
err:
    dav_vcard_filter_free(f);
    return -1;
}

void dav_vcard_filter_free(struct dav_vcard_filter *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        struct prop_filter *p = &f->p[i];
        for (size_t j = 0; p->tm && j < p->ntm; j++)
            free(p->tm[j].text);
        for (size_t j = 0; p->pf && j < p->npf; j++) {
            free(p->pf[j].name);
            if (p->pf[j].tm)
                free(p->pf[j].tm->text);
            free(p->pf[j].tm);
        }
        free(p->tm);
        free(p->pf);
        free(p->name);
        free(p->group);
    }
    free(f->p);
    free(f);
}
