/*
 * imap_cmd_thread.c — THREAD / UID THREAD (RFC 5256 §2, §4) with ORDEREDSUBJECT and
 * REFERENCES, over the messages the search criteria choose.
 *
 * Both algorithms work on "containers": one per message, plus (REFERENCES) one per
 * Message-ID that is referenced but not present, the "dummies". Containers live in one
 * growing array and link to each other by index, so nothing is freed piecemeal. Input is
 * hostile (References can name anything, chains can be as long as the mailbox): the
 * tree is never walked by recursion, and the loop check that keeps it a tree walks at
 * most IMAP_THREAD_MAX_WALK ancestors, treating a longer walk as a loop (the link is
 * simply not made, which RFC 5256 allows for links that cannot be trusted).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/imap.h"

#define IMAP_THREAD_NONE     UINT32_MAX
#define IMAP_THREAD_MAX_WALK 4096
#define IMAP_THREAD_MAX_REFS 256 /* References entries used per message */

struct imap_tnode {
    uint32_t parent, child, next; /* first child, next sibling */
    int64_t msg;                  /* view index, -1 for a dummy */
    int64_t date;                 /* sent date (the first child's for a dummy) */
    char *subject;                /* base subject (malloc'd), NULL for a dummy */
    bool reply;                   /* the subject had Re:/Fwd: */
    bool dead;                    /* removed by pruning */
};

struct imap_thread {
    struct imap_session *s;
    struct imap_tnode *t;
    size_t n, cap;
    /* Message-ID → container, open addressing; keys point into ids */
    char **keys;
    uint32_t *vals;
    size_t hcap;
    int rc;
    struct imap_pre *pre; /* caches read ahead */
};

/* ---- containers and the id table ---------------------------------------------------------- */

static uint32_t imap_tnode_new(struct imap_thread *th, int64_t msg)
{
    if (th->n == th->cap) {
        size_t cap = th->cap ? th->cap * 2 : 64;
        struct imap_tnode *p = realloc(th->t, cap * sizeof(*p));
        if (!p) {
            th->rc = STORE_ENOMEM;
            return IMAP_THREAD_NONE;
        }
        th->t = p;
        th->cap = cap;
    }
    struct imap_tnode *c = &th->t[th->n];
    memset(c, 0, sizeof(*c));
    c->parent = c->child = c->next = IMAP_THREAD_NONE;
    c->msg = msg;
    return (uint32_t)th->n++;
}

static uint64_t imap_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int imap_ids_grow(struct imap_thread *th)
{
    size_t cap = th->hcap ? th->hcap * 2 : 256;
    char **keys = calloc(cap, sizeof(*keys));
    uint32_t *vals = calloc(cap, sizeof(*vals));

    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -1;
    }
    for (size_t i = 0; i < th->hcap; i++) {
        if (!th->keys[i])
            continue;
        size_t j = imap_hash(th->keys[i], strlen(th->keys[i])) & (cap - 1);
        while (keys[j])
            j = (j + 1) & (cap - 1);
        keys[j] = th->keys[i];
        vals[j] = th->vals[i];
    }
    free(th->keys);
    free(th->vals);
    th->keys = keys;
    th->vals = vals;
    th->hcap = cap;
    return 0;
}

/* The container of a Message-ID, made (as a dummy) when new; *fresh says so. */
static uint32_t imap_ids_get(struct imap_thread *th, const char *id, size_t n, bool *fresh)
{
    size_t cnt = 0;

    *fresh = false;
    for (size_t i = 0; i < th->hcap; i++)
        cnt += th->keys[i] != NULL;
    if ((cnt + 1) * 2 > th->hcap && imap_ids_grow(th) < 0) {
        th->rc = STORE_ENOMEM;
        return IMAP_THREAD_NONE;
    }
    size_t j = imap_hash(id, n) & (th->hcap - 1);
    for (; th->keys[j]; j = (j + 1) & (th->hcap - 1))
        if (strlen(th->keys[j]) == n && memcmp(th->keys[j], id, n) == 0)
            return th->vals[j];
    char *key = strndup(id, n);
    uint32_t c = key ? imap_tnode_new(th, -1) : IMAP_THREAD_NONE;
    if (c == IMAP_THREAD_NONE) {
        free(key);
        th->rc = STORE_ENOMEM;
        return c;
    }
    th->keys[j] = key;
    th->vals[j] = c;
    *fresh = true;
    return c;
}

