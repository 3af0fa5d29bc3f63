/*
 * ad.c — the autodiscover engine object, its routes, and the helpers its files share:
 * the output buffer, host names, safe XML parsing and Basic authentication for POX.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libxml/parser.h>

#include "autodiscover/ad_int.h"

#define AD_AUTH_B64_MAX 1024 /* longest Basic credential (base64) considered */

struct ad *ad_new(struct store *st, const struct config *cfg)
{
    struct ad *a = calloc(1, sizeof(*a));

    if (!a)
        return NULL;
    a->st = st;
    a->cfg = cfg;
    a->auth = auth_new(st, cfg);
    if (!a->auth) {
        free(a);
        return NULL;
    }
    pthread_mutex_init(&a->enh_lock, NULL);
    return a;
}

int ad_register(struct ad *a, struct http_server *h)
{
    /* POX authenticates in its handler: a plain GET gets the redirect clients probe for. */
    const struct http_route routes[] = {
        {"/autodiscover/autodiscover.xml", HTTP_ROUTE_NOCASE, SVC_NONE, ad_pox_handler, NULL, a,
         "autodiscover"},
        /* PREFIX: Outlook also asks /autodiscover/autodiscover.json/v1.0/<address>. */
        {"/autodiscover/autodiscover.json", HTTP_ROUTE_NOCASE | HTTP_ROUTE_PREFIX, SVC_NONE,
         ad_json_handler, NULL, a, "autodiscover"},
        {"/mail/config-v1.1.xml", 0, SVC_NONE, ad_autoconfig_handler, NULL, a, "autodiscover"},
        {"/.well-known/autoconfig/mail/config-v1.1.xml", 0, SVC_NONE, ad_autoconfig_handler, NULL,
         a, "autodiscover"},
        {"/profile.mobileconfig", HTTP_ROUTE_AUTH, SVC_NONE, ad_mobileconfig_handler, NULL, a,
         "autodiscover"},
    };

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (http_server_route(h, &routes[i]) != 0)
            return -1;
    return 0;
}

void ad_free(struct ad *a)
{
    if (!a)
        return;
    auth_free(a->auth);
    pthread_mutex_destroy(&a->enh_lock);
    free(a);
}

/* ---------------------------------------------------------------------------------------
 * Output buffer
 * ------------------------------------------------------------------------------------ */

void ad_buf_xml(struct buf *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        size_t run = strcspn(p, "&<>\"'");
        buf_put(b, p, run);
        p += run;
        if (!*p)
            break;
        switch (*p) {
        case '&':
            buf_puts(b, "&amp;");
            break;
        case '<':
            buf_puts(b, "&lt;");
            break;
        case '>':
            buf_puts(b, "&gt;");
            break;
        case '"':
            buf_puts(b, "&quot;");
            break;
        default:
            buf_puts(b, "&apos;");
            break;
        }
    }
}

void ad_buf_elem(struct buf *b, int indent, const char *name, const char *text)
{
    buf_printf(b, "%*s<%s>", indent, "", name);
    ad_buf_xml(b, text);
    buf_printf(b, "</%s>\n", name);
}

enum http_action ad_send(struct http_req *r, int status, const char *ctype, struct buf *b)
{
    if (b->oom || http_respond(r, status, ctype, b->p ? b->p : "", b->len) != 0)
        http_respond_text(r, 500, "Internal Server Error\n");
    buf_free(b);
    return HTTP_RESPOND;
}

/* ---------------------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------------------ */

const char *ad_mail_host(const struct config *cfg)
{
    return cfg->ad_public_host[0] ? cfg->ad_public_host : cfg->hostname;
}

void ad_label_host(const struct config *cfg, const struct store_domain *d, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s.%s", d->label, cfg->web_base);
}

int ad_addr_norm(const char *in, char *out, size_t outlen)
{
    size_t n;
    const char *at;

    while (*in == ' ' || *in == '\t' || *in == '\r' || *in == '\n')
        in++;
    n = strlen(in);
    while (n > 0 &&
           (in[n - 1] == ' ' || in[n - 1] == '\t' || in[n - 1] == '\r' || in[n - 1] == '\n'))
        n--;
    if (n == 0 || n >= outlen)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == '"' || c == '\\')
            return -1;
        out[i] = (char)tolower(c);
    }
    out[n] = '\0';
    at = strchr(out, '@');
    if (!at || at == out || !at[1] || strchr(at + 1, '@') || !strchr(at + 1, '.'))
        return -1;
    return 0;
}

static int ad_enhanced_cb(const struct store_account *acct, void *ctx)
{
    int *found = ctx;

    if (acct->type == STORE_ENHANCED)
        *found = 1;
    return *found; /* non-zero stops the listing */
}

/* Autoconfig is unauthenticated and the answer needs "does this domain have an Enhanced
 * mailbox", which lists the domain's users: remembered per domain for AD_ENH_TTL seconds
 * so that a flood of requests does not turn into a flood of directory scans. */
