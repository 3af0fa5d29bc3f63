/*
 * imap_search.c — SEARCH arguments to an AST: RFC 3501 search keys, MODSEQ (RFC 7162),
 * YOUNGER/OLDER (RFC 5032), "$" (RFC 5182), EMAILID/THREADID (RFC 8474), the ESEARCH result
 * options RETURN (...) (RFC 4731) and CHARSET; and SORT's criteria list (RFC 5256, 5957).
 *
 * The parser works on the argument tree made by imap_parse_command, so parentheses have
 * already been matched. Keys that are negations in disguise are rewritten to NOT nodes
 * (UNSEEN = NOT SEEN, OLD = NOT RECENT, NEW = RECENT NOT SEEN, UNKEYWORD k = NOT KEYWORD
 * k) so the engine has fewer cases to evaluate. Recursion (NOT, OR, groups) carries a
 * depth counter bounded by IMAP_SEARCH_MAX_DEPTH; the AST is at most that deep plus two,
 * which bounds the engine's recursive evaluation as well.
 */
#include <string.h>
#include <strings.h>

#include "mail/imap_parse.h"

enum argkind {
    A_NONE,    /* no argument */
    A_STRING,  /* astring */
    A_HEADER,  /* field-name SP astring */
    A_DATE,    /* date */
    A_NUM64,   /* number64 */
    A_NZNUM,   /* nz-number (seconds) */
    A_KEYWORD, /* flag-keyword */
    A_SEQ,     /* sequence-set */
    A_KEY,     /* one search key (NOT) */
    A_KEY2,    /* two search keys (OR) */
    A_MODSEQ,  /* [entry-name SP entry-type-req SP] mod-sequence-valzer */
    A_OBJID,   /* objectid (RFC 8474) */
    A_NEW,     /* no argument; expands to RECENT NOT SEEN */
};

struct keydef {
    const char *name;
    enum imap_sk type;
    enum argkind arg;
    unsigned flag; /* IMAP_SK_FLAG */
    bool negate;   /* wrap in NOT */
};

static const struct keydef keydefs[] = {
    {"ALL", IMAP_SK_ALL, A_NONE, 0, false},
    {"ANSWERED", IMAP_SK_FLAG, A_NONE, IMAP_FLAG_ANSWERED, false},
    {"BCC", IMAP_SK_HEADER, A_STRING, 0, false},
    {"BEFORE", IMAP_SK_BEFORE, A_DATE, 0, false},
    {"BODY", IMAP_SK_BODY, A_STRING, 0, false},
    {"CC", IMAP_SK_HEADER, A_STRING, 0, false},
    {"DELETED", IMAP_SK_FLAG, A_NONE, IMAP_FLAG_DELETED, false},
    {"DRAFT", IMAP_SK_FLAG, A_NONE, IMAP_FLAG_DRAFT, false},
    {"EMAILID", IMAP_SK_EMAILID, A_OBJID, 0, false},
    {"FLAGGED", IMAP_SK_FLAG, A_NONE, IMAP_FLAG_FLAGGED, false},
    {"FROM", IMAP_SK_HEADER, A_STRING, 0, false},
    {"HEADER", IMAP_SK_HEADER, A_HEADER, 0, false},
    {"KEYWORD", IMAP_SK_KEYWORD, A_KEYWORD, 0, false},
    {"LARGER", IMAP_SK_LARGER, A_NUM64, 0, false},
    {"MODSEQ", IMAP_SK_MODSEQ, A_MODSEQ, 0, false},
    {"NEW", IMAP_SK_AND, A_NEW, 0, false},
    {"NOT", IMAP_SK_NOT, A_KEY, 0, false},
    {"OLD", IMAP_SK_FLAG, A_NONE, IMAP_FLAG_RECENT, true},
    {"OLDER", IMAP_SK_OLDER, A_NZNUM, 0, false},
    {"ON", IMAP_SK_ON, A_DATE, 0, false},
    {"OR", IMAP_SK_OR, A_KEY2, 0, false},
    {"RECENT", IMAP_SK_FLAG, A_NONE, IMAP_FLAG_RECENT, false},
    {"SEEN", IMAP_SK_FLAG, A_NONE, IMAP_FLAG_SEEN, false},
    {"SENTBEFORE", IMAP_SK_SENTBEFORE, A_DATE, 0, false},
    {"SENTON", IMAP_SK_SENTON, A_DATE, 0, false},
    {"SENTSINCE", IMAP_SK_SENTSINCE, A_DATE, 0, false},
    {"SINCE", IMAP_SK_SINCE, A_DATE, 0, false},
    {"SMALLER", IMAP_SK_SMALLER, A_NUM64, 0, false},
    {"SUBJECT", IMAP_SK_HEADER, A_STRING, 0, false},
    {"TEXT", IMAP_SK_TEXT, A_STRING, 0, false},
    {"THREADID", IMAP_SK_THREADID, A_OBJID, 0, false},
    {"TO", IMAP_SK_HEADER, A_STRING, 0, false},
    {"UID", IMAP_SK_UID, A_SEQ, 0, false},
    {"UNANSWERED", IMAP_SK_FLAG, A_NONE, IMAP_FLAG_ANSWERED, true},
    {"UNDELETED", IMAP_SK_FLAG, A_NONE, IMAP_FLAG_DELETED, true},
    {"UNDRAFT", IMAP_SK_FLAG, A_NONE, IMAP_FLAG_DRAFT, true},
    {"UNFLAGGED", IMAP_SK_FLAG, A_NONE, IMAP_FLAG_FLAGGED, true},
    {"UNKEYWORD", IMAP_SK_KEYWORD, A_KEYWORD, 0, true},
    {"UNSEEN", IMAP_SK_FLAG, A_NONE, IMAP_FLAG_SEEN, true},
    {"YOUNGER", IMAP_SK_YOUNGER, A_NZNUM, 0, false},
};

