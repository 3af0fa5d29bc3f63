/*
 * config.c — the INI configuration: defaults, loading through libinih, validation of every
 * key, and "host:port" splitting for the listeners.
 *
 * libinih (as packaged) calls its handler without a line number and never for an empty
 * section, and it splits lines longer than its fixed buffer into pieces. We feed it through
 * our own line reader so that every error names FILE:LINE, section headers are checked
 * even when empty, and an over-long line is an error instead of two half-lines.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "server/server.h"

/* libinih's stack buffer holds 200 bytes including "\r\n\0". */
#define CONFIG_LINE_MAX 197
#define CONFIG_ERR_MAX  512

enum config_kind { CK_STR, CK_INT, CK_SIZE, CK_ADDR, CK_LEVEL, CK_NAME, CK_PLAINTEXT };

struct config_key {
    const char *section;
    const char *name;
    enum config_kind kind;
    size_t off;    /* offset of the field in struct config */
    size_t size;   /* CK_STR/CK_ADDR/CK_LEVEL/CK_NAME: buffer size */
    long min, max; /* CK_INT bounds */
};

#define CFG_STR(sec, key, field, kind)                                                             \
    {                                                                                              \
        sec, key, kind, offsetof(struct config, field), sizeof(((struct config *)0)->field), 0, 0  \
    }
#define CFG_INT(sec, key, field, lo, hi)                                                           \
    {                                                                                              \
        sec, key, CK_INT, offsetof(struct config, field), sizeof(int), lo, hi                      \
    }

