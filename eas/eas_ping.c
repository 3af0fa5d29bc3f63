/*
 * eas_ping.c — the hub of waiting Pings: at most one per device. When a device sends a
 * new Ping while an older one still waits (the phone lost the connection, or changed the
 * folders it watches), the older one is marked superseded and resumed, and answers at once
 * (eas_cmd_ping.c decides what). Looked up by "address/DeviceId" in a small hash table.
 *
 * Lock order: the hub's lock, then the front end's (http_resume). Nothing here calls into
 * the store.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "eas/eas_int.h"

#define EAS_PING_BUCKETS 1024

struct eas_ping_hub {
    pthread_mutex_t mu;
    struct eas_ping_wait *buckets[EAS_PING_BUCKETS];
    size_t count;
};

static unsigned eas_ping_hash(const char *s)
{
    unsigned h = 2166136261u; /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % EAS_PING_BUCKETS;
}

struct eas_ping_hub *eas_ping_hub_new(void)
{
    struct eas_ping_hub *h = calloc(1, sizeof(*h));

    if (h && pthread_mutex_init(&h->mu, NULL) != 0) {
        free(h);
        return NULL;
    }
    return h;
}

void eas_ping_hub_free(struct eas_ping_hub *h)
{
    if (!h)
        return;
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static void eas_ping_unlink_locked(struct eas_ping_hub *h, struct eas_ping_wait *w)
{
    struct eas_ping_wait **pp = &h->buckets[eas_ping_hash(w->key)];

    for (; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            w->next = NULL;
            w->registered = 0;
            h->count--;
            return;
        }
    }
}

void eas_ping_register(struct eas_ping_hub *h, struct eas_ping_wait *w)
{
    unsigned b = eas_ping_hash(w->key);

    pthread_mutex_lock(&h->mu);
    for (struct eas_ping_wait *o = h->buckets[b]; o; o = o->next) {
        if (o != w && strcmp(o->key, w->key) == 0) {
            eas_ping_unlink_locked(h, o);
            o->superseded = 1;
            /* Under the lock: o's request cannot finish (and be freed) before its own
             * cleanup has taken this lock to unregister. */
            http_resume(o->http);
            break;
        }
    }
    if (!w->registered) {
        w->next = h->buckets[b];
        h->buckets[b] = w;
        w->registered = 1;
        h->count++;
    }
    pthread_mutex_unlock(&h->mu);
}

void eas_ping_unregister(struct eas_ping_hub *h, struct eas_ping_wait *w)
{
    pthread_mutex_lock(&h->mu);
    if (w->registered)
        eas_ping_unlink_locked(h, w);
    pthread_mutex_unlock(&h->mu);
}

int eas_ping_superseded(struct eas_ping_hub *h, struct eas_ping_wait *w)
{
    int s;

    pthread_mutex_lock(&h->mu);
    s = w->superseded;
    pthread_mutex_unlock(&h->mu);
    return s;
}

size_t eas_ping_waiting(struct eas_ping_hub *h)
{
    size_t n;

    pthread_mutex_lock(&h->mu);
    n = h->count;
    pthread_mutex_unlock(&h->mu);
    return n;
}
