/*
 * smtp.c — the SMTP engine (RFC 5321) for MX listeners (25/26) and submission listeners
 * (587 with STARTTLS, 465 implicit TLS; RFC 6409), with PIPELINING (RFC 2920), SIZE
 * (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), ENHANCEDSTATUSCODES (RFC 2034,
 * RFC 5248), CHUNKING/BDAT (RFC 3030), DSN (RFC 3461), STARTTLS (RFC 3207) and AUTH PLAIN
 * and LOGIN (RFC 4954).
 *
 * The session is an explicit state machine — CONNECT (no EHLO yet) → GREETED → MAIL →
 * RCPT → BDAT — driven by a command table; parsing lives in smtp_parse.c. The delivery
 * pipeline (deliver.c) decides about recipients and does the delivery; this file answers
 * 250 to the end of data only when deliver_message says the message is durable.
 *
 * Input goes through our own buffer over net_read, not net_read_line: the end of DATA must
 * be found byte-exactly (only <CRLF>.<CRLF>; a bare LF or CR never ends data, so
 * "<LF>.<LF>" is content and no second message can be smuggled in), without reading past
 * it, since a pipelining client may send its next command right behind the dot.
 *
 * Choices where the RFCs leave room:
 *  - Smuggling: a lone "." line after a bare LF or CR is kept as content (normalised to
 *    CRLF) rather than refused, so the message arrives whole and nothing after it is taken
 *    as commands.
 *  - Bare LF and bare CR in content become CRLF before delivery, so nothing stored can
 *    later smuggle through a downstream server either.
 *  - AUTH failures while throttled answer 454 4.7.0 (RFC 4954's temporary authentication
 *    failure) and keep the connection: the client tells its user "try later" instead of
 *    asking for a new password, and every failure counts toward the error limit, after
 *    which the connection is closed with 421 anyway.
 *  - Command lines: 1000 octets (RFC 5321 §4.5.3.1.4), 2048 for MAIL and RCPT (SIZE, DSN
 *    and AUTH= parameters lengthen them), 12288 for AUTH (RFC 4954 §4).
 *  - Content lines up to 64 KiB and a header section up to 1 MiB; more is refused.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mail/mail.h"
#include "mail/smtp_parse.h"

#define SMTP_IDLE_MS       (5 * 60 * 1000) /* RFC 5321 §4.5.3.2.7 */
#define SMTP_MAX_ERRORS    20
#define SMTP_IN_BUF        16384
#define SMTP_ENV_LINE_MAX  2048 /* MAIL and RCPT with their parameters */
#define SMTP_READ_MAX      (SMTP_AUTH_MAX + 3)
#define SMTP_DATA_LINE_MAX 65536
#define SMTP_HEADER_MAX    (1024 * 1024)
#define SMTP_TRACE_RESERVE 2048 /* room for the Received: header before the content */

enum smtp_state {
    ST_CONNECT = 1, /* no EHLO/HELO yet (also right after STARTTLS) */
    ST_GREETED = 2, /* between transactions */
    ST_MAIL = 4,    /* MAIL accepted, no recipient yet */
    ST_RCPT = 8,    /* at least one recipient accepted */
    ST_BDAT = 16,   /* BDAT chunks arriving */
};
#define ST_ANY (ST_CONNECT | ST_GREETED | ST_MAIL | ST_RCPT | ST_BDAT)

struct smtp_rcpt_entry {
    char *addr;
    int hosted;      /* its domain is one of ours (for the log line) */
    unsigned notify; /* DSN NOTIFY (SMTP_NOTIFY_* = DELIVER_NOTIFY_*), 0: not given */
    char *orcpt;     /* DSN ORCPT "type;address", or NULL */
};

_Static_assert(SMTP_NOTIFY_NEVER == DELIVER_NOTIFY_NEVER &&
                   SMTP_NOTIFY_SUCCESS == DELIVER_NOTIFY_SUCCESS &&
                   SMTP_NOTIFY_FAILURE == DELIVER_NOTIFY_FAILURE &&
                   SMTP_NOTIFY_DELAY == DELIVER_NOTIFY_DELAY,
               "the parser's NOTIFY bits are the pipeline's");

struct smtp {
    struct net_conn *c;
    struct mail_ctx *m;
    enum smtp_state state;
    int esmtp; /* greeted with EHLO */
    char helo[SMTP_DOMAIN_MAX + 1];
    int helo_valid;
    int authed;
    struct store_account acct;
    int quit;
    int errors;
    int timeout_ms;
    /* the transaction */
    struct smtp_mail mail;
    struct smtp_rcpt_entry *rcpts;
    size_t nrcpts, rcpt_cap;
    struct smtp_data data;
    struct smtp_buf body;
    char id[24];
    /* input */
    char in[SMTP_IN_BUF];
    size_t in_pos, in_len;
    char line[SMTP_READ_MAX];
};

typedef void (*smtp_cmd_fn)(struct smtp *s, char *args);

/* ---- replies -------------------------------------------------------------------------- */

static void smtp_reply(struct smtp *s, const char *text)
{
    net_printf(s->c, "%s\r\n", text);
}

/* A reply with the error counted toward the limit after which the session ends. */
static void smtp_error(struct smtp *s, const char *text)
{
    s->errors++;
    smtp_reply(s, text);
}

