/*
 * log.c — one line per event on stderr: "2024-05-01T12:00:00.123Z INFO http: message".
 *
 * Each line is formatted into a bounded buffer and written with a single write(2), so lines
 * from different threads never interleave (stderr is unbuffered and O_APPEND-safe for one
 * write). Control characters in the subsystem and message are escaped: a client-supplied
 * string that reaches a log line (a login name, a path) cannot start a forged line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "server/server.h"

#define LOG_LINE_MAX 4096

static atomic_int log_min_level = LOG_INFO;

static const char *const log_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void log_set_level(enum log_level lvl)
{
    if (lvl >= LOG_DEBUG && lvl <= LOG_ERROR)
        atomic_store(&log_min_level, (int)lvl);
}

int log_level_parse(const char *s, enum log_level *out)
{
    static const struct {
        const char *name;
        enum log_level lvl;
    } names[] = {
        {"debug", LOG_DEBUG},  {"info", LOG_INFO},   {"warn", LOG_WARN},
        {"warning", LOG_WARN}, {"error", LOG_ERROR},
    };

    if (!s)
        return -1;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            if (out)
                *out = names[i].lvl;
            return 0;
        }
    }
    return -1;
}

/* Appends src to out[*len..cap) with control characters escaped; stops when full. */
static void log_escape(char *out, size_t *len, size_t cap, const char *src)
{
    static const char hex[] = "0123456789abcdef";

    for (const unsigned char *s = (const unsigned char *)src; *s; s++) {
        char esc[5];
        size_t n = 0;
        if (*s == '\n') {
            esc[n++] = '\\';
            esc[n++] = 'n';
        } else if (*s == '\r') {
            esc[n++] = '\\';
            esc[n++] = 'r';
        } else if (*s == '\t') {
            esc[n++] = '\\';
            esc[n++] = 't';
        } else if (*s < 0x20 || *s == 0x7f) {
            esc[n++] = '\\';
            esc[n++] = 'x';
            esc[n++] = hex[*s >> 4];
            esc[n++] = hex[*s & 0xf];
        } else {
            esc[n++] = (char)*s;
        }
        if (*len + n >= cap)
            return;
        memcpy(out + *len, esc, n);
        *len += n;
    }
}

static size_t log_timestamp(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    size_t n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(out + n, cap - n, ".%03ldZ ", ts.tv_nsec / 1000000L);
    return n < cap ? n : cap - 1;
}

void log_msg(enum log_level lvl, const char *sub, const char *fmt, ...)
{
    char msg[LOG_LINE_MAX], line[LOG_LINE_MAX];
    size_t len;
    va_list ap;
    int saved = errno; /* callers may log between a failure and reading errno */

    if (lvl < LOG_DEBUG || lvl > LOG_ERROR)
        lvl = LOG_ERROR;
    if ((int)lvl < atomic_load(&log_min_level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    len = log_timestamp(line, sizeof(line));
    len += (size_t)snprintf(line + len, sizeof(line) - len, "%s ", log_names[lvl]);
    log_escape(line, &len, sizeof(line) - 3, sub ? sub : "-");
    line[len++] = ':';
    line[len++] = ' ';
    log_escape(line, &len, sizeof(line) - 1, msg);
    line[len++] = '\n';
    /* One write per line; a short write to a pipe is not retried to avoid splitting. */
    if (write(STDERR_FILENO, line, len) < 0) {
        /* nowhere left to report it */
    }
    errno = saved;
}
