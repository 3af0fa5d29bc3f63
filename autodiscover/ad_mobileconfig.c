/*
 * ad_mobileconfig.c — the Apple configuration profile: an authenticated GET
 * /profile.mobileconfig on the tenant's hosts gives a property list that sets the mailbox
 * up on iOS, iPadOS and macOS, signed (PKCS#7) with the server's certificate so that the
 * device shows it as verified.
 *
 *  - Enhanced mailboxes get an Exchange ActiveSync payload (com.apple.eas.account) on the
 *    tenant's label host: mail, calendars and contacts;
 *  - Basic mailboxes get IMAP and SMTP (com.apple.mail.managed), 993 and 465 over TLS.
 *
 * The password is never in the profile: the device asks for it when installing.
 * Identifiers and UUIDs are stable per user and device type (an HMAC under a per-domain
 * key kept in the directory), so downloading the profile again replaces the installed one
 * instead of adding a second account.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "autodiscover/ad_int.h"

#define AD_MC_CTYPE   "application/x-apple-aspen-config"
#define AD_MC_KEY     "autodiscover.profile_key" /* domain setting: 32 random bytes, hex */
#define AD_MC_KEYLEN  32
#define AD_MC_PEM_MAX (1024 * 1024)

struct ad_mc {
    const struct config *cfg;
    const struct store_domain *d;
    const struct store_account *acct;
    const char *device;
    unsigned char key[AD_MC_KEYLEN];
    char ident[640]; /* reverse-DNS identifier prefix of this user's profile */
};

/* ---------------------------------------------------------------------------------------
 * Stable identifiers
 * ------------------------------------------------------------------------------------ */

static const char *ad_mc_device(struct http_req *r)
{
    static const char *const known[] = {"iphone", "ipad", "mac"};
    const char *ua = http_req_header(r, "User-Agent");
    char q[16];

    if (ad_query_get(r, "device", q, sizeof(q)) == 0)
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            if (strcasecmp(q, known[i]) == 0)
                return known[i];
    if (ua && strstr(ua, "iPad"))
        return "ipad";
    if (ua && strstr(ua, "Macintosh") && !strstr(ua, "iPhone"))
        return "mac";
    return "iphone";
}

static int ad_mc_hex(const char *s, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return s[2 * n] == '\0' ? 0 : -1;
}

/* The domain's profile key: read, or made and stored on first use. Read back after the
 * write so that two first downloads racing each other end up with the same key. */
static int ad_mc_key(struct store *st, const char *domain, unsigned char *key)
{
    void *val = NULL;
    size_t len = 0;
    char hex[2 * AD_MC_KEYLEN + 1];
    int rc;

    rc = store_setting_get(st, domain, AD_MC_KEY, &val, &len, NULL);
    if (rc == STORE_ENOTFOUND) {
        unsigned char k[AD_MC_KEYLEN];
        if (RAND_bytes(k, sizeof(k)) != 1)
            return -1;
        for (size_t i = 0; i < sizeof(k); i++)
            snprintf(hex + 2 * i, 3, "%02x", k[i]);
        if (store_setting_put(st, domain, AD_MC_KEY, hex, 2 * AD_MC_KEYLEN, NULL) != STORE_OK)
            return -1;
        rc = store_setting_get(st, domain, AD_MC_KEY, &val, &len, NULL);
    }
    if (rc != STORE_OK)
        return -1;
    rc = len == 2 * AD_MC_KEYLEN ? ad_mc_hex(val, key, AD_MC_KEYLEN) : -1;
    free(val);
    return rc;
}

/* A UUID (RFC 9562 layout, version 8: vendor-specific) from HMAC-SHA256(key, address,
 * payload type, device type). */
static void ad_mc_uuid(const struct ad_mc *c, const char *payload, char *out, size_t outlen)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char msg[1024];
    int n = snprintf(msg, sizeof(msg), "%s%c%s%c%s", c->acct->address, 0, payload, 0, c->device);

    HMAC(EVP_sha256(), c->key, AD_MC_KEYLEN, (const unsigned char *)msg, (size_t)n, mac, &maclen);
    mac[6] = (unsigned char)((mac[6] & 0x0f) | 0x80);
    mac[8] = (unsigned char)((mac[8] & 0x3f) | 0x80);
    snprintf(out, outlen, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
             mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], mac[6], mac[7], mac[8], mac[9],
             mac[10], mac[11], mac[12], mac[13], mac[14], mac[15]);
}

/* "example.net" → "net.example". */
static void ad_mc_reverse(const char *name, char *out, size_t outlen)
{
    const char *end = name + strlen(name);
    size_t o = 0;

    while (end > name && o + 1 < outlen) {
        const char *dot = end;
        size_t l;
        while (dot > name && dot[-1] != '.')
            dot--;
        if (o)
            out[o++] = '.';
        l = (size_t)(end - dot);
        if (l > outlen - o - 1)
            l = outlen - o - 1;
        memcpy(out + o, dot, l);
        o += l;
        end = dot > name ? dot - 1 : name;
    }
    out[o] = '\0';
}

