/*
 * mime_header.c — header fields of untrusted messages: finding the header block, iterating
 * and looking up fields, unfolding, RFC 2047 encoded-word decoding to UTF-8 (charsets via
 * glibc iconv; unknown charsets keep their bytes), Content-Type/Disposition parameters with
 * RFC 2231 continuations and charsets, and RFC 5322 dates including the obsolete forms that
 * real clients still send.
 */
#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/mime.h"
#include "server/server.h"

static int is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* Length of a line break at s (CRLF or LF), 0 if none. */
static size_t eol_at(const char *s, const char *end)
{
    if (s < end && *s == '\n')
        return 1;
    if (end - s >= 2 && s[0] == '\r' && s[1] == '\n')
        return 2;
    return 0;
}

/* RFC 5322 ftext: printable ASCII except ':'. */
static int is_ftext(unsigned char c)
{
    return c >= 33 && c <= 126 && c != ':';
}

/* Does the line at s look like "name:"? (obs-optional: white space before ':' allowed) */
static int looks_like_field(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && is_ftext((unsigned char)s[i]))
        i++;
    if (i == 0)
        return 0;
    while (i < len && is_wsp(s[i]))
        i++;
    return i < len && s[i] == ':';
}

size_t mime_header_size(const char *msg, size_t len)
{
    const char *p = msg, *end = msg + len;
    size_t el = eol_at(p, end);
    if (len == 0)
        return 0;
    if (el)
        return el; /* empty header: just the separating line */
    if (!looks_like_field(msg, len))
        return 0; /* no header at all: everything is body */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return len;
        p = nl + 1;
        el = eol_at(p, end);
        if (el)
            return (size_t)(p + el - msg);
    }
    return len;
}

int mime_header_next(const char *hdr, size_t len, size_t *pos, struct mime_field *f)
{
    const char *end = hdr + len;
    while (*pos < len) {
        const char *line = hdr + *pos;
        if (eol_at(line, end))
            break; /* the empty line: end of the header */
        /* The field runs on while the next line starts with white space. */
        const char *p = line, *fend = end, *next = end;
        for (;;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl)
                break;
            if (nl + 1 < end && is_wsp(nl[1])) {
                p = nl + 1;
                continue;
            }
            fend = (nl > line && nl[-1] == '\r') ? nl - 1 : nl;
            next = nl + 1;
            break;
        }
        *pos = (size_t)(next - hdr);
        if (is_wsp(line[0]))
            continue; /* a continuation with no field before it */
        size_t n = 0;
        while (line + n < fend && is_ftext((unsigned char)line[n]))
            n++;
        const char *q = line + n;
        while (q < fend && is_wsp(*q))
            q++;
        if (n == 0 || q >= fend || *q != ':')
            continue; /* not a field */
        f->name = line;
        f->name_len = n;
        f->value = q + 1;
        f->value_len = (size_t)(fend - (q + 1));
        return 1;
    }
    *pos = len;
    return 0;
}

int mime_header_get(const char *hdr, size_t len, const char *name, struct mime_field *f)
{
    size_t pos = 0, nl = strlen(name);
    if (len > MIME_MAX_HEADER)
        len = MIME_MAX_HEADER;
    while (mime_header_next(hdr, len, &pos, f)) {
        if (f->name_len == nl && strncasecmp(f->name, name, nl) == 0)
            return 1;
    }
    return 0;
}

char *mime_unfold(struct mime_arena *a, const char *v, size_t len)
{
    char *out = mime_arena_alloc(a, len + 1);
    size_t n = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        /* Folding is removing the line breaks; NUL cannot travel in IMAP strings. */
        if (v[i] == '\n' || v[i] == '\0' || (v[i] == '\r' && i + 1 < len && v[i + 1] == '\n'))
            continue;
        out[n++] = v[i];
    }
    size_t s = 0;
    while (s < n && (is_wsp(out[s]) || out[s] == '\r'))
        s++;
    while (n > s && (is_wsp(out[n - 1]) || out[n - 1] == '\r'))
        n--;
    memmove(out, out + s, n - s);
    out[n - s] = '\0';
    return out;
}

/* ---- charsets ----------------------------------------------------------------------- */

