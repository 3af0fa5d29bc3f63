/*
 * ad_dns.c — the DNS records a hosted domain publishes, and their health check.
 *
 * The list follows what customers are asked to create: the mx-verification TXT with the
 * domain's token, the MX set, SPF, DKIM (when enabled), a DMARC suggestion, autodiscover
 * and autoconfig (CNAME to the tenant's label host, or A/AAAA when [autodiscover] address
 * is set), mail and webmail, the RFC 6186 / RFC 8314 SRV records for IMAP, submission and
 * POP3, RFC 6764 SRV + TXT for CalDAV and CardDAV, and _autodiscover._tcp for Outlook.
 *
 * The check asks a resolver (res_nquery, optionally a given server) for each record and
 * judges it ok, missing or wrong the way a customer would need to hear it: an SPF record
 * that includes ours among others is fine, an MX set with a stranger in it is not.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "autodiscover/ad_int.h"
#include "mail/mail.h"

#define AD_RR_MAX  16
#define AD_ANS_MAX (NS_PACKETSZ * 8)

/* ---------------------------------------------------------------------------------------
 * Building the list
 * ------------------------------------------------------------------------------------ */

struct ad_dns_list {
    struct ad_dns_record *v;
    size_t n;
    const char *domain;
};

static void ad_dns_add(struct ad_dns_list *l, const char *rel, const char *type,
                       enum ad_dns_kind kind, const char *purpose, int optional, const char *fmt,
                       ...) __attribute__((format(printf, 7, 8)));
static void ad_dns_add(struct ad_dns_list *l, const char *rel, const char *type,
                       enum ad_dns_kind kind, const char *purpose, int optional, const char *fmt,
                       ...)
{
    struct ad_dns_record *r;
    va_list ap;

    if (l->n >= AD_DNS_MAX)
        return;
    r = &l->v[l->n++];
    memset(r, 0, sizeof(*r));
    if (strcmp(rel, "@") == 0)
        snprintf(r->name, sizeof(r->name), "%s.", l->domain);
    else
        snprintf(r->name, sizeof(r->name), "%s.%s.", rel, l->domain);
    r->type = type;
    r->kind = kind;
    r->purpose = purpose;
    r->optional = optional;
    va_start(ap, fmt);
    vsnprintf(r->value, sizeof(r->value), fmt, ap);
    va_end(ap);
}

static int ad_dns_hostname_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 253)
        return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
            return 0;
    return 1;
}

/* Splits a comma-separated configuration list; calls fn for each trimmed item. -1 when
 * an item is refused or there is none. */
static int ad_dns_each(const char *list, int (*fn)(const char *item, void *ctx), void *ctx)
{
    char buf[256], *save = NULL, *tok;
    int items = 0;

    snprintf(buf, sizeof(buf), "%s", list);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        size_t n;
        while (isspace((unsigned char)*tok))
            tok++;
        n = strlen(tok);
        while (n > 0 && isspace((unsigned char)tok[n - 1]))
            tok[--n] = '\0';
        if (n == 0 || fn(tok, ctx) != 0)
            return -1;
        items++;
    }
    return items > 0 ? 0 : -1;
}

static int ad_dns_mx_item(const char *item, void *ctx)
{
    struct ad_dns_list *l = ctx;
    char host[256];
    unsigned pref;
    int used = 0;

    if (sscanf(item, "%u %255s%n", &pref, host, &used) != 2 || item[used] != '\0' || pref > 65535)
        return -1;
    if (host[strlen(host) - 1] == '.')
        host[strlen(host) - 1] = '\0';
    if (!ad_dns_hostname_ok(host))
        return -1;
    ad_dns_add(l, "@", "MX", AD_DNS_MX, "inbound mail", 0, "%u %s.", pref, host);
    return 0;
}

struct ad_dns_addr_ctx {
    struct ad_dns_list *l;
    const char *rel;
    const char *purpose;
    int optional;
};

static int ad_dns_addr_item(const char *item, void *ctx)
{
    struct ad_dns_addr_ctx *c = ctx;
    unsigned char a[16];

    if (inet_pton(AF_INET, item, a) == 1)
        ad_dns_add(c->l, c->rel, "A", AD_DNS_ADDR, c->purpose, c->optional, "%s", item);
    else if (inet_pton(AF_INET6, item, a) == 1)
        ad_dns_add(c->l, c->rel, "AAAA", AD_DNS_ADDR, c->purpose, c->optional, "%s", item);
    else
        return -1;
    return 0;
}

