/*
 * eas_cmd_sync.c — the ActiveSync Sync command (MS-ASCMD 2.2.1.21): client Add / Change /
 * Delete / Fetch applied to the store, server changes sent as Add / Change / Delete /
 * SoftDelete in windows with MoreAvailable, retried SyncKeys answered idempotently, SyncKey
 * 0 as a clean resynchronisation, partial and empty requests from the cached request,
 * and Wait / HeartbeatInterval as a long poll woken by the store's notifications.
 *
 * Each collection is answered inside one store transaction: the client's changes, the
 * new state behind the new SyncKey, all committed before the response is sent; the
 * response of a collection is built in a scratch document and copied in only once the
 * commit succeeded, so a failure never hands out a key the store does not have.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eas/eas_pim.h"
#include "eas/eas_sync.h"

#define EAS_SYNC_REQ_NS      "eas.syncreq" /* the last request's collections, by device */
#define EAS_WINDOW_DEFAULT   100
#define EAS_SYNC_MAX_COLLS   300
#define EAS_STATUS_OK        1
#define EAS_STATUS_BADKEY    3
#define EAS_STATUS_PROTOCOL  4
#define EAS_STATUS_SERVER    5
#define EAS_STATUS_CONVERT   6
#define EAS_STATUS_CONFLICT  7
#define EAS_STATUS_NOTFOUND  8
#define EAS_STATUS_HIERARCHY 12
#define EAS_STATUS_PARTIAL   13
#define EAS_STATUS_INTERVAL  14
#define EAS_STATUS_RETRY     16

/* One collection of the request being answered. */
struct eas_sync_coll {
    char id[64];
    char key[64];
    char cls[32];                /* Class as the client sent it (2.5, 12.x), "" none */
    const struct eas_node *node; /* the request's Collection, NULL when from the cache */
    int get_changes;
    int window;
    int opts_given;
    struct eas_coll_opts opts;
    int deletes_as_moves, conflict_given;
    const struct eas_node *supported; /* AirSync:Supported (with SyncKey 0), NULL none */
};

/* The request: its collections and the long-poll parameters. */
struct eas_sync_run {
    struct eas_req *req;
    struct eas_sync_coll *colls;
    size_t ncolls;
    int wait_s;  /* seconds to wait for changes, 0 none */
    int window;  /* Sync-level WindowSize (14.0+), 0 none */
    int budget;  /* what is left of it */
    int content; /* the response says something */
};

/* Suspended state (req->cmd_state). */
struct eas_sync_wait {
    struct store *st;
    struct store_sub *sub;
    struct http_req *http;
    int64_t deadline_ms;
};

/* ---- helpers -------------------------------------------------------------------------- */

static int64_t eas_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copies a subtree of another document under parent. */
static int eas_sync_copy(struct eas_doc *d, struct eas_node *parent, const struct eas_node *src)
{
    struct eas_node *n;

    if (src->opaque)
        n = eas_add_opaque(d, parent, src->tag, src->data, src->len);
    else if (src->data)
        n = eas_add_textn(d, parent, src->tag, src->data, src->len);
    else
        n = eas_add(d, parent, src->tag);
    if (!n)
        return -1;
    for (const struct eas_node *c = src->first; c; c = c->next)
        if (eas_sync_copy(d, n, c) < 0)
            return -1;
    return 0;
}

static int eas_sync_parse_key(const char *s, uint32_t *key)
{
    char *end;
    unsigned long v;

    if (!s || !*s || strlen(s) > 10)
        return -1;
    v = strtoul(s, &end, 10);
    if (*end || v > UINT32_MAX)
        return -1;
    *key = (uint32_t)v;
    return 0;
}

static struct eas_node *eas_lazy(struct eas_doc *d, struct eas_node *parent, struct eas_node **n,
                                 unsigned tag)
{
    if (!*n)
        *n = eas_add(d, parent, tag);
    return *n;
}

/* ---- the request cache (partial and empty requests) ------------------------------------ */

/* "wait window id,id,..." as text: small, and readable in a store dump. */
static int eas_sync_cache_save(struct eas_sync_run *run)
{
    char buf[EAS_SYNC_MAX_COLLS * 24 + 64];
    size_t o;

    o = (size_t)snprintf(buf, sizeof(buf), "%d %d ", run->wait_s, run->window);
    for (size_t i = 0; i < run->ncolls && o + 70 < sizeof(buf); i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? "," : "", run->colls[i].id);
    return store_state_put(run->req->u, EAS_SYNC_REQ_NS, run->req->device_id, buf, o, NULL);
}

static int eas_sync_add_coll(struct eas_sync_run *run, const char *id)
{
    struct eas_sync_coll *c;

    for (size_t i = 0; i < run->ncolls; i++)
        if (!strcmp(run->colls[i].id, id))
            return 1;
    if (run->ncolls >= EAS_SYNC_MAX_COLLS || strlen(id) >= sizeof(c->id))
        return -1;
    c = &run->colls[run->ncolls++];
    memset(c, 0, sizeof(*c));
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->get_changes = 1;
    return 0;
}

/* Adds the cached request's collections that this request does not name. Their SyncKey
 * is the current one of their state; their options are the cached ones. wait: also take
 * the cached long-poll parameters (an empty request). */
