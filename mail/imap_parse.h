/*
 * imap_parse.h — the IMAP command parser library (lib-imap style): the engine in imap.c reads
 * bytes off the connection, this library turns them into checked structures. Nothing here
 * touches a socket, the store or global state, so every function is safe on any thread.
 *
 * Reading one command (the engine's loop):
 *
 *     struct imap_cmdbuf b;
 *     imap_cmdbuf_init(&b, limit);
 *     for (;;) {
 *         n = net_read_line(conn, line, sizeof(line), t);
 *         rc = imap_cmdbuf_add_line(&b, line, n, &lit);
 *         if (rc == IMAP_CMDBUF_DONE) break;
 *         if (rc == IMAP_CMDBUF_LITERAL) {
 *             switch (imap_literal_check(&lit, limit_left, literal_minus)) ... // refuse or go
 *             if (!lit.nonsync) send "+ Ready";
 *             net_read(conn, imap_cmdbuf_literal_space(&b), lit.size, t);
 *             imap_cmdbuf_literal_done(&b);
 *         } else ... // IMAP_CMDBUF_TOOBIG / IMAP_CMDBUF_ERROR: answer BAD, drop the command
 *     }
 *     struct imap_cmd cmd = {.flags = utf8 ? IMAP_PARSE_UTF8 : 0};
 *     if (imap_parse_command(b.data, b.len, &cmd, err, sizeof(err)) < 0) -> "tag BAD err"
 *     ... use cmd.args, imap_seqset_parse, imap_search_parse, imap_fetch_parse ...
 *     imap_cmd_free(&cmd);
 *
 * Conventions
 *  - Functions that can fail return 0 (or a count) on success and -1 on failure, writing a
 *    one-line message to err/errlen that fits after "tag BAD " (no CR/LF, no tag).
 *  - Input is untrusted: every length is bounded, every loop is bounded by the input, nested
 *    structures are depth-limited (IMAP_MAX_DEPTH, IMAP_SEARCH_MAX_DEPTH), and no function
 *    reads outside the (pointer, length) it was given; inputs need no NUL terminator.
 *  - Memory for a parsed command comes from one arena (struct imap_arena) inside struct
 *    imap_cmd and is released at once by imap_cmd_free(). Search and fetch results are
 *    allocated from that arena too, so they live exactly as long as the command.
 */
#ifndef POLARIS_IMAP_PARSE_H
#define POLARIS_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- limits ---------------------------------------------------------------------------- */

#define IMAP_MAX_DEPTH        32        /* nested parenthesized lists in one command */
#define IMAP_MAX_ARGS         10000     /* arguments in one command, all levels counted */
#define IMAP_TAG_MAX          64        /* longest tag accepted */
#define IMAP_NAME_MAX         32        /* longest command name accepted */
#define IMAP_SEARCH_MAX_DEPTH 64        /* NOT / OR / parenthesis nesting in SEARCH */
#define IMAP_SECTION_MAX_PART 32        /* part numbers in BODY[1.2.3...] */
#define IMAP_MAX_FLAGS        1000      /* flags in one flag list */
#define IMAP_NONSYNC_MINUS    4096      /* largest {N+} allowed under LITERAL- (RFC 7888) */
#define IMAP_NUMBER64_MAX     INT64_MAX /* number64 (RFC 9051) */

/* ---- errors ------------------------------------------------------------------------------ */

/* Formats an error message into err (may be NULL). Used by every part of the library. */
void imap_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- arena ------------------------------------------------------------------------------- */

struct imap_arena_chunk;
struct imap_arena {
    struct imap_arena_chunk *head;
    size_t total; /* bytes handed out, for the cap below */
    size_t limit; /* 0 = no cap */
};

/* Zeroed memory, aligned for any type; NULL when out of memory or over the limit. */
void *imap_arena_alloc(struct imap_arena *a, size_t n);
/* NUL-terminated copy of (s, n). */
char *imap_arena_strndup(struct imap_arena *a, const char *s, size_t n);
void imap_arena_free(struct imap_arena *a);

/* ---- literal framing ------------------------------------------------------------------- */

struct imap_literal {
    uint64_t size; /* N of {N}; at most IMAP_NUMBER64_MAX */
    bool nonsync;  /* {N+}: LITERAL+ / LITERAL-, the client sends without waiting */
    bool binary;   /* ~{N}: literal8 (RFC 3516), may contain NUL */
};