struct sp {
    struct imap_arena *a;
    unsigned flags;
    struct imap_search *out;
    char *err;
    size_t errlen;
};

/* A cursor over one level of arguments. */
struct cur {
    const struct imap_arg *args;
    size_t n, i;
};

static int parse_key(struct sp *s, struct cur *c, int depth, struct imap_search_key **out);

static struct imap_search_key *new_key(struct sp *s, enum imap_sk type)
{
    struct imap_search_key *k = imap_arena_alloc(s->a, sizeof(*k));

    if (!k)
        imap_seterr(s->err, s->errlen, "Out of memory");
    else
        k->type = type;
    return k;
}

/* Appends child; *tail remembers the last child so long key lists stay linear. */
static void add_child_at(struct imap_search_key *parent, struct imap_search_key **tail,
                         struct imap_search_key *child)
{
    if (*tail)
        (*tail)->next = child;
    else
        parent->child = child;
    *tail = child;
    parent->nchildren++;
}

/* For nodes with one or two children. */
static void add_child(struct imap_search_key *parent, struct imap_search_key *child)
{
    struct imap_search_key *tail = parent->child;

    while (tail && tail->next)
        tail = tail->next;
    add_child_at(parent, &tail, child);
}

static const struct imap_arg *next_arg(struct sp *s, struct cur *c, const char *key)
{
    if (c->i >= c->n) {
        imap_seterr(s->err, s->errlen, "Missing argument for search key %s", key);
        return NULL;
    }
    return &c->args[c->i++];
}

/* astring argument as a C string (literals copied; NUL refused). */
static const char *arg_astring(struct sp *s, const struct imap_arg *arg, const char *key)
{
    const char *str = NULL;

    if (arg->type == IMAP_ARG_LITERAL) {
        if (!memchr(arg->str, 0, arg->len))
            str = imap_arena_strndup(s->a, arg->str, arg->len);
    } else if (arg->type != IMAP_ARG_LIST) {
        str = arg->str;
    }
    if (!str)
        imap_seterr(s->err, s->errlen, "Invalid string argument for search key %s", key);
    return str;
}

static bool is_field_name(const char *f)
{
    if (!*f)
        return false;
    for (; *f; f++)
        if ((unsigned char)*f <= 0x20 || (unsigned char)*f >= 0x7f || *f == ':')
            return false;
    return true;
}

static bool is_objectid(const char *id)
{
    size_t n = strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");

    return n > 0 && n <= 255 && id[n] == 0;
}

static bool is_keyword(const char *kw)
{
    if (!*kw)
        return false;
    for (; *kw; kw++)
        if ((unsigned char)*kw <= 0x20 || (unsigned char)*kw >= 0x7f || strchr("(){%*\"\\]", *kw))
            return false;
    return true;
}

