/*
 * store.c — the public store API (store/store.h): the policy layer above a backend.
 *
 * Here live the decisions: input validation and lower-casing, password hashing, quota,
 * which MODSEQ a change takes (one per transaction, taken at its first change), locking
 * and transactions, the cache of open user handles, and notification after commit. The
 * backend (store_backend.h; SQLite by default) only persists what it is told.
 *
 * Locking. Each struct store_user has a mutex held by one thread for the length of an API
 * call, or from store_txn_begin to commit/rollback. The holder may call in again (a
 * callback of a list calling store_item_body, or any call inside its own transaction):
 * the nesting is tracked per thread, not by a recursive mutex, because a call made inside
 * an explicit transaction must also know not to begin one of its own. Such inner calls run
 * in a savepoint so each stays all-or-nothing. The directory has its own mutex; the order
 * is user lock, then directory lock, never the reverse: directory listings collect their
 * rows first and run the caller's callback with no lock held.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "store/store_backend.h"

#define STORE_DEFAULT_BUSY_MS    10000
#define STORE_DEFAULT_INLINE_MAX (64 * 1024)
#define STORE_CACHE_BUCKETS      512
#define STORE_IDLE_MAX           256 /* unreferenced handles kept open */

struct store_user {
    struct store *s;
    struct store_bu *bu;
    char address[320];
    char localpart[65];
    char domain[254];

    /* Guarded by s->cache_lock. */
    int refs;
    int gone; /* evicted while referenced: closed on the last release */
    struct store_user *hnext;
    struct store_user *lru_prev, *lru_next;

    pthread_mutex_t lock;
    /* Touched only by the thread holding lock. */
    int depth;     /* nesting of that thread's calls */
    int txn_depth; /* nesting of store_txn_begin */
    int in_write;  /* a write transaction is open on the connection */
    int broken;    /* a database error inside it: it can only roll back */
    int64_t txn_modseq;
    struct store_user *held_next;
};

struct store {
    char *data_dir;
    const struct store_backend *be;
    struct store_bcfg bcfg;
    pthread_mutex_t dir_lock;
    struct store_bdir *dir;
    pthread_mutex_t cache_lock;
    struct store_user *buckets[STORE_CACHE_BUCKETS];
    struct store_user *lru_head, *lru_tail; /* unreferenced handles, most recent first */
    size_t idle;
    struct store_hub *hub;
};

/* Handles whose lock this thread holds, innermost first. */
static _Thread_local struct store_user *store_held;

int store_errf(struct store_err *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return code;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

struct store_hub *store_hub_of(struct store *s)
{
    return s->hub;
}

/* ------------------------------------------------------------------------------------- */
/* Names                                                                                  */

/* Lower-cases src into dst; refuses (never truncates) what does not fit. */
static int store_lower(char *dst, size_t size, const char *src, const char *what,
                       struct store_err *err)
{
    size_t n;

    if (src == NULL || *src == '\0')
        return store_errf(err, STORE_EINVAL, "%s is empty", what);
    n = strlen(src);
    if (n >= size)
        return store_errf(err, STORE_EINVAL, "%s is too long (%zu bytes, at most %zu)", what, n,
                          size - 1);
    for (size_t i = 0; i <= n; i++)
        dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? (char)(src[i] - 'A' + 'a') : src[i];
    return STORE_OK;
}

/* Splits an address into lower-cased local part and domain. allow_empty: "@domain". */
static int store_split(const char *addr, char *full, char *lp, char *dom, int allow_empty,
                       struct store_err *err)
{
    const char *at;
    size_t lplen;
    int rc;

    rc = store_lower(full, 320, addr, "address", err);
    if (rc)
        return rc;
    at = strrchr(full, '@');
    if (at == NULL)
        return store_errf(err, STORE_EINVAL, "%s is not an address (no @)", full);
    lplen = (size_t)(at - full);
    if (lplen > 64)
        return store_errf(err, STORE_EINVAL, "the local part of %s is too long", full);
    if (lplen == 0 && !allow_empty)
        return store_errf(err, STORE_EINVAL, "%s has an empty local part", full);
    memcpy(lp, full, lplen);
    lp[lplen] = '\0';
    rc = store_lower(dom, 254, at + 1, "domain", err);
    if (rc)
        return rc;
    return lplen ? store_valid_localpart(lp, err) : STORE_OK;
}

/* Text an engine hands us for a fixed field: fits, and has no control characters. */
static int store_check_text(const char *s, size_t size, const char *what, struct store_err *err)
{
    size_t n;

    if (s == NULL)
        return STORE_OK;
    n = strlen(s);
    if (n >= size)
        return store_errf(err, STORE_EINVAL, "%s is too long (%zu bytes, at most %zu)", what, n,
                          size - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return store_errf(err, STORE_EINVAL, "%s contains a control character", what);
    return STORE_OK;
}

static int store_random_token(char *out, size_t size)
{
    unsigned char raw[16];
    static const char hex[] = "0123456789abcdef";

    if (size < 33)
        return -1;
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, raw, sizeof(raw)) : -1;

        if (fd >= 0)
            close(fd);
        if (n != (ssize_t)sizeof(raw))
            return -1;
    }
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[32] = '\0';
    return 0;
}

/* ------------------------------------------------------------------------------------- */
/* Opening                                                                                */

static const struct store_backend *store_backend_find(const char *name)
{
    if (name == NULL || strcmp(name, store_sqlite_backend.name) == 0)
        return &store_sqlite_backend;
    return NULL;
}

int store_open(struct store **out, const struct store_config *cfg, struct store_err *err)
{
    pthread_mutexattr_t attr;
    struct store *s;
    int rc;

    if (out == NULL || cfg == NULL || cfg->data_dir == NULL || *cfg->data_dir == '\0')
        return store_errf(err, STORE_EINVAL, "store_open needs a data_dir");
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return store_errf(err, STORE_ENOMEM, "out of memory");
    s->be = store_backend_find(cfg->backend);
    if (s->be == NULL) {
        free(s);
        return store_errf(err, STORE_EINVAL, "unknown store backend \"%s\"", cfg->backend);
    }
    s->data_dir = strdup(cfg->data_dir);
    s->hub = s->data_dir ? store_hub_new(s->data_dir) : NULL;
    if (s->data_dir == NULL || s->hub == NULL) {
        rc = store_errf(err, STORE_ENOMEM, "out of memory");
        goto err;
    }
    s->bcfg.data_dir = s->data_dir;
    s->bcfg.busy_timeout_ms =
        cfg->busy_timeout_ms > 0 ? cfg->busy_timeout_ms : STORE_DEFAULT_BUSY_MS;
    s->bcfg.inline_max = cfg->inline_max ? cfg->inline_max : STORE_DEFAULT_INLINE_MAX;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_NORMAL);
    pthread_mutex_init(&s->dir_lock, &attr);
    pthread_mutex_init(&s->cache_lock, &attr);
    pthread_mutexattr_destroy(&attr);
    rc = s->be->dir_open(&s->bcfg, &s->dir, err);
    if (rc) {
        pthread_mutex_destroy(&s->dir_lock);
        pthread_mutex_destroy(&s->cache_lock);
        goto err;
    }
    *out = s;
    return STORE_OK;
err:
    store_hub_free(s->hub);
    free(s->data_dir);
    free(s);
    return rc;
}

