/*
 * autoreply.c — per-user and per-alias auto-replies ("vacation" / out of office), written
 * from RFC 3834.
 *
 * Settings live in the directory under the address's "autoreply" key, as a small text
 * format: "key: value" lines (enabled, days, start, end, subject), an empty line, then the
 * body. Unknown keys are ignored, so later versions can add some.
 *
 * When a message reached an address, the pipeline asks here whether to answer. RFC 3834
 * §2 and common practice say no to: the null sender, Auto-Submitted other than "no",
 * Precedence bulk/list/junk, mailing-list fields, daemon and no-reply senders, mail where
 * the address is not in To/Cc (Bcc and list copies), and a sender already answered within
 * `days`. That last record is kept in the mailbox's own store (state "autoreply", one key
 * per sender) or, for an alias without a mailbox, in a directory setting of the alias.
 * The reply goes through deliver_message with the null sender (§3.1.2), so it reaches
 * local senders directly and others through the queue, and nothing ever answers it.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "mail/autoreply.h"
#include "mail/mail.h"
#include "mail/mime.h"

#define AUTOREPLY_KEY     "autoreply"
#define AUTOREPLY_LOG_KEY "autoreply.log" /* reply log of an alias without a mailbox */
#define AUTOREPLY_NS      "autoreply"     /* reply log in a mailbox's store */
#define AUTOREPLY_LOG_MAX 1000            /* senders remembered per alias */
#define AUTOREPLY_ADDR    320

/* ---------------------------------------------------------------------------------------
 * Settings
 * ------------------------------------------------------------------------------------ */

static void autoreply_scope(const char *address, char *out, size_t outlen)
{
    size_t i = 0;

    for (; address[i] && i + 1 < outlen; i++)
        out[i] = (char)tolower((unsigned char)address[i]);
    out[i] = '\0';
}

void autoreply_free(struct autoreply *a)
{
    free(a->body);
    a->body = NULL;
}

static void autoreply_set_key(struct autoreply *a, const char *key, const char *val)
{
    if (strcmp(key, "enabled") == 0)
        a->enabled = strcmp(val, "yes") == 0 || strcmp(val, "1") == 0;
    else if (strcmp(key, "days") == 0)
        a->days = atoi(val);
    else if (strcmp(key, "start") == 0)
        a->start = strtoll(val, NULL, 10);
    else if (strcmp(key, "end") == 0)
        a->end = strtoll(val, NULL, 10);
    else if (strcmp(key, "subject") == 0)
        snprintf(a->subject, sizeof(a->subject), "%s", val);
}

/* The "key: value" lines up to the empty one, then the body. */
static int autoreply_parse(const char *v, size_t len, struct autoreply *a)
{
    const char *p = v, *end = v + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *start = p;
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char line[AUTOREPLY_SUBJECT_MAX + 32], *colon;
        p = nl ? nl + 1 : end;
        if (n == 0)
            break;
        snprintf(line, sizeof(line), "%.*s", (int)n, start);
        if (!(colon = strchr(line, ':')))
            continue;
        *colon = '\0';
        autoreply_set_key(a, line, colon[1] == ' ' ? colon + 2 : colon + 1);
    }
    a->body = strndup(p, (size_t)(end - p));
    return a->body ? 0 : -1;
}

int autoreply_get(struct store *s, const char *address, struct autoreply *out,
                  struct store_err *err)
{
    char scope[AUTOREPLY_ADDR];
    void *val = NULL;
    size_t len = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    out->days = -1;
    autoreply_scope(address, scope, sizeof(scope));
    rc = store_setting_get(s, scope, AUTOREPLY_KEY, &val, &len, err);
    if (rc != STORE_OK)
        return rc;
    rc = autoreply_parse(val, len, out);
    free(val);
    if (rc < 0) {
        autoreply_free(out);
        if (err) {
            err->code = STORE_ENOMEM;
            snprintf(err->msg, sizeof(err->msg), "out of memory");
        }
        return STORE_ENOMEM;
    }
    return STORE_OK;
}

