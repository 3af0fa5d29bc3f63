/*
 * fuzz_mime.c — libFuzzer target for the MIME library: builds the cache blob of arbitrary
 * input, opens it and walks everything a reader would (every part, every section lookup,
 * slicing the input with the part offsets, transfer decoding), and feeds the input to the
 * header-level parsers directly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mime.h"

static void walk_cache(const char *msg, size_t len, const struct mime_cache *c, int strict)
{
    volatile unsigned sum = 0;
    for (size_t i = 0; i < c->nparts; i++) {
        struct mime_cache_part p, q;
        if (mime_cache_part(c, i, &p) < 0)
            abort();
        if (mime_cache_find(c, p.section.p, p.section.len, &q) != (long)i && strict)
            abort(); /* sections must be unique */
        if (p.hdr_off + p.hdr_len > len || p.body_off + p.body_len > len)
            abort();
        if (p.hdr_len)
            sum += (unsigned char)msg[p.hdr_off + p.hdr_len - 1];
        if (p.body_len)
            sum += (unsigned char)msg[p.body_off + p.body_len - 1];
        struct buf out = {0};
        mime_decode_cte(p.encoding.p, msg + p.body_off, p.body_len, &out);
        buf_free(&out);
        if (p.flags & MIME_PART_MESSAGE) {
            struct buf h = {0};
            const char *names[] = {"From", "Subject"};
            mime_header_filter(msg + p.body_off, p.msg_hdr_len, names, 2, 0, &h);
            buf_free(&h);
        }
        sum += (unsigned)strlen(p.type.p) + (unsigned)strlen(p.filename.p);
    }
    if (!strict)
        return;
    if (strlen(c->envelope.p) != c->envelope.len && memchr(c->envelope.p, 0, c->envelope.len))
        abort(); /* IMAP strings never carry NUL */
    if (memchr(c->bodystructure.p, 0, c->bodystructure.len))
        abort();
    (void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    void *blob = NULL;
    size_t bloblen = 0;
    struct mime_cache c;
    if (mime_cache_build(msg, size, &blob, &bloblen) == 0) {
        if (mime_cache_open(blob, bloblen, &c) != 0)
            abort(); /* a blob we built must open */
        if (c.msg_size != size)
            abort();
        walk_cache(msg, size, &c, 1);
        /* A truncated or altered blob must be refused or read safely, never overrun. */
        if (bloblen > 8) {
            struct mime_cache t;
            mime_cache_open(blob, bloblen - 1, &t);
            ((unsigned char *)blob)[size % bloblen] ^= 0x5a;
            if (mime_cache_open(blob, bloblen, &t) == 0 && t.msg_size == size)
                walk_cache(msg, size, &t, 0);
        }
        free(blob);
    }
    /* The header-level parsers on raw input. */
    struct mime_arena a = {0};
    struct mime_addr *ad;
    mime_addr_parse(&a, msg, size, &ad);
    mime_arena_free(&a);
    int64_t t;
    int tz;
    mime_date_parse(msg, size, &t, &tz);
    struct buf b = {0};
    mime_header_decode(msg, size, &b);
    buf_free(&b);
    int reply;
    mime_base_subject(msg, size, &b, &reply);
    buf_free(&b);
    return 0;
}
