/*
 * tls.c — the OpenSSL side of TLS: the server context the line protocols share (TLS 1.2
 * minimum) and the self-signed certificate made on first start, so that a fresh install
 * serves HTTPS, IMAPS and SMTPS without any setup. The HTTPS listener (GnuTLS inside
 * libmicrohttpd) reads the same PEM files with tls_read_file().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "server/server.h"

#define TLS_RSA_BITS  2048
#define TLS_CERT_DAYS 3650
#define TLS_CN_MAX    64 /* X.520 upper bound on commonName */
#define TLS_SAN_MAX   1200

struct tls_ctx {
    SSL_CTX *ssl;
};

/* Appends the oldest queued OpenSSL error (if any) to a message and clears the queue. */
static void tls_fail(char *err, size_t errlen, const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char reason[256] = "";

    if (e)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    if (!err || errlen == 0)
        return;
    if (reason[0])
        snprintf(err, errlen, "%s%s%s: %s", what, path ? " " : "", path ? path : "", reason);
    else
        snprintf(err, errlen, "%s%s%s: %s", what, path ? " " : "", path ? path : "",
                 errno ? strerror(errno) : "failed");
}

char *tls_read_file(const char *path, size_t max, char *err, size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto err;
    }
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        snprintf(err, errlen, "%s: not a regular file of at most %zu bytes", path, max);
        goto err;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto err;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "short read");
            goto err;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    return buf;
err:
    free(buf);
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* Adds one X.509v3 extension given in OpenSSL's config syntax. */
static int tls_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok;

    if (!ext)
        return -1;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* DNS:hostname, DNS:*.web_base, DNS:web_base, DNS:localhost, IP:127.0.0.1 (without
 * repeating a name). */
static int tls_san(const struct config *cfg, char *out, size_t outlen)
{
    const char *host = cfg->hostname[0] ? cfg->hostname : "localhost";
    int n;

    n = snprintf(out, outlen, "DNS:%s", host);
    if (cfg->web_base[0] && n > 0 && (size_t)n < outlen)
        n +=
            snprintf(out + n, outlen - (size_t)n, ",DNS:*.%s,DNS:%s", cfg->web_base, cfg->web_base);
    if (strcmp(host, "localhost") != 0 && n > 0 && (size_t)n < outlen)
        n += snprintf(out + n, outlen - (size_t)n, ",DNS:localhost");
    if (n > 0 && (size_t)n < outlen)
        n += snprintf(out + n, outlen - (size_t)n, ",IP:127.0.0.1");
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

/* A positive random 127-bit serial, so that regenerated certificates never collide. */
static int tls_set_serial(X509 *x)
{
    unsigned char raw[16];
    BIGNUM *bn = NULL;
    int rc = -1;

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    raw[0] &= 0x7f;
    raw[0] |= 0x01; /* never zero, never negative */
    bn = BN_bin2bn(raw, sizeof(raw), NULL);
    if (bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        rc = 0;
    BN_free(bn);
    return rc;
}

static X509 *tls_make_cert(const struct config *cfg, EVP_PKEY *key)
{
    const char *host = cfg->hostname[0] ? cfg->hostname : "localhost";
    const char *cn = strlen(host) <= TLS_CN_MAX ? host : "localhost";
    char san[TLS_SAN_MAX];
    X509V3_CTX v3;
    X509_NAME *name;
    X509 *x = X509_new();

    if (!x || !X509_set_version(x, 2) || tls_set_serial(x) != 0)
        goto err;
    /* Backdated an hour so that clients with a slightly slow clock accept it at once. */
    if (!X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), TLS_CERT_DAYS, 0, NULL))
        goto err;
    name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, key))
        goto err;
    if (tls_san(cfg, san, sizeof(san)) != 0)
        goto err;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    if (tls_add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        tls_add_ext(x, &v3, NID_key_usage, "critical,digitalSignature,keyEncipherment") != 0 ||
        tls_add_ext(x, &v3, NID_ext_key_usage, "serverAuth") != 0 ||
        tls_add_ext(x, &v3, NID_subject_key_identifier, "hash") != 0 ||
        tls_add_ext(x, &v3, NID_subject_alt_name, san) != 0)
        goto err;
    if (X509_sign(x, key, EVP_sha256()) <= 0)
        goto err;
    return x;
err:
    X509_free(x);
    return NULL;
}

/* Writes PEM data to path via a temporary file in the same directory, fsynced and renamed,
 * so that a crash never leaves a half-written key or certificate behind. */
static int tls_write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert)
{
    char tmp[CFG_PATH_MAX + 16];
    FILE *f = NULL;
    int fd = -1, ok;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -1;
    (void)unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    f = fdopen(fd, "w");
    if (!f)
        goto err;
    fd = -1;
    ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
    if (!ok || fflush(f) != 0 || fsync(fileno(f)) != 0)
        goto err;
    if (fclose(f) != 0) {
        f = NULL;
        goto err;
    }
    f = NULL;
    if (rename(tmp, path) != 0)
        goto err;
    return 0;
err:
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    (void)unlink(tmp);
    return -1;
}

