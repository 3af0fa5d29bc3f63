/*
 * eas_device.c — ActiveSync device state: what the server remembers of each phone or
 * client of a user (type, what it told us about itself, its policy keys, a pending remote
 * wipe), kept in that user's store under namespace "eas.dev" keyed by DeviceId, plus the
 * administration the CLI offers (list, show, wipe, delete).
 *
 * The record is a small text document, one "name value" line per field with the value
 * escaped (backslash, newline), so that fields can be added later and old records still
 * load. Unknown names are ignored; a malformed record loads as far as it is readable.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "eas/eas_int.h"

#define EAS_DEV_RECORD_MAX 8192

enum eas_dev_kind { DEV_STR, DEV_U64, DEV_I64, DEV_INT };

/* The fields of the record: name on disk, kind, offset and size in struct eas_device. */
static const struct eas_dev_field {
    const char *name;
    enum eas_dev_kind kind;
    size_t off, size;
} eas_dev_fields[] = {
#define F(n, k, m)                                                                                 \
    {                                                                                              \
        n, k, offsetof(struct eas_device, m), sizeof(((struct eas_device *)0)->m)                  \
    }
    F("type", DEV_STR, type),
    F("user_agent", DEV_STR, user_agent),
    F("model", DEV_STR, model),
    F("imei", DEV_STR, imei),
    F("os", DEV_STR, os),
    F("os_language", DEV_STR, os_language),
    F("friendly", DEV_STR, friendly),
    F("phone", DEV_STR, phone),
    F("operator", DEV_STR, operator_),
    F("policy_key", DEV_U64, policy_key),
    F("pending_key", DEV_U64, pending_key),
    F("provisioned", DEV_I64, provisioned),
    F("wipe", DEV_INT, wipe),
    F("wipe_acked", DEV_INT, wipe_acked),
    F("wipe_requested", DEV_I64, wipe_requested),
    F("wipe_acked_at", DEV_I64, wipe_acked_at),
    F("first_seen", DEV_I64, first_seen),
    F("last_seen", DEV_I64, last_seen),
    F("version", DEV_INT, version),
#undef F
};
#define EAS_DEV_NFIELDS (sizeof(eas_dev_fields) / sizeof(eas_dev_fields[0]))

int eas_device_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;

    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

uint32_t eas_random32(void)
{
    uint32_t v = 0;

    while (v == 0) {
        if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts); /* never expected: getrandom blocks instead */
            v = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec;
        }
    }
    return v;
}

/* Appends "name value\n" with the value escaped; returns the new length or -1. */
static int eas_dev_put_line(char *buf, size_t cap, size_t *len, const char *name, const char *val)
{
    size_t n = *len;
    int w = snprintf(buf + n, cap - n, "%s ", name);

    if (w < 0 || (size_t)w >= cap - n)
        return -1;
    n += (size_t)w;
    for (const char *p = val; *p; p++) {
        if (n + 3 >= cap)
            return -1;
        if (*p == '\\' || *p == '\n' || *p == '\r') {
            buf[n++] = '\\';
            buf[n++] = *p == '\\' ? '\\' : (*p == '\n' ? 'n' : 'r');
        } else {
            buf[n++] = *p;
        }
    }
    if (n + 1 >= cap)
        return -1;
    buf[n++] = '\n';
    *len = n;
    return 0;
}

static int eas_dev_encode(const struct eas_device *d, char *buf, size_t cap, size_t *len)
{
    *len = 0;
    for (size_t i = 0; i < EAS_DEV_NFIELDS; i++) {
        const struct eas_dev_field *f = &eas_dev_fields[i];
        const char *base = (const char *)d + f->off;
        char num[32];
        const char *val = num;

        switch (f->kind) {
        case DEV_STR:
            val = base;
            break;
        case DEV_U64:
            snprintf(num, sizeof(num), "%" PRIu64, *(const uint64_t *)(const void *)base);
            break;
        case DEV_I64:
            snprintf(num, sizeof(num), "%" PRId64, *(const int64_t *)(const void *)base);
            break;
        case DEV_INT:
            snprintf(num, sizeof(num), "%d", *(const int *)(const void *)base);
            break;
        }
        if (eas_dev_put_line(buf, cap, len, f->name, val) != 0)
            return -1;
    }
    return 0;
}

/* Unescapes one value into out (NUL-terminated, truncated to outlen). */
static void eas_dev_unescape(const char *v, size_t n, char *out, size_t outlen)
{
    size_t o = 0;

    for (size_t i = 0; i < n && o + 1 < outlen; i++) {
        char c = v[i];
        if (c == '\\' && i + 1 < n) {
            c = v[++i];
            c = c == 'n' ? '\n' : c == 'r' ? '\r' : c;
        }
        out[o++] = c;
    }
    out[o] = '\0';
}

