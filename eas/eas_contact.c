/*
 * eas_contact.c — vCard ↔ the ActiveSync Contacts and Contacts2 classes (MS-ASCNTC):
 * names, organisation, e-mail addresses, the phone and address slots, dates, web page,
 * picture, categories, notes and the few X- properties that hold what vCard lacks
 * (children, spouse, assistant, manager, alias). Reading and writing go through the
 * DAV vCard module (dav/dav_vcard.h).
 *
 * Each vCard property is assigned to at most one ActiveSync field (the "slots"); on a
 * device's Change the stored card keeps every property that had no slot — groups,
 * labels, a fourth e-mail address, X- properties of other clients — and the slotted
 * ones are replaced by what the device sent. New cards are vCard 3.0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dav/dav_vcard.h"
#include "eas/eas_pim.h"

#define EAS_CN_MAX_CATS 64
/* A picture larger than this (base64) is not stored: a vCard line must stay readable by
 * the DAV parser (dav_vcard.h bounds one line), and devices send small thumbnails. */
#define EAS_CN_MAX_PICTURE (512u * 1024)

/* The ActiveSync fields that come from one vCard property each. */
enum eas_slot {
    S_NONE = 0,
    S_EMAIL1,
    S_EMAIL2,
    S_EMAIL3,
    S_HOMEPHONE,
    S_HOME2PHONE,
    S_BUSPHONE,
    S_BUS2PHONE,
    S_MOBILE,
    S_PAGER,
    S_CAR,
    S_RADIO,
    S_ASSISTPHONE,
    S_HOMEFAX,
    S_BUSFAX,
    S_MAINPHONE,
    S_HOMEADR,
    S_BUSADR,
    S_OTHERADR,
    S_IM1,
    S_IM2,
    S_IM3,
    S_COUNT
};

static const unsigned eas_slot_tag[S_COUNT] = {
    [S_EMAIL1] = EAS_CONTACTS_EMAIL1ADDRESS,
    [S_EMAIL2] = EAS_CONTACTS_EMAIL2ADDRESS,
    [S_EMAIL3] = EAS_CONTACTS_EMAIL3ADDRESS,
    [S_HOMEPHONE] = EAS_CONTACTS_HOMEPHONENUMBER,
    [S_HOME2PHONE] = EAS_CONTACTS_HOME2PHONENUMBER,
    [S_BUSPHONE] = EAS_CONTACTS_BUSINESSPHONENUMBER,
    [S_BUS2PHONE] = EAS_CONTACTS_BUSINESS2PHONENUMBER,
    [S_MOBILE] = EAS_CONTACTS_MOBILEPHONENUMBER,
    [S_PAGER] = EAS_CONTACTS_PAGERNUMBER,
    [S_CAR] = EAS_CONTACTS_CARPHONENUMBER,
    [S_RADIO] = EAS_CONTACTS_RADIOPHONENUMBER,
    [S_ASSISTPHONE] = EAS_CONTACTS_ASSISTANTPHONENUMBER,
    [S_HOMEFAX] = EAS_CONTACTS_HOMEFAXNUMBER,
    [S_BUSFAX] = EAS_CONTACTS_BUSINESSFAXNUMBER,
    [S_MAINPHONE] = EAS_CONTACTS2_COMPANYMAINPHONE,
    [S_IM1] = EAS_CONTACTS2_IMADDRESS,
    [S_IM2] = EAS_CONTACTS2_IMADDRESS2,
    [S_IM3] = EAS_CONTACTS2_IMADDRESS3,
};

/* The TYPE values a phone slot is written with. */
static const char *const eas_slot_type[S_COUNT] = {
    [S_HOMEPHONE] = "HOME,VOICE",
    [S_HOME2PHONE] = "HOME,VOICE",
    [S_BUSPHONE] = "WORK,VOICE",
    [S_BUS2PHONE] = "WORK,VOICE",
    [S_MOBILE] = "CELL",
    [S_PAGER] = "PAGER",
    [S_CAR] = "CAR",
    [S_RADIO] = "X-RADIO",
    [S_ASSISTPHONE] = "X-ASSISTANT",
    [S_HOMEFAX] = "HOME,FAX",
    [S_BUSFAX] = "WORK,FAX",
    [S_MAINPHONE] = "X-COMPANY-MAIN",
    [S_HOMEADR] = "HOME",
    [S_BUSADR] = "WORK",
    [S_OTHERADR] = "OTHER",
};

