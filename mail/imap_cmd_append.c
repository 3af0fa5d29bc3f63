/*
 * imap_cmd_append.c — APPEND (RFC 3501 §6.3.11, RFC 9051 §6.3.12): a message from the
 * client, with optional flags and internal date, as a literal (or a literal8 under BINARY,
 * RFC 3516, or "UTF8 (~{N})" under UTF8=ACCEPT, RFC 6855 §4). Answers [APPENDUID] (UIDPLUS,
 * RFC 4315), [TRYCREATE] for a missing mailbox, [OVERQUOTA] and [TOOBIG].
 *
 * The reader (imap.c) already refuses a literal over APPENDLIMIT before a byte of it is
 * read; the check here covers a command that got through by another path. One message per
 * command: MULTIAPPEND is not advertised. Stored with mail_store_message(), like every
 * message that enters a mailbox.
 */
#include "mail/imap.h"

struct imap_append {
    char mailbox[1024];
    const struct imap_arg *flags; /* NULL: none */
    const struct imap_arg *date;  /* NULL: now */
    const struct imap_arg *data;  /* the literal */
};

/* APPEND mailbox [flags] [date-time] (literal | UTF8 (literal8)) */
static int imap_append_args(struct imap_session *s, struct imap_cmd *cmd, struct imap_append *a)
{
    size_t i = 1;

    if (cmd->nargs < 2) {
        imap_bad(s, cmd, "APPEND takes a mailbox, optional flags and date, and a message");
        return -1;
    }
    if (imap_arg_mailbox(s, cmd, &cmd->args[0], a->mailbox, sizeof(a->mailbox)) < 0)
        return -1;
    if (i < cmd->nargs - 1 && cmd->args[i].type == IMAP_ARG_LIST)
        a->flags = &cmd->args[i++];
    if (i < cmd->nargs - 1 && cmd->args[i].type == IMAP_ARG_QUOTED)
        a->date = &cmd->args[i++];
    if (i == cmd->nargs - 2 && imap_arg_is_atom(&cmd->args[i], "UTF8") &&
        cmd->args[i + 1].type == IMAP_ARG_LIST && cmd->args[i + 1].count == 1) {
        a->data = &cmd->args[i + 1].list[0];
        i += 2;
    } else if (i == cmd->nargs - 1) {
        a->data = &cmd->args[i++];
    }
    if (i != cmd->nargs || !a->data || a->data->type != IMAP_ARG_LITERAL) {
        imap_bad(s, cmd, "APPEND: the message must be a literal, after optional flags and date");
        return -1;
    }
    return 0;
}

/* Flags, keywords and date into m; kw receives the keywords. Returns 0, or -1 after BAD. */
static int imap_append_meta(struct imap_session *s, struct imap_cmd *cmd,
                            const struct imap_append *a, struct mail_new *m, char *kw,
                            size_t kwsize)
{
    struct imap_flags fl = {0};
    char err[256];

    if (a->flags) {
        if (imap_flags_parse(&cmd->arena, a->flags, IMAP_FLAGS_STORE, &fl, err, sizeof(err)) < 0) {
            imap_bad(s, cmd, "%s", err);
            return -1;
        }
        m->flags = imap_flags_to_store(fl.sys);
        if (imap_keywords_join(&fl, &m->flags, kw, kwsize) < 0) {
            imap_bad(s, cmd, "Too many keywords");
            return -1;
        }
        m->keywords = kw[0] ? kw : NULL;
    }
    if (a->date && imap_datetime_parse(a->date->str, a->date->len, &m->idate, NULL) < 0) {
        imap_bad(s, cmd, "Invalid date-time (like \"17-Jul-1996 02:44:25 -0700\")");
        return -1;
    }
    return 0;
}

void imap_cmd_append(struct imap_session *s, struct imap_cmd *cmd)
{
    struct imap_append a = {0};
    struct mail_new m = {0};
    struct store_folder f;
    struct store_item it;
    struct store_err err = {0};
    char kw[sizeof(it.keywords)];
    int rc;

    if (imap_append_args(s, cmd, &a) < 0 || imap_append_meta(s, cmd, &a, &m, kw, sizeof(kw)) < 0)
        return;
    if (a.data->len > IMAP_APPEND_LIMIT) {
        imap_no(s, cmd, "[TOOBIG] Message too large (APPENDLIMIT is %d)", IMAP_APPEND_LIMIT);
        return;
    }
    if (a.data->len == 0) {
        imap_no(s, cmd, "[CANNOT] An empty message cannot be stored");
        return;
    }
    if (mail_folder_resolve(s->su, a.mailbox, &f) != STORE_OK) {
        imap_no(s, cmd, "[TRYCREATE] Mailbox does not exist");
        return;
    }
    m.data = a.data->str;
    m.len = a.data->len;
    if ((rc = mail_store_message(s->su, f.id, &m, &it, &err)) != STORE_OK) {
        imap_store_error(s, cmd, rc, &err, "Storing the message");
        return;
    }
    /* Appending to the selected mailbox: its EXISTS goes before the tagged OK. */
    if (s->mbox)
        imap_mbox_sync(s, IMAP_SYNC_EXPUNGE);
    imap_ok(s, cmd, "[APPENDUID %u %u] APPEND completed", f.uidvalidity, it.uid);
}
