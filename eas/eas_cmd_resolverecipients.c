/*
 * eas_cmd_resolverecipients.c — ResolveRecipients (MS-ASCMD 2.2.1.15): turns what a user
 * typed into To/Cc (an address or the start of a name) into addresses of the Global
 * Address List, with the recipients' free/busy (14.0+) and certificates.
 *
 * The GAL is the user's own domain: its mailboxes and aliases (tenants never see each
 * other, as in Search). An address resolves when it is one of them; a name when exactly
 * one entry starts with it (several make the answer ambiguous: Status 2 with suggestions,
 * 3 when more exist than MaxAmbiguousRecipients allows). Anything else is Status 4.
 *
 * Availability reads the recipient's calendars through the store's occurrence index, so
 * the cost is the number of events in the window, never the calendar size: each 30-minute
 * slot of MergedFreeBusy is the strongest state of the events covering it (OOF > busy >
 * tentative > working elsewhere > free). Only mailboxes of the domain have free/busy;
 * aliases answer 163 ("no free/busy for this recipient").
 *
 * The directory holds no S/MIME certificates, so a request for them gets Certificates
 * Status 7 (the recipient has no valid certificate), and no photos (Picture Status 173).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dav/dav_ical.h"
#include "eas/eas_int.h"

#define RR_MAX_TO      1000      /* To elements in one request (Status 5 beyond) */
#define RR_MAX_AVAIL   100       /* recipients with free/busy (Availability Status 160 beyond) */
#define RR_MAX_SUGGEST 100       /* suggestions for one ambiguous To */
#define RR_SLOT        1800      /* MergedFreeBusy resolution: 30 minutes */
#define RR_MAX_SLOTS   (42 * 48) /* a six-week window at most */

enum { RR_OK = 1, RR_PROTOCOL = 5, RR_SERVER = 6 };
enum { RR_RESOLVED = 1, RR_AMBIGUOUS = 2, RR_AMBIGUOUS_PARTIAL = 3, RR_UNRESOLVED = 4 };
enum { RR_AV_OK = 1, RR_AV_TOO_MANY = 160, RR_AV_NODATA = 163 };
enum { RR_CERT_NONE = 7 };
enum { RR_PIC_NONE = 173 };

struct rr_entry {
    char address[320];
    char name[65];
    int mailbox; /* 1: a mailbox (has a calendar), 0: an alias */
};

struct rr_gal {
    const char *q; /* what to match (an address, or a name prefix) */
    size_t qlen;
    int exact; /* q is an address: whole-address match only */
    struct rr_entry *hits;
    size_t n, cap, total;
};

struct rr_opts {
    int certs;      /* CertificateRetrieval: 1 none, 2 full, 3 mini */
    size_t max_amb; /* MaxAmbiguousRecipients */
    int avail;      /* Availability requested */
    int64_t start, end;
    int picture; /* Picture requested */
    size_t avail_done;
};

static int rr_gal_push(struct rr_gal *g, const char *addr, const char *name, int mailbox)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcasecmp(g->hits[i].address, addr) == 0)
            return 0;
    g->total++;
    if (g->n == RR_MAX_SUGGEST + 1)
        return 0; /* counted, not kept: the answer is partial anyway */
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        struct rr_entry *e = realloc(g->hits, cap * sizeof(*e));
        if (!e)
            return -1;
        g->hits = e;
        g->cap = cap;
    }
    snprintf(g->hits[g->n].address, sizeof(g->hits[g->n].address), "%s", addr);
    snprintf(g->hits[g->n].name, sizeof(g->hits[g->n].name), "%s", name);
    g->hits[g->n].mailbox = mailbox;
    g->n++;
    return 0;
}

static int rr_matches(const struct rr_gal *g, const char *addr, const char *localpart)
{
    if (g->exact)
        return strcasecmp(addr, g->q) == 0;
    return strncasecmp(localpart, g->q, g->qlen) == 0 || strncasecmp(addr, g->q, g->qlen) == 0;
}

static int rr_account_cb(const struct store_account *a, void *ctx)
{
    struct rr_gal *g = ctx;

    if (!a->active || !rr_matches(g, a->address, a->localpart))
        return 0;
    return rr_gal_push(g, a->address, a->localpart, 1) < 0;
}

