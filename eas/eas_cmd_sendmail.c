/*
 * eas_cmd_sendmail.c — SendMail, SmartReply and SmartForward (MS-ASCMD 2.2.1.17, 2.2.1.18,
 * 2.2.1.19): the device's MIME message goes through the delivery pipeline like an SMTP
 * submission (sending limits, local copies, the outbound queue for the rest).
 *
 * 14.0+ sends WBXML ComposeMail (Mime, SaveInSentItems, ClientId, Source, ReplaceMime);
 * 12.1 and older send the MIME as the body with SaveInSent=T / ItemId / CollectionId in
 * the query. The From must be the user or an address whose mail reaches them; a message
 * without one gets the user's. Bcc is taken out of what is sent and kept in the Sent
 * copy. SmartReply / SmartForward add the original — quoted text for a reply, the message
 * itself (message/rfc822) for a forward — unless ReplaceMime says the device did, and set
 * \Answered / $Forwarded on it.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "eas/eas_sync.h"
#include "mail/mime.h"

#define CM_INVALID_MIME    107
#define CM_SERVER_ERROR    110
#define CM_RETRY_LATER     111
#define CM_QUOTA           113
#define CM_SEND_QUOTA      115
#define CM_RCPT_UNRESOLVED 116
#define CM_PREVIOUSLY_SENT 118
#define CM_NO_RECIPIENT    119
#define CM_SUBMIT_FAILED   120
#define CM_TOO_LARGE       122
#define CM_NOT_FOUND       150

#define EAS_SENT_NS   "eas.sent" /* ClientIds of sent messages, by device */
#define EAS_MAX_RCPTS 1000

enum eas_compose { EAS_SEND, EAS_REPLY, EAS_FORWARD };

struct eas_compose_req {
    struct eas_req *req;
    enum eas_compose kind;
    const char *mime;
    size_t mime_len;
    int save_in_sent;
    int replace_mime;
    char client_id[65];
    int64_t src_folder, src_item; /* SmartReply/Forward source, 0 none */
};

/* ---- building the message ------------------------------------------------------------- */

/* The raw field at f (name to end of its line break) as offsets into hdr. */
static void eas_field_span(const char *hdr, size_t len, const struct mime_field *f, size_t *start,
                           size_t *end)
{
    size_t e = (size_t)(f->value - hdr) + f->value_len;

    *start = (size_t)(f->name - hdr);
    if (e < len && hdr[e] == '\r')
        e++;
    if (e < len && hdr[e] == '\n')
        e++;
    *end = e;
}

/* Appends the header fields of hdr to out, leaving out those named in drop (and, when
 * content is 1, keeping only Content-* fields; 0 keeps all but Content-* / MIME-Version;
 * -1 keeps everything not dropped). */
static void eas_copy_fields(const char *hdr, size_t len, const char *const *drop, int content,
                            struct buf *out)
{
    struct mime_field f;
    size_t pos = 0;

    while (mime_header_next(hdr, len, &pos, &f)) {
        size_t s, e;
        int skip = 0, is_content = (f.name_len >= 8 && !strncasecmp(f.name, "Content-", 8)) ||
                                   (f.name_len == 12 && !strncasecmp(f.name, "MIME-Version", 12));

        for (size_t i = 0; drop && drop[i]; i++)
            if (strlen(drop[i]) == f.name_len && !strncasecmp(f.name, drop[i], f.name_len))
                skip = 1;
        if (skip || (content == 1 && !is_content) || (content == 0 && is_content))
            continue;
        eas_field_span(hdr, len, &f, &s, &e);
        buf_put(out, hdr + s, e - s);
        if (e == s || hdr[e - 1] != '\n')
            buf_puts(out, "\r\n");
    }
}

static void eas_b64_lines(const char *s, size_t len, struct buf *out)
{
    char line[80];

    for (size_t i = 0; i < len; i += 57) {
        size_t n = len - i < 57 ? len - i : 57;
        b64_encode((const unsigned char *)s + i, n, line, sizeof(line));
        buf_puts(out, line);
        buf_puts(out, "\r\n");
    }
}

