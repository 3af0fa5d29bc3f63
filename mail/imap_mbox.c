/*
 * imap_mbox.c — the selected mailbox as the session sees it: its messages in UID order
 * (sequence number = index + 1), kept in step with the store through the change journal.
 *
 * Other sessions, other protocols and deliveries change the folder at any moment; the
 * client may only be told at certain points, and EXPUNGE may not be sent at all while a
 * FETCH, STORE or SEARCH by sequence number is answered (RFC 3501 §7.4.1). So a removal
 * is first marked on the message (expunged = true: it keeps its sequence number and is
 * skipped by commands) and the EXPUNGE goes out at the next point where it is allowed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/imap.h"

struct imap_load {
    struct imap_mbox *mb;
    int failed;
};

/* ---- snapshots and copy on write --------------------------------------------------- */

struct imap_snap *imap_snap_new(const struct imap_msg *msgs, size_t n)
{
    struct imap_snap *snap = malloc(sizeof(*snap) + n * sizeof(snap->msgs[0]));
    size_t o = 0;

    if (!snap)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].expunged)
            continue;
        snap->msgs[o] = msgs[i];
        if (msgs[i].keywords && !(snap->msgs[o].keywords = strdup(msgs[i].keywords))) {
            snap->n = o;
            snap->refs = 1;
            imap_snap_release(snap);
            return NULL;
        }
        o++;
    }
    snap->n = o;
    snap->refs = 1;
    return snap;
}

void imap_snap_ref(struct imap_snap *snap)
{
    __atomic_add_fetch(&snap->refs, 1, __ATOMIC_RELAXED);
}

