/*
 * wbxml.h — our own WBXML codec for ActiveSync (private to eas/): decoding request bodies
 * into a small element tree and encoding response trees, with every MS-ASWBXML code page
 * (0–25). Strictly bounded: nesting depth, string and opaque lengths, element count and
 * total size are limited; unknown code pages or tokens, attributes, entities, PIs and
 * truncated input are refused with a message.
 *
 * Elements are named by one number: EAS_TAG(page, token), with constants generated from
 * the specification's tables in wbxml_tokens.h, named EAS_<PAGE>_<TAG> in upper case
 * (EAS_AIRSYNC_SYNCKEY, EAS_FOLDERHIERARCHY_FOLDERSYNC, EAS_AIRSYNCBASE_BODYPREFERENCE).
 */
#ifndef POLARIS_EAS_WBXML_H
#define POLARIS_EAS_WBXML_H

#include <stddef.h>
#include <stdint.h>

#define EAS_TAG(page, tok) (((unsigned)(page) << 8) | (unsigned)(tok))
#define EAS_TAG_PAGE(t)    ((unsigned)(t) >> 8)
#define EAS_TAG_TOKEN(t)   ((unsigned)(t)&0x3fu)

#include "eas/wbxml_tokens.h"

/* Limits of the decoder. */
#define WBXML_MAX_DEPTH  64
#define WBXML_MAX_NODES  200000
#define WBXML_MAX_STRING (16u * 1024 * 1024) /* one inline string or opaque */

struct eas_node {
    unsigned tag; /* EAS_TAG(page, token) */
    struct eas_node *parent, *first, *last, *next;
    char *data; /* content (NUL-terminated even when opaque), NULL when none */
    size_t len; /* bytes of data, without the NUL */
    int opaque; /* 1: data came as / goes out as OPAQUE */
};

/* A document owns its nodes and their data (one arena, freed at once). */
struct eas_doc;
struct eas_doc *eas_doc_new(void);
void eas_doc_free(struct eas_doc *d);
struct eas_node *eas_doc_root(const struct eas_doc *d);

/* Building. The first eas_add with parent NULL makes the root. Text is copied. All
 * return NULL on allocation failure (the document then refuses to encode). */
struct eas_node *eas_add(struct eas_doc *d, struct eas_node *parent, unsigned tag);
struct eas_node *eas_add_text(struct eas_doc *d, struct eas_node *parent, unsigned tag,
                              const char *text);
struct eas_node *eas_add_textn(struct eas_doc *d, struct eas_node *parent, unsigned tag,
                               const char *text, size_t len);
struct eas_node *eas_add_int(struct eas_doc *d, struct eas_node *parent, unsigned tag, long long v);
struct eas_node *eas_add_opaque(struct eas_doc *d, struct eas_node *parent, unsigned tag,
                                const void *data, size_t len);

/* Reading. */
struct eas_node *eas_child(const struct eas_node *n, unsigned tag); /* first such child */
struct eas_node *eas_next(const struct eas_node *n, unsigned tag);  /* next sibling of tag */
const char *eas_text(const struct eas_node *n);                     /* "" when none / NULL */
/* The child's text as an integer; def when absent or not a number. */
long long eas_child_int(const struct eas_node *n, unsigned tag, long long def);
const char *eas_child_text(const struct eas_node *n, unsigned tag); /* NULL when absent */

/* Decodes a whole request body. 0 and *out, or -1 with err (the caller answers HTTP 400
 * or the command's Status). */
int wbxml_decode(const void *buf, size_t len, struct eas_doc **out, char *err, size_t errlen);
/* Encodes a document (WBXML 1.3, public id 1, UTF-8, no string table). *out malloc'd. */
int wbxml_encode(const struct eas_doc *d, uint8_t **out, size_t *len);

/* A streaming writer, for responses too large to build as a tree first (and what
 * wbxml_encode uses): append elements in document order; SWITCH_PAGE is written only
 * when the page changes. Errors (unknown tag, depth, NUL in text, memory, a second root)
 * are sticky and make wbxml_writer_finish fail. */
struct wbxml_writer {
    uint8_t *buf;
    size_t len, cap;
    unsigned page, depth;
    int rooted, err;
};
void wbxml_writer_init(struct wbxml_writer *w);
void wbxml_write_open(struct wbxml_writer *w, unsigned tag); /* element with children */
void wbxml_write_close(struct wbxml_writer *w);
void wbxml_write_empty(struct wbxml_writer *w, unsigned tag); /* <Tag/> */
void wbxml_write_text(struct wbxml_writer *w, unsigned tag, const char *s, size_t len);
void wbxml_write_opaque(struct wbxml_writer *w, unsigned tag, const void *p, size_t len);
/* 0 and the malloc'd document, or -1; either way the writer is reset. */
int wbxml_writer_finish(struct wbxml_writer *w, uint8_t **out, size_t *len);
void wbxml_writer_discard(struct wbxml_writer *w);

/* Names, as MS-ASWBXML spells them ("AirSync", "SyncKey"); NULL when unknown. */
const char *wbxml_page_name(unsigned page);
const char *wbxml_tag_name(unsigned tag);
/* The tag of a page name and element name; -1 when unknown. */
int wbxml_tag_lookup(const char *page_name, const char *tag_name);
/* The page of a page name; -1 when unknown. */
int wbxml_page_lookup(const char *page_name);
/* An XML rendering for logs and tests (namespaces as the pages' names), malloc'd.
 * libwbxml's convention: xmlns="AirSync:" on the root and a default namespace
 * "Page:" on every element whose page differs from its parent's. Opaque content carries
 * opaque="text" (UTF-8 shown as is) or opaque="base64". */
char *wbxml_to_xml(const struct eas_doc *d);
/* The reverse, for `polaris wbxml encode` and tests (libxml2, no DTD, no entities, no
 * network, bounded): namespaces "Page:" or "Page" (prefixed or default) name the pages;
 * the opaque attribute above is honoured; whitespace-only text between elements is
 * ignored. 0 and *out, or -1 with err. */
int wbxml_from_xml(const char *xml, size_t len, struct eas_doc **out, char *err, size_t errlen);

/* `polaris wbxml decode|encode` (hidden debugging commands, wbxml_cli.c): argv[0] is
 * "wbxml". Returns the exit status. */
int wbxml_cli(int argc, char **argv);

#endif
