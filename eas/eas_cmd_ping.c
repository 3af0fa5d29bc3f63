/*
 * eas_cmd_ping.c — Ping (MS-ASCMD 2.2.1.13): the push of ActiveSync. The device names the
 * folders to watch and a heartbeat; we answer Status 2 with the folders that changed as
 * soon as one does, or Status 1 when the heartbeat ends quietly.
 *
 * A waiting Ping holds no thread: the request is suspended in the front end
 * (http_suspend), and a subscription to the user's store notifications (called after
 * every commit, by any engine or process) resumes it. Resumed, it looks at the watched
 * folders' changes since the Ping began (store_changes_since from the user's MODSEQ then:
 * work proportional to the changes) and, when the Sync engine is built in, asks it
 * whether the device still lacks them (eas_sync_has_changes), so its own Sync does not
 * wake it. Then it answers or waits again. The suspend always comes before the check, so
 * a commit between the two resumes it again instead of being missed.
 *
 * Also, per MS-ASCMD:
 *  - an empty Ping (or one without HeartbeatInterval or Folders) reuses what the last Ping
 *    of the device said (kept in its store), Status 3 when there is nothing to reuse;
 *  - a heartbeat outside [eas_heartbeat_min, eas_heartbeat_max] is Status 5 with the
 *    bound; more than eas_ping_folders folders is Status 6 with MaxFolders; a folder the
 *    device cannot know is Status 7 (FolderSync first);
 *  - a new Ping of the same device ends the waiting one with Status 1 (nothing to report
 *    to it: its device has moved on to the new request, which reports the changes);
 *  - the gate is checked again (eas_http.c, for every resumed request) at every wake-up
 *    and at least every EAS_PING_RECHECK seconds: a mailbox turned Basic or suspended
 *    meanwhile gets 403.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eas/eas_int.h"

#ifndef EAS_WITH_SYNC
#define EAS_WITH_SYNC 0
#endif

#define EAS_PING_RECHECK   300   /* seconds between gate checks of a quiet Ping */
#define EAS_PING_STATE_MAX 65536 /* bytes of a stored Ping */

enum {
    PING_QUIET = 1,
    PING_CHANGES = 2,
    PING_MISSING = 3,
    PING_SYNTAX = 4,
    PING_BAD_HEARTBEAT = 5,
    PING_TOO_MANY = 6,
    PING_HIERARCHY = 7,
    PING_SERVER_ERROR = 8,
};

struct eas_ping_state {
    struct eas_ping_wait w;
    struct store_sub *sub;
    struct eas *e;
    int64_t since;        /* the user's MODSEQ when the Ping began */
    int64_t deadline_ms;  /* end of the heartbeat, monotonic */
    int64_t slice_end_ms; /* end of the current suspend */
    int nfolders;
    int64_t folders[];
};

static int64_t eas_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------------------------
 * Answers
 * ------------------------------------------------------------------------------------ */

static int eas_ping_answer(struct eas_req *req, int status, unsigned extra_tag, long long extra)
{
    struct eas_node *root;

    eas_doc_free(req->out);
    req->out = eas_doc_new();
    root = req->out ? eas_add(req->out, NULL, EAS_PING_PING) : NULL;
    if (!root || !eas_add_int(req->out, root, EAS_PING_STATUS, status))
        return -1;
    if (extra_tag && !eas_add_int(req->out, root, extra_tag, extra))
        return -1;
    return 0;
}

