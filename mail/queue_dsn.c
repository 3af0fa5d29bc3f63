/*
 * queue_dsn.c — the outbound queue's records: the envelope/state file of each message,
 * the retry schedule, and the RFC 3464 delivery status notifications (bounces and delay
 * notices) sent to senders.
 *
 * The state file is line-oriented text ("key value", one "rcpt" line per recipient) so
 * that an operator can read it; every free-form value is %XX-escaped (bytes <= 0x20, '%',
 * 0x7f and above), so a value is always one token. A "rcpt" line is
 *   rcpt STATE ADDRESS STATUS REMOTE DIAG [NOTIFY ORCPT]
 * where the DSN pair came later: files written before it (six tokens) stay readable.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/mail.h"
#include "mail/queue.h"

#define QUEUE_ENV_MAGIC "polaris-queue 1"
#define QUEUE_RCPT_MAX  100000

int queue_backoff(int attempts)
{
    static const int steps[] = {300, 900, 1800, 3600, 7200, 14400};
    size_t n = sizeof(steps) / sizeof(steps[0]);

    if (attempts < 1)
        return 0;
    return steps[(size_t)attempts - 1 < n ? (size_t)attempts - 1 : n - 1];
}

static const char *const queue_rstates[] = {"queued", "sent", "failed", "bounced", "relayed"};
#define QUEUE_NSTATES (sizeof(queue_rstates) / sizeof(queue_rstates[0]))

const char *queue_rstate_name(enum queue_rstate s)
{
    return (unsigned)s < QUEUE_NSTATES ? queue_rstates[s] : "?";
}

static const struct {
    const char *name;
    unsigned bit;
} queue_notify_names[] = {
    {"NEVER", DELIVER_NOTIFY_NEVER},
    {"SUCCESS", DELIVER_NOTIFY_SUCCESS},
    {"FAILURE", DELIVER_NOTIFY_FAILURE},
    {"DELAY", DELIVER_NOTIFY_DELAY},
};

void queue_notify_format(unsigned notify, char *out, size_t outlen)
{
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < sizeof(queue_notify_names) / sizeof(queue_notify_names[0]); i++) {
        if (!(notify & queue_notify_names[i].bit) || n >= outlen)
            continue;
        int w = snprintf(out + n, outlen - n, "%s%s", n ? "," : "", queue_notify_names[i].name);
        if (w > 0)
            n += (size_t)w;
    }
}

/* The keyword list back to bits; unknown words are ignored. */
static unsigned queue_notify_parse(const char *s)
{
    unsigned bits = 0;

    while (*s) {
        size_t n = strcspn(s, ",");
        for (size_t i = 0; i < sizeof(queue_notify_names) / sizeof(queue_notify_names[0]); i++)
            if (strlen(queue_notify_names[i].name) == n &&
                strncasecmp(s, queue_notify_names[i].name, n) == 0)
                bits |= queue_notify_names[i].bit;
        s += n;
        s += *s == ',';
    }
    return bits;
}

void queue_xtext(const char *in, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 <= outlen; p++) {
        if (*p < 33 || *p > 126 || *p == '+' || *p == '=') {
            out[o++] = '+';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o < outlen ? o : 0] = '\0';
}

/* ---------------------------------------------------------------------------------------
 * The state file
 * ------------------------------------------------------------------------------------ */

static void queue_esc(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    if (!*s || strcmp(s, "-") == 0) { /* "-" stands for empty, so a real "-" is escaped */
        buf_puts(b, *s ? "%2D" : "-");
        return;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p == '%' || *p >= 0x7f) {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_put(b, e, 3);
        } else {
            buf_putc(b, (char)*p);
        }
    }
}

static void queue_unesc(const char *tok, size_t len, char *out, size_t outlen)
{
    size_t o = 0;

    if (len == 1 && tok[0] == '-')
        len = 0;
    for (size_t i = 0; i < len && o + 1 < outlen; i++) {
        if (tok[i] == '%' && i + 2 < len && isxdigit((unsigned char)tok[i + 1]) &&
            isxdigit((unsigned char)tok[i + 2])) {
            char h[3] = {tok[i + 1], tok[i + 2], 0};
            out[o++] = (char)strtol(h, NULL, 16);
            i += 2;
        } else {
            out[o++] = tok[i];
        }
    }
    out[o] = '\0';
}

