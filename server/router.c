/*
 * router.c — virtual hosts and path routes for the HTTP front end.
 *
 * Kept free of libmicrohttpd so that the unit tests can drive it directly: a Host header
 * becomes a tenant (a hosted domain) and a path becomes a route. Locking is the caller's
 * business; http.c guards the route table with a read-write lock.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/server.h"

#define ROUTER_HOST_MAX  253 /* longest DNS name, without the trailing dot */
#define ROUTER_LABEL_MAX 63

struct router_entry {
    struct http_route route; /* route.path points at path below */
    char *path;
    size_t path_len;
};

struct router_table {
    struct router_entry **v;
    size_t n, cap;
};

/* The part after ':' in a Host header: 1 to 5 digits. */
static int router_port_ok(const char *p)
{
    size_t n = strlen(p);

    if (n == 0 || n > 5)
        return 0;
    for (; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 0;
    return 1;
}

/* "[v6]" or "[v6]:port": copies the bracketed part (brackets kept) and checks the
 * literal holds only what an IPv6 address can. */
static int router_host_v6(const char *in, char *out, size_t outlen)
{
    const char *end = strchr(in, ']');
    size_t n;

    if (!end || end == in + 1)
        return -1;
    if (end[1] != '\0' && (end[1] != ':' || !router_port_ok(end + 2)))
        return -1;
    n = (size_t)(end - in) + 1;
    if (n >= outlen)
        return -1;
    for (size_t i = 1; i + 1 < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (!isxdigit(c) && c != ':' && c != '.')
            return -1;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[n] = '\0';
    return 0;
}

/* Checks a lower-cased DNS name: letters, digits, '-' and '.', no empty label, labels of
 * at most 63 characters. */
static int router_name_ok(const char *s, size_t n)
{
    size_t label = 0;

    if (n == 0 || n > ROUTER_HOST_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return -1;
            label = 0;
            continue;
        }
        if (!islower(c) && !isdigit(c) && c != '-')
            return -1;
        if (++label > ROUTER_LABEL_MAX)
            return -1;
    }
    return label == 0 ? -1 : 0;
}

int router_host_normalize(const char *host, char *out, size_t outlen)
{
    const char *colon;
    size_t n;

    if (!host || !out || outlen == 0)
        return -1;
    if (host[0] == '[')
        return router_host_v6(host, out, outlen);
    colon = strchr(host, ':');
    n = colon ? (size_t)(colon - host) : strlen(host);
    if (colon && !router_port_ok(colon + 1))
        return -1;
    /* One trailing dot is the absolute form of the same name. */
    if (n > 0 && host[n - 1] == '.')
        n--;
    if (n == 0 || n >= outlen)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)host[i]);
    out[n] = '\0';
    return router_name_ok(out, n);
}

/* Tries NAME as a hosted domain. 1 found, 0 not found, <0 store failure. */
static int router_try_domain(struct store *s, const char *name, struct store_domain *out)
{
    int rc = store_domain_get(s, name, out, NULL);

    if (rc == 0)
        return 1;
    return rc == STORE_ENOTFOUND ? 0 : rc;
}

int router_resolve_host(struct store *s, const char *web_base, const char *host,
                        struct store_domain *out, const char **kind)
{
    static const struct {
        const char *prefix;
        const char *kind;
    } prefixes[] = {
        {"autodiscover.", "autodiscover"},
        {"autoconfig.", "autoconfig"},
        {"mail.", "mail"},
    };
    size_t hl = strlen(host), bl = web_base ? strlen(web_base) : 0;
    int rc;

    /* <label>.<web_base>: the label alone decides, so a web_base subdomain never falls
     * through to a same-named hosted domain. */
    if (bl > 0 && hl > bl + 1 && host[hl - bl - 1] == '.' &&
        strcasecmp(host + hl - bl, web_base) == 0) {
        char label[254];
        size_t ll = hl - bl - 1;
        if (ll >= sizeof(label) || memchr(host, '.', ll))
            return STORE_ENOTFOUND;
        memcpy(label, host, ll);
        label[ll] = '\0';
        rc = store_domain_by_label(s, label, out);
        if (rc == 0)
            *kind = "label";
        return rc;
    }
    rc = router_try_domain(s, host, out);
    if (rc != 0) {
        if (rc > 0)
            *kind = "domain";
        return rc > 0 ? 0 : rc;
    }
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t pl = strlen(prefixes[i].prefix);
        if (hl <= pl || strncmp(host, prefixes[i].prefix, pl) != 0)
            continue;
        rc = router_try_domain(s, host + pl, out);
        if (rc > 0)
            *kind = prefixes[i].kind;
        if (rc != 0)
            return rc > 0 ? 0 : rc;
    }
    return STORE_ENOTFOUND;
}

struct router_table *router_table_new(void)
{
    return calloc(1, sizeof(struct router_table));
}

void router_table_free(struct router_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i]->path);
        free(t->v[i]);
    }
    free(t->v);
    free(t);
}

static struct router_entry *router_find_exact(struct router_table *t, const char *path)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i]->path, path) == 0)
            return t->v[i];
    return NULL;
}

int router_table_add(struct router_table *t, const struct http_route *rt)
{
    struct router_entry *e;

    if (!t || !rt || !rt->path || rt->path[0] != '/')
        return -1;
    e = router_find_exact(t, rt->path);
    if (e) {
        /* Replacement keeps the entry (and its path string) so that the slot stays put. */
        e->route = *rt;
        e->route.path = e->path;
        return 0;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct router_entry **v = realloc(t->v, cap * sizeof(*v));
        if (!v)
            return -1;
        t->v = v;
        t->cap = cap;
    }
    e = calloc(1, sizeof(*e));
    if (!e || !(e->path = strdup(rt->path))) {
        free(e);
        return -1;
    }
    e->path_len = strlen(e->path);
    e->route = *rt;
    e->route.path = e->path;
    t->v[t->n++] = e;
    return 0;
}

/* Does PATH fall under route E? Exact match, or with HTTP_ROUTE_PREFIX anything below it. */
static int router_entry_matches(const struct router_entry *e, const char *path, size_t plen)
{
    int nocase = (e->route.flags & HTTP_ROUTE_NOCASE) != 0;
    size_t n = e->path_len;

    if (plen < n)
        return 0;
    if (nocase ? strncasecmp(path, e->path, n) != 0 : strncmp(path, e->path, n) != 0)
        return 0;
    if (plen == n)
        return 1;
    if (!(e->route.flags & HTTP_ROUTE_PREFIX))
        return 0;
    /* "/caldav" covers "/caldav/x" but not "/caldavx"; a route ending in '/' covers
     * everything after it. */
    return path[n] == '/' || e->path[n - 1] == '/';
}

const struct http_route *router_match(const struct router_table *t, const char *path)
{
    const struct router_entry *best = NULL;
    size_t plen;

    if (!t || !path)
        return NULL;
    plen = strlen(path);
    for (size_t i = 0; i < t->n; i++) {
        const struct router_entry *e = t->v[i];
        if ((!best || e->path_len > best->path_len) && router_entry_matches(e, path, plen))
            best = e;
    }
    return best ? &best->route : NULL;
}
