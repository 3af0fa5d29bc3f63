/*
 * test_http.c — the HTTP front end end to end in one process: a real http_server on
 * 127.0.0.1 port 0 with a real store and auth, driven by plain-socket clients.
 *
 * Covers routing refusals (400/401/403/404/413/501), request accessors, long polls woken
 * by a store commit from another thread, the suspend timeout, a resume that arrives
 * before the handler returns HTTP_SUSPEND, many parked requests woken at once, graceful
 * stop, cleanup exactly once per request, and the HTTPS listener with the generated
 * certificate (TLS 1.2+ only).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "server/server.h"

#define RESP_MAX   16384
#define ALICE      "alice@example.com"
#define ALICE_PW   "Alice-Pass1!"
#define BOB        "bob@example.com"
#define BOB_PW     "Bob-Pass1!"
#define CAROL      "carol@example.org"
#define CAROL_PW   "Carol-Pass1!"
#define HOST       "example--com.w.test"
#define MAX_BODY   4096
#define MANY_WAITS 200

struct fixture {
    char dir[64];
    struct config cfg;
    struct store *st;
    struct auth *auth;
    struct http_server *h;
    int port, tls_port;
};

static struct fixture fx;

/* Requests that reached a test handler, and cleanups seen: they must end up equal. */
static atomic_int g_started, g_cleanups, g_double_cleanup, g_waiting;

/* ---------------------------------------------------------------------------------------
 * Test routes
 * ------------------------------------------------------------------------------------ */

struct wait_state {
    struct store_sub *sub;
    pthread_t resumer;
    int has_resumer;
    int rounds;
    int cleaned;
};

static struct wait_state *wait_state(struct http_req *r)
{
    struct wait_state *w = http_req_data(r);

    if (!w) {
        w = calloc(1, sizeof(*w));
        assert_non_null(w);
        http_req_set_data(r, w);
        atomic_fetch_add(&g_started, 1);
    }
    return w;
}

static void test_cleanup(struct http_req *r, void *ctx)
{
    struct wait_state *w = http_req_data(r);

    (void)ctx;
    if (!w)
        return;
    if (w->cleaned++)
        atomic_fetch_add(&g_double_cleanup, 1);
    if (w->sub)
        store_unsubscribe(http_req_store(r), w->sub);
    if (w->has_resumer)
        pthread_join(w->resumer, NULL);
    free(w);
    atomic_fetch_add(&g_cleanups, 1);
}

/* Echoes what the front end parsed. */
static enum http_action h_echo(struct http_req *r, enum http_phase phase, void *ctx)
{
    const struct store_account *a = http_req_account(r);
    const struct store_domain *t = http_req_tenant(r);
    const char *x = http_req_query(r, "x"), *hv = http_req_header(r, "X-Test");
    char out[1024];
    size_t len;

    (void)phase;
    (void)ctx;
    (void)wait_state(r);
    http_req_body(r, &len);
    snprintf(out, sizeof(out),
             "user=%s tenant=%s kind=%s host=%s path=%s x=%s raw=%s hdr=%s len=%zu ip=%s "
             "tls=%d method=%s\n",
             a ? a->address : "-", t ? t->name : "-",
             http_req_host_kind(r) ? http_req_host_kind(r) : "-", http_req_host(r),
             http_req_path(r), x ? x : "-", http_req_raw_query(r), hv ? hv : "-", len,
             http_req_remote_ip(r), http_req_is_tls(r), http_req_method(r));
    http_add_header(r, "X-Echo", "yes");
    assert_int_equal(http_add_header(r, "X-Bad", "a\r\nInjected: 1"), -1);
    http_respond_text(r, 200, out);
    return HTTP_RESPOND;
}

static void on_commit(const char *address, int64_t modseq, void *ctx)
{
    (void)address;
    (void)modseq;
    http_resume(ctx);
}

/* A long poll: waits for a commit to the user's store or ?ms= milliseconds. The suspend
 * comes before the subscription so that no commit can slip between them. */
static enum http_action h_wait(struct http_req *r, enum http_phase phase, void *ctx)
{
    struct wait_state *w = wait_state(r);
    const char *ms = http_req_query(r, "ms");

    (void)ctx;
    if (phase == HTTP_PHASE_REQUEST) {
        assert_int_equal(http_suspend(r, ms ? atoi(ms) : 10000), 0);
        w->sub = store_subscribe(http_req_store(r), http_req_account(r)->address, on_commit, r);
        assert_non_null(w->sub);
        atomic_fetch_add(&g_waiting, 1);
        return HTTP_SUSPEND;
    }
    http_respond_text(r, 200, http_req_timed_out(r) ? "timeout\n" : "event\n");
    return HTTP_RESPOND;
}

