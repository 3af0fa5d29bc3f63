/*
 * ad_pox.c — Outlook "plain old XML" Autodiscover ([MS-OXDSCLI]) and its ActiveSync
 * flavour ([MS-ASCMD] 2.2.1.1): POST /autodiscover/autodiscover.xml.
 *
 * A request names an address and the response schema it accepts:
 *   outlook/responseschema/2006a   → IMAP, SMTP and POP3 settings (Outlook, eM Client);
 *   mobilesync/responseschema/2006 → the ActiveSync URL (iOS, Android, Outlook mobile),
 *                                    for Enhanced mailboxes only.
 * The address must be the authenticated user's own or one of its aliases; an alias gets
 * a redirect to the mailbox's address (redirectAddr / Redirect) so that the client starts
 * over with it. Anything else gets the schema's Error element, never another user's data.
 *
 * The endpoint is authenticated in the handler rather than by the front end because an
 * unauthenticated GET on http://autodiscover.<domain>/... is Outlook's "HTTP redirect
 * method" probe, answered with a 302 to the HTTPS endpoint on the tenant's label host.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "autodiscover/ad_int.h"

#define AD_NS_RESPONSE "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
#define AD_NS_OUT_REQ                                                                              \
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
#define AD_NS_OUT_RESP                                                                             \
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
#define AD_NS_MS_REQ                                                                               \
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"
#define AD_NS_MS_RESP                                                                              \
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
#define AD_POX_CTYPE "text/xml; charset=utf-8"
#define AD_EAS_PATH  "/Microsoft-Server-ActiveSync"

/* Error codes of [MS-OXDSCLI] 2.2.4.1.1.3.1 (ErrorCode), also used by [MS-ASCMD]. */
#define AD_ERR_NOT_FOUND 500 /* the address cannot be found (or is not the user's) */
#define AD_ERR_INVALID   600 /* malformed request */
#define AD_ERR_PROVIDER  601 /* no configuration of the requested type */
#define AD_ERR_INTERNAL  603

enum ad_schema { AD_SCHEMA_NONE = 0, AD_SCHEMA_OUTLOOK, AD_SCHEMA_MOBILESYNC };

struct ad_pox_req {
    enum ad_schema ns;   /* the request's namespace */
    enum ad_schema want; /* the response schema asked for */
    char email[320];     /* lower-case; "" when only LegacyDN was sent */
};

/* ---------------------------------------------------------------------------------------
 * Responses
 * ------------------------------------------------------------------------------------ */

static void ad_pox_begin(struct buf *b)
{
    buf_puts(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                "<Autodiscover xmlns=\"" AD_NS_RESPONSE "\">\n");
}

static void ad_pox_end(struct buf *b)
{
    buf_puts(b, "</Autodiscover>\n");
}

static const char *ad_pox_resp_ns(enum ad_schema s)
{
    return s == AD_SCHEMA_OUTLOOK      ? AD_NS_OUT_RESP
           : s == AD_SCHEMA_MOBILESYNC ? AD_NS_MS_RESP
                                       : NULL;
}

/* The Error element as both specifications show it: Time and Id attributes, ErrorCode,
 * Message, DebugData. With no known schema, Response stays in the generic namespace. */
static enum http_action ad_pox_error(struct http_req *r, const struct config *cfg, enum ad_schema s,
                                     int code, const char *msg)
{
    struct buf b = {0};
    const char *ns = ad_pox_resp_ns(s);
    struct timeval tv;
    struct tm tm;
    unsigned id = 2166136261u; /* FNV-1a of the host name: stands for Exchange's server hash */

    for (const char *p = cfg->hostname; *p; p++)
        id = (id ^ (unsigned char)*p) * 16777619u;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    ad_pox_begin(&b);
    if (ns)
        buf_printf(&b, "  <Response xmlns=\"%s\">\n", ns);
    else
        buf_puts(&b, "  <Response>\n");
    buf_printf(&b, "    <Error Time=\"%02d:%02d:%02d.%07ld\" Id=\"%u\">\n", tm.tm_hour, tm.tm_min,
               tm.tm_sec, (long)tv.tv_usec * 10, id & 0x7fffffffu);
    buf_printf(&b, "      <ErrorCode>%d</ErrorCode>\n", code);
    ad_buf_elem(&b, 6, "Message", msg);
    buf_puts(&b, "      <DebugData />\n    </Error>\n  </Response>\n");
    ad_pox_end(&b);
    return ad_send(r, 200, AD_POX_CTYPE, &b);
}

/* One Protocol element of the outlook schema. */
static void ad_pox_protocol(struct buf *b, const char *type, const char *host, int port,
                            const char *login, int smtp)
{
    buf_puts(b, "      <Protocol>\n");
    ad_buf_elem(b, 8, "Type", type);
    ad_buf_elem(b, 8, "Server", host);
    buf_printf(b, "        <Port>%d</Port>\n", port);
    buf_puts(b, "        <DomainRequired>off</DomainRequired>\n");
    ad_buf_elem(b, 8, "LoginName", login);
    buf_puts(b, "        <SPA>off</SPA>\n"
                "        <SSL>on</SSL>\n"
                "        <Encryption>SSL</Encryption>\n"
                "        <AuthRequired>on</AuthRequired>\n");
    if (smtp)
        buf_puts(b, "        <UsePOPAuth>on</UsePOPAuth>\n"
                    "        <SMTPLast>off</SMTPLast>\n");
    buf_puts(b, "      </Protocol>\n");
}

