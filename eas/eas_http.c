/*
 * eas_http.c — MS-ASHTTP: one ActiveSync request from the HTTP front end to a command and
 * back. The front end has already resolved the tenant, authenticated the user and checked
 * the gate (Enhanced mailboxes only: 401/403 are answered before anything here runs, so no
 * device state is ever created for a refused login).
 *
 *   OPTIONS  200 with the versions and commands we speak.
 *   POST     the query names the command, user and device, either in plain form
 *            (?Cmd=Sync&User=..&DeviceId=..&DeviceType=..) or base64-encoded (a binary
 *            block, MS-ASHTTP 2.2.1.1.1.1); then the User check, the protocol version, the
 *            command, the device (created on its first request), a pending remote wipe,
 *            the policy (HTTP 449 before 14.0, Status 142/144 in the response from 14.0),
 *            the WBXML body, and the command itself. A command may suspend (Ping, Sync
 *            with Wait): the request then lives on in the front end's data until it is
 *            resumed, and then the gate is checked again (403 for a mailbox turned Basic
 *            or suspended meanwhile) before the command goes on.
 *
 * Errors a client causes are 400 (malformed query or body), 403 (User names someone else),
 * 501 (a command we do not implement).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "eas/eas_int.h"

#define EAS_QUERY_B64_MAX   2048 /* longest base64 query accepted (characters) */
#define EAS_LAST_SEEN_EVERY 60   /* seconds between last-seen updates of a device */

/* What lives as the front end's per-request data. */
struct eas_http_ctx {
    struct eas_req req;
    struct eas_device dev;
};

static const struct {
    const char *name;
    int v;
} eas_versions[] = {
    {"2.5", EAS_V25},   {"12.0", EAS_V120}, {"12.1", EAS_V121}, {"14.0", EAS_V140},
    {"14.1", EAS_V141}, {"16.0", EAS_V160}, {"16.1", EAS_V161},
};

int eas_version_parse(const char *s)
{
    if (!s)
        return 0;
    while (*s == ' ' || *s == '\t')
        s++;
    for (size_t i = 0; i < sizeof(eas_versions) / sizeof(eas_versions[0]); i++) {
        size_t n = strlen(eas_versions[i].name);
        if (strncmp(s, eas_versions[i].name, n) == 0 && strspn(s + n, " \t") == strlen(s + n))
            return eas_versions[i].v;
    }
    return 0;
}