void queue_env_format(const struct queue_env *e, struct buf *b)
{
    char num[256];

    buf_puts(b, QUEUE_ENV_MAGIC "\nid ");
    queue_esc(b, e->id);
    buf_puts(b, "\nfrom ");
    queue_esc(b, e->from);
    buf_puts(b, "\nenvid ");
    queue_esc(b, e->envid);
    buf_puts(b, "\nret ");
    queue_esc(b, e->ret);
    snprintf(num, sizeof(num), "\narrival %lld\nnext %lld\nlast %lld\nattempts %d\ndelay-sent %d\n",
             (long long)e->arrival, (long long)e->next, (long long)e->last_attempt, e->attempts,
             e->delay_sent);
    buf_puts(b, num);
    for (size_t i = 0; i < e->n; i++) {
        const struct queue_rcpt *r = &e->r[i];
        char notify[64];
        queue_notify_format(r->notify, notify, sizeof(notify));
        buf_puts(b, "rcpt ");
        buf_puts(b, queue_rstate_name(r->state));
        buf_putc(b, ' ');
        queue_esc(b, r->addr);
        buf_putc(b, ' ');
        queue_esc(b, r->status);
        buf_putc(b, ' ');
        queue_esc(b, r->remote);
        buf_putc(b, ' ');
        queue_esc(b, r->diag);
        buf_putc(b, ' ');
        queue_esc(b, notify);
        buf_putc(b, ' ');
        queue_esc(b, r->orcpt);
        buf_putc(b, '\n');
    }
}

/* Splits a line into at most max space-separated tokens. */
static size_t queue_tokens(const char *line, size_t len, const char **tok, size_t *tlen, size_t max)
{
    size_t n = 0, i = 0;

    while (i < len && n < max) {
        while (i < len && line[i] == ' ')
            i++;
        if (i >= len)
            break;
        tok[n] = line + i;
        while (i < len && line[i] != ' ')
            i++;
        tlen[n] = (size_t)(line + i - tok[n]);
        n++;
    }
    return n;
}

static int queue_parse_rcpt(struct queue_env *e, const char **tok, const size_t *tlen, size_t n)
{
    struct queue_rcpt *r, *grown;
    int st = -1;

    if ((n != 6 && n != 8) || e->n >= QUEUE_RCPT_MAX)
        return -1;
    for (int i = 0; i < (int)QUEUE_NSTATES; i++)
        if (strlen(queue_rstates[i]) == tlen[1] && memcmp(tok[1], queue_rstates[i], tlen[1]) == 0)
            st = i;
    if (st < 0 || !(grown = realloc(e->r, (e->n + 1) * sizeof(*e->r))))
        return -1;
    e->r = grown;
    r = &e->r[e->n++];
    memset(r, 0, sizeof(*r));
    r->state = (enum queue_rstate)st;
    queue_unesc(tok[2], tlen[2], r->addr, sizeof(r->addr));
    queue_unesc(tok[3], tlen[3], r->status, sizeof(r->status));
    queue_unesc(tok[4], tlen[4], r->remote, sizeof(r->remote));
    queue_unesc(tok[5], tlen[5], r->diag, sizeof(r->diag));
    if (n == 8) {
        char notify[64];
        queue_unesc(tok[6], tlen[6], notify, sizeof(notify));
        r->notify = queue_notify_parse(notify);
        queue_unesc(tok[7], tlen[7], r->orcpt, sizeof(r->orcpt));
    }
    return r->addr[0] ? 0 : -1;
}

