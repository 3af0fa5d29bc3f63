/*
 * eas_task.c — iCalendar VTODO ↔ the ActiveSync Tasks class (MS-ASTASK): subject, body,
 * importance, start and due dates (UTC and local forms), completion, sensitivity, the
 * reminder, categories and the recurrence. A device's Change is merged into the stored
 * VTODO so that what ActiveSync does not carry (X- properties, related-to...) survives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eas/eas_pim.h"

static int eas_task_importance(icalcomponent *t)
{
    icalproperty *p = icalcomponent_get_first_property(t, ICAL_PRIORITY_PROPERTY);
    int v = p ? icalproperty_get_priority(p) : 0;

    if (v >= 1 && v <= 4)
        return 2;
    if (v >= 6 && v <= 9)
        return 0;
    return 1;
}

/* A device's wall-clock offset from UTC for a UTC date, kept as a parameter of DUE /
 * DTSTART (seconds, as text): a device sends both UtcDueDate and DueDate (its own local
 * time) but a VTODO from ActiveSync has no zone, so without it the other devices would get
 * the UTC time as the local one. */
#define EAS_TASK_OFFSET_PARAM "X-EAS-UTC-OFFSET"
#define EAS_TASK_OFFSET_MAX   (14 * 3600)

/* The offset stored on p, 0 when none or out of range. */
static int64_t eas_task_offset(icalproperty *p)
{
    icalparameter *x;
    long long off;
    char *end;

    for (x = icalproperty_get_first_parameter(p, ICAL_X_PARAMETER); x;
         x = icalproperty_get_next_parameter(p, ICAL_X_PARAMETER)) {
        if (!icalparameter_get_xname(x) ||
            strcasecmp(icalparameter_get_xname(x), EAS_TASK_OFFSET_PARAM) ||
            !icalparameter_get_xvalue(x))
            continue;
        off = strtoll(icalparameter_get_xvalue(x), &end, 10);
        if (*end || off < -EAS_TASK_OFFSET_MAX || off > EAS_TASK_OFFSET_MAX)
            return 0;
        return (int64_t)off;
    }
    return 0;
}

/* A date of the task in both forms: Utc* as the instant, the other as local wall clock
 * (the zone's, or UTC for floating and UTC times, moved by the device's offset when one
 * is stored). */
static void eas_task_date(struct eas_doc *d, struct eas_node *app, icalcomponent *root,
                          icalproperty *p, unsigned utc_tag, unsigned local_tag)
{
    struct icaltimetype t;
    char buf[40];
    int64_t utc, local;

    if (!p)
        return;
    t = icalvalue_get_datetime(icalproperty_get_value(p));
    utc = eas_ical_prop_time(root, p);
    if (icaltime_is_utc(t))
        local = utc + eas_task_offset(p);
    else {
        t.zone = NULL; /* the wall clock as it is written */
        local = eas_ical_tt(t, NULL);
    }
    eas_pim_iso_time(buf, sizeof(buf), utc);
    eas_add_text(d, app, utc_tag, buf);
    eas_pim_iso_time(buf, sizeof(buf), local);
    eas_add_text(d, app, local_tag, buf);
}

static int eas_task_done(icalcomponent *t)
{
    return icalcomponent_get_status(t) == ICAL_STATUS_COMPLETED ||
           icalcomponent_get_first_property(t, ICAL_COMPLETED_PROPERTY) != NULL;
}

/* The absolute time of the first alarm (relative ones from the start or due date). */
static int64_t eas_task_alarm(icalcomponent *root, icalcomponent *t)
{
    icalcomponent *a = icalcomponent_get_first_component(t, ICAL_VALARM_COMPONENT);
    icalproperty *tp = a ? icalcomponent_get_first_property(a, ICAL_TRIGGER_PROPERTY) : NULL;
    struct icaltriggertype tr;
    icalparameter *rel;
    icalproperty *anchor;

    if (!tp)
        return 0;
    tr = icalproperty_get_trigger(tp);
    if (!icaltime_is_null_time(tr.time))
        return eas_ical_tt(tr.time, NULL);
    rel = icalproperty_get_first_parameter(tp, ICAL_RELATED_PARAMETER);
    anchor = icalcomponent_get_first_property(
        t, rel && icalparameter_get_related(rel) == ICAL_RELATED_END ? ICAL_DUE_PROPERTY
                                                                     : ICAL_DTSTART_PROPERTY);
    if (!anchor)
        anchor = icalcomponent_get_first_property(t, ICAL_DUE_PROPERTY);
    if (!anchor)
        return 0;
    return eas_ical_prop_time(root, anchor) + icaldurationtype_as_int(tr.duration);
}

