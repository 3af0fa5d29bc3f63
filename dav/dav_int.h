/*
 * dav_int.h — what the files of dav/ share: the engine object, the per-request state, the
 * resources a path names, the XML buffer and parser helpers, the property table and the
 * method and report entry points. Private to dav/.
 */
#ifndef POLARIS_DAV_INT_H
#define POLARIS_DAV_INT_H

#include <libxml/tree.h>
#include <stddef.h>
#include <stdint.h>

#include "dav/dav.h"
#include "dav/dav_ical.h"
#include "dav/dav_vcard.h"

#define NS_DAV  "DAV:"
#define NS_CAL  "urn:ietf:params:xml:ns:caldav"
#define NS_CARD "urn:ietf:params:xml:ns:carddav"
#define NS_CS   "http://calendarserver.org/ns/"
#define NS_APPL "http://apple.com/ns/ical/"

#define DAV_XML_MAX      (1024 * 1024) /* largest XML request body we parse */
#define DAV_XML_DEPTH    32            /* deepest element nesting accepted */
#define DAV_HREF_MAX     2048
#define DAV_MULTIGET_MAX 5000        /* hrefs in one multiget */
#define DAV_TZ_MAX       (64 * 1024) /* calendar-timezone value */
#define DAV_DEAD_MAX     4096        /* one dead property, serialised */
#define DAV_DEAD_COUNT   64          /* dead properties per collection */
#define DAV_SYNC_PREFIX  "http://polaris/sync/"
/* Recurring events are indexed this far ahead when written; queries past it re-expand. */
#define DAV_HORIZON_SECS (2LL * 366 * 86400)

struct dav {
    struct store *st;
    const struct config *cfg;
};

/* Which tree a path is in. */
enum dav_space { DAV_SPACE_CAL = 1, DAV_SPACE_CARD, DAV_SPACE_PRINC };

/* What a path names. */
enum dav_kind {
    DAV_K_NONE = 0,  /* nothing (404) */
    DAV_K_ROOT,      /* /caldav/, /carddav/, /principals/ */
    DAV_K_PRINCIPAL, /* /principals/<address>/ */
    DAV_K_HOME,      /* /caldav/<address>/, /carddav/<address>/ */
    DAV_K_COLL,      /* a calendar or address book */
    DAV_K_ITEM,      /* a calendar object or vCard */
    DAV_K_NEWCOLL,   /* an unmapped name directly in a home (MKCALENDAR, MKCOL) */
    DAV_K_NEWITEM,   /* an unmapped name in an existing collection (PUT) */
};

/* A resource a path names, resolved against the owner's store. */
struct dav_res {
    enum dav_space space;
    enum dav_kind kind;
    int mine;                   /* the path is inside the user's own tree */
    struct store_folder folder; /* DAV_K_COLL, DAV_K_ITEM, DAV_K_NEWITEM */
    struct store_item item;     /* DAV_K_ITEM */
    char seg[256];              /* collection segment */
    char name[256];             /* item name (ITEM, NEWITEM) or new collection name */
    char href[DAV_HREF_MAX];    /* canonical href, percent-encoded */
};

/* One request. */
struct dav_req {
    struct dav *d;
    struct http_req *r;
    const struct store_account *acct;
    struct store_user *u;
    const char *method;
    const char *path;
    struct dav_res res;
    const char *body;
    size_t body_len;
    int minimal; /* Prefer: return=minimal (RFC 8144) or Brief: t: no 404 propstats */
    /* The last collection found by segment: multiget and COPY resolve many hrefs of the
     * same collection, and each lookup would list the folders again. */
    int coll_cached;
    enum dav_space coll_sp;
    struct store_folder coll;
};

/* --- XML text into a struct buf (dav_xml.c) ------------------------------------------ */
/* Text escaped for XML character data and attribute values. */
void dav_buf_esc(struct buf *b, const char *s, size_t n);

/* --- XML in (dav_xml.c) ---------------------------------------------------------------- */
/* Parses a request body safely: no network, no entities, no DTD, bounded size and depth.
 * NULL when the body is not acceptable XML (the caller answers 400). */
xmlDocPtr dav_xml_parse(const char *body, size_t len);
/* 1 when node is the element {ns}name. */
int dav_xml_is(const xmlNode *node, const char *ns, const char *name);
/* The first child element {ns}name, or NULL. */
xmlNodePtr dav_xml_child(const xmlNode *node, const char *ns, const char *name);
/* The element's namespace URI ("" when none). */
const char *dav_xml_ns(const xmlNode *node);
/* The text content, malloc'd and trimmed of surrounding white space (NULL on OOM). */
char *dav_xml_text(const xmlNode *node);
/* <limit><nresults>N</nresults></limit> in namespace ns (DAV: for sync-collection,
 * CardDAV for addressbook-query): N, 0 when absent, -1 when malformed or out of range. */
long dav_xml_limit(xmlNodePtr root, const char *ns);

