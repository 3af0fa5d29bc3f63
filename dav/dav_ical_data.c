/*
 * dav_ical_data.c — calendar-data in REPORT and PROPFIND answers (RFC 4791 §9.6): the
 * <C:comp>/<C:prop> selection, <C:expand> (each occurrence in the range as its own
 * component, in UTC, with RECURRENCE-ID and no recurrence properties), <C:limit-
 * recurrence-set> (the master and the overrides that overlap) and <C:limit-freebusy-set>.
 * Output is written here rather than by libical so lines end in CRLF and fold at 75
 * octets without splitting a UTF-8 sequence.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dav/dav_ical_int.h"

#define SEL_MAX_NODES 512
#define SEL_MAX_DEPTH 6

struct propsel {
    char *name;
    int novalue;
};

struct sel {
    char *name;
    int allprop, allcomp;
    struct propsel *props;
    size_t nprops;
    struct sel *comps;
    size_t ncomps;
};

struct dav_ical_data {
    int has_sel;
    struct sel root;
    int expand, limit, fblimit;
    int64_t xs, xe, ls, le, fs, fe;
};

static int derr(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    return -1;
}

static int is_cal(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
           strcmp((const char *)n->ns->href, DAV_ICAL_NS) == 0 &&
           strcmp((const char *)n->name, name) == 0;
}

static char *attr(xmlNodePtr n, const char *name)
{
    xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
    char *s = v ? strdup((const char *)v) : NULL;
    xmlFree(v);
    return s;
}

static int parse_range(xmlNodePtr n, int64_t *s, int64_t *e, char *err, size_t errlen)
{
    char *a = attr(n, "start"), *b = attr(n, "end");
    int ok = a && b && dav_ical_parse_utc(a, s) == 0 && dav_ical_parse_utc(b, e) == 0 && *s < *e;
    free(a);
    free(b);
    return ok ? 0 : derr(err, errlen, "start and end must be UTC date-times, start before end");
}

static int parse_sel(xmlNodePtr n, struct sel *s, int depth, int *nodes, char *err, size_t errlen)
{
    if (++*nodes > SEL_MAX_NODES || depth > SEL_MAX_DEPTH)
        return derr(err, errlen, "comp selection too large");
    s->name = attr(n, "name");
    if (!s->name || !*s->name)
        return derr(err, errlen, "comp without name");
    for (xmlNodePtr k = n->children; k; k = k->next) {
        if (is_cal(k, "allprop"))
            s->allprop = 1;
        else if (is_cal(k, "allcomp"))
            s->allcomp = 1;
        else if (is_cal(k, "prop")) {
            struct propsel *x = realloc(s->props, (s->nprops + 1) * sizeof(*x));
            char *nv;
            if (!x || ++*nodes > SEL_MAX_NODES)
                return derr(err, errlen, x ? "comp selection too large" : "out of memory");
            s->props = x;
            x[s->nprops].name = attr(k, "name");
            nv = attr(k, "novalue");
            x[s->nprops].novalue = nv && strcmp(nv, "yes") == 0;
            free(nv);
            if (!x[s->nprops++].name)
                return derr(err, errlen, "prop without name");
        } else if (is_cal(k, "comp")) {
            struct sel *x = realloc(s->comps, (s->ncomps + 1) * sizeof(*x));
            if (!x)
                return derr(err, errlen, "out of memory");
            s->comps = x;
            memset(&x[s->ncomps], 0, sizeof(*x));
            if (parse_sel(k, &x[s->ncomps++], depth + 1, nodes, err, errlen) < 0)
                return -1;
        }
    }
    return 0;
}

static void free_sel(struct sel *s)
{
    for (size_t i = 0; i < s->nprops; i++)
        free(s->props[i].name);
    free(s->props);
    for (size_t i = 0; i < s->ncomps; i++)
        free_sel(&s->comps[i]);
    free(s->comps);
    free(s->name);
}

int dav_ical_data_compile(xmlNodePtr cd, struct dav_ical_data **out, char *err, size_t errlen)
{
    struct dav_ical_data *d = calloc(1, sizeof(*d));
    char *ct = NULL, *ver = NULL;
    int nodes = 0;

    *out = NULL;
    dav_ical_lib_init();
    if (!d)
        return derr(err, errlen, "out of memory");
    if (!cd)
        goto ok;
    ct = attr(cd, "content-type");
    ver = attr(cd, "version");
    if ((ct && strcasecmp(ct, "text/calendar") != 0) || (ver && strcmp(ver, "2.0") != 0)) {
        derr(err, errlen, "only text/calendar version 2.0 is supported");
        goto err;
    }
    for (xmlNodePtr k = cd->children; k; k = k->next) {
        if (is_cal(k, "comp")) {
            if (d->has_sel || parse_sel(k, &d->root, 0, &nodes, err, errlen) < 0) {
                if (d->has_sel)
                    derr(err, errlen, "two comp elements");
                goto err;
            }
            d->has_sel = 1;
            if (strcasecmp(d->root.name, "VCALENDAR") != 0) {
                derr(err, errlen, "the top comp must be VCALENDAR");
                goto err;
            }
        } else if (is_cal(k, "expand")) {
            if (d->expand || d->limit || parse_range(k, &d->xs, &d->xe, err, errlen) < 0)
                goto bad_range;
            d->expand = 1;
        } else if (is_cal(k, "limit-recurrence-set")) {
            if (d->expand || d->limit || parse_range(k, &d->ls, &d->le, err, errlen) < 0)
                goto bad_range;
            d->limit = 1;
        } else if (is_cal(k, "limit-freebusy-set")) {
            if (d->fblimit || parse_range(k, &d->fs, &d->fe, err, errlen) < 0)
                goto bad_range;
            d->fblimit = 1;
        }
    }
ok:
    free(ct);
    free(ver);
    *out = d;
    return 0;
bad_range:
    if (!err || !*err)
        derr(err, errlen, "expand and limit-recurrence-set are exclusive");
err:
    free(ct);
    free(ver);
    dav_ical_data_free(d);
    return -1;
}

void dav_ical_data_free(struct dav_ical_data *d)
{
    if (!d)
        return;
    /* Also a selection that failed halfway: root starts zeroed, so this is always safe. */
    free_sel(&d->root);
    free(d);
}

