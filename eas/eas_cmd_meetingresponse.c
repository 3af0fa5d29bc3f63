/*
 * eas_cmd_meetingresponse.c — the ActiveSync MeetingResponse command (MS-ASCMD 2.2.1.11):
 * the user accepts, tentatively accepts or declines a meeting request, named either by the
 * invitation in a mail folder (its text/calendar part) or by the event in a calendar.
 *
 * The user's ATTENDEE gets the PARTSTAT of the answer in the calendar's copy of the event
 * (made from the invitation when the calendar has none yet, unless declined), stored with
 * its occurrence index. When the device asks for it (SendResponse, 16.0 and later; older
 * devices send their own reply with SendMail), an iTIP REPLY (RFC 5546) goes to the
 * organizer through the delivery pipeline, with the device's airsyncbase:Body as its text
 * and COMMENT. A SendResponse with ProposedStartTime/ProposedEndTime is a new time
 * proposal: the organizer gets an iTIP COUNTER with those times instead (what Outlook sends
 * for "Propose New Time"); the user's own copy keeps the organizer's times. The answer
 * names the calendar item (CalendarId) for an accepted or tentative meeting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "eas/eas_pim.h"

#define MR_OK       1
#define MR_INVALID  2 /* not a meeting request we can answer */
#define MR_MAILBOX  3
#define MR_SERVER   4
#define MR_MAX_REQS 100

/* One request being answered. */
struct eas_mr {
    struct eas_req *req;
    int response; /* 1 accept, 2 tentative, 3 decline */
    int send;     /* SendResponse: mail the organizer */
    struct store_folder cal;
    struct store_item item; /* the calendar item, when there is one */
    int have_item;
    char calendar_id[48];
    int has_instance; /* InstanceId: one occurrence of a series */
    int64_t instance;
    char *note;       /* SendResponse's airsyncbase:Body as text, malloc'd; NULL when none */
    int has_proposal; /* SendResponse's ProposedStartTime/ProposedEndTime: a COUNTER */
    int64_t prop_start, prop_end;
};

#define MR_MAX_NOTE 32768 /* bytes of the device's response text kept for the mail */

/* SendResponse's children. -1 when they are malformed: half a proposal, a proposal that
 * ends before it starts, or a time that does not parse. */
static int eas_mr_send_options(struct eas_mr *mr, const struct eas_node *sr)
{
    const char *ps = eas_child_text(sr, EAS_MEETINGRESPONSE_PROPOSEDSTARTTIME);
    const char *pe = eas_child_text(sr, EAS_MEETINGRESPONSE_PROPOSEDENDTIME);
    int present = 0;

    if (ps || pe) {
        if (!ps || !pe || eas_pim_parse_time(ps, &mr->prop_start) < 0 ||
            eas_pim_parse_time(pe, &mr->prop_end) < 0 || mr->prop_end <= mr->prop_start)
            return -1;
        mr->has_proposal = 1;
    }
    mr->note = eas_pim_body_text(sr, 0, &present);
    if (mr->note && strlen(mr->note) > MR_MAX_NOTE) {
        size_t n = MR_MAX_NOTE;
        while (n > 0 && ((unsigned char)mr->note[n] & 0xc0u) == 0x80u)
            n--; /* not in the middle of a UTF-8 sequence */
        mr->note[n] = '\0';
    }
    return 0;
}

