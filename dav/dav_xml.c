/*
 * dav_xml.c — XML in and out for DAV: the safe request parser (no network, no entities,
 * no DTD, bounded size and depth) and the writer of multistatus and error bodies.
 *
 * Responses are written as text into a growing buffer with fixed prefixes for the
 * namespaces we own (D C CR CS A); a property of any other namespace gets a local
 * xmlns declaration, so no prefix can clash.
 */
#include <ctype.h>
#include <libxml/parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dav/dav_int.h"

/* --- buffer ------------------------------------------------------------------------------ */
void dav_buf_esc(struct buf *b, const char *s, size_t n)
{
    size_t i, start = 0;

    for (i = 0; i < n; i++) {
        const char *rep = NULL;
        unsigned char c = (unsigned char)s[i];

        if (c == '<')
            rep = "&lt;";
        else if (c == '>')
            rep = "&gt;";
        else if (c == '&')
            rep = "&amp;";
        else if (c == '"')
            rep = "&quot;";
        else if (c == '\r')
            rep = "&#13;"; /* kept through XML end-of-line normalisation (iCalendar CRLF) */
        else if (c < 0x20 && c != '\n' && c != '\t')
            rep = ""; /* not allowed in XML 1.0 at all */
        if (!rep)
            continue;
        buf_put(b, s + start, i - start);
        buf_puts(b, rep);
        start = i + 1;
    }
    buf_put(b, s + start, n - start);
}

/* --- parsing ----------------------------------------------------------------------------- */
/* A DOCTYPE anywhere (the usual carrier of entity bombs and external entities) refuses
 * the body before libxml2 sees it; the parse options below are the second line. */
static int dav_xml_has_doctype(const char *body, size_t len)
{
    size_t i;

    for (i = 0; i + 2 < len; i++) {
        if (body[i] == '<' && body[i + 1] == '!' &&
            (body[i + 2] == 'D' || body[i + 2] == 'd' || body[i + 2] == 'E' || body[i + 2] == 'e'))
            return 1;
    }
    return 0;
}

static int dav_xml_depth_ok(const xmlNode *n, int depth)
{
    const xmlNode *c;

    if (depth > DAV_XML_DEPTH)
        return 0;
    for (c = n->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !dav_xml_depth_ok(c, depth + 1))
            return 0;
    return 1;
}

xmlDocPtr dav_xml_parse(const char *body, size_t len)
{
    xmlParserCtxtPtr ctxt;
    xmlDocPtr doc;
    int ns_ok;
    const int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA |
                     XML_PARSE_NOBLANKS;

    if (!body || len == 0 || len > DAV_XML_MAX || len > INT32_MAX)
        return NULL;
    /* UTF-16 bodies would hide the DOCTYPE from the scan: we take UTF-8 only. */
    if ((unsigned char)body[0] == 0xFE || (unsigned char)body[0] == 0xFF || body[0] == '\0')
        return NULL;
    if (dav_xml_has_doctype(body, len))
        return NULL;
    ctxt = xmlNewParserCtxt();
    if (!ctxt)
        return NULL;
    doc = xmlCtxtReadMemory(ctxt, body, (int)len, NULL, NULL, opts);
    /* Namespace errors (an undeclared prefix, xmlns:p="") are only warnings to libxml2;
     * a DAV body with them is malformed and gets 400 like any other. */
    ns_ok = ctxt->wellFormed && ctxt->nsWellFormed;
    xmlFreeParserCtxt(ctxt);
    if (!doc)
        return NULL;
    if (!ns_ok || doc->intSubset || doc->extSubset || !xmlDocGetRootElement(doc) ||
        !dav_xml_depth_ok(xmlDocGetRootElement(doc), 1)) {
        xmlFreeDoc(doc);
        return NULL;
    }
    return doc;
}

const char *dav_xml_ns(const xmlNode *node)
{
    return node && node->ns && node->ns->href ? (const char *)node->ns->href : "";
}

int dav_xml_is(const xmlNode *node, const char *ns, const char *name)
{
    return node && node->type == XML_ELEMENT_NODE && strcmp((const char *)node->name, name) == 0 &&
           strcmp(dav_xml_ns(node), ns) == 0;
}

xmlNodePtr dav_xml_child(const xmlNode *node, const char *ns, const char *name)
{
    xmlNodePtr c;

    if (!node)
        return NULL;
    for (c = node->children; c; c = c->next)
        if (dav_xml_is(c, ns, name))
            return c;
    return NULL;
}

long dav_xml_limit(xmlNodePtr root, const char *ns)
{
    xmlNodePtr lim = dav_xml_child(root, ns, "limit"), nr;
    char *t, *end;
    long v;

    if (!lim)
        return 0;
    nr = dav_xml_child(lim, ns, "nresults");
    t = nr ? dav_xml_text(nr) : NULL;
    if (!t)
        return -1;
    v = strtol(t, &end, 10);
    if (end == t || *end || v <= 0 || v > 100000)
        v = -1;
    free(t);
    return v;
}