static void imap_thread_free(struct imap_thread *th)
{
    for (size_t i = 0; i < th->n; i++)
        free(th->t[i].subject);
    for (size_t i = 0; i < th->hcap; i++)
        free(th->keys[i]);
    free(th->keys);
    free(th->vals);
    free(th->t);
}

/* ---- links ------------------------------------------------------------------------------- */

/* Is a an ancestor of b (or b itself)? Long walks count as yes: see the top comment. */
static bool imap_is_ancestor(const struct imap_thread *th, uint32_t a, uint32_t b)
{
    for (size_t steps = 0; b != IMAP_THREAD_NONE; steps++) {
        if (b == a || steps > IMAP_THREAD_MAX_WALK)
            return true;
        b = th->t[b].parent;
    }
    return false;
}

static void imap_unlink(struct imap_thread *th, uint32_t c)
{
    uint32_t p = th->t[c].parent, *pp;

    if (p == IMAP_THREAD_NONE)
        return;
    for (pp = &th->t[p].child; *pp != IMAP_THREAD_NONE; pp = &th->t[*pp].next)
        if (*pp == c) {
            *pp = th->t[c].next;
            break;
        }
    th->t[c].parent = th->t[c].next = IMAP_THREAD_NONE;
}

/* Appends c to p's children (c must have no parent). */
static void imap_link(struct imap_thread *th, uint32_t p, uint32_t c)
{
    uint32_t *pp = &th->t[p].child;

    while (*pp != IMAP_THREAD_NONE)
        pp = &th->t[*pp].next;
    *pp = c;
    th->t[c].parent = p;
    th->t[c].next = IMAP_THREAD_NONE;
}

/* ---- reading the messages ------------------------------------------------------------------ */

/* The next "<id>" in a space-separated list. */
static bool imap_next_id(const char **p, const char **id, size_t *n)
{
    const char *s = *p;

    while (*s == ' ')
        s++;
    if (!*s)
        return false;
    *id = s;
    *n = strcspn(s, " ");
    *p = s + *n;
    return true;
}

/* RFC 5256 §2.2 (1): the message's container and its References chain. */
static void imap_thread_refs(struct imap_thread *th, uint32_t me, const struct mime_cache *c)
{
    const char *p = c->references.len ? c->references.p : c->in_reply_to.p, *id;
    uint32_t prev = IMAP_THREAD_NONE;
    size_t n, count = 0;
    bool fresh;

    while (p && count++ < IMAP_THREAD_MAX_REFS && imap_next_id(&p, &id, &n)) {
        uint32_t cur = imap_ids_get(th, id, n, &fresh);
        if (cur == IMAP_THREAD_NONE)
            return;
        /* Link each reference to the one before it, unless already linked or a loop. */
        if (prev != IMAP_THREAD_NONE && th->t[cur].parent == IMAP_THREAD_NONE &&
            !imap_is_ancestor(th, cur, prev))
            imap_link(th, prev, cur);
        prev = cur;
    }
    /* The last reference is the parent; an existing parent was only inferred: replace it. */
    if (prev != IMAP_THREAD_NONE && imap_is_ancestor(th, me, prev))
        return;
    imap_unlink(th, me);
    if (prev != IMAP_THREAD_NONE)
        imap_link(th, prev, me);
}

static int64_t imap_sent_date(const struct imap_msg *m, const struct mime_cache *c)
{
    return (c->flags & MIME_CACHE_DATE_VALID) ? c->date : m->idate;
}

/* One message into the table; a duplicate or missing Message-ID gets a container of its
 * own (RFC 5256 §2.2 (1)(A)). */
