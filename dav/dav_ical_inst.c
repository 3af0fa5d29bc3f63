/*
 * dav_ical_inst.c — the occurrences of a resource: each component's time span by the
 * rules of RFC 4791 §9.9 (events, tasks, journals), the recurrence set of the master
 * (RRULE and RDATE minus EXDATE, with overrides and THISANDFUTURE shifts), and from
 * them the ranges kept in the store's occurrence index.
 *
 * Recurrence rules are expanded on floating wall-clock time (libical's iterator then
 * touches no time-zone state); each occurrence is converted to UTC afterwards under the
 * time-zone lock, so a weekly 09:00 Europe/Berlin meeting stays at 09:00 across DST.
 */
#include <stdlib.h>
#include <string.h>

#include "dav/dav_ical_int.h"

int dav_ical_inst_overlaps(const struct dav_ical_inst *in, int64_t start, int64_t end)
{
    int a = in->e_incl ? start <= in->e : start < in->e;
    int b = in->s_incl ? end >= in->s : end > in->s;
    return a && b;
}

/* A component's own span, as the base for its occurrences. */
struct span {
    int ok; /* has a span at all (journals without DTSTART do not) */
    int has_start;
    struct icaltimetype L; /* DTSTART wall clock (floating fields) */
    icaltimezone *zone;    /* DTSTART zone, NULL for UTC/floating */
    int is_date;
    int64_t s, e;
    unsigned char s_incl, e_incl;
    int wall; /* the end follows the start in wall-clock time (by wdelta) */
    int64_t wdelta;
};

static int64_t wall_secs(struct icaltimetype t)
{
    int64_t d = dav_ical_days_from_civil(t.year, t.month, t.day) * 86400;
    return t.is_date ? d : d + t.hour * 3600 + t.minute * 60 + t.second;
}

static struct icaltimetype wall_from(int64_t secs, int is_date)
{
    struct icaltimetype t = dav_ical_tz_from_unix(secs, NULL);
    t.is_date = is_date;
    if (is_date)
        t.hour = t.minute = t.second = 0;
    return t;
}

static int get_time(icalproperty *p, struct icaltimetype *t)
{
    icalvalue *v = p ? icalproperty_get_value(p) : NULL;
    if (!v || (icalvalue_isa(v) != ICAL_DATE_VALUE && icalvalue_isa(v) != ICAL_DATETIME_VALUE))
        return -1;
    *t = icalvalue_get_datetime(v);
    return dav_ical_time_valid(*t) ? 0 : -1;
}

static icaltimezone *zone_for(const struct dav_ical *c, icalproperty *p, struct icaltimetype t)
{
    return icaltime_is_utc(t) ? NULL : dav_ical_zone_of(c, p);
}

static void set_end_rel(struct span *sp, int64_t delta)
{
    if (delta < 0)
        delta = 0;
    sp->wall = 1;
    sp->wdelta = delta;
    sp->e = sp->s + delta;
}

/* The end of an event/task from DTEND/DUE or DURATION, in wall-clock terms when it shares
 * the start's zone (so occurrences keep their local length across DST). 1 when found. */
static int span_end(const struct dav_ical *c, icalcomponent *comp, icalproperty_kind endk,
                    struct span *sp)
{
    icalproperty *en = icalcomponent_get_first_property(comp, endk);
    icalproperty *du = icalcomponent_get_first_property(comp, ICAL_DURATION_PROPERTY);
    struct icaltimetype t;

    if (en && get_time(en, &t) == 0) {
        icaltimezone *z = zone_for(c, en, t);
        int64_t eu = dav_ical_tz_to_unix(t, z);
        if (z == sp->zone && t.is_date == sp->is_date) {
            set_end_rel(sp, wall_secs(t) - wall_secs(sp->L));
            sp->e = sp->s + (eu > sp->s ? eu - sp->s : 0);
        } else {
            sp->wall = 0;
            sp->e = eu > sp->s ? eu : sp->s;
        }
        return 1;
    }
    if (du) {
        struct icaldurationtype d = icalproperty_get_duration(du);
        int64_t secs = icaldurationtype_as_int(d);
        set_end_rel(sp, secs);
        if (sp->zone && !sp->is_date)
            sp->e = dav_ical_tz_to_unix(wall_from(wall_secs(sp->L) + sp->wdelta, 0), sp->zone);
        if (sp->e < sp->s)
            sp->e = sp->s;
        return 1;
    }
    return 0;
}