/* Address component tags: street, city, state, postal code, country. */
static const unsigned eas_adr_tags[3][5] = {
    {EAS_CONTACTS_HOMEADDRESSSTREET, EAS_CONTACTS_HOMEADDRESSCITY, EAS_CONTACTS_HOMEADDRESSSTATE,
     EAS_CONTACTS_HOMEADDRESSPOSTALCODE, EAS_CONTACTS_HOMEADDRESSCOUNTRY},
    {EAS_CONTACTS_BUSINESSADDRESSSTREET, EAS_CONTACTS_BUSINESSADDRESSCITY,
     EAS_CONTACTS_BUSINESSADDRESSSTATE, EAS_CONTACTS_BUSINESSADDRESSPOSTALCODE,
     EAS_CONTACTS_BUSINESSADDRESSCOUNTRY},
    {EAS_CONTACTS_OTHERADDRESSSTREET, EAS_CONTACTS_OTHERADDRESSCITY, EAS_CONTACTS_OTHERADDRESSSTATE,
     EAS_CONTACTS_OTHERADDRESSPOSTALCODE, EAS_CONTACTS_OTHERADDRESSCOUNTRY},
};

/* Fields vCard has no standard property for, kept as X- properties so that they survive
 * the store and reach the user's other devices: the phonetic (Yomi) names under the names
 * Apple's clients use for them, and the Contacts2 CustomerId, GovernmentId, AccountName and
 * MMS (12.0+) under names of our own, which other CardDAV clients keep unshown. */
static const struct {
    const char *name;
    unsigned tag;
    int version; /* the first protocol version with the element */
} eas_cn_x2[] = {
    {"X-PHONETIC-FIRST-NAME", EAS_CONTACTS_YOMIFIRSTNAME, 0},
    {"X-PHONETIC-LAST-NAME", EAS_CONTACTS_YOMILASTNAME, 0},
    {"X-PHONETIC-ORG", EAS_CONTACTS_YOMICOMPANYNAME, 0},
    {"X-EAS-CUSTOMERID", EAS_CONTACTS2_CUSTOMERID, EAS_V120},
    {"X-EAS-GOVERNMENTID", EAS_CONTACTS2_GOVERNMENTID, EAS_V120},
    {"X-EAS-ACCOUNTNAME", EAS_CONTACTS2_ACCOUNTNAME, EAS_V120},
    {"X-EAS-MMS", EAS_CONTACTS2_MMS, EAS_V120},
};

/* The tag a stored X- property of eas_cn_x2 feeds for a device of that version, 0 for any
 * other property. */
static unsigned eas_cn_x2_tag(const char *name, int version)
{
    for (size_t i = 0; i < sizeof(eas_cn_x2) / sizeof(eas_cn_x2[0]); i++)
        if (!strcasecmp(name, eas_cn_x2[i].name))
            return version >= eas_cn_x2[i].version ? eas_cn_x2[i].tag : 0;
    return 0;
}

static int eas_take(int *used, int a, int b)
{
    if (!used[a])
        return used[a] = 1, a;
    if (b && !used[b])
        return used[b] = 1, b;
    return S_NONE;
}

/* Assigns each property of the card its slot (slot[i], S_NONE when none). */
static void eas_slots(const struct dav_vcard *v, int *slot)
{
    int used[S_COUNT] = {0};
    size_t n = dav_vcard_nprops(v);

    for (size_t i = 0; i < n; i++) {
        const struct dav_vcard_prop *p = dav_vcard_prop(v, i);
        int s = S_NONE;
        if (!strcasecmp(p->name, "EMAIL")) {
            s = !used[S_EMAIL1] ? S_EMAIL1 : !used[S_EMAIL2] ? S_EMAIL2 : S_EMAIL3;
            s = used[s] ? S_NONE : (used[s] = 1, s);
        } else if (!strcasecmp(p->name, "TEL")) {
            int fax = dav_vcard_has_type(p, "FAX");
            if (dav_vcard_has_type(p, "CELL"))
                s = eas_take(used, S_MOBILE, 0);
            else if (dav_vcard_has_type(p, "PAGER"))
                s = eas_take(used, S_PAGER, 0);
            else if (dav_vcard_has_type(p, "CAR"))
                s = eas_take(used, S_CAR, 0);
            else if (dav_vcard_has_type(p, "X-RADIO"))
                s = eas_take(used, S_RADIO, 0);
            else if (dav_vcard_has_type(p, "X-ASSISTANT"))
                s = eas_take(used, S_ASSISTPHONE, 0);
            else if (dav_vcard_has_type(p, "X-COMPANY-MAIN") || dav_vcard_has_type(p, "MAIN"))
                s = eas_take(used, S_MAINPHONE, 0);
            else if (dav_vcard_has_type(p, "WORK"))
                s = fax ? eas_take(used, S_BUSFAX, 0) : eas_take(used, S_BUSPHONE, S_BUS2PHONE);
            else if (fax)
                s = eas_take(used, S_HOMEFAX, 0);
            else
                s = eas_take(used, S_HOMEPHONE, S_HOME2PHONE);
        } else if (!strcasecmp(p->name, "ADR")) {
            if (dav_vcard_has_type(p, "HOME"))
                s = eas_take(used, S_HOMEADR, 0);
            else if (dav_vcard_has_type(p, "WORK"))
                s = eas_take(used, S_BUSADR, 0);
            else
                s = eas_take(used, S_OTHERADR, 0);
        } else if (!strcasecmp(p->name, "IMPP")) {
            s = !used[S_IM1] ? S_IM1 : !used[S_IM2] ? S_IM2 : S_IM3;
            s = used[s] ? S_NONE : (used[s] = 1, s);
        }
        slot[i] = s;
    }
}

