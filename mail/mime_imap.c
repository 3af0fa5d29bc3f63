/*
 * mime_imap.c — IMAP serializations computed from a parsed message, exactly as the RFC 3501
 * (and RFC 9051) grammar has them: ENVELOPE, BODYSTRUCTURE (extensible: MD5, disposition,
 * language, location) and BODY (non-extensible); plus the RFC 5256 §2.1 base subject that
 * SORT and THREAD compare.
 *
 * Strings follow one rule (see mime.h): NUL dropped; quoted when short 7-bit text without
 * CR/LF; a literal otherwise. Case-insensitive tokens (type, subtype, encoding, parameter
 * names, disposition) are sent in upper case, as the RFC's examples do.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "mail/mime.h"

void mime_imap_nstring(struct buf *b, const char *s, size_t len)
{
    if (!s) {
        buf_put(b, "NIL", 3);
        return;
    }
    size_t n = 0, special = 0;
    int quote = 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0)
            continue;
        n++;
        if (c >= 0x80 || c == '\r' || c == '\n')
            quote = 0;
        else if (c == '"' || c == '\\')
            special++;
    }
    if (n > MIME_IMAP_QUOTED_MAX)
        quote = 0;
    if (quote) {
        buf_putc(b, '"');
        for (size_t i = 0; i < len; i++) {
            if (s[i] == 0)
                continue;
            if (s[i] == '"' || s[i] == '\\')
                buf_putc(b, '\\');
            buf_putc(b, s[i]);
        }
        buf_putc(b, '"');
        return;
    }
    buf_putc(b, '{');
    buf_putu(b, n);
    buf_put(b, "}\r\n", 3);
    for (size_t i = 0; i < len; i++) {
        if (s[i] != 0)
            buf_putc(b, s[i]);
    }
}

static void nstr(struct buf *b, const char *s)
{
    mime_imap_nstring(b, s, s ? strlen(s) : 0);
}

static void sp(struct buf *b)
{
    buf_putc(b, ' ');
}

/* ---- ENVELOPE ----------------------------------------------------------------------- */

enum env_field {
    ENV_DATE,
    ENV_SUBJECT,
    ENV_FROM,
    ENV_SENDER,
    ENV_REPLY_TO,
    ENV_TO,
    ENV_CC,
    ENV_BCC,
    ENV_IN_REPLY_TO,
    ENV_MESSAGE_ID,
    ENV_COUNT
};

static const char *const env_names[ENV_COUNT] = {"date",        "subject",   "from", "sender",
                                                 "reply-to",    "to",        "cc",   "bcc",
                                                 "in-reply-to", "message-id"};

static void env_addrs(struct buf *b, const struct mime_addr *ad)
{
    if (!ad) {
        buf_put(b, "NIL", 3);
        return;
    }
    buf_putc(b, '(');
    for (; ad; ad = ad->next) {
        buf_putc(b, '(');
        if (ad->kind == MIME_ADDR_MAILBOX) {
            nstr(b, ad->name);
            sp(b);
            nstr(b, ad->adl);
            sp(b);
            nstr(b, ad->mailbox ? ad->mailbox : "");
            sp(b);
            nstr(b, ad->host ? ad->host : "");
        } else if (ad->kind == MIME_ADDR_GROUP_START) {
            buf_put(b, "NIL NIL ", 8);
            nstr(b, ad->mailbox ? ad->mailbox : "");
            buf_put(b, " NIL", 4);
        } else {
            buf_put(b, "NIL NIL NIL NIL", 15);
        }
        buf_putc(b, ')');
    }
    buf_putc(b, ')');
}

void mime_imap_envelope(struct mime_arena *a, const char *hdr, size_t len, struct buf *b)
{
    struct mime_field f, found[ENV_COUNT];
    int have[ENV_COUNT] = {0};
    struct mime_addr *addrs[ENV_COUNT] = {0};
    size_t pos = 0, limit = len < MIME_MAX_HEADER ? len : MIME_MAX_HEADER;
    while (mime_header_next(hdr, limit, &pos, &f)) {
        for (int i = 0; i < ENV_COUNT; i++) {
            if (!have[i] && f.name_len == strlen(env_names[i]) &&
                strncasecmp(f.name, env_names[i], f.name_len) == 0) {
                found[i] = f;
                have[i] = 1;
            }
        }
    }
    for (int i = ENV_FROM; i <= ENV_BCC; i++) {
        if (have[i])
            mime_addr_parse(a, found[i].value, found[i].value_len, &addrs[i]);
    }
    /* RFC 3501: sender and reply-to default to from. */
    if (!addrs[ENV_SENDER])
        addrs[ENV_SENDER] = addrs[ENV_FROM];
    if (!addrs[ENV_REPLY_TO])
        addrs[ENV_REPLY_TO] = addrs[ENV_FROM];
    buf_putc(b, '(');
    for (int i = 0; i < ENV_COUNT; i++) {
        if (i)
            sp(b);
        if (i >= ENV_FROM && i <= ENV_BCC)
            env_addrs(b, addrs[i]);
        else
            nstr(b, have[i] ? mime_unfold(a, found[i].value, found[i].value_len) : NULL);
    }
    buf_putc(b, ')');
    if (a->oom)
        b->oom = 1;
}