int dav_ical_data_needs_parse(const struct dav_ical_data *d)
{
    return d && (d->has_sel || d->expand || d->limit || d->fblimit);
}

/* ---- output ---- */

/* One logical line, folded at 75 octets on UTF-8 boundaries, CRLF-terminated. */
static void put_line(struct buf *b, const char *s, size_t n)
{
    size_t lim = 75;

    while (n > lim) {
        size_t cut = lim;
        while (cut > 1 && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--;
        buf_put(b, s, cut);
        buf_put(b, "\r\n ", 3);
        s += cut;
        n -= cut;
        lim = 74; /* the leading space counts */
    }
    buf_put(b, s, n);
    buf_put(b, "\r\n", 2);
}

/* libical's text of a property, unfolded, without its line end; with novalue, only the
 * name and parameters. */
static void put_prop(struct buf *b, icalproperty *p, int novalue)
{
    char *s = icalproperty_as_ical_string_r(p);
    size_t o = 0;
    int q = 0;

    if (!s)
        return;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '\r' && s[i + 1] == '\n' && (s[i + 2] == ' ' || s[i + 2] == '\t')) {
            i += 2;
            continue;
        }
        if (s[i] == '\n' && (s[i + 1] == ' ' || s[i + 1] == '\t')) {
            i += 1;
            continue;
        }
        s[o++] = s[i];
    }
    while (o && (s[o - 1] == '\r' || s[o - 1] == '\n'))
        o--;
    s[o] = 0;
    if (novalue)
        for (size_t i = 0; i < o; i++) {
            if (s[i] == '"')
                q = !q;
            else if (s[i] == ':' && !q) {
                o = i + 1;
                break;
            }
        }
    put_line(b, s, o);
    free(s);
}

static const struct propsel *find_prop(const struct sel *s, const char *name)
{
    for (size_t i = 0; i < s->nprops; i++)
        if (strcasecmp(s->props[i].name, name) == 0)
            return &s->props[i];
    return NULL;
}

static const struct sel *find_comp(const struct sel *s, const char *name)
{
    for (size_t i = 0; i < s->ncomps; i++)
        if (strcasecmp(s->comps[i].name, name) == 0)
            return &s->comps[i];
    return NULL;
}

/* A component's name; libical 3.0 has no getter for an X- component's, so it is read
 * back from libical's own text of it. */