int eas_task_to_eas(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c,
                    const char *ical, size_t len)
{
    icalcomponent *root = eas_ical_parse(ical, len), *t;
    icalproperty *p;
    const char *cats[64];
    char catbuf[2048], buf[40];
    size_t ncat;
    int64_t alarm;
    int done;

    if (!root)
        return -1;
    if (!(t = eas_ical_master(root, ICAL_VTODO_COMPONENT))) {
        icalcomponent_free(root);
        return -1;
    }
    eas_pim_body(d, app, c, icalcomponent_get_description(t), EAS_TASKS_BODY,
                 EAS_TASKS_BODYTRUNCATED);
    eas_add_text(d, app, EAS_TASKS_SUBJECT, icalcomponent_get_summary(t) ?: "");
    eas_add_int(d, app, EAS_TASKS_IMPORTANCE, eas_task_importance(t));
    eas_task_date(d, app, root, icalcomponent_get_first_property(t, ICAL_DTSTART_PROPERTY),
                  EAS_TASKS_UTCSTARTDATE, EAS_TASKS_STARTDATE);
    eas_task_date(d, app, root, icalcomponent_get_first_property(t, ICAL_DUE_PROPERTY),
                  EAS_TASKS_UTCDUEDATE, EAS_TASKS_DUEDATE);
    ncat = eas_ical_categories(t, catbuf, sizeof(catbuf), cats, 64);
    eas_pim_categories(d, app, EAS_TASKS_CATEGORIES, EAS_TASKS_CATEGORY, cats, ncat);
    eas_recurrence_out(d, app, c, root, t, &eas_rec_tasks);
    done = eas_task_done(t);
    eas_add_int(d, app, EAS_TASKS_COMPLETE, done);
    if (done) {
        /* DateCompleted is required with Complete 1; a todo marked COMPLETED without the
         * time (STATUS or PERCENT-COMPLETE only) gets its last change, which stays the
         * same from one Sync to the next, where the time of the answer would not */
        p = icalcomponent_get_first_property(t, ICAL_COMPLETED_PROPERTY);
        if (!p)
            p = icalcomponent_get_first_property(t, ICAL_LASTMODIFIED_PROPERTY);
        if (!p)
            p = icalcomponent_get_first_property(t, ICAL_DTSTAMP_PROPERTY);
        eas_pim_iso_time(buf, sizeof(buf), p ? eas_ical_prop_time(root, p) : c->now);
        eas_add_text(d, app, EAS_TASKS_DATECOMPLETED, buf);
    }
    eas_add_int(d, app, EAS_TASKS_SENSITIVITY, eas_ical_sensitivity(t));
    alarm = eas_task_alarm(root, t);
    eas_add_int(d, app, EAS_TASKS_REMINDERSET, alarm > 0);
    if (alarm > 0) {
        eas_pim_iso_time(buf, sizeof(buf), alarm);
        eas_add_text(d, app, EAS_TASKS_REMINDERTIME, buf);
    }
    icalcomponent_free(root);
    return 0;
}

int eas_task_completed(const char *ical, size_t len)
{
    icalcomponent *root = eas_ical_parse(ical, len), *t;
    int done = 0;

    if (root && (t = eas_ical_master(root, ICAL_VTODO_COMPONENT)))
        done = eas_task_done(t);
    if (root)
        icalcomponent_free(root);
    return done;
}

/* A date from the device: the Utc form when given, else the local one (as UTC); with
 * both, the local one's offset is kept (EAS_TASK_OFFSET_PARAM). The same instant as the
 * stored date leaves that as it is: a device sends back every date it got with any
 * change, and a CalDAV client's DUE;VALUE=DATE or DUE;TZID=... would otherwise turn into
 * a UTC time. */
