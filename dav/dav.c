/*
 * dav.c — the DAV engine object and its route registration.
 */
#include <stdlib.h>

#include "dav/dav.h"

struct dav {
    struct store *st;
    const struct config *cfg;
};

struct dav *dav_new(struct store *st, const struct config *cfg)
{
    struct dav *d = calloc(1, sizeof(*d));

    if (!d)
        return NULL;
    d->st = st;
    d->cfg = cfg;
    return d;
}

int dav_register(struct dav *d, struct http_server *h)
{
    (void)d;
    (void)h;
    return 0; /* no routes yet: the front end's placeholders answer 501 */
}

void dav_free(struct dav *d)
{
    free(d);
}