static int parse_date_arg(struct sp *s, struct cur *c, const char *key, int32_t *day)
{
    const struct imap_arg *arg = next_arg(s, c, key);

    if (!arg)
        return -1;
    if ((arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_QUOTED) ||
        imap_date_parse(arg->str, arg->len, day) < 0) {
        imap_seterr(s->err, s->errlen, "Invalid date for search key %s", key);
        return -1;
    }
    return 0;
}

static int parse_num_arg(struct sp *s, struct cur *c, const char *key, bool nz, uint64_t *v)
{
    const struct imap_arg *arg = next_arg(s, c, key);
    uint32_t v32;

    if (!arg)
        return -1;
    if (arg->type == IMAP_ARG_ATOM) {
        if (nz && imap_parse_nz_number(arg->str, arg->len, &v32) == 0) {
            *v = v32;
            return 0;
        }
        if (!nz && imap_parse_number64(arg->str, arg->len, v) == 0)
            return 0;
    }
    imap_seterr(s->err, s->errlen, "Invalid number for search key %s", key);
    return -1;
}

/* MODSEQ ["/flags/\\Seen" priv|shared|all] value (RFC 7162 §3.1.5). */
static int parse_modseq(struct sp *s, struct cur *c, struct imap_search_key *k)
{
    static const char *const types[] = {"priv", "shared", "all"};
    const struct imap_arg *arg = next_arg(s, c, "MODSEQ");

    if (!arg)
        return -1;
    if (arg->type != IMAP_ARG_ATOM || strspn(arg->str, "0123456789") != arg->len) {
        const struct imap_arg *t;
        k->u.modseq.entry = arg_astring(s, arg, "MODSEQ");
        if (!k->u.modseq.entry || !(t = next_arg(s, c, "MODSEQ")))
            return -1;
        for (size_t i = 0; i < 3; i++)
            if (t->type == IMAP_ARG_ATOM && strcasecmp(t->str, types[i]) == 0)
                k->u.modseq.entry_type = (enum imap_modseq_entry_type)(IMAP_ENTRY_PRIV + i);
        if (k->u.modseq.entry_type == IMAP_ENTRY_NONE) {
            imap_seterr(s->err, s->errlen, "Invalid MODSEQ entry type (priv, shared or all)");
            return -1;
        }
    } else {
        c->i--; /* the value itself */
    }
    s->out->uses_modseq = true;
    return parse_num_arg(s, c, "MODSEQ", false, &k->u.modseq.value);
}

static int parse_seq_arg(struct sp *s, const struct imap_arg *arg, struct imap_seqset *seq)
{
    unsigned f = (s->flags & IMAP_SEARCH_DOLLAR) ? IMAP_SEQ_ALLOW_DOLLAR : 0;

    if (arg->type != IMAP_ARG_ATOM) {
        imap_seterr(s->err, s->errlen, "Invalid sequence set");
        return -1;
    }
    return imap_seqset_parse(s->a, arg->str, arg->len, f, seq, s->err, s->errlen);
}

/* Argument-less keys, strings and numbers. */
static int parse_simple_arg(struct sp *s, struct cur *c, const struct keydef *d,
                            struct imap_search_key *k)
{
    const struct imap_arg *arg;

    switch (d->arg) {
    case A_STRING:
        k->u.hdr.name = d->name; /* used by the header keys, harmless for BODY/TEXT */
        if (!(arg = next_arg(s, c, d->name)) || !(k->u.hdr.value = arg_astring(s, arg, d->name)))
            return -1;
        if (k->type != IMAP_SK_HEADER)
            k->u.str = k->u.hdr.value;
        return 0;
    case A_HEADER:
        if (!(arg = next_arg(s, c, d->name)) || !(k->u.hdr.name = arg_astring(s, arg, d->name)))
            return -1;
        if (!is_field_name(k->u.hdr.name)) {
            imap_seterr(s->err, s->errlen, "Invalid header field name");
            return -1;
        }
        if (!(arg = next_arg(s, c, d->name)) || !(k->u.hdr.value = arg_astring(s, arg, d->name)))
            return -1;
        return 0;
    case A_DATE:
        return parse_date_arg(s, c, d->name, &k->u.day);
    case A_NUM64:
    case A_NZNUM:
        return parse_num_arg(s, c, d->name, d->arg == A_NZNUM, &k->u.num);
    case A_KEYWORD:
    case A_OBJID:
        if (!(arg = next_arg(s, c, d->name)))
            return -1;
        k->u.str = arg->type == IMAP_ARG_ATOM ? arg->str : "";
        if (d->arg == A_KEYWORD ? !is_keyword(k->u.str) : !is_objectid(k->u.str)) {
            imap_seterr(s->err, s->errlen, "Invalid argument for search key %s", d->name);
            return -1;
        }
        return 0;
    case A_SEQ:
        return (arg = next_arg(s, c, d->name)) ? parse_seq_arg(s, arg, &k->u.seq) : -1;
    case A_MODSEQ:
        return parse_modseq(s, c, k);
    default:
        return 0;
    }
}

