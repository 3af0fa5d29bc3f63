/*
 * dav_vcard.c — the vCard 3.0 / 4.0 parser and writer for CardDAV (and ActiveSync's
 * contacts): unfolding, content-line syntax, the address object resource rules of
 * RFC 6352 §5.1, accessors, escaping, and the builder that writes a card from fields.
 *
 * The parser copies the body once into the card's arena and cuts it up in place; every
 * property keeps its group, parameters and raw value so unknown and vendor properties
 * (X-ABLabel, X-ADDRESSBOOKSERVER-*) come back out as they went in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dav/dav_vcard_int.h"

#define PRECOND_VALID     "valid-address-data"
#define PRECOND_SUPPORTED "supported-address-data"
#define ARENA_BLOCK       (16u << 10)

/* ---- arena and buffers ---- */

void *dav_vc_alloc(struct dav_vcard *v, size_t n)
{
    struct dav_vc_block *b = v->arena;

    n = (n + 15) & ~(size_t)15; /* keeps parameter arrays aligned */
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        if (v->arena && cap > ARENA_BLOCK) {
            /* a big one-off block goes behind the current one, which stays open */
            b->next = v->arena->next;
            v->arena->next = b;
        } else {
            b->next = v->arena;
            v->arena = b;
        }
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

char *dav_vc_strdup(struct dav_vcard *v, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = dav_vc_alloc(v, n);

    if (p)
        memcpy(p, s, n);
    return p;
}

struct dav_vcard *dav_vc_empty(int version)
{
    struct dav_vcard *v = calloc(1, sizeof(*v));

    if (v)
        v->version = version;
    return v;
}

static struct dav_vc_prop *new_prop(struct dav_vcard *v)
{
    if (v->nprops >= DAV_VC_MAX_PROPS)
        return NULL;
    if (v->nprops == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 32;
        struct dav_vc_prop *p = realloc(v->props, cap * sizeof(*p));
        if (!p)
            return NULL;
        v->props = p;
        v->cap = cap;
    }
    struct dav_vc_prop *p = &v->props[v->nprops];
    memset(p, 0, sizeof(*p));
    return p;
}

int dav_vc_push(struct dav_vcard *v, const char *group, const char *name,
                const struct dav_vcard_param *params, const unsigned char *quoted, size_t nparams,
                const char *value)
{
    struct dav_vc_prop *p = new_prop(v);
    struct dav_vcard_param *pa = NULL;
    unsigned char *q = NULL;

    if (!p || nparams > DAV_VC_MAX_PARAMS)
        return -1;
    if (nparams) {
        pa = dav_vc_alloc(v, nparams * sizeof(*pa));
        q = dav_vc_alloc(v, nparams);
        if (!pa || !q)
            return -1;
        for (size_t i = 0; i < nparams; i++) {
            pa[i].name = dav_vc_strdup(v, params[i].name);
            pa[i].value = dav_vc_strdup(v, params[i].value ? params[i].value : "");
            q[i] = quoted ? quoted[i] : 0;
            if (!pa[i].name || !pa[i].value)
                return -1;
        }
    }
    p->p.group = group ? dav_vc_strdup(v, group) : NULL;
    p->p.name = dav_vc_strdup(v, name);
    p->p.value = dav_vc_strdup(v, value ? value : "");
    if ((group && !p->p.group) || !p->p.name || !p->p.value)
        return -1;
    p->p.params = pa;
    p->p.nparams = nparams;
    p->quoted = q;
    v->nprops++;
    return 0;
}

int dav_vc_spell(struct dav_vcard *v, const char *spelled)
{
    struct dav_vc_prop *p = &v->props[v->nprops - 1];

    if (!spelled || !strcmp(spelled, p->p.name))
        return 0;
    p->spelled = dav_vc_strdup(v, spelled);
    return p->spelled ? 0 : -1;
}

int dav_vc_ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

int dav_vc_list_has(const char *list, const char *item)
{
    size_t n = strlen(item);

    for (const char *s = list;;) {
        const char *e = strchr(s, ',');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l == n && strncasecmp(s, item, n) == 0)
            return 1;
        if (!e)
            return 0;
        s = e + 1;
    }
}

/* ---- parsing ---- */

static int is_name_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Strict UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF): address data goes
 * out inside XML, where anything else would break the whole multistatus. */
static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

struct parse {
    struct dav_vcard *v;
    const char **precond;
    char *err;
    size_t errlen;
    int state; /* 0 before BEGIN, 1 inside, 2 after END */
    int nfn, nn, nuid;
};

