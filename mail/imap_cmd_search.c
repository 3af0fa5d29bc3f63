/*
 * imap_cmd_search.c — SEARCH / UID SEARCH (RFC 3501 §6.4.4, RFC 9051 §6.4.4) with ESEARCH
 * results (RFC 4731), SEARCHRES "$" (RFC 5182), MODSEQ (RFC 7162) and YOUNGER/OLDER
 * (RFC 5032), plus the evaluator SORT and THREAD share (declared in imap.h).
 *
 * Cost matters more than anything here: SEARCH runs over whole mailboxes. The AST is
 * reordered once so every AND/OR looks at what the view already holds (flags, UIDs,
 * sizes, dates) before anything that reads the structure cache, and at the cache before
 * the message bytes; a message's cache and bytes are read at most once, and only when a
 * key still undecided needs them. Strings are matched case-insensitively on UTF-8 after a
 * simple case fold applied once to the needle and once per message to the text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mail/imap.h"

/* What a key needs, cheapest first: the order AND/OR children are evaluated in. */
enum imap_sk_cost { IMAP_COST_VIEW, IMAP_COST_CACHE, IMAP_COST_HEADER, IMAP_COST_BODY };

/* ---- sets of numbers ------------------------------------------------------------------ */

int imap_seqset_from_numbers(const uint32_t *v, size_t n, struct imap_seqset *out)
{
    size_t nr = 0;

    memset(out, 0, sizeof(*out));
    out->owned = true;
    if (n == 0)
        return 0;
    if (!(out->r = malloc(n * sizeof(*out->r))))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (nr && (uint64_t)out->r[nr - 1].hi + 1 >= v[i]) {
            if (v[i] > out->r[nr - 1].hi)
                out->r[nr - 1].hi = v[i];
            continue;
        }
        out->r[nr].lo = out->r[nr].hi = v[i];
        nr++;
    }
    out->n = nr;
    return 0;
}

char *imap_numbers_format(const uint32_t *v, size_t n)
{
    struct imap_seqset set;
    char *str = NULL;

    if (imap_seqset_from_numbers(v, n, &set) < 0)
        return NULL;
    size_t len = imap_seqset_format(&set, NULL, 0);
    if ((str = malloc(len + 1)))
        imap_seqset_format(&set, str, len + 1);
    imap_seqset_free(&set);
    return str;
}

bool imap_search_charset_ok(const char *charset)
{
    return !charset || strcasecmp(charset, "UTF-8") == 0 || strcasecmp(charset, "US-ASCII") == 0;
}

/* ---- case folding ---------------------------------------------------------------------- */

/* Lower case for the scripts mail is mostly written in (Latin, Greek, Cyrillic): enough for
 * "case-insensitive" SEARCH without a Unicode table. */
static uint32_t imap_fold_cp(uint32_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c + 32;
    if (c < 0x80)
        return c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return c + 32;
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
        return c | 1;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
        return (c & 1) ? c + 1 : c;
    if (c == 0x178)
        return 0xFF;
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
        return c + 32;
    if (c >= 0x410 && c <= 0x42F)
        return c + 32;
    if (c >= 0x400 && c <= 0x40F)
        return c + 80;
    return c;
}

/* Decodes one UTF-8 sequence at s (n bytes left); 0 when it is not a valid one. */
static size_t imap_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;

    if (len == 0 || s[0] > 0xF4 || len > n)
        return 0;
    uint32_t c = s[0] & (0x3F >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)))
        return 0;
    *cp = c;
    return len;
}

static void imap_utf8_put(struct buf *out, uint32_t c)
{
    char b[4];

    if (c < 0x800) {
        b[0] = (char)(0xC0 | (c >> 6));
        b[1] = (char)(0x80 | (c & 0x3F));
        buf_put(out, b, 2);
    } else {
        b[0] = (char)(0xE0 | (c >> 12));
        b[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        b[2] = (char)(0x80 | (c & 0x3F));
        buf_put(out, b, 3);
    }
}

/* Appends s folded: lower case, line breaks dropped (so folded header lines match as
 * unfolded ones), bytes that are not UTF-8 kept as they are. */
static void imap_fold(const char *s, size_t len, struct buf *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        uint32_t c;
        size_t n;
        if (p[i] < 0x80) {
            if (p[i] != '\r' && p[i] != '\n')
                buf_putc(out, (char)imap_fold_cp(p[i]));
            i++;
        } else if ((n = imap_utf8_decode(p + i, len - i, &c)) == 0) {
            buf_putc(out, (char)p[i++]);
        } else {
            uint32_t f = imap_fold_cp(c);
            if (f == c || f >= 0x10000)
                buf_put(out, p + i, n);
            else
                imap_utf8_put(out, f);
            i += n;
        }
    }
    if (!out->p)
        buf_put(out, "", 0);
}

