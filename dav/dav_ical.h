/*
 * dav_ical.h — iCalendar for CalDAV (private to dav/): parsing and validating calendar
 * object resources (RFC 4791 §4.1, §5.3.2), the occurrence ranges kept in the store's
 * index, calendar-query filters (§9.7) with recurrence expansion, calendar-data with
 * expand / limit-recurrence-set (§9.6), and free-busy-query (§7.10). Built on libical.
 *
 * XML comes in as libxml2 nodes already parsed (safely) by the DAV core; this module only
 * reads elements in the CalDAV namespace "urn:ietf:params:xml:ns:caldav".
 */
#ifndef POLARIS_DAV_ICAL_H
#define POLARIS_DAV_ICAL_H

#include <libical/ical.h>
#include <libxml/tree.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Component kinds, as a bit set (supported-calendar-component-set). */
#define DAV_ICAL_VEVENT    0x1u
#define DAV_ICAL_VTODO     0x2u
#define DAV_ICAL_VJOURNAL  0x4u
#define DAV_ICAL_VFREEBUSY 0x8u

struct dav_ical; /* a parsed calendar object resource */

/* Parses and validates the body of a PUT. Accepts what real clients send (a TZID with no
 * VTIMEZONE when the TZID is an IANA or Windows zone name; RRULE UNTIL in local time).
 * On failure returns -1 with *precond the CalDAV precondition element name to answer
 * with ("valid-calendar-data" for bytes that are not iCalendar, "valid-calendar-object-
 * resource" for broken resource rules such as two UIDs or METHOD present) and err a
 * message. Never stores anything. */
int dav_ical_parse(const char *body, size_t len, struct dav_ical **out, const char **precond,
                   char *err, size_t errlen);
void dav_ical_free(struct dav_ical *c);
const char *dav_ical_uid(const struct dav_ical *c);
unsigned dav_ical_kind(const struct dav_ical *c); /* one DAV_ICAL_* bit */

/* The occurrence ranges of the resource for the store's index (store_item_set_ranges),
 * covering at least up to `horizon` (unix seconds). *complete_until is INT64_MAX when the
 * list covers every occurrence, else the time up to which it is complete. *r malloc'd. */
int dav_ical_ranges(const struct dav_ical *c, int64_t horizon, struct store_range **r, size_t *n,
                    int64_t *complete_until);

/* calendar-query: the <C:filter> element compiled once per REPORT. */
struct dav_ical_filter;
/* -1 with err (the request is answered 400 / valid-filter) when the filter is invalid;
 * *precond then names the precondition ("valid-filter", "supported-filter", or
 * "supported-collation" for a text-match collation other than i;ascii-casemap/i;octet),
 * all in the CalDAV namespace. */
int dav_ical_filter_compile(xmlNodePtr filter, struct dav_ical_filter **out, const char **precond,
                            char *err, size_t errlen);
void dav_ical_filter_free(struct dav_ical_filter *f);
/* The time range that any match must overlap (to read the store's index instead of the
 * whole collection): 1 and [*start, *end) when the filter implies one, 0 when not. */
int dav_ical_filter_window(const struct dav_ical_filter *f, int64_t *start, int64_t *end);
/* 1 when the filter is only "VCALENDAR > one component kind overlapping a time range"
 * (*kind the DAV_ICAL_* bit): then, for resources of that kind whose occurrence index is
 * complete past the range, the index alone gives the answer (dav_ical_ranges follows the
 * same RFC 4791 section 9.9 rules as matching), and no resource needs parsing. */
int dav_ical_filter_simple(const struct dav_ical_filter *f, unsigned *kind);
/* 1 when the resource matches, 0 when not (recurrences expanded, time zones applied). */
int dav_ical_filter_match(const struct dav_ical_filter *f, const struct dav_ical *c);

/* calendar-data in a REPORT or PROPFIND: the <C:calendar-data> request element (NULL:
 * the whole resource as stored). Handles <C:comp>/<C:prop> selection, <C:expand> and
 * <C:limit-recurrence-set>. */
struct dav_ical_data;
int dav_ical_data_compile(xmlNodePtr calendar_data, struct dav_ical_data **out, char *err,
                          size_t errlen);
void dav_ical_data_free(struct dav_ical_data *d);
/* 1 when rendering needs the parsed resource; 0 when the stored bytes are the answer. */
int dav_ical_data_needs_parse(const struct dav_ical_data *d);
/* The calendar data to return, malloc'd, NUL-terminated. */
char *dav_ical_data_render(const struct dav_ical_data *d, const struct dav_ical *c, size_t *len);

/* free-busy-query: accumulate busy periods of resources within [start, end), then render
 * one VCALENDAR with a VFREEBUSY (RFC 4791 §7.10). */
struct dav_ical_fb;
struct dav_ical_fb *dav_ical_fb_new(int64_t start, int64_t end);
int dav_ical_fb_add(struct dav_ical_fb *fb, const struct dav_ical *c);
char *dav_ical_fb_render(struct dav_ical_fb *fb, size_t *len);
void dav_ical_fb_free(struct dav_ical_fb *fb);

/* Parses an iCalendar date-time "20240101T000000Z" (UTC only, as CalDAV time-range and
 * expand attributes require). 0 and *t, or -1. */
int dav_ical_parse_utc(const char *s, int64_t *t);

/* libical for other engines (ActiveSync's calendar conversion). libical 3.0 keeps time
 * zones' cached transitions and the builtin zone list in shared state that is not
 * thread-safe: every engine goes through these, which take one lock. */
/* Installs libical's error handling (errors must never abort the server); idempotent. */
void dav_ical_lib_init(void);
/* A builtin zone by IANA or Windows name, or a vendor-prefixed IANA name; NULL if none. */
icaltimezone *dav_ical_tz_builtin(const char *tzid);
/* Wall-clock fields of t (zone ignored) in zone z (NULL: UTC) to unix seconds. */
int64_t dav_ical_tz_to_unix(struct icaltimetype t, icaltimezone *z);
/* Unix seconds to wall-clock fields in zone z (NULL: UTC), floating (zone NULL). */
struct icaltimetype dav_ical_tz_from_unix(int64_t t, icaltimezone *z);

/* A Windows time-zone name ("W. Europe Standard Time") to its IANA zone, or NULL. */
const char *dav_ical_windows_zone(const char *windows_name);

#endif
