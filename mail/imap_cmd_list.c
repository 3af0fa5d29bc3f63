/*
 * imap_cmd_list.c — LIST (RFC 3501 §6.3.8, RFC 9051 §6.3.9) with LIST-EXTENDED (RFC 5258):
 * selection options SUBSCRIBED, REMOTE, RECURSIVEMATCH and SPECIAL-USE (RFC 6154), return
 * options SUBSCRIBED, CHILDREN, SPECIAL-USE and STATUS (RFC 5819), several patterns in one
 * command. Also the folder snapshot and the pattern matcher LSUB shares.
 *
 * Only mail folders exist for IMAP: calendars, address books, task lists and notes live in
 * the same store but are never listed, and neither is anything below one of them.
 *
 * Every mailbox is selectable (CREATE makes real parents, never \Noselect placeholders), so
 * \Noselect only appears on the root answer of LIST "" "". \HasChildren/\HasNoChildren and
 * the special-use attributes come with every LIST (RFC 5258 and RFC 6154 allow that and
 * clients rely on it); \Subscribed only when the client asked about subscriptions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/imap.h"

#define IMAP_LIST_MAX_PATTERNS 64   /* patterns in one LIST (…) */
#define IMAP_TREE_MAX_DEPTH    64   /* guards against a corrupt parent cycle */
#define IMAP_LIST_NAME_MAX     1023 /* longest path (imap_tree_path's buffer) */

/* ---- the folder snapshot -------------------------------------------------------------- */

struct imap_tree_load {
    struct imap_tree_node *v;
    size_t n, cap;
    int failed;
};

static int imap_tree_collect(const struct store_folder *f, void *ctx)
{
    struct imap_tree_load *l = ctx;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        struct imap_tree_node *p = realloc(l->v, cap * sizeof(*p));
        if (!p) {
            l->failed = 1;
            return 1;
        }
        l->v = p;
        l->cap = cap;
    }
    memset(&l->v[l->n], 0, sizeof(l->v[0]));
    l->v[l->n].f = *f;
    l->v[l->n].parent = -1;
    l->n++;
    return 0;
}

/* Index of the folder with this id (v sorted by id). */
static long imap_tree_find(const struct imap_tree_node *v, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].f.id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo].f.id == id ? (long)lo : -1;
}

/* Writes the full path of v[i] into buf when it and every folder above it are mail folders
 * and returns true; false otherwise. Built here from the snapshot rather than with
 * imap_folder_path, which asks the store once per level: same rule (INBOX by role, '.'
 * between levels), one consistent view. */
static bool imap_tree_path(const struct imap_tree_node *v, size_t n, size_t i, char *buf,
                           size_t size)
{
    char tmp[IMAP_LIST_NAME_MAX + 1];
    long cur = (long)i;
    int depth = 0;

    buf[0] = '\0';
    while (cur >= 0) {
        const struct store_folder *f = &v[cur].f;
        const char *name = f->role == STORE_ROLE_INBOX ? "INBOX" : f->name;
        int len = buf[0] ? snprintf(tmp, sizeof(tmp), "%s%c%s", name, MAIL_HIER_SEP, buf)
                         : snprintf(tmp, sizeof(tmp), "%s", name);
        if (f->cls != STORE_CLASS_MAIL || depth++ > IMAP_TREE_MAX_DEPTH || len < 0 ||
            (size_t)len >= sizeof(tmp) || (size_t)len >= size)
            return false;
        memcpy(buf, tmp, (size_t)len + 1);
        if (f->parent_id == 0)
            return true;
        cur = imap_tree_find(v, n, f->parent_id);
    }
    return false; /* a parent that does not exist: not reachable by any path */
}

void imap_tree_free(struct imap_tree *t)
{
    for (size_t i = 0; t->v && i < t->n; i++)
        free(t->v[i].path);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

static int imap_tree_id_cmp(const void *a, const void *b)
{
    const struct imap_tree_node *x = a, *y = b;
    return x->f.id < y->f.id ? -1 : x->f.id > y->f.id;
}

/* Keeps the reachable mail folders, in id order, and links each to its parent. */
static int imap_tree_compact(struct imap_tree_load *l, struct imap_tree *t)
{
    char path[IMAP_LIST_NAME_MAX + 1];
    size_t o = 0;

    t->v = l->v;
    t->n = l->n;
    /* The store lists by id already; sorting again costs nothing and the lookups rely on it. */
    qsort(l->v, l->n, sizeof(l->v[0]), imap_tree_id_cmp);
    for (size_t i = 0; i < l->n; i++)
        if (imap_tree_path(l->v, l->n, i, path, sizeof(path)) && !(l->v[i].path = strdup(path)))
            return STORE_ENOMEM; /* the caller frees the tree, paths and all */
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].path)
            l->v[o++] = l->v[i];
    t->n = o;
    for (size_t i = 0; i < o; i++) {
        struct imap_tree_node *node = &t->v[i];
        node->parent = node->f.parent_id ? imap_tree_find(t->v, o, node->f.parent_id) : -1;
        if (node->parent >= 0)
            t->v[node->parent].has_children = true;
    }
    return STORE_OK;
}

