/*
 * eas_cmd_foldersync.c — FolderSync (MS-ASCMD 2.2.1.5) and the per-device hierarchy state
 * that FolderCreate/FolderUpdate/FolderDelete share.
 *
 * The device's view of the hierarchy is the set of folders we last told it about (id,
 * parent, type, name), stored per DeviceId with the SyncKey that names it. A FolderSync
 * with that key gets the difference between the store's folders now and that set (Add,
 * Update, Delete) and a new key; key 0 starts over with everything as Adds. The previous
 * key and set are kept too, so a device whose answer was lost can repeat its request. Any
 * other key is Status 9 (the device must start over with key 0).
 *
 * Diffing against the set the device holds (rather than reading the journal) makes every
 * engine's changes visible — an IMAP CREATE, a DAV MKCALENDAR, a folder removed by the
 * CLI — with nothing but the folder list, which is small.
 *
 * Folder types (MS-ASCMD 2.2.3.170.3): roles map to the default folders (Inbox 2, Drafts
 * 3, Deleted Items 4, Sent Items 5, Tasks 7, Calendar 8, Contacts 9, Notes 10); other
 * folders are user folders of their class (mail 12, calendar 13, contacts 14, tasks 15,
 * notes 17). Junk and Archive are user mail folders. There is no Outbox (6) in the store:
 * SendMail submits directly, so none is announced.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eas/eas_int.h"

#define EAS_HIER_MAX_FOLDERS 100000
#define EAS_HIER_RECORD_MAX  (64u * 1024 * 1024)

/* FolderSync Status values (MS-ASCMD 2.2.3.177.4). */
enum {
    FS_OK = 1,
    FS_SERVER_ERROR = 6,
    FS_BAD_KEY = 9,
    FS_MALFORMED = 10,
};

int eas_folder_type(const struct store_folder *f)
{
    static const int by_role[] = {
        [STORE_ROLE_INBOX] = 2,    [STORE_ROLE_DRAFTS] = 3, [STORE_ROLE_TRASH] = 4,
        [STORE_ROLE_SENT] = 5,     [STORE_ROLE_TASKS] = 7,  [STORE_ROLE_CALENDAR] = 8,
        [STORE_ROLE_CONTACTS] = 9, [STORE_ROLE_NOTES] = 10,
    };

    if ((size_t)f->role < sizeof(by_role) / sizeof(by_role[0]) && by_role[f->role])
        return by_role[f->role];
    switch (f->cls) {
    case STORE_CLASS_MAIL:
        return 12;
    case STORE_CLASS_CALENDAR:
        return 13;
    case STORE_CLASS_CONTACTS:
        return 14;
    case STORE_CLASS_TASKS:
        return 15;
    case STORE_CLASS_NOTES:
        return 17;
    }
    return 0;
}

int eas_folder_type_class(int type)
{
    switch (type) {
    case 1: /* a generic user folder: mail, as Exchange does */
    case 12:
        return STORE_CLASS_MAIL;
    case 13:
        return STORE_CLASS_CALENDAR;
    case 14:
        return STORE_CLASS_CONTACTS;
    case 15:
        return STORE_CLASS_TASKS;
    case 17:
        return STORE_CLASS_NOTES;
    }
    return 0;
}

