/*
 * mime.h — the MIME library of Polaris (private to mail/): a bounded parser for untrusted
 * RFC 5322 / MIME messages, the IMAP serializations computed from it (ENVELOPE,
 * BODYSTRUCTURE, BODY) and the per-message cache blob that the store keeps as an item's
 * `meta`, so IMAP FETCH/SEARCH/SORT/THREAD and ActiveSync never re-parse a message.
 *
 * Everything works on the message bytes as stored (CRLF line ends in the store, but bare LF
 * is accepted too): every offset and size is over exactly the bytes given to the parser.
 *
 * Limits (input is untrusted): nesting depth MIME_MAX_DEPTH (deeper multiparts and
 * message/rfc822 parts become opaque application/octet-stream leaves), MIME_MAX_PARTS
 * entities per message (the rest of a multipart is ignored like an epilogue), header fields
 * are parsed from the first MIME_MAX_HEADER bytes of each header block.
 *
 * IMAP string rule (one rule everywhere in ENVELOPE/BODYSTRUCTURE/BODY): NUL bytes are
 * dropped (no IMAP string may carry them); a string is sent quoted, with '"' and '\' escaped,
 * when it is at most MIME_IMAP_QUOTED_MAX bytes of 7-bit text without CR or LF; anything
 * else (8-bit bytes, CR, LF, very long) is sent as a literal {n}\r\n.
 */
#ifndef POLARIS_MAIL_MIME_H
#define POLARIS_MAIL_MIME_H

#include <stddef.h>
#include <stdint.h>

#include "server/server.h"

#define MIME_MAX_DEPTH       32
#define MIME_MAX_PARTS       2048
#define MIME_MAX_HEADER      (1024 * 1024)
#define MIME_MAX_PARAMS      256  /* parameters kept per Content-Type/Disposition */
#define MIME_MAX_ADDRS       4096 /* addresses kept per address header */
#define MIME_IMAP_QUOTED_MAX 4096

/* ---- small utilities shared by the library ---------------------------------------- */

/* An arena: everything a parsed message owns is allocated here and freed at once. */
struct mime_arena_chunk;
struct mime_arena {
    struct mime_arena_chunk *head;
    int oom;
};
void *mime_arena_alloc(struct mime_arena *a, size_t n);
char *mime_arena_strndup(struct mime_arena *a, const char *s, size_t n);
void mime_arena_free(struct mime_arena *a);

/* ---- header fields (mime_header.c) ------------------------------------------------- */

/* One header field as raw bytes of the message: value runs from after the ':' to the end of
 * the field (folds included, final line break excluded). */
struct mime_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Length of the header block that starts at msg (including the empty line that ends it);
 * len when there is no empty line. A first line that is not a header field means there is
 * no header at all (0). */
size_t mime_header_size(const char *msg, size_t len);
/* Iterates the fields of a header block; *pos starts at 0. Returns 1 with *f filled, 0 at
 * the end. Lines that are not fields (no ':' or a bad name) are skipped. */
int mime_header_next(const char *hdr, size_t len, size_t *pos, struct mime_field *f);
/* First field called name (case-insensitive); 1 when found. */
int mime_header_get(const char *hdr, size_t len, const char *name, struct mime_field *f);
/* Unfolds a raw value: line breaks removed, leading/trailing white space trimmed. */
char *mime_unfold(struct mime_arena *a, const char *v, size_t len);
/* Decodes RFC 2047 encoded words anywhere in v (adjacent ones joined, white space between
 * them dropped, malformed ones left as they are) into UTF-8. Unknown charsets and raw 8-bit
 * bytes are kept as they are (see mime_utf8_clean). */
void mime_header_decode(const char *v, size_t len, struct buf *out);
/* Converts len bytes in charset to UTF-8 (iconv); an unknown charset copies the bytes. */
void mime_charset_to_utf8(const char *charset, const char *s, size_t len, struct buf *out);
/* Makes s valid UTF-8 for consumers that need it (XML, SEARCH): bytes that are not part of
 * a valid sequence are read as Latin-1, NUL is dropped, other C0 controls become spaces. */
void mime_utf8_clean(const char *s, size_t len, struct buf *out);

/* A Content-Type / Content-Disposition parameter, RFC 2231 continuations merged. attr is
 * upper case; an attr ending in '*' has a value in RFC 2231 extended form
 * (charset'lang'%XX..), as IMAP clients expect it in BODYSTRUCTURE. */
struct mime_param {
    char *attr;
    char *value;
};
/* Parses "type/subtype; a=b; ..." (ctype) or "disposition; a=b" (!ctype). Tokens come out
 * upper case; NULL type when the value is not a valid type. Returns -1 only on OOM. */
int mime_parse_ctype(struct mime_arena *a, const char *v, size_t len, int ctype, char **type,
                     char **subtype, struct mime_param **params, size_t *nparams);