int imap_tree_load(struct imap_session *s, struct imap_tree *t, struct store_err *err)
{
    struct imap_tree_load l = {0};
    int rc;

    t->v = NULL;
    t->n = 0;
    rc = store_folder_list(s->su, 0, imap_tree_collect, &l, err);
    if (rc == STORE_OK && l.failed)
        rc = STORE_ENOMEM;
    if (rc != STORE_OK) {
        free(l.v);
        return rc;
    }
    if ((rc = imap_tree_compact(&l, t)) != STORE_OK)
        imap_tree_free(t);
    return rc;
}

/* ---- patterns ----------------------------------------------------------------------- */

int imap_list_pattern(struct imap_session *s, struct imap_cmd *cmd, const struct imap_arg *ref,
                      const struct imap_arg *pat, char *buf, size_t size)
{
    char r[1024], p[1024];

    if (imap_arg_mailbox(s, cmd, ref, r, sizeof(r)) < 0 ||
        imap_arg_mailbox(s, cmd, pat, p, sizeof(p)) < 0)
        return -1;
    /* The reference is a prefix the pattern is read in the context of (RFC 3501 §6.3.8);
     * with one flat namespace that is plain concatenation. */
    if ((size_t)snprintf(buf, size, "%s%s", r, p) >= size) {
        imap_bad(s, cmd, "Mailbox pattern too long");
        return -1;
    }
    return 0;
}

static bool imap_char_eq(char a, char b, bool fold)
{
    if (a == b)
        return true;
    return fold && (unsigned char)a < 0x80 && (unsigned char)b < 0x80 && (a | 0x20) == (b | 0x20) &&
           ((a | 0x20) >= 'a' && (a | 0x20) <= 'z');
}

/* Dynamic programming over (pattern position, name position), one row at a time: linear
 * memory and O(pattern × name) time whatever the wildcards, so no pattern can make the
 * matcher backtrack exponentially. INBOX is case-insensitive (RFC 3501 §5.1), so the first
 * five characters of the inbox and of its children compare without case. */
bool imap_list_match(const char *pattern, const char *name)
{
    bool a[IMAP_LIST_NAME_MAX + 1], b[IMAP_LIST_NAME_MAX + 1], *row = a, *next = b;
    size_t nlen = strlen(name);
    size_t fold =
        (strncmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == MAIL_HIER_SEP)) ? 5 : 0;

    if (nlen > IMAP_LIST_NAME_MAX)
        return false;
    memset(row, 0, (nlen + 1) * sizeof(bool));
    row[0] = true;
    for (const char *p = pattern; *p; p++) {
        next[0] = (*p == '*' || *p == '%') && row[0];
        for (size_t j = 1; j <= nlen; j++) {
            char c = name[j - 1];
            if (*p == '*')
                next[j] = row[j] || next[j - 1];
            else if (*p == '%')
                next[j] = row[j] || (next[j - 1] && c != MAIL_HIER_SEP);
            else
                next[j] = row[j - 1] && imap_char_eq(*p, c, j <= fold);
        }
        bool *tmp = row;
        row = next;
        next = tmp;
    }
    return row[nlen];
}

/* ---- LIST --------------------------------------------------------------------------- */

#define IMAP_SEL_SUBSCRIBED     0x01
#define IMAP_SEL_SPECIALUSE     0x02
#define IMAP_SEL_RECURSIVEMATCH 0x04

struct imap_list_req {
    bool extended;   /* LIST-EXTENDED syntax used */
    unsigned select; /* IMAP_SEL_* */
    bool ret_subscribed;
    unsigned status; /* IMAP_STATUS_* for RETURN (STATUS (…)), 0 when not asked */
    const char *patterns[IMAP_LIST_MAX_PATTERNS];
    size_t npatterns;
    bool root; /* an empty pattern: asks for the delimiter and the root */
};

static int imap_list_selopts(struct imap_session *s, struct imap_cmd *cmd,
                             const struct imap_arg *list, struct imap_list_req *q)
{
    for (size_t i = 0; i < list->count; i++) {
        const struct imap_arg *o = &list->list[i];
        if (imap_arg_is_atom(o, "SUBSCRIBED"))
            q->select |= IMAP_SEL_SUBSCRIBED;
        else if (imap_arg_is_atom(o, "SPECIAL-USE"))
            q->select |= IMAP_SEL_SPECIALUSE;
        else if (imap_arg_is_atom(o, "RECURSIVEMATCH"))
            q->select |= IMAP_SEL_RECURSIVEMATCH;
        else if (!imap_arg_is_atom(o, "REMOTE")) { /* no remote mailboxes: nothing to add */
            imap_bad(s, cmd, "Unknown LIST selection option");
            return -1;
        }
    }
    /* RFC 5258 §3: RECURSIVEMATCH only refines another selection option. */
    if (q->select == IMAP_SEL_RECURSIVEMATCH) {
        imap_bad(s, cmd, "RECURSIVEMATCH needs another selection option");
        return -1;
    }
    return 0;
}

