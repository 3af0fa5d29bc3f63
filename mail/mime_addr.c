/*
 * mime_addr.c — RFC 5322 address lists (From, To, Cc, ...) as IMAP ENVELOPE needs them:
 * display names, obsolete source routes, group syntax, comments, quoted local parts. Real
 * headers are often broken (missing commas, unbalanced quotes, no domain, junk), so the
 * parser never fails: it keeps what reads as an address and skips the rest.
 */
#include <string.h>

#include "mail/mime.h"

enum tok_kind { T_END, T_WORD, T_COMMENT, T_SPECIAL };

struct tok {
    enum tok_kind kind;
    char special;  /* T_SPECIAL: one of < > @ , ; : */
    const char *s; /* T_WORD / T_COMMENT: raw text */
    size_t len;
    int quoted; /* T_WORD from a quoted-string (s/len inside the quotes) */
};

struct lexer {
    const char *v;
    size_t len, pos;
};

static int is_special(char c)
{
    return c == '<' || c == '>' || c == '@' || c == ',' || c == ';' || c == ':';
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Index after a delimited run starting at v[i] (open char), honouring quoted-pairs; nested
 * for comments. Unterminated runs end at the end of the value. */
static size_t skip_delimited(const char *v, size_t len, size_t i, char open, char close)
{
    size_t depth = 0;
    for (; i < len; i++) {
        if (v[i] == '\\' && i + 1 < len) {
            i++;
        } else if (v[i] == open && (open != close || depth == 0)) {
            depth++;
        } else if (v[i] == close && --depth == 0) {
            return i + 1;
        }
    }
    return len;
}

static void lex_next(struct lexer *lx, struct tok *t)
{
    const char *v = lx->v;
    size_t i = lx->pos;
    while (i < lx->len && is_space(v[i]))
        i++;
    memset(t, 0, sizeof(*t));
    if (i >= lx->len) {
        lx->pos = i;
        t->kind = T_END;
        return;
    }
    char c = v[i];
    size_t s = i;
    if (is_special(c)) {
        t->kind = T_SPECIAL;
        t->special = c;
        i++;
    } else if (c == '(' || c == '"') {
        i = skip_delimited(v, lx->len, i, c, c == '(' ? ')' : '"');
        t->kind = c == '(' ? T_COMMENT : T_WORD;
        t->quoted = c == '"';
        /* inside the delimiters */
        t->s = v + s + 1;
        t->len = i - s - 1;
        if (t->len && v[i - 1] == (c == '(' ? ')' : '"') && i - 1 > s)
            t->len--;
    } else if (c == '[') {
        /* domain literal, kept with its brackets */
        while (i < lx->len && v[i] != ']')
            i += v[i] == '\\' && i + 1 < lx->len ? 2 : 1;
        if (i < lx->len)
            i++;
        t->kind = T_WORD;
        t->s = v + s;
        t->len = i - s;
    } else {
        /* atom, with '.' inside (dot-atoms, obs-phrase "Q.") */
        while (i < lx->len && !is_space(v[i]) && !is_special(v[i]) && v[i] != '(' && v[i] != '"' &&
               v[i] != '[')
            i++;
        t->kind = T_WORD;
        t->s = v + s;
        t->len = i - s;
    }
    if (t->kind == T_SPECIAL) {
        t->s = v + s;
        t->len = 1;
    }
    if (i > lx->len)
        i = lx->len;
    lx->pos = i;
}

static void lex_peek(struct lexer *lx, struct tok *t)
{
    size_t pos = lx->pos;
    lex_next(lx, t);
    lx->pos = pos;
}

/* Appends a quoted-string or comment body without its quoted-pair backslashes; NUL and
 * line breaks are dropped (they cannot be part of an IMAP string). */
static void add_unescaped(struct buf *b, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' && i + 1 < len)
            i++;
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            continue;
        buf_putc(b, s[i]);
    }
}

