/*
 * server.h — the one public interface of server/: configuration, logging, TLS contexts,
 * authentication and the service gate, and the HTTP front end (libmicrohttpd) with its
 * virtual-host router that the HTTP engines (eas/, dav/, autodiscover/) register with.
 */
#ifndef POLARIS_SERVER_H
#define POLARIS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* ---------------------------------------------------------------------------------------
 * Configuration (INI). Unknown sections or keys are errors, so typos do not pass
 * silently.
 * ------------------------------------------------------------------------------------ */
#define CFG_ADDR_MAX 128
#define CFG_PATH_MAX 1024

struct config {
    /* [server] */
    char hostname[254]; /* this server's own name (TLS certificate, banners) */
    char web_base[254]; /* virtual hosts are <label>.<web_base> */
    char data_dir[CFG_PATH_MAX];
    char log_level[16];        /* debug | info | warn | error */
    int http_threads;          /* libmicrohttpd worker threads */
    int64_t max_request_bytes; /* largest HTTP request body accepted */
    /* [listen]: "host:port", empty = off */
    char http[CFG_ADDR_MAX], https[CFG_ADDR_MAX];
    char imap[CFG_ADDR_MAX], imaps[CFG_ADDR_MAX];
    char pop3[CFG_ADDR_MAX], pop3s[CFG_ADDR_MAX];
    char smtp[CFG_ADDR_MAX], submission[CFG_ADDR_MAX], submissions[CFG_ADDR_MAX];
    char smtp_alt[CFG_ADDR_MAX]; /* a second MX listener (port 26 where 25 is blocked) */
    /* [smtp] */
    int64_t smtp_max_message;     /* SIZE: 25 MiB unless set */
    int smtp_max_rcpts;           /* recipients per message */
    int smtp_rate_minute;         /* messages an account may send a minute (default 50) */
    int smtp_rate_hour;           /* and an hour (default 500) */
    char smarthost[CFG_ADDR_MAX]; /* host:port all outbound mail goes to; empty: MX lookup */
    char resolver[CFG_ADDR_MAX];  /* ip:port of the DNS server for MX; empty: the system's */
    int queue_lifetime;           /* seconds before an undeliverable message bounces (5 days) */
    char dkim_selector[64];       /* selector of new DKIM keys */
    int autoreply_days;           /* an auto-reply goes to one sender once per this many days */
    char smtp_postmaster[320];    /* where <postmaster> goes; empty: postmaster@hostname */
    /* [imap] [pop3] [smtp] timeout: seconds of client inactivity before a session is ended */
    int imap_timeout, pop3_timeout, smtp_timeout;
    /* [dav] */
    int64_t dav_max_resource; /* largest calendar object or vCard accepted (10 MiB) */
    /* [eas] */
    int eas_heartbeat_min; /* Ping/Sync HeartbeatInterval bounds, seconds (60, 3540) */
    int eas_heartbeat_max;
    int eas_window_max;              /* largest Sync WindowSize honoured (512) */
    int eas_ping_folders;            /* most folders one Ping may watch (300) */
    char eas_smime_ca[CFG_PATH_MAX]; /* extra trusted roots for ValidateCert (PEM file) */
    /* [autodiscover] */
    char ad_public_host[254]; /* host name clients are told for IMAP/POP/SMTP; empty: hostname */
    char ad_mx[254];          /* MX records customers publish: "PREF HOST[, PREF HOST...]"; empty:
                               * "10 <public host>" */
    char ad_spf[254];         /* the SPF TXT value suggested ("v=spf1 mx ~all") */
    char ad_dmarc[254];       /* the DMARC TXT value suggested ("v=DMARC1; p=none") */
    char ad_address[254];     /* IPs for autodiscover/autoconfig A/AAAA records ("IP[, IP...]");
                               * empty: CNAMEs to the domain's label host */
    char ad_webmail[254];     /* CNAME target of webmail.<domain>; empty: the label host */
    /* [tls] — empty cert/key: a self-signed pair is generated in data_dir/tls/ */
    char tls_cert[CFG_PATH_MAX], tls_key[CFG_PATH_MAX];
    /* [auth] */
    int auth_fail_max;    /* failures allowed per window before throttling */
    int auth_fail_window; /* seconds */
    int auth_cache_ttl;   /* seconds a verified password is remembered */
    int allow_plaintext;  /* logins without TLS: 0 no, 1 on loopback listeners, 2 yes */
    const char *path;     /* the file it was read from */
};

