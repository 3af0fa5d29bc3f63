/*
 * eas_sync_state.c — the per-device state behind ActiveSync SyncKeys: for each (device,
 * collection) the set of items the device holds (id, the MODSEQ each was sent at, its
 * date), the journal point read so far and the ids still to look at, for the current key
 * and the previous one (a retried request is answered from the previous key's state).
 *
 * Kept in the user's store (store_state, namespace "eas.sync", key "<device>/<folder>")
 * as one compact blob: sorted ids delta-coded as varints, so a device holding tens of
 * thousands of messages costs a few hundred kilobytes at most. Work per Sync follows the
 * change journal (store_changes_since); only a fresh state, a pruned journal or a new
 * FilterType lists the whole folder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eas/eas_pim.h"
#include "eas/eas_sync.h"

#define EAS_STATE_MAGIC   0x45535331u /* "ESS1" */
#define EAS_STATE_MAX_IDS 4000000u    /* refuse blobs claiming more than this */

/* ---- options ------------------------------------------------------------------------ */

void eas_coll_opts_default(struct eas_coll_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->conflict = 1;
    o->deletes_as_moves = 1;
    o->mime_trunc = -1;
    o->trunc25 = -1;
}

void eas_body_prefs_parse(const struct eas_node *n, struct eas_coll_opts *o)
{
    const struct eas_node *bp;
    int first = 1;

    for (bp = eas_child(n, EAS_AIRSYNCBASE_BODYPREFERENCE); bp;
         bp = eas_next(bp, EAS_AIRSYNCBASE_BODYPREFERENCE)) {
        long long type = eas_child_int(bp, EAS_AIRSYNCBASE_TYPE, 0);
        struct eas_body_pref *p;

        if (first) { /* a request's preferences replace the cached ones */
            o->nprefs = 0;
            first = 0;
        }
        if (type < 1 || type > 4 || o->nprefs >= EAS_MAX_PREFS)
            continue;
        p = &o->prefs[o->nprefs++];
        p->type = (int)type;
        p->trunc = eas_child_int(bp, EAS_AIRSYNCBASE_TRUNCATIONSIZE, -1);
        if (p->trunc < 0)
            p->trunc = -1;
        p->all_or_none = eas_child_int(bp, EAS_AIRSYNCBASE_ALLORNONE, 0) == 1;
        p->preview = (int)eas_child_int(bp, EAS_AIRSYNCBASE_PREVIEW, 0);
        if (p->preview < 0 || p->preview > 255)
            p->preview = p->preview < 0 ? 0 : 255;
    }
}

void eas_coll_opts_parse(const struct eas_node *opts, struct eas_coll_opts *o)
{
    long long v;

    if (!opts)
        return;
    if ((v = eas_child_int(opts, EAS_AIRSYNC_FILTERTYPE, -1)) >= 0 && v <= 8)
        o->filter = (int)v;
    if ((v = eas_child_int(opts, EAS_AIRSYNC_CONFLICT, -1)) == 0 || v == 1)
        o->conflict = (int)v;
    if ((v = eas_child_int(opts, EAS_AIRSYNC_MIMESUPPORT, -1)) >= 0 && v <= 2)
        o->mime_support = (int)v;
    if ((v = eas_child_int(opts, EAS_AIRSYNC_MIMETRUNCATION, -1)) >= 0 && v <= 8)
        o->mime_trunc = (int)v;
    if ((v = eas_child_int(opts, EAS_AIRSYNC_TRUNCATION, -1)) >= 0 && v <= 9)
        o->trunc25 = (int)v;
    eas_body_prefs_parse(opts, o);
}

/* MS-ASCMD Truncation / MIMETruncation codes. */
int64_t eas_trunc_code_bytes(int code)
{
    static const int64_t bytes[] = {0, 4096, 5120, 7168, 10240, 20480, 51200, 102400};

    if (code < 0 || code >= (int)(sizeof(bytes) / sizeof(bytes[0])))
        return -1;
    return bytes[code];
}

