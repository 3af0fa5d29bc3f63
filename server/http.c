/*
 * http.c — the HTTP front end on libmicrohttpd: listeners (plain and TLS), the request
 * life cycle (virtual host, route, Basic auth and the gate, a bounded body, the engine's
 * handler), suspend/resume for long polls, and the per-request log line.
 *
 * Life of a request:
 *   URI log callback   allocates struct http_req (so the raw query string is kept);
 *   1st access call    host → tenant, path → route, size and auth checks; errors answer
 *                      here, before any body is read;
 *   next calls         the body is appended to a buffer bounded by max_request_bytes;
 *   last call          the handler runs (phase REQUEST); it responds or suspends;
 *   after a resume     the handler runs again (phase RESUMED);
 *   completed callback engine cleanup, log line, free.
 *
 * Suspended requests hold no worker thread: libmicrohttpd parks the connection, and one
 * timer thread with a min-heap of deadlines resumes those whose time is up. One mutex
 * (susp_mu) guards every request's suspend state and the heap; MHD_suspend_connection is
 * called under it so that no resume can overtake the suspend it belongs to.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "server/server.h"

#define HTTP_CONN_LIMIT      20000
#define HTTP_IDLE_TIMEOUT_S  120
#define HTTP_DEFAULT_THREADS 4
#define HTTP_LISTEN_BACKLOG  1024
#define HTTP_AUTH_B64_MAX    1024 /* longest Basic credential (base64) considered */
#define HTTP_PEM_MAX         (1024 * 1024)
#define HTTP_LOG_FIELD_MAX   200
#define HTTP_STOP_POLL_MS    10
#define HTTP_DISCARD_MIN     (1024 * 1024) /* oversized body bytes read to answer 413 */
#define HTTP_NEUTRAL_404     "Not Found\n"

enum http_stage {
    HTTP_STAGE_NEW = 0, /* headers arrived, nothing checked yet */
    HTTP_STAGE_BODY,    /* accepted, reading the body */
    HTTP_STAGE_PARKED,  /* the connection is suspended */
    HTTP_STAGE_REFUSED, /* refused before the handler; sent after the (empty) body */
    HTTP_STAGE_DONE,    /* a response is queued */
};

enum http_susp {
    HTTP_SUSP_IDLE = 0,
    HTTP_SUSP_PENDING, /* http_suspend called; the handler has not returned yet */
    HTTP_SUSP_EARLY,   /* resumed (or timed out) before the handler returned */
    HTTP_SUSP_PARKED,  /* MHD_suspend_connection done, waiting in the heap */
};

struct http_hdr {
    char *name, *value;
    struct http_hdr *next;
};

struct http_listener {
    struct http_server *h;
    struct MHD_Daemon *d;
    int fd; /* our listening socket; ours to close once the daemon was quiesced */
    int quiesced;
    int tls;
    int port;
    char *cert_pem, *key_pem; /* kept for the daemon's lifetime */
};

struct http_server {
    struct store *store;
    struct auth *auth;
    const struct config *cfg;
    struct router_table *routes;
    pthread_rwlock_t routes_lock;
    struct http_listener plain, secure;

    pthread_mutex_t susp_mu;
    pthread_cond_t susp_cond; /* wakes the timer thread */
    struct http_req **heap;   /* min-heap on deadline of parked requests */
    size_t heap_len, heap_cap;
    long active;  /* requests between URI callback and completion */
    int resuming; /* MHD_resume_connection calls under way */
    int stopping, quit;
    pthread_t timer;
    int timer_started;
};

struct http_req {
    struct http_server *h;
    struct MHD_Connection *conn;
    int tls;
    enum http_stage stage;
    struct timespec start;

    char *raw_uri;
    const char *raw_query; /* into raw_uri, "" when none */
    char *path;
    char method[24];
    char host[256];
    char remote_ip[INET6_ADDRSTRLEN];
    const char *host_kind;
    int has_tenant, has_acct, has_route, handler_ran;
    struct store_domain tenant;
    struct store_account acct;
    struct http_route route;

    char *body;
    size_t body_len, body_cap;
    int too_big;
    size_t discarded;

    int status;
    char *ctype;
    char *resp_body;
    size_t resp_len;
    struct http_hdr *hdrs, **hdr_tail;

    /* guarded by h->susp_mu */
    enum http_susp susp;
    int timed_out;
    struct timespec deadline;
    size_t heap_idx; /* valid while susp == HTTP_SUSP_PARKED */

    void *data;
};

/* ---------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------ */

static void http_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void http_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int64_t http_ms_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static int http_ts_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Copies a request field for the log: bounded, control characters and spaces replaced,
 * so that a crafted path cannot forge or split log lines. */
static const char *http_log_field(const char *s, char *buf, size_t buflen)
{
    size_t i = 0;

    if (!s || !*s)
        return "-";
    for (; s[i] && i + 1 < buflen; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c <= 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    buf[i] = '\0';
    return buf;
}

/* ---------------------------------------------------------------------------------------
 * The deadline heap (guarded by susp_mu)
 * ------------------------------------------------------------------------------------ */

static void http_heap_set(struct http_server *h, size_t i, struct http_req *r)
{
    h->heap[i] = r;
    r->heap_idx = i;
}

static void http_heap_up(struct http_server *h, size_t i)
{
    struct http_req *r = h->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!http_ts_before(&r->deadline, &h->heap[parent]->deadline))
            break;
        http_heap_set(h, i, h->heap[parent]);
        i = parent;
    }
    http_heap_set(h, i, r);
}