/* ---- vCard → ActiveSync -------------------------------------------------------------- */

static void eas_add_unesc(struct eas_doc *d, struct eas_node *app, unsigned tag, const char *raw)
{
    char *s = dav_vcard_unescape(raw);

    if (s && *s)
        eas_add_text(d, app, tag, s);
    free(s);
}

static void eas_add_part(struct eas_doc *d, struct eas_node *app, unsigned tag, char **parts, int n,
                         int i)
{
    if (i < n && parts[i] && *parts[i])
        eas_add_text(d, app, tag, parts[i]);
}

static void eas_free_parts(char **parts, int n)
{
    for (int i = 0; i < n; i++)
        free(parts[i]);
}

static void eas_add_date(struct eas_doc *d, struct eas_node *app, unsigned tag, const char *raw)
{
    char buf[40], digits[16];
    size_t o = 0;
    int64_t t;

    /* 1980-05-01, 19800501, 1980-05-01T00:00:00Z... */
    for (const char *p = raw; *p && *p != 'T' && o < sizeof(digits) - 1; p++)
        if (*p >= '0' && *p <= '9')
            digits[o++] = *p;
    digits[o] = '\0';
    if (o != 8)
        return;
    snprintf(buf, sizeof(buf), "%.4s-%.2s-%.2s", digits, digits + 4, digits + 6);
    if (eas_pim_parse_time(buf, &t) < 0)
        return;
    eas_pim_iso_time(buf, sizeof(buf), t);
    eas_add_text(d, app, tag, buf);
}

static void eas_add_photo(struct eas_doc *d, struct eas_node *app, const char *raw)
{
    const char *b = raw, *comma;

    /* vCard 4: a data: URI; vCard 3: the base64 itself (ENCODING=b) */
    if (!strncasecmp(raw, "data:", 5)) {
        if (!(comma = strchr(raw, ',')) || !strstr(raw, ";base64"))
            return;
        b = comma + 1;
    } else if (!strncasecmp(raw, "http", 4)) {
        return; /* a link is not a picture */
    }
    if (*b)
        eas_add_text(d, app, EAS_CONTACTS_PICTURE, b);
}

static void eas_cn_categories(struct eas_doc *d, struct eas_node *app, const char *raw)
{
    char *parts[EAS_CN_MAX_CATS];
    int n = dav_vcard_split(raw, ',', parts, EAS_CN_MAX_CATS);
    const char *v[EAS_CN_MAX_CATS];
    size_t k = 0;

    for (int i = 0; i < n; i++)
        if (parts[i] && *parts[i])
            v[k++] = parts[i];
    eas_pim_categories(d, app, EAS_CONTACTS_CATEGORIES, EAS_CONTACTS_CATEGORY, v, k);
    eas_free_parts(parts, n > 0 ? n : 0);
}

