/*
 * mail.h — the one public interface of mail/: the line-protocol engines (POP3, IMAP, SMTP)
 * as session functions for server/net.c listeners, and what they share.
 */
#ifndef POLARIS_MAIL_H
#define POLARIS_MAIL_H

#include "server/server.h"
#include "store/store.h"

/* Everything a line-protocol session needs, shared by all sessions of a listener. */
struct mail_ctx {
    struct store *store;
    struct auth *auth;
    const struct config *cfg;
    const char *hostname; /* for greetings */
    int allow_plaintext;  /* plain-text logins allowed without TLS on this listener */
    int idle_timeout_ms;  /* inactivity before a session is closed */
};

/* POP3 (RFC 1939, 2449, 2595): the INBOX of the authenticated user. */
void pop3_session(struct net_conn *c, void *ctx);

/* Splits a SASL PLAIN response (authzid NUL authcid NUL password). Returns 0, or -1 when
 * malformed or when authzid names someone other than authcid (no proxy logins). */
int mail_sasl_plain(const unsigned char *resp, size_t len, char *user, size_t userlen, char *pass,
                    size_t passlen);

/* The hierarchy separator of mail folder paths ("Archive.Inbox.2023"). */
#define MAIL_HIER_SEP '.'

/* A message entering a mailbox. */
struct mail_new {
    const char *data; /* RFC 5322 bytes; bare LF line ends are converted to CRLF */
    size_t len;
    uint32_t flags;       /* STORE_FLAG_* */
    const char *keywords; /* NULL: none */
    int64_t idate;        /* internal date; 0: now */
    int no_quota;         /* system messages (bounces) are stored even over quota */
};

/* Stores a message in a folder: normalised to CRLF, its structure parsed once and kept
 * beside it for the engines. The one way mail enters a mailbox. */
int mail_store_message(struct store_user *u, int64_t folder_id, const struct mail_new *m,
                       struct store_item *out, struct store_err *err);
/* Converts bare LF line ends to CRLF and drops a leading mbox "From " line; *out is
 * malloc'd and NUL-terminated. */
int mail_normalize(const char *in, size_t len, char **out, size_t *outlen);
/* Finds a mail folder by its path ("INBOX", "Archive.Inbox.2023"; INBOX in any case). */
int mail_folder_resolve(struct store_user *u, const char *path, struct store_folder *out);

#endif
