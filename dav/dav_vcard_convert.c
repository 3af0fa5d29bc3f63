/*
 * dav_vcard_convert.c — vCard 3.0 (RFC 2426) ↔ 4.0 (RFC 6350) for address-data in
 * another version than stored (RFC 6352 §10.4): TYPE=PREF ↔ PREF=1, inline media
 * (ENCODING=b;TYPE=JPEG ↔ data: URIs), KIND/MEMBER ↔ Apple's X-ADDRESSBOOKSERVER-*,
 * dates (extended ↔ basic, Apple's omitted year ↔ --MMDD), LABEL ↔ ADR;LABEL,
 * SORT-STRING ↔ N;SORT-AS, AGENT ↔ RELATED, GEO and tel: URIs, N synthesized for 3.0.
 *
 * The mappings are chosen so that 3→4→3 and 4→3→4 give back the same data; what one
 * version cannot say at all (3.0 NAME/MAILER/CLASS, an inline AGENT card, 4.0 XML,
 * CLIENTPIDMAP, PID) is dropped. Everything else passes through untouched.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dav/dav_vcard_int.h"

/* Apple writes a birthday without a year as this year plus X-APPLE-OMIT-YEAR. */
#define OMIT_YEAR "1604"
/* What a media type word may hold (it ends up in a parameter value and a data: URI). */
#define TOKEN "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.+-"

struct conv {
    const struct dav_vcard *src;
    struct dav_vcard *dst;
    int to;  /* 3 or 4 */
    int err; /* out of memory */
    int has_kind, has_xkind, has_member, has_xmember, has_anniv, has_xanniv, has_n;
    const char **adr_label;  /* 3→4: per source property, the LABEL to put on that ADR */
    unsigned char *placed;   /* 3→4: per source LABEL, 1 once it is on an ADR */
    const char *sort_string; /* 3→4: SORT-STRING, put on N as SORT-AS */
};

/* A property's parameters while they are being rewritten. */
struct plist {
    struct dav_vcard_param p[DAV_VC_MAX_PARAMS];
    unsigned char q[DAV_VC_MAX_PARAMS];
    size_t n;
};

static char *scratch(struct conv *c, size_t n)
{
    char *s = dav_vc_alloc(c->dst, n);
    if (!s)
        c->err = 1;
    return s;
}

static char *concat3(struct conv *c, const char *a, const char *b, const char *d)
{
    size_t la = strlen(a), lb = strlen(b), ld = strlen(d);
    char *s = scratch(c, la + lb + ld + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb);
        memcpy(s + la + lb, d, ld + 1);
    }
    return s;
}

static void pl_load(struct plist *l, const struct dav_vc_prop *p)
{
    l->n = p->p.nparams;
    for (size_t i = 0; i < l->n; i++) {
        l->p[i] = p->p.params[i];
        l->q[i] = p->quoted ? p->quoted[i] : 0;
    }
}

static const char *pl_get(const struct plist *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (dav_vc_ieq(l->p[i].name, name))
            return l->p[i].value;
    return NULL;
}

/* Removes every parameter called name; returns the first one's value. */
static const char *pl_take(struct plist *l, const char *name)
{
    const char *first = NULL;
    size_t w = 0;

    for (size_t i = 0; i < l->n; i++) {
        if (dav_vc_ieq(l->p[i].name, name)) {
            if (!first)
                first = l->p[i].value;
            continue;
        }
        l->p[w] = l->p[i];
        l->q[w++] = l->q[i];
    }
    l->n = w;
    return first;
}

/* Removes the first (last: the last) parameter called name; returns its value. */
static const char *pl_take_at(struct plist *l, const char *name, int last)
{
    for (size_t k = 0; k < l->n; k++) {
        size_t i = last ? l->n - 1 - k : k;
        if (dav_vc_ieq(l->p[i].name, name)) {
            const char *v = l->p[i].value;
            memmove(&l->p[i], &l->p[i + 1], (l->n - i - 1) * sizeof(l->p[0]));
            memmove(&l->q[i], &l->q[i + 1], l->n - i - 1);
            l->n--;
            return v;
        }
    }
    return NULL;
}

static const char *pl_take_one(struct plist *l, const char *name)
{
    return pl_take_at(l, name, 0);
}

