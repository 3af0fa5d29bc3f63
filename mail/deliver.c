/*
 * deliver.c — the delivery pipeline: from an envelope (sender, recipients) and RFC 5322
 * bytes to mailboxes and the outbound queue. SMTP (MX and submission), ActiveSync
 * SendMail, migration and `polaris mail deliver` all come through here, so the rules live
 * in one place:
 *
 *  - Resolution. An address with aliases goes to their targets (recursively, de-duplicated,
 *    depth-limited); a target equal to the alias itself keeps a copy in its own mailbox
 *    (customers are told that a forwarder with its own mailbox MUST list itself, otherwise
 *    mail skips the inbox); ":blackhole" accepts and discards. Else a mailbox; else the
 *    domain's catch-all ("@domain"); else 550 5.1.1. Addresses of other domains are
 *    external: allowed to authenticated senders and as alias targets, relaying otherwise.
 *  - Local Delivery off on a hosted domain means its real mail host is elsewhere: what
 *    authenticated local users send there leaves through the queue; mail from the internet
 *    (MX) is still delivered here.
 *  - Loops: a Delivered-To naming an address of the expansion, or too many hops, is 554.
 *    Cycles among our own aliases are cut by the de-duplication.
 *  - Durability and idempotence: each mailbox gets one copy, committed in the same
 *    transaction as a record of (Message-ID, body SHA-256); a retry within the hour (a
 *    client that lost our 250 in a crash) finds the record and stores nothing twice. 250
 *    only after every copy is committed and the external part is queued (fsync'd).
 *  - Sending limits per account (deliver_rate_check), in memory.
 *  - postmaster@ of a hosted domain without its own goes to [smtp] postmaster (or a hosted
 *    postmaster@hostname), RFC 5321 §4.5.1; so does bare <postmaster> (smtp.c).
 *  - SRS: an external sender's mail forwarded to an external target is queued with an
 *    SRS0/SRS1 sender at the forwarding domain (srs.c); mail to an SRS address of a hosted
 *    domain is checked and sent on to the address it stands for, or refused (5.1.1).
 *  - DSN (RFC 3461): NOTIFY=SUCCESS of a recipient that ends here (mailbox, blackhole,
 *    several targets) gets a "delivered"/"expanded" report once the message is accepted;
 *    a single external target takes NOTIFY and ORCPT (the original address when an alias
 *    changed it) to the queue, which passes them on or reports "relayed".
 *
 * The caller prepends its own Received: field; this file adds Return-Path and Delivered-To
 * to each local copy (RFC 5321 §4.4) and Delivered-To to forwarded copies.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "mail/autoreply.h"
#include "mail/mail.h"
#include "mail/mime.h"
#include "mail/queue.h"
#include "mail/srs.h"

#define DELIVER_ADDR_MAX   320
#define DELIVER_MAX_DEPTH  10   /* alias chain length */
#define DELIVER_MAX_NODES  1000 /* addresses one recipient may expand to */
#define DELIVER_MAX_HOPS   30   /* Received + Delivered-To fields before it is a loop */
#define DELIVER_DEDUP_SECS 3600 /* how long a delivery is remembered against retries */
#define DELIVER_NS         "deliver"
#define DELIVER_NS_PRUNE   "deliver.prune"

enum deliver_kind {
    DN_ALIAS = 1, /* a hosted address whose aliases (or catch-all) were expanded */
    DN_LOCAL,     /* a mailbox that gets a copy */
    DN_EXTERNAL,  /* leaves through the outbound queue */
    DN_DISCARD,   /* ":blackhole" */
    DN_DEAD,      /* a hosted address that leads nowhere */
};

/* An address met while resolving one recipient. */
struct deliver_node {
    enum deliver_kind kind;
    char addr[DELIVER_ADDR_MAX];
    char via[DELIVER_ADDR_MAX]; /* the hosted address whose alias led here; "" when direct */
};

/* One recipient: what it resolves to and its fate (reply.code 0 while nothing is wrong). */
struct deliver_res {
    char rcpt[DELIVER_ADDR_MAX];
    struct deliver_node *v;
    size_t n, cap;
    struct deliver_reply reply;
    struct deliver_dsn dsn; /* as RCPT gave it; notify 0 when not */
};

struct deliver_walk {
    struct deliver *d;
    const struct deliver_env *env;
    struct deliver_res *res;
    int failed; /* the directory failed: a temporary error */
};

/* The message as the pipeline sees it. */
struct deliver_msg {
    char *data; /* CRLF line ends */
    size_t len, hdr_len;
    char key[2 * 32 + 1];                            /* idempotence key: hex SHA-256 */
    char dt[DELIVER_MAX_HOPS + 1][DELIVER_ADDR_MAX]; /* Delivered-To values, lower-case */
    size_t ndt;
    int hops;
};

/* ---------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------ */

static void deliver_set(struct deliver_reply *r, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void deliver_set(struct deliver_reply *r, int code, const char *enh, const char *fmt, ...)
{
    va_list ap;

    r->code = code;
    snprintf(r->enhanced, sizeof(r->enhanced), "%s", enh);
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof(r->text), fmt, ap);
    va_end(ap);
}

/* Takes an envelope address ("<a@b>" or "a@b", surrounding blanks allowed) into out. The
 * domain is always lower-cased; the local part too for hosted domains (that is how the
 * directory stores them) — the caller decides after the domain lookup, so here only the
 * shape is checked. Returns 0, or -1 when it is not an address. */
static int deliver_addr(const char *in, char *out, size_t outlen)
{
    size_t n;
    const char *at;

    while (*in == ' ' || *in == '\t')
        in++;
    n = strlen(in);
    while (n && (in[n - 1] == ' ' || in[n - 1] == '\t'))
        n--;
    if (n >= 2 && in[0] == '<' && in[n - 1] == '>') {
        in++;
        n -= 2;
    }
    if (n == 0 || n >= outlen)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == ',')
            return -1;
        out[i] = (char)c;
    }
    out[n] = '\0';
    at = strrchr(out, '@');
    if (!at || at == out || at[1] == '\0' || out[0] == '@')
        return -1;
    for (char *p = strrchr(out, '@') + 1; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return 0;
}

static void deliver_lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static struct deliver_node *deliver_find(struct deliver_res *res, const char *addr)
{
    for (size_t i = 0; i < res->n; i++)
        if (strcmp(res->v[i].addr, addr) == 0)
            return &res->v[i];
    return NULL;
}

static int deliver_add(struct deliver_res *res, enum deliver_kind kind, const char *addr,
                       const char *via)
{
    struct deliver_node *nd;

    if (res->n == res->cap) {
        size_t cap = res->cap ? res->cap * 2 : 8;
        struct deliver_node *v;
        if (res->n >= DELIVER_MAX_NODES) {
            log_warn("deliver", "%s expands to more than %d addresses; the rest are dropped",
                     res->rcpt, DELIVER_MAX_NODES);
            return 0;
        }
        if (!(v = realloc(res->v, cap * sizeof(*v))))
            return -1;
        res->v = v;
        res->cap = cap;
    }
    nd = &res->v[res->n++];
    nd->kind = kind;
    snprintf(nd->addr, sizeof(nd->addr), "%s", addr);
    snprintf(nd->via, sizeof(nd->via), "%s", via ? via : "");
    return 0;
}