static int imap_thread_add(struct imap_thread *th, size_t idx, bool refs)
{
    struct imap_session *s = th->s;
    const struct imap_msg *m = &s->mbox->msgs[idx];
    struct mime_cache c;
    void *blob = NULL;
    uint32_t me = IMAP_THREAD_NONE;
    bool fresh = false;
    int rc;

    if ((rc = imap_msg_cache_at(s, th->pre, idx, &blob, &c)) != STORE_OK)
        return rc == STORE_ENOTFOUND ? STORE_OK : rc;
    if (refs && c.message_id.len) {
        me = imap_ids_get(th, c.message_id.p, c.message_id.len, &fresh);
        if (me != IMAP_THREAD_NONE && th->t[me].msg >= 0)
            me = IMAP_THREAD_NONE; /* a duplicate: on its own */
    }
    if (me == IMAP_THREAD_NONE && th->rc == STORE_OK)
        me = imap_tnode_new(th, (int64_t)idx);
    if (me != IMAP_THREAD_NONE) {
        th->t[me].msg = (int64_t)idx;
        th->t[me].date = imap_sent_date(m, &c);
        th->t[me].reply = c.flags & MIME_CACHE_SUBJECT_REPLY;
        th->t[me].subject = strndup(c.base_subject.p, c.base_subject.len);
        if (!th->t[me].subject)
            th->rc = STORE_ENOMEM;
        else if (refs)
            imap_thread_refs(th, me, &c);
    }
    free(blob);
    return th->rc;
}

/* ---- sorting siblings --------------------------------------------------------------------- */

static int imap_tnode_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct imap_thread *th = ctx;
    const struct imap_tnode *a = &th->t[*(const uint32_t *)pa], *b = &th->t[*(const uint32_t *)pb];

    if (a->date != b->date)
        return a->date < b->date ? -1 : 1;
    /* Ties by sequence number; a dummy sorts as its first child's message. */
    int64_t ma = a->msg >= 0 || a->child == IMAP_THREAD_NONE ? a->msg : th->t[a->child].msg;
    int64_t mb = b->msg >= 0 || b->child == IMAP_THREAD_NONE ? b->msg : th->t[b->child].msg;
    return ma < mb ? -1 : ma > mb;
}

/* Sorts the list starting at *head by date; scratch holds th->n entries. */
static void imap_sort_siblings(struct imap_thread *th, uint32_t *head, uint32_t *scratch)
{
    size_t n = 0;

    for (uint32_t c = *head; c != IMAP_THREAD_NONE; c = th->t[c].next)
        scratch[n++] = c;
    if (n < 2)
        return;
    qsort_r(scratch, n, sizeof(*scratch), imap_tnode_cmp, th);
    for (size_t i = 0; i < n; i++)
        th->t[scratch[i]].next = i + 1 < n ? scratch[i + 1] : IMAP_THREAD_NONE;
    *head = scratch[0];
}

/* A list of roots by date. */
static void imap_sort_list(struct imap_thread *th, uint32_t *list, size_t n)
{
    if (n < 2) /* nothing to order; an empty mailbox may pass a NULL list */
        return;
    qsort_r(list, n, sizeof(*list), imap_tnode_cmp, th);
}

/* Every container's children sorted, deepest first, so a dummy can take its date from its
 * (already sorted) first child. Containers were created parents-last in no useful order,
 * so the order comes from a depth-first listing made without recursion. */
static void imap_sort_all(struct imap_thread *th, const uint32_t *roots, size_t nroots,
                          uint32_t *order, uint32_t *scratch)
{
    size_t n = 0, top = 0;

    for (size_t i = 0; i < nroots; i++)
        order[n++] = roots[i];
    for (; top < n; top++)
        for (uint32_t c = th->t[order[top]].child; c != IMAP_THREAD_NONE; c = th->t[c].next)
            order[n++] = c;
    for (size_t i = n; i-- > 0;) {
        struct imap_tnode *t = &th->t[order[i]];
        imap_sort_siblings(th, &t->child, scratch);
        if (t->msg < 0 && t->child != IMAP_THREAD_NONE)
            t->date = th->t[t->child].date;
    }
}

/* ---- REFERENCES ------------------------------------------------------------------------- */

/* RFC 5256 §2.2 (3): dummies without children go; a dummy's children take its place,
 * except that at the root only a single child is promoted. Works breadth-first with an
 * explicit queue; promoted children are looked at again at their new level. */