static void eas_dev_set(struct eas_device *d, const char *name, size_t nlen, const char *v,
                        size_t vlen)
{
    char tmp[512];

    for (size_t i = 0; i < EAS_DEV_NFIELDS; i++) {
        const struct eas_dev_field *f = &eas_dev_fields[i];
        char *base = (char *)d + f->off;

        if (strlen(f->name) != nlen || memcmp(f->name, name, nlen) != 0)
            continue;
        if (f->kind == DEV_STR) {
            eas_dev_unescape(v, vlen, base, f->size);
            return;
        }
        eas_dev_unescape(v, vlen, tmp, sizeof(tmp));
        errno = 0;
        if (f->kind == DEV_U64)
            *(uint64_t *)(void *)base = strtoull(tmp, NULL, 10);
        else if (f->kind == DEV_I64)
            *(int64_t *)(void *)base = strtoll(tmp, NULL, 10);
        else
            *(int *)(void *)base = (int)strtol(tmp, NULL, 10);
        return;
    }
}

static void eas_dev_decode(const char *buf, size_t len, struct eas_device *d)
{
    size_t i = 0;

    while (i < len) {
        const char *line = buf + i, *nl = memchr(line, '\n', len - i), *sp;
        size_t ll = nl ? (size_t)(nl - line) : len - i;

        i += ll + 1;
        sp = memchr(line, ' ', ll);
        if (!sp)
            continue;
        eas_dev_set(d, line, (size_t)(sp - line), sp + 1, ll - (size_t)(sp - line) - 1);
    }
}

int eas_device_load(struct store_user *u, const char *id, struct eas_device *out)
{
    struct store_err e = {0};
    void *val = NULL;
    size_t len = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!eas_device_id_valid(id))
        return STORE_EINVAL;
    rc = store_state_get(u, EAS_NS_DEVICE, id, &val, &len, &e);
    if (rc != STORE_OK)
        return rc;
    snprintf(out->id, sizeof(out->id), "%s", id);
    eas_dev_decode(val, len, out);
    free(val);
    return STORE_OK;
}

int eas_device_save(struct store_user *u, const struct eas_device *d)
{
    struct store_err e = {0};
    char buf[EAS_DEV_RECORD_MAX];
    size_t len;
    int rc;

    if (!eas_device_id_valid(d->id))
        return STORE_EINVAL;
    if (eas_dev_encode(d, buf, sizeof(buf), &len) != 0)
        return STORE_EINVAL;
    rc = store_state_put(u, EAS_NS_DEVICE, d->id, buf, len, &e);
    if (rc != STORE_OK)
        log_warn("eas", "saving device %s of %s failed: %s", d->id, store_user_address(u), e.msg);
    return rc;
}

/* Collects the keys of a namespace that belong to one device ("<id>/..."). */
struct eas_dev_keys {
    const char *prefix;
    size_t plen;
    char **keys;
    size_t n, cap;
    int oom;
};

static int eas_dev_key_cb(const char *key, const void *val, size_t len, void *ctx)
{
    struct eas_dev_keys *k = ctx;

    (void)val;
    (void)len;
    if (strncmp(key, k->prefix, k->plen) != 0)
        return 0;
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 16;
        char **v = realloc(k->keys, cap * sizeof(*v));
        if (!v) {
            k->oom = 1;
            return 1;
        }
        k->keys = v;
        k->cap = cap;
    }
    if (!(k->keys[k->n] = strdup(key))) {
        k->oom = 1;
        return 1;
    }
    k->n++;
    return 0;
}

