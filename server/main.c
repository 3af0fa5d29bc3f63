/*
 * main.c — the polaris program: global options, then either `serve` (the server) or an
 * admin command (cli.c).
 *
 * `serve` blocks SIGTERM, SIGINT and SIGHUP before any thread exists, so every thread
 * inherits the mask and the main thread alone takes them with sigwait(): shutdown runs as
 * ordinary code, with no async-signal-safety concerns.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "autodiscover/ad.h"
#include "dav/dav.h"
#include "eas/eas.h"
#include "mail/mail.h"
#include "server/server.h"

#ifndef POLARIS_VERSION
#define POLARIS_VERSION "0.1.0"
#endif

#define MAIN_STOP_GRACE_MS 5000

struct main_opts {
    const char *config_path;
    int json;
};

/* Every session holds a descriptor; the default soft limit (often 1024) is far too low. */
static void main_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        log_warn("server", "cannot raise the open-file limit: %s", strerror(errno));
}

/* The line-protocol listeners of [listen]. */
struct main_line {
    const char *name;
    const char *addr;
    int implicit_tls;
    net_session_fn fn;
    int submission;    /* SMTP submission (AUTH required) rather than MX */
};

#define MAIN_NLINES 8

static void main_line_table(const struct config *cfg, struct main_line out[MAIN_NLINES])
{
    const struct main_line l[MAIN_NLINES] = {
        {"imap", cfg->imap, 0, imap_session, 0},
        {"imaps", cfg->imaps, 1, imap_session, 0},
        {"pop3", cfg->pop3, 0, pop3_session, 0},
        {"pop3s", cfg->pop3s, 1, pop3_session, 0},
        {"smtp", cfg->smtp, 0, smtp_session, 0},
        {"smtp_alt", cfg->smtp_alt, 0, smtp_session, 0},
        {"submission", cfg->submission, 0, smtp_session, 1},
        {"submissions", cfg->submissions, 1, smtp_session, 1},
    };
    memcpy(out, l, sizeof(l));
}

