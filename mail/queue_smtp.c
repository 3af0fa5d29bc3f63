/*
 * queue_smtp.c — the outbound queue's SMTP client (RFC 5321) and its MX lookup.
 *
 * Routing (RFC 5321 §5.1): a configured smarthost takes everything; otherwise the MX
 * records of the recipient domain in preference order, the domain's own A/AAAA when it
 * has none, and a permanent failure for a null MX (RFC 7505) or a domain that does not
 * exist. DNS goes through res_nquery with the configured resolver (ip:port) when set.
 *
 * A session: greeting, EHLO (HELO when refused), STARTTLS whenever offered — opportunistic,
 * so the certificate is not verified, and a failed handshake is retried once in plain text
 * — then MAIL with SIZE/BODY/SMTPUTF8/RET/ENVID as the server allows, RCPT per recipient,
 * DATA. Commands are pipelined when the server offers PIPELINING. Each recipient gets its
 * own outcome; a host that fails before giving one (no connection, greeting or MAIL 4xx,
 * dropped connection) passes the remaining recipients to the next host.
 *
 * Sockets are blocking with SO_RCVTIMEO/SO_SNDTIMEO (RFC 5321 §4.5.3.2 timeouts), and the
 * connection's fd is published to the queue so that queue_close can shut it down.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "mail/queue.h"

#define QS_MAX_HOSTS      16
#define QS_MAX_ADDRS      8
#define QS_CONNECT_MS     30000
#define QS_REPLY_MS       300000 /* greeting, EHLO, MAIL, RCPT, DATA: 5 minutes */
#define QS_FINAL_MS       600000 /* the reply to the final dot: 10 minutes */
#define QS_LINE_MAX       1024
#define QS_REPLY_TEXT_MAX 2048

/* ---------------------------------------------------------------------------------------
 * DNS
 * ------------------------------------------------------------------------------------ */
enum qs_dns { QS_DNS_OK = 0, QS_DNS_NXDOMAIN, QS_DNS_NODATA, QS_DNS_TEMP, QS_DNS_NULLMX };

struct qs_host {
    char name[NS_MAXDNAME];
    int pref, port;
};

static int qs_res_init(const struct config *cfg, res_state st)
{
    char host[64];
    int port = 53;

    memset(st, 0, sizeof(*st));
    if (res_ninit(st) != 0)
        return -1;
    st->retrans = 3;
    st->retry = 2;
    if (!cfg->resolver[0])
        return 0;
    /* The configured server replaces the system's; IPv4 only (nsaddr_list). */
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (config_split_addr(cfg->resolver, host, sizeof(host), &port) != 0 ||
        inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        log_warn("queue", "resolver %s is not an IPv4 ip:port; using the system's",
                 cfg->resolver);
        return 0;
    }
    sa.sin_port = htons((uint16_t)(port > 0 ? port : 53));
    st->nsaddr_list[0] = sa;
    st->nscount = 1;
    return 0;
}

static enum qs_dns qs_query(res_state st, const char *name, int type, unsigned char *ans,
                            size_t anslen, ns_msg *msg)
{
    int n = res_nquery(st, name, ns_c_in, type, ans, (int)anslen);

    if (n < 0) {
        switch (st->res_h_errno) {
        case HOST_NOT_FOUND:
            return QS_DNS_NXDOMAIN;
        case NO_DATA:
            return QS_DNS_NODATA;
        default:
            return QS_DNS_TEMP;
        }
    }
    if ((size_t)n > anslen)
        n = (int)anslen; /* truncated: parse what came */
    return ns_initparse(ans, n, msg) == 0 ? QS_DNS_OK : QS_DNS_TEMP;
}

static int qs_host_cmp(const void *a, const void *b)
{
    const struct qs_host *x = a, *y = b;
    return x->pref - y->pref;
}

/* The MX hosts of domain in preference order; NODATA means: use the domain itself. */
static enum qs_dns qs_mx(res_state st, const char *domain, struct qs_host *hosts, size_t *n)
{
    unsigned char ans[NS_PACKETSZ * 8];
    ns_msg msg;
    ns_rr rr;
    enum qs_dns rc = qs_query(st, domain, ns_t_mx, ans, sizeof(ans), &msg);

    *n = 0;
    if (rc != QS_DNS_OK)
        return rc;
    for (int i = 0; i < ns_msg_count(msg, ns_s_an) && *n < QS_MAX_HOSTS; i++) {
        if (ns_parserr(&msg, ns_s_an, i, &rr) != 0 || ns_rr_type(rr) != ns_t_mx ||
            ns_rr_rdlen(rr) < 3)
            continue;
        struct qs_host *h = &hosts[*n];
        h->pref = ns_get16(ns_rr_rdata(rr));
        h->port = 25;
        if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), ns_rr_rdata(rr) + 2, h->name,
                      sizeof(h->name)) < 0)
            continue;
        (*n)++;
    }
    if (*n == 0)
        return QS_DNS_NODATA;
    /* RFC 7505: one MX whose exchange is the root says the domain takes no mail. */
    if (*n == 1 && (!hosts[0].name[0] || strcmp(hosts[0].name, ".") == 0))
        return QS_DNS_NULLMX;
    qsort(hosts, *n, sizeof(*hosts), qs_host_cmp);
    return QS_DNS_OK;
}