int eas_device_forget(struct store_user *u, const char *id)
{
    static const char *const own_ns[] = {EAS_NS_DEVICE, EAS_NS_HIERARCHY, EAS_NS_PING};
    struct store_err e = {0};
    char prefix[80];
    struct eas_dev_keys k = {0};
    int rc;

    if (!eas_device_id_valid(id))
        return STORE_EINVAL;
    snprintf(prefix, sizeof(prefix), "%s/", id);
    k.prefix = prefix;
    k.plen = strlen(prefix);
    rc = store_state_list(u, EAS_NS_SYNC, eas_dev_key_cb, &k, &e);
    if (rc == STORE_OK && k.oom)
        rc = STORE_ENOMEM;
    if (rc != STORE_OK)
        goto out;
    if ((rc = store_txn_begin(u, &e)) != STORE_OK)
        goto out;
    for (size_t i = 0; i < sizeof(own_ns) / sizeof(own_ns[0]) && rc == STORE_OK; i++) {
        rc = store_state_del(u, own_ns[i], id, &e);
        if (rc == STORE_ENOTFOUND)
            rc = STORE_OK;
    }
    for (size_t i = 0; i < k.n && rc == STORE_OK; i++) {
        rc = store_state_del(u, EAS_NS_SYNC, k.keys[i], &e);
        if (rc == STORE_ENOTFOUND)
            rc = STORE_OK;
    }
    if (rc == STORE_OK)
        rc = store_txn_commit(u, NULL, &e);
    else
        store_txn_rollback(u);
out:
    for (size_t i = 0; i < k.n; i++)
        free(k.keys[i]);
    free(k.keys);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Administration
 * ------------------------------------------------------------------------------------ */

const char *eas_version_name(int v)
{
    switch (v) {
    case EAS_V25:
        return "2.5";
    case EAS_V120:
        return "12.0";
    case EAS_V121:
        return "12.1";
    case EAS_V140:
        return "14.0";
    case EAS_V141:
        return "14.1";
    case EAS_V160:
        return "16.0";
    case EAS_V161:
        return "16.1";
    default:
        return "";
    }
}

/* Opens the user's store; an unknown user is STORE_ENOTFOUND with a message. */
static int eas_admin_open(struct store *st, const char *address, struct store_user **u,
                          struct store_err *err)
{
    struct store_account a;
    int rc = store_account_get(st, address, &a, err);

    explicit_bzero(a.pwhash, sizeof(a.pwhash));
    if (rc != STORE_OK)
        return rc;
    return store_user_open(st, a.address, u, err);
}

static int eas_admin_notfound(struct store_err *err, const char *id)
{
    if (err) {
        err->code = STORE_ENOTFOUND;
        snprintf(err->msg, sizeof(err->msg), "no device %s", id);
    }
    return STORE_ENOTFOUND;
}

struct eas_admin_list {
    eas_device_cb cb;
    void *ctx;
    int stopped;
};

static int eas_admin_list_cb(const char *key, const void *val, size_t len, void *ctx)
{
    struct eas_admin_list *l = ctx;
    struct eas_device d;

    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "%s", key);
    eas_dev_decode(val, len, &d);
    if (l->cb(&d, l->ctx) != 0) {
        l->stopped = 1;
        return 1;
    }
    return 0;
}

int eas_admin_device_list(struct store *st, const char *address, eas_device_cb cb, void *ctx,
                          struct store_err *err)
{
    struct store_user *u = NULL;
    struct eas_admin_list l = {cb, ctx, 0};
    int rc = eas_admin_open(st, address, &u, err);

    if (rc != STORE_OK)
        return rc;
    rc = store_state_list(u, EAS_NS_DEVICE, eas_admin_list_cb, &l, err);
    store_user_release(u);
    return rc;
}

int eas_admin_device_get(struct store *st, const char *address, const char *id,
                         struct eas_device *out, struct store_err *err)
{
    struct store_user *u = NULL;
    int rc = eas_admin_open(st, address, &u, err);

    if (rc != STORE_OK)
        return rc;
    rc = eas_device_load(u, id, out);
    store_user_release(u);
    return rc == STORE_ENOTFOUND || rc == STORE_EINVAL ? eas_admin_notfound(err, id) : rc;
}

int eas_admin_device_wipe(struct store *st, const char *address, const char *id, int account_only,
                          struct store_err *err)
{
    struct store_user *u = NULL;
    struct eas_device d;
    int rc = eas_admin_open(st, address, &u, err);

    if (rc != STORE_OK)
        return rc;
    /* Read and write in one transaction so that a request the server is answering for
     * this device at the same moment cannot write back a record without the wipe. */
    if ((rc = store_txn_begin(u, err)) != STORE_OK)
        goto out;
    rc = eas_device_load(u, id, &d);
    if (rc == STORE_ENOTFOUND || rc == STORE_EINVAL) {
        rc = eas_admin_notfound(err, id);
    } else if (rc == STORE_OK && account_only && d.version && d.version < EAS_V161) {
        rc = STORE_EINVAL;
        if (err)
            snprintf(err->msg, sizeof(err->msg),
                     "device %s speaks ActiveSync %s; an account-only wipe needs 16.1", id,
                     eas_version_name(d.version));
    } else if (rc == STORE_OK) {
        d.wipe = account_only ? 2 : 1;
        d.wipe_acked = 0;
        d.wipe_acked_at = 0;
        d.wipe_requested = (int64_t)time(NULL);
        rc = eas_device_save(u, &d);
    }
    if (rc == STORE_OK)
        rc = store_txn_commit(u, NULL, err);
    else
        store_txn_rollback(u);
out:
    store_user_release(u);
    return rc;
}

int eas_admin_device_del(struct store *st, const char *address, const char *id,
                         struct store_err *err)
{
    struct store_user *u = NULL;
    struct eas_device d;
    int rc = eas_admin_open(st, address, &u, err);

    if (rc != STORE_OK)
        return rc;
    rc = eas_device_load(u, id, &d);
    if (rc == STORE_ENOTFOUND || rc == STORE_EINVAL)
        rc = eas_admin_notfound(err, id);
    else if (rc == STORE_OK)
        rc = eas_device_forget(u, id);
    store_user_release(u);
    return rc;
}