static void http_heap_down(struct http_server *h, size_t i)
{
    struct http_req *r = h->heap[i];

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->heap_len)
            break;
        if (c + 1 < h->heap_len && http_ts_before(&h->heap[c + 1]->deadline, &h->heap[c]->deadline))
            c++;
        if (!http_ts_before(&h->heap[c]->deadline, &r->deadline))
            break;
        http_heap_set(h, i, h->heap[c]);
        i = c;
    }
    http_heap_set(h, i, r);
}

static int http_heap_push(struct http_server *h, struct http_req *r)
{
    if (h->heap_len == h->heap_cap) {
        size_t cap = h->heap_cap ? h->heap_cap * 2 : 256;
        struct http_req **v = realloc(h->heap, cap * sizeof(*v));
        if (!v)
            return -1;
        h->heap = v;
        h->heap_cap = cap;
    }
    http_heap_set(h, h->heap_len++, r);
    http_heap_up(h, r->heap_idx);
    return 0;
}

static void http_heap_remove(struct http_server *h, struct http_req *r)
{
    size_t i = r->heap_idx;
    struct http_req *last = h->heap[--h->heap_len];

    if (i == h->heap_len)
        return;
    http_heap_set(h, i, last);
    http_heap_down(h, i);
    http_heap_up(h, last->heap_idx);
}

/* Takes a parked request out of the heap and marks it resumed. The caller then calls
 * http_resume_conn after dropping susp_mu: nobody else touches a parked connection, and
 * MHD_resume_connection takes libmicrohttpd's own lock. h->resuming keeps the daemon
 * (and so the connection) alive until that call is done. */
static void http_unpark_locked(struct http_server *h, struct http_req *r, int timed_out)
{
    http_heap_remove(h, r);
    r->susp = HTTP_SUSP_IDLE;
    r->timed_out = timed_out;
    h->resuming++;
}

static void http_resume_conn(struct http_server *h, struct MHD_Connection *conn)
{
    MHD_resume_connection(conn);
    pthread_mutex_lock(&h->susp_mu);
    h->resuming--;
    pthread_mutex_unlock(&h->susp_mu);
}

static void *http_timer_main(void *arg)
{
    struct http_server *h = arg;

    pthread_mutex_lock(&h->susp_mu);
    while (!h->quit) {
        struct timespec now;
        struct MHD_Connection *conn;
        struct http_req *r;

        if (h->heap_len == 0) {
            pthread_cond_wait(&h->susp_cond, &h->susp_mu);
            continue;
        }
        r = h->heap[0];
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (http_ts_before(&now, &r->deadline)) {
            pthread_cond_timedwait(&h->susp_cond, &h->susp_mu, &r->deadline);
            continue;
        }
        conn = r->conn;
        http_unpark_locked(h, r, 1);
        pthread_mutex_unlock(&h->susp_mu);
        http_resume_conn(h, conn);
        pthread_mutex_lock(&h->susp_mu);
    }
    pthread_mutex_unlock(&h->susp_mu);
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Suspend and resume
 * ------------------------------------------------------------------------------------ */

int http_suspend(struct http_req *r, int timeout_ms)
{
    struct http_server *h = r->h;

    if (!h)
        return -1; /* a detached request has no connection to park */
    if (timeout_ms < 0)
        timeout_ms = 0;
    pthread_mutex_lock(&h->susp_mu);
    if (r->susp != HTTP_SUSP_IDLE) {
        pthread_mutex_unlock(&h->susp_mu);
        return -1;
    }
    r->timed_out = 0;
    clock_gettime(CLOCK_MONOTONIC, &r->deadline);
    r->deadline.tv_sec += timeout_ms / 1000;
    r->deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (r->deadline.tv_nsec >= 1000000000L) {
        r->deadline.tv_sec++;
        r->deadline.tv_nsec -= 1000000000L;
    }
    r->susp = HTTP_SUSP_PENDING;
    pthread_mutex_unlock(&h->susp_mu);
    return 0;
}

void http_resume(struct http_req *r)
{
    struct http_server *h;
    struct MHD_Connection *conn;
    int resume = 0;

    if (!r || !r->h)
        return;
    h = r->h;
    conn = r->conn;
    pthread_mutex_lock(&h->susp_mu);
    if (r->susp == HTTP_SUSP_PENDING) {
        /* The handler is still running: record it, so the suspend turns into a resume. */
        r->susp = HTTP_SUSP_EARLY;
        r->timed_out = 0;
    } else if (r->susp == HTTP_SUSP_PARKED) {
        http_unpark_locked(h, r, 0);
        resume = 1;
    }
    pthread_mutex_unlock(&h->susp_mu);
    if (resume)
        http_resume_conn(h, conn);
}

int http_req_timed_out(const struct http_req *r)
{
    struct http_server *h = r->h;
    int t;

    pthread_mutex_lock(&h->susp_mu);
    t = r->timed_out;
    pthread_mutex_unlock(&h->susp_mu);
    return t;
}

enum http_park { HTTP_PARK_PARKED, HTTP_PARK_RESUMED, HTTP_PARK_MISUSE };

/* After a handler returned HTTP_SUSPEND: park the connection, or, when the resume came
 * first, tell the caller to run the handler again straight away. */
static enum http_park http_park(struct http_req *r)
{
    struct http_server *h = r->h;
    enum http_park res = HTTP_PARK_MISUSE;

    pthread_mutex_lock(&h->susp_mu);
    if (r->susp == HTTP_SUSP_PENDING && h->stopping) {
        /* No parking once the stop has begun: the daemon must end with none parked. */
        r->susp = HTTP_SUSP_IDLE;
        r->timed_out = 1;
        res = HTTP_PARK_RESUMED;
    } else if (r->susp == HTTP_SUSP_EARLY) {
        r->susp = HTTP_SUSP_IDLE;
        res = HTTP_PARK_RESUMED;
    } else if (r->susp == HTTP_SUSP_PENDING && http_heap_push(h, r) == 0) {
        r->susp = HTTP_SUSP_PARKED;
        r->stage = HTTP_STAGE_PARKED;
        MHD_suspend_connection(r->conn);
        if (r->heap_idx == 0)
            pthread_cond_signal(&h->susp_cond);
        res = HTTP_PARK_PARKED;
    } else {
        r->susp = HTTP_SUSP_IDLE;
    }
    pthread_mutex_unlock(&h->susp_mu);
    return res;
}

/* ---------------------------------------------------------------------------------------
 * Request accessors
 * ------------------------------------------------------------------------------------ */

const char *http_req_method(const struct http_req *r)
{
    return r->method;
}

const char *http_req_path(const struct http_req *r)
{
    return r->path ? r->path : "/";
}

const char *http_req_query(const struct http_req *r, const char *key)
{
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key) : NULL;
}