/* Passes a reply of the delivery pipeline on; CR, LF and other controls in its text are
 * blanked so that it can never become two replies. */
static void smtp_reply_deliver(struct smtp *s, const struct deliver_reply *r)
{
    char text[sizeof(r->text)];
    int code = r->code >= 200 && r->code <= 599 ? r->code : 451;

    snprintf(text, sizeof(text), "%s", r->text[0] ? r->text : code < 300 ? "Ok" : "Failed");
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 32 || *p == 127)
            *p = ' ';
    if (r->enhanced[0] && strspn(r->enhanced, "0123456789.") == strlen(r->enhanced))
        net_printf(s->c, "%d %s %s\r\n", code, r->enhanced, text);
    else
        net_printf(s->c, "%d %s\r\n", code, text);
    if (code >= 500)
        s->errors++;
}

/* ---- input ---------------------------------------------------------------------------- */

/* Reads what has arrived (at least one byte) into s->in. Before waiting, the replies
 * queued so far go out: with PIPELINING the client reads them only when it waits too. */
static int smtp_fill(struct smtp *s)
{
    size_t space, take;
    ssize_t r;

    if (s->in_pos > 0) {
        memmove(s->in, s->in + s->in_pos, s->in_len - s->in_pos);
        s->in_len -= s->in_pos;
        s->in_pos = 0;
    }
    if (s->in_len == sizeof(s->in))
        return NET_ETOOLONG;
    if (net_buffered(s->c) == 0 && net_flush(s->c) < 0)
        return NET_EIO;
    r = net_read(s->c, s->in + s->in_len, 1, s->timeout_ms);
    if (r < 0)
        return (int)r;
    s->in_len++;
    space = sizeof(s->in) - s->in_len;
    take = net_buffered(s->c);
    if (take > space)
        take = space;
    if (take) {
        r = net_read(s->c, s->in + s->in_len, take, s->timeout_ms);
        if (r < 0)
            return (int)r;
        s->in_len += take;
    }
    return 0;
}

/* One line, its line end included, into s->line. A line over max is skipped whole and
 * reported as NET_ETOOLONG; other NET_E* codes end the session. */
static ssize_t smtp_read_line(struct smtp *s, size_t max)
{
    int skipping = 0;

    for (;;) {
        size_t avail = s->in_len - s->in_pos;
        char *start = s->in + s->in_pos;
        char *lf = memchr(start, '\n', avail);
        if (lf) {
            size_t n = (size_t)(lf - start) + 1;
            s->in_pos += n;
            if (skipping || n + 1 > max)
                return NET_ETOOLONG;
            memcpy(s->line, start, n);
            s->line[n] = '\0';
            return (ssize_t)n;
        }
        if (avail + 1 > max) {
            skipping = 1;
            s->in_pos = s->in_len;
        }
        int rc = smtp_fill(s);
        if (rc < 0)
            return rc;
    }
}

/* DATA content up to and including <CRLF>.<CRLF>, through the decoder. */
static int smtp_read_data(struct smtp *s)
{
    while (!s->data.done) {
        if (s->in_pos == s->in_len) {
            int rc = smtp_fill(s);
            if (rc < 0)
                return rc;
        }
        s->in_pos += smtp_data_feed(&s->data, &s->body, s->in + s->in_pos, s->in_len - s->in_pos);
    }
    return 0;
}

/* A BDAT chunk of exactly size bytes: decoded when keep, else read and dropped. */
static int smtp_read_chunk(struct smtp *s, uint64_t size, int keep)
{
    while (size > 0) {
        if (s->in_pos == s->in_len) {
            int rc = smtp_fill(s);
            if (rc < 0)
                return rc;
        }
        size_t avail = s->in_len - s->in_pos;
        size_t take = size < avail ? (size_t)size : avail;
        if (keep)
            smtp_data_feed(&s->data, &s->body, s->in + s->in_pos, take);
        s->in_pos += take;
        size -= take;
    }
    return 0;
}

/* A read failed: say why when the connection is still there, and end the session. */
static void smtp_read_failed(struct smtp *s, int rc)
{
    if (rc == NET_ETIMEOUT)
        net_printf(s->c, "421 4.4.2 %s Error: timeout exceeded\r\n", s->m->hostname);
    else if (rc == NET_ESHUTDOWN)
        net_printf(s->c, "421 4.3.2 %s Service shutting down\r\n", s->m->hostname);
    s->quit = 1;
}

/* ---- the transaction ------------------------------------------------------------------ */

static void smtp_reset(struct smtp *s)
{
    for (size_t i = 0; i < s->nrcpts; i++) {
        free(s->rcpts[i].addr);
        free(s->rcpts[i].orcpt);
    }
    s->nrcpts = 0;
    smtp_buf_free(&s->body);
    memset(&s->mail, 0, sizeof(s->mail));
    s->id[0] = '\0';
    if (s->state & (ST_MAIL | ST_RCPT | ST_BDAT))
        s->state = ST_GREETED;
}

static int smtp_plaintext_ok(const struct smtp *s)
{
    return net_conn_is_tls(s->c) || s->m->allow_plaintext;
}