/* autodiscover, autoconfig, mail: CNAME to the label host, or the configured addresses. */
static int ad_dns_web_host(struct ad_dns_list *l, const struct config *cfg, const char *rel,
                           const char *label_host, const char *purpose, int optional)
{
    struct ad_dns_addr_ctx c = {l, rel, purpose, optional};

    if (!cfg->ad_address[0]) {
        ad_dns_add(l, rel, "CNAME", AD_DNS_CNAME, purpose, optional, "%s.", label_host);
        return 0;
    }
    return ad_dns_each(cfg->ad_address, ad_dns_addr_item, &c);
}

int ad_dns_records(struct store *st, const struct config *cfg, const struct store_domain *d,
                   struct ad_dns_record *recs, char *err, size_t errlen)
{
    struct ad_dns_list l = {recs, 0, d->name};
    char lh[AD_HOST_MAX + 8], dk_name[128] = "", dk_value[1024] = "";
    const char *mh = ad_mail_host(cfg);

    ad_label_host(cfg, d, lh, sizeof(lh));
    ad_dns_add(&l, "mx-verification", "TXT", AD_DNS_VERIFY, "domain ownership", 0, "%s", d->token);
    if (!cfg->ad_mx[0])
        ad_dns_add(&l, "@", "MX", AD_DNS_MX, "inbound mail", 0, "10 %s.", mh);
    else if (ad_dns_each(cfg->ad_mx, ad_dns_mx_item, &l) != 0) {
        snprintf(err, errlen, "[autodiscover] mx: expected \"PREF HOST[, PREF HOST...]\"");
        return -1;
    }
    ad_dns_add(&l, "@", "TXT", AD_DNS_SPF, "SPF", 0, "%s", cfg->ad_spf);
    if (dkim_domain_record(st, d->name, dk_name, sizeof(dk_name), dk_value, sizeof(dk_value)) ==
        STORE_OK)
        ad_dns_add(&l, dk_name, "TXT", AD_DNS_DKIM, "DKIM", 0, "%s", dk_value);
    ad_dns_add(&l, "_dmarc", "TXT", AD_DNS_DMARC, "DMARC (a suggestion)", 1, "%s", cfg->ad_dmarc);
    if (ad_dns_web_host(&l, cfg, "autodiscover", lh, "Outlook, iOS, Android setup", 0) != 0 ||
        ad_dns_web_host(&l, cfg, "autoconfig", lh, "Thunderbird setup", 0) != 0 ||
        ad_dns_web_host(&l, cfg, "mail", lh, "CalDAV/CardDAV at mail.<domain>", 1) != 0) {
        snprintf(err, errlen, "[autodiscover] address: expected \"IP[, IP...]\"");
        return -1;
    }
    ad_dns_add(&l, "webmail", "CNAME", AD_DNS_CNAME, "webmail", 1, "%s.",
               cfg->ad_webmail[0] ? cfg->ad_webmail : lh);
    /* RFC 6186 / RFC 8314: implicit TLS first; POP3 less preferred than IMAP. */
    ad_dns_add(&l, "_imaps._tcp", "SRV", AD_DNS_SRV, "IMAP (RFC 6186)", 0, "0 1 993 %s.", mh);
    ad_dns_add(&l, "_submissions._tcp", "SRV", AD_DNS_SRV, "SMTP submission (RFC 8314)", 0,
               "0 1 465 %s.", mh);
    ad_dns_add(&l, "_submission._tcp", "SRV", AD_DNS_SRV, "SMTP submission (RFC 6186)", 0,
               "0 1 587 %s.", mh);
    ad_dns_add(&l, "_pop3s._tcp", "SRV", AD_DNS_SRV, "POP3 (RFC 6186)", 0, "10 1 995 %s.", mh);
    ad_dns_add(&l, "_caldavs._tcp", "SRV", AD_DNS_SRV, "CalDAV (RFC 6764)", 0, "0 1 443 %s.", lh);
    ad_dns_add(&l, "_caldavs._tcp", "TXT", AD_DNS_TXT, "CalDAV path (RFC 6764)", 0,
               "path=/caldav/");
    ad_dns_add(&l, "_carddavs._tcp", "SRV", AD_DNS_SRV, "CardDAV (RFC 6764)", 0, "0 1 443 %s.", lh);
    ad_dns_add(&l, "_carddavs._tcp", "TXT", AD_DNS_TXT, "CardDAV path (RFC 6764)", 0,
               "path=/carddav/");
    ad_dns_add(&l, "_autodiscover._tcp", "SRV", AD_DNS_SRV, "Outlook autodiscover", 0,
               "0 1 443 %s.", lh);
    return (int)l.n;
}

