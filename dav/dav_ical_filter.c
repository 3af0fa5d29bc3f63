/*
 * dav_ical_filter.c — calendar-query filters (RFC 4791 §9.7): compiling <C:filter> once
 * per REPORT into a tree of comp-/prop-/param-filters, and testing a parsed resource
 * against it. Time ranges on events, tasks and journals test every occurrence of the
 * recurrence set (§9.9); a time range on a VALARM tests its trigger times, repeats
 * included, for each occurrence of the component that holds it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dav/dav_ical_int.h"

#define FILTER_MAX_DEPTH 8
#define FILTER_MAX_NODES 512
#define FILTER_MAX_TEXT  4096
#define ALARM_SLACK      (366 * 86400LL) /* how far an alarm may sit from its occurrence */

struct trange {
    int has;
    int64_t start, end;
};

struct textm {
    char *text;
    size_t len;
    int negate, octet;
};

struct paramf {
    char *name;
    int not_defined;
    struct textm *tm;
};

struct propf {
    char *name;
    int not_defined;
    struct trange tr;
    struct textm *tm;
    struct paramf *pf;
    size_t npf;
};

struct compf {
    char *name;
    icalcomponent_kind kind;
    int not_defined;
    struct trange tr;
    int deep_tr; /* a time range somewhere below */
    struct propf *pf;
    size_t npf;
    struct compf *cf;
    size_t ncf;
};

struct dav_ical_filter {
    struct compf root;
};

struct cctx {
    const char **precond;
    char *err;
    size_t errlen;
    int nodes;
};

static int cfail(struct cctx *cc, const char *precond, const char *msg)
{
    *cc->precond = precond;
    if (cc->err && cc->errlen)
        snprintf(cc->err, cc->errlen, "%s", msg);
    return -1;
}

static int is_cal(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
           strcmp((const char *)n->ns->href, DAV_ICAL_NS) == 0 &&
           (!name || strcmp((const char *)n->name, name) == 0);
}

static char *attr(xmlNodePtr n, const char *name)
{
    xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
    char *s = v ? strdup((const char *)v) : NULL;
    xmlFree(v);
    return s;
}

static int parse_trange(xmlNodePtr n, struct trange *tr, struct cctx *cc)
{
    char *s = attr(n, "start"), *e = attr(n, "end");
    int rc = -1;

    tr->has = 1;
    tr->start = INT64_MIN;
    tr->end = INT64_MAX;
    if (!s && !e) {
        cfail(cc, "valid-filter", "time-range needs start or end");
        goto out;
    }
    if ((s && dav_ical_parse_utc(s, &tr->start) < 0) ||
        (e && dav_ical_parse_utc(e, &tr->end) < 0)) {
        cfail(cc, "valid-filter", "time-range start/end must be UTC date-times");
        goto out;
    }
    if (tr->end <= tr->start) {
        cfail(cc, "valid-filter", "time-range end is not after start");
        goto out;
    }
    rc = 0;
out:
    free(s);
    free(e);
    return rc;
}

static int parse_textm(xmlNodePtr n, struct textm **out, struct cctx *cc)
{
    char *col = attr(n, "collation"), *neg = attr(n, "negate-condition");
    xmlChar *txt = xmlNodeGetContent(n);
    struct textm *tm = calloc(1, sizeof(*tm));
    int rc = -1;

    if (!tm)
        goto out;
    if (col && strcmp(col, "i;ascii-casemap") != 0 && strcmp(col, "i;octet") != 0) {
        cfail(cc, "supported-collation", "unsupported collation");
        goto out;
    }
    tm->octet = col && strcmp(col, "i;octet") == 0;
    if (neg && strcmp(neg, "yes") != 0 && strcmp(neg, "no") != 0) {
        cfail(cc, "valid-filter", "negate-condition must be yes or no");
        goto out;
    }
    tm->negate = neg && strcmp(neg, "yes") == 0;
    tm->text = strdup(txt ? (const char *)txt : "");
    if (!tm->text)
        goto out;
    tm->len = strlen(tm->text);
    if (tm->len > FILTER_MAX_TEXT) {
        cfail(cc, "valid-filter", "text-match too long");
        goto out;
    }
    *out = tm;
    tm = NULL;
    rc = 0;
out:
    if (tm) {
        free(tm->text);
        free(tm);
    }
    xmlFree(txt);
    free(col);
    free(neg);
    return rc;
}

static int count_node(struct cctx *cc)
{
    if (++cc->nodes > FILTER_MAX_NODES)
        return cfail(cc, "valid-filter", "filter too large");
    return 0;
}