static int eas_parse_u64(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;

    if (n == 0 || n > 18)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int eas_parse_folder_id(const char *s, int64_t *id)
{
    return s ? eas_parse_u64(s, strlen(s), id) : -1;
}

int eas_parse_server_id(const char *sid, int64_t *folder_id, int64_t *item_id)
{
    const char *colon = sid ? strchr(sid, ':') : NULL;

    if (!colon || eas_parse_u64(sid, (size_t)(colon - sid), folder_id) != 0 ||
        eas_parse_u64(colon + 1, strlen(colon + 1), item_id) != 0)
        return -1;
    return 0;
}

int eas_hier_parse_key(const char *s, uint32_t *key)
{
    int64_t v;

    if (!s || eas_parse_u64(s, strlen(s), &v) != 0 || v > UINT32_MAX)
        return -1;
    *key = (uint32_t)v;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * The stored state: "key N", "prev N", then "c|p id parent type name" lines.
 * ------------------------------------------------------------------------------------ */

void eas_hier_free(struct eas_hstate *h)
{
    free(h->cur);
    free(h->prev);
    memset(h, 0, sizeof(*h));
}

static int eas_hier_push(struct eas_hfolder **v, size_t *n, const struct eas_hfolder *f)
{
    struct eas_hfolder *nv;

    if (*n >= EAS_HIER_MAX_FOLDERS)
        return -1;
    /* Grow in powers of two: n is a power of two exactly when the array is full. */
    if ((*n & (*n - 1)) == 0) {
        nv = realloc(*v, (*n ? *n * 2 : 16) * sizeof(**v));
        if (!nv)
            return -1;
        *v = nv;
    }
    (*v)[(*n)++] = *f;
    return 0;
}

static void eas_hier_parse_line(struct eas_hstate *h, const char *line, size_t n)
{
    struct eas_hfolder f = {0};
    char buf[512];
    long long id, parent;
    int type, off = 0;

    if (n >= sizeof(buf))
        return;
    memcpy(buf, line, n);
    buf[n] = '\0';
    if (sscanf(buf, "key %u", &h->key) == 1 || sscanf(buf, "prev %u", &h->prev_key) == 1)
        return;
    if ((buf[0] != 'c' && buf[0] != 'p') ||
        sscanf(buf + 1, " %lld %lld %d %n", &id, &parent, &type, &off) != 3 || off == 0)
        return;
    f.id = id;
    f.parent = parent;
    f.type = type;
    /* The name is last and kept as is (folder names hold no line breaks). */
    snprintf(f.name, sizeof(f.name), "%s", buf + 1 + off);
    if (buf[0] == 'c')
        eas_hier_push(&h->cur, &h->ncur, &f);
    else
        eas_hier_push(&h->prev, &h->nprev, &f);
}

int eas_hier_load(struct store_user *u, const char *device_id, struct eas_hstate *h)
{
    void *val = NULL;
    size_t len = 0, i = 0;
    int rc;

    memset(h, 0, sizeof(*h));
    rc = store_state_get(u, EAS_NS_HIERARCHY, device_id, &val, &len, NULL);
    if (rc == STORE_ENOTFOUND)
        return STORE_OK;
    if (rc != STORE_OK)
        return rc;
    while (i < len) {
        const char *line = (const char *)val + i, *nl = memchr(line, '\n', len - i);
        size_t n = nl ? (size_t)(nl - line) : len - i;
        eas_hier_parse_line(h, line, n);
        i += n + 1;
    }
    free(val);
    return STORE_OK;
}

static int eas_hier_emit(char **buf, size_t *len, size_t *cap, char kind,
                         const struct eas_hfolder *f)
{
    char line[400];
    int n = snprintf(line, sizeof(line), "%c %lld %lld %d ", kind, (long long)f->id,
                     (long long)f->parent, f->type);
    size_t nl = strcspn(f->name, "\r\n");

    if (n < 0 || (size_t)n + nl + 1 >= sizeof(line))
        return -1;
    memcpy(line + n, f->name, nl);
    n += (int)nl;
    line[n++] = '\n';
    if (*len + (size_t)n > *cap) {
        size_t c = *cap ? *cap * 2 : 4096;
        char *b;
        while (c < *len + (size_t)n)
            c *= 2;
        if (c > EAS_HIER_RECORD_MAX || !(b = realloc(*buf, c)))
            return -1;
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *len, line, (size_t)n);
    *len += (size_t)n;
    return 0;
}

int eas_hier_save(struct store_user *u, const char *device_id, const struct eas_hstate *h)
{
    char *buf = NULL, first[64];
    size_t len = 0, cap = 0;
    int rc = STORE_ENOMEM;

    snprintf(first, sizeof(first), "key %u\nprev %u\n", h->key, h->prev_key);
    cap = 4096;
    if (!(buf = malloc(cap)))
        return STORE_ENOMEM;
    len = strlen(first);
    memcpy(buf, first, len);
    for (size_t i = 0; i < h->ncur; i++)
        if (eas_hier_emit(&buf, &len, &cap, 'c', &h->cur[i]) != 0)
            goto out;
    for (size_t i = 0; i < h->nprev; i++)
        if (eas_hier_emit(&buf, &len, &cap, 'p', &h->prev[i]) != 0)
            goto out;
    rc = store_state_put(u, EAS_NS_HIERARCHY, device_id, buf, len, NULL);
out:
    free(buf);
    return rc;
}

struct eas_hier_snap {
    struct eas_hfolder *v;
    size_t n;
    int failed;
};

static int eas_hier_snap_cb(const struct store_folder *f, void *ctx)
{
    struct eas_hier_snap *s = ctx;
    struct eas_hfolder h = {0};

    h.type = eas_folder_type(f);
    if (!h.type)
        return 0;
    h.id = f->id;
    h.parent = f->parent_id;
    snprintf(h.name, sizeof(h.name), "%s", f->role == STORE_ROLE_INBOX ? "Inbox" : f->name);
    if (eas_hier_push(&s->v, &s->n, &h) != 0) {
        s->failed = 1;
        return 1;
    }
    return 0;
}

int eas_hier_snapshot(struct store_user *u, struct eas_hfolder **out, size_t *n)
{
    struct eas_hier_snap s = {0};
    int rc = store_folder_list(u, 0, eas_hier_snap_cb, &s, NULL);

    if (rc == STORE_OK && s.failed)
        rc = STORE_ENOMEM;
    if (rc != STORE_OK) {
        free(s.v);
        return rc;
    }
    *out = s.v;
    *n = s.n;
    return STORE_OK;
}

static const struct eas_hfolder *eas_hier_find(const struct eas_hfolder *v, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].id == id)
            return &v[i];
    return NULL;
}