static int autoreply_invalid(struct store_err *err, const char *what)
{
    if (err) {
        err->code = STORE_EINVAL;
        snprintf(err->msg, sizeof(err->msg), "%s", what);
    }
    return STORE_EINVAL;
}

int autoreply_put(struct store *s, const char *address, const struct autoreply *a,
                  struct store_err *err)
{
    char scope[AUTOREPLY_ADDR];
    struct buf b = {0};
    const char *body = a->body ? a->body : "";
    int rc;

    for (const char *p = a->subject; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return autoreply_invalid(err, "the auto-reply subject cannot contain control "
                                          "characters or line breaks");
    if (strlen(body) > AUTOREPLY_BODY_MAX)
        return autoreply_invalid(err, "the auto-reply text is longer than 64 KiB");
    if (a->start && a->end && a->end < a->start)
        return autoreply_invalid(err, "the auto-reply ends before it starts");
    autoreply_scope(address, scope, sizeof(scope));
    buf_puts(&b, a->enabled ? "enabled: yes\n" : "enabled: no\n");
    if (a->days >= 0) {
        buf_puts(&b, "days: ");
        buf_putu(&b, (uint64_t)a->days);
        buf_putc(&b, '\n');
    }
    if (a->start > 0) {
        buf_puts(&b, "start: ");
        buf_putu(&b, (uint64_t)a->start);
        buf_putc(&b, '\n');
    }
    if (a->end > 0) {
        buf_puts(&b, "end: ");
        buf_putu(&b, (uint64_t)a->end);
        buf_putc(&b, '\n');
    }
    buf_puts(&b, "subject: ");
    buf_puts(&b, a->subject);
    buf_puts(&b, "\n\n");
    buf_puts(&b, body);
    if (b.oom) {
        buf_free(&b);
        if (err) {
            err->code = STORE_ENOMEM;
            snprintf(err->msg, sizeof(err->msg), "out of memory");
        }
        return STORE_ENOMEM;
    }
    rc = store_setting_put(s, scope, AUTOREPLY_KEY, b.p, b.len, err);
    buf_free(&b);
    return rc;
}

int autoreply_parse_date(const char *s, int end_of_day, int64_t *out)
{
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0, has_time = 0;
    time_t t;

    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
        return -1;
    s += n;
    if (*s == 'T' || *s == ' ') {
        int m = 0;
        if (sscanf(s + 1, "%2d:%2d%n", &h, &mi, &m) != 2 || m != 5)
            return -1;
        s += 1 + m;
        if (*s == ':') {
            if (sscanf(s + 1, "%2d%n", &sec, &m) != 1 || m != 2)
                return -1;
            s += 3;
        }
        if (*s == 'Z')
            s++;
        has_time = 1;
    }
    if (*s || y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60 || h < 0 || mi < 0 || sec < 0)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    if ((t = timegm(&tm)) == (time_t)-1 || tm.tm_mday != d)
        return -1; /* timegm normalises 2024-02-30: refuse it */
    *out = (int64_t)t + (end_of_day && !has_time ? 86399 : 0);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Should we answer? (RFC 3834 §2, §3.1.1)
 * ------------------------------------------------------------------------------------ */

/* The first token of a field's value, lower-cased ("auto-generated; x=y" → "auto-generated"). */
static void autoreply_token(const struct mime_field *f, char *out, size_t outlen)
{
    size_t i = 0, n = 0;

    while (i < f->value_len && isspace((unsigned char)f->value[i]))
        i++;
    for (; i < f->value_len && n + 1 < outlen; i++) {
        unsigned char c = (unsigned char)f->value[i];
        if (isspace(c) || c == ';' || c == '(')
            break;
        out[n++] = (char)tolower(c);
    }
    out[n] = '\0';
}

static int autoreply_field_is(const struct mime_field *f, const char *name)
{
    return f->name_len == strlen(name) && strncasecmp(f->name, name, f->name_len) == 0;
}

/* Header fields that say the message was automatic, or came from a list. */
static int autoreply_header_says_no(const char *hdr, size_t len)
{
    static const char *const list_fields[] = {"List-Id", "List-Unsubscribe", "List-Post"};
    struct mime_field f;
    size_t pos = 0;
    char tok[64];

    while (mime_header_next(hdr, len, &pos, &f)) {
        for (size_t i = 0; i < sizeof(list_fields) / sizeof(list_fields[0]); i++)
            if (autoreply_field_is(&f, list_fields[i]))
                return 1;
        autoreply_token(&f, tok, sizeof(tok));
        if (autoreply_field_is(&f, "Auto-Submitted") && strcmp(tok, "no") != 0)
            return 1;
        if (autoreply_field_is(&f, "Precedence") &&
            (strcmp(tok, "bulk") == 0 || strcmp(tok, "list") == 0 || strcmp(tok, "junk") == 0))
            return 1;
        /* Microsoft's way of asking not to be answered (OOF, AutoReply or All). */
        if (autoreply_field_is(&f, "X-Auto-Response-Suppress") &&
            (strcasestr(tok, "oof") || strcasestr(tok, "autoreply") || strcasestr(tok, "all")))
            return 1;
    }
    return 0;
}

/* Daemons, lists and no-reply senders never read answers (RFC 3834 §3.1.1 and practice). */
static int autoreply_sender_says_no(const char *sender)
{
    static const char *const exact[] = {"mailer-daemon", "postmaster", "listserv", "majordomo",
                                        "mailman",       "nobody",     "root"};
    static const char *const prefix[] = {"owner-",   "bounce",     "noreply",      "no-reply",
                                         "no_reply", "donotreply", "do-not-reply", "do_not_reply"};
    static const char *const suffix[] = {"-request", "-owner", "-bounces", "-bounce"};
    char lp[AUTOREPLY_ADDR];
    const char *at = strrchr(sender, '@');
    size_t n = at ? (size_t)(at - sender) : strlen(sender);

    if (n >= sizeof(lp))
        return 1;
    for (size_t i = 0; i < n; i++)
        lp[i] = (char)tolower((unsigned char)sender[i]);
    lp[n] = '\0';
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
        if (strcmp(lp, exact[i]) == 0)
            return 1;
    for (size_t i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++)
        if (strncmp(lp, prefix[i], strlen(prefix[i])) == 0)
            return 1;
    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        size_t sl = strlen(suffix[i]);
        if (n > sl && strcmp(lp + n - sl, suffix[i]) == 0)
            return 1;
    }
    return 0;
}

/* Is one of the addresses in a To: or Cc: field? (Not so for Bcc and list copies.) */
static int autoreply_addressed(const char *hdr, size_t len, const char *a1, const char *a2)
{
    struct mime_arena arena = {0};
    struct mime_field f;
    size_t pos = 0;
    int found = 0;

    while (!found && mime_header_next(hdr, len, &pos, &f)) {
        struct mime_addr *list = NULL;
        if (!autoreply_field_is(&f, "To") && !autoreply_field_is(&f, "Cc"))
            continue;
        if (mime_addr_parse(&arena, f.value, f.value_len, &list) < 0)
            break;
        for (struct mime_addr *ad = list; ad && !found; ad = ad->next) {
            char full[AUTOREPLY_ADDR * 2];
            if (ad->kind != MIME_ADDR_MAILBOX || !ad->mailbox || !ad->host)
                continue;
            snprintf(full, sizeof(full), "%s@%s", ad->mailbox, ad->host);
            found = strcasecmp(full, a1) == 0 || (a2 && strcasecmp(full, a2) == 0);
        }
    }
    mime_arena_free(&arena);
    return found;
}

/* ---------------------------------------------------------------------------------------
 * Once per sender per `days`: the reply log
 * ------------------------------------------------------------------------------------ */

/* One process-wide lock around the log's read-check-write, so that two deliveries at the
 * same moment do not both answer (the mailbox variant has its transaction as well). */
static pthread_mutex_t autoreply_log_lock = PTHREAD_MUTEX_INITIALIZER;

/* In a mailbox's store. Returns 1 when the sender may be answered now (and records it). */
static int autoreply_claim_mailbox(struct store *s, const char *scope, const char *sender,
                                   int64_t window, int64_t now)
{
    struct store_user *u = NULL;
    void *val = NULL;
    size_t len = 0;
    char ts[24];
    int ok = 0;

    if (store_user_open(s, scope, &u, NULL) != STORE_OK)
        return 0;
    if (store_txn_begin(u, NULL) != STORE_OK)
        goto out;
    if (store_state_get(u, AUTOREPLY_NS, sender, &val, &len, NULL) == STORE_OK) {
        int64_t last = strtoll(val, NULL, 10);
        free(val);
        if (window > 0 && now - last < window && now >= last) {
            store_txn_rollback(u);
            goto out;
        }
    }
    snprintf(ts, sizeof(ts), "%lld", (long long)now);
    if (store_state_put(u, AUTOREPLY_NS, sender, ts, strlen(ts), NULL) != STORE_OK) {
        store_txn_rollback(u);
        goto out;
    }
    ok = store_txn_commit(u, NULL, NULL) == STORE_OK;
out:
    store_user_release(u);
    return ok;
}

/* In the alias's directory setting: "sender timestamp" lines, newest last; entries older
 * than the window are dropped and at most AUTOREPLY_LOG_MAX kept (the oldest go first). */
static int autoreply_claim_alias(struct store *s, const char *scope, const char *sender,
                                 int64_t window, int64_t now)
{
    struct buf b = {0};
    void *val = NULL;
    size_t len = 0, total = 0, idx = 0;
    int ok = 1;

    if (store_setting_get(s, scope, AUTOREPLY_LOG_KEY, &val, &len, NULL) == STORE_OK) {
        for (const char *p = val; *p; p++)
            total += *p == '\n';
        for (char *line = val, *nl, *sp; *line; line = nl + 1, idx++) {
            int64_t t;
            if (!(nl = strchr(line, '\n')))
                break;
            *nl = '\0';
            if (!(sp = strrchr(line, ' ')))
                continue;
            *sp = '\0';
            t = strtoll(sp + 1, NULL, 10);
            if (strcmp(line, sender) == 0) {
                ok = !(window > 0 && now >= t && now - t < window);
                continue; /* re-added at the end when answered */
            }
            if ((window > 0 && now - t >= window) || idx + AUTOREPLY_LOG_MAX <= total)
                continue;
            buf_puts(&b, line);
            buf_putc(&b, ' ');
            buf_putu(&b, (uint64_t)t);
            buf_putc(&b, '\n');
        }
        free(val);
    }
    if (ok) {
        buf_puts(&b, sender);
        buf_putc(&b, ' ');
        buf_putu(&b, (uint64_t)now);
        buf_putc(&b, '\n');
        ok = !b.oom && store_setting_put(s, scope, AUTOREPLY_LOG_KEY, b.p, b.len, NULL) == 0;
    }
    buf_free(&b);
    return ok;
}

static int autoreply_claim(struct deliver *d, const struct autoreply_ctx *c, const char *sender,
                           int days)
{
    int64_t window = (int64_t)days * 86400, now = time(NULL);
    int ok;

    pthread_mutex_lock(&autoreply_log_lock);
    if (c->has_mailbox)
        ok = autoreply_claim_mailbox(d->store, c->scope, sender, window, now);
    else
        ok = autoreply_claim_alias(d->store, c->scope, sender, window, now);
    pthread_mutex_unlock(&autoreply_log_lock);
    return ok;
}

/* ---------------------------------------------------------------------------------------
 * The reply (RFC 3834 §3.1)
 * ------------------------------------------------------------------------------------ */

/* The unfolded value of the first field called name, bounded; "" when absent. */
static void autoreply_field(const char *hdr, size_t len, const char *name, char *out, size_t outlen)
{
    struct mime_field f;
    size_t n = 0;

    out[0] = '\0';
    if (!mime_header_get(hdr, len, name, &f))
        return;
    for (size_t i = 0; i < f.value_len && n + 1 < outlen; i++) {
        char c = f.value[i];
        if (c == '\r' || c == '\n' || (n == 0 && (c == ' ' || c == '\t')))
            continue;
        out[n++] = c;
    }
    while (n && (out[n - 1] == ' ' || out[n - 1] == '\t'))
        n--;
    out[n] = '\0';
}

static int autoreply_is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

/* A header value we write: as is when ASCII, else one RFC 2047 B word per chunk. */
static void autoreply_add_text(struct buf *b, const char *s)
{
    size_t len = strlen(s);

    if (autoreply_is_ascii(s)) {
        buf_puts(b, s);
        return;
    }
    for (size_t off = 0; off < len;) {
        char enc[64];
        size_t n = len - off > 36 ? 36 : len - off;
        /* Do not split a UTF-8 sequence between two words. */
        while (n > 1 && off + n < len && ((unsigned char)s[off + n] & 0xC0) == 0x80)
            n--;
        b64_encode((const unsigned char *)s + off, n, enc, sizeof(enc));
        buf_puts(b, off ? "\r\n =?UTF-8?B?" : "=?UTF-8?B?");
        buf_puts(b, enc);
        buf_puts(b, "?=");
        off += n;
    }
}

static void autoreply_add_date(struct buf *b)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;
    char buf[64];