static int rr_alias_cb(const char *source, const char *target, void *ctx)
{
    struct rr_gal *g = ctx;
    char lp[65];
    const char *at = strchr(source, '@');
    size_t n = at ? (size_t)(at - source) : 0;

    (void)target;
    /* a catch-all ("@domain") is no one's address */
    if (n == 0 || n >= sizeof(lp))
        return 0;
    memcpy(lp, source, n);
    lp[n] = '\0';
    if (!rr_matches(g, source, lp))
        return 0;
    return rr_gal_push(g, source, lp, 0) < 0;
}

/* "Name <addr>" → addr; a bare value is returned as it is. */
static const char *rr_strip(const char *to, char *buf, size_t buflen)
{
    const char *lt = strrchr(to, '<'), *gt = lt ? strchr(lt, '>') : NULL;

    if (!lt || !gt || (size_t)(gt - lt - 1) >= buflen)
        return to;
    memcpy(buf, lt + 1, (size_t)(gt - lt - 1));
    buf[gt - lt - 1] = '\0';
    return buf;
}

/* ---- free/busy ---------------------------------------------------------------------- */

/* The state an event puts its slots in, as a MergedFreeBusy digit; -1 when it does not
 * count (transparent, cancelled, free). Read from the stored iCalendar text: the master
 * component's properties decide for every instance. */
static int rr_event_state(const char *ics, size_t len)
{
    int state = 2;
    const char *p = ics, *end = ics + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n && p[n - 1] == '\r')
            n--;
#define IS(lit) (n == sizeof(lit) - 1 && strncasecmp(p, lit, n) == 0)
        if (IS("TRANSP:TRANSPARENT") || IS("STATUS:CANCELLED") ||
            IS("X-MICROSOFT-CDO-BUSYSTATUS:FREE"))
            return -1;
        if (IS("STATUS:TENTATIVE") || IS("X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE"))
            state = 1;
        else if (IS("X-MICROSOFT-CDO-BUSYSTATUS:OOF"))
            state = 3;
        else if (IS("X-MICROSOFT-CDO-BUSYSTATUS:WORKINGELSEWHERE"))
            state = 4;
#undef IS
        if (n >= 10 && strncasecmp(p, "END:VEVENT", 10) == 0)
            break; /* overrides after the master do not change the whole series */
        p = nl ? nl + 1 : end;
    }
    return state;
}

/* Strength of a digit when events overlap: OOF beats busy beats tentative beats working
 * elsewhere beats free. */
static int rr_rank(char c)
{
    static const char order[] = "04123";
    const char *p = strchr(order, c);
    return p ? (int)(p - order) : 0;
}

struct rr_fb {
    struct store_user *u;
    int64_t start, end;
    char *slots;
    size_t nslots;
};

static int rr_fb_item(const struct store_item *it, void *ctx)
{
    struct rr_fb *fb = ctx;
    struct store_range *r = NULL;
    size_t n = 0;
    int64_t until;
    char *body = NULL;
    size_t len = 0;
    int state;

    if (store_item_body(fb->u, it->id, &body, &len, NULL) != STORE_OK)
        return 0;
    state = rr_event_state(body, len);
    if (state < 0 || store_item_get_ranges(fb->u, it->id, &r, &n, &until, NULL) != STORE_OK) {
        free(body);
        return 0;
    }
    if (until < fb->end) {
        /* An open-ended series indexed up to an earlier horizon: expand it over the
         * window here (the index itself is extended by the engines that write it). */
        struct dav_ical *c = NULL;
        const char *precond;
        char err[128];
        free(r);
        r = NULL;
        n = 0;
        if (dav_ical_parse(body, len, &c, &precond, err, sizeof(err)) == 0)
            dav_ical_ranges(c, fb->end, &r, &n, &until);
        dav_ical_free(c);
    }
    free(body);
    for (size_t i = 0; i < n; i++) {
        int64_t a = (r[i].start - fb->start) / RR_SLOT;
        int64_t b = (r[i].end - fb->start + RR_SLOT - 1) / RR_SLOT;
        if (r[i].end == r[i].start)
            b = a + 1; /* an instant still marks its slot */
        for (int64_t s = a < 0 ? 0 : a; s < b && s < (int64_t)fb->nslots; s++)
            if (rr_rank((char)('0' + state)) > rr_rank(fb->slots[s]))
                fb->slots[s] = (char)('0' + state);
    }
    free(r);
    return 0;
}

struct rr_cals {
    int64_t ids[64];
    size_t n;
};

static int rr_cal_cb(const struct store_folder *f, void *ctx)
{
    struct rr_cals *c = ctx;

    if (c->n < sizeof(c->ids) / sizeof(c->ids[0]))
        c->ids[c->n++] = f->id;
    return 0;
}

