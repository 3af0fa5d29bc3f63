/*
 * eas_pim.h — what the PIM classes of eas/ share (private): the conversions between the
 * store's canonical formats (iCalendar for events, tasks and notes; vCard for contacts)
 * and the ActiveSync Calendar, Tasks, Notes and Contacts classes, plus the helpers the
 * Sync family uses to store PIM items (name, UID, occurrence index).
 *
 * The converters are pure functions (no store access) so they can be unit tested: the
 * "to EAS" side writes ApplicationData children under a node; the "from EAS" side reads a
 * client's ApplicationData and returns the canonical text, merged into the stored text
 * when the client changes an item so that what ActiveSync cannot carry survives.
 */
#ifndef POLARIS_EAS_PIM_H
#define POLARIS_EAS_PIM_H

#include <stddef.h>
#include <stdint.h>

#include <libical/ical.h>

#include "eas/eas_sync.h"

/* What a converter needs besides the item. */
struct eas_pim_ctx {
    int version;                   /* EAS_V* */
    const struct eas_coll_opts *o; /* body preferences; NULL: whole plain body */
    const char *self;              /* the user's address (MeetingStatus, organizer) */
    int64_t now;                   /* unix seconds (DTSTAMP of new items) */
    /* the device's Supported list (NULL: none), for ghosted elements on a Change */
    const unsigned *supported;
    size_t nsupported;
};
/* 1 when a Change leaving out tag means "unchanged" rather than "removed": the device
 * sent a Supported list without it (MS-ASCMD 2.2.3.164) and did not send it now. */
int eas_pim_ghosted(const struct eas_pim_ctx *c, const struct eas_node *app, unsigned tag);

/* The result of a device's item: canonical text and its UID. */
struct eas_pim_out {
    char *text; /* malloc'd, NUL-terminated */
    size_t len;
    char uid[256];
};
void eas_pim_out_free(struct eas_pim_out *o);

/* ---- calendar (eas_calendar.c) ------------------------------------------------------ */
int eas_calendar_to_eas(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c,
                        const char *ical, size_t len);
/* base: the stored iCalendar on a Change (NULL on Add). -1 when the data cannot make an
 * event (Status 6). */
int eas_calendar_from_eas(const struct eas_node *app, const struct eas_pim_ctx *c, const char *base,
                          size_t baselen, struct eas_pim_out *out);
/* Recurrence elements of a class (the Calendar and Tasks pages name them alike), and
 * the RRULE ↔ Recurrence conversion both use. */
struct eas_rec_tags {
    unsigned rec, type, occurrences, interval, weekofmonth, dayofweek, monthofyear, until,
        dayofmonth, firstdayofweek;
    unsigned start, regenerate, deadoccur; /* Tasks only, 0 otherwise */
    int iso;                               /* times as 2024-01-01T10:00:00.000Z */
};
extern const struct eas_rec_tags eas_rec_calendar, eas_rec_tasks;
/* Writes the Recurrence of comp's RRULE; nothing when ActiveSync cannot express it. */
void eas_recurrence_out(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c,
                        icalcomponent *root, icalcomponent *comp, const struct eas_rec_tags *t);
/* Replaces comp's RRULE by a device's Recurrence; -1 when it makes no sense. */
int eas_recurrence_in(icalcomponent *comp, const struct eas_node *rec,
                      const struct eas_rec_tags *t);

/* One occurrence of a stored series (16.x Sync Change / Delete with InstanceId, the
 * instance's original start): app NULL deletes it (EXDATE), otherwise its override gets
 * the device's fields. -1 when base is not a recurring event. */
int eas_calendar_instance(const struct eas_node *app, const struct eas_pim_ctx *c, const char *base,
                          size_t baselen, int64_t instance, struct eas_pim_out *out);
/* The override of an occurrence in a parsed object, made when there is none (the event
 * itself when it is not a series). */
icalcomponent *eas_calendar_override(icalcomponent *root, int64_t instance);
/* The TIME_ZONE_INFORMATION blob (172 bytes) of a zone, and back (eas_tz.c). */
#define EAS_TZ_BLOB 172
int eas_tz_blob(icaltimezone *zone, int year, unsigned char blob[EAS_TZ_BLOB]);
/* A VTIMEZONE (as iCalendar text, malloc'd) for a blob; tzid receives its TZID. */
char *eas_tz_vtimezone(const unsigned char blob[EAS_TZ_BLOB], char *tzid, size_t tzidlen);
/* 1 when two blobs say the same rules (names aside); 1 when a blob is plain UTC. */
int eas_tz_blob_same(const unsigned char a[EAS_TZ_BLOB], const unsigned char b[EAS_TZ_BLOB]);
int eas_tz_blob_is_utc(const unsigned char b[EAS_TZ_BLOB]);