/* Fills the §9.9 inclusive/exclusive edges for an event-like span [s, e]. */
static void event_edges(struct span *sp)
{
    sp->s_incl = 0;
    sp->e_incl = sp->e == sp->s; /* zero length: start <= DTSTART < end */
}

static int prop_unix(const struct dav_ical *c, icalcomponent *comp, icalproperty_kind k, int64_t *t)
{
    icalproperty *p = icalcomponent_get_first_property(comp, k);
    return p ? dav_ical_prop_unix(c, p, t, NULL) : -1;
}

static void todo_span(const struct dav_ical *c, icalcomponent *comp, struct span *sp)
{
    int64_t due, co, cr;
    int has_due = prop_unix(c, comp, ICAL_DUE_PROPERTY, &due) == 0;
    int has_co = prop_unix(c, comp, ICAL_COMPLETED_PROPERTY, &co) == 0;
    int has_cr = prop_unix(c, comp, ICAL_CREATED_PROPERTY, &cr) == 0;

    sp->ok = 1;
    if (sp->has_start) {
        int had_dur = icalcomponent_get_first_property(comp, ICAL_DURATION_PROPERTY) != NULL;
        if (!span_end(c, comp, ICAL_DUE_PROPERTY, sp)) {
            sp->e = sp->s; /* DTSTART only: start <= DTSTART AND end > DTSTART */
            sp->e_incl = 1;
            sp->s_incl = 0;
            return;
        }
        if (had_dur) { /* start <= DTSTART+DURATION AND (end > DTSTART OR end >= DTSTART+D) */
            sp->e_incl = 1;
            sp->s_incl = sp->e == sp->s;
        } else { /* (start < DUE OR start <= DTSTART) AND (end > DTSTART OR end >= DUE) */
            sp->e_incl = sp->s_incl = sp->e == sp->s;
        }
        return;
    }
    sp->wall = 0;
    if (has_due) { /* start < DUE AND end >= DUE */
        sp->s = sp->e = due;
        sp->s_incl = 1;
        sp->e_incl = 0;
    } else if (has_co && has_cr) {
        sp->s = co < cr ? co : cr;
        sp->e = co < cr ? cr : co;
        sp->s_incl = sp->e_incl = 1;
    } else if (has_co) {
        sp->s = sp->e = co;
        sp->s_incl = sp->e_incl = 1;
    } else if (has_cr) { /* end > CREATED */
        sp->s = cr;
        sp->e = INT64_MAX;
        sp->s_incl = sp->e_incl = 0;
    } else { /* matches every range */
        sp->s = INT64_MIN;
        sp->e = INT64_MAX;
        sp->s_incl = sp->e_incl = 1;
    }
}

static void comp_span(const struct dav_ical *c, icalcomponent *comp, struct span *sp)
{
    icalproperty *st = icalcomponent_get_first_property(comp, ICAL_DTSTART_PROPERTY);
    icalcomponent_kind k = icalcomponent_isa(comp);

    memset(sp, 0, sizeof(*sp));
    if (st && get_time(st, &sp->L) == 0) {
        sp->has_start = 1;
        sp->is_date = sp->L.is_date;
        sp->zone = sp->is_date ? NULL : zone_for(c, st, sp->L);
        sp->L.zone = NULL;
        sp->s = dav_ical_tz_to_unix(sp->L, sp->zone);
    }
    if (k == ICAL_VTODO_COMPONENT) {
        todo_span(c, comp, sp);
        return;
    }
    if (!sp->has_start)
        return; /* a journal without DTSTART matches no time range */
    sp->ok = 1;
    if (k == ICAL_VJOURNAL_COMPONENT) {
        set_end_rel(sp, sp->is_date ? 86400 : 0);
    } else if (!span_end(c, comp, ICAL_DTEND_PROPERTY, sp)) {
        /* no end: a day for a DATE start, zero length for a DATE-TIME */
        set_end_rel(sp, sp->is_date ? 86400 : 0);
    }
    event_edges(sp);
}