/* --- XML out (dav_xml.c) --------------------------------------------------------------- */
/* The multistatus opening tag with every namespace prefix we write (D C CR CS A). */
void dav_ms_open(struct buf *b);
void dav_ms_close(struct buf *b);
/* Opens <D:response><D:href>href</D:href> (href already percent-encoded). */
void dav_ms_response_open(struct buf *b, const char *href);
void dav_ms_response_close(struct buf *b);
/* A whole <D:response> with a status only (e.g. 404 for a missing href). */
void dav_ms_status_response(struct buf *b, const char *href, int status);
/* An element name for {ns}name: the fixed prefix for our namespaces, else a local xmlns
 * declaration. open = "<P:name" (caller closes with ">" or "/>"), close = "</P:name>". */
void dav_xml_open_el(struct buf *b, const char *ns, const char *name);
void dav_xml_close_el(struct buf *b, const char *ns, const char *name);
const char *dav_status_line(int status);

/* Sends a 207 multistatus (consumes b). */
void dav_send_ms(struct dav_req *q, struct buf *b);
/* Sends an error with a DAV:error body naming the precondition {ns}name, and an optional
 * inner href (no-uid-conflict). */
void dav_send_error(struct dav_req *q, int status, const char *ns, const char *name,
                    const char *href);
void dav_send_status(struct dav_req *q, int status);

/* --- paths (dav_http.c) ---------------------------------------------------------------- */
/* Resolves a decoded path of the request's user into res. Another user's path, or a
 * path outside our trees, gives DAV_K_NONE. Returns 0, or -1 when the store failed. */
int dav_resolve(struct dav_req *q, const char *path, struct dav_res *res);
/* Percent-encodes a path segment (or a path keeping '/'). */
void dav_href_seg(struct buf *b, const char *seg, int keep_slash);
/* Percent-decodes in place; -1 on a malformed escape or an encoded NUL or '/'. */
int dav_pct_decode(char *s);
/* The href of a collection or an item of it. */
void dav_coll_href(const struct dav_req *q, enum dav_space sp, const struct store_folder *f,
                   char *out, size_t outlen);
void dav_item_href(const struct dav_req *q, enum dav_space sp, const struct store_folder *f,
                   const struct store_item *it, char *out, size_t outlen);
void dav_home_href(const struct dav_req *q, enum dav_space sp, char *out, size_t outlen);
void dav_principal_href(const struct dav_req *q, char *out, size_t outlen);
/* The collection segment of a folder and the resource name of an item. */
void dav_folder_seg(const struct store_folder *f, char *out, size_t outlen);
void dav_item_name(const struct store_item *it, enum dav_space sp, char *out, size_t outlen);
/* 1 when a folder class belongs to a space's collections. */
int dav_class_in_space(enum store_class c, enum dav_space sp);
/* Lists the folders of the space's classes only (mail folders, which can be many and
 * large, are never read). */
int dav_folder_list(struct dav_req *q, enum dav_space sp, store_folder_cb cb, void *ctx);
/* A collection of the space by segment; 0 found, STORE_ENOTFOUND, or < 0. */
int dav_find_coll(struct dav_req *q, enum dav_space sp, const char *seg, struct store_folder *out);
/* An item by resource name (stored name, or the <ext_uid>.ics / <id>.ics forms). */
int dav_find_item(struct dav_req *q, const struct store_folder *f, const char *name,
                  struct store_item *out);
/* Depth header: 0, 1, or -1 for infinity; def when absent; -2 when malformed. */
int dav_depth(struct dav_req *q, int def);
/* The quoted strong ETag of an item. */
void dav_etag(const struct store_item *it, char *out, size_t outlen);
/* If-Match / If-None-Match against an item (NULL: does not exist): 0 ok, else 412. */
int dav_preconditions(struct dav_req *q, const struct store_item *it);

/* --- folder properties (dav_props.c) ---------------------------------------------------- */
/* Reads a flat JSON string member of folder props into out ("" when absent). */
void dav_fprop_get(const char *json, const char *key, char *out, size_t outlen);
/* Sets (val NULL: removes) a member; -1 when the result would not fit. */
int dav_fprop_set(char *json, size_t jsonlen, const char *key, const char *val);
/* Components (DAV_ICAL_* bits) a folder class holds. */
unsigned dav_class_comps(enum store_class c);

/* --- dead properties of collections (dav_dead.c) ---------------------------------------- */
/* 0 when the element may be kept (not too large, not one too many), else -1. */
int dav_dead_check(struct dav_req *q, int64_t folder_id, xmlNodePtr el);
/* Keeps the element as sent; -1 when it is too large or the store failed. */
int dav_dead_set(struct dav_req *q, int64_t folder_id, xmlNodePtr el);
int dav_dead_del(struct dav_req *q, int64_t folder_id, const char *ns, const char *name);
/* Appends the stored element: 1, or 0 when there is none. */
int dav_dead_get(struct dav_req *q, int64_t folder_id, const char *ns, const char *name,
                 struct buf *out);