struct addr_ctx {
    struct mime_arena *a;
    struct mime_addr **tail;
    size_t count;
    int oom;
};

static char *buf_dup(struct addr_ctx *c, const struct buf *b)
{
    if (b->oom) {
        c->oom = 1;
        return NULL;
    }
    return mime_arena_strndup(c->a, b->p ? b->p : "", b->len);
}

static struct mime_addr *emit(struct addr_ctx *c, enum mime_addr_kind kind)
{
    if (c->count >= MIME_MAX_ADDRS)
        return NULL;
    struct mime_addr *ad = mime_arena_alloc(c->a, sizeof(*ad));
    if (!ad) {
        c->oom = 1;
        return NULL;
    }
    ad->kind = kind;
    *c->tail = ad;
    c->tail = &ad->next;
    c->count++;
    return ad;
}

/* Words of a domain after '@' (an atom or a domain literal; obs-domain dots joined). */
static void read_domain(struct lexer *lx, struct buf *dom)
{
    struct tok t;
    lex_peek(lx, &t);
    while (t.kind == T_WORD || t.kind == T_COMMENT) {
        lex_next(lx, &t);
        if (t.kind == T_WORD) {
            if (t.quoted)
                add_unescaped(dom, t.s, t.len);
            else
                buf_put(dom, t.s, t.len);
            /* "a . b" continues only while a word ends or the next begins with '.' */
            struct tok n;
            lex_peek(lx, &n);
            if (n.kind != T_WORD || t.len == 0 || n.len == 0 ||
                (t.s[t.len - 1] != '.' && n.s[0] != '.'))
                break;
        }
        lex_peek(lx, &t);
    }
}

/* Inside <...>: [route ':'] local '@' domain '>'. */
static void read_angle(struct lexer *lx, struct buf *adl, struct buf *local, struct buf *dom,
                       int *has_at)
{
    struct tok t;
    lex_peek(lx, &t);
    if (t.kind == T_SPECIAL && t.special == '@') {
        /* obs-route: @a,@b: */
        for (;;) {
            lex_next(lx, &t);
            if (t.kind == T_END || (t.kind == T_SPECIAL && (t.special == ':' || t.special == '>')))
                break;
            if (t.kind == T_COMMENT)
                continue;
            if (t.quoted)
                add_unescaped(adl, t.s, t.len);
            else
                buf_put(adl, t.s, t.len);
        }
        if (t.kind != T_SPECIAL || t.special != ':')
            return;
    }
    for (;;) {
        lex_next(lx, &t);
        if (t.kind == T_END || (t.kind == T_SPECIAL && t.special == '>'))
            return;
        if (t.kind == T_SPECIAL && t.special == '@' && !*has_at) {
            *has_at = 1;
            read_domain(lx, dom);
        } else if (t.kind == T_WORD && !*has_at) {
            if (t.quoted)
                add_unescaped(local, t.s, t.len);
            else
                buf_put(local, t.s, t.len);
        }
    }
}

/* The strings of one address being read. */
struct addr_bufs {
    struct buf phrase, local, dom, adl, comment;
    size_t nwords;
    int have_comment;
};

static void bufs_free(struct addr_bufs *b)
{
    buf_free(&b->phrase);
    buf_free(&b->local);
    buf_free(&b->dom);
    buf_free(&b->adl);
    buf_free(&b->comment);
}

static void emit_mailbox(struct addr_ctx *c, struct addr_bufs *b, int use_phrase_name)
{
    struct mime_addr *ad = emit(c, MIME_ADDR_MAILBOX);
    if (!ad)
        return;
    if (use_phrase_name && b->nwords)
        ad->name = buf_dup(c, &b->phrase);
    else if (b->have_comment && b->comment.len)
        ad->name = buf_dup(c, &b->comment); /* "a@b (Name)": the comment names it */
    if (b->adl.len)
        ad->adl = buf_dup(c, &b->adl);
    ad->mailbox = buf_dup(c, &b->local);
    /* No domain is "" rather than NIL: NIL host is group syntax in IMAP. */
    ad->host = buf_dup(c, &b->dom);
}

