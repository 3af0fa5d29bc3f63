/*
 * dav.h — the one public interface of dav/: WebDAV, CalDAV (RFC 4791) and CardDAV
 * (RFC 6352) for Enhanced mailboxes, served on the HTTP front end.
 *
 * The engine registers its routes (/caldav, /carddav, /principals, /.well-known/caldav,
 * /.well-known/carddav) with the front end; calendars, task lists and address books are
 * the user's store folders of those classes, the same ones ActiveSync syncs.
 */
#ifndef POLARIS_DAV_H
#define POLARIS_DAV_H

#include "server/server.h"
#include "store/store.h"

struct dav;

/* The engine for one server. cfg and st outlive it. NULL on allocation failure. */
struct dav *dav_new(struct store *st, const struct config *cfg);
/* Registers the engine's routes on h (replacing the front end's 501 placeholders). */
int dav_register(struct dav *d, struct http_server *h);
void dav_free(struct dav *d);

#endif