char *dav_xml_text(const xmlNode *node)
{
    xmlChar *t = xmlNodeGetContent(node);
    char *s, *out;
    size_t n;

    if (!t)
        return strdup("");
    s = (char *)t;
    while (*s && isspace((unsigned char)*s))
        s++;
    n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    out = strndup(s, n);
    xmlFree(t);
    return out;
}

/* --- writing ----------------------------------------------------------------------------- */
static const char *dav_ns_prefix(const char *ns)
{
    static const struct {
        const char *ns, *prefix;
    } known[] = {{NS_DAV, "D"}, {NS_CAL, "C"}, {NS_CARD, "CR"}, {NS_CS, "CS"}, {NS_APPL, "A"}};
    size_t i;

    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(ns, known[i].ns) == 0)
            return known[i].prefix;
    return NULL;
}

void dav_xml_open_el(struct buf *b, const char *ns, const char *name)
{
    const char *pfx = dav_ns_prefix(ns);

    if (pfx) {
        buf_printf(b, "<%s:%s", pfx, name);
        return;
    }
    if (!*ns) {
        buf_printf(b, "<%s xmlns=\"\"", name);
        return;
    }
    buf_printf(b, "<X:%s xmlns:X=\"", name);
    dav_buf_esc(b, ns, strlen(ns));
    buf_puts(b, "\"");
}

void dav_xml_close_el(struct buf *b, const char *ns, const char *name)
{
    const char *pfx = dav_ns_prefix(ns);

    if (pfx)
        buf_printf(b, "</%s:%s>", pfx, name);
    else if (!*ns)
        buf_printf(b, "</%s>", name);
    else
        buf_printf(b, "</X:%s>", name);
}

const char *dav_status_line(int status)
{
    switch (status) {
    case 200:
        return "HTTP/1.1 200 OK";
    case 403:
        return "HTTP/1.1 403 Forbidden";
    case 404:
        return "HTTP/1.1 404 Not Found";
    case 409:
        return "HTTP/1.1 409 Conflict";
    case 424:
        return "HTTP/1.1 424 Failed Dependency";
    case 507:
        return "HTTP/1.1 507 Insufficient Storage";
    default:
        return "HTTP/1.1 500 Internal Server Error";
    }
}

void dav_ms_open(struct buf *b)
{
    buf_puts(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"" NS_DAV
                "\" xmlns:C=\"" NS_CAL "\" xmlns:CR=\"" NS_CARD "\" xmlns:CS=\"" NS_CS
                "\" xmlns:A=\"" NS_APPL "\">");
}

void dav_ms_close(struct buf *b)
{
    buf_puts(b, "</D:multistatus>\n");
}

void dav_ms_response_open(struct buf *b, const char *href)
{
    buf_puts(b, "<D:response><D:href>");
    dav_buf_esc(b, href, strlen(href));
    buf_puts(b, "</D:href>");
}

void dav_ms_response_close(struct buf *b)
{
    buf_puts(b, "</D:response>");
}

void dav_ms_status_response(struct buf *b, const char *href, int status)
{
    dav_ms_response_open(b, href);
    buf_printf(b, "<D:status>%s</D:status>", dav_status_line(status));
    dav_ms_response_close(b);
}

void dav_send_ms(struct dav_req *q, struct buf *b)
{
    if (b->oom) {
        buf_free(b);
        http_respond_text(q->r, 500, "Internal Server Error\n");
        return;
    }
    http_respond(q->r, 207, "application/xml; charset=utf-8", b->p, b->len);
    buf_free(b);
}

void dav_send_error(struct dav_req *q, int status, const char *ns, const char *name,
                    const char *href)
{
    struct buf b = {0};

    buf_puts(&b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"" NS_DAV
                 "\" xmlns:C=\"" NS_CAL "\" xmlns:CR=\"" NS_CARD "\">");
    dav_xml_open_el(&b, ns, name);
    if (href) {
        buf_puts(&b, "><D:href>");
        dav_buf_esc(&b, href, strlen(href));
        buf_puts(&b, "</D:href>");
        dav_xml_close_el(&b, ns, name);
    } else {
        buf_puts(&b, "/>");
    }
    buf_puts(&b, "</D:error>\n");
    if (b.oom)
        http_respond_text(q->r, 500, "Internal Server Error\n");
    else
        http_respond(q->r, status, "application/xml; charset=utf-8", b.p, b.len);
    buf_free(&b);
}

void dav_send_status(struct dav_req *q, int status)
{
    const char *text;

    switch (status) {
    case 201:
        text = "Created\n";
        break;
    case 204:
        http_respond(q->r, 204, NULL, "", 0);
        return;
    case 400:
        text = "Bad Request\n";
        break;
    case 403:
        text = "Forbidden\n";
        break;
    case 404:
        text = "Not Found\n";
        break;
    case 405:
        text = "Method Not Allowed\n";
        break;
    case 409:
        text = "Conflict\n";
        break;
    case 412:
        text = "Precondition Failed\n";
        break;
    case 415:
        text = "Unsupported Media Type\n";
        break;
    case 507:
        text = "Insufficient Storage\n";
        break;
    default:
        text = "Internal Server Error\n";
        break;
    }
    http_respond_text(q->r, status, text);
}
