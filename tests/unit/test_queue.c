/*
 * test_queue.c — the outbound queue: the retry schedule, the state file, RFC 3464
 * reports, and whole runs against a small SMTP sink on a loopback port (smarthost):
 * submit is durable when it returns, a restarted queue picks messages up, messages
 * leave DKIM-signed, a 550 makes a bounce in the local sender's INBOX, a bounce is never
 * bounced, and `queue del` / list work on what is on disk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "mail/dkim.h"
#include "mail/mail.h"
#include "mail/queue.h"
#include "server/server.h"

/* ---------------------------------------------------------------------------------------
 * The sink: a minimal SMTP server, one session at a time
 * ------------------------------------------------------------------------------------ */
struct sink {
    int lfd, port;
    int rcpt_code; /* 250 or 550 */
    int pipelining;
    int nodsn; /* does not offer DSN */
    volatile int stop;
    pthread_t thread;
    pthread_mutex_t lock;
    int messages;
    char data[65536];
    size_t len;
    char rcpts[1024];
};

static int sink_line(int fd, char *buf, size_t max)
{
    size_t n = 0;
    char c;

    while (recv(fd, &c, 1, 0) == 1) {
        if (n + 1 < max)
            buf[n++] = c;
        if (c == '\n') {
            buf[n] = '\0';
            return (int)n;
        }
    }
    return -1;
}

static void sink_say(int fd, const char *s)
{
    send(fd, s, strlen(s), MSG_NOSIGNAL);
}

static void sink_data(struct sink *k, int fd)
{
    char line[2048];
    size_t len = 0;
    char *buf = malloc(sizeof(k->data));

    while (sink_line(fd, line, sizeof(line)) > 0 && strcmp(line, ".\r\n") != 0) {
        const char *p = line[0] == '.' ? line + 1 : line; /* undo dot-stuffing */
        size_t n = strlen(p);
        if (len + n < sizeof(k->data)) {
            memcpy(buf + len, p, n);
            len += n;
        }
    }
    pthread_mutex_lock(&k->lock);
    memcpy(k->data, buf, len);
    k->len = len;
    k->data[len] = '\0';
    k->messages++;
    pthread_mutex_unlock(&k->lock);
    free(buf);
    sink_say(fd, "250 2.0.0 accepted\r\n");
}

static void sink_session(struct sink *k, int fd)
{
    char line[2048];

    sink_say(fd, "220 sink ESMTP\r\n");
    while (sink_line(fd, line, sizeof(line)) > 0) {
        if (strncasecmp(line, "EHLO", 4) == 0) {
            sink_say(fd, "250-sink\r\n250-SIZE 1000000\r\n250-8BITMIME\r\n");
            sink_say(fd, k->pipelining ? "250-PIPELINING\r\n" : "");
            sink_say(fd, k->nodsn ? "250 HELP\r\n" : "250 DSN\r\n");
        } else if (strncasecmp(line, "MAIL", 4) == 0 || strncasecmp(line, "RSET", 4) == 0) {
            sink_say(fd, "250 2.1.0 ok\r\n");
        } else if (strncasecmp(line, "RCPT", 4) == 0) {
            pthread_mutex_lock(&k->lock);
            size_t used = strlen(k->rcpts);
            snprintf(k->rcpts + used, sizeof(k->rcpts) - used, "%.200s", line + 8);
            pthread_mutex_unlock(&k->lock);
            sink_say(fd, k->rcpt_code == 250 ? "250 2.1.5 ok\r\n"
                                             : "550 5.1.1 <nobody>: no such user here\r\n");
        } else if (strncasecmp(line, "DATA", 4) == 0 && k->rcpt_code != 250) {
            sink_say(fd, "554 5.5.1 no valid recipients\r\n");
        } else if (strncasecmp(line, "DATA", 4) == 0) {
            sink_say(fd, "354 go ahead\r\n");
            sink_data(k, fd);
        } else if (strncasecmp(line, "QUIT", 4) == 0) {
            sink_say(fd, "221 bye\r\n");
            break;
        } else {
            sink_say(fd, "500 what\r\n");
        }
    }
}

