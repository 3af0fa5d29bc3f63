/*
 * ad.h — the one public interface of autodiscover/: Outlook POX Autodiscover, Autodiscover
 * v2 (JSON), Thunderbird autoconfig and Apple configuration profiles, served on the HTTP
 * front end; and the DNS records a hosted domain publishes.
 */
#ifndef POLARIS_AD_H
#define POLARIS_AD_H

#include "server/server.h"
#include "store/store.h"

struct ad;

struct ad *ad_new(struct store *st, const struct config *cfg);
int ad_register(struct ad *a, struct http_server *h);
void ad_free(struct ad *a);

/* ---------------------------------------------------------------------------------------
 * The DNS records a hosted domain publishes (ad_dns.c), for `polaris domain dns` and
 * `polaris domain check`. Names and targets come from the configuration ([autodiscover]
 * public_host, mx, spf, dmarc, address, webmail; [server] web_base) and the domain (its
 * token, label and DKIM key).
 * ------------------------------------------------------------------------------------ */
#define AD_DNS_MAX 32

/* How a record is judged when checked. */
enum ad_dns_kind {
    AD_DNS_VERIFY = 0, /* TXT holding the verification token */
    AD_DNS_MX,         /* one of the MX set: the set must be exactly the configured one */
    AD_DNS_SPF,        /* the v=spf1 TXT must include every term we suggest */
    AD_DNS_DKIM,       /* TXT with the same p= key */
    AD_DNS_DMARC,      /* any v=DMARC1 policy will do (ours is a suggestion) */
    AD_DNS_CNAME,      /* CNAME to the target, or A records equal to the target's */
    AD_DNS_ADDR,       /* A or AAAA holding the address */
    AD_DNS_SRV,        /* an SRV with this port and target */
    AD_DNS_TXT,        /* a TXT equal to the value (RFC 6764 path=) */
};

struct ad_dns_record {
    char name[300];   /* fully qualified, with the final dot */
    const char *type; /* "TXT", "MX", "CNAME", "A", "AAAA", "SRV" */
    char value[1536]; /* presentation form, TXT unquoted */
    enum ad_dns_kind kind;
    const char *purpose; /* a few words for people */
    int optional;        /* recommended rather than required */
};

enum ad_dns_status { AD_DNS_OK = 0, AD_DNS_MISSING, AD_DNS_WRONG, AD_DNS_ERROR };

struct ad_dns_result {
    enum ad_dns_status status;
    char found[1024]; /* what the resolver answered, "" when nothing */
};

/* Fills recs (at most AD_DNS_MAX) for the domain d. Returns the count, or -1 with err
 * when the configuration cannot give them (a malformed [autodiscover] mx or address). */
int ad_dns_records(struct store *st, const struct config *cfg, const struct store_domain *d,
                   struct ad_dns_record *recs, char *err, size_t errlen);
/* Looks every record up through resolver ("ip:port", IPv4; NULL or "": the system's) and
 * judges it. Returns 0, or -1 with err when the resolver cannot be set up. */
int ad_dns_check(const char *resolver, const struct ad_dns_record *recs, size_t n,
                 struct ad_dns_result *res, char *err, size_t errlen);
const char *ad_dns_status_name(enum ad_dns_status s);

#endif