static int eas_sync_cache_load(struct eas_sync_run *run, int wait)
{
    void *val = NULL;
    size_t len = 0;
    char *s, *ids, *tok, *save = NULL;
    int w = 0, win = 0, n = 0;

    if (store_state_get(run->req->u, EAS_SYNC_REQ_NS, run->req->device_id, &val, &len, NULL) !=
        STORE_OK)
        return -1;
    s = val;
    if (sscanf(s, "%d %d %n", &w, &win, &n) != 2 || n <= 0) {
        free(val);
        return -1;
    }
    if (wait) {
        run->wait_s = w;
        run->window = win;
    }
    ids = s + n;
    for (tok = strtok_r(ids, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        struct eas_sync_state st;
        size_t before = run->ncolls;
        if (eas_sync_add_coll(run, tok) != 0 || before == run->ncolls)
            continue;
        /* the key the device holds now */
        if (eas_sync_state_load(run->req->u, run->req->device_id, strtoll(tok, NULL, 10), &st) ==
            STORE_OK)
            snprintf(run->colls[before].key, sizeof(run->colls[before].key), "%u", st.cur.key);
        else
            run->ncolls--; /* never synced: nothing to reuse */
        eas_sync_state_free(&st);
    }
    free(val);
    return 0;
}

/* ---- request parsing ------------------------------------------------------------------- */

static int eas_sync_parse_coll(struct eas_sync_run *run, const struct eas_node *cn)
{
    const char *id = eas_child_text(cn, EAS_AIRSYNC_COLLECTIONID);
    const char *key = eas_child_text(cn, EAS_AIRSYNC_SYNCKEY);
    const struct eas_node *n;
    struct eas_sync_coll *c;
    int rc;

    if (!id || !key || strlen(key) >= sizeof(c->key))
        return -1;
    if ((rc = eas_sync_add_coll(run, id)) != 0)
        return rc < 0 ? -1 : 0; /* named twice: the first wins */
    c = &run->colls[run->ncolls - 1];
    snprintf(c->key, sizeof(c->key), "%s", key);
    snprintf(c->cls, sizeof(c->cls), "%s", eas_child_text(cn, EAS_AIRSYNC_CLASS) ?: "");
    c->node = cn;
    c->supported = eas_child(cn, EAS_AIRSYNC_SUPPORTED);
    if ((n = eas_child(cn, EAS_AIRSYNC_GETCHANGES)))
        c->get_changes = !*eas_text(n) || atoi(eas_text(n)) != 0;
    c->window = (int)eas_child_int(cn, EAS_AIRSYNC_WINDOWSIZE, 0);
    if (c->window < 0)
        return -1;
    c->deletes_as_moves = (int)eas_child_int(cn, EAS_AIRSYNC_DELETESASMOVES, -1);
    if ((n = eas_child(cn, EAS_AIRSYNC_DELETESASMOVES)) && !*eas_text(n))
        c->deletes_as_moves = 1;
    eas_coll_opts_default(&c->opts);
    /* Options may come once per class (14.0+: a second one for SMS); the first without a
     * Class, or with the collection's own class, is the one for email. */
    for (n = eas_child(cn, EAS_AIRSYNC_OPTIONS); n; n = eas_next(n, EAS_AIRSYNC_OPTIONS)) {
        const char *oc = eas_child_text(n, EAS_AIRSYNC_CLASS);
        if (oc && strcmp(oc, "Email") && c->cls[0] && strcmp(oc, c->cls))
            continue;
        c->opts_given = 1;
        c->conflict_given = eas_child(n, EAS_AIRSYNC_CONFLICT) != NULL;
        eas_coll_opts_parse(n, &c->opts);
        break;
    }
    return 0;
}

/* Status for the whole request, with Limit for a bad interval. */
static int eas_sync_fail(struct eas_req *req, int status, int limit)
{
    struct eas_doc *d = eas_doc_new();
    struct eas_node *root;

    if (!d || !(root = eas_add(d, NULL, EAS_AIRSYNC_SYNC))) {
        eas_doc_free(d);
        req->http_status = 500;
        return 0;
    }
    eas_add_int(d, root, EAS_AIRSYNC_STATUS, status);
    if (limit > 0)
        eas_add_int(d, root, EAS_AIRSYNC_LIMIT, limit);
    req->out = d;
    return 0;
}

/* Reads the request (or the cache for an empty one). Returns 0, or a Status. */
static int eas_sync_parse(struct eas_sync_run *run, int *limit)
{
    struct eas_req *req = run->req;
    const struct eas_node *root, *colls, *cn, *w, *hb;
    const struct eas_config_lim {
        int lo, hi;
    } lim = {req->e->cfg->eas_heartbeat_min > 0 ? req->e->cfg->eas_heartbeat_min : 60,
             req->e->cfg->eas_heartbeat_max > 0 ? req->e->cfg->eas_heartbeat_max : 3540};
    int partial;

    *limit = 0;
    if (!req->in) /* an empty request: the last one again */
        return eas_sync_cache_load(run, 1) < 0 || run->ncolls == 0 ? EAS_STATUS_PARTIAL : 0;
    root = eas_doc_root(req->in);
    if (!root || root->tag != EAS_AIRSYNC_SYNC)
        return EAS_STATUS_PROTOCOL;
    w = eas_child(root, EAS_AIRSYNC_WAIT);
    hb = eas_child(root, EAS_AIRSYNC_HEARTBEATINTERVAL);
    if (w && hb)
        return EAS_STATUS_PROTOCOL;
    if (w) {
        long long m = eas_child_int(root, EAS_AIRSYNC_WAIT, -1);
        if (m < 1 || m > 59 || m * 60 < lim.lo || m * 60 > lim.hi) {
            *limit = m * 60 < lim.lo ? (lim.lo + 59) / 60 : lim.hi / 60;
            return EAS_STATUS_INTERVAL;
        }
        run->wait_s = (int)m * 60;
    } else if (hb) {
        long long s = eas_child_int(root, EAS_AIRSYNC_HEARTBEATINTERVAL, -1);
        if (s < lim.lo || s > lim.hi) {
            *limit = s < lim.lo ? lim.lo : lim.hi;
            return EAS_STATUS_INTERVAL;
        }
        run->wait_s = (int)s;
    }
    run->window = (int)eas_child_int(root, EAS_AIRSYNC_WINDOWSIZE, 0);
    if (run->window < 0)
        return EAS_STATUS_PROTOCOL;
    partial = eas_child(root, EAS_AIRSYNC_PARTIAL) != NULL;
    colls = eas_child(root, EAS_AIRSYNC_COLLECTIONS);
    for (cn = colls ? eas_child(colls, EAS_AIRSYNC_COLLECTION) : NULL; cn;
         cn = eas_next(cn, EAS_AIRSYNC_COLLECTION))
        if (eas_sync_parse_coll(run, cn) < 0)
            return EAS_STATUS_PROTOCOL;
    /* Partial, or only the long-poll parameters: the other collections come from the
     * last request. */
    if (partial || !colls)
        eas_sync_cache_load(run, 0);
    if (run->ncolls == 0)
        return EAS_STATUS_PARTIAL;
    return 0;
}

/* ---- client commands ---------------------------------------------------------------------- */

struct eas_coll_run {
    struct eas_sync_run *run;
    struct eas_sync_coll *c;
    struct store_folder f;
    struct eas_sync_state st;
    struct eas_sync_state newcids; /* only cids used: this request's client Adds */
    struct eas_doc *d;             /* scratch document */
    struct eas_node *coll, *responses, *commands;
    int cmds_done; /* client commands processed */
    int sent;      /* server commands sent */
    int more;
    /* iTIP mail a 16.x organizer's changes send attendees, once the collection is
     * committed (never for changes rolled back) */
    struct eas_itip *itip;
    size_t nitip;
};

#define EAS_SYNC_MAX_ITIP 64 /* meetings mailed per collection and request */

/* Queues the REQUEST / CANCEL of a meeting the device changed (16.x: the server sends
 * meeting mail for its devices). */
static void eas_itip_queue(struct eas_coll_run *cr, const char *ical, size_t len, int cancel)
{
    struct eas_itip m;

    if (cr->run->req->version < EAS_V160 || cr->f.cls != STORE_CLASS_CALENDAR ||
        cr->nitip >= EAS_SYNC_MAX_ITIP)
        return;
    if (!cr->itip && !(cr->itip = calloc(EAS_SYNC_MAX_ITIP, sizeof(*cr->itip))))
        return;
    if (eas_itip_organizer(cr->run->req, ical, len, cancel, &m) == 0)
        cr->itip[cr->nitip++] = m;
}

static void eas_itip_flush(struct eas_coll_run *cr, int send)
{
    for (size_t i = 0; i < cr->nitip; i++) {
        if (send)
            eas_itip_deliver(cr->run->req, (const char *const *)cr->itip[i].rcpts,
                             cr->itip[i].nrcpts, cr->itip[i].msg, cr->itip[i].len);
        eas_itip_free(&cr->itip[i]);
    }
    free(cr->itip);
    cr->itip = NULL;
    cr->nitip = 0;
}

static void eas_resp(struct eas_coll_run *cr, unsigned tag, const char *sid, const char *cid,
                     int status)
{
    struct eas_node *r =
        eas_add(cr->d, eas_lazy(cr->d, cr->coll, &cr->responses, EAS_AIRSYNC_RESPONSES), tag);

    if (cid)
        eas_add_text(cr->d, r, EAS_AIRSYNC_CLIENTID, cid);
    if (sid)
        eas_add_text(cr->d, r, EAS_AIRSYNC_SERVERID, sid);
    eas_add_int(cr->d, r, EAS_AIRSYNC_STATUS, status);
}

static void eas_coll_pim_ctx(struct eas_coll_run *cr, struct eas_pim_ctx *pc)
{
    pc->version = cr->run->req->version;
    pc->o = &cr->st.opts;
    pc->supported = cr->st.supported;
    pc->nsupported = cr->st.nsupported;
    pc->self = cr->run->req->acct->address;
    pc->now = time(NULL);
}

/* The item a ServerId names, if it is in this collection. */
static int eas_coll_item(struct eas_coll_run *cr, const char *sid, struct store_item *it)
{
    int64_t fid, iid;

    if (!sid || eas_parse_server_id(sid, &fid, &iid) < 0 || fid != cr->f.id)
        return STORE_ENOTFOUND;
    if (store_item_get(cr->run->req->u, iid, it, NULL) != STORE_OK || it->folder_id != cr->f.id) {
        it->id = iid;
        return STORE_ENOTFOUND;
    }
    return STORE_OK;
}

static int eas_pim_change(struct eas_coll_run *cr, const struct store_item *it,
                          const struct eas_node *app, const int64_t *instance,
                          struct store_item *out);

static void eas_client_add(struct eas_coll_run *cr, const struct eas_node *n)
{
    const char *cid = eas_child_text(n, EAS_AIRSYNC_CLIENTID);
    const struct eas_node *app = eas_child(n, EAS_AIRSYNC_APPLICATIONDATA);
    struct eas_pim_ctx pc;
    struct eas_pim_out po;
    struct store_item out;
    int64_t prev;
    char sid[48];
    int rc;

    if (!cid || !*cid) {
        eas_resp(cr, EAS_AIRSYNC_ADD, NULL, NULL, EAS_STATUS_PROTOCOL);
        return;
    }
    /* a retried request: the Add was done, answer it again the same way */
    if ((prev = eas_sync_cid_find(&cr->st, cid)) > 0) {
        eas_server_id(sid, sizeof(sid), cr->f.id, prev);
        eas_sync_cid_add(&cr->newcids, cid, prev);
        eas_resp(cr, EAS_AIRSYNC_ADD, sid, cid, EAS_STATUS_OK);
        return;
    }
    /* Mail is not created by a device through Sync (SendMail and drafts are); PIM
     * items are converted and stored with their index. */
    if (cr->f.cls == STORE_CLASS_MAIL || !app) {
        eas_resp(cr, EAS_AIRSYNC_ADD, NULL, cid, app ? EAS_STATUS_CONVERT : EAS_STATUS_PROTOCOL);
        return;
    }
    eas_coll_pim_ctx(cr, &pc);
    if (eas_pim_from_eas(app, &pc, cr->f.cls, NULL, 0, &po) < 0) {
        eas_resp(cr, EAS_AIRSYNC_ADD, NULL, cid, EAS_STATUS_CONVERT);
        return;
    }
    if (cr->f.cls != STORE_CLASS_CONTACTS &&
        store_item_by_ext_uid(cr->run->req->u, cr->f.id, po.uid, &out) == STORE_OK) {
        const char *cuid = eas_child_text(app, EAS_CALENDAR_CLIENTUID);
        eas_pim_out_free(&po);
        /* 16.x: the same ClientUid again is the same event again (MS-ASCAL 2.2.2.13): the
         * device's fields go into it rather than into a second copy */
        if (cr->f.cls == STORE_CLASS_CALENDAR && cuid && !strcmp(cuid, out.ext_uid)) {
            struct store_item same = out;
            rc = eas_pim_change(cr, &same, app, NULL, &out);
            if (rc != EAS_STATUS_OK) {
                eas_resp(cr, EAS_AIRSYNC_ADD, NULL, cid, rc);
                return;
            }
            goto added;
        }
        /* any other UID the folder has already (an invitation the device imported itself)
         * is not overwritten: the new event gets a UID of its own */
        if (eas_pim_from_eas(app, &pc, cr->f.cls, NULL, 0, &po) < 0 || eas_pim_reuid(&po) < 0) {
            eas_pim_out_free(&po);
            eas_resp(cr, EAS_AIRSYNC_ADD, NULL, cid, EAS_STATUS_SERVER);
            return;
        }
    }
    rc = eas_pim_store(cr->run->req->u, &cr->f, NULL, &po, &out);
    if (rc == STORE_OK)
        eas_itip_queue(cr, po.text, po.len, 0);
    eas_pim_out_free(&po);
    if (rc != STORE_OK) {
        eas_resp(cr, EAS_AIRSYNC_ADD, NULL, cid,
                 rc == STORE_EINVAL ? EAS_STATUS_CONVERT : EAS_STATUS_SERVER);
        return;
    }
added:
    eas_server_id(sid, sizeof(sid), cr->f.id, out.id);
    eas_sync_cid_add(&cr->newcids, cid, out.id);
    /* the device has this version: it is not sent back to it */
    eas_snap_hold(&cr->st.cur, out.id, out.modseq, eas_pim_reach(cr->run->req->u, cr->f.cls, &out));
    eas_resp(cr, EAS_AIRSYNC_ADD, sid, cid, EAS_STATUS_OK);
}

/* A device's Change of a PIM item: merged into the stored text, stored with its index.
 * Returns the Status for the device. */
/* The occurrence a 16.x command names (AirSyncBase:InstanceId, the occurrence's original
 * start); 0 and *t, or -1 when it names none. */
static int eas_instance_of(const struct eas_node *n, int64_t *t)
{
    const char *s = eas_child_text(n, EAS_AIRSYNCBASE_INSTANCEID);

    return s && eas_pim_parse_time(s, t) == 0 ? 0 : -1;
}

static int eas_pim_change(struct eas_coll_run *cr, const struct store_item *it,
                          const struct eas_node *app, const int64_t *instance,
                          struct store_item *out)
{
    struct eas_pim_ctx pc;
    struct eas_pim_out po;
    char *body = NULL;
    size_t len = 0;
    int rc;

    if (store_item_body(cr->run->req->u, it->id, &body, &len, NULL) != STORE_OK)
        return EAS_STATUS_SERVER;
    eas_coll_pim_ctx(cr, &pc);
    /* one occurrence of a series (16.x), or the whole item */
    if (instance)
        rc = eas_calendar_instance(app, &pc, body, len, *instance, &po);
    else
        rc = eas_pim_from_eas(app, &pc, cr->f.cls, body, len, &po);
    free(body);
    if (rc < 0)
        return EAS_STATUS_CONVERT;
    rc = eas_pim_store(cr->run->req->u, &cr->f, it, &po, out);
    if (rc == STORE_OK)
        eas_itip_queue(cr, po.text, po.len, 0);
    eas_pim_out_free(&po);
    if (rc == STORE_OK)
        return EAS_STATUS_OK;
    return rc == STORE_EINVAL ? EAS_STATUS_CONVERT : EAS_STATUS_SERVER;
}

static void eas_client_change(struct eas_coll_run *cr, const struct eas_node *n)
{
    const char *sid = eas_child_text(n, EAS_AIRSYNC_SERVERID);
    const struct eas_node *app = eas_child(n, EAS_AIRSYNC_APPLICATIONDATA);
    struct store_item it, out;
    struct eas_held *h;
    int changed = 0, stale;

    if (eas_coll_item(cr, sid, &it) != STORE_OK) {
        eas_resp(cr, EAS_AIRSYNC_CHANGE, sid, NULL, EAS_STATUS_NOTFOUND);
        return;
    }
    if (!app) {
        eas_resp(cr, EAS_AIRSYNC_CHANGE, sid, NULL, EAS_STATUS_PROTOCOL);
        return;
    }
    h = eas_snap_held(&cr->st.cur, it.id);
    stale = h && h->modseq != it.modseq;
    /* The server changed the item since the device got it: with "server wins" (the
     * default) the client's change is refused and the server's version goes out. Not for
     * mail: a mail Change names only Read, Flag or Categories and is merged into the
     * current flags, so it cannot undo what IMAP changed meanwhile (a \Flagged set on the
     * desktop), and refusing it would lose the user's Read (e2e concurrency test). */
    if (stale && cr->st.opts.conflict == 1 && cr->f.cls != STORE_CLASS_MAIL) {
        eas_resp(cr, EAS_AIRSYNC_CHANGE, sid, NULL, EAS_STATUS_CONFLICT);
        eas_snap_pend(&cr->st.cur, it.id);
        return;
    }
    if (cr->f.cls != STORE_CLASS_MAIL) {
        int64_t inst;
        int has_inst = cr->f.cls == STORE_CLASS_CALENDAR && eas_instance_of(n, &inst) == 0;
        int status = eas_pim_change(cr, &it, app, has_inst ? &inst : NULL, &out);
        if (status != EAS_STATUS_OK)
            eas_resp(cr, EAS_AIRSYNC_CHANGE, sid, NULL, status);
        else
            eas_snap_hold(&cr->st.cur, out.id, out.modseq,
                          eas_pim_reach(cr->run->req->u, cr->f.cls, &out));
        return;
    }
    if (eas_email_apply_change(cr->run->req->u, &it, app, &out, &changed) != STORE_OK) {
        eas_resp(cr, EAS_AIRSYNC_CHANGE, sid, NULL, EAS_STATUS_SERVER);
        return;
    }
    /* The device has this version now: it is not sent back to it. Unless the server had
     * changed it too: then the merged version goes out as a Change. */
    if (stale)
        eas_snap_pend(&cr->st.cur, out.id);
    else
        eas_snap_hold(&cr->st.cur, out.id, out.modseq, out.idate);
}

static void eas_client_delete(struct eas_coll_run *cr, const struct eas_node *n)
{
    const char *sid = eas_child_text(n, EAS_AIRSYNC_SERVERID);
    struct store_folder trash;
    struct store_item it, moved;
    int64_t inst;
    char *body = NULL;
    size_t blen = 0;
    int rc;

    if (eas_coll_item(cr, sid, &it) != STORE_OK) {
        /* gone already: deleted by this device's previous attempt of the request, or
         * elsewhere while the device held it — either way the device is right */
        if (sid && eas_snap_held(&cr->st.cur, it.id))
            eas_snap_unhold(&cr->st.cur, it.id);
        else
            eas_resp(cr, EAS_AIRSYNC_DELETE, sid, NULL, EAS_STATUS_NOTFOUND);
        return;
    }
    /* 16.x: one occurrence of a series goes, the series stays */
    if (cr->f.cls == STORE_CLASS_CALENDAR && eas_instance_of(n, &inst) == 0) {
        int status = eas_pim_change(cr, &it, NULL, &inst, &moved);
        if (status != EAS_STATUS_OK)
            eas_resp(cr, EAS_AIRSYNC_DELETE, sid, NULL, status);
        else
            eas_snap_hold(&cr->st.cur, moved.id, moved.modseq,
                          eas_pim_reach(cr->run->req->u, cr->f.cls, &moved));
        return;
    }
    /* a meeting the user organises is canceled for its attendees (16.x): its text is
     * read before it goes */
    if (cr->f.cls == STORE_CLASS_CALENDAR && cr->run->req->version >= EAS_V160 &&
        store_item_body(cr->run->req->u, it.id, &body, &blen, NULL) != STORE_OK)
        body = NULL;
    if (cr->st.opts.deletes_as_moves && cr->f.role != STORE_ROLE_TRASH &&
        store_folder_by_role_nocount(cr->run->req->u, STORE_ROLE_TRASH, &trash) == STORE_OK &&
        trash.cls == cr->f.cls)
        rc = store_item_move(cr->run->req->u, it.id, trash.id, &moved, NULL);
    else
        rc = store_item_delete(cr->run->req->u, it.id, NULL);
    if (rc != STORE_OK) {
        eas_resp(cr, EAS_AIRSYNC_DELETE, sid, NULL, EAS_STATUS_SERVER);
        free(body);
        return;
    }
    if (body)
        eas_itip_queue(cr, body, blen, 1);
    free(body);
    eas_snap_unhold(&cr->st.cur, it.id);
}

static int eas_item_appdata(struct eas_coll_run *cr, struct eas_node *parent,
                            const struct store_item *it)
{
    char *body = NULL;
    size_t len = 0;
    int rc;

    if (store_item_body(cr->run->req->u, it->id, &body, &len, NULL) != STORE_OK)
        return -1;
    if (cr->f.cls != STORE_CLASS_MAIL) {
        struct eas_pim_ctx pc;
        eas_coll_pim_ctx(cr, &pc);
        rc = eas_pim_appdata(cr->d, parent, &pc, cr->f.cls, body, len);
    } else {
        rc = eas_email_appdata(cr->d, parent, cr->run->req->version, it, body, len, &cr->st.opts);
    }
    free(body);
    return rc;
}

static void eas_client_fetch(struct eas_coll_run *cr, const struct eas_node *n)
{
    const char *sid = eas_child_text(n, EAS_AIRSYNC_SERVERID);
    struct eas_node *r;
    struct store_item it;

    if (eas_coll_item(cr, sid, &it) != STORE_OK) {
        eas_resp(cr, EAS_AIRSYNC_FETCH, sid, NULL, EAS_STATUS_NOTFOUND);
        return;
    }
    r = eas_add(cr->d, eas_lazy(cr->d, cr->coll, &cr->responses, EAS_AIRSYNC_RESPONSES),
                EAS_AIRSYNC_FETCH);
    eas_add_text(cr->d, r, EAS_AIRSYNC_SERVERID, sid);
    eas_add_int(cr->d, r, EAS_AIRSYNC_STATUS, EAS_STATUS_OK);
    if (eas_item_appdata(cr, eas_add(cr->d, r, EAS_AIRSYNC_APPLICATIONDATA), &it) < 0)
        eas_add_int(cr->d, r, EAS_AIRSYNC_STATUS, EAS_STATUS_CONVERT);
}

static void eas_client_commands(struct eas_coll_run *cr)
{
    const struct eas_node *cmds = cr->c->node ? eas_child(cr->c->node, EAS_AIRSYNC_COMMANDS) : NULL;

    for (const struct eas_node *n = cmds ? cmds->first : NULL; n; n = n->next) {
        cr->cmds_done++;
        switch (n->tag) {
        case EAS_AIRSYNC_ADD:
            eas_client_add(cr, n);
            break;
        case EAS_AIRSYNC_CHANGE:
            eas_client_change(cr, n);
            break;
        case EAS_AIRSYNC_DELETE:
            eas_client_delete(cr, n);
            break;
        case EAS_AIRSYNC_FETCH:
            eas_client_fetch(cr, n);
            break;
        default:
            cr->cmds_done--;
            break;
        }
    }
}

/* ---- server changes --------------------------------------------------------------------- */

/* A PIM item that cannot be shown as its folder's class (a to-do in a calendar, bytes
 * that are not iCalendar) is not sent at all: a half-empty Add would only confuse the
 * device. Converts into a scratch document first; 0 and *scratch, or -1. */
static int eas_pim_scratch(struct eas_coll_run *cr, const struct store_item *it,
                           struct eas_doc **scratch)
{
    struct eas_doc *d = eas_doc_new();
    struct eas_doc *keep = cr->d;
    struct eas_node *app;
    int rc = -1;

    if (d && (app = eas_add(d, NULL, EAS_AIRSYNC_APPLICATIONDATA))) {
        cr->d = d; /* eas_item_appdata writes into cr->d */
        rc = eas_item_appdata(cr, app, it);
        cr->d = keep;
    }
    if (rc < 0) {
        eas_doc_free(d);
        return -1;
    }
    *scratch = d;
    return 0;
}

/* Returns 1 when a command went out, 0 when the item was skipped. */
static int eas_server_cmd(struct eas_coll_run *cr, enum eas_verdict v, const struct store_item *it,
                          int64_t id)
{
    static const unsigned tags[] = {0, EAS_AIRSYNC_ADD, EAS_AIRSYNC_CHANGE, EAS_AIRSYNC_DELETE,
                                    EAS_AIRSYNC_SOFTDELETE};
    struct eas_node *cmd, *app;
    struct eas_doc *scratch = NULL;
    char sid[48];

    if ((v == EAS_V_ADD || v == EAS_V_CHANGE) && cr->f.cls != STORE_CLASS_MAIL &&
        eas_pim_scratch(cr, it, &scratch) < 0) {
        /* a held item that cannot be shown any more leaves the device */
        if (v == EAS_V_ADD)
            return 0;
        v = EAS_V_DELETE;
    }
    cmd = eas_add(cr->d, eas_lazy(cr->d, cr->coll, &cr->commands, EAS_AIRSYNC_COMMANDS), tags[v]);
    eas_server_id(sid, sizeof(sid), cr->f.id, id);
    eas_add_text(cr->d, cmd, EAS_AIRSYNC_SERVERID, sid);
    switch (v) {
    case EAS_V_ADD:
    case EAS_V_CHANGE:
        if (scratch) {
            /* a PIM item changes as a whole: the device gets all of it again */
            eas_sync_copy(cr->d, cmd, eas_doc_root(scratch));
            eas_doc_free(scratch);
        } else if (v == EAS_V_ADD) {
            app = eas_add(cr->d, cmd, EAS_AIRSYNC_APPLICATIONDATA);
            if (eas_item_appdata(cr, app, it) < 0)
                log_warn("eas", "Sync: item %lld of %s could not be converted", (long long)id,
                         cr->run->req->acct->address);
        } else {
            app = eas_add(cr->d, cmd, EAS_AIRSYNC_APPLICATIONDATA);
            eas_email_flags(cr->d, app, cr->run->req->version, it);
        }
        eas_snap_hold(&cr->st.cur, id, it->modseq, it->idate);
        break;
    default:
        eas_snap_unhold(&cr->st.cur, id);
        break;
    }
    return 1;
}

/* Sends up to window changes, newest ids first, and says whether more remain. */
static int eas_server_changes(struct eas_coll_run *cr, int window)
{
    struct eas_snap *s = &cr->st.cur;
    int64_t now = time(NULL), cutoff;
    size_t keep = 0;
    int rc;

    rc = eas_snap_refresh(cr->run->req->u, s, cr->f.id, cr->f.cls, cr->st.opts.filter, now);
    if (rc != STORE_OK)
        return rc;
    cutoff = eas_filter_cutoff(cr->st.opts.filter, now);
    for (size_t i = s->npending; i-- > 0 && cr->sent < window;) {
        struct store_item it;
        enum eas_verdict v =
            eas_snap_judge(cr->run->req->u, s, cr->f.id, s->pending[i], cutoff, &it);
        int64_t id = s->pending[i];

        s->pending[i] = 0; /* looked at */
        if (v == EAS_V_NONE)
            continue;
        cr->sent += eas_server_cmd(cr, v, &it, id);
    }
    for (size_t i = 0; i < s->npending; i++)
        if (s->pending[i])
            s->pending[keep++] = s->pending[i];
    s->npending = keep;
    cr->more = keep > 0 && eas_snap_estimate(cr->run->req->u, s, cr->f.id, cutoff, 1) > 0;
    return STORE_OK;
}

/* ---- one collection ------------------------------------------------------------------------ */

/* Sets the cached options from the request (or keeps the cached ones). */
static void eas_coll_options(struct eas_coll_run *cr)
{
    struct eas_sync_coll *c = cr->c;

    if (c->opts_given) {
        int conflict = cr->st.opts.conflict;
        cr->st.opts = c->opts;
        if (!c->conflict_given)
            cr->st.opts.conflict = conflict;
    }
    if (c->deletes_as_moves >= 0)
        cr->st.opts.deletes_as_moves = c->deletes_as_moves != 0;
    if (c->window > 0)
        cr->st.opts.window = c->window;
    cr->st.have_opts = 1;
}

static int eas_coll_window(struct eas_coll_run *cr)
{
    int max = cr->run->req->e->cfg->eas_window_max > 0 ? cr->run->req->e->cfg->eas_window_max : 512;
    int w = cr->st.opts.window > 0 ? cr->st.opts.window : EAS_WINDOW_DEFAULT;

    if (cr->run->window > 0 && w > cr->run->budget)
        w = cr->run->budget;
    return w > max ? max : w;
}

/* A SyncKey 0 request sets the ghosting list anew: the Supported it carries, or none. */
static int eas_coll_supported(struct eas_coll_run *cr)
{
    const struct eas_node *sup = cr->c->supported;
    size_t n = 0;

    free(cr->st.supported);
    cr->st.supported = NULL;
    cr->st.nsupported = 0;
    if (!sup || !sup->first)
        return 0;
    if (!(cr->st.supported = calloc(EAS_MAX_SUPPORTED, sizeof(*cr->st.supported))))
        return -1;
    for (const struct eas_node *e = sup->first; e && n < EAS_MAX_SUPPORTED; e = e->next)
        cr->st.supported[n++] = e->tag;
    cr->st.nsupported = n;
    return 0;
}

/* Runs one collection inside a transaction; fills cr->coll (scratch). Returns 0 or a
 * Status for the collection. */
static int eas_coll_process(struct eas_coll_run *cr, char *newkey, size_t keylen)
{
    struct eas_req *req = cr->run->req;
    struct eas_snap base = {0};
    uint32_t key;
    int rc, initial, status = EAS_STATUS_SERVER;

    if (eas_sync_parse_key(cr->c->key, &key) < 0)
        return EAS_STATUS_BADKEY;
    initial = key == 0;
    rc = eas_sync_state_load(req->u, req->device_id, cr->f.id, &cr->st);
    if (rc != STORE_OK && rc != STORE_ENOTFOUND)
        return EAS_STATUS_SERVER;
    if (!initial && (rc == STORE_ENOTFOUND ||
                     (key != cr->st.cur.key && (key != cr->st.prev.key || !cr->st.prev.key))))
        return EAS_STATUS_BADKEY;
    eas_coll_options(cr);
    if (initial) {
        /* A clean start: nothing held, everything pending; keys keep counting up so a
         * key from before the reset is never valid again. */
        uint32_t next = (cr->st.cur.key > cr->st.prev.key ? cr->st.cur.key : cr->st.prev.key) + 1;
        eas_snap_free(&cr->st.cur);
        eas_snap_free(&cr->st.prev);
        free(cr->st.cids);
        cr->st.cids = NULL;
        cr->st.ncids = 0;
        if (eas_coll_supported(cr) < 0)
            return EAS_STATUS_SERVER;
        cr->st.cur.filter = -1; /* forces the full listing */
        rc = eas_snap_refresh(req->u, &cr->st.cur, cr->f.id, cr->f.cls, cr->st.opts.filter,
                              time(NULL));
        if (rc != STORE_OK)
            return EAS_STATUS_SERVER;
        cr->st.cur.key = next;
        snprintf(newkey, keylen, "%u", next);
        return 0;
    }
    /* A retry of the request that produced the current key: start again from the
     * previous key's state; the Adds it made are in cids. */
    if (key != cr->st.cur.key && eas_snap_copy(&cr->st.cur, &cr->st.prev) < 0)
        return EAS_STATUS_SERVER;
    if (eas_snap_copy(&base, &cr->st.cur) < 0)
        return EAS_STATUS_SERVER;
    eas_client_commands(cr);
    if (cr->c->get_changes) {
        int w = eas_coll_window(cr);
        if ((rc = eas_server_changes(cr, w)) != STORE_OK) {
            status = rc == STORE_EBUSY ? EAS_STATUS_RETRY : EAS_STATUS_SERVER;
            goto err;
        }
        if (cr->run->window > 0)
            cr->run->budget -= cr->sent;
    }
    if (cr->cmds_done || cr->sent) {
        cr->st.cur.key = base.key + 1;
        eas_snap_free(&cr->st.prev);
        cr->st.prev = base;
        memset(&base, 0, sizeof(base));
        free(cr->st.cids);
        cr->st.cids = cr->newcids.cids;
        cr->st.ncids = cr->newcids.ncids;
        cr->newcids.cids = NULL;
        cr->newcids.ncids = 0;
    }
    snprintf(newkey, keylen, "%u", cr->st.cur.key);
    eas_snap_free(&base);
    return 0;
err:
    eas_snap_free(&base);
    return status;
}

static int eas_sync_collection(struct eas_sync_run *run, struct eas_sync_coll *c,
                               struct eas_node *out_colls)
{
    struct eas_req *req = run->req;
    struct eas_coll_run cr = {.run = run, .c = c};
    char newkey[16];
    int status = 0, rc;
    struct store_err err;

    eas_sync_state_init(&cr.st, 0);
    eas_sync_state_init(&cr.newcids, 0);
    if (!(cr.d = eas_doc_new()) || !(cr.coll = eas_add(cr.d, NULL, EAS_AIRSYNC_COLLECTION)))
        goto fail;
    if (eas_folder_lookup(req, c->id, &cr.f) != STORE_OK) {
        status = EAS_STATUS_HIERARCHY; /* the device's folder list is out of date */
        goto status_only;
    }
    if (store_txn_begin(req->u, &err) != STORE_OK) {
        status = EAS_STATUS_RETRY;
        goto status_only;
    }
    status = eas_coll_process(&cr, newkey, sizeof(newkey));
    if (status == 0 && eas_sync_state_save(req->u, req->device_id, &cr.st) != STORE_OK)
        status = EAS_STATUS_SERVER;
    if (status != 0) {
        store_txn_rollback(req->u);
        goto status_only;
    }
    if ((rc = store_txn_commit(req->u, NULL, &err)) != STORE_OK) {
        status = rc == STORE_EBUSY ? EAS_STATUS_RETRY : EAS_STATUS_SERVER;
        goto status_only;
    }
    /* committed: the meeting mail goes, and the scratch response, in the order the
     * schema wants */
    eas_itip_flush(&cr, 1);
    {
        struct eas_node *o = eas_add(req->out, out_colls, EAS_AIRSYNC_COLLECTION);
        if (c->cls[0])
            eas_add_text(req->out, o, EAS_AIRSYNC_CLASS, c->cls);
        eas_add_text(req->out, o, EAS_AIRSYNC_SYNCKEY, newkey);
        eas_add_text(req->out, o, EAS_AIRSYNC_COLLECTIONID, c->id);
        eas_add_int(req->out, o, EAS_AIRSYNC_STATUS, EAS_STATUS_OK);
        if (cr.more)
            eas_add(req->out, o, EAS_AIRSYNC_MOREAVAILABLE);
        if (cr.commands)
            eas_sync_copy(req->out, o, cr.commands);
        if (cr.responses)
            eas_sync_copy(req->out, o, cr.responses);
        if (cr.more || cr.commands || cr.responses || strcmp(newkey, c->key) != 0)
            run->content = 1;
    }
    goto done;
status_only : {
    struct eas_node *o = eas_add(req->out, out_colls, EAS_AIRSYNC_COLLECTION);
    if (c->cls[0])
        eas_add_text(req->out, o, EAS_AIRSYNC_CLASS, c->cls);
    eas_add_text(req->out, o, EAS_AIRSYNC_SYNCKEY, c->key);
    eas_add_text(req->out, o, EAS_AIRSYNC_COLLECTIONID, c->id);
    eas_add_int(req->out, o, EAS_AIRSYNC_STATUS, status);
    run->content = 1;
}
done:
    eas_itip_flush(&cr, 0);
    eas_sync_state_free(&cr.st);
    eas_sync_state_free(&cr.newcids);
    eas_doc_free(cr.d);
    return 0;
fail:
    eas_itip_flush(&cr, 0);
    eas_sync_state_free(&cr.st);
    eas_sync_state_free(&cr.newcids);
    eas_doc_free(cr.d);
    return -1;
}

/* ---- the command ------------------------------------------------------------------------------
 */

/* Answers every collection into a fresh req->out. */
static int eas_sync_answer(struct eas_sync_run *run)
{
    struct eas_req *req = run->req;
    struct eas_node *root, *colls;

    eas_doc_free(req->out);
    req->out = NULL;
    run->content = 0;
    run->budget = run->window;
    if (!(req->out = eas_doc_new()) || !(root = eas_add(req->out, NULL, EAS_AIRSYNC_SYNC)) ||
        !(colls = eas_add(req->out, root, EAS_AIRSYNC_COLLECTIONS)))
        return -1;
    for (size_t i = 0; i < run->ncolls; i++)
        if (eas_sync_collection(run, &run->colls[i], colls) < 0)
            return -1;
    return 0;
}

static void eas_sync_wake(const char *address, int64_t modseq, void *ctx)
{
    struct eas_sync_wait *w = ctx;

    (void)address;
    (void)modseq;
    http_resume(w->http);
}

static void eas_sync_cleanup(struct eas_req *req)
{
    struct eas_sync_wait *w = req->cmd_state;

    if (!w)
        return;
    if (w->sub)
        store_unsubscribe(w->st, w->sub);
    free(w);
    req->cmd_state = NULL;
}

/* Waits for a change (or the end of the interval) before answering again. */
static int eas_sync_suspend(struct eas_req *req, int64_t deadline_ms, int64_t modseq_before)
{
    struct eas_sync_wait *w = req->cmd_state;
    int64_t left = deadline_ms - eas_now_ms();

    if (left <= 0)
        return 0;
    if (!w) {
        if (!(w = calloc(1, sizeof(*w))))
            return 0;
        w->st = req->e->st;
        w->http = req->http;
        w->deadline_ms = deadline_ms;
        req->cmd_state = w;
        req->cmd_cleanup = eas_sync_cleanup;
    }
    if (!w->sub && !(w->sub = store_subscribe(w->st, req->acct->address, eas_sync_wake, w)))
        return 0;
    /* a commit between our look and the subscription would otherwise go unnoticed */
    if (store_user_modseq(req->u) != modseq_before)
        return -1;
    if (http_suspend(req->http, (int)(left > INT32_MAX ? INT32_MAX : left)) != 0)
        return 0;
    return EAS_SUSPEND;
}

/* Runs the request; may suspend when it has nothing to say and a wait was asked. */
static int eas_sync_run_req(struct eas_sync_run *run, int64_t deadline_ms)
{
    struct eas_req *req = run->req;

    for (int tries = 0; tries < 4; tries++) {
        int64_t before = store_user_modseq(req->u);
        int rc;

        if (eas_sync_answer(run) < 0) {
            req->http_status = 500;
            return 0;
        }
        if (run->content || deadline_ms <= 0)
            return 0;
        rc = eas_sync_suspend(req, deadline_ms, before);
        if (rc == EAS_SUSPEND) {
            eas_doc_free(req->out);
            req->out = NULL;
            return EAS_SUSPEND;
        }
        if (rc == 0)
            break;
    }
    /* Nothing changed within the wait: an empty response (MS-ASCMD 3.1.5.4). */
    eas_doc_free(req->out);
    req->out = NULL;
    return 0;
}

static int eas_sync_prepare(struct eas_req *req, struct eas_sync_run *run, int *limit)
{
    memset(run, 0, sizeof(*run));
    run->req = req;
    if (!(run->colls = calloc(EAS_SYNC_MAX_COLLS, sizeof(*run->colls))))
        return EAS_STATUS_SERVER;
    return eas_sync_parse(run, limit);
}

int eas_cmd_sync(struct eas_req *req)
{
    struct eas_sync_run run;
    int limit, status, rc;
    int64_t deadline = 0;

    status = eas_sync_prepare(req, &run, &limit);
    if (status) {
        free(run.colls);
        return eas_sync_fail(req, status, limit);
    }
    /* the collections of a full request are what an empty or partial one reuses */
    if (req->in && eas_sync_cache_save(&run) != STORE_OK)
        log_warn("eas", "Sync: request cache not saved for %s", req->acct->address);
    if (run.wait_s > 0)
        deadline = eas_now_ms() + (int64_t)run.wait_s * 1000;
    rc = eas_sync_run_req(&run, deadline);
    free(run.colls);
    return rc;
}

int eas_resume_sync(struct eas_req *req, int timed_out)
{
    struct eas_sync_wait *w = req->cmd_state;
    struct eas_sync_run run;
    int limit, rc;

    if (eas_sync_prepare(req, &run, &limit) != 0) {
        free(run.colls);
        eas_sync_cleanup(req);
        return eas_sync_fail(req, EAS_STATUS_SERVER, 0);
    }
    /* Resumed requests carry no client commands that are not done already: a request
     * with commands always answers at once (its new key is news). */
    rc = eas_sync_run_req(&run, timed_out || !w ? 0 : w->deadline_ms);
    free(run.colls);
    if (rc != EAS_SUSPEND)
        eas_sync_cleanup(req);
    return rc;
}
