/*
 * imap_utf7.c — modified UTF-7 mailbox names (RFC 3501 §5.1.3) to and from UTF-8, and UTF-8
 * validation.
 *
 * Decoding is strict, because two spellings of one name would let a client create what
 * looks like a duplicate folder, and a lenient decoder is an injection path for control
 * characters: printable ASCII must appear directly (never base64-encoded), "&" only as
 * "&-", a shifted run must be non-empty, end with "-", hold whole UTF-16 units with zero
 * padding bits, pair its surrogates, and not follow another run directly. Encoding always produces
 * that canonical form, so decode(encode(x)) == x and encode(decode(y)) == y for every accepted y.
 */
#include <string.h>

#include "mail/imap_parse.h"

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

struct out {
    char *buf;
    size_t size, pos;
    bool full;
};

static void put_byte(struct out *o, char c)
{
    /* One byte is always kept back for the NUL. */
    if (o->pos + 1 >= o->size) {
        o->full = true;
        return;
    }
    o->buf[o->pos++] = c;
}

static int finish(struct out *o, char *err, size_t errlen)
{
    if (o->full || o->size == 0) {
        imap_seterr(err, errlen, "Mailbox name too long");
        return -1;
    }
    o->buf[o->pos] = 0;
    return (int)o->pos;
}

static int b64val(unsigned char c)
{
    const char *p;

    if (c == 0)
        return -1;
    p = strchr(b64chars, c);
    return p ? (int)(p - b64chars) : -1;
}