/* RFC 3848 protocol names for "with" in Received: and the delivery log. */
static const char *smtp_protocol(const struct smtp *s)
{
    int tls = net_conn_is_tls(s->c);

    if (!s->esmtp)
        return "SMTP";
    if (s->authed)
        return tls ? "ESMTPSA" : "ESMTPA";
    return tls ? "ESMTPS" : "ESMTP";
}

static void smtp_env(const struct smtp *s, struct deliver_env *env)
{
    const struct smtp_mail *m = &s->mail;

    *env = (struct deliver_env){
        .mail_from = m->from.addr,
        .auth_user = s->authed ? s->acct.address : NULL,
        .helo = s->helo[0] ? s->helo : NULL,
        .client_ip = net_conn_remote_ip(s->c),
        .protocol = smtp_protocol(s),
        .ret = m->ret == SMTP_RET_FULL   ? "FULL"
               : m->ret == SMTP_RET_HDRS ? "HDRS"
                                         : NULL,
        .envid = m->has_envid ? m->envid : NULL,
    };
}

/* A short id naming the transaction in Received: and the logs. */
static void smtp_new_id(struct smtp *s)
{
    static atomic_uint counter;
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(s->id, sizeof(s->id), "%llX%05X", (unsigned long long)ts.tv_sec,
             atomic_fetch_add(&counter, 1) & 0xFFFFF);
}

/* RFC 5322 date-time in UTC, independent of the locale. */
static void smtp_date(char *out, size_t outlen)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    snprintf(out, outlen, "%s, %d %s %d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The Received: trace header (RFC 5321 §4.4). The recipient is named only when there is
 * one (others would learn of Bcc recipients); the authenticated user only on submission,
 * where it is the sender's own business. Returns its length, 0 if it does not fit. */
static size_t smtp_received(const struct smtp *s, char *out, size_t outlen)
{
    const char *ip = net_conn_remote_ip(s->c);
    int tls = net_conn_is_tls(s->c), show_auth = s->authed && s->m->submission;
    char date[64], comment[400] = "";
    int n;

    smtp_date(date, sizeof(date));
    if (tls || show_auth)
        snprintf(comment, sizeof(comment), "\r\n\t(%s%s%s%s)", tls ? "using TLS" : "",
                 tls && show_auth ? "; " : "", show_auth ? "authenticated as " : "",
                 show_auth ? s->acct.address : "");
    n = snprintf(
        out, outlen,
        "Received: from %s ([%s%s])\r\n\tby %s (Polaris) with %s id %s%s%s%s%s;\r\n\t%s\r\n",
        s->helo_valid ? s->helo : "unknown", strchr(ip, ':') ? "IPv6:" : "", ip, s->m->hostname,
        smtp_protocol(s), s->id, comment, s->nrcpts == 1 ? "\r\n\tfor <" : "",
        s->nrcpts == 1 ? s->rcpts[0].addr : "", s->nrcpts == 1 ? ">" : "", date);
    return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
}

static void smtp_log_transaction(struct smtp *s, size_t size, const struct deliver_reply *r)
{
    size_t hosted = 0;

    for (size_t i = 0; i < s->nrcpts; i++)
        hosted += (size_t)s->rcpts[i].hosted;
    log_info("smtp",
             "%s: id=%s from=<%s>%s%s rcpts=%zu (local %zu, external %zu) size=%zu %s %d %s",
             net_conn_remote_ip(s->c), s->id, s->mail.from.addr, s->authed ? " user=" : "",
             s->authed ? s->acct.address : "", s->nrcpts, hosted, s->nrcpts - hosted, size,
             smtp_protocol(s), r->code, r->enhanced);
}

/* Why the content was refused, or NULL when it is fine. */
static const char *smtp_data_problem(const struct smtp_data *d)
{
    if (d->over_size)
        return "552 5.2.3 Message exceeds maximum fixed size";
    if (d->over_line)
        return "554 5.6.0 Message has a line longer than 65536 bytes";
    if (d->over_header)
        return "552 5.3.4 Message header section exceeds 1 MB";
    if (d->nomem)
        return "451 4.3.0 Out of memory, try again later";
    return NULL;
}

/* The end of DATA or of BDAT LAST: limits, the sending limit, the trace header, then the
 * delivery pipeline, whose reply is the answer. The transaction ends in any case. */
static void smtp_finish_message(struct smtp *s)
{
    struct deliver_reply r = {0};
    struct deliver_env env;
    const char *problem = smtp_data_problem(&s->data);
    char trace[SMTP_TRACE_RESERVE];
    size_t tlen;

    if (problem) {
        r.code = atoi(problem);
        snprintf(r.enhanced, sizeof(r.enhanced), "%.5s", problem + 4);
        smtp_reply(s, problem);
        smtp_log_transaction(s, (size_t)s->data.total, &r);
        smtp_reset(s);
        return;
    }
    smtp_env(s, &env);
    if (s->authed && deliver_rate_check(s->m->deliver, s->acct.address, s->nrcpts, &r) != 0) {
        smtp_reply_deliver(s, &r);
        smtp_log_transaction(s, s->body.len, &r);
        smtp_reset(s);
        return;
    }
    if (!s->body.p && !(s->body.p = malloc(s->body.reserve))) {
        smtp_reply(s, "451 4.3.0 Out of memory, try again later");
        smtp_reset(s);
        return;
    }
    tlen = smtp_received(s, trace, sizeof(trace));
    char *msg = s->body.p + s->body.reserve - tlen;
    memcpy(msg, trace, tlen);
    const char **rcpts = calloc(s->nrcpts, sizeof(*rcpts));
    struct deliver_dsn *dsn = calloc(s->nrcpts, sizeof(*dsn));
    if (!rcpts || !dsn) {
        free(rcpts);
        free(dsn);
        smtp_reply(s, "451 4.3.0 Out of memory, try again later");
        smtp_reset(s);
        return;
    }
    for (size_t i = 0; i < s->nrcpts; i++) {
        rcpts[i] = s->rcpts[i].addr;
        dsn[i] = (struct deliver_dsn){s->rcpts[i].notify, s->rcpts[i].orcpt};
    }
    env.dsn = dsn;
    memset(&r, 0, sizeof(r));
    int rc =
        deliver_message(s->m->deliver, &env, rcpts, s->nrcpts, msg, tlen + s->body.len, &r, NULL);
    free(rcpts);
    free(dsn);
    /* 250 means durable: never say it unless the pipeline returned success. */
    if (rc != 0 && r.code < 400)
        r = (struct deliver_reply){.code = 451, .enhanced = "4.3.0", .text = "Delivery failed"};
    else if (rc == 0 && r.code == 0)
        r = (struct deliver_reply){.code = 250, .enhanced = "2.0.0", .text = "Ok"};
    smtp_reply_deliver(s, &r);
    smtp_log_transaction(s, s->body.len, &r);
    smtp_reset(s);
}

/* ---- EHLO, HELO, and the simple commands ------------------------------------------------ */

/* The argument of EHLO/HELO: one printable token. A host name that is not a valid domain
 * is accepted (many clients send one) but kept out of Received:. */
static int smtp_take_helo(struct smtp *s, const char *args, const char *verb)
{
    size_t n = strcspn(args, " ");

    if (n == 0 || n > SMTP_DOMAIN_MAX) {
        net_printf(s->c, "501 5.5.4 Syntax: %s hostname\r\n", verb);
        s->errors++;
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)args[i] <= 32 || (unsigned char)args[i] >= 127) {
            smtp_error(s, "501 5.5.4 Invalid domain name");
            return -1;
        }
    memcpy(s->helo, args, n);
    s->helo[n] = '\0';
    s->helo_valid = smtp_valid_helo(s->helo, n);
    smtp_reset(s);
    s->state = ST_GREETED;
    return 0;
}

