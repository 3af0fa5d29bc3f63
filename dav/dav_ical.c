/*
 * dav_ical.c — parsing and validating a CalDAV calendar object resource (RFC 4791 §4.1):
 * a bounded pre-scan of the bytes, libical's parser, then the resource rules (one
 * VCALENDAR, no METHOD, one component type, one UID, at most one master, distinct
 * RECURRENCE-IDs) and the checks that keep later expansion safe (every TZID resolvable,
 * real dates, recurrence rules that cannot starve the iterator).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dav/dav_ical_int.h"

#define PRE_DATA "valid-calendar-data"
#define PRE_OBJ  "valid-calendar-object-resource"

struct perr {
    const char **precond;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 3, 4))) static int fail(struct perr *pe, const char *precond,
                                                      const char *fmt, ...)
{
    va_list ap;

    *pe->precond = precond;
    if (pe->err && pe->errlen) {
        va_start(ap, fmt);
        vsnprintf(pe->err, pe->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- pre-scan: structure and bounds before libical sees the bytes ---- */

struct scan {
    char stack[DAV_ICAL_MAX_DEPTH][32];
    int depth;
    size_t lines, comps;
    int done;    /* the VCALENDAR has ended */
    int started; /* BEGIN:VCALENDAR seen */
};

/* The first bytes of a logical (unfolded) line, enough to read BEGIN/END and a name. */
struct head {
    char buf[96];
    size_t len;
};

static int name_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-';
}

static int scan_line(struct scan *sc, const struct head *h, struct perr *pe)
{
    size_t n = 0;
    const char *s = h->buf;
    int begin, end;
    char name[32];
    size_t nl = 0;

    if (h->len == 0)
        return 0; /* blank lines are tolerated (some clients end with one) */
    if (sc->done)
        return strncasecmp(s, "BEGIN:VCALENDAR", 15) == 0
                   ? fail(pe, PRE_OBJ, "more than one VCALENDAR")
                   : fail(pe, PRE_DATA, "data after END:VCALENDAR");
    while (n < h->len && name_char(s[n]))
        n++;
    if (n == 0 || n >= h->len || (s[n] != ':' && s[n] != ';'))
        return fail(pe, PRE_DATA, "line %zu is not a content line", sc->lines);
    if (++sc->lines > DAV_ICAL_MAX_LINES)
        return fail(pe, PRE_DATA, "more than %d content lines", DAV_ICAL_MAX_LINES);
    begin = n == 5 && strncasecmp(s, "BEGIN", 5) == 0;
    end = n == 3 && strncasecmp(s, "END", 3) == 0;
    if (!sc->started && !begin)
        return fail(pe, PRE_DATA, "does not start with BEGIN:VCALENDAR");
    if (!begin && !end)
        return 0;
    for (size_t i = n + 1; i < h->len && s[i] != ' ' && s[i] != '\t'; i++) {
        if (nl + 1 >= sizeof(name) || !name_char(s[i]))
            return fail(pe, PRE_DATA, "bad component name");
        name[nl++] = s[i];
    }
    name[nl] = 0;
    if (nl == 0)
        return fail(pe, PRE_DATA, "empty component name");
    if (begin) {
        if (!sc->started && strcasecmp(name, "VCALENDAR") != 0)
            return fail(pe, PRE_DATA, "does not start with BEGIN:VCALENDAR");
        if (sc->started && strcasecmp(name, "VCALENDAR") == 0)
            return fail(pe, PRE_OBJ, "nested VCALENDAR");
        sc->started = 1;
        if (sc->depth >= DAV_ICAL_MAX_DEPTH)
            return fail(pe, PRE_DATA, "components nested deeper than %d", DAV_ICAL_MAX_DEPTH);
        if (++sc->comps > DAV_ICAL_MAX_COMPONENTS)
            return fail(pe, PRE_OBJ, "more than %d components", DAV_ICAL_MAX_COMPONENTS);
        memcpy(sc->stack[sc->depth++], name, nl + 1);
        return 0;
    }
    if (sc->depth == 0 || strcasecmp(sc->stack[sc->depth - 1], name) != 0)
        return fail(pe, PRE_DATA, "END:%s does not close the open component", name);
    if (--sc->depth == 0)
        sc->done = 1;
    return 0;
}

