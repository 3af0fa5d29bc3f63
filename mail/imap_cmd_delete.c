/*
 * imap_cmd_delete.c — DELETE (RFC 3501 §6.3.4, RFC 9051 §6.3.5).
 *
 * Refused: INBOX and the other folders with a role (Drafts, Sent, Junk, Trash, Archive —
 * every client and the other protocols expect them), and a mailbox with children. RFC 3501
 * would keep such a name as \Noselect once its messages are gone, but the store has no
 * \Noselect folders and deleting a folder there takes its subfolders along, so the RFC 9051
 * answer applies: NO [HASCHILDREN]; the client deletes the children first.
 *
 * Deleting the selected mailbox: as Dovecot does, the mailbox is closed and, once the
 * deletion is answered, the session ends with BYE — the client's view of it cannot go on.
 */
#include "mail/imap.h"

struct imap_children {
    int64_t id;
    bool found;
};

/* Any folder below, whatever its class: the store would delete it too. */
static int imap_find_child(const struct store_folder *f, void *ctx)
{
    struct imap_children *c = ctx;

    if (f->parent_id == c->id) {
        c->found = true;
        return 1;
    }
    return 0;
}

void imap_cmd_delete(struct imap_session *s, struct imap_cmd *cmd)
{
    struct store_folder f;
    struct store_err err = {0};
    struct imap_children ch = {0};
    char name[1024];
    bool selected;
    int rc;

    if (cmd->nargs != 1) {
        imap_bad(s, cmd, "DELETE takes a mailbox name");
        return;
    }
    if (imap_arg_mailbox(s, cmd, &cmd->args[0], name, sizeof(name)) < 0)
        return;
    imap_mailbox_trim(name);
    if (mail_folder_resolve(s->su, name, &f) != STORE_OK) {
        imap_no(s, cmd, "[NONEXISTENT] Mailbox does not exist");
        return;
    }
    if (f.role != STORE_ROLE_NONE) {
        imap_no(s, cmd, "[CANNOT] %s cannot be deleted",
                f.role == STORE_ROLE_INBOX ? "INBOX" : "A special-use mailbox");
        return;
    }
    ch.id = f.id;
    if ((rc = store_folder_list(s->su, 0, imap_find_child, &ch, &err)) != STORE_OK) {
        imap_store_error(s, cmd, rc, &err, "Deleting the mailbox");
        return;
    }
    if (ch.found) {
        imap_no(s, cmd, "[HASCHILDREN] Delete the mailboxes below it first");
        return;
    }
    selected = s->mbox && s->mbox->folder.id == f.id;
    if ((rc = store_folder_delete(s->su, f.id, &err)) != STORE_OK) {
        imap_store_error(s, cmd, rc, &err, "Deleting the mailbox");
        return;
    }
    imap_ok(s, cmd, "DELETE completed");
    if (selected) {
        imap_mbox_close(s);
        imap_untagged(s, "BYE Selected mailbox was deleted, have to disconnect");
        s->state = IMAP_LOGOUT;
    }
}