/* An occurrence of a span starting at wall clock L. */
static void span_at(const struct span *sp, struct icaltimetype L, struct dav_ical_inst *in)
{
    in->s = dav_ical_tz_to_unix(L, sp->zone);
    if (sp->wall && sp->zone && !sp->is_date)
        in->e = dav_ical_tz_to_unix(wall_from(wall_secs(L) + sp->wdelta, 0), sp->zone);
    else if (sp->e == INT64_MAX)
        in->e = INT64_MAX;
    else
        in->e = in->s + (sp->e - sp->s);
    if (in->e < in->s)
        in->e = in->s;
    in->s_incl = sp->s_incl;
    in->e_incl = sp->e_incl;
    in->is_date = (unsigned char)sp->is_date;
}

static void inst_of_span(const struct span *sp, icalcomponent *comp, struct dav_ical_inst *in)
{
    memset(in, 0, sizeof(*in));
    in->s = sp->s;
    in->e = sp->e;
    in->s_incl = sp->s_incl;
    in->e_incl = sp->e_incl;
    in->is_date = (unsigned char)sp->is_date;
    in->comp = comp;
}

/* ---- the recurrence set ---- */

struct ovr {
    int64_t rid;
    int future; /* RANGE=THISANDFUTURE */
    struct span sp;
    icalcomponent *comp;
};

struct exp {
    const struct dav_ical *c;
    struct span msp;
    struct ovr *ov;
    size_t nov;
    int64_t *ex; /* EXDATE (unix) */
    size_t nex;
    int64_t *exday; /* DATE EXDATEs against a DATE-TIME start: whole local days */
    size_t nexday;
    dav_ical_inst_cb cb;
    void *ctx;
    size_t emitted, max_inst;
    int64_t from;
    int stop;
};

static int push64(int64_t **a, size_t *n, int64_t v)
{
    int64_t *x = realloc(*a, (*n + 1) * sizeof(**a));
    if (!x)
        return -1;
    *a = x;
    x[(*n)++] = v;
    return 0;
}

static int load_exdates(struct exp *x, icalcomponent *m)
{
    for (icalproperty *p = icalcomponent_get_first_property(m, ICAL_EXDATE_PROPERTY); p;
         p = icalcomponent_get_next_property(m, ICAL_EXDATE_PROPERTY)) {
        struct icaltimetype t;
        if (get_time(p, &t) < 0)
            continue;
        if (t.is_date && !x->msp.is_date) {
            if (push64(&x->exday, &x->nexday, dav_ical_days_from_civil(t.year, t.month, t.day)))
                return -1;
            continue;
        }
        if (push64(&x->ex, &x->nex, dav_ical_tz_to_unix(t, zone_for(x->c, p, t))) < 0)
            return -1;
    }
    return 0;
}

static int load_overrides(struct exp *x)
{
    const struct dav_ical *c = x->c;

    if (!c->novr)
        return 0;
    x->ov = calloc(c->novr, sizeof(*x->ov));
    if (!x->ov)
        return -1;
    for (size_t i = 0; i < c->novr; i++) {
        icalproperty *p = icalcomponent_get_first_property(c->ovr[i], ICAL_RECURRENCEID_PROPERTY);
        icalparameter *rp = icalproperty_get_first_parameter(p, ICAL_RANGE_PARAMETER);
        struct ovr *o = &x->ov[x->nov];
        if (dav_ical_prop_unix(c, p, &o->rid, NULL) < 0)
            continue;
        o->future = rp && icalparameter_get_range(rp) == ICAL_RANGE_THISANDFUTURE;
        o->comp = c->ovr[i];
        comp_span(c, c->ovr[i], &o->sp);
        x->nov++;
    }
    return 0;
}

static int excluded(const struct exp *x, struct icaltimetype L, int64_t s)
{
    for (size_t i = 0; i < x->nex; i++)
        if (x->ex[i] == s)
            return 1;
    if (x->nexday) {
        int64_t day = dav_ical_days_from_civil(L.year, L.month, L.day);
        for (size_t i = 0; i < x->nexday; i++)
            if (x->exday[i] == day)
                return 1;
    }
    for (size_t i = 0; i < x->nov; i++)
        if (x->ov[i].rid == s)
            return 1; /* the override stands for it */
    return 0;
}