static bool imap_contains(const char *hay, size_t hlen, const char *needle)
{
    size_t n = strlen(needle);
    return n == 0 || (hay && memmem(hay, hlen, needle, n) != NULL);
}

/* Does raw (not folded) text contain the folded needle? */
static bool imap_fold_contains(const char *s, size_t len, const char *needle)
{
    struct buf b = {0};
    bool found;

    imap_fold(s, len, &b);
    found = imap_contains(b.p, b.len, needle);
    buf_free(&b);
    return found;
}

/* ---- one message --------------------------------------------------------------------- */

struct imap_sx {
    struct imap_session *s;
    const struct imap_msg *m;
    size_t idx;
    int64_t now;
    int rc;                      /* a store failure other than "gone": the search fails */
    int cache_state, body_state; /* 0 not read, 1 read, -1 unavailable */
    void *blob;
    struct mime_cache cache;
    char *body;
    size_t blen;
    bool hdr_done, text_done;
    struct buf hdr_text, body_text; /* folded */
    struct imap_pre *pre;           /* NULL: no read-ahead */
};

static void imap_sx_reset(struct imap_sx *x)
{
    free(x->blob);
    free(x->body);
    buf_free(&x->hdr_text);
    buf_free(&x->body_text);
    x->blob = NULL;
    x->body = NULL;
    x->cache_state = x->body_state = 0;
    x->hdr_done = x->text_done = false;
}

static void imap_sx_fail(struct imap_sx *x, int rc)
{
    /* A message expunged meanwhile simply does not match. */
    if (rc != STORE_ENOTFOUND && x->rc == 0)
        x->rc = rc;
}

static bool imap_sx_cache(struct imap_sx *x)
{
    if (x->cache_state == 0) {
        int rc = imap_msg_cache_at(x->s, x->pre, x->idx, &x->blob, &x->cache);
        x->cache_state = rc == STORE_OK ? 1 : -1;
        if (rc != STORE_OK)
            imap_sx_fail(x, rc);
    }
    return x->cache_state > 0;
}

static bool imap_sx_body(struct imap_sx *x)
{
    struct store_err err;

    if (x->body_state == 0) {
        int rc = store_item_body(x->s->su, x->m->id, &x->body, &x->blen, &err);
        x->body_state = rc == STORE_OK ? 1 : -1;
        if (rc != STORE_OK)
            imap_sx_fail(x, rc);
    }
    return x->body_state > 0;
}

static size_t imap_sx_hdr_len(struct imap_sx *x)
{
    return mime_header_size(x->body, x->blen);
}

/* The whole header block, encoded words decoded, folded (for TEXT). */
static bool imap_sx_hdr_text(struct imap_sx *x)
{
    if (!x->hdr_done) {
        struct buf dec = {0};
        if (!imap_sx_body(x))
            return false;
        mime_header_decode(x->body, imap_sx_hdr_len(x), &dec);
        imap_fold(dec.p ? dec.p : "", dec.len, &x->hdr_text);
        buf_free(&dec);
        x->hdr_done = true;
    }
    return true;
}