static void pl_add(struct plist *l, const char *name, const char *value, int quoted)
{
    if (l->n == DAV_VC_MAX_PARAMS)
        return; /* a card that already uses every slot loses the added hint, not the card */
    l->p[l->n].name = name;
    l->p[l->n].value = value;
    l->q[l->n++] = (unsigned char)quoted;
}

/* Removes `item` from every TYPE list (dropping lists left empty); 1 when it was there. */
static int pl_type_remove(struct conv *c, struct plist *l, const char *item)
{
    int found = 0;
    size_t w = 0, n = strlen(item);

    for (size_t i = 0; i < l->n; i++) {
        if (dav_vc_ieq(l->p[i].name, "TYPE") && dav_vc_list_has(l->p[i].value, item)) {
            found = 1;
            const char *s = l->p[i].value;
            char *out = scratch(c, strlen(s) + 1), *o = out;
            if (!out)
                return found;
            while (*s) {
                const char *e = strchr(s, ',');
                size_t len = e ? (size_t)(e - s) : strlen(s);
                if (!(len == n && !strncasecmp(s, item, n))) {
                    if (o != out)
                        *o++ = ',';
                    memcpy(o, s, len);
                    o += len;
                }
                s += len + (e ? 1 : 0);
            }
            *o = '\0';
            if (!*out)
                continue;
            l->p[i].value = out;
        }
        l->p[w] = l->p[i];
        l->q[w++] = l->q[i];
    }
    l->n = w;
    return found;
}

/* Drops empty items from TYPE lists ("TYPE=" or "TYPE=,cell" say nothing more than
 * "TYPE=cell") so both versions write the same lists. */
static void pl_type_clean(struct conv *c, struct plist *l)
{
    size_t w = 0;

    for (size_t i = 0; i < l->n; i++) {
        const char *v = l->p[i].value;
        if (dav_vc_ieq(l->p[i].name, "TYPE") &&
            (!*v || *v == ',' || v[strlen(v) - 1] == ',' || strstr(v, ",,"))) {
            char *out = scratch(c, strlen(v) + 1), *o = out;
            if (!out)
                return;
            for (const char *s = v; *s;) {
                size_t n = strcspn(s, ",");
                if (n) {
                    if (o != out)
                        *o++ = ',';
                    memcpy(o, s, n);
                    o += n;
                }
                s += n + (s[n] == ',');
            }
            *o = '\0';
            if (!*out)
                continue;
            l->p[i].value = out;
        }
        l->p[w] = l->p[i];
        l->q[w++] = l->q[i];
    }
    l->n = w;
}

static void pl_type_add(struct conv *c, struct plist *l, const char *item)
{
    for (size_t i = 0; i < l->n; i++) {
        if (dav_vc_ieq(l->p[i].name, "TYPE")) {
            l->p[i].value = concat3(c, l->p[i].value, ",", item);
            return;
        }
    }
    pl_add(l, "TYPE", item, 0);
}

static void emit(struct conv *c, const char *group, const char *name, const struct plist *l,
                 const char *value)
{
    if (!c->err && value &&
        dav_vc_push(c->dst, group, name, l ? l->p : NULL, l ? l->q : NULL, l ? l->n : 0, value) < 0)
        c->err = 1;
}

/* emit() for a property that keeps its name: and its spelling (X-ABLabel). */
static void emit_same(struct conv *c, const struct dav_vc_prop *p, const char *name,
                      const struct plist *l, const char *value)
{
    size_t before = c->dst->nprops;

    emit(c, p->p.group, name, l, value);
    if (!c->err && c->dst->nprops > before && name == p->p.name &&
        dav_vc_spell(c->dst, p->spelled) < 0)
        c->err = 1;
}

/* ---- dates ---- */

static int digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* The length of an extended time "hh:mm[:ss]" then "", "Z" or "±hh[:mm]" filling all of
 * s, or 0 when s is not that. */
static size_t ext_time(const char *s)
{
    size_t n = 5;

    if (!digits(s, 2) || s[2] != ':' || !digits(s + 3, 2))
        return 0;
    if (s[5] == ':') {
        if (!digits(s + 6, 2))
            return 0;
        n = 8;
    }
    const char *tz = s + n;
    if (!*tz || !strcmp(tz, "Z"))
        return n;
    if ((*tz == '+' || *tz == '-') && digits(tz + 1, 2) &&
        (!tz[3] || (tz[3] == ':' && digits(tz + 4, 2) && !tz[6])))
        return n;
    return 0;
}

