/*
 * eas_pim.c — what the PIM classes share: ActiveSync date forms, UUIDs, bodies and
 * categories in ApplicationData, the dispatch by folder class, and storing a device's
 * item (name, UID, content type and the occurrence index in the caller's transaction).
 */
#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "eas/eas_pim.h"

#include "dav/dav_ical.h"

#define EAS_PIM_HORIZON (400LL * 86400) /* how far ahead a new item's index is complete */

void eas_pim_out_free(struct eas_pim_out *o)
{
    free(o->text);
    o->text = NULL;
    o->len = 0;
}

/* ---- dates -------------------------------------------------------------------------- */

static int64_t eas_pim_timegm(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};

    return (int64_t)timegm(&tm);
}

int eas_pim_parse_time(const char *s, int64_t *t)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;

    if (!s)
        return -1;
    while (*s == ' ')
        s++;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) == 6) {
        s += n;
        if (*s == '.') /* milliseconds */
            for (s++; *s >= '0' && *s <= '9'; s++)
                ;
    } else if (sscanf(s, "%4d%2d%2dT%2d%2d%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) == 6) {
        s += n;
    } else if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3) {
        s += n;
    } else {
        return -1;
    }
    if (*s == 'Z')
        s++;
    if (*s || y < 1601 || y > 4500 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60)
        return -1;
    *t = eas_pim_timegm(y, mo, d, h, mi, sec);
    return 0;
}

void eas_pim_compact_time(char *out, size_t outlen, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, outlen, "%Y%m%dT%H%M%SZ", &tm);
}

