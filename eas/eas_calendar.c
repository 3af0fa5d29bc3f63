/*
 * eas_calendar.c — iCalendar VEVENT ↔ the ActiveSync Calendar class (MS-ASCAL): times in
 * the event's zone (its blob made by eas_tz.c), all-day events, recurrence rules,
 * exceptions (EXDATE and RECURRENCE-ID overrides), organizer and attendees, reminder,
 * busy status, sensitivity, categories and the body.
 *
 * A device's Change is merged into the stored VEVENT: only the properties ActiveSync
 * carries are replaced, so what a CalDAV client stored (X- properties, attachments, URL,
 * extra alarms...) survives a round trip through a phone.
 */
#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dav/dav_ical.h"
#include "eas/eas_pim.h"

#define EAS_CAL_MAX_EXCEPTIONS 1000
#define EAS_CAL_MAX_ATTENDEES  1000

/* ---- reading the stored event ------------------------------------------------------------ */

/* The zone of a DATE-TIME property: the VCALENDAR's VTIMEZONE of its TZID, or libical's
 * built-in zone of that name; NULL for UTC and floating times. */
icaltimezone *eas_prop_zone(icalcomponent *root, icalproperty *p)
{
    icalparameter *tz = p ? icalproperty_get_first_parameter(p, ICAL_TZID_PARAMETER) : NULL;
    const char *tzid = tz ? icalparameter_get_tzid(tz) : NULL;
    icaltimezone *z;

    if (!tzid)
        return NULL;
    if ((z = icalcomponent_get_timezone(root, tzid)))
        return z;
    /* through the DAV module: libical's built-in zones are shared between threads and
     * must be reached under its time-zone lock (also resolves Windows names) */
    return dav_ical_tz_builtin(tzid);
}

/* A time value as unix seconds; floating and DATE values as UTC. */
int64_t eas_ical_tt(struct icaltimetype t, icaltimezone *zone)
{
    /* under the DAV module's time-zone lock (zone caches are filled lazily) */
    return dav_ical_tz_to_unix(t, t.is_date || icaltime_is_utc(t) ? NULL : zone);
}

int64_t eas_ical_prop_time(icalcomponent *root, icalproperty *p)
{
    struct icaltimetype t;

    if (!p)
        return 0;
    t = icalvalue_get_datetime(icalproperty_get_value(p));
    return eas_ical_tt(t, eas_prop_zone(root, p));
}

const char *eas_mailto(const char *v)
{
    if (v && !strncasecmp(v, "mailto:", 7))
        return v + 7;
    return v ? v : "";
}

static const char *eas_param(icalproperty *p, icalparameter_kind k)
{
    icalparameter *pa = icalproperty_get_first_parameter(p, k);

    if (!pa)
        return NULL;
    switch (k) {
    case ICAL_CN_PARAMETER:
        return icalparameter_get_cn(pa);
    default:
        return icalparameter_as_ical_string(pa);
    }
}

static int eas_partstat_status(icalproperty *p)
{
    icalparameter *pa = icalproperty_get_first_parameter(p, ICAL_PARTSTAT_PARAMETER);

    switch (pa ? icalparameter_get_partstat(pa) : ICAL_PARTSTAT_NEEDSACTION) {
    case ICAL_PARTSTAT_ACCEPTED:
        return 3;
    case ICAL_PARTSTAT_TENTATIVE:
        return 2;
    case ICAL_PARTSTAT_DECLINED:
        return 4;
    case ICAL_PARTSTAT_NEEDSACTION:
        return 5;
    default:
        return 0;
    }
}

static int eas_attendee_type(icalproperty *p)
{
    icalparameter *cu = icalproperty_get_first_parameter(p, ICAL_CUTYPE_PARAMETER);
    icalparameter *ro = icalproperty_get_first_parameter(p, ICAL_ROLE_PARAMETER);

    if (cu && (icalparameter_get_cutype(cu) == ICAL_CUTYPE_RESOURCE ||
               icalparameter_get_cutype(cu) == ICAL_CUTYPE_ROOM))
        return 3;
    if (ro && (icalparameter_get_role(ro) == ICAL_ROLE_OPTPARTICIPANT ||
               icalparameter_get_role(ro) == ICAL_ROLE_NONPARTICIPANT))
        return 2;
    return 1;
}

static int eas_busy_status(icalcomponent *ev)
{
    static const struct {
        const char *name;
        int v;
    } map[] = {{"FREE", 0}, {"TENTATIVE", 1}, {"BUSY", 2}, {"OOF", 3}, {"WORKINGELSEWHERE", 4}};
    icalproperty *t;

    for (icalproperty *p = icalcomponent_get_first_property(ev, ICAL_X_PROPERTY); p;
         p = icalcomponent_get_next_property(ev, ICAL_X_PROPERTY)) {
        const char *n = icalproperty_get_x_name(p);
        if (n && !strcasecmp(n, "X-MICROSOFT-CDO-BUSYSTATUS")) {
            const char *v = icalproperty_get_x(p);
            for (size_t i = 0; v && i < sizeof(map) / sizeof(map[0]); i++)
                if (!strcasecmp(v, map[i].name))
                    return map[i].v;
        }
    }
    t = icalcomponent_get_first_property(ev, ICAL_TRANSP_PROPERTY);
    if (t && icalproperty_get_transp(t) == ICAL_TRANSP_TRANSPARENT)
        return 0;
    if (icalcomponent_get_status(ev) == ICAL_STATUS_TENTATIVE)
        return 1;
    return 2;
}

/* Sensitivity 1 (Personal) has no CLASS of its own: it is stored as this x-name, which
 * CalDAV clients treat as PRIVATE (RFC 5545 3.8.1.3), so that it comes back as Personal to
 * the user's other devices instead of turning into Private. */
#define EAS_CLASS_PERSONAL "X-PERSONAL"

int eas_ical_sensitivity(icalcomponent *ev)
{
    icalproperty *p = icalcomponent_get_first_property(ev, ICAL_CLASS_PROPERTY);
    const char *v;

    if (!p)
        return 0;
    switch (icalproperty_get_class(p)) {
    case ICAL_CLASS_PUBLIC:
        return 0;
    case ICAL_CLASS_CONFIDENTIAL:
        return 3;
    case ICAL_CLASS_PRIVATE:
        return 2;
    default:
        /* an x-name or unknown token is PRIVATE to RFC 5545, ours is Personal */
        v = icalproperty_get_value_as_string(p);
        return v && !strcasecmp(v, EAS_CLASS_PERSONAL) ? 1 : 2;
    }
}

void eas_ical_set_sensitivity(icalcomponent *comp, long long sv)
{
    icalproperty *p = NULL;

    eas_ical_remove(comp, ICAL_CLASS_PROPERTY);
    if (sv == 1)
        p = icalproperty_new_from_string("CLASS:" EAS_CLASS_PERSONAL);
    else if (sv == 2)
        p = icalproperty_new_class(ICAL_CLASS_PRIVATE);
    else if (sv == 3)
        p = icalproperty_new_class(ICAL_CLASS_CONFIDENTIAL);
    if (p)
        icalcomponent_add_property(comp, p);
}

/* Minutes before the start of the first alarm related to the start, -1 when none. */
static int eas_reminder(icalcomponent *ev)
{
    for (icalcomponent *a = icalcomponent_get_first_component(ev, ICAL_VALARM_COMPONENT); a;
         a = icalcomponent_get_next_component(ev, ICAL_VALARM_COMPONENT)) {
        icalproperty *tp = icalcomponent_get_first_property(a, ICAL_TRIGGER_PROPERTY);
        struct icaltriggertype tr;
        icalparameter *rel;
        int secs;
        if (!tp)
            continue;
        tr = icalproperty_get_trigger(tp);
        rel = icalproperty_get_first_parameter(tp, ICAL_RELATED_PARAMETER);
        if (!icaltime_is_null_time(tr.time) ||
            (rel && icalparameter_get_related(rel) == ICAL_RELATED_END))
            continue;
        secs = icaldurationtype_as_int(tr.duration);
        return secs >= 0 ? 0 : -secs / 60;
    }
    return -1;
}