static int queue_parse_line(struct queue_env *e, const char *line, size_t len)
{
    const char *tok[8];
    size_t tlen[8], n = queue_tokens(line, len, tok, tlen, 8);
    char key[16];

    if (n == 0)
        return 0;
    if (n < 2 || tlen[0] >= sizeof(key))
        return -1;
    memcpy(key, tok[0], tlen[0]);
    key[tlen[0]] = '\0';
    if (strcmp(key, "rcpt") == 0)
        return queue_parse_rcpt(e, tok, tlen, n);
    if (n != 2)
        return -1;
    if (strcmp(key, "id") == 0)
        queue_unesc(tok[1], tlen[1], e->id, sizeof(e->id));
    else if (strcmp(key, "from") == 0)
        queue_unesc(tok[1], tlen[1], e->from, sizeof(e->from));
    else if (strcmp(key, "envid") == 0)
        queue_unesc(tok[1], tlen[1], e->envid, sizeof(e->envid));
    else if (strcmp(key, "ret") == 0)
        queue_unesc(tok[1], tlen[1], e->ret, sizeof(e->ret));
    else if (strcmp(key, "arrival") == 0)
        e->arrival = strtoll(tok[1], NULL, 10);
    else if (strcmp(key, "next") == 0)
        e->next = strtoll(tok[1], NULL, 10);
    else if (strcmp(key, "last") == 0)
        e->last_attempt = strtoll(tok[1], NULL, 10);
    else if (strcmp(key, "attempts") == 0)
        e->attempts = (int)strtol(tok[1], NULL, 10);
    else if (strcmp(key, "delay-sent") == 0)
        e->delay_sent = tok[1][0] == '1';
    /* Unknown keys are skipped: a newer version's file stays readable. */
    return 0;
}

int queue_env_parse(const char *text, size_t len, struct queue_env *e)
{
    size_t pos = 0, mlen = strlen(QUEUE_ENV_MAGIC);

    memset(e, 0, sizeof(*e));
    if (len < mlen || memcmp(text, QUEUE_ENV_MAGIC, mlen) != 0)
        return -1;
    while (pos < len) {
        const char *lf = memchr(text + pos, '\n', len - pos);
        size_t end = lf ? (size_t)(lf - text) : len;
        if (pos > 0 && queue_parse_line(e, text + pos, end - pos) != 0)
            goto err;
        pos = end + 1;
    }
    if (!e->id[0] || e->n == 0)
        goto err;
    return 0;
err:
    queue_env_free(e);
    return -1;
}

void queue_env_free(struct queue_env *e)
{
    free(e->r);
    e->r = NULL;
    e->n = 0;
}

/* ---------------------------------------------------------------------------------------
 * Delivery status notifications (RFC 3464, RFC 3461 §6)
 * ------------------------------------------------------------------------------------ */

void queue_date(time_t t, char *out, size_t outlen)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;

    if (!gmtime_r(&t, &tm)) {
        snprintf(out, outlen, "Thu, 01 Jan 1970 00:00:00 +0000");
        return;
    }
    snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int queue_dsn_wants(const struct queue_rcpt *r, int kind)
{
    unsigned n = r->notify;

    switch (kind) {
    case QUEUE_DSN_FAILED:
        return r->state == QR_FAILED && (n == 0 || (n & DELIVER_NOTIFY_FAILURE));
    case QUEUE_DSN_DELAYED:
        return r->state == QR_QUEUED && (n == 0 || (n & DELIVER_NOTIFY_DELAY));
    default:
        return r->state == QR_RELAYED || r->action;
    }
}

static const char *queue_dsn_action(const struct queue_rcpt *r, int kind)
{
    if (kind == QUEUE_DSN_FAILED)
        return "failed";
    if (kind == QUEUE_DSN_DELAYED)
        return "delayed";
    return r->action ? r->action : "relayed";
}

/* A diag is an SMTP reply when it starts with a 3-digit code. */
static int queue_diag_is_smtp(const char *d)
{
    return isdigit((unsigned char)d[0]) && isdigit((unsigned char)d[1]) &&
           isdigit((unsigned char)d[2]) && (d[3] == ' ' || d[3] == '\0');
}