static void eas_cn_prop(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c,
                        const struct dav_vcard_prop *p, int slot)
{
    char *parts[7] = {0};
    int n;

    if (slot >= S_HOMEADR && slot <= S_OTHERADR) {
        /* post office box; extended; street; locality; region; code; country */
        n = dav_vcard_split(p->value, ';', parts, 7);
        for (int i = 0; i < 5; i++)
            eas_add_part(d, app, eas_adr_tags[slot - S_HOMEADR][i], parts, n, i + 2);
        eas_free_parts(parts, n > 0 ? n : 0);
        return;
    }
    if (slot != S_NONE) {
        const char *v = p->value;
        if (slot >= S_IM1 && slot <= S_IM3 && c->version < EAS_V120)
            return;
        if (slot == S_MAINPHONE && c->version < EAS_V120)
            return;
        if (!strncasecmp(v, "tel:", 4))
            v += 4;
        eas_add_unesc(d, app, eas_slot_tag[slot], v);
        return;
    }
    if (!strcasecmp(p->name, "N")) {
        n = dav_vcard_split(p->value, ';', parts, 5);
        eas_add_part(d, app, EAS_CONTACTS_LASTNAME, parts, n, 0);
        eas_add_part(d, app, EAS_CONTACTS_FIRSTNAME, parts, n, 1);
        eas_add_part(d, app, EAS_CONTACTS_MIDDLENAME, parts, n, 2);
        eas_add_part(d, app, EAS_CONTACTS_TITLE, parts, n, 3);
        eas_add_part(d, app, EAS_CONTACTS_SUFFIX, parts, n, 4);
        eas_free_parts(parts, n > 0 ? n : 0);
    } else if (!strcasecmp(p->name, "FN")) {
        eas_add_unesc(d, app, EAS_CONTACTS_FILEAS, p->value);
    } else if (!strcasecmp(p->name, "ORG")) {
        n = dav_vcard_split(p->value, ';', parts, 2);
        eas_add_part(d, app, EAS_CONTACTS_COMPANYNAME, parts, n, 0);
        eas_add_part(d, app, EAS_CONTACTS_DEPARTMENT, parts, n, 1);
        eas_free_parts(parts, n > 0 ? n : 0);
    } else if (!strcasecmp(p->name, "TITLE")) {
        eas_add_unesc(d, app, EAS_CONTACTS_JOBTITLE, p->value);
    } else if (!strcasecmp(p->name, "BDAY")) {
        eas_add_date(d, app, EAS_CONTACTS_BIRTHDAY, p->value);
    } else if (!strcasecmp(p->name, "ANNIVERSARY") || !strcasecmp(p->name, "X-ANNIVERSARY")) {
        eas_add_date(d, app, EAS_CONTACTS_ANNIVERSARY, p->value);
    } else if (!strcasecmp(p->name, "URL")) {
        eas_add_unesc(d, app, EAS_CONTACTS_WEBPAGE, p->value);
    } else if (!strcasecmp(p->name, "PHOTO")) {
        eas_add_photo(d, app, p->value);
    } else if (!strcasecmp(p->name, "CATEGORIES")) {
        eas_cn_categories(d, app, p->value);
    } else if (!strcasecmp(p->name, "X-SPOUSE")) {
        eas_add_unesc(d, app, EAS_CONTACTS_SPOUSE, p->value);
    } else if (!strcasecmp(p->name, "X-ASSISTANT")) {
        eas_add_unesc(d, app, EAS_CONTACTS_ASSISTANTNAME, p->value);
    } else if (!strcasecmp(p->name, "X-OFFICE-LOCATION")) {
        eas_add_unesc(d, app, EAS_CONTACTS_OFFICELOCATION, p->value);
    } else if (!strcasecmp(p->name, "X-ALIAS") && c->version >= EAS_V140) {
        eas_add_unesc(d, app, EAS_CONTACTS_ALIAS, p->value);
    } else if (!strcasecmp(p->name, "NICKNAME") && c->version >= EAS_V120) {
        eas_add_unesc(d, app, EAS_CONTACTS2_NICKNAME, p->value);
    } else if (!strcasecmp(p->name, "X-MANAGER") && c->version >= EAS_V120) {
        eas_add_unesc(d, app, EAS_CONTACTS2_MANAGERNAME, p->value);
    } else if (eas_cn_x2_tag(p->name, c->version)) {
        eas_add_unesc(d, app, eas_cn_x2_tag(p->name, c->version), p->value);
    } else if (!strcasecmp(p->name, "X-CHILDREN")) {
        struct eas_node *kids = NULL;
        char *kp[32];
        n = dav_vcard_split(p->value, ',', kp, 32);
        for (int i = 0; i < n; i++)
            if (kp[i] && *kp[i]) {
                if (!kids)
                    kids = eas_add(d, app, EAS_CONTACTS_CHILDREN);
                eas_add_text(d, kids, EAS_CONTACTS_CHILD, kp[i]);
            }
        eas_free_parts(kp, n > 0 ? n : 0);
    }
}

int eas_contact_to_eas(struct eas_doc *d, struct eas_node *app, const struct eas_pim_ctx *c,
                       const char *vcard, size_t len)
{
    struct dav_vcard *v = NULL;
    const char *precond;
    char err[128];
    int *slot;
    size_t n;
    char *note = NULL;

    if (dav_vcard_parse(vcard, len, &v, &precond, err, sizeof(err)) < 0)
        return -1;
    n = dav_vcard_nprops(v);
    if (!(slot = calloc(n ? n : 1, sizeof(*slot)))) {
        dav_vcard_free(v);
        return -1;
    }
    eas_slots(v, slot);
    for (size_t i = 0; i < n; i++) {
        const struct dav_vcard_prop *p = dav_vcard_prop(v, i);
        if (!strcasecmp(p->name, "NOTE") && !note)
            note = dav_vcard_unescape(p->value);
        else
            eas_cn_prop(d, app, c, p, slot[i]);
    }
    eas_pim_body(d, app, c, note, EAS_CONTACTS_BODY, EAS_CONTACTS_BODYTRUNCATED);
    free(note);
    free(slot);
    dav_vcard_free(v);
    return 0;
}

/* ---- ActiveSync → vCard -------------------------------------------------------------- */