static void comp_name(icalcomponent *c, char *out, size_t n)
{
    icalcomponent_kind k = icalcomponent_isa(c);
    char *s;
    size_t i = 0;

    snprintf(out, n, "%s", icalcomponent_kind_to_string(k));
    if (k != ICAL_X_COMPONENT || !(s = icalcomponent_as_ical_string_r(c)))
        return;
    if (strncmp(s, "BEGIN:", 6) == 0) {
        for (; i + 1 < n && s[6 + i] && s[6 + i] != '\r' && s[6 + i] != '\n'; i++)
            out[i] = s[6 + i];
        out[i] = 0;
    }
    free(s);
}

/* Writes a component, keeping what the selection asks for (NULL: everything). */
static void put_comp(struct buf *b, icalcomponent *c, const struct sel *s)
{
    char name[64], kname[64], line[96];

    comp_name(c, name, sizeof(name));
    snprintf(line, sizeof(line), "BEGIN:%s", name);
    put_line(b, line, strlen(line));
    for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_ANY_PROPERTY); p;
         p = icalcomponent_get_next_property(c, ICAL_ANY_PROPERTY)) {
        const struct propsel *ps = NULL;
        if (icalproperty_isa(p) == ICAL_XLICERROR_PROPERTY)
            continue;
        if (s && !s->allprop && !(ps = find_prop(s, icalproperty_get_property_name(p))))
            continue;
        put_prop(b, p, ps && ps->novalue);
    }
    for (icalcomponent *k = icalcomponent_get_first_component(c, ICAL_ANY_COMPONENT); k;
         k = icalcomponent_get_next_component(c, ICAL_ANY_COMPONENT)) {
        const struct sel *ks = NULL;
        comp_name(k, kname, sizeof(kname));
        if (s && !s->allcomp && !(ks = find_comp(s, kname)))
            continue;
        put_comp(b, k, ks);
    }
    snprintf(line, sizeof(line), "END:%s", name);
    put_line(b, line, strlen(line));
}

/* ---- expand ---- */

static struct icaltimetype utc_time(int64_t t, int is_date)
{
    struct icaltimetype r = dav_ical_tz_from_unix(t, NULL);
    if (is_date) {
        r.is_date = 1;
        r.hour = r.minute = r.second = 0;
    } else
        r.zone = icaltimezone_get_utc_timezone();
    return r;
}

static void remove_all(icalcomponent *c, icalproperty_kind k)
{
    icalproperty *p;
    while ((p = icalcomponent_get_first_property(c, k))) {
        icalcomponent_remove_property(c, p);
        icalproperty_free(p);
    }
}

/* Every DATE-TIME in c (and its alarms) that is not UTC rewritten in UTC, as §9.6.5
 * asks; floating times are UTC already in this server's reading of them. */
static void to_utc(const struct dav_ical *ic, icalcomponent *c)
{
    for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_ANY_PROPERTY); p;
         p = icalcomponent_get_next_property(c, ICAL_ANY_PROPERTY)) {
        icalvalue *v = icalproperty_get_value(p);
        int64_t t;
        if (!v || icalvalue_isa(v) != ICAL_DATETIME_VALUE ||
            icaltime_is_utc(icalvalue_get_datetime(v)) || dav_ical_prop_unix(ic, p, &t, NULL) < 0)
            continue;
        icalproperty_remove_parameter_by_kind(p, ICAL_TZID_PARAMETER);
        icalproperty_set_value(p, icalvalue_new_datetime(utc_time(t, 0)));
    }
    for (icalcomponent *k = icalcomponent_get_first_component(c, ICAL_ANY_COMPONENT); k;
         k = icalcomponent_get_next_component(c, ICAL_ANY_COMPONENT))
        to_utc(ic, k);
}

/* Puts back the text of x-name values a clone lost: libical's clone keeps an enumerated
 * property's value but not its x-name text (CLASS:X-PERSONAL, as eas_calendar.c stores
 * ActiveSync's Personal, or any client's STATUS:X-..., comes out as "CLASS:"). The clone
 * has the same properties and components in the same order as the original. */
static void repair_prop(icalproperty *p, icalproperty *q)
{
    icalvalue *v = icalproperty_get_value(p), *w = icalproperty_get_value(q), *nv;
    const char *a, *b;

    if (!v || !w || icalvalue_isa(v) == ICAL_TEXT_VALUE)
        return;
    b = icalvalue_as_ical_string(w);
    if (b && *b)
        return; /* the usual case: nothing lost */
    a = icalvalue_as_ical_string(v);
    if (a && *a && (nv = icalvalue_new_from_string(icalvalue_isa(v), a)))
        icalproperty_set_value(q, nv);
}