/* The value of parameter name (case-insensitive) decoded to UTF-8: RFC 2231 form preferred,
 * else the plain value with encoded words decoded. NULL when absent. */
char *mime_param_decoded(struct mime_arena *a, const struct mime_param *p, size_t n,
                         const char *name);
/* The raw value of parameter attr (exact attr match after upper-casing), NULL if absent. */
const char *mime_param_get(const struct mime_param *p, size_t n, const char *attr);

/* RFC 5322 date (and obsolete forms: 2/3-digit years, named and military zones, missing
 * seconds or zone, asctime). Returns 0 with *t (unix seconds, UTC) and *tz (minutes east of
 * UTC), -1 when it is not a date. */
int mime_date_parse(const char *s, size_t len, int64_t *t, int *tz);

/* ---- addresses (mime_addr.c) -------------------------------------------------------- */

enum mime_addr_kind { MIME_ADDR_MAILBOX, MIME_ADDR_GROUP_START, MIME_ADDR_GROUP_END };

/* An address as IMAP ENVELOPE sees it. name is the raw display name (quotes and quoted-pairs
 * removed, encoded words NOT decoded; a trailing comment stands in for a missing name);
 * NULL fields are NIL. For GROUP_START, mailbox is the group name. host is "" (not NIL) when
 * the address has no domain, because NIL host means group syntax in IMAP. */
struct mime_addr {
    enum mime_addr_kind kind;
    char *name, *adl, *mailbox, *host;
    struct mime_addr *next;
};
/* Parses an address-list header value (raw, may be folded). Never fails on bad input;
 * returns -1 only on OOM. */
int mime_addr_parse(struct mime_arena *a, const char *v, size_t len, struct mime_addr **out);

/* ---- the parsed message (mime.c) --------------------------------------------------- */

enum mime_kind { MIME_LEAF, MIME_MULTIPART, MIME_MESSAGE };

/* One entity (a message, a multipart, a leaf part). Offsets are into the parsed bytes. For
 * MIME_MESSAGE (message/rfc822) msg is the encapsulated message, an entity whose header is
 * the encapsulated header and whose body is the rest of this part's body. */
struct mime_part {
    enum mime_kind kind;
    unsigned depth;
    size_t hdr_off, hdr_len;
    size_t body_off, body_len;
    size_t body_lines;
    char *type, *subtype; /* upper case, defaults applied */
    struct mime_param *params;
    size_t nparams;
    char *id, *desc, *enc, *md5; /* unfolded raw values or NULL */
    char *disp;                  /* upper case disposition type or NULL */
    struct mime_param *dparams;
    size_t ndparams;
    char *lang, *loc; /* unfolded raw or NULL */
    struct mime_part *parent, *children, *next, *msg;
};

struct mime_message {
    const char *data;
    size_t len;
    struct mime_part *root;
    size_t nparts;
    struct mime_arena arena;
};

/* Parses msg (not copied: it must outlive the result). Never fails on bad input; returns -1
 * only on OOM. */
int mime_parse(const char *msg, size_t len, struct mime_message **out);
void mime_free(struct mime_message *m);

/* Content-Transfer-Encoding handling for BINARY[]: decodes base64 / quoted-printable, copies
 * 7bit/8bit/binary (or enc NULL). Returns -1 for an unknown encoding (IMAP UNKNOWN-CTE) or
 * OOM. Broken base64/QP input is decoded as far as it makes sense, never refused. */
int mime_decode_cte(const char *enc, const char *s, size_t len, struct buf *out);

/* BODY[HEADER.FIELDS (names)] / BODY[HEADER.FIELDS.NOT (names)] over a raw header block:
 * the matching (or non-matching) fields as they are, followed by an empty line. */
void mime_header_filter(const char *hdr, size_t len, const char *const *names, size_t nnames,
                        int negate, struct buf *out);

/* ---- IMAP serializations (mime_imap.c) ---------------------------------------------- */

/* Appends s as an IMAP nstring by the rule above (NIL when s is NULL). */
void mime_imap_nstring(struct buf *b, const char *s, size_t len);
/* ENVELOPE of the message whose header block is hdr[0..len). */
void mime_imap_envelope(struct mime_arena *a, const char *hdr, size_t len, struct buf *b);
/* BODYSTRUCTURE (extensible) or BODY (!ext) of an entity of m. */
void mime_imap_bodystructure(const struct mime_message *m, const struct mime_part *p, int ext,
                             struct buf *b);
/* RFC 5256 §2.1 base subject of a decoded (UTF-8) subject; *is_reply set when a Re:/Fwd:
 * leader or (fwd) trailer was removed (needed by THREAD). */
void mime_base_subject(const char *subj, size_t len, struct buf *out, int *is_reply);

/* ---- the cache blob (mime_cache.c) -------------------------------------------------- */

#define MIME_CACHE_VERSION 1