/* 3.0 extended ("1985-04-12", "--04-12", "1985-04-12T10:00:00-05:00") → 4.0 basic
 * ("19850412", "--0412", "19850412T100000-0500"); Apple's 1604 year with
 * X-APPLE-OMIT-YEAR → "--MMDD". Any other shape is returned as it is, so that a value
 * this does not understand is never half-rewritten. */
static const char *date_basic(struct conv *c, const char *s, int omit_year)
{
    size_t n = strlen(s), dl;
    char *out, *o;

    if (n >= 10 && digits(s, 4) && s[4] == '-' && digits(s + 5, 2) && s[7] == '-' &&
        digits(s + 8, 2))
        dl = 10;
    else if (n >= 7 && !strncmp(s, "--", 2) && digits(s + 2, 2) && s[4] == '-' && digits(s + 5, 2))
        dl = 7;
    else
        return s;
    if (n > dl && (s[dl] != 'T' || !ext_time(s + dl + 1)))
        return s;
    out = o = scratch(c, n + 1);
    if (!out)
        return NULL;
    if (dl == 10 && !(omit_year && n == 10 && !strncmp(s, OMIT_YEAR, 4))) {
        memcpy(o, s, 4);
        o += 4;
    } else {
        memcpy(o, "--", 2); /* no year */
        o += 2;
    }
    memcpy(o, s + dl - 5, 2);
    memcpy(o + 2, s + dl - 2, 2);
    o += 4;
    for (s += dl; *s; s++)
        if (*s != ':')
            *o++ = *s; /* the time: 'T', digits, 'Z' or the offset's sign kept */
    *o = '\0';
    return out;
}

/* 4.0 basic → 3.0 extended; "--MMDD" (no year) becomes 1604-MM-DD with *omit set. Values
 * of other shapes (already extended, text, reduced accuracy) are returned as they are. */
static const char *date_ext(struct conv *c, const char *s, int *omit)
{
    size_t n = strlen(s);
    char *o;

    *omit = 0;
    if (n == 6 && !strncmp(s, "--", 2) && digits(s + 2, 4)) {
        *omit = 1;
        o = scratch(c, 11);
        if (o) {
            memcpy(o, OMIT_YEAR "-", 5);
            memcpy(o + 5, s + 2, 2);
            o[7] = '-';
            memcpy(o + 8, s + 4, 2);
            o[10] = '\0';
        }
        return o;
    }
    if (n < 8 || !digits(s, 8) || (n > 8 && s[8] != 'T'))
        return s;
    /* YYYYMMDD[Thhmm[ss]][Z|±hh[mm]] */
    const char *t = s + 9, *tz;
    size_t tl = 0;
    if (n > 8) {
        while (isdigit((unsigned char)t[tl]))
            tl++;
        tz = t + tl;
        if ((tl != 4 && tl != 6) ||
            !(*tz == '\0' || !strcmp(tz, "Z") ||
              ((*tz == '+' || *tz == '-') && (strlen(tz) == 3 || strlen(tz) == 5) &&
               digits(tz + 1, strlen(tz) - 1))))
            return s;
    } else {
        tz = "";
    }
    o = scratch(c, n + 8);
    if (!o)
        return NULL;
    char *w = o;
    memcpy(w, s, 4);
    w[4] = '-';
    memcpy(w + 5, s + 4, 2);
    w[7] = '-';
    memcpy(w + 8, s + 6, 2);
    w += 10;
    if (n > 8) {
        *w++ = 'T';
        for (size_t i = 0; i < tl; i += 2) {
            if (i)
                *w++ = ':';
            memcpy(w, t + i, 2);
            w += 2;
        }
        if (*tz == '+' || *tz == '-') {
            memcpy(w, tz, 3);
            w += 3;
            if (tz[3]) {
                *w++ = ':';
                memcpy(w, tz + 3, 2);
                w += 2;
            }
        } else if (*tz) {
            *w++ = 'Z';
        }
    }
    *w = '\0';
    return o;
}

/* ---- media (PHOTO, LOGO, SOUND, KEY) ---- */

static int is_media(const char *name)
{
    return !strcmp(name, "PHOTO") || !strcmp(name, "LOGO") || !strcmp(name, "SOUND") ||
           !strcmp(name, "KEY");
}

/* 3.0 TYPE (JPEG, image/png) → a media type; without a usable one, sniffed from the
 * base64 when there is some (else NULL). */
