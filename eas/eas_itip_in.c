/*
 * eas_itip_in.c — iTIP replies that reach the organizer (RFC 5546 §3.2.3 carried by mail,
 * RFC 6047): what Exchange's calendar attendant does for its users. When a message
 * delivered to a mailbox carries a text/calendar part with METHOD:REPLY, and one of the
 * mailbox's calendars holds the event of its UID with the mailbox as ORGANIZER, the
 * replying attendee's PARTSTAT is written into that event: into the series and its
 * overrides, or, for a reply with a RECURRENCE-ID, into that occurrence only (its override
 * made when there is none). Phones then show who accepted (Calendar Attendee
 * AttendeeStatus) and CalDAV clients see the PARTSTAT; both hear of it as a change.
 *
 * A reply speaks only for the attendee it is From, and only for one the event lists: it
 * cannot add attendees nor answer for someone else. A reply to an older version of the
 * event (a lower SEQUENCE, RFC 5546 §2.1.5) changes nothing. The message itself is
 * delivered like any other mail whatever happens here. COUNTERs are left to the organizer
 * to read: accepting a new time is the organizer's decision.
 *
 * It runs inside the delivery's transaction, so the mail and the change to the event are
 * committed together; only a store failure fails the delivery (it is then retried).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "eas/eas.h"
#include "eas/eas_pim.h"
#include "mail/mime.h"

#define ITIP_IN_MAX_CALENDARS 64 /* calendars searched for the event */
#define ITIP_IN_MAX_EVENTS    64 /* VEVENTs of one reply looked at */
#define ITIP_IN_ADDR_MAX      330

/* Does the message mention text/calendar anywhere (any case)? Most mail does not, and
 * this look is all it costs. */
static int eas_itip_in_maybe(const char *msg, size_t len)
{
    static const char pat[] = "text/calendar";
    const size_t n = sizeof(pat) - 1;

    for (size_t i = 0; i + n <= len; i++)
        if ((msg[i] | 0x20) == 't' && !strncasecmp(msg + i, pat, n))
            return 1;
    return 0;
}

static icalparameter_partstat eas_itip_in_partstat(icalproperty *p)
{
    icalparameter *pa = icalproperty_get_first_parameter(p, ICAL_PARTSTAT_PARAMETER);

    return pa ? icalparameter_get_partstat(pa) : ICAL_PARTSTAT_NONE;
}

/* Sets the attendee's PARTSTAT in one VEVENT of the organizer's copy, unless that VEVENT
 * does not list them or is newer than the reply. 1 when it changed. */
static int eas_itip_in_set(icalcomponent *ev, const char *from, icalparameter_partstat ps, int seq)
{
    icalproperty *p = eas_ical_attendee(ev, from);

    if (!p || eas_itip_in_partstat(p) == ps || seq < icalcomponent_get_sequence(ev))
        return 0;
    icalproperty_remove_parameter_by_kind(p, ICAL_PARTSTAT_PARAMETER);
    icalproperty_add_parameter(p, icalparameter_new_partstat(ps));
    eas_ical_stamp(ev, time(NULL));
    return 1;
}

/* Applies one VEVENT of the reply to the organizer's copy (root). 1 when it changed. */
static int eas_itip_in_apply(icalcomponent *root, icalcomponent *rroot, icalcomponent *rev,
                             const char *from)
{
    icalproperty *who = eas_ical_attendee(rev, from);
    icalproperty *rid = icalcomponent_get_first_property(rev, ICAL_RECURRENCEID_PROPERTY);
    icalparameter_partstat ps = who ? eas_itip_in_partstat(who) : ICAL_PARTSTAT_NONE;
    int seq = icalcomponent_get_sequence(rev), changed = 0;
    icalcomponent *master = eas_ical_master(root, ICAL_VEVENT_COMPONENT);

    /* an answer names what it answers; NEEDS-ACTION or an unknown value says nothing */
    if (ps != ICAL_PARTSTAT_ACCEPTED && ps != ICAL_PARTSTAT_DECLINED &&
        ps != ICAL_PARTSTAT_TENTATIVE && ps != ICAL_PARTSTAT_DELEGATED)
        return 0;
    /* the series must list them: one occurrence's override is a copy of it */
    if (!master || !eas_ical_attendee(master, from))
        return 0;
    if (rid) {
        icalcomponent *one = eas_calendar_override(root, eas_ical_prop_time(rroot, rid));
        return one ? eas_itip_in_set(one, from, ps, seq) : 0;
    }
    for (icalcomponent *ev = icalcomponent_get_first_component(root, ICAL_VEVENT_COMPONENT); ev;
         ev = icalcomponent_get_next_component(root, ICAL_VEVENT_COMPONENT))
        changed |= eas_itip_in_set(ev, from, ps, seq);
    return changed;
}

/* The calendars of the mailbox, collected first so that no store call runs inside the
 * listing. */
struct eas_itip_in_cals {
    struct store_folder f[ITIP_IN_MAX_CALENDARS];
    size_t n;
};

static int eas_itip_in_cal_cb(const struct store_folder *f, void *ctx)
{
    struct eas_itip_in_cals *c = ctx;

    if (c->n == ITIP_IN_MAX_CALENDARS)
        return 1;
    c->f[c->n++] = *f;
    return 0;
}

