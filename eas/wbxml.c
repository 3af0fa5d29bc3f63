/*
 * wbxml.c — the ActiveSync WBXML codec: the document tree and its arena, the decoder for
 * request bodies (which come from the network and are hostile until proven otherwise),
 * the encoder for responses (also usable as a streaming writer), and an XML rendering
 * for logs, tests and `polaris wbxml decode`.
 *
 * What is accepted is deliberately narrow, the subset MS-ASWBXML uses: version 1.3,
 * public id 1 (or the "unknown" literal 0x01 in its multi-byte form), charset UTF-8
 * (106), an empty string table, SWITCH_PAGE, tags of the code pages 0–25 with or without
 * content, STR_I, OPAQUE and END. Attributes, entities, processing instructions,
 * extensions, string-table references and literals are refused, as are unknown pages or
 * tokens, invalid UTF-8 in strings, mixed content, trailing bytes and truncation.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eas/wbxml.h"
#include "server/server.h"

/* WBXML global tokens (WBXML 1.3 section 7.1). */
#define WB_SWITCH_PAGE 0x00
#define WB_END         0x01
#define WB_ENTITY      0x02
#define WB_STR_I       0x03
#define WB_LITERAL     0x04
#define WB_EXT_I_0     0x40
#define WB_EXT_I_2     0x42
#define WB_PI          0x43
#define WB_LITERAL_C   0x44
#define WB_EXT_T_0     0x80
#define WB_EXT_T_2     0x82
#define WB_STR_T       0x83
#define WB_LITERAL_A   0x84
#define WB_EXT_0       0xc0
#define WB_EXT_2       0xc2
#define WB_OPAQUE      0xc3
#define WB_LITERAL_AC  0xc4
#define WB_HAS_CONTENT 0x40
#define WB_HAS_ATTRS   0x80

#define WB_VERSION_13   0x03
#define WB_CHARSET_UTF8 106

/* ---------------------------------------------------------------------------------------
 * The document and its arena
 * ------------------------------------------------------------------------------------ */

/* Nodes and strings come from chunks freed together; a chunk is at least ARENA_CHUNK
 * bytes, or exactly what one large string needs. */
#define ARENA_CHUNK 16384

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, size;
    max_align_t data[];
};

struct eas_doc {
    struct arena_chunk *chunks;
    struct eas_node *root;
    size_t nodes;
    int failed; /* an allocation failed or the tree was misused: refuse to encode */
};