/* NOT, OR and NEW build subtrees. */
static int parse_compound(struct sp *s, struct cur *c, const struct keydef *d,
                          struct imap_search_key *k, int depth)
{
    struct imap_search_key *a, *b;

    if (d->arg == A_NEW) {
        /* NEW = RECENT UNSEEN */
        if (!(a = new_key(s, IMAP_SK_FLAG)) || !(b = new_key(s, IMAP_SK_NOT)))
            return -1;
        a->u.flag = IMAP_FLAG_RECENT;
        add_child(k, a);
        add_child(k, b);
        if (!(a = new_key(s, IMAP_SK_FLAG)))
            return -1;
        a->u.flag = IMAP_FLAG_SEEN;
        add_child(b, a);
        return 0;
    }
    if (parse_key(s, c, depth + 1, &a) < 0)
        return -1;
    add_child(k, a);
    if (d->arg == A_KEY2) {
        if (parse_key(s, c, depth + 1, &b) < 0)
            return -1;
        add_child(k, b);
    }
    return 0;
}

static int parse_group(struct sp *s, const struct imap_arg *list, int depth,
                       struct imap_search_key **out)
{
    struct cur inner = {list->list, list->count, 0};
    struct imap_search_key *k = new_key(s, IMAP_SK_AND), *child, *tail = NULL;

    if (!k)
        return -1;
    if (list->count == 0) {
        imap_seterr(s->err, s->errlen, "Empty search key list");
        return -1;
    }
    while (inner.i < inner.n) {
        if (parse_key(s, &inner, depth + 1, &child) < 0)
            return -1;
        add_child_at(k, &tail, child);
    }
    *out = k;
    return 0;
}

static const struct keydef *find_key(const char *name)
{
    for (size_t i = 0; i < sizeof(keydefs) / sizeof(*keydefs); i++)
        if (strcasecmp(keydefs[i].name, name) == 0)
            return &keydefs[i];
    return NULL;
}

/* A bare sequence set (or "$") used as a key. */
static int parse_seq_key(struct sp *s, const struct imap_arg *arg, struct imap_search_key **out)
{
    struct imap_search_key *k;

    if (strspn(arg->str, "0123456789*:,$") != arg->len) {
        imap_seterr(s->err, s->errlen, "Unknown search key %.40s", arg->str);
        return -1;
    }
    if (!(k = new_key(s, IMAP_SK_SEQSET)) || parse_seq_arg(s, arg, &k->u.seq) < 0)
        return -1;
    *out = k;
    return 0;
}

static int parse_key(struct sp *s, struct cur *c, int depth, struct imap_search_key **out)
{
    const struct imap_arg *arg;
    const struct keydef *d;
    struct imap_search_key *k, *not ;

    if (depth > IMAP_SEARCH_MAX_DEPTH) {
        imap_seterr(s->err, s->errlen, "Search keys nested too deep (more than %d)",
                    IMAP_SEARCH_MAX_DEPTH);
        return -1;
    }
    if (c->i >= c->n) {
        imap_seterr(s->err, s->errlen, "Missing search key after NOT or OR");
        return -1;
    }
    arg = &c->args[c->i++];
    if (arg->type == IMAP_ARG_LIST)
        return parse_group(s, arg, depth, out);
    if (arg->type != IMAP_ARG_ATOM) {
        imap_seterr(s->err, s->errlen, "Search key expected, got a string");
        return -1;
    }
    if (!(d = find_key(arg->str)))
        return parse_seq_key(s, arg, out);
    if (!(k = new_key(s, d->type)))
        return -1;
    k->u.flag = d->flag;
    if (d->arg == A_KEY || d->arg == A_KEY2 || d->arg == A_NEW) {
        if (parse_compound(s, c, d, k, depth) < 0)
            return -1;
    } else if (parse_simple_arg(s, c, d, k) < 0) {
        return -1;
    }
    if (d->negate) {
        if (!(not = new_key(s, IMAP_SK_NOT)))
            return -1;
        add_child(not, k);
        k = not ;
    }
    *out = k;
    return 0;
}