/* The organizer's copy of the event uid: its folder, item and parsed text. 1 when found
 * and the mailbox organises it, 0 when not, a STORE_E* code (negative) when the store
 * failed. */
static int eas_itip_in_find(struct store_user *u, const struct eas_itip_in_cals *cals,
                            const char *mailbox, const char *uid, struct store_folder *f,
                            struct store_item *it, icalcomponent **root)
{
    for (size_t i = 0; i < cals->n; i++) {
        char *body = NULL;
        size_t blen = 0;
        icalcomponent *master;
        icalproperty *org;
        const char *o;
        int rc;

        if ((rc = store_item_by_ext_uid(u, cals->f[i].id, uid, it)) == STORE_ENOTFOUND)
            continue;
        if (rc != STORE_OK || (rc = store_item_body(u, it->id, &body, &blen, NULL)) != STORE_OK)
            return rc;
        *root = eas_ical_parse(body, blen);
        free(body);
        master = *root ? eas_ical_master(*root, ICAL_VEVENT_COMPONENT) : NULL;
        org = master ? icalcomponent_get_first_property(master, ICAL_ORGANIZER_PROPERTY) : NULL;
        o = org ? eas_mailto(icalproperty_get_organizer(org)) : NULL;
        if (o && !strcasecmp(o, mailbox)) {
            *f = cals->f[i];
            return 1;
        }
        if (*root)
            icalcomponent_free(*root);
        *root = NULL;
        return 0; /* the event is someone else's: the reply is not ours to apply */
    }
    return 0;
}

/* Writes the changed event back, with its occurrence index. */
static int eas_itip_in_store(struct store_user *u, const struct store_folder *f,
                             const struct store_item *it, icalcomponent *root)
{
    struct eas_pim_out po = {0};
    struct store_item out;
    int rc;

    snprintf(po.uid, sizeof(po.uid), "%s", it->ext_uid);
    if (eas_ical_finish(root, &po) < 0)
        return STORE_ENOMEM;
    rc = eas_pim_store(u, f, it, &po, &out);
    eas_pim_out_free(&po);
    return rc;
}

/* The REPLY of the message, parsed; NULL when it carries none. */
static icalcomponent *eas_itip_in_reply(const char *msg, size_t len)
{
    size_t ilen = 0;
    char *ical = eas_meeting_ical(msg, len, &ilen);
    icalcomponent *root = ical ? eas_ical_parse(ical, ilen) : NULL;
    icalproperty *m = root ? icalcomponent_get_first_property(root, ICAL_METHOD_PROPERTY) : NULL;

    free(ical);
    if (root && (!m || icalproperty_get_method(m) != ICAL_METHOD_REPLY)) {
        icalcomponent_free(root);
        root = NULL;
    }
    return root;
}

/* One VEVENT of the reply against the mailbox's calendars. */
static int eas_itip_in_event(struct store_user *u, const struct eas_itip_in_cals *cals,
                             const char *mailbox, const char *from, icalcomponent *rroot,
                             icalcomponent *rev)
{
    const char *uid = icalcomponent_get_uid(rev);
    struct store_folder f;
    struct store_item it;
    icalcomponent *root = NULL;
    int rc;

    if (!uid || !*uid || strlen(uid) >= sizeof(it.ext_uid))
        return STORE_OK;
    if ((rc = eas_itip_in_find(u, cals, mailbox, uid, &f, &it, &root)) <= 0)
        return rc;
    rc = STORE_OK;
    if (eas_itip_in_apply(root, rroot, rev, from)) {
        rc = eas_itip_in_store(u, &f, &it, root);
        if (rc == STORE_OK)
            log_info("eas", "iTIP REPLY from %s applied to %s's event %s", from, mailbox, uid);
        else if (rc == STORE_EINVAL || rc == STORE_EQUOTA)
            rc = STORE_OK; /* the index cannot read it, or no room: the event stays as it was */
    }
    icalcomponent_free(root);
    return rc;
}

int eas_itip_received(struct store_user *u, const char *mailbox, const char *msg, size_t len)
{
    struct eas_itip_in_cals *cals = NULL;
    icalcomponent *rroot = NULL;
    char from[ITIP_IN_ADDR_MAX];
    int rc = STORE_OK, n = 0;

    if (!eas_itip_in_maybe(msg, len))
        return STORE_OK;
    if (eas_from_address(msg, mime_header_size(msg, len), from, sizeof(from)) < 0 || !from[0])
        return STORE_OK;
    if (!strcasecmp(from, mailbox) || !(rroot = eas_itip_in_reply(msg, len)))
        return STORE_OK; /* the organizer's own mail, or no reply */
    if (!(cals = calloc(1, sizeof(*cals)))) {
        rc = STORE_ENOMEM;
        goto out;
    }
    if ((rc = store_folder_list(u, STORE_CLASS_CALENDAR, eas_itip_in_cal_cb, cals, NULL)) !=
        STORE_OK)
        goto out;
    for (icalcomponent *rev = icalcomponent_get_first_component(rroot, ICAL_VEVENT_COMPONENT);
         rev && rc == STORE_OK && n < ITIP_IN_MAX_EVENTS;
         rev = icalcomponent_get_next_component(rroot, ICAL_VEVENT_COMPONENT), n++)
        rc = eas_itip_in_event(u, cals, mailbox, from, rroot, rev);
out:
    free(cals);
    icalcomponent_free(rroot);
    return rc;
}