static const struct config_key config_keys[] = {
    CFG_STR("server", "hostname", hostname, CK_NAME),
    CFG_STR("server", "web_base", web_base, CK_NAME),
    CFG_STR("server", "data_dir", data_dir, CK_STR),
    CFG_STR("server", "log_level", log_level, CK_LEVEL),
    CFG_INT("server", "http_threads", http_threads, 1, 1024),
    {"server", "max_request", CK_SIZE, offsetof(struct config, max_request_bytes), sizeof(int64_t),
     0, 0},
    CFG_STR("listen", "http", http, CK_ADDR),
    CFG_STR("listen", "https", https, CK_ADDR),
    CFG_STR("listen", "imap", imap, CK_ADDR),
    CFG_STR("listen", "imaps", imaps, CK_ADDR),
    CFG_STR("listen", "pop3", pop3, CK_ADDR),
    CFG_STR("listen", "pop3s", pop3s, CK_ADDR),
    CFG_STR("listen", "smtp", smtp, CK_ADDR),
    CFG_STR("listen", "submission", submission, CK_ADDR),
    CFG_STR("listen", "submissions", submissions, CK_ADDR),
    CFG_STR("listen", "smtp_alt", smtp_alt, CK_ADDR),
    {"smtp", "max_message", CK_SIZE, offsetof(struct config, smtp_max_message), sizeof(int64_t),
     0, 0},
    CFG_INT("smtp", "max_recipients", smtp_max_rcpts, 1, 100000),
    CFG_INT("smtp", "rate_per_minute", smtp_rate_minute, 1, 1000000),
    CFG_INT("smtp", "rate_per_hour", smtp_rate_hour, 1, 10000000),
    CFG_STR("smtp", "smarthost", smarthost, CK_ADDR),
    CFG_STR("smtp", "resolver", resolver, CK_ADDR),
    CFG_INT("smtp", "queue_lifetime", queue_lifetime, 60, 86400 * 30),
    CFG_STR("smtp", "dkim_selector", dkim_selector, CK_STR),
    CFG_INT("smtp", "autoreply_days", autoreply_days, 0, 365),
    CFG_INT("smtp", "timeout", smtp_timeout, 1, 86400),
    CFG_STR("smtp", "postmaster", smtp_postmaster, CK_STR),
    CFG_INT("imap", "timeout", imap_timeout, 1, 86400),
    CFG_INT("pop3", "timeout", pop3_timeout, 1, 86400),
    {"dav", "max_resource", CK_SIZE, offsetof(struct config, dav_max_resource), sizeof(int64_t), 0,
     0},
    CFG_INT("eas", "heartbeat_min", eas_heartbeat_min, 1, 86400),
    CFG_INT("eas", "heartbeat_max", eas_heartbeat_max, 1, 86400),
    CFG_INT("eas", "window_max", eas_window_max, 1, 100000),
    CFG_INT("eas", "ping_folders", eas_ping_folders, 1, 100000),
    CFG_STR("eas", "smime_ca", eas_smime_ca, CK_STR),
    CFG_STR("autodiscover", "public_host", ad_public_host, CK_NAME),
    CFG_STR("autodiscover", "mx", ad_mx, CK_STR),
    CFG_STR("autodiscover", "spf", ad_spf, CK_STR),
    CFG_STR("autodiscover", "dmarc", ad_dmarc, CK_STR),
    CFG_STR("autodiscover", "address", ad_address, CK_STR),
    CFG_STR("autodiscover", "webmail", ad_webmail, CK_NAME),
    CFG_STR("tls", "cert", tls_cert, CK_STR),
    CFG_STR("tls", "key", tls_key, CK_STR),
    CFG_INT("auth", "fail_max", auth_fail_max, 1, 1000000),
    CFG_INT("auth", "fail_window", auth_fail_window, 1, 86400 * 7),
    CFG_INT("auth", "cache_ttl", auth_cache_ttl, 0, 86400),
    {"auth", "allow_plaintext", CK_PLAINTEXT, offsetof(struct config, allow_plaintext), sizeof(int),
     0, 0},
};
#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/* State shared by the line reader and the key handler during one config_load. */
struct config_parse {
    struct config *cfg;
    const char *path;
    FILE *fp;
    int lineno;   /* line last handed to libinih */
    int err_line; /* first error found by us, 0 = none */
    char err[CONFIG_ERR_MAX];
    int set_line[CONFIG_NKEYS]; /* where each key was set, to refuse duplicates */
};

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    if (gethostname(cfg->hostname, sizeof(cfg->hostname)) != 0 || cfg->hostname[0] == '\0')
        snprintf(cfg->hostname, sizeof(cfg->hostname), "localhost");
    cfg->hostname[sizeof(cfg->hostname) - 1] = '\0';
    snprintf(cfg->web_base, sizeof(cfg->web_base), "w.emailarray.com");
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "./data");
    snprintf(cfg->log_level, sizeof(cfg->log_level), "info");
    cfg->http_threads = 4;
    cfg->max_request_bytes = 64LL * 1024 * 1024;
    cfg->auth_fail_max = 10;
    cfg->auth_fail_window = 300;
    cfg->auth_cache_ttl = 300;
    cfg->smtp_max_message = 25 * 1024 * 1024; /* what customers are told: 25 MB */
    cfg->smtp_max_rcpts = 100;
    cfg->smtp_rate_minute = 50;
    cfg->smtp_rate_hour = 500;
    cfg->queue_lifetime = 5 * 86400;
    snprintf(cfg->dkim_selector, sizeof(cfg->dkim_selector), "polaris");
    cfg->autoreply_days = 7;
    cfg->imap_timeout = 30 * 60; /* RFC 3501 §5.4: at least 30 minutes */
    cfg->pop3_timeout = 10 * 60; /* RFC 1939 §3: at least 10 minutes */
    cfg->smtp_timeout = 5 * 60;  /* RFC 5321 §4.5.3.2: 5 minutes for a command */
    cfg->dav_max_resource = 10 * 1024 * 1024; /* photos up to 10 MB, as customers are told */
    cfg->eas_heartbeat_min = 60;   /* MS-ASCMD Ping: 60..3540 seconds */
    cfg->eas_heartbeat_max = 3540;
    cfg->eas_window_max = 512;
    cfg->eas_ping_folders = 300;
    snprintf(cfg->ad_spf, sizeof(cfg->ad_spf), "v=spf1 mx ~all");
    snprintf(cfg->ad_dmarc, sizeof(cfg->ad_dmarc), "v=DMARC1; p=none");
    cfg->path = NULL;
}

static int config_port(const char *s, int *port)
{
    long v = 0;

    if (*s == '\0' || strlen(s) > 5)
        return -1;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return -1;
        v = v * 10 + (*s - '0');
    }
    if (v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

/* Host names, IPv4 literals, and (inside brackets only) IPv6 literals with a zone. */
static int config_host_ok(const char *h, size_t n, int v6)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (isalnum(c) || c == '.' || c == '-' || c == '_')
            continue;
        if (v6 && (c == ':' || c == '%'))
            continue;
        return -1;
    }
    return 0;
}

