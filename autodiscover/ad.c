/*
 * ad.c — the autodiscover engine object and its route registration.
 */
#include <stdlib.h>

#include "autodiscover/ad.h"

struct ad {
    struct store *st;
    const struct config *cfg;
};

struct ad *ad_new(struct store *st, const struct config *cfg)
{
    struct ad *a = calloc(1, sizeof(*a));

    if (!a)
        return NULL;
    a->st = st;
    a->cfg = cfg;
    return a;
}

int ad_register(struct ad *a, struct http_server *h)
{
    (void)a;
    (void)h;
    return 0; /* no routes yet: the front end's placeholders answer 501 */
}

void ad_free(struct ad *a)
{
    free(a);
}