const char *http_req_raw_query(const struct http_req *r)
{
    return r->raw_query ? r->raw_query : "";
}

const char *http_req_header(const struct http_req *r, const char *name)
{
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name) : NULL;
}

const char *http_req_body(const struct http_req *r, size_t *len)
{
    if (len)
        *len = r->body_len;
    return r->body ? r->body : "";
}

const char *http_req_remote_ip(const struct http_req *r)
{
    return r->remote_ip;
}

int http_req_is_tls(const struct http_req *r)
{
    return r->tls;
}

const struct store_domain *http_req_tenant(const struct http_req *r)
{
    return r->has_tenant ? &r->tenant : NULL;
}

const char *http_req_host_kind(const struct http_req *r)
{
    return r->host_kind;
}

const char *http_req_host(const struct http_req *r)
{
    return r->host;
}

const struct store_account *http_req_account(const struct http_req *r)
{
    return r->has_acct ? &r->acct : NULL;
}

struct store *http_req_store(const struct http_req *r)
{
    return r->h ? r->h->store : NULL;
}

void http_req_set_data(struct http_req *r, void *data)
{
    r->data = data;
}

void *http_req_data(const struct http_req *r)
{
    return r->data;
}

/* ---------------------------------------------------------------------------------------
 * Responses
 * ------------------------------------------------------------------------------------ */

/* Header names are tokens; values may not hold CR, LF or NUL (response splitting). */
static int http_header_ok(const char *name, const char *value)
{
    if (!name || !*name || !value)
        return 0;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == ':' || (unsigned char)*p >= 0x7f)
            return 0;
    return strpbrk(value, "\r\n") == NULL;
}

int http_add_header(struct http_req *r, const char *name, const char *value)
{
    struct http_hdr *hd;

    if (!http_header_ok(name, value))
        return -1;
    hd = calloc(1, sizeof(*hd));
    if (!hd)
        return -1;
    hd->name = strdup(name);
    hd->value = strdup(value);
    if (!hd->name || !hd->value) {
        free(hd->name);
        free(hd->value);
        free(hd);
        return -1;
    }
    *r->hdr_tail = hd;
    r->hdr_tail = &hd->next;
    return 0;
}

int http_respond(struct http_req *r, int status, const char *ctype, const void *body, size_t len)
{
    char *copy = NULL, *ct = NULL;

    if (status < 100 || status > 999)
        return -1;
    if (len > 0) {
        copy = malloc(len);
        ct = strdup(ctype && *ctype ? ctype : "application/octet-stream");
        if (!copy || !ct || strpbrk(ct, "\r\n")) {
            free(copy);
            free(ct);
            return -1;
        }
        memcpy(copy, body, len);
    } else if (ctype && *ctype && !strpbrk(ctype, "\r\n")) {
        ct = strdup(ctype);
    }
    free(r->resp_body);
    free(r->ctype);
    r->resp_body = copy;
    r->resp_len = len;
    r->ctype = ct;
    r->status = status;
    return 0;
}

int http_respond_text(struct http_req *r, int status, const char *text)
{
    return http_respond(r, status, "text/plain; charset=utf-8", text, text ? strlen(text) : 0);
}

static enum MHD_Result http_queue(struct http_req *r)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (r->status == 0 && http_respond_text(r, 500, "Internal Server Error\n") != 0)
        return MHD_NO;
    r->stage = HTTP_STAGE_DONE;
    resp = MHD_create_response_from_buffer(
        r->resp_len, r->resp_body, r->resp_body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    r->resp_body = NULL; /* the response owns it now */
    for (struct http_hdr *hd = r->hdrs; hd; hd = hd->next)
        MHD_add_response_header(resp, hd->name, hd->value);
    if (r->ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_SERVER, "Polaris");
    if (__atomic_load_n(&r->h->stopping, __ATOMIC_RELAXED))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Answers a request the front end refuses by itself. */
static enum MHD_Result http_fail(struct http_req *r, int status, const char *text)
{
    http_respond_text(r, status, text);
    return http_queue(r);
}

/* Does the request carry a body? */
static int http_has_body(struct http_req *r)
{
    const char *cl = http_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);

    if (http_req_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING))
        return 1;
    return cl && strspn(cl, "0 \t") != strlen(cl);
}