struct eas_cn_out {
    struct dav_vcard *v;
    int version;
    int err;
    int skip_fn, skip_n; /* the stored FN / N stay (ghosted): the device's are not written */
};

/* Adds NAME;TYPE=..:value, the value escaped here. */
static void eas_put(struct eas_cn_out *o, const char *name, const char *type, const char *text)
{
    struct dav_vcard_param prm = {"TYPE", type};
    char *esc;

    if (!text || !*text)
        return;
    if (!(esc = dav_vcard_escape(text)) ||
        dav_vcard_add(o->v, NULL, name, type ? &prm : NULL, type ? 1 : 0, esc) < 0)
        o->err = 1;
    free(esc);
}

/* A structured value from element texts (each escaped, joined by ';'). */
static void eas_put_struct(struct eas_cn_out *o, const char *name, const char *type,
                           const struct eas_node *app, const unsigned *tags, size_t ntags,
                           size_t lead_empty)
{
    struct dav_vcard_param prm = {"TYPE", type};
    char buf[8192];
    size_t off = 0;
    int any = 0;

    for (size_t i = 0; i < lead_empty; i++)
        buf[off++] = ';';
    for (size_t i = 0; i < ntags; i++) {
        const char *t = eas_child_text(app, tags[i]);
        char *esc = t ? dav_vcard_escape(t) : NULL;
        if (t && *t)
            any = 1;
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s", esc ? esc : "",
                                i + 1 < ntags ? ";" : "");
        free(esc);
        if (off >= sizeof(buf)) {
            o->err = 1;
            return;
        }
    }
    if (any && dav_vcard_add(o->v, NULL, name, type ? &prm : NULL, type ? 1 : 0, buf) < 0)
        o->err = 1;
}

static void eas_put_date(struct eas_cn_out *o, const char *name, const char *s)
{
    int64_t t;
    char buf[16];
    time_t tt;
    struct tm tm;

    if (!s || eas_pim_parse_time(s, &t) < 0)
        return;
    /* devices send the local midnight as UTC: east of Greenwich that is the evening
     * before, so the nearest midnight is the day meant */
    t += 12 * 3600;
    tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
    if (dav_vcard_add(o->v, NULL, name, NULL, 0, buf) < 0)
        o->err = 1;
}

static void eas_put_list(struct eas_cn_out *o, const char *name, const struct eas_node *list,
                         unsigned item_tag)
{
    char buf[4096];
    size_t off = 0;

    buf[0] = '\0';
    for (const struct eas_node *n = list ? eas_child(list, item_tag) : NULL; n;
         n = eas_next(n, item_tag)) {
        char *esc = dav_vcard_escape(eas_text(n));
        if (esc && *esc)
            off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s", off ? "," : "", esc);
        free(esc);
        if (off >= sizeof(buf)) {
            o->err = 1;
            return;
        }
    }
    if (off && dav_vcard_add(o->v, NULL, name, NULL, 0, buf) < 0)
        o->err = 1;
}

static void eas_put_names(struct eas_cn_out *o, const struct eas_node *app)
{
    static const unsigned ntags[] = {EAS_CONTACTS_LASTNAME, EAS_CONTACTS_FIRSTNAME,
                                     EAS_CONTACTS_MIDDLENAME, EAS_CONTACTS_TITLE,
                                     EAS_CONTACTS_SUFFIX};
    const char *fileas = eas_child_text(app, EAS_CONTACTS_FILEAS);
    char fn[1024] = "";
    size_t off = 0;
    char *esc;

    if (fileas && *fileas) {
        snprintf(fn, sizeof(fn), "%s", fileas);
    } else {
        static const unsigned order[] = {EAS_CONTACTS_FIRSTNAME, EAS_CONTACTS_MIDDLENAME,
                                         EAS_CONTACTS_LASTNAME};
        for (size_t i = 0; i < 3; i++) {
            const char *t = eas_child_text(app, order[i]);
            if (t && *t && off < sizeof(fn))
                off += (size_t)snprintf(fn + off, sizeof(fn) - off, "%s%s", off ? " " : "", t);
        }
        if (!fn[0])
            snprintf(fn, sizeof(fn), "%s",
                     eas_child_text(app, EAS_CONTACTS_COMPANYNAME)
                         ?: eas_child_text(app, EAS_CONTACTS_EMAIL1ADDRESS) ?: "");
    }
    /* FN and N are required (vCard 3.0); an empty N has its five empty components */
    if (!o->skip_fn) {
        esc = dav_vcard_escape(fn);
        if (!esc || dav_vcard_add(o->v, NULL, "FN", NULL, 0, esc) < 0)
            o->err = 1;
        free(esc);
    }
    if (!o->skip_n) {
        size_t it = 0;
        eas_put_struct(o, "N", NULL, app, ntags, 5, 0);
        if (!dav_vcard_find(o->v, "N", &it) && dav_vcard_add(o->v, NULL, "N", NULL, 0, ";;;;") < 0)
            o->err = 1;
    }
}