/* The current set becomes the previous one and a copy of it (changed as asked) the new
 * current one, under the next key. */
int eas_hier_apply(struct eas_hstate *h, const struct eas_hfolder *f, int remove)
{
    struct eas_hfolder *copy = NULL;
    char *gone = calloc(h->ncur ? h->ncur : 1, 1);
    size_t n = 0;
    int more = 1;

    if (!gone)
        return -1;
    for (size_t i = 0; i < h->ncur; i++)
        gone[i] = h->cur[i].id == f->id;
    /* A deleted folder takes its subfolders with it, on the device as in the store. */
    while (remove && more) {
        more = 0;
        for (size_t i = 0; i < h->ncur; i++) {
            const struct eas_hfolder *p = eas_hier_find(h->cur, h->ncur, h->cur[i].parent);
            if (!gone[i] && p && gone[p - h->cur])
                gone[i] = more = 1;
        }
    }
    for (size_t i = 0; i < h->ncur; i++) {
        if (gone[i])
            continue;
        if (eas_hier_push(&copy, &n, &h->cur[i]) != 0)
            goto err;
    }
    free(gone);
    gone = NULL;
    if (!remove && eas_hier_push(&copy, &n, f) != 0)
        goto err;
    free(h->prev);
    h->prev = h->cur;
    h->nprev = h->ncur;
    h->prev_key = h->key;
    h->cur = copy;
    h->ncur = n;
    h->key = h->key + 1 ? h->key + 1 : 1;
    return 0;
err:
    free(gone);
    free(copy);
    return -1;
}

/* ---------------------------------------------------------------------------------------
 * FolderSync
 * ------------------------------------------------------------------------------------ */

static int eas_fs_status(struct eas_req *req, int status)
{
    struct eas_node *root;

    eas_doc_free(req->out);
    req->out = eas_doc_new();
    root = req->out ? eas_add(req->out, NULL, EAS_FOLDERHIERARCHY_FOLDERSYNC) : NULL;
    return root && eas_add_int(req->out, root, EAS_FOLDERHIERARCHY_STATUS, status) ? 0 : -1;
}

