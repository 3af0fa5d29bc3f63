/*
 * eas_note.c — iCalendar VJOURNAL ↔ the ActiveSync Notes class (MS-ASNOTE, 14.0+):
 * Subject is SUMMARY, the body DESCRIPTION, Categories CATEGORIES, LastModifiedDate
 * LAST-MODIFIED (or DTSTAMP); MessageClass is always IPM.StickyNote. A Change keeps the
 * stored journal entry's other properties.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eas/eas_pim.h"

int eas_note_to_eas(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c,
                    const char *ical, size_t len)
{
    icalcomponent *root = eas_ical_parse(ical, len), *j;
    icalproperty *p;
    const char *cats[64];
    char catbuf[2048], buf[40];
    size_t ncat;

    if (!root)
        return -1;
    if (!(j = eas_ical_master(root, ICAL_VJOURNAL_COMPONENT))) {
        icalcomponent_free(root);
        return -1;
    }
    eas_add_text(d, app, EAS_NOTES_SUBJECT, icalcomponent_get_summary(j) ?: "");
    eas_pim_body(d, app, c, icalcomponent_get_description(j), 0, 0);
    eas_add_text(d, app, EAS_NOTES_MESSAGECLASS, "IPM.StickyNote");
    if (!(p = icalcomponent_get_first_property(j, ICAL_LASTMODIFIED_PROPERTY)))
        p = icalcomponent_get_first_property(j, ICAL_DTSTAMP_PROPERTY);
    eas_pim_iso_time(buf, sizeof(buf), p ? eas_ical_prop_time(root, p) : c->now);
    eas_add_text(d, app, EAS_NOTES_LASTMODIFIEDDATE, buf);
    ncat = eas_ical_categories(j, catbuf, sizeof(catbuf), cats, 64);
    eas_pim_categories(d, app, EAS_NOTES_CATEGORIES, EAS_NOTES_CATEGORY, cats, ncat);
    icalcomponent_free(root);
    return 0;
}

int eas_note_from_eas(const struct eas_node *app, const struct eas_pim_ctx *c, const char *base,
                      size_t baselen, struct eas_pim_out *out)
{
    icalcomponent *root = NULL, *j = NULL;
    char *body;
    int present, rc;

    memset(out, 0, sizeof(*out));
    if (base && (root = eas_ical_parse(base, baselen)))
        j = eas_ical_master(root, ICAL_VJOURNAL_COMPONENT);
    if (!j) {
        if (root)
            icalcomponent_free(root);
        root = eas_ical_new(ICAL_VJOURNAL_COMPONENT, &j);
        eas_pim_uuid(out->uid, sizeof(out->uid));
        icalcomponent_set_uid(j, out->uid);
        /* a note has a day: the one it was written on */
        {
            struct icaltimetype t =
                icaltime_from_timet_with_zone((time_t)c->now, 1, icaltimezone_get_utc_timezone());
            icalproperty *p = icalproperty_new_dtstart(t);
            icalproperty_add_parameter(p, icalparameter_new_value(ICAL_VALUE_DATE));
            icalcomponent_add_property(j, p);
        }
    } else {
        snprintf(out->uid, sizeof(out->uid), "%s", icalcomponent_get_uid(j) ?: "");
    }
    /* ghosted elements (outside the device's Supported list) keep the stored value */
    if (!base || !eas_pim_ghosted(c, app, EAS_NOTES_SUBJECT))
        eas_ical_set_text(j, ICAL_SUMMARY_PROPERTY, eas_child_text(app, EAS_NOTES_SUBJECT));
    if ((body = eas_pim_body_text(app, 0, &present)))
        eas_ical_set_text(j, ICAL_DESCRIPTION_PROPERTY, body);
    free(body);
    if (!base || !eas_pim_ghosted(c, app, EAS_NOTES_CATEGORIES))
        eas_ical_categories_in(j, eas_child(app, EAS_NOTES_CATEGORIES), EAS_NOTES_CATEGORY);
    eas_ical_stamp(j, c->now);
    rc = eas_ical_finish(root, out);
    icalcomponent_free(root);
    return rc;
}
