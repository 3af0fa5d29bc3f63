/*
 * dkim.c — DKIM signatures (RFC 6376) for outbound mail: rsa-sha256, relaxed/relaxed.
 *
 * Each hosted domain may have one RSA-2048 key, kept as directory settings of the domain
 * ("dkim.key": PKCS#8 PEM, "dkim.selector"), so the key goes away with the domain. The
 * queue signs a message once, when it is submitted (queue.c says why). The verifier here
 * takes the public key directly (no DNS): it serves the unit tests and diagnostics.
 *
 * Signed fields: those of DKIM_HEADERS present in the message, every instance, picked
 * from the bottom up as §5.4.2 says; From is signed once more than it occurs, so that a
 * From added in transit breaks the signature (over-signing, §8.15).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "mail/dkim.h"
#include "mail/mime.h"
#include "mail/mail.h"

#define DKIM_MAX_FIELDS 1000 /* header fields looked at; more is not a real message */
#define DKIM_SIG_MAX    1024 /* bytes of an RSA signature (8192-bit keys) */
#define DKIM_PUB_MAX    2048 /* base64 SubjectPublicKeyInfo */

static const char *const DKIM_HEADERS[] = {
    "from",         "to",           "cc",       "subject",     "date",       "message-id",
    "mime-version", "content-type", "reply-to", "in-reply-to", "references",
};
#define DKIM_NHEADERS (sizeof(DKIM_HEADERS) / sizeof(DKIM_HEADERS[0]))

/* ---------------------------------------------------------------------------------------
 * A growable byte buffer; after a failed allocation it stays failed (oom).
 * ------------------------------------------------------------------------------------ */
/* Hands over a MIME-library buffer's string (growable output here is mime.h's buffer, which
 * checks its arithmetic): "" when nothing was written, NULL when out of memory. */
static char *dkim_take(struct buf *b, size_t *outlen)
{
    if (b->oom || !b->p) {
        free(b->p);
        if (b->oom)
            return NULL;
        b->p = calloc(1, 1);
        b->len = 0;
    }
    if (outlen)
        *outlen = b->len;
    return b->p;
}

static int dkim_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* ---------------------------------------------------------------------------------------
 * Canonicalization (§3.4.2, §3.4.4)
 * ------------------------------------------------------------------------------------ */

/* Appends the relaxed form of one field: name lower-cased, WSP around the colon dropped,
 * unfolded, WSP runs as one SP, no WSP at either end of the value, then CRLF. */
static void dkim_canon_header_into(struct buf *b, const char *f, size_t len)
{
    const char *colon = memchr(f, ':', len);
    size_t nend = colon ? (size_t)(colon - f) : len, i;
    int pending_sp = 0, started = 0;

    while (nend > 0 && dkim_wsp(f[nend - 1]))
        nend--;
    for (i = 0; i < nend; i++) {
        char c = (char)tolower((unsigned char)f[i]);
        buf_put(b, &c, 1);
    }
    buf_put(b, ":", 1);
    for (i = colon ? (size_t)(colon - f) + 1 : len; i < len; i++) {
        char c = f[i];
        if (c == '\r' || c == '\n')
            continue; /* unfolding: the WSP after the line break is kept as WSP */
        if (dkim_wsp(c)) {
            pending_sp = started;
            continue;
        }
        if (pending_sp)
            buf_put(b, " ", 1);
        pending_sp = 0;
        started = 1;
        buf_put(b, &c, 1);
    }
    buf_put(b, "\r\n", 2);
}

char *dkim_canon_header(const char *field, size_t len, size_t *outlen)
{
    struct buf b = {0};

    dkim_canon_header_into(&b, field, len);
    return dkim_take(&b, outlen);
}

typedef void (*dkim_sink)(void *ctx, const char *data, size_t len);

/* Relaxed body: WSP runs become one SP, WSP at line ends goes, empty lines at the end go,
 * and a non-empty body ends with CRLF. Streams into sink so big bodies are not copied. */