static void eas_task_in_date(icalcomponent *root, icalcomponent *t, const struct eas_node *app,
                             unsigned utc_tag, unsigned local_tag, icalproperty_kind k)
{
    const char *s = eas_child_text(app, utc_tag), *ls = eas_child_text(app, local_tag);
    int64_t v, lv;
    icalproperty *p;
    icalparameter *x;
    char off[24];

    if (!s)
        s = ls;
    p = icalcomponent_get_first_property(t, k);
    if (p && s && eas_pim_parse_time(s, &v) == 0 && eas_ical_prop_time(root, p) == v)
        return;
    eas_ical_remove(t, k);
    if (!s || eas_pim_parse_time(s, &v) < 0)
        return;
    p = icalproperty_new(k);
    icalproperty_set_value(p, icalvalue_new_datetime(icaltime_from_timet_with_zone(
                                  (time_t)v, 0, icaltimezone_get_utc_timezone())));
    if (ls && s != ls && eas_pim_parse_time(ls, &lv) == 0 && lv != v &&
        lv - v >= -EAS_TASK_OFFSET_MAX && lv - v <= EAS_TASK_OFFSET_MAX) {
        snprintf(off, sizeof(off), "%lld", (long long)(lv - v));
        x = icalparameter_new_x(off);
        icalparameter_set_xname(x, EAS_TASK_OFFSET_PARAM);
        icalproperty_add_parameter(p, x);
    }
    icalcomponent_add_property(t, p);
}

static void eas_task_in_done(icalcomponent *t, const struct eas_node *app, int64_t now)
{
    int done = eas_child_int(app, EAS_TASKS_COMPLETE, 0) == 1;
    const char *s = eas_child_text(app, EAS_TASKS_DATECOMPLETED);
    int64_t when = now;

    if (!done) {
        eas_ical_remove(t, ICAL_COMPLETED_PROPERTY);
        if (icalcomponent_get_status(t) == ICAL_STATUS_COMPLETED)
            icalcomponent_set_status(t, ICAL_STATUS_NEEDSACTION);
        return;
    }
    if (s)
        eas_pim_parse_time(s, &when);
    if (eas_task_done(t) && !s)
        return; /* already complete: its completion time stays */
    eas_ical_remove(t, ICAL_COMPLETED_PROPERTY);
    eas_ical_remove(t, ICAL_PERCENTCOMPLETE_PROPERTY);
    icalcomponent_add_property(t, icalproperty_new_completed(icaltime_from_timet_with_zone(
                                      (time_t)when, 0, icaltimezone_get_utc_timezone())));
    icalcomponent_add_property(t, icalproperty_new_percentcomplete(100));
    icalcomponent_set_status(t, ICAL_STATUS_COMPLETED);
}

static void eas_task_in_alarm(icalcomponent *root, icalcomponent *t, const struct eas_node *app)
{
    const char *s = eas_child_text(app, EAS_TASKS_REMINDERTIME);
    int set = eas_child_int(app, EAS_TASKS_REMINDERSET, 0) == 1;
    int64_t when;
    icalcomponent *a, *next;
    struct icaltriggertype tr;

    if (set && s && eas_pim_parse_time(s, &when) == 0 && eas_task_alarm(root, t) == when)
        return; /* unchanged: stored alarms stay as they are */
    for (a = icalcomponent_get_first_component(t, ICAL_VALARM_COMPONENT); a; a = next) {
        next = icalcomponent_get_next_component(t, ICAL_VALARM_COMPONENT);
        icalcomponent_remove_component(t, a);
        icalcomponent_free(a);
    }
    if (!set || !s || eas_pim_parse_time(s, &when) < 0)
        return;
    memset(&tr, 0, sizeof(tr));
    tr.time = icaltime_from_timet_with_zone((time_t)when, 0, icaltimezone_get_utc_timezone());
    a = icalcomponent_new_valarm();
    icalcomponent_add_property(a, icalproperty_new_action(ICAL_ACTION_DISPLAY));
    icalcomponent_add_property(a, icalproperty_new_description("Reminder"));
    icalcomponent_add_property(a, icalproperty_new_trigger(tr));
    icalcomponent_add_component(t, a);
}

