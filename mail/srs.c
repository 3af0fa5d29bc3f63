/*
 * srs.c — the Sender Rewriting Scheme codec and its secret (see srs.h for the format).
 *
 * Choices:
 *  - The hash covers the lower-cased fields, and is compared without regard to case: the
 *    address travels through MTAs that may fold case (libsrs2 accepts such hashes too).
 *    Four base64 characters still leave guessing at about one in 1.6 million per try.
 *  - The first separator after SRS0/SRS1 may be '=', '+' or '-' on input (the variants
 *    other implementations produce); we always write '='.
 *  - An address whose rewrite would exceed 64 octets of local part is not rewritten
 *    (srs_forward fails): our own SMTP parser, like many others, refuses longer local
 *    parts, so the bounce could not come back anyway.
 *  - The secret file is made once with O_EXCL-style linking, so two processes starting
 *    together (server and CLI) agree on one secret.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "mail/srs.h"
#include "server/server.h"

#define SRS_HASH_LEN 4
#define SRS_PATH_MAX (CFG_PATH_MAX + 32)

static const char srs_b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* ---------------------------------------------------------------------------------------
 * The secret
 * ------------------------------------------------------------------------------------ */

static int srs_keys_parse(const char *text, struct srs_keys *k)
{
    const char *p = text;

    memset(k, 0, sizeof(*k));
    while (*p && k->n < SRS_KEYS_MAX) {
        size_t n = strcspn(p, "\r\n");
        /* Blank lines and comments are allowed; a secret is one token of printable text. */
        if (n > 0 && p[0] != '#' && n <= SRS_KEY_MAX) {
            memcpy(k->key[k->n], p, n);
            k->key[k->n][n] = '\0';
            if (strspn(k->key[k->n], "\t ") != n)
                k->n++;
        }
        p += n;
        p += strspn(p, "\r\n");
    }
    return k->n > 0 ? 0 : -1;
}

static int srs_read_file(const char *path, char *buf, size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = read(fd, buf, max - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

/* A new random secret, written to a temporary file and linked into place: link() fails
 * when another process got there first, and then its secret is the one. */
static int srs_create(const char *path, char *err, size_t errlen)
{
    unsigned char r[32];
    char hex[2 * sizeof(r) + 2], tmp[SRS_PATH_MAX + 32];
    int fd, rc = -1;

    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        snprintf(err, errlen, "no random bytes for the SRS secret");
        return -1;
    }
    for (size_t i = 0; i < sizeof(r); i++)
        snprintf(hex + 2 * i, 3, "%02x", r[i]);
    hex[2 * sizeof(r)] = '\n';
    hex[2 * sizeof(r) + 1] = '\0';
    explicit_bzero(r, sizeof(r));
    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto out;
    if (write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex) || fsync(fd) != 0) {
        close(fd);
        goto out_unlink;
    }
    close(fd);
    if (link(tmp, path) != 0 && errno != EEXIST)
        goto out_unlink;
    rc = 0;
out_unlink:
    unlink(tmp);
out:
    if (rc)
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
    explicit_bzero(hex, sizeof(hex));
    return rc;
}

int srs_keys_load(const char *data_dir, struct srs_keys *k, char *err, size_t errlen)
{
    char path[SRS_PATH_MAX], buf[SRS_KEYS_MAX * (SRS_KEY_MAX + 2) + 256];
    int rc = -1;

    snprintf(path, sizeof(path), "%s/srs.key", data_dir);
    if (srs_read_file(path, buf, sizeof(buf)) != 0) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            return -1;
        }
        if (srs_create(path, err, errlen) != 0)
            return -1;
        if (srs_read_file(path, buf, sizeof(buf)) != 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            return -1;
        }
    }
    if (srs_keys_parse(buf, k) == 0)
        rc = 0;
    else
        snprintf(err, errlen, "%s holds no secret", path);
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Hash and timestamp
 * ------------------------------------------------------------------------------------ */

/* The first SRS_HASH_LEN characters of base64(HMAC-SHA1(key, lower(a) lower(b) lower(c))). */
static int srs_hash(const char *key, const char *a, const char *b, const char *c, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char data[3 * 320], enc[64];
    size_t n = 0;
    const char *parts[3] = {a, b, c};

    for (int i = 0; i < 3; i++)
        for (const char *p = parts[i]; *p; p++) {
            if (n + 1 >= sizeof(data))
                return -1;
            data[n++] = (char)tolower((unsigned char)*p);
        }
    if (!HMAC(EVP_sha1(), key, (int)strlen(key), (const unsigned char *)data, n, md, &mdlen))
        return -1;
    if (b64_encode(md, mdlen, enc, sizeof(enc)) < SRS_HASH_LEN)
        return -1;
    memcpy(out, enc, SRS_HASH_LEN);
    out[SRS_HASH_LEN] = '\0';
    return 0;
}

/* Does hash match the data under any of the keys? */
static int srs_hash_ok(const struct srs_keys *k, const char *hash, const char *a, const char *b,
                       const char *c)
{
    char want[SRS_HASH_LEN + 1];

    if (strlen(hash) != SRS_HASH_LEN)
        return 0;
    for (size_t i = 0; i < k->n; i++)
        if (srs_hash(k->key[i], a, b, c, want) == 0 && strcasecmp(want, hash) == 0)
            return 1;
    return 0;
}

static void srs_stamp(int64_t now, char out[3])
{
    unsigned days = (unsigned)((now / 86400) % 1024);

    out[0] = srs_b32[(days >> 5) & 31];
    out[1] = srs_b32[days & 31];
    out[2] = '\0';
}