/* "<web_base reversed>.<label>.<local part>.<device>": reverse-DNS, only [A-Za-z0-9.-]. */
static void ad_mc_ident(struct ad_mc *c)
{
    char rev[256];

    ad_mc_reverse(c->cfg->web_base, rev, sizeof(rev));
    snprintf(c->ident, sizeof(c->ident), "%s.%s.%s.%s", rev, c->d->label, c->acct->localpart,
             c->device);
    for (char *p = c->ident; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-'))
            *p = '-';
}

/* ---------------------------------------------------------------------------------------
 * The property list
 * ------------------------------------------------------------------------------------ */

static void ad_mc_str(struct buf *b, const char *key, const char *val)
{
    ad_buf_elem(b, 6, "key", key);
    ad_buf_elem(b, 6, "string", val);
}

static void ad_mc_int(struct buf *b, const char *key, int v)
{
    ad_buf_elem(b, 6, "key", key);
    buf_printf(b, "      <integer>%d</integer>\n", v);
}

static void ad_mc_bool(struct buf *b, const char *key, int v)
{
    ad_buf_elem(b, 6, "key", key);
    buf_puts(b, v ? "      <true/>\n" : "      <false/>\n");
}

static void ad_mc_payload_head(struct buf *b, const struct ad_mc *c, const char *type,
                               const char *suffix, const char *name)
{
    char uuid[40], id[700];

    ad_mc_uuid(c, type, uuid, sizeof(uuid));
    snprintf(id, sizeof(id), "%s.%s", c->ident, suffix);
    ad_mc_str(b, "PayloadType", type);
    ad_mc_int(b, "PayloadVersion", 1);
    ad_mc_str(b, "PayloadIdentifier", id);
    ad_mc_str(b, "PayloadUUID", uuid);
    ad_mc_str(b, "PayloadDisplayName", name);
}

static void ad_mc_eas(struct buf *b, const struct ad_mc *c)
{
    char host[AD_HOST_MAX + 8];

    ad_label_host(c->cfg, c->d, host, sizeof(host));
    ad_mc_payload_head(b, c, "com.apple.eas.account", "eas", "Exchange ActiveSync");
    ad_mc_str(b, "PayloadDescription", "Mail, calendars and contacts over Exchange ActiveSync");
    ad_mc_str(b, "EmailAddress", c->acct->address);
    ad_mc_str(b, "UserName", c->acct->address);
    ad_mc_str(b, "Host", host);
    ad_mc_bool(b, "SSL", 1);
    ad_mc_int(b, "MailNumberOfPastDaysToSync", 0); /* no limit */
}

static void ad_mc_imap(struct buf *b, const struct ad_mc *c)
{
    const char *host = ad_mail_host(c->cfg);

    ad_mc_payload_head(b, c, "com.apple.mail.managed", "mail", "Mail (IMAP)");
    ad_mc_str(b, "PayloadDescription", "Mail over IMAP and SMTP");
    ad_mc_str(b, "EmailAccountDescription", c->acct->address);
    ad_mc_str(b, "EmailAccountType", "EmailTypeIMAP");
    ad_mc_str(b, "EmailAddress", c->acct->address);
    ad_mc_str(b, "IncomingMailServerAuthentication", "EmailAuthPassword");
    ad_mc_str(b, "IncomingMailServerHostName", host);
    ad_mc_int(b, "IncomingMailServerPortNumber", 993);
    ad_mc_bool(b, "IncomingMailServerUseSSL", 1);
    ad_mc_str(b, "IncomingMailServerUsername", c->acct->address);
    ad_mc_str(b, "OutgoingMailServerAuthentication", "EmailAuthPassword");
    ad_mc_str(b, "OutgoingMailServerHostName", host);
    ad_mc_int(b, "OutgoingMailServerPortNumber", 465);
    ad_mc_bool(b, "OutgoingMailServerUseSSL", 1);
    ad_mc_str(b, "OutgoingMailServerUsername", c->acct->address);
    ad_mc_bool(b, "OutgoingPasswordSameAsIncomingPassword", 1);
}

static void ad_mc_plist(struct buf *b, const struct ad_mc *c)
{
    char uuid[40], name[400];

    buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
                "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
                "<plist version=\"1.0\">\n<dict>\n"
                "  <key>PayloadContent</key>\n  <array>\n    <dict>\n");
    if (c->acct->type == STORE_ENHANCED)
        ad_mc_eas(b, c);
    else
        ad_mc_imap(b, c);
    buf_puts(b, "    </dict>\n  </array>\n");
    snprintf(name, sizeof(name), "%s", c->acct->address);
    ad_mc_uuid(c, "Configuration", uuid, sizeof(uuid));
    ad_buf_elem(b, 2, "key", "PayloadDisplayName");
    ad_buf_elem(b, 2, "string", name);
    ad_buf_elem(b, 2, "key", "PayloadDescription");
    ad_buf_elem(b, 2, "string",
                c->acct->type == STORE_ENHANCED ? "Sets up mail, calendars and contacts."
                                                : "Sets up mail.");
    ad_buf_elem(b, 2, "key", "PayloadOrganization");
    ad_buf_elem(b, 2, "string", c->d->name);
    ad_buf_elem(b, 2, "key", "PayloadIdentifier");
    ad_buf_elem(b, 2, "string", c->ident);
    ad_buf_elem(b, 2, "key", "PayloadUUID");
    ad_buf_elem(b, 2, "string", uuid);
    buf_puts(b, "  <key>PayloadType</key>\n  <string>Configuration</string>\n"
                "  <key>PayloadVersion</key>\n  <integer>1</integer>\n"
                "  <key>PayloadRemovalDisallowed</key>\n  <false/>\n"
                "</dict>\n</plist>\n");
}