static int fail(struct parse *ps, const char *precond, const char *msg, size_t lineno)
{
    *ps->precond = precond;
    if (ps->err && ps->errlen) {
        if (lineno)
            snprintf(ps->err, ps->errlen, "line %zu: %s", lineno, msg);
        else
            snprintf(ps->err, ps->errlen, "%s", msg);
    }
    return -1;
}

static void upcase(char *s)
{
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'z')
            *s = (char)(*s - 'a' + 'A');
}

/* Reads one parameter value list at *sp in place (quoted parts unquoted, commas kept),
 * leaving *sp on the ';' or ':' that ends it and that character in *delim (the NUL that
 * ends the value may overwrite it). NULL when malformed. */
static char *param_value(char **sp, unsigned char *quoted, char *delim)
{
    char *s = *sp, *w = s, *start = s;

    for (;;) {
        if (*s == '"') {
            *quoted = 1;
            for (s++; *s && *s != '"'; s++)
                *w++ = *s;
            if (*s != '"')
                return NULL;
            s++;
        } else {
            while (*s && *s != ';' && *s != ':' && *s != ',' && *s != '"')
                *w++ = *s++;
            if (*s == '"')
                return NULL; /* a quote inside an unquoted value */
        }
        if (*s != ',')
            break;
        *w++ = *s++;
    }
    if (*s != ';' && *s != ':')
        return NULL;
    *delim = *s;
    *sp = s;
    *w = '\0';
    return start;
}

/* One parsed line: BEGIN/END/VERSION drive the state, everything else inside the card is
 * kept (refusing what this server cannot store faithfully). */
static int check_prop(struct parse *ps, const char *group, const char *name, const char *spelled,
                      const struct dav_vcard_param *params, const unsigned char *quoted, size_t np,
                      const char *value, size_t lineno)
{
    int structural = !strcmp(name, "BEGIN") || !strcmp(name, "END") || !strcmp(name, "VERSION");

    if (structural && (group || np))
        return fail(ps, PRECOND_VALID, "BEGIN, END and VERSION take no group or parameter", lineno);
    if (!strcmp(name, "BEGIN")) {
        if (!dav_vc_ieq(value, "VCARD"))
            return fail(ps, PRECOND_VALID, "not a vCard", lineno);
        if (ps->state != 0)
            return fail(ps, PRECOND_VALID, "more than one vCard (or one nested in another)",
                        lineno);
        ps->state = 1;
        return 0;
    }
    if (ps->state != 1)
        return fail(ps, PRECOND_VALID,
                    ps->state ? "data after END:VCARD" : "data before BEGIN:VCARD", lineno);
    if (!strcmp(name, "END")) {
        if (!dav_vc_ieq(value, "VCARD"))
            return fail(ps, PRECOND_VALID, "END does not close the vCard", lineno);
        ps->state = 2;
        return 0;
    }
    if (!strcmp(name, "VERSION")) {
        if (ps->v->version)
            return fail(ps, PRECOND_VALID, "VERSION given twice", lineno);
        if (!strcmp(value, "3.0"))
            ps->v->version = 3;
        else if (!strcmp(value, "4.0"))
            ps->v->version = 4;
        else
            return fail(ps, PRECOND_SUPPORTED, "only vCard 3.0 and 4.0 are supported", lineno);
        return 0;
    }
    for (size_t i = 0; i < np; i++) {
        if (!strcmp(params[i].name, "ENCODING") &&
            (dav_vc_ieq(params[i].value, "QUOTED-PRINTABLE") ||
             dav_vc_ieq(params[i].value, "8BIT")))
            return fail(ps, PRECOND_SUPPORTED, "vCard 2.1 encodings are not supported", lineno);
        if (!strcmp(params[i].name, "CHARSET") && !dav_vc_ieq(params[i].value, "UTF-8"))
            return fail(ps, PRECOND_SUPPORTED, "only UTF-8 is supported", lineno);
    }
    if (!strcmp(name, "FN"))
        ps->nfn++;
    else if (!strcmp(name, "N")) {
        if (ps->nn++)
            return fail(ps, PRECOND_VALID, "more than one N", lineno);
    } else if (!strcmp(name, "UID")) {
        if (ps->nuid++)
            return fail(ps, PRECOND_VALID, "more than one UID", lineno);
        if (!*value)
            return fail(ps, PRECOND_VALID, "empty UID", lineno);
    }
    if (dav_vc_push(ps->v, group, name, params, quoted, np, value) < 0 ||
        (strlen(spelled) < 127 && dav_vc_spell(ps->v, spelled) < 0))
        return fail(ps, PRECOND_VALID,
                    ps->v->nprops >= DAV_VC_MAX_PROPS ? "too many properties" : "out of memory",
                    lineno);
    if (!strcmp(name, "UID"))
        ps->v->uid = ps->v->props[ps->v->nprops - 1].p.value;
    return 0;
}

