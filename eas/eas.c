/*
 * eas.c — the ActiveSync engine object and its route: /Microsoft-Server-ActiveSync on
 * every tenant host, any case, with sub-paths (older clients post to
 * /Microsoft-Server-ActiveSync/default.eas), behind Basic auth and the Enhanced gate.
 */
#include <stdlib.h>

#include "eas/eas_int.h"

struct eas *eas_new(struct store *st, const struct config *cfg, struct deliver *dl)
{
    struct eas *e = calloc(1, sizeof(*e));

    if (!e)
        return NULL;
    e->st = st;
    e->cfg = cfg;
    e->dl = dl;
    e->pings = eas_ping_hub_new();
    if (!e->pings) {
        free(e);
        return NULL;
    }
    return e;
}

int eas_register(struct eas *e, struct http_server *h)
{
    const struct http_route rt = {
        .path = "/Microsoft-Server-ActiveSync",
        .flags = HTTP_ROUTE_PREFIX | HTTP_ROUTE_NOCASE | HTTP_ROUTE_AUTH,
        .service = SVC_EAS,
        .handler = eas_http_handle,
        .cleanup = eas_http_cleanup,
        .engine_ctx = e,
        .engine = "eas",
    };

    return http_server_route(h, &rt);
}

void eas_free(struct eas *e)
{
    if (!e)
        return;
    eas_ping_hub_free(e->pings);
    free(e);
}