static int imap_list_retopts(struct imap_session *s, struct imap_cmd *cmd,
                             const struct imap_arg *list, struct imap_list_req *q)
{
    char err[256];

    for (size_t i = 0; i < list->count; i++) {
        const struct imap_arg *o = &list->list[i];
        if (imap_arg_is_atom(o, "SUBSCRIBED")) {
            q->ret_subscribed = true;
        } else if (imap_arg_is_atom(o, "STATUS") && i + 1 < list->count) {
            if (imap_status_items(&list->list[++i], &q->status, err, sizeof(err)) < 0) {
                imap_bad(s, cmd, "%s", err);
                return -1;
            }
        } else if (!imap_arg_is_atom(o, "CHILDREN") && !imap_arg_is_atom(o, "SPECIAL-USE")) {
            /* CHILDREN and SPECIAL-USE attributes are sent anyway */
            imap_bad(s, cmd, "Unknown LIST return option");
            return -1;
        }
    }
    return 0;
}

static int imap_list_add_pattern(struct imap_session *s, struct imap_cmd *cmd,
                                 const struct imap_arg *ref, const struct imap_arg *pat,
                                 struct imap_list_req *q)
{
    char buf[2048];
    char *copy;

    if (q->npatterns == IMAP_LIST_MAX_PATTERNS) {
        imap_bad(s, cmd, "Too many patterns");
        return -1;
    }
    /* RFC 3501 §6.3.8: an empty mailbox name, whatever the reference, asks for the root
     * (which may be ""; here it always is). It matches no mailbox. */
    const char *raw = imap_arg_string(cmd, pat);
    if (raw && !*raw) {
        q->root = true;
        return 0;
    }
    if (imap_list_pattern(s, cmd, ref, pat, buf, sizeof(buf)) < 0)
        return -1;
    if (!(copy = imap_arena_strndup(&cmd->arena, buf, strlen(buf)))) {
        imap_no(s, cmd, "[SERVERBUG] Out of memory");
        return -1;
    }
    q->patterns[q->npatterns++] = copy;
    return 0;
}

/* LIST [(selection)] reference (pattern | (patterns)) [RETURN (options)] */
static int imap_list_parse(struct imap_session *s, struct imap_cmd *cmd, struct imap_list_req *q)
{
    size_t i = 0;

    if (cmd->nargs >= 1 && cmd->args[0].type == IMAP_ARG_LIST) {
        q->extended = true;
        if (imap_list_selopts(s, cmd, &cmd->args[i++], q) < 0)
            return -1;
    }
    if (cmd->nargs != i + 2 && cmd->nargs != i + 4) {
        imap_bad(s, cmd, "LIST takes a reference and a mailbox pattern");
        return -1;
    }
    if (cmd->nargs == i + 4) {
        if (!imap_arg_is_atom(&cmd->args[i + 2], "RETURN") ||
            cmd->args[i + 3].type != IMAP_ARG_LIST) {
            imap_bad(s, cmd, "Expected RETURN (options)");
            return -1;
        }
        q->extended = true;
        if (imap_list_retopts(s, cmd, &cmd->args[i + 3], q) < 0)
            return -1;
    }
    const struct imap_arg *ref = &cmd->args[i], *pat = &cmd->args[i + 1];
    if (pat->type != IMAP_ARG_LIST)
        return imap_list_add_pattern(s, cmd, ref, pat, q);
    q->extended = true;
    if (pat->count == 0) {
        imap_bad(s, cmd, "Empty pattern list");
        return -1;
    }
    for (size_t k = 0; k < pat->count; k++)
        if (imap_list_add_pattern(s, cmd, ref, &pat->list[k], q) < 0)
            return -1;
    return 0;
}

static bool imap_role_is_special(enum store_role r)
{
    return r == STORE_ROLE_DRAFTS || r == STORE_ROLE_SENT || r == STORE_ROLE_JUNK ||
           r == STORE_ROLE_TRASH || r == STORE_ROLE_ARCHIVE;
}

static const char *imap_role_attr(enum store_role r)
{
    switch (r) {
    case STORE_ROLE_DRAFTS:
        return " \\Drafts";
    case STORE_ROLE_SENT:
        return " \\Sent";
    case STORE_ROLE_JUNK:
        return " \\Junk";
    case STORE_ROLE_TRASH:
        return " \\Trash";
    case STORE_ROLE_ARCHIVE:
        return " \\Archive";
    default:
        return "";
    }
}