/* "loopback" plain-text logins are for listeners bound to a loopback address only. */
static int main_addr_is_loopback(const char *addr)
{
    char host[CFG_ADDR_MAX];
    int port;

    if (config_split_addr(addr, host, sizeof(host), &port) != 0)
        return 0;
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

/* Folder views kept for IMAP SELECT: a million messages is ~50 MB at most. */
#define MAIN_IMAP_CACHE_MSGS 1000000

struct main_lines {
    struct tls_ctx *tls;
    struct imap_cache *imap_cache;
    struct mail_ctx ctx[MAIN_NLINES];
    struct net_listener *l[MAIN_NLINES];
};

static int main_start_lines(struct main_lines *ml, const struct config *cfg, struct store *st,
                            struct auth *auth, struct deliver *dl, char *err, size_t errlen)
{
    struct main_line t[MAIN_NLINES];

    main_line_table(cfg, t);
    if (!(ml->imap_cache = imap_cache_new(MAIN_IMAP_CACHE_MSGS))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < MAIN_NLINES; i++) {
        if (!t[i].addr[0])
            continue;
        if (!ml->tls && !(ml->tls = tls_ctx_new(cfg->tls_cert, cfg->tls_key, err, errlen)))
            return -1;
        ml->ctx[i] = (struct mail_ctx){
            .store = st,
            .auth = auth,
            .cfg = cfg,
            .hostname = cfg->hostname,
            .allow_plaintext = cfg->allow_plaintext == 2 ||
                               (cfg->allow_plaintext == 1 && main_addr_is_loopback(t[i].addr)),
            .imap_cache = ml->imap_cache,
            .deliver = dl,
            .submission = t[i].submission,
            .idle_timeout_ms = 1000 * (t[i].fn == imap_session   ? cfg->imap_timeout
                                       : t[i].fn == pop3_session ? cfg->pop3_timeout
                                                                 : cfg->smtp_timeout),
        };
        struct net_listen_opts o = {.name = t[i].name,
                                    .addr = t[i].addr,
                                    .tls = ml->tls,
                                    .implicit_tls = t[i].implicit_tls,
                                    .starttls = !t[i].implicit_tls,
                                    .fn = t[i].fn,
                                    .ctx = &ml->ctx[i]};
        char lerr[256];
        if (!(ml->l[i] = net_listen(&o, lerr, sizeof(lerr)))) {
            snprintf(err, errlen, "%s: %s", t[i].name, lerr);
            return -1;
        }
        log_info("server", "listening on %s port %d%s", t[i].name, net_listener_port(ml->l[i]),
                 ml->ctx[i].allow_plaintext ? " (plain-text logins allowed)" : "");
    }
    return 0;
}

static void main_stop_lines(struct main_lines *ml)
{
    int left = 0;

    for (int i = 0; i < MAIN_NLINES; i++)
        if (ml->l[i])
            left += net_listener_stop(ml->l[i], MAIN_STOP_GRACE_MS);
    /* Sessions that outlived the grace period still use the TLS context: keep it then. */
    if (left) {
        log_warn("server", "%d line-protocol sessions still running at exit", left);
    } else {
        tls_ctx_free(ml->tls);
        imap_cache_free(ml->imap_cache);
    }
}

static void main_log_listener(struct http_server *h, const char *name, const char *addr, int tls)
{
    char host[CFG_ADDR_MAX];
    int port = 0;

    if (!addr[0])
        return;
    if (config_split_addr(addr, host, sizeof(host), &port) != 0)
        host[0] = '\0';
    log_info("server", "listening on %s %s:%d", name, host[0] ? host : "*",
             http_server_port(h, tls));
}

static int main_wait_for_stop(const sigset_t *set)
{
    int sig = 0;

    for (;;) {
        if (sigwait(set, &sig) != 0)
            return -1;
        if (sig != SIGHUP)
            return sig;
        log_info("server", "SIGHUP: reloading is not supported; restart to apply changes");
    }
}

static int main_serve(const struct main_opts *o)
{
    struct config cfg;
    struct store_config sc = {0};
    struct store_err se = {0};
    struct store *st = NULL;
    struct auth *auth = NULL;
    struct http_server *h = NULL;
    struct dav *dav = NULL;
    struct eas *eas = NULL;
    struct ad *ad = NULL;
    struct main_lines ml = {0};
    struct queue *queue = NULL;
    struct deliver dl = {0};
    enum log_level lvl = LOG_INFO;
    sigset_t set;
    char err[CFG_PATH_MAX + 512];
    int rc = 1, sig;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN); /* a vanished peer is an error return, not a kill */

    if (config_load(&cfg, o->config_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "polaris: %s\n", err);
        goto err;
    }
    log_level_parse(cfg.log_level, &lvl);
    log_set_level(lvl);
    main_raise_nofile();

    sc.data_dir = cfg.data_dir;
    if (store_open(&st, &sc, &se) != STORE_OK) {
        fprintf(stderr, "polaris: cannot open the data dir %s: %s\n", cfg.data_dir, se.msg);
        goto err;
    }
    if (store_notify_listen(st, &se) != STORE_OK) /* only wake-ups from other processes */
        log_warn("server", "changes made by other processes will not wake IDLE: %s", se.msg);
    if (access(cfg.data_dir, W_OK) != 0) {
        fprintf(stderr, "polaris: the data dir %s is not writable: %s\n", cfg.data_dir,
                strerror(errno));
        goto err;
    }
    if (tls_ensure_cert(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "polaris: TLS certificate: %s\n", err);
        goto err;
    }
    if (!(auth = auth_new(st, &cfg))) {
        fprintf(stderr, "polaris: cannot set up authentication\n");
        goto err;
    }
    /* The outbound queue and the delivery pipeline every engine hands mail to. */
    if (!(queue = queue_open(st, &cfg, err, sizeof(err)))) {
        fprintf(stderr, "polaris: queue: %s\n", err);
        goto err;
    }
    dl =
        (struct deliver){.store = st, .queue = queue, .cfg = &cfg, .local_hook = eas_itip_received};
    if (queue_start(queue, &dl) != 0) {
        fprintf(stderr, "polaris: cannot start the outbound queue\n");
        goto err;
    }
    if (main_start_lines(&ml, &cfg, st, auth, &dl, err, sizeof(err)) != 0) {
        fprintf(stderr, "polaris: cannot listen: %s\n", err);
        goto err;
    }

    if (cfg.http[0] || cfg.https[0]) {
        struct http_config hc = {.store = st, .auth = auth, .cfg = &cfg};
        if (!(h = http_server_new(&hc, err, sizeof(err)))) {
            fprintf(stderr, "polaris: HTTP: %s\n", err);
            goto err;
        }
        /* The HTTP engines replace the front end's 501 placeholders with their routes. */
        dav = dav_new(st, &cfg);
        eas = eas_new(st, &cfg, &dl);
        ad = ad_new(st, &cfg);
        if (!dav || !eas || !ad || dav_register(dav, h) != 0 || eas_register(eas, h) != 0 ||
            ad_register(ad, h) != 0) {
            fprintf(stderr, "polaris: cannot set up the HTTP engines\n");
            goto err;
        }
        if (http_server_start(h, cfg.http, cfg.https, cfg.tls_cert, cfg.tls_key, err,
                              sizeof(err)) != 0) {
            fprintf(stderr, "polaris: cannot listen: %s\n", err);
            goto err;
        }
        main_log_listener(h, "http", cfg.http, 0);
        main_log_listener(h, "https", cfg.https, 1);
    }
    log_info("server", "polaris %s serving, data dir %s", POLARIS_VERSION, cfg.data_dir);

    sig = main_wait_for_stop(&set);
    log_info("server", "%s: stopping",
             sig == SIGTERM  ? "SIGTERM"
             : sig == SIGINT ? "SIGINT"
                             : "sigwait failed");
    rc = 0;
err:
    if (h) {
        http_server_stop(h, MAIN_STOP_GRACE_MS);
        http_server_free(h);
    }
    /* After the front end: no request can reach an engine any more. */
    ad_free(ad);
    eas_free(eas);
    dav_free(dav);
    main_stop_lines(&ml);
    queue_close(queue); /* after the sessions that submit to it */
    auth_free(auth);
    if (st)
        store_close(st);
    if (rc == 0)
        log_info("server", "stopped");
    return rc;
}