static int emit(struct exp *x, const struct dav_ical_inst *in)
{
    x->emitted++;
    if (x->cb(in, x->ctx))
        x->stop = 1;
    return x->stop;
}

/* A master occurrence at wall clock L (or an RDATE period [ps, pe)). */
static int master_occurrence(struct exp *x, struct icaltimetype L, const int64_t *period)
{
    struct dav_ical_inst in;
    const struct ovr *fut = NULL;

    memset(&in, 0, sizeof(in));
    span_at(&x->msp, L, &in);
    if (excluded(x, L, in.s))
        return 0;
    in.rid = in.s;
    in.recurring = 1;
    in.comp = x->c->master;
    if (period) {
        in.e = period[1];
        in.e_incl = in.e == in.s;
    }
    for (size_t i = 0; i < x->nov; i++)
        if (x->ov[i].future && x->ov[i].rid < in.s && x->ov[i].sp.ok &&
            (!fut || x->ov[i].rid > fut->rid))
            fut = &x->ov[i];
    if (fut) { /* shifted like the THISANDFUTURE override, with its length */
        int64_t len = in.e - in.s;
        if (fut->sp.e != INT64_MAX)
            len = fut->sp.e - fut->sp.s;
        in.s += fut->sp.s - fut->rid;
        in.e = in.s + len;
        in.comp = fut->comp;
    }
    return emit(x, &in);
}

/* The RDATE properties of m, gathered first: the callbacks read the same component, and
 * libical keeps one property cursor per component. */
static icalproperty **gather(icalcomponent *m, icalproperty_kind k, size_t *n)
{
    icalproperty **v = NULL;
    size_t cnt = 0, i = 0;

    for (icalproperty *p = icalcomponent_get_first_property(m, k); p;
         p = icalcomponent_get_next_property(m, k))
        cnt++;
    *n = 0;
    if (!cnt || !(v = malloc(cnt * sizeof(*v))))
        return NULL;
    for (icalproperty *p = icalcomponent_get_first_property(m, k); p && i < cnt;
         p = icalcomponent_get_next_property(m, k))
        v[i++] = p;
    *n = i;
    return v;
}

static int add_rdates(struct exp *x, icalcomponent *m, int64_t until, int *more, int64_t *next)
{
    size_t np;
    icalproperty **ps = gather(m, ICAL_RDATE_PROPERTY, &np);

    for (size_t i = 0; i < np && !x->stop; i++) {
        icalproperty *p = ps[i];
        struct icaldatetimeperiodtype dp = icalproperty_get_rdate(p);
        struct icaltimetype t = icaltime_is_null_time(dp.time) ? dp.period.start : dp.time;
        icaltimezone *z;
        int64_t per[2], *pp = NULL;
        if (!dav_ical_time_valid(t))
            continue;
        z = icaltime_is_utc(t) ? NULL : dav_ical_zone_of(x->c, p);
        if (z != x->msp.zone && !t.is_date && !x->msp.is_date) /* bring it to the master zone */
            t = dav_ical_tz_from_unix(dav_ical_tz_to_unix(t, z), x->msp.zone);
        t.zone = NULL;
        per[0] = dav_ical_tz_to_unix(t, x->msp.zone);
        if (per[0] >= until || x->emitted >= x->max_inst) {
            if (!*more || per[0] < *next)
                *next = per[0];
            *more = 1;
            continue;
        }
        if (icaltime_is_null_time(dp.time)) {
            struct icaltimetype pe = dp.period.end;
            if (!icaltime_is_null_time(pe) && dav_ical_time_valid(pe))
                per[1] = dav_ical_tz_to_unix(pe, icaltime_is_utc(pe) ? NULL : z);
            else
                per[1] = per[0] + icaldurationtype_as_int(dp.period.duration);
            if (per[1] < per[0])
                per[1] = per[0];
            pp = per;
        }
        t.is_date = x->msp.is_date;
        if (master_occurrence(x, t, pp))
            break;
    }
    free(ps);
    return 0;
}

/* RRULE UNTIL as wall clock in the start's zone: UTC UNTIL converted (RFC 5545), a local
 * one taken as written (clients send it), a DATE against a DATE-TIME start as the end of
 * that day. */