/* MergedFreeBusy of one mailbox over [o->start, o->end), malloc'd; NULL on failure. */
static char *rr_freebusy(struct eas_req *req, const char *address, const struct rr_opts *o)
{
    struct store_user *u = NULL;
    struct rr_cals cals = {.n = 0};
    struct rr_fb fb;
    size_t n = (size_t)((o->end - o->start + RR_SLOT - 1) / RR_SLOT);
    char *slots = malloc(n + 1);

    if (!slots)
        return NULL;
    memset(slots, '0', n);
    slots[n] = '\0';
    if (store_user_open(req->e->st, address, &u, NULL) != STORE_OK)
        goto err;
    if (store_folder_list(u, STORE_CLASS_CALENDAR, rr_cal_cb, &cals, NULL) != STORE_OK)
        goto err;
    fb = (struct rr_fb){.u = u, .start = o->start, .end = o->end, .slots = slots, .nslots = n};
    for (size_t i = 0; i < cals.n; i++)
        if (store_item_range_query(u, cals.ids[i], o->start, o->end, rr_fb_item, &fb, NULL) !=
            STORE_OK)
            goto err;
    store_user_release(u);
    return slots;
err:
    if (u)
        store_user_release(u);
    free(slots);
    return NULL;
}

/* ---- the command ---------------------------------------------------------------------- */

static void rr_recipient(struct eas_req *req, struct eas_node *resp, const struct rr_entry *e,
                         struct rr_opts *o)
{
    struct eas_node *r = eas_add(req->out, resp, EAS_RESOLVERECIPIENTS_RECIPIENT);

    eas_add_int(req->out, r, EAS_RESOLVERECIPIENTS_TYPE, 1); /* a GAL entry */
    eas_add_text(req->out, r, EAS_RESOLVERECIPIENTS_DISPLAYNAME, e->name);
    eas_add_text(req->out, r, EAS_RESOLVERECIPIENTS_EMAILADDRESS, e->address);
    if (o->avail) {
        struct eas_node *av = eas_add(req->out, r, EAS_RESOLVERECIPIENTS_AVAILABILITY);
        char *fb = NULL;
        if (o->avail_done >= RR_MAX_AVAIL) {
            eas_add_int(req->out, av, EAS_RESOLVERECIPIENTS_STATUS, RR_AV_TOO_MANY);
        } else if (!e->mailbox || !(fb = rr_freebusy(req, e->address, o))) {
            eas_add_int(req->out, av, EAS_RESOLVERECIPIENTS_STATUS, RR_AV_NODATA);
        } else {
            eas_add_int(req->out, av, EAS_RESOLVERECIPIENTS_STATUS, RR_AV_OK);
            eas_add_text(req->out, av, EAS_RESOLVERECIPIENTS_MERGEDFREEBUSY, fb);
        }
        o->avail_done++;
        free(fb);
    }
    if (o->certs == 2 || o->certs == 3) {
        struct eas_node *c = eas_add(req->out, r, EAS_RESOLVERECIPIENTS_CERTIFICATES);
        eas_add_int(req->out, c, EAS_RESOLVERECIPIENTS_STATUS, RR_CERT_NONE);
        eas_add_int(req->out, c, EAS_RESOLVERECIPIENTS_CERTIFICATECOUNT, 0);
    }
    if (o->picture) {
        struct eas_node *p = eas_add(req->out, r, EAS_RESOLVERECIPIENTS_PICTURE);
        eas_add_int(req->out, p, EAS_RESOLVERECIPIENTS_STATUS, RR_PIC_NONE);
    }
}

/* Resolves one To; -1 on a store failure. */
static int rr_resolve(struct eas_req *req, struct eas_node *root, const char *to, struct rr_opts *o)
{
    char buf[320];
    const char *q = rr_strip(to, buf, sizeof(buf));
    struct rr_gal g = {.q = q, .qlen = strlen(q), .exact = strchr(q, '@') != NULL};
    struct eas_node *resp = eas_add(req->out, root, EAS_RESOLVERECIPIENTS_RESPONSE);
    int status;
    size_t shown;

    eas_add_text(req->out, resp, EAS_RESOLVERECIPIENTS_TO, to);
    if (g.qlen &&
        (store_account_list(req->e->st, req->acct->domain, rr_account_cb, &g, NULL) != STORE_OK ||
         store_alias_list(req->e->st, req->acct->domain, NULL, rr_alias_cb, &g, NULL) !=
             STORE_OK)) {
        free(g.hits);
        return -1;
    }
    if (g.total == 0)
        status = RR_UNRESOLVED;
    else if (g.total == 1)
        status = RR_RESOLVED;
    else
        status = g.total > o->max_amb ? RR_AMBIGUOUS_PARTIAL : RR_AMBIGUOUS;
    shown = g.n < o->max_amb ? g.n : o->max_amb;
    if (status == RR_RESOLVED)
        shown = 1;
    eas_add_int(req->out, resp, EAS_RESOLVERECIPIENTS_STATUS, status);
    eas_add_int(req->out, resp, EAS_RESOLVERECIPIENTS_RECIPIENTCOUNT, (long long)shown);
    for (size_t i = 0; i < shown; i++)
        rr_recipient(req, resp, &g.hits[i], o);
    free(g.hits);
    return 0;
}