static void main_version(void)
{
    printf("polaris %s\n", POLARIS_VERSION);
}

static int main_usage_error(int json, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A wrong command line before any command ran: one line, exit 2 (JSON too with --json). */
static int main_usage_error(int json, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "polaris: %s\nTry 'polaris --help'.\n", msg);
    if (json) {
        fputs("{\"error\":\"", stdout);
        for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
            if (*p == '"' || *p == '\\')
                putchar('\\');
            if (*p >= 0x20 && *p != 0x7f)
                putchar(*p);
        }
        fputs("\",\"code\":\"usage\"}\n", stdout);
    }
    return 2;
}

/* `serve` takes only the global options, which may follow it. */
static int main_serve_args(struct main_opts *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("Usage: polaris [-c FILE] serve\n\nRuns the server until SIGTERM or "
                   "SIGINT.\n");
            return 0;
        } else if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
                   i + 1 < argc) {
            o->config_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            o->config_path = argv[i] + 9;
        } else if (strcmp(argv[i], "--json") == 0) {
            o->json = 1;
        } else {
            return main_usage_error(o->json, "serve: unexpected argument '%s'", argv[i]);
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    struct main_opts o = {.config_path = getenv("POLARIS_CONFIG"), .json = 0};
    int i, rc;

    if (!o.config_path || !o.config_path[0])
        o.config_path = "./polaris.ini";
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli_usage(0);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            main_version();
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            o.json = 1;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= argc)
                return main_usage_error(o.json, "option '%s' needs a value", a);
            o.config_path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            o.config_path = a + 9;
        } else {
            return main_usage_error(o.json, "unknown option '%s'", a);
        }
    }
    if (i >= argc)
        return main_usage_error(o.json, "missing command");
    if (strcmp(argv[i], "serve") == 0) {
        rc = main_serve_args(&o, argc - i, argv + i);
        return rc >= 0 ? rc : main_serve(&o);
    }
    if (strcmp(argv[i], "help") == 0) {
        cli_usage(0);
        return 0;
    }
    if (strcmp(argv[i], "version") == 0) {
        main_version();
        return 0;
    }
    return cli_run(argc - i, argv + i, o.config_path, o.json);
}
