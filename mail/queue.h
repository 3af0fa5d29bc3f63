/*
 * queue.h — the inside of the outbound queue, shared by its three files and the unit
 * tests: the per-message state (the envelope file), the retry schedule, RFC 3464
 * reports (queue_dsn.c) and the SMTP client with its MX lookup (queue_smtp.c). queue.c
 * holds the disk layout, the delivery threads and mail.h's queue_* functions.
 */
#ifndef POLARIS_QUEUE_H
#define POLARIS_QUEUE_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "mail/mail.h"
#include "mail/mime.h"

#define QUEUE_ID_MAX       40
#define QUEUE_ADDR_MAX     320
#define QUEUE_DIAG_MAX     512
#define QUEUE_DELAY_NOTICE (4 * 3600) /* a delay notice once a message waited this long */

/* Where a recipient stands. Final: sent and bounced (reported, or nobody to tell).
 * Relayed: accepted by a next hop that does not speak DSN while the sender asked for
 * NOTIFY=SUCCESS; the "relayed" report is still to be sent (then it is sent). */
enum queue_rstate { QR_QUEUED = 0, QR_SENT, QR_FAILED, QR_BOUNCED, QR_RELAYED };

#define QUEUE_ORCPT_MAX 520 /* "rfc822;" and an address of up to SMTP_ORCPT_MAX octets */

struct queue_rcpt {
    char addr[QUEUE_ADDR_MAX];
    enum queue_rstate state;
    char status[16];             /* RFC 3463 status of the last outcome, "" before any */
    char remote[256];            /* the host that gave it, "" when none answered */
    char diag[QUEUE_DIAG_MAX];   /* "550 5.1.1 no such user" or a local reason */
    unsigned notify;             /* DSN NOTIFY (DELIVER_NOTIFY_*), 0: not given */
    char orcpt[QUEUE_ORCPT_MAX]; /* DSN ORCPT "type;address" (decoded), "" when none */
    const char *action;          /* reports made outside the queue: "delivered", "expanded" */
};

/* The envelope and state file of one message (data_dir/queue/<id>.env). */
struct queue_env {
    char id[QUEUE_ID_MAX];
    char from[QUEUE_ADDR_MAX]; /* "" is the null sender */
    char envid[128];           /* DSN ENVID, "" when none */
    char ret[8];               /* DSN RET: "FULL", "HDRS" or "" */
    int64_t arrival, next, last_attempt;
    int attempts;
    int delay_sent; /* the delay notice went out */
    size_t n;
    struct queue_rcpt *r;
};

/* Seconds to wait after the attempts-th failed attempt: 5m, 15m, 30m, 1h, 2h, then 4h. */
int queue_backoff(int attempts);
const char *queue_rstate_name(enum queue_rstate s);
/* Reads an envelope file; e->r is malloc'd (queue_env_free). 0, or -1 when malformed. */
int queue_env_parse(const char *text, size_t len, struct queue_env *e);
void queue_env_format(const struct queue_env *e, struct buf *out);
void queue_env_free(struct queue_env *e);

/* The kinds of report queue_dsn makes. */
#define QUEUE_DSN_FAILED  0 /* failed recipients that asked for it (NOTIFY absent or FAILURE) */
#define QUEUE_DSN_DELAYED 1 /* queued recipients that asked for it (NOTIFY absent or DELAY) */
#define QUEUE_DSN_SUCCESS 2 /* relayed recipients, and those with an action set */

/* Whether recipient r belongs in a report of this kind (its state and its NOTIFY). */
int queue_dsn_wants(const struct queue_rcpt *r, int kind);

/* An RFC 3464 report from MAILER-DAEMON@hostname to e->from about the recipients that
 * queue_dsn_wants: failed (Action: failed, the original returned whole unless RET=HDRS),
 * delayed (Action: delayed, Will-Retry-Until) or success (Action: relayed, or the
 * recipient's action), the last two with the header only. Original-Recipient from
 * ORCPT, Original-Envelope-Id from ENVID. Appends the message to out. */
void queue_dsn(const struct queue_env *e, int kind, const char *hostname, int64_t retry_until,
               const char *msg, size_t len, time_t now, struct buf *out);
/* RFC 3461 §4: NOTIFY as its keyword list ("SUCCESS,FAILURE"), "" for 0. */
void queue_notify_format(unsigned notify, char *out, size_t outlen);
/* RFC 3461 §4: xtext-encodes in into out (NUL-terminated, cut to fit). */
void queue_xtext(const char *in, char *out, size_t outlen);
/* RFC 5322 date in UTC. */
void queue_date(time_t t, char *out, size_t outlen);

/* The SMTP client: what it needs from the queue, so tests can drive it alone. */
struct queue_client {
    const struct config *cfg;
    void *ssl_ctx;         /* SSL_CTX* for opportunistic STARTTLS; NULL: no TLS */
    pthread_mutex_t *lock; /* guards *active_fd */
    int *active_fd;        /* the open connection, so that queue_close can cut it */
    const volatile int *stop;
};
/* One delivery attempt for every recipient of e still QR_QUEUED: grouped by domain (all
 * together to a smarthost), each group to its MX hosts in order. Sets each recipient's
 * state (QR_SENT, QR_FAILED on 5xx / permanent DNS errors; QR_QUEUED with the reason on
 * temporary ones), status, remote and diag. */
void queue_smtp_deliver(struct queue_client *c, struct queue_env *e, const char *msg, size_t len);
/* A client SSL_CTX that does not verify (STARTTLS to MX hosts is opportunistic). */
void *queue_smtp_ssl_ctx(void);

#endif