/* The original as quoted plain text, with the usual header lines above it. */
static void eas_quote_original(struct eas_req *req, const char *orig, size_t olen, struct buf *out)
{
    char *text = NULL;
    size_t tlen = 0;
    struct mime_field f;
    size_t hlen = mime_header_size(orig, olen);
    struct buf q = {0};

    buf_puts(&q, "\r\n-----Original Message-----\r\n");
    static const char *const show[] = {"From", "Date", "Subject", "To", "Cc"};
    for (size_t i = 0; i < sizeof(show) / sizeof(show[0]); i++) {
        if (!mime_header_get(orig, hlen, show[i], &f))
            continue;
        struct mime_arena a = {0};
        char *v = mime_unfold(&a, f.value, f.value_len);
        buf_puts(&q, show[i]);
        buf_puts(&q, ": ");
        if (v)
            mime_header_decode(v, strlen(v), &q);
        buf_puts(&q, "\r\n");
        mime_arena_free(&a);
    }
    buf_puts(&q, "\r\n");
    if (eas_email_text(orig, olen, EAS_BODY_PLAIN, &text, &tlen, NULL) == 0) {
        size_t i = 0;
        while (i < tlen) {
            const char *nl = memchr(text + i, '\n', tlen - i);
            size_t n = nl ? (size_t)(nl - (text + i)) : tlen - i;
            if (n && text[i + n - 1] == '\r')
                n--;
            buf_puts(&q, "> ");
            buf_put(&q, text + i, n);
            buf_puts(&q, "\r\n");
            i += (nl ? (size_t)(nl - (text + i)) + 1 : tlen - i);
        }
        free(text);
    }
    eas_b64_lines(q.p ? q.p : "", q.len, out);
    buf_free(&q);
    (void)req;
}

/* The device's message with the original added: multipart/mixed of the device's own body
 * entity, then the quoted text (reply) or the original message (forward). */
static int eas_compose_smart(struct eas_compose_req *cr, const char *msg, size_t len,
                             const char *orig, size_t olen, char **out, size_t *outlen)
{
    size_t hlen = mime_header_size(msg, len);
    struct buf b = {0};
    char boundary[64];
    struct mime_field f;

    snprintf(boundary, sizeof(boundary), "=_polaris_%08x%08x", eas_random32(), eas_random32());
    eas_copy_fields(msg, hlen, NULL, 0, &b);
    buf_puts(&b, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"");
    buf_puts(&b, boundary);
    buf_puts(&b, "\"\r\n\r\n--");
    buf_puts(&b, boundary);
    buf_puts(&b, "\r\n");
    /* the device's body keeps its own Content-* fields */
    eas_copy_fields(msg, hlen, NULL, 1, &b);
    if (!mime_header_get(msg, hlen, "Content-Type", &f))
        buf_puts(&b, "Content-Type: text/plain; charset=utf-8\r\n");
    buf_puts(&b, "\r\n");
    buf_put(&b, msg + hlen, len - hlen);
    buf_puts(&b, "\r\n--");
    buf_puts(&b, boundary);
    if (cr->kind == EAS_REPLY) {
        buf_puts(&b, "\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Transfer-Encoding: base64\r\nContent-Disposition: inline\r\n\r\n");
        eas_quote_original(cr->req, orig, olen, &b);
    } else {
        buf_puts(&b, "\r\nContent-Type: message/rfc822\r\n"
                     "Content-Disposition: attachment; filename=\"forwarded.eml\"\r\n\r\n");
        buf_put(&b, orig, olen);
        buf_puts(&b, "\r\n");
    }
    buf_puts(&b, "--");
    buf_puts(&b, boundary);
    buf_puts(&b, "--\r\n");
    if (b.oom) {
        buf_free(&b);
        return -1;
    }
    *out = b.p;
    *outlen = b.len;
    return 0;
}

/* ---- recipients and sender ------------------------------------------------------------- */

struct eas_rcpts {
    char *v[EAS_MAX_RCPTS];
    size_t n;
};

static void eas_rcpts_free(struct eas_rcpts *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i]);
    r->n = 0;
}

static int eas_rcpts_add(struct eas_rcpts *r, const char *mailbox, const char *host)
{
    char addr[330];

    if (!mailbox || !host || !*mailbox || !*host)
        return 0;
    snprintf(addr, sizeof(addr), "%s@%s", mailbox, host);
    for (char *p = addr; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->v[i], addr))
            return 0;
    if (r->n >= EAS_MAX_RCPTS || !(r->v[r->n] = strdup(addr)))
        return -1;
    r->n++;
    return 0;
}