static void repair_clone(icalcomponent *orig, icalcomponent *copy)
{
    icalproperty *p = icalcomponent_get_first_property(orig, ICAL_ANY_PROPERTY);
    icalproperty *q = icalcomponent_get_first_property(copy, ICAL_ANY_PROPERTY);
    icalcomponent *k, *l;

    for (; p && q; p = icalcomponent_get_next_property(orig, ICAL_ANY_PROPERTY),
                   q = icalcomponent_get_next_property(copy, ICAL_ANY_PROPERTY))
        repair_prop(p, q);
    k = icalcomponent_get_first_component(orig, ICAL_ANY_COMPONENT);
    l = icalcomponent_get_first_component(copy, ICAL_ANY_COMPONENT);
    for (; k && l; k = icalcomponent_get_next_component(orig, ICAL_ANY_COMPONENT),
                   l = icalcomponent_get_next_component(copy, ICAL_ANY_COMPONENT))
        repair_clone(k, l);
}

static icalcomponent *clone_comp(icalcomponent *c)
{
    icalcomponent *x = icalcomponent_new_clone(c);

    if (x)
        repair_clone(c, x);
    return x;
}

static icalcomponent *instance_comp(const struct dav_ical *ic, const struct dav_ical_inst *in)
{
    icalcomponent *x = clone_comp(in->comp);

    if (!x)
        return NULL;
    remove_all(x, ICAL_RRULE_PROPERTY);
    remove_all(x, ICAL_RDATE_PROPERTY);
    remove_all(x, ICAL_EXDATE_PROPERTY);
    remove_all(x, ICAL_EXRULE_PROPERTY);
    /* An occurrence of the master, or one shifted by a THISANDFUTURE override, takes the
     * occurrence's times; an override's own occurrence has them already. */
    if (in->recurring && icalcomponent_get_first_property(x, ICAL_DTSTART_PROPERTY)) {
        int had_end = icalcomponent_get_first_property(x, ICAL_DTEND_PROPERTY) != NULL;
        int had_due = icalcomponent_get_first_property(x, ICAL_DUE_PROPERTY) != NULL;
        remove_all(x, ICAL_DTSTART_PROPERTY);
        remove_all(x, ICAL_DTEND_PROPERTY);
        remove_all(x, ICAL_DUE_PROPERTY);
        icalcomponent_add_property(x, icalproperty_new_dtstart(utc_time(in->s, in->is_date)));
        if (had_end)
            icalcomponent_add_property(x, icalproperty_new_dtend(utc_time(in->e, in->is_date)));
        if (had_due)
            icalcomponent_add_property(x, icalproperty_new_due(utc_time(in->e, in->is_date)));
    }
    to_utc(ic, x);
    if (in->recurring) {
        remove_all(x, ICAL_RECURRENCEID_PROPERTY);
        icalcomponent_add_property(x,
                                   icalproperty_new_recurrenceid(utc_time(in->rid, in->is_date)));
    }
    return x;
}

struct collect {
    struct dav_ical_inst *v;
    size_t n, cap;
    int64_t s, e;
    int oom;
};

static int collect_cb(const struct dav_ical_inst *in, void *ctx)
{
    struct collect *co = ctx;
    if (!dav_ical_inst_overlaps(in, co->s, co->e))
        return 0;
    if (co->n == co->cap) {
        size_t nc = co->cap ? co->cap * 2 : 16;
        struct dav_ical_inst *x = realloc(co->v, nc * sizeof(*x));
        if (!x) {
            co->oom = 1;
            return 1;
        }
        co->v = x;
        co->cap = nc;
    }
    co->v[co->n++] = *in;
    return co->n >= DAV_ICAL_MAX_RANGES;
}

static int cmp_inst(const void *a, const void *b)
{
    const struct dav_ical_inst *x = a, *y = b;
    if (x->s != y->s)
        return x->s < y->s ? -1 : 1;
    return (x->rid > y->rid) - (x->rid < y->rid);
}