static int parse_paramf(xmlNodePtr n, struct paramf *pf, struct cctx *cc)
{
    if (count_node(cc) < 0)
        return -1;
    pf->name = attr(n, "name");
    if (!pf->name || !*pf->name)
        return cfail(cc, "valid-filter", "param-filter without name");
    for (xmlNodePtr k = n->children; k; k = k->next) {
        if (is_cal(k, "is-not-defined"))
            pf->not_defined = 1;
        else if (is_cal(k, "text-match")) {
            if (pf->tm)
                return cfail(cc, "valid-filter", "two text-match in a param-filter");
            if (parse_textm(k, &pf->tm, cc) < 0)
                return -1;
        } else if (is_cal(k, NULL))
            return cfail(cc, "valid-filter", "unexpected element in param-filter");
    }
    if (pf->not_defined && pf->tm)
        return cfail(cc, "valid-filter", "is-not-defined with text-match");
    return 0;
}

static int parse_propf(xmlNodePtr n, struct propf *pf, struct cctx *cc)
{
    if (count_node(cc) < 0)
        return -1;
    pf->name = attr(n, "name");
    if (!pf->name || !*pf->name)
        return cfail(cc, "valid-filter", "prop-filter without name");
    for (xmlNodePtr k = n->children; k; k = k->next) {
        if (is_cal(k, "is-not-defined"))
            pf->not_defined = 1;
        else if (is_cal(k, "time-range")) {
            if (pf->tr.has || pf->tm)
                return cfail(cc, "valid-filter", "two tests in a prop-filter");
            if (parse_trange(k, &pf->tr, cc) < 0)
                return -1;
        } else if (is_cal(k, "text-match")) {
            if (pf->tm || pf->tr.has)
                return cfail(cc, "valid-filter", "two tests in a prop-filter");
            if (parse_textm(k, &pf->tm, cc) < 0)
                return -1;
        } else if (is_cal(k, "param-filter")) {
            struct paramf *x = realloc(pf->pf, (pf->npf + 1) * sizeof(*x));
            if (!x)
                return cfail(cc, "valid-filter", "out of memory");
            pf->pf = x;
            memset(&x[pf->npf], 0, sizeof(*x));
            if (parse_paramf(k, &x[pf->npf++], cc) < 0)
                return -1;
        } else if (is_cal(k, NULL))
            return cfail(cc, "valid-filter", "unexpected element in prop-filter");
    }
    if (pf->not_defined && (pf->tm || pf->tr.has || pf->npf))
        return cfail(cc, "valid-filter", "is-not-defined with other tests");
    return 0;
}

static icalcomponent_kind comp_kind(const char *name)
{
    static const char *const ok[] = {"VCALENDAR", "VEVENT",    "VTODO",    "VJOURNAL", "VFREEBUSY",
                                     "VALARM",    "VTIMEZONE", "STANDARD", "DAYLIGHT"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcasecmp(name, ok[i]) == 0)
            return icalcomponent_string_to_kind(ok[i]);
    return ICAL_NO_COMPONENT;
}

static int parse_compf(xmlNodePtr n, struct compf *cf, int depth, struct cctx *cc)
{
    if (count_node(cc) < 0)
        return -1;
    if (depth > FILTER_MAX_DEPTH)
        return cfail(cc, "valid-filter", "filter nested too deep");
    cf->name = attr(n, "name");
    if (!cf->name || !*cf->name)
        return cfail(cc, "valid-filter", "comp-filter without name");
    cf->kind = comp_kind(cf->name);
    if (cf->kind == ICAL_NO_COMPONENT)
        return cfail(cc, "supported-filter", "unsupported component in comp-filter");
    for (xmlNodePtr k = n->children; k; k = k->next) {
        if (is_cal(k, "is-not-defined"))
            cf->not_defined = 1;
        else if (is_cal(k, "time-range")) {
            if (cf->tr.has)
                return cfail(cc, "valid-filter", "two time-range in a comp-filter");
            if (parse_trange(k, &cf->tr, cc) < 0)
                return -1;
        } else if (is_cal(k, "prop-filter")) {
            struct propf *x = realloc(cf->pf, (cf->npf + 1) * sizeof(*x));
            if (!x)
                return cfail(cc, "valid-filter", "out of memory");
            cf->pf = x;
            memset(&x[cf->npf], 0, sizeof(*x));
            if (parse_propf(k, &x[cf->npf++], cc) < 0)
                return -1;
        } else if (is_cal(k, "comp-filter")) {
            struct compf *x = realloc(cf->cf, (cf->ncf + 1) * sizeof(*x));
            if (!x)
                return cfail(cc, "valid-filter", "out of memory");
            cf->cf = x;
            memset(&x[cf->ncf], 0, sizeof(*x));
            if (parse_compf(k, &x[cf->ncf++], depth + 1, cc) < 0)
                return -1;
            if (x[cf->ncf - 1].tr.has || x[cf->ncf - 1].deep_tr)
                cf->deep_tr = 1;
        } else if (is_cal(k, NULL))
            return cfail(cc, "valid-filter", "unexpected element in comp-filter");
    }
    if (cf->not_defined && (cf->tr.has || cf->npf || cf->ncf))
        return cfail(cc, "valid-filter", "is-not-defined with other tests");
    if (cf->tr.has && cf->kind != ICAL_VEVENT_COMPONENT && cf->kind != ICAL_VTODO_COMPONENT &&
        cf->kind != ICAL_VJOURNAL_COMPONENT && cf->kind != ICAL_VFREEBUSY_COMPONENT &&
        cf->kind != ICAL_VALARM_COMPONENT)
        return cfail(cc, "valid-filter", "time-range on a component that has no time");
    return 0;
}

