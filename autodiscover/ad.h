/*
 * ad.h — the one public interface of autodiscover/: Outlook POX Autodiscover, Autodiscover
 * v2 (JSON), Thunderbird autoconfig and Apple configuration profiles, served on the HTTP
 * front end; and the DNS records a hosted domain publishes.
 */
#ifndef POLARIS_AD_H
#define POLARIS_AD_H

#include "server/server.h"
#include "store/store.h"

struct ad;

struct ad *ad_new(struct store *st, const struct config *cfg);
int ad_register(struct ad *a, struct http_server *h);
void ad_free(struct ad *a);

#endif