/*
 * Looks for a literal spec at the end of one line (CRLF or LF, if present, is ignored).
 * Returns 1 and fills out when the line ends in {N}, {N+}, ~{N} or ~{N+}; 0 when it does
 * not (the command ends with this line); -1 when it ends in something that can only be a
 * broken literal spec ("{}", "{12x}" is not one: "x}" ends an atom, but "{+}", "~{}" and
 * sizes beyond number64 are errors).
 */
int imap_literal_spec(const char *line, size_t len, struct imap_literal *out);

enum imap_lit_verdict {
    IMAP_LIT_ACCEPT,         /* send "+ Ready" if !nonsync, then read lit->size bytes */
    IMAP_LIT_TOOBIG,         /* over the limit: "NO [TOOBIG]" for APPEND, BAD otherwise */
    IMAP_LIT_NONSYNC_TOOBIG, /* {N+} over 4096 under LITERAL-: "BAD [TOOBIG]" (RFC 7888 §4);
                              * the client is already sending the bytes: discard or close */
};

/* Decides on a literal before any of it is read. `limit` is what the command may still
 * take; `literal_minus` is true when the server announced LITERAL- rather than LITERAL+. */
enum imap_lit_verdict imap_literal_check(const struct imap_literal *lit, uint64_t limit,
                                         bool literal_minus);

/*
 * Reads the tag, the command name (uppercased) and the UID prefix off the first line of a
 * command without parsing the rest, so the engine can word a refusal (APPEND's NO [TOOBIG],
 * a tagged BAD) before the literal arrives. tag/name are NUL-terminated; sizes should be at
 * least IMAP_TAG_MAX+1 / IMAP_NAME_MAX+1. Returns 0, or -1 when no valid tag is there
 * (answer "* BAD"); when only the name is bad, tag is filled and name is "".
 */
int imap_peek_command(const char *line, size_t len, char *tag, size_t tagsize, char *name,
                      size_t namesize, bool *uid);

/* ---- command buffer ---------------------------------------------------------------------- */

/* Accumulates one command as it appears on the wire, minus the final CRLF, with a hard cap
 * on its total size. Literal bytes are kept raw (binary-safe). */
struct imap_cmdbuf {
    char *data;
    size_t len, cap;    /* used / allocated */
    size_t max;         /* hard cap on len */
    uint64_t pending;   /* literal bytes reserved and expected next (0 = expect a line) */
    size_t pending_off; /* where those bytes go */
    bool complete;
};

enum {
    IMAP_CMDBUF_DONE = 0,    /* the command is complete: parse data/len */
    IMAP_CMDBUF_LITERAL = 1, /* a literal follows; *lit tells its size and kind */
    IMAP_CMDBUF_TOOBIG = -1, /* the line or literal would pass the cap */
    IMAP_CMDBUF_ERROR = -2,  /* malformed literal spec or misuse (see err) */
};

void imap_cmdbuf_init(struct imap_cmdbuf *b, size_t max);
/* Forgets the current command, keeps the allocation for the next one. */
void imap_cmdbuf_reset(struct imap_cmdbuf *b);
void imap_cmdbuf_free(struct imap_cmdbuf *b);
/* Adds one line as read by net_read_line (CRLF or LF may be included). Returns one of the
 * IMAP_CMDBUF_* values. On IMAP_CMDBUF_LITERAL the literal is not yet reserved: the engine
 * checks it (imap_literal_check) and then calls imap_cmdbuf_literal_space. */
int imap_cmdbuf_add_line(struct imap_cmdbuf *b, const char *line, size_t len,
                         struct imap_literal *lit, char *err, size_t errlen);
/* Reserves room for the announced literal and returns where to read its bytes (exactly
 * lit.size of them), or NULL when it would pass the cap / out of memory. */
void *imap_cmdbuf_literal_space(struct imap_cmdbuf *b);
/* Marks the reserved literal as read; the next thing added must be a line. */
void imap_cmdbuf_literal_done(struct imap_cmdbuf *b);
/* Convenience: literal_space + memcpy + literal_done. n must equal the announced size. */
int imap_cmdbuf_add_literal(struct imap_cmdbuf *b, const void *data, size_t n);

