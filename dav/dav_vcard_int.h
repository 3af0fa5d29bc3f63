/*
 * dav_vcard_int.h — what the vCard files of dav/ share (dav_vcard.c parses and writes,
 * dav_vcard_convert.c converts between versions, dav_vcard_filter.c filters and renders
 * address-data): the card's in-memory layout, its arena and the output buffer.
 */
#ifndef POLARIS_DAV_VCARD_INT_H
#define POLARIS_DAV_VCARD_INT_H

#include <stddef.h>

#include "dav/dav_vcard.h"
#include "server/server.h"

/* Bounds on what a card may hold; beyond them the card is refused, not truncated. */
#define DAV_VC_MAX_SIZE   (32u << 20) /* the whole body */
#define DAV_VC_MAX_LINE   (1u << 20)  /* one unfolded line (an inline PHOTO) */
#define DAV_VC_MAX_PROPS  10000u
#define DAV_VC_MAX_PARAMS 64u /* per property */

/* One property: the public view plus what writing it back the way it came needs: the
 * name as the client spelled it (X-ABLabel; NULL when it is the upper-case name) and,
 * per parameter, whether its value was quoted. */
struct dav_vc_prop {
    struct dav_vcard_prop p;
    const char *spelled;
    const unsigned char *quoted;
};

/* Every string of a card lives in its arena: a chain of blocks freed at once. */
struct dav_vc_block {
    struct dav_vc_block *next;
    size_t used, cap;
    char data[];
};

struct dav_vcard {
    int version;
    const char *uid;
    struct dav_vc_prop *props;
    size_t nprops, cap;
    struct dav_vc_block *arena;
};

/* A growing output buffer; err is set once an allocation fails (and stays set). */

void *dav_vc_alloc(struct dav_vcard *v, size_t n);
char *dav_vc_strdup(struct dav_vcard *v, const char *s);
/* An empty card of that version. */
struct dav_vcard *dav_vc_empty(int version);
/* Appends a property, copying every string into v's arena (quoted may be NULL). */
int dav_vc_push(struct dav_vcard *v, const char *group, const char *name,
                const struct dav_vcard_param *params, const unsigned char *quoted, size_t nparams,
                const char *value);

/* Records how the last property's name was spelled (when it differs in case). */
int dav_vc_spell(struct dav_vcard *v, const char *spelled);

/* Writes the card: BEGIN, VERSION, the properties keep() accepts (1: as is, 2: with an
 * empty value; NULL keeps all), END. Folded, CRLF. malloc'd, NULL when out of memory. */
char *dav_vc_write(const struct dav_vcard *v, int (*keep)(const struct dav_vcard_prop *, void *),
                   void *arg, size_t *len);

/* The card converted to version 3 or 4 as a new card (dav_vcard_convert.c); a copy when
 * it already is that version. NULL when out of memory. */
struct dav_vcard *dav_vc_convert(const struct dav_vcard *v, int version);

/* ASCII case-insensitive equality (names, parameter values). */
int dav_vc_ieq(const char *a, const char *b);
/* 1 when the comma list `list` holds `item` (case-insensitively). */
int dav_vc_list_has(const char *list, const char *item);

#endif