static void dkim_canon_body_stream(const char *body, size_t len, dkim_sink sink, void *ctx)
{
    size_t pos = 0, empty = 0;

    while (pos < len) {
        const char *crlf = NULL;
        for (size_t k = pos; k + 1 < len; k++) {
            if (body[k] == '\r' && body[k + 1] == '\n') {
                crlf = body + k;
                break;
            }
        }
        size_t end = crlf ? (size_t)(crlf - body) : len, last = end;
        while (last > pos && dkim_wsp(body[last - 1]))
            last--;
        if (last == pos) {
            empty++;
        } else {
            for (; empty > 0; empty--)
                sink(ctx, "\r\n", 2);
            size_t run = pos;
            for (size_t k = pos; k < last; k++) {
                if (!dkim_wsp(body[k]))
                    continue;
                sink(ctx, body + run, k - run);
                sink(ctx, " ", 1);
                while (k + 1 < last && dkim_wsp(body[k + 1]))
                    k++;
                run = k + 1;
            }
            sink(ctx, body + run, last - run);
            sink(ctx, "\r\n", 2);
        }
        pos = crlf ? end + 2 : len;
    }
}

static void dkim_sink_buf(void *ctx, const char *data, size_t len)
{
    buf_put(ctx, data, len);
}

static void dkim_sink_digest(void *ctx, const char *data, size_t len)
{
    EVP_DigestUpdate(ctx, data, len);
}

char *dkim_canon_body(const char *body, size_t len, size_t *outlen)
{
    struct buf b = {0};

    dkim_canon_body_stream(body, len, dkim_sink_buf, &b);
    return dkim_take(&b, outlen);
}

/* ---------------------------------------------------------------------------------------
 * The message's header fields
 * ------------------------------------------------------------------------------------ */
struct dkim_field {
    const char *p;
    size_t len; /* without the final CRLF */
};

struct dkim_msg {
    struct dkim_field f[DKIM_MAX_FIELDS];
    size_t n;
    const char *body;
    size_t body_len;
};

/* Splits the header into fields (continuation lines start with WSP) and finds the body. */
static void dkim_parse(const char *msg, size_t len, struct dkim_msg *m)
{
    size_t pos = 0;

    m->n = 0;
    m->body = msg + len;
    m->body_len = 0;
    while (pos < len) {
        const char *lf = memchr(msg + pos, '\n', len - pos);
        size_t eol = lf ? (size_t)(lf - msg) + 1 : len;
        size_t content = eol - pos;
        while (content > 0 && (msg[pos + content - 1] == '\n' || msg[pos + content - 1] == '\r'))
            content--;
        if (content == 0) { /* the empty line: the body follows */
            m->body = msg + eol;
            m->body_len = len - eol;
            return;
        }
        if (dkim_wsp(msg[pos]) && m->n > 0)
            m->f[m->n - 1].len = pos + content - (size_t)(m->f[m->n - 1].p - msg);
        else if (m->n < DKIM_MAX_FIELDS)
            m->f[m->n++] = (struct dkim_field){msg + pos, content};
        pos = eol;
    }
}

static int dkim_field_is(const struct dkim_field *f, const char *name, size_t nlen)
{
    size_t i = nlen;

    if (f->len <= nlen || strncasecmp(f->p, name, nlen) != 0)
        return 0;
    while (i < f->len && dkim_wsp(f->p[i]))
        i++;
    return i < f->len && f->p[i] == ':';
}

/* The instance of name to hash next: the last one not used yet (§5.4.2). used[] counts
 * per field how often it was taken. NULL when none is left (contributes nothing). */
static const struct dkim_field *dkim_pick(const struct dkim_msg *m, const char *name, size_t nlen,
                                          unsigned char *used)
{
    for (size_t i = m->n; i-- > 0;) {
        if (!used[i] && dkim_field_is(&m->f[i], name, nlen)) {
            used[i] = 1;
            return &m->f[i];
        }
    }
    return NULL;
}