/* Splits one unfolded line "GROUP.NAME;P=V:VALUE" in place into a property. */
static int content_line(struct parse *ps, char *line, size_t lineno)
{
    struct dav_vcard_param params[DAV_VC_MAX_PARAMS];
    unsigned char quoted[DAV_VC_MAX_PARAMS] = {0};
    size_t np = 0;
    char *s = line, *group = NULL, *name = line, delim;

    for (const unsigned char *c = (const unsigned char *)line; *c; c++)
        if ((*c < 0x20 && *c != '\t') || *c == 0x7F)
            return fail(ps, PRECOND_VALID, "control character", lineno);
    while (is_name_char((unsigned char)*s))
        s++;
    if (*s == '.' && s > name) {
        *s++ = '\0';
        group = name;
        name = s;
        while (is_name_char((unsigned char)*s))
            s++;
    }
    if (s == name || (*s != ';' && *s != ':'))
        return fail(ps, PRECOND_VALID, "malformed content line", lineno);
    delim = *s;
    *s++ = '\0';
    while (delim == ';') {
        if (np == DAV_VC_MAX_PARAMS)
            return fail(ps, PRECOND_VALID, "too many parameters", lineno);
        char *pn = s;
        while (is_name_char((unsigned char)*s))
            s++;
        if (s == pn)
            return fail(ps, PRECOND_VALID, "malformed parameter", lineno);
        if (*s == '=') {
            *s++ = '\0';
            upcase(pn);
            params[np].name = pn;
        } else {
            /* "TEL;CELL:" — a bare type, as 2.1-era exporters still write in 3.0 */
            params[np].name = "TYPE";
            s = pn;
        }
        params[np].value = param_value(&s, &quoted[np], &delim);
        if (!params[np].value)
            return fail(ps, PRECOND_VALID, "malformed parameter value", lineno);
        np++;
        s++;
    }
    char spelled[128];
    snprintf(spelled, sizeof(spelled), "%s", name);
    upcase(name);
    return check_prop(ps, group, name, spelled, params, quoted, np, s, lineno);
}

/* Unfolds the next logical line of buf[*r..n) into buf at *w (in place: the writer never
 * passes the reader), NUL-terminated. Returns its start, or NULL at the end of input;
 * *bad is set when a line is too long or holds a bare CR. */
static char *next_line(char *buf, size_t n, size_t *r, size_t *w, size_t *phys, int *bad)
{
    size_t start = *w;

    if (*r >= n)
        return NULL;
    for (;;) {
        while (*r < n && buf[*r] != '\n') {
            char c = buf[(*r)++];
            if (c == '\r') {
                if (*r < n && buf[*r] == '\n')
                    continue; /* CRLF: the LF ends the line below */
                *bad = 1;
                return NULL;
            }
            if (*w - start >= DAV_VC_MAX_LINE) {
                *bad = 2;
                return NULL;
            }
            buf[(*w)++] = c;
        }
        if (*r < n)
            (*r)++; /* the LF */
        (*phys)++;
        /* a line starting with a space or tab continues the previous one */
        if (*r < n && (buf[*r] == ' ' || buf[*r] == '\t'))
            (*r)++;
        else
            break;
    }
    buf[(*w)++] = '\0';
    return buf + start;
}

static int parse_lines(struct parse *ps, char *buf, size_t n)
{
    size_t r = 0, w = 0, phys = 0;
    int bad = 0;

    if (n >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3))
        r = 3; /* a UTF-8 byte order mark, as some Windows exporters write */
    for (;;) {
        size_t lineno = phys + 1;
        char *line = next_line(buf, n, &r, &w, &phys, &bad);
        if (!line)
            break;
        if (!*line)
            continue; /* blank lines between or after cards */
        if (content_line(ps, line, lineno) < 0)
            return -1;
    }
    if (bad)
        return fail(ps, PRECOND_VALID, bad == 1 ? "bare CR" : "line too long", phys + 1);
    return 0;
}