/* A string inside the blob: p is NUL-terminated at p[len] (the blob guarantees it), "" with
 * len 0 when absent. Decoded strings are valid UTF-8. */
struct mime_str {
    const char *p;
    size_t len;
};

#define MIME_CACHE_HAS_ATTACHMENTS 0x1u /* a part a user would call an attachment */
#define MIME_CACHE_DATE_VALID      0x2u /* date/date_tz came from a parseable Date: */
#define MIME_CACHE_SUBJECT_REPLY   0x4u /* the subject had Re:/Fwd: (RFC 5256 THREAD) */

/* A zero-copy view of a blob (valid while the blob is). */
struct mime_cache {
    uint32_t version, flags;
    uint64_t msg_size;   /* bytes of the message the blob was built from */
    uint64_t hdr_size;   /* RFC822.HEADER / BODY[HEADER] octets (with the empty line) */
    uint64_t body_size;  /* BODY[TEXT] octets */
    uint64_t body_lines; /* text lines of the body */
    int64_t date;        /* Date: as unix seconds (0 when not MIME_CACHE_DATE_VALID) */
    int32_t date_tz;     /* its zone, minutes east of UTC */
    struct mime_str envelope, bodystructure, body; /* IMAP, ready to send */
    struct mime_str subject;                       /* decoded, unfolded */
    struct mime_str base_subject;        /* RFC 5256 base subject (SORT SUBJECT, THREAD) */
    struct mime_str from, to, cc;        /* decoded header values as written */
    struct mime_str message_id;          /* first <msg-id> of Message-ID, brackets kept */
    struct mime_str in_reply_to;         /* first <msg-id> of In-Reply-To */
    struct mime_str references;          /* the <msg-id>s of References, separated by one space */
    struct mime_str from_name;           /* first From: display name, decoded */
    struct mime_str from_mailbox;        /* first From: local part (SORT FROM) */
    struct mime_str from_host;           /* first From: domain */
    struct mime_str to_name, to_mailbox; /* first To: (SORT TO, DISPLAYTO) */
    struct mime_str cc_mailbox;          /* first Cc: (SORT CC) */
    size_t nparts;
    const unsigned char *base; /* the blob */
    size_t len;
};

/* Part flags. */
#define MIME_PART_ROOT       0x01u /* the message itself (section "") */
#define MIME_PART_MULTIPART  0x02u /* its children are the parts of a multipart */
#define MIME_PART_MESSAGE    0x04u /* message/rfc822: msg_hdr_len is the inner header */
#define MIME_PART_ATTACHMENT 0x08u /* a file: disposition attachment, a filename, non-text */
#define MIME_PART_INLINE     0x10u /* disposition inline, or an embedded related resource */
#define MIME_PART_TEXT       0x20u /* a text part (lines count) */

#define MIME_PART_NONE UINT32_MAX

/*
 * One entry of the part table, in depth-first order. Every IMAP section number has exactly
 * one entry:
 *   - entry 0, section "": the message (BODY[HEADER] = hdr, BODY[TEXT] = body).
 *   - a message (the root or a message/rfc822 part) whose body is multipart has the parts of
 *     that multipart as children "N"; one whose body is not multipart has one child "1"
 *     whose hdr is the message header and whose body is the message body (RFC 3501:
 *     BODY[1] of a non-multipart message is its body).
 *   - a multipart that is itself a part ("1" in multipart/mixed) has its parts as "1.N".
 *   - a message/rfc822 part "2": BODY[2.MIME] = hdr, BODY[2] = body, BODY[2.HEADER] =
 *     body_off .. body_off+msg_hdr_len, BODY[2.TEXT] = the rest of body.
 * type/subtype/charset/encoding are lower case; encoding "7bit" when absent.
 */
struct mime_cache_part {
    struct mime_str section, type, subtype, charset, encoding, filename, content_id, disposition;
    uint32_t flags, parent, depth;
    uint64_t hdr_off, hdr_len, body_off, body_len, lines, msg_hdr_len;
};

/* Computes the blob for msg[0..len) into *blob (malloc'd, caller frees). -1 on OOM only. */
int mime_cache_build(const char *msg, size_t len, void **blob, size_t *bloblen);
/* Checks a blob (bounds, version, NUL-terminated strings, part offsets within msg_size) and
 * fills *out with a view into it. -1 when the blob is not a valid blob of this version: the
 * caller rebuilds it from the message. The caller must also check that msg_size matches
 * the stored message before slicing it with part offsets. */
int mime_cache_open(const void *blob, size_t len, struct mime_cache *out);
/* Part i (0 <= i < nparts) of an opened cache; -1 when i is out of range. */
int mime_cache_part(const struct mime_cache *c, size_t i, struct mime_cache_part *out);
/* The part whose section is section[0..len) ("1.2"; "" for the message); its index, or -1. */
long mime_cache_find(const struct mime_cache *c, const char *section, size_t len,
                     struct mime_cache_part *out);

#endif
