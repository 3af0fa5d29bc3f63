/*
 * net.c — TCP listeners and connections for the line protocols (IMAP, POP3, SMTP).
 *
 * Each accepted connection gets its own thread with a small stack and runs the protocol's
 * session function from start to end with plain blocking-style calls: read a line, read n
 * bytes of a literal, write, STARTTLS, wait for input or a wake-up (IDLE). Underneath, the
 * socket is non-blocking and every wait is a poll() with a deadline, so a client that
 * sends half a TLS record cannot hold a thread past its timeout, and a listener's shutdown
 * eventfd wakes every waiting session at once for a prompt, clean stop.
 *
 * Input is read through a bounded buffer: a line longer than the caller's limit is
 * reported (NET_ETOOLONG) and the rest of it skipped on the next read, never stored.
 * STARTTLS throws away whatever the client pipelined before the handshake, so nothing sent
 * in clear text is ever taken as if it had come over TLS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "server/server.h"

#define NET_RBUF          16384
#define NET_WBUF          16384
#define NET_STACK         (256 * 1024)
#define NET_WRITE_TIMEOUT 60000
#define NET_TLS_TIMEOUT   30000

struct net_listener {
    int fd;
    int port;
    int implicit_tls;
    struct tls_ctx *tls;
    net_session_fn fn;
    void *ctx;
    int stop_fd;       /* eventfd: readable once the listener is stopping */
    atomic_int active; /* sessions running */
    int max_sessions;
    pthread_t thread;
    int thread_started;
    char name[32];
};

struct net_conn {
    int fd;
    SSL *ssl;
    struct net_listener *l;
    char ip[INET6_ADDRSTRLEN];
    int remote_port;
    int loopback;
    int skip_to_lf; /* the rest of an over-long line is still to be discarded */
    size_t rpos, rlen;
    size_t wlen;
    int failed; /* a write failed: further output is dropped */
    char rbuf[NET_RBUF];
    char wbuf[NET_WBUF];
};

static int64_t net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Remaining milliseconds until deadline (-1 = none) as a poll timeout. */
static int net_remaining(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - net_now_ms();
    return left < 0 ? 0 : left > 0x7fffffff ? 0x7fffffff : (int)left;
}

/* Waits for events on the socket (and optionally wake_fd). Returns 1 socket ready,
 * 2 wake_fd ready, NET_ETIMEOUT, NET_ESHUTDOWN or NET_EIO. */
static int net_poll(struct net_conn *c, short events, int wake_fd, int64_t deadline)
{
    struct pollfd p[3] = {{.fd = c->fd, .events = events},
                          {.fd = c->l ? c->l->stop_fd : -1, .events = POLLIN},
                          {.fd = wake_fd, .events = POLLIN}};
    for (;;) {
        int n = poll(p, wake_fd >= 0 ? 3 : 2, net_remaining(deadline));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return NET_EIO;
        if (n == 0)
            return NET_ETIMEOUT;
        if (p[1].revents)
            return NET_ESHUTDOWN;
        if (wake_fd >= 0 && p[2].revents)
            return 2;
        return 1;
    }
}

/* Reads more input into rbuf. Returns bytes added, 0 at EOF, or a NET_E* code. */
static int net_fill(struct net_conn *c, int64_t deadline)
{
    if (c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    if (c->rlen == sizeof(c->rbuf))
        return NET_ETOOLONG;
    for (;;) {
        short want = POLLIN;
        ssize_t n;
        if (c->ssl) {
            ERR_clear_error();
            n = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(sizeof(c->rbuf) - c->rlen));
            if (n > 0) {
                c->rlen += (size_t)n;
                return (int)n;
            }
            int e = SSL_get_error(c->ssl, (int)n);
            if (e == SSL_ERROR_ZERO_RETURN)
                return 0;
            if (e == SSL_ERROR_WANT_WRITE)
                want = POLLOUT;
            else if (e != SSL_ERROR_WANT_READ)
                return e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 ? 0 : NET_EIO;
        } else {
            n = read(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
            if (n > 0) {
                c->rlen += (size_t)n;
                return (int)n;
            }
            if (n == 0)
                return 0;
            if (errno != EAGAIN && errno != EINTR)
                return NET_EIO;
        }
        /* About to wait for the client: acknowledge what it sent at once. Otherwise a
         * client that writes a literal and then its CRLF in two writes (imaplib, many
         * others) has the CRLF held by Nagle until our delayed ACK fires, ~40 ms later.
         * TCP_QUICKACK does not stick, hence before every wait. */
        if (want == POLLIN) {
            int one = 1;
            setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
        }
        int rc = net_poll(c, want, -1, deadline);
        if (rc < 0)
            return rc;
    }
}

static int64_t net_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : net_now_ms() + timeout_ms;
}