/* Feeds the canonical fields h= lists (colon-separated, FWS allowed) into the digest. */
static int dkim_hash_fields(EVP_MD_CTX *md, const struct dkim_msg *m, const char *h)
{
    unsigned char *used = calloc(m->n + 1, 1);
    struct buf b = {0};

    if (!used)
        return -1;
    for (const char *p = h; *p;) {
        while (*p == ':' || isspace((unsigned char)*p))
            p++;
        size_t n = strcspn(p, ":");
        size_t nlen = n;
        while (nlen > 0 && isspace((unsigned char)p[nlen - 1]))
            nlen--;
        if (nlen > 0) {
            const struct dkim_field *f = dkim_pick(m, p, nlen, used);
            if (f) {
                b.len = 0;
                dkim_canon_header_into(&b, f->p, f->len);
                if (!b.oom)
                    EVP_DigestUpdate(md, b.p, b.len);
            }
        }
        p += n;
    }
    free(used);
    free(b.p);
    return b.oom ? -1 : 0;
}

/* The base64 SHA-256 of the canonical body (bh=). */
static int dkim_body_hash(const char *body, size_t len, char *out, size_t outlen)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok;

    ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    if (ok)
        dkim_canon_body_stream(body, len, dkim_sink_digest, md);
    ok = ok && EVP_DigestFinal_ex(md, d, &dlen) == 1;
    EVP_MD_CTX_free(md);
    return ok && b64_encode(d, dlen, out, outlen) > 0 ? 0 : -1;
}

/* The canonical DKIM-Signature field itself, without its final CRLF (§3.7). */
static int dkim_hash_self(EVP_MD_CTX *md, const char *field, size_t len)
{
    struct buf b = {0};

    dkim_canon_header_into(&b, field, len);
    if (b.oom)
        return -1;
    EVP_DigestUpdate(md, b.p, b.len - 2);
    free(b.p);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Keys
 * ------------------------------------------------------------------------------------ */

static EVP_PKEY *dkim_load_key(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;

    BIO_free(bio);
    return k;
}

int dkim_pubkey_b64(const char *key_pem, char *out, size_t outlen)
{
    EVP_PKEY *k = dkim_load_key(key_pem);
    unsigned char *der = NULL;
    int n = k ? i2d_PUBKEY(k, &der) : -1;
    int rc = n > 0 && b64_encode(der, (size_t)n, out, outlen) > 0 ? 0 : -1;

    OPENSSL_free(der);
    EVP_PKEY_free(k);
    return rc;
}

static char *dkim_keygen(void)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL, *data;
    long n;

    if (!k || !bio || PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL) != 1)
        goto out;
    n = BIO_get_mem_data(bio, &data);
    if (n > 0 && (pem = malloc((size_t)n + 1))) {
        memcpy(pem, data, (size_t)n);
        pem[n] = '\0';
    }
out:
    BIO_free(bio);
    EVP_PKEY_free(k);
    return pem;
}

/* ---------------------------------------------------------------------------------------
 * Signing
 * ------------------------------------------------------------------------------------ */

/* h=: every listed field as often as it occurs, From once more (over-signed). */
static void dkim_h_list(const struct dkim_msg *m, struct buf *h)
{
    for (size_t i = 0; i < DKIM_NHEADERS; i++) {
        size_t nlen = strlen(DKIM_HEADERS[i]), count = 0;
        for (size_t j = 0; j < m->n; j++)
            count += (size_t)dkim_field_is(&m->f[j], DKIM_HEADERS[i], nlen);
        if (i == 0)
            count++;
        for (; count > 0; count--) {
            if (h->len)
                buf_put(h, ":", 1);
            buf_puts(h, DKIM_HEADERS[i]);
        }
    }
}

