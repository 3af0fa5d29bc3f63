/*
 * eas_meeting.c — an invitation mail as the Email class shows it (MS-ASEMAIL 2.2.2.48): the
 * message class of its text/calendar part (METHOD:REQUEST or CANCEL) and the
 * Email:MeetingRequest element (times, zone, organizer, location, reminder, the
 * GlobalObjId carrying the UID), so that devices offer Accept / Tentative / Decline, whose
 * answer comes back as MeetingResponse.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "eas/eas_pim.h"

/* Invitations have a few parts; each look re-reads the message. */
#define EAS_MEETING_MAX_PARTS 16

/* The event an invitation is about, and its METHOD (NULL: not an invitation). */
static icalcomponent *eas_meeting_parse(const char *ical, size_t len, icalproperty_method *method,
                                        icalcomponent **ev)
{
    icalcomponent *root = eas_ical_parse(ical, len);
    icalproperty *m;

    if (!root)
        return NULL;
    m = icalcomponent_get_first_property(root, ICAL_METHOD_PROPERTY);
    *method = m ? icalproperty_get_method(m) : ICAL_METHOD_NONE;
    *ev = eas_ical_master(root, ICAL_VEVENT_COMPONENT);
    if (!*ev || (*method != ICAL_METHOD_REQUEST && *method != ICAL_METHOD_CANCEL)) {
        icalcomponent_free(root);
        return NULL;
    }
    return root;
}

const char *eas_meeting_class(const char *ical, size_t len)
{
    icalproperty_method method;
    icalcomponent *ev, *root = eas_meeting_parse(ical, len, &method, &ev);

    if (!root)
        return NULL;
    icalcomponent_free(root);
    return method == ICAL_METHOD_CANCEL ? "IPM.Schedule.Meeting.Canceled"
                                        : "IPM.Schedule.Meeting.Request";
}

static void eas_meeting_time(struct eas_doc *d, struct eas_node *mr, unsigned tag, int64_t t)
{
    char buf[40];

    eas_pim_iso_time(buf, sizeof(buf), t);
    eas_add_text(d, mr, tag, buf);
}

/* PidLidGlobalObjectId (MS-OXOCAL 2.2.1.27) for a UID that Outlook did not make: the
 * fixed class id, no instance date, and "vCal-Uid" + 1 + the UID as data. */
static void eas_meeting_goid(struct eas_doc *d, struct eas_node *mr, const char *uid)
{
    static const unsigned char head[16] = {0x04, 0x00, 0x00, 0x00, 0x82, 0x00, 0xE0, 0x00,
                                           0x74, 0xC5, 0xB7, 0x10, 0x1A, 0x82, 0xE0, 0x08};
    size_t ulen = strlen(uid) > 1024 ? 1024 : strlen(uid);
    size_t dlen = 12 + ulen + 1, len = 40 + dlen;
    unsigned char *b = calloc(1, len);
    char *b64 = malloc(len * 4 / 3 + 8);

    if (b && b64) {
        memcpy(b, head, sizeof(head));
        /* bytes 16-35: instance date, creation time and reserved, all zero */
        b[36] = (unsigned char)(dlen & 0xff);
        b[37] = (unsigned char)((dlen >> 8) & 0xff);
        memcpy(b + 40, "vCal-Uid", 8);
        b[48] = 1;
        memcpy(b + 52, uid, ulen);
        b64_encode(b, len, b64, len * 4 / 3 + 8);
        eas_add_text(d, mr, EAS_EMAIL_GLOBALOBJID, b64);
    }
    free(b);
    free(b64);
}

