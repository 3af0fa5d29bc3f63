/*
 * auth.c — the one password verifier every protocol uses, and the service gate.
 *
 * A login arrives in one of the forms clients really send (full address; "DOMAIN\user"
 * and "\user" from ActiveSync clients; a bare local part on a tenant's own host). It is
 * resolved to one address, checked against the tenant the connection is for, and
 * verified against the crypt(3) hash in the directory.
 *
 * Two tables keep it fast and safe:
 *  - a success cache: HTTP engines authenticate every request (an ActiveSync phone sends
 *    credentials with every Sync and Ping), and yescrypt costs tens of milliseconds by
 *    design. A verified (address, password) pair is remembered as a keyed digest, valid
 *    while the stored hash is unchanged and the entry is younger than cache_ttl.
 *  - a failure table: failures are counted per address and per source IP in a window;
 *    past fail_max further attempts are refused without looking at the password.
 * The account itself is always read from the directory, so a type change, a suspension
 * or a password change takes effect on the very next request.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "server/server.h"

#define AUTH_CACHE_SLOTS 4096 /* power of two */
#define AUTH_FAIL_SLOTS  8192 /* power of two */
#define AUTH_FAIL_PROBE  8
#define AUTH_LOGIN_MAX   512
#define AUTH_KEY_MAX     330 /* "a:" + a 320-byte address */

struct auth_cached {
    unsigned char key[32];    /* SHA-256(secret, address, NUL, password) */
    unsigned char hashid[32]; /* SHA-256(stored crypt string) at verification time */
    time_t expires;
};

struct auth_fail {
    char key[AUTH_KEY_MAX]; /* "a:<address>" or "i:<ip>" */
    int count;
    time_t window_start;
};

struct auth {
    struct store *store;
    int fail_max;
    int fail_window;
    int cache_ttl;
    unsigned char secret[32];
    char dummy_hash[160]; /* verified against for unknown users, so timing says nothing */
    pthread_mutex_t lock;
    struct auth_cached cache[AUTH_CACHE_SLOTS];
    struct auth_fail fails[AUTH_FAIL_SLOTS];
};

/* ---- the gate ----------------------------------------------------------------------- */

const char *gate_service_name(enum gate_service s)
{
    static const char *const names[SVC__COUNT] = {
        [SVC_IMAP] = "imap",      [SVC_POP3] = "pop3",     [SVC_SMTP] = "smtp",
        [SVC_EAS] = "activesync", [SVC_CALDAV] = "caldav", [SVC_CARDDAV] = "carddav",
        [SVC_NONE] = "none",
    };
    return (unsigned)s < SVC__COUNT ? names[s] : "unknown";
}

int gate_allows(enum store_acct_type type, enum gate_service svc)
{
    /* Basic mailboxes are mail only; Enhanced adds ActiveSync and the DAV services. */
    static const unsigned char allowed[3][SVC__COUNT] = {
        [STORE_BASIC] = {[SVC_IMAP] = 1, [SVC_POP3] = 1, [SVC_SMTP] = 1, [SVC_NONE] = 1},
        [STORE_ENHANCED] = {[SVC_IMAP] = 1,
                            [SVC_POP3] = 1,
                            [SVC_SMTP] = 1,
                            [SVC_EAS] = 1,
                            [SVC_CALDAV] = 1,
                            [SVC_CARDDAV] = 1,
                            [SVC_NONE] = 1},
    };
    if ((type != STORE_BASIC && type != STORE_ENHANCED) || (unsigned)svc >= SVC__COUNT)
        return 0;
    return allowed[type][svc];
}

/* ---- login forms -------------------------------------------------------------------- */

static void auth_lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* Writes lp@domain into addr, lower-cased. */
static int auth_join(const char *lp, size_t lplen, const char *domain, char *addr, size_t addrlen)
{
    size_t dlen = strlen(domain);

    if (lplen == 0 || dlen == 0 || lplen + 1 + dlen + 1 > addrlen)
        return -1;
    memcpy(addr, lp, lplen);
    addr[lplen] = '@';
    memcpy(addr + lplen + 1, domain, dlen + 1);
    auth_lower(addr);
    return 0;
}

static int auth_full_address(const char *s, const char *tenant, char *addr, size_t addrlen)
{
    const char *at = strrchr(s, '@');

    if (!at || at == s || !at[1] || strchr(s, '@') != at)
        return -1;
    if (tenant && strcasecmp(at + 1, tenant) != 0)
        return -1; /* a user never logs in on another domain's host */
    return auth_join(s, (size_t)(at - s), at + 1, addr, addrlen);
}

