/*
 * eas.c — the ActiveSync engine object and its route registration.
 */
#include <stdlib.h>

#include "eas/eas.h"

struct eas {
    struct store *st;
    const struct config *cfg;
    struct deliver *dl;
};

struct eas *eas_new(struct store *st, const struct config *cfg, struct deliver *dl)
{
    struct eas *e = calloc(1, sizeof(*e));

    if (!e)
        return NULL;
    e->st = st;
    e->cfg = cfg;
    e->dl = dl;
    return e;
}

int eas_register(struct eas *e, struct http_server *h)
{
    (void)e;
    (void)h;
    return 0; /* no routes yet: the front end's placeholder answers 501 */
}

void eas_free(struct eas *e)
{
    free(e);
}