static int eas_collect_rcpts(const char *hdr, size_t hlen, struct eas_rcpts *r)
{
    static const char *const names[] = {"To", "Cc", "Bcc"};
    struct mime_arena a = {0};
    int rc = 0;

    for (size_t i = 0; i < 3 && rc == 0; i++) {
        struct mime_field f;
        size_t pos = 0;
        /* every field of the name counts, not only the first */
        while (rc == 0 && mime_header_next(hdr, hlen, &pos, &f)) {
            struct mime_addr *ad = NULL;
            if (f.name_len != strlen(names[i]) || strncasecmp(f.name, names[i], f.name_len))
                continue;
            if (mime_addr_parse(&a, f.value, f.value_len, &ad) < 0)
                rc = -1;
            for (; ad && rc == 0; ad = ad->next)
                if (ad->kind == MIME_ADDR_MAILBOX)
                    rc = eas_rcpts_add(r, ad->mailbox, ad->host);
        }
    }
    mime_arena_free(&a);
    return rc;
}

int eas_from_address(const char *hdr, size_t hlen, char *out, size_t outlen)
{
    struct mime_arena a = {0};
    struct mime_field f;
    struct mime_addr *ad = NULL;

    out[0] = '\0';
    if (!mime_header_get(hdr, hlen, "From", &f))
        return 0;
    if (mime_addr_parse(&a, f.value, f.value_len, &ad) < 0) {
        mime_arena_free(&a);
        return -1;
    }
    while (ad && ad->kind != MIME_ADDR_MAILBOX)
        ad = ad->next;
    if (ad && ad->mailbox && ad->host && *ad->host)
        snprintf(out, outlen, "%s@%s", ad->mailbox, ad->host);
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    mime_arena_free(&a);
    return ad ? 0 : -1;
}

/* The message as sent: Bcc removed; From, Date and Message-ID added when missing. */
static int eas_finish_message(struct eas_req *req, const char *msg, size_t len, int has_from,
                              int strip_bcc, char **out, size_t *outlen)
{
    static const char *const bcc[] = {"Bcc", NULL};
    size_t hlen = mime_header_size(msg, len);
    struct mime_field f;
    struct buf b = {0};
    char line[512];

    if (!has_from) {
        snprintf(line, sizeof(line), "From: <%s>\r\n", req->acct->address);
        buf_puts(&b, line);
    }
    if (!mime_header_get(msg, hlen, "Date", &f)) {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(line, sizeof(line), "Date: %a, %d %b %Y %H:%M:%S +0000\r\n", &tm);
        buf_puts(&b, line);
    }
    if (!mime_header_get(msg, hlen, "Message-ID", &f)) {
        snprintf(line, sizeof(line), "Message-ID: <%08x%08x.eas@%s>\r\n", eas_random32(),
                 eas_random32(), req->acct->domain);
        buf_puts(&b, line);
    }
    eas_copy_fields(msg, hlen, strip_bcc ? bcc : NULL, -1, &b);
    buf_puts(&b, "\r\n");
    buf_put(&b, msg + hlen, len - hlen);
    if (b.oom) {
        buf_free(&b);
        return -1;
    }
    *out = b.p;
    *outlen = b.len;
    return 0;
}

/* ---- the send -------------------------------------------------------------------------- */

static int eas_reply_status(const struct deliver_reply *r)
{
    if (r->code == 552)
        return CM_TOO_LARGE;
    if (r->code == 550 && strstr(r->text, "Administrative"))
        return CM_SEND_QUOTA;
    if (r->code >= 400 && r->code < 500)
        return CM_RETRY_LATER;
    return CM_SUBMIT_FAILED;
}

static int eas_save_sent(struct eas_req *req, const char *msg, size_t len)
{
    struct store_folder sent;
    struct mail_new m = {.data = msg, .len = len, .flags = STORE_FLAG_SEEN};
    struct store_item it;

    if (store_folder_by_role_nocount(req->u, STORE_ROLE_SENT, &sent) != STORE_OK)
        return STORE_ENOTFOUND;
    return mail_store_message(req->u, sent.id, &m, &it, NULL);
}

static int eas_sent_before(struct eas_compose_req *cr, int remember)
{
    char key[160];
    void *v = NULL;
    size_t l = 0;

    if (!cr->client_id[0])
        return 0;
    snprintf(key, sizeof(key), "%s/%s", cr->req->device_id, cr->client_id);
    if (remember) {
        char ts[24];
        snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
        store_state_put(cr->req->u, EAS_SENT_NS, key, ts, strlen(ts), NULL);
        return 0;
    }
    if (store_state_get(cr->req->u, EAS_SENT_NS, key, &v, &l, NULL) != STORE_OK)
        return 0;
    free(v);
    return 1;
}