/* FilterType: 1 day, 3 days, 1 week, 2 weeks, 1 month, and for calendars 3 and 6 months
 * (6, 7; an email client sending them gets those windows too). 8, incomplete tasks, is 1:
 * a completed task's reach (0) falls short of it, anything dated does not. */
int64_t eas_filter_cutoff(int filter, int64_t now)
{
    static const int64_t days[] = {0, 1, 3, 7, 14, 31, 93, 186};

    if (filter == 8)
        return 1;
    if (filter <= 0 || filter > 7)
        return 0;
    return now - days[filter] * 86400;
}

/* ---- snapshots ------------------------------------------------------------------------ */

void eas_snap_free(struct eas_snap *s)
{
    free(s->held);
    free(s->pending);
    memset(s, 0, sizeof(*s));
}

int eas_snap_copy(struct eas_snap *dst, const struct eas_snap *src)
{
    struct eas_snap n = *src;

    n.held = NULL;
    n.pending = NULL;
    n.held_cap = src->nheld;
    n.pending_cap = src->npending;
    if (src->nheld && !(n.held = malloc(src->nheld * sizeof(*n.held))))
        return -1;
    if (src->npending && !(n.pending = malloc(src->npending * sizeof(*n.pending)))) {
        free(n.held);
        return -1;
    }
    if (src->nheld)
        memcpy(n.held, src->held, src->nheld * sizeof(*n.held));
    if (src->npending)
        memcpy(n.pending, src->pending, src->npending * sizeof(*n.pending));
    eas_snap_free(dst);
    *dst = n;
    return 0;
}