static void eas_put_phones(struct eas_cn_out *o, const struct eas_node *app)
{
    for (int s = S_EMAIL1; s <= S_IM3; s++) {
        const char *t;
        if (s >= S_HOMEADR && s <= S_OTHERADR) {
            int a = s - S_HOMEADR;
            eas_put_struct(o, "ADR", eas_slot_type[s], app, eas_adr_tags[a], 5, 2);
            continue;
        }
        if (!(t = eas_child_text(app, eas_slot_tag[s])) || !*t)
            continue;
        if (s <= S_EMAIL3)
            eas_put(o, "EMAIL", "INTERNET", t);
        else if (s >= S_IM1)
            eas_put(o, "IMPP", NULL, t);
        else
            eas_put(o, "TEL", eas_slot_type[s], t);
    }
}

static void eas_put_photo(struct eas_cn_out *o, const char *b64)
{
    struct dav_vcard_param prm[2] = {{"ENCODING", "b"}, {"TYPE", "JPEG"}};
    char *val;
    size_t n = strlen(b64);

    if (!n || n > EAS_CN_MAX_PICTURE)
        return;
    if (o->version >= 4) {
        if (!(val = malloc(n + 32))) {
            o->err = 1;
            return;
        }
        snprintf(val, n + 32, "data:image/jpeg;base64,%s", b64);
        if (dav_vcard_add(o->v, NULL, "PHOTO", NULL, 0, val) < 0)
            o->err = 1;
        free(val);
    } else if (dav_vcard_add(o->v, NULL, "PHOTO", prm, 2, b64) < 0) {
        o->err = 1;
    }
}

/* The device's fields; keep_photo/keep_note: the device sent none, the stored stays. */
static void eas_put_fields(struct eas_cn_out *o, const struct eas_node *app, int *keep_photo,
                           int *keep_note)
{
    static const unsigned org[] = {EAS_CONTACTS_COMPANYNAME, EAS_CONTACTS_DEPARTMENT};
    char *body;
    int present;
    const struct eas_node *n;

    eas_put_names(o, app);
    eas_put_struct(o, "ORG", NULL, app, org, 2, 0);
    eas_put(o, "TITLE", NULL, eas_child_text(app, EAS_CONTACTS_JOBTITLE));
    eas_put_phones(o, app);
    eas_put_date(o, "BDAY", eas_child_text(app, EAS_CONTACTS_BIRTHDAY));
    eas_put_date(o, o->version >= 4 ? "ANNIVERSARY" : "X-ANNIVERSARY",
                 eas_child_text(app, EAS_CONTACTS_ANNIVERSARY));
    eas_put(o, "URL", NULL, eas_child_text(app, EAS_CONTACTS_WEBPAGE));
    eas_put(o, "NICKNAME", NULL, eas_child_text(app, EAS_CONTACTS2_NICKNAME));
    eas_put(o, "X-SPOUSE", NULL, eas_child_text(app, EAS_CONTACTS_SPOUSE));
    eas_put(o, "X-ASSISTANT", NULL, eas_child_text(app, EAS_CONTACTS_ASSISTANTNAME));
    eas_put(o, "X-MANAGER", NULL, eas_child_text(app, EAS_CONTACTS2_MANAGERNAME));
    eas_put(o, "X-ALIAS", NULL, eas_child_text(app, EAS_CONTACTS_ALIAS));
    eas_put(o, "X-OFFICE-LOCATION", NULL, eas_child_text(app, EAS_CONTACTS_OFFICELOCATION));
    for (size_t i = 0; i < sizeof(eas_cn_x2) / sizeof(eas_cn_x2[0]); i++)
        eas_put(o, eas_cn_x2[i].name, NULL, eas_child_text(app, eas_cn_x2[i].tag));
    eas_put_list(o, "CATEGORIES", eas_child(app, EAS_CONTACTS_CATEGORIES), EAS_CONTACTS_CATEGORY);
    eas_put_list(o, "X-CHILDREN", eas_child(app, EAS_CONTACTS_CHILDREN), EAS_CONTACTS_CHILD);
    n = eas_child(app, EAS_CONTACTS_PICTURE);
    *keep_photo = n == NULL;
    if (n)
        eas_put_photo(o, eas_text(n));
    body = eas_pim_body_text(app, EAS_CONTACTS_BODY, &present);
    *keep_note = !present;
    if (body && *body)
        eas_put(o, "NOTE", NULL, body);
    free(body);
}

