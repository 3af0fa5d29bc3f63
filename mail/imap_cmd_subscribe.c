/*
 * imap_cmd_subscribe.c — SUBSCRIBE and UNSUBSCRIBE (RFC 3501 §6.3.6-7, RFC 9051 §6.3.7-8).
 * A subscription is a flag on the folder (new folders start subscribed), so only existing
 * mailboxes can be subscribed: RFC 3501 allows a server to refuse a name that does not
 * exist, and a flag cannot outlive its folder.
 */
#include "mail/imap.h"

static void imap_subscription(struct imap_session *s, struct imap_cmd *cmd, int on)
{
    struct store_folder f;
    struct store_err err = {0};
    char name[1024];
    int rc;

    if (cmd->nargs != 1) {
        imap_bad(s, cmd, "%s takes a mailbox name", cmd->name);
        return;
    }
    if (imap_arg_mailbox(s, cmd, &cmd->args[0], name, sizeof(name)) < 0)
        return;
    imap_mailbox_trim(name);
    if (mail_folder_resolve(s->su, name, &f) != STORE_OK) {
        imap_no(s, cmd, "[NONEXISTENT] Mailbox does not exist");
        return;
    }
    /* Setting what is already set takes no MODSEQ and wakes nobody. */
    if (!f.subscribed != !on &&
        (rc = store_folder_set_subscribed(s->su, f.id, on, &err)) != STORE_OK) {
        imap_store_error(s, cmd, rc, &err, on ? "Subscribing" : "Unsubscribing");
        return;
    }
    imap_ok(s, cmd, "%s completed", cmd->name);
}

void imap_cmd_subscribe(struct imap_session *s, struct imap_cmd *cmd)
{
    imap_subscription(s, cmd, 1);
}

void imap_cmd_unsubscribe(struct imap_session *s, struct imap_cmd *cmd)
{
    imap_subscription(s, cmd, 0);
}