/* One text part, decoded to UTF-8 and folded, appended to the body text. */
static void imap_sx_add_part(struct imap_sx *x, const struct mime_cache_part *p)
{
    struct buf dec = {0}, utf = {0};
    const char *raw = x->body + p->body_off;

    if (p->body_off + p->body_len > x->blen)
        return;
    if (mime_decode_cte(p->encoding.p, raw, p->body_len, &dec) < 0) {
        buf_free(&dec);
        buf_put(&dec, raw, p->body_len); /* unknown encoding: search the raw bytes */
    }
    if (p->charset.len)
        mime_charset_to_utf8(p->charset.p, dec.p ? dec.p : "", dec.len, &utf);
    else
        mime_utf8_clean(dec.p ? dec.p : "", dec.len, &utf);
    imap_fold(utf.p ? utf.p : "", utf.len, &x->body_text);
    buf_putc(&x->body_text, '\0'); /* no match across parts */
    buf_free(&dec);
    buf_free(&utf);
}

/* The header of an attached message/rfc822, decoded and folded, into the body text. */
static void imap_sx_add_header(struct imap_sx *x, const struct mime_cache_part *p)
{
    struct buf dec = {0};

    if (p->body_off + p->msg_hdr_len > x->blen)
        return;
    mime_header_decode(x->body + p->body_off, p->msg_hdr_len, &dec);
    imap_fold(dec.p ? dec.p : "", dec.len, &x->body_text);
    buf_putc(&x->body_text, '\0');
    buf_free(&dec);
}

static bool imap_sx_body_text(struct imap_sx *x)
{
    struct mime_cache_part p;

    if (x->text_done)
        return true;
    if (!imap_sx_cache(x) || !imap_sx_body(x))
        return false;
    for (size_t i = 0; i < x->cache.nparts; i++) {
        if (mime_cache_part(&x->cache, i, &p) < 0)
            break;
        /* Leaf text parts only (the root of a single-part message is also its part "1"),
         * and the header of an attached message, which is part of its body too. */
        if (p.flags & MIME_PART_MESSAGE)
            imap_sx_add_header(x, &p);
        else if ((p.flags & MIME_PART_TEXT) && !(p.flags & (MIME_PART_ROOT | MIME_PART_MULTIPART)))
            imap_sx_add_part(x, &p);
    }
    if (!x->body_text.p)
        buf_put(&x->body_text, "", 0);
    x->text_done = true;
    return true;
}

/* ---- keys ------------------------------------------------------------------------------ */

static bool imap_sk_keyword(const struct imap_msg *m, const char *kw)
{
    const char *p = m->keywords;
    size_t n = strlen(kw);

    if (strcasecmp(kw, "$Forwarded") == 0)
        return m->flags & STORE_FLAG_FORWARDED;
    while (p && *p) {
        size_t len = strcspn(p, " ");
        if (len == n && strncasecmp(p, kw, n) == 0)
            return true;
        p += len;
        p += *p == ' ';
    }
    return false;
}

static bool imap_sk_flag(const struct imap_msg *m, unsigned flag)
{
    if (flag == IMAP_FLAG_RECENT)
        return false; /* this server never reports \Recent */
    return (m->flags & imap_flags_to_store(flag)) != 0;
}

static bool imap_sk_set(struct imap_sx *x, const struct imap_search_key *k, bool uid)
{
    if (k->u.seq.dollar)
        return x->s->saved_valid && imap_seqset_contains(&x->s->saved, x->m->uid);
    return imap_seqset_contains(&k->u.seq, uid ? x->m->uid : (uint32_t)(x->idx + 1));
}

static int32_t imap_day(int64_t t)
{
    return (int32_t)(t >= 0 ? t / 86400 : -((-t + 86399) / 86400));
}

static bool imap_sk_date(enum imap_sk type, int32_t day, int32_t want)
{
    switch (type) {
    case IMAP_SK_BEFORE:
    case IMAP_SK_SENTBEFORE:
        return day < want;
    case IMAP_SK_ON:
    case IMAP_SK_SENTON:
        return day == want;
    default:
        return day >= want;
    }
}

/* The Date: header, as the day it names in its own zone (RFC 3501: time and zone
 * disregarded). Messages without a usable Date: match no SENT* key. */
static bool imap_sk_sent(struct imap_sx *x, const struct imap_search_key *k)
{
    if (!imap_sx_cache(x) || !(x->cache.flags & MIME_CACHE_DATE_VALID))
        return false;
    return imap_sk_date(k->type, imap_day(x->cache.date + (int64_t)x->cache.date_tz * 60),
                        k->u.day);
}