static bool imap_list_selected(const struct imap_list_req *q, const struct store_folder *f)
{
    if ((q->select & IMAP_SEL_SUBSCRIBED) && !f->subscribed)
        return false;
    if ((q->select & IMAP_SEL_SPECIALUSE) && !imap_role_is_special(f->role))
        return false;
    return true;
}

static bool imap_list_matches(const struct imap_list_req *q, const char *path)
{
    for (size_t i = 0; i < q->npatterns; i++)
        if (imap_list_match(q->patterns[i], path))
            return true;
    return false;
}

static void imap_list_line(struct imap_session *s, const struct imap_list_req *q,
                           const struct imap_tree_node *node, bool childinfo)
{
    bool show_sub = (q->select & IMAP_SEL_SUBSCRIBED) || q->ret_subscribed;
    /* The attribute list starts with a space to drop: "(\HasChildren \Sent)". */
    char attrs[128];

    snprintf(attrs, sizeof(attrs), "%s%s%s",
             node->has_children ? " \\HasChildren" : " \\HasNoChildren",
             show_sub && node->f.subscribed ? " \\Subscribed" : "", imap_role_attr(node->f.role));
    net_printf(s->c, "* LIST (%s) \"%c\" ", attrs + 1, MAIL_HIER_SEP);
    imap_out_mailbox(s, node->path);
    if (childinfo)
        net_printf(s->c, " (\"CHILDINFO\" (%s%s%s))",
                   q->select & IMAP_SEL_SUBSCRIBED ? "\"SUBSCRIBED\"" : "",
                   (q->select & IMAP_SEL_SUBSCRIBED) && (q->select & IMAP_SEL_SPECIALUSE) ? " "
                                                                                          : "",
                   q->select & IMAP_SEL_SPECIALUSE ? "\"SPECIAL-USE\"" : "");
    net_printf(s->c, "\r\n");
}

/* With RECURSIVEMATCH, which folders have a descendant meeting the selection criteria
 * (RFC 5258 §3.5: they are returned with CHILDINFO even when they do not meet it). */
static bool *imap_list_descmatch(const struct imap_tree *t, const struct imap_list_req *q)
{
    bool *dm = calloc(t->n ? t->n : 1, sizeof(bool));

    if (!dm || !(q->select & IMAP_SEL_RECURSIVEMATCH))
        return dm;
    for (size_t i = 0; i < t->n; i++) {
        if (!imap_list_selected(q, &t->v[i].f))
            continue;
        int depth = 0;
        for (long p = t->v[i].parent; p >= 0 && depth++ < IMAP_TREE_MAX_DEPTH; p = t->v[p].parent)
            dm[p] = true;
    }
    return dm;
}

static int imap_list_send(struct imap_session *s, const struct imap_list_req *q,
                          const struct imap_tree *t)
{
    bool *dm = imap_list_descmatch(t, q);
    int rc = STORE_OK;

    if (!dm)
        return STORE_ENOMEM;
    for (size_t i = 0; i < t->n && rc == STORE_OK; i++) {
        const struct imap_tree_node *node = &t->v[i];
        bool sel = imap_list_selected(q, &node->f);
        if ((!sel && !dm[i]) || !imap_list_matches(q, node->path))
            continue;
        imap_list_line(s, q, node, dm[i]);
        if (q->status)
            rc = imap_status_send(s, &node->f, node->path, q->status);
    }
    free(dm);
    return rc;
}

void imap_cmd_list(struct imap_session *s, struct imap_cmd *cmd)
{
    struct imap_list_req q = {0};
    struct imap_tree t;
    struct store_err err = {0};
    int rc;

    if (imap_list_parse(s, cmd, &q) < 0)
        return;
    /* LIST "" "": the hierarchy delimiter and the root, nothing else to look up. */
    if (q.root && q.npatterns == 0) {
        imap_untagged(s, "LIST (\\Noselect) \"%c\" \"\"", MAIL_HIER_SEP);
        imap_ok(s, cmd, "LIST completed");
        return;
    }
    if ((rc = imap_tree_load(s, &t, &err)) != STORE_OK) {
        imap_store_error(s, cmd, rc, &err, "Listing mailboxes");
        return;
    }
    if (q.root)
        imap_untagged(s, "LIST (\\Noselect) \"%c\" \"\"", MAIL_HIER_SEP);
    rc = imap_list_send(s, &q, &t);
    imap_tree_free(&t);
    if (rc != STORE_OK)
        imap_store_error(s, cmd, rc, &err, "Listing mailboxes");
    else
        imap_ok(s, cmd, "LIST completed");
}