/* Refuses a request whose headers are in (bad host, unknown path, auth, size). With a
 * body, the answer goes out at once and the body is never read (libmicrohttpd then
 * closes the connection); without one it waits for the end of the request so that the
 * connection stays open: clients retry a 401 with credentials on the same connection. */
static enum MHD_Result http_refuse(struct http_req *r, int status, const char *text)
{
    if (http_has_body(r))
        return http_fail(r, status, text);
    http_respond_text(r, status, text);
    r->stage = HTTP_STAGE_REFUSED;
    return MHD_YES;
}

/* ---------------------------------------------------------------------------------------
 * Authentication
 * ------------------------------------------------------------------------------------ */

/* Splits "Basic base64(login:password)" into buf: buf holds "login\0password\0".
 * Returns 0, 1 when there is no Basic credential at all, -1 when it is malformed. */
static int http_basic_parse(const char *hdr, char *buf, size_t buflen, const char **login,
                            const char **password)
{
    size_t n;
    long len;
    char *colon;

    if (!hdr)
        return 1;
    while (*hdr == ' ' || *hdr == '\t')
        hdr++;
    if (strncasecmp(hdr, "Basic", 5) != 0 || (hdr[5] != ' ' && hdr[5] != '\t'))
        return 1;
    hdr += 5;
    while (*hdr == ' ' || *hdr == '\t')
        hdr++;
    n = strcspn(hdr, " \t");
    if (n == 0 || n > HTTP_AUTH_B64_MAX || hdr[n + strspn(hdr + n, " \t")] != '\0')
        return -1;
    len = b64_decode(hdr, n, (unsigned char *)buf, buflen - 1, 0);
    if (len < 0)
        return -1;
    buf[len] = '\0';
    colon = memchr(buf, ':', (size_t)len);
    if (!colon || colon == buf || memchr(buf, '\0', (size_t)len))
        return -1;
    *colon = '\0';
    *login = buf;
    *password = colon + 1;
    return 0;
}

static enum MHD_Result http_challenge(struct http_req *r)
{
    char v[300];

    snprintf(v, sizeof(v), "Basic realm=\"%s\", charset=\"UTF-8\"",
             r->has_tenant ? r->tenant.name : "Polaris");
    http_add_header(r, "WWW-Authenticate", v);
    return http_refuse(r, 401, "Unauthorized\n");
}

/* Runs Basic auth and the gate for an HTTP_ROUTE_AUTH route. On success r->stage stays
 * HTTP_STAGE_NEW; otherwise the refusal is under way (see http_refuse). */
static enum MHD_Result http_authenticate(struct http_req *r)
{
    char buf[HTTP_AUTH_B64_MAX], msg[128], retry[24];
    const char *login = NULL, *password = NULL;
    enum auth_result ar;
    int rc;

    rc = http_basic_parse(http_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION), buf, sizeof(buf),
                          &login, &password);
    if (rc != 0) {
        explicit_bzero(buf, sizeof(buf));
        return http_challenge(r);
    }
    ar = auth_verify(r->h->auth, login, password, r->has_tenant ? r->tenant.name : NULL,
                     r->remote_ip, &r->acct);
    explicit_bzero(buf, sizeof(buf));
    switch (ar) {
    case AUTH_OK:
        break;
    case AUTH_THROTTLED:
        snprintf(retry, sizeof(retry), "%d",
                 r->h->cfg->auth_fail_window > 0 ? r->h->cfg->auth_fail_window : 60);
        http_add_header(r, "Retry-After", retry);
        return http_refuse(r, 429, "Too Many Requests\n");
    case AUTH_ERROR:
        return http_refuse(r, 500, "Internal Server Error\n");
    default:
        return http_challenge(r);
    }
    r->has_acct = 1;
    /* Engines never need the hash; keep it out of per-request memory. */
    explicit_bzero(r->acct.pwhash, sizeof(r->acct.pwhash));
    if (!gate_allows(r->acct.type, r->route.service)) {
        snprintf(msg, sizeof(msg), "mailbox type does not include %s\n",
                 gate_service_name(r->route.service));
        return http_refuse(r, 403, msg);
    }
    return MHD_YES;
}

/* ---------------------------------------------------------------------------------------
 * The request life cycle
 * ------------------------------------------------------------------------------------ */

static void http_req_free(struct http_req *r);

struct http_req *http_req_detached(const char *method, const char *path,
                                   const struct store_account *acct, const char *remote_ip)
{
    struct http_req *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    snprintf(r->method, sizeof(r->method), "%s", method ? method : "POST");
    r->path = strdup(path ? path : "/");
    r->raw_uri = strdup(r->path ? r->path : "/");
    r->raw_query = "";
    snprintf(r->remote_ip, sizeof(r->remote_ip), "%s", remote_ip ? remote_ip : "127.0.0.1");
    r->hdr_tail = &r->hdrs;
    if (acct) {
        r->acct = *acct;
        r->has_acct = 1;
    }
    if (!r->path || !r->raw_uri) {
        http_req_free(r);
        return NULL;
    }
    return r;
}