static const struct mime_str *imap_cache_field(const struct mime_cache *c, const char *name)
{
    if (strcasecmp(name, "SUBJECT") == 0)
        return &c->subject;
    if (strcasecmp(name, "FROM") == 0)
        return &c->from;
    if (strcasecmp(name, "TO") == 0)
        return &c->to;
    if (strcasecmp(name, "CC") == 0)
        return &c->cc;
    return NULL;
}

static bool imap_cache_field_name(const char *name)
{
    return strcasecmp(name, "SUBJECT") == 0 || strcasecmp(name, "FROM") == 0 ||
           strcasecmp(name, "TO") == 0 || strcasecmp(name, "CC") == 0;
}

/* HEADER name value: every field of that name, decoded; "" matches its mere presence. */
static bool imap_sk_header_block(struct imap_sx *x, const char *name, const char *needle)
{
    struct mime_field f;
    size_t pos = 0, hlen, nlen = strlen(name);

    if (!imap_sx_body(x))
        return false;
    hlen = imap_sx_hdr_len(x);
    while (mime_header_next(x->body, hlen, &pos, &f)) {
        if (f.name_len != nlen || strncasecmp(f.name, name, nlen) != 0)
            continue;
        if (!*needle)
            return true;
        struct buf dec = {0};
        mime_header_decode(f.value, f.value_len, &dec);
        bool found = imap_fold_contains(dec.p ? dec.p : "", dec.len, needle);
        buf_free(&dec);
        if (found)
            return true;
    }
    return false;
}

static bool imap_sk_header(struct imap_sx *x, const struct imap_search_key *k)
{
    const char *needle = k->u.hdr.value;

    if (*needle && imap_cache_field_name(k->u.hdr.name)) {
        if (!imap_sx_cache(x))
            return false;
        const struct mime_str *v = imap_cache_field(&x->cache, k->u.hdr.name);
        return imap_fold_contains(v->p, v->len, needle);
    }
    return imap_sk_header_block(x, k->u.hdr.name, needle);
}

static bool imap_sk_match(struct imap_sx *x, const struct imap_search_key *k);

static bool imap_sk_bool(struct imap_sx *x, const struct imap_search_key *k)
{
    const struct imap_search_key *c = k->child;

    switch (k->type) {
    case IMAP_SK_AND:
        for (; c; c = c->next)
            if (!imap_sk_match(x, c))
                return false;
        return true;
    case IMAP_SK_OR:
        for (; c; c = c->next)
            if (imap_sk_match(x, c))
                return true;
        return false;
    default: /* NOT */
        return c && !imap_sk_match(x, c);
    }
}

static bool imap_sk_text(struct imap_sx *x, const struct imap_search_key *k)
{
    if (k->type == IMAP_SK_TEXT && imap_sx_hdr_text(x) &&
        imap_contains(x->hdr_text.p, x->hdr_text.len, k->u.str))
        return true;
    return imap_sx_body_text(x) && imap_contains(x->body_text.p, x->body_text.len, k->u.str);
}

static bool imap_sk_match(struct imap_sx *x, const struct imap_search_key *k)
{
    const struct imap_msg *m = x->m;
    char id[32];

    if (x->rc)
        return false;
    switch (k->type) {
    case IMAP_SK_ALL:
        return true;
    case IMAP_SK_AND:
    case IMAP_SK_OR:
    case IMAP_SK_NOT:
        return imap_sk_bool(x, k);
    case IMAP_SK_SEQSET:
    case IMAP_SK_UID:
        return imap_sk_set(x, k, k->type == IMAP_SK_UID);
    case IMAP_SK_FLAG:
        return imap_sk_flag(m, k->u.flag);
    case IMAP_SK_KEYWORD:
        return imap_sk_keyword(m, k->u.str);
    case IMAP_SK_HEADER:
        return imap_sk_header(x, k);
    case IMAP_SK_BODY:
    case IMAP_SK_TEXT:
        return imap_sk_text(x, k);
    case IMAP_SK_BEFORE:
    case IMAP_SK_ON:
    case IMAP_SK_SINCE:
        return imap_sk_date(k->type, imap_day(m->idate), k->u.day);
    case IMAP_SK_SENTBEFORE:
    case IMAP_SK_SENTON:
    case IMAP_SK_SENTSINCE:
        return imap_sk_sent(x, k);
    case IMAP_SK_LARGER:
        return (uint64_t)m->size > k->u.num;
    case IMAP_SK_SMALLER:
        return (uint64_t)m->size < k->u.num;
    case IMAP_SK_YOUNGER:
        return x->now - m->idate <= (int64_t)k->u.num;
    case IMAP_SK_OLDER:
        return x->now - m->idate > (int64_t)k->u.num;
    case IMAP_SK_MODSEQ:
        return IMAP_MODSEQ(m->modseq) >= k->u.modseq.value;
    case IMAP_SK_EMAILID:
        snprintf(id, sizeof(id), "M%lld", (long long)m->id);
        return strcmp(id, k->u.str) == 0;
    default: /* THREADID: no thread ids here */
        return false;
    }
}

