/*
 * mime_cache.c — the per-message cache blob, computed once when a message enters the store
 * and kept as the item's `meta`, so IMAP FETCH/SEARCH/SORT/THREAD and ActiveSync can answer
 * without re-reading or re-parsing the message: the IMAP ENVELOPE/BODYSTRUCTURE/BODY strings,
 * sizes and line counts, the part table (sections to byte ranges of the stored message) and
 * decoded header values.
 *
 * Layout (version 1, all integers little-endian, strings NUL-terminated):
 *   0   magic "PMCB"            4  u32 version          8  u32 total length
 *   12  u32 flags               16 u32 string refs      20 u32 parts
 *   24  u32 part record size    28 u32 strings offset   32 u32 strings length
 *   36  i32 date zone           40 i64 date             48 u64 message size
 *   56  u64 header size         64 u64 body size        72 u64 body lines
 *   80  string refs (u32 offset, u32 length into the string area)
 *       part records (PART_REC bytes each), then the string area.
 * A reader that finds another version refuses the blob; the engine then rebuilds it from the
 * message, so the format can change without a migration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/mime.h"

#define MAGIC       "PMCB"
#define HDR_FIXED   80
#define PART_REFS   8
#define PART_REC    (PART_REFS * 8 + 4 * 4 + 6 * 8)
#define MAX_ENTRIES (2 * MIME_MAX_PARTS + 1)

/* Header strings, in blob order. */
enum {
    S_ENVELOPE,
    S_BODYSTRUCTURE,
    S_BODY,
    S_SUBJECT,
    S_BASE_SUBJECT,
    S_FROM,
    S_TO,
    S_CC,
    S_MESSAGE_ID,
    S_IN_REPLY_TO,
    S_REFERENCES,
    S_FROM_NAME,
    S_FROM_MAILBOX,
    S_FROM_HOST,
    S_TO_NAME,
    S_TO_MAILBOX,
    S_CC_MAILBOX,
    S_COUNT
};

/* Part record strings, in blob order. */
enum { P_SECTION, P_TYPE, P_SUBTYPE, P_CHARSET, P_ENCODING, P_FILENAME, P_CID, P_DISP };

struct ref {
    uint32_t off, len;
};

struct entry {
    struct ref s[PART_REFS];
    uint32_t flags, parent, depth;
    uint64_t hdr_off, hdr_len, body_off, body_len, lines, msg_hdr_len;
};

struct builder {
    const struct mime_message *m;
    struct mime_arena a; /* scratch for header parsing */
    struct buf strs;     /* the string area */
    struct ref hs[S_COUNT];
    struct entry *ents;
    size_t nents;
    uint32_t flags;
    int fail;
};

/* ---- little-endian helpers ----------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ---- building ------------------------------------------------------------------------ */

/* Adds a string to the string area (with its NUL) and returns its reference. */
static struct ref add_str(struct builder *bd, const char *s, size_t len)
{
    struct ref r = {0, 0};
    if (!s || len == 0) {
        return r; /* offset 0 holds the shared empty string */
    }
    if (bd->strs.len + len + 1 > UINT32_MAX) {
        bd->fail = 1;
        return r;
    }
    r.off = (uint32_t)bd->strs.len;
    r.len = (uint32_t)len;
    buf_put(&bd->strs, s, len);
    buf_putc(&bd->strs, '\0');
    return r;
}

static struct ref add_cstr(struct builder *bd, const char *s)
{
    return add_str(bd, s, s ? strlen(s) : 0);
}

/* Adds s as valid UTF-8 (decoded values are read by XML and SEARCH). */
static struct ref add_clean(struct builder *bd, const char *s, size_t len)
{
    struct buf b = {0};
    mime_utf8_clean(s ? s : "", s ? len : 0, &b);
    if (b.oom)
        bd->fail = 1;
    struct ref r = add_str(bd, b.p, b.len);
    buf_free(&b);
    return r;
}