int eas_task_from_eas(const struct eas_node *app, const struct eas_pim_ctx *c, const char *base,
                      size_t baselen, struct eas_pim_out *out)
{
    icalcomponent *root = NULL, *t = NULL;
    const struct eas_node *n;
    char *body;
    int present, rc;

    memset(out, 0, sizeof(*out));
    if (base && (root = eas_ical_parse(base, baselen)))
        t = eas_ical_master(root, ICAL_VTODO_COMPONENT);
    if (!t) {
        if (root)
            icalcomponent_free(root);
        root = eas_ical_new(ICAL_VTODO_COMPONENT, &t);
        eas_pim_uuid(out->uid, sizeof(out->uid));
        icalcomponent_set_uid(t, out->uid);
    } else {
        snprintf(out->uid, sizeof(out->uid), "%s", icalcomponent_get_uid(t) ?: "");
    }
/* an element left out but ghosted (outside the device's Supported list) keeps the
 * stored value; otherwise left out means removed */
#define EAS_KEEP(tag) (base && eas_pim_ghosted(c, app, (tag)))
    if (!EAS_KEEP(EAS_TASKS_SUBJECT))
        eas_ical_set_text(t, ICAL_SUMMARY_PROPERTY, eas_child_text(app, EAS_TASKS_SUBJECT));
    if ((body = eas_pim_body_text(app, EAS_TASKS_BODY, &present)))
        eas_ical_set_text(t, ICAL_DESCRIPTION_PROPERTY, body);
    free(body);
    if ((n = eas_child(app, EAS_TASKS_IMPORTANCE)) || !base) {
        long long imp = n ? atoll(eas_text(n)) : 1;
        eas_ical_remove(t, ICAL_PRIORITY_PROPERTY);
        if (imp == 0 || imp == 2)
            icalcomponent_add_property(t, icalproperty_new_priority(imp == 2 ? 1 : 9));
    }
    if (!EAS_KEEP(EAS_TASKS_UTCSTARTDATE) || !EAS_KEEP(EAS_TASKS_STARTDATE))
        eas_task_in_date(root, t, app, EAS_TASKS_UTCSTARTDATE, EAS_TASKS_STARTDATE,
                         ICAL_DTSTART_PROPERTY);
    if (!EAS_KEEP(EAS_TASKS_UTCDUEDATE) || !EAS_KEEP(EAS_TASKS_DUEDATE))
        eas_task_in_date(root, t, app, EAS_TASKS_UTCDUEDATE, EAS_TASKS_DUEDATE, ICAL_DUE_PROPERTY);
    if (!EAS_KEEP(EAS_TASKS_COMPLETE))
        eas_task_in_done(t, app, c->now);
    if (!EAS_KEEP(EAS_TASKS_SENSITIVITY))
        eas_ical_set_sensitivity(t, eas_child_int(app, EAS_TASKS_SENSITIVITY, 0));
    if ((n = eas_child(app, EAS_TASKS_RECURRENCE))) {
        const char *st = eas_child_text(n, EAS_TASKS_START);
        int64_t when;
        /* a rule needs a start: the recurrence's own when the task has none */
        if (!icalcomponent_get_first_property(t, ICAL_DTSTART_PROPERTY) && st &&
            eas_pim_parse_time(st, &when) == 0)
            icalcomponent_add_property(t, icalproperty_new_dtstart(icaltime_from_timet_with_zone(
                                              (time_t)when, 0, icaltimezone_get_utc_timezone())));
        if (!icalcomponent_get_first_property(t, ICAL_DTSTART_PROPERTY) ||
            eas_recurrence_in(t, n, &eas_rec_tasks) < 0) {
            icalcomponent_free(root);
            return -1;
        }
    } else if (!EAS_KEEP(EAS_TASKS_RECURRENCE)) {
        eas_ical_remove(t, ICAL_RRULE_PROPERTY);
    }
    if (!EAS_KEEP(EAS_TASKS_CATEGORIES))
        eas_ical_categories_in(t, eas_child(app, EAS_TASKS_CATEGORIES), EAS_TASKS_CATEGORY);
    if (!EAS_KEEP(EAS_TASKS_REMINDERSET))
        eas_task_in_alarm(root, t, app);
#undef EAS_KEEP
    eas_ical_stamp(t, c->now);
    rc = eas_ical_finish(root, out);
    icalcomponent_free(root);
    return rc;
}
