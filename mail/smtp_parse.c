/*
 * smtp_parse.c — the SMTP parser library: command lines, paths and addresses (RFC 5321
 * §4.1.2, RFC 6531 for UTF-8), ESMTP parameters (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531
 * SMTPUTF8, RFC 4954 AUTH=, RFC 3461 RET/ENVID/NOTIFY/ORCPT with xtext), BDAT arguments
 * (RFC 3030) and the content decoder behind DATA and BDAT.
 *
 * No I/O and no allocation except the content buffer. Every scanner takes an explicit
 * length; the session (smtp.c) and the fuzz targets feed it whatever a client sent.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/smtp_parse.h"

#define SMTP_LABEL_MAX 63

/* ---- characters ----------------------------------------------------------------------- */

static int smtp_is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* atext of RFC 5322 §3.2.3, ASCII part. */
static int smtp_is_atext(unsigned char c)
{
    return smtp_is_alnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* Length of a well-formed UTF-8 sequence for one non-ASCII character at s (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t smtp_utf8_len(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n;

    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

/* ---- domains and address literals ------------------------------------------------------ */

/* Domain = sub-domain *("." sub-domain), each a Let-dig [Ldh-str] of at most 63 octets;
 * with allow_utf8, non-ASCII characters count as letters (U-labels). Scans from s and
 * stops at the first byte that cannot continue it; returns the length (0: none). */
static size_t smtp_scan_domain(const unsigned char *s, size_t len, int allow_utf8, int *utf8,
                               int *err)
{
    size_t i = 0, label = 0;
    int last_hyphen = 0;

    *err = SMTP_OK;
    for (;;) {
        size_t start = i;
        label = 0;
        last_hyphen = 0;
        while (i < len) {
            size_t n = 1;
            if (s[i] >= 0x80) {
                if (!allow_utf8) {
                    *err = SMTP_E_UTF8;
                    return 0;
                }
                if (!(n = smtp_utf8_len(s + i, len - i))) {
                    *err = SMTP_E_SYNTAX;
                    return 0;
                }
                *utf8 = 1;
            } else if (s[i] == '-') {
                if (i == start)
                    break;
            } else if (!smtp_is_alnum(s[i])) {
                break;
            }
            last_hyphen = s[i] == '-';
            i += n;
            label += n;
        }
        if (label == 0 || last_hyphen || label > SMTP_LABEL_MAX) {
            *err = SMTP_E_SYNTAX;
            return 0;
        }
        /* A dot continues the domain only when a label follows it. */
        if (i + 1 < len && s[i] == '.' && (smtp_is_alnum(s[i + 1]) || s[i + 1] >= 0x80)) {
            i++;
            continue;
        }
        break;
    }
    if (i > SMTP_DOMAIN_MAX) {
        *err = SMTP_E_TOOLONG;
        return 0;
    }
    return i;
}

static int smtp_ipv4_literal(const char *s, size_t len)
{
    int parts = 0;
    size_t i = 0;

    while (i < len) {
        size_t d = 0;
        unsigned v = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9' && d < 4) {
            v = v * 10 + (unsigned)(s[i] - '0');
            i++;
            d++;
        }
        if (d == 0 || d > 3 || v > 255)
            return 0;
        parts++;
        if (i < len) {
            if (s[i] != '.' || parts == 4)
                return 0;
            i++;
            if (i == len)
                return 0;
        }
    }
    return parts == 4;
}

/* address-literal = "[" ( IPv4 / "IPv6:" IPv6 ) "]" at s; general literals with other
 * tags are refused (none is standardised). Returns its length, canonical text in out. */
static size_t smtp_scan_literal(const char *s, size_t len, char *out, size_t outmax)
{
    const char *close = memchr(s, ']', len);
    size_t inner;
    char tmp[64];
    unsigned char bin[16];

    if (len < 2 || s[0] != '[' || !close)
        return 0;
    inner = (size_t)(close - s) - 1;
    if (inner == 0 || inner >= sizeof(tmp))
        return 0;
    memcpy(tmp, s + 1, inner);
    tmp[inner] = '\0';
    if (smtp_ipv4_literal(tmp, inner)) {
        snprintf(out, outmax, "[%s]", tmp);
        return inner + 2;
    }
    if (inner > 5 && strncasecmp(tmp, "IPv6:", 5) == 0 && inet_pton(AF_INET6, tmp + 5, bin) == 1) {
        for (char *p = tmp + 5; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        snprintf(out, outmax, "[IPv6:%s]", tmp + 5);
        return inner + 2;
    }
    return 0;
}

/* The domain part of a mailbox (a Domain or an address literal), canonical in out. */
static size_t smtp_scan_domain_part(const char *s, size_t len, int allow_utf8,
                                    struct smtp_addr *out, int *err)
{
    size_t n;

    *err = SMTP_OK;
    if (len && s[0] == '[') {
        n = smtp_scan_literal(s, len, out->domain, sizeof(out->domain));
        if (!n)
            *err = SMTP_E_SYNTAX;
        out->literal = 1;
        return n;
    }
    n = smtp_scan_domain((const unsigned char *)s, len, allow_utf8, &out->utf8, err);
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++)
        out->domain[i] = (char)tolower((unsigned char)s[i]);
    out->domain[n] = '\0';
    return n;
}

/* ---- local parts ---------------------------------------------------------------------- */

/* Dot-string = Atom *("." Atom) at s; returns its length or 0. */
static size_t smtp_scan_dot_string(const unsigned char *s, size_t len, int allow_utf8, int *utf8,
                                   int *err)
{
    size_t i = 0, atom = 0;

    while (i < len) {
        if (s[i] == '.') {
            if (atom == 0)
                break; /* leading or double dot: caller sees a syntax error */
            atom = 0;
            i++;
            continue;
        }
        if (s[i] >= 0x80) {
            size_t n;
            if (!allow_utf8) {
                *err = SMTP_E_UTF8;
                return 0;
            }
            if (!(n = smtp_utf8_len(s + i, len - i))) {
                *err = SMTP_E_SYNTAX;
                return 0;
            }
            *utf8 = 1;
            i += n;
            atom += n;
            continue;
        }
        if (!smtp_is_atext(s[i]))
            break;
        i++;
        atom++;
    }
    if (atom == 0) { /* empty or ending with a dot */
        *err = SMTP_E_SYNTAX;
        return 0;
    }
    return i;
}

/* Quoted-string of RFC 5321 at s (s[0] == '"'); the unescaped content goes to buf.
 * Returns the length consumed including both quotes, or 0. */
static size_t smtp_scan_quoted(const unsigned char *s, size_t len, int allow_utf8, int *utf8,
                               char *buf, size_t bufmax, size_t *buflen, int *err)
{
    size_t i = 1, o = 0;

    while (i < len && s[i] != '"') {
        size_t n = 1;
        const unsigned char *c = s + i;
        if (s[i] == '\\') {
            if (i + 1 >= len || s[i + 1] < 32 || s[i + 1] > 126)
                goto syntax;
            c = s + i + 1;
            i++;
        } else if (s[i] >= 0x80) {
            if (!allow_utf8) {
                *err = SMTP_E_UTF8;
                return 0;
            }
            if (!(n = smtp_utf8_len(s + i, len - i)))
                goto syntax;
            *utf8 = 1;
        } else if (s[i] < 32 || s[i] > 126) {
            goto syntax;
        }
        if (o + n >= bufmax) {
            *err = SMTP_E_TOOLONG;
            return 0;
        }
        memcpy(buf + o, c, n);
        o += n;
        i += n;
    }
    if (i >= len)
        goto syntax;
    *buflen = o;
    return i + 1;
syntax:
    *err = SMTP_E_SYNTAX;
    return 0;
}

/* Writes the canonical local part: unquoted when the content is a valid Dot-string,
 * else quoted with only '"' and '\' escaped. */
static int smtp_canon_local(const char *content, size_t n, struct smtp_addr *out)
{
    int u = 0, e = 0;
    size_t o = 0;

    if (n && smtp_scan_dot_string((const unsigned char *)content, n, 1, &u, &e) == n) {
        memcpy(out->local, content, n);
        out->local[n] = '\0';
        return SMTP_OK;
    }
    out->local[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (o + 4 > sizeof(out->local))
            return SMTP_E_TOOLONG;
        if (content[i] == '"' || content[i] == '\\')
            out->local[o++] = '\\';
        out->local[o++] = content[i];
    }
    out->local[o++] = '"';
    out->local[o] = '\0';
    return SMTP_OK;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ) at s, stopping where it ends. */
static int smtp_scan_mailbox(const char *s, size_t len, int allow_utf8, struct smtp_addr *out,
                             size_t *used)
{
    const unsigned char *u = (const unsigned char *)s;
    char content[SMTP_LOCAL_MAX + 1];
    size_t lp, clen = 0, dn;
    int err = SMTP_OK;

    if (len && s[0] == '"') {
        lp =
            smtp_scan_quoted(u, len, allow_utf8, &out->utf8, content, sizeof(content), &clen, &err);
    } else {
        lp = smtp_scan_dot_string(u, len, allow_utf8, &out->utf8, &err);
        clen = lp;
        if (lp > SMTP_LOCAL_MAX)
            return SMTP_E_TOOLONG;
        if (lp)
            memcpy(content, s, lp);
    }
    if (!lp)
        return err ? err : SMTP_E_SYNTAX;
    if (lp > SMTP_LOCAL_MAX)
        return SMTP_E_TOOLONG;
    if (lp >= len || s[lp] != '@')
        return SMTP_E_SYNTAX;
    if ((err = smtp_canon_local(content, clen, out)) != SMTP_OK)
        return err;
    dn = smtp_scan_domain_part(s + lp + 1, len - lp - 1, allow_utf8, out, &err);
    if (!dn)
        return err ? err : SMTP_E_SYNTAX;
    size_t ll = strlen(out->local), dl = strlen(out->domain);
    if (ll + 1 + dl > SMTP_PATH_MAX - 2)
        return SMTP_E_TOOLONG;
    memcpy(out->addr, out->local, ll);
    out->addr[ll] = '@';
    memcpy(out->addr + ll + 1, out->domain, dl + 1);
    *used = lp + 1 + dn;
    return SMTP_OK;
}

int smtp_parse_address(const char *s, size_t len, int allow_utf8, struct smtp_addr *out)
{
    size_t used = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (len > SMTP_PATH_MAX - 2)
        return SMTP_E_TOOLONG;
    rc = smtp_scan_mailbox(s, len, allow_utf8, out, &used);
    if (rc == SMTP_OK && used != len)
        rc = SMTP_E_SYNTAX;
    if (rc != SMTP_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* A-d-l = At-domain *( "," At-domain ) ":" — a source route, obsolete (RFC 5321 §4.1.2
 * and Appendix C): parsed for syntax and dropped. */
static size_t smtp_scan_adl(const char *s, size_t len, int allow_utf8, int *err)
{
    size_t i = 0;
    int utf8 = 0;

    while (i < len && s[i] == '@') {
        size_t n =
            smtp_scan_domain((const unsigned char *)s + i + 1, len - i - 1, allow_utf8, &utf8, err);
        if (!n)
            return 0;
        i += 1 + n;
        if (i < len && s[i] == ',') {
            i++;
            continue;
        }
        if (i < len && s[i] == ':')
            return i + 1;
        break;
    }
    *err = SMTP_E_SYNTAX;
    return 0;
}

int smtp_parse_path(const char *s, size_t len, int allow_utf8, int allow_null, int allow_postmaster,
                    struct smtp_addr *out, size_t *used)
{
    size_t i = 1, n = 0;
    int rc = SMTP_OK;

    memset(out, 0, sizeof(*out));
    if (len < 2 || s[0] != '<')
        return SMTP_E_SYNTAX;
    if (s[1] == '>') {
        if (!allow_null)
            return SMTP_E_SYNTAX;
        out->null = 1;
        *used = 2;
        return SMTP_OK;
    }
    if (allow_postmaster && len >= 12 && strncasecmp(s + 1, "postmaster>", 11) == 0) {
        out->postmaster = 1;
        snprintf(out->local, sizeof(out->local), "postmaster");
        snprintf(out->addr, sizeof(out->addr), "postmaster");
        *used = 12;
        return SMTP_OK;
    }
    if (s[1] == '@') {
        n = smtp_scan_adl(s + 1, len - 1, allow_utf8, &rc);
        if (!n)
            return rc;
        i += n;
    }
    rc = smtp_scan_mailbox(s + i, len - i, allow_utf8, out, &n);
    if (rc == SMTP_OK) {
        i += n;
        if (i >= len || s[i] != '>')
            rc = SMTP_E_SYNTAX;
        else if (i + 1 > SMTP_PATH_MAX)
            rc = SMTP_E_TOOLONG;
    }
    if (rc != SMTP_OK) {
        memset(out, 0, sizeof(*out));
        return rc;
    }
    *used = i + 1;
    return SMTP_OK;
}

int smtp_valid_helo(const char *s, size_t len)
{
    struct smtp_addr a;
    int err = SMTP_OK, utf8 = 0;

    memset(&a, 0, sizeof(a));
    if (len && s[0] == '[')
        return smtp_scan_literal(s, len, a.domain, sizeof(a.domain)) == len;
    return len && smtp_scan_domain((const unsigned char *)s, len, 0, &utf8, &err) == len;
}

/* ---- command lines -------------------------------------------------------------------- */

static const char *const smtp_verbs[SMTP_V__COUNT] = {
    [SMTP_V_HELO] = "HELO",         [SMTP_V_EHLO] = "EHLO", [SMTP_V_MAIL] = "MAIL",
    [SMTP_V_RCPT] = "RCPT",         [SMTP_V_DATA] = "DATA", [SMTP_V_BDAT] = "BDAT",
    [SMTP_V_RSET] = "RSET",         [SMTP_V_NOOP] = "NOOP", [SMTP_V_QUIT] = "QUIT",
    [SMTP_V_VRFY] = "VRFY",         [SMTP_V_EXPN] = "EXPN", [SMTP_V_HELP] = "HELP",
    [SMTP_V_STARTTLS] = "STARTTLS", [SMTP_V_AUTH] = "AUTH",
};

/* What a browser or proxy sends first: such a client is not speaking SMTP. */
static const char *const smtp_http_verbs[] = {"GET", "POST", "HEAD", "PUT", "CONNECT", "OPTIONS"};

const char *smtp_verb_name(enum smtp_verb v)
{
    if (v == SMTP_V_HTTP)
        return "HTTP";
    return v > SMTP_V_UNKNOWN && v < SMTP_V__COUNT && smtp_verbs[v] ? smtp_verbs[v] : "?";
}

static enum smtp_verb smtp_lookup_verb(const char *w, size_t n)
{
    for (int v = SMTP_V_HELO; v < SMTP_V__COUNT; v++)
        if (smtp_verbs[v] && strlen(smtp_verbs[v]) == n && strncasecmp(w, smtp_verbs[v], n) == 0)
            return (enum smtp_verb)v;
    for (size_t i = 0; i < sizeof(smtp_http_verbs) / sizeof(smtp_http_verbs[0]); i++)
        if (strlen(smtp_http_verbs[i]) == n && strncmp(w, smtp_http_verbs[i], n) == 0)
            return SMTP_V_HTTP;
    if (n > 1 && w[n - 1] == ':') /* "Host:", "User-Agent:": HTTP header lines */
        return SMTP_V_HTTP;
    return SMTP_V_UNKNOWN;
}

int smtp_parse_command(char *line, size_t len, struct smtp_cmd *out)
{
    size_t vlen = 0, i;

    memset(out, 0, sizeof(*out));
    if (len && line[len - 1] == '\n')
        len--;
    if (len && line[len - 1] == '\r')
        len--;
    if (memchr(line, '\0', len) || memchr(line, '\r', len) || memchr(line, '\n', len)) {
        line[0] = '\0';
        out->args = line;
        return SMTP_E_NUL;
    }
    /* Trailing blanks are common ("DATA ") and mean nothing. */
    while (len && (line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    line[len] = '\0';
    while (vlen < len && line[vlen] != ' ')
        vlen++;
    for (i = 0; i < vlen && i < sizeof(out->name) - 1; i++) {
        unsigned char c = (unsigned char)line[i];
        out->name[i] = c > 32 && c < 127 ? (char)toupper(c) : '?';
    }
    out->verb = smtp_lookup_verb(line, vlen);
    i = vlen;
    while (i < len && line[i] == ' ')
        i++;
    out->args = line + i;
    return SMTP_OK;
}

/* ---- ESMTP parameters ----------------------------------------------------------------- */

int smtp_xtext_decode(const char *in, size_t len, char *out, size_t outmax)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (o + 1 >= outmax)
            return -1;
        if (c == '+') {
            unsigned v = 0;
            if (i + 2 >= len)
                return -1;
            for (int k = 1; k <= 2; k++) {
                char h = in[i + (size_t)k];
                if (h >= '0' && h <= '9')
                    v = v * 16 + (unsigned)(h - '0');
                else if (h >= 'A' && h <= 'F') /* RFC 3461: upper case only */
                    v = v * 16 + (unsigned)(h - 'A' + 10);
                else
                    return -1;
            }
            out[o++] = (char)v;
            i += 2;
        } else if (c >= 33 && c <= 126 && c != '=') {
            out[o++] = (char)c;
        } else {
            return -1;
        }
    }
    out[o] = '\0';
    return (int)o;
}

/* One esmtp-param: keyword ["=" value] at s (up to the next space). */
struct smtp_param {
    const char *key;
    size_t klen;
    const char *val; /* NULL: no "=" */
    size_t vlen;
};

static int smtp_split_param(const char *s, size_t len, struct smtp_param *p, int allow_utf8)
{
    size_t i = 0;

    memset(p, 0, sizeof(*p));
    if (!len || !smtp_is_alnum((unsigned char)s[0]))
        return SMTP_E_SYNTAX;
    while (i < len && (smtp_is_alnum((unsigned char)s[i]) || s[i] == '-'))
        i++;
    p->key = s;
    p->klen = i;
    if (i == len)
        return SMTP_OK;
    if (s[i] != '=' || i + 1 == len)
        return SMTP_E_SYNTAX;
    p->val = s + i + 1;
    p->vlen = len - i - 1;
    for (size_t k = 0; k < p->vlen; k++) {
        unsigned char c = (unsigned char)p->val[k];
        size_t n;
        if (c >= 0x80 && allow_utf8 &&
            (n = smtp_utf8_len((const unsigned char *)p->val + k, p->vlen - k))) {
            k += n - 1;
            continue;
        }
        if (c < 33 || c > 126 || c == '=')
            return SMTP_E_SYNTAX;
    }
    return SMTP_OK;
}

static int smtp_key_is(const struct smtp_param *p, const char *name)
{
    return strlen(name) == p->klen && strncasecmp(p->key, name, p->klen) == 0;
}

static int smtp_val_is(const struct smtp_param *p, const char *v)
{
    return p->val && strlen(v) == p->vlen && strncasecmp(p->val, v, p->vlen) == 0;
}

static void smtp_set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

/* Calls fn for each SP-separated parameter of s. */
typedef int (*smtp_param_fn)(const struct smtp_param *p, void *ctx, char *err, size_t errlen);

static int smtp_each_param(const char *s, int allow_utf8, smtp_param_fn fn, void *ctx, char *err,
                           size_t errlen)
{
    while (*s) {
        struct smtp_param p;
        size_t n;
        int rc;

        while (*s == ' ')
            s++;
        if (!*s)
            break;
        n = strcspn(s, " ");
        if ((rc = smtp_split_param(s, n, &p, allow_utf8)) != SMTP_OK) {
            smtp_set_err(err, errlen, "Malformed parameter");
            return rc;
        }
        if ((rc = fn(&p, ctx, err, errlen)) != SMTP_OK)
            return rc;
        s += n;
    }
    return SMTP_OK;
}

static int smtp_param_size(const struct smtp_param *p, struct smtp_mail *m)
{
    uint64_t v = 0;

    if (!p->val || p->vlen > 20)
        return SMTP_E_SYNTAX;
    for (size_t i = 0; i < p->vlen; i++) {
        unsigned d;
        if (p->val[i] < '0' || p->val[i] > '9')
            return SMTP_E_SYNTAX;
        d = (unsigned)(p->val[i] - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    m->size = v;
    m->has_size = 1;
    return SMTP_OK;
}

/* ENVID: xtext decoding to printable US-ASCII of at most 100 characters. */
static int smtp_param_envid(const struct smtp_param *p, struct smtp_mail *m)
{
    int n;

    if (!p->val)
        return SMTP_E_SYNTAX;
    n = smtp_xtext_decode(p->val, p->vlen, m->envid, sizeof(m->envid));
    if (n <= 0)
        return SMTP_E_SYNTAX;
    for (int i = 0; i < n; i++)
        if ((unsigned char)m->envid[i] < 32 || (unsigned char)m->envid[i] > 126)
            return SMTP_E_SYNTAX;
    m->has_envid = 1;
    return SMTP_OK;
}

/* Bits of the MAIL parameters already seen, to refuse duplicates. */
enum { MP_SIZE = 1, MP_BODY = 2, MP_UTF8 = 4, MP_RET = 8, MP_ENVID = 16, MP_AUTH = 32 };

struct smtp_mail_ctx {
    struct smtp_mail *m;
    unsigned seen;
};

static int smtp_mail_param_kind(const struct smtp_param *p)
{
    if (smtp_key_is(p, "SIZE"))
        return MP_SIZE;
    if (smtp_key_is(p, "BODY"))
        return MP_BODY;
    if (smtp_key_is(p, "SMTPUTF8"))
        return MP_UTF8;
    if (smtp_key_is(p, "RET"))
        return MP_RET;
    if (smtp_key_is(p, "ENVID"))
        return MP_ENVID;
    if (smtp_key_is(p, "AUTH"))
        return MP_AUTH;
    return 0;
}

static int smtp_mail_param(const struct smtp_param *p, void *vctx, char *err, size_t errlen)
{
    struct smtp_mail_ctx *ctx = vctx;
    struct smtp_mail *m = ctx->m;
    int kind = smtp_mail_param_kind(p), rc = SMTP_OK;
    char tmp[SMTP_PATH_MAX + 1];

    if (!kind) {
        smtp_set_err(err, errlen, "Unsupported parameter");
        return SMTP_E_PARAM;
    }
    if (ctx->seen & (unsigned)kind) {
        smtp_set_err(err, errlen, "Duplicate parameter");
        return SMTP_E_DUP;
    }
    ctx->seen |= (unsigned)kind;
    switch (kind) {
    case MP_SIZE:
        rc = smtp_param_size(p, m);
        break;
    case MP_BODY:
        if (smtp_val_is(p, "7BIT"))
            m->body = SMTP_BODY_7BIT;
        else if (smtp_val_is(p, "8BITMIME"))
            m->body = SMTP_BODY_8BITMIME;
        else
            rc = smtp_val_is(p, "BINARYMIME") ? SMTP_E_PARAM : SMTP_E_SYNTAX;
        break;
    case MP_UTF8:
        m->smtputf8 = 1;
        rc = p->val ? SMTP_E_SYNTAX : SMTP_OK;
        break;
    case MP_RET:
        if (smtp_val_is(p, "FULL"))
            m->ret = SMTP_RET_FULL;
        else if (smtp_val_is(p, "HDRS"))
            m->ret = SMTP_RET_HDRS;
        else
            rc = SMTP_E_SYNTAX;
        break;
    case MP_ENVID:
        rc = smtp_param_envid(p, m);
        break;
    case MP_AUTH: /* RFC 4954 §5: we never trust it, but it must be well-formed */
        if (!p->val ||
            (!smtp_val_is(p, "<>") && smtp_xtext_decode(p->val, p->vlen, tmp, sizeof(tmp)) <= 0))
            rc = SMTP_E_SYNTAX;
        m->has_auth = 1;
        break;
    }
    if (rc != SMTP_OK)
        smtp_set_err(err, errlen,
                     rc == SMTP_E_PARAM ? "Unsupported parameter value"
                                        : "Invalid parameter value");
    return rc;
}

/* Common part of MAIL and RCPT: "FROM:" / "TO:", optional blanks, the path, then either
 * the end or a space and parameters. Returns the parameter text via *params. */
static int smtp_parse_envelope(const char *args, const char *prefix, int allow_utf8, int allow_null,
                               int allow_postmaster, struct smtp_addr *a, const char **params,
                               char *err, size_t errlen)
{
    size_t plen = strlen(prefix), used = 0, len;
    int rc;

    if (strncasecmp(args, prefix, plen) != 0) {
        smtp_set_err(err, errlen, "Syntax: expected <address>");
        return SMTP_E_SYNTAX;
    }
    args += plen;
    while (*args == ' ')
        args++;
    len = strcspn(args, " ");
    /* A quoted local part may hold spaces: let the path scanner find its own end. */
    if (args[0] == '<' && args[1] == '"')
        len = strlen(args);
    rc = smtp_parse_path(args, len, allow_utf8, allow_null, allow_postmaster, a, &used);
    if (rc != SMTP_OK) {
        smtp_set_err(err, errlen,
                     rc == SMTP_E_UTF8      ? "Non-ASCII address needs SMTPUTF8"
                     : rc == SMTP_E_TOOLONG ? "Address too long"
                                            : "Syntax error in address");
        return rc;
    }
    if (args[used] && args[used] != ' ') {
        smtp_set_err(err, errlen, "Syntax error after address");
        return SMTP_E_SYNTAX;
    }
    *params = args + used;
    return SMTP_OK;
}

int smtp_parse_mail(const char *args, struct smtp_mail *out, char *err, size_t errlen)
{
    struct smtp_mail_ctx ctx = {.m = out};
    const char *params = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    /* UTF-8 is admitted here and checked against SMTPUTF8 once the parameters are known. */
    rc = smtp_parse_envelope(args, "FROM:", 1, 1, 0, &out->from, &params, err, errlen);
    if (rc == SMTP_OK)
        rc = smtp_each_param(params, 0, smtp_mail_param, &ctx, err, errlen);
    if (rc == SMTP_OK && out->from.utf8 && !out->smtputf8) {
        smtp_set_err(err, errlen, "Non-ASCII address needs SMTPUTF8");
        rc = SMTP_E_UTF8;
    }
    if (rc != SMTP_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* NOTIFY = "NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ) (RFC 3461 §4.1). */
static int smtp_param_notify(const struct smtp_param *p, unsigned *notify)
{
    size_t i = 0;

    if (!p->val)
        return SMTP_E_SYNTAX;
    while (i < p->vlen) {
        size_t n = 0;
        unsigned bit;
        while (i + n < p->vlen && p->val[i + n] != ',')
            n++;
        if (n == 5 && strncasecmp(p->val + i, "NEVER", 5) == 0)
            bit = SMTP_NOTIFY_NEVER;
        else if (n == 7 && strncasecmp(p->val + i, "SUCCESS", 7) == 0)
            bit = SMTP_NOTIFY_SUCCESS;
        else if (n == 7 && strncasecmp(p->val + i, "FAILURE", 7) == 0)
            bit = SMTP_NOTIFY_FAILURE;
        else if (n == 5 && strncasecmp(p->val + i, "DELAY", 5) == 0)
            bit = SMTP_NOTIFY_DELAY;
        else
            return SMTP_E_SYNTAX;
        if (*notify & bit)
            return SMTP_E_SYNTAX;
        *notify |= bit;
        i += n;
        if (i < p->vlen && ++i == p->vlen) /* a trailing comma */
            return SMTP_E_SYNTAX;
    }
    if ((*notify & SMTP_NOTIFY_NEVER) && *notify != SMTP_NOTIFY_NEVER)
        return SMTP_E_SYNTAX;
    return SMTP_OK;
}

/* ORCPT = addr-type ";" xtext (RFC 3461 §4.2); addr-type is an atom. */
static int smtp_param_orcpt(const struct smtp_param *p, struct smtp_rcpt *r)
{
    const char *semi = p->val ? memchr(p->val, ';', p->vlen) : NULL;
    size_t tlen;

    if (!semi)
        return SMTP_E_SYNTAX;
    tlen = (size_t)(semi - p->val);
    if (tlen == 0 || tlen >= sizeof(r->orcpt_type))
        return SMTP_E_SYNTAX;
    for (size_t i = 0; i < tlen; i++)
        if (!smtp_is_atext((unsigned char)p->val[i]))
            return SMTP_E_SYNTAX;
    memcpy(r->orcpt_type, p->val, tlen);
    r->orcpt_type[tlen] = '\0';
    if (p->vlen - tlen - 1 > SMTP_ORCPT_MAX)
        return SMTP_E_TOOLONG;
    int n = smtp_xtext_decode(semi + 1, p->vlen - tlen - 1, r->orcpt, sizeof(r->orcpt));
    if (n <= 0) {
        /* RFC 6533 utf-8-addr-unitext carries raw UTF-8, which xtext does not admit. */
        size_t raw = p->vlen - tlen - 1;
        if (strcasecmp(r->orcpt_type, "utf-8") != 0 || raw == 0 || raw >= sizeof(r->orcpt))
            return SMTP_E_SYNTAX;
        memcpy(r->orcpt, semi + 1, raw);
        r->orcpt[raw] = '\0';
        n = (int)raw;
    }
    for (int i = 0; i < n; i++) /* decoded controls (NUL, CR, LF) have no place in it */
        if ((unsigned char)r->orcpt[i] < 32 || r->orcpt[i] == 127)
            return SMTP_E_SYNTAX;
    r->has_orcpt = 1;
    return SMTP_OK;
}

struct smtp_rcpt_ctx {
    struct smtp_rcpt *r;
    unsigned seen;
};

static int smtp_rcpt_param(const struct smtp_param *p, void *vctx, char *err, size_t errlen)
{
    struct smtp_rcpt_ctx *ctx = vctx;
    unsigned kind = smtp_key_is(p, "NOTIFY") ? 1u : smtp_key_is(p, "ORCPT") ? 2u : 0u;
    int rc;

    if (!kind) {
        smtp_set_err(err, errlen, "Unsupported parameter");
        return SMTP_E_PARAM;
    }
    if (ctx->seen & kind) {
        smtp_set_err(err, errlen, "Duplicate parameter");
        return SMTP_E_DUP;
    }
    ctx->seen |= kind;
    rc = kind == 1 ? smtp_param_notify(p, &ctx->r->notify) : smtp_param_orcpt(p, ctx->r);
    if (rc != SMTP_OK)
        smtp_set_err(err, errlen, "Invalid parameter value");
    return rc;
}

int smtp_parse_rcpt(const char *args, int smtputf8, struct smtp_rcpt *out, char *err, size_t errlen)
{
    struct smtp_rcpt_ctx ctx = {.r = out};
    const char *params = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = smtp_parse_envelope(args, "TO:", smtputf8, 0, 1, &out->to, &params, err, errlen);
    if (rc == SMTP_OK)
        rc = smtp_each_param(params, smtputf8, smtp_rcpt_param, &ctx, err, errlen);
    if (rc != SMTP_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

int smtp_parse_bdat(const char *args, uint64_t *size, int *last)
{
    uint64_t v = 0;
    size_t i = 0;

    *size = 0;
    *last = 0;
    while (args[i] >= '0' && args[i] <= '9') {
        unsigned d = (unsigned)(args[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return SMTP_E_TOOLONG;
        v = v * 10 + d;
        i++;
    }
    if (i == 0)
        return SMTP_E_SYNTAX;
    while (args[i] == ' ')
        i++;
    if (args[i]) {
        if (strcasecmp(args + i, "LAST") != 0)
            return SMTP_E_SYNTAX;
        *last = 1;
    }
    *size = v;
    return SMTP_OK;
}

/* ---- message content ------------------------------------------------------------------ */

enum { D_BOL = 0, D_DOT, D_DOT_CR, D_MID, D_CR };

void smtp_buf_free(struct smtp_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void smtp_data_init(struct smtp_data *d, int raw, size_t max_size, size_t max_line,
                    size_t max_header)
{
    memset(d, 0, sizeof(*d));
    d->raw = raw;
    d->state = D_BOL;
    d->crlf_bol = 1;
    d->in_header = 1;
    d->line_first = -1;
    d->max_size = max_size;
    d->max_line = max_line;
    d->max_header = max_header;
}

int smtp_data_failed(const struct smtp_data *d)
{
    return d->over_size || d->over_line || d->over_header || d->nomem;
}

/* Keeps n decoded bytes, unless a limit was hit: then they are only counted. */
static void smtp_data_put(struct smtp_data *d, struct smtp_buf *b, const char *p, size_t n)
{
    d->total += n;
    if (d->total > d->max_size)
        d->over_size = 1;
    if (smtp_data_failed(d))
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n)
            cap *= 2;
        char *grown = realloc(b->p, b->reserve + cap);
        if (!grown) {
            d->nomem = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->reserve + b->len, p, n);
    b->len += n;
}

/* Bytes of a line's content (no CR or LF among them). */
static void smtp_data_text(struct smtp_data *d, struct smtp_buf *b, const char *p, size_t n)
{
    if (!n)
        return;
    if (d->line_first < 0)
        d->line_first = (unsigned char)p[0];
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == ':')
            d->line_colon = 1;
        else if (!c)
            d->has_nul = 1;
        else if (c >= 0x80)
            d->has_8bit = 1;
    }
    d->line_len += n;
    if (d->line_len > d->max_line)
        d->over_line = 1;
    smtp_data_put(d, b, p, n);
}

/* A line ends (CRLF, or a bare CR or LF, which is written as CRLF). The header section
 * ends at the empty line, or at a line that cannot be a header field. */
static void smtp_data_eol(struct smtp_data *d, struct smtp_buf *b, int crlf)
{
    if (d->in_header) {
        int field = d->line_colon || d->line_first == ' ' || d->line_first == '\t';
        if (d->line_len == 0 || !field) {
            d->in_header = 0;
        } else {
            d->header_len += d->line_len + 2;
            if (d->header_len > d->max_header)
                d->over_header = 1;
        }
    }
    smtp_data_put(d, b, "\r\n", 2);
    d->line_len = 0;
    d->line_first = -1;
    d->line_colon = 0;
    d->crlf_bol = crlf;
    d->state = D_BOL;
}

size_t smtp_data_feed(struct smtp_data *d, struct smtp_buf *out, const char *in, size_t len)
{
    size_t i = 0;

    while (i < len && !d->done) {
        char c = in[i];
        switch (d->state) {
        case D_BOL:
            d->state = D_MID;
            if (!d->raw && d->crlf_bol && c == '.') {
                d->state = D_DOT;
                i++;
            }
            break;
        case D_DOT:
            if (c == '\r') {
                d->state = D_DOT_CR;
                i++;
            } else {
                /* A dot before more text was stuffed; one before a bare LF is content. */
                if (c == '\n')
                    smtp_data_text(d, out, ".", 1);
                d->state = D_MID;
            }
            break;
        case D_DOT_CR:
            if (c == '\n') {
                d->done = 1; /* <CRLF>.<CRLF> */
                i++;
            } else {
                smtp_data_text(d, out, ".", 1);
                smtp_data_eol(d, out, 0); /* the CR was a bare one */
            }
            break;
        case D_CR:
            if (c == '\n')
                i++;
            smtp_data_eol(d, out, c == '\n');
            break;
        default: /* D_MID */
            if (c == '\r') {
                d->state = D_CR;
                i++;
            } else if (c == '\n') {
                smtp_data_eol(d, out, 0);
                i++;
            } else {
                size_t j = i;
                while (j < len && in[j] != '\r' && in[j] != '\n')
                    j++;
                smtp_data_text(d, out, in + i, j - i);
                i = j;
            }
            break;
        }
    }
    return i;
}

void smtp_data_finish(struct smtp_data *d, struct smtp_buf *out)
{
    if (d->state == D_CR)
        smtp_data_eol(d, out, 0);
}