/* The ActiveSync elements a stored property feeds (0 when none). */
static size_t eas_prop_tags(const struct dav_vcard_prop *p, int slot, unsigned *t)
{
    static const struct {
        const char *name;
        unsigned tags[5];
    } whole[] = {
        {"N",
         {EAS_CONTACTS_LASTNAME, EAS_CONTACTS_FIRSTNAME, EAS_CONTACTS_MIDDLENAME,
          EAS_CONTACTS_TITLE, EAS_CONTACTS_SUFFIX}},
        /* FN is made from the names when there is no FileAs */
        {"FN",
         {EAS_CONTACTS_FILEAS, EAS_CONTACTS_LASTNAME, EAS_CONTACTS_FIRSTNAME,
          EAS_CONTACTS_MIDDLENAME}},
        {"ORG", {EAS_CONTACTS_COMPANYNAME, EAS_CONTACTS_DEPARTMENT}},
        {"TITLE", {EAS_CONTACTS_JOBTITLE}},
        {"BDAY", {EAS_CONTACTS_BIRTHDAY}},
        {"ANNIVERSARY", {EAS_CONTACTS_ANNIVERSARY}},
        {"X-ANNIVERSARY", {EAS_CONTACTS_ANNIVERSARY}},
        {"URL", {EAS_CONTACTS_WEBPAGE}},
        {"CATEGORIES", {EAS_CONTACTS_CATEGORIES}},
        {"NICKNAME", {EAS_CONTACTS2_NICKNAME}},
        {"X-CHILDREN", {EAS_CONTACTS_CHILDREN}},
        {"X-SPOUSE", {EAS_CONTACTS_SPOUSE}},
        {"X-ASSISTANT", {EAS_CONTACTS_ASSISTANTNAME}},
        {"X-MANAGER", {EAS_CONTACTS2_MANAGERNAME}},
        {"X-ALIAS", {EAS_CONTACTS_ALIAS}},
        {"X-OFFICE-LOCATION", {EAS_CONTACTS_OFFICELOCATION}},
        {"X-EAS-CUSTOMERID", {EAS_CONTACTS2_CUSTOMERID}},
        {"X-EAS-GOVERNMENTID", {EAS_CONTACTS2_GOVERNMENTID}},
        {"X-EAS-ACCOUNTNAME", {EAS_CONTACTS2_ACCOUNTNAME}},
        {"X-EAS-MMS", {EAS_CONTACTS2_MMS}},
        {"X-PHONETIC-FIRST-NAME", {EAS_CONTACTS_YOMIFIRSTNAME}},
        {"X-PHONETIC-LAST-NAME", {EAS_CONTACTS_YOMILASTNAME}},
        {"X-PHONETIC-ORG", {EAS_CONTACTS_YOMICOMPANYNAME}},
    };
    size_t n = 0;

    if (slot >= S_HOMEADR && slot <= S_OTHERADR) {
        for (int i = 0; i < 5; i++)
            t[n++] = eas_adr_tags[slot - S_HOMEADR][i];
        return n;
    }
    if (slot != S_NONE) {
        t[0] = eas_slot_tag[slot];
        return 1;
    }
    for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++)
        if (!strcasecmp(p->name, whole[i].name)) {
            while (n < 5 && whole[i].tags[n])
                t[n] = whole[i].tags[n], n++;
            return n;
        }
    return 0;
}

/* A stored property the device's Change does not replace: one ActiveSync does not carry,
 * or one whose every element is ghosted (outside the device's Supported list). */
static int eas_cn_keeps(const struct eas_pim_ctx *c, const struct eas_node *app,
                        const struct dav_vcard_prop *p, int slot)
{
    unsigned t[5];
    size_t n = eas_prop_tags(p, slot, t);

    if (!strcasecmp(p->name, "UID") || !strcasecmp(p->name, "REV") ||
        !strcasecmp(p->name, "PRODID"))
        return 0;
    if (n == 0)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (!eas_pim_ghosted(c, app, t[i]))
            return 0;
    return 1;
}

/* Copies a stored property as it was. */
static void eas_keep(struct eas_cn_out *o, const struct dav_vcard_prop *p)
{
    if (dav_vcard_add(o->v, p->group, p->name, p->params, p->nparams, p->value) < 0)
        o->err = 1;
}

/* Whether a value the device sends is the stored one in another spelling: a vCard 4 tel:
 * URI, a date with or without dashes, a structured value with empty trailing parts. */
static int eas_cn_same_value(const char *name, const char *a, const char *b)
{
    int date = !strcasecmp(name, "BDAY") || !strcasecmp(name, "ANNIVERSARY") ||
               !strcasecmp(name, "X-ANNIVERSARY");

    if (!strncasecmp(a, "tel:", 4))
        a += 4;
    if (!strncasecmp(b, "tel:", 4))
        b += 4;
    for (;;) {
        while (date && *a == '-')
            a++;
        while (date && *b == '-')
            b++;
        if (!*a || !*b)
            break;
        if (*a++ != *b++)
            return 0;
    }
    while (*a == ';')
        a++;
    while (*b == ';')
        b++;
    return !*a && !*b;
}

