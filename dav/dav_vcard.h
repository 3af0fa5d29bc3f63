/*
 * dav_vcard.h — a small, strict vCard 3.0 (RFC 2426) and 4.0 (RFC 6350) parser for
 * CardDAV (private to dav/; ActiveSync's contact conversion will use it too): validation
 * of address object resources (RFC 6352 §5.1), conversion between versions for
 * address-data, and addressbook-query filters (§10.5).
 *
 * Bounded: line length, property count, nesting of groups and total size are limited;
 * anything malformed is refused, never half-read. Unknown properties (X-…, Apple's
 * X-ADDRESSBOOKSERVER-KIND/MEMBER, vCard 4 KIND/MEMBER) are kept and written back as
 * they came.
 */
#ifndef POLARIS_DAV_VCARD_H
#define POLARIS_DAV_VCARD_H

#include <libxml/tree.h>
#include <stddef.h>

/* One property: GROUP.NAME;PARAM=V;PARAM=V:VALUE, unfolded. name upper-case. */
struct dav_vcard_param {
    const char *name;  /* upper-case */
    const char *value; /* as written, quotes removed; comma lists kept joined */
};
struct dav_vcard_prop {
    const char *group; /* NULL when none */
    const char *name;
    const struct dav_vcard_param *params;
    size_t nparams;
    const char *value; /* raw value, still escaped (\, \; \n) */
};

struct dav_vcard;
/* Parses and validates one vCard (exactly one BEGIN:VCARD..END:VCARD, VERSION 3.0 or
 * 4.0, FN present (3.0 also N), a UID). On failure -1 with *precond the CardDAV
 * precondition to answer ("valid-address-data", "supported-address-data") and err.
 * Lines may end in CRLF or bare LF and fold with a space or tab. Refused as
 * supported-address-data: VERSION other than 3.0/4.0 (2.1), ENCODING=QUOTED-PRINTABLE or
 * 8BIT, a CHARSET other than UTF-8. Refused as valid-address-data: bytes that are not
 * UTF-8, control characters, a logical line over 1 MiB, more than 10,000 properties or
 * 64 parameters on one, a body over 32 MiB, bad syntax, two UIDs or two N. */
int dav_vcard_parse(const char *body, size_t len, struct dav_vcard **out, const char **precond,
                    char *err, size_t errlen);
void dav_vcard_free(struct dav_vcard *v);
const char *dav_vcard_uid(const struct dav_vcard *v);
int dav_vcard_version(const struct dav_vcard *v); /* 3 or 4 */
/* The properties between BEGIN and END in order, except VERSION (dav_vcard_version).
 * Pointers stay valid until the card is freed or (builder) added to. */
size_t dav_vcard_nprops(const struct dav_vcard *v);
const struct dav_vcard_prop *dav_vcard_prop(const struct dav_vcard *v, size_t i);
/* The value unescaped (\n → newline, \, → ',' ...), malloc'd. */
char *dav_vcard_unescape(const char *value);

/* The card in another version (3 or 4), malloc'd, CRLF line endings, folded at 75
 * octets (see dav_vcard_convert.c for the mappings). Callers send the stored bytes when
 * the version is the same (this then rewrites the parsed card faithfully). NULL for
 * another version number or out of memory. */
char *dav_vcard_convert(const struct dav_vcard *v, int version, size_t *len);

/* addressbook-query: the <CR:filter> element compiled once per REPORT. filter NULL (no
 * filter element) compiles to a filter every card matches. On -1, *precond is
 * "supported-collation" (unknown collation) or "valid-filter" (bad structure, unknown
 * match-type or test, over the bounds) and err says why. match: 1 or 0 (NULL f: 1). */
struct dav_vcard_filter;
int dav_vcard_filter_compile(xmlNodePtr filter, struct dav_vcard_filter **out, const char **precond,
                             char *err, size_t errlen);
void dav_vcard_filter_free(struct dav_vcard_filter *f);
int dav_vcard_filter_match(const struct dav_vcard_filter *f, const struct dav_vcard *v);

/* address-data request element (NULL: whole card as stored): content-type/version
 * (text/vcard 3.0 or 4.0) and an optional <CR:prop name="..."/> subset. No version
 * attribute means the card in the version it was stored in. On -1, *precond is
 * "supported-address-data-conversion" for another media type or version, or NULL when
 * the element itself is malformed (answer 400). A subset always keeps UID, FN and N. */
struct dav_vcard_data;
int dav_vcard_data_compile(xmlNodePtr address_data, struct dav_vcard_data **out,
                           const char **precond, char *err, size_t errlen);
void dav_vcard_data_free(struct dav_vcard_data *d);
/* The version the request wants (0: as stored). */
int dav_vcard_data_version(const struct dav_vcard_data *d);
/* 1 when the stored bytes cannot be returned as they are (another version, a subset). */
int dav_vcard_data_needs_parse(const struct dav_vcard_data *d, int stored_version);
/* The card as the request wants it, malloc'd, NUL-terminated (NULL: out of memory). */
char *dav_vcard_data_render(const struct dav_vcard_data *d, const struct dav_vcard *v, size_t *len);

/* ---- Helpers on parsed or built cards (ActiveSync's contact conversion reads with
 * these). Names compare case-insensitively. ---- */
/* The first parameter named `name` of p (its value as written), NULL when absent. */
const char *dav_vcard_param_get(const struct dav_vcard_prop *p, const char *name);
/* 1 when a TYPE parameter of p lists `type` (TYPE=HOME,WORK or TYPE=HOME;TYPE=WORK,
 * quoted or not), else 0. */
int dav_vcard_has_type(const struct dav_vcard_prop *p, const char *type);
/* The next property named `name` (without group) at index >= *iter, advancing *iter past
 * it; NULL when there is none. Start with *iter = 0. */
const struct dav_vcard_prop *dav_vcard_find(const struct dav_vcard *v, const char *name,
                                            size_t *iter);
/* Splits a raw structured value (N, ADR, ORG: components separated by unescaped `sep`,
 * usually ';') into at most max components, each unescaped and malloc'd into parts[].
 * Returns how many were stored (the rest of the value is dropped), -1 on allocation
 * failure (nothing stored). */
int dav_vcard_split(const char *value, char sep, char **parts, size_t max);

/* ---- Builder: writing a card from fields (ActiveSync → vCard). ---- */
/* An empty card of version 3 or 4 (NULL otherwise or out of memory). BEGIN, VERSION and
 * END are written by dav_vcard_serialize; everything else is added in order. */
struct dav_vcard *dav_vcard_new(int version);
/* Appends GROUP.NAME;PARAMS:VALUE. group may be NULL; name is letters, digits and '-'
 * (upper-cased here; BEGIN, END and VERSION are refused); value is the raw, already
 * escaped value (see dav_vcard_escape; structured values join escaped components with
 * ';') and must hold no control character; parameter values are written as given,
 * quoted when they contain ':' or ';', and must hold no '"' or control character.
 * Adding UID sets dav_vcard_uid. 0, or -1 on bad input / out of memory (card unchanged). */
int dav_vcard_add(struct dav_vcard *v, const char *group, const char *name,
                  const struct dav_vcard_param *params, size_t nparams, const char *value);
/* The card in its own version, malloc'd, NUL-terminated, CRLF line ends, folded at 75
 * octets (never inside a UTF-8 sequence). NULL when out of memory. */
char *dav_vcard_serialize(const struct dav_vcard *v, size_t *len);
/* A text value escaped for a vCard: a backslash before each backslash, ',' and ';',
 * newlines written as \n, CR dropped. malloc'd. */
char *dav_vcard_escape(const char *value);

#endif