static int collect(const struct dav_ical *c, int64_t s, int64_t e, struct collect *co)
{
    int more;
    int64_t next;

    memset(co, 0, sizeof(*co));
    co->s = s;
    co->e = e;
    if (dav_ical_instances(c, s, e, SIZE_MAX, collect_cb, co, &more, &next) < 0 || co->oom)
        return -1;
    if (co->n > 1)
        qsort(co->v, co->n, sizeof(*co->v), cmp_inst);
    return 0;
}

static void copy_props(icalcomponent *to, icalcomponent *from)
{
    for (icalproperty *p = icalcomponent_get_first_property(from, ICAL_ANY_PROPERTY); p;
         p = icalcomponent_get_next_property(from, ICAL_ANY_PROPERTY)) {
        icalproperty *q = icalproperty_new_clone(p);

        repair_prop(p, q);
        icalcomponent_add_property(to, q);
    }
}

static icalcomponent *build_expand(const struct dav_ical_data *d, const struct dav_ical *c)
{
    struct collect co;
    icalcomponent *out;

    if (collect(c, d->xs, d->xe, &co) < 0) {
        free(co.v);
        return NULL;
    }
    out = icalcomponent_new(ICAL_VCALENDAR_COMPONENT);
    copy_props(out, c->root);
    for (size_t i = 0; i < co.n; i++) {
        icalcomponent *x = instance_comp(c, &co.v[i]);
        if (x)
            icalcomponent_add_component(out, x);
    }
    free(co.v);
    return out;
}

/* The master, and the overrides with an occurrence in the range. */
static icalcomponent *build_limit(const struct dav_ical_data *d, const struct dav_ical *c)
{
    struct collect co;
    icalcomponent *out;

    if (collect(c, d->ls, d->le, &co) < 0) {
        free(co.v);
        return NULL;
    }
    out = icalcomponent_new(ICAL_VCALENDAR_COMPONENT);
    copy_props(out, c->root);
    for (icalcomponent *k = icalcomponent_get_first_component(c->root, ICAL_ANY_COMPONENT); k;
         k = icalcomponent_get_next_component(c->root, ICAL_ANY_COMPONENT)) {
        int keep = 1;
        if (icalcomponent_isa(k) == c->ikind && k != c->master) {
            keep = 0;
            for (size_t i = 0; i < co.n && !keep; i++)
                keep = co.v[i].comp == k;
        }
        if (keep)
            icalcomponent_add_component(out, clone_comp(k));
    }
    free(co.v);
    return out;
}

/* limit-freebusy-set: FREEBUSY periods outside the range are dropped. */
static void limit_fb(const struct dav_ical_data *d, icalcomponent *cal)
{
    for (icalcomponent *k = icalcomponent_get_first_component(cal, ICAL_VFREEBUSY_COMPONENT); k;
         k = icalcomponent_get_next_component(cal, ICAL_VFREEBUSY_COMPONENT)) {
        icalproperty *p = icalcomponent_get_first_property(k, ICAL_FREEBUSY_PROPERTY);
        while (p) {
            icalproperty *nx = icalcomponent_get_next_property(k, ICAL_FREEBUSY_PROPERTY);
            struct icalperiodtype per = icalproperty_get_freebusy(p);
            int64_t s = dav_ical_tz_to_unix(per.start, NULL), e;
            if (!icaltime_is_null_time(per.end))
                e = dav_ical_tz_to_unix(per.end, NULL);
            else
                e = s + icaldurationtype_as_int(per.duration);
            if (!dav_ical_time_valid(per.start) || !(s < d->fe && e > d->fs)) {
                icalcomponent_remove_property(k, p);
                icalproperty_free(p);
            }
            p = nx;
        }
    }
}

char *dav_ical_data_render(const struct dav_ical_data *d, const struct dav_ical *c, size_t *len)
{
    struct buf b = {0};
    icalcomponent *tree = NULL, *owned = NULL;

    if (len)
        *len = 0;
    if (!c)
        return NULL;
    if (d && d->expand)
        tree = owned = build_expand(d, c);
    else if (d && d->limit)
        tree = owned = build_limit(d, c);
    else
        tree = c->root;
    if (!tree)
        return NULL;
    if (d && d->fblimit) {
        if (!owned)
            tree = owned = clone_comp(c->root);
        limit_fb(d, tree);
    }
    put_comp(&b, tree, d && d->has_sel ? &d->root : NULL);
    if (owned)
        icalcomponent_free(owned);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}