static const char *media_type(struct conv *c, const char *prop, const char *type, const char *b64)
{
    static const struct {
        const char *t, *mt;
    } known[] = {{"JPEG", "image/jpeg"},         {"JPG", "image/jpeg"},
                 {"PNG", "image/png"},           {"GIF", "image/gif"},
                 {"BMP", "image/bmp"},           {"TIFF", "image/tiff"},
                 {"WAVE", "audio/wav"},          {"WAV", "audio/wav"},
                 {"BASIC", "audio/basic"},       {"X509", "application/pkix-cert"},
                 {"PGP", "application/pgp-keys"}};

    if (type) {
        char first[64];
        size_t n = strcspn(type, ",");
        if (n && n < sizeof(first) && strspn(type, TOKEN "/") >= n) {
            memcpy(first, type, n);
            first[n] = '\0';
            for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                if (dav_vc_ieq(first, known[i].t))
                    return known[i].mt;
            for (char *p = first; *p; p++)
                *p = (char)tolower((unsigned char)*p); /* media types are case-insensitive */
            if (strchr(first, '/'))
                return dav_vc_strdup(c->dst, first);
            const char *top = !strcmp(prop, "SOUND") ? "audio/"
                              : !strcmp(prop, "KEY") ? "application/"
                                                     : "image/";
            return concat3(c, top, first, "");
        }
    }
    if (b64 && !strncmp(b64, "/9j/", 4))
        return "image/jpeg";
    if (b64 && !strncmp(b64, "iVBORw0KGgo", 11))
        return "image/png";
    if (b64 && !strncmp(b64, "R0lGOD", 6))
        return "image/gif";
    return b64 ? "application/octet-stream" : NULL;
}

/* A media type → the 3.0 TYPE word (image/jpeg → JPEG). */
static const char *media_word(struct conv *c, const char *mt, size_t n)
{
    static const struct {
        const char *mt, *t;
    } known[] = {{"audio/wav", "WAVE"},
                 {"audio/x-wav", "WAVE"},
                 {"application/pkix-cert", "X509"},
                 {"application/pgp-keys", "PGP"}};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strlen(known[i].mt) == n && !strncasecmp(mt, known[i].mt, n))
            return known[i].t;
    if (n == 24 && !strncasecmp(mt, "application/octet-stream", n))
        return NULL; /* "no idea": 3.0 says that by giving no TYPE */
    const char *slash = memchr(mt, '/', n);
    const char *sub = slash ? slash + 1 : mt;
    size_t sl = n - (size_t)(sub - mt);
    if (sl > 2 && !strncasecmp(sub, "x-", 2))
        sub += 2, sl -= 2;
    /* the word becomes a parameter value: a media type token, nothing that needs quoting */
    if (!sl || sl > 64 || strspn(sub, TOKEN) < sl)
        return NULL;
    char *w = scratch(c, sl + 1);
    if (w) {
        for (size_t i = 0; i < sl; i++)
            w[i] = (char)toupper((unsigned char)sub[i]);
        w[sl] = '\0';
    }
    return w;
}

static void media_to4(struct conv *c, const struct dav_vc_prop *p, struct plist *l)
{
    const char *enc = pl_get(l, "ENCODING"), *vt = pl_get(l, "VALUE");
    const char *value = p->p.value;

    if (enc && (dav_vc_ieq(enc, "b") || dav_vc_ieq(enc, "BASE64"))) {
        const char *mt = media_type(c, p->p.name, pl_get(l, "TYPE"), value);
        pl_take(l, "ENCODING");
        pl_take(l, "TYPE");
        pl_take(l, "VALUE");
        value = mt ? concat3(c, "data:", mt, ";base64,") : NULL;
        value = value ? concat3(c, value, p->p.value, "") : NULL;
    } else if (!strcmp(p->p.name, "KEY") && (!vt || dav_vc_ieq(vt, "text"))) {
        if (!vt)
            pl_add(l, "VALUE", "text", 0); /* a 3.0 KEY without ENCODING is text */
    } else if (!vt || dav_vc_ieq(vt, "uri")) {
        /* a URI (a 3.0 PHOTO with neither ENCODING nor VALUE is taken as one too) */
        const char *type = pl_get(l, "TYPE");
        const char *mt = type ? media_type(c, p->p.name, type, NULL) : NULL;
        pl_take(l, "VALUE");
        if (mt) {
            pl_take(l, "TYPE");
            pl_add(l, "MEDIATYPE", mt, 0);
        } /* else a TYPE that names no media type stays as it came */
    }
    emit_same(c, p, p->p.name, l, value);
}