/* Lines are copied into the caller's buffer as they arrive, so a line may be longer than
 * the connection's read buffer: only the caller's max bounds it. */
ssize_t net_read_line(struct net_conn *c, char *buf, size_t max, int timeout_ms)
{
    int64_t deadline = net_deadline(timeout_ms);
    size_t got = 0;

    for (;;) {
        char *start = c->rbuf + c->rpos;
        size_t avail = c->rlen - c->rpos;
        char *lf = avail ? memchr(start, '\n', avail) : NULL;
        size_t take = lf ? (size_t)(lf - start) + 1 : avail;

        if (c->skip_to_lf) {
            /* Discard what remains of a line already reported as too long. */
            c->rpos += take;
            c->skip_to_lf = lf == NULL;
        } else if (got + take + 1 > max) {
            c->rpos += take;
            c->skip_to_lf = lf == NULL;
            return NET_ETOOLONG;
        } else {
            memcpy(buf + got, start, take);
            got += take;
            c->rpos += take;
            if (lf) {
                buf[got] = '\0';
                return (ssize_t)got;
            }
        }
        if (lf)
            continue;
        int n = net_fill(c, deadline);
        if (n == 0)
            return NET_EOF;
        if (n < 0)
            return n;
    }
}

ssize_t net_read(struct net_conn *c, void *buf, size_t n, int timeout_ms)
{
    int64_t deadline = net_deadline(timeout_ms);
    size_t got = 0;

    while (got < n) {
        size_t avail = c->rlen - c->rpos;
        if (avail) {
            size_t take = avail < n - got ? avail : n - got;
            memcpy((char *)buf + got, c->rbuf + c->rpos, take);
            c->rpos += take;
            got += take;
            continue;
        }
        int r = net_fill(c, deadline);
        if (r == 0)
            return NET_EOF;
        if (r < 0)
            return r;
    }
    return (ssize_t)got;
}

size_t net_buffered(const struct net_conn *c)
{
    return c->rlen - c->rpos + (c->ssl ? (size_t)SSL_pending(c->ssl) : 0);
}

int net_wait(struct net_conn *c, int wake_fd, int timeout_ms)
{
    if (net_buffered(c))
        return NET_READABLE;
    int rc = net_poll(c, POLLIN, wake_fd, net_deadline(timeout_ms));
    return rc == 1 ? NET_READABLE : rc == 2 ? NET_WOKEN : rc;
}

