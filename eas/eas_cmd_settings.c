/*
 * eas_cmd_settings.c — Settings (MS-ASCMD 2.2.1.18): out-of-office, device information,
 * user information, rights management and the device recovery password.
 *
 *   Oof Get/Set          the mailbox's auto-reply (mail/autoreply.h), the same setting
 *                        `polaris user autoreply` and the delivery pipeline use. We keep
 *                        one message for every audience: Set takes the first enabled of
 *                        internal / external-known / external-unknown; Get reports it for
 *                        all three. OofState 0 disabled, 1 on, 2 on between Start/EndTime.
 *   DeviceInformation    stored on the device record.
 *   UserInformation Get  the primary address and the aliases that deliver to it (14.1+:
 *                        in the Accounts form).
 *   RightsManagementInformation Get  no IRM templates: an empty list.
 *   DevicePassword Set   the policy disables password recovery: Status 7.
 *
 * Each part answers with its own Status; the top-level Status is 1 unless the request
 * itself is unreadable (2).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "eas/eas_int.h"
#include "mail/autoreply.h"

enum {
    SET_OK = 1,
    SET_PROTOCOL_ERROR = 2,
    SET_SERVER_ERROR = 4,
    SET_INVALID = 5,
    SET_DENIED_BY_POLICY = 7,
};

/* ---------------------------------------------------------------------------------------
 * DeviceInformation
 * ------------------------------------------------------------------------------------ */

void eas_devinfo_parse(const struct eas_node *set, struct eas_device *d)
{
    static const struct {
        unsigned tag;
        size_t off, size;
    } fields[] = {
#define D(t, m) {t, offsetof(struct eas_device, m), sizeof(((struct eas_device *)0)->m)}
        D(EAS_SETTINGS_MODEL, model),
        D(EAS_SETTINGS_IMEI, imei),
        D(EAS_SETTINGS_FRIENDLYNAME, friendly),
        D(EAS_SETTINGS_OS, os),
        D(EAS_SETTINGS_OSLANGUAGE, os_language),
        D(EAS_SETTINGS_PHONENUMBER, phone),
        D(EAS_SETTINGS_MOBILEOPERATOR, operator_),
        D(EAS_SETTINGS_USERAGENT, user_agent),
#undef D
    };

    if (!set)
        return;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *v = eas_child_text(set, fields[i].tag);
        char *dst = (char *)d + fields[i].off;
        size_t n = 0;
        if (!v)
            continue;
        /* Bounded copy without control characters: these end up in CLI output. */
        for (; v[n] && n + 1 < fields[i].size; n++)
            dst[n] = (unsigned char)v[n] < 0x20 ? ' ' : v[n];
        dst[n] = '\0';
    }
}

static int eas_settings_devinfo(struct eas_req *req, const struct eas_node *in,
                                struct eas_node *out)
{
    struct eas_node *n = eas_add(req->out, out, EAS_SETTINGS_DEVICEINFORMATION);
    const struct eas_node *set = eas_child(in, EAS_SETTINGS_SET);
    struct store_err e = {0};
    int status = SET_OK;