static void smtp_cmd_ehlo(struct smtp *s, char *args)
{
    const char *ext[12];
    size_t n = 0;
    char size[48];

    if (smtp_take_helo(s, args, "EHLO") < 0)
        return;
    s->esmtp = 1;
    snprintf(size, sizeof(size), "SIZE %lld", (long long)s->m->cfg->smtp_max_message);
    ext[n++] = "PIPELINING";
    ext[n++] = size;
    ext[n++] = "8BITMIME";
    ext[n++] = "SMTPUTF8";
    ext[n++] = "ENHANCEDSTATUSCODES";
    ext[n++] = "CHUNKING";
    ext[n++] = "DSN";
    if (net_conn_can_starttls(s->c))
        ext[n++] = "STARTTLS";
    if (!s->authed && smtp_plaintext_ok(s))
        ext[n++] = "AUTH PLAIN LOGIN";
    ext[n++] = "HELP";
    net_printf(s->c, "250-%s Hello [%s]\r\n", s->m->hostname, net_conn_remote_ip(s->c));
    for (size_t i = 0; i < n; i++)
        net_printf(s->c, "250%c%s\r\n", i + 1 < n ? '-' : ' ', ext[i]);
}

static void smtp_cmd_helo(struct smtp *s, char *args)
{
    if (smtp_take_helo(s, args, "HELO") < 0)
        return;
    s->esmtp = 0;
    net_printf(s->c, "250 %s\r\n", s->m->hostname);
}

static void smtp_cmd_rset(struct smtp *s, char *args)
{
    smtp_reset(s);
    smtp_reply(s, "250 2.0.0 Ok");
}

static void smtp_cmd_noop(struct smtp *s, char *args)
{
    smtp_reply(s, "250 2.0.0 Ok");
}

static void smtp_cmd_quit(struct smtp *s, char *args)
{
    net_printf(s->c, "221 2.0.0 %s Bye\r\n", s->m->hostname);
    s->quit = 1;
}

static void smtp_cmd_vrfy(struct smtp *s, char *args)
{
    /* RFC 5321 §3.5.3: saying nothing about who exists, without refusing outright. */
    smtp_reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
}

static void smtp_cmd_expn(struct smtp *s, char *args)
{
    smtp_error(s, "502 5.5.1 EXPN not available");
}

static void smtp_cmd_help(struct smtp *s, char *args)
{
    smtp_reply(s, "214-2.0.0 Polaris SMTP; commands:");
    smtp_reply(s, "214-2.0.0   HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT");
    smtp_reply(s, "214-2.0.0   VRFY HELP STARTTLS AUTH");
    smtp_reply(s, "214 2.0.0 End of HELP info");
}