/* Outlook: the mail settings of the account, or a redirect to its own address. */
static enum http_action ad_pox_outlook(struct http_req *r, const struct config *cfg,
                                       const struct store_account *acct, int redirect)
{
    struct buf b = {0};
    const char *host = ad_mail_host(cfg);

    ad_pox_begin(&b);
    buf_puts(&b, "  <Response xmlns=\"" AD_NS_OUT_RESP "\">\n");
    if (!redirect) {
        buf_puts(&b, "    <User>\n");
        ad_buf_elem(&b, 6, "DisplayName", acct->address);
        ad_buf_elem(&b, 6, "AutoDiscoverSMTPAddress", acct->address);
        buf_puts(&b, "    </User>\n");
    }
    buf_puts(&b, "    <Account>\n"
                 "      <AccountType>email</AccountType>\n");
    if (redirect) {
        buf_puts(&b, "      <Action>redirectAddr</Action>\n");
        ad_buf_elem(&b, 6, "RedirectAddr", acct->address);
    } else {
        buf_puts(&b, "      <Action>settings</Action>\n");
        /* The ports customers are told (implicit TLS first), whatever this process binds:
         * the answer is what the deployment publishes. */
        ad_pox_protocol(&b, "IMAP", host, 993, acct->address, 0);
        ad_pox_protocol(&b, "SMTP", host, 465, acct->address, 1);
        ad_pox_protocol(&b, "POP3", host, 995, acct->address, 0);
    }
    buf_puts(&b, "    </Account>\n  </Response>\n");
    ad_pox_end(&b);
    return ad_send(r, 200, AD_POX_CTYPE, &b);
}

/* ActiveSync: the server URL on the tenant's label host, or a redirect. */
static enum http_action ad_pox_mobilesync(struct http_req *r, const struct config *cfg,
                                          const struct store_account *acct, const char *asked,
                                          int redirect)
{
    struct buf b = {0};
    char label[AD_HOST_MAX], host[2 * AD_HOST_MAX + 2], url[2 * AD_HOST_MAX + 64];

    /* The mailbox's own tenant, not the host asked: an alias login on another domain's
     * host must still be sent where the mailbox lives. */
    if (store_domain_label(acct->domain, label, sizeof(label)) != 0)
        return ad_pox_error(r, cfg, AD_SCHEMA_MOBILESYNC, AD_ERR_INTERNAL, "Internal Server Error");
    snprintf(host, sizeof(host), "%s.%s", label, cfg->web_base);
    snprintf(url, sizeof(url), "https://%s" AD_EAS_PATH, host);
    ad_pox_begin(&b);
    buf_puts(&b, "  <Response xmlns=\"" AD_NS_MS_RESP "\">\n"
                 "    <Culture>en:us</Culture>\n"
                 "    <User>\n");
    if (!redirect)
        ad_buf_elem(&b, 6, "DisplayName", acct->address);
    ad_buf_elem(&b, 6, "EMailAddress", redirect ? asked : acct->address);
    buf_puts(&b, "    </User>\n    <Action>\n");
    if (redirect) {
        ad_buf_elem(&b, 6, "Redirect", acct->address);
    } else {
        buf_puts(&b, "      <Settings>\n        <Server>\n"
                     "          <Type>MobileSync</Type>\n");
        ad_buf_elem(&b, 10, "Url", url);
        ad_buf_elem(&b, 10, "Name", url);
        buf_puts(&b, "        </Server>\n      </Settings>\n");
    }
    buf_puts(&b, "    </Action>\n  </Response>\n");
    ad_pox_end(&b);
    return ad_send(r, 200, AD_POX_CTYPE, &b);
}

/* ---------------------------------------------------------------------------------------
 * The request
 * ------------------------------------------------------------------------------------ */

static enum ad_schema ad_pox_ns(const xmlNode *n, const char *outlook, const char *mobilesync)
{
    const char *href = n->ns && n->ns->href ? (const char *)n->ns->href : "";

    if (strcasecmp(href, outlook) == 0)
        return AD_SCHEMA_OUTLOOK;
    if (strcasecmp(href, mobilesync) == 0)
        return AD_SCHEMA_MOBILESYNC;
    return AD_SCHEMA_NONE;
}

/* Reads the request. Returns 0, or the ErrorCode to answer with (the schema to answer in
 * is then q->ns, possibly AD_SCHEMA_NONE). */
