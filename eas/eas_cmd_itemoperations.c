/*
 * eas_cmd_itemoperations.c — ItemOperations (MS-ASCMD 2.2.1.10): Fetch of a message by
 * ServerId or search LongId (converted as Sync converts it, with the request's
 * BodyPreference / MIMESupport), of an attachment by FileReference (with Range), and
 * EmptyFolderContents. With MS-ASAcceptMultiPart the attachment bytes go as parts of an
 * application/vnd.ms-sync.multipart response (MS-ASCMD 2.2.2.9.1) instead of base64.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eas/eas_pim.h"
#include "eas/eas_sync.h"

#define IO_OK         1
#define IO_PROTOCOL   2
#define IO_SERVER     3
#define IO_NOTFOUND   6
#define IO_RANGE      8
#define IO_STORE      9
#define IO_CONVERSION 14
#define IO_BAD_ATT    15

#define IO_MAX_OPS   64 /* operations per request */
#define IO_MAX_PARTS 64

/* Data parts of a multipart response (part 0 is the WBXML). */
struct eas_io {
    struct eas_req *req;
    char *parts[IO_MAX_PARTS];
    size_t lens[IO_MAX_PARTS];
    int nparts;
};

static void eas_io_fetch_item(struct eas_io *io, struct eas_node *f, const struct eas_node *op,
                              int64_t fid, int64_t iid, const char *sid_tag_text, unsigned sid_tag)
{
    struct eas_req *req = io->req;
    const struct eas_node *opts = eas_child(op, EAS_ITEMOPERATIONS_OPTIONS);
    struct eas_coll_opts o;
    struct store_item it;
    struct store_folder fo;
    char *body = NULL, cid[24];
    size_t len = 0;
    struct eas_node *props;

    eas_coll_opts_default(&o);
    if (opts) {
        eas_body_prefs_parse(opts, &o);
        o.mime_support = (int)eas_child_int(opts, EAS_AIRSYNC_MIMESUPPORT, 0);
    }
    if (store_item_get(req->u, iid, &it, NULL) != STORE_OK || it.folder_id != fid) {
        eas_add_int(req->out, f, EAS_ITEMOPERATIONS_STATUS, IO_NOTFOUND);
        eas_add_text(req->out, f, sid_tag, sid_tag_text);
        return;
    }
    if (store_item_body(req->u, it.id, &body, &len, NULL) != STORE_OK) {
        eas_add_int(req->out, f, EAS_ITEMOPERATIONS_STATUS, IO_SERVER);
        eas_add_text(req->out, f, sid_tag, sid_tag_text);
        return;
    }
    eas_add_int(req->out, f, EAS_ITEMOPERATIONS_STATUS, IO_OK);
    if (sid_tag == EAS_AIRSYNC_SERVERID) {
        snprintf(cid, sizeof(cid), "%lld", (long long)fid);
        eas_add_text(req->out, f, EAS_AIRSYNC_COLLECTIONID, cid);
    }
    eas_add_text(req->out, f, sid_tag, sid_tag_text);
    if (store_folder_get(req->u, fid, &fo, NULL) == STORE_OK && fo.cls != STORE_CLASS_MAIL) {
        /* a PIM item: its class, converted from iCalendar / vCard */
        static const char *const names[] = {"", "Email", "Calendar", "Contacts", "Tasks", "Notes"};
        struct eas_pim_ctx pc = {
            .version = req->version, .o = &o, .self = req->acct->address, .now = time(NULL)};
        eas_add_text(req->out, f, EAS_AIRSYNC_CLASS, names[fo.cls <= 5 ? fo.cls : 0]);
        props = eas_add(req->out, f, EAS_ITEMOPERATIONS_PROPERTIES);
        if (eas_pim_appdata(req->out, props, &pc, fo.cls, body, len) < 0)
            log_warn("eas", "ItemOperations: item %lld could not be converted", (long long)it.id);
        free(body);
        return;
    }
    eas_add_text(req->out, f, EAS_AIRSYNC_CLASS, "Email");
    props = eas_add(req->out, f, EAS_ITEMOPERATIONS_PROPERTIES);
    if (eas_email_appdata(req->out, props, req->version, &it, body, len, &o) < 0)
        log_warn("eas", "ItemOperations: item %lld could not be converted", (long long)it.id);
    free(body);
}