static struct ref add_lower(struct builder *bd, const char *s)
{
    char tmp[256];
    size_t n = s ? strlen(s) : 0;
    if (n >= sizeof(tmp))
        n = sizeof(tmp) - 1;
    for (size_t i = 0; i < n; i++)
        tmp[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
    return add_str(bd, tmp, n);
}

/* A header value decoded (RFC 2047) and cleaned to UTF-8. */
static struct ref add_decoded(struct builder *bd, const char *v)
{
    struct buf b = {0};
    if (!v)
        return add_str(bd, NULL, 0);
    mime_header_decode(v, strlen(v), &b);
    if (b.oom)
        bd->fail = 1;
    struct ref r = add_clean(bd, b.p, b.len);
    buf_free(&b);
    return r;
}

/* Msg-ids "<...>" in v: the first (all 0) or all of them separated by one space (all 1). */
static struct ref add_msgids(struct builder *bd, const char *v, int all)
{
    struct buf b = {0};
    for (const char *s = v; s && (s = strchr(s, '<')) != NULL;) {
        const char *e = strchr(s, '>');
        if (!e)
            break;
        if (b.len)
            buf_putc(&b, ' ');
        for (const char *q = s; q <= e; q++) {
            if (*q != ' ' && *q != '\t')
                buf_putc(&b, *q);
        }
        s = e + 1;
        if (!all)
            break;
    }
    if (b.oom)
        bd->fail = 1;
    struct ref r = add_clean(bd, b.p, b.len);
    buf_free(&b);
    return r;
}

static const char *hdr_value(struct builder *bd, const char *hdr, size_t len, const char *name)
{
    struct mime_field f;
    if (!mime_header_get(hdr, len, name, &f))
        return NULL;
    return mime_unfold(&bd->a, f.value, f.value_len);
}

static const struct mime_addr *first_mailbox(struct builder *bd, const char *v)
{
    struct mime_addr *ad = NULL;
    if (!v)
        return NULL;
    mime_addr_parse(&bd->a, v, strlen(v), &ad);
    while (ad && ad->kind != MIME_ADDR_MAILBOX)
        ad = ad->next;
    return ad;
}

static void build_header_strings(struct builder *bd)
{
    const struct mime_part *r = bd->m->root;
    const char *hdr = bd->m->data + r->hdr_off;
    size_t len = r->hdr_len;
    const char *subject = hdr_value(bd, hdr, len, "Subject");
    const char *from = hdr_value(bd, hdr, len, "From");
    const char *to = hdr_value(bd, hdr, len, "To");
    const char *cc = hdr_value(bd, hdr, len, "Cc");
    struct buf dec = {0}, base = {0};
    int reply = 0;

    if (subject)
        mime_header_decode(subject, strlen(subject), &dec);
    bd->hs[S_SUBJECT] = add_clean(bd, dec.p, dec.len);
    mime_base_subject(bd->strs.p + bd->hs[S_SUBJECT].off, bd->hs[S_SUBJECT].len, &base, &reply);
    bd->hs[S_BASE_SUBJECT] = add_str(bd, base.p, base.len);
    if (reply)
        bd->flags |= MIME_CACHE_SUBJECT_REPLY;
    if (dec.oom || base.oom)
        bd->fail = 1;
    buf_free(&dec);
    buf_free(&base);

    bd->hs[S_FROM] = add_decoded(bd, from);
    bd->hs[S_TO] = add_decoded(bd, to);
    bd->hs[S_CC] = add_decoded(bd, cc);
    bd->hs[S_MESSAGE_ID] = add_msgids(bd, hdr_value(bd, hdr, len, "Message-ID"), 0);
    bd->hs[S_IN_REPLY_TO] = add_msgids(bd, hdr_value(bd, hdr, len, "In-Reply-To"), 0);
    bd->hs[S_REFERENCES] = add_msgids(bd, hdr_value(bd, hdr, len, "References"), 1);

    const struct mime_addr *fa = first_mailbox(bd, from), *ta = first_mailbox(bd, to),
                           *ca = first_mailbox(bd, cc);
    bd->hs[S_FROM_NAME] = add_decoded(bd, fa ? fa->name : NULL);
    bd->hs[S_FROM_MAILBOX] = add_decoded(bd, fa ? fa->mailbox : NULL);
    bd->hs[S_FROM_HOST] = add_decoded(bd, fa ? fa->host : NULL);
    bd->hs[S_TO_NAME] = add_decoded(bd, ta ? ta->name : NULL);
    bd->hs[S_TO_MAILBOX] = add_decoded(bd, ta ? ta->mailbox : NULL);
    bd->hs[S_CC_MAILBOX] = add_decoded(bd, ca ? ca->mailbox : NULL);
}

static void build_imap_strings(struct builder *bd)
{
    struct buf b = {0};
    const struct mime_part *r = bd->m->root;
    mime_imap_envelope(&bd->a, bd->m->data + r->hdr_off, r->hdr_len, &b);
    bd->hs[S_ENVELOPE] = add_str(bd, b.p, b.len);
    b.len = 0;
    mime_imap_bodystructure(bd->m, r, 1, &b);
    bd->hs[S_BODYSTRUCTURE] = add_str(bd, b.p, b.len);
    b.len = 0;
    mime_imap_bodystructure(bd->m, r, 0, &b);
    bd->hs[S_BODY] = add_str(bd, b.p, b.len);
    if (b.oom)
        bd->fail = 1;
    buf_free(&b);
}

/* The part's file name: Content-Disposition filename, else Content-Type name. */
static char *part_filename(struct builder *bd, const struct mime_part *p)
{
    char *fn = mime_param_decoded(&bd->a, p->dparams, p->ndparams, "FILENAME");
    if (!fn || !*fn)
        fn = mime_param_decoded(&bd->a, p->params, p->nparams, "NAME");
    return fn && *fn ? fn : NULL;
}

static int is_related_resource(const struct mime_part *p)
{
    return p->id && p->parent && p->parent->kind == MIME_MULTIPART &&
           !strcmp(p->parent->subtype, "RELATED");
}

static uint32_t part_flags(const struct mime_part *p, const char *filename)
{
    uint32_t fl = 0;
    if (!strcmp(p->type, "TEXT"))
        fl |= MIME_PART_TEXT;
    if (p->kind == MIME_MULTIPART)
        return fl | MIME_PART_MULTIPART;
    int disp_att = p->disp && !strcmp(p->disp, "ATTACHMENT");
    /* What a user calls an attachment: a file, a forwarded message, anything not text. */
    if (disp_att || filename || p->kind == MIME_MESSAGE || !(fl & MIME_PART_TEXT))
        fl |= MIME_PART_ATTACHMENT;
    if ((p->disp && !strcmp(p->disp, "INLINE")) || is_related_resource(p))
        fl |= MIME_PART_INLINE;
    return fl;
}

static uint32_t add_entry(struct builder *bd, const struct mime_part *p, const char *section,
                          uint32_t parent, uint32_t extra)
{
    if (bd->nents >= MAX_ENTRIES) {
        bd->fail = 1;
        return 0;
    }
    struct entry *e = &bd->ents[bd->nents];
    char *fn = part_filename(bd, p);
    const char *cs = mime_param_decoded(&bd->a, p->params, p->nparams, "CHARSET");
    memset(e, 0, sizeof(*e));
    e->s[P_SECTION] = add_cstr(bd, section);
    e->s[P_TYPE] = add_lower(bd, p->type);
    e->s[P_SUBTYPE] = add_lower(bd, p->subtype);
    e->s[P_CHARSET] = add_clean(bd, cs, cs ? strlen(cs) : 0);
    e->s[P_ENCODING] = add_lower(bd, p->enc && *p->enc ? p->enc : "7bit");
    e->s[P_FILENAME] = add_clean(bd, fn, fn ? strlen(fn) : 0);
    if (p->id) {
        /* Content-ID without its angle brackets, as cid: URLs name it. */
        const char *s = p->id;
        size_t n = strlen(s);
        if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
            s++;
            n -= 2;
        }
        e->s[P_CID] = add_clean(bd, s, n);
    }
    e->s[P_DISP] = add_lower(bd, p->disp);
    e->flags = extra | part_flags(p, fn);
    if (extra & MIME_PART_ROOT)
        e->flags &= ~(MIME_PART_ATTACHMENT | MIME_PART_INLINE);
    if (!(e->flags & MIME_PART_ROOT) && (e->flags & MIME_PART_ATTACHMENT) &&
        !((e->flags & MIME_PART_INLINE) && is_related_resource(p)))
        bd->flags |= MIME_CACHE_HAS_ATTACHMENTS;
    e->parent = parent;
    e->depth = p->depth;
    e->hdr_off = p->hdr_off;
    e->hdr_len = p->hdr_len;
    e->body_off = p->body_off;
    e->body_len = p->body_len;
    e->lines = p->body_lines;
    if (p->kind == MIME_MESSAGE) {
        e->msg_hdr_len = p->msg->hdr_len;
        e->flags |= MIME_PART_MESSAGE;
        if (p->msg->kind == MIME_MULTIPART)
            e->flags |= MIME_PART_MULTIPART;
    }
    return (uint32_t)bd->nents++;
}