static size_t deliver_count(const struct deliver_res *res, enum deliver_kind kind)
{
    size_t n = 0;

    for (size_t i = 0; i < res->n; i++)
        n += res->v[i].kind == kind;
    return n;
}

/* ---------------------------------------------------------------------------------------
 * Resolution
 * ------------------------------------------------------------------------------------ */

struct deliver_targets {
    char (*v)[DELIVER_ADDR_MAX];
    size_t n, cap;
    int oom;
};

static int deliver_collect(const char *source, const char *target, void *ctx)
{
    struct deliver_targets *t = ctx;

    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        char(*v)[DELIVER_ADDR_MAX] = realloc(t->v, cap * sizeof(*v));
        if (!v) {
            t->oom = 1;
            return 1;
        }
        t->v = v;
        t->cap = cap;
    }
    snprintf(t->v[t->n++], DELIVER_ADDR_MAX, "%s", target);
    return 0;
}

/* The targets of an alias source ("a@b", or "@b" for the catch-all); none is not an error,
 * and neither is a local part the directory would never have stored. */
static int deliver_aliases(struct store *s, const char *source, struct deliver_targets *t)
{
    int rc = store_alias_list(s, NULL, source, deliver_collect, t, NULL);

    if (rc == STORE_EINVAL)
        rc = STORE_OK;
    if (rc == STORE_OK && t->oom)
        rc = STORE_ENOMEM;
    return rc;
}

/* 1 when addr is a mailbox, 0 when not, < 0 on a store failure. */
static int deliver_has_mailbox(struct store *s, const char *addr)
{
    struct store_account a;
    int rc = store_account_get(s, addr, &a, NULL);

    if (rc == STORE_OK)
        return 1;
    return rc == STORE_ENOTFOUND || rc == STORE_EINVAL ? 0 : rc;
}

static int deliver_walk_addr(struct deliver_walk *w, const char *addr, const char *via, int depth);