/* Is a two-character stamp at most SRS_MAX_AGE days old? */
static int srs_stamp_ok(const char *tt, int64_t now)
{
    const char *p0, *p1;
    unsigned then, today = (unsigned)((now / 86400) % 1024);

    if (strlen(tt) != 2)
        return 0;
    p0 = strchr(srs_b32, toupper((unsigned char)tt[0]));
    p1 = strchr(srs_b32, toupper((unsigned char)tt[1]));
    if (!p0 || !p1 || !tt[0] || !tt[1])
        return 0;
    then = (unsigned)((p0 - srs_b32) << 5 | (p1 - srs_b32));
    return (today + 1024 - then) % 1024 <= SRS_MAX_AGE;
}

/* ---------------------------------------------------------------------------------------
 * Rewriting
 * ------------------------------------------------------------------------------------ */

int srs_is_srs(const char *local, size_t len)
{
    return len >= 5 && strncasecmp(local, "SRS", 3) == 0 && (local[3] == '0' || local[3] == '1') &&
           strchr("=+-", local[4]) != NULL;
}

/* Splits addr at its last '@' into local and domain (bounded copies). */
static int srs_split(const char *addr, char *local, size_t llen, char *domain, size_t dlen)
{
    const char *at = strrchr(addr, '@');

    if (!at || at == addr || !at[1] || (size_t)(at - addr) >= llen || strlen(at + 1) >= dlen)
        return -1;
    memcpy(local, addr, (size_t)(at - addr));
    local[at - addr] = '\0';
    snprintf(domain, dlen, "%s", at + 1);
    return 0;
}

/* Takes the next '='-terminated field of *p into out. */
static int srs_field(const char **p, char *out, size_t outlen)
{
    const char *eq = strchr(*p, '=');
    size_t n;

    if (!eq)
        return -1;
    n = (size_t)(eq - *p);
    if (n == 0 || n >= outlen)
        return -1;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p = eq + 1;
    return 0;
}

static int srs_fits(char *out, size_t outlen, int n)
{
    const char *at = n > 0 && (size_t)n < outlen ? strrchr(out, '@') : NULL;
    return at && (size_t)(at - out) <= SRS_LOCAL_MAX ? 0 : -1;
}

int srs_forward(const struct srs_keys *k, const char *sender, const char *fwd_domain, int64_t now,
                char *out, size_t outlen)
{
    char local[320], domain[256], hash[SRS_HASH_LEN + 1], tt[3], first[256], oldhash[64];
    const char *p;
    int n;

    if (!k || k->n == 0 || srs_split(sender, local, sizeof(local), domain, sizeof(domain)) != 0)
        return -1;
    if (srs_is_srs(local, strlen(local)) && local[3] == '0') {
        /* SRS0 at another forwarder: point back to that forwarder, keep its part. */
        p = local + 4;
        if (srs_hash(k->key[0], domain, p, "", hash) != 0)
            return -1;
        n = snprintf(out, outlen, "SRS1=%s=%s=%s@%s", hash, domain, p, fwd_domain);
        return srs_fits(out, outlen, n);
    }
    if (srs_is_srs(local, strlen(local))) {
        /* SRS1: keep the first forwarder and its part, re-sign for ourselves. */
        p = local + 5;
        if (srs_field(&p, oldhash, sizeof(oldhash)) != 0 ||
            srs_field(&p, first, sizeof(first)) != 0 || !*p)
            return -1;
        /* p is the rest with its leading separator ("=HHH=TT=..."), as in the SRS0 case */
        if (srs_hash(k->key[0], first, p, "", hash) != 0)
            return -1;
        n = snprintf(out, outlen, "SRS1=%s=%s=%s@%s", hash, first, p, fwd_domain);
        return srs_fits(out, outlen, n);
    }
    srs_stamp(now, tt);
    if (srs_hash(k->key[0], tt, domain, local, hash) != 0)
        return -1;
    n = snprintf(out, outlen, "SRS0=%s=%s=%s=%s@%s", hash, tt, domain, local, fwd_domain);
    return srs_fits(out, outlen, n);
}

int srs_reverse(const struct srs_keys *k, const char *addr, int64_t now, char *out, size_t outlen)
{
    char local[320], domain[256], hash[64], tt[64], odom[256];
    const char *p;
    int n;

    if (srs_split(addr, local, sizeof(local), domain, sizeof(domain)) != 0 ||
        !srs_is_srs(local, strlen(local)))
        return 1;
    if (!k || k->n == 0)
        return -1;
    p = local + 5;
    if (srs_field(&p, hash, sizeof(hash)) != 0)
        return -1;
    if (local[3] == '1') {
        if (srs_field(&p, odom, sizeof(odom)) != 0 || !*p)
            return -1; /* p: "=HHH=TT=...", the SRS0 part as hashed */
        if (!srs_hash_ok(k, hash, odom, p, ""))
            return -1;
        n = snprintf(out, outlen, "SRS0%s@%s", p, odom);
        return n > 0 && (size_t)n < outlen ? 0 : -1;
    }
    if (srs_field(&p, tt, sizeof(tt)) != 0 || srs_field(&p, odom, sizeof(odom)) != 0 || !*p)
        return -1;
    if (!srs_stamp_ok(tt, now) || !srs_hash_ok(k, hash, tt, odom, p))
        return -1;
    n = snprintf(out, outlen, "%s@%s", p, odom);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}