int config_split_addr(const char *s, char *host, size_t hostlen, int *port)
{
    const char *h, *colon;
    size_t n;
    int v6 = 0;

    if (!s || !host || hostlen == 0 || !port)
        return -1;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || close == s + 1)
            return -1;
        h = s + 1;
        n = (size_t)(close - h);
        colon = close + 1;
        v6 = 1;
    } else {
        colon = strchr(s, ':');
        if (!colon || strchr(colon + 1, ':'))
            return -1; /* no port, or an unbracketed IPv6 literal */
        h = s;
        n = (size_t)(colon - s);
    }
    if (n >= hostlen || config_host_ok(h, n, v6) != 0)
        return -1;
    if (config_port(colon + 1, port) != 0)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    return 0;
}

static void config_fail(struct config_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Keeps the first error only: later ones are often consequences of it. */
static void config_fail(struct config_parse *p, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->err_line)
        return;
    p->err_line = p->lineno;
    n = snprintf(p->err, sizeof(p->err), "%s:%d: ", p->path, p->lineno);
    if (n < 0 || (size_t)n >= sizeof(p->err))
        return; /* the path alone fills the buffer */
    va_start(ap, fmt);
    vsnprintf(p->err + n, sizeof(p->err) - (size_t)n, fmt, ap);
    va_end(ap);
}

/* An error that is not about one line (missing file, path resolution). */
static void config_fail_file(struct config_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void config_fail_file(struct config_parse *p, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(p->err, sizeof(p->err), fmt, ap);
    va_end(ap);
}

static int config_section_known(const char *name, size_t n)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        if (strlen(config_keys[i].section) == n && strncmp(config_keys[i].section, name, n) == 0)
            return 1;
    return 0;
}

/* Section headers are checked here because libinih reports only key=value lines. */
static void config_check_header(struct config_parse *p, const char *line)
{
    const char *end;

    while (isspace((unsigned char)*line))
        line++;
    if (*line != '[')
        return;
    end = strchr(line, ']');
    if (!end)
        return; /* libinih reports the syntax error */
    if (!config_section_known(line + 1, (size_t)(end - line - 1)))
        config_fail(p, "[%.*s]: unknown section", (int)(end - line - 1), line + 1);
}

/* fgets-like reader for ini_parse_stream that counts lines and refuses long ones. */
static char *config_reader(char *buf, int num, void *stream)
{
    struct config_parse *p = stream;
    int c;
    int n = 0, too_long = 0;

    if (feof(p->fp))
        return NULL;
    while ((c = getc(p->fp)) != EOF && c != '\n') {
        if (n < num - 2 && n < CONFIG_LINE_MAX)
            buf[n++] = (char)c;
        else
            too_long = 1;
    }
    if (c == EOF && n == 0 && !too_long)
        return NULL;
    p->lineno++;
    buf[n++] = '\n';
    buf[n] = '\0';
    if (too_long) {
        config_fail(p, "line longer than %d bytes", CONFIG_LINE_MAX);
        snprintf(buf, (size_t)num, "\n"); /* hand libinih a blank line instead */
    } else {
        config_check_header(p, buf);
    }
    return buf;
}

static int config_set_value(struct config_parse *p, const struct config_key *k, const char *value)
{
    char *field = (char *)p->cfg + k->off;
    char host[CFG_ADDR_MAX];
    enum log_level lvl;
    int port;

    if (k->kind != CK_INT && k->kind != CK_SIZE && k->kind != CK_PLAINTEXT &&
        strlen(value) >= k->size) {
        config_fail(p, "[%s] %s: value longer than %zu bytes", k->section, k->name, k->size - 1);
        return -1;
    }
    switch (k->kind) {
    case CK_INT: {
        char *end;
        long v;
        errno = 0;
        v = strtol(value, &end, 10);
        if (*value == '\0' || *end != '\0' || errno != 0 || v < k->min || v > k->max) {
            config_fail(p, "[%s] %s: not a number from %ld to %ld", k->section, k->name, k->min,
                        k->max);
            return -1;
        }
        *(int *)(void *)field = (int)v;
        return 0;
    }
    case CK_SIZE: {
        int64_t v = store_parse_size(value);
        if (v <= 0) {
            config_fail(p, "[%s] %s: not a size (e.g. 64M, 1G)", k->section, k->name);
            return -1;
        }
        *(int64_t *)(void *)field = v;
        return 0;
    }
    case CK_ADDR:
        if (*value && config_split_addr(value, host, sizeof(host), &port) != 0) {
            config_fail(p, "[%s] %s: not host:port, [v6]:port or :port", k->section, k->name);
            return -1;
        }
        break;
    case CK_PLAINTEXT: {
        /* Plain-text logins without TLS: never, only on loopback listeners, or anywhere. */
        static const char *const names[] = {"no", "loopback", "yes"};
        for (int i = 0; i < 3; i++)
            if (strcmp(value, names[i]) == 0) {
                *(int *)(void *)field = i;
                return 0;
            }
        config_fail(p, "[%s] %s: not one of no, loopback, yes", k->section, k->name);
        return -1;
    }
    case CK_LEVEL:
        if (log_level_parse(value, &lvl) != 0) {
            config_fail(p, "[%s] %s: not one of debug, info, warn, error", k->section, k->name);
            return -1;
        }
        break;
    case CK_NAME:
        if (*value == '\0' || config_host_ok(value, strlen(value), 0) != 0) {
            config_fail(p, "[%s] %s: not a host name", k->section, k->name);
            return -1;
        }
        break;
    case CK_STR:
        break;
    }
    memcpy(field, value, strlen(value) + 1);
    return 0;
}