static int is_charset_char(unsigned char c)
{
    /* Letters, digits and the punctuation real charset names use; nothing that iconv
     * would read as a path or as //TRANSLIT-style options. */
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':' || c == '+' || c == '(' ||
           c == ')';
}

static int charset_is_utf8(const char *cs)
{
    return !strcasecmp(cs, "utf-8") || !strcasecmp(cs, "utf8") || !strcasecmp(cs, "us-ascii") ||
           !strcasecmp(cs, "ascii") || cs[0] == '\0';
}

static void add_replacement(struct buf *out)
{
    buf_put(out, "\xef\xbf\xbd", 3); /* U+FFFD */
}

void mime_charset_to_utf8(const char *charset, const char *s, size_t len, struct buf *out)
{
    size_t cl = charset ? strlen(charset) : 0;
    int ok = cl > 0 && cl <= 64;
    for (size_t i = 0; ok && i < cl; i++)
        ok = is_charset_char((unsigned char)charset[i]);
    if (!ok || charset_is_utf8(charset)) {
        buf_put(out, s, len);
        return;
    }
    iconv_t cd = iconv_open("UTF-8", charset);
    if (cd == (iconv_t)-1) {
        buf_put(out, s, len); /* unknown charset: keep the bytes */
        return;
    }
    char tmp[1024];
    char *in = (char *)s;
    size_t inleft = len;
    while (inleft > 0) {
        char *o = tmp;
        size_t oleft = sizeof(tmp);
        size_t r = iconv(cd, &in, &inleft, &o, &oleft);
        buf_put(out, tmp, (size_t)(o - tmp));
        if (r != (size_t)-1)
            break;
        if (errno == E2BIG)
            continue;
        /* EILSEQ or a truncated sequence: mark it and move on one byte. */
        add_replacement(out);
        in++;
        inleft--;
    }
    char *o = tmp;
    size_t oleft = sizeof(tmp);
    if (iconv(cd, NULL, NULL, &o, &oleft) != (size_t)-1)
        buf_put(out, tmp, (size_t)(o - tmp));
    iconv_close(cd);
}

/* Length of a valid UTF-8 sequence at s, 0 if there is none. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* No overlong forms, no surrogates, nothing past U+10FFFF. */
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void mime_utf8_clean(const char *s, size_t len, struct buf *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq(u + i, len - i);
        if (n == 1) {
            if (u[i] == 0)
                ;
            else if (u[i] < 0x20)
                buf_putc(out, ' ');
            else
                buf_putc(out, (char)u[i]);
        } else if (n > 1) {
            buf_put(out, s + i, n);
        } else {
            /* Raw 8-bit that is not UTF-8: Latin-1 is the usual intent. */
            char two[2] = {(char)(0xc0 | (u[i] >> 6)), (char)(0x80 | (u[i] & 0x3f))};
            buf_put(out, two, 2);
            n = 1;
        }
        i += n;
    }
    if (!out->p)
        buf_put(out, "", 0);
}

/* ---- RFC 2047 encoded words --------------------------------------------------------- */

struct ew {
    char charset[65];
    char enc;
    const char *text;
    size_t text_len;
    size_t end; /* index after "?=" */
};

/* Parses an encoded word starting at v[i] ("=?"). Returns 1 when well-formed. */
static int parse_ew(const char *v, size_t len, size_t i, struct ew *ew)
{
    if (i + 1 >= len || v[i] != '=' || v[i + 1] != '?')
        return 0;
    size_t j = i + 2, cs = j;
    while (j < len && v[j] != '?' && j - cs < 64 && v[j] > ' ' && (unsigned char)v[j] < 127)
        j++;
    if (j >= len || v[j] != '?' || j == cs)
        return 0;
    size_t cl = j - cs;
    memcpy(ew->charset, v + cs, cl);
    ew->charset[cl] = '\0';
    char *star = strchr(ew->charset, '*'); /* RFC 2231 language suffix */
    if (star)
        *star = '\0';
    j++;
    if (j + 1 >= len || v[j + 1] != '?')
        return 0;
    ew->enc = (char)toupper((unsigned char)v[j]);
    if (ew->enc != 'B' && ew->enc != 'Q')
        return 0;
    j += 2;
    size_t t = j;
    while (j < len && v[j] != '?' && (unsigned char)v[j] > ' ' && (unsigned char)v[j] != 127)
        j++;
    if (j + 1 >= len || v[j] != '?' || v[j + 1] != '=')
        return 0;
    ew->text = v + t;
    ew->text_len = j - t;
    ew->end = j + 2;
    return 1;
}

