/*
 * smtp_parse.h — the SMTP parser library (no I/O): command lines, the reverse and forward
 * paths of MAIL and RCPT (RFC 5321 §4.1.2, with RFC 6531 UTF-8 addresses), their ESMTP
 * parameters (SIZE, BODY, SMTPUTF8, AUTH, and DSN's RET, ENVID, NOTIFY, ORCPT with xtext),
 * and the message-content decoder that DATA and BDAT feed (dot-unstuffing, the one true
 * end-of-data <CRLF>.<CRLF>, line ends normalised to CRLF, size and line limits).
 *
 * Private to mail/ except smtp_parse_address, which other modules may use to validate an
 * address given to them (aliases, forwards). Every function is bounded by its arguments
 * and never reads past len.
 */
#ifndef POLARIS_SMTP_PARSE_H
#define POLARIS_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* RFC 5321 §4.5.3.1 */
#define SMTP_LOCAL_MAX  64    /* local part, octets */
#define SMTP_DOMAIN_MAX 255   /* domain, octets */
#define SMTP_PATH_MAX   256   /* path including "<" and ">" */
#define SMTP_LINE_MAX   1000  /* command line including CRLF */
#define SMTP_AUTH_MAX   12288 /* RFC 4954 §4: AUTH lines may be this long */
#define SMTP_ENVID_MAX  100   /* RFC 3461 §4.4 */
#define SMTP_ORCPT_MAX  500   /* RFC 3461 §4.2 */

/* Parser results: 0 is success, the rest say which reply fits. */
enum smtp_perr {
    SMTP_OK = 0,
    SMTP_E_SYNTAX = -1,  /* 501 5.5.4 / 501 5.1.7 / 501 5.1.3 */
    SMTP_E_TOOLONG = -2, /* a length limit of RFC 5321 (501 5.5.4 or 552 for SIZE) */
    SMTP_E_UTF8 = -3,    /* non-ASCII address without SMTPUTF8: 553 5.6.7 */
    SMTP_E_PARAM = -4,   /* unknown or unsupported parameter: 555 5.5.4 */
    SMTP_E_DUP = -5,     /* a parameter given twice: 501 5.5.4 */
    SMTP_E_NUL = -6,     /* NUL or a bare CR in a command line: 500 5.5.2 */
};

enum smtp_verb {
    SMTP_V_UNKNOWN = 0,
    SMTP_V_HELO,
    SMTP_V_EHLO,
    SMTP_V_MAIL,
    SMTP_V_RCPT,
    SMTP_V_DATA,
    SMTP_V_BDAT,
    SMTP_V_RSET,
    SMTP_V_NOOP,
    SMTP_V_QUIT,
    SMTP_V_VRFY,
    SMTP_V_EXPN,
    SMTP_V_HELP,
    SMTP_V_STARTTLS,
    SMTP_V_AUTH,
    SMTP_V_HTTP, /* GET, POST, ...: a web client (or a cross-protocol attack) */
    SMTP_V__COUNT
};

struct smtp_cmd {
    enum smtp_verb verb;
    char name[16]; /* the verb as sent, upper-cased and truncated (for messages) */
    char *args;    /* after the verb and one space; "" when none; points into the line */
};

/* Splits a command line in place (its CRLF or LF is removed). Refuses NUL bytes and CR
 * other than the final one (SMTP_E_NUL). */
int smtp_parse_command(char *line, size_t len, struct smtp_cmd *out);
const char *smtp_verb_name(enum smtp_verb v);

/* An address of a path. addr is the canonical text the rest of Polaris uses:
 * local@domain with the domain lower-cased (ASCII letters) and a quoted local part
 * unquoted when it needs no quoting; "" for the null path. */
struct smtp_addr {
    char addr[SMTP_PATH_MAX + 1];
    char local[SMTP_LOCAL_MAX * 2 + 3]; /* canonical local part (may be quoted) */
    char domain[SMTP_DOMAIN_MAX + 1];
    int null;       /* the null path <> */
    int postmaster; /* <Postmaster> with no domain (RCPT only, RFC 5321 §4.1.1.3) */
    int utf8;       /* has non-ASCII characters */
    int literal;    /* the domain is an address literal */
};

/* Parses a Mailbox (local-part "@" domain, no angle brackets) of exactly len bytes.
 * allow_utf8: RFC 6531 local parts and U-labels. Returns SMTP_OK or SMTP_E_*. */
int smtp_parse_address(const char *s, size_t len, int allow_utf8, struct smtp_addr *out);

/* Parses a Path "<" [A-d-l ":"] Mailbox ">" (a source route is parsed and dropped) at
 * the start of s; allow_null admits "<>"; allow_postmaster admits "<Postmaster>".
 * *used receives the bytes consumed. */
int smtp_parse_path(const char *s, size_t len, int allow_utf8, int allow_null, int allow_postmaster,
                    struct smtp_addr *out, size_t *used);

