/*
 * ad_int.h — what the files of autodiscover/ share: the engine object, a growable output
 * buffer with XML escaping, the host names clients are told, safe XML parsing, Basic
 * authentication for the POX endpoint, and the handlers each file provides.
 */
#ifndef POLARIS_AD_INT_H
#define POLARIS_AD_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <libxml/tree.h>

#include "autodiscover/ad.h"

/* Request bodies an autodiscover client sends are a few hundred bytes; anything past this
 * is refused before it reaches the XML parser. */
#define AD_BODY_MAX  (16 * 1024)
#define AD_HOST_MAX  254
#define AD_ENH_SLOTS 64
#define AD_ENH_TTL   60 /* seconds */

struct ad_enh_slot {
    int64_t domain_id; /* 0: empty */
    time_t when;
    int enhanced;
};

struct ad {
    struct store *st;
    const struct config *cfg;
    /* The POX endpoint authenticates in its handler (an unauthenticated GET must get a
     * redirect, not a 401), so it holds a verifier of its own. */
    struct auth *auth;
    pthread_mutex_t enh_lock;
    struct ad_enh_slot enh[AD_ENH_SLOTS];
};

/* ---- output buffer ------------------------------------------------------------------ */

/* Appends s with &, <, >, " and ' escaped (element text and attribute values). */
void ad_buf_xml(struct buf *b, const char *s);
/* <name>escaped text</name> preceded by indent spaces and followed by a newline. */
void ad_buf_elem(struct buf *b, int indent, const char *name, const char *text);
/* Sends the buffer (or 500 when it ran out of memory). */
enum http_action ad_send(struct http_req *r, int status, const char *ctype, struct buf *b);

/* ---- names -------------------------------------------------------------------------- */
/* The host clients are told for IMAP, POP3 and SMTP: [autodiscover] public_host, else
 * [server] hostname. */
const char *ad_mail_host(const struct config *cfg);
/* "<label>.<web_base>": the tenant's own web host, covered by the *.web_base certificate. */
void ad_label_host(const struct config *cfg, const struct store_domain *d, char *out,
                   size_t outlen);
/* Lower-cases an address into out after trimming white space; -1 when it is not of the
 * form local@domain or does not fit. */
int ad_addr_norm(const char *in, char *out, size_t outlen);
/* 1 when the domain has at least one Enhanced mailbox, 0 when none, <0 on store errors
 * (remembered for a minute). */
int ad_domain_has_enhanced(struct ad *a, const struct store_domain *d);

/* The value of a query parameter, key matched in any letter case, percent-decoded into
 * out; -1 when absent, malformed or too long. */
int ad_query_get(const struct http_req *r, const char *key, char *out, size_t outlen);

/* ---- XML in ------------------------------------------------------------------------- */
/* Parses a request body with no network, no DTD, no entity substitution; a document
 * with a DOCTYPE is refused. NULL when malformed, too large or refused. */
xmlDocPtr ad_xml_parse(const char *body, size_t len);
/* The first child element of parent named name (case-insensitive, any namespace). */
xmlNodePtr ad_xml_child(xmlNodePtr parent, const char *name);
/* The trimmed text of an element into out; -1 when absent, empty or too long. */
int ad_xml_text(xmlNodePtr n, char *out, size_t outlen);

/* ---- authentication ----------------------------------------------------------------- */
enum ad_auth_result { AD_AUTH_OK = 0, AD_AUTH_CHALLENGE, AD_AUTH_REFUSED };
/* Basic auth against the tenant of r. Also accepted as the login: an address of the
 * tenant that is an alias of exactly one mailbox (Outlook logs in with the address the
 * user typed); the account is then that mailbox. On anything but AD_AUTH_OK the response
 * (401 challenge, 429, 500) is already set on r. */
enum ad_auth_result ad_authenticate(struct ad *a, struct http_req *r, struct store_account *acct);
/* 1 when address is acct's own or one of its aliases (an alias listing acct's address
 * among its targets); 0 when not; <0 on store errors. */
int ad_addr_belongs(struct store *st, const char *address, const struct store_account *acct);

/* ---- handlers ----------------------------------------------------------------------- */
enum http_action ad_pox_handler(struct http_req *r, enum http_phase phase, void *ctx);
enum http_action ad_json_handler(struct http_req *r, enum http_phase phase, void *ctx);
enum http_action ad_autoconfig_handler(struct http_req *r, enum http_phase phase, void *ctx);
enum http_action ad_mobileconfig_handler(struct http_req *r, enum http_phase phase, void *ctx);

#endif