/* RETURN (MIN MAX ALL COUNT SAVE) — RFC 4731, RFC 5182. */
static int parse_return(struct sp *s, const struct imap_arg *list)
{
    static const struct {
        const char *name;
        unsigned bit;
    } opts[] = {{"MIN", IMAP_SRET_MIN},
                {"MAX", IMAP_SRET_MAX},
                {"ALL", IMAP_SRET_ALL},
                {"COUNT", IMAP_SRET_COUNT},
                {"SAVE", IMAP_SRET_SAVE}};

    if (list->type != IMAP_ARG_LIST) {
        imap_seterr(s->err, s->errlen, "RETURN needs a list of options");
        return -1;
    }
    s->out->esearch = true;
    for (size_t i = 0; i < list->count; i++) {
        size_t j = 0;
        while (j < 5 && !imap_arg_is_atom(&list->list[i], opts[j].name))
            j++;
        if (j == 5) {
            imap_seterr(s->err, s->errlen, "Unknown RETURN option");
            return -1;
        }
        s->out->ret |= opts[j].bit;
    }
    if (list->count == 0)
        s->out->ret = IMAP_SRET_ALL; /* RFC 4731 §3.1: "RETURN ()" is "RETURN (ALL)" */
    return 0;
}

static int parse_prefix(struct sp *s, struct cur *c)
{
    if (c->i + 1 < c->n && imap_arg_is_atom(&c->args[c->i], "RETURN")) {
        if (parse_return(s, &c->args[c->i + 1]) < 0)
            return -1;
        c->i += 2;
    }
    if (c->i + 1 < c->n && imap_arg_is_atom(&c->args[c->i], "CHARSET")) {
        const struct imap_arg *cs = &c->args[c->i + 1];
        if (cs->type == IMAP_ARG_LIST || !(s->out->charset = arg_astring(s, cs, "CHARSET"))) {
            imap_seterr(s->err, s->errlen, "Invalid CHARSET");
            return -1;
        }
        c->i += 2;
    }
    return 0;
}

int imap_search_parse(struct imap_arena *a, const struct imap_arg *args, size_t nargs,
                      unsigned flags, struct imap_search *out, char *err, size_t errlen)
{
    struct sp s = {a, flags, out, err, errlen};
    struct cur c = {args, nargs, 0};
    struct imap_search_key *k, *tail = NULL;

    memset(out, 0, sizeof(*out));
    if (parse_prefix(&s, &c) < 0)
        return -1;
    if (c.i >= c.n) {
        imap_seterr(err, errlen, "Missing search keys");
        return -1;
    }
    if (!(out->root = new_key(&s, IMAP_SK_AND)))
        return -1;
    while (c.i < c.n) {
        if (parse_key(&s, &c, 1, &k) < 0)
            return -1;
        add_child_at(out->root, &tail, k);
    }
    return 0;
}

/* ---- SORT criteria ---------------------------------------------------------------------- */

int imap_sort_parse(const struct imap_arg *list, struct imap_sort out[IMAP_SORT_MAX], size_t *n,
                    char *err, size_t errlen)
{
    static const char *const names[] = {"ARRIVAL", "CC", "DATE",        "FROM",     "SIZE",
                                        "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"};
    bool reverse = false;

    *n = 0;
    if (list->type != IMAP_ARG_LIST || list->count == 0) {
        imap_seterr(err, errlen, "SORT needs a list of sort criteria");
        return -1;
    }
    for (size_t i = 0; i < list->count; i++) {
        size_t k = 0;
        if (imap_arg_is_atom(&list->list[i], "REVERSE") && !reverse) {
            reverse = true;
            continue;
        }
        while (k < sizeof(names) / sizeof(*names) && !imap_arg_is_atom(&list->list[i], names[k]))
            k++;
        if (k == sizeof(names) / sizeof(*names) || *n >= IMAP_SORT_MAX) {
            imap_seterr(err, errlen,
                        *n >= IMAP_SORT_MAX ? "Too many sort criteria" : "Invalid sort criterion");
            return -1;
        }
        out[*n].key = (enum imap_sort_key)k;
        out[(*n)++].reverse = reverse;
        reverse = false;
    }
    /* "REVERSE" must qualify a criterion, not end the list. */
    if (reverse) {
        imap_seterr(err, errlen, "REVERSE must be followed by a sort criterion");
        return -1;
    }
    return 0;
}