static int config_handler(void *user, const char *section, const char *name, const char *value)
{
    struct config_parse *p = user;

    if (p->err_line)
        return 1; /* already failed; let libinih finish quietly */
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const struct config_key *k = &config_keys[i];
        if (strcmp(k->section, section) != 0 || strcmp(k->name, name) != 0)
            continue;
        if (p->set_line[i]) {
            config_fail(p, "[%s] %s: set twice (first on line %d)", section, name, p->set_line[i]);
            return 1;
        }
        p->set_line[i] = p->lineno;
        config_set_value(p, k, value);
        return 1;
    }
    if (!config_section_known(section, strlen(section)))
        config_fail(p, "[%s] %s: unknown section", section, name);
    else
        config_fail(p, "[%s] %s: unknown key", section, name);
    return 1;
}

/* Makes a relative path in `field` relative to the config file's directory. */
static int config_resolve(struct config_parse *p, char *field, size_t size, const char *what)
{
    char dir[PATH_MAX], real[PATH_MAX], joined[CFG_PATH_MAX + PATH_MAX + 2];
    const char *slash = strrchr(p->path, '/');
    const char *rel = field;

    if (field[0] == '\0' || field[0] == '/')
        return 0;
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == p->path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - p->path), p->path);
    if (!realpath(dir, real)) {
        config_fail_file(p, "%s: %s: %s", p->path, dir, strerror(errno));
        return -1;
    }
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2;
    if (strcmp(rel, ".") == 0 || rel[0] == '\0')
        snprintf(joined, sizeof(joined), "%s", real);
    else
        snprintf(joined, sizeof(joined), "%s%s%s", real, strcmp(real, "/") ? "/" : "", rel);
    if (strlen(joined) >= size) {
        config_fail_file(p, "%s: %s: resolved path too long", p->path, what);
        return -1;
    }
    memcpy(field, joined, strlen(joined) + 1);
    return 0;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
    struct config_parse p;
    int rc;

    config_defaults(cfg);
    memset(&p, 0, sizeof(p));
    p.cfg = cfg;
    p.path = path;
    p.fp = fopen(path, "r");
    if (!p.fp) {
        config_fail_file(&p, "%s: %s", path, strerror(errno));
        goto err;
    }
    rc = ini_parse_stream(config_reader, &p, config_handler, &p);
    fclose(p.fp);
    /* libinih's own syntax errors (e.g. a line without '='), unless ours came first. */
    if (rc > 0 && (p.err_line == 0 || rc < p.err_line))
        config_fail_file(&p, "%s:%d: syntax error (expected [section] or key = value)", path, rc);
    else if (rc < 0 && !p.err_line)
        config_fail_file(&p, "%s: cannot parse", path);
    if (rc != 0 || p.err_line)
        goto err;
    if (config_resolve(&p, cfg->data_dir, sizeof(cfg->data_dir), "data_dir") != 0 ||
        config_resolve(&p, cfg->tls_cert, sizeof(cfg->tls_cert), "cert") != 0 ||
        config_resolve(&p, cfg->tls_key, sizeof(cfg->tls_key), "key") != 0)
        goto err;
    cfg->path = path;
    return 0;
err:
    if (err && errlen)
        snprintf(err, errlen, "%s", p.err);
    return -1;
}