static void store_user_free(struct store_user *u)
{
    u->s->be->user_close(u->bu);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

void store_close(struct store *s)
{
    if (s == NULL)
        return;
    /* Handles still referenced are closed too: the caller is done with the store. */
    for (size_t i = 0; i < STORE_CACHE_BUCKETS; i++) {
        while (s->buckets[i]) {
            struct store_user *u = s->buckets[i];

            s->buckets[i] = u->hnext;
            store_user_free(u);
        }
    }
    s->be->dir_close(s->dir);
    store_hub_free(s->hub);
    pthread_mutex_destroy(&s->dir_lock);
    pthread_mutex_destroy(&s->cache_lock);
    free(s->data_dir);
    free(s);
}

const char *store_data_dir(const struct store *s)
{
    return s ? s->data_dir : NULL;
}

/* ------------------------------------------------------------------------------------- */
/* Collecting directory rows, so callbacks run with no lock held                          */

struct store_vec {
    char *v;
    size_t n, cap, size;
    int failed;
};

static int store_vec_push(struct store_vec *vec, const void *item)
{
    if (vec->n == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 16;
        char *v = realloc(vec->v, cap * vec->size);

        if (v == NULL) {
            vec->failed = 1;
            return 1;
        }
        vec->v = v;
        vec->cap = cap;
    }
    memcpy(vec->v + vec->n * vec->size, item, vec->size);
    vec->n++;
    return 0;
}

static int store_collect_domain(const struct store_domain *d, void *ctx)
{
    return store_vec_push(ctx, d);
}

static int store_collect_account(const struct store_account *a, void *ctx)
{
    return store_vec_push(ctx, a);
}

struct store_alias_row {
    char source[320];
    char target[320];
};

static int store_collect_alias(const char *source, const char *target, void *ctx)
{
    struct store_alias_row r;

    snprintf(r.source, sizeof(r.source), "%s", source);
    snprintf(r.target, sizeof(r.target), "%s", target);
    return store_vec_push(ctx, &r);
}

static int store_vec_done(struct store_vec *vec, int rc, struct store_err *err)
{
    if (rc == STORE_OK && vec->failed)
        rc = store_errf(err, STORE_ENOMEM, "out of memory listing the directory");
    if (rc != STORE_OK) {
        free(vec->v);
        vec->v = NULL;
        vec->n = 0;
    }
    return rc;
}

/* ------------------------------------------------------------------------------------- */
/* The handle cache                                                                       */

static unsigned store_hash(const char *s)
{
    unsigned h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % STORE_CACHE_BUCKETS;
}

static struct store_user *store_cache_find(struct store *s, const char *address)
{
    for (struct store_user *u = s->buckets[store_hash(address)]; u; u = u->hnext)
        if (strcmp(u->address, address) == 0)
            return u;
    return NULL;
}

static void store_cache_unhash(struct store *s, struct store_user *u)
{
    for (struct store_user **pp = &s->buckets[store_hash(u->address)]; *pp; pp = &(*pp)->hnext) {
        if (*pp == u) {
            *pp = u->hnext;
            return;
        }
    }
}

static void store_lru_remove(struct store *s, struct store_user *u)
{
    if (u->lru_prev)
        u->lru_prev->lru_next = u->lru_next;
    else
        s->lru_head = u->lru_next;
    if (u->lru_next)
        u->lru_next->lru_prev = u->lru_prev;
    else
        s->lru_tail = u->lru_prev;
    u->lru_prev = u->lru_next = NULL;
    s->idle--;
}

static void store_lru_push(struct store *s, struct store_user *u)
{
    u->lru_prev = NULL;
    u->lru_next = s->lru_head;
    if (s->lru_head)
        s->lru_head->lru_prev = u;
    else
        s->lru_tail = u;
    s->lru_head = u;
    s->idle++;
}

/* Drops cached handles of one user (localpart non-NULL) or of a whole domain. */
static void store_cache_evict(struct store *s, const char *domain, const char *localpart)
{
    struct store_user *doomed = NULL;

    pthread_mutex_lock(&s->cache_lock);
    for (size_t i = 0; i < STORE_CACHE_BUCKETS; i++) {
        struct store_user *u = s->buckets[i], *next;

        for (; u; u = next) {
            next = u->hnext;
            if (strcmp(u->domain, domain) != 0 || (localpart && strcmp(u->localpart, localpart)))
                continue;
            store_cache_unhash(s, u);
            if (u->refs > 0) {
                u->gone = 1;
                continue;
            }
            store_lru_remove(s, u);
            u->hnext = doomed;
            doomed = u;
        }
    }
    pthread_mutex_unlock(&s->cache_lock);
    while (doomed) {
        struct store_user *next = doomed->hnext;

        store_user_free(doomed);
        doomed = next;
    }
}

/* ------------------------------------------------------------------------------------- */
/* Directory: domains                                                                     */

int store_domain_add(struct store *s, const char *name, struct store_domain *out,
                     struct store_err *err)
{
    struct store_domain d, other;
    int rc;

    if (s == NULL)
        return store_errf(err, STORE_EINVAL, "no store");
    memset(&d, 0, sizeof(d));
    rc = store_lower(d.name, sizeof(d.name), name, "domain name", err);
    if (rc == STORE_OK)
        rc = store_valid_domain(d.name, err);
    if (rc)
        return rc;
    if (store_domain_label(d.name, d.label, sizeof(d.label)) != 0)
        return store_errf(err, STORE_EINVAL, "the virtual-host label of %s is too long", d.name);
    if (store_random_token(d.token, sizeof(d.token)) != 0)
        return store_errf(err, STORE_EIO, "no random bytes for the verification token");
    d.local_delivery = 1;
    d.created = (int64_t)time(NULL);

    pthread_mutex_lock(&s->dir_lock);
    if (s->be->domain_get(s->dir, d.name, NULL, NULL, NULL) == STORE_OK) {
        rc = store_errf(err, STORE_EEXIST, "domain %s already exists", d.name);
    } else if (s->be->domain_get(s->dir, NULL, d.label, &other, NULL) == STORE_OK) {
        rc = store_errf(err, STORE_EEXIST,
                        "domain %s would get the virtual-host label %s, already used by domain %s",
                        d.name, d.label, other.name);
    } else {
        rc = s->be->domain_insert(s->dir, &d, &d.id, err);
    }
    pthread_mutex_unlock(&s->dir_lock);
    if (rc == STORE_OK && out)
        *out = d;
    return rc;
}

int store_domain_get(struct store *s, const char *name, struct store_domain *out,
                     struct store_err *err)
{
    char lname[254];
    int rc;

    if (s == NULL)
        return store_errf(err, STORE_EINVAL, "no store");
    rc = store_lower(lname, sizeof(lname), name, "domain name", err);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->domain_get(s->dir, lname, NULL, out, err);
    pthread_mutex_unlock(&s->dir_lock);
    return rc;
}

int store_domain_by_label(struct store *s, const char *label, struct store_domain *out)
{
    char l[254];
    int rc;

    if (s == NULL)
        return STORE_EINVAL;
    rc = store_lower(l, sizeof(l), label, "label", NULL);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->domain_get(s->dir, NULL, l, out, NULL);
    pthread_mutex_unlock(&s->dir_lock);
    return rc;
}

int store_domain_list(struct store *s, store_domain_cb cb, void *ctx, struct store_err *err)
{
    struct store_vec vec = {.size = sizeof(struct store_domain)};
    int rc;

    if (s == NULL || cb == NULL)
        return store_errf(err, STORE_EINVAL, "store_domain_list needs a store and a callback");
    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->domain_list(s->dir, store_collect_domain, &vec, err);
    pthread_mutex_unlock(&s->dir_lock);
    rc = store_vec_done(&vec, rc, err);
    for (size_t i = 0; rc == STORE_OK && i < vec.n; i++)
        if (cb((const struct store_domain *)(vec.v + i * vec.size), ctx) != 0)
            break;
    free(vec.v);
    return rc;
}

int store_domain_del(struct store *s, const char *name, int force, struct store_err *err)
{
    struct store_domain d;
    int64_t users = 0, aliases = 0;
    int rc;

    rc = store_domain_get(s, name, &d, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->domain_usage(s->dir, d.id, &users, &aliases, err);
    if (rc == STORE_OK && (users || aliases) && !force)
        rc = store_errf(err, STORE_EEXIST,
                        "domain %s still has %lld users and %lld aliases (force removes them)",
                        d.name, (long long)users, (long long)aliases);
    if (rc == STORE_OK)
        rc = s->be->domain_delete(s->dir, d.id, err);
    if (rc == STORE_OK) /* its settings and its addresses' go with it */
        rc = s->be->setting_del(s->dir, d.name, NULL, err);
    pthread_mutex_unlock(&s->dir_lock);
    if (rc)
        return rc;
    /* Rows first, files after: a crash in between leaves files a re-add will wipe. */
    store_cache_evict(s, d.name, NULL);
    return s->be->user_remove(&s->bcfg, d.name, NULL, err);
}

static int store_domain_flag(struct store *s, const char *name, enum store_domain_flag f, int on,
                             struct store_err *err)
{
    struct store_domain d;
    int rc;

    rc = store_domain_get(s, name, &d, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->domain_set_flag(s->dir, d.id, f, on, err);
    pthread_mutex_unlock(&s->dir_lock);
    return rc;
}

int store_domain_set_local_delivery(struct store *s, const char *name, int on,
                                    struct store_err *err)
{
    return store_domain_flag(s, name, STORE_DOMAIN_LOCAL_DELIVERY, on, err);
}

int store_domain_set_verified(struct store *s, const char *name, int verified,
                              struct store_err *err)
{
    return store_domain_flag(s, name, STORE_DOMAIN_VERIFIED, verified, err);
}

/* ------------------------------------------------------------------------------------- */
/* Directory: settings                                                                    */

static int store_setting_scope_ok(const char *scope, const char *key, struct store_err *err)
{
    if (!scope || !*scope || strlen(scope) > 320 || (key && (!*key || strlen(key) > 64)))
        return store_errf(err, STORE_EINVAL, "bad setting scope or key");
    return STORE_OK;
}

int store_setting_put(struct store *s, const char *scope, const char *key, const void *val,
                      size_t len, struct store_err *err)
{
    int rc = store_setting_scope_ok(scope, key, err);

    if (rc)
        return rc;
    if (len > 1024 * 1024)
        return store_errf(err, STORE_EINVAL, "setting %s too large", key);
    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->setting_put(s->dir, scope, key, val, len, err);
    pthread_mutex_unlock(&s->dir_lock);
    return rc;
}

int store_setting_get(struct store *s, const char *scope, const char *key, void **val, size_t *len,
                      struct store_err *err)
{
    int rc = store_setting_scope_ok(scope, key, err);

    if (rc)
        return rc;
    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->setting_get(s->dir, scope, key, val, len, err);
    pthread_mutex_unlock(&s->dir_lock);
    return rc;
}

int store_setting_del(struct store *s, const char *scope, const char *key, struct store_err *err)
{
    int rc = store_setting_scope_ok(scope, key, err);

    if (rc)
        return rc;
    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->setting_del(s->dir, scope, key, err);
    pthread_mutex_unlock(&s->dir_lock);
    return rc;
}

/* ------------------------------------------------------------------------------------- */
/* Directory: users                                                                       */

static const struct {
    const char *name;
    enum store_class cls;
    enum store_role role;
} store_default_folders[] = {
    {"INBOX", STORE_CLASS_MAIL, STORE_ROLE_INBOX},
    {"Drafts", STORE_CLASS_MAIL, STORE_ROLE_DRAFTS},
    {"Sent", STORE_CLASS_MAIL, STORE_ROLE_SENT},
    {"Junk", STORE_CLASS_MAIL, STORE_ROLE_JUNK},
    {"Trash", STORE_CLASS_MAIL, STORE_ROLE_TRASH},
    {"Archive", STORE_CLASS_MAIL, STORE_ROLE_ARCHIVE},
    {"Calendar", STORE_CLASS_CALENDAR, STORE_ROLE_CALENDAR},
    {"Contacts", STORE_CLASS_CONTACTS, STORE_ROLE_CONTACTS},
    {"Tasks", STORE_CLASS_TASKS, STORE_ROLE_TASKS},
    {"Notes", STORE_CLASS_NOTES, STORE_ROLE_NOTES},
};

/* Adds the default folders a store lacks, at MODSEQ 0 (a new store reports MODSEQ 0). */
static int store_default_folders_ensure(const struct store_backend *be, struct store_bu *bu,
                                        struct store_err *err)
{
    struct store_folder f;
    int rc;

    rc = be->txn_begin(bu, err);
    if (rc)
        return rc;
    for (size_t i = 0;
         rc == STORE_OK && i < sizeof(store_default_folders) / sizeof(store_default_folders[0]);
         i++) {
        int64_t id;

        rc = be->folder_by_role(bu, store_default_folders[i].role, 0, &f, NULL);
        if (rc == STORE_ENOTFOUND)
            rc = be->folder_insert(bu, 0, store_default_folders[i].name,
                                   store_default_folders[i].cls, store_default_folders[i].role, 0,
                                   &id, err);
    }
    if (rc == STORE_OK)
        rc = be->txn_commit(bu, err);
    if (rc)
        be->txn_rollback(bu);
    return rc;
}

/* A crypt(3) string from elsewhere: printable, no field separators, fits. */
static int store_check_import(const char *h, char *out, size_t size, struct store_err *err)
{
    size_t n = strlen(h);

    if (n == 0 || n >= size)
        return store_errf(err, STORE_EINVAL, "the imported password hash is empty or too long");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)h[i] <= 0x20 || (unsigned char)h[i] >= 0x7f || h[i] == ':')
            return store_errf(err, STORE_EINVAL, "the imported password hash is malformed");
    memcpy(out, h, n + 1);
    return STORE_OK;
}

static int store_create_user_store(struct store *s, const char *domain, const char *lp,
                                   struct store_err *err)
{
    struct store_bu *bu = NULL;
    int rc;

    /* Anything left at that path belonged to an earlier user of the same name. */
    rc = s->be->user_remove(&s->bcfg, domain, lp, err);
    if (rc == STORE_OK)
        rc = s->be->user_open(&s->bcfg, domain, lp, 1, &bu, err);
    if (rc == STORE_OK)
        rc = store_default_folders_ensure(s->be, bu, err);
    if (bu)
        s->be->user_close(bu);
    return rc;
}

int store_account_add(struct store *s, const char *address, enum store_acct_type type,
                      int64_t quota, const char *password, const char *pwhash_import,
                      struct store_account *out, struct store_err *err)
{
    struct store_account a;
    struct store_domain d;
    int rc;

    if (s == NULL)
        return store_errf(err, STORE_EINVAL, "no store");
    memset(&a, 0, sizeof(a));
    rc = store_split(address, a.address, a.localpart, a.domain, 0, err);
    if (rc == STORE_OK)
        rc = store_valid_address(a.address, err);
    if (rc)
        return rc;
    if (type != STORE_BASIC && type != STORE_ENHANCED)
        return store_errf(err, STORE_EINVAL, "account type must be basic or enhanced");
    a.type = type;
    a.quota = quota ? quota : STORE_QUOTA_DEFAULT;
    rc = store_valid_quota(type, a.quota, err);
    if (rc)
        return rc;
    if (password) {
        rc = store_valid_password(password, err);
        if (rc == STORE_OK)
            rc = store_password_hash(password, a.pwhash, sizeof(a.pwhash), err);
    } else if (pwhash_import) {
        rc = store_check_import(pwhash_import, a.pwhash, sizeof(a.pwhash), err);
    } else {
        rc = store_errf(err, STORE_EINVAL, "a password or a password hash is required");
    }
    if (rc)
        return rc;
    a.active = 1;
    a.created = (int64_t)time(NULL);

    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->domain_get(s->dir, a.domain, NULL, &d, NULL);
    if (rc == STORE_ENOTFOUND)
        rc = store_errf(err, STORE_EINVAL, "domain %s is not hosted here", a.domain);
    else if (rc)
        rc = store_errf(err, rc, "cannot read domain %s", a.domain);
    if (rc == STORE_OK) {
        a.domain_id = d.id;
        rc = s->be->account_insert(s->dir, &a, &a.id, err);
    }
    pthread_mutex_unlock(&s->dir_lock);
    if (rc)
        goto out;
    /* The row goes first: its uniqueness is what makes wiping the path below safe. */
    rc = store_create_user_store(s, a.domain, a.localpart, err);
    if (rc) {
        pthread_mutex_lock(&s->dir_lock);
        s->be->account_delete(s->dir, a.id, NULL);
        pthread_mutex_unlock(&s->dir_lock);
        s->be->user_remove(&s->bcfg, a.domain, a.localpart, NULL);
        goto out;
    }
    if (out)
        *out = a;
out:
    memset(a.pwhash, 0, sizeof(a.pwhash));
    return rc;
}

int store_account_get(struct store *s, const char *address, struct store_account *out,
                      struct store_err *err)
{
    char full[320], lp[65], dom[254];
    int rc;

    if (s == NULL)
        return store_errf(err, STORE_EINVAL, "no store");
    rc = store_split(address, full, lp, dom, 0, err);
    if (rc == STORE_EINVAL)
        return store_errf(err, STORE_ENOTFOUND, "no such user: %s", address);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->account_get(s->dir, dom, lp, out, err);
    pthread_mutex_unlock(&s->dir_lock);
    return rc;
}

int store_account_del(struct store *s, const char *address, struct store_err *err)
{
    struct store_account a;
    int rc;

    rc = store_account_get(s, address, &a, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->account_delete(s->dir, a.id, err);
    if (rc == STORE_OK)
        rc = s->be->setting_del(s->dir, a.address, NULL, err);
    pthread_mutex_unlock(&s->dir_lock);
    if (rc)
        return rc;
    store_cache_evict(s, a.domain, a.localpart);
    rc = s->be->user_remove(&s->bcfg, a.domain, a.localpart, err);
    /* Requests waiting on the mailbox (Ping, IDLE) wake, find it gone and end, rather
     * than waiting for their heartbeat on a mailbox that no longer exists. */
    store_notify_commit(s->hub, a.address, 0);
    return rc;
}

int store_account_list(struct store *s, const char *domain, store_account_cb cb, void *ctx,
                       struct store_err *err)
{
    struct store_vec vec = {.size = sizeof(struct store_account)};
    char dom[254];
    int rc;

    if (s == NULL || cb == NULL)
        return store_errf(err, STORE_EINVAL, "store_account_list needs a store and a callback");
    if (domain) {
        rc = store_lower(dom, sizeof(dom), domain, "domain name", err);
        if (rc)
            return rc;
    }
    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->account_list(s->dir, domain ? dom : NULL, store_collect_account, &vec, err);
    pthread_mutex_unlock(&s->dir_lock);
    rc = store_vec_done(&vec, rc, err);
    for (size_t i = 0; rc == STORE_OK && i < vec.n; i++)
        if (cb((const struct store_account *)(vec.v + i * vec.size), ctx) != 0)
            break;
    if (vec.v)
        memset(vec.v, 0, vec.n * vec.size); /* password hashes */
    free(vec.v);
    return rc;
}

enum store_acct_field { STORE_SET_PASSWORD, STORE_SET_TYPE, STORE_SET_QUOTA, STORE_SET_ACTIVE };

/* Read, change one field, write back: under the directory lock so two changes to the same
 * user in this process do not lose each other. */
static int store_account_set(struct store *s, const char *address, enum store_acct_field f,
                             int64_t v, const char *pwhash, struct store_err *err)
{
    char full[320], lp[65], dom[254];
    struct store_account a;
    int rc;

    if (s == NULL)
        return store_errf(err, STORE_EINVAL, "no store");
    rc = store_split(address, full, lp, dom, 0, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->account_get(s->dir, dom, lp, &a, err);
    if (rc)
        goto out;
    if (f == STORE_SET_PASSWORD) {
        memcpy(a.pwhash, pwhash, strlen(pwhash) + 1);
    } else if (f == STORE_SET_TYPE) {
        /* The current quota must still be allowed for the new type. */
        rc = store_valid_quota((enum store_acct_type)v, a.quota, err);
        a.type = (enum store_acct_type)v;
    } else if (f == STORE_SET_QUOTA) {
        a.quota = v ? v : STORE_QUOTA_DEFAULT;
        rc = store_valid_quota(a.type, a.quota, err);
    } else {
        a.active = v != 0;
    }
    if (rc == STORE_OK)
        rc = s->be->account_update(s->dir, &a, err);
out:
    pthread_mutex_unlock(&s->dir_lock);
    memset(&a, 0, sizeof(a));
    /* A new type or state changes which services the mailbox may use. Engines check the
     * gate when a waiting request wakes (a Ping of a mailbox turned Basic answers 403), so
     * wake them now, as a commit would: MODSEQ 0 says nothing changed in the store itself.
     * From the CLI this goes to the server through notify.sock. After the directory lock:
     * subscribers may read the directory at once. */
    if (rc == STORE_OK && (f == STORE_SET_TYPE || f == STORE_SET_ACTIVE))
        store_notify_commit(s->hub, full, 0);
    return rc;
}

int store_account_set_password(struct store *s, const char *address, const char *password,
                               struct store_err *err)
{
    char hash[160];
    int rc;

    if (password == NULL)
        return store_errf(err, STORE_EINVAL, "no password given");
    rc = store_valid_password(password, err);
    if (rc == STORE_OK)
        rc = store_password_hash(password, hash, sizeof(hash), err);
    if (rc == STORE_OK)
        rc = store_account_set(s, address, STORE_SET_PASSWORD, 0, hash, err);
    memset(hash, 0, sizeof(hash));
    return rc;
}

int store_account_set_type(struct store *s, const char *address, enum store_acct_type type,
                           struct store_err *err)
{
    if (type != STORE_BASIC && type != STORE_ENHANCED)
        return store_errf(err, STORE_EINVAL, "account type must be basic or enhanced");
    return store_account_set(s, address, STORE_SET_TYPE, type, NULL, err);
}

int store_account_set_quota(struct store *s, const char *address, int64_t quota,
                            struct store_err *err)
{
    return store_account_set(s, address, STORE_SET_QUOTA, quota, NULL, err);
}

int store_account_set_active(struct store *s, const char *address, int active,
                             struct store_err *err)
{
    return store_account_set(s, address, STORE_SET_ACTIVE, active, NULL, err);
}

/* ------------------------------------------------------------------------------------- */
/* Directory: aliases                                                                     */

/* Resolves an alias source to its hosted domain's id and local part ('' = catch-all). */
static int store_alias_source(struct store *s, const char *source, char *full, char *lp,
                              int64_t *domain_id, struct store_err *err)
{
    struct store_domain d;
    char dom[254];
    int rc;

    rc = store_split(source, full, lp, dom, 1, err);
    if (rc == STORE_OK)
        rc = store_valid_domain(dom, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->domain_get(s->dir, dom, NULL, &d, NULL);
    pthread_mutex_unlock(&s->dir_lock);
    if (rc == STORE_ENOTFOUND)
        return store_errf(err, STORE_EINVAL, "domain %s is not hosted here", dom);
    if (rc)
        return store_errf(err, rc, "cannot read domain %s", dom);
    *domain_id = d.id;
    return STORE_OK;
}

int store_alias_add(struct store *s, const char *source, const char *target, struct store_err *err)
{
    char full[320], lp[65], tgt[320];
    int64_t domain_id = 0;
    int rc;

    if (s == NULL)
        return store_errf(err, STORE_EINVAL, "no store");
    rc = store_alias_source(s, source, full, lp, &domain_id, err);
    if (rc)
        return rc;
    rc = store_lower(tgt, sizeof(tgt), target, "alias target", err);
    if (rc)
        return rc;
    if (strcmp(tgt, STORE_BLACKHOLE) != 0) {
        rc = store_valid_address(tgt, err);
        if (rc)
            return rc;
        /* A forwarder on an address with its own mailbox lists that address to keep a
         * copy there (the hosting product's rule); without a mailbox it would be a loop. */
        struct store_account self;
        if (strcmp(tgt, full) == 0 && store_account_get(s, full, &self, NULL) != STORE_OK)
            return store_errf(err, STORE_EINVAL,
                              "alias %s cannot point to itself: it has no mailbox", full);
    }
    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->alias_insert(s->dir, domain_id, lp, tgt, err);
    pthread_mutex_unlock(&s->dir_lock);
    if (rc == STORE_EEXIST)
        return store_errf(err, rc, "alias %s -> %s already exists", full, tgt);
    return rc;
}

int store_alias_del(struct store *s, const char *source, const char *target, struct store_err *err)
{
    char full[320], lp[65], tgt[320];
    int64_t domain_id = 0;
    int rc;

    if (s == NULL)
        return store_errf(err, STORE_EINVAL, "no store");
    rc = store_alias_source(s, source, full, lp, &domain_id, err);
    if (rc == STORE_OK && target)
        rc = store_lower(tgt, sizeof(tgt), target, "alias target", err);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->alias_delete(s->dir, domain_id, lp, target ? tgt : NULL, err);
    pthread_mutex_unlock(&s->dir_lock);
    if (rc == STORE_ENOTFOUND)
        return store_errf(err, rc, "no alias %s%s%s", full, target ? " -> " : "",
                          target ? tgt : "");
    return rc;
}

int store_alias_list(struct store *s, const char *domain, const char *source, store_alias_cb cb,
                     void *ctx, struct store_err *err)
{
    struct store_vec vec = {.size = sizeof(struct store_alias_row)};
    char full[320], lp[65], dom[254];
    int rc;

    if (s == NULL || cb == NULL)
        return store_errf(err, STORE_EINVAL, "store_alias_list needs a store and a callback");
    if (source)
        rc = store_split(source, full, lp, dom, 1, err);
    else if (domain)
        rc = store_lower(dom, sizeof(dom), domain, "domain name", err);
    else
        rc = STORE_OK;
    if (rc)
        return rc;
    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->alias_list(s->dir, (source || domain) ? dom : NULL, source ? lp : NULL,
                           store_collect_alias, &vec, err);
    pthread_mutex_unlock(&s->dir_lock);
    rc = store_vec_done(&vec, rc, err);
    for (size_t i = 0; rc == STORE_OK && i < vec.n; i++) {
        const struct store_alias_row *r = (const void *)(vec.v + i * vec.size);

        if (cb(r->source, r->target, ctx) != 0)
            break;
    }
    free(vec.v);
    return rc;
}

/* ------------------------------------------------------------------------------------- */
/* User handles                                                                           */

/* Opens a user's database; one the directory lists but that is missing or lacks its
 * folders (an add cut short by a crash) is completed rather than reported broken. */
static int store_user_bu_open(struct store *s, const char *dom, const char *lp,
                              struct store_bu **out, struct store_err *err)
{
    struct store_folder f;
    struct store_bu *bu = NULL;
    int rc;

    rc = s->be->user_open(&s->bcfg, dom, lp, 0, &bu, err);
    if (rc == STORE_ENOTFOUND)
        rc = s->be->user_open(&s->bcfg, dom, lp, 1, &bu, err);
    if (rc)
        return rc;
    if (s->be->folder_by_role(bu, STORE_ROLE_INBOX, 0, &f, NULL) == STORE_ENOTFOUND) {
        rc = store_default_folders_ensure(s->be, bu, err);
        if (rc) {
            s->be->user_close(bu);
            return rc;
        }
    }
    *out = bu;
    return STORE_OK;
}

int store_user_open(struct store *s, const char *address, struct store_user **out,
                    struct store_err *err)
{
    struct store_user *u = NULL, *found;
    struct store_bu *bu = NULL;
    char full[320], lp[65], dom[254];
    int rc;

    if (s == NULL || out == NULL)
        return store_errf(err, STORE_EINVAL, "store_user_open needs a store");
    rc = store_split(address, full, lp, dom, 0, err);
    if (rc)
        return store_errf(err, STORE_ENOTFOUND, "no such user: %s", address ? address : "");
    pthread_mutex_lock(&s->cache_lock);
    found = store_cache_find(s, full);
    if (found) {
        if (found->refs++ == 0)
            store_lru_remove(s, found);
        pthread_mutex_unlock(&s->cache_lock);
        *out = found;
        return STORE_OK;
    }
    pthread_mutex_unlock(&s->cache_lock);

    /* Not cached: the directory says whether the user exists; open outside any lock. */
    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->account_get(s->dir, dom, lp, NULL, err);
    pthread_mutex_unlock(&s->dir_lock);
    if (rc)
        return rc;
    rc = store_user_bu_open(s, dom, lp, &bu, err);
    if (rc)
        return rc;
    u = calloc(1, sizeof(*u));
    if (u == NULL || pthread_mutex_init(&u->lock, NULL) != 0) {
        free(u);
        s->be->user_close(bu);
        return store_errf(err, STORE_ENOMEM, "out of memory");
    }
    u->s = s;
    u->bu = bu;
    memcpy(u->address, full, sizeof(full));
    memcpy(u->localpart, lp, sizeof(lp));
    memcpy(u->domain, dom, sizeof(dom));
    u->refs = 1;

    pthread_mutex_lock(&s->cache_lock);
    found = store_cache_find(s, full);
    if (found) { /* another thread opened it meanwhile: use theirs */
        if (found->refs++ == 0)
            store_lru_remove(s, found);
    } else {
        unsigned h = store_hash(full);

        u->hnext = s->buckets[h];
        s->buckets[h] = u;
    }
    pthread_mutex_unlock(&s->cache_lock);
    if (found) {
        store_user_free(u);
        u = found;
    }
    *out = u;
    return STORE_OK;
}

void store_user_release(struct store_user *u)
{
    struct store_user *doomed = NULL;
    struct store *s;

    if (u == NULL)
        return;
    s = u->s;
    pthread_mutex_lock(&s->cache_lock);
    if (--u->refs == 0) {
        if (u->gone) {
            doomed = u;
            u->hnext = NULL;
        } else {
            store_lru_push(s, u);
        }
        while (s->idle > STORE_IDLE_MAX) {
            struct store_user *old = s->lru_tail;

            store_lru_remove(s, old);
            store_cache_unhash(s, old);
            old->hnext = doomed;
            doomed = old;
        }
    }
    pthread_mutex_unlock(&s->cache_lock);
    while (doomed) {
        struct store_user *next = doomed->hnext;

        store_user_free(doomed);
        doomed = next;
    }
}

const char *store_user_address(const struct store_user *u)
{
    return u ? u->address : NULL;
}

/* ------------------------------------------------------------------------------------- */
/* Locking and transactions                                                               */

static int store_holds(const struct store_user *u)
{
    for (const struct store_user *p = store_held; p; p = p->held_next)
        if (p == u)
            return 1;
    return 0;
}

static void store_lock(struct store_user *u)
{
    if (store_holds(u)) {
        u->depth++;
        return;
    }
    pthread_mutex_lock(&u->lock);
    u->depth = 1;
    u->held_next = store_held;
    store_held = u;
}

static void store_unlock(struct store_user *u)
{
    if (--u->depth > 0)
        return;
    for (struct store_user **pp = &store_held; *pp; pp = &(*pp)->held_next) {
        if (*pp == u) {
            *pp = u->held_next;
            break;
        }
    }
    u->held_next = NULL;
    pthread_mutex_unlock(&u->lock);
}

/* Errors after which the connection's transaction state cannot be trusted. */
static int store_fatal(int rc)
{
    return rc == STORE_EIO || rc == STORE_EBUSY || rc == STORE_ENOMEM;
}

/* Commits (rc == 0) or rolls back the open write transaction; *m gets its MODSEQ. */
static int store_finish(struct store_user *u, int rc, int64_t *m, struct store_err *err)
{
    const struct store_backend *be = u->s->be;

    *m = 0;
    if (rc == STORE_OK)
        rc = be->txn_commit(u->bu, err);
    if (rc == STORE_OK)
        *m = u->txn_modseq;
    else
        be->txn_rollback(u->bu);
    u->in_write = 0;
    u->txn_modseq = 0;
    u->broken = 0;
    return rc;
}

struct store_op {
    int nested;            /* inside a transaction already open on this thread */
    int64_t modseq_before; /* to forget a MODSEQ taken by a failed inner call */
};

/* Starts a mutating call: its own transaction, or a savepoint in the caller's. */
static int store_wbegin(struct store_user *u, struct store_op *op, struct store_err *err)
{
    const struct store_backend *be = u->s->be;
    int rc;

    store_lock(u);
    op->nested = u->in_write;
    op->modseq_before = u->txn_modseq;
    if (op->nested) {
        rc = u->broken ? store_errf(err, STORE_EIO, "the transaction already failed")
                       : be->sp_begin(u->bu, err);
    } else {
        rc = be->txn_begin(u->bu, err);
        if (rc == STORE_OK) {
            u->in_write = 1;
            u->txn_modseq = 0;
            u->broken = 0;
        }
    }
    if (rc)
        store_unlock(u);
    return rc;
}

static int store_wend(struct store_user *u, struct store_op *op, int rc, struct store_err *err)
{
    const struct store_backend *be = u->s->be;
    int64_t m = 0;

    if (op->nested) {
        if (rc == STORE_OK)
            rc = be->sp_release(u->bu, err);
        if (rc != STORE_OK) {
            be->sp_rollback(u->bu);
            u->txn_modseq = op->modseq_before;
            if (store_fatal(rc))
                u->broken = 1;
        }
        store_unlock(u);
        return rc;
    }
    rc = store_finish(u, rc, &m, err);
    store_unlock(u);
    /* After the commit and outside the user lock: a subscriber may read at once. */
    if (rc == STORE_OK && m > 0)
        store_notify_commit(u->s->hub, u->address, m);
    return rc;
}

/* The MODSEQ of the open transaction, taken from the counter at its first change. */
static int store_modseq_take(struct store_user *u, int64_t *m, struct store_err *err)
{
    int rc = STORE_OK;

    if (u->txn_modseq == 0)
        rc = u->s->be->modseq_next(u->bu, &u->txn_modseq, err);
    *m = u->txn_modseq;
    return rc;
}

int store_txn_begin(struct store_user *u, struct store_err *err)
{
    int rc;

    if (u == NULL)
        return store_errf(err, STORE_EINVAL, "no user handle");
    store_lock(u);
    if (u->txn_depth > 0) {
        u->txn_depth++; /* nested: the outermost commit decides; keep the lock depth */
        return STORE_OK;
    }
    if (u->in_write) {
        store_unlock(u);
        return store_errf(err, STORE_EINVAL, "a write is already in progress on this handle");
    }
    rc = u->s->be->txn_begin(u->bu, err);
    if (rc) {
        store_unlock(u);
        return rc;
    }
    u->in_write = 1;
    u->txn_depth = 1;
    u->txn_modseq = 0;
    u->broken = 0;
    return STORE_OK;
}

int store_txn_commit(struct store_user *u, int64_t *modseq, struct store_err *err)
{
    int64_t m = 0;
    int rc;

    if (u == NULL || !store_holds(u) || u->txn_depth == 0)
        return store_errf(err, STORE_EINVAL, "no transaction open on this handle in this thread");
    if (u->txn_depth > 1) {
        u->txn_depth--;
        if (modseq)
            *modseq = u->txn_modseq;
        store_unlock(u);
        return STORE_OK;
    }
    u->txn_depth = 0;
    rc = u->broken ? store_errf(err, STORE_EIO, "transaction rolled back after an earlier failure")
                   : STORE_OK;
    rc = store_finish(u, rc, &m, err);
    if (rc == STORE_OK && modseq) {
        *modseq = m;
        if (m == 0)
            u->s->be->counters(u->bu, modseq, NULL, NULL, NULL);
    }
    store_unlock(u);
    if (rc == STORE_OK && m > 0)
        store_notify_commit(u->s->hub, u->address, m);
    return rc;
}

void store_txn_rollback(struct store_user *u)
{
    int64_t m;

    if (u == NULL || !store_holds(u) || u->txn_depth == 0)
        return;
    if (u->txn_depth > 1) {
        /* An inner rollback dooms the whole transaction. */
        u->txn_depth--;
        u->broken = 1;
        store_unlock(u);
        return;
    }
    u->txn_depth = 0;
    store_finish(u, STORE_EINVAL, &m, NULL);
    store_unlock(u);
}

/* ------------------------------------------------------------------------------------- */
/* Counters                                                                               */

int64_t store_user_modseq(struct store_user *u)
{
    int64_t m = 0;
    int rc;

    if (u == NULL)
        return STORE_EINVAL;
    store_lock(u);
    rc = u->s->be->counters(u->bu, &m, NULL, NULL, NULL);
    store_unlock(u);
    return rc ? rc : m;
}

int64_t store_user_modseq_floor(struct store_user *u)
{
    int64_t f = 0;
    int rc;

    if (u == NULL)
        return STORE_EINVAL;
    store_lock(u);
    rc = u->s->be->counters(u->bu, NULL, &f, NULL, NULL);
    store_unlock(u);
    return rc ? rc : f;
}

static int store_user_quota(struct store_user *u, int64_t *quota, struct store_err *err)
{
    struct store_account a;
    struct store *s = u->s;
    int rc;

    pthread_mutex_lock(&s->dir_lock);
    rc = s->be->account_get(s->dir, u->domain, u->localpart, &a, err);
    pthread_mutex_unlock(&s->dir_lock);
    if (rc == STORE_OK)
        *quota = a.quota;
    memset(a.pwhash, 0, sizeof(a.pwhash));
    return rc;
}

int store_user_usage(struct store_user *u, int64_t *used, int64_t *quota)
{
    int64_t us = 0, q = 0;
    int rc;

    if (u == NULL)
        return STORE_EINVAL;
    store_lock(u);
    rc = u->s->be->counters(u->bu, NULL, NULL, &us, NULL);
    store_unlock(u);
    if (rc == STORE_OK)
        rc = store_user_quota(u, &q, NULL);
    if (rc == STORE_OK) {
        if (used)
            *used = us;
        if (quota)
            *quota = q;
    }
    return rc;
}

/* Inside the write transaction, so the usage read is the one the change will update. */
static int store_quota_check(struct store_user *u, int64_t add, int no_quota, struct store_err *err)
{
    int64_t used = 0, quota = 0;
    int rc;

    if (no_quota || add <= 0)
        return STORE_OK;
    rc = u->s->be->counters(u->bu, NULL, NULL, &used, err);
    if (rc == STORE_OK)
        rc = store_user_quota(u, &quota, err);
    if (rc == STORE_OK && used + add > quota)
        rc = store_errf(err, STORE_EQUOTA,
                        "over quota: %s uses %lld of %lld bytes, %lld more do not fit", u->address,
                        (long long)used, (long long)quota, (long long)add);
    return rc;
}

/* ------------------------------------------------------------------------------------- */
/* Folders                                                                                */

static int store_check_folder_name(const char *name, struct store_err *err)
{
    if (name == NULL || *name == '\0')
        return store_errf(err, STORE_EINVAL, "folder name is empty");
    return store_check_text(name, sizeof(((struct store_folder *)0)->name), "folder name", err);
}

int store_folder_list(struct store_user *u, enum store_class cls, store_folder_cb cb, void *ctx,
                      struct store_err *err)
{
    int rc;

    if (u == NULL || cb == NULL)
        return store_errf(err, STORE_EINVAL, "store_folder_list needs a handle and a callback");
    store_lock(u);
    rc = u->s->be->folder_list(u->bu, cls, cb, ctx, err);
    store_unlock(u);
    return rc;
}

int store_folder_get(struct store_user *u, int64_t id, struct store_folder *out,
                     struct store_err *err)
{
    int rc;

    if (u == NULL)
        return store_errf(err, STORE_EINVAL, "no user handle");
    store_lock(u);
    rc = u->s->be->folder_get(u->bu, id, out, err);
    store_unlock(u);
    return rc;
}

static int store_folder_find_as(struct store_user *u, int64_t parent_id, const char *name,
                                int counts, struct store_folder *out)
{
    int rc;

    if (u == NULL || name == NULL)
        return STORE_EINVAL;
    store_lock(u);
    rc = u->s->be->folder_find(u->bu, parent_id, name, counts, out, NULL);
    store_unlock(u);
    return rc;
}

static int store_folder_by_role_as(struct store_user *u, enum store_role role, int counts,
                                   struct store_folder *out)
{
    int rc;

    if (u == NULL || role == STORE_ROLE_NONE)
        return STORE_EINVAL;
    store_lock(u);
    rc = u->s->be->folder_by_role(u->bu, role, counts, out, NULL);
    store_unlock(u);
    return rc;
}

int store_folder_find(struct store_user *u, int64_t parent_id, const char *name,
                      struct store_folder *out)
{
    return store_folder_find_as(u, parent_id, name, 1, out);
}

int store_folder_by_role(struct store_user *u, enum store_role role, struct store_folder *out)
{
    return store_folder_by_role_as(u, role, 1, out);
}

int store_folder_find_nocount(struct store_user *u, int64_t parent_id, const char *name,
                              struct store_folder *out)
{
    return store_folder_find_as(u, parent_id, name, 0, out);
}

int store_folder_by_role_nocount(struct store_user *u, enum store_role role,
                                 struct store_folder *out)
{
    return store_folder_by_role_as(u, role, 0, out);
}

int store_folder_create(struct store_user *u, int64_t parent_id, const char *name,
                        enum store_class cls, enum store_role role, int64_t *id,
                        struct store_err *err)
{
    const struct store_backend *be;
    struct store_folder f;
    struct store_op op;
    int64_t m, fid = 0;
    int rc;

    if (u == NULL)
        return store_errf(err, STORE_EINVAL, "no user handle");
    rc = store_check_folder_name(name, err);
    if (rc)
        return rc;
    if (cls < STORE_CLASS_MAIL || cls > STORE_CLASS_NOTES)
        return store_errf(err, STORE_EINVAL, "unknown folder class %d", (int)cls);
    if (role < STORE_ROLE_NONE || role > STORE_ROLE_NOTES)
        return store_errf(err, STORE_EINVAL, "unknown folder role %d", (int)role);
    be = u->s->be;
    rc = store_wbegin(u, &op, err);
    if (rc)
        return rc;
    if (parent_id != 0 && be->folder_get(u->bu, parent_id, &f, NULL) != STORE_OK)
        rc = store_errf(err, STORE_ENOTFOUND, "no parent folder %lld", (long long)parent_id);
    else if (role != STORE_ROLE_NONE && be->folder_by_role(u->bu, role, 0, &f, NULL) == STORE_OK)
        rc = store_errf(err, STORE_EEXIST, "folder %s already has the role %s", f.name,
                        store_role_name(role));
    if (rc == STORE_OK)
        rc = store_modseq_take(u, &m, err);
    if (rc == STORE_OK)
        rc = be->folder_insert(u->bu, parent_id, name, cls, role, m, &fid, err);
    rc = store_wend(u, &op, rc, err);
    if (rc == STORE_OK && id)
        *id = fid;
    return rc;
}

/* Is `id` at or above `node` (following parents)? Guards against renaming into oneself. */
static int store_folder_is_ancestor(struct store_user *u, int64_t id, int64_t node)
{
    struct store_folder f;

    for (int hops = 0; node != 0 && hops < 10000; hops++) {
        if (node == id)
            return 1;
        if (u->s->be->folder_get(u->bu, node, &f, NULL) != STORE_OK)
            return 0;
        node = f.parent_id;
    }
    return 0;
}

int store_folder_rename(struct store_user *u, int64_t id, int64_t new_parent, const char *name,
                        struct store_err *err)
{
    const struct store_backend *be;
    struct store_folder f, p;
    struct store_op op;
    int64_t m, parent;
    int rc;

    if (u == NULL)
        return store_errf(err, STORE_EINVAL, "no user handle");
    if (name) {
        rc = store_check_folder_name(name, err);
        if (rc)
            return rc;
    }
    be = u->s->be;
    rc = store_wbegin(u, &op, err);
    if (rc)
        return rc;
    rc = be->folder_get(u->bu, id, &f, err);
    parent = new_parent < 0 ? f.parent_id : new_parent;
    if (rc == STORE_OK && parent != 0 && be->folder_get(u->bu, parent, &p, NULL) != STORE_OK)
        rc = store_errf(err, STORE_ENOTFOUND, "no parent folder %lld", (long long)parent);
    if (rc == STORE_OK && store_folder_is_ancestor(u, id, parent))
        rc = store_errf(err, STORE_EINVAL, "a folder cannot move below itself");
    if (rc == STORE_OK)
        rc = store_modseq_take(u, &m, err);
    if (rc == STORE_OK)
        rc = be->folder_rename(u->bu, id, parent, name ? name : f.name, m, err);
    return store_wend(u, &op, rc, err);
}

struct store_subtree {
    int64_t root;
    struct store_vec all; /* every folder, in id order */
};

static int store_collect_folder(const struct store_folder *f, void *ctx)
{
    struct store_subtree *t = ctx;
    int64_t row[3] = {f->id, f->parent_id, (int64_t)f->role};

    return store_vec_push(&t->all, row);
}

/* The first folder with a role in the subtree of t->root, or 0. */
static int64_t store_subtree_role(struct store_subtree *t)
{
    const int64_t *rows = (const int64_t *)t->all.v;
    size_t n = t->all.n;
    char *in = calloc(n ? n : 1, 1);
    int64_t found = 0;
    int grew = 1;

    if (in == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        in[i] = rows[3 * i] == t->root;
    /* Parents may have higher ids after a reparent: iterate to a fixed point. */
    while (grew) {
        grew = 0;
        for (size_t i = 0; i < n; i++) {
            if (in[i])
                continue;
            for (size_t j = 0; j < n; j++) {
                if (in[j] && rows[3 * j] == rows[3 * i + 1]) {
                    in[i] = 1;
                    grew = 1;
                    break;
                }
            }
        }
    }
    for (size_t i = 0; i < n && !found; i++)
        if (in[i] && rows[3 * i + 2] != STORE_ROLE_NONE)
            found = rows[3 * i];
    free(in);
    return found;
}

int store_folder_delete(struct store_user *u, int64_t id, struct store_err *err)
{
    struct store_subtree t = {.root = id, .all = {.size = 3 * sizeof(int64_t)}};
    const struct store_backend *be;
    struct store_folder f;
    struct store_op op;
    int64_t m, role_id;
    int rc;

    if (u == NULL)
        return store_errf(err, STORE_EINVAL, "no user handle");
    be = u->s->be;
    rc = store_wbegin(u, &op, err);
    if (rc)
        return rc;
    rc = be->folder_get(u->bu, id, &f, err);
    if (rc == STORE_OK)
        rc = be->folder_list(u->bu, 0, store_collect_folder, &t, err);
    if (rc == STORE_OK && t.all.failed)
        rc = store_errf(err, STORE_ENOMEM, "out of memory");
    if (rc == STORE_OK) {
        role_id = store_subtree_role(&t);
        if (role_id < 0)
            rc = store_errf(err, STORE_ENOMEM, "out of memory");
        else if (role_id > 0)
            rc = store_errf(err, STORE_EINVAL,
                            "folder %lld has a role and cannot be deleted (it is %s or below it)",
                            (long long)role_id, f.name);
    }
    if (rc == STORE_OK)
        rc = store_modseq_take(u, &m, err);
    if (rc == STORE_OK)
        rc = be->folder_delete(u->bu, id, m, err);
    free(t.all.v);
    return store_wend(u, &op, rc, err);
}

static int store_folder_set(struct store_user *u, int64_t id, int subscribed, const char *props,
                            struct store_err *err)
{
    struct store_op op;
    int64_t m;
    int rc;

    if (u == NULL)
        return store_errf(err, STORE_EINVAL, "no user handle");
    rc = store_check_text(props, sizeof(((struct store_folder *)0)->props), "folder properties",
                          err);
    if (rc)
        return rc;
    rc = store_wbegin(u, &op, err);
    if (rc)
        return rc;
    rc = u->s->be->folder_get(u->bu, id, NULL, err);
    if (rc == STORE_OK)
        rc = store_modseq_take(u, &m, err);
    if (rc == STORE_OK)
        rc = u->s->be->folder_set(u->bu, id, subscribed, props, m, err);
    return store_wend(u, &op, rc, err);
}

int store_folder_set_subscribed(struct store_user *u, int64_t id, int on, struct store_err *err)
{
    return store_folder_set(u, id, on != 0, NULL, err);
}

int store_folder_set_props(struct store_user *u, int64_t id, const char *props,
                           struct store_err *err)
{
    if (props == NULL)
        return store_errf(err, STORE_EINVAL, "no properties given");
    return store_folder_set(u, id, -1, props, err);
}

int store_folder_changes_since(struct store_user *u, int64_t since, store_folder_change_cb cb,
                               void *ctx, struct store_err *err)
{
    int rc;

    if (u == NULL || cb == NULL)
        return store_errf(err, STORE_EINVAL, "store_folder_changes_since needs a callback");
    store_lock(u);
    rc = u->s->be->folder_changes_since(u->bu, since, cb, ctx, err);
    store_unlock(u);
    return rc;
}

/* ------------------------------------------------------------------------------------- */
/* Items                                                                                  */

#define STORE_FIELD(f) sizeof(((struct store_item *)0)->f)

static int store_check_new(const struct store_item_new *in, struct store_err *err)
{
    int rc;

    if (in == NULL)
        return store_errf(err, STORE_EINVAL, "no item given");
    if (in->body == NULL && in->body_len > 0)
        return store_errf(err, STORE_EINVAL, "item body is missing");
    if (in->meta == NULL && in->meta_len > 0)
        return store_errf(err, STORE_EINVAL, "item meta is missing");
    if (in->body_len > (size_t)INT32_MAX || in->meta_len > (size_t)INT32_MAX)
        return store_errf(err, STORE_EINVAL, "item is too large (2 GiB at most)");
    rc = store_check_text(in->ctype, STORE_FIELD(ctype), "content type", err);
    if (rc == STORE_OK)
        rc = store_check_text(in->name, STORE_FIELD(name), "item name", err);
    if (rc == STORE_OK)
        rc = store_check_text(in->ext_uid, STORE_FIELD(ext_uid), "item UID", err);
    if (rc == STORE_OK)
        rc = store_check_text(in->keywords, STORE_FIELD(keywords), "keywords", err);
    return rc;
}

int store_item_add(struct store_user *u, int64_t folder_id, const struct store_item_new *in,
                   struct store_item *out, struct store_err *err)
{
    struct store_op op;
    int64_t m;
    int rc;

    if (u == NULL)
        return store_errf(err, STORE_EINVAL, "no user handle");
    rc = store_check_new(in, err);
    if (rc)
        return rc;
    rc = store_wbegin(u, &op, err);
    if (rc)
        return rc;
    rc = store_quota_check(u, (int64_t)in->body_len, in->no_quota, err);
    if (rc == STORE_OK)
        rc = store_modseq_take(u, &m, err);
    if (rc == STORE_OK)
        rc = u->s->be->item_insert(u->bu, folder_id, in, m, (int64_t)time(NULL), out, err);
    return store_wend(u, &op, rc, err);
}

int store_item_get(struct store_user *u, int64_t item_id, struct store_item *out,
                   struct store_err *err)
{
    int rc;

    if (u == NULL)
        return store_errf(err, STORE_EINVAL, "no user handle");
    store_lock(u);
    rc = u->s->be->item_get(u->bu, item_id, out, err);
    store_unlock(u);
    return rc;
}

static int store_item_find(struct store_user *u, int64_t folder_id, enum store_item_key key,
                           uint32_t uid, const char *s, struct store_item *out)
{
    int rc;

    if (u == NULL || (key != STORE_KEY_UID && (s == NULL || *s == '\0')))
        return STORE_EINVAL;
    store_lock(u);
    rc = u->s->be->item_find(u->bu, folder_id, key, uid, s, out, NULL);
    store_unlock(u);
    return rc;
}

int store_item_by_uid(struct store_user *u, int64_t folder_id, uint32_t uid, struct store_item *out)
{
    return store_item_find(u, folder_id, STORE_KEY_UID, uid, NULL, out);
}

int store_item_by_name(struct store_user *u, int64_t folder_id, const char *name,
                       struct store_item *out)
{
    return store_item_find(u, folder_id, STORE_KEY_NAME, 0, name, out);
}

int store_item_by_ext_uid(struct store_user *u, int64_t folder_id, const char *ext_uid,
                          struct store_item *out)
{
    return store_item_find(u, folder_id, STORE_KEY_EXT_UID, 0, ext_uid, out);
}

int store_item_body(struct store_user *u, int64_t item_id, char **body, size_t *len,
                    struct store_err *err)
{
    int rc;

    if (u == NULL || body == NULL || len == NULL)
        return store_errf(err, STORE_EINVAL, "store_item_body needs a handle and outputs");
    store_lock(u);
    rc = u->s->be->item_body(u->bu, item_id, body, len, err);
    store_unlock(u);
    return rc;
}

int store_item_meta(struct store_user *u, int64_t item_id, void **meta, size_t *len,
                    struct store_err *err)
{
    int rc;

    if (u == NULL || meta == NULL || len == NULL)
        return store_errf(err, STORE_EINVAL, "store_item_meta needs a handle and outputs");
    store_lock(u);
    rc = u->s->be->item_meta(u->bu, item_id, meta, len, err);
    store_unlock(u);
    return rc;
}

int store_item_meta_range(struct store_user *u, int64_t folder_id, uint32_t uid_lo, uint32_t uid_hi,
                          store_meta_cb cb, void *ctx, struct store_err *err)
{
    int rc;

    if (u == NULL || cb == NULL)
        return store_errf(err, STORE_EINVAL, "store_item_meta_range needs a handle and a callback");
    if (uid_lo > uid_hi)
        return STORE_OK;
    store_lock(u);
    rc = u->s->be->item_meta_range(u->bu, folder_id, uid_lo, uid_hi, cb, ctx, err);
    store_unlock(u);
    return rc;
}

int store_item_replace(struct store_user *u, int64_t item_id, const struct store_item_new *in,
                       int64_t if_modseq, struct store_item *out, struct store_err *err)
{
    const struct store_backend *be;
    struct store_item cur;
    struct store_op op;
    int64_t m;
    int rc;

    if (u == NULL)
        return store_errf(err, STORE_EINVAL, "no user handle");
    rc = store_check_new(in, err);
    if (rc)
        return rc;
    be = u->s->be;
    rc = store_wbegin(u, &op, err);
    if (rc)
        return rc;
    rc = be->item_get(u->bu, item_id, &cur, err);
    if (rc == STORE_OK && if_modseq > 0 && cur.modseq != if_modseq)
        rc = store_errf(err, STORE_ECONFLICT, "item %lld changed (MODSEQ %lld, expected %lld)",
                        (long long)item_id, (long long)cur.modseq, (long long)if_modseq);
    if (rc == STORE_OK)
        rc = store_quota_check(u, (int64_t)in->body_len - cur.size, in->no_quota, err);
    if (rc == STORE_OK)
        rc = store_modseq_take(u, &m, err);
    if (rc == STORE_OK)
        rc = be->item_replace(u->bu, item_id, in, m, (int64_t)time(NULL), err);
    if (rc == STORE_OK && out)
        rc = be->item_get(u->bu, item_id, out, err);
    return store_wend(u, &op, rc, err);
}

/* Does the space-separated set `set` contain keyword `kw` (n bytes)? Case-insensitive, as
 * IMAP keywords are. */
static int store_kw_has(const char *set, const char *kw, size_t n)
{
    for (const char *p = set; *p;) {
        size_t len;

        while (*p == ' ')
            p++;
        len = strcspn(p, " ");
        if (len == n && len > 0 && strncasecmp(p, kw, n) == 0)
            return 1;
        p += len;
    }
    return 0;
}

/* out = (base minus `drop`) plus `add`, deduplicated; refuses a result that does not fit. */
static int store_kw_merge(char *out, size_t size, const char *base, const char *add,
                          const char *drop, struct store_err *err)
{
    const char *srcs[2] = {base, add};
    size_t used = 0;

    out[0] = '\0';
    for (int s = 0; s < 2; s++) {
        for (const char *p = srcs[s] ? srcs[s] : ""; *p;) {
            size_t len;

            while (*p == ' ')
                p++;
            len = strcspn(p, " ");
            if (len == 0)
                break;
            if (!(drop && store_kw_has(drop, p, len)) && !store_kw_has(out, p, len)) {
                if (used + len + (used ? 1 : 0) >= size)
                    return store_errf(err, STORE_EINVAL, "too many keywords for one item");
                if (used)
                    out[used++] = ' ';
                memcpy(out + used, p, len);
                used += len;
                out[used] = '\0';
            }
            p += len;
        }
    }
    return STORE_OK;
}

int store_item_set_flags(struct store_user *u, int64_t item_id, enum store_flag_op opn,
                         uint32_t flags, const char *keywords, int64_t if_modseq,
                         struct store_item *out, struct store_err *err)
{
    const struct store_backend *be;
    char kw[STORE_FIELD(keywords)];
    struct store_item cur;
    struct store_op op;
    uint32_t nflags;
    int64_t m;
    int rc;

    if (u == NULL)
        return store_errf(err, STORE_EINVAL, "no user handle");
    if (opn != STORE_FLAGS_SET && opn != STORE_FLAGS_ADD && opn != STORE_FLAGS_REMOVE)
        return store_errf(err, STORE_EINVAL, "unknown flag operation");
    rc = store_check_text(keywords, sizeof(kw), "keywords", err);
    if (rc)
        return rc;
    be = u->s->be;
    rc = store_wbegin(u, &op, err);
    if (rc)
        return rc;
    rc = be->item_get(u->bu, item_id, &cur, err);
    if (rc == STORE_OK && if_modseq > 0 && cur.modseq > if_modseq)
        rc = store_errf(err, STORE_ECONFLICT, "item %lld changed since MODSEQ %lld",
                        (long long)item_id, (long long)if_modseq);
    if (rc)
        goto done;
    if (opn == STORE_FLAGS_SET) {
        nflags = flags;
        rc = store_kw_merge(kw, sizeof(kw), keywords ? NULL : cur.keywords, keywords, NULL, err);
    } else if (opn == STORE_FLAGS_ADD) {
        nflags = cur.flags | flags;
        rc = store_kw_merge(kw, sizeof(kw), cur.keywords, keywords, NULL, err);
    } else {
        nflags = cur.flags & ~flags;
        rc = store_kw_merge(kw, sizeof(kw), cur.keywords, NULL, keywords, err);
    }
    if (rc || (nflags == cur.flags && strcmp(kw, cur.keywords) == 0))
        goto done; /* nothing changes: no MODSEQ, nobody woken */
    rc = store_modseq_take(u, &m, err);
    if (rc == STORE_OK)
        rc = be->item_set_flags(u->bu, item_id, nflags, kw, m, err);
    if (rc == STORE_OK) {
        cur.flags = nflags;
        memcpy(cur.keywords, kw, sizeof(kw));
        cur.modseq = m;
    }
done:
    if (rc == STORE_OK && out)
        *out = cur;
    return store_wend(u, &op, rc, err);
}

int store_item_move(struct store_user *u, int64_t item_id, int64_t to_folder,
                    struct store_item *out, struct store_err *err)
{
    const struct store_backend *be;
    struct store_op op;
    int64_t m;
    int rc;

    if (u == NULL)
        return store_errf(err, STORE_EINVAL, "no user handle");
    be = u->s->be;
    rc = store_wbegin(u, &op, err);
    if (rc)
        return rc;
    rc = be->item_get(u->bu, item_id, NULL, err);
    if (rc == STORE_OK)
        rc = be->folder_get(u->bu, to_folder, NULL, err);
    if (rc == STORE_OK)
        rc = store_modseq_take(u, &m, err);
    if (rc == STORE_OK)
        rc = be->item_move(u->bu, item_id, to_folder, m, err);
    if (rc == STORE_OK && out)
        rc = be->item_get(u->bu, item_id, out, err);
    return store_wend(u, &op, rc, err);
}

int store_item_copy(struct store_user *u, int64_t item_id, int64_t to_folder,
                    struct store_item *out, struct store_err *err)
{
    const struct store_backend *be;
    struct store_item cur;
    struct store_op op;
    int64_t m, nid = 0;
    int rc;

    if (u == NULL)
        return store_errf(err, STORE_EINVAL, "no user handle");
    be = u->s->be;
    rc = store_wbegin(u, &op, err);
    if (rc)
        return rc;
    rc = be->item_get(u->bu, item_id, &cur, err);
    if (rc == STORE_OK)
        rc = be->folder_get(u->bu, to_folder, NULL, err);
    if (rc == STORE_OK)
        rc = store_quota_check(u, cur.size, 0, err);
    if (rc == STORE_OK)
        rc = store_modseq_take(u, &m, err);
    if (rc == STORE_OK)
        rc = be->item_copy(u->bu, item_id, to_folder, m, (int64_t)time(NULL), &nid, err);
    if (rc == STORE_OK && out)
        rc = be->item_get(u->bu, nid, out, err);
    return store_wend(u, &op, rc, err);
}

int store_item_delete(struct store_user *u, int64_t item_id, struct store_err *err)
{
    struct store_op op;
    int64_t m;
    int rc;

    if (u == NULL)
        return store_errf(err, STORE_EINVAL, "no user handle");
    rc = store_wbegin(u, &op, err);
    if (rc)
        return rc;
    rc = u->s->be->item_get(u->bu, item_id, NULL, err);
    if (rc == STORE_OK)
        rc = store_modseq_take(u, &m, err);
    if (rc == STORE_OK)
        rc = u->s->be->item_delete(u->bu, item_id, m, err);
    return store_wend(u, &op, rc, err);
}

int store_item_list(struct store_user *u, int64_t folder_id, uint32_t uid_lo, uint32_t uid_hi,
                    store_item_cb cb, void *ctx, struct store_err *err)
{
    int rc;

    if (u == NULL || cb == NULL)
        return store_errf(err, STORE_EINVAL, "store_item_list needs a handle and a callback");
    store_lock(u);
    rc = u->s->be->item_list(u->bu, folder_id, uid_lo, uid_hi, cb, ctx, err);
    store_unlock(u);
    return rc;
}

int store_item_list_brief(struct store_user *u, int64_t folder_id, store_brief_cb cb, void *ctx,
                          struct store_err *err)
{
    int rc;

    if (u == NULL || cb == NULL)
        return store_errf(err, STORE_EINVAL, "store_item_list_brief needs a handle and a callback");
    store_lock(u);
    rc = u->s->be->item_list_brief(u->bu, folder_id, cb, ctx, err);
    store_unlock(u);
    return rc;
}

int store_changes_since(struct store_user *u, int64_t folder_id, int64_t since, store_change_cb cb,
                        void *ctx, struct store_err *err)
{
    int rc;

    if (u == NULL || cb == NULL)
        return store_errf(err, STORE_EINVAL, "store_changes_since needs a handle and a callback");
    store_lock(u);
    rc = u->s->be->changes_since(u->bu, folder_id, since, cb, ctx, err);
    store_unlock(u);
    return rc;
}

/* ------------------------------------------------------------------------------------- */
/* The occurrence index: derived data, so writes take no MODSEQ                          */

int store_item_set_ranges(struct store_user *u, int64_t item_id, const struct store_range *r,
                          size_t n, int64_t complete_until, struct store_err *err)
{
    struct store_op op;
    int rc;

    if (u == NULL || (r == NULL && n > 0))
        return store_errf(err, STORE_EINVAL, "store_item_set_ranges needs a handle and ranges");
    for (size_t i = 0; i < n; i++)
        if (r[i].end < r[i].start)
            return store_errf(err, STORE_EINVAL, "a range ends before it starts");
    rc = store_wbegin(u, &op, err);
    if (rc)
        return rc;
    rc = u->s->be->ranges_set(u->bu, item_id, r, n, complete_until, err);
    return store_wend(u, &op, rc, err);
}

int store_item_get_ranges(struct store_user *u, int64_t item_id, struct store_range **r, size_t *n,
                          int64_t *complete_until, struct store_err *err)
{
    int64_t until = 0;
    int rc;

    if (u == NULL || r == NULL || n == NULL)
        return store_errf(err, STORE_EINVAL, "store_item_get_ranges needs a handle and outputs");
    store_lock(u);
    rc = u->s->be->ranges_get(u->bu, item_id, r, n, &until, err);
    store_unlock(u);
    if (complete_until)
        *complete_until = until;
    return rc;
}

int store_item_index_until(struct store_user *u, int64_t item_id, int64_t *complete_until,
                           struct store_err *err)
{
    int rc;

    if (u == NULL || complete_until == NULL)
        return store_errf(err, STORE_EINVAL, "store_item_index_until needs a handle and an output");
    store_lock(u);
    rc = u->s->be->ranges_until(u->bu, item_id, complete_until, err);
    store_unlock(u);
    return rc;
}

int store_item_range_query(struct store_user *u, int64_t folder_id, int64_t start, int64_t end,
                           store_item_cb cb, void *ctx, struct store_err *err)
{
    int rc;

    if (u == NULL || cb == NULL || end < start)
        return store_errf(err, STORE_EINVAL,
                          "store_item_range_query needs a handle, a callback"
                          " and start <= end");
    /* The callbacks run under the handle's lock, as listings' do: the lock is recursive
     * for the thread holding it, so they may read and write this store. */
    store_lock(u);
    rc = u->s->be->range_query(u->bu, folder_id, start, end, cb, ctx, err);
    store_unlock(u);
    return rc;
}

/* ------------------------------------------------------------------------------------- */
/* Engine state: no MODSEQ (bookkeeping is not a change anyone syncs), but transactional  */

static int store_check_state_key(const char *ns, const char *key, struct store_err *err)
{
    if (ns == NULL || *ns == '\0' || strlen(ns) > 255)
        return store_errf(err, STORE_EINVAL, "state namespace is empty or too long");
    if (key && (*key == '\0' || strlen(key) > 1024))
        return store_errf(err, STORE_EINVAL, "state key is empty or too long");
    return STORE_OK;
}

int store_state_put(struct store_user *u, const char *ns, const char *key, const void *val,
                    size_t len, struct store_err *err)
{
    struct store_op op;
    int rc;

    if (u == NULL || key == NULL || (val == NULL && len > 0))
        return store_errf(err, STORE_EINVAL, "store_state_put needs a handle, a key and a value");
    rc = store_check_state_key(ns, key, err);
    if (rc == STORE_OK && len > (size_t)INT32_MAX)
        rc = store_errf(err, STORE_EINVAL, "state value too large");
    if (rc)
        return rc;
    rc = store_wbegin(u, &op, err);
    if (rc)
        return rc;
    rc = u->s->be->state_put(u->bu, ns, key, val, len, err);
    return store_wend(u, &op, rc, err);
}

int store_state_get(struct store_user *u, const char *ns, const char *key, void **val, size_t *len,
                    struct store_err *err)
{
    int rc;

    if (u == NULL || key == NULL || val == NULL || len == NULL)
        return store_errf(err, STORE_EINVAL, "store_state_get needs a handle, key and outputs");
    rc = store_check_state_key(ns, key, err);
    if (rc)
        return rc;
    store_lock(u);
    rc = u->s->be->state_get(u->bu, ns, key, val, len, err);
    store_unlock(u);
    return rc;
}

int store_state_del(struct store_user *u, const char *ns, const char *key, struct store_err *err)
{
    struct store_op op;
    int rc;

    if (u == NULL || key == NULL)
        return store_errf(err, STORE_EINVAL, "store_state_del needs a handle and a key");
    rc = store_check_state_key(ns, key, err);
    if (rc)
        return rc;
    rc = store_wbegin(u, &op, err);
    if (rc)
        return rc;
    rc = u->s->be->state_del(u->bu, ns, key, err);
    return store_wend(u, &op, rc, err);
}

int store_state_list(struct store_user *u, const char *ns, store_state_cb cb, void *ctx,
                     struct store_err *err)
{
    int rc;

    if (u == NULL || cb == NULL)
        return store_errf(err, STORE_EINVAL, "store_state_list needs a handle and a callback");
    rc = store_check_state_key(ns, NULL, err);
    if (rc)
        return rc;
    store_lock(u);
    rc = u->s->be->state_list(u->bu, ns, cb, ctx, err);
    store_unlock(u);
    return rc;
}

int store_user_check(struct store_user *u, char *out, size_t outlen)
{
    char buf[256];
    int rc;

    if (u == NULL)
        return STORE_EINVAL;
    store_lock(u);
    rc = u->s->be->check(u->bu, buf, sizeof(buf));
    store_unlock(u);
    if (out && outlen)
        snprintf(out, outlen, "%s", buf);
    return rc;
}
