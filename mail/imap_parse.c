/*
 * imap_parse.c — the IMAP tokenizer: literal framing (imap_literal_spec, the command
 * buffer), the command parser that turns a complete command into a tree of struct imap_arg,
 * the per-command arena, and the small argument helpers (strings, flags, STORE items).
 *
 * The parser is iterative: nested lists are kept on an explicit stack of at most
 * IMAP_MAX_DEPTH levels, so a "((((((..." bomb costs a BAD, not the thread's stack. Every
 * read is checked against the end pointer; the buffer is never assumed NUL-terminated.
 * Literal bytes are not copied: a LITERAL arg points into the caller's buffer, since an
 * APPEND literal may be tens of megabytes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/imap_parse.h"

/* ---- errors ---------------------------------------------------------------------------- */

void imap_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- arena ----------------------------------------------------------------------------- */

#define ARENA_CHUNK 4096
#define ARENA_ALIGN 16

struct imap_arena_chunk {
    struct imap_arena_chunk *next;
    size_t used, size;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

static struct imap_arena_chunk *arena_new_chunk(struct imap_arena *a, size_t n)
{
    size_t size = n > ARENA_CHUNK ? n : ARENA_CHUNK;
    struct imap_arena_chunk *c;

    if (size > SIZE_MAX - sizeof(*c))
        return NULL;
    c = malloc(sizeof(*c) + size);
    if (!c)
        return NULL;
    c->used = 0;
    c->size = size;
    c->next = a->head;
    a->head = c;
    return c;
}

void *imap_arena_alloc(struct imap_arena *a, size_t n)
{
    struct imap_arena_chunk *c = a->head;
    size_t need;
    void *p;

    if (n == 0)
        n = 1;
    if (n > SIZE_MAX - ARENA_ALIGN)
        return NULL;
    need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (a->limit && (need > a->limit || a->total > a->limit - need))
        return NULL;
    if (!c || c->size - c->used < need) {
        /* A large block gets a chunk of its own pushed behind the current one, so the
         * free room in the current chunk is not thrown away. */
        if (c && need > ARENA_CHUNK / 4) {
            struct imap_arena_chunk *big = arena_new_chunk(a, need);
            if (!big)
                return NULL;
            a->head = c;
            big->next = c->next;
            c->next = big;
            c = big;
        } else {
            c = arena_new_chunk(a, need);
            if (!c)
                return NULL;
        }
    }
    p = c->data + c->used;
    c->used += need;
    a->total += need;
    memset(p, 0, n);
    return p;
}

char *imap_arena_strndup(struct imap_arena *a, const char *s, size_t n)
{
    char *d;

    if (n == SIZE_MAX)
        return NULL;
    d = imap_arena_alloc(a, n + 1);
    if (!d)
        return NULL;
    if (n)
        memcpy(d, s, n);
    d[n] = 0;
    return d;
}

void imap_arena_free(struct imap_arena *a)
{
    struct imap_arena_chunk *c = a->head;

    while (c) {
        struct imap_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

/* ---- character classes (RFC 3501 §9 / RFC 9051 §9) ------------------------------------- */

static bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* ATOM-CHAR: any CHAR except atom-specials "(" ")" "{" SP CTL list-wildcards
 * quoted-specials resp-specials. */
static bool is_atom_char(unsigned char c)
{
    if (c >= 0x80 || is_ctl(c))
        return false;
    return !strchr("(){ %*\"\\]", c);
}

/* What an argument atom may hold: ATOM-CHAR plus "]" (astring), the list wildcards (LIST
 * patterns) and "\" (flags). The semantic parsers check each use more strictly. */
static bool is_arg_atom_char(unsigned char c)
{
    return is_atom_char(c) || c == ']' || c == '%' || c == '*' || c == '\\';
}

/* tag = 1*<any ASTRING-CHAR except "+"> */
static bool is_tag_char(unsigned char c)
{
    return (is_atom_char(c) || c == ']') && c != '+';
}

/* ---- literal framing ------------------------------------------------------------------- */

static size_t strip_eol(const char *line, size_t len)
{
    if (len && line[len - 1] == '\n')
        len--;
    if (len && line[len - 1] == '\r')
        len--;
    return len;
}

int imap_literal_spec(const char *line, size_t len, struct imap_literal *out)
{
    size_t end, i;
    bool plus = false;

    len = strip_eol(line, len);
    if (len == 0 || line[len - 1] != '}')
        return 0;
    end = len - 1; /* index of '}' */
    i = end;
    if (i > 0 && line[i - 1] == '+') {
        plus = true;
        i--;
    }
    while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
        i--;
    /* Without '{' this is an atom ending in "}" (a legal ATOM-CHAR), not a literal. */
    if (i == 0 || line[i - 1] != '{')
        return 0;
    memset(out, 0, sizeof(*out));
    if (imap_parse_number64(line + i, end - i - (plus ? 1 : 0), &out->size) < 0)
        return -1;
    out->nonsync = plus;
    out->binary = i >= 2 && line[i - 2] == '~';
    return 1;
}

enum imap_lit_verdict imap_literal_check(const struct imap_literal *lit, uint64_t limit,
                                         bool literal_minus)
{
    if (lit->nonsync && literal_minus && lit->size > IMAP_NONSYNC_MINUS)
        return IMAP_LIT_NONSYNC_TOOBIG;
    if (lit->size > limit)
        return IMAP_LIT_TOOBIG;
    return IMAP_LIT_ACCEPT;
}

/* Reads a tag at *p; returns its length (0 = none / invalid). */
static size_t scan_tag(const char *p, const char *end)
{
    size_t n = 0;

    while (p + n < end && is_tag_char((unsigned char)p[n]))
        n++;
    return n;
}

static size_t scan_name(const char *p, const char *end)
{
    size_t n = 0;

    while (p + n < end && is_atom_char((unsigned char)p[n]))
        n++;
    return n;
}

static void copy_upper(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (src[i] >= 'a' && src[i] <= 'z') ? (char)(src[i] - 32) : src[i];
    dst[n] = 0;
}

/* Commands that take the UID prefix (RFC 3501 §6.4.8, RFC 6851 MOVE, RFC 5256, RFC 4315). */
static bool uid_allowed(const char *name)
{
    static const char *const ok[] = {"COPY", "FETCH",   "STORE", "SEARCH",
                                     "MOVE", "EXPUNGE", "SORT",  "THREAD"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++)
        if (strcmp(name, ok[i]) == 0)
            return true;
    return false;
}

/* Tag SP name [SP "UID" SP name]; advances *pp. Shared by peek and the full parser. */
static int parse_head(const char **pp, const char *end, char *tag, size_t tagsize, char *name,
                      size_t namesize, bool *uid, char *err, size_t errlen)
{
    const char *p = *pp;
    size_t n = scan_tag(p, end);

    if (tagsize)
        tag[0] = 0;
    if (namesize)
        name[0] = 0;
    *uid = false;
    if (n == 0 || n > IMAP_TAG_MAX || n >= tagsize || p + n >= end || p[n] != ' ') {
        imap_seterr(err, errlen, n > IMAP_TAG_MAX ? "Tag too long" : "Invalid tag");
        return -1;
    }
    memcpy(tag, p, n);
    tag[n] = 0;
    p += n + 1;
    for (int round = 0; round < 2; round++) {
        n = scan_name(p, end);
        if (n == 0 || n > IMAP_NAME_MAX || n >= namesize) {
            imap_seterr(err, errlen, n ? "Command name too long" : "Missing command name");
            return -1;
        }
        copy_upper(name, p, n);
        p += n;
        if (round == 1 || strcmp(name, "UID") != 0)
            break;
        *uid = true;
        if (p >= end || *p != ' ') {
            imap_seterr(err, errlen, "UID must be followed by a command");
            return -1;
        }
        p++;
    }
    if (*uid && !uid_allowed(name)) {
        imap_seterr(err, errlen, "UID %s is not a command", name);
        name[0] = 0;
        return -1;
    }
    *pp = p;
    return 0;
}

int imap_peek_command(const char *line, size_t len, char *tag, size_t tagsize, char *name,
                      size_t namesize, bool *uid)
{
    const char *p = line;
    bool u;
    int rc;

    len = strip_eol(line, len);
    rc = parse_head(&p, line + len, tag, tagsize, name, namesize, &u, NULL, 0);
    if (uid)
        *uid = u;
    return (rc < 0 && (tagsize == 0 || tag[0] == 0)) ? -1 : 0;
}

/* ---- command buffer -------------------------------------------------------------------- */

void imap_cmdbuf_init(struct imap_cmdbuf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void imap_cmdbuf_reset(struct imap_cmdbuf *b)
{
    b->len = 0;
    b->pending = 0;
    b->pending_off = 0;
    b->complete = false;
}

void imap_cmdbuf_free(struct imap_cmdbuf *b)
{
    free(b->data);
    imap_cmdbuf_init(b, b->max);
}

/* Makes room for `extra` more bytes, never past b->max. */
static int cmdbuf_grow(struct imap_cmdbuf *b, uint64_t extra)
{
    size_t want, ncap;
    char *d;

    if (extra > b->max || b->len > b->max - extra)
        return -1;
    want = b->len + (size_t)extra;
    if (want <= b->cap)
        return 0;
    ncap = b->cap ? b->cap : 256;
    while (ncap < want)
        ncap = ncap > SIZE_MAX / 2 ? want : ncap * 2;
    if (ncap > b->max)
        ncap = b->max > want ? b->max : want;
    d = realloc(b->data, ncap);
    if (!d)
        return -1;
    b->data = d;
    b->cap = ncap;
    return 0;
}

int imap_cmdbuf_add_line(struct imap_cmdbuf *b, const char *line, size_t len,
                         struct imap_literal *lit, char *err, size_t errlen)
{
    int rc;

    if (b->complete)
        imap_cmdbuf_reset(b);
    if (b->pending) {
        imap_seterr(err, errlen, "Literal data expected, not a line");
        return IMAP_CMDBUF_ERROR;
    }
    len = strip_eol(line, len);
    rc = imap_literal_spec(line, len, lit);
    if (rc < 0) {
        imap_seterr(err, errlen, "Invalid literal size");
        return IMAP_CMDBUF_ERROR;
    }
    /* The CRLF is kept between a literal spec and its data so that the buffer reads exactly
     * like the wire; the final CRLF is not kept. */
    if (cmdbuf_grow(b, (uint64_t)len + 2) < 0) {
        imap_seterr(err, errlen, "Command too long");
        return IMAP_CMDBUF_TOOBIG;
    }
    if (len)
        memcpy(b->data + b->len, line, len);
    b->len += len;
    if (rc == 0) {
        b->complete = true;
        return IMAP_CMDBUF_DONE;
    }
    b->data[b->len++] = '\r';
    b->data[b->len++] = '\n';
    b->pending = lit->size;
    b->pending_off = SIZE_MAX; /* announced, not yet reserved */
    if (lit->size == 0)
        b->pending_off = b->len; /* a zero-length literal needs no read */
    return IMAP_CMDBUF_LITERAL;
}

void *imap_cmdbuf_literal_space(struct imap_cmdbuf *b)
{
    char *p;

    if (b->pending_off != SIZE_MAX) {
        /* Already reserved (or zero-length): the same place again. */
        return b->data ? b->data + b->pending_off : NULL;
    }
    if (cmdbuf_grow(b, b->pending) < 0)
        return NULL;
    p = b->data + b->len;
    b->pending_off = b->len;
    b->len += (size_t)b->pending;
    return p;
}

void imap_cmdbuf_literal_done(struct imap_cmdbuf *b)
{
    b->pending = 0;
    b->pending_off = 0;
}

int imap_cmdbuf_add_literal(struct imap_cmdbuf *b, const void *data, size_t n)
{
    void *p;

    if (n != b->pending)
        return -1;
    if (n == 0) {
        imap_cmdbuf_literal_done(b);
        return 0;
    }
    p = imap_cmdbuf_literal_space(b);
    if (!p)
        return -1;
    memcpy(p, data, n);
    imap_cmdbuf_literal_done(b);
    return 0;
}

/* ---- the argument parser --------------------------------------------------------------- */

struct arg_node {
    struct imap_arg arg;
    struct arg_node *next;
};

struct arg_level {
    struct arg_node *head, *tail;
    size_t count;
};

struct parser {
    const char *p, *end;
    struct imap_cmd *cmd;
    bool brackets;
    size_t nargs;
    char *err;
    size_t errlen;
};

/* The command ends at the buffer's end, optionally after one CRLF (or LF). */
static bool at_eol(const struct parser *ps)
{
    size_t left = (size_t)(ps->end - ps->p);

    return left == 0 || (left == 2 && ps->p[0] == '\r' && ps->p[1] == '\n') ||
           (left == 1 && ps->p[0] == '\n');
}

static struct imap_arg *level_add(struct parser *ps, struct arg_level *lv)
{
    struct arg_node *n;

    if (ps->nargs >= IMAP_MAX_ARGS) {
        imap_seterr(ps->err, ps->errlen, "Too many arguments (more than %d)", IMAP_MAX_ARGS);
        return NULL;
    }
    n = imap_arena_alloc(&ps->cmd->arena, sizeof(*n));
    if (!n) {
        imap_seterr(ps->err, ps->errlen, "Out of memory");
        return NULL;
    }
    ps->nargs++;
    if (lv->tail)
        lv->tail->next = n;
    else
        lv->head = n;
    lv->tail = n;
    lv->count++;
    return &n->arg;
}

/* Turns a level's linked list into the array the engine indexes. */
static int level_to_array(struct parser *ps, struct arg_level *lv, struct imap_arg **out)
{
    struct imap_arg *arr = NULL;
    size_t i = 0;

    if (lv->count) {
        arr = imap_arena_alloc(&ps->cmd->arena, lv->count * sizeof(*arr));
        if (!arr) {
            imap_seterr(ps->err, ps->errlen, "Out of memory");
            return -1;
        }
    }
    for (struct arg_node *n = lv->head; n; n = n->next)
        arr[i++] = n->arg;
    *out = arr;
    return 0;
}

/* Checks a quoted string and finds its end; returns the number of bytes after unescaping,
 * or SIZE_MAX on error. *endp is set to the closing quote. */
static size_t scan_quoted(struct parser *ps, const char **endp, bool *eight)
{
    const char *s = ps->p + 1; /* after the opening quote */
    size_t n = 0;

    for (; s < ps->end && *s != '"'; s++, n++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\\') {
            if (s + 1 >= ps->end || (s[1] != '"' && s[1] != '\\')) {
                imap_seterr(ps->err, ps->errlen, "Invalid escape in quoted string");
                return SIZE_MAX;
            }
            s++;
        } else if (c == '\r' || c == '\n' || c == 0) {
            imap_seterr(ps->err, ps->errlen, "CR, LF or NUL in quoted string");
            return SIZE_MAX;
        } else if (c >= 0x80) {
            *eight = true;
        }
    }
    if (s >= ps->end) {
        imap_seterr(ps->err, ps->errlen, "Unterminated quoted string");
        return SIZE_MAX;
    }
    *endp = s;
    return n;
}

static int parse_quoted(struct parser *ps, struct imap_arg *arg)
{
    const char *end = NULL;
    bool eight = false;
    size_t n = scan_quoted(ps, &end, &eight), k = 0;
    char *out;

    if (n == SIZE_MAX)
        return -1;
    if (eight && !(ps->cmd->flags & IMAP_PARSE_UTF8)) {
        imap_seterr(ps->err, ps->errlen, "8-bit data in quoted string (use a literal)");
        return -1;
    }
    /* Sized exactly (not by the rest of the buffer), so many short strings stay cheap. */
    out = imap_arena_alloc(&ps->cmd->arena, n + 1);
    if (!out) {
        imap_seterr(ps->err, ps->errlen, "Out of memory");
        return -1;
    }
    for (const char *s = ps->p + 1; s < end; s++)
        out[k++] = *s == '\\' ? *++s : *s;
    out[k] = 0;
    if (eight && !imap_utf8_valid(out, k)) {
        imap_seterr(ps->err, ps->errlen, "Invalid UTF-8 in quoted string");
        return -1;
    }
    arg->type = IMAP_ARG_QUOTED;
    arg->str = out;
    arg->len = k;
    ps->p = end + 1;
    return 0;
}

static int parse_literal(struct parser *ps, struct imap_arg *arg)
{
    const char *s = ps->p, *digits;
    uint64_t size;
    size_t nd = 0;

    if (*s == '~') {
        arg->binary = true;
        s++;
    }
    digits = ++s; /* after '{' */
    while (s + nd < ps->end && s[nd] >= '0' && s[nd] <= '9')
        nd++;
    s += nd;
    if (s < ps->end && *s == '+') {
        arg->nonsync = true;
        s++;
    }
    if (s >= ps->end || *s != '}' || imap_parse_number64(digits, nd, &size) < 0) {
        imap_seterr(ps->err, ps->errlen, "Invalid literal size");
        return -1;
    }
    s++;
    if (s < ps->end && *s == '\r')
        s++;
    if (s >= ps->end || *s != '\n') {
        imap_seterr(ps->err, ps->errlen, "Literal size must end the line");
        return -1;
    }
    s++;
    if (size > (uint64_t)(ps->end - s)) {
        imap_seterr(ps->err, ps->errlen, "Literal shorter than announced");
        return -1;
    }
    /* RFC 3501 literal = *CHAR8, which excludes NUL; only literal8 may carry it. */
    if (!arg->binary && memchr(s, 0, (size_t)size)) {
        imap_seterr(ps->err, ps->errlen, "NUL in literal (use a literal8 ~{N})");
        return -1;
    }
    arg->type = IMAP_ARG_LITERAL;
    arg->str = s;
    arg->len = (size_t)size;
    ps->p = s + size;
    return 0;
}

/* "[...]" inside a FETCH atom: anything printable up to the closing bracket, with quoted
 * strings skipped whole so a quoted "]" does not end it. */
static int scan_brackets(struct parser *ps, const char **sp)
{
    const char *s = *sp + 1;
    bool quoted = false;

    for (; s < ps->end && (quoted || *s != ']'); s++) {
        unsigned char c = (unsigned char)*s;
        if (is_ctl(c) || c >= 0x80 || (!quoted && (c == '{' || c == '['))) {
            imap_seterr(ps->err, ps->errlen,
                        c == '{' ? "Literal inside [section] not supported"
                                 : "Invalid character in [section]");
            return -1;
        }
        if (c == '"') {
            quoted = !quoted;
        } else if (quoted && c == '\\') {
            /* \" and \\ do not end the quoted string; other escapes are invalid */
            if (s + 1 >= ps->end || (s[1] != '"' && s[1] != '\\')) {
                imap_seterr(ps->err, ps->errlen, "Invalid escape in [section]");
                return -1;
            }
            s++;
        }
    }
    if (s >= ps->end) {
        imap_seterr(ps->err, ps->errlen, "Missing ']'");
        return -1;
    }
    *sp = s + 1;
    return 0;
}

static int parse_atom(struct parser *ps, struct imap_arg *arg)
{
    const char *s = ps->p;

    while (s < ps->end) {
        if (*s == '[' && ps->brackets) {
            if (scan_brackets(ps, &s) < 0)
                return -1;
        } else if (is_arg_atom_char((unsigned char)*s)) {
            s++;
        } else {
            break;
        }
    }
    if (s == ps->p) {
        unsigned char c = (unsigned char)*s;
        imap_seterr(ps->err, ps->errlen,
                    c >= 0x80 ? "8-bit data in atom (use a string)" : "Invalid character 0x%02x",
                    c);
        return -1;
    }
    arg->str = imap_arena_strndup(&ps->cmd->arena, ps->p, (size_t)(s - ps->p));
    if (!arg->str) {
        imap_seterr(ps->err, ps->errlen, "Out of memory");
        return -1;
    }
    arg->len = (size_t)(s - ps->p);
    arg->type = (arg->len == 3 && strcasecmp(arg->str, "NIL") == 0) ? IMAP_ARG_NIL : IMAP_ARG_ATOM;
    ps->p = s;
    return 0;
}

static int parse_token(struct parser *ps, struct imap_arg *arg)
{
    char c = *ps->p;

    if (c == '"')
        return parse_quoted(ps, arg);
    if (c == '{' || (c == '~' && ps->p + 1 < ps->end && ps->p[1] == '{'))
        return parse_literal(ps, arg);
    return parse_atom(ps, arg);
}

/* After an argument: end, ")" (pops levels), or one SP before the next argument.
 * Returns 1 at the end of the command, 0 when another argument follows, -1 on error. */
static int parse_separator(struct parser *ps, struct arg_level *stack, size_t *depth)
{
    for (;;) {
        if (at_eol(ps)) {
            if (*depth > 0) {
                imap_seterr(ps->err, ps->errlen, "Missing ')'");
                return -1;
            }
            return 1;
        }
        if (*ps->p != ')')
            break;
        if (*depth == 0) {
            imap_seterr(ps->err, ps->errlen, "Unexpected ')'");
            return -1;
        }
        struct arg_level *lv = &stack[*depth];
        struct imap_arg *list = stack[*depth - 1].tail ? &stack[*depth - 1].tail->arg : NULL;
        if (!list || level_to_array(ps, lv, &list->list) < 0)
            return -1;
        list->count = lv->count;
        (*depth)--;
        ps->p++;
    }
    if (*ps->p != ' ') {
        unsigned char c = (unsigned char)*ps->p;
        imap_seterr(ps->err, ps->errlen,
                    c >= 0x80 ? "8-bit data in atom (use a string)" : "Expected space, got 0x%02x",
                    c);
        return -1;
    }
    ps->p++;
    if (at_eol(ps) || *ps->p == ' ' || *ps->p == ')') {
        imap_seterr(ps->err, ps->errlen, "Argument expected after space");
        return -1;
    }
    return 0;
}

static int parse_args(struct parser *ps)
{
    struct arg_level stack[IMAP_MAX_DEPTH + 1];
    size_t depth = 0;
    int rc;

    memset(stack, 0, sizeof(stack));
    if (at_eol(ps))
        goto done;
    if (*ps->p != ' ') {
        imap_seterr(ps->err, ps->errlen, "Invalid character in command name");
        return -1;
    }
    ps->p++;
    if (at_eol(ps) || *ps->p == ' ') {
        imap_seterr(ps->err, ps->errlen, "Argument expected after space");
        return -1;
    }
    for (;;) {
        struct imap_arg *arg = level_add(ps, &stack[depth]);
        if (!arg)
            return -1;
        if (*ps->p == '(') {
            if (depth >= IMAP_MAX_DEPTH) {
                imap_seterr(ps->err, ps->errlen, "Lists nested too deep (more than %d)",
                            IMAP_MAX_DEPTH);
                return -1;
            }
            arg->type = IMAP_ARG_LIST;
            memset(&stack[++depth], 0, sizeof(stack[0]));
            ps->p++;
            if (ps->p < ps->end && *ps->p != ')') {
                if (at_eol(ps) || *ps->p == ' ') {
                    imap_seterr(ps->err, ps->errlen, "Argument expected after '('");
                    return -1;
                }
                continue; /* the list's first element */
            }
        } else if (parse_token(ps, arg) < 0) {
            return -1;
        }
        rc = parse_separator(ps, stack, &depth);
        if (rc < 0)
            return -1;
        if (rc == 1)
            break;
    }
done:
    if (level_to_array(ps, &stack[0], &ps->cmd->args) < 0)
        return -1;
    ps->cmd->nargs = stack[0].count;
    return 0;
}

int imap_parse_command(const char *buf, size_t len, struct imap_cmd *cmd, char *err, size_t errlen)
{
    struct parser ps;
    unsigned flags = cmd->flags;

    memset(cmd, 0, sizeof(*cmd));
    cmd->flags = flags;
    memset(&ps, 0, sizeof(ps));
    ps.p = buf;
    ps.end = buf + len;
    ps.cmd = cmd;
    ps.err = err;
    ps.errlen = errlen;
    if (parse_head(&ps.p, ps.end, cmd->tag, sizeof(cmd->tag), cmd->name, sizeof(cmd->name),
                   &cmd->uid, err, errlen) < 0)
        goto err;
    ps.brackets = (flags & IMAP_PARSE_BRACKETS) || strcmp(cmd->name, "FETCH") == 0;
    if (parse_args(&ps) < 0)
        goto err;
    return 0;
err:
    imap_arena_free(&cmd->arena);
    cmd->args = NULL;
    cmd->nargs = 0;
    return -1;
}

void imap_cmd_free(struct imap_cmd *cmd)
{
    imap_arena_free(&cmd->arena);
    cmd->args = NULL;
    cmd->nargs = 0;
}

/* ---- argument helpers ------------------------------------------------------------------ */

const char *imap_arg_string(struct imap_cmd *cmd, const struct imap_arg *arg)
{
    switch (arg->type) {
    case IMAP_ARG_ATOM:
    case IMAP_ARG_QUOTED:
    case IMAP_ARG_NIL:
        return arg->str;
    case IMAP_ARG_LITERAL:
        if (memchr(arg->str, 0, arg->len))
            return NULL;
        return imap_arena_strndup(&cmd->arena, arg->str, arg->len);
    case IMAP_ARG_LIST:
        break;
    }
    return NULL;
}

bool imap_arg_is_atom(const struct imap_arg *arg, const char *word)
{
    return arg->type == IMAP_ARG_ATOM && strcasecmp(arg->str, word) == 0;
}

/* ---- flags ------------------------------------------------------------------------------ */

static const struct {
    const char *name;
    unsigned bit;
} sys_flags[] = {
    {"\\Answered", IMAP_FLAG_ANSWERED}, {"\\Flagged", IMAP_FLAG_FLAGGED},
    {"\\Deleted", IMAP_FLAG_DELETED},   {"\\Seen", IMAP_FLAG_SEEN},
    {"\\Draft", IMAP_FLAG_DRAFT},       {"\\Recent", IMAP_FLAG_RECENT},
};

/* One flag atom into out; keywords are checked to be pure atoms. */
static int flag_add(const struct imap_arg *f, unsigned opts, struct imap_flags *out,
                    const char **kw, char *err, size_t errlen)
{
    if (f->type != IMAP_ARG_ATOM) {
        imap_seterr(err, errlen, "Flags must be atoms");
        return -1;
    }
    if (f->str[0] == '\\') {
        for (size_t i = 0; i < sizeof(sys_flags) / sizeof(*sys_flags); i++) {
            if (strcasecmp(f->str, sys_flags[i].name) != 0)
                continue;
            if (sys_flags[i].bit == IMAP_FLAG_RECENT && (opts & IMAP_FLAGS_STORE)) {
                imap_seterr(err, errlen, "\\Recent cannot be changed");
                return -1;
            }
            out->sys |= sys_flags[i].bit;
            return 0;
        }
        imap_seterr(err, errlen, "Unknown system flag %.40s", f->str);
        return -1;
    }
    for (size_t i = 0; i < f->len; i++) {
        if (!is_atom_char((unsigned char)f->str[i])) {
            imap_seterr(err, errlen, "Invalid keyword %.40s", f->str);
            return -1;
        }
    }
    for (size_t i = 0; i < out->nkeywords; i++)
        if (strcasecmp(kw[i], f->str) == 0)
            return 0;
    kw[out->nkeywords++] = f->str;
    return 0;
}

int imap_flags_parse(struct imap_arena *a, const struct imap_arg *arg, unsigned opts,
                     struct imap_flags *out, char *err, size_t errlen)
{
    const struct imap_arg *items = arg;
    size_t n = 1;
    const char **kw;

    memset(out, 0, sizeof(*out));
    if (arg->type == IMAP_ARG_LIST) {
        items = arg->list;
        n = arg->count;
    }
    /* Duplicate checks are quadratic; no client needs this many flags on one message. */
    if (n > IMAP_MAX_FLAGS) {
        imap_seterr(err, errlen, "Too many flags (more than %d)", IMAP_MAX_FLAGS);
        return -1;
    }
    kw = imap_arena_alloc(a, (n ? n : 1) * sizeof(*kw));
    if (!kw) {
        imap_seterr(err, errlen, "Out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (flag_add(&items[i], opts, out, kw, err, errlen) < 0)
            return -1;
    out->keywords = kw;
    return 0;
}

int imap_store_item_parse(const struct imap_arg *arg, enum imap_store_op *op, bool *silent,
                          char *err, size_t errlen)
{
    const char *s;

    if (arg->type != IMAP_ARG_ATOM)
        goto bad;
    s = arg->str;
    *op = IMAP_STORE_SET;
    if (*s == '+' || *s == '-')
        *op = *s++ == '+' ? IMAP_STORE_ADD : IMAP_STORE_REMOVE;
    if (strncasecmp(s, "FLAGS", 5) != 0)
        goto bad;
    s += 5;
    *silent = strcasecmp(s, ".SILENT") == 0;
    if (*s && !*silent)
        goto bad;
    return 0;
bad:
    imap_seterr(err, errlen, "Invalid STORE item (expected [+-]FLAGS[.SILENT])");
    return -1;
}

/* ---- writing strings ------------------------------------------------------------------- */

#define QUOTED_MAX 1024 /* longer strings go as literals: easier on clients' line buffers */

static int write_literal(const char *s, size_t len, imap_write_fn fn, void *ctx)
{
    char head[32];
    int n = snprintf(head, sizeof(head), "%s{%zu}\r\n", memchr(s, 0, len) ? "~" : "", len);
    int rc = fn(ctx, head, (size_t)n);

    return rc ? rc : (len ? fn(ctx, s, len) : 0);
}

static bool quotable(const char *s, size_t len, unsigned flags)
{
    bool eight = false;

    if (len > QUOTED_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0 || c == '\r' || c == '\n')
            return false;
        eight |= c >= 0x80;
    }
    return !eight || ((flags & IMAP_WRITE_UTF8) && imap_utf8_valid(s, len));
}

int imap_write_string(const char *s, size_t len, unsigned flags, imap_write_fn fn, void *ctx)
{
    size_t start = 0;
    int rc;

    if (!s)
        return (flags & IMAP_WRITE_NSTRING) ? fn(ctx, "NIL", 3) : fn(ctx, "\"\"", 2);
    if (!quotable(s, len, flags))
        return write_literal(s, len, fn, ctx);
    if ((rc = fn(ctx, "\"", 1)) != 0)
        return rc;
    /* Runs between specials go out in one call; each '"' or '\' gets its backslash. */
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '"' && s[i] != '\\')
            continue;
        if (i > start && (rc = fn(ctx, s + start, i - start)) != 0)
            return rc;
        if (i < len && (rc = fn(ctx, "\\", 1)) != 0)
            return rc;
        start = i;
    }
    return fn(ctx, "\"", 1);
}

int imap_write_astring(const char *s, size_t len, unsigned flags, imap_write_fn fn, void *ctx)
{
    bool atom = s && len > 0 && !(len == 3 && strncasecmp(s, "NIL", 3) == 0);

    for (size_t i = 0; atom && i < len; i++)
        atom = is_atom_char((unsigned char)s[i]) || s[i] == ']';
    if (atom)
        return fn(ctx, s, len);
    return imap_write_string(s, len, flags, fn, ctx);
}

struct bufw {
    char *buf;
    size_t size, pos;
};

static int bufw_write(void *ctx, const void *data, size_t len)
{
    struct bufw *w = ctx;

    for (size_t i = 0; i < len; i++, w->pos++)
        if (w->pos + 1 < w->size)
            w->buf[w->pos] = ((const char *)data)[i];
    return 0;
}

size_t imap_astring_to_buf(const char *s, size_t len, unsigned flags, char *buf, size_t size)
{
    struct bufw w = {buf, size, 0};

    imap_write_astring(s, len, flags, bufw_write, &w);
    if (size)
        buf[w.pos < size ? w.pos : size - 1] = 0;
    return w.pos;
}