/* "a-b" of a Range; -1 when absent; 0 when malformed. */
static int eas_io_range(const struct eas_node *opts, long long *lo, long long *hi)
{
    const char *r = opts ? eas_child_text(opts, EAS_ITEMOPERATIONS_RANGE) : NULL;
    int n = 0;

    if (!r)
        return -1;
    if (sscanf(r, "%lld-%lld%n", lo, hi, &n) != 2 || r[n] || *lo < 0 || *hi < *lo)
        return 0;
    return 1;
}

static void eas_io_fetch_file(struct eas_io *io, struct eas_node *f, const struct eas_node *op,
                              const char *ref)
{
    struct eas_req *req = io->req;
    const struct eas_node *opts = eas_child(op, EAS_ITEMOPERATIONS_OPTIONS);
    int64_t fid, iid;
    unsigned part;
    struct store_item it;
    char *body = NULL, *data = NULL, ctype[160];
    size_t len = 0, dlen = 0;
    long long lo = 0, hi = 0;
    int ranged = eas_io_range(opts, &lo, &hi);
    struct eas_node *props;

    if (eas_fileref_parse(ref, &fid, &iid, &part) < 0 ||
        store_item_get(req->u, iid, &it, NULL) != STORE_OK || it.folder_id != fid ||
        store_item_body(req->u, iid, &body, &len, NULL) != STORE_OK ||
        eas_email_part(body, len, part, &data, &dlen, ctype, sizeof(ctype)) < 0) {
        eas_add_int(req->out, f, EAS_ITEMOPERATIONS_STATUS, IO_BAD_ATT);
        eas_add_text(req->out, f, EAS_AIRSYNCBASE_FILEREFERENCE, ref);
        free(body);
        return;
    }
    free(body);
    if (ranged == 0 || (ranged > 0 && (size_t)lo >= dlen && dlen > 0)) {
        eas_add_int(req->out, f, EAS_ITEMOPERATIONS_STATUS, IO_RANGE);
        eas_add_text(req->out, f, EAS_AIRSYNCBASE_FILEREFERENCE, ref);
        free(data);
        return;
    }
    size_t off = ranged > 0 ? (size_t)lo : 0;
    size_t n = ranged > 0 ? ((size_t)hi + 1 > dlen ? dlen : (size_t)hi + 1) - off : dlen;
    eas_add_int(req->out, f, EAS_ITEMOPERATIONS_STATUS, IO_OK);
    eas_add_text(req->out, f, EAS_AIRSYNCBASE_FILEREFERENCE, ref);
    props = eas_add(req->out, f, EAS_ITEMOPERATIONS_PROPERTIES);
    eas_add_text(req->out, props, EAS_AIRSYNCBASE_CONTENTTYPE, ctype);
    if (ranged > 0) {
        char rs[48];
        snprintf(rs, sizeof(rs), "%zu-%zu", off, n ? off + n - 1 : off);
        eas_add_text(req->out, props, EAS_ITEMOPERATIONS_RANGE, rs);
        eas_add_int(req->out, props, EAS_ITEMOPERATIONS_TOTAL, (long long)dlen);
    }
    if (req->accept_multipart && io->nparts < IO_MAX_PARTS) {
        /* the part keeps the bytes; the WBXML names it */
        char *p = malloc(n ? n : 1);
        if (p) {
            memcpy(p, data + off, n);
            io->parts[io->nparts] = p;
            io->lens[io->nparts] = n;
            io->nparts++;
            eas_add_int(req->out, props, EAS_ITEMOPERATIONS_PART, io->nparts);
            free(data);
            return;
        }
    }
    {
        size_t cap = (n + 2) / 3 * 4 + 1;
        char *b64 = malloc(cap);
        if (b64) {
            b64_encode((const unsigned char *)data + off, n, b64, cap);
            eas_add_text(req->out, props, EAS_ITEMOPERATIONS_DATA, b64);
            free(b64);
        }
    }
    free(data);
}