int auth_resolve_login(const char *login, const char *tenant, char *addr, size_t addrlen)
{
    const char *bs, *user, *dom;
    size_t domlen;
    char dombuf[254];

    if (!login || !*login || strlen(login) > AUTH_LOGIN_MAX)
        return -1;
    for (const char *p = login; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return -1;
    bs = strchr(login, '\\');
    if (!bs)
        return strchr(login, '@') ? auth_full_address(login, tenant, addr, addrlen)
               : tenant           ? auth_join(login, strlen(login), tenant, addr, addrlen)
                                  : -1;
    if (strchr(bs + 1, '\\'))
        return -1;
    user = bs + 1;
    dom = login;
    domlen = (size_t)(bs - login);
    if (domlen >= sizeof(dombuf))
        return -1;
    memcpy(dombuf, dom, domlen);
    dombuf[domlen] = '\0';
    /* A dotted DOMAIN part names a domain and must agree; a NetBIOS-style one ("EXAMPLE")
     * carries no information we can check and is ignored. */
    int dotted = strchr(dombuf, '.') != NULL;
    if (dotted && tenant && strcasecmp(dombuf, tenant) != 0)
        return -1;
    if (strchr(user, '@')) {
        const char *at = strrchr(user, '@');
        if (dotted && strcasecmp(at + 1, dombuf) != 0)
            return -1;
        return auth_full_address(user, tenant, addr, addrlen);
    }
    if (tenant)
        return auth_join(user, strlen(user), tenant, addr, addrlen);
    if (dotted)
        return auth_join(user, strlen(user), dombuf, addr, addrlen);
    return -1;
}

/* ---- helpers ------------------------------------------------------------------------ */

int auth_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

static int auth_sha256(const void *a, size_t alen, const void *b, size_t blen, const void *c,
                       size_t clen, unsigned char out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, a, alen) &&
             EVP_DigestUpdate(md, b, blen) && EVP_DigestUpdate(md, c, clen) &&
             EVP_DigestFinal_ex(md, out, &n);
    EVP_MD_CTX_free(md);
    return ok && n == 32 ? 0 : -1;
}