static void *sink_main(void *arg)
{
    struct sink *k = arg;

    while (!k->stop) {
        struct pollfd p = {.fd = k->lfd, .events = POLLIN};
        if (poll(&p, 1, 100) != 1)
            continue;
        int fd = accept(k->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        sink_session(k, fd);
        close(fd);
    }
    return NULL;
}

static void sink_start(struct sink *k, int rcpt_code, int pipelining)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);

    memset(k, 0, sizeof(*k));
    k->rcpt_code = rcpt_code;
    k->pipelining = pipelining;
    pthread_mutex_init(&k->lock, NULL);
    k->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(k->lfd >= 0);
    assert_int_equal(bind(k->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(k->lfd, 8), 0);
    getsockname(k->lfd, (struct sockaddr *)&sa, &len);
    k->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&k->thread, NULL, sink_main, k), 0);
}

static void sink_stop(struct sink *k)
{
    k->stop = 1;
    pthread_join(k->thread, NULL);
    close(k->lfd);
    pthread_mutex_destroy(&k->lock);
}

/* ---------------------------------------------------------------------------------------
 * A data dir with example.com and bob
 * ------------------------------------------------------------------------------------ */
struct env {
    char dir[64];
    struct config cfg;
    struct store *store;
    struct deliver dl;
};