void eas_pim_iso_time(char *out, size_t outlen, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, outlen, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

void eas_pim_uuid(char *out, size_t outlen)
{
    uint32_t w[4];

    for (int i = 0; i < 4; i++)
        w[i] = eas_random32();
    w[1] = (w[1] & 0xffff0fffu) | 0x00004000u; /* version 4 */
    w[2] = (w[2] & 0x3fffffffu) | 0x80000000u; /* variant 10 */
    snprintf(out, outlen, "%08x-%04x-%04x-%04x-%04x%08x", w[0], w[1] >> 16, w[1] & 0xffffu,
             w[2] >> 16, w[2] & 0xffffu, w[3]);
}

int eas_pim_uid_safe(const char *uid)
{
    size_t n = strlen(uid);

    if (n == 0 || n > 200 || uid[0] == '.')
        return 0;
    for (const char *p = uid; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.' || *p == '@'))
            return 0;
    return 1;
}

int eas_pim_ghosted(const struct eas_pim_ctx *c, const struct eas_node *app, unsigned tag)
{
    if (!c->supported || !c->nsupported || (app && eas_child(app, tag)))
        return 0;
    for (size_t i = 0; i < c->nsupported; i++)
        if (c->supported[i] == tag)
            return 0;
    return 1;
}

/* ---- bodies and categories ---------------------------------------------------------- */

static size_t eas_pim_utf8_cut(const char *s, size_t len, size_t max)
{
    size_t n = max < len ? max : len;

    while (n > 0 && n < len && ((unsigned char)s[n] & 0xc0u) == 0x80u)
        n--;
    return n;
}

static const struct eas_body_pref *eas_pim_pref(const struct eas_coll_opts *o)
{
    if (!o)
        return NULL;
    for (int i = 0; i < o->nprefs; i++)
        if (o->prefs[i].type == EAS_BODY_PLAIN)
            return &o->prefs[i];
    return o->nprefs > 0 ? &o->prefs[0] : NULL;
}

/* Plain text as HTML, for a device that takes HTML bodies only. malloc'd. */
static char *eas_pim_to_html(const char *t, size_t len, size_t *outlen)
{
    static const char head[] = "<html><body>", tail[] = "</body></html>";
    size_t cap = len * 6 + sizeof(head) + sizeof(tail), o = 0;
    char *h = malloc(cap);

    if (!h)
        return NULL;
    memcpy(h, head, sizeof(head) - 1);
    o = sizeof(head) - 1;
    for (size_t i = 0; i < len; i++) {
        const char *rep = t[i] == '&'    ? "&amp;"
                          : t[i] == '<'  ? "&lt;"
                          : t[i] == '>'  ? "&gt;"
                          : t[i] == '\n' ? "<br>"
                          : t[i] == '\r' ? ""
                                         : NULL;
        if (rep) {
            memcpy(h + o, rep, strlen(rep));
            o += strlen(rep);
        } else {
            h[o++] = t[i];
        }
    }
    memcpy(h + o, tail, sizeof(tail));
    *outlen = o + sizeof(tail) - 1;
    return h;
}

void eas_pim_body(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c,
                  const char *text, unsigned body_tag, unsigned trunc_tag)
{
    const struct eas_body_pref *p = eas_pim_pref(c->o);
    size_t len = text ? strlen(text) : 0, send = len;
    struct eas_node *b;
    char *html = NULL;
    int type = EAS_BODY_PLAIN;

    if (!len)
        return; /* no body: nothing to say (an empty Body would read as "emptied") */

    if (c->version < EAS_V120) {
        int64_t max = c->o ? eas_trunc_code_bytes(c->o->trunc25) : -1;
        if (!body_tag)
            return;
        if (max >= 0 && (uint64_t)max < len)
            send = eas_pim_utf8_cut(text, len, (size_t)max);
        if (trunc_tag)
            eas_add_int(d, app, trunc_tag, send < len);
        if (send > 0)
            eas_add_textn(d, app, body_tag, text, send);
        return;
    }
    /* PIM bodies are plain text: sent as such unless the device takes HTML only */
    if (p && p->type == EAS_BODY_HTML && (html = eas_pim_to_html(text, len, &len))) {
        text = html;
        type = EAS_BODY_HTML;
        send = len;
    }
    if (p && p->trunc >= 0 && (uint64_t)p->trunc < len)
        send = eas_pim_utf8_cut(text, len, (size_t)p->trunc);
    if (p && send < len && p->all_or_none)
        send = 0;
    b = eas_add(d, app, EAS_AIRSYNCBASE_BODY);
    eas_add_int(d, b, EAS_AIRSYNCBASE_TYPE, type);
    eas_add_int(d, b, EAS_AIRSYNCBASE_ESTIMATEDDATASIZE, (long long)len);
    if (send < len)
        eas_add_int(d, b, EAS_AIRSYNCBASE_TRUNCATED, 1);
    if (send > 0)
        eas_add_textn(d, b, EAS_AIRSYNCBASE_DATA, text, send);
    free(html);
}

/* Appends the UTF-8 of a code point. */
static size_t eas_pim_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* An HTML body as text: tags dropped (line breaks where blocks end), the common entities
 * decoded. The result is never longer than the input. */
static char *eas_pim_html_text(const char *h)
{
    static const struct {
        const char *name;
        const char *text;
    } ents[] = {{"amp;", "&"},   {"lt;", "<"},   {"gt;", ">"},
                {"quot;", "\""}, {"apos;", "'"}, {"nbsp;", " "}};
    size_t n = strlen(h), o = 0;
    char *t = malloc(n + 1);
    int skip = 0; /* inside <style> or <script> */

    if (!t)
        return NULL;
    for (size_t i = 0; i < n;) {
        if (h[i] == '<') {
            size_t e = i + 1;
            while (e < n && h[e] != '>')
                e++;
            if (!strncasecmp(h + i, "<style", 6) || !strncasecmp(h + i, "<script", 7))
                skip = 1;
            else if (!strncasecmp(h + i, "</style", 7) || !strncasecmp(h + i, "</script", 8))
                skip = 0;
            else if (!skip && o > 0 && t[o - 1] != '\n' &&
                     (!strncasecmp(h + i, "<br", 3) || !strncasecmp(h + i, "</p", 3) ||
                      !strncasecmp(h + i, "</div", 5) || !strncasecmp(h + i, "</li", 4) ||
                      !strncasecmp(h + i, "</tr", 4)))
                t[o++] = '\n';
            i = e < n ? e + 1 : n;
            continue;
        }
        if (skip) {
            i++;
            continue;
        }
        if (h[i] == '&') {
            size_t k;
            for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++)
                if (!strncasecmp(h + i + 1, ents[k].name, strlen(ents[k].name)))
                    break;
            if (k < sizeof(ents) / sizeof(ents[0])) {
                t[o++] = ents[k].text[0];
                i += 1 + strlen(ents[k].name);
                continue;
            }
            if (h[i + 1] == '#') {
                char *end;
                unsigned long cp = h[i + 2] == 'x' || h[i + 2] == 'X'
                                       ? strtoul(h + i + 3, &end, 16)
                                       : strtoul(h + i + 2, &end, 10);
                /* "&#65;" is 5 bytes for at most 4 of UTF-8: never longer */
                if (*end == ';' && cp > 0 && cp < 0x110000 && (size_t)(end + 1 - (h + i)) >= 4) {
                    o += eas_pim_utf8(t + o, cp);
                    i = (size_t)(end + 1 - h);
                    continue;
                }
            }
        }
        t[o++] = h[i++];
    }
    while (o > 0 && (t[o - 1] == '\n' || t[o - 1] == ' '))
        o--;
    t[o] = '\0';
    return t;
}

char *eas_pim_body_text(const struct eas_node *app, unsigned body_tag, int *present)
{
    const struct eas_node *b = eas_child(app, EAS_AIRSYNCBASE_BODY);

    *present = 0;
    if (b) {
        const struct eas_node *data = eas_child(b, EAS_AIRSYNCBASE_DATA);
        *present = 1;
        if (eas_child_int(b, EAS_AIRSYNCBASE_TYPE, EAS_BODY_PLAIN) == EAS_BODY_HTML)
            return eas_pim_html_text(data ? eas_text(data) : "");
        return strdup(data ? eas_text(data) : "");
    }
    if (body_tag && (b = eas_child(app, body_tag))) {
        *present = 1;
        return strdup(eas_text(b));
    }
    return NULL;
}

void eas_pim_categories(struct eas_doc *d, struct eas_node *app, unsigned cats_tag,
                        unsigned cat_tag, const char *const *v, size_t n)
{
    struct eas_node *cats;

    if (n == 0)
        return;
    cats = eas_add(d, app, cats_tag);
    for (size_t i = 0; i < n; i++)
        eas_add_text(d, cats, cat_tag, v[i]);
}

/* ---- dispatch ------------------------------------------------------------------------ */

/* A calendar folder may hold tasks too (CalDAV collections with VEVENT and VTODO), and a
 * task list events: the component decides, not the folder. */
static unsigned eas_pim_kind(const char *text, size_t len)
{
    const char *p = text, *end = text + len;

    while (p < end && (p = memmem(p, (size_t)(end - p), "BEGIN:V", 7))) {
        int line_start = p == text || p[-1] == '\n';
        p += 7;
        if (!line_start)
            continue; /* inside a value, not a component */
        if ((size_t)(end - p) >= 5 && !strncmp(p, "EVENT", 5))
            return STORE_CLASS_CALENDAR;
        if ((size_t)(end - p) >= 4 && !strncmp(p, "TODO", 4))
            return STORE_CLASS_TASKS;
        if ((size_t)(end - p) >= 7 && !strncmp(p, "JOURNAL", 7))
            return STORE_CLASS_NOTES;
        if ((size_t)(end - p) >= 4 && !strncmp(p, "CARD", 4))
            return STORE_CLASS_CONTACTS;
    }
    return 0;
}

int eas_pim_appdata(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c, int cls,
                    const char *text, size_t len)
{
    unsigned kind = eas_pim_kind(text, len);

    /* an item of another kind than its folder cannot be shown as the folder's class */
    if (kind != (unsigned)cls)
        return -1;
    switch (cls) {
    case STORE_CLASS_CALENDAR:
        return eas_calendar_to_eas(d, app, c, text, len);
    case STORE_CLASS_TASKS:
        return eas_task_to_eas(d, app, c, text, len);
    case STORE_CLASS_NOTES:
        return eas_note_to_eas(d, app, c, text, len);
    case STORE_CLASS_CONTACTS:
        return eas_contact_to_eas(d, app, c, text, len);
    default:
        return -1;
    }
}

int eas_pim_from_eas(const struct eas_node *app, const struct eas_pim_ctx *c, int cls,
                     const char *base, size_t baselen, struct eas_pim_out *out)
{
    memset(out, 0, sizeof(*out));
    switch (cls) {
    case STORE_CLASS_CALENDAR:
        return eas_calendar_from_eas(app, c, base, baselen, out);
    case STORE_CLASS_TASKS:
        return eas_task_from_eas(app, c, base, baselen, out);
    case STORE_CLASS_NOTES:
        return eas_note_from_eas(app, c, base, baselen, out);
    case STORE_CLASS_CONTACTS:
        return eas_contact_from_eas(app, c, base, baselen, out);
    default:
        return -1;
    }
}

/* ---- the occurrence index ------------------------------------------------------------ */

/* The occurrence ranges of an iCalendar object for the store's index, by the DAV
 * iCalendar module (the same ranges CalDAV writes). */
static int eas_pim_ranges(const char *ical, size_t len, int64_t horizon, struct store_range **r,
                          size_t *n, int64_t *complete)
{
    struct dav_ical *c = NULL;
    const char *precond = NULL;
    char err[256];
    int rc;

    *r = NULL;
    *n = 0;
    if (dav_ical_parse(ical, len, &c, &precond, err, sizeof(err)) < 0)
        return -1;
    rc = dav_ical_ranges(c, horizon, r, n, complete);
    dav_ical_free(c);
    return rc;
}

/* ---- UIDs ------------------------------------------------------------------------------- */

int eas_pim_reuid(struct eas_pim_out *o)
{
    icalcomponent *root = eas_ical_parse(o->text, o->len);
    struct eas_pim_out n = {0};

    if (!root)
        return -1;
    eas_pim_uuid(n.uid, sizeof(n.uid));
    for (icalcomponent *c = icalcomponent_get_first_component(root, ICAL_ANY_COMPONENT); c;
         c = icalcomponent_get_next_component(root, ICAL_ANY_COMPONENT))
        if (icalcomponent_get_first_property(c, ICAL_UID_PROPERTY))
            icalcomponent_set_uid(c, n.uid);
    if (eas_ical_finish(root, &n) < 0) {
        icalcomponent_free(root);
        return -1;
    }
    icalcomponent_free(root);
    eas_pim_out_free(o);
    *o = n;
    return 0;
}

/* ---- storing a device's item --------------------------------------------------------- */

static int eas_pim_write(struct store_user *u, const struct store_folder *f,
                         const struct store_item *it, const struct eas_pim_out *in,
                         struct store_item *out)
{
    int vcard = f->cls == STORE_CLASS_CONTACTS;
    struct store_item_new n = {
        .body = in->text,
        .body_len = in->len,
        .ctype = vcard ? "text/vcard; charset=utf-8" : "text/calendar; charset=utf-8",
        .ext_uid = in->uid,
    };
    char name[300], gen[64];
    int rc;

    if (it)
        return store_item_replace(u, it->id, &n, 0, out, NULL);
    /* the resource name is the UID when it is made of safe characters, so that DAV
     * clients see the name they would have chosen themselves */
    if (eas_pim_uid_safe(in->uid)) {
        snprintf(name, sizeof(name), "%s.%s", in->uid, vcard ? "vcf" : "ics");
        n.name = name;
        rc = store_item_add(u, f->id, &n, out, NULL);
        if (rc != STORE_EEXIST)
            return rc;
        /* the name is taken by an item of another UID: a name of our own */
    }
    eas_pim_uuid(gen, sizeof(gen));
    snprintf(name, sizeof(name), "%s.%s", gen, vcard ? "vcf" : "ics");
    n.name = name;
    return store_item_add(u, f->id, &n, out, NULL);
}

int eas_pim_store(struct store_user *u, const struct store_folder *f, const struct store_item *it,
                  const struct eas_pim_out *in, struct store_item *out)
{
    struct store_range *r = NULL;
    size_t n = 0;
    int64_t complete = INT64_MAX;
    int rc;

    if (f->cls == STORE_CLASS_CONTACTS)
        return eas_pim_write(u, f, it, in, out);
    /* the ranges first: what the index cannot read is refused before anything is written,
     * so a refusal (Status 6) leaves the store as it was */
    if (eas_pim_ranges(in->text, in->len, time(NULL) + EAS_PIM_HORIZON, &r, &n, &complete) < 0) {
        free(r);
        return STORE_EINVAL;
    }
    rc = eas_pim_write(u, f, it, in, out);
    if (rc == STORE_OK)
        rc = store_item_set_ranges(u, out->id, r, n, complete, NULL);
    free(r);
    return rc;
}

/* ---- FilterType reach ----------------------------------------------------------------- */

int64_t eas_pim_reach(struct store_user *u, int cls, const struct store_item *it)
{
    struct store_range *r = NULL;
    size_t n = 0;
    int64_t complete = INT64_MAX, reach = INT64_MAX;

    if (cls == STORE_CLASS_TASKS) {
        char *body = NULL;
        size_t len = 0;
        int done = 0;
        if (store_item_body(u, it->id, &body, &len, NULL) == STORE_OK)
            done = eas_task_completed(body, len);
        free(body);
        return done ? 0 : INT64_MAX;
    }
    if (cls != STORE_CLASS_CALENDAR)
        return INT64_MAX;
    if (store_item_get_ranges(u, it->id, &r, &n, &complete, NULL) != STORE_OK)
        return INT64_MAX;
    /* An index that is incomplete goes on past its horizon: the item has occurrences
     * later than any window start, which is all an open-ended window needs to know. */
    if (n > 0 && complete == INT64_MAX) {
        reach = r[0].end;
        for (size_t i = 1; i < n; i++)
            if (r[i].end > reach)
                reach = r[i].end;
    }
    free(r);
    return reach;
}