static int prescan(const char *body, size_t len, struct perr *pe)
{
    struct scan sc = {0};
    struct head h = {.len = 0};
    size_t i = 0;

    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    if (memchr(body, 0, len))
        return fail(pe, PRE_DATA, "NUL byte in calendar data");
    while (i < len) {
        const char *nlp = memchr(body + i, '\n', len - i);
        size_t e = nlp ? (size_t)(nlp - body) : len;
        size_t l = e;
        if (l > i && body[l - 1] == '\r')
            l--;
        if (l > i && (body[i] == ' ' || body[i] == '\t')) {
            /* continuation: only the head of the logical line matters */
            for (size_t k = i + 1; k < l && h.len + 1 < sizeof(h.buf); k++)
                h.buf[h.len++] = body[k];
        } else {
            if (scan_line(&sc, &h, pe) < 0)
                return -1;
            h.len = 0;
            for (size_t k = i; k < l && h.len + 1 < sizeof(h.buf); k++)
                h.buf[h.len++] = body[k];
        }
        i = e + 1;
    }
    if (scan_line(&sc, &h, pe) < 0)
        return -1;
    if (!sc.started)
        return fail(pe, PRE_DATA, "no VCALENDAR");
    if (!sc.done)
        return fail(pe, PRE_DATA, "VCALENDAR is not closed");
    return 0;
}

/* ---- times ---- */

int dav_ical_time_valid(struct icaltimetype t)
{
    if (t.year < 1 || t.year > 9999 || t.month < 1 || t.month > 12 || t.day < 1 ||
        t.day > icaltime_days_in_month(t.month, t.year))
        return 0;
    if (t.is_date)
        return 1;
    return t.hour >= 0 && t.hour <= 23 && t.minute >= 0 && t.minute <= 59 && t.second >= 0 &&
           t.second <= 60;
}

icaltimezone *dav_ical_zone_of(const struct dav_ical *c, icalproperty *p)
{
    icalparameter *tp = icalproperty_get_first_parameter(p, ICAL_TZID_PARAMETER);
    const char *tzid = tp ? icalparameter_get_tzid(tp) : NULL;

    if (!tzid)
        return NULL;
    for (size_t i = 0; i < c->ntz; i++)
        if (strcmp(c->tz[i].tzid, tzid) == 0)
            return c->tz[i].zone;
    return NULL;
}

/* The DATE or DATE-TIME a property holds (the start of a PERIOD). */
static int prop_time(icalproperty *p, struct icaltimetype *t)
{
    icalvalue *v = icalproperty_get_value(p);

    if (!v)
        return -1;
    switch (icalvalue_isa(v)) {
    case ICAL_DATE_VALUE:
    case ICAL_DATETIME_VALUE:
        *t = icalvalue_get_datetime(v);
        break;
    case ICAL_DATETIMEPERIOD_VALUE: {
        struct icaldatetimeperiodtype dp = icalvalue_get_datetimeperiod(v);
        *t = icaltime_is_null_time(dp.time) ? dp.period.start : dp.time;
        break;
    }
    case ICAL_PERIOD_VALUE:
        *t = icalvalue_get_period(v).start;
        break;
    default:
        return -1;
    }
    return icaltime_is_null_time(*t) ? -1 : 0;
}

int dav_ical_prop_unix(const struct dav_ical *c, icalproperty *p, int64_t *t, int *is_date)
{
    struct icaltimetype tt;
    int utc;

    if (prop_time(p, &tt) < 0 || !dav_ical_time_valid(tt))
        return -1;
    utc = icaltime_is_utc(tt);
    if (is_date)
        *is_date = tt.is_date;
    *t = dav_ical_tz_to_unix(tt, utc ? NULL : dav_ical_zone_of(c, p));
    return 0;
}