static int env_setup(void **state)
{
    struct env *t = calloc(1, sizeof(*t));
    struct store_config sc = {0};
    struct store_err e = {0};

    snprintf(t->dir, sizeof(t->dir), "/tmp/polaris-queue-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    config_defaults(&t->cfg);
    snprintf(t->cfg.data_dir, sizeof(t->cfg.data_dir), "%s", t->dir);
    snprintf(t->cfg.hostname, sizeof(t->cfg.hostname), "mx.example.com");
    sc.data_dir = t->dir;
    assert_int_equal(store_open(&t->store, &sc, &e), STORE_OK);
    assert_int_equal(store_domain_add(t->store, "example.com", NULL, &e), STORE_OK);
    assert_int_equal(store_account_add(t->store, "bob@example.com", STORE_BASIC, 0, "Bob-Pass1!",
                                       NULL, NULL, &e),
                     STORE_OK);
    t->dl = (struct deliver){.store = t->store, .cfg = &t->cfg};
    *state = t;
    return 0;
}

static int env_teardown(void **state)
{
    struct env *t = *state;
    char cmd[128];

    store_close(t->store);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
    if (system(cmd) != 0)
        return -1;
    free(t);
    return 0;
}

static const char MSG[] = "From: Bob <bob@example.com>\n"
                          "To: someone@external.test\n"
                          "Subject: hello\n"
                          "Message-ID: <q1@example.com>\n"
                          "\n"
                          "Hello there.\n"
                          ".a line with a dot\n";

static int file_exists(const struct env *t, const char *id, const char *ext)
{
    char path[1200];
    struct stat st;

    snprintf(path, sizeof(path), "%s/queue/%s.%s", t->dir, id, ext);
    return stat(path, &st) == 0;
}

static void submit(struct queue *q, const char *from, const char *rcpt, char *id)
{
    const char *rcpts[1] = {rcpt};
    char err[256];

    assert_int_equal(queue_submit(q, from, rcpts, 1, MSG, strlen(MSG), NULL, NULL, id, QUEUE_ID_MAX,
                                  err, sizeof(err)),
                     0);
}

/* Waits up to 20 s for cond(t, id) to become true. */
static int wait_for(int (*cond)(struct env *, const char *), struct env *t, const char *id)
{
    for (int i = 0; i < 200; i++) {
        if (cond(t, id))
            return 1;
        usleep(100000);
    }
    return 0;
}

static int gone(struct env *t, const char *id)
{
    return !file_exists(t, id, "env") && !file_exists(t, id, "msg");
}

static int64_t inbox_count(struct env *t, const char *addr)
{
    struct store_user *u = NULL;
    struct store_folder f;
    struct store_err e = {0};

    assert_int_equal(store_user_open(t->store, addr, &u, &e), STORE_OK);
    assert_int_equal(mail_folder_resolve(u, "INBOX", &f), STORE_OK);
    store_user_release(u);
    return f.count;
}

static int has_bounce(struct env *t, const char *id)
{
    return inbox_count(t, "bob@example.com") > 0;
}

/* ---------------------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------------------ */

static void test_backoff(void **state)
{
    assert_int_equal(queue_backoff(1), 300);
    assert_int_equal(queue_backoff(2), 900);
    assert_int_equal(queue_backoff(3), 1800);
    assert_int_equal(queue_backoff(4), 3600);
    assert_int_equal(queue_backoff(5), 7200);
    assert_int_equal(queue_backoff(6), 14400);
    assert_int_equal(queue_backoff(40), 14400);
}

static void test_env_roundtrip(void **state)
{
    struct queue_rcpt r[2] = {
        {.addr = "a@x.test", .state = QR_QUEUED, .diag = "connect: Connection refused 100%"},
        {.addr = "b@y.test",
         .state = QR_FAILED,
         .status = "5.1.1",
         .remote = "mx.y.test",
         .diag = "-"},
    };
    struct queue_env e = {.id = "0065A0B0C0D1E2F3A4B5",
                          .from = "",
                          .envid = "abc+2B",
                          .ret = "HDRS",
                          .arrival = 1700000000,
                          .next = 1700000300,
                          .attempts = 1,
                          .delay_sent = 1,
                          .n = 2,
                          .r = r};
    struct queue_env back;
    struct buf b = {0};

    queue_env_format(&e, &b);
    assert_false(b.oom);
    assert_int_equal(queue_env_parse(b.p, b.len, &back), 0);
    assert_string_equal(back.id, e.id);
    assert_string_equal(back.from, "");
    assert_string_equal(back.envid, "abc+2B");
    assert_string_equal(back.ret, "HDRS");
    assert_int_equal(back.arrival, 1700000000);
    assert_int_equal(back.next, 1700000300);
    assert_int_equal(back.attempts, 1);
    assert_int_equal(back.delay_sent, 1);
    assert_int_equal(back.n, 2);
    assert_string_equal(back.r[0].diag, "connect: Connection refused 100%");
    assert_int_equal(back.r[1].state, QR_FAILED);
    assert_string_equal(back.r[1].remote, "mx.y.test");
    assert_string_equal(back.r[1].diag, "-");
    queue_env_free(&back);
    assert_int_equal(queue_env_parse("garbage", 7, &back), -1);
    buf_free(&b);
}

static void test_dsn(void **state)
{
    const char *orig = "From: bob@example.com\r\nSubject: hi\r\n\r\nsecret body\r\n";
    struct queue_rcpt r[2] = {
        {.addr = "x@ext.test",
         .state = QR_FAILED,
         .status = "5.1.1",
         .remote = "mx.ext.test",
         .diag = "550 5.1.1 no such user"},
        {.addr = "y@ext.test",
         .state = QR_QUEUED,
         .status = "4.4.1",
         .diag = "connect: Connection refused"},
    };
    struct queue_env e = {.id = "ABC",
                          .from = "bob@example.com",
                          .envid = "E1",
                          .arrival = 1700000000,
                          .last_attempt = 1700000100,
                          .n = 2,
                          .r = r};
    struct buf b = {0};

    queue_dsn(&e, 0, "mx.example.com", 1700432000, orig, strlen(orig), 1700000200, &b);
    assert_non_null(strstr(b.p, "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>"));
    assert_non_null(strstr(b.p, "To: <bob@example.com>"));
    assert_non_null(strstr(b.p, "Content-Type: multipart/report; report-type=delivery-status;"));
    assert_non_null(strstr(b.p, "Content-Type: message/delivery-status"));
    assert_non_null(strstr(b.p, "Reporting-MTA: dns; mx.example.com"));
    assert_non_null(strstr(b.p, "Original-Envelope-Id: E1"));
    assert_non_null(strstr(b.p, "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000"));
    assert_non_null(strstr(b.p, "Final-Recipient: rfc822; x@ext.test\r\nAction: failed\r\n"
                                "Status: 5.1.1\r\nRemote-MTA: dns; mx.ext.test\r\n"
                                "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"));
    assert_null(strstr(b.p, "y@ext.test")); /* still queued: not in a bounce */
    assert_non_null(strstr(b.p, "Content-Type: message/rfc822"));
    assert_non_null(strstr(b.p, "secret body")); /* RET unset: the whole message */
    assert_non_null(strstr(b.p, "Auto-Submitted: auto-replied"));
    buf_free(&b);

    /* RET=HDRS: headers only. */
    snprintf(e.ret, sizeof(e.ret), "HDRS");
    queue_dsn(&e, 0, "mx.example.com", 0, orig, strlen(orig), 1700000200, &b);
    assert_non_null(strstr(b.p, "Content-Type: text/rfc822-headers"));
    assert_null(strstr(b.p, "secret body"));
    buf_free(&b);

    /* The delay notice: the queued one, Action: delayed, Will-Retry-Until. */
    queue_dsn(&e, 1, "mx.example.com", 1700432000, orig, strlen(orig), 1700000200, &b);
    assert_non_null(strstr(b.p, "Subject: Delayed Mail (still being retried)"));
    assert_non_null(strstr(b.p, "Final-Recipient: rfc822; y@ext.test\r\nAction: delayed\r\n"
                                "Status: 4.4.1\r\n"));
    assert_non_null(strstr(b.p, "Diagnostic-Code: X-Polaris; connect: Connection refused"));
    assert_non_null(strstr(b.p, "Will-Retry-Until: "));
    assert_null(strstr(b.p, "x@ext.test"));
    assert_null(strstr(b.p, "secret body"));
    buf_free(&b);
}

/* NOTIFY and ORCPT survive the state file; a file of the older six-token format reads. */
static void test_env_dsn(void **state)
{
    struct queue_rcpt r[1] = {{.addr = "a@x.test",
                               .state = QR_RELAYED,
                               .notify = DELIVER_NOTIFY_SUCCESS | DELIVER_NOTIFY_DELAY,
                               .orcpt = "rfc822;Orig Name+x@example.com"}};
    struct queue_env e = {.id = "AB12", .from = "b@example.com", .n = 1, .r = r}, back;
    struct buf b = {0};
    static const char old[] = "polaris-queue 1\nid AB12\nfrom b@example.com\nenvid -\nret -\n"
                              "arrival 1\nnext 2\nlast 0\nattempts 0\ndelay-sent 0\n"
                              "rcpt failed a@x.test 5.1.1 mx.x.test 550%205.1.1%20no\n";

    queue_env_format(&e, &b);
    assert_non_null(strstr(b.p, "rcpt relayed a@x.test - - - SUCCESS,DELAY "
                                "rfc822;Orig%20Name+x@example.com\n"));
    assert_int_equal(queue_env_parse(b.p, b.len, &back), 0);
    assert_int_equal(back.r[0].state, QR_RELAYED);
    assert_int_equal(back.r[0].notify, DELIVER_NOTIFY_SUCCESS | DELIVER_NOTIFY_DELAY);
    assert_string_equal(back.r[0].orcpt, "rfc822;Orig Name+x@example.com");
    queue_env_free(&back);
    buf_free(&b);
    assert_int_equal(queue_env_parse(old, strlen(old), &back), 0);
    assert_int_equal(back.n, 1);
    assert_int_equal(back.r[0].state, QR_FAILED);
    assert_int_equal(back.r[0].notify, 0);
    assert_string_equal(back.r[0].orcpt, "");
    assert_string_equal(back.r[0].diag, "550 5.1.1 no");
    queue_env_free(&back);
    /* a 7-token line is neither format */
    static const char seven[] = "polaris-queue 1\nid AB12\nrcpt failed a@x.test - - - SUCCESS\n";
    assert_int_equal(queue_env_parse(seven, strlen(seven), &back), -1);
}

/* Who is in which report: NOTIFY decides, with no NOTIFY meaning FAILURE,DELAY. */
static void test_dsn_notify(void **state)
{
    const char *orig = "From: bob@example.com\r\nSubject: hi\r\n\r\nsecret body\r\n";
    struct queue_rcpt r[5] = {
        {.addr = "plain@ext.test", .state = QR_FAILED, .status = "5.1.1"},
        {.addr = "never@ext.test", .state = QR_FAILED, .notify = DELIVER_NOTIFY_NEVER},
        {.addr = "delayonly@ext.test", .state = QR_QUEUED, .notify = DELIVER_NOTIFY_DELAY},
        {.addr = "fail@ext.test",
         .state = QR_FAILED,
         .notify = DELIVER_NOTIFY_FAILURE,
         .orcpt = "rfc822;Alias@Example.com"},
        {.addr = "ok@ext.test",
         .state = QR_RELAYED,
         .notify = DELIVER_NOTIFY_SUCCESS,
         .status = "2.0.0",
         .remote = "mx.ext.test"},
    };
    struct queue_env e = {.id = "ABC", .from = "bob@example.com", .envid = "E+1", .n = 5, .r = r};
    struct buf b = {0};
    char xt[64], nt[64];

    assert_true(queue_dsn_wants(&r[0], QUEUE_DSN_FAILED));
    assert_false(queue_dsn_wants(&r[1], QUEUE_DSN_FAILED));
    assert_true(queue_dsn_wants(&r[2], QUEUE_DSN_DELAYED));
    assert_false(queue_dsn_wants(&r[2], QUEUE_DSN_FAILED));
    assert_true(queue_dsn_wants(&r[3], QUEUE_DSN_FAILED));
    r[3].state = QR_QUEUED;
    assert_false(queue_dsn_wants(&r[3], QUEUE_DSN_DELAYED)); /* FAILURE only: no delay */
    r[3].state = QR_FAILED;
    assert_true(queue_dsn_wants(&r[4], QUEUE_DSN_SUCCESS));
    assert_false(queue_dsn_wants(&r[0], QUEUE_DSN_SUCCESS));

    queue_dsn(&e, QUEUE_DSN_FAILED, "mx.example.com", 0, orig, strlen(orig), 1700000200, &b);
    assert_non_null(strstr(b.p, "Final-Recipient: rfc822; plain@ext.test"));
    assert_null(strstr(b.p, "never@ext.test"));
    assert_non_null(strstr(b.p, "Original-Recipient: rfc822;Alias@Example.com\r\n"
                                "Final-Recipient: rfc822; fail@ext.test\r\nAction: failed\r\n"));
    assert_null(strstr(b.p, "ok@ext.test"));
    assert_non_null(strstr(b.p, "Original-Envelope-Id: E+1\r\nReporting-MTA: dns; mx.example.com"));
    buf_free(&b);

    queue_dsn(&e, QUEUE_DSN_SUCCESS, "mx.example.com", 0, orig, strlen(orig), 1700000200, &b);
    assert_non_null(strstr(b.p, "Subject: Successful Mail Delivery Report"));
    assert_non_null(strstr(b.p, "Final-Recipient: rfc822; ok@ext.test\r\nAction: relayed\r\n"
                                "Status: 2.0.0\r\nRemote-MTA: dns; mx.ext.test\r\n"));
    assert_null(strstr(b.p, "plain@ext.test"));
    assert_non_null(strstr(b.p, "Content-Type: text/rfc822-headers"));
    assert_null(strstr(b.p, "secret body"));
    buf_free(&b);

    queue_xtext("a+b=c d\x01", xt, sizeof(xt));
    assert_string_equal(xt, "a+2Bb+3Dc+20d+01");
    queue_notify_format(DELIVER_NOTIFY_FAILURE | DELIVER_NOTIFY_SUCCESS, nt, sizeof(nt));
    assert_string_equal(nt, "SUCCESS,FAILURE");
    queue_notify_format(0, nt, sizeof(nt));
    assert_string_equal(nt, "");
}

static void submit_dsn(struct queue *q, const char *from, const char *rcpt, unsigned notify,
                       const char *orcpt, char *id)
{
    const char *rcpts[1] = {rcpt};
    struct deliver_dsn dsn = {notify, orcpt};
    char err[256];

    assert_int_equal(queue_submit_dsn(q, from, rcpts, &dsn, 1, MSG, strlen(MSG), "ENV 1", "HDRS",
                                      id, QUEUE_ID_MAX, err, sizeof(err)),
                     0);
}

/* A DSN next hop gets NOTIFY, ORCPT and ENVID (xtext) and reports itself: no report here.
 * A next hop without DSN: we report "relayed". NOTIFY=NEVER on a 550: no bounce. */
static void test_dsn_next_hop(void **state)
{
    struct env *t = *state;
    struct sink k;
    char id[QUEUE_ID_MAX], err[256];
    struct queue *q;

    sink_start(&k, 250, 1);
    snprintf(t->cfg.smarthost, sizeof(t->cfg.smarthost), "127.0.0.1:%d", k.port);
    q = queue_open(t->store, &t->cfg, err, sizeof(err));
    t->dl.queue = q;
    assert_int_equal(queue_start(q, &t->dl), 0);
    submit_dsn(q, "bob@example.com", "someone@external.test",
               DELIVER_NOTIFY_SUCCESS | DELIVER_NOTIFY_FAILURE, "rfc822;Team+1@example.com", id);
    assert_true(wait_for(gone, t, id));
    queue_close(q);
    sink_stop(&k);
    assert_int_equal(k.messages, 1);
    assert_non_null(strstr(k.rcpts, "<someone@external.test> NOTIFY=SUCCESS,FAILURE "
                                    "ORCPT=rfc822;Team+2B1@example.com"));
    assert_int_equal(inbox_count(t, "bob@example.com"), 0);

    sink_start(&k, 250, 1);
    k.nodsn = 1;
    snprintf(t->cfg.smarthost, sizeof(t->cfg.smarthost), "127.0.0.1:%d", k.port);
    q = queue_open(t->store, &t->cfg, err, sizeof(err));
    t->dl.queue = q;
    assert_int_equal(queue_start(q, &t->dl), 0);
    submit_dsn(q, "bob@example.com", "someone@external.test", DELIVER_NOTIFY_SUCCESS, NULL, id);
    assert_true(wait_for(has_bounce, t, id));
    assert_true(wait_for(gone, t, id));
    queue_close(q);
    sink_stop(&k);
    assert_int_equal(k.messages, 1);
    assert_non_null(strstr(k.rcpts, "<someone@external.test>\r\n")); /* nothing passed on */
    assert_int_equal(inbox_count(t, "bob@example.com"), 1);

    sink_start(&k, 550, 1);
    snprintf(t->cfg.smarthost, sizeof(t->cfg.smarthost), "127.0.0.1:%d", k.port);
    q = queue_open(t->store, &t->cfg, err, sizeof(err));
    t->dl.queue = q;
    assert_int_equal(queue_start(q, &t->dl), 0);
    submit_dsn(q, "bob@example.com", "nobody@external.test", DELIVER_NOTIFY_NEVER, NULL, id);
    assert_true(wait_for(gone, t, id));
    queue_close(q);
    sink_stop(&k);
    assert_non_null(strstr(k.rcpts, "<nobody@external.test> NOTIFY=NEVER"));
    assert_int_equal(inbox_count(t, "bob@example.com"), 1); /* no bounce */
}

/* Files are in place when submit returns; a queue started later (a restart) sends it,
 * signed, and removes it. */
static void test_submit_restart_deliver(void **state)
{
    struct env *t = *state;
    struct sink k;
    char id[QUEUE_ID_MAX], err[256], name[128], value[1024];
    struct store_err e = {0};
    struct queue *q;

    assert_int_equal(dkim_domain_enable(t->store, "example.com", "s1", &e), STORE_OK);
    assert_int_equal(
        dkim_domain_record(t->store, "example.com", name, sizeof(name), value, sizeof(value)),
        STORE_OK);
    q = queue_open(t->store, &t->cfg, err, sizeof(err));
    assert_non_null(q);
    submit(q, "bob@example.com", "someone@external.test", id);
    assert_true(file_exists(t, id, "msg"));
    assert_true(file_exists(t, id, "env"));
    queue_close(q); /* never started: like a crash right after the 250 */

    sink_start(&k, 250, 1);
    snprintf(t->cfg.smarthost, sizeof(t->cfg.smarthost), "127.0.0.1:%d", k.port);
    q = queue_open(t->store, &t->cfg, err, sizeof(err));
    t->dl.queue = q;
    assert_int_equal(queue_start(q, &t->dl), 0);
    assert_true(wait_for(gone, t, id));
    queue_close(q);
    sink_stop(&k);

    assert_int_equal(k.messages, 1);
    assert_non_null(strstr(k.rcpts, "<someone@external.test>"));
    assert_memory_equal(k.data, "DKIM-Signature: ", 16);
    assert_non_null(strstr(k.data, "\r\n.a line with a dot\r\n")); /* CRLF, dot unstuffed */
    assert_int_equal(dkim_verify(k.data, k.len, value + 18, err, sizeof(err)), 0);
}

/* A 550 makes a bounce in the local sender's INBOX; without pipelining too. */
static void test_bounce_to_local_sender(void **state)
{
    struct env *t = *state;
    struct sink k;
    char id[QUEUE_ID_MAX], err[256];
    struct queue *q;

    sink_start(&k, 550, 0);
    snprintf(t->cfg.smarthost, sizeof(t->cfg.smarthost), "127.0.0.1:%d", k.port);
    q = queue_open(t->store, &t->cfg, err, sizeof(err));
    t->dl.queue = q;
    assert_int_equal(queue_start(q, &t->dl), 0);
    submit(q, "bob@example.com", "nobody@external.test", id);
    assert_true(wait_for(has_bounce, t, id));
    assert_true(wait_for(gone, t, id));
    queue_close(q);
    sink_stop(&k);
    assert_int_equal(k.messages, 0);

    struct store_user *u = NULL;
    struct store_folder f;
    struct store_err e = {0};
    char *body = NULL;
    size_t len = 0;
    assert_int_equal(store_user_open(t->store, "bob@example.com", &u, &e), STORE_OK);
    assert_int_equal(mail_folder_resolve(u, "INBOX", &f), STORE_OK);
    struct store_item it;
    assert_int_equal(store_item_by_uid(u, f.id, f.uidnext - 1, &it), STORE_OK);
    assert_int_equal(store_item_body(u, it.id, &body, &len, &e), STORE_OK);
    store_user_release(u);
    assert_non_null(strstr(body, "message/delivery-status"));
    assert_non_null(strstr(body, "Final-Recipient: rfc822; nobody@external.test"));
    assert_non_null(strstr(body, "Diagnostic-Code: smtp; 550 5.1.1 <nobody>: no such user"));
    free(body);
}

/* A bounce that cannot be delivered is dropped, not bounced. */
static void test_no_bounce_of_bounce(void **state)
{
    struct env *t = *state;
    struct sink k;
    char id[QUEUE_ID_MAX], err[256];
    struct queue *q;

    sink_start(&k, 550, 1);
    snprintf(t->cfg.smarthost, sizeof(t->cfg.smarthost), "127.0.0.1:%d", k.port);
    q = queue_open(t->store, &t->cfg, err, sizeof(err));
    t->dl.queue = q;
    assert_int_equal(queue_start(q, &t->dl), 0);
    submit(q, "", "nobody@external.test", id);
    assert_true(wait_for(gone, t, id));
    queue_close(q);
    sink_stop(&k);
    assert_int_equal(inbox_count(t, "bob@example.com"), 0);
}

static int count_rows(const struct queue_info *m, void *ctx)
{
    int *n = ctx;
    (*n)++;
    assert_string_equal(m->mail_from, "bob@example.com");
    assert_int_equal(m->nrcpts, 1);
    assert_string_equal(m->rcpts[0].status, "queued");
    assert_true(m->size > 0);
    return 0;
}

/* Nothing listens: the message stays queued with the reason and a retry in 5 minutes;
 * list shows it, del removes it. */
static void test_temp_failure_list_del(void **state)
{
    struct env *t = *state;
    char id[QUEUE_ID_MAX], err[256];
    struct queue *q;
    struct queue_env e;
    int n = 0;

    snprintf(t->cfg.smarthost, sizeof(t->cfg.smarthost), "127.0.0.1:1"); /* refused */
    q = queue_open(t->store, &t->cfg, err, sizeof(err));
    t->dl.queue = q;
    assert_int_equal(queue_start(q, &t->dl), 0);
    submit(q, "bob@example.com", "someone@external.test", id);
    for (int i = 0; i < 100; i++) {
        char path[1200], buf[4096];
        snprintf(path, sizeof(path), "%s/queue/%s.env", t->dir, id);
        FILE *f = fopen(path, "r");
        size_t len = f ? fread(buf, 1, sizeof(buf), f) : 0;
        if (f)
            fclose(f);
        if (len && queue_env_parse(buf, len, &e) == 0) {
            if (e.attempts > 0)
                break;
            queue_env_free(&e);
        }
        usleep(100000);
    }
    assert_int_equal(e.attempts, 1);
    assert_int_equal(e.r[0].state, QR_QUEUED);
    assert_non_null(strstr(e.r[0].diag, "refused"));
    assert_true(e.next >= e.last_attempt + 299 && e.next <= e.last_attempt + 301);
    queue_env_free(&e);

    assert_int_equal(queue_list(q, count_rows, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    assert_int_equal(queue_del(q, id, err, sizeof(err)), 0);
    assert_true(gone(t, id));
    assert_int_equal(queue_del(q, id, err, sizeof(err)), 1);
    assert_int_equal(queue_flush(q, err, sizeof(err)), 0);
    queue_close(q);
    assert_int_equal(inbox_count(t, "bob@example.com"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_env_roundtrip),
        cmocka_unit_test(test_dsn),
        cmocka_unit_test(test_env_dsn),
        cmocka_unit_test(test_dsn_notify),
        cmocka_unit_test_setup_teardown(test_dsn_next_hop, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_submit_restart_deliver, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_bounce_to_local_sender, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_no_bounce_of_bounce, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_temp_failure_list_del, env_setup, env_teardown),
    };
    log_set_level(LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
