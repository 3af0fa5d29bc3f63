/*
 * mime.c — the MIME parser: splits an untrusted message into a tree of entities (headers,
 * bodies, multipart children, encapsulated messages) with offsets into the original bytes,
 * plus the buffer/arena helpers the library shares, transfer-encoding decoding for BINARY[]
 * and HEADER.FIELDS filtering.
 *
 * The parser never refuses input: anything it does not understand becomes a leaf. It works
 * top-down: a multipart finds its own delimiter lines inside the region its parent gave it,
 * so the cost is bounded by depth (MIME_MAX_DEPTH) times the message size.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/mime.h"
#include "server/server.h"

/* ---- growable buffer ---------------------------------------------------------------- */

/* ---- arena -------------------------------------------------------------------------- */

#define ARENA_CHUNK 16384

struct mime_arena_chunk {
    struct mime_arena_chunk *next;
    size_t used, size;
    max_align_t data[];
};

void *mime_arena_alloc(struct mime_arena *a, size_t n)
{
    if (a->oom)
        return NULL;
    /* Keep every allocation aligned for any type. */
    size_t al = sizeof(max_align_t);
    if (n > SIZE_MAX / 2) {
        a->oom = 1;
        return NULL;
    }
    n = (n + al - 1) / al * al;
    if (n == 0)
        n = al;
    struct mime_arena_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = malloc(sizeof(*c) + size);
        if (!c) {
            a->oom = 1;
            return NULL;
        }
        c->size = size;
        c->used = 0;
        /* A big allocation goes behind the current chunk so its free space stays usable. */
        if (a->head && size > ARENA_CHUNK) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *mime_arena_strndup(struct mime_arena *a, const char *s, size_t n)
{
    char *p = mime_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void mime_arena_free(struct mime_arena *a)
{
    struct mime_arena_chunk *c = a->head;
    while (c) {
        struct mime_arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
}

/* ---- the parser --------------------------------------------------------------------- */

struct parse_ctx {
    struct mime_message *m;
    struct mime_arena *a;
};

static void make_text_leaf(struct parse_ctx *c, struct mime_part *p);

/* Text lines of a body: line feeds, plus a last line without one. */
static size_t count_lines(const char *s, size_t len)
{
    size_t n = 0;
    const char *p = s, *end = s + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return n + 1;
        n++;
        p = nl + 1;
    }
    return n;
}

static int streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Reads the Content-* fields of one entity's header. */
static void read_content_fields(struct parse_ctx *c, struct mime_part *p)
{
    const char *hdr = c->m->data + p->hdr_off;
    size_t len = p->hdr_len < MIME_MAX_HEADER ? p->hdr_len : MIME_MAX_HEADER;
    size_t pos = 0;
    struct mime_field f;
    int have_ct = 0, have_cd = 0;
    while (mime_header_next(hdr, len, &pos, &f)) {
        if (f.name_len < 8 || strncasecmp(f.name, "content-", 8) != 0)
            continue;
        const char *n = f.name + 8;
        size_t nl = f.name_len - 8;
#define IS(s) (nl == sizeof(s) - 1 && strncasecmp(n, s, nl) == 0)
        /* The first occurrence of each field wins, as in most readers. */
        if (IS("type") && !have_ct) {
            have_ct = 1;
            mime_parse_ctype(c->a, f.value, f.value_len, 1, &p->type, &p->subtype, &p->params,
                             &p->nparams);
            if (!p->type)
                make_text_leaf(c, p); /* RFC 2045 §5.2: invalid means text/plain */
        } else if (IS("disposition") && !have_cd) {
            char *sub = NULL;
            have_cd = 1;
            mime_parse_ctype(c->a, f.value, f.value_len, 0, &p->disp, &sub, &p->dparams,
                             &p->ndparams);
        } else if (IS("transfer-encoding") && !p->enc) {
            p->enc = mime_unfold(c->a, f.value, f.value_len);
            /* The mechanism is one token; a trailing comment or junk is not part of it. */
            if (p->enc)
                p->enc[strcspn(p->enc, " \t(;")] = '\0';
        } else if (IS("id") && !p->id) {
            p->id = mime_unfold(c->a, f.value, f.value_len);
        } else if (IS("description") && !p->desc) {
            p->desc = mime_unfold(c->a, f.value, f.value_len);
        } else if (IS("md5") && !p->md5) {
            p->md5 = mime_unfold(c->a, f.value, f.value_len);
        } else if (IS("language") && !p->lang) {
            p->lang = mime_unfold(c->a, f.value, f.value_len);
        } else if (IS("location") && !p->loc) {
            p->loc = mime_unfold(c->a, f.value, f.value_len);
        }
#undef IS
    }
}

static void set_type(struct parse_ctx *c, struct mime_part *p, const char *type,
                     const char *subtype)
{
    p->type = mime_arena_strndup(c->a, type, strlen(type));
    p->subtype = mime_arena_strndup(c->a, subtype, strlen(subtype));
}

/* Turns an entity into a text/plain us-ascii leaf (a multipart without usable boundary). */
static void make_text_leaf(struct parse_ctx *c, struct mime_part *p)
{
    struct mime_param *pp = mime_arena_alloc(c->a, sizeof(*pp));
    p->kind = MIME_LEAF;
    set_type(c, p, "TEXT", "PLAIN");
    if (pp) {
        pp->attr = mime_arena_strndup(c->a, "CHARSET", 7);
        pp->value = mime_arena_strndup(c->a, "us-ascii", 8);
    }
    p->params = pp;
    p->nparams = pp ? 1 : 0;
}

/* Turns an entity into an opaque application/octet-stream leaf (limits reached): a
 * multipart or message type without its children would break IMAP's grammar. */
static void make_opaque_leaf(struct parse_ctx *c, struct mime_part *p)
{
    p->kind = MIME_LEAF;
    set_type(c, p, "APPLICATION", "OCTET-STREAM");
    p->params = NULL;
    p->nparams = 0;
}

static struct mime_part *parse_entity(struct parse_ctx *c, size_t off, size_t end, unsigned depth,
                                      int digest, struct mime_part *parent);

/* Length of the line break at s (CRLF or LF), 0 if none. */
static size_t eol_len(const char *s, const char *end)
{
    if (s < end && *s == '\n')
        return 1;
    if (end - s >= 2 && s[0] == '\r' && s[1] == '\n')
        return 2;
    return 0;
}

/* Is the line at p (up to end) a delimiter "--boundary" with optional "--" and transport
 * padding? Returns 0 no, 1 delimiter, 2 close delimiter; *next is the next line start. */
static int delimiter_line(const char *p, const char *end, const char *b, size_t blen,
                          const char **next)
{
    if ((size_t)(end - p) < blen + 2 || p[0] != '-' || p[1] != '-' || memcmp(p + 2, b, blen))
        return 0;
    const char *q = p + 2 + blen;
    int kind = 1;
    if (end - q >= 2 && q[0] == '-' && q[1] == '-') {
        kind = 2;
        q += 2;
    }
    while (q < end && (*q == ' ' || *q == '\t'))
        q++;
    size_t el = eol_len(q, end);
    if (q < end && !el) {
        /* Some writers put junk after a close delimiter; RFC 2046 says the epilogue
         * follows anyway, so accept it there but not after an ordinary delimiter. */
        if (kind != 2)
            return 0;
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        *next = nl ? nl + 1 : end;
        return 2;
    }
    *next = q + el;
    return kind;
}

/* Splits the body of multipart p into children. Returns the number of children made. */
static size_t split_multipart(struct parse_ctx *c, struct mime_part *p, const char *b, size_t blen)
{
    const char *base = c->m->data;
    const char *s = base + p->body_off, *end = s + p->body_len;
    const char *line = s, *part_start = NULL, *next;
    int digest = strcmp(p->subtype, "DIGEST") == 0;
    struct mime_part **tail = &p->children;
    size_t n = 0;

    while (line < end) {
        int kind = delimiter_line(line, end, b, blen, &next);
        if (kind) {
            if (part_start) {
                /* The line break before a delimiter belongs to the delimiter. */
                const char *pe = line;
                if (pe > part_start && pe[-1] == '\n')
                    pe--;
                if (pe > part_start && pe[-1] == '\r')
                    pe--;
                if (c->m->nparts >= MIME_MAX_PARTS)
                    return n;
                struct mime_part *ch = parse_entity(c, (size_t)(part_start - base),
                                                    (size_t)(pe - base), p->depth + 1, digest, p);
                if (!ch)
                    return n;
                *tail = ch;
                tail = &ch->next;
                n++;
            }
            if (kind == 2)
                return n; /* the rest is the epilogue */
            part_start = next;
            line = next;
            continue;
        }
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        line = nl ? nl + 1 : end;
    }
    /* No close delimiter: the last part runs to the end of the body. */
    if (part_start && c->m->nparts < MIME_MAX_PARTS) {
        struct mime_part *ch = parse_entity(c, (size_t)(part_start - base), (size_t)(end - base),
                                            p->depth + 1, digest, p);
        if (ch) {
            *tail = ch;
            n++;
        }
    }
    return n;
}

static void parse_multipart(struct parse_ctx *c, struct mime_part *p)
{
    const char *b = mime_param_get(p->params, p->nparams, "BOUNDARY");
    size_t blen = b ? strlen(b) : 0;
    /* RFC 2046 allows no trailing space in a boundary; writers that add it still mean the
     * delimiter without it (padding after the delimiter is accepted anyway). */
    while (blen && (b[blen - 1] == ' ' || b[blen - 1] == '\t'))
        blen--;
    if (blen == 0) {
        make_text_leaf(c, p);
        return;
    }
    if (p->depth >= MIME_MAX_DEPTH) {
        make_opaque_leaf(c, p);
        return;
    }
    p->kind = MIME_MULTIPART;
    if (split_multipart(c, p, b, blen) == 0) {
        p->children = NULL;
        if (c->m->nparts >= MIME_MAX_PARTS)
            make_opaque_leaf(c, p);
        else
            make_text_leaf(c, p); /* no delimiter at all: not really a multipart */
    }
}

static void parse_message(struct parse_ctx *c, struct mime_part *p)
{
    if (p->depth >= MIME_MAX_DEPTH || c->m->nparts >= MIME_MAX_PARTS) {
        make_opaque_leaf(c, p);
        return;
    }
    p->msg = parse_entity(c, p->body_off, p->body_off + p->body_len, p->depth + 1, 0, p);
    if (p->msg)
        p->kind = MIME_MESSAGE;
    else
        make_opaque_leaf(c, p);
}

static struct mime_part *parse_entity(struct parse_ctx *c, size_t off, size_t end, unsigned depth,
                                      int digest, struct mime_part *parent)
{
    struct mime_part *p = mime_arena_alloc(c->a, sizeof(*p));
    if (!p)
        return NULL;
    c->m->nparts++;
    p->depth = depth;
    p->parent = parent;
    p->hdr_off = off;
    p->hdr_len = mime_header_size(c->m->data + off, end - off);
    p->body_off = off + p->hdr_len;
    p->body_len = end - p->body_off;
    p->body_lines = count_lines(c->m->data + p->body_off, p->body_len);
    read_content_fields(c, p);
    if (!p->type) {
        /* RFC 2046 §5.1.5: parts of a multipart/digest default to message/rfc822. */
        if (digest) {
            set_type(c, p, "MESSAGE", "RFC822");
        } else {
            make_text_leaf(c, p);
        }
    }
    if (c->a->oom || !p->type || !p->subtype)
        return NULL;
    if (streq(p->type, "MULTIPART"))
        parse_multipart(c, p);
    else if (streq(p->type, "MESSAGE") && streq(p->subtype, "RFC822"))
        parse_message(c, p);
    return p;
}

int mime_parse(const char *msg, size_t len, struct mime_message **out)
{
    struct mime_message *m = calloc(1, sizeof(*m));
    *out = NULL;
    if (!m)
        return -1;
    m->data = msg ? msg : "";
    m->len = msg ? len : 0;
    struct parse_ctx c = {.m = m, .a = &m->arena};
    m->root = parse_entity(&c, 0, m->len, 0, 0, NULL);
    if (!m->root || m->arena.oom)
        goto err;
    *out = m;
    return 0;
err:
    mime_free(m);
    return -1;
}

void mime_free(struct mime_message *m)
{
    if (!m)
        return;
    mime_arena_free(&m->arena);
    free(m);
}

/* ---- transfer encodings ------------------------------------------------------------- */

static void decode_base64(const char *s, size_t len, struct buf *out)
{
    unsigned char *raw = malloc(len / 4 * 3 + 3);
    ssize_t n;

    if (!raw) {
        out->oom = 1;
        return;
    }
    /* Never fails with SKIP_JUNK: broken input decodes as far as it goes (server/b64.c). */
    n = b64_decode(s, len, raw, len / 4 * 3 + 3, B64_SKIP_JUNK);
    if (n > 0)
        buf_put(out, raw, (size_t)n);
    free(raw);
}

static int hex_value(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = (unsigned char)tolower(ch);
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

static void decode_qp(const char *s, size_t len, struct buf *out)
{
    size_t i = 0;
    while (i < len) {
        /* Trailing white space on a line was added in transport (RFC 2045 §6.7 rule 3). */
        if (s[i] == ' ' || s[i] == '\t') {
            size_t j = i;
            while (j < len && (s[j] == ' ' || s[j] == '\t'))
                j++;
            if (j == len || s[j] == '\r' || s[j] == '\n') {
                i = j;
                continue;
            }
            buf_put(out, s + i, j - i);
            i = j;
            continue;
        }
        if (s[i] != '=') {
            buf_putc(out, s[i++]);
            continue;
        }
        if (i + 2 < len && hex_value((unsigned char)s[i + 1]) >= 0 &&
            hex_value((unsigned char)s[i + 2]) >= 0) {
            buf_putc(out, (char)(hex_value((unsigned char)s[i + 1]) * 16 +
                                 hex_value((unsigned char)s[i + 2])));
            i += 3;
            continue;
        }
        /* Soft line break: '=' then optional padding then a line end. */
        size_t j = i + 1;
        while (j < len && (s[j] == ' ' || s[j] == '\t'))
            j++;
        size_t el = eol_len(s + j, s + len);
        if (el || j == len) {
            i = j + el;
            continue;
        }
        buf_putc(out, '='); /* a stray '=' is kept, as RFC 2045 suggests */
        i++;
    }
}

int mime_decode_cte(const char *enc, const char *s, size_t len, struct buf *out)
{
    if (!enc || !strcasecmp(enc, "7bit") || !strcasecmp(enc, "8bit") || !strcasecmp(enc, "binary"))
        buf_put(out, s, len);
    else if (!strcasecmp(enc, "base64"))
        decode_base64(s, len, out);
    else if (!strcasecmp(enc, "quoted-printable"))
        decode_qp(s, len, out);
    else
        return -1;
    if (!out->p)
        buf_put(out, "", 0); /* an empty result is still a string */
    return out->oom ? -1 : 0;
}

/* ---- HEADER.FIELDS ------------------------------------------------------------------ */

void mime_header_filter(const char *hdr, size_t len, const char *const *names, size_t nnames,
                        int negate, struct buf *out)
{
    size_t pos = 0;
    struct mime_field f;
    size_t limit = len < MIME_MAX_HEADER ? len : MIME_MAX_HEADER;
    while (mime_header_next(hdr, limit, &pos, &f)) {
        int match = 0;
        for (size_t i = 0; i < nnames && !match; i++)
            match =
                strlen(names[i]) == f.name_len && strncasecmp(names[i], f.name, f.name_len) == 0;
        if (match == negate)
            continue;
        /* The field as it is, with its own line break (CRLF if it had none). */
        const char *fend = f.value + f.value_len;
        size_t el = eol_len(fend, hdr + limit);
        buf_put(out, f.name, (size_t)(fend - f.name));
        if (el)
            buf_put(out, fend, el);
        else
            buf_put(out, "\r\n", 2);
    }
    buf_put(out, "\r\n", 2);
}