/* ---- STARTTLS ------------------------------------------------------------------------- */

static void smtp_cmd_starttls(struct smtp *s, char *args)
{
    if (net_conn_is_tls(s->c)) {
        smtp_error(s, "503 5.5.1 TLS already active");
        return;
    }
    if (!net_conn_can_starttls(s->c)) {
        smtp_error(s, "454 4.7.0 TLS not available");
        return;
    }
    if (*args) {
        smtp_error(s, "501 5.5.4 Syntax: STARTTLS");
        return;
    }
    smtp_reply(s, "220 2.0.0 Ready to start TLS");
    /* What the client sent after STARTTLS came in clear text: it must not count as
     * having come over TLS. net_starttls drops its own buffer; this drops ours. */
    s->in_pos = s->in_len = 0;
    if (net_starttls(s->c) < 0) {
        log_debug("smtp", "%s: STARTTLS handshake failed", net_conn_remote_ip(s->c));
        s->quit = 1;
        return;
    }
    /* RFC 3207 §4.2: forget everything learnt before, EHLO included. */
    smtp_reset(s);
    s->state = ST_CONNECT;
    s->esmtp = 0;
    s->helo[0] = '\0';
    s->helo_valid = 0;
    s->authed = 0;
    memset(&s->acct, 0, sizeof(s->acct));
}

/* ---- AUTH ----------------------------------------------------------------------------- */

/* Verifies credentials; answers in every case. */
static void smtp_login(struct smtp *s, const char *user, const char *pass)
{
    struct store_account acct;
    enum auth_result r = auth_verify(s->m->auth, user, pass, NULL, net_conn_remote_ip(s->c), &acct);

    switch (r) {
    case AUTH_OK:
        break;
    case AUTH_THROTTLED:
        smtp_error(s, "454 4.7.0 Too many failed authentication attempts, try again later");
        return;
    case AUTH_DISABLED:
        smtp_error(s, "525 5.7.13 Account disabled");
        return;
    case AUTH_ERROR:
        smtp_reply(s, "454 4.7.0 Temporary authentication failure");
        return;
    default:
        log_info("smtp", "%s: authentication failed", net_conn_remote_ip(s->c));
        smtp_error(s, "535 5.7.8 Authentication credentials invalid");
        return;
    }
    if (!gate_allows(acct.type, SVC_SMTP)) {
        explicit_bzero(&acct, sizeof(acct));
        smtp_error(s, "535 5.7.8 SMTP is not enabled for this mailbox");
        return;
    }
    explicit_bzero(acct.pwhash, sizeof(acct.pwhash));
    s->acct = acct;
    s->authed = 1;
    log_info("smtp", "%s: login %s", net_conn_remote_ip(s->c), s->acct.address);
    smtp_reply(s, "235 2.7.0 Authentication successful");
}

/* Sends a 334 challenge and reads the base64 response into out. Returns its decoded
 * length, or -1 after answering (cancelled, malformed, connection gone). */
static ssize_t smtp_auth_exchange(struct smtp *s, const char *challenge, const char *initial,
                                  unsigned char *out, size_t outmax)
{
    const char *resp = initial;
    ssize_t n;

    if (!resp) {
        net_printf(s->c, "334 %s\r\n", challenge);
        n = smtp_read_line(s, sizeof(s->line));
        if (n < 0) {
            if (n == NET_ETOOLONG)
                smtp_error(s, "500 5.5.6 Authentication exchange line is too long");
            else
                smtp_read_failed(s, (int)n);
            return -1;
        }
        s->line[strcspn(s->line, "\r\n")] = '\0';
        resp = s->line;
    }
    if (strcmp(resp, "*") == 0) {
        smtp_error(s, "501 5.7.0 Authentication cancelled");
        return -1;
    }
    if (strcmp(resp, "=") == 0) /* RFC 4954 §4: an empty initial response */
        return 0;
    n = b64_decode(resp, strlen(resp), out, outmax, 0);
    if (n < 0)
        smtp_error(s, "501 5.5.2 Cannot decode the base64 response");
    return n;
}

static void smtp_auth_plain(struct smtp *s, const char *initial)
{
    unsigned char raw[1400];
    char user[321], pass[1025];
    ssize_t n = smtp_auth_exchange(s, "", initial, raw, sizeof(raw));

    if (n < 0)
        goto out;
    if (mail_sasl_plain(raw, (size_t)n, user, sizeof(user), pass, sizeof(pass)) < 0) {
        smtp_error(s, "501 5.5.2 Malformed PLAIN response");
        goto out;
    }
    smtp_login(s, user, pass);
out:
    explicit_bzero(raw, sizeof(raw));
    explicit_bzero(pass, sizeof(pass));
    explicit_bzero(s->line, sizeof(s->line));
}