static int eas_fs_folder(struct eas_doc *d, struct eas_node *changes, unsigned tag,
                         const struct eas_hfolder *f)
{
    struct eas_node *n = eas_add(d, changes, tag);
    char id[24], parent[24];

    snprintf(id, sizeof(id), "%lld", (long long)f->id);
    snprintf(parent, sizeof(parent), "%lld", (long long)f->parent);
    return n && eas_add_text(d, n, EAS_FOLDERHIERARCHY_SERVERID, id) &&
                   eas_add_text(d, n, EAS_FOLDERHIERARCHY_PARENTID, parent) &&
                   eas_add_text(d, n, EAS_FOLDERHIERARCHY_DISPLAYNAME, f->name) &&
                   eas_add_int(d, n, EAS_FOLDERHIERARCHY_TYPE, f->type)
               ? 0
               : -1;
}

/* One change for the device. */
struct eas_fs_change {
    unsigned tag; /* Add, Update or Delete */
    const struct eas_hfolder *f;
};

struct eas_fs_diff {
    struct eas_fs_change *v;
    size_t n;
};

static int eas_fs_push(struct eas_fs_diff *d, unsigned tag, const struct eas_hfolder *f)
{
    struct eas_fs_change *nv;

    if ((d->n & (d->n - 1)) == 0) {
        nv = realloc(d->v, (d->n ? d->n * 2 : 16) * sizeof(*nv));
        if (!nv)
            return -1;
        d->v = nv;
    }
    d->v[d->n].tag = tag;
    d->v[d->n].f = f;
    d->n++;
    return 0;
}

/* Adds with every parent before its children (a folder moved under one created later has
 * a larger parent id than its own). */
static int eas_fs_adds(struct eas_fs_diff *d, const struct eas_hfolder *now, size_t nnow,
                       const struct eas_hfolder *base, size_t nbase)
{
    char *done = calloc(nnow ? nnow : 1, 1);
    int progress = 1, rc = 0;

    if (!done)
        return -1;
    for (size_t i = 0; i < nnow; i++)
        done[i] = eas_hier_find(base, nbase, now[i].id) != NULL;
    while (progress && rc == 0) {
        progress = 0;
        for (size_t i = 0; i < nnow && rc == 0; i++) {
            const struct eas_hfolder *f = &now[i], *p;
            if (done[i])
                continue;
            /* The parent must be known: top level, held by the device, or sent already. */
            p = f->parent ? eas_hier_find(now, nnow, f->parent) : NULL;
            if (p && !done[p - now])
                continue;
            done[i] = 1;
            progress = 1;
            rc = eas_fs_push(d, EAS_FOLDERHIERARCHY_ADD, f);
        }
    }
    /* An orphan (its parent is not shown) is sent anyway rather than lost. */
    for (size_t i = 0; i < nnow && rc == 0; i++)
        if (!done[i])
            rc = eas_fs_push(d, EAS_FOLDERHIERARCHY_ADD, &now[i]);
    free(done);
    return rc;
}

/* Deletes, then Updates, then Adds. */
static int eas_fs_diff(struct eas_fs_diff *d, const struct eas_hfolder *now, size_t nnow,
                       const struct eas_hfolder *base, size_t nbase)
{
    for (size_t i = 0; i < nbase; i++)
        if (!eas_hier_find(now, nnow, base[i].id) &&
            eas_fs_push(d, EAS_FOLDERHIERARCHY_DELETE, &base[i]) != 0)
            return -1;
    for (size_t i = 0; i < nnow; i++) {
        const struct eas_hfolder *b = eas_hier_find(base, nbase, now[i].id);
        if (!b || (b->parent == now[i].parent && b->type == now[i].type &&
                   strcmp(b->name, now[i].name) == 0))
            continue;
        if (eas_fs_push(d, EAS_FOLDERHIERARCHY_UPDATE, &now[i]) != 0)
            return -1;
    }
    return eas_fs_adds(d, now, nnow, base, nbase);
}