/* ---- the command and its arguments ------------------------------------------------------ */

enum imap_arg_type {
    IMAP_ARG_ATOM,    /* incl. flags (\Seen), seq-sets, and fetch-atts with [...] and <..> */
    IMAP_ARG_QUOTED,  /* unescaped contents */
    IMAP_ARG_LITERAL, /* raw bytes, see below */
    IMAP_ARG_NIL,     /* the atom NIL (any case); str keeps the spelling */
    IMAP_ARG_LIST,    /* ( ... ) */
};

struct imap_arg {
    enum imap_arg_type type;
    bool binary;     /* LITERAL sent as literal8 ~{N} */
    bool nonsync;    /* LITERAL sent as {N+} */
    const char *str; /* ATOM/QUOTED/NIL: NUL-terminated, in the arena. LITERAL: points into
                      * the buffer given to imap_parse_command, NOT NUL-terminated, may
                      * contain NUL if binary; use imap_arg_string for a C string */
    size_t len;
    struct imap_arg *list; /* LIST: its elements */
    size_t count;
};

#define IMAP_PARSE_UTF8     0x01 /* UTF8=ACCEPT (RFC 6855/9051): UTF-8 allowed in quoted */
#define IMAP_PARSE_BRACKETS 0x02 /* read atom[...]<...> as one atom; automatic for FETCH */

struct imap_cmd {
    unsigned flags;               /* IN: IMAP_PARSE_*; all other fields are output */
    char tag[IMAP_TAG_MAX + 1];   /* "" when the tag itself was bad (answer "* BAD") */
    char name[IMAP_NAME_MAX + 1]; /* uppercased, without the UID prefix */
    bool uid;                     /* "UID FETCH ..." etc. */
    struct imap_arg *args;
    size_t nargs;
    struct imap_arena arena;
};

/*
 * Parses one complete command (as built by struct imap_cmdbuf: tag SP name [SP args], an
 * optional trailing CRLF, each literal as {N}CRLF followed by N bytes). On success returns
 * 0 and the caller must imap_cmd_free(cmd); the buffer must outlive cmd (literals point into
 * it). On failure returns -1 with err set, nothing to free, and cmd->tag filled when the
 * tag was valid.
 */
int imap_parse_command(const char *buf, size_t len, struct imap_cmd *cmd, char *err, size_t errlen);
void imap_cmd_free(struct imap_cmd *cmd);

/* astring/nstring helpers: a NUL-terminated string for ATOM, QUOTED, NIL (its spelling)
 * and LITERAL (copied into the command arena; NULL if it contains NUL). NULL for lists. */
const char *imap_arg_string(struct imap_cmd *cmd, const struct imap_arg *arg);
/* True when arg is the atom `word` (case-insensitive). */
bool imap_arg_is_atom(const struct imap_arg *arg, const char *word);

/* ---- sequence sets ----------------------------------------------------------------------- */

#define IMAP_SEQ_STAR 0u /* in an unresolved range: '*', the largest number in use */

struct imap_seq_range {
    uint32_t lo, hi; /* lo <= hi once resolved; either may be IMAP_SEQ_STAR before */
};

struct imap_seqset {
    struct imap_seq_range *r;
    size_t n;
    size_t nstar; /* the last nstar ranges involve '*' (kept apart until resolved) */
    bool dollar;  /* "$": the saved search result (RFC 5182); r/n are empty */
    bool owned;   /* r was malloc'ed (no arena given) and is freed by imap_seqset_free */
};

#define IMAP_SEQ_ALLOW_DOLLAR 0x01 /* accept "$" (SEARCHRES enabled and meaningful here) */

/* Parses "1,3:5,7:*" or "$". Ranges without '*' come out sorted and merged; a ranges with
 * '*' stay apart until imap_seqset_resolve. Memory from arena a, or malloc when a is NULL. */
int imap_seqset_parse(struct imap_arena *a, const char *s, size_t len, unsigned flags,
                      struct imap_seqset *out, char *err, size_t errlen);
/* Replaces '*' by max (the EXISTS count or the highest UID) and normalizes. With max == 0
 * (empty mailbox) every range involving '*' is dropped. Does not allocate. */