static void free_textm(struct textm *tm)
{
    if (tm) {
        free(tm->text);
        free(tm);
    }
}

static void free_compf(struct compf *cf)
{
    for (size_t i = 0; i < cf->npf; i++) {
        struct propf *p = &cf->pf[i];
        for (size_t j = 0; j < p->npf; j++) {
            free(p->pf[j].name);
            free_textm(p->pf[j].tm);
        }
        free(p->pf);
        free(p->name);
        free_textm(p->tm);
    }
    free(cf->pf);
    for (size_t i = 0; i < cf->ncf; i++)
        free_compf(&cf->cf[i]);
    free(cf->cf);
    free(cf->name);
}

int dav_ical_filter_compile(xmlNodePtr filter, struct dav_ical_filter **out, const char **precond,
                            char *err, size_t errlen)
{
    const char *dummy;
    struct cctx cc = {precond ? precond : &dummy, err, errlen, 0};
    struct dav_ical_filter *f;
    xmlNodePtr top = NULL;

    *out = NULL;
    dav_ical_lib_init();
    if (!filter || !is_cal(filter, "filter"))
        return cfail(&cc, "valid-filter", "not a CALDAV:filter element");
    for (xmlNodePtr k = filter->children; k; k = k->next) {
        if (!is_cal(k, NULL))
            continue;
        if (!is_cal(k, "comp-filter") || top)
            return cfail(&cc, "valid-filter", "filter must hold one comp-filter");
        top = k;
    }
    if (!top)
        return cfail(&cc, "valid-filter", "filter must hold one comp-filter");
    f = calloc(1, sizeof(*f));
    if (!f)
        return cfail(&cc, "valid-filter", "out of memory");
    if (parse_compf(top, &f->root, 0, &cc) < 0)
        goto err;
    if (f->root.kind != ICAL_VCALENDAR_COMPONENT) {
        cfail(&cc, "valid-filter", "the top comp-filter must name VCALENDAR");
        goto err;
    }
    if (f->root.tr.has) {
        cfail(&cc, "valid-filter", "time-range on VCALENDAR");
        goto err;
    }
    *out = f;
    return 0;
err:
    dav_ical_filter_free(f);
    return -1;
}

void dav_ical_filter_free(struct dav_ical_filter *f)
{
    if (!f)
        return;
    free_compf(&f->root);
    free(f);
}

int dav_ical_filter_window(const struct dav_ical_filter *f, int64_t *start, int64_t *end)
{
    if (!f || f->root.not_defined)
        return 0;
    for (size_t i = 0; i < f->root.ncf; i++) {
        const struct compf *cf = &f->root.cf[i];
        if (cf->tr.has && !cf->not_defined &&
            (cf->kind == ICAL_VEVENT_COMPONENT || cf->kind == ICAL_VTODO_COMPONENT ||
             cf->kind == ICAL_VJOURNAL_COMPONENT)) {
            *start = cf->tr.start;
            *end = cf->tr.end;
            return 1;
        }
    }
    return 0;
}

int dav_ical_filter_simple(const struct dav_ical_filter *f, unsigned *kind)
{
    const struct compf *cf;

    if (!f || f->root.not_defined || f->root.tr.has || f->root.npf || f->root.ncf != 1)
        return 0;
    cf = &f->root.cf[0];
    if (!cf->tr.has || cf->not_defined || cf->npf || cf->ncf)
        return 0;
    /* a free-busy component has no occurrences to index */
    *kind = cf->kind == ICAL_VFREEBUSY_COMPONENT ? 0 : dav_ical_kind_bit(cf->kind);
    return *kind != 0;
}

