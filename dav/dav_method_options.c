/*
 * dav_method_options.c — OPTIONS: the DAV compliance classes (RFC 4918 §10.1, RFC 4791
 * §5.1, RFC 6352 §6.1, RFC 5689) and the methods a resource allows. Class 2 (locks) is
 * not offered: no CalDAV/CardDAV client needs it.
 */
#include "dav/dav_int.h"

void dav_method_options(struct dav_req *q)
{
    const char *allow;

    switch (q->res.kind) {
    case DAV_K_ITEM:
        allow = "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, COPY, MOVE";
        break;
    case DAV_K_COLL:
        allow = "OPTIONS, PROPFIND, PROPPATCH, DELETE, REPORT, MOVE";
        break;
    case DAV_K_NEWITEM:
        allow = "OPTIONS, PUT";
        break;
    case DAV_K_NEWCOLL:
        allow = "OPTIONS, MKCOL, MKCALENDAR";
        break;
    default:
        allow = "OPTIONS, PROPFIND, REPORT";
        break;
    }
    http_add_header(q->r, "DAV",
                    "1, 3, access-control, calendar-access, addressbook, "
                    "extended-mkcol, sync-collection");
    http_add_header(q->r, "Allow", allow);
    http_respond(q->r, 200, "text/plain", "", 0);
}
