/*
 * imap_cmd_create.c — CREATE (RFC 3501 §6.3.3, RFC 9051 §6.3.4) with CREATE-SPECIAL-USE
 * (RFC 6154 §3), and the name checks and parent creation RENAME shares.
 *
 * CREATE "Archive.Inbox.2023" makes whatever levels are missing as ordinary mail folders,
 * all in one transaction, so a failure leaves no half-made hierarchy. The store keeps one
 * folder per special-use role and every account starts with all of them, so a USE
 * attribute can only be granted when its role is free; otherwise NO [USEATTR].
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/imap.h"

#define IMAP_LEVEL_MAX 255 /* bytes in one level: the store's leaf name */

static int imap_name_error(struct store_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int imap_name_error(struct store_err *err, int code, const char *fmt, ...)
{
    va_list ap;

    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void imap_mailbox_trim(char *name)
{
    size_t n = strlen(name);

    if (n > 1 && name[n - 1] == MAIL_HIER_SEP)
        name[n - 1] = '\0';
}

/* Wildcards would make the name impossible to LIST on its own; control characters have no
 * place in a name a person reads. */
static int imap_mailbox_check(const char *name, struct store_err *err)
{
    size_t level = 0;

    if (!*name)
        return imap_name_error(err, STORE_EINVAL, "Mailbox name is empty");
    for (const char *p = name;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == MAIL_HIER_SEP || c == '\0') {
            if (level == 0)
                return imap_name_error(err, STORE_EINVAL, "Mailbox name has an empty level");
            if (c == '\0')
                return STORE_OK;
            level = 0;
            continue;
        }
        if (c < 0x20 || c == 0x7f)
            return imap_name_error(err, STORE_EINVAL, "Mailbox name has a control character");
        if (c == '*' || c == '%')
            return imap_name_error(err, STORE_EINVAL, "Mailbox name has a wildcard (* or %%)");
        if (++level > IMAP_LEVEL_MAX)
            return imap_name_error(err, STORE_EINVAL, "A level of the name is over %d bytes",
                                   IMAP_LEVEL_MAX);
    }
}

/* One existing or new level below parent. */
static int imap_mailbox_level(struct imap_session *s, int64_t parent, const char *level,
                              int64_t *id, struct store_err *err)
{
    struct store_folder f;

    /* INBOX is case-insensitive at the top, and is where its children hang (RFC 3501 §5.1). */
    if (parent == 0 && strcasecmp(level, "INBOX") == 0) {
        if (store_folder_by_role(s->su, STORE_ROLE_INBOX, &f) != STORE_OK)
            return imap_name_error(err, STORE_ENOTFOUND, "No INBOX");
        *id = f.id;
        return STORE_OK;
    }
    if (store_folder_find(s->su, parent, level, &f) == STORE_OK) {
        if (f.cls != STORE_CLASS_MAIL)
            return imap_name_error(err, STORE_EINVAL, "%s is not a mail folder", level);
        *id = f.id;
        return STORE_OK;
    }
    return store_folder_create(s->su, parent, level, STORE_CLASS_MAIL, STORE_ROLE_NONE, id, err);
}

int imap_mailbox_prepare(struct imap_session *s, const char *name, int64_t *parent,
                         const char **leaf, struct store_err *err)
{
    struct store_folder f;
    char level[IMAP_LEVEL_MAX + 1];
    const char *p = name, *dot;
    int rc;

    if ((rc = imap_mailbox_check(name, err)) != STORE_OK)
        return rc;
    *parent = 0;
    while ((dot = strchr(p, MAIL_HIER_SEP)) != NULL) {
        memcpy(level, p, (size_t)(dot - p));
        level[dot - p] = '\0';
        if ((rc = imap_mailbox_level(s, *parent, level, parent, err)) != STORE_OK)
            return rc;
        p = dot + 1;
    }
    *leaf = p;
    if (*parent == 0 && strcasecmp(p, "INBOX") == 0)
        return imap_name_error(err, STORE_EEXIST, "INBOX always exists");
    if (store_folder_find(s->su, *parent, p, &f) == STORE_OK)
        return f.cls == STORE_CLASS_MAIL
                   ? imap_name_error(err, STORE_EEXIST, "Mailbox already exists")
                   : imap_name_error(err, STORE_EINVAL, "The name is taken by a non-mail folder");
    return STORE_OK;
}

/* USE (\Sent): the one role asked for. Returns 0, or -1 after answering. */
static int imap_create_use(struct imap_session *s, struct imap_cmd *cmd,
                           const struct imap_arg *params, enum store_role *role)
{
    static const struct {
        const char *attr;
        enum store_role role;
    } uses[] = {
        {"\\Drafts", STORE_ROLE_DRAFTS},   {"\\Sent", STORE_ROLE_SENT},
        {"\\Junk", STORE_ROLE_JUNK},       {"\\Trash", STORE_ROLE_TRASH},
        {"\\Archive", STORE_ROLE_ARCHIVE},
    };
    struct store_folder f;

    if (params->count != 2 || !imap_arg_is_atom(&params->list[0], "USE") ||
        params->list[1].type != IMAP_ARG_LIST) {
        imap_bad(s, cmd, "CREATE parameters: (USE (attributes))");
        return -1;
    }
    const struct imap_arg *attrs = &params->list[1];
    if (attrs->count == 0)
        return 0;
    if (attrs->count > 1) {
        imap_no(s, cmd, "[USEATTR] A mailbox can have one special use here");
        return -1;
    }
    for (size_t i = 0; i < sizeof(uses) / sizeof(uses[0]); i++) {
        if (!imap_arg_is_atom(&attrs->list[0], uses[i].attr))
            continue;
        if (store_folder_by_role(s->su, uses[i].role, &f) == STORE_OK) {
            imap_no(s, cmd, "[USEATTR] Another mailbox already has that special use");
            return -1;
        }
        *role = uses[i].role;
        return 0;
    }
    imap_no(s, cmd, "[USEATTR] That special use is not supported");
    return -1;
}

static int imap_create_run(struct imap_session *s, const char *name, enum store_role role,
                           struct store_err *err)
{
    const char *leaf;
    int64_t parent, id;
    int rc;

    if ((rc = store_txn_begin(s->su, err)) != STORE_OK)
        return rc;
    rc = imap_mailbox_prepare(s, name, &parent, &leaf, err);
    if (rc == STORE_OK)
        rc = store_folder_create(s->su, parent, leaf, STORE_CLASS_MAIL, role, &id, err);
    if (rc == STORE_OK)
        return store_txn_commit(s->su, NULL, err);
    store_txn_rollback(s->su);
    return rc;
}

void imap_cmd_create(struct imap_session *s, struct imap_cmd *cmd)
{
    enum store_role role = STORE_ROLE_NONE;
    struct store_err err = {0};
    char name[1024];
    int rc;

    if (cmd->nargs < 1 || cmd->nargs > 2 ||
        (cmd->nargs == 2 && cmd->args[1].type != IMAP_ARG_LIST)) {
        imap_bad(s, cmd, "CREATE takes a mailbox name and optional parameters");
        return;
    }
    if (imap_arg_mailbox(s, cmd, &cmd->args[0], name, sizeof(name)) < 0)
        return;
    if (cmd->nargs == 2 && imap_create_use(s, cmd, &cmd->args[1], &role) < 0)
        return;
    imap_mailbox_trim(name);
    if ((rc = imap_create_run(s, name, role, &err)) != STORE_OK) {
        imap_store_error(s, cmd, rc, &err, "Creating the mailbox");
        return;
    }
    imap_ok(s, cmd, "CREATE completed");
}