void imap_seqset_resolve(struct imap_seqset *set, uint32_t max);
/* On a resolved set: is n in it? (binary search) */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n);
/* On a resolved set: how many numbers, and the largest (0 when empty). */
uint64_t imap_seqset_count(const struct imap_seqset *set);
uint32_t imap_seqset_max(const struct imap_seqset *set);

struct imap_seqset_iter {
    size_t i;
    uint64_t next; /* 0: start of range i */
};
/* Ascending iteration over a resolved set: `struct imap_seqset_iter it = {0};` then
 * while (imap_seqset_next(set, &it, &n)) ... */
bool imap_seqset_next(const struct imap_seqset *set, struct imap_seqset_iter *it, uint32_t *out);
/* Writes the compact form ("1:3,7") NUL-terminated; returns the length it needs (like
 * snprintf), so a result >= size means truncated. */
size_t imap_seqset_format(const struct imap_seqset *set, char *buf, size_t size);
void imap_seqset_free(struct imap_seqset *set);

/* nz-number (1..4294967295) and number64/mod-sequence values, strict: digits only, no sign,
 * no overflow. Return 0 or -1. */
int imap_parse_nz_number(const char *s, size_t len, uint32_t *out);
int imap_parse_number64(const char *s, size_t len, uint64_t *out);

/* ---- dates -------------------------------------------------------------------------------- */

/* date = 1*2DIGIT "-" Mon "-" 4DIGIT, e.g. "1-Feb-1994" → days since 1970-01-01. */
int imap_date_parse(const char *s, size_t len, int32_t *day);
/* date-time = "17-Jul-1996 02:44:25 -0700" (day may be " 7") → UTC unix time; the zone
 * offset in minutes east of UTC goes to *tz_min when not NULL. */
int imap_datetime_parse(const char *s, size_t len, int64_t *t, int *tz_min);
/* "1-Feb-1994" (no quotes). Returns the length or -1 when it does not fit / out of range. */
int imap_date_format(int32_t day, char *buf, size_t size);
/* "17-Jul-1996 02:44:25 -0700" (no quotes) for time t shown in zone tz_min. */
int imap_datetime_format(int64_t t, int tz_min, char *buf, size_t size);

/* ---- modified UTF-7 mailbox names (RFC 3501 §5.1.3) -------------------------------------- */

/* Both write a NUL-terminated result and return its length, or -1 on invalid input (err
 * says why) or when out is too small. An output of len+1 bytes (decode) / 5*len+1
 * (encode) always suffices. */
int imap_utf7_to_utf8(const char *in, size_t len, char *out, size_t outsize, char *err,
                      size_t errlen);
int imap_utf8_to_utf7(const char *in, size_t len, char *out, size_t outsize, char *err,
                      size_t errlen);
/* Well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF)? */
bool imap_utf8_valid(const char *s, size_t len);

/* ---- writing strings in responses ------------------------------------------------------- */

typedef int (*imap_write_fn)(void *ctx, const void *data, size_t len);

#define IMAP_WRITE_UTF8    0x01 /* client enabled UTF8=ACCEPT: 8-bit may go in quoted */
#define IMAP_WRITE_NSTRING 0x02 /* s == NULL writes NIL */

/* Writes s as an atom when it is one (and is not "NIL"), else as a quoted string when it
 * can be (no CR/LF/NUL, 8-bit only with IMAP_WRITE_UTF8, short), else as a literal
 * {N}CRLF + bytes (~{N} when it contains NUL). Returns 0 or the first non-zero fn result. */
int imap_write_astring(const char *s, size_t len, unsigned flags, imap_write_fn fn, void *ctx);
/* The same into buf (NUL-terminated); returns the length needed, like snprintf. */
size_t imap_astring_to_buf(const char *s, size_t len, unsigned flags, char *buf, size_t size);
/* Always quoted (or literal if it cannot be quoted): for places that want a string. */
int imap_write_string(const char *s, size_t len, unsigned flags, imap_write_fn fn, void *ctx);

/* ---- flags -------------------------------------------------------------------------------- */

#define IMAP_FLAG_ANSWERED 0x01
#define IMAP_FLAG_FLAGGED  0x02
#define IMAP_FLAG_DELETED  0x04
#define IMAP_FLAG_SEEN     0x08
#define IMAP_FLAG_DRAFT    0x10
#define IMAP_FLAG_RECENT   0x20