/* ---- preparing the AST ------------------------------------------------------------------ */

static const char *imap_fold_str(struct imap_cmd *cmd, const char *s)
{
    struct buf b = {0};
    const char *out;

    imap_fold(s, strlen(s), &b);
    out = b.oom ? NULL : imap_arena_strndup(&cmd->arena, b.p, b.len);
    buf_free(&b);
    return out ? out : s;
}

static enum imap_sk_cost imap_sk_leaf_cost(const struct imap_search_key *k)
{
    switch (k->type) {
    case IMAP_SK_SENTBEFORE:
    case IMAP_SK_SENTON:
    case IMAP_SK_SENTSINCE:
        return IMAP_COST_CACHE;
    case IMAP_SK_HEADER:
        return *k->u.hdr.value && imap_cache_field_name(k->u.hdr.name) ? IMAP_COST_CACHE
                                                                       : IMAP_COST_HEADER;
    case IMAP_SK_BODY:
    case IMAP_SK_TEXT:
        return IMAP_COST_BODY;
    default:
        return IMAP_COST_VIEW;
    }
}

/* Stable insertion sort of a child list by cost; tmp and c have room for n entries. */
static struct imap_search_key *imap_sk_sort(struct imap_search_key *head, const int *cost, size_t n,
                                            struct imap_search_key **tmp, int *c)
{
    for (size_t i = 0; i < n; i++, head = head->next) {
        size_t j = i;
        while (j > 0 && c[j - 1] > cost[i]) {
            tmp[j] = tmp[j - 1];
            c[j] = c[j - 1];
            j--;
        }
        tmp[j] = head;
        c[j] = cost[i];
    }
    for (size_t i = 0; i < n; i++)
        tmp[i]->next = i + 1 < n ? tmp[i + 1] : NULL;
    return n ? tmp[0] : NULL;
}

/* Resolves sets, folds strings, and puts cheap children first. Returns the subtree's cost
 * (its most expensive key). */
static int imap_sk_prepare(struct imap_session *s, struct imap_cmd *cmd, struct imap_search_key *k)
{
    struct imap_mbox *mb = s->mbox;
    int worst = IMAP_COST_VIEW;

    if (k->type == IMAP_SK_AND || k->type == IMAP_SK_OR || k->type == IMAP_SK_NOT) {
        size_t n = k->nchildren, i = 0;
        /* Two cost arrays (the children's, and the sort's scratch) and the sort's list. */
        int *cost = imap_arena_alloc(&cmd->arena, 2 * (n ? n : 1) * sizeof(int));
        struct imap_search_key **tmp = imap_arena_alloc(&cmd->arena, (n ? n : 1) * sizeof(*tmp));
        for (struct imap_search_key *c = k->child; c; c = c->next, i++) {
            int cc = imap_sk_prepare(s, cmd, c);
            if (cost && i < n)
                cost[i] = cc;
            worst = cc > worst ? cc : worst;
        }
        if (cost && tmp && i == n)
            k->child = imap_sk_sort(k->child, cost, n, tmp, cost + n);
        return worst;
    }
    if (k->type == IMAP_SK_SEQSET && !k->u.seq.dollar)
        imap_seqset_resolve(&k->u.seq, (uint32_t)mb->n);
    else if (k->type == IMAP_SK_UID && !k->u.seq.dollar)
        imap_seqset_resolve(&k->u.seq, mb->n ? mb->msgs[mb->n - 1].uid : mb->uidnext - 1);
    else if (k->type == IMAP_SK_HEADER)
        k->u.hdr.value = imap_fold_str(cmd, k->u.hdr.value);
    else if (k->type == IMAP_SK_BODY || k->type == IMAP_SK_TEXT)
        k->u.str = imap_fold_str(cmd, k->u.str);
    return imap_sk_leaf_cost(k);
}