/* ---------------------------------------------------------------------------------------
 * Asking the resolver
 * ------------------------------------------------------------------------------------ */

enum ad_q { AD_Q_OK = 0, AD_Q_NONE, AD_Q_TEMP };

struct ad_rr {
    unsigned a, b, port; /* MX: a = preference; SRV: a = priority, b = weight */
    char text[1024];     /* TXT: the strings joined; names: lower-case, no final dot;
                          * A/AAAA: the address */
};

struct ad_rrset {
    struct ad_rr rr[AD_RR_MAX];
    size_t n;
};

static int ad_dns_res_init(const char *resolver, res_state st, char *err, size_t errlen)
{
    char host[64];
    int port = 53;
    struct sockaddr_in sa = {.sin_family = AF_INET};

    memset(st, 0, sizeof(*st));
    if (res_ninit(st) != 0) {
        snprintf(err, errlen, "cannot initialise the resolver");
        return -1;
    }
    st->retrans = 2;
    st->retry = 2;
    if (!resolver || !resolver[0])
        return 0;
    if (config_split_addr(resolver, host, sizeof(host), &port) != 0 ||
        inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        res_nclose(st);
        snprintf(err, errlen, "resolver \"%s\" is not an IPv4 ip:port", resolver);
        return -1;
    }
    sa.sin_port = htons((uint16_t)(port > 0 ? port : 53));
    st->nsaddr_list[0] = sa;
    st->nscount = 1;
    return 0;
}