static void walk_message(struct builder *bd, const struct mime_part *msg, const char *prefix,
                         uint32_t parent);

/* Sections have at most one number per nesting level plus one for a message body. */
#define SECTION_MAX 512

/* "prefix.n" (or "n" at the top) into out. */
static void section_of(struct builder *bd, char *out, size_t size, const char *prefix, size_t n)
{
    int r = *prefix ? snprintf(out, size, "%s.%zu", prefix, n) : snprintf(out, size, "%zu", n);
    if (r < 0 || (size_t)r >= size)
        bd->fail = 1;
}

static void walk_part(struct builder *bd, const struct mime_part *p, const char *section,
                      uint32_t parent)
{
    uint32_t idx = add_entry(bd, p, section, parent, 0);
    if (bd->fail)
        return;
    if (p->kind == MIME_MULTIPART) {
        size_t n = 1;
        for (const struct mime_part *c = p->children; c && !bd->fail; c = c->next) {
            char sec[SECTION_MAX];
            section_of(bd, sec, sizeof(sec), section, n++);
            walk_part(bd, c, sec, idx);
        }
    } else if (p->kind == MIME_MESSAGE) {
        walk_message(bd, p->msg, section, idx);
    }
}

/* The IMAP parts of a message (root or encapsulated): a multipart's children, or its body
 * as part 1. */