/* ---- the shared entry points ------------------------------------------------------------ */

int imap_search_criteria(struct imap_session *s, struct imap_cmd *cmd, const char *charset,
                         const struct imap_arg *args, size_t nargs, struct imap_search *q)
{
    char err[256];

    /* Results are about the mailbox as it is now (see imap_cmd_fetch): catch up first, so
     * sequence sets and '*' resolve against what the client has just been told. */
    imap_mbox_sync(s, cmd->uid ? IMAP_SYNC_EXPUNGE : 0);
    if (imap_search_parse(&cmd->arena, args, nargs, IMAP_SEARCH_DOLLAR, q, err, sizeof(err)) < 0) {
        imap_bad(s, cmd, "%s", err);
        return -1;
    }
    if (!charset)
        charset = q->charset;
    if (!imap_search_charset_ok(charset)) {
        imap_no(s, cmd, "[BADCHARSET (US-ASCII UTF-8)] Unsupported charset");
        return -1;
    }
    if (q->uses_modseq)
        s->enabled |= IMAP_EN_CONDSTORE; /* RFC 7162 §3.1: a CONDSTORE-enabling command */
    imap_sk_prepare(s, cmd, q->root);
    return 0;
}

int imap_search_run(struct imap_session *s, const struct imap_search *q, size_t **out, size_t *n,
                    uint64_t *modseq)
{
    struct imap_mbox *mb = s->mbox;
    struct imap_sx x = {.s = s, .now = (int64_t)time(NULL)};
    size_t *res = NULL, cap = 0;

    x.pre = imap_pre_new(); /* NULL (no memory): every blob is read one by one */

    *out = NULL;
    *n = 0;
    if (modseq)
        *modseq = 0;
    for (size_t i = 0; i < mb->n && x.rc == 0; i++) {
        if (mb->msgs[i].expunged)
            continue;
        x.m = &mb->msgs[i];
        x.idx = i;
        bool hit = imap_sk_match(&x, q->root);
        imap_sx_reset(&x);
        if (!hit || x.rc)
            continue;
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            size_t *p = realloc(res, ncap * sizeof(*p));
            if (!p) {
                x.rc = STORE_ENOMEM;
                break;
            }
            res = p;
            cap = ncap;
        }
        res[(*n)++] = i;
        if (modseq && IMAP_MODSEQ(mb->msgs[i].modseq) > *modseq)
            *modseq = IMAP_MODSEQ(mb->msgs[i].modseq);
    }
    imap_pre_free(x.pre);
    if (x.rc) {
        free(res);
        *n = 0;
        return x.rc;
    }
    *out = res;
    return STORE_OK;
}

/* ---- SEARCH's answer ----------------------------------------------------------------- */

/* RFC 5182 §2.4: with MIN and/or MAX but neither ALL nor COUNT, only those are saved. */
static int imap_search_save(struct imap_session *s, const struct imap_search *q,
                            const uint32_t *uids, size_t n)
{
    uint32_t mm[2];
    size_t k = 0;

    imap_seqset_free(&s->saved);
    s->saved_valid = false;
    if (n && !(q->ret & (IMAP_SRET_ALL | IMAP_SRET_COUNT)) &&
        (q->ret & (IMAP_SRET_MIN | IMAP_SRET_MAX))) {
        if (q->ret & IMAP_SRET_MIN)
            mm[k++] = uids[0];
        if ((q->ret & IMAP_SRET_MAX) && (k == 0 || uids[n - 1] != mm[0]))
            mm[k++] = uids[n - 1];
        uids = mm;
        n = k;
    }
    if (imap_seqset_from_numbers(uids, n, &s->saved) < 0)
        return -1;
    s->saved_valid = true;
    return 0;
}