static int net_send(struct net_conn *c, const char *p, size_t len)
{
    int64_t deadline = net_deadline(NET_WRITE_TIMEOUT);

    while (len) {
        short want = POLLOUT;
        ssize_t n;
        if (c->ssl) {
            ERR_clear_error();
            n = SSL_write(c->ssl, p, (int)(len > 0x40000000 ? 0x40000000 : len));
            if (n <= 0) {
                int e = SSL_get_error(c->ssl, (int)n);
                if (e == SSL_ERROR_WANT_READ)
                    want = POLLIN;
                else if (e != SSL_ERROR_WANT_WRITE)
                    return NET_EIO;
            }
        } else {
            n = send(c->fd, p, len, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                return NET_EIO;
        }
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        int rc = net_poll(c, want, -1, deadline);
        /* A stopping server still delivers its goodbye: only time and errors end writes. */
        if (rc == NET_ETIMEOUT || rc == NET_EIO)
            return rc;
        if (rc == NET_ESHUTDOWN) {
            struct pollfd pf = {.fd = c->fd, .events = want};
            if (poll(&pf, 1, net_remaining(deadline)) <= 0)
                return NET_ETIMEOUT;
        }
    }
    return 0;
}

int net_flush(struct net_conn *c)
{
    if (c->failed)
        return NET_EIO;
    if (c->wlen && net_send(c, c->wbuf, c->wlen) < 0) {
        c->failed = 1;
        c->wlen = 0;
        return NET_EIO;
    }
    c->wlen = 0;
    return 0;
}

int net_write(struct net_conn *c, const void *data, size_t len)
{
    if (c->failed)
        return NET_EIO;
    if (c->wlen + len > sizeof(c->wbuf)) {
        if (net_flush(c) < 0)
            return NET_EIO;
        if (len > sizeof(c->wbuf)) {
            if (net_send(c, data, len) < 0) {
                c->failed = 1;
                return NET_EIO;
            }
            return 0;
        }
    }
    memcpy(c->wbuf + c->wlen, data, len);
    c->wlen += len;
    return 0;
}

int net_printf(struct net_conn *c, const char *fmt, ...)
{
    char line[4096];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return NET_EIO;
    if ((size_t)n >= sizeof(line)) {
        /* Rare long line: format again into the heap rather than truncate. */
        char *big = malloc((size_t)n + 1);
        if (!big)
            return NET_EIO;
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        int rc = net_write(c, big, (size_t)n);
        free(big);
        return rc;
    }
    return net_write(c, line, (size_t)n);
}

static int net_handshake(struct net_conn *c, SSL_CTX *ctx)
{
    int64_t deadline = net_deadline(NET_TLS_TIMEOUT);

    if (!(c->ssl = SSL_new(ctx)) || SSL_set_fd(c->ssl, c->fd) != 1)
        return NET_EIO;
    for (;;) {
        ERR_clear_error();
        int r = SSL_accept(c->ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(c->ssl, r);
        short want = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!want)
            return NET_EIO;
        int rc = net_poll(c, want, -1, deadline);
        if (rc < 0)
            return rc;
    }
}

int net_starttls(struct net_conn *c)
{
    if (c->ssl || !c->l || !c->l->tls)
        return NET_EIO;
    if (net_flush(c) < 0)
        return NET_EIO;
    /* Anything the client pipelined after the STARTTLS command was sent in clear text:
     * it must not be taken as having come over TLS (CVE-2011-0411 and its kin). */
    c->rpos = c->rlen = 0;
    c->skip_to_lf = 0;
    return net_handshake(c, tls_ctx_ssl(c->l->tls));
}

int net_conn_is_tls(const struct net_conn *c)
{
    return c->ssl != NULL;
}

int net_conn_can_starttls(const struct net_conn *c)
{
    return !c->ssl && c->l && c->l->tls;
}

const char *net_conn_remote_ip(const struct net_conn *c)
{
    return c->ip;
}

int net_conn_is_loopback(const struct net_conn *c)
{
    return c->loopback;
}

int net_conn_local_port(const struct net_conn *c)
{
    return c->l ? c->l->port : 0;
}

/* ---- listener ---------------------------------------------------------------------- */

/* Closing a socket that still has unread input makes the kernel send RST, and an RST can
 * destroy our last reply (a BYE, a 421) before the client has read it. So: stop writing,
 * then read and drop what the client still sends, briefly and boundedly, then close. */
static void net_linger(struct net_conn *c)
{
    char sink[4096];
    size_t dropped = 0;
    int64_t deadline = net_deadline(200);

    shutdown(c->fd, SHUT_WR);
    while (dropped < 256 * 1024) {
        struct pollfd pf = {.fd = c->fd, .events = POLLIN};
        if (poll(&pf, 1, net_remaining(deadline)) <= 0)
            break;
        ssize_t n = read(c->fd, sink, sizeof(sink));
        if (n <= 0)
            break;
        dropped += (size_t)n;
    }
}

static void net_conn_close(struct net_conn *c)
{
    net_flush(c);
    if (c->ssl) {
        SSL_shutdown(c->ssl); /* best effort: the socket is non-blocking */
        SSL_free(c->ssl);
    }
    net_linger(c);
    close(c->fd);
    free(c);
}

static void *net_session_main(void *arg)
{
    struct net_conn *c = arg;
    struct net_listener *l = c->l;

    if (!l->implicit_tls || net_handshake(c, tls_ctx_ssl(l->tls)) == 0)
        l->fn(c, l->ctx);
    else
        log_debug(l->name, "%s: TLS handshake failed", c->ip);
    net_conn_close(c);
    atomic_fetch_sub(&l->active, 1);
    return NULL;
}

static void net_fill_peer(struct net_conn *c, const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, c->ip, sizeof(c->ip));
        c->remote_port = ntohs(a->sin_port);
        c->loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, c->ip, sizeof(c->ip));
        c->remote_port = ntohs(a->sin6_port);
        c->loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
            inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], c->ip, sizeof(c->ip));
            c->loopback = a->sin6_addr.s6_addr[12] == 127;
        }
    }
}

