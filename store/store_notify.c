/*
 * store_notify.c — the in-process notification hub: engines waiting on a user's store
 * (IMAP IDLE, ActiveSync Ping, DAV push) subscribe by address and are called after every
 * commit that took a MODSEQ, whichever engine or thread made the change.
 *
 * One mutex guards the table and is held while callbacks run. That is what makes
 * store_unsubscribe safe: it takes the same mutex, so it waits for a callback in flight
 * and, once it returns, the subscription is gone and its ctx may be freed.
 *
 * Across processes: the serving process binds a datagram socket, data_dir/notify.sock
 * (store_notify_listen). Any other process that commits to a user's store (the admin CLI,
 * an import, a delivery helper) sends it one datagram "address modseq", and the server
 * dispatches it to its own subscribers, so IDLE and Ping wake for those changes too. When
 * no server listens the datagram is simply dropped: it is a wake-up, not data.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

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
    struct sockaddr_un addr; /* data_dir/notify.sock; sun_path "" when the path is too long */
    int send_fd;             /* datagram socket for telling a server, -1 until needed */
    int listen_fd;           /* bound socket in the serving process, -1 elsewhere */
    int stop_fd;             /* eventfd ending the listener thread */
    pthread_t thread;
    pthread_mutex_t send_lock;
};

#define HUB_DGRAM_MAX 512

static unsigned store_hub_hash(const char *s)
{
    unsigned h = 2166136261u; /* FNV-1a: short keys, no adversary gains from collisions */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % HUB_BUCKETS;
}

struct store_hub *store_hub_new(const char *data_dir)
{
    struct store_hub *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    if (pthread_mutex_init(&h->lock, NULL) != 0) {
        free(h);
        return NULL;
    }
    pthread_mutex_init(&h->send_lock, NULL);
    h->send_fd = h->listen_fd = h->stop_fd = -1;
    h->addr.sun_family = AF_UNIX;
    int n = snprintf(h->addr.sun_path, sizeof(h->addr.sun_path), "%s/notify.sock", data_dir);
    if (n < 0 || (size_t)n >= sizeof(h->addr.sun_path))
        h->addr.sun_path[0] = '\0'; /* a data dir this deep gets in-process wake-ups only */
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

static void store_hub_stop_listening(struct store_hub *h)
{
    uint64_t one = 1;

    if (h->listen_fd < 0)
        return;
    if (write(h->stop_fd, &one, sizeof(one)) == sizeof(one))
        pthread_join(h->thread, NULL);
    close(h->listen_fd);
    close(h->stop_fd);
    unlink(h->addr.sun_path);
    h->listen_fd = h->stop_fd = -1;
}

void store_hub_free(struct store_hub *h)
{
    if (h == NULL)
        return;
    store_hub_stop_listening(h);
    if (h->send_fd >= 0)
        close(h->send_fd);
    pthread_mutex_destroy(&h->send_lock);
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

static void store_hub_dispatch(struct store_hub *h, const char *address, int64_t modseq)
{
    pthread_mutex_lock(&h->lock);
    for (struct store_sub *sub = h->buckets[store_hub_hash(address)]; sub; sub = sub->next)
        if (strcmp(sub->address, address) == 0)
            sub->fn(address, modseq, sub->ctx);
    for (struct store_sub *sub = h->all; sub; sub = sub->next)
        sub->fn(address, modseq, sub->ctx);
    pthread_mutex_unlock(&h->lock);
}

/* Tells a serving process, if there is one; never blocks, never fails the commit. */
static void store_hub_tell_server(struct store_hub *h, const char *address, int64_t modseq)
{
    char msg[HUB_DGRAM_MAX];
    int n = snprintf(msg, sizeof(msg), "%s %" PRId64, address, modseq);

    if (!h->addr.sun_path[0] || n < 0 || (size_t)n >= sizeof(msg))
        return;
    pthread_mutex_lock(&h->send_lock);
    if (h->send_fd < 0)
        h->send_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (h->send_fd >= 0)
        sendto(h->send_fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL,
               (const struct sockaddr *)&h->addr, sizeof(h->addr));
    pthread_mutex_unlock(&h->send_lock);
}

void store_notify_commit(struct store_hub *h, const char *address, int64_t modseq)
{
    if (h == NULL || address == NULL)
        return;
    store_hub_dispatch(h, address, modseq);
    if (h->listen_fd < 0)
        store_hub_tell_server(h, address, modseq);
}

static void *store_hub_listen_main(void *arg)
{
    struct store_hub *h = arg;
    struct pollfd p[2] = {{.fd = h->listen_fd, .events = POLLIN},
                          {.fd = h->stop_fd, .events = POLLIN}};
    char msg[HUB_DGRAM_MAX + 1];

    for (;;) {
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        ssize_t n = recv(h->listen_fd, msg, HUB_DGRAM_MAX, MSG_DONTWAIT);
        if (n <= 0)
            continue;
        msg[n] = '\0';
        char *sp = strchr(msg, ' ');
        char *end;
        if (!sp || sp == msg)
            continue; /* not ours: ignore */
        *sp = '\0';
        long long modseq = strtoll(sp + 1, &end, 10);
        if (*end || modseq < 0)
            continue;
        char *key = store_hub_key(msg);
        if (key) {
            store_hub_dispatch(h, key, modseq);
            free(key);
        }
    }
    return NULL;
}

int store_notify_listen(struct store *s, struct store_err *err)
{
    struct store_hub *h = store_hub_of(s);
    int fd = -1;

    if (!h->addr.sun_path[0])
        return store_errf(err, STORE_EINVAL, "data dir path too long for notify.sock");
    if (h->listen_fd >= 0)
        return STORE_OK;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto err;
    /* A socket left by a killed server is stale: one data dir has one server. */
    unlink(h->addr.sun_path);
    if (bind(fd, (const struct sockaddr *)&h->addr, sizeof(h->addr)) < 0 ||
        chmod(h->addr.sun_path, 0600) < 0)
        goto err;
    if ((h->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0)
        goto err;
    h->listen_fd = fd;
    if (pthread_create(&h->thread, NULL, store_hub_listen_main, h) != 0) {
        h->listen_fd = -1;
        goto err;
    }
    return STORE_OK;
err:
    store_errf(err, STORE_EIO, "cannot listen on %s: %s", h->addr.sun_path, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (h->stop_fd >= 0)
        close(h->stop_fd);
    h->stop_fd = -1;
    return STORE_EIO;
}