void http_req_detached_free(struct http_req *r)
{
    if (r)
        http_req_free(r);
}

static void http_req_free(struct http_req *r)
{
    struct http_hdr *hd = r->hdrs;

    while (hd) {
        struct http_hdr *next = hd->next;
        free(hd->name);
        free(hd->value);
        free(hd);
        hd = next;
    }
    free(r->raw_uri);
    free(r->path);
    free(r->body);
    free(r->ctype);
    free(r->resp_body);
    explicit_bzero(&r->acct, sizeof(r->acct));
    free(r);
}

static void http_remote_ip(struct http_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    snprintf(r->remote_ip, sizeof(r->remote_ip), "-");
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, r->remote_ip,
                  sizeof(r->remote_ip));
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                  r->remote_ip, sizeof(r->remote_ip));
}

static struct http_req *http_req_new(struct http_listener *l, struct MHD_Connection *conn,
                                     const char *uri)
{
    struct http_req *r = calloc(1, sizeof(*r));
    char *q;

    if (!r)
        return NULL;
    r->h = l->h;
    r->conn = conn;
    r->tls = l->tls;
    r->hdr_tail = &r->hdrs;
    clock_gettime(CLOCK_MONOTONIC, &r->start);
    r->raw_uri = strdup(uri ? uri : "");
    if (!r->raw_uri) {
        free(r);
        return NULL;
    }
    q = strchr(r->raw_uri, '?');
    r->raw_query = q ? q + 1 : "";
    http_remote_ip(r);
    pthread_mutex_lock(&l->h->susp_mu);
    l->h->active++;
    pthread_mutex_unlock(&l->h->susp_mu);
    return r;
}

static void *http_uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
    return http_req_new(cls, conn, uri);
}

/* Host → tenant. r->stage stays HTTP_STAGE_NEW to go on; otherwise see http_refuse. */
static enum MHD_Result http_resolve(struct http_req *r)
{
    const char *host = http_req_header(r, MHD_HTTP_HEADER_HOST);
    int rc;

    if (!host || !*host)
        return MHD_YES; /* HTTP/1.0 without Host: names no tenant */
    if (router_host_normalize(host, r->host, sizeof(r->host)) != 0) {
        r->host[0] = '\0'; /* not a name: keep it out of the log */
        return http_refuse(r, 400, "Bad Request\n");
    }
    rc = router_resolve_host(r->h->store, r->h->cfg->web_base, r->host, &r->tenant, &r->host_kind);
    if (rc == 0) {
        r->has_tenant = 1;
    } else if (rc != STORE_ENOTFOUND) {
        log_error("http", "tenant lookup for %s failed (%d)", r->host, rc);
        return http_refuse(r, 503, "Service Unavailable\n");
    }
    return MHD_YES;
}

static void http_match(struct http_req *r)
{
    const struct http_route *rt;

    pthread_rwlock_rdlock(&r->h->routes_lock);
    rt = router_match(r->h->routes, r->path);
    if (rt) {
        r->route = *rt;
        r->route.path = NULL; /* the table's string may go when the route is replaced */
        r->has_route = 1;
    }
    pthread_rwlock_unlock(&r->h->routes_lock);
}

/* 413 from Content-Length before reading a byte of the body. */
static int http_declared_too_big(struct http_req *r)
{
    const char *cl = http_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    char *end;
    unsigned long long v;

    if (!cl)
        return 0;
    errno = 0;
    v = strtoull(cl, &end, 10);
    if (errno == ERANGE)
        return 1;
    return end != cl && v > (unsigned long long)r->h->cfg->max_request_bytes;
}

static enum MHD_Result http_on_headers(struct http_req *r, const char *url, const char *method)
{
    enum MHD_Result ret;

    snprintf(r->method, sizeof(r->method), "%s", method ? method : "");
    r->path = strdup(url && *url ? url : "/");
    if (!r->path)
        return MHD_NO;
    ret = http_resolve(r);
    if (ret != MHD_YES || r->stage != HTTP_STAGE_NEW)
        return ret;
    http_match(r);
    /* A host naming no tenant and an unknown path look the same from outside. */
    if (!r->has_route || (!r->has_tenant && !(r->route.flags & HTTP_ROUTE_NOTENANT)))
        return http_refuse(r, 404, HTTP_NEUTRAL_404);
    if (http_declared_too_big(r))
        return http_refuse(r, 413, "Payload Too Large\n");
    if (r->route.flags & HTTP_ROUTE_AUTH) {
        ret = http_authenticate(r);
        if (ret != MHD_YES || r->stage != HTTP_STAGE_NEW)
            return ret;
    }
    r->stage = HTTP_STAGE_BODY;
    return MHD_YES;
}

/* Appends a chunk of the body. Past the limit the rest is read and dropped so the 413 can
 * still be sent; a client that keeps going well past it (as much again, at least 1 MiB)
 * is cut off. */
static enum MHD_Result http_on_body(struct http_req *r, const char *data, size_t *size)
{
    size_t n = *size, max = (size_t)r->h->cfg->max_request_bytes;
    size_t allowance = max > HTTP_DISCARD_MIN ? max : HTTP_DISCARD_MIN;

