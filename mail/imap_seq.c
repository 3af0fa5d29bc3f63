/*
 * imap_seq.c — sequence sets (RFC 3501 §9 sequence-set, RFC 5182 "$") and strict number
 * parsing.
 *
 * A set is kept as sorted, merged, non-overlapping ranges so that membership is a binary
 * search and iteration never visits a number twice, whatever order or overlap the client
 * used ("5,1:3,2" is {1:3, 5}). '*' means "the largest number in use", which the parser
 * cannot know, so ranges with '*' are kept apart until imap_seqset_resolve gets the
 * mailbox's maximum. The range array is sized from the comma count before parsing, so
 * parsing does one allocation and never grows.
 */
#include <stdlib.h>
#include <string.h>

#include "mail/imap_parse.h"

static int parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned d;
        if (s[i] < '0' || s[i] > '9')
            return -1;
        d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int imap_parse_nz_number(const char *s, size_t len, uint32_t *out)
{
    uint64_t v;

    if (parse_u64(s, len, UINT32_MAX, &v) < 0 || v == 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int imap_parse_number64(const char *s, size_t len, uint64_t *out)
{
    return parse_u64(s, len, IMAP_NUMBER64_MAX, out);
}

/* One seq-number ("*" or nz-number) at s[0..len). */
static int parse_seq_number(const char *s, size_t len, uint32_t *out, char *err, size_t errlen)
{
    uint64_t v;

    if (len == 1 && s[0] == '*') {
        *out = IMAP_SEQ_STAR;
        return 0;
    }
    if (parse_u64(s, len, UINT64_MAX / 16, &v) == 0 && v == 0) {
        imap_seterr(err, errlen, "Invalid sequence set: 0 is not a valid number");
        return -1;
    }
    if (imap_parse_nz_number(s, len, out) < 0) {
        bool digits = len > 0 && strspn(s, "0123456789") >= len;
        imap_seterr(err, errlen,
                    digits ? "Invalid sequence set: number too large" : "Invalid sequence set");
        return -1;
    }
    return 0;
}

static int range_cmp(const void *a, const void *b)
{
    const struct imap_seq_range *x = a, *y = b;

    if (x->lo != y->lo)
        return x->lo < y->lo ? -1 : 1;
    return x->hi < y->hi ? -1 : (x->hi > y->hi);
}

/* Sorts and merges r[0..n) (no '*' in them); returns the new count. */
static size_t normalize(struct imap_seq_range *r, size_t n)
{
    size_t out = 0;

    if (n < 2)
        return n;
    qsort(r, n, sizeof(*r), range_cmp);
    for (size_t i = 1; i < n; i++) {
        struct imap_seq_range *cur = &r[out];
        /* Adjacent ranges merge too; the hi+1 is done in 64 bits for hi = 4294967295. */
        if ((uint64_t)r[i].lo <= (uint64_t)cur->hi + 1) {
            if (r[i].hi > cur->hi)
                cur->hi = r[i].hi;
        } else {
            r[++out] = r[i];
        }
    }
    return out + 1;
}

/* Parses the comma-separated ranges of s into r (room for `cap`); concrete ranges fill r
 * from the front, '*' ranges from the back. */
static int parse_ranges(const char *s, size_t len, struct imap_seq_range *r, size_t cap,
                        size_t *nconc, size_t *nstar, char *err, size_t errlen)
{
    size_t i = 0, c = 0, st = 0;

    while (i <= len) {
        size_t j = i, colon = SIZE_MAX;
        uint32_t a, b;
        while (j < len && s[j] != ',') {
            if (s[j] == ':' && colon == SIZE_MAX)
                colon = j;
            j++;
        }
        if (colon == SIZE_MAX) {
            if (parse_seq_number(s + i, j - i, &a, err, errlen) < 0)
                return -1;
            b = a;
        } else if (parse_seq_number(s + i, colon - i, &a, err, errlen) < 0 ||
                   parse_seq_number(s + colon + 1, j - colon - 1, &b, err, errlen) < 0) {
            return -1;
        }
        if (a == IMAP_SEQ_STAR || b == IMAP_SEQ_STAR) {
            /* Kept as {n, *} or {*, *}: "*:4" and "4:*" mean the same range. */
            uint32_t other = a == IMAP_SEQ_STAR ? b : a;
            r[cap - 1 - st].lo = other;
            r[cap - 1 - st].hi = IMAP_SEQ_STAR;
            st++;
        } else {
            r[c].lo = a < b ? a : b;
            r[c].hi = a < b ? b : a;
            c++;
        }
        i = j + 1;
    }
    *nconc = c;
    *nstar = st;
    return 0;
}

int imap_seqset_parse(struct imap_arena *a, const char *s, size_t len, unsigned flags,
                      struct imap_seqset *out, char *err, size_t errlen)
{
    size_t cap = 1, c, st;
    struct imap_seq_range *r;

    memset(out, 0, sizeof(*out));
    if (len == 1 && s[0] == '$') {
        if (!(flags & IMAP_SEQ_ALLOW_DOLLAR)) {
            imap_seterr(err, errlen, "Invalid sequence set: $ is not allowed here");
            return -1;
        }
        out->dollar = true;
        return 0;
    }
    if (len == 0) {
        imap_seterr(err, errlen, "Empty sequence set");
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        cap += s[i] == ',';
    r = a ? imap_arena_alloc(a, cap * sizeof(*r)) : calloc(cap, sizeof(*r));
    if (!r) {
        imap_seterr(err, errlen, "Out of memory");
        return -1;
    }
    if (parse_ranges(s, len, r, cap, &c, &st, err, errlen) < 0)
        goto err;
    memmove(r + c, r + cap - st, st * sizeof(*r));
    out->r = r;
    out->n = normalize(r, c);
    if (out->n != c)
        memmove(r + out->n, r + c, st * sizeof(*r));
    out->n += st;
    out->nstar = st;
    out->owned = a == NULL;
    return 0;
err:
    if (!a)
        free(r);
    return -1;
}

void imap_seqset_resolve(struct imap_seqset *set, uint32_t max)
{
    size_t base = set->n - set->nstar;

    if (max == 0) {
        set->n = normalize(set->r, base);
        set->nstar = 0;
        return;
    }
    for (size_t i = base; i < set->n; i++) {
        uint32_t other = set->r[i].lo == IMAP_SEQ_STAR ? max : set->r[i].lo;
        set->r[i].lo = other < max ? other : max;
        set->r[i].hi = other < max ? max : other;
    }
    set->n = normalize(set->r, set->n);
    set->nstar = 0;
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n)
{
    size_t lo = 0, hi = set->n - set->nstar;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (n < set->r[mid].lo)
            hi = mid;
        else if (n > set->r[mid].hi)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

uint64_t imap_seqset_count(const struct imap_seqset *set)
{
    uint64_t total = 0;

    for (size_t i = 0; i < set->n - set->nstar; i++)
        total += (uint64_t)set->r[i].hi - set->r[i].lo + 1;
    return total;
}

uint32_t imap_seqset_max(const struct imap_seqset *set)
{
    size_t n = set->n - set->nstar;

    return n ? set->r[n - 1].hi : 0;
}

bool imap_seqset_next(const struct imap_seqset *set, struct imap_seqset_iter *it, uint32_t *out)
{
    size_t n = set->n - set->nstar;

    if (it->i >= n)
        return false;
    if (it->next == 0)
        it->next = set->r[it->i].lo;
    *out = (uint32_t)it->next;
    if (it->next >= set->r[it->i].hi) {
        it->i++;
        it->next = 0;
    } else {
        it->next++;
    }
    return true;
}

/* Appends text to buf as far as it fits; *pos counts what would have been written. */
static void put(char *buf, size_t size, size_t *pos, const char *text, size_t n)
{
    for (size_t i = 0; i < n; i++, (*pos)++)
        if (*pos + 1 < size)
            buf[*pos] = text[i];
}

static void put_num(char *buf, size_t size, size_t *pos, uint32_t v)
{
    char tmp[12];
    size_t n = 0;

    if (v == IMAP_SEQ_STAR) {
        put(buf, size, pos, "*", 1);
        return;
    }
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(buf, size, pos, tmp + sizeof(tmp) - n, n);
}

size_t imap_seqset_format(const struct imap_seqset *set, char *buf, size_t size)
{
    size_t pos = 0;

    if (set->dollar)
        put(buf, size, &pos, "$", 1);
    for (size_t i = 0; i < set->n; i++) {
        if (i)
            put(buf, size, &pos, ",", 1);
        put_num(buf, size, &pos, set->r[i].lo);
        if (set->r[i].hi != set->r[i].lo) {
            put(buf, size, &pos, ":", 1);
            put_num(buf, size, &pos, set->r[i].hi);
        }
    }
    if (size)
        buf[pos < size ? pos : size - 1] = 0;
    return pos;
}

void imap_seqset_free(struct imap_seqset *set)
{
    if (set->owned)
        free(set->r);
    memset(set, 0, sizeof(*set));
}