/* Signs the digest input prepared in md; appends base64 b=, folded every 72 chars. */
static int dkim_sign_digest(EVP_MD_CTX *md, struct buf *out)
{
    unsigned char sig[DKIM_SIG_MAX];
    char b64[DKIM_SIG_MAX * 2];
    size_t slen = sizeof(sig), n;

    if (EVP_DigestSignFinal(md, sig, &slen) != 1)
        return -1;
    n = b64_encode(sig, slen, b64, sizeof(b64));
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i += 72) {
        if (i)
            buf_puts(out, "\r\n\t ");
        buf_put(out, b64 + i, n - i < 72 ? n - i : 72);
    }
    buf_puts(out, "\r\n");
    return 0;
}

int dkim_sign(const char *key_pem, const char *domain, const char *selector, const char *msg,
              size_t len, time_t now, char **sig, char *err, size_t errlen)
{
    struct dkim_msg *m = malloc(sizeof(*m));
    struct buf h = {0}, out = {0};
    EVP_PKEY *key = dkim_load_key(key_pem);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char bh[128], line[512];

    if (!m || !key || !md) {
        snprintf(err, errlen, "%s", key ? "out of memory" : "unreadable DKIM key");
        goto err;
    }
    dkim_parse(msg, len, m);
    dkim_h_list(m, &h);
    if (dkim_body_hash(m->body, m->body_len, bh, sizeof(bh)) != 0 || h.oom) {
        snprintf(err, errlen, "cannot hash the body");
        goto err;
    }
    snprintf(line, sizeof(line),
             "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=%s;\r\n\tt=%lld; ",
             domain, selector, (long long)now);
    buf_puts(&out, line);
    buf_puts(&out, "h=");
    buf_put(&out, h.p, h.len);
    buf_puts(&out, ";\r\n\tbh=");
    buf_puts(&out, bh);
    buf_puts(&out, ";\r\n\tb=");
    /* The field as hashed ends with the empty b=; the value is appended after. */
    if (out.oom || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        dkim_hash_fields(md, m, h.p) != 0 || dkim_hash_self(md, out.p, out.len) != 0 ||
        dkim_sign_digest(md, &out) != 0 || out.oom) {
        snprintf(err, errlen, "RSA signing failed");
        goto err;
    }
    *sig = out.p;
    free(h.p);
    free(m);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    return 0;
err:
    free(out.p);
    free(h.p);
    free(m);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    return -1;
}

/* ---------------------------------------------------------------------------------------
 * Verifying (one signature, key given)
 * ------------------------------------------------------------------------------------ */

/* The value of tag in a tag-list (§3.2), FWS removed, into out. 0 or -1 when absent. */
static int dkim_tag(const char *list, size_t len, const char *tag, char *out, size_t outlen)
{
    size_t tlen = strlen(tag), pos = 0;

    while (pos < len) {
        const char *semi = memchr(list + pos, ';', len - pos);
        size_t end = semi ? (size_t)(semi - list) : len, i = pos, o = 0;
        while (i < end && isspace((unsigned char)list[i]))
            i++;
        if (end - i > tlen && strncmp(list + i, tag, tlen) == 0) {
            size_t j = i + tlen;
            while (j < end && isspace((unsigned char)list[j]))
                j++;
            if (j < end && list[j] == '=') {
                for (j++; j < end && o + 1 < outlen; j++)
                    if (!isspace((unsigned char)list[j]))
                        out[o++] = list[j];
                out[o] = '\0';
                return 0;
            }
        }
        pos = end + 1;
    }
    return -1;
}

/* The signature field with the b= value deleted (§3.5), malloc'd. */
static char *dkim_strip_b(const struct dkim_field *f, size_t *outlen)
{
    struct buf b = {0};
    const char *p = f->p, *end = f->p + f->len;
    const char *colon = memchr(p, ':', f->len);
    const char *tag = colon ? colon + 1 : end;

    buf_put(&b, p, (size_t)(tag - p));
    while (tag < end) {
        const char *semi = memchr(tag, ';', (size_t)(end - tag));
        const char *tend = semi ? semi : end, *q = tag;
        while (q < tend && isspace((unsigned char)*q))
            q++;
        if (q < tend && *q == 'b' && q + 1 < tend) {
            const char *eq = q + 1;
            while (eq < tend && isspace((unsigned char)*eq))
                eq++;
            if (eq < tend && *eq == '=') { /* b=: keep up to '=', drop the value */
                buf_put(&b, tag, (size_t)(eq + 1 - tag));
                if (semi)
                    buf_put(&b, ";", 1);
                tag = semi ? semi + 1 : end;
                continue;
            }
        }
        buf_put(&b, tag, (size_t)(tend - tag) + (semi ? 1 : 0));
        tag = semi ? semi + 1 : end;
    }
    return dkim_take(&b, outlen);
}