static int hexv(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the text of an encoded word into raw charset bytes. -1 if it is not valid. */
static int ew_decode(const struct ew *ew, struct buf *out)
{
    const char *s = ew->text;
    size_t n = ew->text_len;
    if (ew->enc == 'B') {
        /* Padding optional, nothing outside the alphabet: a broken word stays as written. */
        unsigned char *raw = malloc(n / 4 * 3 + 3);
        ssize_t m = raw ? b64_decode(s, n, raw, n / 4 * 3 + 3, B64_PAD_OPTIONAL) : -1;
        if (m > 0)
            buf_put(out, raw, (size_t)m);
        free(raw);
        return m < 0 ? -1 : 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_') {
            buf_putc(out, ' ');
        } else if (s[i] == '=' && i + 2 < n && hexv((unsigned char)s[i + 1]) >= 0 &&
                   hexv((unsigned char)s[i + 2]) >= 0) {
            buf_putc(out,
                     (char)(hexv((unsigned char)s[i + 1]) * 16 + hexv((unsigned char)s[i + 2])));
            i += 2;
        } else {
            buf_putc(out, s[i]);
        }
    }
    return 0;
}

struct ew_run {
    struct buf bytes; /* raw bytes of adjacent encoded words in one charset */
    char charset[65];
    int open;
};

static void run_flush(struct ew_run *r, struct buf *out)
{
    if (r->open)
        mime_charset_to_utf8(r->charset, r->bytes.p ? r->bytes.p : "", r->bytes.len, out);
    if (r->bytes.oom)
        out->oom = 1;
    r->bytes.len = 0;
    r->open = 0;
}

void mime_header_decode(const char *v, size_t len, struct buf *out)
{
    struct ew_run run = {0};
    struct buf tmp = {0};
    size_t i = 0, ws = 0; /* ws: start of pending white space */
    int last_ew = 0;
    while (i < len) {
        char c = v[i];
        if (is_wsp(c) || c == '\r' || c == '\n') {
            size_t j = i;
            while (j < len && (is_wsp(v[j]) || v[j] == '\r' || v[j] == '\n'))
                j++;
            ws = i;
            i = j;
            if (i < len)
                continue;
            /* trailing white space */
            run_flush(&run, out);
            buf_put(out, v + ws, i - ws);
            break;
        }
        struct ew ew;
        if (c == '=' && parse_ew(v, len, i, &ew)) {
            tmp.len = 0;
            if (ew_decode(&ew, &tmp) == 0) {
                /* White space between two encoded words is not part of the text. */
                if (!last_ew || strcasecmp(run.charset, ew.charset) != 0)
                    run_flush(&run, out);
                if (!last_ew)
                    buf_put(out, v + ws, i - ws);
                if (!run.open) {
                    memcpy(run.charset, ew.charset, sizeof(run.charset));
                    run.open = 1;
                }
                buf_put(&run.bytes, tmp.p ? tmp.p : "", tmp.len);
                last_ew = 1;
                i = ws = ew.end;
                continue;
            }
        }
        run_flush(&run, out);
        buf_put(out, v + ws, i - ws);
        /* Copy plain text up to the next white space or possible encoded word. */
        size_t j = i + 1;
        while (j < len && !is_wsp(v[j]) && v[j] != '\r' && v[j] != '\n' && v[j] != '=')
            j++;
        buf_put(out, v + i, j - i);
        last_ew = 0;
        i = ws = j;
    }
    run_flush(&run, out);
    if (tmp.oom)
        out->oom = 1;
    buf_free(&tmp);
    buf_free(&run.bytes);
    if (!out->p)
        buf_put(out, "", 0);
}

/* ---- Content-Type / Content-Disposition -------------------------------------------- */