static void *resume_later(void *arg)
{
    struct timespec ts = {0, (long)(rand() % 300) * 1000L};

    nanosleep(&ts, NULL);
    http_resume(arg);
    return NULL;
}

/* Resumes itself: ?mode=inline before returning HTTP_SUSPEND, else from a thread racing
 * the return. Either way the resume must not be lost. */
static enum http_action h_early(struct http_req *r, enum http_phase phase, void *ctx)
{
    struct wait_state *w = wait_state(r);
    const char *mode = http_req_query(r, "mode");

    (void)ctx;
    if (phase == HTTP_PHASE_REQUEST) {
        assert_int_equal(http_suspend(r, 10000), 0);
        /* a second suspend while one is pending is refused */
        assert_int_equal(http_suspend(r, 10000), -1);
        if (mode && strcmp(mode, "inline") == 0) {
            http_resume(r);
            http_resume(r); /* idempotent */
        } else {
            assert_int_equal(pthread_create(&w->resumer, NULL, resume_later, r), 0);
            w->has_resumer = 1;
        }
        return HTTP_SUSPEND;
    }
    http_respond_text(r, 200, http_req_timed_out(r) ? "timeout\n" : "early\n");
    return HTTP_RESPOND;
}

/* Suspends twice in a row (re-arming after the first wake), as a Ping would. */
static enum http_action h_twice(struct http_req *r, enum http_phase phase, void *ctx)
{
    struct wait_state *w = wait_state(r);

    (void)ctx;
    if (phase == HTTP_PHASE_REQUEST || w->rounds < 2) {
        w->rounds++;
        assert_int_equal(http_suspend(r, 50), 0);
        return HTTP_SUSPEND;
    }
    http_respond_text(r, 200, http_req_timed_out(r) ? "twice\n" : "no\n");
    return HTTP_RESPOND;
}

static enum http_action h_bad_suspend(struct http_req *r, enum http_phase phase, void *ctx)
{
    (void)phase;
    (void)ctx;
    (void)wait_state(r);
    return HTTP_SUSPEND; /* without http_suspend: the front end answers 500 */
}

static enum http_action h_silent(struct http_req *r, enum http_phase phase, void *ctx)
{
    (void)phase;
    (void)ctx;
    (void)wait_state(r);
    return HTTP_RESPOND; /* no response set: 500 */
}

static void add_routes(struct http_server *h)
{
    const struct http_route routes[] = {
        {"/test/echo", HTTP_ROUTE_AUTH, SVC_NONE, h_echo, test_cleanup, NULL, "test"},
        {"/test/open", HTTP_ROUTE_PREFIX, SVC_NONE, h_echo, test_cleanup, NULL, "test"},
        {"/test/any", HTTP_ROUTE_NOTENANT, SVC_NONE, h_echo, test_cleanup, NULL, "test"},
        {"/test/wait", HTTP_ROUTE_AUTH, SVC_EAS, h_wait, test_cleanup, NULL, "test"},
        {"/test/early", 0, SVC_NONE, h_early, test_cleanup, NULL, "test"},
        {"/test/twice", 0, SVC_NONE, h_twice, test_cleanup, NULL, "test"},
        {"/test/bad", 0, SVC_NONE, h_bad_suspend, test_cleanup, NULL, "test"},
        {"/test/silent", 0, SVC_NONE, h_silent, test_cleanup, NULL, "test"},
    };

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        assert_int_equal(http_server_route(h, &routes[i]), 0);
}

/* ---------------------------------------------------------------------------------------
 * A minimal HTTP/1.1 client on plain sockets
 * ------------------------------------------------------------------------------------ */

static int client_connect(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {30, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the server may close early (e.g. 413); the response tells */
        buf += n;
        len -= (size_t)n;
    }
}

/* Reads until the server closes; returns the status code or -1. */
static int read_response(int fd, char *resp, size_t resplen)
{
    size_t got = 0;
    int status = -1;

    for (;;) {
        ssize_t n = recv(fd, resp + got, resplen - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == resplen - 1)
            break;
    }
    resp[got] = '\0';
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
        status = -1;
    return status;
}

static const char *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");

    return b ? b + 4 : "";
}

