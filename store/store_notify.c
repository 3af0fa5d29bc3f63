/*
 * store_notify.c — the in-process notification hub: engines waiting on a user's store
 * (IMAP IDLE, ActiveSync Ping, DAV push) subscribe by address and are called after every
 * commit that took a MODSEQ, whichever engine or thread made the change.
 *
 * One mutex guards the table and is held while callbacks run. That is what makes
 * store_unsubscribe safe: it takes the same mutex, so it waits for a callback in flight
 * and, once it returns, the subscription is gone and its ctx may be freed.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_backend.h"

#define HUB_BUCKETS 256

struct store_sub {
    char *address; /* NULL: every user */
    store_notify_fn fn;
    void *ctx;
    struct store_sub *next;
};

struct store_hub {
    pthread_mutex_t lock;
    struct store_sub *buckets[HUB_BUCKETS];
    struct store_sub *all; /* subscribers to every user */
    size_t count;
};

static unsigned store_hub_hash(const char *s)
{
    unsigned h = 2166136261u; /* FNV-1a: short keys, no adversary gains from collisions */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % HUB_BUCKETS;
}

struct store_hub *store_hub_new(void)
{
    struct store_hub *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    if (pthread_mutex_init(&h->lock, NULL) != 0) {
        free(h);
        return NULL;
    }
    return h;
}

static void store_hub_free_list(struct store_sub *sub)
{
    while (sub) {
        struct store_sub *next = sub->next;

        free(sub->address);
        free(sub);
        sub = next;
    }
}

void store_hub_free(struct store_hub *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < HUB_BUCKETS; i++)
        store_hub_free_list(h->buckets[i]);
    store_hub_free_list(h->all);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* Lower-cases into a new string so lookups match however the engine spelled it. */
static char *store_hub_key(const char *address)
{
    char *k = strdup(address);

    if (k == NULL)
        return NULL;
    for (char *p = k; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return k;
}

struct store_sub *store_subscribe(struct store *s, const char *address, store_notify_fn fn,
                                  void *ctx)
{
    struct store_hub *h = s ? store_hub_of(s) : NULL;
    struct store_sub *sub;

    if (h == NULL || fn == NULL)
        return NULL;
    sub = calloc(1, sizeof(*sub));
    if (sub == NULL)
        return NULL;
    if (address && (sub->address = store_hub_key(address)) == NULL) {
        free(sub);
        return NULL;
    }
    sub->fn = fn;
    sub->ctx = ctx;
    pthread_mutex_lock(&h->lock);
    struct store_sub **head = sub->address ? &h->buckets[store_hub_hash(sub->address)] : &h->all;
    sub->next = *head;
    *head = sub;
    h->count++;
    pthread_mutex_unlock(&h->lock);
    return sub;
}

static int store_hub_unlink(struct store_sub **head, struct store_sub *sub)
{
    for (struct store_sub **pp = head; *pp; pp = &(*pp)->next) {
        if (*pp == sub) {
            *pp = sub->next;
            return 1;
        }
    }
    return 0;
}

void store_unsubscribe(struct store *s, struct store_sub *sub)
{
    struct store_hub *h = s ? store_hub_of(s) : NULL;
    int found;

    if (h == NULL || sub == NULL)
        return;
    /* Taking the lock waits for any callback in flight (they run under it). */
    pthread_mutex_lock(&h->lock);
    if (sub->address)
        found = store_hub_unlink(&h->buckets[store_hub_hash(sub->address)], sub);
    else
        found = store_hub_unlink(&h->all, sub);
    if (found)
        h->count--;
    pthread_mutex_unlock(&h->lock);
    if (!found)
        return; /* not ours: freeing it would be worse than leaking it */
    free(sub->address);
    free(sub);
}

size_t store_subscriber_count(struct store *s, const char *address)
{
    struct store_hub *h = s ? store_hub_of(s) : NULL;
    size_t n = 0;
    char *key;

    if (h == NULL)
        return 0;
    if (address == NULL) {
        pthread_mutex_lock(&h->lock);
        n = h->count;
        pthread_mutex_unlock(&h->lock);
        return n;
    }
    key = store_hub_key(address);
    if (key == NULL)
        return 0;
    pthread_mutex_lock(&h->lock);
    for (struct store_sub *sub = h->buckets[store_hub_hash(key)]; sub; sub = sub->next)
        if (strcmp(sub->address, key) == 0)
            n++;
    pthread_mutex_unlock(&h->lock);
    free(key);
    return n;
}

void store_notify_commit(struct store_hub *h, const char *address, int64_t modseq)
{
    if (h == NULL || address == NULL)
        return;
    pthread_mutex_lock(&h->lock);
    for (struct store_sub *sub = h->buckets[store_hub_hash(address)]; sub; sub = sub->next)
        if (strcmp(sub->address, address) == 0)
            sub->fn(address, modseq, sub->ctx);
    for (struct store_sub *sub = h->all; sub; sub = sub->next)
        sub->fn(address, modseq, sub->ctx);
    pthread_mutex_unlock(&h->lock);
}
