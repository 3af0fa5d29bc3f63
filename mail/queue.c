/*
 * queue.c — the outbound queue: durable on disk, delivered by a small pool of threads.
 *
 * Layout under data_dir/queue/:
 *   <id>.msg   the message as sent (CRLF, DKIM-signed at submit); never rewritten
 *   <id>.env   envelope and state (queue_dsn.c): sender, recipients with their outcome,
 *              attempts, next attempt, arrival, ENVID/RET; replaced atomically
 *   tmp/       files being written (temp name, fsync, rename into place)
 *   flush      left by `polaris queue flush`: the serving process polls for it every
 *              second, makes everything due and removes it
 *
 * Submit writes the .msg, then the .env, and fsyncs the directory once before it
 * returns: a message exists when its .env does. A crash before that fsync may leave
 * half of a submission, which nobody was told about, so it is dropped at start (after an
 * hour, so that a submission in progress in another process is not taken for debris).
 *
 * Another process (the CLI) may submit: its files are found by the rescan each second.
 * An attempt holds an flock on the .msg, which `queue del` takes too, so a message is
 * never deleted under a delivery. The state on disk is the truth; the in-memory index
 * (id, when due, busy) only decides who works on what next.
 *
 * Signing happens once, at submit, rather than before each attempt: every retry then
 * sends exactly the bytes that were signed, the key is read once per message, and a
 * signing problem shows in the log when the message arrives. The cost: a key rotated
 * while a message waits must stay published until the queue has drained (as rotation
 * requires anyway for mail already in transit elsewhere).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "mail/dkim.h"
#include "mail/queue.h"

#define QUEUE_WORKERS    4
#define QUEUE_SCAN_MS    1000
#define QUEUE_DEBRIS_AGE 3600 /* seconds before half-written files are removed */
#define QUEUE_RETRY_DSN  300  /* a report that could not be delivered is retried after */
#define QUEUE_PATH_MAX   (CFG_PATH_MAX + 64)
#define QUEUE_MSG_MAX    ((size_t)1 << 31)

struct queue_ent {
    char id[QUEUE_ID_MAX];
    int64_t next;
    int busy;
    int seen; /* found by the current rescan */
};

struct queue_worker {
    struct queue *q;
    pthread_t thread;
    int fd; /* the SMTP connection in use, -1 when none (guarded by q->lock) */
};

struct queue {
    struct store *store;
    const struct config *cfg;
    struct deliver *deliver;
    char dir[QUEUE_PATH_MAX], tmp[QUEUE_PATH_MAX];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct queue_ent *ents; /* sorted by id */
    size_t nents, cap;
    int started;
    volatile int stop;
    pthread_t scanner;
    struct queue_worker workers[QUEUE_WORKERS];
    void *ssl_ctx;
};

/* ---------------------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------------------ */

static int queue_valid_id(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n >= QUEUE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'F')))
            return 0;
    return 1;
}

static void queue_path(const struct queue *q, const char *id, const char *ext, char *out,
                       size_t outlen)
{
    snprintf(out, outlen, "%s/%s.%s", q->dir, id, ext);
}

static int queue_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

static int queue_write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes parts to tmp/<name>, fsyncs it and renames it to <dir>/<name>. The caller fsyncs
 * the directory. */
static int queue_put_file(const struct queue *q, const char *name, const char *a, size_t alen,
                          const char *b, size_t blen, char *err, size_t errlen)
{
    char tmp[QUEUE_PATH_MAX + 64], dst[QUEUE_PATH_MAX + 64];
    int fd;

    snprintf(tmp, sizeof(tmp), "%s/%s", q->tmp, name);
    snprintf(dst, sizeof(dst), "%s/%s", q->dir, name);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto err;
    if (queue_write_all(fd, a, alen) != 0 || queue_write_all(fd, b, blen) != 0 || fsync(fd) != 0) {
        close(fd);
        unlink(tmp);
        goto err;
    }
    close(fd);
    if (rename(tmp, dst) != 0) {
        unlink(tmp);
        goto err;
    }
    return 0;
err:
    snprintf(err, errlen, "cannot write %s: %s", name, strerror(errno));
    return -1;
}