static void imap_search_esearch(struct imap_session *s, struct imap_cmd *cmd,
                                const struct imap_search *q, const uint32_t *v, size_t n,
                                uint64_t modseq)
{
    unsigned ret = q->ret;

    net_printf(s->c, "* ESEARCH (TAG ");
    imap_out_string(s, cmd->tag);
    net_printf(s->c, ")%s", cmd->uid ? " UID" : "");
    if ((ret & IMAP_SRET_MIN) && n)
        net_printf(s->c, " MIN %u", v[0]);
    if ((ret & IMAP_SRET_MAX) && n)
        net_printf(s->c, " MAX %u", v[n - 1]);
    if (ret & IMAP_SRET_COUNT)
        net_printf(s->c, " COUNT %zu", n);
    if ((ret & IMAP_SRET_ALL) && n) {
        char *all = imap_numbers_format(v, n);
        if (all)
            net_printf(s->c, " ALL %s", all);
        free(all);
    }
    if (q->uses_modseq && n)
        net_printf(s->c, " MODSEQ %llu", (unsigned long long)modseq);
    net_printf(s->c, "\r\n");
}

static void imap_search_plain(struct imap_session *s, const struct imap_search *q,
                              const uint32_t *v, size_t n, uint64_t modseq)
{
    net_printf(s->c, "* SEARCH");
    for (size_t i = 0; i < n; i++)
        net_printf(s->c, " %u", v[i]);
    if (q->uses_modseq && n)
        net_printf(s->c, " (MODSEQ %llu)", (unsigned long long)modseq);
    net_printf(s->c, "\r\n");
}

/* Numbers as the client sees them (sequence numbers or UIDs) and the UIDs for SAVE. */
static int imap_search_answer(struct imap_session *s, struct imap_cmd *cmd, struct imap_search *q,
                              const size_t *idx, size_t n, uint64_t modseq)
{
    uint32_t *v = malloc((n ? n : 1) * sizeof(*v)), *uids = malloc((n ? n : 1) * sizeof(*v));
    int rc = -1;

    if (!v || !uids)
        goto err;
    for (size_t i = 0; i < n; i++) {
        uids[i] = s->mbox->msgs[idx[i]].uid;
        v[i] = cmd->uid ? uids[i] : (uint32_t)(idx[i] + 1);
    }
    if ((q->ret & IMAP_SRET_SAVE) && imap_search_save(s, q, uids, n) < 0)
        goto err;
    if (!q->esearch && (s->enabled & IMAP_EN_REV2)) {
        q->esearch = true; /* RFC 9051 §6.4.4: IMAP4rev2 answers ESEARCH */
        q->ret = IMAP_SRET_ALL;
    }
    if (!q->esearch)
        imap_search_plain(s, q, v, n, modseq);
    else if (q->ret != IMAP_SRET_SAVE) /* RFC 5182: SAVE alone returns no ESEARCH */
        imap_search_esearch(s, cmd, q, v, n, modseq);
    rc = 0;
err:
    free(v);
    free(uids);
    return rc;
}

void imap_cmd_search(struct imap_session *s, struct imap_cmd *cmd)
{
    struct imap_search q = {0};
    size_t *idx = NULL, n = 0;
    uint64_t modseq = 0;
    int rc;

    if (imap_search_criteria(s, cmd, NULL, cmd->args, cmd->nargs, &q) < 0)
        goto fail;
    if ((rc = imap_search_run(s, &q, &idx, &n, &modseq)) != STORE_OK) {
        imap_store_error(s, cmd, rc, NULL, "SEARCH");
        goto fail;
    }
    if (imap_search_answer(s, cmd, &q, idx, n, modseq) < 0) {
        imap_no(s, cmd, "[SERVERBUG] Out of memory");
        goto fail;
    }
    free(idx);
    imap_ok(s, cmd, "SEARCH completed");
    return;
fail:
    free(idx);
    /* RFC 5182 §2.1: a failed SEARCH ... SAVE leaves "$" empty. q.ret is set by the parser
     * before anything after RETURN can fail. */
    if (q.ret & IMAP_SRET_SAVE) {
        imap_seqset_free(&s->saved);
        s->saved_valid = true;
    }
}