static int tls_generate(const struct config *cfg, const char *cert_path, const char *key_path,
                        char *err, size_t errlen)
{
    EVP_PKEY *key = EVP_RSA_gen(TLS_RSA_BITS);
    X509 *cert = NULL;
    int rc = -1;

    if (!key) {
        tls_fail(err, errlen, "generating the RSA key", NULL);
        goto err;
    }
    cert = tls_make_cert(cfg, key);
    if (!cert) {
        tls_fail(err, errlen, "making the self-signed certificate", NULL);
        goto err;
    }
    /* Key first: a certificate on disk always has its key beside it. */
    if (tls_write_pem(key_path, 0600, key, NULL) != 0) {
        tls_fail(err, errlen, "writing", key_path);
        goto err;
    }
    if (tls_write_pem(cert_path, 0644, NULL, cert) != 0) {
        tls_fail(err, errlen, "writing", cert_path);
        goto err;
    }
    rc = 0;
err:
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

static int tls_mkdir(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
}

int tls_ensure_cert(struct config *cfg, char *err, size_t errlen)
{
    char dir[CFG_PATH_MAX], cert[CFG_PATH_MAX], key[CFG_PATH_MAX];

    if (cfg->tls_cert[0]) {
        /* Operator-supplied: a combined PEM may carry the key too. */
        if (!cfg->tls_key[0])
            snprintf(cfg->tls_key, sizeof(cfg->tls_key), "%s", cfg->tls_cert);
        if (access(cfg->tls_cert, R_OK) != 0 || access(cfg->tls_key, R_OK) != 0) {
            snprintf(err, errlen, "%s: %s",
                     access(cfg->tls_cert, R_OK) != 0 ? cfg->tls_cert : cfg->tls_key,
                     strerror(errno));
            return -1;
        }
        return 0;
    }
    if (snprintf(dir, sizeof(dir), "%s/tls", cfg->data_dir) >= (int)sizeof(dir) ||
        snprintf(cert, sizeof(cert), "%s/cert.pem", dir) >= (int)sizeof(cert) ||
        snprintf(key, sizeof(key), "%s/key.pem", dir) >= (int)sizeof(key)) {
        snprintf(err, errlen, "data_dir too long for the TLS files");
        return -1;
    }
    if (tls_mkdir(cfg->data_dir, err, errlen) != 0 || tls_mkdir(dir, err, errlen) != 0)
        return -1;
    if (access(cert, R_OK) != 0 || access(key, R_OK) != 0) {
        if (tls_generate(cfg, cert, key, err, errlen) != 0)
            return -1;
        log_info("tls", "generated a self-signed certificate for %s in %s",
                 cfg->hostname[0] ? cfg->hostname : "localhost", dir);
    }
    snprintf(cfg->tls_cert, sizeof(cfg->tls_cert), "%s", cert);
    snprintf(cfg->tls_key, sizeof(cfg->tls_key), "%s", key);
    return 0;
}

/* SNI: every name is served the default certificate for now; per-domain certificates
 * slot in here by switching the SSL_CTX of the connection (SSL_set_SSL_CTX). */
static int tls_servername(SSL *ssl, int *alert, void *arg)
{
    (void)ssl;
    (void)alert;
    (void)arg;
    return SSL_TLSEXT_ERR_OK;
}

struct tls_ctx *tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen)
{
    struct tls_ctx *t = calloc(1, sizeof(*t));

    ERR_clear_error();
    if (!t || !(t->ssl = SSL_CTX_new(TLS_server_method()))) {
        tls_fail(err, errlen, "creating the TLS context", NULL);
        goto err;
    }
    if (!SSL_CTX_set_min_proto_version(t->ssl, TLS1_2_VERSION)) {
        tls_fail(err, errlen, "setting TLS 1.2 as the minimum", NULL);
        goto err;
    }
    SSL_CTX_set_options(t->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                    SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_session_cache_mode(t->ssl, SSL_SESS_CACHE_SERVER);
    if (SSL_CTX_use_certificate_chain_file(t->ssl, cert) != 1) {
        tls_fail(err, errlen, "loading the certificate", cert);
        goto err;
    }
    if (SSL_CTX_use_PrivateKey_file(t->ssl, key, SSL_FILETYPE_PEM) != 1) {
        tls_fail(err, errlen, "loading the key", key);
        goto err;
    }
    if (SSL_CTX_check_private_key(t->ssl) != 1) {
        tls_fail(err, errlen, "the key does not match the certificate", cert);
        goto err;
    }
    SSL_CTX_set_tlsext_servername_callback(t->ssl, tls_servername);
    return t;
err:
    tls_ctx_free(t);
    return NULL;
}

void tls_ctx_free(struct tls_ctx *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ssl);
    free(t);
}

void *tls_ctx_ssl(struct tls_ctx *t)
{
    return t ? t->ssl : NULL;
}