/* Fills defaults, then reads FILE. Returns 0, or -1 with err naming file, line and key. */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);
void config_defaults(struct config *cfg);
/* Splits "host:port" / "[v6]:port" / ":port". Returns 0 or -1 when malformed. */
int config_split_addr(const char *s, char *host, size_t hostlen, int *port);

/* ---------------------------------------------------------------------------------------
 * Logging: one line per event to stderr, "ts level subsystem: message". Never log
 * passwords, Authorization headers or message bodies.
 * ------------------------------------------------------------------------------------ */
enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };
void log_set_level(enum log_level lvl);
int log_level_parse(const char *s, enum log_level *out);
void log_msg(enum log_level lvl, const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define log_debug(sub, ...) log_msg(LOG_DEBUG, sub, __VA_ARGS__)
#define log_info(sub, ...)  log_msg(LOG_INFO, sub, __VA_ARGS__)
#define log_warn(sub, ...)  log_msg(LOG_WARN, sub, __VA_ARGS__)
#define log_error(sub, ...) log_msg(LOG_ERROR, sub, __VA_ARGS__)

/* ---------------------------------------------------------------------------------------
 * TLS: one OpenSSL setup (TLS 1.2 minimum) shared by the line protocols; the same PEM
 * files feed the HTTPS listener.
 * ------------------------------------------------------------------------------------ */
struct tls_ctx;
/* Makes sure cfg->tls_cert/tls_key name usable files: when empty, generates (once) a
 * self-signed RSA-2048 certificate for hostname, *.web_base and localhost under
 * data_dir/tls/ and points cfg at it. */
int tls_ensure_cert(struct config *cfg, char *err, size_t errlen);
struct tls_ctx *tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen);
void tls_ctx_free(struct tls_ctx *t);
/* The SSL_CTX* for line-protocol sessions (void* keeps OpenSSL out of this header). */
void *tls_ctx_ssl(struct tls_ctx *t);
/* Reads a whole file (PEM) into a malloc'd NUL-terminated buffer. */
char *tls_read_file(const char *path, size_t max, char *err, size_t errlen);

/* ---------------------------------------------------------------------------------------
 * Authentication and the gate
 * ------------------------------------------------------------------------------------ */
enum gate_service {
    SVC_IMAP = 0,
    SVC_POP3,
    SVC_SMTP,
    SVC_EAS,
    SVC_CALDAV,
    SVC_CARDDAV,
    SVC_NONE, /* no mailbox-type restriction (e.g. autodiscover) */
    SVC__COUNT
};
const char *gate_service_name(enum gate_service s);
/* May a mailbox of this type use this service? Consulted per request/login with the type
 * read from the directory at that moment, so `user set --type` takes effect at once. */
int gate_allows(enum store_acct_type type, enum gate_service svc);

enum auth_result {
    AUTH_OK = 0,
    AUTH_FAIL,      /* unknown user, wrong password, other tenant, malformed login */
    AUTH_THROTTLED, /* too many recent failures for this address or source IP */
    AUTH_DISABLED,  /* right password, account suspended */
    AUTH_ERROR,     /* store failure */
};

struct auth;
struct auth *auth_new(struct store *s, const struct config *cfg);
void auth_free(struct auth *a);

/* Resolves a login name to a full address. Accepted forms: "user@domain", "DOMAIN\user",
 * "DOMAIN\user@domain", "\user", and a bare "user"; the last three need `tenant` (the
 * domain the virtual host names), and a DOMAIN part that is a dotted name must equal it.
 * A full address on another tenant's host is refused. Returns 0 or -1. */
int auth_resolve_login(const char *login, const char *tenant, char *addr, size_t addrlen);

/* Verifies a login. tenant: domain named by the virtual host, or NULL (line protocols on
 * the generic host name). remote_ip: for throttling (may be NULL). On AUTH_OK, *acct is
 * the account as the directory has it now. Remembers recent successes (keyed by a
 * salted digest of login and password, invalidated when the stored hash changes) so
 * that per-request HTTP auth does not pay yescrypt each time. */