/* ---------------------------------------------------------------------------------------
 * Signing
 * ------------------------------------------------------------------------------------ */

/* PKCS#7 SignedData (content attached, DER) by the server's certificate and key; the
 * rest of the certificate file (the chain) goes along so the device can build the path. */
static int ad_mc_sign(const struct config *cfg, const struct buf *in, struct buf *out)
{
    char err[256];
    char *cert_pem = tls_read_file(cfg->tls_cert, AD_MC_PEM_MAX, err, sizeof(err));
    char *key_pem = tls_read_file(cfg->tls_key, AD_MC_PEM_MAX, err, sizeof(err));
    BIO *cb = NULL, *kb = NULL, *data = NULL, *der = NULL;
    X509 *signer = NULL, *x;
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *pkey = NULL;
    PKCS7 *p7 = NULL;
    BUF_MEM *mem;
    int rc = -1;

    if (!cert_pem || !key_pem)
        goto out;
    cb = BIO_new_mem_buf(cert_pem, -1);
    kb = BIO_new_mem_buf(key_pem, -1);
    data = BIO_new_mem_buf(in->p, (int)in->len);
    der = BIO_new(BIO_s_mem());
    chain = sk_X509_new_null();
    if (!cb || !kb || !data || !der || !chain)
        goto out;
    signer = PEM_read_bio_X509(cb, NULL, NULL, NULL);
    pkey = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    if (!signer || !pkey)
        goto out;
    while ((x = PEM_read_bio_X509(cb, NULL, NULL, NULL)))
        if (!sk_X509_push(chain, x)) {
            X509_free(x);
            goto out;
        }
    p7 = PKCS7_sign(signer, pkey, chain, data, PKCS7_BINARY);
    if (!p7 || i2d_PKCS7_bio(der, p7) != 1)
        goto out;
    BIO_get_mem_ptr(der, &mem);
    buf_put(out, mem->data, mem->length);
    rc = out->oom ? -1 : 0;
out:
    if (rc != 0)
        log_error("autodiscover", "cannot sign the profile with %s: %s", cfg->tls_cert,
                  cert_pem && key_pem ? "OpenSSL refused" : err);
    PKCS7_free(p7);
    EVP_PKEY_free(pkey);
    X509_free(signer);
    sk_X509_pop_free(chain, X509_free);
    BIO_free(cb);
    BIO_free(kb);
    BIO_free(data);
    BIO_free(der);
    if (key_pem)
        explicit_bzero(key_pem, strlen(key_pem));
    free(key_pem);
    free(cert_pem);
    return rc;
}

enum http_action ad_mobileconfig_handler(struct http_req *r, enum http_phase phase, void *ctx)
{
    struct ad *a = ctx;
    struct ad_mc c = {.cfg = a->cfg, .d = http_req_tenant(r), .acct = http_req_account(r)};
    struct buf plist = {0}, signed_der = {0};
    char disp[400];
    const char *m = http_req_method(r);

    (void)phase;
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        http_add_header(r, "Allow", "GET, HEAD");
        http_respond_text(r, 405, "Method Not Allowed\n");
        return HTTP_RESPOND;
    }
    c.device = ad_mc_device(r);
    if (ad_mc_key(a->st, c.d->name, c.key) != 0) {
        http_respond_text(r, 503, "Service Unavailable\n");
        return HTTP_RESPOND;
    }
    ad_mc_ident(&c);
    ad_mc_plist(&plist, &c);
    explicit_bzero(c.key, sizeof(c.key));
    if (plist.oom || ad_mc_sign(a->cfg, &plist, &signed_der) != 0) {
        buf_free(&plist);
        buf_free(&signed_der);
        http_respond_text(r, 500, "Internal Server Error\n");
        return HTTP_RESPOND;
    }
    buf_free(&plist);
    snprintf(disp, sizeof(disp), "attachment; filename=\"%s.mobileconfig\"", c.d->name);
    http_add_header(r, "Content-Disposition", disp);
    http_add_header(r, "Cache-Control", "private, no-store");
    return ad_send(r, 200, AD_MC_CTYPE, &signed_der);
}