/* CATEGORIES values, split at commas; strings are libical's (valid while ev lives). */
size_t eas_ical_categories(icalcomponent *ev, char *buf, size_t buflen, const char **v, size_t max)
{
    size_t n = 0, o = 0;

    for (icalproperty *p = icalcomponent_get_first_property(ev, ICAL_CATEGORIES_PROPERTY); p;
         p = icalcomponent_get_next_property(ev, ICAL_CATEGORIES_PROPERTY)) {
        const char *s = icalproperty_get_categories(p);
        while (s && *s && n < max) {
            size_t l = strcspn(s, ",");
            if (l > 0 && o + l + 1 <= buflen) {
                memcpy(buf + o, s, l);
                buf[o + l] = '\0';
                v[n++] = buf + o;
                o += l + 1;
            }
            s += l;
            if (*s == ',')
                s++;
        }
    }
    return n;
}

/* ---- writing the Calendar class --------------------------------------------------------- */

static void eas_add_time(struct eas_doc *d, struct eas_node *parent, unsigned tag, int64_t t)
{
    char buf[32];

    eas_pim_compact_time(buf, sizeof(buf), t);
    eas_add_text(d, parent, tag, buf);
}

static void eas_add_instance(struct eas_doc *d, struct eas_node *parent, int64_t t)
{
    char buf[40];

    eas_pim_iso_time(buf, sizeof(buf), t);
    eas_add_text(d, parent, EAS_AIRSYNCBASE_INSTANCEID, buf);
}

/* Start and end of an event in unix seconds; *allday when DTSTART is a DATE. */
static void eas_span(icalcomponent *root, icalcomponent *ev, int64_t *s, int64_t *e, int *allday)
{
    icalproperty *ps = icalcomponent_get_first_property(ev, ICAL_DTSTART_PROPERTY);
    icalproperty *pe = icalcomponent_get_first_property(ev, ICAL_DTEND_PROPERTY);
    icalproperty *pd = icalcomponent_get_first_property(ev, ICAL_DURATION_PROPERTY);
    struct icaltimetype st = ps ? icalproperty_get_dtstart(ps) : icaltime_null_time();

    *allday = st.is_date;
    *s = eas_ical_prop_time(root, ps);
    if (pe)
        *e = eas_ical_prop_time(root, pe);
    else if (pd)
        *e = *s + icaldurationtype_as_int(icalproperty_get_duration(pd));
    else
        *e = *s + (st.is_date ? 86400 : 0);
    if (*e < *s)
        *e = *s;
}

static void eas_location(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c,
                         const char *loc)
{
    if (!loc || !*loc)
        return;
    if (c->version >= EAS_V160)
        eas_add_text(d, eas_add(d, app, EAS_AIRSYNCBASE_LOCATION), EAS_AIRSYNCBASE_DISPLAYNAME,
                     loc);
    else
        eas_add_text(d, app, EAS_CALENDAR_LOCATION, loc);
}

static int eas_is_self(const struct eas_pim_ctx *c, const char *addr)
{
    return c->self && addr && !strcasecmp(c->self, addr);
}

static void eas_attendees(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c,
                          icalcomponent *ev)
{
    struct eas_node *list = NULL;
    int n = 0;

    for (icalproperty *p = icalcomponent_get_first_property(ev, ICAL_ATTENDEE_PROPERTY);
         p && n < EAS_CAL_MAX_ATTENDEES;
         p = icalcomponent_get_next_property(ev, ICAL_ATTENDEE_PROPERTY), n++) {
        const char *mail = eas_mailto(icalproperty_get_attendee(p));
        const char *cn = eas_param(p, ICAL_CN_PARAMETER);
        struct eas_node *a;
        if (!list)
            list = eas_add(d, app, EAS_CALENDAR_ATTENDEES);
        a = eas_add(d, list, EAS_CALENDAR_ATTENDEE);
        eas_add_text(d, a, EAS_CALENDAR_EMAIL, mail);
        eas_add_text(d, a, EAS_CALENDAR_NAME, cn && *cn ? cn : mail);
        if (c->version >= EAS_V120) {
            eas_add_int(d, a, EAS_CALENDAR_ATTENDEESTATUS, eas_partstat_status(p));
            eas_add_int(d, a, EAS_CALENDAR_ATTENDEETYPE, eas_attendee_type(p));
        }
    }
}

/* MeetingStatus (MS-ASCAL 2.2.2.29) and, for a received meeting, the user's response. */
static int eas_meeting_status(const struct eas_pim_ctx *c, icalcomponent *ev, int *response)
{
    icalproperty *org = icalcomponent_get_first_property(ev, ICAL_ORGANIZER_PROPERTY);
    int cancelled = icalcomponent_get_status(ev) == ICAL_STATUS_CANCELLED;
    int organizer;

    *response = -1;
    if (!icalcomponent_get_first_property(ev, ICAL_ATTENDEE_PROPERTY))
        return cancelled ? 5 : 0;
    organizer = !org || eas_is_self(c, eas_mailto(icalproperty_get_organizer(org)));
    if (organizer) {
        *response = 1;
        return cancelled ? 5 : 1;
    }
    *response = 5;
    for (icalproperty *p = icalcomponent_get_first_property(ev, ICAL_ATTENDEE_PROPERTY); p;
         p = icalcomponent_get_next_property(ev, ICAL_ATTENDEE_PROPERTY))
        if (eas_is_self(c, eas_mailto(icalproperty_get_attendee(p)))) {
            int st = eas_partstat_status(p);
            *response = st == 0 ? 5 : st;
        }
    return cancelled ? 7 : 3;
}

static int eas_weekday_bit(icalrecurrencetype_weekday w)
{
    return w >= ICAL_SUNDAY_WEEKDAY && w <= ICAL_SATURDAY_WEEKDAY ? 1 << (w - 1) : 0;
}

/* The Recurrence element of an RRULE; nothing when ActiveSync cannot express it. */
const struct eas_rec_tags eas_rec_calendar = {EAS_CALENDAR_RECURRENCE,
                                              EAS_CALENDAR_TYPE,
                                              EAS_CALENDAR_OCCURRENCES,
                                              EAS_CALENDAR_INTERVAL,
                                              EAS_CALENDAR_WEEKOFMONTH,
                                              EAS_CALENDAR_DAYOFWEEK,
                                              EAS_CALENDAR_MONTHOFYEAR,
                                              EAS_CALENDAR_UNTIL,
                                              EAS_CALENDAR_DAYOFMONTH,
                                              EAS_CALENDAR_FIRSTDAYOFWEEK,
                                              0,
                                              0,
                                              0,
                                              0};
const struct eas_rec_tags eas_rec_tasks = {EAS_TASKS_RECURRENCE,  EAS_TASKS_TYPE,
                                           EAS_TASKS_OCCURRENCES, EAS_TASKS_INTERVAL,
                                           EAS_TASKS_WEEKOFMONTH, EAS_TASKS_DAYOFWEEK,
                                           EAS_TASKS_MONTHOFYEAR, EAS_TASKS_UNTIL,
                                           EAS_TASKS_DAYOFMONTH,  EAS_TASKS_FIRSTDAYOFWEEK,
                                           EAS_TASKS_START,       EAS_TASKS_REGENERATE,
                                           EAS_TASKS_DEADOCCUR,   1};

static void eas_rec_time(struct eas_doc *d, struct eas_node *rec, const struct eas_rec_tags *t,
                         unsigned tag, int64_t v)
{
    char buf[40];

    if (t->iso)
        eas_pim_iso_time(buf, sizeof(buf), v);
    else
        eas_pim_compact_time(buf, sizeof(buf), v);
    eas_add_text(d, rec, tag, buf);
}