enum auth_result auth_verify(struct auth *a, const char *login, const char *password,
                             const char *tenant, const char *remote_ip, struct store_account *acct);
/* Constant-time equality of two byte strings of equal length. */
int auth_ct_equal(const void *a, const void *b, size_t n);

/* ---------------------------------------------------------------------------------------
 * HTTP front end
 * ------------------------------------------------------------------------------------ */
struct http_server;
struct http_req;

/* Why a route's handler is being called. */
enum http_phase {
    HTTP_PHASE_REQUEST = 0, /* the whole request has arrived */
    HTTP_PHASE_RESUMED,     /* a suspended request was resumed (event or timeout) */
};

/* What a handler returns. */
enum http_action {
    HTTP_RESPOND = 0, /* the response set on the request is sent */
    HTTP_SUSPEND,     /* keep the connection, free the worker; http_resume() later */
};

/* A handler fills the response with http_respond*() and returns HTTP_RESPOND, or calls
 * http_suspend() and returns HTTP_SUSPEND. It is called again with HTTP_PHASE_RESUMED
 * after http_resume() or the suspend timeout. */
typedef enum http_action (*http_handler_fn)(struct http_req *r, enum http_phase phase,
                                            void *engine_ctx);
/* Called once when the request is finished (sent, failed or the client went away), so
 * that the engine can unsubscribe and free per-request state. */
typedef void (*http_cleanup_fn)(struct http_req *r, void *engine_ctx);

#define HTTP_ROUTE_PREFIX   0x1 /* match path == p or path starting with p + "/" */
#define HTTP_ROUTE_NOCASE   0x2 /* case-insensitive path match */
#define HTTP_ROUTE_AUTH     0x4 /* Basic auth required before the handler runs */
#define HTTP_ROUTE_NOTENANT 0x8 /* may be served on a host naming no tenant */

struct http_route {
    const char *path;
    unsigned flags;
    enum gate_service service; /* with HTTP_ROUTE_AUTH: the gate checked (403 if denied) */
    http_handler_fn handler;   /* NULL: answers 501 (engine not built) */
    http_cleanup_fn cleanup;
    void *engine_ctx;
    const char *engine; /* name for logs */
};

struct http_config {
    struct store *store;
    struct auth *auth;
    const struct config *cfg;
};

struct http_server *http_server_new(const struct http_config *hc, char *err, size_t errlen);
/* Adds a route; later registrations of the same path replace earlier ones, so an engine
 * replaces the 501 placeholder registered by default for every path of the design. */
int http_server_route(struct http_server *h, const struct http_route *rt);
/* Starts the plain and/or TLS listeners ("host:port"; NULL or "" = off). */
int http_server_start(struct http_server *h, const char *plain_addr, const char *tls_addr,
                      const char *cert_pem_path, const char *key_pem_path, char *err,
                      size_t errlen);
/* Stops accepting, lets in-flight requests finish (up to grace_ms), ends suspended ones. */
void http_server_stop(struct http_server *h, int grace_ms);
void http_server_free(struct http_server *h);
/* Port actually bound (useful with port 0 in tests); tls = 1 for the TLS listener. */
int http_server_port(struct http_server *h, int tls);

/* Request accessors (valid until the cleanup callback). */
const char *http_req_method(const struct http_req *r);
const char *http_req_path(const struct http_req *r);                   /* decoded path, no query */
const char *http_req_query(const struct http_req *r, const char *key); /* NULL if absent */
const char *http_req_raw_query(const struct http_req *r);              /* after '?', "" if none */
const char *http_req_header(const struct http_req *r, const char *name);
const char *http_req_body(const struct http_req *r, size_t *len);
const char *http_req_remote_ip(const struct http_req *r);
int http_req_is_tls(const struct http_req *r);
/* The tenant the Host header named (NULL only on HTTP_ROUTE_NOTENANT routes). */
const struct store_domain *http_req_tenant(const struct http_req *r);
/* Which form of host matched: "label", "autodiscover", "autoconfig", "mail", "domain". */
const char *http_req_host_kind(const struct http_req *r);
const char *http_req_host(const struct http_req *r); /* Host header, lower-case, no port */
/* The authenticated account (HTTP_ROUTE_AUTH routes), else NULL. */
const struct store_account *http_req_account(const struct http_req *r);
struct store *http_req_store(const struct http_req *r);
/* Per-request engine state. */
void http_req_set_data(struct http_req *r, void *data);
void *http_req_data(const struct http_req *r);