struct imap_flags {
    unsigned sys;          /* IMAP_FLAG_* */
    const char **keywords; /* in the arena, duplicates (case-insensitive) removed */
    size_t nkeywords;
};

#define IMAP_FLAGS_STORE 0x01 /* STORE/APPEND: refuse \Recent */

/* A flag list "(\Seen $Junk)" or, for STORE's lenient form, one bare flag atom. */
int imap_flags_parse(struct imap_arena *a, const struct imap_arg *arg, unsigned opts,
                     struct imap_flags *out, char *err, size_t errlen);

enum imap_store_op { IMAP_STORE_SET, IMAP_STORE_ADD, IMAP_STORE_REMOVE };
/* STORE's item: "FLAGS", "+FLAGS", "-FLAGS", each optionally ".SILENT". */
int imap_store_item_parse(const struct imap_arg *arg, enum imap_store_op *op, bool *silent,
                          char *err, size_t errlen);

/* ---- SEARCH -------------------------------------------------------------------------------- */

enum imap_sk {
    IMAP_SK_ALL,
    IMAP_SK_AND,     /* children: every one must match (a key list or a group) */
    IMAP_SK_OR,      /* children: exactly two */
    IMAP_SK_NOT,     /* children: exactly one */
    IMAP_SK_SEQSET,  /* u.seq (may be "$") */
    IMAP_SK_UID,     /* u.seq (may be "$") */
    IMAP_SK_FLAG,    /* u.flag: one IMAP_FLAG_*; UNSEEN etc. come as NOT FLAG */
    IMAP_SK_KEYWORD, /* u.str */
    IMAP_SK_HEADER,  /* u.hdr: BCC CC FROM SUBJECT TO (name is that word) and HEADER */
    IMAP_SK_BODY,    /* u.str */
    IMAP_SK_TEXT,    /* u.str */
    IMAP_SK_BEFORE,  /* u.day: internal date, in days since 1970-01-01 */
    IMAP_SK_ON,
    IMAP_SK_SINCE,
    IMAP_SK_SENTBEFORE, /* u.day: Date: header */
    IMAP_SK_SENTON,
    IMAP_SK_SENTSINCE,
    IMAP_SK_LARGER,   /* u.num */
    IMAP_SK_SMALLER,  /* u.num */
    IMAP_SK_YOUNGER,  /* u.num seconds (RFC 5032) */
    IMAP_SK_OLDER,    /* u.num seconds */
    IMAP_SK_MODSEQ,   /* u.modseq (RFC 7162) */
    IMAP_SK_EMAILID,  /* u.str (RFC 8474) */
    IMAP_SK_THREADID, /* u.str */
};

enum imap_modseq_entry_type { IMAP_ENTRY_NONE, IMAP_ENTRY_PRIV, IMAP_ENTRY_SHARED, IMAP_ENTRY_ALL };

struct imap_search_key {
    enum imap_sk type;
    struct imap_search_key *child; /* AND/OR/NOT: first child; siblings via next */
    struct imap_search_key *next;
    size_t nchildren;
    union {
        struct imap_seqset seq;
        unsigned flag;
        const char *str;
        int32_t day;
        uint64_t num;
        struct {
            const char *name; /* header field name, e.g. "FROM" or "X-Spam" */
            const char *value;
        } hdr;
        struct {
            const char *entry; /* "/flags/\\seen" or NULL */
            enum imap_modseq_entry_type entry_type;
            uint64_t value;
        } modseq;
    } u;
};

#define IMAP_SRET_MIN   0x01
#define IMAP_SRET_MAX   0x02
#define IMAP_SRET_ALL   0x04
#define IMAP_SRET_COUNT 0x08
#define IMAP_SRET_SAVE  0x10

struct imap_search {
    bool esearch;                 /* RETURN (...) was given: answer with ESEARCH (RFC 4731) */
    unsigned ret;                 /* IMAP_SRET_*; "RETURN ()" means ALL */
    const char *charset;          /* NULL if none given */
    struct imap_search_key *root; /* always an AND */
    bool uses_modseq;             /* a MODSEQ key: add "(MODSEQ n)" to the response (RFC 7162) */
};

#define IMAP_SEARCH_DOLLAR 0x01 /* SEARCHRES: "$" allowed as a sequence set */

