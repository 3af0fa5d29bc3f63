/*
 * eas_cmd_getattachment.c — GetAttachment (MS-ASCMD 2.2.1.7), the attachment download of
 * protocol 2.5 to 12.1 (later versions use ItemOperations Fetch with a FileReference).
 *
 * The request has no body: the attachment is named by the AttachmentName query parameter,
 * which holds the FileReference the Email class gave out ("<folder>:<item>:<part>"). The
 * answer is the attachment's decoded bytes with its own Content-Type, not WBXML. A
 * reference that names nothing (a deleted message, another folder) gets HTTP 500, which is
 * what the specification tells clients to expect for an attachment that is gone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eas/eas_int.h"
#include "eas/eas_sync.h"

int eas_cmd_getattachment(struct eas_req *req)
{
    int64_t fid, iid;
    unsigned part;
    struct store_item it;
    struct store_folder f;
    char *msg = NULL, *data = NULL, ctype[160];
    size_t len = 0, dlen = 0;
    char fidbuf[32];

    if (!req->attachment_name[0] ||
        eas_fileref_parse(req->attachment_name, &fid, &iid, &part) < 0) {
        req->http_status = 400;
        return 0;
    }
    /* The item must be in one of the user's mail folders, and still where the reference
     * says: a message moved away has a new reference. */
    snprintf(fidbuf, sizeof(fidbuf), "%lld", (long long)fid);
    if (eas_folder_lookup(req, fidbuf, &f) != STORE_OK ||
        store_item_get(req->u, iid, &it, NULL) != STORE_OK || it.folder_id != fid ||
        store_item_body(req->u, iid, &msg, &len, NULL) != STORE_OK ||
        eas_email_part(msg, len, part, &data, &dlen, ctype, sizeof(ctype)) < 0) {
        req->http_status = 500;
        goto out;
    }
    req->raw = data;
    req->raw_len = dlen;
    snprintf(req->raw_ctype_buf, sizeof(req->raw_ctype_buf), "%s",
             ctype[0] ? ctype : "application/octet-stream");
    req->raw_ctype = req->raw_ctype_buf;
    data = NULL;
out:
    free(msg);
    free(data);
    return 0;
}