static void basic_header(char *out, size_t outlen, const char *user, const char *pw)
{
    char plain[256];
    unsigned char b64[400];

    out[0] = '\0';
    if (!user)
        return;
    snprintf(plain, sizeof(plain), "%s:%s", user, pw);
    EVP_EncodeBlock(b64, (const unsigned char *)plain, (int)strlen(plain));
    snprintf(out, outlen, "Authorization: Basic %s\r\n", b64);
}

/* One request on a fresh connection ("Connection: close"); returns the status. */
static int request(int port, const char *method, const char *path, const char *host,
                   const char *user, const char *pw, const char *extra, char *resp, size_t resplen)
{
    char req[2048], auth[512];
    int fd, status;

    basic_header(auth, sizeof(auth), user, pw);
    snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\n%s%s%s%s%sConnection: close\r\n\r\n", method,
             path, host ? "Host: " : "", host ? host : "", host ? "\r\n" : "", auth,
             extra ? extra : "");
    fd = client_connect(port);
    send_all(fd, req, strlen(req));
    status = read_response(fd, resp, resplen);
    close(fd);
    return status;
}

static int get(const char *path, const char *host, const char *user, const char *pw, char *resp)
{
    return request(fx.port, "GET", path, host, user, pw, NULL, resp, RESP_MAX);
}

/* ---------------------------------------------------------------------------------------
 * Fixture
 * ------------------------------------------------------------------------------------ */

static void rm_rf(const char *dir)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static int add_user(const char *addr, enum store_acct_type type, const char *pw)
{
    struct store_err e = {0};

    if (store_account_add(fx.st, addr, type, 0, pw, NULL, NULL, &e) != 0) {
        fprintf(stderr, "store_account_add %s: %s\n", addr, e.msg);
        return -1;
    }
    return 0;
}

static int group_setup(void **state)
{
    struct store_config sc = {0};
    struct store_err e = {0};
    struct http_config hc;
    char err[256];

    (void)state;
    signal(SIGPIPE, SIG_IGN);
    log_set_level(LOG_WARN);
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/polaris-http-XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    config_defaults(&fx.cfg);
    snprintf(fx.cfg.web_base, sizeof(fx.cfg.web_base), "w.test");
    snprintf(fx.cfg.hostname, sizeof(fx.cfg.hostname), "localhost");
    snprintf(fx.cfg.data_dir, sizeof(fx.cfg.data_dir), "%s", fx.dir);
    fx.cfg.max_request_bytes = MAX_BODY;
    fx.cfg.http_threads = 2;
    fx.cfg.auth_fail_max = 1000; /* the refusal tests must not throttle the others */
    sc.data_dir = fx.dir;
    if (store_open(&fx.st, &sc, &e) != 0 || store_domain_add(fx.st, "example.com", NULL, &e) ||
        store_domain_add(fx.st, "example.org", NULL, &e)) {
        fprintf(stderr, "store: %s\n", e.msg);
        return -1;
    }
    if (add_user(ALICE, STORE_ENHANCED, ALICE_PW) || add_user(BOB, STORE_BASIC, BOB_PW) ||
        add_user(CAROL, STORE_ENHANCED, CAROL_PW))
        return -1;
    if (tls_ensure_cert(&fx.cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "tls_ensure_cert: %s\n", err);
        return -1;
    }
    fx.auth = auth_new(fx.st, &fx.cfg);
    hc = (struct http_config){.store = fx.st, .auth = fx.auth, .cfg = &fx.cfg};
    fx.h = http_server_new(&hc, err, sizeof(err));
    if (!fx.auth || !fx.h) {
        fprintf(stderr, "http_server_new: %s\n", err);
        return -1;
    }
    add_routes(fx.h);
    if (http_server_start(fx.h, "127.0.0.1:0", "127.0.0.1:0", fx.cfg.tls_cert, fx.cfg.tls_key, err,
                          sizeof(err)) != 0) {
        fprintf(stderr, "http_server_start: %s\n", err);
        return -1;
    }
    fx.port = http_server_port(fx.h, 0);
    fx.tls_port = http_server_port(fx.h, 1);
    if (fx.port <= 0 || fx.tls_port <= 0 || fx.port == fx.tls_port)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    http_server_stop(fx.h, 1000);
    http_server_free(fx.h);
    auth_free(fx.auth);
    store_close(fx.st);
    rm_rf(fx.dir);
    return 0;
}