    *size = 0;
    if (!r->too_big && r->body_len + n > max) {
        r->too_big = 1;
        r->discarded = r->body_len;
        free(r->body);
        r->body = NULL;
        r->body_len = r->body_cap = 0;
    }
    if (r->too_big) {
        r->discarded += n;
        return r->discarded > max + allowance ? MHD_NO : MHD_YES;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        char *b;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        b = realloc(r->body, cap);
        if (!b)
            return MHD_NO;
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return MHD_YES;
}

static enum http_action http_not_built(struct http_req *r)
{
    http_respond_text(r, 501, "engine not available\n");
    return HTTP_RESPOND;
}

/* A handler answered after all: forget a suspend it may have asked for, so that a late
 * http_resume (say, from a subscription not yet dropped) finds nothing to do. */
static void http_suspend_cancel(struct http_req *r)
{
    pthread_mutex_lock(&r->h->susp_mu);
    r->susp = HTTP_SUSP_IDLE;
    pthread_mutex_unlock(&r->h->susp_mu);
}

static enum MHD_Result http_dispatch(struct http_req *r, enum http_phase phase)
{
    for (;;) {
        enum http_action act;

        /* Not parked while the handler runs (this may be a resumed request). */
        r->stage = HTTP_STAGE_BODY;
        r->handler_ran = 1;
        act =
            r->route.handler ? r->route.handler(r, phase, r->route.engine_ctx) : http_not_built(r);
        if (act != HTTP_SUSPEND) {
            http_suspend_cancel(r);
            return http_queue(r);
        }
        switch (http_park(r)) {
        case HTTP_PARK_PARKED:
            return MHD_YES;
        case HTTP_PARK_RESUMED:
            phase = HTTP_PHASE_RESUMED;
            continue;
        default:
            log_error("http", "%s handler returned HTTP_SUSPEND but could not be suspended",
                      r->route.engine ? r->route.engine : "engine");
            return http_fail(r, 500, "Internal Server Error\n");
        }
    }
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_size, void **con_cls)
{
    struct http_req *r = *con_cls;

    (void)version;
    if (!r) {
        r = http_req_new(cls, conn, url);
        if (!r)
            return MHD_NO;
        *con_cls = r;
    }
    switch (r->stage) {
    case HTTP_STAGE_NEW:
        return http_on_headers(r, url, method);
    case HTTP_STAGE_BODY:
        if (*upload_size > 0)
            return http_on_body(r, upload_data, upload_size);
        if (r->too_big)
            return http_fail(r, 413, "Payload Too Large\n");
        return http_dispatch(r, HTTP_PHASE_REQUEST);
    case HTTP_STAGE_PARKED:
        return http_dispatch(r, HTTP_PHASE_RESUMED);
    case HTTP_STAGE_REFUSED:
        if (*upload_size > 0) {
            *upload_size = 0;
            return MHD_YES;
        }
        return http_queue(r);
    case HTTP_STAGE_DONE:
    default:
        *upload_size = 0;
        return MHD_YES;
    }
}

static void http_log_request(struct http_req *r, enum MHD_RequestTerminationCode toe)
{
    char ip[HTTP_LOG_FIELD_MAX], host[HTTP_LOG_FIELD_MAX], path[HTTP_LOG_FIELD_MAX];
    char user[HTTP_LOG_FIELD_MAX], method[32];

    log_info("http", "%s %s %s %s %d %s %lldms%s", http_log_field(r->remote_ip, ip, sizeof(ip)),
             http_log_field(r->method, method, sizeof(method)),
             http_log_field(r->host, host, sizeof(host)),
             http_log_field(r->path, path, sizeof(path)), r->status,
             http_log_field(r->has_acct ? r->acct.address : NULL, user, sizeof(user)),
             (long long)http_ms_since(&r->start),
             toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    struct http_listener *l = cls;
    struct http_req *r = *con_cls;

    (void)conn;
    if (!r)
        return;
    *con_cls = NULL;
    pthread_mutex_lock(&l->h->susp_mu);
    if (r->susp == HTTP_SUSP_PARKED)
        http_heap_remove(l->h, r);
    r->susp = HTTP_SUSP_IDLE;
    pthread_mutex_unlock(&l->h->susp_mu);
    if (r->handler_ran && r->route.cleanup)
        r->route.cleanup(r, r->route.engine_ctx);
    http_log_request(r, toe);
    http_req_free(r);
    pthread_mutex_lock(&l->h->susp_mu);
    l->h->active--;
    pthread_mutex_unlock(&l->h->susp_mu);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
/* libmicrohttpd's own diagnostics (mostly failed TLS handshakes and bad requests from
 * clients): useful when debugging, noise otherwise. */
static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    size_t n;

    (void)cls;
    vsnprintf(buf, sizeof(buf), fmt, ap);
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    log_debug("http", "libmicrohttpd: %s", buf);
}
#pragma GCC diagnostic pop

/* ---------------------------------------------------------------------------------------
 * Server
 * ------------------------------------------------------------------------------------ */

static const struct http_route http_default_routes[] = {
    {"/Microsoft-Server-ActiveSync", HTTP_ROUTE_PREFIX | HTTP_ROUTE_NOCASE | HTTP_ROUTE_AUTH,
     SVC_EAS, NULL, NULL, NULL, "eas"},
    {"/caldav", HTTP_ROUTE_PREFIX | HTTP_ROUTE_AUTH, SVC_CALDAV, NULL, NULL, NULL, "dav"},
    {"/carddav", HTTP_ROUTE_PREFIX | HTTP_ROUTE_AUTH, SVC_CARDDAV, NULL, NULL, NULL, "dav"},
    {"/principals", HTTP_ROUTE_PREFIX | HTTP_ROUTE_AUTH, SVC_CALDAV, NULL, NULL, NULL, "dav"},
    {"/.well-known/caldav", 0, SVC_NONE, NULL, NULL, NULL, "dav"},
    {"/.well-known/carddav", 0, SVC_NONE, NULL, NULL, NULL, "dav"},
    {"/autodiscover/autodiscover.xml", HTTP_ROUTE_NOCASE | HTTP_ROUTE_AUTH, SVC_NONE, NULL, NULL,
     NULL, "autodiscover"},
    {"/autodiscover/autodiscover.json", HTTP_ROUTE_NOCASE, SVC_NONE, NULL, NULL, NULL,
     "autodiscover"},
    {"/mail/config-v1.1.xml", 0, SVC_NONE, NULL, NULL, NULL, "autodiscover"},
    {"/.well-known/autoconfig/mail/config-v1.1.xml", 0, SVC_NONE, NULL, NULL, NULL, "autodiscover"},
    {"/profile.mobileconfig", HTTP_ROUTE_AUTH, SVC_NONE, NULL, NULL, NULL, "autodiscover"},
};

struct http_server *http_server_new(const struct http_config *hc, char *err, size_t errlen)
{
    struct http_server *h = calloc(1, sizeof(*h));
    pthread_condattr_t ca;

    if (!h || !hc || !hc->store || !hc->auth || !hc->cfg) {
        http_err(err, errlen, "http: missing store, auth or configuration");
        free(h);
        return NULL;
    }
    h->store = hc->store;
    h->auth = hc->auth;
    h->cfg = hc->cfg;
    h->plain = (struct http_listener){.h = h, .fd = -1, .tls = 0};
    h->secure = (struct http_listener){.h = h, .fd = -1, .tls = 1};
    pthread_rwlock_init(&h->routes_lock, NULL);
    pthread_mutex_init(&h->susp_mu, NULL);
    /* Deadlines are monotonic: a clock step must not end or stretch every long poll. */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->susp_cond, &ca);
    pthread_condattr_destroy(&ca);
    h->routes = router_table_new();
    if (!h->routes)
        goto err;
    for (size_t i = 0; i < sizeof(http_default_routes) / sizeof(http_default_routes[0]); i++)
        if (router_table_add(h->routes, &http_default_routes[i]) != 0)
            goto err;
    return h;
err:
    http_err(err, errlen, "http: out of memory");
    http_server_free(h);
    return NULL;
}

int http_server_route(struct http_server *h, const struct http_route *rt)
{
    int rc;

    pthread_rwlock_wrlock(&h->routes_lock);
    rc = router_table_add(h->routes, rt);
    pthread_rwlock_unlock(&h->routes_lock);
    return rc;
}

/* Opens the listening socket for "host:port" ("" host = every address). */
static int http_listen_socket(const char *addr, char *err, size_t errlen)
{
    char host[CFG_ADDR_MAX], port_s[8];
    struct addrinfo hints = {0}, *res = NULL, *ai;
    int port, fd = -1, rc, one = 1;

    if (config_split_addr(addr, host, sizeof(host), &port) != 0) {
        http_err(err, errlen, "http: bad listen address \"%s\"", addr);
        return -1;
    }
    snprintf(port_s, sizeof(port_s), "%d", port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host[0] ? host : NULL, port_s, &hints, &res);
    if (rc != 0) {
        http_err(err, errlen, "http: %s: %s", addr, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6 && !host[0]) {
            int off = 0; /* the wildcard serves IPv4 as well */
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, HTTP_LISTEN_BACKLOG) == 0)
            break;
        rc = errno;
        close(fd);
        fd = -1;
        errno = rc;
    }
    if (fd < 0)
        http_err(err, errlen, "http: cannot listen on %s: %s", addr, strerror(errno));
    freeaddrinfo(res);
    return fd;
}