/* Whether data:<mt>;base64,<b64> can be written as 3.0 inline binary, and its TYPE
 * (*word, NULL for none): the short word (JPEG) when it reads back as exactly that media
 * type, else the media type itself (3.0 clients write TYPE=image/jpeg too). When neither
 * works (no media type, characters a parameter cannot hold), the URI stays a URI, which
 * 3.0 allows too, rather than coming back as something else. */
static int inline_word(struct conv *c, const char *prop, const char *mt, size_t ml, const char *b64,
                       const char **word)
{
    *word = ml ? media_word(c, mt, ml) : NULL;
    const char *back = media_type(c, prop, *word, b64);
    if (back && strlen(back) == ml && !strncasecmp(back, mt, ml))
        return 1;
    if (!ml || ml > 64 || strspn(mt, TOKEN "/") < ml || !memchr(mt, '/', ml))
        return 0;
    char *full = scratch(c, ml + 1);
    if (full) {
        for (size_t i = 0; i < ml; i++)
            full[i] = (char)tolower((unsigned char)mt[i]);
        full[ml] = '\0';
    }
    *word = full;
    return full != NULL;
}

static void media_to3(struct conv *c, const struct dav_vc_prop *p, struct plist *l)
{
    const char *value = p->p.value, *word = NULL;
    /* MEDIATYPE becomes a TYPE where 3.0 has one for it; otherwise it stays as it was */
    const char *mt = pl_take_one(l, "MEDIATYPE");

    if (pl_get(l, "ENCODING")) {
        ; /* already written the 3.0 way: left alone */
    } else if (pl_get(l, "VALUE") && dav_vc_ieq(pl_get(l, "VALUE"), "text")) {
        pl_take(l, "VALUE"); /* a text KEY is the 3.0 default */
    } else if (!strncasecmp(value, "data:", 5) && strchr(value, ',')) {
        const char *hdr = value + 5, *comma = strchr(value, ',');
        size_t hl = (size_t)(comma - hdr);
        size_t ml = strcspn(hdr, ";,");
        pl_take(l, "VALUE");
        if (ml + 7 == hl && !strncasecmp(comma - 7, ";base64", 7) &&
            inline_word(c, p->p.name, hdr, ml, comma + 1, &word)) {
            pl_add(l, "ENCODING", "b", 0);
            if (word)
                pl_add(l, "TYPE", word, 0);
            value = comma + 1;
        } else {
            pl_add(l, "VALUE", "uri", 0);
        }
    } else {
        pl_take(l, "VALUE");
        pl_add(l, "VALUE", "uri", 0);
        if (mt && inline_word(c, p->p.name, mt, strlen(mt), NULL, &word) && word) {
            pl_add(l, "TYPE", word, 0);
            mt = NULL;
        }
    }
    if (mt)
        pl_add(l, "MEDIATYPE", mt, 0);
    emit_same(c, p, p->p.name, l, value);
}

/* ---- LABEL, SORT-STRING: values that move between a property and a parameter ---- */

/* Text value → RFC 6868 parameter value (newline ^n, '"' ^', '^' ^^). */
static const char *text_to_param(struct conv *c, const char *raw)
{
    char *u = dav_vcard_unescape(raw);
    char *o, *w;

    if (!u) {
        c->err = 1;
        return NULL;
    }
    o = w = scratch(c, 2 * strlen(u) + 1);
    for (const char *s = u; w && *s; s++) {
        if (*s == '\n' || *s == '"' || *s == '^') {
            *w++ = '^';
            *w++ = *s == '\n' ? 'n' : *s == '"' ? '\'' : '^';
        } else if (*s != '\r') {
            *w++ = *s;
        }
    }
    if (w)
        *w = '\0';
    free(u);
    return o;
}

/* Parameter value → escaped text value; reads RFC 6868 carets, and the backslash-n some
 * clients put in LABEL parameters. */