/* Reads a whole file into a malloc'd NUL-terminated buffer. */
static char *queue_read_fd(int fd, size_t *len)
{
    struct stat st;
    char *buf;
    size_t n = 0;

    if (fstat(fd, &st) != 0 || (size_t)st.st_size >= QUEUE_MSG_MAX)
        return NULL;
    if (!(buf = malloc((size_t)st.st_size + 1)))
        return NULL;
    while (n < (size_t)st.st_size) {
        ssize_t r = pread(fd, buf + n, (size_t)st.st_size - n, (off_t)n);
        if (r <= 0) {
            free(buf);
            return NULL;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The state of message id. 0, 1 when it is gone, -1 when unreadable. */
static int queue_load_env(const struct queue *q, const char *id, struct queue_env *e)
{
    char path[QUEUE_PATH_MAX + 64], *text;
    size_t len = 0;
    int fd, rc;

    queue_path(q, id, "env", path, sizeof(path));
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? 1 : -1;
    text = queue_read_fd(fd, &len);
    close(fd);
    if (!text)
        return -1;
    rc = queue_env_parse(text, len, e);
    free(text);
    return rc;
}

static int queue_save_env(const struct queue *q, const struct queue_env *e)
{
    struct buf b = {0};
    char name[QUEUE_ID_MAX + 8], err[256];
    int rc = -1;

    queue_env_format(e, &b);
    snprintf(name, sizeof(name), "%s.env", e->id);
    if (!b.oom && queue_put_file(q, name, b.p, b.len, "", 0, err, sizeof(err)) == 0)
        rc = queue_fsync_dir(q->dir);
    else
        log_error("queue", "%s: %s", e->id, b.oom ? "out of memory" : err);
    buf_free(&b);
    return rc;
}

/* Removes a message: the .env first, so that a crash in between leaves only debris. */
static void queue_remove_files(const struct queue *q, const char *id)
{
    char path[QUEUE_PATH_MAX + 64];

    queue_path(q, id, "env", path, sizeof(path));
    unlink(path);
    queue_path(q, id, "msg", path, sizeof(path));
    unlink(path);
    queue_fsync_dir(q->dir);
}

/* ---------------------------------------------------------------------------------------
 * Opening
 * ------------------------------------------------------------------------------------ */

struct queue *queue_open(struct store *s, const struct config *cfg, char *err, size_t errlen)
{
    struct queue *q = calloc(1, sizeof(*q));

    if (!q) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    q->store = s;
    q->cfg = cfg;
    snprintf(q->dir, sizeof(q->dir), "%s/queue", cfg->data_dir);
    snprintf(q->tmp, sizeof(q->tmp), "%s/queue/tmp", cfg->data_dir);
    if ((mkdir(q->dir, 0700) != 0 && errno != EEXIST) ||
        (mkdir(q->tmp, 0700) != 0 && errno != EEXIST)) {
        snprintf(err, errlen, "cannot create %s: %s", q->tmp, strerror(errno));
        free(q);
        return NULL;
    }
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->cond, NULL);
    for (int i = 0; i < QUEUE_WORKERS; i++)
        q->workers[i].fd = -1;
    return q;
}

/* ---------------------------------------------------------------------------------------
 * The index (under q->lock)
 * ------------------------------------------------------------------------------------ */

/* Position of id, or where it would go; *found says which. */
static size_t queue_find(const struct queue *q, const char *id, int *found)
{
    size_t lo = 0, hi = q->nents;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(q->ents[mid].id, id);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static void queue_index_put(struct queue *q, const char *id, int64_t next)
{
    int found;
    size_t at = queue_find(q, id, &found);

    if (found) {
        q->ents[at].seen = 1;
        return;
    }
    if (q->nents == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        struct queue_ent *grown = realloc(q->ents, cap * sizeof(*grown));
        if (!grown)
            return; /* the next rescan tries again */
        q->ents = grown;
        q->cap = cap;
    }
    memmove(q->ents + at + 1, q->ents + at, (q->nents - at) * sizeof(*q->ents));
    memset(&q->ents[at], 0, sizeof(q->ents[at]));
    snprintf(q->ents[at].id, sizeof(q->ents[at].id), "%s", id);
    q->ents[at].next = next;
    q->ents[at].seen = 1;
    q->nents++;
}

static void queue_index_del(struct queue *q, size_t at)
{
    memmove(q->ents + at, q->ents + at + 1, (q->nents - at - 1) * sizeof(*q->ents));
    q->nents--;
}

/* ---------------------------------------------------------------------------------------
 * Submitting
 * ------------------------------------------------------------------------------------ */

static int queue_new_id(char *id, size_t idlen)
{
    unsigned char r[6];

    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return -1;
    snprintf(id, idlen, "%010llX%02X%02X%02X%02X%02X%02X", (unsigned long long)time(NULL), r[0],
             r[1], r[2], r[3], r[4], r[5]);
    return 0;
}

/* The domain of the first address of the From field, lower-case, or "". */
static void queue_from_domain(const char *msg, size_t len, char *out, size_t outlen)
{
    struct mime_field f;
    struct mime_arena a = {0};
    struct mime_addr *addr = NULL;
    size_t hlen = mime_header_size(msg, len);

    out[0] = '\0';
    if (mime_header_get(msg, hlen, "From", &f) &&
        mime_addr_parse(&a, f.value, f.value_len, &addr) == 0) {
        for (; addr; addr = addr->next) {
            if (addr->kind == MIME_ADDR_MAILBOX && addr->host && addr->host[0]) {
                snprintf(out, outlen, "%s", addr->host);
                break;
            }
        }
    }
    mime_arena_free(&a);
    for (char *p = out; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
}

/* The DKIM-Signature for the message: From's domain when it has a key, else the envelope
 * sender's. NULL when neither has one (sent unsigned). */
static char *queue_sign(struct queue *q, const char *from, const char *msg, size_t len)
{
    char dom[2][256], err[256];
    const char *at = strrchr(from, '@');
    char *sig = NULL;

    queue_from_domain(msg, len, dom[0], sizeof(dom[0]));
    snprintf(dom[1], sizeof(dom[1]), "%s", at ? at + 1 : "");
    for (char *p = dom[1]; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    for (int i = 0; i < 2; i++) {
        if (!dom[i][0] || (i == 1 && strcmp(dom[0], dom[1]) == 0))
            continue;
        int rc = dkim_domain_sign(q->store, dom[i], msg, len, &sig, err, sizeof(err));
        if (rc == 0)
            return sig;
        if (rc < 0)
            log_warn("queue", "DKIM signing for %s failed: %s", dom[i], err);
    }
    return NULL;
}

static int queue_check_args(const char *mail_from, const char *const *rcpts, size_t n, char *err,
                            size_t errlen)
{
    if (n == 0) {
        snprintf(err, errlen, "no recipients");
        return -1;
    }
    if (!mail_from || strlen(mail_from) >= QUEUE_ADDR_MAX || strpbrk(mail_from, "\r\n<>")) {
        snprintf(err, errlen, "bad sender address");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!rcpts[i] || !rcpts[i][0] || strlen(rcpts[i]) >= QUEUE_ADDR_MAX ||
            strpbrk(rcpts[i], "\r\n<> ") || !strchr(rcpts[i], '@')) {
            snprintf(err, errlen, "bad recipient address");
            return -1;
        }
    }
    return 0;
}

static int queue_fill_env(struct queue_env *e, const char *id, const char *mail_from,
                          const char *const *rcpts, const struct deliver_dsn *dsn, size_t n,
                          const char *envid, const char *ret)
{
    memset(e, 0, sizeof(*e));
    if (!(e->r = calloc(n, sizeof(*e->r))))
        return -1;
    snprintf(e->id, sizeof(e->id), "%s", id);
    snprintf(e->from, sizeof(e->from), "%s", mail_from);
    snprintf(e->envid, sizeof(e->envid), "%s", envid && !strpbrk(envid, "\r\n") ? envid : "");
    if (ret && (strcasecmp(ret, "FULL") == 0 || strcasecmp(ret, "HDRS") == 0))
        snprintf(e->ret, sizeof(e->ret), "%s", strcasecmp(ret, "FULL") == 0 ? "FULL" : "HDRS");
    e->arrival = e->next = (int64_t)time(NULL);
    e->n = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(e->r[i].addr, sizeof(e->r[i].addr), "%s", rcpts[i]);
        if (!dsn)
            continue;
        e->r[i].notify = dsn[i].notify & (DELIVER_NOTIFY_NEVER | DELIVER_NOTIFY_SUCCESS |
                                          DELIVER_NOTIFY_FAILURE | DELIVER_NOTIFY_DELAY);
        if (dsn[i].orcpt && strlen(dsn[i].orcpt) < sizeof(e->r[i].orcpt) &&
            !strpbrk(dsn[i].orcpt, "\r\n"))
            snprintf(e->r[i].orcpt, sizeof(e->r[i].orcpt), "%s", dsn[i].orcpt);
    }
    return 0;
}

int queue_submit(struct queue *q, const char *mail_from, const char *const *rcpts, size_t n,
                 const char *msg, size_t len, const char *envid, const char *ret, char *id,
                 size_t idlen, char *err, size_t errlen)
{
    return queue_submit_dsn(q, mail_from, rcpts, NULL, n, msg, len, envid, ret, id, idlen, err,
                            errlen);
}

int queue_submit_dsn(struct queue *q, const char *mail_from, const char *const *rcpts,
                     const struct deliver_dsn *dsn, size_t n, const char *msg, size_t len,
                     const char *envid, const char *ret, char *id, size_t idlen, char *err,
                     size_t errlen)
{
    struct queue_env e = {0};
    struct buf env = {0};
    char qid[QUEUE_ID_MAX], name[QUEUE_ID_MAX + 8], *norm = NULL, *sig = NULL;
    size_t nlen = 0;

    if (queue_check_args(mail_from, rcpts, n, err, errlen) != 0)
        return -1;
    if (mail_normalize(msg, len, &norm, &nlen) != 0 || queue_new_id(qid, sizeof(qid)) != 0 ||
        queue_fill_env(&e, qid, mail_from, rcpts, dsn, n, envid, ret) != 0) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    sig = queue_sign(q, mail_from, norm, nlen);
    snprintf(name, sizeof(name), "%s.msg", qid);
    if (queue_put_file(q, name, sig ? sig : "", sig ? strlen(sig) : 0, norm, nlen, err, errlen))
        goto err;
    queue_env_format(&e, &env);
    snprintf(name, sizeof(name), "%s.env", qid);
    if (env.oom || queue_put_file(q, name, env.p, env.len, "", 0, err, errlen) != 0)
        goto err_msg;
    if (queue_fsync_dir(q->dir) != 0) {
        snprintf(err, errlen, "cannot sync %s: %s", q->dir, strerror(errno));
        goto err_msg;
    }
    pthread_mutex_lock(&q->lock);
    queue_index_put(q, qid, 0);
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
    log_info("queue", "%s: queued from <%s> for %zu recipient(s), %zu bytes%s", qid, mail_from, n,
             nlen, sig ? ", DKIM-signed" : "");
    snprintf(id, idlen, "%s", qid);
    buf_free(&env);
    queue_env_free(&e);
    free(norm);
    free(sig);
    return 0;
err_msg:
    queue_remove_files(q, qid);
err:
    buf_free(&env);
    queue_env_free(&e);
    free(norm);
    free(sig);
    return -1;
}

/* ---------------------------------------------------------------------------------------
 * Reports to the sender
 * ------------------------------------------------------------------------------------ */

static const char *const queue_report_names[] = {"bounce", "delay notice", "success report"};

/* Sends a report (queue_dsn's kind) through the delivery pipeline: a local sender finds it
 * in the INBOX, an external one gets it queued. 0 sent, 1 try later, -1 give up. */
static int queue_report(struct queue *q, const struct queue_env *e, int kind, const char *msg,
                        size_t len)
{
    /* auth_user: the system itself sends it, so an external sender may be relayed to. */
    char daemon[300];
    struct deliver_env de = {.mail_from = "", .auth_user = daemon, .protocol = "LOCAL"};
    struct deliver_reply r = {0};
    struct buf b = {0};
    const char *to[1] = {e->from};
    int64_t until = e->arrival + q->cfg->queue_lifetime;
    int rc;

    snprintf(daemon, sizeof(daemon), "MAILER-DAEMON@%.250s", q->cfg->hostname);
    queue_dsn(e, kind, q->cfg->hostname, until, msg, len, time(NULL), &b);
    if (b.oom) {
        buf_free(&b);
        return 1;
    }
    rc = deliver_message(q->deliver, &de, to, 1, b.p, b.len, &r, NULL);
    buf_free(&b);
    if (rc == 0) {
        log_info("queue", "%s: %s sent to <%s>", e->id, queue_report_names[kind], e->from);
        return 0;
    }
    log_warn("queue", "%s: %s to <%s> not delivered: %d %s %s", e->id, queue_report_names[kind],
             e->from, r.code, r.enhanced, r.text);
    return r.code >= 500 ? -1 : 1;
}

/* Whether any recipient belongs in a report of this kind. */
static int queue_any_wants(const struct queue_env *e, int kind)
{
    for (size_t i = 0; i < e->n; i++)
        if (queue_dsn_wants(&e->r[i], kind))
            return 1;
    return 0;
}

/* A report of this kind went out (or never will): its recipients move on to done. */
static void queue_reported(struct queue_env *e, int kind)
{
    for (size_t i = 0; i < e->n; i++) {
        struct queue_rcpt *r = &e->r[i];
        if (kind == QUEUE_DSN_FAILED && r->state == QR_FAILED)
            r->state = QR_BOUNCED;
        else if (kind == QUEUE_DSN_SUCCESS && r->state == QR_RELAYED)
            r->state = QR_SENT;
    }
}

/* The failure and success reports still owed; a report that cannot go out now is tried
 * again after QUEUE_RETRY_DSN. */
static void queue_report_final(struct queue *q, struct queue_env *e, int kind, const char *msg,
                               size_t len, int64_t now)
{
    int rc;

    if (!queue_any_wants(e, kind)) {
        /* RFC 3461 §4.1: NOTIFY without FAILURE (or NEVER) means no failure report. */
        queue_reported(e, kind);
        return;
    }
    rc = queue_report(q, e, kind, msg, len);
    if (rc <= 0)
        queue_reported(e, kind);
    else if (!e->next || e->next > now + QUEUE_RETRY_DSN)
        e->next = now + QUEUE_RETRY_DSN;
}

/* After an attempt: give up on what waited too long, send the delay notice, the bounce
 * and the success ("relayed") report, each to the recipients that asked for it. Returns
 * when to look at the message again (0: nothing left to do). */
static int64_t queue_conclude(struct queue *q, struct queue_env *e, const char *msg, size_t len)
{
    int64_t now = (int64_t)time(NULL), expiry = e->arrival + q->cfg->queue_lifetime;
    int queued = 0, failed = 0;

    for (size_t i = 0; i < e->n; i++) {
        struct queue_rcpt *r = &e->r[i];
        if (r->state == QR_QUEUED && now >= expiry) {
            char why[QUEUE_DIAG_MAX];
            snprintf(why, sizeof(why), "%s", r->diag[0] ? r->diag : "no attempt succeeded");
            snprintf(r->diag, sizeof(r->diag), "delivery time expired; last error: %.400s", why);
            snprintf(r->status, sizeof(r->status), "4.4.7");
            r->state = QR_FAILED;
        }
        queued += r->state == QR_QUEUED;
        failed += r->state == QR_FAILED;
    }
    e->next = queued ? now + queue_backoff(e->attempts) : 0;
    if (queued && e->next > expiry)
        e->next = expiry; /* one last attempt at the end of the lifetime */
    /* Never report on a report (RFC 3461 §6.2, RFC 5321 §6.1): the null sender is told
     * nothing, its failed recipients are just done. */
    if (!e->from[0] || !q->deliver) {
        queue_reported(e, QUEUE_DSN_FAILED);
        queue_reported(e, QUEUE_DSN_SUCCESS);
        if (failed && !e->from[0])
            log_info("queue", "%s: failed recipients of a bounce are dropped", e->id);
        return e->next;
    }
    /* The delay notice: once, and only when someone asked (no NOTIFY means DELAY too). */
    if (queued && !e->delay_sent && now - e->arrival >= QUEUE_DELAY_NOTICE)
        e->delay_sent = !queue_any_wants(e, QUEUE_DSN_DELAYED) ||
                        queue_report(q, e, QUEUE_DSN_DELAYED, msg, len) <= 0;
    if (failed)
        queue_report_final(q, e, QUEUE_DSN_FAILED, msg, len, now);
    queue_report_final(q, e, QUEUE_DSN_SUCCESS, msg, len, now);
    return e->next;
}

/* ---------------------------------------------------------------------------------------
 * Delivery threads
 * ------------------------------------------------------------------------------------ */

static int queue_all_final(const struct queue_env *e)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->r[i].state != QR_SENT && e->r[i].state != QR_BOUNCED)
            return 0;
    return 1;
}

static void queue_log_outcomes(const struct queue_env *e)
{
    for (size_t i = 0; i < e->n; i++)
        log_info("queue", "%s: <%s> %s %s%s%s", e->id, e->r[i].addr,
                 queue_rstate_name(e->r[i].state), e->r[i].status, e->r[i].diag[0] ? ": " : "",
                 e->r[i].diag);
}

/* One attempt on message id. Returns when it is due again; 0 when it is gone. */
static int64_t queue_process(struct queue_worker *w, const char *id)
{
    struct queue *q = w->q;
    struct queue_client cl = {q->cfg, q->ssl_ctx, &q->lock, &w->fd, &q->stop};
    struct queue_env e;
    char path[QUEUE_PATH_MAX + 64], *msg = NULL;
    size_t len = 0;
    int64_t next = (int64_t)time(NULL) + 60;
    int fd, rc;

    queue_path(q, id, "msg", path, sizeof(path));
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno != ENOENT)
            return next;
        if (queue_load_env(q, id, &e) == 0) { /* cannot happen after a complete submit */
            log_error("queue", "%s: the message file is missing; dropping it", id);
            queue_env_free(&e);
            queue_remove_files(q, id);
        }
        return 0;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) { /* `queue del` at work */
        close(fd);
        return next;
    }
    rc = queue_load_env(q, id, &e);
    if (rc != 0) {
        close(fd);
        if (rc < 0)
            log_error("queue", "%s: unreadable state file; will look again", id);
        return rc > 0 ? 0 : next + 3600;
    }
    if (!(msg = queue_read_fd(fd, &len)))
        goto out;
    queue_smtp_deliver(&cl, &e, msg, len);
    if (q->stop) {
        /* Cut short by queue_close: keep what was delivered, try the rest at restart. */
        e.next = (int64_t)time(NULL);
        if (queue_all_final(&e))
            queue_remove_files(q, id);
        else
            queue_save_env(q, &e);
        goto out;
    }
    e.attempts++;
    e.last_attempt = (int64_t)time(NULL);
    queue_log_outcomes(&e);
    next = queue_conclude(q, &e, msg, len);
    if (queue_all_final(&e)) {
        queue_remove_files(q, id);
        log_info("queue", "%s: done", id);
        next = 0;
    } else if (queue_save_env(q, &e) != 0) {
        next = (int64_t)time(NULL) + 60;
    }