static void qs_add_addr(struct sockaddr_storage *out, size_t *n, int family, const void *addr,
                        int port)
{
    struct sockaddr_storage *ss = &out[*n];

    if (*n >= QS_MAX_ADDRS)
        return;
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        memcpy(&sin->sin_addr, addr, 4);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        memcpy(&sin6->sin6_addr, addr, 16);
    }
    (*n)++;
}

/* A and AAAA records of name through the resolver. */
static enum qs_dns qs_addrs_dns(res_state st, const char *name, int port,
                                struct sockaddr_storage *out, size_t *n)
{
    static const int types[] = {ns_t_a, ns_t_aaaa};
    unsigned char ans[NS_PACKETSZ * 4];
    enum qs_dns worst = QS_DNS_NODATA;
    ns_msg msg;
    ns_rr rr;

    for (size_t t = 0; t < 2; t++) {
        enum qs_dns rc = qs_query(st, name, types[t], ans, sizeof(ans), &msg);
        if (rc != QS_DNS_OK) {
            if (rc == QS_DNS_TEMP || (rc == QS_DNS_NXDOMAIN && worst != QS_DNS_TEMP))
                worst = rc;
            continue;
        }
        for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
            if (ns_parserr(&msg, ns_s_an, i, &rr) != 0 || ns_rr_type(rr) != types[t])
                continue;
            if (ns_rr_rdlen(rr) == (t == 0 ? 4 : 16))
                qs_add_addr(out, n, t == 0 ? AF_INET : AF_INET6, ns_rr_rdata(rr), port);
        }
    }
    return *n > 0 ? QS_DNS_OK : worst;
}

/* The addresses of a host: an IP literal as is, else the configured resolver, else the
 * system's (getaddrinfo, so /etc/hosts works for smarthosts). */
static enum qs_dns qs_addrs(const struct config *cfg, res_state st, const char *name, int port,
                            struct sockaddr_storage *out, size_t *n)
{
    unsigned char a[16];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    char portstr[16];
    int rc;

    *n = 0;
    if (inet_pton(AF_INET, name, a) == 1) {
        qs_add_addr(out, n, AF_INET, a, port);
        return QS_DNS_OK;
    }
    if (inet_pton(AF_INET6, name, a) == 1) {
        qs_add_addr(out, n, AF_INET6, a, port);
        return QS_DNS_OK;
    }
    if (cfg->resolver[0])
        return qs_addrs_dns(st, name, port, out, n);
    snprintf(portstr, sizeof(portstr), "%d", port);
    rc = getaddrinfo(name, portstr, &hints, &res);
    if (rc != 0)
        return rc == EAI_NONAME ? QS_DNS_NXDOMAIN : QS_DNS_TEMP;
    for (struct addrinfo *ai = res; ai && *n < QS_MAX_ADDRS; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        memcpy(&out[*n], ai->ai_addr, ai->ai_addrlen);
        (*n)++;
    }
    freeaddrinfo(res);
    return *n > 0 ? QS_DNS_OK : QS_DNS_NODATA;
}

/* ---------------------------------------------------------------------------------------
 * The connection
 * ------------------------------------------------------------------------------------ */
struct qs_conn {
    struct queue_client *cl;
    int fd;
    SSL *ssl;
    char host[NS_MAXDNAME]; /* for diagnostics and SNI */
    char in[8192];
    size_t ilen, ipos;
    char out[16384];
    size_t olen;
    int broken;
    char why[256]; /* what broke it */
};

struct qs_reply {
    int code;
    char first[QS_LINE_MAX];       /* "250 2.1.0 Ok" — the first line, for diagnostics */
    char text[QS_REPLY_TEXT_MAX];  /* every line's text (EHLO keywords), '\n'-separated */
};

static void qs_publish_fd(struct qs_conn *c, int fd)
{
    if (!c->cl->lock)
        return;
    pthread_mutex_lock(c->cl->lock);
    *c->cl->active_fd = fd;
    pthread_mutex_unlock(c->cl->lock);
}

static void qs_close(struct qs_conn *c)
{
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        qs_publish_fd(c, -1);
        close(c->fd);
        c->fd = -1;
    }
}

static void qs_fail(struct qs_conn *c, const char *fmt, const char *arg)
{
    if (!c->broken)
        snprintf(c->why, sizeof(c->why), fmt, arg);
    c->broken = 1;
}

static void qs_timeouts(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int qs_connect(struct qs_conn *c, const struct sockaddr_storage *ss)
{
    socklen_t len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                             : sizeof(struct sockaddr_in6);
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), err = 0;
    socklen_t elen = sizeof(err);
    struct pollfd p = {.fd = fd, .events = POLLOUT};

    if (fd < 0) {
        qs_fail(c, "socket: %s", strerror(errno));
        return -1;
    }
    c->fd = fd;
    qs_publish_fd(c, fd);
    if (connect(fd, (const struct sockaddr *)ss, len) != 0) {
        if (errno != EINPROGRESS) {
            err = errno;
        } else if (poll(&p, 1, QS_CONNECT_MS) != 1) {
            err = ETIMEDOUT;
        } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) {
            err = errno;
        }
    }
    if (err) {
        qs_fail(c, "connect: %s", strerror(err));
        return -1;
    }
    int flags = 0;
    ioctl_blocking:
    (void)flags;
    {
        int on = 0;
        if (ioctl(fd, FIONBIO, &on) != 0) {
            qs_fail(c, "socket: %s", strerror(errno));
            return -1;
        }
    }
    return 0;
}
