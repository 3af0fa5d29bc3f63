/*
 * imap_cmd_quota.c — GETQUOTA and GETQUOTAROOT (RFC 9208). One quota root, "", covering
 * the whole account, with one resource: STORAGE, in units of 1024 octets, the usage
 * rounded up so a nearly full mailbox never looks emptier than it is. The limit is set by
 * the operator (`polaris user set --quota`), so SETQUOTA is not offered (no QUOTASET).
 */
#include <string.h>

#include "mail/imap.h"

/* "* QUOTA "" (STORAGE used limit)" */
static int imap_quota_send(struct imap_session *s)
{
    int64_t used = 0, quota = 0;

    if (store_user_usage(s->su, &used, &quota) != STORE_OK)
        return -1;
    imap_untagged(s, "QUOTA \"\" (STORAGE %lld %lld)", (long long)((used + 1023) / 1024),
                  (long long)(quota / 1024));
    return 0;
}

void imap_cmd_getquota(struct imap_session *s, struct imap_cmd *cmd)
{
    const char *root = cmd->nargs == 1 ? imap_arg_string(cmd, &cmd->args[0]) : NULL;

    if (!root) {
        imap_bad(s, cmd, "GETQUOTA takes a quota root");
        return;
    }
    if (*root) {
        imap_no(s, cmd, "[NONEXISTENT] No such quota root (the only one is \"\")");
        return;
    }
    if (imap_quota_send(s) < 0) {
        imap_store_error(s, cmd, STORE_EIO, NULL, "Reading the quota");
        return;
    }
    imap_ok(s, cmd, "GETQUOTA completed");
}

void imap_cmd_getquotaroot(struct imap_session *s, struct imap_cmd *cmd)
{
    struct store_folder f;
    char name[1024], path[1024];

    if (cmd->nargs != 1) {
        imap_bad(s, cmd, "GETQUOTAROOT takes a mailbox name");
        return;
    }
    if (imap_arg_mailbox(s, cmd, &cmd->args[0], name, sizeof(name)) < 0)
        return;
    if (mail_folder_resolve(s->su, name, &f) != STORE_OK) {
        imap_no(s, cmd, "[NONEXISTENT] Mailbox does not exist");
        return;
    }
    if (imap_folder_path(s, &f, path, sizeof(path)) < 0)
        memcpy(path, name, sizeof(path));
    net_printf(s->c, "* QUOTAROOT ");
    imap_out_mailbox(s, path);
    net_printf(s->c, " \"\"\r\n");
    if (imap_quota_send(s) < 0) {
        imap_store_error(s, cmd, STORE_EIO, NULL, "Reading the quota");
        return;
    }
    imap_ok(s, cmd, "GETQUOTAROOT completed");
}

/* SETQUOTA (RFC 9208 §4.3): quotas are the operator's (polaris user set --quota). */
void imap_cmd_setquota(struct imap_session *s, struct imap_cmd *cmd)
{
    imap_no(s, cmd, "[NOPERM] Quotas are set by the administrator");
}