    gmtime_r(&now, &tm);
    snprintf(buf, sizeof(buf), "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    buf_puts(b, buf);
}

static void autoreply_add_ids(struct buf *b, const struct deliver *d, const char *hdr, size_t len)
{
    unsigned char rnd[12];
    char mid[998], refs[2048], hex[32];

    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        memset(rnd, 0, sizeof(rnd));
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    buf_puts(b, "Message-ID: <auto.");
    buf_putu(b, (uint64_t)time(NULL));
    buf_putc(b, '.');
    buf_puts(b, hex);
    buf_putc(b, '@');
    buf_puts(b, d->cfg && d->cfg->hostname[0] ? d->cfg->hostname : "localhost");
    buf_puts(b, ">\r\n");
    autoreply_field(hdr, len, "Message-ID", mid, sizeof(mid));
    if (!mid[0])
        return;
    /* §3.1.5: In-Reply-To the original, References its References (or In-Reply-To) plus it;
     * an overlong chain is cut rather than folded. */
    autoreply_field(hdr, len, "References", refs, sizeof(refs));
    if (!refs[0])
        autoreply_field(hdr, len, "In-Reply-To", refs, sizeof(refs));
    if (strlen(refs) > 900)
        refs[0] = '\0';
    buf_puts(b, "In-Reply-To: ");
    buf_puts(b, mid);
    buf_puts(b, "\r\nReferences: ");
    if (refs[0]) {
        buf_puts(b, refs);
        buf_puts(b, "\r\n ");
    }
    buf_puts(b, mid);
    buf_puts(b, "\r\n");
}

/* The text as CRLF lines: 7bit/8bit when every line fits in SMTP's 998, else base64. */
static void autoreply_add_body(struct buf *b, const char *body)
{
    struct buf crlf = {0};
    size_t line = 0, longest = 0;

    for (const char *p = body; *p; p++) {
        if (*p == '\r' && p[1] == '\n')
            continue;
        if (*p == '\n' || *p == '\r') {
            buf_puts(&crlf, "\r\n");
            line = 0;
            continue;
        }
        buf_putc(&crlf, *p);
        if (++line > longest)
            longest = line;
    }
    if (crlf.len < 2 || memcmp(crlf.p + crlf.len - 2, "\r\n", 2) != 0)
        buf_puts(&crlf, "\r\n");
    if (crlf.oom) {
        b->oom = 1;
        goto out;
    }
    if (longest <= 998) {
        buf_puts(b, autoreply_is_ascii(crlf.p) ? "Content-Transfer-Encoding: 7bit\r\n\r\n"
                                               : "Content-Transfer-Encoding: 8bit\r\n\r\n");
        buf_put(b, crlf.p, crlf.len);
        goto out;
    }
    buf_puts(b, "Content-Transfer-Encoding: base64\r\n\r\n");
    for (size_t off = 0; off < crlf.len; off += 57) {
        char enc[80];
        size_t n = crlf.len - off > 57 ? 57 : crlf.len - off;
        b64_encode((const unsigned char *)crlf.p + off, n, enc, sizeof(enc));
        buf_puts(b, enc);
        buf_puts(b, "\r\n");
    }
out:
    buf_free(&crlf);
}

static int autoreply_build(struct deliver *d, const struct autoreply_ctx *c,
                           const struct autoreply *a, struct buf *b)
{
    char subj[998];

    buf_puts(b, "From: ");
    buf_puts(b, c->scope);
    buf_puts(b, "\r\nTo: ");
    buf_puts(b, c->mail_from);
    buf_puts(b, "\r\nSubject: ");
    if (a->subject[0]) {
        autoreply_add_text(b, a->subject);
    } else {
        autoreply_field(c->hdr, c->hdr_len, "Subject", subj, sizeof(subj));
        buf_puts(b, "Auto: ");
        buf_puts(b, subj[0] ? subj : "(no subject)");
    }
    buf_puts(b, "\r\n");
    autoreply_add_date(b);
    autoreply_add_ids(b, d, c->hdr, c->hdr_len);
    buf_puts(b, "Auto-Submitted: auto-replied\r\n"
                "MIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n");
    autoreply_add_body(b, a->body ? a->body : "");
    return b->oom ? -1 : 0;
}

static int autoreply_send(struct deliver *d, const struct autoreply_ctx *c,
                          const struct autoreply *a)
{
    struct deliver_env env = {.mail_from = "", .auth_user = c->scope, .protocol = "autoreply"};
    struct deliver_reply r = {0};
    struct buf b = {0};
    const char *rcpts[1] = {c->mail_from};
    int rc = -1;

    if (autoreply_build(d, c, a, &b) == 0)
        rc = deliver_message(d, &env, rcpts, 1, b.p, b.len, &r, NULL);
    if (rc == 0)
        log_info("deliver", "auto-reply from %s to %s", c->scope, c->mail_from);
    else
        log_warn("deliver", "auto-reply from %s to %s failed: %d %s %s", c->scope, c->mail_from,
                 r.code, r.enhanced, b.oom ? "out of memory" : r.text);
    buf_free(&b);
    return rc;
}

int autoreply_consider(struct deliver *d, const struct autoreply_ctx *c)
{
    struct autoreply a;
    char sender[AUTOREPLY_ADDR];
    int64_t now = time(NULL);
    int sent = 0;

    if (!c->mail_from || !c->mail_from[0] || autoreply_sender_says_no(c->mail_from))
        return 0;
    autoreply_scope(c->mail_from, sender, sizeof(sender));
    if (strcmp(sender, c->scope) == 0 || autoreply_header_says_no(c->hdr, c->hdr_len))
        return 0;
    if (autoreply_get(d->store, c->scope, &a, NULL) != STORE_OK)
        return 0;
    if (!a.enabled || (a.start && now < a.start) || (a.end && now > a.end))
        goto out;
    if (!autoreply_addressed(c->hdr, c->hdr_len, c->scope, c->rcpt))
        goto out;
    if (!autoreply_claim(d, c, sender, a.days >= 0 ? a.days : d->cfg ? d->cfg->autoreply_days : 7))
        goto out;
    /* A failed send is not retried for this sender within the window: better one missed
     * vacation notice than a burst of them while the queue is down. */
    sent = autoreply_send(d, c, &a) == 0;
out:
    autoreply_free(&a);
    return sent;
}