int ad_domain_has_enhanced(struct ad *a, const struct store_domain *d)
{
    struct ad_enh_slot *slot = &a->enh[(uint64_t)d->id % AD_ENH_SLOTS];
    time_t now = time(NULL);
    int found = 0, rc;

    pthread_mutex_lock(&a->enh_lock);
    if (slot->domain_id == d->id && now - slot->when < AD_ENH_TTL && now >= slot->when) {
        found = slot->enhanced;
        pthread_mutex_unlock(&a->enh_lock);
        return found;
    }
    pthread_mutex_unlock(&a->enh_lock);
    rc = store_account_list(a->st, d->name, ad_enhanced_cb, &found, NULL);
    if (rc != STORE_OK)
        return rc;
    pthread_mutex_lock(&a->enh_lock);
    slot->domain_id = d->id;
    slot->when = now;
    slot->enhanced = found;
    pthread_mutex_unlock(&a->enh_lock);
    return found;
}

static int ad_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes n bytes of s ('+' is a space) into out; -1 when malformed, too long or
 * holding a NUL. */
static int ad_url_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int h, l;
            if (i + 2 >= n)
                return -1;
            h = ad_hexval((unsigned char)s[i + 1]);
            l = ad_hexval((unsigned char)s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = h * 16 + l;
            i += 2;
        }
        if (c == 0 || o + 1 >= outlen)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

int ad_query_get(const struct http_req *r, const char *key, char *out, size_t outlen)
{
    const char *q = http_req_raw_query(r);
    size_t kl = strlen(key);

    while (*q) {
        size_t n = strcspn(q, "&;");
        const char *eq = memchr(q, '=', n);
        if (eq && (size_t)(eq - q) == kl && strncasecmp(q, key, kl) == 0)
            return ad_url_decode(eq + 1, n - kl - 1, out, outlen);
        q += n;
        if (*q)
            q++;
    }
    return -1;
}

/* ---------------------------------------------------------------------------------------
 * XML in
 * ------------------------------------------------------------------------------------ */

/* SAX hook: a DOCTYPE stops the parse. A request never needs one, and refusing it
 * closes the door on entity tricks whatever the parser's defaults are. */
static void ad_xml_no_dtd(void *ctx, const xmlChar *name, const xmlChar *ext_id,
                          const xmlChar *sys_id)
{
    xmlParserCtxtPtr pc = ctx;

    (void)name;
    (void)ext_id;
    (void)sys_id;
    pc->_private = pc; /* marks the refusal */
    xmlStopParser(pc);
}

xmlDocPtr ad_xml_parse(const char *body, size_t len)
{
    xmlParserCtxtPtr pc;
    xmlDocPtr doc;

    if (!body || len == 0 || len > AD_BODY_MAX)
        return NULL;
    pc = xmlNewParserCtxt();
    if (!pc)
        return NULL;
    pc->sax->internalSubset = ad_xml_no_dtd;
    pc->sax->externalSubset = ad_xml_no_dtd;
    pc->_private = NULL;
    /* No XML_PARSE_NOENT (no entity substitution), no DTDLOAD, no network. */
    doc = xmlCtxtReadMemory(pc, body, (int)len, NULL, NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                                XML_PARSE_NOCDATA);
    if (doc && (pc->_private || !pc->wellFormed || doc->intSubset || doc->extSubset)) {
        xmlFreeDoc(doc);
        doc = NULL;
    }
    xmlFreeParserCtxt(pc);
    return doc;
}

xmlNodePtr ad_xml_child(xmlNodePtr parent, const char *name)
{
    if (!parent)
        return NULL;
    for (xmlNodePtr c = parent->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && strcasecmp((const char *)c->name, name) == 0)
            return c;
    return NULL;
}