static void walk_message(struct builder *bd, const struct mime_part *msg, const char *prefix,
                         uint32_t parent)
{
    char sec[SECTION_MAX];
    if (msg->kind != MIME_MULTIPART) {
        section_of(bd, sec, sizeof(sec), prefix, 1);
        walk_part(bd, msg, sec, parent);
        return;
    }
    size_t n = 1;
    for (const struct mime_part *c = msg->children; c && !bd->fail; c = c->next) {
        section_of(bd, sec, sizeof(sec), prefix, n++);
        walk_part(bd, c, sec, parent);
    }
}

static int serialize(struct builder *bd, void **blob, size_t *bloblen)
{
    size_t strings_off = HDR_FIXED + S_COUNT * 8 + bd->nents * PART_REC;
    size_t total = strings_off + bd->strs.len;
    if (total > UINT32_MAX)
        return -1;
    unsigned char *p = calloc(1, total);
    if (!p)
        return -1;
    const struct mime_part *r = bd->m->root;
    memcpy(p, MAGIC, 4);
    put32(p + 4, MIME_CACHE_VERSION);
    put32(p + 8, (uint32_t)total);
    put32(p + 12, bd->flags);
    put32(p + 16, S_COUNT);
    put32(p + 20, (uint32_t)bd->nents);
    put32(p + 24, PART_REC);
    put32(p + 28, (uint32_t)strings_off);
    put32(p + 32, (uint32_t)bd->strs.len);
    int64_t t = 0;
    int tz = 0;
    const char *date = hdr_value(bd, bd->m->data + r->hdr_off, r->hdr_len, "Date");
    if (date && mime_date_parse(date, strlen(date), &t, &tz) == 0) {
        put32(p + 12, bd->flags | MIME_CACHE_DATE_VALID);
    } else {
        t = 0;
        tz = 0;
    }
    put32(p + 36, (uint32_t)(int32_t)tz);
    put64(p + 40, (uint64_t)t);
    put64(p + 48, bd->m->len);
    put64(p + 56, r->hdr_len);
    put64(p + 64, r->body_len);
    put64(p + 72, r->body_lines);
    unsigned char *q = p + HDR_FIXED;
    for (int i = 0; i < S_COUNT; i++, q += 8) {
        put32(q, bd->hs[i].off);
        put32(q + 4, bd->hs[i].len);
    }
    for (size_t i = 0; i < bd->nents; i++, q += PART_REC) {
        const struct entry *e = &bd->ents[i];
        for (int k = 0; k < PART_REFS; k++) {
            put32(q + 8 * k, e->s[k].off);
            put32(q + 8 * k + 4, e->s[k].len);
        }
        unsigned char *n = q + PART_REFS * 8;
        put32(n, e->flags);
        put32(n + 4, e->parent);
        put32(n + 8, e->depth);
        put32(n + 12, 0);
        const uint64_t v[6] = {e->hdr_off,  e->hdr_len, e->body_off,
                               e->body_len, e->lines,   e->msg_hdr_len};
        for (int k = 0; k < 6; k++)
            put64(n + 16 + 8 * k, v[k]);
    }
    memcpy(p + strings_off, bd->strs.p, bd->strs.len);
    *blob = p;
    *bloblen = total;
    return 0;
}

