/*
 * wbxml_xml.c — XML to WBXML document tree, for `polaris wbxml encode` and the tests:
 * the XML form is libwbxml's ActiveSync convention (namespaces "AirSync:",
 * "AirSyncBase:", ... naming the code pages), which is also what wbxml_to_xml writes.
 *
 * The input is parsed by libxml2 without network, DTD loading or entity substitution,
 * with a size bound; a DOCTYPE is accepted only when it declares nothing (libwbxml writes
 * one naming ActiveSync), so no entity can be defined at all.
 */
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "eas/wbxml.h"
#include "server/server.h"

#define WBXML_XML_MAX (64u * 1024 * 1024)

static int x_fail(char *err, size_t errlen, const xmlNode *n, const char *msg, const char *what)
{
    if (errlen > 0)
        snprintf(err, errlen, "line %ld: %s%s%s", n != NULL ? (long)xmlGetLineNo(n) : 0L, msg,
                 what != NULL ? ": " : "", what != NULL ? what : "");
    return -1;
}

/* The tag of an element: its namespace names the page ("Email2:" or "Email2"). */
static int x_tag(const xmlNode *n, char *err, size_t errlen)
{
    char page[64];
    size_t len;
    int tag;

    if (n->ns == NULL || n->ns->href == NULL)
        return x_fail(err, errlen, n, "element without a namespace", (const char *)n->name);
    len = strlen((const char *)n->ns->href);
    if (len > 0 && n->ns->href[len - 1] == ':')
        len--;
    if (len == 0 || len >= sizeof(page))
        return x_fail(err, errlen, n, "unknown namespace", (const char *)n->ns->href);
    memcpy(page, n->ns->href, len);
    page[len] = '\0';
    if (wbxml_page_lookup(page) < 0)
        return x_fail(err, errlen, n, "unknown namespace", (const char *)n->ns->href);
    tag = wbxml_tag_lookup(page, (const char *)n->name);
    if (tag < 0)
        return x_fail(err, errlen, n, "unknown element", (const char *)n->name);
    return tag;
}

static int x_blank(const xmlChar *s)
{
    for (; s != NULL && *s != '\0'; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return 0;
    return 1;
}

/* The content of a leaf element and how it goes out (0 text, 1 opaque text, 2 base64). */
static int x_mode(const xmlNode *n, char *err, size_t errlen)
{
    int mode = 0;

    for (const xmlAttr *a = n->properties; a != NULL; a = a->next) {
        xmlChar *v;
        if (a->ns != NULL || strcmp((const char *)a->name, "opaque") != 0)
            return x_fail(err, errlen, n, "unexpected attribute", (const char *)a->name);
        v = xmlNodeGetContent((const xmlNode *)a);
        if (v != NULL && strcmp((const char *)v, "text") == 0)
            mode = 1;
        else if (v != NULL && strcmp((const char *)v, "base64") == 0)
            mode = 2;
        else
            mode = -1;
        xmlFree(v);
        if (mode < 0)
            return x_fail(err, errlen, n, "opaque must be \"text\" or \"base64\"", NULL);
    }
    return mode;
}

static int x_element(struct eas_doc *d, struct eas_node *parent, const xmlNode *n, int depth,
                     char *err, size_t errlen);

static int x_leaf(struct eas_doc *d, struct eas_node *parent, const xmlNode *n, unsigned tag,
                  int mode, char *err, size_t errlen)
{
    xmlChar *text = xmlNodeGetContent(n);
    size_t len = text != NULL ? strlen((const char *)text) : 0;
    struct eas_node *made;

    if (mode == 2) {
        unsigned char *bin = malloc(len / 4 * 3 + 3);
        ssize_t blen =
            bin != NULL ? b64_decode((const char *)text, len, bin, len / 4 * 3 + 3, B64_SKIP_JUNK)
                        : -1;
        made = blen >= 0 ? eas_add_opaque(d, parent, tag, bin, (size_t)blen) : NULL;
        free(bin);
        xmlFree(text);
        return made != NULL ? 0 : x_fail(err, errlen, n, "bad base64 or out of memory", NULL);
    }
    if (mode == 1)
        made = eas_add_opaque(d, parent, tag, text != NULL ? text : (const xmlChar *)"", len);
    else
        made = len > 0 ? eas_add_textn(d, parent, tag, (const char *)text, len)
                       : eas_add(d, parent, tag);
    xmlFree(text);
    return made != NULL ? 0 : x_fail(err, errlen, n, "cannot add element", NULL);
}

static int x_element(struct eas_doc *d, struct eas_node *parent, const xmlNode *n, int depth,
                     char *err, size_t errlen)
{
    int tag, mode, elems = 0;
    struct eas_node *me;

    if (depth > WBXML_MAX_DEPTH)
        return x_fail(err, errlen, n, "nesting too deep", NULL);
    tag = x_tag(n, err, errlen);
    if (tag < 0)
        return -1;
    mode = x_mode(n, err, errlen);
    if (mode < 0)
        return -1;
    for (const xmlNode *c = n->children; c != NULL; c = c->next) {
        if (c->type == XML_ELEMENT_NODE)
            elems++;
        else if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE &&
                 c->type != XML_COMMENT_NODE)
            return x_fail(err, errlen, c, "unexpected node", NULL);
    }
    if (elems == 0)
        return x_leaf(d, parent, n, (unsigned)tag, mode, err, errlen);
    if (mode != 0)
        return x_fail(err, errlen, n, "opaque element with children", NULL);
    me = eas_add(d, parent, (unsigned)tag);
    if (me == NULL)
        return x_fail(err, errlen, n, "cannot add element", NULL);
    for (const xmlNode *c = n->children; c != NULL; c = c->next) {
        if (c->type == XML_ELEMENT_NODE) {
            if (x_element(d, me, c, depth + 1, err, errlen) < 0)
                return -1;
        } else if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) &&
                   !x_blank(c->content))
            return x_fail(err, errlen, c, "text mixed with elements", NULL);
    }
    return 0;
}

int wbxml_from_xml(const char *xml, size_t len, struct eas_doc **out, char *err, size_t errlen)
{
    xmlDoc *doc = NULL;
    struct eas_doc *d = NULL;
    const xmlNode *root;

    *out = NULL;
    if (len > WBXML_XML_MAX || len > INT32_MAX) {
        snprintf(err, errlen, "XML document too large");
        return -1;
    }
    /* No XML_PARSE_NOENT (entities stay unexpanded), no DTD loading, no network. */
    doc = xmlReadMemory(xml, (int)len, NULL, "UTF-8",
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc == NULL) {
        snprintf(err, errlen, "not well-formed XML");
        return -1;
    }
    if (doc->intSubset != NULL && doc->intSubset->children != NULL) {
        snprintf(err, errlen, "DOCTYPE with declarations refused");
        goto err;
    }
    root = xmlDocGetRootElement(doc);
    if (root == NULL) {
        snprintf(err, errlen, "no root element");
        goto err;
    }
    d = eas_doc_new();
    if (d == NULL) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    if (x_element(d, NULL, root, 1, err, errlen) < 0)
        goto err;
    xmlFreeDoc(doc);
    *out = d;
    return 0;
err:
    eas_doc_free(d);
    xmlFreeDoc(doc);
    return -1;
}