/* Commits one message to a user's inbox (wakes that user's subscribers). */
static void commit_to(const char *addr)
{
    struct store_user *u = NULL;
    struct store_folder f;
    struct store_err e = {0};
    static const char msg[] = "From: a@example.net\r\nSubject: hi\r\n\r\nhello\r\n";
    struct store_item_new in = {
        .body = msg, .body_len = sizeof(msg) - 1, .ctype = "message/rfc822"};

    assert_int_equal(store_user_open(fx.st, addr, &u, &e), 0);
    assert_int_equal(store_folder_by_role(u, STORE_ROLE_INBOX, &f), 0);
    if (store_item_add(u, f.id, &in, NULL, &e) != 0)
        fail_msg("store_item_add: %s", e.msg);
    store_user_release(u);
}

static void wait_for(atomic_int *counter, int want)
{
    for (int i = 0; i < 2000 && atomic_load(counter) < want; i++)
        usleep(5000);
    assert_true(atomic_load(counter) >= want);
}

/* ---------------------------------------------------------------------------------------
 * Routing and refusals
 * ------------------------------------------------------------------------------------ */

static void test_unknown_host_404(void **state)
{
    char resp[RESP_MAX];

    (void)state;
    assert_int_equal(get("/test/echo", "nobody.example.net", ALICE, ALICE_PW, resp), 404);
    assert_string_equal(body_of(resp), "Not Found\n");
    assert_null(strcasestr(resp, "WWW-Authenticate"));
    assert_int_equal(get("/caldav/", "nobody--net.w.test", NULL, NULL, resp), 404);
    assert_string_equal(body_of(resp), "Not Found\n");
    /* no Host at all (HTTP/1.0) names no tenant either */
    {
        static const char req[] = "GET /test/echo HTTP/1.0\r\n\r\n";
        int fd = client_connect(fx.port);
        send_all(fd, req, sizeof(req) - 1);
        assert_int_equal(read_response(fd, resp, RESP_MAX), 404);
        assert_string_equal(body_of(resp), "Not Found\n");
        close(fd);
    }
    /* unknown path on a known host: the same neutral answer */
    assert_int_equal(get("/nothing/here", HOST, NULL, NULL, resp), 404);
    assert_string_equal(body_of(resp), "Not Found\n");
    assert_int_equal(get("/", "example.com", NULL, NULL, resp), 404);
}

static void test_bad_host_400(void **state)
{
    char resp[RESP_MAX];

    (void)state;
    assert_int_equal(get("/test/open", "exa_mple.com", NULL, NULL, resp), 400);
    assert_int_equal(get("/test/open", "example.com:99x", NULL, NULL, resp), 400);
}

static void test_notenant_route(void **state)
{
    char resp[RESP_MAX];

    (void)state;
    assert_int_equal(get("/test/any", "nobody.example.net", NULL, NULL, resp), 200);
    assert_non_null(strstr(body_of(resp), "tenant=- "));
    assert_int_equal(get("/test/any", "Example.com.:8080", NULL, NULL, resp), 200);
    assert_non_null(strstr(body_of(resp), "tenant=example.com kind=domain host=example.com "));
}

static void test_host_forms(void **state)
{
    static const struct {
        const char *host, *kind;
    } forms[] = {
        {HOST, "label"},
        {"EXAMPLE--COM.W.TEST:443", "label"},
        {"example.com", "domain"},
        {"autodiscover.example.com", "autodiscover"},
        {"autoconfig.example.com", "autoconfig"},
        {"mail.example.com", "mail"},
    };
    char resp[RESP_MAX], want[64];

    (void)state;
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        assert_int_equal(get("/test/open", forms[i].host, NULL, NULL, resp), 200);
        snprintf(want, sizeof(want), "tenant=example.com kind=%s ", forms[i].kind);
        if (!strstr(body_of(resp), want))
            fail_msg("%s: %s", forms[i].host, body_of(resp));
    }
}

static void test_auth_401(void **state)
{
    char resp[RESP_MAX];

    (void)state;
    assert_int_equal(get("/test/echo", HOST, NULL, NULL, resp), 401);
    assert_non_null(
        strstr(resp, "WWW-Authenticate: Basic realm=\"example.com\", charset=\"UTF-8\"\r\n"));
    assert_int_equal(get("/test/echo", HOST, ALICE, "wrong-Pass1!", resp), 401);
    assert_non_null(strstr(resp, "WWW-Authenticate: Basic"));
    /* another tenant's user on this tenant's host */
    assert_int_equal(get("/test/echo", HOST, CAROL, CAROL_PW, resp), 401);
    /* malformed credentials */
    assert_int_equal(request(fx.port, "GET", "/test/echo", HOST, NULL, NULL,
                             "Authorization: Basic !!!notbase64\r\n", resp, RESP_MAX),
                     401);
    assert_int_equal(request(fx.port, "GET", "/test/echo", HOST, NULL, NULL,
                             "Authorization: Basic YWxpY2U=\r\n", resp, RESP_MAX),
                     401); /* "alice": no colon */
    assert_int_equal(request(fx.port, "GET", "/test/echo", HOST, NULL, NULL,
                             "Authorization: Basic YW=xpY2U6eA==\r\n", resp, RESP_MAX),
                     401);
    assert_int_equal(request(fx.port, "GET", "/test/echo", HOST, NULL, NULL,
                             "Authorization: Bearer abc\r\n", resp, RESP_MAX),
                     401);
    /* OPTIONS on an authenticated route still needs credentials (ActiveSync) */
    assert_int_equal(request(fx.port, "OPTIONS", "/Microsoft-Server-ActiveSync", HOST, NULL, NULL,
                             NULL, resp, RESP_MAX),
                     401);
}

