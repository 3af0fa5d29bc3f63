/*
 * imap_cache.c — recent folder views shared by the IMAP sessions of this process.
 *
 * Building a selected-mailbox view reads every message's UID, flags and MODSEQ from the
 * store: ~6 ms for 10,000 messages, paid again at every SELECT, by every session. Clients
 * SELECT often (some before every poll) and a user's several devices select the same
 * folders. So the latest view of a folder is kept here as an immutable snapshot; a SELECT
 * shares it (a reference, no copy) and brings the view up to date from the change journal,
 * exactly as any view is kept up to date, copying it only when something changed (copy on
 * write, imap_mbox_own). Sessions on a quiet folder therefore share one copy of its view. A
 * snapshot is never wrong, only older, and an older one costs a longer journal read.
 * Bounded by the total number of messages held; least recently used folders go first.
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
    struct imap_snap *snap;               /* one reference held by the cache */
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
    imap_snap_release(e->snap);
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
    c->held -= e->snap->n;
}

static void imap_cache_push(struct imap_cache *c, struct imap_cache_entry *e)
{
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
    c->held += e->snap->n;
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
        imap_snap_ref(e->snap); /* shared, not copied: the session copies on first write */
        mb->snap = e->snap;
        mb->msgs = e->snap->msgs;
        mb->n = e->snap->n;
        mb->cap = 0;
        mb->synced = e->synced;
        mb->uidnext = e->uidnext;
        imap_cache_unlink(c, e);
        imap_cache_push(c, e);
        hit = 1;
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void imap_cache_put(struct imap_cache *c, const char *user, const struct imap_mbox *mb)
{
    struct imap_cache_entry *e, *fresh;
    struct imap_snap *snap;

    if (!c || mb->n > c->max)
        return;
    pthread_mutex_lock(&c->lock);
    e = imap_cache_find(c, user, mb->folder.id);
    if (e && e->synced >= mb->synced && e->uidvalidity == mb->folder.uidvalidity) {
        pthread_mutex_unlock(&c->lock); /* what is cached is as new already */
        return;
    }
    pthread_mutex_unlock(&c->lock);

    /* A view still sharing a snapshot is that snapshot; otherwise copy it, outside the lock
     * (100,000 messages take a moment). */
    if (mb->snap) {
        snap = mb->snap;
        imap_snap_ref(snap);
    } else if (!(snap = imap_snap_new(mb->msgs, mb->n))) {
        return;
    }
    if (!(fresh = calloc(1, sizeof(*fresh)))) {
        imap_snap_release(snap);
        return;
    }
    snprintf(fresh->user, sizeof(fresh->user), "%s", user);
    fresh->folder_id = mb->folder.id;
    fresh->uidvalidity = mb->folder.uidvalidity;
    fresh->uidnext = mb->uidnext;
    fresh->synced = mb->synced;
    fresh->snap = snap;
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