enum smtp_body { SMTP_BODY_NONE = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };
enum smtp_ret { SMTP_RET_NONE = 0, SMTP_RET_FULL, SMTP_RET_HDRS };

#define SMTP_NOTIFY_NEVER   0x1
#define SMTP_NOTIFY_SUCCESS 0x2
#define SMTP_NOTIFY_FAILURE 0x4
#define SMTP_NOTIFY_DELAY   0x8

struct smtp_mail {
    struct smtp_addr from;
    int has_size;
    uint64_t size; /* SIZE=, saturated at UINT64_MAX */
    enum smtp_body body;
    int smtputf8;
    enum smtp_ret ret;
    int has_envid;
    char envid[SMTP_ENVID_MAX + 1]; /* xtext-decoded, printable ASCII */
    int has_auth;                   /* AUTH= (RFC 4954 §5): parsed, value not trusted */
};

struct smtp_rcpt {
    struct smtp_addr to;
    unsigned notify; /* SMTP_NOTIFY_* (0: not given) */
    int has_orcpt;
    char orcpt_type[32];            /* "rfc822", "utf-8" ... */
    char orcpt[SMTP_ORCPT_MAX + 1]; /* xtext-decoded address */
};

/* "FROM:<path> [params]" (the arguments of MAIL). A space after the colon is tolerated,
 * as widespread clients send one. On error, err (may be NULL) gets a short reason. */
int smtp_parse_mail(const char *args, struct smtp_mail *out, char *err, size_t errlen);
/* "TO:<path> [params]" (the arguments of RCPT). smtputf8: the transaction's MAIL had
 * SMTPUTF8, so UTF-8 addresses are accepted. */
int smtp_parse_rcpt(const char *args, int smtputf8, struct smtp_rcpt *out, char *err,
                    size_t errlen);

/* Decodes RFC 3461 xtext ("+2B" for '+') into out (NUL-terminated). Returns the decoded
 * length or -1 when malformed or longer than outmax - 1. */
int smtp_xtext_decode(const char *in, size_t len, char *out, size_t outmax);

/* "<size> [LAST]" (the arguments of BDAT). */
int smtp_parse_bdat(const char *args, uint64_t *size, int *last);

/* A domain or address literal as EHLO/HELO give it. Lenient on purpose: many clients
 * send a bare host name. Returns 1 when it is a syntactically valid Domain or
 * address-literal, else 0. */
int smtp_valid_helo(const char *s, size_t len);

/* ---- message content ------------------------------------------------------------------ */

/* A growable buffer; `reserve` bytes are kept free at the front so that a trace header
 * can be put before the content without copying it. */
struct smtp_buf {
    char *p;
    size_t reserve; /* content starts at p + reserve */
    size_t len;     /* content bytes */
    size_t cap;     /* bytes allocated after reserve */
};

void smtp_buf_free(struct smtp_buf *b);

/* The content decoder. DATA mode: dot-unstuffing and the end of data, which is only
 * <CRLF>.<CRLF> (the start of data counts as a line start after CRLF). A bare LF or a
 * bare CR ends a line of content (it becomes CRLF) but never starts or ends the
 * terminator: "<LF>.<LF>", "<CR>.<CR>", "<LF>.<CRLF>" and "<CRLF>.<LF>" are content (no
 * SMTP smuggling). BDAT mode (raw): no dots and no terminator, line ends normalised the
 * same way. Content beyond the limits is counted but not kept, and the limit is noted. */
struct smtp_data {
    int raw;
    int state;
    int crlf_bol; /* the current line started after a CRLF (or at the start) */
    int in_header;
    size_t line_len; /* of the current line, without its end */
    int line_first;  /* its first byte, -1 before it has one */
    int line_colon;  /* it has a ':' (looks like a header field) */
    size_t header_len;
    uint64_t total;    /* content bytes after decoding, kept or not */
    size_t max_size;   /* SIZE: content beyond this is not kept */
    size_t max_line;   /* a line longer than this (without CRLF) is an error */
    size_t max_header; /* a header section longer than this is an error */
    int over_size, over_line, over_header, nomem, has_nul, has_8bit;
    int done; /* DATA: the terminator was seen */
};

void smtp_data_init(struct smtp_data *d, int raw, size_t max_size, size_t max_line,
                    size_t max_header);
/* Feeds bytes; returns how many were consumed. In DATA mode it stops right after the
 * terminator (d->done); what follows belongs to the next command. */
size_t smtp_data_feed(struct smtp_data *d, struct smtp_buf *out, const char *in, size_t len);
/* BDAT LAST: a CR pending at the very end becomes a line end. */
void smtp_data_finish(struct smtp_data *d, struct smtp_buf *out);
/* Whether any limit was hit or memory ran out. */
int smtp_data_failed(const struct smtp_data *d);

#endif
