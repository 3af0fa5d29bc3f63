/*
 * imap_cmd_status.c — STATUS (RFC 3501 §6.3.10, RFC 9051 §6.3.11) with SIZE (RFC 8438),
 * HIGHESTMODSEQ (RFC 7162), APPENDLIMIT (RFC 7889) and DELETED (RFC 9051), and the same
 * response for LIST-STATUS (RFC 5819). The counts come with the folder from the store; only
 * DELETED needs a pass over the folder's items, so it is read only when asked for.
 *
 * RECENT is always 0: \Recent is not kept (IMAP4rev2 dropped it; every session would
 * otherwise have to claim messages in a shared store).
 */
#include <stdio.h>
#include <string.h>

#include "mail/imap.h"

static const struct {
    const char *name;
    unsigned bit;
} imap_status_names[] = {
    {"MESSAGES", IMAP_STATUS_MESSAGES},
    {"RECENT", IMAP_STATUS_RECENT},
    {"UIDNEXT", IMAP_STATUS_UIDNEXT},
    {"UIDVALIDITY", IMAP_STATUS_UIDVALIDITY},
    {"UNSEEN", IMAP_STATUS_UNSEEN},
    {"SIZE", IMAP_STATUS_SIZE},
    {"HIGHESTMODSEQ", IMAP_STATUS_HIGHESTMODSEQ},
    {"APPENDLIMIT", IMAP_STATUS_APPENDLIMIT},
    {"DELETED", IMAP_STATUS_DELETED},
};

#define IMAP_STATUS_NNAMES (sizeof(imap_status_names) / sizeof(imap_status_names[0]))

int imap_status_items(const struct imap_arg *list, unsigned *items, char *err, size_t errlen)
{
    if (list->type != IMAP_ARG_LIST || list->count == 0) {
        imap_seterr(err, errlen, "Expected a list of status items");
        return -1;
    }
    *items = 0;
    for (size_t i = 0; i < list->count; i++) {
        size_t k = 0;
        while (k < IMAP_STATUS_NNAMES &&
               !imap_arg_is_atom(&list->list[i], imap_status_names[k].name))
            k++;
        if (k == IMAP_STATUS_NNAMES) {
            imap_seterr(err, errlen, "Unknown status item");
            return -1;
        }
        *items |= imap_status_names[k].bit;
    }
    return 0;
}

static int imap_count_deleted(const struct store_item_brief *it, void *ctx)
{
    if (it->flags & STORE_FLAG_DELETED)
        (*(int64_t *)ctx)++;
    return 0;
}

static uint64_t imap_status_value(const struct store_folder *f, unsigned bit, int64_t deleted)
{
    switch (bit) {
    case IMAP_STATUS_MESSAGES:
        return (uint64_t)f->count;
    case IMAP_STATUS_UIDNEXT:
        return f->uidnext;
    case IMAP_STATUS_UIDVALIDITY:
        return f->uidvalidity;
    case IMAP_STATUS_UNSEEN:
        return (uint64_t)f->unseen;
    case IMAP_STATUS_SIZE:
        return (uint64_t)f->bytes;
    case IMAP_STATUS_HIGHESTMODSEQ:
        return IMAP_MODSEQ(f->modseq);
    case IMAP_STATUS_APPENDLIMIT:
        return IMAP_APPEND_LIMIT;
    case IMAP_STATUS_DELETED:
        return (uint64_t)deleted;
    default: /* RECENT */
        return 0;
    }
}

int imap_status_send(struct imap_session *s, const struct store_folder *f, const char *name,
                     unsigned items)
{
    struct store_err err;
    int64_t deleted = 0;
    const char *sep = "";
    int rc;

    if ((items & IMAP_STATUS_DELETED) &&
        (rc = store_item_list_brief(s->su, f->id, imap_count_deleted, &deleted, &err)) != STORE_OK)
        return rc;
    /* RFC 7162 §3.1: asking for HIGHESTMODSEQ turns CONDSTORE on for the session. */
    if (items & IMAP_STATUS_HIGHESTMODSEQ)
        s->enabled |= IMAP_EN_CONDSTORE;
    net_printf(s->c, "* STATUS ");
    imap_out_mailbox(s, name);
    net_printf(s->c, " (");
    for (size_t k = 0; k < IMAP_STATUS_NNAMES; k++) {
        if (!(items & imap_status_names[k].bit))
            continue;
        net_printf(s->c, "%s%s %llu", sep, imap_status_names[k].name,
                   (unsigned long long)imap_status_value(f, imap_status_names[k].bit, deleted));
        sep = " ";
    }
    net_printf(s->c, ")\r\n");
    return STORE_OK;
}

void imap_cmd_status(struct imap_session *s, struct imap_cmd *cmd)
{
    struct store_folder f;
    char name[1024], path[1024], err[256];
    unsigned items;
    int rc;

    if (cmd->nargs != 2) {
        imap_bad(s, cmd, "STATUS takes a mailbox name and a list of items");
        return;
    }
    if (imap_arg_mailbox(s, cmd, &cmd->args[0], name, sizeof(name)) < 0)
        return;
    if (imap_status_items(&cmd->args[1], &items, err, sizeof(err)) < 0) {
        imap_bad(s, cmd, "%s", err);
        return;
    }
    if (mail_folder_resolve(s->su, name, &f) != STORE_OK) {
        imap_no(s, cmd, "[NONEXISTENT] Mailbox does not exist");
        return;
    }
    /* Answered under the name LIST shows ("inbox" comes back as INBOX). */
    if (imap_folder_path(s, &f, path, sizeof(path)) < 0)
        snprintf(path, sizeof(path), "%s", name);
    if ((rc = imap_status_send(s, &f, path, items)) != STORE_OK) {
        imap_store_error(s, cmd, rc, NULL, "Reading the mailbox status");
        return;
    }
    imap_ok(s, cmd, "STATUS completed");
}