void imap_snap_release(struct imap_snap *snap)
{
    if (!snap || __atomic_sub_fetch(&snap->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i < snap->n; i++)
        free(snap->msgs[i].keywords);
    free(snap);
}

int imap_mbox_own(struct imap_mbox *mb)
{
    struct imap_msg *own;
    size_t cap;

    if (!mb->snap)
        return 0;
    cap = mb->n + 64;
    if (!(own = malloc(cap * sizeof(*own))))
        return -1;
    for (size_t i = 0; i < mb->n; i++) {
        own[i] = mb->msgs[i];
        if (mb->msgs[i].keywords && !(own[i].keywords = strdup(mb->msgs[i].keywords))) {
            for (size_t k = 0; k < i; k++)
                free(own[k].keywords);
            free(own);
            return -1;
        }
    }
    imap_snap_release(mb->snap);
    mb->snap = NULL;
    mb->msgs = own;
    mb->cap = cap;
    return 0;
}

static int imap_mbox_grow(struct imap_mbox *mb, size_t want)
{
    if (imap_mbox_own(mb) < 0)
        return -1;
    if (want <= mb->cap)
        return 0;
    size_t cap = mb->cap ? mb->cap : 256;
    while (cap < want)
        cap *= 2;
    struct imap_msg *m = realloc(mb->msgs, cap * sizeof(*m));
    if (!m)
        return -1;
    mb->msgs = m;
    mb->cap = cap;
    return 0;
}

static void imap_msg_set(struct imap_msg *m, const struct store_item *it)
{
    m->uid = it->uid;
    m->flags = it->flags;
    m->id = it->id;
    m->modseq = it->modseq;
    m->size = it->size;
    m->idate = it->idate;
    free(m->keywords);
    m->keywords = it->keywords[0] ? strdup(it->keywords) : NULL;
    m->expunged = false;
}

static int imap_load_cb(const struct store_item_brief *b, void *ctx)
{
    struct imap_load *l = ctx;
    struct imap_mbox *mb = l->mb;

    if (imap_mbox_grow(mb, mb->n + 1) < 0) {
        l->failed = 1;
        return 1;
    }
    mb->msgs[mb->n++] = (struct imap_msg){
        .uid = b->uid,
        .flags = b->flags,
        .id = b->id,
        .modseq = b->modseq,
        .size = b->size,
        .idate = b->idate,
        .keywords = b->keywords[0] ? strdup(b->keywords) : NULL,
    };
    return 0;
}

static void imap_mbox_free(struct imap_mbox *mb)
{
    if (!mb)
        return;
    if (mb->snap) {
        imap_snap_release(mb->snap);
    } else {
        for (size_t i = 0; i < mb->n; i++)
            free(mb->msgs[i].keywords);
        free(mb->msgs);
    }
    free(mb);
}

int imap_mbox_open(struct imap_session *s, const struct store_folder *f, const char *name,
                   bool readonly, struct store_err *err)
{
    struct imap_mbox *mb = calloc(1, sizeof(*mb));
    struct imap_load l = {.mb = mb};
    int rc;

    imap_mbox_close(s);
    if (!mb)
        return STORE_ENOMEM;
    mb->folder = *f;
    snprintf(mb->name, sizeof(mb->name), "%s", name);
    mb->readonly = readonly;
    s->mbox = mb; /* the sync below works on the session's view */
    if (imap_cache_get(s->m->imap_cache, s->acct.address, f, mb)) {
        /* A recent snapshot: only what changed since it is read from the store. */
        rc = imap_mbox_sync(s, IMAP_SYNC_OPENING);
        if (rc != STORE_OK)
            goto err;
    } else {
        /* The journal position is taken before the listing: whatever commits in between
         * is seen again by the first sync, which is harmless, rather than missed. */
        mb->synced = store_user_modseq(s->su);
        if (mb->synced < 0) {
            rc = (int)mb->synced;
            goto err;
        }
        rc = store_item_list_brief(s->su, f->id, imap_load_cb, &l, err);
        if (rc == STORE_OK && l.failed)
            rc = STORE_ENOMEM;
        if (rc != STORE_OK)
            goto err;
    }
    mb->announced = mb->n;
    if (f->uidnext > mb->uidnext)
        mb->uidnext = f->uidnext;
    if (mb->n && mb->msgs[mb->n - 1].uid >= mb->uidnext)
        mb->uidnext = mb->msgs[mb->n - 1].uid + 1;
    imap_cache_put(s->m->imap_cache, s->acct.address, mb);
    s->mbox = mb;
    s->state = IMAP_SELECTED;
    return STORE_OK;
err:
    s->mbox = NULL;
    imap_mbox_free(mb);
    return rc;
}

void imap_mbox_close(struct imap_session *s)
{
    if (s->mbox) /* the latest state this session saw, for the next SELECT of the folder */
        imap_cache_put(s->m->imap_cache, s->acct.address, s->mbox);
    imap_mbox_free(s->mbox);
    s->mbox = NULL;
    if (s->state == IMAP_SELECTED)
        s->state = IMAP_AUTH;
    /* "$" refers to messages of the mailbox it was saved in (RFC 5182). */
    imap_seqset_free(&s->saved);
    memset(&s->saved, 0, sizeof(s->saved));
    s->saved_valid = false;
}

long imap_mbox_find_uid(const struct imap_mbox *mb, uint32_t uid)
{
    size_t lo = 0, hi = mb->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mb->msgs[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < mb->n && mb->msgs[lo].uid == uid ? (long)lo : -1;
}

/* First index whose UID is >= uid. */
static size_t imap_mbox_lower_bound(const struct imap_mbox *mb, uint32_t uid)
{
    size_t lo = 0, hi = mb->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mb->msgs[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- sync ---------------------------------------------------------------------------- */

struct imap_sync {
    struct imap_mbox *mb;
    struct store_item *added; /* new messages, to be appended in UID order */
    size_t nadded, capadded;
    size_t *changed; /* indexes whose flags changed */
    size_t nchanged, capchanged;
    int64_t top; /* highest MODSEQ seen */
    int failed;
};

static int imap_sync_note_changed(struct imap_sync *y, size_t idx)
{
    if (y->nchanged == y->capchanged) {
        size_t cap = y->capchanged ? y->capchanged * 2 : 64;
        size_t *p = realloc(y->changed, cap * sizeof(*p));
        if (!p)
            return -1;
        y->changed = p;
        y->capchanged = cap;
    }
    y->changed[y->nchanged++] = idx;
    return 0;
}

static int imap_sync_note_added(struct imap_sync *y, const struct store_item *it)
{
    if (y->nadded == y->capadded) {
        size_t cap = y->capadded ? y->capadded * 2 : 16;
        struct store_item *p = realloc(y->added, cap * sizeof(*p));
        if (!p)
            return -1;
        y->added = p;
        y->capadded = cap;
    }
    y->added[y->nadded++] = *it;
    return 0;
}

static int imap_sync_cb(const struct store_item *it, int removed, void *ctx)
{
    struct imap_sync *y = ctx;
    long idx = imap_mbox_find_uid(y->mb, it->uid);
    int rc = 0;

    if (it->modseq > y->top)
        y->top = it->modseq;
    if (removed) {
        if (idx >= 0 && !y->mb->msgs[idx].expunged) {
            if (imap_mbox_own(y->mb) < 0) { /* a change: the view becomes this session's */
                y->failed = 1;
                return 1;
            }
            y->mb->msgs[idx].expunged = true;
        }
        return 0;
    }
    if (idx < 0) {
        rc = imap_sync_note_added(y, it);
    } else {
        struct imap_msg *m = &y->mb->msgs[idx];
        const char *kw = m->keywords ? m->keywords : "";
        if (m->expunged ||
            (m->modseq == it->modseq && m->flags == it->flags && strcmp(kw, it->keywords) == 0))
            return 0;
        if (imap_mbox_own(y->mb) < 0) {
            y->failed = 1;
            return 1;
        }
        m = &y->mb->msgs[idx]; /* the private copy's */
        imap_msg_set(m, it);
        rc = imap_sync_note_changed(y, (size_t)idx);
    }
    if (rc < 0)
        y->failed = 1;
    return rc < 0;
}

static int imap_item_uid_cmp(const void *a, const void *b)
{
    const struct store_item *x = a, *y = b;
    return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* New messages: normally all above the highest UID in view, so appended at the end. */
static int imap_sync_add(struct imap_sync *y)
{
    struct imap_mbox *mb = y->mb;

    if (y->nadded == 0)
        return 0; /* also keeps qsort from being handed a NULL array (undefined) */
    qsort(y->added, y->nadded, sizeof(y->added[0]), imap_item_uid_cmp);
    if (imap_mbox_grow(mb, mb->n + y->nadded) < 0)
        return -1;
    for (size_t i = 0; i < y->nadded; i++) {
        size_t at = imap_mbox_lower_bound(mb, y->added[i].uid);
        memmove(&mb->msgs[at + 1], &mb->msgs[at], (mb->n - at) * sizeof(mb->msgs[0]));
        memset(&mb->msgs[at], 0, sizeof(mb->msgs[0]));
        imap_msg_set(&mb->msgs[at], &y->added[i]);
        mb->n++;
        if (y->added[i].uid >= mb->uidnext)
            mb->uidnext = y->added[i].uid + 1;
    }
    return 0;
}

/* Sends EXPUNGE (or one VANISHED) for every message marked expunged, and drops them. A
 * message that came and went before the client was told of it (index >= announced) is
 * dropped without a word: numbers the client never saw must not appear. */
static void imap_sync_expunge(struct imap_session *s)
{
    struct imap_mbox *mb = s->mbox;
    bool vanished = s->enabled & IMAP_EN_QRESYNC;
    const char *sep = "";
    size_t o = 0, known_gone = 0;

    /* A shared snapshot holds no removals (marking one makes the view private), and must
     * not be written to, not even with the same values. */
    if (mb->snap)
        return;

    for (size_t i = 0; i < mb->announced && i < mb->n; i++) {
        if (!mb->msgs[i].expunged)
            continue;
        known_gone++;
        if (vanished) {
            net_printf(s->c, "%s%u", *sep ? sep : "* VANISHED ", mb->msgs[i].uid);
            sep = ",";
        }
    }
    if (*sep)
        net_printf(s->c, "\r\n");
    /* Highest sequence number first, so each number sent is still valid when sent. */
    for (size_t i = mb->announced < mb->n ? mb->announced : mb->n; i-- > 0;)
        if (mb->msgs[i].expunged && !vanished)
            net_printf(s->c, "* %zu EXPUNGE\r\n", i + 1);
    for (size_t i = 0; i < mb->n; i++) {
        if (mb->msgs[i].expunged) {
            free(mb->msgs[i].keywords);
            continue;
        }
        mb->msgs[o++] = mb->msgs[i];
    }
    mb->n = o;
    mb->announced -= known_gone;
}

static void imap_sync_report(struct imap_session *s, struct imap_sync *y, unsigned how)
{
    struct imap_mbox *mb = s->mbox;

    if (how & IMAP_SYNC_OPENING) {
        /* Nothing of this view was shown yet: removals are simply dropped (with nothing
         * announced, imap_sync_expunge sends nothing) and the client hears the result. */
        mb->announced = 0;
        imap_sync_expunge(s);
        mb->announced = mb->n;
        return;
    }
    /* A removal is only dropped from the view together with its EXPUNGE: otherwise the
     * client's sequence numbers would silently shift. */
    if (how & IMAP_SYNC_EXPUNGE)
        imap_sync_expunge(s);
    if (mb->n != mb->announced) {
        net_printf(s->c, "* %zu EXISTS\r\n", mb->n);
        mb->announced = mb->n;
    }
    for (size_t i = 0; i < y->nchanged; i++) {
        const struct imap_msg *m = &mb->msgs[y->changed[i]];
        if (m->expunged)
            continue;
        net_printf(s->c, "* %zu FETCH (UID %u FLAGS ", y->changed[i] + 1, m->uid);
        imap_out_flags(s, m->flags, m->keywords);
        if (s->enabled & (IMAP_EN_CONDSTORE | IMAP_EN_QRESYNC))
            net_printf(s->c, " MODSEQ (%llu)", (unsigned long long)IMAP_MODSEQ(m->modseq));
        net_printf(s->c, ")\r\n");
    }
}

int imap_mbox_sync(struct imap_session *s, unsigned how)
{
    struct imap_mbox *mb = s->mbox;
    struct imap_sync y = {.mb = mb};
    struct store_err err;
    int rc;

    if (!mb)
        return 0;
    y.top = mb->synced;
    rc = store_changes_since(s->su, mb->folder.id, mb->synced, imap_sync_cb, &y, &err);
    if (rc == STORE_OK && y.failed)
        rc = STORE_ENOMEM;
    if (rc == STORE_OK) {
        /* Changes are reported in the order the view holds them: index order. Changed
         * indexes are recorded before new messages are inserted, and new UIDs sort after
         * every existing one, so the recorded indexes stay valid. */
        if (imap_sync_add(&y) < 0)
            rc = STORE_ENOMEM;
        mb->synced = y.top;
    }
    if (rc == STORE_OK)
        imap_sync_report(s, &y, how);
    else
        log_error("imap", "%s: cannot sync %s: %s", s->acct.address, mb->name, err.msg);
    free(y.added);
    free(y.changed);
    return rc;
}

/* ---- sequence sets ---------------------------------------------------------------- */

static int imap_each_uids(struct imap_session *s, const struct imap_seqset *set, imap_msg_fn fn,
                          void *ctx)
{
    struct imap_mbox *mb = s->mbox;

    for (size_t r = 0; r < set->n; r++) {
        for (size_t i = imap_mbox_lower_bound(mb, set->r[r].lo);
             i < mb->n && mb->msgs[i].uid <= set->r[r].hi; i++) {
            if (mb->msgs[i].expunged)
                continue;
            if (fn(s, i, ctx))
                return 0;
        }
    }
    return 0;
}

int imap_mbox_each(struct imap_session *s, struct imap_cmd *cmd, const char *set, bool uid,
                   imap_msg_fn fn, void *ctx)
{
    struct imap_mbox *mb = s->mbox;
    struct imap_seqset seq;
    char err[256];

    if (imap_seqset_parse(&cmd->arena, set, strlen(set), IMAP_SEQ_ALLOW_DOLLAR, &seq, err,
                          sizeof(err)) < 0) {
        imap_bad(s, cmd, "%s", err);
        return -1;
    }
    if (seq.dollar) /* the saved result holds UIDs whatever the command */
        return s->saved_valid ? imap_each_uids(s, &s->saved, fn, ctx) : 0;
    if (uid) {
        /* '*' is the highest UID in use; with none, the next one that would be given. */
        imap_seqset_resolve(&seq, mb->n ? mb->msgs[mb->n - 1].uid : mb->uidnext - 1);
        return imap_each_uids(s, &seq, fn, ctx);
    }
    imap_seqset_resolve(&seq, (uint32_t)mb->n);
    if (mb->n == 0 || imap_seqset_max(&seq) > mb->n) {
        imap_bad(s, cmd, "Invalid message sequence number (the mailbox has %zu)", mb->n);
        return -1;
    }
    for (size_t r = 0; r < seq.n; r++)
        for (uint64_t n = seq.r[r].lo; n <= seq.r[r].hi; n++) {
            if (mb->msgs[n - 1].expunged)
                continue;
            if (fn(s, (size_t)(n - 1), ctx))
                return 0;
        }
    return 0;
}

/* ---- the structure cache ------------------------------------------------------------ */

int imap_msg_cache(struct imap_session *s, const struct imap_msg *msg, void **blob,
                   struct mime_cache *out)
{
    struct store_err err;
    size_t len = 0;
    char *body = NULL;
    int rc;

    *blob = NULL;
    rc = store_item_meta(s->su, msg->id, blob, &len, &err);
    if (rc == STORE_OK && *blob && mime_cache_open(*blob, len, out) == 0 &&
        out->msg_size == (uint64_t)msg->size)
        return STORE_OK;
    free(*blob);
    *blob = NULL;
    /* No cache, an older version or a stale one: rebuild it from the message. */
    if ((rc = store_item_body(s->su, msg->id, &body, &len, &err)) != STORE_OK)
        return rc;
    rc = mime_cache_build(body, len, blob, &len) == 0 && mime_cache_open(*blob, len, out) == 0
             ? STORE_OK
             : STORE_ENOMEM;
    free(body);
    return rc;
}

/* ---- cache blobs read ahead ------------------------------------------------------------ */

/* Reading one message's cache blob costs a store lookup and the store lock; over 100,000
 * messages that is most of a SUBJECT search or a FETCH 1:* ENVELOPE. So the blobs of a run of the
 * view's messages are read with one store_item_meta_range() and handed out as the command reaches
 * them. The run grows while its blobs are used and shrinks when cheaper keys (UNSEEN SUBJECT x) or
 * a sparse set leave most of them unread, so a sparse walk does not read the whole folder for
 * nothing. */
#define IMAP_PRE_MIN 4
#define IMAP_PRE_MAX 512

struct imap_pre {
    size_t start, n; /* view indexes [start, start + n) were read */
    size_t want;     /* the next run's length */
    size_t used;     /* blobs of this run taken */
    void *blob[IMAP_PRE_MAX];
    size_t len[IMAP_PRE_MAX];
};

struct imap_pre_fill {
    struct imap_pre *p;
    const struct imap_msg *msgs;
    size_t j; /* view index the next row is matched from */
};

static int imap_pre_row(int64_t id, uint32_t uid, const void *meta, size_t len, void *ctx)
{
    struct imap_pre_fill *f = ctx;
    struct imap_pre *p = f->p;
    size_t end = p->start + p->n;

    while (f->j < end && f->msgs[f->j].uid < uid)
        f->j++;
    if (f->j >= end)
        return 1;
    if (f->msgs[f->j].uid != uid || f->msgs[f->j].id != id || !meta)
        return 0;
    /* A failed copy only means that message takes the one-by-one path. */
    if ((p->blob[f->j - p->start] = malloc(len)) != NULL) {
        memcpy(p->blob[f->j - p->start], meta, len);
        p->len[f->j - p->start] = len;
    }
    return 0;
}

static void imap_pre_drop(struct imap_pre *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->blob[i]);
        p->blob[i] = NULL;
    }
    p->n = 0;
}

/* The read-ahead blob of view index idx (the caller owns it), or NULL: take the one-by-one
 * path then. */
static void *imap_pre_take(struct imap_session *s, struct imap_pre *p, size_t idx, size_t *len)
{
    const struct imap_mbox *mb = s->mbox;
    void *b;

    if (idx < p->start || idx >= p->start + p->n) {
        if (p->n) {
            if (p->used * 2 >= p->n && p->want < IMAP_PRE_MAX)
                p->want *= 2;
            else if (p->used * 4 < p->n && p->want > IMAP_PRE_MIN)
                p->want /= 2;
        }
        imap_pre_drop(p);
        p->start = idx;
        p->n = mb->n - idx < p->want ? mb->n - idx : p->want;
        p->used = 0;
        struct imap_pre_fill f = {.p = p, .msgs = mb->msgs, .j = idx};
        struct store_err err;
        if (p->n &&
            store_item_meta_range(s->su, mb->folder.id, mb->msgs[idx].uid,
                                  mb->msgs[idx + p->n - 1].uid, imap_pre_row, &f, &err) != STORE_OK)
            imap_pre_drop(p); /* the one-by-one path will meet (and report) the error */
    }
    if (idx < p->start || idx >= p->start + p->n || !(b = p->blob[idx - p->start]))
        return NULL;
    p->blob[idx - p->start] = NULL;
    *len = p->len[idx - p->start];
    p->used++;
    return b;
}

struct imap_pre *imap_pre_new(void)
{
    struct imap_pre *p = calloc(1, sizeof(*p));

    if (p)
        p->want = IMAP_PRE_MIN; /* a one-message FETCH reads little more than its message */
    return p;
}

void imap_pre_free(struct imap_pre *p)
{
    if (!p)
        return;
    imap_pre_drop(p);
    free(p);
}

int imap_msg_cache_at(struct imap_session *s, struct imap_pre *p, size_t idx, void **blob,
                      struct mime_cache *out)
{
    const struct imap_msg *m = &s->mbox->msgs[idx];
    size_t len = 0;
    void *b = p ? imap_pre_take(s, p, idx, &len) : NULL;

    /* A stale or older-format blob is rebuilt by imap_msg_cache(). */
    if (b && mime_cache_open(b, len, out) == 0 && out->msg_size == (uint64_t)m->size) {
        *blob = b;
        return STORE_OK;
    }
    free(b);
    return imap_msg_cache(s, m, blob, out);
}
