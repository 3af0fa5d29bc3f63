/*
 * eas_tz.c — ActiveSync time zones (MS-ASDTYPE 2.7.6): the TIME_ZONE_INFORMATION blob
 * (bias, the yearly standard and daylight transitions, their biases) made from an
 * iCalendar/libical zone's STANDARD and DAYLIGHT observances in force in a year, and a
 * VTIMEZONE made from a device's blob.
 */
#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dav/dav_ical.h"
#include "eas/eas_pim.h"

struct eas_systime {
    int year, month, dow, day, hour, minute;
};

struct eas_tzi {
    int bias; /* minutes, UTC = local + bias */
    char name[32];
    struct eas_systime std, dst;
    int std_bias, dst_bias;
};

static void eas_put16(unsigned char *p, int v)
{
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)((v >> 8) & 0xff);
}

static void eas_put32(unsigned char *p, int32_t v)
{
    uint32_t u = (uint32_t)v;

    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)((u >> (8 * i)) & 0xff);
}

static int eas_get16(const unsigned char *p)
{
    return p[0] | (p[1] << 8);
}

static int32_t eas_get32(const unsigned char *p)
{
    return (int32_t)((uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                     ((uint32_t)p[3] << 24));
}

static void eas_put_systime(unsigned char *p, const struct eas_systime *s)
{
    eas_put16(p, s->year);
    eas_put16(p + 2, s->month);
    eas_put16(p + 4, s->dow);
    eas_put16(p + 6, s->day);
    eas_put16(p + 8, s->hour);
    eas_put16(p + 10, s->minute);
    eas_put16(p + 12, 0);
    eas_put16(p + 14, 0);
}

static void eas_get_systime(const unsigned char *p, struct eas_systime *s)
{
    s->year = eas_get16(p);
    s->month = eas_get16(p + 2);
    s->dow = eas_get16(p + 4);
    s->day = eas_get16(p + 6);
    s->hour = eas_get16(p + 8);
    s->minute = eas_get16(p + 10);
}

static void eas_tzi_encode(const struct eas_tzi *z, unsigned char b[EAS_TZ_BLOB])
{
    memset(b, 0, EAS_TZ_BLOB);
    eas_put32(b, z->bias);
    for (int i = 0; i < 31 && z->name[i]; i++) {
        eas_put16(b + 4 + 2 * i, (unsigned char)z->name[i]);
        eas_put16(b + 88 + 2 * i, (unsigned char)z->name[i]);
    }
    eas_put_systime(b + 68, &z->std);
    eas_put32(b + 84, z->std_bias);
    eas_put_systime(b + 152, &z->dst);
    eas_put32(b + 168, z->dst_bias);
}

static void eas_tzi_decode(const unsigned char b[EAS_TZ_BLOB], struct eas_tzi *z)
{
    memset(z, 0, sizeof(*z));
    z->bias = eas_get32(b);
    /* names are UTF-16; only their ASCII part is kept (a TZID needs no more) */
    for (int i = 0, o = 0; i < 31 && o < 31; i++) {
        int ch = eas_get16(b + 4 + 2 * i);
        if (!ch)
            break;
        if (ch >= 0x20 && ch < 0x7f)
            z->name[o++] = (char)ch;
    }
    eas_get_systime(b + 68, &z->std);
    z->std_bias = eas_get32(b + 84);
    eas_get_systime(b + 152, &z->dst);
    z->dst_bias = eas_get32(b + 168);
}

/* The same rules, names aside. */
static int eas_tzi_same(const struct eas_tzi *a, const struct eas_tzi *b)
{
    return a->bias == b->bias && a->std_bias == b->std_bias && a->dst_bias == b->dst_bias &&
           !memcmp(&a->std, &b->std, sizeof(a->std)) && !memcmp(&a->dst, &b->dst, sizeof(a->dst));
}

/* A STANDARD or DAYLIGHT observance in force in `year`: the latest that started by then
 * and whose rule has not ended before it. */
static icalcomponent *eas_tz_observance(icalcomponent *vtz, icalcomponent_kind kind, int year)
{
    icalcomponent *best = NULL;
    struct icaltimetype bstart = icaltime_null_time();

    for (icalcomponent *o = icalcomponent_get_first_component(vtz, kind); o;
         o = icalcomponent_get_next_component(vtz, kind)) {
        struct icaltimetype st = icalcomponent_get_dtstart(o);
        if (st.year > year)
            continue;
        if (!best || icaltime_compare(st, bstart) > 0) {
            best = o;
            bstart = st;
        }
    }
    return best;
}

static int eas_tz_offset(icalcomponent *o)
{
    icalproperty *p = icalcomponent_get_first_property(o, ICAL_TZOFFSETTO_PROPERTY);

    return p ? icalproperty_get_tzoffsetto(p) : 0;
}

/* Fills a SYSTEMTIME transition from an observance's yearly RRULE; 0 when it has one
 * still in force in year. */
static int eas_tz_rule(icalcomponent *o, int year, struct eas_systime *s)
{
    icalproperty *rp = o ? icalcomponent_get_first_property(o, ICAL_RRULE_PROPERTY) : NULL;
    struct icalrecurrencetype r;
    struct icaltimetype st;
    int pos;

    if (!rp)
        return -1;
    r = icalproperty_get_rrule(rp);
    if (r.freq != ICAL_YEARLY_RECURRENCE || r.by_month[0] == ICAL_RECURRENCE_ARRAY_MAX ||
        (!icaltime_is_null_time(r.until) && r.until.year < year))
        return -1;
    st = icalcomponent_get_dtstart(o);
    memset(s, 0, sizeof(*s));
    s->month = r.by_month[0];
    s->hour = st.hour;
    s->minute = st.minute;
    if (r.by_day[0] != ICAL_RECURRENCE_ARRAY_MAX) {
        s->dow = (int)icalrecurrencetype_day_day_of_week(r.by_day[0]) - 1;
        pos = icalrecurrencetype_day_position(r.by_day[0]);
        s->day = pos < 0 || pos > 5 ? 5 : pos;
    } else if (r.by_month_day[0] != ICAL_RECURRENCE_ARRAY_MAX) {
        /* a fixed date: the week and weekday of that date this year */
        struct icaltimetype d = icaltime_null_date();
        d.year = year;
        d.month = s->month;
        d.day = r.by_month_day[0];
        s->dow = icaltime_day_of_week(d) - 1;
        s->day = (d.day - 1) / 7 + 1;
    } else {
        return -1;
    }
    return 0;
}

int eas_tz_blob(icaltimezone *zone, int year, unsigned char blob[EAS_TZ_BLOB])
{
    struct eas_tzi z;
    struct icaltimetype mid = icaltime_null_time();
    icalcomponent *vtz = NULL, *shared;
    icalcomponent *std = NULL, *dst = NULL;
    const char *name;

    mid.year = year;
    mid.month = 7;
    mid.day = 1;
    /* A built-in zone is shared between threads: a conversion through the DAV module's
     * time-zone lock loads its component, which is then only copied (libical keeps an
     * iteration cursor inside components, so the shared one is not walked). */
    if (zone)
        (void)dav_ical_tz_to_unix(mid, zone);
    shared = zone ? icaltimezone_get_component(zone) : NULL;
    if (shared)
        vtz = icalcomponent_new_clone(shared);
    name = zone ? icaltimezone_get_location(zone) : NULL;
    memset(&z, 0, sizeof(z));
    if (!name && zone)
        name = icaltimezone_get_tzid(zone);
    snprintf(z.name, sizeof(z.name), "%s", name ? name : "UTC");
    if (vtz) {
        std = eas_tz_observance(vtz, ICAL_XSTANDARD_COMPONENT, year);
        dst = eas_tz_observance(vtz, ICAL_XDAYLIGHT_COMPONENT, year);
    }
    if (std && dst && eas_tz_rule(std, year, &z.std) == 0 && eas_tz_rule(dst, year, &z.dst) == 0) {
        z.bias = -eas_tz_offset(std) / 60;
        z.dst_bias = -(eas_tz_offset(dst) - eas_tz_offset(std)) / 60;
    } else if (zone) {
        /* no yearly rule in force: the offset of the middle of the year, no DST */
        int64_t offset = dav_ical_tz_to_unix(mid, NULL) - dav_ical_tz_to_unix(mid, zone);
        z.bias = (int)(-offset / 60);
        memset(&z.std, 0, sizeof(z.std));
        memset(&z.dst, 0, sizeof(z.dst));
    }
    if (vtz)
        icalcomponent_free(vtz);
    eas_tzi_encode(&z, blob);
    return 0;
}

static void eas_tz_offset_text(char *out, size_t outlen, int minutes)
{
    int a = minutes < 0 ? -minutes : minutes;

    snprintf(out, outlen, "%c%02d%02d", minutes < 0 ? '-' : '+', (a / 60) % 100, a % 60);
}

static void eas_tz_rrule_text(char *out, size_t outlen, const struct eas_systime *s)
{
    static const char *const days[] = {"SU", "MO", "TU", "WE", "TH", "FR", "SA"};
    int week = s->day >= 5 || s->day < 1 ? -1 : s->day;

    snprintf(out, outlen, "FREQ=YEARLY;BYMONTH=%d;BYDAY=%d%s", s->month, week,
             days[s->dow >= 0 && s->dow < 7 ? s->dow : 0]);
}

char *eas_tz_vtimezone(const unsigned char blob[EAS_TZ_BLOB], char *tzid, size_t tzidlen)
{
    struct eas_tzi z;
    char std[8], dst[8], rs[96], rd[96], *out;
    int dst_on, n;

    eas_tzi_decode(blob, &z);
    if (z.bias < -24 * 60 || z.bias > 24 * 60 || z.dst_bias < -24 * 60 || z.dst_bias > 24 * 60)
        return NULL;
    dst_on = z.std.month >= 1 && z.std.month <= 12 && z.dst.month >= 1 && z.dst.month <= 12;
    /* a name of our own making: the blob carries no identifier that would be stable */
    if (z.name[0])
        snprintf(tzid, tzidlen, "%s", z.name);
    else
        snprintf(tzid, tzidlen, "EAS %+d/%+d", -z.bias, dst_on ? -(z.bias + z.dst_bias) : 0);
    for (char *p = tzid; *p; p++)
        if (*p == ';' || *p == ':' || *p == ',' || *p == '"')
            *p = ' ';
    eas_tz_offset_text(std, sizeof(std), -(z.bias + z.std_bias));
    eas_tz_offset_text(dst, sizeof(dst), -(z.bias + z.dst_bias));
    if (!(out = malloc(1024)))
        return NULL;
    if (!dst_on) {
        n = snprintf(out, 1024,
                     "BEGIN:VTIMEZONE\r\nTZID:%s\r\nBEGIN:STANDARD\r\nDTSTART:16010101T000000\r\n"
                     "TZOFFSETFROM:%s\r\nTZOFFSETTO:%s\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n",
                     tzid, std, std);
    } else {
        eas_tz_rrule_text(rs, sizeof(rs), &z.std);
        eas_tz_rrule_text(rd, sizeof(rd), &z.dst);
        n = snprintf(out, 1024,
                     "BEGIN:VTIMEZONE\r\nTZID:%s\r\n"
                     "BEGIN:STANDARD\r\nDTSTART:16010101T%02d%02d00\r\nRRULE:%s\r\n"
                     "TZOFFSETFROM:%s\r\nTZOFFSETTO:%s\r\nEND:STANDARD\r\n"
                     "BEGIN:DAYLIGHT\r\nDTSTART:16010101T%02d%02d00\r\nRRULE:%s\r\n"
                     "TZOFFSETFROM:%s\r\nTZOFFSETTO:%s\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n",
                     tzid, z.std.hour % 24, z.std.minute % 60, rs, dst, std, z.dst.hour % 24,
                     z.dst.minute % 60, rd, std, dst);
    }
    if (n < 0 || n >= 1024) {
        free(out);
        return NULL;
    }
    return out;
}

int eas_tz_blob_same(const unsigned char a[EAS_TZ_BLOB], const unsigned char b[EAS_TZ_BLOB])
{
    struct eas_tzi x, y;

    eas_tzi_decode(a, &x);
    eas_tzi_decode(b, &y);
    return eas_tzi_same(&x, &y);
}

int eas_tz_blob_is_utc(const unsigned char b[EAS_TZ_BLOB])
{
    struct eas_tzi z;

    eas_tzi_decode(b, &z);
    return z.bias == 0 && z.std.month == 0 && z.dst.month == 0;
}