    if (!n)
        return -1;
    if (!set) {
        status = SET_PROTOCOL_ERROR;
    } else if (store_txn_begin(req->u, &e) != STORE_OK) {
        status = SET_SERVER_ERROR;
    } else {
        /* Reloaded inside the transaction: a wipe set meanwhile must not be lost. */
        int rc = eas_device_load(req->u, req->device_id, req->dev);
        if (rc == STORE_OK) {
            eas_devinfo_parse(set, req->dev);
            rc = eas_device_save(req->u, req->dev);
        }
        if (rc == STORE_OK)
            rc = store_txn_commit(req->u, NULL, &e);
        else
            store_txn_rollback(req->u);
        if (rc != STORE_OK)
            status = SET_SERVER_ERROR;
    }
    return eas_add_int(req->out, n, EAS_SETTINGS_STATUS, status) ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------
 * Oof
 * ------------------------------------------------------------------------------------ */

/* "2007-05-08T10:00:00.000Z" (the fraction and Z optional). -1 when malformed. */
int eas_time_parse(const char *s, int64_t *out)
{
    struct tm tm = {0};
    int y, mo, d, h, mi, sec, n = 0;

    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
        return -1;
    s += n;
    if (*s == '.')
        for (s++; isdigit((unsigned char)*s); s++)
            ;
    if (*s == 'Z')
        s++;
    if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *out = (int64_t)timegm(&tm);
    return 0;
}

static void eas_format_time(int64_t t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, outlen, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

/* An HTML reply becomes text: tags dropped, the common entities decoded. */
static char *eas_html_to_text(const char *html)
{
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'},  {"&lt;", '<'},   {"&gt;", '>'},
                {"&quot;", '"'}, {"&#39;", '\''}, {"&nbsp;", ' '}};
    size_t n = strlen(html), o = 0;
    char *out = malloc(n + 1);
    int in_tag = 0;

    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (in_tag) {
            in_tag = html[i] != '>';
            continue;
        }
        if (html[i] == '<') {
            /* Line-breaking tags keep the text's shape. */
            if (strncasecmp(html + i, "<br", 3) == 0 || strncasecmp(html + i, "</p", 3) == 0 ||
                strncasecmp(html + i, "</div", 5) == 0)
                out[o++] = '\n';
            in_tag = 1;
            continue;
        }
        if (html[i] == '&') {
            size_t k;
            for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++)
                if (strncmp(html + i, ents[k].ent, strlen(ents[k].ent)) == 0)
                    break;
            if (k < sizeof(ents) / sizeof(ents[0])) {
                out[o++] = ents[k].c;
                i += strlen(ents[k].ent) - 1;
                continue;
            }
        }
        out[o++] = html[i];
    }
    out[o] = '\0';
    return out;
}

static int eas_oof_get(struct eas_req *req, struct eas_node *oof)
{
    static const unsigned audiences[] = {EAS_SETTINGS_APPLIESTOINTERNAL,
                                         EAS_SETTINGS_APPLIESTOEXTERNALKNOWN,
                                         EAS_SETTINGS_APPLIESTOEXTERNALUNKNOWN};
    struct eas_doc *d = req->out;
    struct autoreply a = {0};
    struct store_err e = {0};
    struct eas_node *get, *m;
    char t[40];
    int rc = autoreply_get(req->e->st, req->acct->address, &a, &e), state;

    if (rc == STORE_ENOTFOUND) {
        memset(&a, 0, sizeof(a));
    } else if (rc != STORE_OK) {
        return eas_add_int(d, oof, EAS_SETTINGS_STATUS, SET_SERVER_ERROR) ? 0 : -1;
    }
    state = !a.enabled ? 0 : (a.start || a.end) ? 2 : 1;
    rc = -1;
    if (!eas_add_int(d, oof, EAS_SETTINGS_STATUS, SET_OK) ||
        !(get = eas_add(d, oof, EAS_SETTINGS_GET)) ||
        !eas_add_int(d, get, EAS_SETTINGS_OOFSTATE, state))
        goto out;
    if (state == 2) {
        eas_format_time(a.start ? a.start : (int64_t)time(NULL), t, sizeof(t));
        if (!eas_add_text(d, get, EAS_SETTINGS_STARTTIME, t))
            goto out;
        eas_format_time(a.end ? a.end : (int64_t)INT32_MAX, t, sizeof(t));
        if (!eas_add_text(d, get, EAS_SETTINGS_ENDTIME, t))
            goto out;
    }
    for (size_t i = 0; i < sizeof(audiences) / sizeof(audiences[0]); i++) {
        if (!(m = eas_add(d, get, EAS_SETTINGS_OOFMESSAGE)) || !eas_add(d, m, audiences[i]) ||
            !eas_add_int(d, m, EAS_SETTINGS_ENABLED, a.enabled ? 1 : 0) ||
            !eas_add_text(d, m, EAS_SETTINGS_REPLYMESSAGE, a.body ? a.body : "") ||
            !eas_add_text(d, m, EAS_SETTINGS_BODYTYPE, "TEXT"))
            goto out;
    }
    rc = 0;
out:
    autoreply_free(&a);
    return rc;
}

/* The message that applies: the first OofMessage marked Enabled, else the first. */
static const struct eas_node *eas_oof_message(const struct eas_node *set)
{
    const struct eas_node *first = eas_child(set, EAS_SETTINGS_OOFMESSAGE);

    for (const struct eas_node *m = first; m; m = eas_next(m, EAS_SETTINGS_OOFMESSAGE))
        if (eas_child_int(m, EAS_SETTINGS_ENABLED, 0) == 1)
            return m;
    return first;
}