static int ad_pox_parse(const char *body, size_t len, struct ad_pox_req *q)
{
    xmlDocPtr doc = ad_xml_parse(body, len);
    xmlNodePtr root, req, n;
    char ars[256], email[320];
    int rc = AD_ERR_INVALID;

    memset(q, 0, sizeof(*q));
    if (!doc)
        return AD_ERR_INVALID;
    root = xmlDocGetRootElement(doc);
    if (!root || strcasecmp((const char *)root->name, "Autodiscover") != 0)
        goto out;
    q->ns = ad_pox_ns(root, AD_NS_OUT_REQ, AD_NS_MS_REQ);
    if (q->ns == AD_SCHEMA_NONE || !(req = ad_xml_child(root, "Request")))
        goto out;
    q->want = q->ns;
    if ((n = ad_xml_child(req, "AcceptableResponseSchema"))) {
        if (ad_xml_text(n, ars, sizeof(ars)) != 0)
            goto out;
        if (strcasecmp(ars, AD_NS_OUT_RESP) == 0)
            q->want = AD_SCHEMA_OUTLOOK;
        else if (strcasecmp(ars, AD_NS_MS_RESP) == 0)
            q->want = AD_SCHEMA_MOBILESYNC;
        else {
            rc = AD_ERR_PROVIDER;
            goto out;
        }
    }
    if ((n = ad_xml_child(req, "EMailAddress"))) {
        if (ad_xml_text(n, email, sizeof(email)) != 0 ||
            ad_addr_norm(email, q->email, sizeof(q->email)) != 0)
            goto out;
    } else if (!ad_xml_child(req, "LegacyDN")) {
        goto out; /* neither: nothing to answer about */
    }
    rc = 0;
out:
    xmlFreeDoc(doc);
    return rc;
}

static enum http_action ad_pox_post(struct ad *a, struct http_req *r,
                                    const struct store_account *acct)
{
    struct ad_pox_req q;
    size_t len;
    const char *body = http_req_body(r, &len);
    int code = ad_pox_parse(body, len, &q), own;

    if (code != 0)
        return ad_pox_error(r, a->cfg, q.ns, code,
                            code == AD_ERR_PROVIDER ? "The requested schema is not supported."
                                                    : "Invalid Request");
    /* Only LegacyDN (Outlook reconnecting): it stands for the user's own mailbox. */
    if (!q.email[0])
        snprintf(q.email, sizeof(q.email), "%s", acct->address);
    own = ad_addr_belongs(a->st, q.email, acct);
    if (own < 0)
        return ad_pox_error(r, a->cfg, q.want, AD_ERR_INTERNAL, "Internal Server Error");
    if (own == 0) {
        log_info("autodiscover", "%s asked about an address that is not theirs", acct->address);
        return ad_pox_error(r, a->cfg, q.want, AD_ERR_NOT_FOUND,
                            "The email address cannot be found.");
    }
    if (strcmp(q.email, acct->address) != 0) {
        /* An alias: the client starts again with the mailbox's own address. */
        if (q.want == AD_SCHEMA_OUTLOOK)
            return ad_pox_outlook(r, a->cfg, acct, 1);
        return ad_pox_mobilesync(r, a->cfg, acct, q.email, 1);
    }
    if (q.want == AD_SCHEMA_OUTLOOK)
        return ad_pox_outlook(r, a->cfg, acct, 0);
    if (!gate_allows(acct->type, SVC_EAS))
        return ad_pox_error(r, a->cfg, q.want, AD_ERR_PROVIDER,
                            "ActiveSync is not available for this mailbox type.");
    return ad_pox_mobilesync(r, a->cfg, acct, q.email, 0);
}

/* Outlook's HTTP redirect method: the answer is a 302 to the HTTPS endpoint, where the
 * tenant's label host has a certificate whatever the customer's DNS says. */
static enum http_action ad_pox_redirect(struct ad *a, struct http_req *r)
{
    char host[AD_HOST_MAX + 8], loc[AD_HOST_MAX + 64];

    ad_label_host(a->cfg, http_req_tenant(r), host, sizeof(host));
    snprintf(loc, sizeof(loc), "https://%s/autodiscover/autodiscover.xml", host);
    http_add_header(r, "Location", loc);
    http_add_header(r, "Cache-Control", "no-cache");
    http_respond(r, 302, NULL, NULL, 0);
    return HTTP_RESPOND;
}

enum http_action ad_pox_handler(struct http_req *r, enum http_phase phase, void *ctx)
{
    struct ad *a = ctx;
    const char *m = http_req_method(r);
    struct store_account acct;
    enum http_action act;
    int get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;

    (void)phase;
    if (!get && strcmp(m, "POST") != 0) {
        http_add_header(r, "Allow", "GET, HEAD, POST");
        http_respond_text(r, 405, "Method Not Allowed\n");
        return HTTP_RESPOND;
    }
    if (get && !http_req_is_tls(r))
        return ad_pox_redirect(a, r);
    if (ad_authenticate(a, r, &acct) != AD_AUTH_OK)
        return HTTP_RESPOND;
    if (get) /* a browser or a probe: Exchange answers "Invalid Request" */
        act = ad_pox_error(r, a->cfg, AD_SCHEMA_NONE, AD_ERR_INVALID, "Invalid Request");
    else
        act = ad_pox_post(a, r, &acct);
    explicit_bzero(&acct, sizeof(acct));
    return act;
}
