/*
 * dav.c — the DAV engine object and its routes: /caldav, /carddav and /principals behind
 * Basic auth and the Enhanced gate (SVC_CALDAV / SVC_CARDDAV), and the RFC 6764
 * well-known URLs, which only redirect and so need no login.
 */
#include <stdlib.h>
#include <string.h>

#include "dav/dav_int.h"

struct dav *dav_new(struct store *st, const struct config *cfg)
{
    struct dav *d = calloc(1, sizeof(*d));

    if (!d)
        return NULL;
    d->st = st;
    d->cfg = cfg;
    return d;
}

/* /.well-known/caldav and /.well-known/carddav: every method (clients probe with GET and
 * PROPFIND) is sent to the context path, which answers current-user-principal and the
 * home sets itself, so the redirect target is the same URL customers paste. */
enum http_action dav_wellknown_handle(struct http_req *r, enum http_phase phase, void *ctx)
{
    const char *path = http_req_path(r);

    (void)phase;
    (void)ctx;
    http_add_header(r, "Location", strstr(path, "carddav") ? "/carddav/" : "/caldav/");
    http_add_header(r, "Cache-Control", "no-cache");
    http_respond_text(r, 301, "Moved Permanently\n");
    return HTTP_RESPOND;
}

int dav_register(struct dav *d, struct http_server *h)
{
    const struct http_route routes[] = {
        {"/caldav", HTTP_ROUTE_PREFIX | HTTP_ROUTE_AUTH, SVC_CALDAV, dav_http_handle, NULL, d,
         "dav"},
        {"/carddav", HTTP_ROUTE_PREFIX | HTTP_ROUTE_AUTH, SVC_CARDDAV, dav_http_handle, NULL, d,
         "dav"},
        /* Principals serve both CalDAV and CardDAV clients; the gate is the same. */
        {"/principals", HTTP_ROUTE_PREFIX | HTTP_ROUTE_AUTH, SVC_CALDAV, dav_http_handle, NULL, d,
         "dav"},
        {"/.well-known/caldav", 0, SVC_NONE, dav_wellknown_handle, NULL, d, "dav"},
        {"/.well-known/carddav", 0, SVC_NONE, dav_wellknown_handle, NULL, d, "dav"},
    };
    size_t i;

    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (http_server_route(h, &routes[i]) != 0)
            return -1;
    return 0;
}

void dav_free(struct dav *d)
{
    free(d);
}