void eas_recurrence_out(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c,
                        icalcomponent *root, icalcomponent *ev, const struct eas_rec_tags *t)
{
    icalproperty *rp = icalcomponent_get_first_property(ev, ICAL_RRULE_PROPERTY);
    struct icalrecurrencetype r;
    struct icaltimetype st = icalcomponent_get_dtstart(ev);
    int type, mask = 0, week = 0, dom = 0, moy = 0;
    struct eas_node *rec;

    if (!rp)
        return;
    r = icalproperty_get_rrule(rp);
    for (int i = 0; i < ICAL_BY_DAY_SIZE && r.by_day[i] != ICAL_RECURRENCE_ARRAY_MAX; i++) {
        int pos = icalrecurrencetype_day_position(r.by_day[i]);
        mask |= eas_weekday_bit(icalrecurrencetype_day_day_of_week(r.by_day[i]));
        if (pos)
            week = pos < 0 ? 5 : pos;
    }
    if (r.by_set_pos[0] != ICAL_RECURRENCE_ARRAY_MAX)
        week = r.by_set_pos[0] < 0 ? 5 : r.by_set_pos[0];
    if (r.by_month_day[0] != ICAL_RECURRENCE_ARRAY_MAX)
        dom = r.by_month_day[0];
    if (r.by_month[0] != ICAL_RECURRENCE_ARRAY_MAX)
        moy = r.by_month[0];
    switch (r.freq) {
    case ICAL_DAILY_RECURRENCE:
        type = mask ? 1 : 0;
        break;
    case ICAL_WEEKLY_RECURRENCE:
        type = 1;
        if (!mask)
            mask = 1 << (icaltime_day_of_week(st) - 1);
        break;
    case ICAL_MONTHLY_RECURRENCE:
        type = mask && week ? 3 : 2;
        if (type == 2 && !dom)
            dom = st.day;
        break;
    case ICAL_YEARLY_RECURRENCE:
        type = mask && week ? 6 : 5;
        if (!moy)
            moy = st.month;
        if (type == 5 && !dom)
            dom = st.day;
        break;
    default:
        return; /* HOURLY and finer: not in ActiveSync */
    }
    if (dom < 0)
        return; /* "last day of the month" has no ActiveSync form */
    rec = eas_add(d, app, t->rec);
    eas_add_int(d, rec, t->type, type);
    if (t->start) {
        /* Tasks: the recurrence starts with the task (its start, else its due date) */
        icalproperty *sp = icalcomponent_get_first_property(ev, ICAL_DTSTART_PROPERTY);
        if (!sp)
            sp = icalcomponent_get_first_property(ev, ICAL_DUE_PROPERTY);
        eas_rec_time(d, rec, t, t->start, sp ? eas_ical_prop_time(root, sp) : c->now);
    }
    if (r.count > 0)
        eas_add_int(d, rec, t->occurrences, r.count);
    eas_add_int(d, rec, t->interval, r.interval > 0 ? r.interval : 1);
    if (type == 3 || type == 6)
        eas_add_int(d, rec, t->weekofmonth, week);
    if (type == 1 || type == 3 || type == 6)
        eas_add_int(d, rec, t->dayofweek, mask);
    if (type == 5 || type == 6)
        eas_add_int(d, rec, t->monthofyear, moy);
    if (!icaltime_is_null_time(r.until)) {
        icaltimezone *z =
            eas_prop_zone(root, icalcomponent_get_first_property(ev, ICAL_DTSTART_PROPERTY));
        eas_rec_time(d, rec, t, t->until,
                     eas_ical_tt(r.until, icaltime_is_utc(r.until) ? NULL : z));
    }
    if (type == 2 || type == 5)
        eas_add_int(d, rec, t->dayofmonth, dom);
    if (c->version >= EAS_V141 && r.week_start >= ICAL_SUNDAY_WEEKDAY &&
        r.week_start <= ICAL_SATURDAY_WEEKDAY && type == 1)
        eas_add_int(d, rec, t->firstdayofweek, (int)r.week_start - 1);
    if (t->regenerate) {
        eas_add_int(d, rec, t->regenerate, 0);
        eas_add_int(d, rec, t->deadoccur, 0);
    }
}

/* The fields an event and an exception share. */
static int eas_same_str(const char *a, const char *b)
{
    return (!a || !*a) ? (!b || !*b) : (b && !strcmp(a, b));
}

/* The attendees as one string (e-mail and status each), to tell an exception's from the
 * series'. */
