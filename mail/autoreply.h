/*
 * autoreply.h — per-user and per-alias auto-replies (RFC 3834), private to mail/ and the
 * admin CLI: the settings kept in the directory under an address's "autoreply" key, and
 * the hook the delivery pipeline (deliver.c) calls after a message reached an address.
 */
#ifndef POLARIS_MAIL_AUTOREPLY_H
#define POLARIS_MAIL_AUTOREPLY_H

#include <stddef.h>
#include <stdint.h>

#include "mail/mail.h"

#define AUTOREPLY_SUBJECT_MAX 256
#define AUTOREPLY_BODY_MAX    (64 * 1024)

/* The settings of one address. */
struct autoreply {
    int enabled;
    int days;                            /* < 0: the server's autoreply_days */
    int64_t start, end;                  /* unix seconds, inclusive; 0: unbounded */
    char subject[AUTOREPLY_SUBJECT_MAX]; /* "": "Auto: <original subject>" */
    char *body;                          /* malloc'd UTF-8 text; never NULL after get */
};

/* Reads the settings of an address; STORE_ENOTFOUND when it has none. Free with
 * autoreply_free. */
int autoreply_get(struct store *s, const char *address, struct autoreply *out,
                  struct store_err *err);
/* Writes them (subject without line breaks, body at most AUTOREPLY_BODY_MAX bytes). */
int autoreply_put(struct store *s, const char *address, const struct autoreply *a,
                  struct store_err *err);
void autoreply_free(struct autoreply *a);

/* "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS][Z]", UTC. A bare date means its first second, or
 * its last one when end_of_day. Returns 0 or -1 when malformed. */
int autoreply_parse_date(const char *s, int end_of_day, int64_t *out);

/* What the pipeline knows about a message that reached an address. */
struct autoreply_ctx {
    const char *scope;     /* the address whose settings apply (a mailbox or an alias) */
    const char *rcpt;      /* the envelope recipient that led there */
    const char *mail_from; /* envelope sender of the original */
    const char *hdr;       /* header block of the original (CRLF) */
    size_t hdr_len;
    int has_mailbox; /* scope is a mailbox: the reply log lives in its store */
};

/* Sends the auto-reply of ctx->scope when its settings and RFC 3834 allow one, through
 * deliver_message with a null sender. Never fails the delivery: problems are logged.
 * Returns 1 when a reply was sent, 0 otherwise. */
int autoreply_consider(struct deliver *d, const struct autoreply_ctx *ctx);

#endif