static void imap_prune(struct imap_thread *th, uint32_t *queue)
{
    size_t head = 0, tail = 0;

    for (uint32_t i = 0; i < th->n; i++)
        if (th->t[i].parent == IMAP_THREAD_NONE && !th->t[i].dead)
            queue[tail++] = i;
    while (head < tail) {
        uint32_t c = queue[head++];
        struct imap_tnode *t = &th->t[c];
        uint32_t parent = t->parent;
        if (t->msg < 0 && t->child == IMAP_THREAD_NONE) {
            imap_unlink(th, c);
            t->dead = true;
            continue;
        }
        bool single = t->child != IMAP_THREAD_NONE && th->t[t->child].next == IMAP_THREAD_NONE;
        if (t->msg < 0 && (parent != IMAP_THREAD_NONE || single)) {
            /* Promote: the children move up to the dummy's level, and are queued again. */
            for (uint32_t k = t->child, nx; k != IMAP_THREAD_NONE; k = nx) {
                nx = th->t[k].next;
                th->t[k].parent = th->t[k].next = IMAP_THREAD_NONE;
                if (parent != IMAP_THREAD_NONE)
                    imap_link(th, parent, k);
                queue[tail++] = k;
            }
            t->child = IMAP_THREAD_NONE;
            imap_unlink(th, c);
            t->dead = true;
            continue;
        }
        for (uint32_t k = t->child; k != IMAP_THREAD_NONE; k = th->t[k].next)
            queue[tail++] = k;
    }
}

static const char *imap_root_subject(const struct imap_thread *th, uint32_t r)
{
    const struct imap_tnode *t = &th->t[r];
    if (t->msg < 0 && t->child != IMAP_THREAD_NONE)
        t = &th->t[t->child];
    return t->subject ? t->subject : "";
}

struct imap_subj_ctx {
    const struct imap_thread *th;
    const uint32_t *roots;
};

/* Positions in roots[], by base subject and then position (the date order). */
static int imap_rootpos_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct imap_subj_ctx *x = ctx;
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    int r =
        strcasecmp(imap_root_subject(x->th, x->roots[a]), imap_root_subject(x->th, x->roots[b]));

    return r ? r : a < b ? -1 : a > b;
}

/* Merges root r into o, the thread that holds the subject so far; returns the container
 * that holds it now (RFC 5256 §2.2 (5)(C)). */
static uint32_t imap_merge_two(struct imap_thread *th, uint32_t o, uint32_t r)
{
    struct imap_tnode *to = &th->t[o], *tr = &th->t[r];

    if (to->msg < 0 && tr->msg < 0) { /* both dummies: the children join */
        for (uint32_t k = tr->child, nx; k != IMAP_THREAD_NONE; k = nx) {
            nx = th->t[k].next;
            th->t[k].parent = IMAP_THREAD_NONE;
            imap_link(th, o, k);
        }
        tr->child = IMAP_THREAD_NONE;
        tr->dead = true;
        return o;
    }
    if (to->msg < 0 || (tr->reply && !to->reply)) {
        imap_link(th, o, r); /* under the dummy, or a reply under the original */
        return o;
    }
    if (tr->msg < 0 || (to->reply && !tr->reply)) {
        imap_link(th, r, o);
        return r;
    }
    uint32_t d = imap_tnode_new(th, -1); /* neither is a reply: a new dummy holds both */
    if (d == IMAP_THREAD_NONE)
        return o;
    imap_link(th, d, o);
    imap_link(th, d, r);
    return d;
}

/* RFC 5256 §2.2 (5): root threads with the same base subject are gathered. roots[] is
 * updated in place; entries set to NONE are gone. */
static int imap_merge_subjects(struct imap_thread *th, uint32_t *roots, size_t n)
{
    struct imap_subj_ctx x = {th, roots};
    size_t *pos = malloc((n ? n : 1) * sizeof(*pos)), np = 0;

    if (!pos)
        return STORE_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (*imap_root_subject(th, roots[i]))
            pos[np++] = i;
    if (np > 1)
        qsort_r(pos, np, sizeof(*pos), imap_rootpos_cmp, &x);
    for (size_t i = 0; i < np;) {
        size_t first = pos[i], j = i + 1;
        const char *subj = imap_root_subject(th, roots[first]);
        while (j < np && strcasecmp(imap_root_subject(th, roots[pos[j]]), subj) == 0)
            j++;
        for (size_t k = i + 1; k < j; k++) {
            roots[first] = imap_merge_two(th, roots[first], roots[pos[k]]);
            roots[pos[k]] = IMAP_THREAD_NONE;
        }
        i = j;
    }
    free(pos);
    return th->rc;
}