static int dkim_check_sig(const struct dkim_msg *m, const struct dkim_field *sf, const char *h,
                          const char *b64sig, const char *pub, char *err, size_t errlen)
{
    unsigned char sig[DKIM_SIG_MAX], der[DKIM_PUB_MAX];
    ssize_t slen = b64_decode(b64sig, strlen(b64sig), sig, sizeof(sig), 0);
    ssize_t dlen = b64_decode(pub, strlen(pub), der, sizeof(der), 0);
    const unsigned char *dp = der;
    EVP_PKEY *key = dlen > 0 ? d2i_PUBKEY(NULL, &dp, dlen) : NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t stripped_len = 0;
    char *stripped = dkim_strip_b(sf, &stripped_len);
    int ok = 0;

    if (slen <= 0 || !key || !md || !stripped)
        snprintf(err, errlen, "%s", !key ? "unusable public key" : "malformed b=");
    else if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
             dkim_hash_fields(md, m, h) != 0 || dkim_hash_self(md, stripped, stripped_len) != 0)
        snprintf(err, errlen, "cannot hash the header");
    else if (EVP_DigestVerifyFinal(md, sig, (size_t)slen) != 1)
        snprintf(err, errlen, "signature does not verify");
    else
        ok = 1;
    free(stripped);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    return ok ? 0 : -1;
}