static uint32_t auth_hash_str(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a: table placement only, not security */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* ---- failure throttling (caller holds a->lock) ------------------------------------ */

static struct auth_fail *auth_fail_slot(struct auth *a, const char *key, int create, time_t now)
{
    uint32_t h = auth_hash_str(key);
    struct auth_fail *victim = NULL;

    for (int i = 0; i < AUTH_FAIL_PROBE; i++) {
        struct auth_fail *f = &a->fails[(h + (uint32_t)i) & (AUTH_FAIL_SLOTS - 1)];
        if (f->key[0] && strcmp(f->key, key) == 0)
            return f;
        int stale = !f->key[0] || now - f->window_start >= a->fail_window;
        if (!victim || (stale && victim->key[0]) || f->window_start < victim->window_start)
            victim = f;
    }
    if (!create)
        return NULL;
    /* The table is bounded: under a flood the oldest window in the probe run is reused. */
    snprintf(victim->key, sizeof(victim->key), "%s", key);
    victim->count = 0;
    victim->window_start = now;
    return victim;
}

static int auth_throttled(struct auth *a, const char *key, time_t now)
{
    struct auth_fail *f = auth_fail_slot(a, key, 0, now);

    if (!f || now - f->window_start >= a->fail_window)
        return 0;
    return f->count >= a->fail_max;
}

static void auth_count_failure(struct auth *a, const char *key, time_t now)
{
    struct auth_fail *f = auth_fail_slot(a, key, 1, now);

    if (now - f->window_start >= a->fail_window) {
        f->count = 0;
        f->window_start = now;
    }
    f->count++;
}

static void auth_clear_failures(struct auth *a, const char *key, time_t now)
{
    struct auth_fail *f = auth_fail_slot(a, key, 0, now);
    if (f)
        f->count = 0;
}

/* ---- the verifier -------------------------------------------------------------------- */

struct auth *auth_new(struct store *s, const struct config *cfg)
{
    struct auth *a = calloc(1, sizeof(*a));
    struct store_err err;

    if (!a)
        return NULL;
    a->store = s;
    a->fail_max = cfg && cfg->auth_fail_max > 0 ? cfg->auth_fail_max : 10;
    a->fail_window = cfg && cfg->auth_fail_window > 0 ? cfg->auth_fail_window : 300;
    a->cache_ttl = cfg && cfg->auth_cache_ttl >= 0 ? cfg->auth_cache_ttl : 300;
    if (RAND_bytes(a->secret, sizeof(a->secret)) != 1 ||
        store_password_hash("Unknown-User-1!", a->dummy_hash, sizeof(a->dummy_hash), &err) !=
            STORE_OK) {
        free(a);
        return NULL;
    }
    pthread_mutex_init(&a->lock, NULL);
    return a;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    pthread_mutex_destroy(&a->lock);
    OPENSSL_cleanse(a, sizeof(*a));
    free(a);
}

static int auth_cache_hit(struct auth *a, const unsigned char key[32],
                          const unsigned char hashid[32], time_t now)
{
    struct auth_cached *c = &a->cache[(key[0] | key[1] << 8) & (AUTH_CACHE_SLOTS - 1)];
    int hit;

    pthread_mutex_lock(&a->lock);
    hit =
        c->expires > now && auth_ct_equal(c->key, key, 32) && auth_ct_equal(c->hashid, hashid, 32);
    pthread_mutex_unlock(&a->lock);
    return hit;
}

static void auth_cache_put(struct auth *a, const unsigned char key[32],
                           const unsigned char hashid[32], time_t now)
{
    struct auth_cached *c = &a->cache[(key[0] | key[1] << 8) & (AUTH_CACHE_SLOTS - 1)];

    pthread_mutex_lock(&a->lock);
    memcpy(c->key, key, 32);
    memcpy(c->hashid, hashid, 32);
    c->expires = now + a->cache_ttl;
    pthread_mutex_unlock(&a->lock);
}

/* Checks the password, through the cache when possible. 1 = right password. */
static int auth_password_ok(struct auth *a, const struct store_account *acct, const char *password,
                            time_t now)
{
    unsigned char key[32], hashid[32];

    if (auth_sha256(a->secret, sizeof(a->secret), acct->address, strlen(acct->address) + 1,
                    password, strlen(password), key) < 0 ||
        auth_sha256(acct->pwhash, strlen(acct->pwhash), "", 0, "", 0, hashid) < 0)
        return store_password_check(password, acct->pwhash);
    if (a->cache_ttl > 0 && auth_cache_hit(a, key, hashid, now))
        return 1;
    if (!store_password_check(password, acct->pwhash))
        return 0;
    if (a->cache_ttl > 0)
        auth_cache_put(a, key, hashid, now);
    return 1;
}

enum auth_result auth_verify(struct auth *a, const char *login, const char *password,
                             const char *tenant, const char *remote_ip, struct store_account *acct)
{
    char addr[320], akey[AUTH_KEY_MAX], ikey[AUTH_KEY_MAX];
    struct store_err err;
    time_t now = time(NULL);
    enum auth_result res;
    int rc;

    if (!password || !*password || strlen(password) > 1024)
        return AUTH_FAIL;
    if (auth_resolve_login(login, tenant, addr, sizeof(addr)) < 0) {
        /* Malformed or wrong-tenant logins still count against the source address. */
        snprintf(ikey, sizeof(ikey), "i:%s", remote_ip ? remote_ip : "-");
        pthread_mutex_lock(&a->lock);
        res = remote_ip && auth_throttled(a, ikey, now) ? AUTH_THROTTLED : AUTH_FAIL;
        if (remote_ip)
            auth_count_failure(a, ikey, now);
        pthread_mutex_unlock(&a->lock);
        return res;
    }
    snprintf(akey, sizeof(akey), "a:%s", addr);
    snprintf(ikey, sizeof(ikey), "i:%s", remote_ip ? remote_ip : "");
    pthread_mutex_lock(&a->lock);
    int throttled = auth_throttled(a, akey, now) || (remote_ip && auth_throttled(a, ikey, now));
    pthread_mutex_unlock(&a->lock);
    if (throttled)
        return AUTH_THROTTLED;

    rc = store_account_get(a->store, addr, acct, &err);
    if (rc == STORE_ENOTFOUND) {
        store_password_check(password, a->dummy_hash); /* same cost as a real user */
        res = AUTH_FAIL;
    } else if (rc != STORE_OK) {
        return AUTH_ERROR;
    } else if (!auth_password_ok(a, acct, password, now)) {
        res = AUTH_FAIL;
    } else {
        res = acct->active ? AUTH_OK : AUTH_DISABLED;
    }

    pthread_mutex_lock(&a->lock);
    if (res == AUTH_FAIL) {
        auth_count_failure(a, akey, now);
        if (remote_ip)
            auth_count_failure(a, ikey, now);
    } else if (res == AUTH_OK) {
        /* Only the address is cleared: one good account must not reset a source's count
         * of guesses at others. */
        auth_clear_failures(a, akey, now);
    }
    pthread_mutex_unlock(&a->lock);
    if (res != AUTH_OK)
        memset(acct, 0, sizeof(*acct));
    return res;
}