/* Sends; returns 0 or a ComposeMail status. */
static int eas_compose_send(struct eas_compose_req *cr)
{
    struct eas_req *req = cr->req;
    char *norm = NULL, *built = NULL, *sent = NULL, *full = NULL, *orig = NULL;
    size_t nlen = 0, blen = 0, slen = 0, flen = 0, olen = 0, hlen;
    char from[330];
    struct eas_rcpts rc = {0};
    struct deliver_reply r;
    struct deliver_env env = {.auth_user = req->acct->address,
                              .protocol = "ActiveSync",
                              .client_ip = http_req_remote_ip(req->http)};
    struct store_item src;
    const char *msg;
    size_t len;
    int status = CM_SERVER_ERROR;

    if (!cr->mime || cr->mime_len == 0)
        return CM_INVALID_MIME;
    if (req->e->cfg->smtp_max_message > 0 && (int64_t)cr->mime_len > req->e->cfg->smtp_max_message)
        return CM_TOO_LARGE;
    if (eas_sent_before(cr, 0))
        return CM_PREVIOUSLY_SENT;
    if (mail_normalize(cr->mime, cr->mime_len, &norm, &nlen) < 0)
        return CM_SERVER_ERROR;
    msg = norm;
    len = nlen;
    hlen = mime_header_size(msg, len);
    if (hlen == 0) {
        status = CM_INVALID_MIME;
        goto out;
    }
    if (eas_from_address(msg, hlen, from, sizeof(from)) < 0 ||
        (from[0] && !deliver_sender_owned(req->e->st, req->acct->address, from))) {
        log_info("eas", "SendMail refused for %s: From not owned", req->acct->address);
        status = CM_SUBMIT_FAILED;
        goto out;
    }
    if (cr->kind != EAS_SEND) {
        if (store_item_get(req->u, cr->src_item, &src, NULL) != STORE_OK ||
            (cr->src_folder && src.folder_id != cr->src_folder) ||
            store_item_body(req->u, src.id, &orig, &olen, NULL) != STORE_OK) {
            status = CM_NOT_FOUND;
            goto out;
        }
        if (!cr->replace_mime) {
            if (eas_compose_smart(cr, msg, len, orig, olen, &built, &blen) < 0)
                goto out;
            msg = built;
            len = blen;
            hlen = mime_header_size(msg, len);
        }
    }
    if (eas_collect_rcpts(msg, hlen, &rc) < 0)
        goto out;
    if (rc.n == 0) {
        status = CM_NO_RECIPIENT;
        goto out;
    }
    if (eas_finish_message(req, msg, len, from[0] != 0, 1, &sent, &slen) < 0 ||
        eas_finish_message(req, msg, len, from[0] != 0, 0, &full, &flen) < 0)
        goto out;
    env.mail_from = from[0] ? from : req->acct->address;
    for (size_t i = 0; i < rc.n; i++)
        if (deliver_check_rcpt(req->e->dl, &env, rc.v[i], &r) != 0) {
            status = r.code >= 500 ? CM_RCPT_UNRESOLVED : CM_RETRY_LATER;
            goto out;
        }
    if (deliver_rate_check(req->e->dl, req->acct->address, rc.n, &r) != 0) {
        status = eas_reply_status(&r);
        goto out;
    }
    if (deliver_message(req->e->dl, &env, (const char *const *)rc.v, rc.n, sent, slen, &r, NULL) !=
            0 ||
        r.code != 250) {
        log_info("eas", "SendMail for %s not delivered: %d %s", req->acct->address, r.code, r.text);
        status = eas_reply_status(&r);
        goto out;
    }
    /* sent: from here on the device must not send it again */
    status = 0;
    eas_sent_before(cr, 1);
    if (cr->save_in_sent && eas_save_sent(req, full, flen) != STORE_OK)
        log_warn("eas", "SendMail: Sent copy not stored for %s", req->acct->address);
    if (cr->kind != EAS_SEND)
        store_item_set_flags(req->u, src.id, STORE_FLAGS_ADD,
                             cr->kind == EAS_REPLY ? STORE_FLAG_ANSWERED : STORE_FLAG_FORWARDED,
                             NULL, 0, NULL, NULL);
out:
    eas_rcpts_free(&rc);
    free(norm);
    free(built);
    free(sent);
    free(full);
    free(orig);
    return status;
}

