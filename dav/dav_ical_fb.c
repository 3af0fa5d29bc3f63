/*
 * dav_ical_fb.c — free-busy-query (RFC 4791 §7.10): the busy time of the events of a
 * collection within a range, merged, in UTC, as one VFREEBUSY. Transparent and cancelled
 * occurrences are free; tentative ones are BUSY-TENTATIVE. FREEBUSY periods of stored
 * VFREEBUSY resources are carried over with their FBTYPE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dav/dav_ical_int.h"

#define FB_MAX_PERIODS 100000

enum { FB_BUSY, FB_TENTATIVE, FB_UNAVAILABLE, FB_NTYPES };

struct period {
    int64_t s, e;
};

struct dav_ical_fb {
    int64_t start, end;
    struct period *p[FB_NTYPES];
    size_t n[FB_NTYPES], cap[FB_NTYPES];
    int oom;
};

struct dav_ical_fb *dav_ical_fb_new(int64_t start, int64_t end)
{
    struct dav_ical_fb *fb;

    dav_ical_lib_init();
    if (end <= start)
        return NULL;
    fb = calloc(1, sizeof(*fb));
    if (!fb)
        return NULL;
    fb->start = start;
    fb->end = end;
    return fb;
}

void dav_ical_fb_free(struct dav_ical_fb *fb)
{
    if (!fb)
        return;
    for (int i = 0; i < FB_NTYPES; i++)
        free(fb->p[i]);
    free(fb);
}

static void add_period(struct dav_ical_fb *fb, int type, int64_t s, int64_t e)
{
    if (s < fb->start)
        s = fb->start;
    if (e > fb->end)
        e = fb->end;
    if (e <= s || fb->n[type] >= FB_MAX_PERIODS)
        return;
    if (fb->n[type] == fb->cap[type]) {
        size_t nc = fb->cap[type] ? fb->cap[type] * 2 : 16;
        struct period *x = realloc(fb->p[type], nc * sizeof(*x));
        if (!x) {
            fb->oom = 1;
            return;
        }
        fb->p[type] = x;
        fb->cap[type] = nc;
    }
    fb->p[type][fb->n[type]++] = (struct period){s, e};
}

/* FREE for transparent or cancelled occurrences (-1), else the busy type. */
static int busy_type(icalcomponent *ev)
{
    icalproperty *tp = icalcomponent_get_first_property(ev, ICAL_TRANSP_PROPERTY);
    icalproperty *sp = icalcomponent_get_first_property(ev, ICAL_STATUS_PROPERTY);

    if (tp && icalproperty_get_transp(tp) == ICAL_TRANSP_TRANSPARENT)
        return -1;
    if (sp && icalproperty_get_status(sp) == ICAL_STATUS_CANCELLED)
        return -1;
    if (sp && icalproperty_get_status(sp) == ICAL_STATUS_TENTATIVE)
        return FB_TENTATIVE;
    return FB_BUSY;
}

static int fb_cb(const struct dav_ical_inst *in, void *ctx)
{
    struct dav_ical_fb *fb = ctx;
    int t = busy_type(in->comp);

    if (t >= 0 && in->e > in->s && dav_ical_inst_overlaps(in, fb->start, fb->end))
        add_period(fb, t, in->s, in->e);
    return fb->oom;
}

static void add_vfreebusy(struct dav_ical_fb *fb, icalcomponent *vfb)
{
    for (icalproperty *p = icalcomponent_get_first_property(vfb, ICAL_FREEBUSY_PROPERTY); p;
         p = icalcomponent_get_next_property(vfb, ICAL_FREEBUSY_PROPERTY)) {
        icalparameter *tp = icalproperty_get_first_parameter(p, ICAL_FBTYPE_PARAMETER);
        icalparameter_fbtype ft = tp ? icalparameter_get_fbtype(tp) : ICAL_FBTYPE_BUSY;
        struct icalperiodtype per = icalproperty_get_freebusy(p);
        int64_t s, e;
        int type = ft == ICAL_FBTYPE_BUSYTENTATIVE     ? FB_TENTATIVE
                   : ft == ICAL_FBTYPE_BUSYUNAVAILABLE ? FB_UNAVAILABLE
                   : ft == ICAL_FBTYPE_FREE            ? -1
                                                       : FB_BUSY;
        if (type < 0 || !dav_ical_time_valid(per.start))
            continue;
        s = dav_ical_tz_to_unix(per.start, NULL);
        if (!icaltime_is_null_time(per.end) && dav_ical_time_valid(per.end))
            e = dav_ical_tz_to_unix(per.end, NULL);
        else
            e = s + icaldurationtype_as_int(per.duration);
        add_period(fb, type, s, e);
    }
}