static int eas_oof_set(struct eas_req *req, const struct eas_node *set, struct eas_node *oof)
{
    struct autoreply a = {0};
    struct store_err e = {0};
    const struct eas_node *m = eas_oof_message(set);
    long long state = eas_child_int(set, EAS_SETTINGS_OOFSTATE, -1);
    int status = SET_OK, rc;

    rc = autoreply_get(req->e->st, req->acct->address, &a, &e);
    if (rc == STORE_ENOTFOUND) {
        memset(&a, 0, sizeof(a));
        a.days = -1;
    } else if (rc != STORE_OK) {
        return eas_add_int(req->out, oof, EAS_SETTINGS_STATUS, SET_SERVER_ERROR) ? 0 : -1;
    }
    if (state < 0 || state > 2) {
        status = SET_INVALID;
        goto answer;
    }
    a.enabled = state != 0;
    a.start = a.end = 0;
    if (state == 2 && (eas_time_parse(eas_child_text(set, EAS_SETTINGS_STARTTIME), &a.start) != 0 ||
                       eas_time_parse(eas_child_text(set, EAS_SETTINGS_ENDTIME), &a.end) != 0 ||
                       a.end < a.start)) {
        status = SET_INVALID;
        goto answer;
    }
    if (m && eas_child_text(m, EAS_SETTINGS_REPLYMESSAGE)) {
        const char *txt = eas_child_text(m, EAS_SETTINGS_REPLYMESSAGE);
        const char *bt = eas_child_text(m, EAS_SETTINGS_BODYTYPE);
        char *body = bt && strcasecmp(bt, "HTML") == 0 ? eas_html_to_text(txt) : strdup(txt);
        if (!body) {
            status = SET_SERVER_ERROR;
            goto answer;
        }
        free(a.body);
        a.body = body;
    }
    if (autoreply_put(req->e->st, req->acct->address, &a, &e) != STORE_OK) {
        log_info("eas", "%s: Oof Set refused: %s", req->acct->address, e.msg);
        status = SET_INVALID;
    }
answer:
    autoreply_free(&a);
    return eas_add_int(req->out, oof, EAS_SETTINGS_STATUS, status) ? 0 : -1;
}