/* ---- request forms ------------------------------------------------------------------------ */

static int eas_compose_parse_wbxml(struct eas_compose_req *cr, unsigned root_tag)
{
    const struct eas_node *root = eas_doc_root(cr->req->in), *src, *n;

    if (!root || root->tag != root_tag)
        return -1;
    if (!(n = eas_child(root, EAS_COMPOSEMAIL_MIME)))
        return -1;
    cr->mime = n->data;
    cr->mime_len = n->len;
    cr->save_in_sent = eas_child(root, EAS_COMPOSEMAIL_SAVEINSENTITEMS) != NULL;
    cr->replace_mime = eas_child(root, EAS_COMPOSEMAIL_REPLACEMIME) != NULL;
    snprintf(cr->client_id, sizeof(cr->client_id), "%s",
             eas_child_text(root, EAS_COMPOSEMAIL_CLIENTID) ?: "");
    if ((src = eas_child(root, EAS_COMPOSEMAIL_SOURCE))) {
        const char *item = eas_child_text(src, EAS_COMPOSEMAIL_ITEMID);
        const char *lid = eas_child_text(src, EAS_COMPOSEMAIL_LONGID);
        const char *fid = eas_child_text(src, EAS_COMPOSEMAIL_FOLDERID);
        int64_t f = 0, i = 0;
        if ((item && eas_parse_server_id(item, &f, &i) < 0) ||
            (!item && lid && eas_parse_server_id(lid, &f, &i) < 0))
            return -2;
        cr->src_item = i;
        cr->src_folder = fid ? strtoll(fid, NULL, 10) : f;
    }
    return 0;
}

static int eas_compose(struct eas_req *req, enum eas_compose kind, unsigned root_tag)
{
    struct eas_compose_req cr = {.req = req, .kind = kind};
    struct eas_node *out;
    int status, prc;

    if (req->in) {
        prc = eas_compose_parse_wbxml(&cr, root_tag);
        status = prc == -1 ? CM_INVALID_MIME : prc == -2 ? CM_NOT_FOUND : 0;
    } else {
        /* 12.1 and older: the MIME is the body, the rest is in the query */
        cr.mime = req->body;
        cr.mime_len = req->body_len;
        cr.save_in_sent = req->save_in_sent;
        status = 0;
        if (kind != EAS_SEND) {
            int64_t f = 0, i = 0;
            const char *id = req->item_id[0] ? req->item_id : req->long_id;
            if (eas_parse_server_id(id, &f, &i) < 0)
                status = CM_NOT_FOUND;
            cr.src_item = i;
            cr.src_folder = req->collection_id[0] ? strtoll(req->collection_id, NULL, 10) : f;
        }
    }
    if (kind != EAS_SEND && !status && cr.src_item <= 0)
        status = CM_NOT_FOUND;
    if (!status)
        status = eas_compose_send(&cr);
    if (status == CM_PREVIOUSLY_SENT)
        status = 0; /* the same ClientId again: it went out the first time */
    if (status == 0) {
        /* success: 14.0+ answers with an empty body, older versions with 200 as well */
        return 0;
    }
    if (req->version < EAS_V140) {
        req->http_status = status == CM_RETRY_LATER ? 503 : status == CM_TOO_LARGE ? 413 : 500;
        return 0;
    }
    if (!(req->out = eas_doc_new()) || !(out = eas_add(req->out, NULL, root_tag))) {
        req->http_status = 500;
        return 0;
    }
    eas_add_int(req->out, out, EAS_COMPOSEMAIL_STATUS, status);
    return 0;
}

int eas_cmd_sendmail(struct eas_req *req)
{
    return eas_compose(req, EAS_SEND, EAS_COMPOSEMAIL_SENDMAIL);
}

int eas_cmd_smartreply(struct eas_req *req)
{
    return eas_compose(req, EAS_REPLY, EAS_COMPOSEMAIL_SMARTREPLY);
}

int eas_cmd_smartforward(struct eas_req *req)
{
    return eas_compose(req, EAS_FORWARD, EAS_COMPOSEMAIL_SMARTFORWARD);
}