static void put_utf8(struct out *o, uint32_t cp)
{
    if (cp < 0x80) {
        put_byte(o, (char)cp);
    } else if (cp < 0x800) {
        put_byte(o, (char)(0xc0 | cp >> 6));
        put_byte(o, (char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        put_byte(o, (char)(0xe0 | cp >> 12));
        put_byte(o, (char)(0x80 | ((cp >> 6) & 0x3f)));
        put_byte(o, (char)(0x80 | (cp & 0x3f)));
    } else {
        put_byte(o, (char)(0xf0 | cp >> 18));
        put_byte(o, (char)(0x80 | ((cp >> 12) & 0x3f)));
        put_byte(o, (char)(0x80 | ((cp >> 6) & 0x3f)));
        put_byte(o, (char)(0x80 | (cp & 0x3f)));
    }
}

/* One UTF-16 unit of a shifted run; *high holds a pending high surrogate. */
static int take_unit(struct out *o, uint32_t u, uint32_t *high)
{
    if (*high) {
        if (u < 0xdc00 || u > 0xdfff)
            return -1;
        put_utf8(o, 0x10000 + ((*high - 0xd800) << 10) + (u - 0xdc00));
        *high = 0;
        return 0;
    }
    if (u >= 0xd800 && u <= 0xdbff) {
        *high = u;
        return 0;
    }
    /* Lone low surrogates, NUL and printable ASCII (which must be sent directly). */
    if ((u >= 0xdc00 && u <= 0xdfff) || u == 0 || (u >= 0x20 && u <= 0x7e))
        return -1;
    put_utf8(o, u);
    return 0;
}

/* The run after "&" up to and including "-"; *ip advances past it. */
static int decode_run(const char *in, size_t len, size_t *ip, struct out *o)
{
    uint32_t bits = 0, high = 0;
    unsigned nbits = 0, units = 0;
    size_t i = *ip;

    for (; i < len && in[i] != '-'; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            return -1;
        bits = ((bits << 6) | (uint32_t)v) & 0x3fffff; /* at most 16+6 bits are live */
        nbits += 6;
        if (nbits >= 16) {
            nbits -= 16;
            if (take_unit(o, (bits >> nbits) & 0xffff, &high) < 0)
                return -1;
            units++;
        }
    }
    /* Unterminated, empty, a whole spare base64 char, non-zero padding, lone surrogate. */
    if (i >= len || units == 0 || nbits >= 6 || (bits & ((1u << nbits) - 1)) || high)
        return -1;
    *ip = i + 1;
    return 0;
}

int imap_utf7_to_utf8(const char *in, size_t len, char *out, size_t outsize, char *err,
                      size_t errlen)
{
    struct out o = {out, outsize, 0, false};
    size_t i = 0;
    bool after_run = false;

    while (i < len) {
        unsigned char c = (unsigned char)in[i++];
        bool run = c == '&' && !(i < len && in[i] == '-');
        /* Two runs back to back ("&AOk-&AOk-") are one run spelled twice. */
        if (run && after_run) {
            imap_seterr(err, errlen, "Invalid modified UTF-7 in mailbox name (split run)");
            return -1;
        }
        after_run = run;
        if (c < 0x20 || c > 0x7e) {
            imap_seterr(err, errlen, "Invalid character in mailbox name (not modified UTF-7)");
            return -1;
        }
        if (c != '&') {
            put_byte(&o, (char)c);
        } else if (i < len && in[i] == '-') {
            put_byte(&o, '&');
            i++;
        } else if (decode_run(in, len, &i, &o) < 0) {
            imap_seterr(err, errlen, "Invalid modified UTF-7 in mailbox name");
            return -1;
        }
    }
    return finish(&o, err, errlen);
}

/* Next code point of well-formed UTF-8 at s[*i..len); -1 if malformed. */
static int32_t utf8_next(const unsigned char *s, size_t len, size_t *i)
{
    unsigned char c = s[*i];
    uint32_t cp, min;
    size_t n;

    if (c < 0x80) {
        (*i)++;
        return c;
    }
    if (c >= 0xc2 && c <= 0xdf)
        n = 1, cp = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        n = 2, cp = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 3, cp = c & 0x07, min = 0x10000;
    else
        return -1;
    if (len - *i <= n)
        return -1;
    for (size_t k = 1; k <= n; k++) {
        if ((s[*i + k] & 0xc0) != 0x80)
            return -1;
        cp = cp << 6 | (s[*i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *i += n + 1;
    return (int32_t)cp;
}

bool imap_utf8_valid(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len)
        if (utf8_next((const unsigned char *)s, len, &i) < 0)
            return false;
    return true;
}

struct b64enc {
    uint32_t bits;
    unsigned nbits;
    bool open;
};

static void enc_unit(struct out *o, struct b64enc *e, uint32_t u)
{
    if (!e->open) {
        put_byte(o, '&');
        e->open = true;
    }
    e->bits = ((e->bits << 16) | u) & 0x3fffff;
    e->nbits += 16;
    while (e->nbits >= 6) {
        e->nbits -= 6;
        put_byte(o, b64chars[(e->bits >> e->nbits) & 0x3f]);
    }
}

static void enc_close(struct out *o, struct b64enc *e)
{
    if (!e->open)
        return;
    if (e->nbits)
        put_byte(o, b64chars[(e->bits << (6 - e->nbits)) & 0x3f]);
    put_byte(o, '-');
    memset(e, 0, sizeof(*e));
}

int imap_utf8_to_utf7(const char *in, size_t len, char *out, size_t outsize, char *err,
                      size_t errlen)
{
    struct out o = {out, outsize, 0, false};
    struct b64enc e = {0, 0, false};
    size_t i = 0;

    while (i < len) {
        int32_t cp = utf8_next((const unsigned char *)in, len, &i);
        if (cp <= 0) {
            imap_seterr(err, errlen,
                        cp ? "Mailbox name is not valid UTF-8" : "NUL in mailbox name");
            return -1;
        }
        if (cp >= 0x20 && cp <= 0x7e) {
            enc_close(&o, &e);
            put_byte(&o, (char)cp);
            if (cp == '&')
                put_byte(&o, '-');
        } else if (cp >= 0x10000) {
            enc_unit(&o, &e, 0xd800 + (((uint32_t)cp - 0x10000) >> 10));
            enc_unit(&o, &e, 0xdc00 + (((uint32_t)cp - 0x10000) & 0x3ff));
        } else {
            enc_unit(&o, &e, (uint32_t)cp);
        }
    }
    enc_close(&o, &e);
    return finish(&o, err, errlen);
}