/* Parses SEARCH's arguments (everything after the command name). */
int imap_search_parse(struct imap_arena *a, const struct imap_arg *args, size_t nargs,
                      unsigned flags, struct imap_search *out, char *err, size_t errlen);

/* SORT (RFC 5256) criteria, DISPLAYFROM/DISPLAYTO (RFC 5957). The search keys after the
 * charset go through imap_search_parse. */
enum imap_sort_key {
    IMAP_SORT_ARRIVAL,
    IMAP_SORT_CC,
    IMAP_SORT_DATE,
    IMAP_SORT_FROM,
    IMAP_SORT_SIZE,
    IMAP_SORT_SUBJECT,
    IMAP_SORT_TO,
    IMAP_SORT_DISPLAYFROM,
    IMAP_SORT_DISPLAYTO,
};

#define IMAP_SORT_MAX 16 /* criteria in one SORT */

struct imap_sort {
    enum imap_sort_key key;
    bool reverse;
};

/* "(REVERSE DATE SUBJECT)" → out[0..*n). Returns 0 or -1. */
int imap_sort_parse(const struct imap_arg *list, struct imap_sort out[IMAP_SORT_MAX], size_t *n,
                    char *err, size_t errlen);

/* ---- FETCH --------------------------------------------------------------------------------- */

enum imap_fetch_type {
    IMAP_FETCH_FLAGS,
    IMAP_FETCH_UID,
    IMAP_FETCH_INTERNALDATE,
    IMAP_FETCH_RFC822_SIZE,
    IMAP_FETCH_RFC822,        /* = BODY[] (sets \Seen) */
    IMAP_FETCH_RFC822_HEADER, /* = BODY.PEEK[HEADER] */
    IMAP_FETCH_RFC822_TEXT,   /* = BODY[TEXT] (sets \Seen) */
    IMAP_FETCH_ENVELOPE,
    IMAP_FETCH_BODY, /* non-extensible BODYSTRUCTURE */
    IMAP_FETCH_BODYSTRUCTURE,
    IMAP_FETCH_BODY_SECTION, /* BODY[...] / BODY.PEEK[...] */
    IMAP_FETCH_BINARY,       /* BINARY[...] / BINARY.PEEK[...] (RFC 3516) */
    IMAP_FETCH_BINARY_SIZE,
    IMAP_FETCH_MODSEQ,
    IMAP_FETCH_EMAILID,
    IMAP_FETCH_THREADID,
};

enum imap_section_text {
    IMAP_SECTION_ALL, /* [] or [1.2]: the whole message / part */
    IMAP_SECTION_HEADER,
    IMAP_SECTION_HEADER_FIELDS,
    IMAP_SECTION_HEADER_FIELDS_NOT,
    IMAP_SECTION_TEXT,
    IMAP_SECTION_MIME, /* only after a part number */
};

struct imap_section {
    uint32_t part[IMAP_SECTION_MAX_PART];
    size_t nparts;
    enum imap_section_text text;
    const char **fields; /* HEADER.FIELDS[.NOT]: names as the client spelled them */
    size_t nfields;
};

struct imap_fetch_item {
    enum imap_fetch_type type;
    bool peek; /* .PEEK: do not set \Seen */
    struct imap_section section;
    bool partial; /* <offset.count> */
    uint64_t offset, count;
};

struct imap_fetch {
    struct imap_fetch_item *items;
    size_t count;
    bool changedsince; /* CHANGEDSINCE given (MODSEQ is then added to items) */
    uint64_t since;
    bool vanished;  /* VANISHED (QRESYNC, UID FETCH only) */
    bool sets_seen; /* some item sets \Seen (BODY[..] without PEEK, RFC822, ...) */
};

/* Parses FETCH's attribute argument (one atom, a macro, or a list) and the optional
 * modifier list (NULL when absent). `uid` is true for UID FETCH (VANISHED needs it). */
int imap_fetch_parse(struct imap_arena *a, const struct imap_arg *att, const struct imap_arg *mods,
                     bool uid, struct imap_fetch *out, char *err, size_t errlen);
/* The item's name as the response spells it: "BODY[1.HEADER.FIELDS (From)]<0>", "BINARY[2]",
 * "RFC822.SIZE". Returns the length needed, like snprintf. */
size_t imap_fetch_item_name(const struct imap_fetch_item *it, char *buf, size_t size);

#endif