static void *arena_alloc(struct eas_doc *d, size_t n)
{
    struct arena_chunk *c = d->chunks;
    size_t align = sizeof(max_align_t);

    n = (n + align - 1) & ~(align - 1);
    if (n == 0 || n > SIZE_MAX / 2)
        return NULL;
    if (c == NULL || c->size - c->used < n) {
        size_t size = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = malloc(sizeof(*c) + size);
        if (c == NULL)
            return NULL;
        c->used = 0;
        c->size = size;
        /* A chunk made for one large string goes behind the current one, so the space
         * left in the current chunk stays usable. */
        if (d->chunks != NULL && size == n) {
            c->next = d->chunks->next;
            d->chunks->next = c;
        } else {
            c->next = d->chunks;
            d->chunks = c;
        }
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

struct eas_doc *eas_doc_new(void)
{
    return calloc(1, sizeof(struct eas_doc));
}

void eas_doc_free(struct eas_doc *d)
{
    if (d == NULL)
        return;
    for (struct arena_chunk *c = d->chunks, *next; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    free(d);
}

struct eas_node *eas_doc_root(const struct eas_doc *d)
{
    return d != NULL ? d->root : NULL;
}

static struct eas_node *doc_node(struct eas_doc *d, struct eas_node *parent, unsigned tag)
{
    struct eas_node *n;

    if (d->failed)
        return NULL;
    if ((parent == NULL && d->root != NULL) || wbxml_tag_name(tag) == NULL ||
        d->nodes >= WBXML_MAX_NODES) {
        d->failed = 1;
        return NULL;
    }
    n = arena_alloc(d, sizeof(*n));
    if (n == NULL) {
        d->failed = 1;
        return NULL;
    }
    memset(n, 0, sizeof(*n));
    n->tag = tag;
    n->parent = parent;
    if (parent == NULL)
        d->root = n;
    else if (parent->last == NULL)
        parent->first = parent->last = n;
    else {
        parent->last->next = n;
        parent->last = n;
    }
    d->nodes++;
    return n;
}

/* Sets (or, for a decoder that meets several strings in one element, extends) a node's
 * content. */
static int node_append(struct eas_doc *d, struct eas_node *n, const void *data, size_t len,
                       int opaque)
{
    char *p;

    if (len > WBXML_MAX_STRING || n->len > WBXML_MAX_STRING - len)
        return -1;
    p = arena_alloc(d, n->len + len + 1);
    if (p == NULL)
        return -1;
    if (n->len > 0)
        memcpy(p, n->data, n->len);
    if (len > 0)
        memcpy(p + n->len, data, len);
    n->len += len;
    p[n->len] = '\0';
    n->data = p;
    n->opaque |= opaque;
    return 0;
}

struct eas_node *eas_add(struct eas_doc *d, struct eas_node *parent, unsigned tag)
{
    return doc_node(d, parent, tag);
}

struct eas_node *eas_add_textn(struct eas_doc *d, struct eas_node *parent, unsigned tag,
                               const char *text, size_t len)
{
    struct eas_node *n = doc_node(d, parent, tag);

    if (n == NULL || text == NULL)
        return n;
    /* An inline string ends at its NUL: text with one inside cannot go out as STR_I. */
    if (memchr(text, '\0', len) != NULL || node_append(d, n, text, len, 0) < 0) {
        d->failed = 1;
        return NULL;
    }
    return n;
}

struct eas_node *eas_add_text(struct eas_doc *d, struct eas_node *parent, unsigned tag,
                              const char *text)
{
    return eas_add_textn(d, parent, tag, text, text != NULL ? strlen(text) : 0);
}

struct eas_node *eas_add_int(struct eas_doc *d, struct eas_node *parent, unsigned tag, long long v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%lld", v);
    return eas_add_text(d, parent, tag, buf);
}

struct eas_node *eas_add_opaque(struct eas_doc *d, struct eas_node *parent, unsigned tag,
                                const void *data, size_t len)
{
    struct eas_node *n = doc_node(d, parent, tag);

    if (n == NULL)
        return NULL;
    if (node_append(d, n, data, len, 1) < 0) {
        d->failed = 1;
        return NULL;
    }
    return n;
}

/* ---------------------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------------------ */

struct eas_node *eas_child(const struct eas_node *n, unsigned tag)
{
    if (n == NULL)
        return NULL;
    for (struct eas_node *c = n->first; c != NULL; c = c->next)
        if (c->tag == tag)
            return c;
    return NULL;
}

struct eas_node *eas_next(const struct eas_node *n, unsigned tag)
{
    if (n == NULL)
        return NULL;
    for (struct eas_node *c = n->next; c != NULL; c = c->next)
        if (c->tag == tag)
            return c;
    return NULL;
}

const char *eas_text(const struct eas_node *n)
{
    return n != NULL && n->data != NULL ? n->data : "";
}

const char *eas_child_text(const struct eas_node *n, unsigned tag)
{
    struct eas_node *c = eas_child(n, tag);

    return c != NULL ? eas_text(c) : NULL;
}

long long eas_child_int(const struct eas_node *n, unsigned tag, long long def)
{
    struct eas_node *c = eas_child(n, tag);
    const char *s;
    char *end;
    long long v;

    if (c == NULL || c->data == NULL || c->opaque)
        return def;
    s = c->data;
    /* Digits with an optional sign only: strtoll alone would also take " 12" or "0x1f". */
    if (*s == '-' || *s == '+')
        s++;
    if (*s < '0' || *s > '9')
        return def;
    errno = 0;
    v = strtoll(c->data, &end, 10);
    if (errno != 0 || *end != '\0')
        return def;
    return v;
}

/* ---------------------------------------------------------------------------------------
 * Decoder
 * ------------------------------------------------------------------------------------ */

struct wbxml_in {
    const uint8_t *p;
    size_t len, pos;
    char *err;
    size_t errlen;
};

static int in_fail(struct wbxml_in *in, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int in_fail(struct wbxml_in *in, const char *fmt, ...)
{
    va_list ap;

    if (in->errlen > 0) {
        int n = snprintf(in->err, in->errlen, "offset %zu: ", in->pos);
        if (n >= 0 && (size_t)n < in->errlen) {
            va_start(ap, fmt);
            vsnprintf(in->err + n, in->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

/* mb_u_int32 (WBXML 1.3 section 5.1): at most 5 bytes, the value must fit 32 bits. */
static int in_mbuint(struct wbxml_in *in, uint32_t *out)
{
    uint32_t v = 0;

    for (int i = 0; i < 5; i++) {
        uint8_t b;
        if (in->pos >= in->len)
            return in_fail(in, "truncated multi-byte integer");
        b = in->p[in->pos++];
        if (v > (UINT32_MAX >> 7))
            return in_fail(in, "multi-byte integer overflows 32 bits");
        v = (v << 7) | (b & 0x7fu);
        if ((b & 0x80) == 0) {
            *out = v;
            return 0;
        }
    }
    return in_fail(in, "multi-byte integer longer than 5 bytes");
}

/* Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1fu;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0fu;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07u;
        } else
            return 0;
        if (len - i <= n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3fu);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

static int dec_header(struct wbxml_in *in)
{
    uint32_t pubid = 0, charset = 0, strtbl = 0;

    if (in->len < 4)
        return in_fail(in, "truncated header");
    if (in->p[in->pos++] != WB_VERSION_13)
        return in_fail(in, "WBXML version 0x%02x, only 1.3 is accepted", in->p[0]);
    if (in_mbuint(in, &pubid) < 0)
        return -1;
    /* 0 would be followed by a string table index: refused with the string table. */
    if (pubid != 0x01)
        return in_fail(in, "public identifier %u, ActiveSync uses 1", (unsigned)pubid);
    if (in_mbuint(in, &charset) < 0)
        return -1;
    if (charset != WB_CHARSET_UTF8)
        return in_fail(in, "charset %u, only UTF-8 (106) is accepted", (unsigned)charset);
    if (in_mbuint(in, &strtbl) < 0)
        return -1;
    if (strtbl != 0)
        return in_fail(in, "string table of %u bytes (ActiveSync uses none)", (unsigned)strtbl);
    return 0;
}

/* Text content of the open element cur (never of the document level, never next to
 * child elements: ActiveSync has no mixed content). */
static int dec_text(struct wbxml_in *in, struct eas_doc *d, struct eas_node *cur, int opaque)
{
    const uint8_t *s;
    size_t n;

    if (cur == NULL)
        return in_fail(in, "text outside the root element");
    if (cur->first != NULL)
        return in_fail(in, "text mixed with elements");
    if (opaque) {
        uint32_t len = 0;
        if (in_mbuint(in, &len) < 0)
            return -1;
        if (len > WBXML_MAX_STRING)
            return in_fail(in, "opaque data of %u bytes exceeds the limit", (unsigned)len);
        if (len > in->len - in->pos)
            return in_fail(in, "truncated opaque data");
        s = in->p + in->pos;
        n = len;
        in->pos += len;
    } else {
        const uint8_t *nul;
        size_t avail = in->len - in->pos;
        s = in->p + in->pos;
        nul = memchr(s, 0, avail > WBXML_MAX_STRING + 1 ? WBXML_MAX_STRING + 1 : avail);
        if (nul == NULL)
            return in_fail(in, avail > WBXML_MAX_STRING ? "inline string exceeds the limit"
                                                        : "truncated inline string");
        n = (size_t)(nul - s);
        if (!utf8_valid(s, n))
            return in_fail(in, "inline string is not UTF-8");
        in->pos += n + 1;
    }
    if (node_append(d, cur, s, n, opaque) < 0)
        return in_fail(in, "content of an element exceeds the limit or memory");
    return 0;
}

static int dec_body(struct wbxml_in *in, struct eas_doc *d)
{
    struct eas_node *cur = NULL; /* the open element */
    unsigned page = 0, depth = 0;
    int closed = 0;

    while (in->pos < in->len) {
        uint8_t b = in->p[in->pos++];
        struct eas_node *n;
        unsigned tag;

        if (closed)
            return in_fail(in, "data after the root element");
        switch (b) {
        case WB_SWITCH_PAGE:
            if (in->pos >= in->len)
                return in_fail(in, "truncated SWITCH_PAGE");
            page = in->p[in->pos++];
            if (wbxml_page_name(page) == NULL)
                return in_fail(in, "unknown code page %u", page);
            continue;
        case WB_END:
            if (cur == NULL)
                return in_fail(in, "END without an open element");
            cur = cur->parent;
            depth--;
            closed = cur == NULL;
            continue;
        case WB_STR_I:
        case WB_OPAQUE:
            if (dec_text(in, d, cur, b == WB_OPAQUE) < 0)
                return -1;
            continue;
        case WB_ENTITY:
            return in_fail(in, "character entities are not accepted");
        case WB_STR_T:
            return in_fail(in, "string table references are not accepted");
        case WB_PI:
            return in_fail(in, "processing instructions are not accepted");
        case WB_LITERAL:
        case WB_LITERAL_C:
        case WB_LITERAL_A:
        case WB_LITERAL_AC:
            return in_fail(in, "literal tags are not accepted");
        default:
            break;
        }
        if ((b >= WB_EXT_I_0 && b <= WB_EXT_I_2) || (b >= WB_EXT_T_0 && b <= WB_EXT_T_2) ||
            (b >= WB_EXT_0 && b <= WB_EXT_2))
            return in_fail(in, "extension tokens are not accepted");
        if (b & WB_HAS_ATTRS)
            return in_fail(in, "attributes are not accepted");
        tag = EAS_TAG(page, b & 0x3fu);
        if (wbxml_tag_name(tag) == NULL)
            return in_fail(in, "unknown token 0x%02x in code page %u", b & 0x3fu, page);
        if (cur != NULL && cur->data != NULL)
            return in_fail(in, "element mixed with text");
        if (cur == NULL && d->root != NULL)
            return in_fail(in, "second root element");
        if (depth + 1 > WBXML_MAX_DEPTH)
            return in_fail(in, "nesting deeper than %d", WBXML_MAX_DEPTH);
        if (d->nodes >= WBXML_MAX_NODES)
            return in_fail(in, "more than %d elements", WBXML_MAX_NODES);
        n = doc_node(d, cur, tag);
        if (n == NULL)
            return in_fail(in, "out of memory");
        if (b & WB_HAS_CONTENT) {
            cur = n;
            depth++;
        } else if (cur == NULL)
            closed = 1;
    }
    if (d->root == NULL)
        return in_fail(in, "no root element");
    if (!closed)
        return in_fail(in, "truncated document (%u elements open)", depth);
    return 0;
}

int wbxml_decode(const void *buf, size_t len, struct eas_doc **out, char *err, size_t errlen)
{
    struct wbxml_in in = {.p = buf, .len = len, .err = err, .errlen = errlen};
    struct eas_doc *d;

    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if (buf == NULL)
        in.len = 0;
    d = eas_doc_new();
    if (d == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (dec_header(&in) < 0 || dec_body(&in, d) < 0) {
        eas_doc_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Encoder (streaming writer, and the tree walk on top of it)
 * ------------------------------------------------------------------------------------ */

static void wbuf_put(struct wbxml_writer *w, const void *p, size_t n)
{
    if (w->err)
        return;
    if (n > w->cap - w->len) {
        size_t cap = w->cap ? w->cap : 256;
        uint8_t *np;
        while (cap - w->len < n) {
            if (cap > SIZE_MAX / 2) {
                w->err = 1;
                return;
            }
            cap *= 2;
        }
        np = realloc(w->buf, cap);
        if (np == NULL) {
            w->err = 1;
            return;
        }
        w->buf = np;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void wbuf_byte(struct wbxml_writer *w, uint8_t b)
{
    wbuf_put(w, &b, 1);
}

static void wbuf_mbuint(struct wbxml_writer *w, uint32_t v)
{
    uint8_t tmp[5];
    int i = 4;

    tmp[i] = v & 0x7f;
    while ((v >>= 7) != 0)
        tmp[--i] = (uint8_t)(0x80 | (v & 0x7f));
    wbuf_put(w, tmp + i, (size_t)(5 - i));
}

void wbxml_writer_init(struct wbxml_writer *w)
{
    static const uint8_t hdr[] = {WB_VERSION_13, 0x01, WB_CHARSET_UTF8, 0x00};

    memset(w, 0, sizeof(*w));
    wbuf_put(w, hdr, sizeof(hdr));
}

/* The tag byte, after a SWITCH_PAGE when the page changes. */
static void wenc_tag(struct wbxml_writer *w, unsigned tag, int content)
{
    unsigned page = EAS_TAG_PAGE(tag);

    if (wbxml_tag_name(tag) == NULL || (w->depth == 0 && w->rooted)) {
        w->err = 1;
        return;
    }
    if (page != w->page) {
        wbuf_byte(w, WB_SWITCH_PAGE);
        wbuf_byte(w, (uint8_t)page);
        w->page = page;
    }
    wbuf_byte(w, (uint8_t)((tag & 0x3fu) | (content ? WB_HAS_CONTENT : 0)));
    w->rooted = 1;
}

void wbxml_write_open(struct wbxml_writer *w, unsigned tag)
{
    if (w->depth >= WBXML_MAX_DEPTH) {
        w->err = 1;
        return;
    }
    wenc_tag(w, tag, 1);
    w->depth++;
}

void wbxml_write_close(struct wbxml_writer *w)
{
    if (w->depth == 0) {
        w->err = 1;
        return;
    }
    wbuf_byte(w, WB_END);
    w->depth--;
}

void wbxml_write_empty(struct wbxml_writer *w, unsigned tag)
{
    wenc_tag(w, tag, 0);
}

void wbxml_write_text(struct wbxml_writer *w, unsigned tag, const char *s, size_t len)
{
    if (len == 0) {
        wbxml_write_empty(w, tag);
        return;
    }
    if (memchr(s, '\0', len) != NULL || len > WBXML_MAX_STRING) {
        w->err = 1;
        return;
    }
    wenc_tag(w, tag, 1);
    wbuf_byte(w, WB_STR_I);
    wbuf_put(w, s, len);
    wbuf_byte(w, 0);
    wbuf_byte(w, WB_END);
}

void wbxml_write_opaque(struct wbxml_writer *w, unsigned tag, const void *p, size_t len)
{
    if (len > WBXML_MAX_STRING) {
        w->err = 1;
        return;
    }
    wenc_tag(w, tag, 1);
    wbuf_byte(w, WB_OPAQUE);
    wbuf_mbuint(w, (uint32_t)len);
    wbuf_put(w, p, len);
    wbuf_byte(w, WB_END);
}

int wbxml_writer_finish(struct wbxml_writer *w, uint8_t **out, size_t *len)
{
    if (w->err || w->depth != 0 || !w->rooted) {
        free(w->buf);
        memset(w, 0, sizeof(*w));
        return -1;
    }
    *out = w->buf;
    *len = w->len;
    memset(w, 0, sizeof(*w));
    return 0;
}

void wbxml_writer_discard(struct wbxml_writer *w)
{
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

/* Iterative, so a deep tree cannot exhaust the stack (the writer bounds the depth). */
static void enc_tree(struct wbxml_writer *w, const struct eas_node *root)
{
    const struct eas_node *n = root;

    while (n != NULL && !w->err) {
        if (n->first != NULL) {
            if (n->data != NULL && n->len > 0) {
                w->err = 1; /* mixed content has no encoding here */
                return;
            }
            wbxml_write_open(w, n->tag);
            n = n->first;
            continue;
        }
        if (n->opaque)
            wbxml_write_opaque(w, n->tag, n->data, n->len);
        else
            wbxml_write_text(w, n->tag, n->data, n->len);
        /* Close the elements this node was the last child of. */
        while (n != root && n->next == NULL) {
            n = n->parent;
            wbxml_write_close(w);
        }
        n = n == root ? NULL : n->next;
    }
}

int wbxml_encode(const struct eas_doc *d, uint8_t **out, size_t *len)
{
    struct wbxml_writer w;

    *out = NULL;
    *len = 0;
    if (d == NULL || d->failed || d->root == NULL)
        return -1;
    wbxml_writer_init(&w);
    enc_tree(&w, d->root);
    return wbxml_writer_finish(&w, out, len);
}

/* ---------------------------------------------------------------------------------------
 * XML rendering
 * ------------------------------------------------------------------------------------ */

static void xml_escaped(struct wbxml_writer *w, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        switch (s[i]) {
        case '<':
            wbuf_put(w, "&lt;", 4);
            break;
        case '>':
            wbuf_put(w, "&gt;", 4);
            break;
        case '&':
            wbuf_put(w, "&amp;", 5);
            break;
        case '\r':
            wbuf_put(w, "&#13;", 5); /* survives XML's line-end normalisation */
            break;
        default:
            wbuf_byte(w, (uint8_t)s[i]);
        }
    }
}

/* Opaque data shows as text when it is UTF-8 XML can carry, else as base64; the
 * attribute says which, so `polaris wbxml encode` can turn it back into OPAQUE. */
static void xml_opaque(struct wbxml_writer *w, const struct eas_node *n)
{
    int text = utf8_valid((const uint8_t *)n->data, n->len);

    for (size_t i = 0; text && i < n->len; i++) {
        unsigned char c = (unsigned char)n->data[i];
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            text = 0;
    }
    if (text) {
        wbuf_put(w, " opaque=\"text\">", 15);
        xml_escaped(w, n->data, n->len);
        return;
    }
    size_t cap = (n->len + 2) / 3 * 4 + 1;
    char *b64 = malloc(cap);
    if (b64 == NULL) {
        w->err = 1;
        return;
    }
    size_t blen = b64_encode((const unsigned char *)n->data, n->len, b64, cap);
    wbuf_put(w, " opaque=\"base64\">", 17);
    wbuf_put(w, b64, blen);
    free(b64);
}

static void xml_open(struct wbxml_writer *w, const struct eas_node *n, int indent)
{
    const char *name = wbxml_tag_name(n->tag);
    unsigned page = EAS_TAG_PAGE(n->tag);

    for (int i = 0; i < indent; i++)
        wbuf_put(w, "  ", 2);
    wbuf_byte(w, '<');
    wbuf_put(w, name, strlen(name));
    /* libwbxml's convention: a default namespace "Page:" wherever the page changes. */
    if (n->parent == NULL || EAS_TAG_PAGE(n->parent->tag) != page) {
        const char *ns = wbxml_page_name(page);
        wbuf_put(w, " xmlns=\"", 8);
        wbuf_put(w, ns, strlen(ns));
        wbuf_put(w, ":\"", 2);
    }
}

static void xml_close(struct wbxml_writer *w, const struct eas_node *n, int indent)
{
    const char *name = wbxml_tag_name(n->tag);

    for (int i = 0; i < indent; i++)
        wbuf_put(w, "  ", 2);
    wbuf_put(w, "</", 2);
    wbuf_put(w, name, strlen(name));
    wbuf_put(w, ">\n", 2);
}

char *wbxml_to_xml(const struct eas_doc *d)
{
    struct wbxml_writer w;
    const struct eas_node *n;
    int depth = 0;
    char *s;

    if (d == NULL || d->root == NULL)
        return NULL;
    memset(&w, 0, sizeof(w));
    wbuf_put(&w, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n", 39);
    n = d->root;
    while (n != NULL && !w.err) {
        xml_open(&w, n, depth);
        if (n->first != NULL) {
            wbuf_put(&w, ">\n", 2);
            n = n->first;
            depth++;
            continue;
        }
        if (n->opaque) {
            xml_opaque(&w, n);
            wbuf_put(&w, "</", 2);
            wbuf_put(&w, wbxml_tag_name(n->tag), strlen(wbxml_tag_name(n->tag)));
            wbuf_put(&w, ">\n", 2);
        } else if (n->data != NULL && n->len > 0) {
            wbuf_byte(&w, '>');
            xml_escaped(&w, n->data, n->len);
            wbuf_put(&w, "</", 2);
            wbuf_put(&w, wbxml_tag_name(n->tag), strlen(wbxml_tag_name(n->tag)));
            wbuf_put(&w, ">\n", 2);
        } else
            wbuf_put(&w, "/>\n", 3);
        while (n != d->root && n->next == NULL) {
            n = n->parent;
            depth--;
            xml_close(&w, n, depth);
        }
        n = n == d->root ? NULL : n->next;
    }
    wbuf_byte(&w, '\0');
    if (w.err) {
        free(w.buf);
        return NULL;
    }
    s = (char *)w.buf;
    return s;
}
