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
    const char *hostname;          /* for greetings */
    int allow_plaintext;           /* plain-text logins allowed without TLS on this listener */
    int idle_timeout_ms;           /* inactivity before a session is closed */
    struct imap_cache *imap_cache; /* IMAP: recent folder views, shared by all sessions */
    struct deliver *deliver;       /* SMTP: the delivery pipeline */
    int submission;                /* SMTP: a submission listener (587/465): AUTH before MAIL */
};

/* POP3 (RFC 1939, 2449, 2595): the INBOX of the authenticated user. */
void pop3_session(struct net_conn *c, void *ctx);
/* IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) with the extensions it advertises. */
void imap_session(struct net_conn *c, void *ctx);
/* Recent folder views shared by the IMAP sessions, holding at most max_msgs messages. */
struct imap_cache;
struct imap_cache *imap_cache_new(size_t max_msgs);
void imap_cache_free(struct imap_cache *c);

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
/* The same without the folder's item counts (count, unseen, bytes are -1): cheaper on big
 * folders, for callers that do not need them. */
int mail_folder_resolve_nocount(struct store_user *u, const char *path, struct store_folder *out);

/* ---------------------------------------------------------------------------------------
 * SMTP (smtp.c): MX on 25/26 and submission on 587 (STARTTLS) and 465 (implicit TLS).
 * The listener's mail_ctx says which: submission listeners require AUTH before MAIL.
 * ------------------------------------------------------------------------------------ */
void smtp_session(struct net_conn *c, void *ctx);

/* ---------------------------------------------------------------------------------------
 * The delivery pipeline (deliver.c): the one place a message goes from an envelope to
 * mailboxes and the outbound queue. SMTP (MX and submission), ActiveSync SendMail and
 * migration all call it.
 * ------------------------------------------------------------------------------------ */
struct queue;

/* A reply in SMTP terms, whatever the caller speaks: code 250/451/452/550/552/553/554...,
 * the enhanced status ("5.1.1") and the text customers see. */
struct deliver_reply {
    int code;
    char enhanced[16];
    char text[256];
};

/* DSN (RFC 3461) parameters of one recipient, as RCPT gave them. */
#define DELIVER_NOTIFY_NEVER   0x1
#define DELIVER_NOTIFY_SUCCESS 0x2
#define DELIVER_NOTIFY_FAILURE 0x4
#define DELIVER_NOTIFY_DELAY   0x8
struct deliver_dsn {
    unsigned notify;   /* DELIVER_NOTIFY_*; 0: not given (reports failures and delays) */
    const char *orcpt; /* ORCPT "type;address" xtext-decoded, or NULL */
};

struct deliver_env {
    const char *mail_from;         /* reverse path; "" is the null sender (bounces) */
    const char *auth_user;         /* authenticated submitter's address, or NULL (MX) */
    const char *helo;              /* for Received:; may be NULL */
    const char *client_ip;         /* for Received:; may be NULL */
    const char *protocol;          /* "ESMTPSA", "ESMTPS", "ESMTP", "ActiveSync"... */
    const char *ret;               /* DSN RET (FULL/HDRS) or NULL */
    const char *envid;             /* DSN ENVID or NULL */
    const struct deliver_dsn *dsn; /* per recipient of deliver_message, same order; or NULL */
};

struct deliver {
    struct store *store;
    struct queue *queue; /* NULL: external recipients are refused (tests, tools) */
    const struct config *cfg;
    /* Called for each local copy inside its transaction, once the message is stored
     * (eas_itip_received: iTIP replies reaching the organizer). A non-zero STORE_E* code
     * fails the copy with a temporary error. NULL: none. */
    int (*local_hook)(struct store_user *u, const char *mailbox, const char *msg, size_t len);
};

/* At RCPT time: may this recipient be accepted? Unauthenticated sessions (MX) take only
 * addresses of hosted domains that resolve to something (mailbox, alias, catch-all:
 * otherwise 550 5.1.1; never relay: 550 5.7.1); authenticated ones also take external
 * addresses. A full mailbox gives 452 4.2.2. Fills r; returns 0 when accepted. */
int deliver_check_rcpt(struct deliver *d, const struct deliver_env *env, const char *rcpt,
                       struct deliver_reply *r);

/* Delivers a message (RFC 5322 bytes, CRLF) to the accepted recipients: aliases and
 * forwards expanded (loops detected), each local mailbox gets exactly one copy (durably
 * committed), external targets are queued (durably). Returns 0 with r = 250 only when
 * everything is durable; otherwise r says why (4xx: try again; 5xx: refused). rcpt_replies,
 * when non-NULL, gets one reply per recipient (LMTP-style) in the same order. */