static int http_listener_port(struct http_listener *l)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_BIND_PORT);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (di && di->port)
        return di->port;
    /* Fallback for builds that do not report it: ask the socket. */
    if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

static int http_listener_start(struct http_listener *l, const char *addr, const char *cert,
                               const char *key, char *err, size_t errlen)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    const struct config *cfg = l->h->cfg;
    unsigned threads = cfg->http_threads > 0 ? (unsigned)cfg->http_threads : HTTP_DEFAULT_THREADS;
    struct MHD_OptionItem opts[16];
    int n = 0;

    /* First, so that libmicrohttpd's messages about the other options come here too. */
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)http_mhd_log, l};
    if (l->tls) {
        if (!cert || !*cert || !key || !*key) {
            http_err(err, errlen, "http: TLS listener %s needs a certificate and key", addr);
            return -1;
        }
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            http_err(err, errlen, "http: libmicrohttpd was built without TLS");
            return -1;
        }
        l->cert_pem = tls_read_file(cert, HTTP_PEM_MAX, err, errlen);
        l->key_pem = l->cert_pem ? tls_read_file(key, HTTP_PEM_MAX, err, errlen) : NULL;
        if (!l->key_pem)
            return -1;
        flags |= MHD_USE_TLS;
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, l->cert_pem};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, l->key_pem};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                            (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"};
    }
    l->fd = http_listen_socket(addr, err, errlen);
    if (l->fd < 0)
        return -1;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, l->fd, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, threads, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, HTTP_CONN_LIMIT, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, HTTP_IDLE_TIMEOUT_S, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)http_uri_cb, l};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)http_completed, l};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    l->d = MHD_start_daemon(flags, 0, NULL, NULL, http_access, l, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
    if (!l->d) {
        http_err(err, errlen, "http: cannot start the %s listener on %s", l->tls ? "HTTPS" : "HTTP",
                 addr);
        close(l->fd);
        l->fd = -1;
        return -1;
    }
    l->port = http_listener_port(l);
    log_debug("http", "listening on %s (%s, port %d)", addr, l->tls ? "https" : "http", l->port);
    return 0;
}