out:
    free(msg);
    queue_env_free(&e);
    close(fd);
    return next;
}

/* The earliest due entry not being worked on, or -1; *wait_ms until the next one. */
static long queue_pick(struct queue *q, int64_t now, long *wait_ms)
{
    long best = -1;

    *wait_ms = QUEUE_SCAN_MS;
    for (size_t i = 0; i < q->nents; i++) {
        const struct queue_ent *en = &q->ents[i];
        if (en->busy)
            continue;
        if (en->next <= now) {
            if (best < 0 || en->next < q->ents[best].next)
                best = (long)i;
        } else if ((en->next - now) * 1000 < *wait_ms) {
            *wait_ms = (long)(en->next - now) * 1000;
        }
    }
    return best;
}

static void queue_timedwait(struct queue *q, long ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&q->cond, &q->lock, &ts);
}

static void *queue_worker_main(void *arg)
{
    struct queue_worker *w = arg;
    struct queue *q = w->q;
    char id[QUEUE_ID_MAX];

    pthread_mutex_lock(&q->lock);
    while (!q->stop) {
        long wait_ms, at = queue_pick(q, (int64_t)time(NULL), &wait_ms);
        if (at < 0) {
            queue_timedwait(q, wait_ms);
            continue;
        }
        q->ents[at].busy = 1;
        snprintf(id, sizeof(id), "%s", q->ents[at].id);
        pthread_mutex_unlock(&q->lock);
        int64_t next = queue_process(w, id);
        pthread_mutex_lock(&q->lock);
        int found;
        size_t pos = queue_find(q, id, &found);
        if (found && next == 0) {
            queue_index_del(q, pos);
        } else if (found) {
            q->ents[pos].busy = 0;
            q->ents[pos].next = next;
        }
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * The scanner: other processes' submissions, deletions and flush requests
 * ------------------------------------------------------------------------------------ */

/* Files of an interrupted submission (a .msg without .env, anything in tmp/) are removed
 * once they are old enough not to belong to a submission in progress. */
static void queue_sweep_debris(struct queue *q)
{
    DIR *d = opendir(q->tmp);
    struct dirent *de;
    char path[QUEUE_PATH_MAX + 300];
    struct stat st;
    time_t now = time(NULL);

    while (d && (de = readdir(d))) {
        snprintf(path, sizeof(path), "%s/%s", q->tmp, de->d_name);
        if (de->d_name[0] != '.' && stat(path, &st) == 0 && now - st.st_mtime > QUEUE_DEBRIS_AGE)
            unlink(path);
    }
    if (d)
        closedir(d);
    if (!(d = opendir(q->dir)))
        return;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".msg") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%.*s.env", q->dir, (int)(n - 4), de->d_name);
        if (access(path, F_OK) == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", q->dir, de->d_name);
        if (stat(path, &st) == 0 && now - st.st_mtime > QUEUE_DEBRIS_AGE) {
            log_warn("queue", "removing %s: left by an interrupted submission", de->d_name);
            unlink(path);
        }
    }
    closedir(d);
}

/* When a message found on disk is due: its state file says. */
static int64_t queue_env_next(struct queue *q, const char *id)
{
    struct queue_env e;
    int rc = queue_load_env(q, id, &e);
    int64_t next = rc == 0 ? e.next : (int64_t)time(NULL) + 3600;

    if (rc == 0)
        queue_env_free(&e);
    else if (rc < 0)
        log_error("queue", "%s: unreadable state file", id);
    return next;
}

static void queue_rescan(struct queue *q, int flush)
{
    DIR *d = opendir(q->dir);
    struct dirent *de;

    if (!d)
        return;
    pthread_mutex_lock(&q->lock);
    for (size_t i = 0; i < q->nents; i++)
        q->ents[i].seen = 0;
    pthread_mutex_unlock(&q->lock);
    while ((de = readdir(d))) {
        char id[QUEUE_ID_MAX];
        size_t n = strlen(de->d_name);
        int found;
        if (n < 5 || n - 4 >= sizeof(id) || strcmp(de->d_name + n - 4, ".env") != 0)
            continue;
        snprintf(id, sizeof(id), "%.*s", (int)(n - 4), de->d_name);
        if (!queue_valid_id(id))
            continue;
        pthread_mutex_lock(&q->lock);
        size_t at = queue_find(q, id, &found);
        if (found)
            q->ents[at].seen = 1;
        pthread_mutex_unlock(&q->lock);
        if (!found) {
            int64_t next = queue_env_next(q, id); /* read outside the lock */
            pthread_mutex_lock(&q->lock);
            queue_index_put(q, id, next);
            pthread_mutex_unlock(&q->lock);
        }
    }
    closedir(d);
    pthread_mutex_lock(&q->lock);
    for (size_t i = q->nents; i-- > 0;) {
        if (!q->ents[i].seen && !q->ents[i].busy)
            queue_index_del(q, i); /* deleted by `queue del` */
        else if (flush)
            q->ents[i].next = 0;
    }
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

static void *queue_scanner_main(void *arg)
{
    struct queue *q = arg;
    char flag[QUEUE_PATH_MAX + 16];

    snprintf(flag, sizeof(flag), "%s/flush", q->dir);
    queue_sweep_debris(q);
    pthread_mutex_lock(&q->lock);
    while (!q->stop) {
        pthread_mutex_unlock(&q->lock);
        int flush = unlink(flag) == 0;
        if (flush)
            log_info("queue", "flush requested: every message is due now");
        queue_rescan(q, flush);
        pthread_mutex_lock(&q->lock);
        if (!q->stop)
            queue_timedwait(q, QUEUE_SCAN_MS);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

int queue_start(struct queue *q, struct deliver *d)
{
    if (!q || q->started)
        return -1;
    q->deliver = d;
    q->ssl_ctx = queue_smtp_ssl_ctx();
    if (!q->ssl_ctx)
        log_warn("queue", "no TLS client context: sending without STARTTLS");
    q->started = 1;
    if (pthread_create(&q->scanner, NULL, queue_scanner_main, q) != 0) {
        q->started = 0;
        return -1;
    }
    for (int i = 0; i < QUEUE_WORKERS; i++) {
        q->workers[i].q = q;
        if (pthread_create(&q->workers[i].thread, NULL, queue_worker_main, &q->workers[i]) != 0)
            q->workers[i].q = NULL;
    }
    log_info("queue", "outbound queue in %s, %d delivery threads%s%s", q->dir, QUEUE_WORKERS,
             q->cfg->smarthost[0] ? ", smarthost " : "", q->cfg->smarthost);
    return 0;
}

void queue_close(struct queue *q)
{
    if (!q)
        return;
    if (q->started) {
        pthread_mutex_lock(&q->lock);
        q->stop = 1;
        /* Cut connections in progress: their attempt is repeated after the restart. */
        for (int i = 0; i < QUEUE_WORKERS; i++)
            if (q->workers[i].fd >= 0)
                shutdown(q->workers[i].fd, SHUT_RDWR);
        pthread_cond_broadcast(&q->cond);
        pthread_mutex_unlock(&q->lock);
        pthread_join(q->scanner, NULL);
        for (int i = 0; i < QUEUE_WORKERS; i++)
            if (q->workers[i].q)
                pthread_join(q->workers[i].thread, NULL);
    }
    if (q->ssl_ctx)
        SSL_CTX_free(q->ssl_ctx);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->cond);
    free(q->ents);
    free(q);
}

/* ---------------------------------------------------------------------------------------
 * Admin: list, flush, del
 * ------------------------------------------------------------------------------------ */

static int queue_id_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The ids on disk, sorted (oldest first: ids start with the arrival time). */
static char **queue_ids(const struct queue *q, size_t *n)
{
    DIR *d = opendir(q->dir);
    struct dirent *de;
    char **ids = NULL;
    size_t cap = 0;

    *n = 0;
    while (d && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 5 || len - 4 >= QUEUE_ID_MAX || strcmp(de->d_name + len - 4, ".env") != 0)
            continue;
        if (*n == cap) {
            char **grown = realloc(ids, (cap = cap ? cap * 2 : 64) * sizeof(*ids));
            if (!grown)
                break;
            ids = grown;
        }
        if ((ids[*n] = strndup(de->d_name, len - 4)))
            (*n)++;
    }
    if (d)
        closedir(d);
    if (*n)
        qsort(ids, *n, sizeof(*ids), queue_id_cmp);
    return ids;
}

static int queue_list_one(const struct queue *q, const char *id, queue_list_cb cb, void *ctx)
{
    struct queue_env e;
    struct queue_rcpt_info *ri;
    struct stat st;
    char path[QUEUE_PATH_MAX + 64];
    int stop;

    if (queue_load_env(q, id, &e) != 0)
        return 0; /* gone meanwhile, or unreadable */
    if (!(ri = calloc(e.n, sizeof(*ri)))) {
        queue_env_free(&e);
        return -1;
    }
    for (size_t i = 0; i < e.n; i++)
        ri[i] = (struct queue_rcpt_info){e.r[i].addr, queue_rstate_name(e.r[i].state), e.r[i].diag};
    queue_path(q, id, "msg", path, sizeof(path));
    struct queue_info info = {
        .id = e.id,
        .mail_from = e.from,
        .size = stat(path, &st) == 0 ? (int64_t)st.st_size : 0,
        .arrival = e.arrival,
        .next = e.next,
        .attempts = e.attempts,
        .nrcpts = e.n,
        .rcpts = ri,
    };
    stop = cb(&info, ctx);
    free(ri);
    queue_env_free(&e);
    return stop;
}

int queue_list(struct queue *q, queue_list_cb cb, void *ctx, char *err, size_t errlen)
{
    size_t n = 0;
    char **ids = queue_ids(q, &n);
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        int r = rc == 0 ? queue_list_one(q, ids[i], cb, ctx) : 0;
        if (r < 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        } else if (r > 0) {
            rc = 1; /* the callback stopped the listing */
        }
        free(ids[i]);
    }
    if (rc > 0)
        rc = 0;
    free(ids);
    return rc;
}

int queue_flush(struct queue *q, char *err, size_t errlen)
{
    char flag[QUEUE_PATH_MAX + 16];
    int fd;

    snprintf(flag, sizeof(flag), "%s/flush", q->dir);
    fd = open(flag, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", flag, strerror(errno));
        return -1;
    }
    close(fd);
    if (q->started) { /* in the serving process itself: no need to wait for the poll */
        pthread_mutex_lock(&q->lock);
        pthread_cond_broadcast(&q->cond);
        pthread_mutex_unlock(&q->lock);
    }
    return 0;
}

int queue_del(struct queue *q, const char *id, char *err, size_t errlen)
{
    char path[QUEUE_PATH_MAX + 64], env[QUEUE_PATH_MAX + 64];
    int fd;

    if (!queue_valid_id(id))
        return 1;
    queue_path(q, id, "msg", path, sizeof(path));
    queue_path(q, id, "env", env, sizeof(env));
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno == ENOENT && access(env, F_OK) != 0)
            return 1;
        queue_remove_files(q, id);
        return 0;
    }
    /* Waits for an attempt in progress, so that it cannot write the state back. */
    if (flock(fd, LOCK_EX) != 0) {
        snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    int gone = access(env, F_OK) != 0;
    queue_remove_files(q, id);
    close(fd);
    return gone ? 1 : 0;
}