/* ---- ORDEREDSUBJECT ---------------------------------------------------------------------- */

static int imap_subject_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct imap_thread *th = ctx;
    const struct imap_tnode *a = &th->t[*(const uint32_t *)pa], *b = &th->t[*(const uint32_t *)pb];
    int r = strcasecmp(a->subject, b->subject);

    if (r)
        return r;
    if (a->date != b->date)
        return a->date < b->date ? -1 : 1;
    return a->msg < b->msg ? -1 : a->msg > b->msg;
}

/* RFC 5256 §2.1: sorted by base subject and date, each subject one thread whose first
 * message is the parent of all the others. Returns the roots in roots[]. */
static size_t imap_ordered_subject(struct imap_thread *th, uint32_t *roots)
{
    size_t n = th->n, nroots = 0;

    for (uint32_t i = 0; i < n; i++)
        roots[i] = i;
    if (n > 1)
        qsort_r(roots, n, sizeof(*roots), imap_subject_cmp, th);
    for (size_t i = 0; i < n; i++) {
        if (nroots && strcasecmp(th->t[roots[nroots - 1]].subject, th->t[roots[i]].subject) == 0)
            imap_link(th, roots[nroots - 1], roots[i]);
        else
            roots[nroots++] = roots[i];
    }
    return nroots;
}

/* ---- REFERENCES ---------------------------------------------------------------------------- */

static size_t imap_compact(uint32_t *roots, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        if (roots[i] != IMAP_THREAD_NONE)
            roots[o++] = roots[i];
    return o;
}

/* Steps (2)-(6) of RFC 5256 §2.2 once every message is linked; roots[] gets the threads. */
static size_t imap_references(struct imap_thread *th, uint32_t *roots, uint32_t *a, uint32_t *b)
{
    size_t n = 0;

    imap_prune(th, a);
    for (uint32_t i = 0; i < th->n; i++)
        if (th->t[i].parent == IMAP_THREAD_NONE && !th->t[i].dead)
            roots[n++] = i;
    imap_sort_all(th, roots, n, a, b);
    imap_sort_list(th, roots, n);
    if (imap_merge_subjects(th, roots, n) != STORE_OK)
        return 0;
    n = imap_compact(roots, n);
    imap_sort_all(th, roots, n, a, b);
    return n;
}

/* ---- output ------------------------------------------------------------------------------- */

enum imap_top { IMAP_T_OPEN, IMAP_T_FIRST, IMAP_T_NEXT, IMAP_T_CLOSE };

struct imap_tstack {
    uint32_t node;
    enum imap_top op;
};

/* One thread without recursion. A node with one child continues the line ("1 2"); with
 * several, each child is a list of its own ("1 (2)(3)"); a dummy writes no number.
 * OPEN starts a list, FIRST/NEXT write a node first in its list or after another. The
 * stack holds at most one entry per node plus one CLOSE per list. */
static void imap_thread_out(struct imap_thread *th, struct imap_cmd *cmd, uint32_t root,
                            struct imap_tstack *st)
{
    struct net_conn *c = th->s->c;
    size_t sp = 0;