static void eas_io_fetch(struct eas_io *io, struct eas_node *resp, const struct eas_node *op)
{
    struct eas_req *req = io->req;
    struct eas_node *f = eas_add(req->out, resp, EAS_ITEMOPERATIONS_FETCH);
    const char *store = eas_child_text(op, EAS_ITEMOPERATIONS_STORE);
    const char *sid = eas_child_text(op, EAS_AIRSYNC_SERVERID);
    const char *ref = eas_child_text(op, EAS_AIRSYNCBASE_FILEREFERENCE);
    const char *lid = eas_child_text(op, EAS_SEARCH_LONGID);
    int64_t fid, iid;

    if (store && strcasecmp(store, "Mailbox") != 0) {
        eas_add_int(req->out, f, EAS_ITEMOPERATIONS_STATUS, IO_STORE);
        return;
    }
    if (ref) {
        eas_io_fetch_file(io, f, op, ref);
    } else if (sid || lid) {
        const char *id = sid ? sid : lid;
        unsigned tag = sid ? EAS_AIRSYNC_SERVERID : EAS_SEARCH_LONGID;
        if (eas_parse_server_id(id, &fid, &iid) < 0) {
            eas_add_int(req->out, f, EAS_ITEMOPERATIONS_STATUS, IO_NOTFOUND);
            eas_add_text(req->out, f, tag, id);
            return;
        }
        eas_io_fetch_item(io, f, op, fid, iid, id, tag);
    } else {
        eas_add_int(req->out, f, EAS_ITEMOPERATIONS_STATUS, IO_PROTOCOL);
    }
}

static void eas_io_delete_subfolders(struct eas_req *req, int64_t parent, int *failed);

struct eas_io_ids {
    int64_t *ids;
    size_t n, cap;
    int64_t parent;
};

static int eas_io_collect(const struct store_item_brief *b, void *ctx)
{
    struct eas_io_ids *v = ctx;

    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 256;
        int64_t *n = realloc(v->ids, cap * sizeof(*n));
        if (!n)
            return 1;
        v->ids = n;
        v->cap = cap;
    }
    v->ids[v->n++] = b->id;
    return 0;
}

static int eas_io_child(const struct store_folder *f, void *ctx)
{
    struct eas_io_ids *v = ctx;

    if (f->parent_id != v->parent)
        return 0;
    return eas_io_collect(&(struct store_item_brief){.id = f->id}, ctx);
}

static void eas_io_delete_subfolders(struct eas_req *req, int64_t parent, int *failed)
{
    struct eas_io_ids v = {.parent = parent};

    if (store_folder_list(req->u, 0, eas_io_child, &v, NULL) != STORE_OK)
        *failed = 1;
    for (size_t i = 0; i < v.n; i++)
        if (store_folder_delete(req->u, v.ids[i], NULL) != STORE_OK)
            *failed = 1;
    free(v.ids);
}

static void eas_io_empty(struct eas_io *io, struct eas_node *resp, const struct eas_node *op)
{
    struct eas_req *req = io->req;
    struct eas_node *e = eas_add(req->out, resp, EAS_ITEMOPERATIONS_EMPTYFOLDERCONTENTS);
    const char *cid = eas_child_text(op, EAS_AIRSYNC_COLLECTIONID);
    const struct eas_node *opts = eas_child(op, EAS_ITEMOPERATIONS_OPTIONS);
    struct store_folder f;
    struct eas_io_ids v = {0};
    int failed = 0;

    if (eas_folder_lookup(req, cid, &f) != STORE_OK) {
        eas_add_int(req->out, e, EAS_ITEMOPERATIONS_STATUS, IO_NOTFOUND);
        eas_add_text(req->out, e, EAS_AIRSYNC_COLLECTIONID, cid ? cid : "");
        return;
    }
    if (store_txn_begin(req->u, NULL) != STORE_OK) {
        failed = 1;
        goto out;
    }
    if (store_item_list_brief(req->u, f.id, eas_io_collect, &v, NULL) != STORE_OK)
        failed = 1;
    for (size_t i = 0; i < v.n && !failed; i++)
        if (store_item_delete(req->u, v.ids[i], NULL) != STORE_OK)
            failed = 1;
    if (!failed && opts && eas_child(opts, EAS_ITEMOPERATIONS_DELETESUBFOLDERS))
        eas_io_delete_subfolders(req, f.id, &failed);
    if (failed)
        store_txn_rollback(req->u);
    else if (store_txn_commit(req->u, NULL, NULL) != STORE_OK)
        failed = 1;
out:
    free(v.ids);
    eas_add_int(req->out, e, EAS_ITEMOPERATIONS_STATUS, failed ? IO_SERVER : IO_OK);
    eas_add_text(req->out, e, EAS_AIRSYNC_COLLECTIONID, cid);
}