static struct icaltimetype local_until(const struct exp *x, struct icaltimetype u)
{
    if (icaltime_is_null_time(u))
        return u;
    if (u.is_date && !x->msp.is_date) {
        u.is_date = 0;
        u.hour = 23;
        u.minute = 59;
        u.second = 59;
    } else if (!u.is_date && icaltime_is_utc(u) && !x->msp.is_date && x->msp.zone) {
        u = dav_ical_tz_from_unix(dav_ical_tz_to_unix(u, NULL), x->msp.zone);
    } else if (!u.is_date && x->msp.is_date) {
        if (icaltime_is_utc(u) && x->msp.zone)
            u = dav_ical_tz_from_unix(dav_ical_tz_to_unix(u, NULL), x->msp.zone);
        u.is_date = 1;
        u.hour = u.minute = u.second = 0;
    }
    u.zone = NULL;
    return u;
}

/* A rule stepping by a fixed wall-clock period (secondly to weekly) produces the same set
 * from any start moved by whole periods, so the iteration can begin near `skip_before`
 * instead of at a DTSTART decades back. Not with COUNT, which counts from DTSTART. */
static void fast_forward(struct icalrecurrencetype *r, struct icaltimetype *L, int64_t skip_before)
{
    int64_t unit, period, w0 = wall_secs(*L);

    if (skip_before == INT64_MIN || r->count > 0 || r->by_week_no[0] != ICAL_RECURRENCE_ARRAY_MAX ||
        r->by_year_day[0] != ICAL_RECURRENCE_ARRAY_MAX)
        return;
    switch (r->freq) {
    case ICAL_SECONDLY_RECURRENCE:
        unit = 1;
        break;
    case ICAL_MINUTELY_RECURRENCE:
        unit = 60;
        break;
    case ICAL_HOURLY_RECURRENCE:
        unit = 3600;
        break;
    case ICAL_DAILY_RECURRENCE:
        unit = 86400;
        break;
    case ICAL_WEEKLY_RECURRENCE:
        unit = 7 * 86400;
        break;
    default:
        return;
    }
    period = unit * (r->interval > 0 ? r->interval : 1);
    if (skip_before - w0 <= 2 * period)
        return;
    /* one period short, so the moved start (an occurrence or not) is still skipped */
    *L = wall_from(w0 + ((skip_before - w0) / period - 1) * period, L->is_date);
}

static void run_rule(struct exp *x, icalproperty *rr, int64_t until, int *more, int64_t *next)
{
    struct icalrecurrencetype r = icalproperty_get_rrule(rr);
    icalrecur_iterator *it;
    struct icaltimetype L = x->msp.L;
    size_t steps = 0;
    int64_t skip_before = x->from > INT64_MIN + 3660 * 86400LL ? x->from : INT64_MIN;

    r.until = local_until(x, r.until);
    L.zone = NULL;
    /* Occurrences whose wall clock is more than two days (any zone offset) plus their
     * length before `from` cannot reach it; they are stepped over without the zone
     * conversion. Not with THISANDFUTURE overrides, which may shift them forward. */
    for (size_t i = 0; i < x->nov; i++)
        if (x->ov[i].future)
            skip_before = INT64_MIN;
    if (skip_before != INT64_MIN) {
        int64_t len = x->msp.e - x->msp.s;
        skip_before =
            x->from - 2 * 86400 - (len > 0 && len < 3650 * 86400LL ? len : 3650 * 86400LL);
    }
    fast_forward(&r, &L, skip_before);
    it = icalrecur_iterator_new(r, L);
    if (!it)
        return;
    while (!x->stop) {
        struct icaltimetype t = icalrecur_iterator_next(it);
        int64_t s;
        if (icaltime_is_null_time(t))
            break;
        t.zone = NULL;
        if (skip_before != INT64_MIN && wall_secs(t) < skip_before && ++steps <= DAV_ICAL_MAX_STEPS)
            continue;
        s = dav_ical_tz_to_unix(t, x->msp.zone);
        if (s >= until || x->emitted >= x->max_inst || ++steps > DAV_ICAL_MAX_STEPS) {
            if (!*more || s < *next)
                *next = s;
            *more = 1;
            break;
        }
        master_occurrence(x, t, NULL);
    }
    icalrecur_iterator_free(it);
}