/* iCalendar helpers the calendar, task and note conversions share (eas_calendar.c). */
icalcomponent *eas_ical_parse(const char *text, size_t len); /* a VCALENDAR or NULL */
/* The component of that kind without RECURRENCE-ID (else the first), NULL when none. */
icalcomponent *eas_ical_master(icalcomponent *root, icalcomponent_kind kind);
/* A new VCALENDAR (VERSION, PRODID) holding one new component of that kind. */
icalcomponent *eas_ical_new(icalcomponent_kind kind, icalcomponent **comp);
int eas_ical_finish(icalcomponent *root, struct eas_pim_out *out); /* text of root */
void eas_ical_remove(icalcomponent *comp, icalproperty_kind k);    /* every such prop */
void eas_ical_set_text(icalcomponent *comp, icalproperty_kind k, const char *v); /* "" drops */
void eas_ical_stamp(icalcomponent *comp, int64_t now);            /* DTSTAMP and LAST-MODIFIED */
int eas_ical_sensitivity(icalcomponent *comp);                    /* CLASS as Sensitivity */
void eas_ical_set_sensitivity(icalcomponent *comp, long long sv); /* Sensitivity as CLASS */
/* CATEGORIES split at commas into v (strings in buf). */
size_t eas_ical_categories(icalcomponent *comp, char *buf, size_t buflen, const char **v,
                           size_t max);
void eas_ical_categories_in(icalcomponent *comp, const struct eas_node *cats, unsigned cat_tag);
/* The zone of a property's TZID (the calendar's VTIMEZONE or a built-in zone). */
icaltimezone *eas_prop_zone(icalcomponent *root, icalproperty *p);
/* A time as unix seconds (zone NULL, floating and DATE values: UTC). */
int64_t eas_ical_tt(struct icaltimetype t, icaltimezone *zone);
int64_t eas_ical_prop_time(icalcomponent *root, icalproperty *p); /* 0 when p NULL */
/* An ATTENDEE/ORGANIZER value without its "mailto:" ("" for NULL). */
const char *eas_mailto(const char *v);
/* The VEVENT's ATTENDEE of an address (any case), NULL when none. */
icalproperty *eas_ical_attendee(icalcomponent *ev, const char *mail);

/* ---- invitations in mail (eas_meeting.c) ---------------------------------------------- */
/* The Email MessageClass of an invitation's iCalendar (METHOD REQUEST / CANCEL):
 * "IPM.Schedule.Meeting.Request" / ".Canceled"; NULL when the text is not one. */
const char *eas_meeting_class(const char *ical, size_t len);
/* Writes Email:MeetingRequest for it under parent; -1 when it is not an invitation. */
int eas_meeting_request(struct eas_doc *d, struct eas_node *parent, int version, const char *ical,
                        size_t len);
/* The text/calendar part of a message (RFC 5322 bytes), decoded, malloc'd; NULL when it has
 * none. A message that is only the calendar counts. */
char *eas_meeting_ical(const char *msg, size_t len, size_t *outlen);

/* ---- iTIP mail (eas_itip.c) ----------------------------------------------------------- */
/* A header value, RFC 2047-encoded when it is not plain ASCII. */
void eas_itip_header_text(char *out, size_t outlen, const char *s);
/* An iTIP message from the user: a text part and the text/calendar part of method,
 * malloc'd; NULL on failure. */
char *eas_itip_mail(const struct eas_req *req, const char *to, const char *subject,
                    const char *text, const char *method, const char *ics, size_t *len);
/* Sends msg to rcpts through the delivery pipeline; refusals are logged. */
void eas_itip_deliver(struct eas_req *req, const char *const *rcpts, size_t n, const char *msg,
                      size_t len);