/* Walks the targets of an alias; a target naming the alias itself is its own mailbox. */
static int deliver_walk_targets(struct deliver_walk *w, const char *addr,
                                const struct deliver_targets *t, int has_mailbox, int depth)
{
    for (size_t i = 0; i < t->n; i++) {
        int rc;
        if (strcmp(t->v[i], addr) == 0)
            rc = has_mailbox ? deliver_add(w->res, DN_LOCAL, addr, addr) : 0;
        else
            rc = deliver_walk_addr(w, t->v[i], addr, depth + 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void deliver_postmaster(const struct deliver *d, char *out, size_t outlen)
{
    const struct config *cfg = d ? d->cfg : NULL;

    if (cfg && cfg->smtp_postmaster[0] && deliver_addr(cfg->smtp_postmaster, out, outlen) == 0)
        return;
    snprintf(out, outlen, "postmaster@%s", cfg ? cfg->hostname : "localhost");
    deliver_lower(out);
}

static int deliver_is_postmaster(const char *addr)
{
    return strncasecmp(addr, "postmaster@", 11) == 0;
}

/* RFC 5321 §4.5.1: postmaster@ every hosted domain must work. One with neither mailbox
 * nor alias (nor catch-all) goes where <postmaster> goes. */
static int deliver_walk_postmaster(struct deliver_walk *w, const char *addr, const char *via,
                                   int depth)
{
    char pm[DELIVER_ADDR_MAX];

    struct store_domain dom;

    deliver_postmaster(w->d, pm, sizeof(pm));
    /* Unless configured, only to a hosted postmaster@hostname: sending it out into the
     * world would most likely bring it back here. */
    if (strcasecmp(pm, addr) == 0 || deliver_find(w->res, pm) ||
        (!(w->d->cfg && w->d->cfg->smtp_postmaster[0]) &&
         store_domain_get(w->d->store, strrchr(pm, '@') + 1, &dom, NULL) != STORE_OK))
        return deliver_add(w->res, DN_DEAD, addr, via);
    if (deliver_add(w->res, DN_ALIAS, addr, via) < 0) {
        w->failed = 1;
        return -1;
    }
    return deliver_walk_addr(w, pm, addr, depth + 1);
}

/* An SRS address of a hosted domain (a bounce to mail we forwarded): its original
 * sender, when the hash and age check out; otherwise it leads nowhere (550 5.1.1). */
static int deliver_walk_srs(struct deliver_walk *w, const char *addr, const char *via, int depth)
{
    struct srs_keys k;
    char orig[DELIVER_ADDR_MAX], lower[DELIVER_ADDR_MAX], err[256];
    int rc;

    snprintf(lower, sizeof(lower), "%s", addr);
    deliver_lower(lower);
    if (deliver_find(w->res, lower))
        return 0;
    if (!w->d->cfg || srs_keys_load(w->d->cfg->data_dir, &k, err, sizeof(err)) != 0) {
        log_error("deliver", "SRS: %s", w->d->cfg ? err : "no configuration");
        w->failed = 1;
        return -1;
    }
    rc = srs_reverse(&k, addr, (int64_t)time(NULL), orig, sizeof(orig));
    explicit_bzero(&k, sizeof(k));
    if (rc != 0) {
        log_info("deliver", "%s: not a valid SRS address of ours (bad hash or too old)", lower);
        return deliver_add(w->res, DN_DEAD, lower, via);
    }
    if (deliver_add(w->res, DN_ALIAS, lower, via) < 0) {
        w->failed = 1;
        return -1;
    }
    return deliver_walk_addr(w, orig, lower, depth + 1);
}

/* A hosted address: its aliases, else its mailbox, else the domain's catch-all. */
static int deliver_walk_hosted(struct deliver_walk *w, const char *addr, const char *domain,
                               const char *via, int depth)
{
    struct deliver_targets t = {0};
    char catchall[DELIVER_ADDR_MAX];
    int has_mailbox, rc;

    if ((rc = deliver_aliases(w->d->store, addr, &t)) != STORE_OK)
        goto err;
    if ((has_mailbox = deliver_has_mailbox(w->d->store, addr)) < 0) {
        rc = has_mailbox;
        goto err;
    }
    if (t.n == 0 && has_mailbox) {
        free(t.v);
        return deliver_add(w->res, DN_LOCAL, addr, via);
    }
    if (t.n == 0) {
        /* The catch-all takes what no alias or mailbox claims, once per recipient. */
        snprintf(catchall, sizeof(catchall), "@%s", domain);
        if (!deliver_find(w->res, catchall) && strcmp(addr, catchall) != 0 &&
            (rc = deliver_aliases(w->d->store, catchall, &t)) != STORE_OK)
            goto err;
        if (t.n == 0) {
            free(t.v);
            if (deliver_is_postmaster(addr))
                return deliver_walk_postmaster(w, addr, via, depth);
            if (via && via[0])
                log_info("deliver", "alias %s points to %s, which does not exist", via, addr);
            return deliver_add(w->res, DN_DEAD, addr, via);
        }
        if (deliver_add(w->res, DN_ALIAS, addr, via) < 0 ||
            deliver_add(w->res, DN_ALIAS, catchall, addr) < 0)
            goto oom;
        /* Targets of the catch-all are followed as forwards of the address itself. */
        rc = deliver_walk_targets(w, addr, &t, 0, depth);
        free(t.v);
        return rc;
    }
    if (deliver_add(w->res, DN_ALIAS, addr, via) < 0)
        goto oom;
    rc = deliver_walk_targets(w, addr, &t, has_mailbox, depth);
    free(t.v);
    return rc;
oom:
    rc = STORE_ENOMEM;
err:
    free(t.v);
    log_warn("deliver", "cannot resolve %s: %s", addr,
             rc == STORE_ENOMEM ? "out of memory" : "directory error");
    w->failed = 1;
    return -1;
}

static int deliver_walk_addr(struct deliver_walk *w, const char *target, const char *via, int depth)
{
    struct store_domain dom;
    char addr[DELIVER_ADDR_MAX];
    int rc;

    if (strcmp(target, STORE_BLACKHOLE) == 0)
        return deliver_find(w->res, target) ? 0 : deliver_add(w->res, DN_DISCARD, target, via);
    if (deliver_addr(target, addr, sizeof(addr)) < 0) {
        log_warn("deliver", "alias %s has a target that is not an address; skipped", via);
        return 0;
    }
    rc = store_domain_get(w->d->store, strrchr(addr, '@') + 1, &dom, NULL);
    /* SRS hashes are base64: checked before the case is folded. */
    if (rc == STORE_OK && srs_is_srs(addr, (size_t)(strrchr(addr, '@') - addr)))
        return depth > DELIVER_MAX_DEPTH ? 0 : deliver_walk_srs(w, addr, via, depth);
    if (rc == STORE_OK)
        deliver_lower(addr); /* the directory keeps hosted addresses lower-case */
    if (deliver_find(w->res, addr))
        return 0; /* met before: a duplicate, or an alias cycle */
    if (depth > DELIVER_MAX_DEPTH) {
        log_warn("deliver", "alias chain to %s is longer than %d; cut", addr, DELIVER_MAX_DEPTH);
        return 0;
    }
    if (rc == STORE_ENOTFOUND || rc == STORE_EINVAL)
        return deliver_add(w->res, DN_EXTERNAL, addr, via);
    if (rc != STORE_OK) {
        w->failed = 1;
        return -1;
    }
    /* Local Delivery off: the domain's real mail host is elsewhere, but only our own
     * (authenticated) users need sending there; the internet already reached that host. */
    if (!dom.local_delivery && w->env->auth_user)
        return deliver_add(w->res, DN_EXTERNAL, addr, via);
    return deliver_walk_hosted(w, addr, dom.name, via, depth);
}

/* Resolves one recipient and judges what can be judged without the message: fills
 * res->reply with the refusal, or leaves code 0. */
static void deliver_judge(struct deliver *d, const struct deliver_env *env, const char *rcpt,
                          struct deliver_res *res)
{
    struct deliver_walk w = {.d = d, .env = env, .res = res};
    const struct deliver_node *top;

    memset(&res->reply, 0, sizeof(res->reply));
    if (deliver_addr(rcpt, res->rcpt, sizeof(res->rcpt)) < 0) {
        snprintf(res->rcpt, sizeof(res->rcpt), "%.300s", rcpt);
        deliver_set(&res->reply, 501, "5.1.3", "Bad recipient address syntax");
        return;
    }
    if (deliver_walk_addr(&w, res->rcpt, NULL, 0) < 0 || w.failed) {
        deliver_set(&res->reply, 451, "4.3.0", "<%s>: Temporary lookup failure, try again later",
                    res->rcpt);
        return;
    }
    top = res->n ? &res->v[0] : NULL;
    if (top)
        snprintf(res->rcpt, sizeof(res->rcpt), "%s", top->addr); /* lower-cased if hosted */
    if (top && top->kind == DN_EXTERNAL && !env->auth_user) {
        deliver_set(&res->reply, 550, "5.7.1", "Relaying denied");
        return;
    }
    if (deliver_count(res, DN_LOCAL) + deliver_count(res, DN_EXTERNAL) +
            deliver_count(res, DN_DISCARD) ==
        0) {
        deliver_set(&res->reply, 550, "5.1.1", "<%s>: Recipient address rejected: User unknown",
                    res->rcpt);
        return;
    }
    if (deliver_count(res, DN_EXTERNAL) && !d->queue)
        deliver_set(&res->reply, 550, "5.3.0",
                    "<%s>: Delivery to other domains is not available here", res->rcpt);
}

static void deliver_res_free(struct deliver_res *res)
{
    free(res->v);
    res->v = NULL;
    res->n = res->cap = 0;
}

/* 452 when one of the recipient's mailboxes is already at its quota. */
static void deliver_check_quota(struct deliver *d, struct deliver_res *res)
{
    for (size_t i = 0; i < res->n && res->reply.code == 0; i++) {
        struct store_user *u = NULL;
        int64_t used = 0, quota = 0;
        if (res->v[i].kind != DN_LOCAL)
            continue;
        if (store_user_open(d->store, res->v[i].addr, &u, NULL) != STORE_OK) {
            deliver_set(&res->reply, 451, "4.3.0", "<%s>: Temporary local problem", res->rcpt);
            break;
        }
        if (store_user_usage(u, &used, &quota) == STORE_OK && quota > 0 && used >= quota)
            deliver_set(&res->reply, 452, "4.2.2", "Mailbox full");
        store_user_release(u);
    }
}

int deliver_check_rcpt(struct deliver *d, const struct deliver_env *env, const char *rcpt,
                       struct deliver_reply *r)
{
    struct deliver_res res = {0};

    if (!d || !env || !rcpt) {
        deliver_set(r, 451, "4.3.0", "Delivery is not configured");
        return -1;
    }
    deliver_judge(d, env, rcpt, &res);
    if (res.reply.code == 0)
        deliver_check_quota(d, &res);
    if (res.reply.code == 0)
        deliver_set(&res.reply, 250, "2.1.5", "OK");
    *r = res.reply;
    deliver_res_free(&res);
    return r->code == 250 ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------
 * The message: trace fields and the idempotence key
 * ------------------------------------------------------------------------------------ */

/* The unfolded, trimmed value of a field into out (bounded; longer values are cut). */
static void deliver_field_value(const struct mime_field *f, char *out, size_t outlen)
{
    size_t n = 0;

    for (size_t i = 0; i < f->value_len && n + 1 < outlen; i++) {
        char c = f->value[i];
        if (c == '\r' || c == '\n')
            continue;
        if (n == 0 && (c == ' ' || c == '\t'))
            continue;
        out[n++] = c;
    }
    while (n && (out[n - 1] == ' ' || out[n - 1] == '\t'))
        n--;
    out[n] = '\0';
}

static int deliver_field_is(const struct mime_field *f, const char *name)
{
    return f->name_len == strlen(name) && strncasecmp(f->name, name, f->name_len) == 0;
}

/* Fields a relay adds on the way: they change between two tries of the same message. */
static int deliver_field_is_trace(const struct mime_field *f)
{
    static const char *const trace[] = {
        "Received",    "Return-Path", "Delivered-To", "X-Original-To", "Authentication-Results",
        "Received-SPF"};

    for (size_t i = 0; i < sizeof(trace) / sizeof(trace[0]); i++)
        if (deliver_field_is(f, trace[i]))
            return 1;
    return 0;
}

/* The key under which a delivery is remembered: the Message-ID and the body when there is
 * a Message-ID, else every non-trace field and the body. A retry of the same message hashes
 * the same, whatever Received fields the relays put on top. */
static int deliver_msg_key(struct deliver_msg *m)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    struct mime_field f;
    char mid[998];
    size_t pos = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok;

    if (!ctx)
        return -1;
    ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    if (mime_header_get(m->data, m->hdr_len, "Message-ID", &f)) {
        deliver_field_value(&f, mid, sizeof(mid));
        ok = ok && EVP_DigestUpdate(ctx, "mid", 4) && EVP_DigestUpdate(ctx, mid, strlen(mid) + 1);
    } else {
        while (ok && mime_header_next(m->data, m->hdr_len, &pos, &f)) {
            if (deliver_field_is_trace(&f))
                continue;
            ok = EVP_DigestUpdate(ctx, f.name, f.name_len) &&
                 EVP_DigestUpdate(ctx, f.value, f.value_len) && EVP_DigestUpdate(ctx, "\n", 1);
        }
    }
    ok = ok && EVP_DigestUpdate(ctx, m->data + m->hdr_len, m->len - m->hdr_len) &&
         EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (!ok || mdlen != 32)
        return -1;
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(m->key + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* Counts the hops and keeps the Delivered-To addresses. */
static void deliver_msg_trace(struct deliver_msg *m)
{
    struct mime_field f;
    size_t pos = 0;

    while (mime_header_next(m->data, m->hdr_len, &pos, &f)) {
        int dt = deliver_field_is(&f, "Delivered-To");
        if (!dt && !deliver_field_is(&f, "Received"))
            continue;
        m->hops++;
        if (dt && m->ndt < sizeof(m->dt) / sizeof(m->dt[0])) {
            char v[DELIVER_ADDR_MAX];
            deliver_field_value(&f, v, sizeof(v));
            if (deliver_addr(v, m->dt[m->ndt], DELIVER_ADDR_MAX) == 0) {
                deliver_lower(m->dt[m->ndt]);
                m->ndt++;
            }
        }
    }
}

static void deliver_msg_free(struct deliver_msg *m)
{
    if (m) {
        free(m->data);
        free(m);
    }
}

static struct deliver_msg *deliver_msg_new(const char *msg, size_t len)
{
    struct deliver_msg *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    if (mail_normalize(msg, len, &m->data, &m->len) < 0)
        goto err;
    m->hdr_len = mime_header_size(m->data, m->len);
    deliver_msg_trace(m);
    if (deliver_msg_key(m) < 0)
        goto err;
    return m;
err:
    deliver_msg_free(m);
    return NULL;
}

/* A Delivered-To of the message names an address this recipient goes through. */
static int deliver_is_loop(const struct deliver_msg *m, const struct deliver_res *res)
{
    for (size_t i = 0; i < res->n; i++) {
        if (res->v[i].kind != DN_ALIAS && res->v[i].kind != DN_LOCAL)
            continue;
        for (size_t j = 0; j < m->ndt; j++)
            if (strcmp(m->dt[j], res->v[i].addr) == 0)
                return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Local delivery
 * ------------------------------------------------------------------------------------ */

/* prefix + the message, malloc'd. */
static char *deliver_prepend(const char *prefix, const struct deliver_msg *m, size_t *outlen)
{
    size_t pl = strlen(prefix);
    char *out = malloc(pl + m->len + 1);

    if (!out)
        return NULL;
    memcpy(out, prefix, pl);
    memcpy(out + pl, m->data, m->len);
    out[pl + m->len] = '\0';
    *outlen = pl + m->len;
    return out;
}

/* Delivered within the dedup window (called inside the transaction). */
static int deliver_seen_recently(struct store_user *u, const char *key, int64_t now)
{
    void *val = NULL;
    size_t len = 0;
    int seen = 0;

    if (store_state_get(u, DELIVER_NS, key, &val, &len, NULL) == STORE_OK) {
        seen = now - strtoll(val, NULL, 10) < DELIVER_DEDUP_SECS;
        free(val);
    }
    return seen;
}

struct deliver_prune {
    char (*keys)[72];
    size_t n, cap;
    int64_t now;
};

static int deliver_prune_cb(const char *key, const void *val, size_t len, void *ctx)
{
    struct deliver_prune *p = ctx;
    char ts[24];

    snprintf(ts, sizeof(ts), "%.*s", (int)(len < 23 ? len : 23), (const char *)val);
    if (p->now - strtoll(ts, NULL, 10) < DELIVER_DEDUP_SECS || strlen(key) >= 72)
        return 0;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        char(*k)[72] = realloc(p->keys, cap * sizeof(*k));
        if (!k)
            return 1;
        p->keys = k;
        p->cap = cap;
    }
    snprintf(p->keys[p->n++], 72, "%s", key);
    return 0;
}

/* Forgets deliveries older than the window, at most once an hour per mailbox, so that the
 * records stay as many as an hour of mail. */
static void deliver_prune_old(struct store_user *u, int64_t now)
{
    struct deliver_prune p = {.now = now};
    void *val = NULL;
    size_t len = 0;
    char ts[24];

    if (store_state_get(u, DELIVER_NS_PRUNE, "last", &val, &len, NULL) == STORE_OK) {
        int recent = now - strtoll(val, NULL, 10) < DELIVER_DEDUP_SECS;
        free(val);
        if (recent)
            return;
    }
    if (store_state_list(u, DELIVER_NS, deliver_prune_cb, &p, NULL) != STORE_OK)
        goto out;
    snprintf(ts, sizeof(ts), "%lld", (long long)now);
    if (store_txn_begin(u, NULL) != STORE_OK)
        goto out;
    for (size_t i = 0; i < p.n; i++)
        store_state_del(u, DELIVER_NS, p.keys[i], NULL);
    store_state_put(u, DELIVER_NS_PRUNE, "last", ts, strlen(ts), NULL);
    if (store_txn_commit(u, NULL, NULL) != STORE_OK)
        log_warn("deliver", "cannot prune delivery records of %s", store_user_address(u));
out:
    free(p.keys);
}

/* Stores one copy in a mailbox's INBOX, exactly once per message within the window. */
static int deliver_local(struct deliver *d, const struct deliver_env *env, const char *mailbox,
                         const struct deliver_msg *m, struct deliver_reply *r)
{
    struct store_user *u = NULL;
    struct store_folder inbox;
    struct store_err e = {0};
    char *prefix = NULL, *copy = NULL, ts[24];
    size_t plen, clen = 0;
    int64_t now = time(NULL);
    int rc, in_txn = 0;

    if ((rc = store_user_open(d->store, mailbox, &u, &e)) != STORE_OK)
        goto err;
    if ((rc = store_txn_begin(u, &e)) != STORE_OK)
        goto err;
    in_txn = 1;
    if (deliver_seen_recently(u, m->key, now)) {
        store_txn_rollback(u);
        store_user_release(u);
        deliver_set(r, 250, "2.0.0", "<%s>: Already delivered", mailbox);
        return 0;
    }
    if ((rc = store_folder_by_role(u, STORE_ROLE_INBOX, &inbox)) != STORE_OK)
        goto err;
    plen = strlen(env->mail_from) + strlen(mailbox) + 64;
    rc = STORE_ENOMEM;
    if (!(prefix = malloc(plen)))
        goto err;
    snprintf(prefix, plen, "Return-Path: <%s>\r\nDelivered-To: %s\r\n", env->mail_from, mailbox);
    if (!(copy = deliver_prepend(prefix, m, &clen)))
        goto err;
    struct mail_new mn = {.data = copy, .len = clen};
    if ((rc = mail_store_message(u, inbox.id, &mn, NULL, &e)) != STORE_OK)
        goto err;
    if (d->local_hook && (rc = d->local_hook(u, mailbox, copy, clen)) != STORE_OK) {
        snprintf(e.msg, sizeof(e.msg), "after the copy was stored: error %d", rc);
        if (rc == STORE_EQUOTA)
            rc = STORE_EIO; /* the mail fitted; this is not the sender's "Mailbox full" */
        goto err;
    }
    snprintf(ts, sizeof(ts), "%lld", (long long)now);
    if ((rc = store_state_put(u, DELIVER_NS, m->key, ts, strlen(ts), &e)) != STORE_OK)
        goto err;
    in_txn = 0;
    if ((rc = store_txn_commit(u, NULL, &e)) != STORE_OK)
        goto err;
    free(prefix);
    free(copy);
    deliver_prune_old(u, now);
    store_user_release(u);
    deliver_set(r, 250, "2.0.0", "<%s>: Delivered", mailbox);
    return 0;
err:
    if (in_txn)
        store_txn_rollback(u);
    if (u)
        store_user_release(u);
    free(prefix);
    free(copy);
    if (rc == STORE_EQUOTA) {
        deliver_set(r, 452, "4.2.2", "Mailbox full");
    } else {
        log_error("deliver", "cannot deliver to %s: %s", mailbox, e.msg[0] ? e.msg : "error");
        deliver_set(r, 451, "4.3.0", "<%s>: Temporary local problem, try again later", mailbox);
    }
    return -1;
}

/* ---------------------------------------------------------------------------------------
 * The whole message
 * ------------------------------------------------------------------------------------ */

/* What happened to each mailbox, so that a mailbox several recipients lead to gets one
 * copy and they all share its fate. */
struct deliver_done {
    const char *mailbox;
    struct deliver_reply reply;
};

struct deliver_run {
    struct deliver *d;
    const struct deliver_env *env;
    struct deliver_msg *m;
    struct deliver_res *res;
    size_t nres;
    struct deliver_done *done;
    size_t ndone;
    char queue_id[128];
};

static const struct deliver_reply *deliver_mailbox(struct deliver_run *run, const char *mailbox)
{
    struct deliver_done *dd;

    for (size_t i = 0; i < run->ndone; i++)
        if (strcmp(run->done[i].mailbox, mailbox) == 0)
            return &run->done[i].reply;
    dd = &run->done[run->ndone++];
    dd->mailbox = mailbox;
    deliver_local(run->d, run->env, mailbox, run->m, &dd->reply);
    return &dd->reply;
}

/* Every local copy; a recipient takes the first failure of its mailboxes. */
static void deliver_run_local(struct deliver_run *run)
{
    for (size_t i = 0; i < run->nres; i++) {
        struct deliver_res *res = &run->res[i];
        for (size_t j = 0; j < res->n && res->reply.code == 0; j++) {
            const struct deliver_reply *r;
            if (res->v[j].kind != DN_LOCAL)
                continue;
            r = deliver_mailbox(run, res->v[j].addr);
            if (r->code != 250)
                res->reply = *r;
        }
    }
}

static int deliver_has_tempfail(const struct deliver_run *run)
{
    for (size_t i = 0; i < run->nres; i++)
        if (run->res[i].reply.code >= 400 && run->res[i].reply.code < 500)
            return 1;
    return 0;
}

static int deliver_strv_has(const char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return 1;
    return 0;
}

/* Where one recipient ends: more than one mailbox or target makes it "expanded" for DSN
 * purposes (RFC 3461 §6.2.7.3), reported here and not passed on as SUCCESS. */
static int deliver_is_expanded(const struct deliver_res *res)
{
    return deliver_count(res, DN_LOCAL) + deliver_count(res, DN_EXTERNAL) +
               deliver_count(res, DN_DISCARD) >
           1;
}

/* The DSN parameters an external target of res carries on (RFC 3461 §6.2.7): NOTIFY
 * without SUCCESS after an expansion, and ORCPT as given, else the address the sender
 * used when an alias changed it. orcpt is the storage for the latter. */
static void deliver_target_dsn(const struct deliver_res *res, const struct deliver_node *nd,
                               struct deliver_dsn *out, char *orcpt, size_t orcptlen)
{
    out->notify = res->dsn.notify;
    if (deliver_is_expanded(res) && (out->notify & DELIVER_NOTIFY_SUCCESS)) {
        out->notify &= ~(unsigned)DELIVER_NOTIFY_SUCCESS;
        if (!out->notify) /* it asked for nothing else: nothing else it gets */
            out->notify = DELIVER_NOTIFY_NEVER;
    }
    out->orcpt = res->dsn.orcpt;
    if (!out->orcpt && strcmp(nd->addr, res->rcpt) != 0) {
        snprintf(orcpt, orcptlen, "rfc822;%s", res->rcpt);
        out->orcpt = orcpt;
    }
}

/* The external targets (de-duplicated, each with the DSN parameters of the first
 * recipient that leads there) of recipients still fine, and the aliases that forwarded
 * to them: those go on top of the copy as Delivered-To, so that a message that comes
 * back is recognised as a loop. */
static int deliver_collect_external(struct deliver_run *run, const char ***targets,
                                    struct deliver_dsn **dsn, char (**orcpts)[DELIVER_ADDR_MAX + 8],
                                    size_t *nt, char **prefix)
{
    struct buf b = {0};
    const char **t = NULL, **vias = NULL;
    struct deliver_dsn *ds = NULL;
    char(*oc)[DELIVER_ADDR_MAX + 8] = NULL;
    size_t n = 0, nv = 0, cap = 0;

    for (size_t i = 0; i < run->nres; i++)
        if (run->res[i].reply.code == 0)
            cap += deliver_count(&run->res[i], DN_EXTERNAL);
    if (cap && (!(t = calloc(cap, sizeof(*t))) || !(vias = calloc(cap, sizeof(*vias))) ||
                !(ds = calloc(cap, sizeof(*ds))) || !(oc = calloc(cap, sizeof(*oc)))))
        goto oom;
    for (size_t i = 0; i < run->nres; i++) {
        const struct deliver_res *res = &run->res[i];
        for (size_t j = 0; res->reply.code == 0 && j < res->n; j++) {
            const struct deliver_node *nd = &res->v[j];
            if (nd->kind != DN_EXTERNAL)
                continue;
            if (!deliver_strv_has(t, n, nd->addr)) {
                deliver_target_dsn(res, nd, &ds[n], oc[n], sizeof(oc[n]));
                t[n++] = nd->addr;
            }
            if (nd->via[0] && !deliver_strv_has(vias, nv, nd->via)) {
                vias[nv++] = nd->via;
                buf_puts(&b, "Delivered-To: ");
                buf_puts(&b, nd->via);
                buf_puts(&b, "\r\n");
            }
        }
    }
    buf_puts(&b, "");
    if (b.oom)
        goto oom;
    free(vias);
    *targets = t;
    *dsn = ds;
    *orcpts = oc;
    *nt = n;
    *prefix = b.p ? b.p : strdup("");
    return *prefix ? 0 : -1;
oom:
    free(t);
    free(vias);
    free(ds);
    free(oc);
    buf_free(&b);
    return -1;
}

/* The envelope sender the queue uses. Mail from an external sender that an alias sends
 * on to an external target is SRS-rewritten (SRS0 at the forwarding domain, SRS1 when it
 * already was SRS0): the next hop then checks SPF against our domain, and its bounces
 * come back to us, to be reversed (deliver_walk_srs). */
static void deliver_queue_sender(struct deliver_run *run, char *out, size_t outlen)
{
    const char *from = run->env->mail_from, *at = strrchr(from, '@'), *via = NULL;
    struct store_domain dom;
    struct srs_keys k;
    char err[256];

    snprintf(out, outlen, "%s", from);
    if (!from[0] || !at || !run->d->cfg ||
        store_domain_get(run->d->store, at + 1, &dom, NULL) != STORE_ENOTFOUND)
        return; /* the null sender, or one of ours: nothing to rewrite */
    for (size_t i = 0; i < run->nres && !via; i++)
        for (size_t j = 0; run->res[i].reply.code == 0 && j < run->res[i].n && !via; j++)
            if (run->res[i].v[j].kind == DN_EXTERNAL && strchr(run->res[i].v[j].via, '@'))
                via = strrchr(run->res[i].v[j].via, '@') + 1;
    if (!via)
        return;
    if (srs_keys_load(run->d->cfg->data_dir, &k, err, sizeof(err)) != 0)
        log_error("deliver", "SRS: %s; forwarding with the original sender", err);
    else if (srs_forward(&k, from, via, (int64_t)time(NULL), out, outlen) != 0) {
        log_warn("deliver", "SRS: <%s> cannot be rewritten (too long); forwarded as is", from);
        snprintf(out, outlen, "%s", from);
    }
    explicit_bzero(&k, sizeof(k));
}

/* Marks every still-fine recipient with an external target. */
static void deliver_mark_external(struct deliver_run *run, int code, const char *enh,
                                  const char *text)
{
    for (size_t i = 0; i < run->nres; i++) {
        struct deliver_res *res = &run->res[i];
        if (res->reply.code == 0 && deliver_count(res, DN_EXTERNAL))
            deliver_set(&res->reply, code, enh, "<%s>: %s", res->rcpt, text);
    }
}

/* One queue entry for all external targets, and only when nothing failed temporarily:
 * the sender then retries the whole message, and the local copies are idempotent but a
 * queue entry would not be. */
static void deliver_run_external(struct deliver_run *run)
{
    const char **targets = NULL;
    struct deliver_dsn *dsn = NULL;
    char(*orcpts)[DELIVER_ADDR_MAX + 8] = NULL;
    char *prefix = NULL, *copy = NULL, err[256] = "", from[DELIVER_ADDR_MAX];
    size_t nt = 0, clen = 0;

    if (deliver_collect_external(run, &targets, &dsn, &orcpts, &nt, &prefix) < 0) {
        deliver_mark_external(run, 451, "4.3.0", "Temporary local problem, try again later");
        return;
    }
    if (nt == 0)
        goto out;
    if (deliver_has_tempfail(run)) {
        deliver_mark_external(run, 451, "4.3.0", "Not queued, try again later");
        goto out;
    }
    deliver_queue_sender(run, from, sizeof(from));
    if (!(copy = deliver_prepend(prefix, run->m, &clen)) ||
        queue_submit_dsn(run->d->queue, from, targets, dsn, nt, copy, clen, run->env->envid,
                         run->env->ret, run->queue_id, sizeof(run->queue_id), err,
                         sizeof(err)) != 0) {
        log_error("deliver", "cannot queue a message from <%s>: %s", run->env->mail_from,
                  err[0] ? err : "out of memory");
        deliver_mark_external(run, 451, "4.3.0", "Cannot queue the message, try again later");
        goto out;
    }
    for (size_t i = 0; i < run->nres; i++) {
        struct deliver_res *res = &run->res[i];
        if (res->reply.code == 0 && deliver_count(res, DN_EXTERNAL))
            deliver_set(&res->reply, 250, "2.0.0", "<%s>: Queued as %s", res->rcpt, run->queue_id);
    }
out:
    free(targets);
    free(dsn);
    free(orcpts);
    free(prefix);
    free(copy);
}

static int deliver_has_local(const struct deliver_res *res, const char *addr)
{
    for (size_t i = 0; i < res->n; i++)
        if (res->v[i].kind == DN_LOCAL && strcmp(res->v[i].addr, addr) == 0)
            return 1;
    return 0;
}

/* RFC 3834 auto-replies of every address the delivered recipients went through. */
static void deliver_run_autoreply(struct deliver_run *run)
{
    const char **scopes;
    size_t ns = 0, cap = 0;

    if (!run->env->mail_from[0])
        return; /* never to the null sender: cheap to know here */
    for (size_t i = 0; i < run->nres; i++)
        cap += run->res[i].reply.code == 250 ? run->res[i].n : 0;
    if (!cap || !(scopes = calloc(cap, sizeof(*scopes))))
        return;
    for (size_t i = 0; i < run->nres; i++) {
        const struct deliver_res *res = &run->res[i];
        for (size_t j = 0; res->reply.code == 250 && j < res->n; j++) {
            const struct deliver_node *nd = &res->v[j];
            if ((nd->kind != DN_ALIAS && nd->kind != DN_LOCAL) || nd->addr[0] == '@' ||
                deliver_strv_has(scopes, ns, nd->addr))
                continue;
            scopes[ns++] = nd->addr;
            struct autoreply_ctx ac = {
                .scope = nd->addr,
                .rcpt = res->rcpt,
                .mail_from = run->env->mail_from,
                .hdr = run->m->data,
                .hdr_len = run->m->hdr_len,
                .has_mailbox = deliver_has_local(res, nd->addr),
            };
            autoreply_consider(run->d, &ac);
        }
    }
    free(scopes);
}

/* Does res get a success report from here? It asked (NOTIFY=SUCCESS), it was accepted,
 * and it ended here: a mailbox, the blackhole or an expansion. A single external target
 * carries the request on instead (the queue reports "relayed" or the next hop reports). */
static const char *deliver_success_action(const struct deliver_res *res)
{
    if (!(res->dsn.notify & DELIVER_NOTIFY_SUCCESS) || res->reply.code != 250)
        return NULL;
    if (deliver_is_expanded(res))
        return "expanded";
    return deliver_count(res, DN_EXTERNAL) ? NULL : "delivered";
}

/* The success reports (RFC 3464, Action: delivered/expanded) as one message to the
 * sender. Sent only when the whole message was accepted: after a temporary failure the
 * client retries, and the report would go out twice. A report that cannot be delivered
 * is logged; the message itself is delivered either way. */
static void deliver_run_success(struct deliver_run *run)
{
    struct queue_env e = {0};
    struct buf b = {0};
    struct deliver_reply r = {0};
    const struct config *cfg = run->d->cfg;
    const char *host = cfg ? cfg->hostname : "localhost", *to[1] = {run->env->mail_from};
    char daemon[300];
    struct deliver_env de = {.mail_from = "", .auth_user = daemon, .protocol = "LOCAL"};
    time_t now = time(NULL);

    if (!run->env->mail_from[0])
        return; /* never a report to the null sender */
    for (size_t i = 0; i < run->nres; i++)
        e.n += deliver_success_action(&run->res[i]) != NULL;
    if (e.n == 0 || !(e.r = calloc(e.n, sizeof(*e.r))))
        return;
    e.n = 0;
    for (size_t i = 0; i < run->nres; i++) {
        const struct deliver_res *res = &run->res[i];
        const char *action = deliver_success_action(res);
        struct queue_rcpt *qr = &e.r[e.n];
        if (!action)
            continue;
        e.n++;
        qr->action = action;
        snprintf(qr->addr, sizeof(qr->addr), "%s", res->rcpt);
        for (size_t j = 0; strcmp(action, "delivered") == 0 && j < res->n; j++)
            if (res->v[j].kind == DN_LOCAL) /* the mailbox it reached */
                snprintf(qr->addr, sizeof(qr->addr), "%s", res->v[j].addr);
        snprintf(qr->status, sizeof(qr->status), "2.0.0");
        if (res->dsn.orcpt)
            snprintf(qr->orcpt, sizeof(qr->orcpt), "%s", res->dsn.orcpt);
    }
    snprintf(e.id, sizeof(e.id), "L%.20s", run->m->key);
    snprintf(e.from, sizeof(e.from), "%s", run->env->mail_from);
    snprintf(e.envid, sizeof(e.envid), "%s", run->env->envid ? run->env->envid : "");
    snprintf(e.ret, sizeof(e.ret), "%s", run->env->ret ? run->env->ret : "");
    e.arrival = (int64_t)now;
    queue_dsn(&e, QUEUE_DSN_SUCCESS, host, 0, run->m->data, run->m->len, now, &b);
    snprintf(daemon, sizeof(daemon), "MAILER-DAEMON@%.250s", host);
    if (b.oom || deliver_message(run->d, &de, to, 1, b.p, b.len, &r, NULL) != 0)
        log_warn("deliver", "success report to <%s> not delivered: %d %s %s", e.from, r.code,
                 r.enhanced, b.oom ? "out of memory" : r.text);
    else
        log_info("deliver", "success report for %zu recipient(s) sent to <%s>", e.n, e.from);
    buf_free(&b);
    free(e.r);
}

/* The overall answer: 250 when every recipient is; else the first temporary failure (the
 * sender retries, safely), else the first permanent one. */
static int deliver_overall(const struct deliver_run *run, struct deliver_reply *r)
{
    const struct deliver_reply *perm = NULL;

    for (size_t i = 0; i < run->nres; i++) {
        const struct deliver_reply *x = &run->res[i].reply;
        if (x->code >= 400 && x->code < 500) {
            *r = *x;
            return -1;
        }
        if (x->code >= 500 && !perm)
            perm = x;
    }
    if (perm) {
        *r = *perm;
        return -1;
    }
    if (run->queue_id[0])
        deliver_set(r, 250, "2.0.0", "Ok: queued as %s", run->queue_id);
    else
        deliver_set(r, 250, "2.0.0", "Ok: delivered");
    return 0;
}

/* The reverse path goes into Return-Path: and the To: of auto-replies, so nothing that
 * could end or break a header line. */
static int deliver_sender_ok(const char *from)
{
    size_t n = strlen(from);

    if (n >= DELIVER_ADDR_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)from[i];
        if (c <= 0x20 || c == 0x7f || c == '<' || c == '>')
            return 0;
    }
    return 1;
}

static void deliver_judge_all(struct deliver_run *run, const char *const *rcpts)
{
    for (size_t i = 0; i < run->nres; i++) {
        struct deliver_res *res = &run->res[i];
        if (run->env->dsn)
            res->dsn = run->env->dsn[i];
        deliver_judge(run->d, run->env, rcpts[i], res);
        if (res->reply.code == 0 &&
            (run->m->hops > DELIVER_MAX_HOPS || deliver_is_loop(run->m, res)))
            deliver_set(&res->reply, 554, "5.4.6", "Mail forwarding loop for <%s>", res->rcpt);
    }
}

int deliver_message(struct deliver *d, const struct deliver_env *env, const char *const *rcpts,
                    size_t nrcpts, const char *msg, size_t len, struct deliver_reply *r,
                    struct deliver_reply *rcpt_replies)
{
    struct deliver_run run = {.d = d, .env = env, .nres = nrcpts};
    size_t nlocal = 0;
    int rc = -1;

    if (!d || !env || !env->mail_from || !msg || nrcpts == 0) {
        deliver_set(r, 554, "5.5.1", "No valid recipients");
        goto out;
    }
    if (!deliver_sender_ok(env->mail_from)) {
        deliver_set(r, 501, "5.1.7", "Bad sender address syntax");
        goto out;
    }
    run.m = deliver_msg_new(msg, len);
    run.res = calloc(nrcpts, sizeof(*run.res));
    if (!run.m || !run.res)
        goto oom;
    deliver_judge_all(&run, rcpts);
    for (size_t i = 0; i < nrcpts; i++)
        nlocal += deliver_count(&run.res[i], DN_LOCAL);
    if (!(run.done = calloc(nlocal ? nlocal : 1, sizeof(*run.done))))
        goto oom;
    deliver_run_local(&run);
    deliver_run_external(&run);
    for (size_t i = 0; i < nrcpts; i++)
        if (run.res[i].reply.code == 0)
            deliver_set(&run.res[i].reply, 250, "2.0.0", "<%s>: Delivered", run.res[i].rcpt);
    rc = deliver_overall(&run, r);
    if (rc == 0)
        deliver_run_success(&run);
    deliver_run_autoreply(&run);
    goto out;
oom:
    deliver_set(r, 451, "4.3.0", "Temporary local problem, try again later");
    for (size_t i = 0; run.res && i < nrcpts; i++)
        run.res[i].reply = *r;
out:
    for (size_t i = 0; rcpt_replies && i < nrcpts; i++)
        rcpt_replies[i] = run.res && run.res[i].reply.code ? run.res[i].reply : *r;
    for (size_t i = 0; run.res && i < nrcpts; i++)
        deliver_res_free(&run.res[i]);
    free(run.res);
    free(run.done);
    deliver_msg_free(run.m);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Sending limits
 *
 * Counted per account and per message, in memory: the counters start from zero when the
 * server restarts (at worst a sender gets one more window's worth). Each limit is a
 * sliding-window estimate over two fixed windows: the previous window's count, weighted by
 * how much of it still overlaps the last minute (hour), plus the current one's.
 * ------------------------------------------------------------------------------------ */

#define DELIVER_RATE_BUCKETS 256

struct deliver_window {
    int64_t start;
    int cur, prev;
};

struct deliver_rate {
    char addr[DELIVER_ADDR_MAX];
    struct deliver_window minute, hour;
    struct deliver_rate *next;
};

static pthread_mutex_t deliver_rate_lock = PTHREAD_MUTEX_INITIALIZER;
static struct deliver_rate *deliver_rate_tab[DELIVER_RATE_BUCKETS];

static void deliver_window_roll(struct deliver_window *w, int64_t now, int64_t len)
{
    if (now >= w->start + 2 * len) {
        w->prev = w->cur = 0;
        w->start = now - now % len;
    } else if (now >= w->start + len) {
        w->prev = w->cur;
        w->cur = 0;
        w->start += len;
    }
}

static double deliver_window_count(const struct deliver_window *w, int64_t now, int64_t len)
{
    double overlap = (double)(len - (now - w->start)) / (double)len;

    return w->prev * (overlap > 0 ? overlap : 0) + w->cur;
}

static unsigned deliver_hash(const char *s)
{
    unsigned h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % DELIVER_RATE_BUCKETS;
}

/* The entry of addr, created when missing; entries idle for two hours in the same bucket
 * are dropped on the way, so the table holds only recent senders. Called locked. */
static struct deliver_rate *deliver_rate_entry(const char *addr, int64_t now)
{
    struct deliver_rate **pp = &deliver_rate_tab[deliver_hash(addr)], *e;

    while ((e = *pp)) {
        if (strcmp(e->addr, addr) == 0)
            return e;
        if (now - e->hour.start > 2 * 3600) {
            *pp = e->next;
            free(e);
            continue;
        }
        pp = &e->next;
    }
    if (!(e = calloc(1, sizeof(*e))))
        return NULL;
    snprintf(e->addr, sizeof(e->addr), "%s", addr);
    e->minute.start = now - now % 60;
    e->hour.start = now - now % 3600;
    *pp = e;
    return e;
}

/* A per-domain override ("rate.minute" / "rate.hour"), else def. */
static int deliver_rate_limit(struct store *s, const char *domain, const char *key, int def)
{
    void *val = NULL;
    size_t len = 0;
    long v;

    if (!domain || store_setting_get(s, domain, key, &val, &len, NULL) != STORE_OK)
        return def;
    v = strtol(val, NULL, 10);
    free(val);
    return v > 0 && v <= 100000000 ? (int)v : def;
}

int deliver_rate_check(struct deliver *d, const char *address, size_t nrcpts,
                       struct deliver_reply *r)
{
    char addr[DELIVER_ADDR_MAX];
    const char *domain;
    struct deliver_rate *e;
    int per_min, per_hour, rc = 0;
    int64_t now = time(NULL);

    if (!d || !address || deliver_addr(address, addr, sizeof(addr)) < 0) {
        deliver_set(r, 451, "4.3.0", "Temporary local problem, try again later");
        return -1;
    }
    deliver_lower(addr);
    domain = strrchr(addr, '@') + 1;
    per_min =
        deliver_rate_limit(d->store, domain, "rate.minute",
                           d->cfg && d->cfg->smtp_rate_minute ? d->cfg->smtp_rate_minute : 50);
    per_hour = deliver_rate_limit(d->store, domain, "rate.hour",
                                  d->cfg && d->cfg->smtp_rate_hour ? d->cfg->smtp_rate_hour : 500);
    pthread_mutex_lock(&deliver_rate_lock);
    if (!(e = deliver_rate_entry(addr, now))) {
        pthread_mutex_unlock(&deliver_rate_lock);
        deliver_set(r, 451, "4.3.0", "Temporary local problem, try again later");
        return -1;
    }
    deliver_window_roll(&e->minute, now, 60);
    deliver_window_roll(&e->hour, now, 3600);
    /* The hourly limit first: it is the one customers are told about. */
    if (deliver_window_count(&e->hour, now, 3600) + 1 > per_hour) {
        deliver_set(r, 550, "5.7.1", "Administrative Prohibition");
        rc = -1;
    } else if (deliver_window_count(&e->minute, now, 60) + 1 > per_min) {
        deliver_set(r, 451, "4.7.1", "Sending rate exceeded, try again later");
        rc = -1;
    } else {
        e->minute.cur++;
        e->hour.cur++;
        deliver_set(r, 250, "2.0.0", "OK");
    }
    pthread_mutex_unlock(&deliver_rate_lock);
    if (rc)
        log_info("deliver", "%s is over its sending limit (%d/minute, %d/hour)", addr, per_min,
                 per_hour);
    return rc;
}

/* ---- sender ownership ----------------------------------------------------------------- */

#define DELIVER_OWNER_DEPTH 8 /* alias chains followed this far, as delivery bounds them */

struct deliver_owner {
    struct store *s;
    const char *user;
    int depth;
    int found; /* the address has aliases at all */
    int owned;
};

static int deliver_owns(struct store *s, const char *user, const char *addr, int depth);

static int deliver_owner_cb(const char *source, const char *target, void *ctx)
{
    struct deliver_owner *o = ctx;

    o->found = 1;
    /* Directory list callbacks run with no lock held, so following the chain is safe. */
    if (strcasecmp(target, o->user) == 0 ||
        (o->depth < DELIVER_OWNER_DEPTH && strcasecmp(target, source) != 0 && target[0] != ':' &&
         deliver_owns(o->s, o->user, target, o->depth + 1))) {
        o->owned = 1;
        return 1;
    }
    return 0;
}

/* The chain delivery follows: the user itself; an alias with a target that reaches the
 * user; or, for an address with neither a mailbox nor aliases of its own, the domain's
 * catch-all. */
static int deliver_owns(struct store *s, const char *user, const char *addr, int depth)
{
    struct deliver_owner o = {.s = s, .user = user, .depth = depth};
    struct store_account acct;
    struct store_err err;
    const char *at = strrchr(addr, '@');
    char catchall[260];

    if (strcasecmp(addr, user) == 0)
        return 1;
    if (!at || store_alias_list(s, NULL, addr, deliver_owner_cb, &o, &err) != 0)
        return 0;
    if (o.owned || o.found || store_account_get(s, addr, &acct, NULL) == STORE_OK)
        return o.owned;
    snprintf(catchall, sizeof(catchall), "@%.250s", at + 1);
    if (strcmp(addr, catchall) == 0 ||
        store_alias_list(s, NULL, catchall, deliver_owner_cb, &o, &err) != 0)
        return 0;
    return o.owned;
}

int deliver_sender_owned(struct store *s, const char *user, const char *addr)
{
    return s && user && addr && deliver_owns(s, user, addr, 0);
}