/* ---- BODYSTRUCTURE / BODY ------------------------------------------------------------ */

static void params(struct buf *b, const struct mime_param *p, size_t n)
{
    if (n == 0) {
        buf_put(b, "NIL", 3);
        return;
    }
    buf_putc(b, '(');
    for (size_t i = 0; i < n; i++) {
        if (i)
            sp(b);
        nstr(b, p[i].attr);
        sp(b);
        nstr(b, p[i].value);
    }
    buf_putc(b, ')');
}

static void disposition(struct buf *b, const struct mime_part *p)
{
    if (!p->disp) {
        buf_put(b, "NIL", 3);
        return;
    }
    buf_putc(b, '(');
    nstr(b, p->disp);
    sp(b);
    params(b, p->dparams, p->ndparams);
    buf_putc(b, ')');
}

/* Content-Language "en, de" → ("en" "de"); one tag → "en"; none → NIL. */
static void language(struct buf *b, const char *lang)
{
    const char *tags[64];
    size_t lens[64], n = 0;
    for (const char *s = lang; s && *s && n < 64;) {
        while (*s == ',' || *s == ' ' || *s == '\t')
            s++;
        if (*s == '(') {
            /* a comment, skipped whole */
            size_t depth = 0;
            for (; *s; s++) {
                if (*s == '(')
                    depth++;
                else if (*s == ')' && --depth == 0) {
                    s++;
                    break;
                }
            }
            continue;
        }
        const char *t = s;
        while (*s && *s != ',' && *s != ' ' && *s != '\t' && *s != '(')
            s++;
        if (s > t) {
            tags[n] = t;
            lens[n++] = (size_t)(s - t);
        }
    }
    if (n == 0) {
        buf_put(b, "NIL", 3);
        return;
    }
    if (n > 1)
        buf_putc(b, '(');
    for (size_t i = 0; i < n; i++) {
        if (i)
            sp(b);
        mime_imap_nstring(b, tags[i], lens[i]);
    }
    if (n > 1)
        buf_putc(b, ')');
}

/* The encoding as a token in upper case, 7BIT when absent. */
static void encoding(struct buf *b, const char *enc)
{
    char tmp[64];
    size_t n = enc ? strlen(enc) : 0;
    if (n == 0) {
        nstr(b, "7BIT");
        return;
    }
    if (n >= sizeof(tmp)) {
        nstr(b, enc);
        return;
    }
    for (size_t i = 0; i <= n; i++)
        tmp[i] = (char)toupper((unsigned char)enc[i]);
    nstr(b, tmp);
}

static void body_ext(struct buf *b, const struct mime_part *p)
{
    sp(b);
    disposition(b, p);
    sp(b);
    language(b, p->lang);
    sp(b);
    nstr(b, p->loc);
}