int dav_ical_fb_add(struct dav_ical_fb *fb, const struct dav_ical *c)
{
    int more;
    int64_t next;

    if (!fb || !c)
        return -1;
    if (c->kind == DAV_ICAL_VFREEBUSY) {
        for (icalcomponent *k =
                 icalcomponent_get_first_component(c->root, ICAL_VFREEBUSY_COMPONENT);
             k; k = icalcomponent_get_next_component(c->root, ICAL_VFREEBUSY_COMPONENT))
            add_vfreebusy(fb, k);
        return fb->oom ? -1 : 0;
    }
    if (c->kind != DAV_ICAL_VEVENT)
        return 0; /* only events take time */
    if (dav_ical_instances(c, fb->start, fb->end, SIZE_MAX, fb_cb, fb, &more, &next) < 0)
        return -1;
    return fb->oom ? -1 : 0;
}

static int cmp_period(const void *a, const void *b)
{
    const struct period *x = a, *y = b;
    if (x->s != y->s)
        return x->s < y->s ? -1 : 1;
    return (x->e > y->e) - (x->e < y->e);
}

/* Sorts and merges overlapping or touching periods in place. */
static size_t merge(struct period *p, size_t n)
{
    size_t o = 0;

    if (n == 0)
        return 0;
    qsort(p, n, sizeof(*p), cmp_period);
    for (size_t i = 1; i < n; i++) {
        if (p[i].s <= p[o].e) {
            if (p[i].e > p[o].e)
                p[o].e = p[i].e;
        } else
            p[++o] = p[i];
    }
    return o + 1;
}

static void fmt_utc(int64_t t, char *out, size_t n)
{
    struct icaltimetype x = dav_ical_tz_from_unix(t, NULL);
    snprintf(out, n, "%04d%02d%02dT%02d%02d%02dZ", x.year, x.month, x.day, x.hour, x.minute,
             x.second);
}

char *dav_ical_fb_render(struct dav_ical_fb *fb, size_t *len)
{
    static const char *const types[FB_NTYPES] = {"BUSY", "BUSY-TENTATIVE", "BUSY-UNAVAILABLE"};
    struct buf b = {0};
    char a[80], z[80], line[256];

    if (len)
        *len = 0;
    if (!fb || fb->oom)
        return NULL;
    buf_puts(&b, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Polaris//CalDAV//EN\r\n"
                 "BEGIN:VFREEBUSY\r\n");
    fmt_utc((int64_t)time(NULL), a, sizeof(a));
    snprintf(line, sizeof(line), "DTSTAMP:%s\r\n", a);
    buf_puts(&b, line);
    fmt_utc(fb->start, a, sizeof(a));
    fmt_utc(fb->end, z, sizeof(z));
    snprintf(line, sizeof(line), "DTSTART:%s\r\nDTEND:%s\r\n", a, z);
    buf_puts(&b, line);
    for (int t = 0; t < FB_NTYPES; t++) {
        fb->n[t] = merge(fb->p[t], fb->n[t]);
        for (size_t i = 0; i < fb->n[t]; i++) {
            fmt_utc(fb->p[t][i].s, a, sizeof(a));
            fmt_utc(fb->p[t][i].e, z, sizeof(z));
            snprintf(line, sizeof(line), "FREEBUSY;FBTYPE=%s:%s/%s\r\n", types[t], a, z);
            buf_puts(&b, line);
        }
    }
    buf_puts(&b, "END:VFREEBUSY\r\nEND:VCALENDAR\r\n");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}