/* Index of the first held entry with id >= id. */
static size_t eas_held_lower(const struct eas_snap *s, int64_t id)
{
    size_t lo = 0, hi = s->nheld;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->held[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

struct eas_held *eas_snap_held(const struct eas_snap *s, int64_t id)
{
    size_t i = eas_held_lower(s, id);

    return i < s->nheld && s->held[i].id == id ? &s->held[i] : NULL;
}

int eas_snap_hold(struct eas_snap *s, int64_t id, int64_t modseq, int64_t idate)
{
    size_t i = eas_held_lower(s, id);

    if (i < s->nheld && s->held[i].id == id) {
        s->held[i].modseq = modseq;
        s->held[i].idate = idate;
        return 0;
    }
    if (s->nheld == s->held_cap) {
        size_t cap = s->held_cap ? s->held_cap * 2 : 64;
        struct eas_held *n = realloc(s->held, cap * sizeof(*n));
        if (!n)
            return -1;
        s->held = n;
        s->held_cap = cap;
    }
    memmove(&s->held[i + 1], &s->held[i], (s->nheld - i) * sizeof(*s->held));
    s->held[i] = (struct eas_held){.id = id, .modseq = modseq, .idate = idate};
    s->nheld++;
    return 0;
}

void eas_snap_unhold(struct eas_snap *s, int64_t id)
{
    size_t i = eas_held_lower(s, id);

    if (i < s->nheld && s->held[i].id == id) {
        memmove(&s->held[i], &s->held[i + 1], (s->nheld - i - 1) * sizeof(*s->held));
        s->nheld--;
    }
}

static int eas_pend_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Appends without keeping order; eas_pend_sort restores it. */
static int eas_pend_push(struct eas_snap *s, int64_t id)
{
    if (s->npending == s->pending_cap) {
        size_t cap = s->pending_cap ? s->pending_cap * 2 : 64;
        int64_t *n = realloc(s->pending, cap * sizeof(*n));
        if (!n)
            return -1;
        s->pending = n;
        s->pending_cap = cap;
    }
    s->pending[s->npending++] = id;
    return 0;
}

static void eas_pend_sort(struct eas_snap *s)
{
    size_t o = 0;

    if (s->npending < 2)
        return;
    qsort(s->pending, s->npending, sizeof(*s->pending), eas_pend_cmp);
    for (size_t i = 0; i < s->npending; i++)
        if (o == 0 || s->pending[o - 1] != s->pending[i])
            s->pending[o++] = s->pending[i];
    s->npending = o;
}

int eas_snap_pend(struct eas_snap *s, int64_t id)
{
    size_t lo = 0, hi = s->npending;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->pending[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->npending && s->pending[lo] == id)
        return 0;
    if (eas_pend_push(s, id) < 0)
        return -1;
    memmove(&s->pending[lo + 1], &s->pending[lo], (s->npending - 1 - lo) * sizeof(int64_t));
    s->pending[lo] = id;
    return 0;
}

/* ---- state ---------------------------------------------------------------------------- */

void eas_sync_state_init(struct eas_sync_state *st, int64_t folder_id)
{
    memset(st, 0, sizeof(*st));
    st->folder_id = folder_id;
    eas_coll_opts_default(&st->opts);
}

void eas_sync_state_free(struct eas_sync_state *st)
{
    eas_snap_free(&st->cur);
    eas_snap_free(&st->prev);
    free(st->cids);
    st->cids = NULL;
    st->ncids = 0;
    free(st->supported);
    st->supported = NULL;
    st->nsupported = 0;
}

int eas_sync_cid_add(struct eas_sync_state *st, const char *cid, int64_t item_id)
{
    struct eas_cid *n;

    if (strlen(cid) >= sizeof(n->cid) || st->ncids >= 4096)
        return -1;
    if (!(n = realloc(st->cids, (st->ncids + 1) * sizeof(*n))))
        return -1;
    st->cids = n;
    snprintf(n[st->ncids].cid, sizeof(n->cid), "%s", cid);
    n[st->ncids].item_id = item_id;
    st->ncids++;
    return 0;
}

int64_t eas_sync_cid_find(const struct eas_sync_state *st, const char *cid)
{
    for (size_t i = 0; i < st->ncids; i++)
        if (strcmp(st->cids[i].cid, cid) == 0)
            return st->cids[i].item_id;
    return 0;
}

/* ---- encoding --------------------------------------------------------------------------- */

struct eas_wbuf {
    unsigned char *p;
    size_t len, cap;
    int oom;
};

static void eas_w_bytes(struct eas_wbuf *b, const void *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        unsigned char *np;
        while (cap < b->len + n)
            cap *= 2;
        if (!(np = realloc(b->p, cap))) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void eas_w_var(struct eas_wbuf *b, uint64_t v)
{
    unsigned char t[10];
    size_t n = 0;

    do {
        t[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v)
            t[n] |= 0x80;
        n++;
    } while (v);
    eas_w_bytes(b, t, n);
}

/* Signed values zig-zag coded (dates before 1970 exist in the wild). */
static void eas_w_svar(struct eas_wbuf *b, int64_t v)
{
    eas_w_var(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

struct eas_rbuf {
    const unsigned char *p;
    size_t len, pos;
    int bad;
};

static uint64_t eas_r_var(struct eas_rbuf *b)
{
    uint64_t v = 0;

    for (unsigned shift = 0; shift < 64; shift += 7) {
        unsigned char c;
        if (b->pos >= b->len) {
            b->bad = 1;
            return 0;
        }
        c = b->p[b->pos++];
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    b->bad = 1;
    return 0;
}

static int64_t eas_r_svar(struct eas_rbuf *b)
{
    uint64_t v = eas_r_var(b);

    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static void eas_w_snap(struct eas_wbuf *b, const struct eas_snap *s)
{
    int64_t last = 0;

    eas_w_var(b, s->key);
    eas_w_var(b, (uint64_t)s->filter);
    eas_w_svar(b, s->scan_modseq);
    eas_w_var(b, s->nheld);
    for (size_t i = 0; i < s->nheld; i++) {
        eas_w_var(b, (uint64_t)(s->held[i].id - last));
        last = s->held[i].id;
        eas_w_svar(b, s->held[i].modseq);
        eas_w_svar(b, s->held[i].idate);
    }
    last = 0;
    eas_w_var(b, s->npending);
    for (size_t i = 0; i < s->npending; i++) {
        eas_w_var(b, (uint64_t)(s->pending[i] - last));
        last = s->pending[i];
    }
}

static int eas_r_snap(struct eas_rbuf *b, struct eas_snap *s)
{
    uint64_t n;
    int64_t last = 0;

    s->key = (uint32_t)eas_r_var(b);
    s->filter = (int)eas_r_var(b);
    s->scan_modseq = eas_r_svar(b);
    n = eas_r_var(b);
    /* each entry takes at least 3 bytes: a count past what is left is corrupt */
    if (b->bad || n > EAS_STATE_MAX_IDS || n > (b->len - b->pos) / 3)
        return -1;
    if (n && !(s->held = malloc(n * sizeof(*s->held))))
        return -1;
    s->held_cap = n;
    for (size_t i = 0; i < n; i++) {
        uint64_t d = eas_r_var(b);
        if ((i > 0 && d == 0) || d > INT64_MAX / 2)
            return -1;
        last += (int64_t)d;
        s->held[i].id = last;
        s->held[i].modseq = eas_r_svar(b);
        s->held[i].idate = eas_r_svar(b);
    }
    s->nheld = n;
    n = eas_r_var(b);
    if (b->bad || n > EAS_STATE_MAX_IDS || n > b->len - b->pos)
        return -1;
    if (n && !(s->pending = malloc(n * sizeof(*s->pending))))
        return -1;
    s->pending_cap = n;
    last = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t d = eas_r_var(b);
        if ((i > 0 && d == 0) || d > INT64_MAX / 2)
            return -1;
        last += (int64_t)d;
        s->pending[i] = last;
    }
    s->npending = n;
    return b->bad ? -1 : 0;
}

static void eas_w_opts(struct eas_wbuf *b, const struct eas_coll_opts *o)
{
    eas_w_var(b, (uint64_t)o->filter);
    eas_w_var(b, (uint64_t)o->window);
    eas_w_var(b, (uint64_t)o->conflict);
    eas_w_var(b, (uint64_t)o->deletes_as_moves);
    eas_w_var(b, (uint64_t)o->mime_support);
    eas_w_svar(b, o->mime_trunc);
    eas_w_svar(b, o->trunc25);
    eas_w_var(b, (uint64_t)o->nprefs);
    for (int i = 0; i < o->nprefs; i++) {
        eas_w_var(b, (uint64_t)o->prefs[i].type);
        eas_w_svar(b, o->prefs[i].trunc);
        eas_w_var(b, (uint64_t)o->prefs[i].all_or_none);
        eas_w_var(b, (uint64_t)o->prefs[i].preview);
    }
}

static int eas_r_opts(struct eas_rbuf *b, struct eas_coll_opts *o)
{
    uint64_t n;

    o->filter = (int)(eas_r_var(b) & 0xf);
    o->window = (int)(eas_r_var(b) & 0xffff);
    o->conflict = eas_r_var(b) != 0;
    o->deletes_as_moves = eas_r_var(b) != 0;
    o->mime_support = (int)(eas_r_var(b) % 3);
    o->mime_trunc = (int)eas_r_svar(b);
    o->trunc25 = (int)eas_r_svar(b);
    n = eas_r_var(b);
    if (n > EAS_MAX_PREFS)
        return -1;
    o->nprefs = (int)n;
    for (int i = 0; i < o->nprefs; i++) {
        o->prefs[i].type = (int)(eas_r_var(b) & 0x7);
        o->prefs[i].trunc = eas_r_svar(b);
        o->prefs[i].all_or_none = eas_r_var(b) != 0;
        o->prefs[i].preview = (int)(eas_r_var(b) & 0xff);
    }
    return b->bad ? -1 : 0;
}

int eas_sync_state_encode(const struct eas_sync_state *st, unsigned char **out, size_t *len)
{
    struct eas_wbuf b = {0};
    uint32_t magic = EAS_STATE_MAGIC;

    eas_w_bytes(&b, &magic, sizeof(magic));
    eas_w_svar(&b, st->folder_id);
    eas_w_var(&b, (uint64_t)st->have_opts);
    eas_w_opts(&b, &st->opts);
    eas_w_snap(&b, &st->cur);
    eas_w_snap(&b, &st->prev);
    eas_w_var(&b, st->ncids);
    for (size_t i = 0; i < st->ncids; i++) {
        size_t l = strlen(st->cids[i].cid);
        eas_w_var(&b, l);
        eas_w_bytes(&b, st->cids[i].cid, l);
        eas_w_svar(&b, st->cids[i].item_id);
    }
    /* added later, at the end: blobs written before it simply end before it */
    eas_w_var(&b, st->nsupported);
    for (size_t i = 0; i < st->nsupported; i++)
        eas_w_var(&b, st->supported[i]);
    if (b.oom) {
        free(b.p);
        return -1;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

int eas_sync_state_decode(const unsigned char *p, size_t len, struct eas_sync_state *st)
{
    struct eas_rbuf b = {.p = p, .len = len};
    uint32_t magic;
    uint64_t n;

    eas_sync_state_init(st, 0);
    if (len < sizeof(magic))
        return -1;
    memcpy(&magic, p, sizeof(magic));
    if (magic != EAS_STATE_MAGIC)
        return -1;
    b.pos = sizeof(magic);
    st->folder_id = eas_r_svar(&b);
    st->have_opts = eas_r_var(&b) != 0;
    if (eas_r_opts(&b, &st->opts) < 0 || eas_r_snap(&b, &st->cur) < 0 ||
        eas_r_snap(&b, &st->prev) < 0)
        goto err;
    n = eas_r_var(&b);
    if (b.bad || n > 4096)
        goto err;
    for (size_t i = 0; i < n; i++) {
        char cid[65];
        uint64_t l = eas_r_var(&b);
        if (b.bad || l >= sizeof(cid) || l > b.len - b.pos)
            goto err;
        memcpy(cid, b.p + b.pos, l);
        cid[l] = '\0';
        b.pos += l;
        if (eas_sync_cid_add(st, cid, eas_r_svar(&b)) < 0)
            goto err;
    }
    if (b.bad)
        goto err;
    if (b.pos < b.len) {
        n = eas_r_var(&b);
        if (b.bad || n > EAS_MAX_SUPPORTED || n > b.len - b.pos)
            goto err;
        if (n && !(st->supported = malloc(n * sizeof(*st->supported))))
            goto err;
        for (size_t i = 0; i < n; i++)
            st->supported[i] = (unsigned)(eas_r_var(&b) & 0xffffu);
        st->nsupported = n;
        if (b.bad)
            goto err;
    }
    return 0;
err:
    eas_sync_state_free(st);
    return -1;
}

static void eas_state_key(char *out, size_t outlen, const char *device, int64_t folder_id)
{
    snprintf(out, outlen, "%s/%lld", device, (long long)folder_id);
}

int eas_sync_state_load(struct store_user *u, const char *device, int64_t folder_id,
                        struct eas_sync_state *st)
{
    char key[96];
    void *val = NULL;
    size_t len = 0;
    int rc;

    eas_state_key(key, sizeof(key), device, folder_id);
    rc = store_state_get(u, EAS_SYNC_NS, key, &val, &len, NULL);
    if (rc != STORE_OK) {
        eas_sync_state_init(st, folder_id);
        return rc;
    }
    /* A blob we cannot read is treated as no state: the device gets Status 3 and
     * resynchronises, rather than an error it cannot recover from. */
    if (eas_sync_state_decode(val, len, st) < 0 || st->folder_id != folder_id) {
        eas_sync_state_free(st);
        eas_sync_state_init(st, folder_id);
        rc = STORE_ENOTFOUND;
    }
    free(val);
    return rc;
}

int eas_sync_state_save(struct store_user *u, const char *device, const struct eas_sync_state *st)
{
    char key[96];
    unsigned char *blob;
    size_t len;
    int rc;

    if (eas_sync_state_encode(st, &blob, &len) < 0)
        return STORE_ENOMEM;
    eas_state_key(key, sizeof(key), device, st->folder_id);
    rc = store_state_put(u, EAS_SYNC_NS, key, blob, len, NULL);
    free(blob);
    return rc;
}

int eas_sync_state_del(struct store_user *u, const char *device, int64_t folder_id)
{
    char key[96];

    eas_state_key(key, sizeof(key), device, folder_id);
    return store_state_del(u, EAS_SYNC_NS, key, NULL);
}

/* ---- refreshing from the journal --------------------------------------------------------- */

struct eas_scan {
    struct eas_snap *s;
    int64_t cutoff;
    int failed;
    int pim; /* a PIM folder */
};

static int eas_scan_change(const struct store_item *it, int removed, void *ctx)
{
    struct eas_scan *sc = ctx;

    (void)removed;
    if (eas_pend_push(sc->s, it->id) < 0) {
        sc->failed = 1;
        return 1;
    }
    return 0;
}

static int eas_scan_item(const struct store_item *it, void *ctx)
{
    struct eas_scan *sc = ctx;

    if (eas_pend_push(sc->s, it->id) < 0) {
        sc->failed = 1;
        return 1;
    }
    return 0;
}

static int eas_scan_brief(const struct store_item_brief *b, void *ctx)
{
    struct eas_scan *sc = ctx;

    /* a PIM item's arrival says nothing of its window: eas_snap_judge decides */
    if (!sc->pim && b->idate < sc->cutoff && !eas_snap_held(sc->s, b->id))
        return 0;
    if (eas_pend_push(sc->s, b->id) < 0) {
        sc->failed = 1;
        return 1;
    }
    return 0;
}

int eas_snap_refresh(struct store_user *u, struct eas_snap *s, int64_t folder_id, int cls,
                     int filter, int64_t now)
{
    struct eas_scan sc = {.s = s, .cutoff = eas_filter_cutoff(filter, now)};
    int64_t top = store_user_modseq(u);
    int full = s->scan_modseq < store_user_modseq_floor(u) || filter != s->filter;
    int rc;

    s->cls = cls;
    if (cls != STORE_CLASS_MAIL)
        sc.pim = 1;
    if (full) {
        /* Everything held is looked at again too: items outside the new window leave. */
        for (size_t i = 0; i < s->nheld; i++)
            if (eas_pend_push(s, s->held[i].id) < 0)
                return STORE_ENOMEM;
        /* a calendar's window is read from the occurrence index: the items with an
         * occurrence reaching into it, or an index open-ended before its end */
        if (cls == STORE_CLASS_CALENDAR && sc.cutoff > 0)
            rc = store_item_range_query(u, folder_id, sc.cutoff, INT64_MAX, eas_scan_item, &sc,
                                        NULL);
        else
            rc = store_item_list_brief(u, folder_id, eas_scan_brief, &sc, NULL);
    } else {
        rc = store_changes_since(u, folder_id, s->scan_modseq, eas_scan_change, &sc, NULL);
    }
    if (rc != STORE_OK)
        return rc;
    if (sc.failed)
        return STORE_ENOMEM;
    /* The window moves with time: held items now older than it leave the device. */
    if (sc.cutoff > 0)
        for (size_t i = 0; i < s->nheld; i++)
            if (s->held[i].idate < sc.cutoff && eas_pend_push(s, s->held[i].id) < 0)
                return STORE_ENOMEM;
    eas_pend_sort(s);
    s->scan_modseq = top;
    s->filter = filter;
    return 0;
}

enum eas_verdict eas_snap_judge(struct store_user *u, const struct eas_snap *s, int64_t folder_id,
                                int64_t id, int64_t cutoff, struct store_item *it)
{
    const struct eas_held *h = eas_snap_held(s, id);
    int present = store_item_get(u, id, it, NULL) == STORE_OK && it->folder_id == folder_id;

    /* PIM items are in a window by their occurrences (or completion), not their arrival */
    if (present && s->cls && s->cls != STORE_CLASS_MAIL)
        it->idate = eas_pim_reach(u, s->cls, it);

    if (present && it->idate >= cutoff) {
        if (!h)
            return EAS_V_ADD;
        return h->modseq != it->modseq ? EAS_V_CHANGE : EAS_V_NONE;
    }
    if (!h)
        return EAS_V_NONE;
    return present ? EAS_V_SOFTDELETE : EAS_V_DELETE;
}

long eas_snap_estimate(struct store_user *u, struct eas_snap *s, int64_t folder_id, int64_t cutoff,
                       long stop_at)
{
    struct store_item it;
    long n = 0;

    for (size_t i = s->npending; i-- > 0;) {
        if (eas_snap_judge(u, s, folder_id, s->pending[i], cutoff, &it) != EAS_V_NONE)
            n++;
        if (stop_at > 0 && n >= stop_at)
            break;
    }
    return n;
}

/* Ping and GetItemEstimate: does the folder have anything the device has not been sent?
 * Works on a copy of the state; nothing is saved. */
int eas_sync_has_changes(struct eas_req *req, int64_t folder_id)
{
    struct eas_sync_state st;
    struct store_folder f;
    int rc;
    long n;

    if (store_folder_get(req->u, folder_id, &f, NULL) != STORE_OK)
        return -1;
    rc = eas_sync_state_load(req->u, req->device_id, folder_id, &st);
    if (rc == STORE_ENOTFOUND || st.cur.key == 0) {
        eas_sync_state_free(&st);
        return 1;
    }
    if (rc != STORE_OK)
        return -1;
    rc = eas_snap_refresh(req->u, &st.cur, folder_id, f.cls, st.opts.filter, time(NULL));
    n = rc == STORE_OK ? eas_snap_estimate(req->u, &st.cur, folder_id,
                                           eas_filter_cutoff(st.opts.filter, time(NULL)), 1)
                       : -1;
    eas_sync_state_free(&st);
    return n < 0 ? -1 : n > 0;
}

/* ---- small helpers the commands share ----------------------------------------------------- */

void eas_server_id(char *out, size_t outlen, int64_t folder_id, int64_t item_id)
{
    snprintf(out, outlen, "%lld:%lld", (long long)folder_id, (long long)item_id);
}

int eas_folder_lookup(struct eas_req *req, const char *collection_id, struct store_folder *f)
{
    char *end;
    long long id;

    if (!collection_id || !*collection_id)
        return STORE_ENOTFOUND;
    id = strtoll(collection_id, &end, 10);
    if (*end || id <= 0)
        return STORE_ENOTFOUND;
    return store_folder_get(req->u, id, f, NULL);
}

int eas_fileref_parse(const char *ref, int64_t *folder_id, int64_t *item_id, unsigned *part)
{
    long long f, i;
    unsigned p;
    int n = 0;

    if (!ref || sscanf(ref, "%lld:%lld:%u%n", &f, &i, &p, &n) != 3 || ref[n] || f <= 0 || i <= 0)
        return -1;
    *folder_id = f;
    *item_id = i;
    *part = p;
    return 0;
}