/* Every dead property of the collection (names_only: empty elements, for propname). */
void dav_dead_all(struct dav_req *q, int64_t folder_id, int names_only, struct buf *out);
/* Drops them all (the collection is being deleted, inside its transaction). */
int dav_dead_drop(struct dav_req *q, int64_t folder_id);

/* --- properties (dav_props.c) ---------------------------------------------------------- */
/* A property asked for: namespace, name and the request element (calendar-data etc.). */
struct dav_pname {
    const char *ns;
    const char *name;
    xmlNodePtr node;
};
enum dav_pmode { DAV_PM_PROP = 0, DAV_PM_ALLPROP, DAV_PM_PROPNAME };
/* Everything a prop request carries beyond names: compiled calendar-data / address-data. */
struct dav_pset {
    enum dav_pmode mode;
    struct dav_pname *p;
    size_t n;
    struct dav_ical_data *cdata;
    struct dav_vcard_data *adata;
    xmlDocPtr doc;       /* the request the names point into; freed with the set */
    const char *precond; /* after a failed read: the CardDAV precondition, or NULL (400) */
};
/* Reads the <D:prop> children (or allprop/propname) into ps; -1 when malformed. */
int dav_pset_from_prop(xmlNodePtr prop, struct dav_pset *ps);
void dav_pset_free(struct dav_pset *ps);
/* Answers a failed dav_pset_from_prop: 403 with its precondition, else 400. */
void dav_send_pset_error(struct dav_req *q, const struct dav_pset *ps);
/* A parsed item for rendering calendar-data/address-data (may be NULL: parsed on demand). */
struct dav_parsed {
    struct dav_ical *ical;
    struct dav_vcard *vcard;
    char *body;
    size_t body_len;
};
void dav_parsed_free(struct dav_parsed *p);
/* Writes a <D:response> for a resource with the requested properties. */
int dav_props_response(struct dav_req *q, const struct dav_res *res, const struct dav_pset *ps,
                       struct dav_parsed *parsed, struct buf *b);
/* The value of one live property of a resource into out: 1, or 0 when it has none. */
int dav_prop_value(struct dav_req *q, const struct dav_res *res, const char *ns, const char *name,
                   struct buf *out);
/* 1 when {ns}name is a property we define (live), for PROPPATCH's protected answer. */
int dav_prop_is_live(const char *ns, const char *name);

/* --- methods --------------------------------------------------------------------------- */
void dav_method_options(struct dav_req *q);
void dav_method_propfind(struct dav_req *q);
void dav_method_proppatch(struct dav_req *q);
void dav_method_mkcol(struct dav_req *q);
void dav_method_put(struct dav_req *q);
void dav_method_get(struct dav_req *q);
void dav_method_delete(struct dav_req *q);
void dav_method_copymove(struct dav_req *q);
void dav_method_report(struct dav_req *q);
/* Well-known and unauthenticated paths. */
enum http_action dav_wellknown_handle(struct http_req *r, enum http_phase phase, void *ctx);
enum http_action dav_http_handle(struct http_req *r, enum http_phase phase, void *ctx);

/* --- reports --------------------------------------------------------------------------- */
void dav_report_calendar_query(struct dav_req *q, xmlNodePtr root);
void dav_report_multiget(struct dav_req *q, xmlNodePtr root);
void dav_report_freebusy(struct dav_req *q, xmlNodePtr root);
void dav_report_addressbook_query(struct dav_req *q, xmlNodePtr root);
void dav_report_sync(struct dav_req *q, xmlNodePtr root);
void dav_report_expand(struct dav_req *q, xmlNodePtr root);

/* A <D:response> for an item of a folder with the requested properties. */
int dav_item_response(struct dav_req *q, enum dav_space sp, const struct store_folder *f,
                      const struct store_item *it, const struct dav_pset *ps,
                      struct dav_parsed *parsed, struct buf *b);
/* A growing array of items (reports collect before they read bodies: no store calls
 * happen inside a store callback). */
struct dav_items {
    struct store_item *v;
    size_t n, cap;
};
int dav_items_cb(const struct store_item *it, void *ctx);
void dav_items_free(struct dav_items *a);
/* The report's <D:prop> into ps (mode PROP); -1 when malformed. */
int dav_report_pset(xmlNodePtr root, struct dav_pset *ps);

/* Loads an item's body and parses it as the space's format into p (for reports). 0, or
 * -1 when it does not parse (the item is then skipped). */
int dav_parse_item(struct dav_req *q, enum dav_space sp, const struct store_item *it,
                   struct dav_parsed *p);
/* Writes the ranges of a parsed calendar item up to horizon (inside the caller's txn). */
int dav_index_item(struct dav_req *q, int64_t item_id, const struct dav_ical *c, int64_t horizon);

#endif