static void net_spawn(struct net_listener *l, int fd, const struct sockaddr_storage *ss)
{
    struct net_conn *c = calloc(1, sizeof(*c));
    pthread_attr_t attr;
    pthread_t t;
    int one = 1;

    if (!c || atomic_load(&l->active) >= l->max_sessions) {
        log_warn(l->name, "refusing a connection: %s", c ? "session limit reached" : "no memory");
        free(c);
        close(fd);
        return;
    }
    c->fd = fd;
    c->l = l;
    net_fill_peer(c, ss);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    atomic_fetch_add(&l->active, 1);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, NET_STACK);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, net_session_main, c) != 0) {
        log_error(l->name, "cannot start a session thread");
        atomic_fetch_sub(&l->active, 1);
        close(fd);
        free(c);
    }
    pthread_attr_destroy(&attr);
}

static void *net_accept_main(void *arg)
{
    struct net_listener *l = arg;
    struct pollfd p[2] = {{.fd = l->fd, .events = POLLIN}, {.fd = l->stop_fd, .events = POLLIN}};

    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) /* back off rather than spin */
                usleep(100000);
            continue;
        }
        net_spawn(l, fd, &ss);
    }
    return NULL;
}

/* Binds "host:port" (host may be empty for all addresses, or a [v6] literal). */
static int net_bind(const char *addr, int *port_out, char *err, size_t errlen)
{
    char host[CFG_ADDR_MAX];
    int port, fd = -1, one = 1;
    struct sockaddr_storage ss = {0};
    socklen_t sl;

    if (config_split_addr(addr, host, sizeof(host), &port) < 0) {
        snprintf(err, errlen, "bad listen address '%s'", addr);
        return -1;
    }
    if (!host[0] || strchr(host, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (host[0] && inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            goto bad_host;
        sl = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
            goto bad_host;
        sl = sizeof(*a);
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto sys_err;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6) {
        int zero = 0; /* "[::]:port" and ":port" take IPv4 too */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 512) < 0)
        goto sys_err;
    sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port_out = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
bad_host:
    snprintf(err, errlen, "listen address '%s': host must be an IP address", addr);
    return -1;
sys_err:
    snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

struct net_listener *net_listen(const struct net_listen_opts *o, char *err, size_t errlen)
{
    struct net_listener *l = calloc(1, sizeof(*l));

    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->fd = l->stop_fd = -1;
    if ((o->implicit_tls || o->starttls) && !o->tls) {
        snprintf(err, errlen, "%s: TLS requested but no TLS context", o->name);
        goto err;
    }
    if ((l->fd = net_bind(o->addr, &l->port, err, errlen)) < 0)
        goto err;
    if ((l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        goto err;
    }
    l->implicit_tls = o->implicit_tls;
    l->tls = o->implicit_tls || o->starttls ? o->tls : NULL;
    l->fn = o->fn;
    l->ctx = o->ctx;
    l->max_sessions = o->max_sessions > 0 ? o->max_sessions : 10000;
    snprintf(l->name, sizeof(l->name), "%s", o->name ? o->name : "net");
    if (pthread_create(&l->thread, NULL, net_accept_main, l) != 0) {
        snprintf(err, errlen, "%s: cannot start the accept thread", l->name);
        goto err;
    }
    l->thread_started = 1;
    return l;
err:
    if (l->fd >= 0)
        close(l->fd);
    if (l->stop_fd >= 0)
        close(l->stop_fd);
    free(l);
    return NULL;
}

int net_listener_port(const struct net_listener *l)
{
    return l->port;
}

int net_listener_active(struct net_listener *l)
{
    return atomic_load(&l->active);
}

int net_listener_stop(struct net_listener *l, int grace_ms)
{
    uint64_t one = 1;
    int64_t deadline = net_deadline(grace_ms);

    if (!l)
        return 0;
    if (write(l->stop_fd, &one, sizeof(one)) < 0)
        log_error(l->name, "cannot signal sessions to stop: %s", strerror(errno));
    if (l->thread_started)
        pthread_join(l->thread, NULL);
    close(l->fd);
    while (atomic_load(&l->active) > 0 && net_remaining(deadline) > 0)
        usleep(10000);
    int left = atomic_load(&l->active);
    /* Sessions still running hold pointers into l: it is only freed once they are gone. */
    if (left == 0) {
        close(l->stop_fd);
        free(l);
    }
    return left;
}