int dav_vcard_parse(const char *body, size_t len, struct dav_vcard **out, const char **precond,
                    char *err, size_t errlen)
{
    static const char *dummy;
    struct parse ps = {.precond = precond ? precond : &dummy, .err = err, .errlen = errlen};
    char *buf = NULL;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!body || !len)
        return fail(&ps, PRECOND_VALID, "empty body", 0);
    if (len > DAV_VC_MAX_SIZE)
        return fail(&ps, PRECOND_VALID, "vCard too large", 0);
    if (memchr(body, '\0', len))
        return fail(&ps, PRECOND_VALID, "NUL byte in vCard", 0);
    if (!valid_utf8((const unsigned char *)body, len))
        return fail(&ps, PRECOND_VALID, "vCard is not UTF-8", 0);
    ps.v = dav_vc_empty(0);
    buf = malloc(len + 1);
    if (!ps.v || !buf) {
        fail(&ps, PRECOND_VALID, "out of memory", 0);
        goto err;
    }
    memcpy(buf, body, len);
    buf[len] = '\0';
    if (parse_lines(&ps, buf, len) < 0)
        goto err;
    if (ps.state != 2) {
        fail(&ps, PRECOND_VALID, ps.state ? "no END:VCARD" : "no BEGIN:VCARD", 0);
        goto err;
    }
    if (!ps.v->version) {
        fail(&ps, PRECOND_VALID, "no VERSION", 0);
        goto err;
    }
    if (!ps.nfn || (ps.v->version == 3 && !ps.nn) || !ps.nuid) {
        fail(&ps, PRECOND_VALID,
             !ps.nfn    ? "FN is required"
             : !ps.nuid ? "UID is required"
                        : "N is required in 3.0",
             0);
        goto err;
    }
    free(buf);
    *out = ps.v;
    return 0;
err:
    free(buf);
    dav_vcard_free(ps.v);
    return -1;
}

