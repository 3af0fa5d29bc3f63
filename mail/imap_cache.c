/*
 * imap_cache.c — recent folder views shared by the IMAP sessions of this process.
 *
 * Building a selected-mailbox view reads every message's UID, flags and MODSEQ from the
 * store: ~6 ms for 10,000 messages, paid again at every SELECT, by every session. Clients
 * SELECT often (some before every poll) and a user's several devices select the same
 * folders. So the latest view of a folder is kept here; a SELECT copies it (a memcpy) and
 * then brings the copy up to date from the change journal, exactly as any view is kept up
 * to date. A snapshot is therefore never wrong, only older, and an older one costs a
 * longer journal read. Bounded by the total number of messages held; least recently used
 * folders go first.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/imap.h"

struct imap_cache_entry {
    char user[320];
    int64_t folder_id;
    uint32_t uidvalidity;
    uint32_t uidnext;
    int64_t synced;
    struct imap_msg *msgs; /* keywords owned */
    size_t n;
    struct imap_cache_entry *prev, *next; /* most recently used first */
};

struct imap_cache {
    pthread_mutex_t lock;
    struct imap_cache_entry *head, *tail;
    size_t held, max;
};

struct imap_cache *imap_cache_new(size_t max_msgs)
{
    struct imap_cache *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    c->max = max_msgs;
    return c;
}

static void imap_cache_entry_free(struct imap_cache_entry *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->msgs[i].keywords);
    free(e->msgs);
    free(e);
}

static void imap_cache_unlink(struct imap_cache *c, struct imap_cache_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
    c->held -= e->n;
}

static void imap_cache_push(struct imap_cache *c, struct imap_cache_entry *e)
{
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
    c->held += e->n;
}

void imap_cache_free(struct imap_cache *c)
{
    if (!c)
        return;
    while (c->head) {
        struct imap_cache_entry *e = c->head;
        imap_cache_unlink(c, e);
        imap_cache_entry_free(e);
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static struct imap_cache_entry *imap_cache_find(struct imap_cache *c, const char *user,
                                                int64_t folder_id)
{
    for (struct imap_cache_entry *e = c->head; e; e = e->next)
        if (e->folder_id == folder_id && strcmp(e->user, user) == 0)
            return e;
    return NULL;
}

/* Deep copy of n messages (keywords duplicated); pending removals are left out. */
static struct imap_msg *imap_cache_copy(const struct imap_msg *src, size_t n, size_t *out_n)
{
    struct imap_msg *dst = malloc((n ? n : 1) * sizeof(*dst));
    size_t o = 0;

    if (!dst)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (src[i].expunged)
            continue;
        dst[o] = src[i];
        if (src[i].keywords && !(dst[o].keywords = strdup(src[i].keywords))) {
            for (size_t k = 0; k < o; k++)
                free(dst[k].keywords);
            free(dst);
            return NULL;
        }
        o++;
    }
    *out_n = o;
    return dst;
}

int imap_cache_get(struct imap_cache *c, const char *user, const struct store_folder *f,
                   struct imap_mbox *mb)
{
    struct imap_cache_entry *e;
    int hit = 0;

    if (!c)
        return 0;
    pthread_mutex_lock(&c->lock);
    e = imap_cache_find(c, user, f->id);
    /* A folder id reused after a delete comes with another UIDVALIDITY. */
    if (e && e->uidvalidity == f->uidvalidity) {
        size_t n;
        struct imap_msg *msgs = imap_cache_copy(e->msgs, e->n, &n);
        if (msgs) {
            mb->msgs = msgs;
            mb->n = n;
            mb->cap = n ? n : 1;
            mb->synced = e->synced;
            mb->uidnext = e->uidnext;
            imap_cache_unlink(c, e);
            imap_cache_push(c, e);
            hit = 1;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void imap_cache_put(struct imap_cache *c, const char *user, const struct imap_mbox *mb)
{
    struct imap_cache_entry *e, *fresh;

    if (!c || mb->n > c->max)
        return;
    pthread_mutex_lock(&c->lock);
    e = imap_cache_find(c, user, mb->folder.id);
    if (e && e->synced >= mb->synced && e->uidvalidity == mb->folder.uidvalidity) {
        pthread_mutex_unlock(&c->lock); /* what is cached is as new already */
        return;
    }
    pthread_mutex_unlock(&c->lock);

    /* Copy outside the lock: 100,000 messages take a moment. */
    if (!(fresh = calloc(1, sizeof(*fresh))))
        return;
    snprintf(fresh->user, sizeof(fresh->user), "%s", user);
    fresh->folder_id = mb->folder.id;
    fresh->uidvalidity = mb->folder.uidvalidity;
    fresh->uidnext = mb->uidnext;
    fresh->synced = mb->synced;
    if (!(fresh->msgs = imap_cache_copy(mb->msgs, mb->n, &fresh->n))) {
        free(fresh);
        return;
    }
    pthread_mutex_lock(&c->lock);
    if ((e = imap_cache_find(c, user, mb->folder.id))) {
        if (e->synced >= fresh->synced && e->uidvalidity == fresh->uidvalidity) {
            pthread_mutex_unlock(&c->lock); /* another session stored a newer one meanwhile */
            imap_cache_entry_free(fresh);
            return;
        }
        imap_cache_unlink(c, e);
        imap_cache_entry_free(e);
    }
    imap_cache_push(c, fresh);
    while (c->held > c->max && c->tail && c->tail != fresh) {
        struct imap_cache_entry *old = c->tail;
        imap_cache_unlink(c, old);
        imap_cache_entry_free(old);
    }
    pthread_mutex_unlock(&c->lock);
}