static int eas_settings_oof(struct eas_req *req, const struct eas_node *in, struct eas_node *out)
{
    struct eas_node *oof = eas_add(req->out, out, EAS_SETTINGS_OOF);
    const struct eas_node *get = eas_child(in, EAS_SETTINGS_GET);
    const struct eas_node *set = eas_child(in, EAS_SETTINGS_SET);

    if (!oof)
        return -1;
    if (set)
        return eas_oof_set(req, set, oof);
    if (get)
        return eas_oof_get(req, oof);
    return eas_add_int(req->out, oof, EAS_SETTINGS_STATUS, SET_PROTOCOL_ERROR) ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------
 * UserInformation
 * ------------------------------------------------------------------------------------ */

struct eas_aliases {
    struct eas_req *req;
    struct eas_node *list;
    unsigned tag;
    int failed;
};

static int eas_alias_cb(const char *source, const char *target, void *ctx)
{
    struct eas_aliases *a = ctx;

    /* Aliases that deliver to this mailbox (not the catch-all "@domain"). */
    if (source[0] == '@' || strcasecmp(target, a->req->acct->address) != 0 ||
        strcasecmp(source, a->req->acct->address) == 0)
        return 0;
    if (!eas_add_text(a->req->out, a->list, a->tag, source)) {
        a->failed = 1;
        return 1;
    }
    return 0;
}

static int eas_settings_userinfo(struct eas_req *req, const struct eas_node *in,
                                 struct eas_node *out)
{
    struct eas_doc *d = req->out;
    struct eas_node *ui = eas_add(d, out, EAS_SETTINGS_USERINFORMATION), *get, *parent, *addrs;
    struct eas_aliases al = {req, NULL, EAS_SETTINGS_SMTPADDRESS, 0};

    if (!ui)
        return -1;
    if (!eas_child(in, EAS_SETTINGS_GET))
        return eas_add_int(d, ui, EAS_SETTINGS_STATUS, SET_PROTOCOL_ERROR) ? 0 : -1;
    if (!eas_add_int(d, ui, EAS_SETTINGS_STATUS, SET_OK) ||
        !(get = eas_add(d, ui, EAS_SETTINGS_GET)))
        return -1;
    parent = get;
    if (req->version >= EAS_V141) {
        struct eas_node *accts = eas_add(d, get, EAS_SETTINGS_ACCOUNTS);
        parent = accts ? eas_add(d, accts, EAS_SETTINGS_ACCOUNT) : NULL;
        if (!parent || !eas_add_text(d, parent, EAS_SETTINGS_USERDISPLAYNAME, req->acct->address))
            return -1;
    }
    if (!(addrs = eas_add(d, parent, EAS_SETTINGS_EMAILADDRESSES)))
        return -1;
    if (req->version >= EAS_V141 &&
        !eas_add_text(d, addrs, EAS_SETTINGS_PRIMARYSMTPADDRESS, req->acct->address))
        return -1;
    if (!eas_add_text(d, addrs, EAS_SETTINGS_SMTPADDRESS, req->acct->address))
        return -1;
    al.list = addrs;
    if (store_alias_list(req->e->st, req->acct->domain, NULL, eas_alias_cb, &al, NULL) != STORE_OK)
        log_warn("eas", "%s: listing aliases failed", req->acct->address);
    return al.failed ? -1 : 0;
}

/* ---------------------------------------------------------------------------------------
 * RightsManagementInformation, DevicePassword
 * ------------------------------------------------------------------------------------ */

static int eas_settings_rm(struct eas_req *req, const struct eas_node *in, struct eas_node *out)
{
    struct eas_doc *d = req->out;
    struct eas_node *rm = eas_add(d, out, EAS_SETTINGS_RIGHTSMANAGEMENTINFORMATION), *get;

    (void)in;
    if (!rm || !eas_add_int(d, rm, EAS_SETTINGS_STATUS, SET_OK) ||
        !(get = eas_add(d, rm, EAS_SETTINGS_GET)) ||
        !eas_add(d, get, EAS_RIGHTSMANAGEMENT_RIGHTSMANAGEMENTTEMPLATES))
        return -1;
    return 0;
}

static int eas_settings_devpw(struct eas_req *req, const struct eas_node *in, struct eas_node *out)
{
    struct eas_node *n = eas_add(req->out, out, EAS_SETTINGS_DEVICEPASSWORD);

    (void)in;
    return n && eas_add_int(req->out, n, EAS_SETTINGS_STATUS, SET_DENIED_BY_POLICY) ? 0 : -1;
}

static const struct {
    unsigned tag;
    int (*fn)(struct eas_req *req, const struct eas_node *in, struct eas_node *out);
} eas_settings_parts[] = {
    {EAS_SETTINGS_OOF, eas_settings_oof},
    {EAS_SETTINGS_DEVICEINFORMATION, eas_settings_devinfo},
    {EAS_SETTINGS_USERINFORMATION, eas_settings_userinfo},
    {EAS_SETTINGS_RIGHTSMANAGEMENTINFORMATION, eas_settings_rm},
    {EAS_SETTINGS_DEVICEPASSWORD, eas_settings_devpw},
};

int eas_cmd_settings(struct eas_req *req)
{
    const struct eas_node *root = req->in ? eas_doc_root(req->in) : NULL;
    struct eas_node *out;

    if (!(req->out = eas_doc_new()) || !(out = eas_add(req->out, NULL, EAS_SETTINGS_SETTINGS)))
        return -1;
    if (!root || root->tag != EAS_SETTINGS_SETTINGS || !root->first)
        return eas_add_int(req->out, out, EAS_SETTINGS_STATUS, SET_PROTOCOL_ERROR) ? 0 : -1;
    if (!eas_add_int(req->out, out, EAS_SETTINGS_STATUS, SET_OK))
        return -1;
    /* Parts are answered in the order they were asked. */
    for (const struct eas_node *n = root->first; n; n = n->next) {
        size_t i;
        for (i = 0; i < sizeof(eas_settings_parts) / sizeof(eas_settings_parts[0]); i++)
            if (eas_settings_parts[i].tag == n->tag)
                break;
        if (i == sizeof(eas_settings_parts) / sizeof(eas_settings_parts[0]))
            continue; /* an element of a later version: ignored */
        if (eas_settings_parts[i].fn(req, n, out) != 0)
            return -1;
    }
    return 0;
}