static void eas_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* The multipart body: count, (offset, length) per part, then the parts (little-endian). */
static int eas_io_multipart(struct eas_io *io)
{
    struct eas_req *req = io->req;
    uint8_t *wb = NULL;
    size_t wlen = 0, total, head, off;
    int n = io->nparts + 1;
    unsigned char *p;

    if (wbxml_encode(req->out, &wb, &wlen) < 0)
        return -1;
    head = 4 + 8 * (size_t)n;
    total = head + wlen;
    for (int i = 0; i < io->nparts; i++)
        total += io->lens[i];
    if (total > UINT32_MAX || !(p = malloc(total))) {
        free(wb);
        return -1;
    }
    eas_put32(p, (uint32_t)n);
    off = head;
    eas_put32(p + 4, (uint32_t)off);
    eas_put32(p + 8, (uint32_t)wlen);
    memcpy(p + off, wb, wlen);
    off += wlen;
    for (int i = 0; i < io->nparts; i++) {
        eas_put32(p + 12 + 8 * (size_t)i, (uint32_t)off);
        eas_put32(p + 16 + 8 * (size_t)i, (uint32_t)io->lens[i]);
        memcpy(p + off, io->parts[i], io->lens[i]);
        off += io->lens[i];
    }
    free(wb);
    eas_doc_free(req->out);
    req->out = NULL;
    req->raw = (char *)p;
    req->raw_len = total;
    req->raw_ctype = "application/vnd.ms-sync.multipart";
    return 0;
}

int eas_cmd_itemoperations(struct eas_req *req)
{
    const struct eas_node *root = req->in ? eas_doc_root(req->in) : NULL, *op;
    struct eas_io io = {.req = req};
    struct eas_node *out, *resp;
    int n = 0, rc = 0;

    if (!(req->out = eas_doc_new()) ||
        !(out = eas_add(req->out, NULL, EAS_ITEMOPERATIONS_ITEMOPERATIONS))) {
        req->http_status = 500;
        return 0;
    }
    if (!root || root->tag != EAS_ITEMOPERATIONS_ITEMOPERATIONS || !root->first) {
        eas_add_int(req->out, out, EAS_ITEMOPERATIONS_STATUS, IO_PROTOCOL);
        return 0;
    }
    eas_add_int(req->out, out, EAS_ITEMOPERATIONS_STATUS, IO_OK);
    resp = eas_add(req->out, out, EAS_ITEMOPERATIONS_RESPONSE);
    for (op = root->first; op && n < IO_MAX_OPS; op = op->next, n++) {
        if (op->tag == EAS_ITEMOPERATIONS_FETCH)
            eas_io_fetch(&io, resp, op);
        else if (op->tag == EAS_ITEMOPERATIONS_EMPTYFOLDERCONTENTS)
            eas_io_empty(&io, resp, op);
        else {
            struct eas_node *x = eas_add(req->out, resp, op->tag);
            eas_add_int(req->out, x, EAS_ITEMOPERATIONS_STATUS, IO_PROTOCOL);
        }
    }
    if (io.nparts > 0 && eas_io_multipart(&io) < 0)
        req->http_status = 500;
    for (int i = 0; i < io.nparts; i++)
        free(io.parts[i]);
    return rc;
}