void mime_imap_bodystructure(const struct mime_message *m, const struct mime_part *p, int ext,
                             struct buf *b)
{
    buf_putc(b, '(');
    if (p->kind == MIME_MULTIPART) {
        for (const struct mime_part *c = p->children; c; c = c->next)
            mime_imap_bodystructure(m, c, ext, b);
        sp(b);
        nstr(b, p->subtype);
        if (ext) {
            sp(b);
            params(b, p->params, p->nparams);
            body_ext(b, p);
        }
        buf_putc(b, ')');
        return;
    }
    nstr(b, p->type);
    sp(b);
    nstr(b, p->subtype);
    sp(b);
    if (!strcmp(p->type, "TEXT") && !mime_param_get(p->params, p->nparams, "CHARSET") &&
        !mime_param_get(p->params, p->nparams, "CHARSET*")) {
        /* RFC 2045 §5.2: text without a charset is us-ascii; say so, as Dovecot does. */
        buf_puts(b, "(\"CHARSET\" \"us-ascii\"");
        for (size_t i = 0; i < p->nparams; i++) {
            sp(b);
            nstr(b, p->params[i].attr);
            sp(b);
            nstr(b, p->params[i].value);
        }
        buf_putc(b, ')');
    } else {
        params(b, p->params, p->nparams);
    }
    sp(b);
    nstr(b, p->id);
    sp(b);
    nstr(b, p->desc);
    sp(b);
    encoding(b, p->enc);
    sp(b);
    buf_putu(b, p->body_len);
    if (p->kind == MIME_MESSAGE) {
        /* body-type-msg: envelope and body of the encapsulated message, then lines. */
        struct mime_arena a = {0};
        sp(b);
        mime_imap_envelope(&a, m->data + p->msg->hdr_off, p->msg->hdr_len, b);
        mime_arena_free(&a);
        sp(b);
        mime_imap_bodystructure(m, p->msg, ext, b);
        sp(b);
        buf_putu(b, p->body_lines);
    } else if (!strcmp(p->type, "TEXT")) {
        sp(b);
        buf_putu(b, p->body_lines);
    }
    if (ext) {
        sp(b);
        nstr(b, p->md5);
        body_ext(b, p);
    }
    buf_putc(b, ')');
}

/* ---- RFC 5256 base subject --------------------------------------------------------- */

static int is_ws(char c)
{
    return c == ' ' || c == '\t';
}

/* Length of a subj-blob ("[" *BLOBCHAR "]" *WSP) at s, 0 if none. */
static size_t blob_len(const char *s, size_t len)
{
    if (len == 0 || s[0] != '[')
        return 0;
    size_t i = 1;
    while (i < len && s[i] != '[' && s[i] != ']')
        i++;
    if (i >= len || s[i] != ']')
        return 0;
    i++;
    while (i < len && is_ws(s[i]))
        i++;
    return i;
}

/* Length of a subj-leader (*subj-blob subj-refwd) at s, 0 if none. */
static size_t refwd_len(const char *s, size_t len)
{
    size_t i = 0, n, blobs = 0;
    /* Bounded: a subject of endless "[x]" would otherwise make the caller quadratic. */
    while (blobs++ < 16 && (n = blob_len(s + i, len - i)) > 0)
        i += n;
    if (len - i >= 3 && !strncasecmp(s + i, "fwd", 3))
        i += 3;
    else if (len - i >= 2 && (!strncasecmp(s + i, "fw", 2) || !strncasecmp(s + i, "re", 2)))
        i += 2;
    else
        return 0;
    while (i < len && is_ws(s[i]))
        i++;
    i += blob_len(s + i, len - i);
    return i < len && s[i] == ':' ? i + 1 : 0;
}

void mime_base_subject(const char *subj, size_t len, struct buf *out, int *is_reply)
{
    struct buf w = {0};
    *is_reply = 0;
    /* (1) tabs and line breaks to spaces, runs of spaces to one */
    for (size_t i = 0; i < len; i++) {
        char c = subj[i];
        if (c == '\t' || c == '\r' || c == '\n')
            c = ' ';
        if (c == ' ' && w.len && w.p[w.len - 1] == ' ')
            continue;
        buf_putc(&w, c);
    }
    const char *s = w.p ? w.p : "";
    size_t b = 0, e = w.len;
    for (;;) {
        /* (2) trailers: "(fwd)" and white space */
        for (;;) {
            if (e > b && is_ws(s[e - 1])) {
                e--;
            } else if (e - b >= 5 && !strncasecmp(s + e - 5, "(fwd)", 5)) {
                e -= 5;
                *is_reply = 1;
            } else {
                break;
            }
        }
        /* (3)-(5) leaders and blobs */
        for (int changed = 1; changed;) {
            changed = 0;
            size_t n = 0;
            while (b < e && (is_ws(s[b]) || (n = refwd_len(s + b, e - b)) > 0)) {
                if (is_ws(s[b])) {
                    b++;
                } else {
                    b += n;
                    *is_reply = 1;
                }
                changed = 1;
            }
            n = blob_len(s + b, e - b);
            if (n > 0 && b + n < e) {
                b += n;
                changed = 1;
            }
        }
        /* (6) "[fwd: ... ]" */
        if (e - b >= 6 && !strncasecmp(s + b, "[fwd:", 5) && s[e - 1] == ']') {
            b += 5;
            e--;
            *is_reply = 1;
            continue;
        }
        break;
    }
    buf_put(out, s + b, e - b);
    if (w.oom)
        out->oom = 1;
    buf_free(&w);
}