/* ---- matching ---- */

static int ascii_lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

static int text_contains(const struct textm *tm, const char *s)
{
    size_t n = strlen(s);
    if (tm->len == 0)
        return 1;
    for (size_t i = 0; i + tm->len <= n; i++) {
        size_t j = 0;
        if (tm->octet)
            while (j < tm->len && s[i + j] == tm->text[j])
                j++;
        else
            while (j < tm->len &&
                   ascii_lower((unsigned char)s[i + j]) == ascii_lower((unsigned char)tm->text[j]))
                j++;
        if (j == tm->len)
            return 1;
    }
    return 0;
}

static int text_match(const struct textm *tm, const char *s)
{
    return text_contains(tm, s ? s : "") != tm->negate;
}

static int param_match(const struct paramf *pf, icalproperty *p)
{
    for (icalparameter *par = icalproperty_get_first_parameter(p, ICAL_ANY_PARAMETER); par;
         par = icalproperty_get_next_parameter(p, ICAL_ANY_PARAMETER)) {
        char *str = icalparameter_as_ical_string_r(par);
        char *eq = str ? strchr(str, '=') : NULL;
        int found = 0, ok = 0;
        if (eq) {
            *eq = 0;
            found = strcasecmp(str, pf->name) == 0;
            if (found && pf->tm) {
                char *v = eq + 1;
                size_t vl = strlen(v);
                if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
                    v[vl - 1] = 0;
                    v++;
                }
                ok = text_match(pf->tm, v);
            } else
                ok = found;
        }
        free(str);
        if (found)
            return pf->not_defined ? 0 : ok;
    }
    return pf->not_defined;
}

static const char *prop_text(icalproperty *p, char **owned)
{
    icalvalue *v = icalproperty_get_value(p);

    *owned = NULL;
    if (v && icalvalue_isa(v) == ICAL_TEXT_VALUE)
        return icalvalue_get_text(v);
    *owned = icalproperty_get_value_as_string_r(p);
    return *owned;
}

static int prop_one(const struct dav_ical *c, const struct propf *pf, icalproperty *p)
{
    if (pf->tr.has) {
        int64_t t;
        int is_date = 0;
        struct dav_ical_inst in;
        if (dav_ical_prop_unix(c, p, &t, &is_date) < 0)
            return 0;
        memset(&in, 0, sizeof(in));
        in.s = t;
        in.e = is_date ? t + 86400 : t;
        in.e_incl = !is_date;
        if (!dav_ical_inst_overlaps(&in, pf->tr.start, pf->tr.end))
            return 0;
    }
    if (pf->tm) {
        char *owned;
        const char *s = prop_text(p, &owned);
        int ok = text_match(pf->tm, s);
        free(owned);
        if (!ok)
            return 0;
    }
    for (size_t i = 0; i < pf->npf; i++)
        if (!param_match(&pf->pf[i], p))
            return 0;
    return 1;
}

static int prop_match(const struct dav_ical *c, const struct propf *pf, icalcomponent *comp)
{
    int seen = 0;

    for (icalproperty *p = icalcomponent_get_first_property(comp, ICAL_ANY_PROPERTY); p;
         p = icalcomponent_get_next_property(comp, ICAL_ANY_PROPERTY)) {
        const char *name = icalproperty_get_property_name(p);
        if (!name || strcasecmp(name, pf->name) != 0)
            continue;
        seen = 1;
        if (pf->not_defined)
            return 0;
        if (prop_one(c, pf, p))
            return 1;
    }
    return pf->not_defined && !seen;
}

/* The trigger times of an alarm for one occurrence: 1 when one falls in [start, end). */
static int alarm_in_range(const struct dav_ical *c, icalcomponent *alarm,
                          const struct dav_ical_inst *in, const struct trange *tr)
{
    icalproperty *tp = icalcomponent_get_first_property(alarm, ICAL_TRIGGER_PROPERTY);
    icalproperty *rp = icalcomponent_get_first_property(alarm, ICAL_REPEAT_PROPERTY);
    icalproperty *dp = icalcomponent_get_first_property(alarm, ICAL_DURATION_PROPERTY);
    struct icaltriggertype trg;
    int64_t t, step = 0;
    int repeat = 0;

    if (!tp)
        return 0;
    trg = icalproperty_get_trigger(tp);
    if (!icaltime_is_null_time(trg.time)) {
        if (!dav_ical_time_valid(trg.time))
            return 0;
        t = dav_ical_tz_to_unix(trg.time,
                                icaltime_is_utc(trg.time) ? NULL : dav_ical_zone_of(c, tp));
    } else {
        icalparameter *rel = icalproperty_get_first_parameter(tp, ICAL_RELATED_PARAMETER);
        int at_end = rel && icalparameter_get_related(rel) == ICAL_RELATED_END;
        if (!in)
            return 0;
        t = (at_end ? in->e : in->s) + icaldurationtype_as_int(trg.duration);
    }
    if (rp && dp) {
        repeat = icalproperty_get_repeat(rp);
        step = icaldurationtype_as_int(icalproperty_get_duration(dp));
        if (repeat < 0 || repeat > 1000 || step <= 0)
            repeat = 0;
    }
    for (int i = 0; i <= repeat; i++, t += step)
        if (tr->start <= t && t < tr->end)
            return 1;
    return 0;
}