/* ---- validation ---- */

static int add_tzid(struct dav_ical *c, const char *tzid, struct perr *pe)
{
    icaltimezone *z;
    struct dav_ical_tz *n;

    for (size_t i = 0; i < c->ntz; i++)
        if (strcmp(c->tz[i].tzid, tzid) == 0)
            return 0;
    z = icalcomponent_get_timezone(c->root, tzid);
    if (!z)
        z = dav_ical_tz_builtin(tzid);
    if (!z)
        return fail(pe, PRE_DATA, "TZID \"%.64s\" has no VTIMEZONE and is not a known zone", tzid);
    n = realloc(c->tz, (c->ntz + 1) * sizeof(*n));
    if (!n)
        return fail(pe, PRE_DATA, "out of memory");
    c->tz = n;
    n[c->ntz].tzid = strdup(tzid);
    if (!n[c->ntz].tzid)
        return fail(pe, PRE_DATA, "out of memory");
    n[c->ntz++].zone = z == icaltimezone_get_utc_timezone() ? NULL : z;
    return 0;
}

static int is_time_prop(icalproperty_kind k)
{
    switch (k) {
    case ICAL_DTSTART_PROPERTY:
    case ICAL_DTEND_PROPERTY:
    case ICAL_DUE_PROPERTY:
    case ICAL_RECURRENCEID_PROPERTY:
    case ICAL_EXDATE_PROPERTY:
    case ICAL_RDATE_PROPERTY:
    case ICAL_COMPLETED_PROPERTY:
    case ICAL_CREATED_PROPERTY:
    case ICAL_DTSTAMP_PROPERTY:
    case ICAL_LASTMODIFIED_PROPERTY:
    case ICAL_TRIGGER_PROPERTY:
        return 1;
    default:
        return 0;
    }
}

/* libical keeps going past values it cannot read and leaves X-LIC-ERROR behind. An
 * unreadable time, duration or rule would change what the resource means, so those
 * refuse the resource; others (an odd GEO, an unknown property) are tolerated because
 * the stored bytes are served as sent. */
static int check_lic_error(icalproperty *p, struct perr *pe)
{
    static const char *const vital[] = {
        "DTSTART", "DTEND",         "DUE",        "DURATION", "RRULE",     "RDATE",
        "EXDATE",  "RECURRENCE-ID", "UID",        "TRIGGER",  "COMPLETED", "CREATED",
        "VERSION", "TZOFFSETFROM",  "TZOFFSETTO", "REPEAT",   "FREEBUSY"};
    const char *msg = icalproperty_get_xlicerror(p);
    icalparameter *tp = icalproperty_get_first_parameter(p, ICAL_XLICERRORTYPE_PARAMETER);
    icalparameter_xlicerrortype et =
        tp ? icalparameter_get_xlicerrortype(tp) : ICAL_XLICERRORTYPE_NONE;
    char needle[40];

    if (et == ICAL_XLICERRORTYPE_COMPONENTPARSEERROR)
        return fail(pe, PRE_DATA, "component parse error");
    if (et != ICAL_XLICERRORTYPE_VALUEPARSEERROR || !msg)
        return 0;
    for (size_t i = 0; i < sizeof(vital) / sizeof(vital[0]); i++) {
        snprintf(needle, sizeof(needle), " %s property", vital[i]);
        if (strstr(msg, needle))
            return fail(pe, PRE_DATA, "unreadable %s value", vital[i]);
    }
    return 0;
}

/* Sub-daily rules make libical step second by second (or minute, hour) through a
 * search that can run to year 2582 before it gives up; only the shapes that always
 * produce an occurrence quickly are accepted. Month/day combinations that never exist
 * (BYMONTH=2;BYMONTHDAY=30) are refused for every frequency. */