static const char *const queue_dsn_intro[] = {
    [QUEUE_DSN_FAILED] = "I'm sorry to have to inform you that your message could not be\r\n"
                         "delivered to one or more recipients. The reasons are below.\r\n\r\n",
    [QUEUE_DSN_DELAYED] = "Your message could not be delivered yet to the recipients below.\r\n"
                          "It is still in the queue and will be tried again; you do not need\r\n"
                          "to send it again. You will be told if it finally fails.\r\n\r\n",
    [QUEUE_DSN_SUCCESS] =
        "Your message was delivered, as you asked to be told, to the\r\n"
        "recipients below. \"relayed\" means it was passed on to a server that\r\n"
        "does not report delivery; \"expanded\" that an alias or list took it.\r\n\r\n",
};

static void queue_dsn_human(const struct queue_env *e, int kind, const char *hostname,
                            struct buf *b)
{
    buf_puts(b, "Content-Description: Notification\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\n"
                "This is the mail system at host ");
    buf_puts(b, hostname);
    buf_puts(b, ".\r\n\r\n");
    buf_puts(b, queue_dsn_intro[kind]);
    for (size_t i = 0; i < e->n; i++) {
        if (!queue_dsn_wants(&e->r[i], kind))
            continue;
        buf_puts(b, "<");
        buf_puts(b, e->r[i].addr);
        buf_puts(b, ">: ");
        if (kind == QUEUE_DSN_SUCCESS) {
            buf_puts(b, queue_dsn_action(&e->r[i], kind));
            if (e->r[i].remote[0]) {
                buf_puts(b, " to ");
                buf_puts(b, e->r[i].remote);
            }
            buf_puts(b, "\r\n");
            continue;
        }
        if (e->r[i].remote[0]) {
            buf_puts(b, "host ");
            buf_puts(b, e->r[i].remote);
            buf_puts(b, " said: ");
        }
        buf_puts(b, e->r[i].diag[0] ? e->r[i].diag : "no reason recorded");
        buf_puts(b, "\r\n");
    }
}

static void queue_dsn_field(struct buf *b, const char *name, const char *v1, const char *v2)
{
    buf_puts(b, name);
    buf_puts(b, ": ");
    buf_puts(b, v1);
    buf_puts(b, v2);
    buf_puts(b, "\r\n");
}

static void queue_dsn_rcpt(const struct queue_rcpt *r, int kind, int64_t last_attempt,
                           int64_t retry_until, struct buf *b)
{
    static const char *const def_status[] = {"5.0.0", "4.0.0", "2.0.0"};
    char date[64];

    buf_puts(b, "\r\n");
    /* ORCPT is "type;address" as the client sent it (decoded), RFC 3464 §2.3.1 */
    if (r->orcpt[0] && strchr(r->orcpt, ';') && !strpbrk(r->orcpt, "\r\n"))
        queue_dsn_field(b, "Original-Recipient", r->orcpt, "");
    queue_dsn_field(b, "Final-Recipient", "rfc822; ", r->addr);
    queue_dsn_field(b, "Action", queue_dsn_action(r, kind), "");
    queue_dsn_field(b, "Status", r->status[0] ? r->status : def_status[kind], "");
    if (r->remote[0])
        queue_dsn_field(b, "Remote-MTA", "dns; ", r->remote);
    if (r->diag[0])
        queue_dsn_field(b, "Diagnostic-Code",
                        queue_diag_is_smtp(r->diag) ? "smtp; " : "X-Polaris; ", r->diag);
    if (last_attempt > 0) {
        queue_date((time_t)last_attempt, date, sizeof(date));
        queue_dsn_field(b, "Last-Attempt-Date", date, "");
    }
    if (kind == QUEUE_DSN_DELAYED) {
        queue_date((time_t)retry_until, date, sizeof(date));
        queue_dsn_field(b, "Will-Retry-Until", date, "");
    }
}