int mime_cache_build(const char *msg, size_t len, void **blob, size_t *bloblen)
{
    struct builder bd = {0};
    struct mime_message *m = NULL;
    *blob = NULL;
    *bloblen = 0;
    if (mime_parse(msg, len, &m) < 0)
        goto err;
    bd.m = m;
    bd.ents = calloc(MAX_ENTRIES, sizeof(*bd.ents));
    if (!bd.ents)
        goto err;
    buf_put(&bd.strs, "", 1); /* offset 0: the empty string */
    build_imap_strings(&bd);
    build_header_strings(&bd);
    add_entry(&bd, m->root, "", MIME_PART_NONE, MIME_PART_ROOT);
    walk_message(&bd, m->root, "", 0);
    if (bd.fail || bd.strs.oom || bd.a.oom)
        goto err;
    if (serialize(&bd, blob, bloblen) < 0)
        goto err;
    free(bd.ents);
    buf_free(&bd.strs);
    mime_arena_free(&bd.a);
    mime_free(m);
    return 0;
err:
    free(bd.ents);
    buf_free(&bd.strs);
    mime_arena_free(&bd.a);
    mime_free(m);
    return -1;
}

/* ---- reading -------------------------------------------------------------------------- */

struct view {
    const unsigned char *strs;
    uint32_t strs_len;
};

/* Resolves a reference; -1 unless it lies inside the string area and ends in NUL. */
static int get_str(const struct view *v, const unsigned char *ref, struct mime_str *out)
{
    uint32_t off = get32(ref), len = get32(ref + 4);
    if (off >= v->strs_len || len >= v->strs_len - off || v->strs[off + len] != '\0')
        return -1;
    out->p = (const char *)v->strs + off;
    out->len = len;
    return 0;
}

static int range_ok(uint64_t off, uint64_t len, uint64_t size)
{
    return off <= size && len <= size - off;
}