int deliver_message(struct deliver *d, const struct deliver_env *env, const char *const *rcpts,
                    size_t nrcpts, const char *msg, size_t len, struct deliver_reply *r,
                    struct deliver_reply *rcpt_replies);

/* May the user (an address) send as addr? Their own address, or one whose mail reaches
 * them: an alias chain ending at them, or the domain's catch-all for an address with no
 * mailbox or aliases of its own. SMTP submission and ActiveSync SendMail ask this. */
int deliver_sender_owned(struct store *s, const char *user, const char *addr);

/* Outgoing mail sent by an authenticated user (SMTP submission, ActiveSync SendMail) is
 * counted here: 50 a minute and 500 an hour per account by default. 0 when allowed (and
 * counted), else r is 451 4.7.1 (minute) or 550 "Administrative Prohibition" (hour). */
int deliver_rate_check(struct deliver *d, const char *address, size_t nrcpts,
                       struct deliver_reply *r);

/* ---------------------------------------------------------------------------------------
 * The outbound queue (queue.c): durable on disk under data_dir/queue/, delivered by its
 * own threads to the recipients' MX (or a configured smarthost / static route), with
 * opportunistic STARTTLS, retries with backoff for 5 days, delay notices and RFC 3464
 * bounces, DKIM-signed (dkim.c) with the sender domain's key.
 * ------------------------------------------------------------------------------------ */
struct queue *queue_open(struct store *s, const struct config *cfg, char *err, size_t errlen);
/* Starts the delivery threads (serve only; the CLI opens the queue without them). */
int queue_start(struct queue *q, struct deliver *d);
void queue_close(struct queue *q);
/* Adds a message for external recipients; returns only when it is durable (fsync). id
 * receives the queue id. */
int queue_submit(struct queue *q, const char *mail_from, const char *const *rcpts, size_t n,
                 const char *msg, size_t len, const char *envid, const char *ret, char *id,
                 size_t idlen, char *err, size_t errlen);

/* The same with DSN parameters per recipient (dsn: n entries, or NULL). */
int queue_submit_dsn(struct queue *q, const char *mail_from, const char *const *rcpts,
                     const struct deliver_dsn *dsn, size_t n, const char *msg, size_t len,
                     const char *envid, const char *ret, char *id, size_t idlen, char *err,
                     size_t errlen);

/* The address bare "<postmaster>" (RFC 5321 §4.5.1) and postmaster@ of a hosted domain
 * without its own go to: [smtp] postmaster, else postmaster@hostname. */
void deliver_postmaster(const struct deliver *d, char *out, size_t outlen);

/* The admin view (`polaris queue`); the CLI opens the queue without threads. */
struct queue_rcpt_info {
    const char *address;
    const char *status; /* "queued", "sent", "failed" (bounce pending), "bounced",
                         * "relayed" (sent; the success report is pending) */
    const char *diag;   /* the last answer or error; "" when none */
};
struct queue_info {
    const char *id;
    const char *mail_from; /* "" is the null sender */
    int64_t size;          /* bytes */
    int64_t arrival, next; /* unix seconds */
    int attempts;
    size_t nrcpts;
    const struct queue_rcpt_info *rcpts;
};
typedef int (*queue_list_cb)(const struct queue_info *m, void *ctx); /* non-zero stops */
int queue_list(struct queue *q, queue_list_cb cb, void *ctx, char *err, size_t errlen);
/* Makes every message due now. Works across processes: it leaves data_dir/queue/flush,
 * which the serving process looks for every second (and at start). */
int queue_flush(struct queue *q, char *err, size_t errlen);
/* Removes a message without telling anyone, after waiting for an attempt in progress.
 * 0, 1 when there is no such message, -1 on failure (err). */
int queue_del(struct queue *q, const char *id, char *err, size_t errlen);

/* DKIM keys of hosted domains (dkim.c), kept as directory settings of the domain.
 * enable makes an RSA-2048 key (again with the same selector: keeps the key; with a new
 * selector: a new key); record gives the TXT record to publish ("sel._domainkey",
 * "v=DKIM1; k=rsa; p=...") or STORE_ENOTFOUND when DKIM is off. */
int dkim_domain_enable(struct store *s, const char *domain, const char *selector,
                       struct store_err *err);
int dkim_domain_disable(struct store *s, const char *domain, struct store_err *err);
int dkim_domain_record(struct store *s, const char *domain, char *name, size_t namelen, char *value,
                       size_t valuelen);

#endif