/* The device's card with each property it sent back unchanged in its stored form (group,
 * parameters, spelling): a Change carries every field again, and rebuilding them would
 * drop what ActiveSync does not carry (EMAIL;TYPE=WORK, TYPE=pref, Apple's item1. groups
 * their X-ABLabel hangs on, vCard 4 tel: URIs). Each stored property is used once. */
static struct dav_vcard *eas_cn_restore(const struct dav_vcard *made, const struct dav_vcard *old,
                                        const int *keep)
{
    size_t n = dav_vcard_nprops(old), m = dav_vcard_nprops(made);
    struct dav_vcard *v = dav_vcard_new(dav_vcard_version(made));
    char *used = calloc(n ? n : 1, 1);

    if (!v || !used)
        goto fail;
    for (size_t i = 0; i < m; i++) {
        const struct dav_vcard_prop *p = dav_vcard_prop(made, i), *q = p;
        for (size_t j = 0; j < n && q == p; j++) {
            const struct dav_vcard_prop *o = dav_vcard_prop(old, j);
            if (!used[j] && !keep[j] && !strcasecmp(o->name, p->name) &&
                eas_cn_same_value(p->name, o->value, p->value))
                q = o, used[j] = 1;
        }
        if (dav_vcard_add(v, q->group, q->name, q->params, q->nparams, q->value) < 0)
            goto fail;
    }
    free(used);
    return v;
fail:
    free(used);
    if (v)
        dav_vcard_free(v);
    return NULL;
}

int eas_contact_from_eas(const struct eas_node *app, const struct eas_pim_ctx *c, const char *base,
                         size_t baselen, struct eas_pim_out *out)
{
    struct dav_vcard *old = NULL;
    struct eas_cn_out o = {0};
    const char *precond;
    char err[128];
    int keep_photo = 0, keep_note = 0, *slot = NULL, *keep = NULL, rc = -1;
    size_t n = 0;

    memset(out, 0, sizeof(*out));
    if (base && dav_vcard_parse(base, baselen, &old, &precond, err, sizeof(err)) < 0)
        old = NULL; /* a stored card we cannot read is replaced by the device's */
    o.version = old ? dav_vcard_version(old) : 3;
    if (!(o.v = dav_vcard_new(o.version)))
        goto out;
    if (old && dav_vcard_uid(old))
        snprintf(out->uid, sizeof(out->uid), "%s", dav_vcard_uid(old));
    else
        eas_pim_uuid(out->uid, sizeof(out->uid));
    {
        char *esc = dav_vcard_escape(out->uid);
        if (!esc || dav_vcard_add(o.v, NULL, "UID", NULL, 0, esc) < 0)
            o.err = 1;
        free(esc);
    }
    if (old) {
        n = dav_vcard_nprops(old);
        if (!(slot = calloc(n ? n : 1, sizeof(*slot))) ||
            !(keep = calloc(n ? n : 1, sizeof(*keep))))
            goto out;
        eas_slots(old, slot);
        for (size_t i = 0; i < n; i++) {
            const struct dav_vcard_prop *p = dav_vcard_prop(old, i);
            keep[i] = eas_cn_keeps(c, app, p, slot[i]);
            if (keep[i] && !strcasecmp(p->name, "FN"))
                o.skip_fn = 1;
            if (keep[i] && !strcasecmp(p->name, "N"))
                o.skip_n = 1;
        }
    }
    eas_put_fields(&o, app, &keep_photo, &keep_note);
    for (size_t i = 0; old && i < n; i++) {
        const struct dav_vcard_prop *p = dav_vcard_prop(old, i);
        /* a picture or note the device did not send stays (it may not send them back) */
        if ((!strcasecmp(p->name, "PHOTO") && !keep_photo) ||
            (!strcasecmp(p->name, "NOTE") && !keep_note))
            continue;
        if (keep[i] || !strcasecmp(p->name, "PHOTO") || !strcasecmp(p->name, "NOTE"))
            eas_keep(&o, p);
    }
    {
        char rev[32];
        eas_pim_compact_time(rev, sizeof(rev), c->now);
        if (dav_vcard_add(o.v, NULL, "REV", NULL, 0, rev) < 0)
            o.err = 1;
    }
    if (!o.err && old) {
        struct dav_vcard *r = eas_cn_restore(o.v, old, keep);
        if (!r)
            goto out;
        dav_vcard_free(o.v);
        o.v = r;
    }
    if (o.err || !(out->text = dav_vcard_serialize(o.v, &out->len)))
        goto out;
    rc = 0;
out:
    free(slot);
    free(keep);
    if (o.v)
        dav_vcard_free(o.v);
    if (old)
        dav_vcard_free(old);
    return rc;
}