static void eas_attendee_key(icalcomponent *ev, char *out, size_t outlen)
{
    size_t o = 0;

    out[0] = '\0';
    for (icalproperty *p = icalcomponent_get_first_property(ev, ICAL_ATTENDEE_PROPERTY);
         p && o + 1 < outlen; p = icalcomponent_get_next_property(ev, ICAL_ATTENDEE_PROPERTY)) {
        int n = snprintf(out + o, outlen - o, "%s/%d;", icalproperty_get_attendee(p) ?: "",
                         eas_partstat_status(p));
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

static void eas_cat_key(icalcomponent *ev, char *out, size_t outlen)
{
    const char *cats[64];
    char buf[2048];
    size_t n = eas_ical_categories(ev, buf, sizeof(buf), cats, 64), o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n && o + 1 < outlen; i++) {
        int k = snprintf(out + o, outlen - o, "%s,", cats[i]);
        if (k < 0)
            break;
        o += (size_t)k;
    }
}

/* The fields an event and an exception share. An exception (master non-NULL) lists only
 * what differs from the series: the rest is the series' (MS-ASCAL 2.2.2.21). */
static void eas_event_fields(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c,
                             icalcomponent *root, icalcomponent *ev, icalcomponent *master)
{
    const char *v;
    const char *cats[64];
    char catbuf[2048], k1[4096], k2[4096];
    size_t ncat;
    int64_t s, e, ms_, me_;
    int allday, mallday = 0, rem, resp, ms, exception = master != NULL;

    eas_span(root, ev, &s, &e, &allday);
    if (exception) {
        eas_span(root, master, &ms_, &me_, &mallday);
        eas_add_time(d, app, EAS_CALENDAR_STARTTIME, s);
        eas_add_time(d, app, EAS_CALENDAR_ENDTIME, e);
    }
    v = icalcomponent_get_summary(ev);
    if (v && (!exception || !eas_same_str(v, icalcomponent_get_summary(master))))
        eas_add_text(d, app, EAS_CALENDAR_SUBJECT, v);
    v = icalcomponent_get_location(ev);
    if (!exception || !eas_same_str(v, icalcomponent_get_location(master)))
        eas_location(d, app, c, v);
    if (!exception || eas_ical_sensitivity(ev) != eas_ical_sensitivity(master))
        eas_add_int(d, app, EAS_CALENDAR_SENSITIVITY, eas_ical_sensitivity(ev));
    if (!exception || eas_busy_status(ev) != eas_busy_status(master))
        eas_add_int(d, app, EAS_CALENDAR_BUSYSTATUS, eas_busy_status(ev));
    if (!exception || allday != mallday)
        eas_add_int(d, app, EAS_CALENDAR_ALLDAYEVENT, allday);
    if ((rem = eas_reminder(ev)) >= 0 && (!exception || rem != eas_reminder(master)))
        eas_add_int(d, app, EAS_CALENDAR_REMINDER, rem);
    if (!exception) {
        ms = eas_meeting_status(c, ev, &resp);
        eas_add_int(d, app, EAS_CALENDAR_MEETINGSTATUS, ms);
        if (c->version >= EAS_V140 && resp >= 0)
            eas_add_int(d, app, EAS_CALENDAR_RESPONSETYPE, resp);
    }
    eas_cat_key(ev, k1, sizeof(k1));
    if (exception)
        eas_cat_key(master, k2, sizeof(k2));
    if (!exception || strcmp(k1, k2)) {
        ncat = eas_ical_categories(ev, catbuf, sizeof(catbuf), cats, 64);
        eas_pim_categories(d, app, EAS_CALENDAR_CATEGORIES, EAS_CALENDAR_CATEGORY, cats, ncat);
    }
    if (exception && c->version >= EAS_V120) {
        eas_attendee_key(ev, k1, sizeof(k1));
        eas_attendee_key(master, k2, sizeof(k2));
        if (strcmp(k1, k2))
            eas_attendees(d, app, c, ev);
    }
    v = icalcomponent_get_description(ev);
    if (exception && v && !eas_same_str(v, icalcomponent_get_description(master)))
        eas_pim_body(d, app, c, v, EAS_CALENDAR_BODY, 0);
}

static void eas_exceptions(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c,
                           icalcomponent *root, icalcomponent *master)
{
    struct eas_node *list = NULL, *x;
    icaltimezone *z =
        eas_prop_zone(root, icalcomponent_get_first_property(master, ICAL_DTSTART_PROPERTY));
    int n = 0;

    for (icalproperty *p = icalcomponent_get_first_property(master, ICAL_EXDATE_PROPERTY);
         p && n < EAS_CAL_MAX_EXCEPTIONS;
         p = icalcomponent_get_next_property(master, ICAL_EXDATE_PROPERTY), n++) {
        int64_t t = eas_ical_tt(icalproperty_get_exdate(p), eas_prop_zone(root, p) ?: z);
        if (!list)
            list = eas_add(d, app, EAS_CALENDAR_EXCEPTIONS);
        x = eas_add(d, list, EAS_CALENDAR_EXCEPTION);
        eas_add_int(d, x, EAS_CALENDAR_DELETED, 1);
        if (c->version >= EAS_V160)
            eas_add_instance(d, x, t);
        else
            eas_add_time(d, x, EAS_CALENDAR_EXCEPTIONSTARTTIME, t);
    }
    for (icalcomponent *ev = icalcomponent_get_first_component(root, ICAL_VEVENT_COMPONENT);
         ev && n < EAS_CAL_MAX_EXCEPTIONS;
         ev = icalcomponent_get_next_component(root, ICAL_VEVENT_COMPONENT)) {
        icalproperty *rid = icalcomponent_get_first_property(ev, ICAL_RECURRENCEID_PROPERTY);
        int64_t t;
        if (!rid || ev == master)
            continue;
        n++;
        t = eas_ical_tt(icalproperty_get_recurrenceid(rid), eas_prop_zone(root, rid) ?: z);
        if (!list)
            list = eas_add(d, app, EAS_CALENDAR_EXCEPTIONS);
        x = eas_add(d, list, EAS_CALENDAR_EXCEPTION);
        if (icalcomponent_get_status(ev) == ICAL_STATUS_CANCELLED)
            eas_add_int(d, x, EAS_CALENDAR_DELETED, 1);
        if (c->version >= EAS_V160)
            eas_add_instance(d, x, t);
        else
            eas_add_time(d, x, EAS_CALENDAR_EXCEPTIONSTARTTIME, t);
        eas_event_fields(d, x, c, root, ev, master);
    }
}

icalcomponent *eas_ical_master(icalcomponent *root, icalcomponent_kind kind)
{
    icalcomponent *first = NULL;

    for (icalcomponent *ev = icalcomponent_get_first_component(root, kind); ev;
         ev = icalcomponent_get_next_component(root, kind)) {
        if (!first)
            first = ev;
        if (!icalcomponent_get_first_property(ev, ICAL_RECURRENCEID_PROPERTY))
            return ev;
    }
    return first;
}

icalcomponent *eas_ical_parse(const char *text, size_t len)
{
    dav_ical_lib_init(); /* libical errors must not abort the server */

    char *t = strndup(text, len);
    icalcomponent *root = t ? icalparser_parse_string(t) : NULL;

    free(t);
    if (root && icalcomponent_isa(root) != ICAL_VCALENDAR_COMPONENT) {
        icalcomponent_free(root);
        return NULL;
    }
    return root;
}

int eas_calendar_to_eas(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c,
                        const char *ical, size_t len)
{
    icalcomponent *root = eas_ical_parse(ical, len), *ev;
    icalproperty *org, *ps, *stamp;
    unsigned char blob[EAS_TZ_BLOB];
    char b64[256];
    int64_t s, e;
    int allday;
    const char *v;

    if (!root)
        return -1;
    if (!(ev = eas_ical_master(root, ICAL_VEVENT_COMPONENT))) {
        icalcomponent_free(root);
        return -1;
    }
    ps = icalcomponent_get_first_property(ev, ICAL_DTSTART_PROPERTY);
    eas_span(root, ev, &s, &e, &allday);
    /* all-day events are dates: they are sent as UTC midnights in a UTC zone */
    {
        icaltimezone *z = allday ? NULL : eas_prop_zone(root, ps);
        struct icaltimetype st = ps ? icalproperty_get_dtstart(ps) : icaltime_null_time();
        eas_tz_blob(z, st.year > 0 ? st.year : 2000, blob);
        b64_encode(blob, sizeof(blob), b64, sizeof(b64));
        eas_add_text(d, app, EAS_CALENDAR_TIMEZONE, b64);
    }
    stamp = icalcomponent_get_first_property(ev, ICAL_DTSTAMP_PROPERTY);
    eas_add_time(d, app, EAS_CALENDAR_DTSTAMP,
                 stamp ? eas_ical_tt(icalproperty_get_dtstamp(stamp), NULL) : c->now);
    eas_add_time(d, app, EAS_CALENDAR_STARTTIME, s);
    eas_add_time(d, app, EAS_CALENDAR_ENDTIME, e);
    if ((v = icalcomponent_get_uid(ev)))
        eas_add_text(d, app, EAS_CALENDAR_UID, v);
    if ((org = icalcomponent_get_first_property(ev, ICAL_ORGANIZER_PROPERTY))) {
        const char *cn = eas_param(org, ICAL_CN_PARAMETER);
        const char *mail = eas_mailto(icalproperty_get_organizer(org));
        eas_add_text(d, app, EAS_CALENDAR_ORGANIZERNAME, cn && *cn ? cn : mail);
        eas_add_text(d, app, EAS_CALENDAR_ORGANIZEREMAIL, mail);
    }
    eas_event_fields(d, app, c, root, ev, NULL);
    eas_attendees(d, app, c, ev);
    eas_recurrence_out(d, app, c, root, ev, &eas_rec_calendar);
    eas_exceptions(d, app, c, root, ev);
    eas_pim_body(d, app, c, icalcomponent_get_description(ev), EAS_CALENDAR_BODY,
                 EAS_CALENDAR_BODYTRUNCATED);
    icalcomponent_free(root);
    return 0;
}

/* ---- reading a device's event ----------------------------------------------------------- */

struct eas_cal_in {
    const struct eas_pim_ctx *c;
    icalcomponent *root;
    icaltimezone *zone; /* local zone of the times written; NULL: UTC */
    char tzid[128];
    int own_zone; /* zone was made here and must be freed */
};

void eas_ical_remove(icalcomponent *ev, icalproperty_kind k)
{
    icalproperty *p;

    while ((p = icalcomponent_get_first_property(ev, k))) {
        icalcomponent_remove_property(ev, p);
        icalproperty_free(p);
    }
}

static void eas_remove_x(icalcomponent *ev, const char *name)
{
    icalproperty *p = icalcomponent_get_first_property(ev, ICAL_X_PROPERTY), *next;

    for (; p; p = next) {
        next = icalcomponent_get_next_property(ev, ICAL_X_PROPERTY);
        if (icalproperty_get_x_name(p) && !strcasecmp(icalproperty_get_x_name(p), name)) {
            icalcomponent_remove_property(ev, p);
            icalproperty_free(p);
        }
    }
}

/* A DATE-TIME in the event's zone (TZID parameter), or UTC; a DATE when date. */
static icalproperty *eas_time_prop(struct eas_cal_in *in, icalproperty_kind k, int64_t t, int date)
{
    struct icaltimetype v;
    icalproperty *p;

    if (date) {
        v = dav_ical_tz_from_unix(t, in->zone);
        v.is_date = 1;
        v.hour = v.minute = v.second = 0;
        v.zone = NULL;
    } else if (in->zone) {
        v = dav_ical_tz_from_unix(t, in->zone); /* local time, with the TZID below */
        v.zone = NULL;
    } else {
        v = icaltime_from_timet_with_zone((time_t)t, 0, icaltimezone_get_utc_timezone());
    }
    p = icalproperty_new(k);
    icalproperty_set_value(p, date ? icalvalue_new_date(v) : icalvalue_new_datetime(v));
    if (date)
        icalproperty_add_parameter(p, icalparameter_new_value(ICAL_VALUE_DATE));
    else if (in->zone)
        icalproperty_add_parameter(p, icalparameter_new_tzid(in->tzid));
    return p;
}

static int eas_in_time(const struct eas_node *n, unsigned tag, int64_t *t)
{
    const char *s = eas_child_text(n, tag);

    return s && eas_pim_parse_time(s, t) == 0 ? 1 : 0;
}

/* Replaces the zone used for writing: the stored event's when the device's blob says the
 * same rules (its TZID survives), otherwise a VTIMEZONE made from the blob. */
static int eas_in_zone(struct eas_cal_in *in, const struct eas_node *app, icalcomponent *master)
{
    const char *b64 = eas_child_text(app, EAS_CALENDAR_TIMEZONE);
    unsigned char blob[EAS_TZ_BLOB + 4], mine[EAS_TZ_BLOB];
    icaltimezone *z;
    icalproperty *ps;
    icalcomponent *vtz;
    char *text;
    ssize_t n;

    if (!b64 ||
        (n = b64_decode(b64, strlen(b64), blob, sizeof(blob), B64_PAD_OPTIONAL)) < EAS_TZ_BLOB)
        return 0; /* no zone: UTC */
    if (eas_tz_blob_is_utc(blob))
        return 0;
    ps = master ? icalcomponent_get_first_property(master, ICAL_DTSTART_PROPERTY) : NULL;
    if ((z = eas_prop_zone(in->root, ps))) {
        struct icaltimetype st = icalproperty_get_dtstart(ps);
        eas_tz_blob(z, st.year, mine);
        if (eas_tz_blob_same(blob, mine)) {
            icalparameter *tz = icalproperty_get_first_parameter(ps, ICAL_TZID_PARAMETER);
            snprintf(in->tzid, sizeof(in->tzid), "%s", icalparameter_get_tzid(tz));
            in->zone = z;
            /* a built-in zone the calendar does not define yet gets its VTIMEZONE, under
             * the TZID the event uses (libical's own carries a vendor prefix); the zone is
             * loaded already (eas_tz_blob) and its component only read */
            if (!icalcomponent_get_timezone(in->root, in->tzid) &&
                (vtz = icaltimezone_get_component(z))) {
                icalcomponent *copy = icalcomponent_new_clone(vtz);
                icalproperty *id = icalcomponent_get_first_property(copy, ICAL_TZID_PROPERTY);
                if (id)
                    icalproperty_set_tzid(id, in->tzid);
                icalcomponent_add_component(in->root, copy);
            }
            return 0;
        }
    }
    if (!(text = eas_tz_vtimezone(blob, in->tzid, sizeof(in->tzid))))
        return -1;
    vtz = icalparser_parse_string(text);
    free(text);
    if (!vtz)
        return -1;
    /* a zone of the same name already in the calendar is replaced by the device's */
    for (icalcomponent *o = icalcomponent_get_first_component(in->root, ICAL_VTIMEZONE_COMPONENT);
         o; o = icalcomponent_get_next_component(in->root, ICAL_VTIMEZONE_COMPONENT)) {
        icalproperty *id = icalcomponent_get_first_property(o, ICAL_TZID_PROPERTY);
        if (id && !strcmp(icalproperty_get_tzid(id), in->tzid)) {
            icalcomponent_remove_component(in->root, o);
            icalcomponent_free(o);
            break;
        }
    }
    icalcomponent_add_component(in->root, vtz);
    in->zone = icaltimezone_new();
    in->own_zone = 1;
    if (!in->zone || !icaltimezone_set_component(in->zone, icalcomponent_new_clone(vtz)))
        return -1;
    return 0;
}

void eas_ical_set_text(icalcomponent *ev, icalproperty_kind k, const char *v)
{
    eas_ical_remove(ev, k);
    if (v && *v) {
        icalproperty *p = icalproperty_new(k);
        icalproperty_set_value(p, icalvalue_new_text(v));
        icalcomponent_add_property(ev, p);
    }
}

static const char *eas_in_location(const struct eas_node *app, int *present)
{
    const struct eas_node *l = eas_child(app, EAS_AIRSYNCBASE_LOCATION);

    *present = 1;
    if (l)
        return eas_child_text(l, EAS_AIRSYNCBASE_DISPLAYNAME) ?: "";
    if ((l = eas_child(app, EAS_CALENDAR_LOCATION)))
        return eas_text(l);
    *present = 0;
    return NULL;
}

static void eas_in_busy(icalcomponent *ev, int busy)
{
    static const char *const names[] = {"FREE", "TENTATIVE", "BUSY", "OOF", "WORKINGELSEWHERE"};

    eas_ical_remove(ev, ICAL_TRANSP_PROPERTY);
    eas_remove_x(ev, "X-MICROSOFT-CDO-BUSYSTATUS");
    if (busy < 0 || busy > 4)
        return;
    icalcomponent_add_property(
        ev, icalproperty_new_transp(busy == 0 ? ICAL_TRANSP_TRANSPARENT : ICAL_TRANSP_OPAQUE));
    {
        icalproperty *x = icalproperty_new_x(names[busy]);
        icalproperty_set_x_name(x, "X-MICROSOFT-CDO-BUSYSTATUS");
        icalcomponent_add_property(ev, x);
    }
}

static void eas_in_reminder(icalcomponent *ev, long long minutes)
{
    icalcomponent *a, *next;
    struct icaltriggertype tr;

    if (minutes >= 0 && eas_reminder(ev) == (int)minutes)
        return; /* unchanged: every stored alarm stays as it was */
    for (a = icalcomponent_get_first_component(ev, ICAL_VALARM_COMPONENT); a; a = next) {
        next = icalcomponent_get_next_component(ev, ICAL_VALARM_COMPONENT);
        icalcomponent_remove_component(ev, a);
        icalcomponent_free(a);
    }
    if (minutes < 0)
        return;
    memset(&tr, 0, sizeof(tr));
    tr.time = icaltime_null_time();
    tr.duration = icaldurationtype_from_int(-(int)(minutes > 40000000 ? 40000000 : minutes) * 60);
    a = icalcomponent_new_valarm();
    icalcomponent_add_property(a, icalproperty_new_action(ICAL_ACTION_DISPLAY));
    icalcomponent_add_property(a, icalproperty_new_description("Reminder"));
    icalcomponent_add_property(a, icalproperty_new_trigger(tr));
    icalcomponent_add_component(ev, a);
}

void eas_ical_categories_in(icalcomponent *ev, const struct eas_node *cats, unsigned cat_tag)
{
    eas_ical_remove(ev, ICAL_CATEGORIES_PROPERTY);
    for (const struct eas_node *n = cats ? eas_child(cats, cat_tag) : NULL; n;
         n = eas_next(n, cat_tag))
        if (*eas_text(n))
            icalcomponent_add_property(ev, icalproperty_new_categories(eas_text(n)));
}

icalproperty *eas_ical_attendee(icalcomponent *ev, const char *mail)
{
    for (icalproperty *p = icalcomponent_get_first_property(ev, ICAL_ATTENDEE_PROPERTY); p;
         p = icalcomponent_get_next_property(ev, ICAL_ATTENDEE_PROPERTY)) {
        const char *v = eas_mailto(icalproperty_get_attendee(p));
        if (v && !strcasecmp(v, mail))
            return p;
    }
    return NULL;
}

/* One attendee from the device. A stored attendee of the same address is the start, so
 * that what ActiveSync does not carry stays (RSVP, DELEGATED-FROM, SENT-BY, X- parameters),
 * as do its PARTSTAT when the device sends no AttendeeStatus (or 0, "response unknown"),
 * and its ROLE / CUTYPE when the device's AttendeeType says the same. */
static icalproperty *eas_in_attendee(icalproperty *old, const struct eas_node *a, const char *mail)
{
    static const icalparameter_partstat ps[] = {
        ICAL_PARTSTAT_NEEDSACTION, ICAL_PARTSTAT_NEEDSACTION, ICAL_PARTSTAT_TENTATIVE,
        ICAL_PARTSTAT_ACCEPTED,    ICAL_PARTSTAT_DECLINED,    ICAL_PARTSTAT_NEEDSACTION};
    const char *name = eas_child_text(a, EAS_CALENDAR_NAME);
    long long st = eas_child_int(a, EAS_CALENDAR_ATTENDEESTATUS, 0);
    long long ty = eas_child_int(a, EAS_CALENDAR_ATTENDEETYPE, 1);
    char uri[400];
    icalproperty *p;

    snprintf(uri, sizeof(uri), "mailto:%s", mail);
    p = old ? icalproperty_new_clone(old) : icalproperty_new_attendee(uri);
    if (!p)
        return NULL;
    icalproperty_remove_parameter_by_kind(p, ICAL_CN_PARAMETER);
    if (name && *name && strcmp(name, mail))
        icalproperty_add_parameter(p, icalparameter_new_cn(name));
    if (!old || (st > 0 && st <= 5)) {
        icalproperty_remove_parameter_by_kind(p, ICAL_PARTSTAT_PARAMETER);
        icalproperty_add_parameter(p, icalparameter_new_partstat(ps[st > 0 && st <= 5 ? st : 0]));
    }
    if (old && eas_attendee_type(old) == (ty == 2 || ty == 3 ? ty : 1))
        return p;
    icalproperty_remove_parameter_by_kind(p, ICAL_CUTYPE_PARAMETER);
    icalproperty_remove_parameter_by_kind(p, ICAL_ROLE_PARAMETER);
    if (ty == 3)
        icalproperty_add_parameter(p, icalparameter_new_cutype(ICAL_CUTYPE_RESOURCE));
    else
        icalproperty_add_parameter(p, icalparameter_new_role(ty == 2 ? ICAL_ROLE_OPTPARTICIPANT
                                                                     : ICAL_ROLE_REQPARTICIPANT));
    return p;
}

static void eas_in_attendees(icalcomponent *ev, const struct eas_node *list)
{
    icalproperty *made[EAS_CAL_MAX_ATTENDEES];
    int n = 0, i;

    for (const struct eas_node *a = eas_child(list, EAS_CALENDAR_ATTENDEE);
         a && n < EAS_CAL_MAX_ATTENDEES; a = eas_next(a, EAS_CALENDAR_ATTENDEE)) {
        const char *mail = eas_child_text(a, EAS_CALENDAR_EMAIL);
        icalproperty *p;

        if (!mail || !*mail || strlen(mail) > 320)
            continue;
        if ((p = eas_in_attendee(eas_ical_attendee(ev, mail), a, mail)))
            made[n++] = p;
    }
    eas_ical_remove(ev, ICAL_ATTENDEE_PROPERTY);
    for (i = 0; i < n; i++)
        icalcomponent_add_property(ev, made[i]);
}

static void eas_in_organizer(icalcomponent *ev, const struct eas_node *app,
                             const struct eas_pim_ctx *c)
{
    const char *mail = eas_child_text(app, EAS_CALENDAR_ORGANIZEREMAIL);
    const char *name = eas_child_text(app, EAS_CALENDAR_ORGANIZERNAME);
    char uri[400];
    icalproperty *p;

    if (!mail || !*mail) {
        /* a meeting needs an organizer: the device's user made it */
        if (icalcomponent_get_first_property(ev, ICAL_ORGANIZER_PROPERTY) ||
            !icalcomponent_get_first_property(ev, ICAL_ATTENDEE_PROPERTY) || !c->self)
            return;
        mail = c->self;
        name = NULL;
    }
    if (strlen(mail) > 320)
        return;
    eas_ical_remove(ev, ICAL_ORGANIZER_PROPERTY);
    snprintf(uri, sizeof(uri), "mailto:%s", mail);
    p = icalproperty_new_organizer(uri);
    if (name && *name && strcmp(name, mail))
        icalproperty_add_parameter(p, icalparameter_new_cn(name));
    icalcomponent_add_property(ev, p);
}

static const char *const eas_wd[] = {"SU", "MO", "TU", "WE", "TH", "FR", "SA"};

/* The RRULE of a Recurrence element; -1 when it makes no sense. */
static int eas_in_rrule(struct eas_cal_in *in, icalcomponent *ev, const struct eas_node *rec,
                        int allday, const struct eas_rec_tags *t)
{
    long long type = eas_child_int(rec, t->type, -1);
    long long iv = eas_child_int(rec, t->interval, 1);
    long long occ = eas_child_int(rec, t->occurrences, 0);
    long long dow = eas_child_int(rec, t->dayofweek, 0);
    long long dom = eas_child_int(rec, t->dayofmonth, 0);
    long long wom = eas_child_int(rec, t->weekofmonth, 0);
    long long moy = eas_child_int(rec, t->monthofyear, 0);
    long long fdow = eas_child_int(rec, t->firstdayofweek, -1);
    static const char *const freq[] = {"DAILY", "WEEKLY", "MONTHLY", "MONTHLY",
                                       "",      "YEARLY", "YEARLY"};
    char r[512], days[64] = "";
    size_t o;
    int64_t until;
    int ndays = 0;

    if (type < 0 || type > 6 || type == 4 || iv < 1 || iv > 999 || occ < 0 || occ > 999 ||
        dow < 0 || dow > 127 || dom < 0 || dom > 31 || wom < 0 || wom > 5 || moy < 0 || moy > 12)
        return -1;
    for (int i = 0; i < 7; i++)
        if (dow & (1 << i)) {
            size_t l = strlen(days);
            snprintf(days + l, sizeof(days) - l, "%s%s", ndays++ ? "," : "", eas_wd[i]);
        }
    if (type == 0 && ndays)
        type = 1; /* daily on given weekdays is weekly on them */
    o = (size_t)snprintf(r, sizeof(r), "FREQ=%s;INTERVAL=%lld", freq[type], iv);
    switch (type) {
    case 1:
        if (ndays)
            o += (size_t)snprintf(r + o, sizeof(r) - o, ";BYDAY=%s", days);
        break;
    case 2:
        if (dom)
            o += (size_t)snprintf(r + o, sizeof(r) - o, ";BYMONTHDAY=%lld", dom);
        break;
    case 5:
        if (moy)
            o += (size_t)snprintf(r + o, sizeof(r) - o, ";BYMONTH=%lld", moy);
        if (dom)
            o += (size_t)snprintf(r + o, sizeof(r) - o, ";BYMONTHDAY=%lld", dom);
        break;
    case 3:
    case 6:
        if (!ndays || !wom)
            return -1;
        if (type == 6 && moy)
            o += (size_t)snprintf(r + o, sizeof(r) - o, ";BYMONTH=%lld", moy);
        if (ndays == 1)
            o += (size_t)snprintf(r + o, sizeof(r) - o, ";BYDAY=%d%s", wom == 5 ? -1 : (int)wom,
                                  days);
        else
            o += (size_t)snprintf(r + o, sizeof(r) - o, ";BYDAY=%s;BYSETPOS=%d", days,
                                  wom == 5 ? -1 : (int)wom);
        break;
    default:
        break;
    }
    if (occ > 0)
        o += (size_t)snprintf(r + o, sizeof(r) - o, ";COUNT=%lld", occ);
    else if (eas_in_time(rec, t->until, &until)) {
        char u[32];
        if (allday) {
            struct icaltimetype d = dav_ical_tz_from_unix(until, in->zone);
            snprintf(u, sizeof(u), "%04d%02d%02d", d.year, d.month, d.day);
        } else {
            eas_pim_compact_time(u, sizeof(u), until);
        }
        o += (size_t)snprintf(r + o, sizeof(r) - o, ";UNTIL=%s", u);
    }
    if (fdow >= 0 && fdow <= 6)
        o += (size_t)snprintf(r + o, sizeof(r) - o, ";WKST=%s", eas_wd[fdow]);
    if (o >= sizeof(r))
        return -1;
    eas_ical_remove(ev, ICAL_RRULE_PROPERTY);
    {
        struct icalrecurrencetype rt = icalrecurrencetype_from_string(r);
        if (rt.freq == ICAL_NO_RECURRENCE)
            return -1;
        icalcomponent_add_property(ev, icalproperty_new_rrule(rt));
    }
    return 0;
}

/* 1 when the user organises the meeting (it has attendees and the ORGANIZER is the user
 * or absent). */
static int eas_cal_organizes(const struct eas_pim_ctx *c, icalcomponent *ev)
{
    icalproperty *org = icalcomponent_get_first_property(ev, ICAL_ORGANIZER_PROPERTY);

    if (!icalcomponent_get_first_property(ev, ICAL_ATTENDEE_PROPERTY))
        return 0;
    return !org || eas_is_self(c, eas_mailto(icalproperty_get_organizer(org)));
}

/* An element the device left out that keeps its stored value: from 16.0 every top-level
 * Calendar element is ghosted when absent (MS-ASCAL 3.1.5.3); before, those outside the
 * device's Supported list. */
static int eas_cal_ghosted(const struct eas_pim_ctx *c, const struct eas_node *app, unsigned tag)
{
    if (c->version >= EAS_V160 && !eas_child(app, tag))
        return 1;
    return eas_pim_ghosted(c, app, tag);
}

/* Whether an element the device left out is removed: for the series, unless it is
 * ghosted (not in the device's Supported list); never for an exception, where absent
 * means "as the series". */
#define EAS_IN_ALL(tag) (!exception && !eas_cal_ghosted(c, app, (tag)))

/* The fields a device sends for an event or an exception. For an exception, absent
 * fields mean "as the series" and leave the override's copy alone. */
static int eas_in_fields(struct eas_cal_in *in, icalcomponent *ev, const struct eas_node *app,
                         int exception, int allday)
{
    const struct eas_pim_ctx *c = in->c;
    const struct eas_node *n;
    const char *v;
    char *body;
    int64_t s, e;
    int present;

    if (eas_in_time(app, EAS_CALENDAR_STARTTIME, &s)) {
        eas_ical_remove(ev, ICAL_DTSTART_PROPERTY);
        icalcomponent_add_property(ev, eas_time_prop(in, ICAL_DTSTART_PROPERTY, s, allday));
        if (!eas_in_time(app, EAS_CALENDAR_ENDTIME, &e) || e < s)
            e = s + (allday ? 86400 : 0);
        if (allday && e < s + 86400)
            e = s + 86400;
        eas_ical_remove(ev, ICAL_DTEND_PROPERTY);
        eas_ical_remove(ev, ICAL_DURATION_PROPERTY);
        icalcomponent_add_property(ev, eas_time_prop(in, ICAL_DTEND_PROPERTY, e, allday));
    } else if (!exception && !(eas_cal_ghosted(c, app, EAS_CALENDAR_STARTTIME) &&
                               icalcomponent_get_first_property(ev, ICAL_DTSTART_PROPERTY))) {
        /* an event needs a start: a new one from the device, or a Change that removes
         * it; a ghosted StartTime (any 16.x Change without one) keeps the stored times */
        return -1;
    }
    if ((v = eas_child_text(app, EAS_CALENDAR_SUBJECT)) || EAS_IN_ALL(EAS_CALENDAR_SUBJECT))
        eas_ical_set_text(ev, ICAL_SUMMARY_PROPERTY, v);
    if ((v = eas_in_location(app, &present)) ||
        (EAS_IN_ALL(EAS_CALENDAR_LOCATION) || EAS_IN_ALL(EAS_AIRSYNCBASE_LOCATION)))
        eas_ical_set_text(ev, ICAL_LOCATION_PROPERTY, v);
    if ((n = eas_child(app, EAS_CALENDAR_SENSITIVITY)) || EAS_IN_ALL(EAS_CALENDAR_SENSITIVITY)) {
        eas_ical_set_sensitivity(ev, n ? atoll(eas_text(n)) : 0);
    }
    if ((n = eas_child(app, EAS_CALENDAR_BUSYSTATUS)) || EAS_IN_ALL(EAS_CALENDAR_BUSYSTATUS))
        eas_in_busy(ev, n ? atoi(eas_text(n)) : 2);
    if ((n = eas_child(app, EAS_CALENDAR_REMINDER)) || EAS_IN_ALL(EAS_CALENDAR_REMINDER))
        eas_in_reminder(ev, n && *eas_text(n) ? atoll(eas_text(n)) : -1);
    if ((n = eas_child(app, EAS_CALENDAR_CATEGORIES)) || EAS_IN_ALL(EAS_CALENDAR_CATEGORIES))
        eas_ical_categories_in(ev, n, EAS_CALENDAR_CATEGORY);
    if ((n = eas_child(app, EAS_CALENDAR_MEETINGSTATUS))) {
        long long ms = atoll(eas_text(n));
        if (ms == 5 || ms == 7 || ms == 13 || ms == 15)
            icalcomponent_set_status(ev, ICAL_STATUS_CANCELLED);
        else if (icalcomponent_get_status(ev) == ICAL_STATUS_CANCELLED)
            eas_ical_remove(ev, ICAL_STATUS_PROPERTY);
    }
    if ((n = eas_child(app, EAS_CALENDAR_ATTENDEES)))
        eas_in_attendees(ev, n);
    if (!exception)
        eas_in_organizer(ev, app, c);
    /* a body left out keeps the stored one: devices do not send back what they got
     * truncated */
    if ((body = eas_pim_body_text(app, EAS_CALENDAR_BODY, &present)))
        eas_ical_set_text(ev, ICAL_DESCRIPTION_PROPERTY, body);
    free(body);
    return 0;
}

#undef EAS_IN_ALL

void eas_ical_stamp(icalcomponent *ev, int64_t now)
{
    struct icaltimetype t =
        icaltime_from_timet_with_zone((time_t)now, 0, icaltimezone_get_utc_timezone());

    eas_ical_remove(ev, ICAL_DTSTAMP_PROPERTY);
    eas_ical_remove(ev, ICAL_LASTMODIFIED_PROPERTY);
    icalcomponent_add_property(ev, icalproperty_new_dtstamp(t));
    icalcomponent_add_property(ev, icalproperty_new_lastmodified(t));
}

/* The original start of an exception the device names (ExceptionStartTime or, 16.x,
 * InstanceId). */
static int eas_in_instance(const struct eas_node *x, int64_t *t)
{
    return eas_in_time(x, EAS_CALENDAR_EXCEPTIONSTARTTIME, t) ||
           eas_in_time(x, EAS_AIRSYNCBASE_INSTANCEID, t);
}

/* The stored override of an instance, NULL when none. */
static icalcomponent *eas_find_override(struct eas_cal_in *in, icalcomponent *master, int64_t t)
{
    icaltimezone *z =
        eas_prop_zone(in->root, icalcomponent_get_first_property(master, ICAL_DTSTART_PROPERTY));

    for (icalcomponent *ev = icalcomponent_get_first_component(in->root, ICAL_VEVENT_COMPONENT); ev;
         ev = icalcomponent_get_next_component(in->root, ICAL_VEVENT_COMPONENT)) {
        icalproperty *rid = icalcomponent_get_first_property(ev, ICAL_RECURRENCEID_PROPERTY);
        if (rid && ev != master &&
            eas_ical_tt(icalproperty_get_recurrenceid(rid), eas_prop_zone(in->root, rid) ?: z) == t)
            return ev;
    }
    return NULL;
}

/* A new override of the instance starting at t: a copy of the series (an override holds
 * every property, RFC 5545 3.8.4.4) moved to t, without the rule. */
static icalcomponent *eas_new_override(struct eas_cal_in *in, icalcomponent *master, int64_t t,
                                       int allday)
{
    icalcomponent *ov = icalcomponent_new_clone(master);
    icalproperty *cls = icalcomponent_get_first_property(master, ICAL_CLASS_PROPERTY), *copy;
    int64_t ms, me;
    int ad;

    /* libical's clone loses the text of an x-name CLASS (CLASS:X-PERSONAL comes out as
     * "CLASS:"): the override gets the series' CLASS again from its text */
    if (cls && icalproperty_get_class(cls) == ICAL_CLASS_X) {
        eas_ical_remove(ov, ICAL_CLASS_PROPERTY);
        if ((copy = icalproperty_new_from_string(icalproperty_as_ical_string(cls))))
            icalcomponent_add_property(ov, copy);
    }
    eas_span(in->root, master, &ms, &me, &ad);
    eas_ical_remove(ov, ICAL_RRULE_PROPERTY);
    eas_ical_remove(ov, ICAL_RDATE_PROPERTY);
    eas_ical_remove(ov, ICAL_EXDATE_PROPERTY);
    eas_ical_remove(ov, ICAL_DTSTART_PROPERTY);
    eas_ical_remove(ov, ICAL_DTEND_PROPERTY);
    eas_ical_remove(ov, ICAL_DURATION_PROPERTY);
    icalcomponent_add_property(ov, eas_time_prop(in, ICAL_DTSTART_PROPERTY, t, allday));
    icalcomponent_add_property(ov, eas_time_prop(in, ICAL_DTEND_PROPERTY, t + (me - ms), allday));
    icalcomponent_add_property(ov, eas_time_prop(in, ICAL_RECURRENCEID_PROPERTY, t, allday));
    icalcomponent_add_component(in->root, ov);
    return ov;
}

/* Rebuilds EXDATEs and overrides from the device's Exceptions; stored overrides of
 * instances the device still lists keep their other properties. */
static int eas_in_exceptions(struct eas_cal_in *in, icalcomponent *master,
                             const struct eas_node *xs, int allday)
{
    icalcomponent *keep[EAS_CAL_MAX_EXCEPTIONS];
    size_t nkeep = 0;

    eas_ical_remove(master, ICAL_EXDATE_PROPERTY);
    for (const struct eas_node *x = xs ? eas_child(xs, EAS_CALENDAR_EXCEPTION) : NULL;
         x && nkeep < EAS_CAL_MAX_EXCEPTIONS; x = eas_next(x, EAS_CALENDAR_EXCEPTION)) {
        int64_t t;
        icalcomponent *ov;
        if (!eas_in_instance(x, &t))
            return -1;
        if (eas_child_int(x, EAS_CALENDAR_DELETED, 0) == 1) {
            icalproperty *p = eas_time_prop(in, ICAL_EXDATE_PROPERTY, t, allday);
            icalcomponent_add_property(master, p);
            continue;
        }
        if (!(ov = eas_find_override(in, master, t)))
            ov = eas_new_override(in, master, t, allday);
        if (eas_in_fields(in, ov, x, 1, allday) < 0)
            return -1;
        eas_ical_stamp(ov, in->c->now);
        keep[nkeep++] = ov;
    }
    /* overrides the device no longer lists are gone */
    for (icalcomponent *ev = icalcomponent_get_first_component(in->root, ICAL_VEVENT_COMPONENT),
                       *next;
         ev; ev = next) {
        int kept = ev == master;
        next = icalcomponent_get_next_component(in->root, ICAL_VEVENT_COMPONENT);
        for (size_t i = 0; i < nkeep && !kept; i++)
            kept = keep[i] == ev;
        if (!kept) {
            icalcomponent_remove_component(in->root, ev);
            icalcomponent_free(ev);
        }
    }
    return 0;
}

icalcomponent *eas_ical_new(icalcomponent_kind kind, icalcomponent **comp)
{
    icalcomponent *root = icalcomponent_new_vcalendar();

    icalcomponent_add_property(root, icalproperty_new_version("2.0"));
    icalcomponent_add_property(root, icalproperty_new_prodid("-//Polaris//ActiveSync//EN"));
    *comp = icalcomponent_new(kind);
    icalcomponent_add_component(root, *comp);
    return root;
}

/* The UID of a device's new item: UID, else ClientUid (16.x), else a new UUID. */
static void eas_in_uid(const struct eas_node *app, unsigned uid_tag, char *out, size_t outlen)
{
    const char *u = uid_tag ? eas_child_text(app, uid_tag) : NULL;

    if (!u || !*u)
        u = eas_child_text(app, EAS_CALENDAR_CLIENTUID);
    if (u && *u && strlen(u) < outlen && !strpbrk(u, "\r\n"))
        snprintf(out, outlen, "%s", u);
    else
        eas_pim_uuid(out, outlen);
}

int eas_ical_finish(icalcomponent *root, struct eas_pim_out *out)
{
    char *s = icalcomponent_as_ical_string_r(root);

    if (!s)
        return -1;
    out->text = s;
    out->len = strlen(s);
    return 0;
}

int eas_calendar_from_eas(const struct eas_node *app, const struct eas_pim_ctx *c, const char *base,
                          size_t baselen, struct eas_pim_out *out)
{
    struct eas_cal_in in = {.c = c};
    icalcomponent *ev = NULL;
    const struct eas_node *rec;
    int allday = eas_child_int(app, EAS_CALENDAR_ALLDAYEVENT, 0) == 1, rc = -1;

    memset(out, 0, sizeof(*out));
    if (base && (in.root = eas_ical_parse(base, baselen)))
        ev = eas_ical_master(in.root, ICAL_VEVENT_COMPONENT);
    if (!ev) {
        if (in.root)
            icalcomponent_free(in.root);
        in.root = eas_ical_new(ICAL_VEVENT_COMPONENT, &ev);
        eas_in_uid(app, EAS_CALENDAR_UID, out->uid, sizeof(out->uid));
        icalcomponent_set_uid(ev, out->uid);
    } else {
        snprintf(out->uid, sizeof(out->uid), "%s", icalcomponent_get_uid(ev) ?: "");
        if (!out->uid[0]) {
            eas_pim_uuid(out->uid, sizeof(out->uid));
            icalcomponent_set_uid(ev, out->uid);
        }
    }
    /* AllDayEvent left out of a Change that ghosts it (16.x): as stored, so that new
     * times, if any, are read the way the event is kept */
    if (base && !eas_child(app, EAS_CALENDAR_ALLDAYEVENT) &&
        eas_cal_ghosted(c, app, EAS_CALENDAR_ALLDAYEVENT) &&
        icalcomponent_get_first_property(ev, ICAL_DTSTART_PROPERTY))
        allday = icalcomponent_get_dtstart(ev).is_date;
    /* for an all-day event the zone only turns the device's UTC midnights into days */
    if (eas_in_zone(&in, app, ev) < 0 || eas_in_fields(&in, ev, app, 0, allday) < 0)
        goto out;
    rec = eas_child(app, EAS_CALENDAR_RECURRENCE);
    if (rec) {
        if (eas_in_rrule(&in, ev, rec, allday, &eas_rec_calendar) < 0)
            goto out;
    } else if (!eas_cal_ghosted(c, app, EAS_CALENDAR_RECURRENCE)) {
        eas_ical_remove(ev, ICAL_RRULE_PROPERTY);
        eas_ical_remove(ev, ICAL_RDATE_PROPERTY);
    }
    /* the exceptions follow the rule, unless the device does not do exceptions at all */
    if (!eas_cal_ghosted(c, app, EAS_CALENDAR_EXCEPTIONS) &&
        (rec || !eas_cal_ghosted(c, app, EAS_CALENDAR_RECURRENCE)) &&
        eas_in_exceptions(&in, ev, rec ? eas_child(app, EAS_CALENDAR_EXCEPTIONS) : NULL, allday) <
            0)
        goto out;
    /* 16.x: the server mails attendees an organizer's change (eas_itip.c); a change of
     * the meeting is a new revision of it (RFC 5546 2.1.4) */
    if (base && c->version >= EAS_V160 && eas_cal_organizes(c, ev))
        icalcomponent_set_sequence(ev, icalcomponent_get_sequence(ev) + 1);
    eas_ical_stamp(ev, c->now);
    rc = eas_ical_finish(in.root, out);
out:
    if (in.own_zone)
        icaltimezone_free(in.zone, 1);
    icalcomponent_free(in.root);
    return rc;
}

/* ---- one occurrence (16.x InstanceId) ------------------------------------------------------ */

/* Writing in the series' own zone: its TZID stays. */
static void eas_series_zone(struct eas_cal_in *in, icalcomponent *master)
{
    icalproperty *ps = icalcomponent_get_first_property(master, ICAL_DTSTART_PROPERTY);
    icalparameter *tz = ps ? icalproperty_get_first_parameter(ps, ICAL_TZID_PARAMETER) : NULL;

    if (tz && (in->zone = eas_prop_zone(in->root, ps)))
        snprintf(in->tzid, sizeof(in->tzid), "%s", icalparameter_get_tzid(tz));
}

icalcomponent *eas_calendar_override(icalcomponent *root, int64_t instance)
{
    struct eas_cal_in in = {.root = root};
    icalcomponent *master = eas_ical_master(root, ICAL_VEVENT_COMPONENT), *ov;
    struct icaltimetype st;

    if (!master || !icalcomponent_get_first_property(master, ICAL_RRULE_PROPERTY))
        return master; /* not a series: the event itself */
    eas_series_zone(&in, master);
    if ((ov = eas_find_override(&in, master, instance)))
        return ov;
    st = icalcomponent_get_dtstart(master);
    return eas_new_override(&in, master, instance, st.is_date);
}

int eas_calendar_instance(const struct eas_node *app, const struct eas_pim_ctx *c, const char *base,
                          size_t baselen, int64_t instance, struct eas_pim_out *out)
{
    struct eas_cal_in in = {.c = c};
    icalcomponent *master, *ov;
    int allday, rc = -1;

    memset(out, 0, sizeof(*out));
    if (!(in.root = eas_ical_parse(base, baselen)))
        return -1;
    master = eas_ical_master(in.root, ICAL_VEVENT_COMPONENT);
    if (!master || !icalcomponent_get_first_property(master, ICAL_RRULE_PROPERTY))
        goto out;
    snprintf(out->uid, sizeof(out->uid), "%s", icalcomponent_get_uid(master) ?: "");
    eas_series_zone(&in, master);
    allday = icalcomponent_get_dtstart(master).is_date;
    ov = eas_find_override(&in, master, instance);
    if (!app) {
        /* the occurrence is deleted: an EXDATE, and its override goes */
        if (ov) {
            icalcomponent_remove_component(in.root, ov);
            icalcomponent_free(ov);
        }
        icalcomponent_add_property(master,
                                   eas_time_prop(&in, ICAL_EXDATE_PROPERTY, instance, allday));
        eas_ical_stamp(master, c->now);
    } else {
        if (!ov)
            ov = eas_new_override(&in, master, instance, allday);
        if (eas_in_fields(&in, ov, app, 1, allday) < 0)
            goto out;
        eas_ical_stamp(ov, c->now);
    }
    rc = eas_ical_finish(in.root, out);
out:
    icalcomponent_free(in.root);
    return rc;
}

int eas_recurrence_in(icalcomponent *comp, const struct eas_node *rec, const struct eas_rec_tags *t)
{
    struct eas_cal_in in = {0};
    icalproperty *sp = icalcomponent_get_first_property(comp, ICAL_DTSTART_PROPERTY);

    return eas_in_rrule(&in, comp, rec, sp ? icalproperty_get_dtstart(sp).is_date : 0, t);
}