/* Responses. The body is copied. Headers added before http_respond() are kept. */
int http_add_header(struct http_req *r, const char *name, const char *value);
int http_respond(struct http_req *r, int status, const char *ctype, const void *body, size_t len);
int http_respond_text(struct http_req *r, int status, const char *text);

/* Long polls: from a handler, http_suspend(r, timeout_ms) then return HTTP_SUSPEND. Any
 * thread may call http_resume(r) once (e.g. from a store notification); the handler is
 * then called with HTTP_PHASE_RESUMED. When timeout_ms passes first, the same happens.
 * http_resume on a request that is not suspended, or already resumed, does nothing. */
int http_suspend(struct http_req *r, int timeout_ms);
void http_resume(struct http_req *r);
/* A request tied to no connection, for engines' unit tests and fuzz targets: accessors
 * and responses work (headers are kept, the body copied), http_suspend fails with -1 and
 * http_resume does nothing; http_req_store is NULL. */
struct http_req *http_req_detached(const char *method, const char *path,
                                   const struct store_account *acct, const char *remote_ip);
void http_req_detached_free(struct http_req *r);
/* 1 when the last resume came from the timeout rather than http_resume(). */
int http_req_timed_out(const struct http_req *r);

/* ---------------------------------------------------------------------------------------
 * router: virtual hosts and path routes (server/router.c), used by the HTTP front end and
 * directly by its unit tests. Not thread-safe by themselves; http.c locks the table.
 * ------------------------------------------------------------------------------------ */
/* Normalises a Host header value into out: drops the port (also of "[v6]:port"; the
 * brackets stay), lower-cases and drops one trailing dot. Returns 0, or -1 when the value
 * is empty, too long or holds characters no host name has. */
int router_host_normalize(const char *host, char *out, size_t outlen);
/* Finds the tenant a normalised host names: "<label>.<web_base>" by label, else the host
 * as a domain, else with "autodiscover.", "autoconfig." or "mail." removed. Returns 0
 * with *out and *kind set ("label", "domain", "autodiscover", "autoconfig", "mail"),
 * STORE_ENOTFOUND, or another negative STORE_E* code when the store failed. */
int router_resolve_host(struct store *s, const char *web_base, const char *host,
                        struct store_domain *out, const char **kind);

struct router_table;
struct router_table *router_table_new(void);
void router_table_free(struct router_table *t);
/* Copies the route (and its path); a route with the same path replaces the old one. */
int router_table_add(struct router_table *t, const struct http_route *rt);
/* The longest route matching path, or NULL. Valid until the table changes. */
const struct http_route *router_match(const struct router_table *t, const char *path);

/* ---------------------------------------------------------------------------------------
 * Line-protocol connections (net.c): one thread per session, blocking-style calls over a
 * non-blocking socket with deadlines. Used by IMAP, POP3 and SMTP.
 * ------------------------------------------------------------------------------------ */
#include <sys/types.h>

#define NET_EOF       (-1) /* the client closed the connection */
#define NET_ETOOLONG  (-2) /* line over the limit: it was discarded, the session may go on */
#define NET_ETIMEOUT  (-3)
#define NET_ESHUTDOWN (-4) /* the server is stopping: say goodbye and return */
#define NET_EIO       (-5)
#define NET_READABLE  1 /* net_wait: input is waiting */
#define NET_WOKEN     2 /* net_wait: the wake fd fired */

struct net_conn;
struct net_listener;
typedef void (*net_session_fn)(struct net_conn *c, void *ctx);

struct net_listen_opts {
    const char *name;    /* for logs: "imap", "imaps", "smtp"... */
    const char *addr;    /* "host:port" (port 0: any free one) */
    struct tls_ctx *tls; /* needed for implicit_tls or starttls */
    int implicit_tls;    /* handshake before the session starts (993, 995, 465) */
    int starttls;        /* the session may call net_starttls */
    int max_sessions;    /* 0: 10000 */
    net_session_fn fn;   /* runs the whole session on the connection's thread */
    void *ctx;
};

