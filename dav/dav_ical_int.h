/*
 * dav_ical_int.h — what the dav_ical*.c files share and nothing else includes: the parsed
 * resource, the time-zone guard around libical's global state, and the occurrence
 * expansion every feature (index ranges, filters, expand, free-busy) is built on.
 */
#ifndef POLARIS_DAV_ICAL_INT_H
#define POLARIS_DAV_ICAL_INT_H

#include <libical/ical.h>
#include <stdint.h>

#include "dav/dav_ical.h"
#include "server/server.h"

#define DAV_ICAL_NS "urn:ietf:params:xml:ns:caldav"

/* Bounds on what a resource may hold (a calendar object resource is one event or task
 * with its overrides, not a whole calendar). */
#define DAV_ICAL_MAX_BYTES      (16u * 1024 * 1024)
#define DAV_ICAL_MAX_LINES      50000
#define DAV_ICAL_MAX_COMPONENTS 5000
#define DAV_ICAL_MAX_DEPTH      6
/* Occurrences listed for the index before it is marked incomplete. */
#define DAV_ICAL_MAX_RANGES 10000
/* Rule steps one expansion may take (filters, expand, free-busy) before giving up. */
#define DAV_ICAL_MAX_STEPS 100000

struct dav_ical_tz {
    char *tzid;
    icaltimezone *zone; /* NULL: UTC */
};

struct dav_ical {
    icalcomponent *root; /* the VCALENDAR */
    char *uid;
    unsigned kind;
    icalcomponent_kind ikind;
    icalcomponent *master; /* the component without RECURRENCE-ID, or NULL */
    icalcomponent **ovr;   /* overrides (with RECURRENCE-ID) */
    size_t novr;
    struct dav_ical_tz *tz; /* every TZID the resource uses, resolved */
    size_t ntz;
};

/* The DAV_ICAL_* bit of a component kind, 0 for other kinds. */
unsigned dav_ical_kind_bit(icalcomponent_kind k);

/* dav_ical_tz.c: one mutex guards every libical call that reads or fills a time zone's
 * cached transitions or the builtin zone list (not thread-safe in libical 3.0). The
 * functions other engines need are in dav_ical.h. */
/* The i-th Windows zone name of the table (NULL past the end), for tests. */
const char *dav_ical_windows_zone_at(size_t i);
/* Civil date arithmetic without libical or the C library's TZ. */
int64_t dav_ical_days_from_civil(int y, int m, int d);
void dav_ical_civil_from_days(int64_t z, int *y, int *m, int *d);

/* dav_ical.c: a property's time in this resource. */
icaltimezone *dav_ical_zone_of(const struct dav_ical *c, icalproperty *p);
/* 0 and *t (unix seconds, DATE as 00:00 UTC), -1 when p holds no usable time. */
int dav_ical_prop_unix(const struct dav_ical *c, icalproperty *p, int64_t *t, int *is_date);
int dav_ical_time_valid(struct icaltimetype t);

/* dav_ical_inst.c: one occurrence. It overlaps [start, end) when
 * (start < e, or <= with e_incl) and (end > s, or >= with s_incl) — the forms RFC 4791
 * §9.9 uses for events, tasks and journals. */
struct dav_ical_inst {
    int64_t s, e;
    unsigned char s_incl, e_incl;
    unsigned char recurring; /* part of a recurrence set: has a RECURRENCE-ID */
    unsigned char is_date;
    icalcomponent *comp;           /* the master or the override that defines it */
    int64_t rid;                   /* its RECURRENCE-ID (unix), when recurring */
    struct icaltimetype rid_local; /* RECURRENCE-ID as written in the master's zone */
};
int dav_ical_inst_overlaps(const struct dav_ical_inst *in, int64_t start, int64_t end);
/* Calls cb for the occurrences starting before `until` (overrides always), in no set
 * order; cb returns non-zero to stop. Occurrences that end well before `from` may be
 * skipped without a call (a hint, INT64_MIN for none). *more is 1 when the set goes on
 * past what was listed (then *next is the earliest unlisted start). */
typedef int (*dav_ical_inst_cb)(const struct dav_ical_inst *in, void *ctx);
int dav_ical_instances(const struct dav_ical *c, int64_t from, int64_t until, size_t max_inst,
                       dav_ical_inst_cb cb, void *ctx, int *more, int64_t *next);

#endif