static void expand_master(struct exp *x, int64_t until, int *more, int64_t *next)
{
    icalcomponent *m = x->c->master;
    icalproperty *rr = icalcomponent_get_first_property(m, ICAL_RRULE_PROPERTY);
    int rdates = icalcomponent_get_first_property(m, ICAL_RDATE_PROPERTY) != NULL;
    struct dav_ical_inst in;

    if (!x->msp.ok)
        return;
    if (!x->msp.has_start || (!rr && !rdates)) {
        inst_of_span(&x->msp, m, &in);
        for (size_t i = 0; i < x->nov; i++)
            if (x->ov[i].rid == in.s && x->msp.has_start)
                return; /* overridden (odd for a single event, but honoured) */
        emit(x, &in);
        return;
    }
    if (rr)
        run_rule(x, rr, until, more, next);
    else if (x->msp.s < until)
        master_occurrence(x, x->msp.L, NULL); /* DTSTART is the first of the set */
    else {
        *more = 1;
        *next = x->msp.s;
    }
    if (rdates && !x->stop)
        add_rdates(x, m, until, more, next);
}

int dav_ical_instances(const struct dav_ical *c, int64_t from, int64_t until, size_t max_inst,
                       dav_ical_inst_cb cb, void *ctx, int *more, int64_t *next)
{
    struct exp x;
    int rc = -1;

    memset(&x, 0, sizeof(x));
    x.c = c;
    x.cb = cb;
    x.ctx = ctx;
    x.max_inst = max_inst;
    x.from = from;
    *more = 0;
    *next = INT64_MAX;
    if (load_overrides(&x) < 0)
        goto out;
    if (c->master) {
        comp_span(c, c->master, &x.msp);
        if (load_exdates(&x, c->master) < 0)
            goto out;
        expand_master(&x, until, more, next);
    }
    for (size_t i = 0; i < x.nov && !x.stop; i++) {
        struct dav_ical_inst in;
        if (!x.ov[i].sp.ok)
            continue;
        inst_of_span(&x.ov[i].sp, x.ov[i].comp, &in);
        in.recurring = 1;
        in.rid = x.ov[i].rid;
        emit(&x, &in);
    }
    rc = 0;
out:
    free(x.ov);
    free(x.ex);
    free(x.exday);
    return rc;
}

/* ---- the index ---- */

struct rangeacc {
    struct store_range *r;
    size_t n, cap;
    int oom;
};

static int add_range(const struct dav_ical_inst *in, void *ctx)
{
    struct rangeacc *a = ctx;
    struct store_range rg;

    /* The store matches start < r.end && r.start < end, and a zero-length range when
     * start <= r.start < end; inclusive edges widen by a second to keep the same answers. */
    rg.start = in->s;
    rg.end = in->e;
    if (in->s_incl && rg.start > INT64_MIN)
        rg.start--;
    if (in->e_incl && rg.end != rg.start && rg.end < INT64_MAX)
        rg.end++;
    if (in->e_incl && in->s_incl && in->s == in->e && rg.end < INT64_MAX)
        rg.end = in->e + 1;
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 16;
        struct store_range *x = realloc(a->r, nc * sizeof(*x));
        if (!x) {
            a->oom = 1;
            return 1;
        }
        a->r = x;
        a->cap = nc;
    }
    a->r[a->n++] = rg;
    return 0;
}

static int cmp_range(const void *a, const void *b)
{
    const struct store_range *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

int dav_ical_ranges(const struct dav_ical *c, int64_t horizon, struct store_range **r, size_t *n,
                    int64_t *complete_until)
{
    struct rangeacc a = {0};
    int more;
    int64_t next;

    *r = NULL;
    *n = 0;
    *complete_until = INT64_MAX;
    if (!c)
        return -1;
    /* every occurrence starting at or before the horizon */
    if (dav_ical_instances(c, INT64_MIN, horizon < INT64_MAX ? horizon + 1 : horizon,
                           DAV_ICAL_MAX_RANGES, add_range, &a, &more, &next) < 0 ||
        a.oom) {
        free(a.r);
        return -1;
    }
    if (more)
        *complete_until = next > INT64_MIN ? next - 1 : next;
    if (a.n > 1)
        qsort(a.r, a.n, sizeof(*a.r), cmp_range);
    *r = a.r;
    *n = a.n;
    return 0;
}