struct eas_itip {
    char *msg;
    size_t len;
    char **rcpts;
    size_t nrcpts;
};
void eas_itip_free(struct eas_itip *m);
/* The REQUEST (cancel: CANCEL) a meeting the user organises sends its attendees after a
 * 16.x device's Add / Change (Delete): 0 and *out, 1 when there is no one to tell (no
 * attendees, or someone else organises it), -1 on failure. */
int eas_itip_organizer(const struct eas_req *req, const char *ical, size_t len, int cancel,
                       struct eas_itip *out);

/* ---- tasks (eas_task.c) ------------------------------------------------------------- */
int eas_task_to_eas(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c,
                    const char *ical, size_t len);
int eas_task_from_eas(const struct eas_node *app, const struct eas_pim_ctx *c, const char *base,
                      size_t baselen, struct eas_pim_out *out);
/* 1 when the stored VTODO is completed (FilterType 8 leaves it out), 0 when not. */
int eas_task_completed(const char *ical, size_t len);

/* ---- notes (eas_note.c) ------------------------------------------------------------- */
int eas_note_to_eas(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c,
                    const char *ical, size_t len);
int eas_note_from_eas(const struct eas_node *app, const struct eas_pim_ctx *c, const char *base,
                      size_t baselen, struct eas_pim_out *out);

/* ---- contacts (eas_contact.c) ------------------------------------------------------- */
int eas_contact_to_eas(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c,
                       const char *vcard, size_t len);
int eas_contact_from_eas(const struct eas_node *app, const struct eas_pim_ctx *c, const char *base,
                         size_t baselen, struct eas_pim_out *out);

/* ---- shared helpers (eas_pim.c) ------------------------------------------------------ */

/* Dates: "20240101T100000Z" (compact, Calendar) or "2024-01-01T10:00:00.000Z" (Tasks,
 * Contacts, Notes) are both read; -1 when neither. */
int eas_pim_parse_time(const char *s, int64_t *t);
void eas_pim_compact_time(char *out, size_t outlen, int64_t t);
void eas_pim_iso_time(char *out, size_t outlen, int64_t t);
/* A random UUID (RFC 4122 version 4), lower-case. */
void eas_pim_uuid(char *out, size_t outlen);
/* 1 when a UID may name a resource as it is ("<UID>.ics"). */
int eas_pim_uid_safe(const char *uid);

/* Writes the body: AirSyncBase:Body (12.0+, type 1, or 2 made from the text for a device
 * that takes HTML only; TruncationSize honoured) or the
 * class's own 2.5 Body / BodyTruncated tags (body_tag 0: the class has none in 2.5). */
void eas_pim_body(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c,
                  const char *text, unsigned body_tag, unsigned trunc_tag);
/* The body a client sent as text (AirSyncBase:Body/Data, an HTML one turned into text,
 * or the 2.5 tag), malloc'd; NULL when none (*present 0) or out of memory. */
char *eas_pim_body_text(const struct eas_node *app, unsigned body_tag, int *present);
/* Categories: a list of Category children. */
void eas_pim_categories(struct eas_doc *d, struct eas_node *app, unsigned cats_tag,
                        unsigned cat_tag, const char *const *v, size_t n);

/* Gives a device's new iCalendar object a new UID (its own is taken in the folder: a
 * collection holds one object per UID). */
int eas_pim_reuid(struct eas_pim_out *o);
/* Stores a device's item in a folder: a new item (it NULL) or a replacement of it, with
 * the name/ext_uid/ctype rules and, for iCalendar items, the occurrence index, in the
 * caller's transaction. 0 or a STORE_E* code. */
int eas_pim_store(struct store_user *u, const struct store_folder *f, const struct store_item *it,
                  const struct eas_pim_out *in, struct store_item *out);

/* Writes the ApplicationData of a stored PIM item as its folder's class asks. */
int eas_pim_appdata(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c, int cls,
                    const char *text, size_t len);
/* Reads a device's ApplicationData for a folder class. */
int eas_pim_from_eas(const struct eas_node *app, const struct eas_pim_ctx *c, int cls,
                     const char *base, size_t baselen, struct eas_pim_out *out);

/* How far in time a stored item reaches, for the FilterType windows (held items carry it
 * as their date): calendar items the end of their last occurrence in the store's
 * occurrence index (INT64_MAX when the index is open-ended or missing), tasks INT64_MAX
 * unless completed (then 0), others INT64_MAX. */
int64_t eas_pim_reach(struct store_user *u, int cls, const struct store_item *it);

#endif