static int read_part(const struct view *v, const unsigned char *q, size_t index, uint64_t msg_size,
                     struct mime_cache_part *out)
{
    struct mime_str *s[PART_REFS] = {&out->section,    &out->type,       &out->subtype,
                                     &out->charset,    &out->encoding,   &out->filename,
                                     &out->content_id, &out->disposition};
    for (int k = 0; k < PART_REFS; k++) {
        if (get_str(v, q + 8 * k, s[k]) < 0)
            return -1;
    }
    const unsigned char *n = q + PART_REFS * 8;
    out->flags = get32(n);
    out->parent = get32(n + 4);
    out->depth = get32(n + 8);
    out->hdr_off = get64(n + 16);
    out->hdr_len = get64(n + 24);
    out->body_off = get64(n + 32);
    out->body_len = get64(n + 40);
    out->lines = get64(n + 48);
    out->msg_hdr_len = get64(n + 56);
    /* The tree only points backwards, so walking parents always ends. */
    if (index == 0 ? out->parent != MIME_PART_NONE : out->parent >= index)
        return -1;
    if (!range_ok(out->hdr_off, out->hdr_len, msg_size) ||
        !range_ok(out->body_off, out->body_len, msg_size) || out->msg_hdr_len > out->body_len)
        return -1;
    return 0;
}

int mime_cache_open(const void *blob, size_t len, struct mime_cache *out)
{
    const unsigned char *p = blob;
    memset(out, 0, sizeof(*out));
    if (!p || len < HDR_FIXED || memcmp(p, MAGIC, 4) != 0 || get32(p + 4) != MIME_CACHE_VERSION ||
        get32(p + 8) != len || get32(p + 16) != S_COUNT || get32(p + 24) != PART_REC)
        return -1;
    uint32_t nparts = get32(p + 20), soff = get32(p + 28), slen = get32(p + 32);
    if (nparts == 0 || nparts > MAX_ENTRIES ||
        soff != HDR_FIXED + S_COUNT * 8 + (uint64_t)nparts * PART_REC || slen == 0 ||
        (uint64_t)soff + slen != len)
        return -1;
    struct view v = {p + soff, slen};
    out->version = MIME_CACHE_VERSION;
    out->flags = get32(p + 12);
    out->date_tz = (int32_t)get32(p + 36);
    out->date = (int64_t)get64(p + 40);
    out->msg_size = get64(p + 48);
    out->hdr_size = get64(p + 56);
    out->body_size = get64(p + 64);
    out->body_lines = get64(p + 72);
    if (out->hdr_size > out->msg_size || out->body_size != out->msg_size - out->hdr_size)
        return -1;
    struct mime_str *s[S_COUNT] = {
        &out->envelope,     &out->bodystructure, &out->body,       &out->subject,
        &out->base_subject, &out->from,          &out->to,         &out->cc,
        &out->message_id,   &out->in_reply_to,   &out->references, &out->from_name,
        &out->from_mailbox, &out->from_host,     &out->to_name,    &out->to_mailbox,
        &out->cc_mailbox};
    for (int i = 0; i < S_COUNT; i++) {
        if (get_str(&v, p + HDR_FIXED + 8 * i, s[i]) < 0)
            return -1;
    }
    out->base = p;
    out->len = len;
    out->nparts = nparts;
    /* Check every part now so that mime_cache_part never sees a bad record. */
    for (uint32_t i = 0; i < nparts; i++) {
        struct mime_cache_part part;
        if (read_part(&v, p + HDR_FIXED + S_COUNT * 8 + (size_t)i * PART_REC, i, out->msg_size,
                      &part) < 0) {
            memset(out, 0, sizeof(*out));
            return -1;
        }
    }
    return 0;
}

int mime_cache_part(const struct mime_cache *c, size_t i, struct mime_cache_part *out)
{
    if (!c->base || i >= c->nparts)
        return -1;
    uint32_t soff = get32(c->base + 28);
    struct view v = {c->base + soff, get32(c->base + 32)};
    return read_part(&v, c->base + HDR_FIXED + S_COUNT * 8 + i * PART_REC, i, c->msg_size, out);
}

long mime_cache_find(const struct mime_cache *c, const char *section, size_t len,
                     struct mime_cache_part *out)
{
    for (size_t i = 0; i < c->nparts; i++) {
        if (mime_cache_part(c, i, out) < 0)
            return -1;
        if (out->section.len == len && memcmp(out->section.p, section, len) == 0)
            return (long)i;
    }
    return -1;
}