int http_server_start(struct http_server *h, const char *plain_addr, const char *tls_addr,
                      const char *cert_pem_path, const char *key_pem_path, char *err, size_t errlen)
{
    if (!h->timer_started) {
        if (pthread_create(&h->timer, NULL, http_timer_main, h) != 0) {
            http_err(err, errlen, "http: cannot start the timer thread");
            return -1;
        }
        h->timer_started = 1;
    }
    if (plain_addr && *plain_addr && !h->plain.d &&
        http_listener_start(&h->plain, plain_addr, NULL, NULL, err, errlen) != 0)
        return -1;
    if (tls_addr && *tls_addr && !h->secure.d &&
        http_listener_start(&h->secure, tls_addr, cert_pem_path, key_pem_path, err, errlen) != 0)
        return -1;
    return 0;
}

/* Ends every parked wait as a timeout, so long polls answer before the listeners go. */
static void http_resume_all(struct http_server *h)
{
    pthread_mutex_lock(&h->susp_mu);
    __atomic_store_n(&h->stopping, 1, __ATOMIC_RELAXED);
    while (h->heap_len > 0) {
        struct http_req *r = h->heap[0];
        struct MHD_Connection *conn = r->conn;
        http_unpark_locked(h, r, 1);
        pthread_mutex_unlock(&h->susp_mu);
        http_resume_conn(h, conn);
        pthread_mutex_lock(&h->susp_mu);
    }
    pthread_mutex_unlock(&h->susp_mu);
}

static void http_wait_idle(struct http_server *h, int grace_ms)
{
    struct timespec t0, nap = {0, HTTP_STOP_POLL_MS * 1000000L};

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        long active;
        pthread_mutex_lock(&h->susp_mu);
        active = h->active;
        pthread_mutex_unlock(&h->susp_mu);
        if (active <= 0 || http_ms_since(&t0) >= grace_ms)
            break;
        /* A wait that began after http_resume_all is ended by http_suspend itself; a
         * resumed-again request may re-park only until it sees stopping. */
        http_resume_all(h);
        nanosleep(&nap, NULL);
    }
}

/* Waits out resumes that are between leaving the heap and MHD_resume_connection. */
static void http_wait_resuming(struct http_server *h)
{
    struct timespec nap = {0, 1000000L};

    for (;;) {
        int busy;
        pthread_mutex_lock(&h->susp_mu);
        busy = h->resuming;
        pthread_mutex_unlock(&h->susp_mu);
        if (!busy)
            return;
        nanosleep(&nap, NULL);
    }
}

static void http_listener_stop(struct http_listener *l)
{
    if (!l->d)
        return;
    MHD_stop_daemon(l->d);
    l->d = NULL;
    /* After a quiesce the socket is ours; otherwise MHD_stop_daemon closed it. */
    if (l->quiesced && l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    l->quiesced = 0;
}

static void http_listener_quiesce(struct http_listener *l)
{
    if (l->d && !l->quiesced)
        l->quiesced = MHD_quiesce_daemon(l->d) != MHD_INVALID_SOCKET;
}

void http_server_stop(struct http_server *h, int grace_ms)
{
    if (!h)
        return;
    /* Stop accepting first; quiesce hands the listening socket back to us. */
    http_listener_quiesce(&h->plain);
    http_listener_quiesce(&h->secure);
    http_resume_all(h);
    http_wait_idle(h, grace_ms);
    http_resume_all(h);
    http_wait_resuming(h);
    http_listener_stop(&h->plain);
    http_listener_stop(&h->secure);
    if (h->timer_started) {
        pthread_mutex_lock(&h->susp_mu);
        h->quit = 1;
        pthread_cond_signal(&h->susp_cond);
        pthread_mutex_unlock(&h->susp_mu);
        pthread_join(h->timer, NULL);
        h->timer_started = 0;
    }
}

void http_server_free(struct http_server *h)
{
    if (!h)
        return;
    http_server_stop(h, 0);
    free(h->plain.cert_pem);
    free(h->plain.key_pem);
    if (h->secure.key_pem)
        explicit_bzero(h->secure.key_pem, strlen(h->secure.key_pem));
    free(h->secure.cert_pem);
    free(h->secure.key_pem);
    router_table_free(h->routes);
    free(h->heap);
    pthread_rwlock_destroy(&h->routes_lock);
    pthread_mutex_destroy(&h->susp_mu);
    pthread_cond_destroy(&h->susp_cond);
    free(h);
}

int http_server_port(struct http_server *h, int tls)
{
    struct http_listener *l = tls ? &h->secure : &h->plain;

    return l->d ? l->port : 0;
}