int dkim_verify(const char *msg, size_t len, const char *pubkey_b64, char *err, size_t errlen)
{
    struct dkim_msg *m = malloc(sizeof(*m));
    const struct dkim_field *sf = NULL;
    char a[32], c[64], h[1024], bh[128], mybh[128], b[DKIM_SIG_MAX * 2];
    int rc = -1;

    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    dkim_parse(msg, len, m);
    for (size_t i = 0; i < m->n && !sf; i++)
        if (dkim_field_is(&m->f[i], "dkim-signature", 14))
            sf = &m->f[i];
    if (!sf) {
        snprintf(err, errlen, "no DKIM-Signature");
        goto out;
    }
    const char *tags = memchr(sf->p, ':', sf->len) + 1;
    size_t tlen = sf->len - (size_t)(tags - sf->p);
    if (dkim_tag(tags, tlen, "a", a, sizeof(a)) || dkim_tag(tags, tlen, "h", h, sizeof(h)) ||
        dkim_tag(tags, tlen, "bh", bh, sizeof(bh)) || dkim_tag(tags, tlen, "b", b, sizeof(b))) {
        snprintf(err, errlen, "missing a=, h=, bh= or b=");
        goto out;
    }
    if (dkim_tag(tags, tlen, "c", c, sizeof(c)) != 0)
        snprintf(c, sizeof(c), "simple/simple");
    if (strcmp(a, "rsa-sha256") != 0 || strcmp(c, "relaxed/relaxed") != 0) {
        snprintf(err, errlen, "unsupported a=%s c=%s", a, c);
        goto out;
    }
    if (dkim_body_hash(m->body, m->body_len, mybh, sizeof(mybh)) != 0 || strcmp(bh, mybh) != 0) {
        snprintf(err, errlen, "body hash mismatch");
        goto out;
    }
    rc = dkim_check_sig(m, sf, h, b, pubkey_b64, err, errlen);
out:
    free(m);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Per-domain keys in the directory
 * ------------------------------------------------------------------------------------ */

static int dkim_valid_selector(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 63 || s[0] == '.' || s[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}

/* The domain's key and selector; STORE_ENOTFOUND when DKIM is off. */
static int dkim_domain_key(struct store *s, const char *domain, char **pem, char *sel,
                           size_t sellen)
{
    void *v = NULL;
    size_t n;
    int rc = store_setting_get(s, domain, "dkim.key", &v, &n, NULL);

    if (rc != STORE_OK)
        return rc;
    *pem = v;
    v = NULL;
    if (store_setting_get(s, domain, "dkim.selector", &v, &n, NULL) == STORE_OK && n > 0)
        snprintf(sel, sellen, "%s", (char *)v);
    else
        snprintf(sel, sellen, "polaris");
    free(v);
    return STORE_OK;
}

int dkim_domain_enable(struct store *s, const char *domain, const char *selector,
                       struct store_err *err)
{
    struct store_domain d;
    char *pem = NULL, cur[64];
    int rc;

    if (!dkim_valid_selector(selector)) {
        err->code = STORE_EINVAL;
        snprintf(err->msg, sizeof(err->msg),
                 "selector '%s' must be 1-63 letters, digits, '-', '_' or '.'", selector);
        return STORE_EINVAL;
    }
    if ((rc = store_domain_get(s, domain, &d, err)) != STORE_OK)
        return rc;
    /* Enabling again with the same selector keeps the published key; a new selector is
     * a rotation and gets a new key. */
    if (dkim_domain_key(s, d.name, &pem, cur, sizeof(cur)) == STORE_OK) {
        free(pem);
        if (strcmp(cur, selector) == 0)
            return STORE_OK;
    }
    if (!(pem = dkim_keygen())) {
        err->code = STORE_ENOMEM;
        snprintf(err->msg, sizeof(err->msg), "cannot generate an RSA key");
        return STORE_ENOMEM;
    }
    rc = store_setting_put(s, d.name, "dkim.selector", selector, strlen(selector), err);
    if (rc == STORE_OK)
        rc = store_setting_put(s, d.name, "dkim.key", pem, strlen(pem), err);
    OPENSSL_cleanse(pem, strlen(pem));
    free(pem);
    return rc;
}

int dkim_domain_disable(struct store *s, const char *domain, struct store_err *err)
{
    struct store_domain d;
    int rc = store_domain_get(s, domain, &d, err);

    if (rc != STORE_OK)
        return rc;
    rc = store_setting_del(s, d.name, "dkim.key", err);
    if (rc != STORE_OK && rc != STORE_ENOTFOUND)
        return rc;
    rc = store_setting_del(s, d.name, "dkim.selector", err);
    return rc == STORE_ENOTFOUND ? STORE_OK : rc;
}

int dkim_domain_record(struct store *s, const char *domain, char *name, size_t namelen, char *value,
                       size_t valuelen)
{
    char *pem = NULL, sel[64], pub[DKIM_PUB_MAX];
    int rc = dkim_domain_key(s, domain, &pem, sel, sizeof(sel));

    if (rc != STORE_OK)
        return rc;
    rc = dkim_pubkey_b64(pem, pub, sizeof(pub));
    OPENSSL_cleanse(pem, strlen(pem));
    free(pem);
    if (rc != 0)
        return STORE_EIO;
    snprintf(name, namelen, "%s._domainkey", sel);
    snprintf(value, valuelen, "v=DKIM1; k=rsa; p=%s", pub);
    return STORE_OK;
}

int dkim_domain_sign(struct store *s, const char *domain, const char *msg, size_t len, char **sig,
                     char *err, size_t errlen)
{
    char *pem = NULL, sel[64];
    int rc = dkim_domain_key(s, domain, &pem, sel, sizeof(sel));

    if (rc == STORE_ENOTFOUND)
        return 1;
    if (rc != STORE_OK) {
        snprintf(err, errlen, "cannot read the DKIM key of %s", domain);
        return -1;
    }
    rc = dkim_sign(pem, domain, sel, msg, len, time(NULL), sig, err, errlen);
    OPENSSL_cleanse(pem, strlen(pem));
    free(pem);
    return rc;
}