/* Takes comments that follow an address, the first one naming it if nothing else does. */
static void trailing_comments(struct lexer *lx, struct addr_bufs *b)
{
    struct tok t;
    for (lex_peek(lx, &t); t.kind == T_COMMENT; lex_peek(lx, &t)) {
        lex_next(lx, &t);
        if (!b->have_comment) {
            b->comment.len = 0;
            add_unescaped(&b->comment, t.s, t.len);
            b->have_comment = 1;
        }
    }
}

static void add_word(struct addr_bufs *b, const struct tok *t)
{
    if (b->nwords)
        buf_putc(&b->phrase, ' ');
    if (t->quoted) {
        add_unescaped(&b->phrase, t->s, t->len);
        add_unescaped(&b->local, t->s, t->len);
    } else {
        buf_put(&b->phrase, t->s, t->len);
        buf_put(&b->local, t->s, t->len);
    }
    b->nwords++;
}

/* One mailbox, group start or group end beginning at the lexer position. */
static void parse_one(struct addr_ctx *c, struct lexer *lx, int *in_group)
{
    struct addr_bufs b = {0};
    struct tok t;
    for (;;) {
        lex_next(lx, &t);
        if (t.kind == T_WORD) {
            add_word(&b, &t);
        } else if (t.kind == T_COMMENT) {
            b.comment.len = 0;
            add_unescaped(&b.comment, t.s, t.len);
            b.have_comment = 1;
        } else if (t.kind == T_SPECIAL && t.special == '<') {
            int has_at = 0;
            b.local.len = 0;
            read_angle(lx, &b.adl, &b.local, &b.dom, &has_at);
            b.have_comment = 0;
            emit_mailbox(c, &b, 1);
            break;
        } else if (t.kind == T_SPECIAL && t.special == '@') {
            read_domain(lx, &b.dom);
            trailing_comments(lx, &b);
            emit_mailbox(c, &b, 0);
            break;
        } else if (t.kind == T_SPECIAL && t.special == ':' && !*in_group) {
            struct mime_addr *ad = emit(c, MIME_ADDR_GROUP_START);
            if (ad)
                ad->mailbox = buf_dup(c, &b.phrase);
            *in_group = 1;
            break;
        } else if (t.kind == T_END ||
                   (t.kind == T_SPECIAL && (t.special == ',' || t.special == ';'))) {
            /* A word with no '@' ("undisclosed-recipients", "root"): a local part. */
            if (b.nwords)
                emit_mailbox(c, &b, 0);
            if (t.kind == T_SPECIAL && t.special == ';' && *in_group) {
                emit(c, MIME_ADDR_GROUP_END);
                *in_group = 0;
            }
            break;
        }
        /* anything else ('>', a second ':') is junk and skipped */
    }
    if (b.phrase.oom || b.local.oom || b.dom.oom || b.adl.oom || b.comment.oom)
        c->oom = 1;
    bufs_free(&b);
}

int mime_addr_parse(struct mime_arena *a, const char *v, size_t len, struct mime_addr **out)
{
    struct addr_ctx c = {.a = a, .tail = out};
    struct lexer lx = {.v = v, .len = len};
    int in_group = 0;
    struct tok t;
    *out = NULL;
    for (lex_peek(&lx, &t); t.kind != T_END; lex_peek(&lx, &t)) {
        if (c.count >= MIME_MAX_ADDRS || c.oom)
            break;
        if (t.kind == T_SPECIAL && t.special == ',') {
            lex_next(&lx, &t);
            continue;
        }
        parse_one(&c, &lx, &in_group);
    }
    /* A group left open still needs its end marker for IMAP's structure. */
    if (in_group && c.count < MIME_MAX_ADDRS + 1) {
        c.count = 0;
        emit(&c, MIME_ADDR_GROUP_END);
    }
    return c.oom || a->oom ? -1 : 0;
}