static int eas_version_known(int v)
{
    for (size_t i = 0; i < sizeof(eas_versions) / sizeof(eas_versions[0]); i++)
        if (eas_versions[i].v == v)
            return 1;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Responses
 * ------------------------------------------------------------------------------------ */

static void eas_common_headers(struct http_req *r)
{
    http_add_header(r, "MS-Server-ActiveSync", EAS_SERVER_VERSION);
}

static void eas_version_headers(struct http_req *r)
{
    http_add_header(r, "MS-ASProtocolVersions", EAS_VERSIONS);
    http_add_header(r, "MS-ASProtocolCommands", eas_cmd_list());
}

static enum http_action eas_fail(struct http_req *r, int status, const char *why)
{
    char text[160];

    eas_common_headers(r);
    snprintf(text, sizeof(text), "%s\n", why);
    http_respond_text(r, status, text);
    return HTTP_RESPOND;
}

void eas_status_or_449(struct eas_req *req, int status)
{
    const struct eas_cmd *c = req->command;
    struct eas_node *root;

    eas_doc_free(req->out);
    req->out = NULL;
    if (req->version >= EAS_V140 && c && c->root_tag) {
        req->out = eas_doc_new();
        root = req->out ? eas_add(req->out, NULL, c->root_tag) : NULL;
        if (root && eas_add_int(req->out, root, c->status_tag, status)) {
            req->http_status = 200;
            return;
        }
        eas_doc_free(req->out);
        req->out = NULL;
        req->http_status = 500;
        return;
    }
    req->http_status = 449;
}

/* Sends what the command produced. */
static enum http_action eas_finish(struct eas_req *req)
{
    struct http_req *r = req->http;
    uint8_t *buf = NULL;
    size_t len = 0;

    eas_common_headers(r);
    if (req->http_status && req->http_status != 200) {
        http_respond(r, req->http_status, NULL, NULL, 0);
        return HTTP_RESPOND;
    }
    if (req->raw) {
        http_respond(r, 200, req->raw_ctype ? req->raw_ctype : "application/octet-stream", req->raw,
                     req->raw_len);
        return HTTP_RESPOND;
    }
    if (!req->out) {
        http_respond(r, 200, NULL, NULL, 0);
        return HTTP_RESPOND;
    }
    if (wbxml_encode(req->out, &buf, &len) != 0) {
        log_error("eas", "%s: %s response could not be encoded", req->acct->address, req->cmd);
        http_respond(r, 500, NULL, NULL, 0);
        return HTTP_RESPOND;
    }
    http_respond(r, 200, EAS_WBXML_CTYPE, buf, len);
    free(buf);
    return HTTP_RESPOND;
}

/* ---------------------------------------------------------------------------------------
 * The query: plain and base64 forms
 * ------------------------------------------------------------------------------------ */

/* Copies a query value into a fixed field; -1 when it does not fit or holds controls. */
static int eas_copy_param(char *dst, size_t cap, const char *v, size_t n)
{
    if (n >= cap)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return -1;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 0;
}

/* Parameters carried by both forms, as fields of the request. */
struct eas_qparams {
    char user[320];
    char cmd[32];
    int have_cmd;
    int b64_version; /* from the base64 block; 0 in the plain form */
    int has_policy_key;
    uint64_t policy_key;
};

static const struct {
    const char *name;
    size_t off, size;
} eas_plain_fields[] = {
#define P(n, m)                                                                                    \
    {                                                                                              \
        n, offsetof(struct eas_req, m), sizeof(((struct eas_req *)0)->m)                           \
    }
    P("DeviceId", device_id),    P("DeviceType", device_type),
    P("ItemId", item_id),        P("CollectionId", collection_id),
    P("LongId", long_id),        P("AttachmentName", attachment_name),
    P("Occurrence", occurrence),
#undef P
};

static int eas_query_plain(struct eas_req *req, struct eas_qparams *q)
{
    struct http_req *r = req->http;
    const char *v;

    for (size_t i = 0; i < sizeof(eas_plain_fields) / sizeof(eas_plain_fields[0]); i++) {
        v = http_req_query(r, eas_plain_fields[i].name);
        if (v && eas_copy_param((char *)req + eas_plain_fields[i].off, eas_plain_fields[i].size, v,
                                strlen(v)) != 0)
            return -1;
    }
    v = http_req_query(r, "Cmd");
    if (!v || eas_copy_param(q->cmd, sizeof(q->cmd), v, strlen(v)) != 0)
        return -1;
    q->have_cmd = 1;
    v = http_req_query(r, "User");
    if (v && eas_copy_param(q->user, sizeof(q->user), v, strlen(v)) != 0)
        return -1;
    v = http_req_query(r, "SaveInSent");
    req->save_in_sent = v && (v[0] == 'T' || v[0] == 't') && v[1] == '\0';
    return 0;
}

static int eas_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Undoes percent-encoding of the raw query into out (at most cap - 1 characters). */
static int eas_unpercent(const char *in, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; in[i]; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            int h = eas_hexval(in[i + 1]), l = h < 0 ? -1 : eas_hexval(in[i + 2]);
            if (l < 0)
                return -1;
            c = h * 16 + l;
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (int)o;
}

/* A DeviceId arrives as bytes: kept as text when it is one, else as upper-case hex (a
 * binary GUID), so one device always maps to one identifier. */
static int eas_b64_device_id(const unsigned char *p, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    char tmp[65];

    if (n == 0 || n > 32)
        return -1;
    if (eas_copy_param(tmp, sizeof(tmp), (const char *)p, n) == 0 && eas_device_id_valid(tmp)) {
        snprintf(out, cap, "%s", tmp);
        return 0;
    }
    if (n * 2 >= cap)
        return -1;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
    return 0;
}

/* Command parameters of the base64 form (MS-ASHTTP 2.2.1.1.1.1.3): tag → field. Options
 * and User are handled by the caller. */
enum { EAS_B64_OPTIONS = 7, EAS_B64_USER = 8 };
static const struct {
    int tag;
    size_t off, size;
} eas_b64_fields[] = {
#define P(t, m)                                                                                    \
    {                                                                                              \
        t, offsetof(struct eas_req, m), sizeof(((struct eas_req *)0)->m)                           \
    }
    P(0, attachment_name), P(1, collection_id), P(3, item_id), P(4, long_id), P(6, occurrence),
#undef P
};

static int eas_b64_param(struct eas_req *req, struct eas_qparams *q, int tag,
                         const unsigned char *v, size_t n)
{
    if (tag == EAS_B64_OPTIONS) {
        if (n != 1)
            return -1;
        req->save_in_sent = (v[0] & 0x01) != 0;
        req->accept_multipart = (v[0] & 0x02) != 0;
        return 0;
    }
    if (tag == EAS_B64_USER)
        return eas_copy_param(q->user, sizeof(q->user), (const char *)v, n);
    for (size_t i = 0; i < sizeof(eas_b64_fields) / sizeof(eas_b64_fields[0]); i++)
        if (eas_b64_fields[i].tag == tag)
            return eas_copy_param((char *)req + eas_b64_fields[i].off, eas_b64_fields[i].size,
                                  (const char *)v, n);
    return -1; /* a tag the specification does not define */
}

/* Reads the binary block. Every length is checked against what is left. */
static int eas_b64_parse(struct eas_req *req, struct eas_qparams *q, const unsigned char *b,
                         size_t len)
{
    const struct eas_cmd *c;
    size_t i = 0, n;

    if (len < 7)
        return -1;
    q->b64_version = b[0];
    if (!eas_version_known(q->b64_version) || q->b64_version < EAS_V121)
        return -1;
    c = eas_cmd_by_code(b[1]);
    /* An unknown code keeps have_cmd 0 with a name no command has: 501 later. */
    snprintf(q->cmd, sizeof(q->cmd), "%s", c ? c->name : "#unknown");
    q->have_cmd = 1;
    req->locale = b[2] | (b[3] << 8);
    i = 4;
    n = b[i++];
    if (n == 0 || i + n > len ||
        eas_b64_device_id(b + i, n, req->device_id, sizeof(req->device_id)) != 0)
        return -1;
    i += n;
    if (i >= len)
        return -1;
    n = b[i++];
    if (n != 0 && n != 4)
        return -1;
    if (n == 4) {
        if (i + 4 > len)
            return -1;
        q->policy_key = (uint64_t)b[i] | (uint64_t)b[i + 1] << 8 | (uint64_t)b[i + 2] << 16 |
                        (uint64_t)b[i + 3] << 24;
        q->has_policy_key = 1;
        i += 4;
    }
    if (i >= len)
        return -1;
    n = b[i++];
    if (n == 0 || i + n > len ||
        eas_copy_param(req->device_type, sizeof(req->device_type), (const char *)b + i, n) != 0)
        return -1;
    i += n;
    while (i < len) {
        int tag = b[i++];
        if (i >= len)
            return -1;
        n = b[i++];
        if (i + n > len || eas_b64_param(req, q, tag, b + i, n) != 0)
            return -1;
        i += n;
    }
    return 0;
}

static int eas_query_b64(struct eas_req *req, struct eas_qparams *q, const char *raw)
{
    char txt[EAS_QUERY_B64_MAX + 1];
    unsigned char bin[EAS_QUERY_B64_MAX];
    int n;
    ssize_t len;

    if (strlen(raw) > EAS_QUERY_B64_MAX)
        return -1;
    n = eas_unpercent(raw, txt, sizeof(txt));
    if (n <= 0)
        return -1;
    len = b64_decode(txt, (size_t)n, bin, sizeof(bin), B64_PAD_OPTIONAL);
    if (len < 0)
        return -1;
    return eas_b64_parse(req, q, bin, (size_t)len);
}

static int eas_query(struct eas_req *req, struct eas_qparams *q)
{
    const char *raw = http_req_raw_query(req->http);

    if (http_req_query(req->http, "Cmd"))
        return eas_query_plain(req, q);
    /* No Cmd: the whole query is one base64 block (it may end in '=' padding). */
    if (*raw && !strchr(raw, '&'))
        return eas_query_b64(req, q, raw);
    return -1;
}

/* Does the User parameter name the authenticated mailbox? Accepted: the full address,
 * DOMAIN\user, DOMAIN\address, and the bare local part. */
static int eas_user_matches(const char *user, const struct store_account *a)
{
    const char *p = strrchr(user, '\\');

    p = p ? p + 1 : user;
    if (!*p)
        return 0;
    if (strchr(p, '@'))
        return strcasecmp(p, a->address) == 0;
    return strcasecmp(p, a->localpart) == 0;
}

/* ---------------------------------------------------------------------------------------
 * The device
 * ------------------------------------------------------------------------------------ */

/* Loads the device, creating it on its first request, and keeps type, user agent,
 * version and last-seen current (written at most once a minute when nothing else
 * changed). Provision writes the record itself (save 0): it merges these fields. */
static int eas_device_touch(struct eas_req *req, int save)
{
    struct eas_device *d = req->dev;
    const char *ua = http_req_header(req->http, "User-Agent");
    int64_t now = (int64_t)time(NULL);
    int rc = eas_device_load(req->u, req->device_id, d), dirty = 0;

    if (rc == STORE_ENOTFOUND) {
        memset(d, 0, sizeof(*d));
        snprintf(d->id, sizeof(d->id), "%s", req->device_id);
        d->first_seen = now;
        dirty = 1;
        log_info("eas", "%s: new device %s (%s)", req->acct->address, req->device_id,
                 req->device_type);
    } else if (rc != STORE_OK) {
        return rc;
    }
    if (strcmp(d->type, req->device_type) != 0) {
        snprintf(d->type, sizeof(d->type), "%s", req->device_type);
        dirty = 1;
    }
    if (ua && strncmp(d->user_agent, ua, sizeof(d->user_agent) - 1) != 0) {
        eas_copy_param(d->user_agent, sizeof(d->user_agent), ua,
                       strnlen(ua, sizeof(d->user_agent) - 1));
        dirty = 1;
    }
    if (d->version != req->version) {
        d->version = req->version;
        dirty = 1;
    }
    if (dirty || now - d->last_seen >= EAS_LAST_SEEN_EVERY) {
        d->last_seen = now;
        return save ? eas_device_save(req->u, d) : STORE_OK;
    }
    return STORE_OK;
}

/* ---------------------------------------------------------------------------------------
 * The request
 * ------------------------------------------------------------------------------------ */

static enum http_action eas_options(struct http_req *r)
{
    eas_common_headers(r);
    eas_version_headers(r);
    http_add_header(r, "Allow", "OPTIONS,POST");
    http_add_header(r, "Public", "OPTIONS,POST");
    http_respond(r, 200, NULL, NULL, 0);
    return HTTP_RESPOND;
}

/* The policy gate: a device must hold the key it acknowledged last. */
static int eas_policy_ok(const struct eas_req *req, int *status)
{
    if (req->dev->policy_key == 0 || req->policy_key == 0) {
        *status = 142; /* DeviceNotProvisioned */
        return 0;
    }
    if (req->policy_key != req->dev->policy_key) {
        *status = 144; /* InvalidPolicyKey */
        return 0;
    }
    return 1;
}

static int eas_body_decode(struct eas_req *req)
{
    const char *ct = http_req_header(req->http, "Content-Type");
    char err[160] = "";

    req->body = http_req_body(req->http, &req->body_len);
    if (req->body_len == 0)
        return 0;
    /* SendMail and friends before 14.0 carry the message itself. */
    if (ct && strncasecmp(ct, "message/rfc822", 14) == 0)
        return 0;
    if (wbxml_decode(req->body, req->body_len, &req->in, err, sizeof(err)) != 0) {
        log_info("eas", "%s: malformed %s body: %s", req->acct->address, req->cmd, err);
        return -1;
    }
    return 0;
}

static enum http_action eas_run(struct eas_req *req, int rc)
{
    if (rc == EAS_SUSPEND)
        return HTTP_SUSPEND;
    if (rc < 0 && !req->out && !req->raw && !req->http_status)
        req->http_status = 500;
    return eas_finish(req);
}

static enum http_action eas_post(struct http_req *r, struct eas *e)
{
    struct eas_http_ctx *ctx = calloc(1, sizeof(*ctx));
    struct eas_req *req;
    struct eas_qparams q;
    struct store_err se = {0};
    const char *hv;
    int status;

    if (!ctx)
        return eas_fail(r, 500, "Internal Server Error");
    http_req_set_data(r, ctx);
    req = &ctx->req;
    req->e = e;
    req->http = r;
    req->acct = http_req_account(r);
    req->dev = &ctx->dev;
    req->http_status = 0;
    memset(&q, 0, sizeof(q));
    if (eas_query(req, &q) != 0 || !q.have_cmd)
        return eas_fail(r, 400, "malformed ActiveSync query");
    snprintf(req->cmd, sizeof(req->cmd), "%s", q.cmd);
    if (!eas_device_id_valid(req->device_id) || !req->device_type[0] ||
        strlen(req->device_type) > 64)
        return eas_fail(r, 400, "DeviceId and DeviceType are required");
    if (q.user[0] && !eas_user_matches(q.user, req->acct))
        return eas_fail(r, 403, "User does not match the authenticated mailbox");
    req->version = q.b64_version ? q.b64_version
                                 : eas_version_parse(http_req_header(r, "MS-ASProtocolVersion"));
    if (!req->version) {
        eas_version_headers(r);
        return eas_fail(r, 400, "missing or unsupported MS-ASProtocolVersion");
    }
    req->command = eas_cmd_lookup(req->cmd);
    if (!req->command)
        return eas_fail(r, 501, "command not implemented");
    if (req->version < req->command->min_version ||
        (req->command->max_version && req->version > req->command->max_version))
        return eas_fail(r, 400, "command not available in this protocol version");
    req->policy_key = q.has_policy_key ? q.policy_key : 0;
    if (!q.has_policy_key && (hv = http_req_header(r, "X-MS-PolicyKey")) != NULL)
        req->policy_key = strtoull(hv, NULL, 10);
    hv = http_req_header(r, "MS-ASAcceptMultiPart");
    if (hv && (hv[0] == 'T' || hv[0] == 't'))
        req->accept_multipart = 1;
    if (store_user_open(e->st, req->acct->address, &req->u, &se) != STORE_OK) {
        log_error("eas", "%s: cannot open the store: %s", req->acct->address, se.msg);
        return eas_fail(r, 503, "Service Unavailable");
    }
    if (eas_device_touch(req, req->command->fn != eas_cmd_provision) != STORE_OK)
        return eas_fail(r, 503, "Service Unavailable");
    if (req->command->fn != eas_cmd_provision) {
        /* A wiped device is sent to Provision again and again (where RemoteWipe waits). */
        if (req->dev->wipe) {
            eas_status_or_449(req, 140); /* RemoteWipeRequested */
            return eas_finish(req);
        }
        if (req->command->needs_policy && !eas_policy_ok(req, &status)) {
            eas_status_or_449(req, status);
            return eas_finish(req);
        }
    }
    if (eas_body_decode(req) != 0)
        return eas_fail(r, 400, "malformed WBXML");
    log_debug("eas", "%s %s %s v%s", req->acct->address, req->device_id, req->cmd,
              eas_version_name(req->version));
    return eas_run(req, req->command->fn(req));
}

/* Is the mailbox still allowed ActiveSync? Read from the directory now: a request that
 * waited (Ping, Sync with Wait) passed the front end's gate when it began, and the type or
 * state may have changed since (such a change wakes it: store_account_set_type). A store
 * hiccup is not a no. */
static int eas_still_allowed(struct eas_req *req)
{
    struct store_account a;
    int rc = store_account_get(req->e->st, req->acct->address, &a, NULL), ok;

    ok = rc == STORE_OK && a.active && gate_allows(a.type, SVC_EAS);
    explicit_bzero(a.pwhash, sizeof(a.pwhash));
    return rc == STORE_OK || rc == STORE_ENOTFOUND ? ok : 1;
}

/* A waiting request woke: the gate first, then the command goes on. */
static enum http_action eas_resumed(struct http_req *r)
{
    struct eas_http_ctx *ctx = http_req_data(r);

    if (!ctx || !ctx->req.command || !ctx->req.command->resume)
        return eas_fail(r, 500, "Internal Server Error");
    if (!eas_still_allowed(&ctx->req)) {
        log_info("eas", "%s: mailbox no longer allowed ActiveSync: waiting %s ended",
                 ctx->req.acct->address, ctx->req.cmd);
        eas_doc_free(ctx->req.out);
        ctx->req.out = NULL;
        ctx->req.http_status = 403;
        return eas_finish(&ctx->req);
    }
    return eas_run(&ctx->req, ctx->req.command->resume(&ctx->req, http_req_timed_out(r)));
}

enum http_action eas_http_handle(struct http_req *r, enum http_phase phase, void *engine_ctx)
{
    struct eas *e = engine_ctx;
    const char *m = http_req_method(r);

    if (phase == HTTP_PHASE_RESUMED)
        return eas_resumed(r);
    if (strcmp(m, "OPTIONS") == 0)
        return eas_options(r);
    if (strcmp(m, "POST") != 0) {
        http_add_header(r, "Allow", "OPTIONS,POST");
        return eas_fail(r, 405, "Method Not Allowed");
    }
    return eas_post(r, e);
}

void eas_http_cleanup(struct http_req *r, void *engine_ctx)
{
    struct eas_http_ctx *ctx = http_req_data(r);

    (void)engine_ctx;
    if (!ctx)
        return;
    http_req_set_data(r, NULL);
    if (ctx->req.cmd_cleanup)
        ctx->req.cmd_cleanup(&ctx->req);
    eas_doc_free(ctx->req.in);
    eas_doc_free(ctx->req.out);
    free(ctx->req.raw);
    if (ctx->req.u)
        store_user_release(ctx->req.u);
    free(ctx);
}