static void test_auth_ok_and_login_forms(void **state)
{
    char resp[RESP_MAX];

    (void)state;
    assert_int_equal(get("/test/echo", HOST, ALICE, ALICE_PW, resp), 200);
    assert_non_null(strstr(body_of(resp), "user=alice@example.com "));
    assert_int_equal(get("/test/echo", HOST, "alice", ALICE_PW, resp), 200);
    assert_int_equal(get("/test/echo", HOST, "\\alice", ALICE_PW, resp), 200);
    assert_int_equal(get("/test/echo", HOST, "ALICE@Example.COM", ALICE_PW, resp), 200);
    assert_int_equal(get("/test/echo", "example.org", CAROL, CAROL_PW, resp), 200);
    assert_non_null(strstr(body_of(resp), "user=carol@example.org tenant=example.org "));
}

static void test_gate_403(void **state)
{
    char resp[RESP_MAX];

    (void)state;
    assert_int_equal(get("/test/wait", HOST, BOB, BOB_PW, resp), 403);
    assert_non_null(strstr(body_of(resp), "mailbox type does not include"));
    assert_int_equal(get("/caldav/", HOST, BOB, BOB_PW, resp), 403);
    /* SVC_NONE routes are open to Basic mailboxes */
    assert_int_equal(get("/test/echo", HOST, BOB, BOB_PW, resp), 200);
}

static void test_default_routes_501(void **state)
{
    static const char *paths[] = {"/Microsoft-Server-ActiveSync",
                                  "/microsoft-server-activesync",
                                  "/caldav/",
                                  "/carddav/alice/",
                                  "/principals/",
                                  "/autodiscover/autodiscover.xml",
                                  "/AutoDiscover/AutoDiscover.xml",
                                  "/profile.mobileconfig"};
    static const char *open_paths[] = {"/.well-known/caldav", "/.well-known/carddav",
                                       "/autodiscover/autodiscover.json", "/mail/config-v1.1.xml",
                                       "/.well-known/autoconfig/mail/config-v1.1.xml"};
    char resp[RESP_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (get(paths[i], HOST, ALICE, ALICE_PW, resp) != 501)
            fail_msg("%s: %s", paths[i], resp);
        assert_string_equal(body_of(resp), "engine not available\n");
        assert_int_equal(get(paths[i], HOST, NULL, NULL, resp), 401);
    }
    for (size_t i = 0; i < sizeof(open_paths) / sizeof(open_paths[0]); i++)
        if (get(open_paths[i], HOST, NULL, NULL, resp) != 501)
            fail_msg("%s: %s", open_paths[i], resp);
}

static void test_413(void **state)
{
    char resp[RESP_MAX], extra[128], req[16384];
    size_t n;
    int fd;

    (void)state;
    /* declared too big: refused before the body */
    snprintf(extra, sizeof(extra), "Content-Length: %d\r\n", MAX_BODY + 1);
    assert_int_equal(request(fx.port, "PUT", "/test/open", HOST, NULL, NULL, extra, resp, RESP_MAX),
                     413);
    assert_int_equal(request(fx.port, "PUT", "/test/open", HOST, NULL, NULL,
                             "Content-Length: 99999999999999999999999\r\n", resp, RESP_MAX),
                     413);
    /* chunked: found while streaming */
    n = (size_t)snprintf(req, sizeof(req),
                         "PUT /test/open HTTP/1.1\r\nHost: " HOST
                         "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        n += (size_t)snprintf(req + n, sizeof(req) - n, "%x\r\n", 3000);
        memset(req + n, 'x', 3000);
        n += 3000;
        n += (size_t)snprintf(req + n, sizeof(req) - n, "\r\n");
    }
    n += (size_t)snprintf(req + n, sizeof(req) - n, "0\r\n\r\n");
    fd = client_connect(fx.port);
    send_all(fd, req, n);
    assert_int_equal(read_response(fd, resp, sizeof(resp)), 413);
    close(fd);
    /* at the limit: accepted, body delivered whole */
    n = (size_t)snprintf(req, sizeof(req),
                         "PUT /test/open HTTP/1.1\r\nHost: " HOST
                         "\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
                         MAX_BODY);
    memset(req + n, 'y', MAX_BODY);
    fd = client_connect(fx.port);
    send_all(fd, req, n + MAX_BODY);
    assert_int_equal(read_response(fd, resp, sizeof(resp)), 200);
    assert_non_null(strstr(body_of(resp), " len=4096 "));
    close(fd);
}