int eas_meeting_request(struct eas_doc *d, struct eas_node *parent, int version, const char *ical,
                        size_t len)
{
    icalproperty_method method;
    icalcomponent *ev, *root = eas_meeting_parse(ical, len, &method, &ev);
    icalproperty *org, *stamp, *ps, *pe, *pd;
    struct eas_node *mr;
    struct icaltimetype st;
    unsigned char blob[EAS_TZ_BLOB];
    char b64[256], who[700];
    int64_t s, e;
    const char *v;

    if (!root)
        return -1;
    mr = eas_add(d, parent, EAS_EMAIL_MEETINGREQUEST);
    ps = icalcomponent_get_first_property(ev, ICAL_DTSTART_PROPERTY);
    pe = icalcomponent_get_first_property(ev, ICAL_DTEND_PROPERTY);
    pd = icalcomponent_get_first_property(ev, ICAL_DURATION_PROPERTY);
    st = ps ? icalproperty_get_dtstart(ps) : icaltime_null_time();
    s = eas_ical_prop_time(root, ps);
    e = pe ? eas_ical_prop_time(root, pe)
           : s + (pd ? icaldurationtype_as_int(icalproperty_get_duration(pd))
                     : (st.is_date ? 86400 : 0));
    eas_add_int(d, mr, EAS_EMAIL_ALLDAYEVENT, st.is_date);
    eas_meeting_time(d, mr, EAS_EMAIL_STARTTIME, s);
    stamp = icalcomponent_get_first_property(ev, ICAL_DTSTAMP_PROPERTY);
    eas_meeting_time(d, mr, EAS_EMAIL_DTSTAMP, stamp ? eas_ical_prop_time(root, stamp) : s);
    eas_meeting_time(d, mr, EAS_EMAIL_ENDTIME, e < s ? s : e);
    eas_add_int(d, mr, EAS_EMAIL_INSTANCETYPE,
                icalcomponent_get_first_property(ev, ICAL_RRULE_PROPERTY) ? 1 : 0);
    if ((v = icalcomponent_get_location(ev)) && *v) {
        if (version >= EAS_V160)
            eas_add_text(d, eas_add(d, mr, EAS_AIRSYNCBASE_LOCATION), EAS_AIRSYNCBASE_DISPLAYNAME,
                         v);
        else
            eas_add_text(d, mr, EAS_EMAIL_LOCATION, v);
    }
    if ((org = icalcomponent_get_first_property(ev, ICAL_ORGANIZER_PROPERTY))) {
        icalparameter *cn = icalproperty_get_first_parameter(org, ICAL_CN_PARAMETER);
        const char *mail = icalproperty_get_organizer(org);
        if (mail && !strncasecmp(mail, "mailto:", 7))
            mail += 7;
        if (cn && icalparameter_get_cn(cn) && *icalparameter_get_cn(cn))
            snprintf(who, sizeof(who), "\"%s\" <%s>", icalparameter_get_cn(cn), mail ?: "");
        else
            snprintf(who, sizeof(who), "%s", mail ?: "");
        eas_add_text(d, mr, EAS_EMAIL_ORGANIZER, who);
    }
    eas_add_int(d, mr, EAS_EMAIL_RESPONSEREQUESTED, method == ICAL_METHOD_REQUEST);
    eas_add_int(d, mr, EAS_EMAIL_SENSITIVITY, eas_ical_sensitivity(ev));
    eas_add_int(d, mr, EAS_EMAIL_BUSYSTATUS, method == ICAL_METHOD_CANCEL ? 0 : 2);
    eas_tz_blob(st.is_date ? NULL : eas_prop_zone(root, ps), st.year > 0 ? st.year : 2000, blob);
    b64_encode(blob, sizeof(blob), b64, sizeof(b64));
    eas_add_text(d, mr, EAS_EMAIL_TIMEZONE, b64);
    eas_meeting_goid(d, mr, icalcomponent_get_uid(ev) ?: "");
    if (version >= EAS_V141)
        eas_add_int(d, mr, EAS_EMAIL2_MEETINGMESSAGETYPE, method == ICAL_METHOD_REQUEST ? 1 : 0);
    icalcomponent_free(root);
    return 0;
}

char *eas_meeting_ical(const char *msg, size_t len, size_t *outlen)
{
    for (unsigned part = 1; part < EAS_MEETING_MAX_PARTS; part++) {
        char ctype[128], *data = NULL;
        size_t n = 0;
        if (eas_email_part(msg, len, part, &data, &n, ctype, sizeof(ctype)) < 0)
            continue;
        if (!strcasecmp(ctype, "text/calendar")) {
            *outlen = n;
            return data;
        }
        free(data);
    }
    /* a message that is only the calendar */
    {
        const char *b = strstr(msg, "\r\n\r\n");
        if (b && strstr(msg, "BEGIN:VCALENDAR") && (size_t)(b - msg) < len &&
            memmem(msg, (size_t)(b - msg), "text/calendar", 13)) {
            *outlen = len - (size_t)(b + 4 - msg);
            return strndup(b + 4, *outlen);
        }
    }
    return NULL;
}
