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
 * DSN: a server that offers it gets NOTIFY and ORCPT per recipient and RET/ENVID (xtext)
 * and reports on its own; one that does not leaves "relayed" to us (QR_RELAYED) for the
 * recipients that asked for NOTIFY=SUCCESS.
 *
 * Loops (RFC 5321 §5.1): an MX host that is this server — our host name, an address and
 * port of one of our SMTP listeners, or a greeting/EHLO naming us — is never delivered to:
 * with no more preferred host the recipients fail with 5.4.6, otherwise only the more
 * preferred hosts are tried.
 *
 * Sockets are blocking with SO_RCVTIMEO/SO_SNDTIMEO (RFC 5321 §4.5.3.2 timeouts), and the
 * connection's fd is published to the queue so that queue_close can shut it down.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "mail/mail.h"
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
    int smarthost; /* configured, not found in DNS: its name may be a local alias */
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
        log_warn("queue", "resolver %s is not an IPv4 ip:port; using the system's", cfg->resolver);
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
        h->smarthost = 0;
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
    static const ns_type types[] = {ns_t_a, ns_t_aaaa};
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
 * Loops (RFC 5321 §5.1): an MX that is this server
 * ------------------------------------------------------------------------------------ */

/* Is name our own host name? Compared without a final dot, in any case. */
static int qs_self_name(const struct config *cfg, const char *name)
{
    size_t n = strlen(name), h = strlen(cfg->hostname);

    if (n && name[n - 1] == '.')
        n--;
    return n == h && n > 0 && strncasecmp(name, cfg->hostname, n) == 0;
}

/* Is the address one of this machine's (an interface address or loopback)? */
static int qs_local_ip(const struct sockaddr_storage *ss)
{
    struct ifaddrs *ifa = NULL;
    int found = 0;

    if (ss->ss_family == AF_INET &&
        (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127)
        return 1;
    if (ss->ss_family == AF_INET6 &&
        IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr))
        return 1;
    if (getifaddrs(&ifa) != 0)
        return 0;
    for (struct ifaddrs *i = ifa; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != ss->ss_family)
            continue;
        if (ss->ss_family == AF_INET)
            found = memcmp(&((struct sockaddr_in *)i->ifa_addr)->sin_addr,
                           &((const struct sockaddr_in *)ss)->sin_addr, 4) == 0;
        else
            found = memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr,
                           &((const struct sockaddr_in6 *)ss)->sin6_addr, 16) == 0;
    }
    freeifaddrs(ifa);
    return found;
}

/* Does ss (address and port) reach one of our own SMTP listeners? */
static int qs_self_addr(const struct config *cfg, const struct sockaddr_storage *ss)
{
    const char *listeners[] = {cfg->smtp, cfg->smtp_alt, cfg->submission, cfg->submissions};
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
    int port = ntohs(ss->ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);

    for (size_t i = 0; i < sizeof(listeners) / sizeof(listeners[0]); i++) {
        char host[64];
        unsigned char a[16];
        int lport = 0;
        if (!listeners[i][0] || config_split_addr(listeners[i], host, sizeof(host), &lport) != 0 ||
            lport != port)
            continue;
        if (!host[0] || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ||
            strcmp(host, "*") == 0) {
            if (qs_local_ip(ss))
                return 1;
        } else if (ss->ss_family == AF_INET && inet_pton(AF_INET, host, a) == 1) {
            if (memcmp(a, &sin->sin_addr, 4) == 0)
                return 1;
        } else if (ss->ss_family == AF_INET6 && inet_pton(AF_INET6, host, a) == 1) {
            if (memcmp(a, &sin6->sin6_addr, 16) == 0)
                return 1;
        } else if (strcasecmp(host, "localhost") == 0 && qs_local_ip(ss)) {
            return 1;
        }
    }
    return 0;
}

/* A greeting or EHLO reply naming us. Only for a host name with a dot: "localhost" or a
 * bare name is not unique, many other servers call themselves the same. */
