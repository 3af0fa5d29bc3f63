/*
 * ad_json.c — Autodiscover v2: GET /autodiscover/autodiscover.json?Email=A&Protocol=P
 * (also /autodiscover/autodiscover.json/v1.0/A?Protocol=P), the first question current
 * Outlook and Outlook mobile ask. The answer is {"Protocol": P, "Url": U}: where the
 * ActiveSync endpoint or the POX Autodiscover endpoint of the tenant lives.
 *
 * It is unauthenticated and the same for every address of the tenant's domain, so it
 * tells nothing about which mailboxes exist or what type they are.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "autodiscover/ad_int.h"

#define AD_JSON_CTYPE "application/json; charset=utf-8"

static const struct {
    const char *name; /* as answered */
    const char *path; /* on the tenant's label host */
} ad_json_protocols[] = {
    {"ActiveSync", "/Microsoft-Server-ActiveSync"},
    {"AutodiscoverV1", "/autodiscover/autodiscover.xml"},
};

static enum http_action ad_json_error(struct http_req *r, int status, const char *code,
                                      const char *msg)
{
    struct buf b = {0};

    /* Both strings are ours (never the client's), so they need no JSON escaping. */
    buf_printf(&b, "{\"ErrorCode\":\"%s\",\"ErrorMessage\":\"%s\"}", code, msg);
    return ad_send(r, status, AD_JSON_CTYPE, &b);
}

/* The address: the Email parameter, or what follows "/v1.0/" in the path. */
static int ad_json_email(struct http_req *r, char *out, size_t outlen)
{
    char raw[320];
    const char *path = http_req_path(r);
    const char *v = strcasestr(path, "/autodiscover.json/v1.0/");

    if (ad_query_get(r, "Email", raw, sizeof(raw)) == 0)
        return ad_addr_norm(raw, out, outlen);
    if (!v)
        return -1;
    return ad_addr_norm(v + strlen("/autodiscover.json/v1.0/"), out, outlen);
}

enum http_action ad_json_handler(struct http_req *r, enum http_phase phase, void *ctx)
{
    struct ad *a = ctx;
    const struct store_domain *d = http_req_tenant(r);
    const char *m = http_req_method(r), *at;
    char email[320], proto[64], host[AD_HOST_MAX + 8];
    struct buf b = {0};

    (void)phase;
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        http_add_header(r, "Allow", "GET, HEAD");
        http_respond_text(r, 405, "Method Not Allowed\n");
        return HTTP_RESPOND;
    }
    if (ad_json_email(r, email, sizeof(email)) != 0)
        return ad_json_error(r, 400, "InvalidUser", "A valid email address is required.");
    at = strrchr(email, '@');
    if (strcmp(at + 1, d->name) != 0)
        return ad_json_error(r, 400, "InvalidUser",
                             "The email address does not belong to this domain.");
    if (ad_query_get(r, "Protocol", proto, sizeof(proto)) != 0)
        return ad_json_error(r, 400, "MandatoryParameterMissing",
                             "A valid value must be provided for the query parameter 'Protocol'.");
    for (size_t i = 0; i < sizeof(ad_json_protocols) / sizeof(ad_json_protocols[0]); i++) {
        if (strcasecmp(proto, ad_json_protocols[i].name) != 0)
            continue;
        ad_label_host(a->cfg, d, host, sizeof(host));
        /* Host names are [a-z0-9.-]: nothing to escape. */
        buf_printf(&b, "{\"Protocol\":\"%s\",\"Url\":\"https://%s%s\"}", ad_json_protocols[i].name,
                   host, ad_json_protocols[i].path);
        return ad_send(r, 200, AD_JSON_CTYPE, &b);
    }
    return ad_json_error(r, 400, "InvalidProtocol",
                         "The given protocol value is invalid. Supported values are "
                         "'ActiveSync,AutodiscoverV1'.");
}