static void queue_dsn_status(const struct queue_env *e, int kind, const char *hostname,
                             int64_t retry_until, struct buf *b)
{
    char date[64];

    buf_puts(b, "Content-Description: Delivery report\r\n"
                "Content-Type: message/delivery-status\r\n\r\n");
    if (e->envid[0])
        queue_dsn_field(b, "Original-Envelope-Id", e->envid, "");
    queue_dsn_field(b, "Reporting-MTA", "dns; ", hostname);
    queue_dsn_field(b, "X-Polaris-Queue-ID", e->id, "");
    queue_date((time_t)e->arrival, date, sizeof(date));
    queue_dsn_field(b, "Arrival-Date", date, "");
    for (size_t i = 0; i < e->n; i++)
        if (queue_dsn_wants(&e->r[i], kind))
            queue_dsn_rcpt(&e->r[i], kind, e->last_attempt, retry_until, b);
}

static int queue_has_8bit(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 1;
    return 0;
}

/* The returned message: whole (message/rfc822) or its header (text/rfc822-headers). */
static void queue_dsn_original(int headers_only, const char *msg, size_t len, struct buf *b)
{
    size_t hlen = mime_header_size(msg, len);
    size_t n = headers_only ? hlen : len;

    buf_puts(b, headers_only ? "Content-Description: Undelivered Message Headers\r\n"
                               "Content-Type: text/rfc822-headers\r\n"
                             : "Content-Description: Undelivered Message\r\n"
                               "Content-Type: message/rfc822\r\n");
    if (queue_has_8bit(msg, n))
        buf_puts(b, "Content-Transfer-Encoding: 8bit\r\n");
    buf_puts(b, "\r\n");
    buf_put(b, msg, n);
    if (n > 0 && (n < 2 || msg[n - 2] != '\r' || msg[n - 1] != '\n'))
        buf_puts(b, "\r\n");
}

void queue_dsn(const struct queue_env *e, int kind, const char *hostname, int64_t retry_until,
               const char *msg, size_t len, time_t now, struct buf *b)
{
    static const char *const subject[] = {
        [QUEUE_DSN_FAILED] = "Undelivered Mail Returned to Sender",
        [QUEUE_DSN_DELAYED] = "Delayed Mail (still being retried)",
        [QUEUE_DSN_SUCCESS] = "Successful Mail Delivery Report",
    };
    static const char *const tag[] = {".dsn.", ".delay.", ".success."};
    char date[64], boundary[128];

    if (kind < QUEUE_DSN_FAILED || kind > QUEUE_DSN_SUCCESS)
        kind = QUEUE_DSN_FAILED;
    queue_date(now, date, sizeof(date));
    snprintf(boundary, sizeof(boundary), "=_polaris-dsn-%s-%lld", e->id, (long long)now);
    buf_puts(b, "From: Mail Delivery System <MAILER-DAEMON@");
    buf_puts(b, hostname);
    buf_puts(b, ">\r\nTo: <");
    buf_puts(b, e->from);
    buf_puts(b, ">\r\n");
    queue_dsn_field(b, "Subject", subject[kind], "");
    queue_dsn_field(b, "Date", date, "");
    buf_puts(b, "Message-ID: <");
    buf_puts(b, e->id);
    buf_puts(b, tag[kind]);
    buf_putu(b, (uint64_t)now);
    buf_puts(b, "@");
    buf_puts(b, hostname);
    buf_puts(b, ">\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
                "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                "\tboundary=\"");
    buf_puts(b, boundary);
    buf_puts(b, "\"\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n--");
    buf_puts(b, boundary);
    buf_puts(b, "\r\n");
    queue_dsn_human(e, kind, hostname, b);
    buf_puts(b, "\r\n--");
    buf_puts(b, boundary);
    buf_puts(b, "\r\n");
    queue_dsn_status(e, kind, hostname, retry_until, b);
    buf_puts(b, "\r\n--");
    buf_puts(b, boundary);
    buf_puts(b, "\r\n");
    /* RFC 3461 §4.3: RET governs failed reports; the others carry the header only. */
    queue_dsn_original(kind != QUEUE_DSN_FAILED || strcasecmp(e->ret, "HDRS") == 0, msg, len, b);
    buf_puts(b, "\r\n--");
    buf_puts(b, boundary);
    buf_puts(b, "--\r\n");
}