static int qs_self_banner(const struct config *cfg, const char *text)
{
    size_t n = strcspn(text, " \n");
    char name[256];

    if (!strchr(cfg->hostname, '.') || n == 0 || n >= sizeof(name))
        return 0;
    memcpy(name, text, n);
    name[n] = '\0';
    return qs_self_name(cfg, name);
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
    char first[QS_LINE_MAX];      /* "250 2.1.0 Ok" — the first line, for diagnostics */
    char text[QS_REPLY_TEXT_MAX]; /* every line's text (EHLO keywords), '\n'-separated */
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

static void qs_fail(struct qs_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Marks the connection broken; the first reason is the one kept. */
static void qs_fail(struct qs_conn *c, const char *fmt, ...)
{
    va_list ap;

    if (!c->broken) {
        va_start(ap, fmt);
        vsnprintf(c->why, sizeof(c->why), fmt, ap);
        va_end(ap);
    }
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
    socklen_t len =
        ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
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
        if (errno != EINPROGRESS)
            err = errno;
        else if (poll(&p, 1, QS_CONNECT_MS) != 1)
            err = ETIMEDOUT;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
            err = errno;
    }
    if (!err && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
        err = errno;
    if (err) {
        qs_fail(c, "connect: %s", strerror(err));
        return -1;
    }
    return 0;
}

static int qs_flush(struct qs_conn *c)
{
    size_t off = 0;

    if (c->broken)
        return -1;
    qs_timeouts(c->fd, QS_REPLY_MS);
    while (off < c->olen) {
        ssize_t n = c->ssl ? SSL_write(c->ssl, c->out + off, (int)(c->olen - off))
                           : send(c->fd, c->out + off, c->olen - off, MSG_NOSIGNAL);
        if (n <= 0) {
            qs_fail(c, "write: %s", n < 0 && !c->ssl ? strerror(errno) : "connection lost");
            return -1;
        }
        off += (size_t)n;
    }
    c->olen = 0;
    return 0;
}

static int qs_write(struct qs_conn *c, const char *data, size_t len)
{
    while (len > 0 && !c->broken) {
        size_t room = sizeof(c->out) - c->olen, n = len < room ? len : room;
        memcpy(c->out + c->olen, data, n);
        c->olen += n;
        data += n;
        len -= n;
        if (c->olen == sizeof(c->out))
            qs_flush(c);
    }
    return c->broken ? -1 : 0;
}

static int qs_cmd(struct qs_conn *c, const char *line)
{
    qs_write(c, line, strlen(line));
    return qs_write(c, "\r\n", 2);
}

/* One line without its CRLF; overlong lines are cut. */
static int qs_read_line(struct qs_conn *c, char *line, size_t max, int timeout_ms)
{
    size_t n = 0;

    qs_timeouts(c->fd, timeout_ms);
    for (;;) {
        if (c->ipos == c->ilen) {
            ssize_t r = c->ssl ? SSL_read(c->ssl, c->in, (int)sizeof(c->in))
                               : recv(c->fd, c->in, sizeof(c->in), 0);
            if (r <= 0) {
                qs_fail(c, "%s",
                        r == 0 ? "connection closed by the server"
                               : "no answer from the server (timeout or reset)");
                return -1;
            }
            c->ilen = (size_t)r;
            c->ipos = 0;
        }
        char ch = c->in[c->ipos++];
        if (ch == '\n')
            break;
        if (ch != '\r' && n + 1 < max)
            line[n++] = ch;
    }
    line[n] = '\0';
    return 0;
}

/* A whole (possibly multi-line) reply. */
static int qs_reply(struct qs_conn *c, struct qs_reply *r, int timeout_ms)
{
    char line[QS_LINE_MAX];
    size_t tlen = 0;

    r->code = 0;
    r->first[0] = r->text[0] = '\0';
    if (qs_flush(c) != 0)
        return -1;
    for (;;) {
        if (qs_read_line(c, line, sizeof(line), timeout_ms) != 0)
            return -1;
        if (strlen(line) < 3 || !isdigit((unsigned char)line[0]) ||
            !isdigit((unsigned char)line[1]) || !isdigit((unsigned char)line[2])) {
            qs_fail(c, "malformed reply: %.100s", line);
            return -1;
        }
        if (!r->first[0]) {
            r->code = atoi(line);
            snprintf(r->first, sizeof(r->first), "%s", line);
        }
        int n = snprintf(r->text + tlen, sizeof(r->text) - tlen, "%s\n", line[3] ? line + 4 : "");
        if (n > 0 && tlen + (size_t)n < sizeof(r->text))
            tlen += (size_t)n;
        if (line[3] != '-')
            return 0;
    }
}

/* ---------------------------------------------------------------------------------------
 * Outcomes
 * ------------------------------------------------------------------------------------ */

/* Records a reply as the recipient's outcome: 2xx sent, 5xx failed, else still queued. */
static void qs_outcome(struct queue_rcpt *r, const struct qs_conn *c, const struct qs_reply *rep)
{
    const char *t = rep->first + (strlen(rep->first) > 4 ? 4 : strlen(rep->first));
    int cls = rep->code / 100;

    r->state = cls == 2 ? QR_SENT : cls == 5 ? QR_FAILED : QR_QUEUED;
    /* The enhanced code when the server gave one (RFC 3463), else the class's default. */
    if ((t[0] == '2' || t[0] == '4' || t[0] == '5') && t[1] == '.' && isdigit((unsigned char)t[2]))
        snprintf(r->status, sizeof(r->status), "%.*s", (int)strcspn(t, " "), t);
    else
        snprintf(r->status, sizeof(r->status), "%d.0.0", cls == 2 || cls == 5 ? cls : 4);
    snprintf(r->remote, sizeof(r->remote), "%.255s", c->host);
    /* A remote reply longer than the field is cut: the field says so in its size. */
    snprintf(r->diag, sizeof(r->diag), "%.*s", (int)sizeof(r->diag) - 1, rep->first);
}

static void qs_local_outcome(struct queue_rcpt *r, enum queue_rstate st, const char *status,
                             const char *host, const char *why)
{
    r->state = st;
    snprintf(r->status, sizeof(r->status), "%s", status);
    snprintf(r->remote, sizeof(r->remote), "%.255s", host ? host : "");
    snprintf(r->diag, sizeof(r->diag), "%s", why);
}

/* ---------------------------------------------------------------------------------------
 * A session with one server
 * ------------------------------------------------------------------------------------ */
struct qs_ext {
    int esmtp, starttls, pipelining, eightbit, smtputf8, dsn;
    int self;     /* the EHLO reply gave our own name */
    int64_t size; /* 0: not announced or no limit */
};

struct qs_job {
    struct queue_env *e;
    const char *msg;
    size_t len;
    size_t *idx; /* recipients of this group */
    size_t n;
    unsigned char *settled; /* per group member: has an outcome from this attempt */
};

static void qs_parse_ehlo(const struct qs_reply *r, struct qs_ext *x)
{
    const char *p = r->text;

    memset(x, 0, sizeof(*x));
    x->esmtp = 1;
    for (p = strchr(p, '\n'); p && p[1]; p = strchr(p + 1, '\n')) { /* skip the greeting line */
        const char *kw = p + 1;
        size_t n = strcspn(kw, " \n");
        if (n == 8 && strncasecmp(kw, "STARTTLS", 8) == 0)
            x->starttls = 1;
        else if (n == 10 && strncasecmp(kw, "PIPELINING", 10) == 0)
            x->pipelining = 1;
        else if (n == 8 && strncasecmp(kw, "8BITMIME", 8) == 0)
            x->eightbit = 1;
        else if (n == 8 && strncasecmp(kw, "SMTPUTF8", 8) == 0)
            x->smtputf8 = 1;
        else if (n == 3 && strncasecmp(kw, "DSN", 3) == 0)
            x->dsn = 1;
        else if (n == 4 && strncasecmp(kw, "SIZE", 4) == 0 && kw[4] == ' ')
            x->size = strtoll(kw + 5, NULL, 10);
    }
}

/* EHLO, falling back to HELO when the server does not know it. 0 or -1. */
static int qs_hello(struct qs_conn *c, struct qs_ext *x, const char *helo)
{
    char line[300];
    struct qs_reply r;

    snprintf(line, sizeof(line), "EHLO %s", helo);
    if (qs_cmd(c, line) != 0 || qs_reply(c, &r, QS_REPLY_MS) != 0)
        return -1;
    if (r.code == 250) {
        qs_parse_ehlo(&r, x);
        x->self = qs_self_banner(c->cl->cfg, r.text);
        return 0;
    }
    memset(x, 0, sizeof(*x));
    snprintf(line, sizeof(line), "HELO %s", helo);
    if (qs_cmd(c, line) != 0 || qs_reply(c, &r, QS_REPLY_MS) != 0)
        return -1;
    if (r.code != 250) {
        qs_fail(c, "HELO refused: %s", r.first);
        return -1;
    }
    return 0;
}

/* STARTTLS and the handshake; -2 when the handshake failed (retry in plain text). */
static int qs_starttls(struct qs_conn *c)
{
    struct qs_reply r;

    if (qs_cmd(c, "STARTTLS") != 0 || qs_reply(c, &r, QS_REPLY_MS) != 0)
        return -1;
    if (r.code != 220)
        return 0;          /* refused: go on in plain text */
    c->ipos = c->ilen = 0; /* nothing sent before the handshake counts */
    if (!(c->ssl = SSL_new(c->cl->ssl_ctx)) || SSL_set_fd(c->ssl, c->fd) != 1) {
        qs_fail(c, "%s", "TLS setup failed");
        return -2;
    }
    if (!isdigit((unsigned char)c->host[0]) && !strchr(c->host, ':'))
        SSL_set_tlsext_host_name(c->ssl, c->host);
    qs_timeouts(c->fd, QS_REPLY_MS);
    if (SSL_connect(c->ssl) != 1) {
        ERR_clear_error();
        qs_fail(c, "%s", "TLS handshake failed");
        return -2;
    }
    return 1;
}

static int qs_has_8bit(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 1;
    return 0;
}

static void qs_mail_cmd(const struct qs_job *j, const struct qs_ext *x, char *line, size_t max)
{
    const struct queue_env *e = j->e;
    size_t n = (size_t)snprintf(line, max, "MAIL FROM:<%s>", e->from);

    if (x->size && n < max)
        n += (size_t)snprintf(line + n, max - n, " SIZE=%zu", j->len);
    if (x->eightbit && qs_has_8bit(j->msg, j->len) && n < max)
        n += (size_t)snprintf(line + n, max - n, " BODY=8BITMIME");
    if (x->smtputf8 && qs_has_8bit(e->from, strlen(e->from)) && n < max)
        n += (size_t)snprintf(line + n, max - n, " SMTPUTF8");
    if (x->dsn && e->ret[0] && n < max)
        n += (size_t)snprintf(line + n, max - n, " RET=%s", e->ret);
    if (x->dsn && e->envid[0] && n < max) {
        char xt[3 * 128 + 1];
        queue_xtext(e->envid, xt, sizeof(xt));
        snprintf(line + n, max - n, " ENVID=%s", xt);
    }
}

/* RCPT with the recipient's NOTIFY and ORCPT passed on to a DSN server (RFC 3461 §6.2.1):
 * from then on, reporting is that server's business. */
static void qs_rcpt_cmd(const struct queue_rcpt *r, const struct qs_ext *x, char *line, size_t max)
{
    size_t n = (size_t)snprintf(line, max, "RCPT TO:<%s>", r->addr);
    const char *semi = strchr(r->orcpt, ';');
    char notify[64], xt[3 * QUEUE_ORCPT_MAX + 1];

    if (!x->dsn || n >= max)
        return;
    queue_notify_format(r->notify, notify, sizeof(notify));
    if (notify[0])
        n += (size_t)snprintf(line + n, max - n, " NOTIFY=%s", notify);
    if (semi && semi > r->orcpt && n < max) {
        queue_xtext(semi + 1, xt, sizeof(xt));
        snprintf(line + n, max - n, " ORCPT=%.*s;%s", (int)(semi - r->orcpt), r->orcpt, xt);
    }
}

/* The message with dot-stuffing (RFC 5321 §4.5.2) and the final dot. */
static int qs_send_data(struct qs_conn *c, const char *msg, size_t len)
{
    size_t pos = 0;

    while (pos < len && !c->broken) {
        const char *lf = memchr(msg + pos, '\n', len - pos);
        size_t end = lf ? (size_t)(lf - msg) + 1 : len;
        if (msg[pos] == '.')
            qs_write(c, ".", 1);
        qs_write(c, msg + pos, end - pos);
        pos = end;
    }
    if (len > 0 && msg[len - 1] != '\n')
        qs_write(c, "\r\n", 2);
    return qs_write(c, ".\r\n", 3);
}

/* MAIL refused: 4xx tries the next host (-1), 5xx fails every pending member (0). */
static int qs_mail_refused(struct qs_conn *c, struct qs_job *j, const size_t *pending, size_t np,
                           const struct qs_reply *r)
{
    if (r->code / 100 != 5) {
        qs_fail(c, "MAIL refused: %s", r->first);
        return -1;
    }
    for (size_t k = 0; k < np; k++) {
        qs_outcome(&j->e->r[j->idx[pending[k]]], c, r);
        j->settled[pending[k]] = 1;
    }
    return 0;
}

/* The envelope: MAIL and one RCPT per pending member, pipelined (with DATA, RFC 2920)
 * when offered. 0 with outcomes from the RCPT replies, 1 when MAIL was refused for good,
 * -1 when the host failed first. */
static int qs_envelope(struct qs_conn *c, struct qs_job *j, const struct qs_ext *x,
                       const size_t *pending, size_t np)
{
    char line[QUEUE_ADDR_MAX + 3 * QUEUE_ORCPT_MAX + 128];
    struct qs_reply r;

    qs_mail_cmd(j, x, line, sizeof(line));
    qs_cmd(c, line);
    if (!x->pipelining) {
        if (qs_reply(c, &r, QS_REPLY_MS) != 0)
            return -1;
        if (r.code / 100 != 2)
            return qs_mail_refused(c, j, pending, np, &r) == 0 ? 1 : -1;
    }
    for (size_t k = 0; k < np; k++) {
        qs_rcpt_cmd(&j->e->r[j->idx[pending[k]]], x, line, sizeof(line));
        qs_cmd(c, line);
        if (!x->pipelining) {
            if (qs_reply(c, &r, QS_REPLY_MS) != 0)
                return -1;
            qs_outcome(&j->e->r[j->idx[pending[k]]], c, &r);
        }
    }
    if (!x->pipelining)
        return 0;
    qs_cmd(c, "DATA");
    if (qs_reply(c, &r, QS_REPLY_MS) != 0)
        return -1;
    if (r.code / 100 != 2)
        return qs_mail_refused(c, j, pending, np, &r) == 0 ? 1 : -1;
    for (size_t k = 0; k < np; k++) {
        if (qs_reply(c, &r, QS_REPLY_MS) != 0)
            return -1;
        qs_outcome(&j->e->r[j->idx[pending[k]]], c, &r);
    }
    return 0;
}

/* MAIL, RCPTs and DATA for the unsettled members of the job. 0 when every member got an
 * outcome here; -1 when the host failed first (connection, MAIL 4xx): try the next. */
static int qs_transaction(struct qs_conn *c, struct qs_job *j, const struct qs_ext *x)
{
    struct qs_reply r;
    size_t pending[j->n], np = 0, accepted[j->n], na = 0;
    int rc;

    for (size_t k = 0; k < j->n; k++)
        if (!j->settled[k])
            pending[np++] = k;
    if (x->size && (int64_t)j->len > x->size) {
        for (size_t k = 0; k < np; k++) {
            qs_local_outcome(&j->e->r[j->idx[pending[k]]], QR_FAILED, "5.3.4", c->host,
                             "message is larger than the server accepts (SIZE)");
            j->settled[pending[k]] = 1;
        }
        return 0;
    }
    if ((rc = qs_envelope(c, j, x, pending, np)) != 0)
        return rc > 0 ? 0 : -1;
    for (size_t k = 0; k < np; k++) {
        j->settled[pending[k]] = 1;
        if (j->e->r[j->idx[pending[k]]].state == QR_SENT)
            accepted[na++] = pending[k];
    }
    if (na == 0) {
        /* DATA without recipients gets 554; a server that says 354 instead is left
         * without the final dot, which abandons the transaction. */
        if (x->pipelining && qs_reply(c, &r, QS_REPLY_MS) == 0 && r.code == 354)
            qs_fail(c, "%s", "DATA accepted without recipients");
        qs_cmd(c, "RSET");
        qs_reply(c, &r, QS_REPLY_MS);
        return 0;
    }
    if (!x->pipelining)
        qs_cmd(c, "DATA");
    if (qs_reply(c, &r, QS_REPLY_MS) != 0)
        goto lost;
    if (r.code == 354) {
        qs_send_data(c, j->msg, j->len);
        if (qs_reply(c, &r, QS_FINAL_MS) != 0)
            goto lost;
    }
    for (size_t k = 0; k < na; k++) {
        struct queue_rcpt *qr = &j->e->r[j->idx[accepted[k]]];
        qs_outcome(qr, c, &r);
        /* RFC 3461 §6.2.2: a next hop without DSN cannot report success; we say "relayed" */
        if (qr->state == QR_SENT && !x->dsn && (qr->notify & DELIVER_NOTIFY_SUCCESS))
            qr->state = QR_RELAYED;
    }
    return 0;
lost:
    /* Accepted but no final answer: it may have arrived, but only a retry is safe. */
    for (size_t k = 0; k < na; k++)
        qs_local_outcome(&j->e->r[j->idx[accepted[k]]], QR_QUEUED, "4.4.2", c->host, c->why);
    return 0;
}

/* One server: 0 when the job's members got outcomes, -1 to try the next, -2 to retry the
 * same address without STARTTLS, -3 when the server is this one (its greeting or EHLO
 * names us). */
static int qs_session(struct queue_client *cl, const struct sockaddr_storage *ss, const char *host,
                      struct qs_job *j, int no_tls, char *why, size_t whylen)
{
    struct qs_conn *c = calloc(1, sizeof(*c));
    struct qs_ext x;
    struct qs_reply r;
    int rc = -1;

    if (!c) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    c->cl = cl;
    c->fd = -1;
    snprintf(c->host, sizeof(c->host), "%s", host);
    if (qs_connect(c, ss) != 0 || qs_reply(c, &r, QS_REPLY_MS) != 0)
        goto out;
    if (r.code != 220) {
        qs_fail(c, "greeting: %s", r.first);
        goto out;
    }
    if (qs_self_banner(cl->cfg, r.text)) {
        qs_cmd(c, "QUIT");
        qs_reply(c, &r, 10000);
        rc = -3;
        goto out;
    }
    if (qs_hello(c, &x, cl->cfg->hostname) != 0)
        goto out;
    if (x.self) {
        qs_cmd(c, "QUIT");
        qs_reply(c, &r, 10000);
        rc = -3;
        goto out;
    }
    if (x.starttls && !no_tls && cl->ssl_ctx) {
        int t = qs_starttls(c);
        if (t < 0) {
            rc = t;
            goto out;
        }
        if (t == 1 && qs_hello(c, &x, cl->cfg->hostname) != 0)
            goto out;
    }
    rc = qs_transaction(c, j, &x);
    if (rc == 0) {
        qs_cmd(c, "QUIT");
        qs_reply(c, &r, 10000);
    }
out:
    if (rc != 0)
        snprintf(why, whylen, "%s", c->why[0] ? c->why : "failed");
    qs_close(c);
    free(c);
    return rc;
}

/* Host h is this server. RFC 5321 §5.1: it and every host not more preferred are out.
 * When no more preferred host was there to try, the mail can only loop: a permanent
 * failure. Otherwise the group stays queued for the better hosts. 1 when settled. */
static int qs_loop(struct qs_job *j, const struct qs_host *hosts, size_t h, char *why,
                   size_t whylen)
{
    const char *dom = strrchr(j->e->r[j->idx[0]].addr, '@');
    char diag[QUEUE_DIAG_MAX];
    int better = 0;

    for (size_t k = 0; k < h; k++)
        better |= hosts[k].pref < hosts[h].pref;
    log_warn("queue", "%s: MX host %s is this server%s", j->e->id, hosts[h].name,
             better ? "; only more preferred hosts are tried" : ": mail would loop");
    if (better) {
        snprintf(why, whylen, "the more preferred MX hosts failed; %.100s is this server",
                 hosts[h].name);
        return 0;
    }
    snprintf(diag, sizeof(diag),
             "mail for %.200s would loop: its mail host %.200s is this very server",
             dom ? dom + 1 : "?", hosts[h].name);
    for (size_t k = 0; k < j->n; k++) {
        if (j->settled[k])
            continue;
        qs_local_outcome(&j->e->r[j->idx[k]], QR_FAILED, "5.4.6", NULL, diag);
        j->settled[k] = 1;
    }
    return 1;
}

/* Tries each address of each host until the job is settled. */
static void qs_deliver_group(struct queue_client *cl, res_state st, struct qs_job *j,
                             const struct qs_host *hosts, size_t nhosts)
{
    char why[300] = "no host to try", diag[QUEUE_DIAG_MAX], lasthost[NS_MAXDNAME] = "";

    for (size_t h = 0; h < nhosts && !*cl->stop; h++) {
        struct sockaddr_storage addrs[QS_MAX_ADDRS];
        size_t na = 0;
        if (!hosts[h].smarthost && qs_self_name(cl->cfg, hosts[h].name)) {
            if (qs_loop(j, hosts, h, why, sizeof(why)))
                return;
            break;
        }
        if (qs_addrs(cl->cfg, st, hosts[h].name, hosts[h].port, addrs, &na) != QS_DNS_OK) {
            snprintf(why, sizeof(why), "cannot find the address of %.200s", hosts[h].name);
            continue;
        }
        int self = 0;
        for (size_t a = 0; a < na && !self; a++)
            self = qs_self_addr(cl->cfg, &addrs[a]);
        for (size_t a = 0; a < na && !*cl->stop && !self; a++) {
            int rc = qs_session(cl, &addrs[a], hosts[h].name, j, 0, why, sizeof(why));
            if (rc == -2)
                rc = qs_session(cl, &addrs[a], hosts[h].name, j, 1, why, sizeof(why));
            if (rc == 0)
                return;
            self = rc == -3;
            snprintf(lasthost, sizeof(lasthost), "%s", hosts[h].name);
        }
        if (self) {
            if (qs_loop(j, hosts, h, why, sizeof(why)))
                return;
            break;
        }
    }
    snprintf(diag, sizeof(diag), "%.200s%s%.300s", lasthost, lasthost[0] ? ": " : "", why);
    for (size_t k = 0; k < j->n; k++)
        if (!j->settled[k])
            qs_local_outcome(&j->e->r[j->idx[k]], QR_QUEUED, "4.4.1", NULL, diag);
}

/* The hosts for a domain (or the smarthost); on a DNS verdict, settles the group. */
static size_t qs_route(struct queue_client *cl, res_state st, const char *domain, struct qs_job *j,
                       struct qs_host *hosts)
{
    const char *status = NULL, *why = NULL;
    enum queue_rstate state = QR_QUEUED;
    size_t n = 0;

    if (cl->cfg->smarthost[0]) {
        if (config_split_addr(cl->cfg->smarthost, hosts[0].name, sizeof(hosts[0].name),
                              &hosts[0].port) != 0 ||
            hosts[0].port <= 0)
            hosts[0].port = 25;
        hosts[0].pref = 0;
        hosts[0].smarthost = 1;
        return 1;
    }
    switch (qs_mx(st, domain, hosts, &n)) {
    case QS_DNS_OK:
        return n;
    case QS_DNS_NODATA: /* §5.1: no MX, the domain itself is the host */
        snprintf(hosts[0].name, sizeof(hosts[0].name), "%s", domain);
        hosts[0].port = 25;
        hosts[0].pref = 0;
        hosts[0].smarthost = 0;
        return 1;
    case QS_DNS_NXDOMAIN:
        state = QR_FAILED, status = "5.1.2", why = "the recipient's domain does not exist";
        break;
    case QS_DNS_NULLMX:
        state = QR_FAILED, status = "5.1.10",
        why = "the recipient's domain accepts no mail "
              "(null MX)";
        break;
    default:
        status = "4.4.3", why = "DNS lookup of the recipient's domain failed, will retry";
        break;
    }
    for (size_t k = 0; k < j->n; k++)
        qs_local_outcome(&j->e->r[j->idx[k]], state, status, NULL, why);
    return 0;
}

static const char *qs_domain(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : "";
}

void queue_smtp_deliver(struct queue_client *cl, struct queue_env *e, const char *msg, size_t len)
{
    struct __res_state st;
    struct qs_host *hosts = calloc(QS_MAX_HOSTS, sizeof(*hosts));
    size_t *idx = calloc(e->n + 1, sizeof(*idx));
    unsigned char *done = calloc(e->n + 1, 1), *settled = calloc(e->n + 1, 1);

    if (!hosts || !idx || !done || !settled || qs_res_init(cl->cfg, &st) != 0) {
        log_error("queue", "%s: cannot set up a delivery attempt", e->id);
        goto out;
    }
    /* Group the queued recipients: by domain, or all of them for a smarthost. */
    for (size_t i = 0; i < e->n && !*cl->stop; i++) {
        if (e->r[i].state != QR_QUEUED || done[i])
            continue;
        struct qs_job j = {.e = e, .msg = msg, .len = len, .idx = idx, .settled = settled};
        const char *dom = qs_domain(e->r[i].addr);
        for (size_t k = i; k < e->n; k++) {
            if (e->r[k].state == QR_QUEUED && !done[k] &&
                (cl->cfg->smarthost[0] || strcasecmp(qs_domain(e->r[k].addr), dom) == 0)) {
                idx[j.n] = k;
                settled[j.n++] = 0;
                done[k] = 1;
            }
        }
        size_t nh = qs_route(cl, &st, dom, &j, hosts);
        if (nh > 0)
            qs_deliver_group(cl, &st, &j, hosts, nh);
    }
    res_nclose(&st);
out:
    free(hosts);
    free(idx);
    free(done);
    free(settled);
}

void *queue_smtp_ssl_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* opportunistic: RFC 7435 */
    return ctx;
}