static int comp_match(const struct dav_ical *c, const struct compf *cf, icalcomponent *parent,
                      const struct dav_ical_inst *in);

/* One component (with the occurrence it stands for, if any) against a comp-filter's
 * tests other than its own presence. */
static int comp_tests(const struct dav_ical *c, const struct compf *cf, icalcomponent *comp,
                      const struct dav_ical_inst *in)
{
    if (cf->tr.has && cf->kind == ICAL_VALARM_COMPONENT && !alarm_in_range(c, comp, in, &cf->tr))
        return 0;
    for (size_t i = 0; i < cf->npf; i++)
        if (!prop_match(c, &cf->pf[i], comp))
            return 0;
    for (size_t i = 0; i < cf->ncf; i++)
        if (!comp_match(c, &cf->cf[i], comp, in))
            return 0;
    return 1;
}

struct instmatch {
    const struct dav_ical *c;
    const struct compf *cf;
    int matched;
};

static int inst_cb(const struct dav_ical_inst *in, void *ctx)
{
    struct instmatch *m = ctx;
    if (m->cf->tr.has && !dav_ical_inst_overlaps(in, m->cf->tr.start, m->cf->tr.end))
        return 0;
    if (comp_tests(m->c, m->cf, in->comp, in))
        m->matched = 1;
    return m->matched;
}

/* A comp-filter on the resource's own component type with a time range (on it or below):
 * test each occurrence. */
static int occurrences_match(const struct dav_ical *c, const struct compf *cf)
{
    struct instmatch m = {c, cf, 0};
    int64_t from = INT64_MIN, until = INT64_MAX, next;
    int more;

    if (cf->tr.has) {
        from = cf->tr.start;
        until = cf->tr.end;
    } else {
        /* alarm ranges: occurrences up to a year around them can ring in them */
        int any = 0;
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (size_t i = 0; i < cf->ncf; i++) {
            const struct trange *tr = &cf->cf[i].tr;
            if (!tr->has)
                continue;
            any = 1;
            lo = tr->start < lo ? tr->start : lo;
            hi = tr->end > hi ? tr->end : hi;
        }
        if (any) {
            from = lo > INT64_MIN + ALARM_SLACK ? lo - ALARM_SLACK : INT64_MIN;
            until = hi < INT64_MAX - ALARM_SLACK ? hi + ALARM_SLACK : INT64_MAX;
        }
    }
    if (dav_ical_instances(c, from, until, SIZE_MAX, inst_cb, &m, &more, &next) < 0)
        return 0;
    /* The expansion gave up on its step budget before the range's end (a rule from
     * centuries ago, or a sparse one): answer yes rather than hide the resource. */
    if (!m.matched && more && next < until)
        return 1;
    return m.matched;
}

static int comp_match(const struct dav_ical *c, const struct compf *cf, icalcomponent *parent,
                      const struct dav_ical_inst *in)
{
    int seen = 0;

    if (!cf->not_defined && parent == c->root && cf->kind == c->ikind &&
        (cf->tr.has || cf->deep_tr))
        return occurrences_match(c, cf);
    for (icalcomponent *s = icalcomponent_get_first_component(parent, cf->kind); s;
         s = icalcomponent_get_next_component(parent, cf->kind)) {
        seen = 1;
        if (cf->not_defined)
            return 0;
        if (!cf->tr.has || cf->kind == ICAL_VALARM_COMPONENT) {
            if (comp_tests(c, cf, s, in))
                return 1;
        }
    }
    return cf->not_defined && !seen;
}

int dav_ical_filter_match(const struct dav_ical_filter *f, const struct dav_ical *c)
{
    if (!f || !c)
        return 0;
    if (f->root.not_defined)
        return 0; /* every resource is a VCALENDAR */
    return comp_tests(c, &f->root, c->root, NULL);
}
