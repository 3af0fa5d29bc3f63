/*
 * ad_autoconfig.c — Thunderbird autoconfig (clientConfig 1.1): GET
 * /mail/config-v1.1.xml?emailaddress=A on autoconfig.<domain> and
 * /.well-known/autoconfig/mail/config-v1.1.xml on the domain itself.
 *
 * The answer is per domain, never per address: the same bytes whether or not the address
 * exists, so that nobody can probe for mailboxes with it. It lists IMAP (993 SSL, 143
 * STARTTLS), POP3 (995 SSL, 110 STARTTLS) and SMTP (465 SSL, 587 STARTTLS), with the full
 * address as the user name, in the order clients should prefer. Domains that have
 * Enhanced mailboxes also get CalDAV and CardDAV: in the form Thunderbird reads today
 * (addressBook / calendar with serverURL) and in the form of the IETF draft
 * "Mail Autoconfig" (addressbook / calendar with url).
 */
#include <stdio.h>
#include <string.h>

#include "autodiscover/ad_int.h"

#define AD_AC_CTYPE "application/xml; charset=utf-8"

static const struct {
    const char *element, *type;
    int port;
    const char *socket;
} ad_ac_servers[] = {
    {"incomingServer", "imap", 993, "SSL"}, {"incomingServer", "imap", 143, "STARTTLS"},
    {"incomingServer", "pop3", 995, "SSL"}, {"incomingServer", "pop3", 110, "STARTTLS"},
    {"outgoingServer", "smtp", 465, "SSL"}, {"outgoingServer", "smtp", 587, "STARTTLS"},
};

static void ad_ac_server(struct buf *b, size_t i, const char *host)
{
    buf_printf(b, "    <%s type=\"%s\">\n", ad_ac_servers[i].element, ad_ac_servers[i].type);
    ad_buf_elem(b, 6, "hostname", host);
    buf_printf(b, "      <port>%d</port>\n", ad_ac_servers[i].port);
    ad_buf_elem(b, 6, "socketType", ad_ac_servers[i].socket);
    buf_puts(b, "      <authentication>password-cleartext</authentication>\n"
                "      <username>%EMAILADDRESS%</username>\n");
    buf_printf(b, "    </%s>\n", ad_ac_servers[i].element);
}

/* One DAV service in Thunderbird's form and in the draft's. */
static void ad_ac_dav(struct buf *b, const char *tb_elem, const char *draft_elem, const char *type,
                      const char *url)
{
    buf_printf(b, "  <%s type=\"%s\">\n", tb_elem, type);
    buf_puts(b, "    <username>%EMAILADDRESS%</username>\n"
                "    <authentication>http-basic</authentication>\n");
    ad_buf_elem(b, 4, "serverURL", url);
    buf_printf(b, "  </%s>\n", tb_elem);
    buf_printf(b, "  <%s type=\"%s\">\n", draft_elem, type);
    ad_buf_elem(b, 4, "url", url);
    buf_puts(b, "    <authentication>http-basic</authentication>\n"
                "    <username>%EMAILADDRESS%</username>\n");
    buf_printf(b, "  </%s>\n", draft_elem);
}

enum http_action ad_autoconfig_handler(struct http_req *r, enum http_phase phase, void *ctx)
{
    struct ad *a = ctx;
    const struct store_domain *d = http_req_tenant(r);
    const char *m = http_req_method(r);
    char host[AD_HOST_MAX + 8], url[AD_HOST_MAX + 32];
    struct buf b = {0};
    int enhanced;

    (void)phase;
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        http_add_header(r, "Allow", "GET, HEAD");
        http_respond_text(r, 405, "Method Not Allowed\n");
        return HTTP_RESPOND;
    }
    enhanced = ad_domain_has_enhanced(a, d);
    if (enhanced < 0) {
        http_respond_text(r, 503, "Service Unavailable\n");
        return HTTP_RESPOND;
    }
    buf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<clientConfig version=\"1.1\">\n");
    buf_puts(&b, "  <emailProvider id=\"");
    ad_buf_xml(&b, d->name);
    buf_puts(&b, "\">\n");
    ad_buf_elem(&b, 4, "domain", d->name);
    ad_buf_elem(&b, 4, "displayName", d->name);
    ad_buf_elem(&b, 4, "displayShortName", d->name);
    for (size_t i = 0; i < sizeof(ad_ac_servers) / sizeof(ad_ac_servers[0]); i++)
        ad_ac_server(&b, i, ad_mail_host(a->cfg));
    buf_puts(&b, "  </emailProvider>\n");
    if (enhanced) {
        ad_label_host(a->cfg, d, host, sizeof(host));
        snprintf(url, sizeof(url), "https://%s/carddav/", host);
        ad_ac_dav(&b, "addressBook", "addressbook", "carddav", url);
        snprintf(url, sizeof(url), "https://%s/caldav/", host);
        ad_ac_dav(&b, "calendar", "calendar", "caldav", url);
    }
    buf_puts(&b, "</clientConfig>\n");
    /* Per domain, so caches may keep it a while. */
    http_add_header(r, "Cache-Control", "public, max-age=3600");
    return ad_send(r, 200, AD_AC_CTYPE, &b);
}