static const char *param_to_text(struct conv *c, const char *pv)
{
    char *plain = scratch(c, strlen(pv) + 1), *w = plain;

    if (!plain)
        return NULL;
    for (const char *s = pv; *s; s++) {
        if (*s == '^' && (s[1] == 'n' || s[1] == 'N' || s[1] == '\'' || s[1] == '^')) {
            s++;
            *w++ = (*s == 'n' || *s == 'N') ? '\n' : *s == '\'' ? '"' : '^';
        } else if (*s == '\\' && (s[1] == 'n' || s[1] == 'N')) {
            s++;
            *w++ = '\n';
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
    char *e = dav_vcard_escape(plain);
    const char *out = e ? dav_vc_strdup(c->dst, e) : NULL;
    free(e);
    if (!out)
        c->err = 1;
    return out;
}

/* Two TYPE sets equal, ignoring case, order and PREF. */
static int same_types(const struct dav_vcard_prop *a, const struct dav_vcard_prop *b)
{
    for (int pass = 0; pass < 2; pass++) {
        const struct dav_vcard_prop *x = pass ? b : a, *y = pass ? a : b;
        for (size_t i = 0; i < x->nparams; i++) {
            if (!dav_vc_ieq(x->params[i].name, "TYPE"))
                continue;
            const char *s = x->params[i].value;
            while (*s) {
                size_t n = strcspn(s, ",");
                char item[64];
                if (n && n < sizeof(item)) {
                    memcpy(item, s, n);
                    item[n] = '\0';
                    if (!dav_vc_ieq(item, "PREF") && !dav_vcard_has_type(y, item))
                        return 0;
                }
                s += n + (s[n] == ',');
            }
        }
    }
    return 1;
}

static int label_fits(struct conv *c, size_t adr, size_t label)
{
    const struct dav_vcard_prop *a = &c->src->props[adr].p;
    return !strcmp(a->name, "ADR") && !c->adr_label[adr] && same_types(a, &c->src->props[label].p);
}

/* 3→4: each LABEL goes onto an ADR with the same types that has none yet: the one just
 * before it (where 4→3 writes it), else the first. */
static int plan_labels(struct conv *c)
{
    const struct dav_vcard *v = c->src;

    c->adr_label = calloc(v->nprops ? v->nprops : 1, sizeof(*c->adr_label));
    c->placed = calloc(v->nprops ? v->nprops : 1, 1);
    if (!c->adr_label || !c->placed)
        return -1;
    for (size_t i = 0; i < v->nprops; i++) {
        if (strcmp(v->props[i].p.name, "LABEL"))
            continue;
        size_t j = 0;
        if (i && label_fits(c, i - 1, i))
            j = i - 1;
        else
            while (j < v->nprops && !label_fits(c, j, i))
                j++;
        if (j < v->nprops) {
            c->adr_label[j] = v->props[i].p.value;
            c->placed[i] = 1;
        }
    }
    return 0;
}

/* One decimal number ("-37.5") at s, its length (0: none). */
static size_t decimal(const char *s)
{
    size_t n = (*s == '-' || *s == '+'), d = 0, dots = 0;

    for (; isdigit((unsigned char)s[n]) || s[n] == '.'; n++) {
        if (s[n] == '.')
            dots++;
        else
            d++;
    }
    return d && dots <= 1 ? n : 0;
}

/* "lat<sep>lon" and nothing else: 3.0 GEO is "37.38;-122.08", 4.0 "geo:37.38,-122.08". */
static int geo_pair(const char *s, char sep)
{
    size_t a = decimal(s);
    if (!a || s[a] != sep)
        return 0;
    size_t b = decimal(s + a + 1);
    return b && !s[a + 1 + b];
}

/* ---- one property each way ---- */

static void prop_to4(struct conv *c, size_t idx)
{
    const struct dav_vc_prop *p = &c->src->props[idx];
    const char *name = p->p.name, *value = p->p.value;
    struct plist l;

    pl_load(&l, p);
    pl_type_clean(c, &l);
    if (pl_type_remove(c, &l, "PREF") && !pl_get(&l, "PREF"))
        pl_add(&l, "PREF", "1", 0);
    if (is_media(name)) {
        media_to4(c, p, &l);
        return;
    }
    if (!strcmp(name, "LABEL") && !c->placed[idx]) {
        /* a label with no address of its types: an empty address that carries it */
        pl_add(&l, "LABEL", text_to_param(c, value), 1);
        emit(c, p->p.group, "ADR", &l, ";;;;;;");
        return;
    }
    if (!strcmp(name, "NAME") || !strcmp(name, "MAILER") || !strcmp(name, "CLASS") ||
        !strcmp(name, "LABEL") || !strcmp(name, "SORT-STRING"))
        return; /* no 4.0 property (LABEL and SORT-STRING moved onto ADR and N) */
    if (!strcmp(name, "AGENT")) {
        const char *vt = pl_take(&l, "VALUE");
        if (!vt || !dav_vc_ieq(vt, "uri"))
            return; /* an inline agent card has no 4.0 form */
        pl_add(&l, "TYPE", "agent", 0);
        name = "RELATED";
    } else if (!strcmp(name, "X-ADDRESSBOOKSERVER-KIND")) {
        if (c->has_kind)
            return;
        name = "KIND";
    } else if (!strcmp(name, "X-ADDRESSBOOKSERVER-MEMBER")) {
        if (c->has_member)
            return;
        name = "MEMBER";
    } else if (!strcmp(name, "X-ANNIVERSARY") && !c->has_anniv) {
        name = "ANNIVERSARY";
    } else if (!strcmp(name, "X-GENDER") && value[0] && strchr("MFONUmfonu", value[0]) &&
               (!value[1] || value[1] == ';')) {
        name = "GENDER";
    } else if (!strcmp(name, "GEO") && geo_pair(value, ';')) {
        char *g = scratch(c, strlen(value) + 5);
        if (g) {
            memcpy(g, "geo:", 4);
            strcpy(g + 4, value);
            *strchr(g, ';') = ',';
        }
        value = g;
    } else if (!strcmp(name, "ADR") && c->adr_label[idx]) {
        pl_add(&l, "LABEL", text_to_param(c, c->adr_label[idx]), 1);
    } else if (!strcmp(name, "N") && c->sort_string) {
        pl_add(&l, "SORT-AS", text_to_param(c, c->sort_string), 1);
    }
    if (!strcmp(name, "BDAY") || !strcmp(name, "ANNIVERSARY")) {
        const char *omit = pl_take(&l, "X-APPLE-OMIT-YEAR");
        const char *vt = pl_get(&l, "VALUE");
        if (!vt || !dav_vc_ieq(vt, "text")) {
            pl_take(&l, "VALUE"); /* date / date-time: 4.0's default covers both */
            value = date_basic(c, value, omit && !strcmp(omit, OMIT_YEAR));
        }
    }
    emit_same(c, p, name, &l, value);
}

static void prop_to3(struct conv *c, size_t idx)
{
    const struct dav_vc_prop *p = &c->src->props[idx];
    const char *name = p->p.name, *value = p->p.value, *label = NULL, *sort = NULL;
    struct plist l;

    pl_load(&l, p);
    pl_type_clean(c, &l);
    const char *pref = pl_take(&l, "PREF");
    if (pref && !strcmp(pref, "1"))
        pl_type_add(c, &l, "pref"); /* 3.0 has one preferred value, no ranking */
    pl_take(&l, "PID");
    if (is_media(name)) {
        media_to3(c, p, &l);
        return;
    }
    if (!strcmp(name, "XML") || !strcmp(name, "CLIENTPIDMAP"))
        return;
    if (!strcmp(name, "KIND")) {
        if (c->has_xkind)
            return;
        name = "X-ADDRESSBOOKSERVER-KIND";
    } else if (!strcmp(name, "MEMBER")) {
        if (c->has_xmember)
            return;
        name = "X-ADDRESSBOOKSERVER-MEMBER";
    } else if (!strcmp(name, "ANNIVERSARY")) {
        if (c->has_xanniv)
            return;
        name = "X-ANNIVERSARY";
    } else if (!strcmp(name, "GENDER")) {
        name = "X-GENDER";
    } else if (!strcmp(name, "RELATED") && dav_vcard_has_type(&p->p, "agent")) {
        pl_type_remove(c, &l, "agent");
        pl_take(&l, "VALUE");
        pl_add(&l, "VALUE", "uri", 0);
        name = "AGENT";
    } else if (!strcmp(name, "GEO") && !strncasecmp(value, "geo:", 4) && geo_pair(value + 4, ',')) {
        char *g = dav_vc_strdup(c->dst, value + 4);
        if (g)
            *strchr(g, ',') = ';';
        else
            c->err = 1;
        value = g;
    } else if (!strcmp(name, "TEL") && pl_get(&l, "VALUE") &&
               dav_vc_ieq(pl_get(&l, "VALUE"), "uri") && !strncasecmp(value, "tel:", 4)) {
        pl_take(&l, "VALUE");
        value += 4;
    } else if (!strcmp(name, "ADR")) {
        label = pl_take_at(&l, "LABEL", 1); /* 3→4 appends it */
    } else if (!strcmp(name, "N")) {
        sort = pl_take_at(&l, "SORT-AS", 1); /* 3→4 appends it */
    } else if (!strcmp(name, "ORG")) {
        pl_take(&l, "SORT-AS");
    }
    if (!strcmp(name, "BDAY") || !strcmp(name, "X-ANNIVERSARY")) {
        const char *vt = pl_get(&l, "VALUE");
        int omit = 0;
        if (!vt || !dav_vc_ieq(vt, "text")) {
            pl_take(&l, "VALUE");
            value = date_ext(c, value, &omit);
            if (omit)
                pl_add(&l, "X-APPLE-OMIT-YEAR", OMIT_YEAR, 0);
        }
    }
    emit_same(c, p, name, &l, value);
    if (label) {
        /* the LABEL property carries the address's types (not its other parameters) */
        struct plist tl = {.n = 0};
        for (size_t i = 0; i < l.n; i++)
            if (dav_vc_ieq(l.p[i].name, "TYPE"))
                pl_add(&tl, "TYPE", l.p[i].value, l.q[i]);
        pl_type_remove(c, &tl, "pref");
        emit(c, p->p.group, "LABEL", &tl, param_to_text(c, label));
    }
    if (sort)
        emit(c, NULL, "SORT-STRING", NULL, param_to_text(c, sort));
    if (!strcmp(name, "FN") && !c->has_n) {
        emit(c, NULL, "N", NULL, ";;;;"); /* required in 3.0, optional in 4.0 */
        c->has_n = 1;
    }
}

static void scan(struct conv *c)
{
    const struct dav_vcard *v = c->src;

    for (size_t i = 0; i < v->nprops; i++) {
        const char *n = v->props[i].p.name;
        c->has_kind |= !strcmp(n, "KIND");
        c->has_xkind |= !strcmp(n, "X-ADDRESSBOOKSERVER-KIND");
        c->has_member |= !strcmp(n, "MEMBER");
        c->has_xmember |= !strcmp(n, "X-ADDRESSBOOKSERVER-MEMBER");
        c->has_anniv |= !strcmp(n, "ANNIVERSARY");
        c->has_xanniv |= !strcmp(n, "X-ANNIVERSARY");
        c->has_n |= !strcmp(n, "N");
        if (!strcmp(n, "SORT-STRING") && !c->sort_string)
            c->sort_string = v->props[i].p.value;
    }
}

/* The card converted to `version` as a new card (NULL when out of memory). */
struct dav_vcard *dav_vc_convert(const struct dav_vcard *v, int version)
{
    struct conv c = {.src = v, .to = version};

    c.dst = dav_vc_empty(version);
    if (!c.dst)
        return NULL;
    scan(&c);
    if (version == 4 && plan_labels(&c) < 0)
        goto err;
    for (size_t i = 0; i < v->nprops && !c.err; i++) {
        const struct dav_vc_prop *p = &v->props[i];
        if (v->version == version) {
            if (dav_vc_push(c.dst, p->p.group, p->p.name, p->p.params, p->quoted, p->p.nparams,
                            p->p.value) < 0 ||
                dav_vc_spell(c.dst, p->spelled) < 0)
                c.err = 1;
        } else if (version == 4) {
            prop_to4(&c, i);
        } else {
            prop_to3(&c, i);
        }
    }
    if (!c.has_n && version == 3 && v->version != 3)
        emit(&c, NULL, "N", NULL, ";;;;"); /* no FN either: the card was built, not parsed */
    if (c.err)
        goto err;
    for (size_t i = 0; i < c.dst->nprops; i++)
        if (!strcmp(c.dst->props[i].p.name, "UID"))
            c.dst->uid = c.dst->props[i].p.value;
    free(c.adr_label);
    free(c.placed);
    return c.dst;
err:
    free(c.adr_label);
    free(c.placed);
    dav_vcard_free(c.dst);
    return NULL;
}

char *dav_vcard_convert(const struct dav_vcard *v, int version, size_t *len)
{
    if (version != 3 && version != 4)
        return NULL;
    if (version == v->version)
        return dav_vc_write(v, NULL, NULL, len);
    struct dav_vcard *d = dav_vc_convert(v, version);
    char *out = d ? dav_vc_write(d, NULL, NULL, len) : NULL;
    dav_vcard_free(d);
    return out;
}