/* Skips white space, line breaks and (nested) comments. */
static size_t skip_cfws(const char *v, size_t len, size_t i)
{
    while (i < len) {
        if (is_wsp(v[i]) || v[i] == '\r' || v[i] == '\n') {
            i++;
        } else if (v[i] == '(') {
            size_t depth = 0;
            for (; i < len; i++) {
                if (v[i] == '\\' && i + 1 < len)
                    i++;
                else if (v[i] == '(')
                    depth++;
                else if (v[i] == ')' && --depth == 0) {
                    i++;
                    break;
                }
            }
        } else {
            break;
        }
    }
    return i;
}

static int is_tspecial(char c)
{
    return strchr("()<>@,;:\\\"/[]?=", c) != NULL && c != '\0';
}

static size_t token_end(const char *v, size_t len, size_t i)
{
    while (i < len && (unsigned char)v[i] > ' ' && v[i] != 127 && !is_tspecial(v[i]))
        i++;
    return i;
}

static char *upper_dup(struct mime_arena *a, const char *s, size_t n)
{
    char *p = mime_arena_strndup(a, s, n);
    for (size_t i = 0; p && i < n; i++)
        p[i] = (char)toupper((unsigned char)p[i]);
    return p;
}

/* A quoted-string at v[i] ('"'): unescaped, folds removed. *i moves past it. */
static char *read_quoted(struct mime_arena *a, const char *v, size_t len, size_t *i)
{
    size_t j = *i + 1, n = 0;
    char *out = mime_arena_alloc(a, len - *i + 1);
    if (!out)
        return NULL;
    while (j < len && v[j] != '"') {
        if (v[j] == '\\' && j + 1 < len)
            j++;
        else if (v[j] == '\r' || v[j] == '\n' || v[j] == '\0') {
            j++;
            continue;
        }
        out[n++] = v[j++];
    }
    *i = j < len ? j + 1 : j;
    out[n] = '\0';
    return out;
}

struct raw_param {
    char *attr, *value;
};

/* Splits "NAME*3*" into base length, index (-1 for none) and the extended flag. */
static int param_split(const char *attr, size_t *base, long *index, int *ext)
{
    const char *star = strchr(attr, '*');
    *index = -1;
    *ext = 0;
    if (!star) {
        *base = strlen(attr);
        return 0;
    }
    *base = (size_t)(star - attr);
    const char *r = star + 1;
    if (*r == '\0') {
        *ext = 1;
        return 1;
    }
    long idx = 0;
    size_t nd = 0;
    while (isdigit((unsigned char)*r) && nd < 4) {
        idx = idx * 10 + (*r++ - '0');
        nd++;
    }
    if (nd == 0)
        return -1;
    if (*r == '*') {
        *ext = 1;
        r++;
    }
    if (*r != '\0')
        return -1;
    *index = idx;
    return 1;
}

static int is_attr_char(unsigned char c)
{
    return c > ' ' && c < 127 && !is_tspecial((char)c) && c != '*' && c != '\'' && c != '%';
}

/* Merges RFC 2231 continuations of base name raw[first].attr into one parameter. */
static int merge_continuations(struct mime_arena *a, struct raw_param *raw, size_t nraw,
                               size_t first, size_t blen, struct mime_param *out)
{
    struct seg {
        long index;
        int ext;
        const char *value;
    } segs[MIME_MAX_PARAMS];
    size_t ns = 0;
    int any_ext = 0;
    for (size_t i = first; i < nraw; i++) {
        size_t bl;
        long idx;
        int ext;
        if (param_split(raw[i].attr, &bl, &idx, &ext) != 1 || bl != blen ||
            strncmp(raw[i].attr, raw[first].attr, blen) != 0)
            continue;
        if (idx < 0)
            idx = 0; /* "name*" alone is a single extended segment */
        /* Insertion keeps segments sorted; a repeated index keeps the first. */
        size_t k = ns;
        while (k > 0 && segs[k - 1].index > idx)
            k--;
        if (k > 0 && segs[k - 1].index == idx)
            continue;
        memmove(segs + k + 1, segs + k, (ns - k) * sizeof(segs[0]));
        segs[k] = (struct seg){idx, ext, raw[i].value};
        ns++;
        any_ext |= ext;
    }
    struct buf v = {0};
    if (any_ext && !segs[0].ext)
        buf_put(&v, "''", 2); /* no charset given: an empty one */
    for (size_t k = 0; k < ns; k++) {
        const char *s = segs[k].value;
        if (!any_ext || segs[k].ext) {
            buf_puts(&v, s);
            continue;
        }
        for (; *s; s++) {
            if (is_attr_char((unsigned char)*s)) {
                buf_putc(&v, *s);
            } else {
                static const char hex[] = "0123456789ABCDEF";
                char e[3] = {'%', hex[(unsigned char)*s >> 4], hex[*s & 15]};
                buf_put(&v, e, 3);
            }
        }
    }
    out->attr = mime_arena_strndup(a, raw[first].attr, blen + (any_ext ? 1 : 0));
    if (out->attr && any_ext)
        out->attr[blen] = '*';
    out->value = mime_arena_strndup(a, v.p ? v.p : "", v.len);
    int rc = v.oom || !out->attr || !out->value ? -1 : 0;
    buf_free(&v);
    return rc;
}