static int eas_ping_answer_folders(struct eas_req *req, const int64_t *ids, int n)
{
    struct eas_node *fl;
    char id[24];

    if (eas_ping_answer(req, PING_CHANGES, 0, 0) != 0 ||
        !(fl = eas_add(req->out, eas_doc_root(req->out), EAS_PING_FOLDERS)))
        return -1;
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%lld", (long long)ids[i]);
        if (!eas_add_text(req->out, fl, EAS_PING_FOLDER, id))
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Parameters: from the request, else the device's last Ping
 * ------------------------------------------------------------------------------------ */

struct eas_ping_params {
    long long heartbeat; /* -1 when not given */
    int nfolders;        /* -1 when not given */
    int64_t *folders;
};

static void eas_ping_params_load(struct eas_req *req, struct eas_ping_params *p)
{
    void *val = NULL;
    size_t len = 0, i = 0;
    int cap = 0;

    p->heartbeat = -1;
    p->nfolders = -1;
    p->folders = NULL;
    if (store_state_get(req->u, EAS_NS_PING, req->device_id, &val, &len, NULL) != STORE_OK)
        return;
    while (i < len) {
        const char *line = (const char *)val + i, *nl = memchr(line, '\n', len - i);
        size_t n = nl ? (size_t)(nl - line) : len - i;
        char buf[40];
        long long v;
        i += n + 1;
        if (n >= sizeof(buf))
            continue;
        memcpy(buf, line, n);
        buf[n] = '\0';
        if (sscanf(buf, "hb %lld", &v) == 1) {
            p->heartbeat = v;
        } else if (sscanf(buf, "f %lld", &v) == 1) {
            if (p->nfolders < 0)
                p->nfolders = 0;
            if (p->nfolders == cap) {
                int64_t *nv = realloc(p->folders, (size_t)(cap ? cap * 2 : 16) * sizeof(*nv));
                if (!nv)
                    break;
                p->folders = nv;
                cap = cap ? cap * 2 : 16;
            }
            p->folders[p->nfolders++] = v;
        }
    }
    free(val);
}

static int eas_ping_params_save(struct eas_req *req, const struct eas_ping_params *p)
{
    size_t cap = 32 + (size_t)p->nfolders * 24, len;
    char *buf = malloc(cap);
    int rc;

    if (!buf)
        return STORE_ENOMEM;
    len = (size_t)snprintf(buf, cap, "hb %lld\n", p->heartbeat);
    for (int i = 0; i < p->nfolders && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "f %lld\n", (long long)p->folders[i]);
    rc = len < cap ? store_state_put(req->u, EAS_NS_PING, req->device_id, buf, len, NULL)
                   : STORE_EINVAL;
    free(buf);
    return rc;
}

/* Reads the request's Ping: -1 when it is not one. Folders over `max` stop the reading
 * (the caller answers Status 6 on nfolders > max). */
static int eas_ping_params_parse(const struct eas_node *root, struct eas_ping_params *p, int max)
{
    const struct eas_node *fl, *f;
    const char *hb;
    int cap = 0;

    p->heartbeat = -1;
    p->nfolders = -1;
    p->folders = NULL;
    if (!root)
        return 0;
    if (root->tag != EAS_PING_PING)
        return -1;
    if ((hb = eas_child_text(root, EAS_PING_HEARTBEATINTERVAL)) != NULL) {
        char *end;
        p->heartbeat = strtoll(hb, &end, 10);
        if (end == hb || *end || p->heartbeat < 0)
            return -1;
    }
    if (!(fl = eas_child(root, EAS_PING_FOLDERS)))
        return 0;
    p->nfolders = 0;
    for (f = eas_child(fl, EAS_PING_FOLDER); f; f = eas_next(f, EAS_PING_FOLDER)) {
        int64_t id;
        if (eas_parse_folder_id(eas_child_text(f, EAS_PING_ID), &id) != 0)
            return -1;
        if (p->nfolders > max) /* counted, not kept */
            continue;
        if (p->nfolders == cap) {
            int64_t *nv = realloc(p->folders, (size_t)(cap ? cap * 2 : 16) * sizeof(*nv));
            if (!nv)
                return -1;
            p->folders = nv;
            cap = cap ? cap * 2 : 16;
        }
        p->folders[p->nfolders++] = id;
    }
    return 0;
}

/* Does the device know every folder? From its hierarchy state, else the store. */
static int eas_ping_folders_known(struct eas_req *req, const struct eas_ping_params *p)
{
    struct eas_hstate h;
    struct store_folder f;
    int ok = 1;

    if (eas_hier_load(req->u, req->device_id, &h) != STORE_OK)
        return -1;
    for (int i = 0; i < p->nfolders && ok; i++) {
        size_t j;
        for (j = 0; j < h.ncur; j++)
            if (h.cur[j].id == p->folders[i])
                break;
        if (j == h.ncur)
            ok = store_folder_get(req->u, p->folders[i], &f, NULL) == STORE_OK &&
                 eas_folder_type(&f) != 0;
    }
    eas_hier_free(&h);
    return ok;
}

/* ---------------------------------------------------------------------------------------
 * Waiting
 * ------------------------------------------------------------------------------------ */

static int eas_ping_any_cb(const struct store_item *it, int removed, void *ctx)
{
    (void)it;
    (void)removed;
    *(int *)ctx = 1;
    return 1; /* one is enough */
}

/* The watched folders with news for the device: ids into out, count returned. At the
 * start of a Ping that is what the device has not fetched yet (Sync state); later, what
 * changed since the Ping began and the device still lacks. */
static int eas_ping_changed(struct eas_req *req, struct eas_ping_state *st, int initial,
                            int64_t *out)
{
    int n = 0;

    for (int i = 0; i < st->nfolders; i++) {
        int any = 0;
#if EAS_WITH_SYNC
        if (initial) {
            if (eas_sync_has_changes(req, st->folders[i]) == 1)
                out[n++] = st->folders[i];
            continue;
        }
#else
        if (initial)
            continue; /* without Sync state, only changes from now on are news */
#endif
        if (store_changes_since(req->u, st->folders[i], st->since, eas_ping_any_cb, &any, NULL) !=
            STORE_OK)
            continue;
#if EAS_WITH_SYNC
        /* Changes the device made itself, or already fetched, are no news. */
        if (any && eas_sync_has_changes(req, st->folders[i]) == 0)
            any = 0;
#endif
        if (any)
            out[n++] = st->folders[i];
    }
    return n;
}

/* The store's callback: runs on the committing thread with the hub's lock held, so it
 * only resumes the request. */
static void eas_ping_notify(const char *address, int64_t modseq, void *ctx)
{
    struct eas_ping_state *st = ctx;

    (void)address;
    (void)modseq;
    http_resume(st->w.http);
}

static void eas_ping_cleanup(struct eas_req *req)
{
    struct eas_ping_state *st = req->cmd_state;

    if (!st)
        return;
    if (st->sub)
        store_unsubscribe(st->e->st, st->sub);
    eas_ping_unregister(st->e->pings, &st->w);
    free(st);
    req->cmd_state = NULL;
}

/* Suspends until the heartbeat ends, or the next gate check. */
static int eas_ping_suspend(struct eas_req *req, struct eas_ping_state *st)
{
    int64_t now = eas_now_ms(), left = st->deadline_ms - now;

    if (left > (int64_t)EAS_PING_RECHECK * 1000)
        left = (int64_t)EAS_PING_RECHECK * 1000;
    if (left < 0)
        left = 0;
    st->slice_end_ms = now + left;
    return http_suspend(req->http, (int)left);
}

/* Looks, and answers or goes on waiting (the caller suspended the request before, when
 * `waiting`: a commit during the look resumes it again). */
static int eas_ping_check(struct eas_req *req, struct eas_ping_state *st, int initial, int waiting)
{
    int64_t *changed;
    int n, rc;

    if (eas_ping_superseded(req->e->pings, &st->w)) {
        log_debug("eas", "%s %s: Ping superseded by a newer one", req->acct->address,
                  req->device_id);
        return eas_ping_answer(req, PING_QUIET, 0, 0);
    }
    if (!(changed = malloc((size_t)(st->nfolders ? st->nfolders : 1) * sizeof(*changed))))
        return eas_ping_answer(req, PING_SERVER_ERROR, 0, 0);
    n = eas_ping_changed(req, st, initial, changed);
    rc = n > 0     ? eas_ping_answer_folders(req, changed, n)
         : waiting ? EAS_SUSPEND
                   : eas_ping_answer(req, PING_QUIET, 0, 0);
    free(changed);
    return rc;
}

int eas_resume_ping(struct eas_req *req, int timed_out)
{
    struct eas_ping_state *st = req->cmd_state;
    int64_t now = eas_now_ms();
    int stopping, waiting;

    if (!st)
        return eas_ping_answer(req, PING_SERVER_ERROR, 0, 0);
    /* The front end ends waits early only when the server stops: answer then. */
    stopping = timed_out && now < st->slice_end_ms;
    waiting = !stopping && now < st->deadline_ms && !eas_ping_superseded(req->e->pings, &st->w);
    /* Waiting again first: a commit from here on resumes the request once more. */
    if (waiting && eas_ping_suspend(req, st) != 0)
        return eas_ping_answer(req, PING_SERVER_ERROR, 0, 0);
    return eas_ping_check(req, st, 0, waiting);
}

/* Validates the parameters and settles what is missing; 0 to go on, else answered. */
static int eas_ping_settle(struct eas_req *req, struct eas_ping_params *p, int *answered)
{
    const struct config *cfg = req->e->cfg;
    struct eas_ping_params last;
    int dirty = 0;

    *answered = 1;
    if (p->heartbeat < 0 || p->nfolders < 0) {
        eas_ping_params_load(req, &last);
        if (p->heartbeat < 0)
            p->heartbeat = last.heartbeat;
        if (p->nfolders < 0) {
            p->nfolders = last.nfolders;
            p->folders = last.folders;
            last.folders = NULL;
        }
        free(last.folders);
    } else {
        dirty = 1;
    }
    if (p->heartbeat < 0 || p->nfolders <= 0)
        return eas_ping_answer(req, PING_MISSING, 0, 0);
    if (p->heartbeat < cfg->eas_heartbeat_min)
        return eas_ping_answer(req, PING_BAD_HEARTBEAT, EAS_PING_HEARTBEATINTERVAL,
                               cfg->eas_heartbeat_min);
    if (p->heartbeat > cfg->eas_heartbeat_max)
        return eas_ping_answer(req, PING_BAD_HEARTBEAT, EAS_PING_HEARTBEATINTERVAL,
                               cfg->eas_heartbeat_max);
    if (p->nfolders > cfg->eas_ping_folders)
        return eas_ping_answer(req, PING_TOO_MANY, EAS_PING_MAXFOLDERS, cfg->eas_ping_folders);
    int known = eas_ping_folders_known(req, p);
    if (known < 0)
        return eas_ping_answer(req, PING_SERVER_ERROR, 0, 0);
    if (!known)
        return eas_ping_answer(req, PING_HIERARCHY, 0, 0);
    /* Remembered for the empty Pings that follow. Partial Pings change it too. */
    if ((dirty || req->in) && eas_ping_params_save(req, p) != STORE_OK)
        log_warn("eas", "%s: could not keep the Ping of %s", req->acct->address, req->device_id);
    *answered = 0;
    return 0;
}

int eas_cmd_ping(struct eas_req *req)
{
    const struct eas_node *root = req->in ? eas_doc_root(req->in) : NULL;
    struct eas_ping_params p;
    struct eas_ping_state *st;
    int answered, rc;

    if (eas_ping_params_parse(root, &p, req->e->cfg->eas_ping_folders) != 0) {
        free(p.folders);
        return eas_ping_answer(req, PING_SYNTAX, 0, 0);
    }
    rc = eas_ping_settle(req, &p, &answered);
    if (answered) {
        free(p.folders);
        return rc;
    }
    st = calloc(1, sizeof(*st) + (size_t)p.nfolders * sizeof(st->folders[0]));
    if (!st) {
        free(p.folders);
        return eas_ping_answer(req, PING_SERVER_ERROR, 0, 0);
    }
    st->e = req->e;
    st->nfolders = p.nfolders;
    memcpy(st->folders, p.folders, (size_t)p.nfolders * sizeof(st->folders[0]));
    free(p.folders);
    st->w.http = req->http;
    snprintf(st->w.key, sizeof(st->w.key), "%s/%s", req->acct->address, req->device_id);
    st->since = store_user_modseq(req->u);
    st->deadline_ms = eas_now_ms() + p.heartbeat * 1000;
    req->cmd_state = st;
    req->cmd_cleanup = eas_ping_cleanup;
    /* Suspended before subscribing and looking: nothing committed from here is missed. */
    if (eas_ping_suspend(req, st) != 0)
        return eas_ping_answer(req, PING_SERVER_ERROR, 0, 0);
    eas_ping_register(req->e->pings, &st->w);
    st->sub = store_subscribe(req->e->st, req->acct->address, eas_ping_notify, st);
    if (!st->sub)
        return eas_ping_answer(req, PING_SERVER_ERROR, 0, 0);
    return eas_ping_check(req, st, 1, 1);
}