static void ad_dns_name_norm(char *s)
{
    size_t n = strlen(s);

    if (n > 0 && s[n - 1] == '.')
        s[--n] = '\0';
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* Reads one answer record of the asked type into rr; -1 when it cannot be parsed. */
static int ad_dns_rr(const ns_msg *msg, const ns_rr *r, int type, struct ad_rr *rr)
{
    const unsigned char *rd = ns_rr_rdata(*r);
    size_t rdlen = ns_rr_rdlen(*r), o = 0;
    int off = 0;

    memset(rr, 0, sizeof(*rr));
    switch (type) {
    case ns_t_txt:
        for (size_t i = 0; i < rdlen;) {
            size_t sl = rd[i++];
            if (i + sl > rdlen || o + sl >= sizeof(rr->text))
                return -1;
            memcpy(rr->text + o, rd + i, sl);
            o += sl;
            i += sl;
        }
        rr->text[o] = '\0';
        return 0;
    case ns_t_a:
    case ns_t_aaaa:
        if (rdlen != (type == ns_t_a ? 4u : 16u))
            return -1;
        return inet_ntop(type == ns_t_a ? AF_INET : AF_INET6, rd, rr->text, sizeof(rr->text)) ? 0
                                                                                              : -1;
    case ns_t_mx:
        if (rdlen < 3)
            return -1;
        rr->a = ns_get16(rd);
        off = 2;
        break;
    case ns_t_srv:
        if (rdlen < 7)
            return -1;
        rr->a = ns_get16(rd);
        rr->b = ns_get16(rd + 2);
        rr->port = ns_get16(rd + 4);
        off = 6;
        break;
    case ns_t_cname:
        break;
    default:
        return -1;
    }
    if (dn_expand(ns_msg_base(*msg), ns_msg_end(*msg), rd + off, rr->text, sizeof(rr->text)) < 0)
        return -1;
    ad_dns_name_norm(rr->text);
    return 0;
}

static enum ad_q ad_dns_query(res_state st, const char *name, int type, struct ad_rrset *out)
{
    unsigned char *ans = malloc(AD_ANS_MAX);
    ns_msg msg;
    ns_rr r;
    int n;

    out->n = 0;
    if (!ans)
        return AD_Q_TEMP;
    n = res_nquery(st, name, ns_c_in, type, ans, AD_ANS_MAX);
    if (n < 0) {
        free(ans);
        return st->res_h_errno == HOST_NOT_FOUND || st->res_h_errno == NO_DATA ? AD_Q_NONE
                                                                               : AD_Q_TEMP;
    }
    if (n > AD_ANS_MAX)
        n = AD_ANS_MAX; /* truncated: read what came */
    if (ns_initparse(ans, n, &msg) != 0) {
        free(ans);
        return AD_Q_TEMP;
    }
    for (int i = 0; i < ns_msg_count(msg, ns_s_an) && out->n < AD_RR_MAX; i++) {
        if (ns_parserr(&msg, ns_s_an, i, &r) != 0 || (int)ns_rr_type(r) != type)
            continue;
        if (ad_dns_rr(&msg, &r, type, &out->rr[out->n]) == 0)
            out->n++;
    }
    free(ans);
    return out->n > 0 ? AD_Q_OK : AD_Q_NONE;
}

/* What was found, for people: "10 mx.example.net., 20 ..." or quoted TXT strings. */
static void ad_dns_found(const struct ad_rrset *s, int type, char *out, size_t outlen)
{
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < s->n && o < outlen; i++) {
        const struct ad_rr *r = &s->rr[i];
        const char *sep = i ? ", " : "";
        int w;
        if (type == ns_t_mx)
            w = snprintf(out + o, outlen - o, "%s%u %s.", sep, r->a, r->text);
        else if (type == ns_t_srv)
            w = snprintf(out + o, outlen - o, "%s%u %u %u %s.", sep, r->a, r->b, r->port, r->text);
        else if (type == ns_t_cname)
            w = snprintf(out + o, outlen - o, "%s%s.", sep, r->text);
        else if (type == ns_t_txt)
            w = snprintf(out + o, outlen - o, "%s\"%s\"", sep, r->text);
        else
            w = snprintf(out + o, outlen - o, "%s%s", sep, r->text);
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

/* ---------------------------------------------------------------------------------------
 * Judging
 * ------------------------------------------------------------------------------------ */

struct ad_check {
    res_state st;
    const struct ad_dns_record *recs;
    size_t n;
};

static enum ad_dns_status ad_dns_q2s(enum ad_q q)
{
    return q == AD_Q_TEMP ? AD_DNS_ERROR : AD_DNS_MISSING;
}

/* Compares two strings ignoring white space (DKIM keys are often split or spaced). */
static int ad_dns_eq_nospace(const char *a, const char *b)
{
    for (;;) {
        while (isspace((unsigned char)*a))
            a++;
        while (isspace((unsigned char)*b))
            b++;
        if (*a != *b)
            return 0;
        if (!*a)
            return 1;
        a++;
        b++;
    }
}

/* The value of tag in a "k=v; k=v" list (DKIM), without spaces, into out. */
static void ad_dns_tag(const char *rec, const char *tag, char *out, size_t outlen)
{
    size_t tl = strlen(tag), o = 0;
    const char *p = rec;

    out[0] = '\0';
    while (*p) {
        while (*p == ';' || isspace((unsigned char)*p))
            p++;
        if (strncmp(p, tag, tl) == 0 && p[tl] == '=') {
            for (p += tl + 1; *p && *p != ';' && o + 1 < outlen; p++)
                if (!isspace((unsigned char)*p))
                    out[o++] = *p;
            out[o] = '\0';
            return;
        }
        p += strcspn(p, ";");
    }
}

static enum ad_dns_status ad_dns_judge_txt(const struct ad_dns_record *rec,
                                           const struct ad_rrset *s)
{
    char want[1536], got[1536];
    size_t wl;

    snprintf(want, sizeof(want), "%s", rec->value);
    wl = strlen(want);
    if (rec->kind == AD_DNS_TXT && wl > 0 && want[wl - 1] == '/')
        want[wl - 1] = '\0'; /* "path=/caldav" is as good as "path=/caldav/" */
    for (size_t i = 0; i < s->n; i++) {
        snprintf(got, sizeof(got), "%s", s->rr[i].text);
        if (rec->kind == AD_DNS_TXT && got[0] && got[strlen(got) - 1] == '/')
            got[strlen(got) - 1] = '\0';
        if (rec->kind == AD_DNS_DKIM) {
            char wp[1024], gp[1024];
            ad_dns_tag(rec->value, "p", wp, sizeof(wp));
            ad_dns_tag(s->rr[i].text, "p", gp, sizeof(gp));
            if (wp[0] && strcmp(wp, gp) == 0)
                return AD_DNS_OK;
        } else if (ad_dns_eq_nospace(want, got)) {
            return AD_DNS_OK;
        }
    }
    return AD_DNS_WRONG;
}

/* SPF: one v=spf1 record, holding every term of ours except the final "all". */
static enum ad_dns_status ad_dns_judge_spf(const struct ad_dns_record *rec,
                                           const struct ad_rrset *s, char *found, size_t flen)
{
    const struct ad_rr *spf = NULL;
    char want[1536], *save = NULL, *tok;
    int nspf = 0;

    for (size_t i = 0; i < s->n; i++)
        if (strncasecmp(s->rr[i].text, "v=spf1", 6) == 0 &&
            (s->rr[i].text[6] == ' ' || s->rr[i].text[6] == '\0')) {
            spf = &s->rr[i];
            nspf++;
        }
    if (nspf == 0)
        return AD_DNS_MISSING;
    snprintf(found, flen, "\"%.1000s\"", spf->text);
    if (nspf > 1)
        return AD_DNS_WRONG; /* RFC 7208 4.5: more than one is a permanent error */
    snprintf(want, sizeof(want), "%s", rec->value);
    for (tok = strtok_r(want, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        const char *t = tok, *hit;
        size_t tl;
        if (strcasecmp(t, "v=spf1") == 0 || strcasecmp(t + strspn(t, "+-~?"), "all") == 0)
            continue;
        tl = strlen(t);
        for (hit = spf->text; (hit = strcasestr(hit, t)); hit += tl)
            if ((hit == spf->text || hit[-1] == ' ') && (hit[tl] == ' ' || hit[tl] == '\0'))
                break;
        if (!hit)
            return AD_DNS_WRONG;
    }
    return AD_DNS_OK;
}

/* MX: our host is in the set and nothing else is. */
static enum ad_dns_status ad_dns_judge_mx(const struct ad_check *c, const struct ad_dns_record *rec,
                                          const struct ad_rrset *s)
{
    char host[300];
    int mine = 0;

    if (sscanf(rec->value, "%*u %299s", host) != 1)
        return AD_DNS_WRONG;
    ad_dns_name_norm(host);
    for (size_t i = 0; i < s->n; i++) {
        int known = 0;
        if (strcmp(s->rr[i].text, host) == 0)
            mine = 1;
        for (size_t k = 0; k < c->n && !known; k++) {
            char other[300];
            if (c->recs[k].kind != AD_DNS_MX || strcmp(c->recs[k].name, rec->name) != 0 ||
                sscanf(c->recs[k].value, "%*u %299s", other) != 1)
                continue;
            ad_dns_name_norm(other);
            known = strcmp(other, s->rr[i].text) == 0;
        }
        if (!known)
            return AD_DNS_WRONG; /* another provider's MX still receives some mail */
    }
    return mine ? AD_DNS_OK : AD_DNS_WRONG;
}

static enum ad_dns_status ad_dns_judge_srv(const struct ad_dns_record *rec,
                                           const struct ad_rrset *s)
{
    char target[300];
    unsigned port;

    if (sscanf(rec->value, "%*u %*u %u %299s", &port, target) != 2)
        return AD_DNS_WRONG;
    ad_dns_name_norm(target);
    for (size_t i = 0; i < s->n; i++)
        if (s->rr[i].port == port && strcmp(s->rr[i].text, target) == 0)
            return AD_DNS_OK;
    return AD_DNS_WRONG;
}

/* CNAME: to our target; or, as many DNS hosts cannot put a CNAME there, A records that
 * are the target's. */
static enum ad_dns_status ad_dns_judge_cname(const struct ad_check *c,
                                             const struct ad_dns_record *rec, char *found,
                                             size_t flen)
{
    struct ad_rrset *s = malloc(sizeof(*s)), *t = malloc(sizeof(*t));
    char target[300];
    enum ad_dns_status res = AD_DNS_ERROR;
    enum ad_q q;

    if (!s || !t)
        goto out;
    /* A CNAME target is a host name (at most 253 octets); anything longer is not ours. */
    if (strlen(rec->value) >= sizeof(target))
        goto out;
    memcpy(target, rec->value, strlen(rec->value) + 1);
    ad_dns_name_norm(target);
    q = ad_dns_query(c->st, rec->name, ns_t_cname, s);
    if (q == AD_Q_OK) {
        ad_dns_found(s, ns_t_cname, found, flen);
        res = strcmp(s->rr[0].text, target) == 0 ? AD_DNS_OK : AD_DNS_WRONG;
        goto out;
    }
    if (q == AD_Q_TEMP)
        goto out;
    q = ad_dns_query(c->st, rec->name, ns_t_a, s);
    if (q != AD_Q_OK) {
        res = ad_dns_q2s(q);
        goto out;
    }
    ad_dns_found(s, ns_t_a, found, flen);
    res = AD_DNS_WRONG;
    if (ad_dns_query(c->st, rec->value, ns_t_a, t) == AD_Q_OK)
        for (size_t i = 0; i < s->n; i++)
            for (size_t k = 0; k < t->n; k++)
                if (strcmp(s->rr[i].text, t->rr[k].text) == 0)
                    res = AD_DNS_OK;
out:
    free(s);
    free(t);
    return res;
}

static int ad_dns_qtype(const struct ad_dns_record *rec)
{
    static const struct {
        const char *name;
        int type;
    } types[] = {{"TXT", ns_t_txt}, {"MX", ns_t_mx},     {"SRV", ns_t_srv},
                 {"A", ns_t_a},     {"AAAA", ns_t_aaaa}, {"CNAME", ns_t_cname}};

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(rec->type, types[i].name) == 0)
            return types[i].type;
    return -1;
}

static void ad_dns_check_one(const struct ad_check *c, const struct ad_dns_record *rec,
                             struct ad_dns_result *res)
{
    struct ad_rrset *s;
    int type = ad_dns_qtype(rec);
    enum ad_q q;

    memset(res, 0, sizeof(*res));
    if (rec->kind == AD_DNS_CNAME) {
        res->status = ad_dns_judge_cname(c, rec, res->found, sizeof(res->found));
        return;
    }
    s = malloc(sizeof(*s));
    if (!s || type < 0) {
        free(s);
        res->status = AD_DNS_ERROR;
        return;
    }
    q = ad_dns_query(c->st, rec->name, type, s);
    if (q != AD_Q_OK) {
        res->status = ad_dns_q2s(q);
        free(s);
        return;
    }
    ad_dns_found(s, type, res->found, sizeof(res->found));
    switch (rec->kind) {
    case AD_DNS_SPF:
        res->status = ad_dns_judge_spf(rec, s, res->found, sizeof(res->found));
        break;
    case AD_DNS_DMARC:
        res->status = AD_DNS_WRONG;
        for (size_t i = 0; i < s->n; i++)
            if (strncasecmp(s->rr[i].text, "v=DMARC1", 8) == 0)
                res->status = AD_DNS_OK;
        break;
    case AD_DNS_MX:
        res->status = ad_dns_judge_mx(c, rec, s);
        break;
    case AD_DNS_SRV:
        res->status = ad_dns_judge_srv(rec, s);
        break;
    case AD_DNS_ADDR:
        res->status = AD_DNS_WRONG;
        for (size_t i = 0; i < s->n; i++)
            if (strcasecmp(s->rr[i].text, rec->value) == 0)
                res->status = AD_DNS_OK;
        break;
    default: /* VERIFY, DKIM, TXT */
        res->status = ad_dns_judge_txt(rec, s);
        break;
    }
    free(s);
}

int ad_dns_check(const char *resolver, const struct ad_dns_record *recs, size_t n,
                 struct ad_dns_result *res, char *err, size_t errlen)
{
    struct __res_state st;
    struct ad_check c = {&st, recs, n};

    if (ad_dns_res_init(resolver, &st, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        ad_dns_check_one(&c, &recs[i], &res[i]);
    res_nclose(&st);
    return 0;
}

const char *ad_dns_status_name(enum ad_dns_status s)
{
    static const char *const names[] = {
        [AD_DNS_OK] = "ok",
        [AD_DNS_MISSING] = "missing",
        [AD_DNS_WRONG] = "wrong",
        [AD_DNS_ERROR] = "error",
    };
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "error";
}