static int merge_params(struct mime_arena *a, struct raw_param *raw, size_t nraw,
                        struct mime_param **params, size_t *nparams)
{
    struct mime_param *out = mime_arena_alloc(a, (nraw + 1) * sizeof(*out));
    size_t n = 0;
    if (!out)
        return -1;
    for (size_t i = 0; i < nraw; i++) {
        size_t bl;
        long idx;
        int ext;
        if (param_split(raw[i].attr, &bl, &idx, &ext) != 1) {
            out[n++] = (struct mime_param){raw[i].attr, raw[i].value};
            continue;
        }
        /* Only the first segment of a name emits the merged parameter. */
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++) {
            size_t bl2;
            long idx2;
            int ext2;
            seen = param_split(raw[k].attr, &bl2, &idx2, &ext2) == 1 && bl2 == bl &&
                   strncmp(raw[k].attr, raw[i].attr, bl) == 0;
        }
        if (seen)
            continue;
        if (merge_continuations(a, raw, nraw, i, bl, &out[n]) < 0)
            return -1;
        n++;
    }
    *params = out;
    *nparams = n;
    return 0;
}

int mime_parse_ctype(struct mime_arena *a, const char *v, size_t len, int ctype, char **type,
                     char **subtype, struct mime_param **params, size_t *nparams)
{
    struct raw_param *raw = NULL;
    size_t nraw = 0, i = skip_cfws(v, len, 0), t = i;
    *type = *subtype = NULL;
    *params = NULL;
    *nparams = 0;
    i = token_end(v, len, i);
    if (i == t)
        return 0;
    char *ty = upper_dup(a, v + t, i - t), *sub = NULL;
    if (ctype) {
        i = skip_cfws(v, len, i);
        if (i >= len || v[i] != '/')
            return 0;
        i = skip_cfws(v, len, i + 1);
        t = i;
        i = token_end(v, len, i);
        if (i == t)
            return 0;
        sub = upper_dup(a, v + t, i - t);
    }
    raw = mime_arena_alloc(a, MIME_MAX_PARAMS * sizeof(*raw));
    if (!raw)
        return -1;
    while ((i = skip_cfws(v, len, i)) < len) {
        if (v[i] == ';') {
            i++;
            continue;
        }
        t = i;
        i = token_end(v, len, i);
        size_t alen = i - t;
        i = skip_cfws(v, len, i);
        if (alen == 0 || i >= len || v[i] != '=') {
            /* Garbage: resynchronise at the next ';'. */
            while (i < len && v[i] != ';')
                i++;
            continue;
        }
        i = skip_cfws(v, len, i + 1);
        char *val;
        if (i < len && v[i] == '"') {
            val = read_quoted(a, v, len, &i);
        } else {
            /* Tolerant: unquoted values with tspecials (boundary=--=_x) are common. */
            size_t s = i;
            while (i < len && v[i] != ';' && !is_wsp(v[i]) && v[i] != '\r' && v[i] != '\n' &&
                   v[i] != '(' && v[i] != '"')
                i++;
            val = mime_arena_strndup(a, v + s, i - s);
        }
        if (nraw < MIME_MAX_PARAMS) {
            raw[nraw].attr = upper_dup(a, v + t, alen);
            raw[nraw].value = val;
            nraw++;
        }
    }
    if (a->oom || merge_params(a, raw, nraw, params, nparams) < 0)
        return -1;
    *type = ty;
    *subtype = sub;
    return 0;
}