    st[sp++] = (struct imap_tstack){root, IMAP_T_OPEN};
    while (sp) {
        struct imap_tstack e = st[--sp];
        bool first = e.op != IMAP_T_NEXT;
        if (e.op == IMAP_T_CLOSE) {
            net_write(c, ")", 1);
            continue;
        }
        if (e.op == IMAP_T_OPEN) {
            net_write(c, "(", 1);
            st[sp++] = (struct imap_tstack){IMAP_THREAD_NONE, IMAP_T_CLOSE};
        }
        const struct imap_tnode *t = &th->t[e.node];
        if (t->msg >= 0) {
            const struct imap_msg *m = &th->s->mbox->msgs[t->msg];
            net_printf(c, "%s%u", first ? "" : " ", cmd->uid ? m->uid : (uint32_t)(t->msg + 1));
            first = false;
        }
        if (t->child == IMAP_THREAD_NONE)
            continue;
        if (th->t[t->child].next == IMAP_THREAD_NONE) {
            st[sp++] = (struct imap_tstack){t->child, first ? IMAP_T_FIRST : IMAP_T_NEXT};
            continue;
        }
        if (!first)
            net_write(c, " ", 1);
        size_t k = 0;
        for (uint32_t ch = t->child; ch != IMAP_THREAD_NONE; ch = th->t[ch].next)
            k++;
        size_t pos = sp + k;
        for (uint32_t ch = t->child; ch != IMAP_THREAD_NONE; ch = th->t[ch].next)
            st[--pos] = (struct imap_tstack){ch, IMAP_T_OPEN};
        sp += k;
    }
}

/* ---- the command ---------------------------------------------------------------------------- */

static int imap_thread_build(struct imap_thread *th, const size_t *idx, size_t n, bool refs,
                             uint32_t **roots, size_t *nroots)
{
    uint32_t *a = NULL, *b = NULL;

    th->pre = imap_pre_new();
    for (size_t i = 0; i < n && th->rc == STORE_OK; i++) {
        int rc = imap_thread_add(th, idx[i], refs);
        if (rc != STORE_OK)
            th->rc = rc;
    }
    imap_pre_free(th->pre);
    th->pre = NULL;
    if (th->rc != STORE_OK)
        return th->rc;
    /* Room for every container, plus the dummies subject merging may add (one per root). */
    size_t cap = 2 * th->n + 1;
    *roots = malloc(cap * sizeof(**roots));
    a = malloc(cap * sizeof(*a));
    b = malloc(cap * sizeof(*b));
    if (!*roots || !a || !b) {
        th->rc = STORE_ENOMEM;
    } else if (refs) {
        *nroots = imap_references(th, *roots, a, b);
    } else {
        *nroots = imap_ordered_subject(th, *roots);
        imap_sort_list(th, *roots, *nroots);
    }
    free(a);
    free(b);
    return th->rc;
}

void imap_cmd_thread(struct imap_session *s, struct imap_cmd *cmd)
{
    struct imap_thread th = {.s = s};
    struct imap_search q;
    size_t *idx = NULL, n = 0, nroots = 0;
    uint32_t *roots = NULL;
    struct imap_tstack *st = NULL;
    bool refs;
    int rc;

    if (cmd->nargs < 3 || cmd->args[0].type != IMAP_ARG_ATOM ||
        (!imap_arg_is_atom(&cmd->args[0], "REFERENCES") &&
         !imap_arg_is_atom(&cmd->args[0], "ORDEREDSUBJECT")) ||
        (cmd->args[1].type != IMAP_ARG_ATOM && cmd->args[1].type != IMAP_ARG_QUOTED)) {
        imap_bad(s, cmd, "THREAD takes ORDEREDSUBJECT or REFERENCES, a charset and criteria");
        return;
    }
    refs = imap_arg_is_atom(&cmd->args[0], "REFERENCES");
    if (imap_search_criteria(s, cmd, cmd->args[1].str, &cmd->args[2], cmd->nargs - 2, &q) < 0)
        return;
    rc = imap_search_run(s, &q, &idx, &n, NULL);
    if (rc == STORE_OK)
        rc = imap_thread_build(&th, idx, n, refs, &roots, &nroots);
    if (rc == STORE_OK && !(st = malloc((2 * th.n + 2) * sizeof(*st))))
        rc = STORE_ENOMEM;
    if (rc != STORE_OK) {
        imap_store_error(s, cmd, rc, NULL, "THREAD");
        goto out;
    }
    net_printf(s->c, "* THREAD");
    for (size_t i = 0; i < nroots; i++) {
        if (i == 0)
            net_write(s->c, " ", 1);
        imap_thread_out(&th, cmd, roots[i], st);
    }
    net_printf(s->c, "\r\n");
    imap_ok(s, cmd, "THREAD completed");
out:
    free(st);
    free(idx);
    free(roots);
    imap_thread_free(&th);
}