static int check_rule(struct icalrecurrencetype *r, struct perr *pe)
{
    int has_month = r->by_month[0] != ICAL_RECURRENCE_ARRAY_MAX;
    int has_mday = r->by_month_day[0] != ICAL_RECURRENCE_ARRAY_MAX;

    if (r->freq == ICAL_NO_RECURRENCE)
        return fail(pe, PRE_DATA, "RRULE without FREQ");
    if (r->interval < 1 || r->interval > 10000)
        return fail(pe, PRE_DATA, "RRULE INTERVAL out of range");
    if (r->freq == ICAL_SECONDLY_RECURRENCE || r->freq == ICAL_MINUTELY_RECURRENCE ||
        r->freq == ICAL_HOURLY_RECURRENCE) {
        if (has_month || has_mday || r->by_year_day[0] != ICAL_RECURRENCE_ARRAY_MAX ||
            r->by_week_no[0] != ICAL_RECURRENCE_ARRAY_MAX ||
            r->by_set_pos[0] != ICAL_RECURRENCE_ARRAY_MAX)
            return fail(pe, PRE_OBJ, "sub-daily RRULE with date parts is not supported");
        if (r->freq != ICAL_HOURLY_RECURRENCE && (r->by_day[0] != ICAL_RECURRENCE_ARRAY_MAX ||
                                                  r->by_hour[0] != ICAL_RECURRENCE_ARRAY_MAX))
            return fail(pe, PRE_OBJ, "minutely/secondly RRULE with BYDAY/BYHOUR is not supported");
    }
    if (has_month && has_mday) {
        static const int maxd[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int possible = 0;
        for (int i = 0; i < ICAL_BY_MONTH_SIZE && r->by_month[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
            for (int j = 0;
                 j < ICAL_BY_MONTHDAY_SIZE && r->by_month_day[j] != ICAL_RECURRENCE_ARRAY_MAX;
                 j++) {
                int m = r->by_month[i], d = abs(r->by_month_day[j]);
                if (m >= 1 && m <= 12 && d >= 1 && d <= maxd[m])
                    possible = 1;
            }
        if (!possible)
            return fail(pe, PRE_OBJ, "RRULE names no day that exists");
    }
    return 0;
}

/* Time zones: each must observe yearly or monthly rules, so expanding them is cheap. */
static int check_vtimezone(icalcomponent *tz, struct perr *pe)
{
    int n = 0;

    if (!icalcomponent_get_first_property(tz, ICAL_TZID_PROPERTY))
        return fail(pe, PRE_DATA, "VTIMEZONE without TZID");
    for (icalcomponent *o = icalcomponent_get_first_component(tz, ICAL_ANY_COMPONENT); o;
         o = icalcomponent_get_next_component(tz, ICAL_ANY_COMPONENT)) {
        icalcomponent_kind k = icalcomponent_isa(o);
        icalproperty *p;
        struct icaltimetype t;
        if (k != ICAL_XSTANDARD_COMPONENT && k != ICAL_XDAYLIGHT_COMPONENT)
            continue;
        n++;
        p = icalcomponent_get_first_property(o, ICAL_DTSTART_PROPERTY);
        if (!p || prop_time(p, &t) < 0 || !dav_ical_time_valid(t))
            return fail(pe, PRE_DATA, "time zone observance without a valid DTSTART");
        /* libical expands observances from their start on every conversion past its
         * cache; Outlook's 1601 is the earliest any client writes */
        if (t.year < 1600)
            return fail(pe, PRE_DATA, "time zone observance before 1600");
        if (!icalcomponent_get_first_property(o, ICAL_TZOFFSETTO_PROPERTY))
            return fail(pe, PRE_DATA, "time zone observance without TZOFFSETTO");
        for (p = icalcomponent_get_first_property(o, ICAL_RRULE_PROPERTY); p;
             p = icalcomponent_get_next_property(o, ICAL_RRULE_PROPERTY)) {
            struct icalrecurrencetype r = icalproperty_get_rrule(p);
            if (r.freq != ICAL_YEARLY_RECURRENCE)
                return fail(pe, PRE_DATA, "time zone rule is not yearly");
            if (check_rule(&r, pe) < 0)
                return fail(pe, PRE_DATA, "bad time zone rule");
        }
    }
    if (n == 0)
        return fail(pe, PRE_DATA, "VTIMEZONE without STANDARD or DAYLIGHT");
    return 0;
}

/* Every property of a component (and its VALARMs): lic errors, TZIDs, time values. */
static int check_props(struct dav_ical *c, icalcomponent *comp, int depth, struct perr *pe)
{
    for (icalproperty *p = icalcomponent_get_first_property(comp, ICAL_ANY_PROPERTY); p;
         p = icalcomponent_get_next_property(comp, ICAL_ANY_PROPERTY)) {
        icalproperty_kind k = icalproperty_isa(p);
        icalparameter *tp;
        if (k == ICAL_XLICERROR_PROPERTY) {
            if (check_lic_error(p, pe) < 0)
                return -1;
            continue;
        }
        tp = icalproperty_get_first_parameter(p, ICAL_TZID_PARAMETER);
        if (tp && icalparameter_get_tzid(tp) && add_tzid(c, icalparameter_get_tzid(tp), pe) < 0)
            return -1;
        if (is_time_prop(k)) {
            struct icaltimetype t;
            if (k == ICAL_TRIGGER_PROPERTY) { /* a duration, or an absolute time */
                struct icaltriggertype tr = icalproperty_get_trigger(p);
                if (!icaltime_is_null_time(tr.time) && !dav_ical_time_valid(tr.time))
                    return fail(pe, PRE_DATA, "bad TRIGGER time");
                continue;
            }
            if (prop_time(p, &t) < 0 || !dav_ical_time_valid(t))
                return fail(pe, PRE_DATA, "bad date or time in %s",
                            icalproperty_get_property_name(p));
        }
        if (k == ICAL_RRULE_PROPERTY) {
            struct icalrecurrencetype r = icalproperty_get_rrule(p);
            if (check_rule(&r, pe) < 0)
                return -1;
            if (!icaltime_is_null_time(r.until) && !dav_ical_time_valid(r.until))
                return fail(pe, PRE_DATA, "bad RRULE UNTIL");
        }
    }
    if (depth >= 1)
        return 0;
    for (icalcomponent *s = icalcomponent_get_first_component(comp, ICAL_ANY_COMPONENT); s;
         s = icalcomponent_get_next_component(comp, ICAL_ANY_COMPONENT))
        if (check_props(c, s, depth + 1, pe) < 0)
            return -1;
    return 0;
}

unsigned dav_ical_kind_bit(icalcomponent_kind k)
{
    switch (k) {
    case ICAL_VEVENT_COMPONENT:
        return DAV_ICAL_VEVENT;
    case ICAL_VTODO_COMPONENT:
        return DAV_ICAL_VTODO;
    case ICAL_VJOURNAL_COMPONENT:
        return DAV_ICAL_VJOURNAL;
    case ICAL_VFREEBUSY_COMPONENT:
        return DAV_ICAL_VFREEBUSY;
    default:
        return 0;
    }
}

/* The times of one event/task/journal: required ones present, no contradictions. */
static int check_times(icalcomponent *comp, struct perr *pe)
{
    icalproperty *st = icalcomponent_get_first_property(comp, ICAL_DTSTART_PROPERTY);
    icalproperty *en = icalcomponent_get_first_property(comp, ICAL_DTEND_PROPERTY);
    icalproperty *due = icalcomponent_get_first_property(comp, ICAL_DUE_PROPERTY);
    icalproperty *du = icalcomponent_get_first_property(comp, ICAL_DURATION_PROPERTY);
    icalproperty *rr = icalcomponent_get_first_property(comp, ICAL_RRULE_PROPERTY);
    icalcomponent_kind k = icalcomponent_isa(comp);

    if (k == ICAL_VEVENT_COMPONENT && !st)
        return fail(pe, PRE_DATA, "VEVENT without DTSTART");
    if ((en || due) && du)
        return fail(pe, PRE_DATA, "both DTEND/DUE and DURATION");
    if (du && !st)
        return fail(pe, PRE_DATA, "DURATION without DTSTART");
    if (rr && !st)
        return fail(pe, PRE_DATA, "RRULE without DTSTART");
    if (rr && icalcomponent_get_next_property(comp, ICAL_RRULE_PROPERTY))
        return fail(pe, PRE_OBJ, "more than one RRULE");
    if (rr && icalcomponent_get_first_property(comp, ICAL_RECURRENCEID_PROPERTY))
        return fail(pe, PRE_OBJ, "an override with its own RRULE");
    if (rr) {
        struct icalrecurrencetype r = icalproperty_get_rrule(rr);
        struct icaltimetype t;
        icalrecur_iterator *it;
        if (prop_time(st, &t) < 0)
            return fail(pe, PRE_DATA, "bad DTSTART");
        t.zone = NULL;
        r.until.zone = NULL;
        it = icalrecur_iterator_new(r, t);
        if (!it)
            return fail(pe, PRE_DATA, "RRULE cannot be expanded");
        icalrecur_iterator_free(it);
    }
    return 0;
}

static int add_comp(struct dav_ical *c, icalcomponent *comp, struct perr *pe)
{
    icalproperty *rid = icalcomponent_get_first_property(comp, ICAL_RECURRENCEID_PROPERTY);
    const char *uid = icalcomponent_get_uid(comp);

    if (!uid || !*uid)
        return fail(pe, PRE_OBJ, "component without UID");
    if (!c->uid && !(c->uid = strdup(uid)))
        return fail(pe, PRE_DATA, "out of memory");
    if (strcmp(c->uid, uid) != 0)
        return fail(pe, PRE_OBJ, "components with different UIDs");
    if (check_times(comp, pe) < 0)
        return -1;
    if (!rid) {
        if (c->master)
            return fail(pe, PRE_OBJ, "two components without RECURRENCE-ID");
        c->master = comp;
        return 0;
    }
    icalcomponent **n = realloc(c->ovr, (c->novr + 1) * sizeof(*n));
    if (!n)
        return fail(pe, PRE_DATA, "out of memory");
    c->ovr = n;
    n[c->novr++] = comp;
    return 0;
}

/* Distinct RECURRENCE-IDs (after time zones are known). */
static int check_rids(struct dav_ical *c, struct perr *pe)
{
    int64_t *v;

    if (c->novr < 2)
        return 0;
    v = malloc(c->novr * sizeof(*v));
    if (!v)
        return fail(pe, PRE_DATA, "out of memory");
    for (size_t i = 0; i < c->novr; i++) {
        icalproperty *p = icalcomponent_get_first_property(c->ovr[i], ICAL_RECURRENCEID_PROPERTY);
        if (dav_ical_prop_unix(c, p, &v[i], NULL) < 0) {
            free(v);
            return fail(pe, PRE_DATA, "bad RECURRENCE-ID");
        }
    }
    for (size_t i = 0; i < c->novr; i++)
        for (size_t j = i + 1; j < c->novr; j++)
            if (v[i] == v[j]) {
                free(v);
                return fail(pe, PRE_OBJ, "two overrides with the same RECURRENCE-ID");
            }
    free(v);
    return 0;
}

static int validate(struct dav_ical *c, struct perr *pe)
{
    icalcomponent *root = c->root;
    icalproperty *ver;

    if (icalcomponent_isa(root) != ICAL_VCALENDAR_COMPONENT)
        return fail(pe, PRE_OBJ, "not exactly one VCALENDAR");
    ver = icalcomponent_get_first_property(root, ICAL_VERSION_PROPERTY);
    if (!ver || !icalproperty_get_version(ver) || strcmp(icalproperty_get_version(ver), "2.0"))
        return fail(pe, PRE_DATA, "VERSION:2.0 is required");
    if (icalcomponent_get_first_property(root, ICAL_METHOD_PROPERTY))
        return fail(pe, PRE_OBJ, "METHOD is not allowed in a calendar object resource");
    for (icalproperty *p = icalcomponent_get_first_property(root, ICAL_XLICERROR_PROPERTY); p;
         p = icalcomponent_get_next_property(root, ICAL_XLICERROR_PROPERTY))
        if (check_lic_error(p, pe) < 0)
            return -1;
    for (icalcomponent *s = icalcomponent_get_first_component(root, ICAL_ANY_COMPONENT); s;
         s = icalcomponent_get_next_component(root, ICAL_ANY_COMPONENT)) {
        icalcomponent_kind k = icalcomponent_isa(s);
        unsigned bit = dav_ical_kind_bit(k);
        if (k == ICAL_VTIMEZONE_COMPONENT) {
            if (check_vtimezone(s, pe) < 0)
                return -1;
            continue;
        }
        if (k == ICAL_X_COMPONENT)
            continue;
        if (!bit)
            return fail(pe, PRE_OBJ, "%s is not allowed here", icalcomponent_kind_to_string(k));
        if (c->kind && c->kind != bit)
            return fail(pe, PRE_OBJ, "more than one component type");
        c->kind = bit;
        c->ikind = k;
        if (check_props(c, s, 0, pe) < 0 || add_comp(c, s, pe) < 0)
            return -1;
    }
    if (!c->kind)
        return fail(pe, PRE_OBJ, "no VEVENT, VTODO, VJOURNAL or VFREEBUSY");
    return check_rids(c, pe);
}

int dav_ical_parse(const char *body, size_t len, struct dav_ical **out, const char **precond,
                   char *err, size_t errlen)
{
    struct perr pe = {precond, err, errlen};
    struct dav_ical *c = NULL;
    char *copy = NULL;
    const char *dummy;

    if (!precond)
        pe.precond = &dummy;
    *out = NULL;
    if (err && errlen)
        err[0] = 0;
    dav_ical_lib_init();
    if (!body || len == 0)
        return fail(&pe, PRE_DATA, "empty body");
    if (len > DAV_ICAL_MAX_BYTES)
        return fail(&pe, PRE_DATA, "calendar data larger than %u bytes", DAV_ICAL_MAX_BYTES);
    if (prescan(body, len, &pe) < 0)
        return -1;
    c = calloc(1, sizeof(*c));
    copy = malloc(len + 1);
    if (!c || !copy) {
        fail(&pe, PRE_DATA, "out of memory");
        goto err;
    }
    memcpy(copy, body, len);
    copy[len] = 0;
    c->root = icalparser_parse_string(copy);
    free(copy);
    copy = NULL;
    if (!c->root) {
        fail(&pe, PRE_DATA, "not iCalendar data");
        goto err;
    }
    if (validate(c, &pe) < 0)
        goto err;
    *out = c;
    return 0;
err:
    free(copy);
    dav_ical_free(c);
    return -1;
}

void dav_ical_free(struct dav_ical *c)
{
    if (!c)
        return;
    if (c->root)
        icalcomponent_free(c->root);
    for (size_t i = 0; i < c->ntz; i++)
        free(c->tz[i].tzid);
    free(c->tz);
    free(c->ovr);
    free(c->uid);
    free(c);
}

const char *dav_ical_uid(const struct dav_ical *c)
{
    return c ? c->uid : NULL;
}

unsigned dav_ical_kind(const struct dav_ical *c)
{
    return c ? c->kind : 0;
}

int dav_ical_parse_utc(const char *s, int64_t *t)
{
    int y, mo, d, h, mi, se;
    char tail;

    if (!s || strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
        return -1;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (s[i] < '0' || s[i] > '9'))
            return -1;
    if (sscanf(s, "%4d%2d%2dT%2d%2d%2dZ%c", &y, &mo, &d, &h, &mi, &se, &tail) != 6)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > icaltime_days_in_month(mo, y) || h > 23 || mi > 59 ||
        se > 60)
        return -1;
    *t = dav_ical_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return 0;
}