const char *mime_param_get(const struct mime_param *p, size_t n, const char *attr)
{
    for (size_t i = 0; i < n; i++) {
        if (!strcasecmp(p[i].attr, attr))
            return p[i].value;
    }
    return NULL;
}

/* RFC 2231 extended value charset'lang'%XX.. to UTF-8. */
static void decode_2231(const char *v, struct buf *out)
{
    const char *q1 = strchr(v, '\''), *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
    char cs[65] = "";
    const char *s = v;
    if (q1 && q2) {
        size_t cl = (size_t)(q1 - v);
        if (cl < sizeof(cs)) {
            memcpy(cs, v, cl);
            cs[cl] = '\0';
        }
        s = q2 + 1;
    }
    struct buf raw = {0};
    for (; *s; s++) {
        if (*s == '%' && hexv((unsigned char)s[1]) >= 0 && hexv((unsigned char)s[2]) >= 0) {
            buf_putc(&raw, (char)(hexv((unsigned char)s[1]) * 16 + hexv((unsigned char)s[2])));
            s += 2;
        } else {
            buf_putc(&raw, *s);
        }
    }
    mime_charset_to_utf8(cs, raw.p ? raw.p : "", raw.len, out);
    if (raw.oom)
        out->oom = 1;
    buf_free(&raw);
}

char *mime_param_decoded(struct mime_arena *a, const struct mime_param *p, size_t n,
                         const char *name)
{
    size_t nl = strlen(name);
    const char *ext = NULL, *plain = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strncasecmp(p[i].attr, name, nl) != 0)
            continue;
        if (p[i].attr[nl] == '*' && p[i].attr[nl + 1] == '\0' && !ext)
            ext = p[i].value;
        else if (p[i].attr[nl] == '\0' && !plain)
            plain = p[i].value;
    }
    if (!ext && !plain)
        return NULL;
    struct buf b = {0};
    if (ext)
        decode_2231(ext, &b);
    else
        mime_header_decode(plain, strlen(plain), &b);
    char *r = b.oom ? NULL : mime_arena_strndup(a, b.p ? b.p : "", b.len);
    buf_free(&b);
    return r;
}

/* ---- dates -------------------------------------------------------------------------- */

enum dtok_kind { DT_NUM, DT_WORD, DT_ZONE, DT_SEP };

struct dtok {
    enum dtok_kind kind;
    long val;   /* number, or zone in minutes */
    int digits; /* DT_NUM */
    char w[16]; /* DT_WORD, lower case, first 15 letters */
};

#define DATE_MAX_TOKENS 32

static size_t date_tokenize(const char *s, size_t len, struct dtok *t)
{
    size_t n = 0, i = 0;
    while (i < len && n < DATE_MAX_TOKENS) {
        unsigned char c = (unsigned char)s[i];
        if (c == '(') {
            i = skip_cfws(s, len, i);
        } else if (isdigit(c)) {
            long v = 0;
            int d = 0;
            while (i < len && isdigit((unsigned char)s[i])) {
                if (d < 9)
                    v = v * 10 + (s[i] - '0');
                d++;
                i++;
            }
            t[n++] = (struct dtok){.kind = DT_NUM, .val = v, .digits = d};
        } else if ((c == '+' || c == '-') && i + 1 < len && isdigit((unsigned char)s[i + 1])) {
            /* +hhmm, also +hh:mm and +hh */
            int sign = c == '-' ? -1 : 1, d = 0;
            long v = 0;
            i++;
            while (i < len && d < 4 && (isdigit((unsigned char)s[i]) || (s[i] == ':' && d == 2))) {
                if (s[i] != ':') {
                    v = v * 10 + (s[i] - '0');
                    d++;
                }
                i++;
            }
            while (i < len && isdigit((unsigned char)s[i]))
                i++;
            long mins = d <= 2 ? v * 60 : (v / 100) * 60 + v % 100;
            if (mins <= 24 * 60 && (d <= 2 || v % 100 < 60))
                t[n++] = (struct dtok){.kind = DT_ZONE, .val = sign * mins};
        } else if (isalpha(c)) {
            struct dtok w = {.kind = DT_WORD};
            size_t k = 0;
            while (i < len && isalpha((unsigned char)s[i])) {
                if (k < sizeof(w.w) - 1)
                    w.w[k++] = (char)tolower((unsigned char)s[i]);
                i++;
            }
            t[n++] = w;
        } else if (c == ':' || c == '.') {
            t[n++] = (struct dtok){.kind = DT_SEP};
            i++;
        } else {
            i++;
        }
    }
    return n;
}