static void test_accessors(void **state)
{
    char resp[RESP_MAX];

    (void)state;
    assert_int_equal(request(fx.port, "GET", "/test/open/a%20b?x=a%20b%26c&y=1", HOST, NULL, NULL,
                             "x-TeSt: v1\r\n", resp, RESP_MAX),
                     200);
    assert_non_null(strstr(body_of(resp), "path=/test/open/a b "));
    assert_non_null(strstr(body_of(resp), "x=a b&c raw=x=a%20b%26c&y=1 hdr=v1 "));
    assert_non_null(strstr(body_of(resp), "ip=127.0.0.1 tls=0 method=GET"));
    assert_non_null(strstr(resp, "\r\nServer: Polaris\r\n"));
    assert_non_null(strstr(resp, "\r\nX-Echo: yes\r\n"));
    assert_non_null(strstr(resp, "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
    assert_null(strstr(resp, "Injected"));
}

static void test_handler_misuse_500(void **state)
{
    char resp[RESP_MAX];

    (void)state;
    assert_int_equal(get("/test/bad", HOST, NULL, NULL, resp), 500);
    assert_int_equal(get("/test/silent", HOST, NULL, NULL, resp), 500);
}

/* ---------------------------------------------------------------------------------------
 * Suspend and resume
 * ------------------------------------------------------------------------------------ */

struct client_job {
    const char *path;
    int status;
    char resp[RESP_MAX];
    struct timespec t0, t1;
};

static void *client_thread(void *arg)
{
    struct client_job *j = arg;

    clock_gettime(CLOCK_MONOTONIC, &j->t0);
    j->status = get(j->path, HOST, ALICE, ALICE_PW, j->resp);
    clock_gettime(CLOCK_MONOTONIC, &j->t1);
    return NULL;
}

static long elapsed_ms(const struct client_job *j)
{
    return (j->t1.tv_sec - j->t0.tv_sec) * 1000 + (j->t1.tv_nsec - j->t0.tv_nsec) / 1000000;
}

static void test_suspend_woken_by_commit(void **state)
{
    struct client_job *j = calloc(1, sizeof(*j));
    pthread_t t;
    int before = atomic_load(&g_waiting);

    (void)state;
    j->path = "/test/wait?ms=20000";
    assert_int_equal(pthread_create(&t, NULL, client_thread, j), 0);
    wait_for(&g_waiting, before + 1);
    usleep(50000); /* let it park */
    commit_to(ALICE);
    pthread_join(t, NULL);
    assert_int_equal(j->status, 200);
    assert_string_equal(body_of(j->resp), "event\n");
    assert_true(elapsed_ms(j) < 15000);
    free(j);
}

static void test_suspend_commit_to_other_user_does_not_wake(void **state)
{
    struct client_job *j = calloc(1, sizeof(*j));
    pthread_t t;
    int before = atomic_load(&g_waiting);

    (void)state;
    j->path = "/test/wait?ms=700";
    assert_int_equal(pthread_create(&t, NULL, client_thread, j), 0);
    wait_for(&g_waiting, before + 1);
    commit_to(BOB);
    pthread_join(t, NULL);
    assert_int_equal(j->status, 200);
    assert_string_equal(body_of(j->resp), "timeout\n");
    assert_true(elapsed_ms(j) >= 600);
    free(j);
}

static void test_suspend_timeout(void **state)
{
    struct client_job *j = calloc(1, sizeof(*j));

    (void)state;
    j->path = "/test/wait?ms=300";
    client_thread(j);
    assert_int_equal(j->status, 200);
    assert_string_equal(body_of(j->resp), "timeout\n");
    assert_true(elapsed_ms(j) >= 250);
    j->path = "/test/wait?ms=0";
    client_thread(j);
    assert_string_equal(body_of(j->resp), "timeout\n");
    free(j);
}

static void test_resume_before_return(void **state)
{
    char resp[RESP_MAX];

    (void)state;
    assert_int_equal(get("/test/early?mode=inline", HOST, NULL, NULL, resp), 200);
    assert_string_equal(body_of(resp), "early\n");
    /* a resumer thread racing the return, many times over */
    for (int i = 0; i < 200; i++) {
        assert_int_equal(get("/test/early", HOST, NULL, NULL, resp), 200);
        assert_string_equal(body_of(resp), "early\n");
    }
}

static void test_suspend_again_after_resume(void **state)
{
    char resp[RESP_MAX];

    (void)state;
    assert_int_equal(get("/test/twice", HOST, NULL, NULL, resp), 200);
    assert_string_equal(body_of(resp), "twice\n");
}

static void test_many_waits_one_commit(void **state)
{
    static int fds[MANY_WAITS];
    char req[1024], auth[512], *resp = malloc(RESP_MAX);
    int before = atomic_load(&g_waiting);

    (void)state;
    basic_header(auth, sizeof(auth), ALICE, ALICE_PW);
    snprintf(req, sizeof(req),
             "GET /test/wait?ms=30000 HTTP/1.1\r\nHost: " HOST "\r\n%sConnection: close\r\n\r\n",
             auth);
    for (int i = 0; i < MANY_WAITS; i++) {
        fds[i] = client_connect(fx.port);
        send_all(fds[i], req, strlen(req));
    }
    wait_for(&g_waiting, before + MANY_WAITS);
    assert_true(store_subscriber_count(fx.st, ALICE) >= MANY_WAITS);
    usleep(50000);
    commit_to(ALICE);
    for (int i = 0; i < MANY_WAITS; i++) {
        assert_int_equal(read_response(fds[i], resp, RESP_MAX), 200);
        assert_string_equal(body_of(resp), "event\n");
        close(fds[i]);
    }
    free(resp);
}

static void test_cleanup_once_each(void **state)
{
    (void)state;
    for (int i = 0; i < 400 && atomic_load(&g_cleanups) < atomic_load(&g_started); i++)
        usleep(5000);
    assert_int_equal(atomic_load(&g_cleanups), atomic_load(&g_started));
    assert_int_equal(atomic_load(&g_double_cleanup), 0);
    assert_int_equal(store_subscriber_count(fx.st, ALICE), 0);
}

/* A second server: a parked request is answered (as a timeout) when the server stops. */
static void test_graceful_stop(void **state)
{
    struct http_config hc = {.store = fx.st, .auth = fx.auth, .cfg = &fx.cfg};
    struct http_server *h;
    struct client_job *j = calloc(1, sizeof(*j));
    char err[256], req[1024], auth[512];
    int before = atomic_load(&g_waiting), fd, port;
    struct timespec t0, t1;

    (void)state;
    h = http_server_new(&hc, err, sizeof(err));
    assert_non_null(h);
    add_routes(h);
    assert_int_equal(http_server_start(h, "127.0.0.1:0", NULL, NULL, NULL, err, sizeof(err)), 0);
    port = http_server_port(h, 0);
    assert_true(port > 0);
    assert_int_equal(http_server_port(h, 1), 0);
    basic_header(auth, sizeof(auth), ALICE, ALICE_PW);
    snprintf(req, sizeof(req),
             "GET /test/wait?ms=60000 HTTP/1.1\r\nHost: " HOST "\r\n%sConnection: close\r\n\r\n",
             auth);
    fd = client_connect(port);
    send_all(fd, req, strlen(req));
    wait_for(&g_waiting, before + 1);
    usleep(50000);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    http_server_stop(h, 3000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(read_response(fd, j->resp, sizeof(j->resp)), 200);
    assert_string_equal(body_of(j->resp), "timeout\n");
    assert_true(t1.tv_sec - t0.tv_sec < 3);
    close(fd);
    /* no longer listening */
    {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        int s = socket(AF_INET, SOCK_STREAM, 0);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_not_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(s);
    }
    http_server_free(h);
    free(j);
}

/* ---------------------------------------------------------------------------------------
 * TLS
 * ------------------------------------------------------------------------------------ */

static void test_cert_generated(void **state)
{
    struct stat st;
    X509 *x;
    FILE *f;
    char err[256], *cert_before;
    struct config c2;
    struct tls_ctx *t;
    char *pem;

    (void)state;
    assert_int_equal(stat(fx.cfg.tls_key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    f = fopen(fx.cfg.tls_cert, "r");
    assert_non_null(f);
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    assert_int_equal(X509_get_version(x), 2);
    assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "example--com.w.test", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "w.test", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "evil.example", 0, 0, NULL), 0);
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    assert_true(X509_cmp_current_time(X509_get0_notAfter(x)) > 0);
    assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), 1);
    assert_int_equal(X509_check_ca(x), 0);
    X509_free(x);
    /* a second call reuses the files */
    pem = tls_read_file(fx.cfg.tls_cert, 1 << 20, err, sizeof(err));
    assert_non_null(pem);
    memcpy(&c2, &fx.cfg, sizeof(c2));
    c2.tls_cert[0] = c2.tls_key[0] = '\0';
    assert_int_equal(tls_ensure_cert(&c2, err, sizeof(err)), 0);
    assert_string_equal(c2.tls_cert, fx.cfg.tls_cert);
    cert_before = pem;
    pem = tls_read_file(c2.tls_cert, 1 << 20, err, sizeof(err));
    assert_string_equal(pem, cert_before);
    free(pem);
    free(cert_before);
    assert_null(tls_read_file(c2.tls_cert, 10, err, sizeof(err)));
    assert_null(tls_read_file("/nonexistent/x.pem", 10, err, sizeof(err)));
    /* the OpenSSL context for the line protocols */
    t = tls_ctx_new(c2.tls_cert, c2.tls_key, err, sizeof(err));
    assert_non_null(t);
    assert_non_null(tls_ctx_ssl(t));
    assert_int_equal(SSL_CTX_get_min_proto_version((SSL_CTX *)tls_ctx_ssl(t)), TLS1_2_VERSION);
    tls_ctx_free(t);
    assert_null(tls_ctx_new(c2.tls_key, c2.tls_key, err, sizeof(err)));
}

/* One HTTPS request; returns the status, or -1 when the handshake fails. */
static int tls_request(int max_version, const char *path, char *resp, size_t resplen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl;
    char req[256];
    int fd, status = -1;
    size_t got = 0;

    assert_non_null(ctx);
    if (max_version) {
        /* let OpenSSL offer old versions at all, so the refusal is the server's */
        SSL_CTX_set_security_level(ctx, 0);
        SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
        SSL_CTX_set_max_proto_version(ctx, max_version);
        SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
    }
    assert_int_equal(SSL_CTX_load_verify_locations(ctx, fx.cfg.tls_cert, NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    ssl = SSL_new(ctx);
    fd = client_connect(fx.tls_port);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    if (SSL_connect(ssl) == 1) {
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: " HOST "\r\nConnection: close\r\n\r\n",
                 path);
        SSL_write(ssl, req, (int)strlen(req));
        for (;;) {
            int n = SSL_read(ssl, resp + got, (int)(resplen - 1 - got));
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        resp[got] = '\0';
        if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
            status = -1;
    }
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    return status;
}

static void test_https(void **state)
{
    char resp[RESP_MAX];

    (void)state;
    assert_int_equal(tls_request(0, "/test/open", resp, sizeof(resp)), 200);
    assert_non_null(strstr(body_of(resp), " tls=1 "));
    assert_int_equal(tls_request(TLS1_2_VERSION, "/test/open", resp, sizeof(resp)), 200);
    assert_int_equal(tls_request(TLS1_1_VERSION, "/test/open", resp, sizeof(resp)), -1);
    assert_int_equal(tls_request(TLS1_VERSION, "/test/open", resp, sizeof(resp)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_host_404),
        cmocka_unit_test(test_bad_host_400),
        cmocka_unit_test(test_notenant_route),
        cmocka_unit_test(test_host_forms),
        cmocka_unit_test(test_auth_401),
        cmocka_unit_test(test_auth_ok_and_login_forms),
        cmocka_unit_test(test_gate_403),
        cmocka_unit_test(test_default_routes_501),
        cmocka_unit_test(test_413),
        cmocka_unit_test(test_accessors),
        cmocka_unit_test(test_handler_misuse_500),
        cmocka_unit_test(test_suspend_woken_by_commit),
        cmocka_unit_test(test_suspend_commit_to_other_user_does_not_wake),
        cmocka_unit_test(test_suspend_timeout),
        cmocka_unit_test(test_resume_before_return),
        cmocka_unit_test(test_suspend_again_after_resume),
        cmocka_unit_test(test_many_waits_one_commit),
        cmocka_unit_test(test_graceful_stop),
        cmocka_unit_test(test_cleanup_once_each),
        cmocka_unit_test(test_cert_generated),
        cmocka_unit_test(test_https),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