void dav_vcard_free(struct dav_vcard *v)
{
    if (!v)
        return;
    for (struct dav_vc_block *b = v->arena, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(v->props);
    free(v);
}

const char *dav_vcard_uid(const struct dav_vcard *v)
{
    return v->uid;
}

int dav_vcard_version(const struct dav_vcard *v)
{
    return v->version;
}

size_t dav_vcard_nprops(const struct dav_vcard *v)
{
    return v->nprops;
}

const struct dav_vcard_prop *dav_vcard_prop(const struct dav_vcard *v, size_t i)
{
    return i < v->nprops ? &v->props[i].p : NULL;
}

/* ---- values ---- */

char *dav_vcard_unescape(const char *value)
{
    size_t n = strlen(value);
    char *out = malloc(n + 1), *w = out;

    if (!out)
        return NULL;
    for (const char *s = value; *s; s++) {
        if (*s != '\\' || !s[1]) {
            *w++ = *s;
            continue;
        }
        s++;
        if (*s == 'n' || *s == 'N')
            *w++ = '\n';
        else if (*s == ',' || *s == ';' || *s == '\\' || *s == ':')
            *w++ = *s;
        else {
            /* an unknown escape is kept as written rather than guessed at */
            *w++ = '\\';
            *w++ = *s;
        }
    }
    *w = '\0';
    return out;
}

char *dav_vcard_escape(const char *value)
{
    size_t n = strlen(value);
    char *out = malloc(2 * n + 1), *w = out;

    if (!out)
        return NULL;
    for (const char *s = value; *s; s++) {
        if (*s == '\r')
            continue;
        if (*s == '\n') {
            *w++ = '\\';
            *w++ = 'n';
            continue;
        }
        if (*s == '\\' || *s == ',' || *s == ';')
            *w++ = '\\';
        *w++ = *s;
    }
    *w = '\0';
    return out;
}

int dav_vcard_split(const char *value, char sep, char **parts, size_t max)
{
    size_t n = 0;
    const char *s = value;

    while (n < max) {
        const char *e = s;
        while (*e && *e != sep)
            e += (*e == '\\' && e[1]) ? 2 : 1;
        char *raw = strndup(s, (size_t)(e - s));
        char *part = raw ? dav_vcard_unescape(raw) : NULL;
        free(raw);
        if (!part) {
            while (n)
                free(parts[--n]);
            return -1;
        }
        parts[n++] = part;
        if (!*e)
            break;
        s = e + 1;
    }
    return (int)n;
}

const char *dav_vcard_param_get(const struct dav_vcard_prop *p, const char *name)
{
    for (size_t i = 0; i < p->nparams; i++)
        if (dav_vc_ieq(p->params[i].name, name))
            return p->params[i].value;
    return NULL;
}

int dav_vcard_has_type(const struct dav_vcard_prop *p, const char *type)
{
    for (size_t i = 0; i < p->nparams; i++)
        if (dav_vc_ieq(p->params[i].name, "TYPE") && dav_vc_list_has(p->params[i].value, type))
            return 1;
    return 0;
}

const struct dav_vcard_prop *dav_vcard_find(const struct dav_vcard *v, const char *name,
                                            size_t *iter)
{
    for (size_t i = *iter; i < v->nprops; i++) {
        if (dav_vc_ieq(v->props[i].p.name, name)) {
            *iter = i + 1;
            return &v->props[i].p;
        }
    }
    *iter = v->nprops;
    return NULL;
}

/* ---- writing ---- */

/* Appends one logical line folded at 75 octets: continuation lines start with a space,
 * and a fold never falls inside a UTF-8 sequence. */
static void put_folded(struct buf *b, const char *s, size_t n)
{
    size_t room = 75;

    while (n > room) {
        size_t cut = room;
        while (cut > 1 && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--;
        buf_put(b, s, cut);
        buf_put(b, "\r\n ", 3);
        s += cut;
        n -= cut;
        room = 74;
    }
    buf_put(b, s, n);
    buf_put(b, "\r\n", 2);
}

static void put_prop(struct buf *b, struct buf *line, const struct dav_vc_prop *p, int novalue)
{
    line->len = 0;
    if (p->p.group) {
        buf_puts(line, p->p.group);
        buf_put(line, ".", 1);
    }
    buf_puts(line, p->spelled ? p->spelled : p->p.name);
    for (size_t i = 0; i < p->p.nparams; i++) {
        const char *val = p->p.params[i].value;
        int q = (p->quoted && p->quoted[i]) || strpbrk(val, ":;") != NULL;
        buf_put(line, ";", 1);
        buf_puts(line, p->p.params[i].name);
        buf_put(line, q ? "=\"" : "=", q ? 2 : 1);
        buf_puts(line, val);
        if (q)
            buf_put(line, "\"", 1);
    }
    buf_put(line, ":", 1);
    if (!novalue)
        buf_puts(line, p->p.value);
    if (!line->oom)
        put_folded(b, line->p, line->len);
    else
        b->oom = 1;
}

char *dav_vc_write(const struct dav_vcard *v, int (*keep)(const struct dav_vcard_prop *, void *),
                   void *arg, size_t *len)
{
    struct buf b = {0}, line = {0};

    buf_puts(&b, "BEGIN:VCARD\r\n");
    buf_puts(&b, v->version == 4 ? "VERSION:4.0\r\n" : "VERSION:3.0\r\n");
    for (size_t i = 0; i < v->nprops; i++) {
        int k = keep ? keep(&v->props[i].p, arg) : 1;
        if (k)
            put_prop(&b, &line, &v->props[i], k == 2);
    }
    buf_puts(&b, "END:VCARD\r\n");
    free(line.p);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}

/* ---- builder ---- */

struct dav_vcard *dav_vcard_new(int version)
{
    return version == 3 || version == 4 ? dav_vc_empty(version) : NULL;
}

static int clean_text(const char *s, int allow_quote)
{
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if ((*c < 0x20 && *c != '\t') || *c == 0x7F || (!allow_quote && *c == '"'))
            return 0;
    return 1;
}

static int clean_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!is_name_char((unsigned char)*s))
            return 0;
    return 1;
}

int dav_vcard_add(struct dav_vcard *v, const char *group, const char *name,
                  const struct dav_vcard_param *params, size_t nparams, const char *value)
{
    if (!v || !name || !value || nparams > DAV_VC_MAX_PARAMS || !clean_name(name) ||
        (group && !clean_name(group)) || !clean_text(value, 1) || dav_vc_ieq(name, "BEGIN") ||
        dav_vc_ieq(name, "END") || dav_vc_ieq(name, "VERSION"))
        return -1;
    for (size_t i = 0; i < nparams; i++)
        if (!params[i].name || !clean_name(params[i].name) || !params[i].value ||
            !clean_text(params[i].value, 0))
            return -1;
    if (dav_vc_push(v, group, name, params, NULL, nparams, value) < 0)
        return -1;
    /* names are upper case in the card: fix up the copies just made */
    struct dav_vc_prop *p = &v->props[v->nprops - 1];
    upcase((char *)p->p.name);
    for (size_t i = 0; i < nparams; i++)
        upcase((char *)p->p.params[i].name);
    if (!strcmp(p->p.name, "UID"))
        v->uid = p->p.value;
    return 0;
}

char *dav_vcard_serialize(const struct dav_vcard *v, size_t *len)
{
    return dav_vc_write(v, NULL, NULL, len);
}