/* Reads Options; -1 when they are malformed or out of range (Status 5). */
static int rr_options(const struct eas_req *req, const struct eas_node *opts, struct rr_opts *o)
{
    const struct eas_node *av, *pic;

    *o = (struct rr_opts){.certs = 1, .max_amb = 20};
    if (!opts)
        return 0;
    o->certs = (int)eas_child_int(opts, EAS_RESOLVERECIPIENTS_CERTIFICATERETRIEVAL, 1);
    if (o->certs < 1 || o->certs > 3)
        return -1;
    long long m = eas_child_int(opts, EAS_RESOLVERECIPIENTS_MAXAMBIGUOUSRECIPIENTS, 20);
    if (m < 0 || m > 9999)
        return -1;
    o->max_amb = m > RR_MAX_SUGGEST ? RR_MAX_SUGGEST : (size_t)m;
    if ((av = eas_child(opts, EAS_RESOLVERECIPIENTS_AVAILABILITY))) {
        /* free/busy came with protocol 14.0 */
        if (req->version < EAS_V140 ||
            eas_time_parse(eas_child_text(av, EAS_RESOLVERECIPIENTS_STARTTIME), &o->start) != 0 ||
            eas_time_parse(eas_child_text(av, EAS_RESOLVERECIPIENTS_ENDTIME), &o->end) != 0 ||
            o->end <= o->start || (o->end - o->start) / RR_SLOT > RR_MAX_SLOTS)
            return -1;
        o->avail = 1;
    }
    if ((pic = eas_child(opts, EAS_RESOLVERECIPIENTS_PICTURE))) {
        if (req->version < EAS_V141)
            return -1;
        o->picture = 1;
    }
    return 0;
}

int eas_cmd_resolverecipients(struct eas_req *req)
{
    const struct eas_node *in = req->in ? eas_doc_root(req->in) : NULL;
    const struct eas_node *to;
    struct eas_node *root;
    struct rr_opts o;
    size_t nto = 0;

    req->out = eas_doc_new();
    if (!req->out)
        return -1;
    root = eas_add(req->out, NULL, EAS_RESOLVERECIPIENTS_RESOLVERECIPIENTS);
    if (!in || in->tag != EAS_RESOLVERECIPIENTS_RESOLVERECIPIENTS ||
        rr_options(req, eas_child(in, EAS_RESOLVERECIPIENTS_OPTIONS), &o) < 0)
        goto protocol;
    for (to = eas_child(in, EAS_RESOLVERECIPIENTS_TO); to;
         to = eas_next(to, EAS_RESOLVERECIPIENTS_TO))
        if (++nto > RR_MAX_TO || strlen(eas_text(to)) > 256)
            goto protocol;
    if (nto == 0)
        goto protocol;
    eas_add_int(req->out, root, EAS_RESOLVERECIPIENTS_STATUS, RR_OK);
    for (to = eas_child(in, EAS_RESOLVERECIPIENTS_TO); to;
         to = eas_next(to, EAS_RESOLVERECIPIENTS_TO)) {
        if (rr_resolve(req, root, eas_text(to), &o) < 0) {
            /* start over with only the command's Status: a half answer helps no one */
            eas_doc_free(req->out);
            req->out = eas_doc_new();
            if (!req->out)
                return -1;
            root = eas_add(req->out, NULL, EAS_RESOLVERECIPIENTS_RESOLVERECIPIENTS);
            eas_add_int(req->out, root, EAS_RESOLVERECIPIENTS_STATUS, RR_SERVER);
            return 0;
        }
    }
    return 0;
protocol:
    eas_add_int(req->out, root, EAS_RESOLVERECIPIENTS_STATUS, RR_PROTOCOL);
    return 0;
}