static int month_of(const char *w)
{
    static const char *const m[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                    "jul", "aug", "sep", "oct", "nov", "dec"};
    if (strlen(w) < 3)
        return -1;
    for (int i = 0; i < 12; i++) {
        if (!strncmp(w, m[i], 3))
            return i + 1;
    }
    return -1;
}

/* Named zones: RFC 5322 §4.3 (military letters mean -0000, as the RFC advises). */
static int zone_of(const char *w, int *tz)
{
    static const struct {
        const char *n;
        int m;
    } z[] = {{"ut", 0},        {"utc", 0},       {"gmt", 0},       {"z", 0},
             {"est", -5 * 60}, {"edt", -4 * 60}, {"cst", -6 * 60}, {"cdt", -5 * 60},
             {"mst", -7 * 60}, {"mdt", -6 * 60}, {"pst", -8 * 60}, {"pdt", -7 * 60},
             {"cet", 60},      {"cest", 120},    {"bst", 60},      {"met", 60}};
    for (size_t i = 0; i < sizeof(z) / sizeof(z[0]); i++) {
        if (!strcmp(w, z[i].n)) {
            *tz = z[i].m;
            return 1;
        }
    }
    if (strlen(w) == 1 && w[0] != 'j') {
        *tz = 0;
        return 1;
    }
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic, no libc). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int days_in_month(long y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

int mime_date_parse(const char *s, size_t len, int64_t *t, int *tz)
{
    struct dtok tok[DATE_MAX_TOKENS];
    size_t n = date_tokenize(s, len, tok);
    long day = -1, year = -1, hh = -1, mm = 0, ss = 0;
    int mon = -1, zone = 0, have_zone = 0, ydigits = 0;
    for (size_t i = 0; i < n; i++) {
        struct dtok *k = &tok[i];
        if (k->kind == DT_NUM && hh < 0 && i + 2 < n && tok[i + 1].kind == DT_SEP &&
            tok[i + 2].kind == DT_NUM && k->digits <= 2) {
            hh = k->val;
            mm = tok[i + 2].val;
            i += 2;
            if (i + 2 < n && tok[i + 1].kind == DT_SEP && tok[i + 2].kind == DT_NUM) {
                ss = tok[i + 2].val;
                i += 2;
            }
        } else if (k->kind == DT_NUM) {
            if (k->digits <= 2 && day < 0 && (mon < 0 || year < 0) && year < 0) {
                day = k->val;
            } else if (year < 0) {
                year = k->val;
                ydigits = k->digits;
            }
        } else if (k->kind == DT_WORD) {
            int mo = month_of(k->w), z;
            if (mo > 0 && mon < 0)
                mon = mo;
            else if (!have_zone && hh >= 0 && zone_of(k->w, &z)) {
                zone = z;
                have_zone = 1;
            }
        } else if (k->kind == DT_ZONE && !have_zone) {
            zone = (int)k->val;
            have_zone = 1;
        }
    }
    if (day < 1 || mon < 1 || year < 0)
        return -1;
    /* RFC 5322 §4.3: two-digit years are 19xx from 50, 20xx below; three digits add 1900. */
    if (ydigits <= 2)
        year += year < 50 ? 2000 : 1900;
    else if (ydigits == 3)
        year += 1900;
    if (year < 1 || year > 9999 || day > days_in_month(year, mon))
        return -1;
    if (hh < 0)
        hh = 0;
    if (hh > 23 || mm > 59 || ss > 60)
        return -1;
    if (ss == 60)
        ss = 59; /* a leap second cannot be a unix time */
    *t = days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 + hh * 3600 + mm * 60 + ss -
         (int64_t)zone * 60;
    *tz = zone;
    return 0;
}