static int eas_fs_answer(struct eas_req *req, uint32_t key, const struct eas_fs_diff *d)
{
    struct eas_doc *doc = req->out = eas_doc_new();
    struct eas_node *out, *ch;
    char keytxt[16], id[24];

    snprintf(keytxt, sizeof(keytxt), "%u", key);
    if (!doc || !(out = eas_add(doc, NULL, EAS_FOLDERHIERARCHY_FOLDERSYNC)) ||
        !eas_add_int(doc, out, EAS_FOLDERHIERARCHY_STATUS, FS_OK) ||
        !eas_add_text(doc, out, EAS_FOLDERHIERARCHY_SYNCKEY, keytxt) ||
        !(ch = eas_add(doc, out, EAS_FOLDERHIERARCHY_CHANGES)) ||
        !eas_add_int(doc, ch, EAS_FOLDERHIERARCHY_COUNT, (long long)d->n))
        return -1;
    for (size_t i = 0; i < d->n; i++) {
        const struct eas_fs_change *c = &d->v[i];
        if (c->tag != EAS_FOLDERHIERARCHY_DELETE) {
            if (eas_fs_folder(doc, ch, c->tag, c->f) != 0)
                return -1;
            continue;
        }
        struct eas_node *n = eas_add(doc, ch, EAS_FOLDERHIERARCHY_DELETE);
        snprintf(id, sizeof(id), "%lld", (long long)c->f->id);
        if (!n || !eas_add_text(doc, n, EAS_FOLDERHIERARCHY_SERVERID, id))
            return -1;
    }
    return 0;
}

static struct eas_hfolder *eas_hier_dup(const struct eas_hfolder *v, size_t n)
{
    struct eas_hfolder *c = malloc((n ? n : 1) * sizeof(*c));

    if (c && n)
        memcpy(c, v, n * sizeof(*c));
    return c;
}

int eas_cmd_foldersync(struct eas_req *req)
{
    const struct eas_node *root = req->in ? eas_doc_root(req->in) : NULL;
    struct eas_hstate h;
    struct eas_hfolder *now = NULL, *base, *keep = NULL;
    struct eas_fs_diff d = {0};
    size_t nnow = 0, nbase;
    uint32_t key, next;
    int rc = -1;

    if (!root || root->tag != EAS_FOLDERHIERARCHY_FOLDERSYNC ||
        eas_hier_parse_key(eas_child_text(root, EAS_FOLDERHIERARCHY_SYNCKEY), &key) != 0)
        return eas_fs_status(req, FS_MALFORMED);
    if (eas_hier_load(req->u, req->device_id, &h) != STORE_OK)
        return eas_fs_status(req, FS_SERVER_ERROR);
    if (key == 0) {
        /* Start over: the device holds nothing. The SHOULD of MS-ASHTTP 3.2.5.1. */
        base = NULL;
        nbase = 0;
        http_add_header(req->http, "MS-ASProtocolVersions", EAS_VERSIONS);
        http_add_header(req->http, "MS-ASProtocolCommands", eas_cmd_list());
    } else if (key == h.key) {
        base = h.cur;
        nbase = h.ncur;
    } else if (key == h.prev_key) {
        base = h.prev;
        nbase = h.nprev;
    } else {
        eas_hier_free(&h);
        return eas_fs_status(req, FS_BAD_KEY);
    }
    if (eas_hier_snapshot(req->u, &now, &nnow) != STORE_OK ||
        eas_fs_diff(&d, now, nnow, base, nbase) != 0)
        goto out;
    if (d.n == 0 && key != 0 && key == h.key) {
        /* Nothing new: the device keeps its key and nothing is written. */
        rc = eas_fs_answer(req, h.key, &d);
        goto out;
    }
    /* The set the device sent its key for becomes the previous state, the store's
     * folders the current one, under the next key. */
    next = h.key + 1 ? h.key + 1 : 1;
    if (eas_fs_answer(req, next, &d) != 0 || !(keep = eas_hier_dup(base, nbase)))
        goto out;
    free(h.prev);
    h.prev = keep;
    h.nprev = nbase;
    h.prev_key = key;
    h.key = next;
    free(h.cur);
    h.cur = now;
    h.ncur = nnow;
    now = NULL;
    rc = eas_hier_save(req->u, req->device_id, &h) == STORE_OK ? 0 : -1;
out:
    free(d.v);
    free(now);
    eas_hier_free(&h);
    return rc == 0 ? 0 : eas_fs_status(req, FS_SERVER_ERROR);
}