int ad_xml_text(xmlNodePtr n, char *out, size_t outlen)
{
    xmlChar *t;
    const char *s;
    size_t len;
    int rc = -1;

    if (!n)
        return -1;
    t = xmlNodeGetContent(n);
    if (!t)
        return -1;
    s = (const char *)t;
    while (*s && isspace((unsigned char)*s))
        s++;
    len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (len > 0 && len < outlen) {
        memcpy(out, s, len);
        out[len] = '\0';
        rc = 0;
    }
    xmlFree(t);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Authentication (POX)
 * ------------------------------------------------------------------------------------ */

/* Splits "Basic base64(login:password)" into buf ("login\0password\0"). 0, 1 when no
 * Basic credential is present, -1 when malformed. */
static int ad_basic_parse(const char *hdr, char *buf, size_t buflen, const char **login,
                          const char **password)
{
    ssize_t len;
    size_t n;
    char *colon;

    if (!hdr)
        return 1;
    while (*hdr == ' ' || *hdr == '\t')
        hdr++;
    if (strncasecmp(hdr, "Basic", 5) != 0 || (hdr[5] != ' ' && hdr[5] != '\t'))
        return 1;
    hdr += 6;
    while (*hdr == ' ' || *hdr == '\t')
        hdr++;
    n = strcspn(hdr, " \t");
    if (n == 0 || n > AD_AUTH_B64_MAX || hdr[n + strspn(hdr + n, " \t")] != '\0')
        return -1;
    len = b64_decode(hdr, n, (unsigned char *)buf, buflen - 1, 0);
    if (len < 0)
        return -1;
    buf[len] = '\0';
    colon = memchr(buf, ':', (size_t)len);
    if (!colon || colon == buf || memchr(buf, '\0', (size_t)len))
        return -1;
    *colon = '\0';
    *login = buf;
    *password = colon + 1;
    return 0;
}

struct ad_one_target {
    char target[320];
    int n;
};

static int ad_one_target_cb(const char *source, const char *target, void *ctx)
{
    struct ad_one_target *t = ctx;

    (void)source;
    if (t->n++ == 0)
        snprintf(t->target, sizeof(t->target), "%s", target);
    return t->n > 1; /* a second target: stop, it is not one mailbox */
}

/* When login names an address of the tenant that is no mailbox but an alias of exactly
 * one local mailbox, writes that mailbox's address into out and returns 1. */
static int ad_alias_login(struct store *st, const char *login, const char *tenant, char *out,
                          size_t outlen)
{
    char addr[320];
    struct store_account acct;
    struct ad_one_target t = {.n = 0};

    if (!tenant || auth_resolve_login(login, tenant, addr, sizeof(addr)) != 0)
        return 0;
    if (store_account_get(st, addr, &acct, NULL) != STORE_ENOTFOUND)
        return 0;
    if (store_alias_list(st, tenant, addr, ad_one_target_cb, &t, NULL) < 0 || t.n != 1)
        return 0;
    if (store_account_get(st, t.target, &acct, NULL) != STORE_OK)
        return 0;
    snprintf(out, outlen, "%s", acct.address);
    explicit_bzero(&acct, sizeof(acct));
    return 1;
}

static enum ad_auth_result ad_challenge(struct http_req *r, const char *tenant)
{
    char v[300];

    snprintf(v, sizeof(v), "Basic realm=\"%s\", charset=\"UTF-8\"", tenant ? tenant : "Polaris");
    http_add_header(r, "WWW-Authenticate", v);
    http_respond_text(r, 401, "Unauthorized\n");
    return AD_AUTH_CHALLENGE;
}

enum ad_auth_result ad_authenticate(struct ad *a, struct http_req *r, struct store_account *acct)
{
    const struct store_domain *d = http_req_tenant(r);
    const char *tenant = d ? d->name : NULL;
    const char *login = NULL, *password = NULL, *verify_tenant = tenant;
    char buf[AD_AUTH_B64_MAX], target[320], retry[24];
    enum auth_result ar;

    if (ad_basic_parse(http_req_header(r, "Authorization"), buf, sizeof(buf), &login, &password) !=
        0) {
        explicit_bzero(buf, sizeof(buf));
        return ad_challenge(r, tenant);
    }
    if (ad_alias_login(a->st, login, tenant, target, sizeof(target))) {
        login = target;
        verify_tenant = strrchr(target, '@') + 1;
    }
    ar = auth_verify(a->auth, login, password, verify_tenant, http_req_remote_ip(r), acct);
    explicit_bzero(buf, sizeof(buf));
    switch (ar) {
    case AUTH_OK:
        explicit_bzero(acct->pwhash, sizeof(acct->pwhash));
        return AD_AUTH_OK;
    case AUTH_THROTTLED:
        snprintf(retry, sizeof(retry), "%d",
                 a->cfg->auth_fail_window > 0 ? a->cfg->auth_fail_window : 60);
        http_add_header(r, "Retry-After", retry);
        http_respond_text(r, 429, "Too Many Requests\n");
        return AD_AUTH_REFUSED;
    case AUTH_ERROR:
        http_respond_text(r, 500, "Internal Server Error\n");
        return AD_AUTH_REFUSED;
    default:
        return ad_challenge(r, tenant);
    }
}

struct ad_belongs {
    const char *address;
    int found;
};

static int ad_belongs_cb(const char *source, const char *target, void *ctx)
{
    struct ad_belongs *b = ctx;

    (void)source;
    if (strcasecmp(target, b->address) == 0)
        b->found = 1;
    return b->found;
}

int ad_addr_belongs(struct store *st, const char *address, const struct store_account *acct)
{
    struct ad_belongs b = {acct->address, 0};
    const char *at = strrchr(address, '@');
    int rc;

    if (strcasecmp(address, acct->address) == 0)
        return 1;
    if (!at)
        return 0;
    rc = store_alias_list(st, at + 1, address, ad_belongs_cb, &b, NULL);
    if (rc < 0 && rc != STORE_ENOTFOUND)
        return rc;
    return b.found;
}