/* LOGIN (draft-murchison-sasl-login): user name, then password, each base64. */
static void smtp_auth_login(struct smtp *s, const char *initial)
{
    unsigned char user[321], pass[1025];
    ssize_t un, pn;

    un = smtp_auth_exchange(s, "VXNlcm5hbWU6", initial, user, sizeof(user) - 1);
    if (un < 0)
        goto out;
    pn = smtp_auth_exchange(s, "UGFzc3dvcmQ6", NULL, pass, sizeof(pass) - 1);
    if (pn < 0)
        goto out;
    user[un] = '\0';
    pass[pn] = '\0';
    if (un == 0 || pn == 0 || memchr(user, '\0', (size_t)un) || memchr(pass, '\0', (size_t)pn)) {
        smtp_error(s, "535 5.7.8 Authentication credentials invalid");
        goto out;
    }
    smtp_login(s, (const char *)user, (const char *)pass);
out:
    explicit_bzero(pass, sizeof(pass));
    explicit_bzero(s->line, sizeof(s->line));
}

static void smtp_cmd_auth(struct smtp *s, char *args)
{
    char *initial = strchr(args, ' ');

    if (!s->esmtp) {
        smtp_error(s, "503 5.5.1 Send EHLO first");
        return;
    }
    if (s->authed) {
        smtp_error(s, "503 5.5.1 Already authenticated");
        return;
    }
    if (s->state != ST_GREETED) {
        smtp_error(s, "503 5.5.1 AUTH not permitted during a mail transaction");
        return;
    }
    if (!smtp_plaintext_ok(s)) {
        smtp_error(s, "538 5.7.11 Encryption required for requested authentication mechanism");
        return;
    }
    if (initial) {
        *initial++ = '\0';
        while (*initial == ' ')
            initial++;
    }
    if (!*args) {
        smtp_error(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
        return;
    }
    if (strcasecmp(args, "PLAIN") == 0)
        smtp_auth_plain(s, initial);
    else if (strcasecmp(args, "LOGIN") == 0)
        smtp_auth_login(s, initial);
    else
        smtp_error(s, "504 5.5.4 Unrecognized authentication type");
}

/* ---- MAIL ----------------------------------------------------------------------------- */

/* May the authenticated user send as this address? Their own address, or one whose mail
 * reaches them (deliver_sender_owned). The null sender only on MX (bounces of a relay host). */
static int smtp_sender_owned(struct smtp *s, const struct smtp_addr *from)
{
    if (from->null)
        return !s->m->submission;
    if (from->literal || from->addr[0] == '"')
        return strcasecmp(from->addr, s->acct.address) == 0;
    return deliver_sender_owned(s->m->store, s->acct.address, from->addr);
}

/* Maps a parser result on MAIL or RCPT to its reply. */
static void smtp_param_error(struct smtp *s, int rc, const char *err, int sender)
{
    char text[200];

    if (rc == SMTP_E_UTF8)
        snprintf(text, sizeof(text), "553 5.6.7 %s", err);
    else if (rc == SMTP_E_PARAM)
        snprintf(text, sizeof(text), "555 5.5.4 %s", err);
    else if (rc == SMTP_E_SYNTAX && strstr(err, "address"))
        snprintf(text, sizeof(text), "501 %s %s", sender ? "5.1.7" : "5.1.3", err);
    else
        snprintf(text, sizeof(text), "501 5.5.4 %s", err);
    smtp_error(s, text);
}

static void smtp_cmd_mail(struct smtp *s, char *args)
{
    char err[128] = "Syntax error";
    int rc;

    if (s->m->submission && !s->authed) {
        smtp_error(s, "530 5.7.0 Authentication required");
        return;
    }
    rc = smtp_parse_mail(args, &s->mail, err, sizeof(err));
    if (rc != SMTP_OK) {
        smtp_param_error(s, rc, err, 1);
        return;
    }
    if (s->mail.has_size && s->mail.size > (uint64_t)s->m->cfg->smtp_max_message) {
        smtp_error(s, "552 5.2.3 Message exceeds maximum fixed size");
        memset(&s->mail, 0, sizeof(s->mail));
        return;
    }
    if (s->authed && !smtp_sender_owned(s, &s->mail.from)) {
        net_printf(s->c, "553 5.7.1 Sender address rejected: not owned by user %s\r\n",
                   s->acct.address);
        s->errors++;
        memset(&s->mail, 0, sizeof(s->mail));
        return;
    }
    smtp_new_id(s);
    s->state = ST_MAIL;
    smtp_reply(s, "250 2.1.0 Ok");
}

/* ---- RCPT ----------------------------------------------------------------------------- */

static int smtp_domain_hosted(struct smtp *s, const char *addr)
{
    const char *at = strrchr(addr, '@');
    struct store_domain d;
    struct store_err err;

    return at && store_domain_get(s->m->store, at + 1, &d, &err) == 0;
}

static int smtp_add_rcpt(struct smtp *s, const char *addr, const struct smtp_rcpt *rcpt)
{
    for (size_t i = 0; i < s->nrcpts; i++)
        if (strcasecmp(s->rcpts[i].addr, addr) == 0)
            return 0; /* the same recipient twice gets one copy */
    if (s->nrcpts == s->rcpt_cap) {
        size_t cap = s->rcpt_cap ? s->rcpt_cap * 2 : 8;
        struct smtp_rcpt_entry *grown = realloc(s->rcpts, cap * sizeof(*grown));
        if (!grown)
            return -1;
        s->rcpts = grown;
        s->rcpt_cap = cap;
    }
    struct smtp_rcpt_entry *e = &s->rcpts[s->nrcpts];
    char orcpt[sizeof(rcpt->orcpt_type) + sizeof(rcpt->orcpt) + 1];
    memset(e, 0, sizeof(*e));
    if (rcpt->has_orcpt)
        snprintf(orcpt, sizeof(orcpt), "%s;%s", rcpt->orcpt_type, rcpt->orcpt);
    if (!(e->addr = strdup(addr)) || (rcpt->has_orcpt && !(e->orcpt = strdup(orcpt)))) {
        free(e->addr);
        return -1;
    }
    e->notify = rcpt->notify;
    e->hosted = smtp_domain_hosted(s, addr);
    s->nrcpts++;
    return 0;
}

static void smtp_cmd_rcpt(struct smtp *s, char *args)
{
    struct smtp_rcpt rcpt;
    struct deliver_reply r = {0};
    struct deliver_env env;
    char err[128] = "Syntax error", addr[SMTP_PATH_MAX + 1];
    int rc = smtp_parse_rcpt(args, s->mail.smtputf8, &rcpt, err, sizeof(err));

    if (rc != SMTP_OK) {
        smtp_param_error(s, rc, err, 0);
        return;
    }
    if (s->m->cfg->smtp_max_rcpts > 0 && s->nrcpts >= (size_t)s->m->cfg->smtp_max_rcpts) {
        smtp_reply(s, "452 4.5.3 Too many recipients");
        return;
    }
    if (rcpt.to.postmaster) /* RFC 5321 §4.5.1: <Postmaster> must work without a domain */
        deliver_postmaster(s->m->deliver, addr, sizeof(addr));
    else
        snprintf(addr, sizeof(addr), "%s", rcpt.to.addr);
    smtp_env(s, &env);
    rc = deliver_check_rcpt(s->m->deliver, &env, addr, &r);
    if (rc != 0 && rcpt.to.postmaster && r.code >= 500) {
        log_warn("smtp", "<postmaster> (%s) leads nowhere: set [smtp] postmaster to a mailbox",
                 addr);
        r = (struct deliver_reply){.code = 550,
                                   .enhanced = "5.1.1",
                                   .text = "<postmaster>: No postmaster mailbox is set up here"};
    }
    if (rc == 0 && smtp_add_rcpt(s, addr, &rcpt) < 0) {
        smtp_reply(s, "452 4.3.0 Out of memory, try again later");
        return;
    }
    if (rc == 0) {
        s->state = ST_RCPT;
        if (r.code < 200 || r.code >= 300)
            r = (struct deliver_reply){.code = 250, .enhanced = "2.1.5", .text = "Ok"};
    } else if (r.code < 400) {
        r = (struct deliver_reply){.code = 451, .enhanced = "4.3.0", .text = "Try again later"};
    }
    smtp_reply_deliver(s, &r);
}

/* ---- DATA and BDAT -------------------------------------------------------------------- */

static void smtp_start_content(struct smtp *s, int raw)
{
    smtp_buf_free(&s->body);
    s->body.reserve = SMTP_TRACE_RESERVE;
    smtp_data_init(&s->data, raw, (size_t)s->m->cfg->smtp_max_message, SMTP_DATA_LINE_MAX,
                   SMTP_HEADER_MAX);
}

static void smtp_cmd_data(struct smtp *s, char *args)
{
    int rc;

    if (s->state == ST_MAIL) {
        smtp_error(s, "554 5.5.1 No valid recipients");
        return;
    }
    if (s->state == ST_BDAT) {
        smtp_error(s, "503 5.5.1 DATA cannot follow BDAT");
        return;
    }
    if (s->state != ST_RCPT) {
        smtp_error(s, "503 5.5.1 Need MAIL and RCPT first");
        return;
    }
    if (*args) {
        smtp_error(s, "501 5.5.4 Syntax: DATA");
        return;
    }
    smtp_start_content(s, 0);
    smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
    if ((rc = smtp_read_data(s)) < 0) {
        smtp_read_failed(s, rc);
        return;
    }
    smtp_finish_message(s);
}

static void smtp_cmd_bdat(struct smtp *s, char *args)
{
    uint64_t size;
    int last, rc;
    const char *refuse = NULL;

    if (smtp_parse_bdat(args, &size, &last) != SMTP_OK) {
        /* The chunk's length is unknown: its bytes will arrive as (bad) commands. */
        smtp_error(s, "501 5.5.4 Syntax: BDAT chunk-size [LAST]");
        return;
    }
    if (s->state == ST_MAIL)
        refuse = "554 5.5.1 No valid recipients";
    else if (s->state != ST_RCPT && s->state != ST_BDAT)
        refuse = "503 5.5.1 Need MAIL and RCPT first";
    if (s->state == ST_RCPT) {
        smtp_start_content(s, 1);
        s->state = ST_BDAT;
    }
    /* The chunk is read even when refused, so that its bytes are never taken as commands. */
    if ((rc = smtp_read_chunk(s, size, refuse == NULL)) < 0) {
        smtp_read_failed(s, rc);
        return;
    }
    if (refuse) {
        smtp_error(s, refuse);
        return;
    }
    if (last) {
        smtp_data_finish(&s->data, &s->body);
        smtp_finish_message(s);
        return;
    }
    if (smtp_data_problem(&s->data)) { /* RFC 3030 §4.2: the transaction has failed */
        smtp_finish_message(s);
        return;
    }
    net_printf(s->c, "250 2.0.0 %llu octets received\r\n", (unsigned long long)size);
}

/* ---- dispatch ------------------------------------------------------------------------- */

static const struct smtp_cmd_def {
    enum smtp_verb verb;
    unsigned states; /* where it is allowed; elsewhere the seq reply */
    const char *seq;
    smtp_cmd_fn fn;
} smtp_cmds[] = {
    {SMTP_V_EHLO, ST_ANY, NULL, smtp_cmd_ehlo},
    {SMTP_V_HELO, ST_ANY, NULL, smtp_cmd_helo},
    {SMTP_V_MAIL, ST_GREETED, NULL, smtp_cmd_mail},
    {SMTP_V_RCPT, ST_MAIL | ST_RCPT, "503 5.5.1 Need MAIL before RCPT", smtp_cmd_rcpt},
    {SMTP_V_DATA, ST_ANY, NULL, smtp_cmd_data},
    {SMTP_V_BDAT, ST_ANY, NULL, smtp_cmd_bdat},
    {SMTP_V_RSET, ST_ANY, NULL, smtp_cmd_rset},
    {SMTP_V_NOOP, ST_ANY, NULL, smtp_cmd_noop},
    {SMTP_V_QUIT, ST_ANY, NULL, smtp_cmd_quit},
    {SMTP_V_VRFY, ST_ANY, NULL, smtp_cmd_vrfy},
    {SMTP_V_EXPN, ST_ANY, NULL, smtp_cmd_expn},
    {SMTP_V_HELP, ST_ANY, NULL, smtp_cmd_help},
    {SMTP_V_STARTTLS, ST_CONNECT | ST_GREETED,
     "503 5.5.1 STARTTLS not permitted during a mail transaction", smtp_cmd_starttls},
    {SMTP_V_AUTH, ST_ANY, NULL, smtp_cmd_auth},
};

/* MAIL's refusals depend on where the session is. */
static const char *smtp_mail_seq(const struct smtp *s)
{
    return s->state == ST_CONNECT ? "503 5.5.1 Send HELO/EHLO first"
                                  : "503 5.5.1 Nested MAIL command";
}

static size_t smtp_line_limit(enum smtp_verb v)
{
    if (v == SMTP_V_AUTH)
        return SMTP_AUTH_MAX + 2;
    if (v == SMTP_V_MAIL || v == SMTP_V_RCPT)
        return SMTP_ENV_LINE_MAX;
    return SMTP_LINE_MAX;
}

static void smtp_dispatch(struct smtp *s, char *line, size_t len)
{
    struct smtp_cmd cmd;

    if (smtp_parse_command(line, len, &cmd) != SMTP_OK) {
        smtp_error(s, "500 5.5.2 Syntax error: NUL or bare CR in command");
        return;
    }
    if (cmd.verb == SMTP_V_HTTP) {
        log_info("smtp", "%s: HTTP request on an SMTP port; closing", net_conn_remote_ip(s->c));
        smtp_reply(s, "421 4.7.0 This is an SMTP server");
        s->quit = 1;
        return;
    }
    if (len > smtp_line_limit(cmd.verb)) {
        smtp_error(s, "500 5.5.2 Line too long");
        return;
    }
    for (size_t i = 0; i < sizeof(smtp_cmds) / sizeof(smtp_cmds[0]); i++) {
        const struct smtp_cmd_def *d = &smtp_cmds[i];
        if (d->verb != cmd.verb)
            continue;
        if (!(d->states & s->state)) {
            smtp_error(s, d->seq ? d->seq : smtp_mail_seq(s));
            return;
        }
        d->fn(s, cmd.args);
        return;
    }
    smtp_error(s, "500 5.5.2 Command unrecognized");
}

void smtp_session(struct net_conn *c, void *ctx)
{
    /* Heap, not stack: session threads have small stacks and this holds the input buffer. */
    struct smtp *s = calloc(1, sizeof(*s));

    if (!s) {
        net_printf(c, "421 4.3.0 Out of memory\r\n");
        net_flush(c);
        return;
    }
    s->c = c;
    s->m = ctx;
    s->state = ST_CONNECT;
    s->timeout_ms = s->m->idle_timeout_ms > 0 ? s->m->idle_timeout_ms : SMTP_IDLE_MS;
    net_printf(c, "220 %s ESMTP Polaris\r\n", s->m->hostname);
    while (!s->quit) {
        ssize_t n = smtp_read_line(s, sizeof(s->line));
        if (n == NET_ETOOLONG) {
            smtp_error(s, "500 5.5.2 Line too long");
        } else if (n < 0) {
            smtp_read_failed(s, (int)n);
            break;
        } else {
            smtp_dispatch(s, s->line, (size_t)n);
        }
        if (!s->quit && s->errors >= SMTP_MAX_ERRORS) {
            net_printf(c, "421 4.7.0 %s Too many errors, closing connection\r\n", s->m->hostname);
            log_info("smtp", "%s: too many errors; closing", net_conn_remote_ip(c));
            break;
        }
    }
    net_flush(c);
    smtp_reset(s);
    free(s->rcpts);
    explicit_bzero(s, sizeof(*s));
    free(s);
}