/* The note as mail text: CRLF line ends (a lone CR or LF from the device becomes one). */
static char *eas_mr_note_crlf(const char *s)
{
    size_t n = 0;
    char *out, *o;

    for (const char *p = s; *p; p++)
        n += *p == '\n' || *p == '\r' ? 2 : 1;
    if (!(out = malloc(n + 1)))
        return NULL;
    for (o = out; *s; s++) {
        if (*s == '\r' || *s == '\n') {
            if (*s == '\r' && s[1] == '\n')
                s++;
            *o++ = '\r';
            *o++ = '\n';
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

static const char *eas_mr_partstat_name(int response)
{
    return response == 1 ? "ACCEPTED" : response == 2 ? "TENTATIVE" : "DECLINED";
}

static icalparameter_partstat eas_mr_partstat(int response)
{
    return response == 1   ? ICAL_PARTSTAT_ACCEPTED
           : response == 2 ? ICAL_PARTSTAT_TENTATIVE
                           : ICAL_PARTSTAT_DECLINED;
}

static int eas_mr_is_self(struct eas_req *req, icalproperty *p)
{
    const char *v = icalproperty_get_attendee(p);

    if (v && !strncasecmp(v, "mailto:", 7))
        v += 7;
    return v && !strcasecmp(v, req->acct->address);
}

static void eas_mr_set_one(struct eas_mr *mr, icalcomponent *ev)
{
    int found = 0;

    for (icalproperty *p = icalcomponent_get_first_property(ev, ICAL_ATTENDEE_PROPERTY); p;
         p = icalcomponent_get_next_property(ev, ICAL_ATTENDEE_PROPERTY)) {
        if (!eas_mr_is_self(mr->req, p))
            continue;
        found = 1;
        icalproperty_remove_parameter_by_kind(p, ICAL_PARTSTAT_PARAMETER);
        icalproperty_remove_parameter_by_kind(p, ICAL_RSVP_PARAMETER);
        icalproperty_add_parameter(p, icalparameter_new_partstat(eas_mr_partstat(mr->response)));
    }
    if (!found) {
        char uri[400];
        icalproperty *p;
        snprintf(uri, sizeof(uri), "mailto:%s", mr->req->acct->address);
        p = icalproperty_new_attendee(uri);
        icalproperty_add_parameter(p, icalparameter_new_partstat(eas_mr_partstat(mr->response)));
        icalcomponent_add_property(ev, p);
    }
    /* a tentative acceptance shows as tentative time */
    if (mr->response == 2 && icalcomponent_get_status(ev) != ICAL_STATUS_CANCELLED)
        icalcomponent_set_status(ev, ICAL_STATUS_TENTATIVE);
    else if (icalcomponent_get_status(ev) == ICAL_STATUS_TENTATIVE)
        icalcomponent_set_status(ev, ICAL_STATUS_CONFIRMED);
}

/* Sets the user's PARTSTAT in every VEVENT of the object (the series and its overrides),
 * or, for an answer to one occurrence (InstanceId), in that occurrence's override only;
 * an event that does not list the user gets the user as an attendee. Returns the VEVENT
 * the REPLY speaks of. */
static icalcomponent *eas_mr_set_partstat(struct eas_mr *mr, icalcomponent *root)
{
    icalcomponent *one;

    if (mr->has_instance && (one = eas_calendar_override(root, mr->instance))) {
        eas_mr_set_one(mr, one);
        return one;
    }
    for (icalcomponent *ev = icalcomponent_get_first_component(root, ICAL_VEVENT_COMPONENT); ev;
         ev = icalcomponent_get_next_component(root, ICAL_VEVENT_COMPONENT))
        eas_mr_set_one(mr, ev);
    return eas_ical_master(root, ICAL_VEVENT_COMPONENT);
}

/* The calendar object to change: the stored event (base) or the invitation's. The
 * invitation's METHOD goes: a calendar object resource has none. */
static icalcomponent *eas_mr_object(const char *text, size_t len)
{
    icalcomponent *root = eas_ical_parse(text, len);
    icalproperty *m;

    if (!root)
        return NULL;
    if (!eas_ical_master(root, ICAL_VEVENT_COMPONENT)) {
        icalcomponent_free(root);
        return NULL;
    }
    while ((m = icalcomponent_get_first_property(root, ICAL_METHOD_PROPERTY))) {
        icalcomponent_remove_property(root, m);
        icalproperty_free(m);
    }
    return root;
}

/* Stores the answered object in the calendar (a new item or the existing one). */
static int eas_mr_store(struct eas_mr *mr, icalcomponent *root)
{
    struct eas_pim_out po = {0};
    icalcomponent *ev = eas_ical_master(root, ICAL_VEVENT_COMPONENT);
    struct store_item out;
    int rc;

    snprintf(po.uid, sizeof(po.uid), "%s", icalcomponent_get_uid(ev) ?: "");
    if (!po.uid[0] || eas_ical_finish(root, &po) < 0)
        return STORE_EINVAL;
    rc = eas_pim_store(mr->req->u, &mr->cal, mr->have_item ? &mr->item : NULL, &po, &out);
    eas_pim_out_free(&po);
    if (rc == STORE_OK) {
        mr->item = out;
        mr->have_item = 1;
        eas_server_id(mr->calendar_id, sizeof(mr->calendar_id), out.folder_id, out.id);
    }
    return rc;
}

/* ---- the iTIP REPLY ---------------------------------------------------------------------- */

static void eas_mr_copy(icalcomponent *to, icalcomponent *from, icalproperty_kind k)
{
    icalproperty *p = icalcomponent_get_first_property(from, k);

    if (p)
        icalcomponent_add_property(to, icalproperty_new_clone(p));
}

/* The REPLY (RFC 5546 §3.2.3) or, for a new time proposal, the COUNTER (§3.2.7) in an
 * RFC 6047 mail, malloc'd. */
static char *eas_mr_reply_mail(struct eas_mr *mr, icalcomponent *ev, const char *organizer,
                               size_t *len)
{
    static const char *const verbs[] = {"", "Accepted", "Tentative", "Declined"};
    icalcomponent *cal = icalcomponent_new_vcalendar(), *r = icalcomponent_new_vevent();
    const char *summary = icalcomponent_get_summary(ev) ?: "";
    char *ics, *msg = NULL, *note = NULL, subject[700], text[600], uri[400];
    icaltimezone *utc = icaltimezone_get_utc_timezone();
    struct icaltimetype now = icaltime_from_timet_with_zone(time(NULL), 0, utc);
    icalproperty *att;

    icalcomponent_add_property(cal, icalproperty_new_version("2.0"));
    icalcomponent_add_property(cal, icalproperty_new_prodid("-//Polaris//ActiveSync//EN"));
    icalcomponent_add_property(
        cal, icalproperty_new_method(mr->has_proposal ? ICAL_METHOD_COUNTER : ICAL_METHOD_REPLY));
    icalcomponent_add_component(cal, r);
    icalcomponent_set_uid(r, icalcomponent_get_uid(ev));
    icalcomponent_add_property(r, icalproperty_new_dtstamp(now));
    if (mr->has_proposal) {
        icalcomponent_add_property(r, icalproperty_new_dtstart(icaltime_from_timet_with_zone(
                                          (time_t)mr->prop_start, 0, utc)));
        icalcomponent_add_property(
            r, icalproperty_new_dtend(icaltime_from_timet_with_zone((time_t)mr->prop_end, 0, utc)));
    } else {
        eas_mr_copy(r, ev, ICAL_DTSTART_PROPERTY);
        eas_mr_copy(r, ev, ICAL_DTEND_PROPERTY);
    }
    eas_mr_copy(r, ev, ICAL_SEQUENCE_PROPERTY);
    eas_mr_copy(r, ev, ICAL_RECURRENCEID_PROPERTY);
    eas_mr_copy(r, ev, ICAL_ORGANIZER_PROPERTY);
    eas_mr_copy(r, ev, ICAL_SUMMARY_PROPERTY);
    snprintf(uri, sizeof(uri), "mailto:%s", mr->req->acct->address);
    att = icalproperty_new_attendee(uri);
    icalproperty_add_parameter(att, icalparameter_new_partstat(eas_mr_partstat(mr->response)));
    icalcomponent_add_property(r, att);
    if (mr->note && *mr->note)
        icalcomponent_add_property(r, icalproperty_new_comment(mr->note));
    ics = icalcomponent_as_ical_string_r(cal);
    icalcomponent_free(cal);
    if (!ics)
        return NULL;
    if (mr->has_proposal) {
        char a[32], b[32];
        eas_pim_compact_time(a, sizeof(a), mr->prop_start);
        eas_pim_compact_time(b, sizeof(b), mr->prop_end);
        snprintf(subject, sizeof(subject), "New Time Proposed: %s", summary);
        snprintf(text, sizeof(text), "%s proposes a new time: %s to %s (UTC).",
                 mr->req->acct->address, a, b);
    } else {
        snprintf(subject, sizeof(subject), "%s: %s", verbs[mr->response], summary);
        snprintf(text, sizeof(text), "%s has %s the invitation.", mr->req->acct->address,
                 mr->response == 1   ? "accepted"
                 : mr->response == 2 ? "tentatively accepted"
                                     : "declined");
    }
    /* The device's own words replace the sentence (MS-ASCMD 2.2.3.163). */
    if (mr->note && *mr->note && !(note = eas_mr_note_crlf(mr->note))) {
        free(ics);
        return NULL;
    }
    msg = eas_itip_mail(mr->req, organizer, subject, note ? note : text,
                        mr->has_proposal ? "COUNTER" : "REPLY", ics, len);
    free(note);
    free(ics);
    return msg;
}

/* Mails the REPLY to the organizer; failures are logged, the answer stands. */
static void eas_mr_send_reply(struct eas_mr *mr, icalcomponent *ev)
{
    icalproperty *org = ev ? icalcomponent_get_first_property(ev, ICAL_ORGANIZER_PROPERTY) : NULL;
    const char *to = org ? icalproperty_get_organizer(org) : NULL;
    char *msg;
    size_t len = 0;

    if (to && !strncasecmp(to, "mailto:", 7))
        to += 7;
    if (!to || !*to || strpbrk(to, "\r\n,<>\" ") || strlen(to) > 320 ||
        !strcasecmp(to, mr->req->acct->address))
        return; /* no one to tell (or the user organises it) */
    if (!(msg = eas_mr_reply_mail(mr, ev, to, &len)))
        return;
    eas_itip_deliver(mr->req, &to, 1, msg, len);
    free(msg);
}

/* ---- one request ---------------------------------------------------------------------- */

/* Loads the event text to answer: the invitation (mail folders) or the calendar item. */
static int eas_mr_source(struct eas_mr *mr, const char *coll, const char *rid, char **text,
                         size_t *len)
{
    struct store_folder f;
    struct store_item it;
    int64_t fid, iid;
    char *body = NULL;
    size_t blen = 0;

    if (eas_folder_lookup(mr->req, coll, &f) != STORE_OK || !rid ||
        eas_parse_server_id(rid, &fid, &iid) < 0 || fid != f.id ||
        store_item_get(mr->req->u, iid, &it, NULL) != STORE_OK || it.folder_id != f.id)
        return MR_INVALID;
    if (store_item_body(mr->req->u, it.id, &body, &blen, NULL) != STORE_OK)
        return MR_MAILBOX;
    if (f.cls == STORE_CLASS_CALENDAR) {
        mr->cal = f;
        mr->item = it;
        mr->have_item = 1;
        *text = body;
        *len = blen;
        return MR_OK;
    }
    if (f.cls != STORE_CLASS_MAIL) {
        free(body);
        return MR_INVALID;
    }
    *text = eas_meeting_ical(body, blen, len);
    free(body);
    if (!*text)
        return MR_INVALID;
    if (store_folder_by_role(mr->req->u, STORE_ROLE_CALENDAR, &mr->cal) != STORE_OK)
        return MR_MAILBOX;
    return MR_OK;
}

/* When the invitation's event is in the calendar already, that copy is answered. */
static int eas_mr_existing(struct eas_mr *mr, icalcomponent *inv, char **text, size_t *len)
{
    icalcomponent *ev = eas_ical_master(inv, ICAL_VEVENT_COMPONENT);
    const char *uid = ev ? icalcomponent_get_uid(ev) : NULL;

    if (!uid || mr->have_item)
        return 0;
    if (store_item_by_ext_uid(mr->req->u, mr->cal.id, uid, &mr->item) != STORE_OK)
        return 0;
    mr->have_item = 1;
    return store_item_body(mr->req->u, mr->item.id, text, len, NULL) == STORE_OK ? 1 : -1;
}

static int eas_mr_answer(struct eas_mr *mr, const struct eas_node *rq)
{
    const char *coll = eas_child_text(rq, EAS_MEETINGRESPONSE_COLLECTIONID);
    const char *rid = eas_child_text(rq, EAS_MEETINGRESPONSE_REQUESTID);
    char *text = NULL, *stored = NULL;
    size_t len = 0, slen = 0;
    icalcomponent *root = NULL, *answered;
    int status, rc;

    if (mr->response < 1 || mr->response > 3)
        return MR_INVALID;
    if ((status = eas_mr_source(mr, coll, rid, &text, &len)) != MR_OK)
        goto out;
    status = MR_INVALID;
    if (!(root = eas_mr_object(text, len)))
        goto out;
    status = MR_MAILBOX;
    if ((rc = eas_mr_existing(mr, root, &stored, &slen)) < 0)
        goto out;
    if (rc == 1) {
        /* the calendar's copy, which may carry the user's own changes */
        icalcomponent_free(root);
        status = MR_INVALID;
        if (!(root = eas_mr_object(stored, slen)))
            goto out;
    }
    answered = eas_mr_set_partstat(mr, root);
    status = MR_MAILBOX;
    /* a declined invitation that is not in the calendar stays out of it */
    if (mr->have_item || mr->response != 3) {
        struct store_err err;
        if (store_txn_begin(mr->req->u, &err) != STORE_OK)
            goto out;
        if (eas_mr_store(mr, root) != STORE_OK) {
            store_txn_rollback(mr->req->u);
            goto out;
        }
        if (store_txn_commit(mr->req->u, NULL, &err) != STORE_OK)
            goto out;
    }
    if (mr->send && answered)
        eas_mr_send_reply(mr, answered);
    log_info("eas", "MeetingResponse: %s %s %s", mr->req->acct->address,
             eas_mr_partstat_name(mr->response), rid);
    status = MR_OK;
out:
    if (root)
        icalcomponent_free(root);
    free(text);
    free(stored);
    return status;
}

int eas_cmd_meetingresponse(struct eas_req *req)
{
    const struct eas_node *root = req->in ? eas_doc_root(req->in) : NULL, *rq;
    struct eas_node *out;
    int n = 0;

    if (!(req->out = eas_doc_new()) ||
        !(out = eas_add(req->out, NULL, EAS_MEETINGRESPONSE_MEETINGRESPONSE))) {
        req->http_status = 500;
        return 0;
    }
    if (!root || root->tag != EAS_MEETINGRESPONSE_MEETINGRESPONSE ||
        !eas_child(root, EAS_MEETINGRESPONSE_REQUEST)) {
        struct eas_node *r = eas_add(req->out, out, EAS_MEETINGRESPONSE_RESULT);
        eas_add_int(req->out, r, EAS_MEETINGRESPONSE_STATUS, MR_INVALID);
        return 0;
    }
    for (rq = eas_child(root, EAS_MEETINGRESPONSE_REQUEST); rq && n < MR_MAX_REQS;
         rq = eas_next(rq, EAS_MEETINGRESPONSE_REQUEST), n++) {
        struct eas_mr mr = {.req = req};
        struct eas_node *r = eas_add(req->out, out, EAS_MEETINGRESPONSE_RESULT);
        const char *rid = eas_child_text(rq, EAS_MEETINGRESPONSE_REQUESTID);
        int status;

        const struct eas_node *sr = eas_child(rq, EAS_MEETINGRESPONSE_SENDRESPONSE);

        mr.response = (int)eas_child_int(rq, EAS_MEETINGRESPONSE_USERRESPONSE, 0);
        /* 16.0+: the server mails the organizer only when asked to */
        mr.send = sr != NULL;
        {
            const char *inst = eas_child_text(rq, EAS_MEETINGRESPONSE_INSTANCEID);
            mr.has_instance = inst && eas_pim_parse_time(inst, &mr.instance) == 0;
        }
        status = sr && eas_mr_send_options(&mr, sr) < 0 ? MR_INVALID : eas_mr_answer(&mr, rq);
        free(mr.note);
        if (rid)
            eas_add_text(req->out, r, EAS_MEETINGRESPONSE_REQUESTID, rid);
        eas_add_int(req->out, r, EAS_MEETINGRESPONSE_STATUS, status);
        if (status == MR_OK && mr.response != 3 && mr.calendar_id[0])
            eas_add_text(req->out, r, EAS_MEETINGRESPONSE_CALENDARID, mr.calendar_id);
    }
    return 0;
}