struct net_listener *net_listen(const struct net_listen_opts *o, char *err, size_t errlen);
int net_listener_port(const struct net_listener *l);
int net_listener_active(struct net_listener *l);
/* Stops accepting, wakes every session (their reads and waits return NET_ESHUTDOWN), waits
 * up to grace_ms for them to end. Returns how many were still running. */
int net_listener_stop(struct net_listener *l, int grace_ms);

/* Reads one line including its "\n" (and "\r" before it, if any) into buf, NUL-terminated.
 * Returns its length, or NET_ETOOLONG when the line does not fit in max-1 bytes (the line
 * is skipped), NET_EOF, NET_ETIMEOUT, NET_ESHUTDOWN, NET_EIO. timeout_ms -1 = none. */
ssize_t net_read_line(struct net_conn *c, char *buf, size_t max, int timeout_ms);
/* Reads exactly n bytes (literals, BDAT chunks). */
ssize_t net_read(struct net_conn *c, void *buf, size_t n, int timeout_ms);
/* Bytes already received and not yet read. */
size_t net_buffered(const struct net_conn *c);
/* Waits until input arrives (NET_READABLE), wake_fd becomes readable (NET_WOKEN; -1 for
 * none), or the timeout / shutdown. */
int net_wait(struct net_conn *c, int wake_fd, int timeout_ms);
/* Buffered output; net_flush sends it. After a failed write the session should end. */
int net_write(struct net_conn *c, const void *data, size_t len);
int net_printf(struct net_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int net_flush(struct net_conn *c);
/* Upgrades to TLS, discarding any input the client pipelined before it. */
int net_starttls(struct net_conn *c);
int net_conn_is_tls(const struct net_conn *c);
int net_conn_can_starttls(const struct net_conn *c);
const char *net_conn_remote_ip(const struct net_conn *c);
int net_conn_is_loopback(const struct net_conn *c);
int net_conn_local_port(const struct net_conn *c);

/* ---------------------------------------------------------------------------------------
 * cli: the admin command line (server/cli.c, linked into the polaris binary only)
 * ------------------------------------------------------------------------------------ */
/* Runs `polaris NOUN VERB ...` (argv[0] is NOUN) with the global options main() already
 * read; -c/--config and --json may also follow the command. Returns the exit status:
 * 0 done, 1 the store refused or failed, 2 wrong command line. */
int cli_run(int argc, char **argv, const char *config_path, int json);
/* The program's usage (every command), on stdout or stderr. */
void cli_usage(int to_stderr);

/* ---------------------------------------------------------------------------------------
 * base64 (b64.c)
 * ------------------------------------------------------------------------------------ */
/* Decodes into out (at most outmax bytes); returns the length or -1. flags 0 is strict:
 * whole quanta, padding only at the end, nothing else (credentials). B64_PAD_OPTIONAL:
 * padding may be missing (RFC 2047 encoded words). B64_SKIP_JUNK: characters outside the
 * alphabet are skipped and the first '=' ends the data (MIME bodies). */
#define B64_PAD_OPTIONAL 0x1u
#define B64_SKIP_JUNK    0x2u
ssize_t b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outmax, unsigned flags);
/* Encodes with padding, NUL-terminated; returns the length, 0 if outmax is too small. */
size_t b64_encode(const unsigned char *in, size_t len, char *out, size_t outmax);

/* ---------------------------------------------------------------------------------------
 * growable text buffer (buf.c)
 * ------------------------------------------------------------------------------------ */
/* A failed allocation sets oom and later appends do nothing, so writers check once at the
 * end. p is NUL-terminated whenever it is not NULL. Zero-initialise; buf_free() frees. */
struct buf {
    char *p;
    size_t len, cap;
    int oom;
};
/* Room for n more bytes and the NUL; -1 (and oom) when it cannot be had. */
int buf_reserve(struct buf *b, size_t n);
void buf_put(struct buf *b, const void *s, size_t n);
void buf_putc(struct buf *b, char c);
void buf_puts(struct buf *b, const char *s);
void buf_putu(struct buf *b, uint64_t v);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(struct buf *b);

#endif
